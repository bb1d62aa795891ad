"""A database error is answered 503 either way; the log tells an outage (one line) from a
statement that failed (a deadlock, a cancelled query: with its traceback, a fault to look at)."""

from __future__ import annotations

import logging

import psycopg
import pytest
from django.db import OperationalError

from watcher.services.errors import database_unreachable, log_database_error


def wrapped(cause: Exception) -> OperationalError:
    """As Django raises it: its own class, psycopg's error as the cause."""
    try:
        try:
            raise cause
        except Exception as exc:
            raise OperationalError(str(exc)) from exc
    except OperationalError as django_error:
        return django_error


@pytest.mark.parametrize(
    ("cause", "outage"),
    [
        (psycopg.OperationalError("connection refused"), True),  # no SQLSTATE: never connected
        (psycopg.errors.AdminShutdown("terminating connection"), True),  # 57P01
        (psycopg.errors.DeadlockDetected("deadlock detected"), False),  # 40P01
        (psycopg.errors.QueryCanceled("canceling statement due to timeout"), False),  # 57014
        (psycopg.errors.LockNotAvailable("could not obtain lock"), False),  # 55P03
    ],
)
def test_an_outage_is_one_line_a_failed_statement_keeps_its_traceback(
    caplog: pytest.LogCaptureFixture, cause: Exception, outage: bool
) -> None:
    error = wrapped(cause)
    assert database_unreachable(error) is outage
    with caplog.at_level(logging.WARNING):
        log_database_error(logging.getLogger("test"), error)
    [record] = caplog.records
    assert record.getMessage() == "database unavailable"
    assert (record.exc_info is None) is outage
