"""Columnar writes of one source file: its ``sources`` row, samples and activities, in one
transaction (the caller's)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from .. import __version__
from ..ingest.samples import CleanHR
from ..recording import AccelEpochs, Recording

TS_TYPE = pa.timestamp("us", tz="UTC")


def ts_array(ts_us: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(ts_us, dtype=np.int64), type=pa.int64()).cast(TS_TYPE)


def insert_columns(
    con: duckdb.DuckDBPyConnection,
    target: str,
    select: str,
    table: pa.Table,
    params: list[Any],
) -> None:
    """Columnar ``INSERT INTO target SELECT select FROM table`` (constants bound as params)."""
    if table.num_rows == 0:
        return
    con.register("_new_rows", table)
    try:
        con.execute(f"INSERT INTO {target} SELECT {select} FROM _new_rows", params)
    finally:
        con.unregister("_new_rows")


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
    archive_sha256: str | None = None,
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
            "sensor": rec.sensor or "unknown",
            "archive_sha256": archive_sha256,
        },
        replace_id,
    )
    insert_columns(
        con,
        "hr_samples (participant_id, ts, bpm, source_id)",
        "?, ts, bpm, ?",
        pa.table({"ts": ts_array(hr.ts_us), "bpm": pa.array(hr.bpm, pa.int16())}),
        [participant_id, source_id],
    )
    if len(rec.rr):
        rr_ts = rec.rr.ts.astype(np.int64)
        order = np.argsort(rr_ts, kind="stable")
        insert_columns(
            con,
            "rr_intervals (participant_id, ts, rr_ms, source_id)",
            "?, ts, rr_ms, ?",
            pa.table({"ts": ts_array(rr_ts[order]), "rr_ms": rec.rr.rr_ms[order]}),
            [participant_id, source_id],
        )
    for v in rec.vendor:
        insert_columns(
            con,
            "vendor_activity (participant_id, source_id, kind, unit, start_ts, duration_s, "
            "value, origin)",
            "?, ?, ?, ?, start_ts, duration_s, value, ?",
            pa.table(
                {
                    "start_ts": ts_array(v.start.astype(np.int64)),
                    "duration_s": v.duration_s,
                    "value": v.value,
                }
            ),
            [participant_id, source_id, v.kind, v.unit, v.origin],
        )
    if rec.accel_epochs is not None:
        store_accel_epochs(con, source_id, participant_id, rec.accel_epochs)
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
        insert_columns(
            con,
            "activities (source_id, idx, participant_id, start_ts, end_ts, sport, sub_sport, "
            "timer_s, elapsed_s, device_hr_mean, device_hr_max)",
            "?, idx, ?, start_ts, end_ts, sport, sub_sport, timer_s, elapsed_s, avg_hr, max_hr",
            table,
            [source_id, participant_id],
        )
    con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [participant_id])
    return source_id


def store_accel_epochs(
    con: duckdb.DuckDBPyConnection, source_id: int, participant_id: str, ep: AccelEpochs
) -> None:
    """Write one source's accelerometer epochs and its ``accel_processing`` row (columnar).
    Call inside a transaction."""
    insert_columns(
        con,
        "accel_epochs (participant_id, ts, epoch_s, enmo_mg, mad_mg, nonwear, clipped, "
        "n_samples, source_id)",
        "?, ts, ?, enmo_mg, mad_mg, nonwear, clipped, n_samples, ?",
        pa.table(
            {
                "ts": ts_array(ep.start_us),
                "enmo_mg": np.asarray(ep.enmo_mg, np.float64),
                "mad_mg": np.asarray(ep.mad_mg, np.float64),
                "nonwear": np.asarray(ep.nonwear, bool),
                "clipped": np.asarray(ep.clipped, np.int32),
                "n_samples": np.asarray(ep.n_samples, np.int32),
            }
        ),
        [participant_id, float(ep.epoch_s), source_id],
    )
    info = ep.info
    con.execute(
        "INSERT OR REPLACE INTO accel_processing VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [
            source_id,
            info.get("sample_rate_hz"),
            info.get("range_g"),
            int(np.sum(ep.n_samples)),
            int(ep.start_us.size),
            int(np.sum(ep.clipped)),
            info.get("calibration_accepted"),
            info.get("calibration_error_before_g"),
            info.get("calibration_error_after_g"),
            info.get("nonwear_rule"),
            json.dumps(info, default=str),
        ],
    )
