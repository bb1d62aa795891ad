"""Spreadsheet import and export of the catalogue (django-import-export); the price history has
its own streamed exports (``watcher.services.export``).

Operators fill these files by hand, often in a Russian Excel, so files and cells are read
leniently: CSV in UTF-8 (with or without BOM) or Windows-1251, split by ``;`` or ``,``; headers
by column name or by the column's label in either language; marketplaces by value, label or a
common alias; SKUs that a spreadsheet turned into numbers; numbers with a decimal comma; yes/no
in two languages.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import tablib
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import translation
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export import fields as ie_fields
from import_export import resources, widgets
from import_export.formats import base_formats

from parser.types import Marketplace
from watcher.models import Competitor, Subscription

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


class SpreadsheetCSV(base_formats.CSV):
    """CSV as a Russian Excel saves it: Windows-1251 or UTF-8 (BOM or not), ``;`` or ``,``."""

    def is_binary(self) -> bool:
        return True  # we get the bytes and find the encoding ourselves

    def get_read_mode(self) -> str:
        return "rb"

    def create_dataset(self, in_stream: bytes | str, **kwargs: Any) -> tablib.Dataset:
        text = decode_csv(in_stream) if isinstance(in_stream, bytes) else in_stream
        first_line = text.split("\n", 1)[0]
        delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
        return tablib.Dataset().load(io.StringIO(text), format="csv", delimiter=delimiter)


def decode_csv(data: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8 (a BOM is dropped), else Windows-1251."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251")


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


class LenientIntegerWidget(widgets.IntegerWidget):
    """Integers as a Russian spreadsheet writes them: ``5``, ``5,0``, ``1 000``."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> int | None:
        if isinstance(value, str):
            value = value.replace("\xa0", "").replace(" ", "").replace(",", ".")
            if not value:
                return None
            try:
                number = Decimal(value)
            except InvalidOperation:
                raise ValueError(gettext("Enter a whole number.")) from None
            if number != number.to_integral_value():
                raise ValueError(gettext("Enter a whole number."))
            return int(number)
        return super().clean(value, row, **kwargs)


class OurSkuWidget(widgets.ForeignKeyWidget):
    """Our SKU by (marketplace, sku): the row's ``marketplace`` column picks the marketplace."""

    def __init__(self) -> None:
        super().__init__(Subscription, field="sku")

    def get_lookup_kwargs(self, value: Any, row: Any, **kwargs: Any) -> dict[str, Any]:
        return {"sku": value, "marketplace": (row or {}).get("marketplace")}


def _priority_field() -> ie_fields.Field:
    return ie_fields.Field(
        attribute="priority", column_name="priority", widget=LenientIntegerWidget(), default=0
    )


def _active_field() -> ie_fields.Field:
    return ie_fields.Field(
        attribute="is_active", column_name="is_active", widget=FlexibleBooleanWidget(), default=True
    )


class CatalogueResource(resources.ModelResource):
    """What the catalogue resources share: headers in either language, a fill-in template."""

    # Column name → its label, as the operator's spreadsheet may title the column.
    labels: ClassVar[dict[str, str | Promise]] = {}

    @classmethod
    def column_label(cls, column: str) -> str:
        return capfirst(str(cls.labels.get(column, column)))

    def before_import(self, dataset: tablib.Dataset, **kwargs: Any) -> None:
        """Headers in either language become the column names (``Артикул`` → ``sku``)."""
        known: dict[str, str] = {}
        for column, label in self.labels.items():
            known[column] = column
            for language in ("ru", "en"):
                with translation.override(language):
                    known[str(label).strip().lower()] = column
        if dataset.headers:
            dataset.headers = [
                known.get(str(header or "").strip().lower(), header) for header in dataset.headers
            ]
        super().before_import(dataset, **kwargs)

    @classmethod
    def example_rows(cls) -> list[dict[str, str]]:
        """One filled row per marketplace (labels in the current language)."""
        return []

    @classmethod
    def template(cls, file_format: str) -> bytes:
        """A file to fill in: headers in the current language, a sample row per marketplace.

        CSV is written as a Russian Excel opens it (UTF-8 with BOM, ``;``); XLSX also lists the
        allowed marketplace values on a second sheet.
        """
        columns = list(cls.labels)
        headers = [cls.column_label(c) for c in columns]
        rows = [[example.get(c, "") for c in columns] for example in cls.example_rows()]
        if file_format == "csv":
            out = io.StringIO()
            writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
            writer.writerow(headers)
            writer.writerows(rows)
            return out.getvalue().encode("utf-8-sig")
        book = tablib.Databook()
        book.add_sheet(tablib.Dataset(*rows, headers=headers, title=gettext("Data")))
        values = [[str(label), value] for value, label in Marketplace.choices]
        allowed = tablib.Dataset(
            *values, headers=[gettext("Marketplace"), gettext("Also accepted")],
            title=gettext("Marketplaces"),
        )  # fmt: skip
        book.add_sheet(allowed)
        return book.export("xlsx")


EXAMPLE_SKUS = {
    Marketplace.WILDBERRIES: ("123456789", "223456789"),
    Marketplace.OZON: ("987654321", "887654321"),
    Marketplace.YANDEX_MARKET: ("1779045678", "1779045679"),
}


class SubscriptionResource(CatalogueResource):
    """Our SKUs, keyed on (marketplace, sku): re-importing a file updates, never duplicates."""

    labels: ClassVar[dict[str, str | Promise]] = {
        "brand": _("brand"), "marketplace": _("marketplace"), "sku": _("SKU"),
        "title": _("title"), "priority": _("priority"), "is_active": _("active"),
    }  # fmt: skip

    @classmethod
    def example_rows(cls) -> list[dict[str, str]]:
        yes = gettext("yes")
        return [
            {"brand": "Nordic Home", "marketplace": str(label), "sku": EXAMPLE_SKUS[value][0],
             "title": gettext("Fleece blanket"), "priority": "0", "is_active": yes}
            for value, label in Marketplace.choices
        ]  # fmt: skip

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


class CompetitorResource(CatalogueResource):
    """Competitor SKUs keyed on (marketplace + our SKU, competitor SKU)."""

    labels: ClassVar[dict[str, str | Promise]] = {
        "marketplace": _("marketplace"), "our_sku": _("our SKU"),
        "competitor_sku": _("competitor SKU"), "name": _("name"), "priority": _("priority"),
        "is_active": _("active"),
    }  # fmt: skip

    @classmethod
    def example_rows(cls) -> list[dict[str, str]]:
        yes = gettext("yes")
        return [
            {"marketplace": str(label), "our_sku": EXAMPLE_SKUS[value][0],
             "competitor_sku": EXAMPLE_SKUS[value][1], "name": gettext("Rival shop"),
             "priority": "0", "is_active": yes}
            for value, label in Marketplace.choices
        ]  # fmt: skip

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
