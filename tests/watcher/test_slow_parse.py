"""Reports for a marketplace parsed by an LLM are settled in a worker, not in the request."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from celery.signals import before_task_publish
from django.contrib import messages
from django.utils import timezone

from parser.models import BackendRoute
from parser.services import clear_route_cache
from tests.factories import TaskFactory
from tests.watcher.pages import WB_PAGE
from watcher.models import PriceHistory, Task, TaskOutcome, TaskReport, TaskStatus
from watcher.services import queues, semaphore
from watcher.services.redis import get_redis
from watcher.services.results import reparse_report, resume_stalled_parses

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/watcher"


@pytest.fixture
def llm_route():
    # An LLM route with no upstream configured: the parse falls back to the rules result,
    # which is all these tests need; the upstream protocols are tested in tests/parser.
    BackendRoute.objects.create(marketplace="wildberries", backend="solve")
    clear_route_cache()
    yield
    clear_route_cache()


def claim_and_report(agent, text: str = WB_PAGE):
    task = TaskFactory()
    queues.push([(str(task.pk), task.marketplace, 0)])
    claimed = agent.client.get(f"{API}/tasks/next").json()
    body = {"raw_text": text, "timing_ms": 900, "success": True, "error": None}
    response = agent.client.post(f"{API}/tasks/{claimed['id']}/report", body, format="json")
    return task, response


def test_a_slow_backend_defers_parsing_to_a_worker(agent, llm_route) -> None:
    task, response = claim_and_report(agent)
    assert response.status_code == 200
    assert response.json()["status"] == "parsing"
    task.refresh_from_db()
    assert task.status == TaskStatus.PARSING
    assert not PriceHistory.objects.exists()
    # The agent is done with the page: its IP is free for the next one at once.
    assert not semaphore.is_locked("127.0.0.1", "wildberries.ru")
    # The worker's job, run here directly.
    reparse_report(TaskReport.objects.get(task=task).pk, only_pending=True)
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED and task.outcome == TaskOutcome.OK
    price = PriceHistory.objects.get(task=task)
    assert price.current_price == 1299
    # Running it again (a redelivered message) changes nothing: not even a second parse.
    reparse_report(TaskReport.objects.get(task=task).pk, only_pending=True)
    assert PriceHistory.objects.get(task=task).parsed_at == price.parsed_at


def test_the_report_enqueues_the_parse_on_commit(agent, llm_route, celery_eager) -> None:
    task, response = claim_and_report(agent)
    assert response.status_code == 200
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED


def test_a_lost_parse_message_is_resumed(agent, llm_route, celery_eager) -> None:
    from config.celery import app

    app.conf.CELERY_TASK_ALWAYS_EAGER = False  # the first message is "lost" in the broker
    task, _ = claim_and_report(agent)
    get_redis().flushdb()
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - dt.timedelta(1))
    app.conf.CELERY_TASK_ALWAYS_EAGER = True
    assert resume_stalled_parses() == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED


def test_reparsing_a_finished_task_replaces_its_result(agent) -> None:
    task, _ = claim_and_report(agent, text="%%% nothing here %%%")
    task.refresh_from_db()
    assert task.status == TaskStatus.PARSE_ERROR
    report = TaskReport.objects.get(task=task)
    TaskReport.objects.filter(pk=report.pk).update(raw_text=WB_PAGE)  # e.g. a fixed capture
    reparse_report(report.pk, backend="rules")
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert PriceHistory.objects.get(task=task).old_price == 2600


def test_the_admin_reparse_action_reparses_selected_tasks(agent, admin_client, celery_eager):
    task, _ = claim_and_report(agent, text="%%% nothing here %%%")
    pending = TaskFactory()
    report = TaskReport.objects.get(task=task)
    TaskReport.objects.filter(pk=report.pk).update(raw_text=WB_PAGE)
    response = admin_client.post(
        "/admin/watcher/task/",
        {"action": "reparse_rules", "_selected_action": [str(task.pk), str(pending.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    (message,) = response.context["messages"]
    assert message.level == messages.SUCCESS and "1" in str(message)
    task.refresh_from_db()
    pending.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert pending.status == TaskStatus.PENDING  # nothing to re-parse: skipped, unchanged
    assert PriceHistory.objects.get(task=task).parser_backend == "rules"


def test_reparse_reports_calls_the_watcher_service_and_resumes_after_a_network_error(
    monkeypatch,
) -> None:
    from watcher.services import results
    from watcher.tasks import reparse_reports

    calls: list[tuple[int, str | None]] = []
    failures = iter([httpx.ConnectError("down")])

    def reparse_report(report_id: int, backend: str | None = None, **_: object) -> None:
        calls.append((report_id, backend))
        if report_id == 2 and (error := next(failures, None)):
            raise error

    monkeypatch.setattr(results, "reparse_report", reparse_report)
    reparse_reports.apply(args=([1, 2, 3], "openai"))

    assert calls == [(1, "openai"), (2, "openai"), (2, "openai"), (3, "openai")]


def test_parses_are_sent_to_the_slow_queue() -> None:
    from watcher.tasks import reparse_reports

    sent: list[tuple[str, str]] = []

    def record(sender: str, routing_key: str, **kwargs: object) -> None:
        sent.append((sender, routing_key))

    before_task_publish.connect(record)
    try:
        reparse_reports.delay([1])
    finally:
        before_task_publish.disconnect(record)
    assert sent == [("watcher.reparse_reports", "slow")]


def test_a_message_queued_under_the_parsers_old_task_name_is_still_parsed(
    monkeypatch, celery_eager
) -> None:
    from config.celery import app
    from watcher.services import results

    calls: list[tuple[int, str | None]] = []
    monkeypatch.setattr(results, "reparse_report", lambda *args, **_: calls.append(args))
    app.tasks["parser.tasks.reparse_reports"].apply(args=([4, 5], "rules"))
    assert calls == [(4, "rules"), (5, "rules")]
