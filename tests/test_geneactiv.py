"""GENEActiv and GENEA .bin reader: corpus files against independent decoders, files built
here for each rule (gaps, damage, salvage, time placement), and any bytes."""

from __future__ import annotations

import io
import pickle
import shutil
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError, TimeAnchorError
from actidose.ingest import geneactiv
from actidose.recording import ReadContext, Recording

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "accel"
US = 1_000_000


def corpus(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"shared corpus file not found: {path}")
    return path


def read_bytes(
    data: bytes, tz: str | None = "UTC", *, salvage: bool = False, path: str = "t.bin"
) -> Recording:
    return geneactiv.read(io.BytesIO(data), path=path, salvage=salvage, ctx=ReadContext(tz))


def read_path(path: Path, tz: str | None = "UTC", *, salvage: bool = False) -> Recording:
    with path.open("rb") as fp:
        return geneactiv.read(fp, path=path.name, salvage=salvage, ctx=ReadContext(tz))


def samples(rec: Recording) -> tuple[np.ndarray, np.ndarray]:
    assert rec.accel is not None
    chunks = list(rec.accel.chunks())
    ts = np.concatenate([c.ts_us for c in chunks]) if chunks else np.empty(0, np.int64)
    xyz = np.concatenate([c.xyz for c in chunks]) if chunks else np.empty((0, 3), np.float32)
    for c in chunks:
        assert c.ts_us.dtype == np.int64 and c.xyz.dtype == np.float32
        assert c.xyz.shape == (c.ts_us.size, 3)
    return ts, xyz


def utc(text: str) -> int:
    return int(np.datetime64(text, "us").astype(np.int64))


# --------------------------------------------------------------------------------------------
# independent decoders, written plainly from the format descriptions (loops are fine here)


def ref_geneactiv(path: Path) -> tuple[list[float], list[tuple[float, float, float]]]:
    """Local page-clock times (s since 1970) and calibrated g of every complete page."""
    lines = path.read_bytes().decode("latin-1").splitlines()
    cal: dict[str, float] = {}
    i = 0
    while lines[i] != "Recorded Data":
        key, _, value = lines[i].partition(":")
        if key in ("x gain", "x offset", "y gain", "y offset", "z gain", "z offset"):
            cal[key] = float(value)
        i += 1
    times: list[float] = []
    values: list[tuple[float, float, float]] = []
    while i + 9 < len(lines) and lines[i] == "Recorded Data":
        page = lines[i : i + 10]
        when = datetime.strptime(page[3][len("Page Time:") :], "%Y-%m-%d %H:%M:%S:%f")
        t0 = (when - datetime(1970, 1, 1)).total_seconds()
        freq = float(page[8].split(":")[1])
        hexline = page[9]
        if len(hexline) != 3600:
            break
        for k in range(300):
            cell = hexline[12 * k : 12 * k + 12]
            g = []
            for a, part in zip("xyz", (cell[0:3], cell[3:6], cell[6:9]), strict=True):
                raw = int(part, 16)
                raw = raw - 4096 if raw >= 2048 else raw
                g.append((raw * 100 - cal[f"{a} offset"]) / cal[f"{a} gain"])
            times.append(t0 + k / freq)
            values.append((g[0], g[1], g[2]))
        i += 10
    return times, values


def ref_genea(path: Path) -> tuple[list[float], list[tuple[int, int, int]], dict[str, str]]:
    """Local times (s) and raw (x, y, z) of every sample chunk of a GENEA file, timed as
    ``T + k / rate`` after each timestamp and ``T0 - (n - k) / rate`` before the first."""
    data = path.read_bytes()
    end = data.index(b"\r\n\r\n")
    header = {}
    for line in data[:end].decode("latin-1").split("\r\n"):
        key, _, value = line.partition(":")
        header[key] = value
    rate = float(header["Sample-Rate"].rstrip("Hz"))
    body = data[end + 4 :]
    raw: list[tuple[int, int, int]] = []
    marks: list[tuple[int, int]] = []  # (samples before, clock)
    for page in range(0, len(body), 2048):
        for c in range(341):
            chunk = body[page + 6 * c : page + 6 * c + 6]
            if len(chunk) < 6:
                break
            kind = chunk[1] >> 4
            if kind == 0:
                x = ((chunk[1] & 15) << 8) | chunk[2]
                y = (chunk[3] << 4) | (chunk[4] >> 4)
                z = ((chunk[4] & 15) << 8) | chunk[5]
                sx, sy, sz = (v - 4096 if v >= 2048 else v for v in (x, y, z))
                raw.append((sx, sy, sz))
            elif kind == 2:
                marks.append((len(raw), int.from_bytes(chunk[2:6], "big")))
    times = []
    m = 0
    for k in range(len(raw)):
        while m + 1 < len(marks) and marks[m + 1][0] <= k:
            m += 1
        before, clock = marks[m]
        times.append(clock + (k - before) / rate)
    return times, raw, header


def genea_g(raw: tuple[int, int, int], header: dict[str, str]) -> tuple[float, ...]:
    gains = [float(v) for v in header["Accel-Gains"].split()]
    offsets = [float(v) for v in header["Accel-Offsets"].split()]
    sign = (-1, 1, -1)
    return tuple(
        ((s * r + o) * g / 8192) / 340 for s, r, o, g in zip(sign, raw, offsets, gains, strict=True)
    )


# --------------------------------------------------------------------------------------------
# corpus


def test_detect_corpus() -> None:
    for name in ("GENEActiv_testfile.bin", "gnactv_sample.bin", "genea_testfile.bin"):
        assert geneactiv.detect(corpus(name).read_bytes()[:4096])
    assert not geneactiv.detect(b"Device Identity\nsomething else")
    assert not geneactiv.detect(b"Time,HR\n1,2\n")


def test_geneactiv_testfile_is_truncated() -> None:
    path = corpus("GENEActiv_testfile.bin")
    with pytest.raises(InputError) as e:
        read_path(path)
    assert e.value.reason.startswith("truncated: page 16")
    assert e.value.offset == 62543 and e.value.path == "GENEActiv_testfile.bin"


def test_geneactiv_testfile_against_plain_decoder() -> None:
    path = corpus("GENEActiv_testfile.bin")
    rec = read_path(path, "Europe/London", salvage=True)
    assert rec.salvaged and rec.salvage_reason is not None
    assert rec.salvage_reason.startswith("truncated")
    assert rec.accel is not None
    assert rec.accel.sample_rate_hz == 85.7 and rec.accel.range_g == 8.0
    assert rec.accel.n_samples == 4800 and rec.accel.gaps == []
    assert (rec.format, rec.kind, rec.serial, rec.utc_offset_s) == (
        "geneactiv",
        "allday",
        "012967",
        3600,
    )
    ts, xyz = samples(rec)
    times, values = ref_geneactiv(path)
    assert ts.size == len(times) == 4800
    # BST: local 10:12:54.500 is 09:12:54.500Z (GGIRread's test: 1369908774.5 local)
    assert ts[0] == utc("2013-05-30T09:12:54.500")
    assert ts[-1] == utc("2013-05-30T09:13:47.000") + round(299 / 85.7 * US)  # page 15
    local = (ts + 3600 * US) / US
    assert np.max(np.abs(local - np.array(times))) < 2e-6
    assert np.max(np.abs(xyz - np.array(values))) < 1e-4
    # GGIRread's published value: z of sample 300 (the last of the first page)
    assert xyz[299, 2] == pytest.approx(-0.80836403369903564453, abs=1e-6)


def test_gnactv_sample_against_plain_decoder() -> None:
    path = corpus("gnactv_sample.bin")
    rec = read_path(path)
    assert not rec.salvaged and rec.accel is not None
    assert rec.accel.n_samples == 900 and rec.accel.sample_rate_hz == 50.0
    ts, xyz = samples(rec)
    times, values = ref_geneactiv(path)
    assert ts[0] == utc("2019-05-21T16:16:43.500") and ts[-1] == utc("2019-05-21T16:17:01.980")
    assert np.max(np.abs(ts / US - np.array(times))) < 2e-6
    assert np.max(np.abs(xyz - np.array(values))) < 1e-4
    assert rec.meta["device_location_code"] == "back"


def _skdh_read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """scikit-digital-health's reader (test-only dependency). Never give it a GENEA file: it
    crashes the process (segfault) on genea_testfile.bin."""
    skdh_io = pytest.importorskip("skdh.io")
    with warnings.catch_warnings():  # naive local times and the header's "50 Hz" vs "50.0"
        warnings.simplefilter("ignore")
        res = skdh_io.ReadBin().predict(file=str(path))
    return np.asarray(res["time"], np.float64), np.asarray(res["accel"], np.float64)


def test_gnactv_sample_against_skdh() -> None:
    path = corpus("gnactv_sample.bin")
    t_ref, a_ref = _skdh_read(path)
    ts, xyz = samples(read_path(path))
    assert ts.size == t_ref.size == 900
    assert np.max(np.abs(ts / US - t_ref)) < 2e-6  # skdh: naive local seconds; here zone UTC
    assert np.max(np.abs(xyz - a_ref)) < 1e-4


def test_geneactiv_testfile_against_skdh(tmp_path: Path) -> None:
    """skdh refuses the truncated file; given its 16 complete pages and a header that says 16,
    it must read what actidose reads with salvage."""
    src = corpus("GENEActiv_testfile.bin")
    data = src.read_bytes()
    cut = data.index(b"Recorded Data\r\nDevice Unique Serial Code:012967\r\nSequence Number:16")
    whole = data[:cut].replace(b"Number of Pages:222048", b"Number of Pages:16")
    copy = tmp_path / "complete.bin"
    copy.write_bytes(whole)
    t_ref, a_ref = _skdh_read(copy)
    ts, xyz = samples(read_path(src, salvage=True))
    assert ts.size == t_ref.size == 4800
    assert np.max(np.abs(ts / US - t_ref)) < 2e-6
    assert np.max(np.abs(xyz - a_ref)) < 1e-4
    assert not read_path(copy).salvaged


def test_genea_testfile_against_plain_decoder() -> None:
    path = corpus("genea_testfile.bin")
    with pytest.raises(InputError, match="truncated: the last page"):
        read_path(path)
    rec = read_path(path, "Europe/London", salvage=True)
    assert rec.accel is not None and rec.meta["variant"] == "GENEA"
    assert (rec.accel.sample_rate_hz, rec.accel.range_g, rec.serial) == (80.0, 6.0, "01275")
    times, raw, header = ref_genea(path)
    ts, xyz = samples(rec)
    assert ts.size == len(raw) == rec.accel.n_samples == 42864
    # the first clock value is 12:08:37 local (BST) and 48 samples precede it
    assert ts[0] == utc("2010-03-30T11:08:36.400")
    assert np.max(np.abs((ts + 3600 * US) / US - np.array(times))) < 2e-6
    want = np.array([genea_g(r, header) for r in raw])
    assert np.max(np.abs(xyz - want)) < 1e-4


def test_genea_plain_decoder_matches_ggirread_published_values() -> None:
    """GGIRread's GeneaBinReader test: pages 1-3 give 993 rows (it drops the last second's
    tail) whose milli-g, rounded at each step as it does, sum to 1058559."""
    _, raw, header = ref_genea(corpus("genea_testfile.bin"))
    data = corpus("genea_testfile.bin").read_bytes()
    body = data[data.index(b"\r\n\r\n") + 4 :]
    n_page0 = sum(1 for c in range(341) if body[6 * c + 1] >> 4 == 0)
    rows = raw[n_page0 : n_page0 + 993]
    gains = [int(v) for v in header["Accel-Gains"].split()]
    offsets = [int(v) for v in header["Accel-Offsets"].split()]
    total = 0.0
    for r in rows:
        for s, v, o, g in zip((-1, 1, -1), r, offsets, gains, strict=True):
            total += np.round(np.round(np.round(s * v + o) * g / 8192) * 1000 / 340)
    assert total == 1058559


def test_missing_zone_is_an_error() -> None:
    with pytest.raises(InputError, match="timezone"):
        read_path(corpus("gnactv_sample.bin"), None)


def test_pickle_keeps_the_stream() -> None:
    rec = read_path(corpus("gnactv_sample.bin"))
    again = pickle.loads(pickle.dumps(rec))
    a, b = samples(rec), samples(again)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_chunks_are_fresh_and_split(tmp_path: Path) -> None:
    path = tmp_path / "copy.bin"
    shutil.copy(corpus("gnactv_sample.bin"), path)
    rec = read_path(path)  # memory-mapped: the file is closed when read returns
    assert rec.accel is not None
    rec.accel.chunks.pages_per_chunk = 1  # type: ignore[attr-defined,unused-ignore]
    parts = list(rec.accel.chunks())
    assert [c.ts_us.size for c in parts] == [300, 300, 300]
    ts, xyz = samples(rec)
    again = samples(rec)
    assert np.array_equal(ts, again[0]) and np.array_equal(xyz, again[1])
    assert np.all(np.diff(ts) > 0)


# --------------------------------------------------------------------------------------------
# GENEActiv files built here


def _hex(raw: np.ndarray) -> str:
    return "".join(f"{x & 0xFFF:03X}{y & 0xFFF:03X}{z & 0xFFF:03X}{0x1F0:03X}" for x, y, z in raw)


def geneactiv_file(
    times: list[str],
    *,
    raw: np.ndarray | None = None,
    freq: float = 50.0,
    declared: int | None = None,
    eol: str = "\r\n",
    gains: tuple[int, int, int] = (25600, 25700, 25800),
    offsets: tuple[int, int, int] = (100, -200, 300),
    tz_line: str = "GMT +00:00",
) -> tuple[bytes, np.ndarray]:
    """A GENEActiv file with one page per time in ``times`` and its expected values (g)."""
    n = len(times)
    if raw is None:
        raw = np.random.default_rng(n).integers(-2048, 2048, (n, 300, 3))
    head = [
        "Device Identity",
        "Device Unique Serial Code:054321",
        "Device Type:GENEActiv",
        "Device Model:1.1",
        "Device Firmware Version:Ver1.30",
        "",
        "Configuration Info",
        f"Measurement Frequency:{freq:g} Hz",
        f"Time Zone:{tz_line}",
        "",
        "Calibration Data",
        *(
            f"{a} {k}:{v}"
            for a, g, o in zip("xyz", gains, offsets, strict=True)
            for k, v in (("gain", g), ("offset", o))
        ),
        "Volts:300",
        "Lux:800",
        "",
        "Memory Status",
        f"Number of Pages:{n if declared is None else declared}",
        "",
    ]
    lines = list(head)
    for i, t in enumerate(times):
        lines += [
            "Recorded Data",
            "Device Unique Serial Code:054321",
            f"Sequence Number:{i}",
            f"Page Time:{t}",
            "Unassigned:",
            "Temperature:25.0",
            "Battery voltage:4.0",
            "Device Status:Recording",
            f"Measurement Frequency:{freq:.1f}",
            _hex(raw[i]),
        ]
    g = (raw * 100.0 - np.array(offsets)) / np.array(gains)
    return (eol.join(lines) + eol).encode(), g.reshape(-1, 3)


def page_times(start: str, n: int, step_s: float) -> list[str]:
    t0 = datetime.fromisoformat(start)
    out = []
    for i in range(n):
        t = t0 + timedelta(seconds=i * step_s)
        out.append(t.strftime("%Y-%m-%d %H:%M:%S:") + f"{t.microsecond // 1000:03d}")
    return out


@pytest.mark.parametrize("eol", ["\r\n", "\n"])
def test_built_file_round_trip(eol: str) -> None:
    data, want = geneactiv_file(page_times("2024-01-10 08:00:00", 4, 6.0), eol=eol)
    rec = read_bytes(data, "America/New_York")
    ts, xyz = samples(rec)
    assert np.max(np.abs(xyz - want)) < 1e-6
    assert ts[0] == utc("2024-01-10T13:00:00") and ts[-1] == utc("2024-01-10T13:00:23.980")
    assert np.all(np.diff(ts) == 20_000)
    assert (
        rec.accel is not None
        and rec.accel.gaps == []
        and rec.warnings
        == [
            "the device was configured with time zone 'GMT +00:00'; its times were placed in "
            "America/New_York (-05:00 at the start)"
        ]
    )


def test_gap_between_pages_is_a_gap_not_padding() -> None:
    times = page_times("2024-01-10 08:00:00", 2, 6.0) + page_times("2024-01-10 08:01:00", 1, 6)
    rec = read_bytes(geneactiv_file(times)[0])
    assert rec.accel is not None and rec.accel.n_samples == 900
    assert rec.accel.gaps == [(utc("2024-01-10T08:00:12"), utc("2024-01-10T08:01:00"))]


def test_small_overlap_is_placed_after_the_previous_page() -> None:
    # a page clock with 0.5 s resolution: the third page claims 0.5 s too early
    times = ["2024-01-10 08:00:00:000", "2024-01-10 08:00:06:000", "2024-01-10 08:00:11:500"]
    rec = read_bytes(geneactiv_file(times)[0])
    ts, _ = samples(rec)
    assert np.all(np.diff(ts) > 0)
    assert ts[600] == utc("2024-01-10T08:00:11.980") + 1
    assert any("placed just after it" in w for w in rec.warnings)


def test_clock_going_back_is_damage() -> None:
    times = [*page_times("2024-01-10 08:00:00", 2, 6.0), "2024-01-10 07:00:00:000"]
    data = geneactiv_file(times)[0]
    with pytest.raises(InputError, match=r"page 2 at offset .*goes back"):
        read_bytes(data)
    rec = read_bytes(data, salvage=True)
    assert rec.accel is not None and rec.accel.n_samples == 600 and rec.salvaged


def test_malformed_page_inside_is_skipped_only_with_salvage() -> None:
    data, want = geneactiv_file(page_times("2024-01-10 08:00:00", 3, 6.0))
    bad = data.replace(b"Page Time:2024-01-10 08:00:06:000", b"Page Time:2024-13-10 08:00:06:000")
    with pytest.raises(InputError) as e:
        read_bytes(bad)
    assert e.value.reason.startswith("page 1 at offset") and "malformed" in e.value.reason
    assert e.value.offset == data.index(
        b"Recorded Data\r\nDevice Unique Serial Code:054321\r\nSequence Number:1"
    )
    rec = read_bytes(bad, salvage=True)
    assert rec.accel is not None and rec.accel.n_samples == 600
    assert rec.accel.gaps == [(utc("2024-01-10T08:00:06"), utc("2024-01-10T08:00:12"))]
    _, xyz = samples(rec)
    assert np.max(np.abs(xyz - np.concatenate([want[:300], want[600:]]))) < 1e-6
    # a non-hex digit is damage too
    hexed = bytearray(data)
    at = data.rindex(b"\r\n", 0, len(data) - 2) + 10
    hexed[at] = ord("G")
    with pytest.raises(InputError, match=r"page 2 .*hex"):
        read_bytes(bytes(hexed))


def test_fewer_pages_than_declared_is_truncation() -> None:
    data = geneactiv_file(page_times("2024-01-10 08:00:00", 2, 6.0), declared=5)[0]
    with pytest.raises(InputError, match="truncated: 2 of the 5 pages"):
        read_bytes(data)
    assert read_bytes(data, salvage=True).salvaged


@pytest.mark.parametrize("cut", [3, 100, 3500, 3700])
def test_cut_file_keeps_complete_pages(cut: int) -> None:
    data = geneactiv_file(page_times("2024-01-10 08:00:00", 3, 6.0))[0][:-cut]
    with pytest.raises(InputError, match="truncated"):
        read_bytes(data)
    rec = read_bytes(data, salvage=True)
    assert rec.accel is not None and rec.accel.n_samples == 600


def test_header_only_file() -> None:
    data = geneactiv_file([], declared=0)[0]
    with pytest.raises(InputError, match="no recorded pages"):
        read_bytes(data)


def test_device_clock_keeps_one_offset_across_dst() -> None:
    # London, 2024-10-27: BST ends at 02:00 BST. A device set in summer time keeps BST.
    times = page_times("2024-10-27 01:59:54", 3, 6.0)
    rec = read_bytes(geneactiv_file(times)[0], "Europe/London")
    ts, _ = samples(rec)
    assert ts[0] == utc("2024-10-27T00:59:54") and np.all(np.diff(ts) == 20_000)
    assert any("do not follow daylight saving time" in w for w in rec.warnings)


def test_mixed_frequencies_are_timed_per_page() -> None:
    data = geneactiv_file(page_times("2024-01-10 08:00:00", 2, 6.0))[0]
    data = data.replace(b"Measurement Frequency:50.0\r\n", b"Measurement Frequency:100.0\r\n", 1)
    rec = read_bytes(data)
    ts, _ = samples(rec)
    assert ts[299] - ts[0] == round(299 / 100 * US) and ts[599] - ts[300] == round(299 / 50 * US)
    assert any("different measurement frequencies" in w for w in rec.warnings)


def test_missing_calibration_is_an_error() -> None:
    data = geneactiv_file(page_times("2024-01-10 08:00:00", 1, 6.0))[0]
    with pytest.raises(InputError, match="'y gain'"):
        read_bytes(data.replace(b"y gain:", b"y gian:"))
    with pytest.raises(InputError, match="gain of 0"):
        read_bytes(data.replace(b"x gain:25600", b"x gain:0"))


# --------------------------------------------------------------------------------------------
# GENEA files built here


def genea_file(seconds: list[tuple[int, int]], *, rate: int = 4, tail: bytes = b"") -> bytes:
    """A GENEA file: for each (clock, n) a timestamp chunk then n sample chunks."""
    header = (
        "GENEA/1.00\r\nSerial-Number:00001\r\nAccel-Offsets:0 0 0\r\nAccel-Gains:8192 8192 8192\r\n"
        f"Sample-Rate:{rate}Hz\r\n\r\n"
    ).encode()
    chunks = []
    for clock, n in seconds:
        chunks.append(b"\x00\x20" + clock.to_bytes(4, "big"))
        for k in range(n):
            x, y, z = -(k + 1) & 0xFFF, 340, -340 & 0xFFF  # x inverted: +(k+1)/340 g
            chunks.append(
                bytes([0, x >> 8, x & 0xFF, y >> 4, ((y & 15) << 4) | (z >> 8), z & 0xFF])
            )
    chunks.append(b"\x00\x40\x80\x00\x00\x00")  # a battery chunk
    pages = b""
    for i in range(0, len(chunks), 341):
        page = b"".join(chunks[i : i + 341])
        pages += page + b"\xff" * (2048 - len(page)) if i + 341 < len(chunks) else page
    if len(chunks) % 341:
        pad = 341 - len(chunks) % 341
        pages += b"\x00\xf0\x00\x00\x00\x00" * pad + b"\x00\x00"  # unknown-type filler
    return header + pages + tail


def test_genea_built_file_and_gap() -> None:
    t0 = 1_700_000_000
    rec = read_bytes(genea_file([(t0, 4), (t0 + 1, 4), (t0 + 5, 2)]))
    assert rec.accel is not None and rec.accel.n_samples == 10
    ts, xyz = samples(rec)
    assert ts.tolist() == [
        t0 * US + d for d in (0, 250_000, 500_000, 750_000, US, 1_250_000, 1_500_000, 1_750_000)
    ] + [(t0 + 5) * US, (t0 + 5) * US + 250_000]
    assert np.allclose(
        xyz[:4], [[1 / 340, 1, 1], [2 / 340, 1, 1], [3 / 340, 1, 1], [4 / 340, 1, 1]]
    )
    assert rec.accel.gaps == [((t0 + 2) * US, (t0 + 5) * US)]
    assert any("unknown type" in w for w in rec.warnings)


def test_genea_more_samples_than_fit_are_spread() -> None:
    t0 = 1_700_000_000
    ts, _ = samples(read_bytes(genea_file([(t0, 5), (t0 + 1, 1)])))
    assert ts.tolist()[:6] == [t0 * US + d for d in (0, 200_000, 400_000, 600_000, 800_000, US)]


def test_genea_clock_going_back_and_no_clock() -> None:
    t0 = 1_700_000_000
    data = genea_file([(t0, 4), (t0 + 1, 4), (t0, 4)])
    with pytest.raises(InputError, match="not after the one before"):
        read_bytes(data)
    rec = read_bytes(data, salvage=True)
    assert rec.accel is not None and rec.accel.n_samples == 8
    with pytest.raises(TimeAnchorError):
        read_bytes(genea_file([]).replace(b"\x00\x40\x80", b"\x00\x00\x80"))


def test_genea_header_without_end() -> None:
    with pytest.raises(InputError, match="closing empty line"):
        read_bytes(b"GENEA/1.00\r\nSerial-Number:1\r\n")


# --------------------------------------------------------------------------------------------
# any bytes


def _check_any(data: bytes, salvage: bool) -> None:
    try:
        rec = read_bytes(data, salvage=salvage)
    except InputError:
        return
    assert rec.accel is not None
    ts, xyz = samples(rec)
    assert ts.size == rec.accel.n_samples
    assert np.all(np.diff(ts) > 0)
    assert np.all(np.isfinite(xyz))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=3000), st.booleans(), st.sampled_from([b"Device Identity\r\n", b"GENEA/1"])
)
def test_any_bytes_after_a_header_line(tail: bytes, salvage: bool, prefix: bytes) -> None:
    _check_any(prefix + tail, salvage)


_BUILT = geneactiv_file(page_times("2024-01-10 08:00:00", 3, 6.0))[0]
_BUILT_GENEA = genea_file([(1_700_000_000 + i, 4) for i in range(100)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([_BUILT, _BUILT_GENEA]),
    st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 255)), max_size=6),
    st.integers(0, 20_000),
    st.booleans(),
)
def test_mutated_files(base: bytes, edits: list[tuple[int, int]], cut: int, salvage: bool) -> None:
    data = bytearray(base)
    for at, value in edits:
        if at < len(data):
            data[at] = value
    _check_any(bytes(data[: len(data) - cut % len(data)]), salvage)
