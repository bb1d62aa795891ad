"""Secrets never reach a log line or a stored error.

:func:`redact` masks what looks like a credential in free text: bearer tokens, ``sk-…`` keys,
``key=…``/``token=…``/``password=…`` pairs (query strings, JSON, headers) and the password of a
URL (``http://user:pass@host`` → ``http://user:***@host``). Known secret values (the API key of
the upstream being called) are masked wherever they appear, whatever they look like.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "***"

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"}
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # URL credentials: scheme://user:password@host
    (re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+:)[^@\s/]+(?=@)"), rf"\g<pre>{MASK}"),
    # Authorization: Bearer <token> / Basic <token>
    (re.compile(r"(?i)\b(?P<pre>(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"), rf"\g<pre>{MASK}"),
    # OpenAI-style keys anywhere: sk-..., sk-proj-...
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), f"sk-{MASK}"),
    # "api_key": "value" in JSON-ish text
    (
        re.compile(
            r"""(?ix)(?P<pre>["']?(?:api[_-]?key|apikey|key|token|access[_-]?token|secret|
            password|passwd|pwd)["']?\s*:\s*["'])[^"']+"""
        ),
        rf"\g<pre>{MASK}",
    ),
    # key=value in query strings, forms and headers
    (
        re.compile(
            r"""(?ix)(?P<pre>\b(?:api[_-]?key|apikey|key|token|access[_-]?token|secret|
            password|passwd|pwd)\s*=\s*)[^&\s"',;]+"""
        ),
        rf"\g<pre>{MASK}",
    ),
)


def redact(text: object, secrets: Iterable[str] = ()) -> str:
    """``text`` as a string with every credential masked."""
    result = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            result = result.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        result = pattern.sub(replacement, result)
    return result


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with the credential-bearing ones masked."""
    return {
        name: (MASK if name.lower() in SECRET_HEADERS else redact(value))
        for name, value in headers.items()
    }


def redact_url(url: str) -> str:
    """A URL with the password of its user info and its secret query values masked."""
    return redact(url)
