"""Billfold's domain errors. Each has a stable ``code`` (docs/api.md Conventions) and an HTTP
status; the API maps them once to problem details, the admin once to messages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def plain_decimals(value: Any) -> Any:
    """``value`` with every Decimal in it as plain decimal text (``format(d, "f")``: never
    ``"0E-12"``, as ``str`` writes a zero at 12 places), in nested dicts and lists too."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {key: plain_decimals(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_decimals(item) for item in value]
    return value


class BillfoldError(Exception):
    code = "error"
    status = 400
    title = "Request failed"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.errors = errors or {}
        # the members an answer adds (``spent``, ``available``...): amounts as plain text
        self.extra = plain_decimals(extra) if extra else {}
        super().__init__(self.detail)


class ValidationFailed(BillfoldError):
    code = "invalid"
    status = 400
    title = "Invalid request"


class NotFound(BillfoldError):
    code = "not_found"
    status = 404
    title = "Not found"


class IdempotencyConflict(BillfoldError):
    code = "idempotency_conflict"
    status = 409
    title = "Idempotency key reused with a different request"


class AmountTooLarge(BillfoldError):
    """An amount, or a running total it adds to, would reach 10^18: beyond what Billfold
    records and invoices. Nothing changed."""

    code = "amount_too_large"
    status = 422
    title = "The amount is too large"


class Declined(BillfoldError):
    """A charge that was refused; nothing changed."""

    status = 402
    title = "Declined"


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
