"""Heart-rate kernels: tiny hand-built inputs and hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from actidose.dose import (
    BANISTER_PRESETS,
    HRMAX_FORMULAS,
    INTENSITY_SCHEMES,
    banister_coefficients,
    banister_trimp,
    banister_trimp_avg_hr,
    edwards_trimp,
    hrmax_fox,
    hrmax_tanaka,
    hrmax_zone_edges,
    hrr_fraction,
    hrr_zone_edges,
    intensity_class,
    intensity_minutes,
    lucia_trimp,
    sample_durations,
    session_rpe,
    time_in_zones,
)

FAST = settings(max_examples=60, deadline=None)

# ---------------------------------------------------------------------------------------------
# sample_durations
# ---------------------------------------------------------------------------------------------


def test_sample_durations_caps_gaps_and_counts_them() -> None:
    d = sample_durations(np.array([0.0, 1.0, 2.0, 100.0, 101.0]), max_gap_s=60.0)
    # intervals 1, 1, 98, 1 -> median 1 for the last sample
    np.testing.assert_array_equal(d.dt_s, [1.0, 1.0, 60.0, 1.0, 1.0])
    assert d.n_gaps == 1
    assert d.gap_s == 38.0
    assert d.covered_s == 64.0


def test_sample_durations_last_hold_is_capped() -> None:
    d = sample_durations(np.array([0.0, 100.0, 200.0]), max_gap_s=60.0)
    np.testing.assert_array_equal(d.dt_s, [60.0, 60.0, 60.0])
    assert d.n_gaps == 3 and d.gap_s == 120.0


def test_sample_durations_lone_sample_and_empty() -> None:
    assert sample_durations(np.array([5.0])).dt_s.tolist() == [0.0]
    assert sample_durations(np.array([5.0]), last_hold_s=1.0).dt_s.tolist() == [1.0]
    assert sample_durations(np.array([5.0]), last_hold_s=90.0).dt_s.tolist() == [60.0]
    empty = sample_durations(np.array([]))
    assert empty.dt_s.size == 0 and empty.covered_s == 0.0


def test_sample_durations_explicit_last_hold_overrides_median() -> None:
    d = sample_durations(np.array([0.0, 1.0, 2.0]), last_hold_s=5.0)
    assert d.dt_s.tolist() == [1.0, 1.0, 5.0]


@pytest.mark.parametrize("ts", [[0.0, 2.0, 1.0], [0.0, np.nan], [[0.0, 1.0]]])
def test_sample_durations_rejects_bad_times(ts: list[float]) -> None:
    with pytest.raises(ValueError):
        sample_durations(np.array(ts))


@FAST
@given(
    st.lists(st.floats(0.0, 300.0), min_size=1, max_size=50),
    st.floats(1.0, 120.0),
)
def test_sample_durations_properties(steps: list[float], max_gap: float) -> None:
    ts = np.cumsum(steps)
    d = sample_durations(ts, max_gap_s=max_gap)
    assert np.all(d.dt_s <= max_gap) and np.all(d.dt_s >= 0)
    span = ts[-1] - ts[0]
    assert d.covered_s <= span + d.dt_s[-1] + 1e-9 * max(1.0, span)
    # covered + lost = span + the last hold before capping
    assert math.isclose(
        d.covered_s + d.gap_s,
        span + (np.median(np.diff(ts)) if ts.size > 1 else 0.0),
        rel_tol=1e-9,
        abs_tol=1e-9,
    )


# ---------------------------------------------------------------------------------------------
# HR reserve and Banister
# ---------------------------------------------------------------------------------------------


def test_hrr_fraction_clips_and_counts() -> None:
    x, n = hrr_fraction([50.0, 60.0, 125.0, 190.0, 200.0, np.nan], 60.0, 190.0)
    np.testing.assert_array_equal(x[:5], [0.0, 0.0, 0.5, 1.0, 1.0])
    assert np.isnan(x[5]) and n == 2


def test_hrr_fraction_per_sample_anchors() -> None:
    x, n = hrr_fraction([130.0, 130.0], [60.0, 70.0], [200.0, 190.0])
    np.testing.assert_allclose(x, [0.5, 0.5])
    assert n == 0
    with pytest.raises(ValueError):
        hrr_fraction([130.0], 190.0, 60.0)


def test_banister_presets() -> None:
    assert banister_coefficients("m") == (0.64, 1.92)
    assert banister_coefficients("f") == (0.86, 1.67)
    assert banister_coefficients("F", "goldencheetah") == (0.64, 1.67)
    assert banister_coefficients("m", "no_a") == (1.0, 1.92)
    assert set(BANISTER_PRESETS) >= {"banister", "goldencheetah", "no_a"}
    with pytest.raises(ValueError, match="sex"):
        banister_coefficients("x")
    with pytest.raises(ValueError, match="preset"):
        banister_coefficients("m", "nope")


def test_banister_nan_samples_count_and_contribute_zero() -> None:
    hr = np.array([120.0, np.nan, 150.0, 250.0])
    res = banister_trimp(hr, np.full(4, 60.0), 60.0, 190.0, a=0.64, b=1.92)
    assert res.n_nan == 1 and res.n_clipped == 1
    assert res.per_sample[1] == 0.0
    assert math.isclose(res.per_sample.sum(), res.value, rel_tol=1e-14)
    # one minute at HRmax (clipped) = 1 * 1 * 0.64 * e^1.92
    assert math.isclose(res.per_sample[3], 0.64 * math.exp(1.92), rel_tol=1e-14)


def test_banister_avg_hr_argument_rules() -> None:
    with pytest.raises(ValueError):
        banister_trimp_avg_hr(60, 150, 60, 190)
    with pytest.raises(ValueError):
        banister_trimp_avg_hr(60, 150, 60, 190, a=0.64)
    with pytest.raises(ValueError):
        banister_trimp_avg_hr(60, 150, 60, 190, a=0.64, b=1.92, sex="m")
    same = banister_trimp_avg_hr(60, 150, 60, 190, sex="f", preset="goldencheetah")
    assert same == banister_trimp_avg_hr(60, 150, 60, 190, a=0.64, b=1.67)


@FAST
@given(
    arrays(np.float64, st.integers(1, 40), elements=st.floats(30.0, 230.0)),
    st.floats(0.0, 40.0),
)
def test_banister_monotone_in_hr(hr: np.ndarray, bump: float) -> None:
    dt = np.full(hr.size, 5.0)
    lo = banister_trimp(hr, dt, 60.0, 190.0, a=0.64, b=1.92)
    hi = banister_trimp(hr + bump, dt, 60.0, 190.0, a=0.64, b=1.92)
    assert np.all(hi.per_sample >= lo.per_sample)
    assert hi.value >= lo.value


# ---------------------------------------------------------------------------------------------
# Edwards, Lucia, session RPE
# ---------------------------------------------------------------------------------------------


def test_edwards_lower_edges_inclusive() -> None:
    # exactly 50, 60, 70, 80, 90 % and just below 50 %, one minute each
    hr = np.array([99.0, 100.0, 120.0, 140.0, 160.0, 180.0, 210.0])
    res = edwards_trimp(hr, np.full(hr.size, 60.0), 200.0)
    np.testing.assert_array_equal(res.per_sample, [0, 1, 2, 3, 4, 5, 5])
    assert res.n_clipped == 1  # above HRmax, still weighted 5


def test_edwards_custom_zones_and_validation() -> None:
    res = edwards_trimp([150.0], [60.0], 200.0, edges=(0.5, 0.75), weights=(1.0, 3.0))
    assert res.value == 3.0
    with pytest.raises(ValueError):
        edwards_trimp([150.0], [60.0], 200.0, edges=(0.6, 0.5), weights=(1, 2))
    with pytest.raises(ValueError):
        edwards_trimp([150.0], [60.0], 200.0, edges=(0.5,), weights=(1, 2))


def test_lucia_boundaries_and_nan() -> None:
    res = lucia_trimp([159.0, 160.0, 179.0, 180.0, np.nan], np.full(5, 60.0), 160.0, 180.0)
    np.testing.assert_array_equal(res.per_sample, [1, 2, 2, 3, 0])
    assert res.n_nan == 1
    with pytest.raises(ValueError):
        lucia_trimp([150.0], [1.0], 180.0, 160.0)


def test_session_rpe() -> None:
    assert session_rpe(45, 0) == 0.0
    assert session_rpe(45, 10) == 450.0
    for bad in (-0.1, 10.5, float("nan")):
        with pytest.raises(ValueError):
            session_rpe(45, bad)
    with pytest.raises(ValueError):
        session_rpe(-1, 5)


def test_dt_shape_and_sign_checked() -> None:
    with pytest.raises(ValueError):
        banister_trimp([120.0, 130.0], [1.0], 60, 190, a=0.64, b=1.92)
    with pytest.raises(ValueError):
        lucia_trimp([120.0], [-1.0], 160, 180)


# ---------------------------------------------------------------------------------------------
# Zones and intensity
# ---------------------------------------------------------------------------------------------


def test_time_in_zones_has_below_and_above_zones() -> None:
    hr = np.array([90.0, 100.0, 119.0, 120.0, 150.0, np.nan])
    z = time_in_zones(hr, np.ones(6), [100.0, 120.0])
    np.testing.assert_array_equal(z, [1.0, 2.0, 2.0])  # NaN sample in no zone


def test_zone_edges() -> None:
    np.testing.assert_allclose(hrr_zone_edges(60.0, 190.0, (0.4, 0.6)), [112.0, 138.0])
    np.testing.assert_allclose(hrmax_zone_edges(200.0, (0.5, 0.6)), [100.0, 120.0])


def test_intensity_class_schemes() -> None:
    assert INTENSITY_SCHEMES == {"hrr": (0.40, 0.60), "hrmax": (0.64, 0.77)}
    # HRR 60..160: 40 % = 100 bpm, 60 % = 120 bpm
    hr = np.array([99.0, 100.0, 119.0, 120.0, np.nan])
    np.testing.assert_array_equal(intensity_class(hr, 60.0, 160.0), [0, 1, 1, 2, -1])
    # %HRmax 200: 64 % = 128, 77 % = 154
    hr2 = np.array([127.0, 128.0, 153.0, 154.0])
    got = intensity_class(hr2, None, 200.0, scheme="hrmax")
    np.testing.assert_array_equal(got, [0, 1, 1, 2])
    assert got.dtype == np.int8
    with pytest.raises(ValueError):
        intensity_class(hr, 60.0, 160.0, scheme="met")
    with pytest.raises(ValueError):
        intensity_class(hr, None, 160.0)


def test_intensity_minutes() -> None:
    hr = np.array([90.0, 110.0, 110.0, 130.0])
    mod, vig = intensity_minutes(hr, np.full(4, 60.0), 60.0, 160.0)
    assert (mod, vig) == (2.0, 1.0)


@FAST
@given(
    arrays(np.float64, st.integers(1, 50), elements=st.floats(30.0, 230.0) | st.just(np.nan)),
    st.sampled_from(sorted(INTENSITY_SCHEMES)),
)
def test_intensity_minutes_bounded_by_total(hr: np.ndarray, scheme: str) -> None:
    dt = np.full(hr.size, 7.0)
    mod, vig = intensity_minutes(hr, dt, 60.0, 190.0, scheme=scheme)
    assert mod >= 0.0 and vig >= 0.0
    assert mod + vig <= dt.sum() / 60.0 + 1e-12


def test_hrmax_formulas_vectorized() -> None:
    assert hrmax_tanaka(40) == pytest.approx(180.0)
    assert hrmax_fox(40) == 180.0
    np.testing.assert_allclose(hrmax_tanaka(np.array([20.0, 60.0])), [194.0, 166.0])
    np.testing.assert_allclose(HRMAX_FORMULAS["fox"](np.array([20, 60])), [200.0, 160.0])
    assert set(HRMAX_FORMULAS) == {"tanaka", "fox"}
