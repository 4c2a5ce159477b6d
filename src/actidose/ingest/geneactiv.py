"""GENEActiv ``.bin`` files and the older GENEA ``.bin`` format (format ``"geneactiv"``).

Both are raw tri-axial acceleration; this module turns them into an
:class:`~actidose.recording.AccelStream` in g. A week at 100 Hz is never decoded at once:
:func:`read` scans and checks the whole file once (vectorized, page by page in numpy) and keeps
an index of its pages; ``chunks()`` decodes about a million samples at a time from the file's
bytes (memory-mapped, see :class:`FileBuffer`) each time it is called.

GENEActiv (Activinsights, "GENEActiv Instructions for use", section "Decoding .bin files"; the
same rules in GGIRread's ``GENEActivReader.cpp`` and scikit-digital-health's reader):

* A text header of ``Key:Value`` lines in sections (``Device Identity``, ``Configuration Info``,
  ``Calibration Data`` with ``x gain``, ``x offset``, ... ``z offset``, ``Memory Status`` with
  ``Number of Pages``), CRLF or LF line ends.
* Then pages of ten lines: ``Recorded Data``, ``Device Unique Serial Code:``,
  ``Sequence Number:``, ``Page Time:YYYY-MM-DD HH:MM:SS:mmm`` (the device clock at the page's
  first sample), ``Unassigned:``, ``Temperature:``, ``Battery voltage:``, ``Device Status:``,
  ``Measurement Frequency:`` (Hz) and one line of 3600 hex digits: 300 samples of 12 digits
  (48 bits): x, y, z as 12-bit two's complement, then 10 bits of light, the button bit and a
  reserved bit.
* Calibrated value, g: ``(raw * 100 - offset) / gain`` per axis. Sample ``i`` of a page is at
  ``page time + i / frequency``. The device range is ±8 g.

GENEA (the predecessor; layout as GGIRread's ``GeneaBinReader`` reads it, checked against its
published test values):

* A text header starting ``GENEA/`` with CRLF ``Key:Value`` lines (``Accel-Offsets``,
  ``Accel-Gains``, ``Sample-Rate:80Hz``, ...) ended by an empty line; the data follow at once.
* 2048-byte pages of 341 six-byte chunks (+ 2 padding bytes). The high nibble of a chunk's
  second byte is its type: 0 = one sample (x: low nibble of byte 1 + byte 2; y: byte 3 + high
  nibble of byte 4; z: low nibble of byte 4 + byte 5; 12-bit two's complement), 2 = a
  timestamp (bytes 2-5, big-endian seconds since 1970 on the device clock), 4 = battery.
* x and z are inverted; value, g: ``((raw + offset) * gain / 8192) / 340``. Samples after a
  timestamp ``T`` follow it at ``1 / rate`` (closer together if more samples than that fit
  before the next timestamp); samples before the first timestamp end at ``T - 1 / rate``.
  The device range is ±6 g.

Time: both devices keep local wall-clock time with no zone, set when the device is configured
(GENEActiv writes the configuring computer's offset as ``Time Zone``), and their clocks do not
follow daylight saving time. So every time in a file is placed with *one* offset: that of the
participant's zone (``ReadContext.timezone``) at the first sample (an InputError when no zone is
given, never a guess); a recording that spans a change of offset in that zone keeps running on
the device's clock and says so in a warning.

Damage: a page that is cut short at the end of the file, fewer pages than the header declares,
a page whose lines or hex digits are not as above, or a clock that runs backwards are an
InputError naming the page and byte offset. With ``salvage=True`` a truncated file keeps the
complete pages before the cut; malformed pages inside the file are skipped and left as gaps
(``AccelStream.gaps``), never padded.

:class:`FileBuffer` and :func:`place_device_clock` are shared by the other accelerometer
readers (``gt3x``, ``actigraph_csv``, ``accel_csv``).
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from actidose.errors import InputError, TimeAnchorError
from actidose.ingest.csv_hr import civil_to_us
from actidose.ingest.device_files import (
    CHUNK_SAMPLES,
    FileBuffer,
    fmt_offset,
    place_device_clock,
    require_zone,
)
from actidose.recording import AccelChunk, AccelStream, ReadContext, Recording

__all__ = [
    "FORMAT",
    "FileBuffer",
    "detect",
    "fmt_offset",
    "place_device_clock",
    "read",
    "require_zone",
]

FORMAT: Final = "geneactiv"
GENEACTIV_RANGE_G: Final = 8.0
GENEA_RANGE_G: Final = 6.0
_US: Final = 1_000_000
#: samples per chunk handed to processing (the brief of AccelStream: about 1-10 million)
#: a step in the device clock larger than this beyond the expected time is a gap
GAP_TOLERANCE_US: Final = 1_000_000

_PAGE_LINES: Final = 10
_PAGE_SAMPLES: Final = 300
_HEX_LEN: Final = _PAGE_SAMPLES * 12
_RECORDED: Final = b"Recorded Data"
_PAGE_TIME_RE: Final = re.compile(
    rb"^Page Time:\s*([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})[ T]([0-9]{1,2}):([0-9]{1,2}):"
    rb"([0-9]{1,2})(?:[:.]([0-9]{1,3}))?\s*$"
)
_FIRST_PAGE_RE: Final = re.compile(rb"^Recorded Data\r?$", re.MULTILINE)
_FREQ_RE: Final = re.compile(rb"^Measurement Frequency:\s*([0-9]+(?:\.[0-9]*)?)\s*(?:Hz)?\s*$")

#: hex digit -> value, 255 for anything else
_HEX_LUT: Final = np.full(256, 255, np.uint8)
for _i, _c in enumerate(b"0123456789ABCDEF"):
    _HEX_LUT[_c] = _i
    _HEX_LUT[bytes([_c]).lower()[0]] = _i

_GENEA_PAGE: Final = 2048
_GENEA_CHUNKS: Final = 341  # 6-byte chunks per page; 2 padding bytes follow
_GENEA_ACCEL: Final = 0
_GENEA_TIME: Final = 2
_GENEA_BATTERY: Final = 4
_GENEA_COUNTS_PER_G: Final = 340.0
_GENEA_GAIN_UNIT: Final = 8192.0
#: plausible device clock values (seconds since 1970 on a local clock): 1990 .. 2100
_MIN_CLOCK_S: Final = 631_152_000
_MAX_CLOCK_S: Final = 4_102_444_800


# --------------------------------------------------------------------------------------------
# shared by the accelerometer readers


def _header_fields(text: bytes) -> dict[str, str]:
    """``Key:Value`` lines -> {key: value} (first occurrence wins; keys and values stripped)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.decode("latin-1")
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


def _number(fields: dict[str, str], key: str, path: str) -> float:
    value = fields.get(key)
    m = re.match(r"^\s*([+-]?[0-9]+(?:\.[0-9]*)?)", value or "")
    if value is None or m is None:
        raise InputError(f"header has no numeric {key!r}", path=path, offset=0)
    return float(m.group(1))


# --------------------------------------------------------------------------------------------
# detection and entry point


def detect(head: bytes) -> bool:
    """A GENEActiv header (``Device Identity`` then the serial code line) or a GENEA one
    (``GENEA/`` version line)."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if head.startswith(b"GENEA/"):
        return True
    return head.startswith(b"Device Identity") and b"Device Unique Serial Code:" in head[:512]


def read(
    fp: BinaryIO, *, path: str = "<stream>", salvage: bool = False, ctx: ReadContext
) -> Recording:
    """Read a GENEActiv or GENEA ``.bin`` file into a Recording with an AccelStream (g, UTC).
    Raises InputError for damage (see the module docstring) and for a missing time zone."""
    buf = FileBuffer.of(fp, path=path)
    if len(buf) == 0:
        raise InputError("empty file", path=path, offset=0)
    head = bytes(buf.data[:16])
    if head.startswith(b"GENEA/"):
        return _read_genea(buf, path=path, salvage=salvage, ctx=ctx)
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if head.startswith(b"Device Identity"):
        return _read_geneactiv(buf, path=path, salvage=salvage, ctx=ctx)
    raise InputError("not a GENEActiv or GENEA .bin file", path=path, offset=0)


# --------------------------------------------------------------------------------------------
# GENEActiv


def _lines(buf: FileBuffer, start: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Start and end (exclusive, without CR/LF) offsets of the lines from ``start`` on, found
    in 64 MiB blocks; a last line without a line end counts too."""
    ends: list[npt.NDArray[np.int64]] = []
    block = 64 << 20
    n = len(buf)
    for b in range(start, n, block):
        arr = buf.array(b, min(b + block, n))
        ends.append(np.flatnonzero(arr == 10).astype(np.int64) + b)
    nl = np.concatenate(ends) if ends else np.empty(0, np.int64)
    starts = np.concatenate([np.array([start], np.int64), nl + 1])
    stops = np.append(nl, np.int64(n))
    if starts[-1] >= n:  # the file ends with a line end: no partial last line
        starts, stops = starts[:-1], stops[:-1]
    arr = buf.array()
    cr = (stops > starts) & (arr[np.maximum(stops - 1, 0)] == 13)
    return starts, stops - cr.astype(np.int64)


def _lines_equal(
    arr: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    stops: npt.NDArray[np.int64],
    text: bytes,
) -> npt.NDArray[np.bool_]:
    want = np.frombuffer(text, np.uint8)
    ok = stops - starts == len(text)
    idx = np.flatnonzero(ok)
    if idx.size:
        got = arr[starts[idx, None] + np.arange(len(text))]
        ok[idx] = np.all(got == want, axis=1)
    return ok


def _lines_start_with(
    arr: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    stops: npt.NDArray[np.int64],
    text: bytes,
) -> npt.NDArray[np.bool_]:
    want = np.frombuffer(text, np.uint8)
    ok = stops - starts >= len(text)
    idx = np.flatnonzero(ok)
    if idx.size:
        got = arr[starts[idx, None] + np.arange(len(text))]
        ok[idx] = np.all(got == want, axis=1)
    return ok


def _page_times(
    data: bytes | mmap.mmap, starts: npt.NDArray[np.int64], stops: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Local wall time (us) of ``Page Time:`` lines; one regular expression per page."""
    n = starts.size
    fields = np.zeros((7, n), np.int64)
    ok = np.zeros(n, bool)
    for i, (s, e) in enumerate(zip(starts.tolist(), stops.tolist(), strict=True)):
        m = _PAGE_TIME_RE.match(data[s:e])
        if m is None:
            continue
        ms = m.group(7) or b"0"
        fields[:6, i] = [int(g) for g in m.groups()[:6]]
        fields[6, i] = int(ms.ljust(3, b"0")) * 1000
        ok[i] = True
    us, valid = civil_to_us(*fields)
    return us, ok & valid


def _page_freqs(
    data: bytes | mmap.mmap, starts: npt.NDArray[np.int64], stops: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """``Measurement Frequency:`` of each page (NaN where unreadable); the few distinct
    texts are parsed once each."""
    out = np.full(starts.size, np.nan)
    cache: dict[bytes, float] = {}
    for i, (s, e) in enumerate(zip(starts.tolist(), stops.tolist(), strict=True)):
        text = bytes(data[s:e])
        if text not in cache:
            m = _FREQ_RE.match(text)
            cache[text] = float(m.group(1)) if m else np.nan
        out[i] = cache[text]
    return out


@dataclass
class _Damage:
    """The first damage met: where, what, and whether it ends the file (truncation)."""

    page: int
    offset: int
    reason: str
    truncation: bool


def _read_geneactiv(buf: FileBuffer, *, path: str, salvage: bool, ctx: ReadContext) -> Recording:
    data = buf.data
    arr = buf.array()
    m = _FIRST_PAGE_RE.search(data)
    first = m.start() if m else -1
    header = _header_fields(bytes(data[: first if first >= 0 else min(len(buf), 1 << 16)]))
    gains = np.array([_number(header, f"{a} gain", path) for a in "xyz"])
    offsets = np.array([_number(header, f"{a} offset", path) for a in "xyz"])
    if np.any(gains == 0):
        raise InputError("calibration data: a gain of 0", path=path, offset=0)
    declared = int(_number(header, "Number of Pages", path)) if "Number of Pages" in header else 0
    if first < 0:
        if declared == 0:
            raise InputError("the file holds no recorded pages", path=path, offset=len(buf))
        raise InputError(
            f"truncated: no 'Recorded Data' page after the header (the header declares "
            f"{declared} pages)",
            path=path,
            offset=len(buf),
        )
    starts, stops = _lines(buf, first)
    rd = np.flatnonzero(_lines_equal(arr, starts, stops, _RECORDED))
    if rd.size == 0 or rd[0] != 0:
        raise InputError("no 'Recorded Data' line where the pages start", path=path, offset=first)
    n_lines = np.diff(np.append(rd, np.int64(starts.size)))
    npages = rd.size
    # Lines of each page (clipped for short pages; those are rejected below).
    at = np.minimum(rd[:, None] + np.arange(_PAGE_LINES), starts.size - 1)
    ls, le = starts[at], stops[at]
    complete = n_lines == _PAGE_LINES
    ok = complete.copy()
    ok &= _lines_start_with(arr, ls[:, 3], le[:, 3], b"Page Time:")
    ok &= _lines_start_with(arr, ls[:, 8], le[:, 8], b"Measurement Frequency:")
    ok &= le[:, 9] - ls[:, 9] == _HEX_LEN
    local_us, t_ok = _page_times(data, ls[:, 3], le[:, 3])
    freqs = _page_freqs(data, ls[:, 8], le[:, 8])
    ok &= t_ok & np.isfinite(freqs) & (freqs > 0) & (freqs <= 10_000)
    hex_at = ls[:, 9]
    ok[ok] &= _hex_valid(buf, hex_at[ok])

    # What is wrong, and where: a page cut by the end of the file is truncation.
    damage: _Damage | None = None
    bad = np.flatnonzero(~ok)
    last_cut = npages - 1 in bad and (
        not complete[-1] or (le[-1, 9] - ls[-1, 9] < _HEX_LEN and stops[-1] == len(buf))
    )
    if bad.size:
        p = int(bad[0])
        trunc = last_cut and p == npages - 1
        reason = (
            f"truncated: page {p} (offset {int(starts[rd[p]])}) is cut short by the end of the file"
            if trunc
            else f"page {p} at offset {int(starts[rd[p]])} "
            + (
                f"has {int(n_lines[p])} lines, not {_PAGE_LINES}"
                if not complete[p]
                else "is malformed (page time, frequency or its 3600 hex digits)"
            )
        )
        damage = _Damage(p, int(starts[rd[p]]), reason, trunc)
    if damage is None and declared > npages:  # 0: not declared
        damage = _Damage(
            npages,
            len(buf),
            f"truncated: {npages} of the {declared} pages the header declares",
            True,
        )
    if damage is not None and not salvage:
        raise InputError(damage.reason, path=path, offset=damage.offset)
    good = np.flatnonzero(ok)
    if good.size == 0:
        reason = damage.reason if damage else "no pages"
        raise InputError(reason, path=path, offset=damage.offset if damage else first)

    tz = require_zone(ctx, path)
    t_local = local_us[good]
    f = freqs[good]
    nominal = float(np.median(f))
    off_us, warnings = place_device_clock(int(t_local[0]), int(t_local[-1]), tz)
    start = t_local - off_us
    # Order: a page may start before the last sample of the one before only by jitter of the
    # clock's resolution (< GAP_TOLERANCE); then it is placed just after it. A bigger step back
    # is damage.
    dur_last = np.rint((_PAGE_SAMPLES - 1) * _US / f).astype(np.int64)
    prev_last = np.concatenate([[np.iinfo(np.int64).min // 2], start[:-1] + dur_last[:-1]])
    back = start <= prev_last - GAP_TOLERANCE_US
    if back.any():
        k = int(np.flatnonzero(back)[0])
        p = int(good[k])
        reason = f"page {p} at offset {int(starts[rd[p]])}: the page time goes back in time"
        if not salvage:
            raise InputError(reason, path=path, offset=int(starts[rd[p]]))
        if damage is None or p < damage.page:
            damage = _Damage(p, int(starts[rd[p]]), reason, True)
        good, start, f, dur_last = good[:k], start[:k], f[:k], dur_last[:k]
    if damage is not None and damage.truncation:
        keep = good < damage.page
        good, start, f, dur_last = good[keep], start[keep], f[keep], dur_last[keep]
    if good.size == 0:
        assert damage is not None
        raise InputError(damage.reason, path=path, offset=damage.offset)
    # placed[k] = max(start[k], placed[k-1] + dur_last[k-1] + 1 us), as a running maximum
    step = np.concatenate([[0], np.cumsum(dur_last[:-1] + 1)])
    placed = np.maximum.accumulate(start - step) + step
    n_shifted = int(np.count_nonzero(placed != start))
    if n_shifted:
        warnings.append(
            f"{n_shifted} page(s) started before the previous page's last sample (by less "
            "than 1 s, the resolution of the page clock) and were placed just after it"
        )
    expected = placed[:-1] + np.rint(_PAGE_SAMPLES * _US / f[:-1]).astype(np.int64)
    holes = np.flatnonzero(placed[1:] - expected > GAP_TOLERANCE_US)
    gaps = [(int(expected[i]), int(placed[i + 1])) for i in holes]
    if len(np.unique(f)) > 1:
        warnings.append(
            "pages have different measurement frequencies: "
            + ", ".join(f"{v:g}" for v in np.unique(f))
            + f" Hz (the stream reports {nominal:g} Hz; each page is timed by its own)"
        )
    if damage is not None:
        n_bad_inside = int(np.count_nonzero(~ok[: damage.page if damage.truncation else npages]))
        if n_bad_inside:
            warnings.append(f"{n_bad_inside} malformed page(s) skipped (left as gaps)")

    stream_src = _GeneactivChunks(
        buf=buf,
        hex_at=hex_at[good],
        start_us=placed,
        freq=f,
        gains=gains,
        offsets=offsets,
    )
    stream = AccelStream(
        sample_rate_hz=nominal,
        chunks=stream_src,
        range_g=GENEACTIV_RANGE_G,
        n_samples=int(good.size * _PAGE_SAMPLES),
        gaps=gaps,
    )
    rec = Recording(format=FORMAT, kind="allday", accel=stream, warnings=warnings)
    rec.device = "GENEActiv " + header.get("Device Model", "").strip()
    rec.device = rec.device.strip()
    rec.serial = header.get("Device Unique Serial Code") or None
    rec.utc_offset_s = _header_offset(header.get("Time Zone", ""))
    if rec.utc_offset_s is not None and rec.utc_offset_s * _US != off_us:
        warnings.append(
            f"the device was configured with time zone {header.get('Time Zone')!r}; its times "
            f"were placed in {tz} ({fmt_offset(off_us // _US)} at the start)"
        )
    rec.meta = {
        "variant": "GENEActiv",
        "timezone": tz,
        "device_offset": fmt_offset(off_us // _US),
        "pages": str(good.size),
        "pages_declared": str(declared) if declared else "",
        "sample_rate_hz": f"{nominal:g}",
        "calibration": " ".join(
            f"{a}:gain={g:g},offset={o:g}" for a, g, o in zip("xyz", gains, offsets, strict=True)
        ),
    }
    for key in ("Device Firmware Version", "Device Location Code", "Start Time"):
        if header.get(key):
            rec.meta[key.lower().replace(" ", "_")] = header[key]
    if damage is not None:
        rec.salvaged = True
        rec.salvage_reason = damage.reason
    return rec


def _header_offset(text: str) -> int | None:
    """``GMT +01:00`` -> 3600; None unless plausible (±14 h on a 15-minute grid)."""
    m = re.search(r"([+-])\s*([0-9]{1,2}):([0-9]{2})", text)
    if not m:
        return None
    off = (int(m.group(2)) * 3600 + int(m.group(3)) * 60) * (-1 if m.group(1) == "-" else 1)
    return off if abs(off) <= 14 * 3600 and off % 900 == 0 else None


def _hex_block(buf: FileBuffer, hex_at: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """The hex lines starting at ``hex_at`` as an (n, 3600) array of nibble values (255 for
    a character that is not a hex digit)."""
    data = buf.data
    joined = b"".join(data[o : o + _HEX_LEN] for o in hex_at.tolist())
    raw = np.frombuffer(joined, np.uint8).reshape(hex_at.size, _HEX_LEN)
    return _HEX_LUT[raw]


def _hex_valid(buf: FileBuffer, hex_at: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    out = np.empty(hex_at.size, bool)
    step = CHUNK_SAMPLES // _PAGE_SAMPLES
    for s in range(0, hex_at.size, step):
        out[s : s + step] = ~np.any(_hex_block(buf, hex_at[s : s + step]) == 255, axis=1)
    return out


def decode_geneactiv_hex(nibbles: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    """(n, 3600) nibbles -> (n, 300, 3) raw signed 12-bit x, y, z."""
    n = nibbles.shape[0]
    d = nibbles.reshape(n, _PAGE_SAMPLES, 12)[:, :, :9].astype(np.int32)
    d = d.reshape(n, _PAGE_SAMPLES, 3, 3)
    raw = (d[..., 0] << 8) | (d[..., 1] << 4) | d[..., 2]
    return np.where(raw >= 2048, raw - 4096, raw)


@dataclass
class _GeneactivChunks:
    """``AccelStream.chunks`` of a GENEActiv file: decodes pages from the file's bytes on
    each call (picklable, so a Recording can leave a worker process)."""

    buf: FileBuffer
    hex_at: npt.NDArray[np.int64]
    start_us: npt.NDArray[np.int64]
    freq: npt.NDArray[np.float64]
    gains: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.float64]
    pages_per_chunk: int = CHUNK_SAMPLES // _PAGE_SAMPLES

    def __call__(self) -> Iterator[AccelChunk]:
        i = np.arange(_PAGE_SAMPLES, dtype=np.float64)
        for s in range(0, self.hex_at.size, self.pages_per_chunk):
            sl = slice(s, s + self.pages_per_chunk)
            raw = decode_geneactiv_hex(_hex_block(self.buf, self.hex_at[sl]))
            g = (raw * 100.0 - self.offsets) / self.gains
            ts = self.start_us[sl, None] + np.rint(i[None, :] * _US / self.freq[sl, None])
            yield AccelChunk(
                ts_us=ts.astype(np.int64).reshape(-1),
                xyz=g.reshape(-1, 3).astype(np.float32),
            )


# --------------------------------------------------------------------------------------------
# GENEA


def _read_genea(buf: FileBuffer, *, path: str, salvage: bool, ctx: ReadContext) -> Recording:
    head = bytes(buf.data[: 1 << 16])
    end = head.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end, sep = head.find(b"\n\n"), 2
    if end < 0:
        raise InputError("GENEA header without its closing empty line", path=path, offset=0)
    header = _header_fields(head[:end])
    body = end + sep
    warnings: list[str] = []
    try:
        gains = np.array([float(v) for v in header.get("Accel-Gains", "").split()])
        offsets = np.array([float(v) for v in header.get("Accel-Offsets", "").split()])
    except ValueError:
        raise InputError(
            "GENEA header: unreadable Accel-Gains/Offsets", path=path, offset=0
        ) from None
    if gains.size != 3 or offsets.size != 3:
        warnings.append("no usable Accel-Gains/Accel-Offsets in the header: 8192 and 0 used")
        gains, offsets = np.full(3, _GENEA_GAIN_UNIT), np.zeros(3)
    m = re.match(r"\s*([0-9]+(?:\.[0-9]*)?)", header.get("Sample-Rate", ""))
    if not m or not 0 < float(m.group(1)) <= 10_000:
        raise InputError("GENEA header: no Sample-Rate", path=path, offset=0)
    fs = float(m.group(1))

    size = len(buf) - body
    n_full = size // _GENEA_PAGE
    tail = size - n_full * _GENEA_PAGE
    damage: _Damage | None = None
    if tail:
        damage = _Damage(
            n_full,
            body + n_full * _GENEA_PAGE,
            f"truncated: the last page (offset {body + n_full * _GENEA_PAGE}) has {tail} of "
            f"{_GENEA_PAGE} bytes",
            True,
        )
    # With salvage the complete 6-byte chunks of a cut last page are kept too.
    n_chunks = n_full * _GENEA_CHUNKS + (min(tail, _GENEA_CHUNKS * 6) // 6 if tail else 0)
    _, clock, seg_start, n_samples, n_unknown, n_chunks, cut = _genea_scan(buf, body, n_chunks)
    if cut is not None:
        off = _genea_offset(body, cut)
        reason = f"timestamp chunk at offset {off} is out of range or not after the one before"
        if damage is None or cut < damage.page * _GENEA_CHUNKS:
            damage = _Damage(cut // _GENEA_CHUNKS, off, reason, True)
    if damage is not None and not salvage:
        raise InputError(damage.reason, path=path, offset=damage.offset)
    if clock.size == 0:
        raise TimeAnchorError("GENEA data without any timestamp chunk", path=path, offset=body)
    if n_samples == 0:
        raise InputError("GENEA file without acceleration samples", path=path, offset=body)
    if n_unknown:
        warnings.append(f"{n_unknown} chunk(s) of unknown type ignored")
    seg_n = np.diff(np.append(seg_start, n_samples)).astype(np.int64)
    gap_s = np.diff(clock).astype(np.float64)
    dt_us = np.full(clock.size, _US / fs)
    inner = seg_n[:-1] > 0
    dt_us[:-1][inner] = np.minimum(_US / fs, gap_s[inner] * _US / seg_n[:-1][inner])

    tz = require_zone(ctx, path)
    first_local = int(clock[0]) * _US - int(seg_start[0] * _US / fs)
    last_local = int(clock[-1]) * _US + int(seg_n[-1] * _US / fs)
    off_us, more = place_device_clock(first_local, last_local, tz)
    warnings += more
    base = clock * _US - off_us
    ends = base[:-1] + np.rint(seg_n[:-1] * dt_us[:-1]).astype(np.int64)
    holes = np.flatnonzero(base[1:] - ends > GAP_TOLERANCE_US)
    gaps = [(int(ends[i]), int(base[i + 1])) for i in holes]

    src = _GeneaChunks(
        buf=buf,
        body=body,
        n_chunks=n_chunks,
        seg_start=seg_start,
        base_us=base,
        dt_us=dt_us,
        first_dt_us=_US / fs,
        gains=gains,
        offsets=offsets,
    )
    stream = AccelStream(
        sample_rate_hz=fs,
        chunks=src,
        range_g=GENEA_RANGE_G,
        n_samples=n_samples,
        gaps=gaps,
    )
    rec = Recording(format=FORMAT, kind="allday", accel=stream, warnings=warnings)
    rec.device = "GENEA"
    rec.serial = header.get("Serial-Number") or None
    rec.meta = {
        "variant": "GENEA",
        "version": head[6 : head.find(b"\r")].decode("latin-1") if b"\r" in head[:16] else "",
        "timezone": tz,
        "device_offset": fmt_offset(off_us // _US),
        "sample_rate_hz": f"{fs:g}",
        "calibration": " ".join(
            f"{a}:gain={g:g},offset={o:g}" for a, g, o in zip("xyz", gains, offsets, strict=True)
        ),
    }
    for key in ("Firmware-Version", "Body-Location", "Trial-Start", "Study-Code"):
        if header.get(key):
            rec.meta[key.lower().replace("-", "_")] = header[key]
    if damage is not None:
        rec.salvaged = True
        rec.salvage_reason = damage.reason
    return rec


def _genea_scan(
    buf: FileBuffer, body: int, n_chunks: int
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], int, int, int, int | None
]:
    """One pass over the chunks, a part at a time: positions and clock values of the
    timestamps, the samples before each timestamp, the sample count, the chunks of unknown
    type, and where the clock first fails (a value out of range or not after the one before;
    the data end there)."""
    ts_parts: list[npt.NDArray[np.int64]] = []
    clock_parts: list[npt.NDArray[np.int64]] = []
    seg_parts: list[npt.NDArray[np.int64]] = []
    n_acc = n_unknown = 0
    last_clock = -1
    cut: int | None = None
    part = (CHUNK_SAMPLES // _GENEA_CHUNKS) * _GENEA_CHUNKS
    for s in range(0, n_chunks, part):
        c = _genea_chunks(buf, body, s, min(s + part, n_chunks))
        ctype = c[:, 1] >> 4
        idx = np.flatnonzero(ctype == _GENEA_TIME)
        clock = (
            (c[idx, 2].astype(np.int64) << 24)
            | (c[idx, 3].astype(np.int64) << 16)
            | (c[idx, 4].astype(np.int64) << 8)
            | c[idx, 5].astype(np.int64)
        )
        bad = (clock < _MIN_CLOCK_S) | (clock > _MAX_CLOCK_S)
        bad |= clock <= np.concatenate([[last_clock], clock[:-1]])
        stop = c.shape[0]
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            stop = int(idx[j])
            idx, clock = idx[:j], clock[:j]
            cut = s + stop
        is_acc = ctype[:stop] == _GENEA_ACCEL
        before = np.concatenate([[0], np.cumsum(is_acc, dtype=np.int64)])
        seg_parts.append(before[idx] + n_acc)
        ts_parts.append(idx.astype(np.int64) + s)
        clock_parts.append(clock)
        n_acc += int(before[-1])
        n_unknown += int(np.count_nonzero(~np.isin(ctype[:stop], (0, 2, 4))))
        if clock.size:
            last_clock = int(clock[-1])
        if cut is not None:
            return (
                np.concatenate(ts_parts),
                np.concatenate(clock_parts),
                np.concatenate(seg_parts),
                n_acc,
                n_unknown,
                cut,
                cut,
            )
    e = np.empty(0, np.int64)
    return (
        np.concatenate(ts_parts) if ts_parts else e,
        np.concatenate(clock_parts) if clock_parts else e,
        np.concatenate(seg_parts) if seg_parts else e,
        n_acc,
        n_unknown,
        n_chunks,
        None,
    )


def _genea_offset(body: int, chunk: int) -> int:
    return body + (chunk // _GENEA_CHUNKS) * _GENEA_PAGE + (chunk % _GENEA_CHUNKS) * 6


def _genea_chunks(buf: FileBuffer, body: int, first: int, stop: int) -> npt.NDArray[np.uint8]:
    """Chunks ``[first, stop)`` (counted over the whole data area) as an (n, 6) array."""
    if stop <= first:
        return np.empty((0, 6), np.uint8)
    p0, p1 = first // _GENEA_CHUNKS, -(-stop // _GENEA_CHUNKS)
    arr = buf.array(body + p0 * _GENEA_PAGE, body + p1 * _GENEA_PAGE)
    full = arr.size // _GENEA_PAGE
    parts = [arr[: full * _GENEA_PAGE].reshape(full, _GENEA_PAGE)[:, : _GENEA_CHUNKS * 6]]
    rest = arr[full * _GENEA_PAGE :]
    out = np.concatenate([parts[0].reshape(-1, 6), rest[: rest.size // 6 * 6].reshape(-1, 6)])
    lo = first - p0 * _GENEA_CHUNKS
    return out[lo : lo + stop - first]


def decode_genea_samples(chunks: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    """(n, 6) sample chunks -> (n, 3) raw signed 12-bit x, y, z as stored (not inverted)."""
    c = chunks.astype(np.int32)
    x = ((c[:, 1] & 15) << 8) | c[:, 2]
    y = (c[:, 3] << 4) | (c[:, 4] >> 4)
    z = ((c[:, 4] & 15) << 8) | c[:, 5]
    raw = np.stack([x, y, z], axis=1)
    return np.where(raw >= 2048, raw - 4096, raw)


@dataclass
class _GeneaChunks:
    """``AccelStream.chunks`` of a GENEA file (picklable)."""

    buf: FileBuffer
    body: int
    n_chunks: int
    seg_start: npt.NDArray[np.int64]
    base_us: npt.NDArray[np.int64]
    dt_us: npt.NDArray[np.float64]
    first_dt_us: float
    gains: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.float64]
    chunks_per_part: int = (CHUNK_SAMPLES // _GENEA_CHUNKS) * _GENEA_CHUNKS

    def __call__(self) -> Iterator[AccelChunk]:
        sign = np.array([-1.0, 1.0, -1.0])
        done = 0  # samples before this part
        for s in range(0, self.n_chunks, self.chunks_per_part):
            c = _genea_chunks(self.buf, self.body, s, min(s + self.chunks_per_part, self.n_chunks))
            acc = c[(c[:, 1] >> 4) == _GENEA_ACCEL]
            if acc.shape[0] == 0:
                continue
            g = (decode_genea_samples(acc) * sign + self.offsets) * self.gains / _GENEA_GAIN_UNIT
            g /= _GENEA_COUNTS_PER_G
            k = np.arange(done, done + acc.shape[0], dtype=np.int64)
            done += acc.shape[0]
            seg = np.searchsorted(self.seg_start, k, side="right") - 1
            before = seg < 0
            segc = np.maximum(seg, 0)
            ts = self.base_us[segc] + np.rint((k - self.seg_start[segc]) * self.dt_us[segc])
            if before.any():
                lead = self.seg_start[0] - k[before]
                ts[before] = self.base_us[0] - np.rint(lead * self.first_dt_us)
            yield AccelChunk(ts_us=ts.astype(np.int64), xyz=g.astype(np.float32))
