"""Signals the watcher sends for the apps above it (the Office), which connect to them.

The watcher never imports those apps: a receiver's failure is logged here and never breaks
the watcher's own work.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.dispatch import Signal

log = logging.getLogger(__name__)

# Sent with ``stage`` ("started", "finished", "failed"), ``day`` and, when finished, ``result``
# (a GenerationResult) or, when failed, ``error``.
night_generation = Signal()

R = TypeVar("R")


def _send(**kwargs: Any) -> None:
    for receiver, response in night_generation.send_robust(sender="watcher", **kwargs):
        if isinstance(response, Exception):
            log.error(
                "night_generation receiver failed",
                exc_info=response,
                extra={"receiver": getattr(receiver, "__qualname__", repr(receiver))},
            )


def announce_generation(day: dt.date, run: Callable[[dt.date], R]) -> R:
    """Run ``run(day)`` (a night's generation) between the signals of its start and its end."""
    _send(stage="started", day=day)
    try:
        result = run(day)
    except Exception as exc:
        _send(stage="failed", day=day, error=exc)
        raise
    _send(stage="finished", day=day, result=result)
    return result
