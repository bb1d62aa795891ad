"""Management commands whose output scripts rely on."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from watcher.models import Agent, Task
from watcher.services.agents import authenticate_key

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_agent_prints_the_key_alone_on_the_last_line() -> None:
    lines = run("create_agent", "modem-7").strip().splitlines()
    agent = Agent.objects.get(name="modem-7")
    assert lines[0] == f"id: {agent.pk}"
    key = lines[-1]
    assert key.startswith("wa_") and " " not in key
    assert authenticate_key(key) == agent
    with pytest.raises(CommandError, match="exists already"):
        run("create_agent", "modem-7")
    with pytest.raises(CommandError, match="empty"):
        run("create_agent", "  ")


def test_generate_tasks_prints_counts_per_marketplace_and_is_idempotent() -> None:
    run("load_demo")
    first = run("generate_tasks", "--date", "2026-11-20")
    assert "wildberries: 5 created" in first and "total: 14 created" in first
    assert "total: 0 created" in run("generate_tasks", "--date", "2026-11-20")
    assert Task.objects.count() == 14
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        run("generate_tasks", "--date", "20.11.2026")


def test_rebuild_queues_and_load_demo_report_what_they_did() -> None:
    assert "6 subscriptions and 8 competitors created" in run("load_demo")
    assert "0 subscriptions and 0 competitors created" in run("load_demo")
    assert "not loaded" in run("load_demo", "--if-empty")
    run("generate_tasks")
    assert "total: 14 queued" in run("rebuild_queues")


def test_ensure_admin_creates_once_and_shows_a_generated_password(monkeypatch) -> None:
    monkeypatch.delenv("WATCHER_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("WATCHER_ADMIN_USER", "boss")
    out = run("ensure_admin")
    password = next(
        line.split(": ", 1)[1] for line in out.splitlines() if line.strip().startswith("password")
    )
    assert User.objects.get(username="boss").check_password(password)
    assert "exists" in run("ensure_admin")
    assert User.objects.filter(username="boss").count() == 1
