"""The ``actidose`` command: a thin layer over the library.

User errors become one line, ``Error: ...`` (with the fix where known), never a traceback.
Exit status: 0 success; 1 failure; 2 usage; 3 import finished but some files were quarantined.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import duckdb

from . import __version__
from .cli_errors import user_errors
from .errors import UsageError
from .output import FORMATS, render
from .pipeline import STATUSES, ImportSummary, import_paths
from .prescription import read_prescriptions
from .storage import participants as parts
from .storage.db import connect, fetch_arrow, resolve_db_path
from .storage.derive import load_config, recompute, save_config
from .storage.prescriptions import save as save_prescriptions
from .storage.symptoms import import_file as import_symptoms

if TYPE_CHECKING:
    import polars as pl

F = TypeVar("F", bound=Callable[..., Any])


class _Ctx:
    def __init__(self, db: str | None) -> None:
        self.db = db

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(self.db)
        try:
            recompute(con)  # heal anything a crashed earlier run left pending
            yield con
        finally:
            con.close()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(self.db, read_only=True)
        try:
            yield con
        finally:
            con.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="actidose")
@click.option(
    "--db",
    metavar="PATH",
    help="DuckDB file (default: $ACTIDOSE_DB, else ./actidose.duckdb).",
)
@click.pass_context
def main(ctx: click.Context, db: str | None) -> None:
    """Aerobic exercise dose from wearables, in a DuckDB file you can query with SQL."""
    ctx.obj = _Ctx(db)


# --------------------------------------------------------------------------- participants
@main.group()
def participant() -> None:
    """Add, change and list participants (their HR anchors drive every dose)."""


_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _participant_options(f: F) -> F:
    f = click.option(
        "--start-date",
        type=_DATE,
        help="Day 1 of the arm's prescription (local date, YYYY-MM-DD).",
    )(f)
    f = click.option("--hr-max", type=float, help="Measured maximum HR, bpm.")(f)
    f = click.option("--hr-rest", type=float, help="Resting HR, bpm.")(f)
    f = click.option("--arm", help="Trial arm, e.g. aerobic or stretching.")(f)
    f = click.option("--timezone", "tz", help="IANA time zone, e.g. Europe/London.")(f)
    f = click.option("--birth-year", type=int, help="Year of birth (for age-based HRmax).")(f)
    f = click.option("--sex", type=click.Choice(["f", "m"]), help="Sex (Banister coefficients).")(f)
    return f


@participant.command("add")
@click.argument("participant_id")
@_participant_options
@click.pass_obj
def participant_add(
    obj: _Ctx,
    participant_id: str,
    sex: str | None,
    birth_year: int | None,
    tz: str | None,
    arm: str | None,
    hr_rest: float | None,
    hr_max: float | None,
    start_date: datetime | None,
) -> None:
    """Add a participant. HRmax, when not given, comes from age (Tanaka)."""
    with user_errors():
        if not tz:
            raise UsageError("--timezone is required", fix="e.g. --timezone Europe/London")
        with obj.write() as con:
            cfg = load_config(con)
            parts.add(
                con,
                parts.Participant(
                    participant_id, tz, sex, birth_year, arm, hr_rest, hr_max, _day(start_date)
                ),
                hrmax_formula=cfg.hrmax_formula,
            )
            recompute(con)
        click.echo(f"added {participant_id}")


@participant.command("update")
@click.argument("participant_id")
@_participant_options
@click.option(
    "--clear",
    "clear",
    multiple=True,
    type=click.Choice(["sex", "birth-year", "arm", "hr-rest", "hr-max", "start-date"]),
    help="Remove a value (repeatable).",
)
@click.pass_obj
def participant_update(
    obj: _Ctx,
    participant_id: str,
    sex: str | None,
    birth_year: int | None,
    tz: str | None,
    arm: str | None,
    hr_rest: float | None,
    hr_max: float | None,
    start_date: datetime | None,
    clear: tuple[str, ...],
) -> None:
    """Change a participant; their derived tables are recomputed when an anchor, the arm or
    the start date changes. --hr-rest/--hr-max edit the base version of the anchors (see
    `participant anchor` for versions from a date)."""
    given = {
        "sex": sex,
        "birth_year": birth_year,
        "timezone": tz,
        "arm": arm,
        "hr_rest_bpm": hr_rest,
        "hr_max_bpm": hr_max,
        "start_date": _day(start_date),
    }
    changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    names = {
        "birth-year": "birth_year",
        "hr-rest": "hr_rest_bpm",
        "hr-max": "hr_max_bpm",
        "sex": "sex",
        "arm": "arm",
        "start-date": "start_date",
    }
    for c in clear:
        changes[names[c]] = None
    with user_errors():
        if not changes:
            raise UsageError("nothing to change", fix="give at least one option, e.g. --hr-rest 60")
        with obj.write() as con:
            cfg = load_config(con)
            changed = parts.update(con, participant_id, hrmax_formula=cfg.hrmax_formula, **changes)
            done = recompute(con)
        msg = f"updated {participant_id}"
        if changed and participant_id in done:
            msg += " (derived tables recomputed)"
        click.echo(msg)


def _format_option(f: F) -> F:
    return click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True
    )(f)


@participant.command("list")
@_format_option
@click.pass_obj
def participant_list(obj: _Ctx, fmt: str) -> None:
    """List participants with their anchors and where each came from."""
    with user_errors(), obj.read() as con:
        cur = con.execute(
            "SELECT participant_id, sex, birth_year, timezone, arm, start_date, hr_rest_bpm, "
            "hr_rest_source, hr_max_bpm, hr_max_source, "
            "(SELECT count(*) FROM hr_anchors a WHERE a.participant_id = p.participant_id) "
            "AS anchor_versions FROM participants p ORDER BY participant_id"
        )
        cols = [d[0] for d in cur.description or []]
        click.echo(render(cols, cur.fetchall(), fmt))


@participant.command("import")
@click.argument("roster", type=click.Path(path_type=Path))
@click.pass_obj
def participant_import(obj: _Ctx, roster: Path) -> None:
    """Add or update participants from a roster CSV (all rows or none).

    Columns: participant_id, timezone, and optionally sex, birth_year, arm, hr_rest_bpm,
    hr_max_bpm, start_date (YYYY-MM-DD). A column the roster does not have keeps the values
    stored for participants already there; an empty cell clears a value."""
    with user_errors(), obj.write() as con:
        cfg = load_config(con)
        added, updated = parts.import_roster(con, roster, hrmax_formula=cfg.hrmax_formula)
        recompute(con)
        click.echo(f"{added} added, {updated} updated")


@participant.command("anchor")
@click.argument("participant_id")
@click.option(
    "--valid-from",
    required=True,
    type=_DATE,
    help="First local day the version is in force (YYYY-MM-DD).",
)
@click.option("--hr-rest", type=float, help="Resting HR from that day, bpm.")
@click.option("--hr-max", type=float, help="Maximum HR from that day, bpm.")
@click.option("--note", help="Why, e.g. 'lab test, visit 2'.")
@click.option("--remove", is_flag=True, help="Remove the version from that day.")
@click.pass_obj
def participant_anchor(
    obj: _Ctx,
    participant_id: str,
    valid_from: datetime,
    hr_rest: float | None,
    hr_max: float | None,
    note: str | None,
    remove: bool,
) -> None:
    """Enter (or change, or --remove) a version of the HR anchors in force from a date.

    A value not given in a version is inherited from the version before it; the participant's
    derived tables are recomputed with the version in force on each day."""
    day = valid_from.date()
    with user_errors():
        if remove and (hr_rest is not None or hr_max is not None or note is not None):
            raise UsageError(
                "--remove takes no values", fix="remove the version, then enter a new one"
            )
        with obj.write() as con:
            if remove:
                parts.remove_anchor(con, participant_id, day)
            else:
                parts.add_anchor(
                    con,
                    participant_id,
                    day,
                    hr_rest_bpm=hr_rest,
                    hr_max_bpm=hr_max,
                    note=note,
                )
            done = recompute(con, [participant_id])
        verb = "removed" if remove else "stored"
        msg = f"{verb} anchors of {participant_id} from {day}"
        if participant_id in done:
            msg += " (derived tables recomputed)"
        click.echo(msg)


@participant.command("anchors")
@click.argument("participant_id")
@_format_option
@click.pass_obj
def participant_anchors(obj: _Ctx, participant_id: str, fmt: str) -> None:
    """List the versions of a participant's entered HR anchors (base first; an inherited value
    is marked in the *_inherited columns)."""
    with user_errors(), obj.read() as con:
        versions = parts.anchor_versions(con, participant_id)
        cols = [
            "valid_from",
            "hr_rest_bpm",
            "hr_max_bpm",
            "hr_rest_inherited",
            "hr_max_inherited",
            "note",
        ]
        rows = [
            (
                "base" if v.valid_from is None else v.valid_from.isoformat(),
                v.hr_rest_bpm,
                v.hr_max_bpm,
                v.hr_rest_inherited,
                v.hr_max_inherited,
                v.note,
            )
            for v in versions
        ]
        click.echo(render(cols, rows, fmt))


# --------------------------------------------------------------------------- import
def _print_summary(s: ImportSummary) -> None:
    """The run's outcome as tables: counts per status, then each file that was not imported
    cleanly with its reason (on stderr, so stdout stays the counts)."""
    problems = [f for f in s.files if f.status in ("quarantined", "failed", "salvaged")]
    if problems:
        rows = [(f.status, f.path, f.reason) for f in problems]
        click.echo(render(["status", "file", "reason"], rows, "table"), err=True)
    rows2 = [
        (st, s.count(st), sum(f.n_samples for f in s.files if f.status == st))
        for st in STATUSES
        if s.count(st)
    ]
    click.echo(f"participant {s.participant_id}: {len(s.files)} file(s)")
    click.echo(render(["status", "files", "hr_samples"], rows2, "table"))
    slow = s.reference_decoded()
    if slow:
        click.echo(f"{len(slow)} FIT file(s) read by the reference decoder (slower):")
        click.echo(render(["file", "why"], [(f.path, f.decoder) for f in slow], "table"))


@main.command("import")
@click.argument("paths", nargs=-1, metavar="PATHS...", type=click.Path(path_type=Path))
@click.option("--participant", "-P", "participant_id", help="Whose files these are.")
@click.option(
    "--salvage", is_flag=True, help="Keep what precedes damage in a corrupt file (marked salvaged)."
)
@click.option(
    "--timezone",
    "tz",
    help="Zone of naive local times in these files (default: the participant's).",
)
@click.option(
    "--format",
    "fmt",
    help="Read every file as this format instead of detecting it (e.g. csv).",
)
@click.option(
    "--columns",
    help="Generic CSV column mapping, e.g. timestamp=Time,bpm=HR,rr_ms=RR.",
)
@click.option(
    "--timestamp-format",
    help="Generic CSV: iso (default), epoch_s, epoch_ms or a strptime format.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes parsing files (one process writes).",
)
@click.option(
    "--max-unpacked-gb",
    type=float,
    default=20.0,
    show_default=True,
    help="Refuse an archive that unpacks to more than this.",
)
@click.option(
    "--max-ratio",
    type=float,
    default=200.0,
    show_default=True,
    help="Refuse archive members compressed more than this (zip bombs).",
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    help="CSV with columns path,participant_id (relative paths from its folder), instead of "
    "PATHS and -P. Uses the parts path.",
)
@click.option(
    "--parts",
    "parts_dir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Process files into Parquet parts under DIR (with a ledger: rerun the same command "
    "to resume), then load them. Default DIR with --manifest/--engine dask/--shard/"
    "--parts-only: <database>.parts.",
)
@click.option(
    "--engine",
    type=click.Choice(["process", "dask"]),
    default=None,
    help="process: --jobs worker processes (default); dask: an existing cluster (--scheduler).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Dask scheduler for --engine dask: tcp://HOST:PORT or a scheduler file.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 100),
    default=None,
    help="Parts path: times a file whose task failed or whose worker died is tried again "
    "[default: 3].",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(1, None),
    default=None,
    help="Parts path: tasks submitted at a time [default: 4 per worker].",
)
@click.option(
    "--shard",
    metavar="i/N",
    help="Only shard i of N (1-based: 1/3, 2/3, 3/3) of the files, sorted by path; parts "
    "only. A final run without --shard derives and loads.",
)
@click.option(
    "--parts-only",
    is_flag=True,
    help="Leave the results as the Parquet dataset under --parts (no database writes).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def import_cmd(
    obj: _Ctx,
    paths: tuple[Path, ...],
    participant_id: str | None,
    salvage: bool,
    tz: str | None,
    fmt: str | None,
    columns: str | None,
    timestamp_format: str | None,
    jobs: int,
    max_unpacked_gb: float,
    max_ratio: float,
    manifest: Path | None,
    parts_dir: Path | None,
    engine: str | None,
    scheduler: str | None,
    retries: int | None,
    max_in_flight: int | None,
    shard: str | None,
    parts_only: bool,
    as_json: bool,
) -> None:
    """Import files, folders (recursively) and archives; each file's format is read from its
    content. Handles FIT, TCX, GPX, Apple Health, Fitbit, Polar Flow, Strava and Garmin
    exports; other CSVs with --format csv --columns ....

    Many files (--manifest, --parts, --engine dask, --shard): see docs/cluster.md.

    Exit status: 0 all imported (or duplicates), 3 some quarantined, 1 failure, 2 usage."""
    from .ingest.archive import Limits
    from .ingest.registry import importer_named
    from .timeutil import zone

    use_parts = bool(manifest or parts_dir or engine == "dask" or shard or parts_only)
    if not use_parts:
        ctx = click.get_current_context()
        params = {p.name: p for p in ctx.command.params}
        if not paths:
            raise click.MissingParameter(ctx=ctx, param=params["paths"])
        if not participant_id:
            raise click.MissingParameter(ctx=ctx, param=params["participant_id"])
    options: dict[str, str] = {}
    with user_errors():
        if not use_parts:
            extra = [
                n
                for n, v in (
                    ("--scheduler", scheduler),
                    ("--retries", retries),
                    ("--max-in-flight", max_in_flight),
                )
                if v is not None
            ]
            if extra:
                raise UsageError(
                    f"{', '.join(extra)} go(es) with the parts path",
                    fix="add --parts DIR (or --engine dask)",
                )
        if tz:
            zone(tz)
        if fmt:
            importer_named(fmt)
            options["format"] = fmt
        if columns:
            from .ingest.csv_hr import parse_columns

            parse_columns(columns)  # a bad mapping is a usage error before any file is read
            options["columns"] = columns
            options.setdefault("format", "csv")
        if timestamp_format:
            options["timestamp_format"] = timestamp_format
        if tz:
            options["timezone"] = tz
        if options.get("format") == "csv" and "columns" not in options:
            raise UsageError(
                "--format csv needs --columns", fix="e.g. --columns timestamp=Time,bpm=HR"
            )
        limits = Limits(max_total_bytes=int(max_unpacked_gb * 1e9), max_ratio=max_ratio)
        if use_parts:
            from .scale_cli import run_import

            code = run_import(
                obj.db,
                paths=list(paths),
                participant_id=participant_id,
                manifest=manifest,
                parts=parts_dir,
                engine=engine or "process",
                scheduler=scheduler,
                jobs=jobs,
                retries=3 if retries is None else retries,
                max_in_flight=max_in_flight,
                shard=shard,
                parts_only=parts_only,
                salvage=salvage,
                timezone=tz,
                options=options,
                limits=limits,
                as_json=as_json,
            )
            sys.exit(code)
        assert participant_id is not None
        with obj.write() as con:
            progress = None
            bar = None
            if sys.stderr.isatty() and not as_json:
                from rich.progress import Progress

                # redrawn on each file, not by a thread of its own: a process running a
                # thread does not fork, and a large Apple Health export is read by two
                bar = Progress(transient=True, auto_refresh=False)
                task = bar.add_task("importing", total=None)
                bar.start()

                def progress(i: int, n: int, path: str) -> None:
                    bar.update(task, completed=i, total=n, description=Path(path).name or "done")
                    bar.refresh()

            try:
                summary = import_paths(
                    con,
                    list(paths),
                    participant_id,
                    salvage=salvage,
                    progress=progress,
                    timezone=tz,
                    options=options,
                    jobs=jobs,
                    limits=limits,
                )
            finally:
                if bar is not None:
                    bar.stop()
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=1))
    else:
        _print_summary(summary)
    sys.exit(summary.exit_code)


# --------------------------------------------------------------------------- query / export
def _frame(result: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    import polars as pl

    frame = pl.from_arrow(fetch_arrow(result))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _param_value(raw: str) -> Any:
    if re.fullmatch(r"[+-]?\d+", raw):
        return int(raw)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", raw):
        return float(raw)
    return raw


@main.command()
@click.argument("sql")
@click.option(
    "-p",
    "--param",
    "params",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="Bind $NAME to VALUE (numbers are bound as numbers).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*FORMATS, "parquet"]),
    default="table",
    show_default=True,
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Write to a file (needed for parquet)."
)
@click.pass_obj
def query(
    obj: _Ctx, sql: str, params: tuple[tuple[str, str], ...], fmt: str, out: Path | None
) -> None:
    """Run a read-only SQL query; values are bound as parameters, never pasted into SQL."""
    bound = {name: _param_value(v) for name, v in params}
    with user_errors(), obj.read() as con:
        if fmt == "parquet":
            if out is None:
                raise UsageError("--format parquet needs --out FILE")
            _frame(con.execute(sql, bound or None)).write_parquet(out)
            click.echo(f"wrote {out}")
            return
        cur = con.execute(sql, bound or None)
        cols = [d[0] for d in cur.description or []]
        text = render(cols, cur.fetchall(), fmt)
        if out is not None:
            out.write_text(text + "\n")
            click.echo(f"wrote {out}")
        else:
            click.echo(text)


@main.command()
@click.argument("table")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default=None,
    help="Default: from the --out suffix.",
)
@click.option("--participant", "-P", "participant_id", help="Only this participant's rows.")
@click.pass_obj
def export(obj: _Ctx, table: str, out: Path, fmt: str | None, participant_id: str | None) -> None:
    """Write a table to Parquet or CSV."""
    fmt = fmt or ("csv" if out.suffix.lower() == ".csv" else "parquet")
    with user_errors(), obj.read() as con:
        known = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if table not in known:
            raise UsageError(f"no table {table!r}", fix="tables: " + ", ".join(sorted(known)))
        sql = f'SELECT * FROM "{table}"'
        args: list[Any] = []
        if participant_id is not None:
            sql += " WHERE participant_id = ?"
            args.append(participant_id)
        frame = _frame(con.execute(sql, args))
        if fmt == "csv":
            frame.write_csv(out)
        else:
            frame.write_parquet(out)
        click.echo(f"wrote {frame.height} rows to {out}")


# --------------------------------------------------------------------------- recompute / demo
@main.command("recompute")
@click.option(
    "--participant",
    "-P",
    "participant_ids",
    multiple=True,
    help="Only these participants (default: all).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="Change a dose parameter (stored; applies to all later recomputes).",
)
@click.option("--show", is_flag=True, help="Print the dose parameters in force and stop.")
@click.pass_obj
def recompute_cmd(
    obj: _Ctx, participant_ids: tuple[str, ...], settings: tuple[str, ...], show: bool
) -> None:
    """Recompute derived tables (sessions, daily_load, load_series, weekly_dose)."""
    with user_errors(), obj.write() as con:
        cfg = load_config(con)
        if settings:
            pairs = {}
            for s in settings:
                if "=" not in s:
                    raise UsageError(f"--set takes NAME=VALUE, not {s!r}")
                k, v = s.split("=", 1)
                pairs[k.strip()] = v.strip()
            cfg = cfg.with_settings(pairs)
            save_config(con, cfg)
        if show:
            click.echo(json.dumps(cfg.to_dict(), indent=1))
            return
        ids = list(participant_ids) or [
            r[0] for r in con.execute("SELECT participant_id FROM participants").fetchall()
        ]
        for pid in ids:
            parts.require(con, pid)
        done = recompute(con, ids, cfg=cfg)
        click.echo(f"recomputed {len(done)} participant(s) with parameters {cfg.params_id}")


@main.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path),
    default=Path("actidose-demo"),
    show_default=True,
    help="Where to write the example files.",
)
@click.option(
    "--participants", "n_participants", type=click.IntRange(2, 200), default=6, show_default=True
)
@click.option("--weeks", type=click.IntRange(1, 52), default=6, show_default=True)
@click.option("--seed", type=int, default=2024, show_default=True)
@click.option(
    "--figure",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to draw the first participant's fitness/fatigue chart [default: DIR/pmc.png].",
)
@click.pass_obj
def demo(
    obj: _Ctx, folder: Path, n_participants: int, weeks: int, seed: int, figure: Path | None
) -> None:
    """Make an example study (FIT files, symptom ratings, prescriptions), import it, print
    the weekly dose and adherence, and (with matplotlib) draw a chart and write the reports."""
    from .demo import make_study

    with user_errors():
        study = make_study(folder, n_participants=n_participants, weeks=weeks, seed=seed)
        click.echo(
            f"wrote {study.n_files} FIT files for {len(study.participants)} participants "
            f"under {folder}/"
        )
        with obj.write() as con:
            parts.import_roster(con, study.roster)
            worst = 0
            for pid, pfolder in study.participants.items():
                summary = import_paths(con, [pfolder], pid, recompute_after=False)
                worst = max(worst, summary.exit_code)
                counts = ", ".join(
                    f"{summary.count(st)} {st}"
                    for st in ("imported", "duplicate", "quarantined", "failed")
                    if summary.count(st)
                )
                click.echo(f"{pid}: {counts}")
            assert study.ratings is not None and study.prescriptions is not None
            save_prescriptions(
                con,
                read_prescriptions(study.prescriptions),
                str(study.prescriptions.resolve()),
            )
            rated = import_symptoms(con, study.ratings)
            click.echo(
                f"ratings: {rated.n_values} item values from {study.ratings.name}, "
                f"prescriptions: {study.prescriptions.name}"
            )
            recompute(con)
            cur = con.execute(
                "SELECT w.participant_id, p.arm, w.week_start, w.sessions, "
                "round(w.trimp_banister, 1) AS trimp_banister, round(w.mod_min, 1) AS mod_min, "
                "round(w.vig_min, 1) AS vig_min, round(w.who_equiv_min, 1) AS who_equiv_min, "
                "w.meets_who FROM weekly_dose w JOIN participants p USING (participant_id) "
                "ORDER BY w.participant_id, w.week_start"
            )
            cols = [d[0] for d in cur.description or []]
            click.echo(render(cols, cur.fetchall(), "table"))
            cur = con.execute(
                "SELECT participant_id, arm, sessions_done, sessions_prescribed, "
                "round(adherence_pct, 1) AS adherence_pct, round(trimp_pct, 1) AS trimp_pct "
                "FROM adherence_summary ORDER BY participant_id"
            )
            click.echo("\nadherence to the prescription:")
            click.echo(render([d[0] for d in cur.description or []], cur.fetchall(), "table"))
        click.echo(
            f"database: {resolve_db_path(obj.db)}  (try: actidose query "
            '"select * from symptom_exposure limit 10")'
        )
        _demo_pictures(obj, folder, figure)
        if worst:
            sys.exit(worst)


def _demo_pictures(obj: _Ctx, folder: Path, figure: Path | None) -> None:
    """The demo's chart and reports, when matplotlib is installed (the database is closed for
    writing by now: the reports open it read-only)."""
    from .plots import require_matplotlib

    try:
        require_matplotlib()
    except UsageError:
        click.echo("charts and HTML reports: pip install 'actidose[plots]', then actidose demo")
        return
    import actidose

    from .report import write_cohort_report, write_participant_report, write_readme_figure

    fig = write_readme_figure(obj.db, figure or folder / "pmc.png")
    with actidose.open(obj.db) as study:
        first = str(study.participants()["participant_id"][0])
        one = write_participant_report(study, first, folder / f"report-{first}.html")
        cohort = write_cohort_report(study, folder / "report-cohort.html")
    click.echo(f"chart: {fig}; reports: {one}, {cohort}")


from .sync_cli import register  # noqa: E402  (the sync commands attach to `main`)

register(main)

from .prescription_cli import register as register_prescription  # noqa: E402
from .symptoms_cli import register as register_symptoms  # noqa: E402

register_prescription(main)
register_symptoms(main)

from .plot_cli import register as register_plot  # noqa: E402
from .report_cli import register as register_report  # noqa: E402

register_plot(main)
register_report(main)

from .scale_cli import register as register_scale  # noqa: E402

register_scale(main)

if __name__ == "__main__":  # pragma: no cover
    main()
