"""The wallets app's services: everything that writes value. Other apps call these (and the
``ledger_*`` primitives inside their own transactions), never the models' write paths."""

from .amounts import check_amount, to_decimal
from .draws import Funding, burn_down_key, eligible_grants, ledger_draw
from .grants import (
    GrantHeld,
    GrantNotActive,
    grant_create,
    grant_expire,
    grant_void,
    grants_expire_due,
    ledger_grant,
)
from .holds import (
    HoldLeg,
    hold_capture,
    hold_create,
    hold_expire,
    hold_settle,
    hold_void,
    holds_expire_due,
    holds_release_expired,
    ledger_hold,
)
from .idempotency import idempotency_claim, idempotency_store, request_hash
from .ledger import Leg, accounts_lock, asset_get, ledger_post, system_account, wallet_create
from .movements import (
    AlreadyReversed,
    DrawResult,
    ledger_refund,
    wallet_adjust,
    wallet_draw,
    wallet_refund,
    wallet_transfer,
)

__all__ = [
    "AlreadyReversed",
    "DrawResult",
    "Funding",
    "GrantHeld",
    "GrantNotActive",
    "HoldLeg",
    "Leg",
    "accounts_lock",
    "asset_get",
    "burn_down_key",
    "check_amount",
    "eligible_grants",
    "grant_create",
    "grant_expire",
    "grant_void",
    "grants_expire_due",
    "hold_capture",
    "hold_create",
    "hold_expire",
    "hold_settle",
    "hold_void",
    "holds_expire_due",
    "holds_release_expired",
    "idempotency_claim",
    "idempotency_store",
    "ledger_draw",
    "ledger_grant",
    "ledger_hold",
    "ledger_post",
    "ledger_refund",
    "request_hash",
    "system_account",
    "to_decimal",
    "wallet_adjust",
    "wallet_create",
    "wallet_draw",
    "wallet_refund",
    "wallet_transfer",
]
