"""Operators' screens for the dispatcher: what we watch, who scrapes it, and what they saw.

Admin actions parse the selection, call one service (``watcher.services.operations``,
``agents``, ``generator``) and report the outcome; they never ``save()`` core rows themselves.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.defaultfilters import truncatechars
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from import_export import fields as ie_fields
from import_export import resources, widgets
from import_export.admin import ExportMixin, ImportExportModelAdmin
from import_export.formats import base_formats

from parser.models import Backend
from parser.types import Marketplace
from watcher.models import (
    Agent,
    AgentStatus,
    Competitor,
    EmulationConfig,
    PriceHistory,
    Subscription,
    Task,
    TaskReport,
    TaskStatus,
    product_url,
)
from watcher.services import agents as agent_service
from watcher.services import generator, operations
from watcher.services.errors import Conflict

EMPTY = "—"
FILE_FORMATS = [base_formats.CSV, base_formats.XLSX]

# --- Badges -----------------------------------------------------------------------------------

MARKETPLACE_COLORS: dict[str, tuple[str, str]] = {
    Marketplace.WILDBERRIES: ("#8b1fa9", "#fff"),
    Marketplace.OZON: ("#005bff", "#fff"),
    Marketplace.YANDEX_MARKET: ("#ffcc00", "#222"),
}
AGENT_STATUS_COLORS: dict[str, str] = {
    AgentStatus.WORKING: "#2e7d32",
    AgentStatus.READY: "#1565c0",
    AgentStatus.IDLE: "#5c6bc0",
    AgentStatus.PREPARING: "#b58900",
    AgentStatus.PAUSED: "#ef6c00",
    AgentStatus.PANIC: "#c62828",
    AgentStatus.OFFLINE: "#8a8a8a",
}
TASK_STATUS_COLORS: dict[str, str] = {
    TaskStatus.PENDING: "#5c6bc0",
    TaskStatus.IN_PROGRESS: "#1565c0",
    TaskStatus.COMPLETED: "#2e7d32",
    TaskStatus.FAILED: "#c62828",
    TaskStatus.PARSE_ERROR: "#ad1457",
    TaskStatus.EXPIRED: "#8a8a8a",
    TaskStatus.CANCELLED: "#616161",
}
_BADGE = (
    '<span style="display:inline-block;padding:1px 8px;border-radius:10px;'
    'background:{};color:{};font-size:11px;font-weight:600;white-space:nowrap">{}</span>'
)


def badge(label: object, background: str, color: str = "#fff") -> SafeString:
    return format_html(_BADGE, background, color, label)


def marketplace_badge(marketplace: str) -> SafeString:
    background, color = MARKETPLACE_COLORS.get(marketplace, ("#8a8a8a", "#fff"))
    label = Marketplace(marketplace).label if marketplace in Marketplace.values else marketplace
    return badge(label, background, color)


def external_link(url: str, text: object) -> SafeString:
    return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, text)


def admin_link(obj: Any, text: object) -> SafeString:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text)


# --- Import / export --------------------------------------------------------------------------

_MARKETPLACE_ALIASES: dict[str, str] = {
    **{value: value for value in Marketplace.values},
    **{str(label).lower(): value for value, label in Marketplace.choices},
    "wb": Marketplace.WILDBERRIES,
    "вб": Marketplace.WILDBERRIES,
    "вайлдберриз": Marketplace.WILDBERRIES,
    "озон": Marketplace.OZON,
    "ym": Marketplace.YANDEX_MARKET,
    "yandex": Marketplace.YANDEX_MARKET,
    "yandex market": Marketplace.YANDEX_MARKET,
    "yandex.market": Marketplace.YANDEX_MARKET,
    "яндекс маркет": Marketplace.YANDEX_MARKET,
    "яндекс.маркет": Marketplace.YANDEX_MARKET,
}


def normalize_marketplace(value: object) -> str:
    """The marketplace value for a cell (value, label or a common alias), or ValidationError."""
    text = str(value or "").strip()
    found = _MARKETPLACE_ALIASES.get(text.lower())
    if found is None:
        raise ValidationError(
            {
                "marketplace": _("Unknown marketplace “%(value)s”: use one of %(choices)s.")
                % {"value": text, "choices": ", ".join(Marketplace.values)}
            }
        )
    return found


def normalize_sku(value: object) -> str:
    """An SKU cell as text; spreadsheets turn ``123456`` into ``123456.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value if value is not None else "").strip()


class FlexibleBooleanWidget(widgets.BooleanWidget):
    """Booleans as spreadsheets write them: 1/0, true/false, yes/no, да/нет."""

    TRUE_VALUES = [*widgets.BooleanWidget.TRUE_VALUES, "yes", "Yes", "YES", "да", "Да", "ДА"]
    FALSE_VALUES = [*widgets.BooleanWidget.FALSE_VALUES, "no", "No", "NO", "нет", "Нет", "НЕТ"]

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> bool | None:
        if isinstance(value, str):
            value = value.strip()
        if value not in (*self.TRUE_VALUES, *self.FALSE_VALUES, *self.NULL_VALUES):
            raise ValueError(gettext("Enter yes or no (1/0, true/false, да/нет)."))
        return super().clean(value, row, **kwargs)


class OurSkuWidget(widgets.ForeignKeyWidget):
    """Our SKU by (marketplace, sku): the row's ``marketplace`` column picks the marketplace."""

    def __init__(self) -> None:
        super().__init__(Subscription, field="sku")

    def get_lookup_kwargs(self, value: Any, row: Any, **kwargs: Any) -> dict[str, Any]:
        return {"sku": value, "marketplace": (row or {}).get("marketplace")}


def _priority_field() -> ie_fields.Field:
    return ie_fields.Field(
        attribute="priority", column_name="priority", widget=widgets.IntegerWidget(), default=0
    )


def _active_field() -> ie_fields.Field:
    return ie_fields.Field(
        attribute="is_active", column_name="is_active", widget=FlexibleBooleanWidget(), default=True
    )


class SubscriptionResource(resources.ModelResource):
    """Our SKUs, keyed on (marketplace, sku): re-importing a file updates, never duplicates."""

    priority = _priority_field()
    is_active = _active_field()

    class Meta:
        model = Subscription
        fields = ("brand", "marketplace", "sku", "title", "priority", "is_active")
        export_order = fields
        import_id_fields = ("marketplace", "sku")
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def before_import_row(self, row: dict[str, Any], **kwargs: Any) -> None:
        row["marketplace"] = normalize_marketplace(row.get("marketplace"))
        row["sku"] = normalize_sku(row.get("sku"))
        if "brand" in row:
            row["brand"] = str(row["brand"] or "").strip()
        if not row["sku"]:
            raise ValidationError({"sku": _("The SKU is required.")})


class CompetitorResource(resources.ModelResource):
    """Competitor SKUs keyed on (marketplace + our SKU, competitor SKU)."""

    marketplace = ie_fields.Field(
        attribute="subscription__marketplace", column_name="marketplace", readonly=True
    )
    our_sku = ie_fields.Field(
        attribute="subscription", column_name="our_sku", widget=OurSkuWidget()
    )
    priority = _priority_field()
    is_active = _active_field()

    class Meta:
        model = Competitor
        fields = ("marketplace", "our_sku", "competitor_sku", "name", "priority", "is_active")
        export_order = fields
        import_id_fields = ("our_sku", "competitor_sku")
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def get_queryset(self) -> QuerySet[Competitor]:
        return super().get_queryset().select_related("subscription")

    def before_import_row(self, row: dict[str, Any], **kwargs: Any) -> None:
        row["marketplace"] = marketplace = normalize_marketplace(row.get("marketplace"))
        row["our_sku"] = our_sku = normalize_sku(row.get("our_sku"))
        row["competitor_sku"] = normalize_sku(row.get("competitor_sku"))
        if not row["competitor_sku"]:
            raise ValidationError({"competitor_sku": _("The competitor SKU is required.")})
        if not Subscription.objects.filter(marketplace=marketplace, sku=our_sku).exists():
            raise ValidationError(
                {
                    "our_sku": _(
                        "Our SKU “%(sku)s” is not subscribed on %(marketplace)s: "
                        "import the subscription first."
                    )
                    % {"sku": our_sku, "marketplace": marketplace}
                }
            )


class PriceHistoryResource(resources.ModelResource):
    """Price observations for analysts (export only)."""

    our_sku = ie_fields.Field(attribute="subscription__sku", column_name="our_sku")
    competitor_sku = ie_fields.Field(
        attribute="competitor__competitor_sku", column_name="competitor_sku"
    )
    competitor_name = ie_fields.Field(attribute="competitor__name", column_name="competitor_name")
    agent_name = ie_fields.Field(attribute="agent__name", column_name="agent")

    class Meta:
        model = PriceHistory
        fields = (
            "parsed_at", "marketplace", "brand", "sku", "our_sku", "competitor_sku",
            "competitor_name", "current_price", "old_price", "spp_price", "in_stock",
            "stock_quantity", "rating", "reviews_count", "position", "ad_bid", "sales_count",
            "card_title", "agent_name", "parser_backend",
        )  # fmt: skip
        export_order = fields
        # Numbers stay numbers (numeric XLSX cells, a dot in CSV) whatever the UI language.
        widgets: ClassVar[dict[str, dict[str, Any]]] = {
            name: {"coerce_to_string": False}
            for name in (
                "current_price", "old_price", "spp_price", "stock_quantity", "rating",
                "reviews_count", "position", "ad_bid", "sales_count",
            )
        }  # fmt: skip

    def get_queryset(self) -> QuerySet[PriceHistory]:
        return super().get_queryset().select_related("subscription", "competitor", "agent")


class ImportExportPermissionsMixin:
    """Importing creates and changes rows, so it needs both permissions (not just admin access)."""

    import_formats = FILE_FORMATS
    export_formats = FILE_FORMATS

    def has_import_permission(self, request: HttpRequest) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)  # type: ignore[attr-defined]

    def has_export_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)  # type: ignore[attr-defined]


# --- Subscriptions and competitors ------------------------------------------------------------


class CompetitorInline(admin.TabularInline):
    model = Competitor
    extra = 1
    fields = ("competitor_sku", "product_link", "name", "priority", "is_active")
    readonly_fields = ("product_link",)

    @admin.display(description=_("page"))
    def product_link(self, obj: Competitor) -> str:
        if not obj.pk:
            return EMPTY
        return external_link(obj.url, "↗")


@admin.register(Subscription)
class SubscriptionAdmin(ImportExportPermissionsMixin, ImportExportModelAdmin):
    resource_classes = [SubscriptionResource]
    list_display = (
        "brand", "marketplace_col", "sku_link", "title", "priority", "is_active",
        "competitors_count",
    )  # fmt: skip
    list_display_links = ("brand",)
    list_editable = ("priority", "is_active")
    list_filter = ("marketplace", "brand", "is_active")
    search_fields = ("sku", "title", "brand", "competitors__competitor_sku")
    list_per_page = 50
    inlines = (CompetitorInline,)
    actions = ("activate", "deactivate")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("brand", "marketplace", "sku", "title")}),
        (_("Scheduling"), {"fields": ("priority", "is_active")}),
        (_("History"), {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        return (
            super()
            .get_queryset(request)
            .annotate(competitors_total=Count("competitors", distinct=True))
        )

    @admin.display(description=_("marketplace"), ordering="marketplace")
    def marketplace_col(self, obj: Subscription) -> SafeString:
        return marketplace_badge(obj.marketplace)

    @admin.display(description=_("SKU"), ordering="sku")
    def sku_link(self, obj: Subscription) -> SafeString:
        return external_link(obj.url, obj.sku)

    @admin.display(description=_("competitors"), ordering="competitors_total")
    def competitors_count(self, obj: Subscription) -> int:
        return getattr(obj, "competitors_total", 0)

    @admin.action(description=_("Activate selected subscriptions"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        count = operations.set_subscriptions_active(queryset.values_list("pk", flat=True), True)
        self.message_user(
            request,
            ngettext("%d subscription activated.", "%d subscriptions activated.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description=_("Deactivate selected subscriptions"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        count = operations.set_subscriptions_active(queryset.values_list("pk", flat=True), False)
        self.message_user(
            request,
            ngettext("%d subscription deactivated.", "%d subscriptions deactivated.", count)
            % count,
            messages.SUCCESS,
        )


@admin.register(Competitor)
class CompetitorAdmin(ImportExportPermissionsMixin, ImportExportModelAdmin):
    resource_classes = [CompetitorResource]
    list_display = (
        "competitor_sku_link", "name", "our_sku", "marketplace_col", "priority", "is_active",
    )  # fmt: skip
    list_display_links = ("name",)
    list_editable = ("priority", "is_active")
    list_filter = ("subscription__marketplace", "is_active", "subscription__brand")
    search_fields = ("competitor_sku", "name", "subscription__sku", "subscription__brand")
    autocomplete_fields = ("subscription",)
    list_select_related = ("subscription",)
    list_per_page = 50
    actions = ("activate", "deactivate")
    readonly_fields = ("created_at",)
    fields = ("subscription", "competitor_sku", "name", "priority", "is_active", "created_at")

    @admin.display(description=_("competitor SKU"), ordering="competitor_sku")
    def competitor_sku_link(self, obj: Competitor) -> SafeString:
        return external_link(obj.url, obj.competitor_sku)

    @admin.display(description=_("our SKU"), ordering="subscription__sku")
    def our_sku(self, obj: Competitor) -> SafeString:
        return admin_link(obj.subscription, obj.subscription.sku)

    @admin.display(description=_("marketplace"), ordering="subscription__marketplace")
    def marketplace_col(self, obj: Competitor) -> SafeString:
        return marketplace_badge(obj.subscription.marketplace)

    @admin.action(description=_("Activate selected competitors"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Competitor]) -> None:
        count = operations.set_competitors_active(queryset.values_list("pk", flat=True), True)
        self.message_user(
            request,
            ngettext("%d competitor activated.", "%d competitors activated.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description=_("Deactivate selected competitors"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Competitor]) -> None:
        count = operations.set_competitors_active(queryset.values_list("pk", flat=True), False)
        self.message_user(
            request,
            ngettext("%d competitor deactivated.", "%d competitors deactivated.", count) % count,
            messages.SUCCESS,
        )


# --- Agents -----------------------------------------------------------------------------------


class AgentForm(ModelForm):
    """What an operator sets; the rest comes from the agent (heartbeat) or the key service."""

    class Meta:
        model = Agent
        fields = ("name", "is_enabled", "modem_operator")


_NEW_KEYS_ATTR = "_watcher_new_agent_keys"


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = (
        "name", "status_badge", "is_enabled", "current_ip", "heartbeat_age", "version",
        "modem_operator", "api_key_prefix", "live_link",
    )  # fmt: skip
    list_filter = ("status", "is_enabled", "modem_operator")
    search_fields = ("name", "current_ip", "modem_operator", "version", "api_key_prefix")
    actions = ("rotate_api_key", "disable", "enable")
    readonly_fields = (
        "live_link", "status_badge", "current_ip", "heartbeat_age", "last_heartbeat",
        "current_task_link", "version", "signal_strength", "cookies_updated_at", "stats",
        "panic_reason", "panic_details", "panic_at", "api_key_prefix", "api_key_rotated_at",
        "created_at",
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("name", "is_enabled", "modem_operator")}),
        (
            _("State"),
            {
                "fields": (
                    "live_link",
                    "status_badge",
                    "current_ip",
                    "heartbeat_age",
                    "last_heartbeat",
                    "current_task_link",
                    "version",
                    "signal_strength",
                    "cookies_updated_at",
                    "stats",
                )
            },
        ),
        (_("Panic"), {"fields": ("panic_reason", "panic_details", "panic_at")}),
        (_("API key"), {"fields": ("api_key_prefix", "api_key_rotated_at", "created_at")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "fields": ("name", "is_enabled", "modem_operator"),
                "description": _(
                    "An API key is generated on save and shown once: copy it into the agent's "
                    "configuration. Only its digest is kept."
                ),
            },
        ),
    )

    @admin.display(description=_("Live page"))
    def live_link(self, obj: Agent) -> str:
        url = reverse("watcher:live-agent", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Live status and commands"))

    # Forms: the add form asks only for what an operator knows; the key is made on save.

    def get_fieldsets(self, request: HttpRequest, obj: Agent | None = None) -> Any:
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Agent | None = None) -> Any:
        return () if obj is None else self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: Agent, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            # Only what the operator edited: heartbeat fields change under our feet.
            if form.changed_data:
                obj.save(update_fields=form.changed_data)
            return
        extra = {f: form.cleaned_data[f] for f in form.cleaned_data if f != "name"}
        created, key = agent_service.create_agent(obj.name, id=obj.pk, **extra)
        obj.api_key_prefix, obj.api_key_digest = created.api_key_prefix, created.api_key_digest
        obj.created_at = created.created_at
        obj._state.adding = False
        obj._state.db = created._state.db
        setattr(request, _NEW_KEYS_ATTR, [(created, key)])

    def response_add(
        self, request: HttpRequest, obj: Agent, post_url_continue: str | None = None
    ) -> HttpResponse:
        keys = getattr(request, _NEW_KEYS_ATTR, None)
        if keys:
            return self._show_keys(request, keys, title=gettext("Agent created"))
        return super().response_add(request, obj, post_url_continue)

    def _show_keys(
        self, request: HttpRequest, keys: list[tuple[Agent, str]], title: str
    ) -> TemplateResponse:
        """The one and only place a plain key appears: not stored, not cached, not logged."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "keys": keys,
            "changelist_url": reverse("admin:watcher_agent_changelist"),
        }
        response = TemplateResponse(request, "admin/watcher/agent/api_keys.html", context)
        add_never_cache_headers(response)
        return response

    # Columns.

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Agent) -> SafeString:
        return badge(obj.get_status_display(), AGENT_STATUS_COLORS.get(obj.status, "#8a8a8a"))

    @admin.display(description=_("since last heartbeat"), ordering="last_heartbeat")
    def heartbeat_age(self, obj: Agent) -> str:
        if obj.last_heartbeat is None:
            return EMPTY
        age = timezone.now() - obj.last_heartbeat
        text = gettext("%(age)s ago") % {"age": timesince(obj.last_heartbeat)}
        if age > dt.timedelta(seconds=settings.WATCHER_AGENT_HEARTBEAT_TIMEOUT):
            return format_html('<span style="color:#c62828">{}</span>', text)
        return text

    @admin.display(description=_("current task"))
    def current_task_link(self, obj: Agent) -> str:
        return admin_link(obj.current_task, obj.current_task) if obj.current_task else EMPTY

    # Actions.

    @admin.action(description=_("Rotate API key (shows each new key once)"), permissions=["change"])
    def rotate_api_key(self, request: HttpRequest, queryset: QuerySet[Agent]) -> HttpResponse:
        keys: list[tuple[Agent, str]] = []
        with transaction.atomic():
            for agent in queryset.order_by("name"):
                keys.append((agent, agent_service.rotate_key(agent)))
                self.log_change(request, agent, gettext("API key rotated."))
        return self._show_keys(request, keys, title=gettext("New API keys"))

    @admin.action(description=_("Disable selected agents"), permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        count = operations.set_agents_enabled(queryset.values_list("pk", flat=True), False)
        self.message_user(
            request,
            ngettext(
                "%d agent disabled; its running tasks went back to the queue.",
                "%d agents disabled; their running tasks went back to the queue.",
                count,
            )
            % count,
            messages.SUCCESS,
        )

    @admin.action(description=_("Enable selected agents"), permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        count = operations.set_agents_enabled(queryset.values_list("pk", flat=True), True)
        self.message_user(
            request,
            ngettext("%d agent enabled.", "%d agents enabled.", count) % count,
            messages.SUCCESS,
        )


# --- Tasks, reports, prices -------------------------------------------------------------------

RAW_PREVIEW_CHARS = 300
RAW_INLINE_CHARS = 20_000
RAW_PAGE_CHARS = 1_000_000


class ReadOnlyInline(admin.options.InlineModelAdmin):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def raw_text_preview(report: TaskReport) -> SafeString | str:
    text = report.raw_text or ""
    if not text:
        return EMPTY
    if len(text) <= RAW_PREVIEW_CHARS:
        return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>', text)
    more = gettext("%(n)s characters — full text") % {"n": f"{len(text):,}"}
    return format_html(
        '<details><summary>{}</summary><pre style="white-space:pre-wrap;max-height:30em;'
        'overflow:auto">{}</pre><p>{}</p></details>',
        truncatechars(text, RAW_PREVIEW_CHARS),
        truncatechars(text, RAW_INLINE_CHARS),
        admin_link(report, more),
    )


class TaskReportInline(ReadOnlyInline, admin.TabularInline):
    model = TaskReport
    fk_name = "task"
    fields = ("attempt", "agent", "success", "outcome", "timing_ms", "ip", "received_at", "raw")
    readonly_fields = fields
    ordering = ("attempt",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskReport]:
        return super().get_queryset(request).select_related("agent")

    @admin.display(description=_("raw text"))
    def raw(self, obj: TaskReport) -> SafeString | str:
        return raw_text_preview(obj)


class PriceHistoryInline(ReadOnlyInline, admin.StackedInline):
    model = PriceHistory
    fk_name = "task"
    fields = (
        ("current_price", "old_price", "spp_price"),
        ("in_stock", "stock_quantity"),
        ("rating", "reviews_count", "position"),
        "card_title",
        ("parser_backend", "parsed_at"),
    )
    readonly_fields = (
        "current_price", "old_price", "spp_price", "in_stock", "stock_quantity", "rating",
        "reviews_count", "position", "card_title", "parser_backend", "parsed_at",
    )  # fmt: skip


def _uuid_or_none(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    change_list_template = "admin/watcher/task/change_list.html"
    list_display = (
        "scheduled_date", "marketplace_col", "sku_link", "competitor_col", "priority",
        "status_badge", "outcome", "agent", "retry_count", "execution_time_ms", "started_at",
        "completed_at",
    )  # fmt: skip
    list_display_links = ("scheduled_date",)
    list_filter = ("status", "outcome", "marketplace", "agent")
    date_hierarchy = "scheduled_date"
    search_fields = ("sku", "brand")
    list_select_related = ("competitor", "agent")
    list_per_page = 100
    show_full_result_count = False
    actions = ("requeue", "cancel", "reparse_rules", "reparse_openai", "reparse_solve")
    inlines = (PriceHistoryInline, TaskReportInline)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "scheduled_date",
                    "marketplace_col",
                    "sku_link",
                    "brand",
                    "subscription_link",
                    "competitor_link",
                    "priority",
                )
            },
        ),
        (
            _("Progress"),
            {
                "fields": (
                    "status_badge",
                    "outcome",
                    "error",
                    "agent",
                    "retry_count",
                    "created_at",
                    "started_at",
                    "completed_at",
                    "execution_time_ms",
                )
            },
        ),
        (
            _("Lease"),
            {
                "fields": ("lease_version", "lease_expires_at", "claimed_ip"),
                "classes": ("collapse",),
            },
        ),
    )
    readonly_fields = (
        "id", "scheduled_date", "marketplace_col", "sku_link", "brand", "subscription_link",
        "competitor_link", "priority", "status_badge", "outcome", "error", "agent",
        "retry_count", "created_at", "started_at", "completed_at", "execution_time_ms",
        "lease_version", "lease_expires_at", "claimed_ip",
    )  # fmt: skip

    # Read-mostly: rows change through the dispatcher and the actions below, never a form
    # (a stale form would overwrite what an agent reported meanwhile).

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        return False

    def has_generate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.add_task")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Task], search_term: str
    ) -> tuple[QuerySet[Task], bool]:
        task_id = _uuid_or_none(search_term)
        if task_id is not None:
            return queryset.filter(pk=task_id), False
        return super().get_search_results(request, queryset, search_term)

    # Generating tonight's tasks: a POST-only view behind the changelist's object tool.

    def get_urls(self) -> list[URLPattern]:
        urls = [
            path(
                "generate/",
                self.admin_site.admin_view(self.generate_view),
                name="watcher_task_generate",
            )
        ]
        return urls + super().get_urls()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_generate_tasks": self.has_generate_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def generate_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_generate_permission(request):
            raise PermissionDenied
        try:
            result = generator.generate_tasks(wait=False)
        except Conflict:
            self.message_user(
                request,
                gettext(
                    "A task generation is already running (the nightly one or another "
                    "person's). Its tasks appear in the list as it goes; try again when it ends."
                ),
                messages.WARNING,
            )
            return redirect("admin:watcher_task_changelist")
        per_marketplace = ", ".join(
            f"{Marketplace(mp).label}: {n}" for mp, n in result.created.items() if n
        )
        queued = sum(int(n) for n in result.queued.values())
        self.message_user(
            request,
            gettext(
                "Tasks for the night of %(day)s: %(created)d created%(detail)s, "
                "%(expired)d leftovers of earlier nights expired, %(queued)d queued."
            )
            % {
                "day": result.day.isoformat(),
                "created": result.total_created,
                "detail": f" ({per_marketplace})" if per_marketplace else "",
                "expired": result.expired,
                "queued": queued,
            },
            messages.SUCCESS,
        )
        return redirect("admin:watcher_task_changelist")

    # Columns.

    @admin.display(description=_("marketplace"), ordering="marketplace")
    def marketplace_col(self, obj: Task) -> SafeString:
        return marketplace_badge(obj.marketplace)

    @admin.display(description=_("SKU"), ordering="sku")
    def sku_link(self, obj: Task) -> SafeString:
        return external_link(obj.url, obj.sku)

    @admin.display(description=_("competitor"), ordering="competitor__name")
    def competitor_col(self, obj: Task) -> str:
        if obj.competitor is None:
            return gettext("our SKU")
        return obj.competitor.name or obj.competitor.competitor_sku

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Task) -> SafeString:
        return badge(obj.get_status_display(), TASK_STATUS_COLORS.get(obj.status, "#8a8a8a"))

    @admin.display(description=_("our SKU"))
    def subscription_link(self, obj: Task) -> SafeString:
        return admin_link(obj.subscription, obj.subscription)

    @admin.display(description=_("competitor"))
    def competitor_link(self, obj: Task) -> str:
        return admin_link(obj.competitor, obj.competitor) if obj.competitor else EMPTY

    # Actions.

    @admin.action(
        description=_("Requeue (failed, parse error, expired, cancelled, in progress)"),
        permissions=["change"],
    )
    def requeue(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        count = operations.requeue_tasks(selected)
        self._report(
            request,
            count,
            len(selected),
            ngettext("%d task sent back to the queue.", "%d tasks sent back to the queue.", count),
        )

    @admin.action(description=_("Cancel (pending, in progress)"), permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        count = operations.cancel_tasks(selected)
        self._report(
            request,
            count,
            len(selected),
            ngettext("%d task cancelled.", "%d tasks cancelled.", count),
        )

    @admin.action(description=_("Re-parse stored reports with the rules"), permissions=["change"])
    def reparse_rules(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        self._reparse(request, queryset, Backend.RULES)

    @admin.action(
        description=_("Re-parse stored reports with the OpenAI-compatible LLM"),
        permissions=["change"],
    )
    def reparse_openai(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        self._reparse(request, queryset, Backend.OPENAI)

    @admin.action(
        description=_("Re-parse stored reports with the solve pool"), permissions=["change"]
    )
    def reparse_solve(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        self._reparse(request, queryset, Backend.SOLVE)

    def _reparse(self, request: HttpRequest, queryset: QuerySet[Task], backend: str) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        count = operations.reparse_tasks(selected, backend)
        self._report(
            request,
            count,
            len(selected),
            ngettext(
                "%d report queued for re-parsing; results appear when the worker is done.",
                "%d reports queued for re-parsing; results appear when the worker is done.",
                count,
            ),
        )

    def _report(self, request: HttpRequest, count: int, selected: int, done: str) -> None:
        message = done % count
        skipped = selected - count
        if skipped:
            message += (
                " "
                + ngettext(
                    "%d was skipped: its status does not allow it.",
                    "%d were skipped: their status does not allow it.",
                    skipped,
                )
                % skipped
            )
        self.message_user(request, message, messages.SUCCESS if count else messages.WARNING)


class ReadOnlyAdmin(admin.ModelAdmin):
    """A list to look at: nothing added, changed or deleted by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _ReportChangeList(ChangeList):
    """The report list never shows the raw text, which can be megabytes per row."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        return super().get_queryset(request, exclude_parameters).defer("raw_text")


@admin.register(TaskReport)
class TaskReportAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at", "task_link", "agent", "attempt", "success", "outcome", "timing_ms", "ip",
    )  # fmt: skip
    list_filter = ("success", "outcome", "agent")
    date_hierarchy = "received_at"
    search_fields = ("task__sku", "task__brand", "ip")
    list_select_related = ("task", "agent")
    show_full_result_count = False
    fields = (
        "task_link", "agent", "attempt", "success", "outcome", "timing_ms", "ip", "error",
        "received_at", "raw_text_full",
    )  # fmt: skip
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TaskReport], search_term: str
    ) -> tuple[QuerySet[TaskReport], bool]:
        task_id = _uuid_or_none(search_term)
        if task_id is not None:
            return queryset.filter(task_id=task_id), False
        return super().get_search_results(request, queryset, search_term)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _ReportChangeList

    @admin.display(description=_("task"), ordering="task__scheduled_date")
    def task_link(self, obj: TaskReport) -> SafeString:
        return admin_link(obj.task, obj.task)

    @admin.display(description=_("raw text"))
    def raw_text_full(self, obj: TaskReport) -> SafeString | str:
        if not obj.raw_text:
            return EMPTY
        text = obj.raw_text
        note = ""
        if len(text) > RAW_PAGE_CHARS:
            note = gettext("Showing the first %(shown)s of %(total)s characters.") % {
                "shown": f"{RAW_PAGE_CHARS:,}",
                "total": f"{len(text):,}",
            }
            text = text[:RAW_PAGE_CHARS]
        return format_html(
            '<p>{}</p><pre style="white-space:pre-wrap;max-height:60em;overflow:auto">{}</pre>',
            note,
            text,
        )


@admin.register(PriceHistory)
class PriceHistoryAdmin(ImportExportPermissionsMixin, ExportMixin, ReadOnlyAdmin):
    resource_classes = [PriceHistoryResource]
    list_display = (
        "parsed_at", "marketplace_col", "sku_link", "competitor_col", "current_price",
        "old_price", "spp_price", "in_stock", "rating", "reviews_count", "agent",
    )  # fmt: skip
    list_filter = ("marketplace", "in_stock", "parser_backend")
    date_hierarchy = "parsed_at"
    search_fields = ("sku", "card_title")
    list_select_related = ("competitor", "agent")
    show_full_result_count = False
    list_per_page = 100

    def get_queryset(self, request: HttpRequest) -> QuerySet[PriceHistory]:
        return super().get_queryset(request).defer("card_description", "card_attributes")

    @admin.display(description=_("marketplace"), ordering="marketplace")
    def marketplace_col(self, obj: PriceHistory) -> SafeString:
        return marketplace_badge(obj.marketplace)

    @admin.display(description=_("SKU"), ordering="sku")
    def sku_link(self, obj: PriceHistory) -> SafeString:
        return external_link(product_url(obj.marketplace, obj.sku), obj.sku)

    @admin.display(description=_("competitor"), ordering="competitor__name")
    def competitor_col(self, obj: PriceHistory) -> str:
        if obj.competitor is None:
            return gettext("our SKU")
        return obj.competitor.name or obj.competitor.competitor_sku


# --- Emulation settings (a singleton) ---------------------------------------------------------


@admin.register(EmulationConfig)
class EmulationConfigAdmin(admin.ModelAdmin):
    fieldsets = (
        (_("Delays"), {"fields": (("min_delay_ms", "max_delay_ms"),)}),
        (_("Page view"), {"fields": (("page_view_min_ms", "page_view_max_ms"),)}),
        (_("Scrolling"), {"fields": ("scroll_enabled", "scroll_steps")}),
        (_("Mouse"), {"fields": ("mouse_movement", "mouse_curve")}),
        (_("Order"), {"fields": ("random_order", "updated_at")}),
    )
    readonly_fields = ("updated_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not EmulationConfig.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseRedirect:
        config = EmulationConfig.get()
        return redirect("admin:watcher_emulationconfig_change", config.pk)

    def response_change(self, request: HttpRequest, obj: EmulationConfig) -> HttpResponse:
        if "_continue" in request.POST or "_addanother" in request.POST:
            return super().response_change(request, obj)
        self.message_user(request, gettext("Emulation settings saved."), messages.SUCCESS)
        return redirect("admin:watcher_emulationconfig_change", obj.pk)
