"""The web server as ``python -m config.server`` runs it, with its garbage collections timed.

    python bench/gc_timed_server.py LOG [--python-defaults] [config.server option …]

bench/ws.py starts its server this way. It loads the application first (``config.asgi`` sets
up the garbage collector: a freeze of what start-up made, its own thresholds), then, with
``--python-defaults``, takes that back (the baseline for it), and appends one line per
collection to LOG: the generation, the ``time.perf_counter()`` at its start (on Linux
``CLOCK_MONOTONIC``, one clock for every process) and its duration in seconds. Then it runs
``config.server`` with the remaining options, in this process: one worker, no reload (a worker
uvicorn spawned would load the application afresh, untimed), so it refuses ``--reload`` and
``--workers`` other than 1.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    log_path, *options = argv
    python_defaults = "--python-defaults" in options
    options = [o for o in options if o != "--python-defaults"]
    workers = [options[i + 1] for i, o in enumerate(options[:-1]) if o == "--workers"]
    if "--reload" in options or workers[-1:] not in ([], ["1"]):
        raise SystemExit("gc_timed_server.py times one worker, in its process: no --reload")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    pythons = gc.get_threshold()
    import config.asgi  # noqa: F401  (uvicorn finds it loaded)

    if python_defaults:
        gc.unfreeze()
        gc.set_threshold(*pythons)
    log = open(log_path, "a", buffering=1)  # noqa: SIM115  (open while the process lives)
    started = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            seconds = time.perf_counter() - started[0]
            log.write(f"{info['generation']} {started[0]:.6f} {seconds:.6f}\n")

    gc.callbacks.append(timed)
    from config.server import main as serve

    serve(options)


if __name__ == "__main__":
    main(sys.argv[1:])
