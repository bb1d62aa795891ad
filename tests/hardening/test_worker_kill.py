"""Faults: a Celery worker killed (SIGKILL) in the middle of an LLM parse.

Real worker processes against the real Redis broker, a real (fake) LLM upstream on loopback
that holds the request while the worker is killed. Two kills of the same parse:

1. the pool process doing the parse: acks_late + reject_on_worker_lost hand the message back at
   once and the worker's next pool process parses again;
2. the whole worker (main process and pool): the message stays unacknowledged in Redis; the
   reaper resends the parse once its deadline (``WATCHER_PARSE_TIMEOUT``) has passed, another
   worker parses it, and the dead worker's message, handed out again after the visibility
   timeout, changes nothing.

Either way the report gives exactly one price row and the LLM is asked once per kill plus once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest
from django.utils import timezone

from parser.models import Backend, BackendRoute, LLMUpstream, UpstreamKind
from parser.services import clear_route_cache
from tests.e2e.servers import BASE_DIR, server_env
from tests.factories import TaskFactory
from tests.parser.upstreams import ok, serve, slow
from tests.watcher.pages import WB_PAGE
from watcher.models import PriceHistory, Task, TaskOutcome, TaskReport, TaskStatus
from watcher.services import queues
from watcher.services.results import resume_stalled_parses

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
API = "/api/v1/watcher"
ANSWER = {"title": "Плед флисовый", "current_price": 1299, "old_price": 2600, "in_stock": True}


def received(log: Path) -> int:
    """Messages of the parse task the worker has taken (its INFO line per message)."""
    lines = log.read_text().splitlines()
    return sum("Task watcher.reparse_reports[" in line and "received" in line for line in lines)


def start_worker(log_path: Path, **env: str) -> subprocess.Popen[bytes]:
    """A worker as the Procfile runs it, with one pool process (so its pid is the parser's)."""
    log = open(log_path, "wb")  # noqa: SIM115 - the child keeps it open
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,slow",
               "--concurrency", "1", "-l", "INFO", "-n", f"{log_path.stem}@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    environment = server_env(LOG_LEVEL="INFO", LOG_FORMAT="plain", **env)
    process = subprocess.Popen(
        command, cwd=BASE_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: one killpg ends main process and pool
    )  # fmt: skip
    log.close()
    return process


def pool_children(process: subprocess.Popen[bytes]) -> list[int]:
    path = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def wait_for(check: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_worker_killed_mid_parse_parses_again_into_one_price_row(
    agent, settings, tmp_path: Path
) -> None:
    settings.WATCHER_PARSE_TIMEOUT = 2  # the parse deadline the reaper waits for
    BackendRoute.objects.create(marketplace="wildberries", backend=Backend.SOLVE)
    clear_route_cache()
    # Two parses are held until their worker dies; the third is answered.
    with serve([slow(60, ok(ANSWER)), slow(60, ok(ANSWER)), ok(ANSWER)]) as (llm,):
        LLMUpstream.objects.create(
            name="solver", kind=UpstreamKind.SOLVE, base_url=llm.url, retries=0,
            connect_timeout=2, read_timeout=90,
        )  # fmt: skip
        task = TaskFactory()
        queues.push([(str(task.pk), task.marketplace, 0)])
        claimed = agent.client.get(f"{API}/tasks/next").json()
        body = {"raw_text": WB_PAGE, "timing_ms": 900, "success": True, "error": None}
        response = agent.client.post(f"{API}/tasks/{claimed['id']}/report", body, format="json")
        assert response.json()["status"] == TaskStatus.PARSING

        first = start_worker(tmp_path / "first.log")
        second = None
        try:
            # 1. The pool process is killed while it waits for the LLM.
            wait_for(lambda: len(llm.requests) == 1, "the first parse to reach the LLM")
            (child,) = pool_children(first)
            os.kill(child, signal.SIGKILL)
            wait_for(lambda: len(llm.requests) == 2, "the parse to run again in a new process")
            assert Task.objects.get(pk=task.pk).status == TaskStatus.PARSING

            # 2. The whole worker is killed during that second parse. Its message stays
            # unacknowledged; past the parse deadline the reaper resends the parse, and past the
            # visibility timeout (5 s here) a starting worker takes the dead one's message back.
            kill_group(first)
            wait_for(
                lambda: Task.objects.get(pk=task.pk).lease_expires_at < timezone.now(),
                "the parse deadline",
            )
            assert resume_stalled_parses() == 1  # what the reaper runs every minute
            time.sleep(5)
            second = start_worker(tmp_path / "second.log", CELERY_VISIBILITY_TIMEOUT="5")
            wait_for(
                lambda: Task.objects.get(pk=task.pk).status == TaskStatus.COMPLETED,
                "the parse in the second worker",
            )
            log = tmp_path / "second.log"
            wait_for(lambda: received(log) == 2, "both messages in the second worker", 20)
            time.sleep(1)
        finally:
            kill_group(first)
            if second is not None:
                second.terminate()
                try:
                    second.wait(10)
                except subprocess.TimeoutExpired:
                    kill_group(second)
        assert len(llm.requests) == 3, (tmp_path / "second.log").read_text()[-3000:]

    task.refresh_from_db()
    assert task.outcome == TaskOutcome.OK
    (price,) = PriceHistory.objects.filter(task=task)
    assert price.current_price == 1299 and price.parser_backend == Backend.SOLVE
    assert TaskReport.objects.filter(task=task).count() == 1
    assert "Traceback" not in (tmp_path / "second.log").read_text()
