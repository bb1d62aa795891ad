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


@shared_task(name="office.announce_reporters", expires=300)
def announce_reporters() -> None:
    """The worker is up: the agents it speaks for are idle (run in a pool process)."""
    watcher_agents.announce_watcher_reporters()


def announce_on_worker_ready(**kwargs: object) -> None:
    """Celery's ``worker_ready`` (the main process): queue the announcement for a pool process,
    so that the main process, which forks new pool processes, opens no database connection."""
    announce_reporters.delay()
