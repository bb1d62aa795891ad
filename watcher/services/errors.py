"""Errors a service raises for the edge (API, admin, commands) to turn into an answer."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.utils.functional import Promise

# What the database raises when it cannot answer: every edge turns these into a 503.
DATABASE_OUTAGE = (OperationalError, InterfaceError)


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


def database_unreachable(exc: BaseException) -> bool:
    """Whether a database error means the server cannot be reached (refused or lost connection,
    the pool timing out, the server shutting down) rather than a statement failing (a deadlock,
    a cancelled query): psycopg's SQLSTATE, none for a failed connection, class 08 or 57P."""
    state = getattr(exc.__cause__, "sqlstate", None) or getattr(exc, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))


def log_database_error(logger: logging.Logger, exc: BaseException) -> None:
    """Logged once per answer: an outage in one line, any other database error (answered 503
    all the same, it is transient) with its traceback, so that a real fault is not hidden."""
    logger.warning(
        "database unavailable",
        extra={"error": type(exc).__name__},
        exc_info=None if database_unreachable(exc) else exc,
    )
