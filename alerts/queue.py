"""Stored observations waiting for the alert engine, checked in batches by one worker task.

The result handler pushes each observation id to a Redis list and starts a Celery task only
when none is already on its way; that task checks everything waiting in batches of
``BATCH`` (``engine.check_many``). A quiet night checks each observation at once, alone; a busy
one lets the ids pile up while a batch is checked, and the next batch takes them all in the
same few queries, so checking keeps up with saving.
"""

from __future__ import annotations

import logging

from alerts import engine
from watcher.services.redis import get_redis

log = logging.getLogger(__name__)

PENDING_KEY = "alerts:pending"
# Set while a drain task is queued or running; it expires in case a worker dies mid-drain.
SCHEDULED_KEY = "alerts:drain-scheduled"
SCHEDULED_TTL = 300
BATCH = 500


def enqueue(price_history_id: int) -> None:
    """Queue one stored observation for the engine (call it after commit)."""
    pipe = get_redis().pipeline(transaction=False)  # one round trip
    pipe.rpush(PENDING_KEY, price_history_id)
    pipe.set(SCHEDULED_KEY, 1, nx=True, ex=SCHEDULED_TTL)
    _length, scheduled = pipe.execute()
    if scheduled:
        from alerts.tasks import check_pending

        check_pending.delay()


def drain(batch: int = BATCH) -> int:
    """Check every queued observation, ``batch`` at a time; returns how many were checked."""
    redis = get_redis()
    checked = 0
    while True:
        ids = redis.lpop(PENDING_KEY, batch)
        if ids:
            try:
                engine.check_many([int(i) for i in ids])
            except Exception:
                # Their prices are stored; only these checks are lost. The rest goes on.
                log.exception("alert check failed", extra={"observations": len(ids)})
            checked += len(ids)
            continue
        # Nothing left: let the next enqueue start a task, unless one arrived meanwhile.
        redis.delete(SCHEDULED_KEY)
        if not redis.llen(PENDING_KEY) or not redis.set(
            SCHEDULED_KEY, 1, nx=True, ex=SCHEDULED_TTL
        ):
            return checked
