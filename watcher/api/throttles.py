"""DRF throttles of the login endpoint and of wrong agent keys (429 with ``Retry-After``)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class LoginIPThrottle(SimpleRateThrottle):
    """``/api/v1/auth/token`` attempts per client address."""

    scope = "login_ip"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUserThrottle(SimpleRateThrottle):
    """``/api/v1/auth/token`` attempts per username, from any address."""

    scope = "login_user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        username = request.data.get("username") if isinstance(request.data, dict) else None
        if not isinstance(username, str) or not username:
            return None
        ident = username.strip().lower()[:150].encode("unicode_escape").decode()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class BadAgentKeyThrottle(SimpleRateThrottle):
    """Wrong agent API keys per client address: only failures count (``record_failure``);
    once over the rate, even a right key waits, so keys cannot be guessed quickly."""

    scope = "bad_agent_key"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def over_limit(self, request: Request) -> bool:
        self.key = self.get_cache_key(request, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        self.history = [t for t in self.history if t > self.now - self.duration]
        return len(self.history) >= self.num_requests

    def record_failure(self, request: Request) -> None:
        if not self.over_limit(request):
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)
