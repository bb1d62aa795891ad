"""Stored observations waiting for the alert engine, checked in batches by one worker task.

The result handler queues each observation as a ``PendingCheck`` row in the transaction that
stores it, and after commit starts a Celery task unless one is already on its way (a flag in
Redis). That task checks everything waiting in batches of ``BATCH`` (``engine.check_many``) and
deletes the rows in the transaction that writes the alerts. A quiet night checks each
observation at once, alone; a busy one lets them pile up while a batch is checked, and the next
batch takes them all in the same few queries. The queue itself lives in PostgreSQL: a flushed
Redis or a worker killed mid-check leaves the rows for the next task (the periodic one at the
latest).
"""

from __future__ import annotations

import logging

from django.db import connection, transaction

from alerts import engine
from alerts.models import PendingCheck
from watcher.services.redis import get_redis

log = logging.getLogger(__name__)

# Set while a drain task is queued or running; it expires in case a worker dies mid-drain.
SCHEDULED_KEY = "alerts:drain-scheduled"
SCHEDULED_TTL = 300
BATCH = 500
# PostgreSQL advisory lock serialising the batches (any constant unique to this use).
LOCK_KEY = 0x616C_6572  # "aler"


def enqueue(price_history_id: int) -> None:
    """Queue one stored observation for the engine (inside the transaction that stores it)."""
    # An upsert, not "do nothing": a re-parse of an observation a drain holds right now waits
    # for that drain and queues it again, so its new figures are checked too.
    PendingCheck.objects.bulk_create(
        [PendingCheck(observation_id=price_history_id)],
        update_conflicts=True,
        unique_fields=["observation"],
        update_fields=["queued_at"],
    )
    # robust: a Redis error must not fail the agent's committed report; the periodic task drains.
    transaction.on_commit(start_drain, robust=True)


def start_drain() -> None:
    """Send a drain task unless one is already queued or running."""
    if get_redis().set(SCHEDULED_KEY, 1, nx=True, ex=SCHEDULED_TTL):
        from alerts.tasks import check_pending

        check_pending.delay()


def drain(batch: int = BATCH) -> int:
    """Check every queued observation, ``batch`` at a time; returns how many were checked."""
    redis = get_redis()
    checked = 0
    while True:
        done = check_batch(batch)
        checked += done
        if done:
            redis.expire(SCHEDULED_KEY, SCHEDULED_TTL)  # still on it: no second task needed
            continue
        redis.delete(SCHEDULED_KEY)
        # One committed between the empty read and the delete found the flag set and sent no
        # task: look once more, and carry on unless a new task has taken over meanwhile.
        done = check_batch(batch)
        checked += done
        if not done or not redis.set(SCHEDULED_KEY, 1, nx=True, ex=SCHEDULED_TTL):
            return checked


def check_batch(batch: int = BATCH) -> int:
    """Check up to ``batch`` of the oldest queued observations no other worker holds."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # One batch at a time across workers: a later reading of a pair must see what an
            # earlier one decided (resolved, streaks). Released at commit or rollback.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        ids = list(
            PendingCheck.objects.select_for_update(skip_locked=True)
            .order_by("observation_id")
            .values_list("observation_id", flat=True)[:batch]
        )
        if not ids:
            return 0
        try:
            with transaction.atomic():
                engine.check_many(ids)
        except Exception:
            log.exception(
                "alert check failed; checking the batch one by one", extra={"n": len(ids)}
            )
            for observation_id in ids:
                try:
                    with transaction.atomic():
                        engine.check_many([observation_id])
                except Exception:
                    # Its price is stored; only this check is given up, or it would block the rest.
                    log.exception("alert check failed", extra={"observation": observation_id})
        PendingCheck.objects.filter(observation_id__in=ids).delete()
    return len(ids)
