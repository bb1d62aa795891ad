"""The command line: settings, logging, and the ``run`` / ``watch`` modes."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

from watcher.agent.config import argument_parser, load_config
from watcher.agent.runtime import AgentRuntime, AuthError

log = logging.getLogger("watcher.agent")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser()
    args = vars(parser.parse_args(argv))
    mode = args.pop("mode")
    try:
        config = load_config(args)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(config.log_level.upper())
    log.propagate = False
    if mode == "run":
        try:
            return asyncio.run(AgentRuntime(config).run("run"))
        except AuthError as exc:
            log.error("the server refuses this agent", extra={"detail": str(exc)})
            return 2
    # watch: forever; after a crash, start again from the saved state (outbox, pause, panic).
    backoff = 1.0
    while True:
        try:
            return asyncio.run(AgentRuntime(config).run("watch"))  # returns on `stop` only
        except KeyboardInterrupt:
            return 0
        except AuthError as exc:
            log.error("the server refuses this agent", extra={"detail": str(exc)})
            backoff = 60.0
        except Exception:
            log.exception("agent crashed; resuming from the saved state")
        time.sleep(backoff)
        backoff = min(backoff * 2, 60.0)
