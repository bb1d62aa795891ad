"""Structure of the real sites that the rules must read (issue 21), one behaviour per test."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from parser.rules import parse_rules
from parser.types import ParseError, ParseErrorCode

MARKET_PAGE = """Маркет
Каталог
Электроника / Смартфоны
Смартфон Apple iPhone 13 128 ГБ, черный
4,9
(512 оценок)
71 990 ₽
с картой Пэй
75 790 ₽
без карты
−25%
99 990 ₽
Добавить в корзину
"""


def test_market_review_count_in_brackets() -> None:
    card = parse_rules(MARKET_PAGE, "yandex_market", "")
    assert card.title == "Смартфон Apple iPhone 13 128 ГБ, черный"
    assert (card.rating, card.reviews_count) == (Decimal("4.9"), 512)
    assert (card.current_price, card.spp_price, card.old_price) == (75790, 71990, 99990)


@pytest.mark.parametrize("where", ["top", "bottom"])
def test_the_word_captcha_alone_is_not_a_captcha_page(where: str) -> None:
    # Market preloads SmartCaptcha on healthy pages; page chrome may name it.
    chrome = "SmartCaptcha by Yandex Cloud\n"
    text = chrome + MARKET_PAGE if where == "top" else MARKET_PAGE + chrome
    assert parse_rules(text, "yandex_market", "").current_price == 75790


@pytest.mark.parametrize(
    "text",
    [
        "Подтвердите, что запросы отправляли вы, а не робот\nНам очень жаль, но запросы с "
        "вашего устройства похожи на автоматические.\nЯ не робот\nSmartCaptcha by Yandex Cloud",
        '<html><body><form action="/checkcaptcha?key=1"><span>Нажмите, чтобы продолжить</span>'
        '</form><a href="https://market.yandex.ru/showcaptcha?retpath=x">↻</a></body></html>',
    ],
)
def test_the_challenge_itself_is_a_captcha_page(text: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_rules(text, "yandex_market", "")
    assert caught.value.code == ParseErrorCode.BLOCKED


@pytest.mark.parametrize(
    "block",
    [
        "30 141 ₽\nс промокодом\n33 490 ₽",
        "30 141 ₽ по промокоду\n33 490 ₽",
        "33 490 ₽\nЕщё −10% по промокоду",
    ],
)
def test_a_promo_code_price_is_not_the_price(block: str) -> None:
    text = f"Видеокарта GIGABYTE GeForce GTX 1650\n4.6\n12 отзывов\n{block}\nДобавить в корзину\n"
    card = parse_rules(text, "yandex_market", "")
    assert card.current_price == 33490
    assert card.old_price is None


def test_a_rating_with_a_trailing_star() -> None:
    text = "Кофемашина DeLonghi Magnifica S\n4,8 ★\n1 024 отзыва\n45 990 ₽\nВ корзину\n"
    card = parse_rules(text, "yandex_market", "")
    assert (card.rating, card.reviews_count) == (Decimal("4.8"), 1024)


def test_ozon_widget_names_match_before_the_first_dash() -> None:
    # webPriceDecreasedCompact is another widget; its price is not the product's.
    states = {
        "webPriceDecreasedCompact-1-default-1": json.dumps({"price": "10 ₽"}),
        "webPrice-3121879-default-1": json.dumps(
            {"price": "2 949 ₽", "cardPrice": "2 790 ₽", "originalPrice": "4 290 ₽"}
        ),
    }
    card = parse_rules(json.dumps({"widgetStates": states}), "ozon", "")
    assert (card.current_price, card.spp_price, card.old_price) == (2949, 2790, 4290)


def test_ozon_card_price_from_the_ozon_account_widget() -> None:
    states = {
        "webPrice-3121879-default-1": json.dumps({"price": "1 307 ₽", "originalPrice": "1 799 ₽"}),
        "webOzonAccountPrice-2136009-default-1": json.dumps(
            {"priceText": "1 239 ₽ при оплате Ozon Картой"}
        ),
        "webReviewProductScore-3180592-default-1": json.dumps(
            {"totalScore": 4.8369565, "reviewsCount": 92}
        ),
    }
    card = parse_rules(json.dumps({"widgetStates": states}), "ozon", "")
    assert (card.current_price, card.spp_price, card.old_price) == (1307, 1239, 1799)
    assert (card.rating, card.reviews_count) == (Decimal("4.84"), 92)


def test_wb_v4_sizes_prices_in_kopecks_win_over_null_legacy_fields() -> None:
    product = {
        "id": 67858518,
        "name": "Кофемолка",
        "priceU": None,
        "salePriceU": None,
        "sizes": [
            {"price": {"basic": 359000, "product": 129900}, "stocks": [{"qty": 3}, {"qty": 2}]}
        ],
        "reviewRating": 4.9,
        "feedbacks": 65754,
    }
    card = parse_rules(json.dumps({"products": [product]}), "wildberries", "67858518")
    assert (card.current_price, card.old_price, card.spp_price) == (1299, 3590, None)
    assert (card.stock_quantity, card.in_stock) == (5, True)


def test_market_separator_lines_and_a_labelled_price_without_the_card() -> None:
    text = (
        "Смартфон Apple iPhone 14 128 ГБ, полночный\n4,9\n·\n2 419 отзывов\n·\n"
        "Купили более 10 тыс. раз\nЦена с картой Яндекс Пэй\n69 990 ₽\n−7%\n74 990 ₽\n"
        "Цена без карты 71 990 ₽\nДобавить в корзину\n"
    )
    card = parse_rules(text, "yandex_market", "")
    assert (card.rating, card.reviews_count, card.sales_count) == (Decimal("4.9"), 2419, 10000)
    assert (card.current_price, card.spp_price, card.old_price) == (71990, 69990, 74990)


def test_a_bare_price_label_and_an_old_price_label() -> None:
    text = (
        "Смартфон Apple iPhone 14 128 ГБ\nРейтинг: 4.9 из 5\n2 419 отзывов\nЦена 71 990 ₽\n"
        "Старая цена 74 990 ₽\nВ корзину\n"
    )
    card = parse_rules(text, "yandex_market", "")
    assert (card.current_price, card.old_price, card.spp_price) == (71990, 74990, None)


def test_ozon_closing_no_card_label_keeps_the_pair() -> None:
    text = (
        "Кофемашина DeLonghi Magnifica S\n4.9 • 1 234 отзыва\n45 990 ₽\nc Ozon Картой\n"
        "47 990 ₽\n61 990 ₽\nбез Ozon Карты\nДобавить в корзину\n"
    )
    card = parse_rules(text, "ozon", "")
    assert (card.current_price, card.old_price, card.spp_price) == (47990, 61990, 45990)


def test_wb_price_block_without_its_wallet_caption_reads_wallet_price_old() -> None:
    # The caption is an icon in some layouts; the order is wallet price, price, crossed-out.
    text = "Xiaomi / Увлажнитель Humidifier S\n4,8 1 817 оценок\n4 507 ₽\n4 599 ₽\n7 763 ₽\n"
    card = parse_rules(text + "В корзину\n", "wildberries", "")
    assert (card.spp_price, card.current_price, card.old_price) == (4507, 4599, 7763)
    two = parse_rules(text.replace("4 507 ₽\n", "") + "В корзину\n", "wildberries", "")
    assert (two.spp_price, two.current_price, two.old_price) == (None, 4599, 7763)


# WB's mobile product layout: the gallery counter, option chips and a reviews block come before
# the header, which repeats the rating under brand and name.
WB_MOBILE = """Похожие
1/5
2 990 ₽ 3 190 ₽ 5 000 ₽
с WB Кошельком
XL
4,7
312 оценок
спросить
Nike
Кроссовки мужские Air Zoom
4,7 312 оценок
В корзину
"""


def test_wb_title_sits_under_the_mobile_reviews_block() -> None:
    card = parse_rules(WB_MOBILE, "wildberries", "1")
    assert card.title == "Кроссовки мужские Air Zoom"
    assert (card.rating, card.reviews_count) == (Decimal("4.7"), 312)
    assert (card.current_price, card.old_price, card.spp_price) == (3190, 5000, 2990)


def test_the_gallery_slide_counter_is_not_a_rating() -> None:
    text = "Похожие\n1/5\nНет в наличии\n4,6\n1 024 оценки\nспросить\n"
    text += "Xiaomi\nФитнес-браслет Mi Band 7\n"
    card = parse_rules(text, "wildberries", "1")
    assert (card.rating, card.reviews_count) == (Decimal("4.6"), 1024)
    assert card.in_stock is False and card.current_price is None


def test_a_sold_out_notice_or_an_option_chip_is_not_the_title() -> None:
    # The notice and the chip sit right above the rating, where the title usually is.
    text = 'Xiaomi / Фитнес-браслет Mi Band 7\nНет в наличии\n1.6"\n4,6 · 1 024 оценки\n'
    card = parse_rules(text, "wildberries", "1")
    assert card.title == "Фитнес-браслет Mi Band 7"
    assert card.in_stock is False


def test_wb_whole_rating_next_to_its_count_wins_over_the_sellers_rating() -> None:
    # WB prints a 5.0 rating as "5"; the seller block below carries its own "4,9 / 618 оценок".
    text = (
        "Смартфоны\nXiaomi\n59 605 ₽ 65 500 ₽\nчерный • 512 ГБ\n5\n14 оценок\n41\nвопрос\n"
        "Xiaomi\nСмартфон 13T Pro 12/512Gb, Черный\n5 14 оценок\nДобавить в корзину\n"
        "iStoria\n4,9\n618 оценок\n"
    )
    card = parse_rules(text, "wildberries", "1")
    assert (card.rating, card.reviews_count) == (Decimal("5"), 14)
    assert card.title == "Смартфон 13T Pro 12/512Gb, Черный"
    assert (card.current_price, card.old_price, card.spp_price) == (59605, 65500, None)


@pytest.mark.parametrize("line", ["1 299 оценок", "3", "2 (41)"])
def test_a_bare_whole_number_or_a_count_line_is_no_rating(line: str) -> None:
    # Only a whole number followed by a count of ratings is one; a count line is not.
    text = f"Xiaomi / Игровой монитор Redmi X27G\n{line}\n12 008 ₽\nВ корзину\n"
    card = parse_rules(text, "wildberries", "1")
    assert card.rating is None
