"""Operators' screens for the LLM backends: upstreams, prompts, routes, and the job records.

No secret is ever displayed: an upstream shows the *name* of its API-key variable and whether
it is set, never the value. Parse jobs and attempts are read-only records; the summary page
(linked from the job list) reports per upstream and per prompt over a from/to range.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, pgettext_lazy

from config.grammar import Grammar, GrammarAdmin
from parser import reports
from parser.models import BackendRoute, LLMUpstream, ParseAttempt, ParseJob, Prompt

# How each model's name reads in the admin's phrases (see config.grammar.Grammar).
UPSTREAM_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "LLM upstream"),
    _("Delete selected LLM upstreams"),
    ngettext_lazy("%(count)d LLM upstream", "%(count)d LLM upstreams", "count"),
)
PROMPT_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "prompt"),
    _("Delete selected prompts"),
    ngettext_lazy("%(count)d prompt", "%(count)d prompts", "count"),
)
ROUTE_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "backend route"),
    _("Delete selected backend routes"),
    ngettext_lazy("%(count)d backend route", "%(count)d backend routes", "count"),
)
JOB_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "parse job"),
    _("Delete selected parse jobs"),
    ngettext_lazy("%(count)d parse job", "%(count)d parse jobs", "count"),
)
ATTEMPT_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "parse attempt"),
    _("Delete selected parse attempts"),
    ngettext_lazy("%(count)d parse attempt", "%(count)d parse attempts", "count"),
)


@admin.register(LLMUpstream)
class LLMUpstreamAdmin(GrammarAdmin):
    grammar = UPSTREAM_GRAMMAR
    list_display = (
        "name",
        "kind",
        "base_url",
        "enabled",
        "model",
        "priority",
        "connect_timeout",
        "read_timeout",
        "retries",
        "api_key_state",
    )
    list_filter = ("kind", "enabled")
    list_editable = ("enabled", "priority")
    search_fields = ("name", "base_url", "model")
    readonly_fields = ("api_key_state", "created_at", "updated_at")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (None, {"fields": ("name", "kind", "base_url", "enabled", "priority")}),
        (_("Authentication"), {"fields": ("api_key_env", "api_key_state")}),
        (_("OpenAI"), {"fields": ("model",)}),
        (_("Solve"), {"fields": ("profile_id", "force_new_chat", "max_chat_uses")}),
        (_("Timeouts and retries"), {"fields": ("connect_timeout", "read_timeout", "retries")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=_("API key"))
    def api_key_state(self, obj: LLMUpstream) -> str:
        if not obj.api_key_env:
            return str(_("none"))
        return str(_("set")) if obj.has_api_key else str(_("missing in the environment"))


@admin.register(Prompt)
class PromptAdmin(GrammarAdmin):
    grammar = PROMPT_GRAMMAR
    list_display = ("name", "marketplace", "version", "is_active", "external_id", "updated_at")
    list_filter = ("is_active", "marketplace")
    search_fields = ("name", "text", "external_id")
    readonly_fields = ("version", "created_at", "updated_at")
    fields = ("name", "marketplace", "is_active", "external_id", "text", "version")

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "text":
            kwargs["widget"] = forms.Textarea(attrs={"rows": 20, "cols": 100})
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(BackendRoute)
class BackendRouteAdmin(GrammarAdmin):
    grammar = ROUTE_GRAMMAR
    list_display = ("marketplace", "backend", "prompt", "updated_at")
    list_filter = ("backend",)
    list_select_related = ("prompt",)
    autocomplete_fields = ("prompt",)


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ParseAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = ParseAttempt
    extra = 0
    can_delete = False
    fields = (
        "attempt_no",
        "upstream",
        "status",
        "http_status",
        "duration_ms",
        "error",
        "upstream_job_id",
        "created_at",
    )
    readonly_fields = fields
    ordering = ("attempt_no",)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("upstream")


class RangeForm(forms.Form):
    start = forms.DateTimeField(label=_("from"), required=False)
    end = forms.DateTimeField(label=_("to"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError(_("'from' must not be after 'to'."))
        return data


@admin.register(ParseJob)
class ParseJobAdmin(ReadOnlyMixin, GrammarAdmin):
    grammar = JOB_GRAMMAR
    change_list_template = "admin/parser/parsejob/change_list.html"
    list_display = (
        "started_at",
        "marketplace",
        "sku",
        "backend",
        "status",
        "upstream",
        "prompt",
        "duration_ms",
        "task_id",
    )
    list_filter = ("status", "backend", "marketplace", "upstream", "prompt", "started_at")
    list_select_related = ("upstream", "prompt")
    search_fields = ("sku", "request_id", "error")
    date_hierarchy = "started_at"
    readonly_fields = (
        "task_id",
        "request_id",
        "marketplace",
        "sku",
        "backend",
        "prompt",
        "prompt_version",
        "upstream",
        "status",
        "started_at",
        "finished_at",
        "duration_ms",
        "error",
        "result",
    )
    fields = readonly_fields
    inlines = (ParseAttemptInline,)

    def get_urls(self) -> list[URLPattern]:
        summary = path(
            "summary/",
            self.admin_site.admin_view(self.summary_view),
            name="parser_parsejob_summary",
        )
        return [summary, *super().get_urls()]

    def summary_view(self, request: HttpRequest) -> HttpResponse:
        form = RangeForm(request.GET or None)
        end = timezone.now()
        start = end - timedelta(days=1)
        if form.is_valid():
            end = form.cleaned_data.get("end") or end
            start = form.cleaned_data.get("start") or end - timedelta(days=1)
        report = reports.summary(start, end) if not form.errors else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Parse jobs: summary"),
            "form": form,
            "start": start,
            "end": end,
            "report": report,
        }
        return TemplateResponse(request, "admin/parser/parsejob/summary.html", context)


@admin.register(ParseAttempt)
class ParseAttemptAdmin(ReadOnlyMixin, GrammarAdmin):
    grammar = ATTEMPT_GRAMMAR
    list_display = (
        "created_at",
        "job",
        "attempt_no",
        "upstream",
        "status",
        "http_status",
        "duration_ms",
        "error",
    )
    list_filter = ("status", "upstream", "http_status", "created_at")
    list_select_related = ("job", "upstream")
    date_hierarchy = "created_at"
    search_fields = ("error", "upstream_job_id")
    readonly_fields = (
        "job",
        "upstream",
        "prompt",
        "attempt_no",
        "status",
        "http_status",
        "duration_ms",
        "error",
        "upstream_job_id",
        "created_at",
    )
    fields = readonly_fields
