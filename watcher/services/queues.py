"""Per-marketplace ready queues in Redis, rebuildable from PostgreSQL at any time.

A queue ``watcher:task_queue:{marketplace}`` is a sorted set of task ids scored
``priority + random fraction``: ZPOPMAX hands out the highest priority first and picks at
random among equals, so agents never walk the catalogue in a predictable order.
Claimed ids sit in ``watcher:task_inflight`` scored by their lease deadline until reported.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from parser.types import MARKETPLACES
from watcher.models import Task, TaskStatus
from watcher.services.redis import INFLIGHT_KEY, QUEUE_KEY, get_redis

_BATCH = 10_000
# Set whenever the queues are filled; a Redis that lost its data (restart without persistence,
# flush, failover to an empty replica) has lost it too, which is how the loss is noticed.
MARKER_KEY = "watcher:queues_built"


def queue_key(marketplace: str) -> str:
    return QUEUE_KEY.format(marketplace=marketplace)


def score(priority: int) -> float:
    # The fraction stays below 1 so a higher priority always wins.
    return priority + random.random() * 0.999


def push(items: Iterable[tuple[str, str, int]]) -> int:
    """Queue ``(task_id, marketplace, priority)`` triples; returns how many were sent."""
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    batch: dict[str, dict[str, float]] = {}
    count = 0
    for task_id, marketplace, priority in items:
        batch.setdefault(marketplace, {})[str(task_id)] = score(priority)
        count += 1
        if count % _BATCH == 0:
            for mp, mapping in batch.items():
                pipe.zadd(queue_key(mp), mapping)
            pipe.execute()
            batch = {}
    for mp, mapping in batch.items():
        pipe.zadd(queue_key(mp), mapping)
    pipe.set(MARKER_KEY, "1")
    pipe.execute()
    return count


def remove(task_ids: Iterable[str]) -> None:
    ids = [str(t) for t in task_ids]
    if not ids:
        return
    pipe = get_redis().pipeline(transaction=False)
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        for mp in MARKETPLACES:
            pipe.zrem(queue_key(mp), *chunk)
        pipe.zrem(INFLIGHT_KEY, *chunk)
    pipe.execute()


def lengths() -> dict[str, int]:
    pipe = get_redis().pipeline(transaction=False)
    for mp in MARKETPLACES:
        pipe.zcard(queue_key(mp))
    return dict(zip(MARKETPLACES, (int(n) for n in pipe.execute()), strict=True))


def rebuild() -> dict[str, Any]:
    """Rebuild every ready queue from the pending tasks in the database.

    Each queue is built under a temporary key and swapped in with RENAME, so agents never see
    a half-built queue. A pending id that is also in flight (claimed a moment ago) is harmless:
    the claim's conditional UPDATE lets only one agent have it.
    """
    client = get_redis()
    counts: dict[str, int] = {}
    for mp in MARKETPLACES:
        tmp = f"{queue_key(mp)}:rebuild"
        client.delete(tmp)
        rows = (
            Task.objects.filter(status=TaskStatus.PENDING, marketplace=mp)
            .values_list("id", "priority")
            .iterator(chunk_size=_BATCH)
        )
        pipe = client.pipeline(transaction=False)
        mapping: dict[str, float] = {}
        n = 0
        for task_id, priority in rows:
            mapping[str(task_id)] = score(priority)
            n += 1
            if len(mapping) >= _BATCH:
                pipe.zadd(tmp, mapping)
                pipe.execute()
                mapping = {}
        if mapping:
            pipe.zadd(tmp, mapping)
            pipe.execute()
        if n:
            client.rename(tmp, queue_key(mp))
        else:
            client.delete(queue_key(mp))
        counts[mp] = n
    client.set(MARKER_KEY, "1")
    return counts
