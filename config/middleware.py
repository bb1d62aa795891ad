"""Django's browser middleware, skipped for the API requests that carry a bearer token.

Agents call the API with ``Authorization: Bearer wa_…`` (their API key), staff scripts with
``Authorization: Bearer <JWT>``: JSON in and out, no cookies. For those requests sessions, CSRF
cookies, ``request.user`` and flash messages do nothing but cost: 4.6 % of the CPU of an agent's
``GET /tasks/next`` (measured in one process, interleaved with Django's own classes). DRF
decides such a request by its token alone: a token it cannot verify is a 401 before a session
would be looked at, so skipping the session opens no way around CSRF. Each class here is
Django's own, and does exactly what Django's does for every other request (browsers, and API
clients that rely on their session).

Languages are still negotiated (error messages are translated), and the security headers are
still set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import csrf

API_PREFIX = "/api/"
BEARER = "bearer "  # compared with the header in lower case


def is_token_request(request: HttpRequest) -> bool:
    """An API request that carries a bearer token (whether the token is valid is the API's
    business: it answers 401 without any of the skipped middleware's help). Decided once per
    request, so that the four classes agree."""
    found: bool | None = getattr(request, "_watcher_token_request", None)
    if found is None:
        found = request.path_info.startswith(API_PREFIX) and (
            request.META.get("HTTP_AUTHORIZATION", "")[: len(BEARER)].lower() == BEARER
        )
        request._watcher_token_request = found  # type: ignore[attr-defined]
    return found


class _SkippedForTokens:
    """Sync mode only (how config/wsgi_bridge.py runs Django); in async mode all of it runs."""

    get_response: Callable[[HttpRequest], HttpResponseBase]
    async_mode: bool

    def skipped(self, request: HttpRequest) -> bool:
        return not self.async_mode and is_token_request(request)

    def __call__(self, request: HttpRequest) -> Any:
        if self.skipped(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_SkippedForTokens, sessions.SessionMiddleware):
    pass


class CsrfViewMiddleware(_SkippedForTokens, csrf.CsrfViewMiddleware):
    def process_view(self, request: HttpRequest, callback: Any, args: Any, kwargs: Any) -> Any:
        if self.skipped(request):
            return None
        return super().process_view(request, callback, args, kwargs)


class AuthenticationMiddleware(_SkippedForTokens, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_SkippedForTokens, messages.MessageMiddleware):
    pass
