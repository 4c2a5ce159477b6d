"""Polar Measurement Data (PMD): control point commands and accelerometer data frames.

Sources: Polar's "Polar Measurement Data Specification for 3rd Party" (technical_documentation
of github.com/polarofficial/polar-ble-sdk) and that SDK's reference decoder
(``BlePMDClient.kt``, ``PmdDataFrame.kt``, ``PmdSetting.kt``, ``model/AccData.kt``,
``model/PmdTimeStampUtils.kt``), whose unit-test vectors ``tests/test_devices_pmd.py`` replays.

GATT: service ``FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8``; control point ``…5C81…`` (write with
response, indications); data ``…5C82…`` (notifications).

Control point request::

    [op] [measurement type | 0x80 if offline recording] [settings: type, count, values...]

Control point response::

    [0xF0] [op] [measurement type] [status, 0 = success] [more] [parameters...]

Settings are TLV records ``[setting type][count][count × value, little endian]`` whose value
width depends on the type: sample rate, resolution and range 2 bytes, range in milli-units 4,
channels 1, factor 4 (IEEE-754 float32, only in start responses).

Data frame (one notification)::

    ====  ===================================================================
    byte  meaning
    ====  ===================================================================
    0     measurement type (ACC = 2)
    1..8  uint64 LE sensor time of the LAST sample, ns since 2000-01-01T00:00
    9     frame type: bit 7 set = delta compressed; bits 0..6 the frame type
    10..  samples
    ====  ===================================================================

Uncompressed ACC frame types: 0 = int8, 1 = int16, 2 = int24 per axis, x y z interleaved,
little endian, in mG. Compressed ACC frames (0x80, 0x81) hold one reference sample of
``channels × ceil(resolution / 8)`` bytes (signed LE), then blocks
``[bit width][sample count][count × channels deltas of bit-width bits]``; deltas are packed
least-significant bit first across byte boundaries, are two's complement in their bit width, and
add up per channel from the reference sample. Each block is padded to a whole byte (padding bits
are ignored: Polar's own test frame for type 0x81 has a non-zero padding bit). Compressed type 0
carries values in g once multiplied by the factor of the start response (the SDK multiplies by
1000 to mG); compressed type 1 carries mG once multiplied by the factor.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from ..errors import DeviceError, UsageError

PMD_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

RESPONSE_CODE = 0xF0
OFFLINE_RECORDING_BIT = 0x80
COMPRESSED_BIT = 0x80
FRAME_TYPE_MASK = 0x7F
HEADER_SIZE = 10
MAX_DELTA_BITS = 32
_INT63 = 1 << 63


class MeasurementType(IntEnum):
    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAG = 6


class ControlOp(IntEnum):
    GET_SETTINGS = 0x01
    START = 0x02
    STOP = 0x03


class SettingType(IntEnum):
    SAMPLE_RATE = 0
    RESOLUTION = 1
    RANGE = 2
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5


class ControlStatus(IntEnum):
    """Error codes of control point responses (``PmdControlPointResponseCode`` in the SDK)."""

    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13
    DISK_FULL = 14


#: Width in bytes of one value of each setting type (``PmdSetting.typeToFieldSize``).
SETTING_FIELD_SIZE: dict[int, int] = {
    SettingType.SAMPLE_RATE: 2,
    SettingType.RESOLUTION: 2,
    SettingType.RANGE: 2,
    SettingType.RANGE_MILLIUNIT: 4,
    SettingType.CHANNELS: 1,
    SettingType.FACTOR: 4,
}

#: Bytes per axis value of the uncompressed ACC frame types.
ACC_RAW_WIDTH: dict[int, int] = {0: 1, 1: 2, 2: 3}
#: Compressed ACC frame types; value: multiplier from ``raw × factor`` to mG.
ACC_COMPRESSED_TO_MG: dict[int, float] = {0: 1000.0, 1: 1.0}


# --------------------------------------------------------------------------- control point


def _request_byte(mtype: int, offline: bool) -> int:
    if not 0 <= int(mtype) <= 0x7F:
        raise UsageError(f"PMD measurement type {mtype} is not in 0..127")
    return int(mtype) | (OFFLINE_RECORDING_BIT if offline else 0)


def get_settings_command(mtype: int, *, offline: bool = False) -> bytes:
    """Control point request for the settings a measurement supports: ``01 <type>``."""
    return bytes([ControlOp.GET_SETTINGS, _request_byte(mtype, offline)])


def start_command(mtype: int, settings: Mapping[int, int], *, offline: bool = False) -> bytes:
    """Control point request starting a measurement: ``02 <type> [<setting> 01 <value LE>]...``.

    ``settings`` maps :class:`SettingType` to the chosen value (one value each, as the SDK's
    ``PmdSetting.serializeSelected``); :attr:`SettingType.FACTOR` is read-only and refused.
    """
    out = bytearray([ControlOp.START, _request_byte(mtype, offline)])
    for key, value in settings.items():
        size = SETTING_FIELD_SIZE.get(int(key))
        if size is None or key == SettingType.FACTOR:
            raise UsageError(f"PMD setting type {key} cannot be requested")
        if not 0 <= int(value) < 1 << (8 * size):
            raise UsageError(f"PMD setting {SettingType(key).name} = {value} does not fit {size} B")
        out += bytes([int(key), 1]) + int(value).to_bytes(size, "little")
    return bytes(out)


def stop_command(mtype: int, *, offline: bool = False) -> bytes:
    """Control point request stopping a measurement: ``03 <type>``."""
    return bytes([ControlOp.STOP, _request_byte(mtype, offline)])


def parse_settings(params: bytes) -> dict[int, list[int]]:
    """Decode the settings TLV records of a get-settings (or start) response.

    Values are unsigned little endian (the factor stays its float32 bit pattern; see
    :attr:`ControlResponse.factor`). Raises :class:`DeviceError` on an unknown setting type
    (its value width is unknown) or a record running past the end.
    """
    data = bytes(params)
    settings: dict[int, list[int]] = {}
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise DeviceError(f"PMD settings truncated at byte {pos} (record header)")
        stype, count = data[pos], data[pos + 1]
        size = SETTING_FIELD_SIZE.get(stype)
        if size is None:
            raise DeviceError(f"PMD settings: unknown setting type {stype} at byte {pos}")
        pos += 2
        end = pos + count * size
        if end > len(data):
            raise DeviceError(f"PMD settings truncated: type {stype} needs {count}×{size} bytes")
        settings.setdefault(stype, []).extend(
            int.from_bytes(data[i : i + size], "little") for i in range(pos, end, size)
        )
        pos = end
    return settings


@dataclass(frozen=True)
class ControlResponse:
    op: int  # ControlOp value the response answers
    mtype: int  # measurement type byte as sent back
    status: int  # ControlStatus value; 0 = success
    more: bool  # parameters continue in the next response
    parameters: bytes  # raw parameters (concatenate across ``more`` responses)
    settings: dict[int, list[int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == ControlStatus.SUCCESS

    @property
    def factor(self) -> float | None:
        """The float32 FACTOR setting of a start response, or None."""
        raw = self.settings.get(SettingType.FACTOR)
        if not raw:
            return None
        return float(struct.unpack("<f", raw[0].to_bytes(4, "little"))[0])


def parse_control_response(payload: bytes) -> ControlResponse:
    """Decode a control point response ``F0 op type status [more params...]``.

    ``settings`` is filled for successful get-settings and start responses that are complete
    (``more`` false); otherwise it is empty and ``parameters`` holds the raw bytes. Raises
    :class:`DeviceError` for anything not starting with 0xF0, shorter than 4 bytes, or with
    malformed settings.
    """
    data = bytes(payload)
    if len(data) < 4:
        raise DeviceError(f"PMD control point response of {len(data)} bytes (< 4)")
    if data[0] != RESPONSE_CODE:
        raise DeviceError(f"PMD control point response starts with {data[0]:#04x}, not 0xf0")
    op, mtype, status = data[1], data[2], data[3]
    if status != ControlStatus.SUCCESS:
        return ControlResponse(op, mtype, status, False, data[5:])
    more = len(data) > 4 and data[4] != 0
    params = data[5:]
    settings: dict[int, list[int]] = {}
    if not more and op in (ControlOp.GET_SETTINGS, ControlOp.START):
        settings = parse_settings(params)
    return ControlResponse(op, mtype, status, more, params, settings)


# --------------------------------------------------------------------------- data frames


@dataclass(frozen=True, eq=False)
class AccFrame:
    mtype: int
    timestamp_ns: int  # sensor ns since 2000-01-01 of the LAST sample
    compressed: bool
    frame_type: int  # bits 0..6 of the frame type byte
    samples: NDArray[np.int32]  # (n, channels) raw integers as sent
    mg: NDArray[np.float64]  # (n, channels) milli-g: raw frames as is; compressed × factor
    #                          (× 1000 for compressed type 0, whose factor gives g)
    timestamps_ns: NDArray[np.int64] | None  # per sample; None without rate or previous frame


def _signed_le(data: bytes, width: int) -> NDArray[np.int64]:
    """Little-endian two's complement integers of ``width`` bytes, packed back to back."""
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, width).astype(np.int64)
    value = (raw << (8 * np.arange(width, dtype=np.int64))).sum(axis=1)
    half = 1 << (8 * width - 1)
    return np.where(value >= half, value - (half << 1), value)


def decode_delta_frames(content: bytes, channels: int, resolution_bits: int) -> NDArray[np.int64]:
    """Decode a delta-compressed PMD frame body into an ``(n, channels)`` int64 array.

    The reference sample takes ``channels × ceil(resolution_bits / 8)`` bytes; each block is
    ``[bit width][count]`` then ``ceil(width × count × channels / 8)`` bytes of deltas (see the
    module docstring). Raises :class:`DeviceError` for a truncated reference sample, block
    header or block, a bit width of 0 (with samples) or above 32.
    """
    if channels < 1 or not 1 <= resolution_bits <= 32:
        raise UsageError(
            f"PMD delta decoding needs channels ≥ 1 and 1..32 bits, "
            f"not {channels}, {resolution_bits}"
        )
    data = bytes(content)
    ref_width = (resolution_bits + 7) // 8
    pos = channels * ref_width
    if len(data) < pos:
        raise DeviceError(
            f"PMD compressed frame of {len(data)} bytes: reference sample needs {pos}"
        )
    ref = np.frombuffer(data[:pos], dtype=np.uint8).reshape(channels, ref_width).astype(np.int64)
    ref = (ref << (8 * np.arange(ref_width, dtype=np.int64))).sum(axis=1)
    ref &= (1 << resolution_bits) - 1
    ref = np.where(ref >= 1 << (resolution_bits - 1), ref - (1 << resolution_bits), ref)
    blocks: list[NDArray[np.int64]] = []
    while pos < len(data):
        if pos + 2 > len(data):
            raise DeviceError(f"PMD compressed frame: stray byte at {pos} (truncated block header)")
        width, count = data[pos], data[pos + 1]
        if width > MAX_DELTA_BITS:
            raise DeviceError(f"PMD compressed frame: delta bit width {width} at byte {pos}")
        if width == 0 and count:
            raise DeviceError(f"PMD compressed frame: delta bit width 0 at byte {pos}")
        nbits = width * count * channels
        end = pos + 2 + (nbits + 7) // 8
        if end > len(data):
            raise DeviceError(
                f"PMD compressed frame: block at byte {pos} announces {count} samples of "
                f"{width} bits, {end - len(data)} bytes missing"
            )
        if count:
            block = np.frombuffer(data, dtype=np.uint8, count=end - pos - 2, offset=pos + 2)
            bits = np.unpackbits(block, bitorder="little")[:nbits].reshape(-1, width)
            value = bits.astype(np.int64) @ (np.int64(1) << np.arange(width, dtype=np.int64))
            value = np.where(value >= 1 << (width - 1), value - (1 << width), value)
            blocks.append(value.reshape(count, channels))
        pos = end
    out = np.empty((1 + sum(len(b) for b in blocks), channels), dtype=np.int64)
    out[0] = ref
    if blocks:
        np.cumsum(np.concatenate(blocks), axis=0, out=out[1:])
        out[1:] += ref
    return out


def _spread_timestamps(
    ts: int, n: int, sample_rate_hz: float | None, previous_ns: int | None
) -> NDArray[np.int64] | None:
    """Per-sample times as ``PmdTimeStampUtils.getTimeStamps``, rounded half to even exactly.

    With a previous frame time: ``prev + (i + 1) × (ts − prev) / n``; else with a rate:
    ``ts − (n − 1 − i) × 1e9 / rate``; the last sample is always ``ts``.
    """
    if previous_ns is None and sample_rate_hz is None:
        return None
    if ts >= _INT63:
        raise DeviceError(f"PMD frame timestamp {ts} ns is beyond the int64 range")
    k = np.arange(n, dtype=np.int64)
    if previous_ns is not None:
        if previous_ns < 0:
            raise UsageError(f"previous_timestamp_ns must be ≥ 0, not {previous_ns}")
        if ts <= previous_ns:
            raise DeviceError(
                f"PMD frame timestamp {ts} ns is not after the previous {previous_ns}"
            )
        q, r = np.divmod((k + 1) * np.int64(ts - previous_ns), np.int64(n))
        base = np.int64(previous_ns) + q
        up = (2 * r > n) | ((2 * r == n) & (base % 2 == 1))
        return (base + up).astype(np.int64)
    assert sample_rate_hz is not None
    rate = float(sample_rate_hz)
    if not math.isfinite(rate) or rate <= 0:
        raise UsageError(f"sample_rate_hz must be positive, not {sample_rate_hz}")
    back = (n - 1) - k
    if rate.is_integer() and rate <= 1e9:
        irate = np.int64(int(rate))
        q, r = np.divmod(back * np.int64(1_000_000_000), irate)
        # ts − q − r/rate = (ts − q − 1) + (rate − r)/rate when r > 0
        base = np.where(r > 0, np.int64(ts) - q - 1, np.int64(ts) - q)
        frac2 = np.where(r > 0, 2 * (irate - r), 0)
        up = (frac2 > irate) | ((frac2 == irate) & (base % 2 == 1))
        out = (base + up).astype(np.int64)
    else:
        out = np.int64(ts) - np.rint(back * (1e9 / rate)).astype(np.int64)
    if out[0] < 0:
        raise DeviceError(f"PMD frame timestamp {ts} ns is too early for {n} samples at {rate} Hz")
    return out


def parse_data_frame(
    payload: bytes,
    *,
    resolution_bits: int = 16,
    channels: int = 3,
    factor: float = 1.0,
    sample_rate_hz: float | None = None,
    previous_timestamp_ns: int | None = None,
) -> AccFrame:
    """Decode one PMD accelerometer data notification.

    Parameters
    ----------
    payload
        The notification of the PMD data characteristic.
    resolution_bits, channels
        Reference-sample resolution and channel count of compressed frames (the SDK uses 16
        and 3 for ACC); uncompressed frames always carry 3 axes.
    factor
        The FACTOR of the start response (:attr:`ControlResponse.factor`); 1.0 if none. Applied
        to compressed frames only: uncompressed frames are mG already (as in the SDK).
    sample_rate_hz
        The started sample rate: spreads sample times back from the frame time by 1/rate.
    previous_timestamp_ns
        The previous frame's timestamp: when given, sample times are spread evenly between it
        (exclusive) and this frame's (inclusive), as the SDK does whenever it knows one.

    Raises
    ------
    DeviceError
        Frame shorter than its header, not ACC, of an unknown frame type, without samples, with a
        partial sample, or malformed compression (see :func:`decode_delta_frames`); also a frame
        time not after ``previous_timestamp_ns`` or too early for the samples it holds.
    """
    data = bytes(payload)
    if len(data) < HEADER_SIZE:
        raise DeviceError(f"PMD data frame of {len(data)} bytes (header needs {HEADER_SIZE})")
    mtype = data[0]
    if mtype != MeasurementType.ACC:
        raise DeviceError(f"PMD data frame of measurement type {mtype}, not ACC (2)")
    ts = int.from_bytes(data[1:9], "little")
    compressed = bool(data[9] & COMPRESSED_BIT)
    frame_type = data[9] & FRAME_TYPE_MASK
    content = data[HEADER_SIZE:]
    if compressed:
        to_mg = ACC_COMPRESSED_TO_MG.get(frame_type)
        if to_mg is None:
            raise DeviceError(f"PMD ACC compressed frame type {frame_type} is not supported")
        values = decode_delta_frames(content, channels, resolution_bits)
    else:
        width = ACC_RAW_WIDTH.get(frame_type)
        if width is None:
            raise DeviceError(f"PMD ACC frame type {frame_type} is not supported")
        to_mg = 1.0
        factor = 1.0  # the SDK ignores the factor for uncompressed ACC frames (raw mG)
        if not content:
            raise DeviceError("PMD ACC frame holds no samples")
        if len(content) % (3 * width):
            raise DeviceError(
                f"PMD ACC frame type {frame_type}: {len(content)} bytes are not whole "
                f"{3 * width}-byte samples"
            )
        values = _signed_le(content, width).reshape(-1, 3)
    if values.size and (values.min() < -(1 << 31) or values.max() >= 1 << 31):
        raise DeviceError("PMD ACC frame: deltas add up beyond the int32 range")
    samples = values.astype(np.int32)
    mg = samples.astype(np.float64) * (float(factor) * to_mg)
    stamps = _spread_timestamps(ts, len(samples), sample_rate_hz, previous_timestamp_ns)
    for arr in (samples, mg, stamps):
        if arr is not None:
            arr.setflags(write=False)
    return AccFrame(mtype, ts, compressed, frame_type, samples, mg, stamps)
