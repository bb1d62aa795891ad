"""Configuration and records of the LLM parser backends.

Operators configure upstreams, prompts and which backend serves which marketplace in admin.
Every LLM run leaves a :class:`ParseJob` with one :class:`ParseAttempt` per HTTP call, so the
report (per upstream, per prompt, over a time range) can be built from the database alone.
No secret is stored here: an upstream names the environment variable that holds its API key.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from parser.types import Marketplace


class Backend(models.TextChoices):
    """A parser backend."""

    RULES = "rules", _("Rules (deterministic)")
    OPENAI = "openai", _("OpenAI-compatible chat completions")
    SOLVE = "solve", _("Solve upstream pool")


class UpstreamKind(models.TextChoices):
    """The protocol an upstream speaks."""

    OPENAI = "openai", _("OpenAI-compatible chat completions")
    SOLVE = "solve", _("Solve upstream (POST /v1/solve)")


class JobStatus(models.TextChoices):
    """How an LLM parse job ended."""

    OK = "ok", _("LLM answer used")
    FALLBACK = "fallback", _("Fell back to rules")
    FAILED = "failed", _("Failed")


class AttemptStatus(models.TextChoices):
    """How one HTTP call to an upstream ended."""

    OK = "ok", _("OK")
    BUSY = "busy", _("Busy")
    HTTP_ERROR = "http_error", _("HTTP error")
    TIMEOUT = "timeout", _("Timeout")
    INVALID_JSON = "invalid_json", _("Invalid JSON")
    INVALID_ANSWER = "invalid_answer", _("Invalid answer")
    ERROR = "error", _("Error")


env_name_validator = RegexValidator(
    r"^[A-Z_][A-Z0-9_]*$", _("An environment variable name, e.g. OPENAI_API_KEY.")
)


class LLMUpstream(models.Model):
    """One LLM endpoint: an OpenAI-compatible API or a worker of the solve pool.

    The API key is never stored: ``api_key_env`` names the environment variable that holds it.
    Upstreams of a kind are tried in ``priority`` order (lower first).
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=UpstreamKind.choices)
    base_url = models.URLField(
        _("base URL"),
        max_length=500,
        help_text=_(
            "OpenAI: up to /v1 (…/chat/completions is appended). Solve: the worker's root "
            "(/v1/solve is appended)."
        ),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    api_key_env = models.CharField(
        _("API key variable"),
        max_length=100,
        blank=True,
        validators=[env_name_validator],
        help_text=_("Name of the environment variable holding the API key; blank for none."),
    )
    model = models.CharField(
        _("model"), max_length=100, blank=True, help_text=_("Model name (OpenAI kind).")
    )
    profile_id = models.CharField(
        _("profile id"), max_length=100, blank=True, help_text=_("options.profile_id (solve).")
    )
    force_new_chat = models.BooleanField(
        _("force new chat"), default=False, help_text=_("options.force_new_chat (solve).")
    )
    max_chat_uses = models.PositiveIntegerField(
        _("max chat uses"), null=True, blank=True, help_text=_("options.max_chat_uses (solve).")
    )
    connect_timeout = models.FloatField(
        _("connect timeout, s"), default=10.0, validators=[MinValueValidator(0.01)]
    )
    read_timeout = models.FloatField(
        _("read timeout, s"), default=120.0, validators=[MinValueValidator(0.01)]
    )
    retries = models.PositiveSmallIntegerField(
        _("retries"),
        default=2,
        help_text=_("Extra tries after a 5xx answer, a timeout or a network error."),
    )
    priority = models.IntegerField(_("priority"), default=100, help_text=_("Lower goes first."))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("LLM upstream")
        verbose_name_plural = _("LLM upstreams")
        ordering = ("kind", "priority", "id")

    def __str__(self) -> str:
        return self.name

    def api_key(self) -> str:
        """The API key from the environment ('' when unset)."""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key())


class Prompt(models.Model):
    """The instructions sent to an LLM. Editing the text bumps ``version``.

    A blank marketplace means the prompt serves every marketplace. The field list the answer
    must use is appended by the backend, so operators edit only the instructions.
    """

    name = models.CharField(_("name"), max_length=100)
    marketplace = models.CharField(
        _("marketplace"),
        max_length=20,
        choices=Marketplace.choices,
        blank=True,
        help_text=_("Blank: every marketplace."),
    )
    text = models.TextField(_("text"))
    external_id = models.CharField(
        _("solve prompt id"),
        max_length=100,
        blank=True,
        help_text=_("Sent as options.prompt_id to solve upstreams; blank sends none."),
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("prompt")
        verbose_name_plural = _("prompts")
        ordering = ("name", "-version")

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            with transaction.atomic():
                # Lock the row so two concurrent edits cannot both become the same version.
                stored = (
                    Prompt.objects.select_for_update()
                    .filter(pk=self.pk)
                    .values_list("text", "version")
                    .first()
                )
                if stored is not None and stored[0] != self.text:
                    self.version = stored[1] + 1
                    if kwargs.get("update_fields") is not None:
                        kwargs["update_fields"] = {*kwargs["update_fields"], "version"}
                super().save(*args, **kwargs)
            return
        super().save(*args, **kwargs)


class BackendRoute(models.Model):
    """Which backend serves a marketplace. A marketplace without a route uses the rules."""

    marketplace = models.CharField(
        _("marketplace"), max_length=20, choices=Marketplace.choices, unique=True
    )
    backend = models.CharField(
        _("backend"), max_length=10, choices=Backend.choices, default=Backend.RULES
    )
    prompt = models.ForeignKey(
        Prompt,
        verbose_name=_("prompt"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="routes",
        help_text=_("Blank: the newest active prompt of the marketplace, else a general one."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("backend route")
        verbose_name_plural = _("backend routes")
        ordering = ("marketplace",)

    def __str__(self) -> str:
        return f"{self.marketplace} → {self.backend}"


class ParseJob(models.Model):
    """One LLM parse of one page: which backend and prompt, how it ended, what it produced."""

    task_id = models.UUIDField(_("watcher task"), null=True, blank=True, db_index=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True, db_index=True)
    marketplace = models.CharField(_("marketplace"), max_length=20, choices=Marketplace.choices)
    sku = models.CharField(_("SKU"), max_length=50, blank=True)
    backend = models.CharField(_("backend"), max_length=10, choices=Backend.choices)
    prompt = models.ForeignKey(
        Prompt,
        verbose_name=_("prompt"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
    )
    prompt_version = models.PositiveIntegerField(_("prompt version"), null=True, blank=True)
    upstream = models.ForeignKey(
        LLMUpstream,
        verbose_name=_("answering upstream"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        help_text=_("The upstream whose answer was used."),
    )
    status = models.CharField(_("status"), max_length=10, choices=JobStatus.choices)
    started_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration, ms"), default=0)
    error = models.TextField(_("error"), blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)

    class Meta:
        verbose_name = _("parse job")
        verbose_name_plural = _("parse jobs")
        ordering = ("-started_at", "-id")
        indexes: ClassVar = [
            models.Index(fields=("status", "started_at"), name="parsejob_status_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.backend} {self.marketplace}/{self.sku} {self.status}"


class ParseAttempt(models.Model):
    """One HTTP call of a parse job to one upstream. The error text is redacted."""

    job = models.ForeignKey(
        ParseJob, verbose_name=_("job"), on_delete=models.CASCADE, related_name="attempts"
    )
    upstream = models.ForeignKey(
        LLMUpstream,
        verbose_name=_("upstream"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attempts",
    )
    prompt = models.ForeignKey(
        Prompt,
        verbose_name=_("prompt"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attempts",
    )
    attempt_no = models.PositiveSmallIntegerField(_("attempt"))
    status = models.CharField(_("status"), max_length=16, choices=AttemptStatus.choices)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration, ms"), default=0)
    error = models.TextField(_("error"), blank=True)
    upstream_job_id = models.CharField(_("upstream job id"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("parse attempt")
        verbose_name_plural = _("parse attempts")
        ordering = ("job", "attempt_no")

    def __str__(self) -> str:
        return f"#{self.attempt_no} {self.status}"
