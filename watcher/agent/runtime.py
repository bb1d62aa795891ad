"""The agent at work: the task loop, heartbeats, the command socket and the outbox, on one
asyncio event loop.

Everything it collects goes to the on-disk outbox before it is sent, so a crash, a restart or a
server away loses nothing; paused/panic state and a running cooldown are saved next to it, so
``watch`` resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from watcher.agent.browser import BrowserEngine
from watcher.agent.config import AgentConfig
from watcher.agent.engine import HttpEngine, Page, classify, site_url
from watcher.agent.outbox import Entry, Outbox
from watcher.agent.schedules import Cooldown, ExitPool, PanicDetector, RetrySchedule

log = logging.getLogger("watcher.agent")

VERSION = "watcher-agent/1.0"
API = "/api/v1/watcher"
EMULATION_DEFAULTS = {
    "min_delay_ms": 2000,
    "max_delay_ms": 5000,
    "page_view_min_ms": 3000,
    "page_view_max_ms": 8000,
    "scroll_enabled": True,
    "scroll_steps": 3,
    "mouse_movement": True,
    "mouse_curve": "bezier",
    "random_order": True,
}
# Answers after which a stored report will never be accepted: drop it (logged).
FINAL_REJECTIONS = frozenset({400, 403, 404, 409, 413})
COMMANDS = ("stop", "pause", "resume", "reload_config", "reboot_modem", "refresh_cookies")
CLOSE_INVALID_KEY = 4001
STABLE_SOCKET = 30.0  # seconds a command socket must have lived to reset the reconnect backoff
CLOSE_REPLACED = 4002


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; True if it was set.

    Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation that arrives as the
    event is set, and a loop that misses its cancellation never ends.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _pending = await asyncio.wait({waiter}, timeout=max(0.0, timeout))
    finally:
        waiter.cancel()
    return bool(done)


class AuthError(RuntimeError):
    """The server refuses this agent's key (401) or the agent is disabled (403)."""


@dataclass
class Outcome:
    success: bool
    text: str = ""
    error: str | None = None
    panic: str | None = None
    status_code: int | None = None
    screenshot: str | None = None


class AgentRuntime:
    def __init__(self, config: AgentConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng or random.Random()
        state = config.state_path
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state_file = state / "state.json"
        self.outbox = Outbox(state / "outbox")
        self.api = httpx.AsyncClient(
            base_url=config.server.rstrip("/"),
            headers={"Authorization": f"Bearer {config.api_key}", "User-Agent": VERSION},
            timeout=config.request_timeout,
            trust_env=False,
        )
        self.engine: HttpEngine | BrowserEngine
        if config.engine == "browser":
            self.engine = BrowserEngine(
                config.chromium, state, config.request_timeout, lambda: self.emulation,
                scale=config.scale, screenshots=config.screenshots, rng=self.rng,
            )  # fmt: skip
        else:
            self.engine = HttpEngine(config.request_timeout, config.user_agent)
        self.pool = ExitPool(config.exits, revive_after=config.exit_revive_seconds * config.scale)
        self.retries = RetrySchedule(config.retry_fast, config.retry_long, config.max_retries)
        self.cooldown = Cooldown(config.cooldown_after, config.cooldown_seconds * config.scale)
        self.panic = PanicDetector(config.panic_403_burst, config.panic_403_window)
        self.emulation: dict[str, Any] = dict(EMULATION_DEFAULTS)
        self.emulation_loaded = False
        self.status = "preparing"
        self.paused = False
        self.panicked = False
        self.stopping = False
        self.current_task: str | None = None
        self.stats = {"completed": 0, "failed": 0, "reports_dropped": 0}
        self.wake = asyncio.Event()
        self.beat_now = asyncio.Event()
        self.flush_lock = asyncio.Lock()
        self.ws: Any = None
        self.acks: OrderedDict[str, str] = OrderedDict()  # command_id -> status, to re-ACK

    # --- saved state --------------------------------------------------------------------------

    def load_state(self) -> None:
        try:
            saved = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return
        self.paused = bool(saved.get("paused"))
        self.panicked = bool(saved.get("panicked"))
        if isinstance(saved.get("cooldown_until"), int | float):
            self.cooldown.until = float(saved["cooldown_until"])
        log.info("state resumed", extra={"paused": self.paused, "panicked": self.panicked})

    def save_state(self) -> None:
        data = {"paused": self.paused, "panicked": self.panicked,
                "cooldown_until": self.cooldown.until}  # fmt: skip
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_file)

    # --- entry point --------------------------------------------------------------------------

    async def run(self, mode: str) -> int:
        self.load_state()
        # SIGTERM (a service manager, honcho) stops as the `stop` command does: the current
        # task is finished and reported first.
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        helpers = [
            asyncio.create_task(self.heartbeat_loop()),
            asyncio.create_task(self.socket_loop()),
            asyncio.create_task(self.outbox_loop()),
        ]
        try:
            await self.reload_config()
            await self.flush_outbox()
            return await self.work_loop(mode)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.wait(helpers, timeout=5)
            with contextlib.suppress(httpx.HTTPError):
                await self.api.post(f"{API}/agents/heartbeat", json=self.heartbeat("offline"))
            await self.engine.close()
            await self.api.aclose()

    def request_stop(self) -> None:
        self.stopping = True
        self.wake.set()

    async def nap(self, seconds: float) -> None:
        """Sleep, but wake early on resume or stop."""
        await wait_event(self.wake, seconds)
        self.wake.clear()

    async def set_status(self, status: str) -> None:
        if status == self.status:
            return
        self.status = status
        if self.ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(json.dumps({"type": "status", "status": status}))
        self.beat_now.set()

    # --- the task loop ------------------------------------------------------------------------

    async def work_loop(self, mode: str) -> int:
        idle_since = time.monotonic()
        while not self.stopping:
            if self.paused or self.panicked:
                await self.set_status("panic" if self.panicked else "paused")
                await self.nap(self.config.poll_interval)
                idle_since = time.monotonic()
                continue
            if (left := self.cooldown.remaining()) > 0:
                await self.set_status("idle")
                await self.nap(left)
                continue
            try:
                if not self.emulation_loaded:  # the server was away at start
                    await self.reload_config()
                task = await self.next_task()
            except httpx.HTTPError as exc:
                log.warning("server unreachable", extra={"error": repr(exc)})
                await self.nap(self.config.poll_interval)
                continue
            if task is None:
                await self.set_status("ready")
                idle = time.monotonic() - idle_since
                if mode == "run" and idle >= self.config.idle_exit and not len(self.outbox):
                    log.info("no task left; done", extra=self.stats)
                    return 0
                await self.nap(min(self.config.poll_interval, self.config.idle_exit))
                continue
            await self.work_on(task)
            idle_since = time.monotonic()
            await self.nap(self.pause_between(task))
        return 0

    async def next_task(self) -> dict[str, Any] | None:
        response = await self.api.get(f"{API}/tasks/next")
        if response.status_code == 204:
            return None
        if response.status_code in (401, 403):
            raise AuthError(f"{response.status_code}: {response.text[:200]}")
        response.raise_for_status()
        return dict(response.json())

    def _uniform_ms(self, low: str, high: str) -> float:
        a, b = int(self.emulation[low]), int(self.emulation[high])
        return self.rng.uniform(min(a, b), max(a, b)) / 1000 * self.config.scale

    def pause_between(self, task: dict[str, Any]) -> float:
        return self._uniform_ms("min_delay_ms", "max_delay_ms")

    async def work_on(self, task: dict[str, Any]) -> None:
        self.current_task = str(task["id"])
        await self.set_status("working")
        started = time.monotonic()
        url = site_url(str(task["url"]), str(task["marketplace"]), self.config.sites)
        outcome = await self.fetch(url, task)
        body = {
            "raw_text": outcome.text if outcome.success else "",
            "timing_ms": int((time.monotonic() - started) * 1000),
            "success": outcome.success,
            "error": outcome.error,
            "lease_version": task.get("lease_version"),
        }
        if outcome.screenshot:
            body["screenshot"] = outcome.screenshot
        entry = self.outbox.put(self.current_task, body)
        await self.deliver(entry)
        self.current_task = None
        self.stats["completed" if outcome.success else "failed"] += 1
        if outcome.panic:
            await self.enter_panic(outcome.panic, url, task, outcome.status_code)
        elif outcome.success:
            self.cooldown.success()
        elif self.cooldown.failure():
            # Rest instead of hammering the site; first send whatever was collected.
            await self.flush_outbox()
            self.save_state()
            log.warning(
                "cooling down",
                extra={"seconds": self.cooldown.duration, "after": self.config.cooldown_after},
            )

    async def fetch(self, url: str, task: dict[str, Any]) -> Outcome:
        exit_ = self.pool.pick()
        retry_index = 0
        while True:
            page: Page = await self.engine.fetch(url, exit_)
            verdict = classify(page)
            panic = self.panic.observe(page.status, page.captcha)
            if verdict.error_type:
                self.error_event(verdict, page, exit_.name, retry_index)
            if verdict.report:
                if verdict.error_type == "captcha":
                    self.pool.problem(exit_)
                else:
                    self.pool.success(exit_)
                    await self.nap(self._uniform_ms("page_view_min_ms", "page_view_max_ms"))
                return Outcome(True, page.text, panic=panic, status_code=page.status,
                               screenshot=page.screenshot)  # fmt: skip
            self.pool.problem(exit_)
            error = f"{verdict.error_type}: {page.error or f'HTTP {page.status}'}"
            delay = self.retries.delay(retry_index) if verdict.retriable else None
            if panic or delay is None or self.stopping:
                return Outcome(False, error=error, panic=panic, status_code=page.status)
            await self.nap(delay * self.config.scale)
            exit_ = self.pool.pick(avoid=exit_)
            retry_index += 1

    def error_event(self, verdict: Any, page: Page, proxy: str, retry_index: int) -> None:
        """One structured event per problem (SPEC §11), as fields of a log record."""
        level = logging.INFO if verdict.error_type == "not_found" else logging.WARNING
        log.log(
            level,
            "fetch problem",
            extra={
                "error_type": verdict.error_type,
                "error_source": verdict.error_source,
                "url": page.url,
                "proxy": proxy,
                "retry_index": retry_index,
                "action_required": verdict.action_required,
                "status_code": page.status,
            },
        )

    async def enter_panic(
        self, reason: str, url: str, task: dict[str, Any], status_code: int | None
    ) -> None:
        """Tell the server and stop taking tasks until an operator sends ``resume``."""
        self.panicked = True
        self.save_state()
        details: dict[str, Any] = {"url": url, "marketplace": task.get("marketplace"),
                                   "status_code": status_code}  # fmt: skip
        if self.config.ip:
            details["ip"] = self.config.ip
        log.error("panic", extra={"reason": reason, **details})
        with contextlib.suppress(httpx.HTTPError):
            await self.api.post(f"{API}/agents/panic", json={"reason": reason, "details": details})
        await self.set_status("panic")

    # --- reports and the outbox ---------------------------------------------------------------

    async def deliver(self, entry: Entry) -> bool:
        """Send one stored report; True when it is settled (accepted, or never will be)."""
        try:
            response = await self.api.post(f"{API}/tasks/{entry.task_id}/report", json=entry.body)
        except httpx.HTTPError as exc:
            log.warning("report kept in the outbox", extra={"task": entry.task_id,
                                                            "error": repr(exc)})  # fmt: skip
            return False
        if response.status_code == 200:
            self.outbox.remove(entry)
            return True
        if response.status_code in FINAL_REJECTIONS:
            log.warning(
                "report dropped",
                extra={"task": entry.task_id, "status_code": response.status_code,
                       "detail": response.text[:300]},
            )  # fmt: skip
            self.stats["reports_dropped"] += 1
            self.outbox.remove(entry)
            return True
        log.warning("report kept in the outbox",
                    extra={"task": entry.task_id, "status_code": response.status_code})  # fmt: skip
        return False

    async def flush_outbox(self) -> bool:
        """Deliver every stored report; True when the outbox is empty."""
        async with self.flush_lock:
            for entry in self.outbox.pending():
                if not await self.deliver(entry):
                    return False
            return True

    async def outbox_loop(self) -> None:
        backoff = 1.0
        while True:
            await asyncio.sleep(backoff)
            if len(self.outbox) and not await self.flush_outbox():
                backoff = min(backoff * 2, 60.0)
            else:
                backoff = 1.0

    # --- heartbeats and configuration ---------------------------------------------------------

    def heartbeat(self, status: str | None = None) -> dict[str, Any]:
        stats: dict[str, Any] = {
            **self.stats,
            "version": VERSION,
            "engine": self.engine.name,
            "outbox": len(self.outbox),
            "exits_bad": self.pool.bad_count(),
            "cooldown_seconds_left": int(self.cooldown.remaining()),
        }
        if self.config.ip:
            stats["ip"] = self.config.ip
        return {"status": status or self.status, "current_task": self.current_task,
                "stats": stats}  # fmt: skip

    async def heartbeat_loop(self) -> None:
        while True:
            try:
                response = await self.api.post(f"{API}/agents/heartbeat", json=self.heartbeat())
                if response.status_code != 200:
                    log.warning("heartbeat refused", extra={"status_code": response.status_code})
            except httpx.HTTPError as exc:
                log.warning("heartbeat failed", extra={"error": repr(exc)})
            await wait_event(self.beat_now, self.config.heartbeat_interval)
            self.beat_now.clear()

    async def reload_config(self) -> bool:
        try:
            response = await self.api.get(f"{API}/config/emulation")
        except httpx.HTTPError as exc:
            log.warning("emulation settings unavailable", extra={"error": repr(exc)})
            return False
        if response.status_code in (401, 403):
            raise AuthError(f"{response.status_code}: {response.text[:200]}")
        if response.status_code != 200:
            return False
        self.emulation.update({k: v for k, v in response.json().items() if k in EMULATION_DEFAULTS})
        return True

    # --- the command socket -------------------------------------------------------------------

    def socket_url(self) -> str:
        base = self.config.server.rstrip("/")
        base = "ws" + base[4:] if base.startswith("http") else base
        query = f"?agent_id={self.config.agent_id}" if self.config.agent_id else ""
        return f"{base}/ws/watcher{query}"

    async def socket_loop(self) -> None:
        backoff = 1.0
        while True:
            code = None
            connected_at: float | None = None
            try:
                async with websockets.connect(
                    self.socket_url(),
                    additional_headers={"Authorization": f"Bearer {self.config.api_key}"},
                    proxy=None,
                    open_timeout=10,
                ) as ws:
                    self.ws = ws
                    connected_at = time.monotonic()
                    log.info("command socket connected")
                    await ws.send(json.dumps({"type": "status", "status": self.status}))
                    async for message in ws:
                        await self.on_message(ws, message)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                log.info("command socket unavailable", extra={"error": repr(exc)})
            finally:
                self.ws = None
            # Backoff starts over only after a socket that lived: one the server accepts and
            # closes at once (1013 while its database is down) must not be retried every second.
            if connected_at is not None and time.monotonic() - connected_at >= STABLE_SOCKET:
                backoff = 1.0
            if code == CLOSE_INVALID_KEY:
                log.error("command socket refused: invalid API key")
                backoff = 60.0
            elif code == CLOSE_REPLACED:
                log.warning("command socket replaced by a newer connection of this agent")
            delay = backoff * self.rng.uniform(0.8, 1.2)
            backoff = min(backoff * 2, 60.0)
            await asyncio.sleep(delay)

    async def on_message(self, ws: Any, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            log.warning("invalid JSON on the command socket")
            return
        if not isinstance(data, dict) or data.get("type") != "command":
            if isinstance(data, dict) and data.get("type") == "error":
                log.error("server error on the socket", extra={"detail": data.get("detail")})
            return
        command_id = str(data.get("command_id", ""))
        if command_id in self.acks:  # a re-sent command: ACK again, do not repeat it
            await ws.send(json.dumps({"type": "ack", "command_id": command_id,
                                      "status": self.acks[command_id]}))  # fmt: skip
            return
        asyncio.create_task(self.obey(ws, command_id, data))  # noqa: RUF006 - ends by itself

    async def obey(self, ws: Any, command_id: str, data: dict[str, Any]) -> None:
        action = str(data.get("action"))
        params = data.get("params") if isinstance(data.get("params"), dict) else {}
        log.info("command", extra={"command": action, "command_id": command_id})
        status = await self.execute(action, params)
        self.acks[command_id] = status
        while len(self.acks) > 200:
            self.acks.popitem(last=False)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"type": "ack", "command_id": command_id, "status": status}))

    async def execute(self, action: str, params: dict[str, Any]) -> str:
        if action == "pause":
            self.paused = True
            self.save_state()
            await self.set_status("paused")
        elif action == "resume":
            self.paused = self.panicked = False
            self.save_state()
            await self.set_status("ready")
            self.wake.set()
        elif action == "stop":
            self.request_stop()
        elif action == "reload_config":
            return "ok" if await self.reload_config() else "error"
        elif action == "refresh_cookies":
            await self.engine.refresh_cookies()
            return await self.run_hook(action, params)
        elif action == "reboot_modem":
            return await self.run_hook(action, params)
        else:
            return "unknown_command"
        return "ok"

    async def run_hook(self, name: str, params: dict[str, Any]) -> str:
        """The operator's shell command for ``name`` (none configured: nothing to do)."""
        command = self.config.hooks.get(name)
        if not command:
            return "ok"
        env = {**os.environ, "WATCHER_AGENT_COMMAND": name,
               "WATCHER_AGENT_PARAMS": json.dumps(params)}  # fmt: skip
        process = await asyncio.create_subprocess_shell(command, env=env)
        try:
            code = await asyncio.wait_for(process.wait(), self.config.hook_timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.error("hook timed out", extra={"hook": name})
            return "error"
        if code != 0:
            log.error("hook failed", extra={"hook": name, "exit_code": code})
            return "error"
        return "ok"
