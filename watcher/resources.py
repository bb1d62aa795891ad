"""Spreadsheet import and export of the catalogue and the price history (django-import-export).

Operators fill these files by hand, so cells are read leniently: marketplaces by value, label
or a common alias, SKUs that a spreadsheet turned into numbers, and yes/no in two languages.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export import fields as ie_fields
from import_export import resources, widgets

from parser.types import Marketplace
from watcher.models import Competitor, PriceHistory, Subscription

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
