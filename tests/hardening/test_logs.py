"""JSON logs: the request id on every line of a request; secrets redacted everywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the configured console handler writes, in the production format (JSON lines, as
    LOG_FORMAT's default; ``make`` sets it to plain for a terminal)."""
    from django.conf import settings
    from pythonjsonlogger.json import JsonFormatter

    handler = next(h for h in logging.getLogger().handlers if h.__class__ is logging.StreamHandler)
    stream = io.StringIO()
    previous, formatter = handler.setStream(stream), handler.formatter
    handler.setFormatter(JsonFormatter(settings.LOGGING["formatters"]["json"]["fmt"]))
    yield stream
    handler.setFormatter(formatter)
    handler.setStream(previous)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_every_line_of_a_request_carries_its_id(console, agent, monkeypatch) -> None:
    from watcher.services import agents as agent_service

    def noisy(*args: object, **kwargs: object):
        logging.getLogger("watcher.test").info("inside the view")
        return original(*args, **kwargs)

    original = agent_service.record_heartbeat
    monkeypatch.setattr(agent_service, "record_heartbeat", noisy)
    response = agent.client.post(
        "/api/v1/watcher/agents/heartbeat",
        {"status": "ready"},
        format="json",
        HTTP_X_REQUEST_ID="req-0123456789",
    )
    assert response["X-Request-ID"] == "req-0123456789"
    wrong = Client().get("/api/v1/watcher/tasks/next", HTTP_AUTHORIZATION="Bearer wa_nope")
    generated = wrong["X-Request-ID"]
    records = lines(console)
    inside = [r for r in records if r["message"] == "inside the view"]
    assert inside and all(r["request_id"] == "req-0123456789" for r in inside)
    refused = [r for r in records if r["name"] == "django.request"]
    assert refused and refused[-1]["request_id"] == generated
    logging.getLogger("watcher.test").info("outside any request")
    assert lines(console)[-1]["request_id"] is None


def test_secrets_are_redacted_from_messages_and_fields(console) -> None:
    log = logging.getLogger("uvicorn.error")
    log.warning('"GET /ws/watcher?agent_id=1&api_key=wa_SECRETSECRETSECRET HTTP/1.1" 403')
    log.warning("auth %s", "Authorization: Bearer eyJhbGciOi.SECRET.PART")
    log.warning("login", extra={"body": '{"username": "a", "password": "hunter2-SECRET"}'})
    logging.getLogger("watcher.test").warning("key %s", "wa_SECRETSECRETSECRET")
    output = console.getvalue()
    assert "SECRET" not in output
    assert output.count("[redacted]") >= 4
