"""Alerts held while the cause may be ours: a dumping gap against a price from an earlier night,
or silence, while no agent works or the night is unfinished. Held alerts are visible with the
reason (admin, API) and told to nobody; once the cause clears they are told or dropped."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import engine, holds, notifications
from alerts.models import Alert, AlertKind, AlertStatus, Delivery, HoldReason, NotificationChannel
from alerts.silence import check_silence
from tests.alerts.conftest import observe, rule
from tests.factories import AgentFactory, SubscriptionFactory, TaskFactory
from tests.threads import held_in_another_thread
from watcher.models import AgentStatus, Task, TaskStatus

pytestmark = pytest.mark.django_db
YESTERDAY = dt.timedelta(hours=26)


@pytest.fixture
def told(
    settings, celery_eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[[], Any]:
    """``with told():`` runs the block's after-commit work (the messages) inline; e-mail goes to
    locmem, to the rule's recipient."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return lambda: django_capture_on_commit_callbacks(execute=True)


def dumping_rule() -> Any:
    dumping = rule()
    dumping.channels.add(NotificationChannel.objects.create(name="mail", kind="email"))
    dumping.recipient_users.add(User.objects.create_user("seller", email="seller@example.com"))
    return dumping


def online() -> Any:
    return AgentFactory(status=AgentStatus.IDLE, last_heartbeat=timezone.now())


def stale_gap(pair, clock) -> Any:
    """Our price from an earlier night, the competitor's from tonight, 20 % below it."""
    subscription, competitor = pair
    observe(clock, subscription, price=1000, parsed_at=timezone.now() - YESTERDAY)
    return observe(clock, subscription, competitor, price=800)


def assert_told_once_by_review(alert: Alert, told: Callable[[], Any]) -> None:
    """The review releases the held alert and tells it; a second review tells nothing more."""
    with told():
        assert holds.review() == ([alert.pk], [])
    alert.refresh_from_db()
    assert alert.hold == "" and alert.released_at is not None
    assert len(mail.outbox) == 1
    with told():
        assert holds.review() == ([], [])
    assert len(mail.outbox) == 1


def test_agents_offline_hold_a_gap_against_an_old_price_visibly(
    pair, clock, told, admin_client
) -> None:
    dumping_rule()
    AgentFactory(status=AgentStatus.OFFLINE)
    with told():
        [alert] = engine.check(stale_gap(pair, clock).pk)
    # opened with its figures and the reason, but nobody is told
    assert alert.status == AlertStatus.OPEN and alert.their_price == 800
    assert alert.hold == HoldReason.AGENTS_OFFLINE and alert.held_since is not None
    assert mail.outbox == [] and not Delivery.objects.exists()
    # the API says so, and can list only the held ones
    api = APIClient()
    api.force_authenticate(User.objects.create_superuser("boss", password="pw" * 8))
    [row] = api.get("/api/v1/alerts/", {"held": "true"}).json()["results"]
    assert row["id"] == alert.pk and row["hold"] == "agents_offline"
    assert row["held_since"] and row["released_at"] is None
    assert api.get("/api/v1/alerts/", {"held": "false"}).json()["count"] == 0
    assert api.get("/api/v1/alerts/", {"held": "maybe"}).status_code == 400
    # the admin list and the alert's page show the reason, in Russian
    page = admin_client.get(reverse("admin:alerts_alert_changelist")).content.decode()
    assert "агенты не в сети" in page
    page = admin_client.get(reverse("admin:alerts_alert_change", args=[alert.pk]))
    assert "агенты не в сети" in page.content.decode()


def test_the_night_unfinished_holds_it_and_tonights_price_releases_it(pair, clock, told) -> None:
    subscription, _competitor = pair
    dumping_rule()
    online()
    TaskFactory(subscription=subscription, status=TaskStatus.PENDING)  # our SKU, not read yet
    with told():
        [alert] = engine.check(stale_gap(pair, clock).pk)
    assert alert.hold == HoldReason.NIGHT_UNFINISHED and mail.outbox == []
    # our SKU is read tonight at the same price: the gap is real after all, and told
    tonight = observe(clock, subscription, price=1000)
    with told():
        assert engine.check(tonight.pk) == []
    alert.refresh_from_db()
    assert alert.hold == "" and alert.released_at is not None
    assert alert.status == AlertStatus.OPEN and alert.our_observation_id == tonight.pk
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["seller@example.com"]
    assert "800" in mail.outbox[0].body


def test_tonights_price_without_the_gap_drops_it_untold(pair, clock, told) -> None:
    subscription, _competitor = pair
    dumping_rule()
    AgentFactory(status=AgentStatus.OFFLINE)
    with told():
        [alert] = engine.check(stale_gap(pair, clock).pk)
    # we had lowered our price meanwhile: the gap was never there
    with told():
        engine.check(observe(clock, subscription, price=800).pk)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.hold == HoldReason.AGENTS_OFFLINE
    assert mail.outbox == [] and not Delivery.objects.exists()


def test_fresh_evidence_is_never_held(pair, clock, told) -> None:
    subscription, competitor = pair
    dumping_rule()
    AgentFactory(status=AgentStatus.OFFLINE)
    observe(clock, subscription, price=1000)
    with told():
        [alert] = engine.check(observe(clock, subscription, competitor, price=800).pk)
    assert alert.hold == "" and len(mail.outbox) == 1


def test_the_cause_clearing_releases_held_alerts(pair, clock, told) -> None:
    subscription, _competitor = pair
    dumping_rule()
    agent = AgentFactory(status=AgentStatus.OFFLINE)
    with told():
        [alert] = engine.check(stale_gap(pair, clock).pk)
    # the agent is back but tonight's tasks are not done: still held, with the reason now
    type(agent).objects.filter(pk=agent.pk).update(status=AgentStatus.IDLE)
    night = TaskFactory(subscription=subscription, status=TaskStatus.IN_PROGRESS)
    with told():
        assert holds.review() == ([], [])
    alert.refresh_from_db()
    assert alert.hold == HoldReason.NIGHT_UNFINISHED and mail.outbox == []
    # the night is done (our SKU's read failed, say): the cause is ours no more, told
    Task.objects.filter(pk=night.pk).update(status=TaskStatus.FAILED)
    assert_told_once_by_review(alert, told)


def test_a_release_in_quiet_hours_waits_for_the_digest(pair, clock, told) -> None:
    dumping = dumping_rule()
    agent = AgentFactory(status=AgentStatus.OFFLINE)
    with told():
        [alert] = engine.check(stale_gap(pair, clock).pk)
    local = timezone.localtime()
    dumping.quiet_from = (local - dt.timedelta(hours=1)).time()
    dumping.quiet_to = (local + dt.timedelta(hours=1)).time()
    dumping.save()
    type(agent).objects.filter(pk=agent.pk).update(status=AgentStatus.IDLE)
    with told():
        assert holds.review() == ([alert.pk], [])
    alert.refresh_from_db()
    assert alert.in_digest and mail.outbox == []
    dumping.quiet_from = dumping.quiet_to = None
    dumping.save()
    with told():
        assert notifications.send_digests() == 1
    assert len(mail.outbox) == 1


def test_silence_is_held_while_agents_are_offline_and_dropped_if_a_price_came(
    no_default_rules, clock, told
) -> None:
    rule(AlertKind.NO_PRICE_NIGHTS, nights=2)
    agent = AgentFactory(status=AgentStatus.OFFLINE)
    quiet, priced = SubscriptionFactory(), SubscriptionFactory()
    for subscription in (quiet, priced):
        type(subscription).objects.filter(pk=subscription.pk).update(
            created_at=timezone.now() - dt.timedelta(days=5)
        )
    with told():
        opened = check_silence()
    assert {a.hold for a in opened} == {HoldReason.AGENTS_OFFLINE}
    assert len(opened) == 2 and not Delivery.objects.exists()
    # the agents come back and read one of them
    type(agent).objects.filter(pk=agent.pk).update(status=AgentStatus.IDLE)
    observe(clock, priced, price=500, parsed_at=timezone.now())
    with told():
        released, dropped = holds.review()
    by_sku = {a.subscription: a for a in Alert.objects.all()}
    assert released == [by_sku[quiet].pk] and dropped == [by_sku[priced].pk]
    assert by_sku[priced].status == AlertStatus.RESOLVED
    assert by_sku[quiet].status == AlertStatus.OPEN and by_sku[quiet].hold == ""


def test_a_cause_that_lasts_past_the_limit_no_longer_silences_the_alert(
    pair, clock, told, settings
) -> None:
    """Agents never come back (or a marketplace nobody works keeps the night unfinished): a
    held alert is told once it has been held for WATCHER_ALERT_HOLD_MAX, and only once."""
    dumping_rule()
    AgentFactory(status=AgentStatus.OFFLINE)
    with told():
        [alert] = engine.check(stale_gap(pair, clock).pk)
    with told():
        assert holds.review() == ([], [])  # just held: still held
    assert mail.outbox == []
    settings.WATCHER_ALERT_HOLD_MAX = 3600
    Alert.objects.filter(pk=alert.pk).update(held_since=timezone.now() - dt.timedelta(hours=2))
    assert_told_once_by_review(alert, told)


@pytest.mark.django_db(transaction=True)
def test_an_alert_released_twice_at_once_is_told_once(pair, clock, settings, celery_eager) -> None:
    """A check and the periodic review release the same held alert at the same time, in two
    transactions: the second waits for the first and finds nothing left to tell."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    dumping_rule()
    AgentFactory(status=AgentStatus.OFFLINE)
    [alert] = engine.check(stale_gap(pair, clock).pk)
    assert alert.hold and mail.outbox == []
    # what both read before either released it
    first, second = (Alert.objects.select_related("rule").get(pk=alert.pk) for _ in range(2))

    @contextlib.contextmanager
    def first_release() -> Iterator[None]:
        with transaction.atomic():
            assert holds.release([first], timezone.now()) == [alert.pk]
            yield  # not committed yet

    answers: list[list[int]] = []

    def second_release() -> None:
        try:
            answers.append(holds.release([second], timezone.now()))
        finally:
            connection.close()

    with held_in_another_thread(first_release):
        other = threading.Thread(target=second_release)
        other.start()
        other.join(0.5)  # it waits for the first's lock (without the lock it is done by now)
    other.join(30)
    assert answers == [[]]
    assert len(mail.outbox) == 1
