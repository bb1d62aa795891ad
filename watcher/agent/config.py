"""The agent's settings: command line over environment (``WATCHER_AGENT_*``) over a YAML file
over defaults."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

MARKETPLACES = ("wildberries", "ozon", "yandex_market")
ENV_PREFIX = "WATCHER_AGENT_"
# --fast divides every wait (emulation delays, retries, cooldown) by this much.
FAST_SCALE = 0.01


@dataclass
class AgentConfig:
    server: str = ""
    api_key: str = ""
    agent_id: str = ""
    sites: dict[str, str] = field(default_factory=dict)
    exits: list[str] = field(default_factory=list)
    ip: str = ""  # the public IP to report; empty: the server uses the request's address
    state_dir: str = ".watcher-agent"
    fast: bool = False
    engine: str = "http"  # or "browser" (needs Playwright; see watcher/agent/requirements.txt)
    chromium: str = "/usr/bin/chromium"
    screenshots: bool = True  # browser engine: attach the product block's screenshot
    idle_exit: float = 60.0  # `run` stops after this long without a task (and no report left)
    poll_interval: float = 5.0
    heartbeat_interval: float = 30.0
    request_timeout: float = 30.0
    retry_fast: list[float] = field(default_factory=lambda: [30.0, 60.0])
    retry_long: list[float] = field(default_factory=lambda: [120.0, 240.0, 900.0])
    max_retries: int = 5
    cooldown_after: int = 5
    cooldown_seconds: float = 3600.0
    exit_revive_seconds: float = 1800.0
    panic_403_burst: int = 3
    panic_403_window: float = 300.0
    hooks: dict[str, str] = field(default_factory=dict)  # command name -> shell command
    hook_timeout: float = 120.0
    user_agent: str = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Safari/537.36"
    )
    log_level: str = "INFO"

    @property
    def scale(self) -> float:
        return FAST_SCALE if self.fast else 1.0

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    def validate(self) -> None:
        if not self.server:
            raise ValueError("--server (or WATCHER_AGENT_SERVER) is required")
        if not self.api_key:
            raise ValueError("--api-key (or WATCHER_AGENT_API_KEY) is required")
        if urlsplit(self.server).scheme not in ("http", "https"):
            raise ValueError("--server must be an http(s) URL")
        for name in self.sites:
            if name not in MARKETPLACES:
                raise ValueError(f"unknown marketplace in --site: {name!r}")
        if self.engine not in ("http", "browser"):
            raise ValueError("--engine must be http or browser")
        unknown = set(self.hooks) - {"reboot_modem", "refresh_cookies"}
        if unknown:
            raise ValueError(f"unknown hooks: {', '.join(sorted(unknown))}")


def parse_sites(items: list[str] | str) -> dict[str, str]:
    """``["ozon=http://host/ozon", ...]`` or ``"ozon=...,wildberries=..."`` → a dict."""
    if isinstance(items, str):
        items = [item for item in items.split(",") if item.strip()]
    sites = {}
    for item in items:
        name, sep, base = item.partition("=")
        if not sep or not base.strip():
            raise ValueError(f"--site takes MARKETPLACE=BASE_URL, got {item!r}")
        sites[name.strip()] = base.strip().rstrip("/")
    return sites


def _coerce(name: str, value: Any, default: Any) -> Any:
    if name == "sites":
        return parse_sites(value) if not isinstance(value, dict) else dict(value)
    if isinstance(default, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    if isinstance(default, list):
        items = value if isinstance(value, list) else str(value).split(",")
        kind = float if default and isinstance(default[0], float) else str
        return [kind(item) for item in items if str(item).strip()]
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be a mapping")
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(default, float):
        return float(value)
    if isinstance(default, int):
        return int(value)
    return str(value)


def load_config(cli: dict[str, Any], environ: dict[str, str] | None = None) -> AgentConfig:
    """Merge the sources; ``cli`` holds only the options given on the command line."""
    environ = dict(os.environ if environ is None else environ)
    defaults = AgentConfig()
    merged: dict[str, Any] = {}
    config_file = cli.get("config") or environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings")
        merged.update({k.replace("-", "_"): v for k, v in loaded.items()})
    for f in fields(AgentConfig):
        if (value := environ.get(ENV_PREFIX + f.name.upper())) is not None:
            merged[f.name] = value
    merged.update({k: v for k, v in cli.items() if v is not None and k != "config"})
    known = {f.name for f in fields(AgentConfig)}
    if unknown := set(merged) - known:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    values = {k: _coerce(k, v, getattr(defaults, k)) for k, v in merged.items()}
    config = AgentConfig(**values)
    config.validate()
    return config


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m watcher.agent",
        description="The reference Watcher agent: pulls tasks, fetches pages, reports them.",
    )
    parser.add_argument(
        "mode",
        choices=("run", "watch"),
        help="run: until the server has had no task for --idle-exit seconds; watch: forever",
    )
    parser.add_argument("--server", help="the Watcher server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", help="this agent's API key")
    parser.add_argument("--agent-id", help="this agent's id (optional)")
    parser.add_argument(
        "--site",
        dest="sites",
        action="append",
        metavar="MARKETPLACE=BASE_URL",
        help="fetch a marketplace's pages from BASE_URL + the task URL's path (repeatable)",
    )
    parser.add_argument(
        "--exit", dest="exits", action="append", metavar="PROXY_URL",
        help="an exit (proxy URL, or 'direct'); repeatable; default: direct",
    )  # fmt: skip
    parser.add_argument("--ip", help="the public IP to report in heartbeats")
    parser.add_argument(
        "--engine", choices=("http", "browser"), help="plain HTTP (default) or a real browser"
    )
    parser.add_argument("--chromium", help="the browser engine's Chromium (/usr/bin/chromium)")
    parser.add_argument("--state-dir", help="outbox and saved state (default .watcher-agent)")
    parser.add_argument(
        "--fast", action="store_true", default=None, help="scale every wait down 100× (tests)"
    )
    parser.add_argument("--idle-exit", type=float, help="run: seconds without a task before exit")
    parser.add_argument("--heartbeat-interval", type=float)
    parser.add_argument("--poll-interval", type=float)
    parser.add_argument("--config", help="a YAML file of settings (same names, underscores)")
    parser.add_argument("--log-level")
    return parser
