"""The comparison page in headless Chromium against a real uvicorn process: the chart draws
our series and each competitor's, on a laptop and on a phone. Screenshots are kept in the
test's tmp dir for review.

No ORM calls while Playwright runs (its sync API keeps an event loop in this thread): the
database is prepared before.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alerts.models import AlertKind
from tests.analysts.conftest import NIGHTS, PASSWORD, Catalogue, local, make_user
from tests.e2e.servers import BROWSER_ARGS, CHROMIUM, Server, asgi_servers
from tests.factories import AlertFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]
TIMEOUT_MS = 15_000
PAGE_OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
# How far the page, or the admin list's table in its box, scrolls sideways (0: it fits).
LIST_OVERFLOW = """() => Math.max(
  document.documentElement.scrollWidth - document.documentElement.clientWidth,
  ...[...document.querySelectorAll('#changelist .results')].map(
    (box) => box.scrollWidth - box.clientWidth))"""
CHART_DATA = """() => {
  const chart = Chart.getChart(document.getElementById("price-chart"));
  return chart.data.datasets.map((d, i) => ({
    label: d.label,
    type: d.type || "line",
    points: d.data.map((p) => p.y),
    alerts: d.data.filter((p) => p.alert).map((p) => ({
      id: p.alert.id, x: p.x, kind: p.alert.kind_label,
      inside: chart.chartArea.left <= chart.scales.x.getPixelForValue(p.x)
        && chart.scales.x.getPixelForValue(p.x) <= chart.chartArea.right,
    })),
    visible: chart.isDatasetVisible(i),
    drawn: chart.getDatasetMeta(i).data.length,
  }));
}"""
# The tooltip Chart.js shows for the first alert marker, as the user sees it on hover.
ALERT_TOOLTIP = """() => {
  const chart = Chart.getChart(document.getElementById("price-chart"));
  const index = chart.data.datasets.findIndex((d) => d.type === "scatter");
  chart.tooltip.setActiveElements([{datasetIndex: index, index: 0}], {x: 0, y: 0});
  chart.update();
  return {title: chart.tooltip.title, body: chart.tooltip.body.map((b) => b.lines).flat()};
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
    dumping = AlertFactory(
        competitor=catalogue.rival_a, opened_at=local(NIGHTS[1], 22, 30),
        our_price=Decimal("1000"), their_price=Decimal("910"),
        difference_rub=Decimal("90"), difference_pct=Decimal("9"),
    )  # fmt: skip
    out = AlertFactory(
        competitor=catalogue.rival_b, kind=AlertKind.OUT_OF_STOCK, opened_at=local(NIGHTS[1], 23),
        our_price=None, their_price=None, difference_rub=None, difference_pct=None,
    )  # fmt: skip
    opened = [int(a.opened_at.timestamp() * 1000) for a in (dumping, out)]
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
            tooltip = laptop.evaluate(ALERT_TOOLTIP)
            laptop.screenshot(path=str(tmp_path / "comparison-1366.png"), full_page=True)
            laptop_overflow = laptop.evaluate(PAGE_OVERFLOW)
            # The list under the chart leads to the alert's admin page, open to an analyst.
            laptop.click(f"#alerts a:has-text('#{dumping.pk}')")
            laptop.wait_for_url(f"**/admin/alerts/alert/{dumping.pk}/change/")
            alert_page = laptop.inner_text("#content")

            # The admin's price history: one way to export (two downloads and the actions),
            # the list fits the laptop, and the CSV button downloads the filtered list.
            laptop.goto(f"{server.url}/admin/watcher/pricehistory/?brand__exact=Nordic+Home")
            tools = laptop.evaluate(
                "[...document.querySelectorAll('.object-tools a')].map((a) => a.textContent.trim())"
            )
            list_overflow = laptop.evaluate(LIST_OVERFLOW)
            actions = laptop.locator("select[name=action] option").all_inner_texts()
            laptop.screenshot(path=str(tmp_path / "price-history-1366.png"), full_page=True)
            with laptop.expect_download() as download:
                laptop.click("#export-csv")
            csv_lines = Path(download.value.path()).read_bytes().decode("utf-8-sig").splitlines()

            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, locale="ru-RU"
            ).new_page()
            log_in(phone, server, path)
            phone_datasets = chart_data(phone)
            phone.screenshot(path=str(tmp_path / "comparison-390.png"), full_page=True)
            page_width = phone.evaluate("document.documentElement.scrollWidth")
            phone_alerts_visible = phone.is_visible("#alerts")
            canvas_width = phone.evaluate(
                "document.getElementById('price-chart').getBoundingClientRect().width"
            )
        finally:
            browser.close()

    # Ours, Rival A, Rival B: a price line and a wallet-price line each; then the alerts.
    *lines, alerts = datasets
    prices = {d["label"]: d for d in lines if "кошельком" not in d["label"]}
    wallets = [d for d in lines if "кошельком" in d["label"]]
    assert list(prices) == ["Наш артикул 100500", "Rival A", "=Rival; B"]
    assert prices["Наш артикул 100500"]["points"] == [1000, 1000, 1000]
    assert prices["Rival A"]["points"] == [900, 910, 920]
    assert prices["=Rival; B"]["points"] == [1100, 1100, 1100]
    for dataset in prices.values():
        assert dataset["visible"] and dataset["drawn"] == 3
    assert wallets[0]["points"] == [950.5] * 3 and wallets[0]["visible"]
    assert [w["visible"] for w in wallets[1:]] == [False, False]  # one click in the legend away
    # The alerts: a marker each where it opened, at their price (else on its competitor's line).
    assert (alerts["label"], alerts["type"], alerts["visible"]) == ("Оповещения", "scatter", True)
    assert [(a["id"], a["x"], a["kind"], a["inside"]) for a in alerts["alerts"]] == [
        (dumping.pk, opened[0], "Демпинг", True),
        (out.pk, opened[1], "Нет в наличии", True),
    ]
    assert alerts["points"] == [910, 1100] and alerts["drawn"] == 2
    assert tooltip["body"][0] == f"Демпинг #{dumping.pk} · Rival A"
    assert "их цена 910" in tooltip["body"][1] and "разница 90" in tooltip["body"][1]
    assert "29.11.2026" in tooltip["title"][0]
    assert "Просмотр" in alert_page and "Демпинг" in alert_page  # read-only for an analyst
    assert laptop_overflow <= 0
    assert tools == ["Скачать CSV", "Скачать XLSX", "Аналитика"]
    assert [a for a in actions if "кспорт" in a or "ыгруз" in a or "xport" in a] == [
        "Выгрузить выбранные замеры в CSV (Excel)",
        "Выгрузить выбранные замеры в XLSX",
    ]
    assert list_overflow <= 0
    assert csv_lines[0].startswith("ID;Время наблюдения;")
    assert len(csv_lines) == 1 + 9  # the brand's nine observations, as filtered on screen
    assert phone_datasets == datasets
    assert phone_alerts_visible
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
