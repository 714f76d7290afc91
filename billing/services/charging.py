"""Charging one usage event (docs/charging.md), in one database transaction with its insert:

1. units first: draw the quantity from the wallet's grants in the meter's unit (the meter's
   allowance first); what they cover is *included*, the rest *billable*;
2. price the billable part over the period's cumulative billable quantity (a counter per
   subscription, period and price, updated in the same transaction);
3. pay from the wallet's grants in the price's asset, in burn-down order;
4. a shortfall accrues to the period's invoice for postpaid (``invoice``) subscriptions in
   the billing currency; otherwise the event is declined and nothing changes;
5. a hard spend limit declines what would take the window's spend above it.

The service first decides, holding the locks of the wallet accounts it touches (reads only),
then writes. A declined event is recorded with its code and charges nothing. The integrator's
event id makes it idempotent: a replay returns the stored response; the same id with another
body is an ``IdempotencyConflict``; concurrent duplicates are charged once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DataError, connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg.types.json import Jsonb

from billing.models import Invoice, Subscription, UsageCounter, UsageEvent
from billing.selectors.prices import CachedPrice, price_for_event
from billing.services import spend as spend_service
from billing.services.api_keys import api_key_touch
from billing.services.periodic_bounds import PeriodicCounters, periodic_prices
from billing.services.spend import SpendLimitExceeded
from core.db import (
    JSONB_ARRAY,
    columns,
    hot_cursor,
    hot_pipeline,
    instances,
    int_array,
    json_array,
    numeric_texts,
    rows_as,
    text_array,
)
from core.errors import (
    AmountTooLarge,
    BillfoldError,
    Declined,
    IdempotencyConflict,
    NotFound,
    ValidationFailed,
)
from plans.models import Meter
from plans.periods import period_containing
from plans.pricing import (
    GRADUATED,
    PACKAGE,
    PER_UNIT,
    increment_amount,
    rated_periodically,
    round_half_up,
)
from wallets.errors import InsufficientFunds, NegativeBalance
from wallets.models import Account, Grant, Hold, LedgerTransaction
from wallets.services import (
    Funding,
    Leg,
    accounts_lock,
    holds_release_expired,
    ledger_grant,
    request_hash,
    system_account,
)
from wallets.services.amounts import MAX_AMOUNT
from wallets.services.draws import (
    DrawableGrant,
    drawable_grants,
    eligible_grants_by_asset,
    eligible_where,
    in_burn_down_order,
    is_eligible,
    plan_draw,
)
from wallets.services.ledger import (
    ACCOUNTS_LOCK_SQL,
    Posting,
    ledger_post_many,
    posting,
    txn_ids_draw,
)

ZERO = Decimal(0)
PROPERTIES_MAX_CHARS = 16 * 1024  # as a customer's metadata
LIVE = ("trialing", "active", "canceled")


class Unprocessable(BillfoldError):
    status = 422
    title = "The event cannot be processed"


class UnknownCustomer(Unprocessable):
    code = "unknown_customer"


class UnknownMeter(Unprocessable):
    code = "unknown_meter"


class NoActiveSubscription(Unprocessable):
    code = "no_active_subscription"


class PeriodClosed(Unprocessable):
    code = "period_closed"


class InvalidTimestamp(Unprocessable):
    code = "invalid_timestamp"


class _Duplicate(Exception):
    """A concurrent request with the same event id committed first."""


@dataclass(frozen=True)
class EventData:
    id: str
    customer: str
    meter: str
    quantity: Decimal
    timestamp: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    # False when the sender left the timestamp out (it defaulted to the time of receipt):
    # a retry of that body is the same request, so the default time is not part of its hash
    timestamp_given: bool = True

    def hash(self) -> str:
        return request_hash(
            {
                "id": self.id,
                "customer": self.customer,
                "meter": self.meter,
                "quantity": self.quantity,
                "timestamp": self.timestamp.isoformat() if self.timestamp_given else None,
                "properties": self.properties,
            }
        )


@dataclass
class Outcome:
    """What the API answers: ``status_code`` and ``body`` (the stored response)."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False
    event: UsageEvent | None = None
    txn_id: int | None = None  # the ledger transaction an accepted charge posted

    @property
    def accepted(self) -> bool:
        return self.status_code == 201 or self.body.get("status") == "accepted"


@dataclass(frozen=True)
class Context:
    customer_id: int
    external_id: str
    wallet_id: int
    currency: str
    subscription_id: int
    version_id: int
    started_at: datetime
    interval: str
    overage: str
    current_period_start: datetime
    current_period_end: datetime
    status: str
    anchor: datetime
    meter_id: int
    meter_code: str
    unit: str
    aggregation: str
    unit_is_currency: bool
    unit_decimals: int = 0
    has_limit: bool = False  # a spend limit exists (else spend is not counted per event)
    revenue: dict[str, int] = field(default_factory=dict)  # asset → revenue account id


RESOLVE_SQL = """
SELECT c.id, c.external_id, c.wallet_id, c.currency_id,
       s.id, s.plan_version_id, s.started_at, v.interval, s.overage,
       s.current_period_start, s.current_period_end, s.status,
       COALESCE(s.billing_anchor, s.started_at),
       m.id, m.code, m.unit_id, m.aggregation, ua.kind, ua.decimals,
       EXISTS (SELECT 1 FROM billing_spendlimit l WHERE l.customer_id = c.id),
       e.request_hash, e.response, e.status,
       ARRAY(SELECT r.asset_id FROM wallets_account r WHERE r.system_code = 'revenue'
             ORDER BY r.asset_id),
       ARRAY(SELECT r.id FROM wallets_account r WHERE r.system_code = 'revenue'
             ORDER BY r.asset_id)
FROM (SELECT 1) AS one
LEFT JOIN billing_customer c ON c.external_id = %s
LEFT JOIN billing_subscription s
       ON s.customer_id = c.id AND s.status IN ('trialing', 'active', 'canceled')
LEFT JOIN plans_planversion v ON v.id = s.plan_version_id
LEFT JOIN plans_meter m ON m.code = %s
LEFT JOIN wallets_asset ua ON ua.code = m.unit_id
LEFT JOIN billing_usageevent e ON e.event_id = %s
"""


# the same, with the caller's API key (by its hash) checked in the same query
RESOLVE_KEYED_SQL = (
    RESOLVE_SQL.replace(
        "FROM (SELECT 1) AS one", ", k.id, k.scopes, k.last_used_at\nFROM (SELECT 1) AS one"
    )
    + "LEFT JOIN billing_apikey k ON k.key_hash = %s AND k.revoked_at IS NULL\n"
)


class KeyRefused(Exception):
    """The caller's API key is unknown, revoked or lacks the ``events`` scope: nothing was
    written, and nothing read is answered."""


def key_checked(key_id: int | None, scopes: list[str] | None, last_used_at) -> None:
    """The key columns a hot query read with the caller's key (``billing_apikey`` joined by
    its hash, active only): ``KeyRefused`` unless it may send events; a use is recorded."""
    if key_id is None or "events" not in scopes:
        raise KeyRefused()
    api_key_touch(key_id=key_id, last_used_at=last_used_at)


def _lookup(
    data: EventData, *, replay: bool = True, api_key_hash: str | None = None
) -> tuple[Outcome | None, Context | None]:
    """One query: the stored answer if the event id was seen (``replay``), else the context
    of the event (``Unprocessable`` when its customer, meter or subscription is missing).
    With ``api_key_hash``, the same query checks the caller's key first (``KeyRefused``)."""
    params = [data.customer, data.meter, data.id if replay else None]
    # in binary: Django's text loader of timestamptz is Python (~8 µs a value, six here)
    with hot_cursor(binary=True) as cursor:
        if api_key_hash is None:
            cursor.execute(RESOLVE_SQL, params)
        else:
            cursor.execute(RESOLVE_KEYED_SQL, [*params, api_key_hash])
        row = cursor.fetchone()
    if api_key_hash is not None:
        key_checked(*row[25:28])
    if row[20] is not None:
        return _replayed(data, row[20], row[21], row[22]), None
    return None, _context(row, data)


def _context(row, data: EventData) -> Context:
    """The context of ``data`` from a row of ``RESOLVE_SQL``'s first 20 columns."""
    if row[0] is None:
        raise UnknownCustomer(
            f"No customer with external_id '{data.customer}'.",
            errors={"customer": ["Unknown customer."]},
        )
    if row[13] is None:
        raise UnknownMeter(f"No meter '{data.meter}'.", errors={"meter": ["Unknown meter."]})
    if row[4] is None:
        raise NoActiveSubscription(f"{data.customer} has no active subscription.")
    return Context(
        *row[:17],
        unit_is_currency=row[17] == "currency",
        unit_decimals=row[18],
        has_limit=row[19],
        revenue=dict(zip(row[23], row[24], strict=True)),
    )


# the contexts of many (customer, meter) pairs at once (a batch)
RESOLVE_MANY_SQL = (
    RESOLVE_SQL.split("FROM (SELECT 1) AS one")[0]
    .replace("e.request_hash, e.response, e.status", "NULL, NULL, NULL")
    .rstrip()
    + ", p.customer, p.meter\n"
    + """FROM unnest(%b::varchar[], %b::varchar[]) AS p(customer, meter)
LEFT JOIN billing_customer c ON c.external_id = p.customer
LEFT JOIN billing_subscription s
       ON s.customer_id = c.id AND s.status IN ('trialing', 'active', 'canceled')
LEFT JOIN plans_planversion v ON v.id = s.plan_version_id
LEFT JOIN plans_meter m ON m.code = p.meter
LEFT JOIN wallets_asset ua ON ua.code = m.unit_id
"""
)


def _resolve(data: EventData, *, api_key_hash: str | None = None) -> Context:
    _, ctx = _lookup(data, replay=False, api_key_hash=api_key_hash)
    return ctx


def _period(
    ctx: Context, data: EventData, now: datetime, known: dict | None = None
) -> tuple[datetime, datetime]:
    """The event's period, after the checks of its time. ``known``: the last period found
    per series (anchor, interval), kept by a batch; the periods of a series partition time,
    so one that contains the timestamp is the period (the arithmetic is skipped)."""
    tolerance = timedelta(seconds=settings.BILLFOLD["FUTURE_EVENT_TOLERANCE_SECONDS"])
    if data.timestamp > now + tolerance:
        raise InvalidTimestamp(
            "The timestamp is more than 5 minutes in the future.",
            errors={"timestamp": ["At most 5 minutes ahead of the server's clock."]},
        )
    if data.timestamp < ctx.started_at:
        raise NoActiveSubscription(
            f"{data.customer}'s subscription starts {ctx.started_at.isoformat()}, after the event."
        )
    if ctx.status == Subscription.Status.CANCELED and data.timestamp >= ctx.current_period_end:
        raise NoActiveSubscription(f"{data.customer}'s subscription ended.")
    if data.timestamp < ctx.anchor:
        raise PeriodClosed("The event falls in a period billed under an earlier plan interval.")
    if known is None:
        return period_containing(ctx.anchor, ctx.interval, data.timestamp)
    series = (ctx.anchor, ctx.interval)
    period = known.get(series)
    if period is None or not period[0] <= data.timestamp < period[1]:
        period = known[series] = period_containing(ctx.anchor, ctx.interval, data.timestamp)
    return period


def _check_open(ctx: Context, period: tuple[datetime, datetime]) -> None:
    """A period closed by period close stays open for late events until the invoice issued
    at its end is finalized. Runs inside the charge's transaction and holds a share lock on
    that invoice, so a finalization either waits for this event or is seen by it."""
    if period[0] >= ctx.current_period_start:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status FROM billing_invoice WHERE subscription_id = %s AND kind = %s "
            "AND period_start = %s FOR SHARE",
            [ctx.subscription_id, Invoice.Kind.SUBSCRIPTION, period[1]],
        )
        row = cursor.fetchone()
    if row is not None and row[0] != Invoice.Status.DRAFT:
        raise PeriodClosed(
            f"The period {period[0]:%Y-%m-%d} – {period[1]:%Y-%m-%d} is invoiced; "
            "the event can no longer be accepted."
        )


def _money_text(value: Decimal, is_currency: bool, decimals: int) -> str:
    """An amount as an answer shows it: a currency at the ledger's 12 places, another asset
    at its decimals (half-up, as PostgreSQL's ``round`` in the database functions)."""
    return format(round_half_up(value, 12 if is_currency else decimals), "f")


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def event_replay(data: EventData) -> Outcome | None:
    """The stored answer for an event id already seen, or None. A different body with the
    same id is an ``IdempotencyConflict``."""
    row = (
        UsageEvent.objects.filter(event_id=data.id)
        .values("request_hash", "response", "status")
        .first()
    )
    if row is None:
        return None
    return _replayed(data, row["request_hash"], row["response"], row["status"])


def _replayed(data: EventData, stored_hash: str, response: dict | None, status: str) -> Outcome:
    if stored_hash != data.hash():
        raise IdempotencyConflict(
            f"The event id '{data.id}' was already used with a different body.",
            errors={"id": ["Already used with a different body."]},
        )
    if isinstance(response, str):  # jsonb read with a raw cursor arrives as text
        response = json.loads(response)
    response = response or {}
    if status == UsageEvent.Status.DECLINED:
        answer = declined_answer(response)
        answer["event"] = _in_order(answer["event"], EVENT_KEYS)
        return Outcome(status_code=402, body=_in_order(answer, PROBLEM_KEYS), replayed=True)
    return Outcome(status_code=201, body=_in_order(response, EVENT_KEYS), replayed=True)


# The keys of an answer in the order it was first given: jsonb keeps an object's keys in an
# order of its own, so a replay puts them back (an event's properties stay in jsonb's).
PROBLEM_KEYS = ("type", "title", "status", "detail", "code", "errors")
PROBLEM_KEYS += ("asset", "available", "limit", "spent", "held", "currency", "event")
EVENT_KEYS = ("id", "status", "customer", "meter", "quantity", "timestamp", "properties")
EVENT_KEYS += ("charge", "balances", "decline_code", "hold")
CHARGE_KEYS = ("included", "billable", "amount", "asset", "funding", "included_from")
CHARGE_KEYS += ("accrued", "rating")
FUNDING_KEYS = ("grant", "asset", "amount")


def _in_order(body: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    ordered = {key: body[key] for key in keys if key in body}
    ordered.update((key, value) for key, value in body.items() if key not in ordered)
    charge = ordered.get("charge") if keys is EVENT_KEYS else None
    if isinstance(charge, dict):
        charge = ordered["charge"] = _in_order(charge, CHARGE_KEYS)
        for name in ("funding", "included_from"):
            if isinstance(charge.get(name), list):
                charge[name] = [_in_order(f, FUNDING_KEYS) for f in charge[name]]
    return ordered


DECLINES = {cls.code: cls for cls in (InsufficientFunds, NegativeBalance, SpendLimitExceeded)}


def declined_answer(response: dict[str, Any]) -> dict[str, Any]:
    """The stored answer of a declined event: the 402 problem with the event under
    ``event``. A row recorded with the event's body alone gets the problem of its code (its
    detail then is the title)."""
    if "type" in response:
        return response
    declined = DECLINES.get(response.get("decline_code"), Declined)()
    return {**declined_problem(declined), "event": response}


def declined_event(response: dict[str, Any]) -> dict[str, Any]:
    """The event's body in the stored answer of a declined event."""
    return response.get("event", response) if "type" in response else response


@dataclass
class _Charge:
    included: Decimal = ZERO
    billable: Decimal = ZERO
    amount: Decimal = ZERO
    accrued: Decimal = ZERO
    asset: str | None = None
    unit_plan: list[tuple[Grant, Decimal]] = field(default_factory=list)
    money_plan: list[tuple[Grant, Decimal]] = field(default_factory=list)
    price: CachedPrice | None = None
    spend: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class _Totals:
    """A period counter's totals before an event (all zero before its first)."""

    quantity: Decimal = ZERO
    included: Decimal = ZERO
    billable: Decimal = ZERO
    amount: Decimal = ZERO  # paid from the wallet
    accrued: Decimal = ZERO

    def after(self, charge: _Charge) -> _Totals:
        """The totals once ``charge`` is counted (as the counter's upsert adds it)."""
        return _Totals(
            self.quantity + charge.included + charge.billable,
            self.included + charge.included,
            self.billable + charge.billable,
            self.amount + charge.amount - charge.accrued,
            self.accrued + charge.accrued,
        )


NO_TOTALS = _Totals()


def _check_bounds(charge: _Charge, totals: _Totals) -> None:
    """``AmountTooLarge`` when the charge, or its period counter's totals after it, would
    reach 10^18: every amount Billfold records and invoices stays below it, as the API's
    inputs do (a counter of a price near 10^18 would otherwise take an event of 10^8
    units, and the invoice then could not hold its line)."""
    if charge.price is None:
        return  # no price: nothing charged, no counter
    after = totals.after(charge)
    for name, value in (
        ("charge", charge.amount),
        ("quantity", after.quantity),
        ("billable quantity", after.billable),
        ("amount", after.amount + after.accrued),  # what it paid and what accrued
    ):
        if value >= MAX_AMOUNT:
            what = "charge" if name == "charge" else f"period's {name}"
            raise AmountTooLarge(
                f"The event's {what} would be {_plain(value)}: amounts and quantities stay "
                "below 10^18.",
                errors={"quantity": ["Its charge or its period's totals would reach 10^18."]},
            )


def _ensure_allowance(
    ctx: Context, price: CachedPrice, account: Account, start: datetime, end: datetime, now
) -> bool:
    """A period the periodic close has not reached yet still gets its allowance."""
    if price.included <= 0 or start <= ctx.current_period_start or end <= now:
        return False
    source = f"allowance:{ctx.subscription_id}:{price.id}:{start.isoformat()}"
    if Grant.objects.filter(source=source).exists():
        return False
    ledger_grant(
        account=account,
        amount=price.included,
        purpose=Grant.Purpose.ALLOWANCE,
        priority=0,
        expires_at=end,
        meters=[ctx.meter_code],
        reference="allowance",
        source=source,
        now=now,
    )
    return True


class _DatabaseReads:
    """What ``_decide`` reads, read when needed: one event's charge."""

    posts_one_by_one = True  # each posting is written by its own statement

    def load(
        self, ctx: Context, assets: list[str], valid_at: datetime, period, price
    ) -> tuple[dict[str, list[Grant]], _Totals]:
        """The eligible grants of ``assets`` (burn-down order) and the period's counter
        totals so far for ``price``, in one statement (the account locks are held)."""
        if price is None:
            grants = eligible_grants_by_asset(
                wallet_id=ctx.wallet_id, assets=assets, meter=ctx.meter_code, now=valid_at
            )
            return grants, NO_TOTALS
        with hot_cursor() as cursor:
            cursor.execute(
                GRANTS_AND_COUNTER_SQL, _load_params(ctx, assets, valid_at, period, price)
            )
            rows = cursor.fetchall()
        return _loaded(ctx, assets, rows)

    def lock_and_load(
        self,
        ctx: Context,
        assets: list[str],
        valid_at: datetime,
        period,
        price,
        *,
        lock: Iterable[str] = (),
        between: tuple[str, list] | None = None,
    ):
        """Lock the wallet's accounts in ``assets`` (and ``lock``) and read what ``load``
        reads, in one round trip: the statements go in one pipeline, and PostgreSQL runs the
        read only once the locks are granted, so it sees what the previous holder committed.
        ``between``: a statement (SQL, parameters) run after the locks and before the read,
        whose rows are returned too. Returns the locked accounts, the loaded reads (None
        when an account had to be made first) and ``between``'s rows (None without it)."""
        codes = sorted(set(assets) | set(lock))
        if price is None:
            accounts = accounts_lock(ctx.wallet_id, codes)
            if between is None:
                return accounts, None, None
            with hot_cursor() as cursor:
                cursor.execute(*between)
                return accounts, None, cursor.fetchall()
        params = _load_params(ctx, assets, valid_at, period, price)
        with hot_pipeline(3 if between else 2) as cursors:
            cursors[0].execute(ACCOUNTS_LOCK_SQL, [ctx.wallet_id, codes])
            if between is not None:
                cursors[1].execute(*between)
            cursors[-1].execute(GRANTS_AND_COUNTER_SQL, params)
            locked_rows, rows = cursors[0].fetchall(), cursors[-1].fetchall()
            between_rows = cursors[1].fetchall() if between is not None else None
        accounts = {a.asset_id: a for a in instances(Account, locked_rows)}
        if len(accounts) != len(codes):  # a first charge in an asset: make its account
            # and lock it too (it is newer than the others, so id order is kept)
            accounts.update(accounts_lock(ctx.wallet_id, set(codes) - set(accounts)))
            return accounts, None, between_rows
        return accounts, _loaded(ctx, assets, rows), between_rows

    def taken(self, ctx: Context, period, charge: _Charge) -> None:
        """An accepted charge was written (nothing to remember for one event)."""

    def revenue(self, ctx: Context, asset: str) -> Account:
        if asset in ctx.revenue:  # read with the event's context (system accounts stay)
            return Account(
                id=ctx.revenue[asset], system_code=Account.System.REVENUE, asset_id=asset
            )
        return system_account(Account.System.REVENUE, asset)

    def write_declined(self, ctx, data, period, body, code: str, now) -> None:
        _insert_event(
            ctx,
            data,
            status="declined",
            code=code,
            period_start=period[0],
            charge=None,
            txn_id=None,
            body=body,
            now=now,
        )

    def write_accepted(self, ctx, data, accounts, period, charge, now, decimals) -> Outcome:
        return _write_accepted(ctx, data, accounts, period, charge, now, decimals, self)

    def reload(self, wallet_id: int) -> None:
        """The wallet got a new grant."""


class _BatchReads(_DatabaseReads):
    """What ``_decide`` reads for a whole batch, read once under the batch's account locks
    and kept current in memory as its charges are written: the grants of the batch's
    wallets and the counters of its subscriptions."""

    posts_one_by_one = False  # ``flush`` writes them all together

    def __init__(self, wallet_ids: set[int], subscription_ids: set[int], valid_from: datetime):
        self.valid_from = valid_from
        self.by_wallet: dict[int, list[DrawableGrant]] = {w: [] for w in wallet_ids}
        for grant in drawable_grants(
            BATCH_GRANTS_WHERE, [int_array(sorted(wallet_ids)), valid_from]
        ):
            self.by_wallet[grant.wallet_id].append(grant)
        self.counters: dict[tuple, _Totals] = {}
        self.ordered: dict[tuple, dict[str, list[DrawableGrant]]] = {}  # see ``grants``
        self.revenues: dict[str, Account] = {}
        self.rows: list[tuple] = []  # what the batch decided, written by ``flush``
        with hot_cursor(binary=True) as cursor:
            cursor.execute(
                "SELECT subscription_id, period_start, price_id, quantity, included, billable, "
                "amount, accrued FROM billing_usagecounter "
                "WHERE subscription_id = ANY(%b::bigint[])",
                [int_array(sorted(subscription_ids))],
            )
            for sub, start, price_id, *totals in cursor.fetchall():
                self.counters[(sub, start, price_id)] = _Totals(*totals)

    def reload(self, wallet_id: int) -> None:
        self.by_wallet[wallet_id] = drawable_grants(
            BATCH_GRANTS_WHERE, [int_array([wallet_id]), self.valid_from]
        )
        self.ordered = {key: found for key, found in self.ordered.items() if key[0] != wallet_id}

    def load(self, ctx: Context, assets: list[str], valid_at: datetime, period, price):
        totals = NO_TOTALS
        if price is not None:
            totals = self.counters.get((ctx.subscription_id, period[0], price.id), NO_TOTALS)
        return self.grants(ctx, assets, valid_at), totals

    def grants(self, ctx: Context, assets: list[str], valid_at: datetime):
        """The wallet's grants that may pay, in burn-down order: sorted once per wallet,
        assets, meter and time in the transaction, not once per event. A grant the batch
        draws to nothing stays in the list (``plan_draw`` takes nothing from it); nothing
        else changes while the account locks are held but a reload (new grants, released
        holds), which sorts again."""
        key = (ctx.wallet_id, tuple(assets), ctx.meter_code, valid_at)
        found = self.ordered.get(key)
        if found is None:
            eligible = [
                g
                for g in self.by_wallet[ctx.wallet_id]
                if g.asset_id in assets and is_eligible(g, ctx.meter_code, valid_at)
            ]
            found = self.ordered[key] = in_burn_down_order(eligible, assets, ctx.meter_code)
        return found

    def write_declined(self, ctx, data, period, body, code: str, now) -> None:
        self.rows.append(("declined", code, ctx, data, period, None, None, body))

    def write_accepted(self, ctx, data, accounts, period, charge, now, decimals) -> Outcome:
        post, fundings = _plan_posting(ctx, data, accounts, charge, reads=self, now=now)
        if post is not None:
            post.applied()  # the balances in the answer are the ones after this charge
        body = _body(ctx, data, "accepted", charge, fundings, accounts, decimals)
        self.rows.append(("accepted", "", ctx, data, period, charge, post, body))
        return Outcome(status_code=201, body=body)

    def flush(self, now: datetime) -> None:
        """Write what the batch decided, one statement per table: the event rows first (in
        event id order, so two batches sharing ids never wait on each other in a cycle),
        then the ledger postings and the period counters (summed per counter). An id a
        concurrent request wrote first (the insert waits for it to commit) raises
        ``_BatchConflict`` before anything else is written; the caller's transaction then
        rolls back and the batch is charged again without those events."""
        if not self.rows:
            return
        posts = [row[6] for row in self.rows if row[6] is not None]
        ids = txn_ids_draw(len(posts))  # the event rows name them before they are written
        txn_ids = {id(post): txn_id for post, txn_id in zip(posts, ids, strict=True)}
        rows = sorted(self.rows, key=lambda r: r[3].id)
        with hot_cursor() as cursor:
            cursor.execute(BATCH_EVENTS_SQL, _batch_event_columns(rows, txn_ids, now))
            written = {row[0] for row in cursor.fetchall()}
        if len(written) < len(rows):
            raise _BatchConflict({r[3].id for r in self.rows} - written)
        ledger_post_many(posts, ids)
        counters: dict[tuple, list] = {}
        for status, _, ctx, _, period, charge, _, _ in self.rows:
            if status != "accepted" or charge.price is None:
                continue
            key = (ctx.subscription_id, period[0], charge.price.id)
            total = counters.setdefault(key, [period[1], ZERO, ZERO, ZERO, ZERO, ZERO, 0])
            total[1] += charge.included + charge.billable
            total[2] += charge.included
            total[3] += charge.billable
            total[4] += charge.amount - charge.accrued
            total[5] += charge.accrued
            total[6] += 1
        keys = sorted(counters)
        if keys:
            columns_ = list(zip(*(key + tuple(counters[key]) for key in keys), strict=True))
            subscriptions, starts, prices, ends = columns_[:4]
            params = [now, int_array(subscriptions), list(starts), int_array(prices), list(ends)]
            params += [*map(numeric_texts, columns_[4:9]), int_array(columns_[9])]
            with hot_cursor() as cursor:
                cursor.execute(BATCH_COUNTERS_SQL, params)

    def revenue(self, ctx: Context, asset: str) -> Account:
        if asset not in self.revenues:
            self.revenues[asset] = super().revenue(ctx, asset)
        return self.revenues[asset]

    def taken(self, ctx: Context, period, charge: _Charge) -> None:
        for grant, take in (*charge.unit_plan, *charge.money_plan):
            grant.remaining -= take
        if charge.price is not None:
            key = (ctx.subscription_id, period[0], charge.price.id)
            self.counters[key] = self.counters.get(key, NO_TOTALS).after(charge)


def _load_params(ctx: Context, assets, valid_at, period, price) -> list:
    return [
        ctx.subscription_id,
        period[0],
        price.id,
        ctx.wallet_id,
        sorted(set(assets)),
        valid_at,
        ctx.meter_code,
    ]


def _loaded(ctx: Context, assets, rows) -> tuple[dict[str, list[Grant]], _Totals]:
    totals = _Totals(*rows[0][0]) if rows[0][0] is not None else NO_TOTALS
    grants = instances(Grant, [row[1:] for row in rows if row[1] is not None])
    return in_burn_down_order(grants, assets, ctx.meter_code), totals


GRANTS_AND_COUNTER_SQL = (
    "SELECT (SELECT ARRAY[quantity, included, billable, amount, accrued] "  # noqa: S608
    "FROM billing_usagecounter WHERE subscription_id = %s "
    f"AND period_start = %s AND price_id = %s), {columns(Grant, 'g')} "
    "FROM (SELECT 1) AS one LEFT JOIN wallets_grant g ON g.wallet_id = %s "
    f"AND g.asset_id = ANY(%s) AND {eligible_where('g')}"
)
BATCH_GRANTS_WHERE = (
    "wallet_id = ANY(%b::bigint[]) AND status = 'active' AND remaining > held "
    "AND (expires_at IS NULL OR expires_at > %s)"
)
DATABASE_READS = _DatabaseReads()
BATCH_COUNTERS_SQL = """
INSERT INTO billing_usagecounter
    (subscription_id, period_start, price_id, period_end, quantity, included, billable,
     amount, accrued, events, updated_at)
SELECT *, %b::timestamptz FROM unnest(%b::bigint[], %b::timestamptz[], %b::bigint[],
    %b::timestamptz[], %b::numeric[], %b::numeric[], %b::numeric[], %b::numeric[],
    %b::numeric[], %b::int[])
ON CONFLICT (subscription_id, period_start, price_id) DO UPDATE SET
    quantity = billing_usagecounter.quantity + EXCLUDED.quantity,
    included = billing_usagecounter.included + EXCLUDED.included,
    billable = billing_usagecounter.billable + EXCLUDED.billable,
    amount = billing_usagecounter.amount + EXCLUDED.amount,
    accrued = billing_usagecounter.accrued + EXCLUDED.accrued,
    events = billing_usagecounter.events + EXCLUDED.events,
    updated_at = EXCLUDED.updated_at
"""


class _BatchConflict(Exception):
    """Event ids of a batch a concurrent request wrote first."""

    def __init__(self, ids: set[str]):
        self.ids = ids


def _decide(
    ctx: Context,
    data: EventData,
    accounts: dict[str, Account],
    period: tuple[datetime, datetime],
    price: CachedPrice | None,
    now: datetime,
    *,
    prefer: dict[str, list[tuple[Grant, Decimal]]] | None = None,
    overdraw: bool = False,
    reads: _DatabaseReads = DATABASE_READS,
    loaded: tuple | None = None,
) -> _Charge:
    """Steps 1–4 with reads only (the account rows are locked by the caller), within the
    bounds of what Billfold records (``_check_bounds``)."""
    charge = _Charge(price=price)
    # a late event may use the grants that were valid when it happened (its period's
    # allowance) as long as the expiry sweep has not closed them yet
    valid_at = min(now, data.timestamp)
    quantity = charged_quantity(ctx, data)
    prefer = prefer or {}
    for account in accounts.values():
        if account.debt > 0 and not overdraw:
            raise NegativeBalance(
                f"The wallet owes {_plain(account.debt)} {account.asset_id}; top it up first.",
                extra={"asset": account.asset_id},
            )
    # the grants of both assets in one read (the account locks keep them as read)
    assets = [ctx.unit] + ([price.asset] if price is not None else [])
    grants, totals = loaded or reads.load(ctx, assets, valid_at, period, price)
    # 1. units first
    unit_grants = _with_preferred(grants[ctx.unit], prefer.get(ctx.unit, []))
    if price is not None and price.asset == ctx.unit:
        unit_grants = []  # a price in the meter's own unit: the units are the payment
    charge.unit_plan = plan_draw(unit_grants, quantity)
    charge.included = sum((take for _, take in charge.unit_plan), ZERO)
    charge.billable = quantity - charge.included
    if price is not None and charge.billable != 0:
        # 2. price the billable part over the period's cumulative billable quantity, exact
        # to the ledger's 12 places in every asset (an answer shows it at its decimals)
        charge.amount = increment_amount(
            price.spec, before=totals.billable, quantity=charge.billable
        )
        charge.asset = price.asset
    _check_bounds(charge, totals)  # before paying: too large is refused, not declined
    if charge.amount != 0:
        _pay(ctx, charge, price, grants, prefer, overdraw)
    return charge


def _pay(
    ctx: Context,
    charge: _Charge,
    price: CachedPrice,
    grants: dict[str, list[Grant]],
    prefer: dict[str, list[tuple[Grant, Decimal]]],
    overdraw: bool,
) -> None:
    """Steps 3–4 of ``_decide``: pay ``charge.amount``, accrue or decline the shortfall."""
    # 3. pay from grants in burn-down order
    money_grants = _with_preferred(grants[price.asset], prefer.get(price.asset, []))
    if price.asset == ctx.unit:
        money_grants = _after_units(money_grants, charge.unit_plan)
    charge.money_plan = plan_draw(money_grants, charge.amount)
    paid = sum((take for _, take in charge.money_plan), ZERO)
    shortfall = charge.amount - paid
    # 4. shortfall: accrue (postpaid, billing currency), overdraw (a capture), or decline
    if shortfall > 0:
        if ctx.overage == Subscription.Overage.INVOICE and price.asset == ctx.currency:
            charge.accrued = shortfall
        elif not overdraw:
            raise InsufficientFunds(
                f"The wallet can pay {_plain(paid)} of {_plain(charge.amount)} {price.asset}.",
                extra={"asset": price.asset, "available": paid},
            )


def _with_preferred(grants: list[Grant], preferred: list[tuple[Grant, Decimal]]) -> list[Grant]:
    """A hold's grants first (even if they expired since), then the rest in burn-down order."""
    if not preferred:
        return grants
    ids = {g.pk for g, _ in preferred}
    return [g for g, _ in preferred] + [g for g in grants if g.pk not in ids]


def _after_units(grants: list[Grant], unit_plan: list[tuple[Grant, Decimal]]) -> list[Grant]:
    taken = {g.pk: t for g, t in unit_plan}
    for grant in grants:
        grant.remaining -= taken.get(grant.pk, ZERO)
    return grants


def _plan_posting(
    ctx: Context,
    data: EventData,
    accounts: dict[str, Account],
    charge: _Charge,
    *,
    overdraw: bool = False,
    kind: str = LedgerTransaction.Kind.DRAW,
    reference: str = "",
    after: str = "",
    reads: _DatabaseReads = DATABASE_READS,
    now: datetime | None = None,
) -> tuple[Posting | None, list[Funding]]:
    """The ledger side of what ``_decide`` decided: the grants it draws and one balanced
    transaction (None when nothing moves), made at ``now`` (the event's receipt, as the
    database function posts it)."""
    fundings: list[Funding] = []
    legs: list[Leg] = []
    for asset, plan in ((ctx.unit, charge.unit_plan), (charge.asset, charge.money_plan)):
        for grant, take in plan:
            fundings.append(Funding(grant.pk, asset, take))
            legs.append(Leg(accounts[asset], -take, grant.pk))
    paid = sum((f.amount for f in fundings if f.asset == charge.asset), ZERO)
    debt = ZERO
    if overdraw and charge.asset and charge.amount - paid - charge.accrued > 0:
        debt = charge.amount - paid - charge.accrued
        fundings.append(Funding(None, charge.asset, debt))
        legs.append(Leg(accounts[charge.asset], -debt, None))
    # The revenue accounts are shared by every customer and made on first use: make (or
    # find) them in one global order, so that two first charges posting revenue in the same
    # two assets in opposite orders (a unit and a price asset) never wait on each other.
    revenue_assets = set()
    if charge.included:
        revenue_assets.add(ctx.unit)
    if paid + debt:
        revenue_assets.add(charge.asset)
    revenue = {a: reads.revenue(ctx, a) for a in sorted(revenue_assets)}
    if charge.included:
        legs.append(Leg(revenue[ctx.unit], charge.included))
    if paid + debt:
        legs.append(Leg(revenue[charge.asset], paid + debt))
    if not legs:
        return None, fundings
    post = posting(
        kind=kind,
        legs=legs,
        wallet_id=ctx.wallet_id,
        reference=reference or data.id,
        description=f"{ctx.meter_code} × {_plain(data.quantity)}",
        metadata={"event": data.id, "meter": ctx.meter_code},
        grant_takes=[(f.grant_id, f.amount) for f in fundings if f.grant_id is not None],
        after=after,
        with_sql=reads.posts_one_by_one,
        now=now,
    )
    return post, fundings


COUNTER_SQL = """
INSERT INTO billing_usagecounter
    (subscription_id, period_start, period_end, price_id, quantity, included, billable,
     amount, accrued, events, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1, %s)
ON CONFLICT (subscription_id, period_start, price_id) DO UPDATE SET
    quantity = billing_usagecounter.quantity + EXCLUDED.quantity,
    included = billing_usagecounter.included + EXCLUDED.included,
    billable = billing_usagecounter.billable + EXCLUDED.billable,
    amount = billing_usagecounter.amount + EXCLUDED.amount,
    accrued = billing_usagecounter.accrued + EXCLUDED.accrued,
    events = billing_usagecounter.events + 1,
    updated_at = EXCLUDED.updated_at
"""


def _counter_params(ctx: Context, charge: _Charge, period, now) -> list:
    return [
        ctx.subscription_id,
        period[0],
        period[1],
        charge.price.id,
        charge.included + charge.billable,
        charge.included,
        charge.billable,
        charge.amount - charge.accrued,
        charge.accrued,
        now,
    ]


def _body(
    ctx: Context,
    data: EventData,
    status: str,
    charge: _Charge | None,
    fundings: list[Funding],
    accounts: dict[str, Account],
    decimals: dict[str, tuple[bool, int]],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": data.id,
        "status": status,
        "customer": ctx.external_id,
        "meter": ctx.meter_code,
        "quantity": _plain(data.quantity),
        "timestamp": data.timestamp.isoformat(),
        "properties": data.properties,
    }
    if charge is not None:
        asset = charge.asset or (charge.price.asset if charge.price else ctx.currency)
        is_cur, dec = decimals.get(asset, (True, 12))
        body["charge"] = {
            "included": _plain(charge.included),
            "billable": _plain(charge.billable),
            "amount": _money_text(charge.amount, is_cur, dec),
            "asset": asset,
            "funding": [_funding_json(f, decimals) for f in fundings[len(charge.unit_plan) :]],
            "included_from": [
                _funding_json(f, decimals) for f in fundings[: len(charge.unit_plan)]
            ],
            "accrued": _plain(charge.accrued),
        }
    body["balances"] = [
        {
            "asset": code,
            "available": _money_text(
                account.posted - account.held, *decimals.get(code, (True, 12))
            ),
        }
        for code, account in sorted(accounts.items(), key=lambda item: item[1].pk)
    ]
    return body


def _funding_json(f: Funding, decimals: dict[str, tuple[bool, int]]) -> dict[str, Any]:
    return {
        "grant": f.grant_id,
        "asset": f.asset,
        "amount": _money_text(f.amount, *decimals.get(f.asset, (True, 12))),
    }


def _asset_decimals(codes: set[str]) -> dict[str, tuple[bool, int]]:
    from wallets.models import Asset

    return {
        a.code: (a.is_currency, a.decimals)
        for a in Asset.objects.filter(code__in=[c for c in codes if c])
    }


EVENT_COLUMNS = (
    "event_id, customer_id, subscription_id, meter_id, quantity, timestamp, properties, status, "
    "decline_code, period_start, included, billable, amount, asset_id, accrued, "
    "ledger_transaction_id, price_id, hold_id, request_hash, response, received_at"
)
INSERT_EVENT_SQL = (
    f"INSERT INTO billing_usageevent ({EVENT_COLUMNS}) "  # noqa: S608 - fixed text
    f"VALUES ({', '.join(['%s'] * 21)}) ON CONFLICT (event_id) DO NOTHING RETURNING id"
)
EVENT_TYPES = (
    "varchar bigint bigint bigint numeric timestamptz jsonb varchar varchar timestamptz "
    "numeric numeric numeric varchar numeric bigint bigint varchar varchar jsonb timestamptz"
).split()  # of EVENT_COLUMNS, in order
BATCH_EVENTS_SQL = (
    f"INSERT INTO billing_usageevent ({EVENT_COLUMNS}) "  # noqa: S608 - fixed text
    "SELECT * FROM unnest("
    + ", ".join(JSONB_ARRAY if t == "jsonb" else f"%b::{t}[]" for t in EVENT_TYPES)
    + ") ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


ARRAY_FORMS = {
    "numeric": numeric_texts,
    "jsonb": json_array,
    "bigint": int_array,
    "varchar": text_array,
    "timestamptz": list,
}


def _batch_event_columns(rows: list[tuple], txn_ids: dict[int, int], now: datetime) -> list:
    """``BATCH_EVENTS_SQL``'s parameters for rows shaped as ``_BatchReads.rows`` (status,
    code, context, event, period, charge, posting, body), column by column: the columns of
    ``_event_params``, each in the form its type is passed in (``ARRAY_FORMS``)."""
    charges = [row[5] for row in rows]
    datas = [row[3] for row in rows]
    ctxs = [row[2] for row in rows]
    columns_ = [
        [data.id for data in datas],
        [ctx.customer_id for ctx in ctxs],
        [ctx.subscription_id for ctx in ctxs],
        [ctx.meter_id for ctx in ctxs],
        [data.quantity for data in datas],
        [data.timestamp for data in datas],
        [data.properties for data in datas],
        [row[0] for row in rows],
        [row[1] for row in rows],
        [row[4][0] for row in rows],
        [ZERO if c is None else c.included for c in charges],
        [ZERO if c is None else c.billable for c in charges],
        [ZERO if c is None else c.amount for c in charges],
        [None if c is None else c.asset for c in charges],
        [ZERO if c is None else c.accrued for c in charges],
        [None if row[6] is None else txn_ids[id(row[6])] for row in rows],
        [None if c is None or c.price is None else c.price.id for c in charges],
        [""] * len(rows),
        [data.hash() for data in datas],
        [row[7] for row in rows],
        [now] * len(rows),
    ]
    return [ARRAY_FORMS[kind](column) for kind, column in zip(EVENT_TYPES, columns_, strict=True)]


# the same as the first part of a statement that then posts its ledger transaction: the
# event takes the transaction's id first (the foreign key is checked at commit), and the
# posting happens only if the event row was inserted (see ``posting(after=...)``)
INSERT_EVENT_THEN_POSTING = (
    f"INSERT INTO billing_usageevent ({EVENT_COLUMNS}) "  # noqa: S608 - fixed text
    f"VALUES ({', '.join(['%s'] * 15)}, "
    "nextval(pg_get_serial_sequence('wallets_ledgertransaction', 'id')), "
    f"{', '.join(['%s'] * 5)}) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING id, ledger_transaction_id AS txn_id"
)
COUNTER_AFTER_EVENT = COUNTER_SQL.replace(
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1, %s)", ""
).replace(
    "events, updated_at)",
    "events, updated_at) SELECT %s::bigint, %s::timestamptz, %s::timestamptz, %s::bigint, "
    "%s::numeric, %s::numeric, %s::numeric, %s::numeric, %s::numeric, 1, %s::timestamptz "
    "FROM event",
)


def _event_params(
    ctx: Context,
    data: EventData,
    *,
    status: str,
    code: str,
    period_start: datetime | None,
    charge: _Charge | None,
    txn_id: int | None,
    body: dict,
    now: datetime,
    hold_id: str = "",
) -> list:
    return [
        data.id,
        ctx.customer_id,
        ctx.subscription_id,
        ctx.meter_id,
        data.quantity,
        data.timestamp,
        Jsonb(data.properties),
        status,
        code,
        period_start,
        charge.included if charge else ZERO,
        charge.billable if charge else ZERO,
        charge.amount if charge else ZERO,
        charge.asset if charge else None,
        charge.accrued if charge else ZERO,
        txn_id,
        charge.price.id if charge and charge.price else None,
        hold_id,
        data.hash(),
        Jsonb(body),
        now,
    ]


def _insert_event(ctx: Context, data: EventData, **fields) -> int:
    with hot_cursor() as cursor:
        cursor.execute(INSERT_EVENT_SQL, _event_params(ctx, data, **fields))
        row = cursor.fetchone()
    if row is None:
        raise _Duplicate()
    return row[0]


def _write_accepted(
    ctx,
    data,
    accounts,
    period,
    charge: _Charge,
    now,
    decimals,
    reads=DATABASE_READS,
    *,
    hold_id: str = "",
    overdraw: bool = False,
    kind: str = LedgerTransaction.Kind.DRAW,
    reference: str = "",
) -> Outcome:
    """Everything an accepted event writes — its row, then (only if the row was new) the
    grants, ledger transaction and entries, account balances and the period counter — in
    one statement. A concurrent duplicate therefore writes nothing (``_Duplicate``)."""
    post, fundings = _plan_posting(
        ctx,
        data,
        accounts,
        charge,
        after="event",
        reads=reads,
        overdraw=overdraw,
        kind=kind,
        reference=reference,
        now=now,
    )
    if post is not None:
        post.applied()  # the balances in the answer are the ones after this charge
    body = _body(ctx, data, "accepted", charge, fundings, accounts, decimals)
    if hold_id:
        body["hold"] = hold_id
    event_params = _event_params(
        ctx,
        data,
        status="accepted",
        code="",
        period_start=period[0],
        charge=charge,
        txn_id=None,
        body=body,
        now=now,
        hold_id=hold_id,
    )
    if post is not None:
        del event_params[15]  # the transaction's id comes from its sequence
        ctes = [f"event AS ({INSERT_EVENT_THEN_POSTING})", post.ctes]
        params = event_params + post.params
    else:
        ctes = [f"event AS ({INSERT_EVENT_SQL})"]
        params = event_params
    if charge.price is not None:
        ctes.append(f"counter AS ({COUNTER_AFTER_EVENT} RETURNING 1)")
        params += _counter_params(ctx, charge, period, now)
    if hold_id:  # a capture: the hold records its transaction and event
        txn = "(SELECT txn_id FROM event)" if post is not None else "NULL::bigint"
        ctes.append(
            f"captured AS (UPDATE wallets_hold SET capture_transaction_id = {txn}, "  # noqa: S608
            "metadata = metadata || jsonb_build_object('event', %s::text) "
            "WHERE id = %s RETURNING 1)"
        )
        params += [data.id, hold_id]
    final = "SELECT id, txn_id FROM event" if post is not None else "SELECT id, NULL FROM event"
    # (a plain statement, then Django's COMMIT: sending the COMMIT with it in a pipeline
    # saves a round trip but costs psycopg more CPU than the round trip did)
    with hot_cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} {final}", params)
        row = cursor.fetchone()
    if row is None:
        if post is not None:
            post.unapplied()
        raise _Duplicate()  # nothing was written
    return Outcome(status_code=201, body=body, txn_id=row[1])


def event_charge(
    *, data: EventData, now: datetime | None = None, api_key_hash: str | None = None
) -> Outcome:
    """Price, authorize and debit one usage event, exactly once (see the module docstring).

    Raises ``ValidationFailed`` / ``Unprocessable`` (nothing written) for events that cannot
    be processed; returns a 201 outcome when accepted and a 402 outcome (recorded) when
    declined. ``api_key_hash``: the caller's key, checked in the event's first query (one
    round trip less than checking it first); ``KeyRefused`` when it may not send events."""
    now = now or timezone.now()
    replay, ctx = _lookup(data, api_key_hash=api_key_hash)
    if replay is not None:
        return replay
    period = _period(ctx, data, now)
    price = price_for_event(ctx.version_id, ctx.meter_id, data.properties)
    charged_now = realtime(ctx, price)
    try:
        if charged_now:
            outcome = _charge_in_database(ctx, data, period, price, now)
            if outcome is not None:
                return outcome
        with transaction.atomic():
            if not charged_now:
                return _record_periodic(ctx, data, period, now)
            return _charge_locked(ctx, data, period, price, now)
    except _Duplicate:
        replay = event_replay(data)
        if replay is None:  # pragma: no cover - the duplicate committed, so it is there
            raise
        return replay


CHARGE_SQL = (
    "SELECT billfold_event_charge("  # migrations billing 0012, 0013
    + ", ".join(["%s"] * 33)
    + ")"
)
DATABASE_MODELS = frozenset({PER_UNIT, PACKAGE, GRADUATED})


def in_database(ctx: Context, period, price: CachedPrice | None) -> bool:
    """Whether the database functions (migrations billing 0012, 0013) may charge or reserve
    for this event: no spend limit to check, the current period, a price they can rate."""
    return (
        settings.CHARGE_IN_DATABASE
        and not ctx.has_limit
        and period[0] == ctx.current_period_start
        and (price is None or price.spec.model in DATABASE_MODELS)
    )


@dataclass(frozen=True)
class DecideTerms:
    """What ``billfold_charge_decide`` needs to know of an event's unit and price. The
    places are those the answers show amounts at (the decision is exact to 12 places in
    every asset)."""

    unit_places: int
    price_places: int
    params: list  # p_price … p_accrue, in the functions' order

    @classmethod
    def of(cls, ctx: Context, price: CachedPrice | None) -> DecideTerms:
        unit_places = 12 if ctx.unit_is_currency else ctx.unit_decimals
        if price is None:
            return cls(unit_places, 0, [None, None, 0, None, None, None, None, None, False])
        spec = price.spec
        price_places = 12 if price.asset_is_currency else price.asset_decimals
        accrue = ctx.overage == Subscription.Overage.INVOICE and price.asset == ctx.currency
        return cls(
            unit_places,
            price_places,
            [
                price.id,
                price.asset,
                price_places,
                spec.model,
                spec.unit_price,
                spec.package_size,
                spec.package_price,
                Jsonb([_tier_json(t) for t in spec.tiers]),
                accrue,
            ],
        )


def charged_quantity(ctx: Context, data: EventData) -> Decimal:
    """The quantity an event charges: 1 for a count meter."""
    return Decimal(1) if ctx.aggregation == Meter.Aggregation.COUNT else data.quantity


def _charge_in_database(
    ctx: Context, data: EventData, period, price, now, hold: Hold | None = None
) -> Outcome | None:
    """The common accepted charge of one event in one statement: ``billfold_event_charge``
    (migrations billing 0012, 0013) locks, reads, decides and writes what
    ``_charge_locked`` would, in its own transaction (or the caller's). None, with nothing
    written, for everything else — a spend limit, a late or future period, a decline, holds
    or debt on the wallet, a revenue account still to make — which the Python path then
    charges, and words (a wallet's missing account the function makes, as ``accounts_lock``
    does). Raises ``_Duplicate`` when the event id was written first.

    With ``hold`` (read with its allocations), the event captures it, as
    ``hold_capture_usage`` does: None too when the hold is no longer pending and live, or
    the capture would overdraw."""
    if not in_database(ctx, period, price):
        return None
    if hold is not None and not {a.asset_id for a in hold.allocations.all()} <= {
        ctx.unit,
        price.asset if price is not None else ctx.unit,
    }:
        return None  # it reserved an asset this charge does not lock (the plan changed)
    terms = DecideTerms.of(ctx, price)
    unit_revenue = ctx.revenue.get(ctx.unit)  # None: the function falls back if it needs it
    price_revenue = ctx.revenue.get(price.asset) if price is not None else None
    charge_asset = price.asset if price is not None else ctx.currency
    if price is not None:
        charge_places = terms.price_places
    else:
        charge_places = terms.unit_places if ctx.currency == ctx.unit else 12
    head = _body(ctx, data, "accepted", None, [], {}, {})
    del head["balances"]
    if hold is not None:
        head["hold"] = hold.pk  # stored with the event, as _write_accepted does
    price_id, price_asset, price_places, *spec, accrue = terms.params
    params = [
        ctx.wallet_id,
        ctx.meter_code,
        charged_quantity(ctx, data),
        min(now, data.timestamp),
        ctx.unit,
        terms.unit_places,
        unit_revenue,
        price_id,
        price_asset,
        price_places,
        price_revenue,
        *spec,
        accrue,
        ctx.subscription_id,
        period[0],
        period[1],
        charge_asset,
        charge_places,
        data.id,
        ctx.customer_id,
        ctx.meter_id,
        data.quantity,
        data.timestamp,
        Jsonb(data.properties),
        data.hash(),
        Jsonb(head),
        f"{ctx.meter_code} × {_plain(data.quantity)}",
        now,
        hold.pk if hold is not None else None,
    ]
    with hot_cursor() as cursor:
        cursor.execute(CHARGE_SQL, params)
        (answer,) = cursor.fetchone()
    if answer is None:
        return None
    if answer.get("duplicate"):
        raise _Duplicate()
    txn = answer.pop("transaction")
    if hold is not None:
        del head["hold"]
        answer["hold"] = hold.pk  # last, as _write_accepted answers
    return Outcome(status_code=201, body={**head, **answer}, txn_id=txn)


def _tier_json(tier) -> dict[str, str | None]:
    return {
        "up_to": None if tier.up_to is None else str(tier.up_to),
        "unit_price": str(tier.unit_price),
        "flat_fee": str(tier.flat_fee),
    }


def realtime(ctx: Context, price: CachedPrice | None) -> bool:
    """Charged event by event: a sum or count meter whose price (if any) is not rated
    periodically (``rated_periodically``). Other events are only recorded, within the
    bounds of what their period may price (``billing.services.periodic_bounds``); rating
    prices them from the period's data."""
    if ctx.aggregation not in Meter.ADDITIVE:
        return False
    return price is None or not rated_periodically(
        aggregation=ctx.aggregation, model=price.spec.model
    )


def _periodic_body(ctx: Context, data: EventData) -> dict[str, Any]:
    body = _body(ctx, data, "accepted", None, [], {}, {})
    body["charge"] = {
        "included": "0",
        "billable": _plain(data.quantity),
        "amount": "0",
        "asset": None,
        "funding": [],
        "accrued": "0",
        "rating": "periodic",
    }
    return body


def _record_periodic(ctx: Context, data: EventData, period, now) -> Outcome:
    """Record an event of a periodically rated meter: no wallet movement now, but its
    period's counters (``periodic_bounds``), in the caller's transaction."""
    _check_open(ctx, period)
    prices = periodic_prices(ctx, data.properties)
    if prices:
        counters = PeriodicCounters([(ctx, period, prices)], now)
        counters.take(ctx, data, period, prices)
        counters.write()  # rolled back with the transaction if the event id was taken
    body = _periodic_body(ctx, data)
    _insert_event(ctx, data, **_periodic_fields(period, body, now))
    return Outcome(status_code=201, body=body)


def _periodic_fields(period, body: dict[str, Any], now) -> dict[str, Any]:
    """The event row fields of an event rated later (``_event_params``): accepted, with
    nothing charged yet."""
    return {
        "status": "accepted",
        "code": "",
        "period_start": period[0],
        "charge": None,
        "txn_id": None,
        "body": body,
        "now": now,
    }


def _spend_record(ctx: Context, charge: _Charge, period, data: EventData, now) -> None:
    spend_service.spend_record(
        customer_id=ctx.customer_id,
        currency=ctx.currency,
        value=charge.spend,
        period=(ctx.current_period_start, ctx.current_period_end)
        if period[0] == ctx.current_period_start
        else period,
        now=now,
        event_id=data.id,
        enforce=True,
        at=data.timestamp,  # the window of the event's time, as spend_in_window counts it
        wallet_id=ctx.wallet_id,
    )


def _charge_locked(ctx, data, period, price, now, *, reads=DATABASE_READS, locked=None) -> Outcome:
    """Charge one event inside the caller's transaction. ``locked``: the wallet's accounts,
    already locked by a batch (with ``reads``, its in-memory reads)."""
    _check_open(ctx, period)
    assets = {ctx.unit} | ({price.asset} if price else set())
    loaded = None
    if locked is None:
        accounts, loaded, _ = reads.lock_and_load(
            ctx,
            [ctx.unit, *([price.asset] if price else [])],
            min(now, data.timestamp),
            period,
            price,
        )
    else:
        accounts = {code: locked[code] for code in sorted(assets)}
    if holds_release_expired(wallet_id=ctx.wallet_id, accounts=accounts, now=now):
        reads.reload(ctx.wallet_id)
        loaded = None  # released holds changed the grants: read them again
    if price is not None and _ensure_allowance(
        ctx, price, accounts[ctx.unit], period[0], period[1], now
    ):
        reads.reload(ctx.wallet_id)
        loaded = None
    decimals = {ctx.unit: (ctx.unit_is_currency, ctx.unit_decimals)}
    if price is not None:
        decimals[price.asset] = (price.asset_is_currency, price.asset_decimals)
    try:
        charge = _decide(ctx, data, accounts, period, price, now, reads=reads, loaded=loaded)
        charge.spend = spend_service.value_in_currency(charge.amount, charge.asset, ctx.currency)
        if ctx.has_limit:
            _spend_record(ctx, charge, period, data, now)
    except Declined as declined:
        body = _body(ctx, data, "declined", None, [], accounts, decimals)
        body["decline_code"] = declined.code
        # the event is recorded with the whole answer: its replay is the same problem
        answer = {**declined_problem(declined), "event": body}
        reads.write_declined(ctx, data, period, answer, declined.code, now)
        return Outcome(status_code=402, body=answer)
    outcome = reads.write_accepted(ctx, data, accounts, period, charge, now, decimals)
    reads.taken(ctx, period, charge)
    return outcome


def declined_problem(declined: Declined) -> dict[str, Any]:
    """The 402 problem body of a declined charge or hold (docs/api.md's problem details)."""
    return {
        "type": f"https://billfold.dev/problems/{declined.code}",
        "title": declined.title,
        "status": 402,
        "detail": declined.detail,
        "code": declined.code,
        "errors": {},
        **declined.extra,
    }


def event_data(
    *,
    id: str,
    customer: str,
    meter: str,
    quantity: Any = "1",
    timestamp: datetime | None = None,
    properties: dict | None = None,
    now: datetime | None = None,
) -> EventData:
    """Check an event's fields (``ValidationFailed`` names each bad one)."""
    from wallets.services.amounts import check_amount

    errors: dict[str, list[str]] = {}
    for name, value in (("id", id), ("customer", customer), ("meter", meter)):
        if not isinstance(value, str) or not value or len(value) > 255:
            errors[name] = ["1–255 characters."]
    try:
        qty = check_amount(quantity, field="quantity", allow_zero=True)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        qty = ZERO
    if timestamp is not None and timezone.is_naive(timestamp):
        errors["timestamp"] = ["A time with an offset."]
    if properties is not None and not isinstance(properties, dict):
        errors["properties"] = ["A JSON object."]
    elif properties and (problem := _properties_problem(properties)):
        errors["properties"] = [problem]
    elif properties and not _storable_text(properties):
        # PostgreSQL's jsonb refuses NUL and lone surrogates: say so here rather than fail
        # at the insert (a batch would stop half-way there)
        errors["properties"] = ["Text without NUL characters or lone surrogates."]
    if errors:
        raise ValidationFailed("Invalid event.", errors=errors)
    return EventData(
        id=id,
        customer=customer,
        meter=meter,
        quantity=qty,
        timestamp=timestamp or now or timezone.now(),
        properties=properties or {},
        timestamp_given=timestamp is not None,
    )


def _properties_problem(properties: dict) -> str | None:
    try:  # a number beyond a double's range became infinity (``plain_json``): JSON has none
        text = json.dumps(properties, default=str, allow_nan=False)
    except ValueError:
        return "Numbers within the range of a double (at most about 1.8e308)."
    if len(text) > PROPERTIES_MAX_CHARS:
        return f"At most {PROPERTIES_MAX_CHARS} characters of JSON."
    return None


def _storable_text(value: Any) -> bool:
    """Every string in ``value`` (keys included) is valid UTF-8 text without NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_storable_text(k) and _storable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable_text(v) for v in value)
    return True


def event_get(*, event_id: str) -> UsageEvent:
    event = UsageEvent.objects.select_related("customer", "meter").filter(event_id=event_id).first()
    if event is None:
        raise NotFound(f"No event '{event_id}'.")
    return event


class EventNotAccepted(BillfoldError):
    code = "event_not_accepted"
    status = 409
    title = "Only accepted events can be reversed"


def event_reverse(*, event_id: str, now: datetime | None = None) -> UsageEvent:
    """Reverse an accepted event (a disputed outcome): refund exactly its charge — units back
    to the grants they came from while those have not expired, money likewise — take it out
    of the period's counter and the spend window. Once: reversing a reversed event changes
    nothing. When the period's invoice billed the event's accrued part, a draft is refreshed
    and a finalized or paid invoice gets a credit note, in the same transaction
    (billing/services/reversals.py)."""
    from billing.services.reversals import reversal_invoice_correct, reversal_invoice_lock
    from wallets.services import ledger_refund

    now = now or timezone.now()
    event = event_get(event_id=event_id)
    if event.status == UsageEvent.Status.REVERSED:
        return event
    if event.status != UsageEvent.Status.ACCEPTED:
        raise EventNotAccepted(f"Event {event_id} is {event.status}.")
    with transaction.atomic():
        invoice = reversal_invoice_lock(event=event)  # first, as a late event locks it
        txn = event.ledger_transaction
        if txn is not None:
            assets = set(
                txn.entries.filter(account__wallet__isnull=False).values_list("asset_id", flat=True)
            )
            accounts_lock(txn.wallet_id, assets)
        moved = UsageEvent.objects.filter(pk=event.pk, status=UsageEvent.Status.ACCEPTED).update(
            status=UsageEvent.Status.REVERSED, reversed_at=now
        )
        if not moved:  # reversed concurrently
            return event_get(event_id=event_id)
        refund = (
            ledger_refund(txn=txn, now=now, description=f"reversal of event {event_id}")
            if txn
            else None
        )
        if event.price_id is not None:
            UsageCounter.objects.filter(
                subscription_id=event.subscription_id,
                period_start=event.period_start,
                price_id=event.price_id,
            ).update(
                quantity=F("quantity") - (event.included + event.billable),
                included=F("included") - event.included,
                billable=F("billable") - event.billable,
                amount=F("amount") - (event.amount - event.accrued),
                accrued=F("accrued") - event.accrued,
                events=F("events") - 1,  # the invoice line counts the events it bills
                updated_at=now,
            )
        if event.amount and event.asset_id and event.subscription_id:
            spend_service.spend_release(
                customer_id=event.customer_id,
                value=spend_service.value_in_currency(
                    event.amount, event.asset_id, event.customer.currency_id
                ),
                # a period window starts at the event's period; a day window at its day
                period=(event.period_start, event.period_start),
                at=event.timestamp,
            )
        UsageEvent.objects.filter(pk=event.pk).update(reversal_transaction=refund)
        reversal_invoice_correct(event=event, invoice=invoice, now=now)
    return event_get(event_id=event_id)


def events_charge_batch(
    *, events: list[EventData], now: datetime | None = None
) -> list[Outcome | BillfoldError]:
    """Charge a batch: each event succeeds or fails on its own, the events of a customer in
    array order. Set-based: the replays and contexts of all events are read in one query
    each; the real-time events are charged in a few transactions, each of which locks every
    account of its wallets at once (in id order), reads their grants and counters once and
    keeps them current in memory, and writes each event with its one statement. Events of
    periodically rated meters involve no wallet and are written together in one statement."""
    now = now or timezone.now()
    results: list[Outcome | BillfoldError | None] = [None] * len(events)
    stored = _stored_events([data.id for data in events])
    contexts = _contexts({(data.customer, data.meter) for data in events})
    realtime_events: list[tuple[int, Context, EventData, tuple, CachedPrice | None]] = []
    pending: list[tuple[int, Context, EventData, tuple[datetime, datetime]]] = []
    first_seen: dict[str, int] = {}
    again: list[int] = []  # an id seen earlier in this batch: answered as its replay
    built: dict[tuple[str, str], Context] = {}  # per (customer, meter)
    periods: dict[tuple, tuple[datetime, datetime]] = {}  # see ``_period``
    for index, data in enumerate(events):
        if data.id in first_seen:
            again.append(index)
            continue
        first_seen[data.id] = index
        try:
            if data.id in stored:
                results[index] = _replayed(data, *stored[data.id])
                continue
            pair = (data.customer, data.meter)
            ctx = built.get(pair) or built.setdefault(pair, _context(contexts[pair], data))
            period = _period(ctx, data, now, periods)
            price = price_for_event(ctx.version_id, ctx.meter_id, data.properties)
            if realtime(ctx, price):
                realtime_events.append((index, ctx, data, period, price))
            else:
                pending.append((index, ctx, data, period))
        except BillfoldError as exc:
            results[index] = exc
    if realtime_events:
        again += _charge_realtime(realtime_events, results, now)
    _flush_periodic(pending, results, now)
    for index in sorted(again):
        try:
            results[index] = event_replay(events[index])
        except BillfoldError as exc:
            results[index] = exc
        if results[index] is None:  # its first occurrence was refused: so is this one
            results[index] = results[first_seen[events[index].id]]
    return results  # type: ignore[return-value]


def _stored_events(ids: list[str]) -> dict[str, tuple]:
    with hot_cursor() as cursor:
        cursor.execute(
            "SELECT event_id, request_hash, response, status FROM billing_usageevent "
            "WHERE event_id = ANY(%b::varchar[])",
            [text_array(ids)],
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _contexts(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    ordered = sorted(pairs)
    with hot_cursor(binary=True) as cursor:  # timestamps parsed in C, not from text
        cursor.execute(
            RESOLVE_MANY_SQL,
            [text_array(c for c, _ in ordered), text_array(m for _, m in ordered)],
        )
        return {(row[25], row[26]): row for row in cursor.fetchall()}


EXISTING_ACCOUNTS_SQL = (
    "SELECT wallet_id, asset_id FROM wallets_account "
    "WHERE (wallet_id, asset_id) IN (SELECT * FROM unnest(%b::bigint[], %b::varchar[]))"
)
BATCH_LOCK_SQL = (
    f"SELECT {columns(Account)} FROM wallets_account "  # noqa: S608 - column names only
    "WHERE (wallet_id, asset_id) IN (SELECT * FROM unnest(%b::bigint[], %b::varchar[])) "
    "ORDER BY id FOR UPDATE"
)


# Wallets per transaction of a batch. A transaction locks its wallets' accounts until it
# commits: one for the whole batch made concurrent batches over the same customers wait for
# each other from start to end; in parts, the next batch follows one part behind.
BATCH_WALLETS_PER_TRANSACTION = 100


def _charge_realtime(items, results, now) -> list[int]:
    """The real-time events of a batch, in one transaction per ``BATCH_WALLETS_PER_TRANSACTION``
    wallets (a customer's events together, in batch order); returns the indexes of events a
    concurrent request wrote first (answered as replays)."""
    needed = _accounts_needed(items)
    # Missing accounts are made before the transaction (committed at once, empty): made
    # inside it, an uncommitted new row would make a single event that holds another of the
    # wallet's account locks wait for this batch while the batch waits for that lock.
    with hot_cursor(binary=True) as cursor:  # a read without locks: most accounts exist
        cursor.execute(EXISTING_ACCOUNTS_SQL, _pairs_arrays(needed))
        missing = set(needed) - set(cursor.fetchall())
    if missing:
        Account.objects.bulk_create(
            [Account(wallet_id=w, asset_id=a) for w, a in sorted(missing)], ignore_conflicts=True
        )
    by_wallet: dict[int, list] = {}
    for item in items:
        by_wallet.setdefault(item[1].wallet_id, []).append(item)
    wallets = sorted(by_wallet)
    duplicates: list[int] = []
    for start in range(0, len(wallets), BATCH_WALLETS_PER_TRANSACTION):
        part = sorted(
            (
                item
                for w in wallets[start : start + BATCH_WALLETS_PER_TRANSACTION]
                for item in by_wallet[w]
            ),
            key=lambda item: item[0],
        )
        duplicates += _charge_part(part, results, now)
    return duplicates


def _pairs_arrays(pairs: list[tuple[int, str]]) -> list[str]:
    return [int_array(w for w, _ in pairs), text_array(a for _, a in pairs)]


def _accounts_needed(items) -> list[tuple[int, str]]:
    return sorted(
        {(ctx.wallet_id, ctx.unit) for _, ctx, _, _, _ in items}
        | {(ctx.wallet_id, price.asset) for _, ctx, _, _, price in items if price is not None}
    )


def _charge_part(items, results, now) -> list[int]:
    """Some wallets' events of a batch in one transaction. Should PostgreSQL refuse a value
    the checks let through, the part is rolled back and each of its events charged alone,
    so that only the event at fault fails (each event succeeds or fails on its own)."""
    needed = _accounts_needed(items)
    duplicates: list[int] = []
    while items:
        try:
            with transaction.atomic():
                _charge_locked_batch(items, results, needed, now)
            break
        except _BatchConflict as conflict:  # rolled back: charge the others again
            for index, *_ in items:
                results[index] = None
            duplicates += [i for i, _, data, _, _ in items if data.id in conflict.ids]
            items = [item for item in items if item[2].id not in conflict.ids]
        except DataError:  # rolled back
            for index, *_ in items:
                results[index] = None
            if len(items) == 1:
                results[items[0][0]] = ValidationFailed(
                    "A value of the event is out of range or too long."
                )
                break
            for item in items:
                duplicates += _charge_part([item], results, now)
            break
    return duplicates


LATE_INVOICES_LOCK_SQL = (
    "SELECT id FROM billing_invoice WHERE kind = %s AND (subscription_id, period_start) IN "
    "(SELECT * FROM unnest(%s::bigint[], %s::timestamptz[])) ORDER BY id FOR SHARE"
)


def _late_invoices_lock(items) -> None:
    """Share-lock the invoices issued at the end of the batch's late events' periods (see
    ``_check_open``) before any account, as a single late event, a reversal and a
    finalization do: invoice first, then accounts. Taken after the batch's account locks,
    they could deadlock with a reversal that holds the invoice and waits for an account."""
    late = sorted(
        {
            (ctx.subscription_id, period[1])
            for _, ctx, _, period, _ in items
            if period[0] < ctx.current_period_start
        }
    )
    if late:
        with hot_cursor() as cursor:
            cursor.execute(
                LATE_INVOICES_LOCK_SQL,
                [Invoice.Kind.SUBSCRIPTION, [s for s, _ in late], [end for _, end in late]],
            )


def _charge_locked_batch(items, results, needed, now) -> None:
    _late_invoices_lock(items)
    locked: dict[int, dict[str, Account]] = {}
    for account in rows_as(Account, BATCH_LOCK_SQL, _pairs_arrays(needed), binary=True):
        locked.setdefault(account.wallet_id, {})[account.asset_id] = account
    reads = _BatchReads(
        set(locked),
        {ctx.subscription_id for _, ctx, _, _, _ in items},
        min(min(now, data.timestamp) for _, _, data, _, _ in items),
    )
    for index, ctx, data, period, price in items:
        try:
            results[index] = _charge_locked(
                ctx, data, period, price, now, reads=reads, locked=locked[ctx.wallet_id]
            )
        except BillfoldError as exc:
            results[index] = exc  # nothing of it is written
    reads.flush(now)


def _flush_periodic(pending, results, now) -> None:
    if not pending:
        return
    with transaction.atomic():
        writable = []
        for index, ctx, data, period in pending:
            try:
                _check_open(ctx, period)
            except BillfoldError as exc:
                results[index] = exc
                continue
            writable.append((index, ctx, data, period, _periodic_body(ctx, data)))
        prices = {index: periodic_prices(ctx, data.properties) for index, ctx, data, *_ in writable}
        counters = PeriodicCounters(
            [(ctx, period, prices[index]) for index, ctx, _, period, _ in writable], now
        )
        taken = []
        for item in writable:
            index, ctx, data, period, _ = item
            try:
                counters.take(ctx, data, period, prices[index])
            except BillfoldError as exc:
                results[index] = exc  # that event alone is refused
                continue
            taken.append(item)
        writable = taken
        if writable:
            # one multi-row insert, in event id order as a batch's charged events
            rows = [
                ("accepted", "", ctx, data, period, None, None, body)
                for _, ctx, data, period, body in sorted(writable, key=lambda w: w[2].id)
            ]
            with hot_cursor() as cursor:
                cursor.execute(BATCH_EVENTS_SQL, _batch_event_columns(rows, {}, now))
                inserted = {row[0] for row in cursor.fetchall()}
            counters.write(inserted)  # not what a concurrent request wrote first
            for index, _, data, _, body in writable:
                if data.id in inserted:
                    results[index] = Outcome(status_code=201, body=body)
    for index, _, data, _ in pending:
        if results[index] is None:  # a concurrent request wrote the same id first
            try:
                results[index] = event_replay(data)
            except BillfoldError as exc:
                results[index] = exc
