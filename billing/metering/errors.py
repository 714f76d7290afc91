"""The errors the charge path raises: ``Unprocessable`` (422, nothing written) for
an event that cannot be charged, and the signals between its steps."""

from __future__ import annotations

from core.errors import BillfoldError


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


class KeyRefused(Exception):
    """The caller's API key is unknown, revoked or lacks the ``events`` scope: nothing was
    written, and nothing read is answered."""


class EventNotAccepted(BillfoldError):
    code = "event_not_accepted"
    status = 409
    title = "Only accepted events can be reversed"


class Duplicate(Exception):
    """A concurrent request with the same event id committed first."""


class BatchConflict(Exception):
    """Event ids of a batch a concurrent request wrote first."""

    def __init__(self, ids: set[str]):
        self.ids = ids
