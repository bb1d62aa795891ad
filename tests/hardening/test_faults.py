"""Faults: PostgreSQL unreachable from a web server (a wrong port): clear 503s, never a 500."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.servers import Server, server_env, start_server, stop

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
