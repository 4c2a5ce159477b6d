"""ActiGraph CSV exports: the corpus count files against GGIRread's published values, raw
exports built here in every layout, date formats, damage and any bytes."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError
from actidose.ingest import accel_csv, actigraph_csv
from actidose.recording import ReadContext, Recording

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "accel"
US = 1_000_000


def corpus(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"shared corpus file not found: {path}")
    return path


def read(
    data: bytes | str, tz: str | None = "UTC", *, salvage: bool = False, path: str = "a.csv"
) -> Recording:
    raw = data.encode() if isinstance(data, str) else data
    return actigraph_csv.read(io.BytesIO(raw), path=path, salvage=salvage, ctx=ReadContext(tz))


def utc(text: str) -> int:
    return int(np.datetime64(text, "us").astype(np.int64))


def samples(rec: Recording) -> tuple[np.ndarray, np.ndarray]:
    assert rec.accel is not None
    parts = list(rec.accel.chunks())
    ts = np.concatenate([c.ts_us for c in parts]) if parts else np.empty(0, np.int64)
    xyz = np.concatenate([c.xyz for c in parts]) if parts else np.empty((0, 3), np.float32)
    return ts, xyz


def n_samples(rec: Recording) -> int | None:
    assert rec.accel is not None
    return rec.accel.n_samples


def series(rec: Recording) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return {v.kind: (v.start.astype(np.int64), v.duration_s, v.value) for v in rec.vendor}


# --------------------------------------------------------------------------------------------
# corpus: count epochs


def test_detect() -> None:
    for name in ("ActiGraph13.csv", "ActiGraph61.csv"):
        assert actigraph_csv.detect(corpus(name).read_bytes()[:4096])
        assert not accel_csv.detect(corpus(name).read_bytes()[:4096])
    assert not actigraph_csv.detect(b"timestamp,x,y,z\n")


def test_actigraph13_counts() -> None:
    with corpus("ActiGraph13.csv").open("rb") as fp:
        rec = actigraph_csv.read(fp, path="ActiGraph13.csv", ctx=ReadContext("Europe/London"))
    assert rec.accel is None and rec.kind == "allday" and rec.format == "actigraph_csv"
    assert actigraph_csv.NO_ENMO_WARNING in rec.warnings
    assert (rec.serial, rec.device) == ("CLE2A2123456", "ActiGraph wGT3XPlus")
    s = series(rec)
    assert sorted(s) == [
        "activity_counts_axis1",
        "activity_counts_axis2",
        "activity_counts_axis3",
        "activity_counts_vm",
        "steps",
    ]
    start, dur, a1 = s["activity_counts_axis1"]
    assert a1.size == 990 and np.all(dur == 15.0)
    assert start[0] == utc("2013-08-26T08:00:00")  # 09:00 BST
    assert start[-1] == utc("2013-08-26T12:07:15")
    assert [s[k][2][-1] for k in s] == [
        36,
        66,
        86,
        pytest.approx(np.sqrt(36**2 + 66**2 + 86**2)),
        0,
    ]
    assert [s[k][2][0] for k in s] == [0, 0, 0, 0, 0]
    # GGIRread's readActiGraphCount test: sum of y, x, z, vm 272870.6, steps 1118
    assert sum(s[k][2].sum() for k in s if k != "steps") == pytest.approx(272870.6, abs=0.1)
    assert s["steps"][2].sum() == 1118
    assert rec.meta["epoch_s"] == "15" and rec.meta["mode"] == "13"
    assert all(v.origin == "ActiGraph wGT3XPlus" for v in rec.vendor)


def test_actigraph61_counts() -> None:
    with corpus("ActiGraph61.csv").open("rb") as fp:
        rec = actigraph_csv.read(fp, path="ActiGraph61.csv", ctx=ReadContext("America/Chicago"))
    s = series(rec)
    start, dur, a1 = s["activity_counts_axis1"]
    assert a1.size == 990 and np.all(dur == 5.0)
    assert start[0] == utc("2016-08-16T02:35:00")  # 21:35 CDT
    assert start[-1] == start[0] + 989 * 5 * US
    assert [
        s[k][2][0]
        for k in (
            "activity_counts_axis1",
            "activity_counts_axis2",
            "activity_counts_axis3",
            "steps",
        )
    ] == [325, 85, 176, 2]
    assert s["activity_counts_vm"][2][0] == pytest.approx(np.sqrt(325**2 + 85**2 + 176**2))
    # GGIRread: sum of y, x, z, vm 63952.33, steps 253
    assert sum(s[k][2].sum() for k in s if k != "steps") == pytest.approx(63952.33, abs=0.01)
    assert s["steps"][2].sum() == 253
    assert rec.meta["columns"] == "axis1,axis2,axis3,steps,lux,-,-,-,-"


def test_counts_need_a_zone() -> None:
    with pytest.raises(InputError, match="timezone"):
        read(corpus("ActiGraph13.csv").read_bytes(), None)


# --------------------------------------------------------------------------------------------
# raw exports built here

FIRST = (
    "------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.3 Firmware v3.2.1 "
    "date format {fmt} {rate}Filter Normal -----------"
)


def header(
    *,
    fmt: str = "M/d/yyyy",
    rate: float | None = 30,
    start: datetime = datetime(2019, 7, 5, 10, 0, 0),
    epoch: str = "00:00:00",
    mode: int = 12,
    serial: str = "NEO1F18120387",
    commas: str = "",
) -> str:
    def date(d: datetime) -> str:
        return _format_date(d, fmt)

    lines = [
        FIRST.format(fmt=fmt, rate=f"at {rate:g} Hz  " if rate else ""),
        f"Serial Number: {serial}",
        f"Start Time {start:%H:%M:%S}",
        f"Start Date {date(start)}",
        f"Epoch Period (hh:mm:ss) {epoch}",
        "Download Time 12:00:00",
        f"Download Date {date(start)}",
        "Current Memory Address: 0",
        f"Current Battery Voltage: 4.18     Mode = {mode}",
        "--------------------------------------------------",
    ]
    return "".join(line + commas + "\n" for line in lines)


def _format_date(d: datetime, fmt: str) -> str:
    out = fmt
    for token, value in (
        ("yyyy", f"{d.year:04d}"),
        ("yy", f"{d.year % 100:02d}"),
        ("MM", f"{d.month:02d}"),
        ("dd", f"{d.day:02d}"),
        ("M", str(d.month)),
        ("d", str(d.day)),
    ):
        out = re.sub(rf"(?<![A-Za-z]){token}(?![A-Za-z])", value, out)
    return out


def raw_rows(
    values: np.ndarray,
    *,
    rate: float,
    start: datetime,
    fmt: str,
    timestamps: bool,
    column_header: bool,
) -> str:
    lines = []
    if column_header:
        names = "Accelerometer X,Accelerometer Y,Accelerometer Z"
        lines.append(("Timestamp," if timestamps else "") + names)
    for i, (x, y, z) in enumerate(values.tolist()):
        cells = f"{x:.3f},{y:.3f},{z:.3f}"
        if timestamps:
            t = start + timedelta(microseconds=round(i * US / rate))
            stamp = f"{_format_date(t, fmt)} {t:%H:%M:%S}.{t.microsecond // 1000:03d}"
            cells = f"{stamp},{cells}"
        lines.append(cells)
    return "".join(line + "\n" for line in lines)


@pytest.mark.parametrize("rate", [30, 100])
@pytest.mark.parametrize("fmt", ["M/d/yyyy", "d/M/yyyy"])
@pytest.mark.parametrize("timestamps", [False, True])
@pytest.mark.parametrize("column_header", [False, True])
def test_raw_layouts(rate: int, fmt: str, timestamps: bool, column_header: bool) -> None:
    start = datetime(2019, 7, 5, 10, 0, 0)  # "7/5/2019": July 5 or 7 May, as the format says
    values = np.random.default_rng(rate).normal(0, 0.6, (rate * 3 + 7, 3)).round(3)
    text = header(fmt=fmt, rate=rate, start=start) + raw_rows(
        values, rate=rate, start=start, fmt=fmt, timestamps=timestamps, column_header=column_header
    )
    rec = read(text, "Europe/London")
    assert rec.accel is not None
    assert rec.accel.sample_rate_hz == rate and rec.accel.n_samples == values.shape[0]
    assert rec.accel.range_g == 6.0 and rec.serial == "NEO1F18120387"
    ts, xyz = samples(rec)
    assert np.max(np.abs(xyz - values)) < 1e-6
    first = utc("2019-07-05T09:00:00")  # BST
    assert ts[0] == first
    last = first + round((values.shape[0] - 1) * US / rate)
    if timestamps:  # stamps are written to the millisecond
        last = first + (values.shape[0] - 1) * US // rate // 1000 * 1000
        assert rec.meta["times_from"] == "Timestamp column"
    assert abs(int(ts[-1]) - last) <= (0 if timestamps else 1)
    assert np.all(np.diff(ts) > 0) and rec.accel.gaps == [] and rec.warnings == []
    assert rec.meta["date_format"] == fmt and rec.meta["data"] == "raw"


def test_other_date_formats() -> None:
    for fmt, text in (
        ("dd.MM.yyyy", "05.07.2019"),
        ("yyyy-MM-dd", "2019-07-05"),
        ("d/M/yy", "5/7/19"),
    ):
        assert re.match("^" + actigraph_csv.date_regex(fmt) + "$", text)
        data = header(fmt=fmt, start=datetime(2019, 7, 5, 10)) + "0.1,0.2,0.3\n0.1,0.2,0.3\n"
        ts, _ = samples(read(data))
        assert ts[0] == utc("2019-07-05T10:00:00")
    with pytest.raises(InputError, match="unsupported date format 'MMM/d/yyyy'"):
        read(header(fmt="MMM/d/yyyy") + "0,0,1\n")
    broken = header().replace("Start Date 7/5/2019", "Start Date 2019-07-05")
    with pytest.raises(InputError, match="do not match the stated date format"):
        read(broken + "0,0,1\n")


def test_trailing_commas_and_crlf() -> None:
    text = header(commas=",,,").replace("\n", "\r\n") + "0.1,0.2,0.3\r\n0.2,0.3,0.4\r\n"
    rec = read(text)
    ts, xyz = samples(rec)
    assert ts.size == 2 and np.allclose(xyz, [[0.1, 0.2, 0.3], [0.2, 0.3, 0.4]])


def test_raw_without_rate_needs_timestamps() -> None:
    with pytest.raises(InputError, match="no sample rate"):
        read(header(rate=None) + "0,0,1\n0,0,1\n")
    start = datetime(2019, 7, 5, 10)
    values = np.zeros((90, 3))
    text = header(rate=None, start=start) + raw_rows(
        values, rate=30, start=start, fmt="M/d/yyyy", timestamps=True, column_header=True
    )
    rec = read(text)
    assert rec.accel is not None and rec.accel.sample_rate_hz == pytest.approx(30, rel=0.02)


def test_timestamp_gaps_and_order() -> None:
    start = datetime(2019, 7, 5, 10)
    a = raw_rows(
        np.zeros((30, 3)), rate=30, start=start, fmt="M/d/yyyy", timestamps=True, column_header=True
    )
    b = raw_rows(
        np.zeros((30, 3)),
        rate=30,
        start=start + timedelta(seconds=10),
        fmt="M/d/yyyy",
        timestamps=True,
        column_header=False,
    )
    rec = read(header(start=start) + a + b)
    assert rec.accel is not None
    assert rec.accel.gaps == [(utc("2019-07-05T10:00:00.966") + 33_333, utc("2019-07-05T10:00:10"))]
    back = header(start=start) + a + a.split("\n", 1)[1]
    with pytest.raises(InputError, match="line 42: the time is not after the one before"):
        read(back)
    assert n_samples(read(back, salvage=True)) == 30


def test_bad_rows_and_truncation() -> None:
    good = header() + "0.1,0.2,0.3\n" * 5
    bad = header() + "0.1,0.2,0.3\n" * 2 + "0.1,x,0.3\n" + "0.1,0.2,0.3\n" * 2
    with pytest.raises(InputError, match="line 13: an axis value is not a finite number"):
        read(bad)
    rec = read(bad, salvage=True)
    assert rec.salvaged and rec.accel is not None and rec.accel.n_samples == 2
    with pytest.raises(InputError, match="truncated: the last line is incomplete"):
        read(good + "0.1,0.")
    assert n_samples(read(good + "0.1,0.", salvage=True)) == 5
    with pytest.raises(InputError, match="truncated: the header has 4 of its 10 lines"):
        read("\n".join(header().split("\n")[:4]) + "\n")
    with pytest.raises(InputError, match="no samples"):
        read(header())
    with pytest.raises(InputError, match="Accelerometer X, Y and Z"):
        read(header() + "Timestamp,Foo,Bar\n1,2,3\n")


def test_blocks_are_read_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime(2019, 7, 5, 10)
    values = np.random.default_rng(1).normal(0, 1, (500, 3)).round(3)
    text = header(start=start) + raw_rows(
        values, rate=30, start=start, fmt="M/d/yyyy", timestamps=True, column_header=True
    )
    whole = samples(read(text))
    monkeypatch.setattr(accel_csv, "BLOCK_BYTES", 1000)
    rec = read(text)
    assert rec.accel is not None and len(list(rec.accel.chunks())) > 10
    pieces = samples(rec)
    assert np.array_equal(whole[0], pieces[0]) and np.array_equal(whole[1], pieces[1])


def test_raw_device_clock_across_dst() -> None:
    start = datetime(2024, 3, 31, 0, 59, 59)  # London: 01:00 GMT -> 02:00 BST
    text = header(rate=1, start=start) + "0,0,1\n" * 3
    rec = read(text, "Europe/London")
    ts, _ = samples(rec)
    assert ts.tolist() == [utc("2024-03-31T00:59:59") + k * US for k in range(3)]
    assert any("do not follow daylight saving time" in w for w in rec.warnings)


# --------------------------------------------------------------------------------------------
# count layouts built here


def test_counts_with_column_header_and_date_columns() -> None:
    text = header(epoch="00:01:00", mode=12) + (
        "Date,Time,Axis1,Axis2,Axis3,Vector Magnitude\n"
        "7/5/2019,10:00:00,10,20,30,37.42\n"
        "7/5/2019,10:01:00,0,0,0,0\n"
    )
    rec = read(text)
    s = series(rec)
    assert s["activity_counts_axis1"][2].tolist() == [10, 0]
    assert s["activity_counts_vm"][2][0] == pytest.approx(np.sqrt(1400))
    assert s["activity_counts_axis1"][0].tolist() == [
        utc("2019-07-05T10:00"),
        utc("2019-07-05T10:01"),
    ]
    assert np.all(s["activity_counts_axis1"][1] == 60.0)


def test_counts_with_leading_date_columns_and_mode() -> None:
    text = header(epoch="00:00:10", mode=1) + "7/5/2019,10:00:00,5,3\n7/5/2019,10:00:10,6,4\n"
    s = series(read(text))
    assert sorted(s) == ["activity_counts_axis1", "steps"]
    assert s["steps"][2].tolist() == [3, 4]


def test_counts_layout_errors() -> None:
    with pytest.raises(InputError, match="Mode = 13 means 4 columns"):
        read(header(epoch="00:00:15", mode=13) + "1,2,3\n")
    with pytest.raises(InputError, match="Mode = 4: the column layout"):
        read(header(epoch="00:00:15", mode=4) + "1,2\n")
    with pytest.raises(InputError, match="line 12: a count is not a number"):
        read(header(epoch="00:00:15", mode=12) + "1,2,3\n1,x,3\n")
    rec = read(header(epoch="00:00:15", mode=12) + "1,2,3\n1,x,3\n", salvage=True)
    assert rec.salvaged and series(rec)["activity_counts_axis1"][2].tolist() == [1]
    text = header(epoch="00:00:15").replace("     Mode = 12", "") + "1,2,3\n"
    rec = read(text)
    assert any("no Mode in the header" in w for w in rec.warnings)
    hr = read(header(epoch="00:00:15", mode=14) + "1,2,3,70\n")
    assert any("heart-rate column" in w for w in hr.warnings)


# --------------------------------------------------------------------------------------------
# any bytes

_RAW = header() + raw_rows(
    np.random.default_rng(2).normal(0, 1, (60, 3)).round(3),
    rate=30,
    start=datetime(2019, 7, 5, 10),
    fmt="M/d/yyyy",
    timestamps=True,
    column_header=True,
)
_COUNTS = header(epoch="00:00:15", mode=13) + "1,2,3,4\n" * 30


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([_RAW.encode(), _COUNTS.encode()]),
    st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 255)), max_size=5),
    st.integers(0, 5000),
    st.booleans(),
)
def test_mutated_exports(
    base: bytes, edits: list[tuple[int, int]], cut: int, salvage: bool
) -> None:
    data = bytearray(base)
    for at, value in edits:
        if at < len(data):
            data[at] = value
    data = data[: len(data) - cut % len(data)]
    try:
        rec = read(bytes(data), salvage=salvage)
    except InputError:
        return
    if rec.accel is not None:
        ts, xyz = samples(rec)
        assert ts.size == rec.accel.n_samples and np.all(np.diff(ts) > 0)
        assert np.all(np.isfinite(xyz))
    else:
        assert rec.vendor and all(v.value.size == rec.vendor[0].value.size for v in rec.vendor)
