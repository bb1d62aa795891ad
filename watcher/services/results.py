"""Result handling (SPEC §6): reports are durable, idempotent and fenced by the lease."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alerts.services import check_observation
from parser.services import is_slow_backend, parse_with
from parser.types import ParsedCard, ParseError, ParseErrorCode
from watcher.models import (
    Agent,
    PriceHistory,
    Task,
    TaskOutcome,
    TaskReport,
    TaskStatus,
)
from watcher.services import agents, lifecycle
from watcher.services.errors import Conflict, Forbidden, NotFound

log = logging.getLogger(__name__)

_LEASE_EXPIRED = _("The lease of this task has expired; the report was not recorded")


@dataclass(frozen=True)
class ReportInput:
    raw_text: str
    timing_ms: int
    success: bool
    error: str | None
    lease_version: int | None = None
    screenshot: bytes | None = None  # a browser agent's evidence (JPEG or PNG)


@dataclass(frozen=True)
class ReportResult:
    task_id: str
    status: str
    outcome: str
    duplicate: bool = False
    price_history_id: int | None = None
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "status": self.status,
            "outcome": self.outcome,
            "duplicate": self.duplicate,
            "price_history_id": self.price_history_id,
            "error": self.error,
        }


def _result(
    task: Task, report: TaskReport, duplicate: bool, price: PriceHistory | None = None
) -> ReportResult:
    if duplicate:
        price_id = PriceHistory.objects.filter(task=task).values_list("pk", flat=True).first()
    else:
        price_id = price.pk if price is not None else None
    return ReportResult(
        task_id=str(task.pk),
        status=task.status,
        outcome=report.outcome,
        duplicate=duplicate,
        price_history_id=price_id,
        error=task.error,
    )


def submit_report(agent: Agent, task_id: str, data: ReportInput, ip: str | None) -> ReportResult:
    """Record an agent's report of a task and settle the task.

    Idempotent: the same report posted again answers as the first did and writes nothing.
    Fenced: a report from a lease that has expired (or was never this agent's) changes nothing.
    """
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None:
            raise NotFound(_("Unknown task"))
        attempt = data.lease_version
        if attempt is None and task.agent_id == agent.pk:
            attempt = task.lease_version
        fresh = (
            task.status == TaskStatus.IN_PROGRESS
            and task.agent_id == agent.pk
            and attempt == task.lease_version
        )
        if not fresh:
            # A running lease has no report yet (a report settles it), so only a report that
            # is not for the running lease can be a repeat.
            earlier = TaskReport.objects.filter(task=task, agent=agent)
            earlier = earlier.filter(attempt=attempt) if attempt is not None else earlier
            if (previous := earlier.order_by("-attempt").first()) is not None:
                return _result(task, previous, duplicate=True)
            if task.agent_id is not None and task.agent_id != agent.pk:
                raise Forbidden(_("This task is assigned to another agent"))
            raise Conflict(_LEASE_EXPIRED)
        # Slow (LLM) backends parse in a worker so the agent's request does not wait on them;
        # the rules parse here, before the report is written, so it is written once.
        slow = data.success and is_slow_backend(task.marketplace)
        parsed: ParsedCard | ParseError | None = None
        if data.success and not slow:
            parsed = parse_or_error(None, data.raw_text, task.marketplace, task.sku, str(task.pk))
        report = TaskReport.objects.create(
            task=task,
            agent=agent,
            attempt=task.lease_version,
            success=data.success,
            raw_text=data.raw_text,
            timing_ms=data.timing_ms,
            error=data.error or "",
            ip=ip,
            outcome=_outcome_of(parsed) if data.success else TaskOutcome.AGENT_ERROR,
            screenshot=data.screenshot,
        )
        price = None
        if not data.success:
            _settle_failure(task, report, data.error or "agent reported a failure")
        elif parsed is None:
            _await_parse(task, report)
        else:
            price = _parse_and_settle(task, report, parsed)
        if agent.current_task_id == task.pk:
            # The agent's heartbeat named this task; it is done with it now.
            Agent.objects.filter(pk=agent.pk, current_task=task).update(current_task=None)
        _count_result(task, report)
        return _result(task, report, duplicate=False, price=price)


def _outcome_of(parsed: ParsedCard | ParseError | None) -> str:
    if parsed is None:
        return ""
    if isinstance(parsed, ParseError):
        return {
            ParseErrorCode.BLOCKED: TaskOutcome.BLOCKED,
            ParseErrorCode.NOT_FOUND: TaskOutcome.NOT_FOUND,
        }.get(parsed.code, TaskOutcome.PARSE_FAILED)
    return TaskOutcome.OK if parsed.current_price is not None else TaskOutcome.OUT_OF_STOCK


def _await_parse(task: Task, report: TaskReport) -> None:
    from watcher.tasks import reparse_reports

    deadline = timezone.now() + dt.timedelta(seconds=settings.WATCHER_PARSE_TIMEOUT)
    if not lifecycle.park(task, deadline):
        raise Conflict(_LEASE_EXPIRED)
    transaction.on_commit(lambda: reparse_reports.delay([report.pk], only_pending=True))


def _parse_and_settle(
    task: Task, report: TaskReport, parsed: ParsedCard | ParseError, *, replace: bool = False
) -> PriceHistory | None:
    if isinstance(parsed, ParseError):
        _settle_parse_error(task, report, parsed)
        return None
    return record_observation(task, report, parsed, replace=replace)


def parse_or_error(
    backend: str | None, raw_text: str, marketplace: str, sku: str, task_id: str
) -> ParsedCard | ParseError:
    try:
        return parse_with(backend, raw_text, marketplace, sku, task_id=task_id)
    except ParseError as exc:
        return exc


def reparse_report(
    report_id: int, backend: str | None = None, *, only_pending: bool = False
) -> None:
    """Parse a stored report (again) and settle its task from the result.

    Two uses: the slow-backend path (``only_pending``: the task waits in ``parsing`` until this
    runs in a worker) and operators re-parsing finished tasks with a chosen backend. The parse
    runs outside any transaction (an LLM call can take minutes); settling is conditional on the
    report still being the task's latest attempt, so a repeat or a late run changes nothing.
    """
    report = TaskReport.objects.filter(pk=report_id, success=True).select_related("task").first()
    if report is None:
        return
    if only_pending and report.task.status != TaskStatus.PARSING:
        # A redelivered message (its worker was killed after settling, or the reaper resent it):
        # the task has its result; another LLM call would only replace it.
        return
    task = report.task
    parsed = parse_or_error(backend, report.raw_text, task.marketplace, task.sku, str(task.pk))
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=report.task_id)
        if task.lease_version != report.attempt:
            return  # a newer attempt has superseded this report
        if task.status == TaskStatus.PARSING:
            _parse_and_settle(task, report, parsed)
            _count_result(task, report)
        elif task.status in (TaskStatus.COMPLETED, TaskStatus.PARSE_ERROR, TaskStatus.FAILED):
            _reparse_finished(task, report, parsed)


def _reparse_finished(task: Task, report: TaskReport, parsed: ParsedCard | ParseError) -> None:
    """An operator's re-parse of a finished task: the new result replaces the old one."""
    if isinstance(parsed, ParseError):
        PriceHistory.objects.filter(task=task).delete()
        status = (
            TaskStatus.FAILED if parsed.code == ParseErrorCode.NOT_FOUND else TaskStatus.PARSE_ERROR
        )
        outcome = {
            ParseErrorCode.NOT_FOUND: TaskOutcome.NOT_FOUND,
            ParseErrorCode.BLOCKED: TaskOutcome.BLOCKED,
        }.get(parsed.code, TaskOutcome.PARSE_FAILED)
        _settle(task, report, status, outcome, parsed.message, reparse=True)
    else:
        record_observation(task, report, parsed, replace=True)


def _count_result(task: Task, report: TaskReport) -> None:
    """After commit, count the agent's result once the task has one."""
    if task.status == TaskStatus.PARSING or report.agent_id is None:
        return
    ok = task.status == TaskStatus.COMPLETED
    agent_id, timing = str(report.agent_id), report.timing_ms
    transaction.on_commit(
        lambda: agents.count_result(agent_id, ok=ok, timing_ms=timing if ok else None)
    )


def resume_stalled_parses(now: dt.datetime | None = None) -> int:
    """Re-enqueue parses whose worker message was lost (Redis is disposable)."""
    from watcher.tasks import reparse_reports

    now = now or timezone.now()
    deadline = now + dt.timedelta(seconds=settings.WATCHER_PARSE_TIMEOUT)
    count = 0
    for task in Task.objects.filter(status=TaskStatus.PARSING, lease_expires_at__lt=now):
        if lifecycle.resume_parse(task, now, deadline):
            report = TaskReport.objects.filter(task=task, attempt=task.lease_version).first()
            if report is not None:
                reparse_reports.delay([report.pk], only_pending=True)
                count += 1
    return count


def _settle(
    task: Task,
    report: TaskReport,
    status: str,
    outcome: str,
    error: str = "",
    *,
    count_retry: bool = False,
    reparse: bool = False,
) -> None:
    """Settle the task from ``report`` (``reparse``: replace a finished task's result)."""
    timing = report.timing_ms
    if reparse:
        moved = lifecycle.reparse(
            task, status, outcome=outcome, error=error, execution_time_ms=timing
        )
    else:
        moved = lifecycle.settle(
            task,
            status,
            outcome=outcome,
            error=error,
            execution_time_ms=timing,
            count_retry=count_retry,
        )
    # The callers hold the task's row lock and checked its lease, so this cannot lose; if it
    # ever did, the report must not be recorded either.
    if not moved:
        raise Conflict(_LEASE_EXPIRED)
    if report.outcome != outcome:
        TaskReport.objects.filter(pk=report.pk).update(outcome=outcome)
        report.outcome = outcome


def _settle_failure(task: Task, report: TaskReport, error: str, outcome: str = "") -> None:
    """A failed attempt: back to the queue below the retry limit, else ``failed``."""
    outcome = outcome or TaskOutcome.AGENT_ERROR
    status = lifecycle.failure_status(task.retry_count + 1)
    _settle(task, report, status, outcome, error, count_retry=True)


def _settle_parse_error(task: Task, report: TaskReport, exc: ParseError) -> None:
    if exc.code == ParseErrorCode.BLOCKED:
        # A captcha or an access-denied page: the page may open from another IP later.
        _settle_failure(task, report, exc.message, TaskOutcome.BLOCKED)
    elif exc.code == ParseErrorCode.NOT_FOUND:
        _settle(task, report, TaskStatus.FAILED, TaskOutcome.NOT_FOUND, exc.message)
    else:
        _settle(task, report, TaskStatus.PARSE_ERROR, TaskOutcome.PARSE_FAILED, exc.message)


def record_observation(
    task: Task, report: TaskReport, card: ParsedCard, *, replace: bool = False
) -> PriceHistory:
    """Store the observation, complete the task and run the alert engine after commit.

    ``replace`` (a re-parse) overwrites the task's earlier observation; a first report has
    none (the task row lock and the one-report-per-lease rule guarantee it).
    """
    observation = card.as_observation()
    observation["card_title"] = (observation["card_title"] or "")[:500]
    observation["card_description"] = observation["card_description"] or ""
    observation["seller_name"] = (observation["seller_name"] or "")[:200] or None
    values = {
        **observation,
        "sku": task.sku,
        "marketplace": task.marketplace,
        "brand": task.brand,
        "subscription_id": task.subscription_id,
        "competitor_id": task.competitor_id,
        "agent_id": report.agent_id,
        "ip": report.ip,
        "attempt": report.attempt,
        "parser_backend": card.backend,
        "parsed_at": timezone.now(),
    }
    if replace:
        price, _created = PriceHistory.objects.update_or_create(task=task, defaults=values)
    else:
        price = PriceHistory.objects.create(task=task, **values)
    outcome = TaskOutcome.OK if card.current_price is not None else TaskOutcome.OUT_OF_STOCK
    _settle(task, report, TaskStatus.COMPLETED, outcome, reparse=replace)
    check_observation(price.pk)
    return price
