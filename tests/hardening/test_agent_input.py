"""Hostile agent input: every field is validated into a 400 JSON error, nothing is stored."""

from __future__ import annotations

import json

import pytest

from tests.factories import TaskFactory
from watcher.models import Agent, AgentCommand, AgentStatus
from watcher.services import semaphore

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"


def post_raw(handle, path: str, body: str):
    return handle.client.post(f"{API}/{path}", body, content_type="application/json")


def nested(depth: int) -> dict:
    value: dict = {"a": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def assert_refused(response, field: str | None = None) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    if field:
        assert field in response.json(), response.json()


HOSTILE_HEARTBEATS = {
    "current_task not a UUID": ({"status": "ready", "current_task": "x'; --"}, "current_task"),
    "NUL in a stats string": ({"status": "ready", "stats": {"note": "a\u0000b"}}, "stats"),
    "NUL in a stats key": ({"status": "ready", "stats": {"a\u0000": 1}}, "stats"),
    "huge integer in stats": ({"status": "ready", "stats": {"n": 10**30}}, "stats"),
    "signal_strength out of range": (
        {"status": "ready", "stats": {"signal_strength": 2**40}},
        "stats",
    ),
    "signal_strength not a number": (
        {"status": "ready", "stats": {"signal_strength": "full"}},
        "stats",
    ),
    "version too long": ({"status": "ready", "stats": {"version": "v" * 80}}, "stats"),
    "stats nested too deep": ({"status": "ready", "stats": nested(20)}, "stats"),
    "stats too large": ({"status": "ready", "stats": {"blob": "x" * 40_000}}, "stats"),
}


@pytest.mark.parametrize("case", HOSTILE_HEARTBEATS, ids=list(HOSTILE_HEARTBEATS))
def test_it_refuses_a_hostile_heartbeat_and_stores_nothing(agent, case: str) -> None:
    body, field = HOSTILE_HEARTBEATS[case]
    response = agent.client.post(f"{API}/agents/heartbeat", body, format="json")
    assert_refused(response, field)
    stored = Agent.objects.get(pk=agent.id)
    assert stored.last_heartbeat is None and stored.stats == {}


def test_it_refuses_json_nested_deeper_than_the_decoder_can_go(agent) -> None:
    body = '{"status": "ready", "stats": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    assert_refused(post_raw(agent, "agents/heartbeat", body))
    details = '{"reason": "captcha", "details": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001
    assert_refused(post_raw(agent, "agents/panic", details))


def test_a_valid_heartbeat_with_a_current_task_still_works(agent) -> None:
    task = TaskFactory(agent=agent.agent, status="in_progress")
    body = {
        "status": "working",
        "current_task": str(task.pk),
        "stats": {"signal_strength": -70, "version": "1.2", "nested": {"a": [1, 2.5, None]}},
    }
    response = agent.client.post(f"{API}/agents/heartbeat", body, format="json")
    assert response.status_code == 200, response.content
    stored = Agent.objects.get(pk=agent.id)
    assert stored.current_task_id == task.pk and stored.signal_strength == -70


HOSTILE_PANICS = {
    "NUL in details": {"reason": "captcha", "details": {"page": "a\u0000"}},
    "details nested too deep": {"reason": "captcha", "details": nested(20)},
    "details too large": {"reason": "captcha", "details": {"html": "x" * 40_000}},
    "NUL in reason": {"reason": "cap\u0000tcha"},
    "details not an object": {"reason": "captcha", "details": [1, 2]},
}


@pytest.mark.parametrize("case", HOSTILE_PANICS, ids=list(HOSTILE_PANICS))
def test_it_refuses_a_hostile_panic_and_blocks_nothing(agent, case: str) -> None:
    response = agent.client.post(f"{API}/agents/panic", HOSTILE_PANICS[case], format="json")
    assert_refused(response)
    assert Agent.objects.get(pk=agent.id).status != AgentStatus.PANIC
    assert not semaphore.is_blocked("127.0.0.1")


@pytest.mark.parametrize(
    "body",
    [
        {"raw_text": "ok", "timing_ms": 1, "success": True, "lease_version": 2**40},
        {"raw_text": "ok", "timing_ms": 1, "success": True, "error": "e\u0000"},
        {"raw_text": "o\u0000k", "timing_ms": 1, "success": True},
        {"raw_text": "ok", "timing_ms": 1, "success": True, "error": "e" * 5000},
    ],
    ids=["lease_version out of range", "NUL in error", "NUL in raw_text", "error too long"],
)
def test_it_refuses_a_hostile_report(agent, body: dict) -> None:
    task = TaskFactory(agent=agent.agent, status="in_progress")
    response = agent.client.post(f"{API}/tasks/{task.pk}/report", body, format="json")
    assert_refused(response)


def test_it_refuses_hostile_command_params(admin_client_jwt, agent) -> None:
    for params in ({"note": "\u0000"}, nested(20), {"n": -(10**20)}):
        response = admin_client_jwt.post(
            f"{API}/agents/{agent.id}/command",
            {"command": "pause", "params": params},
            format="json",
        )
        assert_refused(response, "params")
    assert not AgentCommand.objects.exists()


def test_json_with_nan_is_refused(agent) -> None:
    body = json.dumps({"status": "ready", "stats": {"x": float("nan")}})
    assert_refused(post_raw(agent, "agents/heartbeat", body))
