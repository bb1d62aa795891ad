"""Panics block only the agent's own IP, durably; a Redis that lost its data is rebuilt."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.factories import TaskFactory
from tests.watcher.pages import WB_PAGE
from watcher.models import PanicBlock, Task, TaskStatus
from watcher.services import health, queues, semaphore
from watcher.services.redis import get_redis
from watcher.tasks import reap_expired_leases

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"
DONE = {"raw_text": WB_PAGE, "timing_ms": 1, "success": True, "error": None}


def heartbeat(handle, ip: str) -> None:
    body = {"status": "ready", "ip": ip}
    assert handle.client.post(f"{API}/agents/heartbeat", body, format="json").status_code == 200


def panic(handle, **details: object):
    body = {"reason": "captcha", "details": details}
    return handle.client.post(f"{API}/agents/panic", body, format="json")


def test_an_agent_cannot_block_another_agents_ip(make_agent) -> None:
    attacker, victim = make_agent(), make_agent()
    heartbeat(attacker, "10.0.0.1")
    heartbeat(victim, "10.0.0.2")
    assert panic(attacker, ip="10.0.0.2").status_code == 200
    assert not semaphore.is_blocked("10.0.0.2")
    assert semaphore.is_blocked("10.0.0.1")  # its own IP, as the server knows it
    assert list(PanicBlock.objects.values_list("ip", flat=True)) == ["10.0.0.1"]


def test_a_panic_may_name_the_requests_own_address(make_agent) -> None:
    agent = make_agent()
    heartbeat(agent, "10.0.0.1")
    assert panic(agent, ip="127.0.0.1").status_code == 200  # the address it came from
    assert semaphore.is_blocked("127.0.0.1")


def test_staff_see_and_clear_blocks_in_the_admin(make_agent) -> None:
    agent = make_agent()
    heartbeat(agent, "10.0.0.9")
    panic(agent)
    block = PanicBlock.objects.get()
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "b@example.com", "pw-long-42"))
    page = client.get("/admin/watcher/panicblock/")
    assert page.status_code == 200 and b"10.0.0.9" in page.content
    answer = client.post(
        "/admin/watcher/panicblock/",
        {"action": "clear", "_selected_action": [block.pk]},
        follow=True,
    )
    assert answer.status_code == 200
    assert not PanicBlock.objects.exists()
    assert not semaphore.is_blocked("10.0.0.9")


def test_a_flushed_redis_is_rebuilt_by_the_reaper_with_blocks_and_semaphores(make_agent) -> None:
    worker, panicking, idle = make_agent(), make_agent(), make_agent()
    heartbeat(worker, "10.0.0.1")
    heartbeat(panicking, "10.0.0.2")
    heartbeat(idle, "10.0.0.1")  # same IP as the worker
    tasks = [TaskFactory(marketplace="wildberries") for _ in range(3)]
    queues.push([(str(t.pk), t.marketplace, t.priority) for t in tasks])
    claimed = worker.client.get(f"{API}/tasks/next").json()["id"]
    panic(panicking)
    assert health.check_health()["status"] == "healthy"

    get_redis().flushdb()  # Redis lost everything
    assert idle.client.get(f"{API}/tasks/next").status_code == 204  # the silent stop
    assert health.check_health()["status"] == "degraded"
    response = Client().get(f"{API}/health")
    assert response.status_code == 200 and response.json()["status"] == "degraded"

    assert reap_expired_leases()["redis_rebuilt"] == 1
    assert health.check_health()["status"] == "healthy"
    assert semaphore.is_blocked("10.0.0.2")
    assert sum(queues.lengths().values()) == 2
    # The worker's IP still holds the marketplace: the idle agent on that IP gets nothing...
    assert idle.client.get(f"{API}/tasks/next").status_code == 204
    # ...until the worker reports; then the rest is handed out, each task once.
    worker.client.post(f"{API}/tasks/{claimed}/report", DONE, format="json")
    handed = []
    while (response := idle.client.get(f"{API}/tasks/next")).status_code == 200:
        handed.append(response.json()["id"])
        idle.client.post(f"{API}/tasks/{handed[-1]}/report", DONE, format="json")
        assert len(handed) < 20
    assert sorted(handed) == sorted({str(t.pk) for t in tasks} - {claimed})  # each once
    assert reap_expired_leases()["redis_rebuilt"] == 0
    assert not Task.objects.filter(status=TaskStatus.IN_PROGRESS).exists()
