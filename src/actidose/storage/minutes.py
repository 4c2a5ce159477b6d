"""Minutes of activity from HR and from accelerometers, combined without counting a minute twice.

HR gives moderate / vigorous seconds per sample (ACSM bands of HR reserve); accelerometers give
them per epoch (ENMO thresholds, worn epochs only). Both are binned into UTC minutes. Where both
cover a minute, the combined minute takes the larger of the two, never the sum:

    mvpa[m] = max(hr_mvpa[m], acc_mvpa[m]);  vig[m] = max(hr_vig[m], acc_vig[m]);
    mod[m] = mvpa[m] - vig[m]

With one source only, the combined minutes equal that source's minutes exactly.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import duckdb
import numpy as np
import numpy.typing as npt

from ..config import DoseConfig
from ..dose import accel as dacc
from ..timeutil import day_start_utc_us

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
US_MIN = 60_000_000
BOUT_LENGTHS_MIN = (1, 5, 10)


@dataclass
class AccelEpochRows:
    """Per accelerometer epoch (all sources of a participant, each on its own grid)."""

    start_us: I64
    epoch_s: F64
    worn: npt.NDArray[np.bool_]
    level: npt.NDArray[np.int8]  # 0 inactive, 1 light, 2 moderate, 3 vigorous
    enmo_mg: F64
    bouts: dict[int, npt.NDArray[np.bool_]]  # bout length (min) -> epoch in an MVPA bout


def thresholds(cfg: DoseConfig) -> tuple[float, float, float]:
    """Light, moderate, vigorous ENMO thresholds (mg): a named set, or ``custom:L,M,V``."""
    return threshold_set(cfg.accel_thresholds)


def threshold_set(name: str) -> tuple[float, float, float]:
    if name.startswith("custom:"):
        lo, mid, hi = (float(v) for v in name.split(":", 1)[1].split(","))
        return (lo, mid, hi)
    sets: dict[str, tuple[float, ...]] = dict(dacc.THRESHOLD_SETS)
    try:
        extra = importlib.import_module("actidose.dose.accel_process")
        sets.update(getattr(extra, "THRESHOLD_SETS_EXTRA", {}))
    except ImportError:  # pragma: no cover - processing module not built in
        pass
    lo, mid, hi = sets[name]
    return (float(lo), float(mid), float(hi))


def accel_epochs(
    con: duckdb.DuckDBPyConnection, participant_id: str, cfg: DoseConfig
) -> AccelEpochRows | None:
    rows = con.execute(
        "SELECT e.source_id, epoch_us(e.ts), e.epoch_s, e.enmo_mg, e.nonwear "
        "FROM accel_epochs e JOIN sources s USING (source_id) "
        "WHERE e.participant_id = ? AND s.status IN ('imported', 'salvaged') "
        "ORDER BY e.source_id, e.ts",
        [participant_id],
    ).fetchnumpy()
    sid = np.asarray(rows["source_id"], np.int64)
    if sid.size == 0:
        return None
    start = np.asarray(rows["epoch_us(e.ts)"], np.int64)
    ep_s = np.asarray(rows["epoch_s"], np.float64)
    enmo = np.nan_to_num(np.asarray(rows["enmo_mg"], np.float64))
    worn = ~np.asarray(rows["nonwear"], bool)
    level = dacc.classify_levels(enmo, thresholds(cfg)).astype(np.int8)
    bouts = {b: np.zeros(sid.size, bool) for b in BOUT_LENGTHS_MIN}
    # Bouts need a regular epoch grid: per source, place its epochs on their grid (missing
    # epochs are not above threshold) and run GGIR's bout rule there.
    for s in np.unique(sid):
        idx = np.flatnonzero(sid == s)
        step = int(np.rint(ep_s[idx[0]] * 1e6))
        pos = (start[idx] - start[idx[0]]) // step
        grid = np.zeros(int(pos[-1]) + 1, bool)
        grid[pos] = worn[idx] & (level[idx] >= 2)
        for b in BOUT_LENGTHS_MIN:
            flags = dacc.ggir_bouts(grid, ep_s[idx[0]], bout_min=b, criterion=cfg.bout_criterion)
            bouts[b][idx] = flags[pos]
    return AccelEpochRows(start, ep_s, worn, level, enmo, bouts)


@dataclass
class DayMinutes:
    """Per local day (arrays of length n_days)."""

    mod_min: F64
    vig_min: F64
    coverage_min: F64
    acc_light_min: F64
    acc_mod_min: F64
    acc_vig_min: F64
    acc_mvpa_min: F64
    acc_bout_min: dict[int, F64]
    acc_enmo_mean_mg: F64
    wear_min: F64
    # Per UTC minute of the stretches with data (for windows that do not follow day bounds):
    # the minute's start, and its combined moderate / vigorous seconds (NaN: not computable).
    minute_us: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    minute_mod_s: F64 = field(default_factory=lambda: np.empty(0))
    minute_vig_s: F64 = field(default_factory=lambda: np.empty(0))


def _spread(t_us: I64, hold_s: F64, m0: int, n_min: int) -> F64:
    """Seconds per UTC minute covered by the intervals ``[t, t + hold)`` of sorted samples
    whose intervals do not overlap (the HR step function): a sample holding across a minute
    boundary counts in both minutes."""
    if t_us.size == 0:
        return np.zeros(n_min)
    hold_us = np.nan_to_num(hold_s) * 1e6
    before = np.concatenate([[0.0], np.cumsum(hold_us)])  # covered time of samples < j
    bounds = (np.arange(n_min + 1, dtype=np.int64) + m0) * US_MIN
    j = np.searchsorted(t_us, bounds, "right") - 1
    jj = np.maximum(j, 0)
    part = np.where(j >= 0, np.minimum(bounds - t_us[jj], hold_us[jj]), 0.0)
    covered = np.where(j >= 0, before[jj] + np.maximum(part, 0.0), 0.0)
    return np.diff(covered) / 1e6


def combine(
    hr_ts_us: I64,
    hr_mod_s: F64,
    hr_vig_s: F64,
    hr_cov_s: F64,
    acc: AccelEpochRows | None,
    tz: str,
    d0: np.datetime64,
    n_days: int,
) -> DayMinutes:
    """Per-day minutes from per-sample HR seconds and accelerometer epochs (see module doc).
    ``hr_mod_s``/``hr_vig_s`` may be all NaN (HR anchors unknown): then only accelerometer
    minutes count, or NaN when there are none."""
    nan_day = np.full(n_days, np.nan)
    starts = [hr_ts_us] if hr_ts_us.size else []
    if acc is not None:
        starts.append(acc.start_us)
    if not starts:
        zero = np.zeros(n_days)
        return DayMinutes(
            nan_day,
            nan_day,
            zero,
            nan_day,
            nan_day,
            nan_day,
            nan_day,
            {b: nan_day for b in BOUT_LENGTHS_MIN},
            nan_day,
            nan_day,
        )
    # The minute grid covers only stretches with data (a participant's files can be years
    # apart): segments of minutes from each event to the end of its longest hold.
    max_hold_min = int(np.ceil(np.nanmax(hr_cov_s) / 60.0)) + 1 if hr_ts_us.size else 1
    ev = np.unique(np.concatenate([x // US_MIN for x in starts]))
    new_seg = np.ones(ev.size, bool)
    new_seg[1:] = np.diff(ev) > max_hold_min + 1
    seg_a = ev[new_seg]
    seg_b = np.append(ev[np.flatnonzero(new_seg)[1:] - 1], ev[-1]) + max_hold_min
    seg_len = seg_b - seg_a + 1
    seg_off = np.concatenate([[0], np.cumsum(seg_len)[:-1]])
    n_min = int(seg_len.sum())
    minute_abs = np.repeat(seg_a - seg_off, seg_len) + np.arange(n_min, dtype=np.int64)

    def pos(t_us: I64) -> I64:
        m = t_us // US_MIN
        k = np.searchsorted(seg_a, m, "right") - 1
        return np.asarray(seg_off[k] + m - seg_a[k], np.int64)

    def bins(t_us: I64, weights: F64) -> F64:
        out = np.bincount(pos(t_us), weights=weights, minlength=n_min)[:n_min]
        return out.astype(np.float64)

    def spread(hold_s: F64) -> F64:
        out = np.zeros(n_min)
        lo = np.searchsorted(hr_ts_us, seg_a * US_MIN, "left")
        hi = np.searchsorted(hr_ts_us, (seg_b + 1) * US_MIN, "left")
        for a, off, ln, i0, i1 in zip(
            seg_a.tolist(),
            seg_off.tolist(),
            seg_len.tolist(),
            lo.tolist(),
            hi.tolist(),
            strict=True,
        ):
            if i1 > i0:
                out[off : off + ln] = _spread(hr_ts_us[i0:i1], hold_s[i0:i1], a, ln)
        return out

    # Local day of each minute from the UTC instants of local midnights (one zoneinfo call per
    # day, not per minute).
    midnights = day_start_utc_us(d0 + np.arange(n_days + 1), tz)
    minute_day = np.searchsorted(midnights, minute_abs * US_MIN, "right").astype(np.int64) - 1
    in_range = (minute_day >= 0) & (minute_day < n_days)

    def per_day(per_minute: F64) -> F64:
        out = np.bincount(minute_day[in_range], weights=per_minute[in_range], minlength=n_days)
        return out.astype(np.float64)

    hr_known = hr_mod_s.size > 0 and not np.isnan(hr_mod_s).all()
    hr_mvpa = spread(hr_mod_s + hr_vig_s) if hr_known else None
    hr_v = spread(hr_vig_s) if hr_known else None
    cov = spread(hr_cov_s)
    if acc is not None:
        ep = acc.epoch_s
        worn_s = np.where(acc.worn, ep, 0.0)
        a_mvpa = bins(acc.start_us, np.where(acc.worn & (acc.level >= 2), ep, 0.0))
        a_vig = bins(acc.start_us, np.where(acc.worn & (acc.level == 3), ep, 0.0))
        a_light = bins(acc.start_us, np.where(acc.worn & (acc.level == 1), ep, 0.0))
        a_worn = bins(acc.start_us, worn_s)
        a_enmo = bins(acc.start_us, np.where(acc.worn, acc.enmo_mg * ep, 0.0))
        a_bouts = {
            b: bins(acc.start_us, np.where(flags & acc.worn, ep, 0.0))
            for b, flags in acc.bouts.items()
        }
        cov = np.maximum(cov, a_worn)
        wear = per_day(a_worn) / 60.0
        acc_mvpa = per_day(a_mvpa) / 60.0
        acc_vig = per_day(a_vig) / 60.0
        acc_out = dict(
            acc_light_min=per_day(a_light) / 60.0,
            acc_mod_min=acc_mvpa - acc_vig,
            acc_vig_min=acc_vig,
            acc_mvpa_min=acc_mvpa,
            acc_bout_min={b: per_day(v) / 60.0 for b, v in a_bouts.items()},
            acc_enmo_mean_mg=np.divide(
                per_day(a_enmo),
                per_day(a_worn),
                out=np.full(n_days, np.nan),
                where=per_day(a_worn) > 0,
            ),
            wear_min=wear,
        )
        mvpa = a_mvpa if hr_mvpa is None else np.maximum(hr_mvpa, a_mvpa)
        vig = a_vig if hr_v is None else np.maximum(hr_v, a_vig)
        mod_day, vig_day = per_day(mvpa - vig) / 60.0, per_day(vig) / 60.0
        m_mod, m_vig = mvpa - vig, vig
    else:
        acc_out = dict(
            acc_light_min=nan_day,
            acc_mod_min=nan_day,
            acc_vig_min=nan_day,
            acc_mvpa_min=nan_day,
            acc_bout_min={b: nan_day for b in BOUT_LENGTHS_MIN},
            acc_enmo_mean_mg=nan_day,
            wear_min=nan_day,
        )
        if hr_mvpa is None or hr_v is None:
            mod_day = vig_day = nan_day
            m_mod = m_vig = np.full(n_min, np.nan)
        else:
            mod_day, vig_day = per_day(hr_mvpa - hr_v) / 60.0, per_day(hr_v) / 60.0
            m_mod, m_vig = hr_mvpa - hr_v, hr_v
    return DayMinutes(
        mod_day,
        vig_day,
        per_day(cov) / 60.0,
        **acc_out,
        minute_us=minute_abs * US_MIN,
        minute_mod_s=m_mod,
        minute_vig_s=m_vig,
    )
