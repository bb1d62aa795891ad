"""The Office dashboard (staff): every agent by department, live over ``/ws/office``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from office.models import OfficeStatus
from office.services import dashboard
from watcher.views import staff_required

# Russian has three plural forms for whole numbers (1, 2–4, 5+); the page's script picks one
# with the browser's Intl.PluralRules, so the server gives one text per category.
PLURAL_SAMPLES = (("one", 1), ("few", 2), ("many", 5), ("other", 5))


def headline_template(n: int) -> str:
    return ngettext(
        "%(count)s virtual employee replaces %(amount)s ₽ a month",
        "%(count)s virtual employees replace %(amount)s ₽ a month",
        n,
    )


def department_template(n: int) -> str:
    return ngettext(
        "%(count)s agent · FTE: %(fte)s · %(amount)s ₽ a month",
        "%(count)s agents · FTE: %(fte)s · %(amount)s ₽ a month",
        n,
    )


def money(value: int) -> str:
    return number_format(value, decimal_pos=0, use_l10n=True, force_grouping=True)


def fte(value: str) -> str:
    return number_format(value.rstrip("0").rstrip(".") or "0", use_l10n=True)


def headline(totals: dashboard.Totals) -> str:
    n = totals["agents"]
    return headline_template(n) % {"count": n, "amount": money(totals["salary"])}


def department_line(totals: dashboard.Totals) -> str:
    n = totals["agents"]
    values = {"count": n, "fte": fte(totals["fte"]), "amount": money(totals["salary"])}
    return department_template(n) % values


def _plurals(template: Callable[[int], str]) -> dict[str, str]:
    return {category: template(n) for category, n in PLURAL_SAMPLES}


def _labels() -> dict[str, Any]:
    """Translated labels for the page's script (no JS catalog needed)."""
    return {
        "statuses": {value: str(label) for value, label in OfficeStatus.choices},
        "departments": {code: str(label) for code, label in dashboard.DEPARTMENTS.items()},
        "headline": _plurals(headline_template),
        "department_line": _plurals(department_template),
        "stale_seconds": int(dashboard.STALE_AFTER.total_seconds()),
        "ui": {
            "connecting": _("Connecting…"),
            "live": _("Live"),
            "disconnected": _("Disconnected, reconnecting…"),
            "refused": _("Access refused"),
            "never": _("never"),
            "s_ago": _("%(n)s s ago"),
            "min_ago": _("%(n)s min ago"),
            "h_ago": _("%(n)s h ago"),
            "d_ago": _("%(n)s d ago"),
        },
    }


@staff_required
def office_dashboard(request: HttpRequest) -> HttpResponse:
    groups = dashboard.grouped_rows()
    for group in groups:
        group["line"] = department_line(group["totals"])
        for row in group["agents"]:
            row["status_label"] = OfficeStatus(row["status"]).label
            row["salary_label"] = money(row["salary_equivalent"])
    overall = dashboard.totals()["overall"]
    context = {"groups": groups, "headline": headline(overall), "labels": _labels()}
    return render(request, "office/dashboard.html", context)
