"""``actidose symptoms``: import symptom ratings and manage instrument definitions.

Registered on the main group by :func:`register`::

    actidose symptoms import FILE... [--instrument NAME] [--instruments defs.toml]
                                     [--timezone ZONE] [--replace] [--json]
    actidose symptoms instruments [--load defs.toml] [--format table|csv|json]

``import`` prints one summary line per file on stdout and every rejected line as
``file:line: reason`` on stderr. Exit status: 0 everything imported (or imported before),
3 some lines or files were rejected but something was imported, 1 nothing could be imported,
2 usage (a bad option or definitions file).
"""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import click
import duckdb

from .cli_errors import user_errors
from .dose.instruments import BUILTINS, Instrument, canonical_name, parse_definitions
from .errors import InputError, UsageError
from .output import FORMATS, render
from .pipeline import EXIT_FAILURE, EXIT_OK, EXIT_QUARANTINED
from .storage import symptoms as store
from .storage.db import resolve_db_path
from .storage.derive import recompute
from .timeutil import zone

__all__ = ["exit_code", "read_definitions", "register", "symptoms"]


class _Opens(Protocol):
    """What the main group's context object offers (``actidose.cli._Ctx``)."""

    db: str | None

    def write(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...

    def read(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...


def read_definitions(path: Path) -> list[Instrument]:
    """Instrument definitions from a TOML file.

    Raises
    ------
    UsageError
        When the file cannot be read or a definition is wrong (naming file, line and key).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read instrument definitions {path}: {exc}",
            fix="give a UTF-8 TOML file with [instruments.NAME] tables",
        ) from None
    return parse_definitions(text, str(path))


def exit_code(outcomes: list[dict[str, Any]]) -> int:
    """0 when every file was imported (or had been) without a rejected line; 3 when something
    was refused but something was imported (now or before); 1 when nothing could be."""
    problems = any(o["status"] == "failed" or o.get("rejected") for o in outcomes)
    if not problems:
        return EXIT_OK
    imported = any(
        o["status"] == "already_imported"
        or (o["status"] == "imported" and (o.get("n_values") or o.get("n_unchanged")))
        for o in outcomes
    )
    return EXIT_QUARANTINED if imported else EXIT_FAILURE


def _summary_line(o: dict[str, Any]) -> str:
    if o["status"] == "failed":
        return f"{o['path']}: not imported: {o['reason']}"
    if o["status"] == "already_imported":
        return f"{o['path']}: already imported"
    layout = o["layout"] + (f" ({o['instrument']})" if o.get("instrument") else "")
    parts = [layout, f"{o['n_lines']} line(s)", f"{o['n_values']} value(s) stored"]
    if o["n_replaced"]:
        parts.append(f"{o['n_replaced']} replaced")
    if o["n_unchanged"]:
        parts.append(f"{o['n_unchanged']} already stored")
    parts.append(f"{len(o['rejected'])} rejected")
    return f"{o['path']}: " + ", ".join(parts)


def _import_all(
    con: duckdb.DuckDBPyConnection,
    files: tuple[Path, ...],
    instrument: str | None,
    timezone: str | None,
    replace: bool,
) -> tuple[list[dict[str, Any]], list[str]]:
    outcomes: list[dict[str, Any]] = []
    touched: set[str] = set()
    for f in files:
        try:
            res = store.import_file(
                con, f, instrument=instrument, timezone=timezone, replace=replace
            )
        except (InputError, UsageError) as exc:
            reason = str(exc)
            fix = getattr(exc, "fix", None)
            if isinstance(exc, InputError) and exc.path and reason.startswith(f"{exc.path}: "):
                reason = reason[len(exc.path) + 2 :]
            elif reason.startswith(f"{f}: "):
                reason = reason[len(str(f)) + 2 :]
            outcomes.append(
                {
                    "path": str(f),
                    "status": "failed",
                    "reason": reason + (f" ({fix})" if fix else ""),
                    "rejected": [],
                }
            )
            continue
        d = res.to_dict()
        d["status"] = "already_imported" if res.already_imported else "imported"
        outcomes.append(d)
        touched.update(res.participants)
    pending = {
        str(r[0]) for r in con.execute("SELECT participant_id FROM pending_recompute").fetchall()
    }
    done = recompute(con, sorted(touched | pending)) if touched or pending else []
    return outcomes, done


@click.group("symptoms")
def symptoms() -> None:
    """Symptom ratings (PHQ-9, SHAPS, daily scales): import CSVs, define instruments."""


@symptoms.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--instrument",
    metavar="NAME",
    help="Instrument of wide files (one column per item), e.g. phq9.",
)
@click.option(
    "--instruments",
    "definitions",
    metavar="DEFS.toml",
    type=click.Path(path_type=Path),
    help="Load instrument definitions from this TOML file first.",
)
@click.option(
    "--timezone",
    "tz",
    metavar="ZONE",
    help="Zone of times without an offset (default: each participant's).",
)
@click.option(
    "--replace", is_flag=True, help="Overwrite stored values that these files give differently."
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def import_cmd(
    obj: _Opens,
    files: tuple[Path, ...],
    instrument: str | None,
    definitions: Path | None,
    tz: str | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Import symptom ratings from CSV files, long (participant_id, timestamp, instrument,
    item, value) or wide (participant_id, timestamp, one column per item, with --instrument).

    Bad rows are reported by line and the rest imported. Exit status: 0 all imported, 3 some
    lines or files rejected, 1 nothing imported, 2 usage."""
    with user_errors():
        if tz:
            zone(tz)
        if instrument:
            instrument = canonical_name(instrument)
        defs = read_definitions(definitions) if definitions else None
        with obj.write() as con:
            if defs is not None:
                assert definitions is not None
                store.sync_instruments(con, defs, str(definitions.absolute()))
            outcomes, done = _import_all(con, files, instrument, tz, replace)
    code = exit_code(outcomes)
    if as_json:
        click.echo(
            json.dumps(
                {"files": outcomes, "recomputed": done, "exit_code": code}, indent=1, default=str
            )
        )
    else:
        for o in outcomes:
            click.echo(_summary_line(o))
            for w in o.get("warnings") or []:
                click.echo(f"{o['path']}: warning: {w}", err=True)
            for r in o["rejected"]:
                click.echo(f"{o['path']}:{r['line']}: {r['reason']}", err=True)
        if done:
            click.echo(f"recomputed {len(done)} participant(s)")
    sys.exit(code)


def _rows(items: list[tuple[Instrument, str]], fmt: str) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for instr, origin in items:
        reverse: Any = list(instr.reverse_items)
        bands: Any = [[lo, label] for lo, label in instr.bands]
        if fmt != "json":
            reverse = ",".join(str(v) for v in instr.reverse_items)
            bands = "; ".join(f"{lo:g} {label}" for lo, label in instr.bands)
        rows.append(
            [
                instr.name,
                instr.n_items,
                instr.value_min,
                instr.value_max,
                instr.recall_days,
                instr.scoring,
                instr.threshold,
                instr.min_items,
                reverse,
                bands,
                origin,
            ]
        )
    return rows


_COLUMNS = (
    "instrument",
    "items",
    "min",
    "max",
    "recall_days",
    "scoring",
    "threshold",
    "min_items",
    "reverse",
    "bands",
    "origin",
)


@symptoms.command("instruments")
@click.option(
    "--load",
    "definitions",
    metavar="DEFS.toml",
    type=click.Path(path_type=Path),
    help="Store the definitions in this TOML file, then list.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_obj
def instruments_cmd(obj: _Opens, definitions: Path | None, fmt: str) -> None:
    """List the instrument definitions (built-in, loaded from TOML, or none: plain sums)."""
    with user_errors():
        if definitions is not None:
            defs = read_definitions(definitions)
            with obj.write() as con:
                changed = store.sync_instruments(con, defs, str(definitions.absolute()))
                done = recompute(con)
                items = store.list_instruments(con)
            if fmt == "table":
                click.echo(
                    f"loaded {len(defs)} definition(s) from {definitions} "
                    f"({len(changed)} new or changed)"
                    + (f"; recomputed {len(done)} participant(s)" if done else "")
                )
        elif resolve_db_path(obj.db).exists():
            with obj.read() as con:
                items = store.list_instruments(con)
        else:
            items = [(b, "builtin") for _, b in sorted(BUILTINS.items())]
        click.echo(render(_COLUMNS, _rows(items, fmt), fmt))


def register(main: click.Group) -> None:
    """Add the ``symptoms`` group to the main ``actidose`` group (once)."""
    if "symptoms" not in main.commands:
        main.add_command(symptoms)
