"""Real HTTP upstreams on loopback for the LLM backend tests (no mocks).

:class:`FakeUpstream` runs a threaded ``http.server`` that speaks both protocols —
``POST /v1/solve`` and ``POST /chat/completions`` — and answers from a script: each request
takes the next behaviour, the last one repeats. Behaviours: :func:`ok` (a JSON object or any
text as the model's answer), :func:`busy` (423), :func:`fail` (an error status with a solve
error code), :func:`slow` (sleeps, then behaves), :func:`raw` (any status and body).
Every request is kept (path, headers, JSON body) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Behaviour:
    status: int = 200
    answer: Any = None  # dict → JSON text; str → the text as is
    error_code: str = ""
    message: str = ""
    body: str | None = None  # raw body, overrides everything
    delay: float = 0.0
    solve_ok: bool | None = None  # force ok: false in a 200 solve answer


def ok(answer: Any) -> Behaviour:
    return Behaviour(answer=answer)


def busy() -> Behaviour:
    return Behaviour(status=423, error_code="WORKER_BUSY", message="worker busy")


SOLVE_STATUS = {
    "INVALID_REQUEST": 400,
    "PROFILE_BUSY": 503,
    "CONTAINER_BUSY": 503,
    "UPSTREAM_ERROR": 502,
    "INTERNAL_ERROR": 500,
}


def fail(code: str = "UPSTREAM_ERROR", message: str = "upstream failed", status: int = 0):
    return Behaviour(status=status or SOLVE_STATUS.get(code, 500), error_code=code, message=message)


def slow(delay: float, then: Behaviour | None = None) -> Behaviour:
    base = then or ok({"current_price": 1})
    return Behaviour(**{**base.__dict__, "delay": delay})


def raw(status: int, body: str) -> Behaviour:
    return Behaviour(status=status, body=body)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeUpstream:
    script: list[Behaviour] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def next_behaviour(self) -> Behaviour:
        with _lock:
            if len(self.script) > 1:
                return self.script.pop(0)
            return self.script[0] if self.script else ok({"current_price": 1})


_lock = threading.Lock()


def _solve_body(b: Behaviour, seen: Seen) -> dict[str, Any]:
    if b.status >= 400 or b.solve_ok is False:
        return {"ok": False, "error": {"code": b.error_code, "message": b.message}}
    text = b.answer if isinstance(b.answer, str) else json.dumps(b.answer, ensure_ascii=False)
    request_id = seen.body.get("request_id") if isinstance(seen.body, dict) else None
    return {"ok": True, "final": {"text": text}, "meta": {"job_id": f"job-{request_id}"}}


def _openai_body(b: Behaviour) -> dict[str, Any]:
    if b.status >= 400:
        return {"error": {"message": b.message, "type": "server_error", "code": b.error_code}}
    text = b.answer if isinstance(b.answer, str) else json.dumps(b.answer, ensure_ascii=False)
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    }


def _handler(upstream: FakeUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length).decode()
            try:
                body: Any = json.loads(payload)
            except ValueError:
                body = payload
            seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            upstream.requests.append(seen)
            behaviour = upstream.next_behaviour()
            if behaviour.delay:
                time.sleep(behaviour.delay)
            if behaviour.body is not None:
                text = behaviour.body
            elif self.path.endswith("/v1/solve"):
                text = json.dumps(_solve_body(behaviour, seen), ensure_ascii=False)
            elif self.path.endswith("/chat/completions"):
                text = json.dumps(_openai_body(behaviour), ensure_ascii=False)
            else:
                behaviour, text = Behaviour(status=404), '{"error": "not found"}'
            data = text.encode()
            try:
                self.send_response(behaviour.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (a timeout test)
                pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out closed its socket: expected in these tests


@contextmanager
def serve(*scripts: list[Behaviour]) -> Iterator[list[FakeUpstream]]:
    """Start one fake upstream per script; yield them; stop them."""
    servers: list[_Server] = []
    upstreams: list[FakeUpstream] = []
    try:
        for script in scripts:
            upstream = FakeUpstream(script=list(script))
            server = _Server(("127.0.0.1", 0), _handler(upstream))
            upstream.port = server.server_address[1]
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ).start()
            servers.append(server)
            upstreams.append(upstream)
        yield upstreams
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def closed_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
