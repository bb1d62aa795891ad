from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from alerts.models import AlertKind, AlertRule
from tests.factories import CompetitorFactory, PriceHistoryFactory, SubscriptionFactory
from watcher.models import Competitor, PriceHistory, Subscription


@pytest.fixture
def no_default_rules(db: None) -> None:
    """Tests build the rules they need; the defaults from migrate would add to them."""
    AlertRule.objects.all().delete()


@pytest.fixture
def clock() -> list[dt.datetime]:
    """A moving 'now' for observations: each one a minute after the last."""
    return [timezone.now() - dt.timedelta(hours=1)]


def observe(
    clock: list[dt.datetime],
    subscription: Subscription,
    competitor: Competitor | None = None,
    price: Any = 1000,
    **fields: Any,
) -> PriceHistory:
    clock[0] += dt.timedelta(minutes=1)
    return PriceHistoryFactory(
        task=None,  # several observations of one SKU a night: the engine reads prices only
        subscription=subscription,
        competitor=competitor,
        sku=competitor.competitor_sku if competitor else subscription.sku,
        current_price=None if price is None else Decimal(str(price)),
        in_stock=fields.pop("in_stock", price is not None),
        parsed_at=fields.pop("parsed_at", clock[0]),
        **fields,
    )


def rule(kind: str = AlertKind.DUMPING, **fields: Any) -> AlertRule:
    fields.setdefault("name", f"{kind} rule")
    if kind == AlertKind.DUMPING:
        fields.setdefault("threshold_pct", Decimal(5))
    return AlertRule.objects.create(kind=kind, **fields)


@pytest.fixture
def pair(no_default_rules: None) -> tuple[Subscription, Competitor]:
    subscription = SubscriptionFactory()
    return subscription, CompetitorFactory(subscription=subscription)
