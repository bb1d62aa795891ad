"""Periodic tasks and staff groups, created once after migrate and editable in admin."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ROLE_GROUPS = ("admin", "manager", "senior", "director")


def generation_time() -> tuple[int, int]:
    value = settings.WATCHER_TASK_GENERATION_TIME
    try:
        hour, minute = (int(part) for part in value.split(":"))
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"WATCHER_TASK_GENERATION_TIME must be HH:MM, got {value!r}"
        ) from exc
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ImproperlyConfigured(f"WATCHER_TASK_GENERATION_TIME out of range: {value!r}")
    return hour, minute


def ensure_schedules(**kwargs: Any) -> None:
    """Create the periodic tasks if missing; an operator's later edits are kept."""
    from django.contrib.auth.models import Group
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)
    hour, minute = generation_time()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(minute),
        hour=str(hour),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name="watcher: generate nightly tasks",
        defaults={
            "task": "watcher.generate_daily_tasks",
            "crontab": crontab,
            "kwargs": json.dumps({}),
            "description": "Builds tonight's scraping tasks and fills the ready queues.",
        },
    )
    minute_interval, _ = IntervalSchedule.objects.get_or_create(
        every=60, period=IntervalSchedule.SECONDS
    )
    for name, task in (
        ("watcher: reap expired leases", "watcher.reap_expired_leases"),
        ("watcher: mark silent agents offline", "watcher.mark_offline_agents"),
    ):
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": minute_interval}
        )
    ten_seconds, _ = IntervalSchedule.objects.get_or_create(
        every=10, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.get_or_create(
        name="watcher: re-send unacknowledged commands",
        defaults={
            "task": "watcher.resend_commands",
            "interval": ten_seconds,
            "description": "Re-sends commands agents have not acknowledged; times out old ones.",
        },
    )
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.get_or_create(
        name="watcher: prune command history",
        defaults={
            "task": "watcher.prune_command_history",
            "interval": hourly,
            "description": "Keeps the last 100 finished commands of each agent.",
        },
    )
