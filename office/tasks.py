"""Celery tasks of the Office (thin; each expires before its next run)."""

from __future__ import annotations

from celery import shared_task

from office import watcher_agents
from office.reporter import registry


@shared_task(name="office.heartbeat", expires=55)
def heartbeat() -> int:
    """Heartbeat every reporter registered in this worker."""
    return registry.heartbeat_all()


@shared_task(name="office.report_watcher_work", expires=55)
def report_watcher_work() -> None:
    """The watcher's price monitor and competitor scan report tonight's progress."""
    watcher_agents.report_watcher_work()
