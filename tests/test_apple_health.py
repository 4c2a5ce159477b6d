"""actidose.ingest.apple_health on tiny exports written in the test and on generated ones.

Expected values here are worked out by hand from the XML in each test (UTC = local - offset),
or come from an independent reading (``xml.etree.ElementTree`` + ``datetime.strptime``).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.ingest import apple_health as ah
from actidose.ingest.apple_health_writer import DTD_IOS16, write_export
from actidose.ingest.registry import detect_format, read_recording
from actidose.recording import ReadContext, Recording

HR = "HKQuantityTypeIdentifierHeartRate"
HRV = "HKQuantityTypeIdentifierHeartRateVariabilitySDNN"
Q = "HKQuantityTypeIdentifier"
WATCH = "Sam’s Apple Watch"
STRAP_APP = "Polar Beat"
WATCH_DEVICE = (
    "&lt;&lt;HKDevice: 0x3012772a0&gt;, name:Apple Watch, manufacturer:Apple Inc., "
    "model:Watch, hardware:Watch6,7, software:10.2&gt;"
)


def export(body: str, *, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> bytes:
    return (
        prolog
        + '<HealthData locale="en_US">\n <ExportDate value="2024-01-05 10:00:00 +0000"/>\n'
        + body
        + "</HealthData>\n"
    ).encode()


def record(
    rtype: str,
    start: str,
    value: str,
    *,
    end: str | None = None,
    unit: str = "count/min",
    source: str = "Sam’s Apple Watch",
    device: str | None = WATCH_DEVICE,
    inner: str = "",
) -> str:
    dev = f' device="{device}"' if device else ""
    end = end or start
    head = (
        f' <Record type="{rtype}" sourceName="{source}" sourceVersion="10.2"{dev} unit="{unit}" '
        f'creationDate="{end}" startDate="{start}" endDate="{end}" value="{value}"'
    )
    return f"{head}>\n{inner} </Record>\n" if inner else head + "/>\n"


def read(data: bytes, **kw: bool) -> Recording:
    return ah.read(io.BytesIO(data), path="export.xml", ctx=ReadContext(), **kw)


def us(text: str) -> np.datetime64:
    """A UTC instant written as ISO text, as datetime64[us]."""
    return np.datetime64(text, "us")


# --- detect ------------------------------------------------------------------------------------


def test_detect_plain_root_and_long_dtd(tmp_path: Path) -> None:
    assert ah.detect(export(""))
    path = tmp_path / "e.xml"
    write_export(path, days=1)
    head = path.read_bytes()[:4096]
    assert b"<HealthData" not in head  # the DTD is longer than the head
    assert ah.detect(head)
    assert ah.detect(b'\xef\xbb\xbf  <?xml version="1.0"?><!DOCTYPE HealthData [\n<!ELEMENT')
    assert not ah.detect(b'<?xml version="1.0"?><TrainingCenterDatabase xmlns="x">')
    assert not ah.detect(b"\x0e\x10\x00\x00.FIT")
    assert not ah.detect(b"")
    assert not ah.detect(b'<?xml version="1.0"?><!DOCTYPE gpx [')


def test_registry_finds_and_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "e.xml"
    write_export(path, days=2, seed=5)
    imp = detect_format(path.read_bytes()[:4096])
    assert imp is not None and imp.name == "apple_health"
    with path.open("rb") as fp:
        name, rec = read_recording(fp, path=str(path))
    assert name == "apple_health" and rec.format == "apple_health" and len(rec.hr) > 500


# --- heart rate and time -----------------------------------------------------------------------


def test_heart_rate_with_offsets_changing_mid_file() -> None:
    body = (
        record(HR, "2019-01-02 07:43:12 -0800", "61")
        + record(HR, "2019-01-03 20:00:00 +0100", "72.5")  # flew to Europe
        + record(HR, "2019-01-05 01:15:00 +0530", "80")  # and on to India
        + record(HR, "2019-03-31 03:00:00 +0200", "55")  # daylight saving time
    )
    rec = read(export(body))
    assert rec.format == "apple_health" and rec.kind == "allday"
    assert rec.hr.ts.tolist() == [
        us("2019-01-02T15:43:12").item(),
        us("2019-01-03T19:00:00").item(),
        us("2019-01-04T19:45:00").item(),
        us("2019-03-31T01:00:00").item(),
    ]
    assert rec.hr.bpm.tolist() == [61.0, 72.5, 80.0, 55.0]
    assert rec.meta["utc_offsets"] == "-0800 (1); +0100 (1); +0200 (1); +0530 (1)"
    assert rec.sensor == "optical"
    assert rec.device == "Apple Watch"
    assert rec.meta["hr_sources"] == "Sam’s Apple Watch (4)"
    assert rec.warnings == []


def test_heart_rate_odd_values_and_units_are_kept_as_nan_and_counted() -> None:
    body = (
        record(HR, "2020-05-01 10:00:00 +0000", "abc")
        + record(HR, "2020-05-01 10:00:05 +0000", "1.5", unit="count/s")
        + record(HR, "2020-05-01 10:00:10 +0000", "70", unit="furlongs")
        + ' <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="x" '
        'startDate="2020-05-01 10:00:15 +0000" endDate="2020-05-01 10:00:15 +0000" value="64"/>\n'
    )
    rec = read(export(body))
    assert np.isnan(rec.hr.bpm[0]) and rec.hr.bpm[1] == 90.0 and np.isnan(rec.hr.bpm[2])
    assert rec.hr.bpm[3] == 64.0  # no unit attribute: slow path, still read
    assert len(rec.hr) == 4
    text = " | ".join(rec.warnings)
    assert "1 heart rate value(s) that are not numbers" in text
    assert "unit 'furlongs'" in text


@pytest.mark.parametrize(
    ("sources", "sensor"),
    [
        ([(WATCH, "Apple Watch")] * 3, "optical"),
        ([(STRAP_APP, "Polar H10 8A1B2C3D")] * 3 + [(WATCH, "Apple Watch")], "chest_strap"),
        ([("Wahoo", "TICKR 1234")] * 2 + [(WATCH, "Apple Watch")] * 2, "unknown"),
        ([(WATCH, "Garmin HRM-Pro")] * 2, "chest_strap"),
        ([("Some App", None)] * 2, "unknown"),
    ],
)
def test_sensor_rule(sources: list[tuple[str, str | None]], sensor: str) -> None:
    body = ""
    for i, (source, name) in enumerate(sources):
        device = f"&lt;&lt;HKDevice: 0x1&gt;, name:{name}, manufacturer:X&gt;" if name else None
        body += record(HR, f"2020-05-01 10:00:{i:02d} +0000", "100", source=source, device=device)
    rec = read(export(body))
    assert rec.sensor == sensor


# --- vendor series -----------------------------------------------------------------------------


def test_vendor_series_units_and_sources() -> None:
    day = "2021-06-01 "
    phone = "Sam’s iPhone"

    def rec_(rtype: str, start: str, end: str, value: str, unit: str, source: str = WATCH) -> str:
        return record(Q + rtype, day + start, value, end=day + end, unit=unit, source=source)

    body = (
        rec_("StepCount", "08:00:00 +0200", "08:05:00 +0200", "120", "count", phone)
        + rec_("StepCount", "08:00:30 +0200", "08:05:00 +0200", "118", "count")
        + rec_("ActiveEnergyBurned", "09:00:00 +0200", "09:01:00 +0200", "41.84", "kJ")
        + rec_("DistanceWalkingRunning", "08:00:00 +0200", "08:05:00 +0200", "0.5", "mi", phone)
        + rec_("DistanceWalkingRunning", "09:00:00 +0200", "09:05:00 +0200", "0.75", "km", phone)
        + rec_("DistanceWalkingRunning", "10:00:00 +0200", "10:05:00 +0200", "3", "furlong", phone)
        + rec_("AppleExerciseTime", "09:00:00 +0200", "09:01:00 +0200", "1", "min")
        + rec_("RestingHeartRate", "00:00:00 +0200", "23:59:00 +0200", "52", "count/min")
        + rec_("HeartRateVariabilitySDNN", "03:00:00 +0200", "03:01:00 +0200", "48.25", "ms")
        + rec_("BasalEnergyBurned", "09:00:00 +0200", "09:00:00 +0200", "12", "kcal")
    )
    rec = read(export(body))
    got = {(v.kind, v.origin): v for v in rec.vendor}
    assert sorted(got) == [
        ("distance_m", "Sam’s iPhone"),
        ("energy_active_kcal", "Sam’s Apple Watch"),
        ("exercise_minutes", "Sam’s Apple Watch"),
        ("hrv_sdnn_ms", "Sam’s Apple Watch"),
        ("resting_hr_bpm", "Sam’s Apple Watch"),
        ("steps", "Sam’s Apple Watch"),
        ("steps", "Sam’s iPhone"),
    ]
    steps = got[("steps", "Sam’s iPhone")]
    assert steps.unit == "steps" and steps.value.tolist() == [120.0]
    assert steps.start.tolist() == [us("2021-06-01T06:00:00").item()]
    assert steps.duration_s.tolist() == [300.0]
    assert got[("steps", "Sam’s Apple Watch")].duration_s.tolist() == [270.0]
    dist = got[("distance_m", "Sam’s iPhone")]
    assert dist.unit == "m"
    np.testing.assert_allclose(dist.value, [804.672, 750.0])  # 0.5 mi, 0.75 km; furlongs skipped
    energy = got[("energy_active_kcal", "Sam’s Apple Watch")]
    np.testing.assert_allclose(energy.value, [10.0])  # 41.84 kJ / 4.184
    assert got[("exercise_minutes", "Sam’s Apple Watch")].value.tolist() == [1.0]
    assert got[("resting_hr_bpm", "Sam’s Apple Watch")].value.tolist() == [52.0]
    assert got[("hrv_sdnn_ms", "Sam’s Apple Watch")].value.tolist() == [48.25]
    assert any("distance_m record(s) in unknown unit 'furlong'" in w for w in rec.warnings)
    assert len(rec.hr) == 0 and "no heart rate records in this export" in rec.warnings


# --- RR from instantaneous bpm ----------------------------------------------------------------


def hrv(start: str, end: str, beats: list[tuple[int, str]]) -> str:
    inner = "  <HeartRateVariabilityMetadataList>\n"
    for bpm, t in beats:
        inner += f'   <InstantaneousBeatsPerMinute bpm="{bpm}" time="{t}"/>\n'
    inner += "  </HeartRateVariabilityMetadataList>\n"
    return record(HRV, start, "41.2", end=end, unit="ms", inner=inner)


def test_rr_from_instantaneous_bpm() -> None:
    body = hrv(
        "2019-01-02 19:43:10 -0800",
        "2019-01-02 19:44:10 -0800",
        [(60, "7:43:12.34 PM"), (75, "7:43:13.14 PM"), (80, "7:43:13.89\u202fPM")],
    ) + hrv(
        "2019-06-03 08:00:00 +0200",
        "2019-06-03 08:01:00 +0200",
        [(50, "08:00:01,5"), (100, "08:00:02,10")],
    )
    rec = read(export(body))
    assert rec.rr.ts.tolist() == [
        us("2019-01-03T03:43:12.340").item(),
        us("2019-01-03T03:43:13.140").item(),
        us("2019-01-03T03:43:13.890").item(),
        us("2019-06-03T06:00:01.500").item(),
        us("2019-06-03T06:00:02.100").item(),
    ]
    np.testing.assert_allclose(rec.rr.rr_ms, [1000.0, 800.0, 750.0, 1200.0, 600.0])


def test_rr_list_across_local_midnight() -> None:
    body = hrv(
        "2019-01-02 23:59:50 -0800",
        "2019-01-03 00:00:50 -0800",
        [(60, "11:59:58.50 PM"), (60, "12:00:00.10 AM")],
    )
    rec = read(export(body))
    assert rec.rr.ts.tolist() == [
        us("2019-01-03T07:59:58.500").item(),
        us("2019-01-03T08:00:00.100").item(),
    ]


def test_rr_written_in_another_offset_is_moved_into_its_record() -> None:
    # the record was made in New York in summer (-0400); the phone exported in winter (-0500)
    body = hrv(
        "2019-07-01 08:00:00 -0400",
        "2019-07-01 08:01:00 -0400",
        [(60, "7:00:05.00 AM"), (60, "7:00:06.00 AM")],
    )
    rec = read(export(body))
    assert rec.rr.ts.tolist() == [
        us("2019-07-01T12:00:05").item(),
        us("2019-07-01T12:00:06").item(),
    ]
    assert any("another UTC offset" in w for w in rec.warnings)


def test_unreadable_beats_are_skipped_and_counted() -> None:
    body = hrv(
        "2019-01-02 19:43:10 -0800",
        "2019-01-02 19:44:10 -0800",
        [(60, "7:43:12.34 PM"), (0, "7:43:13.14 PM"), (70, "soon")],
    )
    rec = read(export(body))
    assert len(rec.rr) == 1
    assert any("2 instantaneous bpm value(s) or time(s) unreadable" in w for w in rec.warnings)


def test_beats_without_an_hrv_record_are_ignored() -> None:
    body = ' <InstantaneousBeatsPerMinute bpm="60" time="7:43:12.34 PM"/>\n'
    rec = read(export(body + record(HR, "2019-01-02 07:43:12 -0800", "61")))
    assert len(rec.rr) == 0 and len(rec.hr) == 1


# --- workouts ----------------------------------------------------------------------------------


def test_workouts() -> None:
    d = 'startDate="2023-05-01 18:00:00 +0200"'
    body = (
        ' <Workout workoutActivityType="HKWorkoutActivityTypeCycling" duration="3600" '
        f'durationUnit="s" sourceName="W" {d} endDate="2023-05-01 19:05:00 +0200">\n'
        '  <MetadataEntry key="HKIndoorWorkout" value="0"/>\n'
        f'  <WorkoutActivity uuid="A" {d} endDate="2023-05-01 18:30:00 +0200">\n'
        f'   <WorkoutStatistics type="{HR}" {d} endDate="2023-05-01 18:30:00 +0200" '
        'average="120" maximum="150" unit="count/min"/>\n'
        "  </WorkoutActivity>\n"
        f'  <WorkoutStatistics type="{Q}ActiveEnergyBurned" {d} '
        'endDate="2023-05-01 19:05:00 +0200" sum="500" unit="kcal"/>\n'
        f'  <WorkoutStatistics type="{HR}" {d} endDate="2023-05-01 19:05:00 +0200" '
        'average="131.5" minimum="90" maximum="171" unit="count/min"/>\n'
        " </Workout>\n"
        ' <Workout workoutActivityType="HKWorkoutActivityTypeYoga" duration="20.5" '
        'durationUnit="min" sourceName="W" startDate="2016-04-02 10:40:38 +0100" '
        'endDate="2016-04-02 11:02:22 +0100"/>\n'
        ' <Workout workoutActivityType="HKWorkoutActivityTypeHighIntensityIntervalTraining" '
        'duration="0.5" durationUnit="hr" sourceName="W" startDate="2016-04-03 10:00:00 -0700" '
        'endDate="2016-04-03 10:30:00 -0700">\n'
        f'  <WorkoutStatistics type="{HR}" startDate="2016-04-03 10:00:00 -0700" '
        'endDate="2016-04-03 10:30:00 -0700" average="150" maximum="180" unit="count/min"/>\n'
        " </Workout>\n"
    )
    acts = read(export(body)).activities
    assert [(a.sport, a.sub_sport) for a in acts] == [
        ("cycling", None),
        ("yoga", None),
        ("hiit", None),
    ]
    a = acts[0]
    assert a.start == us("2023-05-01T16:00:00") and a.end == us("2023-05-01T17:05:00")
    assert (a.timer_s, a.elapsed_s, a.avg_hr, a.max_hr) == (3600.0, 3900.0, 131.5, 171.0)
    b = acts[1]
    assert b.start == us("2016-04-02T09:40:38") and b.timer_s == 1230.0 and b.avg_hr is None
    assert b.elapsed_s == 1304.0
    c = acts[2]
    assert c.start == us("2016-04-03T17:00:00") and c.timer_s == 1800.0
    assert (c.avg_hr, c.max_hr) == (150.0, 180.0)


def test_header_meta() -> None:
    body = (
        ' <Me HKCharacteristicTypeIdentifierDateOfBirth="1984-02-29" '
        'HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale"/>\n'
    )
    rec = read(export(body))
    assert rec.meta["birth_year"] == "1984" and rec.meta["sex"] == "f"
    assert rec.meta["locale"] == "en_US"
    assert rec.meta["export_date"] == "2024-01-05 10:00:00 +0000"


# --- generated exports: the writer's truth and an independent reading -------------------------


def independent_hr(data: bytes) -> tuple[list[datetime], list[float]]:
    """HR as a straightforward reader sees it: ElementTree + strptime (no DTD here)."""
    ts, bpm = [], []
    for _, el in ET.iterparse(io.BytesIO(data), events=("end",)):
        if el.tag == "Record" and el.get("type") == HR:
            t = datetime.strptime(el.get("startDate", ""), "%Y-%m-%d %H:%M:%S %z")
            ts.append(t.astimezone(UTC).replace(tzinfo=None))
            bpm.append(float(el.get("value", "nan")))
        el.clear()
    return ts, bpm


def test_generated_export_matches_truth_and_independent_reading() -> None:
    buf = io.BytesIO()
    truth = write_export(
        buf,
        days=9,
        start=date(2023, 3, 20),
        seed=11,
        dtd="none",
        strap_workouts=0.5,
        beat_time_style="12h_nnbsp",
    )
    data = buf.getvalue()
    rec = read(data)
    ts, bpm = independent_hr(data)
    assert len(rec.hr) == len(ts) == len(truth.hr_ts) > 2000
    assert rec.hr.ts.astype("M8[us]").tolist() == ts
    assert rec.hr.bpm.tolist() == bpm
    np.testing.assert_array_equal(rec.hr.ts, truth.hr_ts)
    np.testing.assert_array_equal(rec.rr.ts, truth.rr_ts)
    np.testing.assert_allclose(rec.rr.rr_ms, truth.rr_ms)
    assert truth.utc_offsets_s == [-18000, 3600]
    assert {int(o) for o in rec.meta["utc_offsets"].replace("+", "").split()[::2]} == {-500, 100}
    for kind, (n, total) in truth.vendor.items():
        series = [v for v in rec.vendor if v.kind == kind]
        assert sum(v.value.size for v in series) == n, kind
        assert sum(float(v.value.sum()) for v in series) == pytest.approx(total), kind
    assert len(rec.activities) == len(truth.workouts) > 3
    for a, w in zip(rec.activities, truth.workouts, strict=True):
        assert (a.start, a.end, a.timer_s) == (w.start, w.end, w.duration_s)
        assert (a.avg_hr, a.max_hr) == (w.avg_hr, w.max_hr)
    assert rec.meta["hr_sources"].startswith("Alex’s Apple Watch (")
    assert "Polar Beat (" in rec.meta["hr_sources"]
    assert rec.warnings == []


@pytest.mark.parametrize("style", ["12h", "24h_comma"])
@pytest.mark.parametrize(("distance", "energy"), [("km", "kcal"), ("mi", "kJ")])
def test_generated_variants(style: str, distance: str, energy: str) -> None:
    buf = io.BytesIO()
    truth = write_export(
        buf, days=3, seed=2, beat_time_style=style, distance_unit=distance, energy_unit=energy
    )
    rec = read(buf.getvalue())
    np.testing.assert_array_equal(rec.rr.ts, truth.rr_ts)
    for kind in ("distance_m", "energy_active_kcal"):
        total = sum(float(v.value.sum()) for v in rec.vendor if v.kind == kind)
        assert total == pytest.approx(truth.vendor[kind][1], rel=1e-9)


def test_ios16_malformed_dtd_is_harmless() -> None:
    buf = io.BytesIO()
    truth = write_export(buf, days=2, seed=4, dtd="ios16")
    data = buf.getvalue()
    assert data.startswith(DTD_IOS16.encode())
    with pytest.raises(ET.ParseError):  # the fixture reproduces what broke everyone's scripts
        ET.fromstring(data)
    from lxml import etree

    with pytest.raises(etree.XMLSyntaxError, match="ATTLIST"):
        etree.fromstring(data, etree.XMLParser(load_dtd=False, resolve_entities=False))
    rec = read(data)
    np.testing.assert_array_equal(rec.hr.ts, truth.hr_ts)
    assert len(rec.activities) == len(truth.workouts)


def test_record_order_does_not_matter() -> None:
    later = record(HR, "2019-01-02 07:43:12 -0800", "61")
    earlier = record(HR, "2018-01-02 07:43:12 -0800", "62")
    rec = read(export(later + earlier))
    assert rec.hr.bpm.tolist() == [61.0, 62.0]  # as written; the pipeline sorts


def test_many_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks and flush windows give the same result as one big window."""
    buf = io.BytesIO()
    write_export(buf, days=3, seed=8)
    whole = read(buf.getvalue())
    monkeypatch.setattr(ah, "CHUNK", 997)
    monkeypatch.setattr(ah, "FLUSH", 5000)
    chunked = read(buf.getvalue())
    np.testing.assert_array_equal(chunked.hr.ts, whole.hr.ts)
    np.testing.assert_array_equal(chunked.hr.bpm, whole.hr.bpm)
    np.testing.assert_array_equal(chunked.rr.ts, whole.rr.ts)
    assert [v.value.sum() for v in chunked.vendor] == [v.value.sum() for v in whole.vendor]
    assert [a.avg_hr for a in chunked.activities] == [a.avg_hr for a in whole.activities]
    assert chunked.meta == whole.meta


# --- dates and beat times, vectorized, against datetime -------------------------------------


def strptime_utc(text: str) -> tuple[int, int]:
    t = datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")
    off = t.utcoffset()
    assert off is not None
    return int(t.timestamp()), int(off.total_seconds())


offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2199, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=0))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(instants, offsets), min_size=1, max_size=60))
def test_parse_dates_equals_strptime(items: list[tuple[datetime, timezone]]) -> None:
    texts = [d.replace(tzinfo=z).strftime("%Y-%m-%d %H:%M:%S %z") for d, z in items]
    utc, off = ah.parse_dates(texts)
    assert list(zip(utc.tolist(), off.tolist(), strict=True)) == [strptime_utc(t) for t in texts]


def test_parse_dates_layouts_and_errors() -> None:
    utc, off = ah.parse_dates(["20150616071916-0700", "2016-02-29 23:59:59 +1400"])
    assert utc.tolist() == [
        strptime_utc("2015-06-16 07:19:16 -0700")[0],
        strptime_utc("2016-02-29 23:59:59 +1400")[0],
    ]
    assert off.tolist() == [-25200, 50400]
    good = "2019-01-02 07:43:12 -0800"
    for bad in [
        "2019-02-29 00:00:00 +0000",
        "2019-13-01 00:00:00 +0000",
        "2019-04-31 00:00:00 +0000",
        "2019-01-01 24:00:00 +0000",
        "2019-01-01 00:60:00 +0000",
        "2019-01-01 00:00:60 +0000",
        "2019-01-01 00:00:00 +1500",
        "2019-01-01 00:00:00 +0060",
        "2019-01-01T00:00:00 +0000",
        "2019-01-01 00:00:00 0000",
        "",
        "2019-01-01",
        "2019-01-01 00:00:00 +0000 ",
        "２019-01-01 00:00:00 +0000",
        "1900-02-29 00:00:00 +0000",
    ]:
        with pytest.raises(ah.BadDate) as info:
            ah.parse_dates([good, good, bad, good])
        assert info.value.index == 2, bad
    assert ah.parse_dates(["2000-02-29 12:00:00 +0000"])[0].tolist() == [951825600]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 86_399_99),
            st.sampled_from(["12h", "12h_nnbsp", "24h_dot", "24h_comma", "12h_dots", "plain"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_parse_beat_times_equals_a_plain_reading(items: list[tuple[int, str]]) -> None:
    texts, want = [], []
    for cs, style in items:
        sec, frac = divmod(cs, 100)
        h, rem = divmod(sec, 3600)
        m, s = divmod(rem, 60)
        h12 = h % 12 or 12
        ampm = "PM" if h >= 12 else "AM"
        texts.append(
            {
                "12h": f"{h12}:{m:02d}:{s:02d}.{frac:02d} {ampm}",
                "12h_nnbsp": f"{h12}:{m:02d}:{s:02d}.{frac:02d}\u202f{ampm}",
                "24h_dot": f"{h}:{m:02d}:{s:02d}.{frac:02d}",
                "24h_comma": f"{h:02d}:{m:02d}:{s:02d},{frac:02d}",
                "12h_dots": f"{h12}:{m:02d}:{s:02d}.{frac:02d} {ampm[0].lower()}.m.",
                "plain": f"{h:02d}:{m:02d}:{s:02d}",
            }[style]
        )
        want.append(sec * 1_000_000 + (frac * 10_000 if style != "plain" else 0))
    sod, ok = ah.parse_beat_times(texts)
    assert ok.all(), [t for t, k in zip(texts, ok, strict=True) if not k]
    assert sod.tolist() == want


time_like = st.text(alphabet="0123456789:., APMapm\u202f\xa0x", min_size=0, max_size=16)
typical = st.sampled_from(["7:43:12.34 PM", "10:43:12.34 AM", "19:43:12,34", "7:43:12.34\u202fpm"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(time_like, typical), min_size=1, max_size=30))
def test_beat_time_fast_path_agrees_with_the_general_reading(texts: list[str]) -> None:
    """Rows of one width are read by the layout of the first one; whatever the mix, the result
    is the character-by-character reading's."""
    fast_sod, fast_ok = ah.parse_beat_times(texts)
    slow_sod, slow_ok = ah._beat_general(texts)
    assert fast_ok.tolist() == slow_ok.tolist()
    assert fast_sod.tolist() == slow_sod.tolist()
