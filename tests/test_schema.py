"""Schema versioning: recorded, migrated forward, and a newer database refused clearly."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from actidose.errors import StorageError
from actidose.storage.db import connect
from actidose.storage.schema import SCHEMA_VERSION, current_version

CONTRACT = {
    "participants": {
        "participant_id",
        "sex",
        "birth_year",
        "timezone",
        "arm",
        "hr_rest_bpm",
        "hr_max_bpm",
    },
    "sources": {
        "source_id",
        "sha256",
        "path",
        "format",
        "participant_id",
        "device",
        "status",
        "reason",
        "imported_at",
        "n_samples",
        "n_invalid",
        "n_duplicate_ts",
    },
    "hr_samples": {"participant_id", "ts", "bpm", "source_id"},
    "sessions": {
        "session_id",
        "participant_id",
        "source_id",
        "start_ts",
        "end_ts",
        "sport",
        "duration_s",
        "hr_mean",
        "hr_max",
        "trimp_banister",
        "trimp_edwards",
    },
    "daily_load": {
        "participant_id",
        "day",
        "trimp_banister",
        "trimp_edwards",
        "trimp_allday",
        "hr_minutes",
        "hr_mod_min",
        "hr_vig_min",
        "acc_mod_min",
        "acc_vig_min",
        "mod_min",
        "vig_min",
        "mvpa_min",
        "wear_min",
        "day_status",
    },
    "load_series": {
        "participant_id",
        "day",
        "load",
        "ctl",
        "atl",
        "tsb",
        "acwr_ewma",
        "acwr_rolling",
        "acwr_uncoupled",
        "monotony",
        "strain",
        "day_status",
    },
    "weekly_dose": {
        "participant_id",
        "week_start",
        "sessions",
        "trimp_banister",
        "mod_min",
        "vig_min",
        "who_equiv_min",
        "meets_who",
    },
}


def test_contract_columns_exist(tmp_path: Path) -> None:
    con = connect(tmp_path / "c.duckdb")
    assert current_version(con) == SCHEMA_VERSION
    for table, cols in CONTRACT.items():
        have = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
            ).fetchall()
        }
        assert cols <= have, (table, cols - have)
    ts_types = dict(
        con.execute(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE column_name IN ('ts', 'start_ts', 'end_ts', 'imported_at')"
        ).fetchall()
    )
    assert set(ts_types.values()) == {"TIMESTAMP WITH TIME ZONE"}
    con.close()


def test_reopen_is_idempotent(tmp_path: Path) -> None:
    for _ in range(2):
        connect(tmp_path / "c.duckdb").close()
    con = connect(tmp_path / "c.duckdb")
    assert current_version(con) == SCHEMA_VERSION
    con.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    connect(db).close()
    raw = duckdb.connect(str(db))
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    raw.close()
    with pytest.raises(StorageError, match="newer"):
        connect(db)


def test_v1_database_migrates_with_data(tmp_path: Path) -> None:
    from actidose.storage.schema import MIGRATIONS

    db = tmp_path / "old.duckdb"
    raw = duckdb.connect(str(db))
    raw.execute(MIGRATIONS[0])
    raw.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    raw.execute(
        "INSERT INTO sources (sha256, path, participant_id, status, imported_at) "
        "VALUES ('abc', '/x.fit', 'P1', 'imported', now())"
    )
    raw.close()
    con = connect(db)
    assert current_version(con) == SCHEMA_VERSION
    assert con.execute("SELECT sha256, sensor FROM sources").fetchall() == [("abc", None)]
    assert con.execute("SELECT count(*) FROM rr_intervals").fetchone() == (0,)
    con.close()
