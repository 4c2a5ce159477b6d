"""Columnar writes of one source file: its ``sources`` row, samples and activities, in one
transaction (the caller's)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from .. import __version__
from ..ingest.samples import CleanHR
from ..recording import Recording

TS_TYPE = pa.timestamp("us", tz="UTC")


def ts_array(ts_us: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(ts_us, dtype=np.int64), type=pa.int64()).cast(TS_TYPE)


def existing_source(con: duckdb.DuckDBPyConnection, sha256: str) -> tuple[int, str, str] | None:
    """(source_id, status, participant_id) of a source with these bytes, if any."""
    row = con.execute(
        "SELECT source_id, status, participant_id FROM sources WHERE sha256 = ?", [sha256]
    ).fetchone()
    return (int(row[0]), str(row[1]), str(row[2])) if row else None


def _upsert_source(
    con: duckdb.DuckDBPyConnection, values: dict[str, Any], replace_id: int | None
) -> int:
    cols = list(values)
    if replace_id is not None:
        # Update in place (DuckDB checks a UNIQUE key eagerly, so delete+insert of the same
        # sha256 inside one transaction would be refused).
        sets = ", ".join(f"{c} = ?" for c in cols)
        con.execute(
            f"UPDATE sources SET {sets} WHERE source_id = ?", [*values.values(), replace_id]
        )
        return replace_id
    marks = ", ".join("?" for _ in cols)
    row = con.execute(
        f"INSERT INTO sources ({', '.join(cols)}) VALUES ({marks}) RETURNING source_id",
        list(values.values()),
    ).fetchone()
    assert row is not None
    return int(row[0])


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
) -> int:
    return _upsert_source(
        con,
        {
            "sha256": sha256,
            "path": path,
            "format": fmt,
            "participant_id": participant_id,
            "status": "quarantined",
            "reason": reason,
            "imported_at": datetime.now(UTC),
            "size_bytes": size,
            "actidose_version": __version__,
        },
        replace_id,
    )


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
) -> int:
    """Write one recording. Call inside a transaction; returns its source_id."""
    first = last = None
    if hr.ts_us.size:
        first = datetime.fromtimestamp(int(hr.ts_us[0]) / 1e6, tz=UTC)
        last = datetime.fromtimestamp(int(hr.ts_us[-1]) / 1e6, tz=UTC)
    source_id = _upsert_source(
        con,
        {
            "sha256": sha256,
            "path": path,
            "format": rec.format,
            "kind": rec.kind,
            "participant_id": participant_id,
            "device": rec.device,
            "serial": rec.serial,
            "status": "salvaged" if rec.salvaged else "imported",
            "reason": rec.salvage_reason if rec.salvaged else None,
            "imported_at": datetime.now(UTC),
            "size_bytes": size,
            "n_samples": int(hr.ts_us.size),
            "n_invalid": hr.n_invalid,
            "n_duplicate_ts": hr.n_duplicate_ts,
            "utc_offset_s": rec.utc_offset_s,
            "first_ts": first,
            "last_ts": last,
            "warnings": "; ".join(rec.warnings) or None,
            "actidose_version": __version__,
        },
        replace_id,
    )
    if hr.ts_us.size:
        samples = pa.table({"ts": ts_array(hr.ts_us), "bpm": pa.array(hr.bpm, pa.int16())})
        con.register("_new_hr", samples)
        try:
            con.execute(
                "INSERT INTO hr_samples SELECT ?, ts, bpm, ? FROM _new_hr",
                [participant_id, source_id],
            )
        finally:
            con.unregister("_new_hr")
    if rec.activities:
        acts = rec.activities
        table = pa.table(
            {
                "idx": pa.array(range(len(acts)), pa.int32()),
                "start_ts": ts_array(
                    np.array([a.start for a in acts], "datetime64[us]").astype(np.int64)
                ),
                "end_ts": ts_array(
                    np.array([a.end for a in acts], "datetime64[us]").astype(np.int64)
                ),
                "sport": pa.array([a.sport for a in acts], pa.string()),
                "sub_sport": pa.array([a.sub_sport for a in acts], pa.string()),
                "timer_s": pa.array([a.timer_s for a in acts], pa.float64()),
                "elapsed_s": pa.array([a.elapsed_s for a in acts], pa.float64()),
                "avg_hr": pa.array([a.avg_hr for a in acts], pa.float64()),
                "max_hr": pa.array([a.max_hr for a in acts], pa.float64()),
            }
        )
        con.register("_new_act", table)
        try:
            con.execute(
                "INSERT INTO activities SELECT ?, idx, ?, start_ts, end_ts, sport, sub_sport, "
                "timer_s, elapsed_s, avg_hr, max_hr FROM _new_act",
                [source_id, participant_id],
            )
        finally:
            con.unregister("_new_act")
    con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [participant_id])
    return source_id
