"""The Task state machine: every change of a task's status, and the one table of allowed moves.

Each move is a conditional UPDATE on what the caller saw (the status, and the lease version,
which every claim bumps), and the count tells whether it happened: a duplicate, late or racing
caller changes nothing and gets False (or None). A move to a status its transition does not
allow is a programming error (``ValueError``), refused before anything is written.

Redis follows the row, after commit (a rolled-back move never touches it): a task that leaves
``in_progress`` gives back its IP semaphore and its in-flight entry, one that leaves ``pending``
(cancel, expire) leaves the ready queue, one that becomes ``pending`` joins it. The claim is the
exception: its Lua script (services/distributor.py) has moved the id already.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from watcher.models import DOMAINS, Agent, Task, TaskOutcome, TaskStatus
from watcher.services import queues, semaphore
from watcher.services.redis import INFLIGHT_KEY, get_redis

S = TaskStatus


class Transition(NamedTuple):
    sources: frozenset[str]
    targets: frozenset[str]


def _t(sources: Iterable[str], targets: Iterable[str]) -> Transition:
    return Transition(frozenset(sources), frozenset(targets))


_FINISHED = (S.COMPLETED, S.FAILED, S.PARSE_ERROR)

#: Every transition by name: the statuses it moves a task from, and those it may move it to.
TRANSITIONS: Final[Mapping[str, Transition]] = MappingProxyType(
    {
        # An agent takes a queued task.
        "claim": _t([S.PENDING], [S.IN_PROGRESS]),
        # A report whose page a slow (LLM) backend parses in a worker.
        "park": _t([S.IN_PROGRESS], [S.PARSING]),
        # A lost parse message is sent again with a new deadline.
        "resume_parse": _t([S.PARSING], [S.PARSING]),
        # A report (or its parse) ends the lease; a failure below the retry limit is queued again.
        "settle": _t([S.IN_PROGRESS, S.PARSING], [*_FINISHED, S.PENDING]),
        # An operator's re-parse of a finished task replaces its result.
        "reparse": _t(_FINISHED, _FINISHED),
        # The agent cannot go on (disabled, panic): no retry counted.
        "hand_back": _t([S.IN_PROGRESS], [S.PENDING, S.FAILED]),
        # The lease ran out before a report (the reaper): a retry counted.
        "lapse": _t([S.IN_PROGRESS], [S.PENDING, S.FAILED]),
        # Operators.
        "requeue": _t(
            [S.FAILED, S.PARSE_ERROR, S.EXPIRED, S.CANCELLED, S.IN_PROGRESS], [S.PENDING]
        ),
        "cancel": _t([S.PENDING, S.IN_PROGRESS], [S.CANCELLED]),
        # The night is over and the task never ran.
        "expire": _t([S.PENDING], [S.EXPIRED]),
    }
)

#: The same table by status: where a task in each status may go (by any transition).
ALLOWED: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        status: frozenset().union(*(t.targets for t in TRANSITIONS.values() if status in t.sources))
        for status in S.values
    }
)

_CHUNK = 1_000  # ids per statement, well within SQLite's 32,766 parameters
_REDIS_BATCH = 10_000


def can_move(source: str, target: str) -> bool:
    return target in ALLOWED.get(source, frozenset())


def failure_status(retry_count: int) -> str:
    """Where a failed attempt sends a task that has now failed ``retry_count`` times."""
    return S.FAILED if retry_count >= settings.WATCHER_TASK_MAX_RETRIES else S.PENDING


# --- One task -----------------------------------------------------------------------------------


def claim(
    task_id: str, agent: Agent, ip: str, token: str, now: dt.datetime, deadline: dt.datetime
) -> Task | None:
    """Give the pending task ``task_id`` to ``agent`` under a new lease; the task, or None.

    Of two claims of one id exactly one wins; an id that is not a pending task (cancelled, or
    garbage in a queue) gets None.
    """
    try:
        pk = uuid.UUID(task_id)
    except ValueError:
        return None
    task = Task.objects.filter(pk=pk, status__in=TRANSITIONS["claim"].sources).first()
    if task is None:
        return None
    moved = _move(
        task,
        "claim",
        S.IN_PROGRESS,
        follow=False,  # the claim script has moved the id from the queue to the in-flight set
        agent=agent,
        started_at=now,
        lease_expires_at=deadline,
        claimed_ip=ip,
        semaphore_token=token,
        lease_version=task.lease_version + 1,
    )
    return task if moved else None


def park(task: Task, deadline: dt.datetime) -> bool:
    """The agent has reported; the task waits in ``parsing`` for a worker until ``deadline``."""
    return _move(task, "park", S.PARSING, lease_expires_at=deadline)


def resume_parse(task: Task, now: dt.datetime, deadline: dt.datetime) -> bool:
    """Renew a parse past its deadline (``now``), so one reaper run resends it, not two."""
    return _move(
        task,
        "resume_parse",
        S.PARSING,
        where={"lease_expires_at__lt": now},
        lease_expires_at=deadline,
    )


def settle(
    task: Task,
    to: str,
    *,
    outcome: str,
    error: str = "",
    execution_time_ms: int | None = None,
    count_retry: bool = False,
) -> bool:
    """Record the result of the task's current lease (a report, or its parse in a worker);
    ``to`` ``pending`` queues it again."""
    fields = _result_fields(task, to, outcome, error, execution_time_ms, count_retry)
    return _move(task, "settle", to, **fields)


def reparse(
    task: Task, to: str, *, outcome: str, error: str = "", execution_time_ms: int | None = None
) -> bool:
    """Replace a finished task's result with that of an operator's re-parse."""
    fields = _result_fields(task, to, outcome, error, execution_time_ms, count_retry=False)
    return _move(task, "reparse", to, **fields)


def _result_fields(
    task: Task,
    to: str,
    outcome: str,
    error: str,
    execution_time_ms: int | None,
    count_retry: bool,
) -> dict[str, Any]:
    fields: dict[str, Any] = {"outcome": outcome, "error": error[:5000], "lease_expires_at": None}
    if count_retry:
        fields["retry_count"] = task.retry_count + 1
    if to == S.PENDING:
        fields["agent"] = None
    else:
        fields.update(completed_at=timezone.now(), execution_time_ms=execution_time_ms)
    return fields


def hand_back(task: Task, reason: str) -> bool:
    """The agent cannot finish the task (disabled, panic): back to the queue, no retry counted."""
    return _give_back(task, "hand_back", reason, TaskOutcome.AGENT_ERROR, task.retry_count)


def lapse(task: Task, now: dt.datetime) -> bool:
    """The lease ran out at ``now`` with no report: a retry counted, then back to the queue (or
    ``failed`` past the limit). A heartbeat that renewed the lease meanwhile wins."""
    return _give_back(
        task,
        "lapse",
        "lease expired: the agent did not report in time",
        TaskOutcome.LEASE_EXPIRED,
        task.retry_count + 1,
        where={"lease_expires_at__lt": now},
    )


def _give_back(
    task: Task,
    name: str,
    reason: str,
    outcome: str,
    retries: int,
    where: dict[str, Any] | None = None,
) -> bool:
    to = failure_status(retries)
    failed = to == S.FAILED
    return _move(
        task,
        name,
        to,
        where=where,
        outcome=outcome if failed else "",
        agent=None,
        retry_count=retries,
        error=reason,
        lease_expires_at=None,
        completed_at=timezone.now() if failed else None,
    )


def _move(
    task: Task,
    name: str,
    to: str,
    *,
    where: dict[str, Any] | None = None,
    follow: bool = True,
    **fields: Any,
) -> bool:
    """Move ``task`` by transition ``name`` if its row is still as the caller saw it; on success
    the instance carries the new values."""
    transition = TRANSITIONS[name]
    if to not in transition.targets:
        raise ValueError(f"{name}: a task cannot move to {to}")
    source = task.status
    if source not in transition.sources:
        return False
    updated = Task.objects.filter(
        pk=task.pk, status=source, lease_version=task.lease_version, **(where or {})
    ).update(status=to, **fields)
    if not updated:
        return False
    task.status = to
    for field, value in fields.items():
        setattr(task, field, value)
    if follow:
        _follow_on_commit([_Moved.of(task, source)])
    return True


# --- Many tasks ---------------------------------------------------------------------------------


def requeue(task_ids: Iterable[uuid.UUID | str]) -> int:
    """An operator sends tasks back to the queue with a fresh retry budget; how many moved."""
    fields = {
        "outcome": "",
        "agent": None,
        "retry_count": 0,
        "error": "",
        "lease_expires_at": None,
        "completed_at": None,
        "execution_time_ms": None,
    }
    return _by_operator(task_ids, "requeue", S.PENDING, fields)


def cancel(task_ids: Iterable[uuid.UUID | str]) -> int:
    """An operator cancels tasks; a late report of one is refused. How many moved."""
    fields = {
        "outcome": TaskOutcome.CANCELLED,
        "error": "",
        "lease_expires_at": None,
        "completed_at": timezone.now(),
    }
    return _by_operator(task_ids, "cancel", S.CANCELLED, fields)


def expire(before: dt.date) -> list[str]:
    """Mark pending tasks of nights before ``before`` as ``expired``; returns their ids."""
    fields = {"outcome": TaskOutcome.EXPIRED, "completed_at": timezone.now()}
    with transaction.atomic():
        moved = _move_rows(
            Task.objects.filter(scheduled_date__lt=before), "expire", S.EXPIRED, fields
        )
        _follow_on_commit(moved)
    return [m.task_id for m in moved]


def _by_operator(
    task_ids: Iterable[uuid.UUID | str], name: str, to: str, fields: dict[str, Any]
) -> int:
    moved: list[_Moved] = []
    with transaction.atomic():
        for ids in _chunks(task_ids):
            moved += _move_rows(Task.objects.filter(pk__in=ids), name, to, fields)
        # The agents working on them are no longer.
        running = (m.task_id for m in moved if m.source == S.IN_PROGRESS)
        for ids in _chunks(running):
            Agent.objects.filter(current_task_id__in=ids).update(current_task=None)
        _follow_on_commit(moved)
    return len(moved)


_ROW = ("pk", "status", "marketplace", "priority", "claimed_ip", "semaphore_token")


def _move_rows(
    candidates: QuerySet[Task], name: str, to: str, fields: dict[str, Any]
) -> list[_Moved]:
    """Move every candidate row the transition applies to; inside the caller's transaction.

    The rows are locked first (PostgreSQL), so a concurrent claim or report waits for the
    commit and none of them can change between the read and the update; SQLite runs one
    writing transaction at a time.
    """
    transition = TRANSITIONS[name]
    if to not in transition.targets:
        raise ValueError(f"{name}: a task cannot move to {to}")
    rows = candidates.select_for_update().filter(status__in=transition.sources).values_list(*_ROW)
    by_source: dict[str, list[_Moved]] = defaultdict(list)
    for pk, source, marketplace, priority, ip, token in rows:
        by_source[source].append(_Moved(str(pk), marketplace, priority, ip, token, source, to))
    moved: list[_Moved] = []
    for source, group in by_source.items():
        for start in range(0, len(group), _CHUNK):
            chunk = group[start : start + _CHUNK]
            ids = [m.task_id for m in chunk]
            updated = Task.objects.filter(pk__in=ids, status=source).update(status=to, **fields)
            if updated != len(chunk):  # the lock above makes this impossible; never half-know
                raise RuntimeError(f"{name}: {len(chunk) - updated} locked tasks changed")
            moved += chunk
    return moved


def _chunks(ids: Iterable[uuid.UUID | str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for task_id in ids:
        batch.append(str(task_id))
        if len(batch) >= _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


# --- Redis follows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)  # an expiry may move a whole night of them
class _Moved:
    """What Redis needs to know of a moved task."""

    task_id: str
    marketplace: str
    priority: int
    ip: str | None
    token: str
    source: str
    target: str

    @classmethod
    def of(cls, task: Task, source: str) -> _Moved:
        return cls(
            str(task.pk),
            task.marketplace,
            task.priority,
            task.claimed_ip,
            task.semaphore_token,
            source,
            task.status,
        )


def _follow_on_commit(moved: list[_Moved]) -> None:
    # A parse settled (parsing -> completed) or a re-parse has nothing to tell Redis.
    moved = [m for m in moved if S.PENDING in (m.source, m.target) or m.source == S.IN_PROGRESS]
    if moved:
        transaction.on_commit(lambda: _follow(moved))


def _follow(moved: list[_Moved]) -> None:
    client = get_redis()
    for start in range(0, len(moved), _REDIS_BATCH):
        pipe = client.pipeline(transaction=False)  # one round trip per batch
        gone: dict[str, list[str]] = defaultdict(list)
        queued: dict[str, dict[str, float]] = defaultdict(dict)
        for m in moved[start : start + _REDIS_BATCH]:
            if m.source == S.IN_PROGRESS:
                if m.ip:
                    semaphore.release(m.ip, DOMAINS[m.marketplace], m.token, client=pipe)
                gone[INFLIGHT_KEY].append(m.task_id)
            elif m.source == S.PENDING:
                gone[queues.queue_key(m.marketplace)].append(m.task_id)
                gone[INFLIGHT_KEY].append(m.task_id)  # a claim that died half-way
            if m.target == S.PENDING:
                queued[queues.queue_key(m.marketplace)][m.task_id] = queues.score(m.priority)
        # Out of the in-flight set before back in a queue: a claim may take it at once.
        for key, ids in gone.items():
            pipe.zrem(key, *ids)
        for key, mapping in queued.items():
            pipe.zadd(key, mapping)
        pipe.execute()
