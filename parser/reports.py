"""The parse-job report: per upstream and per prompt, over a time range (SPEC §8).

Jobs are selected by ``started_at`` in ``[start, end]`` (both inclusive); an upstream's figures
come from the attempts of those jobs, a prompt's from the jobs. "errors" counts everything that
is not ``ok`` (for prompts: fallbacks and failures). Percentiles are nearest-rank, computed in
Python from the durations of the range — fine for the thousands of LLM jobs a day we expect.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count

from parser.models import AttemptStatus, JobStatus, LLMUpstream, ParseAttempt, ParseJob, Prompt


def percentile(values: list[int], share: float) -> int | None:
    """Nearest-rank percentile (``share`` in 0..1) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _durations(values: list[int]) -> dict[str, Any]:
    return {
        "avg_ms": round(sum(values) / len(values)) if values else None,
        "p95_ms": percentile(values, 0.95),
    }


def _by_status(statuses: Iterable[str], choices: Iterable[str]) -> dict[str, int]:
    counts = Counter(statuses)
    return {status: counts.get(status, 0) for status in choices}


def jobs_in(start: datetime, end: datetime):
    return ParseJob.objects.filter(started_at__gte=start, started_at__lte=end)


def summary(start: datetime, end: datetime) -> dict[str, Any]:
    """Totals, per-upstream and per-prompt figures of the jobs started in the range."""
    jobs = list(jobs_in(start, end).values_list("status", "duration_ms", "prompt_id", "backend"))
    attempts = list(
        ParseAttempt.objects.filter(job__started_at__gte=start, job__started_at__lte=end)
        .values_list("upstream_id", "status", "duration_ms", "http_status")
        .order_by()
    )

    per_upstream: dict[int | None, list[tuple[str, int, int | None]]] = defaultdict(list)
    for upstream_id, status, duration, http_status in attempts:
        per_upstream[upstream_id].append((status, duration, http_status))
    names = {u.pk: u for u in LLMUpstream.objects.filter(pk__in=[k for k in per_upstream if k])}
    upstreams = []
    for upstream_id, rows in per_upstream.items():
        upstream = names.get(upstream_id) if upstream_id else None
        statuses = [r[0] for r in rows]
        http = Counter(str(r[2]) for r in rows if r[0] != AttemptStatus.OK and r[2] is not None)
        upstreams.append(
            {
                "upstream_id": upstream_id,
                "name": upstream.name if upstream else None,
                "kind": upstream.kind if upstream else None,
                "attempts": len(rows),
                "by_status": _by_status(statuses, AttemptStatus.values),
                "errors": sum(1 for s in statuses if s != AttemptStatus.OK),
                "http_statuses": dict(sorted(http.items())),
                **_durations([r[1] for r in rows]),
            }
        )
    upstreams.sort(key=lambda u: (u["name"] is None, u["name"] or ""))

    per_prompt: dict[int | None, list[tuple[str, int]]] = defaultdict(list)
    for status, duration, prompt_id, _backend in jobs:
        per_prompt[prompt_id].append((status, duration))
    prompt_rows = {p.pk: p for p in Prompt.objects.filter(pk__in=[k for k in per_prompt if k])}
    prompts = []
    for prompt_id, rows in per_prompt.items():
        prompt = prompt_rows.get(prompt_id) if prompt_id else None
        statuses = [r[0] for r in rows]
        prompts.append(
            {
                "prompt_id": prompt_id,
                "name": prompt.name if prompt else None,
                "version": prompt.version if prompt else None,
                "jobs": len(rows),
                "by_status": _by_status(statuses, JobStatus.values),
                "errors": sum(1 for s in statuses if s != JobStatus.OK),
                **_durations([r[1] for r in rows]),
            }
        )
    prompts.sort(key=lambda p: (p["name"] is None, p["name"] or "", p["prompt_id"] or 0))

    return {
        "from": start,
        "to": end,
        "totals": {
            "jobs": len(jobs),
            "attempts": len(attempts),
            "by_status": _by_status((j[0] for j in jobs), JobStatus.values),
            "by_backend": dict(Counter(j[3] for j in jobs)),
            **_durations([j[1] for j in jobs]),
        },
        "upstreams": upstreams,
        "prompts": prompts,
    }


def job_page(start: datetime, end: datetime, limit: int, offset: int) -> dict[str, Any]:
    """One page of the jobs started in the range, newest first."""
    jobs = jobs_in(start, end)
    page = (
        jobs.select_related("upstream", "prompt")
        .annotate(attempt_count=Count("attempts"))
        .order_by("-started_at", "-id")[offset : offset + limit]
    )
    return {
        "count": jobs.count(),
        "limit": limit,
        "offset": offset,
        "results": [
            {
                "id": job.pk,
                "task_id": str(job.task_id) if job.task_id else None,
                "request_id": job.request_id,
                "marketplace": job.marketplace,
                "sku": job.sku,
                "backend": job.backend,
                "status": job.status,
                "prompt_id": job.prompt_id,
                "prompt_version": job.prompt_version,
                "upstream": job.upstream.name if job.upstream else None,
                "attempts": job.attempt_count,
                "started_at": job.started_at,
                "finished_at": job.finished_at,
                "duration_ms": job.duration_ms,
                "error": job.error,
            }
            for job in page
        ],
    }


def job_report(start: datetime, end: datetime, limit: int, offset: int) -> dict[str, Any]:
    """The report of the API endpoint: the summary plus one page of jobs."""
    return {**summary(start, end), "jobs": job_page(start, end, limit, offset)}
