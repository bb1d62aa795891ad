"""The IP semaphore: one IP works on one marketplace domain at most once at a time.

A lock is ``watcher:ip_sem:{ip}:{domain}`` holding its owner's token, set with NX and a TTL
so a dead agent cannot hold it forever. Only the holder can release or extend it
(compare-and-delete in Lua). Listing uses SCAN, never KEYS.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings

from watcher.services.redis import BLOCKED_KEY, SEMAPHORE_KEY, get_redis, script

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_PREFIX = "watcher:ip_sem:"


def _key(ip: str, domain: str) -> str:
    return SEMAPHORE_KEY.format(ip=ip, domain=domain)


def _ttl(ttl: int | None) -> int:
    return int(ttl if ttl is not None else settings.WATCHER_IP_SEMAPHORE_TTL)


def acquire(ip: str, domain: str, token: str, ttl: int | None = None) -> bool:
    """Take the lock for (ip, domain) with ``token``; False if someone holds it."""
    return bool(get_redis().set(_key(ip, domain), token, nx=True, ex=_ttl(ttl)))


def release(ip: str, domain: str, token: str, client: Any = None) -> bool:
    """Release the lock if ``token`` holds it; True if it was released.

    With ``client`` a pipeline, the release is queued on it (and the answer is not known).
    """
    return bool(script(_RELEASE)(keys=[_key(ip, domain)], args=[token], client=client))


def extend(ip: str, domain: str, token: str, ttl: int | None = None) -> bool:
    """Renew the holder's TTL; False if ``token`` no longer holds the lock."""
    return bool(script(_EXTEND)(keys=[_key(ip, domain)], args=[token, _ttl(ttl)]))


def is_locked(ip: str, domain: str) -> bool:
    return bool(get_redis().exists(_key(ip, domain)))


def _scan(pattern: str) -> list[str]:
    return list(get_redis().scan_iter(match=pattern, count=1000))


def _split(key: str) -> tuple[str, str]:
    # watcher:ip_sem:{ip}:{domain} — an IPv6 address contains colons, the domain never does.
    ip, _, domain = key[len(_PREFIX) :].rpartition(":")
    return ip, domain


def locks_of(ip: str) -> dict[str, str]:
    """The domains locked for ``ip``, with their holders' tokens."""
    keys = _scan(f"{_PREFIX}{ip}:*")
    if not keys:
        return {}
    values = get_redis().mget(keys)
    return {_split(k)[1]: v for k, v in zip(keys, values, strict=True) if v is not None}


def release_all(ip: str) -> int:
    """Release every lock of ``ip`` whoever holds it (an operator's reset); returns the count."""
    keys = _scan(f"{_PREFIX}{ip}:*")
    return int(get_redis().delete(*keys)) if keys else 0


def stats() -> dict[str, Any]:
    """``{total_locks, by_domain, by_ip}`` of the locks held now."""
    by_domain: Counter[str] = Counter()
    by_ip: Counter[str] = Counter()
    for key in _scan(f"{_PREFIX}*"):
        ip, domain = _split(key)
        by_domain[domain] += 1
        by_ip[ip] += 1
    return {"total_locks": sum(by_ip.values()), "by_domain": dict(by_domain), "by_ip": dict(by_ip)}


def block_ip(ip: str, seconds: int, reason: str) -> None:
    """Keep ``ip`` away from every marketplace for ``seconds`` (after a panic)."""
    get_redis().set(BLOCKED_KEY.format(ip=ip), reason or "panic", ex=max(1, int(seconds)))


def is_blocked(ip: str) -> bool:
    return bool(get_redis().exists(BLOCKED_KEY.format(ip=ip)))
