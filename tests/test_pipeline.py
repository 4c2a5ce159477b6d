"""Import pipeline and derived tables, end to end on files made by our FIT writer."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest

from actidose.errors import UsageError
from actidose.ingest.fit_writer import write_monitoring_fit
from actidose.pipeline import EXIT_OK, EXIT_QUARANTINED, import_paths
from actidose.storage import participants
from actidose.storage.derive import recompute

from .conftest import activity_file, add_p, utc

TABLES = (
    "sources",
    "hr_samples",
    "activities",
    "sessions",
    "daily_load",
    "load_series",
    "weekly_dose",
)


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


def banister(minutes: float, hr: float, rest: float, hmax: float, a: float, b: float) -> float:
    x = (hr - rest) / (hmax - rest)
    return minutes * x * a * math.exp(b * x)


def test_constant_hr_session_known_answer(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con, sex="f", hr_rest=60, hr_max=190)
    f = activity_file(tmp_path / "run.fit", utc(2024, 5, 6, 9, 0), np.full(3600, 150.0))
    s = import_paths(con, [f], "P001")
    assert s.exit_code == EXIT_OK and s.files[0].status == "imported"
    assert s.files[0].n_samples == 3600
    row = con.execute(
        "SELECT day, sessions, trimp_banister, trimp_edwards, hr_vig_min, hr_mod_min, day_status "
        "FROM daily_load"
    ).fetchall()
    assert len(row) == 1
    day, n, tb, te, vig, mod, status = row[0]
    assert str(day) == "2024-05-06" and n == 1 and status == "observed"
    assert tb == pytest.approx(banister(60, 150, 60, 190, 0.86, 1.67), rel=1e-9)
    assert te == pytest.approx(60 * 3)  # 150/190 = 79 % of HRmax: Edwards zone 3
    assert vig == pytest.approx(60) and mod == pytest.approx(0)  # 69 % of HR reserve
    wk = con.execute("SELECT week_start, sessions, who_equiv_min, meets_who FROM weekly_dose")
    week_start, sessions, who, meets = wk.fetchone()  # type: ignore[misc]
    assert str(week_start) == "2024-05-06" and sessions == 1
    assert who == pytest.approx(120) and meets is False
    ses = con.execute("SELECT hr_mean, hr_max, duration_s, sport FROM sessions").fetchone()
    assert ses == (150.0, 150.0, pytest.approx(3599, abs=1), "running")


def test_idempotent_same_bytes_any_name(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con)
    d = tmp_path / "export"
    d.mkdir()
    for k in range(3):
        activity_file(d / f"a{k}.fit", utc(2024, 5, 6 + k, 9), np.full(600, 120.0 + k))
    first = import_paths(con, [d], "P001")
    assert first.count("imported") == 3
    before = counts(con)
    shutil.copy(d / "a0.fit", tmp_path / "renamed.bin")
    again = import_paths(con, [d, tmp_path / "renamed.bin"], "P001")
    assert again.count("duplicate") == 4 and again.exit_code == EXIT_OK
    assert counts(con) == before


def test_bad_files_are_quarantined_and_batch_goes_on(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con)
    good = activity_file(tmp_path / "good.fit", utc(2024, 5, 6, 9), np.full(300, 130.0))
    (tmp_path / "empty.fit").write_bytes(b"")
    (tmp_path / "notes.fit").write_text("this is not a FIT file\n")
    data = good.read_bytes()
    (tmp_path / "trunc.fit").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (tmp_path / "flipped.fit").write_bytes(bytes(flipped))
    s = import_paths(con, [tmp_path], "P001")
    by = {Path(f.path).name: f for f in s.files}
    assert by["good.fit"].status == "imported"
    assert by["empty.fit"].status == "quarantined" and "empty" in (by["empty.fit"].reason or "")
    assert by["notes.fit"].status == "quarantined" and "not a" in (by["notes.fit"].reason or "")
    assert "truncated" in (by["trunc.fit"].reason or "")
    assert "offset" in (by["flipped.fit"].reason or "")
    assert s.exit_code == EXIT_QUARANTINED
    # Nothing of a quarantined file is stored, but the file is recorded with its reason.
    rows = con.execute(
        "SELECT s.path, s.status, count(h.ts) FROM sources s LEFT JOIN hr_samples h "
        "USING (source_id) GROUP BY ALL"
    ).fetchall()
    for path, status, n in rows:
        assert (n > 0) == (status == "imported"), path


def test_salvage_keeps_what_precedes_damage(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con)
    good = activity_file(tmp_path / "g.fit", utc(2024, 5, 6, 9), np.full(2000, 130.0))
    cut = tmp_path / "cut.fit"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    s = import_paths(con, [cut], "P001")
    assert s.files[0].status == "quarantined"
    s2 = import_paths(con, [cut], "P001", salvage=True)
    assert s2.files[0].status == "salvaged" and s2.exit_code == EXIT_OK
    n = con.execute("SELECT count(*) FROM hr_samples").fetchone()[0]  # type: ignore[index]
    assert 0 < n < 2000
    assert con.execute("SELECT count(*), min(status) FROM sources").fetchone() == (1, "salvaged")


def test_sample_rules_counted(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con)
    bpm = np.full(100, 120.0)
    bpm[[3, 4]] = 0  # no skin contact
    bpm[10] = 255  # FIT invalid
    bpm[20] = 251  # implausible
    bpm[30] = 20
    f = activity_file(tmp_path / "r.fit", utc(2024, 5, 6, 9), bpm)
    s = import_paths(con, [f], "P001")
    assert s.files[0].n_invalid == 5 and s.files[0].n_samples == 95
    got = con.execute("SELECT n_samples, n_invalid, n_duplicate_ts FROM sources").fetchone()
    assert got == (95, 5, 0)


def test_unknown_participant_is_a_usage_error(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    with pytest.raises(UsageError) as e:
        import_paths(con, [tmp_path], "NOPE")
    assert e.value.fix and "participant add" in e.value.fix


def test_local_days_and_dst(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    """Monitoring HR every minute through the UK spring-forward day: a 23-hour local day."""
    add_p(con, tz="Europe/London")
    # local 2024-03-31 runs from 00:00 GMT (UTC) to 23:00 UTC (00:00 BST on 1 April).
    start = utc(2024, 3, 30, 12, 0)
    mins = np.arange(0, 48 * 60)
    ts = start + (mins * 60_000_000).astype("timedelta64[us]")
    write_monitoring_fit(tmp_path / "m.fit", ts, np.full(ts.size, 70.0), serial=1)
    s = import_paths(con, [tmp_path / "m.fit"], "P001")
    assert s.files[0].status == "imported", s.files[0].reason
    rows = dict(
        con.execute("SELECT day::VARCHAR, coverage_min FROM daily_load ORDER BY day").fetchall()
    )
    assert rows["2024-03-31"] == pytest.approx(23 * 60)
    status = dict(con.execute("SELECT day::VARCHAR, day_status FROM daily_load").fetchall())
    assert status["2024-03-31"] == "observed"
    assert status["2024-03-30"] == "observed"  # 12 h from noon


def test_session_day_is_local(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con, tz="America/New_York")
    # 02:30 UTC on 7 May is 22:30 on 6 May in New York (EDT, UTC-4).
    activity_file(
        tmp_path / "late.fit", utc(2024, 5, 7, 2, 30), np.full(600, 140.0), utc_offset_s=-4 * 3600
    )
    import_paths(con, [tmp_path], "P001")
    assert con.execute("SELECT day::VARCHAR FROM sessions").fetchone() == ("2024-05-06",)
    assert con.execute("SELECT utc_offset_s FROM sources").fetchone() == (-4 * 3600,)


def test_changing_anchor_recomputes(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con, hr_rest=60)
    activity_file(tmp_path / "a.fit", utc(2024, 5, 6, 9), np.full(1200, 150.0))
    import_paths(con, [tmp_path], "P001")
    before = con.execute("SELECT trimp_banister FROM daily_load").fetchone()[0]  # type: ignore[index]
    participants.update(con, "P001", hr_rest_bpm=70.0)
    recompute(con)
    after = con.execute("SELECT trimp_banister, hr_rest_bpm FROM daily_load").fetchone()
    assert after[1] == 70.0 and after[0] < before  # type: ignore[index]


def test_tanaka_when_hrmax_not_entered(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con, hr_max=None, birth_year=1984)
    assert con.execute("SELECT hr_max_source FROM participants").fetchone() == ("tanaka",)
    activity_file(tmp_path / "a.fit", utc(2024, 5, 6, 9), np.full(600, 140.0))
    import_paths(con, [tmp_path], "P001")
    hmax, src = con.execute("SELECT hr_max_bpm, hr_max_source FROM daily_load").fetchone()  # type: ignore[misc]
    assert src == "tanaka" and hmax == pytest.approx(208 - 0.7 * 40)  # age at the session


def test_missing_anchor_gives_null_not_a_guess(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, hr_rest=None, sex=None)
    activity_file(tmp_path / "a.fit", utc(2024, 5, 6, 9), np.full(600, 140.0))
    import_paths(con, [tmp_path], "P001")
    tb, te = con.execute("SELECT trimp_banister, trimp_edwards FROM daily_load").fetchone()  # type: ignore[misc]
    assert tb is None or math.isnan(tb)
    assert te == pytest.approx(10 * 3)  # Edwards needs only HRmax: 140/190 = 74 %


def test_derived_rows_name_their_parameters(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con)
    activity_file(tmp_path / "a.fit", utc(2024, 5, 6, 9), np.full(600, 140.0))
    import_paths(con, [tmp_path], "P001")
    for t in ("sessions", "daily_load", "load_series", "weekly_dose"):
        n = con.execute(
            f"SELECT count(*) FROM {t} JOIN parameter_sets USING (params_id)"
        ).fetchone()[0]  # type: ignore[index]
        assert n > 0, t
    params = con.execute("SELECT params->>'trimp_preset' FROM parameter_sets").fetchone()
    assert params == ("banister",)


def test_vendor_series_stored_and_summed_per_day_from_one_source(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Steps from a phone and a watch on the same day are not added together."""
    from actidose.ingest.samples import clean_hr
    from actidose.recording import Recording, VendorSeries
    from actidose.storage.db import transaction
    from actidose.storage.write import store_recording

    add_p(con, tz="Europe/London")
    minutes = utc(2024, 6, 1, 8) + (np.arange(120) * 60_000_000).astype("timedelta64[us]")
    for k, (origin, per_min) in enumerate([("iPhone", 50.0), ("Apple Watch", 40.0)]):
        n = 120 if origin == "iPhone" else 90
        rec = Recording(
            format="test",
            kind="allday",
            vendor=[
                VendorSeries(
                    "steps", "count", minutes[:n], np.full(n, 60.0), np.full(n, per_min), origin
                ),
                VendorSeries(
                    "resting_hr_bpm",
                    "bpm",
                    minutes[:1],
                    np.full(1, 86400.0),
                    np.full(1, 55.0 + k),
                    origin,
                ),
            ],
        )
        with transaction(con):
            store_recording(
                con,
                sha256=f"sha{k}",
                path=f"/x{k}",
                size=1,
                participant_id="P001",
                rec=rec,
                hr=clean_hr(rec.hr),
                replace_id=None,
            )
    recompute(con)
    assert con.execute("SELECT count(*) FROM vendor_activity").fetchone() == (212,)
    rows = con.execute(
        "SELECT kind, value, origin, n_sources, aggregate FROM vendor_daily ORDER BY kind"
    ).fetchall()
    assert rows == [
        ("resting_hr_bpm", 55.0, "iPhone", 2, "mean"),
        ("steps", 6000.0, "iPhone", 2, "sum"),
    ]
