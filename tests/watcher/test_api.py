"""The agent API: auth, claims, reports, heartbeat, panic, config; and the staff API."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import SubscriptionFactory, TaskFactory
from tests.watcher.pages import CAPTCHA_PAGE, NOT_FOUND_PAGE, WB_PAGE, YM_OUT_OF_STOCK
from watcher.models import (
    Agent,
    AgentStatus,
    EmulationConfig,
    PriceHistory,
    Task,
    TaskOutcome,
    TaskReport,
    TaskStatus,
)
from watcher.services import queues, semaphore
from watcher.services.generator import generate_tasks
from watcher.services.redis import AGENT_STATE_KEY, get_redis

# Real transactions: Redis is touched only after commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"


def queued_task(**kwargs: object) -> Task:
    task = TaskFactory(**kwargs)
    queues.push([(str(task.pk), task.marketplace, task.priority)])
    return task


def claim(handle) -> dict:
    response = handle.client.get(f"{API}/tasks/next")
    assert response.status_code == 200, response.content
    return response.json()


def report(handle, task_id: str, **body: object):
    payload = {"raw_text": WB_PAGE, "timing_ms": 1500, "success": True, "error": None, **body}
    return handle.client.post(f"{API}/tasks/{task_id}/report", payload, format="json")


# --- authentication ------------------------------------------------------------------------


def test_it_refuses_a_missing_or_wrong_api_key(agent) -> None:
    anonymous = APIClient()
    assert anonymous.get(f"{API}/tasks/next").status_code == 401
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer wa_" + "x" * 43)
    response = wrong.get(f"{API}/tasks/next")
    assert response.status_code == 401
    assert response.json()["detail"]
    assert response["WWW-Authenticate"] == "Bearer"


def test_it_refuses_a_disabled_agent_with_403(agent) -> None:
    Agent.objects.filter(pk=agent.agent.pk).update(is_enabled=False)
    assert agent.client.get(f"{API}/tasks/next").status_code == 403


def test_api_keys_are_stored_as_digests_only(agent) -> None:
    stored = Agent.objects.filter(pk=agent.agent.pk).values().get()
    assert agent.key not in json.dumps(stored, default=str)
    assert len(stored["api_key_digest"]) == 64


# --- tasks/next ----------------------------------------------------------------------------


def test_next_answers_204_when_nothing_is_queued(agent) -> None:
    response = agent.client.get(f"{API}/tasks/next")
    assert response.status_code == 204
    assert response.content == b""


def test_next_hands_out_a_task_with_the_contract_shape(agent) -> None:
    task = queued_task(priority=5)
    body = claim(agent)
    assert body["id"] == str(task.pk)
    assert body["url"] == f"https://www.wildberries.ru/catalog/{task.sku}/detail.aspx"
    assert body["marketplace"] == "wildberries"
    assert body["sku"] == task.sku
    assert body["competitor_id"] is None
    assert body["priority"] == 5
    assert dt.datetime.fromisoformat(body["created_at"])
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS
    assert task.agent_id == agent.agent.pk
    assert task.started_at is not None
    assert task.lease_version == 1 == body["lease_version"]


def test_higher_priority_is_handed_out_first(agent, make_agent) -> None:
    low = queued_task(priority=1)
    high = queued_task(priority=9)
    assert claim(agent)["id"] == str(high.pk)
    other = make_agent()
    other.client.post(
        f"{API}/agents/heartbeat", {"status": "ready", "ip": "10.9.9.9"}, format="json"
    )
    assert claim(other)["id"] == str(low.pk)


def test_second_agent_on_same_ip_gets_other_marketplace(make_agent) -> None:
    wb = queued_task(subscription=SubscriptionFactory(marketplace="wildberries"), priority=2)
    wb2 = queued_task(subscription=SubscriptionFactory(marketplace="wildberries"), priority=1)
    oz = queued_task(subscription=SubscriptionFactory(marketplace="ozon"))
    a, b = make_agent(), make_agent()
    for h in (a, b):
        h.client.post(
            f"{API}/agents/heartbeat", {"status": "ready", "ip": "10.0.0.1"}, format="json"
        )
    assert claim(a)["id"] == str(wb.pk)
    assert claim(b)["id"] == str(oz.pk)  # WB is busy on this IP
    assert b.client.get(f"{API}/tasks/next").status_code == 204
    assert semaphore.is_locked("10.0.0.1", "wildberries.ru")
    # The WB report frees the IP for the next WB task.
    assert report(a, str(wb.pk)).status_code == 200
    assert not semaphore.is_locked("10.0.0.1", "wildberries.ru")
    assert claim(b)["id"] == str(wb2.pk)


def test_paused_or_panicking_agents_get_no_task(agent) -> None:
    queued_task()
    for status in (AgentStatus.PAUSED, AgentStatus.PANIC):
        Agent.objects.filter(pk=agent.agent.pk).update(status=status)
        assert agent.client.get(f"{API}/tasks/next").status_code == 204
    assert queues.lengths()["wildberries"] == 1


# --- reports -------------------------------------------------------------------------------


def test_a_successful_report_stores_the_price_and_completes_the_task(agent) -> None:
    task = queued_task()
    claim(agent)
    response = report(agent, str(task.pk), timing_ms=4321)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "completed" and body["outcome"] == "ok"
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert task.execution_time_ms == 4321 and task.completed_at is not None
    price = PriceHistory.objects.get(task=task)
    assert price.current_price == Decimal("1299")
    assert price.old_price == Decimal("2600")
    assert price.spp_price == Decimal("1180")
    assert price.rating == Decimal("4.8")
    assert price.reviews_count == 12345
    assert price.agent_id == agent.agent.pk and price.attempt == 1
    assert price.subscription_id == task.subscription_id
    assert TaskReport.objects.get(task=task).raw_text == WB_PAGE
    assert get_redis().zcard("watcher:task_inflight") == 0


def test_a_repeated_report_is_idempotent(agent) -> None:
    task = queued_task()
    claim(agent)
    first = report(agent, str(task.pk))
    second = report(agent, str(task.pk))
    assert first.status_code == second.status_code == 200
    assert second.json()["duplicate"] is True
    assert second.json()["price_history_id"] == first.json()["price_history_id"]
    assert PriceHistory.objects.filter(task=task).count() == 1
    assert TaskReport.objects.filter(task=task).count() == 1
    detail = agent_detail_for(agent)
    assert detail["tasks_completed_today"] == 1


def agent_detail_for(handle) -> dict:
    admin = User.objects.create_superuser("boss-" + handle.id[:6], password="x" * 12)
    client = APIClient()
    client.force_authenticate(admin)
    return client.get(f"{API}/agents/{handle.id}").json()


def test_a_failed_report_requeues_until_the_retry_limit(agent) -> None:
    task = queued_task()
    for attempt in range(1, 4):
        assert claim(agent)["id"] == str(task.pk)
        response = report(agent, str(task.pk), success=False, error="timeout", raw_text="")
        assert response.status_code == 200
        task.refresh_from_db()
        assert task.retry_count == attempt
    assert task.status == TaskStatus.FAILED
    assert task.outcome == TaskOutcome.AGENT_ERROR
    assert task.error == "timeout"
    assert agent.client.get(f"{API}/tasks/next").status_code == 204


def test_outcomes_are_told_apart(make_agent) -> None:
    cases = [
        (CAPTCHA_PAGE, TaskStatus.PENDING, TaskOutcome.BLOCKED),
        (NOT_FOUND_PAGE, TaskStatus.FAILED, TaskOutcome.NOT_FOUND),
        (YM_OUT_OF_STOCK, TaskStatus.COMPLETED, TaskOutcome.OUT_OF_STOCK),
        ("%%% garbage %%%", TaskStatus.PARSE_ERROR, TaskOutcome.PARSE_FAILED),
    ]
    for text, status, outcome in cases:
        handle = make_agent()
        task = queued_task()
        claim(handle)
        response = report(handle, str(task.pk), raw_text=text)
        assert response.status_code == 200
        task.refresh_from_db()
        assert (task.status, task.outcome) == (status, outcome), text
        queues.remove([task.pk])  # a blocked page goes back to the queue; keep cases apart
    stocked = PriceHistory.objects.get(in_stock=False)
    assert stocked.current_price is None


def test_report_bad_input_is_refused_and_changes_nothing(agent, make_agent) -> None:
    task = queued_task()
    claim(agent)
    url = f"{API}/tasks/{task.pk}/report"
    bad_bodies = [
        {"raw_text": "x", "timing_ms": -1, "success": True},
        {"raw_text": "x", "timing_ms": "fast", "success": True},
        {"raw_text": "x", "timing_ms": 1},
        {"timing_ms": 1, "success": True},
        [1, 2, 3],
    ]
    for body in bad_bodies:
        response = agent.client.post(url, body, format="json")
        assert response.status_code == 400, body
        assert isinstance(response.json(), dict)
    response = agent.client.post(url, "{not json", content_type="application/json")
    assert response.status_code == 400
    # Unknown task, someone else's task.
    unknown = "00000000-0000-0000-0000-000000000000"
    assert report(agent, unknown).status_code == 404
    assert agent.client.post(f"{API}/tasks/not-a-uuid/report", {}, format="json").status_code == 404
    intruder = make_agent()
    assert report(intruder, str(task.pk)).status_code == 403
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS
    assert not TaskReport.objects.exists()


@override_settings(WATCHER_MAX_REPORT_BYTES=1000)
def test_an_oversized_report_gets_413(agent) -> None:
    task = queued_task()
    claim(agent)
    response = report(agent, str(task.pk), raw_text="я" * 600)  # 1,200 bytes
    assert response.status_code == 413
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS


def test_a_report_of_an_expired_lease_gets_409_and_changes_nothing(agent, make_agent) -> None:
    from watcher.services.distributor import reap_expired_leases

    task = queued_task()
    stale = claim(agent)
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - dt.timedelta(1))
    assert reap_expired_leases()["expired"] == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING and task.agent_id is None
    assert report(agent, stale["id"]).status_code == 409
    # The same agent claims it again: a report naming the old lease is still refused.
    fresh = claim(agent)
    assert fresh["lease_version"] == 2
    response = report(agent, stale["id"], lease_version=stale["lease_version"])
    assert response.status_code == 409
    assert not PriceHistory.objects.exists()
    assert report(agent, fresh["id"], lease_version=2).status_code == 200


# --- heartbeat, panic, config --------------------------------------------------------------


def test_heartbeat_stores_state_in_the_row_and_redis(agent) -> None:
    body = {
        "status": "working",
        "current_task": None,
        "stats": {
            "ip": "10.1.2.3",
            "modem_operator": "MTS",
            "signal_strength": 4,
            "version": "1.2",
        },
    }
    response = agent.client.post(f"{API}/agents/heartbeat", body, format="json")
    assert response.status_code == 200
    row = Agent.objects.get(pk=agent.agent.pk)
    assert row.status == AgentStatus.WORKING
    assert row.current_ip == "10.1.2.3"
    assert row.modem_operator == "MTS" and row.signal_strength == 4 and row.version == "1.2"
    assert row.last_heartbeat is not None
    state = json.loads(get_redis().get(AGENT_STATE_KEY.format(id=agent.id)))
    assert state["status"] == "working" and state["ip"] == "10.1.2.3"
    assert 0 < get_redis().ttl(AGENT_STATE_KEY.format(id=agent.id)) <= 300


def test_heartbeat_rejects_unknown_status_and_bad_ip(agent) -> None:
    url = f"{API}/agents/heartbeat"
    assert agent.client.post(url, {"status": "dancing"}, format="json").status_code == 400
    response = agent.client.post(
        url, {"status": "ready", "stats": {"ip": "999.1.1.1"}}, format="json"
    )
    assert response.status_code == 400
    assert Agent.objects.get(pk=agent.agent.pk).last_heartbeat is None


def test_an_ip_change_releases_the_old_ips_semaphores(agent) -> None:
    queued_task()
    agent.client.post(
        f"{API}/agents/heartbeat", {"status": "ready", "ip": "10.0.0.1"}, format="json"
    )
    claim(agent)
    assert semaphore.is_locked("10.0.0.1", "wildberries.ru")
    agent.client.post(
        f"{API}/agents/heartbeat", {"status": "working", "ip": "10.0.0.2"}, format="json"
    )
    assert not semaphore.is_locked("10.0.0.1", "wildberries.ru")


def test_panic_blocks_the_ip_and_hands_tasks_back(agent, make_agent) -> None:
    task = queued_task()
    queued_task()
    agent.client.post(
        f"{API}/agents/heartbeat", {"status": "ready", "ip": "10.0.0.5"}, format="json"
    )
    claim(agent)
    response = agent.client.post(
        f"{API}/agents/panic", {"reason": "captcha", "details": {"ip": "10.0.0.5"}}, format="json"
    )
    assert response.status_code == 200
    row = Agent.objects.get(pk=agent.agent.pk)
    assert row.status == AgentStatus.PANIC and row.panic_reason == "captcha"
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING and task.retry_count == 0
    assert semaphore.is_blocked("10.0.0.5")
    assert 3500 < get_redis().ttl("watcher:ip_blocked:10.0.0.5") <= 3600
    # Another agent on the blocked IP gets nothing; one on another IP works.
    neighbour, elsewhere = make_agent(), make_agent()
    neighbour.client.post(
        f"{API}/agents/heartbeat", {"status": "ready", "ip": "10.0.0.5"}, format="json"
    )
    elsewhere.client.post(
        f"{API}/agents/heartbeat", {"status": "ready", "ip": "10.0.0.6"}, format="json"
    )
    assert neighbour.client.get(f"{API}/tasks/next").status_code == 204
    assert elsewhere.client.get(f"{API}/tasks/next").status_code == 200


def test_panic_needs_a_reason(agent) -> None:
    assert (
        agent.client.post(f"{API}/agents/panic", {"details": {}}, format="json").status_code == 400
    )
    assert Agent.objects.get(pk=agent.agent.pk).status == AgentStatus.OFFLINE


def test_emulation_config_has_the_defaults(agent) -> None:
    response = agent.client.get(f"{API}/config/emulation")
    assert response.status_code == 200
    assert response.json() == {
        "min_delay_ms": 2000,
        "max_delay_ms": 5000,
        "scroll_enabled": True,
        "scroll_steps": 3,
        "mouse_movement": True,
        "mouse_curve": "bezier",
        "page_view_min_ms": 3000,
        "page_view_max_ms": 8000,
        "random_order": True,
    }
    config = EmulationConfig.get()
    config.min_delay_ms = 9000
    with pytest.raises(Exception, match="max_delay_ms"):
        config.full_clean()


# --- staff API -----------------------------------------------------------------------------


def user_with(role: str | None, name: str) -> APIClient:
    user = User.objects.create_user(name, password="pw-" + name * 3)
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token", {"username": name, "password": "pw-" + name * 3}, format="json"
    )
    assert token.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")
    return client


def test_agents_list_and_detail_are_for_admins(agent) -> None:
    admin = user_with("admin", "alice")
    manager = user_with("manager", "bob")
    listing = admin.get(f"{API}/agents")
    assert listing.status_code == 200
    (row,) = listing.json()["agents"]
    assert set(row) == {
        "id", "name", "status", "current_ip", "last_heartbeat",
        "tasks_completed_today", "tasks_failed_today",
    }  # fmt: skip
    detail = admin.get(f"{API}/agents/{agent.id}").json()
    assert detail["avg_task_time_ms"] is None and detail["name"] == "agent-main"
    assert admin.get(f"{API}/agents/00000000-0000-0000-0000-000000000000").status_code == 404
    assert manager.get(f"{API}/agents").status_code == 403
    assert APIClient().get(f"{API}/agents").status_code in (401, 403)
    # An agent's key is not a person's token.
    assert agent.client.get(f"{API}/agents").status_code == 401


def test_a_token_of_an_inactive_or_deleted_user_is_refused(agent) -> None:
    """The JWT check reads the user on every request: deactivating or deleting a person shuts
    their tokens out at once, with the library's reasons."""
    alice, bob = user_with("admin", "alice"), user_with("admin", "bob")
    assert alice.get(f"{API}/agents").status_code == 200
    User.objects.filter(username="alice").update(is_active=False)
    refused = alice.get(f"{API}/agents")
    assert refused.status_code == 401 and refused.json()["code"] == "user_inactive"
    User.objects.filter(username="bob").delete()
    refused = bob.get(f"{API}/agents")
    assert refused.status_code == 401 and refused.json()["code"] == "user_not_found"


def test_a_token_without_its_user_claim_is_refused(db) -> None:
    from rest_framework_simplejwt.tokens import AccessToken

    carol = User.objects.create_user("carol")
    carol.groups.add(Group.objects.get_or_create(name="admin")[0])
    token = AccessToken.for_user(carol)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(f"{API}/agents").status_code == 200
    del token["user_id"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    refused = client.get(f"{API}/agents")
    assert refused.status_code == 401 and refused.json()["code"] == "token_not_valid"


def test_task_stats_for_staff_roles(agent) -> None:
    generate_tasks_for_two()
    claim(agent)
    for role, name in (("manager", "m"), ("senior", "s"), ("director", "d"), ("admin", "a")):
        response = user_with(role, name).get(f"{API}/tasks/stats")
        assert response.status_code == 200
    assert user_with(None, "nobody").get(f"{API}/tasks/stats").status_code == 403
    body = response.json()
    assert body["total_queued"] == 1 and body["total_in_progress"] == 1
    assert body["by_marketplace"] == {"wildberries": 1, "ozon": 0, "yandex_market": 0}


def generate_tasks_for_two() -> None:
    SubscriptionFactory.create_batch(2)
    generate_tasks()
