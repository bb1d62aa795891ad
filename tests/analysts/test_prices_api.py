"""GET /api/v1/prices/ (filters, cursor pagination) and /api/v1/prices/series."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from tests.analysts.conftest import NIGHTS, Catalogue
from watcher.models import PriceHistory


def ids(client: APIClient, query: str) -> set[int]:
    response = client.get(f"/api/v1/prices/?page_size=1000&{query}")
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def expected(**filters: Any) -> set[int]:
    return set(PriceHistory.objects.filter(**filters).values_list("id", flat=True))


def test_each_filter_selects_its_rows(catalogue: Catalogue, analyst_api: APIClient) -> None:
    c = catalogue
    assert ids(analyst_api, "") == expected()
    assert ids(analyst_api, "marketplace=ozon") == expected(marketplace="ozon")
    assert ids(analyst_api, "brand=Nordic+Home") == expected(brand="Nordic Home")
    assert ids(analyst_api, f"subscription={c.chair.pk}") == expected(subscription=c.chair)
    assert ids(analyst_api, f"competitor={c.rival_a.pk}") == expected(competitor=c.rival_a)
    assert ids(analyst_api, "kind=own") == expected(competitor__isnull=True)
    assert ids(analyst_api, "kind=competitor") == expected(competitor__isnull=False)
    assert len(ids(analyst_api, "kind=own&brand=Sit+Well")) == 3


def test_the_date_range_is_of_local_days_both_included(
    catalogue: Catalogue, analyst_api: APIClient
) -> None:
    first, second, third = NIGHTS
    day = ids(analyst_api, f"from={second}&to={second}")
    # The second night's rows before midnight, and the first night's one read after it.
    assert day == expected(parsed_at__date=second)
    assert len(day) == 5
    assert expected(competitor=catalogue.rival_c, task__scheduled_date=first) <= day
    assert ids(analyst_api, f"from={third}") == expected(parsed_at__date__gte=third)
    assert ids(analyst_api, f"to={first}") == expected(parsed_at__date__lte=first)
    assert ids(analyst_api, f"from={third}&to={first}") == set()


def test_rows_carry_what_an_analyst_compares(catalogue: Catalogue, analyst_api: APIClient) -> None:
    query = f"competitor={catalogue.rival_a.pk}&from={NIGHTS[2]}"
    (row,) = analyst_api.get(f"/api/v1/prices/?{query}").json()["results"]
    assert row["kind"] == "competitor"
    assert row["our_sku"] == "100500"
    assert row["competitor_sku"] == "900001"
    assert row["competitor_name"] == "Rival A"
    assert row["current_price"] == "920.00"  # exact decimals in the list
    assert row["old_price"] == "1200.00"
    (ours,) = analyst_api.get(
        f"/api/v1/prices/?kind=own&brand=Nordic+Home&from={NIGHTS[2]}"
    ).json()["results"]
    assert (ours["kind"], ours["competitor"], ours["spp_price"]) == ("own", None, "950.50")


def test_bad_filters_are_a_json_400(catalogue: Catalogue, analyst_api: APIClient) -> None:
    bad = ("from=yesterday", "marketplace=amazon", "kind=both", "subscription=x", "competitor=1.5")
    for query in bad:
        response = analyst_api.get(f"/api/v1/prices/?{query}")
        assert response.status_code == 400, query
        assert response["Content-Type"].startswith("application/json")
    response = analyst_api.get("/api/v1/prices/?format=csv&to=never")
    assert response.status_code == 400
    assert "to" in response.json()
    assert analyst_api.get("/api/v1/prices/?format=csv&dialect=lotus").status_code == 400
    assert analyst_api.get("/api/v1/prices/?format=pdf").status_code == 404


def test_cursor_pagination_walks_every_row_once_newest_first(
    catalogue: Catalogue, analyst_api: APIClient
) -> None:
    url: str | None = "/api/v1/prices/?page_size=4"
    seen: list[dict[str, Any]] = []
    pages = 0
    while url:
        body = analyst_api.get(url).json()
        assert len(body["results"]) <= 4
        seen.extend(body["results"])
        url = body["next"]
        pages += 1
    assert pages == 4
    assert [row["id"] for row in seen] == list(
        PriceHistory.objects.order_by("-parsed_at", "-id").values_list("id", flat=True)
    )
    # Filters stay on the cursor's links.
    first = analyst_api.get("/api/v1/prices/?page_size=2&kind=own").json()
    assert "kind=own" in first["next"]


def test_series_are_ours_then_each_competitors_ready_for_a_chart(
    catalogue: Catalogue, analyst_api: APIClient
) -> None:
    lamp = catalogue.lamp
    response = analyst_api.get(
        f"/api/v1/prices/series?subscription={lamp.pk}&from={NIGHTS[0]}&to={NIGHTS[2]}"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["subscription"]["sku"] == "100500"
    assert (body["from"], body["to"]) == (str(NIGHTS[0]), str(NIGHTS[2]))
    ours, rival_a, rival_b = body["series"]
    assert (ours["kind"], ours["competitor"]) == ("own", None)
    assert (rival_a["competitor"], rival_b["competitor"]) == (
        catalogue.rival_a.pk,
        catalogue.rival_b.pk,
    )
    assert [p["current_price"] for p in rival_a["points"]] == [900, 910, 920]
    assert ours["points"][0] == {
        "t": ours["points"][0]["t"],
        "current_price": 1000,
        "old_price": None,
        "spp_price": 950.5,
        "in_stock": True,
        "stock": 7,
    }
    assert [p["in_stock"] for p in rival_b["points"]] == [True, False, True]
    times = [p["t"] for p in ours["points"]]
    assert times == sorted(times)

    one_day = analyst_api.get(
        f"/api/v1/prices/series?subscription={lamp.pk}&from={NIGHTS[1]}&to={NIGHTS[1]}"
    ).json()
    assert [len(s["points"]) for s in one_day["series"]] == [1, 1, 1]


def test_series_defaults_and_errors(catalogue: Catalogue, analyst_api: APIClient) -> None:
    lamp = catalogue.lamp
    body = analyst_api.get(f"/api/v1/prices/series?subscription={lamp.pk}").json()
    assert len(body["series"]) == 3  # every competitor, even without points in the range
    to = analyst_api.get(f"/api/v1/prices/series?subscription={lamp.pk}&to={NIGHTS[2]}").json()
    assert to["from"] == "2026-11-01"
    assert [len(s["points"]) for s in to["series"]] == [3, 3, 3]
    assert analyst_api.get("/api/v1/prices/series").status_code == 400
    assert analyst_api.get("/api/v1/prices/series?subscription=abc").status_code == 400
    bad_range = f"/api/v1/prices/series?subscription={lamp.pk}&from={NIGHTS[2]}&to={NIGHTS[0]}"
    response = analyst_api.get(bad_range)
    assert response.status_code == 400
    assert "from" in response.json()
    assert analyst_api.get("/api/v1/prices/series?subscription=999999").status_code == 404


def test_the_openapi_schema_documents_the_prices_api(db: None) -> None:
    from django.contrib.auth.models import User

    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", password="x" * 12))
    schema = client.get("/api/schema/?format=json").json()
    listing = schema["paths"]["/api/v1/prices/"]["get"]
    assert listing["tags"] == ["prices"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"from", "to", "marketplace", "brand", "subscription", "competitor", "kind"} <= names
    assert {"format", "dialect", "cursor", "page_size"} <= names
    assert set(listing["responses"]["200"]["content"]) >= {"application/json", "text/csv"}
    series = schema["paths"]["/api/v1/prices/series"]["get"]
    assert series["tags"] == ["prices"]
    assert {"subscription", "from", "to"} <= {p["name"] for p in series["parameters"]}
