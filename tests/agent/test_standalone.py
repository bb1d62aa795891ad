"""The agent and the fake marketplace run on a machine that has only them: no Django."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_agent_and_the_marketplace_import_no_django() -> None:
    code = (
        "import json, sys, watcher.agent.cli, watcher.agent.runtime, watcher.demo.marketplace\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    loaded = set(json.loads(out))
    assert not loaded & {"django", "rest_framework", "channels", "celery", "config", "parser"}


def test_the_agent_requirements_match_the_project_pins() -> None:
    project = (ROOT / "requirements.txt").read_text().splitlines()
    for line in (ROOT / "watcher/agent/requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line in project, line
