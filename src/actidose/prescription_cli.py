"""``actidose prescription``: set, show and remove the arms' prescribed doses. Registered on the
main group by :func:`register`.

Errors are one line, ``Error: ...`` (exit 2 for a bad file or option), as everywhere in the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .cli_errors import user_errors
from .output import FORMATS, render

SHOW_COLUMNS = [
    "arm",
    "weeks",
    "sessions_per_week",
    "min_session_min",
    "band_scheme",
    "band_low",
    "band_high",
    "qualify_rule",
    "trimp_per_week",
    "participants",
    "origin",
    "updated_at",
]


@click.group("prescription")
def prescription() -> None:
    """Each arm's prescribed dose (a TOML file); adherence is measured against it."""


@prescription.command("set")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def prescription_set(obj: Any, file: Path) -> None:
    """Store the arms of FILE.toml (replacing those arms; others stay) and recompute the
    adherence of their participants.

    \b
    [arms.aerobic]
    weeks = 8
    sessions_per_week = 3
    min_session_min = 30
    intensity = { scheme = "hrr", low = 0.60, high = 0.80 }
    """
    from .prescription import read_prescriptions
    from .storage import prescriptions as store
    from .storage.derive import recompute

    with user_errors():
        found = read_prescriptions(file)  # a bad file fails before the database is opened
        with obj.write() as con:
            ids = store.save(con, found, str(file.resolve()))
            recompute(con, ids)
        for p in found:
            click.echo(f"{p.arm}: {p.describe()}")
        click.echo(
            f"stored {len(found)} arm(s); recomputed {len(ids)} participant(s)",
        )


@prescription.command("show")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_obj
def prescription_show(obj: Any, fmt: str) -> None:
    """List the stored prescriptions and how many participants each arm has."""
    with user_errors(), obj.read() as con:
        rows = con.execute(
            "SELECT p.arm, p.weeks, p.sessions_per_week, p.min_session_min, p.band_scheme, "
            "p.band_low, p.band_high, p.qualify_rule, p.trimp_per_week, "
            "(SELECT count(*) FROM participants q WHERE q.arm = p.arm), p.origin, p.updated_at "
            "FROM prescriptions p ORDER BY p.arm"
        ).fetchall()
        click.echo(render(SHOW_COLUMNS, rows, fmt))


@prescription.command("remove")
@click.argument("arm")
@click.pass_obj
def prescription_remove(obj: Any, arm: str) -> None:
    """Delete ARM's prescription (its participants' adherence rows go)."""
    from .storage import prescriptions as store
    from .storage.derive import recompute

    with user_errors():
        with obj.write() as con:
            ids = store.remove(con, arm)
            recompute(con, ids)
        click.echo(f"removed {arm}; recomputed {len(ids)} participant(s)")


def register(main: click.Group) -> None:
    """Attach ``actidose prescription`` to the main command group."""
    main.add_command(prescription)
