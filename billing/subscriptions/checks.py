"""What every change of a subscription checks first, under the lock of its row: that it has
not ended, and for an immediate change that its current period is not over."""

from __future__ import annotations

from datetime import datetime

from billing.models import Subscription
from billing.subscriptions.errors import PeriodNotCurrent, SubscriptionEnded
from core.errors import ValidationFailed

MAX_SEATS = 1_000_000
WHEN = ("period_end", "now")
PERIOD_END, NOW = WHEN


def subscription_lock(subscription: Subscription) -> Subscription:
    """The subscription's row, locked until the end of the transaction, read afresh."""
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer", "plan_version__plan")
        .get(pk=subscription.pk)
    )


def check_not_ended(subscription: Subscription) -> None:
    if subscription.status == Subscription.Status.ENDED:
        raise SubscriptionEnded(f"Subscription {subscription.pk} has ended.")


def check_when(when: object) -> str:
    if not isinstance(when, str) or when not in WHEN:
        raise ValidationFailed(
            "Invalid when.", errors={"when": ["One of " + ", ".join(WHEN) + "."]}
        )
    return when


def check_current(subscription: Subscription, at: datetime) -> None:
    """Immediate changes need ``at`` inside the current period: a period whose end has passed
    is closed (and the next one opened) by the periodic work first."""
    if at >= subscription.current_period_end:
        raise PeriodNotCurrent(
            f"The current period of subscription {subscription.pk} ended at "
            f"{subscription.current_period_end.isoformat()} and has not been closed yet; "
            "retry once the periodic work has closed it."
        )
