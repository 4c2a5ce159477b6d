"""Load-over-days kernels: daily sums, PMC, ACWR, Foster, ISO weeks; chunked == whole."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from actidose.dose import (
    AcwrState,
    PMCState,
    acwr_ewma,
    acwr_rolling,
    daily_sum,
    foster_rolling,
    foster_week,
    iso_week_start,
    pmc,
)

FAST = settings(max_examples=60, deadline=None)

loads = arrays(np.float64, st.integers(1, 120), elements=st.floats(0.0, 1000.0))


def _split(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    points = sorted({0, n, *(c % (n + 1) for c in cuts)})
    return list(itertools.pairwise(points))


# ---------------------------------------------------------------------------------------------
# daily_sum
# ---------------------------------------------------------------------------------------------


def test_daily_sum_bins_and_ignores_nan() -> None:
    out = daily_sum(np.array([0, 2, 2, 0, 3]), np.array([1.0, 2.0, np.nan, 4.0, 5.0]), 5)
    np.testing.assert_array_equal(out, [5.0, 0.0, 2.0, 5.0, 0.0])


@pytest.mark.parametrize("idx", [[-1], [5], [1.5]])
def test_daily_sum_rejects_bad_index(idx: list[float]) -> None:
    with pytest.raises(ValueError):
        daily_sum(np.array(idx), np.array([1.0]), 5)


@FAST
@given(st.data())
def test_daily_sum_total(data: st.DataObject) -> None:
    n_days = data.draw(st.integers(1, 30))
    n = data.draw(st.integers(0, 200))
    idx = data.draw(arrays(np.int64, n, elements=st.integers(0, n_days - 1)))
    vals = data.draw(arrays(np.float64, n, elements=st.floats(-1e3, 1e3)))
    out = daily_sum(idx, vals, n_days)
    assert out.shape == (n_days,)
    assert math.isclose(out.sum(), vals.sum(), rel_tol=1e-9, abs_tol=1e-6)


# ---------------------------------------------------------------------------------------------
# PMC
# ---------------------------------------------------------------------------------------------


def test_pmc_tsb_is_yesterdays_form() -> None:
    load = np.array([100.0, 0.0, 50.0])
    r = pmc(load, state=PMCState(ctl=10.0, atl=30.0))
    assert r.tsb[0] == -20.0
    np.testing.assert_array_equal(r.tsb[1:], r.ctl[:-1] - r.atl[:-1])
    assert r.state == PMCState(ctl=float(r.ctl[-1]), atl=float(r.atl[-1]))


def test_pmc_forms() -> None:
    r = pmc(np.array([100.0]), form="inverse")
    assert math.isclose(r.ctl[0], 100.0 / 42.0, rel_tol=1e-15)
    assert math.isclose(r.atl[0], 100.0 / 7.0, rel_tol=1e-15)
    with pytest.raises(ValueError):
        pmc(np.array([1.0]), form="linear")
    with pytest.raises(ValueError):
        pmc(np.array([np.nan]))


def test_pmc_rest_days_decay() -> None:
    r = pmc(np.array([0.0, 0.0]), state=PMCState(ctl=50.0, atl=50.0))
    assert math.isclose(r.ctl[1], 50.0 * math.exp(-2 / 42), rel_tol=1e-13)


def test_pmc_empty_keeps_state() -> None:
    s = PMCState(1.0, 2.0)
    r = pmc(np.array([]), state=s)
    assert r.ctl.size == 0 and r.state == s


@FAST
@given(loads, st.lists(st.integers(0, 200), max_size=5), st.sampled_from(["exp", "inverse"]))
def test_pmc_chunked_equals_whole(load: np.ndarray, cuts: list[int], form: str) -> None:
    whole = pmc(load, form=form)
    state = None
    parts = []
    for a, b in _split(load.size, cuts):
        r = pmc(load[a:b], form=form, state=state)
        parts.append(r)
        state = r.state
    for name in ("ctl", "atl", "tsb"):
        got = np.concatenate([getattr(p, name) for p in parts])
        np.testing.assert_allclose(got, getattr(whole, name), rtol=1e-12, atol=1e-12)
    # Equal to rounding: the recursion is evaluated in blocks, and a cut moves the blocks.
    assert state is not None
    assert state.ctl == pytest.approx(whole.state.ctl, rel=1e-12, abs=1e-12)
    assert state.atl == pytest.approx(whole.state.atl, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# ACWR
# ---------------------------------------------------------------------------------------------


def test_acwr_ewma_seeded_with_first_day() -> None:
    ratio, acute, chronic, state = acwr_ewma(np.array([40.0, 40.0, 80.0]))
    assert acute[0] == chronic[0] == 40.0 and ratio[0] == 1.0
    assert math.isclose(acute[2], 40.0 + 0.25 * 40.0)
    assert math.isclose(chronic[2], 40.0 + 2 / 29 * 40.0)
    assert state == AcwrState(float(acute[-1]), float(chronic[-1]))


def test_acwr_ewma_nan_where_chronic_zero() -> None:
    ratio, *_ = acwr_ewma(np.array([0.0, 0.0, 10.0]))
    assert np.isnan(ratio[:2]).all() and ratio[2] > 1


@FAST
@given(loads, st.lists(st.integers(0, 200), max_size=5))
def test_acwr_ewma_chunked_equals_whole(load: np.ndarray, cuts: list[int]) -> None:
    whole = acwr_ewma(load)
    state = None
    acute, chronic, ratio = [], [], []
    for a, b in _split(load.size, cuts):
        r = acwr_ewma(load[a:b], state=state)
        acute.append(r.acute)
        chronic.append(r.chronic)
        ratio.append(r.ratio)
        state = r.state
    np.testing.assert_allclose(np.concatenate(acute), whole.acute, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.concatenate(chronic), whole.chronic, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.concatenate(ratio), whole.ratio, rtol=1e-12, equal_nan=True)


def test_acwr_rolling_windows() -> None:
    load = np.arange(1.0, 36.0)  # day t has load t+1
    coupled = acwr_rolling(load)
    uncoupled = acwr_rolling(load, coupled=False)
    assert np.isnan(coupled[:27]).all() and not np.isnan(coupled[27:]).any()
    t = 30
    acute = load[t - 6 : t + 1].mean()
    assert math.isclose(coupled[t], acute / load[t - 27 : t + 1].mean(), rel_tol=1e-14)
    assert math.isclose(uncoupled[t], acute / load[t - 27 : t - 6].mean(), rel_tol=1e-14)
    assert np.isnan(acwr_rolling(np.zeros(30))).all()
    assert np.isnan(acwr_rolling(np.ones(10))).all()
    with pytest.raises(ValueError):
        acwr_rolling(load, acute_days=28, chronic_days=28)


# ---------------------------------------------------------------------------------------------
# Foster
# ---------------------------------------------------------------------------------------------


def test_foster_constant_week_is_nan_not_inf() -> None:
    r = foster_week([0.1] * 7)
    assert math.isclose(r.weekly_load, 0.7) and math.isnan(r.monotony) and math.isnan(r.strain)
    with pytest.raises(ValueError):
        foster_week([1.0] * 6)


def test_foster_rolling_matches_week() -> None:
    load = np.array([940.0, 50.0, 1120.0, 570.0, 50.0, 390.0, 280.0, 0.0, 300.0])
    mono, strain = foster_rolling(load)
    assert np.isnan(mono[:6]).all()
    for end in (6, 7, 8):
        wk = foster_week(load[end - 6 : end + 1])
        assert math.isclose(mono[end], wk.monotony, rel_tol=1e-14)
        assert math.isclose(strain[end], wk.strain, rel_tol=1e-14)
    mono1, _ = foster_rolling(load, ddof=1)
    assert math.isclose(mono1[6], foster_week(load[:7], ddof=1).monotony, rel_tol=1e-14)


# ---------------------------------------------------------------------------------------------
# ISO weeks
# ---------------------------------------------------------------------------------------------


def test_iso_week_start() -> None:
    days = np.array(
        ["2024-01-01", "2024-01-07", "2024-01-08", "2021-01-03", "1969-12-31", "NaT"],
        dtype="datetime64[D]",
    )
    got = iso_week_start(days)
    want = np.array(
        ["2024-01-01", "2024-01-01", "2024-01-08", "2020-12-28", "1969-12-29", "NaT"],
        dtype="datetime64[D]",
    )
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.dtype("datetime64[D]")


@FAST
@given(st.integers(-50_000, 50_000))
def test_iso_week_start_is_monday_within_week(n: int) -> None:
    day = np.array([n], dtype="datetime64[D]")
    start = iso_week_start(day)[0]
    assert 0 <= (day[0] - start).astype(int) < 7
    assert start.astype(object).isoweekday() == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 500, allow_nan=False), min_size=0, max_size=400),
    st.floats(0.001, 0.999),
    st.floats(0, 300, allow_nan=False),
)
def test_blocked_ewma_equals_scipy_lfilter(xs: list[float], k: float, y0: float) -> None:
    """The blocked recursion against the textbook IIR filter (scipy's lfilter, test-only)."""
    from scipy.signal import lfilter

    from actidose.dose.load import _ewma

    x = np.asarray(xs, dtype=np.float64)
    got, last = _ewma(x, k, y0)
    if x.size == 0:
        assert got.size == 0 and last == y0
        return
    want, _ = lfilter([k], [1.0, -(1.0 - k)], x, zi=[(1.0 - k) * y0])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    assert last == pytest.approx(float(want[-1]), rel=1e-12, abs=1e-9)
