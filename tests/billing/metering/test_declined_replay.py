"""A repeat of a declined event is its original answer: the same 402 problem (type, title,
code, detail, the event), as problem+json, with ``Idempotent-Replayed: true`` — through
the database function's setting either way, the fast path, and in a batch (the replayed
result keeps its decline code). A declined hold records nothing (its id may be tried again
after a top-up): its repeat is decided again and, the wallet unchanged, answered alike."""

from __future__ import annotations

import json

import pytest

from billing.models import UsageEvent
from tests.api.test_fast_path import call
from tests.billing.scenario import grant, setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies
from wallets.models import Hold

pytestmark = pytest.mark.django_db


@pytest.fixture
def poor(api, clock):
    """acme on tokens at USD 0.01, with USD 0.50: 100 tokens are declined."""
    ensure_currencies()
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(api, "pro", [{"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.01"}])
    setup_customer(api, "acme", plan="pro")
    grant(api, "acme", "USD", "0.50", id="g1")


def body(event_id: str, quantity: str = "100") -> dict:
    return {"id": event_id, "customer": "acme", "meter": "llm_tokens", "quantity": quantity}


@pytest.mark.parametrize("on", [True, False])
def test_a_declined_events_repeat_is_its_first_answer(api, settings, poor, on):
    settings.CHARGE_IN_DATABASE = on
    first = api.post("/api/v1/events", body("d1"), format="json")
    again = api.post("/api/v1/events", body("d1"), format="json")

    assert first.status_code == again.status_code == 402
    assert first["Content-Type"] == again["Content-Type"] == "application/problem+json"
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    problem = first.json()
    assert problem["type"] == "https://billfold.dev/problems/insufficient_funds"
    assert (problem["code"], problem["available"], problem["asset"]) == (
        "insufficient_funds",
        "0.500000000000",
        "USD",
    )
    assert problem["event"]["decline_code"] == "insufficient_funds"
    # the event itself reads as an event
    event = api.get("/api/v1/events/d1").json()
    assert (event["status"], event["decline_code"]) == ("declined", "insufficient_funds")
    assert "type" not in event and event["quantity"] == "100"


def test_through_the_fast_path_too(api, poor):
    from billing.api.fastpath import UsageFastPath
    from tests.api.test_fast_path import Django

    fast = UsageFastPath(Django())
    first = call(fast, "/api/v1/events", body("d1"), api.raw_key)
    again = call(fast, "/api/v1/events", body("d1"), api.raw_key)

    assert first[0] == again[0] == 402
    assert first[2] == again[2]  # byte for byte
    assert again[1]["Content-Type"] == "application/problem+json"
    assert again[1]["Idempotent-Replayed"] == "true"
    # an accepted event's replay too, its funding included
    first = call(fast, "/api/v1/events", body("a1", "10"), api.raw_key)
    again = call(fast, "/api/v1/events", body("a1", "10"), api.raw_key)
    assert (first[0], again[0], again[1]["Idempotent-Replayed"]) == (201, 201, "true")
    assert json.loads(first[2])["charge"]["funding"][0]["grant"] == "g1"
    assert first[2] == again[2]
    assert fast.app.calls == 0


def test_in_a_batch_the_replay_keeps_its_decline_code(api, poor):
    events = [body("ok", "10"), body("d1")]
    first = api.post("/api/v1/events/batch", {"events": events}, format="json").json()
    again = api.post("/api/v1/events/batch", {"events": events}, format="json").json()
    single = api.post("/api/v1/events", body("d1"), format="json")

    assert [(r["status"], r["code"]) for r in first["results"]] == [
        ("accepted", None),
        ("declined", "insufficient_funds"),
    ]
    assert again["results"] == [{**result, "replayed": True} for result in first["results"]]
    assert (single.status_code, single.json()["code"]) == (402, "insufficient_funds")


def test_an_event_declined_before_its_answer_was_kept_replays_a_problem(api, poor):
    """A declined event recorded with its event body alone (as Billfold once kept it)
    still replays as a 402 problem with its code."""
    first = api.post("/api/v1/events", body("d1"), format="json").json()
    UsageEvent.objects.filter(event_id="d1").update(response=first["event"])

    again = api.post("/api/v1/events", body("d1"), format="json")

    assert again.status_code == 402
    problem = again.json()
    assert (problem["type"], problem["code"], problem["title"]) == (
        "https://billfold.dev/problems/insufficient_funds",
        "insufficient_funds",
        "Insufficient funds",
    )
    assert problem["event"] == first["event"]


@pytest.mark.parametrize("on", [True, False])
def test_a_declined_holds_repeat_is_answered_alike(api, settings, poor, on):
    settings.CHARGE_IN_DATABASE = on
    first = api.post("/api/v1/holds", body("h1"), format="json")
    again = api.post("/api/v1/holds", body("h1"), format="json")

    assert first.status_code == again.status_code == 402
    assert again["Content-Type"] == "application/problem+json"
    assert json.loads(again.content) == json.loads(first.content)
    assert first.json()["code"] == "insufficient_funds"
    assert not Hold.objects.exists()
