"""Participants' start dates and versioned HR anchors: storage, the day lookup, the commands,
and recomputation with the version in force on each day."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.cli import main
from actidose.errors import InputError, UsageError
from actidose.storage import participants as parts
from actidose.storage.participants import AnchorVersion, anchor_versions, anchors_on_days

from .conftest import activity_file, add_p, utc


def _pending(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT * FROM pending_recompute ORDER BY 1").fetchall()]


# ------------------------------------------------------------------------ start date
def test_positional_construction_still_works_and_start_date_is_last() -> None:
    p = parts.Participant("P1", "UTC", "f", 1990, "aerobic", 60.0, 190.0)
    assert p.start_date is None
    q = parts.Participant("P1", "UTC", "f", 1990, "aerobic", 60.0, 190.0, date(2026, 3, 2))
    assert q.start_date == date(2026, 3, 2)


def test_start_date_is_stored_updated_and_cleared(con: duckdb.DuckDBPyConnection) -> None:
    parts.add(con, parts.Participant("P1", "UTC", start_date=date(2026, 3, 2)))
    got = parts.get(con, "P1")
    assert got is not None and got.start_date == date(2026, 3, 2)
    con.execute("DELETE FROM pending_recompute")
    assert parts.update(con, "P1", start_date=date(2026, 3, 9)) is True
    assert _pending(con) == ["P1"]
    assert con.execute("SELECT start_date FROM participants").fetchone() == (date(2026, 3, 9),)
    assert parts.update(con, "P1", start_date=date(2026, 3, 9)) is False  # unchanged
    assert parts.update(con, "P1", arm="aerobic") is True  # adherence depends on the arm
    parts.update(con, "P1", start_date=None)
    got = parts.get(con, "P1")
    assert got is not None and got.start_date is None


@pytest.mark.parametrize(
    "bad", [datetime(2026, 3, 2, 8, 0), "2026-03-02", date(1850, 1, 1)], ids=str
)
def test_start_date_is_validated(con: duckdb.DuckDBPyConnection, bad: object) -> None:
    with pytest.raises(UsageError, match="start date"):
        parts.add(con, parts.Participant("P1", "UTC", start_date=bad))  # type: ignore[arg-type]


def test_parse_date() -> None:
    assert parts.parse_date(" 2026-03-02 ") == date(2026, 3, 2)
    for bad in ("2026-3-2", "20260302", "2026-02-30", "tomorrow"):
        with pytest.raises(UsageError, match="is not a date"):
            parts.parse_date(bad, "start_date")


def test_roster_start_date_and_absent_columns_keep_values(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "participant_id,timezone,arm,hr_rest,start_date\n"
        "P1,Europe/London,aerobic,55,2026-03-02\n"
        "P2,Europe/London,stretching,,\n"
    )
    assert parts.import_roster(con, roster) == (2, 0)
    p1, p2 = parts.get(con, "P1"), parts.get(con, "P2")
    assert p1 is not None and p1.start_date == date(2026, 3, 2) and p1.hr_rest_bpm == 55.0
    assert p2 is not None and p2.start_date is None
    # A later roster without start_date (or hr_rest) columns keeps what is stored...
    roster.write_text("participant_id,timezone,arm\nP1,Europe/London,stretching\n")
    assert parts.import_roster(con, roster) == (0, 1)
    p1 = parts.get(con, "P1")
    assert p1 is not None and p1.start_date == date(2026, 3, 2) and p1.hr_rest_bpm == 55.0
    assert p1.arm == "stretching"
    # ... and an empty cell clears.
    roster.write_text("participant_id,timezone,start\nP1,Europe/London,\n")
    parts.import_roster(con, roster)
    p1 = parts.get(con, "P1")
    assert p1 is not None and p1.start_date is None and p1.hr_rest_bpm == 55.0


def test_roster_bad_start_date_names_the_line(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("participant_id,timezone,start_date\nP1,UTC,2026-03-02\nP2,UTC,02/03/2026\n")
    with pytest.raises(InputError) as info:
        parts.import_roster(con, roster)
    assert info.value.offset == 3 and "line 3" in str(info.value)
    assert str(roster) in str(info.value) and "02/03/2026" in str(info.value)
    assert parts.get(con, "P1") is None  # all or nothing


# ------------------------------------------------------------------------ anchor versions
def test_base_version_only(con: duckdb.DuckDBPyConnection) -> None:
    add_p(con, "P1", hr_rest=60.0, hr_max=None)  # HRmax from age: not entered
    assert anchor_versions(con, "P1") == [AnchorVersion(None, 60.0, None)]
    with pytest.raises(UsageError, match="unknown participant"):
        anchor_versions(con, "P404")


def test_versions_inherit_empty_fields(con: duckdb.DuckDBPyConnection) -> None:
    add_p(con, "P1", hr_rest=60.0, hr_max=190.0)
    con.execute("DELETE FROM pending_recompute")
    parts.add_anchor(con, "P1", date(2026, 4, 1), hr_max_bpm=185.0, note="lab test, visit 2")
    assert _pending(con) == ["P1"]
    parts.add_anchor(con, "P1", date(2026, 3, 1), hr_rest_bpm=52.0)
    assert anchor_versions(con, "P1") == [
        AnchorVersion(None, 60.0, 190.0),
        AnchorVersion(date(2026, 3, 1), 52.0, 190.0, None, False, True),
        AnchorVersion(date(2026, 4, 1), 52.0, 185.0, "lab test, visit 2", True, False),
    ]
    # Editing the base (participant update) flows into versions that inherit from it.
    parts.update(con, "P1", hr_max_bpm=195.0)
    assert [v.hr_max_bpm for v in anchor_versions(con, "P1")] == [195.0, 195.0, 185.0]


def test_upsert_keeps_values_not_given_and_remove(con: duckdb.DuckDBPyConnection) -> None:
    add_p(con, "P1")
    day = date(2026, 3, 1)
    parts.add_anchor(con, "P1", day, hr_rest_bpm=52.0, note="first")
    parts.add_anchor(con, "P1", day, hr_max_bpm=180.0)
    parts.add_anchor(con, "P1", day, note="corrected")
    assert con.execute("SELECT count(*) FROM hr_anchors").fetchone() == (1,)
    assert anchor_versions(con, "P1")[1] == AnchorVersion(day, 52.0, 180.0, "corrected")
    con.execute("DELETE FROM pending_recompute")
    parts.remove_anchor(con, "P1", day)
    assert _pending(con) == ["P1"]
    assert len(anchor_versions(con, "P1")) == 1
    with pytest.raises(UsageError, match="no anchor version from 2026-03-01"):
        parts.remove_anchor(con, "P1", day)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hr_rest_bpm": 20.0}, "outside 25-150"),
        ({"hr_max_bpm": 260.0}, "outside 80-250"),
        ({}, "needs a resting or a maximum HR"),
        ({"note": "only a note"}, "needs a resting or a maximum HR"),
        ({"hr_rest_bpm": 150.0}, None),  # below the inherited 190: fine
        ({"hr_max_bpm": 100.0, "hr_rest_bpm": 100.0}, "must be above resting HR"),
        ({"hr_max_bpm": 99.0}, None),  # above the inherited 60: fine
    ],
)
def test_add_anchor_validates(
    con: duckdb.DuckDBPyConnection, kwargs: dict[str, object], message: str | None
) -> None:
    add_p(con, "P1", hr_rest=60.0, hr_max=190.0)
    if message is None:
        parts.add_anchor(con, "P1", date(2026, 3, 1), **kwargs)  # type: ignore[arg-type]
        return
    with pytest.raises(UsageError, match=message):
        parts.add_anchor(con, "P1", date(2026, 3, 1), **kwargs)  # type: ignore[arg-type]
    assert con.execute("SELECT count(*) FROM hr_anchors").fetchone() == (0,)


def test_max_above_rest_is_checked_against_inherited_values(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_p(con, "P1", hr_rest=100.0, hr_max=190.0)
    # A maximum below the resting HR in force (inherited from the base) is refused.
    with pytest.raises(
        UsageError, match=r"maximum HR 90 must be above resting HR 100 \(from 2026-03-01"
    ):
        parts.add_anchor(con, "P1", date(2026, 3, 1), hr_max_bpm=90.0)
    assert con.execute("SELECT count(*) FROM hr_anchors").fetchone() == (0,)
    parts.add_anchor(con, "P1", date(2026, 3, 1), hr_max_bpm=120.0)
    # A later resting HR above the inherited maximum is refused.
    with pytest.raises(UsageError, match="from 2026-04-01"):
        parts.add_anchor(con, "P1", date(2026, 4, 1), hr_rest_bpm=125.0)
    # So is an earlier resting HR that a later version would inherit.
    with pytest.raises(UsageError, match="from 2026-03-01"):
        parts.add_anchor(con, "P1", date(2026, 2, 1), hr_rest_bpm=130.0)
    assert len(anchor_versions(con, "P1")) == 2
    # Removing a version re-checks those that inherited from it.
    parts.add_anchor(con, "P1", date(2026, 5, 1), hr_max_bpm=200.0)
    parts.add_anchor(con, "P1", date(2026, 6, 1), hr_rest_bpm=150.0)
    with pytest.raises(UsageError, match="maximum HR 120 must be above resting HR 150"):
        parts.remove_anchor(con, "P1", date(2026, 5, 1))
    assert len(anchor_versions(con, "P1")) == 4
    # Changing the base to something a version inherits badly is refused (rolled back).
    with pytest.raises(UsageError, match="must be above resting HR"):
        parts.update(con, "P1", hr_rest_bpm=125.0)
    p = parts.get(con, "P1")
    assert p is not None and p.hr_rest_bpm == 100.0


def test_base_entered_max_only(con: duckdb.DuckDBPyConnection) -> None:
    add_p(con, "P1", hr_rest=None, hr_max=None)
    parts.add_anchor(con, "P1", date(2026, 3, 1), hr_rest_bpm=55.0)
    assert anchor_versions(con, "P1") == [
        AnchorVersion(None, None, None),
        AnchorVersion(date(2026, 3, 1), 55.0, None),
    ]


def test_anchor_needs_a_date_and_a_participant(con: duckdb.DuckDBPyConnection) -> None:
    add_p(con, "P1")
    with pytest.raises(UsageError, match="valid-from must be a date"):
        parts.add_anchor(con, "P1", "2026-03-01", hr_rest_bpm=50.0)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="unknown participant"):
        parts.add_anchor(con, "P404", date(2026, 3, 1), hr_rest_bpm=50.0)


# ------------------------------------------------------------------------ anchors on days
VERSIONS = [
    AnchorVersion(None, 60.0, None),
    AnchorVersion(date(2026, 3, 1), 52.0, None),
    AnchorVersion(date(2026, 4, 1), None, 185.0),
]


def test_anchors_on_days() -> None:
    d = np.array(
        ["2026-02-28", "2026-03-01", "2026-03-31", "2026-04-01", "2027-01-01", "NaT"],
        dtype="datetime64[D]",
    )
    rest, mx, vf = anchors_on_days(VERSIONS, d)
    assert rest[:5].tolist() == [60.0, 52.0, 52.0, 52.0, 52.0] and math.isnan(rest[5])
    assert np.isnan(mx[:3]).all() and mx[3:5].tolist() == [185.0, 185.0] and np.isnan(mx[5])
    assert np.isnat(vf[0]) and np.isnat(vf[5])
    assert vf[1:5].astype(str).tolist() == ["2026-03-01"] * 2 + ["2026-04-01"] * 2


def test_anchors_on_days_edge_cases() -> None:
    empty = anchors_on_days(VERSIONS, np.array([], dtype="datetime64[D]"))
    assert [a.size for a in empty] == [0, 0, 0]
    rest, mx, vf = anchors_on_days([], np.array(["2026-03-01"], dtype="datetime64[D]"))
    assert math.isnan(rest[0]) and math.isnan(mx[0]) and np.isnat(vf[0])
    # Without a base version, days before the first version have nothing entered; order of
    # the versions does not matter.
    rest, _, vf = anchors_on_days(
        VERSIONS[:0:-1], np.array(["2026-01-01", "2026-03-05"], dtype="datetime64[D]")
    )
    assert math.isnan(rest[0]) and rest[1] == 52.0 and np.isnat(vf[0])


@settings(max_examples=50, deadline=None)
@given(
    starts=st.lists(st.integers(0, 200), unique=True, max_size=6),
    values=st.lists(st.one_of(st.none(), st.floats(40, 100)), min_size=7, max_size=7),
    probes=st.lists(st.integers(-20, 260), max_size=30),
)
def test_anchors_on_days_matches_a_plain_lookup(
    starts: list[int], values: list[float | None], probes: list[int]
) -> None:
    origin = date(2026, 1, 1).toordinal()
    versions = [AnchorVersion(None, values[0], None)] + [
        AnchorVersion(date.fromordinal(origin + s), values[i + 1], None)
        for i, s in enumerate(starts)
    ]
    d = np.datetime64("2026-01-01") + np.asarray(probes, np.int64).astype("timedelta64[D]")
    rest, _, vf = anchors_on_days(versions, d)
    for i, p in enumerate(probes):
        in_force = [
            v for v in versions if v.valid_from is None or v.valid_from.toordinal() - origin <= p
        ]
        in_force.sort(key=lambda v: v.valid_from or date.min)
        known = [v.hr_rest_bpm for v in in_force if v.hr_rest_bpm is not None]
        expected = known[-1] if known else math.nan
        assert rest[i] == expected or (math.isnan(expected) and math.isnan(rest[i]))
        last = in_force[-1].valid_from
        assert (np.isnat(vf[i]) and last is None) or vf[i] == np.datetime64(last, "D")


# ------------------------------------------------------------------------ commands
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
        "--start-date",
        "2024-05-06",
    )
    assert code == 0, err
    return db


def _query(db: Path, sql: str) -> list[dict[str, object]]:
    code, out, err = run(db, "query", sql, "--format", "json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_cli_start_date_add_update_clear_list(study: Path) -> None:
    rows = _query(study, "select start_date from participants")
    assert rows == [{"start_date": "2024-05-06"}]
    code, out, _ = run(study, "participant", "list", "--format", "json")
    listed = json.loads(out)[0]
    assert listed["start_date"] == "2024-05-06" and listed["anchor_versions"] == 0
    code, _, _ = run(study, "participant", "update", "P001", "--start-date", "2024-05-13")
    assert code == 0
    assert _query(study, "select start_date from participants")[0]["start_date"] == "2024-05-13"
    code, _, _ = run(study, "participant", "update", "P001", "--clear", "start-date")
    assert code == 0
    assert _query(study, "select start_date from participants")[0]["start_date"] is None
    code, _, err = run(study, "participant", "update", "P001", "--start-date", "13/05/2024")
    assert code == 2 and "--start-date" in err


def test_cli_roster_start_date(study: Path, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("participant_id,timezone,arm,start_date\nP002,UTC,stretching,2024-06-03\n")
    code, out, err = run(study, "participant", "import", str(roster))
    assert code == 0, err
    code, out, _ = run(study, "participant", "list", "--format", "csv")
    assert "P002,,,UTC,stretching,2024-06-03" in out


def test_cli_anchor_versions(study: Path) -> None:
    code, out, err = run(
        study,
        "participant",
        "anchor",
        "P001",
        "--valid-from",
        "2024-05-08",
        "--hr-rest",
        "52",
        "--note",
        "lab test",
    )
    assert code == 0, err
    assert out.strip().startswith("stored anchors of P001 from 2024-05-08")
    code, _, _ = run(
        study, "participant", "anchor", "P001", "--valid-from", "2024-06-01", "--hr-max", "190"
    )
    assert code == 0
    code, out, _ = run(study, "participant", "anchors", "P001", "--format", "json")
    assert json.loads(out) == [
        {
            "valid_from": "base",
            "hr_rest_bpm": 58.0,
            "hr_max_bpm": 186.0,
            "hr_rest_inherited": False,
            "hr_max_inherited": False,
            "note": None,
        },
        {
            "valid_from": "2024-05-08",
            "hr_rest_bpm": 52.0,
            "hr_max_bpm": 186.0,
            "hr_rest_inherited": False,
            "hr_max_inherited": True,
            "note": "lab test",
        },
        {
            "valid_from": "2024-06-01",
            "hr_rest_bpm": 52.0,
            "hr_max_bpm": 190.0,
            "hr_rest_inherited": True,
            "hr_max_inherited": False,
            "note": None,
        },
    ]
    code, out, _ = run(study, "participant", "anchors", "P001")
    assert "base" in out and "(3 rows)" in out
    code, out, _ = run(
        study, "participant", "anchor", "P001", "--valid-from", "2024-06-01", "--remove"
    )
    assert code == 0 and out.startswith("removed anchors of P001 from 2024-06-01")
    code, out, _ = run(study, "participant", "anchors", "P001", "--format", "csv")
    assert len(out.splitlines()) == 3


def test_cli_anchor_errors(study: Path) -> None:
    code, _, err = run(study, "participant", "anchor", "P001", "--valid-from", "2024-05-08")
    assert code == 2 and "needs a resting or a maximum HR" in err
    code, _, err = run(
        study, "participant", "anchor", "P001", "--valid-from", "2024-05-08", "--hr-max", "50"
    )
    assert code == 2 and err.startswith("Error: maximum HR 50 bpm is outside 80-250")
    code, _, err = run(
        study,
        "participant",
        "anchor",
        "P001",
        "--valid-from",
        "2024-05-08",
        "--hr-max",
        "90",
        "--hr-rest",
        "95",
    )
    assert code == 2 and "must be above resting HR" in err and "fix:" in err
    code, _, err = run(
        study,
        "participant",
        "anchor",
        "P001",
        "--valid-from",
        "2024-05-08",
        "--remove",
        "--hr-rest",
        "50",
    )
    assert code == 2 and "--remove takes no values" in err
    code, _, err = run(
        study, "participant", "anchor", "P001", "--valid-from", "2024-05-09", "--remove"
    )
    assert code == 2 and "no anchor version from 2024-05-09" in err
    code, _, err = run(
        study, "participant", "anchor", "P404", "--valid-from", "2024-05-08", "--hr-rest", "50"
    )
    assert code == 2 and "unknown participant 'P404'" in err
    code, _, err = run(study, "participant", "anchor", "P001", "--hr-rest", "50")
    assert code == 2 and "--valid-from" in err
    code, _, err = run(study, "participant", "anchors", "P404")
    assert code == 2 and "unknown participant" in err


def test_changing_anchors_recomputes_with_the_version_in_force(study: Path, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    for d in (0, 4):  # sessions on 6 and 10 May 2024
        activity_file(files / f"s{d}.fit", utc(2024, 5, 6 + d, 8), np.full(1800, 145.0))
    code, _, err = run(study, "import", str(files), "-P", "P001")
    assert code == 0, err
    sql = "select day, hr_rest_bpm, trimp_banister from sessions order by day"
    before = _query(study, sql)
    assert [r["hr_rest_bpm"] for r in before] == [58.0, 58.0]
    assert before[0]["trimp_banister"] == before[1]["trimp_banister"]
    code, out, err = run(
        study, "participant", "anchor", "P001", "--valid-from", "2024-05-08", "--hr-rest", "50"
    )
    assert code == 0 and "recomputed" in out, err
    after = _query(study, sql)
    assert [r["hr_rest_bpm"] for r in after] == [58.0, 50.0]
    # A lower resting HR makes the same 145 bpm a larger share of the reserve: more TRIMP.
    assert after[0]["trimp_banister"] == before[0]["trimp_banister"]
    assert float(after[1]["trimp_banister"]) > float(before[1]["trimp_banister"])  # type: ignore[arg-type]
    code, _, _ = run(
        study, "participant", "anchor", "P001", "--valid-from", "2024-05-08", "--remove"
    )
    assert code == 0
    assert _query(study, sql) == before
