"""The one entry point to the parser: ``parse(raw_text, marketplace, sku)``.

Which backend serves a marketplace is configured in admin (:class:`BackendRoute`); without a
route the rules parser does, with no database write. An LLM backend runs the rules first (a
cheap fallback), then asks the upstreams, validates the answer and merges it with the rules
result (see :mod:`parser.llm.validate`); a failed or incomplete answer falls back to the rules
result. Every LLM run is recorded as a :class:`ParseJob` with its :class:`ParseAttempt` rows.

Routes are cached in-process for :data:`ROUTE_CACHE_SECONDS`: the hot path reads the table at
most once per interval per process. Saving or deleting a route clears this process's cache;
other processes see the change within the interval.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone, translation

from parser.llm import openai, solve
from parser.llm.base import LLMRequest, PoolResult
from parser.llm.validate import card_to_json, field_list, merge
from parser.models import (
    Backend,
    BackendRoute,
    JobStatus,
    LLMUpstream,
    ParseAttempt,
    ParseJob,
    Prompt,
)
from parser.rules import parse_rules
from parser.types import Marketplace, ParsedCard, ParseError, ParseErrorCode

log = logging.getLogger(__name__)

ROUTE_CACHE_SECONDS = 10.0
# Rules verdicts no LLM can overturn: a captcha, a missing product, an empty page.
HOPELESS_CODES = frozenset({ParseErrorCode.BLOCKED, ParseErrorCode.NOT_FOUND, ParseErrorCode.EMPTY})
MAX_STORED_ANSWER_CHARS = 20_000

DEFAULT_PROMPT = (
    "You read the text of one product card page of the Russian marketplace {marketplace} and "
    "extract the data of the product itself, not of similar or recommended products. Prices "
    "are in roubles; thin or non-breaking spaces separate thousands (1 299 ₽). The crossed-out "
    "price is the old price; a price 'с WB Кошельком' or 'с Ozon Картой' is the wallet/card "
    "price. Never guess: a value the page does not show is null."
)


@dataclass(frozen=True)
class Route:
    """The backend (and optionally the prompt) that serves a marketplace."""

    backend: str = Backend.RULES
    prompt_id: int | None = None


_route_lock = threading.Lock()
_route_cache: dict[str, Route] = {}
_route_cache_expires = 0.0


def clear_route_cache() -> None:
    """Forget the cached routes of this process (done when a route is saved or deleted)."""
    global _route_cache_expires
    with _route_lock:
        _route_cache_expires = 0.0


def _load_routes() -> dict[str, Route]:
    try:
        with transaction.atomic():
            rows = list(BackendRoute.objects.values_list("marketplace", "backend", "prompt_id"))
    except Exception:  # no database (yet): the rules still work
        log.warning("backend routes unavailable; using the rules parser", exc_info=True)
        return {}
    return {mp: Route(backend, prompt_id) for mp, backend, prompt_id in rows}


def get_route(marketplace: str) -> Route:
    """The route of a marketplace (rules when none is configured), cached briefly."""
    global _route_cache, _route_cache_expires
    now = time.monotonic()
    if now >= _route_cache_expires:
        routes = _load_routes()
        with _route_lock:
            _route_cache, _route_cache_expires = routes, now + ROUTE_CACHE_SECONDS
    return _route_cache.get(marketplace, Route())


def is_slow_backend(marketplace: str) -> bool:
    """Whether parsing this marketplace calls an LLM (parse it in a Celery worker then)."""
    return get_route(marketplace).backend != Backend.RULES


def parse(
    raw_text: str, marketplace: str, sku: str, *, task_id: uuid.UUID | str | None = None
) -> ParsedCard:
    """Parse one page into a card; raises :class:`ParseError` when it holds no observation.

    A card must carry a price, or say that the product is out of stock. The backend is the
    marketplace's route (rules by default).
    """
    return parse_with(None, raw_text, marketplace, sku, task_id=task_id)


def parse_with(
    backend: str | None,
    raw_text: str,
    marketplace: str,
    sku: str,
    task_id: uuid.UUID | str | None = None,
) -> ParsedCard:
    """Parse with a chosen backend (``None``: the marketplace's route), e.g. to re-parse."""
    route = get_route(marketplace)
    chosen = backend or route.backend
    if chosen not in Backend.values:
        raise ValueError(f"unknown parser backend {chosen!r}")
    if chosen == Backend.RULES:
        card = _run_rules(raw_text, marketplace, sku)
        _require_observation(card)
        return card
    prompt_id = route.prompt_id if chosen == route.backend else None
    return _parse_llm(chosen, raw_text, marketplace, sku, task_id, prompt_id)


def _run_rules(raw_text: str, marketplace: str, sku: str) -> ParsedCard:
    return parse_rules(raw_text, marketplace, sku)


def _has_observation(card: ParsedCard | None) -> bool:
    return card is not None and (card.current_price is not None or card.in_stock is False)


def _require_observation(card: ParsedCard) -> None:
    if not _has_observation(card):
        raise ParseError(ParseErrorCode.UNPARSEABLE, "no price found on the page")


def resolve_prompt(marketplace: str, prompt_id: int | None = None) -> Prompt | None:
    """The route's prompt if active, else the newest active one of the marketplace or of all."""
    active = Prompt.objects.filter(is_active=True)
    if prompt_id is not None and (prompt := active.filter(pk=prompt_id).first()):
        return prompt
    newest = ("-updated_at", "-id")
    return (
        active.filter(marketplace=marketplace).order_by(*newest).first()
        or active.filter(marketplace="").order_by(*newest).first()
    )


def build_instructions(prompt: Prompt | None, marketplace: str) -> str:
    """The prompt text (or the built-in one) followed by the answer format."""
    if prompt is not None:
        text = prompt.text.strip()
    else:
        # The prompt is English whatever the UI language: the marketplace's English name.
        with translation.override("en"):
            label = (
                str(Marketplace(marketplace).label)
                if marketplace in Marketplace.values
                else marketplace
            )
        text = DEFAULT_PROMPT.format(marketplace=label)
    return f"{text}\n\n{field_list()}"


def _as_uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _parse_llm(
    backend: str,
    raw_text: str,
    marketplace: str,
    sku: str,
    task_id: uuid.UUID | str | None,
    prompt_id: int | None,
) -> ParsedCard:
    started_at, clock = timezone.now(), time.monotonic()
    rules_card: ParsedCard | None = None
    rules_error: ParseError | None = None
    try:
        rules_card = _run_rules(raw_text, marketplace, sku)
    except ParseError as exc:
        rules_error = exc
    except Exception as exc:  # a rules bug must not stop the LLM from answering
        log.exception("rules backend crashed marketplace=%s sku=%s", marketplace, sku)
        rules_error = ParseError(ParseErrorCode.UNPARSEABLE, f"rules backend failed: {exc!r}")

    prompt = resolve_prompt(marketplace, prompt_id)
    request = LLMRequest(
        instructions=build_instructions(prompt, marketplace),
        page_text=raw_text,
        request_id=uuid.uuid4().hex,
        prompt_external_id=(prompt.external_id or None) if prompt else None,
    )
    draft = _JobDraft(
        task_id=_as_uuid(task_id),
        request_id=request.request_id,
        marketplace=marketplace,
        sku=sku,
        backend=backend,
        prompt=prompt,
        started_at=started_at,
        clock=clock,
    )
    if rules_error is not None and rules_error.code in HOPELESS_CODES:
        draft.save(JobStatus.FAILED, PoolResult(), error=str(rules_error))
        raise rules_error

    upstreams = list(
        LLMUpstream.objects.filter(kind=backend, enabled=True).order_by("priority", "id")
    )
    ask = solve.ask if backend == Backend.SOLVE else openai.ask
    pool = ask(upstreams, request)

    if pool.ok and pool.validated is not None:
        merged = merge(pool.validated, rules_card, backend)
        draft.save(
            JobStatus.OK,
            pool,
            card=merged.card,
            extra={
                "sources": merged.sources,
                "dropped": merged.dropped,
                "problems": pool.validated.problems,
            },
        )
        return merged.card

    if rules_card is not None and _has_observation(rules_card):
        draft.save(JobStatus.FALLBACK, pool, card=rules_card, error=pool.error)
        return rules_card

    reason = str(rules_error) if rules_error else "rules: no price found on the page"
    error = f"{pool.error or 'no LLM answer'}; {reason}"
    draft.save(JobStatus.FAILED, pool, error=error)
    raise ParseError(
        rules_error.code if rules_error else ParseErrorCode.UNPARSEABLE,
        f"no price found on the page ({backend} and rules)",
    )


@dataclass
class _JobDraft:
    """What is known of a job before it ends; :meth:`save` writes it with its attempts."""

    task_id: uuid.UUID | None
    request_id: str
    marketplace: str
    sku: str
    backend: str
    prompt: Prompt | None
    started_at: Any
    clock: float

    def save(
        self,
        status: str,
        pool: PoolResult,
        *,
        card: ParsedCard | None = None,
        error: str = "",
        extra: dict[str, Any] | None = None,
    ) -> ParseJob:
        result: dict[str, Any] = dict(extra or {})
        if card is not None:
            result["card"] = card_to_json(card)
            result["card_backend"] = card.backend
        if pool.answer is not None:
            answer = json.dumps(pool.answer, ensure_ascii=False, default=str)
            result["answer"] = (
                pool.answer if len(answer) <= MAX_STORED_ANSWER_CHARS else answer[:2000]
            )
        with transaction.atomic():
            job = ParseJob.objects.create(
                task_id=self.task_id,
                request_id=self.request_id,
                marketplace=self.marketplace,
                sku=self.sku[:50],
                backend=self.backend,
                prompt=self.prompt,
                prompt_version=self.prompt.version if self.prompt else None,
                upstream=pool.upstream,
                status=status,
                started_at=self.started_at,
                finished_at=timezone.now(),
                duration_ms=int((time.monotonic() - self.clock) * 1000),
                error=error[:5000],
                result=result,
            )
            ParseAttempt.objects.bulk_create(
                ParseAttempt(
                    job=job,
                    upstream=attempt.upstream,
                    prompt=self.prompt,
                    attempt_no=attempt.attempt_no,
                    status=attempt.status,
                    http_status=attempt.http_status,
                    duration_ms=attempt.duration_ms,
                    error=attempt.error,
                    upstream_job_id=attempt.upstream_job_id,
                    created_at=attempt.created_at,
                )
                for attempt in pool.attempts
            )
        log.info(
            "parse job backend=%s marketplace=%s sku=%s status=%s attempts=%s duration_ms=%s",
            self.backend,
            self.marketplace,
            self.sku,
            status,
            len(pool.attempts),
            job.duration_ms,
        )
        return job


__all__ = [
    "Route",
    "build_instructions",
    "clear_route_cache",
    "get_route",
    "is_slow_backend",
    "parse",
    "parse_with",
    "resolve_prompt",
]
