"""Importing the catalogue from a Russian Excel: encodings, separators, headers, plain errors."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from parser.types import Marketplace
from tests.factories import SubscriptionFactory
from watcher.models import Competitor, Subscription

pytestmark = pytest.mark.django_db

CSV, XLSX = "0", "1"  # the import form's format choices, in IMPORT_FORMATS order

CATALOGUE = [
    ["Бренд", "Маркетплейс", "Артикул", "Название товара", "Приоритет", "Активность"],
    ["Северный дом", "Вайлдберриз", "123456", "Плед «Уют»", "1,0", "да"],
    ["Северный дом", "Озон", "654321", "Подушка", "2", "нет"],
]


def upload(client: Client, model: str, name: str, data: bytes, fmt: str = CSV) -> str:
    """Preview, then confirm as an operator does; the HTML of the last page."""
    response = client.post(
        f"/admin/watcher/{model}/import/",
        {"format": fmt, "import_file": SimpleUploadedFile(name, data), "resource": "0"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    confirm = response.context.get("confirm_form")
    if confirm is None:
        return html
    response = client.post(
        f"/admin/watcher/{model}/process_import/",
        {**confirm.initial, "resource": "0"},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def csv_bytes(rows: list[list[str]], separator: str, encoding: str) -> bytes:
    """As Excel saves it: cells holding the separator (a decimal comma) are quoted."""
    out = io.StringIO()
    csv.writer(out, delimiter=separator, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


@pytest.mark.parametrize("encoding", ["cp1251", "utf-8", "utf-8-sig"])
@pytest.mark.parametrize("separator", [";", ","])
def test_it_imports_a_russian_csv_in_any_encoding_and_separator(
    operator: Client, encoding: str, separator: str
) -> None:
    upload(operator, "subscription", "каталог.csv", csv_bytes(CATALOGUE, separator, encoding))
    rows = Subscription.objects.order_by("sku").values_list(
        "brand", "marketplace", "sku", "title", "priority", "is_active"
    )
    assert list(rows) == [
        ("Северный дом", Marketplace.WILDBERRIES, "123456", "Плед «Уют»", 1, True),
        ("Северный дом", Marketplace.OZON, "654321", "Подушка", 2, False),
    ]


def test_it_imports_an_xlsx_with_numeric_cells(operator: Client) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(CATALOGUE[0])
    sheet.append(["Северный дом", "Wildberries", 123456, "Плед", 1.0, "да"])
    data = io.BytesIO()
    book.save(data)
    upload(operator, "subscription", "каталог.xlsx", data.getvalue(), fmt=XLSX)
    assert Subscription.objects.get().sku == "123456"


def test_competitors_import_with_russian_headers(operator: Client) -> None:
    SubscriptionFactory(marketplace=Marketplace.OZON, sku="654321")
    rows = [
        ["Маркетплейс", "Наш артикул", "Артикул конкурента", "Название", "Приоритет"],
        ["Ozon", "654321", "111222", "Соседи", "0"],
    ]
    upload(operator, "competitor", "конкуренты.csv", csv_bytes(rows, ";", "cp1251"))
    competitor = Competitor.objects.get()
    assert (competitor.subscription.sku, competitor.competitor_sku) == ("654321", "111222")


def test_bad_rows_are_explained_in_plain_words_and_nothing_is_imported(operator: Client) -> None:
    rows = [
        *CATALOGUE,
        ["Северный дом", "Алиэкспресс", "777", "", "0", "да"],
        ["Северный дом", "Озон", "ОЗ-12", "", "пять", "может быть"],
    ]
    html = upload(operator, "subscription", "каталог.csv", csv_bytes(rows, ";", "cp1251"))
    assert "Некоторые строки не удалось импортировать" in html
    assert "<td>4</td>" in html and "<td>5</td>" in html  # numbered as Excel shows them
    assert "Неизвестный маркетплейс «Алиэкспресс»" in html
    assert "«ОЗ-12» — не артикул." in html
    assert "<strong>Приоритет</strong>: Введите целое число." in html
    assert "Error" not in html.replace("ErrorList", "")  # no exception names
    assert "validation-error-count" not in html  # not behind a badge
    assert not Subscription.objects.exists()


def test_a_file_of_another_format_gets_advice_not_an_exception_name(operator: Client) -> None:
    html = upload(operator, "subscription", "каталог.xlsx", b"not a workbook", fmt=XLSX)
    assert "Сохраните его из Excel" in html
    assert "BadZipFile" not in html


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_template_round_trips(operator: Client, kind: str) -> None:
    response = operator.get(f"/admin/watcher/subscription/import/template.{kind}")
    assert response.status_code == 200
    data = response.content
    if kind == "csv":
        assert data.startswith("\ufeff".encode())
        assert data.decode("utf-8-sig").splitlines()[0].startswith("Бренд;Маркетплейс;Артикул")
    else:
        book = openpyxl.load_workbook(io.BytesIO(data))
        assert [c.value for c in book.worksheets[1]["A"]][1:] == [
            "Wildberries", "Ozon", "Яндекс Маркет"
        ]  # fmt: skip
    upload(operator, "subscription", f"template.{kind}", data, fmt=CSV if kind == "csv" else XLSX)
    assert Subscription.objects.count() == len(Marketplace.values)


def test_the_import_page_names_the_columns_and_values(operator: Client) -> None:
    html = operator.get("/admin/watcher/competitor/import/").content.decode()
    assert "Артикул конкурента" in html
    assert "template.xlsx" in html
    assert "Яндекс Маркет" in html
