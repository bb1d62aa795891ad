"""Demo data for a first look at the system."""

from __future__ import annotations

from django.db import transaction

from parser.types import Marketplace
from watcher.models import Competitor, Subscription

# (brand, marketplace, our sku, title, priority, [(competitor sku, name, priority)])
DEMO: list[tuple[str, str, str, str, int, list[tuple[str, str, int]]]] = [
    ("Nordic Home", Marketplace.WILDBERRIES, "176308673", "Плед флисовый 150×200", 10,
     [("145627193", "Плед CozyDream", 5), ("98347261", "Плед Uyut", 3)]),
    ("Nordic Home", Marketplace.WILDBERRIES, "181224507", "Подушка ортопедическая", 5,
     [("167734015", "Подушка SleepPro", 5)]),
    ("Nordic Home", Marketplace.OZON, "1093847562", "Плед флисовый 150×200", 10,
     [("1187365420", "Плед Teplo", 4), ("934857261", "Плед Home&Co", 2)]),
    ("RunFast", Marketplace.OZON, "1523647789", "Кроссовки беговые мужские", 8,
     [("1498273651", "Кроссовки Stride", 6)]),
    ("RunFast", Marketplace.YANDEX_MARKET, "1782364512", "Кроссовки беговые мужские", 8,
     [("1693847201", "Кроссовки Stride", 6), ("1702938475", "Кроссовки Pace", 1)]),
    ("RunFast", Marketplace.YANDEX_MARKET, "1802375612", "Носки спортивные, 5 пар", 1, []),
]  # fmt: skip


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
