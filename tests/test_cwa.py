"""actidose.ingest.cwa: Axivity .cwa files (AX3 packed/unpacked, AX6 with gyroscope).

Three tiers: synthetic files made here by :func:`write_cwa` (a small vectorized CWA writer, also
used by ``benchmarks/cwa_bench.py``); the shared corpus' real files, compared with a plain
per-block pure-Python decoder written here from cwa.h (:func:`reference_decode`) and, when
installed, with scikit-digital-health and cwa-reader-rs; and hypothesis tests that any bytes
give a Recording or an InputError.
"""

from __future__ import annotations

import bisect
import dataclasses
import io
import math
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError, TimeAnchorError
from actidose.ingest import cwa
from actidose.recording import ReadContext, Recording

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
ACCEL = CORPUS / "accel"
CORRUPT = "ax3_testfile_corrupt_blocks_0_13_14_142_143_144.cwa"
UTC = ReadContext(timezone="UTC")
US = 1_000_000


# ------------------------------------------------------------------------------------------
# A small CWA writer (cwa.h), vectorized over blocks

#: samples per block and numAxesBPS for each layout
LAYOUTS = {"packed": (120, 0x30), "unpacked": (80, 0x32), "ax6": (40, 0x62)}


def pack_time(local_s: np.ndarray) -> np.ndarray:
    """Seconds since 1970-01-01 local -> cwa packed date-times (YYYYYYMM MMDDDDDh hhhhmmmm
    mmssssss, years since 2000)."""
    s = np.asarray(local_s, np.int64)
    day = (s // 86_400).astype("datetime64[D]")
    tod = s % 86_400
    month = day.astype("datetime64[M]")
    y = month.astype("datetime64[Y]").astype(np.int64) + 1970
    mo = month.astype(np.int64) % 12 + 1
    d = (day - month.astype("datetime64[D]")).astype(np.int64) + 1
    h, mi, sec = tod // 3600, tod // 60 % 60, tod % 60
    return (((y - 2000) << 26) | (mo << 22) | (d << 17) | (h << 12) | (mi << 6) | sec).astype(
        np.uint32
    )


def _rate_code(rate_hz: float, range_g: int) -> int:
    code = 15 - round(math.log2(3200 / rate_hz))
    return code | ({16: 0, 8: 1, 4: 2, 2: 3}[range_g] << 6)


def encode_packed(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) ints in 1/256 g -> packed uint32 words with the smallest exponent that fits, and
    the values they decode to (1/256 g units)."""
    raw = np.asarray(raw, np.int64)
    hi, lo = raw.max(axis=1), raw.min(axis=1)
    e = np.zeros(raw.shape[0], np.int64)
    for k in (1, 2, 3):  # the smallest exponent whose shifted values fit in 10 signed bits
        e[((hi >> (k - 1)) > 511) | ((lo >> (k - 1)) < -512)] = k
    v = np.clip(raw >> e[:, None], -512, 511)
    words = (v[:, 0] & 0x3FF) | ((v[:, 1] & 0x3FF) << 10) | ((v[:, 2] & 0x3FF) << 20) | (e << 30)
    return words.astype(np.uint32), v << e[:, None]


@dataclasses.dataclass
class Written:
    """Ground truth of a synthetic file: true local time (us) and decoded value (g) of each
    sample, only when asked for (``keep=True``)."""

    ts_local_us: np.ndarray
    xyz: np.ndarray


def write_cwa(
    out: BinaryIO,
    *,
    n_samples: int,
    start_local: str = "2024-03-04T09:00:00",
    rate_hz: float = 100.0,
    true_rate_hz: float | None = None,
    range_g: int = 8,
    layout: str = "packed",
    xyz: np.ndarray | None = None,
    seed: int = 0,
    fractional: bool = True,
    device_id: int = 43_210,
    session_id: int = 7,
    hardware: int | None = None,
    last_change_local: str | None = None,
    corrupt: Sequence[int] = (),
    keep: bool = True,
    group: int = 16_384,
) -> Written | None:
    """Write a .cwa file of ``n_samples`` samples (g, (n, 3); random when ``xyz`` is None) taken
    at ``true_rate_hz`` (the device's real rate, default the nominal ``rate_hz``) from
    ``start_local``. Each block stamps the time of a sample a little after its last one, as the
    firmware does (``fractional``: with deviceFractional, else whole seconds only). Blocks in
    ``corrupt`` get their timestamp/light/temperature zeroed after the checksum was set (as
    GGIRread's corrupt test file). ``group`` blocks are built at a time, so a week fits in
    little memory."""
    cap, axes_bps = LAYOUTS[layout]
    true_rate = true_rate_hz or rate_hz
    rate_code = _rate_code(rate_hz, range_g)
    t0_us = np.datetime64(start_local, "us").astype(np.int64)
    hw = hardware if hardware is not None else (0x64 if layout == "ax6" else 0x17)
    change = np.datetime64(last_change_local or start_local, "s").astype(np.int64)

    header = bytearray(b"\xff" * cwa.HEADER_SIZE)
    struct.pack_into(
        "<2sHBHIH",
        header,
        0,
        b"MD",
        1020,
        hw,
        device_id & 0xFFFF,
        session_id,
        (device_id >> 16) if device_id >> 16 else 0xFFFF,
    )
    struct.pack_into("<IIIB", header, 13, 0, 0xFFFFFFFF, 0, 0)
    header[36] = rate_code
    struct.pack_into("<IB", header, 37, int(pack_time(np.array([change]))[0]), 48)
    header[35] = 0xFF if layout != "ax6" else 0x02
    header[64:512] = b"_sc=test".ljust(448, b" ")
    out.write(bytes(header))

    n_blocks = -(-n_samples // cap)
    rng = np.random.default_rng(seed)
    truth_t, truth_v = [], []
    for g0 in range(0, n_blocks, group):
        k = np.arange(g0, min(g0 + group, n_blocks))
        j0 = k * cap
        n = np.minimum(cap, n_samples - j0)
        j1 = int(j0[0]), int(j0[-1] + n[-1])
        if xyz is None:
            g = (rng.standard_normal((j1[1] - j1[0], 3)) * 0.3 + [0.0, 0.0, 1.0]).astype(np.float64)
        else:
            g = np.asarray(xyz[j1[0] : j1[1]], np.float64)
        blk = np.zeros((k.size, cwa.BLOCK_SIZE), np.uint8)
        valid = (np.arange(cap)[None, :] < n[:, None]).reshape(-1)
        if layout == "packed":
            words, decoded = encode_packed(np.rint(g * 256).astype(np.int64))
            body = np.zeros(k.size * cap, np.uint32)
            body[valid] = words
            blk[:, 30:510] = body.reshape(k.size, cap).view(np.uint8)
            values = decoded / 256
        else:
            axes = 3 if layout == "unpacked" else 6
            unit = 256 if layout == "unpacked" else 2048
            raw = np.clip(np.rint(g * unit), -32768, 32767).astype(np.int16)
            body = np.zeros((k.size * cap, axes), np.int16)
            if axes == 6:
                body[valid, 0:3] = rng.integers(-2000, 2000, (raw.shape[0], 3))  # gyroscope
                body[valid, 3:6] = raw
            else:
                body[valid] = raw
            blk[:, 30 : 30 + cap * axes * 2] = body.reshape(k.size, -1).view(np.uint8)
            values = raw / unit
        # time anchor: a sample a little after the block's last (the FIFO position)
        q = j0 + n + k % 21
        t_q = t0_us + np.rint(q * (US / true_rate)).astype(np.int64)
        whole = t_q // US
        if fractional:
            frac16 = ((t_q - whole * US) * 65536 // US) & ~1
            dev_frac = 0x8000 | (frac16 >> 1)
            offset = (q - j0) - ((frac16 * int(rate_hz)) >> 16)
        else:
            whole = -(-(t0_us + np.rint(j0 * (US / true_rate)).astype(np.int64)) // US)
            q_whole = np.rint((whole * US - t0_us) * true_rate / US).astype(np.int64)
            dev_frac = np.full(k.size, device_id & 0x7FFF)
            offset = q_whole - j0
        head = np.zeros(
            k.size,
            np.dtype(
                [
                    ("magic", "<u2"),
                    ("length", "<u2"),
                    ("frac", "<u2"),
                    ("session", "<u4"),
                    ("seq", "<u4"),
                    ("ts", "<u4"),
                    ("light", "<u2"),
                    ("temp", "<u2"),
                    ("events", "u1"),
                    ("battery", "u1"),
                    ("rate", "u1"),
                    ("axes", "u1"),
                    ("offset", "<i2"),
                    ("count", "<u2"),
                ]
            ),
        )
        head["magic"], head["length"], head["frac"] = 0x5841, 508, dev_frac
        head["session"], head["seq"], head["ts"] = session_id, k, pack_time(whole)
        head["light"] = (3 << 13 if layout == "ax6" else 0) | 300
        head["temp"], head["battery"], head["rate"] = 350, 180, rate_code
        head["axes"], head["offset"], head["count"] = axes_bps, offset, n
        blk[:, :30] = head.view(np.uint8).reshape(k.size, 30)
        words16 = blk.view("<u2")
        words16[:, 255] = (-words16[:, :255].sum(axis=1, dtype=np.int64)) % 65536
        for c in corrupt:
            if g0 <= c < g0 + k.size:
                blk[c - g0, 14:22] = 0
        out.write(blk.tobytes())
        if keep:
            truth_t.append(t0_us + np.rint(np.arange(*j1) * (US / true_rate)).astype(np.int64))
            truth_v.append(values)
    if not keep:
        return None
    return Written(np.concatenate(truth_t), np.concatenate(truth_v).astype(np.float32))


def make_cwa(**kw: Any) -> tuple[bytes, Written]:
    buf = io.BytesIO()
    truth = write_cwa(buf, **kw)
    assert truth is not None
    return buf.getvalue(), truth


# ------------------------------------------------------------------------------------------
# A plain per-block reference decoder (loops on purpose), from cwa.h and cwa_load.py


def _ref_time(v: int) -> float | None:
    """Packed date-time -> seconds since 1970 (local), None when not a valid date."""
    import calendar

    y, mo, d = ((v >> 26) & 0x3F) + 2000, (v >> 22) & 0xF, (v >> 17) & 0x1F
    h, mi, s = (v >> 12) & 0x1F, (v >> 6) & 0x3F, v & 0x3F
    if v == 0 or not 1 <= mo <= 12 or not 1 <= d <= calendar.monthrange(y, mo)[1]:
        return None
    if h > 23 or mi > 59 or s > 59:
        return None
    return float(calendar.timegm((y, mo, d, h, mi, s)))


def reference_decode(data: bytes) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Per-sample local times (us, float), accelerometer values (g) and corrupt block indices.

    Times follow OpenMovement's cwa_load.py: each block's timestamp (+ deviceFractional
    fraction) belongs to sample ``timestampOffset`` (+ the firmware's shift) of the block; a
    sample's time is interpolated between the anchors around it (per sample, ``np.interp``
    style), extrapolating a run's first/last segment at its ends; runs of successive blocks
    (next sequence id, spacing 0.5-2x nominal) are treated separately, a lone block uses the
    nominal rate.
    """
    header_rate = data[36]
    blocks = []
    corrupt = []
    ref_cfg = None
    for i in range((len(data) - 1024) // 512):
        blk = data[1024 + i * 512 : 1024 + (i + 1) * 512]
        (
            magic,
            length,
            frac,
            session,
            seq,
            ts,
            light,
            _t,
            _e,
            _b,
            rate,
            axes_bps,
            offset,
            count,
        ) = struct.unpack_from("<HHHIIIHHBBBBhH", blk)
        words = struct.unpack_from("<256H", blk)
        axes, packing = axes_bps >> 4, axes_bps & 15
        cap = 120 if (packing, axes) == (0, 3) else 480 // (2 * axes) if packing == 2 else 0
        ok = (
            magic == 0x5841
            and length == 508
            and sum(words) % 65536 == 0
            and axes in (3, 6, 9)
            and 1 <= count <= cap
            and rate & 15
            and _ref_time(ts) is not None
        )
        if ok and ref_cfg is None:
            ref_cfg = (rate, axes_bps)
        if not ok or (rate, axes_bps) != ref_cfg:
            corrupt.append(i)
            continue
        freq = 3200 / (1 << (15 - (rate & 15)))
        t = _ref_time(ts)
        assert t is not None
        if frac & 0x8000:
            f16 = (frac & 0x7FFF) << 1
            offset += (f16 * int(freq)) >> 16
            t += f16 / 65536
        scale = 1 / (1 << (8 + (light >> 13)))
        xyz = []
        for j in range(count):
            if packing == 0:
                (w,) = struct.unpack_from("<I", blk, 30 + 4 * j)
                e = w >> 30
                x, y, z = (((((w >> s) & 0x3FF) ^ 0x200) - 0x200) << e for s in (0, 10, 20))
            else:
                first = 0 if axes == 3 else 3
                x, y, z = struct.unpack_from("<3h", blk, 30 + 2 * (j * axes + first))
            xyz.append((x * scale, y * scale, z * scale))
        blocks.append((i, seq, session, t * US, offset, count, freq, xyz))
    del header_rate

    ts_out: list[float] = []
    xyz_out: list[tuple[float, float, float]] = []
    run: list[Any] = []

    def flush() -> None:
        nominal = US / run[0][6]
        starts = [0]
        for b in run[:-1]:
            starts.append(starts[-1] + b[5])
        pos = [s + b[4] for s, b in zip(starts, run, strict=True)]
        times = [b[3] for b in run]
        for s, b in zip(starts, run, strict=True):
            for j in range(b[5]):
                g = s + j
                if len(run) == 1:
                    ts_out.append(times[0] + (g - pos[0]) * nominal)
                else:
                    k = min(max(bisect.bisect_right(pos, g) - 1, 0), len(run) - 2)
                    slope = (times[k + 1] - times[k]) / (pos[k + 1] - pos[k])
                    ts_out.append(times[k] + (g - pos[k]) * slope)
            xyz_out.extend(b[7])
        run.clear()

    for b in blocks:
        if run:
            p = run[-1]
            nominal = US / p[6]
            d_pos = p[5] + b[4] - p[4]
            seg = (b[3] - p[3]) / d_pos if d_pos > 0 else 0.0
            linked = (
                b[0] == p[0] + 1
                and b[1] == p[1] + 1
                and b[2] == p[2]
                and d_pos > 0
                and 0.5 * nominal <= seg <= 2 * nominal
            )
            if not linked:
                flush()
        run.append(b)
    if run:
        flush()
    return np.array(ts_out), np.array(xyz_out, np.float64).reshape(-1, 3), corrupt


# ------------------------------------------------------------------------------------------
# Helpers


def read_bytes(data: bytes, ctx: ReadContext = UTC, **kw: Any) -> Recording:
    return cwa.read(io.BytesIO(data), path="test.cwa", ctx=ctx, **kw)


def samples(rec: Recording) -> tuple[np.ndarray, np.ndarray]:
    assert rec.accel is not None
    chunks = list(rec.accel.chunks())
    if not chunks:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.float32)
    for c in chunks:
        assert c.ts_us.dtype == np.int64 and c.xyz.dtype == np.float32
        assert c.xyz.ndim == 2 and c.xyz.shape == (c.ts_us.size, 3)
    return np.concatenate([c.ts_us for c in chunks]), np.concatenate([c.xyz for c in chunks])


def need(name: str) -> Path:
    path = ACCEL / name
    if not path.is_file():
        pytest.skip(f"shared corpus file not found: {path}")
    return path


# ------------------------------------------------------------------------------------------
# Corpus: known answers, the reference decoder, independent readers

CORPUS_FILES = [
    "ax3_sample.cwa",
    "ax3_testfile.cwa",
    CORRUPT,
    "ax6_sample.cwa",
    "ax6_testfile.cwa",
]

# name: device, serial, samples, first and last sample (UTC with zone "UTC", to the ms),
# rate, range, corrupt blocks
EXPECTED = {
    "ax3_sample.cwa": ("axivity ax3", "51888", 58800, "2020-02-12T09:03:37.473",
                       "2020-02-12T09:08:35.588", 200.0, 8.0, ""),
    "ax3_testfile.cwa": ("axivity ax3", "39434", 17400, "2019-02-26T10:55:05.986",
                         "2019-02-26T10:58:01.982", 100.0, 8.0, ""),
    CORRUPT: ("axivity ax3", "39434", 16680, "2019-02-26T10:55:07.200",
              "2019-02-26T10:57:58.341", 100.0, 8.0, "0,13,14,142,143,144"),
    "ax6_sample.cwa": ("axivity ax6", "6011802", 10360, "2019-10-29T09:03:06.302",
                       "2019-10-29T09:04:51.569", 100.0, 16.0, ""),
    "ax6_testfile.cwa": ("axivity ax6", "6011834", 11320, "2019-12-23T21:04:06.696",
                         "2019-12-23T21:06:00.986", 100.0, 16.0, ""),
}  # fmt: skip


def _ms(ts_us: int) -> str:
    return str(np.datetime64(int(ts_us + 500) // 1000, "ms"))


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_known_answers(name: str) -> None:
    path = need(name)
    with path.open("rb") as fp:
        rec = cwa.read(fp, path=str(path), ctx=UTC)
    device, serial, n, first, last, rate, range_g, corrupt = EXPECTED[name]
    ts, xyz = samples(rec)  # after fp was closed
    assert rec.format == "cwa" and rec.kind == "allday"
    assert (rec.device, rec.serial) == (device, serial)
    assert rec.accel is not None
    assert rec.accel.n_samples == ts.size == n
    assert (_ms(ts[0]), _ms(ts[-1])) == (first, last)
    assert (rec.accel.sample_rate_hz, rec.accel.range_g) == (rate, range_g)
    assert rec.meta["corrupt_blocks"] == corrupt
    assert np.all(np.diff(ts) > 0)
    assert np.all(np.abs(xyz) <= range_g)


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_matches_reference_decoder(name: str) -> None:
    data = need(name).read_bytes()
    ref_ts, ref_xyz, ref_corrupt = reference_decode(data)
    rec = read_bytes(data)
    ts, xyz = samples(rec)
    assert ts.size == ref_ts.size
    np.testing.assert_array_equal(xyz, ref_xyz.astype(np.float32))
    # the reader spaces a block's samples evenly between two first-sample times; the reference
    # interpolates each sample between the block timestamps around it, so it passes exactly
    # through each timestamp's jitter (up to ~0.25 ms on the AX6): at most 3 % of a period apart
    assert rec.accel is not None
    assert np.abs(ts - ref_ts).max() < 0.03 * US / rec.accel.sample_rate_hz
    assert np.median(np.abs(ts - ref_ts)) < 2
    assert rec.meta["corrupt_blocks"] == ",".join(map(str, ref_corrupt))


def test_corrupt_blocks_are_skipped_and_become_gaps() -> None:
    clean = read_bytes(need("ax3_testfile.cwa").read_bytes())
    rec = read_bytes(need(CORRUPT).read_bytes())
    assert rec.meta["corrupt_blocks"] == "0,13,14,142,143,144"
    assert rec.meta["n_corrupt_blocks"] == "6"
    assert any("6 corrupt data blocks skipped" in w for w in rec.warnings)
    ts_clean, xyz_clean = samples(clean)
    ts, xyz = samples(rec)
    # never padded: exactly the clean file's samples without the six blocks' 720
    keep = np.ones(145, bool)
    keep[[0, 13, 14, 142, 143, 144]] = False
    by_block = np.repeat(keep, 120)
    np.testing.assert_array_equal(xyz, xyz_clean[by_block])
    # times of the blocks kept agree with the clean file's to well within a sample period
    assert np.abs(ts - ts_clean[by_block]).max() < 1000
    assert rec.accel is not None
    gaps = rec.accel.gaps
    assert len(gaps) == 3
    (s0, e0), (s1, e1), (s2, e2) = gaps
    assert e0 == ts[0] and abs((e0 - s0) - 1.2 * US) < 1000  # block 0: before the first sample
    assert s1 > ts[12 * 120 - 1] and e1 == ts[12 * 120]  # blocks 13, 14
    assert 2.3 * US < e1 - s1 < 2.6 * US
    assert s2 > ts[-1] and abs((e2 - s2) - 3.6 * US) < 1000  # blocks 142-144: after the last
    for s, e in gaps:  # no sample inside a gap
        assert not np.any((ts >= s) & (ts < e))


SKDH_FILES = [n for n in CORPUS_FILES if n != CORRUPT]  # both independent readers fail on it


@pytest.mark.parametrize("name", SKDH_FILES)
def test_corpus_agrees_with_scikit_digital_health(name: str) -> None:
    skdh_io = pytest.importorskip("skdh.io")
    path = need(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = skdh_io.ReadCwa().predict(file=str(path), tz_name=None)
    _agrees(name, read_bytes(path.read_bytes()), other["time"] * US, other["accel"])


@pytest.mark.parametrize("name", SKDH_FILES)
def test_corpus_agrees_with_cwa_reader_rs(name: str) -> None:
    rs = pytest.importorskip("cwa_reader_rs")
    path = need(name)
    df = rs.read_cwa_file(
        str(path), include_temperature=False, include_light=False, include_battery=False
    )
    t = df.index.to_numpy().astype("datetime64[us]").astype(np.int64)
    _agrees(name, read_bytes(path.read_bytes()), t, df[["acc_x", "acc_y", "acc_z"]].to_numpy())


def _agrees(name: str, rec: Recording, other_ts: np.ndarray, other_xyz: np.ndarray) -> None:
    """Same sample count, values within 1e-4 g, first/last times within 1.5 sample periods.

    Both independent readers (naive local times; zone "UTC" here makes local == UTC) place a
    block at its whole-second timestamp minus ``timestampOffset`` at the nominal rate and ignore
    the deviceFractional fraction of a second, so their times are up to ~1.5 sample periods
    off the OpenMovement rule this reader follows (checked exactly against the reference
    decoder above)."""
    ts, xyz = samples(rec)
    assert rec.accel is not None
    assert ts.size == other_ts.size == rec.accel.n_samples
    assert np.abs(xyz - other_xyz).max() <= 1e-4
    period = US / rec.accel.sample_rate_hz
    assert abs(ts[0] - other_ts[0]) < 1.5 * period, name
    assert abs(ts[-1] - other_ts[-1]) < 1.5 * period, name


def test_corpus_chunks_can_be_read_twice_and_in_small_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = read_bytes(need(CORRUPT).read_bytes())
    ts1, xyz1 = samples(rec)
    monkeypatch.setattr(cwa, "_CHUNK_BLOCKS", 7)
    assert rec.accel is not None
    assert len(list(rec.accel.chunks())) == -(-139 // 7)
    ts2, xyz2 = samples(rec)
    np.testing.assert_array_equal(ts1, ts2)
    np.testing.assert_array_equal(xyz1, xyz2)


# ------------------------------------------------------------------------------------------
# Synthetic files


@pytest.mark.parametrize("layout", ["packed", "unpacked", "ax6"])
def test_synthetic_values_and_times(layout: str) -> None:
    rng = np.random.default_rng(3)
    n = 2000
    g = rng.uniform(-7.9, 7.9, (n, 3))
    g[:50] = rng.uniform(-1.5, 1.5, (50, 3))  # small values: exponent 0 when packed
    data, truth = make_cwa(
        n_samples=n, xyz=g, layout=layout, true_rate_hz=98.7, range_g=16 if layout == "ax6" else 8
    )
    rec = read_bytes(data)
    ts, xyz = samples(rec)
    np.testing.assert_array_equal(xyz, truth.xyz)
    assert np.abs(xyz - g).max() <= (2**3 / 256 if layout == "packed" else 1 / 256)
    # the fraction is stored with 1/32768 s resolution: times within ~0.1 ms of the truth
    assert np.abs(ts - truth.ts_local_us).max() < 100
    ref_ts, ref_xyz, _ = reference_decode(data)
    np.testing.assert_array_equal(xyz, ref_xyz.astype(np.float32))
    assert np.abs(ts - ref_ts).max() < 50
    assert rec.device == ("axivity ax6" if layout == "ax6" else "axivity ax3")
    assert rec.accel is not None and rec.accel.n_samples == n
    if layout == "ax6":
        assert rec.meta["dropped_channels"] == "gyroscope"


def test_measured_rate_and_partial_last_block() -> None:
    data, truth = make_cwa(n_samples=12 * 120 + 37, true_rate_hz=101.3)
    rec = read_bytes(data)
    ts, _ = samples(rec)
    assert ts.size == 12 * 120 + 37
    assert float(rec.meta["sample_rate_measured_hz"]) == pytest.approx(101.3, abs=0.01)
    assert np.abs(ts - truth.ts_local_us).max() < 100


def test_old_firmware_without_fraction() -> None:
    data, truth = make_cwa(n_samples=3000, fractional=False, true_rate_hz=99.2)
    ts, _ = samples(read_bytes(data))
    # whole seconds only: the anchor sample is within half a sample of the second
    assert np.abs(ts - truth.ts_local_us).max() < 0.6 * 10_000


def test_truncated_final_block_is_ignored_with_warning() -> None:
    data, _ = make_cwa(n_samples=600)
    rec = read_bytes(data[:-100])
    assert rec.accel is not None and rec.accel.n_samples == 480
    assert any("truncated final block (412 of 512 bytes)" in w for w in rec.warnings)


def test_time_zone_is_required() -> None:
    data, _ = make_cwa(n_samples=240)
    with pytest.raises(TimeAnchorError, match="time zone is needed"):
        read_bytes(data, ReadContext())


def test_local_times_placed_in_the_zone() -> None:
    data, truth = make_cwa(n_samples=240, start_local="2024-07-01T12:00:00")
    rec = read_bytes(data, ReadContext(timezone="Europe/London"))
    ts, _ = samples(rec)
    assert rec.utc_offset_s == 3600
    assert np.abs(ts - (truth.ts_local_us - 3600 * US)).max() < 100


def test_one_clock_offset_across_a_dst_change() -> None:
    # configured and started in winter time; the device clock ignores the change on 31 March
    # (01:00 UTC): times stay continuous, one offset (that of the configuration) throughout
    data, truth = make_cwa(
        n_samples=100 * 3600 * 3,
        start_local="2024-03-31T00:00:00",
        last_change_local="2024-03-29T15:00:00",
    )
    rec = read_bytes(data, ReadContext(timezone="Europe/London"))
    ts, _ = samples(rec)
    assert rec.utc_offset_s == 0
    assert np.all(np.diff(ts) > 0) and np.diff(ts).max() < 10_100
    assert np.abs(ts - truth.ts_local_us).max() < 100
    assert rec.accel is not None and rec.accel.gaps == []
    # a last-change time after the data is not the clock setting: the first block's is used
    data, _ = make_cwa(
        n_samples=240, start_local="2024-07-01T12:00:00", last_change_local="2024-07-02T12:00:00"
    )
    assert read_bytes(data, ReadContext(timezone="Europe/London")).utc_offset_s == 3600


def test_corrupt_and_missing_blocks_make_gaps_never_padding() -> None:
    data, truth = make_cwa(n_samples=40 * 120, corrupt=[5, 6, 39])
    rec = read_bytes(data)
    ts, xyz = samples(rec)
    keep = np.repeat(~np.isin(np.arange(40), [5, 6, 39]), 120)
    np.testing.assert_array_equal(xyz, truth.xyz[keep])
    assert np.abs(ts - truth.ts_local_us[keep]).max() < 100
    assert rec.meta["corrupt_blocks"] == "5,6,39"
    assert rec.accel is not None
    (s1, e1), (s2, e2) = rec.accel.gaps
    assert abs(s1 - truth.ts_local_us[5 * 120]) < 100 and e1 == ts[5 * 120]
    assert s2 == pytest.approx(truth.ts_local_us[39 * 120], abs=100)
    assert e2 - s2 == 1_200_000
    # a block missing from the file (sequence jumps, time jumps) is a gap too
    blocks = bytearray(data)
    del blocks[1024 + 20 * 512 : 1024 + 21 * 512]
    rec = read_bytes(bytes(blocks))
    assert rec.accel is not None
    assert any(abs((e - s) - 1_200_000) < 200 for s, e in rec.accel.gaps)


def test_block_out_of_time_order_is_dropped() -> None:
    data, _ = make_cwa(n_samples=10 * 120)
    blocks = bytearray(data)
    # move block 6 to the end: it starts before block 9 ends
    b6 = blocks[1024 + 6 * 512 : 1024 + 7 * 512]
    del blocks[1024 + 6 * 512 : 1024 + 7 * 512]
    blocks += b6
    rec = read_bytes(bytes(blocks))
    ts, _ = samples(rec)
    assert ts.size == 9 * 120
    assert rec.meta["out_of_order_blocks"] == "1"
    assert np.all(np.diff(ts) > 0)


def test_format_change_inside_a_file_is_corrupt() -> None:
    a, _ = make_cwa(n_samples=600)
    b, _ = make_cwa(n_samples=240, layout="unpacked")
    rec = read_bytes(a + b[1024:])
    assert rec.meta["corrupt_blocks"] == "5,6,7"
    assert "format change: 3" in " ".join(rec.warnings)


def test_bad_inputs() -> None:
    data, _ = make_cwa(n_samples=240)
    cases = {
        b"": "empty file",
        b"PK\x03\x04" + bytes(2000): "not an Axivity CWA file",
        b"MD\x00\x00" + bytes(2000): "not an Axivity CWA file",
        data[:700]: "truncated header at offset 700",
        data[:1024]: "no data blocks after the header",
        data[: 1024 + 511]: "no data blocks after the header",
        data[:1024] + bytes(512): "no readable data block (1 corrupt: bad block header: 1)",
    }
    for bad, reason in cases.items():
        with pytest.raises(InputError) as err:
            read_bytes(bad)
        assert err.value.reason == reason and err.value.path == "test.cwa"
        assert err.value.offset is not None


def test_detect() -> None:
    data, _ = make_cwa(n_samples=120)
    assert cwa.detect(data[:4096])
    for path in sorted(ACCEL.glob("*.cwa")):
        assert cwa.detect(path.read_bytes()[:16]), path.name
    assert not cwa.detect(b"MD")
    assert not cwa.detect(b"MD\x00\x04")
    assert not cwa.detect(b"\x0e\x10\x00\x00\x00\x00\x00\x00.FIT")


# ------------------------------------------------------------------------------------------
# Any bytes: a Recording or an InputError


def _exercise(data: bytes) -> None:
    try:
        rec = read_bytes(data)
    except InputError:
        return
    assert rec.accel is not None
    ts, xyz = samples(rec)
    assert ts.size == rec.accel.n_samples
    assert np.all(np.diff(ts) >= 0)
    assert np.all(np.isfinite(xyz))
    for s, e in rec.accel.gaps:
        assert s < e


def _fix_checksums(data: bytearray) -> None:
    n = (len(data) - 1024) // 512
    words = np.frombuffer(data, "<u2", count=n * 256, offset=1024).reshape(n, 256).copy()
    words[:, 255] = (-words[:, :255].sum(axis=1, dtype=np.int64)) % 65536
    data[1024 : 1024 + n * 512] = words.tobytes()


_SMALL, _ = make_cwa(n_samples=8 * 120 + 50, true_rate_hz=99.0)
_SMALL_AX6, _ = make_cwa(n_samples=6 * 40 + 7, layout="ax6")

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes(data: bytes) -> None:
    _exercise(data)


@FUZZ
@given(st.binary(min_size=0, max_size=3000))
def test_any_bytes_after_a_valid_header(tail: bytes) -> None:
    _exercise(_SMALL[:1024] + tail)


@FUZZ
@given(
    st.sampled_from([_SMALL, _SMALL_AX6]),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=30),
    st.integers(0, 10**6),
    st.booleans(),
)
def test_mutated_files(base: bytes, edits: list[tuple[int, int]], cut: int, fix: bool) -> None:
    data = bytearray(base)
    for where, value in edits:
        data[where % len(data)] = value
    if fix:  # valid checksums over garbage: exercises everything behind the checksum
        _fix_checksums(data)
    _exercise(bytes(data[: len(data) - cut % 700]))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_mutated_corpus(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(CORPUS_FILES))
    base = bytearray(need(name).read_bytes())
    for _ in range(data.draw(st.integers(1, 40))):
        where = data.draw(st.integers(0, len(base) - 1))
        base[where] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        _fix_checksums(base)
    _exercise(bytes(base))
