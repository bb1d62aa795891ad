"""Price history as CSV or XLSX, streamed: rows are read in chunks and written as they come, so
memory stays flat whatever the number of rows. The admin, the API and ``export_prices`` all
call :func:`export_stream`, so they produce the same rows.

CSV is for Russian Excel by default (UTF-8 with BOM, ``;`` between cells, decimal comma,
``dd.mm.yyyy hh:mm:ss``); ``rfc4180`` is plain CSV (UTF-8, ``,``, decimal point, ISO 8601).
On PostgreSQL the rows are formatted by PostgreSQL itself (``COPY (SELECT …) TO STDOUT``, a
chunk of ids at a time); on other databases by Python, to the same bytes (tested).
XLSX keeps numbers as numbers and times as dates (XlsxWriter's constant-memory mode).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import xlsxwriter
from django.contrib.postgres.aggregates import StringAgg
from django.db import connections
from django.db.models import Count, Max, Min, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import StreamingHttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from parser.types import Marketplace
from watcher.services.prices import COMPETITOR, KIND_CHOICES, OWN

CSV, XLSX = "csv", "xlsx"
FORMATS = (CSV, XLSX)
EXCEL, RFC4180 = "excel", "rfc4180"
DIALECTS = (EXCEL, RFC4180)
# Rows per chunk: Python values (XLSX, CSV off PostgreSQL); ids per COPY (a few MB of CSV).
CHUNK_ROWS = 5000
COPY_CHUNK_ROWS = 30_000
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
# Cells Excel would run as a formula (names come from operators and marketplaces).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's CSV injection list


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


def id_ranges(queryset: QuerySet, size: int) -> Iterator[tuple[int, int, int]]:
    """The matching ids, ``size`` at a time in id order (PostgreSQL): each chunk's first id,
    last id and count. Keyset pagination as in :func:`export_chunks`, so each chunk is its own
    short query (an index-only scan of the ids), and the filters are the queryset's own."""
    last = 0
    while True:
        chunk = (
            queryset.filter(id__gt=last)
            .order_by("id")[:size]
            .aggregate(first=Min("id"), last=Max("id"), count=Count("id"))
        )
        if chunk["count"]:
            yield chunk["first"], chunk["last"], chunk["count"]
        if chunk["count"] < size:
            return
        last = chunk["last"]


# --- CSV ---------------------------------------------------------------------------------------
#
# Two ways to the same bytes: PostgreSQL formats the rows itself (COPY), any other database gets
# them from Python's csv.writer. Both write NULL and empty text as an empty cell, quote a cell
# that holds the separator, a quote or a line break, and end each row with "\r\n".


class _Echo:
    """csv.writer's file: hands each written line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _text(value: str | None, excel: bool) -> str | None:
    if not value:
        return None  # empty, as PostgreSQL writes NULL (it quotes an empty string)
    # Excel would run such a cell as a formula (names come from operators and marketplaces).
    if excel and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _comma(value: Decimal | None) -> str | None:
    return None if value is None else str(value).replace(".", ",")


def _same(value: Any) -> Any:
    return value


def python_csv(queryset: QuerySet, dialect: str = EXCEL) -> Iterator[bytes]:
    """The CSV rows (no header) formatted in Python: for any database."""
    excel = dialect == EXCEL
    writer = csv.writer(_Echo(), delimiter=";" if excel else ",", lineterminator="\r\n")
    yes, no = _yes_no(dialect)
    when = "%d.%m.%Y %H:%M:%S" if excel else "%Y-%m-%dT%H:%M:%S"
    number = _comma if excel else _same
    for chunk in export_chunks(queryset):
        lines = []
        for row in chunk:
            pk, at, marketplace, brand, our_sku, kind, sku, name, *figures = row
            price, old, wallet, in_stock, stock, rating, reviews = figures
            cells = (
                pk,
                at.strftime(when),
                marketplace,
                _text(brand, excel),
                _text(our_sku, excel),
                kind,
                _text(sku, excel),
                _text(name, excel),
                number(price),
                number(old),
                number(wallet),
                None if in_stock is None else (yes if in_stock else no),
                stock,
                number(rating),
                reviews,
            )
            lines.append(writer.writerow(cells))
        yield "".join(lines).encode()


def _sql_text(column: str, excel: bool) -> str:
    """SQL for :func:`_text`."""
    if not excel:
        return f"NULLIF({column}, '')"
    # ascii() is the first character's code point (0 for ''): cheaper than left(…, 1) IN (…).
    starts = ", ".join(str(ord(start)) for start in FORMULA_STARTS)
    return (
        f"CASE WHEN ascii({column}) IN ({starts}) THEN '''' || {column} "
        f"ELSE NULLIF({column}, '') END"
    )


def copy_sql(dialect: str = EXCEL, every_id: bool = False) -> str:
    """``COPY`` of the rows of a chunk, formatted as :func:`python_csv` does: the ids
    ``%(ids)s`` between ``%(first)s`` and ``%(last)s``, or with ``every_id`` the whole range."""
    excel = dialect == EXCEL
    if excel:
        number = "replace({}::text, '.', ',')".format
        when = "DD.MM.YYYY HH24:MI:SS"
    else:
        number = "{}".format
        when = 'YYYY-MM-DD"T"HH24:MI:SS'
    marketplaces = " ".join(
        f"WHEN %(marketplace_{i})s THEN %(marketplace_label_{i})s"
        for i in range(len(Marketplace.choices))
    )
    cells = (
        "r.id",
        f"to_char(r.parsed_at AT TIME ZONE %(zone)s, '{when}')",
        f"CASE r.marketplace {marketplaces} ELSE r.marketplace END",
        _sql_text("r.brand", excel),
        "r.our_sku",
        "CASE WHEN r.competitor_id IS NULL THEN %(own)s ELSE %(competitor)s END",
        "r.competitor_sku",
        "r.name",
        number("r.current_price"),
        number("r.old_price"),
        number("r.spp_price"),
        "CASE r.in_stock WHEN true THEN %(yes)s WHEN false THEN %(no)s END",
        "r.stock_quantity",
        number("r.rating"),
        "r.reviews_count",
    )
    return (
        f"COPY (SELECT {', '.join(cells)} FROM ("
        "SELECT p.id, p.parsed_at, p.marketplace, p.brand, s.sku AS our_sku, p.competitor_id, "
        "c.competitor_sku, c.name, p.current_price, p.old_price, p.spp_price, p.in_stock, "
        "p.stock_quantity, p.rating, p.reviews_count "
        "FROM watcher_pricehistory p "
        # The small tables' cells are formatted once per SKU, not once per row.
        f"JOIN (SELECT id, {_sql_text('sku', excel)} AS sku FROM watcher_subscription) s "
        "ON s.id = p.subscription_id "
        f"LEFT JOIN (SELECT id, {_sql_text('competitor_sku', excel)} AS competitor_sku, "
        f"{_sql_text('name', excel)} AS name FROM watcher_competitor) c "
        "ON c.id = p.competitor_id "
        # The chunk's id range, read in id order (an index range scan); unless every id of it
        # is in the export, a semi-join on its ids skips the rows the filters left out.
        "WHERE p.id BETWEEN %(first)s AND %(last)s "
        f"{'' if every_id else 'AND p.id IN (SELECT unnest(%(ids)s::bigint[])) '}"
        # Sorted (if need be) as they are read, then formatted: sorting the wide formatted
        # rows instead spills to disk. (OFFSET 0 keeps PostgreSQL from merging the levels.)
        "ORDER BY p.id OFFSET 0) r ORDER BY r.id) "
        f"TO STDOUT WITH (FORMAT csv, DELIMITER '{';' if excel else ','}')"
    )


def _yes_no(dialect: str) -> tuple[str, str]:
    return (gettext("yes"), gettext("no")) if dialect == EXCEL else ("true", "false")


def _copy_params(dialect: str) -> dict[str, Any]:
    kinds = dict(KIND_CHOICES)
    yes, no = _yes_no(dialect)
    params: dict[str, Any] = {
        "zone": timezone.get_current_timezone_name(),
        "own": str(kinds[OWN]),
        "competitor": str(kinds[COMPETITOR]),
        "yes": yes,
        "no": no,
    }
    for i, (value, label) in enumerate(Marketplace.choices):
        params[f"marketplace_{i}"] = value
        params[f"marketplace_label_{i}"] = str(label)
    return params


def _crlf(data: bytes | bytearray) -> bytes:
    """COPY ends rows with "\n": end them with "\r\n" as csv.writer does, and leave the line
    breaks inside quoted cells as they are. Split on quotes, the even pieces lie outside any
    quoted cell (an escaped quote only adds an empty piece); a chunk holds whole rows."""
    pieces = data.split(b'"')
    pieces[::2] = [piece.replace(b"\n", b"\r\n") for piece in pieces[::2]]
    return b'"'.join(pieces)


def copy_csv(queryset: QuerySet, dialect: str = EXCEL) -> Iterator[bytes]:
    """The CSV rows (no header) formatted by PostgreSQL: ``COPY (SELECT …) TO STDOUT``, a chunk
    of ids at a time. Each chunk's output is read whole (a few MB) before it is sent, so no
    statement or transaction stays open while the client downloads."""
    params = _copy_params(dialect)
    some_ids, every_id = copy_sql(dialect), copy_sql(dialect, every_id=True)
    database = connections[queryset.db]
    for first, last, count in id_ranges(queryset, COPY_CHUNK_ROWS):
        params.update(first=first, last=last)
        # No gap between its first and last id (ids are unique): the range is the chunk, read
        # by a plain range scan. Otherwise the chunk's ids, as one text, for the semi-join.
        if count == last - first + 1:
            sql = every_id
        else:
            sql = some_ids
            ids = queryset.filter(id__range=(first, last)).aggregate(
                ids=StringAgg(Cast("id", TextField()), ",")
            )["ids"]
            if not ids:  # its rows were deleted since the chunk's bounds were read
                continue
            params["ids"] = "{" + ids + "}"
        data = bytearray()
        with database.cursor() as cursor, cursor.copy(sql, params) as copy:
            # COPY hands over a row at a time: appending frees each at once (b"".join keeps
            # them all to the end, a third slower over a whole export).
            for row in copy:
                data += row
        yield _crlf(data)


def csv_stream(queryset: QuerySet, dialect: str = EXCEL) -> Iterator[bytes]:
    """CSV bytes, a chunk of rows at a time; headers in the active language. PostgreSQL
    formats the rows itself (far faster); other databases get the same bytes from Python."""
    excel = dialect == EXCEL
    writer = csv.writer(_Echo(), delimiter=";" if excel else ",", lineterminator="\r\n")
    bom = "\ufeff" if excel else ""
    yield (bom + writer.writerow(headers())).encode()
    postgresql = connections[queryset.db].vendor == "postgresql"
    yield from (copy_csv if postgresql else python_csv)(queryset, dialect)


# --- XLSX --------------------------------------------------------------------------------------

XLSX_OPTIONS = {
    # Rows go to a temporary file as they are written: memory holds one row.
    "constant_memory": True,
    # Names are text, whatever they start with ("=Rival", "+7…", "http…", "123").
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    "default_date_format": "dd.mm.yyyy hh:mm:ss",
}
# Column widths in characters, in the order of COLUMNS.
XLSX_WIDTHS = (10, 19, 14, 16, 14, 12, 16, 24, 11, 11, 11, 9, 9, 8, 9)


def xlsx_stream(queryset: QuerySet) -> Iterator[bytes]:
    """An XLSX file (XlsxWriter in constant-memory mode, in a temporary file), then sent in
    pieces. A workbook is complete only at the end, so the first byte comes once every row is
    written."""
    with tempfile.TemporaryFile() as file:
        workbook = xlsxwriter.Workbook(file, XLSX_OPTIONS)
        sheet = workbook.add_worksheet(gettext("Price history"))
        for column, width in enumerate(XLSX_WIDTHS):
            sheet.set_column(column, column, width)
        sheet.freeze_panes(1, 0)
        sheet.write_row(0, 0, headers())
        number = 1
        for chunk in export_chunks(queryset):
            for row in chunk:
                sheet.write_row(number, 0, row)
                number += 1
        workbook.close()
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
