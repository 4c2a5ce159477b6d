"""Derived tables of one participant, from the parts folder, without the study database.

:func:`derive_participant` makes an in-memory DuckDB database with the project's schema, inserts
the participant's rows from the ``_study`` snapshot and from its source parts (or the compacted
files), and runs the ordinary recompute (:func:`actidose.storage.derive.recompute`, i.e.
``compute_participant`` and the same NaN-to-NULL and column handling) on it. Each derived table
of the participant goes to ``derived/<table>/<participant key>/<digest>.parquet``, then the
marker ``derived/_done/<participant key>.json`` says the digest is complete; parts of older
digests are removed after that.

The digest (:func:`participant_digests`) is the sha256 of the ``params_id``, the sorted sha256s
of the participant's imported and salvaged sources, and a fingerprint of the study rows the
computation reads (the participant's roster row, HR anchors and symptom ratings, the
instrument definitions and the arm's prescription). The same function on the study database
tells :func:`actidose.scale.load.load_parts` whether derived parts are still the right ones.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .parts import (
    DERIVED_DIR,
    STUDY_DIR,
    Dataset,
    _read_json,
    derived_marker_path,
    derived_path,
    is_temp_name,
    participant_key,
    read_run,
    relative,
    write_atomic,
    write_parquet_atomic,
)

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class DeriveSummary:
    """What :func:`derive_participant` did: ``status`` 'derived' (parts written) or 'unchanged'
    (the parts of this digest were there); ``tables`` the rows per derived table; ``parts``
    relative to the parts root."""

    participant_id: str
    digest: str
    params_id: str
    status: str
    tables: Mapping[str, int] = field(default_factory=dict)
    parts: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "participant_id": self.participant_id,
            "digest": self.digest,
            "params_id": self.params_id,
            "status": self.status,
            "tables": dict(self.tables),
            "parts": list(self.parts),
            "seconds": self.seconds,
        }


_OK = "('imported', 'salvaged')"


def participant_digests(
    con: duckdb.DuckDBPyConnection, participant_ids: Sequence[str], params_id: str
) -> dict[str, str]:
    """The digest of each participant's derived rows as ``con`` would compute them.

    Parameters
    ----------
    con
        A database with the project's schema (the study database or a worker's in-memory one).
    participant_ids
        Participants (those not in ``participants`` are left out).
    params_id
        Of the dose configuration.

    Returns
    -------
    dict
        ``participant_id -> digest`` (32 hex digits).
    """
    if not participant_ids:
        return {}
    ids = list(dict.fromkeys(participant_ids))
    row = con.execute(
        "SELECT coalesce(string_agg(CAST(ROW(instrument, n_items, value_min, value_max, "
        "recall_days, scoring, CAST(definition AS VARCHAR)) AS VARCHAR), chr(10) "
        "ORDER BY instrument), '') FROM instruments"
    ).fetchone()
    instruments = str(row[0]) if row else ""
    shas = dict(
        con.execute(
            "SELECT participant_id, string_agg(sha256, ',' ORDER BY sha256) FROM sources "
            f"WHERE status IN {_OK} AND list_contains($ids, participant_id) GROUP BY 1",
            {"ids": ids},
        ).fetchall()
    )
    rows = con.execute(
        """
        SELECT p.participant_id,
            CAST(ROW(p.sex, p.birth_year, p.timezone, p.arm, p.hr_rest_bpm, p.hr_rest_source,
                     p.hr_max_bpm, p.hr_max_source, p.start_date) AS VARCHAR),
            (SELECT string_agg(CAST(ROW(a.valid_from, a.hr_rest_bpm, a.hr_max_bpm) AS VARCHAR),
                               chr(10) ORDER BY a.valid_from)
             FROM hr_anchors a WHERE a.participant_id = p.participant_id),
            (SELECT md5(string_agg(CAST(ROW(epoch_us(s.ts), s.instrument, s.item, s.value,
                                            s.utc_offset_s) AS VARCHAR),
                                   chr(10) ORDER BY s.instrument, s.ts, s.item))
             FROM symptoms s WHERE s.participant_id = p.participant_id),
            (SELECT CAST(ROW(r.weeks, r.sessions_per_week, r.min_session_min, r.band_scheme,
                             r.band_low, r.band_high, r.qualify_rule, r.trimp_per_week,
                             CAST(r.definition AS VARCHAR)) AS VARCHAR)
             FROM prescriptions r WHERE r.arm = p.arm)
        FROM participants p WHERE list_contains($ids, p.participant_id)
        """,
        {"ids": ids},
    ).fetchall()
    out = {}
    for pid, person, anchors, symptoms, prescription in rows:
        text = "\n".join(
            [
                params_id,
                str(shas.get(pid) or ""),
                instruments,
                str(person),
                str(anchors or ""),
                str(symptoms or ""),
                str(prescription or ""),
            ]
        )
        out[str(pid)] = hashlib.sha256(text.encode()).hexdigest()[:32]
    return out


def insert_from_parquet(
    con: duckdb.DuckDBPyConnection,
    table: str,
    files: Sequence[Path],
    where: str = "",
    params: Mapping[str, Any] | None = None,
) -> None:
    """``INSERT INTO table (cols) SELECT cols FROM read_parquet([files]) [WHERE ...]``, with
    the schema's column list (columnar; an explicit file list, never a glob)."""
    if not files:
        return
    from .tables import schema_columns

    cols = ", ".join(c for c, _ in schema_columns(table))
    sql = f"INSERT INTO {table} ({cols}) SELECT {cols} FROM read_parquet($files)"
    if where:
        sql += f" WHERE {where}"
    con.execute(sql, {"files": [str(f) for f in files], **(params or {})})


def source_files(ds: Dataset, table: str, shas: Sequence[str]) -> list[Path]:
    """The files holding rows of these sources for a source-level table: the compacted files
    when any of them is compacted, and the uncompacted parts (filter the rows by participant
    or source)."""
    out: list[Path] = []
    compacted = ds.compacted_sources
    if any(s in compacted for s in shas):
        out.extend(ds.compacted_files(table))
    out.extend(ds.parts(table, shas))
    return out


def derive_participant(
    participant_id: str, out_root: str | os.PathLike[str], *, params_id: str
) -> DeriveSummary:
    """Compute one participant's derived tables from the parts and write them as parts.

    Parameters
    ----------
    participant_id
        Whose tables (must be in the ``_study`` snapshot).
    out_root
        The parts root.
    params_id
        The dose configuration the caller expects (must be the run's).

    Returns
    -------
    DeriveSummary
        'unchanged' when the parts of this digest are already complete (nothing is written).
    """
    from ..config import DoseConfig
    from ..storage.db import fetch_arrow
    from ..storage.derive import recompute
    from ..storage.schema import DERIVED_TABLES
    from .tables import DATA_TABLES, memory_database

    t0 = time.perf_counter()
    root = Path(out_root).resolve()
    task = read_run(root)
    cfg = DoseConfig.from_json(task.dose_config)
    if cfg.params_id != params_id:
        raise UsageError(
            f"params_id {params_id} is not the run's ({cfg.params_id}, {root / '_run.json'})",
            fix="derive with the run's dose configuration, or start a new parts folder",
        )
    ds = Dataset.open(root)
    shas = ds.participant_sources(participant_id)
    study = root / STUDY_DIR
    con = _scratch_db(memory_database)
    ok = False
    try:
        pid = {"pid": participant_id}
        for name in ("participants", "hr_anchors", "symptoms"):
            f = study / f"{name}.parquet"
            insert_from_parquet(con, name, [f] if f.exists() else [], "participant_id = $pid", pid)
        for name in ("instruments", "prescriptions"):
            f = study / f"{name}.parquet"
            insert_from_parquet(con, name, [f] if f.exists() else [])
        got = con.execute(
            "SELECT count(*) FROM participants WHERE participant_id = ?", [participant_id]
        ).fetchone()
        if not got or not got[0]:
            raise UsageError(
                f"unknown participant {participant_id!r} (not in {study / 'participants.parquet'})",
                fix="add the participant and start the run again (it snapshots the roster)",
            )
        insert_from_parquet(
            con, "sources", source_files(ds, "sources", shas), "participant_id = $pid", pid
        )
        digest = participant_digests(con, [participant_id], params_id)[participant_id]
        marker_path = derived_marker_path(root, participant_id)
        if _complete(ds, marker_path, participant_id, digest):
            ok = True
            return DeriveSummary(participant_id, digest, params_id, "unchanged", seconds=_since(t0))
        sids = [r[0] for r in con.execute("SELECT source_id FROM sources").fetchall()]
        for name in DATA_TABLES:
            files = source_files(ds, name, shas)
            if name == "accel_processing":
                where = "list_contains($sids, source_id)"
                insert_from_parquet(con, name, files, where, {"sids": sids})
            else:
                insert_from_parquet(con, name, files, "participant_id = $pid", pid)
        recompute(con, [participant_id], cfg=cfg)
        tables: dict[str, int] = {}
        written: list[str] = []
        for name in DERIVED_TABLES:
            table = fetch_arrow(
                con.execute(f"SELECT * FROM {name} WHERE participant_id = ?", [participant_id])
            )
            if table.num_rows:
                target = derived_path(root, name, participant_id, digest)
                write_parquet_atomic(target, table)
                tables[name] = table.num_rows
                written.append(relative(root, target))
        ok = True
    finally:
        _release_scratch_db(con, clean=ok)
    import json

    marker = {
        "participant_id": participant_id,
        "digest": digest,
        "params_id": params_id,
        "tables": tables,
    }
    write_atomic(marker_path, (json.dumps(marker, sort_keys=True) + "\n").encode())
    _drop_older(root, participant_id, digest)
    return DeriveSummary(
        participant_id,
        digest,
        params_id,
        "derived",
        tables,
        (*written, relative(root, marker_path)),
        _since(t0),
    )


_local = threading.local()


def _scratch_db(make: Callable[[], duckdb.DuckDBPyConnection]) -> duckdb.DuckDBPyConnection:
    """This thread's in-memory database with the project's schema, emptied after each use
    (making one costs tens of milliseconds, emptying one a few)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = make()
        _local.tables = [
            str(r[0])
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' AND table_name NOT IN ('meta', 'parameter_sets')"
            ).fetchall()
        ]
    _local.con = None  # in use: a nested or failed call makes its own
    return con


def _release_scratch_db(con: duckdb.DuckDBPyConnection, *, clean: bool) -> None:
    """Empty the scratch database for the next participant, or close it after a failure."""
    if not clean:
        con.close()
        return
    try:
        con.execute("BEGIN TRANSACTION")
        for name in _local.tables:
            con.execute(f"DELETE FROM {name}")
        con.execute("COMMIT")
    except Exception:
        con.close()
        return
    _local.con = con


def _complete(ds: Dataset, marker_path: Path, participant_id: str, digest: str) -> bool:
    if not marker_path.exists():
        return False
    marker = _read_json(marker_path)
    if marker.get("digest") != digest:
        return False
    if ds.compacted_derived.get(participant_id) == digest:
        return True
    return all(
        derived_path(ds.root, t, participant_id, digest).exists()
        for t in (marker.get("tables") or {})
    )


def _drop_older(root: Path, participant_id: str, digest: str) -> None:
    """Remove the participant's derived parts of other digests (once the new one is done)."""
    from ..storage.schema import DERIVED_TABLES

    key = participant_key(participant_id)
    for name in DERIVED_TABLES:
        folder = root / DERIVED_DIR / name / key
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for e in entries:
            if e.name != f"{digest}.parquet" and not is_temp_name(e.name):
                Path(e.path).unlink(missing_ok=True)


def _since(t0: float) -> float:
    return round(time.perf_counter() - t0, 6)
