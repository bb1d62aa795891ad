"""Commands to agents over their WebSocket, ACKs, and who is connected (across processes).

"Connected" lives in Redis, not in a process: ``watcher:agent:{id}:connection`` holds the
channel name of the agent's current socket with a short TTL that its server process keeps
refreshing (``watcher.consumers.SocketKeeper``), so every web process and worker knows it, and a
crashed process's sockets vanish by themselves.
Commands reach the socket through the channel layer group ``agent_{id}``, whichever process
holds it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from watcher.models import (
    AGENT_STATUSES,
    COMMAND_ACTIONS,
    OPEN_COMMAND_STATUSES,
    SENT_BY_NAME_LENGTH,
    Agent,
    AgentCommand,
    AgentStatus,
    CommandStatus,
)
from watcher.services import events, sql
from watcher.services.errors import (
    Forbidden,
    NotFound,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from watcher.services.redis import (
    AGENT_COMMANDS_KEY,
    AGENT_CONNECTION_KEY,
    AGENT_STATE_KEY,
    get_redis,
    script,
)
from watcher.services.stats import COMMAND_HISTORY_SIZE

log = logging.getLogger(__name__)

# Each server process refreshes its sockets' registrations every CONNECTION_REFRESH seconds
# (watcher.consumers.SocketKeeper); a socket whose process died is forgotten after CONNECTION_TTL.
CONNECTION_TTL = 90
CONNECTION_REFRESH = 30
# An ACK status in this set marks the command failed; anything else means done.
FAILED_ACK_STATUSES = frozenset({"error", "failed", "fail", "rejected", "unknown_command"})


def command_timeout() -> int:
    return int(settings.WATCHER_COMMAND_TIMEOUT)


def resend_after() -> int:
    return int(settings.WATCHER_COMMAND_RESEND_SECONDS)


# --- Who is connected --------------------------------------------------------------------------

# Returns the previous holder's channel name (or false) and takes the key.
_REGISTER = """
local prev = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return prev
"""
# Extends each socket's registration (KEYS[i] held by ARGV[i]), re-taking a key Redis lost;
# returns the indexes (1-based) of the keys another socket holds now.
_REFRESH = """
local ttl = ARGV[#KEYS + 1]
local lost = {}
for i = 1, #KEYS do
    local holder = redis.call('GET', KEYS[i])
    if holder == ARGV[i] then
        redis.call('EXPIRE', KEYS[i], ttl)
    elseif not holder then
        redis.call('SET', KEYS[i], ARGV[i], 'EX', ttl)
    else
        lost[#lost + 1] = i
    end
end
return lost
"""
_REFRESH_BATCH = 500
# Deletes the key only if it is still ours (a newer socket may hold it already).
_UNREGISTER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _connection_key(agent_id: object) -> str:
    return AGENT_CONNECTION_KEY.format(id=agent_id)


def register_connection(agent_id: object, channel: str) -> str | None:
    """Record ``channel`` as the agent's socket; returns the channel it replaces, if any."""
    previous = script(_REGISTER)(keys=[_connection_key(agent_id)], args=[channel, CONNECTION_TTL])
    return previous or None


def refresh_connections(sockets: Sequence[tuple[object, str]]) -> list[tuple[object, str]]:
    """Keep the registrations of ``(agent_id, channel)`` sockets alive, one Redis round trip per
    500; returns the sockets whose agent another (newer) socket has taken over."""
    lost: list[tuple[object, str]] = []
    for start in range(0, len(sockets), _REFRESH_BATCH):
        batch = sockets[start : start + _REFRESH_BATCH]
        indexes = script(_REFRESH)(
            keys=[_connection_key(agent_id) for agent_id, _ in batch],
            args=[channel for _, channel in batch] + [CONNECTION_TTL],
        )
        lost += [batch[int(i) - 1] for i in indexes]
    return lost


def unregister_connection(agent_id: object, channel: str) -> bool:
    return bool(script(_UNREGISTER)(keys=[_connection_key(agent_id)], args=[channel]))


def connected_channel(agent_id: object) -> str | None:
    return get_redis().get(_connection_key(agent_id))


def connected_agent_ids(agent_ids: list[str] | None = None) -> list[str]:
    """Ids of the agents (all enabled ones by default) that have a live socket."""
    if agent_ids is None:
        agent_ids = [
            str(pk) for pk in Agent.objects.filter(is_enabled=True).values_list("pk", flat=True)
        ]
    if not agent_ids:
        return []
    holders = get_redis().mget([_connection_key(pk) for pk in agent_ids])
    return [pk for pk, holder in zip(agent_ids, holders, strict=True) if holder]


# --- The agent's socket ------------------------------------------------------------------------


def authenticate_socket(agent_id: str | None, api_key: str | None) -> Agent:
    """The agent a socket speaks for; ``Unauthorized`` (4001) or ``Forbidden`` (4003)."""
    from watcher.services.agents import authenticate_key

    agent = authenticate_key(api_key) if api_key else None
    if agent is None or (agent_id and str(agent.pk) != agent_id.strip().lower()):
        raise Unauthorized("Invalid API key")
    if not agent.is_enabled:
        raise Forbidden("Agent disabled")
    return agent


def connect_agent(agent: Agent, channel: str) -> None:
    """Register the agent's new socket; its previous socket, if any, is told to close (4002)."""
    previous = register_connection(agent.pk, channel)
    if previous and previous != channel:
        events.send_to_channel(previous, {"type": "agent.replaced"})
        log.info("agent socket replaced", extra={"agent": str(agent.pk)})
    events.agent_changed(agent, "connected")


def disconnect_agent(agent: Agent, channel: str) -> None:
    if unregister_connection(agent.pk, channel):
        try:
            agent.refresh_from_db()
        except Agent.DoesNotExist:  # deleted while connected
            return
        events.agent_changed(agent, "disconnected")


def record_status(agent: Agent, status: str) -> bool:
    """The agent reported its status over the socket; False (and nothing changes) if unknown."""
    if status not in AGENT_STATUSES:
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
    if action not in COMMAND_ACTIONS:
        raise ServiceError(f"Unknown command: {action}")
    if params is not None and not isinstance(params, dict):
        raise ServiceError("params must be an object")
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
    for an agent deleted since (a registration outlives its agent by up to CONNECTION_TTL).
    One INSERT, so no transaction (or savepoint) of its own: in autocommit the row is committed
    before the socket is told, as the ACK must find it; inside a caller's transaction the
    socket is told once that commits, and a failed INSERT fails the caller's transaction.
    """
    params = _validate(action, params)
    pk = _agent_pk(agent)
    if not connected_channel(pk):
        if not Agent.objects.filter(pk=pk).exists():
            raise NotFound("Unknown agent")
        raise Unavailable("Agent not connected")
    command = _new_command(pk, action, params, user)
    try:
        sql.insert(command)
    except IntegrityError as exc:  # the agent was deleted while its registration lingered
        raise NotFound("Unknown agent") from exc
    _dispatch([command])
    return command


def _agent_pk(agent: Agent | object) -> uuid.UUID:
    if isinstance(agent, Agent):
        return agent.pk
    try:
        return uuid.UUID(str(agent))
    except ValueError:
        raise NotFound("Unknown agent") from None


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

    One conditional UPDATE … RETURNING, then the live pages are told (after commit). None when
    nothing changed: a malformed or unknown id, another agent's command, or a repeated ACK.
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
    command = sql.update_returning(
        AgentCommand,
        values={"status": new_status, "ack_status": status, "acked_at": timezone.now()},
        where={
            "id": pk,
            "agent": agent.pk,  # another agent's command id is ignored
            "status__in": [*OPEN_COMMAND_STATUSES, CommandStatus.TIMED_OUT],
        },
    )
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
