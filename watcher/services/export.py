"""Price history as CSV or XLSX, streamed: rows are read in chunks and written as they come, so
memory stays flat whatever the number of rows. The admin, the API and ``export_prices`` all
call :func:`export_chunks`, so they produce the same rows.

CSV is for Russian Excel by default (UTF-8 with BOM, ``;`` between cells, decimal comma,
``dd.mm.yyyy hh:mm:ss``); ``rfc4180`` is plain CSV (UTF-8, ``,``, decimal point, ISO 8601).
XLSX keeps numbers as numbers and times as dates (openpyxl's write-only mode).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook

from parser.types import Marketplace
from watcher.services.prices import COMPETITOR, KIND_CHOICES, OWN

CSV, XLSX = "csv", "xlsx"
FORMATS = (CSV, XLSX)
EXCEL, RFC4180 = "excel", "rfc4180"
DIALECTS = (EXCEL, RFC4180)
CHUNK_ROWS = 2000
FILE_CHUNK_BYTES = 64 * 1024
CONTENT_TYPES = {
    CSV: "text/csv; charset=utf-8",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# (queryset field, column header): the columns of every export, in order.
COLUMNS = (
    ("id", _("ID")),
    ("parsed_at", _("Observed at")),
    ("marketplace", _("Marketplace")),
    ("brand", _("Brand")),
    ("subscription__sku", _("Our SKU")),
    ("competitor_id", _("Our SKU or competitor")),
    ("competitor__competitor_sku", _("Competitor SKU")),
    ("competitor__name", _("Competitor")),
    ("current_price", _("Price, ₽")),
    ("old_price", _("Old price, ₽")),
    ("spp_price", _("Wallet price, ₽")),
    ("in_stock", _("In stock")),
    ("stock_quantity", _("Stock")),
    ("rating", _("Rating")),
    ("reviews_count", _("Reviews")),
)
FIELDS = tuple(field for field, _header in COLUMNS)
IN_STOCK_COLUMN = FIELDS.index("in_stock")
# Cells Excel would run as a formula (names come from operators and marketplaces).
FORMULA_STARTS = ("=", "+", "-", "@")


def headers() -> list[str]:
    return [str(header) for _field, header in COLUMNS]


def export_chunks(queryset: QuerySet) -> Iterator[list[list[Any]]]:
    """The rows in chunks, in the order they were recorded (by id): plain values (local naive
    times, Decimals, labels).

    Keyset pagination: each chunk is its own short query (``id > last`` on the primary key),
    so no transaction or cursor stays open while the client downloads, the first rows come at
    once, and memory holds one chunk whatever the number of rows.
    """
    marketplaces = {value: str(label) for value, label in Marketplace.choices}
    kinds = dict(KIND_CHOICES)
    own, competitor = str(kinds[OWN]), str(kinds[COMPETITOR])
    zone = timezone.get_current_timezone()
    rows = queryset.order_by("id").values_list(*FIELDS)
    last = 0
    while True:
        chunk = [
            [
                pk,
                at.astimezone(zone).replace(tzinfo=None),
                marketplaces.get(marketplace, marketplace),
                brand,
                our_sku,
                own if competitor_id is None else competitor,
                *rest,
            ]
            for pk, at, marketplace, brand, our_sku, competitor_id, *rest in rows.filter(
                id__gt=last
            )[:CHUNK_ROWS]
        ]
        if chunk:
            yield chunk
        if len(chunk) < CHUNK_ROWS:
            return
        last = chunk[-1][0]


class _Echo:
    """csv.writer's file: hands each written line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _text(value: str | None) -> str | None:
    # None is written as an empty cell by csv.writer.
    if value and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _comma(value: Decimal | None) -> str | None:
    return None if value is None else str(value).replace(".", ",")


def _excel_row(row: list[Any], yes: str, no: str) -> list[Any]:
    """Cells as Russian Excel reads them; one function per column, no type tests per cell."""
    pk, at, marketplace, brand, our_sku, kind, sku, name, price, old, wallet, in_stock, *rest = row
    stock, rating, reviews = rest
    return [
        pk,
        at.strftime("%d.%m.%Y %H:%M:%S"),
        marketplace,
        _text(brand),
        _text(our_sku),
        kind,
        _text(sku),
        _text(name),
        _comma(price),
        _comma(old),
        _comma(wallet),
        None if in_stock is None else (yes if in_stock else no),
        stock,
        _comma(rating),
        reviews,
    ]


def _plain_row(row: list[Any]) -> list[Any]:
    in_stock = row[IN_STOCK_COLUMN]
    row[1] = row[1].isoformat()
    row[IN_STOCK_COLUMN] = None if in_stock is None else ("true" if in_stock else "false")
    return row


def csv_stream(queryset: QuerySet, dialect: str = EXCEL) -> Iterator[bytes]:
    """CSV bytes, a chunk of rows at a time; headers in the active language."""
    excel = dialect == EXCEL
    writer = csv.writer(_Echo(), delimiter=";" if excel else ",", lineterminator="\r\n")
    yes, no = gettext("yes"), gettext("no")
    bom = "\ufeff" if excel else ""
    yield (bom + writer.writerow(headers())).encode()
    for chunk in export_chunks(queryset):
        if excel:
            lines = [writer.writerow(_excel_row(row, yes, no)) for row in chunk]
        else:
            lines = [writer.writerow(_plain_row(row)) for row in chunk]
        yield "".join(lines).encode()


def xlsx_stream(queryset: QuerySet) -> Iterator[bytes]:
    """An XLSX file: built in a temporary file (openpyxl's write-only mode keeps one row in
    memory), then sent in pieces. The file is complete only at the end, so the first byte
    comes once every row is written."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(gettext("Price history"))
    sheet.append(headers())
    for chunk in export_chunks(queryset):
        for row in chunk:
            sheet.append(row)
    with tempfile.TemporaryFile() as file:
        workbook.save(file)
        file.seek(0)
        while piece := file.read(FILE_CHUNK_BYTES):
            yield piece


def export_stream(queryset: QuerySet, fmt: str, dialect: str = EXCEL) -> Iterator[bytes]:
    return xlsx_stream(queryset) if fmt == XLSX else csv_stream(queryset, dialect)


def _in_language(stream: Iterable[bytes], language: str) -> Iterator[bytes]:
    # A streamed body is produced after the view returns, outside the request's language.
    with translation.override(language):
        yield from stream


def filename(fmt: str) -> str:
    return f"prices-{timezone.localdate():%Y-%m-%d}.{fmt}"


def streaming_response(queryset: QuerySet, fmt: str, dialect: str = EXCEL) -> StreamingHttpResponse:
    """The export as a download, in the current language."""
    stream = _in_language(export_stream(queryset, fmt, dialect), translation.get_language())
    response = StreamingHttpResponse(stream, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename(fmt)}"'
    return response


def write_file(queryset: QuerySet, fmt: str, out: io.BufferedIOBase, dialect: str = EXCEL) -> None:
    for piece in export_stream(queryset, fmt, dialect):
        out.write(piece)
