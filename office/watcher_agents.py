"""The watcher's virtual employees report to the Office.

``watcher_night_agent`` reports around each night's generation (the watcher's
``night_generation`` signal, connected in ``OfficeConfig.ready``); ``watcher_price_monitor``
and ``watcher_competitor_scan`` report what the latest night's tasks are doing, from the
periodic ``office.report_watcher_work`` task. Errors are reported as ``error``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from office.reporter import OfficeReporter, registry
from office.services.dashboard import known_name
from watcher.models import PriceHistory, Task, TaskStatus
from watcher.services import stats

log = logging.getLogger(__name__)


def _reporter(agent_id: str) -> OfficeReporter:
    return OfficeReporter(agent_id, "watcher", known_name(agent_id))


def night_agent() -> OfficeReporter:
    return _reporter("watcher_night_agent")


def price_monitor() -> OfficeReporter:
    return _reporter("watcher_price_monitor")


def competitor_scan() -> OfficeReporter:
    return _reporter("watcher_competitor_scan")


# A night whose finished tasks failed more often than this is reported as a warning.
WARNING_FAILURE_RATE = 0.2
WARNING_MIN_FINISHED = 10
_FAILED = (TaskStatus.FAILED, TaskStatus.PARSE_ERROR)


def register_watcher_reporters(**kwargs: Any) -> None:
    """A Celery worker speaks for the watcher's agents (Celery's ``worker_init``)."""
    for reporter in (night_agent(), price_monitor(), competitor_scan()):
        registry.register(reporter)


def announce_watcher_reporters(**kwargs: Any) -> None:
    """The worker is up (``office.announce_reporters``): the agents it speaks for are idle."""
    for reporter in registry.reporters():
        if reporter.identity.department == "watcher":
            reporter.report_idle()


def on_night_generation(sender: Any, stage: str, day: dt.date, **kwargs: Any) -> None:
    """Receiver of ``watcher.signals.night_generation``."""
    reporter = night_agent()
    if stage == "started":
        reporter.report_working(_("Generating the tasks of the night of %(day)s") % {"day": day})
    elif stage == "finished":
        result = kwargs["result"]
        reporter.report_idle(
            {
                "night": day.isoformat(),
                "tasks_created": result.total_created,
                "tasks_expired": result.expired,
                "tasks_queued": sum(result.queued.values()),
            }
        )
        report_competitor_scan()  # tonight's competitor tasks are waiting now
    elif stage == "failed":
        reporter.report_error(str(kwargs.get("error") or "?"))


def _failing(done: int, failed: int) -> bool:
    finished = done + failed
    return finished >= WARNING_MIN_FINISHED and failed / finished > WARNING_FAILURE_RATE


def report_price_monitor(now: dt.datetime | None = None) -> None:
    """Tasks done and queued tonight, and prices recorded today, from the watcher's statistics."""
    now = now or timezone.now()
    reporter = price_monitor()
    try:
        s = stats.task_stats(now)
        start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        prices = PriceHistory.objects.filter(parsed_at__gte=start).count()
    except Exception as exc:
        log.exception("office: price monitor snapshot failed")
        reporter.report_error(str(exc))
        return
    done, failed = s["total_completed_today"], s["total_failed_today"]
    queued, running = s["total_queued"], s["total_in_progress"]
    metrics = {
        "tasks_done": done,
        "tasks_failed": failed,
        "tasks_queued": queued,
        "tasks_in_progress": running,
        "prices_recorded": prices,
    }
    total = done + failed + queued + running
    task = _("Checking prices: %(done)s of %(total)s tasks done") % {"done": done, "total": total}
    if _failing(done, failed):
        reporter.report_warning(
            _("Many failed tasks: %(failed)s of %(finished)s")
            % {"failed": failed, "finished": done + failed},
            metrics,
        )
    elif queued or running:
        reporter.report_working(task, metrics)
    else:
        reporter.report_idle(metrics)


def report_competitor_scan() -> None:
    """The latest night's competitor tasks: checked, failed, still to do."""
    reporter = competitor_scan()
    try:
        night = Task.objects.aggregate(night=Max("scheduled_date"))["night"]
        tasks = Task.objects.filter(scheduled_date=night, competitor__isnull=False)
        c = tasks.aggregate(
            done=Count("pk", filter=Q(status=TaskStatus.COMPLETED)),
            failed=Count("pk", filter=Q(status__in=_FAILED)),
            todo=Count(
                "pk",
                filter=Q(
                    status__in=(TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.PARSING)
                ),
            ),
        )
    except Exception as exc:
        log.exception("office: competitor scan snapshot failed")
        reporter.report_error(str(exc))
        return
    metrics = {
        "night": night.isoformat() if night else None,
        "competitors_checked": c["done"],
        "competitors_failed": c["failed"],
        "competitors_left": c["todo"],
    }
    if _failing(c["done"], c["failed"]):
        reporter.report_warning(
            _("Many competitor pages failed: %(failed)s of %(finished)s")
            % {"failed": c["failed"], "finished": c["done"] + c["failed"]},
            metrics,
        )
    elif c["todo"]:
        total = c["done"] + c["failed"] + c["todo"]
        reporter.report_working(
            _("Checking competitors: %(done)s of %(total)s") % {"done": c["done"], "total": total},
            metrics,
        )
    else:
        reporter.report_idle(metrics)


def report_watcher_work() -> None:
    report_price_monitor()
    report_competitor_scan()
