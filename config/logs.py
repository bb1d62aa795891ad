"""Logging helpers: a request id on every line of a request, and secrets redacted everywhere.

``RequestIdMiddleware`` takes the proxy's ``X-Request-ID`` (when it looks like one) or makes one,
keeps it in a context variable for the request's thread and echoes it in the response;
``RequestIdFilter`` puts it on every record. ``RedactFilter`` scrubs API keys, tokens and
passwords from messages and extra fields, e.g. a WebSocket URL's ``api_key=`` query parameter
in a server's log line or an agent's ``Authorization: Bearer`` header in an error report.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.core.signals import request_finished

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_SECRET = re.compile(
    r"(?i)(api_key|apikey|token|access|refresh|password|secret)(=|\":\s*\"|':\s*')[^&\s\"',;]+"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_KEY = re.compile(r"\bwa_[A-Za-z0-9_-]{10,}")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


def redact(text: str) -> str:
    text = _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}[redacted]", text)
    return _KEY.sub("wa_[redacted]", text)


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        for name, value in list(record.__dict__.items()):
            if name in _STANDARD or isinstance(value, int | float | bool) or value is None:
                continue
            text = value if isinstance(value, str) else str(value)
            if (safe := redact(text)) != text:
                setattr(record, name, safe)
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get() or None
        return True


class RequestIdMiddleware:
    """First middleware: the request's id for its log lines and the ``X-Request-ID`` header."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        # Cleared when the response is closed, not on the way out of here: Django logs the
        # request's 4xx/5xx line after the middleware has returned.
        request_finished.connect(clear_request_id, dispatch_uid="config-logs-request-id")

    def __call__(self, request: Any) -> Any:
        sent = request.headers.get("X-Request-ID", "")
        request_id.set(sent if _SAFE_ID.match(sent) else uuid.uuid4().hex)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id.get()
        return response


def clear_request_id(**kwargs: Any) -> None:
    request_id.set("")
