"""Structured payloads: Wildberries card API JSON, Ozon ``widgetStates``, schema.org ld+json.

Every reader returns a dict holding only the fields the payload actually carries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from parser.rules import markers as M
from parser.rules.text import (
    count_value,
    kopecks,
    money,
    normalise,
    rating_value,
    to_int,
)
from parser.types import ParseError, ParseErrorCode

Fields = dict[str, Any]

_OZON_WIDGET = re.compile(r"^[a-z][A-Za-z0-9]+-\d+-[\w-]+$")
_OZON_SCORE = re.compile(r"([0-5](?:[.,]\d{1,2})?)\s*[•·/|]?\s*(?:из 5\s*)?(?:[•·]\s*)?([\d ]+)?")
_OZON_REVIEWS = re.compile(r"(\d{1,3}(?: \d{3})+|\d+)\s*(?:отзыв|оцен)", re.IGNORECASE)
_AVAILABILITY_OUT = ("outofstock", "soldout", "discontinued")


def load_json(text: str) -> Any | None:
    """The decoded JSON document, or ``None`` if the text is not one."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None
    except RecursionError:
        # The C decoder stops at the interpreter's recursion limit: a hostile or broken payload.
        raise ParseError(ParseErrorCode.UNPARSEABLE, "the JSON is nested too deeply") from None


def _walk(node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > 8:
        return
    if isinstance(node, dict):
        yield node
        for value in node.values():
            if isinstance(value, dict | list):
                yield from _walk(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                yield from _walk(item, depth + 1)


def _state(value: Any) -> dict[str, Any]:
    """An Ozon widget state: a JSON string or an already decoded object."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value[:1] == "{":
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return {}


# --- sellers ------------------------------------------------------------------------------

# Seller pages: ozon.ru/seller/<slug>-<id>/ or /seller/<id>/, market.yandex.ru/business--<slug>/<id>
# or /shop--<slug>/<id>, wildberries.ru/seller/<id>.
_SELLER_LINK = re.compile(r"/(?:seller|business--[^/]*|shop--[^/]*)/(?:[^/?#]*-)?(\d+)(?:[/?#]|$)")
_MAX_SELLER_NAME = 200


def seller_id_value(value: Any) -> str | None:
    """A marketplace's seller id: a positive integer or a string of digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 20:
        return value.strip()
    return None


def add_seller(out: Fields, name: Any, ident: Any = None, link: Any = None) -> None:
    """Fill ``seller_name`` / ``seller_id`` from what a payload says, unless already known."""
    if "seller_name" not in out and isinstance(name, str):
        name = " ".join(name.split())
        if name and len(name) <= _MAX_SELLER_NAME:
            out["seller_name"] = name
    if "seller_id" not in out:
        found = seller_id_value(ident)
        if found is None and isinstance(link, str):
            m = _SELLER_LINK.search(link)
            found = m.group(1) if m else None
        if found is not None:
            out["seller_id"] = found


# --- Ozon ---------------------------------------------------------------------------------


def ozon_widget_states(doc: Any) -> dict[str, Any] | None:
    """The ``widgetStates`` mapping of an Ozon page/API payload, if this is one."""
    if not isinstance(doc, dict):
        return None
    states = doc.get("widgetStates")
    if isinstance(states, dict):
        return states
    if any(_OZON_WIDGET.match(key) and key.startswith("web") for key in doc):
        return doc
    return None


def parse_ozon_states(states: dict[str, Any], doc: dict[str, Any] | None = None) -> Fields:
    widgets: dict[str, dict[str, Any]] = {}
    for key, value in states.items():
        name = key.split("-", 1)[0]
        if name in widgets or not name.startswith("web"):
            continue
        widgets[name] = _state(value)
    out: Fields = {}
    heading = widgets.get("webProductHeading", {})
    # The sticky header repeats the product's name and seller (some page versions carry no
    # webProductHeading at all).
    sticky = widgets.get("webStickyProducts", {})
    # A sold-out card has no webPrice: its webOutOfStock names the product, the last price and
    # the seller.
    sold_out = widgets.get("webOutOfStock", {})
    for title in (heading.get("title"), sticky.get("name"), sold_out.get("skuName")):
        if isinstance(title, str) and title.strip():
            out["title"] = title.strip()
            break
    price = widgets.get("webPrice", {})
    current = money(price.get("price"))
    old = money(price.get("originalPrice"))
    card = money(price.get("cardPrice"))
    sale = widgets.get("webSale", {})
    offers = sale.get("offers") if isinstance(sale.get("offers"), list) else []
    selected = next(
        (o for o in offers if isinstance(o, dict) and o.get("isSelected")),
        offers[0] if offers else {},
    )
    if current is None and isinstance(selected, dict):
        current = money(selected.get("price"))
        old = old or money(selected.get("originalPrice"))
    if current is None:
        current = money(sold_out.get("price"))
    if card is None:
        account = widgets.get("webOzonAccountPrice", {})
        text = account.get("priceText")
        if isinstance(text, str) and M.WALLET_LABEL.search(text):
            card = money(text)
    if current is not None:
        out["current_price"] = current
        if old is not None and old > current:
            out["old_price"] = old
        if card is not None and card != current:
            out["spp_price"] = card
    available = price.get("isAvailable")
    if "webOutOfStock" in widgets or available is False:
        out["in_stock"] = False
    elif available is True or current is not None or "webAddToCart" in widgets:
        out["in_stock"] = True
    _ozon_score(widgets, out)
    sticky_seller = sticky.get("seller")
    add_seller(out, sold_out.get("sellerName"), None, sold_out.get("sellerLink"))
    for seller in (widgets.get("webCurrentSeller"), sticky_seller):
        if isinstance(seller, dict):
            add_seller(out, seller.get("name"), seller.get("id"), seller.get("link"))
            _ozon_seller_cell(seller, out)
    brand = widgets.get("webBrand", {}).get("name")
    if not brand and doc is not None:
        tracking = _state(doc.get("layoutTrackingInfo"))
        brand = tracking.get("brandName")
    if isinstance(brand, str) and brand.strip():
        out["brand"] = brand.strip()
    attrs = _ozon_characteristics(widgets.get("webCharacteristics", {}))
    if attrs:
        out["card_attributes"] = attrs
    if doc is not None:
        _ozon_seo(doc, out)
    return out


def _ozon_seller_cell(seller: dict[str, Any], out: Fields) -> None:
    """The 2025+ seller widget: a cell whose title is the shop's name and whose action links
    to ozon.ru/seller/<slug>-<id>/."""
    cell = seller.get("sellerCell")
    if not isinstance(cell, dict):
        return
    title = _dig(cell, "centerBlock", "title", "text")
    link = _dig(cell, "common", "action", "link")
    add_seller(out, title, None, link)


def _dig(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _ozon_seo(doc: dict[str, Any], out: Fields) -> None:
    """Fill what the widgets leave out from ``seo.script``: the page's ld+json Product as a
    string (e.g. the rating when no review widget was rendered)."""
    seo = doc.get("seo")
    scripts = seo.get("script") if isinstance(seo, dict) else None
    if not isinstance(scripts, list):
        return
    for script in scripts:
        text = script.get("innerHTML") if isinstance(script, dict) else None
        data = _state(text)
        # Some page versions leave out "@type": a bare object with offers or a rating.
        products = ld_products(data) or (
            [data] if {"offers", "aggregateRating"} & set(data) else []
        )
        if not products:
            continue
        fields = parse_ld_product(products[0])
        if "current_price" in out:  # the widgets' prices and stock are the page's
            for key in ("current_price", "in_stock"):
                fields.pop(key, None)
        for key, value in fields.items():
            if key not in out and value is not None:
                out[key] = value
        return


def _ozon_score(widgets: dict[str, dict[str, Any]], out: Fields) -> None:
    review = widgets.get("webReviewProductScore")
    if review:
        score = review.get("totalScore") or review.get("score")
        count = count_value(review.get("reviewsCount"))
        if count is not None:
            out["reviews_count"] = count
        if score is not None:
            out["rating"] = rating_value(score)
        elif count == 0:
            out["rating"] = None
        return
    single = widgets.get("webSingleProductScore", {})
    text = single.get("text")
    if isinstance(text, str):
        text = normalise(text)
        if M.NO_REVIEWS.match(text):
            out["reviews_count"] = 0
            return
        m = _OZON_SCORE.match(text.strip())
        if m:
            out["rating"] = rating_value(m.group(1))
        rc = _OZON_REVIEWS.search(text)
        if rc:
            out["reviews_count"] = to_int(rc.group(1))


def _ozon_characteristics(widget: dict[str, Any]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    groups = widget.get("characteristics")
    if not isinstance(groups, list):
        return attrs
    for group in groups:
        if not isinstance(group, dict):
            continue
        for item in (group.get("short") or []) + (group.get("long") or []):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue
            values = [v.get("text") for v in item.get("values") or [] if isinstance(v, dict)]
            text = ", ".join(v for v in values if isinstance(v, str))
            if text:
                attrs.setdefault(item["name"], text)
    return attrs


# --- Wildberries --------------------------------------------------------------------------


def wb_products(doc: Any) -> list[dict[str, Any]]:
    """Product objects of a Wildberries card API response (or a bare product)."""
    found: list[dict[str, Any]] = []
    for node in _walk(doc):
        priced = "sizes" in node or "salePriceU" in node or "priceU" in node
        if ("id" in node and priced) or ("nm_id" in node and "imt_name" in node):
            found.append(node)
    return found


def pick_wb_product(products: list[dict[str, Any]], sku: str) -> dict[str, Any]:
    sku = sku.strip()
    for product in products:
        if sku and str(product.get("id", product.get("nm_id"))) == sku:
            return product
    if len(products) == 1 or not sku:
        return products[0]
    raise ParseError(ParseErrorCode.NOT_FOUND, f"product {sku} is not in the response")


def parse_wb_product(product: dict[str, Any]) -> Fields:
    out: Fields = {}
    name = product.get("name") or product.get("imt_name")
    if isinstance(name, str) and name.strip():
        out["title"] = name.strip()
    brand = product.get("brand")
    if isinstance(brand, str) and brand.strip():
        out["brand"] = brand.strip()
    # card.json (basket hosts) names the seller only by id, under "selling".
    selling = product.get("selling")
    selling = selling if isinstance(selling, dict) else {}
    if "brand" not in out and isinstance(selling.get("brand_name"), str):
        out["brand"] = selling["brand_name"]
    add_seller(out, product.get("supplier"), product.get("supplierId", selling.get("supplier_id")))
    sizes = [s for s in product.get("sizes") or [] if isinstance(s, dict)]
    quantity = _wb_quantity(product, sizes)
    current, old = _wb_prices(product, sizes)
    if current is not None:
        out["current_price"] = current
        if old is not None and old > current:
            out["old_price"] = old
    if quantity is not None:
        out["stock_quantity"] = quantity
        out["in_stock"] = quantity > 0
    elif current is not None:
        out["in_stock"] = True
    feedbacks = product.get("feedbacks", product.get("nmFeedbacks"))
    score = product.get("reviewRating", product.get("nmReviewRating"))
    if feedbacks is not None or score is not None:
        out["reviews_count"] = count_value(feedbacks) if feedbacks is not None else None
        out["rating"] = rating_value(score) if feedbacks != 0 else None
    options = product.get("options")
    if isinstance(options, list):
        attrs = {
            o["name"]: str(o["value"])
            for o in options
            if isinstance(o, dict) and isinstance(o.get("name"), str) and "value" in o
        }
        if attrs:
            out["card_attributes"] = attrs
    return out


def _wb_quantity(product: dict[str, Any], sizes: list[dict[str, Any]]) -> int | None:
    if any("stocks" in size for size in sizes):
        return sum(
            int(stock.get("qty") or 0)
            for size in sizes
            for stock in size.get("stocks") or []
            if isinstance(stock, dict)
        )
    total = product.get("totalQuantity")
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def _wb_prices(
    product: dict[str, Any], sizes: list[dict[str, Any]]
) -> tuple[Decimal | None, Decimal | None]:
    current = kopecks(product.get("salePriceU"))
    if current is not None:
        return current, kopecks(product.get("priceU"))
    best: tuple[Decimal, Decimal | None] | None = None
    stocked = [s for s in sizes if s.get("stocks")] or sizes
    for size in stocked:
        price = size.get("price")
        if not isinstance(price, dict):
            continue
        value = kopecks(price.get("product")) or kopecks(price.get("total"))
        if value is not None and (best is None or value < best[0]):
            best = (value, kopecks(price.get("basic")))
    if best is None:
        return None, None
    return best


# --- schema.org ---------------------------------------------------------------------------


def ld_products(doc: Any) -> list[dict[str, Any]]:
    found = []
    for node in _walk(doc):
        kind = node.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        if "Product" in kinds or "ProductGroup" in kinds:
            found.append(node)
    return found


def parse_ld_product(product: dict[str, Any]) -> Fields:
    out: Fields = {}
    name = product.get("name")
    if isinstance(name, str) and name.strip():
        out["title"] = name.strip()
    brand = product.get("brand")
    if isinstance(brand, dict):
        brand = brand.get("name")
    if isinstance(brand, str) and brand.strip():
        out["brand"] = brand.strip()
    offers = product.get("offers")
    if isinstance(offers, list):
        offers = next((o for o in offers if isinstance(o, dict)), None)
    if isinstance(offers, dict):
        price = offers.get("price", offers.get("lowPrice"))
        current = money(price)
        if current is not None:
            out["current_price"] = current
        availability = str(offers.get("availability") or "").lower()
        if any(word in availability for word in _AVAILABILITY_OUT):
            out["in_stock"] = False
        elif "instock" in availability or "limited" in availability or current is not None:
            out["in_stock"] = True
        seller = offers.get("seller")
        if isinstance(seller, dict):
            add_seller(out, seller.get("name"), None, seller.get("url"))
    rating = product.get("aggregateRating")
    if isinstance(rating, dict):
        count = rating.get("reviewCount", rating.get("ratingCount"))
        if count is not None:
            out["reviews_count"] = count_value(count)
        out["rating"] = rating_value(rating.get("ratingValue"))
    return out


def pick_ld_product(products: list[dict[str, Any]], sku: str) -> dict[str, Any]:
    for product in products:
        if sku and str(product.get("sku") or product.get("productID") or "") == sku:
            return product
    return products[0]


# --- dispatch -----------------------------------------------------------------------------


def parse_payload(doc: Any, sku: str) -> Fields | None:
    """Fields of a recognised JSON payload, ``None`` if the shape is unknown."""
    states = ozon_widget_states(doc)
    if states is not None:
        return parse_ozon_states(states, doc if isinstance(doc, dict) else None)
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        inner = doc["data"]
        if ozon_widget_states(inner) is not None:
            return parse_ozon_states(ozon_widget_states(inner) or {}, inner)
    products = wb_products(doc)
    if products:
        return parse_wb_product(pick_wb_product(products, sku))
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        data = doc["data"]
        if isinstance(data.get("products"), list) and not data["products"]:
            raise ParseError(ParseErrorCode.NOT_FOUND, "the card API returned no products")
    lds = ld_products(doc)
    if lds:
        return parse_ld_product(pick_ld_product(lds, sku))
    return None
