"""Demo data for a first look at the system: the catalogue and two keyed demo agents."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.db import transaction

from watcher.demo.catalogue import DEMO
from watcher.models import Agent, Competitor, Subscription
from watcher.services.agents import create_agent, rotate_key


@transaction.atomic
def load_demo(only_if_empty: bool = False) -> dict[str, int] | None:
    if only_if_empty and Subscription.objects.exists():
        return None
    created = {"subscriptions": 0, "competitors": 0}
    for brand, mp, sku, title, priority, competitors in DEMO:
        sub, made = Subscription.objects.get_or_create(
            marketplace=mp, sku=sku, defaults={"brand": brand, "title": title, "priority": priority}
        )
        created["subscriptions"] += made
        for comp_sku, name, comp_priority in competitors:
            _comp, made = Competitor.objects.get_or_create(
                subscription=sub,
                competitor_sku=comp_sku,
                defaults={"name": name, "priority": comp_priority},
            )
            created["competitors"] += made
    return created


# --- demo agents -------------------------------------------------------------------------------

DEMO_AGENTS = (("demo-agent-1", "10.99.0.1"), ("demo-agent-2", "10.99.0.2"))
MARKETPLACE_PATHS = ("wildberries", "ozon", "yandex_market")


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds an API key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def ensure_demo_agents(directory: Path, server: str, market: str) -> list[Path]:
    """Create the demo agents if missing and write each one's agent config file.

    The file (JSON, which the agent's YAML loader reads) holds the API key, so it is 0600 in a
    0700 folder. A key is created only when the agent is new or its file is gone (a rotation:
    the database keeps only the key's digest).
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    paths = []
    for name, ip in DEMO_AGENTS:
        path = directory / f"{name}.yaml"
        agent = Agent.objects.filter(name=name).first()
        saved = json.loads(path.read_text()) if path.exists() else {}
        if agent is None:
            agent, key = create_agent(name)
        elif saved.get("agent_id") == str(agent.pk) and saved.get("api_key"):
            key = saved["api_key"]
        else:
            key = rotate_key(agent)
        config = {
            "server": server,
            "api_key": key,
            "agent_id": str(agent.pk),
            "ip": ip,
            "sites": {mp: f"{market.rstrip('/')}/{mp}" for mp in MARKETPLACE_PATHS},
            "state_dir": str(directory / name),
            "heartbeat_interval": 10,
        }
        _write_private(path, json.dumps(config, indent=2))
        paths.append(path)
    return paths
