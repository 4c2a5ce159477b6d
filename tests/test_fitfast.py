"""Units of the columnar FIT decoder: the chunked CRC, the walk over record headers (runs and
alternating runs), column decoding (byte order, invalid values, arrays), compressed timestamps
and what makes it hand a file to the reference decoder."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.ingest import fit_writer as fw
from actidose.ingest import fitfast as ff
from actidose.ingest import fitfast_build as fb
from actidose.ingest.fitfast_crc import crc16

from .conftest import need_corpus

T0 = np.datetime64("2024-03-01T08:00:00", "s")


# -- CRC -----------------------------------------------------------------------------------


def test_crc_of_known_values() -> None:
    assert crc16(b"") == 0
    assert crc16(b"123456789") == 0xBB3D  # CRC-16/ARC check value
    data = np.random.default_rng(0).bytes(100_000)
    assert crc16(data) == fw.fit_crc16(data)
    assert crc16(data[50_000:], crc16(data[:50_000])) == crc16(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=5000), st.integers(0, 0xFFFF))
def test_crc_equals_the_bytewise_algorithm(data: bytes, start: int) -> None:
    assert crc16(data, start) == fw.fit_crc16(data, start)
    assert crc16(np.frombuffer(data, np.uint8), start) == fw.fit_crc16(data, start)


def test_crc_of_large_buffers_in_chunks() -> None:
    rng = np.random.default_rng(1)
    for n in (511, 512, 513, 4096 * 3 + 7, 1_000_003):
        data = rng.bytes(n)
        assert crc16(data) == fw.fit_crc16(data), n


# -- the walk ------------------------------------------------------------------------------


def naive_offsets(data: bytes) -> dict[int, list[int]]:
    """Offsets of every data message by global number, walking one record at a time."""
    out: dict[int, list[int]] = {}
    pos = 0
    while pos < len(data):
        hs = data[pos]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        p, end = pos + hs, pos + hs + size
        local: dict[int, tuple[int, int]] = {}
        while p < end:
            h = data[p]
            if h & 0x80 == 0 and h & 0x40:
                big = data[p + 2] == 1
                gnum = struct.unpack_from(">H" if big else "<H", data, p + 3)[0]
                nf = data[p + 5]
                q = p + 6 + 3 * nf
                sz = sum(data[p + 6 + 3 * i + 1] for i in range(nf))
                if h & 0x20:
                    nd = data[q]
                    sz += sum(data[q + 1 + 3 * i + 1] for i in range(nd))
                    q += 1 + 3 * nd
                local[h & 0x0F] = (gnum, sz)
                p = q
                continue
            loc = (h >> 5) & 3 if h & 0x80 else h & 0x0F
            gnum, sz = local[loc]
            out.setdefault(gnum, []).append(p)
            p += 1 + sz
        pos = end + 2
    return out


def scanned_offsets(s: ff.Scan) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for d in s.defs:
        out.setdefault(d.global_num, []).extend(d.offsets.tolist())
    return {k: sorted(v) for k, v in out.items() if v}


def interleaved() -> bytes:
    """Runs of one message, alternating pairs (record, hrv), compressed-timestamp runs and
    definitions in between."""
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    ts = T0 + np.arange(400).astype("timedelta64[s]")
    w.add_records(ts[:100], np.full(100, 70.0))
    for i in range(100, 200):
        w.add_records(ts[i : i + 1], [71.0])
        w.add_hrv([800])
    w.add_records(ts[200:300], np.full(100, 72.0), compressed_timestamps=True)
    for i in range(300, 340):
        w.add_records(ts[i : i + 1], [73.0])
        w.add_hrv([700, 710])
        w.add_event(ts[i])
    w.add_records(ts[340:], np.full(60, 74.0), distance_m=np.arange(60.0))
    return w.to_bytes()


def test_walk_finds_every_message() -> None:
    for data in (interleaved(), interleaved() + interleaved()):
        s = ff.scan(data)
        assert s.damage is None
        assert scanned_offsets(s) == naive_offsets(data)
        assert len(s.parts) == data.count(b".FIT")


def test_walk_of_corpus_files_finds_every_message() -> None:
    folder = need_corpus() / "fit"
    for name in (
        "garmin-fr935-cr.fit",
        "2019-02-17-062644-ELEMNT-297E-195-0.fit",
        "sample_mulitple_header.fit",
        "slither-running.fit",
        "garmin-edge-500-activity.fit",
    ):
        data = (folder / name).read_bytes()
        s = ff.scan(data)
        assert s.damage is None, name
        assert scanned_offsets(s) == naive_offsets(data), name


def test_identical_definitions_share_one_layout() -> None:
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    ts = T0 + np.arange(10).astype("timedelta64[s]")
    for i in range(10):
        w.add_records(ts[i : i + 1], [60.0 + i])
        w.add_records(ts[i : i + 1], [60.0 + i], distance_m=[1.0])  # another layout
        for _ in range(13):  # push both out of the 12 normal local types
            w.add_message(0x1234, [(i % 5 + 1, fw.UINT8, 1)])
    s = ff.scan(w.to_bytes())
    records = [d for d in s.defs if d.global_num == 20]
    assert len(records) == 2
    assert [d.offsets.size for d in records] == [10, 10]


def test_scan_reports_damage_like_the_reference() -> None:
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    w.add_records(T0 + np.arange(50).astype("timedelta64[s]"), np.full(50, 60.0))
    data = w.to_bytes()
    s = ff.scan(data[:-20], base=100)
    assert s.damage is not None
    end = 100 + len(data) - 20
    assert (s.damage.reason, s.damage.offset) == (f"truncated at offset {end}", end)
    broken = bytearray(data)
    broken[-1] ^= 1
    s = ff.scan(bytes(broken))
    assert s.damage is not None and s.damage.reason == f"bad CRC at offset {len(data) - 2}"
    assert sum(d.offsets.size for d in s.defs if d.global_num == 20) == 50  # all kept


# -- columns -------------------------------------------------------------------------------


@pytest.mark.parametrize("big", [False, True])
def test_columns_in_either_byte_order(big: bool) -> None:
    w = fw.FitWriter(big_endian=big)
    w.add_file_id(serial=1, time_created=T0)
    w.add_message(
        0x7777,
        [
            (1, fw.UINT16, 0xABCD),
            (2, fw.SINT32, -5),
            (3, fw.UINT32, None),  # invalid
            (4, fw.FLOAT32, 1.5),
            (5, fw.UINT16, [1, None, 3]),
            (6, fw.BYTE, b"\xff\xff"),  # all 0xFF: invalid
            (7, fw.UINT32Z, 0),  # z type: 0 is invalid
        ],
    )
    s = ff.scan(w.to_bytes())
    (d,) = [d for d in s.defs if d.global_num == 0x7777]
    assert d.big_endian is big

    def col(num: int) -> ff.Column:
        f = d.last(num)
        assert f is not None
        return ff.column(s, d, f)

    assert col(1).values.tolist() == [0xABCD] and col(1).valid.tolist() == [True]
    assert col(2).values.tolist() == [-5]
    assert col(3).valid.tolist() == [False]
    assert col(4).values.tolist() == [1.5]
    c5 = col(5)
    assert c5.count == 3 and c5.values.tolist() == [[1, 0xFFFF, 3]]
    assert c5.valid.tolist() == [[True, False, True]]
    assert col(6).kind == "b" and col(6).valid.tolist() == [False]
    assert col(7).valid.tolist() == [False]
    # the same values one message at a time, as the reference decoder gives them
    raw = ff.raw_values(s.data, int(d.offsets[0]), d)
    assert raw == [0xABCD, -5, None, 1.5, (1, None, 3), None, None]


def test_compressed_timestamps_roll_over_from_the_last_full_one() -> None:
    """5-bit offsets that roll over 32 and repeat a second: rebuilt from the last full
    timestamp, which any message may carry."""
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    base = fw.fit_seconds(T0)
    t = base + np.array([0, 1, 20, 40, 40, 45, 76])
    w.add_records(t, np.full(t.size, 60.0), compressed_timestamps=True)
    w.add_event(base + 1000)  # a full timestamp in another message
    w.add_records(np.array([base + 1000, base + 1003]), [61.0, 62.0], compressed_timestamps=True)
    s = ff.scan(w.to_bytes())
    b = fb._Builder(s)
    b.timestamps()
    got = sorted(
        (int(p), int(v))
        for d in b.used
        if d.global_num == 20
        for p, v in zip(d.offsets, b.ts_of(d)[0], strict=True)
    )
    assert [v for _, v in got] == [*t.tolist(), base + 1000, base + 1003]


# -- what goes to the reference decoder ------------------------------------------------------


def definition(global_num: int, fields: list[tuple[int, int, int]], local: int = 0) -> bytes:
    out = bytes([0x40 | local, 0, 0]) + struct.pack("<HB", global_num, len(fields))
    return out + b"".join(bytes(f) for f in fields)


def wrap(body: bytes) -> bytes:
    head = struct.pack("<BBHI4s", 14, 0x20, 2132, len(body), b".FIT")
    head += struct.pack("<H", fw.fit_crc16(head))
    data = head + body
    return data + struct.pack("<H", fw.fit_crc16(data))


@pytest.mark.parametrize(
    ("fields", "payload", "why"),
    [
        ([(253, 4, 0x88)], struct.pack("<f", 1e9), "timestamp field of an unusual type"),
        ([(253, 8, 0x86)], bytes(8), "timestamp field of an unusual type"),
        ([(3, 8, 0x8F)], bytes(8), "64-bit"),
        ([(8, 4, 0x84)], bytes(4), "component field record.compressed_speed_distance"),
        ([(3, 0, 2)], b"", "size 0"),
    ],
)
def test_layouts_the_reference_decodes_differently(
    fields: list[tuple[int, int, int]], payload: bytes, why: str
) -> None:
    data = wrap(definition(20, fields) + bytes([0]) + payload)
    with pytest.raises(ff.Fallback) as e:
        ff.scan(data)
    assert why in e.value.reason
    # an unused definition does not matter
    s = ff.scan(wrap(definition(20, fields)))
    assert s.damage is None


def test_hr_event_timestamp_12_without_a_timestamp_before_goes_to_the_reference() -> None:
    # an hr message with event_timestamp (9) then event_timestamp_12 (10), no timestamp ever
    body = definition(132, [(9, 4, 0x86), (6, 1, 2)]) + bytes([0]) + struct.pack("<IB", 5, 60)
    body += definition(132, [(10, 3, 0x0D), (6, 2, 2)], local=1) + bytes([1, 1, 2, 3, 60, 61])
    s = ff.scan(wrap(body))
    with pytest.raises(ff.Fallback, match="event_timestamp_12"):
        fb._Builder(s).state()
