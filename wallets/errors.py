"""The wallets' own errors: a draw the funds do not cover, a hold already settled. The
errors every app shares (``NotFound``, ``ValidationFailed``, ``Declined``...) are
``core.errors``."""

from __future__ import annotations

from core.errors import BillfoldError, Declined


class InsufficientFunds(Declined):
    code = "insufficient_funds"
    title = "Insufficient funds"


class NegativeBalance(Declined):
    code = "negative_balance"
    title = "The wallet has a negative balance"


class HoldNotPending(BillfoldError):
    code = "hold_not_pending"
    status = 409
    title = "The hold is not pending"
