"""Rebuild the Redis ready queues from the pending tasks in the database."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from watcher.services import queues


class Command(BaseCommand):
    help = "Rebuild the Redis ready queues from PostgreSQL (after a Redis flush or restart)."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = queues.rebuild()
        for mp, n in counts.items():
            self.stdout.write(f"{mp}: {n} queued")
        self.stdout.write(f"total: {sum(counts.values())} queued")
