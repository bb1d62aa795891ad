"""The two entry points the watcher calls: the engine's hook and the notification service."""

from __future__ import annotations

from typing import Any


def check_observation(price_history_id: int) -> None:
    """Check the alert rules against a stored observation, in a Celery worker.

    The result handler calls this after commit; the check runs in a worker, with whatever else
    is waiting (``alerts.queue``), so that the agent's request never waits on it.
    """
    from alerts import queue

    queue.enqueue(price_history_id)


def notify(event: str, payload: dict[str, Any]) -> None:
    """Tell admins about an event (``watcher_agent_panic``, ``watcher_agent_offline``, …)
    through the channels that take agent events; the messages go out from a worker."""
    from alerts.notifications import notify_event

    notify_event(event, payload)
