"""Every model of the project's apps has a factory whose defaults make a valid, stored row."""

from __future__ import annotations

import factory
import pytest
from django.apps import apps
from django.db.models import Model

from tests import factories

PROJECT_APPS = ("watcher", "parser", "alerts", "office")
FACTORIES = [
    value
    for value in vars(factories).values()
    if isinstance(value, type)
    and issubclass(value, factory.django.DjangoModelFactory)
    and value.__module__ == factories.__name__
]

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model_factory", FACTORIES, ids=lambda f: f.__name__)
def test_it_saves_a_valid_row_with_the_defaults(model_factory: type[factory.Factory]) -> None:
    obj: Model = model_factory()
    obj.full_clean()
    stored = type(obj)._default_manager.get(pk=obj.pk)
    assert stored == obj


def test_every_model_has_a_factory() -> None:
    made = {type(model_factory()) for model_factory in FACTORIES}
    models = {m for label in PROJECT_APPS for m in apps.get_app_config(label).get_models()}
    assert models - made == set()
