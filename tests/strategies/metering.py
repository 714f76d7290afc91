"""Strategies for metering scenarios, as the API takes them: a plan version's prices over a
fixed set of meters, customers with their wallets' grants, and sequences of events, batches,
holds, captures, voids, grants and waits.

A scenario is plain data (dicts and tuples of JSON-ish values), so one example can be built
and sent any number of times. Amounts are drawn on a logarithmic scale (a number of digits,
then a value below 10 to that power) so that charges, grants and allowances meet: some events
are paid in full, some in part, some declined.

Steps, in order:

- ``("event", body)``: ``POST /api/v1/events``;
- ``("batch", [body, ...])``: ``POST /api/v1/events/batch``;
- ``("wait", seconds)``: the clock moves on;
- ``("hold", body)``: ``POST /api/v1/holds``;
- ``("capture", hold_id, body)``: ``POST /api/v1/holds/{hold_id}/capture``;
- ``("void", hold_id)``: ``POST /api/v1/holds/{hold_id}/void``;
- ``("grant", customer, asset, amount, fields)``: a grant made between two requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from plans.pricing import price_spec_parse
from tests.strategies.pricing import decimals, near_bounds, spec_data, text

# code → (unit, aggregation); a count meter charges 1 per event whatever its quantity
METERS: dict[str, tuple[str, str]] = {
    "llm_tokens": ("tokens", "sum"),
    "gpu": ("seconds", "sum"),
    "calls": ("requests", "count"),
}
CURRENCY = "USD"
CREDITS = "credits"  # a custom asset, its decimals drawn per scenario, 1 credit = 0.01 USD
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)  # the clock the scenarios start at
# subscription starts: the first day of the month, later (earlier events are refused), and
# one period back ending minutes after NOW (later events fall in the next period)
STARTS = ("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z", "2025-12-10T12:02:00Z")
EARLIEST = datetime(2026, 1, 1, tzinfo=UTC)
FILTERS: tuple[dict[str, str], ...] = ({}, {"model": "m1"}, {"model": "m1", "region": "eu"})
PROPERTIES: tuple[dict[str, str], ...] = (
    *FILTERS,
    {"model": "m2"},
    {"model": "m1", "region": "us"},
)
EXPIRIES = (None, "2026-01-10T12:00:30Z", "2026-01-10T13:00:00Z", "2026-01-20T00:00:00Z")
LATE_EXPIRIES = (None, "2026-03-01T00:00:00Z")
WAITS = (30, 600, 3600, 3 * 86400)  # seconds
# the models the database functions rate; volume is rated periodically, in Python
DATABASE_MODELS = ("per_unit", "package", "graduated")
PRICE_MODELS = (*DATABASE_MODELS, *DATABASE_MODELS, "volume")


def rarely(draw: st.DrawFn) -> bool:
    """True about one time in eight: three coin flips all heads (one draw from a range would
    not do: Hypothesis favours the ends of a range)."""
    return all([draw(st.booleans()) for _ in range(3)])


def scaled(*, max_digits: int, positive: bool = False, max_places: int = 12):
    """A decimal below 10^d for a d drawn up to ``max_digits``: small and large alike."""
    low = 1 if positive else 0  # a positive decimal has a digit before any places
    return st.integers(low, max_digits).flatmap(
        lambda digits: decimals(max_digits=digits, positive=positive, max_places=max_places)
    )


money_per_unit = scaled(max_digits=2, positive=True)  # below 100, down to 10^-12


@st.composite
def price_data(draw: st.DrawFn, meter: str, price_filter: dict[str, str]) -> dict[str, Any]:
    """One price of ``meter``: a model, an allowance (the meter's unit has 0 decimals), an
    asset (the currency, the custom asset or the meter's own unit) and a filter."""
    unit, _ = METERS[meter]
    body: dict[str, Any] = {
        "meter": meter,
        **draw(spec_data(models=PRICE_MODELS, price=money_per_unit)),
        "asset": draw(st.sampled_from((CURRENCY, CURRENCY, CREDITS, unit))),
    }
    if price_filter:
        body["filter"] = price_filter
    if draw(st.booleans()):
        body["included"] = text(draw(scaled(max_digits=5, max_places=0)))
    return body


@st.composite
def plan_prices(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A plan version's prices: per meter none (units only), one or two with distinct
    filters (the most specific matching one prices an event)."""
    prices: list[dict[str, Any]] = []
    for meter in METERS:
        filters = draw(st.lists(st.sampled_from(FILTERS), max_size=2, unique_by=repr))
        prices += [draw(price_data(meter, f)) for f in filters]
    return prices


def places_of(asset: str, credits_decimals: int) -> int:
    if asset == CURRENCY:
        return 2
    return credits_decimals if asset == CREDITS else 0


@st.composite
def grant_data(
    draw: st.DrawFn, grant_id: str, credits_decimals: int, expiries: tuple = EXPIRIES
) -> dict[str, Any]:
    """A grant as the API takes it (``asset`` and ``amount`` among the fields): an asset, an
    amount within its decimals, a purpose, a priority (ties likely), an expiry (some within
    the first minute or hour) and the meters it may pay for (None: every meter)."""
    units = sorted({unit for unit, _ in METERS.values()})
    asset = draw(st.sampled_from((CURRENCY, CURRENCY, CREDITS, *units)))
    amount = draw(
        scaled(max_digits=4, positive=True, max_places=places_of(asset, credits_decimals))
    )
    return {
        "id": grant_id,
        "asset": asset,
        "amount": text(amount),
        "purpose": draw(st.sampled_from(("paid", "promotional"))),
        "priority": draw(st.sampled_from((0, 10, 10, 20))),
        "expires_at": draw(st.sampled_from(expiries)),
        "meters": draw(
            st.none() | st.lists(st.sampled_from(sorted(METERS)), min_size=1, unique=True)
        ),
    }


@dataclass(frozen=True)
class Customer:
    external_id: str
    overage: str  # "wallet" (prepaid) or "invoice" (postpaid)
    start: str
    grants: tuple[dict[str, Any], ...]


@st.composite
def customers(draw: st.DrawFn, credits_decimals: int) -> tuple[Customer, ...]:
    count = draw(st.integers(1, 3))
    made = []
    for i in range(count):
        external_id = f"c{i}"
        grants = [
            draw(grant_data(f"{external_id}-g{n}", credits_decimals))
            for n in range(draw(st.integers(0, 4)))
        ]
        made.append(
            Customer(
                external_id=external_id,
                overage=draw(st.sampled_from(("wallet", "invoice"))),
                start=draw(st.sampled_from(STARTS)),
                grants=tuple(grants),
            )
        )
    return tuple(made)


@dataclass(frozen=True)
class Setup:
    """What a scenario starts from: the custom asset's decimals, the plan's prices and the
    customers subscribed to it."""

    credits_decimals: int
    prices: tuple[dict[str, Any], ...]
    customers: tuple[Customer, ...]


@st.composite
def setups(draw: st.DrawFn) -> Setup:
    credits_decimals = draw(st.sampled_from((0, 2)))
    return Setup(
        credits_decimals=credits_decimals,
        prices=tuple(draw(plan_prices())),
        customers=draw(customers(credits_decimals)),
    )


@st.composite
def quantity_of(draw: st.DrawFn, setup: Setup, meter: str) -> str | int | None:
    """An event's quantity: left out (1), 0, an integer, a decimal with up to 12 places on a
    logarithmic scale, or on or beside a tier bound or package multiple of a price."""
    kind = draw(st.sampled_from(("scaled", "scaled", "scaled", "near", "omitted", "int")))
    if kind == "omitted":
        return None
    if kind == "int":
        return draw(st.integers(0, 100_000))
    specs = [price_spec_parse(p) for p in setup.prices if p["meter"] == meter]
    if kind == "near" and specs:
        return text(draw(near_bounds(draw(st.sampled_from(specs)))))
    return text(draw(scaled(max_digits=7)))


@st.composite
def timestamps(draw: st.DrawFn) -> str | None:
    """Left out (the time of receipt), or from the first of the month to five minutes past
    the scenarios' start (some in the future, some before a subscription starts)."""
    if draw(st.booleans()):
        return None
    seconds = draw(st.integers(0, int((NOW - EARLIEST).total_seconds()) + 300))
    return (EARLIEST + timedelta(seconds=seconds)).isoformat()


@st.composite
def usage_body(draw: st.DrawFn, setup: Setup, usage_id: str) -> dict[str, Any]:
    """An event (or a hold) of a customer and meter of the scenario, now and then of an
    unknown one."""
    customer = "nobody" if rarely(draw) else draw(st.sampled_from(setup.customers)).external_id
    meter = "unknown" if rarely(draw) else draw(st.sampled_from(sorted(METERS)))
    body: dict[str, Any] = {"id": usage_id, "customer": customer, "meter": meter}
    quantity = draw(quantity_of(setup, meter))
    if quantity is not None:
        body["quantity"] = quantity
    timestamp = draw(timestamps())
    if timestamp is not None:
        body["timestamp"] = timestamp
    properties = draw(st.sampled_from(PROPERTIES))
    if properties:
        body["properties"] = properties
    return body


@st.composite
def event_body(draw: st.DrawFn, setup: Setup, sent: list[dict[str, Any]]) -> dict[str, Any]:
    """A new event, or one sent before: a replay (the same body) or its id with another body
    (a conflict)."""
    if not sent or not rarely(draw):
        body = draw(usage_body(setup, f"e{len(sent)}"))
    elif draw(st.booleans()):
        body = draw(st.sampled_from(sent))
    else:
        body = draw(usage_body(setup, draw(st.sampled_from(sent))["id"]))
    sent.append(body)
    return body


@st.composite
def event_steps(draw: st.DrawFn, setup: Setup, *, max_steps: int = 14) -> list[tuple]:
    """Events one by one, batches of two to five (replays and conflicts within one too) and
    waits."""
    sent: list[dict[str, Any]] = []
    steps: list[tuple] = []
    for _ in range(draw(st.integers(3, max_steps))):
        kind = draw(st.sampled_from(("event",) * 6 + ("batch", "batch", "wait")))
        if kind == "event":
            steps.append(("event", draw(event_body(setup, sent))))
        elif kind == "batch":
            size = draw(st.integers(2, 5))
            steps.append(("batch", [draw(event_body(setup, sent)) for _ in range(size)]))
        else:
            steps.append(("wait", draw(st.sampled_from(WAITS))))
    return steps


@st.composite
def hold_steps(draw: st.DrawFn, setup: Setup, *, max_steps: int = 14) -> list[tuple]:
    """Holds (replays and reused ids too, some expiring within a minute), captures of less,
    as much as or more than held (of unknown, voided, captured or expired holds too; some
    under their own event id), voids, events, batches, grants made meanwhile and waits."""
    holds: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    steps: list[tuple] = []
    kinds = ("hold",) * 4 + ("capture",) * 3 + ("void", "event", "batch", "grant", "wait")
    for n in range(draw(st.integers(3, max_steps))):
        kind = draw(st.sampled_from(kinds))
        if kind in ("capture", "void") and not holds:
            kind = "hold"
        if kind == "hold":
            reuse = holds and rarely(draw)
            if reuse and draw(st.booleans()):
                body = draw(st.sampled_from(holds))
            else:
                hold_id = draw(st.sampled_from(holds))["id"] if reuse else f"h{n}"
                body = draw(usage_body(setup, hold_id))
                body.pop("timestamp", None)  # a hold is for usage about to happen
                if draw(st.booleans()):
                    body["expires_in"] = draw(st.sampled_from((60, 600, 86400)))
            holds.append(body)
            steps.append(("hold", body))
        elif kind == "capture":
            hold_id = "unknown-hold" if rarely(draw) else draw(st.sampled_from(holds))["id"]
            capture: dict[str, Any] = {"quantity": text(draw(scaled(max_digits=6)))}
            if draw(st.booleans()):
                capture["event_id"] = draw(st.sampled_from((f"{hold_id}-call", "e0")))
            steps.append(("capture", hold_id, capture))
        elif kind == "void":
            steps.append(("void", draw(st.sampled_from(holds))["id"]))
        elif kind == "event":
            steps.append(("event", draw(event_body(setup, sent))))
        elif kind == "batch":
            size = draw(st.integers(2, 4))
            steps.append(("batch", [draw(event_body(setup, sent)) for _ in range(size)]))
        elif kind == "grant":
            customer = draw(st.sampled_from(setup.customers))
            # after a wait too: an expiry past the longest run of waits
            fields = draw(grant_data(f"late-g{n}", setup.credits_decimals, LATE_EXPIRIES))
            asset, amount = fields.pop("asset"), fields.pop("amount")
            steps.append(("grant", customer.external_id, asset, amount, fields))
        else:
            steps.append(("wait", draw(st.sampled_from(WAITS))))
    return steps


@st.composite
def scenarios(draw: st.DrawFn, steps) -> tuple[Setup, list[tuple]]:
    """A setup and a sequence of ``steps(setup)`` over it."""
    setup = draw(setups())
    return setup, draw(steps(setup))
