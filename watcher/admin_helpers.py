"""What the operators' screens share: badges and links, and a few admin building blocks.

``watcher.admin`` registers the screens; this module knows how a value looks on them and how a
bulk action calls its service, so the screens stay declarative.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import truncatechars
from django.urls import URLPattern, path, reverse
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin, ImportExportMixin
from import_export.formats import base_formats

from parser.types import Marketplace
from watcher.models import (
    EMPTY_VALUE,
    AgentStatus,
    PriceHistory,
    Subscription,
    Task,
    TaskReport,
    TaskStatus,
    product_url,
)
from watcher.resources import SpreadsheetCSV

EMPTY = EMPTY_VALUE
FILE_FORMATS = [base_formats.CSV, base_formats.XLSX]
IMPORT_FORMATS = [SpreadsheetCSV, base_formats.XLSX]
TEMPLATE_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
RAW_PREVIEW_CHARS = 300
RAW_INLINE_CHARS = 20_000
RAW_PAGE_CHARS = 1_000_000

# --- Badges and links -------------------------------------------------------------------------

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
GREY = "#8a8a8a"
BADGE_HTML = (
    '<span style="display:inline-block;padding:1px 8px;border-radius:10px;'
    'background:{};color:{};font-size:11px;font-weight:600;white-space:nowrap">{}</span>'
)


def badge(label: object, background: str, color: str = "#fff") -> SafeString:
    return format_html(BADGE_HTML, background, color, label)


def marketplace_badge(marketplace: str) -> SafeString:
    background, color = MARKETPLACE_COLORS.get(marketplace, (GREY, "#fff"))
    label = Marketplace(marketplace).label if marketplace in Marketplace.values else marketplace
    return badge(label, background, color)


def external_link(url: str, text: object) -> SafeString:
    return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, text)


def admin_link(obj: Any, text: object) -> SafeString:
    opts = obj._meta  # the documented Model._meta API
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text)


def raw_text_preview(report: TaskReport) -> SafeString | str:
    """A report's raw text inside a task's page: short ones whole, long ones folded."""
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


def screenshot_image(report: TaskReport, width: int) -> SafeString | str:
    """A browser agent's screenshot evidence, inline (the admin needs no extra view)."""
    image = bytes(report.screenshot or b"")
    if not image:
        return EMPTY
    kind = "png" if image.startswith(b"\x89PNG") else "jpeg"
    return format_html(
        '<img src="data:image/{};base64,{}" alt="" style="max-width:{}px;height:auto">',
        kind,
        base64.b64encode(image).decode(),
        width,
    )


def raw_text_page(report: TaskReport) -> SafeString | str:
    """A report's raw text on its own page, cut at a size a browser still renders."""
    text = report.raw_text
    if not text:
        return EMPTY
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


# --- Building blocks --------------------------------------------------------------------------

AdminAction = Callable[[admin.ModelAdmin, HttpRequest, QuerySet[Any]], None]


def bulk_action(
    apply: Callable[[list[Any]], int],
    description: str | Promise,
    done: str | Promise,
    *,
    report_skipped: bool = False,
) -> AdminAction:
    """An action that hands the selected ids to one service and says how many rows changed.

    ``done`` is an ``ngettext_lazy`` message with one ``%d``. With ``report_skipped`` the rows
    the service refused are counted too, and a selection it refused entirely is a warning.
    """

    @admin.action(description=description, permissions=["change"])
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        count = apply(selected)
        message, level = done % count, messages.SUCCESS
        skipped = len(selected) - count
        if report_skipped and skipped:
            refused = ngettext(
                "%d was skipped: its status does not allow it.",
                "%d were skipped: their status does not allow it.",
                skipped,
            )
            message = f"{message} {refused % skipped}"
        if report_skipped and not count:
            level = messages.WARNING
        modeladmin.message_user(request, message, level)

    return action


class ExportAdmin(ExportMixin, admin.ModelAdmin):
    """Whoever may view the rows may export them, as CSV or XLSX."""

    export_formats = FILE_FORMATS

    def has_export_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)


class ImportExportAdmin(ImportExportMixin, ExportAdmin):
    """Importing creates and changes rows, so it needs both permissions (not just admin access).

    The import page offers a template to fill in (CSV or XLSX) and shows each bad row's
    problems in plain words, with the columns named as the operator knows them.
    """

    import_formats = IMPORT_FORMATS
    import_template_name = "admin/watcher/import.html"

    def has_import_permission(self, request: HttpRequest) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def get_urls(self) -> list[URLPattern]:
        opts = self.opts
        view = self.admin_site.admin_view(self.import_template_view)
        name = f"{opts.app_label}_{opts.model_name}_import_template"
        return [path("import/template.<str:kind>", view, name=name), *super().get_urls()]

    def import_template_view(self, request: HttpRequest, kind: str) -> HttpResponse:
        if kind not in TEMPLATE_TYPES:
            raise Http404
        if not self.has_import_permission(request):
            raise PermissionDenied
        resource = self.get_import_resource_classes(request)[0]
        response = HttpResponse(resource.template(kind), content_type=TEMPLATE_TYPES[kind])
        filename = f"{self.opts.model_name}-template.{kind}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def get_import_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_import_context_data(**kwargs)
        resource = self.resource_classes[0]
        context["column_labels"] = {c: resource.column_label(c) for c in resource.labels}
        context["marketplaces"] = Marketplace.choices
        return context

    def add_data_read_fail_error_to_form(self, form: Any, e: Exception) -> None:
        # Never a raw exception name: say what to do.
        form.add_error(
            "import_file",
            gettext(
                "The file could not be read as the chosen format. Save it from Excel as "
                "“CSV (semicolon delimited)” or as an Excel workbook (.xlsx) and choose that "
                "format here."
            ),
        )


class ReadOnly:
    """Rows the dispatcher writes: nothing is added, changed or deleted by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(ReadOnly, admin.options.InlineModelAdmin):
    extra = 0
    can_delete = False
    show_change_link = True


class ProductColumns:
    """List columns of rows that name a marketplace and a SKU (subscriptions, tasks, prices)."""

    @admin.display(description=_("marketplace"), ordering="marketplace")
    def marketplace_col(self, obj: Subscription | Task | PriceHistory) -> SafeString:
        return marketplace_badge(obj.marketplace)

    @admin.display(description=_("SKU"), ordering="sku")
    def sku_link(self, obj: Subscription | Task | PriceHistory) -> SafeString:
        url = product_url(obj.marketplace, obj.sku) if isinstance(obj, PriceHistory) else obj.url
        return external_link(url, obj.sku)

    @admin.display(description=_("competitor"), ordering="competitor__name")
    def competitor_col(self, obj: Task | PriceHistory) -> str:
        if obj.competitor is None:
            return gettext("our SKU")
        return obj.competitor.name or obj.competitor.competitor_sku


class TaskIdSearch(admin.ModelAdmin):
    """A pasted task id finds its rows at once; any other term goes to the text search."""

    task_id_field = "pk"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        try:
            task_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(**{self.task_id_field: task_id}), False


# --- Archive instead of delete ----------------------------------------------------------------


class ArchiveFilter(admin.SimpleListFilter):
    """Lists show what is not archived unless asked: the archive is one click away."""

    title = _("archive")
    parameter_name = "archived"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> Any:
        return (("yes", _("Archived")), ("all", _("All, archived too")))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(archived_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(archived_at__isnull=True)

    def choices(self, changelist: Any) -> Any:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("Not archived"),
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


class ArchiveAdmin(admin.ModelAdmin):
    """Rows with price history are archived, not deleted; the delete page says so and offers it.

    ``archive_rows``/``unarchive_rows`` are the services (ids in, count out).
    """

    archive_rows: Callable[[list[Any]], int]
    unarchive_rows: Callable[[list[Any]], int]

    def get_urls(self) -> list[URLPattern]:
        opts = self.opts
        view = self.admin_site.admin_view(self.archive_view)
        name = f"{opts.app_label}_{opts.model_name}_archive"
        return [path("<path:object_id>/archive/", view, name=name), *super().get_urls()]

    def archive_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse(
                    f"admin:{self.opts.app_label}_{self.opts.model_name}_delete", args=[object_id]
                )
            )
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        self.archive_rows([obj.pk])
        self.log_change(request, obj, gettext("Archived."))
        self.message_user(
            request,
            gettext(
                "Archived: «%(obj)s». Its price history is kept; find it under the "
                "filter “Archive → Archived”."
            )
            % {"obj": obj},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        )

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # Tasks and their reports have no delete permission in the admin (read-only rows), yet
        # they are removed with their subscription by design; price history is PROTECTed and
        # shows as protected. So the operator's own delete permission is what counts.
        to_delete, model_count, _perms_needed, protected = super().get_deleted_objects(
            objs, request
        )
        return to_delete, model_count, set(), protected

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            history = obj.prices.count()
            opts = self.opts
            extra_context = {
                "archive_url": reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_archive", args=[obj.pk]
                ),
                "is_archived": obj.archived_at is not None,
                "history_count": history,
                **({"title": gettext("Archive instead of deleting")} if history else {}),
                "history_label": ngettext(
                    "%(count)d price observation", "%(count)d price observations", history
                )
                % {"count": history},
                **(extra_context or {}),
            }
        return super().delete_view(request, object_id, extra_context)
