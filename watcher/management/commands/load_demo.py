"""Demo brands, subscriptions and competitors (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from watcher.services.demo import load_demo


class Command(BaseCommand):
    help = "Load demo subscriptions and competitors; running it again changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing if any subscription exists."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        created = load_demo(only_if_empty=options["if_empty"])
        if created is None:
            self.stdout.write("Subscriptions exist; demo data not loaded.")
            return
        self.stdout.write(
            f"Demo data: {created['subscriptions']} subscriptions and "
            f"{created['competitors']} competitors created."
        )
