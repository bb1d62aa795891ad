"""Operators' screens for the dispatcher: what we watch, who scrapes it, and what they saw.

Admin actions parse the selection, call one service (``watcher.services.operations``,
``agents``, ``generator``) and report the outcome; they never ``save()`` core rows themselves.
Badges, links and the shared building blocks are in ``watcher.admin_helpers``; spreadsheet
import and export in ``watcher.resources``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from functools import partial
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext_lazy, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from config.grammar import Grammar, GrammarAdmin
from parser.models import Backend
from parser.types import Marketplace
from watcher import admin_beat  # noqa: F401  (django-celery-beat's screens, with our grammar)
from watcher.admin_exports import DateRangeFilter, KindFilter, PriceExports
from watcher.admin_helpers import (
    AGENT_STATUS_COLORS,
    EMPTY,
    GREY,
    TASK_STATUS_COLORS,
    AdminAction,
    ArchiveAdmin,
    ArchiveFilter,
    ImportExportAdmin,
    ProductColumns,
    ReadOnly,
    ReadOnlyInline,
    TaskIdSearch,
    admin_link,
    badge,
    bulk_action,
    external_link,
    marketplace_badge,
    raw_text_page,
    raw_text_preview,
    screenshot_image,
)
from watcher.models import (
    Agent,
    Competitor,
    EmulationConfig,
    PanicBlock,
    PriceHistory,
    Subscription,
    Task,
    TaskReport,
)
from watcher.resources import CompetitorResource, SubscriptionResource
from watcher.services import agents as agent_service
from watcher.services import generator, operations
from watcher.services.errors import Conflict

# One empty-value mark on every screen (Django's default is "-", our columns write "—").
admin.site.empty_value_display = EMPTY
# The lists need the width on a 1366 px laptop; the index and breadcrumbs already navigate.
admin.site.enable_nav_sidebar = False
# «Открыть сайт» leads where an operator watches the night: the live agents page.
admin.site.site_url = "/live/agents/"

# How each model's name reads in the admin's phrases (see admin_helpers.Grammar).
SUBSCRIPTION_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "subscription"),
    _("Delete selected subscriptions"),
    ngettext_lazy("%(count)d subscription", "%(count)d subscriptions", "count"),
)
COMPETITOR_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "competitor"),
    _("Delete selected competitors"),
    ngettext_lazy("%(count)d competitor", "%(count)d competitors", "count"),
)
AGENT_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "agent"),
    _("Delete selected agents"),
    ngettext_lazy("%(count)d agent", "%(count)d agents", "count"),
)
TASK_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "task"),
    _("Delete selected tasks"),
    ngettext_lazy("%(count)d task", "%(count)d tasks", "count"),
)
TASK_REPORT_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "task report"),
    _("Delete selected task reports"),
    ngettext_lazy("%(count)d task report", "%(count)d task reports", "count"),
)
PRICE_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "price observation"),
    _("Delete selected price observations"),
    ngettext_lazy("%(count)d price observation", "%(count)d price observations", "count"),
)
PANIC_BLOCK_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "IP block"),
    _("Delete selected IP blocks"),
    ngettext_lazy("%(count)d IP block", "%(count)d IP blocks", "count"),
)
EMULATION_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "emulation settings"),
    _("Delete selected emulation settings"),
    ngettext_lazy("%(count)d emulation settings", "%(count)d emulation settings", "count"),
)

# --- Subscriptions and competitors ------------------------------------------------------------


class CompetitorInline(admin.TabularInline):
    model = Competitor
    extra = 1
    fields = ("competitor_sku", "product_link", "name", "priority", "is_active")
    readonly_fields = ("product_link",)

    @admin.display(description=_("page"))
    def product_link(self, obj: Competitor) -> str:
        return external_link(obj.url, "↗") if obj.pk else EMPTY


@admin.register(Subscription)
class SubscriptionAdmin(ProductColumns, ArchiveAdmin, GrammarAdmin, ImportExportAdmin):
    grammar = SUBSCRIPTION_GRAMMAR
    archive_rows = staticmethod(operations.archive_subscriptions)
    unarchive_rows = staticmethod(operations.unarchive_subscriptions)
    resource_classes = [SubscriptionResource]
    list_display = (
        "brand", "marketplace_col", "sku_link", "title", "priority", "is_active",
        "competitors_count", "comparison_link",
    )  # fmt: skip
    list_display_links = ("brand",)
    list_editable = ("priority", "is_active")
    list_filter = (ArchiveFilter, "marketplace", "brand", "is_active")
    search_fields = ("sku", "title", "brand", "competitors__competitor_sku")
    list_per_page = 50
    inlines = (CompetitorInline,)
    actions = ("activate", "deactivate", "archive", "unarchive")
    readonly_fields = ("created_at", "updated_at", "archived_at")
    fieldsets = (
        (None, {"fields": ("brand", "marketplace", "sku", "title")}),
        (_("Scheduling"), {"fields": ("priority", "is_active")}),
        (
            _("History"),
            {"fields": ("created_at", "updated_at", "archived_at"), "classes": ("collapse",)},
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        competitors = Count("competitors", distinct=True)
        return super().get_queryset(request).annotate(competitors_total=competitors)

    @admin.display(description=_("competitors"), ordering="competitors_total")
    def competitors_count(self, obj: Subscription) -> int:
        return getattr(obj, "competitors_total", 0)

    @admin.display(description=_("prices"))
    def comparison_link(self, obj: Subscription) -> SafeString:
        url = reverse("analytics:comparison", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Compare"))

    activate = bulk_action(
        partial(operations.set_subscriptions_active, active=True),
        _("Activate selected subscriptions"),
        ngettext_lazy("%d subscription activated.", "%d subscriptions activated."),
    )
    deactivate = bulk_action(
        partial(operations.set_subscriptions_active, active=False),
        _("Deactivate selected subscriptions"),
        ngettext_lazy("%d subscription deactivated.", "%d subscriptions deactivated."),
    )
    archive = bulk_action(
        operations.archive_subscriptions,
        _("Archive selected subscriptions (history is kept)"),
        ngettext_lazy("%d subscription archived.", "%d subscriptions archived."),
    )
    unarchive = bulk_action(
        operations.unarchive_subscriptions,
        _("Bring selected subscriptions back from the archive"),
        ngettext_lazy(
            "%d subscription is back from the archive.",
            "%d subscriptions are back from the archive.",
        ),
    )


@admin.register(Competitor)
class CompetitorAdmin(ArchiveAdmin, GrammarAdmin, ImportExportAdmin):
    grammar = COMPETITOR_GRAMMAR
    archive_rows = staticmethod(operations.archive_competitors)
    unarchive_rows = staticmethod(operations.unarchive_competitors)
    resource_classes = [CompetitorResource]
    list_display = (
        "competitor_sku_link", "name", "our_sku", "marketplace_col", "priority", "is_active",
    )  # fmt: skip
    list_display_links = ("name",)
    list_editable = ("priority", "is_active")
    list_filter = (ArchiveFilter, "subscription__marketplace", "is_active", "subscription__brand")
    search_fields = ("competitor_sku", "name", "subscription__sku", "subscription__brand")
    autocomplete_fields = ("subscription",)
    list_select_related = ("subscription",)
    list_per_page = 50
    actions = ("activate", "deactivate", "archive", "unarchive")
    readonly_fields = ("created_at", "archived_at")
    fields = (
        "subscription", "competitor_sku", "name", "priority", "is_active", "created_at",
        "archived_at",
    )  # fmt: skip

    @admin.display(description=_("competitor SKU"), ordering="competitor_sku")
    def competitor_sku_link(self, obj: Competitor) -> SafeString:
        return external_link(obj.url, obj.competitor_sku)

    @admin.display(description=_("our SKU"), ordering="subscription__sku")
    def our_sku(self, obj: Competitor) -> SafeString:
        return admin_link(obj.subscription, obj.subscription.sku)

    @admin.display(description=_("marketplace"), ordering="subscription__marketplace")
    def marketplace_col(self, obj: Competitor) -> SafeString:
        return marketplace_badge(obj.subscription.marketplace)

    activate = bulk_action(
        partial(operations.set_competitors_active, active=True),
        _("Activate selected competitors"),
        ngettext_lazy("%d competitor activated.", "%d competitors activated."),
    )
    deactivate = bulk_action(
        partial(operations.set_competitors_active, active=False),
        _("Deactivate selected competitors"),
        ngettext_lazy("%d competitor deactivated.", "%d competitors deactivated."),
    )
    archive = bulk_action(
        operations.archive_competitors,
        _("Archive selected competitors (history is kept)"),
        ngettext_lazy("%d competitor archived.", "%d competitors archived."),
    )
    unarchive = bulk_action(
        operations.unarchive_competitors,
        _("Bring selected competitors back from the archive"),
        ngettext_lazy(
            "%d competitor is back from the archive.", "%d competitors are back from the archive."
        ),
    )


# --- Agents -----------------------------------------------------------------------------------


AGENT_OPERATOR = ("name", "is_enabled", "modem_operator")
AGENT_STATE = (
    "live_link", "status_badge", "current_ip", "heartbeat_age", "last_heartbeat",
    "current_task_link", "version", "signal_strength", "cookies_updated_at", "stats",
)  # fmt: skip
AGENT_PANIC = ("panic_reason", "panic_details", "panic_at")
AGENT_KEY = ("api_key_prefix", "api_key_rotated_at", "created_at")
AGENT_ADD_HELP = _(
    "An API key is generated on save and shown once: copy it into the agent's "
    "configuration. Only its digest is kept."
)


class AgentForm(forms.ModelForm):
    """What an operator sets; the rest comes from the agent (heartbeat) or the key service."""

    class Meta:
        model = Agent
        fields = AGENT_OPERATOR
        error_messages = {"name": {"unique": _("An agent with this name already exists.")}}


NEW_KEYS_ATTR = "watcher_new_agent_keys"  # on the request, from save_model to response_add
ROTATE_TOKEN_KEY = "watcher_rotate_token"  # in the session, from the confirmation to the rotation


@admin.register(Agent)
class AgentAdmin(GrammarAdmin):
    grammar = AGENT_GRAMMAR
    form = AgentForm
    # What fits a 1366 px laptop; version and modem are on the agent's page.
    list_display = (
        "name", "status_badge", "is_enabled", "current_ip", "heartbeat_age", "api_key_prefix",
        "live_link",
    )  # fmt: skip
    list_filter = ("status", "is_enabled", "modem_operator")
    search_fields = ("name", "current_ip", "modem_operator", "version", "api_key_prefix")
    actions = ("rotate_api_key", "disable", "enable")
    readonly_fields = AGENT_STATE + AGENT_PANIC + AGENT_KEY
    fieldsets = (
        (None, {"fields": AGENT_OPERATOR}),
        (_("State"), {"fields": AGENT_STATE}),
        (_("Panic"), {"fields": AGENT_PANIC}),
        (_("API key"), {"fields": AGENT_KEY}),
    )
    add_fieldsets = ((None, {"fields": AGENT_OPERATOR, "description": AGENT_ADD_HELP}),)

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
        setattr(request, NEW_KEYS_ATTR, [(created, key)])

    def response_add(
        self, request: HttpRequest, obj: Agent, post_url_continue: str | None = None
    ) -> HttpResponse:
        keys = getattr(request, NEW_KEYS_ATTR, None)
        if keys:
            return self.show_keys(request, keys, title=gettext("Agent created"))
        return super().response_add(request, obj, post_url_continue)

    def show_keys(
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

    @admin.display(description=_("Live page"))
    def live_link(self, obj: Agent) -> str:
        url = reverse("watcher:live-agent", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Live status and commands"))

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Agent) -> SafeString:
        return badge(obj.get_status_display(), AGENT_STATUS_COLORS.get(obj.status, GREY))

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
    def rotate_api_key(
        self, request: HttpRequest, queryset: QuerySet[Agent]
    ) -> HttpResponse | None:
        # Two steps: a confirmation (the old keys stop working at once), then the rotation. The
        # confirmation's one-time token makes a reload of the keys page rotate nothing.
        token = request.POST.get("rotate_token")
        if not token:
            token = secrets.token_urlsafe(16)
            request.session[ROTATE_TOKEN_KEY] = token
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": gettext("Rotate API keys?"),
                "agents": queryset.order_by("name"),
                "rotate_token": token,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/watcher/agent/rotate_confirmation.html", context
            )
        if request.session.pop(ROTATE_TOKEN_KEY, None) != token:
            self.message_user(
                request,
                gettext(
                    "Nothing rotated: these keys were already rotated and shown once. Rotate "
                    "again if a key was lost."
                ),
                messages.WARNING,
            )
            return None
        keys: list[tuple[Agent, str]] = []
        with transaction.atomic():
            for agent in queryset.order_by("name"):
                keys.append((agent, agent_service.rotate_key(agent)))
                self.log_change(request, agent, gettext("API key rotated."))
        return self.show_keys(request, keys, title=gettext("New API keys"))

    disable = bulk_action(
        partial(operations.set_agents_enabled, enabled=False),
        _("Disable selected agents"),
        ngettext_lazy(
            "%d agent disabled; its running tasks went back to the queue.",
            "%d agents disabled; their running tasks went back to the queue.",
        ),
    )
    enable = bulk_action(
        partial(operations.set_agents_enabled, enabled=True),
        _("Enable selected agents"),
        ngettext_lazy("%d agent enabled.", "%d agents enabled."),
    )


# --- Tasks, reports, prices -------------------------------------------------------------------


class TaskReportInline(ReadOnlyInline, admin.TabularInline):
    model = TaskReport
    fk_name = "task"
    fields = (
        "attempt", "agent", "success", "outcome", "timing_ms", "ip", "received_at", "raw",
        "evidence",
    )  # fmt: skip
    readonly_fields = fields
    ordering = ("attempt",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskReport]:
        return super().get_queryset(request).select_related("agent")

    @admin.display(description=_("raw text"))
    def raw(self, obj: TaskReport) -> SafeString | str:
        return raw_text_preview(obj)

    @admin.display(description=_("screenshot"))
    def evidence(self, obj: TaskReport) -> SafeString | str:
        return screenshot_image(obj, 240)


class PriceHistoryInline(ReadOnlyInline, admin.StackedInline):
    model = PriceHistory
    fk_name = "task"
    fields = (
        ("current_price", "old_price", "spp_price"),
        ("in_stock", "stock_quantity"),
        ("rating", "reviews_count", "position"),
        "card_title",
        ("seller_name", "seller_id"),
        ("parser_backend", "parsed_at"),
    )
    readonly_fields = (
        "current_price", "old_price", "spp_price", "in_stock", "stock_quantity", "rating",
        "reviews_count", "position", "card_title", "seller_name", "seller_id", "parser_backend",
        "parsed_at",
    )  # fmt: skip


def reparse_action(backend: str, description: str | Promise) -> AdminAction:
    done = ngettext_lazy(
        "%d report queued for re-parsing; results appear when the worker is done.",
        "%d reports queued for re-parsing; results appear when the worker is done.",
    )
    apply = partial(operations.reparse_tasks, backend=backend)
    return bulk_action(apply, description, done, report_skipped=True)


TASK_IDENTITY = (
    "id", "scheduled_date", "marketplace_col", "sku_link", "brand", "subscription_link",
    "competitor_link", "priority",
)  # fmt: skip
TASK_PROGRESS = (
    "status_badge", "outcome", "error", "agent", "retry_count", "created_at", "started_at",
    "completed_at", "execution_time_ms",
)  # fmt: skip
TASK_LEASE = ("lease_version", "lease_expires_at", "claimed_ip")


@admin.register(Task)
class TaskAdmin(ProductColumns, GrammarAdmin, TaskIdSearch):
    grammar = TASK_GRAMMAR
    change_list_template = "admin/watcher/task/change_list.html"
    # What fits a 1366 px laptop; priority, retries and timings are on the task's page.
    list_display = (
        "scheduled_date", "marketplace_col", "sku_link", "competitor_col", "status_badge",
        "outcome", "agent", "completed_at",
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
        (None, {"fields": TASK_IDENTITY}),
        (_("Progress"), {"fields": TASK_PROGRESS}),
        (_("Lease"), {"fields": TASK_LEASE, "classes": ("collapse",)}),
    )
    readonly_fields = TASK_IDENTITY + TASK_PROGRESS + TASK_LEASE

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

    # Generating tonight's tasks: a POST-only view behind the changelist's object tool.

    def get_urls(self) -> list[URLPattern]:
        generate = self.admin_site.admin_view(self.generate_view)
        return [path("generate/", generate, name="watcher_task_generate"), *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        can_generate = self.has_generate_permission(request)
        extra_context = {**(extra_context or {}), "can_generate_tasks": can_generate}
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
                "queued": sum(int(n) for n in result.queued.values()),
            },
            messages.SUCCESS,
        )
        return redirect("admin:watcher_task_changelist")

    # Columns.

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Task) -> SafeString:
        return badge(obj.get_status_display(), TASK_STATUS_COLORS.get(obj.status, GREY))

    @admin.display(description=_("our SKU"))
    def subscription_link(self, obj: Task) -> SafeString:
        return admin_link(obj.subscription, obj.subscription)

    @admin.display(description=_("competitor"))
    def competitor_link(self, obj: Task) -> str:
        return admin_link(obj.competitor, obj.competitor) if obj.competitor else EMPTY

    # Actions.

    requeue = bulk_action(
        operations.requeue_tasks,
        _("Requeue (failed, parse error, expired, cancelled, in progress)"),
        ngettext_lazy("%d task sent back to the queue.", "%d tasks sent back to the queue."),
        report_skipped=True,
    )
    cancel = bulk_action(
        operations.cancel_tasks,
        _("Cancel (pending, in progress)"),
        ngettext_lazy("%d task cancelled.", "%d tasks cancelled."),
        report_skipped=True,
    )
    reparse_rules = reparse_action(Backend.RULES, _("Re-parse stored reports with the rules"))
    reparse_openai = reparse_action(
        Backend.OPENAI, _("Re-parse stored reports with the OpenAI-compatible LLM")
    )
    reparse_solve = reparse_action(Backend.SOLVE, _("Re-parse stored reports with the solve pool"))


@admin.register(TaskReport)
class TaskReportAdmin(ReadOnly, GrammarAdmin, TaskIdSearch):
    grammar = TASK_REPORT_GRAMMAR
    task_id_field = "task_id"
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
        "received_at", "evidence", "raw_text_full",
    )  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskReport]:
        # The raw text can be megabytes per row: the list never shows it, the page loads it.
        return super().get_queryset(request).defer("raw_text", "screenshot")

    @admin.display(description=_("screenshot"))
    def evidence(self, obj: TaskReport) -> SafeString | str:
        return screenshot_image(obj, 720)

    @admin.display(description=_("task"), ordering="task__scheduled_date")
    def task_link(self, obj: TaskReport) -> SafeString:
        return admin_link(obj.task, obj.task)

    @admin.display(description=_("raw text"))
    def raw_text_full(self, obj: TaskReport) -> SafeString | str:
        return raw_text_page(obj)


@admin.register(PriceHistory)
class PriceHistoryAdmin(ProductColumns, ReadOnly, GrammarAdmin, PriceExports):
    grammar = PRICE_GRAMMAR
    list_display = (
        "parsed_at", "marketplace_col", "sku_link", "competitor_col", "current_price",
        "old_price", "spp_price", "in_stock", "rating", "seller_name",
    )  # fmt: skip
    list_filter = (
        DateRangeFilter, "marketplace", "brand", KindFilter, "in_stock", "parser_backend",
    )  # fmt: skip
    date_hierarchy = "parsed_at"
    search_fields = (
        "sku", "card_title", "brand", "competitor__name", "seller_name", "seller_id",
    )  # fmt: skip
    list_select_related = ("competitor",)
    show_full_result_count = False
    list_per_page = 100

    def get_queryset(self, request: HttpRequest) -> QuerySet[PriceHistory]:
        return super().get_queryset(request).defer("card_description", "card_attributes")


# --- Emulation settings (a singleton) ---------------------------------------------------------


@admin.register(EmulationConfig)
class EmulationConfigAdmin(GrammarAdmin):
    grammar = EMULATION_GRAMMAR
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


# --- IP blocks after panics (hardening) ----------------------------------------------------------


@admin.register(PanicBlock)
class PanicBlockAdmin(GrammarAdmin):
    """The IPs agents' panics blocked: visible, and clearable (the Redis block goes too)."""

    grammar = PANIC_BLOCK_GRAMMAR
    list_display = ("ip", "agent", "reason", "created_at", "expires_at", "in_force")
    list_filter = ("created_at",)
    search_fields = ("ip", "agent__name", "reason")
    list_select_related = ("agent",)
    actions = ("clear",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # clearing goes through the action, which lifts the Redis block too

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not request.user.has_perm("watcher.delete_panicblock"):
            actions.pop("clear", None)
        return actions

    @admin.display(description=_("in force"), boolean=True)
    def in_force(self, obj: PanicBlock) -> bool:
        return obj.expires_at > timezone.now()

    @admin.action(description=_("Clear selected IP blocks"))
    def clear(self, request: HttpRequest, queryset: QuerySet[PanicBlock]) -> None:
        count = agent_service.clear_blocks(queryset.values_list("pk", flat=True))
        message = ngettext_lazy("%d IP block cleared.", "%d IP blocks cleared.", count)
        self.message_user(request, message % count, messages.SUCCESS)
