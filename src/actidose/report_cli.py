"""``actidose report``: one participant's report, or the cohort's, as one self-contained HTML
file. Registered on the main group by :func:`register`::

    actidose report P001 --out P001.html
    actidose report --cohort --out cohort.html [--as-of 2024-04-14] [--no-data-days 7]
                                               [--min-adherence 50]

The database is opened read-only. Errors are one line, ``Error: ...`` (exit 2 for a bad option,
1 otherwise), as everywhere in the CLI.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from .cli_errors import user_errors
from .errors import UsageError

__all__ = ["register", "report"]

_DATE = click.DateTime(formats=["%Y-%m-%d"])


@click.command("report")
@click.argument("participant_id", required=False, metavar="[PARTICIPANT]")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write.",
)
@click.option("--cohort", is_flag=True, help="The whole cohort instead of one participant.")
@click.option(
    "--as-of",
    "as_of",
    type=_DATE,
    metavar="DATE",
    help="Day the flags look from, YYYY-MM-DD (default: the last day with data).",
)
@click.option(
    "--no-data-days",
    type=click.IntRange(min=1),
    metavar="N",
    default=7,
    show_default=True,
    help="Flag participants without data for this many days.",
)
@click.option(
    "--min-adherence",
    type=click.FloatRange(0, 100),
    default=50.0,
    show_default=True,
    metavar="PCT",
    help="Flag adherence below this percent over the last complete prescribed weeks.",
)
@click.option(
    "--adherence-weeks",
    type=click.IntRange(min=1),
    metavar="K",
    default=2,
    show_default=True,
    help="How many of the last complete prescribed weeks adherence is judged over.",
)
@click.pass_context
def report(
    ctx: click.Context,
    participant_id: str | None,
    out: Path,
    cohort: bool,
    as_of: datetime | None,
    no_data_days: int,
    min_adherence: float,
    adherence_weeks: int,
) -> None:
    """Write PARTICIPANT's report, or the cohort's (--cohort), as one HTML file that opens
    with no network: load, symptoms, weekly dose against the WHO line and the prescription,
    days with data, sessions, parameters and anchors; for the cohort, arm summaries, adherence
    per week, coverage and flagged participants."""
    import actidose

    from .report import FlagRules, write_cohort_report, write_participant_report

    db = getattr(ctx.obj, "db", None)
    with user_errors():
        if cohort == (participant_id is not None):
            raise UsageError(
                "give a participant or --cohort (exactly one)",
                fix="e.g. actidose report P001 --out P001.html, or "
                "actidose report --cohort --out cohort.html",
            )
        day: date | None = as_of.date() if as_of is not None else None
        rules = FlagRules(
            as_of=day,
            no_data_days=no_data_days,
            min_adherence_pct=min_adherence,
            adherence_weeks=adherence_weeks,
        )
        rules.validate()
        with actidose.open(db) as study:
            if participant_id is not None:
                path = write_participant_report(study, participant_id, out, rules=rules)
            else:
                path = write_cohort_report(study, out, rules=rules)
        click.echo(f"wrote {path}")


def register(main: click.Group) -> None:
    """Add ``actidose report`` to the main ``actidose`` group (once)."""
    if "report" not in main.commands:
        main.add_command(report)
