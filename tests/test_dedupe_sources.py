"""The same exercise from two places counts once; each second once, by source priority."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from actidose.pipeline import import_paths
from actidose.storage.derive import recompute

from .conftest import activity_file, add_p, banister_f, utc


def test_same_run_twice_counts_once(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con)
    hr = np.full(1800, 150.0)
    activity_file(tmp_path / "watch.fit", utc(2024, 5, 6, 9), hr, serial=1)
    activity_file(tmp_path / "copy.fit", utc(2024, 5, 6, 9), hr, serial=2)  # other bytes
    s = import_paths(con, [tmp_path], "P001")
    assert s.count("imported") == 2
    rows = con.execute(
        "SELECT counted, duplicate_of IS NULL, dose_sources FROM sessions ORDER BY session_id"
    ).fetchall()
    assert sorted(r[0] for r in rows) == [False, True]
    day = con.execute("SELECT sessions, trimp_banister FROM daily_load").fetchone()
    assert day is not None and day[0] == 1
    assert day[1] == pytest.approx(banister_f(30, 150), rel=1e-9)
    wk = con.execute("SELECT sessions FROM weekly_dose").fetchone()
    assert wk == (1,)


def test_strap_and_watch_overlap_each_second_once(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """A watch records an hour at 130 bpm; a chest strap records 10 minutes of it at 160."""
    add_p(con)
    activity_file(tmp_path / "watch.fit", utc(2024, 5, 6, 9), np.full(3600, 130.0), serial=1)
    activity_file(tmp_path / "strap.fit", utc(2024, 5, 6, 9, 20), np.full(600, 160.0), serial=2)
    import_paths(con, [tmp_path], "P001", recompute_after=False)
    con.execute("UPDATE sources SET sensor = 'chest_strap' WHERE path LIKE '%strap.fit'")
    con.execute("UPDATE sources SET sensor = 'optical' WHERE path LIKE '%watch.fit'")
    recompute(con, ["P001"])
    day = con.execute("SELECT sessions, trimp_banister, hr_minutes FROM daily_load").fetchone()
    assert day is not None and day[0] == 1
    expected = banister_f(50, 130) + banister_f(10, 160)
    assert day[1] == pytest.approx(expected, rel=2e-3)  # boundary seconds within a sample
    assert day[2] == pytest.approx(60.0, abs=0.05)  # an hour of HR, not 70 minutes
    primary = con.execute(
        "SELECT s.path FROM sessions JOIN sources s USING (source_id) WHERE counted"
    ).fetchone()
    assert primary is not None and primary[0].endswith("strap.fit")
    used = con.execute("SELECT dose_sources FROM sessions WHERE counted").fetchone()
    assert used is not None and len(used[0].split(",")) == 2
    # Priority is a parameter: trust the watch first and the strap's seconds no longer count.
    from actidose.config import DoseConfig

    recompute(con, ["P001"], cfg=DoseConfig(source_priority="optical,chest_strap,phone,unknown"))
    day2 = con.execute("SELECT trimp_banister FROM daily_load").fetchone()
    assert day2 is not None and day2[0] == pytest.approx(banister_f(60, 130), rel=2e-3)


def test_same_run_as_fit_and_gpx_counts_once(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """The watch's FIT and Strava's GPX of one run: both stored, linked, counted once."""
    add_p(con)
    start = utc(2024, 5, 6, 9)
    hr = np.full(1800, 150.0)
    activity_file(tmp_path / "run.fit", start, hr)
    ts = start + (np.arange(0, 1800, 2) * 1_000_000).astype("timedelta64[us]")  # GPX: every 2 s
    pts = "".join(
        f'<trkpt lat="51.5" lon="-0.1"><time>{t}Z</time><extensions>'
        f"<gpxtpx:TrackPointExtension><gpxtpx:hr>150</gpxtpx:hr>"
        f"</gpxtpx:TrackPointExtension></extensions></trkpt>"
        for t in ts.astype("datetime64[s]").astype(str)
    )
    (tmp_path / "run.gpx").write_text(
        '\n  <?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="StravaGPX" xmlns="http://www.topografix.com/GPX/1/1" '
        'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">'
        f"<trk><type>running</type><trkseg>{pts}</trkseg></trk></gpx>"
    )
    s = import_paths(con, [tmp_path], "P001")
    assert sorted((str(f.format), f.status, f.reason) for f in s.files) == [
        ("fit", "imported", None),
        ("gpx", "imported", None),
    ]
    links = con.execute(
        "SELECT s.format, counted, duplicate_of IS NOT NULL FROM sessions "
        "JOIN sources s USING (source_id) ORDER BY s.format"
    ).fetchall()
    assert links == [("fit", True, False), ("gpx", False, True)]  # 1 Hz beats every 2 s
    day = con.execute("SELECT sessions, trimp_banister, hr_minutes FROM daily_load").fetchone()
    assert day is not None and day[0] == 1
    assert day[1] == pytest.approx(banister_f(30, 150), rel=1e-9)
    assert day[2] == pytest.approx(30.0)


def test_lone_sessions_dose_equals_their_own_trimp(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Without overlap, the counted dose of a session is its own TRIMP: its last sample holds
    the median interval, not until the next session days later."""
    add_p(con)
    rng = np.random.default_rng(3)
    for d in range(3):
        activity_file(
            tmp_path / f"{d}.fit",
            utc(2024, 5, 6 + 2 * d, 9),
            rng.uniform(110, 170, 1500).round(),
            step_s=2,
            serial=d,
        )
    import_paths(con, [tmp_path], "P001")
    rows = con.execute(
        "SELECT trimp_banister, dose_trimp_banister, trimp_edwards, dose_trimp_edwards "
        "FROM sessions"
    ).fetchall()
    assert len(rows) == 3
    for own, dose, own_e, dose_e in rows:
        assert dose == pytest.approx(own, rel=1e-12) and dose_e == pytest.approx(own_e)
