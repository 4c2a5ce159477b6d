"""``actidose symptoms``: exit codes, per-file summaries, rejected lines, definitions."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from actidose.cli import main
from actidose.symptoms_cli import register

register(main)  # cli.py may register it already; registering twice is harmless
register(main)

HEADER = "participant_id,timestamp,instrument,item,value\n"


def run(db: Path, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.duckdb"
    for pid, tz in (("P1", "Europe/London"), ("P2", "America/New_York")):
        code, _, err = run(path, "participant", "add", pid, "--timezone", tz, "--sex", "f")
        assert code == 0, err
    return path


def csv(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def count(db: Path, sql: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(sql).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


def test_clean_import_exits_0_and_second_run_is_already_imported(db: Path, tmp_path: Path) -> None:
    f = csv(tmp_path, "a.csv", HEADER + "P1,2024-05-01T08:00Z,mood,1,3\n")
    code, out, err = run(db, "symptoms", "import", str(f))
    assert code == 0, err
    assert f"{f}: long, 1 line(s), 1 value(s) stored, 0 rejected" in out
    assert "recomputed 1 participant(s)" in out
    assert (
        err == f"{f}: warning: no definition for mood: any item number and value accepted, "
        "scored as a plain sum\n"
    )
    code, out, _ = run(db, "symptoms", "import", str(f))
    assert code == 0 and f"{f}: already imported" in out
    assert count(db, "SELECT count(*) FROM symptoms") == 1


def test_rejected_lines_exit_3_and_are_printed_with_file_and_line(db: Path, tmp_path: Path) -> None:
    f = csv(
        tmp_path,
        "a.csv",
        HEADER
        + "P1,2024-05-01T08:00Z,phq9,1,2\n"
        + "P7,2024-05-01T08:00Z,phq9,2,2\n"
        + "P1,31/12/2024,phq9,3,2\n"
        + "P1,2024-05-01T08:00Z,phq9,4,9\n",
    )
    code, out, err = run(db, "symptoms", "import", str(f))
    assert code == 3
    assert "1 value(s) stored, 3 rejected" in out
    assert err.splitlines() == [
        f"{f}:3: unknown participant 'P7'",
        f"{f}:4: time '31/12/2024' is not a date-time (ISO 8601, e.g. 2024-05-01T08:30, "
        "2024-05-01T08:30+01:00 or 2024-05-01)",
        f"{f}:5: value 9 is outside 0..3 of phq9",
    ]
    assert count(db, "SELECT count(*) FROM symptoms") == 1


def test_nothing_imported_exits_1(db: Path, tmp_path: Path) -> None:
    f = csv(tmp_path, "a.csv", HEADER + "P9,2024-05-01T08:00Z,mood,1,3\n")
    g = tmp_path / "b.csv"
    g.write_bytes(b"\x00\x01\x02")
    code, out, err = run(db, "symptoms", "import", str(f), str(g))
    assert code == 1
    assert f"{g}: not imported: not a text file: NUL byte at offset 0 (line 1)" in out
    assert f"{f}:2: unknown participant 'P9'" in err


def test_one_failed_file_among_good_ones_exits_3(db: Path, tmp_path: Path) -> None:
    good = csv(tmp_path, "a.csv", HEADER + "P1,2024-05-01T08:00Z,mood,1,3\n")
    wide = csv(tmp_path, "w.csv", "participant_id,timestamp,q1\nP1,2024-05-01T08:00Z,1\n")
    code, out, _ = run(db, "symptoms", "import", str(good), str(wide))
    assert code == 3
    assert f"{wide}: not imported: " in out and "--instrument NAME" in out
    assert count(db, "SELECT count(*) FROM symptoms") == 1


def test_json_output(db: Path, tmp_path: Path) -> None:
    f = csv(
        tmp_path,
        "a.csv",
        HEADER + "P1,2024-05-01T08:00Z,mood,1,3\nP2,2024-05-01T08:00,mood,1,4\nP1,x,mood,1,1\n",
    )
    code, out, _ = run(db, "symptoms", "import", str(f), "--json")
    assert code == 3
    doc = json.loads(out)
    assert doc["exit_code"] == 3
    assert doc["recomputed"] == ["P1", "P2"]
    (fo,) = doc["files"]
    assert fo["status"] == "imported" and fo["n_values"] == 2 and fo["layout"] == "long"
    assert fo["rejected"] == [
        {"line": 4, "reason": fo["rejected"][0]["reason"]},
    ]
    assert fo["rejected"][0]["reason"].startswith("time 'x' is not a date-time")


def test_wide_file_with_definitions_and_timezone(db: Path, tmp_path: Path) -> None:
    defs = tmp_path / "defs.toml"
    defs.write_text("[instruments.fatigue]\nitems = 2\nmin = 0\nmax = 10\nrecall_days = 2\n")
    f = csv(
        tmp_path,
        "w.csv",
        "participant,time,fatigue_1,fatigue_2\nP1,2024-05-01 08:00,3,4\nP2,2024-05-01 08:00,11,\n",
    )
    code, out, err = run(
        db,
        "symptoms",
        "import",
        str(f),
        "--instrument",
        "Fatigue",
        "--instruments",
        str(defs),
        "--timezone",
        "UTC",
    )
    assert code == 3
    assert "wide (fatigue)" in out and "2 value(s) stored" in out
    assert f"{f}:3: column 'fatigue_1': value 11 is outside 0..10 of fatigue" in err
    assert count(db, "SELECT count(*) FROM symptoms WHERE epoch(ts) = 1714550400") == 2
    assert count(db, "SELECT recall_days FROM instruments WHERE instrument = 'fatigue'") == 2


def test_usage_errors_exit_2(db: Path, tmp_path: Path) -> None:
    f = csv(tmp_path, "a.csv", HEADER)
    code, _, err = run(db, "symptoms", "import", str(f), "--timezone", "Mars/Olympus")
    assert code == 2 and "unknown time zone 'Mars/Olympus'" in err
    bad = tmp_path / "d.toml"
    bad.write_text("[instruments.x]\nitems = 3\nscoring = 'median'\n")
    code, _, err = run(db, "symptoms", "import", str(f), "--instruments", str(bad))
    assert code == 2
    assert f"Error: {bad} line 3: instruments.x.scoring: must be one of" in err
    code, _, err = run(db, "symptoms", "import", str(f), "--instruments", str(tmp_path / "no"))
    assert code == 2 and "cannot read instrument definitions" in err


def test_conflict_then_replace(db: Path, tmp_path: Path) -> None:
    a = csv(tmp_path, "a.csv", HEADER + "P1,2024-05-01T08:00Z,mood,1,3\n")
    b = csv(tmp_path, "b.csv", HEADER + "P1,2024-05-01T08:00Z,mood,1,5\n")
    assert run(db, "symptoms", "import", str(a))[0] == 0
    code, _, err = run(db, "symptoms", "import", str(b))
    assert code == 1  # its only line conflicts: nothing imported
    assert f"{b}:2: mood item 1: value 5 conflicts with the value 3 stored from" in err
    code, out, _ = run(db, "symptoms", "import", str(b), "--replace")
    assert code == 0 and "1 replaced" in out
    assert count(db, "SELECT value FROM symptoms") == 5


def test_instruments_list_and_load(db: Path, tmp_path: Path) -> None:
    code, out, _ = run(db, "symptoms", "instruments", "--format", "csv")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "instrument,items,min,max,recall_days,scoring,threshold,min_items,reverse,bands,origin"
    )
    assert lines[1].startswith("phq9,9,0.0,3.0,14.0,prorated_sum,,7,,0 minimal; 5 mild;")
    assert lines[2].startswith("shaps,14,1.0,4.0,3.0,count_at_least,3.0,14,")
    defs = tmp_path / "defs.toml"
    defs.write_text(
        "[instruments.mfi]\nitems = 20\nmin = 1\nmax = 5\nrecall_days = 7\n"
        "reverse = [2, 5, 9]\nbands = [[0, 'low'], [60, 'high']]\n"
    )
    code, out, _ = run(db, "symptoms", "instruments", "--load", str(defs), "--format", "json")
    assert code == 0
    rows = {r["instrument"]: r for r in json.loads(out)}
    assert set(rows) == {"mfi", "phq9", "shaps"}
    assert rows["mfi"]["reverse"] == [2, 5, 9]
    assert rows["mfi"]["bands"] == [[0.0, "low"], [60.0, "high"]]
    assert rows["mfi"]["origin"] == str(defs.absolute())
    code, out, _ = run(db, "symptoms", "instruments")
    assert code == 0 and "mfi" in out and "(3 rows)" in out


def test_instruments_without_a_database_lists_the_builtins(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path / "none.duckdb", "symptoms", "instruments", "--format", "json")
    assert code == 0
    assert [r["instrument"] for r in json.loads(out)] == ["phq9", "shaps"]
    assert not (tmp_path / "none.duckdb").exists()
