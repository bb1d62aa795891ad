"""Task distribution: the IP semaphore, crash-safe claims, leases and their expiry (SPEC §5)."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid

from django.conf import settings
from django.utils import timezone

from parser.types import Marketplace
from watcher.models import DOMAINS, Agent, Task, TaskStatus
from watcher.services import lifecycle, metrics, queues, semaphore
from watcher.services.redis import BLOCKED_KEY, INFLIGHT_KEY, SEMAPHORE_KEY, get_redis, script

log = logging.getLogger(__name__)

# Take the (IP, domain) semaphore and move one id from the ready queue to the in-flight set
# with its lease deadline, atomically: if this process dies before the database update, the id
# is still in flight and the lease reaper puts it back.
_CLAIM = """
if redis.call('EXISTS', KEYS[4]) == 1 then return {'blocked'} end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {'busy'} end
local popped = redis.call('ZPOPMAX', KEYS[2])
if #popped == 0 then
  if holder then redis.call('DEL', KEYS[1]) end
  return {'empty'}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
redis.call('ZADD', KEYS[3], ARGV[3], popped[1])
return {'ok', popped[1]}
"""
# Ids a claim may skip (cancelled or stale) before it moves on to the next marketplace.
_MAX_SKIPS = 100


def marketplace_order() -> list[str]:
    """Marketplaces in the order agents are fed (``WATCHER_QUEUE_PRIORITY_*``)."""
    weights = {
        Marketplace.WILDBERRIES: settings.WATCHER_QUEUE_PRIORITY_WB,
        Marketplace.OZON: settings.WATCHER_QUEUE_PRIORITY_OZON,
        Marketplace.YANDEX_MARKET: settings.WATCHER_QUEUE_PRIORITY_YM,
    }
    return sorted(weights, key=lambda mp: (weights[mp], mp))


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.WATCHER_TASK_LEASE_SECONDS)


def claim_next_task(agent: Agent, ip: str) -> Task | None:
    """Hand the agent its next task, or None when nothing is available to it right now."""
    if not agent.accepts_tasks:
        return None
    claim = script(_CLAIM)
    client = get_redis()
    for mp in marketplace_order():
        domain = DOMAINS[mp]
        token = secrets.token_hex(16)
        keys = [
            SEMAPHORE_KEY.format(ip=ip, domain=domain),
            queues.queue_key(mp),
            INFLIGHT_KEY,
            BLOCKED_KEY.format(ip=ip),
        ]
        held = False
        for _ in range(_MAX_SKIPS):
            now = timezone.now()
            deadline = now + _lease()
            result = claim(
                keys=keys, args=[token, settings.WATCHER_IP_SEMAPHORE_TTL, deadline.timestamp()]
            )
            if result[0] == "blocked":
                if held:  # taken by this claim before an id was skipped
                    semaphore.release(ip, domain, token)
                return None  # the IP is in a panic cooldown: no marketplace for it
            if result[0] != "ok":
                # "busy": another agent on this IP holds the domain; "empty": nothing queued
                # (the script has dropped the lock if this claim held it).
                held = False
                break
            held = True
            task = lifecycle.claim(result[1], agent, ip, token, now, deadline)
            if task is not None:
                metrics.count("tasks_distributed")
                return task
            client.zrem(INFLIGHT_KEY, result[1])
        if held:
            semaphore.release(ip, domain, token)
    return None


def requeue_agent_tasks(agent: Agent, reason: str) -> int:
    """Give back every task the agent holds, without counting a retry (not the task's fault)."""
    running = Task.objects.filter(agent=agent, status=TaskStatus.IN_PROGRESS)
    return sum(lifecycle.hand_back(task, reason) for task in running)


def reap_expired_leases(now: dt.datetime | None = None) -> dict[str, int]:
    """Put back tasks whose agent went silent, and ids lost between a claim and its update."""
    now = now or timezone.now()
    lapsed = Task.objects.filter(status=TaskStatus.IN_PROGRESS, lease_expires_at__lt=now)
    reaped = sum(lifecycle.lapse(task, now) for task in lapsed)
    # In-flight ids past their deadline whose row is still pending: the claiming process died
    # between the Lua claim and the database update.
    client = get_redis()
    stale = client.zrangebyscore(INFLIGHT_KEY, 0, now.timestamp())
    recovered = 0
    if stale:
        valid = [s for s in stale if _is_uuid(s)]
        pending = Task.objects.filter(pk__in=valid, status=TaskStatus.PENDING).values_list(
            "pk", "marketplace", "priority"
        )
        items = [(str(pk), mp, prio) for pk, mp, prio in pending]
        if items:
            recovered = queues.push(items)
        client.zrem(INFLIGHT_KEY, *stale)
    if reaped or recovered:
        log.info("leases reaped", extra={"expired": reaped, "recovered": recovered})
    return {"expired": reaped, "recovered": recovered}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
