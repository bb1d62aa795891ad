"""Who sells the offer: ``seller_name`` / ``seller_id`` on each marketplace's formats.

Read only where the page or payload names the seller; ``None`` otherwise, never guessed.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from parser.rules import parse_rules
from tests.factories import PriceHistoryFactory, TaskFactory
from watcher.models import PriceHistory
from watcher.services import queues


def seller(raw: str, marketplace: str, sku: str = "") -> tuple[str | None, str | None]:
    card = parse_rules(raw, marketplace, sku)
    return card.seller_name, card.seller_id


# --- Wildberries ----------------------------------------------------------------------------


def test_wb_card_api_names_the_supplier_and_its_id() -> None:
    product = {
        "id": 253395502,
        "name": "Платье",
        "brand": "MODA TYT",
        "supplier": "ИП Петрова А. А.",
        "supplierId": 124410,
        "sizes": [{"price": {"basic": 359000, "product": 129900}, "stocks": [{"qty": 4}]}],
    }
    payload = json.dumps({"data": {"products": [product]}})
    assert seller(payload, "wildberries", "253395502") == ("ИП Петрова А. А.", "124410")


def test_wb_card_json_carries_only_the_supplier_id() -> None:
    card = {
        "imt_name": "Кофемолка",
        "nm_id": 67858518,
        "selling": {"brand_name": "Zetter", "supplier_id": 206198},
    }
    assert seller(json.dumps(card), "wildberries", "67858518") == (None, "206198")


def test_wb_product_page_html_seller_block() -> None:
    html = """<html><body><h1>Фитнес-браслет Xiaomi Mi Band 7</h1>
    <div class="price-block"><ins>3 034 ₽</ins><del>5 990 ₽</del></div>
    <button>Добавить в корзину</button>
    <section class="seller-info" aria-label="Информация о продавце">
      <a href="/seller/1051801" class="seller-info__title">
        <span class="address-rate-mini">4,9</span><span>40 478 оценок</span>
        <span class="seller-info__name"> Caerus </span>
      </a>
    </section></body></html>"""
    assert seller(html, "wildberries") == ("Caerus", "1051801")


def test_wb_page_text_with_a_seller_heading() -> None:
    text = "Плед флисовый\n4,8 · 120 оценок\n1 299 ₽\nВ корзину\nПродавец\nИП Иванов\n"
    assert seller(text, "wildberries") == ("ИП Иванов", None)


def test_wb_json_without_a_supplier_has_no_seller() -> None:
    product = {"id": 1, "name": "Плед", "sizes": [{"price": {"product": 129900}}]}
    assert seller(json.dumps({"products": [product]}), "wildberries", "1") == (None, None)


# --- Ozon -----------------------------------------------------------------------------------


def test_ozon_current_seller_widget() -> None:
    states = {
        "webPrice-2111817-default-1": json.dumps({"price": "1 245 ₽", "isAvailable": True}),
        "webCurrentSeller-735663-default-1": json.dumps(
            {"id": 636079, "name": "Adatto a tutti", "link": "/seller/adatto-a-tutti-636079/"}
        ),
    }
    assert seller(json.dumps({"widgetStates": states}), "ozon") == ("Adatto a tutti", "636079")


def test_ozon_sticky_products_seller_gives_the_id_from_its_link() -> None:
    sticky = {"name": "Крем", "seller": {"name": "Магазин Леонова", "link": "/seller/1179237/"}}
    states = {
        "webPrice-3121879-default-1": json.dumps({"price": "790 ₽"}),
        "webStickyProducts-726428-default-1": json.dumps(sticky),
    }
    assert seller(json.dumps({"widgetStates": states}), "ozon") == ("Магазин Леонова", "1179237")


def test_ozon_html_with_widget_states() -> None:
    state = json.dumps({"id": 22114, "name": "ООО ТВОЕ"}).replace('"', "&quot;")
    price = json.dumps({"price": "1 307 ₽"}).replace('"', "&quot;")
    html = (
        '<html><body><h1>Платье ТВОЕ</h1><div id="state-webPrice-1-default-1" '
        f'data-state="{price}"></div><div id="state-webCurrentSeller-735663-default-1" '
        f'data-state="{state}"></div></body></html>'
    )
    assert seller(html, "ozon") == ("ООО ТВОЕ", "22114")


def test_ozon_page_without_seller_widgets_has_no_seller() -> None:
    states = {"webPrice-3121879-default-1": json.dumps({"price": "790 ₽"})}
    assert seller(json.dumps({"widgetStates": states}), "ozon") == (None, None)


# --- Yandex Market --------------------------------------------------------------------------


def test_market_ld_json_offer_seller() -> None:
    ld = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": "Кофемашина DeLonghi",
        "offers": {
            "@type": "Offer",
            "price": "45990",
            "priceCurrency": "RUB",
            "seller": {"@type": "Organization", "name": "DeLonghi Official"},
        },
    }
    assert seller(json.dumps(ld), "yandex_market") == ("DeLonghi Official", None)


def test_market_delivery_line_names_the_shop() -> None:
    text = (
        "Видеокарта GIGABYTE GeForce GTX 1650\n4.6\n1 отзыв\n33 490 ₽\n"
        "Добавить в корзину\nДоставка продавца Фотосклад.ру\n"
    )
    assert seller(text, "yandex_market") == ("Фотосклад.ру", None)


def test_market_page_that_names_no_seller() -> None:
    text = "Видеокарта GIGABYTE GeForce GTX 1650\n4.6\n1 отзыв\n33 490 ₽\nДобавить в корзину\n"
    assert seller(text, "yandex_market") == (None, None)


# --- stored and shown -----------------------------------------------------------------------


def wb_payload(sku: str, supplier: dict[str, object]) -> str:
    product = {"id": int(sku), "name": "Плед", "sizes": [{"price": {"product": 129900}}]}
    return json.dumps({"data": {"products": [{**product, **supplier}]}})


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("supplier", "stored"),
    [
        ({"supplier": "ИП Петрова А. А.", "supplierId": 124410}, ("ИП Петрова А. А.", "124410")),
        ({"supplierId": 206198}, (None, "206198")),
        ({}, (None, None)),
    ],
)
def test_a_report_stores_the_seller_or_null(agent, supplier: dict, stored: tuple) -> None:
    task = TaskFactory()
    queues.push([(str(task.pk), task.marketplace, task.priority)])
    assert agent.client.get("/api/v1/watcher/tasks/next").status_code == 200
    response = agent.client.post(
        f"/api/v1/watcher/tasks/{task.pk}/report",
        {"raw_text": wb_payload(task.sku, supplier), "timing_ms": 900, "success": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    price = PriceHistory.objects.get(task=task)
    assert (price.seller_name, price.seller_id) == stored
    assert price.current_price == 1299


@pytest.mark.django_db
def test_the_price_history_admin_lists_and_searches_by_seller(admin_client: Client) -> None:
    PriceHistoryFactory(seller_name="Фотосклад.ру", seller_id="431782")
    PriceHistoryFactory(seller_name=None, seller_id=None)
    url = reverse("admin:watcher_pricehistory_changelist")
    page = admin_client.get(url).content.decode()
    assert "Фотосклад.ру" in page
    assert "Продавец" in page  # the column header, in Russian
    found = admin_client.get(url, {"q": "431782"})
    assert found.context["cl"].result_count == 1
    assert PriceHistory.objects.filter(seller_name__isnull=True).count() == 1
