"""The dispatcher's data: what we watch, who scrapes it, and what they saw."""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext_lazy as _

from parser.types import Marketplace

PRODUCT_URLS: dict[str, str] = {
    Marketplace.WILDBERRIES: "https://www.wildberries.ru/catalog/{sku}/detail.aspx",
    Marketplace.OZON: "https://www.ozon.ru/product/{sku}/",
    Marketplace.YANDEX_MARKET: "https://market.yandex.ru/product/{sku}",
}
DOMAINS: dict[str, str] = {
    Marketplace.WILDBERRIES: "wildberries.ru",
    Marketplace.OZON: "ozon.ru",
    Marketplace.YANDEX_MARKET: "market.yandex.ru",
}


EMPTY_VALUE = "—"  # the admin's empty-value mark


def product_url(marketplace: str, sku: str) -> str:
    return PRODUCT_URLS[marketplace].format(sku=sku)


# Every marketplace identifies a product by a number: Wildberries' nmID
# (wildberries.ru/catalog/<n>/detail.aspx), Ozon's SKU (ozon.ru/product/<slug>-<n>/) and Yandex
# Market's product id (market.yandex.ru/product/<n>; the URLs we visit are built from it).
SKU_RE = re.compile(r"[0-9]{1,20}")
SKU_HINTS: dict[str, Any] = {
    Marketplace.WILDBERRIES: _(
        "A Wildberries SKU is a number: the one in wildberries.ru/catalog/<number>/detail.aspx."
    ),
    Marketplace.OZON: _(
        "An Ozon SKU is a number: the one at the end of ozon.ru/product/…-<number>/."
    ),
    Marketplace.YANDEX_MARKET: _(
        "A Yandex Market SKU is a number: the one in market.yandex.ru/product/<number>."
    ),
}


def validate_sku(marketplace: str, sku: str) -> None:
    """Raise ValidationError unless ``sku`` has the form of a product id on ``marketplace``."""
    if marketplace in SKU_HINTS and not SKU_RE.fullmatch(sku or ""):
        raise ValidationError(
            _("“%(sku)s” is not a valid SKU. %(hint)s"),
            code="invalid_sku",
            params={"sku": sku, "hint": SKU_HINTS[marketplace]},
        )


class Subscription(models.Model):
    """One of our own SKUs to watch on one marketplace."""

    brand = models.CharField(_("brand"), max_length=100, db_index=True)
    marketplace = models.CharField(_("marketplace"), max_length=20, choices=Marketplace.choices)
    sku = models.CharField(_("SKU"), max_length=50)
    title = models.CharField(_("title"), max_length=500, blank=True)
    priority = models.IntegerField(_("priority"), default=0, help_text=_("Higher runs first."))
    is_active = models.BooleanField(_("active"), default=True)
    archived_at = models.DateTimeField(
        _("archived"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Archived rows are not watched and hidden from the lists; history is kept."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ("brand", "marketplace", "sku")
        constraints: ClassVar = [
            models.UniqueConstraint(fields=("marketplace", "sku"), name="uniq_subscription_mp_sku")
        ]

    def __str__(self) -> str:
        return f"{self.brand} · {self.get_marketplace_display()} · {self.sku}"

    @property
    def url(self) -> str:
        return product_url(self.marketplace, self.sku)

    def clean(self) -> None:
        if self.marketplace and self.sku:
            try:
                validate_sku(self.marketplace, self.sku)
            except ValidationError as error:
                raise ValidationError({"sku": error}) from None


class Competitor(models.Model):
    """A competitor's SKU watched against one of our SKUs on the same marketplace."""

    subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("our SKU"),
        on_delete=models.CASCADE,
        related_name="competitors",
    )
    competitor_sku = models.CharField(_("competitor SKU"), max_length=50)
    name = models.CharField(_("name"), max_length=255, blank=True)
    priority = models.IntegerField(_("priority"), default=0, help_text=_("Higher runs first."))
    is_active = models.BooleanField(_("active"), default=True)
    archived_at = models.DateTimeField(
        _("archived"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Archived rows are not watched and hidden from the lists; history is kept."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("competitor")
        verbose_name_plural = _("competitors")
        ordering = ("subscription", "competitor_sku")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=("subscription", "competitor_sku"), name="uniq_competitor_per_subscription"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name or self.competitor_sku} ({self.subscription.sku})"

    @property
    def marketplace(self) -> str:
        return self.subscription.marketplace

    @property
    def url(self) -> str:
        return product_url(self.subscription.marketplace, self.competitor_sku)

    def clean(self) -> None:
        # A competitor is watched on its subscription's marketplace, so its SKU has that
        # marketplace's form. (The subscription may not be saved yet: the add page's inline.)
        subscription = getattr(self, "subscription", None)
        if subscription is not None and subscription.marketplace and self.competitor_sku:
            try:
                validate_sku(subscription.marketplace, self.competitor_sku)
            except ValidationError as error:
                raise ValidationError({"competitor_sku": error}) from None


class AgentStatus(models.TextChoices):
    IDLE = "idle", _("Idle")
    PREPARING = "preparing", _("Preparing")
    READY = "ready", _("Ready")
    WORKING = "working", _("Working")
    PAUSED = "paused", _("Paused")
    PANIC = "panic", _("Panic")
    OFFLINE = "offline", _("Offline")


class Agent(models.Model):
    """A remote watcher agent: a browser machine on a USB modem.

    Its API key is stored as a SHA-256 digest with a short lookup prefix; the key itself is
    shown once, when it is created or rotated.
    """

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=100, unique=True)
    status = models.CharField(
        _("status"), max_length=20, choices=AgentStatus.choices, default=AgentStatus.OFFLINE
    )
    is_enabled = models.BooleanField(
        _("enabled"), default=True, help_text=_("A disabled agent is refused by the API.")
    )
    current_ip = models.GenericIPAddressField(_("current IP"), null=True, blank=True)
    modem_operator = models.CharField(_("modem operator"), max_length=100, blank=True)
    signal_strength = models.IntegerField(_("signal strength"), null=True, blank=True)
    cookies_updated_at = models.DateTimeField(_("cookies updated"), null=True, blank=True)
    last_heartbeat = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    current_task = models.ForeignKey(
        "Task",
        verbose_name=_("current task"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    version = models.CharField(_("version"), max_length=50, blank=True)
    stats = models.JSONField(_("last stats"), default=dict, blank=True)
    panic_reason = models.CharField(_("panic reason"), max_length=500, blank=True)
    panic_details = models.JSONField(_("panic details"), default=dict, blank=True)
    panic_at = models.DateTimeField(_("panic at"), null=True, blank=True)
    api_key_prefix = models.CharField(
        _("API key prefix"), max_length=16, unique=True, editable=False
    )
    api_key_digest = models.CharField(_("API key digest"), max_length=64, editable=False)
    api_key_rotated_at = models.DateTimeField(
        _("API key rotated"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def accepts_tasks(self) -> bool:
        return self.is_enabled and self.status not in (AgentStatus.PAUSED, AgentStatus.PANIC)


class TaskStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    IN_PROGRESS = "in_progress", _("In progress")
    PARSING = "parsing", _("Parsing")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")
    PARSE_ERROR = "parse_error", _("Parse error")
    EXPIRED = "expired", _("Expired")
    CANCELLED = "cancelled", _("Cancelled")


class TaskOutcome(models.TextChoices):
    """Why a task ended the way it did; users tell these apart, not just "failed"."""

    OK = "ok", _("Price read")
    OUT_OF_STOCK = "out_of_stock", _("Out of stock, no price")
    BLOCKED = "blocked", _("Blocked (captcha / 403)")
    NOT_FOUND = "not_found", _("Product not found")
    PARSE_FAILED = "parse_failed", _("Parse failure")
    AGENT_ERROR = "agent_error", _("Agent error")
    LEASE_EXPIRED = "lease_expired", _("Agent went silent")
    EXPIRED = "expired", _("Night ended before it ran")
    CANCELLED = "cancelled", _("Cancelled by an operator")


class Task(models.Model):
    """One page to scrape on one night."""

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(_("URL"), max_length=500)
    marketplace = models.CharField(_("marketplace"), max_length=20, choices=Marketplace.choices)
    sku = models.CharField(_("SKU"), max_length=50)
    brand = models.CharField(_("brand"), max_length=100)
    subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("our SKU"),
        on_delete=models.CASCADE,
        related_name="tasks",
    )
    competitor = models.ForeignKey(
        Competitor,
        verbose_name=_("competitor"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tasks",
    )
    priority = models.IntegerField(_("priority"), default=0)
    status = models.CharField(
        _("status"), max_length=20, choices=TaskStatus.choices, default=TaskStatus.PENDING
    )
    outcome = models.CharField(_("outcome"), max_length=20, choices=TaskOutcome.choices, blank=True)
    agent = models.ForeignKey(
        Agent,
        verbose_name=_("agent"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
    )
    scheduled_date = models.DateField(_("night of"), db_index=True)
    retry_count = models.PositiveIntegerField(_("retries"), default=0)
    error = models.TextField(_("error"), blank=True)
    # The lease: each claim bumps lease_version; reports of an older lease are refused (fencing).
    lease_version = models.PositiveIntegerField(_("lease version"), default=0, editable=False)
    lease_expires_at = models.DateTimeField(
        _("lease expires"), null=True, blank=True, editable=False
    )
    claimed_ip = models.GenericIPAddressField(
        _("claimed IP"), null=True, blank=True, editable=False
    )
    semaphore_token = models.CharField(
        _("semaphore token"), max_length=64, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    execution_time_ms = models.PositiveIntegerField(_("execution time, ms"), null=True, blank=True)

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ("-scheduled_date", "-priority")
        constraints: ClassVar = [
            # One task per SKU per night: generation is idempotent.
            models.UniqueConstraint(
                fields=("scheduled_date", "subscription"),
                condition=models.Q(competitor__isnull=True),
                name="uniq_task_own_sku_per_night",
            ),
            models.UniqueConstraint(
                fields=("scheduled_date", "competitor"),
                condition=models.Q(competitor__isnull=False),
                name="uniq_task_competitor_per_night",
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=("status", "marketplace"), name="task_status_mp_idx"),
            models.Index(fields=("agent", "status"), name="task_agent_status_idx"),
            models.Index(fields=("status", "lease_expires_at"), name="task_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_marketplace_display()} {self.sku} ({self.scheduled_date})"

    @property
    def domain(self) -> str:
        return DOMAINS[self.marketplace]


class TaskReport(models.Model):
    """What an agent reported for one lease of a task, kept for audit and re-parsing."""

    task = models.ForeignKey(
        Task, verbose_name=_("task"), on_delete=models.CASCADE, related_name="reports"
    )
    agent = models.ForeignKey(
        Agent,
        verbose_name=_("agent"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="reports",
    )
    attempt = models.PositiveIntegerField(_("lease"), help_text=_("The task's lease version."))
    success = models.BooleanField(_("success"))
    raw_text = models.TextField(_("raw text"), blank=True)
    timing_ms = models.PositiveIntegerField(_("timing, ms"))
    error = models.TextField(_("agent error"), blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=TaskOutcome.choices, blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    screenshot = models.BinaryField(
        _("screenshot"),
        null=True,
        blank=True,
        help_text=_("The product block as the agent's browser showed it (JPEG or PNG)."),
    )

    class Meta:
        verbose_name = _("task report")
        verbose_name_plural = _("task reports")
        ordering = ("-received_at",)
        constraints: ClassVar = [
            models.UniqueConstraint(fields=("task", "attempt"), name="uniq_report_per_lease")
        ]

    def __str__(self) -> str:
        return f"{self.task_id} #{self.attempt}"


class PriceHistory(models.Model):
    """One parsed observation of a product card."""

    sku = models.CharField(_("SKU"), max_length=50)
    marketplace = models.CharField(_("marketplace"), max_length=20, choices=Marketplace.choices)
    brand = models.CharField(_("brand"), max_length=100)
    # History outlives the catalogue: a subscription or competitor with observations cannot be
    # deleted (the admin offers to archive it instead).
    subscription = models.ForeignKey(
        Subscription, verbose_name=_("our SKU"), on_delete=models.PROTECT, related_name="prices"
    )
    competitor = models.ForeignKey(
        Competitor,
        verbose_name=_("competitor"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="prices",
    )
    task = models.OneToOneField(
        Task, verbose_name=_("task"), null=True, on_delete=models.SET_NULL, related_name="price"
    )
    agent = models.ForeignKey(
        Agent, verbose_name=_("agent"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    attempt = models.PositiveIntegerField(_("attempt"), default=1)
    current_price = models.DecimalField(
        _("price"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    old_price = models.DecimalField(
        _("old price"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    spp_price = models.DecimalField(
        _("wallet/card price"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    in_stock = models.BooleanField(_("in stock"), null=True)
    stock_quantity = models.IntegerField(_("stock"), null=True, blank=True)
    rating = models.DecimalField(_("rating"), max_digits=4, decimal_places=2, null=True, blank=True)
    reviews_count = models.IntegerField(_("reviews"), null=True, blank=True)
    position = models.IntegerField(_("position"), null=True, blank=True)
    ad_bid = models.DecimalField(
        _("ad bid"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    sales_count = models.IntegerField(_("sales"), null=True, blank=True)
    card_title = models.CharField(_("title"), max_length=500, blank=True)
    card_description = models.TextField(_("description"), blank=True)
    card_attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    # NULL means the page or payload did not name the seller: the parser never guesses one.
    seller_name = models.CharField(_("seller"), max_length=200, null=True, blank=True)  # noqa: DJ001
    seller_id = models.CharField(_("seller ID"), max_length=32, null=True, blank=True)  # noqa: DJ001
    parser_backend = models.CharField(_("parser"), max_length=30, default="rules")
    parsed_at = models.DateTimeField(_("parsed at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("price observation")
        verbose_name_plural = _("price history")
        ordering = ("-parsed_at",)
        indexes: ClassVar = [
            models.Index(fields=("marketplace", "sku", "parsed_at"), name="price_mp_sku_time_idx"),
        ]

    def __str__(self) -> str:
        # In the operator's language and TIME_ZONE: «100000: 1 299,00 (02.12.2026 05:49)».
        price = EMPTY_VALUE if self.current_price is None else number_format(self.current_price, 2)
        when = date_format(timezone.localtime(self.parsed_at), "SHORT_DATETIME_FORMAT")
        return f"{self.sku}: {price} ({when})"


class EmulationConfig(models.Model):
    """Global emulation settings for agents (a singleton, row id 1)."""

    class MouseCurve(models.TextChoices):
        BEZIER = "bezier", _("Bézier")
        LINEAR = "linear", _("Linear")

    SINGLETON_ID = 1

    min_delay_ms = models.PositiveIntegerField(_("min delay, ms"), default=2000)
    max_delay_ms = models.PositiveIntegerField(_("max delay, ms"), default=5000)
    scroll_enabled = models.BooleanField(_("scroll"), default=True)
    scroll_steps = models.PositiveIntegerField(
        _("scroll steps"), default=3, validators=[MinValueValidator(1)]
    )
    mouse_movement = models.BooleanField(_("mouse movement"), default=True)
    mouse_curve = models.CharField(
        _("mouse curve"), max_length=20, choices=MouseCurve.choices, default=MouseCurve.BEZIER
    )
    page_view_min_ms = models.PositiveIntegerField(_("min page view, ms"), default=3000)
    page_view_max_ms = models.PositiveIntegerField(_("max page view, ms"), default=8000)
    random_order = models.BooleanField(_("random order"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("emulation settings")
        verbose_name_plural = _("emulation settings")
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(min_delay_ms__lte=models.F("max_delay_ms")),
                name="emulation_delay_min_le_max",
            ),
            models.CheckConstraint(
                condition=models.Q(page_view_min_ms__lte=models.F("page_view_max_ms")),
                name="emulation_page_view_min_le_max",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Emulation settings"))

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = self.SINGLETON_ID
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if self.min_delay_ms > self.max_delay_ms:
            errors["max_delay_ms"] = _("Must be at least the minimum delay.")
        if self.page_view_min_ms > self.page_view_max_ms:
            errors["page_view_max_ms"] = _("Must be at least the minimum page view time.")
        if errors:
            raise ValidationError(errors)

    @classmethod
    def get(cls) -> EmulationConfig:
        obj, _created = cls.objects.get_or_create(pk=cls.SINGLETON_ID)
        return obj


class CommandAction(models.TextChoices):
    STOP = "stop", _("Stop")
    PAUSE = "pause", _("Pause")
    RESUME = "resume", _("Resume")
    RELOAD_CONFIG = "reload_config", _("Reload config")
    REBOOT_MODEM = "reboot_modem", _("Reboot modem")
    REFRESH_COOKIES = "refresh_cookies", _("Refresh cookies")


class CommandStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    ACKED = "acked", _("Acknowledged")
    FAILED = "failed", _("Failed")
    TIMED_OUT = "timed_out", _("Timed out")


OPEN_COMMAND_STATUSES = (CommandStatus.PENDING, CommandStatus.SENT)


SENT_BY_NAME_LENGTH = 150


class AgentCommand(models.Model):
    """A command sent to an agent over its WebSocket, with the agent's acknowledgement.

    The id is the ``command_id`` the agent echoes in its ACK; unacknowledged commands are
    re-sent with the same id until they are acknowledged or time out.
    """

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(
        Agent, verbose_name=_("agent"), on_delete=models.CASCADE, related_name="commands"
    )
    action = models.CharField(_("command"), max_length=30, choices=CommandAction.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("sent by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Who sent it, as they were named then: kept when the user is renamed or deleted, and the
    # live pages show it without reading the user again for every ACK. The database default
    # lets processes still running older code insert commands while the migration runs.
    sent_by_name = models.CharField(
        _("sent by (name)"),
        max_length=SENT_BY_NAME_LENGTH,
        blank=True,
        default="",
        db_default="",
        editable=False,
    )
    status = models.CharField(
        _("status"), max_length=20, choices=CommandStatus.choices, default=CommandStatus.PENDING
    )
    ack_status = models.CharField(
        _("ACK status"), max_length=100, blank=True, help_text=_("What the agent answered.")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    acked_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    timeout_at = models.DateTimeField(_("times out at"), null=True, blank=True)

    class Meta:
        verbose_name = _("agent command")
        verbose_name_plural = _("agent commands")
        ordering = ("-created_at",)
        indexes: ClassVar = [
            models.Index(fields=("agent", "-created_at"), name="command_agent_time_idx"),
            models.Index(fields=("status", "timeout_at"), name="command_status_timeout_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} → {self.agent_id} ({self.get_status_display()})"


# --- Panic blocks (hardening) -----------------------------------------------------------------


class PanicBlock(models.Model):
    """An IP kept away from every marketplace after an agent's panic.

    Redis' ``watcher:ip_blocked:{ip}`` is what the dispatcher reads; this row is the record
    that survives a Redis flush (the blocks are restored from it) and that staff can clear.
    """

    ip = models.GenericIPAddressField(_("IP"))
    agent = models.ForeignKey(
        Agent,
        verbose_name=_("agent"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="panic_blocks",
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("blocked at"), default=timezone.now)
    expires_at = models.DateTimeField(_("blocked until"))

    class Meta:
        verbose_name = _("IP block")
        verbose_name_plural = _("IP blocks")
        ordering = ("-created_at",)
        indexes: ClassVar = [models.Index(fields=("expires_at",), name="panic_block_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.ip}"
