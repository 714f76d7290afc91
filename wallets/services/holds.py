"""Holds (authorizations): reserve value in burn-down order, then capture (less than, equal to
or more than held), void, or expire. A hold leaves ``pending`` exactly once: every path locks
the wallet accounts in id order, then moves the hold with a conditional UPDATE on its status."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from core.db import columns, hot_cursor, instances
from core.errors import NotFound, ValidationFailed
from core.text import plain
from wallets.errors import HoldNotPending, InsufficientFunds, NegativeBalance
from wallets.models import Account, Grant, Hold, LedgerTransaction

from .amounts import check_amount
from .draws import Funding, eligible_grants, eligible_grants_by_asset, ledger_draw, plan_draw
from .idempotency import idempotency_claim, idempotency_store
from .ledger import Leg, accounts_lock, asset_get, ledger_post, system_account, wallet_get

MAX_HOLD_SECONDS = 7 * 24 * 3600  # a hold lives at most 7 days
DEFAULT_HOLD_SECONDS = 600  # and 10 minutes unless its caller says otherwise


@dataclass(frozen=True)
class HoldLeg:
    """Reserve (or, at capture, charge) ``amount`` of ``asset`` for ``meter``. ``partial``
    reserves what the grants cover instead of declining (units from allowances)."""

    asset: str
    amount: Decimal
    meter: str | None = None
    partial: bool = False


def ledger_hold(
    *,
    hold_id: str,
    wallet_id: int,
    accounts: dict[str, Account],
    legs: Sequence[HoldLeg],
    expires_at: datetime,
    now: datetime,
    metadata: dict | None = None,
    grants: dict[str, list[Grant]] | None = None,
) -> tuple[Hold, dict[str, Decimal]]:
    """Reserve ``legs`` under locked ``accounts``; returns the hold and what it reserved per
    asset. All or nothing for legs that are not partial. ``grants``: the legs' eligible
    grants per asset in burn-down order, already read under the locks (else read here).

    The statement is sent without waiting for its answer, so a caller inside a pipeline
    (``hot_pipeline``) can send its next statement in the same round trip; an id already
    taken by another hold fails it with the ``wallets_hold_pkey`` unique violation."""
    plans: list[tuple[HoldLeg, list[tuple[Grant, Decimal]]]] = []
    planned: dict[str, Decimal] = defaultdict(Decimal)  # reserved by earlier legs
    meters = {leg.meter for leg in legs}
    # one read of every leg's grants when the legs share a meter (an event's unit and price)
    shared = grants
    if shared is None and len(meters) == 1 and legs:
        shared = eligible_grants_by_asset(
            wallet_id=wallet_id, assets=[leg.asset for leg in legs], meter=legs[0].meter, now=now
        )
    for leg in legs:
        account = accounts[leg.asset]
        if not leg.partial and account.debt > 0:
            raise NegativeBalance(
                f"The wallet owes {plain(account.debt)} {leg.asset}; top it up first.",
                extra={"asset": leg.asset},
            )
        if shared is not None:
            leg_grants = shared[leg.asset]
        else:
            leg_grants = eligible_grants(
                wallet_id=wallet_id, asset=leg.asset, meter=leg.meter, now=now
            )
        for grant in leg_grants:
            grant.held += planned[grant.pk]
        plan = plan_draw(leg_grants, leg.amount)
        for grant, take in plan:
            planned[grant.pk] += take
        covered = sum((take for _, take in plan), Decimal(0))
        if not leg.partial and covered < leg.amount:
            raise InsufficientFunds(
                f"The wallet can reserve {plain(covered)} of {plain(leg.amount)} {leg.asset}.",
                extra={"asset": leg.asset, "available": covered},
            )
        plans.append((leg, plan))
    hold = Hold(
        id=hold_id,
        wallet_id=wallet_id,
        status=Hold.Status.PENDING,
        expires_at=expires_at,
        created_at=now,
        metadata=metadata or {},
    )
    reserved: dict[str, Decimal] = defaultdict(Decimal)
    per_grant: dict[str, tuple[Grant, Decimal]] = {}
    for leg, plan in plans:
        for grant, take in plan:
            prior = per_grant.get(grant.pk, (grant, Decimal(0)))[1]
            per_grant[grant.pk] = (grant, prior + take)
            reserved[leg.asset] += take
    grant_ids = list(per_grant)
    assets = sorted(reserved, key=lambda code: accounts[code].pk)
    # the hold, its allocations, the grants' and the accounts' held amounts: one statement
    with hot_cursor() as cursor:
        cursor.execute(
            HOLD_SQL,
            [
                hold_id,
                wallet_id,
                Hold.Status.PENDING,
                expires_at,
                now,
                Jsonb(hold.metadata),
                grant_ids,
                [per_grant[g][0].asset_id for g in grant_ids],
                [per_grant[g][1] for g in grant_ids],
                grant_ids,
                [per_grant[g][1] for g in grant_ids],
                [accounts[a].pk for a in assets],
                [reserved[a] for a in assets],
            ],
        )
    hold._state.adding = False
    hold._state.db = "default"
    for asset in assets:
        accounts[asset].held += reserved[asset]
    return hold, dict(reserved)


HOLD_SQL = """
WITH hold AS (
    INSERT INTO wallets_hold (id, wallet_id, status, expires_at, created_at, metadata)
    VALUES (%s, %s, %s, %s, %s, %s) RETURNING id
), allocations AS (
    INSERT INTO wallets_holdallocation (hold_id, grant_id, asset_id, amount)
    SELECT hold.id, a.grant_id, a.asset_id, a.amount FROM hold,
        unnest(%s::varchar[], %s::varchar[], %s::numeric[]) WITH ORDINALITY
            AS a(grant_id, asset_id, amount, n)
    ORDER BY a.n
    RETURNING 1
), grants AS (
    UPDATE wallets_grant g SET held = g.held + a.amount
    FROM unnest(%s::varchar[], %s::numeric[]) AS a(id, amount) WHERE g.id = a.id
    RETURNING 1
), accounts AS (
    UPDATE wallets_account c SET held = c.held + a.amount
    FROM unnest(%s::bigint[], %s::numeric[]) AS a(id, amount) WHERE c.id = a.id
    RETURNING 1
)
SELECT id FROM hold
"""


def hold_settle(
    *,
    hold: Hold,
    status: str,
    accounts: dict[str, Account],
    now: datetime,
    require_live: bool = True,
) -> dict[str, list[tuple[Grant, Decimal]]]:
    """Move ``hold`` out of pending, once, and give back what it reserved (the wallet's
    accounts in its assets must be locked): one statement. A hold past its expiry counts as
    expired unless ``require_live`` is off. Returns, per asset, the grants and amounts it
    had reserved, in the order it reserved them, so a capture can draw from them first."""
    with hot_cursor() as cursor:
        cursor.execute(SETTLE_SQL, settle_params(hold, status, now, require_live))
        rows = cursor.fetchall()
    return hold_settled(hold, status, now, rows, accounts)


def settle_params(hold: Hold, status: str, now: datetime, require_live: bool) -> list:
    return [status, now, hold.pk, not require_live, now, hold.wallet_id]


def hold_settled(
    hold: Hold,
    status: str,
    now: datetime,
    rows: Sequence[Sequence[Any]],
    accounts: dict[str, Account],
) -> dict[str, list[tuple[Grant, Decimal]]]:
    """What ``SETTLE_SQL`` returned (``HoldNotPending`` when it moved nothing), with the
    accounts' held amounts brought up to date in Python."""
    if not rows[0][0]:
        hold.refresh_from_db()
        state = hold.status
        if state == Hold.Status.PENDING:
            state = "expired"
        raise HoldNotPending(f"Hold {hold.pk} is {state}.", extra={"hold_status": state})
    hold.status, hold.resolved_at = status, now
    rows = [row for row in rows if row[1] is not None]
    released: dict[str, list[tuple[Grant, Decimal]]] = defaultdict(list)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    grants: dict[str, Grant] = {}  # one object per grant, however many allocations it has
    for (_, asset, amount, *_), grant in zip(
        rows, instances(Grant, [row[3:] for row in rows]), strict=True
    ):
        grant = grants.setdefault(grant.pk, grant)
        released[asset].append((grant, amount))
        totals[asset] += amount
    for asset, total in totals.items():
        if asset in accounts:
            accounts[asset].held -= total
    return released


# Move the hold out of pending (conditionally: at most once), then only if it moved give
# back what it reserved to its grants and the wallet's accounts. Returns whether it moved,
# then what it had reserved with the grants as they are afterwards, in reservation order.
SETTLE_SQL = f"""
WITH moved AS (
    UPDATE wallets_hold SET status = %s, resolved_at = %s
    WHERE id = %s
      -- a CASE, so the statement's one generic plan finds the hold by its primary key:
      -- "status = 'pending'" would let it scan the partial index of pending holds instead
      AND CASE WHEN status = 'pending' THEN %s OR expires_at > %s ELSE false END
    RETURNING id
), allocations AS (
    SELECT a.id, a.grant_id, a.asset_id, a.amount
    FROM wallets_holdallocation a JOIN moved ON a.hold_id = moved.id
), released AS (
    UPDATE wallets_grant g SET held = g.held - s.amount
    FROM (SELECT grant_id, SUM(amount) AS amount FROM allocations GROUP BY grant_id) AS s
    WHERE g.id = s.grant_id
    RETURNING {columns(Grant, "g")}
), accounts AS (
    UPDATE wallets_account c SET held = c.held - s.amount
    FROM (SELECT asset_id, SUM(amount) AS amount FROM allocations GROUP BY asset_id) AS s
    WHERE c.wallet_id = %s AND c.asset_id = s.asset_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved), a.asset_id, a.amount, {columns(Grant, "r")}
FROM (SELECT 1) AS one
LEFT JOIN (allocations a JOIN released r ON r.id = a.grant_id) ON true
ORDER BY a.id
"""  # noqa: S608 - column names only


def _hold_assets(hold_id: str) -> tuple[Hold, list[str]]:
    try:
        hold = Hold.objects.get(pk=hold_id)
    except Hold.DoesNotExist:
        raise NotFound(f"Unknown hold '{hold_id}'.") from None
    return hold, sorted(set(hold.allocations.values_list("asset_id", flat=True)))


def _check_legs(legs: Sequence[HoldLeg]) -> list[HoldLeg]:
    if not legs:
        raise ValidationFailed("Nothing to hold.", errors={"legs": ["At least one."]})
    checked = []
    for leg in legs:
        asset_get(leg.asset)
        checked.append(
            HoldLeg(leg.asset, check_amount(leg.amount, allow_zero=True), leg.meter, leg.partial)
        )
    return checked


def hold_create(
    *,
    wallet_id: int,
    hold_id: str,
    legs: Sequence[HoldLeg],
    expires_in: int = DEFAULT_HOLD_SECONDS,
    metadata: dict | None = None,
) -> Hold:
    """Reserve value for a usage about to happen. Idempotent by ``hold_id``."""
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not 0 < expires_in <= MAX_HOLD_SECONDS
    ):
        raise ValidationFailed(
            f"expires_in must be 1 to {MAX_HOLD_SECONDS} seconds.",
            errors={"expires_in": [f"1–{MAX_HOLD_SECONDS}."]},
        )
    checked = _check_legs(legs)
    now = timezone.now()
    request = {
        "wallet": wallet_id,
        "legs": [[leg.asset, leg.amount, leg.meter, leg.partial] for leg in checked],
        "expires_in": expires_in,
    }
    with transaction.atomic():
        slot = idempotency_claim(scope="wallets.hold", key=hold_id, request=request)
        if slot.replay:
            return Hold.objects.get(pk=slot.result["hold"])
        wallet_get(wallet_id)
        accounts = accounts_lock(wallet_id, [leg.asset for leg in checked])
        holds_release_expired(wallet_id=wallet_id, accounts=accounts, now=now)
        hold, _ = ledger_hold(
            hold_id=hold_id,
            wallet_id=wallet_id,
            accounts=accounts,
            legs=checked,
            expires_at=now + timedelta(seconds=expires_in),
            now=now,
            metadata=metadata,
        )
        idempotency_store(slot, result={"hold": hold.pk}, status_code=201)
    return hold


def hold_capture(
    *, hold_id: str, charges: Sequence[HoldLeg], reference: str = ""
) -> tuple[Hold, LedgerTransaction]:
    """Charge the actual amounts: drawn first from the grants the hold reserved, then in
    burn-down order, and beyond every grant as debt (the work is done). The rest of the
    hold is released. At most once."""
    checked = [HoldLeg(c.asset, check_amount(c.amount, allow_zero=True), c.meter) for c in charges]
    for leg in checked:
        asset_get(leg.asset)
    now = timezone.now()
    with transaction.atomic():
        hold, assets = _hold_assets(hold_id)
        accounts = accounts_lock(hold.wallet_id, set(assets) | {c.asset for c in checked})
        released = hold_settle(hold=hold, status=Hold.Status.CAPTURED, accounts=accounts, now=now)
        holds_release_expired(wallet_id=hold.wallet_id, accounts=accounts, now=now)
        fundings: list[Funding] = []
        revenue_legs: list[Leg] = []
        for leg in checked:
            got = ledger_draw(
                account=accounts[leg.asset],
                amount=leg.amount,
                meter=leg.meter,
                now=now,
                mode="overdraw",
                prefer=released.get(leg.asset, ()),
            )
            fundings.extend(got)
            if leg.amount:
                revenue_legs.append(
                    Leg(system_account(Account.System.REVENUE, leg.asset), leg.amount)
                )
        txn = ledger_post(
            kind=LedgerTransaction.Kind.CAPTURE,
            legs=[Leg(accounts[f.asset], -f.amount, f.grant_id) for f in fundings] + revenue_legs,
            wallet_id=hold.wallet_id,
            reference=reference or hold.pk,
            description=f"capture of hold {hold.pk}",
            metadata={"hold": hold.pk},
        )
        Hold.objects.filter(pk=hold.pk).update(capture_transaction=txn)
        hold.capture_transaction = txn
    return hold, txn


def hold_void(*, hold_id: str) -> Hold:
    """Release a pending hold without charging. Voiding a voided hold changes nothing."""
    now = timezone.now()
    with transaction.atomic():
        hold, assets = _hold_assets(hold_id)
        if hold.status == Hold.Status.VOIDED:
            return hold
        accounts = accounts_lock(hold.wallet_id, assets)
        hold_settle(hold=hold, status=Hold.Status.VOIDED, accounts=accounts, now=now)
    return hold


def hold_expire(*, hold_id: str, now: datetime | None = None) -> Hold | None:
    """Expire one hold past its expiry; None when it is not due or not pending."""
    now = now or timezone.now()
    with transaction.atomic():
        hold, assets = _hold_assets(hold_id)
        if hold.status != Hold.Status.PENDING or hold.expires_at > now:
            return None
        accounts = accounts_lock(hold.wallet_id, assets)
        if not _settle_expired(hold, accounts, now):
            return None
    return hold


def _settle_expired(hold: Hold, accounts: dict[str, Account], now: datetime) -> bool:
    """Expire ``hold`` under the caller's locks; False when it left pending meanwhile (the
    sweep, a capture or a void)."""
    try:
        hold_settle(
            hold=hold, status=Hold.Status.EXPIRED, accounts=accounts, now=now, require_live=False
        )
    except HoldNotPending:
        return False
    return True


def holds_expire_due(*, now: datetime | None = None, batch: int = 500) -> list[str]:
    """Expire every pending hold past its expiry. Safe twice or concurrently."""
    now = now or timezone.now()
    done: list[str] = []
    last = ""
    while True:
        ids = list(
            Hold.objects.filter(status=Hold.Status.PENDING, expires_at__lte=now, pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return done
        for hold_id in ids:
            if hold_expire(hold_id=hold_id, now=now) is not None:
                done.append(hold_id)
        last = ids[-1]


def holds_release_expired(*, wallet_id: int, accounts: dict[str, Account], now: datetime) -> int:
    """Expire, inside the caller's transaction, the wallet's holds that passed their expiry
    and reserve only assets among the locked ``accounts``: an expired hold never blocks a
    charge, even before the periodic sweep reaches it."""
    if not any(account.held > 0 for account in accounts.values()):
        return 0
    count = 0
    due = Hold.objects.filter(
        wallet_id=wallet_id, status=Hold.Status.PENDING, expires_at__lte=now
    ).order_by("pk")
    for hold in due:
        assets = set(hold.allocations.values_list("asset_id", flat=True))
        if not assets <= set(accounts):
            continue  # reserves an asset whose account this transaction has not locked
        if _settle_expired(hold, accounts, now):
            count += 1
    return count
