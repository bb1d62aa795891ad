"""Agents: API keys, heartbeat, panic, offline detection, live counters."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from alerts.services import notify
from watcher.models import DOMAINS, Agent, AgentStatus, PanicBlock, Task, TaskStatus
from watcher.services import events, semaphore
from watcher.services.redis import (
    AGENT_COMPLETED_KEY,
    AGENT_FAILED_KEY,
    AGENT_STATE_KEY,
    AGENT_TIMING_KEY,
    BLOCKED_KEY,
    METRIC_KEY,
    get_redis,
)

log = logging.getLogger(__name__)

KEY_PREFIX = "wa_"
_PREFIX_LEN = 10
_STATE_TTL = 300
_COUNTER_TTL = 2 * 24 * 3600
_TIMING_WINDOW = 100
# Close codes of an agent's open WebSocket when the operator revokes it (watcher.consumers).
SOCKET_CLOSE_REKEYED = 4001
SOCKET_CLOSE_DISABLED = 4003


# --- API keys ---------------------------------------------------------------------------------


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(key_prefix: str = KEY_PREFIX) -> tuple[str, str, str]:
    """A random 32-byte key starting with ``key_prefix``: ``(key, lookup prefix, digest)``.

    Only the lookup prefix and the digest are stored; the office's module keys use it too."""
    key = key_prefix + secrets.token_urlsafe(32)
    return key, key[len(key_prefix) : len(key_prefix) + _PREFIX_LEN], key_digest(key)


def key_lookup(key: str, key_prefix: str = KEY_PREFIX) -> str | None:
    """The lookup prefix of a presented key, or None when it cannot be one of ours."""
    if not key.startswith(key_prefix) or len(key) < len(key_prefix) + _PREFIX_LEN:
        return None
    return key[len(key_prefix) : len(key_prefix) + _PREFIX_LEN]


def key_matches(stored_digest: str, key: str) -> bool:
    """Constant-time comparison of a presented key with a stored digest."""
    return hmac.compare_digest(stored_digest, key_digest(key))


def create_agent(name: str, **fields: Any) -> tuple[Agent, str]:
    """Create an agent; returns it with its API key, which is never stored nor shown again."""
    key, prefix, digest = new_key()
    agent = Agent.objects.create(name=name, api_key_prefix=prefix, api_key_digest=digest, **fields)
    return agent, key


def rotate_key(agent: Agent) -> str:
    """Give the agent a new API key; the old one stops working at once."""
    key, prefix, digest = new_key()
    Agent.objects.filter(pk=agent.pk).update(
        api_key_prefix=prefix, api_key_digest=digest, api_key_rotated_at=timezone.now()
    )
    agent.api_key_prefix, agent.api_key_digest = prefix, digest
    close_sockets([agent.pk], SOCKET_CLOSE_REKEYED)
    return key


def close_sockets(agent_ids: Iterable[object], code: int) -> None:
    """Close the agents' open WebSockets, in whichever process holds them, once the change that
    revoked them (a disabled agent, a new key) commits."""
    events.send_events(
        [(events.agent_group(pk), {"type": "agent.revoked", "code": code}) for pk in agent_ids]
    )


def agent_saved(sender: type[Agent], instance: Agent, created: bool, **kwargs: Any) -> None:
    """``post_save`` receiver: an agent disabled through a form loses its socket too."""
    if not created and not instance.is_enabled:
        close_sockets([instance.pk], SOCKET_CLOSE_DISABLED)


def may_speak(agent: Agent) -> bool:
    """Whether a socket opened as ``agent`` may still act: enabled, with the same key."""
    return Agent.objects.filter(
        pk=agent.pk, is_enabled=True, api_key_digest=agent.api_key_digest
    ).exists()


def authenticate_key(key: str) -> Agent | None:
    """The agent owning ``key`` (enabled or not), or None; compared in constant time."""
    prefix = key_lookup(key)
    if prefix is None:
        return None
    agent = Agent.objects.filter(api_key_prefix=prefix).first()
    if agent is None or not key_matches(agent.api_key_digest, key):
        return None
    return agent


# --- Heartbeat, panic, offline ----------------------------------------------------------------


@dataclass(frozen=True)
class Heartbeat:
    status: str
    current_task: str | None
    stats: dict[str, Any]
    ip: str | None


def _release_leases_of(agent: Agent, ip: str | None) -> None:
    """Release the semaphores the agent's running tasks hold on ``ip``."""
    for task in Task.objects.filter(agent=agent, status=TaskStatus.IN_PROGRESS, claimed_ip=ip):
        semaphore.release(str(ip), DOMAINS[task.marketplace], task.semaphore_token)


@transaction.atomic
def record_heartbeat(agent: Agent, beat: Heartbeat) -> Agent:
    """Store the agent's state (row + fast state in Redis) and renew the lease of the task it
    names as current."""
    now = timezone.now()
    stats = beat.stats or {}
    was_offline = agent.status == AgentStatus.OFFLINE
    old_ip = agent.current_ip
    agent.status = beat.status
    agent.last_heartbeat = now
    agent.stats = stats
    if beat.ip:
        agent.current_ip = beat.ip
    for field_name in ("modem_operator", "version"):
        if isinstance(stats.get(field_name), str):
            setattr(agent, field_name, stats[field_name][:100])
    if isinstance(stats.get("signal_strength"), int):
        agent.signal_strength = stats["signal_strength"]
    current = None
    if beat.current_task:
        current = Task.objects.filter(
            pk=beat.current_task, agent=agent, status=TaskStatus.IN_PROGRESS
        ).first()
    agent.current_task = current
    agent.save(
        update_fields=[
            "status", "last_heartbeat", "stats", "current_ip", "modem_operator", "version",
            "signal_strength", "current_task",
        ]
    )  # fmt: skip
    if old_ip and agent.current_ip != old_ip:
        # A new mobile IP: the old IP's locks held by this agent must not linger.
        _release_leases_of(agent, old_ip)
        log.info("agent ip changed", extra={"agent": str(agent.pk), "old": old_ip})
    elif current is not None:
        _renew_lease(current, now)
    state = {
        "status": agent.status,
        "current_task": str(current.pk) if current else None,
        "ip": agent.current_ip,
        "last_heartbeat": now.isoformat(),
        "stats": stats,
    }
    get_redis().set(AGENT_STATE_KEY.format(id=agent.pk), json.dumps(state), ex=_STATE_TTL)
    if was_offline and agent.status != AgentStatus.OFFLINE:
        log.info("agent back online", extra={"agent": str(agent.pk)})
        events.agent_changed(agent, "online")
    else:
        events.agent_changed(agent, "heartbeat")
    return agent


def _renew_lease(task: Task, now: dt.datetime) -> None:
    """Renew only the task the heartbeat names: an agent that restarted after a crash no longer
    knows its old task, and that task must lapse and be done again."""
    lease = dt.timedelta(seconds=settings.WATCHER_TASK_LEASE_SECONDS)
    renewed = Task.objects.filter(
        pk=task.pk, status=TaskStatus.IN_PROGRESS, lease_version=task.lease_version
    ).update(lease_expires_at=now + lease)
    if renewed and task.claimed_ip:
        semaphore.extend(task.claimed_ip, DOMAINS[task.marketplace], task.semaphore_token)


def enter_panic(
    agent: Agent,
    reason: str,
    details: dict[str, Any],
    ip: str | None,
    request_ip: str | None = None,
) -> Agent:
    """The agent saw signs of blocking: stop feeding it and its IP, hand its tasks back.

    The IP blocked is the agent's own as the server knows it (``ip``: its heartbeat's, else the
    request's). ``details.ip`` is honoured only when the server can tie it to this agent (its
    heartbeat IP or the request's address): an agent cannot block another agent's IP.
    """
    from watcher.services.distributor import requeue_agent_tasks

    now = timezone.now()
    own = {str(a) for a in (ip, request_ip, agent.current_ip) if a}
    claimed = str(details.get("ip") or "")
    if claimed and claimed not in own:
        log.warning("panic names an IP not tied to the agent", extra={"agent": str(agent.pk)})
    blocked_ip = claimed if claimed in own else str(ip or agent.current_ip or "") or None
    with transaction.atomic():
        Agent.objects.filter(pk=agent.pk).update(
            status=AgentStatus.PANIC,
            panic_reason=reason[:500],
            panic_details=details,
            panic_at=now,
            last_heartbeat=now,
        )
        agent.refresh_from_db()
        requeue_agent_tasks(agent, reason="agent panic")
        if blocked_ip:
            PanicBlock.objects.create(
                ip=blocked_ip,
                agent=agent,
                reason=reason[:500],
                created_at=now,
                expires_at=now + dt.timedelta(seconds=settings.WATCHER_AGENT_PANIC_COOLDOWN),
            )
        payload = {
            "agent_id": str(agent.pk),
            "name": agent.name,
            "reason": reason,
            "ip": blocked_ip,
        }
        transaction.on_commit(lambda: notify("watcher_agent_panic", payload))
        events.agent_changed(agent, "panic")
        if blocked_ip:
            events.blocks_changed(agent, list(blocks_of(agent)))
    if blocked_ip:
        semaphore.block_ip(blocked_ip, settings.WATCHER_AGENT_PANIC_COOLDOWN, reason)
    return agent


def blocks_of(agent: Agent) -> QuerySet[PanicBlock]:
    """The IP blocks in force that keep this agent idle: its own panics' and its current IP's."""
    mine = Q(agent=agent)
    if agent.current_ip:
        mine |= Q(ip=agent.current_ip)
    return PanicBlock.objects.filter(mine, expires_at__gt=timezone.now()).order_by("expires_at")


def restore_blocks(now: dt.datetime | None = None) -> int:
    """Put the IP blocks still in force back into Redis (after it lost them); returns how many."""
    now = now or timezone.now()
    count = 0
    for block in PanicBlock.objects.filter(expires_at__gt=now).order_by("expires_at"):
        seconds = int((block.expires_at - now).total_seconds()) + 1
        semaphore.block_ip(str(block.ip), seconds, block.reason)
        count += 1
    return count


def clear_blocks(block_ids: Iterable[int]) -> int:
    """Lift IP blocks (staff): the rows go, and so do their IPs' Redis blocks unless another
    block of the same IP is still in force."""
    with transaction.atomic():
        blocks = list(PanicBlock.objects.filter(pk__in=list(block_ids)))
        PanicBlock.objects.filter(pk__in=[b.pk for b in blocks]).delete()
        still = set(
            PanicBlock.objects.filter(
                ip__in={b.ip for b in blocks}, expires_at__gt=timezone.now()
            ).values_list("ip", flat=True)
        )
    lifted = {str(b.ip) for b in blocks} - {str(ip) for ip in still}
    if lifted:
        get_redis().delete(*(BLOCKED_KEY.format(ip=ip) for ip in lifted))
    return len(blocks)


def mark_offline_agents(now: dt.datetime | None = None) -> list[str]:
    """Agents silent for longer than the heartbeat timeout become ``offline``; admins hear."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.WATCHER_AGENT_HEARTBEAT_TIMEOUT)
    stale = Agent.objects.exclude(status=AgentStatus.OFFLINE).filter(last_heartbeat__lt=cutoff)
    went_offline: list[str] = []
    for agent in stale:
        # Conditional: a heartbeat arriving meanwhile wins.
        if Agent.objects.filter(pk=agent.pk, last_heartbeat__lt=cutoff).update(
            status=AgentStatus.OFFLINE
        ):
            went_offline.append(str(agent.pk))
            agent.status = AgentStatus.OFFLINE
            events.agent_changed(agent, "offline")
            notify(
                "watcher_agent_offline",
                {
                    "agent_id": str(agent.pk),
                    "name": agent.name,
                    "last_heartbeat": agent.last_heartbeat.isoformat()
                    if agent.last_heartbeat
                    else None,
                },
            )
    return went_offline


# --- Counters ---------------------------------------------------------------------------------


def _day(now: dt.datetime | None = None) -> str:
    return timezone.localdate(now).isoformat()


def count_result(agent_id: str, ok: bool, timing_ms: int | None, pipe: Any = None) -> None:
    """Bump today's completed/failed counter (kept two days) and the timing window.

    With ``pipe`` (a pipeline) the commands are queued on it for the caller to execute.
    """
    own = pipe is None
    pipe = get_redis().pipeline(transaction=False) if own else pipe
    key = (AGENT_COMPLETED_KEY if ok else AGENT_FAILED_KEY).format(id=agent_id, day=_day())
    pipe.incr(key)
    pipe.expire(key, _COUNTER_TTL)
    pipe.incr(METRIC_KEY.format(name="tasks_completed" if ok else "tasks_failed"))
    if ok and timing_ms is not None:
        timing_key = AGENT_TIMING_KEY.format(id=agent_id)
        pipe.lpush(timing_key, int(timing_ms))
        pipe.ltrim(timing_key, 0, _TIMING_WINDOW - 1)
    if own:
        pipe.execute()


def counters(agent_ids: list[str]) -> dict[str, dict[str, int]]:
    """Today's ``{completed, failed}`` for each agent, in one round trip."""
    pipe = get_redis().pipeline(transaction=False)
    day = _day()
    for agent_id in agent_ids:
        pipe.get(AGENT_COMPLETED_KEY.format(id=agent_id, day=day))
        pipe.get(AGENT_FAILED_KEY.format(id=agent_id, day=day))
    values = pipe.execute()
    return {
        agent_id: {"completed": int(values[2 * i] or 0), "failed": int(values[2 * i + 1] or 0)}
        for i, agent_id in enumerate(agent_ids)
    }


def average_task_time_ms(agent_id: str) -> float | None:
    timings = get_redis().lrange(AGENT_TIMING_KEY.format(id=agent_id), 0, _TIMING_WINDOW - 1)
    if not timings:
        return None
    return round(sum(int(t) for t in timings) / len(timings), 1)
