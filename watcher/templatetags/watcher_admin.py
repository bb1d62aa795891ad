"""Template helpers of the admin overrides under templates/admin/."""

from __future__ import annotations

from django import template
from django.contrib.admin.views.main import ChangeList

from watcher.admin_helpers import count_label

register = template.Library()


@register.filter
def result_count_label(cl: ChangeList) -> str:
    """The changelist's total with the model's noun in the right plural form."""
    return count_label(cl.model_admin, cl.result_count)


@register.filter
def label_for(labels: dict[str, str], column: str) -> str:
    """A column's label as the operator knows it (``sku`` → «Артикул»)."""
    return labels.get(column, column) if isinstance(labels, dict) else column
