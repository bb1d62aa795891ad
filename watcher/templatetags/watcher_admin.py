"""Template helpers of the admin overrides under templates/admin/."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.admin.views.main import ChangeList

from config.grammar import count_label

register = template.Library()


@register.filter
def result_count_label(cl: ChangeList) -> str:
    """The changelist's total with the model's noun in the right plural form."""
    return count_label(cl.model_admin, cl.result_count)


@register.filter
def label_for(labels: dict[str, str], column: str) -> str:
    """A column's label as the operator knows it (``sku`` → «Артикул»)."""
    return labels.get(column, column) if isinstance(labels, dict) else column


@register.filter
def watcher_first(app_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The admin index with the dispatcher's section first, in any language's sort order."""
    return sorted(app_list, key=lambda app: app.get("app_label") != "watcher")
