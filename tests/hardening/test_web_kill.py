"""Faults: a web process killed (SIGKILL) while agents work.

Two uvicorn processes share the database and Redis; agents work through both. One is killed
mid-night: its agents carry on through the other (a request that failed on the wire is sent
again there), nothing is handed out twice, every task ends with one price row, and a claim
whose answer died with the process comes back when its lease lapses. An agent whose WebSocket
was on the killed process reconnects to the other, and an admin's command reaches it there.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.contrib.auth.models import User
from rest_framework_simplejwt.tokens import RefreshToken

from tests.e2e.servers import Server, asgi_servers
from tests.factories import TaskFactory
from tests.watcher.pages import WB_PAGE
from watcher.models import AgentCommand, CommandStatus, PriceHistory, Task, TaskStatus
from watcher.services import distributor, queues

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
API = "/api/v1/watcher"
TASKS = 40
AGENTS = 6


class Worker(threading.Thread):
    """An agent's loop over HTTP: next task, report, again; another server on a broken wire."""

    def __init__(self, key: str, ip: str, servers: list[Server], first: int, done: threading.Event):
        super().__init__(daemon=True)
        self.headers = {"Authorization": f"Bearer {key}"}
        self.ip, self.servers, self.current, self.done = ip, servers, first, done
        self.received: list[str] = []
        self.statuses: list[int] = []
        self.switches = 0
        self.error: BaseException | None = None

    def call(self, http: httpx.Client, method: str, path: str, body: dict | None = None):
        while True:
            server = self.servers[self.current]
            try:
                response = http.request(method, f"{server.url}{path}", json=body)
            except httpx.TransportError:
                self.current = (self.current + 1) % len(self.servers)
                self.switches += 1
                time.sleep(0.05)
                continue
            self.statuses.append(response.status_code)
            return response

    def run(self) -> None:
        try:
            with httpx.Client(headers=self.headers, timeout=10, trust_env=False) as http:
                beat = {"status": "ready", "current_task": None, "stats": {"ip": self.ip}}
                self.call(http, "POST", f"{API}/agents/heartbeat", beat)
                while not self.done.is_set():
                    response = self.call(http, "GET", f"{API}/tasks/next")
                    if response.status_code == 204:
                        time.sleep(0.1)
                        continue
                    task = response.json()
                    self.received.append(task["id"])
                    time.sleep(0.02)  # "reading the page"
                    report = {"raw_text": WB_PAGE, "timing_ms": 20, "success": True,
                              "error": None, "lease_version": task["lease_version"]}  # fmt: skip
                    answer = self.call(http, "POST", f"{API}/tasks/{task['id']}/report", report)
                    assert answer.status_code == 200, answer.text
        except BaseException as error:  # reported by the test
            self.error = error


class Radio(threading.Thread):
    """An agent's WebSocket: connected to the first server, to the next when it drops; ACKs
    every command."""

    def __init__(self, key: str, servers: list[Server]) -> None:
        super().__init__(daemon=True)
        self.key, self.urls = key, [server.ws("/ws/watcher") for server in servers]
        self.connected_to: list[int] = []
        self.commands: list[dict[str, Any]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self.listen())

    async def listen(self) -> None:
        index = 0
        headers = {"Authorization": f"Bearer {self.key}"}
        while not self.stop.is_set():
            try:
                async with websockets.connect(
                    self.urls[index], additional_headers=headers, proxy=None, open_timeout=5
                ) as ws:
                    self.connected_to.append(index)
                    while not self.stop.is_set():
                        try:
                            message = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                        except TimeoutError:
                            continue
                        if message.get("type") == "command":
                            self.commands.append(message)
                            ack = {"type": "ack", "command_id": message["command_id"]}
                            await ws.send(json.dumps({**ack, "status": "ok"}))
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
                index = (index + 1) % len(self.urls)
                await asyncio.sleep(0.1)


def claim_without_reading(server: Server, key: str, agent_id: str) -> tuple[socket.socket, Task]:
    """Send ``GET /tasks/next`` and never read the answer: the claim the process dies with."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    request = (
        f"GET {API}/tasks/next HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    sock.sendall(request.encode())
    deadline = time.monotonic() + 10
    while (task := Task.objects.filter(agent_id=agent_id).first()) is None:
        assert time.monotonic() < deadline, "the unread claim never happened"
        time.sleep(0.02)
    return sock, task


def test_agents_carry_on_through_another_process_when_one_is_killed(
    make_agent, tmp_path: Path
) -> None:
    tasks = [TaskFactory(sku=str(100000 + i)) for i in range(TASKS)]
    queues.push([(str(t.pk), t.marketplace, 0) for t in tasks])
    handles = [make_agent(f"night-{i}") for i in range(AGENTS)]
    lost = make_agent("lost-answer")
    listener = make_agent("on-the-socket")
    admin = User.objects.create_superuser("night-boss", "b@example.com", "pw-Secret-kill-1")
    jwt = {"Authorization": f"Bearer {RefreshToken.for_user(admin).access_token}"}
    done = threading.Event()
    # Short leases (set in the servers, which claim) so the lost claim comes back in seconds.
    with asgi_servers(2, tmp_path, WATCHER_TASK_LEASE_SECONDS="5") as (doomed, survivor):
        servers = [doomed, survivor]
        workers = [
            Worker(h.key, f"10.9.0.{i + 1}", servers, i % 2, done) for i, h in enumerate(handles)
        ]
        unread, orphan = claim_without_reading(doomed, lost.key, lost.id)
        radio = Radio(listener.key, servers)
        radio.start()
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 60
        while PriceHistory.objects.count() < TASKS // 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        doomed.process.kill()  # SIGKILL, mid-night
        doomed.process.wait(10)
        unread.close()
        # The beat's reaper, every second here instead of every minute.
        while time.monotonic() < deadline:
            if Task.objects.filter(status=TaskStatus.COMPLETED).count() == TASKS:
                break
            distributor.reap_expired_leases()
            time.sleep(1)
        done.set()
        for worker in workers:
            worker.join(15)
        # The socket that was on the killed process is on the survivor now; a command finds it.
        while radio.connected_to[-1:] != [1] and time.monotonic() < deadline:
            time.sleep(0.1)
        url = f"{survivor.url}{API}/agents/{listener.id}/command"
        for _ in range(50):  # the socket registers just after its handshake
            sent = httpx.post(url, json={"command": "pause"}, headers=jwt, trust_env=False)
            if sent.status_code != 503:
                break
            time.sleep(0.1)
        while not radio.commands and time.monotonic() < deadline:
            time.sleep(0.1)
        while not AgentCommand.objects.filter(status=CommandStatus.ACKED).exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        radio.stop.set()
        radio.join(5)
        survivor_log = survivor.log()

    for worker in workers:
        assert worker.error is None, repr(worker.error)
    statuses = {status for worker in workers for status in worker.statuses}
    assert statuses <= {200, 204}, statuses
    assert any(worker.switches for worker in workers[::2])  # the doomed server's agents moved
    received = [task_id for worker in workers for task_id in worker.received]
    assert len(received) == len(set(received)) == TASKS  # nothing handed out twice or lost
    assert Task.objects.filter(status=TaskStatus.COMPLETED).count() == TASKS
    assert PriceHistory.objects.count() == TASKS
    assert all(PriceHistory.objects.filter(task=t).count() == 1 for t in tasks)
    # The claim that died unanswered with its process: its lease lapsed, another agent did it.
    # (Claims of the working agents cut in flight by the kill, if any, went the same way.)
    orphan.refresh_from_db()
    assert orphan.lease_version == 2 and orphan.agent_id != lost.agent.pk
    assert radio.connected_to[0] == 0 and radio.connected_to[-1] == 1, radio.connected_to
    assert sent.status_code == 200, sent.text
    assert [m["command_id"] for m in radio.commands] == [sent.json()["command_id"]]
    command = AgentCommand.objects.get(pk=sent.json()["command_id"])
    assert command.status == CommandStatus.ACKED and command.ack_status == "ok"
    assert "Traceback" not in survivor_log, survivor_log
