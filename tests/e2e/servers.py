"""Run the project's ASGI app in uvicorn subprocesses that share the test's database and Redis.

Each server is one uvicorn process started as in production (HTTP through Django's WSGI handler
on a thread pool, WebSockets through Channels), on a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shared_database_url() -> str:
    """A DATABASE_URL for the database this test run uses (pytest-django's test database)."""
    db = settings.DATABASES["default"]
    engine = db["ENGINE"]
    name = str(db["NAME"])
    if engine.endswith("sqlite3"):
        if name == ":memory:" or "mode=memory" in name:
            pytest.skip(
                "SQLite test database is in memory: other processes cannot share it. Set "
                "DATABASES['default']['TEST']['NAME'] to a file, or run with DATABASE_URL "
                "pointing at PostgreSQL."
            )
        return f"sqlite:///{Path(name).resolve()}"
    if "postgresql" in engine:
        user = quote(str(db.get("USER") or ""), safe="")
        password = quote(str(db.get("PASSWORD") or ""), safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{quote(name, safe='')}"
    pytest.skip(f"no DATABASE_URL form for {engine}")
    raise AssertionError  # unreachable


def server_env(**extra: str) -> dict[str, str]:
    # One process per server whatever the caller's shell has: uvicorn reads WEB_CONCURRENCY (the
    # number of worker processes) and UVICORN_* options from the environment.
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "WEB_CONCURRENCY" and not key.startswith("UVICORN_")
    }
    env.update(
        DATABASE_URL=shared_database_url(),
        REDIS_URL=settings.REDIS_URL,
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"),
        # No persistent connections: none may linger when the test database is dropped.
        DATABASE_CONN_MAX_AGE="0",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_server(log_path: Path, env: dict[str, str]) -> Server:
    port = free_port()
    log = open(log_path, "wb")  # noqa: SIM115 - the child keeps it open
    process = subprocess.Popen(
        [sys.executable, "-m", "config.server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    return Server(port, process, log_path)


def wait_ready(server: Server, timeout: float = 60.0) -> None:
    """Until the health endpoint answers 200: the app is loaded, Redis and the database reachable.

    uvicorn binds its port only once the app is imported, so a refused connection means "not
    yet"; any answer but 200 is retried too, and reported if it lasts.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited ({server.process.returncode}):\n{server.log()}")
        try:
            response = httpx.get(f"{server.url}/api/v1/watcher/health", timeout=2, trust_env=False)
        except httpx.HTTPError as error:
            last = repr(error)
        else:
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:500]}"
        time.sleep(0.2)
    raise RuntimeError(f"uvicorn not ready in {timeout} s ({last}):\n{server.log()}")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)


@contextlib.contextmanager
def asgi_servers(count: int, log_dir: Path, **env: str) -> Iterator[list[Server]]:
    """``count`` uvicorn processes on free loopback ports, ready; always stopped on the way out."""
    environment = server_env(**env)
    servers: list[Server] = []
    try:
        for i in range(count):
            servers.append(start_server(log_dir / f"server-{i}.log", environment))
        for server in servers:
            wait_ready(server)
        yield servers
    finally:
        for server in servers:
            stop(server)
