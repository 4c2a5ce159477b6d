"""Every real FIT file of the shared corpus through `actidose import`: the stored HR samples
equal an independent fitdecode reading after the sample rules, or the file is quarantined with
its specific reason."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import duckdb
import fitdecode
import numpy as np
import pytest

from actidose.pipeline import import_paths

from .conftest import add_p, need_corpus

QUARANTINED = {
    "antfs-dump.63.fit": "power-on-relative",
    "compressed-speed-distance.fit": "power-on-relative",
    "nick.fit": "truncated at offset",
    "strava-android-app-201.10-b1218918.fit": "corrupt data at offset 7471",
}
# HR of these comes from `hr` messages (a strap), which replace the watch's record HR.
HR_MESSAGES = {"event_timestamp.fit", "garmin-fr935-cr.fit", "sample_mulitple_header.fit"}


def fitdecode_hr(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Record timestamp + heart_rate, then the design's sample rules, written independently."""
    ts: list[int] = []
    bpm: list[float] = []
    with fitdecode.FitReader(
        str(path),
        check_crc=fitdecode.CrcCheck.DISABLED,
        error_handling=fitdecode.ErrorHandling.IGNORE,
    ) as fit:
        for frame in fit:
            if not isinstance(frame, fitdecode.FitDataMessage) or frame.name != "record":
                continue
            if not frame.has_field("heart_rate") or not frame.has_field("timestamp"):
                continue
            t = frame.get_value("timestamp")
            if not hasattr(t, "timestamp"):
                continue
            v = frame.get_value("heart_rate")
            ts.append(round(t.replace(tzinfo=t.tzinfo or UTC).timestamp() * 1e6))
            bpm.append(np.nan if v is None else float(v))
    t_arr, b_arr = np.array(ts, np.int64), np.array(bpm, np.float64)
    ok = np.isfinite(b_arr) & (b_arr >= 25) & (b_arr <= 250)
    t_arr, b_arr = t_arr[ok], b_arr[ok]
    order = np.argsort(t_arr, kind="stable")
    t_arr, b_arr = t_arr[order], b_arr[order]
    first = np.ones(t_arr.size, bool)
    first[1:] = t_arr[1:] != t_arr[:-1]
    return t_arr[first], b_arr[first]


def test_corpus_fit_files(con: duckdb.DuckDBPyConnection) -> None:
    fit_dir = need_corpus() / "fit"
    add_p(con)
    summary = import_paths(con, [fit_dir], "P001")
    outcomes = {Path(f.path).name: f for f in summary.files if f.path.endswith(".fit")}
    assert len(outcomes) == len(list(fit_dir.glob("*.fit")))
    for name, f in sorted(outcomes.items()):
        if name in QUARANTINED:
            assert f.status == "quarantined", name
            assert QUARANTINED[name] in (f.reason or ""), (name, f.reason)
            continue
        assert f.status == "imported", (name, f.reason)
        stored = con.execute(
            "SELECT epoch_us(ts), bpm FROM hr_samples WHERE source_id = ? ORDER BY ts",
            [f.source_id],
        ).fetchall()
        got_t = np.array([r[0] for r in stored], np.int64)
        got_b = np.array([r[1] for r in stored], np.float64)
        if name in HR_MESSAGES:
            assert got_t.size > 1000, name
            continue
        want_t, want_b = fitdecode_hr(fit_dir / name)
        assert np.array_equal(got_t, want_t), name
        assert np.array_equal(got_b, want_b), name


@pytest.mark.slow
def test_nick_fit_salvage_keeps_its_records(con: duckdb.DuckDBPyConnection) -> None:
    nick = need_corpus() / "fit" / "nick.fit"
    add_p(con)
    s = import_paths(con, [nick], "P001")
    assert s.files[0].status == "quarantined"
    s = import_paths(con, [nick], "P001", salvage=True)
    f = s.files[0]
    assert f.status == "salvaged" and "truncated at offset" in (f.reason or "")
    assert f.n_samples + f.n_invalid + f.n_duplicate_ts == 14_391
    assert con.execute("SELECT status FROM sources").fetchall() == [("salvaged",)]


@pytest.mark.parametrize(
    ("folder", "expect"),
    [
        ("tcx", {"imported": 6}),
        ("gpx", {"imported": 4}),
        ("apple-health", {"imported": 2, "duplicate": 1}),  # the zip holds the same export.xml
        ("fitbit", {"imported": 3, "skipped": 1}),  # the sleep log carries no HR or activity
        ("polar", {"imported": 1}),
    ],
)
def test_corpus_exports_import(
    con: duckdb.DuckDBPyConnection, folder: str, expect: dict[str, int]
) -> None:
    add_p(con, tz="Europe/Amsterdam")
    s = import_paths(con, [need_corpus() / folder], "P001")
    got = {k: s.count(k) for k in ("imported", "duplicate", "skipped", "quarantined", "failed")}
    assert {k: v for k, v in got.items() if v} == expect, [(f.path, f.reason) for f in s.files]
    assert s.exit_code == 0
    n = con.execute("SELECT count(*) FROM hr_samples").fetchone()
    assert n == (sum(f.n_samples for f in s.files),)


def test_fitbit_day_across_spring_forward_lands_in_local_days(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """A Fitbit heart-rate file of local 2024-03-31 (Europe/London loses 01:00-02:00): every
    sample lands in its local day, the day holds 23 hours, and the instants are UTC."""
    import json

    add_p(con, tz="Europe/London")
    local = np.arange(
        np.datetime64("2024-03-31T00:00:00"),
        np.datetime64("2024-04-01T00:00:00"),
        np.timedelta64(60, "s"),
    )
    items = [
        {"dateTime": f"03/31/24 {str(t)[11:19]}", "value": {"bpm": 70, "confidence": 2}}
        for t in local
    ]
    (tmp_path / "heart_rate-2024-03-31.json").write_text(json.dumps(items))
    s = import_paths(con, [tmp_path / "heart_rate-2024-03-31.json"], "P001")
    f = s.files[0]
    assert f.status == "imported"
    assert f.n_samples == 23 * 60  # the 60 wall-clock minutes 01:00-01:59 do not exist
    days = con.execute("SELECT day::VARCHAR, coverage_min, day_status FROM daily_load").fetchall()
    assert days == [("2024-03-31", pytest.approx(23 * 60), "observed")]
    first, last = con.execute("SELECT min(ts), max(ts) FROM hr_samples").fetchone()  # type: ignore[misc]
    assert first.isoformat() == "2024-03-31T00:00:00+00:00"
    assert last.isoformat() == "2024-03-31T22:59:00+00:00"  # 23:59 BST


def test_corpus_accelerometer_files(con: duckdb.DuckDBPyConnection) -> None:
    """Raw files become epochs with their processing record; count CSVs become vendor counts;
    the two truncated files are quarantined, and kept with --salvage."""
    add_p(con, tz="Europe/London")
    accel = need_corpus() / "accel"
    s = import_paths(con, [accel], "P001")
    by = {Path(f.path).name: f for f in s.files}
    truncated = {"GENEActiv_testfile.bin", "genea_testfile.bin"}
    for name, f in by.items():
        if name in truncated:
            assert f.status == "quarantined" and "truncated" in (f.reason or ""), name
        else:
            assert f.status == "imported", (name, f.reason)
    raw = con.execute(
        "SELECT s.path, p.n_samples, p.n_epochs, (SELECT count(*) FROM accel_epochs e "
        "WHERE e.source_id = s.source_id) FROM sources s JOIN accel_processing p "
        "USING (source_id)"
    ).fetchall()
    samples = {Path(r[0]).name: r[1] for r in raw}
    assert samples["ax3_testfile.cwa"] == 17_400
    assert samples["ax3_testfile_corrupt_blocks_0_13_14_142_143_144.cwa"] == 16_680
    assert samples["ax6_sample.cwa"] == 10_360
    assert samples["gnactv_sample.bin"] == 900
    assert all(r[2] == r[3] > 0 for r in raw)
    counts = con.execute(
        "SELECT count(*) FROM vendor_activity WHERE kind = 'activity_counts_axis1'"
    ).fetchone()
    assert counts == (990 + 990,)
    again = import_paths(con, [accel / f for f in sorted(truncated)], "P001", salvage=True)
    assert [f.status for f in again.files] == ["salvaged", "salvaged"]
    assert con.execute(
        "SELECT count(*) FROM accel_processing JOIN sources USING (source_id) "
        "WHERE status = 'salvaged'"
    ).fetchone() == (2,)
