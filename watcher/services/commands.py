"""Commands to agents over their WebSocket, their ACKs, and the agents' status messages.

Commands reach the socket through the channel layer group ``agent_{id}``, whichever process
holds it; who is connected is ``watcher.services.connections``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from watcher.models import (
    OPEN_COMMAND_STATUSES,
    SENT_BY_NAME_LENGTH,
    Agent,
    AgentCommand,
    AgentStatus,
    CommandAction,
    CommandStatus,
)
from watcher.services import events
from watcher.services.connections import connected_agent_ids, connected_channel
from watcher.services.errors import NotFound, ServiceError, Unavailable
from watcher.services.redis import AGENT_COMMANDS_KEY, AGENT_STATE_KEY, get_redis
from watcher.services.stats import COMMAND_HISTORY_SIZE

log = logging.getLogger(__name__)

# An ACK status in this set marks the command failed; anything else means done.
FAILED_ACK_STATUSES = frozenset({"error", "failed", "fail", "rejected", "unknown_command"})


def command_timeout() -> int:
    return int(settings.WATCHER_COMMAND_TIMEOUT)


def resend_after() -> int:
    return int(settings.WATCHER_COMMAND_RESEND_SECONDS)


# --- The agent's messages ---------------------------------------------------------------------


def record_status(agent: Agent, status: str) -> bool:
    """The agent reported its status over the socket; False (and nothing changes) if unknown."""
    if status not in AgentStatus.values:
        log.warning("unknown agent status", extra={"agent": str(agent.pk), "status": status})
        return False
    agent.refresh_from_db()
    was_offline = agent.status == AgentStatus.OFFLINE
    Agent.objects.filter(pk=agent.pk).update(status=status)
    agent.status = status
    state_key = AGENT_STATE_KEY.format(id=agent.pk)
    raw = get_redis().get(state_key)
    if raw:
        state = json.loads(raw)
        state["status"] = status
        get_redis().set(state_key, json.dumps(state), keepttl=True)
    event: events.AgentEventName = "status"
    if was_offline and status != AgentStatus.OFFLINE:
        event = "online"
    events.agent_changed(agent, event)
    return True


# --- Commands ----------------------------------------------------------------------------------


def _validate(action: str, params: dict[str, Any] | None) -> dict[str, Any]:
    if action not in CommandAction.values:
        raise ServiceError(_("Unknown command: %(action)s") % {"action": action})
    if params is not None and not isinstance(params, dict):
        raise ServiceError(_("params must be an object"))
    return params or {}


def _user(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def _remember(commands: list[AgentCommand]) -> None:
    """Mirror the ids in ``watcher:agent:{id}:commands`` (newest first, last 100)."""
    pipe = get_redis().pipeline(transaction=False)
    for command in commands:
        key = AGENT_COMMANDS_KEY.format(id=command.agent_id)
        pipe.lpush(key, str(command.pk))
        pipe.ltrim(key, 0, COMMAND_HISTORY_SIZE - 1)
    pipe.execute()


def _new_command(agent_id: object, action: str, params: dict[str, Any], user: Any) -> AgentCommand:
    now = timezone.now()
    sender = _user(user)
    return AgentCommand(
        agent_id=agent_id,
        action=action,
        params=params,
        sent_by=sender,
        sent_by_name=sender.get_username()[:SENT_BY_NAME_LENGTH] if sender else "",
        status=CommandStatus.SENT,
        created_at=now,
        sent_at=now,
        attempts=1,
        timeout_at=now + dt.timedelta(seconds=command_timeout()),
    )


def _dispatch(commands: list[AgentCommand]) -> None:
    # After commit, in this order: the agents' sockets first (the latency that matters), then
    # the live pages, then the Redis mirror of the history.
    batch: list[tuple[str, events.Payload]] = [
        (events.agent_group(command.agent_id), events.command_message(command))
        for command in commands
    ]
    batch += [(events.LIVE_AGENTS_GROUP, events.command_event(c, "sent")) for c in commands]
    events.send_events(batch)
    transaction.on_commit(lambda: _remember(commands), robust=True)


def send_command(
    agent: Agent | object, action: str, params: dict[str, Any] | None, user: Any = None
) -> AgentCommand:
    """Send a command to the agent (an ``Agent`` or its id) over its socket: ``NotFound`` (404)
    for an unknown agent, ``Unavailable`` (503) when it has no socket.

    The agent row is not read when its socket is registered: the INSERT's foreign key answers
    for an agent deleted since (a registration outlives its agent by up to ``CONNECTION_TTL``).
    One INSERT, so no transaction (or savepoint) of its own: in autocommit the row is committed
    before the socket is told, as the ACK must find it; inside a caller's transaction the
    socket is told once that commits, and a failed INSERT fails the caller's transaction.
    """
    params = _validate(action, params)
    pk = _agent_pk(agent)
    if not connected_channel(pk):
        if not Agent.objects.filter(pk=pk).exists():
            raise NotFound(_("Unknown agent"))
        raise Unavailable(_("Agent not connected"))
    command = _new_command(pk, action, params, user)
    try:
        command.save(force_insert=True)
    except IntegrityError as exc:  # the agent was deleted while its registration lingered
        raise NotFound(_("Unknown agent")) from exc
    _dispatch([command])
    return command


def _agent_pk(agent: Agent | object) -> uuid.UUID:
    if isinstance(agent, Agent):
        return agent.pk
    try:
        return uuid.UUID(str(agent))
    except ValueError:
        raise NotFound(_("Unknown agent")) from None


@transaction.atomic
def broadcast(action: str, params: dict[str, Any] | None, user: Any = None) -> list[AgentCommand]:
    """Send the command to every connected agent; one command row (and id) per agent."""
    params = _validate(action, params)
    connected = connected_agent_ids()
    targets = Agent.objects.filter(pk__in=connected, is_enabled=True).order_by("name")
    commands = AgentCommand.objects.bulk_create(
        [_new_command(agent.pk, action, params, user) for agent in targets]
    )
    _dispatch(commands)
    return commands


def record_ack(agent: Agent, command_id: str, status: str) -> AgentCommand | None:
    """The agent acknowledged a command; idempotent; late ACKs of timed-out commands count.

    A conditional UPDATE, then the row is read back for the live pages (told after commit).
    None when nothing changed: a malformed or unknown id, another agent's command, or a
    repeated ACK.
    """
    try:
        pk = uuid.UUID(str(command_id))
    except ValueError:
        log.warning("ack of a malformed command id", extra={"agent": str(agent.pk)})
        return None
    status = str(status or "ok")[:100]
    new_status = (
        CommandStatus.FAILED if status.lower() in FAILED_ACK_STATUSES else CommandStatus.ACKED
    )
    updated = AgentCommand.objects.filter(
        pk=pk,
        agent=agent.pk,  # another agent's command id is ignored
        status__in=[*OPEN_COMMAND_STATUSES, CommandStatus.TIMED_OUT],
    ).update(status=new_status, ack_status=status, acked_at=timezone.now())
    command = AgentCommand.objects.filter(pk=pk).first() if updated else None
    if command is None:
        log.info("ack ignored", extra={"agent": str(agent.pk), "command_id": str(pk)})
        return None
    event = "failed" if new_status == CommandStatus.FAILED else "acked"
    events.send_event(events.LIVE_AGENTS_GROUP, events.command_event(command, event))
    return command


def resend_unacked(now: dt.datetime | None = None) -> dict[str, int]:
    """Re-send unacknowledged commands (same command id) to connected agents; time out the rest.

    Runs periodically. Every change is conditional on the status it read, so an ACK arriving
    meanwhile wins.
    """
    now = now or timezone.now()
    open_commands = AgentCommand.objects.filter(status__in=OPEN_COMMAND_STATUSES)
    batch: list[tuple[str, events.Payload]] = []
    timed_out = 0
    for command in open_commands.filter(timeout_at__lte=now):
        if AgentCommand.objects.filter(pk=command.pk, status=command.status).update(
            status=CommandStatus.TIMED_OUT
        ):
            timed_out += 1
            command.status = CommandStatus.TIMED_OUT
            batch.append((events.LIVE_AGENTS_GROUP, events.command_event(command, "timed_out")))
    due = list(
        open_commands.filter(
            timeout_at__gt=now, sent_at__lte=now - dt.timedelta(seconds=resend_after())
        )
    )
    online = set(connected_agent_ids(sorted({str(c.agent_id) for c in due})))
    resent = 0
    for command in due:
        if str(command.agent_id) not in online:
            continue
        if AgentCommand.objects.filter(
            pk=command.pk, status=command.status, sent_at=command.sent_at
        ).update(status=CommandStatus.SENT, sent_at=now, attempts=F("attempts") + 1):
            resent += 1
            command.status, command.sent_at = CommandStatus.SENT, now
            command.attempts += 1
            batch.append((events.agent_group(command.agent_id), events.command_message(command)))
            batch.append((events.LIVE_AGENTS_GROUP, events.command_event(command, "resent")))
    events.send_events(batch)
    return {"resent": resent, "timed_out": timed_out}


def prune_history(keep: int = COMMAND_HISTORY_SIZE, batch: int = 5000) -> int:
    """Delete each agent's finished commands beyond its newest ``keep``; the number deleted.

    SPEC §7 keeps the last 100 commands of each agent. Open commands (sent, not yet ACKed or
    timed out) are never deleted here: the re-send task still needs them.
    """
    ranked = (
        AgentCommand.objects.exclude(status__in=OPEN_COMMAND_STATUSES)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("agent_id")],
                order_by=[F("created_at").desc(), F("pk").desc()],
            )
        )
        .filter(rank__gt=keep)
    )
    ids = list(ranked.values_list("pk", flat=True))  # one ranking, then deletes in batches
    deleted = 0
    for start in range(0, len(ids), batch):
        deleted += AgentCommand.objects.filter(pk__in=ids[start : start + batch]).delete()[0]
    if deleted:
        log.info("command history pruned", extra={"deleted": deleted})
    return deleted
