"""Live events: the payload types, how they are built, and the helpers that send them.

Every message that crosses the channel layer is declared here. ``type`` is the Channels
handler name (``agent.command`` → ``AgentConsumer.agent_command``). Events are sent from sync
code (request threads, Celery tasks, the consumers' database thread) and wait for the
surrounding transaction to commit, so a rolled-back write never announces itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from watcher.models import Agent, AgentCommand, AgentStatus, PanicBlock, Task
from watcher.services.redis import (
    AGENT_COMPLETED_KEY,
    AGENT_CONNECTION_KEY,
    AGENT_FAILED_KEY,
    AGENT_TIMING_KEY,
    get_redis,
)

LIVE_AGENTS_GROUP = "live_agents"


def agent_group(agent_id: object) -> str:
    """The group of one agent's WebSocket (at most one live connection is in it)."""
    return f"agent_{agent_id}"


# --- Server → agent socket ---------------------------------------------------------------------


class CommandMessage(TypedDict):
    type: Literal["agent.command"]
    command_id: str
    action: str
    params: dict[str, Any]


class ReplacedMessage(TypedDict):
    """Tells an agent's older connection that a newer one took its place (close 4002)."""

    type: Literal["agent.replaced"]


# --- Server → staff pages ----------------------------------------------------------------------


class AgentRow(TypedDict):
    id: str
    name: str
    status: str
    is_enabled: bool
    connected: bool
    current_ip: str | None
    modem_operator: str
    signal_strength: int | None
    current_task: str | None
    current_task_label: str
    last_heartbeat: str | None
    tasks_completed_today: int
    tasks_failed_today: int
    avg_task_time_ms: float | None
    panic_reason: str
    version: str


class CommandRow(TypedDict):
    id: str
    agent_id: str
    action: str
    params: dict[str, Any]
    status: str
    ack_status: str
    attempts: int
    sent_by: str | None
    created_at: str
    sent_at: str | None
    acked_at: str | None
    timeout_at: str | None


AgentEventName = Literal[
    "heartbeat", "online", "panic", "offline", "status", "connected", "disconnected"
]
CommandEventName = Literal["sent", "resent", "acked", "failed", "timed_out"]


class AgentEvent(TypedDict):
    type: Literal["live.agent"]
    event: AgentEventName
    agent: AgentRow


class CommandEvent(TypedDict):
    type: Literal["live.command"]
    event: CommandEventName
    command: CommandRow


class BlockRow(TypedDict):
    id: int
    ip: str
    reason: str
    created_at: str
    expires_at: str


class BlocksEvent(TypedDict):
    """The IP blocks in force that concern one agent, whole (after a panic or a clearance)."""

    type: Literal["live.blocks"]
    agent_id: str
    blocks: list[BlockRow]


Payload = CommandMessage | ReplacedMessage | AgentEvent | CommandEvent | BlocksEvent


# --- Sending -----------------------------------------------------------------------------------


def send_event(group: str, payload: Payload) -> None:
    """Group-send ``payload`` once the current transaction commits (at once outside one)."""
    send_events([(group, payload)])


def send_events(events: Sequence[tuple[str, Payload]]) -> None:
    """Several group sends, in order, once the current transaction commits."""
    if events:
        batch = list(events)
        # robust: a channel layer hiccup is logged, never turned into an error after commit.
        transaction.on_commit(lambda: async_to_sync(_group_send)(batch), robust=True)


def send_to_channel(channel: str, payload: Payload) -> None:
    """Send to one consumer's channel (not a group), after commit."""
    transaction.on_commit(
        lambda: async_to_sync(get_channel_layer().send)(channel, payload), robust=True
    )


async def _group_send(batch: list[tuple[str, Payload]]) -> None:
    # One event loop per batch (async_to_sync), not one per send.
    layer = get_channel_layer()
    for group, payload in batch:
        await layer.group_send(group, payload)


# --- Builders ----------------------------------------------------------------------------------


def command_message(command: AgentCommand) -> CommandMessage:
    return {
        "type": "agent.command",
        "command_id": str(command.pk),
        "action": command.action,
        "params": command.params or {},
    }


def agent_event(agent: Agent, event: AgentEventName) -> AgentEvent:
    return {"type": "live.agent", "event": event, "agent": live_agent_row(agent)}


def command_event(command: AgentCommand, event: CommandEventName) -> CommandEvent:
    return {"type": "live.command", "event": event, "command": command_row(command)}


def agent_changed(agent: Agent, event: AgentEventName) -> None:
    """Tell the live pages an agent's state changed (after commit)."""
    send_event(LIVE_AGENTS_GROUP, agent_event(agent, event))


def blocks_changed(agent: Agent, blocks: Iterable[PanicBlock]) -> None:
    """Tell the live pages which IP blocks now keep the agent idle (after commit)."""
    rows = [block_row(b) for b in blocks]
    send_event(
        LIVE_AGENTS_GROUP, {"type": "live.blocks", "agent_id": str(agent.pk), "blocks": rows}
    )


# --- Rows: what the live pages show ------------------------------------------------------------


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


def block_row(block: PanicBlock) -> BlockRow:
    return {
        "id": block.pk,
        "ip": str(block.ip),
        "reason": block.reason,
        "created_at": block.created_at.isoformat(),
        "expires_at": block.expires_at.isoformat(),
    }


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
