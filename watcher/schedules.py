"""Periodic tasks and staff groups, created once after migrate and editable in admin."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.roles import ANALYST, STAFF_ROLES

# What the analyst group may see in the admin; it gets no add, change or delete permission.
ANALYST_VIEWS = ("subscription", "competitor", "task", "taskreport", "pricehistory")


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


def ensure_analyst_group() -> None:
    """The ``analyst`` group with view permissions only (ones an operator removed come back)."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=ANALYST)
    codenames = [f"view_{model}" for model in ANALYST_VIEWS]
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="watcher", codename__in=codenames)
    )


def ensure_schedules(**kwargs: Any) -> None:
    """Create the periodic tasks if missing; an operator's later edits are kept."""
    from django.contrib.auth.models import Group
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    for name in STAFF_ROLES:
        Group.objects.get_or_create(name=name)
    ensure_analyst_group()
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
    seconds, hours = IntervalSchedule.SECONDS, IntervalSchedule.HOURS
    for name, task, every, period, description in (
        (
            "watcher: reap expired leases",
            "watcher.reap_expired_leases",
            60,
            seconds,
            "Puts the tasks of agents that stopped reporting back in the queue.",
        ),
        (
            "watcher: mark silent agents offline",
            "watcher.mark_offline_agents",
            60,
            seconds,
            "Marks agents without a recent heartbeat offline and tells the admins.",
        ),
        (
            "watcher: re-send unacknowledged commands",
            "watcher.resend_commands",
            10,
            seconds,
            "Re-sends commands agents have not acknowledged; times out old ones.",
        ),
        (
            "watcher: prune command history",
            "watcher.prune_command_history",
            1,
            hours,
            "Keeps the last 100 finished commands of each agent.",
        ),
    ):
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": interval, "description": description}
        )
