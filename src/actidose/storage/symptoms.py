"""Symptom ratings in the database: instrument definitions, file imports, and the rows of the
derived ``symptom_scores`` table.

Imports
-------
One symptom file is one transaction: its ``symptom_files`` row, its good item values in
``symptoms`` (columnar, through Arrow), and the participants it touched in
``pending_recompute``. A file that cannot be read at all raises :class:`InputError` and stores
nothing.

* The same bytes again (sha256) change nothing and are reported as already imported, unless
  lines of that file were rejected last time: then it is read again, so that rows refused for
  a participant added since (or an instrument defined since) come in; values already stored
  are skipped, and its ``symptom_files`` row is updated only when something changed.
* A value already stored for the same (participant, instrument, instant, item) with the same
  value is skipped silently; with a different value the line is rejected ("conflicts with the
  value stored from FILE line M") unless ``replace=True``, which overwrites the stored value
  (the row then points at the new file and line).
* ``symptom_files.n_values`` counts the values a file added (or replaced), not the ones it
  repeated; ``rejected`` lists ``{"line", "reason"}`` of every line refused on its last read.

Instruments
-----------
The built-in definitions (:data:`actidose.dose.instruments.BUILTINS`) are written to
``instruments`` on first use (:func:`ensure_builtins`) and never overwrite a study's own
definition of the same name. :func:`sync_instruments` writes a study's definitions; when a
definition changes, the participants with ratings on it are marked for recompute (their scores
change). An instrument with ratings but no definition is read as
:meth:`Instrument.default` (plain sum, recall 1 day).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ..dose.instruments import BUILTINS, Instrument, band, score
from ..ingest.symptoms import SymptomRows, parse_symptoms, read_symptom_file
from ..timeutil import local_days
from .db import transaction
from .write import insert_columns, ts_array

__all__ = [
    "InstrumentMap",
    "SymptomImport",
    "ensure_builtins",
    "import_file",
    "instruments",
    "list_instruments",
    "recall_days",
    "score_table",
    "sync_instruments",
]


class InstrumentMap(dict[str, Instrument]):
    """Definitions by name; looking up a name without one (``defs[name]``) gives
    :meth:`Instrument.default` (``get`` and ``in`` still tell defined names apart)."""

    def __missing__(self, key: str) -> Instrument:
        return Instrument.default(key)


# ------------------------------------------------------------------------------ instruments
def _definition_json(instr: Instrument) -> str:
    return json.dumps(instr.to_dict(), sort_keys=True)


def _upsert(con: duckdb.DuckDBPyConnection, instr: Instrument, origin: str) -> None:
    con.execute(
        "INSERT OR REPLACE INTO instruments (instrument, n_items, value_min, value_max, "
        "recall_days, scoring, definition, origin, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
        [
            instr.name,
            instr.n_items,
            instr.value_min,
            instr.value_max,
            instr.recall_days,
            instr.scoring,
            _definition_json(instr),
            origin,
            datetime.now(UTC),
        ],
    )


def ensure_builtins(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Write the built-in instruments that the ``instruments`` table lacks (a study's own
    definition of the same name is kept). Returns the names written."""
    have = {r[0] for r in con.execute("SELECT instrument FROM instruments").fetchall()}
    missing = [b for name, b in BUILTINS.items() if name not in have]
    if missing:
        with transaction(con):
            for b in missing:
                _upsert(con, b, "builtin")
    return [b.name for b in missing]


def sync_instruments(
    con: duckdb.DuckDBPyConnection, instruments: list[Instrument], origin: str
) -> list[str]:
    """Insert or update instrument definitions (from a definitions file ``origin``), in one
    transaction. Participants with ratings on a changed definition are marked for recompute.

    Returns
    -------
    list of str
        Names whose stored definition was new or different (unchanged ones are left alone,
        keeping their ``updated_at``).
    """
    for instr in instruments:
        instr.validate()
    ensure_builtins(con)
    stored = {
        str(r[0]): (str(r[1]), str(r[2]))
        for r in con.execute("SELECT instrument, definition, origin FROM instruments").fetchall()
    }
    changed = [i for i in instruments if stored.get(i.name) != (_definition_json(i), origin)]
    redefined = [i.name for i in changed if stored.get(i.name, ("",))[0] != _definition_json(i)]
    with transaction(con):
        for instr in changed:
            _upsert(con, instr, origin)
        if redefined:
            con.execute(
                "INSERT OR IGNORE INTO pending_recompute SELECT DISTINCT participant_id "
                "FROM symptoms WHERE list_contains(?, instrument)",
                [redefined],
            )
    return [i.name for i in changed]


def list_instruments(con: duckdb.DuckDBPyConnection) -> list[tuple[Instrument, str]]:
    """Every known instrument with its origin (``builtin``, a definitions file, or
    ``undefined`` for names that have ratings but no definition), sorted by name."""
    out: dict[str, tuple[Instrument, str]] = {name: (b, "builtin") for name, b in BUILTINS.items()}
    for name, definition, origin in con.execute(
        "SELECT instrument, definition, origin FROM instruments"
    ).fetchall():
        out[str(name)] = (Instrument.from_dict(str(name), json.loads(definition)), str(origin))
    for (name,) in con.execute("SELECT DISTINCT instrument FROM symptoms").fetchall():
        if name not in out:
            out[str(name)] = (Instrument.default(str(name)), "undefined")
    return [out[k] for k in sorted(out)]


def instruments(con: duckdb.DuckDBPyConnection) -> InstrumentMap:
    """The stored definitions (and the built-ins, when not yet written) by name; other names
    look up as :meth:`Instrument.default`. Works on a read-only connection."""
    defs = InstrumentMap(BUILTINS)
    for name, definition in con.execute(
        "SELECT instrument, definition FROM instruments"
    ).fetchall():
        defs[str(name)] = Instrument.from_dict(str(name), json.loads(definition))
    return defs


def recall_days(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Recall window in days of every instrument that has ratings or a definition."""
    defs = instruments(con)
    names = set(defs) | {
        str(r[0]) for r in con.execute("SELECT DISTINCT instrument FROM symptoms").fetchall()
    }
    return {name: float(defs[name].recall_days) for name in sorted(names)}


# ------------------------------------------------------------------------------ import
@dataclass
class SymptomImport:
    """The outcome of importing one symptom file."""

    path: str
    sha256: str
    layout: str | None = None
    instrument: str | None = None  # of a wide file
    file_id: int | None = None
    n_lines: int = 0
    n_values: int = 0  # values stored (new or replaced) by this import
    n_unchanged: int = 0  # values the database already held with the same value
    n_replaced: int = 0  # of n_values, stored values overwritten (replace=True)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    already_imported: bool = False  # same bytes imported before: nothing read or changed
    participants: list[str] = field(default_factory=list)  # whose stored values changed

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rejected"] = [{"line": ln, "reason": r} for ln, r in self.rejected]
        return d


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _key_table(rows: SymptomRows, idx: np.ndarray) -> pa.Table:
    return pa.table(
        {
            "participant_id": pa.array(rows.participant_id[idx].tolist(), pa.string()),
            "instrument": pa.array(rows.instrument[idx].tolist(), pa.string()),
            "ts": ts_array(rows.ts_us[idx]),
            "item": pa.array(rows.item[idx], pa.int32()),
            "value": pa.array(rows.value[idx], pa.float64()),
            "utc_offset_s": pa.array(rows.utc_offset_s[idx], pa.int32()),
            "line": pa.array(rows.line[idx], pa.int64()),
            "idx": pa.array(np.asarray(idx, np.int64), pa.int64()),
        }
    )


def _stored(
    con: duckdb.DuckDBPyConnection, rows: SymptomRows
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """For the values already in the database: their index in ``rows``, stored value, file
    path and line."""
    if not len(rows):
        e = np.empty(0, np.int64)
        return e, np.empty(0, np.float64), [], e
    con.register("_cand", _key_table(rows, np.arange(len(rows))))
    try:
        got = con.execute(
            "SELECT c.idx, s.value, f.path, s.line FROM _cand c JOIN symptoms s "
            "ON s.participant_id = c.participant_id AND s.instrument = c.instrument "
            "AND s.ts = c.ts AND s.item = c.item "
            "JOIN symptom_files f ON f.file_id = s.file_id ORDER BY c.idx"
        ).fetchall()
    finally:
        con.unregister("_cand")
    return (
        np.array([r[0] for r in got], np.int64),
        np.array([r[1] for r in got], np.float64),
        [str(r[2]) for r in got],
        np.array([r[3] for r in got], np.int64),
    )


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def import_file(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    *,
    instrument: str | None = None,
    timezone: str | None = None,
    replace: bool = False,
) -> SymptomImport:
    """Import one symptom CSV (layouts, times and rejections: :mod:`actidose.ingest.symptoms`).

    Parameters
    ----------
    con
        A writable connection, not inside a transaction.
    path
        The CSV file.
    instrument
        Instrument of a wide file.
    timezone
        IANA zone for every wall time in the file (default: each participant's zone).
    replace
        Overwrite stored values that this file gives differently (default: reject the line).

    Returns
    -------
    SymptomImport
        What was stored, skipped and rejected.

    Raises
    ------
    InputError
        When the file cannot be read as a symptom CSV (nothing is stored).
    UsageError
        For a wide file without ``instrument``, or an unknown ``timezone``.
    """
    p = Path(path)
    shown = str(path)
    data = read_symptom_file(p)
    sha = _sha256(data)
    prev = con.execute(
        "SELECT file_id, n_rejected, n_values, rejected, layout, instrument, n_lines "
        "FROM symptom_files WHERE sha256 = ?",
        [sha],
    ).fetchone()
    if prev is not None and int(prev[1]) == 0:
        return SymptomImport(
            path=shown,
            sha256=sha,
            layout=str(prev[4]),
            instrument=prev[5],
            file_id=int(prev[0]),
            n_lines=int(prev[6]),
            already_imported=True,
        )
    ensure_builtins(con)
    defs = instruments(con)
    zones = {
        str(r[0]): str(r[1])
        for r in con.execute("SELECT participant_id, timezone FROM participants").fetchall()
    }
    rows = parse_symptoms(
        data,
        path=shown,
        zones=zones,
        instruments=defs,
        instrument=instrument,
        timezone=timezone,
    )
    rejected = list(rows.rejected)
    idx, old_value, old_path, old_line = _stored(con, rows)
    same = old_value == rows.value[idx]
    skip = np.zeros(len(rows), bool)
    skip[idx[same]] = True
    differ = idx[~same]
    replace_idx = np.empty(0, np.int64)
    if differ.size:
        if replace:
            replace_idx = differ
        else:
            skip[differ] = True
            for j in np.flatnonzero(~same).tolist():
                i = int(idx[j])
                rejected.append(
                    (
                        int(rows.line[i]),
                        f"{rows.instrument[i]} item {int(rows.item[i])}: value "
                        f"{_fmt(rows.value[i])} conflicts with the value {_fmt(old_value[j])} "
                        f"stored from {old_path[j]} line {int(old_line[j])} "
                        "(--replace overwrites it)",
                    )
                )
    rejected.sort(key=lambda r: r[0])
    is_replace = np.zeros(len(rows), bool)
    is_replace[replace_idx] = True
    new_idx = np.flatnonzero(~skip & ~is_replace)
    touched = sorted(
        {str(v) for v in rows.participant_id[new_idx].tolist()}
        | {str(v) for v in rows.participant_id[replace_idx].tolist()}
    )
    n_stored = int(new_idx.size + replace_idx.size)
    rejected_json = json.dumps([{"line": ln, "reason": r} for ln, r in rejected])
    result = SymptomImport(
        path=shown,
        sha256=sha,
        layout=rows.layout,
        instrument=rows.file_instrument,
        n_lines=rows.n_lines,
        n_values=n_stored,
        n_unchanged=int(same.sum()),
        n_replaced=int(replace_idx.size),
        rejected=rejected,
        warnings=list(rows.warnings),
        participants=touched,
    )
    if prev is not None and n_stored == 0 and rejected_json == (prev[3] or "[]"):
        result.file_id = int(prev[0])
        return result  # read again, nothing new: leave the database as it was
    with transaction(con):
        now = datetime.now(UTC)
        if prev is None:
            got = con.execute(
                "INSERT INTO symptom_files (sha256, path, layout, instrument, imported_at, "
                "n_lines, n_values, n_rejected, rejected) VALUES (?,?,?,?,?,?,?,?,?) "
                "RETURNING file_id",
                [
                    sha,
                    str(p.absolute()),
                    rows.layout,
                    rows.file_instrument,
                    now,
                    rows.n_lines,
                    n_stored,
                    len(rejected),
                    rejected_json,
                ],
            ).fetchone()
            assert got is not None
            file_id = int(got[0])
        else:
            file_id = int(prev[0])
            con.execute(
                "UPDATE symptom_files SET path = ?, imported_at = ?, n_lines = ?, "
                "n_values = n_values + ?, n_rejected = ?, rejected = ? WHERE file_id = ?",
                [
                    str(p.absolute()),
                    now,
                    rows.n_lines,
                    n_stored,
                    len(rejected),
                    rejected_json,
                    file_id,
                ],
            )
        if replace_idx.size:
            con.register("_rep", _key_table(rows, replace_idx))
            try:
                con.execute(
                    "UPDATE symptoms SET value = r.value, utc_offset_s = r.utc_offset_s, "
                    "file_id = ?, line = r.line FROM _rep r "
                    "WHERE symptoms.participant_id = r.participant_id "
                    "AND symptoms.instrument = r.instrument AND symptoms.ts = r.ts "
                    "AND symptoms.item = r.item",
                    [file_id],
                )
            finally:
                con.unregister("_rep")
        insert_columns(
            con,
            "symptoms (participant_id, ts, instrument, item, value, utc_offset_s, file_id, line)",
            "participant_id, ts, instrument, item, value, utc_offset_s, ?, line",
            _key_table(rows, new_idx),
            [file_id],
        )
        for pid in touched:
            con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [pid])
    result.file_id = file_id
    return result


# ------------------------------------------------------------------------------ scores
def score_table(
    con: duckdb.DuckDBPyConnection, participant_id: str, tz: str, params_id: str
) -> pa.Table | None:
    """The participant's ``symptom_scores`` rows (not written): one per (instrument, instant),
    sorted by instrument and instant; ``day`` is the local date in ``tz``. ``None`` when the
    participant has no ratings."""
    got = con.execute(
        "SELECT instrument, epoch_us(ts) AS ts, item, value FROM symptoms "
        "WHERE participant_id = ? ORDER BY instrument, ts, item",
        [participant_id],
    ).fetchall()
    if not got:
        return None
    inst = np.array([r[0] for r in got], object)
    ts = np.array([r[1] for r in got], np.int64)
    item = np.array([r[2] for r in got], np.int64)
    value = np.array([r[3] for r in got], np.float64)
    new = np.ones(ts.size, bool)
    new[1:] = (inst[1:] != inst[:-1]) | (ts[1:] != ts[:-1])
    rating = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    n = int(starts.size)
    r_inst = inst[starts]
    r_ts = ts[starts]
    scores = np.full(n, np.nan)
    answered = np.zeros(n, np.int64)
    complete = np.zeros(n, bool)
    bands: list[str | None] = [None] * n
    scoring: list[str] = [""] * n
    defs = instruments(con)
    for name in sorted({str(v) for v in r_inst.tolist()}):
        instr = defs[name]
        mine = np.flatnonzero(r_inst == name)  # ratings of this instrument (contiguous)
        vals = inst == name
        local = rating[vals] - mine[0]
        res = score(instr, item[vals], value[vals], local, mine.size)
        scores[mine] = res.score
        answered[mine] = res.n_items
        complete[mine] = res.complete
        for j, b in zip(mine.tolist(), band(instr, res.score), strict=True):
            bands[j] = b
            scoring[j] = instr.scoring
    return pa.table(
        {
            "participant_id": pa.array([participant_id] * n, pa.string()),
            "instrument": pa.array(r_inst.tolist(), pa.string()),
            "ts": ts_array(r_ts),
            "day": pa.array(local_days(r_ts, tz)),
            "score": pa.array(scores, pa.float64(), mask=np.isnan(scores)),
            "band": pa.array(bands, pa.string()),
            "n_items": pa.array(answered, pa.int32()),
            "complete": pa.array(complete, pa.bool_()),
            "scoring": pa.array(scoring, pa.string()),
            "params_id": pa.array([params_id] * n, pa.string()),
        }
    )
