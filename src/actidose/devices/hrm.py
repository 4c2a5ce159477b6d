"""Bluetooth Heart Rate Measurement characteristic (GATT 0x2A37).

Layout (Bluetooth SIG, Heart Rate Service 1.0, section 3.1 and the GATT Specification
Supplement, "Heart Rate Measurement"):

====  =========================================================================
byte  meaning
====  =========================================================================
0     flags: bit 0 HR is uint16 (else uint8); bit 2 contact detection supported,
      bit 1 contact detected; bit 3 Energy Expended present; bit 4 RR present
1..   HR (uint8 or uint16 LE), then Energy Expended (uint16 LE, kJ) if flagged,
      then zero or more RR intervals (uint16 LE, units of 1/1024 s) if flagged
====  =========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DeviceError

HR_FORMAT_UINT16 = 0x01
CONTACT_DETECTED = 0x02
CONTACT_SUPPORTED = 0x04
ENERGY_PRESENT = 0x08
RR_PRESENT = 0x10


@dataclass(frozen=True)
class HeartRateMeasurement:
    bpm: int
    rr_ms: tuple[float, ...]  # raw * 1000 / 1024: exact in binary floating point
    contact: bool | None  # None: the sensor cannot detect skin contact
    energy_kj: int | None


def parse(payload: bytes) -> HeartRateMeasurement:
    """Decode one Heart Rate Measurement notification. Raises :class:`DeviceError` for a
    payload shorter than its flags announce or with a dangling RR byte."""
    data = bytes(payload)
    if not data:
        raise DeviceError("empty Heart Rate Measurement")
    flags = data[0]
    pos = 1
    width = 2 if flags & HR_FORMAT_UINT16 else 1
    if len(data) < pos + width:
        raise DeviceError(f"Heart Rate Measurement truncated at byte {len(data)} (HR value)")
    bpm = int.from_bytes(data[pos : pos + width], "little")
    pos += width
    energy: int | None = None
    if flags & ENERGY_PRESENT:
        if len(data) < pos + 2:
            raise DeviceError(f"Heart Rate Measurement truncated at byte {len(data)} (energy)")
        energy = int.from_bytes(data[pos : pos + 2], "little")
        pos += 2
    rr: tuple[float, ...] = ()
    if flags & RR_PRESENT:
        rest = data[pos:]
        if len(rest) % 2:
            raise DeviceError(f"Heart Rate Measurement has an odd RR byte at {len(data) - 1}")
        rr = tuple(
            int.from_bytes(rest[i : i + 2], "little") * 1000 / 1024 for i in range(0, len(rest), 2)
        )
    elif len(data) > pos:
        raise DeviceError(f"Heart Rate Measurement has {len(data) - pos} unexpected trailing bytes")
    contact = bool(flags & CONTACT_DETECTED) if flags & CONTACT_SUPPORTED else None
    return HeartRateMeasurement(bpm, rr, contact, energy)
