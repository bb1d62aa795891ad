"""A lean keep-alive HTTP/1.1 client for the benches (the load generator must cost little CPU)."""

from __future__ import annotations

import asyncio
import contextlib
import time

IDLE_CLOSE = 4.5  # seconds; uvicorn's --timeout-keep-alive is 5


class Connection:
    """One keep-alive HTTP/1.1 connection with a bearer token: the leanest client we can write.

    The bench process shares the machine's cores with the servers, so the load generator must
    cost little CPU per request (httpx spent 7–35 ms per pair here, more than the server).
    Requests are written by hand, responses read by Content-Length; anything unexpected
    raises, which the caller counts as an error and reconnects.
    """

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.last_used = 0.0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.head = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n".encode()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        idle = time.monotonic() - self.last_used if self.writer is not None else 0.0
        try:
            return await self._request(method, path, body)
        except asyncio.IncompleteReadError as error:
            # uvicorn closes a keep-alive connection idle for 5 s: a request sent on it gets no
            # answer at all. Send it again on a new connection, once; anything else (a server
            # that read the request and died) is the caller's error.
            if error.partial or not (method == "GET" or idle >= IDLE_CLOSE):
                raise
        return await self._request(method, path, body)

    async def _request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.last_used = time.monotonic()
        extra = (
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
            if method == "POST"
            else b""
        )
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\n".encode() + self.head + extra + b"\r\n" + body
        )
        try:
            status_line = await self.reader.readuntil(b"\r\n")
            length = 0
            while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"transfer-encoding":
                    raise RuntimeError("chunked response")
            payload = await self.reader.readexactly(length) if length else b""
        except BaseException:
            await self.close()
            raise
        return int(status_line.split(b" ", 2)[1]), payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None
