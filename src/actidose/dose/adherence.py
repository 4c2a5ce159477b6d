"""Adherence to a prescribed exercise dose: time in the target HR band, which sessions count,
and sessions / minutes / TRIMP per prescribed week against what was prescribed.

Pure numpy, arrays in and arrays out, like the rest of :mod:`actidose.dose`.

Conventions
-----------
* The target band is a range of a fraction ``f`` of the HR anchors: the HR reserve fraction
  ``f = (HR - HRrest) / (HRmax - HRrest)`` (Karvonen, *not* clipped) for scheme ``'hrr'``, or
  ``f = HR / HRmax`` for scheme ``'hrmax'``. A value is in the band when ``low <= f <= high``
  (both edges included: a prescription of "60-80 %" includes 60 % and 80 %).
* Prescribed weeks are 7-day blocks counted from the participant's start date (day 1 of the
  prescription), not ISO or calendar weeks: week ``k`` (1-based) runs from
  ``start + 7 (k - 1)`` to ``start + 7 k - 1``, both days included. Sessions before the start
  or after the last prescribed day are ignored.
* Weekly adherence is ``100 * min(done / prescribed, 1)``: extra sessions in one week do not
  make up for a missed one in another. Adherence over the whole prescription is the total done
  against the total prescribed, capped at 100 (:class:`AdherenceSummary`), so sessions caught
  up in a later week do count there; ``weeks_met`` and the mean of the weekly percentages tell
  the two readings apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "BAND_SCHEMES",
    "QUALIFY_RULES",
    "AdherenceSummary",
    "WeeklyAdherence",
    "band_seconds",
    "in_band",
    "prescribed_session_trimp",
    "session_qualifies",
    "weekly_adherence",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Days = npt.NDArray[np.datetime64]

BAND_SCHEMES = ("hrr", "hrmax")
"""What a band's fractions are fractions of: HR reserve (Karvonen) or HRmax."""

QUALIFY_RULES = ("duration_in_band", "band_minutes", "duration")
"""When a session counts towards the prescription:

* ``'duration_in_band'``: it lasted at least the prescribed minutes and its mean HR was in the
  band;
* ``'band_minutes'``: it had at least the prescribed minutes with HR in the band;
* ``'duration'``: it lasted at least the prescribed minutes, at any intensity.
"""


def _check_band(scheme: str, low: float | None, high: float | None) -> tuple[float, float]:
    if scheme not in BAND_SCHEMES:
        raise ValueError(f"unknown band scheme {scheme!r}; choose from {list(BAND_SCHEMES)}")
    if low is None or high is None:
        raise ValueError("a band needs both edges, low and high")
    lo, hi = float(low), float(high)
    if not (np.isfinite(lo) and np.isfinite(hi) and 0.0 < lo < hi):
        raise ValueError(f"band needs 0 < low < high, got low={low}, high={high}")
    return lo, hi


def _fraction(
    bpm: F64, hr_rest: npt.ArrayLike | None, hr_max: npt.ArrayLike, scheme: str
) -> tuple[F64, Bool]:
    """The band fraction of each value, and where an anchor the scheme needs is missing."""
    mx = np.broadcast_to(np.asarray(hr_max, dtype=np.float64), bpm.shape)
    if scheme == "hrr":
        rest_in = np.nan if hr_rest is None else hr_rest
        rest = np.broadcast_to(np.asarray(rest_in, dtype=np.float64), bpm.shape)
        missing = np.isnan(rest) | np.isnan(mx)
        if np.any(~missing & ~(mx > rest)):
            raise ValueError("hr_max must be greater than hr_rest")
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = (bpm - rest) / (mx - rest)
    else:
        missing = np.isnan(mx)
        if np.any(~missing & ~(mx > 0)):
            raise ValueError("hr_max must be positive")
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = bpm / mx
    return np.asarray(frac, dtype=np.float64), np.asarray(missing, dtype=bool)


def band_seconds(
    bpm: npt.ArrayLike,
    dt_s: npt.ArrayLike,
    hr_rest: npt.ArrayLike | None,
    hr_max: npt.ArrayLike,
    *,
    scheme: str,
    low: float | None,
    high: float | None,
) -> F64:
    """Seconds each HR sample spends in the target band.

    ``band_s[i] = dt_s[i]`` when ``low <= f[i] <= high``, else 0, with ``f`` the HR reserve
    fraction (``'hrr'``, unclipped) or ``HR / HRmax`` (``'hrmax'``).

    Parameters
    ----------
    bpm : array_like of float, shape (n,)
        Heart rate, bpm. A NaN sample is not in the band (contributes 0).
    dt_s : array_like of float, shape (n,)
        Hold time of each sample, seconds (:func:`actidose.dose.hr.sample_durations`).
    hr_rest : float, array_like of float, or None
        Resting HR, bpm, scalar or per sample; needed by ``'hrr'`` only (None: unknown).
    hr_max : float or array_like of float
        Maximal HR, bpm, scalar or per sample.
    scheme : {'hrr', 'hrmax'}
        What ``low`` and ``high`` are fractions of.
    low, high : float
        Band edges as fractions (0.6 for 60 %), ``0 < low < high``; both included (None, as
        an arm without a band has, is a ValueError).

    Returns
    -------
    ndarray of float64, shape (n,)
        Seconds in the band per sample; NaN where an anchor the scheme needs is NaN (the
        sample's band time is unknown, not zero). ``np.nansum(out) / 60`` is the minutes in band.

    Raises
    ------
    ValueError
        Unknown scheme, bad band, shapes that differ, negative or non-finite ``dt_s``, or
        ``hr_max <= hr_rest`` where both are known.
    """
    low, high = _check_band(scheme, low, high)
    h = np.asarray(bpm, dtype=np.float64)
    dt = np.asarray(dt_s, dtype=np.float64)
    if h.shape != dt.shape:
        raise ValueError(f"bpm and dt_s must have the same shape, got {h.shape} and {dt.shape}")
    if not np.all(np.isfinite(dt)) or np.any(dt < 0):
        raise ValueError("dt_s must be finite and >= 0 seconds")
    frac, missing = _fraction(h, hr_rest, hr_max, scheme)
    with np.errstate(invalid="ignore"):
        inside = (frac >= low) & (frac <= high)
    out = np.where(inside, dt, 0.0)
    out[missing] = np.nan
    return out


def in_band(
    mean_bpm: npt.ArrayLike,
    hr_rest: npt.ArrayLike | None,
    hr_max: npt.ArrayLike,
    *,
    scheme: str,
    low: float | None,
    high: float | None,
) -> Bool:
    """Whether each value (e.g. a session's mean HR) is in the target band.

    Parameters
    ----------
    mean_bpm : array_like of float
        Heart rates, bpm.
    hr_rest : float, array_like of float, or None
        Resting HR, bpm (``'hrr'`` only), broadcastable to ``mean_bpm``.
    hr_max : float or array_like of float
        Maximal HR, bpm, broadcastable to ``mean_bpm``.
    scheme : {'hrr', 'hrmax'}
    low, high : float
        Band edges as fractions, ``0 < low < high``; both included.

    Returns
    -------
    ndarray of bool, shape of ``mean_bpm``
        True where ``low <= f <= high``; False where the HR or an anchor the scheme needs is
        NaN (an unknown intensity does not count as in the band).
    """
    low, high = _check_band(scheme, low, high)
    h = np.asarray(mean_bpm, dtype=np.float64)
    frac, _ = _fraction(h, hr_rest, hr_max, scheme)
    with np.errstate(invalid="ignore"):
        return np.asarray((frac >= low) & (frac <= high), dtype=bool)


def session_qualifies(
    duration_min: npt.ArrayLike,
    band_min: npt.ArrayLike,
    mean_in_band: npt.ArrayLike,
    *,
    rule: str,
    min_session_min: float,
) -> Bool:
    """Whether each session counts towards the prescription (see :data:`QUALIFY_RULES`).

    Parameters
    ----------
    duration_min : array_like of float, shape (n,)
        Session durations, minutes.
    band_min : array_like of float, shape (n,)
        Minutes of each session with HR in the band (NaN: unknown); used by
        ``'band_minutes'``.
    mean_in_band : array_like of bool, shape (n,)
        Whether each session's mean HR is in the band (:func:`in_band`); used by
        ``'duration_in_band'``.
    rule : {'duration_in_band', 'band_minutes', 'duration'}
    min_session_min : float
        Prescribed minimum, minutes (>= 0). Comparisons include the minimum.

    Returns
    -------
    ndarray of bool, shape (n,)
        NaN durations or band minutes never qualify.
    """
    if rule not in QUALIFY_RULES:
        raise ValueError(f"unknown qualify rule {rule!r}; choose from {list(QUALIFY_RULES)}")
    dur = np.asarray(duration_min, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if rule == "duration":
            return np.asarray(dur >= min_session_min, dtype=bool)
        if rule == "band_minutes":
            band = np.asarray(band_min, dtype=np.float64)
            return np.asarray(band >= min_session_min, dtype=bool)
        mean_ok = np.asarray(mean_in_band, dtype=bool)
        return np.asarray((dur >= min_session_min) & mean_ok, dtype=bool)


def prescribed_session_trimp(
    minutes: float, low: float | None, high: float | None, a: float, b: float
) -> float:
    """Banister TRIMP of one prescribed session: ``minutes`` at the middle of an HRR band.

    ``TRIMP = minutes * x * a * exp(b * x)`` with ``x = (low + high) / 2``.

    This is the TRIMP a session delivers when it lasts exactly the prescribed minutes at the
    band's midpoint HR reserve fraction; it is what actidose prescribes per session when the
    prescription gives no ``trimp_per_week`` (times ``sessions_per_week`` for the week). The
    weight ``x exp(b x)`` is convex, so a session spread evenly over the band delivers slightly
    more than this (+1.3 % for 60-80 % HRR with women's coefficients, +1.5 % with men's); a
    session held at the lower edge delivers about 28 % less.

    Parameters
    ----------
    minutes : float
        Prescribed session length, minutes (>= 0).
    low, high : float or None
        Band edges as fractions of HR reserve, ``0 < low < high``; None: no band.
    a, b : float
        Banister coefficients (:func:`actidose.dose.hr.banister_coefficients`).

    Returns
    -------
    float
        TRIMP units (weighted minutes). NaN when there is no band (``low`` or ``high`` None) or
        any input is NaN. Only an HR-reserve band defines it: callers pass None for ``'hrmax'``
        bands.

    References
    ----------
    Banister EW 1991; Morton RH, Fitz-Clarke JR, Banister EW 1990, J Appl Physiol 69:1171.
    """
    if low is None or high is None:
        return float("nan")
    x = (float(low) + float(high)) / 2.0
    return float(minutes) * x * float(a) * float(np.exp(float(b) * x))


@dataclass(frozen=True)
class AdherenceSummary:
    """Adherence over a whole prescription.

    Attributes
    ----------
    start_day, end_day : numpy.datetime64
        First and last day (both included) of the prescription, ``datetime64[D]``.
    weeks : int
        Prescribed weeks.
    weeks_with_data : int
        Weeks with at least one observed day.
    weeks_met : int
        Weeks with ``sessions_done >= sessions_prescribed``.
    sessions_prescribed : float
    sessions_done : int
        Qualifying sessions inside the prescription.
    sessions_any : int
        Every session given inside the prescription, qualifying or not.
    band_min, band_min_prescribed : float
        Minutes in the band, delivered and prescribed (NaN: unknown / not prescribed).
    trimp_banister, trimp_prescribed, trimp_pct : float
        Banister TRIMP delivered, prescribed, and ``100 * delivered / prescribed`` (not capped;
        NaN when either is unknown).
    adherence_pct : float
        ``100 * min(sessions_done / sessions_prescribed, 1)`` over the whole prescription.
    weekly_mean_pct : float
        Mean of the weekly adherence percentages (each capped at 100): missed weeks cannot be
        made up here, unlike in ``adherence_pct``.
    """

    start_day: np.datetime64
    end_day: np.datetime64
    weeks: int
    weeks_with_data: int
    weeks_met: int
    sessions_prescribed: float
    sessions_done: int
    sessions_any: int
    band_min: float
    band_min_prescribed: float
    trimp_banister: float
    trimp_prescribed: float
    trimp_pct: float
    adherence_pct: float
    weekly_mean_pct: float


@dataclass(frozen=True)
class WeeklyAdherence:
    """Adherence per prescribed week; every array has one value per week (``weeks``).

    Attributes
    ----------
    week : ndarray of int64
        1 .. weeks (1 = the week starting on the start date).
    week_start, week_end : ndarray of datetime64[D]
        First and last day of each week (``week_end = week_start + 6``, included).
    days_observed : ndarray of int64
        Days of the week whose ``observed`` flag was True.
    sessions_prescribed : ndarray of float64
    sessions_done, sessions_any : ndarray of int64
        Qualifying sessions, and all given sessions, starting in the week.
    band_min, band_min_prescribed : ndarray of float64
        Minutes in the band: delivered (sum over the week's sessions; NaN when every session
        in the week has it unknown) and prescribed (NaN when the prescription has no band).
    trimp_banister, trimp_prescribed, trimp_pct : ndarray of float64
        Banister TRIMP delivered (same NaN rule), prescribed, and ``100 * delivered /
        prescribed``.
    adherence_pct : ndarray of float64
        ``100 * min(sessions_done / sessions_prescribed, 1)``.
    summary : AdherenceSummary
        The whole prescription.
    """

    week: I64
    week_start: Days
    week_end: Days
    days_observed: I64
    sessions_prescribed: F64
    sessions_done: I64
    sessions_any: I64
    band_min: F64
    band_min_prescribed: F64
    trimp_banister: F64
    trimp_prescribed: F64
    trimp_pct: F64
    adherence_pct: F64
    summary: AdherenceSummary


def _nan_aware_sum(idx: I64, values: F64, n: int) -> F64:
    """Per-bin sums of ``values`` ignoring NaN; NaN for a bin whose every value is NaN (and
    that has at least one value); 0 for an empty bin."""
    known = ~np.isnan(values)
    total = np.bincount(idx, weights=np.where(known, values, 0.0), minlength=n)
    any_value = np.bincount(idx, minlength=n) > 0
    any_known = np.bincount(idx, weights=known.astype(np.float64), minlength=n) > 0
    return np.where(any_value & ~any_known, np.nan, total)


def _pct(done: F64 | float, prescribed: F64 | float) -> F64:
    d = np.asarray(done, dtype=np.float64)
    p = np.asarray(prescribed, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(p > 0, 100.0 * d / p, np.nan), dtype=np.float64)


def _total(values: F64, any_session: bool) -> float:
    """Sum over weeks with the same NaN rule as a week's sum."""
    if not np.any(~np.isnan(values)):
        return float("nan") if any_session else 0.0
    return float(np.nansum(values))


def weekly_adherence(
    start_day: np.datetime64,
    weeks: int,
    session_days: Days,
    qualifies: npt.ArrayLike,
    band_min: npt.ArrayLike,
    trimp: npt.ArrayLike,
    obs_days: Days,
    observed: npt.ArrayLike,
    *,
    sessions_per_week: float,
    band_min_per_week: float | None,
    trimp_per_week: float | None,
) -> WeeklyAdherence:
    """Sessions, minutes in band and TRIMP per prescribed week against the prescription.

    Parameters
    ----------
    start_day : numpy.datetime64
        Day 1 of the prescription (the participant's start date, local), ``datetime64[D]``.
    weeks : int
        Prescribed weeks (>= 1).
    session_days : ndarray of datetime64[D], shape (n,)
        Local day each session starts on. Sessions outside the prescription are ignored.
    qualifies : array_like of bool, shape (n,)
        Whether each session counts (:func:`session_qualifies`).
    band_min : array_like of float, shape (n,)
        Minutes in the band per session (NaN: unknown; zeros when the arm has no band).
    trimp : array_like of float, shape (n,)
        Banister TRIMP per session (NaN: unknown).
    obs_days : ndarray of datetime64[D], shape (m,)
        Days with a day status; days outside the prescription are ignored, and days not listed
        count as not observed.
    observed : array_like of bool, shape (m,)
        Whether each of ``obs_days`` counts as observed (``daily_load.day_status =
        'observed'``, as ``weekly_dose.days_observed`` counts).
    sessions_per_week : float
        Prescribed sessions per week (> 0).
    band_min_per_week, trimp_per_week : float or None
        Prescribed minutes in band and TRIMP per week; None when not prescribed (NaN columns).

    Returns
    -------
    WeeklyAdherence

    Raises
    ------
    ValueError
        ``weeks < 1``, ``sessions_per_week <= 0``, ``start_day`` NaT, or arrays whose lengths
        differ.

    Examples
    --------
    Two of three prescribed sessions in week 1 is 66.7 %:

    >>> import numpy as np
    >>> d = np.array(["2026-03-02", "2026-03-04"], dtype="datetime64[D]")
    >>> w = weekly_adherence(np.datetime64("2026-03-02"), 1, d, [True, True], [30.0, 30.0],
    ...     [40.0, 40.0], d, [True, True], sessions_per_week=3, band_min_per_week=None,
    ...     trimp_per_week=None)
    >>> round(float(w.adherence_pct[0]), 1)
    66.7
    """
    weeks = int(weeks)
    if weeks < 1:
        raise ValueError(f"weeks must be >= 1, got {weeks}")
    if not sessions_per_week > 0:
        raise ValueError(f"sessions_per_week must be > 0, got {sessions_per_week}")
    start: np.datetime64 = np.datetime64(np.asarray(start_day, dtype="datetime64[D]").item(), "D")
    if np.isnat(start):
        raise ValueError("start_day must be a date, not NaT")
    sdays = np.asarray(session_days, dtype="datetime64[D]").reshape(-1)
    qual = np.asarray(qualifies, dtype=bool).reshape(-1)
    bmin = np.asarray(band_min, dtype=np.float64).reshape(-1)
    trm = np.asarray(trimp, dtype=np.float64).reshape(-1)
    if not sdays.size == qual.size == bmin.size == trm.size:
        raise ValueError(
            "session_days, qualifies, band_min and trimp must have the same length, got "
            f"{sdays.size}, {qual.size}, {bmin.size}, {trm.size}"
        )
    odays = np.asarray(obs_days, dtype="datetime64[D]").reshape(-1)
    obs = np.asarray(observed, dtype=bool).reshape(-1)
    if odays.size != obs.size:
        raise ValueError(
            f"obs_days and observed must have the same length, got {odays.size}, {obs.size}"
        )

    # Week index of each session and each observed day (0-based; outside -> dropped).
    s_off = (sdays - start).astype(np.int64)
    s_in = (s_off >= 0) & (s_off < 7 * weeks)
    s_idx = s_off[s_in] // 7
    o_off = (odays - start).astype(np.int64)
    # A day listed twice counts once.
    o_keep = (o_off >= 0) & (o_off < 7 * weeks) & obs
    o_unique = np.unique(o_off[o_keep])

    days_observed = np.bincount(o_unique // 7, minlength=weeks).astype(np.int64)
    sessions_any = np.bincount(s_idx, minlength=weeks).astype(np.int64)
    sessions_done = np.bincount(s_idx[qual[s_in]], minlength=weeks).astype(np.int64)
    band_week = _nan_aware_sum(s_idx, bmin[s_in], weeks)
    trimp_week = _nan_aware_sum(s_idx, trm[s_in], weeks)

    nan = float("nan")
    presc = np.full(weeks, float(sessions_per_week))
    band_presc = np.full(weeks, nan if band_min_per_week is None else float(band_min_per_week))
    trimp_presc = np.full(weeks, nan if trimp_per_week is None else float(trimp_per_week))
    adherence = 100.0 * np.minimum(sessions_done / presc, 1.0)

    week = np.arange(1, weeks + 1, dtype=np.int64)
    week_start = start + ((week - 1) * 7).astype("timedelta64[D]")

    total_presc = float(sessions_per_week) * weeks
    total_done = int(sessions_done.sum())
    any_session = bool(sessions_any.sum() > 0)
    trimp_total = _total(trimp_week, any_session)
    trimp_presc_total = nan if trimp_per_week is None else float(trimp_per_week) * weeks
    summary = AdherenceSummary(
        start_day=start,
        end_day=start + np.timedelta64(7 * weeks - 1, "D"),
        weeks=weeks,
        weeks_with_data=int(np.count_nonzero(days_observed > 0)),
        weeks_met=int(np.count_nonzero(sessions_done >= presc)),
        sessions_prescribed=total_presc,
        sessions_done=total_done,
        sessions_any=int(sessions_any.sum()),
        band_min=_total(band_week, any_session),
        band_min_prescribed=nan if band_min_per_week is None else float(band_min_per_week) * weeks,
        trimp_banister=trimp_total,
        trimp_prescribed=trimp_presc_total,
        trimp_pct=float(_pct(trimp_total, trimp_presc_total)),
        adherence_pct=100.0 * min(total_done / total_presc, 1.0),
        weekly_mean_pct=float(np.mean(adherence)),
    )
    return WeeklyAdherence(
        week=week,
        week_start=week_start,
        week_end=week_start + np.timedelta64(6, "D"),
        days_observed=days_observed,
        sessions_prescribed=presc,
        sessions_done=sessions_done,
        sessions_any=sessions_any,
        band_min=band_week,
        band_min_prescribed=band_presc,
        trimp_banister=trimp_week,
        trimp_prescribed=trimp_presc,
        trimp_pct=_pct(trimp_week, trimp_presc),
        adherence_pct=adherence,
        summary=summary,
    )
