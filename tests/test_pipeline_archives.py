"""Archives and parallel parsing through the whole pipeline."""

from __future__ import annotations

import gzip
import io
import time
import zipfile
from pathlib import Path

import duckdb
import numpy as np

from actidose.pipeline import EXIT_OK, EXIT_QUARANTINED, import_paths

from .conftest import activity_file, add_p, utc

TABLES = ("sources", "hr_samples", "activities", "sessions", "daily_load", "weekly_dose")


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


def strava_zip(tmp: Path) -> Path:
    a = activity_file(tmp / "1.fit", utc(2024, 5, 6, 9), np.full(600, 140.0), serial=1)
    b = activity_file(tmp / "2.fit", utc(2024, 5, 8, 9), np.full(900, 150.0), serial=2)
    out = tmp / "export_123.zip"
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("b.fit", b.read_bytes())
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("activities.csv", "Activity ID,Activity Type\n1,Run\n")
        z.writestr("activities/1.fit.gz", gzip.compress(a.read_bytes()))
        z.writestr("DI_CONNECT/UploadedFiles_0-_Part1.zip", inner.getvalue())
        z.writestr("profile.jpg", b"\xff\xd8\xff\xe0 not really a photo")
    a.unlink()
    b.unlink()
    return out


def test_export_zip_members_are_sources(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con)
    z = strava_zip(tmp_path)
    s = import_paths(con, [z], "P001")
    by = {f.path.split("!", 1)[1]: f.status for f in s.files}
    assert by == {
        "activities.csv": "skipped",
        "activities/1.fit.gz!1.fit": "imported",
        "DI_CONNECT/UploadedFiles_0-_Part1.zip!b.fit": "imported",
        "profile.jpg": "skipped",
    }
    assert s.exit_code == EXIT_OK
    paths = [r[0] for r in con.execute("SELECT path FROM sources ORDER BY path").fetchall()]
    assert all(p.startswith(str(z.resolve()) + "!") for p in paths)
    before = counts(con)
    again = import_paths(con, [z], "P001")
    assert again.count("duplicate") == 2 and counts(con) == before


def test_zip_bomb_and_traversal_refused_nothing_stored(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("export.xml", b"\0" * 100_000_000)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("ok.txt", "x")
        z.writestr("../../etc/cron.d/evil.fit", "x")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w"):
        pass
    noise = np.random.default_rng(1).bytes(20_000)
    (tmp_path / "cut.fit.gz").write_bytes(gzip.compress(noise)[:5000])
    t0 = time.perf_counter()
    s = import_paths(con, [tmp_path], "P001")
    assert time.perf_counter() - t0 < 5
    reasons = {Path(f.path.split("!")[0]).name: (f.status, f.reason) for f in s.files}
    assert reasons["bomb.zip"][0] == "quarantined" and "ratio" in (reasons["bomb.zip"][1] or "")
    assert reasons["evil.zip"][0] == "quarantined" and "unsafe" in (reasons["evil.zip"][1] or "")
    assert reasons["empty.zip"][0] == "quarantined" and "empty" in (reasons["empty.zip"][1] or "")
    assert "truncated" in (reasons["cut.fit.gz"][1] or "")
    assert s.exit_code == EXIT_QUARANTINED
    assert con.execute("SELECT count(*) FROM hr_samples").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM sources WHERE status <> 'quarantined'").fetchone() == (
        0,
    )


def test_jobs_give_the_same_database(tmp_path: Path) -> None:
    from actidose.storage.db import connect

    files = tmp_path / "files"
    files.mkdir()
    for k in range(12):
        activity_file(
            files / f"{k}.fit", utc(2024, 5, 1 + k, 9), np.full(900, 120.0 + 3 * k), serial=k
        )
    strava_zip(files)
    results = []
    for jobs in (1, 2):
        con = connect(tmp_path / f"j{jobs}.duckdb")
        add_p(con)
        s = import_paths(con, [files], "P001", jobs=jobs)
        assert s.exit_code == EXIT_OK
        results.append(
            (
                [(f.path, f.status, f.n_samples) for f in s.files],
                con.execute(
                    "SELECT day, sessions, trimp_banister FROM daily_load ORDER BY day"
                ).fetchall(),
            )
        )
        con.close()
    assert results[0] == results[1]


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b']>\n<HealthData locale="en"><Record type="HKQuantityTypeIdentifierHeartRate" '
    b'value="&lol9;" startDate="2024-01-01 00:00:00 +0000" endDate="2024-01-01 00:00:00 +0000" '
    b'sourceName="x" unit="count/min"/></HealthData>\n'
)
QUADRATIC = (
    b'<?xml version="1.0"?>\n<!DOCTYPE TrainingCenterDatabase [<!ENTITY a "'
    + b"x" * 50_000
    + b'">]>\n<TrainingCenterDatabase>'
    + b"&a;" * 50_000
    + b"</TrainingCenterDatabase>\n"
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<gpx version="1.1"><trk><name>&xxe;</name></trk></gpx>\n'
)


def test_hostile_xml_refused_alone_and_in_an_export_zip(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con)
    d = tmp_path / "in"
    d.mkdir()
    (d / "export.xml").write_bytes(BILLION_LAUGHS)
    (d / "quadratic.tcx").write_bytes(QUADRATIC)
    (d / "xxe.gpx").write_bytes(XXE)
    with zipfile.ZipFile(d / "export.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("apple_health_export/export.xml", BILLION_LAUGHS + b"<!-- zipped -->")
    t0 = time.perf_counter()
    s = import_paths(con, [d], "P001")
    assert time.perf_counter() - t0 < 5
    assert [f.status for f in s.files] == ["quarantined"] * 4, [(f.path, f.reason) for f in s.files]
    for f in s.files:
        assert "entit" in (f.reason or "").lower() or "doctype" in (f.reason or "").lower(), f
    assert con.execute("SELECT count(*) FROM hr_samples").fetchone() == (0,)
    assert s.exit_code == EXIT_QUARANTINED
