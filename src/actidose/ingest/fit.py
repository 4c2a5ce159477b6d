"""FIT importer: heart rate, sessions and device facts from Garmin FIT files.

Two decoders give the same :class:`~actidose.recording.Recording` and the same errors:
:func:`read` decodes columnar with numpy (:mod:`actidose.ingest.fitfast`, about a hundred times
faster), :func:`read_reference` message by message with ``fitdecode`` (the reference decoder
chosen in DESIGN.md). Both feed the rules below through :class:`_State` and wrap every decoding
failure into :class:`~actidose.errors.InputError` with a specific reason and a byte offset;
``read`` falls back to the reference for files it does not reproduce exactly and says so in
``meta["fit_decoder"]``.

FIT facts used here (FIT SDK, "FIT Protocol" document and ``Profile.xlsx``):

* File header (protocol §3.3.1): byte 0 is the header size (12, or 14 with a header CRC), bytes
  8..11 are ``.FIT``; the data records follow, then a 2-byte CRC-16 over header + records. Several
  such files may be concatenated ("chained FIT files", protocol §3.5); we read all parts.
* ``date_time`` values are seconds since 1989-12-31T00:00:00Z; values below ``0x10000000`` are
  seconds since the device was powered on (Profile.xlsx, type ``date_time``) and need an anchor.
* Compressed timestamp headers (protocol §3.3.7) are resolved by fitdecode; we read the raw values.
* ``monitoring.timestamp_16`` (field 26) holds the low 16 bits of the time; the full value is
  rebuilt from the last full ``timestamp`` (SDK cookbook "Monitoring timestamps").
* ``hr`` messages (global 132; HRM-Tri/HRM-Pro/HRM-Swim stored data): an *anchor* message carries
  ``timestamp`` (+ ``fractional_timestamp``) and exactly one ``event_timestamp`` (uint32, 1/1024 s,
  on the strap's own clock); the following messages carry ``filtered_bpm`` arrays with either
  ``event_timestamp`` arrays or ``event_timestamp_12`` (12-bit low parts, accumulated). Each beat's
  UTC time is ``anchor_timestamp + (event_timestamp - anchor_event_timestamp)``, rolling over at
  2**32/1024 s — the rule of the SDK's ``HrToRecordMesgBroadcastPlugin``. (fitdecode's own
  expansion of ``event_timestamp_12`` does not seed the accumulator from the anchor and is off
  by up to 4 s, so we decode those bytes ourselves.)
* ``activity.local_timestamp`` (and ``monitoring_info``/``timestamp_correlation``) is the local
  wall time of ``timestamp``; every decoder labels it UTC, so we only take the difference, and
  only when it is within ±14 h and on a 15-minute grid (DESIGN.md, FIT notes).

RR intervals (``Recording.rr``):

* ``hrv`` messages (global 78) hold ``time``: up to 5 RR intervals, uint16 in 1/1000 s (0xFFFF
  invalid), and **no timestamp**. The FIT SDK's Activity file description
  (developer.garmin.com/fit/file-types/activity/) says they "are interleaved with record and
  event messages in chronological order ... HRV data is not timestamped, and shall be
  synchronized by checking successive RR intervals as they occur between other timestamped
  messages"; Garmin's FIT SDK team gives the rule on the SDK forum (forums.garmin.com, FIT SDK
  discussion 379788, "What types of HRV data does the Garmin Edge 820 record?"): "take the
  timestamp from the previous Record or Event message and add the BBI values to it" (1234 +
  0.43, 1234 + 0.43 + 0.437, ...). We do exactly that: each beat is placed at the timestamp of
  the latest ``record`` or ``event`` message plus the RR intervals accumulated since that
  message. The sum restarts at every record/event with a *new* timestamp; a second one in the
  same second (the timer-stop event after the last record) continues it, else the beats after
  it would be placed a second time over the same instants (the corpus' Edge 820 and fenix 5
  files show this). A beat is placed late by the time from the last beat before its record to
  the record (the interval ending at the first beat after a record started before it): less
  than one RR interval, and no drift, as a sum from the start would have over missed beats and
  pauses. Message order is beat order; where the sum overshoots the next
  record a beat can be placed slightly before the previous one (``meta["rr_out_of_order"]``
  counts these). A warning says the beat times are reconstructed. ``rr_ms`` is the raw value
  (ms) as stored.
* ``beat_intervals`` messages (global 290): ``timestamp`` + ``timestamp_ms`` and ``time``, an
  array of RR intervals in ms. The profile does not say which beat the time marks; we take it as
  the beat before the first interval and accumulate as for ``hrv`` (and warn).

Vendor activity series (``Recording.vendor``) from ``monitoring`` (55), ``monitoring_hr_data``
(211) and ``monitoring_info`` (103) — see :func:`_monitoring_vendor` for the rules.

The HR sensor kind (``Recording.sensor``) — see :func:`_sensor_kind`.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

import fitdecode
import numpy as np
import numpy.typing as npt

from actidose.errors import InputError, TimeAnchorError
from actidose.ingest import fitfast
from actidose.recording import (
    TS_DTYPE,
    ActivityInfo,
    HRSeries,
    Recording,
    RRSeries,
    VendorSeries,
)

__all__ = ["FIT_EPOCH_UNIX_S", "detect", "read", "read_reference"]

#: Unix time of the FIT epoch 1989-12-31T00:00:00Z (FIT SDK, type ``date_time``).
FIT_EPOCH_UNIX_S: Final = 631_065_600
#: ``date_time`` values below this are seconds since device power-on (Profile.xlsx).
_REL_LIMIT: Final = 0x10000000
_US: Final = 1_000_000

# Global message numbers and field numbers (FIT SDK Profile.xlsx, "Messages" sheet).
_MESG_FILE_ID: Final = 0
_MESG_SESSION: Final = 18
_MESG_RECORD: Final = 20
_MESG_EVENT: Final = 21
_MESG_DEVICE_INFO: Final = 23
_MESG_ACTIVITY: Final = 34
_MESG_MONITORING: Final = 55
_MESG_HRV: Final = 78
_MESG_MONITORING_INFO: Final = 103
_MESG_HR: Final = 132
_MESG_TIMESTAMP_CORRELATION: Final = 162
_MESG_MONITORING_HR_DATA: Final = 211
_MESG_BEAT_INTERVALS: Final = 290
_F_TIMESTAMP: Final = 253
_F_RECORD_HEART_RATE: Final = 3
_F_MON_DISTANCE: Final = 2  # uint32, 1/100 m, accumulated per activity_type
_F_MON_CYCLES: Final = 3  # uint32, accumulated per activity_type (steps when walking/running)
_F_MON_ACTIVITY_TYPE: Final = 5
_F_MON_DISTANCE_16: Final = 8
_F_MON_CYCLES_16: Final = 9
_F_MON_ACTIVE_CALORIES: Final = 19  # uint16 kcal, accumulated per activity_type
_F_MON_TYPE_INTENSITY: Final = 24  # byte: activity_type (bits 0-4), intensity (bits 5-7)
_F_MON_TIMESTAMP_16: Final = 26
_F_MON_HEART_RATE: Final = 27
_F_MON_MODERATE_MIN: Final = 33
_F_MON_VIGOROUS_MIN: Final = 34
_F_HRV_TIME: Final = 0  # uint16[], 1/1000 s
_F_BEAT_TIMESTAMP_MS: Final = 0  # uint16 ms
_F_BEAT_TIME: Final = 1  # uint16[] ms
_F_MIF_RMR: Final = 5  # monitoring_info.resting_metabolic_rate, kcal/day
_F_MHR_RESTING: Final = 0  # monitoring_hr_data.resting_heart_rate (7-day average)
_F_MHR_CURRENT_DAY: Final = 1  # monitoring_hr_data.current_day_resting_heart_rate
# Profile.xlsx type activity_type: cycles are steps for these (monitoring.cycles subfield steps)
_ACTIVITY_RUNNING: Final = 1
_ACTIVITY_WALKING: Final = 6
_STEP_ACTIVITY_TYPES: Final = frozenset({_ACTIVITY_RUNNING, _ACTIVITY_WALKING})
# device_info: source_type (Profile.xlsx type source_type) and device_type values
_SRC_ANT: Final = 0
_SRC_ANTPLUS: Final = 1
_SRC_BLE: Final = 3
_SRC_LOCAL: Final = 5
_ANTPLUS_HEART_RATE: Final = 120  # antplus_device_type heart_rate
_BLE_HEART_RATE: Final = 1  # ble_device_type heart_rate
_LOCAL_WRIST_HR: Final = 10  # local_device_type whr (the watch's own optical sensor)
_GARMIN_OHR_PRODUCT: Final = 255  # garmin_product OHR: a Garmin watch broadcasting wrist HR
_GARMIN_PRODUCT_MANUFACTURERS: Final = frozenset({1, 13, 15, 89})  # where product = garmin_product
_F_HR_FRACTIONAL: Final = 0  # uint16, scale 32768
_F_HR_TIME256: Final = 1  # uint8, scale 256 (component of fractional_timestamp)
_F_HR_FILTERED_BPM: Final = 6
_F_HR_EVENT_TIMESTAMP: Final = 9  # uint32[], scale 1024
_F_HR_EVENT_TIMESTAMP_12: Final = 10  # byte[], 12-bit accumulated event_timestamp parts
# file types monitoring_a, monitoring_daily, monitoring_b (Profile.xlsx type ``file``)
_MONITORING_FILE_TYPES: Final = frozenset({15, 28, 32})

#: A record HR sample within this many seconds of a strap (``hr`` message) sample is superseded
#: by the strap data, as the SDK's HrToRecordMesgBroadcastPlugin does (it also fills 5 s).
_HR_MESSAGE_PRECEDENCE_S: Final = 5.0
_MAX_UTC_OFFSET_S: Final = 14 * 3600

_TS_FIELD = fitdecode.profile.FIELD_TYPE_TIMESTAMP  # what fitdecode attaches for compressed headers
_FIELD_DEF = fitdecode.types.FieldDefinition  # native (non-developer) field definitions
_BYTE_TYPE = fitdecode.types.BASE_TYPE_BYTE
_OFFSET_IN_MESSAGE = re.compile(r"(?:@|offset:)\s*(\d+)")
_MISSING: Final = object()


def detect(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file, at least 12) starts a FIT file.

    FIT protocol §3.3.1: byte 0 is the header size, 12 (legacy) or 14 (with header CRC), and bytes
    8..11 are the ASCII data type ``.FIT``. Content decides, never the file name.
    """
    return len(head) >= 12 and head[0] in (12, 14) and head[8:12] == b".FIT"


def read(fp: BinaryIO, *, path: str = "<stream>", salvage: bool = False) -> Recording:
    """Read one FIT stream (possibly several chained FIT files) into a :class:`Recording`.

    ``fp`` is a binary file object positioned at the start of the FIT data. The CRCs are checked
    (a bad CRC is damage, not a warning: DESIGN.md found fitdecode's default imports such files),
    and every decoding failure becomes ``InputError(reason, path=path, offset=N)`` where N is a
    byte offset into the stream: "empty file", "not a FIT file", "bad header CRC", "bad CRC at
    offset N", "truncated at offset N", "corrupt data at offset N: ...".

    With ``salvage=True`` damage stops the decoding but what was decoded before it is returned,
    with ``salvaged=True`` and ``salvage_reason``; if nothing usable precedes the damage the error
    is raised anyway. ``TimeAnchorError`` is raised when samples carry only power-on-relative
    times and nothing in the file places them in UTC.

    HR is returned raw (NaN for the invalid marker, no range filter, no de-duplication): the
    pipeline applies the sample rules to every format alike.

    Decoding is columnar (:mod:`actidose.ingest.fitfast`): the stream is read whole into memory
    (fine for real FIT files, up to a few hundred MB) and each definition's data messages are
    decoded at once with numpy. The result is the one :func:`read_reference` (message by message
    through fitdecode) gives; where a file holds something the columnar decoder does not
    reproduce exactly, this function reads it with :func:`read_reference` instead.
    ``meta["fit_decoder"]`` says which: ``"vectorized"``, or ``"reference: <why>"``.
    """
    from actidose.ingest import fitfast_build  # imports this module: load on first use

    base, head = _read_head(fp, path)
    chunks: list[Any] = [head]
    failed: Exception | None = None
    try:
        chunk = fp.read(_READ_CHUNK)
        while chunk:
            chunks.append(chunk)
            chunk = fp.read(_READ_CHUNK)
    except Exception as exc:  # kept: the reference reader makes it damage (below)
        failed = exc
    if not all(isinstance(c, bytes | bytearray) for c in chunks):
        raise InputError("not a binary stream", path=path, offset=base)
    data = b"".join(chunks)
    del chunks
    if failed is not None:
        # the stream broke (a damaged archive member): the reference reader turns that into
        # damage at the offset it happened, keeping what precedes it
        why = f"the stream failed after {len(data)} bytes"
    else:
        try:
            rec = fitfast_build.read_bytes(data, base=base, path=path, salvage=salvage)
        except fitfast.Fallback as fb:
            why = fb.reason
        except InputError:
            raise
        except Exception as exc:  # a defect of the columnar decoder: the reference reads it
            why = f"internal error in the columnar decoder ({type(exc).__name__}: {exc})"
        else:
            rec.meta["fit_decoder"] = "vectorized"
            return rec
    stream = _CountingStream(_Replay(data[len(head) :], failed), head, base)
    rec = _read_reference(stream, path=path, salvage=salvage)
    rec.meta["fit_decoder"] = f"reference: {why}"
    return rec


_READ_CHUNK: Final = 1 << 22


class _Replay(io.BytesIO):
    """Bytes already read from a stream, then the exception the stream raised (if any)."""

    def __init__(self, data: bytes, failed: Exception | None) -> None:
        super().__init__(data)
        self._failed = failed

    def read(self, size: int | None = -1, /) -> bytes:
        out = super().read(size)
        if self._failed is not None and (size is None or size < 0 or len(out) < size):
            raise self._failed
        return out


def read_reference(fp: BinaryIO, *, path: str = "<stream>", salvage: bool = False) -> Recording:
    """:func:`read` through the reference decoder, fitdecode, message by message.

    Same contract and result as :func:`read` (which falls back to this function for files its
    columnar decoder does not reproduce exactly); about a hundred times slower. Kept as the
    reference the columnar decoder is tested against. ``meta["fit_decoder"]`` is
    ``"reference"``.
    """
    base, head = _read_head(fp, path)
    rec = _read_reference(_CountingStream(fp, head, base), path=path, salvage=salvage)
    rec.meta["fit_decoder"] = "reference"
    return rec


def _read_head(fp: BinaryIO, path: str) -> tuple[int, bytes]:
    """The stream's start offset and its first 14 bytes, checked to begin a FIT file."""
    base = _tell(fp)
    head = fp.read(14)
    if not isinstance(head, bytes | bytearray):
        raise InputError("not a binary stream", path=path, offset=base)
    head = bytes(head)
    if not head:
        raise InputError("empty file", path=path, offset=base)
    if not detect(head):
        if _header_prefix(head):
            at = base + len(head)
            raise InputError(f"truncated at offset {at}", path=path, offset=at)
        raise InputError("not a FIT file", path=path, offset=base)
    return base, head


def _read_reference(stream: _CountingStream, *, path: str, salvage: bool) -> Recording:
    state = _State()
    state.stream_pos = stream.tell
    damage: InputError | None = None
    reader = fitdecode.FitReader(
        stream,
        processor=None,  # raw values: date_time stays an int, also below 0x10000000
        check_crc=fitdecode.CrcCheck.RAISE,
        # IGNORE only relaxes what fitdecode can still decode exactly: misaligned field sizes
        # (decoded as bytes; COROS writes those) and undeclared developer fields (bytes). We
        # report the former as warnings (see _State.definition). Structural damage, EOF and CRC
        # mismatches still raise.
        error_handling=fitdecode.ErrorHandling.IGNORE,
    )
    frames = iter(reader)
    try:
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except Exception as exc:  # fitdecode leaks ValueError/struct.error/... on bad input
                damage = _damage(exc, reader, stream, state, path)
                break
            state.frame(frame)
    finally:
        reader.close()
    return _finish(state, damage, path=path, salvage=salvage)


def _finish(state: _State, damage: InputError | None, *, path: str, salvage: bool) -> Recording:
    """The Recording from what was decoded (``state``) and the damage decoding stopped at:
    raise it, or (``salvage``) keep what precedes it. Shared by both decoders."""
    if damage is not None and not salvage:
        raise damage
    try:
        rec = state.build(path)
    except (ValueError, OverflowError, TypeError, IndexError) as exc:
        # Values that decoded but cannot be placed (absurd times): the file's own fault.
        raise InputError(f"implausible values: {exc}", path=path) from exc
    if damage is not None:
        if len(rec.hr) == 0 and not rec.activities and len(rec.rr) == 0 and not rec.vendor:
            raise damage
        rec.salvaged = True
        rec.salvage_reason = damage.reason
    return rec


# --------------------------------------------------------------------------------------------
# stream plumbing and error classification


def _header_prefix(head: bytes) -> bool:
    """Whether ``head``, shorter than a header, is how a FIT header would begin."""
    n = len(head)
    return 0 < n < 12 and head[0] in (12, 14) and head[8:n] == b".FIT"[: max(0, n - 8)]


def _tell(fp: BinaryIO) -> int:
    try:
        return int(fp.tell())
    except (AttributeError, OSError, ValueError):
        return 0


class _CountingStream:
    """Serves the peeked header bytes first, then the wrapped stream; counts the position so
    error offsets are real file offsets even on non-seekable input."""

    def __init__(self, raw: BinaryIO, prefix: bytes, base: int) -> None:
        self._raw = raw
        self._prefix = prefix
        self.pos = base
        self.last = b""  # the bytes of the last read (to judge a short chained header)

    def tell(self) -> int:
        return self.pos

    def read(self, size: int = -1) -> bytes:
        out = b""
        if self._prefix:
            if size < 0:
                out, self._prefix = self._prefix, b""
            else:
                out, self._prefix = self._prefix[:size], self._prefix[size:]
                size -= len(out)
        if size != 0:
            more = self._raw.read(size)
            if more:
                out += bytes(more)
        self.pos += len(out)
        self.last = out
        return out


def _offset_from(exc: BaseException) -> int | None:
    found = _OFFSET_IN_MESSAGE.findall(str(exc))
    return int(found[-1]) if found else None


def _damage(
    exc: BaseException, reader: Any, stream: _CountingStream, state: _State, path: str
) -> InputError:
    """Turn whatever fitdecode raised into an InputError with a specific reason and offset."""
    chunk_offset = getattr(reader, "_chunk_offset", None)
    # start of the frame being decoded (fitdecode tracks it; our own count is the fallback)
    frame_at: int = chunk_offset if isinstance(chunk_offset, int) else stream.pos
    said = _offset_from(exc)
    at: int = frame_at if said is None else said
    text = str(exc)
    if (
        isinstance(exc, fitdecode.FitHeaderError)
        and state.part_end is not None
        and (frame_at == state.part_end)
    ):
        # after a complete FIT file: either the start of a chained one, or stray bytes
        stray = stream.pos - state.part_end
        if "truncated" in text and _header_prefix(stream.last):
            return InputError(f"truncated at offset {stream.pos}", path=path, offset=stream.pos)
        return InputError(
            f"corrupt data at offset {state.part_end}: {stray if stray < 12 else 'some'} "
            "bytes after the end of the FIT file that are not another (chained) FIT file",
            path=path,
            offset=state.part_end,
        )
    if isinstance(exc, fitdecode.FitEOFError) or (
        isinstance(exc, fitdecode.FitHeaderError) and "truncated" in text
    ):
        end = stream.pos  # everything up to here was read: the data ends here
        return InputError(f"truncated at offset {end}", path=path, offset=end)
    if isinstance(exc, AssertionError) and not text:
        left = getattr(reader, "_body_bytes_left", None)
        size = getattr(reader, "_chunk_size", None)
        if isinstance(left, int) and isinstance(size, int) and size > left:
            text = "a message runs past the end of the data size given in the FIT header"
            return InputError(
                f"corrupt data at offset {frame_at}: {text}", path=path, offset=frame_at
            )
    if isinstance(exc, fitdecode.FitCRCError):
        if "header" in text:
            reason = "bad header CRC" if at == 0 else f"bad header CRC at offset {at}"
            return InputError(reason, path=path, offset=at)
        return InputError(f"bad CRC at offset {at}", path=path, offset=at)
    if isinstance(exc, fitdecode.FitHeaderError):
        if "not a FIT file" in text:
            if at == 0:
                return InputError("not a FIT file", path=path, offset=0)
            text = "no FIT header where the next chained FIT file should start"
        return InputError(f"corrupt data at offset {at}: {text}", path=path, offset=at)
    if isinstance(exc, fitdecode.FitParseError):
        exc_at = getattr(exc, "offset", None)
        at = exc_at if isinstance(exc_at, int) else at
        detail = text.split(": ", 1)[-1]
        return InputError(f"corrupt data at offset {at}: {detail}", path=path, offset=at)
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return InputError(f"corrupt data at offset {frame_at}: {detail}", path=path, offset=frame_at)


# --------------------------------------------------------------------------------------------
# time placement


@dataclass
class _Run:
    """Power-on-relative timestamps of one power cycle (message order): the offset to UTC found
    from the absolute timestamp that follows them (``after``, the clock got set) or, failing
    that, the one that precedes them (``before``, a restart)."""

    first_rel: int
    last_rel: int
    before: float | None
    after: float | None = None


class _Clock:
    """Tracks the last full timestamp and the power-on-relative runs of the file."""

    def __init__(self) -> None:
        self.last_full: int | None = None
        self.last_abs: int | None = None
        self.runs: list[_Run] = []
        self.cur = -1  # index of the open relative run, -1 when the clock is absolute
        self.correlation_s: float | None = None  # UTC - system time, from timestamp_correlation

    def full(self, t: int) -> None:
        self.last_full = t
        if t < _REL_LIMIT:
            if self.cur >= 0:
                run = self.runs[self.cur]
                run.last_rel = max(run.last_rel, t)
            elif self.runs and t >= self.runs[-1].first_rel:
                self.cur = len(self.runs) - 1  # same power cycle continues (clock not reset)
                self.runs[self.cur].last_rel = max(self.runs[self.cur].last_rel, t)
            else:
                before = None if self.last_abs is None else float(self.last_abs - t)
                self.runs.append(_Run(t, t, before))
                self.cur = len(self.runs) - 1
        else:
            if self.cur >= 0:
                run = self.runs[self.cur]
                if run.after is None:
                    run.after = float(t - run.last_rel)
                self.cur = -1
            self.last_abs = t

    def run_for_relative(self) -> int:
        """The run a relative value seen now belongs to (the open one, else the latest)."""
        return self.cur if self.cur >= 0 else len(self.runs) - 1

    def offsets_s(self) -> tuple[list[float | None], str | None]:
        """Seconds to add to each run's relative values, and how they were found."""
        if self.correlation_s is not None:
            how = "power-on-relative timestamps placed by the timestamp_correlation message"
            return [self.correlation_s] * len(self.runs), how
        out = [run.after if run.after is not None else run.before for run in self.runs]
        how = (
            "power-on-relative timestamps placed by the nearest absolute timestamp in message "
            "order (accurate to about one recording interval)"
        )
        return out, how


class _Stream:
    """HR samples of one kind of message: FIT-epoch microseconds (maybe power-on-relative) and
    bpm, plus the relative run active at each stretch of samples."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.t_us: list[int] | npt.NDArray[np.int64] = []
        self.bpm: list[float] | npt.NDArray[np.float64] = []
        self.segs: list[tuple[int, int]] = []  # (first sample index, run index or -1)
        self._seg_run = -1

    def add(self, t_us: int, bpm: float, run: int | None = None) -> None:
        """One sample; ``run`` is the clock's open relative run (default: the clock's now)."""
        if run is None:
            run = self.clock.cur
        if run != self._seg_run:
            self.segs.append((len(self.t_us), run))
            self._seg_run = run
        t_list, b_list = self.t_us, self.bpm
        assert isinstance(t_list, list) and isinstance(b_list, list)  # not after set_arrays
        t_list.append(t_us)
        b_list.append(bpm)

    def set_arrays(
        self,
        t_us: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        runs: npt.NDArray[np.int64],
    ) -> None:
        """All samples at once (the columnar decoder): what ``add`` per sample would give."""
        if t_us.size:
            prev = np.concatenate(([self._seg_run], runs[:-1]))
            starts = np.flatnonzero(runs != prev)
            self.segs = [(int(i), int(r)) for i, r in zip(starts, runs[starts], strict=True)]
            self._seg_run = int(runs[-1])
        self.t_us = t_us.astype(np.int64)
        self.bpm = values.astype(np.float64)

    def resolve(
        self, offsets: list[float | None]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], int, int]:
        """Placed FIT-epoch microseconds and bpm, the number of samples placed from power-on
        time, and the number of relative samples that could not be placed (dropped)."""
        t = np.array(self.t_us, dtype=np.int64)
        bpm = np.array(self.bpm, dtype=np.float64)
        rel_limit = _REL_LIMIT * _US
        keep = t >= rel_limit  # relative values outside any run are dropped below
        n_rel_placed = 0
        bounds = [s for s, _ in self.segs[1:]] + ([t.size] if self.segs else [])
        for (start, run), end in zip(self.segs, bounds, strict=True):
            off = offsets[run] if 0 <= run < len(offsets) else None
            if off is None:
                continue
            part = t[start:end]
            rel = part < rel_limit
            part[rel] += round(off * _US)
            keep[start:end] |= rel
            n_rel_placed += int(np.count_nonzero(rel))
        unplaced = int(t.size - np.count_nonzero(keep))
        return t[keep], bpm[keep], n_rel_placed, unplaced


# --------------------------------------------------------------------------------------------
# message handling


def _raw_fields(frame: Any) -> dict[int, Any]:
    """Native field number -> raw value (developer and expanded component fields skipped; the
    timestamp of a compressed header is included as field 253)."""
    out: dict[int, Any] = {}
    for fd in frame.fields:
        fdef = fd.field_def
        if fdef is None:
            if fd.field is _TS_FIELD:
                out[_F_TIMESTAMP] = fd.raw_value
        elif type(fdef) is _FIELD_DEF:
            out[fdef.def_num] = fd.raw_value
    return out


def _values(frame: Any) -> dict[int, Any]:
    """Native field number -> decoded value (enum names, scaled numbers)."""
    out: dict[int, Any] = {}
    for fd in frame.fields:
        fdef = fd.field_def
        if fdef is not None and type(fdef) is _FIELD_DEF:
            out[fdef.def_num] = fd.value
    return out


def _int(v: Any) -> int | None:
    return v if type(v) is int else None


def _num(v: Any) -> float | None:
    if type(v) is int:
        return float(v)
    if type(v) is float and math.isfinite(v):
        return v
    return None


def _duration(v: Any) -> float | None:
    """A session duration in seconds, if it is one a uint32 of milliseconds can hold."""
    x = _num(v)
    return x if x is not None and 0 <= x < 4_294_968 else None


def _bpm(v: Any) -> float:
    if type(v) is int:
        return float(v)
    if type(v) is float:
        return v
    return math.nan


def _ints(v: Any) -> list[int | None]:
    """A scalar or array field as a list (None for invalid entries or odd types)."""
    if isinstance(v, tuple):
        return [x if type(x) is int else None for x in v]
    if v is None:
        return []
    return [v if type(v) is int else None]


def _uint(v: Any) -> int | None:
    """A non-negative integer scalar, else None (arrays, bytes and invalid values)."""
    return v if type(v) is int and v >= 0 else None


def _name(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if type(v) is int:
        return str(v)
    return None


def _creator(raw: dict[int, Any], vals: Mapping[int, Any]) -> dict[str, Any]:
    """The creator's facts from its ``device_info`` message (raw fields, decoded values)."""
    return {
        "manufacturer": vals.get(2),
        "product": vals.get(4),
        "serial": _int(raw.get(3)),
        "product_name": vals.get(27),
    }


@dataclass
class _SessionRaw:
    start: int | None
    timestamp: int | None
    run: int
    elapsed_s: float | None
    timer_s: float | None
    sport: str | None
    sub_sport: str | None
    avg_hr: float | None
    max_hr: float | None


@dataclass
class _State:
    clock: _Clock = field(default_factory=_Clock)
    records: _Stream = field(init=False)
    monitoring: _Stream = field(init=False)
    hr_msgs: _Stream = field(init=False)
    sessions: list[_SessionRaw] = field(default_factory=list)
    local_pairs: list[tuple[str, int, int, int]] = field(default_factory=list)
    file_types: list[int] = field(default_factory=list)
    n_parts: int = 0
    part_end: int | None = None  # offset just after the CRC of the last complete FIT file
    stream_pos: Callable[[], int] | None = None  # the current stream offset
    n_monitoring_msgs: int = 0
    n_no_time: int = 0
    n_hr_unanchored: int = 0
    manufacturer: str | None = None
    product: str | None = None
    product_name: str | None = None
    serial: int | None = None
    creator: dict[str, Any] = field(default_factory=dict)
    time_created: int | None = None
    warnings: list[str] = field(default_factory=list)
    _warned: set[str] = field(default_factory=set)
    # hr message state (carries across chained parts: straps store data in several parts)
    hr_anchor_us: int | None = None
    hr_anchor_evt: int | None = None
    hr_acc: int | None = None
    # RR intervals (values of the stream are rr_ms): hrv messages accumulate from the latest
    # record/event timestamp (hrv_anchor, raw FIT seconds), beat_intervals from their own time
    rr_hrv: _Stream = field(init=False)
    rr_beat: _Stream = field(init=False)
    hrv_anchor: int | None = None
    hrv_acc_ms: int = 0
    n_rr_unanchored: int = 0
    # vendor series raw material: monitoring rows (t, run, activity_type, cycles, distance,
    # active_calories, moderate_min, vigorous_min), monitoring_hr_data rows (t, run, bpm)
    mon_rows: list[_MonRow] = field(default_factory=list)
    mon_table: _MonTable | None = None  # the same, as arrays (the columnar decoder)
    rhr_rows: list[tuple[int, int, int]] = field(default_factory=list)
    n_mon_16bit_only: int = 0
    resting_metabolic_rate: int | None = None
    # device_info entries: (source_type, device_type, manufacturer, product), raw
    devices: list[tuple[int | None, int | None, int | None, int | None]] = field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        self.records = _Stream(self.clock)
        self.monitoring = _Stream(self.clock)
        self.hr_msgs = _Stream(self.clock)
        self.rr_hrv = _Stream(self.clock)
        self.rr_beat = _Stream(self.clock)

    def warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.warnings.append(text)

    # -- dispatch ---------------------------------------------------------------------------

    def frame(self, frame: Any) -> None:
        if isinstance(frame, fitdecode.FitDataMessage):
            num = frame.def_mesg.global_mesg_num
            if num == _MESG_RECORD:
                self.record(frame)
            elif num == _MESG_MONITORING:
                self.monitoring_msg(frame)
            elif num == _MESG_HR:
                self.hr_msg(frame)
            elif num == _MESG_HRV:
                self.hrv_msg(frame)
            else:
                self.other(num, frame)
        elif isinstance(frame, fitdecode.FitDefinitionMessage):
            self.definition(frame)
        elif isinstance(frame, fitdecode.FitHeader):
            self.n_parts += 1
            self.part_end = None
        elif isinstance(frame, fitdecode.FitCRC):
            self.part_end = self.stream_pos() if self.stream_pos is not None else None

    def definition(self, frame: Any) -> None:
        for fdef in frame.field_defs:
            fld = fdef.field
            if fld is None or fdef.base_type is not _BYTE_TYPE:
                continue
            declared = fld.type if isinstance(fld.type, fitdecode.types.BaseType) else None
            declared = declared or getattr(fld.type, "base_type", None)
            size = getattr(declared, "size", 1) or 1
            if declared is not _BYTE_TYPE and fdef.size % size:
                self.warn_once(
                    f"misaligned:{frame.name}.{fld.name}",
                    f"field {frame.name}.{fld.name} has size {fdef.size}, not a multiple of its "
                    f"type ({getattr(declared, 'name', '?')}); decoded as bytes",
                )

    def _timestamp(self, raw: Any) -> int | None:
        t = _int(raw)
        if t is not None:
            self.clock.full(t)
        return t

    def record(self, frame: Any) -> None:
        ts: Any = None
        hr: Any = _MISSING
        for fd in frame.fields:
            fdef = fd.field_def
            if fdef is None:
                if fd.field is _TS_FIELD:
                    ts = fd.raw_value
            elif type(fdef) is _FIELD_DEF:
                num = fdef.def_num
                if num == _F_TIMESTAMP:
                    ts = fd.raw_value
                elif num == _F_RECORD_HEART_RATE:
                    hr = fd.raw_value
        t = self._timestamp(ts)
        self.hrv_anchor_at(t)
        if hr is _MISSING:
            return
        if t is None:
            self.n_no_time += 1
            return
        self.records.add(t * _US, _bpm(hr))

    def monitoring_msg(self, frame: Any) -> None:
        self.n_monitoring_msgs += 1
        raw = _raw_fields(frame)
        t = self._timestamp(raw.get(_F_TIMESTAMP))
        if t is None:
            ts16 = _int(raw.get(_F_MON_TIMESTAMP_16))
            last = self.clock.last_full
            if ts16 is not None and last is not None:
                t = last + ((ts16 - (last & 0xFFFF)) & 0xFFFF)
        self.monitoring_vendor(raw, t)
        if _F_MON_HEART_RATE not in raw:
            return
        if t is None:
            self.n_no_time += 1
            return
        self.monitoring.add(t * _US, _bpm(raw[_F_MON_HEART_RATE]))

    def hr_msg(self, frame: Any) -> None:
        raw = _raw_fields(frame)
        t = self._timestamp(raw.get(_F_TIMESTAMP))
        self.hr_raw(raw, t, self.clock.cur)

    def hr_raw(self, raw: dict[int, Any], t: int | None, cur: int) -> None:
        """An ``hr`` message's raw fields, its timestamp (already given to the clock) and the
        clock's open relative run."""
        evts = _ints(raw.get(_F_HR_EVENT_TIMESTAMP))
        if t is not None:
            # anchor message: its timestamp is the time of its (single) event_timestamp
            frac = _int(raw.get(_F_HR_FRACTIONAL))
            frac_us = round(frac * _US / 32768) if frac is not None else 0
            if frac is None:
                t256 = _int(raw.get(_F_HR_TIME256))
                frac_us = round(t256 * _US / 256) if t256 is not None else 0
            first = evts[0] if evts else None
            if first is not None:
                self.hr_anchor_us = t * _US + frac_us
                self.hr_anchor_evt = first
            else:
                self.warn_once("hr-anchor", "hr message with a timestamp but no event_timestamp")
        for e in evts:
            if e is not None:
                self.hr_acc = e  # the SDK's accumulator restarts from every full value
        packed = raw.get(_F_HR_EVENT_TIMESTAMP_12)
        if isinstance(packed, tuple) and packed and all(type(b) is int for b in packed):
            if self.hr_acc is None:
                self.n_hr_unanchored += (len(packed) * 8) // 12
            else:
                bits = int.from_bytes(bytes(b & 0xFF for b in packed), "little")
                acc = self.hr_acc
                for i in range((len(packed) * 8) // 12):
                    low = (bits >> (12 * i)) & 0xFFF
                    acc += (low - acc) & 0xFFF
                    evts.append(acc & 0xFFFFFFFF)
                self.hr_acc = acc & 0xFFFFFFFF
        bpms = raw.get(_F_HR_FILTERED_BPM)
        bpm_list = list(bpms) if isinstance(bpms, tuple) else [bpms]
        n = min(len(evts), len(bpm_list))
        if len(evts) != len(bpm_list) and (evts or bpms is not None):
            self.warn_once(
                "hr-count", "hr message with unequal event_timestamp and filtered_bpm counts"
            )
        if self.hr_anchor_us is None or self.hr_anchor_evt is None:
            self.n_hr_unanchored += n
            return
        a_us, a_evt = self.hr_anchor_us, self.hr_anchor_evt
        for e, b in zip(evts[:n], bpm_list[:n], strict=True):
            if e is None:
                continue
            d = (e - a_evt) & 0xFFFFFFFF
            if d >= 0x80000000:  # before the anchor (the SDK rejects these; we keep them)
                d -= 0x100000000
            self.hr_msgs.add(a_us + (d * _US) // 1024, _bpm(b), cur)

    def monitoring_vendor(self, raw: dict[int, Any], t: int | None) -> None:
        """Keep a monitoring message's activity counters for :func:`_monitoring_vendor`."""
        atype = _int(raw.get(_F_MON_ACTIVITY_TYPE))
        if atype is None:
            cati = raw.get(_F_MON_TYPE_INTENSITY)
            if isinstance(cati, tuple) and len(cati) == 1:
                cati = cati[0]
            cati = _int(cati)
            atype = None if cati is None else cati & 0x1F
        cycles = _uint(raw.get(_F_MON_CYCLES))
        distance = _uint(raw.get(_F_MON_DISTANCE))
        calories = _uint(raw.get(_F_MON_ACTIVE_CALORIES))
        moderate = _uint(raw.get(_F_MON_MODERATE_MIN))
        vigorous = _uint(raw.get(_F_MON_VIGOROUS_MIN))
        if (
            cycles is None
            and distance is None
            and (_F_MON_CYCLES_16 in raw or _F_MON_DISTANCE_16 in raw)
        ):
            self.n_mon_16bit_only += 1
        if all(v is None for v in (cycles, distance, calories, moderate, vigorous)):
            return
        if t is None:
            self.warn_once("mon-no-time", "monitoring activity counters without a time skipped")
            return
        self.mon_rows.append(
            (
                t,
                self.clock.run_for_relative(),
                atype,
                cycles,
                distance,
                calories,
                moderate,
                vigorous,
            )
        )

    def hrv_anchor_at(self, t: int | None) -> None:
        """A record or event at ``t``: later hrv beats accumulate from it. A second message
        with the same timestamp (an event after the record of that second) does not restart
        the sum: the beats since that instant go on (otherwise they would be placed twice)."""
        if t is not None and t != self.hrv_anchor:
            self.hrv_anchor, self.hrv_acc_ms = t, 0

    def hrv_msg(self, frame: Any) -> None:
        raw = _raw_fields(frame)
        for v in _ints(raw.get(_F_HRV_TIME)):
            if v is None or v < 0:
                continue  # 0xFFFF padding (fitdecode gives None for the invalid value)
            if self.hrv_anchor is None:
                self.n_rr_unanchored += 1
                continue
            self.hrv_acc_ms += v
            self.rr_hrv.add(self.hrv_anchor * _US + self.hrv_acc_ms * 1000, float(v))

    def beat_intervals(self, raw: dict[int, Any], t: int | None, cur: int) -> None:
        rrs = [v for v in _ints(raw.get(_F_BEAT_TIME)) if v is not None and v >= 0]
        if not rrs:
            return
        if t is None:
            self.n_rr_unanchored += len(rrs)
            return
        ms = _int(raw.get(_F_BEAT_TIMESTAMP_MS))
        at_us = t * _US + (ms * 1000 if ms is not None and ms < 1000 else 0)
        acc = 0
        for v in rrs:
            acc += v
            self.rr_beat.add(at_us + acc * 1000, float(v), cur)

    def other(self, num: int, frame: Any) -> None:
        raw = _raw_fields(frame)
        t = self._timestamp(raw.get(_F_TIMESTAMP))
        if num == _MESG_EVENT:
            self.hrv_anchor_at(t)
            return
        self.other_raw(
            num, raw, lambda: _values(frame), t, self.clock.run_for_relative(), self.clock.cur
        )

    def other_raw(
        self,
        num: int,
        raw: dict[int, Any],
        values: Callable[[], Mapping[int, Any]],
        t: int | None,
        run: int,
        cur: int,
    ) -> None:
        """A message other than record, monitoring, hr, hrv and event: its raw fields, its
        decoded values (enum names, scaled; computed on demand), its timestamp (already given
        to the clock), the clock's run for relative values and its open relative run."""
        if num == _MESG_FILE_ID:
            self.file_id(raw, values)
        elif num == _MESG_BEAT_INTERVALS:
            self.beat_intervals(raw, t, cur)
        elif num == _MESG_MONITORING_HR_DATA:
            bpm = _int(raw.get(_F_MHR_CURRENT_DAY))
            if t is not None and bpm is not None and 0 < bpm < 255:
                self.rhr_rows.append((t, run, bpm))
        elif num == _MESG_DEVICE_INFO:
            if _int(raw.get(0)) == 0 and not self.creator:  # device_index 0 = creator
                self.creator = _creator(raw, values())
            self.devices.append(
                (_int(raw.get(25)), _int(raw.get(1)), _int(raw.get(2)), _int(raw.get(4)))
            )
        elif num == _MESG_SESSION:
            self.session(raw, values, t, run)
        elif num == _MESG_ACTIVITY:
            self.local_pair("activity", raw.get(5), t, run)
        elif num == _MESG_MONITORING_INFO:
            self.local_pair("monitoring_info", raw.get(0), t, run)
            rmr = _int(raw.get(_F_MIF_RMR))
            if rmr is not None and self.resting_metabolic_rate is None:
                self.resting_metabolic_rate = rmr
        elif num == _MESG_TIMESTAMP_CORRELATION:
            sys_t = _int(raw.get(1))
            if t is not None and t >= _REL_LIMIT and sys_t is not None and sys_t < _REL_LIMIT:
                frac = _int(raw.get(0)) or 0
                sys_frac = _int(raw.get(2)) or 0
                if self.clock.correlation_s is None:
                    self.clock.correlation_s = (t + frac / 32768) - (sys_t + sys_frac / 32768)
            self.local_pair("timestamp_correlation", raw.get(3), t, run)

    def file_id(self, raw: dict[int, Any], values: Callable[[], Mapping[int, Any]]) -> None:
        ftype = _int(raw.get(0))
        if ftype is not None:
            self.file_types.append(ftype)
        if self.manufacturer is not None or self.serial is not None or len(self.file_types) > 1:
            return  # chained files: the first file_id describes the device
        vals = values()
        self.manufacturer = _name(vals.get(1))
        self.product = _name(vals.get(2))
        pname = vals.get(8)
        self.product_name = pname if isinstance(pname, str) else None
        self.serial = _int(raw.get(3))
        tc = _int(raw.get(4))
        self.time_created = tc if tc is not None and tc >= _REL_LIMIT else None

    def session(
        self,
        raw: dict[int, Any],
        values: Callable[[], Mapping[int, Any]],
        t: int | None,
        run: int,
    ) -> None:
        vals = values()
        self.sessions.append(
            _SessionRaw(
                start=_int(raw.get(2)),
                timestamp=t,
                run=run,
                elapsed_s=_duration(vals.get(7)),
                timer_s=_duration(vals.get(8)),
                sport=_name(vals.get(5)),
                sub_sport=_name(vals.get(6)),
                avg_hr=_num(raw.get(16)),
                max_hr=_num(raw.get(17)),
            )
        )

    def local_pair(self, what: str, local: Any, t: int | None, run: int) -> None:
        lt = _int(local)
        if lt is not None and t is not None:
            self.local_pairs.append((what, lt, t, run))

    # -- result -----------------------------------------------------------------------------

    def build(self, path: str) -> Recording:
        offsets, how = self.clock.offsets_s()

        def place(t: float, run: int) -> float | None:
            if t >= _REL_LIMIT:
                return t
            off = offsets[run] if 0 <= run < len(offsets) else None
            return None if off is None else t + off

        run_off = np.array([np.nan if o is None else o for o in offsets] + [np.nan])

        def place_array(
            t: npt.NDArray[np.int64], run: npt.NDArray[np.int64]
        ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
            """``place`` over arrays: placed times and whether each could be placed."""
            known = (run >= 0) & (run < len(offsets))
            off = run_off[np.where(known, run, len(offsets))]
            rel = t < _REL_LIMIT
            return np.where(rel, t + off, t.astype(np.float64)), ~rel | ~np.isnan(off)

        placed = [s.resolve(offsets) for s in (self.records, self.monitoring, self.hr_msgs)]
        (rec_t, rec_b, _, _), (mon_t, mon_b, _, _), (hrm_t, hrm_b, _, _) = placed
        n_rel_placed = sum(p[2] for p in placed)
        n_unplaced = sum(p[3] for p in placed)
        if n_unplaced and n_rel_placed == 0 and rec_t.size + mon_t.size + hrm_t.size == 0:
            raise TimeAnchorError(
                "only power-on-relative timestamps, no anchor to place them in time", path=path
            )
        if n_rel_placed and how:
            self.warnings.append(how)
        if n_unplaced:
            self.warnings.append(
                f"{n_unplaced} HR samples with power-on-relative times and no anchor dropped"
            )

        superseded = 0
        if hrm_t.size and rec_t.size:
            covered = _near(rec_t, hrm_t, int(_HR_MESSAGE_PRECEDENCE_S * _US))
            superseded = int(np.count_nonzero(covered))
            rec_t, rec_b = rec_t[~covered], rec_b[~covered]

        t_all = np.concatenate([rec_t, mon_t, hrm_t]) + FIT_EPOCH_UNIX_S * _US
        hr = HRSeries(t_all.view(TS_DTYPE), np.concatenate([rec_b, mon_b, hrm_b]))

        (hrv_t, hrv_ms, _, hrv_lost), (bi_t, bi_ms, _, bi_lost) = (
            self.rr_hrv.resolve(offsets),
            self.rr_beat.resolve(offsets),
        )
        rr_t = np.concatenate([hrv_t, bi_t]) + FIT_EPOCH_UNIX_S * _US
        rr = RRSeries(rr_t.view(TS_DTYPE), np.concatenate([hrv_ms, bi_ms]))
        if hrv_t.size:
            self.warnings.append(
                "RR beat times reconstructed: hrv messages carry no time; each beat is placed at "
                "the preceding record/event timestamp plus the RR intervals since it (FIT SDK), "
                "accurate to about one RR interval"
            )
        if bi_t.size:
            self.warnings.append(
                "RR beat times reconstructed from beat_intervals: each message's time is taken "
                "as the beat before its first interval"
            )
        n_rr_lost = hrv_lost + bi_lost + self.n_rr_unanchored
        if n_rr_lost:
            self.warnings.append(
                f"{n_rr_lost} RR intervals without a time to anchor them (no record or event "
                "before them, or power-on-relative) skipped"
            )

        kind = (
            "allday"
            if (self.n_monitoring_msgs or any(t in _MONITORING_FILE_TYPES for t in self.file_types))
            else "activity"
        )

        activities: list[ActivityInfo] = []
        for s in self.sessions:
            act = self._activity(s, place)
            if act is not None:
                activities.append(act)
        if (
            self.sessions
            and not activities
            and not len(hr)
            and any(x.start is not None and x.start < _REL_LIMIT for x in self.sessions)
        ):
            raise TimeAnchorError(
                "only power-on-relative timestamps, no anchor to place them in time", path=path
            )
        if kind == "activity" and not activities and len(hr):
            activities.append(ActivityInfo(start=hr.ts.min(), end=hr.ts.max()))
            self.warnings.append(
                "no session message: one activity synthesized from the first to the last HR sample"
            )

        utc_offset = self._utc_offset(place)

        if self.n_no_time:
            self.warnings.append(f"{self.n_no_time} HR samples without a timestamp skipped")
        if self.n_hr_unanchored:
            self.warnings.append(
                f"{self.n_hr_unanchored} hr-message samples before any anchor hr message skipped"
            )

        manufacturer = self.manufacturer or _name(self.creator.get("manufacturer"))
        product = self.product or _name(self.creator.get("product"))
        pname = self.product_name or (
            self.creator.get("product_name")
            if isinstance(self.creator.get("product_name"), str)
            else None
        )
        if product is not None and product.isdigit() and pname:
            product = pname
        device = " ".join(p for p in (manufacturer, product or pname) if p) or None
        serial = self.serial if self.serial is not None else self.creator.get("serial")

        meta: dict[str, str] = {
            "fit_files": str(self.n_parts),
            "hr_from_records": str(int(rec_t.size)),
            "hr_from_monitoring": str(int(mon_t.size)),
            "hr_from_hr_messages": str(int(hrm_t.size)),
        }
        if rr_t.size:
            meta["rr_from_hrv"] = str(int(hrv_t.size))
            meta["rr_from_beat_intervals"] = str(int(bi_t.size))
            # beats the anchoring rule placed before the beat preceding them (message order is
            # the beat order; the times overshoot a little where a record re-anchors them)
            meta["rr_out_of_order"] = str(int(np.count_nonzero(np.diff(rr_t) < 0)))
        if self.resting_metabolic_rate is not None:
            meta["resting_metabolic_rate_kcal_per_day"] = str(self.resting_metabolic_rate)
        if superseded:
            meta["hr_records_superseded"] = str(superseded)
        if self.file_types:
            meta["file_type"] = str(self.file_types[0])
        if manufacturer:
            meta["manufacturer"] = manufacturer
        if product:
            meta["product"] = product
        if self.time_created is not None:
            meta["time_created"] = (
                str(np.datetime64((self.time_created + FIT_EPOCH_UNIX_S), "s")) + "Z"
            )

        mon = self.mon_table if self.mon_table is not None else _MonTable.from_rows(self.mon_rows)
        vendor = _monitoring_vendor(
            mon, self.rhr_rows, place, place_array, utc_offset, device, self.warnings
        )
        if self.n_mon_16bit_only:
            self.warnings.append(
                f"{self.n_mon_16bit_only} monitoring messages with only 16-bit counters "
                "(cycles_16/distance_16) not used for vendor series"
            )
        sensor = None
        if len(hr) or len(rr):
            sensor = _sensor_kind(
                strap_messages=bool(hrm_t.size),
                devices=self.devices,
                manufacturer=manufacturer,
                product=product,
                product_name=pname if isinstance(pname, str) else None,
            )
        return Recording(
            format="fit",
            kind=kind,
            hr=hr,
            activities=activities,
            rr=rr,
            vendor=vendor,
            sensor=sensor,
            device=device,
            serial=str(serial) if isinstance(serial, int) else None,
            utc_offset_s=utc_offset,
            warnings=self.warnings,
            meta=meta,
        )

    def _activity(self, s: _SessionRaw, place: Any) -> ActivityInfo | None:
        start = place(s.start, s.run) if s.start is not None else None
        stamp = place(s.timestamp, s.run) if s.timestamp is not None else None
        if start is None and stamp is not None and s.elapsed_s is not None:
            start = stamp - s.elapsed_s
        if start is None or not 0 <= start < _MAX_FIT_S:
            self.warn_once("session-time", "session message without a usable start time skipped")
            return None
        if s.elapsed_s is not None and 0 <= s.elapsed_s < _MAX_SESSION_S:
            end = start + s.elapsed_s
        elif stamp is not None:
            end = stamp
        else:
            end = start
        return ActivityInfo(
            start=_dt64(start),
            end=_dt64(end),
            sport=s.sport,
            sub_sport=s.sub_sport,
            timer_s=s.timer_s,
            elapsed_s=s.elapsed_s,
            avg_hr=s.avg_hr,
            max_hr=s.max_hr,
        )

    def _utc_offset(self, place: Any) -> int | None:
        for what, local, t, run in self.local_pairs:
            utc = place(t, run)
            if utc is None or local < _REL_LIMIT:
                continue
            off = local - int(utc)
            if abs(off) <= _MAX_UTC_OFFSET_S and off % 900 == 0:
                return off
            self.warn_once(
                f"offset:{off}",
                f"{what}.local_timestamp implies a UTC offset of {off} s, not within ±14 h on a "
                "15-minute grid; ignored",
            )
        return None


_MAX_FIT_S = float(1 << 32)  # FIT date_time is uint32 seconds
_MAX_SESSION_S = 31 * 86_400.0  # a session's elapsed time beyond a month is not a session


def _dt64(fit_s: float) -> np.datetime64:
    return np.datetime64(round((fit_s + FIT_EPOCH_UNIX_S) * _US), "us")


def _near(t: npt.NDArray[np.int64], ref: npt.NDArray[np.int64], tol: int) -> npt.NDArray[np.bool_]:
    """For each t, whether some ref value lies within ``tol``."""
    ref = np.sort(ref)
    i = np.searchsorted(ref, t)
    lo = ref[np.clip(i - 1, 0, ref.size - 1)]
    hi = ref[np.clip(i, 0, ref.size - 1)]
    return (np.abs(t - lo) <= tol) | (np.abs(hi - t) <= tol)


# --------------------------------------------------------------------------------------------
# vendor activity series from monitoring files

_DAY_S: Final = 86400


_MonRow = tuple[int, int, int | None, int | None, int | None, int | None, int | None, int | None]


@dataclass
class _MonTable:
    """Monitoring activity counters, one row per message that has any: raw FIT time ``t`` and
    its clock run (as ``_State.mon_rows``), ``atype`` (-1 for none) and ``values`` (n, 5):
    cycles, distance, active_calories, moderate and vigorous minutes (NaN for none)."""

    t: npt.NDArray[np.int64]
    run: npt.NDArray[np.int64]
    atype: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    @classmethod
    def from_rows(cls, rows: list[_MonRow]) -> _MonTable:
        return cls(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.int64),
            np.array([-1 if r[2] is None else r[2] for r in rows], dtype=np.int64),
            np.array(
                [[np.nan if v is None else float(v) for v in r[3:8]] for r in rows],
                dtype=np.float64,
            ).reshape(len(rows), 5),
        )


def _monitoring_vendor(
    mon: _MonTable,
    rhr_rows: list[tuple[int, int, int]],
    place: Callable[[float, int], float | None],
    place_array: Callable[
        [npt.NDArray[np.int64], npt.NDArray[np.int64]],
        tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]],
    ],
    utc_offset: int | None,
    origin: str | None,
    warnings: list[str],
) -> list[VendorSeries]:
    """What the device's own algorithms counted, from Garmin monitoring (wellness) messages.

    Rules (FIT SDK Profile.xlsx message ``monitoring``; semantics cross-checked with the
    monitoring importers of GarminDB (``monitoring_db.py``: steps/active calories = per-day
    maximum per activity type, intensity minutes = sum) and PostRunner
    (``DailyMonitoringAnalyzer.rb``)):

    * ``cycles`` (3), ``active_calories`` (19) and ``distance`` (2, 1/100 m) are counts
      *accumulated per activity_type* ("Maintained by MonitoringReader for each activity_type")
      that restart at the local day boundary. ``cycles`` is ``steps`` (its subfield, raw value)
      when ``activity_type`` (5, or the low 5 bits of ``current_activity_type_intensity``, 24) is
      walking or running; other activity types' cycles (strokes, pedal turns) are not steps. We
      output only *differences*: for consecutive messages of one activity type, the value covers
      ``[previous message, this message)`` and is ``this - previous``. On a new local day (the
      file's UTC offset from ``monitoring_info.local_timestamp``) the counter restarted at
      midnight, so the value is this count itself and covers ``[max(previous, midnight), this)``;
      a message stamped exactly at local midnight closes the day before (GarminDB, PostRunner:
      "records with a midnight timestamp contain totals from the day before"). A count that goes
      down within a day is taken as a restart too (and reported). The first message of each
      activity type in the file is only a baseline: what was counted before it may lie in
      another file of the same day, so it is not attributed (never output as a cumulative
      value). Without a UTC offset, day boundaries are unknown and a restart is recognised only
      where a count goes down (reported).
    * ``moderate_activity_minutes`` (33) / ``vigorous_activity_minutes`` (34) are minutes
      credited in that message (GarminDB sums them; the weekly running totals are other fields),
      covering ``[previous message carrying that field, this message)``, the first one
      ``[t - value min, t)``.
    * ``monitoring_hr_data.current_day_resting_heart_rate`` (211/1) is the day's resting HR
      (``resting_heart_rate``, 211/0, is Garmin's 7-day average and is not used): one value per
      local day, the last message of the day wins, covering that local day (24 h at the file's
      UTC offset). Without a UTC offset the day cannot be placed and the values are skipped.
    """
    out: list[VendorSeries] = []
    if not mon.t.size and not rhr_rows:
        return out
    off = utc_offset
    placed_t, placed_ok = place_array(mon.t, mon.run)
    n_lost = int(np.count_nonzero(~placed_ok))
    if np.any(placed_ok):
        t = placed_t[placed_ok]
        atype = mon.atype[placed_ok]
        col = mon.values[placed_ok]
        n_down = 0
        cumulative = (
            ("steps", "steps", 0, 1.0, True),
            ("energy_active_kcal", "kcal", 2, 1.0, False),
            ("distance_m", "m", 1, 0.01, False),
        )
        for kind, unit, c, scale, steps_only in cumulative:
            mask = np.isfinite(col[:, c])
            if steps_only:
                mask &= np.isin(atype, list(_STEP_ACTIVITY_TYPES))
            parts = []
            for ty in np.unique(atype[mask]):
                idx = np.flatnonzero(mask & (atype == ty))
                *part, down = _cumulative_deltas(t[idx], col[idx, c], off)
                parts.append(part)
                n_down += down
            if parts:
                start, dur, val = (np.concatenate(p) for p in zip(*parts, strict=True))
                if start.size:
                    out.append(_vendor_series(kind, unit, start, dur, val * scale, origin))
        for kind, c in (("active_minutes_moderate", 3), ("active_minutes_vigorous", 4)):
            mask = np.isfinite(col[:, c])
            if not mask.any():
                continue
            tm, vm = t[mask], col[mask, c]
            start = np.concatenate(([tm[0] - vm[0] * 60.0], tm[:-1]))
            keep = (tm >= start) & ~((tm == start) & (vm == 0))
            out.append(
                _vendor_series(kind, "min", start[keep], (tm - start)[keep], vm[keep], origin)
            )
        if off is None and any(
            v.kind in ("steps", "energy_active_kcal", "distance_m") for v in out
        ):
            warnings.append(
                "no UTC offset in the file: the daily restart of the monitoring counters is "
                "recognised only where a count goes down"
            )
        if n_down:
            warnings.append(
                f"{n_down} monitoring counts went down within a day: taken as counter restarts"
            )
    if rhr_rows:
        if off is None:
            warnings.append(
                "resting HR per day skipped: no UTC offset in the file to place the local day"
            )
        else:
            rp = [(place(t0, run), bpm) for t0, run, bpm in rhr_rows]
            n_lost += sum(1 for tp, _ in rp if tp is None)
            rt = np.array([tp for tp, _ in rp if tp is not None], dtype=np.float64)
            rv = np.array([b for tp, b in rp if tp is not None], dtype=np.float64)
            if rt.size:
                day = np.floor((rt + off - 1) / _DAY_S)
                # last message of each day: unique over the reversed order keeps the first hit
                days, first_rev = np.unique(day[::-1], return_index=True)
                last = rt.size - 1 - first_rev
                out.append(
                    _vendor_series(
                        "resting_hr_bpm",
                        "bpm",
                        days * _DAY_S - off,
                        np.full(days.size, float(_DAY_S)),
                        rv[last],
                        origin,
                    )
                )
    if n_lost:
        warnings.append(
            f"{n_lost} monitoring activity values with power-on-relative times and "
            "no anchor skipped"
        )
    return out


def _cumulative_deltas(
    t: npt.NDArray[np.float64], v: npt.NDArray[np.float64], off: int | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], int]:
    """Per-interval differences of one activity type's accumulated count (message order):
    start, duration, value, and how many times the count went down within a day."""
    empty = np.empty(0, dtype=np.float64)
    if t.size < 2:
        return empty, empty, empty, 0
    t0, t1, v0, v1 = t[:-1], t[1:], v[:-1], v[1:]
    if off is None:
        new_day = np.zeros(t1.shape, dtype=bool)
        day_start = t0
    else:
        day = np.floor((t + off - 1) / _DAY_S)  # a message at local midnight closes the day
        new_day = day[1:] > day[:-1]
        day_start = day[1:] * _DAY_S - off
    forward = t1 >= t0
    down = (v1 < v0) & ~new_day
    delta = np.where(new_day | down, v1, v1 - v0)
    start = np.where(new_day, np.maximum(t0, day_start), t0)
    dur = t1 - start
    keep = forward & ~((dur == 0) & (delta == 0))
    return start[keep], dur[keep], delta[keep], int(np.count_nonzero(down & forward))


def _vendor_series(
    kind: str,
    unit: str,
    start_fit_s: npt.NDArray[np.float64],
    duration_s: npt.NDArray[np.float64],
    value: npt.NDArray[np.float64],
    origin: str | None,
) -> VendorSeries:
    order = np.argsort(start_fit_s, kind="stable")
    start_us = np.rint((start_fit_s[order] + FIT_EPOCH_UNIX_S) * _US).astype(np.int64)
    return VendorSeries(
        kind, unit, start_us.view(TS_DTYPE), duration_s[order], value[order], origin=origin
    )


# --------------------------------------------------------------------------------------------
# HR sensor kind

#: Wrist devices (watches, wrist trackers) by product name: Garmin profile names and a few
#: other makers' watch lines. A heuristic, matched against "manufacturer product product_name".
_WRIST_PRODUCT = re.compile(
    r"fenix|\bfr\d|forerunner|vivo|venu|instinct|epix|enduro|marq|tactix|quatix|descent"
    r"|approach_?s|\bd2|\blily|\bswim|bounce|coros (pace|apex|vertix)"
    r"|polar (vantage|grit|pacer|ignite|unite|m4\d0)|suunto|apple watch",
    re.IGNORECASE,
)
#: Garmin wrist products *without* an optical HR sensor (their HR comes from a paired strap).
_NO_WRIST_HR = frozenset(
    {
        "fr10",
        "fr15",
        "fr25",
        "fr60",
        "fr70",
        "fr110",
        "fr210",
        "fr220",
        "fr230",
        "fr301",
        "fr310xt",
        "fr310xt_4t",
        "fr405",
        "fr410",
        "fr610",
        "fr620",
        "fr630",
        "fr910xt",
        "fr920xt",
        "fenix",
        "fenix2",
        "fenix3",
        "fenix3_chronos",
        "epix",
        "vivo_active",
        "vivo_fit",
        "vivo_fit2",
        "vivo_fit3",
        "vivo_fit4",
        "vivo_fit_jr",
        "vivo_ki",
        "vivo_smart",
        "vivo_move",
        "swim",
        "d2_bravo",
        "d2_bravo_titanium",
    }
)
_REGION_SUFFIX = re.compile(
    r"_(asia|apac|japan|jpn|china|chn|korea|kor|taiwan|twn|sea|russia|emea|hebrew)$"
)


def _sensor_kind(
    *,
    strap_messages: bool,
    devices: list[tuple[int | None, int | None, int | None, int | None]],
    manufacturer: str | None,
    product: str | None,
    product_name: str | None,
) -> str | None:
    """The HR sensor kind of a FIT file, first rule that applies:

    1. ``"chest_strap"`` when the file holds ``hr`` messages (what HRM-Tri/-Swim/-Pro straps
       store and hand over), or ``device_info`` lists an external heart-rate sensor — ANT+
       device type heart_rate (120; ``source_type`` antplus or ant, or absent as in files that
       predate it) or BLE device type heart_rate (1; Profile.xlsx ``ble_device_type``) — other
       than a Garmin "OHR" (``garmin_product`` 255: a watch broadcasting its wrist HR, e.g. the
       Edge 820 file of the corpus, which lists a fenix 5's serial under OHR). Garmin devices
       record a paired sensor's HR in preference to the wrist sensor, so the file's HR is taken
       as the strap's.
    2. ``"optical"`` when the HR device listed is such an OHR broadcast, or ``device_info`` lists
       the device's own wrist sensor (``source_type`` local, ``local_device_type`` whr, 10), or
       the creator is a wrist device (:data:`_WRIST_PRODUCT`, a name heuristic) with an optical
       sensor (not in :data:`_NO_WRIST_HR`, pre-2016 Garmin watches whose HR needs a strap) and
       no external HR sensor is listed.
    3. ``None`` otherwise (bike computers and apps without a listed sensor, unknown devices).
    """
    strap = ohr = whr = False
    for src, dtype, manu, prod in devices:
        if dtype is None:
            continue
        if (dtype == _ANTPLUS_HEART_RATE and src in (None, _SRC_ANT, _SRC_ANTPLUS)) or (
            dtype == _BLE_HEART_RATE and src == _SRC_BLE
        ):
            if manu in _GARMIN_PRODUCT_MANUFACTURERS and prod == _GARMIN_OHR_PRODUCT:
                ohr = True
            else:
                strap = True
        elif dtype == _LOCAL_WRIST_HR and src == _SRC_LOCAL:
            whr = True
    if strap_messages or strap:
        return "chest_strap"
    if ohr or whr:
        return "optical"
    text = " ".join(p for p in (manufacturer, product, product_name) if p)
    if not _WRIST_PRODUCT.search(text):
        return None
    if (
        manufacturer == "garmin"
        and product is not None
        and (_REGION_SUFFIX.sub("", product.lower()) in _NO_WRIST_HR)
    ):
        return None
    return "optical"
