"""HR anchors in force on each day: entered versions first, estimates from the data where none.

A participant's anchors (resting and maximal HR) come from three places, in this order under
the default ``anchor_source = "entered"``:

1. **entered** — the participant's row (the base version) and dated versions in ``hr_anchors``
   (each valid from its local date until the next one; a field left empty in a version keeps
   the previous value);
2. **estimated** from the data — resting HR: the lowest ``hr_rest_window_min``-minute rolling
   mean of each day with at least ``hr_rest_min_h`` hours of all-day HR, smoothed by a centred
   rolling median over ``hr_rest_smooth_days`` days; maximal HR: the larger of the age estimate
   and the highest HR sustained for ``hr_peak_s`` seconds anywhere in the record;
3. **age** — maximal HR from the birth year (Tanaka or Fox) when nothing else is known.

``anchor_source = "estimated"`` puts estimates before entered values (for maximal HR only an
observed peak above the age estimate replaces an entered value, never the age formula alone);
``"entered_only"`` never estimates (resting HR stays unknown unless entered; maximal HR falls
back to the age formula).
Each derived row says which source its anchors came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ..config import DoseConfig
from ..dose import anchors as danch
from ..dose import hr as dhr
from .participants import Participant, anchor_versions, anchors_on_days

F64 = npt.NDArray[np.float64]
Obj = npt.NDArray[np.object_]


@dataclass
class DayAnchors:
    """Per local day of the participant's day grid."""

    rest: F64
    rest_source: Obj  # 'entered', 'estimated' or None
    max: F64
    max_source: Obj  # 'entered', 'observed_peak', 'tanaka', 'fox' or None
    valid_from: npt.NDArray[np.datetime64]  # the entered version used (NaT: base or none)
    ab: tuple[float, float] | None  # Banister coefficients (None: sex unknown)
    floor: F64
    rest_est: F64
    hours: F64
    peak: F64
    max_est: F64


def _age_based(p: Participant, days: npt.NDArray[np.datetime64], formula: str) -> F64:
    if p.birth_year is None:
        return np.full(days.shape, np.nan)
    year = days.astype("datetime64[Y]").astype(np.int64) + 1970
    age = (year - int(p.birth_year)).astype(np.float64)
    return np.asarray(dhr.HRMAX_FORMULAS[formula](age), dtype=np.float64)


def day_anchors(
    con: duckdb.DuckDBPyConnection,
    p: Participant,
    cfg: DoseConfig,
    days: npt.NDArray[np.datetime64],
    bounds_us: npt.NDArray[np.int64],
    ts_us: npt.NDArray[np.int64],
    bpm: F64,
    allday: npt.NDArray[np.bool_],
) -> DayAnchors:
    """Anchors on each of ``days`` (local dates; ``bounds_us`` their UTC midnights, one more
    than days) from the participant's entered versions and the merged HR series ``ts_us`` /
    ``bpm`` (``allday`` marks samples from all-day sources, the only ones a resting estimate
    may use)."""
    n = days.size
    ent_rest, ent_max, ent_from = anchors_on_days(anchor_versions(con, p.participant_id), days)
    floor = danch.resting_floor(
        ts_us[allday],
        bpm[allday],
        bounds_us,
        window_min=cfg.hr_rest_window_min,
        min_hours=cfg.hr_rest_min_h,
        max_gap_s=cfg.coverage_gap_s,
    )
    rest_est = danch.smooth_days(floor.floor_bpm, days=cfg.hr_rest_smooth_days)
    peak = danch.sustained_peak(
        ts_us, bpm, bounds_us, peak_s=cfg.hr_peak_s, max_gap_s=cfg.max_gap_s
    )
    age_max = _age_based(p, days, cfg.hrmax_formula)
    max_est, max_est_src = danch.hr_max_estimate(age_max, peak)
    est_src = np.array([cfg.hrmax_formula if s == "age" else s for s in max_est_src], dtype=object)
    if est_src.size != n:
        est_src = np.full(n, None, dtype=object)

    has_er, has_em = np.isfinite(ent_rest), np.isfinite(ent_max)
    has_r, has_m = np.isfinite(rest_est), np.isfinite(max_est)
    none = np.full(n, None, dtype=object)
    if cfg.anchor_source == "entered_only":
        rest = np.where(has_er, ent_rest, np.nan)
        rest_src = np.where(has_er, "entered", none)
        mx = np.where(has_em, ent_max, age_max)
        mx_src = np.where(
            has_em, "entered", np.where(np.isfinite(age_max), cfg.hrmax_formula, none)
        )
    elif cfg.anchor_source == "estimated":
        rest = np.where(has_r, rest_est, ent_rest)
        rest_src = np.where(has_r, "estimated", np.where(has_er, "entered", none))
        # An HRmax from the age formula alone is not an estimate from the data: it never
        # replaces an entered value; a higher sustained peak in the data does.
        use_est = has_m & (~has_em | (est_src == "observed_peak"))
        mx = np.where(use_est, max_est, ent_max)
        mx_src = np.where(use_est, est_src, np.where(has_em, "entered", none))
    else:  # "entered": entered values win, estimates fill in
        rest = np.where(has_er, ent_rest, rest_est)
        rest_src = np.where(has_er, "entered", np.where(has_r, "estimated", none))
        mx = np.where(has_em, ent_max, max_est)
        mx_src = np.where(has_em, "entered", np.where(has_m, est_src, none))
    # An estimate that contradicts the other anchor (rest >= max) is not used.
    bad = np.isfinite(rest) & np.isfinite(mx) & (mx <= rest)
    est_rest = rest_src == "estimated"
    rest = np.where(bad & est_rest, np.nan, rest)
    rest_src = np.where(bad & est_rest, none, rest_src)
    bad = np.isfinite(rest) & np.isfinite(mx) & (mx <= rest)
    mx = np.where(bad, np.nan, mx)
    mx_src = np.where(bad, none, mx_src)
    used_entered = (rest_src == "entered") | (mx_src == "entered")
    valid_from = np.where(used_entered, ent_from, np.datetime64("NaT", "D"))
    ab = dhr.banister_coefficients(p.sex, cfg.trimp_preset) if p.sex else None
    return DayAnchors(
        rest=rest.astype(np.float64),
        rest_source=rest_src.astype(object),
        max=mx.astype(np.float64),
        max_source=mx_src.astype(object),
        valid_from=valid_from.astype("datetime64[D]"),
        ab=ab,
        floor=floor.floor_bpm,
        rest_est=rest_est,
        hours=floor.hours,
        peak=peak,
        max_est=max_est,
    )


def estimates_table(
    participant_id: str, days: npt.NDArray[np.datetime64], an: DayAnchors, params_id: str
) -> pa.Table:
    """Rows of ``hr_estimates``: what the data say about the anchors on each day."""
    n = days.size
    return pa.table(
        {
            "participant_id": pa.array([participant_id] * n, pa.string()),
            "day": pa.array(days),
            "hr_rest_floor_bpm": an.floor,
            "hr_rest_est_bpm": an.rest_est,
            "hr_hours": an.hours,
            "hr_peak_bpm": an.peak,
            "hr_max_est_bpm": an.max_est,
            "params_id": pa.array([params_id] * n, pa.string()),
        }
    )
