"""Whole nights through the agent API with a competitor 20 % below our price: one dumping
alert, kept (not doubled) the next night, resolved when the competitor is back at our price."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import Alert, AlertKind, AlertRule, AlertStatus
from tests.factories import CompetitorFactory, SubscriptionFactory
from tests.watcher.pages import WB_PAGE
from watcher.services.generator import generate_tasks

pytestmark = pytest.mark.django_db(transaction=True)
WATCHER = "/api/v1/watcher"

# Our card: 1 299 ₽ (1 180 ₽ with the wallet). The competitor's: 1 039 ₽, 20 % below.
CHEAP_PAGE = WB_PAGE.replace("1 299 ₽", "1 039 ₽").replace("1 180 ₽", "990 ₽")


def card(page: str, sku: str) -> str:
    return page.replace("Артикул: 176308673", f"Артикул: {sku}")


def run_night(agent, day: dt.date, pages: dict[str, str]) -> int:
    generate_tasks(day)
    reports = 0
    while (response := agent.client.get(f"{WATCHER}/tasks/next")).status_code == 200:
        task = response.json()
        body = {"raw_text": pages[task["sku"]], "timing_ms": 1500, "success": True}
        answer = agent.client.post(f"{WATCHER}/tasks/{task['id']}/report", body, format="json")
        assert answer.status_code == 200, answer.content
        assert answer.json()["status"] == "completed"
        reports += 1
    assert response.status_code == 204
    return reports


def test_a_competitor_20_percent_below_opens_one_alert_until_it_is_back(
    make_agent, celery_eager
) -> None:
    # The default rule (test_engine checks that migrate creates it; a transactional test's flush
    # before this one may have removed the migration's rows).
    AlertRule.objects.get_or_create(
        kind=AlertKind.DUMPING, threshold_pct=5, defaults={"name": "Демпинг 5 %"}
    )
    subscription = SubscriptionFactory(sku="176308673")
    CompetitorFactory(subscription=subscription, competitor_sku="555000111")
    SubscriptionFactory(sku="176300000")  # another SKU of ours, alone: nothing to compare
    agent = make_agent("night-agent")
    agent.client.post(f"{WATCHER}/agents/heartbeat", {"status": "ready", "ip": "10.0.0.9"})
    staff = APIClient()
    staff.force_authenticate(User.objects.create_superuser("boss", password="pw" * 8))
    pages = {
        "176308673": WB_PAGE,
        "555000111": card(CHEAP_PAGE, "555000111"),
        "176300000": card(WB_PAGE, "176300000"),
    }
    today = timezone.localdate()

    assert run_night(agent, today, pages) == 3
    body = staff.get("/api/v1/alerts/?status=open").json()
    assert body["count"] == 1
    [row] = body["results"]
    assert row["kind"] == "dumping" and row["sku"] == "176308673"
    assert row["competitor_sku"] == "555000111" and row["price_level"] == "regular"
    assert (row["our_price"], row["their_price"]) == ("1299.00", "1039.00")
    assert (row["difference_rub"], row["difference_pct"]) == ("260.00", "20.02")
    first_id = row["id"]

    # the same prices the next night: the alert stays open, no second one
    assert run_night(agent, today + dt.timedelta(days=1), pages) == 3
    body = staff.get("/api/v1/alerts/").json()
    assert body["count"] == 1 and body["results"][0]["id"] == first_id
    assert body["results"][0]["status"] == "open"

    # the competitor back at our price: resolved
    pages["555000111"] = card(WB_PAGE, "555000111")
    assert run_night(agent, today + dt.timedelta(days=2), pages) == 3
    assert staff.get("/api/v1/alerts/?status=open").json()["count"] == 0
    [resolved] = staff.get("/api/v1/alerts/?status=resolved").json()["results"]
    assert resolved["id"] == first_id and resolved["resolved_at"]
    assert Alert.objects.get().status == AlertStatus.RESOLVED
