"""The study layer's derived tables: symptom scores, the dose before each rating, the daily
panel of ratings and dose, and adherence to the arm's prescription.

Computed with the rest of a participant's derived tables (:func:`actidose.storage.derive.
compute_participant`), from the same in-memory series, so they always agree with
``sessions``, ``daily_load`` and ``load_series`` of the same ``params_id``.

Windows. A rating at instant ``ts`` with window ``W`` days and lag ``L`` days looks at
``[start, end)`` with ``end`` = the local wall-clock time of ``ts`` moved ``L`` calendar days back
and ``start`` = that moved ``W`` more days back (:func:`actidose.timeutil.shift_local_days`): the
14 days before a PHQ-9 at 10:00 start at 10:00 local time 14 days earlier, whatever DST did in
between. Inside the window:

* sessions and session TRIMP: counted sessions (one per exercise) whose start is in the window;
* all-day TRIMP: the per-sample Banister integral, samples cut at the window edges;
* moderate / vigorous minutes: the combined HR + accelerometer minutes (UTC minutes starting in
  the window);
* coverage: the share of the window's days (each day weighted by the part of it inside the
  window) whose ``day_status`` is 'observed'; 'partial' and 'unobserved' days are counted
  beside it. With no observed or partial day in the window the dose columns are NULL:
  no data is not zero exercise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ..config import DoseConfig
from ..dose import adherence as dadh
from ..dose import exposure as dexp
from ..dose import hr as dhr
from ..timeutil import day_start_utc_us, local_days, shift_local_days
from . import symptoms as ssym
from .participants import Participant
from .prescriptions import get as get_prescription

if TYPE_CHECKING:
    from .derive import DoseDays

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Days = npt.NDArray[np.datetime64]
_STATUS = ("observed", "partial", "unobserved")


def study_tables(
    con: duckdb.DuckDBPyConnection, p: Participant, cfg: DoseConfig, dd: DoseDays | None
) -> dict[str, pa.Table]:
    """``symptom_scores``, ``symptom_exposure``, ``symptom_days``, ``adherence`` and
    ``adherence_summary`` rows of participant ``p`` (``dd`` is None when there is no data)."""
    out: dict[str, pa.Table] = {}
    scores = ssym.score_table(con, p.participant_id, p.timezone, cfg.params_id)
    if scores is not None and scores.num_rows:
        out["symptom_scores"] = scores
        out["symptom_exposure"] = exposure_table(con, p, cfg, dd, scores)
        out["symptom_days"] = symptom_days_table(p, cfg, dd, scores)
    adh = adherence_tables(con, p, cfg, dd)
    if adh is not None:
        out["adherence"], out["adherence_summary"] = adh
    return out


def _ts_us(col: pa.ChunkedArray) -> I64:
    return np.asarray(col.cast(pa.timestamp("us", "UTC")).cast(pa.int64()), np.int64)


def _status_on(dd: DoseDays | None, days: Days) -> npt.NDArray[np.str_]:
    """``day_status`` of each of ``days``: from the data grid, 'unobserved' outside it."""
    out = np.full(days.size, "unobserved", dtype=object)
    if dd is not None and dd.days.size:
        i = (days - dd.days[0]).astype(np.int64)
        inside = (i >= 0) & (i < dd.days.size)
        out[inside] = dd.status[i[inside]]
    return out.astype(str)


def _series_on(dd: DoseDays | None, days: Days, table: str, column: str) -> F64:
    """A per-day column of ``daily_load`` / ``load_series`` on ``days`` (NaN outside the grid)."""
    out = np.full(days.size, np.nan)
    if dd is None or not dd.days.size:
        return out
    src = dd.daily if table == "daily" else dd.series
    vals = np.asarray(src.column(column).to_numpy(zero_copy_only=False), np.float64)
    i = (days - dd.days[0]).astype(np.int64)
    inside = (i >= 0) & (i < dd.days.size)
    out[inside] = vals[i[inside]]
    return out


def exposure_table(
    con: duckdb.DuckDBPyConnection,
    p: Participant,
    cfg: DoseConfig,
    dd: DoseDays | None,
    scores: pa.Table,
) -> pa.Table:
    """One row per rating and lag: the dose in the window before the rating."""
    tz = p.timezone
    recall = ssym.recall_days(con)
    inst = np.array(scores.column("instrument").to_pylist(), dtype=object)
    ts = _ts_us(scores.column("ts"))
    score = np.asarray(scores.column("score").to_numpy(zero_copy_only=False), np.float64)
    rating_day = np.asarray(scores.column("day").to_numpy(zero_copy_only=False), "datetime64[D]")
    window = np.array(
        [cfg.exposure_window_days or recall.get(str(i), 1.0) for i in inst], np.float64
    )
    cols: dict[str, list[npt.NDArray[np.generic]]] = {}

    def add(name: str, values: npt.NDArray[np.generic]) -> None:
        cols.setdefault(name, []).append(values)

    for lag in cfg.lags():
        end = shift_local_days(ts, tz, float(lag)) if lag else ts.copy()
        start = np.empty_like(ts)
        for w in np.unique(window):
            sel = window == w
            start[sel] = shift_local_days(ts[sel], tz, float(lag) + float(w))
        d = _window_dose(cfg, dd, tz, start, end)
        add("participant_id", np.full(ts.size, p.participant_id, dtype=object))
        add("instrument", inst)
        add("ts", ts)
        add("day", rating_day)
        add("score", score)
        add("lag_days", np.full(ts.size, lag, np.int32))
        add("window_days", window)
        add("window_start", start)
        add("window_end", end)
        for k, v in d.items():
            add(k, v)
    flat = {k: np.concatenate(v) for k, v in cols.items()}
    n = flat["ts"].size
    arrays: dict[str, pa.Array] = {}
    for k, v in flat.items():
        if k in ("ts", "window_start", "window_end"):
            arrays[k] = pa.array(v, pa.int64()).cast(pa.timestamp("us", "UTC"))
        elif k in ("participant_id", "instrument"):
            arrays[k] = pa.array(v.tolist(), pa.string())
        else:
            arrays[k] = pa.array(v)
    arrays["params_id"] = pa.array([cfg.params_id] * n, pa.string())
    return pa.table(arrays)


def _window_dose(
    cfg: DoseConfig, dd: DoseDays | None, tz: str, start: I64, end: I64
) -> dict[str, npt.NDArray[np.generic]]:
    m = start.size
    nan = np.full(m, np.nan)
    # Coverage on a day grid spanning the windows and the data.
    lo = local_days(start, tz).min() if m else np.datetime64("1970-01-01")
    hi = local_days(end, tz).max() if m else lo
    if dd is not None and dd.days.size:
        lo, hi = min(lo, dd.days[0]), max(hi, dd.days[-1])
    grid = lo + np.arange(int((hi - lo).astype(np.int64)) + 1)
    bounds = day_start_utc_us(lo + np.arange(grid.size + 1), tz)
    status = _status_on(dd, grid)
    share = {
        s: dexp.day_fraction_sums(bounds, (status == s).astype(np.float64), start, end)
        for s in _STATUS
    }
    total = share["observed"] + share["partial"] + share["unobserved"]
    coverage = np.divide(share["observed"], total, out=np.zeros(m), where=total > 0)
    seen = (share["observed"] + share["partial"]) > 0
    out: dict[str, npt.NDArray[np.generic]] = {}
    if dd is None:
        for k in ("trimp_banister", "trimp_edwards", "trimp_allday"):
            out[k] = nan
        out["sessions"] = np.zeros(m, np.int32)
        out["mod_min"] = out["vig_min"] = out["mvpa_min"] = out["who_equiv_min"] = nan
        out["ctl_prev"] = out["atl_prev"] = out["tsb_prev"] = nan
    else:
        order = np.argsort(dd.sess_start_us, kind="stable")
        s_start = dd.sess_start_us[order]
        out["sessions"] = dexp.event_window_counts(s_start, start, end).astype(np.int32)
        for k, v in (("trimp_banister", dd.sess_ban), ("trimp_edwards", dd.sess_edw)):
            out[k] = np.asarray(dexp.event_window_sums(s_start, v[order], start, end))
        if dd.ban.size and not np.isnan(dd.ban).all():
            rate = np.divide(
                np.nan_to_num(dd.ban),
                dd.hold_s,
                out=np.zeros(dd.ban.size),
                where=dd.hold_s > 0,
            )
            out["trimp_allday"] = dexp.interval_window_sums(dd.ts_us, dd.hold_s, rate, start, end)
        else:
            out["trimp_allday"] = nan
        if dd.minute_mod_s.size and not np.isnan(dd.minute_mod_s).all():
            mv = np.vstack([np.nan_to_num(dd.minute_mod_s), np.nan_to_num(dd.minute_vig_s)]) / 60.0
            sums = np.asarray(dexp.event_window_sums(dd.minute_us, mv, start, end))
            mod, vig = sums[0], sums[1]
        else:
            mod = vig = nan
        out["mod_min"], out["vig_min"] = mod, vig
        out["mvpa_min"] = mod + vig
        out["who_equiv_min"] = mod + cfg.vigorous_weight * vig
        prev = local_days(end, tz) - np.timedelta64(1, "D")
        for k in ("ctl", "atl", "tsb"):
            out[f"{k}_prev"] = _series_on(dd, prev, "series", k)
        for k in ("trimp_banister", "trimp_edwards", "trimp_allday", "mod_min", "vig_min"):
            out[k] = np.where(seen, out[k], np.nan)
        for k in ("mvpa_min", "who_equiv_min"):
            out[k] = np.where(seen, out[k], np.nan)
    out["days_observed"] = share["observed"]
    out["days_partial"] = share["partial"]
    out["days_unobserved"] = share["unobserved"]
    out["coverage"] = coverage
    return out


def symptom_days_table(
    p: Participant, cfg: DoseConfig, dd: DoseDays | None, scores: pa.Table
) -> pa.Table:
    """One row per participant, instrument and local day, from the first to the last day with
    ratings or data: days without a rating are present (``rated`` false), days without data
    are 'unobserved' with NULL dose."""
    inst = np.array(scores.column("instrument").to_pylist(), dtype=object)
    day = np.asarray(scores.column("day").to_numpy(zero_copy_only=False), "datetime64[D]")
    score = np.asarray(scores.column("score").to_numpy(zero_copy_only=False), np.float64)
    parts: dict[str, list[npt.NDArray[np.generic]]] = {}
    for name in sorted(set(inst.tolist())):
        sel = inst == name
        lo, hi = day[sel].min(), day[sel].max()
        if dd is not None and dd.days.size:
            lo, hi = min(lo, dd.days[0]), max(hi, dd.days[-1])
        grid = lo + np.arange(int((hi - lo).astype(np.int64)) + 1)
        i = (day[sel] - lo).astype(np.int64)
        n_r = np.bincount(i, minlength=grid.size)
        finite = np.isfinite(score[sel])
        s_sum = np.bincount(i, weights=np.where(finite, score[sel], 0.0), minlength=grid.size)
        s_n = np.bincount(i, weights=finite, minlength=grid.size)
        mean = np.divide(s_sum, s_n, out=np.full(grid.size, np.nan), where=s_n > 0)
        prev = grid - np.timedelta64(1, "D")
        mod = _series_on(dd, grid, "daily", "mod_min")
        vig = _series_on(dd, grid, "daily", "vig_min")
        cols = {
            "instrument": np.full(grid.size, name, dtype=object),
            "day": grid,
            "rated": n_r > 0,
            "n_ratings": n_r.astype(np.int32),
            "score": mean,
            "day_status": _status_on(dd, grid).astype(object),
            "sessions": _series_on(dd, grid, "daily", "sessions"),
            "trimp_banister": _series_on(dd, grid, "daily", "trimp_banister"),
            "mvpa_min": mod + vig,
            "who_equiv_min": mod + cfg.vigorous_weight * vig,
            "ctl": _series_on(dd, grid, "series", "ctl"),
            "atl": _series_on(dd, grid, "series", "atl"),
            "tsb": _series_on(dd, grid, "series", "tsb"),
            "ctl_prev": _series_on(dd, prev, "series", "ctl"),
            "atl_prev": _series_on(dd, prev, "series", "atl"),
            "tsb_prev": _series_on(dd, prev, "series", "tsb"),
        }
        for k, v in cols.items():
            parts.setdefault(k, []).append(v)
    flat = {k: np.concatenate(v) for k, v in parts.items()}
    n = flat["day"].size
    sessions = flat.pop("sessions")
    return pa.table(
        {
            "participant_id": pa.array([p.participant_id] * n, pa.string()),
            "instrument": pa.array(flat.pop("instrument").tolist(), pa.string()),
            "day": pa.array(flat.pop("day")),
            "rated": pa.array(flat.pop("rated")),
            "n_ratings": pa.array(flat.pop("n_ratings")),
            "score": pa.array(flat.pop("score")),
            "day_status": pa.array(flat.pop("day_status").tolist(), pa.string()),
            "sessions": pa.array(
                [None if not np.isfinite(v) else int(v) for v in sessions.tolist()], pa.int32()
            ),
            **{k: pa.array(v) for k, v in flat.items()},
            "params_id": pa.array([cfg.params_id] * n, pa.string()),
        }
    )


def adherence_tables(
    con: duckdb.DuckDBPyConnection, p: Participant, cfg: DoseConfig, dd: DoseDays | None
) -> tuple[pa.Table, pa.Table] | None:
    """``adherence`` (per prescribed week) and ``adherence_summary`` of ``p``, or None when the
    participant has no arm with a prescription, or no start date."""
    start = getattr(p, "start_date", None)
    if not p.arm or start is None:
        return None
    presc = get_prescription(con, p.arm)
    if presc is None:
        return None
    start_day = np.datetime64(start, "D")
    if dd is None:
        empty_d = np.empty(0, "datetime64[D]")
        s_day, qual, band, trimp = empty_d, np.empty(0, bool), np.empty(0), np.empty(0)
        obs_days, observed = empty_d, np.empty(0, bool)
        # The prescribed TRIMP needs only the sex, not data.
        ab = dhr.banister_coefficients(p.sex, cfg.trimp_preset) if p.sex else None
    else:
        s_day, qual, band, trimp = dd.sess_day, dd.sess_qualifies, dd.sess_band_min, dd.sess_ban
        obs_days, observed = dd.days, dd.status == "observed"
        ab = dd.ab
    trimp_week = presc.trimp_prescribed_per_week(*(ab if ab is not None else (None, None)))
    trimp_source = (
        "prescribed"
        if presc.trimp_per_week is not None
        else "band_midpoint"
        if trimp_week is not None
        else None
    )
    band_week = presc.band_min_per_week
    wa = dadh.weekly_adherence(
        start_day,
        presc.weeks,
        s_day,
        qual,
        band,
        trimp,
        obs_days,
        observed,
        sessions_per_week=presc.sessions_per_week,
        band_min_per_week=band_week,
        trimp_per_week=trimp_week,
    )
    return _adherence_arrow(p, presc.arm, cfg, wa, start_day, trimp_source)


def _adherence_arrow(
    p: Participant,
    arm: str,
    cfg: DoseConfig,
    wa: dadh.WeeklyAdherence,
    start_day: np.datetime64,
    trimp_source: str | None,
) -> tuple[pa.Table, pa.Table]:
    weeks = np.asarray(wa.week)
    n = weeks.size
    weekly = pa.table(
        {
            "participant_id": pa.array([p.participant_id] * n, pa.string()),
            "arm": pa.array([arm] * n, pa.string()),
            "week": pa.array(weeks.astype(np.int32)),
            "week_start": pa.array(np.asarray(wa.week_start, "datetime64[D]")),
            "week_end": pa.array(np.asarray(wa.week_end, "datetime64[D]")),
            "days_observed": pa.array(np.asarray(wa.days_observed).astype(np.int32)),
            "sessions_prescribed": pa.array(np.asarray(wa.sessions_prescribed, np.float64)),
            "sessions_done": pa.array(np.asarray(wa.sessions_done).astype(np.int32)),
            "sessions_any": pa.array(np.asarray(wa.sessions_any).astype(np.int32)),
            "band_min": pa.array(np.asarray(wa.band_min, np.float64)),
            "band_min_prescribed": pa.array(np.asarray(wa.band_min_prescribed, np.float64)),
            "trimp_banister": pa.array(np.asarray(wa.trimp_banister, np.float64)),
            "trimp_prescribed": pa.array(np.asarray(wa.trimp_prescribed, np.float64)),
            "trimp_pct": pa.array(np.asarray(wa.trimp_pct, np.float64)),
            "trimp_prescribed_source": pa.array([trimp_source] * n, pa.string()),
            "adherence_pct": pa.array(np.asarray(wa.adherence_pct, np.float64)),
            "params_id": pa.array([cfg.params_id] * n, pa.string()),
        }
    )
    s = wa.summary
    summary = pa.table(
        {
            "participant_id": pa.array([p.participant_id], pa.string()),
            "arm": pa.array([arm], pa.string()),
            "start_date": pa.array(np.array([start_day], "datetime64[D]")),
            "end_date": pa.array(np.array([np.asarray(wa.week_end)[-1]], "datetime64[D]")),
            "weeks": pa.array([n], pa.int32()),
            "weeks_with_data": pa.array([int(s.weeks_with_data)], pa.int32()),
            "weeks_met": pa.array([int(s.weeks_met)], pa.int32()),
            "sessions_prescribed": pa.array([float(s.sessions_prescribed)], pa.float64()),
            "sessions_done": pa.array([int(s.sessions_done)], pa.int32()),
            "band_min": pa.array([_num(s.band_min)], pa.float64()),
            "trimp_banister": pa.array([_num(s.trimp_banister)], pa.float64()),
            "trimp_prescribed": pa.array([_num(s.trimp_prescribed)], pa.float64()),
            "trimp_pct": pa.array([_num(s.trimp_pct)], pa.float64()),
            "trimp_prescribed_source": pa.array([trimp_source], pa.string()),
            "adherence_pct": pa.array([float(s.adherence_pct)], pa.float64()),
            "params_id": pa.array([cfg.params_id], pa.string()),
        }
    )
    return weekly, summary


def _num(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
