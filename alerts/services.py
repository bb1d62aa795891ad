"""The entry points the watcher calls: the engine's hook, the notification service and the
alerts of one of our SKUs for the analysts' chart."""

from __future__ import annotations

import datetime as dt
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


# A night opens a handful of alerts per SKU; the cap keeps a page sane whatever happens.
TIMELINE_LIMIT = 500


def subscription_alerts(
    subscription_id: int, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """The alerts of one of our SKUs opened in ``[start, end)``, oldest first, as plain values:
    the analysts' comparison chart marks them on its timeline."""
    from alerts.models import Alert

    alerts = (
        Alert.objects.filter(subscription_id=subscription_id, opened_at__gte=start)
        .filter(opened_at__lt=end)
        .select_related("competitor")
        .order_by("opened_at", "id")[:TIMELINE_LIMIT]
    )
    return [
        {
            "id": alert.pk,
            "kind": alert.kind,
            "kind_label": str(alert.get_kind_display()),
            "status": alert.status,
            "status_label": str(alert.get_status_display()),
            "opened_at": alert.opened_at,
            "resolved_at": alert.resolved_at,
            "competitor": alert.competitor_id,
            "competitor_name": alert.competitor.name if alert.competitor else None,
            "competitor_sku": alert.competitor.competitor_sku if alert.competitor else None,
            "price_level_label": str(alert.get_price_level_display()) if alert.price_level else "",
            "our_price": alert.our_price,
            "their_price": alert.their_price,
            "difference_rub": alert.difference_rub,
            "difference_pct": alert.difference_pct,
            "suspicious": alert.suspicious,
            "details": alert.details,
        }
        for alert in alerts
    ]
