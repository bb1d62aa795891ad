"""What the Office dashboard shows: the known agents, the 5-minute offline rule, rows, totals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TypedDict

from django.conf import settings
from django.db.models import Count, DecimalField, F, Sum
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from office.models import OfficeAgentStatus, OfficeStatus
from office.services.events import AgentRow

# A row whose last activity is older than this is shown offline, whatever its stored status.
STALE_AFTER = dt.timedelta(minutes=5)

# Departments (modules) of the company, in the dashboard's order, and their known agents.
DEPARTMENTS: dict[str, Promise] = {
    "watcher": _("Price monitoring"),
    "reputation": _("Reputation"),
    "content_factory": _("Content factory"),
    "marketing": _("Marketing"),
    "scout": _("Niche scouting"),
    "cfo": _("Finance"),
    "knowledge": _("Knowledge base"),
    "lex": _("Legal"),
}
KNOWN_AGENTS: tuple[tuple[str, str, Promise], ...] = (
    ("watcher_price_monitor", "watcher", _("Price monitor")),
    ("watcher_night_agent", "watcher", _("Night task planner")),
    ("watcher_competitor_scan", "watcher", _("Competitor scanner")),
    ("reputation_wb", "reputation", _("Reviews on Wildberries")),
    ("reputation_ozon", "reputation", _("Reviews on Ozon")),
    ("reputation_ym", "reputation", _("Reviews on Yandex Market")),
    ("content_descriptions", "content_factory", _("Product descriptions")),
    ("content_seo", "content_factory", _("SEO texts")),
    ("marketing_wb", "marketing", _("Advertising on Wildberries")),
    ("marketing_ozon", "marketing", _("Advertising on Ozon")),
    ("scout_niche", "scout", _("Niche scout")),
    ("cfo_report", "cfo", _("Financial reports")),
    ("knowledge_rag", "knowledge", _("Knowledge assistant")),
    ("lex_monitor", "lex", _("Legal monitor")),
)


def known_name(agent_id: str) -> str:
    """A known agent's name in the site's language (stored data, whoever asks)."""
    names = {a: name for a, _dept, name in KNOWN_AGENTS}
    with translation.override(settings.LANGUAGE_CODE):
        return str(names[agent_id])


def ensure_known_agents(**kwargs: Any) -> None:
    """Create the known agents as offline (post_migrate); existing rows are left alone."""
    OfficeAgentStatus.objects.bulk_create(
        [
            OfficeAgentStatus(agent_id=agent_id, department=dept, name=known_name(agent_id))
            for agent_id, dept, _name in KNOWN_AGENTS
        ],
        ignore_conflicts=True,
    )


def department_label(code: str) -> str:
    return str(DEPARTMENTS.get(code, code))


def shown_status(row: OfficeAgentStatus, now: dt.datetime | None = None) -> str:
    """The stored status, or offline when the agent has been silent for over 5 minutes."""
    now = now or timezone.now()
    if row.last_activity is None or now - row.last_activity > STALE_AFTER:
        return OfficeStatus.OFFLINE
    return row.status


def agent_row(row: OfficeAgentStatus, now: dt.datetime | None = None) -> AgentRow:
    """A row as the dashboard and the API show it (no translated text: pages label it)."""
    return {
        "agent_id": row.agent_id,
        "department": row.department,
        "name": row.name,
        "brand": row.brand,
        "status": shown_status(row, now),
        "stored_status": row.status,
        "task": row.task,
        "metrics": row.metrics if isinstance(row.metrics, dict) else {},
        "last_activity": row.last_activity.isoformat() if row.last_activity else None,
        "salary_equivalent": row.salary_equivalent,
        "fte_coefficient": str(row.fte_coefficient),
    }


class Totals(TypedDict):
    agents: int
    fte: str
    salary: int  # ₽ a month, each agent's salary equivalent weighted by its FTE


def _totals(agents: int, fte: Decimal | None, salary: Decimal | None) -> Totals:
    return {"agents": agents, "fte": str(fte or Decimal("0.00")), "salary": int(salary or 0)}


def totals() -> dict[str, Any]:
    """``{"overall": Totals, "departments": {code: Totals}}`` in one query."""
    per_dept = (
        OfficeAgentStatus.objects.order_by()
        .values("department")
        .annotate(
            agents=Count("pk"),
            fte=Sum("fte_coefficient"),
            salary=Sum(
                F("salary_equivalent") * F("fte_coefficient"),
                output_field=DecimalField(max_digits=20, decimal_places=2),
            ),
        )
    )
    departments = {d["department"]: _totals(d["agents"], d["fte"], d["salary"]) for d in per_dept}
    overall = _totals(
        sum(t["agents"] for t in departments.values()),
        sum((Decimal(t["fte"]) for t in departments.values()), Decimal("0.00")),
        sum(Decimal(t["salary"]) for t in departments.values()),
    )
    return {"overall": overall, "departments": departments}


def department_order(codes: Iterable[str]) -> list[str]:
    """Known departments first in their order, then the others alphabetically."""
    known = [c for c in DEPARTMENTS if c in codes]
    return known + sorted(set(codes) - set(DEPARTMENTS))


def grouped_rows(now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The dashboard: each department with its label, rows and totals."""
    now = now or timezone.now()
    rows = [agent_row(r, now) for r in OfficeAgentStatus.objects.order_by("department", "name")]
    by_dept: dict[str, list[AgentRow]] = {}
    for r in rows:
        by_dept.setdefault(r["department"], []).append(r)
    sums = totals()["departments"]
    return [
        {
            "code": code,
            "label": department_label(code),
            "agents": by_dept[code],
            "totals": sums[code],
        }
        for code in department_order(by_dept)
    ]
