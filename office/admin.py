"""Admin of the Office: the agents' rows (read mostly) and the modules' API keys."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.formats import number_format
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext_lazy, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from config.grammar import Grammar, GrammarAdmin
from office.models import ModuleKey, OfficeAgentStatus, OfficeStatus
from office.services import dashboard
from office.services.dashboard import department_label
from office.services.keys import MODULE_KEY_PREFIX, create_module_key
from watcher.admin_helpers import GREY, badge

STATUS_COLORS = {
    OfficeStatus.OK: "#2e9d57",
    OfficeStatus.WARNING: "#e0a800",
    OfficeStatus.ERROR: "#c62828",
    OfficeStatus.OFFLINE: GREY,
}


# How each model's name reads in the admin's phrases (see watcher.admin_helpers.Grammar).
AGENT_STATUS_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "office agent"),
    _("Delete selected office agents"),
    ngettext_lazy("%(count)d office agent", "%(count)d office agents", "count"),
)
MODULE_KEY_GRAMMAR = Grammar(
    pgettext_lazy("accusative", "module key"),
    _("Delete selected module keys"),
    ngettext_lazy("%(count)d module key", "%(count)d module keys", "count"),
)


class DepartmentFilter(admin.SimpleListFilter):
    """Departments by their names, not their codes (the codes stay in the URL)."""

    title = _("department")
    parameter_name = "department"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        rows = model_admin.get_queryset(request).order_by("department")  # DISTINCT by code only
        codes = rows.values_list("department", flat=True).distinct()
        return sorted(((c, department_label(c)) for c in codes), key=lambda item: item[1])

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(department=self.value()) if self.value() else queryset


class DepartmentColumn:
    @admin.display(description=_("department"), ordering="department")
    def department_name(self, obj: OfficeAgentStatus | ModuleKey) -> str:
        return department_label(obj.department)


@admin.register(OfficeAgentStatus)
class OfficeAgentStatusAdmin(DepartmentColumn, GrammarAdmin):
    grammar = AGENT_STATUS_GRAMMAR
    # The brand (empty for most agents) is a filter and on the detail page: the list fits 1366 px.
    list_display = (
        "name", "agent_id", "department_name", "shown_status", "task", "last_activity", "salary",
        "fte_coefficient",
    )  # fmt: skip
    list_filter = (DepartmentFilter, "status", "brand")
    search_fields = ("agent_id", "name", "task")
    readonly_fields = ("status", "last_activity", "task", "metrics", "created_at", "updated_at")
    fields = (
        "agent_id", "department", "name", "brand", "salary_equivalent", "fte_coefficient",
        *readonly_fields,
    )  # fmt: skip

    @admin.display(description=_("salary equivalent, ₽ a month"), ordering="salary_equivalent")
    def salary(self, obj: OfficeAgentStatus) -> str:
        return number_format(obj.salary_equivalent, force_grouping=True)

    @admin.display(description=_("status"), ordering="status")
    def shown_status(self, obj: OfficeAgentStatus) -> SafeString:
        shown = dashboard.shown_status(obj)
        return badge(OfficeStatus(shown).label, STATUS_COLORS[shown])


class ModuleKeyForm(forms.ModelForm):
    class Meta:
        model = ModuleKey
        fields = ("department", "description", "is_active")


NEW_KEY_ATTR = "office_new_module_key"  # on the request, from save_model to response_add


@admin.register(ModuleKey)
class ModuleKeyAdmin(DepartmentColumn, GrammarAdmin):
    grammar = MODULE_KEY_GRAMMAR
    form = ModuleKeyForm
    list_display = ("department_name", "description", "masked_key", "is_active", "created_at",
                    "last_used_at")  # fmt: skip
    list_filter = (DepartmentFilter, "is_active")
    search_fields = ("department", "description", "key_prefix")
    readonly_fields = ("masked_key", "created_at", "last_used_at")

    @admin.display(description=_("key"))
    def masked_key(self, obj: ModuleKey) -> str:
        return f"{MODULE_KEY_PREFIX}{obj.key_prefix}…" if obj.key_prefix else "—"

    def save_model(
        self, request: HttpRequest, obj: ModuleKey, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            obj.save()
            return
        row, key = create_module_key(obj.department, obj.description)
        obj.pk = row.pk
        setattr(request, NEW_KEY_ATTR, (row, key))

    def response_add(
        self, request: HttpRequest, obj: ModuleKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        made = getattr(request, NEW_KEY_ATTR, None)
        if made is None:
            return super().response_add(request, obj, post_url_continue)
        row, key = made
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Module key created"),
            "row": row,
            "key": key,
            "changelist_url": reverse("admin:office_modulekey_changelist"),
        }
        # The one and only place the plain key appears: not stored, not cached, not logged.
        response = TemplateResponse(request, "admin/office/modulekey/new_key.html", context)
        add_never_cache_headers(response)
        return response
