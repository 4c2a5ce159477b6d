"""Generic raw accelerometer CSV: detection, time formats and zones, gaps, damage, blocks,
any bytes."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError, TimeAnchorError
from actidose.ingest import accel_csv
from actidose.recording import ReadContext, Recording

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
US = 1_000_000


def read(
    text: str | bytes, tz: str | None = None, *, salvage: bool = False, **options: str
) -> Recording:
    data = text.encode() if isinstance(text, str) else text
    ctx = ReadContext(tz, dict(options))
    return accel_csv.read(io.BytesIO(data), path="acc.csv", salvage=salvage, ctx=ctx)


def samples(rec: Recording) -> tuple[np.ndarray, np.ndarray]:
    assert rec.accel is not None
    parts = list(rec.accel.chunks())
    for c in parts:
        assert c.ts_us.dtype == np.int64 and c.xyz.dtype == np.float32
    ts = np.concatenate([c.ts_us for c in parts]) if parts else np.empty(0, np.int64)
    xyz = np.concatenate([c.xyz for c in parts]) if parts else np.empty((0, 3), np.float32)
    return ts, xyz


def utc(text: str) -> int:
    return int(np.datetime64(text, "us").astype(np.int64))


def iso_rows(n: int, start: str, rate: float, values: np.ndarray, suffix: str = "Z") -> str:
    t0 = np.datetime64(start, "us")
    rows = []
    for i in range(n):
        t = t0 + np.timedelta64(round(i * US / rate), "us")
        x, y, z = values[i]
        rows.append(f"{str(t).replace('T', ' ' if i % 2 else 'T')}{suffix},{x},{y},{z}\n")
    return "".join(rows)


VALUES = np.random.default_rng(5).normal(0, 0.5, (200, 3)).round(4)


# --------------------------------------------------------------------------------------------
# detection


@pytest.mark.parametrize(
    "head",
    [
        "timestamp,x,y,z\n2024-01-01T00:00:00Z,0.1,0.2,0.9\n",
        "Time;Acc_X;Acc_Y;Acc_Z\n1704067200.02;0,1;0,2;0,9\n".replace("0,", "0."),
        "time\taccel_x\taccel_y\taccel_z\ttemp\n1704067200000\t0.1\t-0.2\t1e-1\t20\n",
        '"timestamp","x","y","z"\n"2024-01-01 00:00:00.010","0.1","0.2","0.9"\n',
        "\ufeffdatetime,x,y,z\r\n2024-01-01T00:00:00+01:00,0,0,1\r\n",
    ],
)
def test_detects(head: str) -> None:
    assert accel_csv.detect(head.encode())


@pytest.mark.parametrize(
    "head",
    [
        "Time,HR\n2024-01-01T00:00:00Z,60\n",  # heart rate
        "timestamp,bpm,rr_ms\n2024-01-01T00:00:00Z,60,1000\n",
        "x,y,z\n0.1,0.2,0.9\n",  # no time column
        "timestamp,x,y,z\n",  # no row
        "timestamp,x,y,z\nyesterday,0.1,0.2,0.9\n",
        "timestamp,x,y,z\n2024-01-01T00:00:00Z,a,b,c\n",
        "------------ Data File Created By ActiGraph GT3X+ ActiLife v6\n",
        "<?xml version='1.0'?><TrainingCenterDatabase/>",
    ],
)
def test_does_not_detect(head: str) -> None:
    assert not accel_csv.detect(head.encode())


def test_claims_nothing_in_the_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    for path in CORPUS.rglob("*"):
        if path.is_file():
            assert not accel_csv.detect(path.read_bytes()[:4096]), path


# --------------------------------------------------------------------------------------------
# times


def test_iso_utc_round_trip() -> None:
    text = "timestamp,x,y,z\n" + iso_rows(200, "2024-01-01T00:00:00", 50, VALUES)
    rec = read(text)
    assert (rec.format, rec.kind) == ("accel_csv", "allday")
    assert rec.accel is not None and rec.accel.n_samples == 200
    assert rec.accel.sample_rate_hz == pytest.approx(50)
    ts, xyz = samples(rec)
    assert ts[0] == utc("2024-01-01T00:00:00") and ts[-1] == utc("2024-01-01T00:00:03.980")
    assert np.max(np.abs(xyz - VALUES)) < 1e-6
    assert rec.accel.gaps == [] and rec.warnings == [] and rec.meta["time_format"] == "iso"


def test_iso_with_offsets_and_extra_columns() -> None:
    text = (
        "temp,time,acc_z,acc_y,acc_x\n"
        "20,2024-06-01T12:00:00+02:00,1,2,3\n"
        "20,2024-06-01T12:00:00.5+02:00,4,5,6\n"
    )
    ts, xyz = samples(read(text))
    assert ts.tolist() == [utc("2024-06-01T10:00:00"), utc("2024-06-01T10:00:00.5")]
    assert xyz.tolist() == [[3, 2, 1], [6, 5, 4]]


def test_naive_times_need_a_zone_and_follow_the_wall_clock() -> None:
    text = "timestamp,x,y,z\n" + iso_rows(3, "2024-07-01T12:00:00", 1, VALUES, suffix="")
    with pytest.raises(TimeAnchorError, match="timezone"):
        read(text)
    ts, _ = samples(read(text, "Europe/Paris"))
    assert ts[0] == utc("2024-07-01T10:00:00")
    ts, _ = samples(read(text, timezone="America/New_York"))
    assert ts[0] == utc("2024-07-01T16:00:00")


def test_repeated_hour_by_file_order_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # London, 2024-10-27 01:00-02:00 happens twice; 1 sample per 10 min, blocks of ~3 rows
    local = [
        f"2024-10-27T{h}:{m:02d}:00"
        for h, m in [("00", 50)] + [("01", m) for m in range(0, 60, 10)]
    ]
    local += [f"2024-10-27T01:{m:02d}:00" for m in range(0, 60, 10)] + ["2024-10-27T02:00:00"]
    text = "timestamp,x,y,z\n" + "".join(f"{t},0,0,1\n" for t in local)
    monkeypatch.setattr(accel_csv, "BLOCK_BYTES", 60)
    rec = read(text, "Europe/London")
    ts, _ = samples(rec)
    assert np.all(np.diff(ts) == 600 * US)
    assert ts[0] == utc("2024-10-26T23:50:00") and ts[-1] == utc("2024-10-27T02:00:00")


def test_skipped_hour_is_damage() -> None:
    text = "timestamp,x,y,z\n2024-03-31T00:59:00,0,0,1\n2024-03-31T01:30:00,0,0,1\n"
    with pytest.raises(InputError, match="line 3: a local time that does not exist"):
        read(text, "Europe/London")


@pytest.mark.parametrize("scale,unit", [(1, "s"), (1000, "ms")])
def test_epoch_times(scale: int, unit: str) -> None:
    rows = "".join(f"{(1_704_067_200 + i / 25) * scale:.3f},0,0,1\n" for i in range(50))
    rec = read("unix_time,x,y,z\n" + rows)
    ts, _ = samples(rec)
    assert ts[0] == utc("2024-01-01T00:00:00") and ts[-1] == utc("2024-01-01T00:00:01.960")
    assert rec.meta["time_format"] == f"epoch_{unit}"
    assert rec.accel is not None and rec.accel.sample_rate_hz == pytest.approx(25)


# --------------------------------------------------------------------------------------------
# gaps, damage, blocks


def test_gaps_are_not_filled() -> None:
    text = (
        "timestamp,x,y,z\n"
        + iso_rows(50, "2024-01-01T00:00:00", 50, VALUES)
        + iso_rows(50, "2024-01-01T00:01:00", 50, VALUES[50:])
    )
    rec = read(text)
    assert rec.accel is not None and rec.accel.n_samples == 100
    assert rec.accel.gaps == [(utc("2024-01-01T00:00:01"), utc("2024-01-01T00:01:00"))]
    assert any("gap" in w for w in rec.warnings)


def test_bad_rows() -> None:
    good = "timestamp,x,y,z\n" + iso_rows(5, "2024-01-01T00:00:00", 10, VALUES)
    lines = good.splitlines(keepends=True)
    bad_value = "".join([*lines[:3], "2024-01-01T00:00:00.2Z,0.1,,0.3\n", *lines[4:]])
    with pytest.raises(InputError, match="line 4: an axis value is not a finite number"):
        read(bad_value)
    rec = read(bad_value, salvage=True)
    assert rec.salvaged and rec.accel is not None and rec.accel.n_samples == 2
    bad_time = "".join([*lines[:3], "soon,0,0,1\n", *lines[4:]])
    with pytest.raises(InputError, match="line 4: the time is not an ISO 8601 date-time"):
        read(bad_time)
    back = "".join([*lines[:3], lines[1], *lines[4:]])
    with pytest.raises(InputError, match="line 4: the time is not after the one before"):
        read(back)
    with pytest.raises(InputError, match="line 7: a time without a UTC offset"):
        read(good + "2024-01-01T00:00:01,0,0,1\n")  # naive after zoned times, and no zone
    nan = "".join([*lines[:3], "2024-01-01T00:00:00.2Z,nan,0,1\n", *lines[4:]])
    with pytest.raises(InputError, match="not a finite number"):
        read(nan)
    with pytest.raises(InputError, match="truncated: the last line is incomplete"):
        read(good + "2024-01-01T00:00:00.5Z,0.1")
    assert read(good + "\n\n").accel is not None  # blank lines at the end are fine


def test_header_errors_and_units() -> None:
    with pytest.raises(InputError, match="does not name a time column"):
        read("when,x,y,z\n1,2,3,4\n")
    with pytest.raises(InputError, match="line 2: the first row has no time"):
        read("timestamp,x,y,z\nnever,0,0,1\n")
    with pytest.raises(InputError, match="no header line"):
        read("timestamp,x,y,z")
    ms2 = "timestamp,x,y,z\n" + "".join(
        f"{1_704_067_200 + i / 10},0.1,0.2,9.81\n" for i in range(20)
    )
    with pytest.raises(InputError, match="look like m/s²"):
        read(ms2)
    with pytest.raises(InputError, match="cannot tell the sample rate"):
        read("timestamp,x,y,z\n1704067200,0,0,1\n")


def test_blocks_and_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "timestamp,x,y,z\n" + iso_rows(200, "2024-01-01T00:00:00", 50, VALUES)
    whole = samples(read(text))
    monkeypatch.setattr(accel_csv, "BLOCK_BYTES", 500)
    rec = read(text)
    assert rec.accel is not None and len(list(rec.accel.chunks())) > 5
    parts = samples(rec)
    assert np.array_equal(whole[0], parts[0]) and np.array_equal(whole[1], parts[1])
    again = samples(pickle.loads(pickle.dumps(rec)))
    assert np.array_equal(again[0], parts[0])


def test_memory_mapped_file(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("timestamp,x,y,z\n" + iso_rows(200, "2024-01-01T00:00:00", 50, VALUES))
    with path.open("rb") as fp:
        rec = accel_csv.read(fp, path=str(path), ctx=ReadContext())
    ts, xyz = samples(rec)  # the file is closed: the bytes are mapped
    assert ts.size == 200 and np.max(np.abs(xyz - VALUES)) < 1e-6


# --------------------------------------------------------------------------------------------
# any bytes

_BASE = ("timestamp,x,y,z\n" + iso_rows(40, "2024-01-01T00:00:00", 20, VALUES)).encode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(_BASE) - 1), st.integers(0, 255)), max_size=5),
    st.integers(0, len(_BASE)),
    st.booleans(),
)
def test_mutated_csv(edits: list[tuple[int, int]], cut: int, salvage: bool) -> None:
    data = bytearray(_BASE)
    for at, value in edits:
        data[at] = value
    try:
        rec = read(bytes(data[: len(data) - cut]), "UTC", salvage=salvage)
    except InputError:
        return
    ts, xyz = samples(rec)
    assert rec.accel is not None and ts.size == rec.accel.n_samples
    assert np.all(np.diff(ts) > 0) and np.all(np.isfinite(xyz))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=500))
def test_any_bytes_after_a_header(tail: bytes) -> None:
    try:
        rec = read(b"timestamp,x,y,z\n" + tail, "UTC")
    except InputError:
        return
    ts, _ = samples(rec)
    assert np.all(np.diff(ts) > 0)
