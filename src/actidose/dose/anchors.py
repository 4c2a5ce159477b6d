"""Heart-rate anchors from the data: resting HR from all-day HR, HRmax from sustained peaks.

Entered anchors win (see the project design); these kernels give the estimates that fill in
where none were entered.

* Resting HR: per local day, the lowest mean HR over ``window_min`` consecutive minutes
  (:func:`resting_floor`), on days with enough all-day HR, then a centred rolling median over
  days (:func:`smooth_days`) so one restless night or one odd low does not move it.
* Maximum HR: per local day, the highest HR sustained over ``peak_s`` seconds
  (:func:`sustained_peak`, so a one-sample artefact does not count), judged against the
  age-predicted HRmax (:func:`hr_max_estimate`): an observed peak replaces the age estimate
  only where it is higher.

Times are int64 microseconds since the Unix epoch (UTC). Days are given by ``bounds_us``, the
UTC instants of consecutive local midnights (``bounds[i] .. bounds[i+1]`` is local day i, 23,
24 or 25 hours long), as :func:`actidose.timeutil.day_start_utc_us` makes them.

Samples follow the project's step convention (:func:`actidose.dose.hr.sample_durations`): a
sample holds until the next one, for at most ``max_gap_s``; the last holds for the median
interval. NaN heart rates are dropped before anything else.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from actidose.dose.exposure import interval_window_sums
from actidose.dose.hr import sample_durations
from actidose.errors import UsageError

__all__ = [
    "RestFloor",
    "hr_max_estimate",
    "resting_floor",
    "smooth_days",
    "sustained_peak",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_US_PER_S = 1_000_000
_US_PER_MIN = 60 * _US_PER_S


class RestFloor(NamedTuple):
    """Output of :func:`resting_floor`, one value per local day.

    Attributes
    ----------
    floor_bpm : ndarray of float64, shape (n_days,)
        Lowest ``window_min``-minute mean HR of windows starting that day, bpm; NaN where
        the day has less than ``min_hours`` of HR or no complete window.
    hours : ndarray of float64, shape (n_days,)
        Hours of the day covered by HR samples (each sample covers until the next, at most
        ``max_gap_s``).
    """

    floor_bpm: F64
    hours: F64


def _samples(ts_us: npt.ArrayLike, bpm: npt.ArrayLike) -> tuple[I64, F64]:
    ts = np.asarray(ts_us, dtype=np.int64)
    hr = np.asarray(bpm, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != hr.shape:
        raise ValueError(f"ts_us and bpm must be 1-D of equal length, got {ts.shape}, {hr.shape}")
    back = np.flatnonzero(np.diff(ts) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise ValueError(f"ts_us must be sorted ascending: ts_us[{i}] < ts_us[{i - 1}]")
    keep = ~np.isnan(hr)
    return ts[keep], hr[keep]


def _bounds(bounds_us: npt.ArrayLike) -> I64:
    b = np.asarray(bounds_us, dtype=np.int64)
    if b.ndim != 1 or b.size < 1:
        raise ValueError(f"bounds_us must be 1-D with n_days + 1 values, got shape {b.shape}")
    if np.any(np.diff(b) <= 0):
        raise ValueError("bounds_us must be strictly increasing (one local midnight after another)")
    return b


def _holds(ts: I64, max_gap_s: float) -> F64:
    if not (max_gap_s > 0 and np.isfinite(max_gap_s)):
        raise UsageError(f"max_gap_s must be positive, got {max_gap_s}", fix="e.g. 300 seconds")
    if ts.size == 0:
        return np.zeros(0)
    return sample_durations((ts - ts[0]) / _US_PER_S, max_gap_s=max_gap_s).dt_s


def _day_of(bounds: I64, t_us: I64) -> I64:
    """Local day index of each instant; -1 before the first day, n_days after the last."""
    day = np.searchsorted(bounds, t_us, side="right") - 1
    return np.where(t_us >= bounds[-1], bounds.size - 1, day).astype(np.int64)


def resting_floor(
    ts_us: npt.ArrayLike,
    bpm: npt.ArrayLike,
    bounds_us: npt.ArrayLike,
    *,
    window_min: float = 5.0,
    min_hours: float = 10.0,
    max_gap_s: float = 300.0,
) -> RestFloor:
    """Lowest stable heart rate of each local day, from all-day HR.

    1. Samples are averaged per UTC minute. A minute without a sample of its own takes the
       value of the last sample before it when that sample holds (until the next sample, at
       most ``max_gap_s``) to the minute's end, so 1-2 minute sources fill every minute they
       cover; a minute not wholly covered has no value.
    2. For each run of ``window_min`` consecutive minutes that all have a value, the mean of
       the minute values; a window belongs to the local day in which it starts.
    3. Per day, the lowest such mean. The day's value is NaN when its HR coverage is below
       ``min_hours`` hours or it has no complete window.

    Parameters
    ----------
    ts_us : array_like of int64, shape (n,)
        Sample instants, microseconds since the Unix epoch (UTC), sorted ascending; any
        sampling (1 s, 5 s, 1-2 min).
    bpm : array_like of float, shape (n,)
        Heart rate, beats per minute; NaN samples are dropped.
    bounds_us : array_like of int64, shape (n_days + 1,)
        UTC instants of consecutive local midnights; day i is ``[bounds[i], bounds[i+1])``.
    window_min : float, default 5.0
        Window length in whole minutes (>= 1).
    min_hours : float, default 10.0
        HR coverage a day needs for a floor, hours.
    max_gap_s : float, default 300.0
        Longest time one sample stands for, seconds (all-day HR is sparse).

    Returns
    -------
    RestFloor
        ``floor_bpm`` (bpm) and ``hours`` (coverage, hours), shape (n_days,) each.

    Raises
    ------
    UsageError
        If ``window_min`` is not a whole number >= 1, or ``min_hours`` / ``max_gap_s`` are
        out of range.
    ValueError
        If the samples are not sorted, shapes differ, or ``bounds_us`` is not increasing.
    """
    ts, hr = _samples(ts_us, bpm)
    bounds = _bounds(bounds_us)
    if not (window_min >= 1 and float(window_min).is_integer()):
        raise UsageError(
            f"hr_rest_window_min must be a whole number of minutes >= 1, got {window_min}",
            fix="e.g. 5",
        )
    if not (min_hours >= 0 and np.isfinite(min_hours)):
        raise UsageError(f"hr_rest_min_h must be >= 0 hours, got {min_hours}", fix="e.g. 10")
    w = int(window_min)
    n_days = bounds.size - 1
    hold = _holds(ts, max_gap_s)
    hours = interval_window_sums(ts, hold, np.ones(ts.size), bounds[:-1], bounds[1:]) / 3600.0
    floor = np.full(n_days, np.inf)

    # Minutes from the one holding the first midnight to the last window that starts before
    # the last midnight.
    m0 = int(bounds[0] // _US_PER_MIN)
    m_end = int(-(-bounds[-1] // _US_PER_MIN)) + w - 1
    n_min = m_end - m0
    if ts.size and n_days and n_min >= w:
        idx = ts // _US_PER_MIN - m0
        before = int(np.searchsorted(idx, 0))  # samples before the first minute
        upto = int(np.searchsorted(idx, n_min))
        inside = idx[before:upto]
        counts = np.bincount(inside, minlength=n_min)
        sums = np.bincount(inside, weights=hr[before:upto], minlength=n_min)
        minute_end = (m0 + 1 + np.arange(n_min, dtype=np.int64)) * _US_PER_MIN
        # the last sample before each minute's end (ts sorted: a running count)
        last = np.cumsum(counts) + (before - 1)
        lk = np.maximum(last, 0)
        held = (last >= 0) & (ts[lk] + np.round(hold[lk] * _US_PER_S) >= minute_end)
        has = (counts > 0) | held
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(counts > 0, sums / np.maximum(counts, 1), hr[lk])
        value = np.where(has, value, 0.0)
        # window means: the w minute values added in order, then divided (as a mean over a
        # window adds them), and windows with every minute valued (a running count)
        n_win = n_min - w + 1
        total = value[:n_win].copy()
        for k in range(1, w):
            total += value[k : k + n_win]
        means = total / w
        run = np.concatenate(([0], np.cumsum(has, dtype=np.int64)))
        complete = run[w : w + n_win] - run[:n_win] == w
        # windows by the local day they start in: [first minute starting in day j, ...)
        first_min = -(-(bounds - m0 * _US_PER_MIN) // _US_PER_MIN)
        edges = np.clip(first_min, 0, n_win)
        # the days with windows tile [edges[0], edges[-1]): one minimum per day's run
        means = np.where(complete, means, np.inf)[edges[0] : edges[-1]]
        days = np.flatnonzero(edges[1:] > edges[:-1])
        if days.size:
            floor[days] = np.minimum.reduceat(means, edges[days] - edges[0])
    floor[~np.isfinite(floor) | (hours < min_hours)] = np.nan
    return RestFloor(floor_bpm=floor, hours=hours)


def smooth_days(values: npt.ArrayLike, *, days: int = 7) -> F64:
    """Centred rolling median over days, NaN-aware, with gaps filled from the nearest day.

    Day i takes the median of the finite values among days ``i - days // 2 ..
    i + (days - 1) // 2`` (for an even ``days`` the window reaches one day further back);
    a day with no finite value in its window then takes the value of the nearest day that has
    one (equally near: the earlier). All-NaN input stays NaN.

    Parameters
    ----------
    values : array_like of float, shape (n,)
        One value per consecutive local day (e.g. :attr:`RestFloor.floor_bpm`), NaN where
        there is none.
    days : int, default 7
        Window length, days (>= 1).

    Returns
    -------
    ndarray of float64, shape (n,)
        Smoothed values, units of ``values``.

    Raises
    ------
    UsageError
        If ``days`` is below 1.
    ValueError
        If ``values`` is not 1-D.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D (one value per day), got shape {v.shape}")
    if int(days) != days or days < 1:
        raise UsageError(f"hr_rest_smooth_days must be a whole number >= 1, got {days}")
    if v.size == 0 or not np.any(np.isfinite(v)):
        return np.full(v.size, np.nan)
    before, after = days // 2, (days - 1) // 2
    padded = np.concatenate([np.full(before, np.nan), v, np.full(after, np.nan)])
    win = sliding_window_view(padded, days)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: filled below
        med = np.nanmedian(win, axis=-1)
    have = np.flatnonzero(np.isfinite(med))
    pos = np.arange(v.size)
    nxt = np.searchsorted(have, pos, side="left")  # first estimated day at or after pos
    prv = nxt - 1
    big = np.iinfo(np.int64).max
    d_prev = np.where(prv >= 0, pos - have[np.maximum(prv, 0)], big)
    d_next = np.where(nxt < have.size, have[np.minimum(nxt, have.size - 1)] - pos, big)
    nearest = np.where(
        d_prev <= d_next, have[np.maximum(prv, 0)], have[np.minimum(nxt, have.size - 1)]
    )
    return np.where(np.isfinite(med), med, med[nearest])


def sustained_peak(
    ts_us: npt.ArrayLike,
    bpm: npt.ArrayLike,
    bounds_us: npt.ArrayLike,
    *,
    peak_s: float = 10.0,
    max_gap_s: float = 60.0,
) -> F64:
    """Highest heart rate sustained over ``peak_s`` seconds, per local day.

    Over every window ``[a, a + peak_s)`` lying wholly in time covered by samples (each holds
    until the next, at most ``max_gap_s``, so no gap longer than that is inside), the
    time-weighted mean HR; the day's peak is the highest mean of the windows starting that
    day (at whole microseconds). The mean of a step function over a sliding window is
    piecewise linear in ``a``, so its maximum is at a window that starts at a sample or ends
    where a sample's hold ends, or at the day's first or last start: exactly those windows
    are evaluated (2 per sample, 2 per day), which gives the maximum over all windows. A
    single 220 bpm artefact among 1 Hz samples moves a 10 s mean by a tenth of its excess,
    not to 220.

    Parameters
    ----------
    ts_us : array_like of int64, shape (n,)
        Sample instants, microseconds since the Unix epoch (UTC), sorted ascending.
    bpm : array_like of float, shape (n,)
        Heart rate, beats per minute; NaN samples are dropped.
    bounds_us : array_like of int64, shape (n_days + 1,)
        UTC instants of consecutive local midnights.
    peak_s : float, default 10.0
        Window length, seconds (> 0).
    max_gap_s : float, default 60.0
        Longest time one sample stands for, seconds.

    Returns
    -------
    ndarray of float64, shape (n_days,)
        Peak HR, bpm; NaN for a day without a covered window.

    Raises
    ------
    UsageError
        If ``peak_s`` or ``max_gap_s`` is not positive.
    ValueError
        If the samples are not sorted, shapes differ, or ``bounds_us`` is not increasing.
    """
    ts, hr = _samples(ts_us, bpm)
    bounds = _bounds(bounds_us)
    if not (peak_s > 0 and np.isfinite(peak_s)):
        raise UsageError(f"hr_peak_s must be positive, got {peak_s}", fix="e.g. 10 seconds")
    hold = _holds(ts, max_gap_s)
    n_days = bounds.size - 1
    peak = np.full(n_days, -np.inf)
    if ts.size and n_days:
        length_us = round(peak_s * _US_PER_S)
        span_s = length_us / _US_PER_S
        # Cumulative covered time (integer microseconds, exact) and beats before each sample:
        # the integral up to a window edge that is a sample's start or its hold's end is read
        # off directly; only the other edge needs a search.
        hold_us = np.round(hold * _US_PER_S).astype(np.int64)
        cov = np.concatenate([[0], np.cumsum(hold_us)])
        bts = np.concatenate([[0.0], np.cumsum(hr * (hold_us / _US_PER_S))])
        ends = ts + hold_us

        def upto(x: I64) -> tuple[I64, F64]:
            """Covered microseconds and beats from the first sample to each instant x."""
            k = np.searchsorted(ts, x, side="right") - 1  # last sample starting at or before x
            kk = np.maximum(k, 0)
            part = np.clip(x - ts[kk], 0, hold_us[kk])
            c = np.where(k >= 0, cov[kk] + part, 0)
            return c, np.where(k >= 0, bts[kk] + hr[kk] * (part / _US_PER_S), 0.0)

        n = ts.size
        idx = np.arange(n)
        # Windows starting at a sample (their end searched) and windows ending where a hold
        # ends (their start searched).
        starts_b = ends - length_us
        c1, b1 = upto(ts + length_us)
        c2, b2 = upto(starts_b)
        groups = [
            (ts, c1 - cov[idx], b1 - bts[idx]),
            (starts_b, cov[idx + 1] - c2, bts[idx + 1] - b2),
        ]
        # Windows starting at each day's first and last microsecond: the mean is piecewise
        # linear in the start, so with the windows above the maximum over every start in
        # the day is among these.
        first_last = np.concatenate([bounds[:-1], bounds[1:] - 1])
        c3, b3 = upto(first_last)
        c4, b4 = upto(first_last + length_us)
        day_fl = np.tile(np.arange(n_days), 2)
        ok_fl = c4 - c3 >= length_us
        np.maximum.at(peak, day_fl[ok_fl], (b4 - b3)[ok_fl] / span_s)  # 2 per day: small
        # Window starts ascend within each group (holds do not overlap), so each group's days
        # ascend: the per-day maximum is a segmented reduction.
        for start, covered, beats in groups:
            day = _day_of(bounds, start)
            ok = (covered >= length_us) & (day >= 0) & (day < n_days)
            d, v = day[ok], beats[ok] / span_s
            if d.size:
                first = np.flatnonzero(np.concatenate([[True], d[1:] != d[:-1]]))
                seg = np.maximum.reduceat(v, first)
                peak[d[first]] = np.maximum(peak[d[first]], seg)
    peak[~np.isfinite(peak)] = np.nan
    return peak


def hr_max_estimate(
    age_based: npt.ArrayLike, peaks: npt.ArrayLike, *, cumulative: bool = False
) -> tuple[F64, list[str]]:
    """Maximum HR per day: the age-predicted value, unless the data show a higher one.

    ``est[d] = max(age_based[d], P)`` where ``P`` is the highest finite sustained peak over
    the whole record (``cumulative=True``: over the days up to and including d); the source is
    ``'observed_peak'`` where ``P`` is strictly higher, else ``'age'``. A peak is judged only
    against an age estimate: where ``age_based`` is NaN (birth year unknown) the estimate is
    NaN and the source ``'none'``, so a submaximal walk never becomes HRmax on its own.

    Parameters
    ----------
    age_based : array_like of float, shape (n_days,)
        Age-predicted HRmax per day (e.g. :func:`actidose.dose.hr.hrmax_tanaka`), bpm.
    peaks : array_like of float, shape (n_days,)
        Sustained peak per day (:func:`sustained_peak`), bpm, NaN where none.
    cumulative : bool, default False
        Use only peaks observed up to each day instead of the whole record's.

    Returns
    -------
    est : ndarray of float64, shape (n_days,)
        HRmax estimate, bpm.
    source : list of str, length n_days
        ``'observed_peak'``, ``'age'`` or ``'none'`` per day.

    Raises
    ------
    ValueError
        If the shapes differ or are not 1-D.
    """
    age = np.asarray(age_based, dtype=np.float64)
    pk = np.asarray(peaks, dtype=np.float64)
    if age.ndim != 1 or age.shape != pk.shape:
        raise ValueError(
            f"age_based and peaks must be 1-D of equal length, got {age.shape}, {pk.shape}"
        )
    if cumulative:
        best = np.fmax.accumulate(pk) if pk.size else pk
    else:
        best = np.full(pk.size, np.nanmax(pk) if np.any(~np.isnan(pk)) else np.nan)
    higher = best > age  # False where either is NaN
    est = np.where(np.isnan(age), np.nan, np.where(higher, best, age))
    source = np.where(np.isnan(age), "none", np.where(higher, "observed_peak", "age"))
    return est, [str(s) for s in source]
