"""WebSockets: the agent's command socket and the staff's live agent pages (thin).

Consumers authenticate, join groups and have one small handler per event type; the logic is
in ``watcher.services.connections`` and ``commands``, payload types in ``events``, and
``watcher.services.sockets`` keeps each process's sockets registered and in their groups.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from watcher.models import Agent
from watcher.services import agents, commands, connections
from watcher.services.errors import (
    DATABASE_OUTAGE,
    ServiceError,
    Unauthorized,
    log_database_error,
)
from watcher.services.events import (
    LIVE_AGENTS_GROUP,
    AgentEvent,
    BlocksEvent,
    CommandEvent,
    CommandMessage,
    ReplacedMessage,
    agent_group,
)
from watcher.services.sockets import socket_keeper

log = logging.getLogger(__name__)

CLOSE_INVALID_KEY = 4001
CLOSE_REPLACED = 4002
CLOSE_FORBIDDEN = 4003
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455: a temporary condition of the server (database down)


def frame_text(value: Any, max_length: int = 100) -> str | None:
    """A frame's string field, or None when it is not a short string PostgreSQL can store."""
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value:
        return None
    return value


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


class KeptConsumer(AsyncWebsocketConsumer):
    """A socket whose groups (and agent registration) the process's socket keeper renews.

    However the consumer ends, a clean close or an exception in any handler, ``cleanup()``
    runs once: the keeper forgets the socket and it leaves its groups and the registry. An
    unreachable database closes the socket with 1013 (try again later), one warning logged: an
    outage, not a server error (uvicorn would log a traceback, and a 500 at the handshake).
    """

    agent: Agent | None = None
    replaced = False
    is_open = False
    cleaned = False
    accepted = False

    def kept_groups(self) -> tuple[str, ...]:
        return ()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except DATABASE_OUTAGE as exc:
            log_database_error(log, exc)
            # The client may be gone already: nothing left to tell it then.
            with contextlib.suppress(OSError, RuntimeError):
                if not self.accepted:
                    await self.accept()
                await self.close(code=CLOSE_TRY_AGAIN_LATER)
        finally:
            await self.cleanup()

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)
        self.accepted = True

    async def disconnect(self, code: int) -> None:
        await self.cleanup()

    async def cleanup(self) -> None:
        if self.cleaned:
            return
        self.cleaned = True
        self.is_open = False
        socket_keeper().discard(self)
        try:
            for group in self.kept_groups():
                await self.channel_layer.group_discard(group, self.channel_name)
            await self.leave()
        except Exception:  # Redis or the database down: the registration's TTL ends it anyway
            log.exception("cleaning up a closed socket failed")

    async def leave(self) -> None:
        """What else a closed socket must undo (after leaving its groups)."""

    def keep(self) -> None:
        self.is_open = True
        socket_keeper().add(self)

    async def agent_replaced(self, event: ReplacedMessage) -> None:
        """A newer socket took this agent's place: close with 4002 (once, however told)."""
        await self.close_for_good(CLOSE_REPLACED, "New connection")

    async def close_for_good(self, code: int, reason: str) -> None:
        if self.replaced:
            return
        self.replaced = True
        await self.cleanup()
        await self.close(code=code, reason=reason)


class AgentConsumer(KeptConsumer):
    """``/ws/watcher``: one live socket per agent; commands in, ACKs and status out."""

    async def connect(self) -> None:
        agent_id, key = socket_credentials(self.scope)
        try:
            self.agent = await database_sync_to_async(connections.authenticate_socket)(
                agent_id, key
            )
        except ServiceError as exc:
            code = CLOSE_INVALID_KEY if isinstance(exc, Unauthorized) else CLOSE_FORBIDDEN
            # Accept first so that the client sees the close code (a refused handshake is 403).
            await self.accept()
            await self.send(json.dumps({"type": "error", "code": code, "detail": exc.message}))
            await self.close(code=code, reason=exc.message)
            return
        await self.channel_layer.group_add(agent_group(self.agent.pk), self.channel_name)
        await self.accept()
        await database_sync_to_async(connections.connect_agent)(self.agent, self.channel_name)
        self.keep()

    async def leave(self) -> None:
        if self.agent is not None:
            await database_sync_to_async(connections.disconnect_agent)(
                self.agent, self.channel_name
            )

    def kept_groups(self) -> tuple[str, ...]:
        return (agent_group(self.agent.pk),) if self.agent is not None else ()

    async def agent_revoked(self, event: dict[str, Any]) -> None:
        """The agent was disabled (4003) or given a new key (4001) while connected."""
        code = int(event.get("code") or CLOSE_FORBIDDEN)
        await self.close_for_good(code, "Agent disabled" if code == CLOSE_FORBIDDEN else "Key")

    # --- agent → server

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data if text_data is not None else bytes_data or b"")
        except (ValueError, UnicodeDecodeError, RecursionError):
            log.warning("invalid JSON from agent", extra={"agent": str(self.agent_pk)})
            return
        kind = message.get("type") if isinstance(message, dict) else None
        handler = {"ack": self.on_ack, "status": self.on_status}.get(str(kind))
        if handler is None:
            log.warning("unknown message from agent", extra={"agent": str(self.agent_pk)})
            return
        if self.agent is None or self.replaced:
            return
        # Disabled or re-keyed since it connected: its close is on the way; apply nothing.
        if not await database_sync_to_async(agents.may_speak)(self.agent):
            log.warning("frame from a revoked agent socket", extra={"agent": str(self.agent_pk)})
            return
        await handler(message)

    async def on_ack(self, message: dict[str, Any]) -> None:
        command_id = frame_text(message.get("command_id"))
        status = frame_text(message.get("status", "ok"))
        if command_id is None or status is None:
            log.warning("malformed ack from agent", extra={"agent": str(self.agent_pk)})
            return
        await database_sync_to_async(commands.record_ack)(self.agent, command_id, status or "ok")

    async def on_status(self, message: dict[str, Any]) -> None:
        status = frame_text(message.get("status"))
        if status is None:
            log.warning("malformed status from agent", extra={"agent": str(self.agent_pk)})
            return
        await database_sync_to_async(commands.record_status)(self.agent, status)

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


class StaffGroupConsumer(KeptConsumer):
    """A staff browser's socket that listens to one group (session auth); the keeper renews
    the membership and the shared cleanup leaves it, however the socket ends."""

    group = ""
    joined = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN, reason="Staff only")
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.joined = True
        await self.accept()
        self.keep()

    def kept_groups(self) -> tuple[str, ...]:
        return (self.group,) if self.joined else ()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Browsers only listen; anything they send is ignored."""


class LiveConsumer(StaffGroupConsumer):
    """``/ws/live/agents``: agent and command updates for staff browsers."""

    group = LIVE_AGENTS_GROUP

    async def live_agent(self, event: AgentEvent) -> None:
        await self.send(
            json.dumps({"type": "agent", "event": event["event"], "agent": event["agent"]})
        )

    async def live_command(self, event: CommandEvent) -> None:
        await self.send(
            json.dumps({"type": "command", "event": event["event"], "command": event["command"]})
        )

    async def live_blocks(self, event: BlocksEvent) -> None:
        await self.send(
            json.dumps({"type": "blocks", "agent_id": event["agent_id"], "blocks": event["blocks"]})
        )


class RefusingConsumer(AsyncWebsocketConsumer):
    """Any WebSocket path without a route: the handshake is refused (HTTP 403)."""

    async def connect(self) -> None:
        await self.close()
