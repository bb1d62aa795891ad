"""The OpenAI-compatible chat-completions backend.

``POST {base_url}/chat/completions`` with the prompt as the system message and the page text as
the user message, JSON mode and temperature 0; the answer is ``choices[0].message.content``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx

from parser.llm.base import (
    CallFailed,
    LLMRequest,
    PoolResult,
    Reply,
    auth_headers,
    check_status,
    json_body,
    log_request,
    run_pool,
    truncate_page,
)
from parser.models import AttemptStatus, LLMUpstream


def build_body(upstream: LLMUpstream, request: LLMRequest) -> dict[str, object]:
    return {
        "model": upstream.model,
        "messages": [
            {"role": "system", "content": request.instructions},
            {"role": "user", "content": truncate_page(request.page_text)},
        ],
        "response_format": {"type": "json_object"},
        "temperature": 0,
    }


def send(
    client: httpx.Client, upstream: LLMUpstream, request: LLMRequest, attempt_id: str
) -> Reply:
    """One chat-completions call; raises :class:`CallFailed` when there is no answer text."""
    url = upstream.base_url.rstrip("/") + "/chat/completions"
    headers = {**auth_headers(upstream), "X-Request-Id": attempt_id}
    body = build_body(upstream, request)
    log_request(upstream, url, headers, json.dumps(body, ensure_ascii=False))
    response = client.post(url, json=body, headers=headers)
    check_status(response)
    data = json_body(response)
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise CallFailed(
            AttemptStatus.INVALID_JSON, "no choices[0].message.content", response.status_code
        ) from exc
    if not isinstance(content, str):
        raise CallFailed(AttemptStatus.INVALID_JSON, "content is not text", response.status_code)
    return Reply(text=content, upstream_job_id=str(data.get("id") or ""))


def ask(upstreams: Sequence[LLMUpstream], request: LLMRequest) -> PoolResult:
    """Ask the OpenAI-compatible upstreams in order."""
    return run_pool(upstreams, send, request)
