"""Task generation and dispatch throughput, each next to a bare baseline measured in the same run.

1. Generation: ``generate_tasks`` building N tasks (default 10⁶: 100,000 subscriptions × (1 +
   9 competitors)), with the queue fill (``queues.rebuild``) timed on its own; baseline: a bare
   psycopg COPY of as many equivalent rows, made in Python, into a scratch table with the same
   columns and indexes as ``watcher_task`` (and a bare SELECT → pipelined ZADD queue fill).
2. Dispatch: ``GET /tasks/next`` + ``POST /tasks/{id}/report`` pairs per second, A agents (one
   asyncio loop, a minimal keep-alive HTTP client, one API key each, IPs declared by heartbeat)
   against the web command of docker-compose.yml (uvicorn, one worker process per core, DEBUG
   off, LOG_LEVEL=WARNING, the production database pool); baseline: the same
   claims and updates with redis-py + psycopg (asyncio), no Django, no HTTP, same concurrency.

It creates (drops first) its own database ``watcher_bench`` next to the one in --database-url,
migrates it with ``manage.py migrate`` and drops it at the end (--keep-db keeps it). It runs
FLUSHDB on the Redis database of --redis-url, at the start and at the end: give it a database of
its own (e.g. redis://127.0.0.1:6379/3). Everything listens on and is declared from loopback
addresses. Prints figures; it is not a test.

Usage: python bench/dispatch.py [--quick] [--tasks 1000000] [--agents 200] [--duration 30]
       [--database-url postgres://…/] [--redis-url redis://127.0.0.1:6379/3] [--profile 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import importlib.metadata
import io
import json
import math
import os
import platform
import pstats
import random
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from http_client import Connection  # noqa: E402  (bench/, next to this script)

BENCH_DB = "watcher_bench"
API = "/api/v1/watcher"
MARKETPLACES = ("wildberries", "ozon", "yandex_market")
PG_SCHEMES = ("postgres", "postgresql", "pgsql", "psql")


# --- small helpers ------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def rate_line(name: str, count: int, seconds: float, unit: str) -> str:
    return (
        f"  {name:<46} {count:>10,} {unit} in {seconds:7.2f} s = {count / seconds:>11,.0f} {unit}/s"
    )


def ratio_line(name: str, value: float, target: float) -> str:
    verdict = "meets" if value >= target else "BELOW"
    return f"  {name:<46} {value:6.1%}  (target ≥ {target:.0%}: {verdict})"


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def libpq_url(url: str) -> str:
    """psycopg wants postgresql:// (or postgres://); django-environ also knows pgsql/psql."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def redis_db(url: str) -> int:
    parts = urlsplit(url)
    for item in parts.query.split("&"):
        if item.startswith("db="):
            return int(item[3:])
    path = parts.path.strip("/")
    return int(path) if path.isdigit() else 0


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class CpuMeter:
    """CPU seconds over a window: this process, the server processes, Redis, the whole machine.

    PostgreSQL backends come and go (one per request when connections are not kept), so their
    share is the machine's busy time minus the processes followed here.
    """

    def __init__(self, servers: list[int], redis_pid: int | None) -> None:
        import psutil

        self.psutil = psutil
        self.groups: dict[str, list[Any]] = {"bench process (client)": [psutil.Process()]}
        if servers:
            self.groups["server processes"] = [psutil.Process(pid) for pid in servers]
        if redis_pid:
            with contextlib.suppress(psutil.Error):
                self.groups["redis-server"] = [psutil.Process(redis_pid)]

    def _proc(self) -> dict[str, float]:
        out = {}
        for name, procs in self.groups.items():
            total = 0.0
            for proc in procs:
                with contextlib.suppress(self.psutil.Error):
                    t = proc.cpu_times()
                    total += t.user + t.system
            out[name] = total
        return out

    def _machine(self) -> tuple[float, float, float]:
        t = self.psutil.cpu_times()
        idle = t.idle + getattr(t, "iowait", 0.0)
        steal = getattr(t, "steal", 0.0)
        busy = sum(t) - idle - steal - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
        return busy, idle, steal

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.p0 = self._proc()
        self.m0 = self._machine()

    def stop(self) -> None:
        self.t1 = time.perf_counter()
        self.p1 = self._proc()
        self.m1 = self._machine()

    def lines(self, pairs: int) -> list[str]:
        wall = self.t1 - self.t0
        busy = self.m1[0] - self.m0[0]
        steal = self.m1[2] - self.m0[2]
        out = []
        followed = 0.0
        for name in self.groups:
            used = self.p1[name] - self.p0[name]
            followed += used
            out.append(self._line(name, used, wall, pairs))
        out.append(
            self._line("PostgreSQL + kernel + rest (machine − above)", busy - followed, wall, pairs)
        )
        out.append(self._line("machine busy (all cores)", busy, wall, pairs))
        if steal > 0.01 * wall:
            out.append(f"    steal time: {steal / wall:.2f} cores (noisy neighbours)")
        return out

    @staticmethod
    def _line(name: str, used: float, wall: float, pairs: int) -> str:
        per = f"{used / pairs * 1e3:6.2f} ms CPU/pair" if pairs else ""
        return f"    {name:<46} {used / wall:5.2f} cores  {per}"


# --- setup: database, Django, catalogue ----------------------------------------


def create_database(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    return with_db(admin_url, BENCH_DB)


def drop_database(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def migrate(env: dict[str, str]) -> None:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode:
        raise SystemExit(f"manage.py migrate failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    print(f"migrated {BENCH_DB} in {time.perf_counter() - started:.1f} s")


def copy_rows(conn: Any, sql: str, lines: Iterator[str], chunk: int = 5000) -> None:
    with conn.cursor() as cur, cur.copy(sql) as copy:
        buf: list[str] = []
        for line in lines:
            buf.append(line)
            if len(buf) >= chunk:
                copy.write("".join(buf))
                buf.clear()
        if buf:
            copy.write("".join(buf))


@dataclass(frozen=True)
class Catalogue:
    subscriptions: int
    competitors_per: int

    @property
    def tasks(self) -> int:
        return self.subscriptions * (1 + self.competitors_per)

    @staticmethod
    def marketplace(sub_id: int) -> str:
        return MARKETPLACES[sub_id % 3]

    @staticmethod
    def sku(sub_id: int) -> str:
        return str(10_000_000 + sub_id)

    @staticmethod
    def brand(sub_id: int) -> str:
        return f"Brand {sub_id % 500}"

    @staticmethod
    def priority(n: int) -> int:
        return n % 4

    def competitor_ids(self, sub_id: int) -> range:
        first = (sub_id - 1) * self.competitors_per + 1
        return range(first, first + self.competitors_per)

    @staticmethod
    def competitor_sku(comp_id: int) -> str:
        return str(500_000_000 + comp_id)


def create_catalogue(url: str, cat: Catalogue) -> None:
    import psycopg

    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC).isoformat()
    with psycopg.connect(libpq_url(url)) as conn:
        copy_rows(
            conn,
            "COPY watcher_subscription (id, brand, marketplace, sku, title, priority, is_active, "
            "created_at, updated_at) FROM STDIN",
            (
                f"{i}\t{cat.brand(i)}\t{cat.marketplace(i)}\t{cat.sku(i)}\t\t{cat.priority(i)}"
                f"\tt\t{now}\t{now}\n"
                for i in range(1, cat.subscriptions + 1)
            ),
        )
        copy_rows(
            conn,
            "COPY watcher_competitor (id, subscription_id, competitor_sku, name, priority, "
            "is_active, created_at) FROM STDIN",
            (
                f"{c}\t{i}\t{cat.competitor_sku(c)}\t\t{cat.priority(c * 7)}\tt\t{now}\n"
                for i in range(1, cat.subscriptions + 1)
                for c in cat.competitor_ids(i)
            ),
        )
        for table in ("watcher_subscription", "watcher_competitor"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE watcher_subscription")
        conn.execute("VACUUM ANALYZE watcher_competitor")
        conn.execute("VACUUM ANALYZE watcher_task")
    print(
        f"catalogue: {cat.subscriptions:,} subscriptions + "
        f"{cat.subscriptions * cat.competitors_per:,} competitors (COPY) in "
        f"{time.perf_counter() - started:.1f} s"
    )


# --- 1. generation ------------------------------------------------------------------------------


def task_lines(cat: Catalogue, day: str, now: str) -> Iterator[str]:
    """The rows generate_tasks would build, made in Python (the COPY baseline's input)."""
    urls = {
        "wildberries": "https://www.wildberries.ru/catalog/{}/detail.aspx",
        "ozon": "https://www.ozon.ru/product/{}/",
        "yandex_market": "https://market.yandex.ru/product/{}",
    }
    uuid4 = uuid.uuid4
    tail = f"\tpending\t\t{day}\t0\t\t0\t\t{now}\n"
    for i in range(1, cat.subscriptions + 1):
        mp, sku, brand = cat.marketplace(i), cat.sku(i), cat.brand(i)
        template = urls[mp]
        head = f"{uuid4()}\t{template.format(sku)}\t{mp}\t{sku}\t{brand}\t{i}"
        yield f"{head}\t\\N\t{cat.priority(i)}{tail}"
        for c in cat.competitor_ids(i):
            csku = cat.competitor_sku(c)
            yield (
                f"{uuid4()}\t{template.format(csku)}\t{mp}\t{csku}\t{brand}\t{i}\t{c}\t"
                f"{cat.priority(c * 7)}{tail}"
            )


_TASK_COLUMNS = (
    "id, url, marketplace, sku, brand, subscription_id, competitor_id, priority, status, outcome, "
    "scheduled_date, retry_count, error, lease_version, semaphore_token, created_at"
)


def bare_copy(url: str, cat: Catalogue, day: dt.date) -> float:
    import psycopg

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_task_copy")
        conn.execute("CREATE TABLE bench_task_copy (LIKE watcher_task INCLUDING ALL)")
        conn.execute("CHECKPOINT")
    with psycopg.connect(libpq_url(url)) as conn:
        started = time.perf_counter()
        copy_rows(
            conn,
            f"COPY bench_task_copy ({_TASK_COLUMNS}) FROM STDIN",
            task_lines(cat, day.isoformat(), dt.datetime.now(dt.UTC).isoformat()),
        )
        conn.commit()
        seconds = time.perf_counter() - started
        count = conn.execute("SELECT count(*) FROM bench_task_copy").fetchone()[0]
    if count != cat.tasks:
        raise SystemExit(f"bare COPY wrote {count} rows, expected {cat.tasks}")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP TABLE bench_task_copy")
    return seconds


def bare_queue_fill(url: str, redis_url: str) -> tuple[int, float]:
    """SELECT id, priority of the pending tasks → pipelined ZADD batches of 10,000 (scratch key)."""
    import psycopg
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = "bench:queue_fill"
    client.delete(key)
    n = 0
    rnd = random.random
    started = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor(name="fill") as cur:
        cur.itersize = 10_000
        cur.execute("SELECT id::text, priority FROM watcher_task WHERE status = 'pending'")
        pipe = client.pipeline(transaction=False)
        while rows := cur.fetchmany(10_000):
            pipe.zadd(key, {task_id: prio + rnd() * 0.999 for task_id, prio in rows})
            pipe.execute()
            n += len(rows)
    seconds = time.perf_counter() - started
    client.delete(key)
    return n, seconds


def run_generation(url: str, redis_url: str, cat: Catalogue) -> None:
    import psycopg
    from django.db import connections
    from django.utils import timezone

    from watcher.services import generator, queues

    day = timezone.localdate()
    print(
        f"\n== 1. generation of {cat.tasks:,} tasks "
        f"({cat.subscriptions:,} subscriptions × (1 + {cat.competitors_per} competitors))"
    )
    copy_1 = bare_copy(url, cat, day)

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    fills: list[float] = []
    original = queues.push

    def timed_push(items: Any) -> int:
        started = time.perf_counter()
        try:
            return original(items)
        finally:
            fills.append(time.perf_counter() - started)

    queues.push = timed_push  # generator calls queues.push() through the module
    try:
        started = time.perf_counter()
        result = generator.generate_tasks(day)
        total = time.perf_counter() - started
        fill_first, fills[:] = sum(fills), []
        connections.close_all()
        started = time.perf_counter()
        again = generator.generate_tasks(day)
        total_again = time.perf_counter() - started
        fill_again = sum(fills)
        connections.close_all()
    finally:
        queues.push = original
    created, queued = result.total_created, sum(result.queued.values())
    if created != cat.tasks or queued != cat.tasks:
        print(f"  !! created {created:,}, queued {queued:,}, expected {cat.tasks:,}")
    copy_2 = bare_copy(url, cat, day)
    filled, fill_seconds = bare_queue_fill(url, redis_url)
    copy_mean = (copy_1 + copy_2) / 2

    print(rate_line("generate_tasks (inserts + queue fill)", created, total, "tasks"))
    print(rate_line("  queue fill (queues.push, beside the inserts)", queued, fill_first, "ids"))
    print(rate_line("baseline: bare COPY (Python rows), run 1", cat.tasks, copy_1, "rows"))
    print(rate_line("baseline: bare COPY (Python rows), run 2", cat.tasks, copy_2, "rows"))
    print(rate_line("baseline: bare queue fill (SELECT → ZADD)", filled, fill_seconds, "ids"))
    print(ratio_line("ratio generate_tasks / bare COPY (mean)", copy_mean / total, 0.5))
    print(f"  {'ratio queue fill / bare queue fill':<46} {fill_seconds / fill_first:6.1%}")
    print(
        f"  second run, same night (idempotent): created {again.total_created:,} in "
        f"{total_again:.2f} s, of which queue fill {fill_again:.2f} s"
    )
    print(
        f"  note: generate_tasks inserts chunks of {generator.CHUNK_SUBSCRIPTIONS:,} "
        "subscriptions, each committed, while a thread pushes the previous chunk's ids to Redis"
    )


# --- 2. dispatch ----------------------------------------------------------------------------------


@dataclass
class Samples:
    """(start, claimed, reported) of every pair; 204s and errors counted apart."""

    pairs: list[tuple[float, float, float]] = field(default_factory=list)
    idle: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def window(self, w0: float, w1: float) -> Samples:
        return Samples([p for p in self.pairs if w0 <= p[2] <= w1], self.idle, self.errors)

    def report(self, name: str, seconds: float) -> dict[str, float]:
        n = len(self.pairs)
        nxt = [b - a for a, b, _ in self.pairs]
        rep = [c - b for _, b, c in self.pairs]
        pair = [c - a for a, _, c in self.pairs]
        rate = n / seconds
        print(
            f"  {name}: {n:,} pairs in {seconds:.1f} s = {rate:,.0f} round trips/s"
            f"   (204/empty: {self.idle:,}, errors: {dict(self.errors) or 0})"
        )
        for label, values in (("next (claim)", nxt), ("report", rep), ("pair", pair)):
            print(
                f"    {label:<14} p50 {ms(percentile(values, 50))}"
                f"   p99 {ms(percentile(values, 99))}"
            )
        return {"rate": rate, "p50": percentile(pair, 50), "p99": percentile(pair, 99)}


def pages() -> dict[str, str]:
    from tests.watcher.pages import OZON_PAGE, WB_PAGE, YM_OUT_OF_STOCK

    return {"wildberries": WB_PAGE, "ozon": OZON_PAGE, "yandex_market": YM_OUT_OF_STOCK}


def page_for(texts: dict[str, str], marketplace: str, sku: str) -> str:
    text = texts[marketplace]
    # The sample pages carry their own article number; make it the task's.
    for old in ("176308673", "1498273651"):
        text = text.replace(old, sku)
    return text


def agent_ips(agents: int, ips: int) -> list[str]:
    # 127.0.1.0/24 … : loopback addresses, declared by heartbeat (never bound).
    return [f"127.0.{1 + (i % ips) // 250}.{1 + (i % ips) % 250}" for i in range(agents)]


def create_agents(n: int, prefix: str = "bench") -> list[tuple[str, str]]:
    from watcher.services.agents import create_agent

    return [
        (str(agent.pk), key) for agent, key in (create_agent(f"{prefix}-{i:04d}") for i in range(n))
    ]


def server_command(port: int, workers: int) -> list[str]:
    """The web command of docker-compose.yml (config/server.py), on a loopback port."""
    return [
        sys.executable, "-m", "config.server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


def start_server(
    port: int, workers: int, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    import httpx

    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            server_command(port, workers), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}{API}/health", trust_env=False, timeout=5)
            # every worker must be up before the clock starts
            if len(psutil_children(process.pid)) >= workers:
                return process
        time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start in 90 s")


def psutil_children(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def heartbeats(ports: list[int], agents: list[tuple[str, str]], ips: list[str]) -> None:
    gate = asyncio.Semaphore(20)

    async def one(i: int, key: str) -> None:
        async with gate:
            conn = Connection(ports[i % len(ports)], key)
            body = {"status": "working", "ip": ips[i], "stats": {"version": "bench"}}
            code, payload = await conn.request(
                "POST", f"{API}/agents/heartbeat", json.dumps(body).encode()
            )
            await conn.close()
            if code != 200:
                raise SystemExit(f"heartbeat answered {code}: {payload[:300]!r}")

    await asyncio.gather(*(one(i, key) for i, (_, key) in enumerate(agents)))


async def http_dispatch(
    ports: list[int],
    agents: list[tuple[str, str]],
    warmup: float,
    duration: float,
    idle_sleep: float,
    meter: Window,
) -> tuple[Samples, float, float]:
    texts = pages()
    samples = Samples()
    start = time.perf_counter()
    w0, w1 = start + warmup, start + warmup + duration

    async def agent(i: int, key: str) -> None:
        conn = Connection(ports[i % len(ports)], key)
        rnd = random.Random(i)
        try:
            while time.perf_counter() < w1:
                t0 = time.perf_counter()
                try:
                    code, payload = await conn.request("GET", f"{API}/tasks/next")
                    t1 = time.perf_counter()
                    if code == 204:
                        samples.idle += 1
                        await asyncio.sleep(idle_sleep)
                        continue
                    if code != 200:
                        samples.errors[f"next {code}"] += 1
                        await asyncio.sleep(idle_sleep)
                        continue
                    task = json.loads(payload)
                    body = {
                        "raw_text": page_for(texts, task["marketplace"], task["sku"]),
                        "timing_ms": rnd.randint(3000, 9000),
                        "success": True,
                        "error": None,
                        "lease_version": task["lease_version"],
                    }
                    code, payload = await conn.request(
                        "POST", f"{API}/tasks/{task['id']}/report", json.dumps(body).encode()
                    )
                    t2 = time.perf_counter()
                    if code != 200:
                        samples.errors[f"report {code}"] += 1
                        continue
                    samples.pairs.append((t0, t1, t2))
                except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError) as exc:
                    samples.errors[type(exc).__name__] += 1
                    await asyncio.sleep(idle_sleep)
        finally:
            await conn.close()

    await asyncio.wait_for(
        asyncio.gather(meter.run(w0, w1), *(agent(i, key) for i, (_, key) in enumerate(agents))),
        timeout=warmup + duration + 120,
    )
    return samples, w0, w1


class ConnPool:
    """The smallest async connection pool: a queue of open psycopg connections."""

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size = url, size
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.all: list[Any] = []

    async def open(self) -> None:
        import psycopg

        for _ in range(self.size):
            conn = await psycopg.AsyncConnection.connect(libpq_url(self.url), autocommit=True)
            self.all.append(conn)
            self.queue.put_nowait(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> Any:
        conn = await self.queue.get()
        try:
            yield conn
        finally:
            self.queue.put_nowait(conn)

    async def close(self) -> None:
        for conn in self.all:
            await conn.close()


_CLAIM_UPDATE = (
    "UPDATE watcher_task SET status = 'in_progress', agent_id = %s, started_at = %s, "
    "lease_version = lease_version + 1, lease_expires_at = %s, claimed_ip = %s, "
    "semaphore_token = %s WHERE id = %s AND status = 'pending' "
    "RETURNING id, url, marketplace, sku, competitor_id, priority, created_at, lease_version, "
    "subscription_id, brand"
)
_REPORT_INSERT = (
    "INSERT INTO watcher_taskreport (task_id, agent_id, attempt, success, raw_text, timing_ms, "
    "error, ip, outcome, received_at) VALUES (%s, %s, %s, true, %s, %s, '', %s, 'ok', %s)"
)
# The price row every successful report writes (the values a parse of the page would give).
_PRICE_INSERT = (
    "INSERT INTO watcher_pricehistory (sku, marketplace, brand, subscription_id, competitor_id, "
    "task_id, agent_id, ip, attempt, current_price, old_price, in_stock, rating, reviews_count, "
    "card_title, card_description, card_attributes, parser_backend, parsed_at) VALUES (%s, %s, "
    "%s, %s, %s, %s, %s, %s, %s, 1299.00, 1599.00, true, 4.80, 1234, 'bench', '', '{}', "
    "'rules', %s)"
)
_REPORT_UPDATE = (
    "UPDATE watcher_task SET status = 'completed', outcome = 'ok', error = '', "
    "completed_at = %s, execution_time_ms = %s, lease_expires_at = NULL "
    "WHERE id = %s AND lease_version = %s AND status = 'in_progress'"
)


async def bare_dispatch(
    db_url: str,
    redis_url: str,
    agents: list[tuple[str, str]],
    ips: list[str],
    pool_size: int,
    warmup: float,
    duration: float,
    idle_sleep: float,
    meter: Window,
) -> tuple[Samples, float, float]:
    """The same claims and writes as the services, straight on redis-py + psycopg: the claim,
    then the report row, the task's settlement and the price row in one transaction."""
    import redis.asyncio as aredis
    from django.conf import settings

    from watcher.models import DOMAINS
    from watcher.services import distributor, semaphore
    from watcher.services.redis import (
        AGENT_COMPLETED_KEY,
        AGENT_TIMING_KEY,
        BLOCKED_KEY,
        INFLIGHT_KEY,
        QUEUE_KEY,
        SEMAPHORE_KEY,
    )

    order = distributor.marketplace_order()
    ttl = settings.WATCHER_IP_SEMAPHORE_TTL
    lease = dt.timedelta(seconds=settings.WATCHER_TASK_LEASE_SECONDS)
    texts = pages()
    samples = Samples()
    r = aredis.Redis.from_url(redis_url, decode_responses=True, max_connections=len(agents) + 16)
    claim = r.register_script(distributor._CLAIM)
    release_sha = await r.script_load(semaphore._RELEASE)
    pool = ConnPool(db_url, pool_size)
    await pool.open()
    start = time.perf_counter()
    w0, w1 = start + warmup, start + warmup + duration

    async def agent(i: int, agent_id: str) -> None:
        ip = ips[i]
        rnd = random.Random(i)
        while time.perf_counter() < w1:
            t0 = time.perf_counter()
            task = None
            for mp in order:
                token = secrets.token_hex(16)
                now = dt.datetime.now(dt.UTC)
                deadline = now + lease
                keys = [
                    SEMAPHORE_KEY.format(ip=ip, domain=DOMAINS[mp]),
                    QUEUE_KEY.format(marketplace=mp),
                    INFLIGHT_KEY,
                    BLOCKED_KEY.format(ip=ip),
                ]
                result = await claim(keys=keys, args=[token, ttl, deadline.timestamp()])
                if result[0] != "ok":
                    continue
                async with pool.connection() as conn:
                    cur = await conn.execute(
                        _CLAIM_UPDATE, (agent_id, now, deadline, ip, token, result[1])
                    )
                    row = await cur.fetchone()
                if row is not None:
                    task = (row, token, mp)
                    break
                await r.zrem(INFLIGHT_KEY, result[1])
            t1 = time.perf_counter()
            if task is None:
                samples.idle += 1
                await asyncio.sleep(idle_sleep)
                continue
            (task_id, _url, mp, sku, competitor_id, _priority, _created, lease_version,
             subscription_id, brand), token, mp = task  # fmt: skip
            timing = rnd.randint(3000, 9000)
            raw = page_for(texts, mp, sku)
            now = dt.datetime.now(dt.UTC)
            async with pool.connection() as conn, conn.transaction():
                await conn.execute(
                    _REPORT_INSERT, (task_id, agent_id, lease_version, raw, timing, ip, now)
                )
                await conn.execute(_REPORT_UPDATE, (now, timing, task_id, lease_version))
                await conn.execute(
                    _PRICE_INSERT,
                    (sku, mp, brand, subscription_id, competitor_id, task_id, agent_id, ip,
                     lease_version, now),
                )  # fmt: skip
            pipe = r.pipeline(transaction=False)
            pipe.evalsha(release_sha, 1, SEMAPHORE_KEY.format(ip=ip, domain=DOMAINS[mp]), token)
            pipe.zrem(INFLIGHT_KEY, str(task_id))
            counter = AGENT_COMPLETED_KEY.format(id=agent_id, day=now.date().isoformat())
            pipe.incr(counter)
            pipe.expire(counter, 2 * 24 * 3600)
            pipe.lpush(AGENT_TIMING_KEY.format(id=agent_id), timing)
            pipe.ltrim(AGENT_TIMING_KEY.format(id=agent_id), 0, 99)
            await pipe.execute()
            samples.pairs.append((t0, t1, time.perf_counter()))

    try:
        await asyncio.wait_for(
            asyncio.gather(
                meter.run(w0, w1),
                *(agent(i, agent_id) for i, (agent_id, _) in enumerate(agents)),
            ),
            timeout=warmup + duration + 120,
        )
    finally:
        await pool.close()
        await r.aclose()
    return samples, w0, w1


def db_counters(url: str, redis_url: str) -> dict[str, int]:
    import psycopg
    import redis

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, sessions, tup_inserted, tup_updated, tup_returned + tup_fetched "
            "FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    info = redis.Redis.from_url(redis_url).info("stats")
    return {
        "commits": row[0],
        "sessions": row[1],
        "inserted": row[2],
        "updated": row[3],
        "rows read": row[4],
        "redis commands": info["total_commands_processed"],
    }


def counter_line(before: dict[str, int], after: dict[str, int], pairs: int) -> str:
    # pg_stat_database is updated by backends at most every second or so: approximate.
    parts = [f"{k} {(after[k] - before[k]) / max(1, pairs):.1f}" for k in before]
    return "    per pair (approx.): " + ", ".join(parts)


def clear_locks(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match="watcher:ip_sem:*", count=1000))
    if keys:
        client.delete(*keys)


class Window:
    """CPU and database counters taken at the start and the end of the measured window."""

    def __init__(self, db_url: str, redis_url: str, servers: list[int], redis_pid: int | None):
        self.db_url, self.redis_url = db_url, redis_url
        self.cpu = CpuMeter(servers, redis_pid)

    async def run(self, w0: float, w1: float) -> None:
        await asyncio.sleep(max(0.0, w0 - time.perf_counter()))
        self.cpu.start()
        self.c0 = db_counters(self.db_url, self.redis_url)
        await asyncio.sleep(max(0.0, w1 - time.perf_counter()))
        self.cpu.stop()
        self.c1 = db_counters(self.db_url, self.redis_url)

    def print(self, pairs: int) -> None:
        print("\n".join(self.cpu.lines(pairs)))
        print(counter_line(self.c0, self.c1, pairs))


def run_dispatch(
    opts: argparse.Namespace, db_url: str, env: dict[str, str], tmp: Path, redis_pid: int | None
) -> None:
    ips = agent_ips(opts.agents, opts.ips)
    agents = create_agents(opts.agents)
    print(
        f"\n== 2. dispatch: {opts.agents} agents over {opts.ips} IPs "
        f"({opts.agents / opts.ips:.1f} agents per IP, 3 marketplace domains); HTTP side: "
        f"one uvicorn server with {opts.workers} worker process(es); bare side: one asyncio "
        f"loop, {opts.bare_pool} PostgreSQL connections; warm-up {opts.warmup:g} s, then "
        f"{opts.duration:g} s measured per side"
    )
    ports = [free_port()]
    servers: list[subprocess.Popen[bytes]] = []
    rounds: list[tuple[dict[str, float], dict[str, float]]] = []
    try:
        servers.append(start_server(ports[0], opts.workers, env, tmp / "server.log"))
        asyncio.run(heartbeats(ports, agents, ips))
        pids = [servers[0].pid, *psutil_children(servers[0].pid)]
        for round_no in range(1, opts.rounds + 1):
            if opts.rounds > 1:
                print(f"  -- round {round_no}")
            clear_locks(opts.redis_url)
            window = Window(db_url, opts.redis_url, pids, redis_pid)
            samples, w0, w1 = asyncio.run(
                http_dispatch(ports, agents, opts.warmup, opts.duration, opts.idle_sleep, window)
            )
            http = samples.window(w0, w1).report("HTTP (uvicorn + Django)", w1 - w0)
            window.print(len(samples.window(w0, w1).pairs))
            clear_locks(opts.redis_url)
            window = Window(db_url, opts.redis_url, pids, redis_pid)
            samples, w0, w1 = asyncio.run(
                bare_dispatch(
                    db_url,
                    opts.redis_url,
                    agents,
                    ips,
                    opts.bare_pool,
                    opts.warmup,
                    opts.duration,
                    opts.idle_sleep,
                    window,
                )
            )
            bare = samples.window(w0, w1).report("baseline: bare redis-py + psycopg loop", w1 - w0)
            window.print(len(samples.window(w0, w1).pairs))
            rounds.append((http, bare))
            print(
                ratio_line("ratio HTTP / bare (round trips/s)", http["rate"] / bare["rate"], 0.15)
            )
    finally:
        stop_processes(servers)
    if len(rounds) > 1:
        http_rate = sum(h["rate"] for h, _ in rounds) / len(rounds)
        bare_rate = sum(b["rate"] for _, b in rounds) / len(rounds)
        print(f"  mean of {len(rounds)} rounds: HTTP {http_rate:,.0f}/s, bare {bare_rate:,.0f}/s")
        print(ratio_line("ratio HTTP / bare (mean)", http_rate / bare_rate, 0.15))
    check_consistency()


def check_consistency() -> None:
    """Every completed task has exactly one report and one price row; nothing claimed twice."""
    from django.db.models import Count

    from watcher.models import PriceHistory, Task, TaskReport, TaskStatus

    completed = Task.objects.filter(status=TaskStatus.COMPLETED).count()
    reports = TaskReport.objects.count()
    doubles = TaskReport.objects.values("task").annotate(n=Count("id")).filter(n__gt=1).count()
    in_progress = Task.objects.filter(status=TaskStatus.IN_PROGRESS).count()
    prices = PriceHistory.objects.count()
    print(
        f"  check: {completed:,} tasks completed, {reports:,} reports ({doubles} tasks with more "
        f"than one), {prices:,} price rows, {in_progress} left in progress"
        + ("" if completed == reports == prices and not doubles else "  MISMATCH")
    )


# --- profile: the Django side in-process, no HTTP ------------------------------


def run_profile(opts: argparse.Namespace, tmp: Path) -> None:
    """cProfile of next + report pairs through Django in this process, one thread, no HTTP.

    Django's test client runs the same WSGI handler, URLconf, middleware, DRF views and
    services as the server's HTTP threads, in one thread. What this leaves out is uvicorn,
    a2wsgi's hand-over to a thread and the other threads' competition for the GIL: compare its
    CPU per pair with the server processes' CPU per pair above.
    """
    from django.db import close_old_connections, connection
    from django.test import Client

    from watcher.models import Agent

    agents = create_agents(opts.profile_agents, prefix="profile")
    # These agents take IPs of their own so they never wait on the benchmark agents' locks.
    for i, (agent_id, _) in enumerate(agents):
        Agent.objects.filter(pk=agent_id).update(
            current_ip=f"127.0.9.{1 + i % 250}", status="working"
        )
    connection.close()
    texts = pages()
    client = Client(raise_request_exception=True)
    counts: Counter[str] = Counter()

    def counting(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any):
        counts[sql.split(None, 1)[0].upper()] += 1
        return execute(sql, params, many, context)

    connection.execute_wrappers.append(counting)
    statuses: Counter[str] = Counter()
    keep = opts.conn_max_age != 0

    def loop(n: int) -> int:
        done = 0
        for i in range(n):
            key = agents[i % len(agents)][1]
            auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
            r = client.get(f"{API}/tasks/next", **auth)
            if not keep:
                connection.close()
            statuses[f"next {r.status_code}"] += 1
            if r.status_code != 200:
                continue
            task = r.json()
            body = {
                "raw_text": page_for(texts, task["marketplace"], task["sku"]),
                "timing_ms": 5000,
                "success": True,
                "error": None,
                "lease_version": task["lease_version"],
            }
            r = client.post(
                f"{API}/tasks/{task['id']}/report", body, content_type="application/json", **auth
            )
            if not keep:
                connection.close()
            statuses[f"report {r.status_code}"] += 1
            done += 1
        close_old_connections()
        return done

    loop(min(200, opts.profile))  # warm-up: imports, caches
    counts.clear()
    started, cpu = time.perf_counter(), time.process_time()
    pairs = loop(opts.profile)
    plain = pairs / (time.perf_counter() - started)
    cpu_ms = (time.process_time() - cpu) * 1e3 / max(1, pairs)
    per_pair = {k: v / max(1, pairs) for k, v in counts.most_common()}
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.enable()
    pairs = loop(opts.profile)
    prof.disable()
    seconds = time.perf_counter() - started
    connection.execute_wrappers.remove(counting)
    print(
        f"\n== profile: next + report through Django in-process, one thread, no HTTP "
        f"(statuses {dict(statuses)}; connection "
        f"{'kept' if keep else 'closed after each request, as in production'})"
    )
    print(
        f"  without profiler: {plain:,.0f} pairs/s = {1e3 / plain:.2f} ms per pair, one core; "
        f"{cpu_ms:.2f} ms of this process's CPU per pair"
    )
    print(
        f"  SQL statements per pair: {sum(per_pair.values()):.1f}  ("
        + ", ".join(f"{k} {v:.1f}" for k, v in per_pair.items())
        + ")"
    )
    path = tmp / "profile.pstats"
    prof.dump_stats(path)
    for sort in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out).strip_dirs().sort_stats(sort)
        stats.print_stats(opts.profile_top)
        text = out.getvalue()
        body = text[text.index("   ncalls") :] if "   ncalls" in text else text
        print(
            f"\n  -- by {sort}: {pairs:,} pairs in {seconds:.2f} s under the profiler "
            f"({seconds / max(1, pairs) * 1e3:.2f} ms/pair); dump: {path}"
        )
        print(body.rstrip())
    summarise(prof, pairs)


def summarise(prof: cProfile.Profile, pairs: int) -> None:
    """Own time of the sync thread grouped by where it is spent (by file), per pair."""
    stats = pstats.Stats(prof)
    groups: Counter[str] = Counter()
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        if "{" in filename or filename == "~":
            key = f"builtin {func}"
        else:
            path = filename.replace(str(ROOT) + "/", "")
            if "site-packages/" in path:
                path = path.split("site-packages/", 1)[1]
            elif "/lib/python3" in path:
                path = "stdlib/" + path.split("/lib/python3", 1)[1].split("/", 1)[1]
            key = "/".join(path.split("/")[:2])
        groups[key] += tt
    print("\n  -- sync thread own time by module, ms per pair (top 25)")
    for key, tt in groups.most_common(25):
        print(f"    {tt / max(1, pairs) * 1e3:7.3f}  {key}")
    print(
        "    (own time: wall clock inside each function, so socket waits count where they happen)"
    )


# --- main ---------------------------------------------------------------------------------------


def header(opts: argparse.Namespace, admin_url: str) -> int | None:
    import psycopg
    import redis

    with psycopg.connect(libpq_url(admin_url), connect_timeout=10) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', "
                "'synchronous_commit', 'fsync', 'max_connections', 'max_wal_size')"
            ).fetchall()
        )
    info = redis.Redis.from_url(opts.redis_url).info("server")
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print("Watcher dispatch bench")
    print(
        f"  machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {cpu}, "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}, {platform.platform()}"
    )
    print(
        f"  Python {platform.python_version()}; Django {version('Django')}, DRF "
        f"{version('djangorestframework')}, uvicorn {version('uvicorn')}, uvloop "
        f"{version('uvloop')}, a2wsgi {version('a2wsgi')}, asgiref {version('asgiref')}, psycopg "
        f"{version('psycopg')} (libpq {psycopg.pq.version()}), redis-py {version('redis')}"
    )
    print(
        f"  PostgreSQL {pg} ({', '.join(f'{k}={v}' for k, v in settings.items())}); "
        f"Redis {info['redis_version']} (db {redis_db(opts.redis_url)}, flushed)"
    )
    print(
        f"  options: tasks {opts.tasks:,}, agents {opts.agents}, IPs {opts.ips}, server "
        f"workers {opts.workers}, duration {opts.duration:g} s, bare pool {opts.bare_pool}"
    )
    servers = (
        f"psycopg pool max_size {opts.db_pool} per process"
        if opts.db_pool
        else f"no pool, DATABASE_CONN_MAX_AGE={opts.conn_max_age}"
    )
    print(
        f"  server: {' '.join(server_command(0, opts.workers)[2:])}, DEBUG=0, "
        f"LOG_LEVEL=WARNING, {servers}"
    )
    return int(info["process_id"]) if info.get("process_id") else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    args = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="The Redis database of --redis-url is FLUSHED (FLUSHDB) at the start and at the "
        "end: give the bench a database of its own, e.g. redis://127.0.0.1:6379/3. The "
        f"PostgreSQL database {BENCH_DB} is dropped and created again.",
    )
    args.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="PostgreSQL server (default: $DATABASE_URL); the bench uses its own "
        f"database {BENCH_DB} on it",
    )
    args.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", ""),
        help="Redis database the bench may FLUSH (default: $REDIS_URL; suggested "
        "redis://127.0.0.1:6379/3)",
    )
    args.add_argument("--tasks", type=int, default=1_000_000)
    args.add_argument("--competitors", type=int, default=9, help="per subscription (default 9)")
    args.add_argument("--agents", type=int, default=200)
    args.add_argument(
        "--ips",
        type=int,
        default=0,
        help="distinct agent IPs (default: agents / 3 rounded up, so that every "
        "agent can hold a task: one IP works on one domain at a time, 3 domains)",
    )
    args.add_argument(
        "--workers",
        type=int,
        default=cores,
        help=f"uvicorn worker processes (default: one per core, {cores})",
    )
    args.add_argument("--duration", type=float, default=30.0, help="seconds measured per side")
    args.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    args.add_argument("--rounds", type=int, default=1, help="HTTP + bare rounds (default 1)")
    args.add_argument(
        "--bare-pool",
        type=int,
        default=16,
        help="PostgreSQL connections of the bare loop (default 16)",
    )
    args.add_argument(
        "--idle-sleep",
        type=float,
        default=0.05,
        help="an agent's pause after a 204 (default 0.05 s)",
    )
    args.add_argument("--quick", action="store_true", help="smoke run: 100k tasks, 10 s")
    args.add_argument(
        "--skip-generation",
        action="store_true",
        help="COPY the tasks in instead of timing generation",
    )
    args.add_argument("--skip-dispatch", action="store_true")
    args.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="PAIRS",
        help="after the figures, cProfile PAIRS next+report pairs in-process",
    )
    args.add_argument("--profile-agents", type=int, default=3)
    args.add_argument("--profile-top", type=int, default=30)
    args.add_argument(
        "--conn-max-age",
        type=int,
        default=0,
        help="DATABASE_CONN_MAX_AGE of the servers (production: 0)",
    )
    args.add_argument(
        "--db-pool",
        type=int,
        default=8,
        metavar="N",
        help="DATABASE_POOL_MAX_SIZE of the servers (production default 8; 0 = no pool, "
        "a connection per request thread)",
    )
    args.add_argument("--keep-db", action="store_true", help=f"do not drop {BENCH_DB} at the end")
    opts = args.parse_args(argv)
    if opts.ips <= 0:
        opts.ips = math.ceil(opts.agents / 3)
    if opts.quick:
        opts.tasks, opts.duration = min(opts.tasks, 100_000), min(opts.duration, 10.0)
    if not opts.database_url or urlsplit(opts.database_url).scheme not in PG_SCHEMES:
        args.error(
            "--database-url (or DATABASE_URL) must be a PostgreSQL URL, e.g. "
            "postgres://postgres@127.0.0.1:5432/"
        )
    if not opts.redis_url or urlsplit(opts.redis_url).scheme not in ("redis", "rediss", "unix"):
        args.error(
            "--redis-url (or REDIS_URL) is required, e.g. redis://127.0.0.1:6379/3 "
            "(that database is flushed)"
        )
    if min(opts.tasks, opts.agents, opts.ips, opts.workers, opts.bare_pool) < 1:
        args.error("--tasks, --agents, --ips, --workers and --bare-pool must be positive")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    import redis

    raise_fd_limit(opts.agents * 4 + 512)
    cat = Catalogue(max(1, opts.tasks // (1 + opts.competitors)), opts.competitors)
    redis_client = redis.Redis.from_url(opts.redis_url)
    redis_client.flushdb()
    redis_pid = header(opts, opts.database_url)
    tmp = Path(tempfile.mkdtemp(prefix="watcher-bench-"))
    db_url = create_database(opts.database_url)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "CELERY_", "WATCHER_", "DJANGO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=db_url,
        DATABASE_CONN_MAX_AGE=str(opts.conn_max_age),
        DATABASE_POOL_MAX_SIZE=str(opts.db_pool),
        REDIS_URL=opts.redis_url,
        DEBUG="0",
        LOG_LEVEL="WARNING",
        WATCHER_DATA_DIR=str(tmp),
        SECRET_KEY=secrets.token_urlsafe(50),
        PYTHONDONTWRITEBYTECODE="1",
    )
    server_env = dict(env)
    server_env["PYTHONPATH"] = str(ROOT)
    try:
        migrate(env)
        os.environ.clear()
        os.environ.update(env)
        os.environ["DATABASE_CONN_MAX_AGE"] = "0"
        import django

        django.setup()
        create_catalogue(db_url, cat)
        if opts.skip_generation:
            from watcher.services import generator

            generator.generate_tasks()
        else:
            run_generation(db_url, opts.redis_url, cat)
        from django.db import connections

        connections.close_all()
        if not opts.skip_dispatch:
            run_dispatch(opts, db_url, server_env, tmp, redis_pid)
        if opts.profile:
            os.environ["DATABASE_CONN_MAX_AGE"] = str(opts.conn_max_age)
            from django.conf import settings

            settings.DATABASES["default"]["CONN_MAX_AGE"] = opts.conn_max_age
            connections.close_all()
            run_profile(opts, tmp)
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if opts.keep_db:
            print(f"kept database {BENCH_DB}: {db_url}")
        else:
            drop_database(opts.database_url)
        redis_client.flushdb()
        print(f"logs and profiles: {tmp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
