"""The Task state machine: the table of allowed moves, and every transition held to it."""

from __future__ import annotations

import copy
import datetime as dt
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from tests.factories import AgentFactory, TaskFactory
from watcher.models import DOMAINS, Agent, Task, TaskOutcome, TaskStatus
from watcher.services import distributor, lifecycle, queues, semaphore
from watcher.services.redis import INFLIGHT_KEY, get_redis

S = TaskStatus
IP = "10.9.0.1"

# The machine as users know it; lifecycle.TRANSITIONS must say exactly this.
EXPECTED = {
    S.PENDING: {S.IN_PROGRESS, S.CANCELLED, S.EXPIRED},
    S.IN_PROGRESS: {S.PARSING, S.COMPLETED, S.FAILED, S.PARSE_ERROR, S.PENDING, S.CANCELLED},
    S.PARSING: {S.PARSING, S.COMPLETED, S.FAILED, S.PARSE_ERROR, S.PENDING},
    S.COMPLETED: {S.COMPLETED, S.FAILED, S.PARSE_ERROR},
    S.FAILED: {S.COMPLETED, S.FAILED, S.PARSE_ERROR, S.PENDING},
    S.PARSE_ERROR: {S.COMPLETED, S.FAILED, S.PARSE_ERROR, S.PENDING},
    S.EXPIRED: {S.PENDING},
    S.CANCELLED: {S.PENDING},
}


def test_the_table_of_allowed_moves() -> None:
    assert dict(lifecycle.ALLOWED) == EXPECTED
    for source in S.values:
        for target in S.values:
            assert lifecycle.can_move(source, target) == (target in EXPECTED[source])


def past_task(status: str, **fields: Any) -> Task:
    """A task of last night in ``status``, holding a lease that ran out a minute ago."""
    values: dict[str, Any] = {
        "status": status,
        "agent": AgentFactory(),
        "lease_version": 1,
        "claimed_ip": IP,
        "semaphore_token": "tok",
        "lease_expires_at": timezone.now() - dt.timedelta(minutes=1),
        "scheduled_date": timezone.localdate() - dt.timedelta(days=1),
    }
    return TaskFactory(**{**values, **fields})


def row(task: Task) -> dict[str, Any]:
    return Task.objects.filter(pk=task.pk).values().get()


def later() -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=5)


# Each public move: what it does to one task, its transition, the status it leads to.
MOVES: dict[str, tuple[Callable[[Task], bool], str, str]] = {
    "claim": (
        lambda t: (
            lifecycle.claim(str(t.pk), AgentFactory(), IP, "new", timezone.now(), later())
            is not None
        ),
        "claim",
        S.IN_PROGRESS,
    ),
    "park": (lambda t: lifecycle.park(t, later()), "park", S.PARSING),
    "resume_parse": (
        lambda t: lifecycle.resume_parse(t, timezone.now(), later()),
        "resume_parse",
        S.PARSING,
    ),
    "settle": (
        lambda t: lifecycle.settle(t, S.COMPLETED, outcome=TaskOutcome.OK, execution_time_ms=9),
        "settle",
        S.COMPLETED,
    ),
    "reparse": (
        lambda t: lifecycle.reparse(t, S.PARSE_ERROR, outcome=TaskOutcome.PARSE_FAILED),
        "reparse",
        S.PARSE_ERROR,
    ),
    "settle_for_a_retry": (
        lambda t: lifecycle.settle(
            t, S.PENDING, outcome=TaskOutcome.AGENT_ERROR, error="timeout", count_retry=True
        ),
        "settle",
        S.PENDING,
    ),
    "hand_back": (lambda t: lifecycle.hand_back(t, "agent disabled"), "hand_back", S.PENDING),
    "lapse": (lambda t: lifecycle.lapse(t, timezone.now()), "lapse", S.PENDING),
    "requeue": (lambda t: lifecycle.requeue([t.pk]) == 1, "requeue", S.PENDING),
    "cancel": (lambda t: lifecycle.cancel([t.pk]) == 1, "cancel", S.CANCELLED),
    "expire": (
        lambda t: lifecycle.expire(timezone.localdate()) == [str(t.pk)],
        "expire",
        S.EXPIRED,
    ),
}


def test_every_transition_has_a_move() -> None:
    assert {name for _act, name, _target in MOVES.values()} == set(lifecycle.TRANSITIONS)


@pytest.mark.django_db
@pytest.mark.parametrize("source", S.values)
@pytest.mark.parametrize("move", MOVES)
def test_every_move_happens_only_from_the_statuses_its_transition_allows(
    move: str, source: str
) -> None:
    act, name, target = MOVES[move]
    allowed = source in lifecycle.TRANSITIONS[name].sources
    task = past_task(source)
    before = row(task)
    assert act(task) is allowed
    after = row(task)
    if allowed:
        assert after["status"] == target
        assert lifecycle.can_move(source, target)
    else:
        assert after == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.IN_PROGRESS, S.CANCELLED),
        (S.IN_PROGRESS, S.EXPIRED),
        (S.IN_PROGRESS, S.PARSING),
        (S.PARSING, S.IN_PROGRESS),
    ],
)
def test_a_settle_to_a_status_its_transition_does_not_allow_is_refused(
    source: str, target: str
) -> None:
    task = past_task(source)
    before = row(task)
    with pytest.raises(ValueError, match="cannot move"):
        lifecycle.settle(task, target, outcome=TaskOutcome.OK)
    assert row(task) == before
    assert task.status == source


@pytest.mark.django_db
def test_a_reparse_does_not_queue_a_finished_task_again() -> None:
    task = past_task(S.COMPLETED)
    before = row(task)
    with pytest.raises(ValueError, match="cannot move"):
        lifecycle.reparse(task, S.PENDING, outcome=TaskOutcome.BLOCKED)
    assert row(task) == before


@pytest.mark.django_db
def test_a_claim_gives_a_new_lease_and_the_second_claim_of_one_id_gets_nothing() -> None:
    task = past_task(S.PENDING)
    first, second = AgentFactory(), AgentFactory()
    claimed = lifecycle.claim(str(task.pk), first, IP, "one", timezone.now(), later())
    assert claimed is not None
    assert claimed.lease_version == 2 and claimed.agent == first
    assert lifecycle.claim(str(task.pk), second, IP, "two", timezone.now(), later()) is None
    task.refresh_from_db()
    assert task.status == S.IN_PROGRESS and task.agent == first
    assert task.lease_version == 2 and task.semaphore_token == "one"


@pytest.mark.django_db
def test_garbage_and_unknown_ids_are_not_claimed() -> None:
    agent = AgentFactory()
    for task_id in ("garbage", str(uuid.uuid4())):
        assert lifecycle.claim(task_id, agent, IP, "t", timezone.now(), later()) is None


@pytest.mark.django_db
def test_a_late_caller_holding_an_old_lease_changes_nothing() -> None:
    task = past_task(S.PENDING)
    running = lifecycle.claim(str(task.pk), AgentFactory(), IP, "a", timezone.now(), later())
    assert running is not None
    stale = copy.copy(running)
    assert lifecycle.hand_back(running, "agent panic")
    again = lifecycle.claim(str(task.pk), AgentFactory(), IP, "b", timezone.now(), later())
    assert again is not None
    before = row(task)
    # The first lease is gone: neither its report nor its reaper nor its agent's exit counts.
    assert not lifecycle.settle(stale, S.COMPLETED, outcome=TaskOutcome.OK)
    assert not lifecycle.lapse(stale, later())
    assert not lifecycle.hand_back(stale, "agent disabled")
    assert not lifecycle.park(stale, later())
    assert row(task) == before


@pytest.mark.django_db
def test_a_lease_renewed_by_a_heartbeat_does_not_lapse() -> None:
    task = past_task(S.IN_PROGRESS)
    seen = copy.copy(task)
    Task.objects.filter(pk=task.pk).update(lease_expires_at=later())  # the heartbeat
    assert not lifecycle.lapse(seen, timezone.now())
    task.refresh_from_db()
    assert task.status == S.IN_PROGRESS and task.retry_count == 0


@pytest.mark.django_db
def test_a_failure_is_queued_again_until_the_retry_limit(settings) -> None:
    settings.WATCHER_TASK_MAX_RETRIES = 2
    task = past_task(S.IN_PROGRESS, retry_count=1)
    assert lifecycle.lapse(task, timezone.now())
    task.refresh_from_db()
    assert task.status == S.FAILED and task.outcome == TaskOutcome.LEASE_EXPIRED
    assert task.retry_count == 2 and task.completed_at is not None and task.agent is None
    assert lifecycle.failure_status(1) == S.PENDING
    assert lifecycle.failure_status(2) == S.FAILED


@pytest.mark.django_db
def test_an_operator_moves_only_the_tasks_the_transition_allows() -> None:
    tasks = {status: past_task(status) for status in S.values}
    assert lifecycle.requeue(t.pk for t in tasks.values()) == 5
    requeueable = (S.FAILED, S.PARSE_ERROR, S.EXPIRED, S.CANCELLED, S.IN_PROGRESS)
    pending = Task.objects.filter(status=S.PENDING).values_list("pk", flat=True)
    assert set(pending) == {tasks[s].pk for s in (*requeueable, S.PENDING)}
    assert not Task.objects.filter(status=S.PENDING, retry_count__gt=0).exists()
    assert lifecycle.cancel(t.pk for t in tasks.values()) == 6  # every pending one now
    assert Task.objects.filter(status=S.CANCELLED).count() == 6


@pytest.mark.django_db
def test_an_operator_frees_the_agent_of_a_task_it_worked_on() -> None:
    task = past_task(S.IN_PROGRESS)
    Agent.objects.filter(pk=task.agent_id).update(current_task=task)
    assert lifecycle.cancel([task.pk]) == 1
    assert Agent.objects.get(pk=task.agent_id).current_task is None


@pytest.mark.django_db(transaction=True)
def test_redis_follows_the_row_only_after_commit(make_agent) -> None:
    task = TaskFactory()
    queues.push([(str(task.pk), task.marketplace, 0)])
    agent = make_agent().agent
    running = distributor.claim_next_task(agent, IP)
    assert running is not None and running.pk == task.pk
    domain = DOMAINS[task.marketplace]
    client = get_redis()

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        assert lifecycle.hand_back(running, "agent disabled")
        raise Rollback
    task.refresh_from_db()
    assert task.status == S.IN_PROGRESS
    assert semaphore.is_locked(IP, domain)
    assert client.zscore(INFLIGHT_KEY, str(task.pk)) is not None

    with transaction.atomic():
        assert lifecycle.hand_back(task, "agent disabled")
        assert semaphore.is_locked(IP, domain)  # not before the commit
        assert queues.lengths()[task.marketplace] == 0
    assert not semaphore.is_locked(IP, domain)
    assert client.zscore(INFLIGHT_KEY, str(task.pk)) is None
    assert queues.lengths()[task.marketplace] == 1

    assert lifecycle.cancel([task.pk]) == 1
    assert queues.lengths()[task.marketplace] == 0


@pytest.mark.django_db(transaction=True)
def test_of_many_claims_and_an_expiry_racing_for_one_task_exactly_one_wins() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent writers: set DATABASE_URL (CI does)")
    racers = 8
    task = past_task(S.PENDING)
    agents = [AgentFactory() for _ in range(racers)]
    start = threading.Barrier(racers + 1)
    wins: list[str] = []
    errors: list[BaseException] = []

    def claim(index: int) -> None:
        try:
            start.wait()
            if lifecycle.claim(
                str(task.pk), agents[index], IP, f"t{index}", timezone.now(), later()
            ):
                wins.append(f"claim {index}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    def expire() -> None:
        try:
            start.wait()
            if lifecycle.expire(timezone.localdate()):
                wins.append("expire")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(racers)]
    threads.append(threading.Thread(target=expire))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[:3]
    assert len(wins) == 1, wins
    task.refresh_from_db()
    if wins == ["expire"]:
        assert task.status == S.EXPIRED and task.lease_version == 1
    else:
        assert task.status == S.IN_PROGRESS and task.lease_version == 2
        assert task.semaphore_token == f"t{wins[0].split()[1]}"
