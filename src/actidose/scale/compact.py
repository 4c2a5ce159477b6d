"""Few large files instead of one per source, and the SQL contract over them.

Query time over a Parquet dataset grows with the number of files (every footer is read), so
:func:`compact` merges the parts into files of about ``target_rows`` rows per table, sorted by
participant then time (a participant's rows are contiguous, and DuckDB skips files and row
groups by their participant range). It runs in four steps, each safe to interrupt:

1. finish an earlier compact that was interrupted (step 4 of the manifest in force);
2. write generation ``g + 1``: ``compact/<table>/g<gen>-<k>.parquet``, each to a temporary name
   then renamed (files no manifest lists are ignored by every reader);
3. swap the manifest ``compact/_manifest.json`` (written whole, then renamed): it lists the
   files, the sources (sha256) and the participants' derived digests they hold;
4. remove what the manifest made redundant: older generations, the data parts of compacted
   sources, compacted derived parts. ``sources`` parts stay: they mark files as done, so a
   rerun of the import still skips them.

:func:`attach` makes every table of the SQL contract a view over the compacted files plus the
parts not compacted yet (absolute paths, explicit file lists), or loads the folder into the
database (:func:`actidose.scale.load.load_parts`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .parts import (
    COMPACT_DIR,
    DERIVED_DIR,
    MANIFEST,
    PARTS_DIR,
    STUDY_DIR,
    Dataset,
    _list_parts,
    _read_json,
    is_temp_name,
    participant_key,
    relative,
    temp_name,
    write_atomic,
)

if TYPE_CHECKING:
    import duckdb

    from .load import LoadSummary

#: Rows per compacted file (a participant's rows are never split, so a file may hold more).
TARGET_ROWS = 20_000_000
#: Temporary files older than this (seconds) are left-overs of killed writers.
STALE_TEMP_S = 3600.0


@dataclass(frozen=True)
class CompactSummary:
    """What :func:`compact` did: the manifest's ``generation`` (unchanged when there was
    nothing to merge), compacted ``files`` and ``rows`` per table, ``sources`` and
    ``participants`` (derived) the compacted files hold, part files ``removed``."""

    generation: int
    files: Mapping[str, int] = field(default_factory=dict)
    rows: Mapping[str, int] = field(default_factory=dict)
    sources: int = 0
    participants: int = 0
    removed: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "generation": self.generation,
            "files": dict(self.files),
            "rows": dict(self.rows),
            "sources": self.sources,
            "participants": self.participants,
            "removed": self.removed,
            "seconds": self.seconds,
        }


def compact(out_root: str | os.PathLike[str], *, target_rows: int = TARGET_ROWS) -> CompactSummary:
    """Merge the parts of a parts root into participant-sorted files (see the module notes).

    Run it when no import is writing into the folder.

    Parameters
    ----------
    out_root
        The parts root.
    target_rows
        Rows per compacted file (a participant is never split across files).

    Returns
    -------
    CompactSummary
    """
    from ..storage.schema import DERIVED_TABLES
    from .tables import SOURCE_TABLES

    if target_rows < 1:
        raise UsageError("target_rows must be at least 1")
    t0 = time.perf_counter()
    root = Path(out_root).resolve()
    removed = _finish(root)
    ds = Dataset.open(root)
    old = ds.manifest
    new_sources = ds.new_sources()
    current = {pid: str(m["digest"]) for pid, m in ds.derived.items()}
    if not new_sources and current == ds.compacted_derived and old:
        return _summary(old, removed, t0)
    gen = int(old.get("generation", 0)) + 1
    sha_pid = _source_participants(ds, new_sources)
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in SOURCE_TABLES:
        parts = ds.parts(name)
        owners = [sha_pid.get(p.name[:64], "") for p in parts]
        tables[name] = _merge(root, name, gen, old, parts, owners, [], target_rows)
    stale = ds.stale_compacted()
    for name in DERIVED_TABLES:
        pids = [pid for pid in ds.derived if current[pid] != ds.compacted_derived.get(pid)]
        parts = ds.derived_parts(name, pids)
        owners = [pid for pid in pids if name in (ds.derived[pid].get("tables") or {})]
        tables[name] = _merge(root, name, gen, old, parts, owners, stale, target_rows)
    manifest = {
        "layout": 1,
        "generation": gen,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": tables,
        "sources": sorted(ds.sources),
        "derived": dict(sorted(current.items())),
    }
    _swap_manifest(root, manifest)
    removed += _finish(root)
    return _summary(manifest, removed, t0)


def _summary(manifest: Mapping[str, Any], removed: int, t0: float) -> CompactSummary:
    tables = manifest.get("tables") or {}
    return CompactSummary(
        int(manifest.get("generation", 0)),
        {t: len(v) for t, v in tables.items() if v},
        {t: sum(int(e["rows"]) for e in v) for t, v in tables.items() if v},
        len(manifest.get("sources") or ()),
        len(manifest.get("derived") or {}),
        removed,
        round(time.perf_counter() - t0, 6),
    )


def _source_participants(ds: Dataset, shas: Mapping[str, Path]) -> dict[str, str]:
    """sha256 -> participant of the uncompacted sources (one columnar read)."""
    if not shas:
        return {}
    con = _duck()
    try:
        rows = con.execute(
            "SELECT sha256, participant_id FROM read_parquet($files)",
            {"files": [str(p) for p in shas.values()]},
        ).fetchall()
    finally:
        con.close()
    return {str(s): str(p) for s, p in rows}


def _duck() -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    return con


def _groups(counts: Sequence[tuple[str, int]], target_rows: int) -> list[tuple[str, str, int]]:
    """Contiguous participant ranges ``(first, last, rows)`` of about ``target_rows`` rows."""
    out: list[tuple[str, str, int]] = []
    lo = hi = ""
    n = 0
    for pid, c in counts:
        if n and n + c > target_rows:
            out.append((lo, hi, n))
            n = 0
        if n == 0:
            lo = pid
        hi = pid
        n += c
    if n:
        out.append((lo, hi, n))
    return out


def _quote_list(files: Sequence[Path | str]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


def _merge(
    root: Path,
    table: str,
    gen: int,
    old: Mapping[str, Any],
    parts: Sequence[Path],
    owners: Sequence[str],
    stale: Sequence[str],
    target_rows: int,
) -> list[dict[str, Any]]:
    """Write generation ``gen`` of one table from the previous generation's files (without the
    rows of ``stale`` participants) and ``parts`` (``owners``: the participant of each part,
    used to give each output file only the parts it needs)."""
    from .tables import SORT_KEYS, schema_columns

    prev = [e for e in (old.get("tables") or {}).get(table) or []]
    prev_files = [root / str(e["file"]) for e in prev]
    if not prev_files and not parts:
        return []
    cols = ", ".join(c for c, _ in schema_columns(table))
    order = ", ".join(SORT_KEYS[table])
    has_pid = "participant_id" in {c for c, _ in schema_columns(table)}
    keep_prev = "NOT list_contains($stale, participant_id)" if has_pid else "true"
    folder = root / COMPACT_DIR / table
    folder.mkdir(parents=True, exist_ok=True)
    con = _duck()
    try:

        def source(lo: str | None, hi: str | None) -> tuple[str, dict[str, Any]]:
            """The rows of participants lo..hi (all rows when None)."""
            sel = []
            params: dict[str, Any] = {}
            rng = "participant_id BETWEEN $lo AND $hi" if lo is not None else "true"
            use_prev = prev_files
            use_parts = list(parts)
            if lo is not None and hi is not None:
                use_prev = [
                    f
                    for f, e in zip(prev_files, prev, strict=True)
                    if not (e.get("participant_max", "") < lo or e.get("participant_min", "") > hi)
                ]
                use_parts = [p for p, o in zip(parts, owners, strict=True) if lo <= o <= hi]
                params.update(lo=lo, hi=hi)
            if use_prev:
                sel.append(f"SELECT {cols} FROM read_parquet($prev) WHERE {rng} AND {keep_prev}")
                params["prev"] = [str(f) for f in use_prev]
                if has_pid:
                    params["stale"] = list(stale)
            if use_parts:
                sel.append(f"SELECT {cols} FROM read_parquet($parts) WHERE {rng}")
                params["parts"] = [str(p) for p in use_parts]
            if not sel:
                return f"SELECT {cols} FROM (SELECT 1) WHERE false", {}
            return " UNION ALL ".join(sel), params

        if has_pid:
            union, params = source(None, None)
            counts = [
                (str(r[0]), int(r[1]))
                for r in con.execute(
                    f"SELECT participant_id, count(*) FROM ({union}) GROUP BY 1 ORDER BY 1",
                    params,
                ).fetchall()
            ]
            groups: list[tuple[str | None, str | None, int]] = list(_groups(counts, target_rows))
        else:
            union, params = source(None, None)
            row = con.execute(f"SELECT count(*) FROM ({union})", params).fetchone()
            groups = [(None, None, int(row[0]) if row else 0)]
        out: list[dict[str, Any]] = []
        for k, (lo, hi, n) in enumerate(groups):
            if n == 0:
                continue
            target = folder / f"g{gen}-{k:05d}.parquet"
            tmp = temp_name(target)
            union, params = source(lo, hi)
            path_sql = "'" + str(tmp).replace("'", "''") + "'"
            con.execute(
                f"COPY (SELECT * FROM ({union}) ORDER BY {order}) TO {path_sql} "
                "(FORMAT parquet, COMPRESSION zstd)",
                params,
            )
            _fsync(tmp)
            os.replace(tmp, target)
            entry: dict[str, Any] = {"file": relative(root, target), "rows": n}
            if lo is not None:
                entry.update(participant_min=lo, participant_max=hi)
            out.append(entry)
        return out
    finally:
        con.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_manifest(root: Path, manifest: Mapping[str, Any]) -> None:
    """Step 3: the new manifest in place of the old one, atomically."""
    path = root / COMPACT_DIR / MANIFEST
    write_atomic(path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())


def _finish(root: Path, stale_temp_s: float = STALE_TEMP_S) -> int:
    """Step 4 for the manifest in force: remove what it made redundant. Returns the number of
    files removed."""
    from ..storage.schema import DERIVED_TABLES
    from .tables import DATA_TABLES

    path = root / COMPACT_DIR / MANIFEST
    if not path.exists():
        return 0
    manifest = _read_json(path)
    listed = {
        str(e["file"]) for entries in (manifest.get("tables") or {}).values() for e in entries
    }
    removed = 0
    compact_dir = root / COMPACT_DIR
    for sub in sorted(p for p in compact_dir.iterdir() if p.is_dir()):
        for f in sub.iterdir():
            if relative(root, f) not in listed:
                f.unlink(missing_ok=True)
                removed += 1
    shas = set(manifest.get("sources") or ())
    for name in DATA_TABLES:
        for sha, p in _list_parts(root / PARTS_DIR / name).items():
            if sha in shas:
                p.unlink(missing_ok=True)
                removed += 1
    done = {
        (participant_key(pid), f"{digest}.parquet")
        for pid, digest in (manifest.get("derived") or {}).items()
    }
    for name in DERIVED_TABLES:
        top = root / DERIVED_DIR / name
        if not top.is_dir():
            continue
        for entry in os.scandir(top):
            if not entry.is_dir():
                continue
            for e in os.scandir(entry.path):
                if (entry.name, e.name) in done:
                    Path(e.path).unlink(missing_ok=True)
                    removed += 1
    now = time.time()
    for top in (root / PARTS_DIR, root / DERIVED_DIR):
        if not top.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                if is_temp_name(name):
                    p = Path(dirpath) / name
                    try:
                        if now - p.stat().st_mtime > stale_temp_s:
                            p.unlink()
                            removed += 1
                    except FileNotFoundError:
                        pass
    return removed


# ------------------------------------------------------------------------------ attach
@dataclass(frozen=True)
class AttachSummary:
    """What :func:`attach` did: the ``views`` made and the Parquet ``files`` they read, or the
    :class:`~actidose.scale.load.LoadSummary` of ``load=True``."""

    views: tuple[str, ...] = ()
    files: int = 0
    loaded: LoadSummary | None = None


def attach(
    con: duckdb.DuckDBPyConnection, out_root: str | os.PathLike[str], *, load: bool = False
) -> AttachSummary:
    """Make the SQL contract's tables available over a parts root.

    Parameters
    ----------
    con
        ``load=False``: a DuckDB connection without actidose tables (a new database file, or
        in-memory), which gets one view per table of the contract (source-level, derived and
        the study tables of the ``_study`` snapshot) reading the compacted files and the
        uncompacted parts by absolute path. ``load=True``: the study database, into which the
        folder is loaded (:func:`actidose.scale.load.load_parts`).
    out_root
        The parts root.
    load
        Load instead of making views.

    Returns
    -------
    AttachSummary

    Raises
    ------
    UsageError
        ``load=False`` on a connection that holds actidose tables of the same names.
    """
    from ..storage.schema import DERIVED_TABLES, RECORDED_TABLES
    from .tables import SOURCE_TABLES, STUDY_TABLES, schema_columns

    root = Path(out_root).resolve()
    if load:
        from .load import load_parts

        return AttachSummary(loaded=load_parts(con, root))
    names = [*RECORDED_TABLES, *DERIVED_TABLES]
    clash = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema = current_schema() AND list_contains($names, table_name)",
            {"names": names},
        ).fetchall()
    ]
    if clash:
        raise UsageError(
            f"this database has actidose tables ({', '.join(sorted(clash)[:5])}); views of "
            "the same names cannot be made in it",
            fix="attach into a new database file, or load the parts into this one (--load)",
        )
    ds = Dataset.open(root)
    stale = ds.stale_compacted()
    made: list[str] = []
    n_files = 0
    for name in names:
        columns = schema_columns(name)
        cols = ", ".join(c for c, _ in columns)
        selects: list[str] = []
        if name in STUDY_TABLES:
            f = root / STUDY_DIR / f"{name}.parquet"
            if f.exists():
                selects.append(f"SELECT {cols} FROM read_parquet({_quote_list([f])})")
                n_files += 1
        elif name in SOURCE_TABLES:
            compacted, parts = ds.compacted_files(name), ds.parts(name)
            for files in (compacted, parts):
                if files:
                    selects.append(f"SELECT {cols} FROM read_parquet({_quote_list(files)})")
                    n_files += len(files)
        elif name in DERIVED_TABLES:
            compacted, parts = ds.compacted_files(name), ds.derived_parts(name)
            if compacted:
                where = ""
                if stale:
                    where = " WHERE NOT list_contains(" + _quote_list(stale) + ", participant_id)"
                selects.append(f"SELECT {cols} FROM read_parquet({_quote_list(compacted)}){where}")
                n_files += len(compacted)
            if parts:
                selects.append(f"SELECT {cols} FROM read_parquet({_quote_list(parts)})")
                n_files += len(parts)
        typed = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in columns)
        if selects:
            body = f"SELECT {typed} FROM ({' UNION ALL '.join(selects)})"
        else:
            nulls = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in columns)
            body = f"SELECT {nulls} WHERE false"
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
        made.append(name)
    return AttachSummary(tuple(made), n_files)
