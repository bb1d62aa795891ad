"""Live events: the payload types and the helpers that send them.

Every message that crosses the channel layer is declared here. ``type`` is the Channels
handler name (``agent.command`` → ``AgentConsumer.agent_command``). Events are sent from sync
code (request threads, Celery tasks, the consumers' database thread) and wait for the
surrounding transaction to commit, so a rolled-back write never announces itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from channels.layers import get_channel_layer
from django.db import transaction

if TYPE_CHECKING:
    from watcher.models import Agent, AgentCommand

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


Payload = CommandMessage | ReplacedMessage | AgentEvent | CommandEvent


# --- Sending -----------------------------------------------------------------------------------


def send_event(group: str, payload: Payload) -> None:
    """Group-send ``payload`` once the current transaction commits (at once outside one)."""
    send_events([(group, payload)])


def send_events(events: Sequence[tuple[str, Payload]]) -> None:
    """Several group sends, in order, once the current transaction commits."""
    if events:
        batch = list(events)
        # robust: a channel layer hiccup is logged, never turned into an error after commit.
        transaction.on_commit(lambda: _group_send(batch), robust=True)


def send_to_channel(channel: str, payload: Payload) -> None:
    """Send to one consumer's channel (not a group), after commit."""

    def send() -> None:
        _refuse_in_event_loop()
        get_channel_layer().send_blocking(channel, payload)

    transaction.on_commit(send, robust=True)


def _group_send(batch: list[tuple[str, Payload]]) -> None:
    # Sync code sends with the layer's blocking client (config/channel_layer.py): no event loop,
    # no thread hand-off; one script call per SENDS_PER_CALL sends reads the groups' members and
    # pushes the payloads (where the layer cannot fan out in Redis, ``fans_out_in_redis``: a
    # members pipeline, then a push per shard).
    _refuse_in_event_loop()
    get_channel_layer().group_send_many_blocking(batch)


def _refuse_in_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    # A blocking send would stall every socket of the loop.
    raise RuntimeError("events are sent from sync code (database_sync_to_async in consumers)")


# --- Builders ----------------------------------------------------------------------------------


def command_message(command: AgentCommand) -> CommandMessage:
    return {
        "type": "agent.command",
        "command_id": str(command.pk),
        "action": command.action,
        "params": command.params or {},
    }


def agent_event(agent: Agent, event: AgentEventName) -> AgentEvent:
    from watcher.services.stats import live_agent_row

    return {"type": "live.agent", "event": event, "agent": live_agent_row(agent)}


def command_event(command: AgentCommand, event: CommandEventName) -> CommandEvent:
    from watcher.services.stats import command_row

    return {"type": "live.command", "event": event, "command": command_row(command)}


def agent_changed(agent: Agent, event: AgentEventName) -> None:
    """Tell the live pages an agent's state changed (after commit)."""
    send_event(LIVE_AGENTS_GROUP, agent_event(agent, event))
