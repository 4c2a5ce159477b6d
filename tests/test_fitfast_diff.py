"""The columnar FIT decoder against the reference: ``fit.read`` (numpy, ``fitfast``) must give
what ``fit.read_reference`` (fitdecode, message by message) gives — HR, RR, activities, vendor
series, device facts, warnings, metadata, errors and their offsets, salvage — on every corpus
FIT file, on generated files of every kind the writer makes, and on damaged and arbitrary
bytes. The real files and the generated ones must take the columnar path."""

from __future__ import annotations

import importlib
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError
from actidose.ingest import fit, fitfast, fitfast_build
from actidose.ingest import fit_writer as fw
from actidose.recording import Recording

from . import test_fit_bad_input as bad
from .conftest import need_corpus

T0 = np.datetime64("2024-03-01T08:00:00", "s")

Outcome = Recording | tuple[str, str, int | None]


def outcome(reader: Any, data: bytes, salvage: bool) -> Outcome:
    try:
        rec = reader(io.BytesIO(data), path="x.fit", salvage=salvage)
    except InputError as e:
        assert e.path == "x.fit"
        return (type(e).__name__, e.reason, e.offset)
    assert isinstance(rec, Recording)
    return rec


def assert_same(a: Outcome, b: Outcome) -> None:
    """Equal outcomes: the same error, or Recordings equal in everything but the decoder."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        assert a == b
        return
    assert np.array_equal(a.hr.ts, b.hr.ts)
    assert np.array_equal(a.hr.bpm, b.hr.bpm, equal_nan=True)
    assert np.array_equal(a.rr.ts, b.rr.ts)
    assert np.array_equal(a.rr.rr_ms, b.rr.rr_ms, equal_nan=True)
    assert a.activities == b.activities
    assert len(a.vendor) == len(b.vendor)
    for x, y in zip(a.vendor, b.vendor, strict=True):
        assert (x.kind, x.unit, x.origin) == (y.kind, y.unit, y.origin)
        assert np.array_equal(x.start, y.start)
        assert np.array_equal(x.duration_s, y.duration_s)
        assert np.array_equal(x.value, y.value, equal_nan=True)
    for name in (
        "format",
        "kind",
        "sensor",
        "device",
        "serial",
        "utc_offset_s",
        "salvaged",
        "salvage_reason",
        "warnings",
    ):
        assert getattr(a, name) == getattr(b, name), name
    assert {k: v for k, v in a.meta.items() if k != "fit_decoder"} == {
        k: v for k, v in b.meta.items() if k != "fit_decoder"
    }


def decoder(rec: Outcome) -> str | None:
    return rec.meta["fit_decoder"] if isinstance(rec, Recording) else None


def check(data: bytes, *, vectorized: bool = False) -> None:
    """Both readers agree with and without salvage; ``vectorized``: the columnar path decoded
    it (not a fallback), including when the outcome is an error."""
    for salvage in (False, True):
        fast = outcome(fit.read, data, salvage)
        if salvage and isinstance(fast, Recording) and not fast.salvaged:
            break  # intact: salvage changes nothing (both readers were compared without it)
        ref = outcome(fit.read_reference, data, salvage)
        assert_same(fast, ref)
        dec = decoder(fast)
        assert dec is None or not dec.startswith("reference: internal error"), dec
        if vectorized:
            assert dec in (None, "vectorized"), dec
            if dec is None:  # an error: the columnar path must have raised it itself
                with pytest.raises(InputError):
                    fitfast_build.read_bytes(data, path="x.fit", salvage=salvage)


# -- the corpus --------------------------------------------------------------------------------


def corpus_fit_files() -> list[str]:
    folder = need_corpus() / "fit"
    return sorted(p.name for p in folder.glob("*.fit"))


def test_every_corpus_fit_file() -> None:
    folder = need_corpus() / "fit"
    names = corpus_fit_files()
    assert len(names) >= 17
    for name in names:
        data = (folder / name).read_bytes()
        check(data, vectorized=True)
        rec = outcome(fit.read, data, True)
        if isinstance(rec, Recording):
            assert rec.meta["fit_decoder"] == "vectorized", name


def test_corpus_damage_is_found_by_the_columnar_path() -> None:
    folder = need_corpus() / "fit"
    nick = (folder / "nick.fit").read_bytes()
    with pytest.raises(InputError) as e:
        fitfast_build.read_bytes(nick, path="n", salvage=False)
    assert e.value.reason == f"truncated at offset {len(nick)}"
    strava = (folder / "strava-android-app-201.10-b1218918.fit").read_bytes()
    with pytest.raises(InputError) as e:
        fitfast_build.read_bytes(strava, path="s", salvage=False)
    assert e.value.reason == "corrupt data at offset 7471: local message 11 not defined"


def cut_and_flip(names: list[str]) -> None:
    folder = need_corpus() / "fit"
    rng = np.random.default_rng(7)
    for name in names:
        data = (folder / name).read_bytes()
        for cut in sorted(set(rng.integers(1, len(data), 4).tolist())):
            check(data[:cut])
        flipped = bytearray(data)
        at = int(rng.integers(14, len(data)))
        flipped[at] ^= 0x10
        check(bytes(flipped))


def test_small_corpus_files_cut_and_flipped() -> None:
    """Corpus files cut at a few places and with a byte flipped: the same errors, or the same
    salvaged samples, from both readers."""
    folder = need_corpus() / "fit"
    cut_and_flip([n for n in corpus_fit_files() if (folder / n).stat().st_size < 100_000])


@pytest.mark.slow
def test_all_corpus_files_cut_and_flipped() -> None:
    cut_and_flip(corpus_fit_files())


# -- generated files -----------------------------------------------------------------------


def seconds(n: int, step: int = 1, start: np.datetime64 = T0) -> np.ndarray:
    return start + (np.arange(n) * step).astype("timedelta64[s]")


def activity(*, big_endian: bool = False, compressed: bool = False) -> bytes:
    ts = seconds(600)
    hr = 100 + 40 * np.sin(np.arange(600) / 50)
    hr[::97] = np.nan
    w = fw.FitWriter(big_endian=big_endian)
    w.add_file_id(serial=4242, time_created=ts[0], product_name="fenix 6")
    w.add_device_info(ts[0], serial=4242, software_version=12.5)
    w.add_device_info(ts[0], device_index=1, source_type="antplus", device_type=120, product=7)
    w.add_event(ts[0])
    w.add_records(ts[:300], hr[:300], compressed_timestamps=compressed)
    # a second layout of the record message (more fields): another definition
    w.add_records(
        ts[300:],
        hr[300:],
        distance_m=np.arange(300) * 3.0,
        speed_mps=np.full(300, 3.0),
        compressed_timestamps=compressed,
    )
    w.add_event(ts[-1], event_type=4)
    w.add_lap(ts[0], ts[-1], avg_hr=120, max_hr=140)
    w.add_session(ts[0], ts[-1], "cycling", "road", avg_hr=120, max_hr=140)
    w.add_activity(ts[-1], -18000)
    return w.to_bytes()


def with_hrv(*, big_endian: bool = False) -> bytes:
    """Records and hrv messages interleaved (one each per second), as Garmin writes them."""
    w = fw.FitWriter(big_endian=big_endian)
    w.add_file_id(serial=1, time_created=T0)
    w.add_event(T0)
    rng = np.random.default_rng(3)
    for i in range(240):
        w.add_records(seconds(1, start=T0 + np.timedelta64(i, "s")), [70.0 + i % 9])
        w.add_hrv(rng.integers(700, 1000, int(rng.integers(0, 4))).tolist())
    w.add_event(T0 + np.timedelta64(239, "s"), event_type=4)
    w.add_beat_intervals(T0 + np.timedelta64(300, "s"), [800, 810, 790], timestamp_ms=250)
    w.add_session(T0, T0 + np.timedelta64(239, "s"))
    w.add_activity(T0 + np.timedelta64(239, "s"), 3600)
    return w.to_bytes()


def monitoring(*, big_endian: bool = False, offset: int | None = 7200) -> bytes:
    n = 3 * 1440  # three days, one message a minute
    ts = seconds(n, 60, np.datetime64("2024-03-01T00:00:00", "s"))
    day = (np.arange(n) // 1440).astype(float)
    steps = np.arange(n) % 1440 * 7.0
    w = fw.FitWriter(big_endian=big_endian)
    w.add_file_id(type=32, serial=77, time_created=ts[0])
    w.add_monitoring_info(ts[0], local_offset_s=offset, resting_metabolic_rate=1500)
    w.add_device_info(ts[0], device_index=1, source_type="local", device_type=10)
    w.add_monitoring(
        ts,
        60 + day,
        activity_type=np.where(np.arange(n) % 3 == 0, 6, 1),
        cycles=steps,
        active_calories=steps // 20,
        distance_m=steps * 0.8,
        moderate_minutes=np.where(np.arange(n) % 50 == 0, 2, np.nan),
        vigorous_minutes=np.where(np.arange(n) % 70 == 0, 1, np.nan),
    )
    for d in range(3):
        w.add_monitoring_hr_data(ts[d * 1440 + 600], resting_hr=52, current_day_resting_hr=50 + d)
    return w.to_bytes()


def strap(*, packed: bool) -> bytes:
    t_us = np.datetime64("2024-03-01T08:00:00.25", "us") + (
        np.cumsum(np.full(500, 0.43)) * 1e6
    ).astype("timedelta64[us]")
    w = fw.FitWriter()
    w.add_file_id(serial=5, time_created=T0)
    w.add_device_info(T0, device_index=2, source_type="antplus", device_type=120)
    w.add_records(seconds(200), np.full(200, 130.0))
    w.add_hr_messages(t_us[:250], np.full(250, 140), packed=packed, event_base=4_000_000_000)
    gap = t_us[250:] + np.timedelta64(10, "s")  # a gap: a new anchor
    w.add_hr_messages(gap, np.full(250, 150), packed=packed, event_base=123)
    w.add_session(T0, T0 + np.timedelta64(300, "s"))
    return w.to_bytes()


def power_on_relative() -> bytes:
    w = fw.FitWriter()
    w.add_file_id(serial=9, time_created=T0)
    w.add_records(np.arange(1000, 1100), np.full(100, 90.0), compressed_timestamps=True)
    w.add_records(seconds(10, start=T0 + np.timedelta64(200, "s")), np.full(10, 95.0))
    w.add_records(np.arange(50, 80), np.full(30, 99.0))  # a restart after the clock was set
    w.add_session(1000, 1099)
    return w.to_bytes()


def correlated() -> bytes:
    w = fw.FitWriter()
    w.add_file_id(serial=9, time_created=T0)
    w.add_timestamp_correlation(T0, 5000)
    w.add_records(np.arange(5000, 5300), np.full(300, 88.0), compressed_timestamps=True)
    w.add_session(5000, 5299)
    return w.to_bytes()


def developer() -> bytes:
    w = fw.FitWriter()
    w.add_file_id(serial=11, time_created=T0)
    power = w.add_developer_field("power", base_type="uint16", units="W")
    lr = w.add_developer_field("balance", base_type="uint8")
    ts = seconds(300)
    w.add_records(
        ts, np.full(300, 150.0), developer={power: np.arange(300) % 400, lr: np.full(300, 50)}
    )
    w.add_session(ts[0], ts[-1])
    return w.to_bytes()


def many_definitions() -> bytes:
    """More record layouts than local types: locals are redefined over and over."""
    w = fw.FitWriter()
    w.add_file_id(serial=12, time_created=T0)
    ts = seconds(20 * 14)
    hr = 80 + np.arange(ts.size) % 50.0
    for i in range(20):
        part = slice(i * 14, (i + 1) * 14)
        extra: dict[str, Any] = {}
        if i % 2:
            extra["distance_m"] = np.arange(14.0)
        if i % 3:
            extra["speed_mps"] = np.full(14, 2.5)
        w.add_records(ts[part], hr[part], compressed_timestamps=bool(i % 4 == 1), **extra)
        w.add_message(20, [(253, fw.UINT32, fw.fit_seconds(ts[part][-1])), (i % 7 + 40, 2, i)])
    w.add_session(ts[0], ts[-1])
    return w.to_bytes()


GENERATED = {
    "activity": lambda: activity(),
    "activity big-endian": lambda: activity(big_endian=True),
    "activity compressed timestamps": lambda: activity(compressed=True),
    "activity big-endian compressed": lambda: activity(big_endian=True, compressed=True),
    "hrv": lambda: with_hrv(),
    "hrv big-endian": lambda: with_hrv(big_endian=True),
    "monitoring": lambda: monitoring(),
    "monitoring big-endian": lambda: monitoring(big_endian=True),
    "monitoring without offset": lambda: monitoring(offset=None),
    "strap hr packed": lambda: strap(packed=True),
    "strap hr arrays": lambda: strap(packed=False),
    "power-on relative": power_on_relative,
    "timestamp_correlation": correlated,
    "developer fields": developer,
    "many definitions": many_definitions,
    "chained": lambda: activity() + monitoring() + with_hrv(big_endian=True),
    "chained with a 12-byte header": lambda: activity() + twelve(),
}


def twelve() -> bytes:
    """A FIT file with the legacy 12-byte header (no header CRC)."""
    body = fw.FitWriter()
    body.add_file_id(serial=3, time_created=T0)
    body.add_records(seconds(30), np.full(30, 77.0))
    full = body.to_bytes()
    inner = full[14:-2]
    head = bytes([12]) + full[1:12]
    data = head + inner
    return data + fw.fit_crc16(data).to_bytes(2, "little")


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_file(name: str) -> None:
    data = GENERATED[name]()
    check(data, vectorized=True)
    rec = fit.read(io.BytesIO(data), path="g.fit")
    assert rec.meta["fit_decoder"] == "vectorized"
    assert len(rec.hr) or len(rec.rr) or rec.vendor


def test_generated_files_cut_everywhere_in_the_first_records() -> None:
    """Cut at every byte of the header, first definitions and records: identical errors and
    identical salvaged samples."""
    data = activity(compressed=True)
    for cut in range(1, 220):
        check(data[:cut])
    data = with_hrv()
    for cut in range(len(data) - 120, len(data) + 1):
        check(data[:cut])


def test_writer_default_output_is_unchanged_by_the_big_endian_option() -> None:
    little = fw.FitWriter()
    default = fw.FitWriter(big_endian=False)
    for w in (little, default):
        w.add_file_id(serial=1, time_created=T0)
        w.add_records(seconds(5), np.full(5, 60.0))
    assert little.to_bytes() == default.to_bytes()
    big = fw.FitWriter(big_endian=True)
    big.add_file_id(serial=1, time_created=T0)
    big.add_records(seconds(5), np.full(5, 60.0))
    assert big.to_bytes() != little.to_bytes()
    assert big.to_bytes()[14 + 2] == 1  # architecture byte of the first definition


# -- what the columnar decoder leaves to the reference ---------------------------------------


def test_fallbacks_say_why_and_agree() -> None:
    # a field of size 0 (the reference decoder fails on it with its own error)
    body = bytes([0x40, 0, 0]) + (20).to_bytes(2, "little") + bytes([1, 3, 0, 2]) + bytes([0])
    data = bad.wrap(body)
    with pytest.raises(fitfast.Fallback) as e:
        fitfast_build.read_bytes(data, path="x", salvage=False)
    assert "size 0" in e.value.reason
    check(data)
    # a developer field whose size is not a multiple of its type (1 byte of a uint16): the
    # reference reads a different number of bytes than declared
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    num = w.add_developer_field("x", base_type="uint16")
    w._dev_fields[num] = (fw.UINT8, 1)
    w.add_records(seconds(3), np.full(3, 60.0), developer={num: np.arange(3)})
    data = w.to_bytes()
    with pytest.raises(fitfast.Fallback) as e:
        fitfast_build.read_bytes(data, path="x", salvage=False)
    assert e.value.reason == "a developer field whose size is not a multiple of its type"
    check(data)
    # a chained FIT header of an unusual size
    odd = bytearray(activity())
    odd[0] = 16
    data = activity() + bytes(odd[:14]) + b"\0\0" + bytes(odd[14:])
    with pytest.raises(fitfast.Fallback):
        fitfast_build.read_bytes(data, path="x", salvage=False)
    check(data)
    rec = fit.read(io.BytesIO(data), path="x", salvage=True)
    assert rec.meta["fit_decoder"] == "reference: chained FIT header of 16 bytes"
    assert rec.salvaged and len(rec.hr) == 600  # the first file, before the odd header


# -- arbitrary and mutated bytes -------------------------------------------------------------

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(st.binary(max_size=600))
def test_arbitrary_bodies_agree(body: bytes) -> None:
    check(bad.wrap(body))
    check(bad.wrap(body)[:-2])


@PROPS
@given(bad.fit_bodies())
def test_well_framed_nonsense_agrees(body: bytes) -> None:
    check(bad.wrap(body))


SEEDS = [
    *bad.SEEDS,
    activity(compressed=True),
    with_hrv(big_endian=True),
    strap(packed=True),
    monitoring()[:3000],
    developer(),
    many_definitions(),
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(bad.mutation, min_size=1, max_size=4),
)
def test_mutated_files_agree(seed: int, mutations: list[tuple[str, float, int | bytes]]) -> None:
    data = bytearray(SEEDS[seed])
    for op, where, arg in mutations:
        pos = min(int(where * len(data)), max(len(data) - 1, 0))
        if op == "set" and data and isinstance(arg, int):
            data[pos] = arg
        elif op == "delete" and isinstance(arg, int):
            del data[pos : pos + arg]
        elif op == "insert" and isinstance(arg, bytes):
            data[pos:pos] = arg
        elif op == "cut":
            del data[pos:]
    check(bytes(data))


@PROPS
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_give_a_recording_or_an_input_error(data: bytes) -> None:
    bad.check(data, False)
    bad.check(data, True)


def test_every_fit_file_of_a_small_generated_cohort(tmp_path: Path) -> None:
    """The cohort generator's watch files (activity and monitoring, 1 s and smart recording,
    compressed timestamps, skin-contact gaps) decode identically and take the columnar path."""
    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    if not (bench / "cohort_gen.py").is_file():
        pytest.skip("benchmarks/cohort_gen.py not present")
    sys.path.insert(0, str(bench))
    try:
        cohort_gen = importlib.import_module("cohort_gen")
    finally:
        sys.path.remove(str(bench))
    cohort_gen.generate(tmp_path / "c", participants=5, weeks=1, seed=3, workers=1)
    files = sorted((tmp_path / "c").rglob("*.fit"))
    assert len(files) > 10
    for path in files:
        check(path.read_bytes(), vectorized=True)


@st.composite
def timelines(draw: st.DrawFn) -> bytes:
    """Messages with full, 16-bit, compressed, power-on-relative and missing times in any
    order: records (with and without heart rate), events, hrv, monitoring (timestamp_16 and
    counters), hr anchors and packed beats, sessions, timestamp_correlation and activity."""
    base = fw.fit_seconds(T0)
    times = st.one_of(
        st.integers(base - 100, base + 100_000),
        st.integers(0, 5000),  # power-on-relative
        st.just(None),
    )
    w = fw.FitWriter(big_endian=draw(st.booleans()))
    w.add_file_id(type=draw(st.sampled_from([4, 32])), serial=1, time_created=T0)
    anchored = False  # packed hr beats before an anchor: the reference decoder fails
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.integers(0, 9))
        t = draw(times)
        ts = [(253, fw.UINT32, t)]
        if kind == 0:
            hr = draw(st.one_of(st.none(), st.integers(0, 255)))
            w.add_message(20, [*ts, (3, fw.UINT8, hr)])
        elif kind == 1 and t is not None:
            n = draw(st.integers(1, 12))
            w.add_records(t + np.arange(n) * draw(st.integers(0, 40)), np.full(n, 77.0),
                          compressed_timestamps=True)  # fmt: skip
        elif kind == 2:
            w.add_message(21, [*ts, (0, fw.ENUM, 0), (1, fw.ENUM, draw(st.integers(0, 4)))])
        elif kind == 3:
            w.add_hrv(draw(st.lists(st.integers(300, 1500), max_size=7)))
        elif kind == 4:
            fields: list[tuple[int, int, Any]] = [(27, fw.UINT8, draw(st.integers(40, 200)))]
            if draw(st.booleans()):
                fields.append((26, fw.UINT16, draw(st.integers(0, 0xFFFE))))
            else:
                fields += ts
            if draw(st.booleans()):
                fields += [(5, fw.ENUM, draw(st.sampled_from([1, 6, 8]))),
                           (3, fw.UINT32, draw(st.integers(0, 10_000)))]  # fmt: skip
            if draw(st.booleans()):
                fields.append((33, fw.UINT16, draw(st.integers(0, 5))))
            w.add_message(55, fields)
        elif kind == 5:
            start = draw(times)
            w.add_message(18, [*ts, (2, fw.UINT32, start), (7, fw.UINT32, 60_000)])
        elif kind == 6 and t is not None:
            w.add_timestamp_correlation(t, draw(st.integers(0, 5000)))
        elif kind == 7:
            w.add_message(34, [*ts, (5, fw.UINT32, None if t is None else t + 3600)])
        elif kind == 8:
            w.add_message(132, [*ts, (0, fw.UINT16, 100), (9, fw.UINT32, draw(st.integers(0, 9)))])
            anchored = anchored or (t is not None and t > 0)
        elif kind == 9 and (anchored or draw(st.integers(0, 9)) == 0):
            bpm = draw(st.lists(st.integers(60, 190), min_size=1, max_size=8))
            packed = draw(st.binary(min_size=(12 * len(bpm) + 7) // 8, max_size=12))
            w.add_message(132, [(6, fw.UINT8, bpm), (10, fw.BYTE, packed)])
    return w.to_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines())
def test_timelines_agree(data: bytes) -> None:
    check(data)


class BrokenStream(io.BytesIO):
    """A stream that fails after ``at`` bytes, as a damaged archive member does."""

    def __init__(self, data: bytes, at: int) -> None:
        super().__init__(data)
        self.at = at

    def read(self, size: int | None = -1, /) -> bytes:
        if self.tell() >= self.at:
            raise OSError("invalid deflate data")
        if size is None or size < 0 or self.tell() + size > self.at:
            size = self.at - self.tell()
        return super().read(size)


@pytest.mark.parametrize("at", [20, 700, 2500])
def test_a_stream_that_breaks_is_damage_as_before(at: int) -> None:
    data = with_hrv()
    for salvage in (False, True):
        got: list[Outcome] = []
        for reader in (fit.read, fit.read_reference):
            try:
                got.append(reader(BrokenStream(data, at), path="x.fit", salvage=salvage))
            except InputError as e:
                got.append((type(e).__name__, e.reason, e.offset))
        assert_same(*got)
        if isinstance(got[0], tuple):
            assert "OSError: invalid deflate data" in got[0][1]
        else:
            assert got[0].salvaged and "OSError" in (got[0].salvage_reason or "")
