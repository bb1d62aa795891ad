"""The upstream pool loop shared by both LLM protocols.

Upstreams are tried in priority order. Per upstream:

- HTTP 423 (and 429) means the worker is busy: go to the next upstream at once;
- 5xx answers, timeouts and network errors are retried ``upstream.retries`` times with a small
  exponential backoff, then the next upstream is tried;
- other 4xx answers are not retried (the same request would fail the same way);
- an answer that holds no JSON object, or no usable observation, moves on to the next upstream;
- no new attempt starts once the run has taken ``PARSER_LLM_TOTAL_BUDGET`` seconds (480).

Every HTTP call becomes an :class:`AttemptRecord`; nothing is written to the database here (the
caller stores the job and its attempts in one transaction after the run, so no transaction is
held open across slow HTTP calls). Log lines and recorded errors are redacted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from parser.llm.redact import redact, redact_headers
from parser.llm.validate import InvalidJSON, Validated, extract_json, validate_answer
from parser.models import AttemptStatus, LLMUpstream

log = logging.getLogger("parser.llm")

MAX_BACKOFF_SECONDS = 5.0
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class LLMRequest:
    """What to ask: the instructions (prompt + field list) and the page text."""

    instructions: str
    page_text: str
    request_id: str
    prompt_external_id: str | None = None


@dataclass(frozen=True)
class Reply:
    """The model's answer text and the upstream's id of the job, when it gives one."""

    text: str
    upstream_job_id: str = ""


@dataclass
class AttemptRecord:
    """One HTTP call to one upstream."""

    upstream: LLMUpstream | None
    attempt_no: int
    status: str
    http_status: int | None = None
    duration_ms: int = 0
    error: str = ""
    upstream_job_id: str = ""
    created_at: datetime = field(default_factory=timezone.now)


@dataclass
class PoolResult:
    """The outcome of a pool run: a complete validated answer, or why there is none."""

    attempts: list[AttemptRecord] = field(default_factory=list)
    upstream: LLMUpstream | None = None
    answer: dict[str, Any] | None = None
    validated: Validated | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.validated is not None and self.validated.complete


class CallFailed(Exception):
    """An upstream call that produced no answer. ``retry``: worth trying the same upstream."""

    def __init__(
        self, status: str, message: str, http_status: int | None = None, *, retry: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.http_status = http_status
        self.retry = retry


Sender = Callable[[httpx.Client, LLMUpstream, LLMRequest, str], Reply]


def error_text(response: httpx.Response) -> str:
    """A short description of an error answer: ``CODE: message`` when the body has one."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type") or ""
        message = error.get("message") or ""
        return f"{code}: {message}" if code else str(message)
    if isinstance(error, str):
        return error
    return f"HTTP {response.status_code}: {str(body)[:300]}"


def check_status(response: httpx.Response) -> None:
    """Raise :class:`CallFailed` for an answer that is not a success."""
    code = response.status_code
    if code < 400:
        return
    message = error_text(response)
    if code in (423, 429):
        raise CallFailed(AttemptStatus.BUSY, message or "busy", code)
    raise CallFailed(AttemptStatus.HTTP_ERROR, message, code, retry=code >= 500)


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise CallFailed(
            AttemptStatus.INVALID_JSON,
            f"response is not JSON: {response.text[:200]!r}",
            response.status_code,
        ) from exc


def timeout_of(upstream: LLMUpstream) -> httpx.Timeout:
    return httpx.Timeout(
        connect=upstream.connect_timeout,
        read=upstream.read_timeout,
        write=upstream.read_timeout,
        pool=upstream.connect_timeout,
    )


def backoff(retry_no: int) -> float:
    base = float(settings.PARSER_LLM_RETRY_BACKOFF)
    return min(base * 2 ** (retry_no - 1), MAX_BACKOFF_SECONDS)


def truncate_page(text: str) -> str:
    limit = int(settings.PARSER_LLM_MAX_PAGE_CHARS)
    return text if len(text) <= limit else text[:limit]


def auth_headers(upstream: LLMUpstream) -> dict[str, str]:
    key = upstream.api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


def log_request(upstream: LLMUpstream, url: str, headers: dict[str, str], body: str) -> None:
    if log.isEnabledFor(logging.DEBUG):
        secrets = (upstream.api_key(),)
        log.debug(
            "llm request upstream=%s url=%s headers=%s body=%s",
            upstream.name,
            redact(url, secrets),
            redact(redact_headers(headers), secrets),
            redact(body[:500], secrets),
        )


def run_pool(
    upstreams: Sequence[LLMUpstream],
    send: Sender,
    request: LLMRequest,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> PoolResult:
    """Ask the upstreams in order until one gives a complete, valid answer."""
    result = PoolResult()
    if not upstreams:
        result.error = "no enabled upstream for this backend"
        return result
    budget = float(settings.PARSER_LLM_TOTAL_BUDGET)
    deadline = time.monotonic() + budget
    for upstream in upstreams:
        secrets = (upstream.api_key(),)
        with httpx.Client(timeout=timeout_of(upstream)) as client:
            for try_no in range(upstream.retries + 1):
                if try_no:
                    sleep(backoff(try_no))
                if time.monotonic() >= deadline:
                    result.error = f"gave up after {budget:g} s; last: {result.error}"
                    return result
                record = AttemptRecord(
                    upstream=upstream, attempt_no=len(result.attempts) + 1, status=""
                )
                result.attempts.append(record)
                started = time.monotonic()
                retry = False
                try:
                    reply = send(
                        client, upstream, request, f"{request.request_id}-{record.attempt_no}"
                    )
                    record.upstream_job_id = reply.upstream_job_id[:100]
                    answer = extract_json(reply.text)
                    validated = validate_answer(answer)
                    if not validated.complete:
                        problems = "; ".join(f"{k}: {v}" for k, v in validated.problems.items())
                        raise CallFailed(
                            AttemptStatus.INVALID_ANSWER,
                            "no valid price and not out of stock"
                            + (f" ({problems})" if problems else ""),
                            200,
                        )
                except CallFailed as exc:
                    record.status, record.http_status = exc.status, exc.http_status
                    record.error, retry = exc.message, exc.retry
                except InvalidJSON as exc:
                    record.status, record.http_status = AttemptStatus.INVALID_JSON, 200
                    record.error = str(exc)
                except httpx.TimeoutException as exc:
                    record.status, retry = AttemptStatus.TIMEOUT, True
                    record.error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                except httpx.HTTPError as exc:
                    record.status, retry = AttemptStatus.ERROR, True
                    record.error = f"{type(exc).__name__}: {exc}"
                except SoftTimeLimitExceeded:
                    raise
                except Exception as exc:  # a bug must not cost the observation: fall back
                    log.exception("llm backend crashed upstream=%s", upstream.name)
                    record.status = AttemptStatus.ERROR
                    record.error = f"{type(exc).__name__}: {exc}"
                else:
                    record.status, record.http_status = AttemptStatus.OK, 200
                    result.upstream, result.answer, result.validated = upstream, answer, validated
                    result.error = ""
                record.duration_ms = int((time.monotonic() - started) * 1000)
                record.error = redact(record.error, secrets)[:MAX_ERROR_CHARS]
                log.info(
                    "llm attempt upstream=%s kind=%s attempt=%s status=%s http_status=%s "
                    "duration_ms=%s error=%s",
                    upstream.name,
                    upstream.kind,
                    record.attempt_no,
                    record.status,
                    record.http_status,
                    record.duration_ms,
                    record.error,
                )
                if record.status == AttemptStatus.OK:
                    return result
                result.error = f"{upstream.name}: {record.error}"
                if not retry:
                    break
    return result
