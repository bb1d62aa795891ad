"""The live agent pages in headless Chromium against a real uvicorn process.

Skipped when /usr/bin/chromium is missing, unless WATCHER_BROWSER_TESTS=required (CI), where
a missing browser is a failure. No ORM calls while Playwright runs: its sync API keeps an event
loop running in this thread, so the database is prepared before and checked after.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.e2e.servers import BROWSER_ARGS, CHROMIUM, Server, asgi_servers
from watcher.models import AgentCommand, CommandStatus
from watcher.services import connections

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]
PASSWORD = "pw-Staff-Secret-1"
TIMEOUT_MS = 10_000


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("WATCHER_BROWSER_TESTS") == "required":
            pytest.fail(f"{CHROMIUM} is missing and WATCHER_BROWSER_TESTS=required")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browser tests skipped")
    return CHROMIUM


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with asgi_servers(1, tmp_path) as (only,):
        yield only


@contextlib.contextmanager
def open_browser(chromium: str) -> Iterator[Any]:
    """Headless Chromium; prepare the database before entering, check it after leaving."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def log_in(page: Any, server: Server, username: str, next_path: str) -> None:
    page.goto(f"{server.url}{next_path}")
    assert "/admin/login/" in page.url  # anonymous: sent to the admin login
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server.url}{next_path}")


def heartbeat(server: Server, key: str, body: dict[str, Any]) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/watcher/agents/heartbeat",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        trust_env=False,
    )
    assert response.status_code == 200, response.text


def test_staff_watch_an_agent_change_without_reloading(
    make_agent, chromium: str, server: Server
) -> None:
    User.objects.create_user("staff", password=PASSWORD, is_staff=True)
    handle = make_agent("modem-7")
    with open_browser(chromium) as browser:
        watch_the_overview(browser, server, handle)


def watch_the_overview(browser: Any, server: Server, handle: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    log_in(page, server, "staff", "/live/agents/")
    expect(page.locator("#socket-state")).to_have_attribute(
        "data-state", "live", timeout=TIMEOUT_MS
    )
    row = page.locator(f'tr[data-agent-id="{handle.id}"]')
    expect(row).to_have_attribute("data-status", "offline")

    heartbeat(
        server,
        handle.key,
        {"status": "working", "stats": {"ip": "10.9.8.7", "modem_operator": "MTS"}},
    )
    expect(row.locator('[data-field="current_ip"]')).to_have_text("10.9.8.7", timeout=TIMEOUT_MS)
    expect(row).to_have_attribute("data-status", "working")
    labels = json.loads(page.locator("#live-labels").text_content())
    expect(row.locator('[data-field="status"]')).to_have_text(labels["statuses"]["working"])
    expect(row.locator('[data-field="modem_operator"]')).to_have_text("MTS")
    expect(row.locator('[data-field="age"]')).not_to_have_text("")

    response = httpx.post(
        f"{server.url}/api/v1/watcher/agents/panic",
        json={"reason": "captcha", "details": {}},
        headers={"Authorization": f"Bearer {handle.key}"},
        trust_env=False,
    )
    assert response.status_code == 200
    expect(row).to_have_attribute("data-status", "panic", timeout=TIMEOUT_MS)

    page.close()


class FakeAgent(threading.Thread):
    """An agent's socket in a thread: ACKs every command it gets."""

    def __init__(self, server: Server, agent_id: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url = server.ws(f"/ws/watcher?agent_id={agent_id}&api_key={key}")
        self.received: list[dict[str, Any]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        with connect(self.url, proxy=None) as ws:
            while not self.stopping.is_set():
                try:
                    raw = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    return
                message = json.loads(raw)
                self.received.append(message)
                ws.send(json.dumps({"type": "ack", "command_id": message["command_id"]}))


def test_an_admin_sends_a_command_and_sees_the_ack_live(
    make_agent, chromium: str, server: Server
) -> None:
    from playwright.sync_api import expect

    User.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    handle = make_agent("modem-8")
    fake = FakeAgent(server, handle.id, handle.key)
    fake.start()
    deadline = time.monotonic() + 10
    while not connections.connected_channel(handle.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with open_browser(chromium) as browser:
            page = browser.new_page()
            log_in(page, server, "boss", f"/live/agents/{handle.id}/")
            expect(page.locator("#socket-state")).to_have_attribute(
                "data-state", "live", timeout=TIMEOUT_MS
            )
            # "stop" asks first; dismissing sends nothing.
            page.once("dialog", lambda dialog: dialog.dismiss())
            page.click('button[data-action="stop"]')
            # "reboot_modem" asks too; accepted, it goes out and the ACK shows up live.
            page.once("dialog", lambda dialog: dialog.accept())
            page.click('button[data-action="reboot_modem"]')
            expect(page.locator("#command-result")).to_have_attribute(
                "data-ok", "1", timeout=TIMEOUT_MS
            )
            history = page.locator("#command-history tbody tr")
            expect(history).to_have_count(1, timeout=TIMEOUT_MS)
            expect(history.first).to_have_attribute("data-status", "acked", timeout=TIMEOUT_MS)
            # "pause" needs no confirmation.
            page.click('button[data-action="pause"]')
            expect(history).to_have_count(2, timeout=TIMEOUT_MS)
            expect(history.first).to_have_attribute("data-status", "acked", timeout=TIMEOUT_MS)
            # A "sent" event that arrives after the ACK's does not take the row back; a marker
            # event sent after it shows it was handled.
            acked_id = history.first.get_attribute("data-command-id")
            late_sent_then_marker(handle.id, acked_id)
            expect(history).to_have_count(3, timeout=TIMEOUT_MS)
            row = page.locator(f'#command-history tr[data-command-id="{acked_id}"]')
            expect(row).to_have_attribute("data-status", "acked")
            page.close()
    finally:
        fake.stopping.set()
        fake.join(5)
    assert [m["action"] for m in fake.received] == ["reboot_modem", "pause"]
    assert sorted(AgentCommand.objects.values_list("action", "status")) == [
        ("pause", CommandStatus.ACKED),
        ("reboot_modem", CommandStatus.ACKED),
    ]


def late_sent_then_marker(agent_id: str, command_id: str) -> None:
    """Live events as the server sends them, from a thread of their own (sync sends refuse a
    thread with a running event loop, and Playwright's sync API keeps one in this thread)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from watcher.services.events import LIVE_AGENTS_GROUP

    def row(pk: str, status: str) -> dict[str, Any]:
        return {
            "id": pk,
            "agent_id": agent_id,
            "action": "pause",
            "params": {},
            "status": status,
            "ack_status": "",
            "attempts": 1,
            "sent_by": "boss",
            "created_at": "2026-12-01T10:00:00+00:00",
            "sent_at": "2026-12-01T10:00:00+00:00",
            "acked_at": None,
            "timeout_at": None,
        }

    def send() -> None:
        layer = get_channel_layer()
        for pk in (command_id, "00000000-0000-4000-8000-000000000001"):
            event = {"type": "live.command", "event": "sent", "command": row(pk, "sent")}
            async_to_sync(layer.group_send)(LIVE_AGENTS_GROUP, event)

    thread = threading.Thread(target=send)
    thread.start()
    thread.join(10)


def test_non_staff_get_no_page_and_no_socket(chromium: str, server: Server) -> None:
    plain = User.objects.create_user("plain", password=PASSWORD)
    client = Client()
    client.force_login(plain)
    session = client.cookies["sessionid"].value
    with open_browser(chromium) as browser:
        refused_everything(browser, server, session)


def refused_everything(browser: Any, server: Server, session: str) -> None:
    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": session, "url": server.url}])
    page = context.new_page()
    response = page.goto(f"{server.url}/live/agents/")
    assert response is not None and response.status == 403
    code = page.evaluate(
        """() => new Promise((resolve) => {
            const ws = new WebSocket(`ws://${location.host}/ws/live/agents`);
            ws.onclose = (event) => resolve(event.code);
        })"""
    )
    assert code == 4003
    context.close()
    anonymous = browser.new_page()
    anonymous.goto(f"{server.url}/live/agents/")
    assert "/admin/login/" in anonymous.url
    anonymous.close()
