"""config/asgi.py: the server process's application."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_what_start_up_made_is_left_out_of_full_collections() -> None:
    """A full garbage collection stops every socket of the event loop: in a fresh process that
    has loaded the application, what start-up made (Django, DRF, the URLconf) is frozen, and
    the collector tracks next to nothing yet."""
    code = "import gc, config.asgi; print('GC', gc.get_freeze_count(), len(gc.get_objects()))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("GC "))
    frozen, tracked = map(int, line.split()[1:])
    assert frozen > 50_000
    assert tracked < frozen // 20
