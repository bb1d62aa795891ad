"""The deterministic rules parser: ``parse_rules(raw_text, marketplace, sku)``.

Pure Python, no ORM and no I/O. Accepts innerText-like page text, HTML, or the raw JSON of the
marketplaces' APIs (Wildberries card API, Ozon ``widgetStates``, schema.org ld+json).
"""

from __future__ import annotations

from typing import Any

from parser.rules import markers as M
from parser.rules.html import looks_like_html, parse_html
from parser.rules.page import TextResult, parse_text
from parser.rules.payloads import Fields, load_json, parse_payload
from parser.rules.text import normalise, split_lines
from parser.types import PAGE_FIELDS, Marketplace, ParsedCard, ParseError, ParseErrorCode

__all__ = ["parse_rules"]

_CARD_FIELDS = (*PAGE_FIELDS, "seller_name", "seller_id", "brand")
_MARKETPLACES = frozenset(m.value for m in Marketplace)
# Error notices are short lines near the top of a page.
_MARKER_LINES = 120
_MARKER_LINE_LEN = 160
# Bigger than any product page (reports are capped at a few MB); parsing time is linear in it.
MAX_PAGE_CHARS = 8_000_000


def parse_rules(raw_text: str, marketplace: str, sku: str) -> ParsedCard:
    """Parse one page into a :class:`ParsedCard`; raises :class:`ParseError`."""
    if marketplace not in _MARKETPLACES:
        raise ParseError(ParseErrorCode.UNPARSEABLE, f"unknown marketplace {marketplace!r}")
    if raw_text is None or not raw_text.strip():
        raise ParseError(ParseErrorCode.EMPTY, "the page is empty")
    if len(raw_text) > MAX_PAGE_CHARS:
        raise ParseError(ParseErrorCode.UNPARSEABLE, "the page is too large to parse")
    sku = (sku or "").strip()
    doc = load_json(raw_text)
    if doc is not None:
        fields = parse_payload(doc, sku)
        if fields is None:
            raise ParseError(ParseErrorCode.UNPARSEABLE, "unrecognised JSON payload")
        return _finish(fields, {}, "json")
    structured: Fields = {}
    attributes: dict[str, str] = {}
    text = raw_text
    html_title: str | None = None
    if looks_like_html(raw_text):
        page = parse_html(raw_text, sku)
        if page.challenge and page.structured.get("current_price") is None:
            raise ParseError(ParseErrorCode.BLOCKED, "captcha page")
        text, structured, attributes, html_title = (
            page.text,
            page.structured,
            page.attributes,
            page.title,
        )
    lines = split_lines(normalise(text))
    if not lines and not structured:
        raise ParseError(ParseErrorCode.EMPTY, "the page has no text")
    result = parse_text(lines, marketplace)
    _raise_for_error_page(result, lines, structured)
    fields = _merge(result, structured, html_title, marketplace)
    attributes = {**result.attributes, **attributes}
    return _finish(fields, attributes, "text")


def _raise_for_error_page(result: TextResult, lines: list[str], structured: Fields) -> None:
    """Captcha and soft-404 pages: a notice before (or instead of) any product block."""
    if structured.get("current_price") is not None or structured.get("in_stock") is False:
        return
    if result.has_cluster and result.has_anchor:
        # A carousel under a soft-404 notice looks like a product; the notice comes first.
        head = result.main[: result.first_block]
    else:
        head = result.main or lines
    notices = [line for line in head[:_MARKER_LINES] if len(line) <= _MARKER_LINE_LEN]
    text = "\n".join(notices)
    if M.BLOCKED.search(text):
        raise ParseError(ParseErrorCode.BLOCKED, "captcha or access-denied page")
    if M.NOT_FOUND.search(text):
        raise ParseError(ParseErrorCode.NOT_FOUND, "the marketplace says the product is not found")
    no_price = result.current_price is None and result.in_stock is not False
    if no_price and not structured and (result.title is None or not result.has_anchor):
        raise ParseError(ParseErrorCode.UNPARSEABLE, "no product block found on the page")


def _merge(
    result: TextResult, structured: Fields, html_title: str | None, marketplace: str
) -> Fields:
    fields: Fields = {name: getattr(result, name) for name in _CARD_FIELDS}
    fields = {k: v for k, v in fields.items() if v is not None}
    title = structured.get("title") or html_title or result.title or structured.get("og_title")
    if title:
        fields["title"] = title
    price = structured.get("current_price")
    if price is not None and price not in (result.spp_price, result.old_price):
        # The payload's price wins; text prices that contradict it are dropped.
        if result.old_price is not None and result.old_price <= price:
            fields.pop("old_price", None)
        if result.spp_price is not None and result.spp_price >= price:
            fields.pop("spp_price", None)
        fields["current_price"] = price
    if price is not None:
        # A payload or price block that names its crossed-out and card prices is their source.
        for key in ("old_price", "spp_price"):
            if structured.get(key) is not None:
                fields[key] = structured[key]
    for key in ("old_price", "spp_price", "stock_quantity", "sales_count", "brand"):
        if key not in fields and structured.get(key) is not None:
            fields[key] = structured[key]
    if structured.get("seller_name") or structured.get("seller_id"):
        # A payload's seller is the offer's; the page text's guess is not mixed in.
        for key in ("seller_name", "seller_id"):
            fields.pop(key, None)
            if structured.get(key) is not None:
                fields[key] = structured[key]
    for key in ("rating", "reviews_count"):
        if key in structured:
            if structured[key] is None:
                fields.pop(key, None)
            else:
                fields[key] = structured[key]
    if structured.get("in_stock") is not None and result.in_stock is not False:
        fields["in_stock"] = structured["in_stock"]
    if fields.get("in_stock") is False:
        fields.pop("stock_quantity", None)
    if "card_attributes" in structured:
        fields["card_attributes"] = structured["card_attributes"]
    return fields


def _finish(fields: Fields, attributes: dict[str, str], source: str) -> ParsedCard:
    attrs: dict[str, Any] = dict(fields.pop("card_attributes", None) or {})
    for key, value in attributes.items():
        attrs.setdefault(key, value)
    fields.pop("og_title", None)
    values = {k: v for k, v in fields.items() if k in _CARD_FIELDS}
    found = {k for k, v in values.items() if v is not None}
    if "rating" in fields and fields.get("reviews_count") == 0:
        found.add("rating")
    if attrs:
        found.add("card_attributes")
    if (
        values.get("current_price") is None
        and values.get("in_stock") is None
        and not values.get("title")
    ):
        raise ParseError(ParseErrorCode.UNPARSEABLE, f"no product data in the {source}")
    return ParsedCard(**values, card_attributes=attrs, found=frozenset(found))
