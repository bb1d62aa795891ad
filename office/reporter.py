"""``OfficeReporter``: how an automated agent tells the Office what it is doing (SPEC §10).

Each method is one atomic upsert of the agent's row (``office.services.status``), so reporters
in Celery tasks, management commands and several processes may report at once. Async code
uses the ``a``-prefixed methods. Modules outside this project use the REST API instead
(``POST /api/v1/office/status``).

The registry holds the reporters a process speaks for: the periodic ``office.heartbeat``
task heartbeats them every minute, and they report offline when their process shuts down
(``atexit``, and Celery's ``worker_shutdown``).
"""

from __future__ import annotations

import logging
import os
import threading
from decimal import Decimal
from typing import Any

from channels.db import database_sync_to_async as sync_to_async

from office.models import DEFAULT_FTE, DEFAULT_SALARY, OfficeAgentStatus, OfficeStatus
from office.services import status

log = logging.getLogger(__name__)

Metrics = dict[str, Any] | None


class OfficeReporter:
    def __init__(
        self,
        agent_id: str,
        department: str,
        name: str,
        brand: str | None = None,
        salary_equivalent: int = DEFAULT_SALARY,
        fte_coefficient: float | Decimal = DEFAULT_FTE,
    ) -> None:
        self.identity = status.Identity(
            agent_id=agent_id,
            department=department,
            name=name,
            brand=brand or "",
            salary_equivalent=salary_equivalent,
            fte_coefficient=Decimal(str(fte_coefficient)),
        )

    @property
    def agent_id(self) -> str:
        return self.identity.agent_id

    def __repr__(self) -> str:
        return f"OfficeReporter({self.agent_id!r})"

    # --- sync

    def report_working(self, task: str, metrics: Metrics = None) -> OfficeAgentStatus:
        """Status ok, doing ``task``."""
        return status.record_status(self.identity, OfficeStatus.OK, task, metrics)

    def report_idle(self, metrics: Metrics = None) -> OfficeAgentStatus:
        """Status ok, no task."""
        return status.record_status(self.identity, OfficeStatus.OK, "", metrics)

    def report_warning(self, task: str, metrics: Metrics = None) -> OfficeAgentStatus:
        return status.record_status(self.identity, OfficeStatus.WARNING, task, metrics)

    def report_error(self, message: str, metrics: Metrics = None) -> OfficeAgentStatus:
        """Status error with the task ``Ошибка: {message}``."""
        task = status.error_task(message)
        return status.record_status(self.identity, OfficeStatus.ERROR, task, metrics)

    def report_offline(self) -> OfficeAgentStatus:
        return status.record_status(self.identity, OfficeStatus.OFFLINE, "")

    def heartbeat(self) -> OfficeAgentStatus:
        """Touch ``last_activity`` only: the agent is alive and doing what it said."""
        return status.touch(self.identity)

    def report(
        self, kind: str, *, task: str = "", message: str = "", metrics: Metrics = None
    ) -> OfficeAgentStatus:
        """One of the methods above by name (``working``, ``idle``, ``warning``, ``error``,
        ``offline``, ``heartbeat``): what the REST API calls."""
        if kind == "working":
            return self.report_working(task, metrics)
        if kind == "idle":
            return self.report_idle(metrics)
        if kind == "warning":
            return self.report_warning(task, metrics)
        if kind == "error":
            return self.report_error(message or task, metrics)
        if kind == "offline":
            return self.report_offline()
        if kind == "heartbeat":
            return self.heartbeat()
        raise ValueError(f"unknown report {kind!r}")

    # --- async (the same, on a worker thread that closes stale database connections)

    async def areport_working(self, task: str, metrics: Metrics = None) -> OfficeAgentStatus:
        return await sync_to_async(self.report_working)(task, metrics)

    async def areport_idle(self, metrics: Metrics = None) -> OfficeAgentStatus:
        return await sync_to_async(self.report_idle)(metrics)

    async def areport_warning(self, task: str, metrics: Metrics = None) -> OfficeAgentStatus:
        return await sync_to_async(self.report_warning)(task, metrics)

    async def areport_error(self, message: str, metrics: Metrics = None) -> OfficeAgentStatus:
        return await sync_to_async(self.report_error)(message, metrics)

    async def areport_offline(self) -> OfficeAgentStatus:
        return await sync_to_async(self.report_offline)()

    async def aheartbeat(self) -> OfficeAgentStatus:
        return await sync_to_async(self.heartbeat)()


class ReporterRegistry:
    """The reporters this process speaks for.

    A forked child (a Celery pool process) inherits the registry and may heartbeat; only the
    process that registered a reporter reports it offline, so a child recycled by the pool
    does not take its parent's agents offline.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reporters: dict[str, tuple[OfficeReporter, int]] = {}

    def register(self, reporter: OfficeReporter) -> OfficeReporter:
        with self._lock:
            self._reporters[reporter.agent_id] = (reporter, os.getpid())
        return reporter

    def unregister(self, reporter: OfficeReporter) -> None:
        with self._lock:
            self._reporters.pop(reporter.agent_id, None)

    def reporters(self) -> list[OfficeReporter]:
        with self._lock:
            return [reporter for reporter, _pid in self._reporters.values()]

    def heartbeat_all(self) -> int:
        """Heartbeat every registered reporter; returns how many were heartbeated."""
        done = 0
        for reporter in self.reporters():
            try:
                reporter.heartbeat()
                done += 1
            except Exception:  # one agent's failure must not silence the others
                log.exception("office: heartbeat failed", extra={"agent_id": reporter.agent_id})
        return done

    def offline_all(self, **kwargs: Any) -> int:
        """Report offline the reporters this very process registered, and forget them."""
        with self._lock:
            mine = [r for r, pid in self._reporters.values() if pid == os.getpid()]
            for reporter in mine:
                self._reporters.pop(reporter.agent_id, None)
        done = 0
        for reporter in mine:
            try:
                reporter.report_offline()
                done += 1
            except Exception:  # at shutdown the database may already be gone
                log.exception("office: offline failed", extra={"agent_id": reporter.agent_id})
        return done


registry = ReporterRegistry()
