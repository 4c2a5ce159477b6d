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
import pyarrow.compute as pc

from .. import __version__
from ..config import DoseConfig
from ..dose import adherence as dadh
from ..dose import hr as dhr
from ..dose import load as dload
from ..dose.merge import merge_by_priority, overlap_groups
from ..prescription import Prescription
from ..timeutil import day_start_utc_us, local_days
from . import study
from .anchors import DayAnchors, day_anchors, estimates_table
from .db import fetch_arrow, transaction
from .minutes import accel_epochs, combine
from .participants import require
from .prescriptions import get as get_prescription
from .schema import DERIVED_TABLES
from .write import ts_array

F64 = npt.NDArray[np.float64]


def load_config(con: duckdb.DuckDBPyConnection) -> DoseConfig:
    row = con.execute("SELECT value FROM meta WHERE key = 'dose_config'").fetchone()
    return DoseConfig.from_json(row[0]) if row else DoseConfig()


def save_config(con: duckdb.DuckDBPyConnection, cfg: DoseConfig) -> None:
    cfg.validate()
    con.execute("INSERT OR REPLACE INTO meta VALUES ('dose_config', ?)", [cfg.to_json()])


def _register_params(con: duckdb.DuckDBPyConnection, cfg: DoseConfig) -> None:
    known = con.execute(
        "SELECT 1 FROM parameter_sets WHERE params_id = ?", [cfg.params_id]
    ).fetchone()
    if known:  # a lookup costs a fraction of an INSERT OR IGNORE
        return
    con.execute(
        "INSERT OR IGNORE INTO parameter_sets VALUES (?, ?, ?, ?)",
        [cfg.params_id, datetime.now(UTC), __version__, cfg.to_json()],
    )


def _per_sample_load(
    bpm: F64, dt_s: F64, rest: F64, hr_max: F64, ab: tuple[float, float] | None, cfg: DoseConfig
) -> tuple[F64, F64, F64, F64]:
    """Per-sample Banister and Edwards TRIMP contributions and moderate / vigorous minutes,
    with the anchors in force at each sample (NaN where an anchor the metric needs is unknown)."""
    n = bpm.size
    nan = np.full(n, np.nan)
    if n == 0:
        return nan, nan, nan, nan
    have_max = np.isfinite(hr_max)
    have_both = have_max & np.isfinite(rest)
    # Kernels see placeholder anchors where unknown; those samples are masked to NaN after.
    safe_max = np.where(have_max, hr_max, 190.0)
    safe_rest = np.where(have_both, rest, 60.0)
    if ab is not None and have_both.any():
        a, b = ab
        ban = dhr.banister_trimp(bpm, dt_s, safe_rest, safe_max, a=a, b=b).per_sample
        ban = np.where(have_both, ban, np.nan)
    else:
        ban = nan
    edw = np.where(have_max, dhr.edwards_trimp(bpm, dt_s, safe_max).per_sample, np.nan)
    need = have_both if cfg.intensity_scheme == "hrr" else have_max
    if need.any():
        cls = dhr.intensity_class(bpm, safe_rest, safe_max, scheme=cfg.intensity_scheme)
        mod = np.where(need, np.where(cls == 1, dt_s / 60.0, 0.0), np.nan)
        vig = np.where(need, np.where(cls == 2, dt_s / 60.0, 0.0), np.nan)
    else:
        mod = vig = nan
    return ban, edw, mod, vig


def _source_ranks(
    con: duckdb.DuckDBPyConnection, participant_id: str, cfg: DoseConfig
) -> dict[int, int]:
    """Rank of each source, best first: the sensor kind in ``cfg.source_priority`` order, then
    (with ``cfg.prefer_dense``) more samples per minute of its span, then the smaller sha256
    of its bytes (so the result does not depend on the order files were imported in, nor on
    how source ids were given)."""
    order = [k.strip() for k in cfg.source_priority.split(",") if k.strip()]
    rows = con.execute(
        "SELECT source_id, coalesce(sensor, 'unknown'), n_samples, "
        "greatest(epoch(last_ts) - epoch(first_ts), 1), sha256 FROM sources "
        "WHERE participant_id = ? AND status IN ('imported', 'salvaged')",
        [participant_id],
    ).fetchall()

    def key(r: tuple[Any, ...]) -> tuple[float, float, str]:
        sensor_rank = order.index(r[1]) if r[1] in order else len(order)
        density = (r[2] or 0) / (float(r[3]) / 60.0) if cfg.prefer_dense else 0.0
        return (sensor_rank, -density, str(r[4]))

    return {int(r[0]): i for i, r in enumerate(sorted(rows, key=key))}


def _day_sums(idx: npt.NDArray[np.int64], values: F64, n: int) -> F64:
    """Per-day sums of per-sample values. NaN for every day when the metric could not be
    computed at all; NaN for a day whose samples all lack it (e.g. before an anchor was known);
    0 for a day without samples."""
    if values.size == 0 or np.isnan(values).all():
        return np.full(n, np.nan)
    out = dload.daily_sum(idx, np.nan_to_num(values), n)
    has = np.bincount(idx, minlength=n)[:n] > 0
    known = np.bincount(idx, weights=np.isfinite(values), minlength=n)[:n] > 0
    return np.where(has & ~known, np.nan, out)


@dataclass
class DoseDays:
    """What the study layer (:mod:`actidose.storage.study`) needs from one participant's
    dose computation, in memory: the merged samples, counted sessions and per-day series."""

    tz: str
    days: npt.NDArray[np.datetime64]
    bounds_us: npt.NDArray[np.int64]  # UTC midnights, days.size + 1
    status: npt.NDArray[np.str_]
    ts_us: npt.NDArray[np.int64]  # merged HR samples
    hold_s: F64
    ban: F64  # per-sample Banister TRIMP
    minute_us: npt.NDArray[np.int64]
    minute_mod_s: F64
    minute_vig_s: F64
    sess_start_us: npt.NDArray[np.int64]  # counted sessions
    sess_day: npt.NDArray[np.datetime64]
    sess_ban: F64
    sess_edw: F64
    sess_band_min: F64
    sess_qualifies: npt.NDArray[np.bool_]
    daily: pa.Table
    series: pa.Table
    ab: tuple[float, float] | None


def compute_participant(
    con: duckdb.DuckDBPyConnection, participant_id: str, cfg: DoseConfig
) -> dict[str, pa.Table]:
    """The derived tables of one participant, as Arrow tables (not yet written)."""
    p = require(con, participant_id)
    tz = p.timezone
    ok = "s.status IN ('imported', 'salvaged')"
    srcs = con.execute(
        f"SELECT source_id, kind = 'allday' FROM sources s WHERE participant_id = ? AND {ok}",
        [participant_id],
    ).fetchall()
    ok_ids = [r[0] for r in srcs]
    allday_ids = np.array([r[0] for r in srcs if r[1]], np.int64)
    # A filter on the participant's usable sources, no join and no ORDER BY: the rows are
    # put in (source, time) order here, which costs nothing when they come in that order.
    smp = con.execute(
        "SELECT epoch_us(ts) AS ts, bpm::DOUBLE AS bpm, source_id FROM hr_samples "
        "WHERE participant_id = $p AND list_contains($ids, source_id)",
        {"p": participant_id, "ids": ok_ids},
    ).fetchnumpy()
    ts_src = np.asarray(smp["ts"], np.int64)
    bpm_src = np.asarray(smp["bpm"], np.float64)
    sid_src = np.asarray(smp["source_id"], np.int64)
    if ts_src.size > 1:
        d_sid, d_ts = np.diff(sid_src), np.diff(ts_src)
        if np.any((d_sid < 0) | ((d_sid == 0) & (d_ts < 0))):
            by = np.lexsort((ts_src, sid_src))
            ts_src, bpm_src, sid_src = ts_src[by], bpm_src[by], sid_src[by]
    acts = con.execute(
        "SELECT a.source_id, a.idx, epoch_us(a.start_ts), epoch_us(a.end_ts), a.sport, "
        "a.sub_sport, a.timer_s FROM activities a JOIN sources s USING (source_id) "
        f"WHERE a.participant_id = ? AND {ok} ORDER BY a.start_ts, a.source_id, a.idx",
        [participant_id],
    ).fetchall()
    has_allday = allday_ids.size > 0

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
    acc = accel_epochs(con, participant_id, cfg)
    acc_days = local_days(acc.start_us, tz) if acc is not None else np.empty(0, "datetime64[D]")
    act_days = local_days(np.array([a[2] for a in acts], np.int64), tz)

    # --- the day grid: every local day from the first to the last with data ---
    candidates = [d for d in (days_all, act_days, acc_days) if d.size]
    if not candidates:
        out: dict[str, pa.Table] = {}
        only_vendor = _vendor_daily(con, participant_id, tz, cfg)
        if only_vendor is not None:
            out["vendor_daily"] = only_vendor
        out.update(study.study_tables(con, p, cfg, None))
        return out
    d0 = min(d.min() for d in candidates)
    d1 = max(d.max() for d in candidates)
    n = int((d1 - d0).astype(np.int64)) + 1
    days = d0 + np.arange(n)
    bounds = day_start_utc_us(d0 + np.arange(n + 1), tz)
    idx_all = (days_all - d0).astype(np.int64)

    # --- anchors in force on each day, then per-sample dose with them ---
    an = day_anchors(con, p, cfg, days, bounds, ts_all, bpm_all, np.isin(sid_all, allday_ids))
    rest_all, max_all = an.rest[idx_all], an.max[idx_all]
    ban_all, _edw_all, mod_all, vig_all = _per_sample_load(
        bpm_all, dt, rest_all, max_all, an.ab, cfg
    )
    presc = get_prescription(con, p.arm) if p.arm else None

    # --- sessions, each from its own source's samples within [start, end] ---
    sess_rows: dict[str, list[Any]] = {k: [] for k in _SESSION_COLS}
    for (source_id, idx, start_us, end_us, sport, sub_sport, timer_s), day in zip(
        acts, act_days, strict=True
    ):
        lo = np.searchsorted(sid_src, source_id, "left")
        hi = np.searchsorted(sid_src, source_id, "right")
        s_ts = ts_src[lo:hi]
        a = lo + np.searchsorted(s_ts, start_us, "left")
        b = lo + np.searchsorted(s_ts, end_us, "right")
        st, sb = ts_src[a:b], bpm_src[a:b]
        k = int((day - d0).astype(np.int64))
        if sb.size:
            sdt = dhr.sample_durations(st / 1e6, max_gap_s=cfg.max_gap_s).dt_s
            ban, edw, mod, vig = _per_sample_load(
                sb, sdt, np.full(sb.size, an.rest[k]), np.full(sb.size, an.max[k]), an.ab, cfg
            )
            vals = [_nansum(ban), _nansum(edw), _nansum(mod), _nansum(vig)]
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
            day,
            sport,
            sub_sport,
            duration,
            int(sb.size),
            cover,
            hr_mean,
            hr_peak,
            *vals,
            _f(an.rest[k]),
            _f(an.max[k]),
            cfg.params_id,
            an.rest_source[k],
            an.max_source[k],
            an.valid_from[k],
        ]
        for col, v in zip(_SESSION_COLS, row, strict=True):
            sess_rows[col].append(v)

    def window_dose(a: int, b: int) -> list[float]:
        """Dose of the merged samples ``a:b`` as one session: their own step function, so the
        last sample holds the median interval, not until the next day's first sample. Also the
        minutes in the prescription's band and the mean HR."""
        if b <= a:
            return [np.nan] * 6
        wdt = dhr.sample_durations(ts_all[a:b] / 1e6, max_gap_s=cfg.max_gap_s).dt_s
        parts = _per_sample_load(bpm_all[a:b], wdt, rest_all[a:b], max_all[a:b], an.ab, cfg)
        band = np.nan
        if presc is not None and presc.band_scheme is not None:
            secs = dadh.band_seconds(
                bpm_all[a:b],
                wdt,
                rest_all[a:b],
                max_all[a:b],
                scheme=presc.band_scheme,
                low=presc.band_low,
                high=presc.band_high,
            )
            band = _nansum(secs) / 60.0
        return [*(_nansum(x) for x in parts), band, float(np.mean(bpm_all[a:b]))]

    _link_sessions(sess_rows, rank, ts_all, sid_all, window_dose)
    hr_mean_dose = np.array(sess_rows.pop("dose_hr_mean"), np.float64)
    counted = np.array(sess_rows["counted"], bool)
    sess_days = np.array(sess_rows["day"], "datetime64[D]")
    qualifies = _qualify(presc, sess_rows, sess_days - d0, hr_mean_dose, an)
    sess_rows["qualifies"] = [
        bool(q) if c else None for q, c in zip(qualifies, counted, strict=True)
    ]

    # Daily totals count each exercise once: the primary session of each linked group, with the
    # dose of the merged (best-source) samples over the group's time range.
    idx_sess = (sess_days[counted] - d0).astype(np.int64)
    n_sess = np.bincount(idx_sess, minlength=n).astype(np.int32)
    s_ban = np.array(sess_rows["dose_trimp_banister"], np.float64)[counted]
    s_edw = np.array(sess_rows["dose_trimp_edwards"], np.float64)[counted]
    trimp_ban = _day_sums(idx_sess, s_ban, n) if s_ban.size else np.zeros(n)
    trimp_edw = _day_sums(idx_sess, s_edw, n) if s_edw.size else np.zeros(n)
    trimp_allday = _day_sums(idx_all, ban_all, n)
    hr_minutes = dload.daily_sum(idx_all, dt / 60.0, n)
    hr_mod = _day_sums(idx_all, mod_all, n)
    hr_vig = _day_sums(idx_all, vig_all, n)
    mins = combine(ts_all, mod_all * 60.0, vig_all * 60.0, cov, acc, tz, d0, n)
    mod_min, vig_min, coverage = mins.mod_min, mins.vig_min, mins.coverage_min
    valid_wear = mins.wear_min >= cfg.valid_wear_h * 60.0  # NaN (no accelerometer) -> False
    if has_allday or acc is not None:
        observed = (coverage >= cfg.observed_min_h * 60.0) | valid_wear
        # A day is partial only with data of its own: the last sample of the day before may
        # hold a few minutes past midnight (coverage_gap_s), which is not a sign of wear.
        own = np.bincount(idx_all, minlength=n)[:n] > 0
        if acc is not None and acc_days.size:
            a_idx = (acc_days - d0).astype(np.int64)
            own |= np.bincount(a_idx, weights=acc.worn, minlength=n)[:n] > 0
        status = np.where(
            observed, "observed", np.where((coverage > 0) & own, "partial", "unobserved")
        )
    else:
        # Activity files only: no file on a day inside the range means no exercise that day.
        status = np.full(n, "observed")
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
            "hr_rest_bpm": an.rest,
            "hr_rest_source": pa.array(an.rest_source.tolist(), pa.string()),
            "hr_max_bpm": an.max,
            "hr_max_source": pa.array(an.max_source.tolist(), pa.string()),
            "anchor_valid_from": pa.array(an.valid_from),
            "params_id": params,
        }
    )

    metric = {"trimp_banister": trimp_ban, "trimp_edwards": trimp_edw}.get(
        cfg.load_metric, trimp_allday
    )
    lm = dload.load_models(
        np.nan_to_num(metric),
        status == "unobserved",
        treatment=cfg.unobserved_load,
        tau_ctl=cfg.tau_ctl,
        tau_atl=cfg.tau_atl,
        form=cfg.pmc_form,
        acute_days=cfg.acwr_acute_days,
        chronic_days=cfg.acwr_chronic_days,
        ddof=cfg.foster_ddof,
    )
    unknown = np.isnan(metric) & (status != "unobserved")
    if unknown.any() and not np.any(np.isfinite(metric) & (metric != 0)):
        # No day's load is known (no sex or no anchors for the metric), yet there was exercise:
        # the models are not known either. NULL, not a flat 0; known rest days keep load 0.
        nan = np.full(n, np.nan)
        lm = lm._replace(
            load=np.where(unknown, np.nan, lm.load),
            ctl=nan,
            atl=nan,
            tsb=nan,
            acwr_ewma=nan,
            acwr_rolling=nan,
            acwr_uncoupled=nan,
            monotony=nan,
            strain=nan,
        )
    series = pa.table(
        {
            "participant_id": pid_col,
            "day": pa.array(days),
            "load": lm.load,
            "ctl": lm.ctl,
            "atl": lm.atl,
            "tsb": lm.tsb,
            "acwr_ewma": lm.acwr_ewma,
            "acwr_rolling": lm.acwr_rolling,
            "acwr_uncoupled": lm.acwr_uncoupled,
            "monotony": lm.monotony,
            "strain": lm.strain,
            "day_status": pa.array(status.tolist(), pa.string()),
            "unobserved_treatment": pa.array([cfg.unobserved_load] * n, pa.string()),
            "imputed": pa.array(np.asarray(lm.imputed, bool)),
            "acute_unobserved_days": np.asarray(lm.acute_unobserved_days, np.int32),
            "chronic_unobserved_days": np.asarray(lm.chronic_unobserved_days, np.int32),
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
            "session_min": np.bincount(sess_week, weights=s_dur / 60.0, minlength=m).astype(
                np.float64  # bincount of no sessions is int64
            ),
            "trimp_banister": _week_sums(widx, trimp_ban, m),
            "trimp_edwards": _week_sums(widx, trimp_edw, m),
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
                if c in ("day", "anchor_valid_from")
                else pa.array(v, _SESSION_TYPES[c])
            )
            for c, v in sess_rows.items()
        }
    )
    assert sessions.num_rows == n_sessions
    out = {
        "sessions": sessions,
        "daily_load": daily,
        "load_series": series,
        "weekly_dose": weekly,
        "hr_estimates": estimates_table(participant_id, days, an, cfg.params_id),
    }
    vendor = _vendor_daily(con, participant_id, tz, cfg)
    if vendor is not None:
        out["vendor_daily"] = vendor
    start_all = np.array(sess_rows["start_ts"], np.int64)
    dd = DoseDays(
        tz=tz,
        days=days,
        bounds_us=bounds,
        status=status,
        ts_us=ts_all,
        hold_s=dt,
        ban=ban_all,
        minute_us=mins.minute_us,
        minute_mod_s=mins.minute_mod_s,
        minute_vig_s=mins.minute_vig_s,
        sess_start_us=start_all[counted],
        sess_day=sess_days[counted],
        sess_ban=s_ban,
        sess_edw=s_edw,
        sess_band_min=np.array(sess_rows["band_min"], np.float64)[counted],
        sess_qualifies=qualifies[counted],
        daily=daily,
        series=series,
        ab=an.ab,
    )
    out.update(study.study_tables(con, p, cfg, dd))
    return out


def _f(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _nansum(x: F64) -> float:
    """Sum ignoring NaN; NaN when every value is NaN."""
    return float(np.nansum(x)) if x.size and not np.isnan(x).all() else np.nan


def _week_sums(widx: npt.NDArray[np.int64], per_day: F64, m: int) -> F64:
    if np.isnan(per_day).all():
        return np.full(m, np.nan)
    out = np.bincount(widx, weights=np.nan_to_num(per_day), minlength=m)
    known = np.bincount(widx, weights=np.isfinite(per_day), minlength=m) > 0
    return np.where(known, out, np.nan)


def _qualify(
    presc: Prescription | None,
    rows: dict[str, list[Any]],
    day_idx: npt.NDArray[np.timedelta64],
    hr_mean: F64,
    an: DayAnchors,
) -> npt.NDArray[np.bool_]:
    """Whether each session counts towards the participant's prescription (False without one)."""
    k = len(rows["session_id"])
    if presc is None or k == 0:
        return np.zeros(k, bool)
    # A session's length: its timer time, or the time its HR samples cover when longer (the
    # last of 1,800 one-second samples stands for the 1,800th second: 30 min, not 29:59).
    duration = np.array(rows["duration_s"], np.float64)
    covered = np.array(rows["hr_coverage_s"], np.float64)
    minutes = np.fmax(duration, covered) / 60.0
    band = np.array([np.nan if v is None else v for v in rows["band_min"]], np.float64)
    inside = np.zeros(k, bool)
    if presc.qualify == "duration_in_band":
        assert presc.band_scheme is not None
        i = day_idx.astype(np.int64)
        inside = np.asarray(
            dadh.in_band(
                hr_mean,
                an.rest[i],
                an.max[i],
                scheme=presc.band_scheme,
                low=presc.band_low,
                high=presc.band_high,
            ),
            bool,
        )
    return dadh.session_qualifies(
        minutes,
        np.nan_to_num(band),  # band minutes unknown: none in the band
        inside,
        rule=presc.qualify,
        min_session_min=presc.min_session_min,
    )


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


_DOSE_COLS = (
    "dose_trimp_banister",
    "dose_trimp_edwards",
    "dose_hr_mod_min",
    "dose_hr_vig_min",
    "band_min",
    "dose_hr_mean",  # used for the prescription's rule, not stored
)
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
    "hr_rest_source",
    "hr_max_source",
    "anchor_valid_from",
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
    "hr_rest_source": pa.string(),
    "hr_max_source": pa.string(),
    "band_min": pa.float64(),
    "qualifies": pa.bool_(),
}

DERIVED = DERIVED_TABLES

#: How a vendor kind's values combine within a day (anything else is summed).
_VENDOR_MEAN_KINDS = ("resting_hr_bpm", "hrv_sdnn_ms")


def _vendor_daily(
    con: duckdb.DuckDBPyConnection, participant_id: str, tz: str, cfg: DoseConfig
) -> pa.Table | None:
    """Vendor series per local day and kind (see :func:`vendor_daily`)."""
    got = fetch_arrow(
        con.execute(
            "SELECT epoch_us(v.start_ts) AS start, v.duration_s, v.value, v.kind, v.unit, "
            "v.source_id, v.origin FROM vendor_activity v JOIN sources s USING (source_id) "
            "WHERE v.participant_id = ? AND s.status IN ('imported', 'salvaged')",
            [participant_id],
        )
    )
    if not got.num_rows:
        return None
    sha = dict(
        con.execute(
            "SELECT source_id, sha256 FROM sources WHERE source_id IN "
            "(SELECT DISTINCT source_id FROM vendor_activity WHERE participant_id = ?)",
            [participant_id],
        ).fetchall()
    )
    kind = pc.dictionary_encode(got.column("kind").combine_chunks())
    names = kind.dictionary.to_pylist()
    rank = np.argsort(np.argsort(np.array(names, object)))  # codes in the kinds' sort order
    sid = got.column("source_id").to_numpy().astype(np.int64)
    picked = _vendor_daily_coded(
        got.column("start").to_numpy().astype(np.int64),
        got.column("duration_s").to_numpy().astype(np.float64),
        got.column("value").to_numpy().astype(np.float64),
        rank[kind.indices.to_numpy(zero_copy_only=False)].astype(np.int64),
        sorted(names),
        sid,
        sha,
        tz,
    )
    rows = pa.array(picked["row"])
    n = len(picked["row"])
    return pa.table(
        {
            "participant_id": pa.array([participant_id] * n, pa.string()),
            "day": pa.array(picked["day"]),
            "kind": pa.array(picked["kind"], pa.string()),
            "unit": got.column("unit").take(rows).combine_chunks().cast(pa.string()),
            "value": pa.array(picked["value"], pa.float64()),
            "aggregate": pa.array(picked["aggregate"], pa.string()),
            "source_id": pa.array(picked["source_id"], pa.int64()),
            "origin": got.column("origin").take(rows).combine_chunks().cast(pa.string()),
            "n_sources": pa.array(picked["n_sources"], pa.int32()),
            "params_id": pa.array([cfg.params_id] * n, pa.string()),
        }
    )


def vendor_daily(
    start_us: npt.NDArray[np.int64],
    duration_s: npt.NDArray[np.float64],
    value: npt.NDArray[np.float64],
    kind: npt.NDArray[np.object_],
    unit: npt.NDArray[np.object_],
    source_id: npt.NDArray[np.int64],
    origin: npt.NDArray[np.object_],
    sha256: npt.NDArray[np.object_],
    tz: str,
) -> dict[str, npt.NDArray[Any]]:
    """Vendor values per local day and kind, from ONE source per day and kind: the source
    with the most values that day (an iPhone and a Watch both count steps; adding them would
    count the same steps twice; equal counts: the smaller sha256). Day values (>= 23 h) keep
    their day (the local day of their midpoint, robust to a start written a second early or
    late); shorter intervals go to the local day of their start. Resting HR and HRV are
    averaged, the rest summed, in the order of the rows; the unit and origin are the last
    row's of the source that day.

    Returns columns sorted by day and kind: ``day`` (datetime64[D]), ``kind``, ``unit``,
    ``value``, ``aggregate`` ("mean" or "sum"), ``source_id``, ``origin``, ``n_sources``
    (sources with values that day)."""
    kinds, kind_i = np.unique(np.asarray(kind, str), return_inverse=True)
    sha = {int(i): str(h) for i, h in zip(source_id.tolist(), sha256.tolist(), strict=True)}
    got = _vendor_daily_coded(
        start_us, duration_s, value, kind_i.astype(np.int64), kinds.tolist(), source_id, sha, tz
    )
    rows = got.pop("row")
    return {**got, "unit": unit[rows], "origin": origin[rows]}


def _vendor_daily_coded(
    start_us: npt.NDArray[np.int64],
    duration_s: npt.NDArray[np.float64],
    value: npt.NDArray[np.float64],
    kind_i: npt.NDArray[np.int64],
    kinds: list[str],
    source_id: npt.NDArray[np.int64],
    sha: dict[int, str],
    tz: str,
) -> dict[str, npt.NDArray[Any]]:
    """:func:`vendor_daily` over kinds given as codes (``kinds[code]``, sorted) and the
    sha256 of each source; ``row``: the row whose unit and origin each result takes."""
    mid = start_us + np.where(duration_s >= 23 * 3600, (duration_s * 5e5).astype(np.int64), 0)
    day = local_days(mid, tz).astype(np.int64)
    # groups of (day, kind, source), rows in their order within each
    order = np.lexsort((source_id, kind_i, day))
    d, k, sid = day[order], kind_i[order], source_id[order]
    new = np.ones(order.size, bool)
    new[1:] = (d[1:] != d[:-1]) | (k[1:] != k[:-1]) | (sid[1:] != sid[:-1])
    g0 = np.flatnonzero(new)
    g_last = np.append(g0[1:], order.size) - 1
    count = np.diff(np.append(g0, order.size))
    total = np.add.reduceat(value[order], g0)
    is_mean = np.isin(np.array(kinds, object), _VENDOR_MEAN_KINDS)[k[g0]]
    agg = np.where(is_mean, total / count, total)
    # per (day, kind): the group with the most values, then the smallest sha256
    sids = np.unique(sid[g0])
    by_sha = np.argsort(np.array([sha[int(i)] for i in sids.tolist()], object))
    sha_rank = np.empty(sids.size, np.int64)
    sha_rank[by_sha] = np.arange(sids.size)
    g_sha = sha_rank[np.searchsorted(sids, sid[g0])]
    gd, gk = d[g0], k[g0]
    best = np.lexsort((g_sha, -count, gk, gd))
    first = np.ones(best.size, bool)
    first[1:] = (gd[best][1:] != gd[best][:-1]) | (gk[best][1:] != gk[best][:-1])
    starts = np.flatnonzero(first)
    pick = best[starts]
    return {
        "day": gd[pick].astype("datetime64[D]"),
        "kind": np.array(kinds, object)[gk[pick]],
        "value": agg[pick],
        "aggregate": np.where(is_mean[pick], "mean", "sum").astype(object),
        "source_id": sid[g0][pick],
        "n_sources": np.diff(np.append(starts, best.size)).astype(np.int32),
        "row": order[g_last[pick]],
    }


def _nan_to_null(table: pa.Table) -> pa.Table:
    """NaN is how the kernels say "not known"; in SQL that is NULL (so ``IS NULL``, ``avg``
    and ``count`` behave as users expect)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_floating(f.type):
            col = table.column(i)
            table = table.set_column(i, f, pc.if_else(pc.is_nan(col), None, col))
    return table


def recompute(
    con: duckdb.DuckDBPyConnection,
    participant_ids: list[str] | None = None,
    *,
    cfg: DoseConfig | None = None,
) -> list[str]:
    """Recompute the derived tables of ``participant_ids`` (default: those pending). Written in
    transactions of up to ``_BATCH`` participants (each clears their ``pending_recompute`` rows
    in the same transaction, so a crash leaves them pending). Returns the ids recomputed."""
    cfg = cfg or load_config(con)
    if participant_ids is None:
        participant_ids = [
            r[0]
            for r in con.execute(
                "SELECT participant_id FROM pending_recompute ORDER BY 1"
            ).fetchall()
        ]
    done: list[str] = []
    for i in range(0, len(participant_ids), _BATCH):
        batch = participant_ids[i : i + _BATCH]
        known = {
            r[0]
            for r in con.execute(
                "SELECT participant_id FROM participants WHERE list_contains($ids, participant_id)",
                {"ids": batch},
            ).fetchall()
        }
        parts: dict[str, list[pa.Table]] = {}
        for pid in batch:
            if pid in known:
                for name, table in compute_participant(con, pid, cfg).items():
                    parts.setdefault(name, []).append(_nan_to_null(table))
        with transaction(con):
            _register_params(con, cfg)
            for name in DERIVED:
                con.execute(
                    f"DELETE FROM {name} WHERE list_contains($ids, participant_id)",
                    {"ids": batch},
                )
                if name in parts:
                    table = pa.concat_tables(parts[name], promote_options="permissive")
                    con.register("_derived", table)
                    try:
                        cols = ", ".join(table.column_names)
                        con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _derived")
                    finally:
                        con.unregister("_derived")
            con.execute(
                "DELETE FROM pending_recompute WHERE list_contains($ids, participant_id)",
                {"ids": batch},
            )
        done.extend(batch)
    return done


#: Participants recomputed per transaction: one DELETE and one columnar INSERT per table and
#: batch instead of per participant (the statements, not the kernels, dominated recompute).
_BATCH = 32
