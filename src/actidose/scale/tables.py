"""The rows of one source file as Arrow tables, exactly as the ordinary import stores them.

:func:`source_tables` runs :mod:`actidose.storage.write`'s own row builders
(``_source_row``, ``_write_sources``, ``_write_samples``) against a private in-memory DuckDB
database made with the project's schema, inside a transaction that is rolled back once the rows
are read out. So a part holds the very rows, column order and SQL types that
:func:`~actidose.storage.write.store_sources` would have inserted, with two differences that make
parts reproducible without a central sequence or clock:

* ``source_id`` is :func:`source_id_of` the file's sha256 (not the next value of
  ``source_id_seq``);
* ``imported_at`` is the run's start (``_run.json``), so a retried task writes the same bytes.

The in-memory database is kept per thread (Dask workers run tasks in threads) and never touches
the study's database file.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from ..storage.write import SourceFile

#: Hex digits of the sha256 that make a ``source_id``: 13 digits = 52 bits, so
#: ``session_id = source_id * 1000 + idx`` (storage/derive.py) stays inside BIGINT and every id
#: is exact in a float64 as well.
SOURCE_ID_HEX = 13

#: The source-level tables a file's part set may hold; ``sources`` is always written, last.
SOURCE_TABLES: tuple[str, ...] = (
    "sources",
    "hr_samples",
    "rr_intervals",
    "activities",
    "vendor_activity",
    "accel_epochs",
    "accel_processing",
)
#: The source-level tables other than ``sources`` (written before it).
DATA_TABLES: tuple[str, ...] = SOURCE_TABLES[1:]

#: The study tables the driver snapshots into ``_study/`` (workers never open the database).
STUDY_TABLES: tuple[str, ...] = (
    "participants",
    "hr_anchors",
    "instruments",
    "symptoms",
    "symptom_files",
    "prescriptions",
)

#: Sort order of each table in compacted files: participant first, then time.
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "sources": ("participant_id", "first_ts", "sha256"),
    "hr_samples": ("participant_id", "ts", "source_id"),
    "rr_intervals": ("participant_id", "ts", "source_id"),
    "activities": ("participant_id", "start_ts", "source_id", "idx"),
    "vendor_activity": ("participant_id", "start_ts", "source_id", "kind"),
    "accel_epochs": ("participant_id", "ts", "source_id"),
    "accel_processing": ("source_id",),
    "sessions": ("participant_id", "start_ts", "session_id"),
    "daily_load": ("participant_id", "day"),
    "load_series": ("participant_id", "day"),
    "weekly_dose": ("participant_id", "week_start"),
    "vendor_daily": ("participant_id", "day", "kind"),
    "hr_estimates": ("participant_id", "day"),
    "symptom_scores": ("participant_id", "ts", "instrument"),
    "symptom_exposure": ("participant_id", "ts", "instrument", "lag_days"),
    "symptom_days": ("participant_id", "day", "instrument"),
    "adherence": ("participant_id", "week"),
    "adherence_summary": ("participant_id", "arm"),
}

_local = threading.local()


def source_id_of(sha256: str) -> int:
    """The deterministic ``source_id`` of a source file in the parts path.

    Parameters
    ----------
    sha256
        Hex digest of the file's bytes.

    Returns
    -------
    int
        ``int(sha256[:13], 16)``: below 2**52, so ids agree between parts, derived parts and
        the loaded database without a central sequence.
    """
    return int(sha256[:SOURCE_ID_HEX], 16)


def memory_database() -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB database with the project's schema (all migrations), UTC."""
    import duckdb

    from ..storage.schema import migrate

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    return con


def _scratch() -> duckdb.DuckDBPyConnection:
    """This thread's scratch database (made once per thread)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = memory_database()
        _local.con = con
    return con


def schema_columns(table: str) -> list[tuple[str, str]]:
    """``(column, SQL type)`` of a table of the project's schema, in table order."""
    cache: dict[str, list[tuple[str, str]]] = getattr(_local, "columns", None) or {}
    _local.columns = cache
    got = cache.get(table)
    if got is None:
        rows = (
            _scratch()
            .execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position",
                [table],
            )
            .fetchall()
        )
        got = [(str(r[0]), str(r[1])) for r in rows]
        cache[table] = got
    return list(got)


def source_tables(
    participant_id: str, f: SourceFile, *, source_id: int, imported_at_us: int
) -> dict[str, pa.Table]:
    """The rows :func:`~actidose.storage.write.store_sources` would insert for one file.

    Parameters
    ----------
    participant_id
        Whose file it is.
    f
        The file: readable (``rec`` and ``hr``) or quarantined (``reason``).
    source_id
        Its id (:func:`source_id_of` its sha256 in the parts path).
    imported_at_us
        ``imported_at`` of its ``sources`` row, UTC microseconds.

    Returns
    -------
    dict
        ``table -> pyarrow.Table`` in the schema's column order and types, for every table of
        :data:`SOURCE_TABLES` the file has rows in (``sources`` always).
    """
    from ..storage.db import fetch_arrow
    from ..storage.write import _source_row, _write_samples, _write_sources

    con = _scratch()
    row = _source_row(f, source_id, participant_id, imported_at_us)
    out: dict[str, pa.Table] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        _write_sources(con, [row], True)
        if f.rec is not None and f.hr is not None:
            _write_samples(con, participant_id, [(source_id, f.rec, f.hr)])
        for name in _tables_of(f):
            table = fetch_arrow(con.execute(f"SELECT * FROM {name}"))
            if table.num_rows:
                out[name] = table
    finally:
        con.execute("ROLLBACK")
    return out


def _tables_of(f: SourceFile) -> list[str]:
    """The tables ``_write_samples`` may write rows to for this file (the others are not read
    back)."""
    rec, hr = f.rec, f.hr
    if rec is None or hr is None:
        return ["sources"]
    maybe = {
        "hr_samples": hr.ts_us.size > 0,
        "rr_intervals": len(rec.rr) > 0,
        "activities": len(rec.activities) > 0,
        "vendor_activity": any(v.value.size for v in rec.vendor),
        "accel_epochs": rec.accel_epochs is not None,
        "accel_processing": rec.accel_epochs is not None,
    }
    return ["sources", *(t for t in DATA_TABLES if maybe[t])]
