"""Test helpers that involve a second thread with its own database connection."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from django.db import connection


@contextlib.contextmanager
def held_in_another_thread(
    hold: Callable[[], contextlib.AbstractContextManager[object]],
) -> Iterator[None]:
    """Enter ``hold()`` in a thread of its own (its own database connection, as another process
    would have), and stay inside it until this block ends. For locks other sessions must meet."""
    entered, release = threading.Event(), threading.Event()

    def run() -> None:
        try:
            with hold():
                entered.set()
                release.wait(30)
        finally:
            connection.close()  # this thread's connection

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert entered.wait(30), "the other thread never got inside"
        yield
    finally:
        release.set()
        thread.join(30)
