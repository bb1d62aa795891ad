"""The result handler's hook queues observations in Redis; one worker task checks what waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alerts import queue
from alerts.models import Alert, AlertStatus
from alerts.services import check_observation
from tests.alerts.conftest import observe, rule
from tests.factories import CompetitorFactory
from watcher.services.redis import get_redis

pytestmark = pytest.mark.django_db


@pytest.fixture
def empty_queue() -> Iterator[None]:
    get_redis().delete(queue.PENDING_KEY, queue.SCHEDULED_KEY)
    yield
    get_redis().delete(queue.PENDING_KEY, queue.SCHEDULED_KEY)


def test_an_idle_worker_checks_each_observation_at_once(
    pair, clock, empty_queue, celery_eager
) -> None:
    subscription, competitor = pair
    rule()
    observe(clock, subscription, price=1000)
    check_observation(observe(clock, subscription, competitor, price=800).pk)
    [alert] = Alert.objects.all()
    assert alert.status == AlertStatus.OPEN and alert.their_price == 800
    # the task is done and said so: the next observation starts another
    assert get_redis().get(queue.SCHEDULED_KEY) is None
    check_observation(observe(clock, subscription, competitor, price=1000).pk)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_observations_stored_while_a_check_runs_wait_for_it_and_go_as_one_batch(
    no_default_rules, clock, empty_queue, celery_eager
) -> None:
    rule()
    get_redis().set(queue.SCHEDULED_KEY, 1)  # a worker is busy draining
    competitors = CompetitorFactory.create_batch(3)
    for competitor in competitors:
        observe(clock, competitor.subscription, price=1000)
        check_observation(observe(clock, competitor.subscription, competitor, price=800).pk)
    assert not Alert.objects.exists()  # no second task was sent: they wait
    assert queue.drain(batch=2) == 3
    assert {a.competitor for a in Alert.objects.all()} == set(competitors)
    assert get_redis().llen(queue.PENDING_KEY) == 0
    assert get_redis().get(queue.SCHEDULED_KEY) is None
