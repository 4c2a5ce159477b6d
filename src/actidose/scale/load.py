"""Loading a parts folder into the study database: the single writer off the hot path.

:func:`load_parts` inserts, in one transaction and columnar (DuckDB ``read_parquet`` over
explicit file lists), every source of the folder that the database does not hold yet, then the
derived rows of the participants it touched:

* a source is matched by sha256: one the database holds is left as it is (already loaded, or
  the same bytes imported before), except a stored *quarantined* row of the same participant
  that the parts hold as readable, which is replaced in place (as the ordinary import retries a
  quarantined file), keeping its ``source_id``;
* ``source_id`` comes from the parts (:func:`actidose.scale.tables.source_id_of`); an incoming
  id that a source of other bytes already has is an error naming both files;
* derived rows of a participant are taken from its derived parts when they are the ones the
  database would compute (same ``params_id``, same digest of sources and study rows,
  :func:`actidose.scale.derive.participant_digests`, and the participant's sources carry their
  deterministic ids); otherwise the participant is marked pending and recomputed after the
  transaction, as the ordinary import does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StorageError, UsageError
from .derive import participant_digests
from .parts import Dataset, read_run

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class LoadSummary:
    """What :func:`load_parts` did.

    ``sources_new``: rows inserted into ``sources``; ``sources_replaced``: quarantined rows
    replaced by a readable copy; ``sources_present``: sources the database already held (by
    sha256). ``rows``: rows inserted per table. ``derived_from_parts``: participants whose
    derived rows came from the parts; ``recomputed``: participants recomputed in the database.
    """

    sources_new: int = 0
    sources_replaced: int = 0
    sources_present: int = 0
    rows: Mapping[str, int] = field(default_factory=dict)
    derived_from_parts: tuple[str, ...] = ()
    recomputed: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "sources_new": self.sources_new,
            "sources_replaced": self.sources_replaced,
            "sources_present": self.sources_present,
            "rows": dict(self.rows),
            "derived_from_parts": list(self.derived_from_parts),
            "recomputed": list(self.recomputed),
            "seconds": self.seconds,
        }


_OK = ("imported", "salvaged")


def load_parts(
    con: duckdb.DuckDBPyConnection,
    out_root: str | os.PathLike[str],
    *,
    recompute_after: bool = True,
) -> LoadSummary:
    """Insert what a parts folder holds and the database does not (one transaction).

    Parameters
    ----------
    con
        The study database (this process is its writer). Every participant of the parts must
        be in its roster.
    out_root
        The parts root.
    recompute_after
        Recompute every participant left pending (as ``import`` does), after the transaction.

    Returns
    -------
    LoadSummary

    Raises
    ------
    UsageError
        A participant of the parts is not in the roster.
    StorageError
        Two different files would get the same ``source_id``.
    """
    from ..storage.db import transaction
    from ..storage.derive import _register_params, load_config, recompute
    from ..storage.schema import DERIVED_TABLES
    from .tables import DATA_TABLES, schema_columns, source_id_of

    t0 = time.perf_counter()
    root = Path(out_root).resolve()
    task = read_run(root)
    ds = Dataset.open(root)
    cfg = load_config(con)
    src_files = [str(p) for p in ds.compacted_files("sources") + ds.parts("sources")]
    rows: dict[str, int] = {}
    n_new = n_replaced = n_present = 0
    from_parts: list[str] = []
    cols = [c for c, _ in schema_columns("sources")]
    with transaction(con):
        con.execute("CREATE OR REPLACE TEMP TABLE _scale_in AS SELECT * FROM sources WHERE false")
        if src_files:
            con.execute(
                f"INSERT INTO _scale_in ({', '.join(cols)}) SELECT {', '.join(cols)} "
                "FROM read_parquet($files)",
                {"files": src_files},
            )
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _scale_plan AS
            SELECT i.sha256, i.source_id AS part_id, i.participant_id, i.path,
                s.source_id AS db_id,
                CASE
                    WHEN s.source_id IS NULL THEN 'new'
                    WHEN s.status = 'quarantined' AND s.participant_id = i.participant_id
                        AND i.status IN ('imported', 'salvaged') THEN 'replace'
                    ELSE 'present'
                END AS action
            FROM _scale_in i LEFT JOIN sources s USING (sha256)
            """
        )
        _check(con)
        counts = dict(con.execute("SELECT action, count(*) FROM _scale_plan GROUP BY 1").fetchall())
        n_new, n_replaced = int(counts.get("new", 0)), int(counts.get("replace", 0))
        n_present = int(counts.get("present", 0))
        con.execute(
            f"INSERT INTO sources ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _scale_in "
            "WHERE sha256 IN (SELECT sha256 FROM _scale_plan WHERE action = 'new')"
        )
        if n_replaced:
            sets = ", ".join(f"{c} = i.{c}" for c in cols if c not in ("source_id", "sha256"))
            con.execute(
                f"UPDATE sources SET {sets} FROM _scale_in i "
                "WHERE sources.sha256 = i.sha256 AND i.sha256 IN "
                "(SELECT sha256 FROM _scale_plan WHERE action = 'replace')"
            )
        rows["sources"] = n_new
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _scale_ids AS SELECT part_id, "
            "CASE WHEN action = 'new' THEN part_id ELSE db_id END AS db_id, sha256 "
            "FROM _scale_plan WHERE action IN ('new', 'replace')"
        )
        wanted = {r[0] for r in con.execute("SELECT sha256 FROM _scale_ids").fetchall()}
        compacted = ds.compacted_sources
        for name in DATA_TABLES:
            files = [
                str(p) for s, p in ds.all_parts(name).items() if s in wanted and s not in compacted
            ]
            if wanted & compacted:
                files = [str(p) for p in ds.compacted_files(name)] + files
            if not files:
                rows[name] = 0
                continue
            names = [c for c, _ in schema_columns(name)]
            select = ", ".join("m.db_id" if c == "source_id" else f"p.{c}" for c in names)
            got = con.execute(
                f"INSERT INTO {name} ({', '.join(names)}) SELECT {select} "
                "FROM read_parquet($files) p JOIN _scale_ids m ON p.source_id = m.part_id",
                {"files": files},
            ).fetchone()
            rows[name] = int(got[0]) if got else 0

        # --- derived rows: from the parts when they are what the database would compute
        touched = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT i.participant_id FROM _scale_in i JOIN _scale_ids m "
                "USING (sha256) WHERE i.status IN ('imported', 'salvaged')"
            ).fetchall()
        }
        pending = {
            r[0] for r in con.execute("SELECT participant_id FROM pending_recompute").fetchall()
        }
        candidates = sorted(touched | (pending & set(ds.derived)))
        usable: list[str] = []
        if candidates and task.params_id == cfg.params_id:
            expected = participant_digests(con, candidates, cfg.params_id)
            moved = {
                str(pid)
                for pid, sha, sid in con.execute(
                    "SELECT participant_id, sha256, source_id FROM sources "
                    "WHERE list_contains($ids, participant_id) AND status IN "
                    "('imported', 'salvaged')",
                    {"ids": candidates},
                ).fetchall()
                if int(sid) != source_id_of(str(sha))
            }
            usable = [
                pid
                for pid in candidates
                if pid not in moved
                and pid in ds.derived
                and ds.derived[pid].get("digest") == expected.get(pid)
            ]
        if usable:
            _register_params(con, cfg)
            from_compact = [
                pid for pid in usable if ds.compacted_derived.get(pid) == ds.derived[pid]["digest"]
            ]
            for name in DERIVED_TABLES:
                con.execute(
                    f"DELETE FROM {name} WHERE list_contains($ids, participant_id)",
                    {"ids": usable},
                )
                cols_sql = ", ".join(c for c, _ in schema_columns(name))
                n = 0
                parts = [str(p) for p in ds.derived_parts(name, usable)]
                if parts:
                    got = con.execute(
                        f"INSERT INTO {name} ({cols_sql}) SELECT {cols_sql} "
                        "FROM read_parquet($files)",
                        {"files": parts},
                    ).fetchone()
                    n += int(got[0]) if got else 0
                compact_files = [str(p) for p in ds.compacted_files(name)]
                if from_compact and compact_files:
                    got = con.execute(
                        f"INSERT INTO {name} ({cols_sql}) SELECT {cols_sql} "
                        "FROM read_parquet($files) WHERE list_contains($ids, participant_id)",
                        {"files": compact_files, "ids": from_compact},
                    ).fetchone()
                    n += int(got[0]) if got else 0
                rows[name] = n
            con.execute(
                "DELETE FROM pending_recompute WHERE list_contains($ids, participant_id)",
                {"ids": usable},
            )
            from_parts = usable
        stale = sorted(set(touched) - set(usable))
        if stale:
            con.execute(
                "INSERT OR IGNORE INTO pending_recompute SELECT unnest($ids::VARCHAR[])",
                {"ids": stale},
            )
        for t in ("_scale_ids", "_scale_plan", "_scale_in"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    recomputed = recompute(con) if recompute_after else []
    return LoadSummary(
        n_new,
        n_replaced,
        n_present,
        rows,
        tuple(from_parts),
        tuple(recomputed),
        round(time.perf_counter() - t0, 6),
    )


def _check(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a load that would break the database: unknown participants, id collisions."""
    unknown = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT participant_id FROM _scale_plan WHERE action <> 'present' "
            "AND participant_id NOT IN (SELECT participant_id FROM participants) ORDER BY 1"
        ).fetchall()
    ]
    if unknown:
        raise UsageError(
            "the parts hold files of participants not in the database: "
            + ", ".join(map(str, unknown[:20]))
            + (" ..." if len(unknown) > 20 else ""),
            fix="add them (actidose participant add / roster import), then load again",
        )
    clash = con.execute(
        "SELECT n.part_id, n.path, s.path FROM _scale_plan n JOIN sources s "
        "ON s.source_id = n.part_id AND s.sha256 <> n.sha256 WHERE n.action = 'new' LIMIT 1"
    ).fetchone()
    if clash is None:
        clash = con.execute(
            "SELECT a.part_id, a.path, b.path FROM _scale_plan a JOIN _scale_plan b "
            "ON a.part_id = b.part_id AND a.sha256 < b.sha256 "
            "WHERE a.action = 'new' AND b.action = 'new' LIMIT 1"
        ).fetchone()
    if clash is not None:
        raise StorageError(
            f"source_id {clash[0]} of {clash[1]} is already the id of {clash[2]} (other bytes "
            "whose sha256 starts with the same 13 hex digits); nothing was loaded. Import one "
            "of the two files with the ordinary import (actidose import without --parts)"
        )
