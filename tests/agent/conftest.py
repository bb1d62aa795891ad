"""The fake marketplace on a loopback port, served from a thread of the test process."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest

from watcher.demo.marketplace import serve

NIGHT = dt.date(2026, 12, 1)


@pytest.fixture
def marketplace() -> Iterator[str]:
    server = serve("127.0.0.1", 0, night=NIGHT)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
