"""Demo data for a first look at the system."""

from __future__ import annotations

from django.db import transaction

from watcher.demo.catalogue import DEMO
from watcher.models import Competitor, Subscription


@transaction.atomic
def load_demo(only_if_empty: bool = False) -> dict[str, int] | None:
    if only_if_empty and Subscription.objects.exists():
        return None
    created = {"subscriptions": 0, "competitors": 0}
    for brand, mp, sku, title, priority, competitors in DEMO:
        sub, made = Subscription.objects.get_or_create(
            marketplace=mp, sku=sku, defaults={"brand": brand, "title": title, "priority": priority}
        )
        created["subscriptions"] += made
        for comp_sku, name, comp_priority in competitors:
            _comp, made = Competitor.objects.get_or_create(
                subscription=sub,
                competitor_sku=comp_sku,
                defaults={"name": name, "priority": comp_priority},
            )
            created["competitors"] += made
    return created
