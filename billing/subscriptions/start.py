"""How far a new subscription's start may lie from now (docs/subscriptions.md, "Creating a
subscription" and "Starting further back").

- Ahead: at most ``MAX_FUTURE_START``.
- Back: at most ``SUBSCRIPTION_MAX_BACKDATE_PERIODS`` billing periods of the plan (setting,
  default one); the periods since are invoiced as they close.
- Further back only with ``backdate``, and never more than ``MAX_BACKDATE_YEARS``; with
  ``invoice_missed_periods`` as well, at most ``MAX_MISSED_PERIODS`` periods are invoiced.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from plans.periods import add_intervals

MAX_FUTURE_START = timedelta(days=366)
MAX_BACKDATE_YEARS = 10  # the earliest start, even with backdate
MAX_MISSED_PERIODS = 120  # the most periods a backdated subscription has invoiced at once


def subscription_start_errors(
    *,
    start: datetime,
    now: datetime,
    interval: str,
    backdate: object,
    invoice_missed_periods: object,
) -> dict[str, list[str]]:
    """What is wrong with a new subscription's start and its backdating flags, by field
    (empty when nothing is)."""
    errors: dict[str, list[str]] = {}
    for name, value in (("backdate", backdate), ("invoice_missed_periods", invoice_missed_periods)):
        if not isinstance(value, bool):
            errors[name] = ["true or false."]
    if errors:
        return errors
    if timezone.is_naive(start):
        return {"start": ["A time with an offset, e.g. 2026-01-05T10:00:00Z."]}
    if start > now + MAX_FUTURE_START:
        return {"start": ["At most a year ahead."]}
    if invoice_missed_periods and not backdate:
        errors["invoice_missed_periods"] = ['Only with "backdate": true.']
    if backdate and start >= now:
        errors["backdate"] = ["Only for a start in the past."]
    if errors:
        return errors
    if not backdate:
        periods = settings.BILLFOLD["SUBSCRIPTION_MAX_BACKDATE_PERIODS"]
        earliest = add_intervals(now, interval, -periods)
        if start < earliest:
            return {
                "start": [
                    f"At most {periods} {interval}{'' if periods == 1 else 's'} in the past: "
                    f"the earliest allowed start is {earliest.isoformat()}. "
                    'An earlier start needs "backdate": true.'
                ]
            }
        return {}
    earliest = add_intervals(now, "year", -MAX_BACKDATE_YEARS)
    why = f"{MAX_BACKDATE_YEARS} years back"
    if invoice_missed_periods:
        periods_back = add_intervals(now, interval, -MAX_MISSED_PERIODS)
        if periods_back > earliest:
            earliest, why = periods_back, f"{MAX_MISSED_PERIODS} missed {interval}s to invoice"
    if start < earliest:
        return {"start": [f"The earliest allowed start is {earliest.isoformat()} ({why})."]}
    return {}
