"""The alerts API: roles, filters, pagination, acknowledging, rules CRUD, the schema."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from alerts import engine
from alerts.models import Alert, AlertKind, AlertRule, AlertStatus
from tests.alerts.conftest import observe, rule
from tests.factories import CompetitorFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/alerts"


def client_for(role: str | None, name: str) -> tuple[APIClient, User]:
    user = User.objects.create_user(name, password="pw-" + name * 3)
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token", {"username": name, "password": "pw-" + name * 3}, format="json"
    )
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")
    return client, user


@pytest.fixture
def dumping(pair, clock) -> Alert:
    subscription, competitor = pair
    rule()
    observe(clock, subscription, price=1000)
    [alert] = engine.check(observe(clock, subscription, competitor, price=800).pk)
    return alert


@pytest.mark.parametrize("role", ["manager", "senior", "director", "admin"])
def test_staff_roles_list_alerts_with_their_figures(dumping, role) -> None:
    client, _ = client_for(role, role)
    body = client.get(f"{API}/").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1
    [row] = body["results"]
    subscription, competitor = dumping.subscription, dumping.competitor
    assert row["id"] == dumping.pk and row["rule_id"] == dumping.rule_id
    assert row["kind"] == "dumping" and row["status"] == "open"
    assert row["marketplace"] == subscription.marketplace and row["brand"] == subscription.brand
    assert (row["sku"], row["competitor_sku"]) == (subscription.sku, competitor.competitor_sku)
    assert row["competitor_url"] == competitor.url and row["sku_url"] == subscription.url
    assert row["price_level"] == "regular"
    assert Decimal(row["our_price"]) == 1000 and Decimal(row["their_price"]) == 800
    assert Decimal(row["difference_rub"]) == 200 and Decimal(row["difference_pct"]) == 20
    assert row["opened_at"] and row["updated_at"] and row["resolved_at"] is None


def test_others_are_refused(dumping) -> None:
    nobody, _ = client_for(None, "mallory")
    for response in (
        nobody.get(f"{API}/"),
        nobody.post(f"{API}/{dumping.pk}/acknowledge"),
        nobody.get(f"{API}/rules/"),
        nobody.post(f"{API}/rules/", {"kind": "dumping", "name": "x"}, format="json"),
        nobody.delete(f"{API}/rules/{dumping.rule_id}/"),
    ):
        assert response.status_code == 403
    assert APIClient().get(f"{API}/").status_code == 401
    dumping.refresh_from_db()
    assert dumping.status == AlertStatus.OPEN and AlertRule.objects.filter(pk=dumping.rule_id)


def test_filters_by_status_and_kind_and_pages(pair, clock) -> None:
    subscription, _ = pair
    rule()
    for _ in range(3):
        competitor = CompetitorFactory(subscription=subscription)
        observe(clock, subscription, price=1000)
        engine.check(observe(clock, subscription, competitor, price=800).pk)
    resolved = Alert.objects.first()
    engine.resolve(resolved)
    client, _ = client_for("manager", "bob")
    assert client.get(f"{API}/?status=open").json()["count"] == 2
    [row] = client.get(f"{API}/?status=resolved").json()["results"]
    assert row["id"] == resolved.pk and row["resolved_at"]
    assert client.get(f"{API}/?kind=dumping").json()["count"] == 3
    assert client.get(f"{API}/?kind=price_drop").json()["count"] == 0
    assert client.get(f"{API}/?status=bogus").status_code == 400
    page = client.get(f"{API}/?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert page["previous"] is None
    assert len(client.get(page["next"]).json()["results"]) == 1


def test_acknowledge_marks_it_seen_once(dumping) -> None:
    client, user = client_for("senior", "sam")
    response = client.post(f"{API}/{dumping.pk}/acknowledge")
    assert response.status_code == 200 and response.json()["status"] == "acknowledged"
    dumping.refresh_from_db()
    assert dumping.status == AlertStatus.ACKNOWLEDGED and dumping.acknowledged_by == user
    first = dumping.acknowledged_at
    assert client.post(f"{API}/{dumping.pk}/acknowledge").status_code == 200
    dumping.refresh_from_db()
    assert dumping.acknowledged_at == first
    engine.resolve(dumping)
    assert client.post(f"{API}/{dumping.pk}/acknowledge").status_code == 409
    assert client.post(f"{API}/999999/acknowledge").status_code == 404


def test_rules_crud(no_default_rules) -> None:
    client, _ = client_for("director", "dora")
    created = client.post(
        f"{API}/rules/",
        {
            "kind": "dumping",
            "name": "WB dumping 7 %",
            "threshold_pct": "7",
            "price_level": "wallet",
            "consecutive": 2,
            "marketplace": "wildberries",
            "brand": "Nordic Home",
            "subscription": None,
            "is_active": True,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    rule_id = created.json()["id"]
    stored = AlertRule.objects.get(pk=rule_id)
    assert (stored.threshold_pct, stored.price_level, stored.consecutive) == (7, "wallet", 2)
    assert stored.marketplace == "wildberries" and stored.brand == "Nordic Home"
    listing = client.get(f"{API}/rules/").json()
    assert [r["id"] for r in listing["results"]] == [rule_id]
    patched = client.patch(
        f"{API}/rules/{rule_id}/", {"threshold_rub": "150", "is_active": False}, format="json"
    )
    assert patched.status_code == 200
    stored.refresh_from_db()
    assert stored.threshold_rub == 150 and not stored.is_active and stored.threshold_pct == 7
    bad = client.post(f"{API}/rules/", {"kind": "rating_below", "name": "r"}, format="json")
    assert bad.status_code == 400 and "rating_threshold" in bad.json()
    assert (
        client.post(f"{API}/rules/", {"kind": "nope", "name": "r"}, format="json").status_code
        == 400
    )
    assert client.delete(f"{API}/rules/{rule_id}/").status_code == 204
    assert not AlertRule.objects.filter(pk=rule_id).exists()
    assert client.put(f"{API}/rules/{rule_id}/", {}, format="json").status_code == 405


def test_the_schema_documents_the_alerts_api(admin_client) -> None:
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert {"get"} <= set(paths["/api/v1/alerts/"])
    params = {p["name"] for p in paths["/api/v1/alerts/"]["get"]["parameters"]}
    assert {"status", "kind", "page"} <= params
    assert "post" in paths["/api/v1/alerts/{id}/acknowledge"]
    assert {"get", "post"} <= set(paths["/api/v1/alerts/rules/"])
    assert {"patch", "delete"} <= set(paths["/api/v1/alerts/rules/{id}/"])
    assert AlertKind.DUMPING in str(schema["components"]["schemas"])
