"""Edge cases of the study layer a researcher will hit: ratings without data and data without
ratings, ratings outside the data, window edges, participants without sex or anchors, anchor
versions and estimates, unobserved days, arms and prescriptions that change, determinism and
idempotency, and no NaN in the database.

One study is built through the CLI (module scope); tests that change it work on a copy.
Participants (all Europe/London in January 2026, when local time is UTC):

* E1: activity files S1-S4 and ratings before, inside and after the data; arm with a
  prescription running past the data.
* E2: one activity file, no ratings; an arm without a prescription.
* N1: ratings and a start date, no data at all.
* U1: no sex, no anchors, no birth year; U2: anchors entered but no sex.
* D1: all-day monitoring with a day missing (8 January), two runs, resting HR entered above
  the all-day floor.
* H1: HRmax entered at 100 bpm and an all-day floor of 110 bpm (an estimate >= HRmax).
* A1: accelerometer epochs only, with a day missing (8 January).

Expected values are worked out from the files the test writes (``banister_f``), never read
back from the code under test.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.cli import main
from actidose.dose import load as dload
from actidose.ingest.fit_writer import write_monitoring_fit
from actidose.ingest.samples import clean_hr
from actidose.recording import AccelEpochs, Recording
from actidose.storage.db import connect, transaction
from actidose.storage.schema import DERIVED_TABLES
from actidose.storage.write import store_recording

from .conftest import activity_file, banister_f, utc

TZ = "Europe/London"  # GMT in January: local wall time is UTC
TAIL = 59 / 60  # a file's last 1 Hz sample holds 60 s in the merged series: 59 s more
E1_SESSIONS = {  # name: (UTC start, minutes, bpm)
    "S1": ((2026, 1, 6, 8, 0), 30, 150),
    "S2": ((2026, 1, 8, 10, 0), 30, 150),
    "S3": ((2026, 1, 9, 10, 0), 20, 140),  # starts exactly at a daily window's start
    "S4": ((2026, 1, 10, 10, 0), 30, 150),  # starts exactly at a rating (window end)
}
PRESCRIPTION = """
[arms.aerobic]
weeks = 4
sessions_per_week = 3
min_session_min = 30
intensity = { scheme = "hrr", low = 0.60, high = 0.80 }
"""
RATINGS = [
    "participant_id,timestamp,instrument,item,value",
    "E1,2026-01-03 20:00,mood,1,5",  # before the first data day
    "E1,2026-01-10 10:00,mood,1,6",  # at S4's start
    "E1,2026-01-20 20:00,mood,1,7",  # after the last data day
    "E1,2026-01-10 10:00,fatigue,1,4",  # no definition yet (recall 1 day)
    *[f"E1,2026-01-12 10:00,phq9,{i},1" for i in range(1, 10)],
    "N1,2026-01-10 10:00,mood,1,2",
    *[f"N1,2026-01-12 10:00,phq9,{i},2" for i in range(1, 10)],
    "U1,2026-01-09 20:00,mood,1,3",
    "U2,2026-01-07 20:00,mood,1,3",
    "D1,2026-01-09 08:00,mood,1,5",
    "A1,2026-01-09 12:00,mood,1,6",
]
DOSE_COLUMNS = (  # of symptom_exposure: NULL when nothing about the dose is known
    "trimp_banister",
    "trimp_edwards",
    "trimp_allday",
    "mod_min",
    "vig_min",
    "mvpa_min",
    "who_equiv_min",
    "ctl_prev",
    "atl_prev",
    "tsb_prev",
)
EPOCH_S = 5.0
N_EPOCHS_DAY = int(86_400 / EPOCH_S)


def _run(db: Path, *args: str) -> str:
    r = CliRunner().invoke(main, ["--db", str(db), *args])
    assert r.exit_code == 0, r.output
    return r.output


def _add(db: Path, pid: str, *opts: str) -> None:
    _run(db, "participant", "add", pid, "--timezone", TZ, *opts)


def _monitoring(path: Path, day: str, bpm_night: float, bpm_day: float, serial: int) -> str:
    """All-day HR once a minute from 00:00 to 22:00 local (UTC) on ``day``."""
    t = np.arange(0, 22 * 3600, 60)
    bpm = np.where(t < 6 * 3600, bpm_night, bpm_day)
    ts = (np.datetime64(f"{day}T00:00", "s") + t.astype("m8[s]")).astype("datetime64[us]")
    write_monitoring_fit(path, ts, bpm, utc_offset_s=0, serial=serial)
    return str(path)


def _store_accel_day(con: duckdb.DuckDBPyConnection, pid: str, day: str) -> None:
    """A day of accelerometer epochs worn all day: 20 mg, and 30 minutes at 200 mg
    (moderate on the Hildebrand wrist thresholds) from 10:00."""
    enmo = np.full(N_EPOCHS_DAY, 20.0)
    enmo[int(600 * 60 / EPOCH_S) : int(630 * 60 / EPOCH_S)] = 200.0
    start = np.datetime64(f"{day}T00:00", "us").astype(np.int64)
    n = enmo.size
    ep = AccelEpochs(
        start_us=start + np.arange(n, dtype=np.int64) * int(EPOCH_S * 1e6),
        epoch_s=EPOCH_S,
        enmo_mg=enmo,
        mad_mg=np.zeros(n),
        nonwear=np.zeros(n, bool),
        clipped=np.zeros(n, np.int64),
        n_samples=np.full(n, 500, np.int64),
        info={"sample_rate_hz": 100.0, "nonwear_rule": "ggir2023", "calibration_accepted": True},
    )
    rec = Recording(format="test", kind="allday", accel_epochs=ep)
    with transaction(con):
        store_recording(
            con,
            sha256=f"accel-{pid}-{day}",
            path=f"/{pid}-{day}.cwa",
            size=1,
            participant_id=pid,
            rec=rec,
            hr=clean_hr(rec.hr),
            replace_id=None,
        )


def _fit(path: Path, start: tuple[int, ...], minutes: int, bpm: float, serial: int) -> str:
    """A FIT activity at constant HR, one sample a second."""
    return str(activity_file(path, utc(*start), np.full(minutes * 60, bpm), serial=serial))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("edges")
    db = tmp / "study.duckdb"
    f_opts = ("--sex", "f", "--birth-year", "1990", "--hr-rest", "60", "--hr-max", "190")
    _add(db, "E1", *f_opts, "--arm", "aerobic", "--start-date", "2026-01-05")
    files = [
        _fit(tmp / f"{name}.fit", start, minutes, bpm, 1)
        for name, (start, minutes, bpm) in E1_SESSIONS.items()
    ]
    _run(db, "import", "-P", "E1", *files)
    _add(db, "E2", *f_opts, "--arm", "stretching", "--start-date", "2026-01-05")
    _run(db, "import", "-P", "E2", _fit(tmp / "e2.fit", (2026, 1, 7, 12, 0), 30, 150, 2))
    n1 = ("--sex", "m", "--birth-year", "1980", "--arm", "aerobic", "--start-date", "2026-01-05")
    _add(db, "N1", *n1)
    _add(db, "U1")
    u1 = [_fit(tmp / f"u1-{d}.fit", (2026, 1, d, 9, 0), 30, 150, 3) for d in (7, 9)]
    _run(db, "import", "-P", "U1", *u1)
    _add(db, "U2", "--hr-rest", "60", "--hr-max", "190")
    _run(db, "import", "-P", "U2", _fit(tmp / "u2.fit", (2026, 1, 7, 9, 0), 30, 150, 4))
    _add(db, "D1", "--sex", "m", "--birth-year", "1985", "--hr-rest", "60", "--hr-max", "185")
    d1 = [
        _monitoring(tmp / f"d1-{d}.fit", f"2026-01-{d:02d}", 52.0, 75.0, serial=5)
        for d in (5, 6, 7, 9, 10)
    ]
    d1 += [_fit(tmp / f"d1-run{d}.fit", (2026, 1, d, 16, 0), 30, 150, 6) for d in (7, 10)]
    _run(db, "import", "-P", "D1", *d1)
    _add(db, "H1", "--sex", "f", "--hr-max", "100")
    h1 = [_monitoring(tmp / f"h1-{d}.fit", f"2026-01-{d:02d}", 110.0, 110.0, 7) for d in (5, 6)]
    h1.append(_fit(tmp / "h1-run.fit", (2026, 1, 6, 16, 0), 30, 150, 8))
    _run(db, "import", "-P", "H1", *h1)
    _add(db, "A1", "--sex", "f", "--birth-year", "1990", "--hr-rest", "60", "--hr-max", "190")
    con = connect(db)
    try:
        for day in ("2026-01-05", "2026-01-06", "2026-01-07", "2026-01-09"):
            _store_accel_day(con, "A1", day)
    finally:
        con.close()
    _run(db, "recompute", "-P", "A1")
    (tmp / "ratings.csv").write_text("\n".join(RATINGS) + "\n")
    _run(db, "symptoms", "import", str(tmp / "ratings.csv"))
    (tmp / "arms.toml").write_text(PRESCRIPTION)
    _run(db, "prescription", "set", str(tmp / "arms.toml"))
    return db


@pytest.fixture
def copy(study: Path, tmp_path: Path) -> Path:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(study.read_bytes())
    return db


def _rows(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _dicts(db: Path, sql: str, *params: object) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(sql, list(params))
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def _exposure(db: Path, pid: str, instrument: str, ts: str, lag: int = 0) -> dict[str, Any]:
    rows = _dicts(
        db,
        "SELECT * FROM symptom_exposure WHERE participant_id = ? AND instrument = ? "
        "AND ts = ?::TIMESTAMPTZ AND lag_days = ?",
        pid,
        instrument,
        ts,
        lag,
    )
    assert len(rows) == 1, rows
    return rows[0]


def _iso(v: Any) -> str:
    """A TIMESTAMPTZ as ISO 8601 in UTC, whatever the session's time zone."""
    return str(v.astimezone(UTC).isoformat())


def _snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived table, rows sorted (NULLs compare as None)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for t in DERIVED_TABLES:
            rows = con.execute(f"SELECT * FROM {t}").fetchall()
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def _ban(name: str, rest: float = 60.0, hmax: float = 190.0) -> float:
    _, minutes, bpm = E1_SESSIONS[name]
    return banister_f(minutes, bpm, rest=rest, hmax=hmax)


# ----------------------------------------------------------------------- ratings and data
def test_ratings_without_any_data(study: Path) -> None:
    scores = _rows(
        study,
        "SELECT instrument, score, band, complete FROM symptom_scores "
        "WHERE participant_id = 'N1' ORDER BY instrument",
    )
    assert scores == [("mood", 2.0, None, True), ("phq9", 18.0, "moderately severe", True)]
    for instrument, ts, days in (
        ("mood", "2026-01-10 10:00:00+00", 1.0),
        ("phq9", "2026-01-12 10:00:00+00", 14.0),
    ):
        e = _exposure(study, "N1", instrument, ts)
        assert e["coverage"] == 0.0 and e["sessions"] == 0
        assert e["days_observed"] == 0.0 and e["days_partial"] == 0.0
        assert e["days_unobserved"] == pytest.approx(days)
        for k in DOSE_COLUMNS:
            assert e[k] is None, k
    panel = _rows(
        study,
        "SELECT instrument, day::VARCHAR, rated, day_status, sessions, trimp_banister, ctl "
        "FROM symptom_days WHERE participant_id = 'N1' ORDER BY instrument, day",
    )
    assert [d[:3] for d in panel] == [
        ("mood", "2026-01-10", True),
        ("phq9", "2026-01-12", True),
    ]
    assert all(d[3:] == ("unobserved", None, None, None) for d in panel)


def test_adherence_without_any_data(study: Path) -> None:
    rows = _rows(
        study,
        "SELECT week, week_start::VARCHAR, days_observed, sessions_done, sessions_any, "
        "adherence_pct, trimp_prescribed, trimp_prescribed_source FROM adherence "
        "WHERE participant_id = 'N1' ORDER BY week",
    )
    assert [r[:2] for r in rows] == [
        (1, "2026-01-05"),
        (2, "2026-01-12"),
        (3, "2026-01-19"),
        (4, "2026-01-26"),
    ]
    assert all(r[2:6] == (0, 0, 0, 0.0) for r in rows)
    # The prescribed TRIMP depends on the prescription and the participant's sex, not on data:
    # 30 min at the band's midpoint (70 % HRR), men's Banister coefficients, 3 a week.
    x = 0.7
    want = 3 * 30 * x * 0.64 * math.exp(1.92 * x)
    assert all(r[6] == pytest.approx(want, rel=1e-12) and r[7] == "band_midpoint" for r in rows)
    (summary,) = _rows(
        study,
        "SELECT weeks, weeks_with_data, weeks_met, sessions_prescribed, sessions_done, "
        "adherence_pct, end_date::VARCHAR FROM adherence_summary WHERE participant_id = 'N1'",
    )
    assert summary == (4, 0, 0, 12.0, 0, 0.0, "2026-02-01")


def test_recompute_of_a_participant_without_data(copy: Path) -> None:
    before = _snapshot(copy)
    out = _run(copy, "recompute", "-P", "N1")
    assert "recomputed 1 participant" in out
    after = _snapshot(copy)
    assert after == before
    for table in ("symptom_scores", "symptom_exposure", "symptom_days", "adherence"):
        assert any(r[0] == "N1" for r in after[table]), table


def test_data_without_ratings(study: Path) -> None:
    for table in ("symptom_scores", "symptom_exposure", "symptom_days"):
        assert _rows(study, f"SELECT count(*) FROM {table} WHERE participant_id = 'E2'") == [(0,)]
    ((n, trimp),) = _rows(
        study, "SELECT count(*), sum(trimp_banister) FROM sessions WHERE participant_id = 'E2'"
    )
    assert n == 1 and trimp == pytest.approx(banister_f(30, 150), rel=1e-9)


def test_rating_before_the_first_and_after_the_last_data_day(study: Path) -> None:
    for ts in ("2026-01-03 20:00:00+00", "2026-01-20 20:00:00+00"):
        e = _exposure(study, "E1", "mood", ts)
        assert e["window_days"] == 1.0
        assert e["sessions"] == 0 and e["coverage"] == 0.0
        assert e["days_unobserved"] == pytest.approx(1.0)
        assert e["trimp_banister"] is None and e["mvpa_min"] is None
        assert e["ctl_prev"] is None  # no load model outside the data
    days = _rows(
        study,
        "SELECT day::VARCHAR, rated, day_status, sessions FROM symptom_days "
        "WHERE participant_id = 'E1' AND instrument = 'mood' ORDER BY day",
    )
    # From the first rating (3 Jan) to the last (20 Jan), every day once.
    assert [d[0] for d in days] == [f"2026-01-{d:02d}" for d in range(3, 21)]
    status = {d[0]: d[2:] for d in days}
    assert status["2026-01-05"] == ("unobserved", None)
    assert status["2026-01-06"] == ("observed", 1)
    assert status["2026-01-07"] == ("observed", 0)  # activity files only: a rest day
    assert status["2026-01-11"] == ("unobserved", None)
    assert [d[0] for d in days if d[1]] == ["2026-01-03", "2026-01-10", "2026-01-20"]


def test_window_edges_end_excluded_start_included(study: Path) -> None:
    # mood at 10:00 on 10 Jan looks at [9 Jan 10:00, 10 Jan 10:00): S3 starts at the window's
    # start (in), S4 at its end (out).
    e = _exposure(study, "E1", "mood", "2026-01-10 10:00:00+00")
    assert _iso(e["window_start"]) == "2026-01-09T10:00:00+00:00"
    assert _iso(e["window_end"]) == "2026-01-10T10:00:00+00:00"
    assert e["sessions"] == 1
    assert e["trimp_banister"] == pytest.approx(_ban("S3"), rel=1e-9)
    assert e["vig_min"] == pytest.approx(20 + TAIL, abs=1e-6)  # 140 bpm: 62 % HRR
    assert e["mod_min"] == pytest.approx(0.0)
    assert e["coverage"] == pytest.approx(1.0)
    # The window ends where S4 begins: none of S4's minutes are in it.
    assert e["mvpa_min"] == pytest.approx(20 + TAIL, abs=1e-6)


def test_phq9_window_reaching_before_the_data(study: Path) -> None:
    e = _exposure(study, "E1", "phq9", "2026-01-12 10:00:00+00")
    assert e["score"] == 9.0 and e["window_days"] == 14.0
    assert _iso(e["window_start"]) == "2025-12-29T10:00:00+00:00"
    assert e["sessions"] == 4
    want = _ban("S1") + _ban("S2") + _ban("S3") + _ban("S4")
    assert e["trimp_banister"] == pytest.approx(want, rel=1e-9)
    assert e["days_observed"] == pytest.approx(5.0)  # 6..10 January
    assert e["days_unobserved"] == pytest.approx(9.0)
    assert e["coverage"] == pytest.approx(5 / 14)
    assert e["ctl_prev"] is None  # 11 January is after the data


# ------------------------------------------------------------- instruments and windows
def test_instrument_defined_later_changes_the_window(copy: Path, tmp_path: Path) -> None:
    before = _exposure(copy, "E1", "fatigue", "2026-01-10 10:00:00+00")
    assert before["window_days"] == 1.0 and before["sessions"] == 1  # undefined: 1 day
    defs = tmp_path / "defs.toml"
    defs.write_text("[instruments.fatigue]\nitems = 1\nmin = 0\nmax = 10\nrecall_days = 3\n")
    out = _run(copy, "symptoms", "instruments", "--load", str(defs))
    assert "recomputed 1 participant" in out
    e = _exposure(copy, "E1", "fatigue", "2026-01-10 10:00:00+00")
    assert e["window_days"] == 3.0
    assert _iso(e["window_start"]) == "2026-01-07T10:00:00+00:00"
    assert e["sessions"] == 2  # S2 and S3
    assert e["trimp_banister"] == pytest.approx(_ban("S2") + _ban("S3"), rel=1e-9)
    # Changing the recall again moves the window again.
    defs.write_text("[instruments.fatigue]\nitems = 1\nmin = 0\nmax = 10\nrecall_days = 7\n")
    _run(copy, "symptoms", "instruments", "--load", str(defs))
    e = _exposure(copy, "E1", "fatigue", "2026-01-10 10:00:00+00")
    assert e["window_days"] == 7.0 and e["sessions"] == 3  # S1 (6 Jan 08:00) too
    # The other instruments keep theirs.
    assert _exposure(copy, "E1", "mood", "2026-01-10 10:00:00+00")["window_days"] == 1.0


def test_exposure_window_days_overrides_every_recall(copy: Path) -> None:
    _run(copy, "recompute", "--set", "exposure_window_days=2", "--set", "exposure_lags=0,1,7")
    rows = _rows(copy, "SELECT DISTINCT window_days FROM symptom_exposure")
    assert rows == [(2.0,)]
    n_ratings = _rows(copy, "SELECT count(*) FROM symptom_scores")[0][0]
    by_lag = _rows(copy, "SELECT lag_days, count(*) FROM symptom_exposure GROUP BY 1 ORDER BY 1")
    assert by_lag == [(0, n_ratings), (1, n_ratings), (7, n_ratings)]
    # phq9 on 12 Jan 10:00: lag 0 [10 Jan, 12 Jan) holds S4; lag 1 [9 Jan, 11 Jan): S3, S4;
    # lag 7 [3 Jan, 5 Jan): no data at all.
    lag0 = _exposure(copy, "E1", "phq9", "2026-01-12 10:00:00+00", 0)
    lag1 = _exposure(copy, "E1", "phq9", "2026-01-12 10:00:00+00", 1)
    lag7 = _exposure(copy, "E1", "phq9", "2026-01-12 10:00:00+00", 7)
    assert _iso(lag1["window_end"]) == "2026-01-11T10:00:00+00:00"
    assert _iso(lag1["window_start"]) == "2026-01-09T10:00:00+00:00"
    assert (lag0["sessions"], lag1["sessions"], lag7["sessions"]) == (1, 2, 0)
    assert lag1["trimp_banister"] == pytest.approx(_ban("S3") + _ban("S4"), rel=1e-9)
    assert lag7["coverage"] == 0.0 and lag7["trimp_banister"] is None
    assert _iso(lag7["window_end"]) == "2026-01-05T10:00:00+00:00"
    # A lag reaches back to the day before its own window end for CTL.
    assert lag1["ctl_prev"] is not None and lag0["ctl_prev"] is None


# ------------------------------------------------------------ sex and anchors unknown
def test_no_sex_no_anchors_gives_null_trimp_not_zero(study: Path) -> None:
    e = _exposure(study, "U1", "mood", "2026-01-09 20:00:00+00")
    assert e["sessions"] == 1 and e["coverage"] == pytest.approx(1.0)
    for k in DOSE_COLUMNS:
        assert e[k] is None, k
    sessions = _rows(
        study,
        "SELECT trimp_banister, trimp_edwards, hr_rest_bpm, hr_max_bpm, hr_max_source "
        "FROM sessions WHERE participant_id = 'U1'",
    )
    assert sessions == [(None, None, None, None, None)] * 2
    daily = _rows(
        study,
        "SELECT day::VARCHAR, sessions, trimp_banister, mod_min FROM daily_load "
        "WHERE participant_id = 'U1' ORDER BY day",
    )
    assert daily == [
        ("2026-01-07", 1, None, None),
        ("2026-01-08", 0, None, None),  # TRIMP cannot be computed for U1 at all
        ("2026-01-09", 1, None, None),
    ]
    # The load models run on TRIMP: with no TRIMP known at all they are not known either.
    series = _rows(
        study,
        "SELECT day::VARCHAR, load, ctl, atl, tsb, acwr_ewma, monotony FROM load_series "
        "WHERE participant_id = 'U1' ORDER BY day",
    )
    assert [s[0] for s in series] == ["2026-01-07", "2026-01-08", "2026-01-09"]
    assert all(v is None for s in series for v in s[1:])
    panel = _rows(
        study,
        "SELECT ctl, ctl_prev, trimp_banister FROM symptom_days WHERE participant_id = 'U1' "
        "AND day = '2026-01-09'",
    )
    assert panel == [(None, None, None)]


def test_no_sex_with_anchors_keeps_what_it_can(study: Path) -> None:
    e = _exposure(study, "U2", "mood", "2026-01-07 20:00:00+00")
    assert e["sessions"] == 1
    assert e["trimp_banister"] is None  # Banister needs the sex
    # Edwards needs only HRmax: 150 bpm is 79 % HRmax, zone 3, for the 1,800 one-second
    # samples of the session (the session's own step function: the last holds 1 s).
    assert e["trimp_edwards"] == pytest.approx(3 * 30.0, rel=1e-9)
    assert e["vig_min"] == pytest.approx(30.0, abs=1e-6)  # 150 bpm: 69 % HRR; one file
    assert e["ctl_prev"] is None


# ------------------------------------------------------------------------------ anchors
def test_anchor_version_setting_only_hr_max(copy: Path, study: Path) -> None:
    _run(copy, "participant", "anchor", "E1", "--valid-from", "2026-01-08", "--hr-max", "200")
    rows = {
        r[0]: r[1:]
        for r in _rows(
            copy,
            "SELECT strftime(start_ts, '%d'), trimp_banister, hr_rest_bpm, hr_max_bpm, "
            "hr_rest_source, hr_max_source, anchor_valid_from::VARCHAR FROM sessions "
            "WHERE participant_id = 'E1'",
        )
    }
    assert rows["06"] == (pytest.approx(_ban("S1")), 60.0, 190.0, "entered", "entered", None)
    for day, name in (("08", "S2"), ("09", "S3"), ("10", "S4")):
        want = _ban(name, hmax=200.0)
        # The resting HR is inherited from the base version: still 'entered', still 60.
        assert rows[day] == (pytest.approx(want, rel=1e-9), 60.0, 200.0, "entered", "entered",
                             "2026-01-08"), day  # fmt: skip
    e = _exposure(copy, "E1", "mood", "2026-01-10 10:00:00+00")
    assert e["trimp_banister"] == pytest.approx(_ban("S3", hmax=200.0), rel=1e-9)
    # Removing the version restores every derived table exactly.
    _run(copy, "participant", "anchor", "E1", "--valid-from", "2026-01-08", "--remove")
    assert _snapshot(copy) == _snapshot(study)


def test_anchor_version_contradicting_an_inherited_value_is_refused(copy: Path) -> None:
    _run(copy, "participant", "anchor", "E1", "--valid-from", "2026-01-08", "--hr-max", "100")
    before = _snapshot(copy)
    # From 9 Jan a resting HR of 120 would sit above the HRmax of 100 inherited from 8 Jan.
    r = CliRunner().invoke(
        main,
        ["--db", str(copy), "participant", "anchor", "E1", "--valid-from", "2026-01-09",
         "--hr-rest", "120"],
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "E1: maximum HR 100 must be above resting HR 120 (from 2026-01-09" in r.output
    assert _rows(copy, "SELECT valid_from::VARCHAR FROM hr_anchors") == [("2026-01-08",)]
    assert _snapshot(copy) == before


def test_anchor_source_estimated_uses_the_resting_estimate(copy: Path) -> None:
    base = _rows(copy, "SELECT hr_rest_bpm, hr_rest_source FROM sessions WHERE "
                       "participant_id = 'D1'")  # fmt: skip
    assert base == [(60.0, "entered")] * 2
    (est,) = _rows(
        copy,
        "SELECT DISTINCT hr_rest_est_bpm FROM hr_estimates WHERE participant_id = 'D1'",
    )
    assert est[0] == pytest.approx(52.0)  # the night-time floor, filled in on 8 Jan too
    _run(copy, "recompute", "--set", "anchor_source=estimated")
    rows = _rows(
        copy,
        "SELECT trimp_banister, hr_rest_bpm, hr_rest_source, hr_max_bpm, hr_max_source "
        "FROM sessions WHERE participant_id = 'D1'",
    )
    x = (150 - 52.0) / (185 - 52.0)
    want = 30 * x * 0.64 * math.exp(1.92 * x)
    for r in rows:
        assert r[0] == pytest.approx(want, rel=1e-9)
        # The entered HRmax stays: the age formula is not an estimate from the data.
        assert r[1:] == (pytest.approx(52.0), "estimated", 185.0, "entered")
    days = _rows(
        copy,
        "SELECT DISTINCT hr_rest_source, hr_max_source FROM daily_load WHERE participant_id = 'D1'",
    )
    assert days == [("estimated", "entered")]


def test_anchor_source_estimated_takes_an_observed_peak_above_the_age_estimate(
    copy: Path,
) -> None:
    # Born 1940: Tanaka gives 208 - 0.7 x 86 = 147.8 bpm in 2026, below E1's 150 bpm sessions.
    _run(copy, "participant", "update", "E1", "--birth-year", "1940")
    q = "SELECT DISTINCT hr_max_bpm, hr_max_source FROM daily_load WHERE participant_id = 'E1'"
    assert _rows(copy, q) == [(190.0, "entered")]
    _run(copy, "recompute", "--set", "anchor_source=estimated")
    assert _rows(copy, q) == [(pytest.approx(150.0), "observed_peak")]


def test_resting_estimate_at_or_above_hr_max_is_not_used(study: Path, copy: Path) -> None:
    (est,) = _rows(
        study,
        "SELECT DISTINCT hr_rest_est_bpm FROM hr_estimates WHERE participant_id = 'H1'",
    )
    assert est[0] == pytest.approx(110.0)
    for db in (study, copy):
        if db == copy:
            _run(copy, "recompute", "--set", "anchor_source=estimated")
        rows = _rows(
            db,
            "SELECT hr_rest_bpm, hr_rest_source, hr_max_bpm, hr_max_source, trimp_banister, "
            "trimp_edwards FROM sessions WHERE participant_id = 'H1'",
        )
        assert len(rows) == 1
        rest, rest_src, mx, mx_src, ban, edw = rows[0]
        assert (rest, rest_src, mx, mx_src, ban) == (None, None, 100.0, "entered", None)
        assert edw == pytest.approx(5 * 30.0, rel=1e-9)  # 150 bpm > 90 % of 100: zone 5
        daily = _rows(
            db, "SELECT DISTINCT hr_rest_bpm, hr_rest_source FROM daily_load "
                "WHERE participant_id = 'H1'"
        )  # fmt: skip
        assert daily == [(None, None)]


# -------------------------------------------------------------------- unobserved days
def _series(db: Path, pid: str) -> dict[str, tuple[Any, ...]]:
    return {
        r[0]: r[1:]
        for r in _rows(
            db,
            "SELECT day::VARCHAR, day_status, load, ctl, atl, imputed, unobserved_treatment, "
            "acwr_rolling FROM load_series WHERE participant_id = ? ORDER BY day",
            pid,
        )
    }


def test_all_day_data_with_a_missing_day_under_each_treatment(copy: Path) -> None:
    zero = _series(copy, "D1")
    assert list(zero) == [f"2026-01-{d:02d}" for d in range(5, 11)]
    assert zero["2026-01-08"][:2] == ("unobserved", 0.0)
    assert zero["2026-01-08"][4:6] == (True, "zero")
    # By hand: the runs on 7 and 10 January, 0 elsewhere (the 8th a rest day under 'zero').
    x = (150 - 60) / (185 - 60)
    run = 30 * x * 0.64 * math.exp(1.92 * x)
    load = np.array([0, 0, run, 0, 0, run], float)
    pmc = dload.pmc(load)
    assert [zero[d][2] for d in sorted(zero)] == pytest.approx(pmc.ctl.tolist(), rel=1e-9)
    e_zero = _exposure(copy, "D1", "mood", "2026-01-09 08:00:00+00")
    assert e_zero["days_unobserved"] == pytest.approx(16 / 24)
    assert e_zero["days_observed"] == pytest.approx(8 / 24)
    assert e_zero["coverage"] == pytest.approx(8 / 24)
    assert e_zero["sessions"] == 0 and e_zero["trimp_banister"] == 0.0
    assert e_zero["ctl_prev"] == pytest.approx(pmc.ctl[3], rel=1e-9)

    _run(copy, "recompute", "--set", "unobserved_load=decay")
    decay = _series(copy, "D1")
    assert decay["2026-01-08"][1:] == (None, pytest.approx(pmc.ctl[3]), pytest.approx(pmc.atl[3]),
                                       True, "decay", None)  # fmt: skip
    assert decay["2026-01-10"][2] == pytest.approx(pmc.ctl[5], rel=1e-9)
    assert _exposure(copy, "D1", "mood", "2026-01-09 08:00:00+00")["ctl_prev"] == pytest.approx(
        pmc.ctl[3], rel=1e-9
    )

    _run(copy, "recompute", "--set", "unobserved_load=exclude")
    excl = _series(copy, "D1")
    assert excl["2026-01-08"][1:] == (None, None, None, True, "exclude", None)
    # The models step over the missing day: 10 Jan is the 5th observed day.
    seen = dload.pmc(np.array([0, 0, run, 0, run], float))
    assert excl["2026-01-10"][2] == pytest.approx(seen.ctl[4], rel=1e-9)
    e = _exposure(copy, "D1", "mood", "2026-01-09 08:00:00+00")
    assert e["ctl_prev"] is None and e["coverage"] == pytest.approx(8 / 24)
    assert e["trimp_banister"] == 0.0


def test_accelerometer_only_with_a_missing_day_under_each_treatment(copy: Path) -> None:
    zero = _series(copy, "A1")
    assert list(zero) == [f"2026-01-{d:02d}" for d in range(5, 10)]
    assert [v[0] for v in zero.values()] == [
        "observed", "observed", "observed", "unobserved", "observed"
    ]  # fmt: skip
    assert all(v[1] == 0.0 and v[2] == 0.0 for v in zero.values())  # no HR: no TRIMP, no load
    e = _exposure(copy, "A1", "mood", "2026-01-09 12:00:00+00")
    assert e["coverage"] == pytest.approx(0.5)  # noon to midnight of the 8th missing
    assert e["mod_min"] == pytest.approx(30.0) and e["vig_min"] == pytest.approx(0.0)
    assert e["trimp_allday"] is None and e["sessions"] == 0
    for treatment in ("decay", "exclude"):
        _run(copy, "recompute", "--set", f"unobserved_load={treatment}")
        s = _series(copy, "A1")
        assert s["2026-01-08"][1] is None and s["2026-01-08"][4:6] == (True, treatment)
        assert s["2026-01-09"][1] == 0.0
        ctl = s["2026-01-08"][2]
        assert (ctl is None) if treatment == "exclude" else (ctl == 0.0)
        e = _exposure(copy, "A1", "mood", "2026-01-09 12:00:00+00")
        assert e["mod_min"] == pytest.approx(30.0) and e["coverage"] == pytest.approx(0.5)
    days = _rows(
        copy,
        "SELECT day::VARCHAR, day_status, sessions, mvpa_min FROM symptom_days "
        "WHERE participant_id = 'A1' ORDER BY day",
    )
    assert days[3] == ("2026-01-08", "unobserved", 0, 0.0)
    assert days[4] == ("2026-01-09", "observed", 0, pytest.approx(30.0))


# ------------------------------------------------------------------ arms and prescriptions
def _adherence_ids(db: Path) -> list[str]:
    return [r[0] for r in _rows(db, "SELECT DISTINCT participant_id FROM adherence ORDER BY 1")]


def test_only_participants_with_a_prescribed_arm_and_a_start_date_have_adherence(
    study: Path,
) -> None:
    # E2's arm has no prescription; D1 and the others have no arm or no start date.
    assert _adherence_ids(study) == ["E1", "N1"]
    assert _rows(study, "SELECT participant_id FROM adherence_summary ORDER BY 1") == [
        ("E1",),
        ("N1",),
    ]


def test_prescription_weeks_past_the_data(study: Path) -> None:
    rows = _rows(
        study,
        "SELECT week, days_observed, sessions_done, sessions_any, adherence_pct "
        "FROM adherence WHERE participant_id = 'E1' ORDER BY week",
    )
    # Week 1 (5-11 Jan): S1, S2, S4 qualify (30 min at 69 % HRR); S3 is 20 min.
    assert rows[0] == (1, 5, 3, 4, 100.0)
    assert rows[1:] == [(w, 0, 0, 0, 0.0) for w in (2, 3, 4)]
    (summary,) = _rows(
        study,
        "SELECT weeks_with_data, weeks_met, sessions_done, adherence_pct FROM "
        "adherence_summary WHERE participant_id = 'E1'",
    )
    assert summary == (1, 1, 3, 25.0)


def test_arm_changed_or_cleared_removes_adherence(copy: Path) -> None:
    out = _run(copy, "participant", "update", "E1", "--arm", "stretching")
    assert "recomputed" in out
    assert _adherence_ids(copy) == ["N1"]
    assert _rows(copy, "SELECT count(*) FROM adherence_summary WHERE participant_id = 'E1'") == [
        (0,)
    ]
    # The sessions no longer qualify for anything.
    assert _rows(
        copy, "SELECT DISTINCT qualifies FROM sessions WHERE participant_id = 'E1' AND counted"
    ) == [(False,)]
    _run(copy, "participant", "update", "E1", "--arm", "aerobic")
    assert _adherence_ids(copy) == ["E1", "N1"]
    _run(copy, "participant", "update", "E1", "--clear", "start-date")
    assert _adherence_ids(copy) == ["N1"]
    _run(copy, "participant", "update", "N1", "--clear", "arm")
    assert _adherence_ids(copy) == []


def test_prescription_removed_removes_adherence(copy: Path, tmp_path: Path) -> None:
    out = _run(copy, "prescription", "remove", "aerobic")
    assert "recomputed 2 participant" in out
    assert _adherence_ids(copy) == []
    assert _rows(copy, "SELECT count(*) FROM adherence_summary") == [(0,)]
    # The arm of E2 gets a prescription: E2's adherence appears.
    arms = tmp_path / "stretching.toml"
    arms.write_text(
        "[arms.stretching]\nweeks = 1\nsessions_per_week = 2\nmin_session_min = 25\n"
        'qualify = "duration"\n'
    )
    _run(copy, "prescription", "set", str(arms))
    rows = _rows(
        copy,
        "SELECT participant_id, week, sessions_done, adherence_pct, trimp_prescribed_source "
        "FROM adherence",
    )
    assert rows == [("E2", 1, 1, 50.0, None)]


# ----------------------------------------------------------- determinism, idempotency
def test_recompute_twice_gives_identical_tables(copy: Path, study: Path) -> None:
    _run(copy, "recompute")
    first = _snapshot(copy)
    _run(copy, "recompute")
    assert _snapshot(copy) == first
    # ... and the same as the tables written step by step while the study was built.
    assert first == _snapshot(study)
    assert all(first[t] for t in DERIVED_TABLES if t != "vendor_daily")


def test_importing_the_same_ratings_again_changes_nothing(copy: Path, tmp_path: Path) -> None:
    before = _snapshot(copy)
    same = tmp_path / "again.csv"
    same.write_text("\n".join(RATINGS) + "\n")  # the same bytes as the study's file
    out = _run(copy, "symptoms", "import", str(same))
    assert "already imported" in out
    assert _snapshot(copy) == before
    # Other bytes, the same values (reordered, with an offset): nothing new is stored.
    other = tmp_path / "reordered.csv"
    body = RATINGS[1:][::-1]
    other.write_text(
        RATINGS[0] + "\n" + "\n".join(body).replace("2026-01-03 20:00", "2026-01-03T20:00Z")
    )
    out = _run(copy, "symptoms", "import", str(other))
    assert "0 value(s) stored" in out and "recomputed" not in out
    assert _snapshot(copy) == before


def test_a_file_with_a_rejected_line_read_again_changes_nothing(copy: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "participant_id,timestamp,instrument,item,value\n"
        "E1,2026-01-11 20:00,mood,1,4\n"
        "NOBODY,2026-01-11 20:00,mood,1,4\n"
    )
    r = CliRunner().invoke(main, ["--db", str(copy), "symptoms", "import", str(bad)])
    assert r.exit_code == 3, r.output
    before = _snapshot(copy)
    assert ("E1", "mood") in {(row[0], row[1]) for row in before["symptom_exposure"]}
    r = CliRunner().invoke(main, ["--db", str(copy), "symptoms", "import", str(bad)])
    assert r.exit_code == 3, r.output
    assert "recomputed" not in r.output
    assert _snapshot(copy) == before


# ------------------------------------------------------------------------------- NaN
def _nan_counts(db: Path) -> dict[str, int]:
    """Non-finite values in every DOUBLE column of every derived table."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for t in DERIVED_TABLES:
            cols = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = ? AND data_type = 'DOUBLE'",
                    [t],
                ).fetchall()
            ]
            assert cols, t
            for c in cols:
                got = con.execute(
                    f"SELECT count(*) FROM {t} WHERE isnan({c}) OR isinf({c})"
                ).fetchone()
                out[f"{t}.{c}"] = int(got[0]) if got else -1
        return out
    finally:
        con.close()


def test_no_nan_in_the_edge_study(study: Path, copy: Path) -> None:
    counts = _nan_counts(study)
    assert counts and not any(counts.values()), {k: v for k, v in counts.items() if v}
    _run(copy, "recompute", "--set", "unobserved_load=exclude", "--set", "exposure_lags=0,3",
         "--set", "anchor_source=estimated")  # fmt: skip
    counts = _nan_counts(copy)
    assert not any(counts.values()), {k: v for k, v in counts.items() if v}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("demo")
    db = tmp / "demo.duckdb"
    _run(db, "demo", "--dir", str(tmp / "files"), "--participants", "3", "--weeks", "2")
    yield db


def test_no_nan_in_the_demo_study(demo_db: Path) -> None:
    for t in ("symptom_exposure", "symptom_days", "adherence", "load_series"):
        assert _rows(demo_db, f"SELECT count(*) FROM {t}")[0][0] > 0, t
    counts = _nan_counts(demo_db)
    assert not any(counts.values()), {k: v for k, v in counts.items() if v}


# --------------------------------------------------------------------------- invariants
@pytest.fixture(scope="module")
def probe_con(
    study: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[duckdb.DuckDBPyConnection]:
    db = tmp_path_factory.mktemp("probe") / "probe.duckdb"
    db.write_bytes(study.read_bytes())
    con = connect(db)
    yield con
    con.close()


_E1_STARTS = [
    int(np.datetime64(f"{s[0]}-{s[1]:02d}-{s[2]:02d}T{s[3]:02d}:{s[4]:02d}", "us").astype(np.int64))
    for s, _, _ in E1_SESSIONS.values()
]


@settings(max_examples=30, deadline=None)
@given(
    at=st.integers(0, 24 * 60 - 1),
    day=st.integers(1, 25),
    window=st.sampled_from([0.25, 1.0, 2.5, 7.0, 14.0]),
)
def test_exposure_shares_add_up_and_sessions_match_the_files(
    probe_con: duckdb.DuckDBPyConnection, at: int, day: int, window: float
) -> None:
    """For any rating instant and window: the observed, partial and unobserved shares add up
    to the window's length in days, coverage is the observed share, the sessions counted are
    E1's files starting in [start, end), and a window without data has NULL dose."""
    from actidose.config import DoseConfig
    from actidose.storage.derive import compute_participant

    ts = int(np.datetime64(f"2026-01-{day:02d}T00:00", "us").astype(np.int64)) + at * 60_000_000
    con = probe_con
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO symptoms VALUES ('E1', make_timestamptz(?), 'probe', 1, 1, 0, 1, 1)",
            [ts],
        )
        tables = compute_participant(con, "E1", DoseConfig(exposure_window_days=window))
    finally:
        con.execute("ROLLBACK")
    (row,) = [r for r in tables["symptom_exposure"].to_pylist() if r["instrument"] == "probe"]
    total = row["days_observed"] + row["days_partial"] + row["days_unobserved"]
    assert total == pytest.approx(window, abs=1e-9)
    assert row["coverage"] == pytest.approx(row["days_observed"] / window, abs=1e-9)
    start = ts - round(window * 86_400e6)  # GMT all month: a local day is 24 h
    assert row["sessions"] == sum(start <= s < ts for s in _E1_STARTS)
    if row["coverage"] == 0.0:
        assert row["sessions"] == 0
        for k in ("trimp_banister", "mvpa_min", "who_equiv_min"):
            assert math.isnan(row[k]), k
