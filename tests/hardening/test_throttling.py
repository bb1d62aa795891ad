"""Throttles: the token endpoint, wrong agent keys, the admin login; tokens die with a password."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"
RATES = {"login_ip": "6/min", "login_user": "3/min", "bad_agent_key": "4/min"}


def rates(**changes: str):
    from django.conf import settings

    return override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**RATES, **changes}}
    )


@pytest.fixture(autouse=True)
def throttle_rates():
    # DRF reads its settings once per process: reload them for the test's rates.
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    with rates():
        api_settings.reload()
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        yield
    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def token(client: APIClient, username: str, password: str, ip: str = "10.1.1.1"):
    return client.post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=ip,
    )


def test_the_token_endpoint_is_throttled_per_username(db) -> None:
    User.objects.create_user("ann", password="right-password-1")
    client = APIClient()
    for i in range(3):
        assert token(client, "ann", "wrong", ip=f"10.1.1.{i}").status_code == 401
    answer = token(client, "ANN", "right-password-1", ip="10.1.1.9")
    assert answer.status_code == 429
    assert "detail" in answer.json() and int(answer["Retry-After"]) > 0
    assert token(client, "bob", "wrong", ip="10.1.1.9").status_code == 401  # others go on


def test_the_token_endpoint_is_throttled_per_address(db) -> None:
    client = APIClient()
    for i in range(6):
        assert token(client, f"user{i}", "wrong").status_code == 401
    assert token(client, "user9", "wrong").status_code == 429
    assert token(client, "user9", "wrong", ip="10.2.2.2").status_code == 401


def test_wrong_agent_keys_are_throttled_per_address(agent) -> None:
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer wa_" + "x" * 43)
    for _ in range(4):
        assert wrong.get(f"{API}/tasks/next", REMOTE_ADDR="10.3.3.3").status_code == 401
    refused = wrong.get(f"{API}/tasks/next", REMOTE_ADDR="10.3.3.3")
    assert refused.status_code == 429 and refused.json()["detail"]
    # Even the right key waits on that address; elsewhere it works.
    assert agent.client.get(f"{API}/tasks/next", REMOTE_ADDR="10.3.3.3").status_code == 429
    assert agent.client.get(f"{API}/tasks/next", REMOTE_ADDR="10.3.3.4").status_code == 204


def test_right_keys_are_never_counted(agent) -> None:
    for _ in range(10):
        assert agent.client.get(f"{API}/tasks/next").status_code == 204


@override_settings(AXES_FAILURE_LIMIT=3)
def test_the_admin_login_locks_out_after_repeated_failures(db) -> None:
    User.objects.create_superuser("root", "r@example.com", "right-password-1")
    client = Client()
    for _ in range(2):
        page = client.post("/admin/login/", {"username": "root", "password": "nope"})
        assert page.status_code == 200
    third = client.post("/admin/login/", {"username": "root", "password": "nope"})
    assert third.status_code == 429  # the third failure locks
    locked = client.post("/admin/login/", {"username": "root", "password": "right-password-1"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_changing_the_password_revokes_the_users_refresh_tokens(db) -> None:
    user = User.objects.create_user("carl", password="old-password-1")
    client = APIClient()
    pair = token(client, "carl", "old-password-1").json()
    assert (
        client.post(
            "/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json"
        ).status_code
        == 200
    )
    user.set_password("new-password-2")
    user.save()
    answer = client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert answer.status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert client.get(f"{API}/tasks/stats").status_code == 401
