"""Generic HR/RR CSV: column mapping, timestamp formats and zones, delimiters, bad rows."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError, UsageError
from actidose.ingest import csv_hr
from actidose.ingest.registry import read_recording
from actidose.recording import ReadContext, Recording


def read(text: str | bytes, tz: str | None = None, **options: str) -> Recording:
    data = text.encode() if isinstance(text, str) else text
    return csv_hr.read(io.BytesIO(data), path="hr.csv", ctx=ReadContext(tz, options))


def error(text: str | bytes, tz: str | None = None, **options: str) -> InputError:
    with pytest.raises(InputError) as e:
        read(text, tz, **options)
    assert e.value.path == "hr.csv"
    return e.value


def times(rec_ts: np.ndarray) -> list[str]:
    return rec_ts.astype("datetime64[us]").astype(str).tolist()


MAP = "timestamp=Time,bpm=HR"


def test_never_detected() -> None:
    assert not csv_hr.detect(b"Time,HR\n2024-01-01T00:00:00Z,60\n")


def test_iso_with_offsets() -> None:
    rec = read(
        "Time,HR\n"
        "2024-03-31T00:59:00+00:00,70\n"
        "2024-03-31T02:00:00+01:00,71\n"
        "2024-03-31 03:00:00.250Z,72\n"
        "2024-03-31T04:00:00-0230,73\n",
        columns=MAP,
    )
    assert times(rec.hr.ts) == [
        "2024-03-31T00:59:00.000000",
        "2024-03-31T01:00:00.000000",
        "2024-03-31T03:00:00.250000",
        "2024-03-31T06:30:00.000000",
    ]
    assert rec.hr.bpm.tolist() == [70, 71, 72, 73]
    assert (rec.format, rec.kind, rec.utc_offset_s) == ("csv", "activity", 0)
    assert rec.meta["bad_rows"] == "0" and rec.warnings == []


def test_naive_times_need_a_zone() -> None:
    text = "Time,HR\n2024-07-01 12:00:00,70\n2024-07-01 12:00:01,71\n"
    e = error(text, columns=MAP)
    assert e.reason.startswith("line 2: timestamps without a UTC offset and no time zone")
    rec = read(text, "Europe/London", columns=MAP)  # the participant's zone
    assert times(rec.hr.ts)[0] == "2024-07-01T11:00:00.000000"
    rec = read(text, "Europe/London", columns=MAP, timezone="America/New_York")  # option wins
    assert times(rec.hr.ts)[0] == "2024-07-01T16:00:00.000000"
    assert rec.meta["timezone"] == "America/New_York"


def test_naive_times_across_dst() -> None:
    text = (
        "Time,HR\n"
        "2024-03-31 00:59:59,60\n"
        "2024-03-31 01:30:00,61\n"  # does not exist in London
        "2024-03-31 02:00:00,62\n"
        "2024-10-27 01:30:00,63\n"  # first pass (BST)
        "2024-10-27 01:10:00,64\n"  # the clock went back: second pass (GMT)
    )
    rec = read(text, "Europe/London", columns=MAP)
    assert times(rec.hr.ts) == [
        "2024-03-31T00:59:59.000000",
        "2024-03-31T01:00:00.000000",
        "2024-10-27T00:30:00.000000",
        "2024-10-27T01:10:00.000000",
    ]
    assert rec.meta["bad_rows"] == "1" and rec.meta["bad_lines"] == "3"
    assert "DST gap" in rec.warnings[0] and rec.warnings[0].endswith("line 3")


def test_epoch_ms_and_epoch_s() -> None:
    rec = read(
        "t,bpm\n1711846800000,80\n1711846800500,81\n",
        columns="timestamp=t,bpm=bpm",
        timestamp_format="epoch_ms",
    )
    assert times(rec.hr.ts) == ["2024-03-31T01:00:00.000000", "2024-03-31T01:00:00.500000"]
    rec = read(
        "t,bpm\n1711846800.25,80\n", columns="timestamp=t,bpm=bpm", timestamp_format="epoch_s"
    )
    assert times(rec.hr.ts) == ["2024-03-31T01:00:00.250000"]


def test_semicolon_decimal_comma_and_strptime() -> None:
    text = "Zeit;Puls;RR\n31.03.2024 10:00:00;72,5;830\n31.03.2024 10:00:01;73;\n"
    rec = read(
        text,
        "Europe/Berlin",
        columns="timestamp=Zeit,bpm=Puls,rr_ms=RR",
        timestamp_format="%d.%m.%Y %H:%M:%S",
    )
    assert rec.meta["delimiter"] == ";"
    assert times(rec.hr.ts) == ["2024-03-31T08:00:00.000000", "2024-03-31T08:00:01.000000"]
    assert rec.hr.bpm.tolist() == [72.5, 73.0]
    assert rec.rr.rr_ms.tolist() == [830.0] and times(rec.rr.ts) == ["2024-03-31T08:00:00.000000"]


def test_tab_delimiter_sniffed_and_given() -> None:
    text = "Time\tHR\n2024-01-01T00:00:00Z\t60\n"
    assert read(text, columns=MAP).meta["delimiter"] == "tab"
    assert len(read(text, columns=MAP, delimiter="\\t").hr) == 1
    with pytest.raises(UsageError):
        read(text, columns=MAP, delimiter="|")


def test_rr_only() -> None:
    text = "ts,rr\n2024-01-01T00:00:00.800Z,800\n2024-01-01T00:00:01.610Z,810\n"
    rec = read(text, columns="timestamp=ts,rr_ms=rr", kind="allday")
    assert len(rec.hr) == 0 and rec.kind == "allday"
    assert rec.rr.rr_ms.tolist() == [800, 810]
    assert times(rec.rr.ts) == ["2024-01-01T00:00:00.800000", "2024-01-01T00:00:01.610000"]


def test_bad_rows_are_counted_with_line_numbers() -> None:
    text = (
        "Time,HR\n"  # line 1
        "2024-01-01T00:00:00Z,60\n"
        "not a time,61\n"  # 3
        "\n"  # 4: blank, ignored
        "2024-01-01T00:00:02Z,abc\n"  # 5
        "2024-01-01T00:00:03Z,63\n"
        "2024-01-01T00:00:04Z,\n"  # 7: no value
        "2024-01-01T00:00:05Z\n"  # 8: too few fields
        "2024-01-01T00:00:06Z,66\n"
        "2024-01-01T00:00:07Z,67\n"
        "2024-01-01T00:00:08Z,68\n"
        "2024-01-01T00:00:09Z,69\n"
    )
    rec = read(text, columns=MAP)
    assert rec.hr.bpm.tolist() == [60, 63, 66, 67, 68, 69]
    assert rec.meta["bad_rows"] == "4" and rec.meta["rows"] == "10"
    assert rec.meta["bad_lines"] == "3, 5, 7-8"
    joined = " | ".join(rec.warnings)
    assert "unparseable timestamp (ISO 8601): line 3" in joined
    assert "bpm not a number: line 5" in joined
    assert "no value in the mapped columns: line 7" in joined
    assert "fewer than 2 fields: line 8" in joined


def test_more_than_half_bad_is_a_wrong_mapping() -> None:
    text = "Time,HR\n01/02/2024 10:00,60\n01/02/2024 10:01,61\n2024-01-02T10:02:00Z,62\n"
    e = error(text, columns=MAP)
    assert e.reason.startswith("2 of 3 data rows could not be read")
    assert "line 2-3" in e.reason and "column mapping" in e.reason


def test_missing_column_names_what_is_there() -> None:
    e = error("Zeit,Puls\n2024-01-01T00:00:00Z,60\n", columns=MAP)
    assert e.reason == (
        "line 1: column 'Time' (mapped to timestamp) is not in the header; "
        "columns present: 'Zeit', 'Puls'"
    )
    # names match case-insensitively when unique
    assert len(read("time,hr\n2024-01-01T00:00:00Z,60\n", columns=MAP).hr) == 1


def test_default_mapping() -> None:
    assert len(read("timestamp,bpm\n2024-01-01T00:00:00Z,60\n").hr) == 1
    assert "no column mapping" in error("a,b\n1,2\n").reason


def test_parse_columns() -> None:
    assert csv_hr.parse_columns("timestamp=Time, bpm=HR ,rr_ms=RR") == {
        "timestamp": "Time",
        "bpm": "HR",
        "rr_ms": "RR",
    }
    bad_specs = ("timestamp=Time", "bpm=HR", "timestamp=T,hr=HR", "timestamp=T,bpm")
    for bad in (*bad_specs, "timestamp=a,timestamp=b,bpm=c"):
        with pytest.raises(UsageError):
            csv_hr.parse_columns(bad)


def test_empty_and_odd_files() -> None:
    assert error(b"").reason == "empty file"
    assert "no data rows" in error("Time,HR\n", columns=MAP).reason
    assert error(b"Time,HR\n\xff\xfe,1\n", columns=MAP).offset == 8
    rec = read(b"\xef\xbb\xbfTime,HR\r\n2024-01-01T00:00:00Z,60\r\n", columns=MAP)
    assert len(rec.hr) == 1


def test_through_registry() -> None:
    data = b"Time,HR\n2024-01-01T00:00:00Z,60\n"
    ctx = ReadContext(None, {"format": "csv", "columns": MAP})
    fmt, rec = read_recording(io.BytesIO(data), path="x.csv", ctx=ctx)
    assert fmt == "csv" and len(rec.hr) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1901, 1, 1), max_value=datetime(2199, 1, 1)),
    st.integers(-14 * 4, 14 * 4),
    st.booleans(),
)
def test_parse_iso_agrees_with_fromisoformat(dt: datetime, quarter_hours: int, aware: bool) -> None:
    text = dt.isoformat()
    want = dt
    if aware:
        tz = timezone(timedelta(minutes=15 * quarter_hours))
        text = dt.replace(tzinfo=tz).isoformat()
        want = dt.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
    got = csv_hr.parse_iso([text])
    assert got.ok[0] and bool(got.has_zone[0]) == aware
    assert got.us[0] == (want - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def outcome(data: bytes, **options: str) -> Recording | InputError:
    try:
        return csv_hr.read(io.BytesIO(data), path="a.csv", ctx=ReadContext("UTC", options))
    except InputError as exc:
        assert exc.path == "a.csv"
        return exc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1500), st.sampled_from(["iso", "epoch_ms", "%d/%m/%Y %H:%M"]))
def test_any_bytes(data: bytes, fmt: str) -> None:
    got = outcome(data, columns="timestamp=a,bpm=b", timestamp_format=fmt)
    assert isinstance(got, Recording | InputError)
    got = outcome(b"a,b,c\n" + data, columns="timestamp=a,bpm=b,rr_ms=c", timestamp_format=fmt)
    assert isinstance(got, Recording | InputError)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.text(max_size=30), st.text(max_size=8), st.text(max_size=8))))
def test_any_cells(rows: list[tuple[str, str, str]]) -> None:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["a", "b", "c"])
    w.writerows(rows)
    got = outcome(buf.getvalue().encode(), columns="timestamp=a,bpm=b,rr_ms=c")
    assert isinstance(got, Recording | InputError)
    if isinstance(got, Recording):
        assert int(got.meta["bad_rows"]) * 2 <= int(got.meta["rows"])
