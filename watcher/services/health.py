"""Health of the services the dispatcher needs, and recovery from a Redis that lost its data."""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.db import DatabaseError, connection
from django.utils import timezone

from parser.types import MARKETPLACES
from watcher.models import DOMAINS, PanicBlock, Task, TaskStatus
from watcher.services import agents, queues, semaphore
from watcher.services.redis import QUEUE_KEY, get_redis

log = logging.getLogger(__name__)


def recover_lost_redis() -> bool:
    """If Redis lost its data, rebuild what PostgreSQL knows: the ready queues, the running
    tasks' IP semaphores and the panic blocks. Run every minute by the reaper; True if it
    rebuilt."""
    if not redis_lost():
        return False
    log.warning("redis lost the queues: rebuilding them from the database")
    restore_semaphores()
    blocks = agents.restore_blocks()
    counts = queues.rebuild()
    log.warning("redis rebuilt", extra={"tasks_queued": counts, "ip_blocks": blocks})
    return True


def redis_lost() -> bool:
    """Whether Redis lost what it mirrors of PostgreSQL: its queues' marker is gone while the
    database has work or blocks in force, or every queue is empty while tasks are pending."""
    if get_redis().exists(queues.MARKER_KEY):
        return (
            sum(queues.lengths().values()) == 0
            and Task.objects.filter(status=TaskStatus.PENDING).exists()
        )
    return (
        Task.objects.filter(status__in=[TaskStatus.PENDING, TaskStatus.IN_PROGRESS]).exists()
        or PanicBlock.objects.filter(expires_at__gt=timezone.now()).exists()
    )


def restore_semaphores() -> int:
    """Re-take the IP semaphores of the running tasks (same token, the lease's remaining time),
    so that no other agent on the IP is handed the same marketplace meanwhile."""
    now = timezone.now()
    running = Task.objects.filter(
        status=TaskStatus.IN_PROGRESS, lease_expires_at__gt=now, claimed_ip__isnull=False
    ).exclude(semaphore_token="")
    count = 0
    for task in running.only("marketplace", "claimed_ip", "semaphore_token", "lease_expires_at"):
        ttl = int((task.lease_expires_at - now).total_seconds()) + 1
        domain = DOMAINS[task.marketplace]
        count += semaphore.acquire(str(task.claimed_ip), domain, task.semaphore_token, ttl)
    return count


def check_health() -> dict[str, Any]:
    """Check Redis and the database for real; ``status`` is "healthy" only if both answer,
    "degraded" while Redis has lost the queues (until the reaper rebuilds them)."""
    checks: dict[str, Any] = {"redis": "ok", "postgresql": "ok", "tasks_queued": 0}
    try:
        client = get_redis()
        pipe = client.pipeline(transaction=False)
        for mp in MARKETPLACES:
            pipe.zcard(QUEUE_KEY.format(marketplace=mp))
        checks["tasks_queued"] = int(sum(pipe.execute()))
    except redis.RedisError:
        checks["redis"] = "error"
        checks["tasks_queued"] = None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        checks["postgresql"] = "error"
    healthy = checks["redis"] == "ok" and checks["postgresql"] == "ok"
    status = "healthy" if healthy else "unhealthy"
    if healthy:
        try:
            if redis_lost():  # until the reaper's next pass rebuilds it
                checks["redis"] = status = "degraded"
        except (redis.RedisError, DatabaseError):
            checks["redis"], status = "error", "unhealthy"
    return {
        "status": status,
        "checks": checks,
        "timestamp": timezone.now().isoformat(),
    }
