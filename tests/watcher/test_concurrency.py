"""Real concurrency: many agents on a few IPs pulling thousands of tasks at once."""

from __future__ import annotations

import os
import random
import threading
from collections import Counter

import pytest
from django.db import connection, connections

from parser.types import Marketplace
from tests.watcher.pages import WB_PAGE
from watcher.models import DOMAINS, Competitor, Subscription, Task, TaskStatus
from watcher.services import distributor, semaphore
from watcher.services.agents import create_agent
from watcher.services.generator import generate_tasks
from watcher.services.results import ReportInput, submit_report

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AGENTS = 24
IPS = 6
SUBSCRIPTIONS = int(os.environ.get("WATCHER_RACE_SUBSCRIPTIONS", "1000"))
COMPETITORS_EACH = 4  # 1,000 × (1 + 4) = 5,000 tasks


def _catalogue() -> None:
    mps = list(Marketplace.values)
    subs = Subscription.objects.bulk_create(
        Subscription(brand="B", marketplace=mps[i % 3], sku=f"{100000 + i}", priority=i % 4)
        for i in range(SUBSCRIPTIONS)
    )
    Competitor.objects.bulk_create(
        Competitor(subscription=s, competitor_sku=f"{s.sku}-{j}", priority=j)
        for s in subs
        for j in range(COMPETITORS_EACH)
    )


def test_no_task_twice_and_no_ip_domain_pair_held_twice() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency claim is about PostgreSQL; set DATABASE_URL (CI does)")
    _catalogue()
    total = generate_tasks().total_created
    assert total == SUBSCRIPTIONS * (1 + COMPETITORS_EACH)
    handles = [create_agent(f"racer-{i}")[0] for i in range(AGENTS)]
    ips = [f"10.20.0.{i + 1}" for i in range(IPS)]

    held: set[tuple[str, str]] = set()
    held_lock = threading.Lock()
    handed_out: list[str] = []
    violations: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(AGENTS)

    def run(index: int) -> None:
        agent, ip = handles[index], ips[index % IPS]
        rng = random.Random(index)
        try:
            start.wait()
            idle = 0
            while idle < 3:
                task = distributor.claim_next_task(agent, ip)
                connections.close_all()  # a request's end: the connection goes back to the pool
                if task is None:
                    idle += 1
                    continue
                idle = 0
                pair = (ip, DOMAINS[task.marketplace])
                with held_lock:
                    if pair in held:
                        violations.append(f"{pair} held twice")
                    held.add(pair)
                    handed_out.append(str(task.pk))
                if rng.random() < 0.01:
                    threading.Event().wait(0.001)
                with held_lock:
                    held.discard(pair)
                submit_report(
                    agent,
                    str(task.pk),
                    ReportInput(raw_text=WB_PAGE, timing_ms=10, success=True, error=None),
                    ip=ip,
                )
                connections.close_all()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(AGENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors[:3]
    assert not violations, violations[:5]
    duplicates = [tid for tid, n in Counter(handed_out).items() if n > 1]
    assert duplicates == []
    assert len(handed_out) == total
    open_tasks = Task.objects.filter(status__in=[TaskStatus.PENDING, TaskStatus.IN_PROGRESS])
    assert open_tasks.count() == 0
    assert semaphore.stats()["total_locks"] == 0
