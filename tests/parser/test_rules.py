"""The rules parser: one behaviour per test, no database, no Django settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from parser.rules import parse_rules
from parser.rules.scoring import load_samples, score_samples
from parser.types import ParseError, ParseErrorCode

EVAL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "eval"
NBSP, THIN, NARROW = "\u00a0", "\u2009", "\u202f"

WB_PAGE = """Wildberries
Каталог
Найти на Wildberries
Корзина
3
Главная
Дом
Посуда
Tefal
Сковорода антипригарная Unlimited 28 см
4,7 · 1 234 оценки
Купили более 5 000 раз
Артикул
147490057
2 799 ₽
с WB Кошельком
2 899 ₽
4 990 ₽
−42%
Осталось 3 шт.
Добавить в корзину
Купить сейчас
Продавец
ООО "Посуда Плюс"
Рейтинг продавца 4,8
Характеристики
Бренд\tTefal
Диаметр\t28 см
Описание
Сковорода для всех типов плит.
С этим товаром покупают
599 ₽ с WB Кошельком
649 ₽
1 299 ₽
Vileda / Губки для мытья посуды 10 шт
4,9 · 5 553 оценки
Осталось 1 шт.
Завтра
В корзину
"""


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[None]:
    """Overrides the suite-wide Redis flush for this module: the parser never touches Redis."""
    yield


def parse(text: str, marketplace: str = "wildberries", sku: str = "1") -> object:
    return parse_rules(text, marketplace, sku)


# --- Wildberries --------------------------------------------------------------------------


def test_it_reads_a_wildberries_card() -> None:
    card = parse_rules(WB_PAGE, "wildberries", "147490057")
    assert card.title == "Сковорода антипригарная Unlimited 28 см"
    assert card.current_price == Decimal("2899")
    assert card.old_price == Decimal("4990")
    assert card.rating == Decimal("4.7")
    assert card.reviews_count == 1234
    assert card.sales_count == 5000
    assert card.in_stock is True
    assert card.stock_quantity == 3
    assert card.card_attributes["Диаметр"] == "28 см"
    assert card.brand == "Tefal"
    assert card.seller_name == 'ООО "Посуда Плюс"'
    assert {"title", "current_price", "old_price", "spp_price", "rating"} <= card.found


def test_it_reads_wallet_price_on_wildberries() -> None:
    card = parse_rules(WB_PAGE, "wildberries", "147490057")
    assert card.spp_price == Decimal("2799")


def test_it_reads_wallet_price_inline_after_the_prices() -> None:
    text = (
        "Бренд\nНазвание товара длинное\n4,8 · 10 оценок\n"
        "49 ₽\n99 ₽\n47 ₽ с WB кошельком\nВ корзину"
    )
    card = parse(text)
    assert (card.current_price, card.old_price, card.spp_price) == (49, 99, 47)


def test_it_reads_three_prices_on_one_line_with_the_wallet_label_below() -> None:
    text = (
        "Xiaomi / Увлажнитель воздуха Humidifier S\n4,8 1 817 оценок 40 кв. м • белый\n"
        "4 507 ₽\n4 507 ₽\n4 599 ₽\n7 763 ₽\nВ избранное\nПохожие\nНайти поставщика\n"
        "4 507 ₽ 4 599 ₽ 7 763 ₽\nс WB Кошельком\nНа миллион\n"
    )
    card = parse(text)
    assert card.title == "Увлажнитель воздуха Humidifier S"
    assert card.brand == "Xiaomi"
    assert (card.spp_price, card.current_price, card.old_price) == (4507, 4599, 7763)
    assert card.reviews_count == 1817


def test_it_ignores_the_seller_analytics_extension_block() -> None:
    text = (
        "Бренд / Игровой монитор для ПК изогнутый\n4,8 1 299 оценок\n24 711 ₽\n34 000 ₽\n"
        "В корзину\nЗаказы за 30 дней\n537 шт.\nВыручка за 30 дней\n12 992 841 ₽.\n"
        "Цена: 24 711 ₽.\nОстаток: 83 шт. (на 1 складе)\nПодробная статистика\n"
    )
    card = parse(text)
    assert card.current_price == Decimal("24711")
    assert card.old_price == Decimal("34000")
    assert card.stock_quantity is None


def test_it_reads_last_item_as_a_stock_of_one() -> None:
    text = (
        "Бренд\nКолонка умная с Алисой\n4,4 · 11 954 оценки\n16 467 ₽\nВ корзину\nПоследний товар"
    )
    assert parse(text).stock_quantity == 1


def test_it_reads_low_stock_without_a_count_as_unknown() -> None:
    text = "Бренд\nЧай черный листовой 200 г\n4,5\n1 601 оценка\n301 ₽\n479 ₽\nОсталось мало"
    card = parse(text)
    assert card.stock_quantity is None
    assert card.in_stock is True


def test_it_reads_no_ratings_as_zero_reviews() -> None:
    text = "Бренд\nНоски мужские набор 10 пар\nНет оценок\nАртикул\n1\n459 ₽\nДобавить в корзину"
    card = parse(text)
    assert card.rating is None
    assert card.reviews_count == 0
    assert "reviews_count" in card.found


def test_it_reads_sold_out_page_without_price() -> None:
    text = (
        "Бренд\nКуртка утепленная мужская\nРейтинг 4,4\n9 390 оценок\nТовар закончился\n"
        "Сообщить о поступлении\nРекомендуем\n1 189 ₽\n2 239 ₽\nДругой / Патчи для глаз\n"
        "4,9\n73 оценки\nОсталось 2 шт.\nЧерез 2 дня\n"
    )
    card = parse(text)
    assert card.in_stock is False
    assert card.current_price is None
    assert card.stock_quantity is None
    assert card.reviews_count == 9390


def test_it_keeps_the_last_price_of_an_out_of_stock_card() -> None:
    text = (
        "Oral-B\nЗубная щетка Pro 3 3000\nРейтинг 4,5\n127 оценок\n"
        "4 999 ₽\n6 700 ₽\n−25%\nНет в наличии"
    )
    card = parse(text)
    assert (card.current_price, card.old_price, card.in_stock) == (4999, 6700, False)


def test_it_ignores_a_carousel_right_after_an_out_of_stock_notice() -> None:
    text = (
        "Конструктор LEGO Technic 42154\n4.6 • 12 отзывов\nЭтот товар закончился\n"
        "Сообщить о поступлении\nКакая-то подборка\n15 629 ₽\n36 519 ₽\nКуртка мужская\n"
    )
    card = parse(text, "ozon")
    assert card.in_stock is False
    assert card.current_price is None


def test_it_reads_a_wildberries_card_api_v1_response() -> None:
    payload = {
        "data": {
            "products": [
                {
                    "id": 11,
                    "name": "Другой товар",
                    "priceU": 100000,
                    "salePriceU": 50000,
                    "sizes": [],
                },
                {
                    "id": 129255630,
                    "name": "Электросамокат Kirin M4 Pro",
                    "brand": "Kugoo",
                    "supplier": "Kids Planet",
                    "priceU": 14499000,
                    "salePriceU": 5367550,
                    "reviewRating": 4.9,
                    "feedbacks": 50187,
                    "sizes": [{"stocks": [{"qty": 29}, {"qty": 85}]}, {"stocks": [{"qty": 1}]}],
                },
            ]
        }
    }
    card = parse(json.dumps(payload), sku="129255630")
    assert card.title == "Электросамокат Kirin M4 Pro"
    assert card.current_price == Decimal("53675.50")
    assert card.old_price == Decimal("144990")
    assert card.spp_price is None
    assert card.stock_quantity == 115
    assert card.in_stock is True
    assert (card.rating, card.reviews_count) == (Decimal("4.9"), 50187)
    assert (card.brand, card.seller_name) == ("Kugoo", "Kids Planet")


def test_it_reads_a_wildberries_card_api_v2_size_price() -> None:
    product = {
        "id": 238338245,
        "name": "Протеин сывороточный 900 г",
        "reviewRating": 0,
        "feedbacks": 0,
        "sizes": [
            {
                "price": {"basic": 349000, "product": 209099, "total": 209099},
                "stocks": [{"qty": 412}],
            }
        ],
    }
    card = parse(json.dumps({"data": {"products": [product]}}), sku="238338245")
    assert (card.current_price, card.old_price) == (Decimal("2090.99"), Decimal("3490"))
    assert card.rating is None
    assert card.reviews_count == 0


def test_it_reads_an_empty_wildberries_stock_as_out_of_stock() -> None:
    product = {"id": 5, "name": "Книга", "sizes": [{"stocks": []}], "totalQuantity": 0}
    card = parse(json.dumps({"data": {"products": [product]}}), sku="5")
    assert card.in_stock is False
    assert card.stock_quantity == 0
    assert card.current_price is None


def test_it_reports_a_sku_missing_from_a_multi_product_response_as_not_found() -> None:
    products = [{"id": 1, "name": "A", "sizes": []}, {"id": 2, "name": "B", "sizes": []}]
    with pytest.raises(ParseError) as err:
        parse(json.dumps({"data": {"products": products}}), sku="3")
    assert err.value.code == ParseErrorCode.NOT_FOUND


def test_it_reads_a_wildberries_html_fragment() -> None:
    html = (
        '<div><h1 class="product-page__title">Видеорегистратор Dash Cam A510</h1>'
        '<a class="product-review"><span>4,2</span><span>2&nbsp;218 оценок</span></a>'
        '<p class="price-block__wallet-wrap"><span>7&nbsp;760&nbsp;₽</span>'
        "<span>с WB Кошельком</span></p>"
        "<p><ins>8&nbsp;345&nbsp;₽</ins><del><span>12&nbsp;999&nbsp;₽</span></del></p>"
        "<p>Осталось 4 шт.</p>"
        "<table><tr><th>Угол обзора</th><td>140°</td></tr></table>"
        '<section class="goods-slider"><h2>Похожие товары</h2>'
        "<ins>95&nbsp;₽</ins><del>139&nbsp;₽</del></section></div>"
    )
    card = parse(html)
    assert card.title == "Видеорегистратор Dash Cam A510"
    assert (card.spp_price, card.current_price, card.old_price) == (7760, 8345, 12999)
    assert (card.rating, card.reviews_count, card.stock_quantity) == (Decimal("4.2"), 2218, 4)
    assert card.card_attributes["Угол обзора"] == "140°"


# --- Ozon ---------------------------------------------------------------------------------


def test_it_reads_ozon_card_price() -> None:
    text = (
        "Каталог\nLavazza\nКофе в зернах Lavazza Qualità Oro, 1 кг\n4,6 / 5\n2 921 отзыв\n"
        "Более 3 тыс. покупок\nАртикул: 2074420583\n1 798 ₽ c Ozon Картой\n"
        "1 872 ₽ без Ozon Карты\n2 600 ₽\nВ корзину\n"
    )
    card = parse(text, "ozon")
    assert (card.spp_price, card.current_price, card.old_price) == (1798, 1872, 2600)
    assert (card.rating, card.reviews_count, card.sales_count) == (Decimal("4.6"), 2921, 3000)


def test_it_reads_ozon_kopecks_and_roubles_written_out() -> None:
    text = "Кофе в зернах, 1 кг\n4,4 • 9 286 отзывов\n1 824,50 руб.\n5 999,00 руб.\nВ корзину"
    card = parse(text, "ozon")
    assert (card.current_price, card.old_price) == (Decimal("1824.50"), Decimal("5999"))


def test_it_reads_ozon_widget_states_with_json_string_values() -> None:
    states = {
        "webProductHeading-1-default-1": json.dumps({"title": "Зубная щетка Oral-B Pro 3"}),
        "webSingleProductScore-2-default-1": json.dumps({"text": "4.8 • 2 508 отзывов"}),
        "webPrice-3-default-1": json.dumps(
            {
                "isAvailable": True,
                "cardPrice": f"4{THIN}414{THIN}₽",
                "price": "4 949 ₽",
                "originalPrice": "5 999 ₽",
            }
        ),
        "webCurrentSeller-4-default-1": json.dumps({"name": "ИП Смирнова"}),
        "skuShelfGoods-5-default-1": json.dumps(
            {"items": [{"mainState": [{"atom": {"price": {"price": "1 ₽"}, "rating": 1.0}}]}]}
        ),
    }
    card = parse(json.dumps({"widgetStates": states}), "ozon")
    assert card.title == "Зубная щетка Oral-B Pro 3"
    assert (card.spp_price, card.current_price, card.old_price) == (4414, 4949, 5999)
    assert (card.rating, card.reviews_count) == (Decimal("4.8"), 2508)
    assert card.seller_name == "ИП Смирнова"
    assert card.in_stock is True


def test_it_reads_ozon_out_of_stock_widget() -> None:
    states = {
        "webProductHeading-1-default-1": '{"title": "Чай черный"}',
        "webPrice-2-default-1": '{"isAvailable": false, "price": "379 ₽"}',
        "webOutOfStock-3-default-1": '{"title": "Этот товар закончился"}',
    }
    card = parse(json.dumps({"widgetStates": states}), "ozon")
    assert (card.in_stock, card.current_price) == (False, Decimal("379"))


def test_it_reads_ozon_state_embedded_in_html() -> None:
    state = json.dumps({"price": "1 299 ₽", "originalPrice": "1 999 ₽", "cardPrice": "1 199 ₽"})
    html = (
        "<html><body><h1>Футболка оверсайз хлопок</h1>"
        f"<div id=\"state-webPrice-3121879-default-1\" data-state='{state}'></div>"
        "</body></html>"
    )
    card = parse(html, "ozon")
    assert card.title == "Футболка оверсайз хлопок"
    assert (card.spp_price, card.current_price, card.old_price) == (1199, 1299, 1999)


def test_it_reads_ozon_account_price_text() -> None:
    states = {
        "webPrice-1-default-1": {"price": "1 307 ₽", "originalPrice": "1 799 ₽"},
        "webOzonAccountPrice-2-default-1": {"priceText": "1 239 ₽  при оплате Ozon Картой"},
        "webReviewProductScore-3-default-1": {"totalScore": 4.8369565, "reviewsCount": 92},
    }
    card = parse(json.dumps({"widgetStates": states}), "ozon")
    assert card.spp_price == Decimal("1239")
    assert card.rating == Decimal("4.84")
    assert card.reviews_count == 92


# --- Yandex Market ------------------------------------------------------------------------


def test_it_reads_yandex_pay_price_labelled_before_the_amount() -> None:
    text = (
        "Шуруповерт аккумуляторный Makita DF333DWAE\nВ избранное\nСравнить\n4,7\n54 отзыва\n"
        "100+ покупок\nЦена с картой Яндекс Пэй\n11 867 ₽\nБез карты\n12 990 ₽\nВ корзину"
    )
    card = parse(text, "yandex_market")
    assert card.title == "Шуруповерт аккумуляторный Makita DF333DWAE"
    assert (card.spp_price, card.current_price, card.sales_count) == (11867, 12990, 100)


def test_it_reads_yandex_pay_price_with_the_label_after_it() -> None:
    text = (
        "Аккумулятор Baseus 20000 мАч\n4.2\n98 отзывов\n2 797 ₽\nс картой Пэй\n"
        "2 990 ₽ без карты\n3 799 ₽\n−21%\nДобавить в корзину\nОсталось: 4 шт."
    )
    card = parse(text, "yandex_market")
    assert (card.spp_price, card.current_price, card.old_price) == (2797, 2990, 3799)
    assert card.stock_quantity == 4


def test_it_reads_yandex_market_ld_json() -> None:
    payload = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": "Футболка оверсайз",
        "brand": {"@type": "Brand", "name": "Befree"},
        "offers": {"@type": "Offer", "price": "1349", "availability": "https://schema.org/InStock"},
        "aggregateRating": {"ratingValue": "4.2", "reviewCount": "545"},
    }
    card = parse(json.dumps(payload), "yandex_market")
    assert (card.title, card.current_price, card.in_stock) == ("Футболка оверсайз", 1349, True)
    assert (card.rating, card.reviews_count, card.brand) == (Decimal("4.2"), 545, "Befree")
    assert card.old_price is None


def test_it_reads_out_of_stock_from_ld_json() -> None:
    payload = [
        {"@type": "BreadcrumbList", "itemListElement": []},
        {
            "@type": "Product",
            "name": "Щетка",
            "offers": {"price": "5649", "availability": "https://schema.org/OutOfStock"},
        },
    ]
    card = parse(json.dumps(payload), "yandex_market")
    assert (card.in_stock, card.current_price) == (False, Decimal("5649"))


def test_it_reads_a_yandex_market_html_fragment_with_crossed_out_price() -> None:
    html = (
        '<h1 data-auto="productCardTitle">Конструктор LEGO Technic 42154</h1>'
        '<div><span data-auto="ratingValue">4,7</span>'
        "<a><span>1&#8239;861 отзыв</span></a></div>"
        "<div>Купили более 3&#8239;000 раз за 2 месяца</div>"
        '<div data-auto="price-block"><div><span>7&#8239;592&#8239;₽</span>'
        "<span>с картой Пэй</span></div><div><span>8&#8239;099&#8239;₽</span>"
        "<span> без карты</span></div><span><span>Вместо </span><s>9&#8239;390&#8239;₽</s></span>"
        "</div>"
        '<div data-auto="similar"><h2>Похожие товары</h2><div>51&#8239;179&#8239;₽</div></div>'
    )
    card = parse(html, "yandex_market")
    assert (card.spp_price, card.current_price, card.old_price) == (7592, 8099, 9390)
    assert (card.rating, card.reviews_count, card.sales_count) == (Decimal("4.7"), 1861, 3000)


def test_it_reads_glued_review_count_of_a_saved_page() -> None:
    text = "Видеокарта GIGABYTE GTX 1650\n4.6\n1 отзывХарактеристики1 вопрос\n33 490 ₽\nВ корзину"
    card = parse(text, "yandex_market")
    assert (card.rating, card.reviews_count, card.current_price) == (Decimal("4.6"), 1, 33490)


# --- number formats -----------------------------------------------------------------------


@pytest.mark.parametrize("sep", [NBSP, THIN, NARROW, " ", ""])
def test_it_reads_thousands_separators(sep: str) -> None:
    text = f"Бренд\nТелевизор 85 дюймов 8K\n4,7\n39 оценок\n1{sep}249{sep}990 ₽\nВ корзину"
    assert parse(text).current_price == Decimal("1249990")


def test_it_reads_rating_with_decimal_comma_and_big_review_count() -> None:
    text = f"Бренд\nПодгузники трусики 5 размер\n4,7\n153{NBSP}842 оценки\n2 859 ₽"
    card = parse(text)
    assert (card.rating, card.reviews_count) == (Decimal("4.7"), 153842)


def test_it_does_not_take_prices_from_recommendation_carousels() -> None:
    text = (
        "Бренд\nНаушники беспроводные Pro 2\n4,2\n20 оценок\nАртикул\n1\n"
        "Вам может понравиться\n999 ₽\n1 999 ₽\nДругое / Кабель\n4,9\n10 оценок\nОсталось 2 шт.\n"
        "Смотрите также\n500 ₽\n"
    )
    card = parse(text)
    assert card.current_price is None
    assert card.stock_quantity is None
    assert card.title == "Наушники беспроводные Pro 2"


def test_it_never_guesses_missing_fields() -> None:
    card = parse("Бренд\nКружка керамическая 350 мл\n4,9\n16 отзывов\n299 ₽\nВ корзину")
    assert card.old_price is None
    assert card.spp_price is None
    assert card.sales_count is None
    assert card.stock_quantity is None
    assert card.found == frozenset(
        {"title", "current_price", "in_stock", "rating", "reviews_count"}
    )


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Почти готово...\nПодтвердите, что вы не робот\nОбновить",
        "Вы не робот?\nЗапросы с вашего устройства похожи на автоматические.\nЯ не робот",
        "Доступ ограничен\nМы зафиксировали подозрительную активность с вашего IP",
        "<html><body><div class='captcha'>SmartCaptcha</div><p>Подтвердите, что вы не робот</p>",
    ],
)
def test_it_reports_a_captcha_page_as_blocked(text: str) -> None:
    with pytest.raises(ParseError) as err:
        parse(text)
    assert err.value.code == ParseErrorCode.BLOCKED


@pytest.mark.parametrize(
    "text",
    [
        "Wildberries\nТакой страницы нет\nПерейти на главную\nХиты продаж\n1 299 ₽\n"
        "Brand / Чайник\n4,8 · 120 оценок\nВ корзину",
        "Ozon\nТовар не найден\nНо у нас есть много других",
        "Маркет\nПо вашему запросу ничего не найдено\nПопробуйте изменить запрос",
    ],
)
def test_it_reports_a_soft_404_as_not_found(text: str) -> None:
    with pytest.raises(ParseError) as err:
        parse(text)
    assert err.value.code == ParseErrorCode.NOT_FOUND


@pytest.mark.parametrize("text", ["", "   \n\t ", "<html><body><script>x()</script></body></html>"])
def test_it_reports_an_empty_page_as_empty(text: str) -> None:
    with pytest.raises(ParseError) as err:
        parse(text)
    assert err.value.code == ParseErrorCode.EMPTY


@pytest.mark.parametrize("text", ["lorem ipsum dolor\n12345\nfoo", '{"foo": 1}', "[1, 2, 3]"])
def test_it_reports_garbage_as_unparseable(text: str) -> None:
    with pytest.raises(ParseError) as err:
        parse(text)
    assert err.value.code == ParseErrorCode.UNPARSEABLE


# --- corpora ------------------------------------------------------------------------------


def _corpus(name: str) -> Path:
    path = EVAL_DIR / name
    if not path.exists():
        pytest.skip(f"{path} is not available (the shared eval corpus lives next to the repo)")
    return path


def test_it_reaches_98_percent_field_accuracy_on_the_dev_corpus() -> None:
    score = score_samples(load_samples([_corpus("dev_pages.jsonl")]), parse_rules)
    assert score.accuracy >= 0.98, [vars(m) for m in score.mismatches]


def test_it_reads_real_captured_pages() -> None:
    score = score_samples(load_samples([_corpus("real_pages.jsonl")]), parse_rules)
    assert score.accuracy >= 0.95, [vars(m) for m in score.mismatches]
