"""The notification service: one path for alerts, digests and the watcher's agent events.

Each message to each recipient is a :class:`Delivery` row, sent by a Celery task with retries
and backoff; the row keeps the outcome. Secrets (bot tokens, signing keys) stay in the channel
row: they are never written to a delivery, an error text or a log line.

Webhooks: ``POST`` of the JSON payload with ``Content-Type: application/json`` and the header
``X-Watcher-Signature: t=<unix time>,v1=<hex>``, where ``<hex>`` is
``HMAC-SHA256(key=channel secret, msg=f"{t}." + body bytes)``. A receiver recomputes it over the
raw body, compares in constant time, and rejects an old ``t`` to stop replays.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from alerts.models import (
    Alert,
    AlertKind,
    AlertRule,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    NotificationChannel,
)
from watcher.models import product_url

log = logging.getLogger("watcher.notifications")

MAX_ATTEMPTS = 5
SIGNATURE_HEADER = "X-Watcher-Signature"
TIMEOUT = httpx.Timeout(10.0)


class DeliveryError(Exception):
    """A delivery attempt failed; the task tries again later."""


# --- Messages ---------------------------------------------------------------------------------


def admin_url(path: str) -> str:
    return settings.WATCHER_ADMIN_URL.rstrip("/") + path


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert as the API and webhooks show it."""
    sku = alert.subscription.sku if alert.subscription else None
    competitor_sku = alert.competitor.competitor_sku if alert.competitor else None

    def number(value: Any) -> str | None:
        return None if value is None else str(value)

    return {
        "id": alert.pk,
        "rule_id": alert.rule_id,
        "kind": alert.kind,
        "status": alert.status,
        "marketplace": alert.marketplace or None,
        "brand": alert.brand or None,
        "sku": sku,
        "competitor_sku": competitor_sku,
        "sku_url": product_url(alert.marketplace, sku) if sku and alert.marketplace else None,
        "competitor_url": product_url(alert.marketplace, competitor_sku)
        if competitor_sku and alert.marketplace
        else None,
        "price_level": alert.price_level or None,
        "our_price": number(alert.our_price),
        "their_price": number(alert.their_price),
        "difference_rub": number(alert.difference_rub),
        "difference_pct": number(alert.difference_pct),
        "suspicious": alert.suspicious,
        "details": alert.details,
        "our_observation_id": alert.our_observation_id,
        "their_observation_id": alert.their_observation_id,
        "opened_at": alert.opened_at.isoformat(),
        "updated_at": alert.updated_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "admin_url": admin_url(reverse("admin:alerts_alert_change", args=[alert.pk])),
    }


def alert_message(alert: Alert) -> tuple[str, str]:
    """Subject and text of an alert, short, in the site's language."""
    with translation.override(settings.LANGUAGE_CODE):
        data = alert_payload(alert)
        title = alert.get_kind_display()
        subject = f"Watcher · {title}: {alert.brand} {data['sku'] or ''}".strip()
        lines = [f"{title} — {alert.rule.name}"]
        if data["sku"]:
            lines.append(f"{_('Our SKU')}: {data['sku']} {data['sku_url']}")
        if data["competitor_sku"]:
            lines.append(f"{_('Competitor')}: {data['competitor_sku']} {data['competitor_url']}")
        if alert.our_price is not None:
            lines.append(f"{_('Our price')}: {alert.our_price} ₽")
        if alert.their_price is not None:
            lines.append(f"{_('Their price')}: {alert.their_price} ₽")
        if alert.difference_rub is not None:
            lines.append(
                f"{_('Difference')}: {alert.difference_rub} ₽ ({alert.difference_pct} %), "
                f"{alert.get_price_level_display().lower()}"
            )
        if alert.suspicious:
            lines.append(_("The price jump looked implausible; the next observation confirmed it."))
        if alert.details:
            lines.append(alert.details)
        lines.append(data["admin_url"])
    return subject, "\n".join(lines)


EVENT_TITLES = {
    "watcher_agent_panic": gettext_noop("Agent panic"),
    "watcher_agent_offline": gettext_noop("Agent offline"),
}
# What each delivery's event is called on the operators' screens.
EVENT_LABELS = {
    "alert_opened": gettext_noop("Alert opened"),
    "digest": gettext_noop("Morning digest"),
    "test": gettext_noop("Test message"),
    **EVENT_TITLES,
}


def event_message(event: str, payload: dict[str, Any]) -> tuple[str, str]:
    with translation.override(settings.LANGUAGE_CODE):
        title = _(EVENT_TITLES.get(event, event))
        subject = f"Watcher · {title}: {payload.get('name', '')}".strip()
        lines = [title]
        lines += [f"{key}: {value}" for key, value in payload.items() if value not in (None, "")]
        lines.append(admin_url(reverse("admin:watcher_agent_changelist")))
    return subject, "\n".join(lines)


# --- Planning deliveries ------------------------------------------------------------------------


def rule_emails(rule: AlertRule) -> list[str]:
    """The e-mail addresses of a rule's recipients: its users and its groups' members."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    users = users.filter(
        Q(pk__in=rule.recipient_users.values("pk"))
        | Q(groups__in=rule.recipient_groups.values("pk"))
    )
    return sorted(set(users.values_list("email", flat=True)))


def admin_emails() -> list[str]:
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    users = users.filter(Q(is_superuser=True) | Q(groups__name="admin"))
    return sorted(set(users.values_list("email", flat=True)))


def _recipients(channel: NotificationChannel, emails: list[str]) -> list[str]:
    if channel.kind == ChannelKind.EMAIL:
        if channel.target.strip():
            return [a.strip() for a in channel.target.split(",") if a.strip()]
        return emails
    return [channel.target.strip()]


def plan(
    channels: Iterable[NotificationChannel],
    *,
    emails: list[str],
    event: str,
    subject: str,
    body: str,
    payload: dict[str, Any],
    alert: Alert | None = None,
) -> list[Delivery]:
    """Record one delivery per channel and recipient and send them after commit."""
    targets = [
        (channel, recipient)
        for channel in channels
        if channel.is_active
        for recipient in _recipients(channel, emails)
    ]
    return deliver(targets, event=event, subject=subject, body=body, payload=payload, alert=alert)


def deliver(
    targets: list[tuple[NotificationChannel, str]],
    *,
    event: str,
    subject: str,
    body: str,
    payload: dict[str, Any],
    alert: Alert | None = None,
) -> list[Delivery]:
    """Record one delivery per (channel, recipient) and send them after commit."""
    if not targets:
        return []
    rows = Delivery.objects.bulk_create(
        Delivery(
            channel=channel,
            kind=channel.kind,
            event=event,
            recipient=recipient[:500],
            subject=subject[:300],
            body=body,
            payload=payload,
            alert=alert,
        )
        for channel, recipient in targets
    )
    ids = [row.pk for row in rows]
    transaction.on_commit(lambda: _enqueue(ids))
    return rows


def _enqueue(ids: list[int]) -> None:
    from alerts.tasks import send_delivery

    for delivery_id in ids:
        send_delivery.delay(delivery_id)


def announce_alerts(alert_ids: list[int]) -> int:
    """Tell the recipients of newly opened alerts (not muted, not waiting for the digest, not
    held while the cause may be ours)."""
    alerts = (
        Alert.objects.filter(pk__in=alert_ids, in_digest=False, hold="")
        .select_related("rule", "subscription", "competitor")
        .prefetch_related("rule__channels")
    )
    count = 0
    now = timezone.now()
    for alert in alerts:
        if alert.is_muted(now):
            continue
        channels = list(alert.rule.channels.all())
        if not channels:
            continue
        subject, body = alert_message(alert)
        count += len(
            plan(
                channels,
                emails=rule_emails(alert.rule),
                event="alert_opened",
                subject=subject,
                body=body,
                payload={"event": "alert_opened", "alert": alert_payload(alert)},
                alert=alert,
            )
        )
    return count


def notify_event(event: str, payload: dict[str, Any]) -> int:
    """The watcher's events (agent panic, offline) to the channels that take agent events."""
    log.warning("notification", extra={"event": event, "payload": payload})
    channels = list(NotificationChannel.objects.filter(is_active=True, agent_events=True))
    if not channels:
        return 0
    subject, body = event_message(event, payload)
    return len(
        plan(
            channels,
            emails=admin_emails(),
            event=event,
            subject=subject,
            body=body,
            payload={"event": event, **payload},
        )
    )


def send_test(channel: NotificationChannel, emails: list[str]) -> int:
    """A test message through one channel (the admin's "send a test message")."""
    with translation.override(settings.LANGUAGE_CODE):
        subject = "Watcher · " + _("test message")
        body = _("A test message from Watcher: this channel works.")
    return len(
        plan(
            [channel],
            emails=emails,
            event="test",
            subject=subject,
            body=body,
            payload={"event": "test", "text": body},
        )
    )


# --- Digest -------------------------------------------------------------------------------------


def send_digests(now: dt.datetime | None = None) -> int:
    """After quiet hours: one message per recipient with the night's alerts, dumping first and
    the largest gaps first. Returns the number of deliveries planned."""
    now = now or timezone.now()
    waiting = list(
        Alert.objects.filter(in_digest=True)
        .select_related("rule", "subscription", "competitor")
        .prefetch_related("rule__channels")
    )
    ready = [alert for alert in waiting if not alert.rule.in_quiet_hours(now)]
    if not ready:
        return 0
    by_target: dict[tuple[int, str], list[Alert]] = defaultdict(list)
    channels: dict[int, NotificationChannel] = {}
    emails_of: dict[int, list[str]] = {}
    for alert in ready:
        if alert.is_muted(now):
            continue
        if alert.rule_id not in emails_of:
            emails_of[alert.rule_id] = rule_emails(alert.rule)
        for channel in alert.rule.channels.all():
            channels[channel.pk] = channel
            for recipient in _recipients(channel, emails_of[alert.rule_id]):
                by_target[(channel.pk, recipient)].append(alert)
    count = 0
    with transaction.atomic():
        for (channel_id, recipient), unsorted in by_target.items():
            alerts = sorted(unsorted, key=_gap)
            subject, body = digest_message(alerts)
            payload = {"event": "digest", "alerts": [alert_payload(a) for a in alerts]}
            count += len(
                deliver(
                    [(channels[channel_id], recipient)],
                    event="digest",
                    subject=subject,
                    body=body,
                    payload=payload,
                )
            )
        Alert.objects.filter(pk__in=[alert.pk for alert in ready]).update(in_digest=False)
    return count


def _gap(alert: Alert) -> tuple[int, float]:
    """Dumping first, then the largest gap first."""
    first = 0 if alert.kind == AlertKind.DUMPING else 1
    return first, -float(alert.difference_pct or 0)


def digest_message(alerts: list[Alert]) -> tuple[str, str]:
    """A table of alerts, in the order given."""
    with translation.override(settings.LANGUAGE_CODE):
        subject = "Watcher · " + _("the night's alerts: %(count)d") % {"count": len(alerts)}
        header = " | ".join(
            [_("Kind"), _("Our SKU"), _("Competitor"), _("Our price"), _("Their price"), "%"]
        )
        lines = [header]
        for alert in alerts:
            lines.append(
                " | ".join(
                    str(value) if value is not None else "—"
                    for value in (
                        alert.get_kind_display(),
                        alert.subscription.sku if alert.subscription else None,
                        alert.competitor.competitor_sku if alert.competitor else None,
                        alert.our_price,
                        alert.their_price,
                        alert.difference_pct,
                    )
                )
            )
        lines.append(admin_url(reverse("admin:alerts_alert_changelist")))
    return subject, "\n".join(lines)


# --- Sending ------------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def _telegram_token(channel: NotificationChannel) -> str:
    return channel.secret or settings.WATCHER_TELEGRAM_BOT_TOKEN


def _send_email(delivery: Delivery) -> None:
    send_mail(
        delivery.subject,
        delivery.body,
        settings.DEFAULT_FROM_EMAIL,
        [delivery.recipient],
        fail_silently=False,
    )


def _send_telegram(delivery: Delivery, channel: NotificationChannel) -> None:
    token = _telegram_token(channel)
    if not token:
        raise DeliveryError("no bot token")
    url = f"{settings.WATCHER_TELEGRAM_API_URL.rstrip('/')}/bot{token}/sendMessage"
    body = {"chat_id": delivery.recipient, "text": delivery.body, "disable_web_page_preview": True}
    response = httpx.post(url, json=body, timeout=TIMEOUT)
    if response.status_code != 200:
        raise DeliveryError(f"Telegram answered {response.status_code}")
    if not response.json().get("ok"):
        raise DeliveryError("Telegram answered ok=false")


def _send_webhook(delivery: Delivery, channel: NotificationChannel) -> None:
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Watcher-Event": delivery.event,
        "X-Watcher-Delivery": str(delivery.pk),
    }
    if channel.secret:
        headers[SIGNATURE_HEADER] = sign(channel.secret, body, int(time.time()))
    response = httpx.post(delivery.recipient, content=body, headers=headers, timeout=TIMEOUT)
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"the webhook answered {response.status_code}")


def _redact(text: str, channel: NotificationChannel | None) -> str:
    secrets = [channel.secret] if channel and channel.secret else []
    if settings.WATCHER_TELEGRAM_BOT_TOKEN:
        secrets.append(settings.WATCHER_TELEGRAM_BOT_TOKEN)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text[:2000]


def send(delivery_id: int, *, last_try: bool) -> None:
    """One attempt at a delivery; raises :class:`DeliveryError` for the task to retry."""
    delivery = Delivery.objects.select_related("channel").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return
    channel = delivery.channel
    attempts = delivery.attempts + 1
    try:
        if channel is None:
            raise DeliveryError("the channel was deleted")
        if delivery.kind == ChannelKind.EMAIL:
            _send_email(delivery)
        elif delivery.kind == ChannelKind.TELEGRAM:
            _send_telegram(delivery, channel)
        else:
            _send_webhook(delivery, channel)
    except Exception as exc:
        # The text of a library's error may carry a URL with a bot token in it.
        error = _redact(f"{type(exc).__name__}: {exc}", channel)
        status = DeliveryStatus.FAILED if last_try else DeliveryStatus.PENDING
        Delivery.objects.filter(pk=delivery.pk).update(
            attempts=attempts, last_error=error, status=status
        )
        log.warning(
            "delivery failed",
            extra={"delivery": delivery.pk, "kind": delivery.kind, "attempt": attempts},
        )
        if last_try:
            return
        raise DeliveryError(error) from None
    Delivery.objects.filter(pk=delivery.pk).update(
        attempts=attempts, status=DeliveryStatus.SENT, sent_at=timezone.now(), last_error=""
    )
