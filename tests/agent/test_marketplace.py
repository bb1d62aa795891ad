"""The fake marketplace: what its pages show is what our parser reads and what /_truth says."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest

from parser.rules import parse_rules
from parser.types import ParseError, ParseErrorCode
from tests.agent.conftest import NIGHT
from watcher.agent.engine import site_url
from watcher.agent.text import visible_text
from watcher.demo.catalogue import DEMO
from watcher.demo.marketplace import DUMPING, product

PRODUCT_URLS = {
    "wildberries": "https://www.wildberries.ru/catalog/{sku}/detail.aspx",
    "ozon": "https://www.ozon.ru/product/{sku}/",
    "yandex_market": "https://market.yandex.ru/product/{sku}",
}
CATALOGUE = [(mp, sku) for _b, mp, sku, *_rest in DEMO] + [
    (mp, comp) for _b, mp, _s, _t, _p, comps in DEMO for comp, *_ in comps
]
GENERATED = [(mp, str(30_000_000 + i * 7919)) for mp in PRODUCT_URLS for i in range(40)]


# One client for the module: making one per request (its SSL context) costs more than the test.
HTTP = httpx.Client(trust_env=False)


def fetch(base: str, mp: str, sku: str) -> tuple[httpx.Response, dict[str, Any]]:
    sites = {name: f"{base}/{name}" for name in PRODUCT_URLS}
    url = site_url(PRODUCT_URLS[mp].format(sku=sku), mp, sites)
    page = HTTP.get(url)
    truth = HTTP.get(f"{base}/_truth/{mp}/{sku}").json()
    return page, truth


def as_number(value: Decimal | None) -> int | None:
    return None if value is None else int(value)


@pytest.mark.parametrize(("mp", "sku"), CATALOGUE + GENERATED)
def test_the_rules_parser_reads_what_truth_says(marketplace: str, mp: str, sku: str) -> None:
    page, truth = fetch(marketplace, mp, sku)
    text = visible_text(page.text)
    if not truth["found"]:
        assert page.status_code == 404
        with pytest.raises(ParseError) as error:
            parse_rules(text, mp, sku)
        assert error.value.code == ParseErrorCode.NOT_FOUND
        return
    assert page.status_code == 200
    card = parse_rules(text, mp, sku)
    assert {
        "title": card.title,
        "current_price": as_number(card.current_price),
        "old_price": as_number(card.old_price),
        "spp_price": as_number(card.spp_price),
        "in_stock": card.in_stock,
        "stock_quantity": card.stock_quantity,
        "reviews_count": card.reviews_count,
        "rating": str(card.rating).replace(".", ","),
    } == {
        key: truth[key]
        for key in ("title", "current_price", "old_price", "spp_price", "in_stock",
                    "stock_quantity", "reviews_count", "rating")
    }  # fmt: skip


def test_every_outcome_appears_in_the_demo_catalogue() -> None:
    products = [product(mp, sku, NIGHT) for mp, sku in CATALOGUE]
    assert any(not p.found for p in products)
    assert any(p.found and p.in_stock is False for p in products)
    ours = {sku: product(mp, sku, NIGHT) for _b, mp, sku, *_r in DEMO}
    for _b, mp, sku, _t, _p, competitors in DEMO:
        for comp, *_ in competitors:
            theirs = product(mp, comp, NIGHT)
            if comp in DUMPING:  # well below our price: a dumping alert to raise
                assert theirs.current_price < ours[sku].current_price * 0.9
            elif theirs.current_price is not None:
                assert theirs.current_price > ours[sku].current_price * 0.95


def test_prices_hold_all_night_and_change_from_night_to_night() -> None:
    skus = [sku for _mp, sku in GENERATED[:40]]
    tonight = [product("ozon", sku, NIGHT) for sku in skus]
    assert tonight == [product("ozon", sku, NIGHT) for sku in skus]
    tomorrow = [product("ozon", sku, NIGHT + dt.timedelta(days=1)) for sku in skus]
    changed = [a.current_price != b.current_price for a, b in zip(tonight, tomorrow, strict=True)]
    assert sum(changed) > len(skus) // 2


def test_captcha_and_403_modes_per_marketplace(marketplace: str) -> None:
    control = f"{marketplace}/_control"
    state = HTTP.post(control, json={"marketplace": "ozon", "mode": "captcha"})
    assert state.json()["modes"] == {"wildberries": "ok", "ozon": "captcha",
                                     "yandex_market": "ok"}  # fmt: skip
    page, _truth = fetch(marketplace, "ozon", "1093847562")
    with pytest.raises(ParseError) as error:
        parse_rules(visible_text(page.text), "ozon", "1093847562")
    assert error.value.code == ParseErrorCode.BLOCKED
    assert fetch(marketplace, "wildberries", "176308673")[0].status_code == 200
    HTTP.post(control, json={"marketplace": "*", "mode": "403"})
    assert fetch(marketplace, "yandex_market", "1782364512")[0].status_code == 403
    HTTP.post(control, json={"mode": "ok"})
    assert fetch(marketplace, "ozon", "1093847562")[0].status_code == 200
    hits = HTTP.get(control).json()["hits"]
    assert hits == {"wildberries": 1, "ozon": 2, "yandex_market": 1}


@pytest.mark.parametrize(
    "body",
    [[1], {"marketplace": "amazon"}, {"mode": "down"}, {"delay_ms": -1}, {"delay_ms": "5"}],
)
def test_bad_control_requests_are_refused_and_change_nothing(marketplace: str, body: Any) -> None:
    response = HTTP.post(f"{marketplace}/_control", json=body)
    assert response.status_code == 400 and response.json()["detail"]
    assert HTTP.get(f"{marketplace}/_control").json()["modes"] == dict.fromkeys(PRODUCT_URLS, "ok")
    broken = HTTP.post(f"{marketplace}/_control", content=b"{")
    assert broken.status_code == 400


def test_unknown_paths_are_404(marketplace: str) -> None:
    assert HTTP.get(f"{marketplace}/amazon/dp/1").status_code == 404
    assert HTTP.get(f"{marketplace}/_truth/amazon/1").status_code == 404
