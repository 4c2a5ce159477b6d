"""The BLE spool: record framing, torn-record detection, exactly-once storing and recovery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.errors import InputError
from actidose.ingest import spool as sp
from actidose.storage.db import connect

from .conftest import add_p

T0 = 1_709_287_200_000_000


def hrm(bpm: int, rr: tuple[int, ...] = (), contact: bool = True) -> bytes:
    flags = 0x14 | (0x02 if contact else 0) | (0x10 if rr else 0)
    return bytes([flags, bpm]) + b"".join(r.to_bytes(2, "little") for r in rr)


def write_session(path: Path, n: int = 120, *, disconnect_at: int | None = 60) -> dict:
    header = {
        "session_uuid": f"uuid-{path.stem}",
        "participant_id": "P001",
        "device_address": "AA",
        "device_name": "Polar H10",
        "started_us": T0,
    }
    with sp.SpoolWriter(path, header) as w:
        w.event("connected", T0)
        w.event("device_info", T0, manufacturer="Polar Electro Oy", model="H10", serial="X1")
        t = T0
        for i in range(n):
            t += 1_000_000
            if i == disconnect_at:
                w.event("disconnected", t)
                t += 30_000_000
                w.event("connected", t)
            w.append(sp.HRM, hrm(100 + i % 50, (1024, 512)), t)
    return header


def test_roundtrip_and_torn_tail(tmp_path: Path) -> None:
    p = tmp_path / "s.spool"
    write_session(p)
    c = sp.read_spool(p)
    assert c.torn_at_offset is None and c.header["participant_id"] == "P001"
    assert [r.seq for r in c.records] == list(range(1, len(c.records) + 1))
    whole = p.read_bytes()
    # cut the last record in the middle: everything before it survives, the cut is reported
    p.write_bytes(whole[:-3])
    c2 = sp.read_spool(p)
    assert len(c2.records) == len(c.records) - 1
    last_len = len(sp.encode_record(0, 0, sp.HRM, c.records[-1].payload))
    assert c2.torn_at_offset == len(whole) - last_len
    assert "cut short" in (c2.torn_reason or "")
    # a cut inside the length prefix
    p.write_bytes(whole[: len(whole) - last_len + 5])
    assert sp.read_spool(p).torn_at_offset == len(whole) - last_len
    # a flipped byte: the crc stops reading there
    bad = bytearray(whole)
    bad[-2] ^= 0xFF
    p.write_bytes(bytes(bad))
    c3 = sp.read_spool(p)
    assert len(c3.records) == len(c.records) - 1 and c3.torn_reason == "record fails its crc32"


def test_not_a_spool(tmp_path: Path) -> None:
    p = tmp_path / "x.spool"
    p.write_bytes(b"hello")
    with pytest.raises(InputError, match="bad magic"):
        sp.read_spool(p)
    p.write_bytes(sp.MAGIC + b"\x01")
    with pytest.raises(InputError, match="header"):
        sp.read_spool(p)


def test_rr_beat_times_end_at_receive_time() -> None:
    recs = [sp.SpoolRecord(1, T0, sp.HRM, hrm(60, (1024, 512)))]
    d = sp.decode(recs, [])
    assert d.rr_ms.tolist() == [1000.0, 500.0]
    assert d.rr_ts_us.tolist() == [T0 - 500_000, T0]
    assert d.hr_ts_us.tolist() == [T0] and d.hr_bpm.tolist() == [60.0]


def test_recover_exactly_once_and_torn(tmp_path: Path, db_path: Path) -> None:
    with connect(db_path) as con:
        add_p(con)
    spools = tmp_path / "spools"
    p = spools / "a.spool"
    spools.mkdir()
    write_session(p, 120)
    p.write_bytes(p.read_bytes()[:-4])  # a crash mid-write of the last notification
    r = CliRunner()
    from actidose.sync_cli import cli_for_tests

    args = ["--db", str(db_path), "sync", "--recover", "--spool-dir", str(spools)]
    out1 = r.invoke(cli_for_tests(), args)
    assert out1.exit_code == 0, out1.output
    assert "torn record at byte" in out1.output
    with connect(db_path) as con:
        rows = con.execute("SELECT count(*), count(DISTINCT ts) FROM hr_samples").fetchone()
        assert rows == (119, 119)
        rr = con.execute("SELECT count(*) FROM rr_intervals").fetchone()
        assert rr == (238,)
        src = con.execute(
            "SELECT format, kind, device, serial, sensor, status FROM sources"
        ).fetchone()
        assert src == ("ble", "activity", "Polar Electro Oy H10", "X1", "chest_strap", "imported")
        gaps = json.loads(con.execute("SELECT gaps FROM ble_sync").fetchone()[0])
        assert len(gaps) == 1 and gaps[0]["end_us"] - gaps[0]["start_us"] == 30_000_000
        assert con.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
        before = con.execute("SELECT * FROM hr_samples ORDER BY ts").fetchall()
    out2 = r.invoke(cli_for_tests(), args)
    assert out2.exit_code == 0
    with connect(db_path) as con:
        assert con.execute("SELECT * FROM hr_samples ORDER BY ts").fetchall() == before
        assert con.execute("SELECT count(*) FROM sources").fetchone() == (1,)


def test_no_contact_is_invalid_not_stored(tmp_path: Path, db_path: Path) -> None:
    with connect(db_path) as con:
        add_p(con)
        header = {"session_uuid": "u1", "participant_id": "P001", "device_name": "Polar Verity"}
        recs = [
            sp.SpoolRecord(i + 1, T0 + i * 1_000_000, sp.HRM, hrm(90, contact=i % 2 == 0))
            for i in range(10)
        ]
        res = sp.store_records(con, header, recs, spool_path="x")
        assert res.new_samples == 5 and res.n_invalid == 5
        row = con.execute("SELECT n_samples, n_invalid, sensor FROM sources").fetchone()
        assert row == (5, 5, "optical")


def test_other_participant_refused(db_path: Path) -> None:
    with connect(db_path) as con:
        add_p(con)
        add_p(con, "P002")
        recs = [sp.SpoolRecord(1, T0, sp.HRM, hrm(90))]
        sp.store_records(con, {"session_uuid": "u", "participant_id": "P001"}, recs, spool_path="x")
        with pytest.raises(InputError, match="stored for participant P001"):
            sp.store_records(
                con, {"session_uuid": "u", "participant_id": "P002"}, recs, spool_path="x"
            )


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(1, 125), max_size=6))
def test_batching_does_not_matter(
    tmp_path_factory: pytest.TempPathFactory, cuts: list[int]
) -> None:
    """Storing a spool in any batches (overlapping retries included) equals storing it whole."""
    d = tmp_path_factory.mktemp("b")
    p = d / "s.spool"
    header = write_session(p, 120)
    recs = sp.read_spool(p).records
    results: list[tuple[list[tuple[int, int]], object]] = []
    for split in (sorted(cuts), []):
        db = d / f"db{len(results)}.duckdb"
        with connect(db) as con:
            add_p(con)
            start = 0
            for c in [*split, len(recs)]:
                sp.store_records(con, header, recs[max(start - 2, 0) : c], spool_path=str(p))
                start = c
            hr = con.execute("SELECT epoch_us(ts), bpm FROM hr_samples ORDER BY 1").fetchall()
            gaps = con.execute("SELECT gaps FROM ble_sync").fetchone()
            results.append((hr, gaps))
    assert results[0] == results[1]
    assert len(results[0][0]) == 120 and np.all(np.diff([r[0] for r in results[0][0]]) > 0)


# --------------------------------------------------------------------------- PMD accelerometer
def _compressed_frame(sensor_ns: int, ref: tuple[int, int, int], deltas: list[tuple]) -> bytes:
    """Delta-compressed ACC frame type 1 (0x81): int16 reference sample, one block of 8-bit
    deltas (8-bit values packed LSB first are plain int8 bytes)."""
    body = b"".join(v.to_bytes(2, "little", signed=True) for v in ref)
    body += bytes([8, len(deltas)]) + b"".join(
        v.to_bytes(1, "little", signed=True) for d in deltas for v in d
    )
    return bytes([2]) + sensor_ns.to_bytes(8, "little") + bytes([0x81]) + body


def test_decode_pmd_compressed_chained_and_reset_after_disconnect(tmp_path: Path) -> None:
    offset_us = 757_000_000_000_000  # UTC − sensor clock
    settings = {"sample_rate_hz": 50, "resolution_bits": 16, "range_g": 8, "factor": 0.5}
    t_a = 10_000_000_000_000  # sensor ns of frame A's last sample
    frames = [
        (t_a, (10, -20, 2000), [(1, 2, 3), (-1, 0, 1)]),
        (t_a + 60_000_000, (12, -18, 2004), [(0, 0, 0), (2, 2, 2)]),
        (t_a + 600_000_000_000, (0, 0, 2000), [(4, 4, 4), (4, 4, 4)]),
    ]
    header = {"session_uuid": "u-acc", "participant_id": "P001", "started_us": T0}
    path = tmp_path / "acc.spool"
    with sp.SpoolWriter(path, header) as w:
        w.event("pmd_settings", T0, **settings)
        for i, (ts, ref, deltas) in enumerate(frames):
            if i == 2:
                w.event("disconnected", T0)
                w.event("pmd_settings", T0, **settings)
                w.append(sp.PMD, b"\x02 not a frame", T0)  # damaged: counted, skipped
            recv = ts // 1000 + offset_us + (5_000 if i == 1 else 0)  # one frame delayed
            w.append(sp.PMD, _compressed_frame(ts, ref, deltas), recv)
    dec = sp.decode_pmd(sp.read_spool(path).records)
    assert dec.n_frames == 4 and dec.n_bad_frames == 1 and dec.n_dropped_samples == 0
    assert dec.offset_us == offset_us  # the median ignores the delayed frame
    step = 20_000
    a_last = t_a // 1000 + offset_us
    expected = [a_last - 2 * step, a_last - step, a_last]  # A: spread back at 1/rate
    expected += [a_last + step, a_last + 2 * step, a_last + 3 * step]  # B: chained from A
    c_last = (t_a + 600_000_000_000) // 1000 + offset_us
    expected += [c_last - 2 * step, c_last - step, c_last]  # C: reset after the disconnect
    np.testing.assert_array_equal(dec.ts_us, expected)
    raw_a = np.array([[10, -20, 2000], [11, -18, 2003], [10, -18, 2004]])
    np.testing.assert_allclose(dec.xyz_g[:3], raw_a * 0.5 / 1000, rtol=1e-6)
    assert dec.xyz_g.dtype == np.float32 and dec.sample_rate_hz == 50 and dec.range_g == 8


def test_store_accel_needs_source_and_runs_once(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    write_session(path, 30, disconnect_at=None)
    c = sp.read_spool(path)
    with connect(tmp_path / "db.duckdb") as con:
        add_p(con)
        assert sp.store_accel(con, c.header, c.records) == 0  # no source yet, no PMD frames
        sp.store_records(con, c.header, c.records, spool_path=str(path))
        assert sp.store_accel(con, c.header, c.records) == 0  # HR only: nothing to store
        n = con.execute("SELECT count(*) FROM accel_processing").fetchone()
        assert n == (0,)
