"""Read models for people: agent summaries, task statistics and command history.

The live pages' agent and command rows are the live events' content: ``watcher.services.events``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import Avg, Count, Q
from django.utils import timezone

from watcher.models import Agent, AgentCommand, AgentStatus, Task, TaskStatus
from watcher.services import agents, events, queues
from watcher.services.events import CommandRow


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


# --- Command history -------------------------------------------------------------------------


COMMAND_HISTORY_SIZE = 100


def command_history(agent: Agent, limit: int = COMMAND_HISTORY_SIZE) -> list[CommandRow]:
    """The agent's last ``limit`` commands, newest first, with their ACKs."""
    commands = AgentCommand.objects.filter(agent=agent)
    return [events.command_row(c) for c in commands.order_by("-created_at")[:limit]]
