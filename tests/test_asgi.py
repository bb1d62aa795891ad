"""config/asgi.py: the server process's application."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_server_sets_its_garbage_collector_for_many_sockets() -> None:
    """A collection of the middle or oldest generation stops every socket of the event loop:
    in a fresh process that has loaded the application, what start-up made (Django, DRF, the
    URLconf) is frozen, the collector tracks next to nothing yet, and middle collections come
    every 100 young ones (config/asgi.py says why)."""
    code = (
        "import gc, config.asgi; "
        "print('GC', gc.get_freeze_count(), len(gc.get_objects()), *gc.get_threshold())"
    )
    # The child uses this run's Redis (embedded or not): it must not start one of its own.
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("GC "))
    frozen, tracked, *thresholds = map(int, line.split()[1:])
    assert frozen > 50_000
    assert tracked < frozen // 20
    if sys.version_info < (3, 14):  # the incremental collector reads the thresholds otherwise
        assert thresholds[1] == 100
