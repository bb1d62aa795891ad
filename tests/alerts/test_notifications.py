"""Notifications through real HTTP servers on loopback (a webhook receiver that verifies the
signature, a Telegram-compatible bot API) and Django's locmem mail: alerts, failures and
retries, agent events, muting, quiet hours and the morning digest, the admin's test message."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.utils import timezone

from alerts import engine, notifications
from alerts.models import Alert, Delivery, DeliveryStatus, NotificationChannel
from alerts.services import notify
from alerts.tasks import send_delivery
from tests.alerts.conftest import observe, rule
from tests.alerts.servers import Receiver, serve, verify_signature
from tests.factories import CompetitorFactory

pytestmark = pytest.mark.django_db
SECRET = "whsec-for-tests-only"
TOKEN = "123456:TEST-bot-token"


@pytest.fixture
def sent(
    celery_eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[[], Any]:
    """``with sent():`` runs the block's after-commit work, the Celery tasks included, inline."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    with serve(Receiver(secret=SECRET)) as receiver:
        yield receiver


@pytest.fixture
def telegram(settings) -> Iterator[Receiver]:
    with serve(Receiver(token=TOKEN)) as receiver:
        settings.WATCHER_TELEGRAM_API_URL = receiver.url
        yield receiver


@pytest.fixture
def email_backend(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def channels(webhook: Receiver, telegram: Receiver) -> list[NotificationChannel]:
    return [
        NotificationChannel.objects.create(name="mail", kind="email"),
        NotificationChannel.objects.create(
            name="chat", kind="telegram", target="-100500", secret=TOKEN
        ),
        NotificationChannel.objects.create(
            name="hook", kind="webhook", target=webhook.url + "/hook", secret=SECRET
        ),
    ]


def dumping_alert(clock, sent, **rule_fields: Any) -> list[Alert]:
    competitor = CompetitorFactory()
    subscription = competitor.subscription
    observe(clock, subscription, price=1000)
    with sent():
        return engine.check(observe(clock, subscription, competitor, price=800).pk)


def test_an_opened_alert_goes_to_every_channel_with_its_figures(
    pair, clock, sent, webhook, telegram, email_backend
) -> None:
    manager = User.objects.create_user("bob", email="bob@example.com")
    group = Group.objects.create(name="pricing")
    User.objects.create_user("eve", email="eve@example.com").groups.add(group)
    User.objects.create_user("nomail")  # no address, nothing to send
    dumping = rule()
    dumping.channels.set(channels(webhook, telegram))
    dumping.recipient_users.add(manager)
    dumping.recipient_groups.add(group)
    [alert] = dumping_alert(clock, sent)

    # e-mail: one per recipient, in Russian, with the figures and both product pages
    assert sorted(m.to[0] for m in mail.outbox) == ["bob@example.com", "eve@example.com"]
    message = mail.outbox[0]
    assert "Демпинг" in message.subject
    assert "1000.00" in message.body and "800.00" in message.body
    assert "200.00 ₽ (20.00 %)" in message.body
    assert alert.subscription.url in message.body and alert.competitor.url in message.body
    assert f"/admin/alerts/alert/{alert.pk}/change/" in message.body
    # Telegram: to the chat, through the bot API
    [chat] = telegram.received
    assert chat.json()["chat_id"] == "-100500" and "800.00" in chat.json()["text"]
    # webhook: the JSON signed with the channel's key
    [hook] = webhook.received
    assert verify_signature(SECRET, hook.headers["X-Watcher-Signature"], hook.body)
    assert not verify_signature("another key", hook.headers["X-Watcher-Signature"], hook.body)
    payload = hook.json()
    assert payload["event"] == "alert_opened"
    assert payload["alert"]["id"] == alert.pk and payload["alert"]["their_price"] == "800.00"
    assert payload["alert"]["difference_pct"] == "20.00"
    # every delivery recorded with its outcome
    deliveries = Delivery.objects.filter(alert=alert)
    assert deliveries.count() == 4
    assert {d.status for d in deliveries} == {DeliveryStatus.SENT}
    assert all(d.attempts == 1 and d.sent_at for d in deliveries)
    # the same alert staying open tells nobody again
    with sent():
        engine.check(observe(clock, alert.subscription, alert.competitor, price=790).pk)
    assert Delivery.objects.count() == 4 and len(webhook.received) == 1


def test_a_failing_webhook_is_retried_until_it_answers(pair, clock, sent) -> None:
    with serve(Receiver(statuses=[500, 503, 200], secret=SECRET)) as flaky:
        dumping = rule()
        dumping.channels.add(
            NotificationChannel.objects.create(
                name="hook", kind="webhook", target=flaky.url, secret=SECRET
            )
        )
        dumping_alert(clock, sent)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 3
    assert len(flaky.received) == 3 and delivery.last_error == ""


def test_a_delivery_that_keeps_failing_ends_failed_and_never_shows_a_secret(
    pair, clock, sent, telegram, caplog
) -> None:
    dumping = rule()
    dumping.channels.add(
        NotificationChannel.objects.create(
            name="chat", kind="telegram", target="42", secret="999:WRONG-token"
        )
    )
    with caplog.at_level(logging.DEBUG):
        dumping_alert(clock, sent)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == notifications.MAX_ATTEMPTS
    assert len(telegram.received) == notifications.MAX_ATTEMPTS
    assert "401" in delivery.last_error
    assert "WRONG-token" not in delivery.last_error + caplog.text
    assert "WRONG-token" not in str(delivery.payload) + delivery.body
    # a refused connection is an outcome too
    closed = NotificationChannel.objects.create(
        name="gone", kind="webhook", target="http://127.0.0.1:9/", secret=SECRET
    )
    with sent():
        notifications.send_test(closed, [])
    gone = Delivery.objects.get(channel=closed)
    assert gone.status == DeliveryStatus.FAILED and "Connect" in gone.last_error
    assert SECRET not in gone.last_error + caplog.text


def test_the_task_declares_retries_with_backoff() -> None:
    assert send_delivery.max_retries == notifications.MAX_ATTEMPTS - 1
    assert send_delivery.retry_backoff and send_delivery.retry_jitter
    assert send_delivery.autoretry_for == (notifications.DeliveryError,)


def test_agent_panic_and_offline_go_through_the_same_service(
    db, sent, webhook, email_backend
) -> None:
    User.objects.create_superuser("root", email="root@example.com", password="x" * 12)
    User.objects.create_user("ann", email="ann@example.com").groups.add(
        Group.objects.get_or_create(name="admin")[0]
    )
    User.objects.create_user("bob", email="bob@example.com")  # not an admin
    NotificationChannel.objects.create(name="mail", kind="email", agent_events=True)
    NotificationChannel.objects.create(
        name="hook", kind="webhook", target=webhook.url, secret=SECRET, agent_events=True
    )
    NotificationChannel.objects.create(name="alerts only", kind="email", target="x@example.com")
    with sent():
        notify("watcher_agent_panic", {"agent_id": "a1", "name": "agent-7", "reason": "captcha"})
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.com", "root@example.com"]
    assert "agent-7" in mail.outbox[0].subject and "captcha" in mail.outbox[0].body
    [hook] = webhook.received
    assert hook.json() == {
        "event": "watcher_agent_panic",
        "agent_id": "a1",
        "name": "agent-7",
        "reason": "captcha",
    }
    assert hook.headers["X-Watcher-Event"] == "watcher_agent_panic"


def test_a_muted_pair_tells_nobody(pair, clock, sent, webhook) -> None:
    subscription, competitor = pair
    dumping = rule(cooldown_hours=0)
    dumping.channels.add(
        NotificationChannel.objects.create(
            name="hook", kind="webhook", target=webhook.url, secret=SECRET
        )
    )
    observe(clock, subscription, price=1000)
    with sent():
        [alert] = engine.check(observe(clock, subscription, competitor, price=800).pk)
    engine.mute(Alert.objects.filter(pk=alert.pk), days=1)
    with sent():
        engine.check(observe(clock, subscription, competitor, price=1000).pk)
        [again] = engine.check(observe(clock, subscription, competitor, price=700).pk)
    assert again.is_muted() and len(webhook.received) == 1


def test_quiet_hours_collect_the_night_into_one_digest_per_recipient(
    no_default_rules, clock, sent, webhook, email_backend
) -> None:
    now = timezone.localtime()
    quiet = {
        "quiet_from": (now - dt.timedelta(hours=1)).time(),
        "quiet_to": (now + dt.timedelta(hours=1)).time(),
    }
    reader = User.objects.create_user("bob", email="bob@example.com")
    mail_channel = NotificationChannel.objects.create(name="mail", kind="email")
    hook = NotificationChannel.objects.create(
        name="hook", kind="webhook", target=webhook.url, secret=SECRET
    )
    dumping = rule(**quiet)
    dumping.channels.set([mail_channel, hook])
    dumping.recipient_users.add(reader)
    gaps = {}
    for their in (900, 600, 800):
        competitor = CompetitorFactory()
        observe(clock, competitor.subscription, price=1000)
        with sent():
            [alert] = engine.check(
                observe(clock, competitor.subscription, competitor, price=their).pk
            )
        gaps[competitor.competitor_sku] = 1000 - their
        assert alert.in_digest
    assert mail.outbox == [] and webhook.received == []
    # still quiet: nothing yet
    with sent():
        assert notifications.send_digests(now) == 0
    # the morning: one e-mail and one webhook call with the night's cases, biggest gap first
    with sent():
        assert notifications.send_digests(now + dt.timedelta(hours=2)) == 2
    [message] = mail.outbox
    assert message.to == ["bob@example.com"]
    rows = [line for line in message.body.splitlines() if "|" in line][1:]
    order = sorted(gaps, key=gaps.get, reverse=True)
    assert [next(sku for sku in gaps if sku in row) for row in rows] == order
    [digest] = webhook.received
    assert [a["competitor_sku"] for a in digest.json()["alerts"]] == order
    assert not Alert.objects.filter(in_digest=True).exists()
    with sent():
        assert notifications.send_digests(now + dt.timedelta(hours=3)) == 0


def test_the_admin_sends_a_test_message_per_channel(
    admin_client, sent, webhook, telegram, email_backend, admin_user
) -> None:
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.urls import reverse

    admin_user.email = "admin@example.com"
    admin_user.save()
    ids = [str(c.pk) for c in channels(webhook, telegram)]
    with sent():
        response = admin_client.post(
            reverse("admin:alerts_notificationchannel_changelist"),
            {"action": "send_test", ACTION_CHECKBOX_NAME: ids},
        )
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["admin@example.com"]]
    assert len(telegram.received) == 1 and len(webhook.received) == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    listing = admin_client.get(reverse("admin:alerts_delivery_changelist")).content.decode()
    assert "test" in listing and TOKEN not in listing and SECRET not in listing


def test_a_digest_to_an_e_mail_channel_with_addresses_writes_to_each_once(
    no_default_rules, clock, sent, email_backend
) -> None:
    now = timezone.localtime()
    dumping = rule(
        quiet_from=(now - dt.timedelta(hours=1)).time(),
        quiet_to=(now + dt.timedelta(hours=1)).time(),
    )
    dumping.channels.add(
        NotificationChannel.objects.create(
            name="desk", kind="email", target="a@example.com, b@example.com"
        )
    )
    for _ in range(2):
        competitor = CompetitorFactory()
        observe(clock, competitor.subscription, price=1000)
        with sent():
            engine.check(observe(clock, competitor.subscription, competitor, price=700).pk)
    with sent():
        assert notifications.send_digests(now + dt.timedelta(hours=2)) == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.com", "b@example.com"]
    assert all(m.body.count("700.00") == 2 for m in mail.outbox)


def test_an_agents_panic_through_the_api_and_going_offline_reach_the_channels(
    make_agent, sent, webhook, settings
) -> None:
    from watcher.services.agents import mark_offline_agents

    NotificationChannel.objects.create(
        name="hook", kind="webhook", target=webhook.url, secret=SECRET, agent_events=True
    )
    handle = make_agent("agent-9")
    with sent():
        response = handle.client.post(
            "/api/v1/watcher/agents/panic",
            {"reason": "captcha", "details": {"ip": "10.0.0.5"}},
            format="json",
        )
    assert response.status_code == 200
    [panic] = webhook.received
    assert panic.json()["event"] == "watcher_agent_panic"
    assert panic.json()["name"] == "agent-9" and panic.json()["reason"] == "captcha"
    type(handle.agent).objects.filter(pk=handle.agent.pk).update(
        last_heartbeat=timezone.now() - dt.timedelta(hours=1)
    )
    with sent():
        assert mark_offline_agents() == [handle.id]
    assert [r.json()["event"] for r in webhook.received] == [
        "watcher_agent_panic",
        "watcher_agent_offline",
    ]
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
