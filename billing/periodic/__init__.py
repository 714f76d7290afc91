"""The periodic work of billing (docs/billing-cycle.md): rating periodically rated prices,
closing ended periods, finalizing due drafts, the failures of a run and the run that strings
them together (``billing_run``). It builds on ``billing.invoicing`` and
``billing.subscriptions``; nothing but entry points (tasks, management commands, admin
actions, scripts) imports it."""

from billing.periodic.close import in_shard, subscription_period_close, subscriptions_close_due
from billing.periodic.failures import RunFailure
from billing.periodic.finalize import finalize_due, invoices_finalize_due
from billing.periodic.rating import RatingReport, rating_run
from billing.periodic.run import RunReport, billing_run

__all__ = [
    "RatingReport",
    "RunFailure",
    "RunReport",
    "billing_run",
    "finalize_due",
    "in_shard",
    "invoices_finalize_due",
    "rating_run",
    "subscription_period_close",
    "subscriptions_close_due",
]
