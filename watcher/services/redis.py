"""The dispatcher's Redis connection and key names (the names are part of the contract)."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings
from redis.commands.core import Script

QUEUE_KEY = "watcher:task_queue:{marketplace}"
INFLIGHT_KEY = "watcher:task_inflight"
SEMAPHORE_KEY = "watcher:ip_sem:{ip}:{domain}"
BLOCKED_KEY = "watcher:ip_blocked:{ip}"
AGENT_STATE_KEY = "watcher:agent:{id}:state"
AGENT_COMPLETED_KEY = "watcher:agent:{id}:completed:{day}"
AGENT_FAILED_KEY = "watcher:agent:{id}:failed:{day}"
AGENT_TIMING_KEY = "watcher:agent:{id}:timing"
AGENT_COMMANDS_KEY = "watcher:agent:{id}:commands"
# The channel name of the agent's live WebSocket, with a TTL its server process keeps refreshing.
METRIC_KEY = "watcher:metrics:{name}"
AGENT_CONNECTION_KEY = "watcher:agent:{id}:connection"


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )


def get_redis() -> redis.Redis:
    """The shared client (a connection pool per process) for ``settings.REDIS_URL``."""
    return _client(settings.REDIS_URL)


@lru_cache(maxsize=64)
def _script(url: str, source: str) -> Script:
    return _client(url).register_script(source)


def script(source: str) -> Script:
    """A Lua script registered once per process (EVALSHA, reloaded by redis-py if flushed)."""
    return _script(settings.REDIS_URL, source)


def reset_client(setting: str, **kwargs: object) -> None:
    """Receiver of ``setting_changed`` (tests), connected in ``WatcherConfig.ready``."""
    if setting == "REDIS_URL":
        _client.cache_clear()
        _script.cache_clear()
