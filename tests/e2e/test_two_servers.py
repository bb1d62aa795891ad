"""Two ASGI server processes: a command posted to one reaches an agent connected to the other."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.contrib.auth.models import User
from websockets.exceptions import ConnectionClosed

from tests.e2e.servers import Server, asgi_servers
from watcher.models import AgentCommand, CommandStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "pw-root-Secret-1"


async def post_when_connected(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """The socket registers just after the handshake; retry the 503 for a moment."""
    for _ in range(50):
        response = await http.post(url, json=body, headers=headers)
        if response.status_code != 503:
            return response
        await asyncio.sleep(0.1)
    return response


async def receive(ws: websockets.ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def scenario(a: Server, b: Server, agent_id: str, key: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        token = await http.post(
            f"{b.url}/api/v1/auth/token", json={"username": "root", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access']}"}

        # 1. The agent is on A; the admin posts to B.
        on_a = await websockets.connect(
            a.ws(f"/ws/watcher?agent_id={agent_id}&api_key={key}"), proxy=None
        )
        # The client offers compression and the server declines it (config/server.py: it
        # cost ~90 KB per idle socket).
        seen["extensions"] = on_a.response.headers.get("Sec-WebSocket-Extensions")
        response = await post_when_connected(
            http,
            f"{b.url}/api/v1/watcher/agents/{agent_id}/command",
            {"command": "reload_config", "params": {"why": "e2e"}},
            auth,
        )
        assert response.status_code == 200, response.text
        seen["command_id"] = response.json()["command_id"]
        assert await receive(on_a) == {
            "type": "command",
            "command_id": seen["command_id"],
            "action": "reload_config",
            "params": {"why": "e2e"},
        }
        await on_a.send(json.dumps({"type": "ack", "command_id": seen["command_id"]}))

        # 2. The agent reconnects through B (header auth): A's socket is closed with 4002.
        on_b = await websockets.connect(
            b.ws("/ws/watcher"), additional_headers={"Authorization": f"Bearer {key}"}, proxy=None
        )
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(on_a.recv(), 10)
        seen["old_close_code"] = closed.value.rcvd.code if closed.value.rcvd else None

        # 3. A broadcast posted to A reaches the socket on B.
        response = await post_when_connected(
            http, f"{a.url}/api/v1/watcher/agents/command", {"command": "pause"}, auth
        )
        seen["broadcast"] = response.json()
        message = await receive(on_b)
        seen["broadcast_message"] = message
        await on_b.send(
            json.dumps({"type": "ack", "command_id": message["command_id"], "status": "ok"})
        )
        await on_b.send(json.dumps({"type": "status", "status": "paused"}))
        await asyncio.sleep(0.2)
        await on_b.close()
    return seen


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_a_command_crosses_server_processes_and_its_ack_is_stored(agent, tmp_path: Path) -> None:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    with asgi_servers(2, tmp_path) as (a, b):
        seen = asyncio.run(scenario(a, b, agent.id, agent.key))
        assert wait_for(
            lambda: AgentCommand.objects.filter(status=CommandStatus.ACKED).count() == 2
        ), (a.log(), b.log())
    first = AgentCommand.objects.get(pk=seen["command_id"])
    assert first.action == "reload_config" and first.ack_status == "ok"
    assert first.sent_by.username == "root" and first.acked_at is not None
    assert seen["old_close_code"] == 4002
    assert seen["extensions"] is None  # permessage-deflate offered by the client, declined
    assert seen["broadcast"] == {"status": "ok", "command": "pause", "sent_to": 1}
    second = AgentCommand.objects.get(pk=seen["broadcast_message"]["command_id"])
    assert second.action == "pause" and second.status == CommandStatus.ACKED
    agent.agent.refresh_from_db()
    assert agent.agent.status == "paused"
