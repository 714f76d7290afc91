"""Charging a batch of events (``events_charge_batch``): set-based reads and writes, each
event still succeeding or failing on its own."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from django.db import DataError, transaction
from django.utils import timezone

from billing.metering.answers import (
    Outcome,
    StoredAnswer,
    event_body,
    event_replay,
    periodic_body,
    replayed,
)
from billing.metering.charge import charge_locked
from billing.metering.context import (
    RESOLVE_MANY_SQL,
    RESOLVED_WIDTH,
    Context,
    Period,
    Resolved,
    check_open,
    context_of,
    event_period,
)
from billing.metering.decide import NO_TOTALS, Charge, Loaded, Totals, realtime
from billing.metering.errors import BatchConflict
from billing.metering.input import EventData
from billing.metering.periodic_bounds import Key, PeriodicCounters, periodic_prices
from billing.metering.reads import DatabaseReads
from billing.metering.write import (
    BATCH_COUNTERS_SQL,
    BATCH_EVENTS_SQL,
    EventRow,
    batch_event_columns,
    plan_posting,
)
from billing.models import Invoice
from billing.selectors.prices import CachedPrice, price_for_event
from core.db import columns, hot_cursor, int_array, numeric_texts, rows_as, text_array
from core.errors import BillfoldError, ValidationFailed
from wallets.models import Account, Grant
from wallets.services.draws import (
    BATCH_GRANTS_WHERE,
    DrawableGrant,
    drawable_grants,
    in_burn_down_order,
    is_eligible,
)
from wallets.services.ledger import ledger_post_many, txn_ids_draw

ZERO = Decimal(0)

# an event a batch charges in real time: its index in the batch, context, data, period and
# price (None: units only)
RealtimeItem = tuple[int, Context, EventData, Period, CachedPrice | None]
# an event of periodically rated meters: index, context, data, period
PendingItem = tuple[int, Context, EventData, Period]
# each event's answer by index (None until it has one)
Results = list[Outcome | BillfoldError | None]


class BatchReads(DatabaseReads):
    """What ``decide`` reads for a whole batch, read once under the batch's account locks
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
        self.counters: dict[Key, Totals] = {}
        # see ``grants``: DrawableGrants, which a draw reads as it reads Grants
        self.ordered: dict[tuple[int, tuple[str, ...], str, datetime], dict[str, list[Grant]]]
        self.ordered = {}
        self.revenues: dict[str, Account] = {}
        self.rows: list[EventRow] = []  # what the batch decided, written by ``flush``
        with hot_cursor(binary=True) as cursor:
            cursor.execute(
                "SELECT subscription_id, period_start, price_id, quantity, included, billable, "
                "amount, accrued FROM billing_usagecounter "
                "WHERE subscription_id = ANY(%b::bigint[])",
                [int_array(sorted(subscription_ids))],
            )
            for sub, start, price_id, *totals in cursor.fetchall():
                self.counters[(sub, start, price_id)] = Totals(*totals)

    def reload(self, wallet_id: int) -> None:
        self.by_wallet[wallet_id] = drawable_grants(
            BATCH_GRANTS_WHERE, [int_array([wallet_id]), self.valid_from]
        )
        self.ordered = {key: found for key, found in self.ordered.items() if key[0] != wallet_id}

    def load(
        self,
        ctx: Context,
        assets: list[str],
        valid_at: datetime,
        period: Period,
        price: CachedPrice | None,
    ) -> Loaded:
        totals = NO_TOTALS
        if price is not None:
            totals = self.counters.get((ctx.subscription_id, period[0], price.id), NO_TOTALS)
        return self.grants(ctx, assets, valid_at), totals

    def grants(self, ctx: Context, assets: list[str], valid_at: datetime) -> dict[str, list[Grant]]:
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
            found = self.ordered[key] = in_burn_down_order(
                cast("list[Grant]", eligible), assets, ctx.meter_code
            )
        return found

    def write_declined(
        self,
        ctx: Context,
        data: EventData,
        period: Period,
        body: dict[str, Any],
        code: str,
        now: datetime,
    ) -> None:
        self.rows.append(EventRow("declined", code, ctx, data, period, None, None, body))

    def write_accepted(
        self,
        ctx: Context,
        data: EventData,
        accounts: dict[str, Account],
        period: Period,
        charge: Charge,
        now: datetime,
        decimals: dict[str, tuple[bool, int]],
    ) -> Outcome:
        post, fundings = plan_posting(ctx, data, accounts, charge, reads=self, now=now)
        if post is not None:
            post.applied()  # the balances in the answer are the ones after this charge
        body = event_body(ctx, data, "accepted", charge, fundings, accounts, decimals)
        self.rows.append(EventRow("accepted", "", ctx, data, period, charge, post, body))
        return Outcome(status_code=201, body=body)

    def flush(self, now: datetime) -> None:
        """Write what the batch decided, one statement per table: the event rows first (in
        event id order, so two batches sharing ids never wait on each other in a cycle),
        then the ledger postings and the period counters (summed per counter). An id a
        concurrent request wrote first (the insert waits for it to commit) raises
        ``BatchConflict`` before anything else is written; the caller's transaction then
        rolls back and the batch is charged again without those events."""
        if not self.rows:
            return
        posts = [row.post for row in self.rows if row.post is not None]
        ids = txn_ids_draw(len(posts))  # the event rows name them before they are written
        txn_ids = {id(post): txn_id for post, txn_id in zip(posts, ids, strict=True)}
        rows = sorted(self.rows, key=lambda r: r.data.id)
        with hot_cursor() as cursor:
            cursor.execute(BATCH_EVENTS_SQL, batch_event_columns(rows, txn_ids, now))
            written = {row[0] for row in cursor.fetchall()}
        if len(written) < len(rows):
            raise BatchConflict({r.data.id for r in self.rows} - written)
        ledger_post_many(posts, ids)
        counters: dict[Key, list[Any]] = {}
        for row in self.rows:
            charge = row.charge
            if row.status != "accepted" or charge is None or charge.price is None:
                continue
            key = (row.ctx.subscription_id, row.period[0], charge.price.id)
            total = counters.setdefault(key, [row.period[1], ZERO, ZERO, ZERO, ZERO, ZERO, 0])
            for column, added in enumerate(charge.counted(), 1):
                total[column] += added
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

    def taken(self, ctx: Context, period: Period, charge: Charge) -> None:
        for grant, take in (*charge.unit_plan, *charge.money_plan):
            grant.remaining -= take
        if charge.price is not None:
            key = (ctx.subscription_id, period[0], charge.price.id)
            self.counters[key] = self.counters.get(key, NO_TOTALS).after(charge)


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
    results: Results = [None] * len(events)
    stored = stored_events([data.id for data in events])
    contexts = _contexts({(data.customer, data.meter) for data in events})
    realtime_events: list[RealtimeItem] = []
    pending: list[PendingItem] = []
    first_seen: dict[str, int] = {}
    again: list[int] = []  # an id seen earlier in this batch: answered as its replay
    built: dict[tuple[str, str], Context] = {}  # per (customer, meter)
    periods: dict[tuple[datetime, str], Period] = {}  # see ``event_period``
    for index, data in enumerate(events):
        if data.id in first_seen:
            again.append(index)
            continue
        first_seen[data.id] = index
        try:
            if data.id in stored:
                results[index] = replayed(data, *stored[data.id])
                continue
            pair = (data.customer, data.meter)
            ctx = built.get(pair) or built.setdefault(pair, context_of(contexts[pair], data))
            period = event_period(ctx, data, now, periods)
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
    return cast("list[Outcome | BillfoldError]", results)  # every event has its answer


def stored_events(ids: list[str]) -> dict[str, StoredAnswer]:
    with hot_cursor() as cursor:
        cursor.execute(
            "SELECT event_id, request_hash, response, status FROM billing_usageevent "
            "WHERE event_id = ANY(%b::varchar[])",
            [text_array(ids)],
        )
        return {event_id: StoredAnswer(*answer) for event_id, *answer in cursor.fetchall()}


def _contexts(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], Resolved]:
    """``RESOLVE_MANY_SQL``'s rows by (customer, meter): the columns ``RESOLVE_SQL`` reads,
    then the pair."""
    ordered = sorted(pairs)
    with hot_cursor(binary=True) as cursor:  # timestamps parsed in C, not from text
        cursor.execute(
            RESOLVE_MANY_SQL,
            [text_array(c for c, _ in ordered), text_array(m for _, m in ordered)],
        )
        return {
            tuple(row[RESOLVED_WIDTH:]): Resolved._make(row[:RESOLVED_WIDTH])
            for row in cursor.fetchall()
        }


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


def _charge_realtime(items: list[RealtimeItem], results: Results, now: datetime) -> list[int]:
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
    by_wallet: dict[int, list[RealtimeItem]] = {}
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


def _accounts_needed(items: list[RealtimeItem]) -> list[tuple[int, str]]:
    return sorted(
        {(ctx.wallet_id, ctx.unit) for _, ctx, _, _, _ in items}
        | {(ctx.wallet_id, price.asset) for _, ctx, _, _, price in items if price is not None}
    )


def _charge_part(items: list[RealtimeItem], results: Results, now: datetime) -> list[int]:
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
        except BatchConflict as conflict:  # rolled back: charge the others again
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


def _late_invoices_lock(items: list[RealtimeItem]) -> None:
    """Share-lock the invoices issued at the end of the batch's late events' periods (see
    ``check_open``) before any account, as a single late event, a reversal and a
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


def _charge_locked_batch(
    items: list[RealtimeItem], results: Results, needed: list[tuple[int, str]], now: datetime
) -> None:
    _late_invoices_lock(items)
    locked: dict[int, dict[str, Account]] = {}
    for account in rows_as(Account, BATCH_LOCK_SQL, _pairs_arrays(needed), binary=True):
        # a wallet's account (BATCH_LOCK_SQL selects by wallet): its wallet_id is set
        locked.setdefault(cast(int, account.wallet_id), {})[account.asset_id] = account
    reads = BatchReads(
        set(locked),
        {ctx.subscription_id for _, ctx, _, _, _ in items},
        min(min(now, data.timestamp) for _, _, data, _, _ in items),
    )
    for index, ctx, data, period, price in items:
        try:
            results[index] = charge_locked(
                ctx, data, period, price, now, reads=reads, locked=locked[ctx.wallet_id]
            )
        except BillfoldError as exc:
            results[index] = exc  # nothing of it is written
    reads.flush(now)


def _flush_periodic(pending: list[PendingItem], results: Results, now: datetime) -> None:
    if not pending:
        return
    with transaction.atomic():
        writable = []
        for index, ctx, data, period in pending:
            try:
                check_open(ctx, period)
            except BillfoldError as exc:
                results[index] = exc
                continue
            writable.append((index, ctx, data, period, periodic_body(ctx, data)))
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
                EventRow("accepted", "", ctx, data, period, None, None, body)
                for _, ctx, data, period, body in sorted(writable, key=lambda w: w[2].id)
            ]
            with hot_cursor() as cursor:
                cursor.execute(BATCH_EVENTS_SQL, batch_event_columns(rows, {}, now))
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
