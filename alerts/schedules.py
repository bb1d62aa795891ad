"""The alerts app's periodic tasks, created once after migrate and editable in admin."""

from __future__ import annotations

from typing import Any

from config.roles import ANALYST


def ensure_analyst_view() -> None:
    """Analysts see alerts in the admin (the comparison chart links to them); their group gets
    the view permission only, so they cannot acknowledge, resolve or mute one."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=ANALYST)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="alerts", codename="view_alert")
    )


def ensure_schedules(**kwargs: Any) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    ensure_analyst_view()

    for name, task, minutes, description in (
        (
            "alerts: silence rules",
            "alerts.check_silence",
            60,
            "Opens and resolves the alerts of SKUs without a price for N nights and of nights "
            "unfinished by their deadline.",
        ),
        (
            "alerts: queued checks",
            "alerts.check_pending",
            5,
            "Checks observations still waiting in the alert queue if the task sent for them "
            "was lost (normally each is checked within seconds).",
        ),
        (
            "alerts: held alerts",
            "alerts.review_holds",
            10,
            "Releases (or drops) the alerts held while agents were offline or the night was "
            "unfinished, once the cause has cleared.",
        ),
        (
            "alerts: morning digest",
            "alerts.send_digests",
            15,
            "Sends the alerts held during quiet hours, one message per recipient.",
        ),
    ):
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=minutes, period=IntervalSchedule.MINUTES
        )
        PeriodicTask.objects.get_or_create(
            name=name,
            defaults={
                "task": task,
                "interval": interval,
                "description": description,
                # A run not started before the next one is due is dropped, not stacked.
                "expire_seconds": minutes * 60 - 60,
            },
        )
