"""A server's PostgreSQL pool after its idle connections died (what a database restart does)."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
from django.db import connection

from tests.e2e.servers import asgi_servers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
APP_NAME = "watcher-e2e-pool"


def kill_server_connections() -> int:
    params = connection.get_connection_params()
    keys = {"dbname", "user", "password", "host", "port"}
    dsn = psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if k in keys})
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute(
            # Waits (up to 5 s) until each backend has exited: a ping must not find it alive.
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (APP_NAME,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("checks", ["false", "true"])
def test_dead_pooled_connections_fail_one_request_each_at_most(tmp_path: Path, checks: str):
    if connection.vendor != "postgresql":
        pytest.skip("about the PostgreSQL connection pool (set DATABASE_URL)")
    # libpq takes the connections' application_name from PGAPPNAME: only the server's are killed.
    env = {"PGAPPNAME": APP_NAME, "DATABASE_HEALTH_CHECKS": checks}
    with asgi_servers(1, tmp_path, **env) as (server,):
        health = f"{server.url}/api/v1/watcher/health"
        with httpx.Client(timeout=10, trust_env=False) as http:
            for _ in range(3):
                assert http.get(health).status_code == 200
            killed = kill_server_connections()
            assert killed >= 1
            codes = [http.get(health).status_code for _ in range(killed + 3)]
    if checks == "true":
        # Each checkout pings first: a dead connection is replaced before a request sees it.
        assert codes == [200] * len(codes)
    else:
        # The default: no ping; a dead connection fails the one request that got it.
        assert 1 <= codes.count(503) <= killed, codes
        assert codes[-3:] == [200, 200, 200]
