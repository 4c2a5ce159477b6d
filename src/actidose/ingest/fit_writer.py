"""A small FIT encoder: real, CRC-correct FIT files for the demo, the tests and the benchmarks.

It writes what actidose reads (file_id, device_info, event, record, lap, session, activity,
monitoring, monitoring_info, monitoring_hr_data, hr, hrv, beat_intervals, timestamp_correlation,
developer fields) and nothing else. It does
not depend on fitdecode, so tests that decode its output with fitdecode check two independent
implementations against each other.

References (FIT SDK): "FIT Protocol" document — §3.3.1 file header (14 bytes, header CRC over
bytes 0..11), §3.3.2/§3.3.3 record headers and definition messages, §3.3.7 compressed timestamp
headers, §3.3.4 developer data, §3.3.11 CRC-16; ``Profile.xlsx`` for the global message and field
numbers used below (they match the profile generated into fitdecode from the same sheet).

Record bytes are built with numpy structured arrays (one ``tobytes`` for all rows), so writing a
week of 1 Hz data takes milliseconds plus the CRC.
"""

from __future__ import annotations

import datetime as _dt
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "FIT_EPOCH_UNIX_S",
    "SPORTS",
    "SUB_SPORTS",
    "FitWriter",
    "fit_crc16",
    "fit_seconds",
    "write_activity_fit",
    "write_monitoring_fit",
]

#: Unix time of the FIT epoch, 1989-12-31T00:00:00Z (Profile.xlsx, type ``date_time``).
FIT_EPOCH_UNIX_S: Final = 631_065_600

# Base types (protocol §3.3.3, table "FIT base types"): number, struct code, invalid value.
ENUM: Final = 0x00
SINT8: Final = 0x01
UINT8: Final = 0x02
SINT16: Final = 0x83
UINT16: Final = 0x84
SINT32: Final = 0x85
UINT32: Final = 0x86
STRING: Final = 0x07
FLOAT32: Final = 0x88
FLOAT64: Final = 0x89
UINT8Z: Final = 0x0A
UINT16Z: Final = 0x8B
UINT32Z: Final = 0x8C
BYTE: Final = 0x0D
_BASE: Final[dict[int, tuple[str, int | float | None]]] = {
    ENUM: ("B", 0xFF),
    SINT8: ("b", 0x7F),
    UINT8: ("B", 0xFF),
    SINT16: ("h", 0x7FFF),
    UINT16: ("H", 0xFFFF),
    SINT32: ("i", 0x7FFFFFFF),
    UINT32: ("I", 0xFFFFFFFF),
    STRING: ("s", None),
    FLOAT32: ("f", None),
    FLOAT64: ("d", None),
    UINT8Z: ("B", 0),
    UINT16Z: ("H", 0),
    UINT32Z: ("I", 0),
    BYTE: ("B", 0xFF),
}
_BASE_NAMES: Final = {
    "enum": ENUM,
    "sint8": SINT8,
    "uint8": UINT8,
    "sint16": SINT16,
    "uint16": UINT16,
    "sint32": SINT32,
    "uint32": UINT32,
    "float32": FLOAT32,
    "float64": FLOAT64,
}
_NP_DTYPE: Final = {
    ENUM: "u1",
    SINT8: "i1",
    UINT8: "u1",
    SINT16: "<i2",
    UINT16: "<u2",
    SINT32: "<i4",
    UINT32: "<u4",
    FLOAT32: "<f4",
    FLOAT64: "<f8",
    UINT8Z: "u1",
    UINT16Z: "<u2",
    UINT32Z: "<u4",
}

# Global message numbers (Profile.xlsx, type ``mesg_num``).
MESG_FILE_ID: Final = 0
MESG_SESSION: Final = 18
MESG_LAP: Final = 19
MESG_RECORD: Final = 20
MESG_EVENT: Final = 21
MESG_DEVICE_INFO: Final = 23
MESG_ACTIVITY: Final = 34
MESG_MONITORING: Final = 55
MESG_HRV: Final = 78
MESG_MONITORING_INFO: Final = 103
MESG_HR: Final = 132
MESG_TIMESTAMP_CORRELATION: Final = 162
MESG_FIELD_DESCRIPTION: Final = 206
MESG_DEVELOPER_DATA_ID: Final = 207
MESG_MONITORING_HR_DATA: Final = 211
MESG_BEAT_INTERVALS: Final = 290

#: Profile.xlsx type ``activity_type`` (monitoring messages).
ACTIVITY_TYPES: Final[dict[str, int]] = {
    "generic": 0,
    "running": 1,
    "cycling": 2,
    "transition": 3,
    "fitness_equipment": 4,
    "swimming": 5,
    "walking": 6,
    "sedentary": 8,
}
#: Profile.xlsx type ``source_type`` (device_info).
SOURCE_TYPES: Final[dict[str, int]] = {
    "ant": 0,
    "antplus": 1,
    "bluetooth": 2,
    "bluetooth_low_energy": 3,
    "wifi": 4,
    "local": 5,
}

#: Profile.xlsx type ``sport`` (a subset; any int is accepted too).
SPORTS: Final[dict[str, int]] = {
    "generic": 0,
    "running": 1,
    "cycling": 2,
    "transition": 3,
    "fitness_equipment": 4,
    "swimming": 5,
    "basketball": 6,
    "soccer": 7,
    "tennis": 8,
    "training": 10,
    "walking": 11,
    "cross_country_skiing": 12,
    "rowing": 15,
    "hiking": 17,
    "multisport": 18,
    "paddling": 19,
    "e_biking": 21,
    "inline_skating": 30,
    "rock_climbing": 31,
    "hiit": 62,
}
#: Profile.xlsx type ``sub_sport`` (a subset; any int is accepted too).
SUB_SPORTS: Final[dict[str, int]] = {
    "generic": 0,
    "treadmill": 1,
    "street": 2,
    "trail": 3,
    "track": 4,
    "spin": 5,
    "indoor_cycling": 6,
    "road": 7,
    "mountain": 8,
    "indoor_rowing": 14,
    "elliptical": 15,
    "stair_climbing": 16,
    "lap_swimming": 17,
    "open_water": 18,
    "strength_training": 20,
    "cardio_training": 26,
    "indoor_walking": 27,
    "indoor_running": 45,
}


def _crc_table() -> tuple[int, ...]:
    """CRC-16 with the reflected polynomial 0xA001 — what the SDK's 16-entry nibble table
    computes (protocol §3.3.11) — as a byte table."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def fit_crc16(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """FIT CRC-16 of ``data`` (protocol §3.3.11), continuing from ``crc``."""
    table = _CRC_TABLE
    for byte in bytes(data):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


TimeLike = np.datetime64 | _dt.datetime | int
TimesLike = npt.ArrayLike


def fit_seconds(t: TimeLike) -> int:
    """One instant as a raw FIT ``date_time`` (seconds since 1989-12-31T00:00:00Z).

    ``int`` values are taken as raw FIT values already — that is how power-on-relative times
    (below 0x10000000) are written. ``datetime`` must be timezone-aware; ``datetime64`` is UTC.
    """
    if isinstance(t, bool):
        raise TypeError("a time, not a bool")
    if isinstance(t, int | np.integer):
        return int(t)
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            raise ValueError("naive datetime: give a timezone-aware one (UTC)")
        return int(t.timestamp() // 1) - FIT_EPOCH_UNIX_S
    if isinstance(t, np.datetime64):
        return int(t.astype("datetime64[s]").astype(np.int64)) - FIT_EPOCH_UNIX_S
    raise TypeError(f"cannot use {type(t).__name__} as a FIT time")


def _fit_seconds_array(ts: TimesLike) -> npt.NDArray[np.int64]:
    a = np.asarray(ts)
    if a.dtype.kind == "M":
        return (a.astype("datetime64[s]").astype(np.int64) - FIT_EPOCH_UNIX_S).astype(np.int64)
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    if a.dtype == object:
        return np.array([fit_seconds(x) for x in a.ravel()], dtype=np.int64)
    raise TypeError(f"timestamps must be datetime64 or raw FIT integers, not {a.dtype}")


def _fit_us_array(ts: TimesLike) -> npt.NDArray[np.int64]:
    a = np.asarray(ts)
    if a.dtype.kind == "M":
        return a.astype("datetime64[us]").astype(np.int64) - FIT_EPOCH_UNIX_S * 1_000_000
    return _fit_seconds_array(a) * 1_000_000


def _u8_bpm(hr: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Heart rates as uint8 with 255 (FIT's invalid) for NaN."""
    a = np.asarray(hr, dtype=np.float64)
    bad = ~np.isfinite(a)
    r = np.rint(np.where(bad, 255, a))
    if np.any((r < 0) | (r > 255)):
        raise ValueError("heart rates must be within 0..255 bpm (NaN for none)")
    return r.astype(np.uint8)


def _check_u32(t: npt.NDArray[np.int64], what: str) -> None:
    if t.size and (t.min() < 0 or t.max() > 0xFFFFFFFE):
        raise ValueError(f"{what}: FIT times must be within 1989-12-31 .. 2126 (uint32 seconds)")


def _code(v: str | int, table: Mapping[str, int], what: str) -> int:
    if isinstance(v, int):
        return v
    try:
        return table[v]
    except KeyError:
        raise ValueError(f"unknown {what} {v!r}; give its Profile.xlsx number") from None


@dataclass(frozen=True)
class _Field:
    num: int
    base: int
    size: int


_Layout = tuple[int, tuple[_Field, ...], tuple[tuple[int, int, int], ...]]


class FitWriter:
    """Builds one FIT file in memory; messages are written in the order the methods are called.

    Typical use::

        w = FitWriter()
        w.add_file_id(serial=1234, time_created=ts[0])
        w.add_records(ts, hr)
        w.add_session(ts[0], ts[-1], sport="running")
        w.add_activity(ts[-1], local_offset_s=3600)
        data = w.to_bytes()

    Times are ``numpy.datetime64`` (UTC), aware ``datetime`` or raw FIT integers (seconds since
    the FIT epoch; values below 0x10000000 are power-on-relative, protocol "date_time").
    """

    def __init__(
        self,
        *,
        protocol_version: int = 0x20,
        profile_version: int = 2132,
        big_endian: bool = False,
    ) -> None:
        """``big_endian`` writes every definition with architecture 1 (big-endian field values,
        protocol §3.3.3) instead of 0; the file header and CRC stay little-endian."""
        self.protocol_version = protocol_version
        self.big_endian = big_endian
        self._e = ">" if big_endian else "<"
        self.profile_version = profile_version
        self._body = bytearray()
        self._local_of: dict[_Layout, int] = {}
        self._layout_of_local: dict[int, _Layout] = {}
        self._next_normal = 4  # locals 4..15 for normal headers
        self._next_compressed = 0  # locals 0..3 for compressed timestamp headers
        self._dev_fields: dict[int, tuple[int, int]] = {}  # field number -> (base, size)
        self._dev_declared = False

    # -- plumbing ---------------------------------------------------------------------------

    def _dt(self, code: str) -> str:
        """A numpy type code in the file's byte order."""
        return code.replace("<", self._e)

    def _local(self, layout: _Layout, *, compressed: bool = False) -> int:
        """Local message number for ``layout``, writing its definition message if needed
        (protocol §3.3.3; a local number may be redefined, §3.3.4)."""
        local = self._local_of.get(layout)
        if local is not None and (local < 4) == compressed:
            return local
        if compressed:
            local = self._next_compressed
            self._next_compressed = (self._next_compressed + 1) % 4
        else:
            local = self._next_normal
            self._next_normal = 4 + (self._next_normal - 3) % 12
        old = self._layout_of_local.pop(local, None)
        if old is not None:
            self._local_of.pop(old, None)
        self._local_of[layout] = local
        self._layout_of_local[local] = layout
        global_num, fields, dev = layout
        header = 0x40 | local | (0x20 if dev else 0)
        out = bytearray(
            struct.pack(self._e + "BBBHB", header, 0, int(self.big_endian), global_num, len(fields))
        )
        for f in fields:
            out += struct.pack("<BBB", f.num, f.size, f.base)
        if dev:
            out.append(len(dev))
            for num, size, index in dev:
                out += struct.pack("<BBB", num, size, index)
        self._body += out
        return local

    def add_message(
        self, global_num: int, fields: Sequence[tuple[int, int, Any]], *, count: int = 1
    ) -> None:
        """Write one data message: ``fields`` are ``(field number, base type, value)``; a value
        of ``None`` writes the base type's invalid marker, a list/tuple an array, a str or
        bytes a string/byte field. The escape hatch for messages without a helper below."""
        specs: list[_Field] = []
        payload = bytearray()
        for num, base, value in fields:
            code, invalid = _BASE[base]
            if base == STRING:
                raw = (value.encode() if isinstance(value, str) else bytes(value or b"")) + b"\0"
                specs.append(_Field(num, base, len(raw)))
                payload += raw
                continue
            if base == BYTE and isinstance(value, bytes | bytearray):
                specs.append(_Field(num, base, len(value)))
                payload += value
                continue
            values = list(value) if isinstance(value, list | tuple) else [value]
            if base in (FLOAT32, FLOAT64):  # invalid = all bits set
                width = struct.calcsize(code)
                packed = b"".join(
                    b"\xff" * width if v is None else struct.pack(self._e + code, v) for v in values
                )
            else:
                filled = [invalid if v is None else int(v) for v in values]
                packed = struct.pack(self._e + code * len(filled), *filled)
            specs.append(_Field(num, base, len(packed)))
            payload += packed
        local = self._local((global_num, tuple(specs), ()))
        self._body.append(local)
        self._body += payload

    # -- message helpers ---------------------------------------------------------------------

    def add_file_id(
        self,
        *,
        type: int = 4,
        manufacturer: int = 1,
        product: int = 2697,
        serial: int,
        time_created: TimeLike,
        product_name: str | None = None,
    ) -> None:
        """``file_id`` (global 0): file type (4 activity, 32 monitoring_b, ...), manufacturer
        (1 garmin), product (2697 fenix5), serial number, creation time. Should come first."""
        fields: list[tuple[int, int, Any]] = [
            (0, ENUM, type),
            (1, UINT16, manufacturer),
            (2, UINT16, product),
            (3, UINT32Z, serial),
            (4, UINT32, fit_seconds(time_created)),
        ]
        if product_name is not None:
            fields.append((8, STRING, product_name))
        self.add_message(MESG_FILE_ID, fields)

    def add_device_info(
        self,
        timestamp: TimeLike,
        *,
        device_index: int = 0,
        manufacturer: int = 1,
        product: int = 2697,
        serial: int | None = None,
        software_version: float | None = None,
        source_type: str | int | None = None,
        device_type: int | None = None,
    ) -> None:
        """``device_info`` (global 23); device_index 0 is the creator (the recording device).
        A paired sensor: ``source_type`` (25: "antplus", "bluetooth_low_energy", "local", ...)
        and ``device_type`` (1: antplus_device_type 120 heart_rate, ble_device_type 1
        heart_rate, local_device_type 10 whr ...); both are omitted when None."""
        fields: list[tuple[int, int, Any]] = [
            (253, UINT32, fit_seconds(timestamp)),
            (0, UINT8, device_index),
            (2, UINT16, manufacturer),
            (3, UINT32Z, serial),
            (4, UINT16, product),
            (5, UINT16, None if software_version is None else round(software_version * 100)),
        ]
        if device_type is not None:
            fields.append((1, UINT8, device_type))
        if source_type is not None:
            fields.append((25, ENUM, _code(source_type, SOURCE_TYPES, "source_type")))
        self.add_message(MESG_DEVICE_INFO, fields)

    def add_event(
        self, timestamp: TimeLike, *, event: int = 0, event_type: int = 0, data: int | None = None
    ) -> None:
        """``event`` (global 21): event 0 = timer, event_type 0 = start, 4 = stop_all."""
        self.add_message(
            MESG_EVENT,
            [
                (253, UINT32, fit_seconds(timestamp)),
                (0, ENUM, event),
                (1, ENUM, event_type),
                (3, UINT32, data),
            ],
        )

    def add_timestamp_correlation(self, timestamp: TimeLike, system_timestamp: int) -> None:
        """``timestamp_correlation`` (global 162): UTC ``timestamp`` at power-on-relative
        ``system_timestamp`` — the exact anchor for power-on-relative times."""
        self.add_message(
            MESG_TIMESTAMP_CORRELATION,
            [(253, UINT32, fit_seconds(timestamp)), (1, UINT32, int(system_timestamp))],
        )

    def add_developer_field(
        self,
        name: str,
        *,
        base_type: str = "uint16",
        units: str = "",
        field_number: int | None = None,
    ) -> int:
        """Declare a developer field (``developer_data_id`` 207 + ``field_description`` 206,
        protocol §3.3.4) and return its field number, for ``add_records(developer=...)``."""
        base = _BASE_NAMES[base_type]
        if not self._dev_declared:
            self.add_message(
                MESG_DEVELOPER_DATA_ID,
                [(1, BYTE, bytes(range(16))), (3, UINT8, 0), (4, UINT32, 1)],
            )
            self._dev_declared = True
        num = len(self._dev_fields) if field_number is None else field_number
        self.add_message(
            MESG_FIELD_DESCRIPTION,
            [
                (0, UINT8, 0),
                (1, UINT8, num),
                (2, UINT8, base),
                (3, STRING, name),
                (8, STRING, units),
            ],
        )
        self._dev_fields[num] = (base, np.dtype(_NP_DTYPE[base]).itemsize)
        return num

    def add_records(
        self,
        ts: TimesLike,
        hr: npt.ArrayLike,
        *,
        distance_m: npt.ArrayLike | None = None,
        speed_mps: npt.ArrayLike | None = None,
        compressed_timestamps: bool = False,
        developer: Mapping[int, npt.ArrayLike] | None = None,
    ) -> None:
        """``record`` messages (global 20): timestamp (253), heart_rate (3, NaN -> 255),
        optional distance (5, 1/100 m) and speed (6, 1/1000 m/s) and developer fields.

        With ``compressed_timestamps`` every record less than 32 s after the previous one uses a
        compressed timestamp header (protocol §3.3.7) and omits field 253. Vectorized: all rows
        are numpy structured arrays scattered into one byte buffer.
        """
        t = _fit_seconds_array(ts)
        _check_u32(t, "records")
        bpm = _u8_bpm(hr)
        n = t.size
        if bpm.shape != (n,):
            raise ValueError("ts and hr must be 1-D and of equal length")
        cols: list[tuple[_Field, str, npt.NDArray[Any]]] = [(_Field(3, UINT8, 1), "u1", bpm)]
        if distance_m is not None:
            d = np.rint(np.asarray(distance_m, dtype=np.float64) * 100)
            cols.append(
                (_Field(5, UINT32, 4), self._dt("<u4"), np.where(np.isfinite(d), d, 0xFFFFFFFF))
            )
        if speed_mps is not None:
            s = np.rint(np.asarray(speed_mps, dtype=np.float64) * 1000)
            cols.append(
                (_Field(6, UINT16, 2), self._dt("<u2"), np.where(np.isfinite(s), s, 0xFFFF))
            )
        dev_cols: list[tuple[tuple[int, int, int], str, npt.NDArray[Any]]] = []
        for num, values in (developer or {}).items():
            base, size = self._dev_fields[num]
            dev_cols.append(((num, size, 0), self._dt(_NP_DTYPE[base]), np.asarray(values)))
        dev_layout = tuple(c[0] for c in dev_cols)

        comp = np.zeros(n, dtype=bool)
        if compressed_timestamps and n > 1:
            step = np.diff(t)
            comp[1:] = (step >= 0) & (step < 32)

        def rows(with_ts: bool, mask: npt.NDArray[np.bool_]) -> tuple[int, npt.NDArray[Any]]:
            fields = ([_Field(253, UINT32, 4)] if with_ts else []) + [c[0] for c in cols]
            layout = (MESG_RECORD, tuple(fields), dev_layout)
            local = self._local(layout, compressed=not with_ts)
            dtype = [("h", "u1")] + ([("f253", self._dt("<u4"))] if with_ts else [])
            dtype += [(f"f{c[0].num}", c[1]) for c in cols]
            dtype += [(f"d{c[0][0]}", c[1]) for c in dev_cols]
            arr = np.zeros(int(mask.sum()), dtype=np.dtype(dtype))
            if with_ts:
                arr["h"] = local
                arr["f253"] = t[mask]
            else:
                arr["h"] = 0x80 | (local << 5) | (t[mask] & 0x1F)
            for c in cols:
                arr[f"f{c[0].num}"] = c[2][mask]
            for dc in dev_cols:
                arr[f"d{dc[0][0]}"] = dc[2][mask]
            return arr.dtype.itemsize, arr.view(np.uint8).reshape(arr.size, arr.dtype.itemsize)

        full_size, full_rows = rows(True, ~comp)
        if not comp.any():
            self._body += full_rows.tobytes()
            return
        comp_size, comp_rows = rows(False, comp) if comp.any() else (0, np.empty((0, 0), "u1"))
        sizes = np.where(comp, comp_size, full_size)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        out = np.empty(int(sizes.sum()), dtype=np.uint8)
        out[starts[~comp][:, None] + np.arange(full_size)] = full_rows
        if comp_size:
            out[starts[comp][:, None] + np.arange(comp_size)] = comp_rows
        self._body += out.tobytes()

    def add_monitoring(
        self,
        ts: TimesLike,
        hr: npt.ArrayLike | None = None,
        *,
        timestamp16: bool = True,
        full_every_s: int = 3600,
        activity_type: str | int | npt.ArrayLike | None = None,
        cycles: npt.ArrayLike | None = None,
        active_calories: npt.ArrayLike | None = None,
        distance_m: npt.ArrayLike | None = None,
        moderate_minutes: npt.ArrayLike | None = None,
        vigorous_minutes: npt.ArrayLike | None = None,
    ) -> None:
        """``monitoring`` messages (global 55), one per element of ``ts``. With ``timestamp16``
        most carry only ``timestamp_16`` (26, the low 16 bits) as Garmin's all-day files do; the
        first message and the first one in every ``full_every_s`` window carry the full
        timestamp (253), which keeps every timestamp_16 within 65536 s of a full one.

        Fields, each omitted when None, scalars broadcast, NaN writes the invalid marker:
        ``hr`` heart_rate (27, bpm); ``activity_type`` (5, a Profile name or number);
        ``cycles`` (3, the raw uint32: the accumulated *step count* when activity_type is
        walking or running — Profile subfield ``steps`` — else 2 × cycles); ``active_calories``
        (19, accumulated kcal); ``distance_m`` (2, accumulated, 1/100 m);
        ``moderate_minutes`` / ``vigorous_minutes`` (33/34, minutes credited in the message).
        The accumulated ones are what the device maintains per activity type and day."""
        if not 0 < full_every_s < 65536:
            raise ValueError("full_every_s must be within 1..65535")
        t = _fit_seconds_array(ts)
        _check_u32(t, "monitoring")
        n = t.size
        cols: list[tuple[_Field, str, npt.NDArray[Any]]] = []

        def column(num: int, base: int, values: Any, scale: float = 1.0) -> None:
            code, invalid = _BASE[base]
            assert invalid is not None  # integer base types only
            a = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)) * scale
            a = np.rint(a)
            bad = ~np.isfinite(a)
            top = 2 ** (8 * struct.calcsize(code)) - 1
            if np.any((a[~bad] < 0) | (a[~bad] >= top)):
                raise ValueError(f"monitoring field {num}: values out of range")
            dtype = self._dt(_NP_DTYPE[base])
            cols.append(
                (
                    _Field(num, base, struct.calcsize(code)),
                    dtype,
                    np.where(bad, invalid, a).astype(dtype),
                )
            )

        if activity_type is not None:
            at = activity_type
            if isinstance(at, str):
                at = _code(at, ACTIVITY_TYPES, "activity_type")
            column(5, ENUM, at)
        if cycles is not None:
            column(3, UINT32, cycles)
        if distance_m is not None:
            column(2, UINT32, distance_m, 100.0)
        if active_calories is not None:
            column(19, UINT16, active_calories)
        if moderate_minutes is not None:
            column(33, UINT16, moderate_minutes)
        if vigorous_minutes is not None:
            column(34, UINT16, vigorous_minutes)
        if hr is not None:
            bpm = _u8_bpm(hr)
            if bpm.shape != t.shape:
                raise ValueError("ts and hr must be 1-D and of equal length")
            cols.insert(0, (_Field(27, UINT8, 1), "u1", bpm))
        if not cols:
            raise ValueError("add_monitoring: give hr or at least one activity field")

        full = np.ones(n, dtype=bool)
        if timestamp16 and n > 1:
            window = (t - t[0]) // full_every_s
            full[1:] = (window[1:] != window[:-1]) | (np.diff(t) < 0)

        def rows(with_full: bool, mask: npt.NDArray[np.bool_]) -> tuple[int, npt.NDArray[Any]]:
            tf = _Field(253, UINT32, 4) if with_full else _Field(26, UINT16, 2)
            local = self._local((MESG_MONITORING, (tf, *(c[0] for c in cols)), ()))
            dtype = [("h", "u1"), ("t", self._dt("<u4" if with_full else "<u2"))]
            dtype += [(f"f{c[0].num}", c[1]) for c in cols]
            arr = np.zeros(int(mask.sum()), dtype=np.dtype(dtype))
            arr["h"] = local
            arr["t"] = t[mask] if with_full else t[mask] & 0xFFFF
            for c in cols:
                arr[f"f{c[0].num}"] = c[2][mask]
            return arr.dtype.itemsize, arr.view(np.uint8).reshape(arr.size, arr.dtype.itemsize)

        full_size, full_rows = rows(True, full)
        if full.all():
            self._body += full_rows.tobytes()
            return
        short_size, short_rows = rows(False, ~full)
        sizes = np.where(full, full_size, short_size)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        out = np.empty(int(sizes.sum()), dtype=np.uint8)
        out[starts[full][:, None] + np.arange(full_size)] = full_rows
        out[starts[~full][:, None] + np.arange(short_size)] = short_rows
        self._body += out.tobytes()

    def add_monitoring_info(
        self,
        timestamp: TimeLike,
        *,
        local_offset_s: int | None,
        resting_metabolic_rate: int | None = None,
    ) -> None:
        """``monitoring_info`` (global 103): timestamp and local_timestamp (field 0); optional
        resting_metabolic_rate (5, kcal/day)."""
        t = fit_seconds(timestamp)
        local = None if local_offset_s is None else t + local_offset_s
        fields: list[tuple[int, int, Any]] = [(253, UINT32, t), (0, UINT32, local)]
        if resting_metabolic_rate is not None:
            fields.append((5, UINT16, resting_metabolic_rate))
        self.add_message(MESG_MONITORING_INFO, fields)

    def add_monitoring_hr_data(
        self,
        timestamp: TimeLike,
        *,
        resting_hr: int | None = None,
        current_day_resting_hr: int | None = None,
    ) -> None:
        """``monitoring_hr_data`` (global 211): resting_heart_rate (0, Garmin's 7-day average)
        and current_day_resting_heart_rate (1, the day's own), bpm."""
        self.add_message(
            MESG_MONITORING_HR_DATA,
            [
                (253, UINT32, fit_seconds(timestamp)),
                (0, UINT8, resting_hr),
                (1, UINT8, current_day_resting_hr),
            ],
        )

    def add_hrv(self, rr_ms: npt.ArrayLike, *, per_message: int = 5) -> None:
        """``hrv`` messages (global 78): RR intervals in ms (time, field 0: uint16 array, scale
        1000 -> s), ``per_message`` to a message padded with 0xFFFF as Garmin devices write them
        (5 slots, one message a second, interleaved with records). HRV messages carry no time:
        call this between ``add_records``/``add_event`` calls, which the reader anchors them to.
        """
        rr = np.asarray(rr_ms, dtype=np.float64).ravel()
        if not 1 <= per_message <= 32:
            raise ValueError("per_message must be within 1..32")
        if np.any(~np.isfinite(rr) | (rr < 0) | (rr > 0xFFFE)) or np.any(rr != np.rint(rr)):
            raise ValueError("RR intervals must be whole milliseconds within 0..65534")
        for i in range(0, rr.size, per_message):
            chunk: list[int | None] = [int(v) for v in rr[i : i + per_message]]
            chunk += [None] * (per_message - len(chunk))
            self.add_message(MESG_HRV, [(0, UINT16, chunk)])

    def add_beat_intervals(
        self, timestamp: TimeLike, rr_ms: npt.ArrayLike, *, timestamp_ms: int = 0
    ) -> None:
        """``beat_intervals`` (global 290): timestamp (253) + timestamp_ms (0) and the RR
        intervals (time, 1: uint16 array, ms) that follow that instant."""
        rr = [int(v) for v in np.asarray(rr_ms).ravel()]
        if not rr or min(rr) < 0 or max(rr) > 0xFFFE or not 0 <= timestamp_ms < 1000:
            raise ValueError("beat_intervals: 1+ RR values within 0..65534 ms, 0 <= ms < 1000")
        self.add_message(
            MESG_BEAT_INTERVALS,
            [(253, UINT32, fit_seconds(timestamp)), (0, UINT16, timestamp_ms), (1, UINT16, rr)],
        )

    def add_hr_messages(
        self,
        ts: TimesLike,
        bpm: npt.ArrayLike,
        *,
        packed: bool = True,
        event_base: int = 0,
        per_message: int = 8,
    ) -> None:
        """``hr`` messages (global 132), as HRM-Tri/HRM-Pro straps store them: an anchor message
        with timestamp (253) + fractional_timestamp (0, 1/32768 s) + one event_timestamp
        (9, uint32, 1/1024 s on the strap's clock, starting at ``event_base``) + filtered_bpm (6),
        then messages of up to ``per_message`` beats with filtered_bpm arrays and either
        event_timestamp arrays or (``packed``) event_timestamp_12 (10: low 12 bits of each
        event_timestamp, little-endian bit packing, accumulated by the reader). A gap of 4 s or
        more cannot be packed and starts a new anchor."""
        t_us = _fit_us_array(ts)
        beats = _u8_bpm(bpm)
        if beats.shape != t_us.shape or t_us.size == 0:
            raise ValueError("ts and bpm must be 1-D, non-empty and of equal length")
        if not 1 <= per_message <= 16:
            raise ValueError("per_message must be within 1..16")
        i, n = 0, t_us.size
        while i < n:
            anchor_us = int(t_us[i])
            sec, frac_us = divmod(anchor_us, 1_000_000)
            frac = round(frac_us * 32768 / 1_000_000)
            if frac == 32768:
                sec, frac = sec + 1, 0
            anchor_exact_us = sec * 1_000_000 + (frac * 1_000_000) / 32768
            base = event_base & 0xFFFFFFFF  # the strap's clock at the anchor instant
            self.add_message(
                MESG_HR,
                [
                    (253, UINT32, sec),
                    (0, UINT16, frac),
                    (9, UINT32, base),
                    (6, UINT8, int(beats[i])),
                ],
            )
            ticks = [base]
            i += 1
            while i < n:
                group_end = min(i + per_message, n)
                evts = [
                    (base + round((int(t_us[j]) - anchor_exact_us) * 1024 / 1e6)) & 0xFFFFFFFF
                    for j in range(i, group_end)
                ]
                if packed:
                    steps = np.diff([ticks[-1], *evts])
                    ok = (
                        int(np.argmax((steps < 0) | (steps >= 4096)))
                        if np.any((steps < 0) | (steps >= 4096))
                        else len(evts)
                    )
                    if ok == 0:
                        break  # the gap cannot be bridged by 12 bits: new anchor
                    evts = evts[:ok]
                    group_end = i + ok
                    bits = 0
                    for k, e in enumerate(evts):
                        bits |= (e & 0xFFF) << (12 * k)
                    nbytes = (12 * len(evts) + 7) // 8
                    self.add_message(
                        MESG_HR,
                        [
                            (6, UINT8, [int(b) for b in beats[i:group_end]]),
                            (10, BYTE, bits.to_bytes(nbytes, "little")),
                        ],
                    )
                else:
                    self.add_message(
                        MESG_HR,
                        [(6, UINT8, [int(b) for b in beats[i:group_end]]), (9, UINT32, evts)],
                    )
                ticks.extend(evts)
                i = group_end

    def add_lap(
        self,
        start: TimeLike,
        end: TimeLike,
        *,
        timer_s: float | None = None,
        avg_hr: float | None = None,
        max_hr: float | None = None,
        message_index: int = 0,
    ) -> None:
        """``lap`` (global 19): timestamp = end, start_time (2), total_elapsed_time (7) and
        total_timer_time (8) in ms, avg/max heart rate (15/16)."""
        s, e = fit_seconds(start), fit_seconds(end)
        timer = (e - s) if timer_s is None else timer_s
        self.add_message(
            MESG_LAP,
            [
                (253, UINT32, e),
                (254, UINT16, message_index),
                (2, UINT32, s),
                (7, UINT32, round((e - s) * 1000)),
                (8, UINT32, round(timer * 1000)),
                (0, ENUM, 9),
                (1, ENUM, 1),
                (15, UINT8, _opt_int(avg_hr)),
                (16, UINT8, _opt_int(max_hr)),
            ],
        )

    def add_session(
        self,
        start: TimeLike,
        end: TimeLike,
        sport: str | int = "running",
        sub_sport: str | int = "generic",
        timer_s: float | None = None,
        avg_hr: float | None = None,
        max_hr: float | None = None,
        *,
        message_index: int = 0,
    ) -> None:
        """``session`` (global 18): timestamp = end, start_time (2), total_elapsed_time (7) =
        end - start and total_timer_time (8) in ms, sport (5), sub_sport (6), avg/max heart rate
        (16/17), event session (8) / stop (1)."""
        s, e = fit_seconds(start), fit_seconds(end)
        timer = (e - s) if timer_s is None else timer_s
        self.add_message(
            MESG_SESSION,
            [
                (253, UINT32, e),
                (254, UINT16, message_index),
                (2, UINT32, s),
                (7, UINT32, round((e - s) * 1000)),
                (8, UINT32, round(timer * 1000)),
                (5, ENUM, _code(sport, SPORTS, "sport")),
                (6, ENUM, _code(sub_sport, SUB_SPORTS, "sub_sport")),
                (0, ENUM, 8),
                (1, ENUM, 1),
                (16, UINT8, _opt_int(avg_hr)),
                (17, UINT8, _opt_int(max_hr)),
            ],
        )

    def add_activity(
        self,
        timestamp: TimeLike,
        local_offset_s: int | None = 0,
        num_sessions: int = 1,
        *,
        total_timer_s: float | None = None,
    ) -> None:
        """``activity`` (global 34): timestamp, local_timestamp (5) = timestamp + local offset
        (``None`` omits it), num_sessions (1), type manual (2), event activity (26) / stop."""
        t = fit_seconds(timestamp)
        self.add_message(
            MESG_ACTIVITY,
            [
                (253, UINT32, t),
                (0, UINT32, None if total_timer_s is None else round(total_timer_s * 1000)),
                (1, UINT16, num_sessions),
                (2, ENUM, 0),
                (3, ENUM, 26),
                (4, ENUM, 1),
                (5, UINT32, None if local_offset_s is None else t + local_offset_s),
            ],
        )

    # -- output -----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The complete file: 14-byte header with header CRC, records, file CRC."""
        header = struct.pack(
            "<BBHI4s", 14, self.protocol_version, self.profile_version, len(self._body), b".FIT"
        )
        header += struct.pack("<H", fit_crc16(header))
        crc = fit_crc16(self._body, fit_crc16(header))
        return header + bytes(self._body) + struct.pack("<H", crc)

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_bytes` to ``path``."""
        with open(path, "wb") as f:
            f.write(self.to_bytes())


def _opt_int(v: float | None) -> int | None:
    if v is None or not np.isfinite(v):
        return None
    return round(v)


def _hr_summary(hr: npt.NDArray[np.float64]) -> tuple[float | None, float | None]:
    ok = hr[np.isfinite(hr) & (hr > 0) & (hr < 255)]
    if ok.size == 0:
        return None, None
    return float(np.round(ok.mean())), float(ok.max())


def write_activity_fit(
    path: str | os.PathLike[str],
    ts: TimesLike,
    hr: npt.ArrayLike,
    *,
    sport: str | int = "running",
    sub_sport: str | int = "generic",
    utc_offset_s: int | None = 0,
    serial: int = 3_900_000_001,
    manufacturer: int = 1,
    product: int = 2697,
    compressed_timestamps: bool = False,
) -> None:
    """Write a one-session activity file the way a Garmin watch lays it out: file_id,
    device_info, timer start, records, timer stop, lap, session, activity (with local_timestamp
    = timestamp + ``utc_offset_s``)."""
    t = np.asarray(ts)
    bpm = np.asarray(hr, dtype=np.float64)
    if t.size == 0:
        raise ValueError("an activity needs at least one sample")
    first, last = t[0], t[-1]
    avg_hr, max_hr = _hr_summary(bpm)
    w = FitWriter()
    w.add_file_id(
        type=4, manufacturer=manufacturer, product=product, serial=serial, time_created=first
    )
    w.add_device_info(first, manufacturer=manufacturer, product=product, serial=serial)
    w.add_event(first, event=0, event_type=0)
    w.add_records(t, bpm, compressed_timestamps=compressed_timestamps)
    w.add_event(last, event=0, event_type=4)
    w.add_lap(first, last, avg_hr=avg_hr, max_hr=max_hr)
    w.add_session(first, last, sport, sub_sport, avg_hr=avg_hr, max_hr=max_hr)
    w.add_activity(last, utc_offset_s)
    w.write(path)


def write_monitoring_fit(
    path: str | os.PathLike[str],
    ts: TimesLike,
    hr: npt.ArrayLike,
    *,
    utc_offset_s: int | None = 0,
    serial: int = 3_900_000_001,
    manufacturer: int = 1,
    product: int = 2697,
    file_type: int = 32,
    timestamp16: bool = True,
) -> None:
    """Write an all-day monitoring file (file type 32 monitoring_b by default): file_id,
    monitoring_info (local_timestamp), monitoring messages with heart_rate and timestamp_16."""
    t = np.asarray(ts)
    if t.size == 0:
        raise ValueError("a monitoring file needs at least one sample")
    w = FitWriter()
    w.add_file_id(
        type=file_type, manufacturer=manufacturer, product=product, serial=serial, time_created=t[0]
    )
    w.add_monitoring_info(t[0], local_offset_s=utc_offset_s)
    w.add_monitoring(t, hr, timestamp16=timestamp16)
    w.write(path)
