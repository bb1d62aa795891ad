"""The comparison page in headless Chromium against a real uvicorn process: the chart draws
our series and each competitor's, on a laptop and on a phone. Screenshots are kept in the
test's tmp dir for review.

No ORM calls while Playwright runs (its sync API keeps an event loop in this thread): the
database is prepared before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.analysts.conftest import NIGHTS, PASSWORD, Catalogue, make_user
from tests.e2e.servers import BROWSER_ARGS, CHROMIUM, Server, asgi_servers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]
TIMEOUT_MS = 15_000
CHART_DATA = """() => {
  const chart = Chart.getChart(document.getElementById("price-chart"));
  return chart.data.datasets.map((d, i) => ({
    label: d.label,
    points: d.data.map((p) => p.y),
    visible: chart.isDatasetVisible(i),
    drawn: chart.getDatasetMeta(i).data.length,
  }));
}"""


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("WATCHER_BROWSER_TESTS") == "required":
            pytest.fail(f"{CHROMIUM} is missing and WATCHER_BROWSER_TESTS=required")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browser tests skipped")
    return CHROMIUM


def test_the_comparison_chart_draws_every_series(
    catalogue: Catalogue,
    chromium: str,
    tmp_path: Path,
) -> None:
    make_user("analyst-browser", "analyst")
    path = (
        f"/analytics/subscriptions/{catalogue.lamp.pk}/?date_from={NIGHTS[0]}&date_to={NIGHTS[2]}"
    )
    from playwright.sync_api import sync_playwright

    with asgi_servers(1, tmp_path) as (server,), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        try:
            laptop = browser.new_context(
                viewport={"width": 1366, "height": 768}, locale="ru-RU"
            ).new_page()
            log_in(laptop, server, path)
            datasets = chart_data(laptop)
            laptop.screenshot(path=str(tmp_path / "comparison-1366.png"), full_page=True)

            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, locale="ru-RU"
            ).new_page()
            log_in(phone, server, path)
            phone_datasets = chart_data(phone)
            phone.screenshot(path=str(tmp_path / "comparison-390.png"), full_page=True)
            page_width = phone.evaluate("document.documentElement.scrollWidth")
            canvas_width = phone.evaluate(
                "document.getElementById('price-chart').getBoundingClientRect().width"
            )
        finally:
            browser.close()

    # Ours, Rival A, Rival B: a price line and a wallet-price line each.
    prices = {d["label"]: d for d in datasets if "кошельком" not in d["label"]}
    wallets = [d for d in datasets if "кошельком" in d["label"]]
    assert list(prices) == ["Наш артикул 100500", "Rival A", "=Rival; B"]
    assert prices["Наш артикул 100500"]["points"] == [1000, 1000, 1000]
    assert prices["Rival A"]["points"] == [900, 910, 920]
    assert prices["=Rival; B"]["points"] == [1100, 1100, 1100]
    for dataset in prices.values():
        assert dataset["visible"] and dataset["drawn"] == 3
    assert wallets[0]["points"] == [950.5] * 3 and wallets[0]["visible"]
    assert [w["visible"] for w in wallets[1:]] == [False, False]  # one click in the legend away
    assert phone_datasets == datasets
    assert page_width <= 390  # the tables scroll inside their box, the page does not
    assert 300 <= canvas_width <= 390
    print("screenshots:", tmp_path / "comparison-1366.png", tmp_path / "comparison-390.png")


def log_in(page: Any, server: Server, next_path: str) -> None:
    page.goto(f"{server.url}{next_path}")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "analyst-browser")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server.url}{next_path}")


def chart_data(page: Any) -> list[dict[str, Any]]:
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.getElementById('price-chart'))",
        timeout=TIMEOUT_MS,
    )
    return page.evaluate(CHART_DATA)
