"""Nesting is bounded: a free-form value (event properties, metadata) nests at most 32 levels
of objects and arrays — deeper is a 400 ``invalid`` naming the field, on every route and on
the usage fast path — and no body, however deep, gives a 5xx."""

from __future__ import annotations

import json

import pytest

from billing.api.event_input import parse_plain_event
from billing.api.fastpath import UsageFastPath
from billing.api.parsers import (
    FREE_FORM_DEPTH_MESSAGE,
    FREE_FORM_MAX_DEPTH,
    MAX_BODY_DEPTH,
    json_depth_exceeds,
)
from billing.models import Customer, UsageEvent
from tests.api.helpers import problem_of
from tests.api.test_fast_path import Django, call
from tests.wallets.helpers import ensure_currencies

pytestmark = pytest.mark.django_db

TS = "2026-01-05T10:00:00Z"


def nested(depth: int) -> dict:
    """An object ``depth`` levels deep (the object itself is level 1), lists and objects."""
    value: object = 1
    for level in range(depth - 1):
        value = [value] if level % 2 else {"k": value}
    return {"k": value}


def test_depth_counts_objects_and_arrays():
    assert not json_depth_exceeds(1, 0)
    assert json_depth_exceeds({}, 0) and not json_depth_exceeds({}, 1)
    assert not json_depth_exceeds(nested(32), 32)
    assert json_depth_exceeds(nested(33), 32)
    assert not json_depth_exceeds([{"a": 1}, [2, [3]]], 3)
    assert json_depth_exceeds([{"a": 1}, [2, [3]]], 2)
    assert json_depth_exceeds(nested(100_000), MAX_BODY_DEPTH)  # no recursion


def event(event_id: str, depth: int, **extra) -> dict:
    return {
        "id": event_id,
        "customer": "acme",
        "meter": "llm_tokens",
        "properties": nested(depth),
        **extra,
    }


def test_properties_32_levels_deep_are_kept(api, tokens):
    r = api.post("/api/v1/events", event("e1", FREE_FORM_MAX_DEPTH, timestamp=TS), format="json")
    assert r.status_code == 201, r.content
    assert UsageEvent.objects.get(event_id="e1").properties == nested(FREE_FORM_MAX_DEPTH)
    assert api.get("/api/v1/events").status_code == 200


@pytest.mark.parametrize("route", ["/api/v1/events", "/api/v1/holds"])
def test_properties_deeper_than_32_levels_are_invalid(api, tokens, route):
    body = problem_of(api.post(route, event("e1", 33), format="json"), 400, "invalid")
    assert body["errors"] == {"properties": [FREE_FORM_DEPTH_MESSAGE]}
    assert not UsageEvent.objects.exists()


def test_a_batch_refuses_the_deep_event_alone(api, tokens):
    r = api.post(
        "/api/v1/events/batch",
        {"events": [event("e1", 40, timestamp=TS), event("e2", 2, timestamp=TS)]},
        format="json",
    )
    assert r.status_code == 200, r.content
    first, second = r.json()["results"]
    assert (first["status"], first["code"]) == ("invalid", "invalid")
    assert first["errors"] == {"properties": [FREE_FORM_DEPTH_MESSAGE]}
    assert second["status"] == "accepted"


def test_customer_metadata_deeper_than_32_levels_is_invalid(api):
    ensure_currencies()
    customer = {"external_id": "deep", "name": "Deep", "currency": "USD"}
    body = problem_of(
        api.post("/api/v1/customers", {**customer, "metadata": nested(33)}, format="json"),
        400,
        "invalid",
    )
    assert body["errors"] == {"metadata": [FREE_FORM_DEPTH_MESSAGE]}
    assert not Customer.objects.filter(external_id="deep").exists()


@pytest.mark.parametrize("depth", [MAX_BODY_DEPTH + 1, 330, 5_000, 200_000])
@pytest.mark.parametrize(
    "route", ["/api/v1/events", "/api/v1/events/batch", "/api/v1/holds", "/api/v1/customers"]
)
def test_an_absurdly_deep_body_is_malformed_never_a_server_error(api, tokens, route, depth):
    api.raise_request_exception = False
    payload = event("e1", depth)
    if route.endswith("batch"):
        payload = {"events": [payload]}
    raw = json.dumps(payload) if depth < 900 else "[" * depth + "]" * depth
    r = api.post(route, raw, content_type="application/json")
    body = problem_of(r, 400, "malformed")
    assert "nested" in body["detail"] or "recursion" in body["detail"]
    assert not UsageEvent.objects.exists()


def test_the_fast_path_hands_deep_properties_to_django(api, tokens):
    assert parse_plain_event(event("e1", 33)) is None
    assert parse_plain_event(event("e1", 32)) is not None
    django = Django()
    status, _, content = call(UsageFastPath(django), "/api/v1/events", event("e1", 33), tokens)
    assert (status, django.calls) == (400, 1)
    assert json.loads(content)["errors"] == {"properties": [FREE_FORM_DEPTH_MESSAGE]}
