"""Window sums for exposure before a rating, and local-calendar window edges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.dose.exposure import (
    day_fraction_sums,
    event_window_counts,
    event_window_sums,
    interval_window_sums,
)
from actidose.errors import UsageError
from actidose.timeutil import day_start_utc_us, shift_local_days

H = 3_600_000_000
LONDON = "Europe/London"


def us(s: str) -> int:
    return int(np.datetime64(s, "us").astype(np.int64))


def arr(*xs: int) -> np.ndarray:
    return np.array(xs, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# shift_local_days
# ---------------------------------------------------------------------------------------------


def test_shift_keeps_wall_clock_across_spring_forward() -> None:
    # 10:00 BST on 8 April 2026 is 09:00 UTC; 14 days earlier is 10:00 GMT (= UTC) on 25 March.
    out = shift_local_days(arr(us("2026-04-08T09:00")), LONDON, 14)
    assert out.tolist() == [us("2026-03-25T10:00")]
    assert us("2026-04-08T09:00") - out[0] == 14 * 24 * H - H


def test_shift_keeps_wall_clock_across_fall_back_new_york() -> None:
    # 09:00 EST on 5 Nov 2026 (14:00 UTC); 7 days earlier is 09:00 EDT on 29 Oct (13:00 UTC).
    out = shift_local_days(arr(us("2026-11-05T14:00")), "America/New_York", 7)
    assert out.tolist() == [us("2026-10-29T13:00")]
    assert us("2026-11-05T14:00") - out[0] == 7 * 24 * H + H


def test_shift_into_spring_gap_moves_forward_by_the_gap() -> None:
    # 01:30 BST on 30 March 2026 = 00:30 UTC; 01:30 on 29 March does not exist -> 02:30 BST.
    out = shift_local_days(arr(us("2026-03-30T00:30")), LONDON, 1)
    assert out.tolist() == [us("2026-03-29T01:30")]
    # New York: 02:30 on 8 March 2026 does not exist -> 03:30 EDT = 07:30 UTC.
    out = shift_local_days(arr(us("2026-03-09T06:30")), "America/New_York", 1)
    assert out.tolist() == [us("2026-03-08T07:30")]


def test_shift_into_repeated_hour_takes_the_first() -> None:
    # 01:30 GMT on 26 Oct 2026; 01:30 on 25 Oct happens at 00:30 UTC (BST) and 01:30 UTC (GMT).
    out = shift_local_days(arr(us("2026-10-26T01:30")), LONDON, 1)
    assert out.tolist() == [us("2026-10-25T00:30")]
    out = shift_local_days(arr(us("2026-11-02T06:30")), "America/New_York", 1)  # 01:30 EST
    assert out.tolist() == [us("2026-11-01T05:30")]  # 01:30 EDT, the first pass


def test_shift_fraction_is_elapsed_time_and_negative_goes_later() -> None:
    t = us("2026-03-30T09:00")  # 10:00 BST
    out = shift_local_days(arr(t, t), LONDON, np.array([1.5, -0.25]))
    # one calendar day back is 10:00 BST on 29 March (09:00 UTC), then 12 h more.
    assert out.tolist() == [us("2026-03-28T21:00"), t + 6 * H]


def test_shift_matches_day_bounds_for_midnights() -> None:
    days = np.arange(np.datetime64("2026-03-20"), np.datetime64("2026-04-10"))
    starts = day_start_utc_us(days, LONDON)
    out = shift_local_days(starts[14:], LONDON, 14)
    assert out.tolist() == starts[:-14].tolist()


def test_shift_bad_days_and_zone() -> None:
    with pytest.raises(UsageError):
        shift_local_days(arr(0), LONDON, float("nan"))
    with pytest.raises(UsageError):
        shift_local_days(arr(0), "Mars/Olympus", 1)
    assert shift_local_days(np.zeros(0, np.int64), LONDON, 1).size == 0


# ---------------------------------------------------------------------------------------------
# event windows
# ---------------------------------------------------------------------------------------------


def test_event_sums_over_a_window_across_dst() -> None:
    # A daily rating at 10:00 BST on 5 April 2026; its 14-day window starts at 10:00 GMT on
    # 22 March, before the clocks went forward (29 March). Sessions around both edges.
    rating = arr(us("2026-04-05T09:00"))
    start = shift_local_days(rating, LONDON, 14)
    assert start.tolist() == [us("2026-03-22T10:00")]
    sessions = arr(
        us("2026-03-22T09:59"),  # before the start: out
        us("2026-03-22T10:00"),  # at the start: in
        us("2026-03-29T00:30"),  # the 23-hour day: in
        us("2026-03-29T01:30"),  # in
        us("2026-04-05T08:59"),  # just before the rating: in
        us("2026-04-05T09:00"),  # at the rating: out (end excluded)
    )
    trimp = np.array([100.0, 11.0, 22.5, 33.25, 44.0, 1000.0])
    minutes = np.array([60.0, 10.0, 20.0, 30.0, 40.0, 600.0])
    got = event_window_sums(sessions, np.vstack([trimp, minutes]), start, rating)
    assert got.shape == (2, 1)
    assert got[:, 0].tolist() == [11.0 + 22.5 + 33.25 + 44.0, 10.0 + 20.0 + 30.0 + 40.0]
    assert event_window_counts(sessions, start, rating).tolist() == [4]
    assert event_window_sums(sessions, trimp, start, rating).tolist() == [110.75]


def test_event_sums_nan_rules() -> None:
    t = arr(10, 20, 30, 40)
    v = np.array([1.0, np.nan, np.nan, 4.0])
    start = arr(0, 15, 15, 35, 50, 0)
    end = arr(15, 35, 45, 45, 60, 0)
    got = event_window_sums(t, v, start, end)
    # [0,15): 1; [15,35): two NaN only -> NaN; [15,45): NaN, NaN, 4 -> 4; [35,45): 4;
    # [50,60): no event -> 0; empty window -> 0.
    assert got[0] == 1.0 and np.isnan(got[1])
    assert got[2:].tolist() == [4.0, 4.0, 0.0, 0.0]
    assert event_window_counts(t, start, end).tolist() == [1, 2, 3, 1, 0, 0]


def test_event_sums_2d_rows_judged_apart() -> None:
    t = arr(1, 2)
    v = np.array([[np.nan, np.nan], [1.0, np.nan]])
    got = event_window_sums(t, v, arr(0), arr(3))
    assert np.isnan(got[0, 0]) and got[1, 0] == 1.0


def test_event_sums_ties_and_errors() -> None:
    t = arr(5, 5, 5)
    assert event_window_sums(t, np.array([1.0, 2.0, 3.0]), arr(5), arr(6)).tolist() == [6.0]
    assert event_window_sums(t, np.array([1.0, 2.0, 3.0]), arr(0), arr(5)).tolist() == [0.0]
    with pytest.raises(ValueError, match="sorted"):
        event_window_sums(arr(2, 1), np.ones(2), arr(0), arr(3))
    with pytest.raises(ValueError, match="ends before"):
        event_window_counts(arr(1), arr(5), arr(4))
    with pytest.raises(ValueError, match="shape"):
        event_window_sums(arr(1, 2), np.ones(3), arr(0), arr(3))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 200), max_size=30),
    st.lists(st.tuples(st.integers(0, 220), st.integers(0, 60)), min_size=1, max_size=10),
    st.integers(0, 10_000),
)
def test_event_sums_match_brute_force(
    times: list[int], windows: list[tuple[int, int]], seed: int
) -> None:
    t = np.sort(np.array(times, dtype=np.int64))
    rng = np.random.default_rng(seed)
    v = np.round(rng.normal(50, 30, t.size), 2)
    v[rng.random(t.size) < 0.3] = np.nan
    start = np.array([w[0] for w in windows], np.int64)
    end = start + np.array([w[1] for w in windows], np.int64)
    got = event_window_sums(t, v, start, end)
    for j in range(start.size):
        inside = [v[i] for i in range(t.size) if start[j] <= t[i] < end[j]]
        if inside and all(np.isnan(x) for x in inside):
            assert np.isnan(got[j])
        else:
            assert got[j] == pytest.approx(sum(x for x in inside if not np.isnan(x)), abs=1e-9)


# ---------------------------------------------------------------------------------------------
# step-function integrals
# ---------------------------------------------------------------------------------------------


def test_interval_sums_split_straddling_samples() -> None:
    s = 1_000_000
    t = arr(0, 60 * s, 120 * s)
    hold = np.array([60.0, 30.0, 60.0])  # a 30 s gap after the second sample
    rate = np.array([1.0, 2.0, 3.0])
    got = interval_window_sums(
        t, hold, rate, arr(30 * s, 0, 75 * s, 200 * s), arr(90 * s, 0, 150 * s, 300 * s)
    )
    # [30, 90): 30 s at 1 + 30 s at 2 = 90; empty: 0;
    # [75, 150): 15 s at 2, gap, 30 s at 3 = 120; [200, 300): nothing = 0.
    assert got.tolist() == [90.0, 0.0, 120.0, 0.0]


def test_interval_sums_nan_rate_and_errors() -> None:
    s = 1_000_000
    got = interval_window_sums(
        arr(0, 10 * s), np.array([10.0, 10.0]), np.array([np.nan, 1.0]), arr(0), arr(20 * s)
    )
    assert got.tolist() == [10.0]
    with pytest.raises(ValueError, match="overlap"):
        interval_window_sums(arr(0, 5 * s), np.array([10.0, 1.0]), np.ones(2), arr(0), arr(1))
    with pytest.raises(ValueError, match="hold_s"):
        interval_window_sums(arr(0), np.array([-1.0]), np.ones(1), arr(0), arr(1))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 40), st.floats(-5, 5)), max_size=25),
    st.lists(st.tuples(st.integers(-20, 900), st.integers(0, 400)), min_size=1, max_size=8),
)
def test_interval_sums_match_brute_force(
    samples: list[tuple[int, int, float]], windows: list[tuple[int, int]]
) -> None:
    # Samples: (gap before, hold, rate) in whole seconds, laid end to end with gaps.
    s = 1_000_000
    t, hold, rate, now = [], [], [], 0
    for gap, h, r in samples:
        now += gap
        t.append(now)
        hold.append(h)
        rate.append(r)
        now += h
    start = np.array([w[0] for w in windows], np.int64)
    end = start + np.array([w[1] for w in windows], np.int64)
    got = interval_window_sums(
        np.array(t, np.int64) * s, np.array(hold, float), np.array(rate), start * s, end * s
    )
    for j in range(start.size):
        want = 0.0
        for ti, hi, ri in zip(t, hold, rate, strict=True):
            want += ri * max(0, min(ti + hi, end[j]) - max(ti, start[j]))
        assert got[j] == pytest.approx(want, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# day fractions
# ---------------------------------------------------------------------------------------------


def _bounds(first: str, n: int, tz: str = LONDON) -> np.ndarray:
    days = np.arange(np.datetime64(first), np.datetime64(first) + n + 1)
    return day_start_utc_us(days, tz)


def test_day_fractions_count_short_and_long_days_as_one() -> None:
    b = _bounds("2026-03-26", 7)  # 26 March .. 1 April; 29 March has 23 hours
    ones = np.ones(7)
    assert day_fraction_sums(b, ones, b[:1], b[-1:]).tolist() == [7.0]
    # Noon local on 29 March is 11 h after its midnight (the clocks skip an hour at 01:00).
    noon = us("2026-03-29T11:00")
    got = day_fraction_sums(b, ones, arr(int(b[3])), arr(noon))
    assert got[0] == pytest.approx(11 / 23)
    # Fall back: 25 Oct 2026 has 25 hours.
    b2 = _bounds("2026-10-24", 3)
    assert b2[2] - b2[1] == 25 * H
    got = day_fraction_sums(b2, np.ones(3), arr(int(b2[1]) + 5 * H), arr(int(b2[2]) + 12 * H))
    assert got[0] == pytest.approx(20 / 25 + 12 / 24)


def test_coverage_of_a_window_with_unobserved_days() -> None:
    # Ten days; days 2, 3 and 7 have no data. A rating at 18:00 on day 9 (local) with a 7-day
    # window: from 18:00 on day 2 to 18:00 on day 9.
    b = _bounds("2026-03-24", 10)  # crosses 29 March
    observed = np.array([1, 1, 0, 0, 1, 1, 1, 0, 1, 1], float)
    rating = arr(int(b[9]) + 18 * H)  # b[9] is 00:00 BST on day 9; 18:00 BST is 18 h later
    start = shift_local_days(rating, LONDON, 7)
    assert start.tolist() == [int(b[2]) + 18 * H]  # 18:00 GMT on day 2 (before the change)
    window_days = day_fraction_sums(b, np.ones(10), start, rating)
    observed_days = day_fraction_sums(b, observed, start, rating)
    # Day 2: 6 of 24 h in the window (unobserved); days 3..8 whole; day 9: 18 of 24 h.
    # Day 5 (29 March) has 23 h but counts as one day.
    assert window_days[0] == pytest.approx(6 / 24 + 6 + 18 / 24)
    assert observed_days[0] == pytest.approx(0 + 0 + 1 + 1 + 1 + 0 + 1 + 18 / 24)
    assert observed_days[0] / window_days[0] == pytest.approx((4 + 0.75) / 7)


def test_day_fractions_outside_bounds_and_nan() -> None:
    b = arr(0, 10, 30)
    v = np.array([1.0, np.nan])
    got = day_fraction_sums(b, v, arr(-100, 5, 30, 0), arr(5, 100, 50, 0))
    assert got.tolist() == [0.5, 0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="increasing"):
        day_fraction_sums(arr(0, 0), np.ones(1), arr(0), arr(1))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 30), st.floats(0, 3)), min_size=1, max_size=12),
    st.integers(-10, 200),
    st.integers(0, 200),
)
def test_day_fractions_match_brute_force(days: list[tuple[int, float]], a: int, width: int) -> None:
    lengths = [d[0] for d in days]
    b = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    v = np.array([d[1] for d in days])
    got = day_fraction_sums(b, v, arr(a), arr(a + width))[0]
    want = sum(
        v[i] * max(0, min(b[i + 1], a + width) - max(b[i], a)) / lengths[i]
        for i in range(len(lengths))
    )
    assert got == pytest.approx(want, abs=1e-9)
