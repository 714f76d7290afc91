"""The errors of subscription changes (409s of the API)."""

from __future__ import annotations

from core.errors import BillfoldError


class SubscriptionExists(BillfoldError):
    code = "subscription_exists"
    status = 409
    title = "The customer already has a live subscription"


class SubscriptionEnded(BillfoldError):
    code = "subscription_ended"
    status = 409
    title = "The subscription has ended"


class SubscriptionCanceled(BillfoldError):
    code = "subscription_canceled"
    status = 409
    title = "The subscription is canceled and ends at period end"


class PeriodNotCurrent(BillfoldError):
    code = "period_not_current"
    status = 409
    title = "The subscription's current period is over and not closed yet"
