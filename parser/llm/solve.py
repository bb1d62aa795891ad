"""The solve-upstream pool (SPEC §8).

``POST {base_url}/v1/solve`` with ``{request_id, input: {text}, options: {prompt_id, profile_id,
force_new_chat, max_chat_uses}}`` → ``{ok: true, final: {text}, meta: {job_id, …}}`` or
``{ok: false, error: {code, message}}`` (INVALID_REQUEST 400, PROFILE_BUSY 503, CONTAINER_BUSY
503, UPSTREAM_ERROR 502, INTERNAL_ERROR 500). HTTP 423: the worker is busy, ask the next one.
``final.text`` is the model's answer; it holds the JSON object, maybe fenced or with prose.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from parser.llm.base import (
    CallFailed,
    LLMRequest,
    PoolResult,
    Reply,
    auth_headers,
    check_status,
    error_text,
    json_body,
    log_request,
    run_pool,
    truncate_page,
)
from parser.models import AttemptStatus, LLMUpstream

# ``ok: false`` in a 2xx answer (some orchestrator versions do that): retry these codes.
RETRYABLE_CODES = frozenset({"PROFILE_BUSY", "CONTAINER_BUSY", "UPSTREAM_ERROR", "INTERNAL_ERROR"})


def build_body(upstream: LLMUpstream, request: LLMRequest, attempt_id: str) -> dict[str, Any]:
    return {
        "request_id": attempt_id,
        "input": {
            "text": f"{request.instructions}\n\nPage text:\n{truncate_page(request.page_text)}"
        },
        "options": {
            "prompt_id": request.prompt_external_id or None,
            "profile_id": upstream.profile_id or None,
            "force_new_chat": upstream.force_new_chat,
            "max_chat_uses": upstream.max_chat_uses,
        },
    }


def send(
    client: httpx.Client, upstream: LLMUpstream, request: LLMRequest, attempt_id: str
) -> Reply:
    """One solve call; raises :class:`CallFailed` when there is no answer text."""
    url = upstream.base_url.rstrip("/") + "/v1/solve"
    headers = auth_headers(upstream)
    body = build_body(upstream, request, attempt_id)
    log_request(upstream, url, headers, json.dumps(body, ensure_ascii=False))
    response = client.post(url, json=body, headers=headers)
    check_status(response)
    data = json_body(response)
    if not isinstance(data, dict):
        raise CallFailed(AttemptStatus.INVALID_JSON, "answer is not an object", 200)
    if data.get("ok") is not True:
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        code = str(error.get("code") or "")
        raise CallFailed(
            AttemptStatus.HTTP_ERROR,
            error_text(response),
            response.status_code,
            retry=code in RETRYABLE_CODES,
        )
    final = data.get("final")
    text = final.get("text") if isinstance(final, dict) else None
    if not isinstance(text, str):
        raise CallFailed(AttemptStatus.INVALID_JSON, "no final.text in the answer", 200)
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    return Reply(text=text, upstream_job_id=str(meta.get("job_id") or ""))


def ask(upstreams: Sequence[LLMUpstream], request: LLMRequest) -> PoolResult:
    """Ask the solve workers in order."""
    return run_pool(upstreams, send, request)
