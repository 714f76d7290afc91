"""Services that put value into wallets and take it out: grants, draws, refunds, voids,
expiry, staff adjustments and transfers. Each public service runs in one transaction with its
idempotency key (docs/charging.md, docs/quality.md 1–8)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import cast

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from djmoney.money import Money

from core.errors import BillfoldError, NotFound, ValidationFailed
from core.ids import id_problems
from core.text import plain
from wallets.models import Account, Asset, Grant, LedgerTransaction

from .amounts import check_amount, to_decimal
from .draws import Funding, funded, ledger_draw
from .holds import holds_release_expired
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


class AlreadyReversed(BillfoldError):
    code = "already_reversed"
    status = 409
    title = "Already reversed"


@dataclass
class DrawResult:
    transaction_id: int
    asset: str
    amount: Decimal
    funding: list[Funding] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "transaction": self.transaction_id,
            "asset": self.asset,
            "amount": format(self.amount, "f"),
            "funding": [f.as_json() for f in self.funding],
        }

    @classmethod
    def from_json(cls, data: dict) -> DrawResult:
        return cls(
            transaction_id=data["transaction"],
            asset=data["asset"],
            amount=Decimal(data["amount"]),
            funding=[
                Funding(f["grant"], f["asset"], Decimal(f["amount"])) for f in data["funding"]
            ],
        )


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


# --- draws, refunds, adjustments, transfers ------------------------------------------------------


def wallet_draw(
    *,
    wallet_id: int,
    asset: str,
    amount: object,
    idempotency_key: str,
    meter: str | None = None,
    reference: str = "",
    description: str = "",
) -> DrawResult:
    """Debit ``amount`` for a charge, all or nothing, across grants in burn-down order; the
    value goes to revenue. Declines with ``InsufficientFunds`` or ``NegativeBalance``."""
    value = check_amount(amount)
    request = {"wallet": wallet_id, "asset": asset, "amount": value, "meter": meter}
    now = timezone.now()
    with transaction.atomic():
        slot = idempotency_claim(scope="wallets.draw", key=idempotency_key, request=request)
        if slot.replay:
            return DrawResult.from_json(slot.result)
        asset_get(asset)
        wallet_get(wallet_id)
        accounts = accounts_lock(wallet_id, [asset])
        holds_release_expired(wallet_id=wallet_id, accounts=accounts, now=now)
        account = accounts[asset]
        fundings = ledger_draw(account=account, amount=value, meter=meter, now=now)
        revenue = system_account(Account.System.REVENUE, asset)
        txn = ledger_post(
            kind=LedgerTransaction.Kind.DRAW,
            legs=[Leg(account, -f.amount, f.grant_id) for f in fundings] + [Leg(revenue, value)],
            wallet_id=wallet_id,
            reference=reference or idempotency_key,
            description=description or "charge",
            metadata={"meter": meter} if meter else {},
        )
        result = DrawResult(txn.pk, asset, value, fundings)
        idempotency_store(slot, result=result.as_json())
    return result


def ledger_refund(
    *, txn: LedgerTransaction, now: datetime, description: str = ""
) -> LedgerTransaction:
    """Post the reversal of a charge ``txn`` (a draw or a capture), with its wallet accounts
    locked by the caller. Value goes back to the grants it came from while they are active
    and unexpired; what came from a grant that has lapsed goes to the expiry account; a
    charge that made debt lowers the debt — and what of that debt a top-up has paid since
    comes back as a new paid grant."""
    legs: list[Leg] = []
    restore: list[tuple[str, Decimal]] = []
    entries = list(txn.entries.select_related("account", "grant").order_by("id"))
    debt_left: dict[int, Decimal] = {}
    for entry in entries:
        account = entry.account
        if account.wallet_id is None:
            # the counter side (revenue): take back what the charge put there
            legs.append(Leg(account, -entry.amount))
            continue
        if entry.amount >= 0:
            continue
        value = -entry.amount
        grant = entry.grant
        if grant is None:
            owed = debt_left.setdefault(account.pk, account.debt)
            lower = min(value, owed)
            debt_left[account.pk] = owed - lower
            if lower:
                legs.append(Leg(account, lower, None))  # lowers the debt
            if value > lower:
                back = Grant(
                    wallet_id=account.wallet_id,
                    asset_id=account.asset_id,
                    purpose=Grant.Purpose.PAID,
                    amount=value - lower,
                    remaining=value - lower,
                    reference=f"refund of transaction {txn.pk}",
                    created_at=now,
                )
                back.save(force_insert=True)
                legs.append(Leg(account, value - lower, back.pk))
        elif grant.status == Grant.Status.ACTIVE and (
            grant.expires_at is None or grant.expires_at > now
        ):
            legs.append(Leg(account, value, grant.pk))
            restore.append((grant.pk, value))
        else:
            legs.append(Leg(system_account(Account.System.EXPIRY, account.asset_id), value))
    for grant_id, value in sorted(restore):
        Grant.objects.filter(pk=grant_id).update(remaining=F("remaining") + value)
    return ledger_post(
        kind=LedgerTransaction.Kind.REFUND,
        legs=legs,
        wallet_id=txn.wallet_id,
        reference=txn.reference,
        description=description or f"reversal of transaction {txn.pk}",
        reverses=txn,
        metadata={"reverses": txn.pk},
    )


def wallet_refund(*, transaction_id: int, idempotency_key: str, reason: str = "") -> DrawResult:
    """Reverse a draw or capture exactly once (a second call with another key is refused)."""
    now = timezone.now()
    with transaction.atomic():
        slot = idempotency_claim(
            scope="wallets.refund", key=idempotency_key, request={"transaction": transaction_id}
        )
        if slot.replay:
            return DrawResult.from_json(slot.result)
        try:
            txn = LedgerTransaction.objects.get(pk=transaction_id)
        except LedgerTransaction.DoesNotExist:
            raise NotFound(f"Unknown transaction {transaction_id}.") from None
        if txn.kind not in (LedgerTransaction.Kind.DRAW, LedgerTransaction.Kind.CAPTURE):
            raise ValidationFailed("Only charges (draws and captures) can be refunded.")
        assets = set(
            txn.entries.filter(account__wallet__isnull=False).values_list("asset_id", flat=True)
        )
        accounts_lock(cast(int, txn.wallet_id), assets)  # a charge: it has a wallet
        if LedgerTransaction.objects.filter(reverses=txn).exists():
            raise AlreadyReversed(f"Transaction {txn.pk} was already reversed.")
        refund = ledger_refund(txn=txn, now=now, description=reason)
        back = [
            Funding(e.grant_id, e.asset_id, e.amount)
            for e in refund.entries.filter(account__wallet__isnull=False, amount__gt=0)
        ]
        result = DrawResult(refund.pk, "", funded(back), back)
        if len(assets) == 1:
            result.asset = next(iter(assets))
        idempotency_store(slot, result=result.as_json())
    return result


def wallet_adjust(
    *,
    wallet_id: int,
    asset: str,
    amount: object,
    reason: str,
    idempotency_key: str,
    actor: str = "",
) -> LedgerTransaction:
    """A staff correction with a required reason. A positive amount is a grant (purpose
    promotional, from the adjustments account); a negative one draws from the wallet's
    grants in burn-down order, all or nothing."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("An adjustment needs a reason.", errors={"reason": ["Required."]})
    signed = to_decimal(amount)
    negative = signed < 0
    asset_row = asset_get(asset)
    number = check_amount(abs(signed), max_places=12 if negative else asset_row.decimals)
    now = timezone.now()
    request = {
        "wallet": wallet_id,
        "asset": asset,
        "amount": number,
        "negative": negative,
        "reason": reason,
    }
    with transaction.atomic():
        slot = idempotency_claim(scope="wallets.adjust", key=idempotency_key, request=request)
        if slot.replay:
            return LedgerTransaction.objects.get(pk=slot.result["transaction"])
        wallet_get(wallet_id)
        accounts = accounts_lock(wallet_id, [asset])
        account = accounts[asset]
        counter = system_account(Account.System.ADJUSTMENTS, asset)
        note = f"adjustment by {actor or 'staff'}: {reason}"
        if negative:
            holds_release_expired(wallet_id=wallet_id, accounts=accounts, now=now)
            fundings = ledger_draw(account=account, amount=number, meter=None, now=now)
            txn = ledger_post(
                kind=LedgerTransaction.Kind.ADJUST,
                legs=[Leg(account, -f.amount, f.grant_id) for f in fundings]
                + [Leg(counter, number)],
                wallet_id=wallet_id,
                reference=idempotency_key,
                description=note,
                metadata={"reason": reason, "actor": actor},
            )
        else:
            _, txn = ledger_grant(
                account=account,
                amount=number,
                purpose=Grant.Purpose.PROMOTIONAL,
                reference=reason,
                now=now,
                description=note,
                counter=counter,
                metadata={"reason": reason, "actor": actor, "adjustment": True},
            )
            LedgerTransaction.objects.filter(pk=txn.pk).update(kind=LedgerTransaction.Kind.ADJUST)
            txn.kind = LedgerTransaction.Kind.ADJUST
        idempotency_store(slot, result={"transaction": txn.pk})
    return txn


def wallet_transfer(
    *,
    from_wallet_id: int,
    to_wallet_id: int,
    asset: str,
    amount: object,
    idempotency_key: str,
    reference: str = "",
) -> Grant:
    """Move value between wallets: an all-or-nothing draw from one and a paid grant in the
    other, in one transaction. Both accounts are locked in id order, so transfers in
    opposite directions never deadlock."""
    if from_wallet_id == to_wallet_id:
        raise ValidationFailed("A transfer needs two different wallets.")
    asset_row = asset_get(asset)
    value = check_amount(amount, max_places=asset_row.decimals)
    now = timezone.now()
    request = {"from": from_wallet_id, "to": to_wallet_id, "asset": asset, "amount": value}
    with transaction.atomic():
        slot = idempotency_claim(scope="wallets.transfer", key=idempotency_key, request=request)
        if slot.replay:
            return Grant.objects.get(pk=slot.result["grant"])
        wallet_get(from_wallet_id)
        wallet_get(to_wallet_id)
        Account.objects.bulk_create(
            [Account(wallet_id=w, asset_id=asset) for w in sorted((from_wallet_id, to_wallet_id))],
            ignore_conflicts=True,
        )
        locked = list(
            Account.objects.select_for_update()
            .filter(wallet_id__in=[from_wallet_id, to_wallet_id], asset_id=asset)
            .order_by("id")
        )
        source = next(a for a in locked if a.wallet_id == from_wallet_id)
        target = next(a for a in locked if a.wallet_id == to_wallet_id)
        holds_release_expired(wallet_id=from_wallet_id, accounts={asset: source}, now=now)
        fundings = ledger_draw(account=source, amount=value, meter=None, now=now)
        settle = min(target.debt, value)  # like every unscoped top-up, it pays debt first
        grant = Grant(
            wallet_id=to_wallet_id,
            asset_id=asset,
            purpose=Grant.Purpose.PAID,
            amount=value,
            remaining=value - settle,
            reference=reference or f"transfer from wallet {from_wallet_id}",
            created_at=now,
        )
        grant.save(force_insert=True)
        settled = [Leg(target, -settle, grant.pk), Leg(target, settle, None)] if settle else []
        ledger_post(
            kind=LedgerTransaction.Kind.GRANT,
            legs=[Leg(source, -f.amount, f.grant_id) for f in fundings]
            + [Leg(target, value, grant.pk), *settled],
            wallet_id=to_wallet_id,
            reference=reference or idempotency_key,
            description=f"transfer from wallet {from_wallet_id}",
            metadata={"transfer_from": from_wallet_id, "grant": grant.pk},
            counterparty_wallet_id=from_wallet_id,  # so the sender's ledger lists it too
        )
        idempotency_store(slot, result={"grant": grant.pk})
    return grant
