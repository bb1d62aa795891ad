"""Run tonight's task generation now and print the counts per marketplace."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from watcher.services.generator import generate_tasks


class Command(BaseCommand):
    help = "Generate the night's scraping tasks now (idempotent) and print counts per marketplace."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="Night to generate, YYYY-MM-DD (default: today).")

    def handle(self, *args: Any, **options: Any) -> None:
        day = None
        if options["date"]:
            try:
                day = dt.date.fromisoformat(options["date"])
            except ValueError as exc:
                raise CommandError(f"--date must be YYYY-MM-DD, got {options['date']!r}") from exc
        result = generate_tasks(day)
        self.stdout.write(f"night {result.day.isoformat()}")
        for mp, n in result.created.items():
            self.stdout.write(f"{mp}: {n} created, {result.queued.get(mp, 0)} queued")
        self.stdout.write(f"total: {result.total_created} created")
        if result.expired:
            self.stdout.write(f"expired leftovers of earlier nights: {result.expired}")
