"""OfficeReporter: each method is one atomic upsert of the agent's row (SPEC §10)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.utils import timezone

from office.models import OfficeAgentStatus, OfficeStatus
from office.reporter import OfficeReporter, ReporterRegistry

ROOT = Path(__file__).resolve().parents[2]


def stored(agent_id: str = "rep_1") -> OfficeAgentStatus:
    return OfficeAgentStatus.objects.get(agent_id=agent_id)


@pytest.fixture
def reporter(db: None) -> OfficeReporter:
    return OfficeReporter(
        "rep_1", "reputation", "Отзывы", brand="acme", salary_equivalent=80_000, fte_coefficient=0.5
    )


def test_it_creates_the_row_when_working(reporter: OfficeReporter) -> None:
    reporter.report_working("Отвечаю на отзывы", {"answered": 3})
    row = stored()
    assert (row.status, row.task, row.metrics) == (
        OfficeStatus.OK,
        "Отвечаю на отзывы",
        {"answered": 3},
    )
    assert (row.department, row.name, row.brand) == ("reputation", "Отзывы", "acme")
    assert (row.salary_equivalent, row.fte_coefficient) == (80_000, Decimal("0.50"))
    assert timezone.now() - row.last_activity < dt.timedelta(seconds=5)


def test_idle_is_ok_without_a_task(reporter: OfficeReporter) -> None:
    reporter.report_working("something", {"a": 1})
    reporter.report_idle({"b": 2})
    row = stored()
    assert (row.status, row.task, row.metrics) == (OfficeStatus.OK, "", {"b": 2})


def test_warning_keeps_the_task(reporter: OfficeReporter) -> None:
    reporter.report_warning("Медленно отвечает API", {"latency_ms": 900})
    row = stored()
    assert (row.status, row.task, row.metrics) == (
        OfficeStatus.WARNING,
        "Медленно отвечает API",
        {"latency_ms": 900},
    )


def test_error_says_what_went_wrong(reporter: OfficeReporter) -> None:
    reporter.report_error("нет доступа к API")
    row = stored()
    assert (row.status, row.task) == (OfficeStatus.ERROR, "Ошибка: нет доступа к API")


def test_offline_clears_the_task(reporter: OfficeReporter) -> None:
    reporter.report_working("x", {"n": 1})
    reporter.report_offline()
    row = stored()
    assert (row.status, row.task) == (OfficeStatus.OFFLINE, "")
    assert row.metrics == {"n": 1}  # what it last reported stays readable


def test_heartbeat_touches_only_the_last_activity(reporter: OfficeReporter) -> None:
    reporter.report_warning("slow", {"n": 1})
    old = timezone.now() - dt.timedelta(minutes=10)
    OfficeAgentStatus.objects.filter(agent_id="rep_1").update(last_activity=old, name="Renamed")
    reporter.heartbeat()
    row = stored()
    assert row.last_activity > old
    assert (row.status, row.task, row.metrics, row.name) == (
        OfficeStatus.WARNING,
        "slow",
        {"n": 1},
        "Renamed",
    )


def test_metrics_left_out_keep_the_stored_ones(reporter: OfficeReporter) -> None:
    reporter.report_working("a", {"n": 1})
    reporter.report_working("b")
    assert stored().metrics == {"n": 1}


def test_a_long_task_is_cut_to_the_column(reporter: OfficeReporter) -> None:
    reporter.report_working("x" * 400)
    assert len(stored().task) == 255


def test_reports_keep_created_at(reporter: OfficeReporter) -> None:
    reporter.report_idle()
    created = stored().created_at
    reporter.report_working("later")
    assert stored().created_at == created


@pytest.mark.django_db(transaction=True)
async def test_async_methods_report_too() -> None:
    reporter = OfficeReporter("async_1", "scout", "Разведчик")
    await reporter.areport_working("ищу нишу", {"found": 2})
    await reporter.aheartbeat()
    await reporter.areport_warning("медленно")
    await reporter.areport_error("упал")
    row = await database_sync_to_async(stored)("async_1")
    assert (row.status, row.task) == (OfficeStatus.ERROR, "Ошибка: упал")
    await reporter.areport_idle()
    row = await reporter.areport_offline()
    assert row.status == OfficeStatus.OFFLINE


def test_the_registry_heartbeats_and_takes_its_own_reporters_offline(db: None) -> None:
    registry = ReporterRegistry()
    a = registry.register(OfficeReporter("reg_a", "cfo", "A"))
    b = registry.register(OfficeReporter("reg_b", "cfo", "B"))
    a.report_working("counting")
    assert registry.heartbeat_all() == 2
    assert stored("reg_b").status == OfficeStatus.OK  # a first heartbeat creates the row
    assert registry.offline_all() == 2
    assert {r.status for r in OfficeAgentStatus.objects.filter(department="cfo")} == {"offline"}
    assert registry.reporters() == []
    assert b not in registry.reporters()


def test_a_forked_child_does_not_take_its_parents_agents_offline(db: None, monkeypatch) -> None:
    """A Celery pool process inherits the registry; only the registering process reports
    offline (a recycled child must not)."""
    registry = ReporterRegistry()
    registry.register(OfficeReporter("reg_c", "cfo", "C")).report_idle()
    child_pid = os.getpid() + 1
    monkeypatch.setattr(os, "getpid", lambda: child_pid)  # as in a forked child
    assert registry.offline_all() == 0
    assert stored("reg_c").status == OfficeStatus.OK
    assert registry.heartbeat_all() == 1  # the child still heartbeats


# --- Real concurrency ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_threads_reporting_for_the_same_agent_at_once_all_succeed() -> None:
    """16 threads, each with its own connection, upsert one new agent's row at the same time:
    no IntegrityError, one row, and it holds one of the writes."""
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        reporter = OfficeReporter("race_1", "marketing", "Реклама")
        try:
            start.wait(10)
            for i in range(20):
                if i % 3 == 0:
                    reporter.heartbeat()
                else:
                    reporter.report_working(f"t{n}-{i}", {"n": n})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    row = stored("race_1")
    assert OfficeAgentStatus.objects.filter(agent_id="race_1").count() == 1
    assert row.task.startswith("t") and row.metrics["n"] == int(row.task[1:].split("-")[0])


PROCESS_SCRIPT = """
import os, sys, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from office.reporter import OfficeReporter
n = int(sys.argv[1])
sys.stdin.readline()  # start together
for i in range(30):
    OfficeReporter("race_p", "lex", "Юрист").report_working(f"p{n}-{i}", {"n": n})
    OfficeReporter(f"own_{n}", "lex", "Юрист").report_idle({"i": i})
print("done")
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_processes_reporting_at_once_all_succeed() -> None:
    from tests.e2e.servers import server_env

    env = server_env()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS_SCRIPT, str(n)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "done" in out
    assert OfficeAgentStatus.objects.filter(agent_id="race_p").count() == 1
    assert stored("race_p").task.endswith("-29")
    assert OfficeAgentStatus.objects.filter(agent_id__startswith="own_").count() == 3
