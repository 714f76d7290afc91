"""A hold's reservation (``billfold_hold_reserve``) and capture (``billfold_event_charge``
with the hold), in ``billing/sql``, against the Python path they stand in for.

As in ``test_charge_in_database.py``, each scenario runs the same requests twice in a
savepoint rolled back after each run, with ``CHARGE_IN_DATABASE`` on and off: every answer
and every row — holds and their allocations, the hold ids' idempotency records, events,
ledger, grants, balances, counters — must be the same, and the functions must have taken
the requests they are meant for (the rest they hand back unwritten).

Besides the hand-written scenarios, Hypothesis draws whole ones (``tests.strategies.metering``):
a plan's prices, customers and their grants, then holds, captures, voids, events, batches,
grants made meanwhile and waits; each example is set up in a savepoint of its own, rolled
back after it."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pprint import pformat

import hypothesis
import pytest
from django.db import transaction

from tests.billing.conftest import METERING_NOW
from tests.billing.scenario import grant, setup_customer, setup_meter, setup_plan
from tests.strategies.metering import Setup, hold_steps, scenarios
from tests.wallets.helpers import ensure_currencies
from wallets.models import Hold, HoldAllocation, IdempotencyRecord

from .test_charge_in_database import (
    EXAMPLES,
    build,
    grant_names,
    postpaid_gpu_customer,
    token_customer_with_bonus_and_two_usd_grants,
)
from .test_charge_in_database import state as charge_state

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _currencies(db):
    ensure_currencies()


def state() -> dict:
    written = charge_state()
    written["holds"] = sorted(
        Hold.objects.values_list(
            "id",
            "wallet_id",
            "status",
            "expires_at",
            "created_at",
            "resolved_at",
            "metadata",
            "capture_transaction__reference",
            "capture_transaction__kind",
        )
    )
    names = grant_names()
    allocations = sorted(
        HoldAllocation.objects.values_list("hold_id", "grant_id", "asset_id", "amount", "id"),
        key=lambda row: (row[0], row[4]),
    )
    # the order each hold's allocations were made in, not the ids the sequence gave
    written["allocations"] = [
        (hold, names[g], asset, amount) for hold, g, asset, amount, _ in allocations
    ]
    written["idempotency"] = sorted(
        IdempotencyRecord.objects.values_list(
            "scope", "key", "request_hash", "status_code", "response"
        )
    )
    return written


def run(api, settings, clock, steps: list[tuple], *, on: bool) -> tuple[list, dict]:
    settings.CHARGE_IN_DATABASE = on
    savepoint = transaction.savepoint()
    try:
        answers = []
        for step in steps:
            kind, *args = step
            if kind == "wait":
                clock.shift(args[0])
                continue
            if kind == "grant":
                grant(api, *args[:3], **args[3])
                continue
            if kind == "hold":
                r = api.post("/api/v1/holds", args[0], format="json")
            elif kind == "capture":
                r = api.post(f"/api/v1/holds/{args[0]}/capture", args[1], format="json")
            elif kind == "void":
                r = api.post(f"/api/v1/holds/{args[0]}/void", {}, format="json")
            elif kind == "batch":
                r = api.post("/api/v1/events/batch", {"events": args[0]}, format="json")
            else:
                r = api.post("/api/v1/events", args[0], format="json")
            answers.append((step, r.status_code, r.json()))
        return answers, state()
    finally:
        transaction.savepoint_rollback(savepoint)
        clock.move_to(METERING_NOW)


def both_ways(api, settings, clock, in_database, reserved, steps) -> tuple[list, list, list]:
    """The answers and writes with the functions and without, the same; returns the holds
    the reservation function reserved, the events (captures included) the charge function
    charged, and the answers."""
    with_functions, written_with = run(api, settings, clock, steps, on=True)
    took = (list(reserved), list(in_database))
    reserved.clear()
    in_database.clear()
    without, written_without = run(api, settings, clock, steps, on=False)
    assert not reserved and not in_database
    for (step, *answer), (_, *reference) in zip(with_functions, without, strict=True):
        assert answer == reference, step
    # ``billfold_hold_reserve`` makes a wallet's missing accounts before it finds the hold id
    # taken by another request and hands it back (409), which the Python path answers without
    # making them: the functions may leave more accounts, all empty, never fewer or others
    extra = Counter(written_with["accounts"]) - Counter(written_without["accounts"])
    assert all(not any(row[2:]) for row in extra), extra
    written_with["accounts"] = [row for row in written_with["accounts"] if row not in extra]
    for table in written_without:
        assert written_with[table] == written_without[table], table
    return (*took, with_functions)


def same_both_ways(api, settings, clock, in_database, reserved, steps) -> tuple[list, list]:
    """The answers and writes with the functions and without; returns the holds the
    reservation function reserved and the events (captures included) the charge function
    charged."""
    took_holds, took_events, _ = both_ways(api, settings, clock, in_database, reserved, steps)
    return took_holds, took_events


def hold(hold_id, customer, meter, quantity, **fields) -> tuple:
    return (
        "hold",
        {"id": hold_id, "customer": customer, "meter": meter, "quantity": quantity, **fields},
    )


def capture(hold_id, quantity, event_id=None) -> tuple:
    body = {"quantity": quantity}
    if event_id is not None:
        body["event_id"] = event_id
    return ("capture", hold_id, body)


def test_holds_and_captures_of_units_and_money(
    api, settings, clock, in_database, reserved_in_database
):
    """Reserve units from the allowance and a bonus, and money from two grants in burn-down
    order; capture less, the same and more than held; replays, a reused id, a void, a hold
    the wallet cannot cover, a capture past the wallet (a debt), and an expired hold."""
    token_customer_with_bonus_and_two_usd_grants(api)
    steps = [
        ("event", {"id": "e0", "customer": "acme", "meter": "llm_tokens", "quantity": "10"}),
        hold("h1", "acme", "llm_tokens", "4000"),
        capture("h1", "3000"),  # less than held
        hold("h2", "acme", "llm_tokens", "6000", properties={"model": "m1"}),
        capture("h2", "6000", event_id="h2-call"),  # as much as held
        hold("h3", "acme", "llm_tokens", "1000"),
        hold("h4", "acme", "llm_tokens", "2000"),  # a hold beside another one
        capture("h3", "9000"),  # more than held: its grants first, then burn-down
        hold("h1", "acme", "llm_tokens", "4000"),  # a replay of the hold
        hold("h1", "acme", "llm_tokens", "5"),  # the id again, another body
        capture("h1", "3000"),  # a replay of the capture
        capture("h1", "2999"),  # captured already
        ("void", "h4"),
        capture("h4", "1"),  # voided
        hold("h5", "acme", "llm_tokens", "50000000"),  # the wallet cannot cover it
        hold("h6", "acme", "llm_tokens", "100", expires_in=60),
        ("wait", 120),
        capture("h6", "100"),  # expired
        hold("h7", "acme", "llm_tokens", "1000"),  # an expired hold to release first
        capture("h7", "30000000"),  # past the wallet: a debt
        hold("h8", "acme", "llm_tokens", "10"),  # a debt: declined
        ("event", {"id": "h7", "customer": "acme", "meter": "llm_tokens", "quantity": "1"}),
    ]

    took_holds, took_events = same_both_ways(
        api, settings, clock, in_database, reserved_in_database, steps
    )

    # e0 makes the tokens revenue account and h2's capture the USD one (the Python path
    # makes accounts); h7 is reserved beside h6, which expired: the Python path releases
    # it first; h5 and h8 are declined, h7's capture overdraws: the Python path
    assert took_holds == ["h1", "h2", "h3", "h4", "h6"]
    assert took_events == ["h1", "h3"]
    answers, _ = run(api, settings, clock, steps, on=True)
    assert [status for _, status, _ in answers] == [
        201, 201, 200, 201, 200, 201, 201, 200, 201, 409, 200, 409, 200, 409, 402, 201,
        409, 201, 200, 402, 409,
    ]  # fmt: skip


def test_postpaid_holds_reserve_what_the_wallet_pays_and_graduated_prices(
    api, settings, clock, in_database, reserved_in_database
):
    """A postpaid customer: a hold reserves only what the wallet pays, the rest will accrue;
    the capture accrues its shortfall. Graduated tiers with flat fees over the counter."""
    postpaid_gpu_customer(api)
    grant(api, "acme", "USD", "3.60", id="small")
    steps = [
        ("event", {"id": "g0", "customer": "acme", "meter": "gpu", "quantity": "4"}),
        hold("g1", "acme", "gpu", "7"),
        capture("g1", "5"),
        hold("g2", "acme", "gpu", "50"),
        capture("g2", "80"),
        hold("g3", "acme", "gpu", "30"),
        capture("g3", "0"),
        hold("g4", "acme", "gpu", "1000"),
        capture("g4", "0.25"),
    ]

    took_holds, took_events = same_both_ways(
        api, settings, clock, in_database, reserved_in_database, steps
    )

    assert took_holds == ["g1", "g2", "g3", "g4"]
    assert took_events == ["g1", "g2", "g3", "g4"]


def test_drawn_holds_captures_and_events_agree(
    api, settings, clock, in_database, reserved_in_database
):
    """Drawn scenarios (``tests.strategies.metering``): the plans and wallets of the charge
    comparison, then holds (replays, reused ids, some expiring), captures of less, as much
    as and more than held (of unknown, voided, captured and expired holds too), voids,
    events and batches, grants made meanwhile and waits. Every answer and row must agree;
    the functions take only holds and captures that succeeded, and across the examples
    many."""
    took_in_all: tuple[list[str], list[str]] = ([], [])
    seen: Counter[str] = Counter()

    @EXAMPLES
    @hypothesis.given(scenario=scenarios(hold_steps))
    def agree(scenario: tuple[Setup, list]) -> None:
        hypothesis.note(pformat(scenario, width=100))  # shown for a failing example
        setup, steps = scenario
        example = transaction.savepoint()
        try:
            build(api, setup)
            in_database.clear()
            reserved_in_database.clear()
            took_holds, took_events, answers = both_ways(
                api, settings, clock, in_database, reserved_in_database, steps
            )
        finally:
            transaction.savepoint_rollback(example)
        made = {step[1]["id"] for step, status, _ in answers if step[0] == "hold" and status == 201}
        assert set(took_holds) <= made
        took_in_all[0].extend(took_holds)
        took_in_all[1].extend(took_events)
        seen.update(
            f"{step[0]} {status} {body.get('code') or ''}" for step, status, body in answers
        )

    agree()
    # the examples reach both functions and the outcomes around them
    assert len(took_in_all[0]) > 20 and took_in_all[1], (took_in_all, seen)
    assert {"hold 201 ", "capture 200 ", "void 200 "} <= set(seen), seen


def test_a_capture_draws_first_from_the_grants_its_hold_reserved_in_their_order(
    api, settings, clock, in_database, reserved_in_database
):
    """A hold reserves from two USD grants (the one expiring first, then the other); a
    capture of less pays from them in that order, though a grant made meanwhile comes first
    in burn-down order; a capture of more takes the rest in burn-down order."""
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(api, "payg", [{"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.001"}])
    setup_customer(api, "acme", plan="payg")
    grant(api, "acme", "USD", "3", id="a-soon", priority=10, expires_at="2026-01-20T00:00:00Z")
    grant(api, "acme", "USD", "5", id="b-late", priority=10)
    steps = [
        ("event", {"id": "e0", "customer": "acme", "meter": "llm_tokens", "quantity": "1000"}),
        hold("h1", "acme", "llm_tokens", "4000"),  # 2 from a-soon, 2 from b-late
        # a grant that comes first in burn-down order, made while h1 is pending
        ("grant", "acme", "USD", "1", {"id": "c-first", "priority": 1}),
        capture("h1", "2500"),
        hold("h2", "acme", "llm_tokens", "3000"),
        capture("h2", "3500"),
    ]

    took_holds, took_events = same_both_ways(
        api, settings, clock, in_database, reserved_in_database, steps
    )

    assert took_holds == ["h1", "h2"]
    assert took_events == ["h1", "h2"]
    answers, _ = run(api, settings, clock, steps, on=True)
    fundings = [
        [(f["grant"], f["amount"]) for f in answer["event"]["charge"]["funding"]]
        for step, _, answer in answers
        if step[0] == "capture"
    ]
    assert fundings == [
        [("a-soon", "2.000000000000"), ("b-late", "0.500000000000")],
        # h2 reserved 1 from c-first and 2 from b-late; 3.5 takes them, then 0.5 more in
        # burn-down order (b-late: c-first is spent)
        [("c-first", "1.000000000000"), ("b-late", "2.500000000000")],
    ]
