"""The Office dashboard: the whole company by department, the 5-minute offline rule, totals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone, translation

from office.models import OfficeAgentStatus, OfficeStatus
from office.reporter import OfficeReporter
from office.services import dashboard
from office.views import headline
from tests.factories import OfficeAgentStatusFactory

pytestmark = pytest.mark.django_db
URL = "/office/"


@pytest.fixture(autouse=True)
def default_language() -> Iterator[None]:
    yield
    translation.deactivate()


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("boss", password="x", is_staff=True))
    return client


def test_the_known_agents_are_there_from_day_one_as_offline() -> None:
    rows = {r.agent_id: r for r in OfficeAgentStatus.objects.all()}
    assert set(rows) == {agent_id for agent_id, _d, _n in dashboard.KNOWN_AGENTS}
    assert {r.status for r in rows.values()} == {OfficeStatus.OFFLINE}
    assert rows["watcher_price_monitor"].department == "watcher"
    assert rows["lex_monitor"].name == "Юридический мониторинг"  # in the site's language


def test_an_agent_silent_for_over_five_minutes_is_offline_whatever_it_said() -> None:
    now = timezone.now()
    row = OfficeAgentStatusFactory(status="ok", last_activity=now - dt.timedelta(minutes=4))
    assert dashboard.shown_status(row, now) == "ok"
    row.last_activity = now - dt.timedelta(minutes=5, seconds=1)
    assert dashboard.shown_status(row, now) == "offline"
    row.status, row.last_activity = "error", None
    assert dashboard.shown_status(row, now) == "offline"
    assert dashboard.agent_row(row, now)["stored_status"] == "error"


def test_a_heartbeat_brings_a_stale_agent_back() -> None:
    reporter = OfficeReporter("scout_niche", "scout", "Разведчик")
    reporter.report_working("ищу")
    OfficeAgentStatus.objects.filter(agent_id="scout_niche").update(
        last_activity=timezone.now() - dt.timedelta(minutes=6)
    )
    assert (
        dashboard.shown_status(OfficeAgentStatus.objects.get(agent_id="scout_niche")) == "offline"
    )
    reporter.heartbeat()
    assert dashboard.shown_status(OfficeAgentStatus.objects.get(agent_id="scout_niche")) == "ok"


def test_totals_weigh_salaries_by_fte() -> None:
    OfficeAgentStatus.objects.all().delete()
    OfficeReporter("a", "cfo", "A", salary_equivalent=100_000, fte_coefficient=0.5).report_idle()
    OfficeReporter("b", "cfo", "B", salary_equivalent=60_000).report_idle()
    OfficeReporter("c", "lex", "C", salary_equivalent=80_000, fte_coefficient=2).report_idle()
    totals = dashboard.totals()
    assert totals["departments"]["cfo"] == {"agents": 2, "fte": "1.50", "salary": 110_000}
    assert totals["departments"]["lex"] == {"agents": 1, "fte": "2.00", "salary": 160_000}
    assert totals["overall"] == {"agents": 3, "fte": "3.50", "salary": 270_000}


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (1, "1 виртуальный сотрудник заменяет 60\xa0000 ₽ в месяц"),
        (3, "3 виртуальных сотрудника заменяют 60\xa0000 ₽ в месяц"),
        (14, "14 виртуальных сотрудников заменяют 60\xa0000 ₽ в месяц"),
        (21, "21 виртуальный сотрудник заменяет 60\xa0000 ₽ в месяц"),
    ],
)
def test_the_headline_speaks_russian(count: int, text: str) -> None:
    with translation.override("ru"):
        assert headline({"agents": count, "fte": "1.00", "salary": 60_000}) == text


def test_staff_see_every_department_with_totals(staff_client: Client) -> None:
    OfficeReporter("watcher_price_monitor", "watcher", "Монитор цен").report_working(
        "Проверяю цены", {"tasks_done": 7}
    )
    OfficeReporter("custom_bot", "sales", "Продажник").report_error("нет связи")
    response = staff_client.get(URL, HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    html = response.content.decode()
    assert "15 виртуальных сотрудников заменяют 900\xa0000 ₽ в месяц" in html
    for label in ("Мониторинг цен", "Репутация", "Контент-фабрика", "Юридический отдел", "sales"):
        assert label in html
    assert 'data-agent-id="watcher_price_monitor" data-status="ok"' in html
    assert "Проверяю цены" in html and "tasks_done" in html
    assert 'data-agent-id="custom_bot" data-status="error"' in html
    assert "Ошибка: нет связи" in html
    assert 'data-agent-id="lex_monitor" data-status="offline"' in html
    assert "3 агента · ставок: 3 · 180\xa0000 ₽ в месяц" in html  # the watcher department
    # Works offline: only the project's own assets.
    assert "http://" not in html.replace("http://testserver", "") and "https://" not in html


def test_a_stale_agent_is_shown_offline_on_the_page(staff_client: Client) -> None:
    OfficeReporter("cfo_report", "cfo", "Финансы").report_working("считаю")
    OfficeAgentStatus.objects.filter(agent_id="cfo_report").update(
        last_activity=timezone.now() - dt.timedelta(minutes=10)
    )
    html = staff_client.get(URL).content.decode()
    assert 'data-agent-id="cfo_report" data-status="offline" data-stored-status="ok"' in html


def test_the_dashboard_is_for_staff_only() -> None:
    client = Client()
    assert "/admin/login/" in client.get(URL)["Location"]
    client.force_login(User.objects.create_user("plain", password="x"))
    assert client.get(URL).status_code == 403


def test_the_admin_index_links_the_dashboard() -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "r@example.com", "x"))
    html = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert 'href="/office/"' in html


def test_a_module_key_is_shown_once_in_the_admin() -> None:
    from office.models import ModuleKey
    from office.services.keys import authenticate_module_key

    client = Client()
    client.force_login(User.objects.create_superuser("root", "r@example.com", "x"))
    response = client.post(
        "/admin/office/modulekey/add/", {"department": "reputation", "is_active": "on"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('class="office-module-key"')
    key = html[html.index(">", start) + 1 : html.index("<", start)]
    assert key.startswith("wo_")
    row = ModuleKey.objects.get()
    assert authenticate_module_key(key) == row
    assert key not in client.get(f"/admin/office/modulekey/{row.pk}/change/").content.decode()
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_the_admin_lists_agents_and_module_keys_in_russian() -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "r@example.com", "x"))
    html = client.get("/admin/office/officeagentstatus/", HTTP_ACCEPT_LANGUAGE="ru").content
    text = html.decode()
    assert "Выберите статус агента для изменения" in text
    assert "Юридический мониторинг" in text
    response = client.get("/admin/office/modulekey/add/", HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    assert "Добавить ключ модуля" in response.content.decode()


def test_the_admin_names_departments_once_each_in_its_filter() -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "r@example.com", "x"))
    html = client.get("/admin/office/officeagentstatus/", HTTP_ACCEPT_LANGUAGE="ru").content
    text = html.decode()
    filter_box = text[text.index('id="changelist-filter"') :]
    assert filter_box.count("?department=watcher") == 1  # three agents, one choice
    assert "Мониторинг цен" in filter_box
    assert ">content_factory<" not in text  # the column shows names, not codes
