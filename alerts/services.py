"""The alert engine and the notification service (log-only until channels are configured)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("watcher.notifications")


def check_observation(price_history_id: int) -> None:
    """Check alert rules against one new observation. Rules arrive with the alerts issue."""
    return None


def notify(event: str, payload: dict[str, Any]) -> None:
    """Tell admins about an event (``watcher_agent_panic``, ``watcher_agent_offline``, …)."""
    log.warning("notification", extra={"event": event, "payload": payload})
