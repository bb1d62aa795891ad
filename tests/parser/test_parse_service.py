"""``parse()`` with its backend routes, job records, the report endpoint, admin and tasks."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from parser import services
from parser.models import (
    AttemptStatus,
    Backend,
    BackendRoute,
    JobStatus,
    LLMUpstream,
    ParseAttempt,
    ParseJob,
    Prompt,
    UpstreamKind,
)
from parser.services import is_slow_backend, parse, parse_with
from parser.types import Marketplace, ParseError, ParseErrorCode
from tests.parser.upstreams import busy, ok, serve, slow
from tests.watcher.pages import CAPTCHA_PAGE, WB_PAGE

pytestmark = pytest.mark.django_db

WB = Marketplace.WILDBERRIES
SKU = "176308673"
ANSWER = {"title": "Плед флисовый", "current_price": 1299, "old_price": 2600, "in_stock": True}
NO_PRICE_PAGE = "Wildberries\nПлед флисовый 150×200\nДобавить в корзину\n"
REPORT = "/api/v1/parser/jobs/report"


@pytest.fixture(autouse=True)
def fresh_routes(settings) -> Any:
    settings.PARSER_LLM_RETRY_BACKOFF = 0
    services.clear_route_cache()
    yield
    services.clear_route_cache()


def rules_card(text: str = WB_PAGE):
    from parser.rules import parse_rules

    return parse_rules(text, WB, SKU)


def upstream(url: str, kind: str = UpstreamKind.SOLVE, **fields: Any) -> LLMUpstream:
    defaults: dict[str, Any] = {
        "name": f"{kind}-{LLMUpstream.objects.count() + 1}",
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "retries": 0,
        "model": "m",
    }
    return LLMUpstream.objects.create(kind=kind, base_url=url, **{**defaults, **fields})


def route(backend: str, marketplace: str = WB, prompt: Prompt | None = None) -> BackendRoute:
    obj, _created = BackendRoute.objects.update_or_create(
        marketplace=marketplace, defaults={"backend": backend, "prompt": prompt}
    )
    return obj


# --- routing -------------------------------------------------------------------------------------


def test_without_a_route_the_rules_parse_and_nothing_is_recorded() -> None:
    card = parse(WB_PAGE, WB, SKU)

    assert card.backend == "rules"
    assert card == rules_card()
    assert not ParseJob.objects.exists()


def test_is_slow_backend_follows_the_route_and_sees_a_saved_change() -> None:
    assert not is_slow_backend(WB)
    saved = route(Backend.SOLVE)
    assert is_slow_backend(WB)
    assert not is_slow_backend(Marketplace.OZON)
    saved.backend = Backend.RULES
    saved.save()
    assert not is_slow_backend(WB)
    route(Backend.OPENAI)
    BackendRoute.objects.all().delete()
    assert not is_slow_backend(WB)


def test_routes_are_read_at_most_once_per_interval(django_assert_num_queries) -> None:
    route(Backend.OPENAI)
    assert is_slow_backend(WB)
    with django_assert_num_queries(0):
        for _ in range(100):
            assert is_slow_backend(WB)
            assert services.get_route(Marketplace.OZON).backend == Backend.RULES


def test_parse_with_refuses_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown parser backend"):
        parse_with("gpt", WB_PAGE, WB, SKU)


# --- LLM runs ------------------------------------------------------------------------------------


def test_a_solve_route_uses_the_llm_answer_and_records_the_job() -> None:
    route(Backend.SOLVE)
    task_id = uuid.uuid4()
    with serve([ok(ANSWER)]) as (server,):
        worker = upstream(server.url)
        card = parse(WB_PAGE, WB, SKU, task_id=task_id)

    assert card.backend == "solve"
    assert card.current_price == Decimal("1299.00")
    assert card.old_price == Decimal("2600.00")
    assert card.title == "Плед флисовый"
    job = ParseJob.objects.get()
    assert (job.status, job.backend, job.upstream, job.task_id) == (
        JobStatus.OK,
        Backend.SOLVE,
        worker,
        task_id,
    )
    assert (job.marketplace, job.sku, job.error) == (WB, SKU, "")
    assert job.finished_at >= job.started_at
    assert job.result["card"]["current_price"] == "1299.00"
    assert job.result["sources"]["current_price"] == "llm"
    assert job.result["answer"] == ANSWER
    attempt = job.attempts.get()
    assert (attempt.upstream, attempt.status, attempt.http_status, attempt.attempt_no) == (
        worker,
        AttemptStatus.OK,
        200,
        1,
    )
    assert attempt.upstream_job_id == f"job-{job.request_id}-1"


def test_an_openai_route_uses_the_openai_upstreams_only() -> None:
    route(Backend.OPENAI)
    with serve([ok(ANSWER)], [ok(ANSWER)]) as (solve_server, api_server):
        upstream(solve_server.url)
        api = upstream(api_server.openai_url, UpstreamKind.OPENAI)
        card = parse(WB_PAGE, WB, SKU)

    assert card.backend == "openai"
    assert solve_server.requests == []
    assert ParseJob.objects.get().upstream == api


def test_an_invalid_llm_answer_falls_back_to_the_rules_result() -> None:
    route(Backend.SOLVE)
    with serve([ok("Sorry, I can't read this page.")]) as (server,):
        worker = upstream(server.url)
        card = parse(WB_PAGE, WB, SKU)

    assert card == rules_card()
    assert card.backend == "rules"
    job = ParseJob.objects.get()
    assert job.status == JobStatus.FALLBACK
    assert job.upstream is None
    assert "no JSON object" in job.error
    assert list(job.attempts.values_list("upstream", "status", "http_status")) == [
        (worker.pk, AttemptStatus.INVALID_JSON, 200)
    ]


def test_wrong_types_in_the_answer_are_replaced_by_rules_values() -> None:
    route(Backend.SOLVE)
    expected = rules_card()
    with serve([ok({"current_price": "1350", "rating": 9, "reviews_count": "many"})]) as _:
        upstream(_[0].url)
        card = parse(WB_PAGE, WB, SKU)

    assert card.current_price == Decimal("1350.00")
    assert card.rating == expected.rating
    assert card.reviews_count == expected.reviews_count
    job = ParseJob.objects.get()
    assert job.status == JobStatus.OK
    assert set(job.result["problems"]) == {"rating", "reviews_count"}
    assert job.result["sources"]["current_price"] == "llm"
    if expected.rating is not None:
        assert job.result["sources"]["rating"] == "rules"


def test_an_answer_with_bad_price_types_falls_back_to_rules() -> None:
    route(Backend.SOLVE)
    with serve([ok({"current_price": "abc", "rating": 9})]) as (server,):
        upstream(server.url)
        card = parse(WB_PAGE, WB, SKU)

    assert card == rules_card()
    job = ParseJob.objects.get()
    assert job.status == JobStatus.FALLBACK
    assert job.attempts.get().status == AttemptStatus.INVALID_ANSWER


def test_busy_and_slow_workers_fall_back_with_every_attempt_recorded() -> None:
    route(Backend.SOLVE)
    with serve([busy()], [slow(1.0, ok(ANSWER))]) as (busy_one, slow_one):
        first = upstream(busy_one.url, retries=3, priority=1)
        second = upstream(slow_one.url, read_timeout=0.3, retries=1, priority=2)
        card = parse(WB_PAGE, WB, SKU)

    assert card.backend == "rules"
    job = ParseJob.objects.get()
    assert job.status == JobStatus.FALLBACK
    assert list(
        job.attempts.order_by("attempt_no").values_list(
            "attempt_no", "upstream", "status", "http_status"
        )
    ) == [
        (1, first.pk, AttemptStatus.BUSY, 423),
        (2, second.pk, AttemptStatus.TIMEOUT, None),
        (3, second.pk, AttemptStatus.TIMEOUT, None),
    ]
    assert job.duration_ms >= 600


def test_disabled_upstreams_are_skipped_and_priority_orders_the_pool() -> None:
    route(Backend.SOLVE)
    with serve([ok(ANSWER)], [ok(ANSWER)], [ok(ANSWER)]) as (off, late, early):
        upstream(off.url, enabled=False, priority=0)
        upstream(late.url, priority=20)
        chosen = upstream(early.url, priority=10)
        parse(WB_PAGE, WB, SKU)

    assert (len(off.requests), len(late.requests), len(early.requests)) == (0, 0, 1)
    assert ParseJob.objects.get().upstream == chosen


def test_without_upstreams_an_llm_route_falls_back_to_rules() -> None:
    route(Backend.OPENAI)
    card = parse(WB_PAGE, WB, SKU)

    assert card == rules_card()
    job = ParseJob.objects.get()
    assert job.status == JobStatus.FALLBACK
    assert "no enabled upstream" in job.error


def test_the_llm_can_read_a_page_the_rules_cannot() -> None:
    route(Backend.SOLVE)
    with serve([ok({"current_price": 990, "in_stock": True})]) as (server,):
        upstream(server.url)
        card = parse(NO_PRICE_PAGE, WB, SKU)

    assert card.current_price == Decimal("990.00")
    assert ParseJob.objects.get().status == JobStatus.OK


def test_no_price_from_llm_or_rules_raises_and_records_a_failed_job() -> None:
    route(Backend.SOLVE)
    with serve([ok({"title": "Плед", "in_stock": True})]) as (server,):
        upstream(server.url)
        with pytest.raises(ParseError) as caught:
            parse(NO_PRICE_PAGE, WB, SKU)

    assert caught.value.code == ParseErrorCode.UNPARSEABLE
    job = ParseJob.objects.get()
    assert job.status == JobStatus.FAILED
    assert job.attempts.get().status == AttemptStatus.INVALID_ANSWER


def test_a_captcha_page_is_not_sent_to_the_llm() -> None:
    route(Backend.SOLVE)
    with serve([ok(ANSWER)]) as (server,):
        upstream(server.url)
        with pytest.raises(ParseError) as caught:
            parse(CAPTCHA_PAGE, WB, SKU)

    assert caught.value.code == ParseErrorCode.BLOCKED
    assert server.requests == []
    job = ParseJob.objects.get()
    assert job.status == JobStatus.FAILED
    assert not job.attempts.exists()


def test_parse_with_overrides_the_route() -> None:
    route(Backend.RULES)
    with serve([ok(ANSWER)]) as (server,):
        upstream(server.url)
        card = parse_with(Backend.SOLVE, WB_PAGE, WB, SKU, task_id=str(uuid.uuid4()))

    assert card.backend == "solve"
    assert ParseJob.objects.get().backend == Backend.SOLVE
    route(Backend.SOLVE)
    assert parse_with(Backend.RULES, WB_PAGE, WB, SKU).backend == "rules"
    assert ParseJob.objects.count() == 1


# --- prompts -------------------------------------------------------------------------------------


def test_the_route_prompt_is_sent_and_recorded() -> None:
    prompt = Prompt.objects.create(name="wb", marketplace=WB, text="Читай карточку WB.")
    prompt.text = "Читай карточку WB внимательно."
    prompt.save()
    prompt.external_id = "wb-card"
    prompt.save()
    Prompt.objects.create(name="general", text="General prompt.")
    route(Backend.SOLVE, prompt=prompt)
    with serve([ok(ANSWER)]) as (server,):
        upstream(server.url)
        parse(WB_PAGE, WB, SKU)

    body = server.requests[0].body
    assert body["input"]["text"].startswith("Читай карточку WB внимательно.")
    assert '"current_price"' in body["input"]["text"]  # the field list is appended
    assert body["options"]["prompt_id"] == "wb-card"
    job = ParseJob.objects.get()
    assert (job.prompt, job.prompt_version) == (prompt, 2)
    assert job.attempts.get().prompt == prompt


def test_without_a_route_prompt_the_marketplace_then_general_then_builtin_prompt_is_used() -> None:
    route(Backend.OPENAI)
    general = Prompt.objects.create(name="general", text="General prompt.")
    Prompt.objects.create(name="ozon", marketplace=Marketplace.OZON, text="Ozon prompt.")
    with serve([ok(ANSWER)]) as (server,):
        upstream(server.openai_url, UpstreamKind.OPENAI)
        parse(WB_PAGE, WB, SKU)
        general.is_active = False
        general.save()
        parse(WB_PAGE, WB, SKU)

    systems = [r.body["messages"][0]["content"] for r in server.requests]
    assert systems[0].startswith("General prompt.")
    assert "Wildberries" in systems[1]
    assert '"current_price"' in systems[1]
    assert list(ParseJob.objects.order_by("id").values_list("prompt", flat=True)) == [
        general.pk,
        None,
    ]


def test_prompt_version_increments_only_when_its_text_changes() -> None:
    prompt = Prompt.objects.create(name="p", text="one")
    assert prompt.version == 1
    prompt.is_active = False
    prompt.save()
    prompt.refresh_from_db()
    assert prompt.version == 1
    prompt.text = "two"
    prompt.save(update_fields=["text"])
    prompt.refresh_from_db()
    assert prompt.version == 2


# --- the report endpoint -------------------------------------------------------------------------


def staff_client(role: str | None = "manager") -> APIClient:
    user = User.objects.create_user(f"user-{User.objects.count()}", password="x")
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def report_data() -> dict[str, Any]:
    now = timezone.now()
    solver = LLMUpstream.objects.create(name="solver", kind=UpstreamKind.SOLVE, base_url="http://s")
    gpt = LLMUpstream.objects.create(name="gpt", kind=UpstreamKind.OPENAI, base_url="http://o")
    prompt = Prompt.objects.create(name="wb", text="x")

    def job(minutes_ago: int, status: str, duration: int, prompt_obj, attempts) -> ParseJob:
        started = now - timedelta(minutes=minutes_ago)
        created = ParseJob.objects.create(
            marketplace=WB,
            sku=SKU,
            backend=Backend.SOLVE,
            status=status,
            prompt=prompt_obj,
            started_at=started,
            duration_ms=duration,
        )
        for number, (up, attempt_status, http, ms) in enumerate(attempts, 1):
            ParseAttempt.objects.create(
                job=created,
                upstream=up,
                attempt_no=number,
                status=attempt_status,
                http_status=http,
                duration_ms=ms,
            )
        return created

    job(30, JobStatus.OK, 100, prompt, [(solver, AttemptStatus.OK, 200, 100)])
    job(
        20,
        JobStatus.FALLBACK,
        300,
        prompt,
        [(solver, AttemptStatus.BUSY, 423, 10), (solver, AttemptStatus.HTTP_ERROR, 502, 200)],
    )
    job(10, JobStatus.FAILED, 50, None, [(gpt, AttemptStatus.TIMEOUT, None, 40)])
    job(3 * 24 * 60, JobStatus.OK, 999, prompt, [(solver, AttemptStatus.OK, 200, 999)])
    return {"now": now, "solver": solver, "gpt": gpt, "prompt": prompt}


def test_the_report_gives_figures_per_upstream_and_per_prompt(report_data) -> None:
    response = staff_client().get(REPORT, {"limit": 2, "offset": 1})

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["totals"]["jobs"] == 3
    assert data["totals"]["attempts"] == 4
    assert data["totals"]["by_status"] == {"ok": 1, "fallback": 1, "failed": 1}
    upstreams = {u["name"]: u for u in data["upstreams"]}
    assert upstreams["solver"]["attempts"] == 3
    assert upstreams["solver"]["by_status"]["ok"] == 1
    assert upstreams["solver"]["by_status"]["busy"] == 1
    assert upstreams["solver"]["by_status"]["http_error"] == 1
    assert upstreams["solver"]["errors"] == 2
    assert upstreams["solver"]["http_statuses"] == {"423": 1, "502": 1}
    assert (upstreams["solver"]["avg_ms"], upstreams["solver"]["p95_ms"]) == (103, 200)
    assert upstreams["gpt"]["by_status"]["timeout"] == 1
    assert (upstreams["gpt"]["avg_ms"], upstreams["gpt"]["p95_ms"]) == (40, 40)
    prompts = {p["name"]: p for p in data["prompts"]}
    assert prompts["wb"]["jobs"] == 2
    assert prompts["wb"]["by_status"] == {"ok": 1, "fallback": 1, "failed": 0}
    assert prompts["wb"]["errors"] == 1
    assert (prompts["wb"]["avg_ms"], prompts["wb"]["p95_ms"]) == (200, 300)
    assert prompts[None]["by_status"]["failed"] == 1
    jobs = data["jobs"]
    assert (jobs["count"], jobs["limit"], jobs["offset"]) == (3, 2, 1)
    assert [j["status"] for j in jobs["results"]] == ["fallback", "ok"]
    assert jobs["results"][0]["attempts"] == 2


def test_the_report_honours_from_and_to(report_data) -> None:
    now = report_data["now"]
    start = (now - timedelta(days=4)).isoformat()
    end = (now - timedelta(minutes=15)).isoformat()
    response = staff_client("director").get(REPORT, {"from": start, "to": end})

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["totals"]["jobs"] == 3  # the old one and the two of 30 and 20 minutes ago
    assert {u["name"] for u in data["upstreams"]} == {"solver"}


def test_the_report_accepts_an_unencoded_plus_in_the_offset(report_data) -> None:
    response = staff_client().get(
        f"{REPORT}?from=2020-01-01T00:00:00+03:00&to=2099-01-01T00:00:00Z"
    )
    assert response.status_code == 200, response.content
    assert response.json()["totals"]["jobs"] == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2025-13-45T00:00:00"}, "to"),
        ({"from": "2025-02-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "from"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_the_report_refuses_bad_parameters_with_400(query: dict, field: str) -> None:
    response = staff_client().get(REPORT, query)
    assert response.status_code == 400
    assert field in response.json()


def test_the_report_is_for_staff_only() -> None:
    assert APIClient().get(REPORT).status_code in (401, 403)
    assert staff_client(role=None).get(REPORT).status_code == 403
    assert staff_client("admin").get(REPORT).status_code == 200


# --- admin ---------------------------------------------------------------------------------------


def test_admin_pages_render_and_never_show_the_api_key(admin_client, monkeypatch) -> None:
    secret = "sk-admin-visible-0123456789"
    monkeypatch.setenv("ADMIN_TEST_KEY", secret)
    solver = LLMUpstream.objects.create(
        name="solver", kind=UpstreamKind.SOLVE, base_url="http://s", api_key_env="ADMIN_TEST_KEY"
    )
    prompt = Prompt.objects.create(name="wb", text="Читай.")
    route(Backend.SOLVE, prompt=prompt)
    job = ParseJob.objects.create(marketplace=WB, sku=SKU, backend=Backend.SOLVE, status="ok")
    ParseAttempt.objects.create(job=job, upstream=solver, attempt_no=1, status="busy")

    pages = [
        "/admin/parser/llmupstream/",
        f"/admin/parser/llmupstream/{solver.pk}/change/",
        "/admin/parser/prompt/",
        f"/admin/parser/prompt/{prompt.pk}/change/",
        "/admin/parser/backendroute/",
        "/admin/parser/parsejob/",
        "/admin/parser/parsejob/?status__exact=ok&backend__exact=solve",
        f"/admin/parser/parsejob/{job.pk}/change/",
        "/admin/parser/parseattempt/",
        "/admin/parser/parsejob/summary/",
        "/admin/parser/parsejob/summary/?start=2020-01-01+00:00&end=2099-01-01+00:00",
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert secret not in response.content.decode(), page
    upstream_page = admin_client.get(f"/admin/parser/llmupstream/{solver.pk}/change/")
    assert "ADMIN_TEST_KEY" in upstream_page.content.decode()
    summary = admin_client.get("/admin/parser/parsejob/summary/?start=2020-01-01&end=2099-01-01")
    assert "solver" in summary.content.decode()
    bad = admin_client.get("/admin/parser/parsejob/summary/?start=2025-02-01&end=2025-01-01")
    assert bad.status_code == 200
    assert bad.context["report"] is None
    assert admin_client.get("/admin/parser/parsejob/add/").status_code == 403
