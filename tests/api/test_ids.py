"""Every id a client chooses is addressable by its URL afterwards, or refused when it is
created (``core.ids``): what can be percent-encoded is kept and found again; control
characters, empty or dot segments and ids that spell another route are refused."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from billing.api.fastpath import UsageFastPath
from billing.models import Customer, UsageEvent
from core.ids import id_problems
from plans.models import Plan
from tests.api.helpers import problem_of
from tests.api.test_fast_path import Django, call
from tests.billing.scenario import grant
from tests.wallets.helpers import ensure_currencies
from wallets.models import Grant, Hold

pytestmark = pytest.mark.django_db

TS = "2026-01-05T10:00:00Z"
REACHABLE = [
    "req/42",
    "a?b=1",
    "a#frag",
    "100%",
    "a%2Fb",
    "with space",
    "é/ü",
    "a.b/..c/d..",
    "...",
    "a;b,c",
    "back\\slash",
]
UNREACHABLE = [
    "e\n1",
    "e\t1",
    "e\x7f",
    "e\x85",
    "e1\n",
    "a/reverse",
    "a/b/capture",
    "a/void",
    "/a",
    "a/",
    "a//b",
    "../a",
    "a/./b",
    "a/..",
    ".",
    "..",
    "batch",
]


def url(*parts: str) -> str:
    return "/api/v1/" + "/".join(quote(part, safe="/") for part in parts)


@pytest.mark.parametrize("value", REACHABLE)
def test_reachable_ids_pass_the_rule(value):
    assert id_problems(value, slash=True) == []


@pytest.mark.parametrize("value", UNREACHABLE)
def test_unreachable_ids_are_named(value):
    assert id_problems(value, slash=True)


@pytest.mark.parametrize("value", ["a/b", ".", "..", "a\nb", "\x00"])
def test_a_one_segment_id_has_no_slash_nor_dot_segment(value):
    assert id_problems(value, slash=False)
    assert id_problems("a.b", slash=False) == id_problems("..a", slash=False) == []


def event(event_id: str, **extra) -> dict:
    return {"id": event_id, "customer": "acme", "meter": "llm_tokens", "timestamp": TS, **extra}


@pytest.mark.parametrize("event_id", REACHABLE)
def test_an_event_is_found_and_reversed_by_its_id(api, tokens, event_id):
    r = api.post("/api/v1/events", event(event_id), format="json")
    assert r.status_code == 201, r.content
    r = api.get(url("events", event_id))
    assert (r.status_code, r.json()["id"]) == (200, event_id)
    r = api.post(url("events", event_id, "reverse"))
    assert (r.status_code, r.json()["status"]) == (200, "reversed")


@pytest.mark.parametrize("event_id", UNREACHABLE)
def test_an_event_id_no_url_reaches_is_refused(api, tokens, event_id):
    body = problem_of(api.post("/api/v1/events", event(event_id), format="json"), 400, "invalid")
    assert "id" in body["errors"]
    r = api.post("/api/v1/events/batch", {"events": [event(event_id)]}, format="json")
    assert r.json()["results"][0]["status"] == "invalid"
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize("event_id", ["a/reverse", "a//b", "../a", "batch"])
def test_the_fast_path_hands_unreachable_event_ids_to_django(api, tokens, event_id):
    django = Django()
    body = {"id": event_id, "customer": "acme", "meter": "llm_tokens"}
    status, _, _ = call(UsageFastPath(django), "/api/v1/events", body, tokens)
    assert (status, django.calls) == (400, 1)
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize("hold_id", ["h?1", "h/1#x", "h 1%"])
def test_a_hold_is_found_voided_and_captured_by_its_id(api, tokens, hold_id):
    for suffix in ("-a", "-b"):
        r = api.post("/api/v1/holds", event(hold_id + suffix, quantity="10"), format="json")
        assert r.status_code == 201, r.content
        assert api.get(url("holds", hold_id + suffix)).json()["id"] == hold_id + suffix
    assert api.post(url("holds", hold_id + "-a", "void")).status_code == 200
    r = api.post(
        url("holds", hold_id + "-b", "capture"),
        {"quantity": "5", "event_id": hold_id + "/e"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert api.get(url("events", hold_id + "/e")).status_code == 200


@pytest.mark.parametrize("hold_id", ["h\n1", "h/void", "h/capture", "h/", "./h"])
def test_a_hold_id_no_url_reaches_is_refused(api, tokens, hold_id):
    r = api.post("/api/v1/holds", event(hold_id, quantity="10"), format="json")
    assert "id" in problem_of(r, 400, "invalid")["errors"]
    assert not Hold.objects.exists()


def test_a_captures_event_id_no_url_reaches_is_refused(api, tokens):
    assert api.post("/api/v1/holds", event("h1", quantity="10"), format="json").status_code == 201
    r = api.post(
        url("holds", "h1", "capture"), {"quantity": "5", "event_id": "e\n1"}, format="json"
    )
    assert "event_id" in problem_of(r, 400, "invalid")["errors"]
    assert not UsageEvent.objects.exists()


def test_grants_ids_follow_the_rule(api, tokens):
    grant(api, "acme", "USD", "1.00", id="top/up?1")
    assert api.post(url("grants", "top/up?1", "void")).status_code == 200
    for bad in ("g\n1", "g//1", "g/void"):
        r = api.post(
            "/api/v1/customers/acme/grants",
            {"id": bad, "asset": "USD", "amount": "1"},
            format="json",
        )
        assert "id" in problem_of(r, 400, "invalid")["errors"]
        assert not Grant.objects.filter(pk=bad).exists()


@pytest.mark.parametrize("external_id", [".", "..", "a/b", "a\nb"])
def test_an_external_id_no_url_reaches_is_refused(api, external_id):
    ensure_currencies()
    r = api.post(
        "/api/v1/customers",
        {"external_id": external_id, "name": "X", "currency": "USD"},
        format="json",
    )
    assert "external_id" in problem_of(r, 400, "invalid")["errors"]
    assert not Customer.objects.exists()


def test_an_external_id_with_reserved_characters_is_found(api):
    ensure_currencies()
    for external_id in ("a?b", "a#b", "50%", "..a"):
        r = api.post(
            "/api/v1/customers",
            {"external_id": external_id, "name": "X", "currency": "USD"},
            format="json",
        )
        assert r.status_code == 201, r.content
        assert api.get(url("customers", external_id)).json()["external_id"] == external_id


def test_a_plan_code_ending_in_a_newline_is_refused(api):
    ensure_currencies()
    r = api.post(
        "/api/v1/plans",
        {"code": "pro\n", "name": "Pro", "currency": "USD", "interval": "month", "prices": []},
        format="json",
    )
    assert "code" in problem_of(r, 400, "invalid")["errors"]
    assert not Plan.objects.exists()
