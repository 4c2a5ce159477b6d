"""Acceleration kernels: ENMO/MAD epochs, intensity levels, GGIR bouts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from actidose.dose import (
    LEVEL_NAMES,
    THRESHOLD_SETS,
    classify_levels,
    enmo,
    epoch_enmo_mad,
    ggir_bouts,
    vector_magnitude,
)

FAST = settings(max_examples=60, deadline=None)


def test_vector_magnitude_and_enmo() -> None:
    np.testing.assert_allclose(vector_magnitude([3.0], [4.0], [12.0]), [13.0])
    assert np.isnan(enmo([np.nan], [0.0], [1.0])).all()


def test_epoch_drops_and_counts_trailing_samples() -> None:
    n = 2 * 50 + 7
    x = np.zeros(n)
    z = np.ones(n)
    z[:50] = 1.5  # first epoch: ENMO 0.5, MAD 0
    res = epoch_enmo_mad(x, x, z, sf_hz=10.0, epoch_s=5.0)
    assert res.samples_per_epoch == 50 and res.n_dropped_samples == 7
    np.testing.assert_allclose(res.enmo_g, [0.5, 0.0])
    np.testing.assert_allclose(res.mad_g, [0.0, 0.0])


def test_epoch_truncates_per_sample_before_mean() -> None:
    z = np.array([1.2, 0.8])  # per-sample ENMO 0.2, 0 -> mean 0.1 (not max(mean(r) - 1, 0) = 0)
    res = epoch_enmo_mad(np.zeros(2), np.zeros(2), z, sf_hz=2.0, epoch_s=1.0)
    np.testing.assert_allclose(res.enmo_g, [0.1])
    np.testing.assert_allclose(res.mad_g, [0.2])


def test_epoch_needs_whole_samples() -> None:
    with pytest.raises(ValueError):
        epoch_enmo_mad(np.zeros(10), np.zeros(10), np.ones(10), sf_hz=30.0, epoch_s=0.05)


def test_classify_levels_names_and_nan() -> None:
    assert LEVEL_NAMES == ("IN", "LIG", "MOD", "VIG")
    assert THRESHOLD_SETS["hildebrand_wrist_geneactiv"] == (45.8, 93.2, 418.3)
    got = classify_levels([45.8, 45.7, np.nan], THRESHOLD_SETS["hildebrand_wrist_geneactiv"])
    np.testing.assert_array_equal(got, [1, 0, -1])
    assert got.dtype == np.int8
    with pytest.raises(ValueError):
        classify_levels([1.0], (100.0, 50.0))


@FAST
@given(arrays(np.float64, st.integers(1, 50), elements=st.floats(0.0, 2000.0)))
def test_classify_levels_monotone(values: np.ndarray) -> None:
    order = np.argsort(values, kind="stable")
    levels = classify_levels(values[order])
    assert np.all(np.diff(levels.astype(int)) >= 0)
    assert levels.min() >= 0 and levels.max() <= 3


def _runs(*spec: tuple[int, int]) -> np.ndarray:
    return np.concatenate([np.full(n, bool(v)) for v, n in spec])


def test_bout_break_of_one_minute_bridged_longer_never() -> None:
    # 60 s epochs, 10-min bouts at 80 %: a 1-epoch break is bridged, a 2-epoch break is not
    one = _runs((0, 5), (1, 5), (0, 1), (1, 5), (0, 5))
    assert ggir_bouts(one, 60.0, bout_min=10).sum() == 11
    two = _runs((0, 5), (1, 5), (0, 2), (1, 5), (0, 5))
    assert not ggir_bouts(two, 60.0, bout_min=10).any()
    # at 5 s epochs the same with 12-epoch (1 min) vs 13-epoch breaks, 95 % criterion
    ok = _runs((0, 60), (1, 114), (0, 12), (1, 114), (0, 60))
    assert ggir_bouts(ok, 5.0, bout_min=20, criterion=0.95).sum() == 240
    bad = _runs((0, 60), (1, 114), (0, 13), (1, 114), (0, 60))
    assert not ggir_bouts(bad, 5.0, bout_min=20, criterion=0.9).any()


def test_bout_edges_and_validation() -> None:
    assert not ggir_bouts(np.ones(5, bool), 60.0, bout_min=10).any()  # shorter than a bout
    assert ggir_bouts(np.ones(10, bool), 60.0, bout_min=10).all()  # exactly one bout
    with pytest.raises(ValueError):
        ggir_bouts(np.ones(10, bool), 7.0, bout_min=10)  # 600 / 7 is not whole
    with pytest.raises(ValueError):
        ggir_bouts(np.ones(10, bool), 60.0, criterion=0.0)


@FAST
@given(arrays(np.bool_, st.integers(0, 300)), st.sampled_from([5.0, 15.0, 30.0, 60.0]))
def test_bouts_are_long_enough_and_start_and_end_above(above: np.ndarray, epoch_s: float) -> None:
    flags = ggir_bouts(above, epoch_s, bout_min=5, criterion=0.8)
    w = round(5 * 60 / epoch_s)
    edges = np.diff(np.concatenate(([0], flags.astype(int), [0])))
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        assert stop - start >= w
        assert above[start] and above[stop - 1]
