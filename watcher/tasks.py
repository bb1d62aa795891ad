"""Celery tasks: thin wrappers around services, each with its retry policy."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import httpx
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import OperationalError
from redis.exceptions import RedisError

from watcher.services import agents, commands, distributor, generator, health, results

log = logging.getLogger(__name__)


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
    # Redis lost (restart, flush): rebuilt from PostgreSQL within a minute, before the reaping.
    rebuilt = health.recover_lost_redis()
    counts = distributor.reap_expired_leases()
    counts["redis_rebuilt"] = int(rebuilt)
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


# The async parse path and operators' re-parses; routed to the ``slow`` queue by
# ``CELERY_TASK_ROUTES``. The parser never raises for an LLM failure (it falls back to the rules),
# so the retries are for transport and database trouble; a retry resumes with the reports not done.
@shared_task(name="watcher.reparse_reports", bind=True, acks_late=True, max_retries=5)
def reparse_reports(
    self, report_ids: list[int], backend: str | None = None, only_pending: bool = False
) -> int:
    """Re-parse stored task reports (``TaskReport`` ids) with ``backend`` (None: the route's);
    ``only_pending``: the reports' first parse (a task no longer ``parsing`` is skipped)."""
    for index, report_id in enumerate(report_ids):
        try:
            results.reparse_report(int(report_id), backend, only_pending=only_pending)
        except (httpx.HTTPError, OperationalError) as exc:
            countdown = get_exponential_backoff_interval(
                factor=2, retries=self.request.retries, maximum=300, full_jitter=True
            )
            log.warning(
                "reparse failed report_id=%s retry_in=%ss error=%s",
                report_id,
                countdown,
                type(exc).__name__,
            )
            raise self.retry(
                exc=exc,
                args=(list(report_ids[index:]), backend, only_pending),
                countdown=countdown,
            ) from exc
    return len(report_ids)


@shared_task(name="parser.tasks.reparse_reports")
def reparse_reports_under_old_name(report_ids: list[int], backend: str | None = None) -> None:
    """Hands messages queued before the task moved here from ``parser.tasks`` to the new task;
    drop it once no broker can hold such messages (the release after the move)."""
    reparse_reports.delay(report_ids, backend)
