"""Read models for people: agent summaries and task statistics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import Avg, Count, Q
from django.utils import timezone

from watcher.models import Agent, AgentCommand, AgentStatus, Task, TaskStatus
from watcher.services import agents, queues
from watcher.services.events import AgentRow, CommandRow
from watcher.services.redis import (
    AGENT_COMPLETED_KEY,
    AGENT_CONNECTION_KEY,
    AGENT_FAILED_KEY,
    AGENT_TIMING_KEY,
    get_redis,
)


def agent_summaries(agent_list: Iterable[Agent]) -> list[dict[str, Any]]:
    items = list(agent_list)
    counts = agents.counters([str(a.pk) for a in items])
    return [
        {
            "id": str(a.pk),
            "name": a.name,
            "status": a.status,
            "current_ip": a.current_ip,
            "last_heartbeat": a.last_heartbeat,
            "tasks_completed_today": counts[str(a.pk)]["completed"],
            "tasks_failed_today": counts[str(a.pk)]["failed"],
        }
        for a in items
    ]


def agent_detail(agent: Agent) -> dict[str, Any]:
    (summary,) = agent_summaries([agent])
    return {
        **summary,
        "modem_operator": agent.modem_operator,
        "signal_strength": agent.signal_strength,
        "cookies_updated_at": agent.cookies_updated_at,
        "current_task": str(agent.current_task_id) if agent.current_task_id else None,
        "avg_task_time_ms": agents.average_task_time_ms(str(agent.pk)),
        "version": agent.version,
        "created_at": agent.created_at,
    }


def task_stats(now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    queued = queues.lengths()
    today = Task.objects.filter(completed_at__gte=start)
    done = today.aggregate(
        completed=Count("pk", filter=Q(status=TaskStatus.COMPLETED)),
        failed=Count("pk", filter=Q(status__in=[TaskStatus.FAILED, TaskStatus.PARSE_ERROR])),
        avg_ms=Avg("execution_time_ms", filter=Q(status=TaskStatus.COMPLETED)),
    )
    in_progress = Task.objects.filter(status=TaskStatus.IN_PROGRESS).count()
    by_agent = dict(
        today.filter(status=TaskStatus.COMPLETED, agent__isnull=False)
        .values_list("agent__name")
        .annotate(n=Count("pk"))
    )
    avg_ms = round(done["avg_ms"], 1) if done["avg_ms"] is not None else None
    working = Agent.objects.filter(
        is_enabled=True,
        status__in=[AgentStatus.READY, AgentStatus.WORKING, AgentStatus.IDLE],
    ).count()
    eta = None
    remaining = sum(queued.values()) + in_progress
    if avg_ms and working:
        eta = now + dt.timedelta(milliseconds=avg_ms * remaining / working)
    return {
        "total_queued": sum(queued.values()),
        "total_in_progress": in_progress,
        "total_completed_today": done["completed"],
        "total_failed_today": done["failed"],
        "by_marketplace": queued,
        "by_agent": by_agent,
        "avg_completion_time_ms": avg_ms,
        "estimated_completion_time": eta,
    }


# --- Live pages --------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def live_agent_rows(agent_list: Iterable[Agent]) -> list[AgentRow]:
    """What the live pages show of each agent: the row plus Redis counters, in one round trip."""
    items = list(agent_list)
    pipe = get_redis().pipeline(transaction=False)
    day = timezone.localdate().isoformat()
    for a in items:
        pipe.get(AGENT_COMPLETED_KEY.format(id=a.pk, day=day))
        pipe.get(AGENT_FAILED_KEY.format(id=a.pk, day=day))
        pipe.lrange(AGENT_TIMING_KEY.format(id=a.pk), 0, 99)
        pipe.exists(AGENT_CONNECTION_KEY.format(id=a.pk))
    values = pipe.execute()
    # Task labels: use the cached relation when the caller loaded it, else one query for all.
    missing = [
        a.current_task_id
        for a in items
        if a.current_task_id and not Agent.current_task.is_cached(a)
    ]
    labels = {
        pk: f"{mp} {sku}"
        for pk, mp, sku in Task.objects.filter(pk__in=missing).values_list(
            "pk", "marketplace", "sku"
        )
    }
    rows: list[AgentRow] = []
    for i, a in enumerate(items):
        completed, failed, timings, connected = values[4 * i : 4 * i + 4]
        if a.current_task_id and Agent.current_task.is_cached(a):
            task = a.current_task
            label = f"{task.marketplace} {task.sku}" if task else ""
        else:
            label = labels.get(a.current_task_id, "")
        rows.append(
            {
                "id": str(a.pk),
                "name": a.name,
                "status": a.status,
                "is_enabled": a.is_enabled,
                "connected": bool(connected),
                "current_ip": a.current_ip,
                "modem_operator": a.modem_operator,
                "signal_strength": a.signal_strength,
                "current_task": str(a.current_task_id) if a.current_task_id else None,
                "current_task_label": label,
                "last_heartbeat": _iso(a.last_heartbeat),
                "tasks_completed_today": int(completed or 0),
                "tasks_failed_today": int(failed or 0),
                "avg_task_time_ms": (
                    round(sum(int(t) for t in timings) / len(timings), 1) if timings else None
                ),
                "panic_reason": a.panic_reason if a.status == AgentStatus.PANIC else "",
                "version": a.version,
            }
        )
    return rows


def live_agent_row(agent: Agent) -> AgentRow:
    (row,) = live_agent_rows([agent])
    return row


def command_row(command: AgentCommand) -> CommandRow:
    return {
        "id": str(command.pk),
        "agent_id": str(command.agent_id),
        "action": command.action,
        "params": command.params or {},
        "status": command.status,
        "ack_status": command.ack_status,
        "attempts": command.attempts,
        "sent_by": command.sent_by_name or None,
        "created_at": command.created_at.isoformat(),
        "sent_at": _iso(command.sent_at),
        "acked_at": _iso(command.acked_at),
        "timeout_at": _iso(command.timeout_at),
    }


COMMAND_HISTORY_SIZE = 100


def command_history(agent: Agent, limit: int = COMMAND_HISTORY_SIZE) -> list[CommandRow]:
    """The agent's last ``limit`` commands, newest first, with their ACKs."""
    commands = AgentCommand.objects.filter(agent=agent)
    return [command_row(c) for c in commands.order_by("-created_at")[:limit]]
