"""Billing periods: anchored series, month-end stickiness, leap years, O(1) lookup."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plans import periods
from plans.periods import INTERVALS, add_intervals, period_containing, period_index


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


# --- add_intervals -------------------------------------------------------------------------------


def test_month_ends_stick_to_the_anchor() -> None:
    anchor = utc(2026, 1, 31, 9, 30)
    assert [add_intervals(anchor, "month", n) for n in range(6)] == [
        utc(2026, 1, 31, 9, 30),
        utc(2026, 2, 28, 9, 30),
        utc(2026, 3, 31, 9, 30),
        utc(2026, 4, 30, 9, 30),
        utc(2026, 5, 31, 9, 30),
        utc(2026, 6, 30, 9, 30),
    ]
    # leap year February
    assert add_intervals(utc(2024, 1, 31), "month", 1) == utc(2024, 2, 29)
    # computed from the anchor, not step by step (Feb 28 + 1 month would be Mar 28)
    assert add_intervals(add_intervals(anchor, "month", 1), "month", 1) == utc(2026, 3, 28, 9, 30)
    assert add_intervals(anchor, "month", 12) == utc(2027, 1, 31, 9, 30)
    assert add_intervals(anchor, "month", 13) == utc(2027, 2, 28, 9, 30)
    assert add_intervals(anchor, "month", -2) == utc(2025, 11, 30, 9, 30)
    assert add_intervals(utc(2026, 1, 30), "month", 1) == utc(2026, 2, 28)
    assert add_intervals(utc(2026, 3, 29), "month", 11) == utc(2027, 2, 28)


def test_year_anchored_on_february_29() -> None:
    anchor = utc(2024, 2, 29, 23, 59, 59)
    assert [add_intervals(anchor, "year", n) for n in range(5)] == [
        utc(2024, 2, 29, 23, 59, 59),
        utc(2025, 2, 28, 23, 59, 59),
        utc(2026, 2, 28, 23, 59, 59),
        utc(2027, 2, 28, 23, 59, 59),
        utc(2028, 2, 29, 23, 59, 59),
    ]
    assert add_intervals(anchor, "year", 76) == utc(2100, 2, 28, 23, 59, 59)  # 2100: no leap


def test_days_and_weeks() -> None:
    anchor = utc(2026, 2, 27, 12)
    assert add_intervals(anchor, "day", 2) == utc(2026, 3, 1, 12)
    assert add_intervals(anchor, "week", 1) == utc(2026, 3, 6, 12)
    assert add_intervals(anchor, "day", 365) == utc(2027, 2, 27, 12)
    assert add_intervals(anchor, "week", -1) == utc(2026, 2, 20, 12)
    assert add_intervals(anchor, "day", 0) == anchor


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="interval"):
        add_intervals(utc(2026, 1, 1), "quarter", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aware"):
        add_intervals(datetime(2026, 1, 1), "month", 1)  # naive: refused
    with pytest.raises(TypeError):
        add_intervals(utc(2026, 1, 1), "month", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="before the anchor"):
        period_containing(utc(2026, 1, 31), "month", utc(2026, 1, 30, 23, 59))
    with pytest.raises(ValueError, match="aware"):
        period_index(utc(2026, 1, 1), "month", datetime(2026, 2, 1))  # naive: refused


# --- period_containing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "start", "end"),
    [
        (utc(2026, 1, 31, 10), utc(2026, 1, 31, 10), utc(2026, 2, 28, 10)),  # the anchor itself
        (utc(2026, 2, 28, 9, 59), utc(2026, 1, 31, 10), utc(2026, 2, 28, 10)),
        (utc(2026, 2, 28, 10), utc(2026, 2, 28, 10), utc(2026, 3, 31, 10)),  # half-open
        (utc(2026, 3, 30, 23), utc(2026, 2, 28, 10), utc(2026, 3, 31, 10)),
        (utc(2026, 3, 31, 9, 59, 59, 999999), utc(2026, 2, 28, 10), utc(2026, 3, 31, 10)),
        (utc(2026, 3, 31, 10), utc(2026, 3, 31, 10), utc(2026, 4, 30, 10)),
        (utc(2028, 2, 29, 11), utc(2028, 2, 29, 10), utc(2028, 3, 31, 10)),
    ],
)
def test_monthly_periods_anchored_on_the_31st(at: datetime, start: datetime, end: datetime) -> None:
    assert period_containing(utc(2026, 1, 31, 10), "month", at) == (start, end)


def test_period_index_and_the_first_period() -> None:
    anchor = utc(2026, 1, 1)
    assert period_index(anchor, "month", anchor) == 0
    assert period_index(anchor, "month", utc(2026, 1, 31, 23, 59)) == 0
    assert period_index(anchor, "month", utc(2026, 2, 1)) == 1
    assert period_index(anchor, "year", utc(2036, 1, 1)) == 10
    assert period_index(anchor, "week", utc(2026, 1, 14, 23)) == 1
    assert period_index(anchor, "day", utc(2026, 12, 31, 23)) == 364
    # example B: January 2026 is the period of the 16th
    assert period_containing(anchor, "month", utc(2026, 1, 16)) == (
        utc(2026, 1, 1),
        utc(2026, 2, 1),
    )


@pytest.mark.parametrize("interval", INTERVALS)
def test_lookup_does_not_walk_the_series(interval: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    original = periods.add_intervals

    def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(periods, "add_intervals", counting)
    anchor = utc(1970, 1, 31, 12)
    at = utc(2999, 12, 31, 11)  # over a million days, tens of thousands of weeks
    start, end = periods.period_containing(anchor, interval, at)
    assert start <= at < end
    assert calls <= 6


# --- properties ----------------------------------------------------------------------------------


@st.composite
def anchors(draw: st.DrawFn) -> datetime:
    """UTC anchors, often on the 29th, 30th or 31st (clamped to the month's length)."""
    year = draw(st.integers(1990, 2060))
    month = draw(st.integers(1, 12))
    day = draw(st.one_of(st.integers(28, 31), st.integers(1, 31)))
    day = min(day, days_in(year, month))
    return datetime(
        year,
        month,
        day,
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
        draw(st.sampled_from([0, 1, 999_999])),
        tzinfo=UTC,
    )


intervals = st.sampled_from(INTERVALS)
offsets = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=365 * 40))


def reference_month_step(anchor: datetime, months: int) -> datetime:
    """Walk month by month over (year, month) only, then clamp the anchor's day once."""
    year, month = anchor.year, anchor.month
    for _ in range(months):
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, days_in(year, month)))


@given(anchor=anchors(), n=st.integers(0, 600))
def test_months_clamp_the_anchor_day(anchor: datetime, n: int) -> None:
    moved = add_intervals(anchor, "month", n)
    assert moved == reference_month_step(anchor, n)
    assert moved.day == min(anchor.day, days_in(moved.year, moved.month))
    assert moved.time() == anchor.time()
    assert moved.tzinfo is UTC
    yearly = add_intervals(anchor, "year", n // 12)
    assert yearly == reference_month_step(anchor, 12 * (n // 12))
    assert (yearly.month, yearly.day) == (
        anchor.month,
        min(anchor.day, days_in(yearly.year, anchor.month)),
    )


@given(anchor=anchors(), interval=intervals, offset=offsets)
def test_period_containing_brackets_the_moment(
    anchor: datetime, interval: str, offset: timedelta
) -> None:
    at = anchor + offset
    index = period_index(anchor, interval, at)
    start, end = period_containing(anchor, interval, at)
    assert start <= at < end
    assert start == add_intervals(anchor, interval, index)
    assert end == add_intervals(anchor, interval, index + 1)
    assert start.time() == anchor.time()
    assert start.tzinfo is UTC and end.tzinfo is UTC
    if interval in ("month", "year"):
        assert start.day == min(anchor.day, days_in(start.year, start.month))
        assert end.day == min(anchor.day, days_in(end.year, end.month))
        months = (start.year - anchor.year) * 12 + start.month - anchor.month
        assert months == index * (1 if interval == "month" else 12)
    else:
        step = timedelta(days=1 if interval == "day" else 7)
        assert end - start == step
        assert start - anchor == step * index


@given(anchor=anchors(), interval=intervals, n=st.integers(0, 400))
def test_every_boundary_starts_its_own_period(anchor: datetime, interval: str, n: int) -> None:
    boundary = add_intervals(anchor, interval, n)
    assert period_index(anchor, interval, boundary) == n
    just_before = boundary - timedelta(microseconds=1)
    if n == 0:
        with pytest.raises(ValueError, match="before the anchor"):
            period_index(anchor, interval, just_before)
    else:
        assert period_index(anchor, interval, just_before) == n - 1
