"""Held-out samples (tests/parser/samples/extra_pages.jsonl) and the formats they brought in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from parser.rules import parse_rules
from parser.rules.scoring import load_samples, sample_sku, score_samples
from parser.types import ParseError

EXTRA = Path(__file__).resolve().parent / "samples" / "extra_pages.jsonl"


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[None]:
    """Overrides the suite-wide Redis flush for this module: the parser never touches Redis."""
    yield


def _samples(with_error: bool) -> list[dict]:
    return [s for s in load_samples([EXTRA]) if ("expected_error" in s) is with_error]


def test_it_reaches_98_percent_field_accuracy_on_the_extra_samples() -> None:
    score = score_samples(_samples(with_error=False), parse_rules)
    assert score.samples >= 30
    assert score.accuracy >= 0.98, [vars(m) for m in score.mismatches]


@pytest.mark.parametrize("sample", _samples(with_error=True), ids=lambda s: s["id"])
def test_it_reports_the_error_pages_of_the_extra_samples(sample: dict) -> None:
    with pytest.raises(ParseError) as err:
        parse_rules(sample["raw_text"], sample["marketplace"], sample_sku(sample))
    assert err.value.code == sample["expected_error"]


# --- formats ------------------------------------------------------------------------------


def test_it_reads_a_bare_wb_wallet_badge() -> None:
    text = "Brand / Джинсы прямые\n★ 4,9\nОценок: 123\n2 103 ₽\nWB Кошелёк\n2 190 ₽\n4 590 ₽\n"
    text += "В корзину"
    card = parse_rules(text, "wildberries", "1")
    assert (card.current_price, card.old_price, card.spp_price) == (2190, 4590, 2103)
    assert (card.rating, card.reviews_count) == (Decimal("4.9"), 123)
    assert card.title == "Джинсы прямые"


def test_it_reads_a_bare_pay_badge_and_a_price_without_pay() -> None:
    text = (
        "Смартфон Apple iPhone 15 128 ГБ\nРейтинг 4,9 из 5\n3 401 оценка\n71 990 ₽\nПэй\n74 490 ₽\n"
    )
    card = parse_rules(text + "вместо 89 990 ₽\nДобавить в корзину", "yandex_market", "1")
    assert (card.current_price, card.old_price, card.spp_price) == (74490, 89990, 71990)
    line = "35 990 ₽ с картой Пэй · 37 490 ₽ без Пэй"
    card = parse_rules(f"Кофемашина Magnifica S\n4,8 · 98 оценок\n{line}", "yandex_market", "1")
    assert (card.current_price, card.spp_price) == (37490, 35990)


@pytest.mark.parametrize(
    ("line", "count"),
    [
        ("4,6 · 1,2 тыс. оценок", 1200),
        ("4.9 • 21 тыс. отзывов", 21000),
        ("4,7 · 2 871 оценка", 2871),
    ],
)
def test_it_reads_review_counts_in_thousands(line: str, count: int) -> None:
    card = parse_rules(f"Монитор Acer Nitro 27\n{line}\n14 990 ₽\nВ корзину", "wildberries", "1")
    assert card.reviews_count == count


def test_it_finds_the_product_under_a_shelf_that_ends_at_the_breadcrumbs() -> None:
    text = (
        "Вы недавно смотрели\n1 299 ₽\nФонарик налобный\n4,5 · 312 оценок\n"
        "Главная\nСпорт\nTrek Planet / Палатка Alaska 3\n4,7\n641 оценка\n6 990 ₽\nВ корзину"
    )
    card = parse_rules(text, "wildberries", "1")
    assert (card.title, card.current_price, card.reviews_count) == ("Палатка Alaska 3", 6990, 641)


def test_it_finds_the_product_under_a_shelf_without_an_end_link() -> None:
    text = (
        "Ozon\nВам может понравиться\n1 499 ₽\nСушилка для белья\n4.6 • 1 201 отзыв\nВ корзину\n"
        "Дом и сад\nУтюги\nУтюг Tefal Express Steam\n4.8 • 6 410 отзывов\n3 590 ₽\n"
        "c Ozon Картой\n3 790 ₽\nДобавить в корзину"
    )
    card = parse_rules(text, "ozon", "1")
    assert card.title == "Утюг Tefal Express Steam"
    assert (card.current_price, card.spp_price, card.reviews_count) == (3790, 3590, 6410)


def test_it_reads_the_title_and_seller_of_the_ozon_sticky_header() -> None:
    sticky = {"name": "Крем для лица", "seller": {"name": "Магазин Леонова"}}
    states = {
        "webStickyProducts-726428-default-1": json.dumps(sticky, ensure_ascii=False),
        "webPrice-3121879-default-1": json.dumps({"price": "5 433 ₽", "isAvailable": True}),
    }
    card = parse_rules(json.dumps({"widgetStates": states}), "ozon", "1")
    assert (card.title, card.seller_name, card.current_price) == (
        "Крем для лица",
        "Магазин Леонова",
        5433,
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Ozon\nТакого товара нет\nНа главную", "not_found"),
        ("Почти готово...\nМы проверяем, что запросы отправляете вы, а не робот", "blocked"),
    ],
)
def test_it_reads_more_error_wordings(text: str, code: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_rules(text, "ozon", "1")
    assert err.value.code == code
