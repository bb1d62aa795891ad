"""Types shared by every parser backend.

The parser is pure: text in, a frozen :class:`ParsedCard` out (or a :class:`ParseError`).
No ORM and no I/O in here or in the rules backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class Marketplace(models.TextChoices):
    """Marketplaces; the values are part of the API contract."""

    WILDBERRIES = "wildberries", _("Wildberries")
    OZON = "ozon", _("Ozon")
    YANDEX_MARKET = "yandex_market", _("Yandex Market")


# The marketplaces in their declared order, for loops over queues and counters.
MARKETPLACES: tuple[str, ...] = tuple(Marketplace.values)


class ParseErrorCode(models.TextChoices):
    """Why a page produced no observation. Users must be able to tell these apart."""

    BLOCKED = "blocked", _("Blocked (captcha / access denied)")
    NOT_FOUND = "not_found", _("Product not found")
    UNPARSEABLE = "unparseable", _("Parse failure")
    EMPTY = "empty", _("Empty page")


class ParseError(Exception):
    """The page could not be turned into an observation."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# The fields a product page shows: what every backend reads, an LLM is asked for and the
# accuracy harness scores.
PAGE_FIELDS: tuple[str, ...] = (
    "title",
    "current_price",
    "old_price",
    "spp_price",
    "in_stock",
    "stock_quantity",
    "rating",
    "reviews_count",
    "sales_count",
)

# Fields of ParsedCard that map one-to-one onto PriceHistory columns.
OBSERVATION_FIELDS: tuple[str, ...] = (
    *PAGE_FIELDS,
    "position",
    "ad_bid",
    "card_description",
    "seller_name",
    "seller_id",
)


@dataclass(frozen=True, slots=True)
class ParsedCard:
    """One parsed observation of a product card.

    Prices are roubles as ``Decimal`` (two places at most). ``None`` means "not found on the
    page" — a backend never guesses. ``found`` names the fields the backend actually read.
    """

    title: str | None = None
    current_price: Decimal | None = None
    old_price: Decimal | None = None
    spp_price: Decimal | None = None
    in_stock: bool | None = None
    stock_quantity: int | None = None
    rating: Decimal | None = None
    reviews_count: int | None = None
    sales_count: int | None = None
    position: int | None = None
    ad_bid: Decimal | None = None
    card_description: str | None = None
    card_attributes: dict[str, Any] = field(default_factory=dict)
    # Who sells this offer, as the page or payload names it; never guessed.
    seller_name: str | None = None
    seller_id: str | None = None
    brand: str | None = None
    backend: str = "rules"
    found: frozenset[str] = frozenset()

    def as_observation(self) -> dict[str, Any]:
        """The PriceHistory field values of this card."""
        data = {name: getattr(self, name) for name in OBSERVATION_FIELDS}
        data["card_title"] = data.pop("title")
        data["card_attributes"] = dict(self.card_attributes)
        return data

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
