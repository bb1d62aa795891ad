"""The foundation: settings fall back to embedded services, health, OpenAPI schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.test import override_settings

from config.embedded_redis import stop_embedded_redis

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
    "'name': str(s.DATABASES['default']['NAME']), 'redis': s.REDIS_URL, "
    "'embedded': s.REDIS_EMBEDDED, 'broker': s.CELERY_BROKER_URL, "
    "'cache': s.CACHES['default']['LOCATION'], "
    "'channels': s.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0], "
    "'tz': s.TIME_ZONE, 'lang': s.LANGUAGE_CODE}))"
)


def _probe(env: dict[str, str], probe: str = PROBE) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _bare_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "TIME_ZONE", "LANGUAGE_CODE"}
    }
    env["WATCHER_DATA_DIR"] = str(tmp_path)
    return env


def test_it_falls_back_to_sqlite_and_one_shared_embedded_redis(tmp_path: Path) -> None:
    env = _bare_env(tmp_path)
    try:
        first = _probe(env)
        second = _probe(env)  # another process: must reuse the same server
        assert first["engine"] == "django.db.backends.sqlite3"
        assert first["name"] == str(tmp_path / "db.sqlite3")
        assert first["embedded"] is True
        assert first["redis"] == second["redis"]
        url = str(first["redis"])
        assert url.startswith("redis://:") and "@127.0.0.1:" in url
        for key in ("broker", "cache", "channels"):
            assert first[key] == url
        assert first["tz"] == "Europe/Moscow"
        assert first["lang"] == "ru"
        assert redis.Redis.from_url(url).ping() is True
        # The password is required: an anonymous client is refused.
        anonymous = url.replace(url[len("redis://") : url.index("@") + 1], "")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(anonymous).ping()
    finally:
        stop_embedded_redis(tmp_path)


def test_it_uses_the_services_given_in_the_environment(tmp_path: Path) -> None:
    env = _bare_env(tmp_path)
    env["DATABASE_URL"] = "postgres://someone:pw@db.example:5432/watcher"
    env["REDIS_URL"] = "redis://:secret@cache.example:6379/3"
    result = _probe(env)
    assert result["engine"] == "django.db.backends.postgresql"
    assert result["redis"] == "redis://:secret@cache.example:6379/3"
    assert result["embedded"] is False
    assert result["broker"] == result["cache"] == result["channels"] == result["redis"]
    assert not (tmp_path / "embedded-redis.json").exists()


def test_a_sqlite_database_url_gets_a_working_sqlite_connection(tmp_path: Path) -> None:
    # The pool options belong to PostgreSQL: sqlite3 refuses them ("'pool' is an invalid
    # keyword argument"), which broke every query of a server given a sqlite:// URL.
    env = _bare_env(tmp_path)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"  # not contacted
    probe = (
        "import django, json; django.setup(); from django.db import connection as c; "
        "cur = c.cursor(); cur.execute('PRAGMA journal_mode'); "
        "print(json.dumps({'engine': c.vendor, 'journal': cur.fetchone()[0], "
        "'options': sorted(c.settings_dict['OPTIONS'])}))"
    )
    assert _probe(env, probe) == {
        "engine": "sqlite",
        "journal": "wal",
        "options": ["init_command", "timeout", "transaction_mode"],
    }
    assert (tmp_path / "other.sqlite3").exists()


@pytest.mark.django_db
def test_health_is_healthy_with_redis_and_database(client) -> None:
    from watcher.services.queues import push

    push([("00000000-0000-0000-0000-000000000001", "ozon", 1)])
    response = client.get("/api/v1/watcher/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["checks"] == {"redis": "ok", "postgresql": "ok", "tasks_queued": 1}
    assert body["timestamp"]


@pytest.mark.django_db
def test_health_answers_503_when_redis_is_unreachable(client) -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/api/v1/watcher/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["redis"] == "error"
    assert body["checks"]["postgresql"] == "ok"


@pytest.mark.django_db
def test_health_answers_503_when_the_database_is_unreachable(client, monkeypatch) -> None:
    from django.db import OperationalError, connection

    def broken_cursor(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection refused")

    # The only stand-in in this file: stopping the test database server is not possible here.
    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/api/v1/watcher/health")
    assert response.status_code == 503
    assert response.json()["checks"]["postgresql"] == "error"


@pytest.mark.django_db
def test_schema_and_swagger_ui_are_served(client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/watcher/tasks/next",
        "/api/v1/watcher/tasks/{task_id}/report",
        "/api/v1/watcher/agents/heartbeat",
        "/api/v1/watcher/agents/panic",
        "/api/v1/watcher/config/emulation",
        "/api/v1/watcher/agents",
        "/api/v1/watcher/tasks/stats",
        "/api/v1/watcher/health",
    ):
        assert path in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


@pytest.mark.django_db
def test_the_openapi_schema_is_valid_without_warnings(tmp_path: Path) -> None:
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "agentApiKey" in text and "/api/v1/watcher/tasks/next" in text


HTTPS_PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
    "s.SECURE_HSTS_SECONDS]))"
)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, [False, False, False, 0]),
        ({"HTTPS_ONLY": "true", "SECURE_HSTS_SECONDS": "3600"}, [True, True, True, 3600]),
    ],
)
def test_https_only_is_one_switch(tmp_path: Path, extra: dict, expected: list) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTPS_", "SECURE_"))}
    env.update(extra, DJANGO_SETTINGS_MODULE="config.settings")
    out = subprocess.run(
        [sys.executable, "-c", HTTPS_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True)
def test_https_only_redirects_plain_http_but_not_the_health_check(client) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/admin/login/"
    assert client.get("/admin/login/", secure=True).status_code == 200
    assert client.get("/api/v1/watcher/health").status_code == 200
    assert client.get("/metrics").status_code != 301  # Prometheus scrapes over plain HTTP
