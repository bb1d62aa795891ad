"""Faults: PostgreSQL unreachable from a web server (a wrong port, a proxy cut while it runs):
clear 503s, never a 500, and recovery without a restart."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import websockets
from django.conf import settings
from django.contrib.auth.models import User
from django.db import OperationalError
from django.test import Client
from websockets.exceptions import ConnectionClosed

from tests.e2e.servers import (
    Server,
    server_env,
    shared_database_url,
    start_server,
    stop,
    wait_ready,
)
from tests.hardening.tcpproxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)


def first_answer(server: Server, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{server.log()}")
        try:
            return httpx.get(f"{server.url}/api/v1/watcher/health", timeout=10, trust_env=False)
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer in {timeout} s:\n{server.log()}")


async def close_code(url: str, headers: dict[str, str]) -> int | None:
    """Open a socket and wait: the code it is closed with (None: still open after 3 s)."""
    async with websockets.connect(url, additional_headers=headers, proxy=None) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 3)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None
    return None


def test_an_unreachable_database_gives_clear_503s(tmp_path, agent) -> None:
    # Port 9 (discard) on loopback: nothing listens there, every connection is refused.
    env = server_env(
        DATABASE_URL="postgres://postgres@127.0.0.1:9/watcher_nowhere", DATABASE_POOL_TIMEOUT="2"
    )
    server = start_server(tmp_path / "server.log", env)
    try:
        health = first_answer(server)
        assert health.status_code == 503
        assert health.json()["checks"]["postgresql"] == "error"
        with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
            bearer = {"Authorization": f"Bearer {agent.key}"}
            for method, path, body in (
                ("GET", "/api/v1/watcher/tasks/next", None),
                ("POST", "/api/v1/watcher/agents/heartbeat", {"status": "ready"}),
                ("POST", "/api/v1/auth/token", {"username": "a", "password": "b"}),
            ):
                response = client.request(method, path, json=body, headers=bearer)
                assert response.status_code == 503, (path, response.text[:300])
                assert response.json()["code"] == "unavailable"
    finally:
        stop(server)
    assert "Traceback" not in server.log()


def test_a_database_cut_gives_503_pages_and_json_and_recovers_by_itself(tmp_path, agent) -> None:
    """PostgreSQL vanishes behind a proxy while the server runs: the admin, the live pages and
    the API answer 503 (a translated page, JSON under /api/), sockets are closed with 1013,
    never a 500; once it is back the same pages and sockets answer again, with no restart."""
    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        pytest.skip("the proxy stands between the app and PostgreSQL")
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    staff = User.objects.create_superuser("night-admin", "a@example.com", "pw-Secret-cut-1")
    browser = Client()
    browser.force_login(staff)
    cookies = {settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value}
    url = shared_database_url().replace(f":{db.get('PORT') or 5432}/", f":{proxy.port}/", 1)
    server = start_server(
        tmp_path / "server.log", server_env(DATABASE_URL=url, DATABASE_POOL_TIMEOUT="2")
    )
    pages = ("/admin/", "/admin/watcher/task/", "/live/agents/", "/office/", "/analytics/")
    bearer = {"Authorization": f"Bearer {agent.key}"}
    try:
        wait_ready(server)
        with httpx.Client(base_url=server.url, timeout=30, trust_env=False, cookies=cookies) as web:
            assert web.get("/admin/").status_code == 200  # the session works through the proxy
            proxy.cut()
            for page in pages:
                response = web.get(page)
                assert response.status_code == 503, (page, response.text[:300])
                assert response.headers["content-type"].startswith("text/html")
                assert response.headers["Retry-After"] == "30"
                assert "Временно недоступно" in response.text, page
            for method, path, headers in (
                ("GET", "/api/v1/watcher/tasks/next", bearer),
                ("GET", "/api/v1/watcher/agents", {}),  # staff session
                ("GET", "/api/v1/watcher/health", {}),
            ):
                response = web.request(method, path, headers=headers)
                assert response.status_code == 503, (path, response.text[:300])
                assert response.headers["content-type"] == "application/json"
            assert web.get("/api/v1/watcher/tasks/next", headers=bearer).json()["code"] == (
                "unavailable"
            )
            # Sockets: closed with 1013 (try again later), not a 500 at the handshake.
            cookie = f"{settings.SESSION_COOKIE_NAME}={cookies[settings.SESSION_COOKIE_NAME]}"
            browser_headers = {"Origin": server.url, "Cookie": cookie}
            assert asyncio.run(close_code(server.ws("/ws/watcher"), bearer)) == 1013
            assert asyncio.run(close_code(server.ws("/ws/live/agents"), browser_headers)) == 1013

            proxy.restore()
            seen: list[int] = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                seen.append(web.get("/admin/").status_code)
                if seen[-1] == 200:
                    break
                time.sleep(0.3)
            assert seen[-1] == 200 and set(seen) <= {200, 503}, seen
            for page in pages:
                assert web.get(page).status_code == 200, page
            assert web.get("/api/v1/watcher/tasks/next", headers=bearer).status_code == 204
            assert asyncio.run(close_code(server.ws("/ws/watcher"), bearer)) is None
            assert asyncio.run(close_code(server.ws("/ws/live/agents"), browser_headers)) is None
    finally:
        stop(server)
        proxy.close()
    assert "Traceback" not in server.log(), server.log()


class DatabaseGoneMiddleware:
    """Stands for a middleware that meets the outage itself (a session saved on the way out)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        raise OperationalError("connection refused")


@pytest.mark.parametrize(
    ("path", "kind"), [("/admin/", "text/html"), ("/api/v1/watcher/tasks/next", "application/json")]
)
def test_an_outage_met_in_a_middleware_is_a_503_too(settings, path: str, kind: str) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.DatabaseGoneMiddleware"]
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code == 503
    assert response["Content-Type"].startswith(kind)
    assert response["Retry-After"] == "30"
