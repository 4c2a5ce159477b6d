"""What the accelerometer readers share: a file's bytes kept readable after the caller closes
it (memory-mapped where possible), and device clocks placed in a time zone.

Research accelerometers keep local wall time without a zone, set once at configuration: one UTC
offset is applied to a whole file (see docs/decisions.md).
"""

from __future__ import annotations

import io
import mmap
import os
import stat
from typing import Any, BinaryIO, Final

import numpy as np
import numpy.typing as npt

from actidose.errors import InputError, TimeAnchorError
from actidose.recording import ReadContext
from actidose.timeutil import local_to_utc, utc_offsets_s, zone

_US: Final = 1_000_000
#: Samples per chunk the accelerometer readers hand out (about 12 MB of float32 xyz).
CHUNK_SAMPLES: Final = 1_000_000


class FileBuffer:
    """The bytes of a file, kept readable after the file object is closed, so that
    ``AccelStream.chunks()`` can decode them again on every pass.

    A regular file is memory-mapped (nothing is read until a page is touched); any other
    stream is read into memory. Pickling (a worker process handing a Recording back) copies
    the bytes. The file must not be changed while the recording is processed."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self._data = data

    @classmethod
    def of(cls, fp: BinaryIO, *, path: str) -> FileBuffer:
        try:
            fd = fp.fileno()
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size > 0:
                return cls(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            pass
        data = fp.read()
        if not isinstance(data, bytes | bytearray):
            raise InputError("not a binary stream", path=path, offset=0)
        return cls(bytes(data))

    def __len__(self) -> int:
        return len(self._data)

    @property
    def data(self) -> bytes | mmap.mmap:
        return self._data

    def array(self, start: int = 0, stop: int | None = None) -> npt.NDArray[np.uint8]:
        """Bytes ``[start, stop)`` as a read-only uint8 array (no copy)."""
        stop = len(self._data) if stop is None else min(stop, len(self._data))
        if stop <= start:
            return np.empty(0, np.uint8)
        return np.frombuffer(self._data, np.uint8, count=stop - start, offset=start)

    def __getstate__(self) -> dict[str, Any]:
        return {"data": bytes(self._data)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._data = state["data"]


def require_zone(ctx: ReadContext, path: str, what: str = "device times") -> str:
    """The zone that places naive local times, or a TimeAnchorError (an InputError) when none
    was given."""
    tz = ctx.options.get("timezone") or ctx.timezone
    if not tz:
        raise TimeAnchorError(
            f"{what} are local wall-clock times without a zone and no time zone was given; "
            "set the participant's timezone or --timezone (never guessed)",
            path=path,
        )
    zone(tz)  # an unknown name is a UsageError before any work
    return tz


def place_device_clock(first_local_us: int, last_local_us: int, tz: str) -> tuple[int, list[str]]:
    """The offset (microseconds, local - UTC) that places a device clock's times in UTC, and
    warnings.

    Accelerometer clocks are set to local time when the device is configured and then run on,
    without daylight saving time. So one offset holds for the whole file: the zone's offset at
    the first sample. When the zone changes offset during the recording, a warning says so
    (the device clock, not the wall clock, is followed)."""
    utc_first, _ = local_to_utc(np.array([first_local_us], np.int64), tz)
    off_us = int(first_local_us - int(utc_first[0]))
    warnings: list[str] = []
    span_end = int(last_local_us) - off_us
    probe = np.arange(int(utc_first[0]), span_end + 1, 3 * 3600 * _US, dtype=np.int64)
    probe = np.append(probe, np.int64(span_end))
    offs = utc_offsets_s(probe, tz)
    if np.any(offs != off_us // _US):
        at = int(probe[int(np.flatnonzero(offs != off_us // _US)[0])])
        warnings.append(
            f"the recording spans a change of UTC offset in {tz} (near "
            f"{np.datetime64(at, 'us').astype('datetime64[m]')}Z); device clocks do not follow "
            f"daylight saving time, so every time was placed with the offset at the start "
            f"({fmt_offset(off_us // _US)})"
        )
    return off_us, warnings


def fmt_offset(off_s: int) -> str:
    """3600 -> ``+01:00``."""
    sign = "-" if off_s < 0 else "+"
    off_s = abs(off_s)
    return f"{sign}{off_s // 3600:02d}:{off_s % 3600 // 60:02d}"
