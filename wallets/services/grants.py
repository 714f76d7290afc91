"""Services that put value into wallets and close it: grants, voids and expiry. Each public
service runs in one transaction with its idempotency key (docs/charging.md, docs/quality.md 1–8)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import cast

from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from core.errors import BillfoldError, NotFound, ValidationFailed
from core.ids import id_problems
from core.text import plain
from wallets.models import Account, Asset, Grant, LedgerTransaction

from .amounts import check_amount
from .idempotency import idempotency_claim, idempotency_store
from .ledger import Leg, accounts_lock, asset_get, ledger_post, system_account, wallet_get

MAX_PRIORITY = 1_000_000
SOURCE_ACCOUNT: dict[str, Account.System] = {
    Grant.Purpose.PAID: Account.System.RECEIVABLES,
    Grant.Purpose.PROMOTIONAL: Account.System.PROMOTIONAL,
    Grant.Purpose.ALLOWANCE: Account.System.ALLOWANCE,
}


class GrantNotActive(BillfoldError):
    code = "grant_not_active"
    status = 409
    title = "The grant is not active"


class GrantHeld(BillfoldError):
    code = "grant_held"
    status = 409
    title = "Part of the grant is reserved by open holds"


# --- grants -------------------------------------------------------------------------------------


def _check_grant_fields(
    *,
    asset: Asset,
    amount: object,
    purpose: str,
    priority: object,
    expires_at: datetime | None,
    meters: Sequence[str] | None,
    now: datetime,
) -> tuple[Decimal, int, list[str] | None]:
    errors: dict[str, list[str]] = {}
    if purpose not in Grant.Purpose.values:
        errors["purpose"] = [f"One of {', '.join(Grant.Purpose.values)}."]
    if isinstance(priority, bool) or not isinstance(priority, int):
        errors["priority"] = ["An integer."]
    elif not 0 <= priority <= MAX_PRIORITY:
        errors["priority"] = [f"Between 0 and {MAX_PRIORITY}."]
    if expires_at is not None and (timezone.is_naive(expires_at) or expires_at <= now):
        errors["expires_at"] = ["An aware time in the future."]
    scope = None
    if meters is not None:
        if isinstance(meters, str) or not all(isinstance(m, str) and m.strip() for m in meters):
            errors["meters"] = ["A list of meter codes."]
        else:
            scope = sorted({m.strip() for m in meters}) or None
    if errors:
        raise ValidationFailed("Invalid grant.", errors=errors)
    value = check_amount(amount, max_places=asset.decimals)
    return value, cast(int, priority), scope  # an int: checked above


def ledger_grant(
    *,
    account: Account,
    amount: Decimal,
    purpose: str,
    priority: int = 10,
    expires_at: datetime | None = None,
    meters: list[str] | None = None,
    cost: Money | None = None,
    reference: str = "",
    grant_id: str | None = None,
    source: str | None = None,
    metadata: dict | None = None,
    now: datetime,
    description: str = "",
    counter: Account | None = None,
) -> tuple[Grant, LedgerTransaction]:
    """Create a grant and post it, under the lock of ``account`` (checked inputs only).

    An unscoped grant first pays off any debt of the account (what a capture left unpaid)."""
    # The Django plugin types `cost` as a DecimalField's value; django-money's field takes Money.
    grant = Grant(  # type: ignore[misc]
        wallet_id=cast(int, account.wallet_id),  # a wallet account: it has a wallet
        asset_id=account.asset_id,
        purpose=purpose,
        priority=priority,
        amount=amount,
        remaining=amount,
        expires_at=expires_at,
        meters=meters,
        cost=cost,
        reference=reference[:255],
        source=source,
        metadata=metadata or {},
        created_at=now,
    )
    if grant_id:
        grant.pk = grant_id
    settle = min(account.debt, amount) if (not meters and purpose != "allowance") else Decimal(0)
    grant.remaining = amount - settle
    grant.save(force_insert=True)
    counter = counter or system_account(SOURCE_ACCOUNT[purpose], account.asset_id)
    legs = [Leg(counter, -amount), Leg(account, amount, grant.pk)]
    if settle:
        legs += [Leg(account, -settle, grant.pk), Leg(account, settle, None)]
    txn = ledger_post(
        kind=LedgerTransaction.Kind.GRANT,
        legs=legs,
        wallet_id=account.wallet_id,
        reference=reference or grant.pk,
        description=description or f"{purpose} grant {grant.pk}",
        metadata={"grant": grant.pk, "settled_debt": str(settle)}
        if settle
        else {"grant": grant.pk},
    )
    return grant, txn


def grant_create(
    *,
    wallet_id: int,
    asset: str,
    amount: object,
    purpose: str,
    priority: int = 10,
    expires_at: datetime | None = None,
    meters: Sequence[str] | None = None,
    cost: Money | None = None,
    reference: str = "",
    grant_id: str | None = None,
    idempotency_key: str | None = None,
    source: str | None = None,
    metadata: dict | None = None,
) -> Grant:
    """Put ``amount`` of ``asset`` into a wallet (top-up, promotional credit, allowance).

    The grant id (or else ``idempotency_key``) makes it idempotent: the same request again
    returns the same grant; the same id with another request is an ``IdempotencyConflict``."""
    now = timezone.now()
    asset_row = asset_get(asset)
    value, priority, scope = _check_grant_fields(
        asset=asset_row,
        amount=amount,
        purpose=purpose,
        priority=priority,
        expires_at=expires_at,
        meters=meters,
        now=now,
    )
    if grant_id is not None and (not isinstance(grant_id, str) or not 0 < len(grant_id) <= 255):
        raise ValidationFailed("Invalid grant id.", errors={"id": ["1–255 characters."]})
    if grant_id is not None and (problems := id_problems(grant_id, slash=True)):
        raise ValidationFailed("Invalid grant id.", errors={"id": problems})
    if cost is not None:  # money in a currency: at most the currency's places
        check_amount(
            cost.amount,
            field="cost.amount",
            allow_zero=True,
            max_places=asset_get(str(cost.currency)).decimals,
        )
    key = grant_id or idempotency_key
    request = {
        "wallet": wallet_id,
        "asset": asset,
        "amount": value,
        "purpose": purpose,
        "priority": priority,
        "expires_at": expires_at,
        "meters": scope,
        "cost": [str(cost.amount), str(cost.currency)] if cost is not None else None,
        "reference": reference,
    }
    with transaction.atomic():
        if key:
            slot = idempotency_claim(scope="wallets.grant", key=key, request=request)
            if slot.replay:
                return Grant.objects.get(pk=slot.result["grant"])
        wallet_get(wallet_id)
        if grant_id and Grant.objects.filter(pk=grant_id).exists():
            raise ValidationFailed("A grant with this id exists.", errors={"id": ["Taken."]})
        account = accounts_lock(wallet_id, [asset])[asset]
        grant, _ = ledger_grant(
            account=account,
            amount=value,
            purpose=purpose,
            priority=priority,
            expires_at=expires_at,
            meters=scope,
            cost=cost,
            reference=reference,
            grant_id=grant_id,
            source=source,
            metadata=metadata,
            now=now,
        )
        if key:
            idempotency_store(slot, result={"grant": grant.pk}, status_code=201)
    return grant


def _lock_grant(grant_id: str) -> tuple[Grant, Account]:
    try:
        grant = Grant.objects.get(pk=grant_id)
    except Grant.DoesNotExist:
        raise NotFound(f"Unknown grant '{grant_id}'.") from None
    account = accounts_lock(grant.wallet_id, [grant.asset_id])[grant.asset_id]
    grant.refresh_from_db()  # under the account lock now
    return grant, account


def _close_grant(
    *,
    grant: Grant,
    account: Account,
    kind: str,
    status: str,
    counter: Account,
    now: datetime,
    note: str,
) -> LedgerTransaction | None:
    amount = grant.remaining
    Grant.objects.filter(pk=grant.pk).update(remaining=0, status=status, closed_at=now)
    grant.remaining, grant.status, grant.closed_at = Decimal(0), status, now
    if not amount:
        return None
    return ledger_post(
        kind=kind,
        legs=[Leg(account, -amount, grant.pk), Leg(counter, amount)],
        wallet_id=grant.wallet_id,
        reference=grant.pk,
        description=note,
        metadata={"grant": grant.pk},
    )


def grant_void(*, grant_id: str, reason: str = "") -> Grant:
    """Remove what remains of a grant (back to where it came from). Voiding a voided grant
    changes nothing; a grant reserved by open holds cannot be voided until they resolve."""
    now = timezone.now()
    with transaction.atomic():
        grant, account = _lock_grant(grant_id)
        if grant.status == Grant.Status.VOIDED:
            return grant
        if grant.status != Grant.Status.ACTIVE:
            raise GrantNotActive(f"Grant {grant.pk} is {grant.status}.")
        if grant.held > 0:
            raise GrantHeld(
                f"{plain(grant.held)} {grant.asset_id} of grant {grant.pk} is held by open "
                "holds; capture or void them first."
            )
        counter = system_account(SOURCE_ACCOUNT[grant.purpose], grant.asset_id)
        _close_grant(
            grant=grant,
            account=account,
            kind=LedgerTransaction.Kind.VOID,
            status=Grant.Status.VOIDED,
            counter=counter,
            now=now,
            note=f"void {grant.pk}" + (f": {reason}" if reason else ""),
        )
    return grant


def grant_expire(*, grant_id: str, now: datetime | None = None) -> Grant | None:
    """Expire one grant whose time has come: what remains goes to the expiry account. Returns
    None when there was nothing to do (not due, already closed, or still held)."""
    now = now or timezone.now()
    with transaction.atomic():
        grant, account = _lock_grant(grant_id)
        if (
            grant.status != Grant.Status.ACTIVE
            or grant.expires_at is None
            or grant.expires_at > now
            or grant.held > 0
        ):
            return None
        _close_grant(
            grant=grant,
            account=account,
            kind=LedgerTransaction.Kind.EXPIRE,
            status=Grant.Status.EXPIRED,
            counter=system_account(Account.System.EXPIRY, grant.asset_id),
            now=now,
            note=f"expiry of {grant.pk}",
        )
    return grant


def grants_expire_due(*, now: datetime | None = None, batch: int = 500) -> list[str]:
    """Expire every grant past its expiry (grants still held wait for their holds). Safe to
    run twice or concurrently: each grant is closed under its account lock, once."""
    now = now or timezone.now()
    expired: list[str] = []
    last = ""
    while True:
        ids = list(
            Grant.objects.filter(
                status=Grant.Status.ACTIVE, expires_at__lte=now, held=0, pk__gt=last
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return expired
        for grant_id in ids:
            if grant_expire(grant_id=grant_id, now=now) is not None:
                expired.append(grant_id)
        last = ids[-1]
