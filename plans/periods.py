"""Billing-period arithmetic: the series of periods anchored at a subscription's start.

Period n of a series is ``[add_intervals(anchor, n), add_intervals(anchor, n + 1))``. Every
boundary is computed from the anchor, never from the previous boundary, so month ends stick:
a series anchored on January 31 runs Jan 31 → Feb 28 (29 in leap years) → Mar 31 → Apr 30, and a
yearly series anchored on February 29 falls on February 28 in other years and back on February 29
in leap years. Time of day and tzinfo (UTC in Billfold) are kept.

An interval is one of ``INTERVALS`` (a plan version's ``interval`` column holds it); the
functions raise ValueError for any other string.

Pure functions, no database.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from typing import Literal, get_args

Interval = Literal["day", "week", "month", "year"]
INTERVALS: tuple[str, ...] = get_args(Interval)

_FIXED = {"day": timedelta(days=1), "week": timedelta(weeks=1)}
_MONTHS = {"month": 1, "year": 12}


def _check(anchor: datetime, interval: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; expected one of {', '.join(INTERVALS)}")
    if anchor.tzinfo is None or anchor.utcoffset() is None:
        raise ValueError("the anchor must be an aware datetime (UTC)")


def _add_months(anchor: datetime, months: int) -> datetime:
    year, month0 = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    month = month0 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def add_intervals(anchor: datetime, interval: str, n: int) -> datetime:
    """The anchor plus ``n`` intervals (``n`` may be negative), computed from the anchor.

    Months and years clamp the day to the target month's length (Jan 31 + 1 month = Feb 28 or 29;
    Jan 31 + 2 months = Mar 31); days and weeks are exact multiples of 24 hours in UTC.
    """
    _check(anchor, interval)
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError("n must be an int")
    if interval in _FIXED:
        return anchor + _FIXED[interval] * n
    return _add_months(anchor, _MONTHS[interval] * n)


def period_index(anchor: datetime, interval: str, at: datetime) -> int:
    """The index n of the period ``[add_intervals(anchor, n), add_intervals(anchor, n + 1))``
    that contains ``at``; 0 for the first period. ``at`` before the anchor raises ValueError.

    Constant time: n is estimated arithmetically and corrected by at most a step or two."""
    _check(anchor, interval)
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be an aware datetime (UTC)")
    if at < anchor:
        raise ValueError(f"{at.isoformat()} is before the anchor {anchor.isoformat()}")
    if interval in _FIXED:
        n = (at - anchor) // _FIXED[interval]
    else:
        months = (at.year - anchor.year) * 12 + (at.month - anchor.month)
        n = months // _MONTHS[interval]
    # The estimate can be one off (e.g. at's day of month is before the anchor's); correct it.
    while n > 0 and add_intervals(anchor, interval, n) > at:
        n -= 1
    while add_intervals(anchor, interval, n + 1) <= at:
        n += 1
    return n


def period_containing(anchor: datetime, interval: str, at: datetime) -> tuple[datetime, datetime]:
    """The half-open period ``[start, end)`` of the series anchored at ``anchor`` that contains
    ``at`` (``at >= anchor``, else ValueError)."""
    n = period_index(anchor, interval, at)
    return add_intervals(anchor, interval, n), add_intervals(anchor, interval, n + 1)
