"""WebSockets: the agent's command socket and the staff's live agent pages (thin).

Consumers authenticate, join groups and have one small handler per event type; the logic is
in ``watcher.services.connections`` and ``commands``, payload types in ``events``, and
``watcher.services.sockets`` keeps each process's sockets registered and in their groups.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from watcher.models import Agent
from watcher.services import commands, connections
from watcher.services.errors import ServiceError, Unauthorized
from watcher.services.events import (
    LIVE_AGENTS_GROUP,
    AgentEvent,
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
    """A socket whose groups (and agent registration) the process's socket keeper renews."""

    agent: Agent | None = None
    replaced = False

    def kept_groups(self) -> tuple[str, ...]:
        return ()

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
        socket_keeper().add(self)

    async def disconnect(self, code: int) -> None:
        socket_keeper().discard(self)
        if self.agent is None:
            return
        await self.channel_layer.group_discard(agent_group(self.agent.pk), self.channel_name)
        await database_sync_to_async(connections.disconnect_agent)(self.agent, self.channel_name)

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
