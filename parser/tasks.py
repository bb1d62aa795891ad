"""Celery tasks of the parser (routed to the ``slow`` queue by ``CELERY_TASK_ROUTES``).

Thin: take ids, call the watcher's ``reparse_report`` service for each. An LLM failure never
raises out of the parser (it falls back to the rules), so the retries below are for transport
and database trouble; a retry resumes with the reports not yet done.
"""

from __future__ import annotations

import logging

import httpx
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import OperationalError

log = logging.getLogger(__name__)

RETRYABLE = (httpx.HTTPError, OperationalError)
MAX_RETRIES = 5


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def reparse_reports(self, report_ids: list[int], backend: str | None = None) -> int:
    """Re-parse stored task reports (``TaskReport`` ids) with ``backend`` (None: the route's).

    Also the async parse path: the watcher enqueues ``reparse_reports([report.pk])`` when
    :func:`parser.services.is_slow_backend` says the marketplace is parsed by an LLM.
    """
    from watcher.services import results

    reparse_report = getattr(results, "reparse_report", None)
    if reparse_report is None:
        raise RuntimeError("watcher.services.results.reparse_report is not available")
    done = 0
    for index, report_id in enumerate(report_ids):
        try:
            reparse_report(int(report_id), backend)
        except RETRYABLE as exc:
            countdown = get_exponential_backoff_interval(
                factor=2, retries=self.request.retries, maximum=300, full_jitter=True
            )
            log.warning(
                "reparse failed report_id=%s retry_in=%ss error=%s",
                report_id,
                countdown,
                type(exc).__name__,
            )
            raise self.retry(
                exc=exc, args=(list(report_ids[index:]), backend), countdown=countdown
            ) from exc
        done += 1
    return done
