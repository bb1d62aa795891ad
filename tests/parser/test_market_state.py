"""Yandex Market's embedded page state, the newer seller blocks and the sample files of issue 21.

The apiary state decomposes the ld+json price: on Market the ld+json offer price is the Yandex
Pay card price when there is one, the state says which price is which.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from parser.rules import parse_rules
from parser.rules.html import parse_html
from parser.rules.scoring import load_samples, sample_sku, score_samples

SAMPLES = Path(__file__).resolve().parent / "samples"
REAL = SAMPLES / "real_captures.jsonl"
SYNTHETIC = SAMPLES / "synthetic_variants.jsonl"


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[None]:
    """Overrides the suite-wide Redis flush for this module: the parser never touches Redis."""
    yield


def _ld(price: int, availability: str = "InStock") -> str:
    product = {
        "@type": "Product",
        "name": "Наушники hoco M97",
        "offers": {"@type": "Offer", "price": price, "availability": availability},
        "aggregateRating": {"ratingValue": 4.6, "ratingCount": 24},
    }
    return f'<script type="application/ld+json">{json.dumps(product, ensure_ascii=False)}</script>'


def _patch(collections: dict[str, Any], escape: bool = False) -> str:
    text = json.dumps({"collections": collections}, ensure_ascii=False)
    return f'<noframes data-apiary="patch">{html.escape(text) if escape else text}</noframes>'


CARD_PRICE = {
    "mainPrice": {"price": {"value": 180}, "type": "extraDiscount", "subtype": "ya-card"},
    "oldPrices": [
        {"price": {"value": 251}, "type": "regular"},
        {"price": {"value": 301}, "type": "withoutDiscount"},
    ],
}


def _page(*parts: str) -> str:
    return "<html><body>" + "".join(parts) + "</body></html>"


def test_the_card_price_of_the_state_is_the_spp_price_not_the_price() -> None:
    page = _page(
        _ld(180),
        _patch({"productCardMeta": {"77": {"title": "Наушники hoco M97"}}}),
        _patch({"price": {"77": CARD_PRICE}}),
        _patch({"shopInfo": {"77": {"name": '"HOCO"', "shopId": "93906795"}}}),
    )
    card = parse_rules(page, "yandex_market", "4425435376")
    assert (card.current_price, card.spp_price, card.old_price) == (251, 180, 301)
    assert (card.rating, card.reviews_count, card.in_stock) == (Decimal("4.6"), 24, True)
    assert (card.seller_name, card.seller_id) == ("HOCO", "93906795")


def test_a_price_without_a_card_price_replaces_the_ld_json_price() -> None:
    price = {
        "mainPrice": {"price": {"value": 12990}, "type": "regular"},
        "oldPrices": [{"price": {"value": 18990}, "type": "withoutDiscount"}],
    }
    card = parse_rules(_page(_ld(12490), _patch({"price": {"1": price}})), "yandex_market", "")
    assert (card.current_price, card.spp_price, card.old_price) == (12990, None, 18990)


def test_only_the_card_entity_is_read_when_carousels_bring_other_offers() -> None:
    other = {"mainPrice": {"price": {"value": 2990}}, "oldPrices": []}
    collections = {
        "productCardMeta": {"card": {"title": "Фен Dyson Supersonic"}},
        "price": {"shelf": other, "card": {"mainPrice": {"price": {"value": 45990}}}},
        "shopInfo": {"shelf": {"name": "Другой магазин", "shopId": "1"}},
    }
    card = parse_rules(_page(_ld(45990), _patch(collections)), "yandex_market", "")
    assert card.current_price == 45990
    # Two offers and no card entity of the shop: the card's seller is not known.
    assert (card.seller_name, card.seller_id) == (None, None)


def test_an_html_escaped_patch_and_a_sold_out_card() -> None:
    page = _page(_ld(180, "OutOfStock"), _patch({"price": {"1": CARD_PRICE}}, escape=True))
    card = parse_rules(page, "yandex_market", "")
    assert (card.current_price, card.spp_price, card.in_stock) == (251, 180, False)


def test_the_buy_option_shape() -> None:
    option = {
        "offerId": "uGdX3w9c5mASBYDfYQutVw",
        "price": {"value": 219},
        "basePrice": {"value": 390},
        "analytics": {"yaBankPrice": "199"},
        "supplierName": "Кабельщик",
    }
    card = parse_rules(_page(_ld(199), _patch({"buyOption": {"x": option}})), "yandex_market", "")
    assert (card.current_price, card.spp_price, card.old_price) == (219, 199, 390)
    assert card.seller_name == "Кабельщик"


def test_the_state_json_never_reaches_the_page_text() -> None:
    state = _patch({"offerCount": {"1": {"text": "3 предложения от 33 457 ₽"}}})
    page = _page("<h1>Видеокарта GTX 1650</h1><div>33 490 ₽</div>", state)
    assert "33 457" not in parse_html(page, "").text
    assert parse_rules(page, "yandex_market", "").current_price == 33490


def test_ozon_seller_cell_of_2025() -> None:
    seller = {
        "sellerCell": {
            "centerBlock": {"title": {"text": "Цифровой-Мир"}},
            "common": {"action": {"link": "https://www.ozon.ru/seller/tsifrovoy-mir-2444190/"}},
        }
    }
    states = {
        "webCurrentSeller-7772769-default-1": json.dumps(seller, ensure_ascii=False),
        "webPrice-3121879-default-1": json.dumps({"price": "1 631 ₽", "isAvailable": True}),
    }
    card = parse_rules(json.dumps({"widgetStates": states}), "ozon", "")
    assert (card.seller_name, card.seller_id) == ("Цифровой-Мир", "2444190")


@pytest.mark.parametrize(
    ("block", "prices"),
    [
        # Market 2024 with its visually hidden labels: card price, no-card price, struck price.
        (
            "Цена с картой Яндекс Пэй:302 ₽\n–6\u2009%\nбез: Вместо: 305\u2009₽ 322\u2009₽",
            (305, 322, 302),
        ),
        ("Цена\n22 490 ₽\nСкидка 18%\nЦена без скидки\n27 490 ₽", (22490, 27490, None)),
        # Ozon's card became "Ozon Банк" in 2025; 2026 says "с банками" / "с другими банками".
        ("1 468 ₽\nc Ozon Банком\n1 631 ₽\nбез Ozon Банка\n25 000 ₽", (1631, 25000, 1468)),
        ("1 468 ₽ с банками\n1 631 ₽ с другими банками\n25 000 ₽", (1631, 25000, 1468)),
        # The wallet caption after the whole block still names the lowest price.
        ("18 504 ₽\n19 072 ₽\n32 990 ₽\nс WB Кошельком", (19072, 32990, 18504)),
    ],
)
def test_price_block_wordings(block: str, prices: tuple[int, int, int | None]) -> None:
    card = parse_rules(f"Товар\n4,8\n120 оценок\n{block}\nВ корзину", "yandex_market", "")
    assert (card.current_price, card.old_price, card.spp_price) == prices


WB_TILES = (
    "98 ₽ с WB Кошельком\nБез бренда / универсальная ручка для сковороды 1 шт\n4,6 29 оценок\n"
    "17 декабря\n2 904 ₽ 7 309 ₽ −59% с WB Кошельком\nМИСТРАЛЬ. / Ботинки рабочие зимние\n"
    "4,7 24 420 оценок\nПослезавтра\n"
)
WB_PRODUCT = (
    "Стельки / Стельки для зимней обуви меховые\n4,9 14 204 оценки Цвет: серый\n"
    "444 ₽ 454 ₽ 2 777 ₽\nВ корзину\nК предыдущей странице\nГлавная\nОбувь\n"
    "444 ₽ 454 ₽ 2 777 ₽\nс WB Кошельком\n"
    "2 ₽\n4,9\n14 204 оценки\nСтельки\nСтельки для зимней обуви меховые\n4,9 14 204 оценки"
)


def test_a_saved_wb_page_starts_at_its_sticky_line_not_at_the_main_pages_tiles() -> None:
    card = parse_rules(WB_TILES + WB_PRODUCT, "wildberries", "")
    assert card.title == "Стельки для зимней обуви меховые"
    assert (card.current_price, card.old_price, card.spp_price) == (454, 2777, 444)
    assert (card.rating, card.reviews_count) == (Decimal("4.9"), 14204)


def test_wb_html_tiles_are_not_the_product_and_the_price_block_names_its_prices() -> None:
    tile = (
        '<article class="main-page__product product-card j-product-item"><ins class="price__lower-'
        'price wallet-price">98 ₽</ins><span>с WB Кошельком</span><h2>Без бренда / ручка</h2>'
        "<p>4,6 29 оценок</p></article>"
    )
    block = (
        '<h1>Стельки для зимней обуви</h1><p>4,9</p><p>14 204 оценки</p><p class="price-block__'
        'price-wrap"><span class="price-block__wallet-price red-price">444 ₽</span><ins class='
        '"price-block__final-price wallet">454 ₽</ins><del class="price-block__old-price">'
        "<span>2 777 ₽</span></del></p>"
    )
    card = parse_rules(_page(tile, block), "wildberries", "")
    assert (card.current_price, card.old_price, card.spp_price) == (454, 2777, 444)
    assert (card.rating, card.reviews_count) == (Decimal("4.9"), 14204)


@pytest.mark.parametrize(
    "rating",
    [
        "Оценка 4,8 из 5\n3 817 оценок",
        "4,8 на основе 3 817 оценок",
        "★★★★★ 4,8\n3 817 отзывов",
    ],
)
def test_rating_wordings(rating: str) -> None:
    text = f"Смартфон Apple iPhone 13 128GB\n{rating}\n69 990 ₽\n75 990 ₽\nВ корзину"
    card = parse_rules(text, "yandex_market", "")
    assert (card.rating, card.reviews_count) == (Decimal("4.8"), 3817)
    assert card.title == "Смартфон Apple iPhone 13 128GB"


def test_a_reviews_grade_is_not_the_products_rating() -> None:
    text = "Плед флисовый\nНет отзывов\n1 299 ₽\nВ корзину\nОтзывы\nОльга\nОценка: 5\nМягкий"
    card = parse_rules(text, "wildberries", "")
    assert (card.rating, card.reviews_count) == (None, 0)


@pytest.mark.parametrize("path", [REAL, SYNTHETIC], ids=lambda p: p.name)
def test_every_field_of_the_sample_files(path: Path) -> None:
    samples = list(load_samples([path]))
    score = score_samples(samples, parse_rules)
    assert score.samples >= 3
    assert score.accuracy == 1.0, [vars(m) for m in score.mismatches]


@pytest.mark.parametrize(
    "sample",
    [s for s in load_samples([REAL, SYNTHETIC]) if "expected_seller" in s],
    ids=lambda s: s["id"],
)
def test_the_seller_of_the_sample_files(sample: dict[str, Any]) -> None:
    card = parse_rules(sample["raw_text"], sample["marketplace"], sample_sku(sample))
    expected = sample["expected_seller"]
    assert (card.seller_name, card.seller_id) == (expected["seller_name"], expected["seller_id"])


def test_the_real_captures_cover_every_marketplace_and_name_their_source() -> None:
    samples = list(load_samples([REAL]))
    assert {s["marketplace"] for s in samples} == {"wildberries", "ozon", "yandex_market"}
    for sample in samples:
        assert " @ " in sample["source"], sample["id"]  # repo path @ commit


def test_microdata_of_the_product_scope() -> None:
    shelf = (
        '<div class="recommendations"><div itemscope itemtype="http://schema.org/Product">'
        '<meta itemprop="price" content="2990"></div></div>'
    )
    product = (
        '<div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">Фен Dyson HD07'
        '</h1><div itemprop="aggregateRating"><meta itemprop="ratingValue" content="4,9">'
        '<meta itemprop="reviewCount" content="310"></div><div itemprop="offers">'
        '<meta itemprop="price" content="45990"><link itemprop="availability" '
        'href="https://schema.org/OutOfStock"></div></div>'
    )
    card = parse_rules(_page(shelf, product), "yandex_market", "")
    assert (card.title, card.current_price, card.in_stock) == ("Фен Dyson HD07", 45990, False)
    assert (card.rating, card.reviews_count) == (Decimal("4.9"), 310)
