"""Body limits per endpoint, enforced while the web server reads the body, auth first."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from config.asgi import application
from tests.factories import TaskFactory
from watcher.models import Agent

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"
MB = 1024 * 1024


def post(path: str, chunks: int, chunk: bytes, headers: list[tuple[bytes, bytes]]):
    """POST through the ASGI app; returns (status, JSON body, how many chunks it read)."""
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": read < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "root_path": "", "query_string": b"", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    asyncio.run(application(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(body), read


def headers(key: str | None, length: int | None) -> list[tuple[bytes, bytes]]:
    result = [(b"content-type", b"application/json"), (b"host", b"testserver")]
    if length is not None:
        result.append((b"content-length", str(length).encode()))
    else:
        result.append((b"transfer-encoding", b"chunked"))
    if key:
        result.append((b"authorization", f"Bearer {key}".encode()))
    return result


def test_a_50_mb_heartbeat_is_refused_before_its_body_is_read(agent) -> None:
    status, body, read = post(f"{API}/agents/heartbeat", 50, b"x" * MB, headers(agent.key, 50 * MB))
    assert status == 413 and body["code"] == "too_large"
    assert read == 0
    assert Agent.objects.get(pk=agent.id).last_heartbeat is None


def test_a_chunked_heartbeat_is_cut_off_once_past_the_limit(agent) -> None:
    status, _, read = post(
        f"{API}/agents/heartbeat", 50, b"x" * 32 * 1024, headers(agent.key, None)
    )
    assert status == 413
    assert read == 3  # 96 KB read, then refused: not all of the 1.6 MB


def test_an_unauthenticated_large_report_is_refused_unread(agent) -> None:
    task = TaskFactory(agent=agent.agent, status="in_progress")
    path = f"{API}/tasks/{task.pk}/report"
    status, _, read = post(path, 4, b"x" * MB, headers("wa_" + "x" * 43, 4 * MB))
    assert (status, read) == (401, 0)
    status, _, read = post(path, 4, b"x" * MB, headers(None, None))
    assert (status, read) == (401, 0)
    status, _, read = post(path, 400, b"x" * MB, headers(None, 400 * MB))
    assert status in (401, 413) and read == 0


def test_an_agents_large_report_is_read_and_answered_by_the_view(agent) -> None:
    task = TaskFactory(agent=agent.agent, status="in_progress")
    raw = json.dumps({"raw_text": "x" * (MB // 2), "timing_ms": 1, "success": False}).encode()
    status, _, read = post(f"{API}/tasks/{task.pk}/report", 1, raw, headers(agent.key, len(raw)))
    assert read == 1 and status != 401 and status != 413


def test_errors_under_the_api_are_json_even_404s(client, agent) -> None:
    for path in ("/api/v1/watcher/nowhere", "/api/v1/nothing/", "/api/v1/watcher/tasks/x/report"):
        response = client.get(path)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json" and response.json()["detail"]
    assert client.get("/nowhere/").status_code == 404
    assert "text/html" in client.get("/nowhere/")["Content-Type"]


def test_a_session_post_without_csrf_under_the_api_is_a_json_403(admin_client) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.cookies = admin_client.cookies
    response = client.post("/i18n/setlang/", {"language": "en"})
    assert response.status_code == 403 and "text/html" in response["Content-Type"]
