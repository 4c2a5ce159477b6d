"""RR intervals, vendor activity series and the HR sensor kind, read back by actidose.ingest.fit
from files written by actidose.ingest.fit_writer (known truth)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actidose.ingest import fit
from actidose.ingest import fit_writer as fw
from actidose.recording import Recording, VendorSeries

T0 = np.datetime64("2024-03-01T08:00:00", "s")
HRV_WARNING = "RR beat times reconstructed"


def read(data: bytes, **kw: bool) -> Recording:
    return fit.read(io.BytesIO(data), path="mem.fit", **kw)


def at(seconds: float, start: np.datetime64 = T0) -> np.datetime64:
    return start.astype("datetime64[us]") + np.timedelta64(round(seconds * 1e6), "us")


def vendor(rec: Recording, kind: str) -> VendorSeries:
    (v,) = [v for v in rec.vendor if v.kind == kind]
    return v


def rows(v: VendorSeries) -> list[tuple[str, float, float]]:
    """(start, duration, value) rows, sorted."""
    return sorted(
        (str(s)[:19], float(d), float(x))
        for s, d, x in zip(v.start, v.duration_s, v.value, strict=True)
    )


# --------------------------------------------------------------------------------------------
# RR intervals


def test_hrv_beats_accumulate_from_the_preceding_record_or_event() -> None:
    """The FIT SDK rule: previous record/event timestamp + the RR intervals since it."""
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    w.add_event(T0)  # timer start
    w.add_records(np.array([T0]), [70.0])
    w.add_hrv([600, 700])
    w.add_hrv([800])  # no record in between: the sum goes on
    w.add_records(np.array([T0 + 3]), [72.0])
    w.add_hrv([500])
    w.add_event(T0 + 3, event_type=4)  # same second as the record: the sum goes on
    w.add_hrv([450])
    w.add_event(T0 + 5, event=0, event_type=0)
    w.add_hrv([1000])
    rec = read(w.to_bytes())
    assert np.array_equal(rec.rr.rr_ms, [600.0, 700, 800, 500, 450, 1000])
    assert rec.rr.rr_ms.dtype == np.float64
    expect = [at(0.6), at(1.3), at(2.1), at(3.5), at(3.95), at(6.0)]
    assert list(rec.rr.ts) == expect
    assert any(w.startswith(HRV_WARNING) for w in rec.warnings)
    assert rec.meta["rr_from_hrv"] == "6" and rec.meta["rr_out_of_order"] == "0"
    assert len(rec.hr) == 2


def test_hrv_round_trip_of_a_realistic_recording() -> None:
    """1 Hz records, one hrv message a second with the beats of that second (as Garmin devices
    write them): every RR value exact; each beat is placed late by the time from the last beat
    before its record to the record, less than the RR interval spanning the record."""
    rng = np.random.default_rng(7)
    rr = rng.integers(380, 1300, 900)
    beat_ms = 250 + np.cumsum(rr)  # true beat instants, ms after T0
    n_s = int(beat_ms[-1] // 1000) + 1
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    w.add_event(T0)
    k = 0
    spanning = np.zeros(rr.size)  # the RR interval spanning each beat's record
    for s in range(n_s):
        w.add_records(np.array([T0 + s]), [100.0])
        j = int(np.searchsorted(beat_ms, (s + 1) * 1000, side="right"))
        if j > k:
            w.add_hrv(rr[k:j])
            spanning[k:j] = rr[k]
            k = j
    rec = read(w.to_bytes())
    assert np.array_equal(rec.rr.rr_ms, rr.astype(np.float64))
    true = T0.astype("datetime64[us]") + (beat_ms * 1000).astype("timedelta64[us]")
    late_ms = (rec.rr.ts - true).astype(np.int64) / 1000
    assert late_ms.min() >= 0 and np.all(late_ms < spanning)
    assert 200 < np.median(late_ms) < 600  # about half an RR interval
    assert rec.meta["rr_out_of_order"] == str(int(np.sum(np.diff(rec.rr.ts) < np.timedelta64(0))))


def test_hrv_without_an_anchor_and_power_on_relative_times() -> None:
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    w.add_hrv([900, 910])  # nothing timestamped before: cannot be placed
    w.add_timestamp_correlation(T0, system_timestamp=5000)
    w.add_records(np.array([5000, 5001]), [60.0, 61.0])  # power-on-relative
    w.add_hrv([400])
    rec = read(w.to_bytes())
    assert list(rec.rr.ts) == [at(1.4)] and list(rec.rr.rr_ms) == [400.0]
    assert any(w.startswith("2 RR intervals without a time") for w in rec.warnings)


def test_beat_intervals_messages() -> None:
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    w.add_beat_intervals(T0, [500, 600], timestamp_ms=250)
    w.add_beat_intervals(T0 + 2, [700])
    rec = read(w.to_bytes())
    assert list(rec.rr.ts) == [at(0.75), at(1.35), at(2.7)]
    assert list(rec.rr.rr_ms) == [500.0, 600.0, 700.0]
    assert rec.meta["rr_from_beat_intervals"] == "3"
    assert any("beat_intervals" in w for w in rec.warnings)


# --------------------------------------------------------------------------------------------
# vendor series from monitoring files

DAY1 = np.datetime64("2024-03-01T21:00:00", "s")


def t(hh_mm: str) -> np.datetime64:
    return np.datetime64(f"2024-03-01T{hh_mm}:00", "s")


def monitoring_file(*, offset: int | None = 3600) -> bytes:
    """Local time UTC+1: local midnight of 2 March is 2024-03-01T23:00Z."""
    w = fw.FitWriter()
    w.add_file_id(type=32, serial=42, time_created=DAY1, product=2691)  # fr935
    if offset is not None:
        w.add_monitoring_info(DAY1, local_offset_s=offset, resting_metabolic_rate=1700)
    w.add_monitoring(DAY1 + np.arange(0, 3 * 3600, 60), 60 + np.arange(180) % 10.0)
    # accumulated per activity type; 23:00Z is local midnight: that message closes 1 March
    walk = ["22:00", "22:30", "23:00", "23:15", "23:45"]
    w.add_monitoring(
        np.array([t(x) for x in walk]),
        activity_type="walking",
        cycles=[1000, 1500, 1800, 120, 300],
        active_calories=[40, 60, 70, 5, 12],
        distance_m=[700, 1050, 1260, 84, 210],
    )
    run = ["22:10", "22:40", "23:30"]
    w.add_monitoring(
        np.array([t(x) for x in run]),
        activity_type="running",
        cycles=[510, 900, 50],
        active_calories=[30, 62, 4],
    )
    # cycling cycles are pedal turns, not steps; their calories count
    w.add_monitoring(
        np.array([t("22:05"), t("22:35")]),
        activity_type="cycling",
        cycles=[4000, 5000],
        active_calories=[100, 130],
    )
    w.add_monitoring(
        np.array([t("22:15"), t("22:45")]), moderate_minutes=[5, 10], vigorous_minutes=[np.nan, 3]
    )
    w.add_monitoring_hr_data(t("12:00"), resting_hr=56, current_day_resting_hr=55)
    w.add_monitoring_hr_data(t("22:30"), resting_hr=56, current_day_resting_hr=54)
    w.add_monitoring_hr_data(t("23:30"), resting_hr=56, current_day_resting_hr=53)
    return w.to_bytes()


def test_monitoring_steps_are_differences_within_a_local_day_and_activity_type() -> None:
    rec = read(monitoring_file())
    assert rec.kind == "allday" and rec.utc_offset_s == 3600 and len(rec.hr) == 180
    steps = vendor(rec, "steps")
    assert steps.unit == "steps" and steps.origin == "garmin fr935"
    assert rows(steps) == [
        ("2024-03-01T22:00:00", 1800, 500),  # walking
        ("2024-03-01T22:10:00", 1800, 390),  # running
        ("2024-03-01T22:30:00", 1800, 300),  # walking, closed by the 23:00Z (midnight) message
        ("2024-03-01T23:00:00", 900, 120),  # walking: new day, counted from local midnight
        ("2024-03-01T23:00:00", 1800, 50),  # running: from midnight, not from 22:40
        ("2024-03-01T23:15:00", 1800, 180),
    ]
    # never a cumulative value; per local day the sum is the day's count since the baseline
    assert not set(steps.value) & {1000, 1500, 1800, 510, 900}
    day1 = steps.start < np.datetime64("2024-03-01T23:00:00")
    assert steps.value[day1].sum() == (1800 - 1000) + (900 - 510)
    kcal = vendor(rec, "energy_active_kcal")
    assert kcal.unit == "kcal" and kcal.value.sum() == (70 - 40) + 12 + (62 - 30) + 4 + 30
    dist = vendor(rec, "distance_m")
    assert dist.unit == "m" and np.allclose(dist.value, [350, 210, 84, 126])


def test_monitoring_intensity_minutes_and_resting_hr() -> None:
    rec = read(monitoring_file())
    assert rows(vendor(rec, "active_minutes_moderate")) == [
        ("2024-03-01T22:10:00", 300, 5),  # first: the minutes just before it
        ("2024-03-01T22:15:00", 1800, 10),
    ]
    assert rows(vendor(rec, "active_minutes_vigorous")) == [("2024-03-01T22:42:00", 180, 3)]
    rhr = vendor(rec, "resting_hr_bpm")
    assert rhr.unit == "bpm"
    # one value per local day (the day's last message wins), covering the local day in UTC
    assert rows(rhr) == [("2024-02-29T23:00:00", 86400, 54), ("2024-03-01T23:00:00", 86400, 53)]
    assert rec.meta["resting_metabolic_rate_kcal_per_day"] == "1700"
    assert rec.sensor == "optical"  # a forerunner 935's own HR
    assert rec.warnings == []


def test_monitoring_without_a_utc_offset() -> None:
    rec = read(monitoring_file(offset=None))
    assert rec.utc_offset_s is None
    # day boundaries unknown: only the counts going down are taken as restarts
    walk = [
        r
        for r in rows(vendor(rec, "steps"))
        if r[0]
        in (
            "2024-03-01T22:00:00",
            "2024-03-01T22:30:00",
            "2024-03-01T23:00:00",
            "2024-03-01T23:15:00",
        )
    ]
    assert walk == [
        ("2024-03-01T22:00:00", 1800, 500),
        ("2024-03-01T22:30:00", 1800, 300),
        ("2024-03-01T23:00:00", 900, 120),
        ("2024-03-01T23:15:00", 1800, 180),
    ]
    assert not [v for v in rec.vendor if v.kind == "resting_hr_bpm"]
    assert any(w.startswith("no UTC offset") for w in rec.warnings)
    assert any(w.startswith("resting HR per day skipped") for w in rec.warnings)
    assert any("went down within a day" in w for w in rec.warnings)


def test_write_monitoring_fit_keeps_its_signature(tmp_path: Path) -> None:
    ts = T0 + np.arange(0, 3600, 60)
    fw.write_monitoring_fit(tmp_path / "m.fit", ts, np.full(ts.size, 70.0), serial=1)
    with (tmp_path / "m.fit").open("rb") as f:
        rec = fit.read(f, path="m.fit")
    assert len(rec.hr) == 60 and rec.vendor == [] and len(rec.rr) == 0
    assert rec.sensor == "optical"


# --------------------------------------------------------------------------------------------
# sensor kind

EDGE_530, FR920XT, FENIX5, HRM_PRO, OHR = 3121, 1765, 2697, 3300, 255


def activity(product: int, *devices: dict[str, Any]) -> bytes:
    ts = T0 + np.arange(30)
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0, product=product)
    w.add_device_info(T0, product=product, serial=1)
    for i, d in enumerate(devices, start=1):
        w.add_device_info(T0, device_index=i, **d)
    w.add_records(ts, np.full(30, 120.0))
    w.add_session(ts[0], ts[-1], "cycling")
    return w.to_bytes()


STRAP: dict[str, Any] = {
    "source_type": "antplus",
    "device_type": 120,
    "product": HRM_PRO,
    "serial": 9,
}


@pytest.mark.parametrize(
    ("data", "sensor"),
    [
        (activity(EDGE_530, STRAP), "chest_strap"),
        (activity(FENIX5, STRAP), "chest_strap"),  # a paired strap beats the wrist sensor
        (
            activity(EDGE_530, {"source_type": "bluetooth_low_energy", "device_type": 1}),
            "chest_strap",
        ),
        (activity(EDGE_530, {"device_type": 120, "manufacturer": 13}), "chest_strap"),  # old
        # a Garmin watch broadcasting its wrist HR (garmin_product OHR)
        (
            activity(EDGE_530, {"source_type": "antplus", "device_type": 120, "product": OHR}),
            "optical",
        ),
        (activity(65000, {"source_type": "local", "device_type": 10}), "optical"),  # whr
        (activity(FENIX5), "optical"),
        (activity(EDGE_530), None),  # a bike computer without a listed sensor
        (activity(FR920XT), None),  # a watch without an optical sensor
        (activity(EDGE_530, {"source_type": "antplus", "device_type": 11}), None),  # power
    ],
)
def test_sensor_kind(data: bytes, sensor: str | None) -> None:
    assert read(data).sensor == sensor


def test_no_heart_rate_no_sensor() -> None:
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    w.add_device_info(T0, device_index=1, **STRAP)
    w.add_session(T0, T0 + 60, "running")
    assert read(w.to_bytes()).sensor is None
