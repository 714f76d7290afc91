"""The errors every app raises. Each has a stable ``code`` (docs/api.md Conventions) and an
HTTP status; the API maps them once to problem details, the admin once to messages. An app's
own errors subclass these (``wallets.errors``, the billing services' conflicts)."""

from __future__ import annotations

from typing import Any

from core.text import plain_decimals


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
