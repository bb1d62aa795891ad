"""Who is connected, across processes: the registry of the agents' sockets, in Redis.

``watcher:agent:{id}:connection`` holds the channel name of the agent's current socket with a
short TTL that its server process keeps refreshing (``watcher.services.sockets``), so every web
process and worker knows it, and a crashed process's sockets vanish by themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from watcher.models import Agent
from watcher.services import events
from watcher.services.agents import authenticate_key
from watcher.services.errors import Forbidden, Unauthorized
from watcher.services.redis import AGENT_CONNECTION_KEY, get_redis, script

log = logging.getLogger(__name__)

# Each server process refreshes its sockets' registrations every CONNECTION_REFRESH seconds;
# a socket whose process died is forgotten after CONNECTION_TTL.
CONNECTION_TTL = 90
CONNECTION_REFRESH = 30

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


# --- The agent's socket opening and closing ----------------------------------------------------


def authenticate_socket(agent_id: str | None, api_key: str | None) -> Agent:
    """The agent a socket speaks for; ``Unauthorized`` (4001) or ``Forbidden`` (4003)."""
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
