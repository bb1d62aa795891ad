"""Celery tasks: thin wrappers around services, each with its retry policy."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task
from redis.exceptions import RedisError

from watcher.services import agents, commands, distributor, generator, results


@shared_task(
    name="watcher.generate_daily_tasks",
    autoretry_for=(RedisError,),
    retry_backoff=30,
    retry_jitter=True,
    max_retries=5,
    expires=3600,
)
def generate_daily_tasks(day: str | None = None) -> dict[str, Any]:
    result = generator.generate_tasks(dt.date.fromisoformat(day) if day else None)
    return {
        "day": result.day.isoformat(),
        "created": result.created,
        "expired": result.expired,
        "queued": result.queued,
    }


@shared_task(name="watcher.reap_expired_leases", expires=55)
def reap_expired_leases() -> dict[str, int]:
    counts = distributor.reap_expired_leases()
    counts["parses_resumed"] = results.resume_stalled_parses()
    return counts


@shared_task(name="watcher.mark_offline_agents", expires=55)
def mark_offline_agents() -> list[str]:
    return agents.mark_offline_agents()


@shared_task(name="watcher.resend_commands", expires=9)
def resend_commands() -> dict[str, int]:
    return commands.resend_unacked()


@shared_task(name="watcher.prune_command_history", expires=3500)
def prune_command_history() -> int:
    return commands.prune_history()
