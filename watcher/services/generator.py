"""Nightly task generation (SPEC §4).

For every active subscription: one task for our SKU and one per active competitor. Idempotent
per night (unique constraints + insert-or-ignore); leftovers of earlier nights that never ran
are marked ``expired``; ids reach the Redis queues only after their rows are committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from parser.types import Marketplace
from watcher.models import Competitor, Subscription, Task, TaskOutcome, TaskStatus, product_url
from watcher.services import queues

log = logging.getLogger(__name__)

_COLUMNS = (
    "id",
    "url",
    "marketplace",
    "sku",
    "brand",
    "subscription_id",
    "competitor_id",
    "priority",
    "status",
    "outcome",
    "scheduled_date",
    "retry_count",
    "error",
    "lease_version",
    "semaphore_token",
    "created_at",
)
_BATCH = 5_000


@dataclass
class GenerationResult:
    day: dt.date
    created: dict[str, int] = field(default_factory=dict)
    expired: int = 0
    queued: dict[str, int] = field(default_factory=dict)

    @property
    def total_created(self) -> int:
        return sum(self.created.values())


def _rows(day: dt.date) -> Iterator[tuple[object, ...]]:
    now = timezone.now()
    subs = Subscription.objects.filter(is_active=True).values_list(
        "id", "brand", "marketplace", "sku", "priority"
    )
    by_sub: dict[int, tuple[str, str, str]] = {}
    for sub_id, brand, mp, sku, priority in subs.iterator(chunk_size=_BATCH):
        by_sub[sub_id] = (brand, mp, sku)
        yield (uuid.uuid4(), product_url(mp, sku), mp, sku, brand, sub_id, None, priority, now)
    comps = Competitor.objects.filter(is_active=True, subscription__is_active=True).values_list(
        "id", "subscription_id", "competitor_sku", "priority"
    )
    for comp_id, sub_id, sku, priority in comps.iterator(chunk_size=_BATCH):
        brand, mp, _own = by_sub[sub_id]
        yield (uuid.uuid4(), product_url(mp, sku), mp, sku, brand, sub_id, comp_id, priority, now)


def _insert_postgresql(day: dt.date) -> None:
    """COPY into a staging table, then insert what is not there yet: the fast path."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE watcher_task_stage (LIKE watcher_task INCLUDING DEFAULTS) "
            "ON COMMIT DROP"
        )
        cols = ", ".join(_COLUMNS)
        with cursor.cursor.copy(f"COPY watcher_task_stage ({cols}) FROM STDIN") as copy:
            for tid, url, mp, sku, brand, sub_id, comp_id, priority, now in _rows(day):
                copy.write_row(
                    (tid, url, mp, sku, brand, sub_id, comp_id, priority, TaskStatus.PENDING, "",
                     day, 0, "", 0, "", now)
                )  # fmt: skip
        cursor.execute(
            f"INSERT INTO watcher_task ({cols}) SELECT {cols} FROM watcher_task_stage "
            "ON CONFLICT DO NOTHING"
        )


def _insert_portable(day: dt.date) -> None:
    batch: list[Task] = []
    for tid, url, mp, sku, brand, sub_id, comp_id, priority, now in _rows(day):
        batch.append(
            Task(id=tid, url=url, marketplace=mp, sku=sku, brand=brand, subscription_id=sub_id,
                 competitor_id=comp_id, priority=priority, scheduled_date=day, created_at=now)
        )  # fmt: skip
        if len(batch) >= _BATCH:
            Task.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        Task.objects.bulk_create(batch, ignore_conflicts=True)


def expire_leftovers(before: dt.date) -> int:
    """Mark tasks of earlier nights that never started as ``expired``."""
    return Task.objects.filter(status=TaskStatus.PENDING, scheduled_date__lt=before).update(
        status=TaskStatus.EXPIRED, outcome=TaskOutcome.EXPIRED, completed_at=timezone.now()
    )


def _count_by_marketplace(day: dt.date) -> Counter[str]:
    rows = (
        Task.objects.filter(scheduled_date=day).values_list("marketplace").annotate(n=Count("id"))
    )
    return Counter(dict(rows))


def generate_tasks(day: dt.date | None = None) -> GenerationResult:
    """Build the night's tasks for ``day`` (default: today, local time) and queue them."""
    day = day or timezone.localdate()
    result = GenerationResult(day=day)
    before = _count_by_marketplace(day)
    with transaction.atomic():
        result.expired = expire_leftovers(day)
        if connection.vendor == "postgresql":
            _insert_postgresql(day)
        else:
            _insert_portable(day)
    after = _count_by_marketplace(day)
    result.created = {mp: after[mp] - before[mp] for mp in Marketplace.values}
    # Only now, with the rows committed, do their ids go to Redis.
    result.queued = queues.rebuild()
    log.info(
        "tasks generated",
        extra={
            "day": day.isoformat(),
            "tasks_created": result.created,
            "tasks_expired": result.expired,
            "tasks_queued": result.queued,
        },
    )
    return result
