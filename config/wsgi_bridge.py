"""Django's WSGI handler behind the ASGI server, with one thread hand-off per request.

Every view and middleware of this project is synchronous. Django's own ASGI handler would run
each middleware hook and the view through ``sync_to_async`` (about twenty hand-offs between the
event loop and a thread per request), and a2wsgi's bridge crosses back to the event loop for
every read of the body and every piece of the response. Measured on this project's machine:
a trivial WSGI app answered 1,138 requests/s through a2wsgi and 4,778 through a hand-off like
this one. So here:

- the body is read on the event loop first (spooled to a temporary file past
  ``FILE_UPLOAD_MAX_MEMORY_SIZE``, as Django's ASGI handler does);
- the whole request, middleware and view, runs on one thread of the pool, and so does the
  closing of the response, which returns the thread's database connection to the pool;
- a response that is not streaming comes back to the event loop in one piece; a streaming one
  (large exports) is sent chunk by chunk from its thread, each chunk waiting for the previous
  one to be handed to the server (back-pressure).

The WSGI environ is built by a2wsgi's ``build_environ`` (PEP 3333 rules for paths and headers).

Body limits are enforced here, before and while the body is read, because this is where it is
read: a Django middleware (or ``DATA_UPLOAD_MAX_MEMORY_SIZE``) would only see a body already
spooled in full. Each path prefix has its limit (``WATCHER_BODY_LIMITS``, the first prefix
that matches wins): a declared ``Content-Length`` over it is a 413 before a byte is read, and a
body that grows past it while arriving (chunked) is cut off with a 413. A body larger than
``auth_above`` is read only after ``authenticate`` (run on the pool: it may query the
database) accepted the request's ``Authorization`` header; otherwise a 401.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import build_environ

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


class WSGIBridge:
    """An ASGI app (HTTP only) running ``wsgi_app`` on a pool of ``threads`` threads."""

    def __init__(
        self,
        wsgi_app: Callable[..., Iterable[bytes]],
        threads: int,
        spool_max: int,
        limits: Sequence[tuple[str, int]] = (),
        authenticate: Callable[[str, str], bool] | None = None,
        auth_above: int = 64 * 1024,
    ):
        self.wsgi_app = wsgi_app
        self.spool_max = spool_max
        self.limits = list(limits)
        self.authenticate = authenticate
        self.auth_above = auth_above
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="http")

    def limit_for(self, path: str) -> int | None:
        return next((size for prefix, size in self.limits if path.startswith(prefix)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"WSGIBridge serves HTTP only, not {scope['type']!r}")
        refusal = await self.refuse_before_reading(scope)
        if refusal is not None:
            await refusal(send)
            return
        limit = self.limit_for(scope["path"])
        with tempfile.SpooledTemporaryFile(max_size=self.spool_max) as body:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client left before sending its whole request
                body.write(message.get("body", b""))
                if limit is not None and body.tell() > limit:
                    await too_large(limit)(send)
                    return
                if not message.get("more_body", False):
                    break
            length = body.tell()
            body.seek(0)
            environ = build_environ(scope, body)
            # A chunked request has no Content-Length header; Django reads CONTENT_LENGTH bytes.
            environ["CONTENT_LENGTH"] = str(length)
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            loop = asyncio.get_running_loop()
            run = contextvars.copy_context().run
            answer = await loop.run_in_executor(self.executor, run, self._run, environ, loop, send)
        if answer is not None:
            status, headers, content = answer
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})

    async def refuse_before_reading(self, scope: Scope) -> Callable[[Send], Any] | None:
        """A 413 or 401 answer for a request whose body must not be read, else None."""
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        limit = self.limit_for(scope["path"])
        if limit is not None and declared > limit:
            return too_large(limit)
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if self.authenticate is not None and (declared > self.auth_above or chunked):
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            loop = asyncio.get_running_loop()
            accepted = await loop.run_in_executor(
                self.executor, self.authenticate, scope["path"], authorization
            )
            if not accepted:
                return json_answer(401, {"detail": "Authentication required for a large body."})
        return None

    def _run(
        self, environ: dict[str, Any], loop: asyncio.AbstractEventLoop, send: Send
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """On a pool thread: the request, its response and its close.

        Returns the whole response, or None when it was streamed from here already.
        """
        started: list[tuple[int, list[tuple[bytes, bytes]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [
                (
                    int(status.split(" ", 1)[0]),
                    [(k.lower().encode("latin1"), v.encode("latin1")) for k, v in headers],
                )
            ]

        result = self.wsgi_app(environ, start_response)
        try:
            if not getattr(result, "streaming", False):
                content = b"".join(result)
                status, headers = started[0]
                return status, headers, content

            def deliver(message: Message) -> None:
                asyncio.run_coroutine_threadsafe(send(message), loop).result()

            status, headers = started[0]
            deliver({"type": "http.response.start", "status": status, "headers": headers})
            for chunk in result:
                if chunk:
                    deliver({"type": "http.response.body", "body": chunk, "more_body": True})
            deliver({"type": "http.response.body", "body": b""})
            return None
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


def json_answer(status: int, payload: dict[str, Any]) -> Callable[[Send], Any]:
    async def answer(send: Send) -> None:
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return answer


def too_large(limit: int) -> Callable[[Send], Any]:
    return json_answer(
        413, {"detail": f"Request body larger than {limit} bytes.", "code": "too_large"}
    )
