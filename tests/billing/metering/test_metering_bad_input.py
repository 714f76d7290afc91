"""docs/quality.md 12 for every usage endpoint (``billing/api/events.py``, ``holds.py``,
``spend_limits.py``, ``usage.py``): bad input gets a 4xx ``application/problem+json`` with a
stable ``code`` and writes nothing — except a declined event, which is recorded (status
``declined``, no ledger entries).

What is accepted on purpose (asserted below): JSON numbers where decimal strings are expected
are read as exact decimals (the parser never makes a float: ``0.1`` is 0.1, not
0.1000000000000000055…); integers likewise. Text is stored verbatim and returned as JSON
strings, never interpreted."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import quote

import pytest
import time_machine

from billing.models import Alert, SpendCounter, SpendLimit, UsageCounter, UsageEvent
from tests.billing.scenario import grant, setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies
from wallets.models import (
    Account,
    Grant,
    Hold,
    HoldAllocation,
    IdempotencyRecord,
    LedgerEntry,
    LedgerTransaction,
)

D = Decimal
pytestmark = pytest.mark.django_db

BIG = "x" * 100_000  # 100 kB
SQL = "e1'; DROP TABLE billing_usageevent; --"
HTML = "<script>alert('x')</script>&amp;"


@pytest.fixture(autouse=True)
def _currencies(db):
    """The concurrency tests flush every table (the ISO currencies too) when they end."""
    ensure_currencies()


@pytest.fixture
def world(api):
    """At 2026-01-10T12:00Z: ``acme`` on plan ``pro`` since 2026-01-01 (tokens at 0.000002 USD,
    requests at 1.00 USD) with 10.00 USD; ``idle`` has no subscription; hold ``h1`` of
    1,000,000 tokens (2.00) is pending; event ``ok`` is accepted, ``no`` declined."""
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        setup_meter(api, "llm_tokens", "tokens")
        setup_meter(api, "requests", "requests", "count")
        setup_plan(
            api,
            "pro",
            [
                {"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.000002"},
                {"meter": "requests", "model": "per_unit", "unit_price": "1.00"},
            ],
        )
        setup_customer(api)
        r = api.post(
            "/api/v1/customers",
            {"external_id": "idle", "name": "Idle", "currency": "USD"},
            format="json",
        )
        assert r.status_code == 201, r.content
        grant(api, "acme", "USD", "10.00", id="g1")
        assert post_event(api, id="ok", quantity="1000").status_code == 201
        assert post_event(api, id="no", quantity="100000000").status_code == 402
        r = api.post(
            "/api/v1/holds",
            {"id": "h1", "customer": "acme", "meter": "llm_tokens", "quantity": "1000000"},
            format="json",
        )
        assert r.status_code == 201, r.content
        yield api


EVENT = {
    "id": "bad",
    "customer": "acme",
    "meter": "llm_tokens",
    "quantity": "10",
    "timestamp": "2026-01-10T11:00:00Z",
}


def post_event(api, **fields):
    # json.dumps escapes what is not ASCII, lone surrogates included, as JSON allows
    return raw(api, "/api/v1/events", json.dumps({**EVENT, **fields}))


def snapshot() -> dict:
    """Every row a request could write, and the wallet balances."""
    models = (
        UsageEvent,
        UsageCounter,
        LedgerTransaction,
        LedgerEntry,
        Hold,
        HoldAllocation,
        Grant,
        SpendLimit,
        SpendCounter,
        Alert,
        IdempotencyRecord,
    )
    state: dict = {m.__name__: m.objects.count() for m in models}
    state["accounts"] = sorted(
        Account.objects.filter(wallet__isnull=False).values_list(
            "wallet_id", "asset_id", "posted", "held", "debt"
        )
    )
    state["grants"] = sorted(Grant.objects.values_list("pk", "remaining", "held", "status"))
    state["events"] = sorted(UsageEvent.objects.values_list("event_id", "status"))
    state["holds"] = sorted(Hold.objects.values_list("pk", "status"))
    return state


def refused(call: Callable, status: int, code: str) -> dict:
    """``call()`` answers ``status`` with problem details of ``code`` and writes nothing."""
    before = snapshot()
    r = call()
    assert r.status_code == status, r.content[:500]
    assert r["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"].endswith("/" + code)
    assert set(body) >= {"type", "title", "status", "detail", "code", "errors"}
    assert snapshot() == before
    return body


def raw(api, path: str, text: str | bytes, content_type: str = "application/json"):
    return api.generic("POST", path, text, content_type=content_type)


# --- POST /events -------------------------------------------------------------------------------

BAD_NUMBERS = [
    "-1",
    "-0.000000000001",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e19",
    "1E+19",
    "10000000000000000000",
    "1000000000000000000",  # 10^18: the bound is exclusive
    "0.0000000000001",  # 13 places
    "1.0000000000001",
    "",
    " ",
    "abc",
    "1,5",
    "0x10",
    "1 000",
    True,
    False,
    [1],
    {"value": "1"},
    BIG,
]


@pytest.mark.parametrize("quantity", BAD_NUMBERS, ids=lambda v: repr(v)[:20])
def test_event_quantity_refused(world, quantity):
    body = refused(lambda: post_event(world, quantity=quantity), 400, "invalid")
    assert list(body["errors"]) == ["quantity"]


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "bad", "customer": "acme", "meter": "llm_tokens", "quantity": NaN}',
        '{"id": "bad", "customer": "acme", "meter": "llm_tokens", "quantity": Infinity}',
        '{"id": "bad", "customer": "acme", "meter": "llm_tokens", "quantity": -Infinity}',
        '{"id": "bad", "customer": "acme", "meter": "llm_tokens"',
        '{"id": "bad"} trailing',
        "{'id': 'bad'}",
        "\x00",
        '{"id": "bad", "properties": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=["NaN", "Infinity", "-Infinity", "truncated", "trailing", "quotes", "nul", "deep"],
)
def test_event_malformed_json_refused(world, text):
    body = refused(lambda: raw(world, "/api/v1/events", text), 400, "malformed")
    assert body["errors"] == {}


def test_event_invalid_utf8_refused(world):
    refused(lambda: raw(world, "/api/v1/events", b'{"id": "\xff\xfe"}'), 400, "malformed")


@pytest.mark.parametrize(
    ("number", "field"),
    [
        ("1e19", "quantity"),
        ("-1", "quantity"),
        ("0.0000000000001", "quantity"),
        ("1e-13", "quantity"),
    ],
)
def test_event_json_number_out_of_range_refused(world, number, field):
    text = '{"id": "bad", "customer": "acme", "meter": "llm_tokens", "quantity": NUMBER}'
    text = text.replace("NUMBER", number)
    body = refused(lambda: raw(world, "/api/v1/events", text), 400, "invalid")
    assert list(body["errors"]) == [field]


def test_wrong_content_type_refused(world):
    refused(
        lambda: raw(world, "/api/v1/events", "id=bad&customer=acme", "text/plain"),
        415,
        "unsupported_media_type",
    )


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"id": 123}, "id"),
        ({"id": 1.5}, "id"),
        ({"id": True}, "id"),
        ({"id": None}, "id"),
        ({"id": ""}, "id"),
        ({"id": ["a"]}, "id"),
        ({"id": {"a": 1}}, "id"),
        ({"id": "x" * 256}, "id"),
        ({"id": BIG}, "id"),
        ({"customer": 42}, "customer"),
        ({"customer": ""}, "customer"),
        ({"customer": BIG}, "customer"),
        ({"customer": None}, "customer"),
        ({"meter": 7}, "meter"),
        ({"meter": "m" * 65}, "meter"),
        ({"meter": BIG}, "meter"),
        ({"properties": []}, "properties"),
        ({"properties": "model=gpt"}, "properties"),
        ({"properties": 1}, "properties"),
        ({"properties": {"note": BIG}}, "properties"),
        ({"properties": {"note": "a\x00b"}}, "properties"),
        ({"properties": {"a\x00": 1}}, "properties"),
        ({"properties": {"list": ["ok", "\ud800"]}}, "properties"),
        ({"id": "a\x00b"}, "id"),
        ({"customer": "\udfff"}, "customer"),
        ({"properties": {f"k{i}": "v" * 100 for i in range(200)}}, "properties"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": 1767225600}, "timestamp"),
        ({"timestamp": "2026-13-01T00:00:00Z"}, "timestamp"),
        ({"timestamp": "2026-01-10T11:00:00"}, "timestamp"),  # naive
        ({"timestamp": "2026-01-10 11:00:00"}, "timestamp"),  # naive
        ({"timestamp": BIG}, "timestamp"),
        ({"timestamp": True}, "timestamp"),
        ({"quantity": None}, "quantity"),
    ],
    ids=lambda v: repr(v)[:30] if isinstance(v, dict) else v,
)
def test_event_field_refused(world, fields, bad):
    body = refused(lambda: post_event(world, **fields), 400, "invalid")
    assert list(body["errors"]) == [bad]


@pytest.mark.parametrize("missing", ["id", "customer", "meter"])
def test_event_missing_field_refused(world, missing):
    payload = {k: v for k, v in EVENT.items() if k != missing}
    body = refused(lambda: world.post("/api/v1/events", payload, format="json"), 400, "invalid")
    assert list(body["errors"]) == [missing]


@pytest.mark.parametrize("text", ["", "[]", '"event"', "null", "42", "[{}]"])
def test_event_body_not_an_object_refused(world, text):
    refused(lambda: raw(world, "/api/v1/events", text), 400, "invalid")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"customer": "nobody"}, "unknown_customer"),
        ({"customer": "nobody", "meter": "nothing"}, "unknown_customer"),
        ({"customer": "acme' OR '1'='1"}, "unknown_customer"),
        ({"meter": "nothing"}, "unknown_meter"),
        ({"meter": "llm_tokens' --"}, "unknown_meter"),
        ({"customer": "idle"}, "no_active_subscription"),
        ({"timestamp": "2025-12-31T23:59:59Z"}, "no_active_subscription"),
        ({"timestamp": "0001-01-01T00:00:00Z"}, "no_active_subscription"),
        ({"timestamp": "2026-01-10T12:05:01Z"}, "invalid_timestamp"),
        ({"timestamp": "2026-01-10T13:05:01+01:00"}, "invalid_timestamp"),
        ({"timestamp": "9999-12-31T23:59:59Z"}, "invalid_timestamp"),
    ],
    ids=lambda v: repr(v)[:40] if isinstance(v, dict) else v,
)
def test_event_unprocessable(world, fields, code):
    body = refused(lambda: post_event(world, **fields), 422, code)
    assert body["detail"]


def test_event_at_the_edges_of_time_is_accepted(world):
    """The subscription's first instant, and exactly 5 minutes ahead of the server."""
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        for event_id, ts in (("first", "2026-01-01T00:00:00Z"), ("ahead", "2026-01-10T12:05:00Z")):
            r = post_event(world, id=event_id, timestamp=ts)
            assert r.status_code == 201, r.content


def test_declined_event_is_recorded_without_ledger_entries(world):
    before = snapshot()
    r = post_event(world, id="too-much", quantity="100000000")  # 200.00 > 8.00 available
    assert r.status_code == 402
    assert r["Content-Type"] == "application/problem+json"
    body = r.json()
    assert (body["code"], body["status"], body["event"]["status"]) == (
        "insufficient_funds",
        402,
        "declined",
    )
    after = snapshot()
    assert after["UsageEvent"] == before["UsageEvent"] + 1
    assert after["events"] == sorted(before["events"] + [("too-much", "declined")])
    for key in ("LedgerEntry", "LedgerTransaction", "UsageCounter", "accounts", "grants"):
        assert after[key] == before[key]
    stored = UsageEvent.objects.get(event_id="too-much")
    assert (stored.decline_code, stored.ledger_transaction_id, stored.amount) == (
        "insufficient_funds",
        None,
        D(0),
    )


@pytest.mark.parametrize(
    ("text", "quantity", "amount"),
    [
        ('"0.1"', "0.1", "0.000000200000"),
        ('"1.5"', "1.5", "0.000003000000"),
        ('"2.50"', "2.5", "0.000005000000"),
        ("3", "3", "0.000006000000"),
        ('"0.000000000001"', "0.000000000001", "0.000000000000"),
        ("0", "0", "0.000000000000"),
    ],
)
def test_json_numbers_are_exact_decimals(world, text, quantity, amount):
    payload = (
        '{"id": "num", "customer": "acme", "meter": "llm_tokens", "quantity": NUMBER, '
        '"timestamp": "2026-01-10T11:00:00Z"}'
    ).replace("NUMBER", text)
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        r = raw(world, "/api/v1/events", payload)
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["quantity"], body["charge"]["billable"], body["charge"]["amount"]) == (
        quantity,
        quantity,
        amount,
    )
    assert UsageEvent.objects.get(event_id="num").quantity == D(quantity)


def test_sql_and_html_are_stored_verbatim_and_returned_as_json(world):
    properties = {"note": HTML, "q": "' OR 1=1 --", "nested": {"tag": "<b>"}}
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        r = post_event(world, id=SQL, properties=properties)
    assert r.status_code == 201, r.content
    assert r["Content-Type"] == "application/json"
    assert (r.json()["id"], r.json()["properties"]) == (SQL, properties)
    assert json.dumps(HTML)[1:-1].encode() in r.content
    stored = UsageEvent.objects.get(event_id=SQL)
    assert stored.properties == properties
    r = world.get(f"/api/v1/events/{quote(SQL, safe='')}")
    assert r.status_code == 200 and r["Content-Type"] == "application/json"
    assert (r.json()["id"], r.json()["properties"]) == (SQL, properties)
    listed = world.get(f"/api/v1/events?customer=acme&meter={quote('llm_tokens')}").json()
    assert SQL in [e["id"] for e in listed["results"]]
    assert UsageEvent.objects.count() == 3  # the table is still there, with every row


# --- POST /events/batch -------------------------------------------------------------------------


def test_batch_over_1000_refused(world):
    events = [{**EVENT, "id": f"b{i}"} for i in range(1001)]
    body = refused(
        lambda: world.post("/api/v1/events/batch", {"events": events}, format="json"),
        400,
        "invalid",
    )
    assert list(body["errors"]) == ["events"]


@pytest.mark.parametrize(
    "payload",
    [{}, {"events": "e1"}, {"events": {"id": "e1"}}, {"events": None}, [EVENT], {"event": [EVENT]}],
    ids=["empty", "string", "object", "null", "bare-list", "wrong-key"],
)
def test_batch_shape_refused(world, payload):
    refused(lambda: world.post("/api/v1/events/batch", payload, format="json"), 400, "invalid")


def test_batch_malformed_json_refused(world):
    text = '{"events": [{"id": "x", "customer": "acme", "meter": "llm_tokens", "quantity": NaN}]}'
    refused(lambda: raw(world, "/api/v1/events/batch", text), 400, "malformed")


def test_batch_with_text_postgres_cannot_store_goes_on(world):
    """A NUL or a lone surrogate in one event's properties makes that event invalid; the
    events around it are charged (the batch does not stop half-way with a 400)."""
    events = [
        {**EVENT, "id": "before"},
        {**EVENT, "id": "nul", "properties": {"note": "a\x00b"}},
        {**EVENT, "id": "surrogate", "properties": {"\udc00": "x"}},
        {**EVENT, "id": "after"},
    ]
    r = raw(world, "/api/v1/events/batch", json.dumps({"events": events}))
    assert r.status_code == 200, r.content
    assert [(x["id"], x["status"], x["code"]) for x in r.json()["results"]] == [
        ("before", "accepted", None),
        ("nul", "invalid", "invalid"),
        ("surrogate", "invalid", "invalid"),
        ("after", "accepted", None),
    ]
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == [
        "after",
        "before",
        "no",
        "ok",
    ]


# a JSON number beyond a double's range that is not an integer: free-form properties keep
# such numbers as doubles (``plain_json``), where it would be infinity, which JSON has not
HUGE_NUMBER = "1" * 400 + ".5"


def _with_huge_property(event: dict) -> str:
    return json.dumps(event)[:-1] + ', "properties": {"x": ' + HUGE_NUMBER + "}}"


def test_event_property_beyond_a_doubles_range_refused(world):
    body = refused(
        lambda: raw(world, "/api/v1/events", _with_huge_property({**EVENT, "id": "huge"})),
        400,
        "invalid",
    )
    assert list(body["errors"]) == ["properties"]


def test_batch_with_a_property_beyond_a_doubles_range_goes_on(world):
    """It failed the whole batch at the insert (PostgreSQL's jsonb refuses Infinity)."""
    events = [json.dumps({**EVENT, "id": "before"}), _with_huge_property({**EVENT, "id": "huge"})]
    events.append(json.dumps({**EVENT, "id": "after"}))
    r = raw(world, "/api/v1/events/batch", '{"events": [' + ", ".join(events) + "]}")
    assert r.status_code == 200, r.content
    results = r.json()["results"]
    assert [(x["id"], x["status"], x["code"]) for x in results] == [
        ("before", "accepted", None),
        ("huge", "invalid", "invalid"),
        ("after", "accepted", None),
    ]
    assert list(results[1]["errors"]) == ["properties"]
    # 10 tokens at 0.000002 USD each, for the two events around it
    assert [results[0]["charge"]["amount"], results[2]["charge"]["amount"]] == [
        "0.000020000000",
        "0.000020000000",
    ]
    assert not UsageEvent.objects.filter(event_id="huge").exists()


def test_batch_of_good_invalid_and_declined_events(world):
    events = [
        {**EVENT, "id": "g1", "quantity": "1000000"},  # 2.00
        {**EVENT, "id": "neg", "quantity": "-1"},
        {**EVENT, "id": "nometer", "meter": "nothing"},
        {**EVENT, "id": "broke", "quantity": "100000000"},  # 200.00: declined
        5,
        {**EVENT, "id": "future", "timestamp": "2026-01-11T00:00:00Z"},
        {**EVENT, "id": "idle", "customer": "idle"},
        {**EVENT, "id": "props", "properties": ["a"]},
        {**EVENT, "id": 17},
        {**EVENT, "id": "ok"},  # already used with another body
        {**EVENT, "id": "g2", "quantity": "1000000"},  # 2.00
        {**EVENT, "id": "g1", "quantity": "1000000"},  # a replay of the first
        {**EVENT, "id": "g3", "quantity": "1999000"},  # 3.998: exactly what is left
        {**EVENT, "id": "g4", "quantity": "1"},  # nothing left: declined
    ]
    before = snapshot()
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        r = world.post("/api/v1/events/batch", {"events": events}, format="json")
    assert r.status_code == 200, r.content
    results = r.json()["results"]
    assert [(x["id"], x["status"], x["code"], x["replayed"]) for x in results] == [
        ("g1", "accepted", None, False),
        ("neg", "invalid", "invalid", False),
        ("nometer", "invalid", "unknown_meter", False),
        ("broke", "declined", "insufficient_funds", False),
        (None, "invalid", "invalid", False),
        ("future", "invalid", "invalid_timestamp", False),
        ("idle", "invalid", "no_active_subscription", False),
        ("props", "invalid", "invalid", False),
        (17, "invalid", "invalid", False),
        ("ok", "invalid", "idempotency_conflict", False),
        ("g2", "accepted", None, False),
        ("g1", "accepted", None, True),
        ("g3", "accepted", None, False),
        ("g4", "declined", "insufficient_funds", False),
    ]
    assert list(results[1]["errors"]) == ["quantity"]
    assert list(results[7]["errors"]) == ["properties"]
    assert list(results[8]["errors"]) == ["id"]
    assert [x["charge"]["amount"] for x in results if x["status"] == "accepted"] == [
        "2.000000000000",
        "2.000000000000",
        "2.000000000000",
        "3.998000000000",
    ]
    assert all(x["charge"] is None for x in results if x["status"] != "accepted")
    after = snapshot()
    assert after["events"] == sorted(
        before["events"]
        + [("g1", "accepted"), ("broke", "declined"), ("g2", "accepted")]
        + [("g3", "accepted"), ("g4", "declined")]
    )
    assert after["LedgerTransaction"] == before["LedgerTransaction"] + 3
    assert after["Hold"] == before["Hold"] and after["Grant"] == before["Grant"]
    usd = Account.objects.get(wallet__customer__external_id="acme", asset_id="USD")
    # 10 - 0.002 ("ok") - 2 - 2 - 3.998; the hold h1 still reserves 2 of what is posted
    assert (usd.posted, usd.held) == (D(2), D(2))


# --- GET /events, GET /events/{id}, POST /events/{id}/reverse ---------------------------------


@pytest.mark.parametrize(
    ("query", "status", "code", "field"),
    [
        ("status=bogus", 400, "invalid", "status"),
        ("since=yesterday", 400, "invalid", "since"),
        ("since=2026-01-01T00:00:00", 400, "invalid", "since"),
        ("until=2026-02-30T00:00:00Z", 400, "invalid", "until"),
        (f"until={BIG}", 400, "invalid", "until"),
        ("limit=0", 400, "invalid", "limit"),
        ("limit=501", 400, "invalid", "limit"),
        ("limit=abc", 400, "invalid", "limit"),
        ("limit=-1", 400, "invalid", "limit"),
        ("cursor=garbage", 400, "invalid", "cursor"),
        ("customer=nobody", 404, "not_found", "customer"),
        (f"customer={quote(SQL)}", 404, "not_found", "customer"),
    ],
)
def test_event_list_bad_query(world, query, status, code, field):
    body = refused(lambda: world.get(f"/api/v1/events?{query}"), status, code)
    assert list(body["errors"]) == [field]


def test_event_list_unknown_meter_is_an_empty_list(world):
    r = world.get(f"/api/v1/events?meter={quote(SQL)}")
    assert r.status_code == 200 and r.json() == {"results": [], "next": None}


@pytest.mark.parametrize("event_id", ["nothing", quote(SQL, safe=""), "x" * 5000])
def test_event_detail_unknown(world, event_id):
    refused(lambda: world.get(f"/api/v1/events/{event_id}"), 404, "not_found")


def test_reverse_refused(world):
    refused(lambda: world.post("/api/v1/events/nothing/reverse"), 404, "not_found")
    body = refused(lambda: world.post("/api/v1/events/no/reverse"), 409, "event_not_accepted")
    assert "declined" in body["detail"]
    refused(
        lambda: world.post("/api/v1/events/ok/reverse", HTTP_IDEMPOTENCY_KEY="k" * 256),
        400,
        "invalid",
    )
    refused(
        lambda: world.post("/api/v1/events/ok/reverse", HTTP_IDEMPOTENCY_KEY="   "),
        400,
        "invalid",
    )


# --- holds --------------------------------------------------------------------------------------

HOLD = {
    "id": "hx",
    "customer": "acme",
    "meter": "llm_tokens",
    "quantity": "1000",
    "expires_in": 600,
}


def post_hold(api, **fields):
    return api.post("/api/v1/holds", {**HOLD, **fields}, format="json")


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        *[
            ({"quantity": q}, "quantity")
            for q in ("-1", "NaN", "Infinity", "1e19", "0.0000000000001", True, BIG)
        ],
        ({"expires_in": 0}, "expires_in"),
        ({"expires_in": -1}, "expires_in"),
        ({"expires_in": 604801}, "expires_in"),
        ({"expires_in": 10**30}, "expires_in"),
        ({"expires_in": "soon"}, "expires_in"),
        ({"expires_in": True}, "expires_in"),
        ({"expires_in": 1.5}, "expires_in"),
        ({"expires_in": None}, "expires_in"),
        ({"id": 123}, "id"),
        ({"id": BIG}, "id"),
        ({"properties": ["a"]}, "properties"),
        ({"properties": {"note": BIG}}, "properties"),
        ({"timestamp": "2026-01-10T11:00:00"}, "timestamp"),
    ],
    ids=lambda v: repr(v)[:30] if isinstance(v, dict) else v,
)
def test_hold_field_refused(world, fields, bad):
    body = refused(lambda: post_hold(world, **fields), 400, "invalid")
    assert list(body["errors"]) == [bad]


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"customer": "nobody"}, 422, "unknown_customer"),
        ({"meter": "nothing"}, 422, "unknown_meter"),
        ({"customer": "idle"}, 422, "no_active_subscription"),
        ({"timestamp": "2026-01-10T12:05:01Z"}, 422, "invalid_timestamp"),
        ({"quantity": "5000000"}, 402, "insufficient_funds"),  # 10.00 > 8.00 available
        ({"id": "h1"}, 409, "idempotency_conflict"),  # h1 exists with another body
    ],
    ids=lambda v: repr(v)[:40] if isinstance(v, dict) else v,
)
def test_hold_refused(world, fields, status, code):
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        refused(lambda: post_hold(world, **fields), status, code)


def test_hold_malformed_json_refused(world):
    refused(lambda: raw(world, "/api/v1/holds", '{"id": "hx", "quantity": NaN}'), 400, "malformed")


@pytest.mark.parametrize(
    ("payload", "bad"),
    [
        ({}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": "Infinity"}, "quantity"),
        ({"quantity": "1e19"}, "quantity"),
        ({"quantity": "0.0000000000001"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"quantity": BIG}, "quantity"),
        ({"quantity": "1", "event_id": 123}, "event_id"),
        ({"quantity": "1", "event_id": "e" * 256}, "event_id"),
        ({"quantity": "1", "event_id": ""}, "event_id"),
    ],
    ids=lambda v: repr(v)[:30] if isinstance(v, dict) else v,
)
def test_capture_field_refused(world, payload, bad):
    body = refused(
        lambda: world.post("/api/v1/holds/h1/capture", payload, format="json"), 400, "invalid"
    )
    assert list(body["errors"]) == [bad]


def test_capture_refused(world):
    refused(
        lambda: world.post("/api/v1/holds/nothing/capture", {"quantity": "1"}, format="json"),
        404,
        "not_found",
    )
    refused(lambda: raw(world, "/api/v1/holds/h1/capture", '{"quantity": NaN}'), 400, "malformed")
    body = refused(
        lambda: world.post(
            "/api/v1/holds/h1/capture", {"quantity": "1", "event_id": "ok"}, format="json"
        ),
        409,
        "idempotency_conflict",
    )
    assert list(body["errors"]) == ["event_id"]


def test_void_and_get_unknown_hold(world):
    refused(lambda: world.post("/api/v1/holds/nothing/void"), 404, "not_found")
    refused(lambda: world.get("/api/v1/holds/nothing"), 404, "not_found")
    refused(lambda: world.get(f"/api/v1/holds/{'h' * 5000}"), 404, "not_found")


def test_hold_not_pending_refused(world):
    assert world.post("/api/v1/holds/h1/void").status_code == 200
    refused(lambda: world.post("/api/v1/holds/h1/void"), 409, "hold_not_pending")
    refused(
        lambda: world.post("/api/v1/holds/h1/capture", {"quantity": "1"}, format="json"),
        409,
        "hold_not_pending",
    )


# --- spend limit --------------------------------------------------------------------------------

LIMIT = {"amount": "100.00", "window": "period", "mode": "hard", "alert_thresholds": [50, 80]}


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        *[
            ({"amount": a}, "amount")
            for a in ("-1", "0", "NaN", "Infinity", "1e19", "10.001", "0.0000000000001")
        ],
        ({"amount": True}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": BIG}, "amount"),
        ({"amount": [1]}, "amount"),
        ({"window": "week"}, "window"),
        ({"window": BIG}, "window"),
        ({"mode": "medium"}, "mode"),
        ({"mode": 1}, "mode"),
        ({"alert_thresholds": [0]}, "alert_thresholds"),
        ({"alert_thresholds": [101]}, "alert_thresholds"),
        ({"alert_thresholds": [50.5]}, "alert_thresholds"),
        ({"alert_thresholds": [True]}, "alert_thresholds"),
        ({"alert_thresholds": list(range(1, 12))}, "alert_thresholds"),
        ({"alert_thresholds": "50"}, "alert_thresholds"),
        ({"alert_thresholds": [BIG]}, "alert_thresholds"),
    ],
    ids=lambda v: repr(v)[:30] if isinstance(v, dict) else v,
)
def test_spend_limit_field_refused(world, fields, bad):
    body = refused(
        lambda: world.put("/api/v1/customers/acme/spend-limit", {**LIMIT, **fields}, format="json"),
        400,
        "invalid",
    )
    assert [k.split("[")[0] for k in body["errors"]] == [bad]


def test_spend_limit_missing_amount_and_malformed_refused(world):
    payload = {k: v for k, v in LIMIT.items() if k != "amount"}
    refused(
        lambda: world.put("/api/v1/customers/acme/spend-limit", payload, format="json"),
        400,
        "invalid",
    )
    refused(
        lambda: world.generic(
            "PUT",
            "/api/v1/customers/acme/spend-limit",
            '{"amount": Infinity}',
            content_type="application/json",
        ),
        400,
        "malformed",
    )


def test_spend_limit_unknown_customer_and_none_set(world):
    path = "/api/v1/customers/nobody/spend-limit"
    refused(lambda: world.put(path, LIMIT, format="json"), 404, "not_found")
    refused(lambda: world.get(path), 404, "not_found")
    refused(lambda: world.delete(path), 404, "not_found")
    refused(lambda: world.get("/api/v1/customers/acme/spend-limit"), 404, "not_found")
    refused(lambda: world.delete("/api/v1/customers/acme/spend-limit"), 404, "not_found")


def test_spend_limit_numbers_are_exact(world):
    r = world.generic(
        "PUT",
        "/api/v1/customers/acme/spend-limit",
        '{"amount": "100.1", "alert_thresholds": [80, 50, 50]}',
        content_type="application/json",
    )
    assert r.status_code == 200, r.content
    assert (r.json()["amount"], r.json()["alert_thresholds"]) == ("100.1", [50, 80])
    assert SpendLimit.objects.get().amount == D("100.1")
    assert world.delete("/api/v1/customers/acme/spend-limit").status_code == 204
    assert not SpendLimit.objects.exists()


# --- usage --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/customers/acme/usage?at=yesterday", 400, "invalid"),
        ("/api/v1/customers/acme/usage?at=2026-01-05T00:00:00", 400, "invalid"),
        ("/api/v1/customers/acme/usage?at=2026-01-05", 400, "invalid"),
        (f"/api/v1/customers/acme/usage?at={BIG}", 400, "invalid"),
        ("/api/v1/customers/acme/usage?at=2025-06-01T00:00:00Z", 404, "not_found"),
        ("/api/v1/customers/nobody/usage", 404, "not_found"),
        ("/api/v1/customers/idle/usage", 404, "not_found"),
        (f"/api/v1/customers/{quote(SQL, safe='')}/usage", 404, "not_found"),
    ],
)
def test_usage_refused(world, path, status, code):
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        refused(lambda: world.get(path), status, code)


def test_usage_at_with_an_offset(world):
    r = world.get(f"/api/v1/customers/acme/usage?at={quote('2026-01-31T23:00:00-05:00')}")
    assert r.status_code == 200, r.content
    assert r.json()["period"]["start"] == "2026-02-01T00:00:00+00:00"


def test_a_batch_keeps_ids_with_quotes_backslashes_braces_and_null_exact(world):
    """A batch passes its ids to PostgreSQL as array text (``text_array``): a customer and
    event ids spelled with the characters that text must escape are charged, stored and
    replayed exactly as sent."""
    odd = 'we"ird\\cust{,} NULL'
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        setup_customer(world, external_id=odd)
        grant(world, odd, "USD", "1.00")
        ids = ['a"b', "c\\d", "{e,f}", "NULL", "é ü", 'x "y" z']
        events = [{**EVENT, "id": i, "customer": odd} for i in ids]
        first = world.post("/api/v1/events/batch", {"events": events}, format="json")
        again = world.post("/api/v1/events/batch", {"events": events}, format="json")
    assert first.status_code == 200 and again.status_code == 200, (first.content, again.content)
    # 10 tokens at 0.000002 USD each: 0.00002 an event, from the 1.00 granted
    charged = [
        (i, "accepted", "0.000020000000", False, f"{1 - (n + 1) * Decimal('0.00002'):.12f}")
        for n, i in enumerate(ids)
    ]
    assert [
        (x["id"], x["status"], x["charge"]["amount"], x["replayed"], x["balances"][0]["available"])
        for x in first.json()["results"]
    ] == charged
    assert [
        (x["id"], x["status"], x["charge"]["amount"], x["replayed"], x["balances"][0]["available"])
        for x in again.json()["results"]
    ] == [(*c[:3], True, c[4]) for c in charged]
    stored = UsageEvent.objects.filter(customer__external_id=odd)
    assert sorted(stored.values_list("event_id", flat=True)) == sorted(ids)
    assert {e.response["customer"] for e in stored} == {odd}
    granted = Grant.objects.get(wallet__owner=f"customer:{odd}")
    assert granted.remaining == Decimal("0.99988")  # the replay charged nothing
