"""The price-history list's analyst tools: a date-range filter, an our-SKU/competitor filter,
and streamed CSV/XLSX exports (an action for the selected rows, buttons for the filtered list).

The exports are ``watcher.services.export``'s, so the admin, the API and ``export_prices``
produce the same rows and columns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from watcher.services import export, prices


class DateRangeForm(forms.Form):
    date_from = forms.DateField(required=False)
    date_to = forms.DateField(required=False)


class DateRangeFilter(admin.ListFilter):
    """Observations between two local dates (both included), typed into the sidebar."""

    title = _("observed between")
    template = "admin/watcher/date_range_filter.html"
    parameters = ("date_from", "date_to")

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, admin: Any):
        super().__init__(request, params, model, admin)
        for name in self.parameters:
            if name in params:
                value = params.pop(name)
                self.used_parameters[name] = value[-1] if isinstance(value, list) else value

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(self.parameters)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        form = DateRangeForm(self.used_parameters)
        if not form.is_valid():
            raise IncorrectLookupParameters(form.errors)
        first: dt.date | None = form.cleaned_data["date_from"]
        last: dt.date | None = form.cleaned_data["date_to"]
        if first:
            queryset = queryset.filter(parsed_at__gte=prices.day_start(first))
        if last:
            queryset = queryset.filter(parsed_at__lt=prices.day_start(last + dt.timedelta(days=1)))
        return queryset

    def choices(self, changelist: Any) -> list[dict[str, Any]]:
        # One "choice" for the template: the current values and the other parameters to keep.
        keep = [
            (key, value)
            for key, values in self.request.GET.lists()
            if key not in self.parameters and key != "p"
            for value in values
        ]
        return [
            {
                "date_from": self.used_parameters.get("date_from", ""),
                "date_to": self.used_parameters.get("date_to", ""),
                "keep": keep,
                "reset": changelist.get_query_string(remove=list(self.parameters)),
            }
        ]


class KindFilter(admin.SimpleListFilter):
    title = _("SKU owner")  # ours or a competitor's
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return prices.KIND_CHOICES

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in (prices.OWN, prices.COMPETITOR):
            return queryset.filter(competitor__isnull=self.value() == prices.OWN)
        return queryset


def _export_action(fmt: str, description: Any) -> Any:
    @admin.action(description=description, permissions=["view"])
    def action(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return export.streaming_response(queryset, fmt)

    action.__name__ = f"export_selected_{fmt}"
    return action


class PriceExports(admin.ModelAdmin):
    """Streamed exports of the price history: whoever may view the rows may export them."""

    change_list_template = "admin/watcher/pricehistory/change_list.html"
    actions = (
        _export_action(export.CSV, _("Export selected to CSV (Excel)")),
        _export_action(export.XLSX, _("Export selected to XLSX")),
    )

    def get_urls(self) -> list[URLPattern]:
        download = self.admin_site.admin_view(self.download_view)
        urls = [path("download/<str:fmt>/", download, name="watcher_pricehistory_download")]
        return urls + super().get_urls()

    def download_view(self, request: HttpRequest, fmt: str) -> HttpResponse:
        """The list as filtered and searched on screen (its query string), every page of it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if fmt not in export.FORMATS:
            raise Http404
        try:
            queryset = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(_("Invalid filter."))
        return export.streaming_response(queryset, fmt)
