"""A SKU has its marketplace's form, in the admin's forms and in imports; nothing else is saved."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from parser.types import Marketplace
from tests.factories import SubscriptionFactory
from watcher.models import Competitor, Subscription, validate_sku

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("marketplace", Marketplace.values)
def test_it_accepts_a_number_on_every_marketplace(marketplace: str) -> None:
    validate_sku(marketplace, "123456789")


@pytest.mark.parametrize("marketplace", Marketplace.values)
@pytest.mark.parametrize("sku", ["abc", "12 34", "12-34", "123456.0", "https://x.ru/1", ""])
def test_it_refuses_what_is_not_a_product_number(marketplace: str, sku: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_sku(marketplace, sku)
    assert caught.value.code == "invalid_sku"


def subscription_form(**fields: str) -> dict[str, str]:
    return {
        "brand": "Nordic", "marketplace": "wildberries", "sku": "123456", "title": "",
        "priority": "0", "is_active": "on", "competitors-TOTAL_FORMS": "0",
        "competitors-INITIAL_FORMS": "0", **fields,
    }  # fmt: skip


def test_the_add_page_refuses_a_sku_with_letters_in_plain_words(operator: Client) -> None:
    response = operator.post("/admin/watcher/subscription/add/", subscription_form(sku="WB-12"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "«WB-12» — не артикул." in html
    assert "wildberries.ru/catalog/&lt;число&gt;/detail.aspx" in html
    assert not Subscription.objects.exists()


def test_a_competitor_inline_with_letters_is_refused_with_its_subscription(
    operator: Client,
) -> None:
    form = subscription_form(
        marketplace="ozon",
        **{
            "competitors-TOTAL_FORMS": "1", "competitors-0-competitor_sku": "ozon-777",
            "competitors-0-name": "Rival", "competitors-0-priority": "0",
            "competitors-0-is_active": "on",
        },
    )  # fmt: skip
    response = operator.post("/admin/watcher/subscription/add/", form)
    assert response.status_code == 200
    assert "ozon.ru/product/…-&lt;число&gt;/" in response.content.decode()
    assert not Subscription.objects.exists()
    assert not Competitor.objects.exists()


def test_a_competitor_sku_follows_its_subscriptions_marketplace(operator: Client) -> None:
    subscription = SubscriptionFactory(marketplace=Marketplace.YANDEX_MARKET, sku="1779")
    form = {"subscription": subscription.pk, "competitor_sku": "card-slug", "priority": "0"}
    response = operator.post("/admin/watcher/competitor/add/", form)
    assert "market.yandex.ru/product/&lt;число&gt;" in response.content.decode()
    assert not Competitor.objects.exists()

    response = operator.post("/admin/watcher/competitor/add/", {**form, "competitor_sku": "88"})
    assert response.status_code == 302
    assert Competitor.objects.get().url == "https://market.yandex.ru/product/88"


def test_an_import_row_with_a_bad_sku_is_refused_and_nothing_is_saved(operator: Client) -> None:
    upload = SimpleUploadedFile(
        "catalogue.csv", b"brand,marketplace,sku\nNordic,wb,123\nNordic,ozon,OZ-1\n"
    )
    response = operator.post(
        "/admin/watcher/subscription/import/",
        {"format": "0", "import_file": upload, "resource": "0"},
    )
    html = response.content.decode()
    assert "«OZ-1» — не артикул." in html
    assert not Subscription.objects.exists()


def test_a_price_observation_reads_in_the_operators_language_and_time_zone() -> None:
    import datetime as dt
    from decimal import Decimal

    from django.utils import translation

    from tests.factories import PriceHistoryFactory

    observation = PriceHistoryFactory(
        sku="100000",
        current_price=Decimal("1299.50"),
        parsed_at=dt.datetime(2026, 12, 2, 2, 49, tzinfo=dt.UTC),
    )
    with translation.override("ru"):
        assert str(observation) == "100000: 1299,50 (02.12.2026 05:49)"  # Moscow, decimal comma


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_watcher_section_comes_first_on_the_admin_index(
    operator: Client, language: str
) -> None:
    html = operator.get("/admin/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    sections = re.findall(r'<div class="app-(\w+) module', html)
    assert sections[0] == "watcher", sections
