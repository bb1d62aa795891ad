"""The analyst role: view permissions only; reads the admin, the API and the pages."""

from __future__ import annotations

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from config.roles import ANALYST
from tests.analysts.conftest import Catalogue, make_user
from watcher.models import PriceHistory, Subscription


def test_migrate_creates_the_analyst_group_with_view_permissions_only(db: None) -> None:
    group = Group.objects.get(name=ANALYST)
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert codenames == {
        "view_subscription",
        "view_competitor",
        "view_task",
        "view_taskreport",
        "view_pricehistory",
        "view_alert",  # the comparison chart links to them
    }
    group.permissions.clear()
    call_command("migrate", verbosity=0)  # runs post_migrate again: the role is restored
    assert group.permissions.count() == len(codenames)


def test_analyst_reads_the_admin_and_cannot_change_anything(
    catalogue: Catalogue, analyst_client: Client
) -> None:
    lamp = catalogue.lamp
    for model in ("subscription", "competitor", "task", "taskreport", "pricehistory"):
        assert analyst_client.get(reverse(f"admin:watcher_{model}_changelist")).status_code == 200
    assert analyst_client.get(reverse("admin:watcher_agent_changelist")).status_code == 403

    change = reverse("admin:watcher_subscription_change", args=[lamp.pk])
    assert analyst_client.get(change).status_code == 200  # a read-only view of it
    data = {"brand": "Changed", "marketplace": lamp.marketplace, "sku": lamp.sku}
    assert analyst_client.post(change, data).status_code == 403
    assert analyst_client.get(reverse("admin:watcher_subscription_add")).status_code == 403
    delete = reverse("admin:watcher_subscription_delete", args=[lamp.pk])
    assert analyst_client.post(delete, {"post": "yes"}).status_code == 403
    assert analyst_client.get(reverse("admin:watcher_subscription_import")).status_code == 403

    # Bulk actions that change rows are not offered, and posting one anyway changes nothing.
    changelist = reverse("admin:watcher_subscription_changelist")
    page = analyst_client.get(changelist).content.decode()
    assert 'value="deactivate"' not in page
    analyst_client.post(
        changelist, {"action": "deactivate", ACTION_CHECKBOX_NAME: [lamp.pk], "index": 0}
    )
    lamp.refresh_from_db()
    assert (lamp.brand, lamp.is_active) == ("Nordic Home", True)
    assert Subscription.objects.count() == 2


def test_analyst_reads_prices_through_the_api_but_nothing_of_the_operators(
    catalogue: Catalogue, analyst_api: APIClient
) -> None:
    assert analyst_api.get("/api/v1/prices/").status_code == 200
    series = analyst_api.get(f"/api/v1/prices/series?subscription={catalogue.lamp.pk}")
    assert series.status_code == 200
    assert analyst_api.post("/api/v1/prices/", {}, format="json").status_code == 405
    assert analyst_api.delete("/api/v1/prices/").status_code == 405
    assert analyst_api.get("/api/v1/watcher/agents").status_code == 403
    broadcast = analyst_api.post(
        "/api/v1/watcher/agents/command", {"command": "stop", "params": {}}, format="json"
    )
    assert broadcast.status_code == 403
    assert PriceHistory.objects.count() == 15


def test_every_staff_role_reads_prices_and_others_do_not(catalogue: Catalogue) -> None:
    client = APIClient()
    for role in ("admin", "manager", "senior", "director", ANALYST):
        client.force_authenticate(make_user(f"user-{role}", role))
        assert client.get("/api/v1/prices/").status_code == 200, role
    client.force_authenticate(make_user("staff-without-role"))
    response = client.get("/api/v1/prices/")
    assert response.status_code == 403
    assert "detail" in response.json()
    client.force_authenticate(None)
    assert client.get("/api/v1/prices/").status_code in (401, 403)
