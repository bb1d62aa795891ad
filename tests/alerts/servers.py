"""Real HTTP receivers on loopback for the notification tests (no mocks).

:class:`Receiver` runs a threaded ``http.server``; each request takes the next status of its
script (the last one repeats) and is kept for assertions. As a webhook receiver it verifies the
``X-Watcher-Signature`` header the way the README tells receivers to; as a Telegram-compatible
bot API it accepts ``POST /bot<token>/sendMessage`` for its one token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify_signature(secret: str, header: str, body: bytes, max_age: int = 300) -> bool:
    """What a receiver does: recompute the HMAC over ``t.`` + the raw body, compare in constant
    time, refuse an old timestamp."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > max_age:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=lambda: [200])
    secret: str | None = None  # webhook: refuse a request whose signature does not verify
    token: str | None = None  # telegram: the one bot token it knows
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        self.received.append(Received(path, headers, body))
        if self.secret is not None and not verify_signature(
            self.secret, headers.get("X-Watcher-Signature", ""), body
        ):
            return 401, {"error": "bad signature"}
        if self.token is not None and path != f"/bot{self.token}/sendMessage":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        index = min(len(self.received) - 1, len(self.statuses) - 1)
        status = self.statuses[index]
        if self.token is not None:
            return status, {"ok": status == 200, "result": {"message_id": len(self.received)}}
        return status, {"received": True}


@contextmanager
def serve(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status, answer = receiver.answer(self.path, dict(self.headers.items()), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
