"""The watcher's virtual employees report to the Office during a generated night."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from office import tasks as office_tasks
from office.models import OfficeAgentStatus, OfficeStatus
from office.reporter import registry
from tests.watcher.pages import WB_PAGE
from watcher.models import Task, TaskStatus
from watcher.services import generator

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"


def row(agent_id: str) -> OfficeAgentStatus:
    return OfficeAgentStatus.objects.get(agent_id=agent_id)


def work_one_task(handle, ok: bool = True) -> bool:
    response = handle.client.get(f"{API}/tasks/next")
    if response.status_code == 204:
        return False
    task = response.json()
    if ok:
        body = {"raw_text": WB_PAGE, "timing_ms": 2000, "success": True, "error": None}
    else:
        body = {"raw_text": "", "timing_ms": 30000, "success": False, "error": "timeout"}
    response = handle.client.post(f"{API}/tasks/{task['id']}/report", body, format="json")
    assert response.status_code == 200, response.content
    return True


def test_the_watchers_agents_report_through_a_night(make_agent) -> None:
    for agent_id in ("watcher_night_agent", "watcher_price_monitor", "watcher_competitor_scan"):
        assert row(agent_id).status == OfficeStatus.OFFLINE  # known from day one
    call_command("load_demo")
    call_command("generate_tasks")
    total = Task.objects.count()
    competitors = Task.objects.filter(competitor__isnull=False).count()

    night = row("watcher_night_agent")
    assert (night.status, night.task) == (OfficeStatus.OK, "")
    assert night.metrics["tasks_created"] == total
    assert night.metrics["tasks_queued"] == total
    scan = row("watcher_competitor_scan")
    assert scan.status == OfficeStatus.OK and scan.task  # working on tonight's competitors
    assert scan.metrics["competitors_left"] == competitors

    handle = make_agent("modem-1")
    handle.client.post(
        f"{API}/agents/heartbeat", {"status": "ready", "ip": "10.0.0.1"}, format="json"
    )
    for _ in range(3):
        assert work_one_task(handle)
    office_tasks.report_watcher_work()  # the periodic task, called inline
    monitor = row("watcher_price_monitor")
    assert monitor.status == OfficeStatus.OK
    assert monitor.task  # "checking prices: 3 of N"
    assert monitor.metrics["tasks_done"] == 3
    assert monitor.metrics["tasks_queued"] == total - 3
    assert monitor.metrics["prices_recorded"] == 3

    while work_one_task(handle):
        pass
    office_tasks.report_watcher_work()
    monitor, scan = row("watcher_price_monitor"), row("watcher_competitor_scan")
    assert (monitor.status, monitor.task, monitor.metrics["tasks_queued"]) == ("ok", "", 0)
    assert (scan.status, scan.task) == ("ok", "")
    assert scan.metrics["competitors_checked"] == competitors
    assert scan.metrics["competitors_left"] == 0


def test_many_failures_are_a_warning(make_agent) -> None:
    call_command("load_demo")
    call_command("generate_tasks")
    handle = make_agent("modem-2")
    handle.client.post(
        f"{API}/agents/heartbeat", {"status": "ready", "ip": "10.0.0.2"}, format="json"
    )
    while work_one_task(handle, ok=False):
        pass
    # Failed tasks may be retried; give up on the rest for this test.
    Task.objects.exclude(status__in=[TaskStatus.COMPLETED]).update(status=TaskStatus.FAILED)
    office_tasks.report_watcher_work()
    assert row("watcher_price_monitor").status == OfficeStatus.WARNING
    assert "14" in row("watcher_price_monitor").task
    # 8 competitor pages are too few to call it a trend (at least 10 finished).
    scan = row("watcher_competitor_scan")
    assert (scan.status, scan.metrics["competitors_failed"]) == (OfficeStatus.OK, 8)


def test_a_failed_generation_is_an_error(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("queue unreachable")

    monkeypatch.setattr(generator.lifecycle, "expire", broken)
    with pytest.raises(RuntimeError):
        generator.generate_tasks()
    night = row("watcher_night_agent")
    assert (night.status, night.task) == (OfficeStatus.ERROR, "Ошибка: queue unreachable")


def test_an_office_failure_never_breaks_the_night(monkeypatch) -> None:
    """The Office sits on top: if its report fails, the watcher's generation still runs."""
    from office.services import status

    def broken(*args, **kwargs):
        raise RuntimeError("office down")

    monkeypatch.setattr(status, "record_status", broken)
    call_command("load_demo")
    result = generator.generate_tasks()
    assert result.total_created == Task.objects.count() > 0
    connection.close()


def test_a_worker_speaks_for_the_watchers_agents(celery_eager) -> None:
    """Celery's worker_init registers them, worker_ready announces them idle, the periodic
    heartbeat keeps them fresh and worker_shutdown takes them offline."""
    from celery.signals import worker_ready, worker_shutdown

    from office.watcher_agents import register_watcher_reporters

    # Called directly: sending worker_init would also run Celery's Django fixup, which wants a
    # real worker as the sender.
    register_watcher_reporters()
    assert {r.agent_id for r in registry.reporters()} == {
        "watcher_night_agent",
        "watcher_price_monitor",
        "watcher_competitor_scan",
    }
    worker_ready.send(sender=None)  # queues office.announce_reporters (run inline here)
    assert row("watcher_night_agent").status == OfficeStatus.OK
    before = row("watcher_price_monitor").last_activity
    assert office_tasks.heartbeat() == 3
    assert row("watcher_price_monitor").last_activity > before
    worker_shutdown.send(sender=None)
    assert row("watcher_competitor_scan").status == OfficeStatus.OFFLINE
    assert registry.reporters() == []
