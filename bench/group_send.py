"""The channel layer's blocking group send: one script call against the two-round-trip path.

A command's POST makes one ``group_send_many_blocking`` call of two group sends (the agent's
group, the live pages' group); so do ACKs and every live event sent from sync code, with one.
This bench times that call, per call, in CPU of this process and in wall time, two ways in the
same run, in turns:

- ``GROUP_FANOUT_LUA``: one script call reads the members in Redis and stores the messages
  (the layer as configured);
- baseline: the same layer forced onto its two-round-trip path (a ``channel_capacity`` pattern
  that matches nothing): one pipeline reads the members, one script call pushes.

Each group has one member, a channel of this process, as an agent's group has; its messages are
deleted every 40 calls (80 messages; the layer's default capacity is 100) so that none is
dropped.

Usage: python bench/group_send.py [--calls 1000] [--rounds 7]
It uses the configured Redis (REDIS_URL, or the embedded default) under its own key prefix and
deletes its keys at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from config.channel_layer import RedisChannelLayer  # noqa: E402

# The size of a live command event (watcher.services.events.command_event).
MESSAGE = {
    "type": "live.command",
    "event": "acked",
    "command": {
        "id": "6f1c1f9e-3b1a-4a4e-9a57-0f6f1c1f9e3b",
        "agent_id": "0b3c2f4e-8d7a-4c1b-a0e9-5d6c7b8a9f01",
        "action": "reload_config",
        "params": {"n": 1},
        "status": "acked",
        "ack_status": "ok",
        "attempts": 1,
        "sent_by": "admin",
        "created_at": "2026-12-01T13:00:00+00:00",
        "sent_at": "2026-12-01T13:00:00+00:00",
        "acked_at": "2026-12-01T13:00:00.012000+00:00",
        "timeout_at": "2026-12-01T13:05:00+00:00",
    },
}
GROUPS = ("agent_bench", "live_bench")


class Side:
    def __init__(self, name: str, layer: RedisChannelLayer) -> None:
        self.name, self.layer = name, layer
        self.channel = asyncio.run(self._join())
        self.channel_key = layer.prefix + layer.non_local_name(self.channel)
        self.rounds: list[tuple[float, float]] = []

    async def _join(self) -> str:
        channel = await self.layer.new_channel()
        for group in GROUPS:
            await self.layer.group_add(group, channel)
        return channel

    def run(self, calls: int) -> tuple[float, float]:
        """(CPU µs, wall µs) per call."""
        client, _ = self.layer._blocking_client(0)
        sends = [(group, MESSAGE) for group in GROUPS]
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(calls):
            self.layer.group_send_many_blocking(sends)
            if i % 40 == 39:
                client.delete(self.channel_key)
        return (
            (time.process_time() - cpu) / calls * 1e6,
            (time.perf_counter() - wall) / calls * 1e6,
        )

    def cleanup(self) -> None:
        client, _ = self.layer._blocking_client(0)
        client.delete(self.channel_key, *(self.layer._group_key(g) for g in GROUPS))


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--calls", type=int, default=1000)
    args.add_argument("--rounds", type=int, default=7)
    options = args.parse_args(argv)
    prefix = f"bench-gs-{secrets.token_hex(3)}"
    hosts = [settings.REDIS_URL]
    script = Side("one script call", RedisChannelLayer(hosts=hosts, prefix=f"{prefix}-a"))
    # A capacity pattern the script cannot apply: the layer takes its two-round-trip path.
    pattern = {"no-such-channel-*": 1}
    baseline = Side(
        "baseline: pipeline + push",
        RedisChannelLayer(hosts=hosts, prefix=f"{prefix}-b", channel_capacity=pattern),
    )
    assert script.layer.fans_out_in_redis and not baseline.layer.fans_out_in_redis
    print(
        f"redis: {'embedded' if settings.REDIS_EMBEDDED else 'REDIS_URL'}  cpus: {os.cpu_count()}"
    )
    try:
        for side in (script, baseline):
            side.run(200)  # warm-up: connections, script registration
        for _ in range(options.rounds):
            for side in (script, baseline):
                side.rounds.append(side.run(options.calls))
    finally:
        script.cleanup()
        baseline.cleanup()
    medians = {}
    for side in (script, baseline):
        cpu = statistics.median(r[0] for r in side.rounds)
        wall = statistics.median(r[1] for r in side.rounds)
        medians[side.name] = (cpu, wall)
        print(
            f"{side.name:<28} per call of two group sends: CPU {cpu:6.0f} µs  wall {wall:6.0f} µs"
            f"  (median of {options.rounds} rounds of {options.calls})"
        )
    (cpu_a, wall_a), (cpu_b, wall_b) = medians.values()
    print(f"ratio script / baseline: CPU {cpu_a / cpu_b:.2f}×  wall {wall_a / wall_b:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
