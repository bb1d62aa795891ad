"""``/ws/office``: the Office dashboard's live updates for staff browsers (thin)."""

from __future__ import annotations

import json

from office.services.events import OFFICE_GROUP, AgentEvent
from watcher.consumers import CLOSE_FORBIDDEN, KeptConsumer
from watcher.services.sockets import socket_keeper


class OfficeConsumer(KeptConsumer):
    """Joins the office group; the process's socket keeper renews the membership."""

    joined = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN, reason="Staff only")
            return
        await self.channel_layer.group_add(OFFICE_GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        socket_keeper().add(self)

    async def disconnect(self, code: int) -> None:
        socket_keeper().discard(self)
        if self.joined:
            await self.channel_layer.group_discard(OFFICE_GROUP, self.channel_name)

    def kept_groups(self) -> tuple[str, ...]:
        return (OFFICE_GROUP,)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Browsers only listen; anything they send is ignored."""

    async def office_agent(self, event: AgentEvent) -> None:
        await self.send(
            json.dumps({"type": "agent", "agent": event["agent"], "totals": event["totals"]})
        )
