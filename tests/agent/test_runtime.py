"""The agent's runtime against the fake marketplace and a stand-in for the Watcher API.

The stand-in is a real HTTP server on loopback that answers as the server's contract says
(README, "Agent API") and can be told to fail, which the real server cannot be made to do on
demand; the real server is in tests/e2e/test_agent_loop.py. It has no WebSocket, so the agent's
command socket keeps reconnecting in the background, as it would with the server away.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from watcher.agent.config import load_config
from watcher.agent.runtime import AgentRuntime

TASK_URLS = {
    "ozon": "https://www.ozon.ru/product/{sku}/",
    "wildberries": "https://www.wildberries.ru/catalog/{sku}/detail.aspx",
}


class StubApi:
    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []
        self.report_codes: list[int] = []  # answers to the next reports, then 200
        self.reports: list[tuple[str, dict[str, Any], int]] = []
        self.panics: list[dict[str, Any]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def add_task(self, mp: str, sku: str, lease: int = 1) -> str:
        task_id = f"00000000-0000-0000-0000-{len(self.tasks) + 1:012d}"
        self.tasks.append(
            {"id": task_id, "url": TASK_URLS[mp].format(sku=sku), "marketplace": mp, "sku": sku,
             "competitor_id": None, "priority": 1, "created_at": "2026-12-01T20:30:00+03:00",
             "lease_version": lease}
        )  # fmt: skip
        return task_id


def stub_handler(api: StubApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, code: int, payload: Any = None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            assert self.headers["Authorization"] == "Bearer wa_test"
            if self.path.endswith("/tasks/next"):
                with api.lock:
                    task = api.tasks.pop(0) if api.tasks else None
                return self._answer(200, task) if task else self._answer(204)
            if self.path.endswith("/config/emulation"):
                zero = dict.fromkeys(
                    ("min_delay_ms", "max_delay_ms", "page_view_min_ms", "page_view_max_ms"), 0
                )
                return self._answer(200, zero)
            return self._answer(404, {"detail": "Not found."})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
            with api.lock:
                if "/report" in self.path:
                    code = api.report_codes.pop(0) if api.report_codes else 200
                    api.reports.append((self.path.split("/")[-2], body, code))
                    return self._answer(code, {"detail": "x"} if code != 200 else {"status": "ok"})
                if self.path.endswith("/panic"):
                    api.panics.append(body)
                elif self.path.endswith("/heartbeat"):
                    api.heartbeats.append(body)
            return self._answer(200, {"status": "ok"})

    return Handler


@pytest.fixture
def api() -> Iterator[tuple[StubApi, str]]:
    stub = StubApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), stub_handler(stub))
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield stub, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def runtime(server: str, market: str, state: Path, **extra: Any) -> AgentRuntime:
    settings = {
        "server": server, "api_key": "wa_test", "fast": True, "state_dir": str(state),
        "sites": [f"{mp}={market}/{mp}" for mp in TASK_URLS], "idle_exit": 0.3,
        "poll_interval": 0.05, "heartbeat_interval": 0.2, "ip": "10.0.0.9", **extra,
    }  # fmt: skip
    return AgentRuntime(load_config(settings, environ={}))


async def run_until(agent: AgentRuntime, condition: Any, timeout: float = 10) -> None:
    """Run the agent (watch mode) until ``condition()``, then tell it to stop."""
    work = asyncio.create_task(agent.run("watch"))
    for _ in range(int(timeout / 0.02)):
        if condition() or work.done():
            break
        await asyncio.sleep(0.02)
    await agent.execute("stop", {})
    assert await asyncio.wait_for(work, 10) == 0


def test_run_reports_every_page_and_exits_when_the_server_has_no_task(
    api: tuple[StubApi, str], marketplace: str, tmp_path: Path
) -> None:
    stub, url = api
    first = stub.add_task("ozon", "1093847562", lease=4)
    gone = stub.add_task("wildberries", "98347261")  # a "not found" page
    assert asyncio.run(runtime(url, marketplace, tmp_path).run("run")) == 0
    reports = {task: body for task, body, _code in stub.reports}
    assert reports[first]["success"] is True and reports[first]["lease_version"] == 4
    assert "Плед флисовый" in reports[first]["raw_text"]
    assert "<" not in reports[first]["raw_text"]  # visible text, not HTML
    assert reports[gone]["success"] is True and "Такой страницы нет" in reports[gone]["raw_text"]
    assert stub.heartbeats[-1]["status"] == "offline"
    assert stub.heartbeats[0]["stats"]["ip"] == "10.0.0.9"
    assert not list((tmp_path / "outbox").iterdir())


def test_an_undelivered_report_waits_in_the_outbox_until_accepted_or_refused(
    api: tuple[StubApi, str], marketplace: str, tmp_path: Path
) -> None:
    stub, url = api
    kept = stub.add_task("ozon", "1093847562")
    stub.report_codes = [503, 502]
    agent = runtime(url, marketplace, tmp_path)
    # The server fails twice; the outbox loop retries until it accepts.
    outbox = tmp_path / "outbox"
    # The server records the report before the agent hears the 200 and empties its outbox.
    asyncio.run(
        run_until(
            agent,
            lambda: any(c == 200 for _t, _b, c in stub.reports) and not list(outbox.iterdir()),
        )
    )
    assert [(t, c) for t, _b, c in stub.reports] == [(kept, 503), (kept, 502), (kept, 200)]
    assert not list(outbox.iterdir())

    # A report left from an earlier run (a crash) goes first; a 409 drops it for good.
    agent = runtime(url, marketplace, tmp_path)
    agent.outbox.put("00000000-0000-0000-0000-000000000099", {"raw_text": "", "timing_ms": 1,
                     "success": False, "error": "x", "lease_version": 2})  # fmt: skip
    stub.report_codes = [409]
    stub.reports.clear()
    assert asyncio.run(agent.run("run")) == 0
    assert [(t[-2:], c) for t, _b, c in stub.reports] == [("99", 409)]
    assert not list((tmp_path / "outbox").iterdir())


def test_a_captcha_page_is_reported_then_the_agent_panics_until_resumed(
    api: tuple[StubApi, str], marketplace: str, tmp_path: Path
) -> None:
    stub, url = api
    httpx.post(f"{marketplace}/_control", json={"marketplace": "ozon", "mode": "captcha"})
    blocked = stub.add_task("ozon", "1093847562")
    later = stub.add_task("wildberries", "176308673")
    agent = runtime(url, marketplace, tmp_path)
    asyncio.run(run_until(agent, lambda: stub.panics and agent.status == "panic"))
    assert [t for t, _b, _c in stub.reports] == [blocked]
    assert "не робот" in stub.reports[0][1]["raw_text"]  # the server records a blocked page
    assert stub.panics[0]["reason"] == "captcha" and stub.panics[0]["details"]["ip"] == "10.0.0.9"
    assert stub.tasks and stub.tasks[0]["id"] == later  # no task taken while panicking

    # Panic is saved state: after a restart the agent still waits for `resume`.
    agent = runtime(url, marketplace, tmp_path)

    async def restart_then_resume() -> None:
        work = asyncio.create_task(agent.run("watch"))
        await asyncio.sleep(0.5)
        assert stub.tasks and agent.status == "panic"
        assert await agent.execute("resume", {}) == "ok"
        for _ in range(200):
            if not stub.tasks and not len(agent.outbox):
                break
            await asyncio.sleep(0.02)
        await agent.execute("stop", {})
        await work

    asyncio.run(restart_then_resume())
    assert [t for t, _b, _c in stub.reports][-1] == later


def test_a_burst_of_403s_is_retried_on_another_exit_then_panics(
    api: tuple[StubApi, str], marketplace: str, tmp_path: Path
) -> None:
    stub, url = api
    httpx.post(f"{marketplace}/_control", json={"mode": "403"})
    task = stub.add_task("wildberries", "176308673")
    agent = runtime(url, marketplace, tmp_path, retry_fast=[1.0, 1.0], retry_long=[1.0])
    asyncio.run(run_until(agent, lambda: stub.panics))
    assert httpx.get(f"{marketplace}/_control").json()["hits"]["wildberries"] == 3
    (task_id, body, _code), = stub.reports  # fmt: skip
    assert task_id == task and body["success"] is False and "http_403" in body["error"]
    assert stub.panics[0]["reason"] == "3 HTTP 403 within 300 s"
    assert agent.pool.bad_count() == 1  # the one exit, after two consecutive problems


@pytest.mark.parametrize(("hook", "ack"), [("true", "ok"), ("exit 3", "error"), (None, "ok")])
def test_commands_run_the_configured_hook_and_ack_its_outcome(
    api: tuple[StubApi, str], tmp_path: Path, hook: str | None, ack: str
) -> None:
    _stub, url = api
    marker = tmp_path / "rebooted"
    hooks = {"reboot_modem": f'echo "$WATCHER_AGENT_PARAMS" > {marker}; {hook}'} if hook else {}
    agent = runtime(url, "http://127.0.0.1:9", tmp_path, hooks=hooks)

    async def commands() -> list[str]:
        return [
            await agent.execute("reboot_modem", {"why": "test"}),
            await agent.execute("refresh_cookies", {}),
            await agent.execute("reload_config", {}),
            await agent.execute("dance", {}),
        ]

    assert asyncio.run(commands()) == [ack, "ok", "ok", "unknown_command"]
    assert (marker.read_text().strip() == '{"why": "test"}') if hook else not marker.exists()


def test_sigterm_finishes_the_current_task_then_exits(
    api: tuple[StubApi, str], marketplace: str, tmp_path: Path
) -> None:
    stub, url = api
    httpx.post(f"{marketplace}/_control", json={"delay_ms": 400})
    task = stub.add_task("ozon", "1093847562")
    stub.add_task("ozon", "1523647789")
    agent = runtime(url, marketplace, tmp_path)

    async def terminate_mid_task() -> int:
        work = asyncio.create_task(agent.run("watch"))
        while agent.current_task is None:
            await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the agent's event loop
        return await asyncio.wait_for(work, 10)

    assert asyncio.run(terminate_mid_task()) == 0
    assert [(t, b["success"]) for t, b, _c in stub.reports] == [(task, True)]
    assert len(stub.tasks) == 1  # the next one was not taken


def test_a_socket_closed_at_once_is_retried_with_a_growing_backoff(
    marketplace: str, tmp_path: Path
) -> None:
    """A server that accepts the socket and closes it at once (1013 while its database is
    down) is not reconnected to every second: the backoff keeps growing."""
    import time

    import websockets

    opened: list[float] = []

    async def try_again_later(ws: Any) -> None:
        opened.append(time.monotonic())
        await ws.close(code=1013)

    async def scenario() -> None:
        async with websockets.serve(try_again_later, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            agent = runtime(f"http://127.0.0.1:{port}", marketplace, tmp_path)
            loop = asyncio.create_task(agent.socket_loop())
            await asyncio.sleep(4.5)
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
            await agent.api.aclose()

    asyncio.run(scenario())
    gaps = [later - earlier for earlier, later in itertools.pairwise(opened)]
    assert len(gaps) >= 2, opened
    assert gaps[0] >= 0.7 and gaps[1] >= 1.5, gaps  # ~1 s, then ~2 s (not ~1 s again)
