"""Price history for analysts: which rows (one filter set for the API, the exports and the
command), a subscription's series for a chart, and a night's gap table."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import django_filters as filters
from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from parser.types import Marketplace
from watcher.models import Competitor, PriceHistory, Subscription, Task

OWN, COMPETITOR = "own", "competitor"
KIND_CHOICES = ((OWN, _("our SKU")), (COMPETITOR, _("competitor")))
DEFAULT_DAYS = 30


def day_start(day: dt.date) -> dt.datetime:
    """Midnight of a local calendar day: date ranges are the analyst's days, not UTC's."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def in_days(queryset: QuerySet[PriceHistory], first: dt.date, last: dt.date) -> QuerySet:
    """Observations from the start of ``first`` to the end of ``last`` (both included)."""
    return queryset.filter(
        parsed_at__gte=day_start(first), parsed_at__lt=day_start(last + dt.timedelta(days=1))
    )


def default_range(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    last = today or timezone.localdate()
    return last - dt.timedelta(days=DEFAULT_DAYS - 1), last


class IdFilter(filters.NumberFilter):
    """A row's id: a whole number (``1.5`` is a 400, not row 1)."""

    field_class = forms.IntegerField


class PriceFilter(filters.FilterSet):
    """The filters of price history; the API, the exports and ``export_prices`` share them."""

    marketplace = filters.ChoiceFilter(choices=Marketplace.choices, label=_("marketplace"))
    brand = filters.CharFilter(field_name="brand", label=_("brand"))
    subscription = IdFilter(field_name="subscription_id", label=_("our SKU (id)"))
    competitor = IdFilter(field_name="competitor_id", label=_("competitor (id)"))
    kind = filters.ChoiceFilter(
        choices=KIND_CHOICES, method="filter_kind", label=_("our SKU or competitor")
    )

    class Meta:
        model = PriceHistory
        fields: tuple[str, ...] = ()

    def filter_kind(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(competitor__isnull=value == OWN)

    def filter_from(self, queryset: QuerySet, name: str, value: dt.date) -> QuerySet:
        return queryset.filter(parsed_at__gte=day_start(value))

    def filter_to(self, queryset: QuerySet, name: str, value: dt.date) -> QuerySet:
        return queryset.filter(parsed_at__lt=day_start(value + dt.timedelta(days=1)))


# "from" and "to" are Python keywords, so they cannot be declared as class attributes above.
PriceFilter.base_filters["from"] = filters.DateFilter(
    method="filter_from", label=_("from (date, included)")
)
PriceFilter.base_filters["to"] = filters.DateFilter(
    method="filter_to", label=_("to (date, included)")
)


def filter_prices(data: Any) -> PriceFilter:
    """The filter set over all observations; check ``is_valid()`` before reading ``qs``."""
    return PriceFilter(data, queryset=PriceHistory.objects.all())


# --- Series for a chart -----------------------------------------------------------------------

POINT_FIELDS = (
    "parsed_at", "current_price", "old_price", "spp_price", "in_stock", "stock_quantity",
)  # fmt: skip


def series(subscription: Subscription, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """Our SKU's series, then one per competitor (every one, observed in the range or not)."""
    rows = (
        in_days(PriceHistory.objects.filter(subscription=subscription), first, last)
        .order_by("parsed_at", "id")
        .values("competitor_id", *POINT_FIELDS)
    )
    points: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        points[row.pop("competitor_id")].append(row)
    result = [
        {
            "kind": OWN,
            "competitor": None,
            "sku": subscription.sku,
            "name": subscription.title,
            "is_active": subscription.is_active,
            "points": points.get(None, []),
        }
    ]
    for competitor in subscription.competitors.order_by("competitor_sku"):
        result.append(
            {
                "kind": COMPETITOR,
                "competitor": competitor.pk,
                "sku": competitor.competitor_sku,
                "name": competitor.name,
                "is_active": competitor.is_active,
                "points": points.get(competitor.pk, []),
            }
        )
    return result


# --- The night's gap table --------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """One competitor SKU against ours on one night; ``difference`` is theirs minus ours."""

    competitor: Competitor
    our_price: Decimal | None
    their_price: Decimal | None
    their_wallet_price: Decimal | None
    their_in_stock: bool | None

    @property
    def difference(self) -> Decimal | None:
        if self.our_price is None or self.their_price is None:
            return None
        return self.their_price - self.our_price

    @property
    def percent(self) -> Decimal | None:
        difference = self.difference
        if difference is None or not self.our_price:
            return None
        return (difference * 100 / self.our_price).quantize(Decimal("0.1"))


def latest_night() -> dt.date | None:
    """The last night that has observations."""
    return (
        Task.objects.filter(price__isnull=False)
        .order_by("-scheduled_date")
        .values_list("scheduled_date", flat=True)
        .first()
    )


def gap_table(night: dt.date, *, brand: str = "", marketplace: str = "") -> list[Gap]:
    """Every active competitor SKU with our price and theirs from the night's tasks, the ones
    that undercut us most first; rows without both prices go last."""
    competitors = Competitor.objects.filter(is_active=True).select_related("subscription")
    observed = PriceHistory.objects.filter(task__scheduled_date=night)
    if brand:
        competitors = competitors.filter(subscription__brand=brand)
        observed = observed.filter(brand=brand)
    if marketplace:
        competitors = competitors.filter(subscription__marketplace=marketplace)
        observed = observed.filter(marketplace=marketplace)
    ours: dict[int, Decimal | None] = {}
    theirs: dict[int, tuple[Decimal | None, Decimal | None, bool | None]] = {}
    fields = ("subscription_id", "competitor_id", "current_price", "spp_price", "in_stock")
    rows = observed.order_by("parsed_at", "id").values_list(*fields)
    for sub_id, comp_id, price, wallet, in_stock in rows:
        if comp_id is None:
            ours[sub_id] = price
        else:
            theirs[comp_id] = (price, wallet, in_stock)
    missing = (None, None, None)
    gaps = [
        Gap(competitor, ours.get(competitor.subscription_id), *theirs.get(competitor.pk, missing))
        for competitor in competitors
    ]
    return sorted(gaps, key=lambda gap: (gap.percent is None, gap.percent or 0, gap.competitor.pk))


def brands() -> list[str]:
    return list(Subscription.objects.order_by("brand").values_list("brand", flat=True).distinct())
