"""``actidose plot``: single figures for a paper, the format from the ``--out`` suffix (.png at
300 dpi, .svg, .pdf). Registered on the main group by :func:`register`::

    actidose plot pmc|weekly|coverage|symptoms PARTICIPANT --out FILE
                 [--from DATE] [--to DATE] [--instrument NAME (symptoms)] [--title TEXT]
    actidose plot adherence|cohort-coverage --out FILE [--title TEXT]
                 [--from DATE --to DATE (cohort-coverage)]

Each prints the path it wrote. Errors are one line, ``Error: ...``, exit 2 for a usage problem
(unknown participant, unknown suffix, matplotlib missing), 1 otherwise, as everywhere in the CLI.
matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click
import duckdb

from .cli_errors import user_errors
from .errors import UsageError

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.figure import Figure

    from .api import Study

__all__ = ["plot", "prescription_targets", "register"]

F = TypeVar("F", bound=Callable[..., Any])


class _Opens(Protocol):
    """What the main group's context object offers (``actidose.cli._Ctx``)."""

    db: str | None

    def read(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...


def prescription_targets(
    con: duckdb.DuckDBPyConnection, participant_id: str
) -> tuple[float | None, float | None]:
    """The weekly targets of a participant's arm to draw on :func:`actidose.plots.weekly`.

    Returns
    -------
    (minutes, trimp)
        ``sessions_per_week * min_session_min`` when the arm prescribes an intensity band (an
        arm of any intensity, e.g. stretching, has no minutes target comparable with
        moderate/vigorous minutes: None); the arm's ``trimp_per_week``, else the TRIMP its
        adherence rows were measured against (``adherence.trimp_prescribed``), else None.
    """
    row = con.execute(
        "SELECT p.sessions_per_week, p.min_session_min, p.band_scheme, p.trimp_per_week "
        "FROM participants q JOIN prescriptions p ON p.arm = q.arm WHERE q.participant_id = ?",
        [participant_id],
    ).fetchone()
    if row is None:
        return None, None
    per_week, session_min, scheme, trimp = row
    minutes = (
        float(per_week) * float(session_min)
        if scheme is not None and session_min is not None
        else None
    )
    if trimp is None:
        got = con.execute(
            "SELECT max(trimp_prescribed) FROM adherence WHERE participant_id = ?",
            [participant_id],
        ).fetchone()
        trimp = got[0] if got else None
    return minutes, (float(trimp) if trimp is not None else None)


def _check_out(out: Path) -> None:
    from .plots.charts import SAVE_FORMATS

    if out.suffix.lower().lstrip(".") not in SAVE_FORMATS:
        raise UsageError(
            f"--out {out}: unknown figure format {out.suffix or '(no suffix)'!r}",
            fix="name the file .png, .svg or .pdf, e.g. --out pmc.pdf",
        )


def _require_participant(study: Study, participant_id: str) -> None:
    known = study.participants()["participant_id"].to_list()
    if participant_id not in known:
        shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        raise UsageError(
            f"unknown participant {participant_id!r}",
            fix=f"known participants: {shown}" if known else "the database has no participants",
        )


def _between(
    frame: pl.DataFrame, col: str, lo: dt.date | None, hi: dt.date | None, *, span: int = 0
) -> pl.DataFrame:
    """Rows whose ``[col, col + span days]`` overlaps ``[lo, hi]``."""
    import polars as pl

    if lo is not None:
        frame = frame.filter(pl.col(col) + pl.duration(days=span) >= lo)
    if hi is not None:
        frame = frame.filter(pl.col(col) <= hi)
    return frame


def _xlim(
    lo: dt.date | None, hi: dt.date | None, *frames: tuple[pl.DataFrame, str]
) -> tuple[dt.date, dt.date] | None:
    """The shown range: the options, the data's range where one is not given."""
    import polars as pl

    if lo is None and hi is None:
        return None
    days: list[dt.date] = [
        d
        for f, c in frames
        if f.height and c in f.columns
        for d in (f[c].cast(pl.Date).min(), f[c].cast(pl.Date).max())
        if isinstance(d, dt.date)
    ]
    lo = lo if lo is not None else min(days, default=hi)
    hi = hi if hi is not None else max(days, default=lo)
    if lo is None or hi is None:
        return None
    if lo > hi:
        raise UsageError(f"--from {lo} is after --to {hi}", fix="give --from before --to")
    return lo, hi


def _whole_weeks(xlim: tuple[dt.date, dt.date] | None) -> tuple[dt.date, dt.date] | None:
    """Widen a range to whole ISO weeks (Monday to Sunday), as the weekly bars are."""
    if xlim is None:
        return None
    lo, hi = xlim
    return (
        lo - dt.timedelta(days=lo.weekday()),
        hi + dt.timedelta(days=6 - hi.weekday()),
    )


def _draw(obj: _Opens, out: Path, make: Callable[[Study], Figure]) -> None:
    """Check the suffix and matplotlib, open the study read-only, draw, save, print the path."""
    with user_errors():
        _check_out(out)
        from .plots import require_matplotlib, save

        require_matplotlib()
        from .api import Study

        with Study(obj.db) as study:
            fig = make(study)
        click.echo(str(save(fig, out)))


def _out(f: F) -> F:
    return click.option(
        "--out",
        "out",
        required=True,
        metavar="FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Figure file: .png (300 dpi), .svg or .pdf.",
    )(f)


def _title(f: F) -> F:
    return click.option("--title", metavar="TEXT", help="A title above the figure.")(f)


def _dates(f: F) -> F:
    f = click.option(
        "--to",
        "date_to",
        type=click.DateTime(["%Y-%m-%d"]),
        metavar="DATE",
        help="Last day shown (local date, YYYY-MM-DD).",
    )(f)
    return click.option(
        "--from",
        "date_from",
        type=click.DateTime(["%Y-%m-%d"]),
        metavar="DATE",
        help="First day shown (local date, YYYY-MM-DD).",
    )(f)


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


@click.group("plot")
def plot() -> None:
    """Single figures for a paper (format from the --out suffix: .png, .svg, .pdf).

    Needs matplotlib: pip install 'actidose[plots]'."""


@plot.command("pmc")
@click.argument("participant")
@_out
@_dates
@_title
@click.pass_obj
def pmc_cmd(
    obj: _Opens,
    participant: str,
    out: Path,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    title: str | None,
) -> None:
    """Fitness (CTL), fatigue (ATL) and form (TSB) of PARTICIPANT, sessions as markers, days
    without data shaded."""
    lo, hi = _day(date_from), _day(date_to)

    def make(study: Study) -> Figure:
        from .plots import pmc

        _require_participant(study, participant)
        load = _between(study.load_series(participant), "day", lo, hi)
        sessions = _between(study.sessions(participant), "day", lo, hi)
        return pmc(load, sessions, xlim=_xlim(lo, hi, (load, "day")), title=title)

    _draw(obj, out, make)


@plot.command("weekly")
@click.argument("participant")
@_out
@_dates
@_title
@click.pass_obj
def weekly_cmd(
    obj: _Opens,
    participant: str,
    out: Path,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    title: str | None,
) -> None:
    """Weekly moderate and vigorous minutes of PARTICIPANT (as WHO-equivalent minutes) against
    the WHO 150-minute line and the arm's prescription, with TRIMP per week."""
    lo, hi = _day(date_from), _day(date_to)

    def make(study: Study) -> Figure:
        from .plots import weekly
        from .storage.derive import load_config

        _require_participant(study, participant)
        frame = _between(study.weekly_dose(participant), "week_start", lo, hi, span=6)
        minutes, trimp = prescription_targets(study.con, participant)
        return weekly(
            frame,
            prescription_min=minutes,
            prescription_trimp=trimp,
            who_min=load_config(study.con).who_min_per_week,
            xlim=_whole_weeks(_xlim(lo, hi, (frame, "week_start"))),
            title=title,
        )

    _draw(obj, out, make)


@plot.command("coverage")
@click.argument("participant")
@_out
@_dates
@_title
@click.pass_obj
def coverage_cmd(
    obj: _Opens,
    participant: str,
    out: Path,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    title: str | None,
) -> None:
    """A calendar of PARTICIPANT's days: observed, partial or without data, shaded by the
    minutes of the day with HR or accelerometer data."""
    lo, hi = _day(date_from), _day(date_to)

    def make(study: Study) -> Figure:
        from .plots import coverage

        _require_participant(study, participant)
        return coverage(_between(study.daily_load(participant), "day", lo, hi), title=title)

    _draw(obj, out, make)


@plot.command("symptoms")
@click.argument("participant")
@_out
@click.option("--instrument", metavar="NAME", help="Only this instrument (e.g. phq9).")
@_dates
@_title
@click.pass_obj
def symptoms_cmd(
    obj: _Opens,
    participant: str,
    out: Path,
    instrument: str | None,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    title: str | None,
) -> None:
    """Symptom scores of PARTICIPANT over time, one panel per instrument, with the bands of
    the built-in instruments."""
    lo, hi = _day(date_from), _day(date_to)

    def make(study: Study) -> Figure:
        from .dose.instruments import canonical_name
        from .plots import symptoms

        _require_participant(study, participant)
        scores = study.symptom_scores(participant)
        if instrument is not None:
            name = canonical_name(instrument)
            rated = sorted(set(scores["instrument"].to_list()))
            if name not in rated:
                raise UsageError(
                    f"{participant} has no {name!r} ratings",
                    fix=f"instruments rated: {', '.join(rated)}" if rated else "import ratings",
                )
        scores = _between(scores, "day", lo, hi)
        return symptoms(
            scores, instrument=instrument, xlim=_xlim(lo, hi, (scores, "day")), title=title
        )

    _draw(obj, out, make)


@plot.command("adherence")
@_out
@_title
@click.pass_obj
def adherence_cmd(obj: _Opens, out: Path, title: str | None) -> None:
    """Adherence to the prescription, participant by prescribed week, grouped by arm."""

    def make(study: Study) -> Figure:
        from .plots import adherence_heatmap

        return adherence_heatmap(study.adherence(), title=title)

    _draw(obj, out, make)


@plot.command("cohort-coverage")
@_out
@_dates
@_title
@click.pass_obj
def cohort_coverage_cmd(
    obj: _Opens,
    out: Path,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    title: str | None,
) -> None:
    """Every participant's days: observed, partial or without data."""
    lo, hi = _day(date_from), _day(date_to)

    def make(study: Study) -> Figure:
        from .plots import cohort_coverage

        return cohort_coverage(_between(study.daily_load(), "day", lo, hi), title=title)

    _draw(obj, out, make)


def register(main: click.Group) -> None:
    """Add the ``plot`` group to the main ``actidose`` group (once)."""
    if "plot" not in main.commands:
        main.add_command(plot)
