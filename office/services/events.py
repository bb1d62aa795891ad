"""Live events of the Office dashboard: the payload types and the one helper that sends them.

Sent from sync code after the surrounding transaction commits, so a rolled-back status never
shows; a channel layer that is down loses the live update, never the stored status.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

OFFICE_GROUP = "office"


class AgentRow(TypedDict):
    agent_id: str
    department: str
    name: str
    brand: str
    status: str  # the shown status: "offline" when last_activity is stale
    stored_status: str
    task: str
    metrics: dict[str, Any]
    last_activity: str | None
    salary_equivalent: int
    fte_coefficient: str


class AgentEvent(TypedDict):
    type: Literal["office.agent"]
    agent: AgentRow
    totals: dict[str, Any]  # office.services.dashboard.totals()


def send_event(payload: AgentEvent) -> None:
    """Group-send ``payload`` to the dashboards once the current transaction commits."""

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(OFFICE_GROUP, payload)
        except Exception:  # the live update is best effort; the row is stored
            log.exception("office: could not send a live update")

    transaction.on_commit(send)
