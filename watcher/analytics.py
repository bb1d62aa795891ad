"""The analysts' pages: a subscription's prices against its competitors' (a chart), and the
night's gap table. Thin: the data comes from ``watcher.services.prices`` and the series
endpoint's serializer, so the page and ``/api/v1/prices/series`` show the same numbers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alerts.services import subscription_alerts
from config.roles import PRICE_READERS, has_role
from parser.types import Marketplace
from watcher.api.prices import series_payload
from watcher.models import Subscription
from watcher.services import prices

View = Callable[..., HttpResponse]
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def reader_required(view: View) -> View:
    """Anonymous → the admin login; logged in without a reader's role → 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not has_role(request.user, PRICE_READERS):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


class RangeForm(forms.Form):
    date_from = forms.DateField(label=gettext_lazy("from"), required=False, widget=DATE_INPUT)
    date_to = forms.DateField(label=gettext_lazy("to"), required=False, widget=DATE_INPUT)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        first, last = prices.default_range()
        data["date_to"] = data.get("date_to") or last
        data["date_from"] = data.get("date_from") or data["date_to"] - (last - first)
        if data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("The start must not be after the end."))
        return data


class GapForm(forms.Form):
    night = forms.DateField(label=gettext_lazy("night"), required=False, widget=DATE_INPUT)
    brand = forms.ChoiceField(label=gettext_lazy("brand"), required=False)
    marketplace = forms.ChoiceField(
        label=gettext_lazy("marketplace"),
        required=False,
        choices=[("", gettext_lazy("all")), *Marketplace.choices],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["brand"].choices = [("", _("all"))] + [(b, b) for b in prices.brands()]


def _latest(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each series' last observation in the range, with its gap to ours."""
    rows = [{**s, "last": s["points"][-1] if s["points"] else None} for s in series]
    for row in rows:
        if row["last"]:
            row["observed"] = dt.datetime.fromisoformat(row["last"]["t"])
    ours = rows[0]["last"]["current_price"] if rows and rows[0]["last"] else None
    for row in rows[1:]:
        price = row["last"]["current_price"] if row["last"] else None
        if ours and price is not None:
            row["difference"] = round(price - ours, 2)
            row["percent"] = round((price - ours) * 100 / ours, 1)
    return rows


def _chart_labels() -> dict[str, str]:
    return {
        "ours": _("Our SKU"),
        "alerts": _("Alerts"),
        "our_price": _("our price"),
        "their_price": _("their price"),
        "gap": _("gap"),
        "wallet": _("wallet price"),
        "old": _("old price"),
        "stock": _("stock"),
        "out_of_stock": _("out of stock"),
        "rub": "₽",
    }


def _alerts(
    request: HttpRequest, subscription: Subscription, first: dt.date, last: dt.date
) -> list[dict[str, Any]]:
    """The SKU's alerts opened in the range, each with its admin page for those who may see it."""
    alerts = subscription_alerts(
        subscription.pk, prices.day_start(first), prices.day_start(last + dt.timedelta(days=1))
    )
    may_view = request.user.has_perm("alerts.view_alert")
    for alert in alerts:
        alert["url"] = reverse("admin:alerts_alert_change", args=[alert["id"]]) if may_view else ""
    return alerts


def _alert_json(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert for the chart: times as ISO strings, amounts as numbers."""
    amounts = ("our_price", "their_price", "difference_rub", "difference_pct")
    return {
        **alert,
        "opened_at": alert["opened_at"].isoformat(),
        "resolved_at": alert["resolved_at"].isoformat() if alert["resolved_at"] else None,
        **{name: None if alert[name] is None else float(alert[name]) for name in amounts},
    }


@reader_required
def comparison(request: HttpRequest, subscription_id: int) -> HttpResponse:
    subscription = get_object_or_404(Subscription, pk=subscription_id)
    form = RangeForm(request.GET)
    if not form.is_valid():
        context = {"subscription": subscription, "form": form, "payload": None}
        return render(request, "analytics/comparison.html", context, status=400)
    first, last = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
    payload = series_payload(subscription, first, last)
    alerts = _alerts(request, subscription, first, last)
    context = {
        "subscription": subscription,
        "form": form,
        "payload": payload,
        "alerts": alerts,
        "alerts_json": [_alert_json(alert) for alert in alerts],
        "latest": _latest(payload["series"]),
        "labels": _chart_labels(),
        "ranges": [
            (days, {"date_from": last - dt.timedelta(days=days - 1), "date_to": last})
            for days in (7, 30, 90, 365)
        ],
    }
    return render(request, "analytics/comparison.html", context)


@reader_required
def gaps(request: HttpRequest) -> HttpResponse:
    form = GapForm(request.GET)
    if not form.is_valid():
        return render(request, "analytics/gaps.html", {"form": form, "rows": []}, status=400)
    night: dt.date | None = form.cleaned_data["night"] or prices.latest_night()
    rows = []
    if night is not None:
        rows = prices.gap_table(
            night, brand=form.cleaned_data["brand"], marketplace=form.cleaned_data["marketplace"]
        )
    return render(request, "analytics/gaps.html", {"form": form, "night": night, "rows": rows})
