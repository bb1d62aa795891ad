"""API errors speak the request's language: Russian by default, English on ``Accept-Language``.

Validation messages, 401/403/404/429 details and our own error codes' messages alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.hardening.test_throttling import rates
from watcher.models import Agent

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"
UNKNOWN = "00000000-0000-0000-0000-000000000000"


def both(call: Any) -> tuple[Any, Any]:
    """The same request in Russian (no header: the default) and in English."""
    return call({}), call({"HTTP_ACCEPT_LANGUAGE": "en"})


def staff() -> APIClient:
    root = User.objects.create_superuser("root", "root@example.com", "pw-root-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(root).access_token}")
    return client


def test_validation_messages_follow_the_language(agent) -> None:
    ru, en = both(
        lambda lang: agent.client.post(
            f"{API}/agents/heartbeat", {"status": "dancing"}, format="json", **lang
        )
    )
    assert ru.status_code == en.status_code == 400
    assert en.json()["status"] == ['"dancing" is not a valid choice.']
    assert ru.json()["status"] == ["Значения dancing нет среди допустимых вариантов."]
    # Our own validator's message, too.
    ru, en = both(
        lambda lang: agent.client.post(
            f"{API}/agents/heartbeat",
            {"status": "ready", "stats": {"n": "a\x00b"}},
            format="json",
            **lang,
        )
    )
    assert (ru.status_code, en.status_code) == (400, 400)
    assert en.json() == {"stats": ["Null characters are not allowed."]}
    assert ru.json() == {"stats": ["Нулевые символы недопустимы."]}


def test_401_403_and_404_follow_the_language(agent) -> None:
    anonymous = APIClient()
    ru, en = both(lambda lang: anonymous.get(f"{API}/tasks/next", **lang))
    assert (ru.status_code, en.status_code) == (401, 401)
    assert (en.json()["detail"], ru.json()["detail"]) == (
        "Missing API key.",
        "Не передан API-ключ.",
    )

    Agent.objects.filter(pk=agent.id).update(is_enabled=False)
    ru, en = both(lambda lang: agent.client.get(f"{API}/tasks/next", **lang))
    assert (ru.status_code, en.status_code) == (403, 403)
    assert en.json()["detail"] == "This agent is disabled."
    assert ru.json()["detail"] == "Этот агент отключён."

    client = staff()
    ru, en = both(lambda lang: client.get(f"{API}/agents/{UNKNOWN}", **lang))
    assert (ru.status_code, en.status_code) == (404, 404)
    assert (en.json()["detail"], ru.json()["detail"]) == ("Not found.",
                                                          "Не найдено.")  # fmt: skip
    ru, en = both(lambda lang: client.get("/api/v1/no-such-endpoint", **lang))
    assert (en.json(), ru.json()) == ({"detail": "Not found."}, {"detail": "Не найдено."})


def test_our_error_codes_messages_follow_the_language(agent) -> None:
    client = staff()
    ru, en = both(
        lambda lang: client.post(
            f"{API}/agents/{agent.id}/command", {"command": "pause"}, format="json", **lang
        )
    )
    assert (ru.status_code, en.status_code) == (503, 503)
    assert en.json() == {"detail": "Agent not connected", "code": "unavailable"}
    assert ru.json() == {"detail": "Агент не подключён", "code": "unavailable"}

    ru, en = both(
        lambda lang: agent.client.post(
            f"{API}/tasks/{UNKNOWN}/report",
            {"raw_text": "", "timing_ms": 1, "success": False, "error": "x"},
            format="json",
            **lang,
        )
    )
    assert (ru.status_code, en.status_code) == (404, 404)
    assert en.json() == {"detail": "Unknown task", "code": "not_found"}
    assert ru.json() == {"detail": "Неизвестная задача", "code": "not_found"}


@pytest.fixture
def strict_rates() -> Iterator[None]:
    # DRF reads its settings once per process: reload them for the test's rates.
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    with rates():
        api_settings.reload()
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        yield
    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def test_429_follows_the_language(db: None, strict_rates: None) -> None:
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer wa_" + "x" * 43)
    for _ in range(4):
        assert wrong.get(f"{API}/tasks/next", REMOTE_ADDR="10.6.6.6").status_code == 401
    ru, en = both(lambda lang: wrong.get(f"{API}/tasks/next", REMOTE_ADDR="10.6.6.6", **lang))
    assert (ru.status_code, en.status_code) == (429, 429)
    assert en.json()["detail"].startswith("Request was throttled.")
    assert ru.json()["detail"].startswith("Запрос был проигнорирован")
