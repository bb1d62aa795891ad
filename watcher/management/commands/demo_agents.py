"""Create the two demo agents and write their agent config files (API keys, 0600)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from watcher.services.demo import ensure_demo_agents


class Command(BaseCommand):
    help = (
        "Create the demo agents if missing and write their config files (with their API keys, "
        "readable by you only) to the data folder, for `python -m watcher.agent --config`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--server", default="http://127.0.0.1:8000")
        parser.add_argument("--market", default="http://127.0.0.1:9001")
        parser.add_argument("--dir", default=None, help="default: <data folder>/demo-agents")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(options["dir"] or Path(settings.DATA_DIR) / "demo-agents")
        for path in ensure_demo_agents(directory, options["server"], options["market"]):
            self.stdout.write(f"Demo agent config: {path}")
