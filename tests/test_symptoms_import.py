"""Symptom CSV import: layouts, zones and DST, rejected lines, idempotency, conflicts, scores."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.dose.instruments import BUILTINS, Instrument, parse_definitions
from actidose.errors import InputError, UsageError
from actidose.ingest import symptoms as ingest
from actidose.ingest.symptoms import item_number, parse_symptoms
from actidose.storage import symptoms as store

from .conftest import add_p

HEADER = "participant_id,timestamp,instrument,item,value\n"


def write(tmp: Path, name: str, text: str, *, bom: bool = False) -> Path:
    p = tmp / name
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return p


def stored(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return con.execute(
        "SELECT participant_id, epoch_us(ts), instrument, item, value, utc_offset_s, file_id, "
        "line FROM symptoms ORDER BY participant_id, instrument, ts, item"
    ).fetchall()


def us(iso: str) -> int:
    return int(np.datetime64(iso, "us").astype(np.int64))


def phq_rows(pid: str, ts: str, values: list[int | None]) -> str:
    return "".join(f"{pid},{ts},phq9,{i + 1},{v}\n" for i, v in enumerate(values) if v is not None)


# ---------------------------------------------------------------------------------- times
def test_long_file_with_offsets_and_participant_zones(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "P1", tz="Europe/London")
    add_p(con, "P2", tz="America/New_York")
    f = write(
        tmp_path,
        "s.csv",
        HEADER
        + "P1,2024-05-01T08:00:00Z,phq9,1,2\n"
        + "P1,2024-05-01T09:00:00+01:00,phq9,2,1\n"
        + "P1,2024-05-01 09:00,phq9,3,0\n"  # naive: London summer time
        + "P2,2024-05-01T09:00,phq9,1,3\n"  # naive: New York daylight time
        + "P2,2024-05-01T09:00:00.5-0400,phq9,2,3\n",
    )
    res = store.import_file(con, f)
    assert res.rejected == [] and res.n_values == 5 and res.layout == "long"
    assert res.participants == ["P1", "P2"]
    rows = stored(con)
    assert [(r[0], r[1], r[3], r[5]) for r in rows] == [
        ("P1", us("2024-05-01T08:00"), 1, 0),
        ("P1", us("2024-05-01T08:00"), 2, 3600),
        ("P1", us("2024-05-01T08:00"), 3, 3600),
        ("P2", us("2024-05-01T13:00"), 1, -14400),
        ("P2", us("2024-05-01T13:00:00.5"), 2, -14400),
    ]
    pending = {r[0] for r in con.execute("SELECT * FROM pending_recompute").fetchall()}
    assert {"P1", "P2"} <= pending


def test_naive_times_across_a_dst_change_in_two_zones(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "L", tz="Europe/London")  # clocks go forward on 2024-03-31
    add_p(con, "N", tz="America/New_York")  # ... on 2024-03-10
    f = write(
        tmp_path,
        "s.csv",
        HEADER
        + "L,2024-03-30T09:00,mood,1,5\n"
        + "L,2024-04-01T09:00,mood,1,6\n"
        + "N,2024-03-09T09:00,mood,1,5\n"
        + "N,2024-03-11T09:00,mood,1,6\n",
    )
    res = store.import_file(con, f)
    assert res.rejected == []
    got = [(r[0], r[1], r[5]) for r in stored(con)]
    assert got == [
        ("L", us("2024-03-30T09:00"), 0),
        ("L", us("2024-04-01T08:00"), 3600),
        ("N", us("2024-03-09T14:00"), -18000),
        ("N", us("2024-03-11T13:00"), -14400),
    ]


def test_dst_gap_and_repeated_hour_are_rejected_unless_an_offset_is_written(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "L", tz="Europe/London")
    add_p(con, "N", tz="America/New_York")
    f = write(
        tmp_path,
        "s.csv",
        HEADER
        + "L,2024-03-31T01:30,mood,1,1\n"  # line 2: skipped hour
        + "L,2024-10-27T01:30,mood,1,2\n"  # line 3: repeated hour
        + "L,2024-10-27T01:30+01:00,mood,1,3\n"  # line 4: first pass, written
        + "L,2024-10-27T01:30+00:00,mood,1,4\n"  # line 5: second pass, written
        + "N,2024-03-10T02:30,mood,1,5\n",  # line 6: skipped hour in New York
    )
    res = store.import_file(con, f)
    lines = [ln for ln, _ in res.rejected]
    assert lines == [2, 3, 6]
    assert "does not exist in Europe/London" in res.rejected[0][1]
    assert "happens twice in Europe/London" in res.rejected[1][1]
    assert "+01:00 for the first, +00:00 for the second" in res.rejected[1][1]
    assert "does not exist in America/New_York" in res.rejected[2][1]
    assert [(r[1], r[4]) for r in stored(con)] == [
        (us("2024-10-27T00:30"), 3.0),
        (us("2024-10-27T01:30"), 4.0),
    ]


def test_date_only_is_local_midnight_and_timezone_override(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "P1", tz="Europe/London")
    f = write(tmp_path, "s.csv", HEADER + "P1,2024-05-02,mood,1,4\n")
    store.import_file(con, f)
    assert stored(con)[0][1] == us("2024-05-01T23:00")
    g = write(tmp_path, "t.csv", HEADER + "P1,2024-05-03T09:00,mood,1,4\n")
    store.import_file(con, g, timezone="Asia/Tokyo")
    assert stored(con)[1][1] == us("2024-05-03T00:00")
    assert stored(con)[1][5] == 9 * 3600


def test_separate_date_and_time_columns_are_joined(tmp_path: Path) -> None:
    text = "participant,date,time,instrument,question,response\nP1,2024-05-01,08:15,mood,1,3\n"
    r = parse_symptoms(text.encode(), path="x.csv", zones={"P1": "UTC"}, instruments=BUILTINS)
    assert r.rejected == [] and r.ts_us.tolist() == [us("2024-05-01T08:15")]


# ---------------------------------------------------------------------------------- acceptance
def test_bad_rows_are_reported_by_line_and_the_rest_imported(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "P1")
    f = write(
        tmp_path,
        "s.csv",
        HEADER
        + "P1,2024-05-01T08:00Z,phq9,1,2\n"  # 2 good
        + "P9,2024-05-01T08:00Z,phq9,2,1\n"  # 3 unknown participant
        + "P1,yesterday,phq9,3,1\n"  # 4 unparsable time
        + "P1,2024-05-01T08:00Z,phq9,4,7\n"  # 5 value out of range
        + "\n"  # 6 blank: ignored
        + "P1,2024-05-01T08:00Z,phq9,5,1\n"  # 7 good
        + "P1,2024-05-01T08:00Z,phq9,12,1\n"  # 8 item out of range
        + "P1,2024-05-01T08:00Z,phq9,6,two\n"  # 9 value not a number
        + "P1,2024-05-01T08:00Z,phq9,x,1\n"  # 10 not an item
        + ",2024-05-01T08:00Z,phq9,7,1\n"  # 11 no participant
        + 'P1,"2024-05-01T08:00Z",shaps,1,4\n',  # 12 good
    )
    res = store.import_file(con, f)
    assert res.rejected == [
        (3, "unknown participant 'P9'"),
        (
            4,
            "time 'yesterday' is not a date-time (ISO 8601, e.g. 2024-05-01T08:30, "
            "2024-05-01T08:30+01:00 or 2024-05-01)",
        ),
        (5, "value 7 is outside 0..3 of phq9"),
        (8, "item 12 is outside 1..9 of phq9"),
        (9, "value 'two' is not a number"),
        (10, "item 'x' is not an item number (1, q1, item1, ...)"),
        (11, "missing participant_id"),
    ]
    assert res.n_values == 3 and res.n_lines == 10  # the blank line is not counted
    assert [(r[2], r[3], r[7]) for r in stored(con)] == [
        ("phq9", 1, 2),
        ("phq9", 5, 7),
        ("shaps", 1, 12),
    ]
    row = con.execute(
        "SELECT n_lines, n_values, n_rejected, rejected FROM symptom_files"
    ).fetchone()
    assert row is not None and row[:3] == (10, 3, 7)
    assert json.loads(row[3])[0] == {"line": 3, "reason": "unknown participant 'P9'"}


def test_line_numbers_count_physical_lines_of_quoted_fields(tmp_path: Path) -> None:
    text = (
        "participant_id,timestamp,instrument,item,value,note\n"
        'P1,2024-05-01T08:00Z,mood,1,3,"two\nlines"\n'
        "P1,2024-05-01T08:00Z,mood,2,oops,\n"
    )
    r = parse_symptoms(text.encode(), path="x.csv", zones={"P1": "UTC"}, instruments={})
    assert r.rejected == [(4, "value 'oops' is not a number")]
    assert r.line.tolist() == [2]
    assert any("columns ignored: note" in w for w in r.warnings)


def test_extra_fields_reject_the_row(tmp_path: Path) -> None:
    text = HEADER + "P1,2024-05-01T08:00Z,mood,1,3,surprise\nP1,2024-05-01T08:00Z,mood,2,3\n"
    r = parse_symptoms(text.encode(), path="x.csv", zones={"P1": "UTC"}, instruments={})
    assert r.rejected == [(2, "has 6 fields, the header has 5")]
    assert r.item.tolist() == [2]


def test_duplicates_inside_one_file(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con, "P1")
    f = write(
        tmp_path,
        "s.csv",
        HEADER
        + "P1,2024-05-01T08:00Z,phq9,1,2\n"
        + "P1,2024-05-01T09:00+01:00,phq9,1,2\n"  # same instant, same value: kept once
        + "P1,2024-05-01T08:00Z,phq9,2,1\n"
        + "P1,2024-05-01T08:00Z,phq9,2,3\n",  # same item, different value: both refused
    )
    res = store.import_file(con, f)
    assert [ln for ln, _ in res.rejected] == [4, 5]
    assert "has different values on lines 4, 5" in res.rejected[0][1]
    assert [(r[3], r[4], r[7]) for r in stored(con)] == [(1, 2.0, 2)]


# ---------------------------------------------------------------------------------- layouts
def test_wide_file_semicolons_decimal_comma_and_missing_cells(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "P1")
    defs = parse_definitions("[instruments.vas]\nitems = 3\nmin = 0\nmax = 10\n", "d.toml")
    store.sync_instruments(con, defs, "d.toml")
    f = write(
        tmp_path,
        "w.csv",
        "Participant ID;Timestamp;VAS_1;vas2;Item 3;comment\n"
        "P1;2024-05-01T08:00Z;7,5;;3;fine\n"  # item 2 not answered
        "P1;2024-05-02T08:00Z;11;x;4;\n"  # two bad cells, item 3 good
        "P2;2024-05-03T08:00Z;1;1;1;\n",  # unknown participant: whole row
        bom=True,
    )
    res = store.import_file(con, f, instrument="vas")
    assert res.layout == "wide" and res.instrument == "vas"
    assert res.rejected == [
        (3, "column 'VAS_1': value 11 is outside 0..10 of vas"),
        (3, "column 'vas2': value 'x' is not a number"),
        (4, "unknown participant 'P2'"),
    ]
    assert res.warnings == ["columns ignored: comment"]
    assert [(r[3], r[4], r[7]) for r in stored(con)] == [(1, 7.5, 2), (3, 3.0, 2), (3, 4.0, 3)]
    assert con.execute("SELECT layout, instrument FROM symptom_files").fetchone() == (
        "wide",
        "vas",
    )


def test_wide_file_tabs_and_item_columns_outside_the_instrument(tmp_path: Path) -> None:
    text = "id\tts\tq1\tq2\tq10\nP1\t2024-05-01T08:00Z\t1\t2\t\nP1\t2024-05-02T08:00Z\t1\t2\t3\n"
    r = parse_symptoms(
        text.encode(), path="w.tsv", zones={"P1": "UTC"}, instruments=BUILTINS, instrument="PHQ-9"
    )
    assert r.rejected == [(3, "column 'q10': item 10 is outside 1..9 of phq9")]
    assert r.item.tolist() == [1, 2, 1, 2]


def test_wide_file_needs_an_instrument_and_item_columns(tmp_path: Path) -> None:
    text = b"participant_id,timestamp,q1\nP1,2024-05-01T08:00Z,1\n"
    with pytest.raises(UsageError, match="say which instrument"):
        parse_symptoms(text, path="w.csv", zones={"P1": "UTC"}, instruments={})
    with pytest.raises(InputError, match="line 1: no item columns for phq9"):
        parse_symptoms(
            b"participant_id,timestamp,notes\n",
            path="w.csv",
            zones={},
            instruments={},
            instrument="phq9",
        )
    with pytest.raises(InputError, match="columns 'q1' and 'item1' both give item 1"):
        parse_symptoms(
            b"participant_id,timestamp,q1,item1\n",
            path="w.csv",
            zones={},
            instruments={},
            instrument="phq9",
        )


def test_header_problems_refuse_the_file() -> None:
    with pytest.raises(InputError, match="line 1: no participant_id column"):
        parse_symptoms(b"who,timestamp,instrument,item,value\n", path="x", zones={}, instruments={})
    with pytest.raises(InputError, match="empty file"):
        parse_symptoms(b"\n\n", path="x", zones={}, instruments={})
    with pytest.raises(InputError, match="columns 'Value' and 'value' both give the value"):
        parse_symptoms(b"pid,ts,instrument,item,Value,value\n", path="x", zones={}, instruments={})


def test_the_most_specific_column_wins() -> None:
    text = (
        "id,participant_id,date,timestamp,instrument,item,value\n"
        "7,P1,2024-05-01,2024-05-01T09:00Z,mood,1,3\n"
    )
    r = parse_symptoms(text.encode(), path="x", zones={"P1": "UTC"}, instruments={})
    assert r.rejected == [] and r.participant_id.tolist() == ["P1"]
    assert r.ts_us.tolist() == [us("2024-05-01T09:00")]
    assert "columns ignored: id, date" in r.warnings


def test_item_names() -> None:
    assert item_number("3") == 3
    assert item_number("Q03") == 3
    assert item_number("item_12") == 12
    assert item_number("Item 4") == 4
    assert item_number("phq9_2", "phq9") == 2
    assert item_number("PHQ-9 2", "phq9") == 2
    assert item_number("phq92", "phq9") == 2
    assert item_number("3.0") == 3
    assert item_number("notes") is None
    assert item_number("gad7_1", "phq9") is None


# ---------------------------------------------------------------------------------- not text
def test_non_text_file_is_refused_and_nothing_stored(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "P1")
    f = tmp_path / "x.csv"
    f.write_bytes(HEADER.encode() + b"P1,2024-05-01T08:00Z,phq9,1,\x00\x01\n")
    with pytest.raises(InputError, match=r"not a text file: NUL byte at offset 75 \(line 2\)"):
        store.import_file(con, f)
    g = tmp_path / "y.csv"
    g.write_bytes(HEADER.encode() + b"P1,2024-05-01T08:00Z,caf\xe9,1,1\n")
    with pytest.raises(
        InputError, match=r"not UTF-8 text: undecodable byte at offset 71 \(line 2\)"
    ):
        store.import_file(con, g)
    assert con.execute("SELECT count(*) FROM symptom_files").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM symptoms").fetchone() == (0,)


def test_too_large_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_BYTES", 10)
    f = write(tmp_path, "s.csv", HEADER)
    with pytest.raises(InputError, match="larger than"):
        ingest.read_symptom_file(f)


# ---------------------------------------------------------------------------------- idempotency
def test_same_file_twice_changes_nothing(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con, "P1")
    f = write(tmp_path, "s.csv", HEADER + phq_rows("P1", "2024-05-01T08:00Z", [1] * 9))
    first = store.import_file(con, f)
    before = (stored(con), con.execute("SELECT * FROM symptom_files").fetchall())
    con.execute("DELETE FROM pending_recompute")
    copy = write(tmp_path, "copy.csv", f.read_text())  # same bytes, other name
    again = store.import_file(con, copy)
    assert first.n_values == 9 and not first.already_imported
    assert again.already_imported and again.n_values == 0 and again.file_id == first.file_id
    assert (stored(con), con.execute("SELECT * FROM symptom_files").fetchall()) == before
    assert con.execute("SELECT count(*) FROM pending_recompute").fetchone() == (0,)


def test_file_with_rejected_lines_is_read_again(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "P1")
    f = write(
        tmp_path,
        "s.csv",
        HEADER + "P1,2024-05-01T08:00Z,mood,1,3\nP2,2024-05-01T08:00Z,mood,1,4\n",
    )
    first = store.import_file(con, f)
    assert first.rejected == [(3, "unknown participant 'P2'")]
    row = con.execute("SELECT * FROM symptom_files").fetchall()
    same = store.import_file(con, f)  # nothing changed: nothing written
    assert same.n_values == 0 and same.n_unchanged == 1 and len(same.rejected) == 1
    assert con.execute("SELECT * FROM symptom_files").fetchall() == row
    add_p(con, "P2")
    later = store.import_file(con, f)
    assert later.rejected == [] and later.n_values == 1 and later.participants == ["P2"]
    assert later.file_id == first.file_id
    assert con.execute("SELECT n_values, n_rejected FROM symptom_files").fetchall() == [(2, 0)]
    assert store.import_file(con, f).already_imported


# ---------------------------------------------------------------------------------- conflicts
def test_conflicting_value_from_another_file_and_replace(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "P1")
    a = write(
        tmp_path,
        "a.csv",
        HEADER + "P1,2024-05-01T08:00Z,phq9,1,2\nP1,2024-05-01T08:00Z,phq9,3,1\n",
    )
    store.import_file(con, a)
    b = write(
        tmp_path,
        "b.csv",
        HEADER
        + "P1,2024-05-01T08:00Z,phq9,3,1\n"  # same value as stored: skipped silently
        + "P1,2024-05-01T09:00+01:00,phq9,1,3\n"  # same key as stored, other value: conflict
        + "P1,2024-05-01T08:00Z,phq9,2,1\n",  # new
    )
    res = store.import_file(con, b)
    assert res.n_values == 1 and res.n_unchanged == 1
    assert res.rejected == [
        (
            3,
            f"phq9 item 1: value 3 conflicts with the value 2 stored from {a.absolute()} "
            "line 2 (--replace overwrites it)",
        )
    ]
    assert [(r[3], r[4]) for r in stored(con)] == [(1, 2.0), (2, 1.0), (3, 1.0)]
    c = write(tmp_path, "c.csv", HEADER + "P1,2024-05-01T08:00Z,phq9,1,0\n")
    con.execute("DELETE FROM pending_recompute")
    rep = store.import_file(con, c, replace=True)
    assert rep.rejected == [] and rep.n_values == 1 and rep.n_replaced == 1
    assert rep.participants == ["P1"]
    got = stored(con)
    assert (got[0][3], got[0][4], got[0][6], got[0][7]) == (1, 0.0, rep.file_id, 2)
    assert con.execute("SELECT * FROM pending_recompute").fetchall() == [("P1",)]


# ---------------------------------------------------------------------------------- instruments
def test_builtins_and_study_definitions(con: duckdb.DuckDBPyConnection) -> None:
    assert store.ensure_builtins(con) == ["phq9", "shaps"]
    assert store.ensure_builtins(con) == []
    defs = store.instruments(con)
    assert defs["phq9"] == BUILTINS["phq9"]
    assert defs["fatigue"] == Instrument.default("fatigue") and "fatigue" not in defs
    mine = parse_definitions("[instruments.phq9]\nitems = 9\nmin = 0\nmax = 3\n", "d.toml")
    assert store.sync_instruments(con, mine, "d.toml") == ["phq9"]
    assert store.sync_instruments(con, mine, "d.toml") == []
    assert store.instruments(con)["phq9"].scoring == "sum"
    store.ensure_builtins(con)  # does not put the built-in back
    assert store.instruments(con)["phq9"].scoring == "sum"
    origin = con.execute("SELECT origin FROM instruments WHERE instrument = 'phq9'").fetchone()
    assert origin == ("d.toml",)


def test_redefining_an_instrument_marks_its_participants(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "P1")
    add_p(con, "P2")
    f = write(
        tmp_path,
        "s.csv",
        HEADER + "P1,2024-05-01T08:00Z,mood,1,3\nP2,2024-05-01T08:00Z,sleep,1,4\n",
    )
    store.import_file(con, f)
    con.execute("DELETE FROM pending_recompute")
    defs = parse_definitions("[instruments.mood]\nitems = 1\nmin = 0\nmax = 5\n", "d.toml")
    store.sync_instruments(con, defs, "d.toml")
    assert con.execute("SELECT * FROM pending_recompute").fetchall() == [("P1",)]


def test_defined_range_applies_to_custom_instruments(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "P1")
    defs = parse_definitions("[instruments.fatigue]\nitems = 1\nmin = 0\nmax = 10\n", "d.toml")
    store.sync_instruments(con, defs, "d.toml")
    f = write(
        tmp_path,
        "s.csv",
        HEADER + "P1,2024-05-01T08:00Z,fatigue,1,11\nP1,2024-05-01T08:00Z,fatigue,2,1\n"
        "P1,2024-05-01T08:00Z,mood,7,-40\n",
    )
    res = store.import_file(con, f)
    assert res.rejected == [
        (2, "value 11 is outside 0..10 of fatigue"),
        (3, "item 2 is outside 1..1 of fatigue"),
    ]
    assert any("no definition for mood" in w for w in res.warnings)


def test_recall_days(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    add_p(con, "P1")
    store.import_file(con, write(tmp_path, "s.csv", HEADER + "P1,2024-05-01,mood,1,3\n"))
    defs = parse_definitions("[instruments.mfi]\nitems = 20\nrecall_days = 7\n", "d.toml")
    store.sync_instruments(con, defs, "d.toml")
    assert store.recall_days(con) == {"mfi": 7.0, "mood": 1.0, "phq9": 14.0, "shaps": 3.0}


# ---------------------------------------------------------------------------------- scores
def test_score_table_rows_fit_symptom_scores(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_p(con, "P1", tz="Europe/London")
    text = (
        HEADER
        + phq_rows("P1", "2024-05-01T23:30Z", [1, 2, 3, 0, 1, 2, 3, 0, 1])  # 13, next local day
        + phq_rows("P1", "2024-05-08T08:00Z", [1, 2, 3, 0, 1, 2, 3, None, 0])  # prorated 14
        + phq_rows("P1", "2024-05-15T08:00Z", [3, 3, 3, None, None, None, 3, 3, 3])  # none
        + "".join(f"P1,2024-05-02T08:00Z,shaps,{i},{4 if i <= 3 else 1}\n" for i in range(1, 15))
        + "P1,2024-05-02T08:00Z,mood,1,6\nP1,2024-05-02T08:00Z,mood,2,1.5\n"
    )
    store.import_file(con, write(tmp_path, "s.csv", text))
    table = store.score_table(con, "P1", "Europe/London", "abc")
    assert table is not None
    cols = [r[0] for r in con.execute("DESCRIBE symptom_scores").fetchall()]
    assert table.column_names == cols
    con.register("_t", table)
    con.execute("INSERT INTO symptom_scores SELECT * FROM _t")
    got = con.execute(
        "SELECT instrument, ts, day, score, band, n_items, complete, scoring, params_id "
        "FROM symptom_scores ORDER BY instrument, ts"
    ).fetchall()
    assert [(g[0], g[2], g[3], g[4], g[5], g[6], g[7]) for g in got] == [
        ("mood", date(2024, 5, 2), 7.5, None, 2, True, "sum"),
        ("phq9", date(2024, 5, 2), 13.0, "moderate", 9, True, "prorated_sum"),
        ("phq9", date(2024, 5, 8), 14.0, "moderate", 8, False, "prorated_sum"),
        ("phq9", date(2024, 5, 15), None, None, 6, False, "prorated_sum"),
        ("shaps", date(2024, 5, 2), 3.0, "abnormal", 14, True, "count_at_least"),
    ]
    assert got[1][1] == datetime(2024, 5, 1, 23, 30, tzinfo=UTC)
    assert {g[8] for g in got} == {"abc"}
    assert store.score_table(con, "nobody", "UTC", "abc") is None


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=9, max_size=9),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from([",", ";", "\t"]),
)
def test_wide_file_round_trips_every_answered_cell(
    ratings: list[list[int | None]], delim: str
) -> None:
    head = delim.join(["participant_id", "timestamp", *(f"phq9_{i}" for i in range(1, 10))])
    lines = [head]
    want = set()
    for r, values in enumerate(ratings):
        ts = f"2024-05-{r + 1:02d}T08:00:00Z"
        lines.append(delim.join(["P1", ts, *("" if v is None else str(v) for v in values)]))
        want |= {
            (us(ts[:-1]), i + 1, float(v), r + 2) for i, v in enumerate(values) if v is not None
        }
    got = parse_symptoms(
        "\n".join(lines).encode(),
        path="w.csv",
        zones={"P1": "UTC"},
        instruments=BUILTINS,
        instrument="phq9",
    )
    assert got.rejected == [] and got.n_lines == len(ratings)
    cols = (got.ts_us.tolist(), got.item.tolist(), got.value.tolist(), got.line.tolist())
    rows = zip(*cols, strict=True)
    assert set(rows) == want and len(got) == len(want)
