"""ActiGraph ``.gt3x`` files (format ``"gt3x"``): raw acceleration in g.

Written from ActiGraph's public description of the format (github.com/actigraph/GT3X-File-Format:
``README.md``, ``info.txt.md``, ``LogRecords/Activity.md``, ``Activity2.md``, ``Parameters.md``):

* A zip archive holding ``info.txt`` (``Key: Value`` lines: ``Serial Number``, ``Sample Rate``
  in Hz, ``Start Date`` in .NET ticks, and on newer devices ``Acceleration Scale``,
  ``Acceleration Max``, ``TimeZone``) and ``log.bin``.
* ``log.bin`` is a sequence of records: separator ``0x1E``, type (1 byte), timestamp (uint32
  little-endian, seconds since 1970 on the device clock), payload size (uint16 LE), payload,
  checksum (the one's complement of the XOR of header and payload). A few zero bytes may sit
  between records ("Extra bytes with 0's between valid records": skipped).
* ``ACTIVITY`` (0x00): one second of samples packed as 12-bit two's complement values in
  y, x, z order, most significant nibble first (an odd sample count leaves a spare nibble).
  ``ACTIVITY2`` (0x1A): one second as little-endian int16 in x, y, z order. A 1-byte payload of
  either is a USB-connection event, not data (ignored). Value in g = count / scale; the scale
  is ``ACCEL_SCALE`` of the ``PARAMETERS`` record (0x15; address 0, id 55, ActiGraph's float
  encoding) when present, else ``Acceleration Scale`` of info.txt, else 256 for serial numbers
  starting ``MOS`` (±8 g) and 341 for ``NEO``/``CLE`` (±6 g). Values are not rounded to three
  decimals as ActiLife does (that would throw away resolution).
* Sample ``i`` of a record is at ``timestamp + i / rate`` (``Sample Rate`` of info.txt; a record
  holding more samples than the rate is spread over its second).
* Seconds without an ACTIVITY record (the device's idle sleep mode, EVENT records with payload
  ``08``/``09``, or records lost) are gaps (``AccelStream.gaps``), never padded: ActiLife fills
  them with the last sample, which would invent data.

Older NHANES-style files (``activity.bin`` + ``log.txt``, GT3X+ firmware 2.5.0 and earlier) are
refused with a specific reason, as is a ``log.bin`` larger than 4 GiB.

Time: the device clock keeps local wall-clock time set at initialization and does not follow
daylight saving time; every time is placed with the offset of the participant's zone at the
first sample (see :func:`actidose.ingest.geneactiv.place_device_clock`); no zone -> InputError.

Damage: a record cut short by the end of ``log.bin``, a byte that is neither a separator nor
padding where a record should start, a bad checksum, a record whose payload size does not fit
its type, or a clock that does not advance are InputErrors with the byte offset in ``log.bin``.
With ``salvage=True`` the file is read up to the first structural damage; records with a bad
checksum are skipped (their seconds become gaps).
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO, Final

import numpy as np
import numpy.typing as npt

from actidose.errors import InputError
from actidose.ingest.device_files import (
    CHUNK_SAMPLES,
    FileBuffer,
    fmt_offset,
    place_device_clock,
    require_zone,
)
from actidose.recording import AccelChunk, AccelStream, ReadContext, Recording

__all__ = ["FORMAT", "detect", "read"]

FORMAT: Final = "gt3x"
_US: Final = 1_000_000
_SEP: Final = 0x1E
_ACTIVITY: Final = 0x00
_EVENT: Final = 0x03
_PARAMETERS: Final = 0x15
_ACTIVITY2: Final = 0x1A
_HEADER: Final = struct.Struct("<BBIH")
#: .NET ticks (100 ns since 0001-01-01) of 1970-01-01
_TICKS_1970: Final = 621_355_968_000_000_000
MAX_LOG_BYTES: Final = 4 << 30
MAX_INFO_BYTES: Final = 1 << 20
_BLOCK: Final = 16 << 20
_NONZERO: Final = re.compile(rb"[^\x00]")
_MEMBERS: Final = (b"log.bin", b"info.txt", b"activity.bin", b"log.txt")


# --------------------------------------------------------------------------------------------
# detection


def detect(head: bytes) -> bool:
    """A zip whose first member is ``log.bin`` starting with a record separator, ``info.txt``
    holding ``Serial Number``, or the old ``activity.bin``/``log.txt`` (to refuse it by name)."""
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        return False
    method, csize = struct.unpack_from("<H", head, 8)[0], struct.unpack_from("<I", head, 18)[0]
    nlen, xlen = struct.unpack_from("<HH", head, 26)
    name = head[30 : 30 + nlen]
    if name not in _MEMBERS:
        return False
    start = 30 + nlen + xlen
    data = head[start : start + csize] if csize else head[start:]
    if method == 8:
        try:
            data = zlib.decompressobj(-15).decompress(data, 256)
        except zlib.error:
            return False
    elif method != 0:
        return False
    if name == b"log.bin":
        return data[:1] == bytes([_SEP])
    if name == b"info.txt":
        return b"Serial Number" in data
    return True


# --------------------------------------------------------------------------------------------
# the zip


class _ViewReader(io.RawIOBase):
    """A seekable read-only stream over a FileBuffer (zipfile needs one; no copy)."""

    def __init__(self, buf: FileBuffer) -> None:
        self._view = memoryview(buf.data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(b), len(self._view) - self._pos))
        memoryview(b)[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError)


def _open_zip(buf: FileBuffer, path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BufferedReader(_ViewReader(buf), 1 << 20))
    except (*_ZIP_ERRORS, OSError, NotImplementedError, RuntimeError) as exc:
        raise InputError(f"not a readable zip (.gt3x): {exc}", path=path, offset=0) from None


def _member(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo | None:
    try:
        return zf.getinfo(name)
    except KeyError:
        return None


def _info(zf: zipfile.ZipFile, path: str) -> dict[str, str]:
    zi = _member(zf, "info.txt")
    if zi is None:
        raise InputError(".gt3x without info.txt", path=path, offset=0)
    if zi.file_size > MAX_INFO_BYTES:
        raise InputError(f"info.txt of {zi.file_size} bytes is not plausible", path=path, offset=0)
    try:
        with zf.open(zi) as f:
            text = f.read(MAX_INFO_BYTES + 1).decode("utf-8-sig", errors="replace")
    except (*_ZIP_ERRORS, RuntimeError, NotImplementedError, OSError) as exc:
        raise InputError(f"info.txt cannot be read: {exc}", path=path, offset=0) from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out.setdefault(key.strip(), value.strip())
    return out


def _ticks_to_us(text: str | None) -> int | None:
    if not text or not text.strip().isdigit():
        return None
    ticks = int(text.strip())
    return (ticks - _TICKS_1970) // 10 if ticks > _TICKS_1970 else None


def _decode_float(value: int) -> float:
    """ActiGraph's parameter float: 24-bit two's complement fraction (/2^23) and a signed
    8-bit power of two (Parameters.md)."""
    if value in (0x007FFFFF, 0x00800000):
        return float("nan")
    exp = (value >> 24) & 0xFF
    exp = exp - 256 if exp & 0x80 else exp
    frac = value & 0xFFFFFF
    frac = frac - (1 << 24) if frac & 0x800000 else frac
    return float(frac) / 8388608.0 * 2.0**exp


# --------------------------------------------------------------------------------------------
# the log


@dataclass
class _Log:
    """What one pass over log.bin found: the ACTIVITY records kept (offset, type, size,
    clock second), the PARAMETERS scale, idle-sleep events and the first damage."""

    pos: npt.NDArray[np.int64]
    typ: npt.NDArray[np.uint8]
    size: npt.NDArray[np.int64]
    clock: npt.NDArray[np.int64]
    scale: float | None
    ism_events: int
    usb_events: int
    bad_checksums: list[int]
    damage: tuple[int, str] | None
    log_bytes: int


def _scan(stream: IO[bytes], salvage: bool) -> _Log:
    pos_l: list[int] = []
    typ_l: list[int] = []
    size_l: list[int] = []
    clock_l: list[int] = []
    scale: float | None = None
    ism = usb = 0
    bad_sums: list[int] = []
    damage: tuple[int, str] | None = None
    buf = b""
    base = 0  # log.bin offset of buf[0]
    eof = False
    unpack = _HEADER.unpack_from
    while True:
        if not eof:
            more = stream.read(_BLOCK)
            eof = not more
            buf += more
        spans: list[tuple[int, int]] = []
        p = 0
        n = len(buf)
        while p + 8 <= n:
            if buf[p] != _SEP:
                if buf[p] == 0:  # padding between records
                    m = _NONZERO.search(buf, p)
                    p = n if m is None else m.start()
                    continue
                damage = (base + p, f"no record separator at log.bin offset {base + p}")
                break
            _, typ, clock, size = unpack(buf, p)
            end = p + 9 + size
            if end > n:
                break
            if typ in (_ACTIVITY, _ACTIVITY2) and size > 1:
                fits = size % 6 == 0 if typ == _ACTIVITY2 else size * 2 // 9 > 0
                if not fits:
                    damage = (
                        base + p,
                        f"ACTIVITY record of {size} bytes at log.bin offset {base + p}",
                    )
                    break
                pos_l.append(base + p)
                typ_l.append(typ)
                size_l.append(size)
                clock_l.append(clock)
            elif typ in (_ACTIVITY, _ACTIVITY2) and size == 1:
                usb += 1
            elif typ == _PARAMETERS and scale is None:
                scale = _parameter_scale(buf[p + 8 : p + 8 + size])
            elif typ == _EVENT and size >= 1 and buf[p + 8] in (8, 9):
                ism += 1
            spans.append((p, end))
            p = end
        if spans:  # checksums of this block's records, vectorized
            bad_sums += [base + s for s in _bad_checksums(buf, spans)]
        if damage is not None:
            break
        buf = buf[p:]
        base += p
        if eof:
            if buf.strip(b"\x00"):
                damage = (base, f"truncated: the record at log.bin offset {base} is cut short")
            break
    if bad_sums and not salvage and (damage is None or bad_sums[0] < damage[0]):
        damage = (bad_sums[0], f"bad checksum of the record at log.bin offset {bad_sums[0]}")
    return _Log(
        pos=np.array(pos_l, np.int64),
        typ=np.array(typ_l, np.uint8),
        size=np.array(size_l, np.int64),
        clock=np.array(clock_l, np.int64),
        scale=scale,
        ism_events=ism,
        usb_events=usb,
        bad_checksums=bad_sums,
        damage=damage,
        log_bytes=base + len(buf),
    )


def _bad_checksums(buf: bytes, spans: list[tuple[int, int]]) -> list[int]:
    """Offsets (in ``buf``) of records whose checksum byte is not ~XOR(header + payload)."""
    arr = np.frombuffer(buf, np.uint8)
    sp = np.array(spans, np.int64)
    bounds = np.stack([sp[:, 0], sp[:, 1] - 1], axis=1).reshape(-1)  # [start, checksum) pairs
    x = np.bitwise_xor.reduceat(arr, bounds)[0::2]
    want = np.bitwise_not(x).astype(np.uint8)
    got = arr[sp[:, 1] - 1]
    return sp[want != got, 0].tolist()


def _parameter_scale(payload: bytes) -> float | None:
    """ACCEL_SCALE (address space 0, identifier 55) of a PARAMETERS payload."""
    if len(payload) % 8:
        return None
    kv = np.frombuffer(payload, "<u2").reshape(-1, 4)
    hit = np.flatnonzero((kv[:, 0] == 0) & (kv[:, 1] == 55))
    if hit.size == 0:
        return None
    value = struct.unpack_from("<I", payload, int(hit[0]) * 8 + 4)[0]
    scale = _decode_float(value)
    return scale if np.isfinite(scale) and scale > 0 else None


# --------------------------------------------------------------------------------------------
# the importer


def read(
    fp: BinaryIO, *, path: str = "<stream>", salvage: bool = False, ctx: ReadContext
) -> Recording:
    """Read an ActiGraph ``.gt3x`` file into a Recording with an AccelStream (g, UTC)."""
    buf = FileBuffer.of(fp, path=path)
    zf = _open_zip(buf, path)
    log_zi = _member(zf, "log.bin")
    if log_zi is None:
        if _member(zf, "activity.bin") is not None:
            raise InputError(
                "an older NHANES-format .gt3x (activity.bin, GT3X+ firmware 2.5.0 or earlier) "
                "is not supported: export it as a raw CSV from ActiLife",
                path=path,
                offset=0,
            )
        raise InputError(".gt3x without log.bin", path=path, offset=0)
    if log_zi.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise InputError(
            f"log.bin uses zip compression method {log_zi.compress_type} (only stored and "
            "deflate are read)",
            path=path,
            offset=0,
        )
    if log_zi.file_size > MAX_LOG_BYTES:
        raise InputError(
            f"log.bin of {log_zi.file_size} bytes is larger than the 4 GiB allowed",
            path=path,
            offset=0,
        )
    info = _info(zf, path)
    rate_m = re.match(r"\s*([0-9]+(?:\.[0-9]*)?)", info.get("Sample Rate", ""))
    rate = float(rate_m.group(1)) if rate_m else 0.0
    if not 0 < rate <= 10_000:
        raise InputError("info.txt has no usable Sample Rate", path=path, offset=0)
    try:
        with zf.open(log_zi) as member:
            log = _scan(member, salvage)
    except (*_ZIP_ERRORS, RuntimeError, NotImplementedError, OSError) as exc:
        raise InputError(f"log.bin cannot be read: {exc}", path=path, offset=0) from None

    warnings: list[str] = []
    damage = log.damage
    if damage is not None and not salvage:
        raise InputError(damage[1], path=path, offset=damage[0])
    keep = np.ones(log.pos.size, bool)
    if log.bad_checksums:  # only with salvage: else the first one is the damage raised above
        keep &= ~np.isin(log.pos, np.array(log.bad_checksums, np.int64))
        warnings.append(f"{len(log.bad_checksums)} record(s) with a bad checksum skipped (gaps)")
        if damage is None or log.bad_checksums[0] < damage[0]:
            at = log.bad_checksums[0]
            damage = (at, f"bad checksum of the record at log.bin offset {at} (skipped)")
    # the clock must advance from record to record; where it does not, the data end
    clk = log.clock[keep]
    back = np.flatnonzero(np.diff(clk) <= 0)
    if back.size:
        k = int(np.flatnonzero(keep)[back[0] + 1])
        reason = f"the clock does not advance at the record at log.bin offset {int(log.pos[k])}"
        if not salvage:
            raise InputError(reason, path=path, offset=int(log.pos[k]))
        keep[k:] = False
        if damage is None or log.pos[k] < damage[0]:
            damage = (int(log.pos[k]), reason)
    pos, typ, size, clock = log.pos[keep], log.typ[keep], log.size[keep], log.clock[keep]
    if pos.size == 0:
        if damage is not None:
            raise InputError(damage[1], path=path, offset=damage[0])
        raise InputError("log.bin holds no acceleration records", path=path, offset=0)

    scale, scale_from = _scale(log.scale, info)
    if scale_from == "default":
        warnings.append("no acceleration scale in the file: 341 counts/g assumed")
    n_per = np.where(typ == _ACTIVITY2, size // 6, size * 2 // 9).astype(np.int64)
    dt_us = _US / np.maximum(n_per, rate)
    n_over = int(np.count_nonzero(n_per > rate))
    if n_over:
        warnings.append(f"{n_over} record(s) hold more samples than the sample rate")
    tz = require_zone(ctx, path)
    last_local = int(clock[-1]) * _US + int(n_per[-1] * dt_us[-1])
    off_us, more = place_device_clock(int(clock[0]) * _US, last_local, tz)
    warnings += more
    base_us = clock * _US - off_us
    ends = base_us[:-1] + np.rint(n_per[:-1] * dt_us[:-1]).astype(np.int64)
    holes = np.flatnonzero(np.diff(clock) > 1)
    gaps = [(int(ends[i]), int(base_us[i + 1])) for i in holes]
    if holes.size:
        missing = int(np.sum(np.diff(clock)[holes] - 1))
        warnings.append(
            f"{missing} second(s) without samples in {holes.size} gap(s) (idle sleep mode or "
            "lost records), left as gaps, not filled"
        )

    src = _Gt3xChunks(
        buf=buf,
        pos=pos,
        typ=typ,
        size=size,
        n_per=n_per,
        base_us=base_us,
        dt_us=dt_us,
        scale=scale,
    )
    range_g = _range_g(info, scale)
    stream = AccelStream(
        sample_rate_hz=rate,
        chunks=src,
        range_g=range_g,
        n_samples=int(n_per.sum()),
        gaps=gaps,
    )
    rec = Recording(format=FORMAT, kind="allday", accel=stream, warnings=warnings)
    rec.serial = info.get("Serial Number") or None
    rec.device = ("ActiGraph " + info.get("Device Type", "")).strip()
    rec.utc_offset_s = _tz_offset(info.get("TimeZone", ""))
    if rec.utc_offset_s is not None and rec.utc_offset_s * _US != off_us:
        warnings.append(
            f"info.txt gives the time zone {info.get('TimeZone')!r}; the times were placed in "
            f"{tz} ({fmt_offset(off_us // _US)} at the start)"
        )
    rec.meta = {
        "timezone": tz,
        "device_offset": fmt_offset(off_us // _US),
        "sample_rate_hz": f"{rate:g}",
        "scale_counts_per_g": f"{scale:g}",
        "scale_from": scale_from,
        "records": str(pos.size),
        "log_bytes": str(log.log_bytes),
        "idle_sleep_events": str(log.ism_events),
        "usb_events": str(log.usb_events),
        "gap_seconds": str(int(np.sum(np.diff(clock)[holes] - 1)) if holes.size else 0),
    }
    start_us = _ticks_to_us(info.get("Start Date"))
    if start_us is not None:
        rec.meta["start_date_local"] = str(np.datetime64(start_us, "us"))
    for key in ("Firmware", "Subject Name", "Limb", "Side", "Dominance"):
        if info.get(key):
            rec.meta[key.lower().replace(" ", "_")] = info[key]
    if damage is not None:
        rec.salvaged = True
        rec.salvage_reason = damage[1]
    return rec


def _scale(param: float | None, info: dict[str, str]) -> tuple[float, str]:
    if param is not None:
        return param, "parameters"
    m = re.match(r"\s*([0-9]+(?:\.[0-9]*)?)", info.get("Acceleration Scale", ""))
    if m and float(m.group(1)) > 0:
        return float(m.group(1)), "info.txt"
    serial = info.get("Serial Number", "")
    if serial.startswith("MOS"):
        return 256.0, "serial"
    if serial.startswith(("NEO", "CLE")):
        return 341.0, "serial"
    return 341.0, "default"


def _range_g(info: dict[str, str], scale: float) -> float:
    m = re.match(r"\s*([0-9]+(?:\.[0-9]*)?)", info.get("Acceleration Max", ""))
    if m and float(m.group(1)) > 0:
        return float(m.group(1))
    return 2048.0 / scale if scale > 0 else 8.0


def _tz_offset(text: str) -> int | None:
    """info.txt ``TimeZone`` (``-04:00:00``) -> seconds; None unless plausible."""
    m = re.match(r"^\s*([+-]?)([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?\s*$", text)
    if not m:
        return None
    off = int(m.group(2)) * 3600 + int(m.group(3)) * 60
    off = -off if m.group(1) == "-" else off
    return off if abs(off) <= 14 * 3600 and off % 900 == 0 else None


def unpack_activity(payload: npt.NDArray[np.uint8], n: int) -> npt.NDArray[np.int32]:
    """(m, size) ACTIVITY payloads of ``n`` samples each -> (m, n, 3) counts in x, y, z order
    (stored y, x, z, 12 bits each, most significant nibble first)."""
    m = payload.shape[0]
    nib = np.empty((m, payload.shape[1] * 2), np.int32)
    nib[:, 0::2] = payload >> 4
    nib[:, 1::2] = payload & 15
    d = nib[:, : 9 * n].reshape(m, n, 3, 3)
    v = (d[..., 0] << 8) | (d[..., 1] << 4) | d[..., 2]
    v = np.where(v >= 2048, v - 4096, v)
    return v[..., [1, 0, 2]]


@dataclass
class _Gt3xChunks:
    """``AccelStream.chunks`` of a .gt3x: re-reads log.bin from the zip on each call and
    decodes the indexed ACTIVITY records, about a million samples at a time (picklable)."""

    buf: FileBuffer
    pos: npt.NDArray[np.int64]
    typ: npt.NDArray[np.uint8]
    size: npt.NDArray[np.int64]
    n_per: npt.NDArray[np.int64]
    base_us: npt.NDArray[np.int64]
    dt_us: npt.NDArray[np.float64]
    scale: float

    def __call__(self) -> Iterator[AccelChunk]:
        zf = _open_zip(self.buf, "<gt3x>")
        with zf.open("log.bin") as stream:
            cursor = 0
            cum = np.cumsum(self.n_per)
            k = 0
            while k < self.pos.size:
                # records [k, j): about CHUNK_SAMPLES samples and at most one block of bytes
                j = int(np.searchsorted(cum, cum[k] - self.n_per[k] + CHUNK_SAMPLES, "right"))
                j = max(j, k + 1)
                limit = int(np.searchsorted(self.pos, self.pos[k] + _BLOCK, "right"))
                j = min(j, max(limit, k + 1))
                start = int(self.pos[k])
                stop = int(self.pos[j - 1] + 9 + self.size[j - 1])
                while cursor < start:
                    cursor += len(stream.read(min(_BLOCK, start - cursor)))
                data = stream.read(stop - start)
                cursor += len(data)
                yield self._decode(np.frombuffer(data, np.uint8), start, k, j)
                k = j

    def _decode(self, arr: npt.NDArray[np.uint8], start: int, k: int, j: int) -> AccelChunk:
        sl = slice(k, j)
        n_per = self.n_per[sl]
        first = np.concatenate([[0], np.cumsum(n_per)[:-1]])
        total = int(n_per.sum())
        xyz = np.empty((total, 3), np.float32)
        ts = np.empty(total, np.int64)
        keys = np.stack([self.typ[sl].astype(np.int64), self.size[sl]], axis=1)
        for typ, size in np.unique(keys, axis=0).tolist():
            sel = np.flatnonzero((keys[:, 0] == typ) & (keys[:, 1] == size))
            at = self.pos[sl][sel] - start + 8
            payload = arr[at[:, None] + np.arange(size)]
            n = int(self.n_per[k + sel[0]])
            if typ == _ACTIVITY2:
                counts = payload.copy().view("<i2").reshape(sel.size, n, 3).astype(np.int32)
            else:
                counts = unpack_activity(payload, n)
            out = first[sel, None] + np.arange(n)
            xyz[out.reshape(-1)] = (counts / self.scale).reshape(-1, 3)
            t = self.base_us[k + sel, None] + np.rint(
                np.arange(n)[None, :] * self.dt_us[k + sel, None]
            ).astype(np.int64)
            ts[out.reshape(-1)] = t.reshape(-1)
        return AccelChunk(ts_us=ts, xyz=xyz)
