"""Self-contained HTML reports: one file, inline CSS, charts as inline SVG, no script, no
external reference (it opens with no network).

Every string that comes from the database is escaped (:func:`html.escape`); the charts are
matplotlib's SVG (which escapes its own text) with comments and metadata removed and every
``id`` made unique to its chart, so several charts live in one document.

The participant report has the sections (by ``id``) ``summary``, ``load``, ``symptoms``,
``weekly``, ``coverage``, ``sessions`` and ``parameters``; the cohort report ``summary``,
``arms``, ``flags``, ``adherence``, ``coverage`` and ``participants``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import polars as pl

from .. import __version__
from ..errors import UsageError
from .data import (
    ArmPrescription,
    CohortData,
    ParameterSet,
    ParticipantData,
    cohort_data,
    default_as_of,
    participant_data,
)
from .flags import FLAG_KINDS, FlagRules, battery_stored, cohort_flags

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..api import Study

__all__ = [
    "cohort_html",
    "participant_html",
    "svg_fragment",
    "write_cohort_report",
    "write_participant_report",
]

DASH = "\u2013"

_CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9dee4; --band: #f4f6f8; --accent: #1f5f8b; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 28px 48px; color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; background: #fff; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 2px solid
  var(--accent); }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
section, header.report { margin: 0 0 34px; }
nav { margin: 0 0 28px; padding: 8px 12px; background: var(--band); border-radius: 6px; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; }
dl.facts { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 4px 18px;
  margin: 12px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
p.meta, p.note, figcaption { color: var(--muted); font-size: 0.9em; }
p.warning { background: #fff4e5; border-left: 4px solid #e8590c; padding: 8px 12px; }
figure.chart { margin: 8px 0 4px; }
figure.chart svg { display: block; width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; margin: 6px 0 10px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.not-counted td { color: var(--muted); }
tr.changed td { background: #fff8db; }
.flag { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 0.85em;
  color: #fff; background: #7b8794; white-space: nowrap; }
.flag-no_data { background: #c92a2a; }
.flag-low_adherence { background: #e8590c; }
.flag-contact { background: #5f3dc4; }
.flag-battery { background: #1864ab; }
ul.flags { margin: 6px 0; padding-left: 18px; }
details summary { cursor: pointer; color: var(--accent); }
@media print { nav { display: none; } section { break-inside: avoid; } }
"""


# --------------------------------------------------------------------------- small pieces
def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _num(value: object, digits: int = 1) -> str:
    """A number with ``digits`` decimals (no thousands separator), or a dash."""
    if _is_missing(value):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def _text(value: object) -> str:
    """Any value as escaped text (a dash for missing)."""
    if _is_missing(value):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(str(value))


def _table(
    headers: Sequence[tuple[str, bool]],
    rows: Iterable[Sequence[str]],
    *,
    row_classes: Iterable[str] | None = None,
    cls: str = "",
) -> str:
    """A table; ``headers`` are (label, numeric) and cells are already-escaped HTML."""
    head = "".join(f'<th class="num">{h}</th>' if num else f"<th>{h}</th>" for h, num in headers)
    classes = list(row_classes) if row_classes is not None else None
    body: list[str] = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{c}</td>' if headers[j][1] else f"<td>{c}</td>"
            for j, c in enumerate(row)
        )
        rc = f' class="{classes[i]}"' if classes is not None and classes[i] else ""
        body.append(f"<tr{rc}>{cells}</tr>")
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _facts(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items)
        + "</dl>"
    )


def _flag_badge(kind: str) -> str:
    label = kind.replace("_", " ")
    cls = kind if kind in FLAG_KINDS else "other"
    return f'<span class="flag flag-{cls}">{escape(label)}</span>'


def _page(title: str, body: str, nav: Sequence[tuple[str, str]]) -> str:
    links = "".join(f'<a href="#{i}">{escape(label)}</a>' for i, label in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="actidose {escape(__version__)}">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<nav>{links}</nav>\n{body}\n"
        f'<footer><p class="meta">Made with actidose {escape(__version__)}. Self-contained: '
        "no scripts and no external resources.</p></footer>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- charts
_ID = re.compile(r'\bid="([^"]+)"')
_HREF = re.compile(r'((?:xlink:)?href)="#([^"]+)"')
_URL = re.compile(r"url\(\s*#([^)\s]+)\s*\)")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)
_PROLOG = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>", re.S)


def svg_fragment(svg: str, prefix: str) -> str:
    """Make an SVG document inline-able beside others: drop the XML declaration, DOCTYPE,
    comments and ``<metadata>``, and prefix every ``id`` (and the ``#id`` references to it,
    ``href``/``xlink:href`` and ``url(#id)``) with ``prefix``.

    Parameters
    ----------
    svg : str
        An ``<svg>`` element (e.g. :func:`actidose.plots.to_svg`).
    prefix : str
        Unique within the document, e.g. ``"c3"``.

    Returns
    -------
    str
    """
    out = _PROLOG.sub("", svg)
    out = _COMMENT.sub("", out)
    out = _METADATA.sub("", out)
    out = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', out)
    out = _HREF.sub(lambda m: f'{m.group(1)}="#{prefix}-{m.group(2)}"', out)
    out = _URL.sub(lambda m: f"url(#{prefix}-{m.group(1)})", out)
    return out.strip()


_WIDTH_PT = re.compile(r'<svg[^>]*?\bwidth="([0-9.]+)pt"')
_PX_PER_PT = 96 / 72
_SCALE = 1.3  # charts are drawn at paper size (9 pt text); a screen reads them larger


class _Charts:
    """Renders figures to inline SVG, each with its own id prefix."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, make: Callable[[], Figure], label: str, caption: str = "") -> str:
        from .. import plots

        fig = make()
        try:
            svg = plots.to_svg(fig)
        finally:
            _release(fig)
        self.n += 1
        cap = f"<figcaption>{caption}</figcaption>" if caption else ""
        width = _WIDTH_PT.search(svg)
        size = (
            f' style="max-width: {float(width.group(1)) * _PX_PER_PT * _SCALE:.0f}px"'
            if width
            else ""
        )
        return (
            f'<figure class="chart"{size} role="img" aria-label="{escape(label)}">'
            f"{svg_fragment(svg, f'c{self.n}')}{cap}</figure>"
        )


def _release(fig: Figure) -> None:
    """Free a figure (and forget it in pyplot's registry when it was made there)."""
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    fig.clear()


# --------------------------------------------------------------------------- participant
def _local(ts: dt.datetime | None, tz: str) -> str:
    if ts is None:
        return DASH
    try:
        return ts.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    except (ValueError, KeyError):  # pragma: no cover - zones are checked on entry
        return ts.strftime("%Y-%m-%d %H:%M UTC")


def _sport(sport: str | None, sub: str | None) -> str:
    if not sport:
        return DASH
    if sub and sub not in ("generic", "all", sport):
        return f"{escape(sport)} ({escape(sub)})"
    return escape(sport)


def _sessions_table(data: ParticipantData) -> str:
    s = data.sessions
    if not s.height:
        return '<p class="note">No sessions.</p>'
    has_band = data.prescription is not None and data.prescription.band_min_per_week is not None
    headers: list[tuple[str, bool]] = [
        ("Start (local)", False),
        ("Sport", False),
        ("Duration (min)", True),
        ("HR mean", True),
        ("HR max", True),
        ("TRIMP Banister", True),
        ("TRIMP Edwards", True),
        ("Counted", False),
    ]
    if has_band:
        headers.insert(7, ("In band (min)", True))
    if data.prescription is not None:
        headers.append(("Qualifies", False))
    rows: list[list[str]] = []
    classes: list[str] = []
    tz = data.info.timezone
    for r in s.iter_rows(named=True):
        counted = r.get("counted")
        counted = True if counted is None else bool(counted)
        dup = r.get("duplicate_of")
        counted_cell = "yes" if counted else (f"no (same as {_text(dup)})" if dup else "no")
        dur = r.get("duration_s")
        row = [
            _local(r.get("start_ts"), tz),
            _sport(r.get("sport"), r.get("sub_sport")),
            _num(None if dur is None else dur / 60.0, 1),
            _num(r.get("hr_mean"), 0),
            _num(r.get("hr_max"), 0),
            _num(r.get("trimp_banister"), 1),
            _num(r.get("trimp_edwards"), 1),
            counted_cell,
        ]
        if has_band:
            row.insert(7, _num(r.get("band_min"), 1))
        if data.prescription is not None:
            row.append(_text(r.get("qualifies")))
        rows.append(row)
        classes.append("counted" if counted else "not-counted")
    n_counted = classes.count("counted")
    note = (
        f'<p class="note">{s.height} session(s), {n_counted} counted in the dose (where '
        "recordings of one exercise overlap, one counts). Times in "
        f"{escape(tz)}.</p>"
    )
    return note + _table(headers, rows, row_classes=classes, cls="sessions")


def _adherence_table(data: ParticipantData) -> str:
    a = data.adherence
    if not a.height:
        return ""
    rows = [
        [
            _num(r["week"]),
            f"{_text(r['week_start'])} {DASH} {_text(r['week_end'])}",
            f"{_num(r['sessions_done'])} / {_num(r['sessions_prescribed'], 0)}",
            _num(r.get("band_min"), 0)
            + (
                f" / {_num(r['band_min_prescribed'], 0)}"
                if not _is_missing(r.get("band_min_prescribed"))
                else ""
            ),
            _num(r.get("trimp_banister"), 0)
            + (
                f" / {_num(r['trimp_prescribed'], 0)}"
                if not _is_missing(r.get("trimp_prescribed"))
                else ""
            ),
            _num(r["adherence_pct"], 0),
            _num(r["days_observed"]),
        ]
        for r in a.iter_rows(named=True)
    ]
    headers = [
        ("Week", True),
        ("Days", False),
        ("Sessions done / prescribed", True),
        ("Minutes in band / prescribed", True),
        ("TRIMP / prescribed", True),
        ("Adherence %", True),
        ("Days observed", True),
    ]
    return "<h3>Adherence per prescribed week</h3>" + _table(headers, rows, cls="adherence")


def _params_block(params: Sequence[ParameterSet]) -> str:
    if not params:
        return '<p class="note">No derived rows yet, so no parameter set in use.</p>'
    out: list[str] = []
    for ps in params:
        created = ps.created_at.strftime("%Y-%m-%d %H:%M UTC") if ps.created_at else DASH
        changed = (
            ", ".join(escape(k) for k in ps.changed)
            if ps.changed
            else "none (the published defaults)"
        )
        out.append(
            f"<h3>Parameter set <code>{escape(ps.params_id)}</code></h3>"
            + _facts(
                [
                    ("Created", escape(created)),
                    ("actidose version", _text(ps.actidose_version)),
                    ("Changed from defaults", changed),
                ]
            )
        )
        rows = [[f"<code>{escape(k)}</code>", _text(ps.params[k])] for k in sorted(ps.params)]
        classes = ["changed" if k in ps.changed else "" for k in sorted(ps.params)]
        out.append(
            "<details><summary>All parameters</summary>"
            + _table([("Parameter", False), ("Value", False)], rows, row_classes=classes)
            + "</details>"
        )
    return "".join(out)


def _anchors_block(data: ParticipantData) -> str:
    e = data.anchors_entered
    rows = []
    for r in e.iter_rows(named=True):
        base = r["valid_from"] is None
        # a field left empty in a dated version keeps the value in force before it
        kept = DASH if base else "inherited"
        rows.append(
            [
                "base" if base else _text(r["valid_from"]),
                _num(r["hr_rest_bpm"], 0),
                _text(r["hr_rest_source"]) if r["hr_rest_bpm"] is not None else kept,
                _num(r["hr_max_bpm"], 0),
                _text(r["hr_max_source"]) if r["hr_max_bpm"] is not None else kept,
                _text(r["note"]),
            ]
        )
    entered = "<h3>Anchors entered</h3>" + _table(
        [
            ("Valid from", False),
            ("HR rest", True),
            ("source", False),
            ("HR max", True),
            ("source", False),
            ("Note", False),
        ],
        rows,
        cls="anchors-entered",
    )

    def rng(lo: object, hi: object) -> str:
        if _is_missing(lo):
            return DASH
        return _num(lo, 1) if lo == hi else f"{_num(lo, 1)}{DASH}{_num(hi, 1)}"

    f = data.anchors_in_force
    if f.height:
        rows = [
            [
                f"{_text(r['first_day'])} {DASH} {_text(r['last_day'])}",
                _num(r["days"]),
                rng(r["hr_rest_min"], r["hr_rest_max"]),
                _text(r["hr_rest_source"]),
                rng(r["hr_max_min"], r["hr_max_max"]),
                _text(r["hr_max_source"]),
                _text(r["anchor_valid_from"]) if r["anchor_valid_from"] is not None else "base",
            ]
            for r in f.iter_rows(named=True)
        ]
        in_force = "<h3>Anchors in force (daily_load)</h3>" + _table(
            [
                ("Days", False),
                ("n", True),
                ("HR rest", True),
                ("source", False),
                ("HR max", True),
                ("source", False),
                ("Version", False),
            ],
            rows,
            cls="anchors-in-force",
        )
    else:
        in_force = '<h3>Anchors in force</h3><p class="note">No days with data.</p>'
    est = data.hr_estimates
    if est.height:
        rest = est.filter(pl.col("hr_rest_est_bpm").is_not_null())
        last = est.row(est.height - 1, named=True)
        estimates = "<h3>Estimated from the data (hr_estimates)</h3>" + _facts(
            [
                (
                    "Resting HR, latest estimate",
                    (
                        f"{_num(rest['hr_rest_est_bpm'][-1], 1)} bpm "
                        f"({_text(rest['day'][-1])}; {rest.height} day(s) with an estimate)"
                    )
                    if rest.height
                    else "none (needs days with enough all-day HR)",
                ),
                (
                    "Maximal HR, latest estimate",
                    f"{_num(last['hr_max_est_bpm'], 1)} bpm ({_text(last['day'])})",
                ),
            ]
        )
    else:
        estimates = ""
    return entered + in_force + estimates


def _mixed_params(params: Sequence[ParameterSet]) -> str:
    if len(params) < 2:
        return ""
    return (
        f'<p class="warning">The derived rows come from {len(params)} parameter sets; '
        "run <code>actidose recompute</code> so that all use the parameters in force.</p>"
    )


def _participant_flags(flags: pl.DataFrame | None, as_of: dt.date | None) -> str:
    if flags is None:
        return ""
    when = f" (as of {escape(str(as_of))})" if as_of is not None else ""
    if not flags.height:
        return f"<p>Flags{when}: none.</p>"
    items = "".join(
        f"<li>{_flag_badge(r['flag'])} {escape(r['reason'])}</li>"
        for r in flags.iter_rows(named=True)
    )
    return f'<p>Flags{when}:</p><ul class="flags">{items}</ul>'


def _per_week(presc: ArmPrescription | None) -> str:
    """What the arm prescribes per week: sessions, minutes in the band, TRIMP."""
    if presc is None:
        return DASH
    p = presc.prescription
    parts = [f"{p.sessions_per_week:g} sessions of at least {p.min_session_min:g} min"]
    if presc.band_min_per_week is not None:
        parts.append(f"{_num(presc.band_min_per_week, 0)} min in band")
    if presc.trimp_per_week is not None:
        source = f" ({escape(presc.trimp_source)})" if presc.trimp_source else ""
        parts.append(f"TRIMP {_num(presc.trimp_per_week, 0)}{source}")
    return ", ".join(parts)


def participant_html(
    data: ParticipantData,
    *,
    flags: pl.DataFrame | None = None,
    as_of: dt.date | None = None,
    generated_at: dt.datetime | None = None,
) -> str:
    """The participant report as one HTML document.

    Parameters
    ----------
    data : ParticipantData
        From :func:`actidose.report.data.participant_data`.
    flags : pl.DataFrame, optional
        This participant's rows of :func:`actidose.report.flags.cohort_flags`, listed in the
        header.
    as_of : datetime.date, optional
        The day the flags looked from (shown beside them).
    generated_at : datetime, optional
        Shown as the generation time (default: now, UTC).

    Returns
    -------
    str
    """
    from .. import plots

    plots.require_matplotlib()
    info = data.info
    pid = info.participant_id
    when = (generated_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    cfg = data.config
    xlim = data.xlim
    chart = _Charts()
    presc = data.prescription

    # ---- summary
    status = (
        data.daily_load.group_by("day_status").len()
        if data.daily_load.height
        else pl.DataFrame({"day_status": [], "len": []})
    )
    counts = {r[0]: r[1] for r in status.iter_rows()}
    days_text = (
        f"{_text(data.first_day)} {DASH} {_text(data.last_day)} "
        f"({counts.get('observed', 0)} observed, {counts.get('partial', 0)} partial, "
        f"{counts.get('unobserved', 0)} unobserved)"
        if data.first_day
        else "no data"
    )
    counted = (
        int(data.sessions["counted"].fill_null(True).sum())
        if data.sessions.height and "counted" in data.sessions.columns
        else data.sessions.height
    )
    adh = data.adherence_summary.row(0, named=True) if data.adherence_summary.height else None
    facts = [
        ("Arm", _text(info.arm)),
        ("Prescription", escape(presc.description) if presc else DASH),
        ("Time zone", escape(info.timezone)),
        ("Prescribed per week", _per_week(presc)),
        ("Sex", _text(info.sex)),
        ("Birth year", _text(info.birth_year)),
        ("Start date", _text(info.start_date)),
        ("Data", days_text),
        ("Sessions", f"{data.sessions.height} ({counted} counted)"),
        (
            "Adherence",
            (
                f"{_num(adh['adherence_pct'], 1)} % ({adh['sessions_done']} of "
                f"{_num(adh['sessions_prescribed'], 0)} sessions; {adh['weeks_met']} of "
                f"{adh['weeks']} weeks met)"
            )
            if adh
            else DASH,
        ),
        ("Generated", escape(when.strftime("%Y-%m-%d %H:%M:%S UTC"))),
        ("actidose", escape(__version__)),
    ]
    warn = (
        '<p class="warning">This participant\'s derived tables are out of date (pending '
        "recompute): run <code>actidose recompute</code> and make the report again.</p>"
        if data.pending
        else ""
    ) + _mixed_params(data.params)
    header = (
        f'<header class="report" id="summary"><h1>Participant {escape(pid)}</h1>'
        f"{_facts(facts)}{_participant_flags(flags, as_of)}{warn}</header>"
    )

    # ---- load
    load = (
        '<section id="load"><h2>Fitness, fatigue and form</h2>'
        + chart(
            lambda: plots.pmc(data.load_series, data.sessions, xlim=xlim),
            f"Fitness, fatigue and form of {pid}",
            f"Daily load: {escape(cfg.load_metric)}. Fitness (CTL, {cfg.tau_ctl:g}-day) and "
            f"fatigue (ATL, {cfg.tau_atl:g}-day) are exponentially weighted averages of the "
            "daily load; form (TSB) is fitness minus fatigue. Markers: sessions. Days without "
            f"data: {escape(cfg.unobserved_load)}.",
        )
        + "</section>"
    )

    # ---- symptoms
    sc = data.symptom_scores
    if sc.height:
        parts = []
        for name in sorted(set(sc["instrument"].to_list())):
            n = sc.filter(pl.col("instrument") == name).height
            parts.append(
                chart(
                    partial(plots.symptoms, sc, instrument=name, xlim=xlim),
                    f"{name} scores of {pid}",
                    f"{escape(name)}: {n} rating(s). Same time axis as the load chart.",
                )
            )
        sym_body = "".join(parts)
    else:
        sym_body = '<p class="note">No symptom ratings.</p>'
    symptoms = f'<section id="symptoms"><h2>Symptoms</h2>{sym_body}</section>'

    # ---- weekly
    presc_min = presc.band_min_per_week if presc else None
    presc_trimp = presc.trimp_per_week if presc else None
    weekly = (
        '<section id="weekly"><h2>Weekly dose</h2>'
        + chart(
            lambda: plots.weekly(
                data.weekly_dose,
                prescription_min=presc_min,
                prescription_trimp=presc_trimp,
                who_min=cfg.who_min_per_week,
                xlim=xlim,
            ),
            f"Weekly dose of {pid}",
            f"Moderate and vigorous minutes per week (Monday to Sunday) against the WHO "
            f"{cfg.who_min_per_week:g} moderate-equivalent minutes (one vigorous minute counts "
            f"{cfg.vigorous_weight:g})"
            + (
                f" and the arm's prescription ({_num(presc_min, 0)} min in band"
                + (f", TRIMP {_num(presc_trimp, 0)}" if presc_trimp is not None else "")
                + ")"
                if presc_min is not None or presc_trimp is not None
                else ""
            )
            + ".",
        )
        + _adherence_table(data)
        + "</section>"
    )

    # ---- coverage
    coverage = (
        '<section id="coverage"><h2>Days with data</h2>'
        + chart(
            lambda: plots.coverage(data.daily_load),
            f"Calendar of days with data for {pid}",
            f"Each day's status: observed (at least {cfg.observed_min_h:g} h of all-day "
            "coverage, or inside the span of activity files), partial, or unobserved.",
        )
        + "</section>"
    )

    sessions = f'<section id="sessions"><h2>Sessions</h2>{_sessions_table(data)}</section>'
    params = (
        '<section id="parameters"><h2>Parameters and anchors</h2>'
        + _params_block(data.params)
        + _anchors_block(data)
        + "</section>"
    )
    nav = [
        ("summary", "Summary"),
        ("load", "Load"),
        ("symptoms", "Symptoms"),
        ("weekly", "Weekly dose"),
        ("coverage", "Days with data"),
        ("sessions", "Sessions"),
        ("parameters", "Parameters"),
    ]
    body = header + load + symptoms + weekly + coverage + sessions + params
    return _page(f"actidose report: {pid}", body, nav)


# --------------------------------------------------------------------------- cohort
def _iqr(median: object, q1: object, q3: object) -> str:
    if _is_missing(median):
        return DASH
    return f"{_num(median, 0)} ({_num(q1, 0)}{DASH}{_num(q3, 0)})"


def _arms_table(data: CohortData) -> str:
    a = data.arms
    if not a.height:
        return '<p class="note">No participants.</p>'
    rows = []
    for r in a.iter_rows(named=True):
        presc = data.prescriptions.get(r["arm"]) if r["arm"] is not None else None
        sessions = (
            f"{_num(r['sessions_done'])} / {_num(r['sessions_prescribed'], 0)}"
            if not _is_missing(r["sessions_prescribed"])
            else DASH
        )
        weeks = (
            f"{_num(r['weeks_met'])} / {_num(r['weeks'])}" if not _is_missing(r["weeks"]) else DASH
        )
        rows.append(
            [
                _text(r["arm"]) if r["arm"] is not None else "(no arm)",
                escape(presc.describe()) if presc else DASH,
                _num(r["participants"]),
                _num(r["with_prescription"]),
                _num(r["adherence_mean"], 1),
                _num(r["adherence_median"], 1),
                weeks,
                sessions,
                _iqr(r["who_median"], r["who_q1"], r["who_q3"]),
                _num(r["full_weeks"]),
                _num(r["weeks_meeting_who_pct"], 0),
                _num(r["coverage_pct"], 1),
            ]
        )
    headers = [
        ("Arm", False),
        ("Prescription", False),
        ("Participants", True),
        ("With prescription", True),
        ("Adherence % (mean)", True),
        ("Adherence % (median)", True),
        ("Weeks met", True),
        ("Sessions done / prescribed", True),
        ("WHO-equivalent min/week, median (IQR)", True),
        ("Full weeks", True),
        ("Weeks meeting WHO %", True),
        ("Days observed %", True),
    ]
    note = (
        '<p class="note">Adherence: <code>adherence_summary.adherence_pct</code> of the arm\'s '
        "participants with a prescription (100 &times; min(sessions done / prescribed, 1) over "
        "the prescription). WHO-equivalent minutes: moderate + 2 &times; vigorous minutes of "
        "each participant-week entirely inside the participant's data (Monday to Sunday), "
        "median and quartiles. Days observed: observed days over the days of the prescribed "
        f"period (or the data range) up to {escape(str(data.as_of))}, pooled over the arm.</p>"
    )
    return _table(headers, rows, cls="arms") + note


def _participants_table(data: CohortData) -> str:
    per = data.per_participant
    if not per.height:
        return '<p class="note">No participants.</p>'
    flagged: dict[str, list[str]] = {}
    for r in data.flags.iter_rows(named=True):
        flagged.setdefault(r["participant_id"], []).append(r["flag"])
    rows = [
        [
            escape(r["participant_id"]),
            _text(r["arm"]),
            _text(r["period_start"]),
            _text(r["last_data_day"]),
            _num(r["period_days"]),
            _num(r["days_observed"]),
            _num(r["coverage_pct"], 1),
            _num(r["adherence_pct"], 1),
            " ".join(_flag_badge(k) for k in flagged.get(r["participant_id"], [])) or DASH,
        ]
        for r in per.iter_rows(named=True)
    ]
    headers = [
        ("Participant", False),
        ("Arm", False),
        ("From", False),
        ("Last day with data", False),
        ("Days", True),
        ("Observed", True),
        ("Observed %", True),
        ("Adherence %", True),
        ("Flags", False),
    ]
    return _table(headers, rows, cls="participants")


def _flags_table(data: CohortData, battery: bool) -> str:
    r = data.rules
    rules = (
        f"Rules (as of {escape(str(data.as_of))}): no data for {r.no_data_days} days or more; "
        f"adherence below {r.min_adherence_pct:g} % over the last {r.adherence_weeks} complete "
        f"prescribed week(s); recordings in the last {r.sync_window_days} days with at least "
        f"{r.max_invalid_pct:g} % of heart-rate samples without skin contact or invalid"
        + (
            f"; syncs with the battery below {r.min_battery_pct:g} %."
            if battery
            else ". No live sync in this database has a stored battery level to check."
        )
    )
    f = data.flags
    if not f.height:
        return f'<p>No participant is flagged.</p><p class="note">{rules}</p>'
    rows = [
        [
            escape(x["participant_id"]),
            _text(x["arm"]),
            _flag_badge(x["flag"]),
            escape(x["reason"]),
        ]
        for x in f.iter_rows(named=True)
    ]
    n = f["participant_id"].n_unique()
    return (
        f"<p>{n} participant(s) flagged.</p>"
        + _table(
            [("Participant", False), ("Arm", False), ("Flag", False), ("Reason", False)],
            rows,
            cls="flags",
        )
        + f'<p class="note">{rules}</p>'
    )


def cohort_html(
    data: CohortData, *, battery: bool = False, generated_at: dt.datetime | None = None
) -> str:
    """The cohort report as one HTML document.

    Parameters
    ----------
    data : CohortData
        From :func:`actidose.report.data.cohort_data`.
    battery : bool
        Whether the database stores sync battery levels (the report says so when not).
    generated_at : datetime, optional
        Shown as the generation time (default: now, UTC).

    Returns
    -------
    str
    """
    from .. import plots

    plots.require_matplotlib()
    when = (generated_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    chart = _Charts()
    n_part = data.participants.height
    arms = sorted({a for a in data.participants["arm"].to_list() if a is not None})
    params = ", ".join(f"<code>{escape(p.params_id)}</code>" for p in data.params) or DASH
    facts = [
        ("Participants", str(n_part)),
        ("Arms", ", ".join(escape(a) for a in arms) or DASH),
        ("As of", escape(str(data.as_of))),
        ("Flagged", str(data.flags["participant_id"].n_unique())),
        ("Parameter sets", params),
        ("Generated", escape(when.strftime("%Y-%m-%d %H:%M:%S UTC"))),
        ("actidose", escape(__version__)),
    ]
    warn = (
        f'<p class="warning">Derived tables of {len(data.pending)} participant(s) are out of '
        "date (pending recompute): run <code>actidose recompute</code> and make the report "
        "again.</p>"
        if data.pending
        else ""
    ) + _mixed_params(data.params)
    header = (
        f'<header class="report" id="summary"><h1>Cohort report</h1>{_facts(facts)}{warn}</header>'
    )
    arms_sec = f'<section id="arms"><h2>Arms</h2>{_arms_table(data)}</section>'
    adherence = (
        '<section id="adherence"><h2>Adherence per participant and week</h2>'
        + chart(
            lambda: plots.adherence_heatmap(data.adherence),
            "Adherence per participant and prescribed week",
            "Percent of the prescribed sessions done in each prescribed week (7-day blocks from "
            "each participant's start date), capped at 100.",
        )
        + "</section>"
    )
    coverage = (
        '<section id="coverage"><h2>Days with data</h2>'
        + chart(
            lambda: plots.cohort_coverage(data.daily_load),
            "Days with data per participant",
            "Each participant's days: observed, partial or unobserved.",
        )
        + "</section>"
    )
    participants = (
        f'<section id="participants"><h2>Participants</h2>{_participants_table(data)}</section>'
    )
    flags = (
        f'<section id="flags"><h2>Flagged participants</h2>{_flags_table(data, battery)}</section>'
    )
    nav = [
        ("summary", "Summary"),
        ("arms", "Arms"),
        ("adherence", "Adherence"),
        ("coverage", "Days with data"),
        ("participants", "Participants"),
        ("flags", "Flags"),
    ]
    body = header + arms_sec + flags + adherence + coverage + participants
    return _page("actidose cohort report", body, nav)


# --------------------------------------------------------------------------- writers
def _write(out: str | Path, text: str) -> Path:
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"{path} is a folder", fix="give a file name, e.g. --out report.html")
    if not path.parent.exists():
        raise UsageError(f"folder {path.parent} does not exist", fix="create it first")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from exc
    return path


def write_participant_report(
    study: Study,
    participant_id: str,
    out: str | Path,
    *,
    rules: FlagRules | None = None,
    as_of: dt.date | None = None,
    generated_at: dt.datetime | None = None,
) -> Path:
    """Write the participant report of ``participant_id`` to ``out`` (HTML).

    Parameters
    ----------
    study : Study
        An open study.
    participant_id : str
        The participant.
    out : path-like
        The HTML file to write.
    rules : FlagRules, optional
        Thresholds of the flags listed in the header.
    as_of : datetime.date, optional
        The day the flags look from (default: the last day with data in the study).
    generated_at : datetime, optional
        The generation time shown (default: now).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    UsageError
        Unknown participant, a bad threshold, matplotlib missing, or ``out`` not writable.
    """
    from .. import plots

    plots.require_matplotlib()
    data = participant_data(study, participant_id)
    day = as_of or (rules.as_of if rules is not None else None) or default_as_of(study)
    flags = cohort_flags(study, rules, as_of=day).filter(pl.col("participant_id") == participant_id)
    return _write(out, participant_html(data, flags=flags, as_of=day, generated_at=generated_at))


def write_cohort_report(
    study: Study,
    out: str | Path,
    *,
    rules: FlagRules | None = None,
    as_of: dt.date | None = None,
    generated_at: dt.datetime | None = None,
) -> Path:
    """Write the cohort report to ``out`` (HTML).

    Parameters
    ----------
    study : Study
        An open study.
    out : path-like
        The HTML file to write.
    rules : FlagRules, optional
        Flag thresholds (default :class:`~actidose.report.flags.FlagRules`).
    as_of : datetime.date, optional
        The day the flags and coverage look from (default: the last day with data).
    generated_at : datetime, optional
        The generation time shown (default: now).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    UsageError
        A bad threshold, matplotlib missing, or ``out`` not writable.
    """
    from .. import plots

    plots.require_matplotlib()
    data = cohort_data(study, rules, as_of=as_of)
    return _write(out, cohort_html(data, battery=battery_stored(study), generated_at=generated_at))
