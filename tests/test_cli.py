"""The command line: exit codes, one-line errors, output formats, read-only queries, locking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from actidose.cli import main

from .conftest import activity_file, utc


def run(db: Path, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def study(tmp_path: Path) -> Path:
    db = tmp_path / "s.duckdb"
    code, _, err = run(
        db,
        "participant",
        "add",
        "P001",
        "--sex",
        "f",
        "--birth-year",
        "1990",
        "--timezone",
        "Europe/London",
        "--arm",
        "aerobic",
        "--hr-rest",
        "58",
        "--hr-max",
        "186",
    )
    assert code == 0, err
    files = tmp_path / "P001"
    files.mkdir()
    for d in range(3):
        activity_file(files / f"s{d}.fit", utc(2024, 5, 6 + 2 * d, 8), np.full(1800, 145.0))
    code, _, err = run(db, "import", str(files), "--participant", "P001")
    assert code == 0, err
    return db


def test_import_summary_json_and_exit_3(tmp_path: Path, study: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.fit").write_bytes(b"\x0e\x10garbage")
    code, out, _ = run(study, "import", str(bad), str(tmp_path / "P001"), "-P", "P001", "--json")
    assert code == 3
    s = json.loads(out)
    assert s["counts"]["quarantined"] == 1 and s["counts"]["duplicate"] == 3
    assert s["files"][0]["reason"]


def test_query_params_and_formats(study: Path) -> None:
    sql = "select week_start, sessions from weekly_dose where participant_id = $pid"
    code, out, _ = run(study, "query", sql, "-p", "pid", "P001", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert rows == [{"week_start": "2024-05-06", "sessions": 3}]
    code, out, _ = run(study, "query", sql, "-p", "pid", "P001", "--format", "csv")
    assert out.splitlines() == ["week_start,sessions", "2024-05-06,3"]
    code, out, _ = run(study, "query", sql, "-p", "pid", "P001")
    assert "week_start" in out and "(1 row)" in out
    code, out, _ = run(
        study,
        "query",
        "select count(*) n from sessions where hr_mean > $x",
        "-p",
        "x",
        "100.5",
        "--format",
        "csv",
    )
    assert out.splitlines()[1] == "3"


def test_query_is_read_only(study: Path) -> None:
    code, _, err = run(study, "query", "delete from participants")
    assert code == 1 and err.startswith("Error: database:")
    code, out, _ = run(study, "query", "select count(*) from participants", "--format", "csv")
    assert out.splitlines()[1] == "1"


def test_export_parquet_and_csv(study: Path, tmp_path: Path) -> None:
    import polars as pl

    code, _, _ = run(study, "export", "daily_load", "--out", str(tmp_path / "d.parquet"))
    assert code == 0
    assert pl.read_parquet(tmp_path / "d.parquet").height == 5
    code, _, _ = run(study, "export", "sessions", "--out", str(tmp_path / "s.csv"), "-P", "P001")
    assert pl.read_csv(tmp_path / "s.csv").height == 3
    code, _, err = run(study, "export", "nope", "--out", str(tmp_path / "n.csv"))
    assert code == 2 and "no table" in err


def test_usage_errors_are_one_line_with_fix(tmp_path: Path, study: Path) -> None:
    code, _, err = run(study, "import", str(tmp_path / "P001"), "-P", "P404")
    assert code == 2
    assert err.splitlines()[0] == "Error: unknown participant 'P404'"
    assert "participant add P404" in err
    code, _, err = run(study, "participant", "add", "P002", "--timezone", "Mars/Olympus")
    assert code == 2 and "unknown time zone" in err
    code, _, err = run(study, "import", str(tmp_path / "missing"), "-P", "P001")
    assert code == 2 and "no such file" in err
    code, _, err = run(tmp_path / "none.duckdb", "query", "select 1")
    assert code == 1 and "no database" in err


def test_participant_update_list_and_roster(tmp_path: Path, study: Path) -> None:
    code, out, _ = run(study, "participant", "update", "P001", "--hr-rest", "62")
    assert code == 0 and "recomputed" in out
    got = run(study, "query", "select distinct hr_rest_bpm from daily_load", "--format", "csv")
    assert got[1].splitlines()[1] == "62.0"
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "participant_id,sex,birth_year,timezone,arm\nP002,m,1980,Europe/Paris,"
        "stretching\nP003,x,1980,Europe/Paris,aerobic\n"
    )
    code, _, err = run(study, "participant", "import", str(roster))
    assert code == 1 and "line 3" in err
    code, out, _ = run(study, "participant", "list", "--format", "csv")
    assert "P002" not in out  # all rows or none
    roster.write_text(
        "participant_id,sex,birth_year,timezone,arm\nP002,m,1980,Europe/Paris,stretching\n"
    )
    code, out, _ = run(study, "participant", "import", str(roster))
    assert code == 0 and out.strip() == "1 added, 0 updated"
    code, out, _ = run(study, "participant", "list", "--format", "json")
    p2 = next(p for p in json.loads(out) if p["participant_id"] == "P002")
    assert p2["hr_max_source"] == "tanaka" and p2["hr_rest_bpm"] is None


def test_recompute_set_parameter(study: Path) -> None:
    code, _, _ = run(study, "recompute", "--set", "load_metric=trimp_edwards")
    assert code == 0
    same = run(
        study,
        "query",
        "select bool_and(l.load = d.trimp_edwards) from load_series l "
        "join daily_load d using (participant_id, day)",
        "--format",
        "csv",
    )[1]
    assert same.splitlines()[1] == "True"
    code, _, err = run(study, "recompute", "--set", "tau_ctl=abc")
    assert code == 2
    code, _, err = run(study, "recompute", "--set", "nonsense=1")
    assert code == 2 and "known:" in err


def test_db_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("ACTIDOSE_DB", str(db))
    r = CliRunner().invoke(main, ["participant", "add", "E1", "--timezone", "UTC"])
    assert r.exit_code == 0 and db.exists()


def test_version_and_every_command_documented() -> None:
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and "actidose" in r.stdout

    def walk(group: object, prefix: str) -> None:
        for name, cmd in getattr(group, "commands", {}).items():
            assert cmd.help, f"{prefix}{name} has no help"
            walk(cmd, f"{prefix}{name} ")

    walk(main, "")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in main.commands:  # type: ignore[attr-defined]
        assert f"actidose {name}" in readme or f"`{name}`" in readme, name


def test_locked_database_names_the_holder(study: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(study)!r})
            print("ready", flush=True)
            time.sleep(30)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        env = {**os.environ, "ACTIDOSE_DB": str(study)}
        r = subprocess.run(
            [sys.executable, "-m", "actidose.cli", "query", "select 1"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert r.returncode == 1
        assert f"process {holder.pid}" in r.stderr and "Traceback" not in r.stderr
    finally:
        holder.kill()
        holder.wait()


def test_generic_csv_with_mapping_and_zone(tmp_path: Path, study: Path) -> None:
    csv = tmp_path / "strap.csv"
    csv.write_text("Time;HR;RR\n2024-06-01 10:00:00;120;500\n2024-06-01 10:00:01;121;496\n")
    code, out, err = run(
        study,
        "import",
        str(csv),
        "-P",
        "P001",
        "--columns",
        "timestamp=Time,bpm=HR,rr_ms=RR",
        "--timezone",
        "America/New_York",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["counts"]["imported"] == 1
    got = run(
        study,
        "query",
        "select min(ts)::VARCHAR, count(*) from hr_samples h join sources "
        "s using (source_id) where s.format = 'csv'",
        "--format",
        "csv",
    )[1]
    assert got.splitlines()[1] == "2024-06-01 14:00:00+00,2"  # 10:00 EDT
    rr = run(study, "query", "select count(*) from rr_intervals", "--format", "csv")[1]
    assert rr.splitlines()[1] == "2"
    code, _, err = run(study, "import", str(csv), "-P", "P001", "--columns", "bpm=HR")
    assert code == 2 and "timestamp" in err
