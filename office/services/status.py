"""Writing the agents' status: one atomic upsert per report (INSERT … ON CONFLICT DO UPDATE).

Two processes reporting for the same agent at once both succeed and the later write wins; no
read-then-write race, no IntegrityError (tests/office/test_reporter.py runs it with threads
and processes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from office.models import DEFAULT_FTE, DEFAULT_SALARY, OfficeAgentStatus, OfficeStatus
from office.services import dashboard
from office.services.events import send_event

# What a report may write besides the status (heartbeats write none of it).
IDENTITY_FIELDS = ("department", "name", "brand", "salary_equivalent", "fte_coefficient")
MAX_TASK = 255
ERROR_TASK = "Ошибка: {message}"  # SPEC §10 fixes the wording


@dataclass(frozen=True)
class Identity:
    """Who reports: the fields of the row that describe the agent, not what it does."""

    agent_id: str
    department: str
    name: str
    brand: str = ""
    salary_equivalent: int = DEFAULT_SALARY
    fte_coefficient: Decimal = field(default=DEFAULT_FTE)

    def row(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "department": self.department,
            "name": self.name,
            "brand": self.brand or "",
            "salary_equivalent": self.salary_equivalent,
            "fte_coefficient": Decimal(str(self.fte_coefficient)).quantize(Decimal("0.01")),
        }


def record_status(
    who: Identity, status: str, task: str = "", metrics: dict[str, Any] | None = None
) -> OfficeAgentStatus:
    """Upsert the agent's row with ``status`` and ``task`` (``metrics=None``: keep the stored)."""
    now = timezone.now()
    values = {**who.row(), "status": status, "task": task[:MAX_TASK], "last_activity": now}
    update = [*IDENTITY_FIELDS, "status", "task", "last_activity", "updated_at"]
    if metrics is not None:
        values["metrics"] = metrics
        update.append("metrics")
    return _upsert(values, update)


def touch(who: Identity) -> OfficeAgentStatus:
    """A heartbeat: only ``last_activity`` changes (a first heartbeat creates the row as ok)."""
    values = {**who.row(), "status": OfficeStatus.OK, "last_activity": timezone.now()}
    return _upsert(values, ["last_activity", "updated_at"])


def department_of(agent_id: str) -> str | None:
    """The department an agent already reports for (None for a new agent)."""
    return (
        OfficeAgentStatus.objects.filter(agent_id=agent_id)
        .values_list("department", flat=True)
        .first()
    )


def error_task(message: str) -> str:
    return ERROR_TASK.format(message=message)[:MAX_TASK]


def _upsert(values: dict[str, Any], update_fields: list[str]) -> OfficeAgentStatus:
    # A savepoint of its own: a failed report never breaks the caller's transaction.
    with transaction.atomic():
        OfficeAgentStatus.objects.bulk_create(
            [OfficeAgentStatus(**values)],
            update_conflicts=True,
            unique_fields=["agent_id"],
            update_fields=update_fields,
        )
        # The stored row (the insert's object lacks what the update kept, e.g. created_at).
        row = OfficeAgentStatus.objects.get(agent_id=values["agent_id"])
        totals = dashboard.totals()
        send_event({"type": "office.agent", "agent": dashboard.agent_row(row), "totals": totals})
    return row
