"""The result handler's hook queues observations in PostgreSQL; one worker task checks them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest
from django.db import connection, transaction

from alerts import queue
from alerts.models import Alert, AlertStatus, PendingCheck
from alerts.services import check_observation
from alerts.tasks import check_pending
from tests.alerts.conftest import observe, rule
from tests.factories import CompetitorFactory
from tests.threads import held_in_another_thread
from watcher.services.redis import get_redis

pytestmark = pytest.mark.django_db


@pytest.fixture
def empty_queue() -> Iterator[None]:
    get_redis().delete(queue.SCHEDULED_KEY)
    yield
    get_redis().delete(queue.SCHEDULED_KEY)


def test_an_idle_worker_checks_each_observation_at_once(
    pair, clock, empty_queue, celery_eager, django_capture_on_commit_callbacks
) -> None:
    subscription, competitor = pair
    rule()
    observe(clock, subscription, price=1000)
    with django_capture_on_commit_callbacks(execute=True):
        check_observation(observe(clock, subscription, competitor, price=800).pk)
    [alert] = Alert.objects.all()
    assert alert.status == AlertStatus.OPEN and alert.their_price == 800
    # the task is done and said so: the next observation starts another
    assert get_redis().get(queue.SCHEDULED_KEY) is None
    with django_capture_on_commit_callbacks(execute=True):
        check_observation(observe(clock, subscription, competitor, price=1000).pk)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_observations_stored_while_a_check_runs_wait_for_it_and_go_as_one_batch(
    no_default_rules, clock, empty_queue, celery_eager, django_capture_on_commit_callbacks
) -> None:
    rule()
    get_redis().set(queue.SCHEDULED_KEY, 1)  # a worker is busy draining
    competitors = CompetitorFactory.create_batch(3)
    for competitor in competitors:
        observe(clock, competitor.subscription, price=1000)
        with django_capture_on_commit_callbacks(execute=True):
            check_observation(observe(clock, competitor.subscription, competitor, price=800).pk)
    assert not Alert.objects.exists()  # no second task was sent: they wait
    assert queue.drain(batch=2) == 3
    assert {a.competitor for a in Alert.objects.all()} == set(competitors)
    assert not PendingCheck.objects.exists()
    assert get_redis().get(queue.SCHEDULED_KEY) is None


def test_a_lost_redis_loses_no_check(
    no_default_rules, clock, empty_queue, celery_eager, django_capture_on_commit_callbacks
) -> None:
    """The flag says a task is on its way, then Redis loses it with the task: the observations
    wait in PostgreSQL and the periodic task checks them."""
    rule()
    get_redis().set(queue.SCHEDULED_KEY, 1)  # a task is on its way…
    competitor = CompetitorFactory()
    observe(clock, competitor.subscription, price=1000)
    with django_capture_on_commit_callbacks(execute=True):
        check_observation(observe(clock, competitor.subscription, competitor, price=800).pk)
    get_redis().delete(queue.SCHEDULED_KEY)  # …and Redis is flushed with it
    assert not Alert.objects.exists() and PendingCheck.objects.count() == 1
    check_pending.delay()  # the periodic run
    assert Alert.objects.get().competitor == competitor
    assert not PendingCheck.objects.exists()


def test_a_check_that_dies_before_commit_stays_queued(no_default_rules, clock, empty_queue) -> None:
    """A worker killed mid-check never commits: neither alerts nor the queue's deletions land,
    and the next drain checks the same observations."""
    rule()
    competitor = CompetitorFactory()
    observe(clock, competitor.subscription, price=1000)
    check_observation(observe(clock, competitor.subscription, competitor, price=800).pk)

    class Killed(Exception):
        pass

    with pytest.raises(Killed), transaction.atomic():
        assert queue.check_batch() == 1
        assert Alert.objects.exists()
        raise Killed  # the connection dies: PostgreSQL rolls the check back
    assert not Alert.objects.exists() and PendingCheck.objects.count() == 1
    assert queue.drain() == 1
    assert Alert.objects.get().their_price == 800


def test_a_report_queues_its_observation_with_it(pair, clock, empty_queue) -> None:
    """The queue row commits or rolls back with the observation it names."""
    subscription, competitor = pair
    with pytest.raises(RuntimeError), transaction.atomic():
        check_observation(observe(clock, subscription, competitor, price=800).pk)
        assert PendingCheck.objects.count() == 1
        raise RuntimeError
    assert not PendingCheck.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_reparse_during_its_check_is_queued_again(pair, clock, empty_queue) -> None:
    """A drain holds an observation's row while a re-parse of it queues it again: the re-parse
    waits for the drain and its row is there afterwards, so the new figures are checked too."""
    subscription, competitor = pair
    get_redis().set(queue.SCHEDULED_KEY, 1)  # a task is on its way: none is sent from here
    observation = observe(clock, subscription, competitor, price=800)

    @contextlib.contextmanager
    def draining() -> Iterator[None]:
        with transaction.atomic():
            assert len(PendingCheck.objects.select_for_update().filter(pk=observation.pk)) == 1
            yield
            PendingCheck.objects.filter(pk=observation.pk).delete()  # checked, as drain does

    def reparse() -> None:
        try:
            with transaction.atomic():
                check_observation(observation.pk)
        finally:
            connection.close()

    check_observation(observation.pk)
    with held_in_another_thread(draining):
        other = threading.Thread(target=reparse)
        other.start()
        other.join(0.5)
    other.join(30)
    assert PendingCheck.objects.filter(pk=observation.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_batches_are_checked_one_at_a_time_across_workers(pair, clock, empty_queue) -> None:
    """Two workers draining at once: the second batch waits for the first to commit, so a later
    reading of a pair sees what an earlier one decided."""
    if connection.vendor != "postgresql":
        pytest.skip("the batches are serialised by a PostgreSQL advisory lock")
    subscription, competitor = pair
    get_redis().set(queue.SCHEDULED_KEY, 1)
    check_observation(observe(clock, subscription, competitor, price=800).pk)

    @contextlib.contextmanager
    def another_batch() -> Iterator[None]:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [queue.LOCK_KEY])
            yield

    done: list[int] = []

    def drain() -> None:
        try:
            done.append(queue.check_batch())
        finally:
            connection.close()

    with held_in_another_thread(another_batch):
        other = threading.Thread(target=drain)
        other.start()
        other.join(0.5)
        assert done == []  # waiting for the other batch
    other.join(30)
    assert done == [1]
