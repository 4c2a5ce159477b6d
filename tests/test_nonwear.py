"""Non-wear detection (GGIR 2023 and 2013 rules): the window logic on built block statistics, and
the acceptance cases on synthetic wrist recordings: a 3-hour still period is found (only its
blocks, one block of tolerance at each edge) and an active day with an 8-hour night of sleep
(postures held 10-40 min, small twitches) gives no non-wear."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest

from actidose.dose.accel_process import AccelResult, process
from actidose.dose.calibration import AxisStats
from actidose.dose.nonwear import NONWEAR_RULES, nonwear_blocks
from actidose.recording import AccelChunk, AccelStream

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
SF = 25.0
BLOCK_US = 900_000_000
DAY_START_US = 1_717_225_200_000_000  # 2024-06-01 07:00:00 UTC
HOUR = 3600.0


# ---------------------------------------------------------------------------------------------
# Synthetic wrist data (vectorised; deterministic per seed)
# ---------------------------------------------------------------------------------------------


def _rotate(v: F64, axis: F64, angle: float) -> F64:
    """Rodrigues rotation of unit vector ``v`` about unit ``axis``."""
    c, s = np.cos(angle), np.sin(angle)
    return v * c + np.cross(axis, v) * s + axis * np.dot(axis, v) * (1 - c)


def _unit(rng: np.random.Generator) -> F64:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def wrist_awake(rng: np.random.Generator, dur_s: float, sf: float = SF) -> F64:
    """Awake wrist: the forearm's orientation wanders (random walk of two angles, faster or
    slower by the minute), walking bouts (~1.9 Hz, 0.2-0.5 g) about a quarter of the time,
    sensor noise 5 mg."""
    n = round(dur_s * sf)
    k = int(dur_s) + 2
    pace = np.repeat(rng.choice([1.0, 3.0, 10.0], size=k // 60 + 1, p=[0.4, 0.4, 0.2]), 60)[:k]
    steps = rng.normal(0.0, 1.0, (k, 2)) * np.deg2rad(pace)[:, None]
    ang = np.cumsum(steps, axis=0) + rng.uniform(0, 2 * np.pi, 2)
    t = np.arange(n) / sf
    th = np.interp(t, np.arange(k), ang[:, 0])
    ph = np.interp(t, np.arange(k), ang[:, 1])
    xyz = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=1)
    walking = np.repeat(rng.random(k // 120 + 1) < 0.25, round(120 * sf))[:n]
    amp = np.repeat(rng.uniform(0.2, 0.5, k // 120 + 1), round(120 * sf))[:n]
    xyz += (walking * amp * np.sin(2 * np.pi * 1.9 * t))[:, None] * _unit(rng)
    return xyz + rng.normal(0.0, 0.005, xyz.shape)


def wrist_sleep(rng: np.random.Generator, dur_s: float, sf: float = SF) -> F64:
    """Sleeping wrist: postures held 10-40 min with 3-s turns of 20-120 degrees between them,
    twitches (1.5 s, 0.03-0.15 g) every 2-10 min, sensor noise 3 mg. No hour passes without a
    posture change, so GGIR does not flag sleep as non-wear."""
    n = round(dur_s * sf)
    xyz = np.empty((n, 3))
    g = _unit(rng)
    i = 0
    turn = round(3 * sf)
    while i < n:
        hold = round(rng.uniform(10, 40) * 60 * sf)
        xyz[i : i + hold] = g
        i += hold
        new = _rotate(g, _unit(rng), np.deg2rad(rng.uniform(20, 120)))
        w = np.linspace(0, 1, turn)[:, None]
        seg = (1 - w) * g + w * new
        seg /= np.linalg.norm(seg, axis=1, keepdims=True)
        m = min(turn, n - i)
        xyz[i : i + m] = seg[:m]
        i += m
        g = new
    bump = round(1.5 * sf)
    shape = np.hanning(bump)
    t = 0.0
    while True:
        t += rng.uniform(120, 600)
        j = round(t * sf)
        if j + bump > n:
            break
        xyz[j : j + bump] += shape[:, None] * rng.uniform(0.03, 0.15) * _unit(rng)
    return xyz + rng.normal(0.0, 0.003, xyz.shape)


def on_table(rng: np.random.Generator, dur_s: float, sf: float = SF) -> F64:
    """Device lying on a table: fixed orientation, sensor noise 2 mg."""
    g = np.array([0.03, -0.06, 0.997])
    g /= np.linalg.norm(g)
    return g + rng.normal(0.0, 0.002, (round(dur_s * sf), 3))


def ts_of(n: int, start_us: int = DAY_START_US, sf: float = SF) -> I64:
    return start_us + np.round(np.arange(n) * 1e6 / sf).astype(np.int64)


@cache
def active_day(seed: int = 11) -> F64:
    """07:00-23:00 awake, 23:00-07:00 asleep (24 h at 25 Hz)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([wrist_awake(rng, 16 * HOUR), wrist_sleep(rng, 8 * HOUR)])


def day_with_still_period(start_h: float, dur_h: float, seed: int = 11) -> F64:
    xyz = active_day(seed).copy()
    a, b = round(start_h * HOUR * SF), round((start_h + dur_h) * HOUR * SF)
    xyz[a:b] = on_table(np.random.default_rng(seed + 1), (b - a) / SF)
    return xyz


def stream_of(
    ts: I64, xyz: F64, chunk: int = 400_000, range_g: float | None = 8.0, nominal_hz: float = SF
) -> AccelStream:
    raw = xyz.astype(np.float32)

    def chunks() -> Iterator[AccelChunk]:
        for i in range(0, ts.shape[0], chunk):
            yield AccelChunk(ts[i : i + chunk], raw[i : i + chunk])

    return AccelStream(nominal_hz, chunks, range_g=range_g, n_samples=ts.shape[0])


def run(xyz: F64, rule: str = "ggir2023", **kw: object) -> AccelResult:
    return process(stream_of(ts_of(xyz.shape[0]), xyz), nonwear_rule=rule, **kw)


# ---------------------------------------------------------------------------------------------
# Acceptance: synthetic recordings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", NONWEAR_RULES)
def test_no_false_nonwear_in_an_active_day_with_sleep(rule: str) -> None:
    res = run(active_day(), rule)
    nw = res.nonwear_detail
    assert res.info["nonwear_rule"] == rule
    assert nw.nonwear.shape[0] == 96  # 24 h of 15-min blocks from 07:00
    assert not nw.nonwear.any(), np.flatnonzero(nw.nonwear)
    assert not res.nonwear.any()
    # The night really is quiet: mostly inactive epochs, while the day is not.
    night = res.start_us >= DAY_START_US + int(16 * HOUR * 1e6)
    assert np.mean(res.level[night] == 0) > 0.95
    assert np.mean(res.level[~night] >= 1) > 0.1
    assert res.enmo_mg[~night].mean() > 5 * res.enmo_mg[night].mean()


def _expected_blocks(start_h: float, dur_h: float) -> tuple[set[int], set[int]]:
    """Blocks (index from 07:00) wholly inside the still period, and those touching it."""
    a_us, b_us = start_h * HOUR * 1e6, (start_h + dur_h) * HOUR * 1e6
    inside = {k for k in range(96) if k * BLOCK_US >= a_us and (k + 1) * BLOCK_US <= b_us}
    touching = {k for k in range(96) if (k + 1) * BLOCK_US > a_us and k * BLOCK_US < b_us}
    return inside, touching


@pytest.mark.parametrize("start_h", [3.0, 3.1234])  # block-aligned and not
def test_finds_a_three_hour_still_period(start_h: float) -> None:
    res = run(day_with_still_period(start_h, 3.0))
    flagged = set(np.flatnonzero(res.nonwear_detail.nonwear).tolist())
    inside, touching = _expected_blocks(start_h, 3.0)
    lo, hi = min(touching), max(touching)
    assert flagged <= set(range(lo - 1, hi + 2)), sorted(flagged)  # nothing elsewhere
    assert flagged >= {k for k in inside if min(inside) < k < max(inside)}
    assert len(flagged) >= len(inside) - 2
    # Epochs follow their block.
    blk = (res.start_us - DAY_START_US) // BLOCK_US
    np.testing.assert_array_equal(res.nonwear, np.isin(blk, sorted(flagged)))
    assert res.info["nonwear_epochs"] == int(res.nonwear.sum())


def test_2023_rule_flags_exactly_the_still_blocks() -> None:
    res = run(day_with_still_period(3.1234, 3.0))
    inside, _ = _expected_blocks(3.1234, 3.0)
    assert set(np.flatnonzero(res.nonwear_detail.nonwear).tolist()) == inside


def test_2013_rule_loses_the_edges_of_a_still_period() -> None:
    # The centred hour must fit in the still period: about 1.5 blocks lost at each edge.
    res = run(day_with_still_period(3.0, 3.0), "ggir2013")
    flagged = set(np.flatnonzero(res.nonwear_detail.nonwear).tolist())
    inside, _ = _expected_blocks(3.0, 3.0)
    assert flagged <= inside
    assert flagged == set(sorted(inside)[2:-2])


def test_still_period_after_calibration_and_clipping_free() -> None:
    res = run(day_with_still_period(20.0, 3.0))  # during the night
    assert res.info["n_clipped"] == 0
    inside, _ = _expected_blocks(20.0, 3.0)
    assert set(np.flatnonzero(res.nonwear_detail.nonwear).tolist()) == inside


# ---------------------------------------------------------------------------------------------
# The window logic on built half-block statistics
# ---------------------------------------------------------------------------------------------

N_HALF = 450 * 5  # samples of a 7.5-min half-block at 5 Hz


def half_blocks(still: npt.ArrayLike) -> AxisStats:
    """Half-block statistics; ``still[i, k]`` True gives axis k SD 2 mg / range 10 mg there,
    False SD 100 mg / range 600 mg."""
    s = np.asarray(still, bool)
    if s.ndim == 1:
        s = np.repeat(s[:, None], 3, axis=1)
    n = np.full(s.shape[0], N_HALF, np.int64)
    sd = np.where(s, 0.002, 0.1)
    half_range = np.where(s, 0.005, 0.3)
    mean = np.tile([0.0, 0.0, 1.0], (s.shape[0], 1))
    s1 = mean * N_HALF
    s2 = sd**2 * (N_HALF - 1) + s1**2 / N_HALF
    return AxisStats(n, s1, s2, mean - half_range, mean + half_range)


def blocks(still_blocks: list[bool] | npt.NDArray[np.bool_], rule: str) -> npt.NDArray[np.int8]:
    half = half_blocks(np.repeat(np.asarray(still_blocks, bool), 2, axis=0))
    return nonwear_blocks(half, 0, rule=rule, sample_rate_hz=5.0).score


def test_2023_a_still_hour_flags_its_four_blocks() -> None:
    still = np.zeros(12, bool)
    still[4:8] = True
    score = blocks(still, "ggir2023")
    np.testing.assert_array_equal(score >= 2, still)
    still[4:7] = True
    still[7] = False  # 45 min is not enough
    assert not (blocks(still, "ggir2023") >= 2).any()


def test_2023_axes_are_flagged_per_window() -> None:
    # x still in the hour from block 2, y in the hour from block 4, z never: as in GGIR the
    # blocks both hours share have 2 still axes (non-wear), the others 1.
    s = np.zeros((24, 3), bool)
    s[4:12, 0] = True
    s[8:16, 1] = True
    res = nonwear_blocks(half_blocks(s), 0, rule="ggir2023", sample_rate_hz=5.0)
    np.testing.assert_array_equal(res.score, [0, 0, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(res.nonwear, res.score >= 2)


def test_2013_centred_window_and_edges() -> None:
    still = np.zeros(16, bool)
    still[4:12] = True  # two hours
    flagged = np.flatnonzero(blocks(still, "ggir2013") >= 2)
    # Centred window [b - 1.5, b + 2.5) blocks must lie in [4, 12): b = 6 .. 9.
    np.testing.assert_array_equal(flagged, [6, 7, 8, 9])
    # Edges: the first three blocks use the first hour, the last four the last 45 min.
    still = np.zeros(16, bool)
    still[:4] = True
    still[13:] = True
    flagged = np.flatnonzero(blocks(still, "ggir2013") >= 2)
    np.testing.assert_array_equal(flagged, [0, 1, 2, 12, 13, 14, 15])


def test_single_one_between_nonwear_becomes_nonwear() -> None:
    from actidose.dose.nonwear import _fill_single_ones

    got = _fill_single_ones(np.array([1, 2, 1, 3, 1, 1, 2, 1], np.int8))
    np.testing.assert_array_equal(got, [1, 2, 2, 3, 1, 1, 2, 1])


def test_too_little_data_is_never_still() -> None:
    half = half_blocks(np.ones(8, bool))
    few = AxisStats(np.full(8, 50, np.int64), half.sum / N_HALF * 50, half.sumsq / N_HALF * 50,
                    half.min, half.max)  # fmt: skip
    assert not nonwear_blocks(few, 0, rule="ggir2023", sample_rate_hz=5.0).nonwear.any()
    assert nonwear_blocks(half, 0, rule="ggir2023", sample_rate_hz=5.0).nonwear.all()


def test_block_start_times_and_bad_rule() -> None:
    res = nonwear_blocks(half_blocks(np.ones(4, bool)), 7 * BLOCK_US, sample_rate_hz=5.0)
    np.testing.assert_array_equal(res.block_start_us, [7 * BLOCK_US, 8 * BLOCK_US])
    with pytest.raises(ValueError):
        nonwear_blocks(half_blocks(np.ones(4, bool)), 0, rule="choi", sample_rate_hz=5.0)
    empty = nonwear_blocks(AxisStats.empty(), 0, sample_rate_hz=5.0)
    assert empty.nonwear.shape == (0,)


def test_device_slower_than_its_nominal_rate() -> None:
    # Set to 26 Hz, records 25 Hz (Axivity devices drift by a few %): windows and epochs are
    # judged against the observed rate, so nothing changes.
    xyz = day_with_still_period(3.1234, 3.0)
    res = process(stream_of(ts_of(xyz.shape[0]), xyz, nominal_hz=26.0))
    assert res.info["sample_rate_observed_hz"] == pytest.approx(SF)
    inside, _ = _expected_blocks(3.1234, 3.0)
    assert set(np.flatnonzero(res.nonwear_detail.nonwear).tolist()) == inside
    assert res.info["n_partial_epochs"] == 0  # starts at 07:00, ends at 07:00
