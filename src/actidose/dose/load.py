"""Load over days: daily sums, fitness/fatigue (PMC), ACWR, Foster monotony and strain.

Inputs are daily load series, one value per calendar day with rest days as 0 (use
:func:`daily_sum` to build one from per-sample or per-session loads). The recursive models
(:func:`pmc`, :func:`acwr_ewma`) are first-order IIR filters, evaluated in blocks of days with
matrix products (:func:`_ewma`); they take their state in and hand it back, so running a series
in chunks with the state carried equals running it whole (to rounding).

Non-finite loads raise ``ValueError`` rather than being filled: a day without load is 0, a
day without *data* is the caller's decision, which :func:`load_models` takes as an explicit
option (zero, carry-forward decay, or exclusion) and records with its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from actidose.errors import UsageError

__all__ = [
    "AcwrEwmaResult",
    "AcwrState",
    "FosterResult",
    "LoadModels",
    "PMCResult",
    "PMCState",
    "acwr_ewma",
    "acwr_rolling",
    "daily_sum",
    "foster_rolling",
    "foster_week",
    "iso_week_start",
    "load_models",
    "pmc",
]

FloatArray = npt.NDArray[np.float64]


def _load_1d(load: npt.ArrayLike, name: str = "load") -> FloatArray:
    arr = np.asarray(load, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per day), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite; {name}[{bad}] = {arr[bad]} (use 0 for rest days)")
    return arr


def daily_sum(day_index: npt.ArrayLike, values: npt.ArrayLike, n_days: int) -> FloatArray:
    """Sum values into days.

    ``out[d] = sum(values[day_index == d])`` for ``d`` in ``0 .. n_days-1``.

    Parameters
    ----------
    day_index : array_like of int, shape (n,)
        Day of each value, 0-based (0 is the first day of the series), ``0 <= d < n_days``.
    values : array_like of float, shape (n,)
        Values to add up (e.g. :attr:`TrimpResult.per_sample`), in load units. NaN values
        are ignored, i.e. treated as 0 (kernels already report their NaN counts).
    n_days : int
        Length of the output; days without values are 0.

    Returns
    -------
    ndarray of float64, shape (n_days,)
        Daily totals, same units as ``values``.

    Raises
    ------
    ValueError
        If ``day_index`` is not integer, is out of range, or shapes differ.
    """
    idx = np.asarray(day_index)
    vals = np.asarray(values, dtype=np.float64)
    if idx.shape != vals.shape or idx.ndim != 1:
        raise ValueError(
            f"day_index and values must be 1-D of equal length, got {idx.shape}, {vals.shape}"
        )
    if n_days < 0:
        raise ValueError(f"n_days must be >= 0, got {n_days}")
    if idx.size == 0:
        return np.zeros(n_days)
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"day_index must be integer, got dtype {idx.dtype}")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= n_days:
        raise ValueError(f"day_index out of range 0..{n_days - 1}: min {lo}, max {hi}")
    totals = np.bincount(idx, weights=np.nan_to_num(vals, nan=0.0), minlength=n_days)
    return totals.astype(np.float64)


# --------------------------------------------------------------------------------------------
# Performance management chart (Banister impulse-response, EWMA form)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PMCState:
    """Fitness (CTL) and fatigue (ATL) at the end of the previous day, load units."""

    ctl: float = 0.0
    atl: float = 0.0


@dataclass(frozen=True)
class PMCResult:
    """Output of :func:`pmc`.

    Attributes
    ----------
    ctl, atl : ndarray of float64, shape (n,)
        Chronic (fitness) and acute (fatigue) training load at the end of each day.
    tsb : ndarray of float64, shape (n,)
        Training stress balance (form) on each day, ``ctl[t-1] - atl[t-1]`` (yesterday's);
        day 0 uses the seed state.
    state : PMCState
        State after the last day; pass it to the next chunk.
    """

    ctl: FloatArray
    atl: FloatArray
    tsb: FloatArray
    state: PMCState


def _pmc_gain(tau: float, form: str) -> float:
    if not (tau > 0 and np.isfinite(tau)):
        raise ValueError(f"tau must be positive and finite, got {tau}")
    if form == "exp":
        return float(-np.expm1(-1.0 / tau))
    if form == "inverse":
        if tau < 1.0:
            raise ValueError(f"form='inverse' needs tau >= 1 day (k = 1/tau <= 1), got {tau}")
        return 1.0 / tau
    raise ValueError(f"form must be 'exp' or 'inverse', got {form!r}")


_EWMA_BLOCK = 32


def _ewma(x: FloatArray, k: float, y_prev: float) -> tuple[FloatArray, float]:
    """``y[t] = y[t-1] + k (x[t] - y[t-1])``, from ``y[-1] = y_prev``; returns (y, y[-1]).

    Blocked: within blocks of 32 days the recurrence is a product with the lower-triangular
    matrix of powers of ``a = 1 - k`` (all at once for every block), and only the block-end
    values are carried from block to block. Only non-negative powers of ``a`` enter the sums,
    so it is as stable as the day-by-day recurrence and agrees with it to rounding.
    """
    n = x.size
    if n == 0:
        return np.zeros(0), y_prev
    a = 1.0 - k
    b = _EWMA_BLOCK
    nb = -(-n // b)
    pad = np.zeros(nb * b)
    pad[:n] = k * x
    j = np.arange(b)
    lag = j[:, None] - j[None, :]
    powers = np.where(lag >= 0, a ** np.maximum(lag, 0), 0.0)  # [j, i] = a^(j-i), i <= j
    z = pad.reshape(nb, b) @ powers.T  # each block's recurrence from a zero start
    a_b = a**b
    carry = np.empty(nb + 1)
    carry[0] = y_prev
    last = z[:, -1].tolist()
    c = y_prev
    for m in range(nb):  # one step per block: n / 32 steps
        c = a_b * c + last[m]
        carry[m + 1] = c
    y = (z + np.outer(carry[:-1], a ** (j + 1))).ravel()[:n]
    return y, float(y[-1])


def pmc(
    load: npt.ArrayLike,
    *,
    tau_ctl: float = 42.0,
    tau_atl: float = 7.0,
    form: str = "exp",
    state: PMCState | None = None,
) -> PMCResult:
    """Chronic/acute training load (fitness/fatigue) and form.

    ``ctl[t] = ctl[t-1] + k (load[t] - ctl[t-1])`` with ``k = 1 - exp(-1/tau)`` (``form='exp'``,
    GoldenCheetah) or ``k = 1/tau`` (``form='inverse'``, TrainingPeaks-style); likewise ATL.
    ``tsb[t] = ctl[t-1] - atl[t-1]``. For a constant load L from a zero seed,
    ``ctl[n-1] = L (1 - exp(-n/tau))`` in the exp form.

    Parameters
    ----------
    load : array_like of float, shape (n,)
        Daily load (e.g. Banister TRIMP), one value per day, rest days 0. Index 0 is the
        first day with data (or the day after ``state``).
    tau_ctl, tau_atl : float, default 42.0 and 7.0
        Time constants, days.
    form : {'exp', 'inverse'}, default 'exp'
        Gain from tau.
    state : PMCState, optional
        CTL/ATL at the end of the day before ``load[0]``; default zeros.

    Returns
    -------
    PMCResult
        ``ctl``, ``atl``, ``tsb`` (load units) and the final ``state``.

    References
    ----------
    Banister EW, Calvert TW et al. 1975/1991; GoldenCheetah ``src/Metrics/PMCData.cpp``
    (exp form); Coggan's Performance Manager (TrainingPeaks).
    """
    x = _load_1d(load)
    s = state if state is not None else PMCState()
    ctl, ctl_end = _ewma(x, _pmc_gain(tau_ctl, form), s.ctl)
    atl, atl_end = _ewma(x, _pmc_gain(tau_atl, form), s.atl)
    tsb = np.empty_like(x)
    if x.size:
        tsb[0] = s.ctl - s.atl
        tsb[1:] = ctl[:-1] - atl[:-1]
    return PMCResult(ctl=ctl, atl=atl, tsb=tsb, state=PMCState(ctl=ctl_end, atl=atl_end))


# --------------------------------------------------------------------------------------------
# Acute:chronic workload ratio
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcwrState:
    """Acute and chronic EWMA at the end of the previous day, load units."""

    acute: float
    chronic: float


class AcwrEwmaResult(NamedTuple):
    """Output of :func:`acwr_ewma`; unpacks as ``ratio, acute, chronic, state``."""

    ratio: FloatArray
    acute: FloatArray
    chronic: FloatArray
    state: AcwrState | None


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0.0, np.nan, num / den)


def acwr_ewma(
    load: npt.ArrayLike,
    *,
    acute_n: int = 7,
    chronic_n: int = 28,
    state: AcwrState | None = None,
) -> AcwrEwmaResult:
    """Acute:chronic workload ratio from exponentially weighted moving averages.

    ``ewma[t] = lambda * load[t] + (1 - lambda) * ewma[t-1]``, ``lambda = 2 / (N + 1)``, with
    ``N = acute_n`` and ``chronic_n``; each EWMA is seeded with the first day's load (so
    ``ewma[0] = load[0]``). ``ratio = acute / chronic``, NaN where ``chronic == 0``.

    Parameters
    ----------
    load : array_like of float, shape (n,)
        Daily load, rest days 0.
    acute_n, chronic_n : int, default 7 and 28
        Span of each EWMA, days.
    state : AcwrState, optional
        EWMAs at the end of the day before ``load[0]``; default seeds with ``load[0]``.

    Returns
    -------
    AcwrEwmaResult
        ``(ratio, acute, chronic, state)``; ``state`` is None only when ``load`` is empty and
        no state was given.

    References
    ----------
    Williams S, West S, Cross MJ, Stokes KA 2017, "Better way to determine the acute:chronic
    workload ratio?", Br J Sports Med 51:209.
    """
    x = _load_1d(load)
    if acute_n < 1 or chronic_n < 1:
        raise ValueError("acute_n and chronic_n must be >= 1")
    if state is None:
        if x.size == 0:
            empty = np.zeros(0)
            return AcwrEwmaResult(empty, empty.copy(), empty.copy(), None)
        state = AcwrState(acute=float(x[0]), chronic=float(x[0]))
    acute, a_end = _ewma(x, 2.0 / (acute_n + 1), state.acute)
    chronic, c_end = _ewma(x, 2.0 / (chronic_n + 1), state.chronic)
    return AcwrEwmaResult(_ratio(acute, chronic), acute, chronic, AcwrState(a_end, c_end))


def acwr_rolling(
    load: npt.ArrayLike,
    *,
    acute_days: int = 7,
    chronic_days: int = 28,
    coupled: bool = True,
) -> FloatArray:
    """Acute:chronic workload ratio from rolling averages.

    ``acute[t] = mean(load[t-acute_days+1 .. t])`` (today included);
    ``chronic[t] = mean(load[t-chronic_days+1 .. t])`` when ``coupled``, else the mean of the
    ``chronic_days - acute_days`` days before the acute window
    (``load[t-chronic_days+1 .. t-acute_days]``, "days 8..28 back").

    Parameters
    ----------
    load : array_like of float, shape (n,)
        Daily load, rest days 0.
    acute_days, chronic_days : int, default 7 and 28
        Window lengths, days (``acute_days < chronic_days``).
    coupled : bool, default True
        Whether the chronic window includes the acute window.

    Returns
    -------
    ndarray of float64, shape (n,)
        Ratio (dimensionless). NaN until a full chronic window exists (the first value is at
        index ``chronic_days - 1``) and where the chronic mean is 0.

    References
    ----------
    Hulin BT et al. 2014, Br J Sports Med 48:708; Windt J, Gabbett TJ 2019, Br J Sports Med
    53:988 (coupled vs uncoupled).
    """
    x = _load_1d(load)
    if not (1 <= acute_days < chronic_days):
        raise ValueError("need 1 <= acute_days < chronic_days")
    out = np.full(x.size, np.nan)
    if x.size < chronic_days:
        return out
    win = sliding_window_view(x, chronic_days)  # win[j] ends at day j + chronic_days - 1
    acute = win[:, chronic_days - acute_days :].mean(axis=-1)
    chronic = win.mean(axis=-1) if coupled else win[:, : chronic_days - acute_days].mean(axis=-1)
    out[chronic_days - 1 :] = _ratio(acute, chronic)
    return out


# --------------------------------------------------------------------------------------------
# Foster monotony and strain
# --------------------------------------------------------------------------------------------


class FosterResult(NamedTuple):
    """Foster weekly load, monotony (mean/SD of daily loads) and strain (load * monotony)."""

    weekly_load: float
    monotony: float
    strain: float


def _monotony(windows: FloatArray, ddof: int) -> tuple[FloatArray, FloatArray]:
    """Weekly sum and monotony of each row; monotony NaN where all values are equal (SD 0)."""
    total = windows.sum(axis=-1)
    mean = windows.mean(axis=-1)
    sd = windows.std(axis=-1, ddof=ddof)
    # Test constancy exactly: a rounded SD of equal values can be 1e-17 instead of 0.
    const = np.ptp(windows, axis=-1) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mono = np.where(const, np.nan, mean / np.where(const, 1.0, sd))
    return total, mono


def foster_week(daily_loads: npt.ArrayLike, *, ddof: int = 0) -> FosterResult:
    """Foster training monotony and strain of one week.

    ``weekly_load = sum(L)``, ``monotony = mean(L) / SD(L)``, ``strain = weekly_load * monotony``
    over the 7 daily loads ``L`` (rest days 0).

    Parameters
    ----------
    daily_loads : array_like of float, shape (7,)
        The week's daily loads (e.g. session-RPE AU), rest days 0.
    ddof : int, default 0
        Delta degrees of freedom of the SD: 0 = population SD (reproduces Foster 2001 Table 5),
        1 = sample SD.

    Returns
    -------
    FosterResult
        ``weekly_load`` (load units), ``monotony`` (dimensionless; NaN, not inf, when all
        seven loads are equal so SD is 0) and ``strain`` (load units; NaN with monotony).

    References
    ----------
    Foster C 1998, Med Sci Sports Exerc 30:1164; Foster C et al. 2001, J Strength Cond Res
    15:109, Table 5.
    """
    x = _load_1d(daily_loads, "daily_loads")
    if x.size != 7:
        raise ValueError(f"daily_loads must hold 7 days, got {x.size}")
    total, mono = _monotony(x[None, :], ddof)
    return FosterResult(float(total[0]), float(mono[0]), float(total[0] * mono[0]))


def foster_rolling(
    load: npt.ArrayLike, *, window: int = 7, ddof: int = 0
) -> tuple[FloatArray, FloatArray]:
    """Foster monotony and strain over the ``window`` days ending each day.

    Parameters
    ----------
    load : array_like of float, shape (n,)
        Daily load, rest days 0.
    window : int, default 7
        Window length, days.
    ddof : int, default 0
        Delta degrees of freedom of the SD (0 = population, as Foster 2001).

    Returns
    -------
    monotony, strain : ndarray of float64, shape (n,)
        NaN before the first full window (index ``window - 1`` is the first value) and, for
        monotony and strain alike, where all loads in the window are equal (SD 0).

    References
    ----------
    Foster et al. 2001 (see :func:`foster_week`).
    """
    x = _load_1d(load)
    if window < 1 or ddof < 0 or window <= ddof:
        raise ValueError("need window >= 1, ddof >= 0 and window > ddof")
    mono = np.full(x.size, np.nan)
    strain = np.full(x.size, np.nan)
    if x.size >= window:
        total, m = _monotony(sliding_window_view(x, window), ddof)
        mono[window - 1 :] = m
        strain[window - 1 :] = total * m
    return mono, strain


def iso_week_start(days: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """Monday of each date's ISO 8601 week.

    Parameters
    ----------
    days : array_like of datetime64[D]
        Local calendar dates. NaT stays NaT.

    Returns
    -------
    ndarray of datetime64[D]
        The Monday on or before each date.
    """
    d = np.asarray(days, dtype="datetime64[D]")
    nat = np.isnat(d)
    n = np.where(nat, 0, d.astype(np.int64))
    # 1970-01-01 was a Thursday: weekday (Monday = 0) is (n + 3) mod 7.
    monday = (n - (n + 3) % 7).astype("datetime64[D]")
    return np.where(nat, np.datetime64("NaT", "D"), monday)


# --------------------------------------------------------------------------------------------
# All load models over a series with days without data
# --------------------------------------------------------------------------------------------

UNOBSERVED_TREATMENTS = ("zero", "decay", "exclude")


class LoadModels(NamedTuple):
    """Output of :func:`load_models`: every load model, one value per day.

    Attributes
    ----------
    load : ndarray of float64, shape (n,)
        The daily load the models saw: 0 on unobserved days under ``'zero'``, NaN there under
        ``'decay'`` and ``'exclude'``.
    ctl, atl, tsb : ndarray of float64, shape (n,)
        Fitness, fatigue and form (:func:`pmc`).
    acwr_ewma : ndarray of float64, shape (n,)
        EWMA acute:chronic ratio (:func:`acwr_ewma`).
    acwr_rolling, acwr_uncoupled : ndarray of float64, shape (n,)
        Rolling-average ratio, coupled and uncoupled (:func:`acwr_rolling`).
    monotony, strain : ndarray of float64, shape (n,)
        Foster monotony and strain over the window ending each day (:func:`foster_rolling`).
    imputed : ndarray of bool, shape (n,)
        True where the day's model values did not see a real load (the day is unobserved).
    acute_unobserved_days, chronic_unobserved_days : ndarray of int64, shape (n,)
        Unobserved days among the ``acute_days`` / ``chronic_days`` calendar days ending each
        day (days before the series start are not counted).
    treatment : str
        The treatment of unobserved days that made these values.
    """

    load: FloatArray
    ctl: FloatArray
    atl: FloatArray
    tsb: FloatArray
    acwr_ewma: FloatArray
    acwr_rolling: FloatArray
    acwr_uncoupled: FloatArray
    monotony: FloatArray
    strain: FloatArray
    imputed: npt.NDArray[np.bool_]
    acute_unobserved_days: npt.NDArray[np.int64]
    chronic_unobserved_days: npt.NDArray[np.int64]
    treatment: str


def _trailing_count(flag: npt.NDArray[np.bool_], window: int) -> npt.NDArray[np.int64]:
    """Number of True among the ``window`` days ending each day (within the series)."""
    cs = np.concatenate([[0], np.cumsum(flag, dtype=np.int64)])
    end = np.arange(1, flag.size + 1)
    return (cs[end] - cs[np.maximum(end - window, 0)]).astype(np.int64)


def load_models(
    load: npt.ArrayLike,
    unobserved: npt.ArrayLike,
    *,
    treatment: str = "zero",
    tau_ctl: float = 42.0,
    tau_atl: float = 7.0,
    form: str = "exp",
    acute_days: int = 7,
    chronic_days: int = 28,
    ddof: int = 0,
    foster_window: int = 7,
) -> LoadModels:
    """CTL/ATL/TSB, ACWR (EWMA, rolling coupled and uncoupled), monotony and strain over a
    daily series in which some days have no data.

    A day without data is not a rest day; ``treatment`` says what the models do with it:

    ``'zero'``
        The published recurrences: an unobserved day is a day of load 0 (whatever ``load``
        holds there), and every value is exactly what :func:`pmc`, :func:`acwr_ewma`,
        :func:`acwr_rolling` and :func:`foster_rolling` give on that series. ``imputed`` marks
        the unobserved days.
    ``'decay'``
        The load of an unobserved day is unknown (NaN in ``load``). CTL, ATL, TSB and the EWMA
        ratio carry forward, decaying as with zero input, and are flagged ``imputed``; the
        rolling ratios (coupled and uncoupled), monotony and strain are NaN wherever their
        window (``chronic_days``, resp. ``foster_window`` days ending that day) holds an
        unobserved day.
    ``'exclude'``
        The models run over the observed days only, as if the series were those days one after
        another (a recurrence step follows the previous observed day; a rolling window spans
        that many observed days), and the values go back to their days. Unobserved days are
        NaN in every model column and in ``load``, and ``imputed``.

    Under every treatment ``acute_unobserved_days`` / ``chronic_unobserved_days`` count the
    unobserved days in the calendar windows ending each day.

    Parameters
    ----------
    load : array_like of float, shape (n,)
        Daily load, one value per consecutive local day; finite on observed days (rest days
        0); ignored on unobserved days.
    unobserved : array_like of bool, shape (n,)
        True for days without data (``day_status`` 'unobserved').
    treatment : {'zero', 'decay', 'exclude'}, default 'zero'
        See above (the ``unobserved_load`` dose parameter).
    tau_ctl, tau_atl : float, default 42.0 and 7.0
        PMC time constants, days.
    form : {'exp', 'inverse'}, default 'exp'
        PMC gain from tau.
    acute_days, chronic_days : int, default 7 and 28
        ACWR windows (EWMA spans and rolling windows), days.
    ddof : int, default 0
        Delta degrees of freedom of the monotony SD.
    foster_window : int, default 7
        Monotony and strain window, days.

    Returns
    -------
    LoadModels
        Every model column, the ``imputed`` flag, the unobserved-day counts and ``treatment``.

    Raises
    ------
    UsageError
        If ``treatment`` is not one of the three.
    ValueError
        If shapes differ or an observed day's load is not finite; as the model functions do
        for bad windows or time constants.
    """
    if treatment not in UNOBSERVED_TREATMENTS:
        raise UsageError(
            f"unobserved_load must be one of {', '.join(UNOBSERVED_TREATMENTS)}, not {treatment!r}",
            fix="zero (rest day), decay (carry forward, flagged) or exclude (observed days only)",
        )
    x = np.asarray(load, dtype=np.float64)
    u = np.asarray(unobserved)
    if x.ndim != 1 or u.shape != x.shape:
        raise ValueError(
            f"load and unobserved must be 1-D of equal length, got {x.shape}, {u.shape}"
        )
    if u.dtype != np.bool_:
        if not np.all(np.isin(u, (0, 1))):
            raise ValueError("unobserved must hold booleans")
        u = u.astype(bool)
    bad = np.flatnonzero(~u & ~np.isfinite(x))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"load must be finite on observed days; load[{i}] = {x[i]}")

    def run(series: FloatArray) -> list[FloatArray]:
        p = pmc(series, tau_ctl=tau_ctl, tau_atl=tau_atl, form=form)
        ratio = acwr_ewma(series, acute_n=acute_days, chronic_n=chronic_days).ratio
        coupled = acwr_rolling(series, acute_days=acute_days, chronic_days=chronic_days)
        uncoupled = acwr_rolling(
            series, acute_days=acute_days, chronic_days=chronic_days, coupled=False
        )
        mono, strain = foster_rolling(series, window=foster_window, ddof=ddof)
        return [p.ctl, p.atl, p.tsb, ratio, coupled, uncoupled, mono, strain]

    if treatment == "exclude":
        seen = np.flatnonzero(~u)
        cols = []
        for col in run(x[seen]):
            full = np.full(x.size, np.nan)
            full[seen] = col
            cols.append(full)
        used = np.where(u, np.nan, x)
    else:
        zeroed = np.where(u, 0.0, x)
        cols = run(zeroed)
        used = zeroed
        if treatment == "decay":
            used = np.where(u, np.nan, x)
            chronic_gap = _trailing_count(u, chronic_days) > 0
            foster_gap = _trailing_count(u, foster_window) > 0
            for j in (4, 5):  # rolling ratios, coupled and uncoupled
                cols[j] = np.where(chronic_gap, np.nan, cols[j])
            for j in (6, 7):  # monotony, strain
                cols[j] = np.where(foster_gap, np.nan, cols[j])
    ctl, atl, tsb, ratio, coupled, uncoupled, mono, strain = cols
    return LoadModels(
        load=used,
        ctl=ctl,
        atl=atl,
        tsb=tsb,
        acwr_ewma=ratio,
        acwr_rolling=coupled,
        acwr_uncoupled=uncoupled,
        monotony=mono,
        strain=strain,
        imputed=u.copy(),
        acute_unobserved_days=_trailing_count(u, acute_days),
        chronic_unobserved_days=_trailing_count(u, chronic_days),
        treatment=treatment,
    )
