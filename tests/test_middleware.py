"""Django's middleware on every request, DRF deciding API requests: bearer-token requests need no
CSRF token and get no cookies; session-authenticated writes and the pages keep the CSRF check."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from watcher.services.agents import create_agent

pytestmark = pytest.mark.django_db
API = "/api/v1/watcher"


@pytest.fixture
def agent_key() -> str:
    return create_agent("modem-mw")[1]


def test_an_agent_posts_with_its_key_and_no_csrf_token(agent_key: str) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        f"{API}/agents/heartbeat",
        {"status": "idle"},
        "application/json",
        HTTP_AUTHORIZATION=f"Bearer {agent_key}",
    )
    assert response.status_code == 200, response.content
    assert not response.cookies  # no session, no CSRF cookie, no messages
    assert "Cookie" not in response.get("Vary", "")  # the session was never read


def test_an_agent_request_gets_no_cookies_and_keeps_languages_and_headers(agent_key: str) -> None:
    client = Client()
    client.cookies["sessionid"] = "whatever"  # a stray cookie changes nothing
    response = client.get(f"{API}/tasks/next", HTTP_AUTHORIZATION=f"Bearer {agent_key}")
    assert response.status_code == 204
    assert not response.wsgi_request.user.is_authenticated  # the agent is request.auth
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
    assert "Accept-Language" in response.get("Vary", "")  # languages are negotiated
    assert response["X-Frame-Options"] == "DENY"  # and the security headers set


def test_a_jwt_request_is_decided_by_its_token_and_needs_no_csrf_token() -> None:
    from rest_framework_simplejwt.tokens import RefreshToken

    root = User.objects.create_superuser("jwt-root", "root@example.com", "pw-root-1")
    token = str(RefreshToken.for_user(root).access_token)
    client = Client(enforce_csrf_checks=True)
    response = client.get(f"{API}/agents", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.wsgi_request.user == root  # set by DRF from the token
    assert "Cookie" not in response.get("Vary", "") and not response.cookies
    # A session does not rescue a bad token, and a good token needs no CSRF token.
    client.force_login(root)  # (django-axes wants a request in authenticate(); login() has none)
    bad = client.get(f"{API}/agents", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert bad.status_code == 401
    sent = client.post(
        f"{API}/agents/command",
        {"command": "pause"},
        "application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert sent.status_code == 200 and sent.json()["sent_to"] == 0


def test_agents_get_their_errors_in_their_language() -> None:
    wrong = {"HTTP_AUTHORIZATION": "Bearer wa_not-a-key"}
    english = Client().get(f"{API}/tasks/next", HTTP_ACCEPT_LANGUAGE="en", **wrong)
    russian = Client().get(f"{API}/tasks/next", HTTP_ACCEPT_LANGUAGE="ru", **wrong)
    assert english.status_code == russian.status_code == 401
    assert english.json()["detail"] == "Invalid API key."
    assert russian.json()["detail"] != "Invalid API key."


def test_staff_and_browsers_keep_sessions_csrf_and_users(agent_key: str) -> None:
    root = User.objects.create_superuser("root", "root@example.com", "pw-root-1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(root)
    # A session-authenticated API write without the CSRF token is refused...
    response = client.post(f"{API}/agents/command", {"command": "pause"}, "application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    # ... and an agent key does not open a way around it: the key is not a staff credential.
    response = client.post(
        f"{API}/agents/command",
        {"command": "pause"},
        "application/json",
        HTTP_AUTHORIZATION=f"Bearer {agent_key}",
    )
    assert response.status_code == 401
    # Django's CSRF check guards the pages, header or not.
    for headers in ({}, {"HTTP_AUTHORIZATION": f"Bearer {agent_key}"}):
        refused = client.post("/i18n/setlang/", {"language": "en"}, **headers)
        assert refused.status_code == 403 and b"CSRF" in refused.content
    # Browser pages ignore the header: sessions and users as usual.
    page = client.get("/admin/", HTTP_AUTHORIZATION=f"Bearer {agent_key}")
    assert page.status_code == 200 and page.wsgi_request.user.username == "root"
    assert Client().get("/admin/").status_code == 302  # anonymous: to the login page


def test_the_api_answers_406_for_what_it_cannot_render() -> None:
    assert Client().get(f"{API}/health", HTTP_ACCEPT="text/html").status_code == 406
    response = Client().get(f"{API}/health", HTTP_ACCEPT="*/*")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
