"""Raw accelerometer processing: chunked == whole, ENMO / MAD against the reference kernel and
vectors, calibration through the pipeline, clipping, gaps, MVPA flags."""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.dose import accel
from actidose.dose.accel_process import (
    THRESHOLD_SETS_EXTRA,
    AccelResult,
    EpochStats,
    epoch_stream,
    mvpa_flags,
    mvpa_minutes,
    process,
    threshold_values,
)
from actidose.recording import AccelChunk, AccelEpochs, AccelStream

from .test_calibration import BIAS, GAIN, unit_vectors
from .test_nonwear import on_table, wrist_awake

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
VECTORS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "vectors.json"
T_ALIGNED = 1_717_200_000_000_000  # a multiple of 15 min (UTC)


def split_stream(
    ts: I64,
    xyz: npt.NDArray[Any],
    sf: float,
    cuts: Sequence[int] = (),
    range_g: float | None = 8.0,
) -> AccelStream:
    """A stream whose chunks end at ``cuts`` (sample indices)."""
    edges = [0, *sorted(set(c for c in cuts if 0 < c < ts.shape[0])), ts.shape[0]]

    def chunks() -> Iterator[AccelChunk]:
        for a, b in itertools.pairwise(edges):
            yield AccelChunk(ts[a:b], xyz[a:b])

    return AccelStream(sf, chunks, range_g=range_g, n_samples=ts.shape[0])


def regular_ts(n: int, sf: float, start_us: int = T_ALIGNED) -> I64:
    return start_us + np.round(np.arange(n) * 1e6 / sf).astype(np.int64)


@lru_cache(maxsize=1)
def mixed_recording() -> tuple[I64, npt.NDArray[np.float32]]:
    """Six hours at 10 Hz from an unaligned start, with an injected calibration error: 2 h
    still in 40 orientations, 1.5 h awake, 1.5 h on a table, 1 h awake with clipping bursts;
    two gaps (20 min, 3.7 s) and one NaN sample."""
    sf = 10.0
    rng = np.random.default_rng(21)
    still = np.repeat(unit_vectors(rng, 40), round(180 * sf), axis=0)
    still = still + rng.normal(0, 0.003, still.shape)
    parts = [still, wrist_awake(rng, 5400, sf), on_table(rng, 5400, sf), wrist_awake(rng, 3600, sf)]
    true = np.concatenate(parts)
    raw = true * GAIN + BIAS
    n = raw.shape[0]
    for start in rng.integers(n - 3600, n - 10, 6):  # bursts at the +-8 g range
        raw[start : start + 5, 0] = 8.0
        raw[start + 5 : start + 7, 2] = -8.0
    raw[n - 2000, 1] = np.nan
    ts = regular_ts(n, sf, T_ALIGNED + 1_234_567)
    keep = np.ones(n, bool)
    keep[30_000:42_000] = False  # 20 min
    keep[60_000:60_037] = False  # 3.7 s
    return ts[keep], raw[keep].astype(np.float32)


@lru_cache(maxsize=4)
def whole_result(rule: str) -> AccelResult:
    ts, xyz = mixed_recording()
    return process(split_stream(ts, xyz, 10.0), nonwear_rule=rule)


def assert_same(a: AccelResult, b: AccelResult) -> None:
    for name in ("start_us", "n_samples", "clipped", "nonwear", "level"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("enmo_mg", "mad_mg"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a.calibration.offset, b.calibration.offset, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.calibration.scale, b.calibration.scale, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.nonwear_detail.score, b.nonwear_detail.score)
    skip = {"n_chunks", "calibration_error_before_g", "calibration_error_after_g"}
    skip |= {k for k in a.info if "offset" in k or "scale" in k}
    assert {k: v for k, v in a.info.items() if k not in skip} == {
        k: v for k, v in b.info.items() if k not in skip
    }


def test_mixed_recording_exercises_every_path() -> None:
    res = whole_result("ggir2023")
    info = res.info
    assert info["calibration_accepted"] is True, info["calibration_reason"]
    np.testing.assert_allclose(res.calibration.scale, 1 / GAIN, atol=2e-3)
    np.testing.assert_allclose(res.calibration.offset, -BIAS, atol=2e-3)
    assert res.nonwear.any() and not res.nonwear.all()
    assert info["n_clipped"] == int(res.clipped.sum()) > 0
    assert info["n_gaps"] == 2
    assert info["gap_total_s"] == pytest.approx(20 * 60 + 3.7, abs=0.01)
    assert info["n_nan_samples"] == 1 and np.isnan(res.enmo_mg).sum() == 1
    assert info["n_partial_epochs"] >= 3  # first, last, around the gaps
    assert int(res.n_samples.sum()) == info["n_samples"] == mixed_recording()[0].shape[0]
    json.dumps(info)  # plain JSON, no numpy scalars


@settings(max_examples=40, deadline=None)
@given(
    rule=st.sampled_from(["ggir2023", "ggir2013"]),
    cuts=st.lists(st.integers(1, 215_000), max_size=20, unique=True),
    tiny=st.lists(st.integers(1, 215_000), max_size=4),
)
def test_chunked_equals_whole(rule: str, cuts: list[int], tiny: list[int]) -> None:
    ts, xyz = mixed_recording()
    # Chunks smaller than an epoch (and single samples) next to each `tiny` point.
    all_cuts = cuts + [t + d for t in tiny for d in (0, 1, 7, 31)]
    chunked = process(split_stream(ts, xyz, 10.0, all_cuts), nonwear_rule=rule)
    assert_same(chunked, whole_result(rule))


def test_many_tiny_chunks() -> None:
    ts, xyz = mixed_recording()
    cuts = [*range(100_000, 100_600, 3), *range(5, 400)]  # 1- and 3-sample chunks
    assert_same(process(split_stream(ts, xyz, 10.0, cuts)), whole_result("ggir2023"))


def test_enmo_mad_equal_the_reference_kernel_on_regular_data() -> None:
    sf, n = 100.0, 100 * 60 * 30 + 250  # 30 min and half an epoch
    rng = np.random.default_rng(1)
    xyz = wrist_awake(rng, n / sf, sf)[:n]
    res = process(split_stream(regular_ts(n, sf), xyz, sf, [12_345, 99_999]), calibrate=False)
    ref = accel.epoch_enmo_mad(xyz[:, 0], xyz[:, 1], xyz[:, 2], sf, 5.0)
    assert ref.n_dropped_samples == 250
    np.testing.assert_allclose(res.enmo_mg[:-1], ref.enmo_g * 1000, rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.mad_mg[:-1], ref.mad_g * 1000, rtol=0, atol=1e-9)
    assert res.n_samples[-1] == 250 and (res.n_samples[:-1] == 500).all()  # kept, counted
    tail = np.linalg.norm(xyz[-250:], axis=1)
    assert res.enmo_mg[-1] == pytest.approx(np.maximum(tail - 1, 0).mean() * 1000, abs=1e-9)
    np.testing.assert_array_equal(res.start_us, T_ALIGNED + np.arange(res.start_us.size) * 5e6)
    np.testing.assert_array_equal(res.level, accel.classify_levels(res.enmo_mg))
    assert res.info["calibration_reason"] == "calibration not requested"


def _vector(vid: str) -> dict[str, Any]:
    if not VECTORS.is_file():
        pytest.skip(f"reference vectors not found at {VECTORS}")
    vec: dict[str, Any] = {v["id"]: v for v in json.loads(VECTORS.read_text())}[vid]
    return vec


def test_vectors_enmo_and_mad_sine_through_processing() -> None:
    ve, vm = _vector("ENMO-sine-0.5"), _vector("MAD-sine-0.5")
    assert ve["inputs"]["x"] == "0.5*sin(2*pi*2*t) g" and ve["inputs"]["sf"] == 100
    sf, n = 100.0, 100 * 5 * 6  # six 5-s epochs
    t = np.arange(n) / sf
    xyz = np.stack([0.5 * np.sin(2 * np.pi * 2 * t), np.zeros(n), np.ones(n)], axis=1)
    res = process(split_stream(regular_ts(n, sf), xyz, sf, [777, 1501]), calibrate=False)
    assert res.enmo_mg.shape == (6,)
    np.testing.assert_allclose(res.enmo_mg / 1000, ve["expected"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.mad_mg / 1000, vm["expected"], rtol=1e-12, atol=0)


def test_calibration_recovered_through_processing() -> None:
    sf = 50.0
    rng = np.random.default_rng(9)
    true = np.repeat(unit_vectors(rng, 50), round(60 * sf), axis=0)
    true = true + rng.normal(0, 0.003, true.shape)
    raw = (true * GAIN + BIAS).astype(np.float32)
    res = process(split_stream(regular_ts(raw.shape[0], sf), raw, sf, [100_003]))
    assert res.info["calibration_accepted"] is True
    np.testing.assert_allclose(res.info["calibration_scale"], 1 / GAIN, atol=1e-3)
    np.testing.assert_allclose(res.info["calibration_offset_g"], -BIAS, atol=1e-3)
    before, after = res.info["calibration_error_before_g"], res.info["calibration_error_after_g"]
    assert isinstance(before, float) and isinstance(after, float) and after < 0.001 < before
    # Still data has ENMO ~ 0 once calibrated (it is ~40 mg in some orientations before).
    flat = np.median(res.enmo_mg)
    raw_res = process(split_stream(regular_ts(raw.shape[0], sf), raw, sf), calibrate=False)
    assert flat < 3.0 < np.percentile(raw_res.enmo_mg, 90)


def test_clipping_counted_per_epoch() -> None:
    sf, n = 20.0, 20 * 60
    xyz = np.tile(np.array([0.0, 0.0, 1.0], np.float32), (n, 1))
    xyz[10:15, 0] = 8.0  # epoch 0: 5 samples
    xyz[12, 1] = -8.0  # same sample as another clipped axis: counted once
    xyz[150, 2] = 7.995  # epoch 1 (>= 8 - 0.01)
    xyz[151, 2] = 7.98  # not clipped
    xyz[n - 1, 1] = -9.0  # last epoch
    ts = regular_ts(n, sf)
    res = process(split_stream(ts, xyz, sf, [12, 151]), calibrate=False)
    assert res.clipped[0] == 5 and res.clipped[1] == 1 and res.clipped[-1] == 1
    assert res.info["n_clipped"] == 7 and res.info["clip_threshold_g"] == pytest.approx(7.99)
    assert res.info["clipping_counted"] is True
    off = process(split_stream(ts, xyz, sf, range_g=None), calibrate=False)
    assert off.info["clipping_counted"] is False and not off.clipped.any()


def test_gaps_give_partial_epochs_and_no_epochs_inside() -> None:
    sf = 10.0
    rng = np.random.default_rng(2)
    ts = regular_ts(3000, sf, T_ALIGNED + 2_500_000)  # starts mid-epoch
    ts[1234:] += 3_600_000_000 + 1_700_000  # an hour and 1.7 s, mid-epoch on both sides
    xyz = rng.normal(0, 0.3, (3000, 3)) + np.array([0, 0, 1])
    res = process(split_stream(ts, xyz, sf, [1234, 1240]), calibrate=False)
    ids = ts // 5_000_000
    uniq, first = np.unique(ids, return_index=True)
    np.testing.assert_array_equal(res.start_us, uniq * 5_000_000)
    counts = np.diff(np.append(first, ts.size))
    np.testing.assert_array_equal(res.n_samples, counts)
    r = np.linalg.norm(xyz, axis=1)
    for k in range(uniq.size):
        seg = r[first[k] : first[k] + counts[k]]
        assert res.enmo_mg[k] == pytest.approx(1000 * np.maximum(seg - 1, 0).mean(), abs=1e-9)
        assert res.mad_mg[k] == pytest.approx(1000 * np.abs(seg - seg.mean()).mean(), abs=1e-9)
    assert res.info["n_gaps"] == 1
    assert res.info["gap_total_s"] == pytest.approx(3601.7)
    assert res.info["n_partial_epochs"] == int((counts < 50).sum()) == 4  # start, gap x2, end


def test_irregular_sampling_epoch_stream_matches_reference() -> None:
    rng = np.random.default_rng(6)
    n = 20_000
    ts = T_ALIGNED + np.cumsum(rng.integers(25_000, 45_000, n))  # ~30 Hz with jitter
    xyz = rng.normal(0, 0.4, (n, 3)) + np.array([0, 1, 0])
    got = []
    state = None
    for a, b in ((0, 77), (77, 5000), (5000, 5001), (5001, n)):
        ep, state = epoch_stream(ts[a:b], xyz[a:b], epoch_s=15.0, state=state, final=b == n)
        got.append(ep)
    ep = EpochStats.concat(got)
    ids = ts // 15_000_000
    uniq, first = np.unique(ids, return_index=True)
    np.testing.assert_array_equal(ep.index, uniq)
    r = np.linalg.norm(xyz, axis=1)
    bounds = np.append(first, n)
    ref_enmo = [np.maximum(r[a:b] - 1, 0).mean() for a, b in itertools.pairwise(bounds)]
    ref_mad = [np.abs(r[a:b] - r[a:b].mean()).mean() for a, b in itertools.pairwise(bounds)]
    np.testing.assert_allclose(ep.enmo_g, ref_enmo, rtol=1e-12)
    np.testing.assert_allclose(ep.mad_g, ref_mad, rtol=1e-12)


def test_timestamps_going_backwards_are_refused() -> None:
    sf = 10.0
    ts = regular_ts(100, sf)
    xyz = np.zeros((100, 3))
    bad = ts.copy()
    bad[57] = bad[55]
    with pytest.raises(ValueError, match="sample 17 of chunk 1"):
        process(split_stream(bad, xyz, sf, [40]))
    bad = ts.copy()
    bad[40:] -= 2_000_000  # the second chunk starts before the first ends
    with pytest.raises(ValueError, match="sample 0 of chunk 1"):
        process(split_stream(bad, xyz, sf, [40]))


def test_second_pass_must_see_the_same_samples() -> None:
    ts = regular_ts(1000, 10.0)
    xyz = np.zeros((1000, 3))
    calls = {"n": 0}

    def chunks() -> Iterator[AccelChunk]:
        calls["n"] += 1
        m = 1000 if calls["n"] == 1 else 900
        yield AccelChunk(ts[:m], xyz[:m])

    with pytest.raises(ValueError, match="second pass"):
        process(AccelStream(10.0, chunks))


def test_empty_stream_and_bad_parameters() -> None:
    empty = AccelStream(100.0, lambda: iter([AccelChunk(np.zeros(0, np.int64), np.zeros((0, 3)))]))
    res = process(empty)
    assert res.start_us.shape == (0,) and res.info["n_samples"] == 0
    assert res.info["calibration_accepted"] is False
    stream = split_stream(regular_ts(10, 10.0), np.zeros((10, 3)), 10.0)
    with pytest.raises(ValueError):
        process(stream, epoch_s=7.0)  # does not divide 15 min
    with pytest.raises(ValueError):
        process(stream, nonwear_rule="choi2011")
    with pytest.raises(ValueError):
        process(stream, thresholds="no_such_set")


def test_threshold_sets() -> None:
    assert THRESHOLD_SETS_EXTRA["ggir_default"] == (40.0, 100.0, 400.0)
    assert THRESHOLD_SETS_EXTRA["hildebrand_hip_actigraph"] == (47.4, 69.1, 258.7)
    assert threshold_values("hildebrand_wrist_geneactiv") == (
        "hildebrand_wrist_geneactiv",
        (45.8, 93.2, 418.3),
    )
    assert threshold_values([10, 20]) == ("custom", (10.0, 20.0))
    with pytest.raises(ValueError):
        threshold_values([20, 10])
    sf, n = 10.0, 600
    xyz = np.zeros((n, 3))
    xyz[:, 2] = np.repeat([1.03, 1.05, 1.2, 1.5], n // 4)  # ENMO 30, 50, 200, 500 mg
    res = process(split_stream(regular_ts(n, sf), xyz, sf), thresholds="ggir_default")
    assert res.info["thresholds"] == "ggir_default" and res.info["thresholds_mg"] == [40, 100, 400]
    np.testing.assert_array_equal(np.unique(res.level), [0, 1, 2, 3])


def test_result_fits_the_storage_record() -> None:
    res = whole_result("ggir2023")
    ep = AccelEpochs(**res.epoch_fields())
    assert ep.start_us is res.start_us and ep.info["nonwear_rule"] == "ggir2023"
    for key in ("sample_rate_hz", "range_g", "calibration_accepted", "calibration_error_before_g"):
        assert key in ep.info


# ---------------------------------------------------------------------------------------------
# MVPA flags and minutes (GGIR bouts, vectors BOUT-1..5 through the ENMO path)
# ---------------------------------------------------------------------------------------------


def _pattern(spec: str, n_per_min: int) -> npt.NDArray[np.bool_]:
    out: list[bool] = []
    for part in spec.split(","):
        v, m = part.strip().split(" x")
        out += [v == "1"] * (int(m.rstrip("N")) * n_per_min)
    return np.array(out)


@pytest.mark.parametrize("vid", ["BOUT-1", "BOUT-2", "BOUT-3", "BOUT-4", "BOUT-5"])
@pytest.mark.parametrize("epoch_s", [5.0, 15.0, 60.0])
def test_mvpa_flags_reproduce_the_bout_vectors(vid: str, epoch_s: float) -> None:
    v = _vector(vid)
    n_min = int(60 / epoch_s)
    above = _pattern(v["inputs"]["above_threshold"], n_min)
    enmo_mg = np.where(above, 150.0, 20.0)  # moderate >= 100.6 mg (Hildebrand wrist)
    flags = mvpa_flags(
        enmo_mg,
        epoch_s,
        thresholds="hildebrand_wrist_actigraph",
        bout_min=v["inputs"]["bout_min"],
        criterion=v["inputs"]["criterion"],
    )
    expected = accel.ggir_bouts(
        above, epoch_s, bout_min=v["inputs"]["bout_min"], criterion=v["inputs"]["criterion"]
    )
    np.testing.assert_array_equal(flags, expected)
    first, last = (int(x) for x in re.findall(r"(\d+)N", v["expected"])[:2])
    lo = first * n_min + (1 if "+1" in v["expected"].split("..")[0] else 0)
    assert flags.sum() == (last * n_min) - lo + 1
    assert flags[lo - 1] and flags[last * n_min - 1]


def test_mvpa_minutes_unbouted_bouted_and_nonwear() -> None:
    epoch_s = 5.0
    per_min = 12
    enmo = np.full(60 * per_min, 20.0)
    enmo[10 * per_min : 22 * per_min] = 150.0  # 12 min moderate
    enmo[30 * per_min : 33 * per_min] = 500.0  # 3 min vigorous
    nonwear = np.zeros(enmo.size, bool)
    out = mvpa_minutes(enmo, epoch_s, nonwear)
    assert out == {
        "mvpa_min": 15.0,
        "mvpa_bout1_min": 15.0,
        "mvpa_bout5_min": 12.0,
        "mvpa_bout10_min": 12.0,
    }
    nonwear[15 * per_min : 45 * per_min] = True  # non-wear is never MVPA
    out = mvpa_minutes(enmo, epoch_s, nonwear)
    assert out["mvpa_min"] == 5.0 and out["mvpa_bout10_min"] == 0.0
    assert out["mvpa_bout5_min"] == 5.0


def test_mvpa_flags_on_a_grid_with_missing_epochs() -> None:
    epoch_s = 60.0
    enmo = np.full(20, 150.0)
    start = T_ALIGNED + np.arange(20, dtype=np.int64) * 60_000_000
    start[10:] += 5 * 60_000_000  # five epochs missing (a gap): the bout is broken there
    f = mvpa_flags(enmo, epoch_s, bout_min=10, start_us=start)
    np.testing.assert_array_equal(f, [True] * 20)
    f = mvpa_flags(enmo[:14], epoch_s, bout_min=10, start_us=start[:14])
    np.testing.assert_array_equal(f, [True] * 10 + [False] * 4)
    assert math.isclose(f.sum() * epoch_s / 60, 10.0)


@settings(max_examples=50, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 2999), max_size=15, unique=True),
    gaps=st.lists(st.tuples(st.integers(1, 2999), st.integers(1, 40_000_000)), max_size=4),
    epoch_s=st.sampled_from([1.0, 5.0, 60.0]),
)
def test_epoch_stream_chunked_equals_whole(
    cuts: list[int], gaps: list[tuple[int, int]], epoch_s: float
) -> None:
    rng = np.random.default_rng(len(cuts) * 7 + len(gaps))
    n = 3000
    ts = T_ALIGNED + 777 + np.arange(n, dtype=np.int64) * 40_000
    for at, dt in gaps:
        ts[at:] += dt
    xyz = (rng.normal(0, 0.5, (n, 3)) + np.array([0, 0, 1])).astype(np.float32)
    kw: dict[str, Any] = {"epoch_s": epoch_s, "offset": (0.01, -0.02, 0.0)}
    kw |= {"scale": (1.01, 0.99, 1.0), "clip_g": 1.5}
    whole, _ = epoch_stream(ts, xyz, **kw)
    parts, state = [], None
    for a, b in itertools.pairwise([0, *sorted(cuts), n]):
        ep, state = epoch_stream(ts[a:b], xyz[a:b], state=state, final=False, **kw)
        parts.append(ep)
    ep, _ = epoch_stream(ts[:0], xyz[:0], state=state, final=True, **kw)
    got = EpochStats.concat([*parts, ep])
    for name in ("index", "n", "clipped", "n_nan"):
        np.testing.assert_array_equal(getattr(got, name), getattr(whole, name))
    np.testing.assert_allclose(got.enmo_g, whole.enmo_g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.mad_g, whole.mad_g, rtol=1e-12, atol=1e-15)
    assert int(got.n.sum()) == n and int(got.clipped.sum()) == int(
        (np.abs(xyz) >= 1.5).any(axis=1).sum()
    )


def test_processing_modules_import_only_numpy_scipy_stdlib() -> None:
    # tests/test_dose_imports.py checks actidose.dose; these modules are imported lazily by the
    # pipeline, so check them the same way, in a fresh interpreter.
    script = (
        "import json, sys\n"
        "for name in ('duckdb', 'polars', 'pyarrow', 'bleak', 'fitdecode', 'lxml'):\n"
        "    sys.modules[name] = None\n"
        "import numpy, scipy, scipy.signal\n"
        "base = set(sys.modules)\n"
        "import actidose.dose.accel_process, actidose.dose.calibration, actidose.dose.nonwear\n"
        "print(json.dumps(sorted(set(sys.modules) - base)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    added = json.loads(out.stdout)
    allowed = set(sys.stdlib_module_names) | {"numpy", "scipy", "actidose"}
    assert not [m for m in added if m.split(".")[0] not in allowed]
    assert not [m for m in added if m.startswith(("actidose.ingest", "actidose.storage"))]
