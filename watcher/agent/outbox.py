"""The on-disk outbox: every report is written here before it is sent, and removed only when
the server has taken it (or answered that it never will, e.g. 409 for an expired lease).

One JSON file per report, written atomically (temporary file, fsync, rename), so a crash or a
``kill -9`` at any moment leaves either no file or a whole one, never half a report.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("watcher.agent")

_SAFE = re.compile(r"[^0-9A-Za-z_-]")


@dataclass(frozen=True)
class Entry:
    path: Path
    task_id: str
    body: dict[str, Any]


class Outbox:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def put(self, task_id: str, body: dict[str, Any]) -> Entry:
        """Store a report durably; the same task and lease overwrite (a report is idempotent)."""
        name = f"{_SAFE.sub('_', task_id)}-{body.get('lease_version', 0)}.json"
        path = self.directory / name
        data = json.dumps({"task_id": task_id, "body": body}, ensure_ascii=False).encode()
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Entry(path, task_id, body)

    def pending(self) -> list[Entry]:
        """Undelivered reports, oldest first; unreadable files are set aside, not retried."""
        entries = []
        files = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for path in files:
            try:
                stored = json.loads(path.read_text())
                entries.append(Entry(path, str(stored["task_id"]), dict(stored["body"])))
            except (OSError, ValueError, KeyError, TypeError):
                log.error("unreadable outbox file set aside", extra={"file": path.name})
                path.rename(path.with_suffix(".broken"))
        return entries

    def remove(self, entry: Entry) -> None:
        entry.path.unlink(missing_ok=True)

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*.json"))
