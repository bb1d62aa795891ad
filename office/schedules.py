"""Created once after migrate: the Office's periodic tasks and the known agents (as offline)."""

from __future__ import annotations

from typing import Any

from office.services.dashboard import ensure_known_agents


def ensure_schedules(**kwargs: Any) -> None:
    """Create the periodic tasks if missing; an operator's later edits are kept."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_minute, _ = IntervalSchedule.objects.get_or_create(
        every=60, period=IntervalSchedule.SECONDS
    )
    for name, task, description in (
        (
            "office: heartbeat reporters",
            "office.heartbeat",
            "Keeps the agents a worker speaks for fresh on the Office dashboard.",
        ),
        (
            "office: watcher agents report",
            "office.report_watcher_work",
            "The price monitor and the competitor scan report tonight's progress.",
        ),
    ):
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": every_minute, "description": description}
        )


def after_migrate(**kwargs: Any) -> None:
    ensure_schedules(**kwargs)
    ensure_known_agents(**kwargs)
