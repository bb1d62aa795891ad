"""Create an agent; prints its id and, alone on the last line, its API key (shown once)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from watcher.models import Agent
from watcher.services.agents import create_agent


class Command(BaseCommand):
    help = "Create a watcher agent and print its id and API key (the key alone on the last line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        name = name.strip()
        if not name:
            raise CommandError("The agent name must not be empty.")
        if Agent.objects.filter(name=name).exists():
            raise CommandError(f"An agent named {name!r} exists already.")
        agent, key = create_agent(name)
        self.stdout.write(f"id: {agent.pk}")
        self.stdout.write(key)
