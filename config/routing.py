"""WebSocket routes.

Agents authenticate with their API key and send no browser Origin, so their route has neither
the Origin check nor the session and user middleware: an agent socket never acts on a cookie,
and each of 1,000 idle agent sockets holds no session store, lazy user or middleware frames
(bench/ws.py). Browser routes authenticate by session cookie and must be wrapped in
``browser_only``: the session and user middleware, inside the Origin check (which is what stops
another site from using the staff's cookie).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.urls import URLPattern, path, re_path

from office.consumers import OfficeConsumer
from watcher.consumers import (
    CLOSE_TRY_AGAIN_LATER,
    DATABASE_OUTAGE,
    AgentConsumer,
    LiveConsumer,
    RefusingConsumer,
    log_database_error,  # the consumers' own way of logging an outage
)

DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
log = logging.getLogger(__name__)


def _host_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(f"//{netloc}")
        return (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 80)
    except ValueError:
        return None


def same_origin(scope: dict[str, Any]) -> bool:
    """The Origin's host *and port* are the page's own (the Host header), or the origin is one
    of ``CSRF_TRUSTED_ORIGINS`` (behind a proxy that rewrites Host), as Django's CSRF check."""
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin", b"").decode("latin-1")
    host = headers.get(b"host", b"").decode("latin-1")
    if not origin or not host:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parsed = urlsplit(origin)
    scheme = scope.get("scheme", "ws")
    if (parsed.scheme == "https") != (scheme == "wss"):
        return False
    page = _host_port(parsed.netloc, parsed.scheme)
    return page is not None and page == _host_port(host, scheme)


class SameOriginValidator(OriginValidator):
    """Channels' Origin check against ``ALLOWED_HOSTS`` (host only), after the same-origin
    check above: another site on the same host but another port is refused too."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, settings.ALLOWED_HOSTS)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await super().__call__(scope, receive, send)


class CloseOnDatabaseOutage:
    """A browser socket whose session or user cannot be read (the database is unreachable) is
    closed with 1013, try again later, as the consumers close theirs (``KeptConsumer``): the
    session middleware meets the outage before any consumer runs."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        sent: set[str] = set()

        async def tracked(message: dict[str, Any]) -> None:
            sent.add(message["type"])
            await send(message)

        try:
            await self.application(scope, receive, tracked)
        except DATABASE_OUTAGE as exc:
            log_database_error(log, exc)
            if "websocket.close" in sent:
                return
            # The client may be gone already: nothing left to tell it.
            with contextlib.suppress(OSError, RuntimeError):
                if "websocket.accept" not in sent:
                    await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER})


def browser_only(app: Any) -> Any:
    return SameOriginValidator(CloseOnDatabaseOutage(AuthMiddlewareStack(app)))


websocket_urlpatterns: list[URLPattern] = [
    path("ws/watcher", AgentConsumer.as_asgi()),
    path("ws/live/agents", browser_only(LiveConsumer.as_asgi())),
    path("ws/office", browser_only(OfficeConsumer.as_asgi())),
    # Last: any other path is refused at the handshake (403), not an error in the server.
    re_path(r"", RefusingConsumer.as_asgi()),
]
