"""WebSockets: the agent's command socket and the staff's live agent pages (thin).

Consumers authenticate, join groups and have one small handler per event type; the logic is
in ``watcher.services.commands``. Payload types are in ``watcher.services.events``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from watcher.models import Agent
from watcher.services import commands
from watcher.services.errors import ServiceError, Unauthorized
from watcher.services.events import (
    LIVE_AGENTS_GROUP,
    AgentEvent,
    CommandEvent,
    CommandMessage,
    ReplacedMessage,
    agent_group,
)

log = logging.getLogger(__name__)

CLOSE_INVALID_KEY = 4001
CLOSE_REPLACED = 4002
CLOSE_FORBIDDEN = 4003


def socket_credentials(scope: dict[str, Any]) -> tuple[str | None, str | None]:
    """``agent_id`` and the API key from the query string or ``Authorization: Bearer``."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    agent_id = (query.get("agent_id") or [None])[0]
    key = (query.get("api_key") or [None])[0]
    for name, value in scope.get("headers", []):
        if name == b"authorization" and not key:
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                key = token.strip()
    return agent_id, key


class SocketKeeper:
    """Keeps one event loop's sockets known to the rest of the system.

    Every ``CONNECTION_REFRESH`` seconds one task refreshes the registrations of all the agent
    sockets (``watcher.services.commands``) and re-joins all the sockets' groups (the channel
    layer forgets a member after ``group_expiry``, 5 minutes in the settings): a few Redis
    round trips for the whole process, where a task per socket took two round trips and a
    thread hand-off each, 11 % of a server's CPU with 1,000 agents connected (py-spy under
    bench/ws.py).

    A socket whose agent has a newer socket (here or in another process) is closed with 4002,
    in case the notice of the newer connection was lost. A socket that leaves while a refresh
    is under way is taken out again (registration and groups) once the refresh is done.
    """

    interval: float = commands.CONNECTION_REFRESH

    def __init__(self) -> None:
        self.sockets: dict[str, KeptConsumer] = {}  # channel name → consumer, oldest first
        self.task: asyncio.Task[None] | None = None

    def add(self, consumer: KeptConsumer) -> None:
        self.sockets[consumer.channel_name] = consumer
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
            self.task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        # Nothing here keeps a finished task (and through it a closed loop) alive; a newer
        # task, started while this one's callback waited its turn, stays.
        if self.task is task:
            self.task = None

    def discard(self, consumer: KeptConsumer) -> None:
        self.sockets.pop(consumer.channel_name, None)

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(self.interval)
            await self.refresh()

    async def refresh(self) -> None:
        """One pass: registrations first, then the groups; a failure of either is logged."""
        try:
            await self._refresh_registrations()
        except Exception:  # a Redis hiccup must not stop the group re-join or later passes
            log.exception("refreshing the agent sockets' registrations failed")
        try:
            await self._rejoin_groups()
        except Exception:
            log.exception("re-joining the sockets' groups failed")

    async def _refresh_registrations(self) -> None:
        newest: dict[object, KeptConsumer] = {}
        superseded: list[KeptConsumer] = []
        for consumer in self.sockets.values():  # oldest first
            if consumer.agent is None:
                continue
            if (older := newest.get(consumer.agent.pk)) is not None:
                superseded.append(older)
            newest[consumer.agent.pk] = consumer
        agents = [(pk, consumer.channel_name) for pk, consumer in newest.items()]
        if not agents:
            return
        lost = await sync_to_async(commands.refresh_connections, thread_sensitive=False)(agents)
        gone = [(pk, channel) for pk, channel in agents if channel not in self.sockets]
        for pk, channel in gone:  # it closed meanwhile, and the refresh may have re-taken it
            await sync_to_async(commands.unregister_connection, thread_sensitive=False)(pk, channel)
        superseded += [self.sockets[ch] for _, ch in lost if ch in self.sockets]
        for consumer in superseded:
            if consumer.channel_name not in self.sockets:  # it left meanwhile
                continue
            try:
                await consumer.agent_replaced({"type": "agent.replaced"})
            except Exception:
                log.exception("closing a superseded agent socket failed")

    async def _rejoin_groups(self) -> None:
        memberships = [(g, c.channel_name) for c in self.sockets.values() for g in c.kept_groups()]
        if not memberships:
            return
        layer = get_channel_layer()
        await layer.group_add_many(memberships)
        for group, channel in memberships:  # it closed meanwhile: its discard came too early
            if channel not in self.sockets:
                await layer.group_discard(group, channel)


_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SocketKeeper] = (
    weakref.WeakKeyDictionary()
)


def socket_keeper() -> SocketKeeper:
    """The keeper of the running event loop's sockets (one per server process)."""
    loop = asyncio.get_running_loop()
    keeper = _keepers.get(loop)
    if keeper is None:
        keeper = _keepers[loop] = SocketKeeper()
    return keeper


class KeptConsumer(AsyncWebsocketConsumer):
    """A socket whose groups (and agent registration) the process's ``SocketKeeper`` keeps."""

    agent: Agent | None = None
    replaced = False

    def kept_groups(self) -> tuple[str, ...]:
        return ()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its database clean-up hop before every handler.

        Channels (4.2+) first runs ``close_old_connections`` on the thread-sensitive thread for
        every message: every command, ACK and live event of every socket waits for a thread
        hand-off, 0.6 ms of a command's round trip here (bench/ws.py, traced). These consumers
        reach the database only through ``database_sync_to_async``, which already closes stale
        connections on that thread around each call.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def agent_replaced(self, event: ReplacedMessage) -> None:
        """A newer socket took this agent's place: close with 4002 (once, however told)."""
        if self.replaced:
            return
        self.replaced = True
        socket_keeper().discard(self)
        for group in self.kept_groups():
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.close(code=CLOSE_REPLACED, reason="New connection")


class AgentConsumer(KeptConsumer):
    """``/ws/watcher``: one live socket per agent; commands in, ACKs and status out."""

    async def connect(self) -> None:
        agent_id, key = socket_credentials(self.scope)
        try:
            self.agent = await database_sync_to_async(commands.authenticate_socket)(agent_id, key)
        except ServiceError as exc:
            code = CLOSE_INVALID_KEY if isinstance(exc, Unauthorized) else CLOSE_FORBIDDEN
            # Accept first so that the client sees the close code (a refused handshake is 403).
            await self.accept()
            await self.send(json.dumps({"type": "error", "code": code, "detail": exc.message}))
            await self.close(code=code, reason=exc.message)
            return
        await self.channel_layer.group_add(agent_group(self.agent.pk), self.channel_name)
        await self.accept()
        await database_sync_to_async(commands.connect_agent)(self.agent, self.channel_name)
        socket_keeper().add(self)

    async def disconnect(self, code: int) -> None:
        socket_keeper().discard(self)
        if self.agent is None:
            return
        await self.channel_layer.group_discard(agent_group(self.agent.pk), self.channel_name)
        await database_sync_to_async(commands.disconnect_agent)(self.agent, self.channel_name)

    def kept_groups(self) -> tuple[str, ...]:
        return (agent_group(self.agent.pk),) if self.agent is not None else ()

    # --- agent → server

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data if text_data is not None else bytes_data or b"")
        except (ValueError, UnicodeDecodeError):
            log.warning("invalid JSON from agent", extra={"agent": str(self.agent_pk)})
            return
        kind = message.get("type") if isinstance(message, dict) else None
        handler = {"ack": self.on_ack, "status": self.on_status}.get(str(kind))
        if handler is None:
            log.warning("unknown message from agent", extra={"agent": str(self.agent_pk)})
            return
        await handler(message)

    async def on_ack(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(commands.record_ack)(
            self.agent, str(message.get("command_id", "")), str(message.get("status") or "ok")
        )

    async def on_status(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(commands.record_status)(
            self.agent, str(message.get("status", ""))
        )

    @property
    def agent_pk(self) -> object:
        return self.agent.pk if self.agent else None

    # --- channel layer → agent

    async def agent_command(self, event: CommandMessage) -> None:
        await self.send(
            json.dumps(
                {
                    "type": "command",
                    "command_id": event["command_id"],
                    "action": event["action"],
                    "params": event["params"],
                }
            )
        )


class LiveConsumer(KeptConsumer):
    """``/ws/live/agents``: agent and command updates for staff browsers (session auth)."""

    joined = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN, reason="Staff only")
            return
        await self.channel_layer.group_add(LIVE_AGENTS_GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        socket_keeper().add(self)

    async def disconnect(self, code: int) -> None:
        socket_keeper().discard(self)
        if self.joined:
            await self.channel_layer.group_discard(LIVE_AGENTS_GROUP, self.channel_name)

    def kept_groups(self) -> tuple[str, ...]:
        return (LIVE_AGENTS_GROUP,)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Browsers only listen; anything they send is ignored."""

    async def live_agent(self, event: AgentEvent) -> None:
        await self.send(
            json.dumps({"type": "agent", "event": event["event"], "agent": event["agent"]})
        )

    async def live_command(self, event: CommandEvent) -> None:
        await self.send(
            json.dumps({"type": "command", "event": event["event"], "command": event["command"]})
        )
