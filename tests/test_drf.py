"""config.drf: DRF's behaviour, with less work per request."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from config.drf import ContentNegotiation, Serializer


class Inner(serializers.Serializer):
    code = serializers.CharField(max_length=3)


def declared() -> dict[str, Any]:
    """A fresh set of declared fields of every kind the project uses, and a few more."""

    def shout(self: Any, obj: dict[str, Any]) -> str:
        return str(obj.get("name", "")).upper()

    return {
        "name": serializers.CharField(max_length=5, trim_whitespace=True),
        "count": serializers.IntegerField(min_value=0, max_value=10),
        "kind": serializers.ChoiceField(choices=[("a", "A"), ("b", "B")]),
        "note": serializers.CharField(required=False, allow_null=True, default=None),
        "at": serializers.DateTimeField(required=False),
        "ip": serializers.IPAddressField(required=False),
        "ok": serializers.BooleanField(required=False),
        "by_day": serializers.DictField(
            child=serializers.IntegerField(min_value=1), required=False
        ),
        "tags": serializers.ListField(child=serializers.CharField(max_length=2), required=False),
        "inner": Inner(required=False),
        "shout": serializers.SerializerMethodField(),
        "get_shout": shout,
    }


Ours = type("Ours", (Serializer,), declared())
Library = type("Library", (serializers.Serializer,), declared())

INPUTS = [
    {"name": " abc ", "count": 3, "kind": "a"},
    {"name": "toolong", "count": 11, "kind": "c"},
    {"name": "x", "count": "2", "kind": "b", "note": "n", "at": "2026-12-01T10:00:00+03:00"},
    {"name": "x", "count": -1, "kind": "b", "ip": "300.1.1.1", "ok": "maybe"},
    {"name": "x", "count": 1, "kind": "a", "by_day": {"mon": 2, "tue": 0}, "tags": ["ab", "abc"]},
    {"name": "x", "count": 1, "kind": "a", "inner": {"code": "toolong"}},
    {"name": "x", "count": 1, "kind": "a", "inner": {"code": "ok"}, "tags": ["a"]},
    {},
    {"count": None, "kind": None},
]


@pytest.mark.parametrize("data", INPUTS)
def test_validation_is_the_libraries(data: dict[str, Any]) -> None:
    ours, library = Ours(data=data), Library(data=data)
    assert ours.is_valid() == library.is_valid()
    assert ours.errors == library.errors
    assert ours.validated_data == library.validated_data
    assert ours.data == library.data


def test_output_is_the_libraries() -> None:
    obj = {
        "name": "abc",
        "count": 2,
        "kind": "b",
        "at": dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC),
        "by_day": {"mon": 1},
        "tags": ["x"],
        "inner": {"code": "abc"},
    }
    assert Ours(obj).data == Library(obj).data
    assert Ours(obj).data["shout"] == "ABC"
    assert Ours([obj, obj], many=True).data == Library([obj, obj], many=True).data


def test_each_instance_has_its_own_bound_fields_built_once_per_class() -> None:
    first, second = Ours(data=INPUTS[1]), Ours(data=INPUTS[0])
    for name in first.fields:
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name].parent is first
        assert second.fields[name].parent is second
    # A ListField's child is bound to that instance's copy, not to another one.
    assert first.fields["tags"].child.parent is first.fields["tags"]
    assert first.fields["tags"].child is not second.fields["tags"].child
    # Built once: the copies hold the validators built for the class (DRF builds new ones)...
    mine, theirs = first.fields["count"].validators, second.fields["count"].validators
    assert len(mine) == 2 and all(a is b for a, b in zip(mine, theirs, strict=True))
    library = Library(), Library()
    assert library[0].fields["count"].validators[0] is not library[1].fields["count"].validators[0]
    # ... in lists of their own: what one instance adds stays with it.
    mine.append(lambda value: None)
    assert len(Ours().fields["count"].validators) == 2
    first.fields["name"].error_messages["blank"] = "changed"
    assert Ours().fields["name"].error_messages["blank"] != "changed"
    # One instance's errors do not reach another.
    assert not first.is_valid() and second.is_valid()
    assert second.errors == {}


def test_a_list_or_dict_default_is_not_shared_between_instances() -> None:
    class WithDefaults(Serializer):
        tags = serializers.JSONField(default=[])
        meta = serializers.JSONField(default={})

    first = WithDefaults(data={})
    assert first.is_valid()
    first.validated_data["tags"].append("x")
    first.validated_data["meta"]["k"] = 1
    second = WithDefaults(data={})
    assert second.is_valid()
    assert second.validated_data == {"tags": [], "meta": {}}


def test_subclasses_keep_their_own_fields() -> None:
    class Base(Serializer):
        a = serializers.IntegerField()

    class Child(Base):
        b = serializers.CharField()

    assert list(Base().fields) == ["a"]
    assert list(Child().fields) == ["a", "b"]
    assert list(Base().fields) == ["a"]


NEGOTIATIONS = [
    {},
    {"HTTP_ACCEPT": "*/*"},
    {"HTTP_ACCEPT": " */* "},
    {"HTTP_ACCEPT": "application/json"},
    {"HTTP_ACCEPT": "application/json; indent=4"},
    {"HTTP_ACCEPT": "text/html"},
    {"HTTP_ACCEPT": "text/html, */*;q=0.1"},
    {"HTTP_ACCEPT": ""},
    {"QUERY_STRING": "format=json"},
    {"QUERY_STRING": "format=api"},
    {"QUERY_STRING": "format=xml"},
    {"QUERY_STRING": "x=1", "HTTP_ACCEPT": "*/*"},
]


def negotiate(negotiation: Any, renderers: list[Any], meta: dict[str, str]) -> Any:
    request = Request(APIRequestFactory().get("/api/v1/watcher/health", **meta))
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except (exceptions.NotAcceptable, exceptions.NotFound) as exc:
        return type(exc)
    except Exception as exc:  # Http404 for an unknown ?format=
        return type(exc).__name__
    return type(renderer), media_type


@pytest.mark.parametrize("meta", NEGOTIATIONS)
@pytest.mark.parametrize("browsable", [False, True])
def test_the_renderer_chosen_is_the_libraries(meta: dict[str, str], browsable: bool) -> None:
    renderers = [JSONRenderer(), BrowsableAPIRenderer()] if browsable else [JSONRenderer()]
    ours = negotiate(ContentNegotiation(), renderers, meta)
    assert ours == negotiate(DefaultContentNegotiation(), renderers, meta)


@pytest.mark.django_db
def test_the_api_answers_406_for_what_it_cannot_render(client) -> None:
    assert client.get("/api/v1/watcher/health", HTTP_ACCEPT="text/html").status_code == 406
    response = client.get("/api/v1/watcher/health", HTTP_ACCEPT="*/*")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
