"""Derived tables, recomputed per participant from the recorded ones.

For one participant: read the HR samples and activities (columnar), run the kernels of
:mod:`actidose.dose`, and replace the participant's rows of ``sessions``, ``daily_load``,
``load_series`` and ``weekly_dose`` in one transaction. Everything here is vectorized over
samples; Python loops run over sessions (tens to hundreds per participant), never samples.

Days are the participant's local calendar days (``timeutil.local_days``), so a day at a DST
change has 23 or 25 hours of samples in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from .. import __version__
from ..config import DoseConfig
from ..dose import hr as dhr
from ..dose import load as dload
from ..dose.merge import merge_by_priority, overlap_groups
from ..timeutil import local_days
from .db import transaction
from .minutes import accel_epochs, combine
from .participants import Participant, require
from .write import ts_array

F64 = npt.NDArray[np.float64]


def load_config(con: duckdb.DuckDBPyConnection) -> DoseConfig:
    row = con.execute("SELECT value FROM meta WHERE key = 'dose_config'").fetchone()
    return DoseConfig.from_json(row[0]) if row else DoseConfig()


def save_config(con: duckdb.DuckDBPyConnection, cfg: DoseConfig) -> None:
    cfg.validate()
    con.execute("INSERT OR REPLACE INTO meta VALUES ('dose_config', ?)", [cfg.to_json()])


def _register_params(con: duckdb.DuckDBPyConnection, cfg: DoseConfig) -> None:
    con.execute(
        "INSERT OR IGNORE INTO parameter_sets VALUES (?, ?, ?, ?)",
        [cfg.params_id, datetime.now(UTC), __version__, cfg.to_json()],
    )


@dataclass
class _Anchors:
    hr_rest: float | None
    hr_max_day: Any  # callable days -> HRmax array (NaN where unknown)
    hr_max_source: str | None
    ab: tuple[float, float] | None  # Banister coefficients, None when sex is unknown


def _anchors(p: Participant, cfg: DoseConfig) -> _Anchors:
    if p.hr_max_bpm is not None:
        entered = float(p.hr_max_bpm)

        def hr_max_day(days: npt.NDArray[np.datetime64]) -> F64:
            return np.full(days.shape, entered)

        src: str | None = "entered"
    elif p.birth_year is not None:
        formula = dhr.HRMAX_FORMULAS[cfg.hrmax_formula]
        birth = int(p.birth_year)

        def hr_max_day(days: npt.NDArray[np.datetime64]) -> F64:
            # Age at the day's date, from the birth year (the roster has no birthday).
            year = days.astype("datetime64[Y]").astype(np.int64) + 1970
            return np.asarray(formula((year - birth).astype(np.float64)), dtype=np.float64)

        src = cfg.hrmax_formula
    else:

        def hr_max_day(days: npt.NDArray[np.datetime64]) -> F64:
            return np.full(days.shape, np.nan)

        src = None
    ab = dhr.banister_coefficients(p.sex, cfg.trimp_preset) if p.sex else None
    return _Anchors(p.hr_rest_bpm, hr_max_day, src, ab)


def _per_sample_load(
    bpm: F64, dt_s: F64, hr_max: F64, an: _Anchors, cfg: DoseConfig
) -> tuple[F64, F64, F64, F64]:
    """Per-sample Banister and Edwards TRIMP contributions and moderate / vigorous minutes
    (NaN where an anchor the metric needs is unknown)."""
    n = bpm.size
    nan = np.full(n, np.nan)
    have_max = np.isfinite(hr_max)
    if an.hr_rest is not None and an.ab is not None and have_max.all() and n:
        a, b = an.ab
        ban = dhr.banister_trimp(bpm, dt_s, an.hr_rest, hr_max, a=a, b=b).per_sample
    else:
        ban = nan
    edw = dhr.edwards_trimp(bpm, dt_s, hr_max).per_sample if have_max.all() and n else nan
    if have_max.all() and n and (an.hr_rest is not None or cfg.intensity_scheme == "hrmax"):
        rest = an.hr_rest if an.hr_rest is not None else 0.0
        cls = dhr.intensity_class(bpm, rest, hr_max, scheme=cfg.intensity_scheme)
        mod = np.where(cls == 1, dt_s / 60.0, 0.0)
        vig = np.where(cls == 2, dt_s / 60.0, 0.0)
    else:
        mod = vig = nan
    return ban, edw, mod, vig


def _source_ranks(
    con: duckdb.DuckDBPyConnection, participant_id: str, cfg: DoseConfig
) -> dict[int, int]:
    """Rank of each source, best first: the sensor kind in ``cfg.source_priority`` order, then
    (with ``cfg.prefer_dense``) more samples per minute of its span, then the earlier import."""
    order = [k.strip() for k in cfg.source_priority.split(",") if k.strip()]
    rows = con.execute(
        "SELECT source_id, coalesce(sensor, 'unknown'), n_samples, "
        "greatest(epoch(last_ts) - epoch(first_ts), 1) FROM sources "
        "WHERE participant_id = ? AND status IN ('imported', 'salvaged')",
        [participant_id],
    ).fetchall()

    def key(r: tuple[Any, ...]) -> tuple[float, float, int]:
        sensor_rank = order.index(r[1]) if r[1] in order else len(order)
        density = (r[2] or 0) / (float(r[3]) / 60.0) if cfg.prefer_dense else 0.0
        return (sensor_rank, -density, int(r[0]))

    return {int(r[0]): i for i, r in enumerate(sorted(rows, key=key))}


def _sum_or_nan(idx: npt.NDArray[np.int64], values: F64, n: int) -> F64:
    """Per-day sums; NaN for every day when the metric could not be computed at all."""
    if values.size == 0 or np.isnan(values).all():
        return np.full(n, np.nan)
    return dload.daily_sum(idx, np.nan_to_num(values), n)


def compute_participant(
    con: duckdb.DuckDBPyConnection, participant_id: str, cfg: DoseConfig
) -> dict[str, pa.Table]:
    """The derived tables of one participant, as Arrow tables (not yet written)."""
    p = require(con, participant_id)
    an = _anchors(p, cfg)
    tz = p.timezone
    ok = "s.status IN ('imported', 'salvaged')"
    smp = con.execute(
        "SELECT epoch_us(h.ts) AS ts, h.bpm::DOUBLE AS bpm, h.source_id FROM hr_samples h "
        f"JOIN sources s USING (source_id) WHERE h.participant_id = ? AND {ok} "
        "ORDER BY h.source_id, h.ts",
        [participant_id],
    ).fetchnumpy()
    ts_src = np.asarray(smp["ts"], np.int64)
    bpm_src = np.asarray(smp["bpm"], np.float64)
    sid_src = np.asarray(smp["source_id"], np.int64)
    acts = con.execute(
        "SELECT a.source_id, a.idx, epoch_us(a.start_ts), epoch_us(a.end_ts), a.sport, "
        "a.sub_sport, a.timer_s FROM activities a JOIN sources s USING (source_id) "
        f"WHERE a.participant_id = ? AND {ok} ORDER BY a.start_ts, a.source_id, a.idx",
        [participant_id],
    ).fetchall()
    has_allday = bool(
        con.execute(
            f"SELECT count(*) FROM sources s WHERE participant_id = ? AND {ok} AND kind = 'allday'",
            [participant_id],
        ).fetchone()[0]  # type: ignore[index]
    )

    # --- all HR of the participant as one series, each instant from the best source ---
    rank = _source_ranks(con, participant_id, cfg)
    merged = merge_by_priority(ts_src, sid_src, rank, max_gap_s=cfg.max_gap_s)
    order = np.argsort(ts_src[merged.keep], kind="stable")
    ts_all = ts_src[merged.keep][order]
    bpm_all = bpm_src[merged.keep][order]
    sid_all = sid_src[merged.keep][order]
    first = np.ones(ts_all.size, bool)
    first[1:] = ts_all[1:] != ts_all[:-1]  # equal instants in two equally ranked sources
    ts_all, bpm_all, sid_all = ts_all[first], bpm_all[first], sid_all[first]
    t_s = ts_all / 1e6
    dt = dhr.sample_durations(t_s, max_gap_s=cfg.max_gap_s).dt_s if ts_all.size else np.empty(0)
    cov = (
        dhr.sample_durations(t_s, max_gap_s=cfg.coverage_gap_s).dt_s if ts_all.size else np.empty(0)
    )
    days_all = local_days(ts_all, tz)
    hrmax_all = an.hr_max_day(days_all)
    ban_all, _edw_all, mod_all, vig_all = _per_sample_load(bpm_all, dt, hrmax_all, an, cfg)

    # --- sessions, each from its own source's samples within [start, end] ---
    sess_rows: dict[str, list[Any]] = {k: [] for k in _SESSION_COLS}
    for source_id, idx, start_us, end_us, sport, sub_sport, timer_s in acts:
        lo = np.searchsorted(sid_src, source_id, "left")
        hi = np.searchsorted(sid_src, source_id, "right")
        s_ts = ts_src[lo:hi]
        a = lo + np.searchsorted(s_ts, start_us, "left")
        b = lo + np.searchsorted(s_ts, end_us, "right")
        st, sb = ts_src[a:b], bpm_src[a:b]
        day = local_days(np.array([start_us], np.int64), tz)
        hmax = an.hr_max_day(np.repeat(day, sb.size))
        if sb.size:
            sdt = dhr.sample_durations(st / 1e6, max_gap_s=cfg.max_gap_s).dt_s
            ban, edw, mod, vig = _per_sample_load(sb, sdt, hmax, an, cfg)
            vals = [float(np.sum(ban)), float(np.sum(edw)), float(np.sum(mod)), float(np.sum(vig))]
            hr_mean, hr_peak, cover = float(sb.mean()), float(sb.max()), float(sdt.sum())
        else:
            vals = [np.nan] * 4
            hr_mean = hr_peak = np.nan
            cover = 0.0
        duration = float(timer_s) if timer_s is not None else (end_us - start_us) / 1e6
        row = [
            int(source_id) * 1000 + int(idx),
            participant_id,
            int(source_id),
            int(start_us),
            int(end_us),
            day[0],
            sport,
            sub_sport,
            duration,
            int(sb.size),
            cover,
            hr_mean,
            hr_peak,
            *vals,
            an.hr_rest,
            float(an.hr_max_day(day)[0]),
            cfg.params_id,
        ]
        for k, v in zip(_SESSION_COLS, row, strict=True):
            sess_rows[k].append(v)

    def window_dose(a: int, b: int) -> list[float]:
        """Dose of the merged samples ``a:b`` as one session: their own step function, so the
        last sample holds the median interval, not until the next day's first sample."""
        if b <= a:
            return [np.nan] * 4
        wdt = dhr.sample_durations(ts_all[a:b] / 1e6, max_gap_s=cfg.max_gap_s).dt_s
        parts = _per_sample_load(bpm_all[a:b], wdt, hrmax_all[a:b], an, cfg)
        return [float(np.sum(x)) for x in parts]

    _link_sessions(sess_rows, rank, ts_all, sid_all, window_dose)
    acc = accel_epochs(con, participant_id, cfg)
    acc_days = local_days(acc.start_us, tz) if acc is not None else np.empty(0, "datetime64[D]")
    counted = np.array(sess_rows["counted"], bool)
    sess_days = np.array(sess_rows["day"], "datetime64[D]")
    if ts_all.size == 0 and sess_days.size == 0 and acc_days.size == 0:
        only_vendor = _vendor_daily(con, participant_id, tz, cfg)
        return {} if only_vendor is None else {"vendor_daily": only_vendor}
    candidates = [d for d in (days_all, sess_days, acc_days) if d.size]
    d0 = min(d.min() for d in candidates)
    d1 = max(d.max() for d in candidates)
    n = int((d1 - d0).astype(np.int64)) + 1
    days = d0 + np.arange(n)
    idx_all = (days_all - d0).astype(np.int64)
    # Daily totals count each exercise once: the primary session of each linked group, with the
    # dose of the merged (best-source) samples over the group's time range.
    idx_sess = (sess_days[counted] - d0).astype(np.int64)

    n_sess = np.bincount(idx_sess, minlength=n).astype(np.int32)
    s_ban = np.array(sess_rows["dose_trimp_banister"], np.float64)[counted]
    s_edw = np.array(sess_rows["dose_trimp_edwards"], np.float64)[counted]
    trimp_ban = _sum_or_nan(idx_sess, s_ban, n) if s_ban.size else np.zeros(n)
    trimp_edw = _sum_or_nan(idx_sess, s_edw, n) if s_edw.size else np.zeros(n)
    if np.isnan(s_ban).all() and s_ban.size:
        trimp_ban = np.full(n, np.nan)
    trimp_allday = _sum_or_nan(idx_all, ban_all, n)
    hr_minutes = dload.daily_sum(idx_all, dt / 60.0, n)
    hr_mod = _sum_or_nan(idx_all, mod_all, n)
    hr_vig = _sum_or_nan(idx_all, vig_all, n)
    mins = combine(ts_all, mod_all * 60.0, vig_all * 60.0, cov, acc, tz, d0, n)
    mod_min, vig_min, coverage = mins.mod_min, mins.vig_min, mins.coverage_min
    valid_wear = mins.wear_min >= cfg.valid_wear_h * 60.0  # NaN (no accelerometer) -> False
    if has_allday or acc is not None:
        observed = (coverage >= cfg.observed_min_h * 60.0) | valid_wear
        status = np.where(observed, "observed", np.where(coverage > 0, "partial", "unobserved"))
    else:
        # Activity files only: no file on a day inside the range means no exercise that day.
        status = np.full(n, "observed")
    hrmax_days = an.hr_max_day(days)
    pid_col = pa.array([participant_id] * n, pa.string())
    params = pa.array([cfg.params_id] * n, pa.string())
    daily = pa.table(
        {
            "participant_id": pid_col,
            "day": pa.array(days),
            "sessions": n_sess,
            "trimp_banister": trimp_ban,
            "trimp_edwards": trimp_edw,
            "trimp_allday": trimp_allday,
            "hr_minutes": hr_minutes,
            "hr_mod_min": hr_mod,
            "hr_vig_min": hr_vig,
            "acc_mod_min": mins.acc_mod_min,
            "acc_vig_min": mins.acc_vig_min,
            "mod_min": mod_min,
            "vig_min": vig_min,
            "mvpa_min": mod_min + vig_min,
            "wear_min": mins.wear_min,
            "acc_light_min": mins.acc_light_min,
            "acc_mvpa_min": mins.acc_mvpa_min,
            "acc_mvpa_bout1_min": mins.acc_bout_min[1],
            "acc_mvpa_bout5_min": mins.acc_bout_min[5],
            "acc_mvpa_bout10_min": mins.acc_bout_min[10],
            "acc_enmo_mean_mg": mins.acc_enmo_mean_mg,
            "valid_wear_day": pa.array(
                [None] * n if acc is None else valid_wear.tolist(), pa.bool_()
            ),
            "coverage_min": coverage,
            "day_status": pa.array(status.tolist(), pa.string()),
            "hr_rest_bpm": pa.array([an.hr_rest] * n, pa.float64()),
            "hr_max_bpm": hrmax_days,
            "hr_max_source": pa.array([an.hr_max_source] * n, pa.string()),
            "params_id": params,
        }
    )

    metric = {"trimp_banister": trimp_ban, "trimp_edwards": trimp_edw}.get(
        cfg.load_metric, trimp_allday
    )
    load = np.nan_to_num(metric)
    pmc = dload.pmc(load, tau_ctl=cfg.tau_ctl, tau_atl=cfg.tau_atl, form=cfg.pmc_form)
    acwr = dload.acwr_ewma(load, acute_n=cfg.acwr_acute_days, chronic_n=cfg.acwr_chronic_days)
    roll = dload.acwr_rolling(
        load, acute_days=cfg.acwr_acute_days, chronic_days=cfg.acwr_chronic_days, coupled=True
    )
    unc = dload.acwr_rolling(
        load, acute_days=cfg.acwr_acute_days, chronic_days=cfg.acwr_chronic_days, coupled=False
    )
    monotony, strain = dload.foster_rolling(load, window=7, ddof=cfg.foster_ddof)
    series = pa.table(
        {
            "participant_id": pid_col,
            "day": pa.array(days),
            "load": load,
            "ctl": pmc.ctl,
            "atl": pmc.atl,
            "tsb": pmc.tsb,
            "acwr_ewma": acwr[0],
            "acwr_rolling": roll,
            "acwr_uncoupled": unc,
            "monotony": monotony,
            "strain": strain,
            "day_status": pa.array(status.tolist(), pa.string()),
            "params_id": params,
        }
    )

    weeks = dload.iso_week_start(days)
    wk, widx = np.unique(weeks, return_inverse=True)
    m = wk.size
    s_dur = np.array(sess_rows["duration_s"], np.float64)[counted]
    w_sess = np.bincount(widx, weights=n_sess, minlength=m).astype(np.int32)
    w_mod = np.bincount(widx, weights=np.nan_to_num(mod_min), minlength=m)
    w_vig = np.bincount(widx, weights=np.nan_to_num(vig_min), minlength=m)
    no_minutes = bool(np.isnan(mod_min).all())
    who = w_mod + cfg.vigorous_weight * w_vig
    sess_week = widx[idx_sess] if idx_sess.size else np.empty(0, np.int64)
    weekly = pa.table(
        {
            "participant_id": pa.array([participant_id] * m, pa.string()),
            "week_start": pa.array(wk),
            "days": np.bincount(widx, minlength=m).astype(np.int32),
            "days_observed": np.bincount(widx, weights=status == "observed", minlength=m).astype(
                np.int32
            ),
            "sessions": w_sess,
            "session_min": np.bincount(sess_week, weights=s_dur / 60.0, minlength=m),
            "trimp_banister": (
                np.full(m, np.nan)
                if np.isnan(trimp_ban).all()
                else np.bincount(widx, weights=np.nan_to_num(trimp_ban), minlength=m)
            ),
            "trimp_edwards": (
                np.full(m, np.nan)
                if np.isnan(trimp_edw).all()
                else np.bincount(widx, weights=np.nan_to_num(trimp_edw), minlength=m)
            ),
            "mod_min": np.full(m, np.nan) if no_minutes else w_mod,
            "vig_min": np.full(m, np.nan) if no_minutes else w_vig,
            "who_equiv_min": np.full(m, np.nan) if no_minutes else who,
            "meets_who": pa.array(
                [None] * m if no_minutes else (who >= cfg.who_min_per_week).tolist(), pa.bool_()
            ),
            "params_id": pa.array([cfg.params_id] * m, pa.string()),
            "acc_mvpa_bout10_min": (
                np.full(m, np.nan)
                if acc is None
                else np.bincount(widx, weights=np.nan_to_num(mins.acc_bout_min[10]), minlength=m)
            ),
            "valid_wear_days": (
                pa.nulls(m, pa.int32())
                if acc is None
                else np.bincount(widx, weights=valid_wear, minlength=m).astype(np.int32)
            ),
        }
    )
    n_sessions = len(sess_rows["session_id"])
    sessions = pa.table(
        {
            c: (
                ts_array(np.array(v, np.int64))
                if c in ("start_ts", "end_ts")
                else pa.array(np.array(v, "datetime64[D]"))
                if c == "day"
                else pa.array(v, _SESSION_TYPES[c])
            )
            for c, v in sess_rows.items()
        }
    )
    assert sessions.num_rows == n_sessions
    out = {"sessions": sessions, "daily_load": daily, "load_series": series, "weekly_dose": weekly}
    vendor = _vendor_daily(con, participant_id, tz, cfg)
    if vendor is not None:
        out["vendor_daily"] = vendor
    return out


def _link_sessions(
    rows: dict[str, list[Any]],
    rank: dict[int, int],
    ts_all: npt.NDArray[np.int64],
    sid_all: npt.NDArray[np.int64],
    window_dose: Callable[[int, int], list[float]],
) -> None:
    """Link sessions that overlap in time (one exercise recorded twice, or by two devices):
    the session from the best-ranked source (then the longest) is counted, the others get
    ``duplicate_of``. The counted session's ``dose_*`` values come from the merged samples over
    the group's whole time range (each second from the best source covering it), so each second
    counts once."""
    k = len(rows["session_id"])
    for col in _LINK_COLS:
        rows[col] = [None] * k
    if k == 0:
        return
    start = np.array(rows["start_ts"], np.int64)
    end = np.array(rows["end_ts"], np.int64)
    groups = overlap_groups(start, end)
    src_rank = np.array([rank.get(int(s), 1 << 30) for s in rows["source_id"]], np.int64)
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        best = members[np.lexsort((-(end - start)[members], src_rank[members]))][0]
        a = int(np.searchsorted(ts_all, start[members].min(), "left"))
        b = int(np.searchsorted(ts_all, end[members].max(), "right"))
        dose = window_dose(a, b)
        used = ",".join(str(v) for v in np.unique(sid_all[a:b]).tolist()) or None
        for m in members.tolist():
            primary = m == best
            rows["counted"][m] = primary
            rows["duplicate_of"][m] = None if primary else rows["session_id"][best]
            for col, v in zip(_DOSE_COLS, dose, strict=True):
                rows[col][m] = v if primary else None
            rows["dose_sources"][m] = used if primary else None


_DOSE_COLS = ("dose_trimp_banister", "dose_trimp_edwards", "dose_hr_mod_min", "dose_hr_vig_min")
_LINK_COLS = ("duplicate_of", "counted", *_DOSE_COLS, "dose_sources")

_SESSION_COLS = (
    "session_id",
    "participant_id",
    "source_id",
    "start_ts",
    "end_ts",
    "day",
    "sport",
    "sub_sport",
    "duration_s",
    "hr_samples",
    "hr_coverage_s",
    "hr_mean",
    "hr_max",
    "trimp_banister",
    "trimp_edwards",
    "hr_mod_min",
    "hr_vig_min",
    "hr_rest_bpm",
    "hr_max_bpm",
    "params_id",
)
_SESSION_TYPES: dict[str, pa.DataType] = {
    "session_id": pa.int64(),
    "participant_id": pa.string(),
    "source_id": pa.int64(),
    "sport": pa.string(),
    "sub_sport": pa.string(),
    "duration_s": pa.float64(),
    "hr_samples": pa.int64(),
    "hr_coverage_s": pa.float64(),
    "hr_mean": pa.float64(),
    "hr_max": pa.float64(),
    "trimp_banister": pa.float64(),
    "trimp_edwards": pa.float64(),
    "hr_mod_min": pa.float64(),
    "hr_vig_min": pa.float64(),
    "hr_rest_bpm": pa.float64(),
    "hr_max_bpm": pa.float64(),
    "params_id": pa.string(),
    "duplicate_of": pa.int64(),
    "counted": pa.bool_(),
    "dose_trimp_banister": pa.float64(),
    "dose_trimp_edwards": pa.float64(),
    "dose_hr_mod_min": pa.float64(),
    "dose_hr_vig_min": pa.float64(),
    "dose_sources": pa.string(),
}

DERIVED = ("sessions", "daily_load", "load_series", "weekly_dose", "vendor_daily")

#: How a vendor kind's values combine within a day (anything else is summed).
_VENDOR_MEAN_KINDS = ("resting_hr_bpm", "hrv_sdnn_ms")


def _vendor_daily(
    con: duckdb.DuckDBPyConnection, participant_id: str, tz: str, cfg: DoseConfig
) -> pa.Table | None:
    """Vendor series per local day and kind, from ONE source per day and kind: the source with
    the most data that day (an iPhone and a Watch both count steps; adding them would count the
    same steps twice). Day values (>= 23 h) keep their day; shorter intervals go to the local
    day of their start."""
    got = con.execute(
        "SELECT epoch_us(v.start_ts) AS start, v.duration_s, v.value, v.kind, v.unit, "
        "v.source_id, v.origin FROM vendor_activity v JOIN sources s USING (source_id) "
        "WHERE v.participant_id = ? AND s.status IN ('imported', 'salvaged')",
        [participant_id],
    ).fetchall()
    if not got:
        return None
    start = np.array([r[0] for r in got], np.int64)
    # A day value starts at local midnight: take the local day of its midpoint, robust to a
    # start written a second early or late.
    dur = np.array([r[1] for r in got], np.float64)
    mid = start + np.where(dur >= 23 * 3600, (dur * 5e5).astype(np.int64), 0)
    days = local_days(mid, tz)
    groups: dict[tuple[Any, str, int], list[float]] = {}
    meta: dict[tuple[Any, str, int], tuple[str | None, str | None]] = {}
    for d, r in zip(days.tolist(), got, strict=True):
        key = (d, r[3], int(r[5]))
        groups.setdefault(key, []).append(float(r[2]))
        meta[key] = (r[4], r[6])
    best: dict[tuple[Any, str], tuple[int, int, float, int]] = {}
    for (d, kind, sid), vals in groups.items():
        agg = float(np.mean(vals)) if kind in _VENDOR_MEAN_KINDS else float(np.sum(vals))
        prev = best.get((d, kind))
        n = (prev[3] if prev else 0) + 1
        if prev is None or (len(vals), -sid) > (prev[1], -prev[0]):
            best[(d, kind)] = (sid, len(vals), agg, n)
        else:
            best[(d, kind)] = (*prev[:3], n)
    keys = sorted(best, key=lambda k: (k[0], k[1]))
    rows = [best[k] for k in keys]
    return pa.table(
        {
            "participant_id": pa.array([participant_id] * len(keys), pa.string()),
            "day": pa.array(np.array([k[0] for k in keys], "datetime64[D]")),
            "kind": pa.array([k[1] for k in keys], pa.string()),
            "unit": pa.array(
                [meta[(k[0], k[1], r[0])][0] for k, r in zip(keys, rows, strict=True)], pa.string()
            ),
            "value": pa.array([r[2] for r in rows], pa.float64()),
            "aggregate": pa.array(
                ["mean" if k[1] in _VENDOR_MEAN_KINDS else "sum" for k in keys], pa.string()
            ),
            "source_id": pa.array([r[0] for r in rows], pa.int64()),
            "origin": pa.array(
                [meta[(k[0], k[1], r[0])][1] for k, r in zip(keys, rows, strict=True)], pa.string()
            ),
            "n_sources": pa.array([r[3] for r in rows], pa.int32()),
            "params_id": pa.array([cfg.params_id] * len(keys), pa.string()),
        }
    )


def recompute(
    con: duckdb.DuckDBPyConnection,
    participant_ids: list[str] | None = None,
    *,
    cfg: DoseConfig | None = None,
) -> list[str]:
    """Recompute the derived tables of ``participant_ids`` (default: those pending). One
    transaction per participant. Returns the ids recomputed."""
    cfg = cfg or load_config(con)
    if participant_ids is None:
        participant_ids = [
            r[0]
            for r in con.execute(
                "SELECT participant_id FROM pending_recompute ORDER BY 1"
            ).fetchall()
        ]
    done: list[str] = []
    for pid in participant_ids:
        exists = con.execute(
            "SELECT count(*) FROM participants WHERE participant_id = ?", [pid]
        ).fetchone()
        tables = compute_participant(con, pid, cfg) if exists and exists[0] else {}
        with transaction(con):
            _register_params(con, cfg)
            for name in DERIVED:
                con.execute(f"DELETE FROM {name} WHERE participant_id = ?", [pid])
                if name in tables:
                    con.register("_derived", tables[name])
                    try:
                        cols = ", ".join(tables[name].column_names)
                        con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _derived")
                    finally:
                        con.unregister("_derived")
            con.execute("DELETE FROM pending_recompute WHERE participant_id = ?", [pid])
        done.append(pid)
    return done
