"""HTML reports and cohort flags: content checked against the study's tables, flags raised by
constructed cases, escaping, and no external reference."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import duckdb
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import actidose
from actidose import plots
from actidose.cli import main
from actidose.errors import UsageError
from actidose.ingest import spool as sp
from actidose.pipeline import import_paths
from actidose.prescription import parse_prescriptions
from actidose.report import (
    FlagRules,
    battery_stored,
    cohort_data,
    cohort_flags,
    participant_data,
    write_cohort_report,
    write_participant_report,
    write_readme_figure,
)
from actidose.report.data import anchors_in_force
from actidose.report.html import svg_fragment
from actidose.report_cli import register, report
from actidose.storage import participants
from actidose.storage import prescriptions as store_presc
from actidose.storage.db import connect
from actidose.storage.derive import recompute

from .conftest import activity_file, demo_study, utc

GENERATED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


# --------------------------------------------------------------------------- HTML parsing
class Doc(HTMLParser):
    """What the tests look at in a report: sections, tables, every attribute and style."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []  # (tag, name, value)
        self.sections: list[str] = []
        self.styles: list[str] = []
        self.tables: dict[str, list[tuple[str, list[str]]]] = {}  # class -> (row class, cells)
        self.svgs = 0
        self.text: list[str] = []
        self._table: str | None = None
        self._in_body = False
        self._row: list[str] | None = None
        self._row_class = ""
        self._cell: list[str] | None = None
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = {k: v or "" for k, v in attrs}
        for k, v in a.items():
            self.attrs.append((tag, k, v))
        if tag in ("section", "header") and "id" in a:
            self.sections.append(a["id"])
        if tag == "svg":
            self.svgs += 1
        if tag == "style":
            self._in_style = True
        if tag == "table":
            self._table = a.get("class", "")
            self.tables.setdefault(self._table, [])
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._in_body:
            self._row, self._row_class = [], a.get("class", "")
        if tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append((self._row_class, self._row))
            self._row = None
        if tag == "tbody":
            self._in_body = False
        if tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
        else:
            self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, cls: str) -> list[list[str]]:
        return [cells for _, cells in self.tables.get(cls, [])]


FETCHING = {"src", "href", "xlink:href", "srcset", "poster", "data", "action", "formaction"}
FETCHING |= {"background", "longdesc", "manifest", "ping", "archive", "codebase", "cite"}
URL_IN_CSS = re.compile(r"url\(\s*['\"]?([^'\")]*)", re.I)


def assert_self_contained(doc: Doc) -> None:
    """No attribute or style makes the browser fetch anything: every resource reference is a
    fragment (``#id``) or a ``data:`` URL, there is no script, and the only URLs anywhere are
    the SVG namespace identifiers (``xmlns``, ``xmlns:xlink``), which are never fetched."""
    assert "script" not in doc.tags and "link" not in doc.tags and "iframe" not in doc.tags
    for tag, name, value in doc.attrs:
        v = value.strip()
        if name in FETCHING:
            assert v.startswith("#") or v.startswith("data:"), (tag, name, value)
        if name == "style" or "url(" in v:
            for ref in URL_IN_CSS.findall(v):
                assert ref.startswith("#") or ref.startswith("data:"), (tag, name, value)
        if "://" in v:
            assert name.startswith("xmlns"), (tag, name, value)
        assert not name.startswith("on"), (tag, name)  # no event handlers
    css = "".join(doc.styles)
    assert "@import" not in css and "@font-face" not in css
    for ref in URL_IN_CSS.findall(css):
        assert ref.startswith("#") or ref.startswith("data:"), ref
    assert not any("://" in t for t in doc.text)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_study(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def demo_reports(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("reports")
    with actidose.open(demo_db) as study:
        p = write_participant_report(study, "P001", out / "P001.html", generated_at=GENERATED)
        c = write_cohort_report(study, out / "cohort.html", generated_at=GENERATED)
    return {"P001": p.read_text(encoding="utf-8"), "cohort": c.read_text(encoding="utf-8")}


# --------------------------------------------------------------------------- participant
PARTICIPANT_SECTIONS = ["summary", "load", "symptoms", "weekly", "coverage", "sessions"]
PARTICIPANT_SECTIONS += ["parameters"]
COHORT_SECTIONS = ["summary", "arms", "flags", "adherence", "coverage", "participants"]


def test_participant_report_has_every_section_and_chart(demo_reports: dict[str, str]) -> None:
    text = demo_reports["P001"]
    doc = Doc(text)
    assert doc.sections == PARTICIPANT_SECTIONS
    assert text.startswith("<!DOCTYPE html>")
    # load, one symptom chart per instrument (mood, phq9), weekly, coverage
    assert doc.svgs == 5
    for h in ("Fitness, fatigue and form", "Symptoms", "Weekly dose", "Days with data"):
        assert f"<h2>{h}</h2>" in text
    assert "Participant P001" in text
    assert "2026-01-02 03:04:05 UTC" in text  # generation time
    assert f"actidose {actidose.__version__}" in text
    assert "Europe/London" in text and "aerobic" in text
    # ids are unique across the inline charts
    ids = [v for _, k, v in doc.attrs if k == "id"]
    assert len(ids) == len(set(ids))


def test_sessions_table_rows_are_the_study_sessions(
    demo_db: Path, demo_reports: dict[str, str]
) -> None:
    doc = Doc(demo_reports["P001"])
    rows = doc.tables["sessions"]
    with actidose.open(demo_db) as study:
        sessions = study.sessions("P001")
    counted = sessions.filter(pl.col("counted").fill_null(True))
    assert len(rows) == sessions.height
    assert sum(cls == "counted" for cls, _ in rows) == counted.height
    # the rows, in order: local start time, duration and both TRIMPs as stored
    for (_, cells), s in zip(rows, sessions.iter_rows(named=True), strict=True):
        start = s["start_ts"].astimezone(dt.timezone(dt.timedelta(0)))
        local = start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/London"))
        assert cells[0] == local.strftime("%Y-%m-%d %H:%M")
        assert cells[2] == f"{s['duration_s'] / 60:.1f}"
        assert cells[5] == f"{s['trimp_banister']:.1f}"
        assert cells[6] == f"{s['trimp_edwards']:.1f}"


def test_header_shows_the_prescription_of_the_arm(
    demo_db: Path, demo_reports: dict[str, str]
) -> None:
    with actidose.open(demo_db) as study:
        data = participant_data(study, "P001")
        adh = study.adherence("P001")
    presc = data.prescription
    assert presc is not None and presc.prescription.arm == "aerobic"
    assert presc.band_min_per_week == 3 * 30  # sessions_per_week x min_session_min
    # the weekly TRIMP the adherence table was computed against (derived separately)
    assert presc.trimp_per_week == pytest.approx(adh["trimp_prescribed"][0], rel=1e-12)
    assert presc.trimp_source == "band_midpoint"
    text = demo_reports["P001"]
    assert f"90 min in band, TRIMP {presc.trimp_per_week:.0f} (band_midpoint)" in text
    assert "3 x 30 min/week at 60-80 % HRR for 6 weeks" in text
    rows = Doc(text).rows("adherence")
    assert [int(r[0]) for r in rows] == adh["week"].to_list()
    assert [r[5] for r in rows] == [f"{v:.0f}" for v in adh["adherence_pct"]]


def test_parameters_and_anchors(demo_db: Path, demo_reports: dict[str, str]) -> None:
    with actidose.open(demo_db) as study:
        ids = study.sql("SELECT DISTINCT params_id FROM daily_load")["params_id"].to_list()
        p = study.participants().filter(pl.col("participant_id") == "P001").row(0, named=True)
    text = demo_reports["P001"]
    doc = Doc(text)
    assert all(f"<code>{i}</code>" in text for i in ids)
    entered = doc.rows("anchors-entered")
    assert entered[0][:5] == [
        "base",
        f"{p['hr_rest_bpm']:.0f}",
        "entered",
        f"{p['hr_max_bpm']:.0f}",
        "entered",
    ]
    in_force = doc.rows("anchors-in-force")
    assert sum(int(r[1]) for r in in_force) == 42  # every day of the 6 weeks, once


def test_pmc_and_symptoms_share_the_x_range(
    demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def spy(name: str) -> Any:
        real = getattr(plots, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            seen.setdefault(name, []).append(kwargs.get("xlim"))
            return real(*args, **kwargs)

        return wrapped

    for name in ("pmc", "symptoms", "weekly"):
        monkeypatch.setattr(plots, name, spy(name))
    with actidose.open(demo_db) as study:
        data = participant_data(study, "P001")
        write_participant_report(study, "P001", tmp_path / "r.html")
        days = study.sql(
            "SELECT min(day), max(day) FROM (SELECT day FROM load_series WHERE participant_id "
            "= 'P001' UNION ALL SELECT day FROM symptom_scores WHERE participant_id = 'P001')"
        ).row(0)
    assert data.xlim == days
    assert seen["pmc"] == [days]
    assert seen["symptoms"] == [days, days]  # mood and phq9
    assert seen["weekly"] == [days]


def test_anchors_in_force_runs() -> None:
    day = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(6)]
    frame = pl.DataFrame(
        {
            "day": day,
            "hr_rest_bpm": [60.0, 60.0, 58.0, 57.0, 57.0, 61.0],
            "hr_rest_source": ["entered", "entered", "estimated", "estimated", "estimated", None],
            "hr_max_bpm": [190.0] * 6,
            "hr_max_source": ["entered"] * 6,
            "anchor_valid_from": [None] * 6,
        },
        schema_overrides={"anchor_valid_from": pl.Date},
    )
    runs = anchors_in_force(frame)
    assert runs["days"].to_list() == [2, 3, 1]
    assert runs["hr_rest_source"].to_list() == ["entered", "estimated", None]
    assert runs["hr_rest_min"].to_list() == [60.0, 57.0, 61.0]
    assert runs["hr_rest_max"].to_list() == [60.0, 58.0, 61.0]
    assert runs["first_day"].to_list() == [day[0], day[2], day[5]]
    assert anchors_in_force(frame.clear()).height == 0


# --------------------------------------------------------------------------- cohort
def test_cohort_report_sections(demo_reports: dict[str, str]) -> None:
    doc = Doc(demo_reports["cohort"])
    assert doc.sections == COHORT_SECTIONS
    assert doc.svgs == 2  # adherence heatmap, cohort coverage
    assert [r[0] for r in doc.rows("participants")] == [f"P00{i}" for i in range(1, 7)]
    assert "No participant is flagged." in demo_reports["cohort"]
    assert "No live sync in this database has a stored battery level" in demo_reports["cohort"]


def test_arm_summary_equals_sql(demo_db: Path, demo_reports: dict[str, str]) -> None:
    rows = {r[0]: r for r in Doc(demo_reports["cohort"]).rows("arms")}
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        summary = con.execute(
            "SELECT arm, count(*), avg(adherence_pct), median(adherence_pct), sum(weeks_met), "
            "sum(weeks), sum(sessions_done), sum(sessions_prescribed) "
            "FROM adherence_summary GROUP BY arm ORDER BY arm"
        ).fetchall()
        n = dict(con.execute("SELECT arm, count(*) FROM participants GROUP BY arm").fetchall())
        weekly = con.execute(
            "SELECT p.arm, list(w.who_equiv_min) FROM weekly_dose w JOIN participants p "
            "USING (participant_id) WHERE w.days = 7 GROUP BY p.arm"
        ).fetchall()
    finally:
        con.close()
    assert sorted(rows) == ["aerobic", "stretching"]
    for arm, k, mean, median, met, weeks, done, prescribed in summary:
        r = rows[arm]
        assert r[2] == str(n[arm]) and r[3] == str(k)
        assert r[4] == f"{mean:.1f}" and r[5] == f"{median:.1f}"
        assert r[6] == f"{met} / {weeks}"
        assert r[7] == f"{done} / {prescribed:.0f}"
    for arm, values in weekly:
        q1, med, q3 = np.percentile(np.asarray(values, float), [25, 50, 75])
        assert rows[arm][8] == f"{med:.0f} ({q1:.0f}\u2013{q3:.0f})"
        assert rows[arm][9] == str(len(values))


def test_reports_reference_nothing_outside_the_file(demo_reports: dict[str, str]) -> None:
    for text in demo_reports.values():
        assert_self_contained(Doc(text))
        assert "<?xml" not in text and "<metadata>" not in text and "<!--" not in text


def test_the_self_contained_check_catches_external_references() -> None:
    bad = [
        '<img src="https://example.org/x.png">',
        '<svg><image xlink:href="http://example.org/a.png"/></svg>',
        '<div style="background: url(https://cdn.example/x.png)"></div>',
        "<style>@import url('https://fonts.example/css');</style>",
        '<script src="x.js"></script>',
        '<a href="https://example.org">x</a>',
    ]
    for snippet in bad:
        with pytest.raises(AssertionError):
            assert_self_contained(Doc(snippet))
    assert_self_contained(Doc('<svg xmlns="http://www.w3.org/2000/svg"><use href="#a"/></svg>'))


def test_svg_fragment_scopes_ids() -> None:
    svg = (
        '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg><!-- a -- b --><metadata>m</metadata>'
        '<defs><clipPath id="p1"><rect/></clipPath><path id="g"/></defs>'
        '<g clip-path="url(#p1)"><use xlink:href="#g"/><use href="#g"/></g></svg>'
    )
    out = svg_fragment(svg, "c7")
    assert out == (
        '<svg><defs><clipPath id="c7-p1"><rect/></clipPath><path id="c7-g"/></defs>'
        '<g clip-path="url(#c7-p1)"><use xlink:href="#c7-g"/><use href="#c7-g"/></g></svg>'
    )


# --------------------------------------------------------------------------- constructed study
AS_OF = dt.date(2026, 2, 28)
START = dt.date(2026, 2, 2)  # a Monday; weeks 1-3 end Feb 8, 15, 22
ARMS = """
[arms.aerobic]
weeks = 8
sessions_per_week = 3
min_session_min = 30
intensity = { scheme = "hrr", low = 0.60, high = 0.80 }
"""
# Days (February 2026) of 35-minute sessions at 150 bpm: 60 % < (150-60)/(190-60) < 80 % HRR.
SESSION_DAYS = {
    "P_OK": [9, 11, 13, 16, 18, 20, 26],  # 3 + 3 in weeks 2-3, data until Feb 26
    "P_LOW": [10, 26],  # 1 of 6 sessions in weeks 2-3: 17 %
    "P_STOP": [9, 11, 18],  # 3 of 6 (exactly 50 %: not below); no data after Feb 18
    "P_CONTACT": [9, 11, 13, 16, 18, 20, 26],
}
HOSTILE = "<script>alert('x')</script>"


def _hrm(bpm: int, contact: bool) -> bytes:
    return bytes([0x04 | (0x02 if contact else 0), bpm])  # contact supported (+ detected)


def _battery(percent: int) -> bytes:
    return json.dumps({"event": "battery", "percent": percent}).encode()


@pytest.fixture(scope="module")
def flag_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("flags")
    db = tmp / "flags.duckdb"
    con = connect(db)
    try:
        for pid in [*SESSION_DAYS, "P_NONE", HOSTILE]:
            participants.add(
                con,
                participants.Participant(
                    pid, "Europe/London", "f", 1990, "aerobic", 60.0, 190.0, START
                ),
            )
        for k, (pid, days) in enumerate([*SESSION_DAYS.items(), (HOSTILE, [9, 12])]):
            files = [
                activity_file(
                    tmp / f"p{k}-{d}.fit",
                    utc(2026, 2, d, 8, 0),
                    np.full(35 * 12, 150.0),
                    step_s=5,
                    serial=1000 + k,  # other bytes for each participant
                )
                for d in days
            ]
            summary = import_paths(con, files, pid, recompute_after=False)
            assert summary.count("imported") == len(days)
        # A live sync on Feb 27 whose strap lost skin contact in 30 of 120 notifications.
        t0 = int(utc(2026, 2, 27, 9, 0).astype(np.int64))
        header = {"session_uuid": "s-contact", "participant_id": "P_CONTACT", "started_us": t0}
        header["device_name"] = "Polar H10"
        recs = [
            sp.SpoolRecord(i + 1, t0 + i * 1_000_000, sp.HRM, _hrm(140, contact=i % 4 != 0))
            for i in range(120)
        ]
        # the strap reported its battery at 30 %, then at 12 %: the lowest is kept
        recs += [
            sp.SpoolRecord(121 + k, t0 + (120 + k) * 1_000_000, sp.EVENT, _battery(pct))
            for k, pct in enumerate((30, 12))
        ]
        sp.store_records(con, header, recs, spool_path=str(tmp / "s.spool"))
        # ... and a watch recorded the same exercise: two sessions, one counted
        watch = activity_file(tmp / "watch.fit", utc(2026, 2, 27, 9, 0), np.full(120, 141.0))
        assert import_paths(con, [watch], "P_CONTACT", recompute_after=False).count("imported")
        store_presc.save(con, parse_prescriptions(ARMS, "arms.toml"), "arms.toml")
        recompute(
            con, [r[0] for r in con.execute("SELECT participant_id FROM participants").fetchall()]
        )
    finally:
        con.close()
    return db


def _flags(db: Path, **rules: Any) -> set[tuple[str, str]]:
    with actidose.open(db) as study:
        f = cohort_flags(study, FlagRules(**rules), as_of=rules.pop("as_of", AS_OF))
    return {(r["participant_id"], r["flag"]) for r in f.iter_rows(named=True)}


def test_flags_of_constructed_cases(flag_db: Path) -> None:
    with actidose.open(flag_db) as study:
        f = cohort_flags(study, as_of=AS_OF)
        sources = study.sql("SELECT n_samples, n_invalid FROM sources WHERE format = 'ble'")
    got = {(r["participant_id"], r["flag"]): r for r in f.iter_rows(named=True)}
    assert sorted(got) == sorted(
        [
            ("P_STOP", "no_data"),
            ("P_LOW", "low_adherence"),
            ("P_CONTACT", "contact"),
            ("P_CONTACT", "battery"),  # the strap reported 12 %
            ("P_NONE", "no_data"),
            ("P_NONE", "low_adherence"),
            (HOSTILE, "no_data"),  # last data Feb 12
            (HOSTILE, "low_adherence"),
        ]
    )
    stop = got[("P_STOP", "no_data")]
    assert stop["value"] == 10 and "last day with data 2026-02-18" in stop["reason"]
    none = got[("P_NONE", "no_data")]
    assert none["value"] == (AS_OF - START).days + 1
    low = got[("P_LOW", "low_adherence")]
    assert low["value"] == pytest.approx(100 / 6) and "weeks 2-3" in low["reason"]
    assert sources.row(0) == (90, 30)
    contact = got[("P_CONTACT", "contact")]
    assert contact["value"] == pytest.approx(25.0)  # 30 of 120 notifications
    assert "Polar" in contact["reason"] and "2026-02-27" in contact["reason"]


def test_sessions_table_marks_the_session_not_counted(flag_db: Path, tmp_path: Path) -> None:
    with actidose.open(flag_db) as study:
        text = write_participant_report(study, "P_CONTACT", tmp_path / "p.html").read_text()
        sessions = study.sessions("P_CONTACT")
    rows = Doc(text).tables["sessions"]
    counted = sessions["counted"].fill_null(True)
    assert sessions.height == 9 and int(counted.sum()) == 8  # 7 + the sync and its watch copy
    assert len(rows) == sessions.height
    assert [cls for cls, _ in rows] == ["counted" if c else "not-counted" for c in counted]
    assert [cells[-2].startswith("no") for _, cells in rows] == [not c for c in counted]


def test_flag_thresholds_are_parameters(flag_db: Path) -> None:
    assert ("P_STOP", "no_data") not in _flags(flag_db, no_data_days=11)
    assert ("P_STOP", "no_data") in _flags(flag_db, no_data_days=10)
    assert ("P_LOW", "low_adherence") not in _flags(flag_db, min_adherence_pct=16)
    assert ("P_STOP", "low_adherence") in _flags(flag_db, min_adherence_pct=51)
    assert ("P_CONTACT", "contact") not in _flags(flag_db, max_invalid_pct=26)
    # the sync is outside a 1-day window ending the day before it
    assert ("P_CONTACT", "contact") not in _flags(
        flag_db, sync_window_days=1, as_of=dt.date(2026, 2, 26)
    )
    # before anyone started: nothing to flag
    assert _flags(flag_db, as_of=dt.date(2026, 2, 1)) == set()
    # over the last complete week only (week 3: P_STOP did 1 of 3)
    assert ("P_STOP", "low_adherence") in _flags(flag_db, adherence_weeks=1)
    for bad in ({"no_data_days": 0}, {"min_adherence_pct": 120}, {"adherence_weeks": 0}):
        with pytest.raises(UsageError):
            FlagRules(**bad).validate()


@settings(max_examples=25, deadline=None)
@given(offset=st.integers(0, 30), n=st.integers(1, 20))
def test_no_data_flag_iff_gap_reaches_n(flag_db: Path, offset: int, n: int) -> None:
    """P_STOP's last day with data is Feb 18; their prescription runs to Mar 29."""
    as_of = dt.date(2026, 2, 18) + dt.timedelta(days=offset)
    flagged = ("P_STOP", "no_data") in _flags(flag_db, no_data_days=n, as_of=as_of)
    assert flagged == (offset >= n)


def test_battery_flag_from_a_live_sync(flag_db: Path, tmp_path: Path) -> None:
    """Live sync stores the lowest battery level of the session (ble_sync.battery_pct)."""
    with actidose.open(flag_db) as study:
        assert battery_stored(study)
        f = cohort_flags(study, as_of=AS_OF).filter(pl.col("flag") == "battery")
    assert f["participant_id"].to_list() == ["P_CONTACT"]
    assert f["value"].to_list() == [12.0] and "battery 12 %" in f["reason"][0]
    assert ("P_CONTACT", "battery") not in _flags(flag_db, min_battery_pct=10)
    # a database whose ble_sync predates the column: no battery flag, and no error
    copy = tmp_path / "old.duckdb"
    copy.write_bytes(flag_db.read_bytes())
    con = duckdb.connect(str(copy))
    try:
        con.execute("ALTER TABLE ble_sync DROP COLUMN battery_pct")
    finally:
        con.close()
    with actidose.open(copy) as study:
        assert not battery_stored(study)
        assert cohort_flags(study, as_of=AS_OF).filter(pl.col("flag") == "battery").height == 0


def test_cohort_report_lists_the_flags(flag_db: Path, tmp_path: Path) -> None:
    with actidose.open(flag_db) as study:
        text = write_cohort_report(study, tmp_path / "c.html", as_of=AS_OF).read_text()
        data = cohort_data(study, as_of=AS_OF)
    doc = Doc(text)
    rows = doc.rows("flags")
    assert [(r[0], r[2]) for r in rows] == [
        (r["participant_id"], r["flag"].replace("_", " ")) for r in data.flags.iter_rows(named=True)
    ]
    assert any(r[0] == "P_STOP" and "no data for 10 days" in r[3] for r in rows)
    assert "5 participant(s) flagged." in text
    assert_self_contained(doc)


def test_hostile_participant_id_is_escaped(flag_db: Path, tmp_path: Path) -> None:
    with actidose.open(flag_db) as study:
        texts = [
            write_participant_report(study, HOSTILE, tmp_path / "p.html").read_text(),
            write_cohort_report(study, tmp_path / "c.html", as_of=AS_OF).read_text(),
        ]
    for text in texts:
        doc = Doc(text)
        assert "script" not in doc.tags
        assert "<script" not in text.lower()
        assert "&lt;script&gt;" in text  # shown, as text
        assert HOSTILE in "".join(doc.text)  # and reads back as the id
        assert_self_contained(doc)
    assert Doc(texts[0]).sections == PARTICIPANT_SECTIONS


def test_participant_without_data_or_arm(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    con = connect(db)
    try:
        participants.add(con, participants.Participant("P9", "Europe/London"))
    finally:
        con.close()
    with actidose.open(db) as study:
        text = write_participant_report(study, "P9", tmp_path / "p.html").read_text()
        cohort = write_cohort_report(study, tmp_path / "c.html").read_text()
        with pytest.raises(UsageError, match="no participant 'P8'"):
            participant_data(study, "P8")
    doc = Doc(text)
    assert doc.sections == PARTICIPANT_SECTIONS
    assert "No sessions." in text and "No symptom ratings." in text
    assert "no data imported" in text  # its flag
    assert Doc(cohort).sections == COHORT_SECTIONS


# --------------------------------------------------------------------------- CLI
@pytest.fixture
def group() -> Iterator[click.Group]:
    @click.group()
    @click.option("--db")
    @click.pass_context
    def cli(ctx: click.Context, db: str | None) -> None:
        ctx.obj = SimpleNamespace(db=db)

    register(cli)
    register(cli)  # once only
    yield cli


def test_cli_report(group: click.Group, demo_db: Path, tmp_path: Path) -> None:
    assert list(group.commands) == ["report"]
    run = CliRunner().invoke
    out = tmp_path / "P002.html"
    r = run(group, ["--db", str(demo_db), "report", "P002", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"wrote {out}"
    assert "Participant P002" in out.read_text()
    out = tmp_path / "cohort.html"
    args = ["--db", str(demo_db), "report", "--cohort", "--out", str(out)]
    r = run(group, [*args, "--as-of", "2024-04-30", "--no-data-days", "3"])
    assert r.exit_code == 0, r.output
    rows = Doc(out.read_text()).rows("flags")
    # by 2024-04-30 nobody has had data for 16 days or more (the demo ends mid-April) ...
    assert {r[0] for r in rows if r[2] == "no data"} == set()
    # ... because their prescriptions ended on 2024-04-14: only gaps before that count
    r = run(group, [*args, "--no-data-days", "1", "--min-adherence", "0"])
    assert r.exit_code == 0, r.output
    ids = {r[0] for r in Doc(out.read_text()).rows("flags")}
    assert ids == {"P003", "P004", "P005", "P006"}  # last data before 2024-04-14


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--out", "x.html"], "exactly one"),
        (["report", "P001", "--cohort", "--out", "x.html"], "exactly one"),
        (["report", "NOPE", "--out", "x.html"], "no participant 'NOPE'"),
        (["report", "--cohort", "--out", "x.html", "--as-of", "14/04/2024"], "as-of"),
        (["report", "--cohort", "--out", "x.html", "--min-adherence", "150"], "min-adherence"),
    ],
)
def test_cli_report_errors(
    group: click.Group, demo_db: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    r = CliRunner().invoke(group, ["--db", str(demo_db), *args])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output


def test_cli_report_on_the_main_group_when_registered(demo_db: Path, tmp_path: Path) -> None:
    if "report" not in main.commands:
        pytest.skip("actidose report is not registered on the main group yet")
    out = tmp_path / "c.html"
    r = CliRunner().invoke(main, ["--db", str(demo_db), "report", "--cohort", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert Doc(out.read_text()).sections == COHORT_SECTIONS


def test_report_command_alone(demo_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "P001.html"
    r = CliRunner().invoke(
        report, ["P001", "--out", str(out)], obj=SimpleNamespace(db=str(demo_db))
    )
    assert r.exit_code == 0, r.output
    assert out.exists()


# --------------------------------------------------------------------------- README figure
def test_readme_figure(demo_db: Path, tmp_path: Path) -> None:
    png = write_readme_figure(demo_db, tmp_path / "pmc.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = write_readme_figure(demo_db, tmp_path / "pmc.svg").read_text()
    assert "P001 (aerobic)" in svg  # the first participant
    with pytest.raises(UsageError):
        write_readme_figure(demo_db, tmp_path / "pmc.gif")


def test_importing_the_report_does_not_import_matplotlib() -> None:
    import subprocess
    import sys

    code = (
        "import sys, actidose.report, actidose.report_cli; "
        "print('matplotlib' in sys.modules, 'actidose.plots' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_cli_without_matplotlib_says_how_to_get_it(
    group: click.Group, demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise UsageError("plotting needs matplotlib", fix="pip install 'actidose[plots]'")

    monkeypatch.setattr(plots, "require_matplotlib", missing)
    out = tmp_path / "c.html"
    r = CliRunner().invoke(group, ["--db", str(demo_db), "report", "--cohort", "--out", str(out)])
    assert r.exit_code == 2
    assert "pip install 'actidose[plots]'" in r.output and not out.exists()
