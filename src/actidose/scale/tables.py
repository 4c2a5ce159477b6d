"""The rows of one source file as Arrow tables, exactly as the ordinary import stores them.

:func:`source_tables` runs :mod:`actidose.storage.write`'s own row builders
(``_source_row``, ``_sources_insert``, ``_sample_inserts``), which describe their columnar
inserts as data, and builds the rows each would insert (each value cast to its column's type,
as a private in-memory DuckDB database made with the project's schema types it). So a part
holds the very rows, column order and SQL types that
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

    from ..storage.write import Insert, SourceFile

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


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema DuckDB gives a table of the project's schema (cached per thread)."""
    from ..storage.db import fetch_arrow

    cache: dict[str, pa.Schema] = getattr(_local, "schemas", None) or {}
    _local.schemas = cache
    got = cache.get(table)
    if got is None:
        got = fetch_arrow(_scratch().execute(f"SELECT * FROM {table} LIMIT 0")).schema
        cache[table] = got
    return got


def source_tables(
    participant_id: str, f: SourceFile, *, source_id: int, imported_at_us: int
) -> dict[str, pa.Table]:
    """The rows :func:`~actidose.storage.write.store_sources` would insert for one file.

    write.py describes its columnar inserts as data (:class:`~actidose.storage.write.Insert`:
    target columns, each a column of an Arrow table or a ``?`` parameter); each becomes the
    table's rows here, every column cast to the Arrow type DuckDB gives it (NULL for a column
    the insert leaves out), without a database; anything else is cast by DuckDB, in a
    ``SELECT`` on this thread's scratch database.

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
    from ..storage.write import _sample_inserts, _source_row, _sources_insert

    inserts = [_sources_insert([_source_row(f, source_id, participant_id, imported_at_us)])]
    if f.rec is not None and f.hr is not None:
        inserts += _sample_inserts(participant_id, [(source_id, f.rec, f.hr)])
    out: dict[str, pa.Table] = {}
    for ins in inserts:
        if ins.table in out:  # one insert per table and file
            raise AssertionError(f"two inserts into {ins.table} for one file")
        rows = _project(ins)
        if rows is None:  # anything but plain columns and parameters: DuckDB casts
            rows = _cast_in_duckdb(ins)
        if rows.num_rows:
            out[ins.table] = rows
    return {t: out[t] for t in SOURCE_TABLES if t in out}


def _project(ins: Insert) -> pa.Table | None:
    """The insert's rows built in Arrow: each column the rows' column of that name, or a
    ``?`` parameter repeated, or NULL, cast to the Arrow type DuckDB gives the column (None
    when an expression is anything else or a cast is refused)."""
    import pyarrow as pa

    given = dict(zip(ins.columns, ins.exprs, strict=True))
    schema = arrow_schema(ins.table)
    rows = ins.rows
    n = rows.num_rows
    it = iter(ins.params)
    arrays = []
    try:
        for field in schema:
            expr = given.get(field.name)
            if expr is None:
                arrays.append(pa.nulls(n, field.type))
            elif expr == "?":
                arrays.append(pa.array([next(it)] * n, field.type))
            elif expr in rows.column_names:
                arrays.append(rows.column(expr).combine_chunks().cast(field.type))
            else:
                return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, StopIteration, TypeError):
        return None
    return pa.Table.from_arrays(arrays, schema=schema)


def _cast_in_duckdb(ins: Insert) -> pa.Table:
    """The insert's rows as DuckDB casts them into the table's columns."""
    from ..storage.db import fetch_arrow

    given = dict(zip(ins.columns, ins.exprs, strict=True))
    select = ", ".join(
        f"CAST({given.get(name, 'NULL')} AS {sql_type}) AS {name}"
        for name, sql_type in schema_columns(ins.table)
    )
    con = _scratch()
    con.register("_new_rows", ins.rows)
    try:
        return fetch_arrow(con.execute(f"SELECT {select} FROM _new_rows", list(ins.params)))
    finally:
        con.unregister("_new_rows")
