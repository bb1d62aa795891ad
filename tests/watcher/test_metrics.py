"""Prometheus metrics at /metrics."""

from __future__ import annotations

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import TaskFactory
from tests.watcher.pages import WB_PAGE
from watcher.services import queues

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"


def scrape(client, **headers: str) -> dict[str, float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            key = sample.name + "".join(f"{{{v}}}" for v in sample.labels.values())
            samples[key] = sample.value
    return samples


def test_metrics_follow_the_night(admin_client, agent) -> None:
    client = admin_client  # a staff session may read them without the token
    for _ in range(3):
        task = TaskFactory()
        queues.push([(str(task.pk), task.marketplace, 0)])
    agent.client.post(f"{API}/agents/heartbeat", {"status": "ready"}, format="json")
    before = scrape(client)
    assert before["watcher_tasks_queued{wildberries}"] == 3
    assert before["watcher_tasks_distributed_total"] == 0
    assert before["watcher_agents_online"] == 1
    claimed = agent.client.get(f"{API}/tasks/next").json()
    assert scrape(client)["watcher_semaphore_locks"] == 1
    body = {"raw_text": WB_PAGE, "timing_ms": 10, "success": True, "error": None}
    agent.client.post(f"{API}/tasks/{claimed['id']}/report", body, format="json")
    claimed = agent.client.get(f"{API}/tasks/next").json()
    body = {"raw_text": "", "timing_ms": 10, "success": False, "error": "timeout"}
    agent.client.post(f"{API}/tasks/{claimed['id']}/report", body, format="json")
    after = scrape(client)
    assert after["watcher_tasks_distributed_total"] == 2
    assert after["watcher_tasks_completed_total"] == 1
    assert after["watcher_tasks_failed_total"] == 1
    assert after["watcher_tasks_queued{wildberries}"] == 2  # the failed one is back
    assert after["watcher_semaphore_locks"] == 0
    assert after["watcher_ws_connections"] == 0


@override_settings(WATCHER_METRICS_TOKEN="s3cret-token")
def test_metrics_need_the_token_when_one_is_set(client) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-token") is not None


def test_metrics_are_closed_to_anonymous_and_non_staff_by_default(
    client, django_user_model
) -> None:
    assert client.get("/metrics").status_code == 401
    client.force_login(django_user_model.objects.create_user("plain", password="x"))
    assert client.get("/metrics").status_code == 401


@override_settings(WATCHER_METRICS_PUBLIC=True)
def test_metrics_can_be_opened_to_anyone(client) -> None:
    assert scrape(client) is not None
