"""The alerts admin: lists without N+1, the figures and links, the actions, rules, channels."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alerts import engine
from alerts.models import Alert, AlertRule, AlertStatus, Delivery, NotificationChannel
from tests.alerts.conftest import observe, rule
from tests.factories import CompetitorFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def changelist(model: str) -> str:
    return reverse(f"admin:alerts_{model}_changelist")


def run_action(client: Client, model: str, action: str, pks: list[Any], **extra: Any) -> Any:
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], **extra}
    return client.post(changelist(model), data, follow=True)


def seed_alerts(clock: list, n: int) -> list[Alert]:
    dumping = (
        AlertRule.objects.filter(kind="dumping", is_active=True, subscription=None).first()
        or rule()
    )
    opened = []
    for _ in range(n):
        subscription = SubscriptionFactory()
        competitor = CompetitorFactory(subscription=subscription)
        observe(clock, subscription, price=1000)
        opened += engine.check(observe(clock, subscription, competitor, price=700).pk)
    assert all(a.rule == dumping for a in opened)
    return opened


@pytest.mark.parametrize("model", ["alert", "alertrule", "notificationchannel", "delivery"])
def test_it_lists_without_n_plus_one(admin_client: Client, clock, model: str) -> None:
    def seed(n: int) -> None:
        alerts = seed_alerts(clock, n)
        for i, alert in enumerate(alerts):
            channel = NotificationChannel.objects.create(
                name=f"{model}-{alert.pk}-{i}", kind="webhook", target="http://127.0.0.1:9/"
            )
            rule(name=f"narrow {alert.pk}", subscription=alert.subscription, is_active=False)
            Delivery.objects.create(
                channel=channel, kind="webhook", event="alert_opened", subject="s", body="b",
                alert=alert,
            )  # fmt: skip

    seed(2)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(changelist(model)).status_code == 200
    seed(12)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(changelist(model))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 12
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_the_alert_list_shows_the_figures_and_links_both_product_pages(
    admin_client: Client, clock
) -> None:
    [alert] = seed_alerts(clock, 1)
    page = admin_client.get(changelist("alert"), {"status__exact": "open"}).content.decode()
    assert alert.subscription.url in page and alert.competitor.url in page
    assert "?q=" + alert.competitor.competitor_sku in page  # its price history
    assert "700,00 ₽" in page  # their price
    assert "300,00 ₽ (30,0 %)" in page  # the gap in roubles and percent, in Russian
    for name in ("kind__exact", "marketplace__exact", "brand__exact", "rule__id__exact"):
        assert admin_client.get(changelist("alert"), {name: "x"}).status_code in (200, 302)
    detail = admin_client.get(reverse("admin:alerts_alert_change", args=[alert.pk]))
    assert detail.status_code == 200


def test_actions_acknowledge_resolve_and_mute(admin_client: Client, admin_user, clock) -> None:
    first, second, third = seed_alerts(clock, 3)
    run_action(admin_client, "alert", "acknowledge", [first.pk])
    first.refresh_from_db()
    assert first.status == AlertStatus.ACKNOWLEDGED and first.acknowledged_by == admin_user
    run_action(admin_client, "alert", "resolve", [first.pk, second.pk])
    assert set(Alert.objects.filter(status="resolved").values_list("pk", flat=True)) == {
        first.pk,
        second.pk,
    }
    response = run_action(admin_client, "alert", "mute", [third.pk], days="3")
    assert response.status_code == 200
    third.refresh_from_db()
    muted_for = third.muted_until - timezone.now()
    assert 2.9 < muted_for.total_seconds() / 86400 <= 3
    run_action(admin_client, "alert", "mute", [second.pk], days="")
    second.refresh_from_db()
    assert second.muted_until is None


def test_rules_are_editable_with_level_narrowing_and_recipients(
    admin_client: Client, admin_user
) -> None:
    subscription = SubscriptionFactory()
    channel = NotificationChannel.objects.create(name="ops", kind="email")
    response = admin_client.post(
        reverse("admin:alerts_alertrule_add"),
        {
            "kind": "dumping", "name": "WB 3 %", "is_active": "on", "threshold_pct": "3",
            "nights": "2", "deadline": "07:00", "price_level": "lowest", "consecutive": "2",
            "cooldown_hours": "12", "marketplace": "wildberries", "brand": "",
            "subscription": str(subscription.pk), "recipient_users": [str(admin_user.pk)],
            "channels": [str(channel.pk)],
        },
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    stored = AlertRule.objects.get(name="WB 3 %")
    assert (stored.price_level, stored.consecutive, stored.subscription) == (
        "lowest",
        2,
        subscription,
    )
    assert list(stored.recipient_users.all()) == [admin_user]
    assert list(stored.channels.all()) == [channel]


def test_a_channels_secret_is_never_shown_and_kept_when_left_empty(admin_client: Client) -> None:
    channel = NotificationChannel.objects.create(
        name="hook", kind="webhook", target="http://127.0.0.1:9/", secret="s3cr3t-key"
    )
    url = reverse("admin:alerts_notificationchannel_change", args=[channel.pk])
    assert "s3cr3t-key" not in admin_client.get(url).content.decode()
    assert "s3cr3t-key" not in admin_client.get(changelist("notificationchannel")).content.decode()
    response = admin_client.post(
        url,
        {"name": "hook", "kind": "webhook", "target": "http://127.0.0.1:9/x", "secret": "",
         "is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.secret == "s3cr3t-key" and channel.target.endswith("/x")


def test_an_alert_shows_the_browser_agents_screenshot_of_the_page(admin_client: Client) -> None:
    from tests.factories import AlertFactory, PriceHistoryFactory, TaskReportFactory

    jpeg = b"\xff\xd8\xff\xe0" + b"evidence" * 8
    observation = PriceHistoryFactory()
    TaskReportFactory(task=observation.task, attempt=observation.attempt, screenshot=jpeg)
    alert = AlertFactory(their_observation=observation)
    bare = AlertFactory()  # no observation, no screenshot: the page still opens
    page = admin_client.get(reverse("admin:alerts_alert_change", args=[alert.pk]))
    assert page.status_code == 200
    assert "data:image/jpeg;base64," in page.content.decode()
    page = admin_client.get(reverse("admin:alerts_alert_change", args=[bare.pk]))
    assert page.status_code == 200 and "data:image/" not in page.content.decode()
