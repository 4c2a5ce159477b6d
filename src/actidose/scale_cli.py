"""The parts path on the command line: ``actidose import --parts DIR`` (through
:func:`run_import`), ``actidose compact DIR`` and ``actidose attach DIR``.

A parts run (see :mod:`actidose.scale`): the driver opens the database only to check the
participants and snapshot the study tables into ``DIR/_study`` (read-only with ``--parts-only``
or ``--shard``), and at the end to load the results (unless ``--parts-only``); in between the
files are processed by workers (a process pool, a Dask cluster) into ``DIR/parts`` with a
ledger in ``DIR/_ledger``, and each participant's derived tables into ``DIR/derived``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .cli_errors import user_errors
from .errors import UsageError
from .output import render

#: Exit statuses (as the ordinary import).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_QUARANTINED = 0, 1, 2, 3


def default_parts_root(db: str | os.PathLike[str] | None) -> Path:
    """``<database>.parts`` beside the database: the parts root when ``--parts`` is not given."""
    from .storage.db import resolve_db_path

    path = resolve_db_path(db).resolve()
    return path.with_name(path.name + ".parts")


def read_manifest(path: Path, *, check_exists: bool = False) -> list[tuple[Path, str]]:
    """``(path, participant_id)`` of each row of a manifest CSV (columns ``path`` and
    ``participant_id``; other columns are ignored). Relative paths are taken from the
    manifest's folder.

    Parameters
    ----------
    path
        The manifest.
    check_exists
        Every listed file or folder must exist.

    Raises
    ------
    UsageError
        Missing manifest or column, an empty cell, or (``check_exists``) a missing file, naming
        the line.
    """
    if not path.is_file():
        raise UsageError(f"no such manifest: {path}")
    out: list[tuple[Path, str]] = []
    base = path.resolve().parent
    with path.open(newline="", encoding="utf-8-sig") as fp:
        reader = csv.DictReader(fp)
        cols = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("path", "participant_id") if c not in cols]
        if missing:
            raise UsageError(
                f"{path}: line 1: no column {', '.join(missing)} (found: {', '.join(cols)})",
                fix="a manifest has a header line: path,participant_id",
            )
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            f, pid = row.get("path", ""), row.get("participant_id", "")
            if not f and not pid:
                continue
            if not f or not pid:
                what = "path" if not f else "participant_id"
                raise UsageError(f"{path}: line {reader.line_num}: empty {what}")
            p = Path(os.path.expanduser(f))
            p = p if p.is_absolute() else base / p
            if check_exists and not p.exists():
                raise UsageError(f"{path}: line {reader.line_num}: no such file or directory: {p}")
            out.append((p, pid))
    if not out:
        raise UsageError(f"{path}: no files listed", fix="one line per file: path,participant_id")
    return out


def _manifest_lines(path: Path) -> dict[str, int]:
    """participant_id -> first manifest line naming it (for error messages)."""
    first: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as fp:
        reader = csv.DictReader(fp)
        for row in reader:
            pid = (row.get("participant_id") or "").strip()
            if pid:
                first.setdefault(pid, reader.line_num)
    return first


def _print_run(summary: Any, *, as_json: bool, parts_root: Path) -> None:
    from .scale.run import STATUSES

    if as_json:
        data = summary.to_dict()
        data["parts"] = str(parts_root)
        click.echo(json.dumps(data, indent=1, default=str))
        return
    problems: list[tuple[str, str, str]] = []
    for e in summary.files:
        members = [m for m in e.get("members") or [] if isinstance(m, dict)]
        for m in members or [e]:
            if m.get("status") in ("quarantined", "failed", "salvaged"):
                shown = m.get("input") or m.get("path") or e.get("input")
                problems.append((str(m.get("status")), str(shown), str(m.get("reason") or "")))
    if problems:
        click.echo(render(["status", "file", "reason"], problems, "table"), err=True)
    pids = {e.get("participant_id") for e in summary.files}
    click.echo(
        f"{len(summary.files)} file(s) of {len(pids)} participant(s); "
        f"{summary.processed} processed now, {summary.resumed} done before (ledger)"
    )
    rows = [(st, summary.count(st)) for st in STATUSES if summary.count(st)]
    if rows:
        click.echo(render(["status", "files"], rows, "table"))
    failed = [d for d in summary.derived if d.get("status") == "failed"]
    if summary.derived:
        click.echo(f"derived tables: {len(summary.derived) - len(failed)} participant(s)")
    for d in failed:
        click.echo(f"derive failed for {d['participant_id']}: {d.get('reason')}", err=True)
    if summary.loaded is not None:
        got = summary.loaded
        rows = got.get("rows")
        n_rows = (
            sum(v for v in rows.values() if isinstance(v, int)) if isinstance(rows, dict) else 0
        )
        click.echo(
            f"loaded into the database: {got.get('sources_new', 0)} new source(s), {n_rows} row(s)"
        )
    else:
        click.echo(f"parts: {parts_root}")


def _check_participants(con: Any, pids: Sequence[str], manifest: Path | None) -> None:
    """Every participant must be in the roster (the error names the manifest line)."""
    known = {str(r[0]) for r in con.execute("SELECT participant_id FROM participants").fetchall()}
    unknown = [p for p in pids if p not in known]
    if unknown:
        where = ""
        if manifest is not None:
            line = _manifest_lines(manifest).get(unknown[0])
            where = f"{manifest}: line {line}: " if line else f"{manifest}: "
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise UsageError(
            f"{where}unknown participant {unknown[0]!r}{more}",
            fix="add them first: actidose participant add ... or participant import ROSTER",
        )


def run_import(
    db: str | None,
    *,
    paths: Sequence[Path] = (),
    participant_id: str | None = None,
    manifest: Path | None = None,
    parts: Path | None = None,
    engine: str = "process",
    scheduler: str | None = None,
    jobs: int = 1,
    retries: int = 3,
    max_in_flight: int | None = None,
    shard: str | None = None,
    parts_only: bool = False,
    salvage: bool = False,
    timezone: str | None = None,
    options: dict[str, str] | None = None,
    limits: Any = None,
    as_json: bool = False,
    progress: bool | None = None,
) -> int:
    """``actidose import`` through the parts path. Returns the exit status (0, 3 some
    quarantined, 1 failure); usage errors raise :class:`~actidose.errors.UsageError`.

    Parameters
    ----------
    db
        The database (``--db``; default ``$ACTIDOSE_DB`` or ``./actidose.duckdb``).
    paths, participant_id
        Files, folders and archives of one participant ...
    manifest
        ... or a CSV of ``path,participant_id`` (relative paths from its folder).
    parts
        The parts root (default: ``<database>.parts``).
    engine
        ``"process"`` (``jobs`` worker processes) or ``"dask"`` (``scheduler``).
    scheduler
        The Dask scheduler's address or scheduler file.
    jobs
        Worker processes of the process pool.
    retries
        Times a file whose task failed (or whose worker died) is tried again.
    max_in_flight
        Tasks submitted at a time (default: 4 per worker).
    shard
        ``"i/N"``: only the inputs (expanded, sorted by path) whose index is ``i - 1`` mod
        ``N``; no derived tables, no database writes (the final run without ``--shard`` does
        them).
    parts_only
        Leave the results as the Parquet dataset (the database is opened read-only).
    salvage, timezone, options, limits
        As for the ordinary import.
    as_json
        Print the summary as JSON.
    progress
        Progress and ETA on stderr (default: when stderr is a terminal).

    Returns
    -------
    int
    """
    from .pipeline import _database_files
    from .scale.executors import make_executor
    from .scale.parts import prepare_run
    from .scale.run import (
        derive_participants,
        expand_inputs,
        parse_shard,
        run_files,
        terminal_progress,
    )
    from .storage.db import connect
    from .storage.derive import recompute

    if manifest is not None and paths:
        raise UsageError(
            "give files or --manifest, not both",
            fix="list every file in the manifest, or import them with -P",
        )
    if manifest is None and not paths:
        raise UsageError("nothing to import", fix="give files and -P ID, or --manifest FILE")
    if manifest is None and not participant_id:
        raise UsageError("files need --participant/-P", fix="or give --manifest FILE")
    if manifest is not None and participant_id:
        raise UsageError(
            "-P does not go with --manifest (the manifest names each file's participant)"
        )
    if engine not in ("process", "dask"):
        raise UsageError(f"unknown engine {engine!r}", fix="use process or dask")
    if max_in_flight is not None and max_in_flight < 1:
        raise UsageError(f"--max-in-flight must be at least 1, not {max_in_flight}")
    if retries < 0:
        raise UsageError(f"--retries must be 0 or more, not {retries}")
    if engine == "dask" and not scheduler:
        raise UsageError(
            "--engine dask needs --scheduler", fix="e.g. --scheduler tcp://head-node:8786"
        )
    if scheduler and engine != "dask":
        raise UsageError("--scheduler is for --engine dask", fix="add --engine dask")
    cut = parse_shard(shard) if shard else None
    read_only = parts_only or cut is not None
    given = (
        read_manifest(manifest, check_exists=True)
        if manifest is not None
        else [(Path(p), str(participant_id)) for p in paths]
    )
    out_root = (parts or default_parts_root(db)).resolve()

    # The executor first: an unreachable cluster is an error before anything is written.
    with make_executor(engine, jobs=jobs, scheduler=scheduler, retries=retries) as ex:  # type: ignore[arg-type]
        # 1. The database: participants, settings, the study snapshot; then closed.
        con = connect(db, read_only=read_only)
        try:
            if not read_only:
                recompute(con)  # heal what a crashed earlier command left pending
            own = _database_files(con)
            inputs = expand_inputs(given, exclude=[*own, out_root], shard=cut)
            _check_participants(con, sorted({p for _, p in given}), manifest)
            # the run's identity (_run.json: created, or checked against these settings) and
            # the study snapshot the workers read instead of the database
            task = prepare_run(
                con,
                out_root,
                salvage=salvage,
                options=dict(options or {}),
                timezone=timezone,
                limits=limits,
            )
        finally:
            con.close()

        # 2. The files, then (not per shard) each participant's derived tables.
        show = False if as_json else progress  # None: when stderr is a terminal
        with terminal_progress("files", enabled=show) as hook:
            summary = run_files(
                inputs,
                out_root,
                ex,
                task=task,
                max_in_flight=max_in_flight,
                retries=retries,
                progress=hook,
            )
        if cut is None:
            touched = sorted({i.participant_id for i in inputs})
            with terminal_progress("participants", enabled=show) as hook:
                summary.derived = derive_participants(
                    touched,
                    out_root,
                    ex,
                    params_id=task.params_id,
                    max_in_flight=max_in_flight,
                    retries=retries,
                    progress=hook,
                )

    # 3. The results into the database (one transaction), unless they stay Parquet.
    if not read_only:
        from .scale.load import load_parts

        con = connect(db)
        try:
            loaded = load_parts(con, out_root)  # recomputes what is left pending
        finally:
            con.close()
        summary.loaded = _summary_dict(loaded)
    _print_run(summary, as_json=as_json, parts_root=out_root)
    return int(summary.exit_code)


def _summary_dict(value: Any) -> dict[str, Any]:
    from .scale.run import _jsonable

    got = _jsonable(value)
    return got if isinstance(got, dict) else {"summary": got}


# --------------------------------------------------------------------------- compact / attach
def register(main: click.Group) -> None:
    """Add ``compact`` and ``attach`` to the ``actidose`` command group."""

    @main.command("compact")
    @click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
    @click.option(
        "--target-rows",
        type=click.IntRange(1_000),
        default=None,
        help="Rows per compacted file (default: the library's).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
    def compact_cmd(folder: Path, target_rows: int | None, as_json: bool) -> None:
        """Merge a parts root's part files into few files per table, sorted by participant and
        time (queries over many small files are slow). Safe to interrupt and run again."""
        from .scale.compact import compact

        with user_errors():
            _require_parts_root(folder)
            kw: dict[str, Any] = {} if target_rows is None else {"target_rows": target_rows}
            got = compact(folder, **kw)
        data = _summary_dict(got)
        if as_json:
            click.echo(json.dumps(data, indent=1, default=str))
        else:
            click.echo(f"compacted {folder}: " + _brief(data))

    @main.command("attach")
    @click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
    @click.option(
        "--load",
        is_flag=True,
        help="Load the parts into the database instead of making views over them.",
    )
    @click.option(
        "--db",
        "target",
        metavar="PATH",
        help="DuckDB file to make the views in or load into (default: the global --db).",
    )
    @click.pass_context
    def attach_cmd(ctx: click.Context, folder: Path, load: bool, target: str | None) -> None:
        """Make the SQL contract's tables available over a parts root: views over its
        (compacted) Parquet files, by absolute path, in a DuckDB file; or, with --load, load
        them into the actidose database so every command works on them."""
        from .scale.compact import attach

        db = target or getattr(ctx.obj, "db", None)
        with user_errors():
            _require_parts_root(folder)
            if load:
                from .storage.db import connect

                con = connect(db)
                try:
                    got = attach(con, folder.resolve(), load=True)
                finally:
                    con.close()
            else:
                got = _attach_views(db, folder.resolve())
        from .storage.db import resolve_db_path

        where = resolve_db_path(db)
        loaded = getattr(got, "loaded", None)
        if load and loaded is not None:
            data = _summary_dict(loaded)
            rows = data.get("rows")
            n = sum(v for v in rows.values() if isinstance(v, int)) if isinstance(rows, dict) else 0
            click.echo(
                f"loaded into {where}: {data.get('sources_new', 0)} new source(s), {n} row(s)"
            )
        else:
            views = getattr(got, "views", ())
            files = getattr(got, "files", 0)
            click.echo(f"{len(views)} view(s) in {where} over {files} Parquet file(s)")


def _attach_views(db: str | None, folder: Path) -> Any:
    """Views in a DuckDB file (not an actidose database: its tables have the same names)."""
    import duckdb

    from .scale.compact import attach
    from .storage.db import resolve_db_path

    path = resolve_db_path(db)
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise UsageError(f"cannot open {path}: {exc}") from exc
    try:
        return attach(con, folder, load=False)
    finally:
        con.close()


def _require_parts_root(folder: Path) -> None:
    if not folder.is_dir() or not ((folder / "parts").is_dir() or (folder / "_run.json").exists()):
        raise UsageError(
            f"{folder} is not a parts root (no parts/ or _run.json in it)",
            fix="give the --parts DIR of an actidose import",
        )


def _brief(data: dict[str, Any]) -> str:
    bits = [
        f"{k} {v}" for k, v in data.items() if isinstance(v, int | float | str) and k != "summary"
    ]
    return ", ".join(bits[:8]) or "done"
