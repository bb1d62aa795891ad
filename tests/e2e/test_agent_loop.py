"""The whole loop with real processes: the ASGI server, the fake marketplace and two reference
agents (plain-HTTP engine) working the demo catalogue's night.

No Celery worker: the rules backend parses inside the report request. Celery beat is not run
either; the test calls the lease reaper itself, as beat would every minute, so that it decides
when a silent agent's lease lapses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from tests.e2e.servers import BASE_DIR, CHROMIUM, Server, asgi_servers, free_port
from tests.factories import SubscriptionFactory
from watcher.models import (
    Agent,
    AgentCommand,
    CommandStatus,
    PriceHistory,
    Task,
    TaskReport,
    TaskStatus,
)
from watcher.services.agents import create_agent
from watcher.services.demo import load_demo
from watcher.services.distributor import reap_expired_leases
from watcher.services.generator import generate_tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "pw-root-Secret-1"
LEASE_SECONDS = 3
FINAL = {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.PARSE_ERROR}


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)
    return value


class Relay:
    """A TCP relay between an agent and the server that the test can cut, to make the server
    unreachable for that agent alone (the agent's reports then wait in its outbox)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        self.open = False
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.sockets.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


class AgentProcess:
    def __init__(self, name: str, agent: Agent, key: str, market: str, tmp: Path) -> None:
        self.name, self.agent, self.key, self.market = name, agent, key, market
        self.state_dir = tmp / f"state-{name}"
        self.log_path = tmp / f"agent-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, server_url: str, ip: str, *extra: str) -> None:
        sites = [
            f"--site={mp}={self.market}/{mp}" for mp in ("wildberries", "ozon", "yandex_market")
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watcher.agent", "run", "--server", server_url,
             "--agent-id", str(self.agent.pk), *sites, "--ip", ip, "--fast",
             "--state-dir", str(self.state_dir), "--idle-exit", "3", "--poll-interval", "0.2",
             "--heartbeat-interval", "0.5", *extra],
            cwd=BASE_DIR,
            # The key comes from the environment, as a deployment would pass a secret.
            env={**os.environ, "WATCHER_AGENT_API_KEY": self.key, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def outbox(self) -> list[Path]:
        return sorted((self.state_dir / "outbox").glob("*.json"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def fake_marketplace(night: dt.date) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher.demo.marketplace", "--port", str(port),
         "--night", night.isoformat()],
        cwd=BASE_DIR, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/_control"), 10, "the fake marketplace")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def command(server: Server, token: str, agent: Agent, action: str) -> str:
    """Post a command (retrying the 503 until the agent's socket is up); its command_id."""

    def post() -> httpx.Response | None:
        response = httpx.post(
            f"{server.url}/api/v1/watcher/agents/{agent.pk}/command",
            json={"command": action, "params": {}},
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
        )
        return None if response.status_code == 503 else response

    response = wait_for(post, 15, f"{action} to reach the agent")
    assert response.status_code == 200, response.text
    return str(response.json()["command_id"])


def acked(command_id: str) -> bool:
    return AgentCommand.objects.filter(pk=command_id, status=CommandStatus.ACKED).exists()


def tasks_of(agent: Agent, **filters: Any) -> list[Task]:
    return list(Task.objects.filter(agent=agent, **filters))


def test_two_agents_work_a_night_through_pause_kill_and_a_lost_report(tmp_path: Path) -> None:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    load_demo()
    night = timezone.localdate()
    a, key_a = create_agent("agent-a")
    b, key_b = create_agent("agent-b")
    env = {"WATCHER_TASK_LEASE_SECONDS": str(LEASE_SECONDS)}
    with (
        asgi_servers(1, tmp_path, **env) as (server,),
        fake_marketplace(night) as market,
        contextlib.closing(Relay(server.port)) as relay,
    ):
        token = httpx.post(
            f"{server.url}/api/v1/auth/token",
            json={"username": "root", "password": PASSWORD},
            trust_env=False,
        ).json()["access"]
        agent_a = AgentProcess("a", a, key_a, market, tmp_path)
        agent_b = AgentProcess("b", b, key_b, market, tmp_path)
        try:
            # 1. A is paused before there is any work: it must take none.
            agent_a.start(server.url, "10.0.0.1")
            paused = command(server, token, a, "pause")
            wait_for(lambda: acked(paused), what="pause ACK")
            wait_for(lambda: Agent.objects.get(pk=a.pk).status == "paused", what="A paused")

            # 2. A slow marketplace night; B (through the relay) works alone; kill -9 mid-task.
            httpx.post(f"{market}/_control", json={"delay_ms": 1500}, trust_env=False)
            total = generate_tasks(night).total_created
            assert total == 14
            agent_b.start(f"http://127.0.0.1:{relay.port}", "10.0.0.2")
            killed_task = wait_for(
                lambda: tasks_of(b, status=TaskStatus.IN_PROGRESS), what="B's first task"
            )[0]
            time.sleep(0.2)  # it is fetching the page (1.5 s)
            agent_b.kill9()
            assert agent_b.outbox() == []  # killed before it had anything to report

            # 3. The lease lapses (no heartbeat renews it) and the task is back in the queue.
            time.sleep(LEASE_SECONDS + 0.5)
            reap_expired_leases()
            killed_task.refresh_from_db()
            assert killed_task.status == TaskStatus.PENDING and killed_task.agent is None
            assert tasks_of(a) == []  # paused all along

            # 4. Resume A: it takes tasks again.
            resumed = command(server, token, a, "resume")
            wait_for(lambda: acked(resumed), what="resume ACK")
            wait_for(lambda: tasks_of(a), what="A taking a task after resume")

            # 5. B again; the server becomes unreachable for it while it holds a task: its
            #    report waits in the outbox, survives a kill -9, and is delivered on restart.
            httpx.post(f"{market}/_control", json={"delay_ms": 2500}, trust_env=False)
            agent_b.start(f"http://127.0.0.1:{relay.port}", "10.0.0.2")
            held = wait_for(
                lambda: tasks_of(b, status=TaskStatus.IN_PROGRESS), what="B's next task"
            )[0]
            # Cut only once B has the task in hand (its heartbeat names it): cut earlier, the
            # answer to its `tasks/next` is lost and B never learns it holds a task.
            wait_for(
                lambda: Agent.objects.get(pk=b.pk).current_task_id == held.pk,
                what="B working on its task",
            )
            relay.cut()
            wait_for(agent_b.outbox, 15, "B's report in its outbox")
            agent_b.kill9()
            held.refresh_from_db()
            assert held.status == TaskStatus.IN_PROGRESS  # the server has not heard of it yet
            httpx.post(f"{market}/_control", json={"delay_ms": 0}, trust_env=False)
            agent_b.start(server.url, "10.0.0.2")

            # 6. Both finish the night and exit 0 (`run` stops when the server has no task).
            for agent in (agent_a, agent_b):
                assert agent.process is not None
                assert agent.process.wait(40) == 0, agent.log()
        finally:
            for agent in (agent_a, agent_b):
                if agent.process is not None and agent.process.poll() is None:
                    agent.process.kill()
        truths = {
            (t.marketplace, t.sku): httpx.get(
                f"{market}/_truth/{t.marketplace}/{t.sku}", trust_env=False
            ).json()
            for t in Task.objects.all()
        }

    held.refresh_from_db()
    assert held.status in FINAL and held.agent_id == b.pk
    assert held.reports.filter(agent=b, attempt=held.lease_version).exists()
    assert agent_b.outbox() == []
    killed_task.refresh_from_db()
    assert killed_task.status in FINAL and killed_task.outcome != "lease_expired"
    assert Task.objects.count() == total
    outcomes = {}
    for task in Task.objects.all():
        assert task.status in FINAL, (task.sku, task.status, task.outcome, task.error)
        truth = truths[(task.marketplace, task.sku)]
        outcomes[task.sku] = task.outcome
        if not truth["found"]:
            assert (task.status, task.outcome) == (TaskStatus.FAILED, "not_found")
            continue
        assert task.status == TaskStatus.COMPLETED, (task.sku, task.status, task.error)
        price = PriceHistory.objects.get(task=task)
        shown = {
            key: None if truth[key] is None else Decimal(truth[key])
            for key in ("current_price", "old_price", "spp_price")
        }
        assert {k: getattr(price, k) for k in shown} == shown, task.sku
        assert price.in_stock == truth["in_stock"]
        assert task.outcome == ("ok" if truth["in_stock"] else "out_of_stock")
    assert set(outcomes.values()) == {"ok", "out_of_stock", "not_found"}
    assert PriceHistory.objects.count() == total - 1  # one product is not found


def test_the_browser_engine_reads_pages_with_chromium_and_sends_screenshots(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("WATCHER_BROWSER_TESTS") == "required":
            pytest.fail(f"{CHROMIUM} is missing and WATCHER_BROWSER_TESTS=required")
        pytest.skip(f"{CHROMIUM} is missing")
    night = timezone.localdate()
    SubscriptionFactory(marketplace="wildberries", sku="176308673")
    SubscriptionFactory(marketplace="ozon", sku="1093847562")
    agent, key = create_agent("agent-browser")
    with asgi_servers(1, tmp_path) as (server,), fake_marketplace(night) as market:
        assert generate_tasks(night).total_created == 2
        process = AgentProcess("browser", agent, key, market, tmp_path)
        process.start(server.url, "10.0.0.3", "--engine", "browser", "--chromium", CHROMIUM)
        assert process.process is not None
        assert process.process.wait(60) == 0, process.log()
        truths = {
            t.sku: httpx.get(f"{market}/_truth/{t.marketplace}/{t.sku}", trust_env=False).json()
            for t in Task.objects.all()
        }
    for task in Task.objects.all():
        assert (task.status, task.outcome) == (TaskStatus.COMPLETED, "ok"), task.error
        price = PriceHistory.objects.get(task=task)
        assert price.current_price == truths[task.sku]["current_price"]
        assert price.spp_price == truths[task.sku]["spp_price"]
        report = TaskReport.objects.get(task=task)
        assert bytes(report.screenshot).startswith(b"\xff\xd8\xff")  # a JPEG
    cookies = list((tmp_path / "state-browser").glob("cookies-*.json"))
    assert cookies  # the storage state is kept for the next run
