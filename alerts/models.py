"""Alert rules, the alerts they open, notification channels and the record of each delivery."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from parser.types import Marketplace
from watcher.models import Competitor, PriceHistory, Subscription


class AlertKind(models.TextChoices):
    DUMPING = "dumping", _("Dumping")
    PRICE_DROP = "price_drop", _("Price drop")
    PRICE_RISE = "price_rise", _("Price rise")
    OUT_OF_STOCK = "out_of_stock", _("Out of stock")
    BACK_IN_STOCK = "back_in_stock", _("Back in stock")
    RATING_BELOW = "rating_below", _("Rating below")
    NO_PRICE_NIGHTS = "no_price_nights", _("No price for N nights")
    BATCH_UNFINISHED = "batch_unfinished", _("Night unfinished by the deadline")


class PriceLevel(models.TextChoices):
    REGULAR = "regular", _("Price without the wallet/card discount")
    WALLET = "wallet", _("Wallet/card price")
    LOWEST = "lowest", _("The lower of the two")


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", pgettext_lazy("alert status", "Acknowledged")
    RESOLVED = "resolved", _("Resolved")


class HoldReason(models.TextChoices):
    """Why an alert is held back from its recipients: the cause of its evidence may be ours."""

    AGENTS_OFFLINE = "agents_offline", _("agents offline")
    NIGHT_UNFINISHED = "night_unfinished", _("the night is unfinished")


# An acknowledged alert still stands for its condition: it is the one alert of its rule and pair.
ACTIVE_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)


class ChannelKind(models.TextChoices):
    EMAIL = "email", _("E-mail")
    TELEGRAM = "telegram", _("Telegram")
    WEBHOOK = "webhook", _("Webhook")


class NotificationChannel(models.Model):
    """Where messages go: e-mail addresses, a Telegram chat or a signed webhook."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=ChannelKind.choices)
    target = models.CharField(
        _("target"),
        max_length=500,
        blank=True,
        help_text=_(
            "E-mail: addresses separated by commas (empty: the rule's recipients). "
            "Telegram: the chat id. Webhook: the URL."
        ),
    )
    secret = models.CharField(
        _("secret"),
        max_length=500,
        blank=True,
        help_text=_(
            "Telegram: the bot token (empty: WATCHER_TELEGRAM_BOT_TOKEN). "
            "Webhook: the HMAC-SHA256 signing key. Never shown in lists or logs."
        ),
    )
    agent_events = models.BooleanField(
        _("agent events"),
        default=False,
        help_text=_("Also receives agent panic and agent offline messages."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("notification channel")
        verbose_name_plural = _("notification channels")
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class AlertRule(models.Model):
    """What to watch for, where, and whom to tell."""

    kind = models.CharField(_("kind"), max_length=30, choices=AlertKind.choices)
    name = models.CharField(_("name"), max_length=200)
    threshold_pct = models.DecimalField(
        _("threshold, %"),
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("Dumping, price drop and rise: the gap in percent (either threshold fires)."),
    )
    threshold_rub = models.DecimalField(
        _("threshold, ₽"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("Dumping, price drop and rise: the gap in roubles."),
    )
    rating_threshold = models.DecimalField(
        _("rating threshold"),
        max_digits=4,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Rating below: fires when the rating is lower than this."),
    )
    nights = models.PositiveSmallIntegerField(
        _("nights"),
        default=2,
        validators=[MinValueValidator(1)],
        help_text=_("No price: the number of nights without a valid price."),
    )
    deadline = models.TimeField(
        _("deadline"),
        default=dt.time(7, 0),
        help_text=_("Night unfinished: the local time the night's batch must be done by."),
    )
    price_level = models.CharField(
        _("price level"), max_length=20, choices=PriceLevel.choices, default=PriceLevel.REGULAR
    )
    consecutive = models.PositiveSmallIntegerField(
        _("consecutive observations"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_("How many observations in a row must meet the condition before it fires."),
    )
    marketplace = models.CharField(
        _("marketplace"),
        max_length=20,
        choices=Marketplace.choices,
        blank=True,
        help_text=_("Empty: every marketplace."),
    )
    brand = models.CharField(
        _("brand"), max_length=100, blank=True, help_text=_("Empty: every brand.")
    )
    subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("our SKU"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text=_("Empty: every SKU."),
    )
    recipient_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("users"), blank=True, related_name="alert_rules"
    )
    recipient_groups = models.ManyToManyField(
        Group, verbose_name=_("groups"), blank=True, related_name="alert_rules"
    )
    channels = models.ManyToManyField(
        NotificationChannel, verbose_name=_("channels"), blank=True, related_name="rules"
    )
    quiet_from = models.TimeField(
        _("quiet hours from"),
        null=True,
        blank=True,
        help_text=_("Alerts opened in quiet hours go into the morning digest."),
    )
    quiet_to = models.TimeField(_("quiet hours to"), null=True, blank=True)
    cooldown_hours = models.PositiveIntegerField(
        _("cooldown, hours"),
        default=24,
        help_text=_("A resolved alert does not reopen for the same SKUs before this passes."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ("kind", "name")

    def __str__(self) -> str:
        return self.name

    def in_quiet_hours(self, now: dt.datetime | None = None) -> bool:
        if self.quiet_from is None or self.quiet_to is None:
            return False
        local = timezone.localtime(now or timezone.now()).time()
        if self.quiet_from <= self.quiet_to:
            return self.quiet_from <= local < self.quiet_to
        return local >= self.quiet_from or local < self.quiet_to  # across midnight


class Alert(models.Model):
    """One case a rule found, with the figures that triggered it."""

    rule = models.ForeignKey(
        AlertRule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="alerts"
    )
    kind = models.CharField(_("kind"), max_length=30, choices=AlertKind.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=AlertStatus.choices, default=AlertStatus.OPEN
    )
    # "subscription:competitor" (either may be empty): what makes one alert per rule and pair.
    pair_key = models.CharField(_("pair"), max_length=50, editable=False)
    marketplace = models.CharField(
        _("marketplace"), max_length=20, choices=Marketplace.choices, blank=True
    )
    brand = models.CharField(_("brand"), max_length=100, blank=True)
    subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("our SKU"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alerts",
    )
    competitor = models.ForeignKey(
        Competitor,
        verbose_name=_("competitor"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alerts",
    )
    price_level = models.CharField(
        _("price level"), max_length=20, choices=PriceLevel.choices, blank=True
    )
    our_price = models.DecimalField(
        _("our price"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    their_price = models.DecimalField(
        _("their price"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    difference_rub = models.DecimalField(
        _("difference, ₽"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    difference_pct = models.DecimalField(
        _("difference, %"), max_digits=7, decimal_places=2, null=True, blank=True
    )
    our_observation = models.ForeignKey(
        PriceHistory,
        verbose_name=_("our observation"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    their_observation = models.ForeignKey(
        PriceHistory,
        verbose_name=_("their observation"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    suspicious = models.BooleanField(
        _("suspicious"),
        default=False,
        help_text=_("Opened on an implausible jump that the next observation confirmed."),
    )
    details = models.CharField(_("details"), max_length=500, blank=True)
    opened_at = models.DateTimeField(_("opened"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("acknowledged by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    muted_until = models.DateTimeField(_("muted until"), null=True, blank=True)
    hold = models.CharField(
        _("held because"),
        max_length=20,
        choices=HoldReason.choices,
        blank=True,
        help_text=_(
            "Not told to anyone while the cause may be ours; told or dropped once it clears."
        ),
    )
    held_since = models.DateTimeField(_("held since"), null=True, blank=True)
    released_at = models.DateTimeField(
        _("released"), null=True, blank=True, help_text=_("When a held alert was told after all.")
    )
    in_digest = models.BooleanField(
        _("waits for the digest"),
        default=False,
        help_text=_("Opened in the rule's quiet hours; told in the morning digest."),
    )

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ("-opened_at",)
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=("rule", "pair_key"),
                condition=models.Q(status__in=ACTIVE_STATUSES),
                name="uniq_active_alert_per_rule_pair",
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=("rule", "pair_key", "resolved_at"), name="alert_rule_pair_idx"),
            models.Index(fields=("status", "opened_at"), name="alert_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    def is_muted(self, now: dt.datetime | None = None) -> bool:
        return self.muted_until is not None and self.muted_until > (now or timezone.now())


class RuleStreak(models.Model):
    """How many observations in a row met a rule's condition for one pair (consecutive > 1)."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="+")
    pair_key = models.CharField(max_length=50)
    hits = models.PositiveIntegerField(default=0)
    last_observation_id = models.BigIntegerField(null=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=("rule", "pair_key"), name="uniq_streak_rule_pair")
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.pair_key}: {self.hits}"


class PendingCheck(models.Model):
    """A stored observation the alert engine has not checked yet.

    Written in the transaction that stores the observation and deleted in the one that checks
    it, so neither a lost Redis nor a worker killed mid-check loses a check.
    """

    observation = models.OneToOneField(
        "watcher.PriceHistory", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    queued_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.observation_id)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class Delivery(models.Model):
    """One message to one recipient through one channel, and how it went."""

    channel = models.ForeignKey(
        NotificationChannel,
        verbose_name=_("channel"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    kind = models.CharField(_("kind"), max_length=20, choices=ChannelKind.choices)
    event = models.CharField(_("event"), max_length=50)
    recipient = models.CharField(_("recipient"), max_length=500, blank=True)
    subject = models.CharField(_("subject"), max_length=300)
    body = models.TextField(_("message"))
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    alert = models.ForeignKey(
        Alert,
        verbose_name=_("alert"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    status = models.CharField(
        _("status"), max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.event} → {self.recipient or self.kind}"
