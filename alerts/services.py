"""The two entry points the watcher calls: the engine's hook and the notification service."""

from __future__ import annotations

from typing import Any


def check_observation(price_history_id: int) -> None:
    """Queue a stored observation for the alert rules, inside the transaction that stores it.

    The check runs in a worker after commit, with whatever else is waiting (``alerts.queue``),
    so that the agent's request never waits on it; the queue commits with the observation, so
    no check is lost.
    """
    from alerts import queue

    queue.enqueue(price_history_id)


def notify(event: str, payload: dict[str, Any]) -> None:
    """Tell admins about an event (``watcher_agent_panic``, ``watcher_agent_offline``, …)
    through the channels that take agent events; the messages go out from a worker."""
    from alerts.notifications import notify_event

    notify_event(event, payload)
