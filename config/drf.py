"""Django REST framework plumbing: the same behaviour as DRF's own classes, less work per request.

Measured with py-spy on the agent endpoints under bench/dispatch.py, DRF spent about 8 % of the
server's CPU building serializer fields and 4 % choosing a renderer, on every request.
"""

from __future__ import annotations

import copy
from typing import Any

from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation


def _needs_deep_copy(field: serializers.Field) -> bool:
    own = vars(field)
    return (
        # Nested serializers and ListField/DictField bind their children to themselves: a
        # shallow copy would share children bound to another parent.
        isinstance(field, serializers.BaseSerializer)
        or "child" in own
        or "child_relation" in own
        # A list or dict default would be the same object in every request's data.
        or isinstance(own.get("default"), (list, dict, set))
        or isinstance(own.get("initial"), (list, dict, set))
    )


def _shallow_copy(field: serializers.Field) -> serializers.Field:
    clone = copy.copy(field)
    # Containers an instance may change in place (``field.validators.append(...)`` in a
    # serializer's ``__init__`` is a common idiom) are the copy's own.
    clone._validators = list(field._validators)
    clone.error_messages = dict(field.error_messages)
    return clone


class Serializer(serializers.Serializer):  # type: ignore[misc]
    """``rest_framework.serializers.Serializer`` whose declared fields are built once per class.

    DRF deep-copies every declared field for every serializer instance, which calls each field's
    ``__init__`` again (validators included). Here a class builds its fields once; an instance
    gets shallow copies, which DRF then binds to it as usual (name, parent, source), with their
    own validator list and error messages. The options a copy shares with the others are the
    ones DRF never changes after ``__init__``. Fields that hold other fields, or a list or dict
    default, are deep-copied as before.
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        # (name, built field, how to copy it), decided once per class
        prototypes: list[tuple[str, serializers.Field, Any]] | None = cls.__dict__.get(
            "_field_prototypes"
        )
        if prototypes is None:
            prototypes = []
            for name, field in super().get_fields().items():
                field.validators  # noqa: B018 - built once here
                copier = copy.deepcopy if _needs_deep_copy(field) else _shallow_copy
                prototypes.append((name, field, copier))
            cls._field_prototypes = prototypes
        return {name: copier(field) for name, field, copier in prototypes}


class ContentNegotiation(DefaultContentNegotiation):  # type: ignore[misc]
    """DRF's negotiation, with a shortcut for the usual request of a JSON-only API.

    A request without a query string (so no ``?format=``) that accepts anything, or has no
    ``Accept`` header, gets the first renderer, as DRF would give it; DRF parsed the query
    string and every media type to find that out. Anything else goes through DRF unchanged
    (406 for what no renderer offers).
    """

    def select_renderer(
        self, request: Any, renderers: list[Any], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        meta = request.META
        if (
            not format_suffix
            and not meta.get("QUERY_STRING")
            and meta.get("HTTP_ACCEPT", "*/*").strip() == "*/*"
        ):
            renderer = renderers[0]
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)
