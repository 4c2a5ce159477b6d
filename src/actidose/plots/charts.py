"""The charts: one function per picture, each taking the polars frame a :class:`~actidose.Study`
method returns and giving back a matplotlib :class:`~matplotlib.figure.Figure`.

Every chart can be checked against its data: the artists that carry data have a ``gid``
(``artist.get_gid()``; it is also the element id in SVG output), listed in each function's
docstring, and their data are the frame's values as they are (NULL drawn as NaN, a gap), never
smoothed or rescaled. Dates are local calendar days (the frames' ``day``/``week_start``); a day
``d`` is drawn at ``d`` 00:00 on matplotlib's date axis and owns ``[d - 12 h, d + 12 h)``, so
charts given the same ``xlim`` line up day for day.

An empty frame, or one whose drawn columns are all NULL, gives a figure with a centred
"no data" note (a text with gid ``no_data``), never an exception. A frame holding several
participants where one is expected raises :class:`~actidose.errors.UsageError`.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from ..errors import UsageError
from ._mpl import (
    GREY,
    LIGHT_GREY,
    OKABE_ITO,
    STATUS_CODES,
    STATUS_COLOURS,
    new_figure,
    root_figure,
    style,
)

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "SAVE_FORMATS",
    "adherence_heatmap",
    "cohort_coverage",
    "coverage",
    "find",
    "pmc",
    "save",
    "symptoms",
    "to_svg",
    "weekly",
]

F64 = npt.NDArray[np.float64]

SAVE_FORMATS: Final = ("png", "svg", "pdf")
DAY_MIN: Final = 1440.0
_XML_PROLOGUE = re.compile(r"\A\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?")
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)


# ---------------------------------------------------------------------------------- helpers
def _one_participant(frame: pl.DataFrame, chart: str, method: str) -> pl.DataFrame:
    if "participant_id" in frame.columns and frame.height:
        ids = frame["participant_id"].unique(maintain_order=True).to_list()
        if len(ids) > 1:
            shown = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise UsageError(
                f"{chart} draws one participant; the frame has {len(ids)} ({shown})",
                fix=f"pass one participant's rows, e.g. study.{method}('{ids[0]}')",
            )
    return frame


def _f64(frame: pl.DataFrame, col: str) -> F64:
    """A column as float64 with NULL (and a missing column) as NaN."""
    if col not in frame.columns:
        return np.full(frame.height, np.nan)
    return np.asarray(frame[col].cast(pl.Float64).to_numpy(), np.float64).copy()


def _days(frame: pl.DataFrame, col: str) -> npt.NDArray[np.datetime64]:
    return np.asarray(frame[col].cast(pl.Date).to_numpy()).astype("datetime64[D]")


def _num(days: Any) -> F64:
    """matplotlib date numbers (days) of dates / datetime64."""
    from matplotlib import dates as mdates

    return np.asarray(mdates.date2num(np.asarray(days, "datetime64[D]")), np.float64)


def _strs(frame: pl.DataFrame, col: str) -> npt.NDArray[np.object_]:
    if col not in frame.columns:
        return np.full(frame.height, "", dtype=object)
    return np.asarray(frame[col].cast(pl.Utf8).fill_null("").to_list(), dtype=object)


def _axes(ax: Axes | None, size: tuple[float, float] = (7.0, 3.5)) -> tuple[Figure, Axes]:
    if ax is not None:
        return root_figure(ax), ax
    fig = new_figure(size)
    return fig, fig.add_subplot()


def _no_data(ax: Axes, note: str = "no data") -> None:
    ax.text(
        0.5,
        0.5,
        note,
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="#555555",
        fontsize=10,
        gid="no_data",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)


def _title(fig: Figure, ax: Axes, title: str | None, own: bool) -> None:
    if not title:
        return
    if own:
        fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    else:
        ax.set_title(title, loc="left")


def _legend(fig: Figure, ax: Axes, handles: list[Any], own: bool, ncols: int = 4) -> None:
    """Below the plot when the figure is ours (constrained layout makes room); inside, upper
    left, when drawing into someone else's axes."""
    if not handles:
        return
    if own:
        fig.legend(handles=handles, loc="outside lower center", ncols=ncols)
    else:
        ax.legend(handles=handles, loc="upper left", ncols=min(ncols, 3), framealpha=0.8)


def _date_axis(ax: Axes) -> None:
    from matplotlib import dates as mdates

    ax.xaxis_date()
    locator = mdates.AutoDateLocator(minticks=3, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)
    formatter.formats = ["%Y", "%b", "%d %b", "%H:%M", "%H:%M", "%S.%f"]
    formatter.zero_formats = ["", "%Y", "%b", "%d %b", "%H:%M", "%H:%M"]
    formatter.offset_formats = ["", "%Y", "%Y", "%d %b %Y", "%d %b %Y", "%d %b %Y %H:%M"]
    ax.xaxis.set_major_formatter(formatter)


def _xlim(
    ax: Axes,
    xlim: tuple[dt.date, dt.date] | None,
    days: npt.NDArray[np.datetime64],
) -> None:
    if xlim is not None:
        lo, hi = _num([np.datetime64(xlim[0], "D"), np.datetime64(xlim[1], "D")])
    elif days.size:
        lo, hi = float(_num(days).min()), float(_num(days).max())
    else:
        return
    ax.set_xlim(lo - 0.5, hi + 0.5)


def _day_runs(x: F64) -> list[tuple[float, float]]:
    """Consecutive day numbers -> (first, last) runs."""
    if x.size == 0:
        return []
    x = np.unique(x)
    breaks = np.flatnonzero(np.diff(x) > 1.5)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [x.size - 1]])
    return [(float(x[s]), float(x[e])) for s, e in zip(starts, ends, strict=True)]


def _shade_days(
    ax: Axes, days: npt.NDArray[np.datetime64], *, gid: str, label: str, alpha: float
) -> Any:
    """Full-height grey bands over ``days`` (one rectangle per run of consecutive days)."""
    from matplotlib.collections import PolyCollection

    runs = _day_runs(_num(days))
    if not runs:
        return None
    verts = [[(a - 0.5, 0.0), (b + 0.5, 0.0), (b + 0.5, 1.0), (a - 0.5, 1.0)] for a, b in runs]
    coll = PolyCollection(
        verts,
        transform=ax.get_xaxis_transform(),
        facecolors=GREY,
        edgecolors="none",
        alpha=alpha,
        zorder=0,
        label=label,
    )
    coll.set_gid(gid)
    ax.add_collection(coll, autolim=False)
    return coll


def find(fig: Figure, gid: str, *, prefix: bool = False) -> list[Artist]:
    """The artists of ``fig`` whose gid is ``gid`` (or starts with it, ``prefix=True``), in
    drawing order: how tests and reports find what a chart drew.

    Parameters
    ----------
    fig : Figure
        A figure made by this module.
    gid : str
        E.g. ``"ctl"``, ``"moderate:"`` with ``prefix=True`` for every moderate bar.
    prefix : bool
        Match gids starting with ``gid``.

    Returns
    -------
    list of Artist
    """

    def hit(a: Artist) -> bool:
        g = a.get_gid()
        return g is not None and (g.startswith(gid) if prefix else g == gid)

    return [a for a in fig.findobj(hit) if a is not fig]


# ---------------------------------------------------------------------------------- pmc
def pmc(
    load_series: pl.DataFrame,
    sessions: pl.DataFrame | None = None,
    *,
    xlim: tuple[dt.date, dt.date] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Fitness, fatigue and form (the performance management chart) of one participant.

    Parameters
    ----------
    load_series : polars.DataFrame
        ``Study.load_series(participant)``: ``day``, ``ctl``, ``atl``, ``tsb``, ``day_status``.
    sessions : polars.DataFrame, optional
        ``Study.sessions(participant)``; counted sessions only (``counted`` true or NULL) are
        drawn, at their local ``day``, at the height of their TRIMP
        (``dose_trimp_banister``, else ``trimp_banister``).
    xlim : (date, date), optional
        First and last day shown (pass the same to :func:`weekly` and :func:`symptoms` to line
        them up).
    title : str, optional
    ax : Axes, optional
        Draw into this axes (TSB goes on a twin axis of it) and return its figure.

    Returns
    -------
    Figure
        Artists by gid: ``ctl``, ``atl`` (Line2D on the left axis, x = ``day``, y = the column,
        NULL as NaN); ``tsb`` (Line2D on the right, twin axis) and ``tsb_fill`` (its filled
        area); ``unobserved`` / ``partial`` (PolyCollection, one full-height rectangle per run
        of such days, ``day - 0.5`` to ``last day + 0.5`` in date numbers); ``sessions``
        (PathCollection: offsets = (date number of ``day``, TRIMP)); ``sessions_no_hr``
        (sessions without a TRIMP, at 0).
    """
    frame = _one_participant(load_series, "pmc", "load_series")
    if frame.height and "day" in frame.columns:
        frame = frame.sort("day")
    with style():
        own = ax is None
        fig, ax = _axes(ax)
        ctl, atl, tsb = (_f64(frame, c) for c in ("ctl", "atl", "tsb"))
        if frame.height == 0 or np.isnan(np.concatenate([ctl, atl, tsb])).all():
            _no_data(ax)
            _title(fig, ax, title, own)
            return fig
        days = _days(frame, "day")
        status = _strs(frame, "day_status")
        handles: list[Any] = []
        ax2 = ax.twinx()
        ax2.spines["right"].set_visible(True)
        ax2.axhline(0.0, color=OKABE_ITO["green"], lw=0.5, alpha=0.6)
        finite = np.isfinite(tsb)
        fill = ax2.fill_between(
            days,
            np.where(finite, tsb, 0.0),
            0.0,
            where=finite,
            color=OKABE_ITO["green"],
            alpha=0.28,
            linewidth=0,
            label="form (TSB), right axis",
        )
        fill.set_gid("tsb_fill")
        ax2.plot(days, tsb, color=OKABE_ITO["green"], lw=0.8, gid="tsb")
        m = float(np.nanmax(np.abs(tsb))) if finite.any() else 1.0
        ax2.set_ylim(-1.1 * max(m, 1.0), 1.1 * max(m, 1.0))
        ax2.set_ylabel("form (TSB, TRIMP/day)")
        (l_ctl,) = ax.plot(
            days, ctl, color=OKABE_ITO["blue"], gid="ctl", label="fitness (CTL)", zorder=3
        )
        (l_atl,) = ax.plot(
            days, atl, color=OKABE_ITO["vermillion"], gid="atl", label="fatigue (ATL)", zorder=3
        )
        handles += [l_ctl, l_atl, fill]
        if sessions is not None and sessions.height:
            handles += _session_markers(ax, sessions, frame)
        for st, alpha, label in (
            ("unobserved", 0.45, "no data (unobserved day)"),
            ("partial", 0.18, "partial day"),
        ):
            coll = _shade_days(ax, days[status == st], gid=st, label=label, alpha=alpha)
            if coll is not None:
                handles.append(coll)
        ax.set_zorder(ax2.get_zorder() + 1)  # lines over the TSB area
        ax.patch.set_visible(False)
        ax.set_ylim(bottom=0.0)
        ax.set_ylabel("training load (TRIMP/day)")
        _date_axis(ax)
        _xlim(ax, xlim, days)
        _legend(fig, ax, handles, own, ncols=6)
        _title(fig, ax, title, own)
        return fig


def _session_markers(ax: Axes, sessions: pl.DataFrame, load: pl.DataFrame) -> list[Any]:
    s = sessions
    if "participant_id" in s.columns and "participant_id" in load.columns and load.height:
        s = s.filter(pl.col("participant_id") == load["participant_id"][0])
    if "counted" in s.columns:
        s = s.filter(pl.col("counted").fill_null(True))
    if s.height == 0:
        return []
    if "day" in s.columns:
        days = _days(s, "day")
    else:  # no local day: the UTC date of the start
        days = np.asarray(s["start_ts"].dt.date().to_numpy()).astype("datetime64[D]")
    trimp = _f64(s, "dose_trimp_banister")
    trimp = np.where(np.isnan(trimp), _f64(s, "trimp_banister"), trimp)
    has = np.isfinite(trimp)
    out: list[Any] = []
    if has.any():
        out.append(
            ax.scatter(
                days[has],
                trimp[has],
                s=14,
                marker="o",
                facecolors=OKABE_ITO["black"],
                edgecolors="white",
                linewidths=0.4,
                zorder=4,
                label="session (Banister TRIMP)",
                gid="sessions",
            )
        )
    if (~has).any():
        out.append(
            ax.scatter(
                days[~has],
                np.zeros(int((~has).sum())),
                s=16,
                marker="^",
                facecolors="none",
                edgecolors=OKABE_ITO["black"],
                linewidths=0.6,
                zorder=4,
                clip_on=False,
                label="session without HR",
                gid="sessions_no_hr",
            )
        )
    return out


# ---------------------------------------------------------------------------------- weekly
def _vigorous_weight(mod: F64, vig: F64, who: F64) -> float:
    """The weight of a vigorous minute in ``who_equiv_min`` (2 unless configured otherwise),
    read back from the rows where it shows."""
    ok = np.isfinite(mod) & np.isfinite(vig) & np.isfinite(who) & (vig > 0.01)
    if not ok.any():
        return 2.0
    k = float(np.median((who[ok] - mod[ok]) / vig[ok]))
    return round(k, 2) if np.isfinite(k) and k > 0 else 2.0


def weekly(
    weekly_dose: pl.DataFrame,
    *,
    prescription_min: float | None = None,
    prescription_trimp: float | None = None,
    who_min: float = 150.0,
    xlim: tuple[dt.date, dt.date] | None = None,
    title: str | None = None,
) -> Figure:
    """Weekly dose of one participant against the WHO line and the prescription.

    Each week is a stack of WHO-equivalent minutes: moderate minutes, then vigorous minutes
    times the vigorous weight (2, read back from ``who_equiv_min``), so the top of the stack is
    ``who_equiv_min`` and meets the WHO line exactly when ``meets_who``. Weeks with days without
    data (``days_observed < days``) are hatched and lighter. TRIMP per week is on the right axis.

    Parameters
    ----------
    weekly_dose : polars.DataFrame
        ``Study.weekly_dose(participant)``.
    prescription_min : float, optional
        The arm's prescribed minutes per week (a dashed line).
    prescription_trimp : float, optional
        The arm's prescribed TRIMP per week (a dotted line on the TRIMP axis).
    who_min : float
        The WHO line, moderate-equivalent minutes per week.
    xlim : (date, date), optional
        First and last day shown.
    title : str, optional

    Returns
    -------
    Figure
        Artists by gid: ``moderate:<week_start>`` and ``vigorous:<week_start>`` (Rectangle per
        week, also in ``ax.containers``; x centred on ``week_start + 3 days``, width 6 days;
        heights ``mod_min`` and ``k * vig_min``, NULL as NaN); ``who`` (the WHO line);
        ``prescription_min``, ``prescription_trimp`` (lines, when given); ``trimp`` (Line2D on
        the twin axis, x = week centres, y = ``trimp_banister``).
    """
    from matplotlib.patches import Patch

    frame = _one_participant(weekly_dose, "weekly", "weekly_dose")
    if frame.height and "week_start" in frame.columns:
        frame = frame.sort("week_start")
    with style():
        fig, ax = _axes(None)
        mod, vig, who = (_f64(frame, c) for c in ("mod_min", "vig_min", "who_equiv_min"))
        trimp = _f64(frame, "trimp_banister")
        if frame.height == 0 or np.isnan(np.concatenate([mod, vig, trimp])).all():
            _no_data(ax)
            _title(fig, ax, title, True)
            return fig
        weeks = _days(frame, "week_start")
        x = _num(weeks) + 3.0
        k = _vigorous_weight(mod, vig, who)
        n_days = _f64(frame, "days")
        n_obs = _f64(frame, "days_observed")
        incomplete = n_obs < n_days
        v_height = k * vig
        bars_m = ax.bar(
            x, mod, width=6.0, color=OKABE_ITO["sky_blue"], label="moderate", linewidth=0
        )
        bars_v = ax.bar(
            x,
            v_height,
            width=6.0,
            bottom=np.nan_to_num(mod),
            color=OKABE_ITO["blue"],
            label=f"vigorous \u00d7 {k:g}",
            linewidth=0,
        )
        for name, bars in (("moderate", bars_m), ("vigorous", bars_v)):
            for i, patch in enumerate(bars.patches):
                patch.set_gid(f"{name}:{weeks[i]}")
                if incomplete[i]:
                    patch.set_alpha(0.45)
                    patch.set_hatch("////")
                    patch.set_edgecolor("white")
        handles: list[Any] = [bars_m, bars_v]
        if incomplete.any():
            handles.append(
                Patch(
                    facecolor=OKABE_ITO["blue"],
                    alpha=0.45,
                    edgecolor="white",
                    hatch="////",
                    label="week with days without data",
                )
            )
        handles.append(
            ax.axhline(
                who_min,
                color=OKABE_ITO["black"],
                ls="--",
                lw=0.9,
                gid="who",
                label=f"WHO {who_min:g} min/week",
            )
        )
        top = np.nanmax(np.concatenate([np.nan_to_num(mod) + np.nan_to_num(v_height), [who_min]]))
        if prescription_min is not None:
            handles.append(
                ax.axhline(
                    prescription_min,
                    color=OKABE_ITO["vermillion"],
                    ls="-.",
                    lw=1.0,
                    gid="prescription_min",
                    label=f"prescribed {prescription_min:g} min/week",
                )
            )
            top = max(top, prescription_min)
        ax.set_ylim(0.0, 1.12 * top if top > 0 else 1.0)
        ax.set_ylabel(f"minutes/week\n(moderate + {k:g} \u00d7 vigorous)")
        ax2 = ax.twinx()
        ax2.spines["right"].set_visible(True)
        (l_trimp,) = ax2.plot(
            x,
            trimp,
            color=OKABE_ITO["orange"],
            marker="D",
            ms=3.5,
            lw=1.0,
            gid="trimp",
            label="TRIMP/week (right axis)",
        )
        handles.append(l_trimp)
        ttop = float(np.nanmax(trimp)) if np.isfinite(trimp).any() else 1.0
        if prescription_trimp is not None:
            handles.append(
                ax2.axhline(
                    prescription_trimp,
                    color=OKABE_ITO["orange"],
                    ls=":",
                    lw=1.2,
                    gid="prescription_trimp",
                    label=f"prescribed {prescription_trimp:.0f} TRIMP/week",
                )
            )
            ttop = max(ttop, prescription_trimp)
        ax2.set_ylim(0.0, 1.12 * ttop if ttop > 0 else 1.0)
        ax2.set_ylabel("TRIMP/week (Banister)")
        ax.xaxis_date()
        step = max(1, int(np.ceil(weeks.size / 12)))
        shown = [w.item() for w in weeks[::step]]
        ax.set_xticks(
            x[::step],
            [
                f"{d.day} {d:%b}" + (f"\n{d.year}" if i == 0 or d.year != shown[i - 1].year else "")
                for i, d in enumerate(shown)
            ],
        )
        ax.set_xlabel("week starting")
        if xlim is not None:
            _xlim(ax, xlim, weeks)
        else:
            span = np.concatenate([_num(weeks), _num(weeks) + 6.0])
            ax.set_xlim(span.min() - 0.5, span.max() + 0.5)
        _legend(fig, ax, handles, True, ncols=4)
        _title(fig, ax, title, True)
        return fig


# ---------------------------------------------------------------------------------- coverage
def _status_codes(status: npt.NDArray[Any]) -> F64:
    codes = np.full(status.shape, np.nan)
    for name, code in STATUS_CODES.items():
        codes[status == name] = code
    return codes


def _status_handles(extra: str = "") -> list[Any]:
    from matplotlib.patches import Patch

    return [
        Patch(facecolor=STATUS_COLOURS[code], label=name + (extra if code else ""))
        for name, code in sorted(STATUS_CODES.items(), key=lambda kv: -kv[1])
    ]


def coverage_alpha(status: npt.NDArray[Any], coverage_min: F64) -> F64:
    """The shade of a calendar cell: ``0.3 + 0.7 * min(coverage_min / 1440, 1)`` for
    observed and partial days, 1 for unobserved days and where ``coverage_min`` is NULL."""
    frac = np.clip(coverage_min / DAY_MIN, 0.0, 1.0)
    alpha = 0.3 + 0.7 * frac
    return np.where(np.isnan(alpha) | (status == "unobserved"), 1.0, alpha)


def coverage(daily_load: pl.DataFrame, *, title: str | None = None) -> Figure:
    """A calendar of one participant's days: week columns (Monday first), weekday rows,
    months labelled on top; colour = ``day_status``, shade = ``coverage_min`` (minutes of the
    day with HR or accelerometer data; paler = less of the day covered).

    Parameters
    ----------
    daily_load : polars.DataFrame
        ``Study.daily_load(participant)``: ``day``, ``day_status``, ``coverage_min``.
    title : str, optional

    Returns
    -------
    Figure
        gid ``day_status``: an AxesImage of shape (7, weeks); ``get_array()[weekday, week]``
        is the status code (0 unobserved, 1 partial, 2 observed; masked where the frame has no
        row), ``get_alpha()`` the shade of :func:`coverage_alpha`. Column 0 is the week of the
        first day (Monday ``first day - weekday``).
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    frame = _one_participant(daily_load, "coverage", "daily_load")
    with style():
        if frame.height == 0:
            fig, ax = _axes(None, (7.0, 2.0))
            _no_data(ax)
            _title(fig, ax, title, True)
            return fig
        days = _days(frame, "day")
        d0 = days.min()
        monday0 = d0 - ((d0.astype("datetime64[D]").view("int64") - 4) % 7)  # 1970-01-01: Thu
        offset = (days - monday0).astype(np.int64)
        col, row = offset // 7, offset % 7
        n_cols = int(col.max()) + 1
        status = _strs(frame, "day_status")
        codes = np.full((7, n_cols), np.nan)
        alpha = np.ones((7, n_cols))
        codes[row, col] = _status_codes(status)
        alpha[row, col] = coverage_alpha(status, _f64(frame, "coverage_min"))
        cell = min(0.2, 5.2 / n_cols)
        fig = new_figure((max(3.6, n_cols * cell + 2.4), 7 * cell + 1.0))
        ax = fig.add_subplot()
        cmap = ListedColormap(list(STATUS_COLOURS)).with_extremes(bad=(0, 0, 0, 0))
        ax.imshow(
            np.ma.masked_invalid(codes),
            cmap=cmap,
            norm=BoundaryNorm([-0.5, 0.5, 1.5, 2.5], 3),
            alpha=alpha,
            aspect="equal",
            interpolation="nearest",
            extent=(-0.5, n_cols - 0.5, 6.5, -0.5),
            gid="day_status",
        )
        ax.set_yticks(range(7), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
        ax.set_xticks(np.arange(n_cols + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(8) - 0.5, minor=True)
        ax.grid(which="minor", color="white", lw=1.0)
        ax.tick_params(which="both", length=0)
        ax.xaxis.tick_top()
        first = days.min().astype("datetime64[M]")
        months = np.arange(first, days.max().astype("datetime64[M]") + 1)
        starts = np.maximum(months.astype("datetime64[D]"), d0)
        ticks = ((starts - monday0).astype(np.int64) // 7).astype(float)
        labels = [
            m.item().strftime("%b %Y" if i == 0 or m.item().month == 1 else "%b")
            for i, m in enumerate(months)
        ]
        ax.set_xticks(ticks, labels, ha="left")
        for side in ax.spines.values():
            side.set_visible(False)
        fig.legend(
            handles=_status_handles(),
            loc="outside right upper",
            title="day_status\npaler: less of the day\nwith data (coverage_min)",
            title_fontsize=7,
            alignment="left",
        )
        _title(fig, ax, title, True)
        return fig


# ---------------------------------------------------------------------------------- symptoms
def _band_lines(instrument: str, scores: F64, bands: npt.NDArray[Any]) -> list[tuple[float, str]]:
    """The band bounds of a built-in instrument, when the frame's bands agree with them."""
    from ..dose.instruments import BUILTINS, band

    instr = BUILTINS.get(instrument)
    if instr is None or not instr.bands:
        return []
    ok = np.isfinite(scores)
    expect = np.asarray(band(instr, scores[ok]), dtype=object)
    got = bands[ok]
    if got.size and not all((g or None) == e for g, e in zip(got, expect, strict=True)):
        return []  # the database defines this instrument differently
    return list(instr.bands)[1:]


def symptoms(
    symptom_scores: pl.DataFrame,
    *,
    instrument: str | None = None,
    xlim: tuple[dt.date, dt.date] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Symptom scores of one participant over time: one panel per instrument (or every
    instrument in ``ax``), each rating at its local ``day``, with the band bounds of built-in
    instruments (PHQ-9, SHAPS) as dotted lines.

    Parameters
    ----------
    symptom_scores : polars.DataFrame
        ``Study.symptom_scores(participant)``: ``instrument``, ``ts``, ``day``, ``score``,
        ``band``.
    instrument : str, optional
        Only this instrument (its name as the importer spells it: ``PHQ-9`` is ``phq9``).
    xlim : (date, date), optional
        First and last day shown (the same as :func:`pmc`'s to line them up).
    title : str, optional
    ax : Axes, optional
        Draw every instrument into this axes and return its figure.

    Returns
    -------
    Figure
        gid ``score:<instrument>``: Line2D, x = ``day``, y = ``score`` (NULL as NaN) in ``ts``
        order; ``band:<instrument>:<label>``: a band's lower bound.
    """
    from ..dose.instruments import canonical_name

    frame = _one_participant(symptom_scores, "symptoms", "symptom_scores")
    if instrument is not None and frame.height:
        frame = frame.filter(pl.col("instrument") == canonical_name(instrument))
    if frame.height:
        frame = frame.sort(["instrument", "ts"] if "ts" in frame.columns else ["instrument", "day"])
    names = frame["instrument"].unique(maintain_order=True).to_list() if frame.height else []
    with style():
        own = ax is None
        if frame.height == 0 or np.isnan(_f64(frame, "score")).all():
            fig, ax = _axes(ax, (7.0, 2.0))
            _no_data(ax)
            _title(fig, ax, title, own)
            return fig
        if ax is None:
            fig = new_figure((7.0, 0.9 + 1.5 * len(names)))
            axes = list(fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0])
        else:
            fig, axes = root_figure(ax), [ax] * len(names)
        colours = [OKABE_ITO[c] for c in ("vermillion", "blue", "green", "purple", "orange")]
        all_days = _days(frame, "day")
        for i, (name, a) in enumerate(zip(names, axes, strict=True)):
            part = frame.filter(pl.col("instrument") == name)
            score = _f64(part, "score")
            a.plot(
                _days(part, "day"),
                score,
                marker="o",
                ms=2.5,
                lw=1.0,
                color=colours[i % len(colours)],
                gid=f"score:{name}",
                label=name,
            )
            if own or len(names) == 1:
                for lo, label in _band_lines(name, score, _strs(part, "band")):
                    a.axhline(lo, color=GREY, ls=":", lw=0.8, gid=f"band:{name}:{label}")
                    a.text(
                        1.0,
                        lo,
                        label + " ",
                        transform=a.get_yaxis_transform(),
                        ha="right",
                        va="bottom",
                        fontsize=6.5,
                        color="#777777",
                    )
            if own:
                a.set_ylabel(name)
            _date_axis(a)
            _xlim(a, xlim, all_days)
        if own:
            axes[-1].set_xlabel("")
            fig.supylabel("score", fontsize=9)
        else:
            axes[0].set_ylabel("score")
            if len(names) > 1:
                axes[0].legend(loc="upper right", ncols=len(names))
        _title(fig, axes[0], title, own)
        return fig


# ---------------------------------------------------------------------------------- cohort
def _matrix_height(n_rows: int) -> float:
    return float(min(9.0, max(2.2, 0.18 * n_rows + 1.3)))


def _thin_labels(ax: Axes, labels: list[str]) -> None:
    step = max(1, int(np.ceil(len(labels) / 60)))
    idx = np.arange(0, len(labels), step)
    ax.set_yticks(idx, [labels[i] for i in idx])


def adherence_heatmap(adherence: pl.DataFrame, *, title: str | None = None) -> Figure:
    """Adherence of every participant in every prescribed week, 0-100 %, weeks without a row
    grey. Participants are grouped by ``arm`` (when the frame has it), then sorted by id.

    Parameters
    ----------
    adherence : polars.DataFrame
        ``Study.adherence()``: ``participant_id``, ``week``, ``adherence_pct`` (``arm``).
    title : str, optional

    Returns
    -------
    Figure
        gid ``adherence``: an AxesImage; ``get_array()[row, week - 1]`` is ``adherence_pct``
        (masked where there is no value), rows in the order of the y tick labels
        (participant ids, top to bottom); text gid ``arm:<arm>`` labels each group.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    with style():
        frame = adherence
        need = {"participant_id", "week", "adherence_pct"}
        if frame.height == 0 or not need <= set(frame.columns):
            fig, ax = _axes(None, (7.0, 2.2))
            _no_data(ax)
            _title(fig, ax, title, True)
            return fig
        has_arm = "arm" in frame.columns
        order = (
            frame.select(["arm", "participant_id"] if has_arm else ["participant_id"])
            .unique()
            .sort(["arm", "participant_id"] if has_arm else ["participant_id"], nulls_last=True)
        )
        pids = order["participant_id"].cast(pl.Utf8).to_list()
        row_of = {p: i for i, p in enumerate(pids)}
        weeks = _f64(frame, "week")
        n_weeks = int(np.nanmax(weeks)) if np.isfinite(weeks).any() else 0
        if n_weeks < 1:
            fig, ax = _axes(None, (7.0, 2.2))
            _no_data(ax)
            _title(fig, ax, title, True)
            return fig
        rows = np.array([row_of[p] for p in frame["participant_id"].cast(pl.Utf8).to_list()])
        mat = np.full((len(pids), n_weeks), np.nan)
        ok = np.isfinite(weeks) & (weeks >= 1)
        mat[rows[ok], weeks[ok].astype(np.int64) - 1] = _f64(frame, "adherence_pct")[ok]
        fig = new_figure((min(7.0, 2.6 + 0.45 * n_weeks), _matrix_height(len(pids))))
        ax = fig.add_subplot()
        cmap = colormaps["viridis"].with_extremes(bad=LIGHT_GREY)
        im = ax.imshow(
            np.ma.masked_invalid(mat),
            cmap=cmap,
            norm=Normalize(0.0, 100.0),
            aspect="auto",
            interpolation="nearest",
            extent=(0.5, n_weeks + 0.5, len(pids) - 0.5, -0.5),
            gid="adherence",
        )
        if mat.size <= 400:
            for r, c in zip(*np.nonzero(np.isfinite(mat)), strict=True):
                v = mat[r, c]
                ax.text(
                    c + 1,
                    r,
                    f"{v:.0f}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="black" if v >= 60 else "white",
                )
        _thin_labels(ax, pids)
        ax.set_xticks(range(1, n_weeks + 1))
        ax.set_xlabel("prescribed week")
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        if has_arm:
            arms = order["arm"].cast(pl.Utf8).fill_null("(no arm)").to_list()
            bounds = [0] + [i for i in range(1, len(arms)) if arms[i] != arms[i - 1]] + [len(arms)]
            for lo, hi in itertools.pairwise(bounds):
                if lo:
                    ax.axhline(lo - 0.5, color="white", lw=2.5)
                ax.text(
                    1.01,
                    (lo + hi - 1) / 2,
                    arms[lo],
                    transform=ax.get_yaxis_transform(),
                    ha="left",
                    va="center",
                    fontsize=8,
                    rotation=90 if hi - lo > 3 else 0,
                    gid=f"arm:{arms[lo]}",
                )
        cb = fig.colorbar(im, ax=ax, location="right", fraction=0.05, pad=0.08)
        cb.set_label("adherence (%)")
        _title(fig, ax, title, True)
        return fig


def cohort_coverage(daily_load: pl.DataFrame, *, title: str | None = None) -> Figure:
    """Every participant's ``day_status`` per day, participants sorted by id (top to bottom),
    blank outside a participant's data range.

    Parameters
    ----------
    daily_load : polars.DataFrame
        ``Study.daily_load()``: ``participant_id``, ``day``, ``day_status``.
    title : str, optional

    Returns
    -------
    Figure
        gid ``day_status``: an AxesImage; ``get_array()[row, day - first_day]`` is the status
        code (0 unobserved, 1 partial, 2 observed; masked where there is no row); the image's
        extent is in date numbers (a day's cell is centred on it), rows as the y tick labels.
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    with style():
        frame = daily_load
        if frame.height == 0 or not {"participant_id", "day"} <= set(frame.columns):
            fig, ax = _axes(None, (7.0, 2.2))
            _no_data(ax)
            _title(fig, ax, title, True)
            return fig
        pids = sorted(frame["participant_id"].cast(pl.Utf8).unique().to_list())
        row_of = {p: i for i, p in enumerate(pids)}
        days = _days(frame, "day")
        d0, d1 = days.min(), days.max()
        n_days = int((d1 - d0).astype(np.int64)) + 1
        rows = np.array([row_of[p] for p in frame["participant_id"].cast(pl.Utf8).to_list()])
        mat = np.full((len(pids), n_days), np.nan)
        mat[rows, (days - d0).astype(np.int64)] = _status_codes(_strs(frame, "day_status"))
        fig = new_figure((7.0, _matrix_height(len(pids))))
        ax = fig.add_subplot()
        x0, x1 = _num([d0, d1])
        cmap = ListedColormap(list(STATUS_COLOURS)).with_extremes(bad=(0, 0, 0, 0))
        ax.imshow(
            np.ma.masked_invalid(mat),
            cmap=cmap,
            norm=BoundaryNorm([-0.5, 0.5, 1.5, 2.5], 3),
            aspect="auto",
            interpolation="nearest",
            extent=(x0 - 0.5, x1 + 0.5, len(pids) - 0.5, -0.5),
            gid="day_status",
        )
        _date_axis(ax)
        ax.set_xlim(x0 - 0.5, x1 + 0.5)
        _thin_labels(ax, pids)
        if len(pids) <= 60:
            ax.set_yticks(np.arange(len(pids) + 1) - 0.5, minor=True)
            ax.grid(which="minor", axis="y", color="white", lw=1.5)
        ax.tick_params(axis="y", which="both", length=0)
        ax.spines["left"].set_visible(False)
        fig.legend(handles=_status_handles(), loc="outside upper right", ncols=3)
        _title(fig, ax, title, True)
        return fig


# ---------------------------------------------------------------------------------- output
def to_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element to inline in HTML.

    Text stays text (``svg.fonttype = 'none'``, DejaVu Sans then the browser's sans-serif):
    small and selectable, and nothing is fetched to render it. The XML declaration, DOCTYPE
    and the ``<metadata>`` block are removed; ids are derived from ``svg.hashsalt``, so the
    same figure always gives the same string.

    Parameters
    ----------
    fig : Figure

    Returns
    -------
    str
        Starting with ``<svg``.
    """
    buf = io.StringIO()
    with style():
        fig.draw_without_rendering()  # settle constrained layout: same figure, same bytes
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = _XML_PROLOGUE.sub("", buf.getvalue(), count=1)
    return _METADATA.sub("", text, count=1).strip() + "\n"


def save(fig: Figure, path: str | Path) -> Path:
    """Write the figure to ``path``, the format from its suffix (``.png`` at 300 dpi,
    ``.svg``, ``.pdf``); the same figure always gives the same bytes.

    Parameters
    ----------
    fig : Figure
    path : str or Path

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    UsageError
        For another suffix, or when the file cannot be written.
    """
    out = Path(path)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in SAVE_FORMATS:
        raise UsageError(
            f"cannot write {out}: unknown figure format {out.suffix or '(no suffix)'!r}",
            fix="name the file .png, .svg or .pdf",
        )
    meta: dict[str, Any] = {
        "png": {"Software": None},
        "svg": {"Date": None},
        "pdf": {"CreationDate": None, "ModDate": None},
    }[fmt]
    try:
        with style():
            fig.draw_without_rendering()
            fig.savefig(out, format=fmt, metadata=meta)
    except OSError as exc:
        raise UsageError(
            f"cannot write {out}: {exc.strerror or exc}", fix="check the folder exists"
        ) from None
    return out
