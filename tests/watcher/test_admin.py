"""The operators' admin: lists without N+1, agent keys shown once, task actions, imports."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
import tablib
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from parser.types import Marketplace
from tests.factories import (
    AgentFactory,
    CompetitorFactory,
    PriceHistoryFactory,
    SubscriptionFactory,
    TaskFactory,
)
from watcher.models import (
    DOMAINS,
    Agent,
    AgentStatus,
    Competitor,
    EmulationConfig,
    Subscription,
    Task,
    TaskOutcome,
    TaskReport,
    TaskStatus,
)
from watcher.resources import CompetitorResource
from watcher.services import distributor, queues, semaphore
from watcher.services.agents import authenticate_key, create_agent
from watcher.services.errors import Conflict
from watcher.services.redis import INFLIGHT_KEY, get_redis
from watcher.services.results import ReportInput, submit_report

KEY_RE = re.compile(r"wa_[A-Za-z0-9_\-]{20,}")
IP = "10.0.0.7"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def flush_redis() -> Iterator[None]:
    # tests/conftest.py flushes too; kept here so this file stands on its own.
    get_redis().flushdb()
    yield
    get_redis().flushdb()


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[[], Any]:
    """``with committed():`` runs the block's ``on_commit`` callbacks as a real commit would
    (the test's own transaction never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def changelist(model: str) -> str:
    return reverse(f"admin:watcher_{model}_changelist")


def run_action(client: Client, model: str, action: str, pks: list[Any]) -> Any:
    return client.post(
        changelist(model),
        {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks]},
    )


def claimed_task(agent: Agent, ip: str = IP, **fields: Any) -> Task:
    """A task handed to ``agent`` through the real claim path (semaphore + in-flight set)."""
    task = TaskFactory(**fields)
    queues.push([(str(task.pk), task.marketplace, task.priority)])
    claimed = distributor.claim_next_task(agent, ip)
    assert claimed is not None
    assert claimed.pk == task.pk
    return claimed


# --- Changelists: every model loads, with a bounded number of queries -------------------------


def _seed(n: int) -> None:
    agent = AgentFactory(status=AgentStatus.WORKING, last_heartbeat=timezone.now())
    for _ in range(n):
        sub = SubscriptionFactory()
        competitor = CompetitorFactory(subscription=sub)
        task = TaskFactory(subscription=sub, competitor=competitor, agent=agent)
        TaskReport.objects.create(
            task=task, agent=agent, attempt=1, success=True, raw_text="1 299 ₽", timing_ms=10
        )
        PriceHistoryFactory(subscription=sub, competitor=competitor, task=task, agent=agent)
        AgentFactory()


@pytest.mark.parametrize(
    "model", ["subscription", "competitor", "agent", "task", "taskreport", "pricehistory"]
)
def test_it_lists_every_model_without_n_plus_one(
    admin_client: Client, model: str, django_assert_max_num_queries: Any
) -> None:
    _seed(3)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(changelist(model)).status_code == 200
    _seed(17)
    with django_assert_max_num_queries(20), CaptureQueriesContext(connection) as many:
        response = admin_client.get(changelist(model))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 20
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_it_counts_competitors_and_links_the_product_page(admin_client: Client) -> None:
    sub = SubscriptionFactory(sku="555001", marketplace=Marketplace.OZON)
    CompetitorFactory.create_batch(3, subscription=sub)
    response = admin_client.get(changelist("subscription"), {"q": "555001"})
    row = response.context["cl"].result_list[0]
    assert row.competitors_total == 3
    content = response.content.decode()
    assert 'href="https://www.ozon.ru/product/555001/" target="_blank"' in content


def test_it_finds_a_subscription_by_competitor_sku_without_doubling_counts(
    admin_client: Client,
) -> None:
    sub = SubscriptionFactory()
    CompetitorFactory(subscription=sub, competitor_sku="777111")
    CompetitorFactory(subscription=sub, competitor_sku="777112")
    response = admin_client.get(changelist("subscription"), {"q": "77711"})
    rows = list(response.context["cl"].result_list)
    assert [r.pk for r in rows] == [sub.pk]
    assert rows[0].competitors_total == 2


def test_it_activates_and_deactivates_subscriptions(admin_client: Client) -> None:
    subs = SubscriptionFactory.create_batch(2)
    run_action(admin_client, "subscription", "deactivate", [s.pk for s in subs])
    assert not Subscription.objects.filter(is_active=True).exists()
    run_action(admin_client, "subscription", "activate", [subs[0].pk])
    assert list(Subscription.objects.filter(is_active=True)) == [subs[0]]


# --- Agents: the key is shown once and only its digest is kept --------------------------------


def test_it_creates_an_agent_and_shows_its_key_once(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:watcher_agent_add"),
        {"name": "node-7", "is_enabled": "on", "modem_operator": "MTS"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    keys = KEY_RE.findall(response.content.decode())
    assert len(set(keys)) == 1
    key = keys[0]

    agent = Agent.objects.get(name="node-7")
    assert agent.modem_operator == "MTS"
    assert agent.api_key_digest == hashlib.sha256(key.encode()).hexdigest()
    for field in Agent._meta.concrete_fields:
        assert key not in str(field.value_from_object(agent)), field.name
    assert authenticate_key(key) == agent
    assert not LogEntry.objects.filter(change_message__contains=key).exists()
    assert not LogEntry.objects.filter(object_repr__contains=key).exists()

    # Never again: neither the list nor the change form show the key or the digest.
    for url in (changelist("agent"), reverse("admin:watcher_agent_change", args=[agent.pk])):
        page = admin_client.get(url).content.decode()
        assert key not in page
        assert agent.api_key_digest not in page
        assert agent.api_key_prefix in page


def test_the_add_form_asks_only_for_what_an_operator_knows(admin_client: Client) -> None:
    form = admin_client.get(reverse("admin:watcher_agent_add")).context["adminform"].form
    assert set(form.fields) == {"name", "is_enabled", "modem_operator"}


def test_it_rotates_keys_and_the_old_key_stops_working(admin_client: Client) -> None:
    agent, old_key = create_agent("rotating")
    asked = run_action(admin_client, "agent", "rotate_api_key", [agent.pk])
    assert "Старый ключ перестаёт работать сразу" in asked.content.decode()
    assert authenticate_key(old_key) == agent  # nothing rotated before the confirmation
    confirm = {
        "action": "rotate_api_key",
        ACTION_CHECKBOX_NAME: [str(agent.pk)],
        "rotate_token": asked.context["rotate_token"],
    }
    response = admin_client.post(changelist("agent"), confirm)
    assert response.status_code == 200
    new_keys = KEY_RE.findall(response.content.decode())
    assert len(set(new_keys)) == 1
    assert authenticate_key(old_key) is None
    assert authenticate_key(new_keys[0]) == agent
    agent.refresh_from_db()
    assert agent.api_key_rotated_at is not None

    reloaded = admin_client.post(changelist("agent"), confirm, follow=True)  # F5 on the keys page
    assert not KEY_RE.findall(reloaded.content.decode())
    assert authenticate_key(new_keys[0]) == agent  # the key just shown still works


def test_it_disables_an_agent_and_hands_its_tasks_back(
    admin_client: Client, committed: Callable[[], Any]
) -> None:
    agent, _key = create_agent("to-disable")
    task = claimed_task(agent)
    with committed():
        run_action(admin_client, "agent", "disable", [agent.pk])
    agent.refresh_from_db()
    task.refresh_from_db()
    assert agent.is_enabled is False
    assert task.status == TaskStatus.PENDING
    assert task.agent is None
    assert not semaphore.is_locked(IP, DOMAINS[task.marketplace])
    assert queues.lengths()[task.marketplace] == 1

    run_action(admin_client, "agent", "enable", [agent.pk])
    agent.refresh_from_db()
    assert agent.is_enabled is True


def test_status_badges_are_coloured(admin_client: Client) -> None:
    AgentFactory(status=AgentStatus.PANIC)
    AgentFactory(status=AgentStatus.WORKING)
    content = admin_client.get(changelist("agent")).content.decode()
    assert "background:#c62828" in content  # panic: red
    assert "background:#2e7d32" in content  # working: green
    assert "background:#8a8a8a" not in content
    AgentFactory(status=AgentStatus.OFFLINE)
    content = admin_client.get(changelist("agent")).content.decode()
    assert "background:#8a8a8a" in content  # offline: grey


# --- Tasks: requeue, cancel, generate ---------------------------------------------------------


def test_it_requeues_finished_and_running_tasks(
    admin_client: Client, committed: Callable[[], Any]
) -> None:
    agent, _key = create_agent("worker")
    running = claimed_task(agent, priority=5)
    finished = [
        TaskFactory(status=status, retry_count=3, outcome=TaskOutcome.AGENT_ERROR, error="boom")
        for status in (
            TaskStatus.FAILED,
            TaskStatus.PARSE_ERROR,
            TaskStatus.EXPIRED,
            TaskStatus.CANCELLED,
        )
    ]
    completed = TaskFactory(status=TaskStatus.COMPLETED, outcome=TaskOutcome.OK)
    assert get_redis().zscore(INFLIGHT_KEY, str(running.pk)) is not None

    with committed():
        response = run_action(
            admin_client, "task", "requeue", [running.pk, completed.pk, *(t.pk for t in finished)]
        )
    assert response.status_code == 302

    for task in [running, *finished]:
        task.refresh_from_db()
        assert task.status == TaskStatus.PENDING
        assert task.agent is None
        assert task.retry_count == 0
        assert task.outcome == ""
    completed.refresh_from_db()
    assert completed.status == TaskStatus.COMPLETED
    assert queues.lengths()[Marketplace.WILDBERRIES] == 5
    queued = get_redis().zrange(queues.queue_key(Marketplace.WILDBERRIES), 0, -1)
    assert str(running.pk) in queued
    assert str(completed.pk) not in queued
    assert get_redis().zscore(INFLIGHT_KEY, str(running.pk)) is None
    assert not semaphore.is_locked(IP, DOMAINS[running.marketplace])
    agent.refresh_from_db()
    assert agent.current_task is None
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("5" in m and "1" in m for m in messages)


def test_a_late_report_of_a_requeued_task_changes_nothing(committed: Callable[[], Any]) -> None:
    from watcher.services.operations import requeue_tasks

    agent, _key = create_agent("late")
    task = claimed_task(agent)
    with committed():
        assert requeue_tasks([task.pk]) == 1
    with pytest.raises(Conflict):
        submit_report(agent, str(task.pk), ReportInput("1 299 ₽", 10, True, None), IP)
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING


def test_it_cancels_pending_and_running_tasks(
    admin_client: Client, committed: Callable[[], Any]
) -> None:
    agent, _key = create_agent("worker")
    running = claimed_task(agent)
    pending = TaskFactory()
    queues.push([(str(pending.pk), pending.marketplace, 0)])
    failed = TaskFactory(status=TaskStatus.FAILED)
    assert queues.lengths()[Marketplace.WILDBERRIES] == 1

    with committed():
        run_action(admin_client, "task", "cancel", [running.pk, pending.pk, failed.pk])

    for task in (running, pending):
        task.refresh_from_db()
        assert task.status == TaskStatus.CANCELLED
        assert task.outcome == TaskOutcome.CANCELLED
        assert task.completed_at is not None
    failed.refresh_from_db()
    assert failed.status == TaskStatus.FAILED
    assert queues.lengths()[Marketplace.WILDBERRIES] == 0
    assert get_redis().zcard(INFLIGHT_KEY) == 0
    assert not semaphore.is_locked(IP, DOMAINS[running.marketplace])
    with pytest.raises(Conflict):
        submit_report(agent, str(running.pk), ReportInput("1 299 ₽", 10, True, None), IP)


def test_it_generates_tonights_tasks_from_the_changelist(admin_client: Client) -> None:
    sub = SubscriptionFactory(marketplace=Marketplace.OZON)
    CompetitorFactory.create_batch(2, subscription=sub)
    page = admin_client.get(changelist("task")).content.decode()
    assert reverse("admin:watcher_task_generate") in page

    assert admin_client.get(reverse("admin:watcher_task_generate")).status_code == 405
    response = admin_client.post(reverse("admin:watcher_task_generate"), follow=True)
    assert response.status_code == 200
    assert Task.objects.filter(scheduled_date=timezone.localdate()).count() == 3
    assert queues.lengths()[Marketplace.OZON] == 3
    assert any("3" in str(m) for m in response.context["messages"])

    admin_client.post(reverse("admin:watcher_task_generate"))
    assert Task.objects.count() == 3  # idempotent per night


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite runs one writer at a time")
def test_generate_now_during_a_running_generation_says_so_at_once(admin_client: Client) -> None:
    from tests.threads import held_in_another_thread
    from watcher.services import generator

    SubscriptionFactory()
    # Another run (e.g. the nightly generation, in another process) holds the lock.
    with held_in_another_thread(generator.one_generation_at_a_time):
        response = admin_client.post(reverse("admin:watcher_task_generate"), follow=True)
        assert response.status_code == 200
        assert [m.level_tag for m in response.context["messages"]] == ["warning"]
        assert not Task.objects.exists()
    admin_client.post(reverse("admin:watcher_task_generate"))
    assert Task.objects.count() == 1


def test_generating_needs_permission_and_csrf(db: None) -> None:
    staff = User.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_task"))
    client = Client()
    client.force_login(staff)
    SubscriptionFactory()
    assert client.post(reverse("admin:watcher_task_generate")).status_code == 403
    assert Task.objects.count() == 0
    page = client.get(changelist("task")).content.decode()
    assert reverse("admin:watcher_task_generate") not in page

    admin = User.objects.create_superuser("boss", password="pw")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin)
    assert strict.post(reverse("admin:watcher_task_generate")).status_code == 403
    assert Task.objects.count() == 0


def test_a_task_is_read_only_and_shows_its_reports_and_price(admin_client: Client) -> None:
    agent = AgentFactory()
    task = TaskFactory(status=TaskStatus.COMPLETED, agent=agent)
    TaskReport.objects.create(
        task=task, agent=agent, attempt=1, success=True, raw_text="x" * 50_000, timing_ms=42
    )
    PriceHistoryFactory(subscription=task.subscription, task=task, current_price=Decimal("1299"))
    response = admin_client.get(reverse("admin:watcher_task_change", args=[task.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "1299" in content
    assert "<details>" in content
    assert "x" * 50_000 not in content  # a preview, with a link to the full report
    report = TaskReport.objects.get(task=task)
    assert reverse("admin:watcher_taskreport_change", args=[report.pk]) in content
    assert 'name="_save"' not in content
    assert admin_client.get(reverse("admin:watcher_task_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:watcher_task_change", args=[task.pk]), {"status": "pending"}
        ).status_code
        == 403
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED


def test_it_finds_a_task_by_id(admin_client: Client) -> None:
    task, _other = TaskFactory(), TaskFactory()
    response = admin_client.get(changelist("task"), {"q": str(task.pk)})
    assert [t.pk for t in response.context["cl"].result_list] == [task.pk]


# --- Import and export ------------------------------------------------------------------------


def _import(client: Client, model: str, content: str | bytes, file_format: str = "0") -> Any:
    data = content.encode() if isinstance(content, str) else content
    upload = SimpleUploadedFile("data.csv", data, content_type="application/octet-stream")
    url = reverse(f"admin:watcher_{model}_import")
    preview = client.post(url, {"format": file_format, "import_file": upload, "resource": "0"})
    assert preview.status_code == 200
    confirm = preview.context.get("confirm_form")
    if confirm is None:
        return preview
    return client.post(
        reverse(f"admin:watcher_{model}_process_import"), confirm.initial, follow=True
    )


SUBSCRIPTIONS_CSV = (
    "brand,marketplace,sku,title,priority,is_active\n"
    "Nordic Home,wildberries,100500,Lamp,5,1\n"
    "Nordic Home,Ozon,200600,Chair,,да\n"
)


def test_it_imports_subscriptions_and_reimport_updates(admin_client: Client) -> None:
    _import(admin_client, "subscription", SUBSCRIPTIONS_CSV)
    assert Subscription.objects.count() == 2
    chair = Subscription.objects.get(marketplace=Marketplace.OZON, sku="200600")
    assert (chair.priority, chair.is_active) == (0, True)

    _import(admin_client, "subscription", SUBSCRIPTIONS_CSV.replace("Lamp", "Desk lamp"))
    assert Subscription.objects.count() == 2
    lamp = Subscription.objects.get(marketplace=Marketplace.WILDBERRIES, sku="100500")
    assert lamp.title == "Desk lamp"
    assert lamp.priority == 5


def test_it_imports_subscriptions_from_xlsx_with_numeric_skus(admin_client: Client) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["brand", "marketplace", "sku", "title", "priority", "is_active"])
    sheet.append(["Nordic Home", "Yandex Market", 300700, "Sofa", 2, True])
    sheet.append(["Nordic Home", "wb", 300701.0, "Rug", 1, False])
    buffer = io.BytesIO()
    workbook.save(buffer)
    _import(admin_client, "subscription", buffer.getvalue(), file_format="1")
    assert set(Subscription.objects.values_list("marketplace", "sku", "is_active")) == {
        (Marketplace.YANDEX_MARKET, "300700", True),
        (Marketplace.WILDBERRIES, "300701", False),
    }


def test_an_unknown_marketplace_is_a_row_error(admin_client: Client) -> None:
    response = _import(
        admin_client,
        "subscription",
        "brand,marketplace,sku,title\nNordic Home,aliexpress,1,Lamp\nNordic Home,wb,2,Desk\n",
    )
    assert "confirm_form" not in response.context or response.context["confirm_form"] is None
    assert "aliexpress" in response.content.decode()
    assert "wildberries, ozon, yandex_market" in response.content.decode()
    assert Subscription.objects.count() == 0


def test_it_imports_competitors_keyed_on_our_sku(admin_client: Client) -> None:
    SubscriptionFactory(marketplace=Marketplace.WILDBERRIES, sku="100500")
    SubscriptionFactory(marketplace=Marketplace.OZON, sku="100500")
    csv = (
        "marketplace,our_sku,competitor_sku,name,priority,is_active\n"
        "wildberries,100500,900001,Rival A,1,1\n"
        "ozon,100500,900001,Rival B,2,0\n"
    )
    _import(admin_client, "competitor", csv)
    _import(admin_client, "competitor", csv.replace("Rival A", "Rival A2"))
    assert Competitor.objects.count() == 2
    wb = Competitor.objects.get(subscription__marketplace=Marketplace.WILDBERRIES)
    assert wb.name == "Rival A2"
    assert Competitor.objects.get(subscription__marketplace=Marketplace.OZON).is_active is False

    result = CompetitorResource().import_data(
        tablib.Dataset(
            ["ozon", "999", "1", "Orphan", "", ""],
            headers=["marketplace", "our_sku", "competitor_sku", "name", "priority", "is_active"],
        ),
        dry_run=True,
    )
    assert result.has_validation_errors()
    exported = CompetitorResource().export().csv
    assert exported.splitlines()[0] == "marketplace,our_sku,competitor_sku,name,priority,is_active"
    assert "wildberries,100500,900001,Rival A2,1,1" in exported


def test_price_history_has_one_way_to_export(admin_client: Client) -> None:
    """The streamed downloads and actions (tests/analysts), not django-import-export's too."""
    PriceHistoryFactory.create_batch(2)
    page = admin_client.get(changelist("pricehistory")).content.decode()
    assert page.count('id="export-csv"') == page.count('id="export-xlsx"') == 1
    assert "/admin/watcher/pricehistory/export/" not in page
    assert 'value="export_admin_action"' not in page
    assert 'value="export_selected_csv"' in page and 'value="export_selected_xlsx"' in page
    assert admin_client.get("/admin/watcher/pricehistory/export/").status_code != 200


# --- Emulation settings: a singleton with validation ------------------------------------------


def test_the_emulation_changelist_opens_the_single_settings_form(admin_client: Client) -> None:
    assert not EmulationConfig.objects.exists()
    response = admin_client.get(changelist("emulationconfig"))
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "admin:watcher_emulationconfig_change", args=[EmulationConfig.SINGLETON_ID]
    )
    assert EmulationConfig.objects.count() == 1
    assert admin_client.get(reverse("admin:watcher_emulationconfig_add")).status_code == 403
    delete = reverse("admin:watcher_emulationconfig_delete", args=[EmulationConfig.SINGLETON_ID])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403


def _emulation_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "min_delay_ms": 2000,
        "max_delay_ms": 5000,
        "scroll_enabled": "on",
        "scroll_steps": 3,
        "mouse_movement": "on",
        "mouse_curve": "bezier",
        "page_view_min_ms": 3000,
        "page_view_max_ms": 8000,
        "random_order": "on",
    }
    return {**data, **overrides}


def test_emulation_min_above_max_is_a_form_error(admin_client: Client) -> None:
    config = EmulationConfig.get()
    url = reverse("admin:watcher_emulationconfig_change", args=[config.pk])
    response = admin_client.post(url, _emulation_data(min_delay_ms=9000, page_view_min_ms=9000))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "max_delay_ms" in errors
    assert "page_view_max_ms" in errors
    config.refresh_from_db()
    assert config.min_delay_ms == 2000

    response = admin_client.post(url, _emulation_data(min_delay_ms=1000, max_delay_ms=1500))
    assert response.status_code == 302
    config.refresh_from_db()
    assert (config.min_delay_ms, config.max_delay_ms) == (1000, 1500)


def test_heartbeat_age_marks_a_silent_agent(admin_client: Client) -> None:
    AgentFactory(last_heartbeat=timezone.now() - dt.timedelta(hours=1))
    content = admin_client.get(changelist("agent")).content.decode()
    assert 'style="color:#c62828"' in content


def test_every_change_page_and_tool_page_loads(admin_client: Client) -> None:
    _seed(1)
    task = Task.objects.get()
    pages = [
        reverse("admin:watcher_subscription_change", args=[task.subscription_id]),
        reverse("admin:watcher_subscription_add"),
        reverse("admin:watcher_competitor_change", args=[task.competitor_id]),
        reverse("admin:watcher_agent_change", args=[task.agent_id]),
        reverse("admin:watcher_taskreport_change", args=[TaskReport.objects.get().pk]),
        reverse("admin:watcher_pricehistory_change", args=[task.price.pk]),
        reverse("admin:watcher_subscription_import"),
        reverse("admin:watcher_competitor_import"),
        reverse("admin:watcher_subscription_export"),
        reverse("admin:index"),
    ]
    for url in pages:
        assert admin_client.get(url).status_code == 200, url
