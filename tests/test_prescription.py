"""Prescriptions: parsing the TOML file, storing it, the ``prescription`` commands, and
adherence end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner

from actidose.errors import UsageError
from actidose.prescription import Prescription, parse_prescriptions, read_prescriptions
from actidose.storage import prescriptions as store

from .conftest import activity_file, add_p, utc

EXAMPLE = """\
[arms.aerobic]
weeks = 8
sessions_per_week = 3
min_session_min = 30
intensity = { scheme = "hrr", low = 0.60, high = 0.80 }

[arms.stretching]
weeks = 8
sessions_per_week = 3
min_session_min = 30
qualify = "duration"
"""


# ------------------------------------------------------------------------ parsing
def test_parse_the_example() -> None:
    aerobic, stretching = parse_prescriptions(EXAMPLE, "arms.toml")
    assert aerobic == Prescription(
        arm="aerobic",
        weeks=8,
        sessions_per_week=3.0,
        min_session_min=30.0,
        band_scheme="hrr",
        band_low=0.6,
        band_high=0.8,
        qualify="duration_in_band",
        trimp_per_week=None,
    )
    assert aerobic.definition["intensity"] == {"scheme": "hrr", "low": 0.6, "high": 0.8}
    assert aerobic.band_min_per_week == 90.0
    assert aerobic.describe() == "3 x 30 min/week at 60-80 % HRR for 8 weeks"
    assert stretching.band_scheme is None and stretching.qualify == "duration"
    assert stretching.band_min_per_week is None
    assert stretching.trimp_prescribed_per_week(0.86, 1.67) is None


def test_defaults_and_sub_table_spelling() -> None:
    text = """
[arms.walk]
weeks = 4
sessions_per_week = 2.5

[arms.run]
weeks = 6
sessions_per_week = 3
min_session_min = 20
qualify = "band_minutes"
trimp_per_week = 150

[arms.run.intensity]
scheme = "hrmax"
low = 0.64
high = 0.9
"""
    walk, run = parse_prescriptions(text, "x.toml")
    assert (walk.min_session_min, walk.qualify, walk.band_scheme) == (0.0, "duration", None)
    assert walk.sessions_per_week == 2.5
    assert (run.band_scheme, run.band_low, run.band_high) == ("hrmax", 0.64, 0.9)
    assert run.qualify == "band_minutes" and run.trimp_per_week == 150.0
    assert run.trimp_prescribed_per_week(0.86, 1.67) == 150.0  # given wins


def test_prescribed_trimp_derived_from_the_band() -> None:
    aerobic = parse_prescriptions(EXAMPLE, "arms.toml")[0]
    per_session = 30 * 0.7 * 0.86 * math.exp(1.67 * 0.7)
    assert aerobic.trimp_prescribed_per_week(0.86, 1.67) == pytest.approx(3 * per_session)
    assert aerobic.trimp_prescribed_per_week(None, None) is None  # sex unknown
    hrmax = parse_prescriptions(EXAMPLE.replace('scheme = "hrr"', 'scheme = "hrmax"'), "arms.toml")[
        0
    ]
    assert hrmax.trimp_prescribed_per_week(0.86, 1.67) is None


def _error(text: str) -> UsageError:
    with pytest.raises(UsageError) as info:
        parse_prescriptions(text, "study/arms.toml")
    return info.value


def test_percent_band_is_rejected_with_the_fraction_to_write() -> None:
    err = _error(EXAMPLE.replace("low = 0.60, high = 0.80", "low = 60, high = 80"))
    assert str(err).startswith("study/arms.toml, line 5: arms.aerobic.intensity.low:")
    assert "percent" in str(err)
    assert err.fix == "write low = 0.6 for 60 %"


def test_band_list_spelling_is_rejected_with_a_hint() -> None:
    text = EXAMPLE.replace(
        'intensity = { scheme = "hrr", low = 0.60, high = 0.80 }',
        'band = [60, 80]\nband_unit = "percent"',
    )
    err = _error(text)
    assert str(err) == "study/arms.toml, line 5: arms.aerobic.band: unknown key"
    assert err.fix is not None and "intensity = {" in err.fix


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "weeks = 8\nsessions_per_week = 3\nmin_session_min = 30\nqualify",
            "weeks = 0\nsessions_per_week = 3\nmin_session_min = 30\nqualify",
            "line 8: arms.stretching.weeks: must be a whole number >= 1",
        ),
        ("weeks = 8\n", "weeks = 8.5\n", "line 2: arms.aerobic.weeks: must be a whole number"),
        (
            "sessions_per_week = 3\nmin_session_min = 30\nintensity",
            "sessions_per_week = 0\nmin_session_min = 30\nintensity",
            "line 3: arms.aerobic.sessions_per_week: must be a number > 0",
        ),
        (
            "min_session_min = 30\nintensity",
            "min_session_min = -5\nintensity",
            "line 4: arms.aerobic.min_session_min: must be minutes >= 0",
        ),
        (
            "min_session_min = 30\nintensity",
            'min_session_min = "30"\nintensity',
            "line 4: arms.aerobic.min_session_min: must be minutes >= 0",
        ),
        (
            'qualify = "duration"',
            'qualify = "sometimes"',
            "line 11: arms.stretching.qualify: must be one of",
        ),
        (
            'qualify = "duration"',
            'qualify = "duration_in_band"',
            "line 11: arms.stretching.qualify: 'duration_in_band' needs an intensity band",
        ),
        ('scheme = "hrr"', 'scheme = "zones"', "line 5: arms.aerobic.intensity.scheme: must be"),
        (
            "low = 0.60, high = 0.80",
            "low = 0.80, high = 0.60",
            "line 5: arms.aerobic.intensity: needs 0 < low < high",
        ),
        (
            "low = 0.60, high = 0.80",
            "low = 0.60, high = 1.5",
            "line 5: arms.aerobic.intensity.high: 1.5 is above 1.2",
        ),
        (
            "low = 0.60, high = 0.80",
            "low = 0.60",
            "line 5: arms.aerobic.intensity.high: is required",
        ),
        (
            "low = 0.60, high = 0.80",
            "low = 0.6, high = 0.8, top = 1",
            "line 5: arms.aerobic.intensity.top: unknown key",
        ),
        (
            "min_session_min = 30\nintensity",
            "min_session_min = 30\ntrimp_per_week = 0\nintensity",
            "line 5: arms.aerobic.trimp_per_week: must be a number > 0",
        ),
        (
            "min_session_min = 30\nintensity",
            "minutes = 30\nintensity",
            "line 4: arms.aerobic.minutes: unknown key",
        ),
        (
            "sessions_per_week = 3\nmin_session_min = 30\nintensity",
            "min_session_min = 30\nintensity",
            "line 1: arms.aerobic.sessions_per_week: is required",
        ),
    ],
)
def test_every_bad_key_names_file_line_and_key(old: str, new: str, expected: str) -> None:
    assert old in EXAMPLE
    err = _error(EXAMPLE.replace(old, new, 1))
    assert str(err).startswith("study/arms.toml, " + expected), str(err)


def test_file_level_errors() -> None:
    assert "not valid TOML" in str(_error("[arms.a\nweeks = 1"))
    assert "line 2" in str(_error("x = 1\nweeks = ]\n"))  # tomllib says where
    assert str(_error("")) == "study/arms.toml: no [arms.NAME] tables"
    err = _error(EXAMPLE + "\n[study]\nname = 'LIFE'\n")
    assert str(err) == "study/arms.toml, line 13: study: unknown top-level key"
    assert "must be a table" in str(_error("arms = { a = 3 }"))


def test_read_prescriptions(tmp_path: Path) -> None:
    f = tmp_path / "arms.toml"
    f.write_text(EXAMPLE)
    assert [p.arm for p in read_prescriptions(f)] == ["aerobic", "stretching"]
    with pytest.raises(UsageError, match="cannot read"):
        read_prescriptions(tmp_path / "missing.toml")


# ------------------------------------------------------------------------ storage
def _pending(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT * FROM pending_recompute ORDER BY 1").fetchall()]


def test_save_get_and_round_trip(con: duckdb.DuckDBPyConnection) -> None:
    found = parse_prescriptions(EXAMPLE, "arms.toml")
    assert store.save(con, found, "/study/arms.toml") == []
    assert store.get(con, "nope") is None
    got = store.get(con, "aerobic")
    assert got == found[0]
    assert got is not None and got.definition == found[0].definition
    assert store.all_prescriptions(con) == found
    row = con.execute("SELECT origin, qualify_rule FROM prescriptions WHERE arm = 'stretching'")
    assert row.fetchone() == ("/study/arms.toml", "duration")


def test_save_upserts_by_arm_and_marks_the_arms_participants(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_p(con, "P001")  # arm aerobic (conftest)
    add_p(con, "P002")
    con.execute("UPDATE participants SET arm = 'stretching' WHERE participant_id = 'P002'")
    add_p(con, "P003")
    con.execute("UPDATE participants SET arm = 'other' WHERE participant_id = 'P003'")
    con.execute("DELETE FROM pending_recompute")
    store.save(con, parse_prescriptions(EXAMPLE, "a.toml"), "a.toml")
    con.execute("DELETE FROM pending_recompute")

    changed = parse_prescriptions(EXAMPLE.replace("weeks = 8", "weeks = 12", 1), "b.toml")[:1]
    assert store.save(con, changed, "b.toml") == ["P001"]
    assert _pending(con) == ["P001"]
    aerobic = store.get(con, "aerobic")
    assert aerobic is not None and aerobic.weeks == 12
    stretching = store.get(con, "stretching")  # not in the second file: kept
    assert stretching is not None and stretching.weeks == 8
    assert con.execute("SELECT count(*) FROM prescriptions").fetchone() == (2,)


def test_save_is_all_or_nothing(con: duckdb.DuckDBPyConnection) -> None:
    good = Prescription("aerobic", 8, 3.0)
    with pytest.raises(UsageError, match="given twice"):
        store.save(con, [good, Prescription("aerobic", 4, 2.0)], "x.toml")
    assert store.all_prescriptions(con) == []


def test_remove(con: duckdb.DuckDBPyConnection) -> None:
    add_p(con, "P001")
    store.save(con, parse_prescriptions(EXAMPLE, "a.toml"), "a.toml")
    con.execute("DELETE FROM pending_recompute")
    assert store.remove(con, "aerobic") == ["P001"]
    assert _pending(con) == ["P001"]
    assert [p.arm for p in store.all_prescriptions(con)] == ["stretching"]
    with pytest.raises(UsageError, match="no prescription for arm 'aerobic'") as info:
        store.remove(con, "aerobic")
    assert info.value.fix == "arms with one: stretching"


# ------------------------------------------------------------------------ commands
def run(db: Path, *args: str) -> tuple[int, str, str]:
    """``actidose --db DB ARGS``; the ``prescription`` group is invoked directly while the main
    group does not have it yet (so these tests leave the shared group as they found it)."""
    from actidose.cli import _Ctx, main
    from actidose.prescription_cli import prescription

    if args and args[0] == "prescription" and "prescription" not in main.commands:
        r = CliRunner().invoke(
            prescription, list(args[1:]), obj=_Ctx(str(db)), catch_exceptions=False
        )
    else:
        r = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_register_attaches_the_group() -> None:
    import click

    from actidose.prescription_cli import register

    group = click.Group("actidose")
    register(group)
    assert sorted(group.commands["prescription"].commands) == ["remove", "set", "show"]  # type: ignore[attr-defined]


@pytest.fixture
def arms_file(tmp_path: Path) -> Path:
    f = tmp_path / "arms.toml"
    f.write_text(EXAMPLE)
    return f


def _add(db: Path, pid: str, arm: str, *extra: str) -> None:
    code, _, err = run(
        db,
        "participant",
        "add",
        pid,
        "--sex",
        "f",
        "--birth-year",
        "1990",
        "--timezone",
        "Europe/London",
        "--arm",
        arm,
        "--hr-rest",
        "58",
        "--hr-max",
        "186",
        *extra,
    )
    assert code == 0, err


def test_prescription_set_show_and_remove(tmp_path: Path, arms_file: Path) -> None:
    db = tmp_path / "s.duckdb"
    _add(db, "P001", "aerobic", "--start-date", "2024-05-06")
    _add(db, "P002", "stretching")
    code, out, err = run(db, "prescription", "set", str(arms_file))
    assert code == 0, err
    assert "aerobic: 3 x 30 min/week at 60-80 % HRR for 8 weeks" in out
    assert out.splitlines()[-1] == "stored 2 arm(s); recomputed 2 participant(s)"
    code, out, _ = run(db, "prescription", "show", "--format", "json")
    shown = {r["arm"]: r for r in json.loads(out)}
    assert shown["aerobic"]["band_low"] == 0.6 and shown["aerobic"]["participants"] == 1
    assert shown["stretching"]["qualify_rule"] == "duration"
    assert shown["aerobic"]["origin"] == str(arms_file.resolve())
    code, out, _ = run(db, "prescription", "show", "--format", "csv")
    assert out.splitlines()[0].startswith("arm,weeks,sessions_per_week")
    code, out, _ = run(db, "prescription", "remove", "stretching")
    assert code == 0 and "recomputed 1 participant(s)" in out
    code, _, err = run(db, "prescription", "remove", "stretching")
    assert code == 2 and err.startswith("Error: no prescription for arm 'stretching'")


def test_prescription_set_bad_file_is_a_usage_error(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    bad = tmp_path / "arms.toml"
    bad.write_text(EXAMPLE.replace("low = 0.60", "low = 60"))
    code, _, err = run(db, "prescription", "set", str(bad))
    assert code == 2
    assert err.splitlines()[0] == (
        f"Error: {bad}, line 5: arms.aerobic.intensity.low: 60 looks like a percent; "
        "band edges are fractions"
    )
    assert "fix: write low = 0.6 for 60 %" in err
    assert not db.exists()  # the file is checked before the database is opened
    code, _, err = run(db, "prescription", "set", str(tmp_path / "none.toml"))
    assert code == 2


def test_adherence_two_of_three_sessions_in_week_one(tmp_path: Path, arms_file: Path) -> None:
    """The acceptance case: 2 of 3 prescribed sessions in week 1 reads 66.7 % that week."""
    db = tmp_path / "s.duckdb"
    _add(db, "P001", "aerobic", "--start-date", "2024-05-06")
    files = tmp_path / "P001"
    files.mkdir()
    # 35 minutes at 145 bpm: (145 - 58) / (186 - 58) = 0.68 of HR reserve, inside 60-80 %.
    for d in (0, 2, 8):
        activity_file(files / f"s{d}.fit", utc(2024, 5, 6 + d, 8), np.full(2100, 145.0))
    code, _, err = run(db, "import", str(files), "--participant", "P001")
    assert code == 0, err
    code, _, err = run(db, "prescription", "set", str(arms_file))
    assert code == 0, err
    sql = (
        "select week, week_start, sessions_done, round(adherence_pct, 1) as pct "
        "from adherence where participant_id = 'P001' order by week"
    )
    code, out, err = run(db, "query", sql, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 8
    assert rows[0] == {"week": 1, "week_start": "2024-05-06", "sessions_done": 2, "pct": 66.7}
    assert rows[1]["sessions_done"] == 1 and rows[1]["pct"] == 33.3
    code, out, _ = run(
        db,
        "query",
        "select weeks, sessions_done, sessions_prescribed from adherence_summary",
        "--format",
        "csv",
    )
    assert out.splitlines()[1] == "8,3,24.0"
    # Moving the start date a week later leaves the first two sessions before the prescription.
    code, _, err = run(db, "participant", "update", "P001", "--start-date", "2024-05-13")
    assert code == 0, err
    code, out, _ = run(db, "query", sql, "--format", "json")
    assert json.loads(out)[0]["sessions_done"] == 1
