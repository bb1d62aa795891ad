"""Operators' state changes (admin actions): requeue and cancel tasks, switch agents and SKUs.

Each change is one transaction of conditional updates on rows locked for the duration, and
Redis (queues, in-flight set, IP semaphores) is touched only after the commit, so a rolled
back change never leaves a queued id behind and a racing agent report is never undone.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from watcher.models import (
    DOMAINS,
    Agent,
    Competitor,
    Subscription,
    Task,
    TaskOutcome,
    TaskReport,
    TaskStatus,
)
from watcher.services import distributor, queues, semaphore

log = logging.getLogger(__name__)

#: Statuses an operator may send back to the queue (``in_progress`` too, handled apart).
REQUEUEABLE_STATUSES = (
    TaskStatus.FAILED,
    TaskStatus.PARSE_ERROR,
    TaskStatus.EXPIRED,
    TaskStatus.CANCELLED,
)
CANCELLABLE_STATUSES = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)
_CHUNK = 1_000


@dataclass(frozen=True)
class _Lease:
    """What is needed to let go of a running task's Redis state after commit."""

    task_id: str
    marketplace: str
    priority: int
    ip: str | None
    token: str


def _chunks(ids: Iterable[uuid.UUID | str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for task_id in ids:
        batch.append(str(task_id))
        if len(batch) >= _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _locked(ids: list[str], statuses: Iterable[str]) -> list[Task]:
    # Row locks (PostgreSQL) keep a concurrent claim or report from interleaving; the updates
    # below stay conditional anyway, so SQLite (no row locks) is still safe.
    return list(
        Task.objects.select_for_update()
        .filter(pk__in=ids, status__in=list(statuses))
        .only(
            "id", "status", "marketplace", "priority", "lease_version", "claimed_ip",
            "semaphore_token",
        )
    )  # fmt: skip


def _release_running(leases: list[_Lease]) -> None:
    for lease in leases:
        if lease.ip:
            semaphore.release(lease.ip, DOMAINS[lease.marketplace], lease.token)


def _lease_of(task: Task) -> _Lease:
    return _Lease(
        task_id=str(task.pk),
        marketplace=task.marketplace,
        priority=task.priority,
        ip=task.claimed_ip,
        token=task.semaphore_token,
    )


def _settle_in_progress(task: Task, fields: dict[str, Any]) -> bool:
    """Update a running task only under the lease we saw (a report racing with us wins)."""
    return bool(
        Task.objects.filter(
            pk=task.pk, status=TaskStatus.IN_PROGRESS, lease_version=task.lease_version
        ).update(**fields)
    )


def requeue_tasks(task_ids: Iterable[uuid.UUID | str]) -> int:
    """Send finished-but-unsuccessful and running tasks back to the ready queue.

    ``failed``, ``parse_error``, ``expired``, ``cancelled`` and ``in_progress`` tasks become
    ``pending`` with no agent and a fresh retry budget; a running task's IP semaphore is
    released. Their ids reach Redis after the commit. Returns how many tasks were requeued.
    """
    fields: dict[str, Any] = {
        "status": TaskStatus.PENDING,
        "outcome": "",
        "agent": None,
        "retry_count": 0,
        "error": "",
        "lease_expires_at": None,
        "completed_at": None,
        "execution_time_ms": None,
    }
    requeued: list[_Lease] = []
    running: list[_Lease] = []
    with transaction.atomic():
        for ids in _chunks(task_ids):
            tasks = _locked(ids, (*REQUEUEABLE_STATUSES, TaskStatus.IN_PROGRESS))
            finished = [t for t in tasks if t.status != TaskStatus.IN_PROGRESS]
            if finished and Task.objects.filter(
                pk__in=[t.pk for t in finished], status__in=REQUEUEABLE_STATUSES
            ).update(**fields):
                requeued.extend(_lease_of(t) for t in finished)
            for task in tasks:
                if task.status == TaskStatus.IN_PROGRESS and _settle_in_progress(task, fields):
                    lease = _lease_of(task)
                    requeued.append(lease)
                    running.append(lease)
        _clear_current_task([lease.task_id for lease in running])

        def after_commit() -> None:
            _release_running(running)
            queues.remove(lease.task_id for lease in running)  # out of the in-flight set
            queues.push((lease.task_id, lease.marketplace, lease.priority) for lease in requeued)

        transaction.on_commit(after_commit)
    log.info("tasks requeued by operator", extra={"count": len(requeued)})
    return len(requeued)


def cancel_tasks(task_ids: Iterable[uuid.UUID | str]) -> int:
    """Cancel pending and running tasks: ``cancelled`` with outcome ``cancelled``.

    After the commit their ids leave the ready queues and the in-flight set and a running
    task's IP semaphore is released; a late report of a cancelled task is refused (409).
    Returns how many tasks were cancelled.
    """
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": TaskStatus.CANCELLED,
        "outcome": TaskOutcome.CANCELLED,
        "error": "",
        "lease_expires_at": None,
        "completed_at": now,
    }
    cancelled: list[_Lease] = []
    running: list[_Lease] = []
    with transaction.atomic():
        for ids in _chunks(task_ids):
            tasks = _locked(ids, CANCELLABLE_STATUSES)
            pending = [t for t in tasks if t.status == TaskStatus.PENDING]
            if pending and Task.objects.filter(
                pk__in=[t.pk for t in pending], status=TaskStatus.PENDING
            ).update(**fields):
                cancelled.extend(_lease_of(t) for t in pending)
            for task in tasks:
                if task.status == TaskStatus.IN_PROGRESS and _settle_in_progress(task, fields):
                    lease = _lease_of(task)
                    cancelled.append(lease)
                    running.append(lease)
        _clear_current_task([lease.task_id for lease in running])

        def after_commit() -> None:
            _release_running(running)
            queues.remove(lease.task_id for lease in cancelled)

        transaction.on_commit(after_commit)
    log.info("tasks cancelled by operator", extra={"count": len(cancelled)})
    return len(cancelled)


def _clear_current_task(task_ids: list[str]) -> None:
    for ids in _chunks(task_ids):
        Agent.objects.filter(current_task_id__in=ids).update(current_task=None)


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


__all__: list[str] = [
    "CANCELLABLE_STATUSES",
    "REQUEUEABLE_STATUSES",
    "cancel_tasks",
    "requeue_tasks",
    "set_agents_enabled",
    "set_competitors_active",
    "set_subscriptions_active",
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
