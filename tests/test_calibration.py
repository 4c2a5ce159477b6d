"""Autocalibration (van Hees 2014 / GGIR g.calibrate): still windows, sphere fit, acceptance."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.dose.calibration import (
    AxisStats,
    Calibration,
    apply_calibration,
    fit_calibration,
    still_windows,
    window_stats,
)

F64 = npt.NDArray[np.float64]
T0_US = 1_717_000_000_000_000 + 3_456_789  # not aligned to any window
# Injected sensor error: raw = true * GAIN + BIAS. GGIR's correction (raw + offset) * scale
# undoes it with offset = -BIAS, scale = 1 / GAIN.
GAIN = np.array([1.04, 0.97, 1.02])
BIAS = np.array([0.05, 0.0, -0.03])


def unit_vectors(rng: np.random.Generator, n: int, min_z: float = -1.0) -> F64:
    """Orientations of gravity uniform on the sphere (optionally only above ``min_z``)."""
    out = np.empty((0, 3))
    while out.shape[0] < n:
        v = rng.standard_normal((4 * n, 3))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out = np.concatenate([out, v[v[:, 2] > min_z]])
    return out[:n]


def still_recording(
    rng: np.random.Generator,
    orientations: F64,
    *,
    hold_s: float = 60.0,
    sf: float = 50.0,
    noise_g: float = 0.003,
    gain: F64 = GAIN,
    bias: F64 = BIAS,
) -> tuple[npt.NDArray[np.int64], F64]:
    """A device put down in each orientation for ``hold_s`` (instant turns), with sensor noise
    and the injected gain / bias error. Returns (ts_us, raw xyz in g)."""
    per = round(hold_s * sf)
    true = np.repeat(orientations, per, axis=0)
    true = true + rng.normal(0.0, noise_g, true.shape)
    raw = true * gain + bias
    ts = T0_US + np.round(np.arange(raw.shape[0]) * 1e6 / sf).astype(np.int64)
    return ts, raw


def features(ts: npt.NDArray[np.int64], xyz: F64) -> AxisStats:
    return window_stats(ts, xyz, window_s=10.0)[0].full


def test_recovers_injected_offset_and_scale() -> None:
    rng = np.random.default_rng(3)
    ts, raw = still_recording(rng, unit_vectors(rng, 60))
    f = features(ts, raw)
    still = still_windows(f)
    assert 0.6 * len(f) < still.sum() < len(f)  # windows straddling a turn are not still
    cal = fit_calibration(f.mean[still])
    assert cal.accepted, cal.reason
    np.testing.assert_allclose(cal.scale, 1.0 / GAIN, atol=1e-3)
    np.testing.assert_allclose(cal.offset, -BIAS, atol=1e-3)
    assert cal.error_before_g > 0.02
    assert cal.error_after_g < 0.001 < cal.error_before_g
    # The corrected still means lie on the unit sphere.
    fixed = apply_calibration(f.mean[still], cal)
    np.testing.assert_allclose(np.linalg.norm(fixed, axis=1), 1.0, atol=0.002)
    info = cal.info()
    assert info["calibration_accepted"] is True
    assert info["calibration_n_windows"] == int(still.sum())


def test_exact_sphere_points_recovered_exactly() -> None:
    rng = np.random.default_rng(5)
    true = unit_vectors(rng, 200)
    cal = fit_calibration(true * GAIN + BIAS)  # GGIR's stopping rule: residual change < 1e-10
    assert cal.accepted
    np.testing.assert_allclose(cal.scale, 1.0 / GAIN, atol=2e-4)
    np.testing.assert_allclose(cal.offset, -BIAS, atol=2e-4)
    tight = fit_calibration(true * GAIN + BIAS, tol=1e-18)
    np.testing.assert_allclose(tight.scale, 1.0 / GAIN, atol=1e-7)
    np.testing.assert_allclose(tight.offset, -BIAS, atol=1e-7)
    assert tight.n_iter > cal.n_iter


def test_refuses_when_orientations_do_not_cover_the_sphere() -> None:
    rng = np.random.default_rng(4)
    # Worn on a wrist that never points down: z never below +0.5 g.
    ts, raw = still_recording(rng, unit_vectors(rng, 60, min_z=0.5))
    f = features(ts, raw)
    cal = fit_calibration(f.mean[still_windows(f)])
    assert not cal.accepted
    assert "sphere" in cal.reason and "z" in cal.reason
    assert cal.is_identity
    assert cal.error_before_g > 0.02  # recorded even when refused
    assert np.isnan(cal.error_after_g)


def test_refuses_without_enough_still_windows() -> None:
    cal = fit_calibration(np.array([[0.0, 0.0, 1.0]] * 9))
    assert not cal.accepted and "not enough still" in cal.reason and cal.n_windows == 9
    assert fit_calibration(np.zeros((0, 3))).n_windows == 0


def test_refuses_when_the_error_stays_above_10_mg() -> None:
    # Errors an offset and scale cannot explain (each orientation off by +-30 mg in length).
    rng = np.random.default_rng(8)
    u = unit_vectors(rng, 300)
    m = u * (1.0 + rng.choice([-0.03, 0.03], size=(300, 1)))
    cal = fit_calibration(m)
    assert not cal.accepted and "not below 0.01" in cal.reason
    assert cal.is_identity
    assert cal.error_after_g > 0.01
    assert not np.allclose(cal.fitted_scale, 1.0, atol=0) or not np.allclose(cal.fitted_offset, 0)
    # GGIR's part 1 applies any fit that does not increase the error.
    lax = fit_calibration(m, max_error_g=np.inf)
    assert lax.accepted == (lax.error_after_g < lax.error_before_g)


def test_still_windows_criteria() -> None:
    n = np.array([500, 500, 500, 1, 500])
    mean = np.array([[0, 0, 1.0], [0, 0, 1.0], [2.5, 0, 0], [0, 0, 1.0], [0, 0, 1.0]])
    sd = np.array([[0.005] * 3, [0.005, 0.02, 0.005], [0.005] * 3, [0.0] * 3, [0.0129] * 3])
    s1 = mean * n[:, None]
    s2 = (sd**2) * (n[:, None] - 1) + s1**2 / n[:, None]
    stats = AxisStats(n, s1, s2, np.zeros((0, 3)), np.zeros((0, 3)))
    np.testing.assert_allclose(stats.sd[[0, 1, 2, 4]], sd[[0, 1, 2, 4]], rtol=1e-9)
    np.testing.assert_array_equal(still_windows(stats), [True, False, False, False, True])


def test_apply_in_place_and_float32() -> None:
    cal = Calibration(
        offset=np.array([0.1, 0.0, -0.1]),
        scale=np.array([2.0, 1.0, 0.5]),
        error_before_g=0.1,
        error_after_g=0.001,
        n_windows=10,
        accepted=True,
        reason="test",
    )
    x = np.array([[1.0, 1.0, 1.0]], dtype=np.float32)
    out = apply_calibration(x, cal, out=x)
    assert out is x and x.dtype == np.float32
    np.testing.assert_allclose(x, [[2.2, 1.0, 0.45]], rtol=1e-6)
    np.testing.assert_allclose(apply_calibration([[0.0, 0.0, 0.0]], cal), [[0.2, 0.0, -0.05]])


def test_affine_statistics_match_transformed_samples() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0.3, 0.2, (1000, 3))
    ts = T0_US + np.arange(1000, dtype=np.int64) * 20_000
    raw = window_stats(ts, x, minmax=True)[0].full
    o, s = np.array([0.1, -0.2, 0.05]), np.array([1.1, -0.9, 1.0])
    direct = window_stats(ts, (x + o) * s, minmax=True)[0].full
    mapped = raw.affine(o, s)
    for name in ("sum", "sumsq", "min", "max"):
        np.testing.assert_allclose(getattr(mapped, name), getattr(direct, name), rtol=1e-10)
    np.testing.assert_allclose(mapped.sd, direct.sd, rtol=1e-9)


def test_window_stats_grid_and_counts() -> None:
    ts = T0_US + np.arange(95, dtype=np.int64) * 100_000  # 9.5 s from an unaligned start
    x = np.arange(95 * 3, dtype=np.float64).reshape(95, 3)
    ws, _ = window_stats(ts, x, window_s=10.0, minmax=True, sub_step=3)
    first = T0_US // 10_000_000
    np.testing.assert_array_equal(ws.index, [first, first + 1])
    split = int(np.searchsorted(ts, (first + 1) * 10_000_000))
    np.testing.assert_array_equal(ws.full.n, [split, 95 - split])
    np.testing.assert_allclose(ws.full.sum[0], x[:split].sum(axis=0))
    np.testing.assert_allclose(ws.full.max[1], x[-1])
    assert ws.sub is not None
    c0 = len(range(0, split, 3))  # every third sample of the stream: positions 0, 3, ... 93
    np.testing.assert_array_equal(ws.sub.n, [c0, 32 - c0])
    np.testing.assert_allclose(ws.sub.sum[1], x[split + (-split) % 3 :: 3].sum(axis=0))


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 2999), max_size=12, unique=True).map(sorted),
    gap_at=st.integers(1, 2999),
    gap_s=st.sampled_from([0.0, 0.35, 7.0, 95.0]),
    step=st.integers(1, 7),
)
def test_window_stats_chunked_equals_whole(
    cuts: list[int], gap_at: int, gap_s: float, step: int
) -> None:
    rng = np.random.default_rng(len(cuts) + gap_at)
    n = 3000
    ts = T0_US + np.arange(n, dtype=np.int64) * 40_000  # 25 Hz
    ts[gap_at:] += round(gap_s * 1e6)
    x = rng.normal(0.0, 0.3, (n, 3)).astype(np.float32)
    whole, _ = window_stats(ts, x, minmax=True, sub_step=step)
    parts = []
    state = None
    edges = [0, *cuts, n]
    for a, b in itertools.pairwise(edges):
        ws, state = window_stats(
            ts[a:b], x[a:b], minmax=True, sub_step=step, state=state, final=False
        )
        parts.append(ws)
    ws, _ = window_stats(ts[:0], x[:0], minmax=True, sub_step=step, state=state, final=True)
    parts.append(ws)
    got = type(whole).concat(parts, whole.window_us)
    np.testing.assert_array_equal(got.index, whole.index)
    assert got.sub is not None and whole.sub is not None
    for a_, b_ in ((got.full, whole.full), (got.sub, whole.sub)):
        np.testing.assert_array_equal(a_.n, b_.n)
        np.testing.assert_array_equal(a_.min, b_.min)
        np.testing.assert_array_equal(a_.max, b_.max)
        np.testing.assert_allclose(a_.sum, b_.sum, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a_.sumsq, b_.sumsq, rtol=1e-12, atol=1e-12)
    assert int(got.full.n.sum()) == n


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        window_stats(np.zeros(3, np.int64), np.zeros((3, 2)))
    with pytest.raises(ValueError):
        fit_calibration(np.zeros((5, 2)))
