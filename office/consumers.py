"""``/ws/office``: the Office dashboard's live updates for staff browsers (thin)."""

from __future__ import annotations

import json

from office.services.events import OFFICE_GROUP, AgentEvent
from watcher.consumers import StaffGroupConsumer


class OfficeConsumer(StaffGroupConsumer):
    group = OFFICE_GROUP

    async def office_agent(self, event: AgentEvent) -> None:
        await self.send(
            json.dumps({"type": "agent", "agent": event["agent"], "totals": event["totals"]})
        )
