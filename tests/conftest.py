"""Shared fixtures. Tests run against the real Redis and database the settings point at.

The Redis database is flushed around each test: point ``REDIS_URL`` at a disposable one
(``make test`` without ``REDIS_URL`` uses its own embedded server under ``data/test``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from tests.factories import AgentFactory
from watcher.models import Agent
from watcher.services.agents import create_agent
from watcher.services.redis import get_redis


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[None]:
    client = get_redis()
    client.flushdb()
    yield
    client.flushdb()


@pytest.fixture(autouse=True)
def own_channel_layer() -> Iterator[None]:
    """Each test gets channel layer objects of its own.

    channels_redis keeps its receive state (a lock, the event loop that took it, a count of
    waiting receives) on the layer object. A server process has one event loop; a test run has
    one per async test, and a receive left pending by one test (finished only when the garbage
    collector gets to it) must not reach into the next test's.
    """
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    for layer in channel_layers.backends.values():
        if getattr(layer, "receive_count", 0):
            warnings.warn(f"a receive is still pending on {layer}", stacklevel=1)
    channel_layers.backends.clear()


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Run Celery tasks inline in the caller (``.delay()`` included) for one test."""
    from config.celery import app

    # The namespaced key is the one the app reads (config_from_object with namespace).
    app.conf.CELERY_TASK_ALWAYS_EAGER = True
    yield
    app.conf.CELERY_TASK_ALWAYS_EAGER = False


class AgentHandle:
    """An agent with its plain API key and an API client that sends it."""

    def __init__(self, agent: Agent, key: str) -> None:
        self.agent = agent
        self.key = key
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    @property
    def id(self) -> str:
        return str(self.agent.pk)


@pytest.fixture
def make_agent(db: None):
    counter = iter(range(1, 10_000))

    def make(name: str | None = None, **fields: object) -> AgentHandle:
        agent, key = create_agent(name or f"agent-{next(counter)}", **fields)
        return AgentHandle(agent, key)

    return make


@pytest.fixture
def agent(make_agent) -> AgentHandle:
    return make_agent("agent-main")


__all__ = ["AgentFactory", "AgentHandle"]
