"""Tasks and the catalogue: deleting catalogue rows, generation racing deletes, one generation at
a time, and the migration that gave watcher_task its foreign keys."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import ProtectedError
from django.db.models.signals import pre_delete

from tests.factories import (
    AgentFactory,
    CompetitorFactory,
    PriceHistoryFactory,
    SubscriptionFactory,
    TaskFactory,
)
from tests.threads import held_in_another_thread
from watcher.models import Agent, Competitor, PriceHistory, Subscription, Task, TaskReport
from watcher.services import generator

pytestmark = pytest.mark.django_db(transaction=True)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite runs one writer at a time"
)


def _night_with_history() -> tuple[Subscription, Competitor, Task, Task]:
    """A subscription and its competitor with tonight's tasks, a report and their prices."""
    sub = SubscriptionFactory()
    competitor = CompetitorFactory(subscription=sub)
    generator.generate_tasks()
    own = Task.objects.get(subscription=sub, competitor=None)
    rival = Task.objects.get(competitor=competitor)
    TaskReport.objects.create(task=own, attempt=1, success=True, timing_ms=10)
    PriceHistoryFactory(subscription=sub, task=own)
    PriceHistoryFactory(
        subscription=sub, competitor=competitor, task=rival, sku=competitor.competitor_sku
    )
    return sub, competitor, own, rival


def test_deleting_a_subscription_deletes_its_competitors_tasks_reports_and_prices() -> None:
    sub, competitor, _own, rival = _night_with_history()
    agent = AgentFactory(current_task=rival)
    other = TaskFactory()
    PriceHistoryFactory(subscription=other.subscription, task=other)

    # Price history is never deleted with its subscription (issue 18: archive instead) ...
    with pytest.raises(ProtectedError):
        sub.delete()
    assert PriceHistory.objects.filter(subscription=sub).count() == 2
    # ... so only one without history goes, with its competitors, tasks and reports.
    PriceHistory.objects.filter(subscription=sub).delete()
    sub.delete()

    assert not Competitor.objects.filter(pk=competitor.pk).exists()
    assert list(Task.objects.all()) == [other]
    assert not TaskReport.objects.exists()
    assert list(PriceHistory.objects.values_list("task", flat=True)) == [other.pk]
    agent.refresh_from_db()
    assert agent.current_task is None


def test_deleting_a_competitor_deletes_its_tasks_and_prices_only() -> None:
    sub, competitor, own, _rival = _night_with_history()

    with pytest.raises(ProtectedError):  # its price history is kept (issue 18)
        competitor.delete()
    PriceHistory.objects.filter(competitor=competitor).delete()
    competitor.delete()

    assert list(Task.objects.all()) == [own]
    assert TaskReport.objects.get().task == own
    assert list(PriceHistory.objects.values_list("task", flat=True)) == [own.pk]
    assert Subscription.objects.filter(pk=sub.pk).exists()


def _wait_for_a_lock_wait() -> None:
    """Until another session of this database waits for a lock."""
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("no session ever waited for a lock")


@postgresql_only
def test_a_generation_skips_rows_deleted_while_it_inserts_them() -> None:
    kept = SubscriptionFactory()
    doomed = SubscriptionFactory()
    CompetitorFactory(subscription=doomed)

    @contextlib.contextmanager
    def deleting() -> Iterator[None]:
        with transaction.atomic():
            Subscription.objects.get(pk=doomed.pk).delete()
            yield

    results: dict[str, generator.GenerationResult] = {}

    def generate() -> None:
        try:
            results["night"] = generator.generate_tasks()
        finally:
            connection.close()

    thread = threading.Thread(target=generate)
    with held_in_another_thread(deleting):
        thread.start()
        # The delete is not committed: the INSERT still reads the rows, and its foreign-key
        # check at commit waits for the delete.
        _wait_for_a_lock_wait()
    thread.join(30)

    assert results["night"].total_created == 1
    assert list(Task.objects.values_list("subscription", flat=True)) == [kept.pk]
    assert not Subscription.objects.filter(pk=doomed.pk).exists()


@postgresql_only
def test_a_delete_racing_a_generation_fails_whole_and_succeeds_when_repeated() -> None:
    sub = SubscriptionFactory()
    CompetitorFactory(subscription=sub)

    def generate() -> None:
        try:
            generator.generate_tasks()
        finally:
            connection.close()

    def generate_meanwhile(**kwargs: object) -> None:
        # A night committed after the delete collected the row's tasks (none then).
        thread = threading.Thread(target=generate)
        thread.start()
        thread.join(30)

    pre_delete.connect(generate_meanwhile, sender=Subscription, dispatch_uid="test-race")
    try:
        with pytest.raises(IntegrityError):
            Subscription.objects.get(pk=sub.pk).delete()
    finally:
        pre_delete.disconnect(sender=Subscription, dispatch_uid="test-race")
    assert Competitor.objects.filter(subscription=sub).count() == 1
    assert Task.objects.filter(subscription=sub).count() == 2

    sub.delete()
    assert not Task.objects.exists() and not Competitor.objects.exists()


def test_generation_in_chunks_creates_and_queues_every_task_once(monkeypatch) -> None:
    from watcher.services import queues

    monkeypatch.setattr(generator, "CHUNK_SUBSCRIPTIONS", 2)
    subs = [SubscriptionFactory() for _ in range(5)]
    for sub in subs[:3]:
        CompetitorFactory(subscription=sub)
    SubscriptionFactory(is_active=False)

    first = generator.generate_tasks()
    assert first.total_created == 8  # 5 own SKUs + 3 competitors, in 3 chunks
    assert sum(first.queued.values()) == 8 == Task.objects.count()
    again = generator.generate_tasks()
    assert again.total_created == 0
    assert sum(queues.lengths().values()) == 8


@postgresql_only
def test_a_second_generation_waits_for_the_first_and_finds_the_night_done(monkeypatch) -> None:
    from watcher.services import queues

    SubscriptionFactory.create_batch(3)
    rebuilds: list[int] = []
    monkeypatch.setattr(queues, "rebuild", lambda: rebuilds.append(1))
    # The first run has committed its rows and is still pushing their ids to Redis.
    pushing, finish_push = threading.Event(), threading.Event()
    real_push = queues.push

    def slow_push(rows):
        pushing.set()
        finish_push.wait(30)
        return real_push(rows)

    results: dict[str, generator.GenerationResult] = {}

    def run(name: str) -> None:
        try:
            results[name] = generator.generate_tasks()
        finally:
            connection.close()

    monkeypatch.setattr(queues, "push", slow_push)
    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert pushing.wait(30)
    monkeypatch.setattr(queues, "push", real_push)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    second.join(1.0)
    assert second.is_alive()  # waits for the first run instead of rebuilding the queues
    finish_push.set()
    first.join(30)
    second.join(30)
    assert results["first"].total_created == 3 and results["second"].total_created == 0
    assert rebuilds == []
    assert sum(queues.lengths().values()) == 3
    # The lock went with the runs: a third one gets it at once.
    assert generator.generate_tasks().total_created == 0


BEFORE_FOREIGN_KEYS = [("watcher", "0006_agentcommand_sent_by_name")]
WITH_FOREIGN_KEYS = [("watcher", "0008_task_catalogue_foreign_keys")]


def test_the_foreign_key_migration_deletes_tasks_whose_catalogue_row_is_gone() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_FOREIGN_KEYS)
    try:
        old = executor.loader.project_state(BEFORE_FOREIGN_KEYS).apps
        sub = old.get_model("watcher", "Subscription").objects.create(
            brand="B", marketplace="ozon", sku="1"
        )
        competitor = old.get_model("watcher", "Competitor").objects.create(
            subscription=sub, competitor_sku="2"
        )
        tasks = old.get_model("watcher", "Task").objects
        night = {"url": "https://x", "marketplace": "ozon", "brand": "B"}
        night["scheduled_date"] = "2026-11-20"
        own = tasks.create(subscription=sub, sku="1", **night)
        rival = tasks.create(subscription=sub, competitor=competitor, sku="2", **night)
        # Rows left by deletes under the old scheme, with their report, price and agent.
        gone_sub = tasks.create(subscription_id=sub.pk + 1000, sku="3", **night)
        gone_rival = tasks.create(
            subscription=sub, competitor_id=competitor.pk + 1000, sku="4", **night
        )
        old.get_model("watcher", "TaskReport").objects.create(
            task=gone_sub, attempt=1, success=False, timing_ms=1
        )
        price = old.get_model("watcher", "PriceHistory").objects.create(
            subscription=sub, task=gone_rival, sku="1", marketplace="ozon", brand="B"
        )
        agent = old.get_model("watcher", "Agent").objects.create(
            name="a", api_key_prefix="p", api_key_digest="d", current_task=gone_sub
        )

        MigrationExecutor(connection).migrate(WITH_FOREIGN_KEYS)
    finally:
        call_command("migrate", verbosity=0)

    assert set(Task.objects.values_list("pk", flat=True)) == {own.pk, rival.pk}
    assert not TaskReport.objects.exists()
    assert PriceHistory.objects.get(pk=price.pk).task is None
    assert Agent.objects.get(pk=agent.pk).current_task is None
    # The database now refuses what the old scheme let through.
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(subscription_id=sub.pk + 1000, sku="5", **night)
