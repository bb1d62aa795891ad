"""The Office REST API: module keys report their own department; staff and modules read."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from office.models import ModuleKey, OfficeAgentStatus, OfficeStatus
from office.services.keys import create_module_key

pytestmark = pytest.mark.django_db
STATUS_URL = "/api/v1/office/status"
AGENTS_URL = "/api/v1/office/agents"


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def reputation() -> APIClient:
    _row, key = create_module_key("reputation")
    return client_for(key)


def report(**fields: object) -> dict[str, object]:
    return {
        "agent_id": "reputation_avito",
        "department": "reputation",
        "name": "Отзывы WB",
        "status": "working",
        "task": "Отвечаю на отзывы",
        **fields,
    }


def test_a_module_reports_its_agent(reputation: APIClient) -> None:
    body = report(metrics={"answered": 5}, brand="acme", salary_equivalent=70000)
    response = reputation.post(STATUS_URL, body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"
    row = OfficeAgentStatus.objects.get(agent_id="reputation_avito")
    assert (row.status, row.task, row.metrics) == ("ok", "Отвечаю на отзывы", {"answered": 5})
    assert (row.brand, row.salary_equivalent) == ("acme", 70000)


@pytest.mark.parametrize(
    ("kind", "extra", "status", "task"),
    [
        ("idle", {}, OfficeStatus.OK, ""),
        ("warning", {"task": "медленно"}, OfficeStatus.WARNING, "медленно"),
        ("error", {"message": "нет API"}, OfficeStatus.ERROR, "Ошибка: нет API"),
        ("offline", {}, OfficeStatus.OFFLINE, ""),
    ],
)
def test_each_status_has_the_reporters_meaning(
    reputation: APIClient, kind: str, extra: dict[str, str], status: str, task: str
) -> None:
    body = {k: v for k, v in report(status=kind).items() if k != "task"} | extra
    response = reputation.post(STATUS_URL, body, format="json")
    assert response.status_code == 200, response.content
    row = OfficeAgentStatus.objects.get(agent_id="reputation_avito")
    assert (row.status, row.task) == (status, task)


def test_a_heartbeat_changes_only_the_activity(reputation: APIClient) -> None:
    reputation.post(STATUS_URL, report(status="warning", task="slow"), format="json")
    response = reputation.post(STATUS_URL, report(status="heartbeat", task=""), format="json")
    assert response.status_code == 200
    row = OfficeAgentStatus.objects.get(agent_id="reputation_avito")
    assert (row.status, row.task) == ("warning", "slow")


def test_keys_are_stored_as_digests_only() -> None:
    row, key = create_module_key("lex")
    stored = ModuleKey.objects.get(pk=row.pk)
    assert key.startswith("wo_")
    assert key not in (stored.key_prefix, stored.key_digest)
    assert len(stored.key_digest) == 64


@pytest.mark.parametrize(
    "header", [None, "Bearer wo_not-a-real-key-at-all", "Bearer", "Token abc", "Bearer wa_agentkey"]
)
def test_without_a_valid_module_key_nothing_is_stored(header: str | None) -> None:
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post(STATUS_URL, report(), format="json")
    assert response.status_code in (401, 403)
    assert "detail" in response.json()
    assert not OfficeAgentStatus.objects.filter(agent_id="reputation_avito").exists()


def test_a_deactivated_key_is_refused() -> None:
    row, key = create_module_key("reputation")
    ModuleKey.objects.filter(pk=row.pk).update(is_active=False)
    assert client_for(key).post(STATUS_URL, report(), format="json").status_code == 401


def test_a_module_key_is_refused_for_another_department(reputation: APIClient) -> None:
    response = reputation.post(
        STATUS_URL, report(agent_id="lex_monitor", department="lex"), format="json"
    )
    assert response.status_code == 403
    assert OfficeAgentStatus.objects.get(agent_id="lex_monitor").status == "offline"


def test_a_module_may_not_take_over_another_departments_agent(reputation: APIClient) -> None:
    """The agent id is the other department's: claiming it under one's own department fails."""
    response = reputation.post(STATUS_URL, report(agent_id="watcher_price_monitor"), format="json")
    assert response.status_code == 403
    row = OfficeAgentStatus.objects.get(agent_id="watcher_price_monitor")
    assert (row.department, row.status) == ("watcher", "offline")


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"agent_id": "x" * 101}, "agent_id"),
        ({"agent_id": "with space"}, "agent_id"),
        ({"department": "d" * 51}, "department"),
        ({"name": "n" * 101}, "name"),
        ({"brand": "b" * 21}, "brand"),
        ({"task": "t" * 256}, "task"),
        ({"status": "sleeping"}, "status"),
        ({"status": "working", "task": ""}, "task"),
        ({"status": "error", "task": ""}, "message"),
        ({"metrics": [1, 2]}, "metrics"),
        ({"metrics": "fast"}, "metrics"),
        ({"metrics": {"blob": "x" * 9000}}, "metrics"),
        ({"salary_equivalent": -1}, "salary_equivalent"),
        ({"fte_coefficient": "10.5"}, "fte_coefficient"),
        ({"fte_coefficient": "abc"}, "fte_coefficient"),
    ],
)
def test_bad_input_is_a_400_and_changes_nothing(
    reputation: APIClient, fields: dict[str, object], bad_field: str
) -> None:
    response = reputation.post(STATUS_URL, report(**fields), format="json")
    assert response.status_code == 400, response.content
    assert bad_field in response.json()
    assert (
        not OfficeAgentStatus.objects.filter(department="reputation")
        .exclude(status="offline")
        .exists()
    )


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '"text"', "null"])
def test_a_body_that_is_not_an_object_is_a_400(reputation: APIClient, raw: str) -> None:
    response = reputation.post(STATUS_URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()


def test_staff_read_every_agent_with_totals(reputation: APIClient) -> None:
    reputation.post(STATUS_URL, report(salary_equivalent=100_000), format="json")
    staff = User.objects.create_user("boss", password="x", is_staff=True)
    client = APIClient()
    client.force_login(staff)
    body = client.get(AGENTS_URL).json()
    ids = {a["agent_id"] for a in body["agents"]}
    assert {"watcher_price_monitor", "lex_monitor", "reputation_avito"} <= ids
    assert body["totals"]["agents"] == len(ids)
    assert body["departments"]["reputation"]["salary"] == 100_000 + 3 * 60_000
    only = client.get(AGENTS_URL, {"department": "lex"}).json()
    assert [a["agent_id"] for a in only["agents"]] == ["lex_monitor"]


def test_staff_read_with_a_jwt() -> None:
    User.objects.create_user("boss", password="pw-Boss-1", is_staff=True)
    token = (
        APIClient()
        .post("/api/v1/auth/token", {"username": "boss", "password": "pw-Boss-1"}, format="json")
        .json()["access"]
    )
    assert client_for(token).get(AGENTS_URL).status_code == 200


def test_a_module_key_may_read(reputation: APIClient) -> None:
    assert reputation.get(AGENTS_URL).status_code == 200


def test_people_who_are_not_staff_may_not_read() -> None:
    user = User.objects.create_user("someone", password="x")
    client = APIClient()
    client.force_login(user)
    assert client.get(AGENTS_URL).status_code == 403
    assert APIClient().get(AGENTS_URL).status_code in (401, 403)


def test_staff_may_not_report_without_a_module_key() -> None:
    staff = User.objects.create_user("boss", password="x", is_staff=True)
    client = APIClient()
    client.force_login(staff)
    assert client.post(STATUS_URL, report(), format="json").status_code in (401, 403)


def test_the_schema_documents_the_office_api() -> None:
    staff = User.objects.create_user("boss", password="x", is_staff=True)
    client = APIClient()
    client.force_login(staff)
    response = client.get("/api/schema/", {"format": "json"})
    schema = json.loads(response.content)
    post = schema["paths"]["/api/v1/office/status"]["post"]
    get = schema["paths"]["/api/v1/office/agents"]["get"]
    assert post["tags"] == ["office"] and get["tags"] == ["office"]
    assert {"officeModuleKey": []} in post["security"]
    assert set(post["responses"]) >= {"200", "400", "401", "403"}
    assert "officeModuleKey" in schema["components"]["securitySchemes"]
