"""The one entry point to the parser: ``parse(raw_text, marketplace, sku)``."""

from __future__ import annotations

from parser.types import ParsedCard, ParseError, ParseErrorCode


def parse(raw_text: str, marketplace: str, sku: str) -> ParsedCard:
    """Parse one page into a card; raises :class:`ParseError` when it holds no observation.

    A card must carry a price, or say that the product is out of stock.
    """
    from parser.rules import parse_rules

    card = parse_rules(raw_text, marketplace, sku)
    if card.current_price is None and card.in_stock is not False:
        raise ParseError(ParseErrorCode.UNPARSEABLE, "no price found on the page")
    return card
