"""Fetching pages: the plain-HTTP engine, the mapping of task URLs to ``--site`` hosts, and the
classification of what came back into the structured error events of SPEC §11."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from watcher.agent.schedules import DIRECT, Exit
from watcher.agent.text import visible_text

log = logging.getLogger("watcher.agent")

CAPTCHA = re.compile(
    r"не робот|captcha|капч|подтвердите,? что|подозрительн\w* (?:трафик|активност)|"
    r"проверка браузера|checking your browser|too many requests",
    re.IGNORECASE,
)


def site_url(task_url: str, marketplace: str, sites: dict[str, str]) -> str:
    """The URL to fetch: the task URL, or its path and query appended to the site's base."""
    base = sites.get(marketplace)
    if not base:
        return task_url
    parts = urlsplit(task_url)
    return base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class Page:
    url: str
    status: int | None  # None when no answer came
    text: str  # the visible text (or the body as is when it is not HTML)
    error: str | None = None  # a network error
    timed_out: bool = False
    elapsed_ms: int = 0
    screenshot: str | None = None  # base64 JPEG of the product block (browser engine)

    @property
    def captcha(self) -> bool:
        head = "\n".join(self.text.splitlines()[:40])
        return self.status in (200, 403, 429) and bool(CAPTCHA.search(head))


@dataclass(frozen=True)
class Verdict:
    """What a page means: ``report`` it (the server's parser tells the outcome apart), or an
    error with its structured fields and whether another try may help."""

    report: bool
    error_type: str | None = None
    error_source: str | None = None
    action_required: str | None = None
    retriable: bool = False


def classify(page: Page) -> Verdict:
    if page.status is None:
        if page.timed_out:
            return Verdict(False, "timeout", "network", "increase_timeout", True)
        return Verdict(False, "network_error", "network", "change_proxy", True)
    if page.captcha:
        # Reported: the server records the blocked page; the runtime then panics.
        return Verdict(True, "captcha", "marketplace", "refresh_proxy_pool")
    if page.status == 403:
        return Verdict(False, "http_403", "marketplace", "change_proxy", True)
    if page.status == 429:
        return Verdict(False, "http_429", "marketplace", "add_delay", True)
    if page.status >= 500:
        return Verdict(False, f"http_{page.status}", "marketplace", "retry", True)
    if page.status == 404 or page.status == 410:
        # The marketplace's "not found" page: a real outcome, reported for the parser to name.
        return Verdict(True, "not_found", "marketplace", "skip_url")
    if page.status >= 400:
        return Verdict(False, f"http_{page.status}", "marketplace", "skip_url", False)
    if not page.text.strip():
        return Verdict(False, "empty_page", "marketplace", "wait_for_networkidle", True)
    return Verdict(True)


class HttpEngine:
    """Plain HTTP with httpx: one client (and cookie jar) per exit."""

    name = "http"

    def __init__(self, timeout: float, user_agent: str) -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self.clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, exit_: Exit) -> httpx.AsyncClient:
        if exit_.url not in self.clients:
            self.clients[exit_.url] = httpx.AsyncClient(
                proxy=None if exit_.url == DIRECT else exit_.url,
                timeout=self.timeout,
                follow_redirects=True,
                trust_env=False,
                headers={"User-Agent": self.user_agent, "Accept-Language": "ru-RU,ru;q=0.9"},
            )
        return self.clients[exit_.url]

    async def fetch(self, url: str, exit_: Exit) -> Page:
        started = time.monotonic()
        try:
            response = await self._client(exit_).get(url)
        except httpx.TimeoutException as exc:
            return Page(url, None, "", error=repr(exc), timed_out=True, elapsed_ms=_ms(started))
        except httpx.HTTPError as exc:
            return Page(url, None, "", error=repr(exc), elapsed_ms=_ms(started))
        body = response.text
        if "html" in response.headers.get("content-type", "") or body.lstrip().startswith("<"):
            body = visible_text(body)
        return Page(url, response.status_code, body, elapsed_ms=_ms(started))

    async def refresh_cookies(self) -> None:
        """Start every exit over with an empty cookie jar."""
        await self.close()

    async def close(self) -> None:
        clients, self.clients = self.clients, {}
        for client in clients.values():
            await client.aclose()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
