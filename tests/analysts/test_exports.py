"""Exports: the admin, the API and ``export_prices`` give the same rows; Excel's conventions."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import CommandError, call_command
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from parser.types import Marketplace
from tests.analysts.conftest import NIGHTS, Catalogue, local, observe
from tests.factories import CompetitorFactory, SubscriptionFactory
from watcher.models import Competitor, PriceHistory

RU_HEADERS = [
    "ID", "Время наблюдения", "Маркетплейс", "Бренд", "Наш артикул", "Наш или конкурент",
    "Артикул конкурента", "Конкурент", "Цена, ₽", "Старая цена, ₽", "Цена с кошельком, ₽",
    "В наличии", "Остаток", "Рейтинг", "Отзывы",
]  # fmt: skip


def body(response: StreamingHttpResponse) -> bytes:
    assert response.status_code == 200, getattr(response, "content", b"")[:500]
    assert response.streaming
    return b"".join(response.streaming_content)


def excel_rows(data: bytes) -> list[list[str]]:
    assert data.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def xlsx_rows(data: bytes) -> list[tuple[object, ...]]:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return list(sheet.iter_rows(values_only=True))


def run_command(tmp_path: Path, *args: str) -> bytes:
    out = tmp_path / "export.bin"
    call_command("export_prices", *args, "-o", str(out), stdout=io.StringIO())
    return out.read_bytes()


def test_csv_opens_in_russian_excel(catalogue: Catalogue, analyst_api: APIClient) -> None:
    query = f"format=csv&competitor={catalogue.rival_a.pk}&from={NIGHTS[2]}"
    response = analyst_api.get(f"/api/v1/prices/?{query}")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="prices-' in response["Content-Disposition"]
    data = body(response)
    assert b"\r\n" in data
    header, row = excel_rows(data)
    assert header == RU_HEADERS
    record = dict(zip(header, row, strict=True))
    assert record["Цена, ₽"] == "920,00"
    assert record["Старая цена, ₽"] == "1200,00"
    assert record["Рейтинг"] == "4,80"
    assert record["Время наблюдения"] == "30.11.2026 22:00:00"  # local time, Excel's format
    assert record["Маркетплейс"] == "Wildberries"
    assert record["Наш или конкурент"] == "конкурент"
    assert record["В наличии"] == "да"
    assert record["Цена с кошельком, ₽"] == ""


def test_csv_cells_excel_would_run_as_formulas_are_quoted(
    catalogue: Catalogue, analyst_api: APIClient
) -> None:
    data = body(analyst_api.get(f"/api/v1/prices/?format=csv&competitor={catalogue.rival_b.pk}"))
    rows = excel_rows(data)
    assert {row[7] for row in rows[1:]} == {"'=Rival; B"}  # the ";" is inside a quoted cell


def test_plain_rfc4180_csv_on_request(catalogue: Catalogue, analyst_api: APIClient) -> None:
    query = f"format=csv&dialect=rfc4180&competitor={catalogue.rival_a.pk}&from={NIGHTS[2]}"
    data = body(analyst_api.get(f"/api/v1/prices/?{query}", HTTP_ACCEPT_LANGUAGE="en"))
    assert not data.startswith("\ufeff".encode())
    header, row = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert header[:3] == ["ID", "Observed at", "Marketplace"]
    record = dict(zip(header, row, strict=True))
    assert record["Price, ₽"] == "920.00"
    assert record["Observed at"] == "2026-11-30T22:00:00"
    assert record["In stock"] == "true"
    assert record["Our SKU or competitor"] == "competitor"


def test_xlsx_keeps_numbers_as_numbers_and_times_as_dates(
    catalogue: Catalogue, analyst_api: APIClient
) -> None:
    response = analyst_api.get(f"/api/v1/prices/?format=xlsx&competitor={catalogue.rival_a.pk}")
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    header, *rows = xlsx_rows(body(response))
    assert list(header) == RU_HEADERS
    record = dict(zip(header, rows[-1], strict=True))
    assert record["Цена, ₽"] == 920
    assert isinstance(record["Цена, ₽"], int | float)
    assert record["Рейтинг"] == pytest.approx(4.8)
    # Excel has no time zones: the local time, naive.
    assert record["Время наблюдения"] == local(NIGHTS[2], 22).replace(tzinfo=None)
    assert record["В наличии"] is True
    assert record["Цена с кошельком, ₽"] is None
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)


def test_xlsx_keeps_text_that_looks_like_a_formula_as_text(
    catalogue: Catalogue, analyst_api: APIClient
) -> None:
    data = body(analyst_api.get(f"/api/v1/prices/?format=xlsx&competitor={catalogue.rival_b.pk}"))
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    names = [row[7] for row in sheet.iter_rows(min_row=2)]
    assert len(names) == 3
    assert {(cell.value, cell.data_type) for cell in names} == {("=Rival; B", "s")}
    assert sheet.freeze_panes == "A2"  # the header stays in view


def test_admin_api_and_command_export_the_same_rows(
    catalogue: Catalogue, analyst_api: APIClient, analyst_client: Client, tmp_path: Path
) -> None:
    first, last = NIGHTS[1], NIGHTS[2]
    api = body(analyst_api.get(f"/api/v1/prices/?format=csv&brand=Nordic+Home&from={first}"))
    admin_url = reverse("admin:watcher_pricehistory_download", args=["csv"])
    admin = body(
        analyst_client.get(f"{admin_url}?brand__exact=Nordic+Home&date_from={first}&date_to={last}")
    )
    command = run_command(
        tmp_path, "--brand", "Nordic Home", "--from", str(first), "--to", str(last)
    )
    assert api == admin == command
    rows = excel_rows(api)[1:]
    wanted = PriceHistory.objects.filter(brand="Nordic Home", parsed_at__date__gte=first)
    assert [int(row[0]) for row in rows] == list(wanted.order_by("id").values_list("id", flat=True))
    assert len(rows) == 6

    api_xlsx = xlsx_rows(body(analyst_api.get("/api/v1/prices/?format=xlsx&kind=own")))
    admin_xlsx_url = reverse("admin:watcher_pricehistory_download", args=["xlsx"])
    admin_xlsx = xlsx_rows(body(analyst_client.get(f"{admin_xlsx_url}?kind=own")))
    command_xlsx = xlsx_rows(run_command(tmp_path, "--format", "xlsx", "--kind", "own"))
    assert api_xlsx == admin_xlsx == command_xlsx
    assert len(api_xlsx) == 1 + 6


def test_the_admin_action_exports_the_selected_rows(
    catalogue: Catalogue, analyst_client: Client
) -> None:
    selected = list(
        PriceHistory.objects.filter(competitor=catalogue.rival_c).values_list("pk", flat=True)
    )
    changelist = reverse("admin:watcher_pricehistory_changelist")
    page = analyst_client.get(changelist).content.decode()
    assert 'value="export_selected_csv"' in page
    assert 'id="export-csv"' in page and 'id="export-xlsx"' in page
    response = analyst_client.post(
        changelist, {"action": "export_selected_csv", ACTION_CHECKBOX_NAME: selected, "index": 0}
    )
    rows = excel_rows(body(response))[1:]
    assert sorted(int(row[0]) for row in rows) == sorted(selected)
    response = analyst_client.post(
        changelist, {"action": "export_selected_xlsx", ACTION_CHECKBOX_NAME: selected, "index": 0}
    )
    assert len(xlsx_rows(body(response))) == 1 + len(selected)


def test_the_admin_button_keeps_the_lists_search_and_refuses_bad_filters(
    catalogue: Catalogue, analyst_client: Client
) -> None:
    url = reverse("admin:watcher_pricehistory_download", args=["csv"])
    rows = excel_rows(body(analyst_client.get(f"{url}?q=%22Rival+C%22")))[1:]
    assert {row[7] for row in rows} == {"Rival C"}
    assert analyst_client.get(f"{url}?date_from=soon").status_code == 400
    assert (
        analyst_client.get(reverse("admin:watcher_pricehistory_download", args=["pdf"])).status_code
        == 404
    )


def test_the_command_without_filters_exports_every_row(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    rows = excel_rows(run_command(tmp_path))
    assert rows[0] == RU_HEADERS
    assert len(rows) == 1 + PriceHistory.objects.count()
    english = run_command(tmp_path, "--dialect", "rfc4180", "--language", "en")
    assert english.startswith(b"ID,Observed at,")


def test_the_command_refuses_bad_filters(db: None, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="--from"):
        run_command(tmp_path, "--from", "31.11.2026")
    with pytest.raises(CommandError, match="--marketplace"):
        run_command(tmp_path, "--marketplace", "amazon")


def test_exports_stream_in_pieces(
    catalogue: Catalogue, analyst_api: APIClient, monkeypatch
) -> None:
    from watcher.services import export

    # Small chunks instead of thousands of rows (COPY's on PostgreSQL, Python's elsewhere).
    monkeypatch.setattr(export, "CHUNK_ROWS", 4)
    monkeypatch.setattr(export, "COPY_CHUNK_ROWS", 4)
    response = analyst_api.get("/api/v1/prices/?format=csv")
    pieces = list(response.streaming_content)
    assert len(pieces) == 1 + 4  # the header, then 15 rows in chunks of 4
    assert Decimal(excel_rows(b"".join(pieces))[1][8].replace(",", ".")) > 0


HOSTILE_NAMES = [
    'He said "cheap"; really',
    "two\nlines",
    "windows\r\nline",
    "lone\rreturn",
    "=HYPERLINK(1)",
    "+7 900",
    "-5",
    "@sum",
    "\tindented",
    "\r=carriage",
    "",
    "  spaced  ",
    "comma, and ; both",
    'ends with quote"',
]


@pytest.mark.parametrize("language", ["ru", "en"])
def test_postgresql_and_python_write_the_same_csv_bytes(
    catalogue: Catalogue, monkeypatch, language: str
) -> None:
    """PostgreSQL formats the rows itself (COPY); other databases get them from Python. Both
    give the same bytes, whatever the cells hold, across chunk boundaries."""
    from django.db import connection
    from django.utils import translation

    from watcher.services import export

    assert connection.vendor == "postgresql"
    monkeypatch.setattr(export, "CHUNK_ROWS", 4)
    monkeypatch.setattr(export, "COPY_CHUNK_ROWS", 3)
    for night, name in zip((NIGHTS * 5)[: len(HOSTILE_NAMES)], HOSTILE_NAMES, strict=True):
        rival = CompetitorFactory(subscription=catalogue.lamp, competitor_sku="900009")
        Competitor.objects.filter(pk=rival.pk).update(name=name, competitor_sku=f"-{name}")
        observe(
            catalogue.lamp, rival, night, "0.50", old_price=None, spp_price=Decimal("-1.25"),
            in_stock=None, stock_quantity=0, rating=Decimal("5"), reviews_count=None,
            brand=name, hour=3,
        )  # fmt: skip
    # No brand, no price, out of stock, on another marketplace.
    bare = SubscriptionFactory(brand="", sku="300900", marketplace=Marketplace.YANDEX_MARKET)
    observe(bare, None, NIGHTS[0], None, in_stock=False)
    queryset = PriceHistory.objects.exclude(competitor=catalogue.rival_c)
    with translation.override(language):
        for dialect in export.DIALECTS:
            from_postgresql = b"".join(export.copy_csv(queryset, dialect))
            from_python = b"".join(export.python_csv(queryset, dialect))
            assert from_postgresql == from_python, dialect
            delimiter = ";" if dialect == export.EXCEL else ","
            rows = list(
                csv.reader(io.StringIO(from_python.decode(), newline=""), delimiter=delimiter)
            )
            assert len(rows) == queryset.count()
            assert all(len(row) == len(export.COLUMNS) for row in rows)
    # Line breaks inside cells survive as they were; rows end with CRLF.
    names = {row[7] for row in rows}
    assert {"two\nlines", "windows\r\nline", "lone\rreturn", 'He said "cheap"; really'} <= names
    # One row end each, and the CRLF inside the brand, the SKU and the name of one row.
    assert from_python.count(b"\r\n") == len(rows) + 3
