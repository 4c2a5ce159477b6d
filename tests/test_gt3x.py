"""ActiGraph .gt3x reader: files written here following ActiGraph's public format description
(github.com/actigraph/GT3X-File-Format) and read back; damage, gaps and any bytes."""

from __future__ import annotations

import io
import pickle
import re
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError
from actidose.ingest import gt3x
from actidose.recording import ReadContext, Recording

US = 1_000_000
T0 = 1_700_000_000  # device clock (local) of the first second
ACTIVITY, EVENT, METADATA, PARAMETERS, ACTIVITY2 = 0x00, 0x03, 0x06, 0x15, 0x1A


# --------------------------------------------------------------------------------------------
# a small writer, from the format description


def record(typ: int, clock: int, payload: bytes, *, bad_sum: bool = False) -> bytes:
    """Separator, type, uint32 LE time, uint16 LE size, payload, ~XOR checksum."""
    head = struct.pack("<BBIH", 0x1E, typ, clock, len(payload))
    x = 0
    for b in head + payload:
        x ^= b
    return head + payload + bytes([(~x ^ (1 if bad_sum else 0)) & 0xFF])


def pack12(counts: np.ndarray) -> bytes:
    """(n, 3) x, y, z counts as ACTIVITY packs them: y, x, z, 12 bits each, MSB first."""
    bits = "".join(f"{v & 0xFFF:012b}" for x, y, z in counts.tolist() for v in (y, x, z))
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))


def encode_float(f: float) -> int:
    """ActiGraph's parameter float (Parameters.md, SspCodec.Encode)."""
    if f == 0:
        return 0
    sig, exp = abs(f), 0
    while sig >= 1.0:
        sig, exp = sig / 2, exp + 1
    while sig < 0.5:
        sig, exp = sig * 2, exp - 1
    code = int(sig * 8388608.0)
    if f < 0:
        code = -code
    return (code & 0xFFFFFF) | ((exp << 24) & 0xFF000000)


def parameters(scale: float) -> bytes:
    pairs = [(0, 6, 2), (0, 55, encode_float(scale)), (1, 10, 30)]
    return b"".join(struct.pack("<HHI", a, k, v) for a, k, v in pairs)


def info_txt(serial: str = "MOS2E22180349", rate: int = 30, **more: str) -> str:
    lines = {
        "Serial Number": serial,
        "Device Type": "wGT3XBT",
        "Firmware": "1.9.2",
        "Sample Rate": str(rate),
        "Start Date": str(621_355_968_000_000_000 + T0 * 10_000_000),
        "Stop Date": "0",
        **more,
    }
    return "".join(f"{k}: {v}\r\n" for k, v in lines.items())


def gt3x_file(
    log: bytes,
    info: str | None = None,
    *,
    first: str = "log.bin",
    method: int = zipfile.ZIP_DEFLATED,
    members: dict[str, bytes] | None = None,
) -> bytes:
    files = {"log.bin": log, "info.txt": (info if info is not None else info_txt()).encode()}
    if members is not None:
        files = members
    order = sorted(files, key=lambda n: n != first)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name in order:
            z.writestr(name, files[name])
    return out.getvalue()


def seconds(counts: list[np.ndarray], *, typ: int = ACTIVITY2, start: int = T0) -> bytes:
    out = b""
    for i, c in enumerate(counts):
        payload = c.astype("<i2").tobytes() if typ == ACTIVITY2 else pack12(c)
        out += record(typ, start + i, payload)
    return out


def random_counts(n_seconds: int, rate: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-2048, 2048, (rate, 3)) for _ in range(n_seconds)]


def read(
    data: bytes, tz: str | None = "UTC", *, salvage: bool = False, path: str = "a.gt3x"
) -> Recording:
    return gt3x.read(io.BytesIO(data), path=path, salvage=salvage, ctx=ReadContext(tz))


def samples(rec: Recording) -> tuple[np.ndarray, np.ndarray]:
    assert rec.accel is not None
    parts = list(rec.accel.chunks())
    for c in parts:
        assert c.ts_us.dtype == np.int64 and c.xyz.dtype == np.float32
    ts = np.concatenate([c.ts_us for c in parts]) if parts else np.empty(0, np.int64)
    xyz = np.concatenate([c.xyz for c in parts]) if parts else np.empty((0, 3), np.float32)
    return ts, xyz


META = record(METADATA, T0 - 5, b'{"MetadataType":"Bio"}')


# --------------------------------------------------------------------------------------------
# round trips


def test_spec_example_activity_packing() -> None:
    """Activity.md: bytes 00 60 08 EB D0 07 00 9E BF 00 70 08 EB F0 are three samples whose
    (y, x, z) counts are (6, 8, -323), (7, 9, -321), (7, 8, -321)."""
    payload = np.frombuffer(bytes.fromhex("006008EBD007009EBF007008EBF0"), np.uint8)
    counts = gt3x.unpack_activity(payload[None, :], 3)[0]
    assert counts.tolist() == [[8, 6, -323], [9, 7, -321], [8, 7, -321]]
    assert pack12(counts) == bytes.fromhex("006008EBD007009EBF007008EBF0")


def test_spec_example_parameter_float() -> None:
    assert encode_float(256.0) == 0x09400000  # "00 00 40 09": ACCEL_SCALE 256 LSB/g
    assert gt3x._decode_float(0x09400000) == 256.0
    assert gt3x._decode_float(encode_float(341.0)) == pytest.approx(341.0)


def test_activity2_round_trip_with_parameters_scale() -> None:
    counts = random_counts(3, 30)
    log = META + record(PARAMETERS, T0 - 4, parameters(256.0)) + seconds(counts)
    rec = read(gt3x_file(log), "Europe/London")
    assert (rec.format, rec.kind, rec.serial, rec.device) == (
        "gt3x",
        "allday",
        "MOS2E22180349",
        "ActiGraph wGT3XBT",
    )
    assert rec.accel is not None
    assert (rec.accel.sample_rate_hz, rec.accel.n_samples, rec.accel.range_g) == (30.0, 90, 8.0)
    assert rec.meta["scale_from"] == "parameters" and rec.warnings == []
    ts, xyz = samples(rec)
    assert np.array_equal(xyz, (np.concatenate(counts) / 256).astype(np.float32))
    # 2023-11-14 22:13:20 device time in London (GMT) is the same instant in UTC
    assert ts[0] == T0 * US and ts[-1] == (T0 + 2) * US + round(29 * US / 30)
    assert np.all(np.diff(ts) > 0)


@pytest.mark.parametrize("rate", [25, 30, 100])
def test_activity_12bit_round_trip(rate: int) -> None:
    counts = random_counts(4, rate, seed=rate)
    rec = read(gt3x_file(seconds(counts, typ=ACTIVITY), info_txt("NEO1F18120387", rate)))
    assert rec.meta["scale_from"] == "serial" and rec.meta["scale_counts_per_g"] == "341"
    assert rec.accel is not None and rec.accel.range_g == pytest.approx(2048 / 341)
    ts, xyz = samples(rec)
    assert np.max(np.abs(xyz - np.concatenate(counts) / 341)) < 1e-6
    assert ts.size == 4 * rate and np.all(np.diff(ts) > 0)


def test_info_scale_and_time_zone() -> None:
    info = info_txt("XYZ123", 30, **{"Acceleration Scale": "256.0", "TimeZone": "-05:00:00"})
    rec = read(gt3x_file(seconds(random_counts(1, 30)), info))
    assert rec.meta["scale_from"] == "info.txt" and rec.utc_offset_s == -5 * 3600
    assert any("info.txt gives the time zone '-05:00:00'" in w for w in rec.warnings)
    assert rec.meta["start_date_local"].startswith("2023-11-14T22:13:20")
    rec = read(gt3x_file(seconds(random_counts(1, 30)), info_txt("XYZ123", 30)))
    assert rec.meta["scale_from"] == "default" and any("341" in w for w in rec.warnings)


def test_device_time_is_local() -> None:
    rec = read(gt3x_file(seconds(random_counts(1, 30))), "America/New_York")
    ts, _ = samples(rec)
    assert ts[0] == (T0 + 5 * 3600) * US  # EST device clock -> UTC
    with pytest.raises(InputError, match="timezone"):
        read(gt3x_file(seconds(random_counts(1, 30))), None)


def test_idle_sleep_seconds_are_gaps_not_padding() -> None:
    counts = random_counts(4, 30)
    log = (
        seconds(counts[:2])
        + record(EVENT, T0 + 2, b"\x08")
        + record(EVENT, T0 + 9, b"\x09")
        + seconds(counts[2:], start=T0 + 10)
    )
    rec = read(gt3x_file(log))
    assert rec.accel is not None and rec.accel.n_samples == 120
    assert rec.accel.gaps == [((T0 + 2) * US, (T0 + 10) * US)]
    assert rec.meta["gap_seconds"] == "8" and rec.meta["idle_sleep_events"] == "2"
    ts, xyz = samples(rec)
    assert ts[60] == (T0 + 10) * US
    assert np.array_equal(xyz, (np.concatenate(counts) / 256).astype(np.float32))


def test_usb_events_padding_and_other_records_are_skipped() -> None:
    counts = random_counts(2, 30)
    log = (
        META
        + b"\x00\x00\x00"
        + seconds(counts[:1])
        + record(ACTIVITY2, T0 + 1, b"\x01")  # USB connection event
        + record(0x02, T0 + 1, b"\x10\x0f")  # battery
        + b"\x00" * 7
        + seconds(counts[1:], start=T0 + 1)
        + b"\x00" * 5
    )
    rec = read(gt3x_file(log))
    assert rec.meta["usb_events"] == "1" and rec.accel is not None and rec.accel.n_samples == 60
    _, xyz = samples(rec)
    assert np.array_equal(xyz, (np.concatenate(counts) / 256).astype(np.float32))


def test_partial_seconds_and_overfull_records() -> None:
    c = np.random.default_rng(3).integers(-100, 100, (75, 3))
    log = record(ACTIVITY2, T0, c[:10].astype("<i2").tobytes()) + record(
        ACTIVITY2, T0 + 1, c[10:].astype("<i2").tobytes()
    )
    rec = read(gt3x_file(log))
    ts, _ = samples(rec)
    assert ts[:10].tolist() == [T0 * US + round(k * US / 30) for k in range(10)]
    assert ts[10:].tolist() == [(T0 + 1) * US + round(k * US / 65) for k in range(65)]
    assert any("more samples than the sample rate" in w for w in rec.warnings)


def test_chunks_split_and_blocks_small(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = random_counts(7, 30)
    data = gt3x_file(META + seconds(counts))
    monkeypatch.setattr(gt3x, "_BLOCK", 100)  # records span the read blocks
    monkeypatch.setattr(gt3x, "CHUNK_SAMPLES", 40)
    rec = read(data)
    assert rec.accel is not None
    parts = list(rec.accel.chunks())
    assert [p.ts_us.size for p in parts] == [30] * 7
    ts, xyz = samples(rec)
    assert np.array_equal(xyz, (np.concatenate(counts) / 256).astype(np.float32))
    again = pickle.loads(pickle.dumps(rec))
    assert np.array_equal(samples(again)[0], ts)


# --------------------------------------------------------------------------------------------
# damage


def test_bad_checksum() -> None:
    counts = random_counts(3, 30)
    bad = record(ACTIVITY2, T0 + 1, counts[1].astype("<i2").tobytes(), bad_sum=True)
    log = seconds(counts[:1]) + bad + seconds(counts[2:], start=T0 + 2)
    with pytest.raises(InputError) as e:
        read(gt3x_file(log))
    assert e.value.reason == f"bad checksum of the record at log.bin offset {log.index(bad)}"
    rec = read(gt3x_file(log), salvage=True)
    assert rec.salvaged and rec.salvage_reason == e.value.reason + " (skipped)"
    assert rec.accel is not None and rec.accel.n_samples == 60
    assert rec.accel.gaps == [((T0 + 1) * US, (T0 + 2) * US)]
    assert any("bad checksum" in w for w in rec.warnings)


@pytest.mark.parametrize("cut", [1, 5, 40])
def test_truncated_log(cut: int) -> None:
    log = seconds(random_counts(3, 30))
    with pytest.raises(InputError, match=re.escape("truncated: the record at log.bin offset")):
        read(gt3x_file(log[:-cut]))
    rec = read(gt3x_file(log[:-cut]), salvage=True)
    assert rec.salvaged and rec.accel is not None and rec.accel.n_samples == 60


def test_bad_separator_and_bad_sizes() -> None:
    log = seconds(random_counts(2, 30))
    second = len(record(ACTIVITY2, T0, bytes(180)))
    broken = log[:second] + b"\x55" + log[second + 1 :]
    with pytest.raises(InputError, match=f"no record separator at log.bin offset {second}"):
        read(gt3x_file(broken))
    rec = read(gt3x_file(broken), salvage=True)
    assert rec.accel is not None and rec.accel.n_samples == 30
    with pytest.raises(InputError, match="ACTIVITY record of 7 bytes"):
        read(gt3x_file(record(ACTIVITY2, T0, bytes(7))))


def test_clock_must_advance() -> None:
    counts = random_counts(3, 30)
    log = seconds(counts[:2]) + seconds(counts[2:], start=T0 + 1)
    with pytest.raises(InputError, match="clock does not advance"):
        read(gt3x_file(log))
    rec = read(gt3x_file(log), salvage=True)
    assert rec.accel is not None and rec.accel.n_samples == 60 and rec.salvaged


def test_refused_files(monkeypatch: pytest.MonkeyPatch) -> None:
    old = gt3x_file(b"", members={"activity.bin": b"\x00" * 9, "info.txt": b"Serial Number: NEO1"})
    with pytest.raises(InputError, match=re.escape("older NHANES-format .gt3x")):
        read(old)
    with pytest.raises(InputError, match=re.escape("without log.bin")):
        read(gt3x_file(b"", members={"info.txt": info_txt().encode()}))
    with pytest.raises(InputError, match=re.escape("without info.txt")):
        read(gt3x_file(b"", members={"log.bin": seconds(random_counts(1, 30))}))
    with pytest.raises(InputError, match="no usable Sample Rate"):
        read(gt3x_file(seconds(random_counts(1, 30)), "Serial Number: MOS1\r\n"))
    with pytest.raises(InputError, match="not a readable zip"):
        read(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="compression method 12"):
        read(gt3x_file(seconds(random_counts(1, 30)), method=zipfile.ZIP_BZIP2))
    with pytest.raises(InputError, match="no acceleration records"):
        read(gt3x_file(META))
    monkeypatch.setattr(gt3x, "MAX_LOG_BYTES", 100)
    with pytest.raises(InputError, match="larger than the 4 GiB allowed"):
        read(gt3x_file(seconds(random_counts(1, 30))))


def test_detect() -> None:
    log = seconds(random_counts(1, 30))
    assert gt3x.detect(gt3x_file(log)[:4096])
    assert gt3x.detect(gt3x_file(log, first="info.txt")[:4096])
    assert gt3x.detect(gt3x_file(log, method=zipfile.ZIP_STORED)[:4096])
    assert gt3x.detect(gt3x_file(b"", members={"activity.bin": b"\x00", "info.txt": b"x"})[:4096])
    assert not gt3x.detect(gt3x_file(b"", members={"export.xml": b"<HealthData/>"})[:4096])
    assert not gt3x.detect(gt3x_file(b"", members={"log.bin": b"hello"})[:4096])
    assert not gt3x.detect(gt3x_file(b"", members={"info.txt": b"just notes"})[:4096])
    assert not gt3x.detect(b"\x1e\x00 not a zip")


# --------------------------------------------------------------------------------------------
# any bytes

_LOG = (
    META
    + record(PARAMETERS, T0 - 4, parameters(256.0))
    + seconds(random_counts(3, 30))
    + record(EVENT, T0 + 3, b"\x08")
    + seconds(random_counts(2, 30, 1), typ=ACTIVITY, start=T0 + 6)
)


def _check(data: bytes, salvage: bool) -> None:
    try:
        rec = read(data, salvage=salvage)
    except InputError:
        return
    assert rec.accel is not None
    ts, xyz = samples(rec)
    assert ts.size == rec.accel.n_samples and np.all(np.diff(ts) > 0)
    assert np.all(np.isfinite(xyz))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(_LOG) - 1), st.integers(0, 255)), max_size=5),
    st.integers(0, len(_LOG)),
    st.booleans(),
)
def test_mutated_log(edits: list[tuple[int, int]], cut: int, salvage: bool) -> None:
    log = bytearray(_LOG)
    for at, value in edits:
        log[at] = value
    _check(gt3x_file(bytes(log[: len(log) - cut])), salvage)


_ZIP = gt3x_file(_LOG)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(_ZIP) - 1), st.integers(0, 255)), max_size=4),
    st.integers(0, len(_ZIP)),
    st.booleans(),
)
def test_mutated_zip(edits: list[tuple[int, int]], cut: int, salvage: bool) -> None:
    data = bytearray(_ZIP)
    for at, value in edits:
        data[at] = value
    _check(bytes(data[: len(data) - cut]), salvage)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes(data: bytes) -> None:
    _check(b"PK\x03\x04" + data, False)
