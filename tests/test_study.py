"""The study layer end to end, through the CLI: FIT files on known days with known TRIMP,
PHQ-9 and daily ratings on known dates, a prescription, anchors entered and estimated.

Every expected value below is worked out by hand from the files the test writes (Banister TRIMP
of constant HR: ``banister_f``), never read back from the code under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner

import actidose
from actidose.cli import main
from actidose.dose import load as dload
from actidose.ingest.fit_writer import write_monitoring_fit

from .conftest import activity_file, banister_f, utc

# P001 (Europe/London; BST from 2026-03-29 01:00 UTC): activity files only.
SESSIONS_P001 = {  # name: (UTC start, minutes, bpm)
    "A": ((2026, 3, 17, 7, 0), 30, 150),
    "B": ((2026, 3, 20, 8, 0), 30, 150),
    "C": ((2026, 3, 23, 9, 30), 20, 140),  # 30 min before the PHQ-9 window opens
    "D": ((2026, 3, 23, 10, 30), 30, 150),
    "E": ((2026, 3, 30, 17, 0), 45, 160),
    "F": ((2026, 4, 5, 8, 0), 30, 130),
    "G": ((2026, 4, 6, 9, 30), 20, 150),  # after the rating
}
PRESCRIPTION = """
[arms.aerobic]
weeks = 8
sessions_per_week = 3
min_session_min = 30
intensity = { scheme = "hrr", low = 0.60, high = 0.80 }
"""
PHQ_ITEMS = [1, 2, 1, 0, 1, 2, 0, 1, 1]  # total 9: 'mild'


def _run(db: Path, *args: str) -> str:
    r = CliRunner().invoke(main, ["--db", str(db), *args])
    assert r.exit_code == 0, r.output
    return r.output


def _ban(name: str, rest: float = 60.0) -> float:
    _, minutes, bpm = SESSIONS_P001[name]
    return banister_f(minutes, bpm, rest=rest)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("study")
    db = tmp / "study.duckdb"
    _run(
        db, "participant", "add", "P001", "--sex", "f", "--birth-year", "1990",
        "--timezone", "Europe/London", "--arm", "aerobic", "--hr-rest", "60",
        "--hr-max", "190", "--start-date", "2026-03-16",
    )  # fmt: skip
    files = []
    for name, (start, minutes, bpm) in SESSIONS_P001.items():
        offset = 3600 if start[:3] >= (2026, 3, 29) else 0
        files.append(
            activity_file(
                tmp / f"{name}.fit",
                utc(*start),
                np.full(minutes * 60, float(bpm)),
                utc_offset_s=offset,
            )
        )
    _run(db, "import", "-P", "P001", *map(str, files))

    # P002 (America/New_York): all-day monitoring with a day missing (2026-03-04), one workout.
    _run(
        db, "participant", "add", "P002", "--sex", "f", "--birth-year", "1990",
        "--timezone", "America/New_York", "--arm", "aerobic", "--hr-rest", "60",
        "--hr-max", "190", "--start-date", "2026-03-02",
    )  # fmt: skip
    mon = []
    for day, hours in (
        ("2026-03-02", 24),
        ("2026-03-03", 22),
        ("2026-03-05", 24),
        ("2026-03-06", 24),
    ):
        local0 = np.datetime64(f"{day}T00:00", "s")
        ts = local0 + np.timedelta64(5, "h") + np.arange(0, hours * 3600, 60).astype("m8[s]")
        path = tmp / f"mon-{day}.fit"
        write_monitoring_fit(path, ts.astype("datetime64[us]"), np.full(ts.size, 62.0),
                             utc_offset_s=-5 * 3600)  # fmt: skip
        mon.append(str(path))
    work = activity_file(tmp / "p2-run.fit", utc(2026, 3, 5, 17, 0), np.full(20 * 60, 150.0),
                         utc_offset_s=-5 * 3600)  # fmt: skip
    _run(db, "import", "-P", "P002", *mon, str(work))

    lines = ["participant_id,timestamp,instrument,item,value"]
    for ts in ("2026-04-06 10:00", "2026-03-23 10:00"):
        lines += [f"P001,{ts},phq9,{i + 1},{v}" for i, v in enumerate(PHQ_ITEMS)]
    for ts, v in (("2026-03-20 20:00", 6), ("2026-03-29 20:00", 4), ("2026-03-30 20:00", 7)):
        lines.append(f"P001,{ts},mood,1,{v}")
    for d in (3, 4, 5, 6):
        lines.append(f"P002,2026-03-0{d} 20:00,mood,1,{d}")
    (tmp / "ratings.csv").write_text("\n".join(lines) + "\n")
    _run(db, "symptoms", "import", str(tmp / "ratings.csv"))
    (tmp / "arms.toml").write_text(PRESCRIPTION)
    _run(db, "prescription", "set", str(tmp / "arms.toml"))
    return db


def _rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _exposure(db: Path, pid: str, instrument: str, ts: str) -> dict[str, object]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(
            "SELECT * FROM symptom_exposure WHERE participant_id = ? AND instrument = ? "
            "AND ts = ?::TIMESTAMPTZ AND lag_days = 0",
            [pid, instrument, ts],
        )
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        con.close()
    assert len(rows) == 1, rows
    return dict(zip(names, rows[0], strict=True))


def test_phq9_window_crossing_dst_sums_the_sessions_inside(study: Path) -> None:
    # 10:00 BST on 6 April = 09:00 UTC; 14 local days earlier is 10:00 GMT on 23 March =
    # 10:00 UTC: the window is 335 h long, and session C (09:30 UTC) lies outside it (a window
    # of 14 x 24 h would have started at 09:00 UTC and taken it in).
    e = _exposure(study, "P001", "phq9", "2026-04-06 09:00:00+00")
    assert e["window_start"].isoformat() == "2026-03-23T10:00:00+00:00"  # type: ignore[attr-defined]
    assert e["window_end"].isoformat() == "2026-04-06T09:00:00+00:00"  # type: ignore[attr-defined]
    assert e["window_days"] == 14.0 and e["score"] == 9.0
    assert e["sessions"] == 3
    assert e["trimp_banister"] == pytest.approx(_ban("D") + _ban("E") + _ban("F"), rel=1e-9)
    # 150 and 160 bpm are vigorous (>= 60 % HRR), 130 bpm moderate (40-60 %). Minutes come
    # from the participant's one merged HR series, where a file's last sample holds until the
    # next sample for at most 60 s (the reference step function): 59 s more per session.
    tail = 59 / 60
    assert e["vig_min"] == pytest.approx(30 + 45 + 2 * tail, abs=1e-6)
    assert e["mod_min"] == pytest.approx(30 + tail, abs=1e-6)
    assert e["mvpa_min"] == pytest.approx(105 + 3 * tail, abs=1e-6)
    assert e["who_equiv_min"] == pytest.approx(30 + tail + 2 * (75 + 2 * tail), abs=1e-6)
    # Activity files only: every day from the first to the last file is observed.
    assert e["coverage"] == pytest.approx(1.0)
    assert e["days_observed"] == pytest.approx(14 / 24 + 13 + 10 / 24)
    # CTL/ATL/TSB of the day before the rating (5 April), from the daily loads by hand.
    days = np.arange(np.datetime64("2026-03-17"), np.datetime64("2026-04-06"))
    load = np.zeros(days.size)
    for name, (start, _, _) in SESSIONS_P001.items():
        d = np.datetime64(f"{start[0]}-{start[1]:02d}-{start[2]:02d}")
        if d < days[-1] + 1:
            load[int((d - days[0]).astype(int))] += _ban(name)
    pmc = dload.pmc(load)
    assert e["ctl_prev"] == pytest.approx(pmc.ctl[-1], rel=1e-9)
    assert e["atl_prev"] == pytest.approx(pmc.atl[-1], rel=1e-9)
    assert e["tsb_prev"] == pytest.approx(pmc.tsb[-1], rel=1e-9)


def test_phq9_window_with_unobserved_days(study: Path) -> None:
    # 10:00 GMT on 23 March: the window opens 9 March 10:00, a week before the first file
    # (17 March). Days before the data are unobserved, not rest days.
    e = _exposure(study, "P001", "phq9", "2026-03-23 10:00:00+00")
    assert e["sessions"] == 3  # A, B and C (09:30, before the rating)
    assert e["trimp_banister"] == pytest.approx(2 * _ban("A") + _ban("C"), rel=1e-9)
    assert e["vig_min"] == pytest.approx(80 + 3 * 59 / 60, abs=1e-6)
    assert e["mod_min"] == pytest.approx(0)
    observed = 6 + 10 / 24  # 17..22 March, and 23 March until 10:00
    assert e["days_observed"] == pytest.approx(observed)
    assert e["days_unobserved"] == pytest.approx(14 - observed)
    assert e["coverage"] == pytest.approx(observed / 14)
    assert e["ctl_prev"] is not None


def test_daily_rating_over_the_day_that_lost_an_hour(study: Path) -> None:
    # mood at 20:00 BST on 29 March (19:00 UTC): the preceding day starts 20:00 GMT on the 28th,
    # a 23-hour window; E (17:00 UTC on the 30th) belongs to the next rating, not this one.
    e = _exposure(study, "P001", "mood", "2026-03-29 19:00:00+00")
    assert e["window_start"].isoformat() == "2026-03-28T20:00:00+00:00"  # type: ignore[attr-defined]
    assert e["window_days"] == 1.0 and e["sessions"] == 0 and e["trimp_banister"] == 0.0
    assert e["days_observed"] == pytest.approx(4 / 24 + 19 / 23)
    e = _exposure(study, "P001", "mood", "2026-03-30 19:00:00+00")
    assert e["sessions"] == 1
    assert e["trimp_banister"] == pytest.approx(_ban("E"), rel=1e-9)


def test_daily_rating_after_a_day_without_data(study: Path) -> None:
    # P002 wore nothing on 4 March (New York, EST). The mood rating at 20:00 on 5 March looks
    # at [4 March 20:00, 5 March 20:00): 4 h unobserved, 20 h observed; the run at noon counts.
    e = _exposure(study, "P002", "mood", "2026-03-06 01:00:00+00")
    assert e["days_unobserved"] == pytest.approx(4 / 24)
    assert e["days_observed"] == pytest.approx(20 / 24)
    assert e["coverage"] == pytest.approx(20 / 24)
    assert e["sessions"] == 1
    assert e["trimp_banister"] == pytest.approx(banister_f(20, 150), rel=1e-6)
    # The rating on the 4th: 4 h of the 3rd were observed (data end 22:00), 20 h of the 4th not.
    e = _exposure(study, "P002", "mood", "2026-03-05 01:00:00+00")
    assert e["days_unobserved"] == pytest.approx(20 / 24)
    assert e["coverage"] == pytest.approx(4 / 24)
    assert e["sessions"] == 0 and e["mvpa_min"] == pytest.approx(0.0)


def test_symptom_days_panel_has_every_day_marked(study: Path) -> None:
    rows = _rows(
        study,
        "SELECT day::VARCHAR, rated, score, day_status, sessions FROM symptom_days "
        "WHERE participant_id = 'P002' AND instrument = 'mood' ORDER BY day",
    )
    assert [r[0] for r in rows] == [f"2026-03-0{d}" for d in range(2, 7)]
    by_day = {r[0]: r[1:] for r in rows}
    assert by_day["2026-03-02"][:2] == (False, None)  # data, no rating
    assert by_day["2026-03-04"] == (True, 4.0, "unobserved", 0)  # rating, no data
    assert by_day["2026-03-05"] == (True, 5.0, "observed", 1)


def test_scores_and_bands(study: Path) -> None:
    rows = _rows(
        study,
        "SELECT score, band, n_items, complete FROM symptom_scores WHERE instrument = 'phq9'",
    )
    assert rows == [(9.0, "mild", 9, True)] * 2


def test_adherence_two_of_three_in_week_one(study: Path) -> None:
    rows = _rows(
        study,
        "SELECT week, week_start::VARCHAR, sessions_done, sessions_any, adherence_pct, "
        "trimp_banister, trimp_prescribed, band_min FROM adherence "
        "WHERE participant_id = 'P001' ORDER BY week",
    )
    assert len(rows) == 8
    week1, week2, week3, week4 = rows[:4]
    assert week1[:4] == (1, "2026-03-16", 2, 2)
    assert round(week1[4], 1) == 66.7  # type: ignore[call-overload]
    assert week1[5] == pytest.approx(2 * _ban("A"), rel=1e-9)
    x = 0.7  # midpoint of 60-80 % HRR, 3 x 30 min, women's Banister coefficients
    assert week1[6] == pytest.approx(3 * 30 * x * 0.86 * math.exp(1.67 * x), rel=1e-12)
    assert week1[7] == pytest.approx(60.0, abs=1e-6)  # 150 bpm is 69 % HRR: in the band
    assert week2[2:4] == (1, 2)  # C is 20 min: too short
    assert week3[2:4] == (1, 2)  # F at 130 bpm (54 % HRR) is below the band
    assert week4[2:4] == (0, 1)
    assert all(r[2] == 0 and r[4] == 0.0 for r in rows[4:])
    (summary,) = _rows(
        study,
        "SELECT weeks, sessions_prescribed, sessions_done, adherence_pct FROM adherence_summary "
        "WHERE participant_id = 'P001'",
    )
    assert summary[:3] == (8, 24.0, 4)
    assert summary[3] == pytest.approx(100 * 4 / 24)


def test_anchor_version_applies_from_its_date(study: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(study.read_bytes())
    _run(db, "participant", "anchor", "P001", "--valid-from", "2026-03-30", "--hr-rest", "50")
    rows = dict(
        _rows(
            db,
            "SELECT strftime(start_ts, '%m-%d'), (trimp_banister, hr_rest_bpm, "
            "anchor_valid_from::VARCHAR, hr_rest_source) FROM sessions "
            "WHERE participant_id = 'P001'",
        )
    )
    e = rows["03-30"]
    assert e[0] == pytest.approx(_ban("E", rest=50.0), rel=1e-9)
    assert e[1:] == (50.0, "2026-03-30", "entered")
    d = rows["03-17"]
    assert d[1] == 60.0 and d[2] is None
    # Exposure follows: the PHQ-9 window now holds E at the new anchor.
    ex = _exposure(db, "P001", "phq9", "2026-04-06 09:00:00+00")
    want = _ban("D") + _ban("E", rest=50.0) + banister_f(30, 130, rest=50.0)
    assert ex["trimp_banister"] == pytest.approx(want, rel=1e-9)


def test_unobserved_day_treatment_is_an_option_recorded_with_the_result(
    study: Path, tmp_path: Path
) -> None:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(study.read_bytes())
    q = (
        "SELECT day::VARCHAR, day_status, load, ctl, imputed, unobserved_treatment, params_id "
        "FROM load_series WHERE participant_id = 'P002' ORDER BY day"
    )
    zero = _rows(db, q)
    assert zero[2][:2] == ("2026-03-04", "unobserved")
    assert zero[2][2] == 0.0 and zero[2][4] is True and zero[2][5] == "zero"
    _run(db, "recompute", "--set", "unobserved_load=exclude")
    excl = _rows(db, q)
    assert excl[2][2:6] == (None, None, True, "exclude")
    assert excl[3][3] is not None and excl[3][6] != zero[3][6]
    (params,) = _rows(db, "SELECT params FROM parameter_sets WHERE params_id = ?", excl[3][6])
    assert '"unobserved_load": "exclude"' in str(params[0])


def test_python_api_returns_every_table(study: Path) -> None:
    with actidose.open(study) as s:
        assert s.participants()["participant_id"].to_list() == ["P001", "P002"]
        assert s.sessions("P001").height == len(SESSIONS_P001)
        assert s.daily_load("P002")["day_status"].to_list().count("unobserved") == 1
        assert s.load_series(["P001", "P002"]).height > 0
        assert s.weekly_dose().height > 0
        assert s.symptoms(instrument="phq9").height == 18
        assert s.symptom_scores("P001", instrument="mood").height == 3
        phq = s.symptom_exposure(instrument="phq9")
        assert phq.height == 2 and set(phq["lag_days"]) == {0}
        assert s.symptom_days("P002").height == 5
        assert s.adherence("P001").height == 8
        assert s.adherence_summary()["participant_id"].to_list() == ["P001", "P002"]
        assert s.con.execute("SELECT count(*) FROM symptom_exposure").fetchone() == (9,)


def test_lags_add_a_row_per_rating_and_lag(study: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(study.read_bytes())
    _run(db, "recompute", "--set", "exposure_lags=0,7")
    rows = _rows(
        db,
        "SELECT lag_days, window_start::VARCHAR, window_end::VARCHAR, sessions "
        "FROM symptom_exposure WHERE instrument = 'phq9' AND ts = '2026-04-06 09:00:00+00' "
        "ORDER BY lag_days",
    )
    assert [r[0] for r in rows] == [0, 7]
    # Lag 7: the 14 days ending 7 local days before the rating (30 March 10:00 BST).
    assert rows[1][2].startswith("2026-03-30 09:00:00")
    assert rows[1][1].startswith("2026-03-16 10:00:00")
    assert rows[1][3] == 4  # A, B, C, D


def test_resting_hr_estimated_from_all_day_data_fills_in(tmp_path: Path) -> None:
    """No resting HR entered: the all-day series (floor 52 bpm at night) gives the estimate,
    within 2 bpm; Banister TRIMP uses it and says so; ``anchor_source=entered_only`` does not."""
    db = tmp_path / "s.duckdb"
    _run(
        db, "participant", "add", "P003", "--sex", "m", "--birth-year", "1985",
        "--timezone", "Europe/Berlin", "--hr-max", "185",
    )  # fmt: skip
    rng = np.random.default_rng(7)
    files = []
    for k in range(4):
        day0 = np.datetime64("2026-05-11T22:00", "s") + np.timedelta64(k, "D")  # local midnight
        t = np.arange(0, 86_400, 60)
        hour = t / 3600
        bpm = np.where(hour < 6, 52.0, 75.0 + 15 * np.sin(hour / 24 * 2 * np.pi))
        bpm = np.round(bpm + rng.normal(0, 1, t.size))
        path = tmp_path / f"m{k}.fit"
        ts = (day0 + t.astype("m8[s]")).astype("datetime64[us]")
        write_monitoring_fit(path, ts, bpm, utc_offset_s=7200)
        files.append(str(path))
    files.append(
        str(activity_file(tmp_path / "run.fit", utc(2026, 5, 13, 16, 0), np.full(1800, 150.0)))
    )
    _run(db, "import", "-P", "P003", *files)
    est = _rows(
        db,
        "SELECT hr_rest_est_bpm FROM hr_estimates WHERE participant_id = 'P003' "
        "AND hr_rest_est_bpm IS NOT NULL",
    )
    assert len(est) >= 4
    assert all(abs(r[0] - 52.0) <= 2.0 for r in est), est
    (sess,) = _rows(db, "SELECT trimp_banister, hr_rest_bpm, hr_rest_source FROM sessions")
    assert sess[2] == "estimated" and abs(sess[1] - 52.0) <= 2.0
    x = (150 - sess[1]) / (185 - sess[1])
    assert sess[0] == pytest.approx(30 * x * 0.64 * math.exp(1.92 * x), rel=1e-9)
    _run(db, "recompute", "--set", "anchor_source=entered_only")
    (sess,) = _rows(db, "SELECT trimp_banister, hr_rest_bpm, hr_rest_source FROM sessions")
    assert sess == (None, None, None)


def test_a_day_without_samples_is_unobserved_even_if_the_last_sample_holds_past_midnight(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.duckdb"
    _run(db, "participant", "add", "P009", "--sex", "f", "--birth-year", "1990",
         "--timezone", "UTC", "--hr-rest", "60", "--hr-max", "190")  # fmt: skip
    files = []
    for day in ("2026-06-01", "2026-06-03"):
        ts = np.datetime64(f"{day}T00:00", "s") + np.arange(0, 86_400, 60).astype("m8[s]")
        path = tmp_path / f"{day}.fit"
        write_monitoring_fit(path, ts.astype("datetime64[us]"), np.full(ts.size, 62.0))
        files.append(str(path))
    _run(db, "import", "-P", "P009", *files)
    rows = _rows(db, "SELECT day::VARCHAR, day_status, coverage_min FROM daily_load ORDER BY day")
    assert [r[:2] for r in rows] == [
        ("2026-06-01", "observed"),
        ("2026-06-02", "unobserved"),  # 23:59's sample holds into it: 4 min, but no data
        ("2026-06-03", "observed"),
    ]
