"""The Office dashboard in headless Chromium against a real uvicorn process: a module reports
through the REST API and the staff's open page shows it without reloading.

Screenshots (laptop and phone) are saved in the test's tmp_path for review. No ORM calls while
Playwright runs (its sync API keeps an event loop in this thread): the database is prepared
before and checked after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User

from office.models import OfficeAgentStatus
from office.services.keys import create_module_key
from tests.e2e.servers import Server, asgi_servers
from tests.e2e.test_live_browser import PASSWORD, TIMEOUT_MS, chromium, log_in, open_browser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]
__all__ = ["chromium"]  # the fixture


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with asgi_servers(1, tmp_path) as (only,):
        yield only


def report(server: Server, key: str, body: dict[str, object]) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/office/status",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        trust_env=False,
    )
    assert response.status_code == 200, response.text


def test_staff_see_an_agents_status_change_without_reloading(
    chromium: str, server: Server, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    User.objects.create_user("staff", password=PASSWORD, is_staff=True)
    _row, key = create_module_key("reputation")
    with open_browser(chromium) as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="ru-RU")
        log_in(page, server, "staff", "/office/")
        expect(page.locator("#socket-state")).to_have_attribute(
            "data-state", "live", timeout=TIMEOUT_MS
        )
        labels = json.loads(page.locator("#office-labels").text_content())
        card = page.locator('article.agent[data-agent-id="reputation_wb"]')
        expect(card).to_have_attribute("data-status", "offline")
        expect(card.locator('[data-field="status"]')).to_have_text(labels["statuses"]["offline"])
        headline = page.locator("#office-headline")
        expect(headline).to_have_text("14 виртуальных сотрудников заменяют 840\xa0000 ₽ в месяц")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        report(
            server,
            key,
            {
                "agent_id": "reputation_wb",
                "department": "reputation",
                "name": "Отзывы на Wildberries",
                "status": "working",
                "task": "Отвечаю на 12 отзывов",
                "metrics": {"answered": 3},
            },
        )
        expect(card).to_have_attribute("data-status", "ok", timeout=TIMEOUT_MS)
        expect(card.locator('[data-field="task"]')).to_have_text("Отвечаю на 12 отзывов")
        expect(card.locator('[data-field="status"]')).to_have_text(labels["statuses"]["ok"])
        expect(card.locator('[data-field="metrics"]')).to_contain_text("answered")

        # A new agent of the module appears in its department, and the totals follow.
        report(
            server,
            key,
            {
                "agent_id": "reputation_avito",
                "department": "reputation",
                "name": "Отзывы на Авито",
                "status": "error",
                "message": "нет доступа",
                "salary_equivalent": 90000,
            },
        )
        new_card = page.locator(
            'section[data-department="reputation"] article[data-agent-id="reputation_avito"]'
        )
        expect(new_card).to_have_attribute("data-status", "error", timeout=TIMEOUT_MS)
        expect(new_card.locator('[data-field="task"]')).to_have_text("Ошибка: нет доступа")
        expect(headline).to_have_text("15 виртуальных сотрудников заменяют 930\xa0000 ₽ в месяц")
        expect(
            page.locator('section[data-department="reputation"] [data-field="totals"]')
        ).to_have_text("4 агента · ставок: 4 · 270\xa0000 ₽ в месяц")
        assert page.evaluate("window.__sameDocument") is True
        page.screenshot(path=str(tmp_path / "office-laptop.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366

        # A phone: one column, nothing wider than the screen.
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(200)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(tmp_path / "office-phone.png"), full_page=True)
        page.close()

    assert (tmp_path / "office-laptop.png").stat().st_size > 0
    assert (tmp_path / "office-phone.png").stat().st_size > 0
    assert OfficeAgentStatus.objects.get(agent_id="reputation_wb").task == "Отвечаю на 12 отзывов"
