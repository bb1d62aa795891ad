"""The comparison page, the gap table, and the admin's price-history list for analysts."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

from django.test import Client
from django.urls import reverse

from alerts.models import AlertKind
from tests.analysts.conftest import NIGHTS, Catalogue, local, make_user, observe
from tests.factories import AlertFactory
from watcher.services import prices


def test_pages_are_for_price_readers_only(catalogue: Catalogue) -> None:
    urls = [reverse("analytics:gaps"), reverse("analytics:comparison", args=[catalogue.lamp.pk])]
    anonymous = Client()
    for url in urls:
        response = anonymous.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    outsider = Client()
    outsider.force_login(make_user("staff-without-role"))
    for url in urls:
        assert outsider.get(url).status_code == 403
    manager = Client()
    manager.force_login(make_user("manager-1", "manager", is_staff=False))
    for url in urls:
        assert manager.get(url).status_code == 200


def test_the_comparison_page_embeds_the_series_and_the_last_prices(
    catalogue: Catalogue, analyst_client: Client
) -> None:
    url = reverse("analytics:comparison", args=[catalogue.lamp.pk])
    response = analyst_client.get(f"{url}?date_from={NIGHTS[0]}&date_to={NIGHTS[2]}")
    assert response.status_code == 200
    page = response.content.decode()
    data = json.loads(re.search(r'id="series-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert [len(s["points"]) for s in data["series"]] == [3, 3, 3]
    assert data["series"][1]["points"][-1]["current_price"] == 920
    assert "vendor/chartjs/chart.umd.min.js" in page
    assert "cdn" not in page.lower()
    latest = response.context["latest"]
    assert latest[1]["difference"] == -80  # Rival A: 920 against our 1000
    assert latest[1]["percent"] == -8.0
    assert "Цена с кошельком, ₽" in page


def test_a_bad_range_is_a_400_with_the_form_errors(
    catalogue: Catalogue, analyst_client: Client
) -> None:
    url = reverse("analytics:comparison", args=[catalogue.lamp.pk])
    response = analyst_client.get(f"{url}?date_from={NIGHTS[2]}&date_to={NIGHTS[0]}")
    assert response.status_code == 400
    assert "Начало периода не может быть позже конца." in response.content.decode()
    assert analyst_client.get(f"{url}?date_from=soon").status_code == 400
    missing = reverse("analytics:comparison", args=[999999])
    assert analyst_client.get(missing).status_code == 404


def test_the_gap_table_sorts_by_gap_and_filters(
    catalogue: Catalogue, analyst_client: Client
) -> None:
    c = catalogue
    night = NIGHTS[2]
    gaps = prices.gap_table(night)
    assert [g.competitor for g in gaps] == [c.rival_c, c.rival_a, c.rival_b]
    chair, rival_a, rival_b = gaps
    assert (chair.our_price, chair.their_price, chair.difference, chair.percent) == (
        Decimal("5000.00"),
        Decimal("4500.00"),
        Decimal("-500.00"),
        Decimal("-10.0"),
    )
    assert (rival_a.difference, rival_a.percent) == (Decimal("-80.00"), Decimal("-8.0"))
    assert (rival_b.difference, rival_b.their_wallet_price) == (Decimal("100.00"), Decimal(1050))
    assert [g.competitor for g in prices.gap_table(night, brand="Nordic Home")] == [
        c.rival_a,
        c.rival_b,
    ]
    assert [g.competitor for g in prices.gap_table(night, marketplace="ozon")] == [c.rival_c]

    # The page opens on the last night and shows the same order.
    response = analyst_client.get(reverse("analytics:gaps"))
    assert response.status_code == 200
    assert response.context["night"] == night
    page = response.content.decode()
    order = [int(pk) for pk in re.findall(r'data-competitor="(\d+)"', page)]
    assert order == [c.rival_c.pk, c.rival_a.pk, c.rival_b.pk]
    assert "30.11.2026" in page
    response = analyst_client.get(reverse("analytics:gaps"), {"brand": "Sit Well"})
    assert re.findall(r'data-competitor="(\d+)"', response.content.decode()) == [str(c.rival_c.pk)]
    assert analyst_client.get(reverse("analytics:gaps"), {"night": "x"}).status_code == 400
    assert analyst_client.get(reverse("analytics:gaps"), {"brand": "Nobody"}).status_code == 400


def test_a_competitor_without_a_price_that_night_goes_last(catalogue: Catalogue) -> None:
    night = NIGHTS[2].replace(day=27)
    observe(catalogue.lamp, None, night, "1000.00")
    observe(catalogue.lamp, catalogue.rival_a, night, None, in_stock=False)
    gaps = prices.gap_table(night, brand="Nordic Home")
    assert [(g.competitor, g.their_price, g.percent) for g in gaps] == [
        (catalogue.rival_a, None, None),
        (catalogue.rival_b, None, None),
    ]
    assert gaps[0].their_in_stock is False


def test_the_admin_links_to_the_pages(catalogue: Catalogue, analyst_client: Client) -> None:
    index = analyst_client.get(reverse("admin:index")).content.decode()
    assert 'id="analytics-link"' in index
    subscriptions = analyst_client.get(reverse("admin:watcher_subscription_changelist"))
    assert (
        reverse("analytics:comparison", args=[catalogue.lamp.pk]) in subscriptions.content.decode()
    )


def test_the_admin_price_list_filters_by_dates_brand_owner_and_searches_names(
    catalogue: Catalogue, analyst_client: Client
) -> None:
    url = reverse("admin:watcher_pricehistory_changelist")

    def shown(query: dict[str, str]) -> int:
        response = analyst_client.get(url, query)
        assert response.status_code == 200
        return response.context["cl"].result_count

    assert shown({}) == 15
    assert shown({"date_from": str(NIGHTS[1]), "date_to": str(NIGHTS[1])}) == 5
    # From the 30th on: four of that night, and two read after a midnight.
    assert shown({"date_from": str(NIGHTS[2])}) == 6
    assert shown({"brand__exact": "Sit Well"}) == 6
    assert shown({"kind": "own"}) == 6
    assert shown({"kind": "competitor", "brand__exact": "Nordic Home"}) == 6
    assert shown({"q": "Sit Well"}) == 6
    assert shown({"q": '"Rival C"'}) == 3
    page = analyst_client.get(url, {"date_from": str(NIGHTS[1]), "kind": "own"}).content.decode()
    assert 'name="date_from" value="2026-11-29"' in page
    assert '<input type="hidden" name="kind" value="own">' in page
    assert "дата замера" in page and "чей артикул" in page
    bad = analyst_client.get(url, {"date_from": "soon"})
    assert bad.status_code == 302 and "e=1" in bad["Location"]


def test_the_comparison_page_lists_the_skus_alerts_of_the_range(
    catalogue: Catalogue, analyst_client: Client
) -> None:
    dumping = AlertFactory(
        competitor=catalogue.rival_a, opened_at=local(NIGHTS[1], 22, 30),
        our_price=Decimal("1000"), their_price=Decimal("910"),
        difference_rub=Decimal("90"), difference_pct=Decimal("9"),
    )  # fmt: skip
    out = AlertFactory(
        competitor=catalogue.rival_b, kind=AlertKind.OUT_OF_STOCK, opened_at=local(NIGHTS[1], 23),
        our_price=None, their_price=None, difference_rub=None, difference_pct=None,
    )  # fmt: skip
    AlertFactory(
        competitor=catalogue.rival_a, opened_at=local(NIGHTS[0], 12) - dt.timedelta(days=9)
    )
    AlertFactory(competitor=catalogue.rival_c, opened_at=local(NIGHTS[1], 22))  # another SKU's
    url = reverse("analytics:comparison", args=[catalogue.lamp.pk])
    query = f"?date_from={NIGHTS[0]}&date_to={NIGHTS[2]}"
    page = analyst_client.get(url + query).content.decode()
    data = json.loads(re.search(r'id="alert-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert [(a["id"], a["kind_label"], a["competitor_name"]) for a in data] == [
        (dumping.pk, "Демпинг", "Rival A"),
        (out.pk, "Нет в наличии", "=Rival; B"),
    ]
    assert data[0]["their_price"] == 910 and data[0]["difference_pct"] == 9
    assert data[0]["opened_at"].startswith(f"{NIGHTS[1]}T19:30:00")  # UTC; the page shows local
    # The list under the chart links to each alert's admin page, which an analyst may open.
    link = reverse("admin:alerts_alert_change", args=[dumping.pk])
    assert f'<a href="{link}">Демпинг #{dumping.pk}</a>' in page
    assert "29.11.2026 22:30" in page
    assert analyst_client.get(link).status_code == 200

    # A reader who may not open alerts in the admin sees them without the links.
    manager = Client()
    manager.force_login(make_user("manager-2", "manager"))
    page = manager.get(url + query).content.decode()
    assert f"Демпинг #{dumping.pk}" in page and link not in page

    empty = analyst_client.get(f"{url}?date_from={NIGHTS[2]}&date_to={NIGHTS[2]}")
    assert 'id="no-alerts"' in empty.content.decode()
