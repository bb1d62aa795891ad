"""The alert engine against stored observations: every rule kind, the trust guards, the life
of an alert (de-duplication, auto-resolve, cooldown, muting) and the cost of a check."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts import engine
from alerts.models import Alert, AlertKind, AlertRule, AlertStatus, PriceLevel
from parser.types import Marketplace
from tests.alerts.conftest import observe, rule
from tests.factories import CompetitorFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def open_alerts() -> list[Alert]:
    return list(Alert.objects.filter(status__in=(AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)))


def test_it_creates_the_default_rules_on_migrate() -> None:
    defaults = {r.kind: r for r in AlertRule.objects.all()}
    assert defaults[AlertKind.DUMPING].threshold_pct == 5
    assert defaults[AlertKind.DUMPING].price_level == PriceLevel.REGULAR
    assert AlertKind.OUT_OF_STOCK in defaults
    assert defaults[AlertKind.NO_PRICE_NIGHTS].nights == 2
    assert all(r.is_active for r in defaults.values())


@pytest.mark.parametrize(("their", "fires"), [(950, False), ("949.99", True), (900, True)])
def test_dumping_fires_only_beyond_the_percent_threshold(pair, clock, their, fires) -> None:
    subscription, competitor = pair
    dumping = rule(threshold_pct=Decimal(5))
    ours = observe(clock, subscription, price=1000)
    theirs = observe(clock, subscription, competitor, price=their)
    opened = engine.check(theirs.pk)
    assert bool(opened) is fires
    if fires:
        alert = Alert.objects.get()
        assert alert.rule == dumping and alert.kind == AlertKind.DUMPING
        assert alert.status == AlertStatus.OPEN
        assert alert.subscription == subscription and alert.competitor == competitor
        assert alert.our_price == 1000 and alert.their_price == Decimal(str(their))
        assert alert.difference_rub == 1000 - Decimal(str(their))
        assert alert.difference_pct == ((1000 - Decimal(str(their))) / 10).quantize(Decimal("0.01"))
        assert alert.price_level == PriceLevel.REGULAR
        assert (alert.our_observation, alert.their_observation) == (ours, theirs)
        assert alert.marketplace == subscription.marketplace and alert.brand == subscription.brand


@pytest.mark.parametrize(("their", "fires"), [(900, False), ("899.99", True)])
def test_dumping_fires_beyond_the_rouble_threshold(pair, clock, their, fires) -> None:
    subscription, competitor = pair
    rule(threshold_pct=None, threshold_rub=Decimal(100))
    observe(clock, subscription, price=1000)
    theirs = observe(clock, subscription, competitor, price=their)
    assert bool(engine.check(theirs.pk)) is fires


def test_our_price_arriving_last_evaluates_every_linked_competitor(pair, clock) -> None:
    subscription, cheap = pair
    fair = CompetitorFactory(subscription=subscription)
    other_sku = CompetitorFactory()  # another SKU's competitor: not compared with ours
    rule()
    observe(clock, subscription, cheap, price=800)
    observe(clock, subscription, fair, price=990)
    observe(clock, other_sku.subscription, other_sku, price=10)
    ours = observe(clock, subscription, price=1000)
    engine.check(ours.pk)
    assert [(a.competitor, a.their_price) for a in open_alerts()] == [(cheap, 800)]


@pytest.mark.parametrize(
    ("level", "our", "their", "fires", "compared"),
    [
        # our card: 1000, 900 with the wallet; theirs: 980, 850 with the wallet
        (PriceLevel.REGULAR, (1000, 900), (980, 850), False, (1000, 980)),
        (PriceLevel.WALLET, (1000, 900), (980, 850), True, (900, 850)),
        (PriceLevel.LOWEST, (1000, 900), (980, 850), True, (900, 850)),
        # no wallet price on their card: the card's one price counts at every level
        (PriceLevel.WALLET, (1000, 990), (930, None), True, (990, 930)),
        (PriceLevel.LOWEST, (1000, 990), (1100, 940), True, (990, 940)),
    ],
)
def test_dumping_compares_the_rules_price_level(
    pair, clock, level, our, their, fires, compared
) -> None:
    subscription, competitor = pair
    rule(price_level=level)
    observe(clock, subscription, price=our[0], spp_price=our[1])
    theirs = observe(clock, subscription, competitor, price=their[0], spp_price=their[1])
    engine.check(theirs.pk)
    alerts = open_alerts()
    assert bool(alerts) is fires
    if fires:
        assert (alerts[0].our_price, alerts[0].their_price) == compared
        assert alerts[0].price_level == level


def test_a_read_without_a_price_is_never_the_reference(pair, clock) -> None:
    subscription, competitor = pair
    rule()
    observe(clock, subscription, price=1000)
    gone = observe(clock, subscription, price=None, in_stock=False)  # our card without a price
    engine.check(gone.pk)
    assert not open_alerts()
    theirs = observe(clock, subscription, competitor, price=900)
    engine.check(theirs.pk)
    assert [a.our_price for a in open_alerts()] == [1000]


def test_a_reference_older_than_the_setting_is_not_used(pair, clock, settings) -> None:
    subscription, competitor = pair
    rule()
    settings.WATCHER_ALERT_REFERENCE_MAX_AGE = 2 * 86400
    observe(clock, subscription, price=1000, parsed_at=timezone.now() - dt.timedelta(days=3))
    theirs = observe(clock, subscription, competitor, price=500)
    assert engine.check(theirs.pk) == []
    observe(clock, subscription, price=1000)
    again = observe(clock, subscription, competitor, price=500)
    assert len(engine.check(again.pk)) == 1


def test_rules_narrowed_by_marketplace_brand_or_sku_apply_only_there(no_default_rules, clock):
    wb = SubscriptionFactory(brand="Nordic Home", marketplace=Marketplace.WILDBERRIES)
    ozon = SubscriptionFactory(brand="Nordic Home", marketplace=Marketplace.OZON)
    other_brand = SubscriptionFactory(brand="Stride", marketplace=Marketplace.WILDBERRIES)
    by_marketplace = rule(name="wb", marketplace=Marketplace.WILDBERRIES)
    by_brand = rule(name="nordic", brand="Nordic Home")
    by_sku = rule(name="one sku", subscription=ozon)
    fired: dict[str, set[str]] = {}
    for subscription in (wb, ozon, other_brand):
        competitor = CompetitorFactory(subscription=subscription)
        observe(clock, subscription, price=1000)
        engine.check(observe(clock, subscription, competitor, price=800).pk)
        fired[subscription.sku] = {
            a.rule.name for a in Alert.objects.filter(subscription=subscription)
        }
    assert fired[wb.sku] == {by_marketplace.name, by_brand.name}
    assert fired[ozon.sku] == {by_brand.name, by_sku.name}
    assert fired[other_brand.sku] == {by_marketplace.name}


def test_consecutive_n_needs_n_observations_in_a_row(pair, clock) -> None:
    subscription, competitor = pair
    rule(consecutive=3)
    observe(clock, subscription, price=1000)
    assert engine.check(observe(clock, subscription, competitor, price=900).pk) == []
    assert engine.check(observe(clock, subscription, competitor, price=900).pk) == []
    # a fair price breaks the streak
    assert engine.check(observe(clock, subscription, competitor, price=1000).pk) == []
    for _ in range(2):
        assert engine.check(observe(clock, subscription, competitor, price=900).pk) == []
    assert len(engine.check(observe(clock, subscription, competitor, price=900).pk)) == 1


def test_an_implausible_drop_waits_for_the_next_observation(pair, clock) -> None:
    subscription, competitor = pair
    rule()
    observe(clock, subscription, price=1000)
    observe(clock, subscription, competitor, price=1000)
    # below 15 % of their last valid price: a misread until the next observation confirms it
    assert engine.check(observe(clock, subscription, competitor, price=100).pk) == []
    opened = engine.check(observe(clock, subscription, competitor, price=100).pk)
    assert [(a.their_price, a.difference_pct) for a in opened] == [(100, 90)]


def test_a_discount_badge_of_80_to_99_percent_needs_confirmation(pair, clock) -> None:
    subscription, competitor = pair
    rule()
    observe(clock, subscription, price=1000)
    first = observe(clock, subscription, competitor, price=500, old_price=10_000)  # -95 %
    assert engine.check(first.pk) == []
    second = observe(clock, subscription, competitor, price=510, old_price=10_000)
    [alert] = engine.check(second.pk)
    assert alert.suspicious and alert.their_price == 510
    # a discount of 50 % is ordinary
    other = CompetitorFactory(subscription=subscription)
    [ordinary] = engine.check(observe(clock, subscription, other, price=500, old_price=1000).pk)
    assert not ordinary.suspicious


def test_one_open_alert_per_rule_and_pair_with_its_figures_updated(pair, clock) -> None:
    subscription, competitor = pair
    rule()
    observe(clock, subscription, price=1000)
    [alert] = engine.check(observe(clock, subscription, competitor, price=900).pk)
    opened_at = alert.opened_at
    assert engine.check(observe(clock, subscription, competitor, price=850).pk) == []
    assert engine.check(observe(clock, subscription, price=1000).pk) == []
    [same] = open_alerts()
    assert same.pk == alert.pk and same.opened_at == opened_at
    assert (same.their_price, same.difference_rub, same.difference_pct) == (850, 150, 15)
    assert same.updated_at > opened_at


def test_it_resolves_itself_and_a_cooldown_stops_it_reopening(pair, clock) -> None:
    subscription, competitor = pair
    rule(cooldown_hours=24)
    observe(clock, subscription, price=1000)
    [alert] = engine.check(observe(clock, subscription, competitor, price=900).pk)
    # an acknowledged alert is still the one alert, and still resolves itself
    assert engine.acknowledge(alert, None)
    engine.check(observe(clock, subscription, competitor, price=1000).pk)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_at is not None
    # back below within the cooldown: nothing new
    undercut = observe(clock, subscription, competitor, price=900)
    assert engine.check(undercut.pk) == []
    # a day later it may open again
    later = timezone.now() + dt.timedelta(hours=25)
    [again] = engine.check(undercut.pk, now=later)
    assert again.pk != alert.pk
    assert Alert.objects.count() == 2


def test_a_muted_pair_stays_muted_when_it_reopens(pair, clock) -> None:
    subscription, competitor = pair
    rule(cooldown_hours=0)
    observe(clock, subscription, price=1000)
    [alert] = engine.check(observe(clock, subscription, competitor, price=900).pk)
    assert engine.mute(Alert.objects.filter(pk=alert.pk), days=3) == 1
    engine.check(observe(clock, subscription, competitor, price=1000).pk)
    [again] = engine.check(observe(clock, subscription, competitor, price=900).pk)
    assert again.pk != alert.pk and again.is_muted()


@pytest.mark.parametrize(
    ("kind", "before", "after", "fires"),
    [
        (AlertKind.PRICE_DROP, 1000, 900, False),  # exactly 10 %
        (AlertKind.PRICE_DROP, 1000, 899, True),
        (AlertKind.PRICE_DROP, 1000, 1200, False),
        (AlertKind.PRICE_RISE, 1000, 1100, False),
        (AlertKind.PRICE_RISE, 1000, 1101, True),
        (AlertKind.PRICE_RISE, 1000, 800, False),
    ],
)
def test_price_drop_and_rise_since_the_previous_observation(
    pair, clock, kind, before, after, fires
) -> None:
    subscription, competitor = pair
    rule(kind, threshold_pct=Decimal(10))
    observe(clock, subscription, competitor, price=before)
    observation = observe(clock, subscription, competitor, price=after)
    opened = engine.check(observation.pk)
    assert bool(opened) is fires
    if fires:
        assert opened[0].their_price == after and opened[0].our_price is None
        assert opened[0].difference_rub == abs(after - before)
        assert opened[0].details == f"{Decimal(before):.2f} → {Decimal(after):.2f}"


def test_a_drop_on_our_sku_says_our_price_and_needs_a_plausible_jump(pair, clock) -> None:
    subscription, _ = pair
    rule(AlertKind.PRICE_DROP, threshold_pct=Decimal(10))
    observe(clock, subscription, price=1000)
    assert engine.check(observe(clock, subscription, price=50).pk) == []  # implausible
    observe(clock, subscription, price=1000)
    [alert] = engine.check(observe(clock, subscription, price=800).pk)
    assert alert.our_price == 800 and alert.their_price is None and alert.competitor is None


def test_out_of_stock_opens_and_back_in_stock_resolves_it(pair, clock) -> None:
    subscription, competitor = pair
    rule(AlertKind.OUT_OF_STOCK)
    back = rule(AlertKind.BACK_IN_STOCK)
    observe(clock, subscription, competitor, price=1000)
    [gone] = engine.check(observe(clock, subscription, competitor, price=None).pk)
    assert gone.kind == AlertKind.OUT_OF_STOCK and gone.competitor == competitor
    assert engine.check(observe(clock, subscription, competitor, price=None).pk) == []
    [returned] = engine.check(observe(clock, subscription, competitor, price=990).pk)
    assert returned.rule == back and returned.their_price == 990
    gone.refresh_from_db()
    assert gone.status == AlertStatus.RESOLVED
    # still in stock the next night: the news is over
    engine.check(observe(clock, subscription, competitor, price=990).pk)
    returned.refresh_from_db()
    assert returned.status == AlertStatus.RESOLVED


@pytest.mark.parametrize(("rating", "fires"), [("4.50", False), ("4.49", True), (None, False)])
def test_rating_below_the_threshold(pair, clock, rating, fires) -> None:
    subscription, _ = pair
    rule(AlertKind.RATING_BELOW, rating_threshold=Decimal("4.5"))
    observation = observe(clock, subscription, price=1000, rating=rating)
    assert bool(engine.check(observation.pk)) is fires


def test_inactive_rules_do_nothing(pair, clock) -> None:
    subscription, competitor = pair
    rule(is_active=False)
    observe(clock, subscription, price=1000)
    assert engine.check(observe(clock, subscription, competitor, price=500).pk) == []


@pytest.mark.parametrize("competitors", [2, 30])
def test_a_check_costs_the_same_few_queries_however_many_competitors(
    no_default_rules, clock, django_assert_max_num_queries, competitors
) -> None:
    subscription = SubscriptionFactory()
    for kind in AlertKind.values[:6]:
        rule(kind, threshold_pct=Decimal(5), rating_threshold=Decimal(4), consecutive=2)
    rule(AlertKind.DUMPING, name="wallet", price_level=PriceLevel.WALLET)
    for _ in range(competitors):
        competitor = CompetitorFactory(subscription=subscription)
        observe(clock, subscription, competitor, price=990)
        observe(clock, subscription, competitor, price=995)
    observe(clock, subscription, price=1000)
    ours = observe(clock, subscription, price=1000, rating=Decimal("4.8"))
    # the observation, rules, latest prices, previous reading, standing alerts, streaks, and
    # the write block's savepoint (the test runs inside a transaction)
    with django_assert_max_num_queries(8):
        assert engine.check(ours.pk) == []


@pytest.mark.parametrize("competitors", [2, 30])
def test_standing_alerts_are_updated_and_resolved_in_a_statement_each(
    no_default_rules, clock, django_assert_max_num_queries, competitors
) -> None:
    subscription = SubscriptionFactory()
    rule()
    rivals = [CompetitorFactory(subscription=subscription) for _ in range(competitors)]
    for rival in rivals:
        observe(clock, subscription, rival, price=800)
    engine.check(observe(clock, subscription, price=1000).pk)
    assert len(open_alerts()) == competitors
    # our price moves: every alert's figures change
    ours = observe(clock, subscription, price=1100)
    # the observation, rules, latest prices, standing alerts, savepoint, update, release
    with django_assert_max_num_queries(7):
        assert engine.check(ours.pk) == []
    assert {a.our_price for a in open_alerts()} == {1100}
    assert {a.our_observation_id for a in open_alerts()} == {ours.pk}
    # our price falls to theirs: every alert resolves
    level = observe(clock, subscription, price=800)
    with django_assert_max_num_queries(7):
        engine.check(level.pk)
    assert open_alerts() == []
    assert Alert.objects.filter(status=AlertStatus.RESOLVED).count() == competitors


def test_a_check_racing_another_to_open_the_same_alert_updates_that_one(pair, clock) -> None:
    subscription, competitor = pair
    dumping = rule()
    observe(clock, subscription, price=1000)
    [first] = engine.check(observe(clock, subscription, competitor, price=900).pk)
    later = observe(clock, subscription, competitor, price=850)
    # what a concurrent check would do, having read the standing alerts before the first commit
    again = engine.open_alert(
        dumping,
        first.pair_key,
        marketplace=subscription.marketplace,
        brand=subscription.brand,
        subscription_id=subscription.pk,
        competitor_id=competitor.pk,
        figures={"their_price": Decimal(850), "their_observation_id": later.pk},
        entry=engine.Standing(),
        now=timezone.now(),
    )
    assert again is None
    [only] = open_alerts()
    assert only.pk == first.pk and only.their_price == 850
    assert only.their_observation_id == later.pk


# --- Batches: what the worker checks at once -----------------------------------------------------


def test_a_batch_sees_each_observation_as_if_checked_alone(no_default_rules, clock) -> None:
    subscription = SubscriptionFactory()
    rival, other = CompetitorFactory.create_batch(2, subscription=subscription)
    rule(cooldown_hours=0)
    rule(AlertKind.OUT_OF_STOCK, name="oos")
    rule(AlertKind.BACK_IN_STOCK, name="back")
    observe(clock, subscription, price=1000)
    batch = [
        observe(clock, subscription, rival, price=900),  # opens a dumping alert
        observe(clock, subscription, rival, price=850),  # updates it, no second one
        observe(clock, subscription, other, price=None),  # out of stock
        observe(clock, subscription, price=850),  # our price meets theirs: resolves it
        observe(clock, subscription, rival, price=700),  # reopens (no cooldown)
        observe(clock, subscription, other, price=990),  # back in stock: against the None
    ]
    opened = engine.check_many([o.pk for o in reversed(batch)])  # any order: by time
    kinds = sorted(a.kind for a in opened)
    assert kinds == ["back_in_stock", "dumping", "dumping", "out_of_stock"]
    first, second = sorted(
        Alert.objects.filter(kind=AlertKind.DUMPING, competitor=rival), key=lambda a: a.pk
    )
    assert first.status == AlertStatus.RESOLVED and first.their_price == 850
    assert second.status == AlertStatus.OPEN and (second.our_price, second.their_price) == (
        850,
        700,
    )
    assert second.their_observation_id == batch[4].pk


def test_a_batch_reads_the_history_between_its_observations_exactly(pair, clock) -> None:
    subscription, competitor = pair
    rule(AlertKind.PRICE_DROP, threshold_pct=Decimal(5))
    observe(clock, subscription, competitor, price=1000)
    first = observe(clock, subscription, competitor, price=1000)
    # stored in between but checked elsewhere (another worker's batch)
    observe(clock, subscription, competitor, price=2000)
    observe(clock, subscription, competitor, price=2000)
    last = observe(clock, subscription, competitor, price=1500)
    opened = engine.check_many([first.pk, last.pk])
    # the first saw no drop (1000 → 1000), the last a 25 % drop from 2000
    assert [(a.their_price, a.difference_pct) for a in opened] == [(1500, 25)]


def test_a_batch_costs_the_same_few_queries_however_many_observations(
    no_default_rules, clock, django_assert_max_num_queries
) -> None:
    for kind in AlertKind.values[:6]:
        rule(kind, threshold_pct=Decimal(5), rating_threshold=Decimal(4), consecutive=2)
    batch = []
    for _ in range(20):
        subscription = SubscriptionFactory()
        rivals = CompetitorFactory.create_batch(3, subscription=subscription)
        for rival in rivals:
            observe(clock, subscription, rival, price=1000)
        observe(clock, subscription, price=1000)
        batch.append(observe(clock, subscription, price=1000, rating=Decimal("4.8")))
        batch += [observe(clock, subscription, rival, price=1000) for rival in rivals]
    # the observations, rules, latest prices, previous readings, standing alerts, streaks and
    # the write block's savepoint and its release (the test runs inside a transaction): the
    # same 8 queries as one observation alone, for 80
    with django_assert_max_num_queries(8):
        assert engine.check_many([o.pk for o in batch]) == []


def test_a_batch_compares_our_sku_only_with_active_competitors(pair, clock) -> None:
    subscription, rival = pair
    gone = CompetitorFactory(subscription=subscription, is_active=False)
    rule()
    observe(clock, subscription, rival, price=990)
    # a last observation of a competitor just switched off, in the same batch as our price
    batch = [
        observe(clock, subscription, gone, price=500),
        observe(clock, subscription, price=1000),
    ]
    assert engine.check_many([o.pk for o in batch]) == []
