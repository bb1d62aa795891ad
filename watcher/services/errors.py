"""Errors a service raises for the edge (API, admin, commands) to turn into an answer."""

from __future__ import annotations

from django.utils.functional import Promise


class ServiceError(Exception):
    http_status = 400
    code = "invalid"

    def __init__(self, message: str | Promise) -> None:
        # Lazy messages are read now, in the language of the request that raised them.
        self.message = str(message)
        super().__init__(self.message)


class NotFound(ServiceError):
    http_status = 404
    code = "not_found"


class Forbidden(ServiceError):
    http_status = 403
    code = "forbidden"


class Conflict(ServiceError):
    http_status = 409
    code = "conflict"


class Unauthorized(ServiceError):
    http_status = 401
    code = "unauthorized"


class Unavailable(ServiceError):
    """The thing exists but cannot be reached now (e.g. an agent with no live WebSocket)."""

    http_status = 503
    code = "unavailable"
