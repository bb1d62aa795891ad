"""WebSocket routes.

Agents authenticate with their API key and send no browser Origin, so their route is not
origin-checked. Browser routes authenticate by session cookie and must be wrapped in
``browser_only`` (the Origin check is what stops another site from using the staff's cookie).
"""

from __future__ import annotations

from typing import Any

from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import URLPattern, path

from watcher.consumers import AgentConsumer, LiveConsumer


def browser_only(app: Any) -> Any:
    return AllowedHostsOriginValidator(app)


websocket_urlpatterns: list[URLPattern] = [
    path("ws/watcher", AgentConsumer.as_asgi()),
    path("ws/live/agents", browser_only(LiveConsumer.as_asgi())),
]
