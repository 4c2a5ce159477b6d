"""Heart-rate dose kernels: sample hold times, TRIMP variants, zones and intensity minutes.

Every function takes plain arrays (HR in beats per minute, times in seconds) and returns arrays
or small frozen result objects that carry the quality counts next to the values: samples clipped
into range, NaN samples that contributed nothing, gaps longer than the hold cap. Nothing is
dropped, clipped or filled without being counted.

Conventions follow ``shared/reference/README.md`` of the project:

* HR samples are a step function: each holds until the next sample, for at most ``max_gap_s``
  (60 s); the last holds for the median interval. Time beyond the cap is missing, never load.
* HR reserve fraction ``x = (HR - HRrest) / (HRmax - HRrest)``, clipped to [0, 1].
* Zone and intensity boundaries are lower-edge inclusive.

Loads are accumulated in beat-seconds and converted to minutes once at the end, so that
whole-second inputs give exact results (``600 * (1/60)`` is not exactly 10 in floating point,
``600 / 60`` is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "BANISTER_PRESETS",
    "HRMAX_FORMULAS",
    "INTENSITY_SCHEMES",
    "Durations",
    "TrimpResult",
    "banister_coefficients",
    "banister_trimp",
    "banister_trimp_avg_hr",
    "edwards_trimp",
    "hrmax_fox",
    "hrmax_tanaka",
    "hrmax_zone_edges",
    "hrr_fraction",
    "hrr_zone_edges",
    "intensity_class",
    "intensity_minutes",
    "lucia_trimp",
    "sample_durations",
    "session_rpe",
    "time_in_zones",
]

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# Sample hold times
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Durations:
    """Hold time of each sample of an irregularly sampled series.

    Attributes
    ----------
    dt_s : ndarray of float64, shape (n,)
        Seconds each sample holds (0 <= dt_s <= max_gap_s).
    n_gaps : int
        Number of intervals longer than ``max_gap_s`` (each was cut to ``max_gap_s``).
    gap_s : float
        Total seconds lost beyond the cap (missing time, never load).
    covered_s : float
        ``sum(dt_s)``, the time the samples stand for.
    """

    dt_s: FloatArray
    n_gaps: int
    gap_s: float
    covered_s: float


def sample_durations(
    ts_s: npt.ArrayLike, *, max_gap_s: float = 60.0, last_hold_s: float | None = None
) -> Durations:
    """Step-function hold time of each sample.

    A sample holds until the next one, for at most ``max_gap_s``::

        dt[i] = min(ts[i+1] - ts[i], max_gap_s)          for i < n-1
        dt[n-1] = min(median(diff(ts)), max_gap_s)

    Time beyond the cap is counted in ``n_gaps`` / ``gap_s`` and is missing, never load.

    Parameters
    ----------
    ts_s : array_like of float, shape (n,)
        Sample times in seconds, sorted ascending (equal times allowed; they hold 0 s).
    max_gap_s : float, default 60.0
        Longest time one sample may stand for, in seconds.
    last_hold_s : float or None, default None
        Hold time of the last sample, in seconds (capped at ``max_gap_s`` like every other
        sample). ``None`` uses the median sample interval; a lone sample, with no interval to
        take a median of, then holds 0 s.

    Returns
    -------
    Durations
        Per-sample hold times and the gap counts.

    Raises
    ------
    ValueError
        If ``ts_s`` is not 1-D, holds NaN/inf, or is not sorted ascending; if ``max_gap_s`` is
        not positive or ``last_hold_s`` is negative.

    References
    ----------
    Project convention ``shared/reference/README.md`` ("Heart rate"); GoldenCheetah
    ``TRIMPPoints.cpp`` integrates HR over the recording interval in the same step form.
    """
    ts = np.asarray(ts_s, dtype=np.float64)
    if ts.ndim != 1:
        raise ValueError(f"ts_s must be 1-D, got shape {ts.shape}")
    if not np.all(np.isfinite(ts)):
        raise ValueError("ts_s holds NaN or inf")
    if not (max_gap_s > 0 and np.isfinite(max_gap_s)):
        raise ValueError(f"max_gap_s must be positive and finite, got {max_gap_s}")
    if last_hold_s is not None and not (last_hold_s >= 0 and np.isfinite(last_hold_s)):
        raise ValueError(f"last_hold_s must be >= 0 and finite, got {last_hold_s}")
    if ts.size == 0:
        return Durations(dt_s=np.zeros(0), n_gaps=0, gap_s=0.0, covered_s=0.0)

    diffs = np.diff(ts)
    if np.any(diffs < 0):
        first = int(np.flatnonzero(diffs < 0)[0])
        raise ValueError(
            f"ts_s must be sorted ascending; "
            f"ts[{first + 1}]={ts[first + 1]} < ts[{first}]={ts[first]}"
        )
    over = diffs > max_gap_s
    if last_hold_s is not None:
        last = float(last_hold_s)
    elif diffs.size:
        last = float(np.median(diffs))
    else:
        last = 0.0
    dt = np.empty_like(ts)
    dt[:-1] = np.minimum(diffs, max_gap_s)
    dt[-1] = min(last, max_gap_s)
    gap_s = float(np.sum(diffs[over] - max_gap_s)) + max(last - max_gap_s, 0.0)
    n_gaps = int(np.count_nonzero(over)) + int(last > max_gap_s)
    return Durations(dt_s=dt, n_gaps=n_gaps, gap_s=gap_s, covered_s=float(np.sum(dt)))


# --------------------------------------------------------------------------------------------
# HR reserve
# --------------------------------------------------------------------------------------------


def _check_anchors(hr_rest: FloatArray, hr_max: FloatArray) -> None:
    bad = np.isfinite(hr_rest) & np.isfinite(hr_max) & ~(hr_max > hr_rest)
    if np.any(bad):
        raise ValueError("hr_max must be greater than hr_rest")


def hrr_fraction(
    hr: npt.ArrayLike, hr_rest: npt.ArrayLike, hr_max: npt.ArrayLike
) -> tuple[FloatArray, int]:
    """Heart-rate reserve fraction, clipped to [0, 1].

    ``x = (HR - HRrest) / (HRmax - HRrest)`` (Karvonen), clipped to [0, 1].

    Parameters
    ----------
    hr : array_like of float
        Heart rate, bpm. NaN stays NaN (and is not counted as clipped).
    hr_rest, hr_max : float or array_like of float
        Resting and maximal heart rate, bpm; scalars or arrays broadcastable to ``hr``
        (per-sample anchors, e.g. HRmax by age on each day). ``hr_max > hr_rest``.

    Returns
    -------
    x : ndarray of float64, shape of ``hr``
        Reserve fraction in [0, 1] (dimensionless), NaN where HR or an anchor is NaN.
    n_clipped : int
        Number of samples that were below 0 or above 1 before clipping.

    Raises
    ------
    ValueError
        If ``hr_max <= hr_rest`` anywhere, or the anchors do not broadcast to ``hr``.

    References
    ----------
    Karvonen, Kentala & Mustala 1957, Ann Med Exp Biol Fenn 35:307.
    """
    h = np.asarray(hr, dtype=np.float64)
    rest = np.broadcast_to(np.asarray(hr_rest, dtype=np.float64), h.shape)
    mx = np.broadcast_to(np.asarray(hr_max, dtype=np.float64), h.shape)
    _check_anchors(rest, mx)
    x = (h - rest) / (mx - rest)
    with np.errstate(invalid="ignore"):
        n_clipped = int(np.count_nonzero((x < 0.0) | (x > 1.0)))
    return np.clip(x, 0.0, 1.0), n_clipped


# --------------------------------------------------------------------------------------------
# TRIMP
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrimpResult:
    """A training impulse and what went into it.

    Attributes
    ----------
    value : float
        Total TRIMP, in weighted minutes (arbitrary units).
    per_sample : ndarray of float64
        Each sample's contribution (same units), so callers can bin by day; NaN samples hold 0.
        ``per_sample.sum()`` equals ``value`` up to rounding.
    n_clipped : int
        Samples whose intensity was out of range (see each kernel for what that means).
    n_nan : int
        Samples with NaN heart rate (or NaN anchors); they contribute 0.
    """

    value: float
    per_sample: FloatArray
    n_clipped: int
    n_nan: int


def _hr_dt(hr: npt.ArrayLike, dt_s: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    h = np.asarray(hr, dtype=np.float64)
    dt = np.asarray(dt_s, dtype=np.float64)
    if h.shape != dt.shape:
        raise ValueError(f"hr and dt_s must have the same shape, got {h.shape} and {dt.shape}")
    if not np.all(np.isfinite(dt)) or np.any(dt < 0):
        raise ValueError("dt_s must be finite and >= 0 seconds")
    return h, dt


def _weighted_result(weight: FloatArray, dt: FloatArray, n_clipped: int) -> TrimpResult:
    """Sum ``dt * weight`` in weighted seconds, then convert once to minutes."""
    nan = np.isnan(weight)
    w = np.where(nan, 0.0, weight)
    ws = dt * w
    return TrimpResult(
        value=float(np.sum(ws)) / 60.0,
        per_sample=ws / 60.0,
        n_clipped=n_clipped,
        n_nan=int(np.count_nonzero(nan)),
    )


BANISTER_PRESETS: dict[str, dict[str, tuple[float, float]]] = {
    # Banister 1991 / Morton 1990: y = a * exp(b x); a, b by sex.
    "banister": {"m": (0.64, 1.92), "f": (0.86, 1.67)},
    # GoldenCheetah TRIMPPoints.cpp keeps a = 0.64 for women too.
    "goldencheetah": {"m": (0.64, 1.92), "f": (0.64, 1.67)},
    # Tools that drop the scale factor (e.g. sport-activities-features).
    "no_a": {"m": (1.0, 1.92), "f": (1.0, 1.67)},
}
"""Published Banister TRIMP coefficient sets: ``preset -> sex -> (a, b)``."""


def banister_coefficients(sex: str, preset: str = "banister") -> tuple[float, float]:
    """Banister TRIMP coefficients ``(a, b)`` for a sex and a published preset.

    Parameters
    ----------
    sex : {'m', 'f'}
        Sex of the participant (case-insensitive).
    preset : str, default 'banister'
        A key of :data:`BANISTER_PRESETS` ('banister', 'goldencheetah', 'no_a').

    Returns
    -------
    (a, b) : tuple of float
        Dimensionless weighting coefficients of ``a * exp(b x)``.

    Raises
    ------
    ValueError
        Unknown sex or preset.
    """
    if preset not in BANISTER_PRESETS:
        raise ValueError(
            f"unknown Banister preset {preset!r}; choose from {sorted(BANISTER_PRESETS)}"
        )
    key = str(sex).strip().lower()
    if key not in ("m", "f"):
        raise ValueError(f"sex must be 'm' or 'f', got {sex!r}")
    return BANISTER_PRESETS[preset][key]


def banister_trimp(
    hr: npt.ArrayLike,
    dt_s: npt.ArrayLike,
    hr_rest: npt.ArrayLike,
    hr_max: npt.ArrayLike,
    *,
    a: float,
    b: float,
) -> TrimpResult:
    """Banister TRIMP integrated per sample.

    ``TRIMP = sum_i (dt_i / 60) * x_i * a * exp(b * x_i)``, with ``x`` the HR reserve fraction
    clipped to [0, 1] (:func:`hrr_fraction`).

    Parameters
    ----------
    hr : array_like of float, shape (n,)
        Heart rate, bpm. NaN samples contribute 0 and are counted in ``n_nan``.
    dt_s : array_like of float, shape (n,)
        Hold time of each sample, seconds (:func:`sample_durations`).
    hr_rest, hr_max : float or array_like of float
        Resting and maximal HR, bpm, broadcastable to ``hr``.
    a, b : float
        Coefficients (:func:`banister_coefficients`); men 0.64/1.92, women 0.86/1.67.

    Returns
    -------
    TrimpResult
        ``value`` in TRIMP units (weighted minutes); ``n_clipped`` counts samples with x outside
        [0, 1] before clipping.

    References
    ----------
    Banister EW 1991, "Modeling elite athletic performance", in Physiological Testing of the
    High-Performance Athlete; Morton RH, Fitz-Clarke JR, Banister EW 1990, J Appl Physiol 69:1171.
    """
    h, dt = _hr_dt(hr, dt_s)
    x, n_clipped = hrr_fraction(h, hr_rest, hr_max)
    return _weighted_result(x * a * np.exp(b * x), dt, n_clipped)


def banister_trimp_avg_hr(
    duration_min: float,
    avg_hr: float,
    rest_hr: float,
    max_hr: float,
    *,
    a: float | None = None,
    b: float | None = None,
    sex: str | None = None,
    preset: str = "banister",
) -> float:
    """Banister TRIMP from a session's duration and average HR.

    ``TRIMP = duration_min * x * a * exp(b * x)``, ``x = (avg - rest) / (max - rest)`` clipped
    to [0, 1]. This is the session-average form some tools use; it underestimates the
    per-sample form (:func:`banister_trimp`) for variable sessions because ``exp`` is convex.

    Parameters
    ----------
    duration_min : float
        Session duration, minutes (>= 0).
    avg_hr, rest_hr, max_hr : float
        Average, resting and maximal heart rate, bpm.
    a, b : float, optional
        Coefficients. Give both, or give ``sex`` instead.
    sex : {'m', 'f'}, optional
        Pick ``(a, b)`` from ``preset`` (:func:`banister_coefficients`).
    preset : str, default 'banister'
        Coefficient preset used with ``sex``.

    Returns
    -------
    float
        TRIMP, weighted minutes.

    Raises
    ------
    ValueError
        If neither or both of ``(a, b)`` and ``sex`` are given, or inputs are invalid.

    References
    ----------
    Banister 1991; Morton et al. 1990 (see :func:`banister_trimp`).
    """
    if (a is None) != (b is None):
        raise ValueError("give both a and b, or neither")
    if a is None and sex is None:
        raise ValueError("give either (a, b) or sex")
    if a is not None and sex is not None:
        raise ValueError("give either (a, b) or sex, not both")
    if a is None or b is None:
        assert sex is not None
        a, b = banister_coefficients(sex, preset)
    if not (duration_min >= 0):
        raise ValueError(f"duration_min must be >= 0, got {duration_min}")
    x, _ = hrr_fraction(avg_hr, rest_hr, max_hr)
    return float(duration_min * x * a * np.exp(b * x))


def _check_edges(edges: FloatArray, name: str) -> None:
    if edges.ndim != 1 or edges.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence")
    if np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(edges)):
        raise ValueError(f"{name} must be finite and strictly increasing")


def edwards_trimp(
    hr: npt.ArrayLike,
    dt_s: npt.ArrayLike,
    hr_max: npt.ArrayLike,
    *,
    edges: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9),
    weights: Sequence[float] = (1, 2, 3, 4, 5),
) -> TrimpResult:
    """Edwards summated-heart-rate-zone TRIMP.

    ``TRIMP = sum_i (dt_i / 60) * w(HR_i / HRmax)``, where ``w`` is ``weights[k]`` for
    ``edges[k] <= HR/HRmax < edges[k+1]`` (the top zone is open-ended) and 0 below
    ``edges[0]``. A zone includes its lower edge.

    Parameters
    ----------
    hr : array_like of float, shape (n,)
        Heart rate, bpm. NaN samples contribute 0 (``n_nan``).
    dt_s : array_like of float, shape (n,)
        Hold time of each sample, seconds.
    hr_max : float or array_like of float
        Maximal heart rate, bpm, broadcastable to ``hr``.
    edges : sequence of float, default (0.5, 0.6, 0.7, 0.8, 0.9)
        Lower zone edges as fractions of HRmax, strictly increasing.
    weights : sequence of float, default (1, 2, 3, 4, 5)
        Zone weights, one per edge.

    Returns
    -------
    TrimpResult
        ``value`` in weighted minutes; ``n_clipped`` counts samples above ``hr_max`` (they are
        weighted as the top zone, not dropped).

    References
    ----------
    Edwards S 1993, The Heart Rate Monitor Book (Polar); Foster C et al. 2001, J Strength Cond
    Res 15:109.
    """
    h, dt = _hr_dt(hr, dt_s)
    e = np.asarray(edges, dtype=np.float64)
    _check_edges(e, "edges")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != e.shape:
        raise ValueError("edges and weights must have the same length")
    mx = np.broadcast_to(np.asarray(hr_max, dtype=np.float64), h.shape)
    if np.any(mx <= 0):
        raise ValueError("hr_max must be positive")
    # Compare fractions, not bpm: HR/HRmax is correctly rounded, so 120/200 == 0.6 exactly.
    frac = h / mx
    zone = np.searchsorted(e, frac, side="right")
    weight = np.where(np.isnan(frac), np.nan, np.concatenate(([0.0], w))[zone])
    with np.errstate(invalid="ignore"):
        n_above = int(np.count_nonzero(frac > 1.0))
    return _weighted_result(weight, dt, n_above)


def lucia_trimp(
    hr: npt.ArrayLike, dt_s: npt.ArrayLike, vt1: npt.ArrayLike, vt2: npt.ArrayLike
) -> TrimpResult:
    """Lucia three-zone TRIMP.

    ``TRIMP = sum_i (dt_i / 60) * w_i`` with ``w = 1`` below VT1, ``2`` for
    ``VT1 <= HR < VT2`` and ``3`` at or above VT2.

    Parameters
    ----------
    hr : array_like of float, shape (n,)
        Heart rate, bpm. NaN samples contribute 0 (``n_nan``).
    dt_s : array_like of float, shape (n,)
        Hold time of each sample, seconds.
    vt1, vt2 : float or array_like of float
        Heart rate at the first and second ventilatory thresholds, bpm (``vt1 < vt2``),
        broadcastable to ``hr``.

    Returns
    -------
    TrimpResult
        ``value`` in weighted minutes; ``n_clipped`` is always 0.

    References
    ----------
    Lucia A, Hoyos J, Santalla A, Earnest C, Chicharro JL 2003, Med Sci Sports Exerc 35:1422.
    """
    h, dt = _hr_dt(hr, dt_s)
    v1 = np.broadcast_to(np.asarray(vt1, dtype=np.float64), h.shape)
    v2 = np.broadcast_to(np.asarray(vt2, dtype=np.float64), h.shape)
    if np.any(~(v1 < v2)):
        raise ValueError("vt1 must be less than vt2")
    weight = np.where(np.isnan(h), np.nan, 1.0 + (h >= v1) + (h >= v2)).astype(np.float64)
    return _weighted_result(weight, dt, 0)


def session_rpe(duration_min: float, rpe: float) -> float:
    """Session-RPE load (Foster).

    ``load = duration_min * RPE`` in arbitrary units (AU).

    Parameters
    ----------
    duration_min : float
        Session duration, minutes (>= 0).
    rpe : float
        Session rating of perceived exertion on Borg's CR-10 scale, 0..10.

    Returns
    -------
    float
        Session load, AU.

    Raises
    ------
    ValueError
        If ``rpe`` is outside 0..10 or ``duration_min`` is negative or NaN.

    References
    ----------
    Foster C 1998, Med Sci Sports Exerc 30:1164; Foster C et al. 2001, J Strength Cond Res 15:109.
    """
    if not (0.0 <= rpe <= 10.0):
        raise ValueError(f"rpe must be on the CR-10 scale 0..10, got {rpe}")
    if not (duration_min >= 0.0) or not np.isfinite(duration_min):
        raise ValueError(f"duration_min must be finite and >= 0, got {duration_min}")
    return float(duration_min * rpe)


# --------------------------------------------------------------------------------------------
# Zones and intensity
# --------------------------------------------------------------------------------------------


def time_in_zones(hr: npt.ArrayLike, dt_s: npt.ArrayLike, edges_bpm: Sequence[float]) -> FloatArray:
    """Seconds spent in each HR zone.

    With ``k = len(edges_bpm)`` edges there are ``k + 1`` zones: zone 0 is below
    ``edges[0]``, zone ``i + 1`` is ``[edges[i], edges[i+1])`` and zone ``k`` is at or above
    ``edges[-1]``. Every zone includes its lower edge.

    Parameters
    ----------
    hr : array_like of float, shape (n,)
        Heart rate, bpm.
    dt_s : array_like of float, shape (n,)
        Hold time of each sample, seconds.
    edges_bpm : sequence of float
        Zone edges, bpm, strictly increasing (:func:`hrr_zone_edges`, :func:`hrmax_zone_edges`).

    Returns
    -------
    ndarray of float64, shape (len(edges_bpm) + 1,)
        Seconds per zone. NaN-HR samples are in no zone, so ``sum`` is ``sum(dt_s)`` minus the
        hold time of NaN samples; compare the two to see how much time had no HR.
    """
    h, dt = _hr_dt(hr, dt_s)
    e = np.asarray(edges_bpm, dtype=np.float64)
    _check_edges(e, "edges_bpm")
    ok = ~np.isnan(h)
    zone = np.searchsorted(e, h[ok], side="right")
    return np.bincount(zone, weights=dt[ok], minlength=e.size + 1).astype(np.float64)


def hrr_zone_edges(hr_rest: float, hr_max: float, fractions: Sequence[float]) -> FloatArray:
    """Zone edges in bpm at fractions of HR reserve: ``rest + f * (max - rest)``.

    Parameters
    ----------
    hr_rest, hr_max : float
        Resting and maximal HR, bpm.
    fractions : sequence of float
        Fractions of HR reserve, e.g. ``(0.4, 0.6)``.

    Returns
    -------
    ndarray of float64
        Edges, bpm.
    """
    if not hr_max > hr_rest:
        raise ValueError("hr_max must be greater than hr_rest")
    f = np.asarray(fractions, dtype=np.float64)
    return hr_rest + f * (hr_max - hr_rest)


def hrmax_zone_edges(hr_max: float, fractions: Sequence[float]) -> FloatArray:
    """Zone edges in bpm at fractions of HRmax: ``f * max``.

    Parameters
    ----------
    hr_max : float
        Maximal HR, bpm.
    fractions : sequence of float
        Fractions of HRmax, e.g. ``(0.5, 0.6, 0.7, 0.8, 0.9)``.

    Returns
    -------
    ndarray of float64
        Edges, bpm.
    """
    return np.asarray(fractions, dtype=np.float64) * float(hr_max)


INTENSITY_SCHEMES: dict[str, tuple[float, float]] = {
    # ACSM position stand, Garber et al. 2011 MSSE 43:1334, Table 1:
    "hrr": (0.40, 0.60),  # fraction of HR reserve: moderate 40-<60 %, vigorous >= 60 %
    "hrmax": (0.64, 0.77),  # fraction of HRmax: moderate 64-<77 %, vigorous >= 77 %
}
"""Lower edges (moderate, vigorous) of the ACSM intensity classes, by scheme."""


def intensity_class(
    hr: npt.ArrayLike,
    hr_rest: npt.ArrayLike | None,
    hr_max: npt.ArrayLike,
    *,
    scheme: str = "hrr",
) -> npt.NDArray[np.int8]:
    """ACSM intensity class of each HR sample.

    With ``(lo, hi) = INTENSITY_SCHEMES[scheme]`` and ``f`` the HR reserve fraction
    (``'hrr'``, unclipped) or ``HR / HRmax`` (``'hrmax'``): class 0 if ``f < lo`` (below
    moderate), 1 if ``lo <= f < hi`` (moderate), 2 if ``f >= hi`` (vigorous); -1 for NaN.

    Parameters
    ----------
    hr : array_like of float
        Heart rate, bpm.
    hr_rest : float or array_like of float or None
        Resting HR, bpm; required by ``'hrr'``, ignored (may be None) by ``'hrmax'``.
    hr_max : float or array_like of float
        Maximal HR, bpm.
    scheme : {'hrr', 'hrmax'}, default 'hrr'
        Key of :data:`INTENSITY_SCHEMES`.

    Returns
    -------
    ndarray of int8, shape of ``hr``

    References
    ----------
    Garber CE et al. 2011, "Quantity and quality of exercise...", Med Sci Sports Exerc
    43:1334-1359, Table 1.
    """
    if scheme not in INTENSITY_SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose from {sorted(INTENSITY_SCHEMES)}")
    h = np.asarray(hr, dtype=np.float64)
    mx = np.broadcast_to(np.asarray(hr_max, dtype=np.float64), h.shape)
    if scheme == "hrr":
        if hr_rest is None:
            raise ValueError("scheme 'hrr' needs hr_rest")
        rest = np.broadcast_to(np.asarray(hr_rest, dtype=np.float64), h.shape)
        _check_anchors(rest, mx)
        frac = (h - rest) / (mx - rest)
    else:
        if np.any(mx <= 0):
            raise ValueError("hr_max must be positive")
        frac = h / mx
    cls = np.searchsorted(np.asarray(INTENSITY_SCHEMES[scheme]), frac, side="right")
    return np.where(np.isnan(frac), -1, cls).astype(np.int8)


def intensity_minutes(
    hr: npt.ArrayLike,
    dt_s: npt.ArrayLike,
    hr_rest: npt.ArrayLike | None,
    hr_max: npt.ArrayLike,
    *,
    scheme: str = "hrr",
) -> tuple[float, float]:
    """Minutes of moderate and of vigorous intensity (ACSM, Garber 2011).

    ``moderate = sum(dt_s[class == 1]) / 60``, ``vigorous = sum(dt_s[class == 2]) / 60`` with
    the classes of :func:`intensity_class`.

    Parameters
    ----------
    hr, dt_s : array_like of float, shape (n,)
        Heart rate (bpm) and hold time of each sample (s).
    hr_rest, hr_max : float or array_like of float
        Anchors, bpm, broadcastable to ``hr`` (``hr_rest`` may be None for ``'hrmax'``).
    scheme : {'hrr', 'hrmax'}, default 'hrr'

    Returns
    -------
    (moderate_min, vigorous_min) : tuple of float
        Minutes. NaN-HR time is in neither.
    """
    h, dt = _hr_dt(hr, dt_s)
    cls = intensity_class(h, hr_rest, hr_max, scheme=scheme)
    return float(np.sum(dt[cls == 1])) / 60.0, float(np.sum(dt[cls == 2])) / 60.0


# --------------------------------------------------------------------------------------------
# Age-predicted HRmax
# --------------------------------------------------------------------------------------------


def hrmax_tanaka(age: npt.ArrayLike) -> np.float64 | FloatArray:
    """Age-predicted HRmax, Tanaka: ``208 - 0.7 * age`` bpm.

    Parameters
    ----------
    age : float or array_like of float
        Age in years at the session's date.

    Returns
    -------
    float64 or ndarray of float64
        HRmax, bpm (scalar for scalar input).

    References
    ----------
    Tanaka H, Monahan KD, Seals DR 2001, J Am Coll Cardiol 37:153.
    """
    return np.subtract(208.0, np.multiply(0.7, np.asarray(age, dtype=np.float64)))


def hrmax_fox(age: npt.ArrayLike) -> np.float64 | FloatArray:
    """Age-predicted HRmax, Fox: ``220 - age`` bpm.

    Parameters
    ----------
    age : float or array_like of float
        Age in years at the session's date.

    Returns
    -------
    float64 or ndarray of float64
        HRmax, bpm (scalar for scalar input).

    References
    ----------
    Fox SM, Naughton JP, Haskell WL 1971, Ann Clin Res 3:404.
    """
    return np.subtract(220.0, np.asarray(age, dtype=np.float64))


HRMAX_FORMULAS: dict[str, Callable[[npt.ArrayLike], np.float64 | FloatArray]] = {
    "tanaka": hrmax_tanaka,
    "fox": hrmax_fox,
}
"""Age-predicted HRmax formulas by name (record the name with the value)."""
