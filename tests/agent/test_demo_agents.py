"""The demo agents of `make run`: created once, keyed, their config files private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from django.core.management import call_command

from watcher.agent.config import load_config
from watcher.models import Agent
from watcher.services.agents import authenticate_key

pytestmark = pytest.mark.django_db


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_demo_agents_get_private_config_files_that_the_agent_reads(tmp_path: Path) -> None:
    folder = tmp_path / "demo-agents"
    call_command("demo_agents", "--dir", str(folder), "--market", "http://127.0.0.1:9009")
    files = sorted(folder.glob("*.yaml"))
    assert [f.name for f in files] == ["demo-agent-1.yaml", "demo-agent-2.yaml"]
    assert mode(folder) == 0o700 and all(mode(f) == 0o600 for f in files)
    configs = [load_config({"config": str(f)}, environ={}) for f in files]
    assert {str(authenticate_key(c.api_key).pk) for c in configs} == {c.agent_id for c in configs}
    assert configs[0].sites["ozon"] == "http://127.0.0.1:9009/ozon"
    assert configs[0].ip != configs[1].ip  # two mobile IPs: both may work on one marketplace
    assert configs[0].server == "http://127.0.0.1:8000"

    # Again: nothing new, the same keys.
    call_command("demo_agents", "--dir", str(folder))
    assert Agent.objects.count() == 2
    assert [load_config({"config": str(f)}, environ={}).api_key for f in files] == [
        c.api_key for c in configs
    ]
    # A lost file: the key is rotated (only its digest is stored), the old key stops working.
    files[0].unlink()
    call_command("demo_agents", "--dir", str(folder))
    fresh = load_config({"config": str(files[0])}, environ={})
    assert fresh.api_key != configs[0].api_key and authenticate_key(configs[0].api_key) is None
    assert str(authenticate_key(fresh.api_key).pk) == fresh.agent_id
