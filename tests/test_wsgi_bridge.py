"""config/wsgi_bridge.py: Django's WSGI handler behind the ASGI server."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application

from config.wsgi_bridge import WSGIBridge


def drive(app: WSGIBridge, scope: dict[str, Any], chunks: list[bytes], disconnect: bool = False):
    """Run one request through the bridge; returns the messages it sent."""
    sent: list[dict[str, Any]] = []
    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    if disconnect:
        incoming = [*incoming[:1], {"type": "http.disconnect"}]
        incoming[0]["more_body"] = True

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def http_scope(method: str = "GET", path: str = "/", query: bytes = b"", headers=()) -> dict:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": list(headers),
        "client": ("10.0.0.7", 51000),
        "server": ("127.0.0.1", 8000),
    }


def test_body_in_pieces_reaches_the_app_and_the_response_comes_back_whole() -> None:
    seen: dict[str, Any] = {}

    def wsgi(environ, start_response):
        seen.update(
            body=environ["wsgi.input"].read(),
            path=environ["PATH_INFO"],
            query=environ["QUERY_STRING"],
            addr=environ["REMOTE_ADDR"],
            ctype=environ["CONTENT_TYPE"],
            length=environ["CONTENT_LENGTH"],
            chunked="HTTP_TRANSFER_ENCODING" in environ,
        )
        start_response("201 Created", [("Content-Type", "application/json"), ("X-A", "1")])
        return [b'{"ok":', b" true}"]

    bridge = WSGIBridge(wsgi, threads=2, spool_max=8)  # spooled to disk past 8 bytes
    scope = http_scope(
        "POST",
        "/api/v1/ÿ",
        b"a=1",
        [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
    )
    sent = drive(bridge, scope, [b'{"x": ', b"1}"])  # no Content-Length: a chunked body
    assert seen == {
        "body": b'{"x": 1}',
        "path": "/api/v1/ÿ".encode().decode("latin1"),
        "query": "a=1",
        "addr": "10.0.0.7",
        "ctype": "application/json",
        "length": "8",  # Django reads CONTENT_LENGTH bytes of the body
        "chunked": False,
    }
    assert sent == [
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/json"), (b"x-a", b"1")],
        },
        {"type": "http.response.body", "body": b'{"ok": true}'},
    ]


def test_streaming_response_is_sent_in_chunks_and_closed_on_its_thread() -> None:
    threads: dict[str, int] = {}

    class Streaming:
        streaming = True

        def __iter__(self):
            threads["iterated"] = threading.get_ident()
            yield b"a,b\n"
            yield b""
            yield b"1,2\n"

        def close(self) -> None:
            threads["closed"] = threading.get_ident()

    def wsgi(environ, start_response):
        threads["called"] = threading.get_ident()
        start_response("200 OK", [("Content-Type", "text/csv")])
        return Streaming()

    sent = drive(WSGIBridge(wsgi, threads=4, spool_max=1024), http_scope(), [b""])
    assert [m.get("body") for m in sent[1:]] == [b"a,b\n", b"1,2\n", b""]
    assert [m.get("more_body", False) for m in sent[1:]] == [True, True, False]
    assert sent[0]["status"] == 200
    assert threads["called"] == threads["iterated"] == threads["closed"]


def test_a_client_gone_before_its_body_ends_never_reaches_the_app() -> None:
    called = []

    def wsgi(environ, start_response):  # pragma: no cover - must not run
        called.append(True)
        start_response("200 OK", [])
        return [b""]

    sent = drive(
        WSGIBridge(wsgi, threads=1, spool_max=1024), http_scope("POST"), [b"x", b"y"], True
    )
    assert sent == [] and called == []


def test_websocket_scopes_are_refused() -> None:
    bridge = WSGIBridge(lambda e, s: [b""], threads=1, spool_max=1)
    with pytest.raises(ValueError, match="HTTP only"):
        asyncio.run(bridge({"type": "websocket"}, lambda: None, lambda message: None))


@pytest.mark.django_db(transaction=True)
def test_django_requests_give_their_database_connection_back() -> None:
    # Closing the response ends Django's request (request_finished), which hands the thread's
    # database connection back; it must happen on the thread that used the connection.
    from django.db import connection

    threads = 3
    bridge = WSGIBridge(get_wsgi_application(), threads=threads, spool_max=1024)
    for _ in range(4 * threads):
        sent = drive(bridge, http_scope(path="/api/v1/watcher/health"), [b""])
        assert sent[0]["status"] == 200
        assert json.loads(sent[1]["body"])["status"] == "healthy"
    barrier = threading.Barrier(threads)

    def holds_a_connection() -> bool:
        barrier.wait(10)  # one call on each pool thread
        return connection.connection is not None

    held = list(bridge.executor.map(lambda _: holds_a_connection(), range(threads)))
    assert held == [False] * threads
