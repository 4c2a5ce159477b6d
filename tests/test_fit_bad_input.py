"""Damaged and hostile input: read() returns a Recording or raises InputError with a specific
reason, the path and a byte offset — never any other exception."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError, TimeAnchorError
from actidose.ingest import fit
from actidose.ingest import fit_writer as fw
from actidose.recording import SENSOR_KINDS, VENDOR_KINDS, Recording

FIT_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "fit"
T0 = np.datetime64("2024-03-01T08:00:00", "s")


def sample_file() -> bytes:
    """60 one-second records (each 6 bytes: header, timestamp, heart_rate) and a session."""
    ts = T0 + np.arange(60).astype("timedelta64[s]")
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=ts[0])
    w.add_records(ts, 100 + np.arange(60.0))
    w.add_session(ts[0], ts[-1])
    return w.to_bytes()


DATA = sample_file()
# header, file_id definition (6 + 5 fields * 3) and data (1 + 13), record definition (6 + 2 * 3)
FIRST_RECORD = 14 + 21 + 14 + 12
RECORD_SIZE = 6


def read(data: bytes, *, salvage: bool = False) -> Recording:
    return fit.read(io.BytesIO(data), path="bad.fit", salvage=salvage)


def error(data: bytes, *, salvage: bool = False) -> InputError:
    with pytest.raises(InputError) as e:
        read(data, salvage=salvage)
    assert e.value.path == "bad.fit"
    return e.value


def with_header(data: bytes, *, data_size: int, fix_crc: bool = True) -> bytes:
    head = bytearray(data[:14])
    head[4:8] = struct.pack("<I", data_size)
    if fix_crc:
        head[12:14] = struct.pack("<H", fw.fit_crc16(bytes(head[:12])))
    return bytes(head) + data[14:]


def wrap(body: bytes) -> bytes:
    """A FIT file around ``body`` with both CRCs right."""
    head = struct.pack("<BBHI4s", 14, 0x20, 2132, len(body), b".FIT")
    head += struct.pack("<H", fw.fit_crc16(head))
    data = head + body
    return data + struct.pack("<H", fw.fit_crc16(data))


def test_sample_layout() -> None:
    assert len(read(DATA).hr) == 60
    assert DATA[FIRST_RECORD - 12] == 0x40 | 5  # the record definition (local 5)
    assert DATA[FIRST_RECORD] == 5 and DATA[FIRST_RECORD + RECORD_SIZE] == 5


def test_empty() -> None:
    e = error(b"")
    assert (e.reason, e.offset) == ("empty file", 0)


def test_not_fit() -> None:
    for data in (
        np.random.default_rng(1).bytes(500),
        b"<?xml version='1.0'?><TrainingCenter",
        b"PK\x03\x04" + bytes(100),
        b"\x0e\x10\x00\x00" + bytes(10),
    ):
        e = error(data)
        assert (e.reason, e.offset) == ("not a FIT file", 0)


def test_bad_header_crc() -> None:
    e = error(with_header(DATA, data_size=len(DATA) - 16, fix_crc=False)[:12] + b"\1\2" + DATA[14:])
    assert (e.reason, e.offset) == ("bad header CRC", 0)


def test_data_size_too_large() -> None:
    data = with_header(DATA, data_size=len(DATA) + 1000)[:-2]  # body runs to end of file
    e = error(data)
    assert (e.reason, e.offset) == (f"truncated at offset {len(data)}", len(data))
    rec = read(data, salvage=True)
    assert rec.salvaged and len(rec.hr) == 60


def test_data_size_too_small_on_a_message_boundary() -> None:
    end = FIRST_RECORD + 30 * RECORD_SIZE  # the body "ends" after 30 records
    e = error(with_header(DATA, data_size=end - 14))
    assert (e.reason, e.offset) == (f"bad CRC at offset {end}", end)
    rec = read(with_header(DATA, data_size=end - 14), salvage=True)
    assert rec.salvaged and rec.salvage_reason == e.reason and len(rec.hr) == 30


def test_data_size_too_small_inside_a_message() -> None:
    end = FIRST_RECORD + 30 * RECORD_SIZE + 3
    e = error(with_header(DATA, data_size=end - 14))
    start = end - 3
    assert e.offset == start
    assert e.reason == (
        f"corrupt data at offset {start}: a message runs past the end of the "
        "data size given in the FIT header"
    )


def test_flipped_byte_is_a_bad_crc() -> None:
    data = bytearray(DATA)
    data[FIRST_RECORD + 20 * RECORD_SIZE + 5] ^= 0x01  # a heart-rate byte: still decodable
    e = error(bytes(data))
    footer = len(DATA) - 2
    assert (e.reason, e.offset) == (f"bad CRC at offset {footer}", footer)
    rec = read(bytes(data), salvage=True)
    assert rec.salvaged and rec.salvage_reason == e.reason and len(rec.hr) == 60
    assert rec.hr.bpm[20] == 121  # 120 ^ 1: decoded, but the CRC says the file is damaged


@pytest.mark.parametrize(
    "cut",
    [
        1,
        5,
        11,
        12,
        13,
        14,
        15,
        40,
        FIRST_RECORD + 1,
        FIRST_RECORD + 17 * RECORD_SIZE + 2,
        len(DATA) - 2,
        len(DATA) - 1,
    ],
)
def test_truncated(cut: int) -> None:
    e = error(DATA[:cut])
    assert (e.reason, e.offset) == (f"truncated at offset {cut}", cut)
    complete = max(0, (cut - FIRST_RECORD) // RECORD_SIZE) if cut > FIRST_RECORD else 0
    if complete:
        rec = read(DATA[:cut], salvage=True)
        assert rec.salvaged and rec.salvage_reason == e.reason
        assert len(rec.hr) == min(complete, 60)
        assert np.array_equal(rec.hr.bpm, 100 + np.arange(min(complete, 60.0)))
    else:  # nothing usable before the damage: salvage still fails
        assert error(DATA[:cut], salvage=True).reason == e.reason


def test_stray_bytes_after_the_file() -> None:
    for junk in (b"\0" * 5, b"\0" * 40):
        e = error(DATA + junk)
        assert e.offset == len(DATA)
        assert e.reason.startswith(f"corrupt data at offset {len(DATA)}: ")
        assert "not another (chained) FIT file" in e.reason
        assert read(DATA + junk, salvage=True).salvaged


def test_second_chained_file_truncated() -> None:
    data = DATA + DATA[:100]
    e = error(data)
    assert e.reason == f"truncated at offset {len(data)}"
    rec = read(data, salvage=True)
    assert len(rec.hr) == 60 + (100 - FIRST_RECORD) // RECORD_SIZE


def test_undefined_local_message() -> None:
    body = bytes([0x07]) + bytes(4)  # data message of a local type never defined
    e = error(wrap(body))
    assert (e.reason, e.offset) == ("corrupt data at offset 14: local message 7 not defined", 14)


def test_errors_escaping_fitdecode_are_wrapped() -> None:
    # a definition with a field of size 0 makes fitdecode raise a bare ValueError
    body = bytes([0x40, 0, 0]) + struct.pack("<HB", 20, 1) + bytes([3, 0, 2]) + bytes([0x00])
    e = error(wrap(body))
    assert (e.reason, e.offset) == ("corrupt data at offset 23: ValueError: size", 23)


# -- property tests ------------------------------------------------------------------------


def check(data: bytes, salvage: bool) -> None:
    """The contract: a Recording, or an InputError naming the file and (unless it is about
    time placement) a byte offset within the data."""
    try:
        rec = read(data, salvage=salvage)
    except TimeAnchorError as e:
        assert e.path == "bad.fit" and e.reason
        return
    except InputError as e:
        assert e.path == "bad.fit" and e.reason
        assert isinstance(e.offset, int) and 0 <= e.offset <= len(data)
        return
    assert isinstance(rec, Recording) and rec.format == "fit"
    assert rec.salvaged == (rec.salvage_reason is not None)
    assert salvage or not rec.salvaged
    assert rec.hr.ts.dtype == np.dtype("datetime64[us]") and len(rec.hr.ts) == len(rec.hr.bpm)
    assert rec.rr.ts.dtype == np.dtype("datetime64[us]") and len(rec.rr.ts) == len(rec.rr.rr_ms)
    for v in rec.vendor:
        assert v.kind in VENDOR_KINDS and len(v.start) == len(v.value)
        assert np.all(v.duration_s >= 0)
    assert rec.sensor is None or rec.sensor in SENSOR_KINDS


GLOBALS = [0, 18, 19, 20, 21, 23, 34, 55, 78, 103, 132, 162, 206, 207, 211, 290, 9999]
FIELDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 17, 19, 24, 25, 26, 27, 33, 34, 253, 254]
BASES = [
    0x00,
    0x01,
    0x02,
    0x83,
    0x84,
    0x85,
    0x86,
    0x07,
    0x88,
    0x89,
    0x0A,
    0x8B,
    0x8C,
    0x0D,
    0x8E,
    0x8F,
    0x90,
    0x55,
]


@st.composite
def fit_bodies(draw: st.DrawFn) -> bytes:
    """Well-framed FIT bodies (definitions followed by data messages of the defined length,
    normal or compressed-timestamp headers) with arbitrary field layouts and values: this gets
    past fitdecode's framing into our handling of odd values."""
    body = bytearray()
    for _ in range(draw(st.integers(1, 6))):
        local = draw(st.integers(0, 15))
        fields = draw(
            st.lists(
                st.tuples(st.sampled_from(FIELDS), st.integers(1, 16), st.sampled_from(BASES)),
                max_size=6,
            )
        )
        arch = draw(st.sampled_from([0, 1]))
        gnum = struct.pack("<H" if arch == 0 else ">H", draw(st.sampled_from(GLOBALS)))
        body += bytes([0x40 | local, 0, arch]) + gnum + bytes([len(fields)])
        body += b"".join(bytes(f) for f in fields)
        size = sum(f[1] for f in fields)
        for _ in range(draw(st.integers(0, 4))):
            if local < 4 and draw(st.booleans()):
                header = 0x80 | (local << 5) | draw(st.integers(0, 31))
            else:
                header = local
            body += bytes([header]) + draw(st.binary(min_size=size, max_size=size))
    return bytes(body)


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=2000), st.booleans())
def test_arbitrary_bytes(data: bytes, salvage: bool) -> None:
    check(data, salvage)


@FAST
@given(st.binary(max_size=600), st.booleans())
def test_arbitrary_body_behind_a_valid_header(body: bytes, salvage: bool) -> None:
    check(wrap(body), salvage)
    check(wrap(body)[:-2], salvage)


@FAST
@given(fit_bodies(), st.booleans())
def test_well_framed_nonsense(body: bytes, salvage: bool) -> None:
    check(wrap(body), salvage)


def seeds() -> list[bytes]:
    out = [DATA]
    w = fw.FitWriter()
    w.add_file_id(type=32, serial=9, time_created=T0)
    w.add_monitoring(T0 + np.arange(0, 6000, 60).astype("timedelta64[s]"), np.full(100, 60.0))
    w.add_hr_messages(
        np.datetime64("2024-03-01T08:00:00.5", "us") + np.arange(40).astype("timedelta64[s]"),
        np.full(40, 150),
    )
    w.add_timestamp_correlation(T0, 50)
    w.add_records(np.arange(50, 80), np.full(30, 120.0), compressed_timestamps=True)
    w.add_activity(T0, 3600)
    out.append(w.to_bytes())
    # RR, vendor series and sensor facts
    w = fw.FitWriter()
    w.add_file_id(type=32, serial=9, time_created=T0)
    w.add_device_info(T0, device_index=1, source_type="antplus", device_type=120)
    w.add_monitoring_info(T0, local_offset_s=3600, resting_metabolic_rate=1600)
    w.add_monitoring(
        T0 + np.arange(0, 3000, 300).astype("timedelta64[s]"),
        np.full(10, 60.0),
        activity_type="walking",
        cycles=np.arange(10) * 50,
        active_calories=np.arange(10),
        moderate_minutes=1,
    )
    w.add_monitoring_hr_data(T0, resting_hr=50, current_day_resting_hr=49)
    w.add_event(T0)
    w.add_records(T0 + np.arange(3).astype("timedelta64[s]"), np.full(3, 70.0))
    w.add_hrv([800, 810, 820])
    w.add_beat_intervals(T0, [700, 710], timestamp_ms=5)
    out.append(w.to_bytes())
    for name in (
        "garmin-fenix-5-run.fit",
        "garmin-edge-820-bike.fit",
        "DeveloperData.fit",
        "antfs-dump.63.fit",
    ):
        if (FIT_DIR / name).is_file():
            out.append((FIT_DIR / name).read_bytes())
    return out


SEEDS = seeds()
mutation = st.one_of(
    st.tuples(st.just("set"), st.floats(0, 1), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("cut"), st.floats(0, 1), st.just(0)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(SEEDS))), st.lists(mutation, min_size=1, max_size=4), st.booleans()
)
def test_mutated_files(
    seed: int, mutations: list[tuple[str, float, int | bytes]], salvage: bool
) -> None:
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
    check(bytes(data), salvage)
