"""The charts of ``actidose.plots``, each read back from its artists and compared with the
``Study`` frame it drew."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("matplotlib")

from matplotlib import dates as mdates
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

import actidose
from actidose import plots
from actidose.api import Study
from actidose.errors import UsageError
from actidose.plots._mpl import new_figure, style

from .conftest import demo_study

CODES = {"unobserved": 0, "partial": 1, "observed": 2}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Study]:
    db = demo_study(tmp_path_factory.mktemp("plots"), "--participants", "4", "--weeks", "3")
    with actidose.open(db) as s:
        yield s


def one(fig: Figure, gid: str) -> Any:
    found = plots.find(fig, gid)
    assert len(found) == 1, (gid, found)
    return found[0]


def num(days: Any) -> np.ndarray:
    return np.asarray(mdates.date2num(np.asarray(days, "datetime64[D]")), float)


def f64(frame: pl.DataFrame, col: str) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in frame[col].to_list()])


def no_data(fig: Figure) -> bool:
    texts = plots.find(fig, "no_data")
    return len(texts) == 1 and texts[0].get_text() == "no data"


# ------------------------------------------------------------------------------------ pmc
def test_pmc_draws_the_load_series_and_the_counted_sessions(study: Study) -> None:
    load = study.load_series("P001")
    sessions = study.sessions("P001")
    fig = plots.pmc(load, sessions, title="P001")
    for col in ("ctl", "atl", "tsb"):
        line = one(fig, col)
        assert isinstance(line, Line2D)
        np.testing.assert_array_equal(
            np.asarray(line.get_xdata(), "datetime64[D]"), load["day"].to_numpy()
        )
        np.testing.assert_allclose(np.asarray(line.get_ydata(), float), f64(load, col))
    counted = sessions.filter(pl.col("counted"))
    dots = one(fig, "sessions")
    assert isinstance(dots, PathCollection)
    offsets = np.asarray(dots.get_offsets())
    assert offsets.shape == (counted.height, 2)
    np.testing.assert_allclose(offsets[:, 0], num(counted["day"].to_numpy()))
    np.testing.assert_allclose(offsets[:, 1], f64(counted, "dose_trimp_banister"))
    # each unobserved day is shaded, nothing else
    shade = one(fig, "unobserved")
    assert isinstance(shade, PolyCollection)
    covered: set[float] = set()
    for path in shade.get_paths():
        x = path.vertices[:, 0]
        covered |= set(np.arange(x.min() + 0.5, x.max(), 1.0).round(6))
    unobserved = load.filter(pl.col("day_status") == "unobserved")["day"].to_numpy()
    assert unobserved.size > 0  # the demo's P001 misses days
    assert covered == set(num(unobserved).round(6))
    assert plots.find(fig, "partial") == []
    ax = one(fig, "ctl").axes
    assert ax.get_ylabel() == "training load (TRIMP/day)"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["fitness (CTL)", "fatigue (ATL)", "form (TSB), right axis"]
    assert "no data (unobserved day)" in labels
    assert one(fig, "tsb").axes is not ax  # the twin axis


def _load(days: int, ctl: list[float | None], status: list[str]) -> pl.DataFrame:
    d = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(days)]
    return pl.DataFrame(
        {
            "participant_id": ["X"] * days,
            "day": d,
            "load": [1.0] * days,
            "ctl": ctl,
            "atl": [2.0] * days,
            "tsb": [None] + [-1.0] * (days - 1),
            "day_status": status,
        },
        schema_overrides={"ctl": pl.Float64, "tsb": pl.Float64},
    )


def test_pmc_nulls_are_gaps_runs_merge_and_only_counted_sessions_show() -> None:
    load = _load(
        6,
        [None, 1.0, 2.0, None, 3.0, 4.0],
        ["observed", "unobserved", "unobserved", "partial", "observed", "unobserved"],
    )
    sessions = pl.DataFrame(
        {
            "participant_id": ["X", "X", "X", "X"],
            "day": [dt.date(2024, 1, d) for d in (2, 3, 5, 6)],
            "counted": [True, False, None, True],
            "trimp_banister": [10.0, 99.0, 30.0, None],
            "dose_trimp_banister": [12.0, 99.0, None, None],
        }
    )
    fig = plots.pmc(load, sessions)
    ctl = np.asarray(one(fig, "ctl").get_ydata(), float)
    np.testing.assert_array_equal(np.isnan(ctl), [True, False, False, True, False, False])
    assert np.isnan(np.asarray(one(fig, "tsb").get_ydata(), float)[0])
    runs = sorted(
        (p.vertices[:, 0].min(), p.vertices[:, 0].max()) for p in one(fig, "unobserved").get_paths()
    )
    jan2 = num([np.datetime64("2024-01-02")])[0]
    assert runs == [(jan2 - 0.5, jan2 + 1.5), (jan2 + 3.5, jan2 + 4.5)]
    (partial,) = one(fig, "partial").get_paths()
    assert partial.vertices[:, 0].min() == jan2 + 1.5
    # the uncounted session is left out; NULL dose TRIMP falls back to the session's own
    np.testing.assert_allclose(
        np.asarray(one(fig, "sessions").get_offsets()), [[jan2, 12.0], [jan2 + 3, 30.0]]
    )
    np.testing.assert_allclose(
        np.asarray(one(fig, "sessions_no_hr").get_offsets()), [[jan2 + 4, 0.0]]
    )


# ------------------------------------------------------------------------------------ weekly
def test_weekly_bars_are_who_equivalent_minutes_with_the_lines(study: Study) -> None:
    frame = study.weekly_dose("P001")
    fig = plots.weekly(frame, prescription_min=90.0, prescription_trimp=174.0, title="P001")
    weeks = frame["week_start"].to_numpy()
    mod = plots.find(fig, "moderate:", prefix=True)
    vig = plots.find(fig, "vigorous:", prefix=True)
    assert [p.get_gid() for p in mod] == [f"moderate:{w}" for w in weeks.astype("datetime64[D]")]
    assert all(isinstance(p, Rectangle) for p in mod + vig)
    np.testing.assert_allclose([p.get_height() for p in mod], f64(frame, "mod_min"))
    np.testing.assert_allclose([p.get_height() for p in vig], 2.0 * f64(frame, "vig_min"))
    np.testing.assert_allclose([p.get_y() for p in vig], f64(frame, "mod_min"))
    np.testing.assert_allclose(
        [p.get_y() + p.get_height() for p in vig], f64(frame, "who_equiv_min"), rtol=1e-9
    )
    np.testing.assert_allclose([p.get_x() for p in mod], num(weeks))  # week_start .. +6 days
    np.testing.assert_allclose([p.get_width() for p in mod], 6.0)
    incomplete = (frame["days_observed"] < frame["days"]).to_list()
    assert any(incomplete)
    assert [bool(p.get_hatch()) for p in mod] == incomplete
    assert [p.get_alpha() == 0.45 for p in vig] == incomplete
    assert np.asarray(one(fig, "who").get_ydata(), float)[0] == 150.0
    assert np.asarray(one(fig, "prescription_min").get_ydata(), float)[0] == 90.0
    trimp_line = one(fig, "trimp")
    assert np.asarray(one(fig, "prescription_trimp").get_ydata(), float)[0] == 174.0
    assert one(fig, "prescription_trimp").axes is trimp_line.axes
    np.testing.assert_allclose(
        np.asarray(trimp_line.get_ydata(), float), f64(frame, "trimp_banister")
    )
    np.testing.assert_allclose(np.asarray(trimp_line.get_xdata(), float), num(weeks) + 3.0)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "vigorous \u00d7 2" in labels and "WHO 150 min/week" in labels
    assert "moderate + 2 \u00d7 vigorous" in mod[0].axes.get_ylabel()


def test_weekly_reads_the_vigorous_weight_back_and_keeps_nulls() -> None:
    frame = pl.DataFrame(
        {
            "participant_id": ["X"] * 3,
            "week_start": [dt.date(2024, 1, 1), dt.date(2024, 1, 8), dt.date(2024, 1, 15)],
            "days": [7, 7, 7],
            "days_observed": [7, 7, 7],
            "mod_min": [10.0, None, 20.0],
            "vig_min": [5.0, None, 0.0],
            "who_equiv_min": [25.0, None, 20.0],  # vigorous weight 3
            "trimp_banister": [50.0, None, 40.0],
        }
    )
    fig = plots.weekly(frame)
    heights = [p.get_height() for p in plots.find(fig, "vigorous:", prefix=True)]
    np.testing.assert_allclose(heights, [15.0, np.nan, 0.0])
    assert plots.find(fig, "prescription_min") == []
    assert "vigorous \u00d7 3" in [t.get_text() for t in fig.legends[0].get_texts()]


# ------------------------------------------------------------------------------------ coverage
def test_coverage_calendar_cells_are_the_days(study: Study) -> None:
    frame = study.daily_load("P001")
    fig = plots.coverage(frame, title="P001")
    im = one(fig, "day_status")
    assert isinstance(im, AxesImage)
    arr = im.get_array()
    alpha = np.asarray(im.get_alpha())
    days = frame["day"].to_list()
    monday = days[0] - dt.timedelta(days=days[0].weekday())
    assert arr.shape == (7, (days[-1] - monday).days // 7 + 1)
    cov = f64(frame, "coverage_min")
    for day, status, c in zip(days, frame["day_status"].to_list(), cov, strict=True):
        row, col = day.weekday(), (day - monday).days // 7
        assert arr[row, col] == CODES[status]
        want = 1.0 if status == "unobserved" or np.isnan(c) else 0.3 + 0.7 * min(c / 1440, 1.0)
        assert alpha[row, col] == pytest.approx(want)
    assert int(np.ma.count(arr)) == frame.height  # every other cell is blank
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["observed", "partial", "unobserved"]
    assert "coverage_min" in legend.get_title().get_text()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.integers(0, 60), st.sampled_from(list(CODES)), min_size=1, max_size=40))
def test_coverage_calendar_places_any_set_of_days(days: dict[int, str]) -> None:
    base = dt.date(2023, 12, 27)
    offsets = sorted(days)
    frame = pl.DataFrame(
        {
            "day": [base + dt.timedelta(days=o) for o in offsets],
            "day_status": [days[o] for o in offsets],
            "coverage_min": [float(o * 30) for o in offsets],
        }
    )
    arr = one(plots.coverage(frame), "day_status").get_array()
    assert int(np.ma.count(arr)) == len(days)
    got = sorted(np.asarray(arr[~np.ma.getmaskarray(arr)]).tolist())
    assert got == sorted(CODES[s] for s in days.values())


# ------------------------------------------------------------------------------------ symptoms
def test_symptoms_one_line_per_instrument_with_bands(study: Study) -> None:
    scores = study.symptom_scores("P001")
    fig = plots.symptoms(scores)
    for name in ("mood", "phq9"):
        part = scores.filter(pl.col("instrument") == name)
        line = one(fig, f"score:{name}")
        np.testing.assert_array_equal(
            np.asarray(line.get_xdata(), "datetime64[D]"), part["day"].to_numpy()
        )
        np.testing.assert_allclose(np.asarray(line.get_ydata(), float), f64(part, "score"))
    bands = {a.get_gid(): a.get_ydata()[0] for a in plots.find(fig, "band:", prefix=True)}
    assert bands == {
        "band:phq9:mild": 5.0,
        "band:phq9:moderate": 10.0,
        "band:phq9:moderately severe": 15.0,
        "band:phq9:severe": 20.0,
    }
    only = plots.symptoms(scores, instrument="PHQ-9")
    assert plots.find(only, "score:mood") == [] and plots.find(only, "score:phq9")


def test_symptoms_bands_are_left_out_when_the_database_defines_them_differently() -> None:
    frame = pl.DataFrame(
        {
            "participant_id": ["X", "X"],
            "instrument": ["phq9", "phq9"],
            "ts": [dt.datetime(2024, 1, 1, 9), dt.datetime(2024, 1, 8, 9)],
            "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 8)],
            "score": [12.0, None],
            "band": ["high", None],
        }
    )
    fig = plots.symptoms(frame)
    assert plots.find(fig, "band:", prefix=True) == []
    np.testing.assert_array_equal(np.isnan(one(fig, "score:phq9").get_ydata()), [False, True])


def test_same_xlim_lines_up_pmc_weekly_and_symptoms(study: Study) -> None:
    xlim = (dt.date(2024, 3, 4), dt.date(2024, 3, 24))
    want = (num([xlim[0]])[0] - 0.5, num([xlim[1]])[0] + 0.5)
    a = one(plots.pmc(study.load_series("P002"), xlim=xlim), "ctl").axes
    b = one(plots.symptoms(study.symptom_scores("P002"), xlim=xlim), "score:mood").axes
    c = plots.find(plots.weekly(study.weekly_dose("P002"), xlim=xlim), "moderate:", prefix=True)
    for ax in (a, b, c[0].axes):
        assert ax.get_xlim() == pytest.approx(want)


def test_pmc_and_symptoms_draw_into_given_axes(study: Study) -> None:
    with style():
        fig = new_figure((7.0, 5.0))
        top, bottom = fig.subplots(2, 1, sharex=True)
    assert plots.pmc(study.load_series("P001"), ax=top) is fig
    assert plots.symptoms(study.symptom_scores("P001"), ax=bottom) is fig
    assert one(fig, "ctl").axes is top
    assert one(fig, "score:mood").axes is bottom and one(fig, "score:phq9").axes is bottom
    assert plots.find(fig, "band:", prefix=True) == []  # two scales on one axis: no bands


# ------------------------------------------------------------------------------------ cohort
def test_adherence_heatmap_cells_are_adherence_pct_grouped_by_arm(study: Study) -> None:
    frame = study.adherence()
    fig = plots.adherence_heatmap(frame, title="adherence")
    im = one(fig, "adherence")
    rows = [t.get_text() for t in im.axes.get_yticklabels()]
    arm = dict(study.participants().select("participant_id", "arm").iter_rows())
    assert rows == sorted(arm, key=lambda p: (arm[p], p))
    arr = im.get_array()
    for pid, week, pct in frame.select("participant_id", "week", "adherence_pct").iter_rows():
        assert arr[rows.index(pid), week - 1] == pytest.approx(pct)
    assert {a.get_gid() for a in plots.find(fig, "arm:", prefix=True)} == {
        "arm:aerobic",
        "arm:stretching",
    }


def test_adherence_heatmap_missing_weeks_are_grey() -> None:
    frame = pl.DataFrame(
        {
            "participant_id": ["B", "A", "A"],
            "week": [1, 1, 3],
            "adherence_pct": [50.0, 100.0, 0.0],
        }
    )
    im = one(plots.adherence_heatmap(frame), "adherence")
    arr = im.get_array()
    assert [t.get_text() for t in im.axes.get_yticklabels()] == ["A", "B"]
    np.testing.assert_array_equal(np.ma.getmaskarray(arr), [[0, 1, 0], [0, 1, 1]])
    assert arr[0, 0] == 100.0 and arr[0, 2] == 0.0 and arr[1, 0] == 50.0
    assert im.get_cmap().get_bad()[:3] == pytest.approx((0xDD / 255,) * 3)


def test_cohort_coverage_cells_are_day_status(study: Study) -> None:
    frame = study.daily_load()
    im = one(plots.cohort_coverage(frame), "day_status")
    rows = [t.get_text() for t in im.axes.get_yticklabels()]
    assert rows == sorted(set(frame["participant_id"].to_list()))
    arr = im.get_array()
    first = frame["day"].min()
    assert isinstance(first, dt.date)
    for pid, day, status in frame.select("participant_id", "day", "day_status").iter_rows():
        assert arr[rows.index(pid), (day - first).days] == CODES[status]
    assert int(np.ma.count(arr)) == frame.height
    x0, x1, _, _ = im.get_extent()
    assert x0 == num([first])[0] - 0.5
    assert (x1 - x0) == arr.shape[1]


# ------------------------------------------------------------------------------------ edges
def test_empty_frames_and_all_null_columns_give_no_data(study: Study) -> None:
    empty = {
        name: getattr(study, name)("nobody")
        for name in ("load_series", "weekly_dose", "daily_load", "symptom_scores", "adherence")
    }
    figs = [
        plots.pmc(empty["load_series"], empty["load_series"]),
        plots.weekly(empty["weekly_dose"]),
        plots.coverage(empty["daily_load"]),
        plots.symptoms(empty["symptom_scores"]),
        plots.adherence_heatmap(empty["adherence"]),
        plots.cohort_coverage(empty["daily_load"]),
        plots.pmc(
            _load(3, [None, None, None], ["unobserved"] * 3).with_columns(
                pl.lit(None, pl.Float64).alias("atl"), pl.lit(None, pl.Float64).alias("tsb")
            )
        ),
        plots.weekly(
            study.weekly_dose("P001").with_columns(
                pl.lit(None, pl.Float64).alias(c) for c in ("mod_min", "vig_min", "trimp_banister")
            )
        ),
        plots.symptoms(study.symptom_scores("P001"), instrument="gad7"),
    ]
    assert all(no_data(f) for f in figs)
    assert all(plots.to_svg(f).startswith("<svg") for f in figs[:2])


@pytest.mark.parametrize(
    ("chart", "method"),
    [
        (plots.pmc, "load_series"),
        (plots.weekly, "weekly_dose"),
        (plots.coverage, "daily_load"),
        (plots.symptoms, "symptom_scores"),
    ],
)
def test_several_participants_where_one_is_drawn_is_a_usage_error(
    study: Study, chart: Any, method: str
) -> None:
    with pytest.raises(UsageError, match="draws one participant; the frame has 4"):
        chart(getattr(study, method)())


# ------------------------------------------------------------------------------------ output
def test_to_svg_is_inlinable_deterministic_and_fetches_nothing(study: Study) -> None:
    load, sessions = study.load_series("P001"), study.sessions("P001")
    fig = plots.pmc(load, sessions)
    svg = plots.to_svg(fig)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<metadata" not in svg
    assert plots.to_svg(fig) == svg  # the same figure twice
    assert plots.to_svg(plots.pmc(load, sessions)) == svg  # the same input again
    assert "<text" in svg and 'id="ctl"' in svg  # text stays text; gids are ids
    import re

    urls = set(re.findall(r"https?://[^\s\"'<>)]+", svg))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert not re.search(r"(?:href|src)=\"(?!data:|#)", svg)


def test_save_formats_from_the_suffix_same_bytes_each_time(study: Study, tmp_path: Path) -> None:
    magic = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}
    for suffix, head in magic.items():
        a = plots.save(plots.weekly(study.weekly_dose("P002")), tmp_path / f"a{suffix}")
        b = plots.save(plots.weekly(study.weekly_dose("P002")), tmp_path / f"B{suffix.upper()}")
        assert a == tmp_path / f"a{suffix}"
        assert a.read_bytes().startswith(head)
        assert a.read_bytes() == b.read_bytes()
    with pytest.raises(UsageError, match=r"unknown figure format '\.jpg'") as err:
        plots.save(plots.coverage(study.daily_load("P002")), tmp_path / "x.jpg")
    assert err.value.fix is not None and ".png, .svg or .pdf" in err.value.fix
    assert not (tmp_path / "x.jpg").exists()


def test_png_is_sized_for_a_paper(study: Study, tmp_path: Path) -> None:
    from matplotlib import image

    out = plots.save(plots.pmc(study.load_series("P001")), tmp_path / "p.png")
    h, w = image.imread(out).shape[:2]
    assert 1800 <= w <= 2250 and 900 <= h <= 1150  # ~7 x 3.5 in at 300 dpi


def test_require_matplotlib_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    plots.require_matplotlib()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError, match="matplotlib") as err:
        plots.require_matplotlib()
    assert err.value.fix == "pip install 'actidose[plots]'"
    with pytest.raises(UsageError):
        plots.pmc(_load(2, [1.0, 2.0], ["observed"] * 2))


def test_importing_actidose_and_the_cli_does_not_import_matplotlib() -> None:
    code = (
        "import sys, actidose, actidose.cli, actidose.plots, actidose.plot_cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
