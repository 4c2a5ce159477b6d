"""Heart Rate Measurement (0x2A37): every flag combination, built from the specification."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actidose.devices import hrm
from actidose.errors import DeviceError


def build(
    bpm: int, u16: bool, supported: bool, detected: bool, energy: int | None, rr_raw: list[int]
) -> bytes:
    flags = (u16 * 0x01) | (detected * 0x02) | (supported * 0x04)
    flags |= 0x08 if energy is not None else 0
    flags |= 0x10 if rr_raw else 0
    out = bytes([flags]) + (struct.pack("<H", bpm) if u16 else bytes([bpm]))
    if energy is not None:
        out += struct.pack("<H", energy)
    return out + b"".join(struct.pack("<H", r) for r in rr_raw)


CASES = list(itertools.product([False, True], [False, True], [False, True], [None, 513], range(10)))


@pytest.mark.parametrize(("u16", "supported", "detected", "energy", "n_rr"), CASES)
def test_every_flag_combination(
    u16: bool, supported: bool, detected: bool, energy: int | None, n_rr: int
) -> None:
    bpm = 300 if u16 else 72
    rr_raw = [800 + 37 * i for i in range(n_rr)]
    m = hrm.parse(build(bpm, u16, supported, detected, energy, rr_raw))
    assert m.bpm == bpm
    assert m.energy_kj == energy
    assert m.contact == (detected if supported else None)
    assert m.rr_ms == tuple(r * 1000 / 1024 for r in rr_raw)


def test_known_bytes() -> None:
    # Polar H10 style: flags 0x16 (contact supported+detected, RR), 64 bpm, RR 0x03A8 = 936/1024 s
    m = hrm.parse(bytes([0x16, 0x40, 0xA8, 0x03]))
    assert (m.bpm, m.contact, m.energy_kj) == (64, True, None)
    assert m.rr_ms == (914.0625,)


@pytest.mark.parametrize(
    "payload", [b"", b"\x01\x40", b"\x08\x40\x01", b"\x10\x40\x01", b"\x00\x40\x00"]
)
def test_malformed_payloads(payload: bytes) -> None:
    with pytest.raises(DeviceError):
        hrm.parse(payload)


@given(st.binary(max_size=24))
def test_any_bytes_decode_or_device_error(payload: bytes) -> None:
    try:
        m = hrm.parse(payload)
    except DeviceError:
        return
    assert 0 <= m.bpm <= 0xFFFF and all(r >= 0 for r in m.rr_ms)
