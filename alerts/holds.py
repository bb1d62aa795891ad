"""Alerts held back while their cause may be ours (agents offline, the night unfinished).

A SKU alert whose evidence is silence (no price for N nights) or a reading older than
``WATCHER_ALERT_HOLD_STALE_AFTER`` (a dumping gap against last night's price) may be our doing
when no agent is working or the night's batch is not done: the SKU was simply not read. Such an
alert still opens, with its figures and the reason it is held (``Alert.hold``), so people see
it in the admin and the API; it is told to nobody until the cause clears. Then it is released
(told, or queued for the digest in the rule's quiet hours), or dropped (resolved untold) when
fresh readings show the condition no longer holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from alerts.models import ACTIVE_STATUSES, Alert, AlertKind, AlertStatus, HoldReason
from watcher.models import Agent, AgentStatus, PriceHistory, Task, TaskStatus

UNFINISHED = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.PARSING)


def cause_is_ours(now: dt.datetime) -> str:
    """Why readings may be missing through no fault of the marketplace (a ``HoldReason``, or
    "" when our side is working)."""
    if not Agent.objects.filter(is_enabled=True).exclude(status=AgentStatus.OFFLINE).exists():
        return HoldReason.AGENTS_OFFLINE
    # The night running now (whenever it was generated) or last night.
    since = timezone.localdate(now) - dt.timedelta(days=1)
    if Task.objects.filter(scheduled_date__gte=since, status__in=UNFINISHED).exists():
        return HoldReason.NIGHT_UNFINISHED
    return ""


def stale_before(now: dt.datetime) -> dt.datetime:
    """Readings older than this may be missing tonight's read."""
    return now - dt.timedelta(seconds=settings.WATCHER_ALERT_HOLD_STALE_AFTER)


class Judge:
    """Whether alerts being opened now are held; asks about the cause at most once, and only
    for an alert whose evidence may be ours."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self._cause: str | None = None

    def cause(self) -> str:
        if self._cause is None:
            self._cause = cause_is_ours(self.now)
        return self._cause

    def hold(self, kind: str, evidence_at: dt.datetime | None) -> str:
        """The hold reason for an alert of ``kind`` resting on a reading from ``evidence_at``."""
        if kind == AlertKind.NO_PRICE_NIGHTS:
            return self.cause()
        if evidence_at is None or evidence_at >= stale_before(self.now):
            return ""
        return self.cause()


def release(alerts: Iterable[Alert], now: dt.datetime) -> list[int]:
    """Tell held alerts after all (or queue them for the digest in quiet hours); returns the
    ids released."""
    alerts = [alert for alert in alerts if alert.hold]
    if not alerts:
        return []
    ids = [alert.pk for alert in alerts]
    with transaction.atomic():
        # Locked: a check and the periodic review releasing the same alert tell it once.
        held = Alert.objects.filter(pk__in=ids, status__in=ACTIVE_STATUSES).exclude(hold="")
        released = list(held.select_for_update().values_list("pk", flat=True))
        Alert.objects.filter(pk__in=released).update(hold="", released_at=now)
        later = [a.pk for a in alerts if a.pk in released and a.rule.in_quiet_hours(now)]
        Alert.objects.filter(pk__in=later).update(in_digest=True)
    for alert in alerts:
        alert.hold, alert.released_at = "", now
    tell = [pk for pk in released if pk not in later]
    if tell:
        from alerts import notifications

        transaction.on_commit(lambda: notifications.announce_alerts(tell))
    return released


def review(now: dt.datetime | None = None) -> tuple[list[int], list[int]]:
    """Look at the held alerts again (on a schedule): still held while the cause is ours;
    once it clears, silence that a valid price has since broken is dropped, the rest released.
    Returns ``(released ids, dropped ids)``."""
    now = now or timezone.now()
    held = Alert.objects.filter(status__in=ACTIVE_STATUSES).exclude(hold="")
    if not held.exists():
        return [], []
    cause = cause_is_ours(now)
    with transaction.atomic():
        if cause:
            held.exclude(hold=cause).update(hold=cause)  # say the reason that applies now
            # A cause that outlasts the limit (a marketplace no agent works, a task stuck
            # pending) must not silence alerts for good: past it they are told anyway.
            limit = now - dt.timedelta(seconds=settings.WATCHER_ALERT_HOLD_MAX)
            return release(held.filter(held_since__lt=limit).select_related("rule"), now), []
        priced = PriceHistory.objects.filter(
            subscription_id=OuterRef("subscription_id"),
            current_price__gt=0,
            parsed_at__gt=OuterRef("held_since"),
        )
        broken = (
            held.filter(kind=AlertKind.NO_PRICE_NIGHTS)
            .alias(
                ours=Exists(priced.filter(competitor__isnull=True)),
                theirs=Exists(priced.filter(competitor_id=OuterRef("competitor_id"))),
            )
            .filter(
                Q(competitor__isnull=True, ours=True) | Q(competitor__isnull=False, theirs=True)
            )
        )
        dropped = list(broken.values_list("pk", flat=True))
        Alert.objects.filter(pk__in=dropped).update(
            status=AlertStatus.RESOLVED, resolved_at=now, updated_at=now
        )
        released = release(held.exclude(pk__in=dropped).select_related("rule"), now)
    return released, dropped
