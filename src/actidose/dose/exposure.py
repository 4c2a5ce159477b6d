"""Sums over time windows: events, step functions and calendar days.

The building blocks of "the dose before each rating" (``symptom_exposure``): a window is a
half-open interval ``[start, end)`` of UTC instants (int64 microseconds since the Unix epoch),
and the kernels add up what lies inside it. Every kernel is a cumulative sum evaluated at the
window edges (``searchsorted`` + one subtraction), so the cost is O(n + m) for n values and m
windows whatever the windows' lengths or overlaps.

* :func:`event_window_sums` / :func:`event_window_counts`: point events (sessions at their
  start, daily totals at their day start), counted where ``start <= t < end``.
* :func:`interval_window_sums`: step-function data (each sample holds a rate for some seconds),
  integrated over the window; samples straddling an edge count in proportion.
* :func:`day_fraction_sums`: per-day values weighted by the share of each local day (23, 24 or
  25 hours long) that lies inside the window.

Sums are differences of float64 cumulative sums: equal to the direct sum up to rounding (a
relative error of about 1e-15 of the series total), not bit for bit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "day_fraction_sums",
    "event_window_counts",
    "event_window_sums",
    "interval_window_sums",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_US_PER_S = 1_000_000


def _windows(start_us: npt.ArrayLike, end_us: npt.ArrayLike) -> tuple[I64, I64]:
    start = np.asarray(start_us, dtype=np.int64)
    end = np.asarray(end_us, dtype=np.int64)
    if start.ndim != 1 or start.shape != end.shape:
        raise ValueError(
            f"start_us and end_us must be 1-D of equal length, got {start.shape}, {end.shape}"
        )
    bad = np.flatnonzero(end < start)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"window {i} ends before it starts: end {end[i]} < start {start[i]}")
    return start, end


def _sorted_times(t_us: npt.ArrayLike, name: str) -> I64:
    t = np.asarray(t_us, dtype=np.int64)
    if t.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {t.shape}")
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise ValueError(f"{name} must be sorted ascending: {name}[{i}] < {name}[{i - 1}]")
    return t


def event_window_counts(
    event_us: npt.ArrayLike, start_us: npt.ArrayLike, end_us: npt.ArrayLike
) -> I64:
    """Number of events in each window ``[start, end)``.

    Parameters
    ----------
    event_us : array_like of int64, shape (n,)
        Event instants, microseconds since the Unix epoch (UTC), sorted ascending (ties allowed).
    start_us, end_us : array_like of int64, shape (m,)
        Window edges, same units; the start is included, the end excluded.

    Returns
    -------
    ndarray of int64, shape (m,)
        Events with ``start <= t < end``.

    Raises
    ------
    ValueError
        If ``event_us`` is not sorted, shapes differ, or a window ends before it starts.
    """
    t = _sorted_times(event_us, "event_us")
    start, end = _windows(start_us, end_us)
    lo = np.searchsorted(t, start, side="left")
    hi = np.searchsorted(t, end, side="left")
    return (hi - lo).astype(np.int64)


def event_window_sums(
    event_us: npt.ArrayLike,
    values: npt.ArrayLike,
    start_us: npt.ArrayLike,
    end_us: npt.ArrayLike,
) -> F64:
    """Sum of the values of the events in each window ``[start, end)``.

    ``out[..., j] = sum(values[..., i] for events i with start[j] <= t[i] < end[j])``.

    NaN values count as 0 (a session without a TRIMP adds no TRIMP), with one exception: a
    window that holds at least one event and in which every event's value is NaN sums to NaN
    (nothing in it was measured). A window without events sums to 0. Each row of a 2-D
    ``values`` is judged on its own.

    Parameters
    ----------
    event_us : array_like of int64, shape (n,)
        Event instants, microseconds since the Unix epoch (UTC), sorted ascending (ties allowed).
    values : array_like of float, shape (n,) or (k, n)
        One value per event, or k rows of values (e.g. TRIMP, minutes) per event.
    start_us, end_us : array_like of int64, shape (m,)
        Window edges, same units; the start is included, the end excluded.

    Returns
    -------
    ndarray of float64, shape (m,) or (k, m)
        Window sums, in the units of ``values``.

    Raises
    ------
    ValueError
        If ``event_us`` is not sorted, shapes differ, or a window ends before it starts.
    """
    t = _sorted_times(event_us, "event_us")
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim not in (1, 2) or vals.shape[-1] != t.size:
        raise ValueError(f"values must have shape ({t.size},) or (k, {t.size}), got {vals.shape}")
    start, end = _windows(start_us, end_us)
    lo = np.searchsorted(t, start, side="left")
    hi = np.searchsorted(t, end, side="left")
    v2 = np.atleast_2d(vals)
    finite = ~np.isnan(v2)
    zeros = np.zeros((v2.shape[0], 1))
    cs = np.concatenate([zeros, np.cumsum(np.where(finite, v2, 0.0), axis=1)], axis=1)
    cn = np.concatenate([zeros, np.cumsum(finite, axis=1, dtype=np.float64)], axis=1)
    sums = cs[:, hi] - cs[:, lo]
    measured = cn[:, hi] - cn[:, lo]
    all_nan = (measured == 0) & (hi > lo)[None, :]
    out = np.where(all_nan, np.nan, sums)
    return out[0] if vals.ndim == 1 else out


def _step_integral(t_us: I64, hold_s: F64, rate: F64, x_us: I64) -> F64:
    """Integral of the step function (``rate[i]`` on ``[t[i], t[i] + hold[i])``, 0 elsewhere)
    from the beginning of time to each ``x``. Intervals are sorted and do not overlap.
    ``rate`` of shape (k, n) integrates k functions with one search: result (k, m)."""
    x = np.asarray(x_us, dtype=np.int64)
    r = np.atleast_2d(rate)
    if t_us.size == 0:
        out = np.zeros((r.shape[0], *x.shape))
    else:
        zero = np.zeros((r.shape[0], 1))
        cum = np.concatenate([zero, np.cumsum(r * hold_s, axis=-1)], axis=-1)
        k = np.searchsorted(t_us, x, side="right") - 1  # last sample starting at or before x
        kk = np.maximum(k, 0)
        part = np.clip((x - t_us[kk]) / _US_PER_S, 0.0, hold_s[kk])
        out = np.where(k >= 0, cum[:, kk] + r[:, kk] * part, 0.0)
    return out[0] if np.ndim(rate) == 1 else out


def interval_window_sums(
    t_us: npt.ArrayLike,
    hold_s: npt.ArrayLike,
    rate: npt.ArrayLike,
    start_us: npt.ArrayLike,
    end_us: npt.ArrayLike,
) -> F64:
    """Integral of step-function data over each window ``[start, end)``.

    Sample i holds ``rate[i]`` (units per second) from ``t[i]`` for ``hold_s[i]`` seconds;
    the result is ``sum_i rate[i] * |[t[i], t[i] + hold_s[i]) ∩ [start, end)|`` in seconds,
    so a sample that straddles a window edge counts in proportion to its part inside.
    With ``rate`` = TRIMP per second the result is TRIMP; with ``rate`` = 1 it is the seconds
    covered; with ``rate`` = 1 on vigorous samples and 0 elsewhere, vigorous seconds.

    NaN rates count as 0 (the sample's time holds no value).

    Parameters
    ----------
    t_us : array_like of int64, shape (n,)
        Sample start instants, microseconds since the Unix epoch (UTC), sorted ascending.
    hold_s : array_like of float, shape (n,)
        Seconds each sample holds (>= 0), e.g. :attr:`actidose.dose.hr.Durations.dt_s`. The
        intervals must not overlap: ``t[i] + hold_s[i] <= t[i+1]`` (1 microsecond tolerance).
    rate : array_like of float, shape (n,)
        Value per second of each sample.
    start_us, end_us : array_like of int64, shape (m,)
        Window edges; the start is included, the end excluded.

    Returns
    -------
    ndarray of float64, shape (m,)
        Integrals, in ``rate`` units times seconds.

    Raises
    ------
    ValueError
        On unsorted or overlapping samples, negative or non-finite holds, mismatched shapes,
        or a window that ends before it starts.
    """
    t = _sorted_times(t_us, "t_us")
    hold = np.asarray(hold_s, dtype=np.float64)
    r = np.asarray(rate, dtype=np.float64)
    if hold.shape != t.shape or r.shape != t.shape:
        raise ValueError(
            f"t_us, hold_s and rate must have equal shapes, got {t.shape}, {hold.shape}, {r.shape}"
        )
    if not np.all(np.isfinite(hold) & (hold >= 0)):
        i = int(np.flatnonzero(~(np.isfinite(hold) & (hold >= 0)))[0])
        raise ValueError(f"hold_s must be finite and >= 0; hold_s[{i}] = {hold[i]}")
    overlap = np.flatnonzero(t[:-1] + hold[:-1] * _US_PER_S > t[1:] + 1)
    if overlap.size:
        i = int(overlap[0])
        raise ValueError(f"sample {i} holds past the start of sample {i + 1} (overlap)")
    start, end = _windows(start_us, end_us)
    r0 = np.where(np.isnan(r), 0.0, r)
    return _step_integral(t, hold, r0, end) - _step_integral(t, hold, r0, start)


def day_fraction_sums(
    bounds_us: npt.ArrayLike,
    day_values: npt.ArrayLike,
    start_us: npt.ArrayLike,
    end_us: npt.ArrayLike,
) -> F64:
    """Per-day values weighted by the share of each day inside each window ``[start, end)``.

    ``out[j] = sum_i day_values[i] * |[b[i], b[i+1]) ∩ [start[j], end[j])| / (b[i+1] - b[i])``.

    Days are local calendar days, so ``b[i+1] - b[i]`` is 23, 24 or 25 hours; each counts as one
    day. With ``day_values`` = 1 on observed days (0 elsewhere) this is the number of observed
    days in the window; with all ones it is the window's length in days. Time in a window
    before ``b[0]`` or after ``b[n]`` adds nothing. NaN values count as 0.

    Parameters
    ----------
    bounds_us : array_like of int64, shape (n + 1,)
        UTC instants of consecutive local midnights (microseconds since the Unix epoch),
        strictly increasing: day i is ``[bounds[i], bounds[i+1])``.
    day_values : array_like of float, shape (n,)
        One value per day.
    start_us, end_us : array_like of int64, shape (m,)
        Window edges; the start is included, the end excluded.

    Returns
    -------
    ndarray of float64, shape (m,)
        Weighted sums, in ``day_values`` units (days, for indicators).

    Raises
    ------
    ValueError
        If ``bounds_us`` is not strictly increasing, shapes differ, or a window ends before
        it starts.
    """
    b = np.asarray(bounds_us, dtype=np.int64)
    v = np.asarray(day_values, dtype=np.float64)
    if b.ndim != 1 or b.size < 1 or v.shape != (b.size - 1,):
        raise ValueError(
            f"bounds_us must have shape (n + 1,) and day_values (n,), got {b.shape}, {v.shape}"
        )
    if np.any(np.diff(b) <= 0):
        raise ValueError("bounds_us must be strictly increasing")
    start, end = _windows(start_us, end_us)
    if v.size == 0:
        return np.zeros(start.size)
    length = (b[1:] - b[:-1]).astype(np.float64)
    v0 = np.where(np.isnan(v), 0.0, v)
    cum = np.concatenate([[0.0], np.cumsum(v0)])

    def through(x: I64) -> F64:
        # Sum of whole days before x plus the part of the day x falls in.
        k = np.clip(np.searchsorted(b, x, side="right") - 1, 0, v.size - 1)
        frac = np.clip((x - b[k]) / length[k], 0.0, 1.0)
        return np.where(x <= b[0], 0.0, cum[k] + v0[k] * frac)

    return through(end) - through(start)
