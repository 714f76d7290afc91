"""Subscriptions: a customer on a plan version, with its current period and the allowance
grants of that period, and their lifecycle: seat changes, plan changes, cancellation and the
end of a trial (docs/subscriptions.md; docs/charging.md example B).

Every lifecycle service runs in one transaction that first locks the subscription row
(``SELECT … FOR UPDATE``), so concurrent changes of one subscription serialize. Money that a
change makes due now (a prorated seat increase, the difference of a plan change, the credit of
an immediate cancellation) is recorded as ``ChargeItem`` rows of kind ``proration``, exact at 12
decimal places; the period close of a later issue moves them onto the invoice, which rounds each
line once. Reads are in ``billing.selectors.subscriptions``; the invoices a subscription gets
are ``billing.invoicing``'s, and its period close is ``billing.periodic``'s.
"""

from billing.subscriptions.allowances import subscription_allowances_issue
from billing.subscriptions.cancel import subscription_cancel
from billing.subscriptions.changes import subscription_plan_change, subscription_seats_change
from billing.subscriptions.checks import MAX_SEATS, NOW, PERIOD_END, WHEN
from billing.subscriptions.create import subscription_create
from billing.subscriptions.errors import (
    PeriodNotCurrent,
    SubscriptionCanceled,
    SubscriptionEnded,
    SubscriptionExists,
)
from billing.subscriptions.trials import subscription_trial_end_due

__all__ = [
    "MAX_SEATS",
    "NOW",
    "PERIOD_END",
    "WHEN",
    "PeriodNotCurrent",
    "SubscriptionCanceled",
    "SubscriptionEnded",
    "SubscriptionExists",
    "subscription_allowances_issue",
    "subscription_cancel",
    "subscription_create",
    "subscription_plan_change",
    "subscription_seats_change",
    "subscription_trial_end_due",
]
