"""The adherence kernels (actidose.dose.adherence): band time, qualifying sessions, the
prescribed TRIMP and per-week adherence from a start date."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.dose.adherence import (
    WeeklyAdherence,
    band_seconds,
    in_band,
    prescribed_session_trimp,
    session_qualifies,
    weekly_adherence,
)

START = np.datetime64("2026-03-02", "D")  # a Monday; weeks must not care


def days(*offsets: int) -> np.ndarray:
    """Days ``START + offset`` (offset 0 is day 1 of the prescription)."""
    return START + np.asarray(offsets, dtype=np.int64).astype("timedelta64[D]")


def run(
    offsets: list[int],
    *,
    weeks: int = 2,
    qualifies: list[bool] | None = None,
    band: list[float] | None = None,
    trimp: list[float] | None = None,
    observed: list[int] | None = None,
    spw: float = 3.0,
    band_week: float | None = None,
    trimp_week: float | None = None,
) -> WeeklyAdherence:
    n = len(offsets)
    obs = offsets if observed is None else observed
    return weekly_adherence(
        START,
        weeks,
        days(*offsets),
        [True] * n if qualifies is None else qualifies,
        [30.0] * n if band is None else band,
        [50.0] * n if trimp is None else trimp,
        days(*obs),
        np.ones(len(obs), bool),
        sessions_per_week=spw,
        band_min_per_week=band_week,
        trimp_per_week=trimp_week,
    )


# ------------------------------------------------------------------------ weekly adherence
def test_two_of_three_sessions_in_week_one_is_66_7_percent() -> None:
    w = run([0, 3], weeks=1)
    assert w.sessions_done.tolist() == [2]
    assert w.adherence_pct[0] == pytest.approx(66.7, abs=0.05)
    assert round(float(w.adherence_pct[0]), 1) == 66.7
    assert w.summary.adherence_pct == pytest.approx(200 / 3)


def test_four_of_three_is_capped_at_100() -> None:
    w = run([0, 1, 2, 3], weeks=2)
    assert w.sessions_done.tolist() == [4, 0]
    assert w.adherence_pct.tolist() == [100.0, 0.0]
    assert w.summary.weeks_met == 1
    # Over the whole prescription: 4 of 6 sessions, the fourth counts there.
    assert w.summary.adherence_pct == pytest.approx(400 / 6)
    assert w.summary.weekly_mean_pct == pytest.approx(50.0)


def test_summary_caps_at_100() -> None:
    w = run([0, 0, 1, 2, 3, 3, 4, 5, 6, 6, 7], weeks=1)  # the last is in week 2: ignored
    assert w.summary.adherence_pct == 100.0
    assert w.summary.sessions_done == 10


def test_day_7_in_week_1_and_day_8_in_week_2() -> None:
    # Day 7 is START + 6 (the last day of week 1), day 8 is START + 7.
    w = run([6, 7], weeks=2)
    assert w.sessions_any.tolist() == [1, 1]
    assert w.week.tolist() == [1, 2]
    assert w.week_start.tolist() == [START.item(), (START + 7).item()]
    assert w.week_end.tolist() == [(START + 6).item(), (START + 13).item()]


def test_weeks_are_blocks_from_the_start_date_not_iso_weeks() -> None:
    start = np.datetime64("2026-03-05", "D")  # a Thursday
    sess = np.array(["2026-03-08", "2026-03-11", "2026-03-12"], dtype="datetime64[D]")
    w = weekly_adherence(
        start,
        2,
        sess,
        [True] * 3,
        [0.0] * 3,
        [0.0] * 3,
        sess,
        [True] * 3,
        sessions_per_week=3,
        band_min_per_week=None,
        trimp_per_week=None,
    )
    # Sunday 8th and Wednesday 11th are in week 1 (5th-11th); Thursday 12th starts week 2.
    assert w.sessions_any.tolist() == [2, 1]


def test_unobserved_week_has_days_observed_zero() -> None:
    w = run([0, 2], weeks=3, observed=[0, 1, 2, 3, 16])
    assert w.days_observed.tolist() == [4, 0, 1]
    assert w.summary.weeks_with_data == 2


def test_days_observed_counts_only_observed_flags_and_each_day_once() -> None:
    obs = days(0, 0, 1, 2, 8)
    w = weekly_adherence(
        START,
        2,
        days(),
        [],
        [],
        [],
        obs,
        [True, True, False, True, False],
        sessions_per_week=3,
        band_min_per_week=None,
        trimp_per_week=None,
    )
    assert w.days_observed.tolist() == [2, 0]


def test_sessions_outside_the_prescription_are_ignored() -> None:
    w = run([-1, 0, 13, 14, 40], weeks=2)
    assert w.sessions_any.tolist() == [1, 1]
    assert w.summary.sessions_any == 2
    assert w.summary.end_day == START + 13
    assert w.summary.start_day == START


def test_only_qualifying_sessions_are_done() -> None:
    w = run([0, 1, 2, 8], qualifies=[True, False, True, False])
    assert w.sessions_done.tolist() == [2, 0]
    assert w.sessions_any.tolist() == [3, 1]
    assert w.adherence_pct[0] == pytest.approx(200 / 3)


def test_band_minutes_and_trimp_against_prescribed() -> None:
    w = run(
        [0, 1, 8],
        band=[30.0, 20.0, 45.0],
        trimp=[60.0, 40.0, 50.0],
        band_week=90.0,
        trimp_week=200.0,
    )
    assert w.band_min.tolist() == [50.0, 45.0]
    assert w.band_min_prescribed.tolist() == [90.0, 90.0]
    assert w.trimp_banister.tolist() == [100.0, 50.0]
    assert w.trimp_prescribed.tolist() == [200.0, 200.0]
    assert w.trimp_pct.tolist() == [50.0, 25.0]
    s = w.summary
    assert (s.band_min, s.band_min_prescribed) == (95.0, 180.0)
    assert (s.trimp_banister, s.trimp_prescribed) == (150.0, 400.0)
    assert s.trimp_pct == pytest.approx(37.5)


def test_trimp_sums_are_nan_aware() -> None:
    nan = float("nan")
    w = run([0, 1, 8], weeks=3, trimp=[nan, 10.0, nan], trimp_week=100.0)
    # Week 1: one known value; week 2: only unknown; week 3: no session (zero, not unknown).
    assert w.trimp_banister[0] == 10.0
    assert math.isnan(w.trimp_banister[1])
    assert w.trimp_banister[2] == 0.0
    assert math.isnan(w.trimp_pct[1]) and w.trimp_pct[2] == 0.0
    assert w.summary.trimp_banister == 10.0
    all_nan = run([0], weeks=1, trimp=[nan], trimp_week=100.0).summary
    assert math.isnan(all_nan.trimp_banister) and math.isnan(all_nan.trimp_pct)


def test_nothing_prescribed_gives_nan_columns() -> None:
    w = run([0], weeks=1)
    assert math.isnan(w.band_min_prescribed[0]) and math.isnan(w.trimp_prescribed[0])
    assert math.isnan(w.trimp_pct[0])
    assert math.isnan(w.summary.trimp_prescribed) and math.isnan(w.summary.band_min_prescribed)


def test_no_sessions_at_all() -> None:
    w = run([], weeks=2, observed=[])
    assert w.adherence_pct.tolist() == [0.0, 0.0]
    assert w.sessions_done.dtype == np.int64 and w.sessions_done.tolist() == [0, 0]
    assert w.summary.adherence_pct == 0.0 and w.summary.weeks_with_data == 0
    assert w.summary.trimp_banister == 0.0


def test_fractional_sessions_per_week() -> None:
    w = run([0, 7, 8], weeks=2, spw=1.5)
    assert w.sessions_prescribed.tolist() == [1.5, 1.5]
    assert w.adherence_pct[0] == pytest.approx(100 / 1.5)
    assert w.adherence_pct[1] == 100.0
    assert w.summary.weeks_met == 1
    assert w.summary.sessions_prescribed == 3.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weeks": 0}, "weeks"),
        ({"spw": 0.0}, "sessions_per_week"),
    ],
)
def test_bad_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run([0], **kwargs)  # type: ignore[arg-type]


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="same length"):
        weekly_adherence(
            START,
            1,
            days(0, 1),
            [True],
            [1.0, 1.0],
            [1.0, 1.0],
            days(),
            [],
            sessions_per_week=3,
            band_min_per_week=None,
            trimp_per_week=None,
        )
    with pytest.raises(ValueError, match="obs_days"):
        weekly_adherence(
            START,
            1,
            days(),
            [],
            [],
            [],
            days(0),
            [True, False],
            sessions_per_week=3,
            band_min_per_week=None,
            trimp_per_week=None,
        )


offsets_st = st.lists(st.integers(-10, 80), max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    offsets=offsets_st,
    weeks=st.integers(1, 10),
    spw=st.sampled_from([1.0, 2.0, 2.5, 3.0, 5.0]),
    shift=st.integers(-400, 400),
    seed=st.integers(0, 2**16),
)
def test_invariants(offsets: list[int], weeks: int, spw: float, shift: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = len(offsets)
    qual = rng.random(n) < 0.7
    trimp = rng.random(n) * 100
    w = run(offsets, weeks=weeks, qualifies=qual.tolist(), trimp=trimp.tolist(), spw=spw)
    inside = [(0 <= o < 7 * weeks) for o in offsets]
    assert int(w.sessions_any.sum()) == sum(inside)
    assert int(w.sessions_done.sum()) == int(np.sum(qual[inside]))
    assert np.all(w.sessions_done <= w.sessions_any)
    assert np.all((w.adherence_pct >= 0) & (w.adherence_pct <= 100))
    np.testing.assert_allclose(w.adherence_pct, 100 * np.minimum(w.sessions_done / spw, 1))
    # The whole-prescription reading credits catch-up sessions; the weekly mean cannot.
    assert w.summary.weekly_mean_pct <= w.summary.adherence_pct + 1e-9
    assert 0 <= w.summary.adherence_pct <= 100
    assert w.summary.trimp_banister == pytest.approx(float(np.sum(trimp[inside])))
    # Shifting the start date and every session together changes nothing; nor does order.
    perm = rng.permutation(n)
    moved = weekly_adherence(
        START + shift,
        weeks,
        days(*offsets)[perm] + np.timedelta64(shift, "D"),
        qual[perm],
        np.full(n, 30.0),
        trimp[perm],
        days(*offsets)[perm] + np.timedelta64(shift, "D"),
        np.ones(n, bool),
        sessions_per_week=spw,
        band_min_per_week=None,
        trimp_per_week=None,
    )
    assert moved.sessions_done.tolist() == w.sessions_done.tolist()
    assert moved.days_observed.tolist() == w.days_observed.tolist()
    np.testing.assert_allclose(moved.trimp_banister, w.trimp_banister)
    assert (moved.week_start - w.week_start).astype(int).tolist() == [shift] * weeks


# ------------------------------------------------------------------------ band time
def test_band_seconds_hrr_edges_are_included() -> None:
    # rest 60, max 190: 60 % HRR = 138 bpm, 80 % = 164 bpm.
    bpm = np.array([137.0, 138.0, 150.0, 164.0, 165.0, np.nan])
    dt = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    got = band_seconds(bpm, dt, 60.0, 190.0, scheme="hrr", low=0.6, high=0.8)
    assert got.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0, 0.0]


def test_band_seconds_hrmax_ignores_rest() -> None:
    bpm = np.array([120.0, 130.0, 171.0, 172.0])
    got = band_seconds(bpm, np.ones(4), None, 200.0, scheme="hrmax", low=0.64, high=0.855)
    assert got.tolist() == [0.0, 1.0, 1.0, 0.0]
    same = band_seconds(bpm, np.ones(4), np.nan, 200.0, scheme="hrmax", low=0.64, high=0.855)
    assert same.tolist() == got.tolist()


def test_band_seconds_hrr_is_not_clipped() -> None:
    # Above HRmax the HRR fraction exceeds 1: in a band reaching 1.1, not in one ending at 1.
    bpm = np.array([200.0])
    assert band_seconds(bpm, [1.0], 60.0, 190.0, scheme="hrr", low=0.9, high=1.1)[0] == 1.0
    assert band_seconds(bpm, [1.0], 60.0, 190.0, scheme="hrr", low=0.5, high=1.0)[0] == 0.0


def test_band_seconds_per_sample_anchors_and_nan() -> None:
    bpm = np.array([150.0, 150.0, 150.0, 150.0])
    rest = np.array([60.0, 100.0, np.nan, 60.0])
    mx = np.array([190.0, 190.0, 190.0, np.nan])
    got = band_seconds(bpm, np.full(4, 10.0), rest, mx, scheme="hrr", low=0.6, high=0.8)
    assert got[0] == 10.0  # x = 0.69
    assert got[1] == 0.0  # x = 0.56
    assert math.isnan(got[2]) and math.isnan(got[3])
    hrmax = band_seconds(bpm, np.full(4, 10.0), rest, mx, scheme="hrmax", low=0.7, high=0.8)
    assert hrmax[:3].tolist() == [10.0, 10.0, 10.0] and math.isnan(hrmax[3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scheme": "zones"}, "scheme"),
        ({"low": 0.8, "high": 0.6}, "low < high"),
        ({"low": 0.0}, "low < high"),
        ({"high": None}, "both edges"),
    ],
)
def test_band_seconds_rejects_bad_bands(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"scheme": "hrr", "low": 0.6, "high": 0.8, **kwargs}
    with pytest.raises(ValueError, match=message):
        band_seconds([150.0], [1.0], 60.0, 190.0, **args)  # type: ignore[arg-type]


def test_band_seconds_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="same shape"):
        band_seconds([150.0, 151.0], [1.0], 60.0, 190.0, scheme="hrr", low=0.6, high=0.8)
    with pytest.raises(ValueError, match="dt_s"):
        band_seconds([150.0], [-1.0], 60.0, 190.0, scheme="hrr", low=0.6, high=0.8)
    with pytest.raises(ValueError, match="greater"):
        band_seconds([150.0], [1.0], 190.0, 180.0, scheme="hrr", low=0.6, high=0.8)


@settings(max_examples=60, deadline=None)
@given(
    bpm=st.lists(st.floats(30, 220), min_size=1, max_size=50),
    low=st.floats(0.3, 0.7),
    width=st.floats(0.05, 0.4),
    wider=st.floats(0.0, 0.2),
)
def test_band_seconds_invariants(bpm: list[float], low: float, width: float, wider: float) -> None:
    h = np.asarray(bpm)
    dt = np.linspace(0.5, 5.0, h.size)
    narrow = band_seconds(h, dt, 55.0, 185.0, scheme="hrr", low=low, high=low + width)
    broad = band_seconds(h, dt, 55.0, 185.0, scheme="hrr", low=low, high=low + width + wider)
    assert np.all((narrow == 0) | (narrow == dt))
    assert np.all(broad >= narrow)  # a wider band never holds less time
    # Agrees with in_band sample by sample.
    mask = in_band(h, 55.0, 185.0, scheme="hrr", low=low, high=low + width)
    assert np.array_equal(narrow > 0, mask & (dt > 0))


def test_in_band() -> None:
    got = in_band(
        [137.0, 138.0, 164.0, 170.0, np.nan], 60.0, 190.0, scheme="hrr", low=0.6, high=0.8
    )
    assert got.tolist() == [False, True, True, False, False]
    assert in_band([150.0], np.nan, 190.0, scheme="hrr", low=0.6, high=0.8).tolist() == [False]
    assert in_band([150.0], None, 190.0, scheme="hrr", low=0.6, high=0.8).tolist() == [False]
    assert in_band([150.0], None, 200.0, scheme="hrmax", low=0.7, high=0.8).tolist() == [True]
    assert in_band(150.0, 60.0, 190.0, scheme="hrr", low=0.6, high=0.8).shape == ()


# ------------------------------------------------------------------------ qualifying sessions
def test_session_qualifies_rules() -> None:
    dur = [30.0, 29.9, 45.0, 45.0, np.nan]
    band = [5.0, 30.0, 30.0, np.nan, 40.0]
    mean_ok = [True, True, False, True, True]
    q = {
        rule: session_qualifies(dur, band, mean_ok, rule=rule, min_session_min=30).tolist()
        for rule in ("duration", "band_minutes", "duration_in_band")
    }
    assert q["duration"] == [True, False, True, True, False]
    assert q["band_minutes"] == [False, True, True, False, True]
    assert q["duration_in_band"] == [True, False, False, True, False]
    with pytest.raises(ValueError, match="qualify rule"):
        session_qualifies(dur, band, mean_ok, rule="any", min_session_min=30)


# ------------------------------------------------------------------------ prescribed TRIMP
def test_prescribed_session_trimp_is_the_band_midpoint() -> None:
    a, b = 0.86, 1.67
    expected = 30 * 0.7 * a * math.exp(b * 0.7)
    assert prescribed_session_trimp(30, 0.6, 0.8, a, b) == pytest.approx(expected, rel=1e-12)
    # Equal to the Banister TRIMP of 30 minutes held at the midpoint HR (rest 60, max 190).
    from actidose.dose.hr import banister_trimp

    hr_mid = 60 + 0.7 * 130
    held = banister_trimp(np.full(1800, hr_mid), np.ones(1800), 60.0, 190.0, a=a, b=b).value
    assert prescribed_session_trimp(30, 0.6, 0.8, a, b) == pytest.approx(held, rel=1e-9)
    assert prescribed_session_trimp(0, 0.6, 0.8, a, b) == 0.0
    assert math.isnan(prescribed_session_trimp(30, None, 0.8, a, b))
    assert math.isnan(prescribed_session_trimp(30, 0.6, 0.8, float("nan"), b))


def test_imports_only_numpy_and_the_standard_library() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "for name in ('duckdb', 'polars', 'pyarrow'):\n"
        "    sys.modules[name] = None\n"
        "import actidose.dose.adherence\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('actidose.storage', "
        "'actidose.ingest', 'actidose.devices')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""
