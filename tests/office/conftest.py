from __future__ import annotations

from collections.abc import Iterator

import pytest

from office.reporter import registry


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    """Each test starts and ends with no registered reporters (the registry is per process)."""
    for reporter in registry.reporters():
        registry.unregister(reporter)
    yield
    for reporter in registry.reporters():
        registry.unregister(reporter)
