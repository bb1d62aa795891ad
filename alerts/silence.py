"""The silence rules, checked on a schedule: a SKU without a valid price for N nights, and a
night whose batch is not finished by the rule's deadline."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from alerts import engine, holds
from alerts.holds import UNFINISHED
from alerts.models import ACTIVE_STATUSES, Alert, AlertKind, AlertRule
from watcher.models import Competitor, Subscription, Task


def check_silence(now: dt.datetime | None = None) -> list[Alert]:
    """Check every active silence rule; return the alerts opened."""
    now = now or timezone.now()
    opened: list[Alert] = []
    rules = AlertRule.objects.filter(
        is_active=True, kind__in=(AlertKind.NO_PRICE_NIGHTS, AlertKind.BATCH_UNFINISHED)
    )
    # The details are stored, so in the site's language whoever runs the check.
    with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
        for rule in rules:
            if rule.kind == AlertKind.NO_PRICE_NIGHTS:
                opened += _no_price(rule, now)
            else:
                opened += _batch_unfinished(rule, now)
    told = [alert.pk for alert in opened if not alert.hold]
    if told:
        from alerts import notifications

        transaction.on_commit(lambda: notifications.announce_alerts(told))
    return opened


def _last_due_night(rule: AlertRule, now: dt.datetime) -> dt.date:
    """The latest night whose deadline has passed (a night is named by its evening's date)."""
    local = timezone.localtime(now)
    return local.date() - dt.timedelta(days=1 if local.time() >= rule.deadline else 2)


def _narrowed(rule: AlertRule, subscriptions: QuerySet[Subscription]) -> QuerySet[Subscription]:
    if rule.marketplace:
        subscriptions = subscriptions.filter(marketplace=rule.marketplace)
    if rule.brand:
        subscriptions = subscriptions.filter(brand=rule.brand)
    if rule.subscription_id:
        subscriptions = subscriptions.filter(pk=rule.subscription_id)
    return subscriptions


def _no_price(rule: AlertRule, now: dt.datetime) -> list[Alert]:
    since = now - dt.timedelta(days=rule.nights)
    subscriptions = _narrowed(rule, Subscription.objects.filter(is_active=True))
    valid = Q(prices__current_price__gt=0)
    ours = subscriptions.filter(created_at__lt=since).annotate(
        last=Max("prices__parsed_at", filter=valid & Q(prices__competitor__isnull=True))
    )
    theirs = (
        Competitor.objects.filter(is_active=True, subscription__in=subscriptions)
        .filter(created_at__lt=since)
        .annotate(last=Max("prices__parsed_at", filter=valid))
        .select_related("subscription")
    )
    silent: dict[str, tuple[Subscription, Competitor | None, dt.datetime | None]] = {}
    for subscription in ours:
        if subscription.last is None or subscription.last < since:
            key = engine.pair_key(subscription.pk, None)
            silent[key] = (subscription, None, subscription.last)
    for competitor in theirs:
        if competitor.last is None or competitor.last < since:
            key = engine.pair_key(competitor.subscription_id, competitor.pk)
            silent[key] = (competitor.subscription, competitor, competitor.last)

    active = {a.pair_key: a for a in Alert.objects.filter(rule=rule, status__in=ACTIVE_STATUSES)}
    for key, alert in active.items():
        if key not in silent:
            engine.resolve(alert, now)
    new = {key: value for key, value in silent.items() if key not in active}
    if not new:
        return []
    standing = engine.standing([rule], set(new), now)
    # Silence may be ours (no agent working, the night not done): held, and saying why.
    hold = holds.Judge(now).hold(rule.kind, None)
    opened = []
    for key, (subscription, competitor, last) in new.items():
        entry = standing[(rule.pk, key)]
        if not engine.cooled_down(rule, entry, now):
            continue
        details = (
            _("no valid price since %(date)s") % {"date": timezone.localdate(last).isoformat()}
            if last
            else _("no valid price yet")
        )
        alert = engine.open_alert(
            rule,
            key,
            marketplace=subscription.marketplace,
            brand=subscription.brand,
            subscription_id=subscription.pk,
            competitor_id=competitor.pk if competitor else None,
            figures={"details": details[:500]},
            entry=entry,
            now=now,
            hold=hold,
        )
        if alert is not None:
            opened.append(alert)
    return opened


def _batch_unfinished(rule: AlertRule, now: dt.datetime) -> list[Alert]:
    night = _last_due_night(rule, now)
    key = f"night:{night.isoformat()}"
    tasks = Task.objects.filter(scheduled_date=night)
    if rule.marketplace:
        tasks = tasks.filter(marketplace=rule.marketplace)
    if rule.brand:
        tasks = tasks.filter(brand=rule.brand)
    if rule.subscription_id:
        tasks = tasks.filter(subscription_id=rule.subscription_id)
    total = tasks.count()
    unfinished = tasks.filter(status__in=UNFINISHED).count()
    active = list(Alert.objects.filter(rule=rule, status__in=ACTIVE_STATUSES))
    for alert in active:
        if alert.pair_key != key or not unfinished:
            engine.resolve(alert, now)
    if not unfinished or any(alert.pair_key == key for alert in active):
        return []
    entry = engine.standing([rule], {key}, now)[(rule.pk, key)]
    if not engine.cooled_down(rule, entry, now):
        return []
    details = _("night %(night)s: %(unfinished)d of %(total)d tasks unfinished by %(deadline)s") % {
        "night": night.isoformat(),
        "unfinished": unfinished,
        "total": total,
        "deadline": rule.deadline.strftime("%H:%M"),
    }
    alert = engine.open_alert(
        rule,
        key,
        marketplace=rule.marketplace,
        brand=rule.brand,
        subscription_id=rule.subscription_id,
        competitor_id=None,
        figures={"details": details},
        entry=entry,
        now=now,
    )
    return [alert] if alert is not None else []
