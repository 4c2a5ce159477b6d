"""Columnar writes of source files: their ``sources`` rows, samples, RR intervals, vendor series,
accelerometer epochs and activities, in the caller's transaction.

:func:`store_sources` writes a whole batch of files with one ``INSERT`` per table (the files'
Arrow columns concatenated, each row tagged with its file's ``source_id``), so the cost of a
statement and of a commit is paid once per batch instead of once per file. Every file of a batch
is whole in the batch's transaction, so a batch that commits atomically keeps each file whole or
absent. :func:`store_recording` and :func:`store_quarantined` write one file the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from .. import __version__
from ..ingest.samples import CleanHR
from ..recording import AccelEpochs, Recording

TS_TYPE = pa.timestamp("us", tz="UTC")


def ts_array(ts_us: np.ndarray) -> pa.Array:
    """UTC microseconds (int64) as an Arrow ``timestamp[us, UTC]`` array."""
    return pa.array(np.asarray(ts_us, dtype=np.int64), type=pa.int64()).cast(TS_TYPE)


def insert_columns(
    con: duckdb.DuckDBPyConnection,
    target: str,
    select: str,
    table: pa.Table,
    params: list[Any],
    *,
    or_replace: bool = False,
) -> None:
    """Columnar ``INSERT [OR REPLACE] INTO target SELECT select FROM table`` (constants bound
    as params)."""
    if table.num_rows == 0:
        return
    verb = "INSERT OR REPLACE" if or_replace else "INSERT"
    con.register("_new_rows", table)
    try:
        con.execute(f"{verb} INTO {target} SELECT {select} FROM _new_rows", params)
    finally:
        con.unregister("_new_rows")


@dataclass(frozen=True)
class Insert:
    """One columnar insert as data: ``INSERT [OR REPLACE] INTO table (columns) SELECT exprs
    FROM rows``, each expression a column of ``rows`` or ``?`` (the next of ``params``).
    :meth:`run` executes it; the parts path builds the same rows without a database
    (:mod:`actidose.scale.tables`)."""

    table: str
    columns: tuple[str, ...]
    exprs: tuple[str, ...]
    rows: pa.Table
    params: tuple[Any, ...] = ()
    or_replace: bool = False

    def run(self, con: duckdb.DuckDBPyConnection) -> None:
        insert_columns(
            con,
            f"{self.table} ({', '.join(self.columns)})",
            ", ".join(self.exprs),
            self.rows,
            list(self.params),
            or_replace=self.or_replace,
        )


def _insert(
    target: str,
    select: str,
    rows: pa.Table,
    params: Sequence[Any] = (),
    *,
    or_replace: bool = False,
) -> Insert:
    """An :class:`Insert` from the ``"table (a, b)"`` and ``"x, ?"`` forms."""
    table, _, cols = target.partition(" (")
    return Insert(
        table,
        tuple(c.strip() for c in cols.rstrip(")").split(",")),
        tuple(e.strip() for e in select.split(",")),
        rows,
        tuple(params),
        or_replace,
    )


def existing_source(con: duckdb.DuckDBPyConnection, sha256: str) -> tuple[int, str, str] | None:
    """(source_id, status, participant_id) of a source with these bytes, if any."""
    return existing_sources(con, [sha256]).get(sha256)


def existing_sources(
    con: duckdb.DuckDBPyConnection, sha256s: Sequence[str]
) -> dict[str, tuple[int, str, str]]:
    """``sha256 -> (source_id, status, participant_id)`` of the stored sources among
    ``sha256s``, found with one query.

    Parameters
    ----------
    con
        The database.
    sha256s
        Hex digests to look up (repeats are harmless).

    Returns
    -------
    dict
        Only the digests that are stored.
    """
    if not sha256s:
        return {}
    rows = con.execute(
        "SELECT sha256, source_id, status, participant_id FROM sources "
        "WHERE sha256 IN (SELECT unnest(?::VARCHAR[]))",
        [list(dict.fromkeys(sha256s))],
    ).fetchall()
    return {str(r[0]): (int(r[1]), str(r[2]), str(r[3])) for r in rows}


@dataclass
class SourceFile:
    """One file of a batch for :func:`store_sources`.

    A readable file has ``rec`` and ``hr`` (its samples after the sample rules); a file without
    them is stored as quarantined, with ``reason``. ``replace_id`` is the ``source_id`` of a
    stored row with the same bytes to overwrite (a quarantined file tried again); ``None``
    makes a new row.
    """

    sha256: str
    path: str
    size: int
    rec: Recording | None = None
    hr: CleanHR | None = None
    fmt: str | None = None  # of a quarantined file: the format detected, if any
    reason: str | None = None  # of a quarantined file: why
    replace_id: int | None = None
    archive_sha256: str | None = None

    @property
    def n_rows(self) -> int:
        """Rows this file adds to the sample tables (the size of its part of a batch)."""
        if self.rec is None or self.hr is None:
            return 0
        n = int(self.hr.ts_us.size) + len(self.rec.rr)
        n += sum(int(v.value.size) for v in self.rec.vendor)
        if self.rec.accel_epochs is not None:
            n += int(self.rec.accel_epochs.start_us.size)
        return n


_SOURCE_COLUMNS: dict[str, pa.DataType] = {
    "source_id": pa.int64(),
    "sha256": pa.string(),
    "path": pa.string(),
    "format": pa.string(),
    "kind": pa.string(),
    "participant_id": pa.string(),
    "device": pa.string(),
    "serial": pa.string(),
    "status": pa.string(),
    "reason": pa.string(),
    "imported_at": TS_TYPE,
    "size_bytes": pa.int64(),
    "n_samples": pa.int64(),
    "n_invalid": pa.int64(),
    "n_duplicate_ts": pa.int64(),
    "utc_offset_s": pa.int32(),
    "first_ts": TS_TYPE,
    "last_ts": TS_TYPE,
    "warnings": pa.string(),
    "actidose_version": pa.string(),
    "sensor": pa.string(),
    "archive_sha256": pa.string(),
}


def _source_row(f: SourceFile, source_id: int, participant_id: str, now: int) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(_SOURCE_COLUMNS)
    row.update(
        source_id=source_id,
        sha256=f.sha256,
        path=f.path,
        participant_id=participant_id,
        imported_at=now,
        size_bytes=f.size,
        actidose_version=__version__,
        archive_sha256=f.archive_sha256,
    )
    rec, hr = f.rec, f.hr
    if rec is None or hr is None:
        row.update(format=f.fmt, status="quarantined", reason=f.reason or "unreadable")
        return row
    row.update(
        format=rec.format,
        kind=rec.kind,
        device=rec.device,
        serial=rec.serial,
        status="salvaged" if rec.salvaged else "imported",
        reason=rec.salvage_reason if rec.salvaged else None,
        n_samples=int(hr.ts_us.size),
        n_invalid=hr.n_invalid,
        n_duplicate_ts=hr.n_duplicate_ts,
        utc_offset_s=rec.utc_offset_s,
        first_ts=int(hr.ts_us[0]) if hr.ts_us.size else None,
        last_ts=int(hr.ts_us[-1]) if hr.ts_us.size else None,
        warnings="; ".join(rec.warnings) or None,
        sensor=rec.sensor or "unknown",
    )
    return row


def _new_source_ids(con: duckdb.DuckDBPyConnection, n: int) -> list[int]:
    if n == 0:
        return []
    rows = con.execute("SELECT nextval('source_id_seq') FROM range(?)", [n]).fetchall()
    return sorted(int(r[0]) for r in rows)


def _column(values: list[Any], dtype: pa.DataType) -> pa.Array:
    if dtype == TS_TYPE:  # via int64: Python values to a zoned timestamp would import pandas
        null = np.array([v is None for v in values], bool)
        ints = np.array([0 if v is None else v for v in values], np.int64)
        return pa.array(ints, pa.int64(), mask=null).cast(TS_TYPE)
    return pa.array(values, dtype)


def _sources_insert(rows: list[dict[str, Any]]) -> Insert:
    table = pa.table({c: _column([r[c] for r in rows], t) for c, t in _SOURCE_COLUMNS.items()})
    cols = tuple(_SOURCE_COLUMNS)
    return Insert("sources", cols, cols, table)


def _write_sources(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], new: bool) -> None:
    if not rows:
        return
    if new:
        _sources_insert(rows).run(con)
        return
    table = _sources_insert(rows).rows
    cols = list(_SOURCE_COLUMNS)
    # A row tried again is updated in place: DuckDB checks a UNIQUE key eagerly, so deleting
    # and re-inserting the same sha256 inside one transaction would be refused.
    sets = ", ".join(f"{c} = _new_rows.{c}" for c in cols if c not in ("source_id", "sha256"))
    con.register("_new_rows", table)
    try:
        con.execute(
            f"UPDATE sources SET {sets} FROM _new_rows "
            "WHERE sources.source_id = _new_rows.source_id"
        )
    finally:
        con.unregister("_new_rows")


def _repeat(values: npt.NDArray[Any], counts: npt.NDArray[np.int64], dtype: Any) -> pa.Array:
    return pa.array(np.repeat(np.asarray(values, dtype=dtype), counts))


def _repeat_str(values: Sequence[str | None], counts: npt.NDArray[np.int64]) -> pa.Array:
    """Each of ``values`` repeated ``counts`` times, as a dictionary array (no Python loop over
    the rows)."""
    uniq = sorted({v for v in values if v is not None})
    code = {v: i for i, v in enumerate(uniq)}
    idx = np.repeat(np.array([-1 if v is None else code[v] for v in values], np.int64), counts)
    indices = pa.array(idx.astype(np.int32), mask=idx < 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(uniq, pa.string()))


def _concat(parts: list[npt.NDArray[Any]], dtype: Any) -> npt.NDArray[Any]:
    if not parts:
        return np.empty(0, dtype)
    return np.concatenate([np.asarray(p, dtype) for p in parts])


def _write_samples(
    con: duckdb.DuckDBPyConnection,
    participant_id: str,
    files: Sequence[tuple[int, Recording, CleanHR]],
) -> None:
    for ins in _sample_inserts(participant_id, files):
        ins.run(con)


def _sample_inserts(
    participant_id: str, files: Sequence[tuple[int, Recording, CleanHR]]
) -> list[Insert]:
    """The inserts of the sample tables (HR, RR, vendor series, accelerometer epochs,
    activities) for a batch of readable files."""
    out: list[Insert] = []
    sids = np.array([sid for sid, _, _ in files], np.int64)
    # heart rate
    counts = np.array([hr.ts_us.size for _, _, hr in files], np.int64)
    if counts.sum():
        out.append(
            _insert(
                "hr_samples (participant_id, ts, bpm, source_id)",
                "?, ts, bpm, source_id",
                pa.table(
                    {
                        "ts": ts_array(_concat([hr.ts_us for _, _, hr in files], np.int64)),
                        "bpm": pa.array(_concat([hr.bpm for _, _, hr in files], np.int16)),
                        "source_id": _repeat(sids, counts, np.int64),
                    }
                ),
                [participant_id],
            )
        )
    # RR intervals, in time order within each source
    counts = np.array([len(rec.rr) for _, rec, _ in files], np.int64)
    if counts.sum():
        ts_parts, rr_parts = [], []
        for _, rec, _ in files:
            rr_ts = rec.rr.ts.astype(np.int64)
            order = np.argsort(rr_ts, kind="stable")
            ts_parts.append(rr_ts[order])
            rr_parts.append(rec.rr.rr_ms[order])
        out.append(
            _insert(
                "rr_intervals (participant_id, ts, rr_ms, source_id)",
                "?, ts, rr_ms, source_id",
                pa.table(
                    {
                        "ts": ts_array(_concat(ts_parts, np.int64)),
                        "rr_ms": pa.array(_concat(rr_parts, np.float64)),
                        "source_id": _repeat(sids, counts, np.int64),
                    }
                ),
                [participant_id],
            )
        )
    # vendor series: one row per value, the series' labels repeated
    series = [(sid, v) for sid, rec, _ in files for v in rec.vendor]
    counts = np.array([v.value.size for _, v in series], np.int64)
    if counts.sum():
        out.append(
            _insert(
                "vendor_activity (participant_id, source_id, kind, unit, start_ts, duration_s, "
                "value, origin)",
                "?, source_id, kind, unit, start_ts, duration_s, value, origin",
                pa.table(
                    {
                        "source_id": _repeat(np.array([s for s, _ in series]), counts, np.int64),
                        "kind": _repeat_str([v.kind for _, v in series], counts),
                        "unit": _repeat_str([v.unit for _, v in series], counts),
                        "start_ts": ts_array(
                            _concat([v.start.astype(np.int64) for _, v in series], np.int64)
                        ),
                        "duration_s": pa.array(
                            _concat([v.duration_s for _, v in series], np.float64)
                        ),
                        "value": pa.array(_concat([v.value for _, v in series], np.float64)),
                        "origin": _repeat_str([v.origin for _, v in series], counts),
                    }
                ),
                [participant_id],
            )
        )
    # accelerometer epochs
    epochs = [(sid, rec.accel_epochs) for sid, rec, _ in files if rec.accel_epochs is not None]
    if epochs:
        out += _epoch_inserts(participant_id, epochs)
    # activities (sessions as the files describe them)
    acts = [(sid, i, a) for sid, rec, _ in files for i, a in enumerate(rec.activities)]
    if acts:
        out.append(
            _insert(
                "activities (source_id, idx, participant_id, start_ts, end_ts, sport, sub_sport, "
                "timer_s, elapsed_s, device_hr_mean, device_hr_max)",
                "source_id, idx, ?, start_ts, end_ts, sport, sub_sport, timer_s, elapsed_s, "
                "avg_hr, max_hr",
                pa.table(
                    {
                        "source_id": pa.array([s for s, _, _ in acts], pa.int64()),
                        "idx": pa.array([i for _, i, _ in acts], pa.int32()),
                        "start_ts": ts_array(
                            np.array([a.start for _, _, a in acts], "datetime64[us]").astype(
                                np.int64
                            )
                        ),
                        "end_ts": ts_array(
                            np.array([a.end for _, _, a in acts], "datetime64[us]").astype(np.int64)
                        ),
                        "sport": pa.array([a.sport for _, _, a in acts], pa.string()),
                        "sub_sport": pa.array([a.sub_sport for _, _, a in acts], pa.string()),
                        "timer_s": pa.array([a.timer_s for _, _, a in acts], pa.float64()),
                        "elapsed_s": pa.array([a.elapsed_s for _, _, a in acts], pa.float64()),
                        "avg_hr": pa.array([a.avg_hr for _, _, a in acts], pa.float64()),
                        "max_hr": pa.array([a.max_hr for _, _, a in acts], pa.float64()),
                    }
                ),
                [participant_id],
            )
        )
    return out


def store_sources(
    con: duckdb.DuckDBPyConnection, participant_id: str, files: Sequence[SourceFile]
) -> list[int]:
    """Write a batch of source files of one participant: one statement per table for the batch.

    Call inside a transaction (the batch is then whole or absent). The files' ``sha256`` must
    differ from each other and, unless ``replace_id`` is given, from every stored source.
    ``source_id`` values are given in the order of ``files``. The participant is marked for
    recompute when any file is readable.

    Parameters
    ----------
    con
        The database, inside the caller's transaction.
    participant_id
        Whose files these are.
    files
        The batch, in input order: readable files and quarantined ones.

    Returns
    -------
    list of int
        The ``source_id`` of each file, in the order of ``files``.
    """
    if not files:
        return []
    fresh = iter(_new_source_ids(con, sum(f.replace_id is None for f in files)))
    ids = [f.replace_id if f.replace_id is not None else next(fresh) for f in files]
    now = int(datetime.now(UTC).timestamp() * 1_000_000)
    rows = [_source_row(f, sid, participant_id, now) for f, sid in zip(files, ids, strict=True)]
    _write_sources(con, [r for f, r in zip(files, rows, strict=True) if f.replace_id is None], True)
    _write_sources(
        con, [r for f, r in zip(files, rows, strict=True) if f.replace_id is not None], False
    )
    readable = [
        (sid, f.rec, f.hr)
        for f, sid in zip(files, ids, strict=True)
        if f.rec is not None and f.hr is not None
    ]
    if readable:
        _write_samples(con, participant_id, readable)
        con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [participant_id])
    return ids


def store_quarantined(
    con: duckdb.DuckDBPyConnection,
    *,
    sha256: str,
    path: str,
    size: int,
    participant_id: str,
    fmt: str | None,
    reason: str,
    replace_id: int | None,
    archive_sha256: str | None = None,
) -> int:
    """Record one file that cannot be imported, with its reason. Call inside a transaction;
    returns its source_id."""
    f = SourceFile(
        sha256,
        path,
        size,
        fmt=fmt,
        reason=reason,
        replace_id=replace_id,
        archive_sha256=archive_sha256,
    )
    return store_sources(con, participant_id, [f])[0]


def store_recording(
    con: duckdb.DuckDBPyConnection,
    *,
    sha256: str,
    path: str,
    size: int,
    participant_id: str,
    rec: Recording,
    hr: CleanHR,
    replace_id: int | None,
    archive_sha256: str | None = None,
) -> int:
    """Write one recording. Call inside a transaction; returns its source_id."""
    f = SourceFile(
        sha256, path, size, rec, hr, replace_id=replace_id, archive_sha256=archive_sha256
    )
    return store_sources(con, participant_id, [f])[0]


def _write_epochs(
    con: duckdb.DuckDBPyConnection,
    participant_id: str,
    epochs: Sequence[tuple[int, AccelEpochs]],
) -> None:
    for ins in _epoch_inserts(participant_id, epochs):
        ins.run(con)


def _epoch_inserts(participant_id: str, epochs: Sequence[tuple[int, AccelEpochs]]) -> list[Insert]:
    """The inserts of ``accel_epochs`` and ``accel_processing`` for these sources' epochs."""
    sids = np.array([sid for sid, _ in epochs], np.int64)
    counts = np.array([ep.start_us.size for _, ep in epochs], np.int64)
    first = _insert(
        "accel_epochs (participant_id, ts, epoch_s, enmo_mg, mad_mg, nonwear, clipped, "
        "n_samples, source_id)",
        "?, ts, epoch_s, enmo_mg, mad_mg, nonwear, clipped, n_samples, source_id",
        pa.table(
            {
                "ts": ts_array(_concat([ep.start_us for _, ep in epochs], np.int64)),
                "epoch_s": _repeat(
                    np.array([float(ep.epoch_s) for _, ep in epochs]), counts, np.float64
                ),
                "enmo_mg": pa.array(_concat([ep.enmo_mg for _, ep in epochs], np.float64)),
                "mad_mg": pa.array(_concat([ep.mad_mg for _, ep in epochs], np.float64)),
                "nonwear": pa.array(_concat([ep.nonwear for _, ep in epochs], bool)),
                "clipped": pa.array(_concat([ep.clipped for _, ep in epochs], np.int32)),
                "n_samples": pa.array(_concat([ep.n_samples for _, ep in epochs], np.int32)),
                "source_id": _repeat(sids, counts, np.int64),
            }
        ),
        [participant_id],
    )
    infos: list[dict[str, Any]] = [ep.info for _, ep in epochs]

    def num(key: str) -> pa.Array:
        return pa.array(
            [None if i.get(key) is None else float(i[key]) for i in infos], pa.float64()
        )

    table = pa.table(
        {
            "source_id": pa.array(sids, pa.int64()),
            "sample_rate_hz": num("sample_rate_hz"),
            "range_g": num("range_g"),
            "n_samples": pa.array([int(np.sum(ep.n_samples)) for _, ep in epochs], pa.int64()),
            "n_epochs": pa.array(counts, pa.int64()),
            "n_clipped": pa.array([int(np.sum(ep.clipped)) for _, ep in epochs], pa.int64()),
            "calibration_accepted": pa.array(
                [
                    None
                    if i.get("calibration_accepted") is None
                    else bool(i["calibration_accepted"])
                    for i in infos
                ],
                pa.bool_(),
            ),
            "calibration_error_before_g": num("calibration_error_before_g"),
            "calibration_error_after_g": num("calibration_error_after_g"),
            "nonwear_rule": pa.array(
                [None if i.get("nonwear_rule") is None else str(i["nonwear_rule"]) for i in infos],
                pa.string(),
            ),
            "info": pa.array([json.dumps(i, default=str) for i in infos], pa.string()),
        }
    )
    cols = ", ".join(table.column_names)
    return [first, _insert(f"accel_processing ({cols})", cols, table, or_replace=True)]


def store_accel_epochs(
    con: duckdb.DuckDBPyConnection, source_id: int, participant_id: str, ep: AccelEpochs
) -> None:
    """Write one source's accelerometer epochs and its ``accel_processing`` row (columnar).
    Call inside a transaction."""
    _write_epochs(con, participant_id, [(source_id, ep)])
