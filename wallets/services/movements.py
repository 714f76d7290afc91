"""Services that take value out of wallets and move it: draws, refunds, staff adjustments
and transfers. Each public service runs in one transaction with its idempotency key
(docs/charging.md, docs/quality.md 1–8)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import cast

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.errors import BillfoldError, NotFound, ValidationFailed
from wallets.models import Account, Grant, LedgerTransaction

from .amounts import check_amount, to_decimal
from .draws import Funding, funded, ledger_draw
from .grants import ledger_grant
from .holds import holds_release_expired
from .idempotency import idempotency_claim, idempotency_store
from .ledger import Leg, accounts_lock, asset_get, ledger_post, system_account, wallet_get


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
