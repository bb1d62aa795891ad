"""The browser engine: a real Chromium driven by Playwright (optional dependency).

The browser is the operator's own (Debian's ``/usr/bin/chromium`` by default; Playwright's
downloaded browsers are never used). It scrolls and moves the mouse as the emulation settings
say, keeps each exit's cookies in a storage-state file, and can attach a JPEG screenshot of the
product block to the report as evidence.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watcher.agent.engine import Page
from watcher.agent.schedules import DIRECT, Exit

log = logging.getLogger("watcher.agent")

BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]  # fmt: skip
# Where the product block usually is; the whole viewport when none is found.
PRODUCT_BLOCK = ".product, [data-widget='webProductHeading'], .product-page, main"
# Screenshots above this are sent smaller (lower quality), then not at all.
MAX_SCREENSHOT_BYTES = 300_000
VIEWPORT = {"width": 1366, "height": 900}


def bezier(start: tuple[float, float], end: tuple[float, float], rng: random.Random, steps: int):
    """Points of a quadratic Bézier curve from start to end through a random control point."""
    control = (rng.uniform(min(start[0], end[0]), max(start[0], end[0]) + 200),
               rng.uniform(0, VIEWPORT["height"]))  # fmt: skip
    for i in range(1, steps + 1):
        t = i / steps
        x = (1 - t) ** 2 * start[0] + 2 * (1 - t) * t * control[0] + t**2 * end[0]
        y = (1 - t) ** 2 * start[1] + 2 * (1 - t) * t * control[1] + t**2 * end[1]
        yield x, y


class BrowserEngine:
    name = "browser"

    def __init__(
        self,
        executable: str,
        state_dir: Path,
        timeout: float,
        emulation: Callable[[], dict[str, Any]],
        scale: float = 1.0,
        screenshots: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self.executable = executable
        self.state_dir = Path(state_dir)
        self.timeout_ms = timeout * 1000
        self.emulation = emulation
        self.scale = scale
        self.screenshots = screenshots
        self.rng = rng or random.Random()
        self.playwright: Any = None
        self.browser: Any = None
        self.contexts: dict[str, Any] = {}

    def _storage(self, exit_: Exit) -> Path:
        name = (
            hashlib.sha256(exit_.url.encode()).hexdigest()[:12] if exit_.url != DIRECT else DIRECT
        )
        return self.state_dir / f"cookies-{name}.json"

    async def _context(self, exit_: Exit) -> Any:
        if self.browser is None:
            from playwright.async_api import async_playwright  # optional dependency

            self.playwright = await async_playwright().start()
            self.browser = await self.playwright.chromium.launch(
                executable_path=self.executable, args=BROWSER_ARGS
            )
        if exit_.url not in self.contexts:
            storage = self._storage(exit_)
            options: dict[str, Any] = {"viewport": VIEWPORT, "locale": "ru-RU"}
            if storage.exists():
                options["storage_state"] = str(storage)
            if exit_.url != DIRECT:
                options["proxy"] = {"server": exit_.url}
            self.contexts[exit_.url] = await self.browser.new_context(**options)
        return self.contexts[exit_.url]

    async def fetch(self, url: str, exit_: Exit) -> Page:
        started = time.monotonic()
        context = await self._context(exit_)
        page = await context.new_page()
        try:
            try:
                response = await page.goto(url, wait_until="load", timeout=self.timeout_ms)
            except Exception as exc:  # Playwright's errors: timeouts, refused connections
                timed_out = type(exc).__name__ == "TimeoutError"
                return Page(url, None, "", error=repr(exc)[:300], timed_out=timed_out,
                            elapsed_ms=_ms(started))  # fmt: skip
            await self._behave(page)
            text = await page.evaluate("document.body ? document.body.innerText : ''")
            shot = await self._screenshot(page) if self.screenshots else None
            await context.storage_state(path=str(self._storage(exit_)))
            status = response.status if response is not None else 200
            return Page(url, status, text, elapsed_ms=_ms(started), screenshot=shot)
        finally:
            await page.close()

    async def _behave(self, page: Any) -> None:
        """Scroll and move the mouse as the emulation settings say."""
        settings = self.emulation()
        if settings.get("mouse_movement"):
            start = (self.rng.uniform(0, 300), self.rng.uniform(0, 300))
            end = (self.rng.uniform(400, 1200), self.rng.uniform(200, 800))
            points = (
                bezier(start, end, self.rng, 12)
                if settings.get("mouse_curve", "bezier") == "bezier"
                else [end]
            )
            for x, y in points:
                await page.mouse.move(x, y)
        if settings.get("scroll_enabled"):
            for _ in range(int(settings.get("scroll_steps") or 0)):
                await page.mouse.wheel(0, self.rng.uniform(250, 600))
                await page.wait_for_timeout(self.rng.uniform(150, 400) * self.scale)
            await page.evaluate("window.scrollTo(0, 0)")

    async def _screenshot(self, page: Any) -> str | None:
        block = page.locator(PRODUCT_BLOCK).first
        target = block if await block.count() else page
        for quality in (60, 35):
            try:
                data = await target.screenshot(type="jpeg", quality=quality, timeout=5000)
            except Exception as exc:
                log.warning("screenshot failed", extra={"error": repr(exc)[:300]})
                return None
            if len(data) <= MAX_SCREENSHOT_BYTES:
                return base64.b64encode(data).decode()
        return None

    async def refresh_cookies(self) -> None:
        for context in self.contexts.values():
            await context.clear_cookies()
            await context.close()
        self.contexts = {}
        for file in self.state_dir.glob("cookies-*.json"):
            file.unlink()

    async def close(self) -> None:
        for context in self.contexts.values():
            await context.close()
        self.contexts = {}
        if self.browser is not None:
            await self.browser.close()
            await self.playwright.stop()
            self.browser = self.playwright = None


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
