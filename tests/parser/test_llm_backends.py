"""The LLM backends against real HTTP upstreams on loopback; answer validation; redaction."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from parser.llm import openai, solve
from parser.llm.base import LLMRequest
from parser.llm.redact import redact, redact_headers
from parser.llm.validate import InvalidJSON, extract_json, merge, validate_answer
from parser.models import AttemptStatus, LLMUpstream, UpstreamKind
from parser.types import ParsedCard
from tests.parser.upstreams import busy, closed_port, fail, ok, raw, serve, slow

pytestmark = pytest.mark.django_db

ANSWER = {
    "title": "Плед флисовый 150×200",
    "current_price": 1299,
    "old_price": "2 600 ₽",
    "spp_price": 1180.0,
    "in_stock": True,
    "stock_quantity": 3,
    "rating": 4.8,
    "reviews_count": 12345,
    "sales_count": 1000,
}
REQUEST = LLMRequest(instructions="Extract the card.", page_text="Плед\n1 299 ₽", request_id="req1")


@pytest.fixture(autouse=True)
def no_backoff(settings) -> None:
    settings.PARSER_LLM_RETRY_BACKOFF = 0


def upstream(url: str, kind: str = UpstreamKind.SOLVE, **fields: Any) -> LLMUpstream:
    defaults: dict[str, Any] = {
        "name": f"{kind}-{LLMUpstream.objects.count() + 1}",
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "retries": 0,
        "model": "test-model",
    }
    return LLMUpstream.objects.create(kind=kind, base_url=url, **{**defaults, **fields})


def statuses(result) -> list[tuple[str, str, int | None]]:
    return [(a.upstream.name, a.status, a.http_status) for a in result.attempts]


# --- the solve pool ------------------------------------------------------------------------------


def test_solve_request_follows_the_upstream_contract() -> None:
    with serve([ok(ANSWER)]) as (server,):
        worker = upstream(server.url, profile_id="p1", max_chat_uses=5, force_new_chat=True)
        request = LLMRequest("Extract.", "Плед 1 299 ₽", "req1", prompt_external_id="wb-v2")
        result = solve.ask([worker], request)

    assert result.ok
    seen = server.requests[0]
    assert seen.path == "/v1/solve"
    assert seen.body["request_id"] == "req1-1"
    assert "Extract." in seen.body["input"]["text"]
    assert "Плед 1 299 ₽" in seen.body["input"]["text"]
    assert seen.body["options"] == {
        "prompt_id": "wb-v2",
        "profile_id": "p1",
        "force_new_chat": True,
        "max_chat_uses": 5,
    }
    assert result.attempts[0].upstream_job_id == "job-req1-1"
    assert result.validated.values["current_price"] == Decimal("1299.00")
    assert result.validated.values["old_price"] == Decimal("2600.00")


def test_a_fenced_answer_with_prose_is_extracted() -> None:
    text = 'Вот результат:\n```json\n{"current_price": "1 299,50", "in_stock": true}\n```\nГотово.'
    with serve([ok(text)]) as (server,):
        result = solve.ask([upstream(server.url)], REQUEST)

    assert result.ok
    assert result.validated.values == {"current_price": Decimal("1299.50"), "in_stock": True}


def test_it_goes_to_the_next_worker_at_once_after_423() -> None:
    with serve([busy()], [ok(ANSWER)]) as (first, second):
        workers = [upstream(first.url, retries=2), upstream(second.url)]
        result = solve.ask(workers, REQUEST)

    assert result.ok
    assert result.upstream == workers[1]
    assert statuses(result) == [
        ("solve-1", AttemptStatus.BUSY, 423),
        ("solve-2", AttemptStatus.OK, 200),
    ]
    assert len(first.requests) == 1  # a busy worker is not retried


def test_a_5xx_worker_is_retried_per_its_retries_then_the_next_one_answers() -> None:
    with serve([fail("UPSTREAM_ERROR", "model crashed")], [ok(ANSWER)]) as (first, second):
        workers = [upstream(first.url, retries=2), upstream(second.url)]
        result = solve.ask(workers, REQUEST)

    assert result.ok
    assert statuses(result) == [
        ("solve-1", AttemptStatus.HTTP_ERROR, 502),
        ("solve-1", AttemptStatus.HTTP_ERROR, 502),
        ("solve-1", AttemptStatus.HTTP_ERROR, 502),
        ("solve-2", AttemptStatus.OK, 200),
    ]
    assert result.attempts[0].error == "UPSTREAM_ERROR: model crashed"
    assert [a.attempt_no for a in result.attempts] == [1, 2, 3, 4]
    # every attempt carries its own request id
    assert [r.body["request_id"] for r in first.requests] == ["req1-1", "req1-2", "req1-3"]


def test_a_worker_recovering_on_retry_answers() -> None:
    with serve([fail("CONTAINER_BUSY"), ok(ANSWER)]) as (server,):
        result = solve.ask([upstream(server.url, retries=1)], REQUEST)

    assert result.ok
    assert [(a.status, a.http_status) for a in result.attempts] == [
        (AttemptStatus.HTTP_ERROR, 503),
        (AttemptStatus.OK, 200),
    ]


def test_invalid_request_is_not_retried() -> None:
    with serve([fail("INVALID_REQUEST", "bad options")]) as (server,):
        result = solve.ask([upstream(server.url, retries=3)], REQUEST)

    assert not result.ok
    assert statuses(result) == [("solve-1", AttemptStatus.HTTP_ERROR, 400)]
    assert "INVALID_REQUEST" in result.error


def test_ok_false_in_a_200_answer_is_an_error() -> None:
    with serve(
        [raw(200, '{"ok": false, "error": {"code": "INTERNAL_ERROR", "message": "x"}}')]
    ) as (server,):
        result = solve.ask([upstream(server.url, retries=1)], REQUEST)

    assert [a.status for a in result.attempts] == [AttemptStatus.HTTP_ERROR] * 2
    assert result.attempts[0].error == "INTERNAL_ERROR: x"


def test_a_slow_worker_times_out_per_its_read_timeout_and_is_retried() -> None:
    with serve([slow(1.0, ok(ANSWER))], [ok(ANSWER)]) as (slow_one, fast):
        workers = [upstream(slow_one.url, read_timeout=0.3, retries=1), upstream(fast.url)]
        result = solve.ask(workers, REQUEST)

    assert result.ok
    assert statuses(result) == [
        ("solve-1", AttemptStatus.TIMEOUT, None),
        ("solve-1", AttemptStatus.TIMEOUT, None),
        ("solve-2", AttemptStatus.OK, 200),
    ]
    assert all(250 <= a.duration_ms < 1000 for a in result.attempts[:2])
    assert "ReadTimeout" in result.attempts[0].error


def test_no_attempt_starts_after_the_total_budget(settings) -> None:
    settings.PARSER_LLM_TOTAL_BUDGET = 0.5
    with serve([slow(1.0)], [ok(ANSWER)]) as (slow_one, fast):
        workers = [upstream(slow_one.url, read_timeout=0.3, retries=5), upstream(fast.url)]
        result = solve.ask(workers, REQUEST)

    assert not result.ok
    assert [a.status for a in result.attempts] == [AttemptStatus.TIMEOUT] * 2
    assert fast.requests == []
    assert result.error.startswith("gave up after 0.5 s")


def test_a_refused_connection_is_an_error_and_is_retried() -> None:
    worker = upstream(f"http://127.0.0.1:{closed_port()}", retries=1)
    result = solve.ask([worker], REQUEST)

    assert not result.ok
    assert [a.status for a in result.attempts] == [AttemptStatus.ERROR] * 2
    assert "ConnectError" in result.attempts[0].error


def test_an_answer_without_json_moves_on_to_the_next_worker() -> None:
    with serve([ok("Извините, не могу помочь.")], [ok(ANSWER)]) as (first, second):
        workers = [upstream(first.url, retries=2), upstream(second.url)]
        result = solve.ask(workers, REQUEST)

    assert result.ok
    assert statuses(result)[0] == ("solve-1", AttemptStatus.INVALID_JSON, 200)
    assert len(first.requests) == 1


def test_a_body_that_is_not_json_is_invalid_json() -> None:
    with serve([raw(200, "<html>gateway</html>")]) as (server,):
        result = solve.ask([upstream(server.url)], REQUEST)

    assert statuses(result) == [("solve-1", AttemptStatus.INVALID_JSON, 200)]


def test_wrong_types_without_a_valid_price_are_an_invalid_answer() -> None:
    with serve([ok({"current_price": "abc", "rating": 9, "in_stock": True})]) as (server,):
        result = solve.ask([upstream(server.url)], REQUEST)

    assert not result.ok
    attempt = result.attempts[0]
    assert attempt.status == AttemptStatus.INVALID_ANSWER
    assert "current_price" in attempt.error
    assert "rating" in attempt.error


def test_without_enabled_upstreams_there_is_no_answer() -> None:
    result = solve.ask([], REQUEST)
    assert not result.ok
    assert result.attempts == []
    assert "no enabled upstream" in result.error


# --- the OpenAI-compatible backend ---------------------------------------------------------------


def test_openai_request_has_bearer_key_json_mode_and_temperature_zero(monkeypatch) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test-0123456789abcdef")
    with serve([ok(ANSWER)]) as (server,):
        api = upstream(server.openai_url, UpstreamKind.OPENAI, api_key_env="TEST_LLM_KEY")
        result = openai.ask([api], REQUEST)

    assert result.ok
    seen = server.requests[0]
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-test-0123456789abcdef"
    assert seen.body["model"] == "test-model"
    assert seen.body["temperature"] == 0
    assert seen.body["response_format"] == {"type": "json_object"}
    assert seen.body["messages"][0] == {"role": "system", "content": "Extract the card."}
    assert seen.body["messages"][1] == {"role": "user", "content": "Плед\n1 299 ₽"}
    assert result.validated.values["rating"] == Decimal("4.80")


def test_openai_page_text_is_truncated(settings) -> None:
    settings.PARSER_LLM_MAX_PAGE_CHARS = 10
    with serve([ok(ANSWER)]) as (server,):
        request = LLMRequest("x", "0123456789abcdef", "r")
        openai.ask([upstream(server.openai_url, UpstreamKind.OPENAI)], request)

    assert server.requests[0].body["messages"][1]["content"] == "0123456789"


def test_openai_rate_limit_is_busy_and_5xx_is_retried() -> None:
    script = [raw(429, '{"error": {"message": "slow down", "code": "rate_limit"}}')]
    with serve(script, [fail(status=500)], [ok(ANSWER)]) as (limited, broken, good):
        apis = [
            upstream(limited.openai_url, UpstreamKind.OPENAI, retries=2),
            upstream(broken.openai_url, UpstreamKind.OPENAI, retries=1),
            upstream(good.openai_url, UpstreamKind.OPENAI),
        ]
        result = openai.ask(apis, REQUEST)

    assert result.ok
    assert [(a.status, a.http_status) for a in result.attempts] == [
        (AttemptStatus.BUSY, 429),
        (AttemptStatus.HTTP_ERROR, 500),
        (AttemptStatus.HTTP_ERROR, 500),
        (AttemptStatus.OK, 200),
    ]
    assert result.attempts[0].error == "rate_limit: slow down"


def test_openai_answer_without_choices_is_invalid_json() -> None:
    with serve([raw(200, '{"object": "chat.completion", "choices": []}')]) as (server,):
        result = openai.ask([upstream(server.openai_url, UpstreamKind.OPENAI)], REQUEST)

    assert statuses(result) == [("openai-1", AttemptStatus.INVALID_JSON, 200)]


# --- redaction -----------------------------------------------------------------------------------


def test_logs_and_recorded_errors_never_show_the_api_key(monkeypatch, caplog) -> None:
    secret = "sk-live-SUPERSECRET0123456789"
    monkeypatch.setenv("TEST_LLM_KEY", secret)
    # OpenAI echoes a wrong key back in its error message; so may a proxy.
    echo = (
        '{"error": {"message": "Incorrect API key provided: '
        + secret
        + ' via http://bob:hunter2@proxy.local:3128", "code": "invalid_api_key"}}'
    )
    caplog.set_level(logging.DEBUG, logger="parser.llm")
    with serve([raw(401, echo)]) as (server,):
        api = upstream(server.openai_url, UpstreamKind.OPENAI, api_key_env="TEST_LLM_KEY")
        result = openai.ask([api], REQUEST)

    attempt = result.attempts[0]
    assert (attempt.status, attempt.http_status) == (AttemptStatus.HTTP_ERROR, 401)
    assert server.requests[0].headers["authorization"] == f"Bearer {secret}"
    for text in (caplog.text, attempt.error, result.error):
        assert secret not in text
        assert "SUPERSECRET" not in text
        assert "hunter2" not in text
    assert "http://bob:***@proxy.local:3128" in attempt.error
    assert "Authorization" in caplog.text  # the request was logged, with the header masked
    assert "llm attempt" in caplog.text


def test_redact_masks_bearer_tokens_keys_and_proxy_passwords() -> None:
    assert redact("Authorization: Bearer abc.DEF-123") == "Authorization: Bearer ***"
    assert redact("key sk-proj-AbC_123456789 leaked") == "key sk-*** leaked"
    assert redact("GET /v1/models?key=AIzaSy123&x=1") == "GET /v1/models?key=***&x=1"
    assert redact("api_key=abc123 password=hunter2") == "api_key=*** password=***"
    assert redact('{"api_key": "abc", "token": "t0k"}') == '{"api_key": "***", "token": "***"}'
    assert (
        redact("proxy http://user:p%40ss@10.0.0.1:8080/") == "proxy http://user:***@10.0.0.1:8080/"
    )
    assert redact("socks5://u:pw@host") == "socks5://u:***@host"
    assert redact("nothing secret: monkey=2 http://host:8080/x") == (
        "nothing secret: monkey=2 http://host:8080/x"
    )
    assert redact("opaque-key-value here", secrets=["opaque-key-value"]) == "*** here"


def test_redact_headers_masks_credential_headers() -> None:
    headers = {"Authorization": "Bearer x", "X-Api-Key": "k", "Content-Type": "application/json"}
    assert redact_headers(headers) == {
        "Authorization": "***",
        "X-Api-Key": "***",
        "Content-Type": "application/json",
    }


# --- answer validation and merging ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"current_price": 1}', {"current_price": 1}),
        ('```json\n{"a": {"b": 1}}\n```', {"a": {"b": 1}}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('Ответ: {"a": "}"} — всё.', {"a": "}"}),
        ('[1, 2] and then {"a": 2}', {"a": 2}),
    ],
)
def test_extract_json_finds_the_first_object(text: str, expected: dict) -> None:
    assert extract_json(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "no json", "[1, 2]", "{broken"])
def test_extract_json_refuses_answers_without_an_object(text: str) -> None:
    with pytest.raises(InvalidJSON):
        extract_json(text)


def test_validation_coerces_types_and_quantizes_prices() -> None:
    result = validate_answer(
        {
            "Price": "1 299,999 руб.",
            "old_price": 2600,
            "wallet_price": "1\u202f180 ₽",
            "in_stock": "true",
            "stock_quantity": 3.0,
            "rating": "4,85",
            "reviews": "12 345",
            "sales_count": None,
            "unknown": "ignored",
        }
    )
    assert result.values == {
        "current_price": Decimal("1300.00"),
        "old_price": Decimal("2600.00"),
        "spp_price": Decimal("1180.00"),
        "in_stock": True,
        "stock_quantity": 3,
        "rating": Decimal("4.85"),
        "reviews_count": 12345,
    }
    assert result.problems == {}
    assert result.complete


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("current_price", "abc"),
        ("current_price", 0),
        ("current_price", -5),
        ("current_price", 100_000_000),
        ("current_price", True),
        ("current_price", [1]),
        ("rating", 9),
        ("rating", -1),
        ("rating", "n/a"),
        ("reviews_count", -1),
        ("reviews_count", 2.5),
        ("reviews_count", True),
        ("stock_quantity", "many"),
        ("stock_quantity", float("inf")),
        ("in_stock", "maybe"),
        ("title", ""),
        ("title", 42),
    ],
)
def test_validation_drops_wrong_types_and_ranges(field: str, value: Any) -> None:
    result = validate_answer(
        {field: value, "in_stock": False} if field != "in_stock" else {field: value}
    )
    assert field not in result.values
    assert field in result.problems


def test_validation_drops_prices_that_contradict_the_price() -> None:
    result = validate_answer({"current_price": 1000, "old_price": 900, "spp_price": 1100})
    assert result.values == {"current_price": Decimal("1000.00")}
    assert set(result.problems) == {"old_price", "spp_price"}


def test_an_answer_without_price_is_complete_only_when_out_of_stock() -> None:
    assert not validate_answer({"title": "x", "in_stock": True}).complete
    assert validate_answer({"title": "x", "in_stock": False}).complete
    assert validate_answer({"product": {"price": 10}}).complete  # a wrapped object


def test_merge_prefers_valid_llm_values_and_fills_gaps_from_rules() -> None:
    rules = ParsedCard(
        title="Плед",
        current_price=Decimal("1299"),
        old_price=Decimal("900"),  # contradicts the LLM price: dropped, not mixed in
        rating=Decimal("4.8"),
        reviews_count=10,
        seller_name="ИП Иванов",
        found=frozenset({"title", "current_price", "old_price", "rating", "reviews_count"}),
    )
    llm = validate_answer({"current_price": 1350, "rating": 9, "sales_count": 7})
    merged = merge(llm, rules, "solve")

    card = merged.card
    assert card.current_price == Decimal("1350.00")
    assert card.rating == Decimal("4.8")  # the LLM's 9 was invalid
    assert card.sales_count == 7
    assert card.title == "Плед"
    assert card.old_price is None
    assert card.seller_name == "ИП Иванов"
    assert card.backend == "solve"
    assert merged.sources == {
        "title": "rules",
        "current_price": "llm",
        "rating": "rules",
        "reviews_count": "rules",
        "sales_count": "llm",
    }
    assert "old_price" in merged.dropped
    assert card.found == frozenset(
        {"title", "current_price", "rating", "reviews_count", "sales_count"}
    )


def test_merge_without_rules_uses_the_llm_answer_alone() -> None:
    merged = merge(validate_answer({"in_stock": False}), None, "openai")
    assert merged.card.in_stock is False
    assert merged.card.current_price is None
    assert merged.sources == {"in_stock": "llm"}
