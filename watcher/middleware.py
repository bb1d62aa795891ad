"""A database that cannot be reached is a 503 with a page (or JSON under /api/), never a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from watcher.services.errors import DATABASE_OUTAGE, log_database_error
from watcher.views import database_unavailable

log = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """Answers a view's ``OperationalError`` (PostgreSQL down, the pool timing out) with a 503.

    The admin, the live pages and every other view reach the database first through
    ``request.user`` inside the view, so this catches them; ``handler500`` covers an error raised
    in a middleware. DRF views have their own (``watcher.api.views.exception_handler``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_OUTAGE):
            log_database_error(log, exception)
            return database_unavailable(request)
        return None
