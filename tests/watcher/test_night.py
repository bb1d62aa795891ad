"""A whole night through the API: demo data, generation, three agents, every kind of report."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.watcher.pages import WB_PAGE
from watcher.models import PriceHistory, Task, TaskStatus
from watcher.services import semaphore

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"


def test_a_whole_night_through_the_api(make_agent) -> None:
    call_command("load_demo")
    call_command("load_demo")  # idempotent
    call_command("generate_tasks")
    total = Task.objects.count()
    assert total == 14

    same_a, same_b, other = make_agent("same-a"), make_agent("same-b"), make_agent("other")
    for handle, ip in ((same_a, "10.0.0.1"), (same_b, "10.0.0.1"), (other, "10.0.0.2")):
        response = handle.client.post(
            f"{API}/agents/heartbeat", {"status": "ready", "ip": ip}, format="json"
        )
        assert response.status_code == 200

    # Each agent's behaviour, by the order of its claims: success, garbage, failure, success…
    plans = {
        same_a.id: ["ok", "garbage", "fail"],
        same_b.id: ["ok", "fail", "ok"],
        other.id: ["ok", "ok", "garbage", "fail"],
    }
    expected: dict[str, str] = {}
    claims: Counter[str] = Counter()
    handed: list[str] = []
    active = [same_a, same_b, other]
    rounds = 0
    while active and rounds < 200:
        rounds += 1
        for handle in list(active):
            response = handle.client.get(f"{API}/tasks/next")
            if response.status_code == 204:
                active.remove(handle)
                continue
            assert response.status_code == 200
            task = response.json()
            handed.append(task["id"])
            plan = plans[handle.id]
            kind = plan[claims[handle.id] % len(plan)]
            claims[handle.id] += 1
            if kind == "ok":
                body = {"raw_text": WB_PAGE, "timing_ms": 2000, "success": True, "error": None}
            elif kind == "garbage":
                body = {"raw_text": "<<<>>> ### ~~~", "timing_ms": 10, "success": True}
            else:
                body = {"raw_text": "", "timing_ms": 30000, "success": False, "error": "timeout"}
            response = handle.client.post(f"{API}/tasks/{task['id']}/report", body, format="json")
            assert response.status_code == 200, response.content
            expected[task["id"]] = kind

    assert not active, "agents still had work after 200 rounds"
    # Nothing is left open and no semaphore is left behind.
    statuses = Counter(Task.objects.values_list("status", flat=True))
    assert set(statuses) <= {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.PARSE_ERROR}
    assert sum(statuses.values()) == total
    assert semaphore.stats()["total_locks"] == 0
    # Each task's end follows the rules: the last report decides.
    for task in Task.objects.all():
        kind = expected[str(task.pk)]
        if kind == "ok":
            assert task.status == TaskStatus.COMPLETED
        elif kind == "garbage":
            assert task.status == TaskStatus.PARSE_ERROR
        else:
            assert task.status == TaskStatus.FAILED and task.retry_count == 3
    completed = Task.objects.filter(status=TaskStatus.COMPLETED)
    assert PriceHistory.objects.count() == completed.count() > 0
    for price in PriceHistory.objects.select_related("task"):
        assert price.task.status == TaskStatus.COMPLETED
        assert price.sku == price.task.sku and price.current_price == 1299

    # The staff API agrees with the stored state.
    admin = User.objects.create_superuser("night-admin", password="pw" * 8)
    staff = APIClient()
    staff.force_authenticate(admin)
    agents = {a["name"]: a for a in staff.get(f"{API}/agents").json()["agents"]}
    for handle in (same_a, same_b, other):
        ok = handle.agent.reports.filter(outcome="ok").count()
        row = agents[handle.agent.name]
        assert row["tasks_completed_today"] == ok
        reports = handle.agent.reports.count()
        assert row["tasks_completed_today"] + row["tasks_failed_today"] == reports
    stats = staff.get(f"{API}/tasks/stats").json()
    assert stats["total_queued"] == 0 and stats["total_in_progress"] == 0
    assert stats["total_completed_today"] == completed.count()
    assert stats["total_failed_today"] == total - completed.count()


def test_migrate_creates_the_periodic_tasks_and_keeps_an_operators_edits(settings) -> None:
    from django_celery_beat.models import PeriodicTask

    from watcher.schedules import ensure_schedules

    ensure_schedules()  # what the post_migrate hook runs
    by_task = {t.task: t for t in PeriodicTask.objects.select_related("crontab", "interval")}
    nightly = by_task["watcher.generate_daily_tasks"]
    hour, minute = settings.WATCHER_TASK_GENERATION_TIME.split(":")
    assert (nightly.crontab.hour, nightly.crontab.minute) == (str(int(hour)), str(int(minute)))
    assert str(nightly.crontab.timezone) == settings.TIME_ZONE and nightly.enabled
    every = {
        "watcher.reap_expired_leases": (60, "seconds"),
        "watcher.mark_offline_agents": (60, "seconds"),
        "watcher.resend_commands": (10, "seconds"),
        "watcher.prune_command_history": (1, "hours"),
    }
    for task, (n, period) in every.items():
        assert (by_task[task].interval.every, by_task[task].interval.period) == (n, period)
        assert by_task[task].description and by_task[task].enabled

    # An operator moves the night to 22:00 and pauses the pruning; the next migrate keeps it.
    nightly.crontab.hour = "22"
    nightly.crontab.save()
    PeriodicTask.objects.filter(task="watcher.prune_command_history").update(enabled=False)
    count = PeriodicTask.objects.count()
    ensure_schedules()
    assert PeriodicTask.objects.count() == count
    assert PeriodicTask.objects.get(task="watcher.generate_daily_tasks").crontab.hour == "22"
    assert not PeriodicTask.objects.get(task="watcher.prune_command_history").enabled
