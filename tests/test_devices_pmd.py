"""Polar PMD decoders: hand-built frames, Polar BLE SDK unit-test vectors, fuzzing.

Vectors marked "SDK" are data copied from the unit tests of github.com/polarofficial/polar-ble-sdk,
sources/Android/android-communications/library/src/test/java/com/polar/androidcommunications/
api/ble/model/gatt/client/pmd/ (files named in each test).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.devices import pmd
from actidose.errors import DeviceError

TS = 2_000_000_000  # 00 94 35 77 00 00 00 00


def header(frame_type: int, ts: int = TS, mtype: int = 2) -> bytes:
    return bytes([mtype]) + ts.to_bytes(8, "little") + bytes([frame_type])


def pack_deltas(deltas: list[list[int]], width: int) -> bytes:
    """Independent encoder for tests: deltas LSB first, padded to a byte, as a Python int."""
    acc, pos = 0, 0
    for sample in deltas:
        for d in sample:
            acc |= (d & ((1 << width) - 1)) << pos
            pos += width
    return acc.to_bytes((pos + 7) // 8, "little")


def compressed_body(ref: list[int], blocks: list[tuple[int, list[list[int]]]]) -> bytes:
    out = b"".join(v.to_bytes(2, "little", signed=True) for v in ref)
    for width, deltas in blocks:
        out += bytes([width, len(deltas)]) + pack_deltas(deltas, width)
    return out


def expected_from(ref: list[int], blocks: list[tuple[int, list[list[int]]]]) -> np.ndarray:
    rows = [ref]
    for _, deltas in blocks:
        for d in deltas:
            rows.append([a + b for a, b in zip(rows[-1], d, strict=True)])
    return np.array(rows)


# --------------------------------------------------------------------------- control point


def test_constants() -> None:
    assert pmd.PMD_SERVICE.upper() == "FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8"
    assert pmd.PMD_CONTROL_POINT.upper() == "FB005C81-02E7-F387-1CAD-8ACD2D8DF0C8"
    assert pmd.PMD_DATA.upper() == "FB005C82-02E7-F387-1CAD-8ACD2D8DF0C8"
    assert (pmd.MeasurementType.ECG, pmd.MeasurementType.ACC, pmd.MeasurementType.MAG) == (0, 2, 6)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (pmd.get_settings_command(pmd.MeasurementType.ACC), "01 02"),
        (pmd.get_settings_command(pmd.MeasurementType.ACC, offline=True), "01 82"),
        (pmd.stop_command(pmd.MeasurementType.ACC), "03 02"),
        (pmd.start_command(2, {}), "02 02"),
        # rate 52 Hz, resolution 16, range 8 G: TLV [type][count=1][uint16 LE]
        (pmd.start_command(2, {0: 52, 1: 16, 2: 8}), "02 02 00 01 34 00 01 01 10 00 02 01 08 00"),
        # channels is one byte, range in milli-units four (PmdSetting.typeToFieldSize)
        (pmd.start_command(2, {4: 3, 3: 0x01020304}), "02 02 04 01 03 03 01 04 03 02 01"),
    ],
)
def test_commands(command: bytes, expected: str) -> None:
    assert command == bytes.fromhex(expected)


@pytest.mark.parametrize("bad", [{5: 1}, {9: 1}, {0: 0x10000}, {4: 256}, {0: -1}])
def test_start_command_refuses_bad_settings(bad: dict[int, int]) -> None:
    from actidose.errors import UsageError

    with pytest.raises(UsageError):
        pmd.start_command(2, bad)


def test_settings_sdk_vector_with_range() -> None:
    # SDK PmdSettingTest.kt, testPmdSettingsWithRange
    params = bytes.fromhex("00 01 34 00 01 01 10 00 02 04 F5 00 F4 01 E8 03 D0 07 04 01 03")
    assert pmd.parse_settings(params) == {0: [52], 1: [16], 2: [245, 500, 1000, 2000], 4: [3]}
    resp = pmd.parse_control_response(bytes.fromhex("F0 01 02 00 00") + params)
    assert (resp.op, resp.mtype, resp.status, resp.more, resp.ok) == (1, 2, 0, False, True)
    assert resp.settings[pmd.SettingType.RANGE] == [245, 500, 1000, 2000]


def test_settings_sdk_vector_range_milliunit() -> None:
    # SDK PmdSettingTest.kt, testPmdSettingWithRangeMilliUnit (the SDK reads FF FF FF FF as
    # signed -1; PMD values are unsigned here)
    params = bytes.fromhex("03 02 FF FF FF FF FF 00 00 00 01 01 0E 00")
    assert pmd.parse_settings(params) == {3: [0xFFFFFFFF, 0xFF], 1: [14]}


def test_control_response_sdk_vectors() -> None:
    # SDK BlePmdClientControlPointResponseTest.kt, "failing control point response for mag"
    resp = pmd.parse_control_response(bytes.fromhex("F0 01 06 07 00"))
    assert (resp.op, resp.mtype, resp.status, resp.more) == (1, 6, 7, False)
    assert resp.status == pmd.ControlStatus.INVALID_RESOLUTION
    assert not resp.ok and resp.parameters == b"" and resp.settings == {}
    # "success control point response for acc stream settings": F0 01 02 00 00 + FF FF FF
    # ("some data"); as get-settings parameters FF is no setting type, so it is refused here.
    with pytest.raises(DeviceError, match="unknown setting type 255"):
        pmd.parse_control_response(bytes.fromhex("F0 01 02 00 00 FF FF FF"))
    # the same header with more = 1 keeps the raw parameters for the next response
    resp = pmd.parse_control_response(bytes.fromhex("F0 01 02 00 01 FF FF FF"))
    assert resp.more and resp.parameters == b"\xff\xff\xff" and resp.settings == {}


def test_start_response_factor() -> None:
    factor = struct.pack("<f", 2.44e-4)
    resp = pmd.parse_control_response(bytes.fromhex("F0 02 02 00 00 05 01") + factor)
    assert resp.op == pmd.ControlOp.START
    assert resp.factor == pytest.approx(2.44e-4, rel=1e-7)
    assert pmd.parse_control_response(bytes.fromhex("F0 03 02 00")).factor is None


@pytest.mark.parametrize(
    "payload",
    ["", "F0", "F0 01 02", "01 01 02 00", "F0 01 02 00 00 00", "F0 01 02 00 00 00 01 34"],
)
def test_control_response_malformed(payload: str) -> None:
    with pytest.raises(DeviceError):
        pmd.parse_control_response(bytes.fromhex(payload))


# --------------------------------------------------------------------------- uncompressed frames


@pytest.mark.parametrize(
    ("frame_type", "body", "expected"),
    [
        (0x00, "01 FF 80 7F 00 02", [[1, -1, -128], [127, 0, 2]]),
        (0x01, "00 80 FF 7F 01 00 F7 FF FF FF E7 03", [[-32768, 32767, 1], [-9, -1, 999]]),
        (0x02, "00 00 80 FF FF 7F FF FF FF", [[-8388608, 8388607, -1]]),
    ],
)
def test_uncompressed_hand_built(frame_type: int, body: str, expected: list[list[int]]) -> None:
    frame = pmd.parse_data_frame(header(frame_type) + bytes.fromhex(body), factor=0.5)
    assert frame.mtype == 2 and frame.timestamp_ns == TS
    assert not frame.compressed and frame.frame_type == frame_type
    assert frame.samples.dtype == np.int32
    np.testing.assert_array_equal(frame.samples, expected)
    np.testing.assert_array_equal(frame.mg, expected)  # raw frames are mG; factor not applied
    assert frame.timestamps_ns is None


# SDK AccDataTest.kt, "process acc raw data frame type 1": 36 samples of int16 x y z
SDK_RAW_TYPE1 = bytes.fromhex(
    "F7 FF FF FF E7 03 F8 FF FE FF E5 03 F9 FF FF FF E5 03 FA FF FF FF E6 03 FA FF FE FF E6 03"
    " F9 FF FF FF E5 03 F8 FF FF FF E6 03 F8 FF FE FF E6 03 FA FF FF FF E5 03 FA FF FF FF E7 03"
    " FA FF FF FF E5 03 F8 FF FF FF E6 03 F7 FF FF FF E6 03 F8 FF FE FF E6 03 F9 FF FE FF E7 03"
    " F9 FF 00 00 E6 03 F9 FF FF FF E6 03 F7 FF FE FF E5 03 F9 FF FF FF E5 03 F9 FF FF FF E5 03"
    " FA FF 00 00 E6 03 F9 FF FE FF E6 03 F8 FF FF FF E6 03 F8 FF FF FF E5 03 F9 FF FF FF E6 03"
    " F9 FF FF FF E5 03 FA FF FF FF E6 03 F9 FF FF FF E5 03 F9 FF FF FF E5 03 F8 FF FE FF E6 03"
    " F9 FF FF FF E6 03 F9 FF FF FF E6 03 F9 FF 00 00 E5 03 F9 FF FE FF E6 03 F8 FF FE FF E6 03"
    " F7 FF FE FF E6 03"
)


def test_sdk_raw_type1() -> None:
    frame = pmd.parse_data_frame(
        bytes.fromhex("02 00 94 35 77 00 00 00 00 01") + SDK_RAW_TYPE1, sample_rate_hz=52
    )
    assert frame.timestamp_ns == 2_000_000_000
    assert frame.samples.shape == (36, 3)
    np.testing.assert_array_equal(frame.samples[:2], [[-9, -1, 999], [-8, -2, 997]])
    np.testing.assert_array_equal(frame.samples[-1], [-9, -2, 998])
    assert frame.timestamps_ns is not None
    assert frame.timestamps_ns[-1] == 2_000_000_000
    # PmdTimeStampUtils: previous 0 -> spread back by 1e9 / 52 ns, rounded
    expected = [round(2_000_000_000 - (35 - i) * 1e9 / 52) for i in range(36)]
    np.testing.assert_array_equal(frame.timestamps_ns, expected)


# --------------------------------------------------------------------------- compressed frames


def test_compressed_width3_by_hand() -> None:
    # reference (1, -1, 2) int16; one block: width 3, 2 samples, deltas (+1,-1,+3) (-4,0,+2):
    # bits LSB first 001 111 110|0 001 000 01|0 -> F9 08 01
    body = bytes.fromhex("01 00 FF FF 02 00 03 02 F9 08 01")
    assert compressed_body([1, -1, 2], [(3, [[1, -1, 3], [-4, 0, 2]])]) == body
    frame = pmd.parse_data_frame(header(0x81) + body, factor=2.0)
    assert frame.compressed and frame.frame_type == 1
    np.testing.assert_array_equal(frame.samples, [[1, -1, 2], [2, -2, 5], [-2, -2, 7]])
    np.testing.assert_array_equal(frame.mg, 2.0 * frame.samples)


BLOCKS: list[tuple[str, list[int], list[tuple[int, list[list[int]]]]]] = [
    ("w6", [-15, 20, 1008], [(6, [[-32, 31, 0], [5, -5, 1], [-1, 0, 17]])]),
    ("w11", [1000, -1000, 0], [(11, [[-1024, 1023, -1], [7, 0, -300]])]),
    ("w16", [32767, -32768, 0], [(16, [[-32768, 32767, 12345], [1, -1, -12345]])]),
    (
        "w3+w6+w11+w16",
        [-163, 152, 4093],
        [
            (3, [[3, -4, 0]] * 5),
            (6, [[-20, 19, 31], [0, 0, -32]]),
            (11, [[500, -700, 1]]),
            (16, [[-20000, 20000, 7]] * 3),
            (1, [[-1, 0, -1], [0, -1, 0]]),
        ],
    ),
    ("w32", [0, 0, 0], [(32, [[-(2**31), 2**31 - 1, 5]])]),
    ("empty block", [4, 5, 6], [(8, []), (2, [[1, 1, 1]])]),
    ("255 samples", [0, 0, 0], [(7, [[i % 64 - 32, 1, -1] for i in range(255)])]),
]


@pytest.mark.parametrize(("name", "ref", "blocks"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_compressed_bit_widths(name: str, ref: list[int], blocks: list) -> None:
    frame = pmd.parse_data_frame(header(0x81) + compressed_body(ref, blocks))
    np.testing.assert_array_equal(frame.samples, expected_from(ref, blocks))


# SDK AccDataTest.kt, "process acc compressed data type 0": reference + one 10-bit block of 56
SDK_COMPRESSED_TYPE0 = bytes.fromhex(
    "71 07 F0 6A 9E 8D 0A 38 BE 5C BE BA 2F 96 B3 EE 4B E5 AD FB 42 B9 EB BE 4C FE BA 2F"
    " 92 BF EE 4B E4 B1 FB 12 B9 EC BD 3C 3E BB 2F 8F D3 DE 4B E3 B5 F7 D2 B8 ED BD 30 7E"
    " 7B 2F 8B E3 CE 8B E2 BA F7 A2 B8 EE BC 20 BE 7B 2F 88 F3 CE CB E1 BD EF 52 F8 EF BC"
    " 18 FE 3B 2F 84 03 BF CB E0 C2 EF 32 B8 F0 BB 04 4E BC 2E 81 13 AF 0B E0 C6 EF F2 F7"
    " F1 B9 FC 7D BC 2E 7D 27 9F 4B DF CA EB C2 F7 F2 B8 EC CD 7C 2E 7B 37 8F 4B DE CE E3"
    " 92 F7 F3 B8 E0 0D FD 2D 77 4B 7F CB DD D2 DF 62 37 F5 B7 D4 4D BD 2D 74 5B 6F CB DC"
    " D7 D7 32 37 F6 B5 C8 8D 7D 2D 71 6B 4F 4B DC DC D3 F2 36 F7 B4 BC DD FD 2C 6F 7B 3F"
    " 4B DB E0 CF D2 36 F8 B2 B0 2D BE 2C 6C 8F 1F CB DA E3 C7 A2 76 F9"
)


def test_sdk_compressed_type0() -> None:
    factor = float(np.float32(2.44e-4))
    frame = pmd.parse_data_frame(
        bytes.fromhex("02 00 94 35 77 00 00 00 00 80") + SDK_COMPRESSED_TYPE0,
        factor=factor,
        previous_timestamp_ns=100,
    )
    assert frame.compressed and frame.frame_type == 0
    assert frame.samples.shape == (57, 3)  # reference sample + 56 deltas
    ref = np.array([1905, 27376, -29282])
    np.testing.assert_array_equal(frame.samples[0], ref)
    np.testing.assert_array_equal(frame.samples[1], np.add(ref, [190, -105, -85]))
    # SDK: (factor * sample * 1000f).toInt() in float32
    sdk_mg = [int(np.float32(factor) * np.float32(v) * np.float32(1000)) for v in frame.samples[1]]
    np.testing.assert_array_equal(np.trunc(frame.mg[1]), sdk_mg)
    assert np.all(np.abs(frame.mg) <= 8 * 1000)  # within the 8 G range
    assert frame.timestamps_ns is not None
    delta = (2_000_000_000 - 100) / 57  # PmdTimeStampUtils.deltaFromTimeStamps
    assert frame.timestamps_ns[0] == round(100 + delta)
    assert frame.timestamps_ns[-1] == 2_000_000_000
    assert np.all(np.diff(frame.timestamps_ns) > 0)


def test_sdk_compressed_type1() -> None:
    # SDK AccDataTest.kt, "process acc compressed data type 1": 6-bit block of 1 sample; the
    # last byte 08 leaves a non-zero padding bit, which the decoder must ignore.
    payload = bytes.fromhex("02 65 00 00 00 00 00 00 00 81 F1 FF 14 00 F0 03 06 01 7B 0F 08")
    frame = pmd.parse_data_frame(payload, previous_timestamp_ns=100)
    np.testing.assert_array_equal(frame.samples, [[-15, 20, 1008], [-20, 17, 1008]])
    assert frame.timestamp_ns == 101
    assert frame.timestamps_ns is not None
    np.testing.assert_array_equal(frame.timestamps_ns, [100, 101])  # round(100.5) half-even


# --------------------------------------------------------------------------- timestamps


def test_timestamps_from_rate_exact_rounding() -> None:
    body = bytes(6 * 4)  # four int16 samples
    frame = pmd.parse_data_frame(header(1, ts=10**9) + body, sample_rate_hz=3)
    assert frame.timestamps_ns is not None
    # 1e9/3 = 333333333.33: ts - k*delta rounded to nearest
    np.testing.assert_array_equal(
        frame.timestamps_ns,
        [10**9 - 1_000_000_000, 10**9 - 666_666_667, 10**9 - 333_333_333, 10**9],
    )
    frame = pmd.parse_data_frame(header(1, ts=10**10) + body, sample_rate_hz=2.5)
    assert frame.timestamps_ns is not None
    np.testing.assert_array_equal(np.diff(frame.timestamps_ns), [400_000_000] * 3)
    # large sensor times keep nanosecond exactness
    big = 25 * 365 * 86400 * 10**9 + 7
    frame = pmd.parse_data_frame(header(1, ts=big) + body, sample_rate_hz=200)
    assert frame.timestamps_ns is not None
    np.testing.assert_array_equal(
        frame.timestamps_ns, [big - 15_000_000, big - 10_000_000, big - 5_000_000, big]
    )


def test_timestamps_previous_takes_precedence() -> None:
    body = bytes(6 * 4)
    frame = pmd.parse_data_frame(
        header(1, ts=1000) + body, sample_rate_hz=52, previous_timestamp_ns=990
    )
    assert frame.timestamps_ns is not None
    # 990 + 2.5, 5, 7.5, 10 -> half to even on the total
    np.testing.assert_array_equal(frame.timestamps_ns, [992, 995, 998, 1000])


@pytest.mark.parametrize(
    ("ts", "kwargs"),
    [
        (1000, {"previous_timestamp_ns": 1000}),
        (1000, {"previous_timestamp_ns": 2000}),
        (10, {"sample_rate_hz": 52}),
        (2**63, {"sample_rate_hz": 52}),
    ],
)
def test_timestamp_errors(ts: int, kwargs: dict) -> None:
    with pytest.raises(DeviceError):
        pmd.parse_data_frame(header(1, ts=ts) + bytes(12), **kwargs)


# --------------------------------------------------------------------------- malformed frames


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("", "header"),
        ("02 00 00 00 00 00 00 00 00", "header"),
        ("01 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00", "not ACC"),
        ("02 00 00 00 00 00 00 00 00 03 00 00 00", "frame type 3"),
        ("02 00 00 00 00 00 00 00 00 82 00 00 00 00 00 00", "compressed frame type 2"),
        ("02 00 00 00 00 00 00 00 00 01", "no samples"),
        ("02 00 00 00 00 00 00 00 00 01 00 00 00 00 00", "whole"),
        ("02 00 00 00 00 00 00 00 00 80 00 00 00 00 00", "reference sample"),
        ("02 00 00 00 00 00 00 00 00 80 00 00 00 00 00 00 05", "stray byte"),
        ("02 00 00 00 00 00 00 00 00 80 00 00 00 00 00 00 21 01" + " 00" * 13, "bit width 33"),
        ("02 00 00 00 00 00 00 00 00 80 00 00 00 00 00 00 00 01", "bit width 0"),
        ("02 00 00 00 00 00 00 00 00 80 00 00 00 00 00 00 06 02 00 00 00 00", "missing"),
        ("02 00 00 00 00 00 00 00 00 81 00 00 00 00 00 00 06 01 00 00 00 01", "stray byte"),
    ],
)
def test_malformed_frames(payload: str, match: str) -> None:
    with pytest.raises(DeviceError, match=match):
        pmd.parse_data_frame(bytes.fromhex(payload))


def test_int32_overflow_is_device_error() -> None:
    body = compressed_body([0, 0, 0], [(32, [[2**31 - 1, 0, 0], [1, 0, 0]])])
    with pytest.raises(DeviceError, match="int32"):
        pmd.parse_data_frame(header(0x81) + body)


def test_frame_arrays_read_only() -> None:
    frame = pmd.parse_data_frame(header(1) + bytes(6), sample_rate_hz=52)
    with pytest.raises(ValueError):
        frame.samples[0, 0] = 1


# --------------------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_decode_or_device_error(data: bytes) -> None:
    try:
        frame = pmd.parse_data_frame(data)
    except DeviceError:
        return
    assert frame.samples.ndim == 2 and frame.samples.shape[1] == 3


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([0x00, 0x01, 0x02, 0x80, 0x81]),
    st.binary(max_size=120),
    st.integers(0, 2**64 - 1),
    st.one_of(st.none(), st.integers(1, 2000)),
    st.one_of(st.none(), st.integers(0, 2**64 - 1)),
)
def test_acc_like_bytes_decode_or_device_error(
    frame_type: int, body: bytes, ts: int, rate: int | None, prev: int | None
) -> None:
    if prev is not None and prev >= 2**63:
        prev = None
    try:
        frame = pmd.parse_data_frame(
            header(frame_type, ts=ts) + body, sample_rate_hz=rate, previous_timestamp_ns=prev
        )
    except DeviceError:
        return
    assert frame.timestamp_ns == ts
    if frame.timestamps_ns is not None:
        assert len(frame.timestamps_ns) == len(frame.samples)
        assert frame.timestamps_ns[-1] == ts
        assert np.all(np.diff(frame.timestamps_ns) >= 0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_control_response_any_bytes(data: bytes) -> None:
    try:
        resp = pmd.parse_control_response(b"\xf0" + data)
    except DeviceError:
        return
    assert 0 <= resp.status <= 255


@st.composite
def block_lists(draw: st.DrawFn) -> tuple[list[int], list[tuple[int, list[list[int]]]]]:
    ref = draw(st.lists(st.integers(-(2**15), 2**15 - 1), min_size=3, max_size=3))
    blocks = []
    for _ in range(draw(st.integers(0, 4))):
        width = draw(st.integers(1, 16))
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        delta = st.lists(st.integers(lo, hi), min_size=3, max_size=3)
        blocks.append((width, draw(st.lists(delta, max_size=20))))
    return ref, blocks


@settings(max_examples=300, deadline=None)
@given(block_lists())
def test_delta_round_trip(case: tuple[list[int], list[tuple[int, list[list[int]]]]]) -> None:
    ref, blocks = case
    frame = pmd.parse_data_frame(header(0x81) + compressed_body(ref, blocks))
    np.testing.assert_array_equal(frame.samples, expected_from(ref, blocks))
