"""Prometheus metrics (SPEC §12), read at scrape time from Redis and the database.

Counters of events (distributed, completed, failed) are Redis counters bumped where the event
happens, so every web process and worker adds to the same figure; a Redis restart resets
them, which Prometheus' ``rate()`` handles as a counter reset. Gauges are computed when
scraped.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from watcher.models import Agent, AgentStatus
from watcher.services import queues, semaphore
from watcher.services.redis import METRIC_KEY, get_redis

COUNTERS = {
    "tasks_distributed": "Tasks handed out to agents.",
    "tasks_completed": "Tasks completed with an observation.",
    "tasks_failed": "Task attempts that failed (agent error, blocked, not found, parse error).",
}


def count(name: str, amount: int = 1) -> None:
    """Add to one of :data:`COUNTERS`."""
    get_redis().incrby(METRIC_KEY.format(name=name), amount)


class WatcherCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        queued = GaugeMetricFamily(
            "watcher_tasks_queued", "Task ids waiting in the ready queues.", labels=["marketplace"]
        )
        for mp, n in queues.lengths().items():
            queued.add_metric([mp], n)
        yield queued
        values = get_redis().mget([METRIC_KEY.format(name=n) for n in COUNTERS])
        for (name, doc), value in zip(COUNTERS.items(), values, strict=True):
            yield CounterMetricFamily(f"watcher_{name}", doc, value=int(value or 0))
        yield GaugeMetricFamily(
            "watcher_semaphore_locks",
            "IP-per-domain semaphores held now.",
            value=semaphore.stats()["total_locks"],
        )
        online = Agent.objects.filter(is_enabled=True).exclude(status=AgentStatus.OFFLINE)
        yield GaugeMetricFamily(
            "watcher_agents_online", "Enabled agents not offline.", value=online.count()
        )
        sockets = sum(1 for _ in get_redis().scan_iter(match="watcher:agent:*:connection"))
        yield GaugeMetricFamily(
            "watcher_ws_connections", "Agents with a live WebSocket.", value=sockets
        )


def render() -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WatcherCollector())
    return generate_latest(registry)
