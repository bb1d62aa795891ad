"""Load: N simulated agents through the full loop over real HTTP and WebSockets, N stepped up.

Each agent keeps its WebSocket open (``/ws/watcher``, key in the header) and ACKs every command;
over HTTP it sends a heartbeat declaring its IP, reads the emulation settings, then loops
``GET /tasks/next`` → ``POST /tasks/{id}/report`` with a heartbeat every 20 tasks. Once per
step an admin broadcasts ``reload_config`` to every connected agent (JWT), which must reach
every socket. Agents share IPs two by two, so the IP semaphore has work to do. The server is
the production command (``python -m config.server``, one worker process per core, DEBUG off,
LOG_LEVEL=WARNING, the production database pool) on loopback.

Printed per step (N = 5, 10, 25, 50, 100, 200 by default; ``--agents`` is the last): throughput,
p50/p99 per endpoint, the baseline ``GET /health`` probed meanwhile (and alone before the
steps), and the invariants checked, client side and in the database:

- no task handed out twice (the ids agents received, and one report per task);
- no IP-semaphore collision: an agent never receives a task of a domain while another agent
  on its IP holds one of that domain (held from the claim's answer until its report is sent;
  the server frees it only after that, so no false alarm);
- no task lost: none left in progress, completed = reports sent = price rows;
- every report counted: the per-agent counters of today equal what each agent reported.

It creates (drops first) the database ``watcher_load`` next to --database-url's and drops it at
the end; it FLUSHDBs the Redis database of --redis-url: give it one of its own.

Usage: python bench/load.py [--agents 200] [--steps 5,10,25,50,100] [--duration 10]
       [--database-url postgres://…/] [--redis-url redis://127.0.0.1:6379/3] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dispatch import (  # noqa: E402  (bench/, next to this script)
    Catalogue,
    agent_ips,
    create_agents,
    create_catalogue,
    free_port,
    libpq_url,
    page_for,
    pages,
    percentile,
    raise_fd_limit,
    start_server,
    stop_processes,
    with_db,
)
from http_client import Connection  # noqa: E402

LOAD_DB = "watcher_load"
API = "/api/v1/watcher"
DOMAIN = {"wildberries": "wb", "ozon": "ozon", "yandex_market": "ym"}
P99_TARGET = 0.100


@dataclass
class Step:
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    received: list[str] = field(default_factory=list)
    reported: collections.Counter[str] = field(default_factory=collections.Counter)
    holders: dict[tuple[str, str], str] = field(default_factory=dict)
    collisions: int = 0
    commands: collections.Counter[str] = field(default_factory=collections.Counter)
    acks: int = 0


async def timed(step: Step, name: str, conn: Connection, method: str, path: str, body=b""):
    t0 = time.perf_counter()
    code, payload = await conn.request(method, path, body)
    step.latencies[name].append(time.perf_counter() - t0)
    return code, payload


async def socket_loop(port: int, key: str, step_ref: list[Step], ready: asyncio.Event) -> None:
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/watcher"
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {key}"}, proxy=None
    ) as ws:
        ready.set()
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "command":
                step_ref[0].commands[message["action"]] += 1
                await ws.send(
                    json.dumps({"type": "ack", "command_id": message["command_id"], "status": "ok"})
                )
                step_ref[0].acks += 1


async def agent_loop(
    i: int, port: int, agent_id: str, key: str, ip: str, step: Step, stop_at: float
) -> None:
    texts = pages()
    rnd = random.Random(i)
    conn = Connection(port, key)
    try:
        beat = json.dumps({"status": "working", "current_task": None, "stats": {"ip": ip}})
        await timed(step, "heartbeat", conn, "POST", f"{API}/agents/heartbeat", beat.encode())
        await timed(step, "config/emulation", conn, "GET", f"{API}/config/emulation")
        done = 0
        while time.perf_counter() < stop_at:
            code, payload = await timed(step, "tasks/next", conn, "GET", f"{API}/tasks/next")
            if code == 204:
                await asyncio.sleep(0.2)
                continue
            if code != 200:
                step.errors[f"next {code}"] += 1
                await asyncio.sleep(0.2)
                continue
            task = json.loads(payload)
            slot = (ip, DOMAIN[task["marketplace"]])
            if step.holders.get(slot, agent_id) != agent_id:
                step.collisions += 1
            step.holders[slot] = agent_id
            step.received.append(task["id"])
            await asyncio.sleep(rnd.uniform(0.0, 0.05))  # "reading the page"
            body = {
                "raw_text": page_for(texts, task["marketplace"], task["sku"]),
                "timing_ms": rnd.randint(3000, 9000),
                "success": True,
                "error": None,
                "lease_version": task["lease_version"],
            }
            del step.holders[slot]  # the report is on its way: the server may free the IP now
            path = f"{API}/tasks/{task['id']}/report"
            code, payload = await timed(
                step, "report", conn, "POST", path, json.dumps(body).encode()
            )
            if code != 200:
                step.errors[f"report {code}"] += 1
                continue
            step.reported[agent_id] += 1
            done += 1
            if done % 20 == 0:
                await timed(
                    step, "heartbeat", conn, "POST", f"{API}/agents/heartbeat", beat.encode()
                )
    finally:
        await conn.close()


async def health_probe(port: int, step: Step, stop_at: float, name: str = "GET /health") -> None:
    conn = Connection(port, "none")
    try:
        while time.perf_counter() < stop_at:
            await timed(step, name, conn, "GET", f"{API}/health")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def broadcast(port: int, token: str, step: Step, at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.perf_counter()))
    conn = Connection(port, token)
    body = json.dumps({"command": "reload_config"}).encode()
    code, payload = await timed(
        step, "agents/command (admin)", conn, "POST", f"{API}/agents/command", body
    )
    await conn.close()
    step.commands["sent_to"] = json.loads(payload).get("sent_to", -1) if code == 200 else -1


async def run_step(port: int, agents, ips, token: str, duration: float) -> tuple[Step, float]:
    step = Step()
    ref = [step]
    readies = [asyncio.Event() for _ in agents]
    sockets = [
        asyncio.create_task(socket_loop(port, key, ref, readies[i]))
        for i, (_, key) in enumerate(agents)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    await asyncio.sleep(1.0)  # sockets registered in Redis
    start = time.perf_counter()
    stop_at = start + duration
    await asyncio.gather(
        health_probe(port, step, stop_at),
        broadcast(port, token, step, start + duration / 2),
        *(
            agent_loop(i, port, agent_id, key, ips[i], step, stop_at)
            for i, (agent_id, key) in enumerate(agents)
        ),
    )
    elapsed = time.perf_counter() - start
    await asyncio.sleep(1.0)  # the last ACKs
    for task in sockets:
        task.cancel()
    await asyncio.gather(*sockets, return_exceptions=True)
    return step, elapsed


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"manage.py migrate failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def line(name: str, values: list[float]) -> str:
    return (
        f"    {name:<24} {len(values):>7} calls  p50 {percentile(values, 50) * 1000:7.1f} ms"
        f"  p99 {percentile(values, 99) * 1000:7.1f} ms"
    )


def check(step: Step, agents, seen_before: set[str]) -> list[str]:
    """The invariants, client side and in the database (cumulative over the steps)."""
    from django.db.models import Count

    from watcher.models import PriceHistory, Task, TaskReport, TaskStatus
    from watcher.services.agents import counters

    problems: list[str] = []
    ids = step.received
    if len(ids) != len(set(ids)) or seen_before & set(ids):
        problems.append("a task was handed out twice")
    if step.collisions:
        problems.append(f"{step.collisions} IP-semaphore collisions")
    in_progress = Task.objects.filter(status=TaskStatus.IN_PROGRESS).count()
    completed = Task.objects.filter(status=TaskStatus.COMPLETED).count()
    reports = TaskReport.objects.count()
    prices = PriceHistory.objects.count()
    doubles = TaskReport.objects.values("task").annotate(n=Count("id")).filter(n__gt=1).count()
    sent = len(seen_before) + sum(step.reported.values())
    if in_progress or doubles or not (completed == reports == prices == sent):
        problems.append(
            f"lost or doubled: {in_progress} in progress, {completed} completed, {reports} "
            f"reports ({doubles} doubled), {prices} price rows, {sent} reports answered 200"
        )
    counted = counters([agent_id for agent_id, _ in agents])
    total_counted = sum(c["completed"] for c in counted.values())
    if total_counted != sent:
        problems.append(f"counters say {total_counted} completed, agents reported {sent}")
    if step.commands["sent_to"] != len(agents) or step.commands["reload_config"] != len(agents):
        problems.append(
            f"broadcast sent to {step.commands['sent_to']}, "
            f"{step.commands['reload_config']} sockets got it, of {len(agents)}"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--agents", type=int, default=200, help="the last (largest) step")
    args.add_argument("--steps", default="5,10,25,50,100", help="smaller steps before --agents")
    args.add_argument("--duration", type=float, default=10.0, help="seconds per step")
    args.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args.add_argument("--tasks", type=int, default=30_000)
    args.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    opts = args.parse_args(argv)
    steps = sorted({int(s) for s in opts.steps.split(",") if s and int(s) < opts.agents})
    steps.append(opts.agents)

    import psycopg
    import redis

    raise_fd_limit(opts.agents * 6 + 512)
    redis.Redis.from_url(opts.redis_url).flushdb()
    with psycopg.connect(libpq_url(opts.database_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {LOAD_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {LOAD_DB}")
    db_url = with_db(opts.database_url, LOAD_DB)
    tmp = Path(tempfile.mkdtemp(prefix="watcher-load-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "WATCHER_", "DJANGO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=db_url, REDIS_URL=opts.redis_url,
        DEBUG="0", LOG_LEVEL="WARNING", WATCHER_DATA_DIR=str(tmp),
        SECRET_KEY=secrets.token_urlsafe(50), PYTHONPATH=str(ROOT),
    )  # fmt: skip
    servers: list[subprocess.Popen[bytes]] = []
    try:
        migrate(env)
        os.environ.update(env)
        import django

        django.setup()
        from django.contrib.auth.models import User
        from django.db import connections

        from watcher.services import generator

        create_catalogue(db_url, Catalogue(max(1, opts.tasks // 10), 9))
        made = generator.generate_tasks()
        all_agents = create_agents(opts.agents, "load")
        ips = agent_ips(opts.agents, max(1, opts.agents // 2))
        User.objects.create_superuser("load-admin", "", "load-Secret-pw-1")
        connections.close_all()
        port = free_port()
        servers.append(start_server(port, opts.workers, env, tmp / "server.log"))
        import httpx

        token = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/token",
            json={"username": "load-admin", "password": "load-Secret-pw-1"},
            trust_env=False,
        ).json()["access"]
        print(
            f"load: {os.cpu_count()} cores, server: python -m config.server --workers "
            f"{opts.workers}; {sum(made.queued.values()):,} tasks queued; steps {steps} agents, "
            f"{opts.duration:g} s each; agents two per IP; load average "
            f"{os.getloadavg()[0]:.1f} (others' processes included)"
        )
        baseline = Step()
        asyncio.run(health_probe(port, baseline, time.perf_counter() + 3, "GET /health (idle)"))
        print("  baseline, no load:")
        print(line("GET /health (idle)", baseline.latencies["GET /health (idle)"]))
        seen: set[str] = set()
        passed_at = None
        for n in steps:
            agents = all_agents[:n]
            step, elapsed = asyncio.run(run_step(port, agents, ips[:n], token, opts.duration))
            pairs = len(step.latencies["report"])
            print(f"\n  {n} agents: {pairs / elapsed:,.0f} tasks/s ({pairs} in {elapsed:.1f} s)")
            for name in ("tasks/next", "report", "heartbeat", "config/emulation",
                         "agents/command (admin)", "GET /health"):  # fmt: skip
                print(line(name, step.latencies[name]))
            if step.errors:
                print(f"    errors: {dict(step.errors)}")
            problems = check(step, agents, seen)
            seen |= set(step.received)
            print(
                "    invariants: "
                + ("; ".join(problems) if problems else "no task handed out twice, no IP-"
                   "semaphore collision, none lost (completed = reports = price rows = 200s), "
                   f"every report counted, broadcast ACKed by all {n} sockets")
            )  # fmt: skip
            if passed_at is None and percentile(step.latencies["tasks/next"], 99) > P99_TARGET:
                passed_at = n
        print(f"\n  load average at the end: {os.getloadavg()[0]:.1f}")
        print(
            "  tasks/next p99 passes 100 ms at "
            + (f"{passed_at} agents" if passed_at else f"no step (up to {steps[-1]} agents)")
        )
    finally:
        stop_processes(servers)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with psycopg.connect(libpq_url(opts.database_url), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {LOAD_DB} WITH (FORCE)")
        redis.Redis.from_url(opts.redis_url).flushdb()
        print(f"logs: {tmp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
