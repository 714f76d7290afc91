"""The database function that charges the common event (``billfold_event_charge``,
``billing/sql/event_charge.sql``) against the Python path it stands in for, which stays the
reference.

Each scenario sets up plans, customers and grants once, then sends the same events twice in
a savepoint that is rolled back after each run: once with ``CHARGE_IN_DATABASE`` on, once
off. Every answer (status and body) and every row the events wrote — events, ledger
transactions and entries, grants, balances, counters — must be the same, and the function
must have charged the events it is meant for (the rest it hands back unwritten)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.db import transaction

from billing.models import UsageCounter, UsageEvent
from tests.wallets.helpers import ensure_currencies
from wallets.models import Account, Grant, LedgerEntry

from .scenario import grant, setup_customer, setup_meter, setup_plan

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _currencies(db):
    ensure_currencies()


def state() -> dict:
    """Everything the events wrote, without the ids sequences hand out."""
    entries: dict[str, list] = {}
    for entry in LedgerEntry.objects.select_related("transaction", "account"):
        txn = entry.transaction
        entries.setdefault(txn.reference, []).append(
            (
                txn.kind,
                txn.description,
                tuple(sorted(txn.metadata.items())),
                txn.created_at,
                entry.account.wallet_id,
                entry.account.system_code,
                entry.asset_id,
                entry.grant_id,
                entry.amount,
            )
        )
    return {
        "events": sorted(
            UsageEvent.objects.values_list(
                "event_id",
                "status",
                "decline_code",
                "quantity",
                "included",
                "billable",
                "amount",
                "asset_id",
                "accrued",
                "price_id",
                "period_start",
                "request_hash",
                "response",
                "received_at",
                "ledger_transaction__reference",
            )
        ),
        "entries": {ref: sorted(rows, key=repr) for ref, rows in entries.items()},
        "grants": sorted(Grant.objects.values_list("id", "remaining", "held", "status")),
        "accounts": sorted(
            Account.objects.filter(wallet__isnull=False).values_list(
                "wallet_id", "asset_id", "posted", "held", "debt"
            )
        ),
        "counters": sorted(
            UsageCounter.objects.values_list(
                "subscription_id",
                "period_start",
                "price_id",
                "quantity",
                "included",
                "billable",
                "amount",
                "accrued",
                "events",
            )
        ),
    }


def run(api, settings, events: list[dict], *, on: bool) -> tuple[list, dict]:
    settings.CHARGE_IN_DATABASE = on
    savepoint = transaction.savepoint()
    try:
        answers = []
        for body in events:
            r = api.post("/api/v1/events", body, format="json")
            answers.append((body["id"], r.status_code, r.json()))
        return answers, state()
    finally:
        transaction.savepoint_rollback(savepoint)


def same_both_ways(api, settings, in_database, events: list[dict]) -> list[str]:
    """The events' answers and writes, with the function and without; returns the ids the
    function charged."""
    with_function, written_with = run(api, settings, events, on=True)
    charged = list(in_database)
    in_database.clear()
    without, written_without = run(api, settings, events, on=False)
    assert not in_database
    for (event_id, *answer), (_, *reference) in zip(with_function, without, strict=True):
        assert answer == reference, event_id
    for table in written_without:
        assert written_with[table] == written_without[table], table
    return charged


def token_customer_with_bonus_and_two_usd_grants(api) -> None:
    """Customer acme on tokens at 0.000002 USD with 5,000 included; a bonus of 2,000 tokens
    (priority 20) and two USD grants of priority 10, the smaller one expiring first."""
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(
        api,
        "pro",
        [
            {
                "meter": "llm_tokens",
                "model": "per_unit",
                "unit_price": "0.000002",
                "included": "5000",
            }
        ],
    )
    setup_customer(api, "acme", plan="pro")
    grant(api, "acme", "tokens", "2000", id="bonus", purpose="promotional", priority=20)
    grant(api, "acme", "USD", "0.05", id="late-usd", priority=10)
    grant(api, "acme", "USD", "0.02", id="soon-usd", priority=10, expires_at="2026-01-20T00:00:00Z")


def postpaid_gpu_customer(api) -> None:
    """Customer acme, postpaid, on GPU seconds priced in graduated tiers with flat fees."""
    setup_meter(api, "gpu", "seconds")
    setup_plan(
        api,
        "gpu",
        [
            {
                "meter": "gpu",
                "model": "graduated",
                "tiers": [
                    {"up_to": "10", "unit_price": "0.10", "flat_fee": "1.00"},
                    {"up_to": "100", "unit_price": "0.05", "flat_fee": "0.50"},
                    {"up_to": None, "unit_price": "0.001"},
                ],
            }
        ],
    )
    setup_customer(api, "acme", plan="gpu", overage="invoice")


def ev(event_id: str, customer: str, meter: str, quantity=None, **properties) -> dict:
    body = {"id": event_id, "customer": customer, "meter": meter}
    if quantity is not None:
        body["quantity"] = quantity
    if properties:
        body["properties"] = properties
    return body


def test_tokens_with_an_allowance_bonus_units_and_money_grants_then_a_decline(
    api, settings, clock, in_database
):
    """Units from the meter's allowance first, then an unscoped bonus of tokens; the money
    from two USD grants in burn-down order (priority, then expiry); a decline at the end,
    which the function hands back; a replay and a reused id."""
    token_customer_with_bonus_and_two_usd_grants(api)
    quantities = ["3000", "3000", "2500", "10000", "1", "0.5", "20000", "30000", "90000"]
    events = [ev(f"t{i}", "acme", "llm_tokens", q, model="m1") for i, q in enumerate(quantities)]
    events += [ev("t0", "acme", "llm_tokens", "3000", model="m1")]  # a replay
    events += [ev("t1", "acme", "llm_tokens", "7")]  # the id again, another body: 409

    charged = same_both_ways(api, settings, in_database, events)

    # t0 and t2 make the revenue accounts of tokens and USD (the Python path makes accounts);
    # t7 and t8 are declined (the Python path words and records it); the replay and the 409
    # never reach a charge
    assert charged == ["t1", "t3", "t4", "t5", "t6"]
    assert [status for _, status, _ in run(api, settings, events, on=True)[0]] == [
        *[201] * 7,
        402,
        402,
        201,
        409,
    ]


def test_graduated_tiers_with_flat_fees_accruing_to_the_invoice(api, settings, clock, in_database):
    """Tier boundaries crossed inside one event and from one event to the next, flat fees on
    entering a tier, a small wallet paying first and the rest accruing (postpaid)."""
    postpaid_gpu_customer(api)
    grant(api, "acme", "USD", "1.60", id="small")
    events = [
        ev(f"g{i}", "acme", "gpu", q) for i, q in enumerate(["4", "7", "50", "100", "3", "0.25"])
    ]

    charged = same_both_ways(api, settings, in_database, events)

    assert charged == ["g1", "g2", "g3", "g4", "g5"]  # g0 makes the USD revenue account


def test_package_prices_in_a_custom_asset_and_a_price_in_the_meters_own_unit(
    api, settings, clock, in_database
):
    api.post(
        "/api/v1/assets",
        {"code": "credits", "name": "Credits", "decimals": 0, "rates": []},
        format="json",
    )
    setup_meter(api, "llm_tokens", "tokens")
    setup_meter(api, "spend", "credits")
    setup_plan(
        api,
        "packs",
        [
            {
                "meter": "llm_tokens",
                "model": "package",
                "package_size": "1000",
                "package_price": "3",
                "asset": "credits",
            },
            {"meter": "spend", "model": "per_unit", "unit_price": "1", "asset": "credits"},
        ],
    )
    setup_customer(api, "acme", plan="packs")
    grant(api, "acme", "credits", "40", id="c1", priority=1)
    grant(api, "acme", "credits", "20", id="c2", priority=2)
    events = [
        ev("p0", "acme", "llm_tokens", "1500"),
        ev("p1", "acme", "llm_tokens", "499"),
        ev("p2", "acme", "llm_tokens", "1"),
        ev("p3", "acme", "spend", "7"),
        ev("p4", "acme", "llm_tokens", "7000"),
        ev("p5", "acme", "spend", "30"),  # 34 of 60 credits spent: declined
        ev("p6", "acme", "spend", "26"),
    ]

    charged = same_both_ways(api, settings, in_database, events)

    assert charged == ["p1", "p2", "p3", "p4", "p6"]  # p0 makes the credits revenue account


def test_a_count_meter_and_a_meter_without_a_price(api, settings, clock, in_database):
    setup_meter(api, "requests", "requests", "count")
    setup_meter(api, "embeddings", "tokens")
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(
        api,
        "mixed",
        [
            {"meter": "requests", "model": "per_unit", "unit_price": "0.25"},
            {"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.001"},
        ],
    )
    setup_customer(api, "acme", plan="mixed")
    grant(api, "acme", "USD", "10.00", id="usd")
    grant(api, "acme", "tokens", "500", id="tok")
    events = [
        ev("r0", "acme", "requests", "5"),  # a count meter counts the event, not 5
        ev("r1", "acme", "requests"),
        ev("e0", "acme", "embeddings", "200"),  # units only: no price for this meter
        ev("e1", "acme", "embeddings", "250"),
        ev("e2", "acme", "embeddings", "100"),  # more than is left: no price to pay the rest
        ev("l0", "acme", "llm_tokens", "120"),
    ]

    charged = same_both_ways(api, settings, in_database, events)

    assert charged == ["r1", "e1", "e2", "l0"]  # r0 and e0 make revenue accounts


def test_random_events_over_several_customers_agree(api, settings, clock, in_database):
    """A seeded mix: customers with and without allowances and money, a graduated price,
    postpaid and prepaid, quantities from tiny to large."""
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(
        api,
        "mix",
        [
            {
                "meter": "llm_tokens",
                "model": "graduated",
                "included": "1000",
                "tiers": [
                    {"up_to": "5000", "unit_price": "0.0003"},
                    {"up_to": None, "unit_price": "0.0001", "flat_fee": "0.10"},
                ],
            }
        ],
    )
    rng = random.Random(20261127)
    customers = [f"cust{i}" for i in range(5)]
    for i, customer in enumerate(customers):
        setup_customer(api, customer, plan="mix", overage="invoice" if i % 2 else "wallet")
        if i != 4:
            grant(api, customer, "USD", str(D(rng.randint(0, 300)) / 100), id=f"{customer}-usd")
        if i == 1:
            grant(api, customer, "tokens", "2500", id=f"{customer}-tok")
    events = [
        ev(
            f"x{n}",
            rng.choice(customers),
            "llm_tokens",
            str(D(rng.randint(1, 400000)) / rng.choice([1, 10, 1000])),
        )
        for n in range(60)
    ]

    answers, _ = run(api, settings, events, on=True)
    accepted = {event_id for event_id, status, _ in answers if status == 201}
    in_database.clear()

    charged = same_both_ways(api, settings, in_database, events)

    # all but the first, which made the revenue accounts of tokens and USD (the wallets'
    # own tokens and USD accounts the function makes)
    assert set(charged) <= accepted
    assert accepted - set(charged) == {"x0"}
    assert len(charged) > 20
