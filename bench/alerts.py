"""The alert engine's cost: observations saved and checked per second against saving the same
observations without checks, measured in the same run.

Builds a scratch test database (Django's test-database machinery, from the settings'
``DATABASE_URL``; dropped at the end), with S SKUs of ours × C competitors each (default
1,000 × 9: 10,000 SKUs), R rules (default 100: every kind, most narrowed to a brand or a
marketplace, some everywhere) and one night of earlier observations as references. Then it
saves N observations without checks (the baseline), N more the product's way: each handed to
``alerts.services.check_observation`` as the result handler does (queued in PostgreSQL), with the
worker's ``alerts.queue.drain`` checking them in batches; and N more each checked alone with
``alerts.engine.check`` (what a worker does when it is idle). It prints the rates and their
ratios to the baseline. 85 % of the observations repeat yesterday's price, the rest move by
1-20 %. Target: ratio ≥ 50 % (checks cost no more than the saves). Prints figures; it is not a
test.

Usage: python bench/alerts.py [--skus 1000] [--competitors 9] [--rules 100] [--observations 3000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

from alerts import engine, queue, services  # noqa: E402
from alerts.models import AlertRule, PendingCheck, PriceLevel  # noqa: E402
from parser.types import Marketplace  # noqa: E402
from watcher.models import Competitor, PriceHistory, Subscription  # noqa: E402
from watcher.services.redis import get_redis  # noqa: E402

BRANDS = [f"Brand {i}" for i in range(20)]
UNCHANGED = 0.85  # the share of observations at yesterday's price


def seed(skus: int, competitors: int, rules: int) -> list[tuple[Subscription, Competitor | None]]:
    rng = random.Random(7)
    marketplaces = list(Marketplace.values)
    subscriptions = Subscription.objects.bulk_create(
        Subscription(
            brand=rng.choice(BRANDS), marketplace=rng.choice(marketplaces), sku=str(10**8 + i)
        )
        for i in range(skus)
    )
    rivals = Competitor.objects.bulk_create(
        Competitor(subscription=s, competitor_sku=f"{s.sku}-{j}")
        for s in subscriptions
        for j in range(competitors)
    )
    kinds = list(engine.OBSERVATION_KINDS)
    AlertRule.objects.all().delete()
    AlertRule.objects.bulk_create(
        AlertRule(
            kind=kinds[i % len(kinds)],
            name=f"rule {i}",
            threshold_pct=Decimal(rng.choice((3, 5, 10, 20))),
            rating_threshold=Decimal("4.5"),
            price_level=rng.choice(PriceLevel.values),
            consecutive=rng.choice((1, 1, 1, 2)),
            brand=rng.choice(BRANDS) if i % 4 else "",
            marketplace=rng.choice(marketplaces) if i % 4 == 1 else "",
        )
        for i in range(rules)
    )
    yesterday = timezone.now() - timezone.timedelta(days=1)
    pairs: list[tuple[Subscription, Competitor | None]] = [(s, None) for s in subscriptions]
    pairs += [(c.subscription, c) for c in rivals]
    PriceHistory.objects.bulk_create(observation(s, c, 1000, yesterday) for s, c in pairs)
    return pairs


def observation(
    subscription: Subscription, competitor: Competitor | None, price: float, at=None
) -> PriceHistory:
    return PriceHistory(
        sku=competitor.competitor_sku if competitor else subscription.sku,
        marketplace=subscription.marketplace,
        brand=subscription.brand,
        subscription=subscription,
        competitor=competitor,
        current_price=Decimal(str(price)),
        spp_price=Decimal(str(round(price * 0.93, 2))),
        old_price=Decimal(str(price * 2)),
        in_stock=True,
        rating=Decimal("4.7"),
        parsed_at=at or timezone.now(),
    )


def run(pairs, count: int, mode: str) -> float:
    """Seconds to save ``count`` observations: ``plain``, ``queued`` (the product's path, the
    worker draining what is queued) or ``alone`` (each checked on its own)."""
    rng = random.Random({"plain": 13, "queued": 11, "alone": 17}[mode])
    PendingCheck.objects.all().delete()
    # A worker busy with a drain: the observations wait for it (the bench sends no Celery task).
    get_redis().set(queue.SCHEDULED_KEY, 1)
    started = time.perf_counter()
    for _ in range(count):
        subscription, competitor = rng.choice(pairs)
        # Most cards keep yesterday's price; some move, a few far enough to open alerts.
        price = 1000 if rng.random() < UNCHANGED else rng.choice((990, 940, 900, 800, 1100))
        saved = PriceHistory.objects.create(
            **{
                f.attname: getattr(observation(subscription, competitor, price), f.attname)
                for f in PriceHistory._meta.concrete_fields
                if f.attname != "id"
            }
        )
        if mode == "queued":
            services.check_observation(saved.pk)
        elif mode == "alone":
            engine.check(saved.pk)
    if mode == "queued":
        assert queue.drain() == count
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=1000, help="our SKUs")
    parser.add_argument("--competitors", type=int, default=9, help="competitors per SKU")
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--observations", type=int, default=3000)
    args = parser.parse_args()

    old = setup_databases(verbosity=0, interactive=False)
    try:
        pairs = seed(args.skus, args.competitors, args.rules)
        print(
            f"{connection.vendor}: {len(pairs)} SKUs ({args.skus} ours), "
            f"{AlertRule.objects.count()} rules, {args.observations} observations per run"
        )
        run(pairs, 200, "alone")  # warm up caches and plans
        n = args.observations
        plain = run(pairs, n, "plain")
        queued = run(pairs, n, "queued")
        alone = run(pairs, n, "alone")
        saves = n / plain
        print(f"save only:               {saves:8.0f} observations/s")
        for label, seconds in (("save + queued check:", queued), ("save + check alone: ", alone)):
            rate = n / seconds
            print(
                f"{label}     {rate:8.0f} observations/s  ratio {rate / saves:6.1%}"
                f"  (checks alone {n / max(seconds - plain, 1e-9):6.0f}/s)"
            )
        print("target: save + queued check >= 50 % of save only")
    finally:
        get_redis().delete(queue.SCHEDULED_KEY)
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
