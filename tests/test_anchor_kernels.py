"""HR anchors from the data: resting floor, smoothing over days, sustained peaks, HRmax."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.dose.anchors import (
    hr_max_estimate,
    resting_floor,
    smooth_days,
    sustained_peak,
)
from actidose.errors import UsageError
from actidose.timeutil import day_start_utc_us, utc_offsets_s

S = 1_000_000
MIN = 60 * S
H = 3600 * S
LONDON = "Europe/London"
FLOOR = 52.0


def london_bounds(first: str, n: int) -> np.ndarray:
    days = np.arange(np.datetime64(first), np.datetime64(first) + n + 1)
    return day_start_utc_us(days, LONDON)


def all_day_hr(
    step_s: int, noise: float, seed: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Five local days (27-31 March 2026, 29 March has 23 h) of all-day HR every ``step_s``
    seconds: asleep 23:00-07:00 local at 52 bpm plus noise, awake 70-110 bpm, a 40-minute
    workout at 150 bpm each day at 18:00, and the watch off 12:00-13:00."""
    rng = np.random.default_rng(seed)
    bounds = london_bounds("2026-03-27", 5)
    ts = np.arange(bounds[0], bounds[-1], step_s * S, dtype=np.int64)
    local_h = ((ts + utc_offsets_s(ts, LONDON) * S) % (24 * H)) / H
    asleep = (local_h >= 23) | (local_h < 7)
    # Daytime: a slow wander between 70 and 110 bpm.
    awake = 90 + 20 * np.sin(2 * np.pi * ts / (3 * H)) + rng.normal(0, 3, ts.size)
    bpm = np.where(asleep, FLOOR + rng.normal(0, noise, ts.size), awake)
    bpm = np.where((local_h >= 18) & (local_h < 18 + 40 / 60), 150 + rng.normal(0, 3, ts.size), bpm)
    off = (local_h >= 12) & (local_h < 13)
    return ts[~off], bpm[~off], bounds


@pytest.mark.parametrize(("step_s", "noise"), [(1, 2.0), (5, 2.0), (60, 1.0), (120, 1.0)])
def test_resting_floor_finds_the_known_floor(step_s: int, noise: float) -> None:
    ts, bpm, bounds = all_day_hr(step_s, noise)
    rest = resting_floor(ts, bpm, bounds)
    # 24 h a day (23 h on 29 March) less the hour off the wrist, into which the last sample
    # before it holds for max_gap_s (300 s).
    hold_in_gap = (300 - step_s) / 3600
    assert rest.hours == pytest.approx(np.array([23, 23, 22, 23, 23]) + hold_in_gap, abs=1e-9)
    assert np.all(np.abs(rest.floor_bpm - FLOOR) < 2.0), rest.floor_bpm
    est = smooth_days(rest.floor_bpm)
    assert np.all(np.abs(est - FLOOR) < 2.0), est


def test_resting_floor_needs_coverage() -> None:
    ts, bpm, bounds = all_day_hr(60, 1.0)
    # Keep only day 1 whole; day 3 loses all but 08:00-17:00 local (8 h with the watch off,
    # and 4 minutes more: the sample at 11:59 holds 5 minutes).
    day = np.searchsorted(bounds, ts, side="right") - 1
    local_h = ((ts - bounds[day]) / H).astype(float)
    keep = (day == 1) | ((day == 3) & (local_h >= 8) & (local_h < 17))
    rest = resting_floor(ts[keep], bpm[keep], bounds)
    assert rest.hours[3] == pytest.approx(8 + 4 / 60)
    assert np.isnan(rest.floor_bpm[[0, 2, 3, 4]]).all()
    assert abs(rest.floor_bpm[1] - FLOOR) < 2
    looser = resting_floor(ts[keep], bpm[keep], bounds, min_hours=8)
    assert looser.floor_bpm[3] >= 60  # awake all that time
    est = smooth_days(rest.floor_bpm)
    assert est.tolist() == [rest.floor_bpm[1]] * 5


def test_resting_floor_window_belongs_to_its_start_day() -> None:
    # Minute means 60 everywhere, except 45 over the last 2 minutes of day 0 and the first 3
    # of day 1: only a window starting on day 0 holds all five minutes of 45.
    bounds = np.array([0, 24 * H, 48 * H], np.int64)
    ts = np.arange(0, 48 * H, MIN, dtype=np.int64)
    bpm = np.full(ts.size, 60.0)
    low = (ts >= 24 * H - 2 * MIN) & (ts < 24 * H + 3 * MIN)
    bpm[low] = 45.0
    rest = resting_floor(ts, bpm, bounds, min_hours=0)
    assert rest.floor_bpm[0] == 45.0
    assert rest.floor_bpm[1] == pytest.approx(45 * 3 / 5 + 60 * 2 / 5)


def test_resting_floor_sparse_fill_and_gaps() -> None:
    # Samples every 2 minutes fill the minute between them; a 10-minute gap (> 300 s) breaks
    # the windows, so the low values either side of it never form a window together.
    bounds = np.array([0, 24 * H], np.int64)
    t = [0, 2, 4, 6, 8, 18, 20, 22, 24, 26]
    v = [70, 70, 40, 40, 40, 40, 40, 70, 70, 70]
    rest = resting_floor(np.array(t, np.int64) * MIN, np.array(v, float), bounds, min_hours=0)
    # Minutes 4..9 hold 40 (sample 8 holds 5 min: minutes 8..12); minutes 13..17 have no
    # value; 18..21 hold 40. The lowest complete window: minutes 4..8 = 40.
    assert rest.floor_bpm[0] == 40.0
    # Hours: 8 intervals of 2 min, 8 -> 18 capped at 300 s, the last holds the median (2 min).
    assert rest.hours[0] == pytest.approx((8 * 2 + 5 + 2) / 60)
    gap_only = resting_floor(
        np.array([0, 2, 4, 10, 12], np.int64) * MIN,
        np.array([40.0] * 5),
        bounds,
        min_hours=0,
        max_gap_s=60,
    )
    assert np.isnan(gap_only.floor_bpm[0])  # 1-minute holds leave no 5 whole minutes


def test_resting_floor_options_and_empty() -> None:
    bounds = np.array([0, 24 * H], np.int64)
    with pytest.raises(UsageError):
        resting_floor(np.zeros(0, np.int64), np.zeros(0), bounds, window_min=2.5)
    with pytest.raises(ValueError, match="sorted"):
        resting_floor(np.array([2, 1], np.int64), np.ones(2), bounds)
    empty = resting_floor(np.zeros(0, np.int64), np.zeros(0), bounds)
    assert np.isnan(empty.floor_bpm[0]) and empty.hours[0] == 0.0


def _brute_minutes(ts: np.ndarray, bpm: np.ndarray, hold: np.ndarray, n_min: int) -> list[float]:
    values = []
    for m in range(n_min):
        own = [b for t, b in zip(ts, bpm, strict=True) if m * MIN <= t < (m + 1) * MIN]
        if own:
            values.append(sum(own) / len(own))
            continue
        before = [i for i in range(ts.size) if ts[i] < (m + 1) * MIN]
        if before and ts[before[-1]] + hold[before[-1]] * S >= (m + 1) * MIN:
            values.append(float(bpm[before[-1]]))
        else:
            values.append(math.nan)
    return values


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 400), st.integers(40, 120)), min_size=1, max_size=60),
    st.integers(1, 4),
    st.integers(20, 60),
)
def test_floor_is_the_lowest_window_of_its_day(
    samples: list[tuple[int, int]], window: int, day_min: int
) -> None:
    # Samples at whole seconds (gaps 1-400 s), days of ``day_min`` minutes.
    ts = np.cumsum([g for g, _ in samples]).astype(np.int64) * S
    bpm = np.array([b for _, b in samples], float)
    bounds = np.arange(0, 4) * day_min * MIN
    rest = resting_floor(ts, bpm, bounds, window_min=window, min_hours=0, max_gap_s=300)
    gaps = np.diff(ts) / S
    hold = np.append(np.minimum(gaps, 300), min(np.median(gaps) if gaps.size else 0, 300))
    minutes = _brute_minutes(ts, bpm, hold, 3 * day_min + window)
    for d in range(3):
        means = []
        for s0 in range(d * day_min, (d + 1) * day_min):
            w = minutes[s0 : s0 + window]
            if not any(math.isnan(x) for x in w):
                means.append(sum(w) / window)
        if means:
            assert all(rest.floor_bpm[d] <= m + 1e-9 for m in means)
            assert rest.floor_bpm[d] == pytest.approx(min(means), abs=1e-9)
        else:
            assert math.isnan(rest.floor_bpm[d])


# ---------------------------------------------------------------------------------------------
# smoothing over days
# ---------------------------------------------------------------------------------------------


def test_smooth_days_median_and_nearest_fill() -> None:
    nan = math.nan
    v = [nan, 50, 60, 70, nan, nan, nan, nan, nan, 40]
    got = smooth_days(v, days=3)
    # Windows of 3 centred: day 0 -> [50] = 50, 1 -> [50, 60] = 55, 2 -> 60, 3 -> [60, 70] = 65,
    # 4 -> [70] = 70, 5..7 -> none: nearest estimated day (4 at distance 1..3 vs 8 at 3..1;
    # day 6 is 2 from both: the earlier), 8 -> [40], 9 -> [40].
    assert got.tolist() == [50, 55, 60, 65, 70, 70, 70, 40, 40, 40]


def test_smooth_days_even_window_and_edge_cases() -> None:
    # days=4 looks two days back and one ahead.
    assert smooth_days([1.0, 2.0, 3.0, 10.0, 20.0], days=4).tolist() == [1.5, 2.0, 2.5, 6.5, 10.0]
    assert smooth_days([5.0, 7.0], days=1).tolist() == [5.0, 7.0]
    assert np.isnan(smooth_days([math.nan, math.nan])).all()
    assert smooth_days([]).size == 0
    with pytest.raises(UsageError):
        smooth_days([1.0], days=0)


def test_smooth_days_ignores_one_odd_day() -> None:
    v = np.array([52, 53, 51, 38, 52, 52, 53], float)
    assert smooth_days(v)[3] == 52.0


# ---------------------------------------------------------------------------------------------
# sustained peaks and HRmax
# ---------------------------------------------------------------------------------------------


def test_single_spike_is_not_the_peak() -> None:
    bounds = np.array([0, 24 * H], np.int64)
    ts = np.arange(0, 600, dtype=np.int64) * S  # 10 minutes at 1 Hz
    bpm = np.full(ts.size, 150.0)
    bpm[300] = 220.0
    peak = sustained_peak(ts, bpm, bounds)
    assert peak[0] == pytest.approx(150 + 70 / 10)  # the spike is a tenth of a 10 s window
    bpm[300] = 150.0
    bpm[100:130] = 170.0  # 30 s really sustained
    assert sustained_peak(ts, bpm, bounds)[0] == 170.0


def test_peak_per_local_day_and_dst() -> None:
    bounds = london_bounds("2026-03-28", 3)  # 28, 29 (23 h), 30 March
    assert bounds[2] - bounds[1] == 23 * H
    # A 1 Hz minute at 160 bpm straddling local midnight of 29/30 March, 150 bpm before.
    t0 = int(bounds[2]) - 30 * S
    ts = t0 + np.arange(-60, 60, dtype=np.int64) * S
    bpm = np.where(ts < t0, 150.0, 160.0)
    peak = sustained_peak(ts, bpm, bounds)
    assert np.isnan(peak[0])
    assert peak[1] == 160.0  # a window of 160 starts 30 s before midnight, on 29 March
    assert peak[2] == 160.0


def test_peak_needs_covered_window() -> None:
    bounds = np.array([0, 24 * H], np.int64)
    # Two samples 2 minutes apart with max_gap 60 s hold 60 s each: windows fit inside a hold.
    ts = np.array([0, 120], np.int64) * S
    assert sustained_peak(ts, np.array([100.0, 120.0]), bounds)[0] == 120.0
    # A window longer than any covered stretch: none.
    assert np.isnan(sustained_peak(ts, np.array([100.0, 120.0]), bounds, peak_s=90)[0])
    with pytest.raises(UsageError):
        sustained_peak(ts, np.ones(2), bounds, peak_s=0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 8), st.integers(60, 200)), min_size=1, max_size=40),
    st.integers(1, 6),
    st.integers(5, 40),
)
def test_peak_is_max_over_all_windows(
    samples: list[tuple[int, int]], peak_s: int, day_s: int
) -> None:
    # Whole-second samples with gaps 0-8 s, max_gap 4 s; brute force on a half-second grid
    # (the last sample holds the median interval, which may be a half second).
    ts_s = np.cumsum([g for g, _ in samples])
    bpm = np.array([b for _, b in samples], float)
    bounds = np.arange(0, 5) * day_s * S
    got = sustained_peak(ts_s.astype(np.int64) * S, bpm, bounds, peak_s=peak_s, max_gap_s=4)
    gaps = np.diff(ts_s).astype(float)
    hold = np.append(np.minimum(gaps, 4), min(np.median(gaps) if gaps.size else 0.0, 4))
    n_half = int(2 * (ts_s[-1] + 5))
    grid = np.full(n_half, math.nan)
    for t, h, b in zip(ts_s, hold, bpm, strict=True):
        grid[int(2 * t) : int(2 * t + 2 * h)] = b
    # One day spanning everything: the kernel's maximum is exact (the window mean is piecewise
    # linear in the window's start; its maximum lies at a breakpoint the kernel evaluates).
    one = sustained_peak(
        ts_s.astype(np.int64) * S, bpm, np.array([0, 10**6]) * S, peak_s=peak_s, max_gap_s=4
    )[0]
    best = [
        float(grid[a : a + 2 * peak_s].mean())
        for a in range(n_half)
        if grid[a : a + 2 * peak_s].size == 2 * peak_s
        and not np.isnan(grid[a : a + 2 * peak_s]).any()
    ]
    if not best:
        assert math.isnan(one) and np.isnan(got).all()
        return
    assert one == pytest.approx(max(best), abs=1e-9)
    # Split into days (a window belongs to the day it starts in): each day's peak is the
    # best window starting in it. The last start of a day is 1 us before the next day, whose
    # window mean is within 1e-6 x (rate step) / peak_s of the one at the next midnight, a
    # half-second grid point: the grid, with that end point, holds the day's maximum.
    for d in range(4):
        in_day = [
            float(grid[a : a + 2 * peak_s].mean())
            for a in range(2 * d * day_s, min(2 * (d + 1) * day_s, n_half))
            if grid[a : a + 2 * peak_s].size == 2 * peak_s
            and not np.isnan(grid[a : a + 2 * peak_s]).any()
        ]
        end = 2 * (d + 1) * day_s  # the last start, 1 us before: needs the cell before too
        last = grid[end - 1 : end + 2 * peak_s]
        if last.size == 2 * peak_s + 1 and not np.isnan(last).any():
            in_day.append(float(last[1:].mean()))
        if in_day:
            assert got[d] == pytest.approx(max(in_day), abs=1e-3)
        else:
            assert np.isnan(got[d])


def test_hr_max_estimate() -> None:
    nan = math.nan
    age = np.array([185.0, 185.0, 184.0, nan])
    peaks = np.array([150.0, nan, 190.0, 200.0])
    est, src = hr_max_estimate(age, peaks)
    # The whole record's highest peak (200, on a day without an age estimate) is judged
    # against each day's age estimate.
    assert est[:3].tolist() == [200.0, 200.0, 200.0] and np.isnan(est[3])
    assert src == ["observed_peak", "observed_peak", "observed_peak", "none"]
    est, src = hr_max_estimate(age, peaks, cumulative=True)
    assert est[:3].tolist() == [185.0, 185.0, 190.0]
    assert src[:3] == ["age", "age", "observed_peak"]
    est, src = hr_max_estimate(np.array([180.0, 180.0]), np.array([nan, nan]))
    assert est.tolist() == [180.0, 180.0] and src == ["age", "age"]
    est, src = hr_max_estimate(np.array([180.0]), np.array([180.0]))
    assert src == ["age"]  # a tie keeps the age estimate
    with pytest.raises(ValueError):
        hr_max_estimate(np.ones(2), np.ones(3))


def _floor_by_definition(
    ts: np.ndarray, bpm: np.ndarray, bounds: np.ndarray, w: int, max_gap_s: float
) -> np.ndarray:
    """resting_floor's steps 1-3, one minute and one window at a time."""
    from actidose.dose.anchors import _holds

    hold = _holds(ts, max_gap_s)
    m0 = int(bounds[0] // MIN)
    m_end = int(-(-bounds[-1] // MIN)) + w - 1
    value: dict[int, float] = {}
    for m in range(m0, m_end):
        mine = bpm[(ts >= m * MIN) & (ts < (m + 1) * MIN)]
        if mine.size:
            value[m] = float(np.mean(mine))
            continue
        before = np.flatnonzero(ts < (m + 1) * MIN)
        if before.size:
            i = int(before[-1])
            if ts[i] + round(hold[i] * S) >= (m + 1) * MIN:
                value[m] = float(bpm[i])
    floor = np.full(bounds.size - 1, np.inf)
    for m in range(m0, m_end - w + 1):
        vals = [value.get(m + k) for k in range(w)]
        day = int(np.searchsorted(bounds, m * MIN, side="right")) - 1
        if None in vals or not 0 <= day < floor.size:
            continue
        floor[day] = min(floor[day], float(np.mean(np.array(vals, float))))
    floor[~np.isfinite(floor)] = np.nan
    return floor


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2 * 24 * 60 * 60 + 3000), st.floats(40, 180)),
        min_size=1,
        max_size=300,
        unique_by=lambda x: x[0],
    ),
    st.integers(1, 7),
    st.sampled_from([60.0, 150.0, 300.0]),
    st.integers(0, 59),
)
def test_resting_floor_equals_its_definition(
    samples: list[tuple[int, float]], w: int, max_gap_s: float, shift_s: int
) -> None:
    """Minute values, complete windows and day minima exactly as the docstring defines them,
    over two days whose midnights fall inside a minute (``shift_s``)."""
    samples.sort()
    t0 = 1_774_000_000 * S
    ts = np.array([t0 + s * S for s, _ in samples], np.int64)
    bpm = np.array([v for _, v in samples])
    bounds = t0 + shift_s * S + np.arange(3, dtype=np.int64) * 24 * H
    got = resting_floor(ts, bpm, bounds, window_min=w, min_hours=0, max_gap_s=max_gap_s)
    np.testing.assert_array_equal(
        got.floor_bpm, _floor_by_definition(ts, bpm, bounds, w, max_gap_s)
    )
