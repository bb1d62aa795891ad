"""An operator's first hour in Russian, in headless Chromium against a real server.

Log in, add a subscription with a competitor, import a Windows-1251 ``;`` CSV with one bad row
(then without it), generate tonight's tasks, create an agent, archive a subscription that has
price history. Full-page screenshots at 1366×768 and 390×844 are saved under the test's tmp dir
(``screens/``) for review; list pages must not scroll sideways at either width.
No ORM calls while Playwright runs (its sync API keeps an event loop in this thread).
"""

from __future__ import annotations

import csv
import io
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User

from tests.e2e.servers import BROWSER_ARGS, CHROMIUM, asgi_servers
from tests.factories import (
    AgentFactory,
    AlertFactory,
    CompetitorFactory,
    DeliveryFactory,
    PriceHistoryFactory,
    SubscriptionFactory,
)
from watcher.models import Agent, Competitor, PanicBlock, Subscription, Task
from watcher.services import agents

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]
PASSWORD = "pw-Operator-Secret-1"
TIMEOUT_MS = 15_000
PAGE_OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
SIZES = {"laptop": (1366, 768), "phone": (390, 844)}
LIST_PAGES = {
    "subscriptions": "/admin/watcher/subscription/",
    "competitors": "/admin/watcher/competitor/",
    "tasks": "/admin/watcher/task/",
    "prices": "/admin/watcher/pricehistory/",
    "agents": "/admin/watcher/agent/",
    "ip-blocks": "/admin/watcher/panicblock/",
    "alert-rules": "/admin/alerts/alertrule/",
    "alerts": "/admin/alerts/alert/",
    "deliveries": "/admin/alerts/delivery/",
    "office-agents": "/admin/office/officeagentstatus/",
    "periodic-tasks": "/admin/django_celery_beat/periodictask/",
    "index": "/admin/",
    "live": "/live/agents/",
}


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("WATCHER_BROWSER_TESTS") == "required":
            pytest.fail(f"{CHROMIUM} is missing and WATCHER_BROWSER_TESTS=required")
        pytest.skip(f"{CHROMIUM} is missing; browser tests skipped")
    return CHROMIUM


def cp1251_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Бренд", "Маркетплейс", "Артикул", "Название товара", "Приоритет"])
    writer.writerow(["Северный дом", "Озон", "5550001", "Плед «Уют»", "1,0"])
    writer.writerow(["Северный дом", "Яндекс Маркет", "5550002", "Подушка", "0"])
    writer.writerow(["Северный дом", "Озон", "ОЗ-БРАК", "Ошибка", "0"])
    return out.getvalue().encode("cp1251")


def overflow(page: Any) -> int:
    """How many pixels the page, or a list's table in its box, scrolls sideways (0: it fits)."""
    return int(
        page.evaluate(
            """() => Math.max(
                document.documentElement.scrollWidth - document.documentElement.clientWidth,
                ...[...document.querySelectorAll('#changelist .results')].map(
                    (box) => box.scrollWidth - box.clientWidth))"""
        )
    )


def test_an_operators_first_hour_in_russian(chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    User.objects.create_superuser("operator", "op@example.com", PASSWORD)
    archived = SubscriptionFactory(brand="Старый бренд", sku="4440001")
    PriceHistoryFactory(subscription=archived, sku=archived.sku)
    # An agent that panicked twice (two IPs blocked), for the live page's clear/unblock step.
    stuck = AgentFactory(name="бот-паника")
    agents.enter_panic(stuck, "капча на Ozon", {}, "10.9.9.1")
    agents.enter_panic(stuck, "403 подряд", {}, "10.9.9.2")
    # A held, suspicious dumping alert with long names and its failed delivery, for the widths.
    alert = AlertFactory(
        competitor=CompetitorFactory(subscription=archived, competitor_sku="4440002"),
        our_price=Decimal("123456.78"), their_price=Decimal("98765.43"),
        difference_rub=Decimal("-24691.35"), difference_pct=Decimal("-20.00"),
        suspicious=True, hold="agents_offline",
    )  # fmt: skip
    DeliveryFactory(
        channel__name="Вебхук отдела цен", alert=alert, status="failed", attempts=5,
        last_error="HTTP 502 Bad Gateway from the receiver after five attempts with backoff " * 3,
    )  # fmt: skip
    screens = tmp_path / "screens"
    screens.mkdir()
    wrong_overflow: list[str] = []

    with asgi_servers(1, tmp_path) as (server, *_), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        context = browser.new_context(locale="ru-RU", viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("dialog", lambda dialog: dialog.accept())
        url = server.url

        # Log in.
        page.goto(f"{url}/admin/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{url}/admin/")
        assert page.locator("html").get_attribute("lang") == "ru"

        # A subscription with a competitor.
        page.goto(f"{url}/admin/watcher/subscription/add/")
        assert page.locator("h1").inner_text() == "Добавить подписку"
        page.fill("#id_brand", "Северный дом")
        page.select_option("#id_marketplace", "wildberries")
        page.fill("#id_sku", "123456789")
        page.fill("#id_competitors-0-competitor_sku", "987654321")
        page.fill("#id_competitors-0-name", "Соседи")
        page.click("input[name=_save]")
        page.wait_for_url(f"{url}/admin/watcher/subscription/")
        assert "Добавлено (подписка)" in page.locator(".messagelist").inner_text()

        # Import a Windows-1251 CSV with one bad row: explained, nothing imported ...
        page.goto(f"{url}/admin/watcher/subscription/import/")
        page.set_input_files(
            "#id_import_file",
            {"name": "каталог.csv", "mimeType": "text/csv", "buffer": cp1251_csv()},
        )
        page.select_option("#id_format", index=1)  # the first real choice: csv
        page.click("input[type=submit]")
        errors = page.locator(".import-row-errors").inner_text()
        assert "«ОЗ-БРАК» — не артикул." in errors
        page.screenshot(path=screens / "import-errors-laptop.png", full_page=True)
        # ... then the corrected file goes in.
        fixed = cp1251_csv().rsplit(b"\r\n", 2)[0] + b"\r\n"
        page.set_input_files(
            "#id_import_file", {"name": "каталог.csv", "mimeType": "text/csv", "buffer": fixed}
        )
        page.select_option("#id_format", index=1)
        page.click("input[type=submit]")
        page.click("input[name=confirm]")
        page.wait_for_url(f"{url}/admin/watcher/subscription/")
        assert "Импорт завершён: новых — 2" in page.locator(".messagelist").inner_text()

        # Tonight's tasks.
        page.goto(f"{url}/admin/watcher/task/")
        page.click("text=Сформировать задачи на ночь")
        page.wait_for_selector(".messagelist")
        assert "задачи на ночь" in page.locator(".messagelist").inner_text().lower()

        # An agent: its key shown once.
        page.goto(f"{url}/admin/watcher/agent/add/")
        assert page.locator("h1").inner_text() == "Добавить агента"
        page.fill("#id_name", "бот-1")
        page.click("input[name=_save]")
        assert "wa_" in page.content()
        assert page.locator("button.watcher-copy").count() == 2  # the agent id and the key
        page.screenshot(path=screens / "agent-key-laptop.png", full_page=True)

        # The live pages: a summary, and no command for an agent that is not connected.
        page.goto(f"{url}/live/agents/")
        summary = page.locator("#agents-summary")
        summary.locator("[data-count=offline] b", has_text="2").wait_for()
        page.click("text=бот-1")
        page.wait_for_selector("#agent-card")
        pause = page.locator("button[data-action=pause]")
        assert pause.is_disabled()
        assert "не подключён" in (pause.get_attribute("title") or "")
        assert page.locator("#command-hint").is_visible()
        assert page.locator("button[data-action=resume]").is_hidden()  # not paused
        assert page.locator("#agent-id").inner_text().count("-") == 4  # the UUID, to copy
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=screens / "live-agent-phone.png", full_page=True)
        if page.evaluate(PAGE_OVERFLOW) > 0:
            wrong_overflow.append("live agent page at 390px")
        page.set_viewport_size({"width": 1366, "height": 768})

        # A panic: its reason shown; one IP unblocked, then the panic cleared (each confirmed;
        # the blocks table follows over the live socket).
        page.goto(f"{url}/live/agents/")
        page.click("text=бот-паника")
        page.wait_for_selector("#agent-card")
        page.locator("#socket-state[data-state=live]").wait_for()
        assert "403 подряд" in page.locator(".panic-reason").inner_text()
        rows = page.locator("#ip-blocks tbody tr")
        assert rows.count() == 2
        page.screenshot(path=screens / "live-panic-laptop.png", full_page=True)
        rows.filter(has_text="10.9.9.1").locator("button", has_text="Разблокировать").click()
        page.locator("#panic-result", has_text="IP 10.9.9.1 разблокирован").wait_for()
        page.locator("#ip-blocks tbody tr").filter(has_text="10.9.9.1").wait_for(state="detached")
        assert rows.count() == 1
        page.click("#clear-panic")
        page.locator("#panic-result", has_text="Паника снята").wait_for()
        assert "не подключён" in page.locator("#panic-result").inner_text()
        page.locator("#ip-blocks-empty").wait_for(state="visible")
        assert rows.count() == 0
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=screens / "live-panic-phone.png", full_page=True)
        if page.evaluate(PAGE_OVERFLOW) > 0:
            wrong_overflow.append("live panic page at 390px")
        page.set_viewport_size({"width": 1366, "height": 768})

        # Archive the subscription that has history.
        page.goto(f"{url}/admin/watcher/subscription/{archived.pk}/delete/")
        assert "есть история цен (1 замер цены)" in page.content()
        page.screenshot(path=screens / "delete-offers-archive-laptop.png", full_page=True)
        page.click("input[value='Архивировать']")
        page.wait_for_url(f"{url}/admin/watcher/subscription/")
        assert "Отправлено в архив" in page.locator(".messagelist").inner_text()

        # Every list at both sizes: screenshots for review, no sideways scrolling.
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            for name, path in LIST_PAGES.items():
                page.goto(f"{url}{path}")
                page.screenshot(path=screens / f"{name}-{size}.png", full_page=True)
                # Lists fit a laptop without hidden columns; on a phone the admin's tables
                # scroll in their own box, but the page itself must not.
                too_wide = overflow(page) if size == "laptop" else page.evaluate(PAGE_OVERFLOW)
                if too_wide > 0:
                    wrong_overflow.append(f"{name} at {width}px: {too_wide}px too wide")
        browser.close()

    print(f"screenshots in {screens}")
    assert not wrong_overflow, wrong_overflow
    assert Subscription.objects.filter(sku__in=["5550001", "5550002"]).count() == 2
    assert Competitor.objects.filter(competitor_sku="987654321").exists()
    assert Task.objects.exists()
    assert Agent.objects.filter(name="бот-1").exists()
    archived.refresh_from_db()
    assert archived.archived_at is not None
    assert archived.prices.count() == 1
    assert not PanicBlock.objects.exists()
    entries = LogEntry.objects.filter(object_id=str(stuck.pk)).order_by("action_time")
    assert [e.user.username for e in entries] == ["operator", "operator"]
