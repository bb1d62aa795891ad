"""Yandex Market's embedded page state: the ``<noframes data-apiary="patch">`` JSON blocks.

A server-rendered product page carries its widgets' state as JSON patches whose
``collections`` map entity ids to entities. The product card's entities share one key
(``productCardMeta``, ``price``, ``shopInfo``, ...); other keys belong to carousels and other
offers, so an entity is read only under the card's key (or when it is the only one).

Prices come in two shapes:

- ``price``: ``mainPrice`` (the price shown big; ``subtype: "ya-card"`` when it is the Yandex
  Pay card price) and ``oldPrices`` (``regular``: the price without the card;
  ``withoutDiscount``: the strikethrough price), with ``snippetPrice`` spelling the same;
- ``buyOption``: ``price`` (the price without the card), ``basePrice`` (strikethrough) and
  ``analytics.yaBankPrice`` (the card price).
"""

from __future__ import annotations

import html
import json
from decimal import Decimal
from typing import Any

from parser.rules.payloads import Fields, add_seller
from parser.rules.text import count_value, money, rating_value

_CARD_COLLECTIONS = ("productCardMeta", "productCardTitle", "skuCardMeta")
_QUOTE_PAIRS = frozenset((('"', '"'), ("'", "'"), ("«", "»"), ("“", "”"), ("„", "“")))
_PAY_MARKERS = ("ya-card", "ya_card", "yabank", "ya_bank", "ya_pay", "yapay", "ya-pay")


def read_patches(texts: list[str]) -> dict[str, dict[str, Any]]:
    """Merged ``collections`` of the page's apiary patches (a later empty entity never
    replaces an earlier one: pages re-declare entities empty)."""
    merged: dict[str, dict[str, Any]] = {}
    for text in texts:
        patch = _load(text)
        collections = patch.get("collections") if isinstance(patch, dict) else None
        if not isinstance(collections, dict):
            continue
        for name, entities in collections.items():
            if not isinstance(entities, dict):
                continue
            slot = merged.setdefault(name, {})
            for key, entity in entities.items():
                if isinstance(entity, dict) and (entity or key not in slot):
                    slot[key] = entity
    return merged


def _load(text: str) -> Any:
    text = text.strip()
    if not text.startswith("{"):
        return None
    for candidate in (text, html.unescape(text)):
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    return None


def parse_apiary(collections: dict[str, dict[str, Any]]) -> Fields:
    """The product card's fields from merged apiary collections (only what they carry)."""
    out: Fields = {}
    key = _card_key(collections)
    meta = _entity(collections, "productCardMeta", key)
    title = meta.get("title") or meta.get("rawTitle") or meta.get("skuTitle")
    if isinstance(title, str) and title.strip():
        out["title"] = " ".join(title.split())
    if "rating" in meta or "ratingCount" in meta:
        count = count_value(meta.get("ratingCount"))
        if count is not None:
            out["reviews_count"] = count
        out["rating"] = rating_value(meta.get("rating")) if count != 0 else None
    brand = meta.get("vendorName")
    if isinstance(brand, str) and brand.strip():
        out["brand"] = brand.strip()
    prices = _price_entity(_entity(collections, "price", key)) or _buy_option(
        _entity(collections, "buyOption", key)
    )
    out.update(prices)
    shop = _entity(collections, "shopInfo", key)
    if shop:
        add_seller(out, _shop_name(shop.get("name")), shop.get("shopId") or shop.get("businessId"))
    return out


def _card_key(collections: dict[str, dict[str, Any]]) -> str | None:
    for name in _CARD_COLLECTIONS:
        entities = collections.get(name) or {}
        if len(entities) == 1:
            return next(iter(entities))
    return None


def _entity(collections: dict[str, dict[str, Any]], name: str, key: str | None) -> dict[str, Any]:
    entities = collections.get(name) or {}
    if key is not None:
        found = entities.get(key)
        return found if isinstance(found, dict) else {}
    if len(entities) == 1:
        # No card key on the page, one entity of the kind: the card's.
        only = next(iter(entities.values()))
        return only if isinstance(only, dict) else {}
    return {}


def _shop_name(value: Any) -> str | None:
    # Shop names are often quoted legal names ("\"HOCO\""); the quotes are not the name.
    if not isinstance(value, str):
        return None
    name = value.strip()
    if len(name) > 2 and (name[0], name[-1]) in _QUOTE_PAIRS:
        name = name[1:-1].strip()
    return name or None


def _value(node: Any) -> Decimal | None:
    """``{"price": {"value": 180}}``, ``{"value": 180}`` or a bare amount."""
    if isinstance(node, dict):
        inner = node.get("price", node)
        if isinstance(inner, dict):
            return money(inner.get("value"))
        return money(inner)
    return money(node)


def _is_pay(*labels: Any) -> bool:
    text = " ".join(str(label).lower() for label in labels if label)
    return any(marker in text for marker in _PAY_MARKERS)


def _price_entity(entity: dict[str, Any]) -> Fields:
    main = entity.get("mainPrice")
    if not isinstance(main, dict):
        return _snippet_price(entity.get("snippetPrice"))
    shown = _value(main)
    if shown is None:
        return {}
    olds = {
        str(item.get("type")): _value(item)
        for item in entity.get("oldPrices") or []
        if isinstance(item, dict)
    }
    regular = olds.get("regular")
    strikethrough = olds.get("withoutDiscount")
    out: Fields = {}
    if _is_pay(main.get("type"), main.get("subtype")) and regular is not None and regular > shown:
        out["current_price"] = regular
        out["spp_price"] = shown
    else:
        out["current_price"] = shown
    if strikethrough is not None and strikethrough > out["current_price"]:
        out["old_price"] = strikethrough
    return out


def _snippet_price(snippet: Any) -> Fields:
    if not isinstance(snippet, dict):
        return {}
    actual = snippet.get("actualPrice") or {}
    shown = _amount(actual)
    if shown is None:
        return {}
    without_card = _amount(snippet.get("oldPrice"))
    initial = _amount(snippet.get("initialPrice"))
    out: Fields = {"current_price": shown}
    if (
        _is_pay(actual.get("type"), actual.get("suffix"))
        and without_card is not None
        and without_card > shown
    ):
        out["current_price"] = without_card
        out["spp_price"] = shown
    if initial is not None and initial > out["current_price"]:
        out["old_price"] = initial
    return out


def _amount(node: Any) -> Decimal | None:
    if not isinstance(node, dict):
        return None
    amount = node.get("amount")
    if not isinstance(amount, dict):
        return None
    whole = amount.get("intPart")
    frac = amount.get("fractionalPart") or amount.get("fracPart")
    if whole is None:
        return money(amount.get("value"))
    return money(f"{whole},{frac}" if frac else str(whole))


def _buy_option(entity: dict[str, Any]) -> Fields:
    current = _value(entity.get("price"))
    if current is None:
        return {}
    out: Fields = {"current_price": current}
    old = _value(entity.get("basePrice"))
    if old is not None and old > current:
        out["old_price"] = old
    analytics = entity.get("analytics")
    card = money(analytics.get("yaBankPrice")) if isinstance(analytics, dict) else None
    if card is not None and card < current:
        out["spp_price"] = card
    add_seller(out, _shop_name(entity.get("supplierName")), entity.get("shopId"))
    return out
