"""Hostile and pathological pages: parsing is bounded (depth, size) and grows linearly.

Issue 19's findings: a few KB of deeply nested HTML or JSON raised ``RecursionError`` (the
report was lost, the task stuck in progress), and a few hundred KB of simple markup took tens of
seconds. Every such page must end in a result or a :class:`ParseError`, which the report flow
stores as the task's parse error. Timing belongs in ``bench/parser_speed.py``; the 300 KB cases
below took minutes before the fix (the suite's timeout fails them), milliseconds after.
"""

from __future__ import annotations

import json

import pytest

from parser.rules import MAX_PAGE_CHARS, parse_rules
from parser.rules.html import MAX_DEPTH, too_deep
from parser.rules.text import normalise
from parser.types import ParsedCard, ParseError, ParseErrorCode
from tests.factories import TaskFactory
from watcher.models import PriceHistory, TaskOutcome, TaskReport, TaskStatus
from watcher.services import queues

SIZE = 300_000  # "a few hundred KB"
PRODUCT = "<h1>Плед флисовый</h1><div>1 299 ₽</div><button>Добавить в корзину</button>"


def page(body: str) -> str:
    return f"<html><body>{PRODUCT}{body}</body></html>"


def parse_or_error(raw: str, marketplace: str = "ozon") -> ParsedCard | ParseError:
    try:
        return parse_rules(raw, marketplace, "1")
    except ParseError as exc:
        return exc


# --- depth --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 5_000 + "]" * 5_000,
        '{"a":' * 3_000 + "1" + "}" * 3_000,
        '{"widgetStates": ' + '{"a":' * 3_000 + "1" + "}" * 3_001,
    ],
    ids=["array", "object", "inside-widget-states"],
)
def test_deeply_nested_json_is_a_parse_error(raw: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_rules(raw, "wildberries", "1")
    assert caught.value.code == ParseErrorCode.UNPARSEABLE


@pytest.mark.parametrize(
    "nest",
    ["<div>", "<span>", "<dl><dt>k<dd>v", "<ul><li>x", "<section><article>"],
)
def test_deeply_nested_html_is_a_parse_error(nest: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_rules(page(nest * 5_000), "ozon", "1")
    assert caught.value.code == ParseErrorCode.UNPARSEABLE
    assert "nested too deeply" in caught.value.message


def test_a_nested_widget_state_is_skipped_and_the_rest_is_read() -> None:
    deep = '{"a":' * 3_000 + "1" + "}" * 3_000
    doc = {
        "widgetStates": {
            "webPrice-3121879-default-1": json.dumps({"price": "1 299 ₽", "isAvailable": True}),
            "webAspects-1-default-1": deep,
        }
    }
    card = parse_rules(json.dumps(doc), "ozon", "1")
    assert card.current_price == 1299


def test_a_nested_ld_json_is_skipped_and_the_page_is_read() -> None:
    deep = "[" * 5_000 + "]" * 5_000
    card = parse_rules(
        page(f'<script type="application/ld+json">{deep}</script>'), "yandex_market", "1"
    )
    assert (card.title, card.current_price) == ("Плед флисовый", 1299)


def test_the_depth_estimate_ignores_what_does_not_nest() -> None:
    # Siblings, void and self-closing elements, unclosed <p>/<li> and script text do not nest.
    flat = "<div>a</div>" * 2_000 + "<img><br><input>" * 500 + "<p>x<li>y" * 1_000
    svg = "<svg>" + '<path d="M0 0"/>' * 2_000 + "</svg>"
    script = "<script>" + "var s = '<div>';" * 2_000 + "</script>"
    for raw in (flat, svg, script):
        assert not too_deep(page(raw))
    assert too_deep(page("<div>" * (MAX_DEPTH + 1)))
    assert not too_deep(page("<div>" * (MAX_DEPTH - 10)))


def test_a_page_over_the_size_limit_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_rules("x" * (MAX_PAGE_CHARS + 1), "ozon", "1")
    assert caught.value.code == ParseErrorCode.UNPARSEABLE


# --- linear time --------------------------------------------------------------------------


def test_normalising_a_long_run_of_spaces_keeps_tabs_and_collapses_spaces() -> None:
    assert normalise("a" + " " * SIZE + "b") == "a b"
    assert normalise("key  \t  \t value") == "key\tvalue"


@pytest.mark.parametrize(
    "raw",
    [
        "Плед\n1 299 ₽\n" + "a" + " " * SIZE + "b",  # text: a run of spaces
        page("<p>a" + " " * SIZE + "b</p>"),  # html: the same inside a paragraph
        page("<p>a \t" + " \t" * (SIZE // 2) + "b</p>"),  # spaces and tabs
        page("<dl><dt>k<dd>v" * (MAX_DEPTH // 4) + "<p>Цена 1 ₽</p>" * (SIZE // 16)),
        page("<table>" + "<tr><td>k</td><td>v</td></tr>" * (SIZE // 27) + "</table>"),
        page("<div>строка текста</div>\n" * (SIZE // 25)),
        page("<ul>" + "<li>товар 1 ₽" * (SIZE // 13) + "</ul>"),
        page("<b>1 ₽</b>" * (SIZE // 10)),
        "\n".join(["4,5"] * (SIZE // 4)),
        "\n".join(["Похожие товары", "Характеристики"] * (SIZE // 30)),
    ],
    ids=["text-spaces", "html-spaces", "tabs", "dl", "table", "div", "li", "inline", "ratings",
         "headings"],
)  # fmt: skip
def test_a_few_hundred_kb_of_simple_markup_gives_a_result(raw: str) -> None:
    result = parse_or_error(raw)
    assert isinstance(result, ParsedCard | ParseError)
    if raw.startswith("<html>"):
        assert isinstance(result, ParsedCard)
        assert result.title == "Плед флисовый"


# --- through the report API ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("nest", ["<div>", "["])
def test_a_report_with_deeply_nested_text_is_stored_as_a_parse_error(agent, nest: str) -> None:
    task = TaskFactory()
    queues.push([(str(task.pk), task.marketplace, task.priority)])
    assert agent.client.get("/api/v1/watcher/tasks/next").status_code == 200
    raw = nest * 5_000
    response = agent.client.post(
        f"/api/v1/watcher/tasks/{task.pk}/report",
        {"raw_text": raw, "timing_ms": 1500, "success": True, "error": None},
        format="json",
    )
    assert response.status_code == 200, response.content
    task.refresh_from_db()
    assert (task.status, task.outcome) == (TaskStatus.PARSE_ERROR, TaskOutcome.PARSE_FAILED)
    assert "nested too deeply" in task.error
    assert TaskReport.objects.get(task=task).raw_text == raw
    assert not PriceHistory.objects.filter(task=task).exists()
