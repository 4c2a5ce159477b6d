"""The FIT writer produces valid FIT: fitdecode (an independent decoder) reads back what we wrote,
with CRCs checked and strict error handling."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import fitdecode
import numpy as np
import pytest

from actidose.ingest import fit_writer as fw

T0 = np.datetime64("2024-03-01T08:00:00", "s")


def seconds(n: int, start: np.datetime64 = T0, step: int = 1) -> np.ndarray:
    return start + (np.arange(n) * step).astype("timedelta64[s]")


def decode(data: bytes) -> list[Any]:
    """All frames, strictly: bad CRCs and malformed definitions raise."""
    with fitdecode.FitReader(
        io.BytesIO(data),
        check_crc=fitdecode.CrcCheck.RAISE,
        error_handling=fitdecode.ErrorHandling.RAISE,
    ) as reader:
        return list(reader)


def messages(data: bytes, name: str) -> list[Any]:
    return [f for f in decode(data) if isinstance(f, fitdecode.FitDataMessage) and f.name == name]


def utc(t: np.datetime64) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(t.astype("datetime64[s]").astype(np.int64)), dt.UTC)


def test_crc_matches_the_sdk_nibble_algorithm() -> None:
    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 13, 1000):
        data = rng.bytes(n)
        if n:
            assert fw.fit_crc16(data) == fitdecode.utils.compute_crc(data)
        else:
            assert fw.fit_crc16(data) == 0


def test_header_is_14_bytes_with_header_crc() -> None:
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    data = w.to_bytes()
    assert data[0] == 14 and data[8:12] == b".FIT"
    assert int.from_bytes(data[4:8], "little") == len(data) - 16
    assert int.from_bytes(data[12:14], "little") == fw.fit_crc16(data[:12])
    header = decode(data)[0]
    assert isinstance(header, fitdecode.FitHeader) and header.crc_matched


def test_activity_messages_read_back() -> None:
    ts = seconds(300)
    hr = np.linspace(90, 170, 300)
    hr[10] = np.nan
    w = fw.FitWriter()
    w.add_file_id(type=4, manufacturer=1, product=2697, serial=3_900_000_123, time_created=ts[0])
    w.add_device_info(ts[0], serial=3_900_000_123, software_version=12.5)
    w.add_event(ts[0], event=0, event_type=0)
    w.add_records(ts, hr, distance_m=np.arange(300) * 3.0, speed_mps=np.full(300, 3.0))
    w.add_event(ts[-1], event=0, event_type=4)
    w.add_lap(ts[0], ts[-1], avg_hr=130, max_hr=170)
    w.add_session(ts[0], ts[-1], "cycling", "road", timer_s=250.5, avg_hr=130, max_hr=170)
    w.add_activity(ts[-1], local_offset_s=-5 * 3600)
    data = w.to_bytes()

    (fid,) = messages(data, "file_id")
    assert fid.get_value("type") == "activity"
    assert fid.get_value("manufacturer") == "garmin"
    assert fid.get_value("product") == "fenix5"
    assert fid.get_value("serial_number") == 3_900_000_123
    assert fid.get_value("time_created") == utc(ts[0])
    (dev,) = messages(data, "device_info")
    assert dev.get_value("device_index") == "creator"
    assert dev.get_value("software_version") == 12.5

    recs = messages(data, "record")
    assert len(recs) == 300
    assert [r.get_value("timestamp") for r in recs] == [utc(t) for t in ts]
    got = [r.get_value("heart_rate") for r in recs]
    assert got[10] is None  # 255 = invalid
    want = np.rint(hr).astype(object)
    want[10] = None
    assert got == list(want)
    assert recs[100].get_value("distance") == 300.0
    assert recs[100].get_value("speed") == 3.0

    (ses,) = messages(data, "session")
    assert ses.get_value("start_time") == utc(ts[0])
    assert ses.get_value("timestamp") == utc(ts[-1])
    assert ses.get_value("total_elapsed_time") == 299.0
    assert ses.get_value("total_timer_time") == 250.5
    assert ses.get_value("sport") == "cycling"
    assert ses.get_value("sub_sport") == "road"
    assert ses.get_value("avg_heart_rate") == 130
    assert ses.get_value("max_heart_rate") == 170
    (lap,) = messages(data, "lap")
    assert lap.get_value("max_heart_rate") == 170
    (act,) = messages(data, "activity")
    local = act.get_raw_value("local_timestamp")
    assert local - act.get_raw_value("timestamp") == -5 * 3600
    assert act.get_value("num_sessions") == 1


def test_compressed_timestamp_headers() -> None:
    # gaps of 0, 1, 31 (compressible) and 32, 100 (not) seconds
    steps = np.array([0, 1, 1, 31, 32, 1, 100, 5, 0, 2] * 30)
    ts = T0 + np.cumsum(steps).astype("timedelta64[s]")
    hr = 100 + np.arange(ts.size) % 60
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=ts[0])
    w.add_records(ts, hr, compressed_timestamps=True)
    recs = messages(w.to_bytes(), "record")
    assert [r.get_value("timestamp") for r in recs] == [utc(t) for t in ts]
    assert [r.get_value("heart_rate") for r in recs] == list(hr)
    compressed = np.array([r.time_offset is not None for r in recs])
    expect = np.r_[False, (np.diff(ts.astype(np.int64)) < 32)]
    assert np.array_equal(compressed, expect)
    assert compressed.sum() > 200


def test_monitoring_timestamp16_and_full_timestamps() -> None:
    ts = seconds(200, step=60)
    w = fw.FitWriter()
    w.add_file_id(type=32, serial=1, time_created=ts[0])
    w.add_monitoring_info(ts[0], local_offset_s=3600)
    w.add_monitoring(ts, 50 + np.arange(200) % 40, full_every_s=3600)
    data = w.to_bytes()
    (fid,) = messages(data, "file_id")
    assert fid.get_value("type") == "monitoring_b"
    mons = messages(data, "monitoring")
    assert len(mons) == 200
    full = [m for m in mons if m.has_field("timestamp")]
    assert 3 <= len(full) <= 5  # one per hour of the 200 minutes
    fit_s = ts.astype(np.int64) - fw.FIT_EPOCH_UNIX_S
    for m, t in zip(mons, fit_s, strict=True):
        if m.has_field("timestamp_16"):
            assert m.get_value("timestamp_16") == t & 0xFFFF
        else:
            assert m.get_raw_value("timestamp") == t
    assert [m.get_value("heart_rate") for m in mons] == list(50 + np.arange(200) % 40)
    (info,) = messages(data, "monitoring_info")
    assert info.get_raw_value("local_timestamp") - info.get_raw_value("timestamp") == 3600


@pytest.mark.parametrize("packed", [True, False])
def test_hr_messages(packed: bool) -> None:
    rng = np.random.default_rng(3)
    t = np.datetime64("2024-03-01T08:00:00.250000", "us") + np.cumsum(
        np.r_[0, rng.integers(300_000, 900_000, 99)]
    ).astype("timedelta64[us]")
    bpm = 120 + np.arange(100) % 30
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    w.add_hr_messages(t, bpm, packed=packed, event_base=1000)
    hrs = messages(w.to_bytes(), "hr")
    anchor = hrs[0]
    assert anchor.get_raw_value("timestamp") == int(T0.astype(np.int64)) - fw.FIT_EPOCH_UNIX_S
    assert anchor.get_raw_value("fractional_timestamp") == 8192  # 0.25 s * 32768
    assert anchor.get_raw_value("event_timestamp") == 1000
    assert anchor.get_value("filtered_bpm") == 120
    beats: list[int] = [anchor.get_value("filtered_bpm")]
    for m in hrs[1:]:
        v = m.get_value("filtered_bpm")
        beats.extend(v if isinstance(v, tuple) else [v])
        if packed:
            assert m.has_field("event_timestamp_12")
        else:
            raw = [f.raw_value for f in m.fields if f.name == "event_timestamp"]
            assert len(raw) == 1 and len(raw[0]) == len(v)
    assert beats == list(bpm)


def test_developer_fields_and_power_on_relative_times() -> None:
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=1000)  # raw FIT ints: power-on-relative
    power = w.add_developer_field("Power", base_type="uint16", units="W")
    w.add_timestamp_correlation(T0, system_timestamp=1000)
    w.add_records(np.arange(1000, 1010), np.full(10, 140.0), developer={power: np.arange(10)})
    data = w.to_bytes()
    recs = messages(data, "record")
    assert [r.get_value("timestamp") for r in recs] == list(range(1000, 1010))  # < 0x10000000
    assert [r.get_value("Power") for r in recs] == list(range(10))
    (corr,) = messages(data, "timestamp_correlation")
    assert corr.get_value("system_timestamp") == 1000


def test_chained_files_decode_as_two_parts() -> None:
    a, b = fw.FitWriter(), fw.FitWriter()
    for w, start in ((a, T0), (b, T0 + np.timedelta64(3600, "s"))):
        w.add_file_id(serial=1, time_created=start)
        w.add_records(seconds(10, start), np.full(10, 100.0))
    frames = decode(a.to_bytes() + b.to_bytes())
    assert sum(isinstance(f, fitdecode.FitHeader) for f in frames) == 2
    assert sum(isinstance(f, fitdecode.FitCRC) and f.matched for f in frames) == 2


def test_convenience_writers(tmp_path: Any) -> None:
    ts = seconds(120)
    path = tmp_path / "a.fit"
    fw.write_activity_fit(
        path,
        ts,
        np.full(120, 150.0),
        sport="running",
        utc_offset_s=7200,
        compressed_timestamps=True,
    )
    data = path.read_bytes()
    assert len(messages(data, "record")) == 120
    assert messages(data, "session")[0].get_value("avg_heart_rate") == 150
    path = tmp_path / "m.fit"
    fw.write_monitoring_fit(path, seconds(60, step=60), np.full(60, 60.0))
    assert len(messages(path.read_bytes(), "monitoring")) == 60


def test_writer_rejects_what_fit_cannot_hold() -> None:
    w = fw.FitWriter()
    with pytest.raises(ValueError):
        w.add_records(seconds(2), [300, 100])
    with pytest.raises(ValueError):
        w.add_records(np.array(["1980-01-01T00:00:00"], "datetime64[s]"), [100])
    with pytest.raises(ValueError):
        fw.fit_seconds(dt.datetime(2024, 1, 1))  # naive
    with pytest.raises(ValueError):
        w.add_session(T0, T0, sport="quidditch")


def test_hrv_and_beat_intervals_messages() -> None:
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=T0)
    w.add_records(seconds(1), [80.0])
    w.add_hrv([812, 790, 805, 799, 801, 777, 65534])
    w.add_hrv([1000], per_message=1)
    w.add_beat_intervals(T0 + np.timedelta64(5, "s"), [400, 410, 420], timestamp_ms=123)
    data = w.to_bytes()
    hrvs = messages(data, "hrv")
    assert [m.get_raw_value("time") for m in hrvs] == [
        (812, 790, 805, 799, 801),
        (777, 65534, None, None, None),  # 0xFFFF padding is fitdecode's None
        1000,
    ]
    assert hrvs[0].get_value("time")[0] == pytest.approx(0.812)  # scale 1000: seconds
    assert not any(m.has_field("timestamp") for m in hrvs)
    (bi,) = messages(data, "beat_intervals")
    assert bi.get_value("timestamp") == utc(T0 + np.timedelta64(5, "s"))
    assert bi.get_value("timestamp_ms") == 123 and bi.get_value("time") == (400, 410, 420)


def test_monitoring_activity_fields_and_hr_data() -> None:
    ts = seconds(4, step=900)
    w = fw.FitWriter()
    w.add_file_id(type=32, serial=1, time_created=ts[0])
    w.add_device_info(ts[0], device_index=1, source_type="antplus", device_type=120)
    w.add_monitoring_info(ts[0], local_offset_s=3600, resting_metabolic_rate=1650)
    w.add_monitoring(
        ts,
        activity_type="walking",
        cycles=[10, 20, 30, np.nan],
        active_calories=[1, 2, 3, 4],
        distance_m=[7.5, 15, 22.5, 30],
        moderate_minutes=0,
        vigorous_minutes=[0, 1, 2, 3],
    )
    w.add_monitoring(ts[:2], [60, 61], activity_type=1, cycles=[5, 6])
    w.add_monitoring_hr_data(ts[3], resting_hr=55, current_day_resting_hr=52)
    data = w.to_bytes()
    mons = messages(data, "monitoring")
    assert len(mons) == 6
    walk = mons[:4]
    assert [m.get_value("activity_type") for m in walk] == ["walking"] * 4
    # cycles is read as its subfield steps for walking/running (raw value, no scale)
    assert [m.get_value("steps") for m in walk] == [10, 20, 30, None]
    assert [m.get_value("active_calories") for m in walk] == [1, 2, 3, 4]
    assert [m.get_value("distance") for m in walk] == [7.5, 15, 22.5, 30]
    assert [m.get_value("moderate_activity_minutes") for m in walk] == [0] * 4
    assert [m.get_value("vigorous_activity_minutes") for m in walk] == [0, 1, 2, 3]
    assert not any(m.has_field("heart_rate") for m in walk)
    assert walk[0].has_field("timestamp") and walk[1].has_field("timestamp_16")
    run = mons[4:]
    assert [
        (m.get_value("activity_type"), m.get_value("steps"), m.get_value("heart_rate")) for m in run
    ] == [("running", 5, 60), ("running", 6, 61)]
    (hrd,) = messages(data, "monitoring_hr_data")
    assert hrd.get_value("resting_heart_rate") == 55
    assert hrd.get_value("current_day_resting_heart_rate") == 52
    (info,) = messages(data, "monitoring_info")
    assert info.get_value("resting_metabolic_rate") == 1650
    (dev,) = messages(data, "device_info")
    assert dev.get_value("source_type") == "antplus"
    assert dev.get_value("antplus_device_type") == "heart_rate"


def test_writer_rejects_bad_rr_and_monitoring_values() -> None:
    w = fw.FitWriter()
    with pytest.raises(ValueError):
        w.add_hrv([800, 65535])  # 0xFFFF is the invalid marker
    with pytest.raises(ValueError):
        w.add_hrv([800.5])
    with pytest.raises(ValueError):
        w.add_beat_intervals(T0, [])
    with pytest.raises(ValueError):
        w.add_monitoring(seconds(2))  # nothing to write
    with pytest.raises(ValueError):
        w.add_monitoring(seconds(2), active_calories=[1, 70000])
    with pytest.raises(ValueError):
        w.add_monitoring(seconds(2), activity_type="flying", cycles=[1, 2])
