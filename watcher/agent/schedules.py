"""The agent's schedules: exit pool, retries, cooldown and panic detection (SPEC §11).

Plain objects with an injectable clock (a function returning seconds), so that they are tested
without sleeping. They decide; the runtime (``watcher.agent.runtime``) waits and acts.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("watcher.agent")

Clock = Callable[[], float]
DIRECT = "direct"


def redact(url: str) -> str:
    """A proxy URL without its password, fit for logs and reports."""
    if url == DIRECT:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class Exit:
    """One way out to the marketplaces: ``direct`` or a proxy URL."""

    url: str
    problems: int = 0  # consecutive
    bad_until: float | None = None

    @property
    def name(self) -> str:
        return redact(self.url)


class ExitPool:
    """Exits are marked bad only after two consecutive problems, and revive after a timeout
    or on their next success (a bad exit is still used when no other is left)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        bad_after: int = 2,
        revive_after: float = 1800.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.exits = [Exit(url) for url in (urls or [DIRECT])]
        self.bad_after = bad_after
        self.revive_after = revive_after
        self.clock = clock

    def _revive(self) -> None:
        now = self.clock()
        for exit_ in self.exits:
            if exit_.bad_until is not None and exit_.bad_until <= now:
                log.info("exit revived", extra={"proxy": exit_.name, "why": "timeout"})
                exit_.bad_until, exit_.problems = None, 0

    def good(self) -> list[Exit]:
        self._revive()
        return [e for e in self.exits if e.bad_until is None]

    def pick(self, avoid: Exit | None = None) -> Exit:
        """A good exit other than ``avoid`` if there is one; else the one reviving soonest."""
        good = self.good()
        others = [e for e in good if e is not avoid]
        if others:
            return others[0]
        if good:
            return good[0]
        return min(self.exits, key=lambda e: e.bad_until or 0.0)

    def problem(self, exit_: Exit) -> bool:
        """Count a problem (a 403, an empty page, a network error); True if now marked bad."""
        exit_.problems += 1
        if exit_.problems >= self.bad_after and exit_.bad_until is None:
            exit_.bad_until = self.clock() + self.revive_after
            log.warning("exit marked bad", extra={"proxy": exit_.name, "problems": exit_.problems})
            return True
        return False

    def success(self, exit_: Exit) -> None:
        if exit_.bad_until is not None:
            log.info("exit revived", extra={"proxy": exit_.name, "why": "success"})
        exit_.problems, exit_.bad_until = 0, None

    def bad_count(self) -> int:
        return len(self.exits) - len(self.good())


class RetrySchedule:
    """Fast retries, then long ones: the wait before retry ``index`` (0-based), or None when
    the retries are spent. Each retry goes out through a different exit (the runtime's job)."""

    def __init__(
        self,
        fast: Sequence[float] = (30.0, 60.0),
        long: Sequence[float] = (120.0, 240.0, 900.0),
        max_retries: int | None = None,
    ) -> None:
        self.delays = [*fast, *long]
        self.max_retries = len(self.delays) if max_retries is None else max_retries

    def delay(self, retry_index: int) -> float | None:
        if retry_index >= min(self.max_retries, len(self.delays)):
            return None
        return self.delays[retry_index]


class Cooldown:
    """After ``threshold`` consecutive failed tasks, rest for ``duration`` seconds."""

    def __init__(self, threshold: int = 5, duration: float = 3600.0, clock: Clock = time.time):
        self.threshold = threshold
        self.duration = duration
        self.clock = clock
        self.failures = 0
        self.until: float | None = None

    def failure(self) -> bool:
        """Count a failed task; True when this one starts a cooldown."""
        self.failures += 1
        if self.failures >= self.threshold:
            self.failures = 0
            self.until = self.clock() + self.duration
            return True
        return False

    def success(self) -> None:
        self.failures = 0

    def remaining(self) -> float:
        if self.until is None:
            return 0.0
        left = self.until - self.clock()
        if left <= 0:
            self.until = None
            return 0.0
        return left


class PanicDetector:
    """Signs of blocking: any captcha page, or ``burst`` 403s within ``window`` seconds."""

    def __init__(self, burst: int = 3, window: float = 300.0, clock: Clock = time.monotonic):
        self.burst = burst
        self.window = window
        self.clock = clock
        self.forbidden: deque[float] = deque()

    def observe(self, status_code: int | None, captcha: bool) -> str | None:
        """Record one page; the panic reason if this page should start a panic."""
        if captcha:
            return "captcha"
        if status_code != 403:
            return None
        now = self.clock()
        self.forbidden.append(now)
        while self.forbidden and self.forbidden[0] <= now - self.window:
            self.forbidden.popleft()
        if len(self.forbidden) >= self.burst:
            self.forbidden.clear()
            return f"{self.burst} HTTP 403 within {int(self.window)} s"
        return None
