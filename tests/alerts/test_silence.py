"""The silence rules on their schedule: no valid price for N nights, a night unfinished by its
deadline; held (and saying so) while the cause may be ours."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertKind, AlertStatus, HoldReason
from alerts.silence import check_silence
from tests.alerts.conftest import observe, rule
from tests.factories import AgentFactory, CompetitorFactory, SubscriptionFactory, TaskFactory
from watcher.models import AgentStatus, Competitor, Subscription, TaskStatus

pytestmark = pytest.mark.django_db


def aged(days: int, *objects: Subscription | Competitor) -> None:
    for obj in objects:
        type(obj).objects.filter(pk=obj.pk).update(
            created_at=timezone.now() - dt.timedelta(days=days)
        )


@pytest.fixture
def online(db: None) -> None:
    AgentFactory(status=AgentStatus.IDLE, last_heartbeat=timezone.now())


def test_a_sku_without_a_valid_price_for_n_nights(no_default_rules, online, clock) -> None:
    silence = rule(AlertKind.NO_PRICE_NIGHTS, nights=2)
    fine, quiet = SubscriptionFactory(), SubscriptionFactory()
    rival = CompetitorFactory(subscription=fine)
    new = CompetitorFactory(subscription=fine)  # added today: not silent yet
    aged(5, fine, quiet, rival)
    observe(clock, fine, price=1000)
    observe(clock, fine, rival, price=None, parsed_at=timezone.now() - dt.timedelta(hours=1))
    observe(clock, fine, rival, price=900, parsed_at=timezone.now() - dt.timedelta(days=3))
    opened = check_silence()
    assert {(a.subscription, a.competitor) for a in opened} == {(quiet, None), (fine, rival)}
    assert all(a.rule == silence and a.kind == AlertKind.NO_PRICE_NIGHTS for a in opened)
    by_competitor = {a.competitor: a for a in opened}
    assert by_competitor[None].details == "нет цены ни разу"
    assert "нет цены с" in by_competitor[rival].details
    assert not any(a.is_muted() or a.hold for a in opened) and new.pk
    # run again: the same alerts, no second ones
    assert check_silence() == []
    # a valid price arrives: that alert resolves itself
    observe(clock, quiet, price=500, parsed_at=timezone.now())
    assert check_silence() == []
    assert Alert.objects.get(subscription=quiet).status == AlertStatus.RESOLVED
    assert Alert.objects.get(competitor=rival).status == AlertStatus.OPEN


def test_silence_is_held_and_says_so_while_the_cause_may_be_ours(no_default_rules) -> None:
    rule(AlertKind.NO_PRICE_NIGHTS, nights=2)
    AgentFactory(status=AgentStatus.OFFLINE)
    quiet = SubscriptionFactory()
    aged(5, quiet)
    [alert] = check_silence()
    assert (
        alert.hold == HoldReason.AGENTS_OFFLINE and alert.get_hold_display() == "агенты не в сети"
    )
    assert alert.status == AlertStatus.OPEN


def test_a_night_unfinished_by_the_deadline(no_default_rules, online) -> None:
    unfinished = rule(AlertKind.BATCH_UNFINISHED, deadline=dt.time(7, 0))
    local = timezone.localtime().replace(hour=8, minute=0)
    night = local.date() - dt.timedelta(days=1)
    done = TaskFactory(scheduled_date=night, status=TaskStatus.COMPLETED)
    left = TaskFactory(scheduled_date=night, status=TaskStatus.PENDING)
    # before the deadline: nothing to say about that night yet
    assert check_silence(local.replace(hour=6)) == []
    [alert] = check_silence(local)
    assert alert.rule == unfinished and alert.pair_key == f"night:{night.isoformat()}"
    assert "1 из 2" in alert.details and "07:00" in alert.details
    assert check_silence(local) == []
    type(left).objects.filter(pk=left.pk).update(status=TaskStatus.EXPIRED)
    assert check_silence(local) == []
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and done.pk


def test_migrate_creates_the_alerts_periodic_tasks(db: None) -> None:
    from django_celery_beat.models import PeriodicTask

    tasks = {t.task: t for t in PeriodicTask.objects.select_related("interval")}
    assert tasks["alerts.check_silence"].interval.every == 60
    assert tasks["alerts.send_digests"].interval.every == 15
    assert tasks["alerts.review_holds"].interval.every == 10
    assert tasks["alerts.check_pending"].interval.every == 5
    names = ("alerts.check_silence", "alerts.send_digests", "alerts.review_holds")
    assert all(tasks[name].expire_seconds for name in names)
