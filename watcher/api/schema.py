"""OpenAPI post-processing: endpoints grouped by what they are about, not by URL version."""

from __future__ import annotations

from typing import Any

# First match wins: a command to an agent is about commands, not agents.
TAG_RULES: tuple[tuple[str, str], ...] = (
    ("/api/v1/alerts/", "alerts"),
    ("/api/v1/office/", "office"),
    ("/api/v1/prices/", "prices"),
    ("/command", "commands"),
    ("/auth/", "auth"),
    ("/parser/", "parser"),
    ("/tasks", "tasks"),
    ("/agents", "agents"),
    ("/config/", "config"),
    ("/health", "health"),
)


def tag_by_path(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A drf-spectacular postprocessing hook: one tag per operation, from its path."""
    for path, operations in result.get("paths", {}).items():
        tag = next((tag for part, tag in TAG_RULES if part in path), None)
        if tag is None:
            continue
        for operation in operations.values():
            if isinstance(operation, dict):
                operation["tags"] = [tag]
    return result


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_FIELD_ERRORS = {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}


def document_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A drf-spectacular postprocessing hook: the error answers every endpoint can give (bad
    input, no or wrong credentials, an unknown id) are documented where a view did not say."""
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("400", {"description": "Bad input", "content": _FIELD_ERRORS})
            if operation.get("security") and {} not in operation["security"]:
                responses.setdefault("401", {"description": "No or wrong credentials",
                                             "content": _ERROR})  # fmt: skip
                responses.setdefault("403", {"description": "Not allowed", "content": _ERROR})
            names = {p.get("name") for p in operation.get("parameters", [])}
            if "{" in path or names & {"page", "cursor"}:
                # DRF's pagination answers 404 for a page past the end or a bad cursor.
                responses.setdefault("404", {"description": "Unknown id or page",
                                             "content": _ERROR})  # fmt: skip
    return result
