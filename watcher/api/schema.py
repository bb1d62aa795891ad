"""OpenAPI post-processing: endpoints grouped by what they are about, not by URL version."""

from __future__ import annotations

from typing import Any

# First match wins: a command to an agent is about commands, not agents.
TAG_RULES: tuple[tuple[str, str], ...] = (
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
