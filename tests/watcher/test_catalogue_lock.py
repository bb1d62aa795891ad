"""watcher_task keeps no database foreign keys to the catalogue; integrity holds without them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest
from django.db import OperationalError, connection, transaction

from tests.factories import CompetitorFactory, SubscriptionFactory, TaskFactory
from tests.threads import held_in_another_thread
from watcher.models import Competitor, Subscription, Task
from watcher.services import generator

pytestmark = pytest.mark.django_db(transaction=True)


def test_deleting_a_subscription_removes_its_tasks_and_its_competitors_tasks() -> None:
    sub = SubscriptionFactory()
    competitor = CompetitorFactory(subscription=sub)
    generator.generate_tasks()
    other = SubscriptionFactory()
    TaskFactory(subscription=other)
    assert Task.objects.filter(subscription=sub).count() == 2

    sub.delete()

    assert not Task.objects.filter(subscription_id=sub.pk).exists()
    assert not Task.objects.filter(competitor_id=competitor.pk).exists()
    assert not Competitor.objects.filter(pk=competitor.pk).exists()
    assert Task.objects.filter(subscription=other).count() == 1


def test_tasks_added_after_the_delete_collected_its_rows_go_too() -> None:
    # Django collects a row's tasks before its delete transaction begins; a night generated in
    # between adds tasks the collector never saw. The pre_delete hook removes them.
    sub = SubscriptionFactory()
    straggler = TaskFactory(subscription=sub)
    with transaction.atomic():
        generator.catalogue_row_deleting(Subscription, sub)
    assert not Task.objects.filter(pk=straggler.pk).exists()


def test_lock_catalogue_needs_a_transaction() -> None:
    with pytest.raises(RuntimeError, match="transaction"):
        generator.lock_catalogue(shared=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer anyway")
def test_a_delete_waits_for_a_running_generation() -> None:
    sub = SubscriptionFactory()

    @contextlib.contextmanager
    def generation() -> Iterator[None]:
        with transaction.atomic():
            generator.lock_catalogue(shared=False)
            yield

    with held_in_another_thread(generation):
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
            sub.delete()
        assert Subscription.objects.filter(pk=sub.pk).exists()  # nothing changed
    Subscription.objects.get(pk=sub.pk).delete()
    assert not Subscription.objects.filter(pk=sub.pk).exists()


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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer anyway")
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
