"""The database function that charges the common event (``billfold_event_charge``,
``billing/sql/event_charge.sql``) against the Python path it stands in for, which stays the
reference.

Each scenario sets up plans, customers and grants once, then sends the same events twice in
a savepoint that is rolled back after each run: once with ``CHARGE_IN_DATABASE`` on, once
off. Every answer (status and body) and every row the events wrote — events, ledger
transactions and entries, grants, balances, counters — must be the same, and the function
must have charged the events it is meant for (the rest it hands back unwritten).

Besides the hand-written scenarios, Hypothesis draws whole ones (``tests.strategies.metering``):
a plan's prices, customers and their grants, then events one by one and in batches, replays,
conflicts and waits; each example is set up in a savepoint of its own, rolled back after it."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pprint import pformat

import hypothesis
import pytest
from django.db import transaction
from django.db.models.functions import Coalesce

from billing.models import UsageCounter, UsageEvent
from tests.billing.conftest import METERING_NOW
from tests.billing.scenario import grant, setup_customer, setup_meter, setup_plan
from tests.strategies.metering import CREDITS, METERS, Setup, event_steps, scenarios
from tests.wallets.helpers import ensure_currencies
from wallets.models import Account, Grant, LedgerEntry

D = Decimal
pytestmark = pytest.mark.django_db

# deterministic (the same examples on every run), bounded, and no deadline: an example sets
# up a whole scenario and sends its requests twice
EXAMPLES = hypothesis.settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def _currencies(db):
    ensure_currencies()


def grant_names() -> dict[str, str]:
    """Each grant's id → its source, or its id when it has none."""
    return dict(Grant.objects.values_list("id", Coalesce("source", "id")))


def state() -> dict:
    """Everything the events wrote, without the ids sequences hand out; a grant is named by
    its source when it has one (an allowance a run issued gets a new id each time)."""
    names = grant_names()
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
                names.get(entry.grant_id),
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
        "grants": sorted(
            (names[grant_id], *rest)
            for grant_id, *rest in Grant.objects.values_list(
                "id", "remaining", "held", "status", "expires_at", "meters"
            )
        ),
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


def run(api, settings, steps: list, *, on: bool, clock=None) -> tuple[list, dict]:
    """Send the steps — an event's body, or ``("event", body)``, ``("batch", bodies)``,
    ``("wait", seconds)`` — and read what they wrote, in a savepoint rolled back after."""
    settings.CHARGE_IN_DATABASE = on
    savepoint = transaction.savepoint()
    try:
        answers = []
        for step in steps:
            kind, body = ("event", step) if isinstance(step, dict) else step
            if kind == "wait":
                clock.shift(body)
                continue
            if kind == "batch":
                r = api.post("/api/v1/events/batch", {"events": body}, format="json")
                answers.append(([b.get("id") for b in body], r.status_code, r.json()))
            else:
                r = api.post("/api/v1/events", body, format="json")
                answers.append((body["id"], r.status_code, r.json()))
        return answers, state()
    finally:
        transaction.savepoint_rollback(savepoint)
        if clock is not None:
            clock.move_to(METERING_NOW)


def both_ways(api, settings, in_database, steps: list, clock=None) -> tuple[list[str], list]:
    """The steps' answers and writes, with the function and without, the same; returns the
    ids the function charged and the answers."""
    with_function, written_with = run(api, settings, steps, on=True, clock=clock)
    charged = list(in_database)
    in_database.clear()
    without, written_without = run(api, settings, steps, on=False, clock=clock)
    assert not in_database
    for (event_id, *answer), (_, *reference) in zip(with_function, without, strict=True):
        assert answer == reference, event_id
    for table in written_without:
        assert written_with[table] == written_without[table], table
    return charged, with_function


def same_both_ways(api, settings, in_database, events: list[dict]) -> list[str]:
    """The events' answers and writes, with the function and without; returns the ids the
    function charged."""
    return both_ways(api, settings, in_database, events)[0]


def build(api, setup: Setup) -> None:
    """A drawn setup over the API: the custom asset, the meters, the plan, the customers
    subscribed to it and their grants."""
    r = api.post(
        "/api/v1/assets",
        {
            "code": CREDITS,
            "name": "Credits",
            "decimals": setup.credits_decimals,
            "rates": [{"currency": "USD", "rate": "0.01"}],
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    for code, (unit, aggregation) in METERS.items():
        setup_meter(api, code, unit, aggregation)
    setup_plan(api, "drawn", list(setup.prices))
    for customer in setup.customers:
        setup_customer(
            api, customer.external_id, plan="drawn", overage=customer.overage, start=customer.start
        )
        for fields in customer.grants:
            fields = dict(fields)
            grant(api, customer.external_id, fields.pop("asset"), fields.pop("amount"), **fields)


def outcomes(answers: list) -> list[str]:
    """Each event's outcome: its status and decline or error code, ``batch`` before those
    in a batch."""
    named = []
    for key, status, body in answers:
        if isinstance(key, list) and status == 200:
            named += [f"batch {r['status']} {r.get('code') or ''}" for r in body["results"]]
        else:
            named.append(f"{status} {body.get('code') or body.get('decline_code') or ''}")
    return named


def accepted_ids(answers: list) -> set[str]:
    """The ids of the events accepted one by one (the function charges no batch)."""
    return {key for key, status, _ in answers if isinstance(key, str) and status == 201}


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


def test_drawn_plans_grants_and_event_sequences_agree(api, settings, clock, in_database):
    """Drawn scenarios (``tests.strategies.metering``): real-time prices of every model the
    function rates and volume prices it leaves to Python, allowances, filters, custom assets;
    wallets of grants in several assets with priorities, expiries and meters; events one by
    one and in batches, replays, conflicts, unknown customers and meters, late and future
    timestamps, waits. Every answer and row must agree; the function charges only events
    that were accepted, and across the examples charges many."""
    charged_in_all: list[str] = []
    seen: Counter[str] = Counter()

    @EXAMPLES
    @hypothesis.given(scenario=scenarios(event_steps))
    def agree(scenario: tuple[Setup, list]) -> None:
        hypothesis.note(pformat(scenario, width=100))  # shown for a failing example
        setup, steps = scenario
        example = transaction.savepoint()
        try:
            build(api, setup)
            in_database.clear()
            charged, answers = both_ways(api, settings, in_database, steps, clock=clock)
            assert set(charged) <= accepted_ids(answers)
            charged_in_all.extend(charged)
            seen.update(outcomes(answers))
        finally:
            transaction.savepoint_rollback(example)

    agree()
    # the examples reach the function and the outcomes around it
    assert len(charged_in_all) > 20, seen
    assert {"201 ", "batch accepted "} <= set(seen), seen
    assert {"402 insufficient_funds", "batch declined insufficient_funds"} & set(seen), seen
