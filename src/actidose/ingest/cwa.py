"""Axivity ``.cwa`` importer: raw accelerometer samples from AX3 and AX6 devices.

Format facts (OpenMovement ``Docs/ax3/cwa.h`` and ``ax3-technical.md``; the field semantics below
are also those of OpenMovement's ``cwa_load.py`` and GGIRread's ``readAxivity.R``):

* A 1024-byte header block: ``"MD"``, packet length 1020, hardware type (0x00/0xff/0x17 AX3,
  0x64 AX6) @4, device id @5 (+ upper word @11, 0xffff = none), session id @7, rate code @36,
  last-change time @37, firmware @41, annotation @64..512.
* Then 512-byte data blocks, all little-endian: ``"AX"`` @0, packet length 508 @2,
  ``deviceFractional`` @4, session id @6, sequence id @10, ``timestamp`` @14 (packed local date
  and time ``YYYYYYMM MMDDDDDh hhhhmmmm mmssssss``, years since 2000), light @18 (its top 3 bits
  ``n`` give the accelerometer scale ``1 / 2**(8 + n)`` g: 0 on the AX3, 1/256 g), temperature
  @20, events @22, battery @23, rate code @24 (``3200 / (1 << (15 - (code & 15)))`` Hz,
  ``16 >> (code >> 6)`` g), ``numAxesBPS`` @25 (axes 3/6/9 in the high nibble; packing 0 = one
  little-endian uint32 per sample ``eezzzzzz zzzzyyyy yyyyyyxx xxxxxxxx``, three signed 10-bit
  values shifted left by the 2-bit exponent ``e``; 2 = signed 16-bit per axis, on the AX6
  gyroscope x/y/z first, then the accelerometer), ``timestampOffset`` @26 (int16), sample count
  @28, samples @30..510, checksum @510 (the 256 uint16 words of a block sum to 0 mod 2**16).
* Block time: when bit 15 of ``deviceFractional`` is set its low 15 bits are a fraction of the
  second (``frac16 = (v & 0x7fff) << 1``, in 1/65536 s) and the firmware had moved
  ``timestampOffset`` back by ``(frac16 * int(rate)) >> 16`` samples, which we add again; the
  block's first sample is then at ``timestamp + frac16 / 65536 - timestampOffset / rate``.
  Older firmware has no fraction (bit 15 clear: a device id) and the whole-second rule alone.

What this reader does with that:

* Every block is checked (vectorized over all blocks): magic and length, checksum, a layout we
  know (packed needs 3 axes), a sample count from 1 to the block's capacity (120 packed,
  480 / (2 * axes) unpacked), a valid date, a nonzero rate code, and the file's layout and
  rate (the most common among readable blocks). Failing blocks are *corrupt*: skipped, counted
  (``meta["corrupt_blocks"]``: their 0-based indices among the data blocks, the first block
  after the header being 0; GGIRread's test file ``..._corrupt_blocks_0_13_14_142_143_144.cwa``
  names them so) and left as gaps, never padded. A truncated final block is ignored with a
  warning.
* Sample times follow OpenMovement's ``cwa_load.py``: each block's time anchor (timestamp +
  fraction at its sample ``timestampOffset``) is a point of a piecewise-linear clock over the
  sample index, which places each block's first sample; the samples in between are spaced
  evenly up to the next block's first sample, so the device's true rate (typically 1-2 % off
  nominal) is followed. Blocks are *successive* when adjacent in the file with the next
  sequence id, the same session and a clock rate 0.5-2x nominal between their anchors; a run
  of successive blocks extrapolates its end segments, a lone block uses the nominal rate, and
  the last block of a run its run's last rate. Any other break that leaves more than one
  sample period uncovered is a gap (``AccelStream.gaps``: corrupt or missing blocks, and the
  estimated span of corrupt blocks before the first and after the last sample). A block that
  does not start after every earlier block is dropped and counted
  (``meta["out_of_order_blocks"]``), so times ascend.
* Device times are local wall times without a zone (the header's time-zone field is unused):
  the zone comes from ``ctx.timezone`` (the participant's, or ``--timezone``); without one the
  file cannot be placed in time (:class:`~actidose.errors.TimeAnchorError`, never a guess). The
  device clock is set once, at configuration, and runs on without daylight-saving changes, so
  one UTC offset is applied to the whole file: the zone's offset at the clock's setting (the
  header's last-change time when it lies within 30 days before the first block, else the first
  block's time), via :func:`actidose.timeutil.local_to_utc`. Converting each block on its own
  would put a false hour of overlap or gap into every recording that spans a DST change.
* Samples are decoded lazily: :func:`read` keeps the file's bytes and the per-block facts;
  ``AccelStream.chunks()`` decodes about a million samples at a time, fully vectorized.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import numpy as np
import numpy.typing as npt

from actidose.errors import InputError, TimeAnchorError
from actidose.recording import AccelChunk, AccelStream, ReadContext, Recording
from actidose.timeutil import local_to_utc

__all__ = ["BLOCK_SIZE", "HEADER_SIZE", "detect", "read"]

HEADER_SIZE: Final = 1024
BLOCK_SIZE: Final = 512
_HEADER_PACKET_LENGTH: Final = 1020  # cwa.h: 1020 bytes + the 4-byte packet header
_DATA_PACKET_LENGTH: Final = 508
_AX: Final = 0x5841  # "AX" read as a little-endian uint16
_DATA_OFFSET: Final = 30  # rawSampleData @30 .. 510
_DATA_BYTES: Final = 480
_HW_AX3: Final = frozenset({0x00, 0xFF, 0x17})
_HW_AX6: Final = 0x64
_US: Final = 1_000_000
_CLOCK_SET_MAX_LEAD_S: Final = 30 * 86_400  # last-change time accepted as the clock setting
#: Blocks decoded per chunk: 8192 packed blocks are ~1 million samples (DESIGN: 1-10 million).
_CHUNK_BLOCKS: Final = 8192

# Corrupt-block reasons, in the order they are tested (a block gets the first that applies).
_REASONS: Final = (
    "bad block header",
    "bad checksum",
    "bad sample format",
    "bad timestamp",
    "format change",
)

#: A data block's header (cwa.h ``OM_READER_DATA_PACKET`` up to the samples), by byte offset.
_BLOCK = np.dtype(
    {
        "names": [
            "magic",
            "length",
            "fractional",
            "session",
            "sequence",
            "timestamp",
            "light",
            "rate",
            "axes_bps",
            "ts_offset",
            "count",
        ],
        "formats": ["<u2", "<u2", "<u2", "<u4", "<u4", "<u4", "<u2", "u1", "u1", "<i2", "<u2"],
        "offsets": [0, 2, 4, 6, 10, 14, 18, 24, 25, 26, 28],
        "itemsize": _DATA_OFFSET,
    }
)


_FIELDS: Final = ("fractional", "session", "sequence", "light", "ts_offset", "count")
_Columns = dict[str, npt.NDArray[Any]]


def detect(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file, at least 4) starts an Axivity .cwa file:
    the header block's ``"MD"`` and its packet length 1020 (cwa.h). Content only."""
    return (
        len(head) >= 4
        and head[:2] == b"MD"
        and int.from_bytes(head[2:4], "little") == _HEADER_PACKET_LENGTH
    )


def read(
    fp: BinaryIO,
    *,
    path: str = "<stream>",
    salvage: bool = False,
    ctx: ReadContext,
) -> Recording:
    """Read one .cwa file into a :class:`Recording` with a lazily decoded ``accel`` stream.

    The whole file is read into memory (a week at 100 Hz packed is 258 MB) and the header and
    every block's header are checked here; the samples are decoded by ``accel.chunks()``, which
    may be called any number of times after ``fp`` is closed. Errors are
    :class:`~actidose.errors.InputError` with a byte offset: "empty file", "not an Axivity CWA
    file", "truncated header at offset N", "no data blocks after the header", "no readable data
    block (N corrupt)"; :class:`~actidose.errors.TimeAnchorError` without ``ctx.timezone``.

    ``salvage`` changes nothing: corrupt blocks are skipped (and counted) in either mode, as the
    per-block checksums make every other block trustworthy.
    """
    del salvage  # see the docstring
    data = fp.read()
    if not isinstance(data, bytes | bytearray):
        raise InputError("not a binary stream", path=path, offset=0)
    data = bytes(data)
    if not data:
        raise InputError("empty file", path=path, offset=0)
    if not detect(data[:4]):
        raise InputError("not an Axivity CWA file", path=path, offset=0)
    if len(data) < HEADER_SIZE:
        raise InputError(f"truncated header at offset {len(data)}", path=path, offset=len(data))
    n_blocks, tail = divmod(len(data) - HEADER_SIZE, BLOCK_SIZE)
    if n_blocks == 0:
        raise InputError("no data blocks after the header", path=path, offset=HEADER_SIZE)
    if ctx.timezone is None:
        raise TimeAnchorError(
            "Axivity times are local wall times without a zone: a time zone is needed "
            "(the participant's, or --timezone)",
            path=path,
            offset=HEADER_SIZE,
        )

    warnings: list[str] = []
    if tail:
        at = HEADER_SIZE + n_blocks * BLOCK_SIZE
        warnings.append(f"truncated final block ({tail} of {BLOCK_SIZE} bytes) at offset {at}")

    header = _parse_header(data)
    raw = np.frombuffer(data, np.uint8, count=n_blocks * BLOCK_SIZE, offset=HEADER_SIZE)
    # the 30-byte block headers, copied together once (fields read from the 512-byte records
    # in place would touch a cache line per field and block)
    heads = np.ascontiguousarray(raw.reshape(n_blocks, BLOCK_SIZE)[:, :_DATA_OFFSET])
    blocks: npt.NDArray[np.void] = heads.view(_BLOCK).reshape(n_blocks)
    reason, local_us = _check_blocks(raw, blocks)
    good = np.flatnonzero(reason == 0)
    corrupt = np.flatnonzero(reason != 0)
    if good.size == 0:
        raise InputError(
            f"no readable data block ({n_blocks} corrupt: {_describe_reasons(reason)})",
            path=path,
            offset=HEADER_SIZE,
        )

    ref = blocks[good[0]]
    rate_code = int(ref["rate"])
    rate_hz = 3200.0 / (1 << (15 - (rate_code & 15)))
    range_g = float(16 >> (rate_code >> 6))
    axes_bps = int(ref["axes_bps"])
    if header.rate != rate_code:
        warnings.append(
            f"header rate code {header.rate} differs from the data blocks' {rate_code}: "
            "the data blocks' is used"
        )

    b = {name: blocks[name][good] for name in _FIELDS}
    b["local_us"] = local_us[good]
    anchor_local_us, anchor_pos = _anchors(b, rate_hz)
    first_local_us = int(anchor_local_us[0] - anchor_pos[0] * (_US / rate_hz))
    offset_us, clock_note = _clock_offset_us(header.last_change_us, first_local_us, ctx)
    if clock_note:
        warnings.append(clock_note)
    count = b["count"].astype(np.int64)
    kept, t_us, period_us, successor = _timeline(
        good, b, anchor_local_us - offset_us, anchor_pos, count, rate_hz
    )
    n_out_of_order = int(good.size - kept.size)
    if n_out_of_order:
        warnings.append(f"{n_out_of_order} data blocks out of time order dropped")
        good, count = good[kept], count[kept]
        b = {name: column[kept] for name, column in b.items()}
    capacity = int(_capacity(axes_bps))
    gaps = _gaps(good, t_us, count, period_us, successor, n_blocks, capacity, rate_hz)

    if corrupt.size:
        shown = ", ".join(str(i) for i in corrupt[:10].tolist())
        more = f" and {corrupt.size - 10} more" if corrupt.size > 10 else ""
        warnings.append(
            f"{corrupt.size} corrupt data blocks skipped ({_describe_reasons(reason)}): "
            f"blocks {shown}{more}"
        )

    n_axes = axes_bps >> 4
    scale_code = (b["light"] >> 13).astype(np.int8)
    plan = _Plan(
        data=data,
        n_blocks=n_blocks,
        index=good,
        t_us=t_us,
        period_us=period_us,
        count=count,
        scale_code=scale_code,
        packed=(axes_bps & 15) == 0,
        n_axes=n_axes,
        capacity=capacity,
    )
    n_samples = int(count.sum())
    stream = AccelStream(
        sample_rate_hz=rate_hz,
        chunks=plan.chunks,
        range_g=range_g,
        n_samples=n_samples,
        gaps=gaps,
    )

    meta = {
        "hardware_type": f"0x{header.hardware:02x}",
        "session_id": str(header.session),
        "firmware_revision": str(header.firmware),
        "axes": str(n_axes),
        "packing": "packed 10-bit" if plan.packed else "16-bit",
        "rate_code": str(rate_code),
        "n_blocks": str(n_blocks),
        "n_corrupt_blocks": str(corrupt.size),
        "corrupt_blocks": ",".join(str(i) for i in corrupt.tolist()),
        "out_of_order_blocks": str(n_out_of_order),
        "clock_utc_offset_s": str(offset_us // _US),
    }
    linked = np.flatnonzero(successor)
    if linked.size:
        span_us = float(np.sum(t_us[linked + 1] - t_us[linked]))
        meta["sample_rate_measured_hz"] = f"{np.sum(count[linked]) * _US / span_us:.4f}"
    if n_axes > 3:
        meta["dropped_channels"] = "gyroscope" if n_axes == 6 else "gyroscope, magnetometer"
    if header.annotation:
        meta["annotation"] = header.annotation
    if header.last_change_us is not None:
        meta["last_change_local"] = str(np.datetime64(header.last_change_us, "us"))[:19]

    hw = header.hardware
    device = "axivity ax6" if hw == _HW_AX6 else "axivity ax3" if hw in _HW_AX3 else "axivity"
    return Recording(
        format="cwa",
        kind="allday",
        accel=stream,
        device=device,
        serial=str(header.device_id),
        utc_offset_s=int(offset_us // _US),
        warnings=warnings,
        meta=meta,
    )


# --------------------------------------------------------------------------------------------
# Header and block checks


@dataclass(frozen=True)
class _Header:
    hardware: int
    device_id: int
    session: int
    rate: int
    firmware: int
    last_change_us: int | None  # local wall time, us since 1970-01-01 local
    annotation: str


def _parse_header(data: bytes) -> _Header:
    h = data[:HEADER_SIZE]
    upper = int.from_bytes(h[11:13], "little")
    last_change = int(_local_us(np.array([int.from_bytes(h[37:41], "little")], np.uint32))[0])
    return _Header(
        hardware=h[4],
        device_id=int.from_bytes(h[5:7], "little") | ((0 if upper == 0xFFFF else upper) << 16),
        session=int.from_bytes(h[7:11], "little"),
        rate=h[36],
        firmware=h[41],
        last_change_us=None if last_change < 0 else last_change,
        annotation=h[64:512].decode("ascii", "replace").rstrip("\x20\x00\ufffd"),
    )


def _capacity(axes_bps: npt.NDArray[np.integer] | int) -> npt.NDArray[np.int64]:
    """Samples a block can hold for its ``numAxesBPS``: 120 packed, 480 / (2 * axes) unpacked
    (80, 40, 26); 0 for a layout we cannot read."""
    a = np.asarray(axes_bps, np.int64)
    axes, packing = a >> 4, a & 15
    ok_packed = (packing == 0) & (axes == 3)
    ok_unpacked = (packing == 2) & ((axes == 3) | (axes == 6) | (axes == 9))
    unpacked = _DATA_BYTES // (2 * np.maximum(axes, 1))
    return np.where(ok_packed, 120, np.where(ok_unpacked, unpacked, 0))


def _check_blocks(
    raw: npt.NDArray[np.uint8], blocks: npt.NDArray[np.void]
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int64]]:
    """Per block: 0 when readable, else 1 + the index of its reason in :data:`_REASONS`; and
    the block timestamp as local microseconds (-1 when invalid)."""
    n_blocks = blocks.size
    words = raw.view("<u2").reshape(n_blocks, BLOCK_SIZE // 2)
    checksum_ok = words.sum(axis=1, dtype=np.uint16) == 0
    header_ok = (blocks["magic"] == _AX) & (blocks["length"] == _DATA_PACKET_LENGTH)
    capacity = _capacity(blocks["axes_bps"])
    count = blocks["count"].astype(np.int64)
    format_ok = (count >= 1) & (count <= capacity) & ((blocks["rate"] & 15) != 0)
    local_us = _local_us(blocks["timestamp"])
    time_ok = local_us >= 0
    reason = np.zeros(n_blocks, np.int8)
    checks = (header_ok, checksum_ok, format_ok, time_ok)
    for code in range(len(checks), 0, -1):  # the first failing check wins
        reason[~checks[code - 1]] = code
    ok = reason == 0
    if ok.any():  # one layout and rate per file: the most common one among readable blocks
        key = (blocks["axes_bps"].astype(np.int32) << 8) | blocks["rate"]
        values, counts = np.unique(key[ok], return_counts=True)
        reason[ok & (key != values[np.argmax(counts)])] = len(_REASONS)
    return reason, local_us


def _describe_reasons(reason: npt.NDArray[np.int8]) -> str:
    counts = np.bincount(reason, minlength=len(_REASONS) + 1)
    return ", ".join(
        f"{_REASONS[i - 1]}: {int(counts[i])}" for i in range(1, counts.size) if counts[i]
    )


def _local_us(packed: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
    """Packed device date-times -> microseconds since 1970-01-01 *local*; -1 where invalid
    (zero = unknown, month or day out of range, hour > 23, minute or second > 59)."""
    v = np.asarray(packed, np.uint32).astype(np.int64)
    year = (v >> 26) + 2000
    month = (v >> 22) & 0x0F
    day = (v >> 17) & 0x1F
    hour = (v >> 12) & 0x1F
    minute = (v >> 6) & 0x3F
    second = v & 0x3F
    months = (year - 1970) * 12 + np.clip(month, 1, 12) - 1
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    days_in_month = (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(
        np.int64
    ) - first
    ok = (
        (v != 0)
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= days_in_month)
        & (hour < 24)
        & (minute < 60)
        & (second < 60)
    )
    seconds = (first + day - 1) * 86_400 + hour * 3600 + minute * 60 + second
    return np.where(ok, seconds * _US, -1)


# --------------------------------------------------------------------------------------------
# Time


def _anchors(b: _Columns, rate_hz: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each block's time anchor: the local time (us) of its timestamp, fraction included, and
    the sample index (relative to the block's first sample, may lie outside the block) that the
    time belongs to (cwa.h ``deviceFractional`` and ``timestampOffset``)."""
    fractional = b["fractional"].astype(np.int64)
    frac16 = np.where((fractional & 0x8000) != 0, (fractional & 0x7FFF) << 1, 0)
    # the firmware truncates the rate to an integer for this shift (readAxivity.R, cwa_load.py)
    position = b["ts_offset"].astype(np.int64) + ((frac16 * int(rate_hz)) >> 16)
    frac_us = (frac16 * _US + 32_768) >> 16  # 1/65536 s -> us, rounded
    return b["local_us"] + frac_us, position


def _clock_offset_us(
    last_change_us: int | None, first_local_us: int, ctx: ReadContext
) -> tuple[int, str | None]:
    """UTC offset (local - UTC, us) of the device clock: the zone's offset when the clock was set
    (the header's last-change time when plausible, else the first block), and a note when that
    wall time was ambiguous or skipped in the zone."""
    assert ctx.timezone is not None
    anchor = first_local_us
    if last_change_us is not None and 0 <= first_local_us - last_change_us <= (
        _CLOCK_SET_MAX_LEAD_S * _US
    ):
        anchor = last_change_us
    utc, status = local_to_utc(np.array([anchor], np.int64), ctx.timezone)
    note = None
    if status[0] != 0:
        when = str(np.datetime64(anchor, "us"))[:19]
        kind = "ambiguous" if status[0] == 1 else "skipped"
        note = f"device clock anchor {when} is {kind} in {ctx.timezone} (DST change)"
    return anchor - int(utc[0]), note


def _timeline(
    index: npt.NDArray[np.int64],
    b: _Columns,
    anchor_us: npt.NDArray[np.int64],
    anchor_pos: npt.NDArray[np.int64],
    count: npt.NDArray[np.int64],
    rate_hz: float,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.bool_]
]:
    """Sample times of the good blocks, as OpenMovement's ``cwa_load.py`` computes them.

    Within a *run* of successive blocks the anchors (global sample index, UTC time) define a
    piecewise-linear clock; each block's first sample is placed on it (runs' ends extrapolate
    their first or last segment; a lone block uses the nominal rate) and its samples are spaced
    evenly up to the next block's first sample. (Per-sample interpolation between the anchors,
    as ``cwa_load.py`` does, would bend the line at each anchor; the two differ by the anchors'
    jitter, some 10 us on the AX3 and up to 0.25 ms on the AX6: at most 3 % of a period.)

    Returns which good blocks are kept (positions; a block that does not start after every
    earlier one is dropped), and for those the first-sample time (us), the sample period (us)
    and whether the next kept block is its successor.
    """
    nominal = _US / rate_hz
    k = index.size
    s = np.zeros(k, np.int64)
    np.cumsum(count[:-1], out=s[1:])
    pos = s + anchor_pos  # global sample index of each anchor
    t_anchor = anchor_us.astype(np.float64)
    successor = np.zeros(k, bool)
    slope = np.full(k, nominal)  # slope[i]: us per sample from anchor i to anchor i + 1
    if k >= 2:
        d_pos = pos[1:] - pos[:-1]
        seg = (t_anchor[1:] - t_anchor[:-1]) / np.maximum(d_pos, 1)
        successor[:-1] = (
            (index[1:] == index[:-1] + 1)
            & (b["sequence"][1:] == b["sequence"][:-1] + 1)
            & (b["session"][1:] == b["session"][:-1])
            & (d_pos > 0)
            & (seg >= 0.5 * nominal)
            & (seg <= 2.0 * nominal)
        )
        slope[:-1] = np.where(successor[:-1], seg, nominal)
    starts = np.ones(k, bool)
    starts[1:] = ~successor[:-1]
    run = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.append(first[1:], k) - 1
    lo, hi = first[run], last[run]
    # the anchor segment holding each block's first sample, searched within its own run
    # (runs kept apart by a large stride; positions within a run stay far below it)
    stride = np.int64(1) << 40
    key_pos = run * stride + (pos - s[lo])
    key_s = run * stride + (s - s[lo])
    seg_i = np.clip(np.searchsorted(key_pos, key_s, side="right") - 1, lo, np.maximum(hi - 1, lo))
    first_t = np.where(
        hi > lo,
        t_anchor[seg_i] + (s - pos[seg_i]) * slope[seg_i],
        t_anchor - anchor_pos * nominal,
    )

    keep = np.ones(k, bool)
    keep[1:] = first_t[1:] > np.maximum.accumulate(first_t)[:-1]
    kept = np.flatnonzero(keep)
    first_t, n = first_t[kept], count[kept]
    successor = successor[kept]
    successor[:-1] &= kept[1:] == kept[:-1] + 1
    successor[-1] = False
    period = np.full(kept.size, nominal)
    if kept.size >= 2:
        to_next = (first_t[1:] - first_t[:-1]) / n[:-1]
        period[:-1] = np.where(successor[:-1], to_next, nominal)
        # a block without a successor keeps the rate of the segment that led to it, if any,
        inherit = ~successor[1:] & successor[:-1]
        period[1:][inherit] = slope[kept[:-1]][inherit]
        # ... and always ends before the next kept block starts
        np.minimum(period[:-1], to_next, out=period[:-1])
    return kept, np.rint(first_t).astype(np.int64), period, successor


def _gaps(
    index: npt.NDArray[np.int64],
    t_us: npt.NDArray[np.int64],
    count: npt.NDArray[np.int64],
    period_us: npt.NDArray[np.float64],
    successor: npt.NDArray[np.bool_],
    n_blocks: int,
    capacity: int,
    rate_hz: float,
) -> list[tuple[int, int]]:
    """UTC spans without samples: between kept blocks that are not successive (more than one
    sample period uncovered), and the estimated span of skipped blocks before the first and
    after the last kept block."""
    nominal = _US / rate_hz
    end = t_us + np.rint(count * period_us).astype(np.int64)
    brk = np.flatnonzero(~successor[:-1])
    starts, stops = end[brk], t_us[brk + 1]
    keep = stops - starts > nominal
    gaps = list(zip(starts[keep].tolist(), stops[keep].tolist(), strict=True))
    block_us = round(capacity * nominal)
    lead, trail = int(index[0]), n_blocks - 1 - int(index[-1])
    if lead:
        gaps.insert(0, (int(t_us[0]) - lead * block_us, int(t_us[0])))
    if trail:
        gaps.append((int(end[-1]), int(end[-1]) + trail * block_us))
    return gaps


# --------------------------------------------------------------------------------------------
# Sample decoding


class _Plan:
    """What ``chunks()`` needs to decode the kept blocks again, from the file's bytes."""

    def __init__(
        self,
        *,
        data: bytes,
        n_blocks: int,
        index: npt.NDArray[np.int64],
        t_us: npt.NDArray[np.int64],
        period_us: npt.NDArray[np.float64],
        count: npt.NDArray[np.int64],
        scale_code: npt.NDArray[np.int8],
        packed: bool,
        n_axes: int,
        capacity: int,
    ) -> None:
        self.data = data
        self.n_blocks = n_blocks
        self.index = index
        self.t_us = t_us
        self.period_us = period_us
        self.count = count
        self.scale_code = scale_code
        self.packed = packed
        self.n_axes = n_axes
        self.capacity = capacity

    def chunks(self) -> Iterator[AccelChunk]:
        raw = np.frombuffer(
            self.data, np.uint8, count=self.n_blocks * BLOCK_SIZE, offset=HEADER_SIZE
        ).reshape(self.n_blocks, BLOCK_SIZE)
        for g0 in range(0, self.index.size, _CHUNK_BLOCKS):
            g = slice(g0, g0 + _CHUNK_BLOCKS)
            yield self._decode(raw, g)

    def _decode(self, raw: npt.NDArray[np.uint8], g: slice) -> AccelChunk:
        index = self.index[g]
        first, last = int(index[0]), int(index[-1])
        if last - first + 1 == index.size:  # no skipped block inside: a plain slice
            payload = raw[first : last + 1, _DATA_OFFSET : _DATA_OFFSET + _DATA_BYTES]
        else:
            payload = raw[index, _DATA_OFFSET : _DATA_OFFSET + _DATA_BYTES]
        payload = np.ascontiguousarray(payload)
        cap = self.capacity
        if self.packed:
            xyz = _unpack_packed(payload.view("<u4")[:, :cap])
        else:
            samples = payload.view("<i2")[:, : cap * self.n_axes].reshape(-1, cap, self.n_axes)
            accel = samples[:, :, 0:3] if self.n_axes == 3 else samples[:, :, 3:6]
            xyz = (accel * np.float32(1 / 256)).reshape(-1, 3)
        codes = self.scale_code[g]
        if codes.any():  # AX6 (and any non-default scale): 1 / 2**(8 + n) g
            factor = np.ldexp(np.float32(1), -codes.astype(np.int32)).astype(np.float32)
            xyz = (xyz.reshape(-1, cap, 3) * factor[:, None, None]).reshape(-1, 3)

        t0 = self.t_us[g].astype(np.float64) + 0.5  # + 0.5: round when truncating below
        ts = np.multiply.outer(self.period_us[g], np.arange(cap, dtype=np.float64))
        ts += t0[:, None]
        ts_us = ts.astype(np.int64).reshape(-1)
        count = self.count[g]
        if (count < cap).any():  # partly filled blocks: keep their first `count` samples
            mask = (np.arange(cap)[None, :] < count[:, None]).reshape(-1)
            ts_us, xyz = ts_us[mask], xyz[mask]
        return AccelChunk(ts_us=ts_us, xyz=np.ascontiguousarray(xyz, dtype=np.float32))


def _unpack_packed(words: npt.NDArray[np.uint32]) -> npt.NDArray[np.float32]:
    """Packed AX3 samples (cwa.h packing 0) -> (n, 3) float32 g at 1/256 g per unit.

    Each 10-bit field is moved to the top of a 16-bit word (bits 6..15), read as int16 and
    shifted right arithmetically by ``6 - e``: sign extension and the exponent in one step, as
    cwa.h's ``UNPACK_X`` macros do.
    """
    w = words.reshape(-1)
    shift = (6 - (w >> 30)).astype(np.int16)
    out = np.empty((w.size, 3), np.float32)
    tmp = np.empty(w.size, np.uint32)
    top = np.empty(w.size, np.uint16)
    for axis, (direction, bits) in enumerate(
        ((np.left_shift, 6), (np.right_shift, 4), (np.right_shift, 14))
    ):
        direction(w, bits, out=tmp)
        np.copyto(top, tmp, casting="unsafe")  # keep the low 16 bits
        top &= 0xFFC0
        value = np.right_shift(top.view(np.int16), shift)
        np.multiply(value, np.float32(1 / 256), out=out[:, axis])
    return out
