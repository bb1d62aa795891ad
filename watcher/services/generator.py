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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from parser.types import Marketplace
from watcher.models import PRODUCT_URLS, Competitor, Subscription, Task, TaskStatus
from watcher.services import lifecycle, queues
from watcher.services.errors import Conflict
from watcher.signals import announce_generation

log = logging.getLogger(__name__)

_COLUMNS = (
    "id", "url", "marketplace", "sku", "brand", "subscription_id", "competitor_id", "priority",
    "status", "outcome", "scheduled_date", "retry_count", "error", "lease_version",
    "semaphore_token", "created_at",
)  # fmt: skip
_UUID_SQL = {
    "postgresql": "gen_random_uuid()",
    # Django keeps UUIDs in SQLite as 32 hex digits; these are version 4, variant 1.
    "sqlite": (
        "lower(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2) || "
        "substr('89ab', 1 + abs(random()) % 4, 1) || substr(hex(randomblob(2)), 2) || "
        "hex(randomblob(6)))"
    ),
}


@dataclass
class GenerationResult:
    day: dt.date
    created: dict[str, int] = field(default_factory=dict)
    expired: int = 0
    queued: dict[str, int] = field(default_factory=dict)

    @property
    def total_created(self) -> int:
        return sum(self.created.values())


def _url_sql(sku_column: str) -> str:
    """SQL building the product URL of PRODUCT_URLS from the marketplace and a SKU column."""
    cases = []
    for mp, template in PRODUCT_URLS.items():
        head, tail = template.split("{sku}")
        cases.append(f"WHEN '{mp}' THEN '{head}' || {sku_column} || '{tail}'")
    return f"CASE s.marketplace {' '.join(cases)} END"


def _insert_tasks(day: dt.date, first: int, last: int) -> list[tuple[str, str, int]]:
    """One INSERT … SELECT of the tasks of the subscriptions with ids in ``[first, last]``.

    The database builds the rows, so a night of 10⁶ tasks never crosses into Python; the
    unique constraints and ON CONFLICT make a second run insert nothing.
    """
    try:
        new_uuid = _UUID_SQL[connection.vendor]
    except KeyError as exc:  # pragma: no cover - the project supports these two
        raise NotImplementedError(f"task generation on {connection.vendor}") from exc
    cols = ", ".join(_COLUMNS)
    common = f"'{TaskStatus.PENDING}', '', %s, 0, '', 0, '', %s"
    sql = (
        f"INSERT INTO {Task._meta.db_table} ({cols}) "
        f"SELECT {new_uuid}, {_url_sql('s.sku')}, s.marketplace, s.sku, s.brand, s.id, NULL, "
        f"s.priority, {common} "
        f"FROM {Subscription._meta.db_table} s WHERE s.is_active AND s.id BETWEEN %s AND %s "
        "UNION ALL "
        f"SELECT {new_uuid}, {_url_sql('c.competitor_sku')}, s.marketplace, c.competitor_sku, "
        f"s.brand, s.id, c.id, c.priority, {common} "
        f"FROM {Competitor._meta.db_table} c "
        f"JOIN {Subscription._meta.db_table} s ON s.id = c.subscription_id "
        "WHERE c.is_active AND s.is_active AND s.id BETWEEN %s AND %s "
        "ON CONFLICT DO NOTHING "
        # As text: a million UUID objects cost more than the strings the queues need.
        "RETURNING CAST(id AS text), marketplace, priority"
    )
    ops = connection.ops
    day_value = ops.adapt_datefield_value(day)
    now_value = ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [day_value, now_value, first, last] * 2)
        rows = cursor.fetchall()
    if connection.vendor == "sqlite":
        # SQLite keeps UUIDs as bare hex: queue ids are always the canonical form.
        return [(str(uuid.UUID(pk)), mp, prio) for pk, mp, prio in rows]
    return rows


# Attempts at one chunk while the catalogue rows it reads keep being deleted under it.
CHUNK_ATTEMPTS = 3


def _insert_chunk(day: dt.date, first: int, last: int) -> list[tuple[str, str, int]]:
    """Insert and commit one chunk of the night.

    The foreign keys are checked at commit: a subscription or competitor deleted after the
    INSERT read it fails the chunk, and the next attempt no longer sees the row.
    """
    for _attempt in range(CHUNK_ATTEMPTS - 1):
        try:
            with transaction.atomic():
                return _insert_tasks(day, first, last)
        except IntegrityError:
            log.warning("catalogue rows deleted during generation; inserting the chunk again")
    with transaction.atomic():
        return _insert_tasks(day, first, last)


def _queues_lost_tasks() -> bool:
    """True when Redis holds fewer ids than there are pending tasks (Redis was flushed)."""
    pending = Task.objects.filter(status=TaskStatus.PENDING).count()
    return sum(queues.lengths().values()) < pending


# One generation at a time (the beat's and "generate now" may overlap): side by side, the first
# to finish would miss the other's ids not yet pushed and rebuild every queue for nothing. A
# session-level lock, so a crashed run's lock goes with its connection.
GENERATION_LOCK = 0x5741_5447  # "WATG"


@contextmanager
def one_generation_at_a_time(*, wait: bool = True) -> Iterator[None]:
    """Hold the generation lock; ``wait=False``: ``Conflict`` if another run holds it.

    SQLite needs none: it runs one writer at a time."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_lock(%s)", [GENERATION_LOCK])
        else:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [GENERATION_LOCK])
            if not cursor.fetchone()[0]:
                raise Conflict(_("A task generation is already running."))
    try:
        yield
    finally:
        # The connection goes back to the pool afterwards: it must not keep the lock.
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [GENERATION_LOCK])
        except DatabaseError:
            # A broken connection or transaction: close it for real, and the lock goes too.
            log.exception("could not release the generation lock; closing the connection")
            if connection.connection is not None:
                connection.connection.close()
            connection.close()


# Subscriptions per INSERT: about 10⁵ tasks with 9 competitors each.
CHUNK_SUBSCRIPTIONS = 10_000


def _id_ranges(size: int) -> list[tuple[int, int]]:
    """``(first, last)`` id bounds of consecutive runs of ``size`` active subscriptions."""
    ids = list(
        Subscription.objects.filter(is_active=True).order_by("id").values_list("id", flat=True)
    )
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]


def generate_tasks(day: dt.date | None = None, *, wait: bool = True) -> GenerationResult:
    """Build the night's tasks for ``day`` (default: today, local time) and queue them.

    The night is inserted in chunks of subscriptions, each committed on its own; while the
    database inserts one chunk, a thread pushes the ids of the chunk before it to Redis (ids
    reach Redis only once their rows are committed). A run that stops half-way leaves whole
    chunks behind, and running it again completes the night.

    One run at a time: with ``wait=False`` (a person clicking in the admin) a run already going
    raises ``Conflict`` instead of holding the request until it ends.
    """
    day = day or timezone.localdate()
    with one_generation_at_a_time(wait=wait):
        return announce_generation(day, _generate)


def _generate(day: dt.date) -> GenerationResult:
    result = GenerationResult(day=day)
    # Earlier nights' tasks that never started; their ids leave the queues after the commit.
    result.expired = len(lifecycle.expire(day))
    counts: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="queue-push") as pusher:
        pushed = []
        for first, last in _id_ranges(CHUNK_SUBSCRIPTIONS):
            created = _insert_chunk(day, first, last)
            counts.update(mp for _pk, mp, _prio in created)
            pushed.append(pusher.submit(queues.push, created))
        for future in pushed:
            future.result()
    result.created = {mp: counts[mp] for mp in Marketplace.values}
    if _queues_lost_tasks():
        queues.rebuild()
    result.queued = queues.lengths()
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
