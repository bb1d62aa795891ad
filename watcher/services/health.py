"""Health of the services the dispatcher needs."""

from __future__ import annotations

from typing import Any

import redis
from django.db import DatabaseError, connection
from django.utils import timezone

from parser.types import MARKETPLACES
from watcher.services.redis import QUEUE_KEY, get_redis


def check_health() -> dict[str, Any]:
    """Check Redis and the database for real; ``status`` is "healthy" only if both answer."""
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
    return {
        "status": "healthy" if healthy else "unhealthy",
        "checks": checks,
        "timestamp": timezone.now().isoformat(),
    }
