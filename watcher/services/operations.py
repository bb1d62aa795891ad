"""Operators' state changes (admin actions): requeue and cancel tasks, switch agents and SKUs.

The task moves themselves are transitions of the Task state machine (services/lifecycle.py):
one transaction of conditional updates on locked rows, Redis touched only after the commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from watcher.models import Agent, Competitor, Subscription, TaskReport, TaskStatus
from watcher.services import agents as agent_service
from watcher.services import distributor, lifecycle

log = logging.getLogger(__name__)


def requeue_tasks(task_ids: Iterable[uuid.UUID | str]) -> int:
    """Send finished-but-unsuccessful and running tasks back to the ready queue.

    ``failed``, ``parse_error``, ``expired``, ``cancelled`` and ``in_progress`` tasks become
    ``pending`` with no agent and a fresh retry budget; a running task's IP semaphore is
    released. Their ids reach Redis after the commit. Returns how many tasks were requeued.
    """
    count = lifecycle.requeue(task_ids)
    log.info("tasks requeued by operator", extra={"count": count})
    return count


def cancel_tasks(task_ids: Iterable[uuid.UUID | str]) -> int:
    """Cancel pending and running tasks: ``cancelled`` with outcome ``cancelled``.

    After the commit their ids leave the ready queues and the in-flight set and a running
    task's IP semaphore is released; a late report of a cancelled task is refused (409).
    Returns how many tasks were cancelled.
    """
    count = lifecycle.cancel(task_ids)
    log.info("tasks cancelled by operator", extra={"count": count})
    return count


# --- Agents -----------------------------------------------------------------------------------


def set_agents_enabled(agent_ids: Iterable[uuid.UUID | str], enabled: bool) -> int:
    """Enable or disable agents; a disabled agent's running tasks go back to the queue.

    Returns how many agents changed.
    """
    ids = [str(a) for a in agent_ids]
    with transaction.atomic():
        changing = list(
            Agent.objects.select_for_update().filter(pk__in=ids).exclude(is_enabled=enabled)
        )
        changed = Agent.objects.filter(
            pk__in=[a.pk for a in changing], is_enabled=not enabled
        ).update(is_enabled=enabled)
        if not enabled:
            agent_service.close_sockets(
                [a.pk for a in changing], agent_service.SOCKET_CLOSE_DISABLED
            )
            for agent in changing:
                # The API now refuses it, so it could not report them: hand them back now.
                distributor.requeue_agent_tasks(agent, reason="agent disabled by an operator")
    log.info("agents switched", extra={"enabled": enabled, "count": changed})
    return changed


# --- Subscriptions and competitors ------------------------------------------------------------


def _set_active(queryset: QuerySet[Any], ids: Iterable[Any], active: bool) -> int:
    return queryset.filter(pk__in=list(ids)).exclude(is_active=active).update(is_active=active)


def set_subscriptions_active(subscription_ids: Iterable[int], active: bool) -> int:
    """Switch subscriptions on or off for the next nights; returns how many changed."""
    return _set_active(Subscription.objects.all(), subscription_ids, active)


def set_competitors_active(competitor_ids: Iterable[int], active: bool) -> int:
    """Switch competitors on or off for the next nights; returns how many changed."""
    return _set_active(Competitor.objects.all(), competitor_ids, active)


# Archiving keeps a row's price history: it stops being watched and leaves the default lists.


def _archive(queryset: QuerySet[Any], ids: Iterable[Any]) -> int:
    rows = queryset.filter(pk__in=list(ids), archived_at__isnull=True)
    return rows.update(archived_at=timezone.now(), is_active=False)


def _unarchive(queryset: QuerySet[Any], ids: Iterable[Any]) -> int:
    rows = queryset.filter(pk__in=list(ids), archived_at__isnull=False)
    return rows.update(archived_at=None, is_active=True)


def archive_subscriptions(subscription_ids: Iterable[int]) -> int:
    """Archive subscriptions (inactive, hidden by default, history kept); how many changed."""
    return _archive(Subscription.objects.all(), subscription_ids)


def unarchive_subscriptions(subscription_ids: Iterable[int]) -> int:
    """Bring archived subscriptions back, active again; how many changed."""
    return _unarchive(Subscription.objects.all(), subscription_ids)


def archive_competitors(competitor_ids: Iterable[int]) -> int:
    """Archive competitors (inactive, hidden by default, history kept); how many changed."""
    return _archive(Competitor.objects.all(), competitor_ids)


def unarchive_competitors(competitor_ids: Iterable[int]) -> int:
    """Bring archived competitors back, active again; how many changed."""
    return _unarchive(Competitor.objects.all(), competitor_ids)


__all__: list[str] = [
    "archive_competitors",
    "archive_subscriptions",
    "cancel_tasks",
    "reparse_tasks",
    "requeue_tasks",
    "set_agents_enabled",
    "set_competitors_active",
    "set_subscriptions_active",
    "unarchive_competitors",
    "unarchive_subscriptions",
]


def reparse_tasks(task_ids: Iterable[uuid.UUID | str], backend: str) -> int:
    """Queue a re-parse of the stored raw reports of finished tasks with ``backend``.

    The report re-parsed is the one of the task's latest lease that carried a page; a worker
    does the parsing (an LLM may be slow) and replaces the task's result. Returns how many
    reports were queued.
    """
    from watcher.tasks import reparse_reports

    ids = [str(t) for t in task_ids]
    finished = (TaskStatus.COMPLETED, TaskStatus.PARSE_ERROR, TaskStatus.FAILED)
    latest = {
        task_id: report_id
        for task_id, report_id in TaskReport.objects.filter(
            task_id__in=ids,
            task__status__in=finished,
            success=True,
            attempt=F("task__lease_version"),
        ).values_list("task_id", "pk")
    }
    report_ids = sorted(latest.values())
    if report_ids:
        transaction.on_commit(lambda: reparse_reports.delay(report_ids, backend))
    return len(report_ids)
