"""The Office: one status row per automated agent of the company (SPEC §10), and module keys."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

DEFAULT_SALARY = 60_000
DEFAULT_FTE = Decimal("1.00")


class OfficeStatus(models.TextChoices):
    OK = "ok", _("working")
    WARNING = "warning", _("warning")
    ERROR = "error", _("error")
    OFFLINE = "offline", _("offline")


class OfficeAgentStatus(models.Model):
    """What one virtual employee is doing now; upserted by ``office.reporter.OfficeReporter``."""

    agent_id = models.CharField(_("agent id"), max_length=100, unique=True)
    department = models.CharField(_("department"), max_length=50, db_index=True)
    name = models.CharField(_("name"), max_length=100)
    brand = models.CharField(_("brand"), max_length=20, blank=True, default="", db_index=True)
    status = models.CharField(
        _("status"), max_length=10, choices=OfficeStatus.choices, default=OfficeStatus.OFFLINE
    )
    last_activity = models.DateTimeField(_("last activity"), null=True, blank=True)
    task = models.CharField(_("current task"), max_length=255, blank=True, default="")
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    salary_equivalent = models.PositiveIntegerField(
        _("salary equivalent, ₽ a month"), default=DEFAULT_SALARY
    )
    fte_coefficient = models.DecimalField(
        _("FTE coefficient"),
        max_digits=3,
        decimal_places=2,
        default=DEFAULT_FTE,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("9.99"))],
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        db_table = "office_agent_status"
        verbose_name = _("office agent")
        verbose_name_plural = _("office agents")
        ordering = ("department", "name")

    def __str__(self) -> str:
        return f"{self.name} ({self.agent_id})"


class ModuleKey(models.Model):
    """An API key of one module (department) outside this project; only its digest is stored."""

    department = models.CharField(_("department"), max_length=50, db_index=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    key_prefix = models.CharField(_("key prefix"), max_length=16, unique=True, editable=False)
    key_digest = models.CharField(_("key digest"), max_length=64, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        db_table = "office_module_key"
        verbose_name = _("module key")
        verbose_name_plural = _("module keys")
        ordering = ("department", "-created_at")

    def __str__(self) -> str:
        return f"{self.department}: wo_{self.key_prefix}…"
