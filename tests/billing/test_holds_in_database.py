"""A hold's reservation (``billfold_hold_reserve``) and capture (``billfold_event_charge``
with the hold), in ``billing/sql``, against the Python path they stand in for.

As in ``test_charge_in_database.py``, each scenario runs the same requests twice in a
savepoint rolled back after each run, with ``CHARGE_IN_DATABASE`` on and off: every answer
and every row — holds and their allocations, the hold ids' idempotency records, events,
ledger, grants, balances, counters — must be the same, and the functions must have taken
the requests they are meant for (the rest they hand back unwritten)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.db import transaction

from tests.wallets.helpers import ensure_currencies
from wallets.models import Hold, HoldAllocation, IdempotencyRecord

from .conftest import METERING_NOW
from .scenario import grant, setup_customer, setup_meter, setup_plan
from .test_charge_in_database import (
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
    written["allocations"] = sorted(
        HoldAllocation.objects.values_list("hold_id", "grant_id", "asset_id", "amount", "id"),
        key=lambda row: (row[0], row[4]),
    )
    # the order each hold's allocations were made in, not the ids the sequence gave
    written["allocations"] = [row[:4] for row in written["allocations"]]
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
            else:
                r = api.post("/api/v1/events", args[0], format="json")
            answers.append((step, r.status_code, r.json()))
        return answers, state()
    finally:
        transaction.savepoint_rollback(savepoint)
        clock.move_to(METERING_NOW)


def same_both_ways(api, settings, clock, in_database, reserved, steps) -> tuple[list, list]:
    """The answers and writes with the functions and without; returns the holds the
    reservation function reserved and the events (captures included) the charge function
    charged."""
    with_functions, written_with = run(api, settings, clock, steps, on=True)
    took = (list(reserved), list(in_database))
    reserved.clear()
    in_database.clear()
    without, written_without = run(api, settings, clock, steps, on=False)
    assert not reserved and not in_database
    for (step, *answer), (_, *reference) in zip(with_functions, without, strict=True):
        assert answer == reference, step
    for table in written_without:
        assert written_with[table] == written_without[table], table
    return took


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


def test_random_holds_captures_and_events_agree(
    api, settings, clock, in_database, reserved_in_database
):
    """A seeded mix over several customers, prepaid and postpaid, with and without
    allowances: holds, captures of more or less than held, voids and plain events."""
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(
        api,
        "mix",
        [
            {
                "meter": "llm_tokens",
                "model": "package",
                "included": "1000",
                "package_size": "1000",
                "package_price": "0.30",
            }
        ],
    )
    rng = random.Random(20261128)
    customers = [f"cust{i}" for i in range(4)]
    for i, customer in enumerate(customers):
        setup_customer(api, customer, plan="mix", overage="invoice" if i % 2 else "wallet")
        grant(api, customer, "USD", str(D(rng.randint(100, 2000)) / 100), id=f"{customer}-usd")
        if i == 2:
            grant(api, customer, "tokens", "3000", id=f"{customer}-tok")
    # every customer's revenue accounts first (the Python path makes them)
    steps = [
        ("event", {"id": "warm", "customer": "cust2", "meter": "llm_tokens", "quantity": "9000"})
    ]
    pending: list[str] = []
    for n in range(60):
        roll = rng.random()
        if pending and roll < 0.45:
            hold_id = pending.pop(rng.randrange(len(pending)))
            if rng.random() < 0.15:
                steps.append(("void", hold_id))
            else:
                steps.append(capture(hold_id, str(rng.randint(0, 6000))))
        elif roll < 0.85:
            hold_id = f"x{n}"
            steps.append(
                hold(hold_id, rng.choice(customers), "llm_tokens", str(rng.randint(1, 5000)))
            )
            pending.append(hold_id)
        else:
            body = {"id": f"x{n}", "customer": rng.choice(customers), "meter": "llm_tokens"}
            steps.append(("event", {**body, "quantity": str(rng.randint(1, 3000))}))

    took_holds, took_events = same_both_ways(
        api, settings, clock, in_database, reserved_in_database, steps
    )

    answers, _ = run(api, settings, clock, steps, on=True)
    made = {step[1]["id"] for step, status, _ in answers if step[0] == "hold" and status == 201}
    assert set(took_holds) == made  # every hold the wallet covered
    captured = {step[1] for step, status, _ in answers if step[0] == "capture" and status == 200}
    assert len(set(took_events) & captured) > 5


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
