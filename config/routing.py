"""WebSocket routes.

Agents authenticate with their API key and send no browser Origin, so their route has neither
the Origin check nor the session and user middleware: an agent socket never acts on a cookie,
and each of 1,000 idle agent sockets holds no session store, lazy user or middleware frames
(bench/ws.py). Browser routes authenticate by session cookie and must be wrapped in
``browser_only``: the session and user middleware, inside the Origin check (which is what stops
another site from using the staff's cookie).
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import URLPattern, path

from office.consumers import OfficeConsumer
from watcher.consumers import AgentConsumer, LiveConsumer


def browser_only(app: Any) -> Any:
    return AllowedHostsOriginValidator(AuthMiddlewareStack(app))


websocket_urlpatterns: list[URLPattern] = [
    path("ws/watcher", AgentConsumer.as_asgi()),
    path("ws/live/agents", browser_only(LiveConsumer.as_asgi())),
    path("ws/office", browser_only(OfficeConsumer.as_asgi())),
]
