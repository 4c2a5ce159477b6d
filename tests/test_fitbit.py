"""Fitbit importer: the real export files of the corpus against an independent reading, local
times across DST changes, Takeout CSVs, damaged input."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError, NothingToImport
from actidose.ingest import fitbit, polar
from actidose.ingest.registry import read_recording
from actidose.recording import ReadContext, Recording
from actidose.timeutil import local_days

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FITBIT = CORPUS / "fitbit"
LONDON = ReadContext("Europe/London")


def corpus_file(name: str) -> Path:
    path = FITBIT / name
    if not path.is_file():
        pytest.skip(f"shared corpus file not found: {path}")
    return path


def read(data: bytes, name: str = "heart_rate-2024-01-01.json", **kw: Any) -> Recording:
    ctx = kw.pop("ctx", LONDON)
    return fitbit.read(io.BytesIO(data), path=name, ctx=ctx, **kw)


def error(data: bytes, name: str = "heart_rate-2024-01-01.json", **kw: Any) -> InputError:
    with pytest.raises(InputError) as e:
        read(data, name, **kw)
    assert e.value.path == name
    return e.value


def hr_json(entries: list[tuple[str, int]]) -> bytes:
    """A heart_rate file as Fitbit writes it (pretty-printed array)."""
    items = [{"dateTime": t, "value": {"bpm": b, "confidence": 2}} for t, b in entries]
    return json.dumps(items, indent=2).encode()


def utc_us(text: str) -> np.datetime64:
    return np.datetime64(text, "us")


# --------------------------------------------------------------------------------------------
# independent reading of the export (plain json + datetime/zoneinfo)


def independent_local(text: str, tz: str) -> datetime:
    """``MM/DD/YY HH:MM:SS`` local wall time -> naive UTC datetime (first pass of a repeat)."""
    local = datetime.strptime(text, "%m/%d/%y %H:%M:%S").replace(tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC).replace(tzinfo=None)


def as_dt(ts: np.datetime64) -> datetime:
    return ts.astype("datetime64[us]").astype(datetime)


# --------------------------------------------------------------------------------------------
# corpus files


def test_corpus_heart_rate_matches_independent_reading() -> None:
    path = corpus_file("heart_rate-1995-06-24.json")
    tz = "Europe/Amsterdam"
    items = json.loads(path.read_text())
    want_t = [independent_local(it["dateTime"], tz) for it in items]
    want_b = [float(it["value"]["bpm"]) for it in items]

    rec = fitbit.read(path.open("rb"), path=str(path), ctx=ReadContext(tz))
    assert (rec.format, rec.kind, rec.sensor) == ("fitbit", "allday", "optical")
    assert len(rec.hr) == len(items) == 201
    assert [as_dt(t) for t in rec.hr.ts] == want_t
    assert rec.hr.bpm.tolist() == want_b
    # hand-checked: 06/24/95 16:00:10 CEST (UTC+2) = 14:00:10 UTC, 70 bpm; last 16:31:07, 80 bpm
    assert rec.hr.ts[0] == utc_us("1995-06-24T14:00:10")
    assert rec.hr.ts[-1] == utc_us("1995-06-24T14:31:07")
    assert (rec.hr.bpm[0], rec.hr.bpm[-1]) == (70.0, 80.0)
    assert rec.meta["confidence_counts"] == "0: 4, 1: 48, 2: 140, 3: 9"
    assert rec.warnings == []


def test_corpus_steps_and_calories() -> None:
    tz = "Europe/Amsterdam"
    for name, kind, n, total in (
        ("steps-1995-06-23_Fitbit.json", "steps", 34, 607.0),  # GGIRread's test: 607 steps
        ("calories-1995-06-23_Fitbit.json", fitbit.KIND_ENERGY_TOTAL, 47, 69.56),
    ):
        path = corpus_file(name)
        items = json.loads(path.read_text())
        rec = fitbit.read(path.open("rb"), path=str(path), ctx=ReadContext(tz))
        assert len(rec.hr) == 0 and len(rec.vendor) == 1
        vs = rec.vendor[0]
        assert (vs.kind, len(vs.value)) == (kind, n) and len(items) == n
        assert vs.value.sum() == pytest.approx(total)
        assert vs.value.tolist() == [float(it["value"]) for it in items]
        assert [as_dt(t) for t in vs.start] == [
            independent_local(it["dateTime"], tz) for it in items
        ]
        assert vs.start[0] == utc_us("1995-06-24T14:00:00")
        assert np.all(vs.duration_s == 60.0)


def test_corpus_sleep_is_refused_as_not_importable() -> None:
    path = corpus_file("sleep-1995-06-23_Fitbit.json")
    data = path.read_bytes()
    assert fitbit.detect(data[:4096])
    e = error(data, "sleep-1995-06-23_Fitbit.json")
    # an import reports these as skipped, in a folder or an archive alike
    assert isinstance(e, NothingToImport)
    assert "sleep" in e.reason
    with pytest.raises(NothingToImport):
        read_recording(io.BytesIO(data), path="s.json", ctx=LONDON)


def test_corpus_files_are_detected_as_fitbit_only() -> None:
    for path in sorted(FITBIT.glob("*.json")) or [corpus_file("missing")]:
        head = path.read_bytes()[:4096]
        assert fitbit.detect(head), path.name
        assert not polar.detect(head), path.name


def test_corpus_through_registry() -> None:
    path = corpus_file("heart_rate-1995-06-24.json")
    fmt, rec = read_recording(path.open("rb"), path=str(path), ctx=ReadContext("UTC"))
    assert fmt == "fitbit" and len(rec.hr) == 201
    assert rec.hr.ts[0] == utc_us("1995-06-24T16:00:10")  # UTC zone: wall time = UTC


# --------------------------------------------------------------------------------------------
# time placement


def test_no_timezone_is_an_error() -> None:
    e = error(hr_json([("05/01/24 07:00:07", 60)]), ctx=ReadContext())
    assert e.reason == (
        "Fitbit times are local without a zone; give the participant a timezone or --timezone"
    )


def test_spring_forward_london() -> None:
    # 2024-03-31 01:00 GMT -> 02:00 BST: 01:00-01:59 local does not exist
    wall = ["00:58:00", "00:59:50", "01:00:00", "01:30:00", "02:00:00", "02:00:05", "23:59:59"]
    rec = read(hr_json([(f"03/31/24 {w}", 60 + i) for i, w in enumerate(wall)]))
    got = rec.hr.ts.astype(str).tolist()
    assert got == [
        "2024-03-31T00:58:00.000000",
        "2024-03-31T00:59:50.000000",
        "2024-03-31T01:00:00.000000",  # 02:00 BST
        "2024-03-31T01:00:05.000000",
        "2024-03-31T22:59:59.000000",
    ]
    assert rec.hr.bpm.tolist() == [60, 61, 64, 65, 66]
    assert len(rec.warnings) == 1 and rec.warnings[0].startswith("2 heart-rate values")
    days = local_days(rec.hr.ts.astype(np.int64), "Europe/London").astype(str)
    assert set(days.tolist()) == {"2024-03-31"}
    # independent: zoneinfo agrees on every kept value
    kept = [w for w in wall if not w.startswith("01:")]
    assert [as_dt(t) for t in rec.hr.ts] == [
        independent_local(f"03/31/24 {w}", "Europe/London") for w in kept
    ]


def test_fall_back_london() -> None:
    # 2024-10-27 02:00 BST -> 01:00 GMT: 01:00-01:59 local happens twice, told apart by order
    wall = ["00:30:00", "01:15:00", "01:45:00", "01:05:00", "01:50:00", "02:10:00", "23:59:59"]
    rec = read(hr_json([(f"10/27/24 {w}", 70) for w in wall]))
    assert rec.hr.ts.astype(str).tolist() == [
        "2024-10-26T23:30:00.000000",
        "2024-10-27T00:15:00.000000",
        "2024-10-27T00:45:00.000000",
        "2024-10-27T01:05:00.000000",
        "2024-10-27T01:50:00.000000",
        "2024-10-27T02:10:00.000000",
        "2024-10-27T23:59:59.000000",
    ]
    assert np.all(np.diff(rec.hr.ts.astype(np.int64)) > 0)
    days = local_days(rec.hr.ts.astype(np.int64), "Europe/London").astype(str)
    assert set(days.tolist()) == {"2024-10-27"}  # a 25-hour local day
    assert any("repeated" in w for w in rec.warnings)
    # independent: first pass is fold=0 (BST), second pass fold=1 (GMT)
    z = ZoneInfo("Europe/London")
    second = datetime(2024, 10, 27, 1, 5, tzinfo=z).replace(fold=1)
    assert as_dt(rec.hr.ts[3]) == second.astimezone(UTC).replace(tzinfo=None)


def test_json_times_as_utc_option() -> None:
    data = hr_json([("05/01/24 07:00:07", 60), ("05/01/24 07:00:22", 61)])
    ctx = ReadContext(None, {"fitbit_json_time": "utc"})
    rec = read(data, ctx=ctx)
    assert rec.hr.ts[0] == utc_us("2024-05-01T07:00:07")
    assert rec.meta["time_basis"].startswith("utc")
    with pytest.raises(InputError):
        read(data, ctx=ReadContext("UTC", {"fitbit_json_time": "gmt"}))


def test_two_digit_years() -> None:
    rec = read(
        hr_json([("01/01/69 00:00:00", 60), ("01/01/70 00:00:00", 61), ("12/31/99 00:00:00", 62)]),
        ctx=ReadContext("UTC"),
    )
    assert rec.hr.ts.astype(str).tolist() == [
        "2069-01-01T00:00:00.000000",  # 00-69 -> 20xx (Python's %y would say 1969)
        "1970-01-01T00:00:00.000000",
        "1999-12-31T00:00:00.000000",
    ]


# --------------------------------------------------------------------------------------------
# day values and other series


def day_json(entries: list[tuple[str, Any]]) -> bytes:
    return json.dumps([{"dateTime": t, "value": v} for t, v in entries], indent=2).encode()


def test_active_minutes_are_local_days() -> None:
    data = day_json(
        [
            ("03/30/24 00:00:00", "10"),
            ("03/31/24 00:00:00", "20"),
            ("04/01/24 00:00:00", "30"),
            ("10/27/24 00:00:00", "40"),
        ]
    )
    for name, kind in (
        ("very_active_minutes-2024-03-30.json", "active_minutes_vigorous"),
        ("moderately_active_minutes-2024-03-30.json", "active_minutes_moderate"),
        ("lightly_active_minutes-2024-03-30.json", "active_minutes_light"),
    ):
        rec = read(data, name)
        (vs,) = rec.vendor
        assert vs.kind == kind and vs.unit == "min"
        assert vs.value.tolist() == [10, 20, 30, 40]
        assert vs.start.astype(str).tolist() == [
            "2024-03-30T00:00:00.000000",
            "2024-03-31T00:00:00.000000",
            "2024-03-31T23:00:00.000000",  # BST midnight
            "2024-10-26T23:00:00.000000",
        ]
        assert vs.duration_s.tolist() == [86400, 82800, 86400, 90000]  # 24, 23, 24, 25 h
    with pytest.raises(InputError) as e:
        read(data, "very_active_minutes-2024-03-30.json", ctx=ReadContext())
    assert "local calendar days" in e.value.reason


def test_resting_heart_rate() -> None:
    data = day_json(
        [
            ("06/01/24 00:00:00", {"date": "06/01/24", "value": 61.25, "error": 7.1}),
            ("06/02/24 00:00:00", {"date": "06/02/24", "value": 0, "error": 0}),
            ("06/03/24 00:00:00", {"date": None, "value": 59.5, "error": 6.0}),
        ]
    )
    rec = read(data, "resting_heart_rate-2024-06-01.json")
    (vs,) = rec.vendor
    assert vs.kind == "resting_hr_bpm" and vs.value.tolist() == [61.25, 59.5]
    assert vs.start.astype(str).tolist() == [
        "2024-05-31T23:00:00.000000",
        "2024-06-02T23:00:00.000000",
    ]
    assert "1 day(s) without a resting heart-rate estimate" in rec.warnings[0]


@pytest.mark.parametrize(
    "name", ["sedentary_minutes-2024-01-01.json", "altitude-2024-01-01.json", "renamed.json"]
)
def test_series_not_stored_are_skippable(name: str) -> None:
    e = error(day_json([("01/01/24 00:00:00", "5")]), name)
    assert isinstance(e, NothingToImport)


def test_heart_rate_recognised_by_content_whatever_the_name() -> None:
    rec = read(hr_json([("05/01/24 07:00:07", 60)]), "export.json")
    assert len(rec.hr) == 1


# --------------------------------------------------------------------------------------------
# Google Takeout CSVs (UTC stamps)


def test_takeout_heart_rate_csv() -> None:
    text = (
        "timestamp,beats per minute,data source\n"
        "2024-10-27T00:00:04Z,65.0,Pixel Watch 2\n"
        "2024-10-27T00:00:09Z,62.0,Pixel Watch 2\n"
        "2024-10-27T01:15:09.096319Z,70,Pixel Watch 2\n"
    )
    data = text.encode()
    assert fitbit.detect(data)
    rec = read(data, "Takeout/Fitbit/Physical Activity_GoogleData/heart_rate_2024-10-27.csv")
    assert rec.hr.ts.astype(str).tolist() == [
        "2024-10-27T00:00:04.000000",
        "2024-10-27T00:00:09.000000",
        "2024-10-27T01:15:09.096319",
    ]
    assert rec.hr.bpm.tolist() == [65.0, 62.0, 70.0]
    assert rec.device == "Pixel Watch 2" and rec.kind == "allday"


def test_takeout_csv_local_option() -> None:
    data = b"timestamp,beats per minute\n2024-07-01T12:00:00Z,65\n"
    rec = read(data, "heart_rate_2024-07-01.csv", ctx=ReadContext("Europe/London"))
    assert rec.hr.ts[0] == utc_us("2024-07-01T12:00:00")
    ctx = ReadContext("Europe/London", {"fitbit_csv_time": "local"})
    rec = read(data, "heart_rate_2024-07-01.csv", ctx=ctx)
    assert rec.hr.ts[0] == utc_us("2024-07-01T11:00:00")


def test_takeout_steps_one_series_per_source() -> None:
    data = (
        b"timestamp,steps,data source\n"
        b"2024-05-01T07:00:00Z,12,Charge 6\n"
        b"2024-05-01T07:00:30Z,40,MobileTrack\n"
        b"2024-05-01T07:01:00Z,15,Charge 6\n"
    )
    rec = read(data, "steps_2024-05-01.csv")
    by = {v.origin: v for v in rec.vendor}
    assert set(by) == {"Charge 6", "MobileTrack"}
    assert by["Charge 6"].value.tolist() == [12, 15] and by["MobileTrack"].value.tolist() == [40]
    assert all(v.kind == "steps" and np.all(v.duration_s == 60) for v in rec.vendor)


def test_takeout_daily_resting_heart_rate() -> None:
    data = b"timestamp,beats per minute,data source\n2026-05-27T00:00:00Z,51,Charge 6\n"
    rec = read(data, "Physical Activity_GoogleData/daily_resting_heart_rate.csv")
    (vs,) = rec.vendor
    assert vs.kind == "resting_hr_bpm" and vs.value.tolist() == [51]
    assert vs.start[0] == utc_us("2026-05-26T23:00:00") and vs.duration_s[0] == 86400


def test_takeout_bad_row_names_its_line() -> None:
    data = b"timestamp,steps\n2024-05-01T07:00:00Z,12\n2024-05-01T07:01:00Z,x\n"
    e = error(data, "steps_2024-05-01.csv")
    assert e.reason.startswith("line 3:")
    rec = read(data, "steps_2024-05-01.csv", salvage=True)
    assert rec.salvaged and rec.vendor[0].value.tolist() == [12]


# --------------------------------------------------------------------------------------------
# detection and damage


def test_detect_is_specific() -> None:
    assert fitbit.detect(hr_json([("05/01/24 07:00:07", 60)]))
    assert not fitbit.detect(b'{"exportVersion": "1.3", "exercises": []}')
    assert not fitbit.detect(b'[{"dateTime": "2024-05-01T07:00:07", "value": 1}]')
    assert not fitbit.detect(b"timestamp,bpm\n2024-01-01T00:00:00Z,60\n")
    assert not fitbit.detect(b"Time,HR\n")
    assert not fitbit.detect(b"")


def test_bad_entry_is_located() -> None:
    data = hr_json([("05/01/24 07:00:07", 60), ("05/01/24 07:00:22", 61)])
    items = json.loads(data)
    items.append({"dateTime": "13/45/24 07:00:37", "value": {"bpm": 62}})
    bad = json.dumps(items, indent=2).encode()
    e = error(bad)
    assert e.reason.startswith("entry 3 (line 16): dateTime '13/45/24 07:00:37'")
    assert bad[e.offset :].startswith(b"{") and bad[: e.offset].count(b"\n") == 15
    rec = read(bad, salvage=True)
    assert rec.salvaged and len(rec.hr) == 2 and rec.salvage_reason == e.reason


def test_truncated_json() -> None:
    data = hr_json([(f"05/01/24 07:00:{s:02d}", 60 + s) for s in range(10)])
    cut = data[: data.index(b'"05/01/24 07:00:07"') + 5]
    e = error(cut)
    assert "broken JSON at line" in e.reason and e.offset is not None
    rec = read(cut, salvage=True)
    assert rec.salvaged and len(rec.hr) == 7


def test_bpm_not_a_number() -> None:
    data = b'[{"dateTime": "05/01/24 07:00:07", "value": {"bpm": "fast"}}]'
    e = error(data)
    assert "bpm 'fast' is not a number" in e.reason and e.offset == 1


def outcome(data: bytes, name: str, ctx: ReadContext) -> Recording | InputError:
    try:
        return fitbit.read(io.BytesIO(data), path=name, salvage=True, ctx=ctx)
    except InputError as exc:
        assert exc.path == name
        return exc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes(data: bytes) -> None:
    for ctx in (LONDON, ReadContext()):
        assert isinstance(outcome(data, "heart_rate-2024-01-01.json", ctx), Recording | InputError)
        assert isinstance(outcome(data, "steps_2024-01-01.csv", ctx), Recording | InputError)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[at : at + draw(st.integers(1, 40))]
    return bytes(data)


_SEEDS = {
    "json": hr_json([(f"03/31/24 00:{m:02d}:00", 60 + m) for m in range(58, 60)]),
    "csv": b"timestamp,beats per minute,data source\n2024-10-27T00:00:04Z,65.0,Watch\n",
}


def _corpus_bytes() -> list[tuple[str, bytes]]:
    files = sorted(FITBIT.glob("*.json")) if FITBIT.is_dir() else []
    return [(p.name, p.read_bytes()) for p in files] or [("heart_rate-x.json", _SEEDS["json"])]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_files(data: st.DataObject) -> None:
    name, original = data.draw(st.sampled_from([*_corpus_bytes(), ("x.csv", _SEEDS["csv"])]))
    blob = data.draw(mutated(original))
    got = outcome(blob, name, ReadContext("Europe/Amsterdam"))
    assert isinstance(got, Recording | InputError)
    if isinstance(got, Recording):
        assert len(got.hr.ts) == len(got.hr.bpm)


def test_timestamps_are_exact_microseconds() -> None:
    t0 = datetime(2024, 5, 1, 7, 0, 0)
    entries = [
        ((t0 + timedelta(seconds=5 * i)).strftime("%m/%d/%y %H:%M:%S"), 60) for i in range(5)
    ]
    rec = read(hr_json(entries), ctx=ReadContext("UTC"))
    assert np.all(np.diff(rec.hr.ts.astype(np.int64)) == 5_000_000)


def test_takeout_resting_heart_rate_at_an_instant() -> None:
    # a stamp that is not midnight is an instant: its local day is taken in the zone
    data = b"timestamp,beats per minute,data source\n2026-05-27T23:30:00Z,51,Watch\n"
    rec = read(data, "resting_heart_rate_2026-05-27.csv")  # 00:30 BST on the 28th
    assert rec.vendor[0].start[0] == utc_us("2026-05-27T23:00:00")


def test_archive_import_skips_what_is_not_stored(tmp_path: Path, con: Any) -> None:
    import zipfile

    from actidose.pipeline import import_paths
    from tests.conftest import add_p

    add_p(con, "P1", tz="Europe/London")
    archive = tmp_path / "MyFitbitData.zip"
    with zipfile.ZipFile(archive, "w") as z:
        hr = hr_json([("05/01/24 07:00:07", 60), ("05/01/24 07:00:22", 61)])
        z.writestr("Physical Activity/heart_rate-2024-05-01.json", hr)
        z.writestr(
            "Physical Activity/steps-2024-05-01.json", day_json([("05/01/24 07:00:00", "12")])
        )
        z.writestr(
            "Physical Activity/altitude-2024-05-01.json", day_json([("05/01/24 07:00:00", "1")])
        )
        z.writestr("Sleep/sleep-2024-05-01.json", b'[{"logId": 1, "dateOfSleep": "2024-05-01"}]')
    summary = import_paths(con, [archive], "P1", recompute_after=False)
    status = {Path(f.path).name: f.status for f in summary.files}
    assert status == {
        "heart_rate-2024-05-01.json": "imported",
        "steps-2024-05-01.json": "imported",
        "altitude-2024-05-01.json": "skipped",
        "sleep-2024-05-01.json": "skipped",
    }
    assert summary.exit_code == 0
    kinds = con.execute("SELECT kind, count(*) FROM vendor_activity GROUP BY kind").fetchall()
    assert kinds == [("steps", 1)]
