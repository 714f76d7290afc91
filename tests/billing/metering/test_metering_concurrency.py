"""docs/quality.md 5–8 over the API on real PostgreSQL: many threads, each with its own APIClient
and its own database connection, POST events and holds at once. No sleeps: calls that must
overlap wait at a barrier, and the pool waits for every call.

Each call records the status, the problem ``code``, the content type and the body; an
exception escaping a view (a 500) is recorded as status 500 so the assertions show it. A
deadlock would surface as a 503 (``DeadlockDetected`` is an ``OperationalError``)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from billing.metering import batch as batch_module
from billing.models import Alert, SpendCounter, UsageCounter, UsageEvent
from tests.billing.scenario import available, grant, setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies
from wallets.models import Account, Grant, Hold, LedgerTransaction
from wallets.services import hold_expire

D = Decimal
WORKERS = 16

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _currencies(transactional_db):
    """A ``transaction=True`` test flushes every table when it ends, the ISO currencies of the
    data migration included; ``--reuse-db`` then keeps that empty database. Put them back."""
    ensure_currencies()


@dataclass
class Reply:
    status: int
    code: str | None
    content_type: str
    body: Any
    replayed: bool


def _post(client: APIClient, path: str, body: dict | None) -> Reply:
    try:
        response = client.post(path, body, format="json")
    except Exception as exc:  # a view that raised: the test client re-raises it
        return Reply(500, type(exc).__name__, "", repr(exc), False)
    payload = response.json() if response.content else None
    code = payload.get("code") if isinstance(payload, dict) else None
    return Reply(
        response.status_code,
        code,
        response["Content-Type"],
        payload,
        response.headers.get("Idempotent-Replayed") == "true",
    )


def run_concurrently(calls: Sequence[Callable[[], Any]], *, barrier: bool = False) -> list[Any]:
    """Run the calls on 16 threads and return their results in order. Each thread takes every
    16th call, runs them one after another on its own connection and closes it at its end.
    With ``barrier`` (at most 16 calls, one per thread) they all start at the same instant."""
    gate = threading.Barrier(len(calls), timeout=30) if barrier else None
    if barrier:
        assert len(calls) <= WORKERS
    chunks = [list(range(i, len(calls), WORKERS)) for i in range(min(WORKERS, len(calls)))]
    results: list[Any] = [None] * len(calls)

    def run(indexes: list[int]) -> None:
        try:
            if gate is not None:
                gate.wait()
            for index in indexes:
                results[index] = calls[index]()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(run, chunks))  # re-raises what a thread raised
    return results


def clients(raw_key: str, n: int) -> list[APIClient]:
    """``n`` API clients sending ``raw_key`` (made in the main thread, one per call)."""
    made = []
    for _ in range(n):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        made.append(client)
    return made


def post_calls(raw_key: str, path: str, bodies: Sequence[dict | None]) -> list[Callable]:
    return [
        (lambda c=c, b=b: _post(c, path, b))
        for c, b in zip(clients(raw_key, len(bodies)), bodies, strict=True)
    ]


def statuses(replies: Sequence[Reply]) -> Counter:
    return Counter((r.status, r.code) for r in replies)


def start() -> str:
    return (timezone.now() - timedelta(hours=1)).isoformat()


def per_unit(meter: str, unit_price: str, **extra) -> dict:
    return {"meter": meter, "model": "per_unit", "unit_price": unit_price, **extra}


def requests_plan(api, plan="flat") -> None:
    setup_meter(api, "requests", "requests", "count")
    setup_plan(api, plan, [per_unit("requests", "1.00")])


# --- (a) N debits against a wallet that can pay exactly k of them ---------------------------------


def test_200_events_against_a_wallet_for_37(api):
    requests_plan(api)
    setup_customer(api, plan="flat", start=start())
    grant(api, "acme", "USD", "37.00", id="paid37")

    bodies = [{"id": f"e{i}", "customer": "acme", "meter": "requests"} for i in range(200)]
    replies = run_concurrently(post_calls(api.raw_key, "/api/v1/events", bodies))

    assert statuses(replies) == {(201, None): 37, (402, "insufficient_funds"): 163}
    for reply in replies:
        if reply.status == 201:
            assert reply.body["status"] == "accepted"
            assert reply.body["charge"]["amount"] == "1.000000000000"
            assert reply.body["charge"]["funding"] == [
                {"grant": "paid37", "asset": "USD", "amount": "1.000000000000"}
            ]
        else:
            assert reply.content_type == "application/problem+json"
            assert reply.body["event"]["status"] == "declined"
    assert available(api, "acme", "USD") == D("0")
    assert Grant.objects.get(pk="paid37").remaining == 0
    assert UsageEvent.objects.count() == 200
    assert Counter(UsageEvent.objects.values_list("status", flat=True)) == {
        "accepted": 37,
        "declined": 163,
    }
    assert set(
        UsageEvent.objects.filter(status="declined").values_list("decline_code", flat=True)
    ) == {"insufficient_funds"}
    assert (
        UsageEvent.objects.filter(status="declined", ledger_transaction__isnull=False).count() == 0
    )
    assert LedgerTransaction.objects.filter(kind="draw").count() == 37
    counter = UsageCounter.objects.get()
    assert (
        counter.quantity,
        counter.included,
        counter.billable,
        counter.amount,
        counter.accrued,
        counter.events,
    ) == (D("37"), D("0"), D("37"), D("37"), D("0"), 37)


def test_200_events_through_the_charge_function_against_a_wallet_for_37(api, in_database):
    """The same race, with the revenue account made first (one event), so that every accepted
    charge is the database function's: it never overdraws, and the declines it hands back
    to the Python path are recorded while other charges go on."""
    requests_plan(api)
    setup_customer(api, plan="flat", start=start())
    grant(api, "acme", "USD", "37.00", id="paid37")
    assert event_post(api, "first").status_code == 201  # makes the USD revenue account
    in_database.clear()  # from here on

    bodies = [{"id": f"e{i}", "customer": "acme", "meter": "requests"} for i in range(200)]
    replies = run_concurrently(post_calls(api.raw_key, "/api/v1/events", bodies))

    assert statuses(replies) == {(201, None): 36, (402, "insufficient_funds"): 164}
    accepted = {b["id"] for b, r in zip(bodies, replies, strict=True) if r.status == 201}
    assert sorted(in_database) == sorted(accepted)
    assert available(api, "acme", "USD") == D("0")
    assert Grant.objects.get(pk="paid37").remaining == 0
    assert LedgerTransaction.objects.filter(kind="draw").count() == 37
    assert UsageCounter.objects.get().events == 37


def test_same_event_id_from_10_clients_through_the_charge_function_is_charged_once(
    api, in_database
):
    requests_plan(api)
    setup_customer(api, plan="flat", start=start())
    grant(api, "acme", "USD", "5.00", id="g5")
    assert event_post(api, "first").status_code == 201  # makes the USD revenue account
    in_database.clear()  # from here on

    body = {"id": "dup", "customer": "acme", "meter": "requests", "quantity": "1"}
    replies = run_concurrently(post_calls(api.raw_key, "/api/v1/events", [body] * 10), barrier=True)

    assert [r.status for r in replies] == [201] * 10
    assert sum(1 for r in replies if r.replayed) == 9
    assert in_database == ["dup"]  # the others found it written: replays
    assert all(r.body == replies[0].body for r in replies)
    assert UsageEvent.objects.filter(event_id="dup").count() == 1
    assert LedgerTransaction.objects.filter(kind="draw").count() == 2
    assert available(api, "acme", "USD") == D("3")


def event_post(api, event_id: str):
    return api.post(
        "/api/v1/events",
        {"id": event_id, "customer": "acme", "meter": "requests"},
        format="json",
    )


# --- (b) the same against a hard spend limit ------------------------------------------------------


@pytest.mark.parametrize("overage", ["wallet", "invoice"])
def test_200_events_against_a_hard_limit_of_25(api, overage):
    requests_plan(api)
    setup_customer(api, plan="flat", overage=overage, start=start())
    if overage == "wallet":
        grant(api, "acme", "USD", "1000.00", id="big")
    r = api.put(
        "/api/v1/customers/acme/spend-limit",
        {"amount": "25.00", "window": "period", "mode": "hard", "alert_thresholds": [50, 80, 100]},
        format="json",
    )
    assert r.status_code == 200, r.content

    bodies = [{"id": f"e{i}", "customer": "acme", "meter": "requests"} for i in range(200)]
    replies = run_concurrently(post_calls(api.raw_key, "/api/v1/events", bodies))

    assert statuses(replies) == {(201, None): 25, (402, "spend_limit_exceeded"): 175}
    accepted = [r for r in replies if r.status == 201]
    if overage == "wallet":
        assert {r.body["charge"]["accrued"] for r in accepted} == {"0"}
        assert available(api, "acme", "USD") == D("975")
        assert Grant.objects.get(pk="big").remaining == D("975")
    else:
        assert {r.body["charge"]["accrued"] for r in accepted} == {"1"}
        assert available(api, "acme", "USD") == D("0")
        assert LedgerTransaction.objects.filter(kind="draw").count() == 0
    assert Counter(UsageEvent.objects.values_list("status", flat=True)) == {
        "accepted": 25,
        "declined": 175,
    }
    assert SpendCounter.objects.get().spent == D("25")
    thresholds = Alert.objects.filter(kind=Alert.Kind.THRESHOLD)
    assert sorted(thresholds.values_list("threshold", flat=True)) == [50, 80, 100]
    # each fired by the event that crossed it: 12.50 → 13th, 20.00 → 20th, 25.00 → 25th
    assert sorted(thresholds.values_list("spent", flat=True)) == [D("13"), D("20"), D("25")]
    exceeded = Alert.objects.filter(kind=Alert.Kind.EXCEEDED)
    assert exceeded.count() == 1 and exceeded.get().spent == D("25")
    spend = api.get("/api/v1/customers/acme/usage").json()["spend"]
    assert (spend["amount"], spend["limit"]) == ("25", "25")


# --- (c) one event id from ten clients at once ----------------------------------------------------


def test_same_event_id_from_10_clients_is_charged_once(api):
    requests_plan(api)
    setup_customer(api, plan="flat", start=start())
    grant(api, "acme", "USD", "5.00", id="g5")

    body = {"id": "dup", "customer": "acme", "meter": "requests", "quantity": "1"}
    replies = run_concurrently(post_calls(api.raw_key, "/api/v1/events", [body] * 10), barrier=True)

    assert [r.status for r in replies] == [201] * 10
    assert sum(1 for r in replies if r.replayed) == 9
    first = next(r.body for r in replies if not r.replayed)
    for reply in replies:
        assert reply.body == first
    assert replies[0].body["charge"]["amount"] == "1.000000000000"
    assert UsageEvent.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="draw").count() == 1
    assert available(api, "acme", "USD") == D("4")
    assert UsageCounter.objects.get().events == 1


def test_batches_and_single_events_against_a_wallet_for_37(api):
    """Batches (one transaction each, reads kept in memory) racing single events on one
    wallet: exactly 37 of 200 are accepted, whichever path carried them."""
    requests_plan(api)
    setup_customer(api, plan="flat", start=start())
    grant(api, "acme", "USD", "37.00", id="paid37")

    batches = [
        {
            "events": [
                {"id": f"b{b}-{i}", "customer": "acme", "meter": "requests"} for i in range(20)
            ]
        }
        for b in range(5)
    ]
    singles = [{"id": f"s{i}", "customer": "acme", "meter": "requests"} for i in range(100)]
    calls = post_calls(api.raw_key, "/api/v1/events/batch", batches) + post_calls(
        api.raw_key, "/api/v1/events", singles
    )
    replies = run_concurrently(calls)

    assert [r.status for r in replies[:5]] == [200] * 5
    outcomes = Counter(x["status"] for r in replies[:5] for x in r.body["results"])
    outcomes.update("accepted" if r.status == 201 else "declined" for r in replies[5:])
    assert outcomes == {"accepted": 37, "declined": 163}
    assert Grant.objects.get(pk="paid37").remaining == 0
    assert LedgerTransaction.objects.filter(kind="draw").count() == 37
    assert UsageCounter.objects.get().events == 37


def test_the_same_batch_from_8_clients_charges_each_event_once(api):
    requests_plan(api)
    setup_customer(api, plan="flat", start=start())
    grant(api, "acme", "USD", "50.00", id="g50")

    batch = {
        "events": [{"id": f"e{i}", "customer": "acme", "meter": "requests"} for i in range(30)]
    }
    replies = run_concurrently(
        post_calls(api.raw_key, "/api/v1/events/batch", [batch] * 8), barrier=True
    )

    assert [r.status for r in replies] == [200] * 8
    for reply in replies:
        assert [x["status"] for x in reply.body["results"]] == ["accepted"] * 30
    replayed = Counter(x["replayed"] for r in replies for x in r.body["results"])
    assert replayed == {True: 7 * 30, False: 30}
    assert UsageEvent.objects.count() == 30
    assert LedgerTransaction.objects.filter(kind="draw").count() == 30
    assert available(api, "acme", "USD") == D("20")
    assert UsageCounter.objects.get().events == 30


def test_batches_over_6_customers_in_parts_race_each_other_and_single_events(api, monkeypatch):
    """Batches charged two wallets per transaction, over the same customers in different
    orders, racing each other and single events: no deadlock, every wallet pays exactly 10
    events, and within a batch a customer's events are charged in array order (all the
    accepted ones before the first declined one)."""
    monkeypatch.setattr(batch_module, "BATCH_WALLETS_PER_TRANSACTION", 2)
    requests_plan(api)
    customers = [f"c{i}" for i in range(6)]
    for customer in customers:
        setup_customer(api, external_id=customer, plan="flat", start=start())
        grant(api, customer, "USD", "10.00", id=f"{customer}-usd")
    rng = random.Random(6)
    batches = []
    for b in range(6):
        events = [
            {"id": f"b{b}-{i}", "customer": rng.choice(customers), "meter": "requests"}
            for i in range(40)
        ]
        batches.append({"events": events})
    singles = [
        {"id": f"s{i}", "customer": customers[i % 6], "meter": "requests"} for i in range(30)
    ]
    calls = post_calls(api.raw_key, "/api/v1/events/batch", batches) + post_calls(
        api.raw_key, "/api/v1/events", singles
    )
    replies = run_concurrently(calls)

    assert [r.status for r in replies[:6]] == [200] * 6
    accepted: Counter = Counter()
    for batch, reply in zip(batches, replies[:6], strict=True):
        seen: dict[str, list[str]] = {}
        for event, result in zip(batch["events"], reply.body["results"], strict=True):
            seen.setdefault(event["customer"], []).append(result["status"])
            accepted[event["customer"]] += result["status"] == "accepted"
        for statuses_of_one in seen.values():
            n = statuses_of_one.count("accepted")
            assert statuses_of_one == ["accepted"] * n + ["declined"] * (len(statuses_of_one) - n)
    for body, reply in zip(singles, replies[6:], strict=True):
        accepted[body["customer"]] += reply.status == 201
    assert accepted == {customer: 10 for customer in customers}
    remaining = Grant.objects.filter(pk__in=[f"{c}-usd" for c in customers])
    assert list(remaining.values_list("remaining", flat=True)) == [D(0)] * 6
    assert LedgerTransaction.objects.filter(kind="draw").count() == 60
    assert UsageEvent.objects.count() == 6 * 40 + 30


# --- (d) holds: k of N reserved; capture, void and expiry race ------------------------------------


def hold_body(hold_id: str, quantity: str = "1", expires_in: int = 600) -> dict:
    return {
        "id": hold_id,
        "customer": "acme",
        "meter": "requests",
        "quantity": quantity,
        "expires_in": expires_in,
    }


def test_same_hold_id_from_10_clients_reserves_once(api):
    setup_meter(api, "requests", "requests", "sum")
    setup_plan(api, "flat", [per_unit("requests", "1.00")])
    setup_customer(api, plan="flat", start=start())
    grant(api, "acme", "USD", "5.00", id="g5")

    replies = run_concurrently(
        post_calls(api.raw_key, "/api/v1/holds", [hold_body("same", "2")] * 10), barrier=True
    )

    assert [r.status for r in replies] == [201] * 10
    assert sum(1 for r in replies if r.replayed) == 9
    first = next(r.body for r in replies if not r.replayed)
    assert all(r.body == first for r in replies)
    assert first["held"] == [{"asset": "USD", "amount": "2.000000000000"}]
    assert Hold.objects.count() == 1
    usd = Account.objects.get(wallet__customer__external_id="acme", asset_id="USD")
    assert (usd.posted, usd.held) == (D(5), D(2))


def race_hold(raw_key: str, hold_id: str, *, captures: int, voids: int, sweep: bool) -> str:
    """Capture, void and expire one pending hold at the same instant: exactly one wins, every
    other HTTP call gets 409 ``hold_not_pending``. Returns the hold's final status."""
    expires_at = Hold.objects.get(pk=hold_id).expires_at
    quantities = ("0.5", "1", "2")[:captures]
    calls = post_calls(
        raw_key, f"/api/v1/holds/{hold_id}/capture", [{"quantity": q} for q in quantities]
    ) + post_calls(raw_key, f"/api/v1/holds/{hold_id}/void", [None] * voids)
    if sweep:
        calls.append(lambda: hold_expire(hold_id=hold_id, now=expires_at + timedelta(seconds=1)))
    results = run_concurrently(calls, barrier=True)
    http = results[: captures + voids]
    swept = results[-1] if sweep else None
    won = [r for r in http if r.status == 200]
    lost = [(r.status, r.code, r.content_type) for r in http if r.status != 200]
    assert lost == [(409, "hold_not_pending", "application/problem+json")] * len(lost), lost
    assert len(won) + (swept is not None) == 1, (hold_id, [r.status for r in http], swept)
    status = won[0].body["status"] if won else "expired"
    assert Hold.objects.get(pk=hold_id).status == status
    return status


def test_60_holds_against_20_then_capture_void_and_expiry_race(api):
    setup_meter(api, "requests", "requests", "sum")
    setup_plan(api, "flat", [per_unit("requests", "1.00")])
    setup_customer(api, plan="flat", start=start())
    grant(api, "acme", "USD", "20.00", id="g20")

    bodies = [hold_body(f"h{i}") for i in range(60)]
    replies = run_concurrently(post_calls(api.raw_key, "/api/v1/holds", bodies))

    assert statuses(replies) == {(201, None): 20, (402, "insufficient_funds"): 40}
    for reply in replies:
        if reply.status == 201:
            assert reply.body["held"] == [{"asset": "USD", "amount": "1.000000000000"}]
    assert Hold.objects.count() == 20
    usd = Account.objects.get(wallet__customer__external_id="acme", asset_id="USD")
    assert (usd.posted, usd.held) == (D("20"), D("20"))
    assert Grant.objects.get(pk="g20").held == D("20")
    pending = sorted(Hold.objects.values_list("pk", flat=True))

    # ten holds, each raced by some of: 3 captures (different quantities, so none is a
    # replay of another), voids, and the expiry sweep run for an instant after expiry
    races = [(3, 3, True)] * 4 + [(3, 3, False)] * 3 + [(0, 6, False)] * 3
    raced = pending[: len(races)]
    winners: Counter = Counter()
    for hold_id, (captures, voids, sweep) in zip(raced, races, strict=True):
        winners[race_hold(api.raw_key, hold_id, captures=captures, voids=voids, sweep=sweep)] += 1
    assert sum(winners.values()) == 10 and set(winners) <= {"captured", "voided", "expired"}

    # what the raced holds did to the wallet, from their final state
    charged = sum(
        (e.amount for e in UsageEvent.objects.filter(status="accepted", hold_id__in=raced)),
        D(0),
    )
    usd.refresh_from_db()
    assert usd.held == D("10")
    assert usd.posted == D("20") - charged
    assert Grant.objects.get(pk="g20").held == D("10")
    assert UsageEvent.objects.filter(hold_id__in=raced).count() == winners["captured"]
    assert Counter(Hold.objects.values_list("status", flat=True)) == {"pending": 10, **winners}


def test_60_holds_against_19_through_the_functions_then_captures_race_voids(
    api, in_database, reserved_in_database
):
    """The reservation function takes 19 of 60 holds at once and never reserves more than
    the wallet has (the others it hands back as declines); then each hold's capture races
    two voids: one wins, and the captures that win are the capture function's."""
    setup_meter(api, "requests", "requests", "sum")
    setup_plan(api, "flat", [per_unit("requests", "1.00")])
    setup_customer(api, plan="flat", start=start())
    grant(api, "acme", "USD", "20.00", id="g20")
    assert event_post(api, "first").status_code == 201  # makes the USD revenue account
    in_database.clear()  # from here on

    bodies = [hold_body(f"h{i}") for i in range(60)]
    replies = run_concurrently(post_calls(api.raw_key, "/api/v1/holds", bodies))

    assert statuses(replies) == {(201, None): 19, (402, "insufficient_funds"): 41}
    made = sorted(b["id"] for b, r in zip(bodies, replies, strict=True) if r.status == 201)
    assert sorted(reserved_in_database) == made
    usd = Account.objects.get(wallet__customer__external_id="acme", asset_id="USD")
    assert (usd.posted, usd.held) == (D("19"), D("19"))

    calls = []
    for hold_id in made:
        calls += post_calls(api.raw_key, f"/api/v1/holds/{hold_id}/capture", [{"quantity": "1"}])
        calls += post_calls(api.raw_key, f"/api/v1/holds/{hold_id}/void", [None, None])
    replies = run_concurrently(calls)

    for n, hold_id in enumerate(made):
        capture, *voids = replies[3 * n : 3 * n + 3]
        won = [r for r in (capture, *voids) if r.status == 200]
        assert len(won) == 1, hold_id
        assert {(r.status, r.code) for r in (capture, *voids) if r.status != 200} <= {
            (409, "hold_not_pending")
        }
    captured = sorted(Hold.objects.filter(status="captured").values_list("pk", flat=True))
    assert sorted(in_database) == captured  # every capture that won, the function's
    assert Hold.objects.filter(status="voided").count() == 19 - len(captured)
    usd.refresh_from_db()
    assert (usd.posted, usd.held) == (D("19") - len(captured), D("0"))
    assert Grant.objects.get(pk="g20").held == 0
    assert LedgerTransaction.objects.filter(kind="capture").count() == len(captured)


def test_holds_that_reserved_nothing_race_their_capture_and_voids(api, in_database):
    """A postpaid customer without grants: a hold reserves nothing (its charge will accrue),
    so a void locks no account. Each hold's capture (through the capture function) and
    three voids at the same instant: exactly one wins, the others get 409."""
    setup_meter(api, "requests", "requests", "sum")
    setup_plan(api, "flat", [per_unit("requests", "1.00")])
    setup_customer(api, plan="flat", start=start(), overage="invoice")
    assert event_post(api, "first").status_code == 201
    made = []
    for i in range(8):
        reply = api.post("/api/v1/holds", hold_body(f"n{i}"), format="json")
        assert reply.status_code == 201 and reply.json()["held"] == [], reply.content
        made.append(f"n{i}")
    in_database.clear()

    winners = Counter(
        race_hold(api.raw_key, hold_id, captures=1, voids=3, sweep=False) for hold_id in made
    )

    assert sum(winners.values()) == 8 and set(winners) <= {"captured", "voided"}
    assert sorted(in_database) == sorted(
        Hold.objects.filter(status="captured").values_list("pk", flat=True)
    )
    assert UsageCounter.objects.get().events == 1 + winners["captured"]


# --- (e) no deadlock across customers and assets --------------------------------------------------


def two_asset_customers(api) -> None:
    """Customer ``tok`` meters tokens (allowance 3) priced in credits; customer ``cre`` meters
    credits (allowance 3) priced in tokens: the first event of each (5 units: 3 included, 2
    billable) posts revenue in both assets, in opposite orders. ``usd`` meters requests
    priced in USD."""
    r = api.post(
        "/api/v1/assets",
        {
            "code": "credits",
            "name": "Credits",
            "decimals": 0,
            "rates": [{"currency": "USD", "rate": "0.01"}],
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    setup_meter(api, "llm", "tokens", "sum")
    setup_meter(api, "studio", "credits", "sum")
    setup_meter(api, "requests", "requests", "count")
    setup_plan(api, "tok", [per_unit("llm", "2", asset="credits", included="3")])
    setup_plan(api, "cre", [per_unit("studio", "3", asset="tokens", included="3")])
    setup_plan(api, "usd", [per_unit("requests", "0.25")])
    for customer in ("tok", "cre", "usd"):
        setup_customer(api, external_id=customer, plan=customer, start=start())
    grant(api, "tok", "credits", "1000", id="tok-credits")
    grant(api, "cre", "tokens", "1000", id="cre-tokens")
    grant(api, "usd", "USD", "100.00", id="usd-usd")


def test_customers_on_different_and_opposite_assets_never_deadlock(api):
    two_asset_customers(api)
    bodies = []
    for i in range(40):
        bodies.append({"id": f"tok{i}", "customer": "tok", "meter": "llm", "quantity": "5"})
        bodies.append({"id": f"cre{i}", "customer": "cre", "meter": "studio", "quantity": "5"})
        bodies.append({"id": f"usd{i}", "customer": "usd", "meter": "requests"})
    # the first events of each customer start together (they create the revenue accounts)
    first = run_concurrently(post_calls(api.raw_key, "/api/v1/events", bodies[:12]), barrier=True)
    rest = run_concurrently(post_calls(api.raw_key, "/api/v1/events", bodies[12:]))
    replies = first + rest
    assert statuses(replies) == {(201, None): 120}, statuses(replies)

    # tok: 200 tokens, 3 included, 197 billable × 2 credits = 394 credits
    assert available(api, "tok", "credits") == D("606")
    assert available(api, "tok", "tokens") == D("0")
    # cre: 200 credits, 3 included, 197 billable × 3 tokens = 591 tokens
    assert available(api, "cre", "tokens") == D("409")
    assert available(api, "cre", "credits") == D("0")
    # usd: 40 × 0.25
    assert available(api, "usd", "USD") == D("90")
    counters = {
        c.subscription.customer.external_id: (c.quantity, c.included, c.billable, c.amount)
        for c in UsageCounter.objects.select_related("subscription__customer")
    }
    assert counters == {
        "tok": (D("200"), D("3"), D("197"), D("394")),
        "cre": (D("200"), D("3"), D("197"), D("591")),
        "usd": (D("40"), D("0"), D("40"), D("10")),
    }


def test_first_charges_in_opposite_asset_orders_do_not_deadlock(api, monkeypatch):
    """The same two first events, with their interleaving forced: each transaction stops
    after making its first revenue account until the other has made its own (or 3 s pass).
    Made in one global order they cannot wait on each other; made in each event's own order
    (unit, then price asset) they deadlock and PostgreSQL aborts one (a 503)."""
    from billing.metering import reads

    real = reads.system_account
    gate = threading.Barrier(2, timeout=3)
    seen = threading.local()

    def interleaved(code: str, asset: str) -> Account:
        account = real(code, asset)
        if code == Account.System.REVENUE and not getattr(seen, "done", False):
            seen.done = True
            try:
                gate.wait()
            except threading.BrokenBarrierError:
                pass  # the other transaction waits on this one: let it go on
        return account

    monkeypatch.setattr(reads, "system_account", interleaved)
    two_asset_customers(api)
    bodies = [
        {"id": "tok0", "customer": "tok", "meter": "llm", "quantity": "5"},
        {"id": "cre0", "customer": "cre", "meter": "studio", "quantity": "5"},
    ]
    replies = run_concurrently(post_calls(api.raw_key, "/api/v1/events", bodies), barrier=True)
    assert [(r.status, r.code) for r in replies] == [(201, None), (201, None)]
    assert [r.body["charge"]["amount"] for r in replies] == ["4", "6"]
    assert available(api, "tok", "credits") == D("996")
    assert available(api, "cre", "tokens") == D("994")
