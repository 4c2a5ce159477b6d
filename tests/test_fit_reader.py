"""actidose.ingest.fit on files written by actidose.ingest.fit_writer: every FIT feature the
reader handles, with known truth."""

from __future__ import annotations

import io
from typing import BinaryIO, cast

import numpy as np
import pytest

from actidose.errors import InputError, TimeAnchorError
from actidose.ingest import fit
from actidose.ingest import fit_writer as fw
from actidose.recording import Recording

T0 = np.datetime64("2024-03-01T08:00:00", "s")


def seconds(n: int, start: np.datetime64 = T0, step: int = 1) -> np.ndarray:
    return start + (np.arange(n) * step).astype("timedelta64[s]")


def read(data: bytes, **kw: bool) -> Recording:
    return fit.read(io.BytesIO(data), path="mem.fit", **kw)


def us(ts: np.ndarray) -> np.ndarray:
    return ts.astype("datetime64[us]")


def activity(
    ts: np.ndarray,
    hr: np.ndarray,
    *,
    compressed: bool = False,
    offset: int | None = 3600,
    sport: str = "running",
) -> bytes:
    w = fw.FitWriter()
    w.add_file_id(serial=3_900_000_123, time_created=ts[0])
    w.add_device_info(ts[0], serial=3_900_000_123)
    w.add_event(ts[0])
    w.add_records(ts, hr, compressed_timestamps=compressed)
    w.add_event(ts[-1], event_type=4)
    w.add_session(ts[0], ts[-1], sport, "trail", timer_s=100.0, avg_hr=123, max_hr=180)
    w.add_activity(ts[-1], offset)
    return w.to_bytes()


def test_detect() -> None:
    data = activity(seconds(5), np.full(5, 100.0))
    assert fit.detect(data[:14]) and fit.detect(data[:12])
    assert not fit.detect(data[:11])
    assert not fit.detect(b"<?xml version='1.0'?>")
    legacy = bytes([12]) + data[1:12]
    assert fit.detect(legacy)
    assert not fit.detect(bytes([13]) + data[1:14])


@pytest.mark.parametrize("compressed", [False, True])
def test_activity_round_trip(compressed: bool) -> None:
    steps = np.r_[0, np.ones(599, int)]
    steps[[50, 51, 200]] = [3, 40, 700]  # gaps: compressible and not
    ts = T0 + np.cumsum(steps).astype("timedelta64[s]")
    hr = 60 + np.arange(600) % 150.0
    hr[[7, 300]] = np.nan  # FIT invalid (255)
    hr[8] = 0  # no skin contact: kept raw, the pipeline filters
    rec = read(activity(ts, hr, compressed=compressed))
    assert rec.format == "fit" and rec.kind == "activity"
    assert rec.hr.ts.dtype == np.dtype("datetime64[us]")
    assert np.array_equal(rec.hr.ts, us(ts))
    assert np.array_equal(rec.hr.bpm, hr, equal_nan=True)
    assert rec.utc_offset_s == 3600
    assert rec.device == "garmin fenix5" and rec.serial == "3900000123"
    (a,) = rec.activities
    assert a.start == us(ts[:1])[0] and a.end == us(ts[-1:])[0]
    assert (a.sport, a.sub_sport) == ("running", "trail")
    assert a.timer_s == 100.0 and a.elapsed_s == float((ts[-1] - ts[0]).astype(int))
    assert (a.avg_hr, a.max_hr) == (123.0, 180.0)
    assert not rec.salvaged and rec.warnings == []
    # a fenix 5 (a wrist device with an optical sensor) and no external HR sensor listed
    assert rec.sensor == "optical"


def test_repeated_timestamps_are_kept_raw() -> None:
    ts = np.array([T0, T0, T0 + np.timedelta64(1, "s")])
    rec = read(activity(ts, np.array([100.0, 101.0, 20.0])))
    assert np.array_equal(rec.hr.ts, us(ts)) and np.array_equal(rec.hr.bpm, [100, 101, 20])


def test_utc_offset_plausibility() -> None:
    ts = seconds(10)
    for offset, expect in ((-14 * 3600, -14 * 3600), (5 * 3600 + 45 * 60, 20700), (0, 0)):
        assert read(activity(ts, np.full(10, 90.0), offset=offset)).utc_offset_s == expect
    for bad in (3600 + 7, 15 * 3600, -15 * 3600):
        rec = read(activity(ts, np.full(10, 90.0), offset=bad))
        assert rec.utc_offset_s is None
        assert any("local_timestamp" in w and str(bad) in w for w in rec.warnings)
    assert read(activity(ts, np.full(10, 90.0), offset=None)).utc_offset_s is None


def test_no_session_synthesizes_one_activity() -> None:
    ts = seconds(30)
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=ts[0])
    w.add_records(ts, np.full(30, 120.0))
    rec = read(w.to_bytes())
    (a,) = rec.activities
    assert a.sport is None and a.start == us(ts[:1])[0] and a.end == us(ts[-1:])[0]
    assert any("no session" in w for w in rec.warnings)


def test_several_sessions() -> None:
    ts = seconds(100)
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=ts[0])
    w.add_records(ts, np.full(100, 120.0))
    w.add_session(ts[0], ts[49], "swimming", "open_water", message_index=0)
    w.add_session(ts[50], ts[99], "cycling", "road", message_index=1)
    w.add_activity(ts[-1], 0, num_sessions=2)
    rec = read(w.to_bytes())
    assert [(a.sport, a.sub_sport) for a in rec.activities] == [
        ("swimming", "open_water"),
        ("cycling", "road"),
    ]
    assert rec.activities[1].start == us(ts[50:51])[0]


def test_monitoring_timestamp16_across_65536_boundary() -> None:
    # FIT seconds whose low 16 bits wrap inside the file, with a full timestamp only at the start
    start = (fw.fit_seconds(T0) // 65536 + 1) * 65536 - 1800
    fit_s = start + np.arange(0, 7200, 60)
    ts = (fit_s + fw.FIT_EPOCH_UNIX_S).astype("datetime64[s]")
    hr = 55 + np.arange(fit_s.size) % 30.0
    hr[3] = np.nan
    w = fw.FitWriter()
    w.add_file_id(type=32, serial=77, time_created=ts[0])
    w.add_monitoring_info(ts[0], local_offset_s=-4 * 3600)
    w.add_monitoring(ts, hr, full_every_s=60000)
    data = w.to_bytes()
    rec = read(data)
    assert rec.kind == "allday"
    assert np.array_equal(rec.hr.ts, us(ts)) and np.array_equal(rec.hr.bpm, hr, equal_nan=True)
    assert rec.utc_offset_s == -4 * 3600
    assert rec.activities == [] and rec.serial == "77"


def test_monitoring_full_timestamp_on_any_message_updates_the_anchor() -> None:
    # 3 days of minute data; full timestamps every hour come from the monitoring messages
    # themselves; an event message's timestamp in between re-anchors too
    ts = seconds(3 * 1440, step=60)
    hr = 60 + np.arange(ts.size) % 20.0
    w = fw.FitWriter()
    w.add_file_id(type=15, serial=1, time_created=ts[0])
    w.add_monitoring(ts[:2000], hr[:2000])
    w.add_event(ts[2000])
    w.add_monitoring(ts[2000:], hr[2000:], full_every_s=50000)
    rec = read(w.to_bytes())
    assert rec.kind == "allday" and np.array_equal(rec.hr.ts, us(ts))


def test_monitoring_file_type_alone_makes_it_allday() -> None:
    w = fw.FitWriter()
    w.add_file_id(type=28, serial=1, time_created=T0)
    w.add_records(seconds(5), np.full(5, 70.0))
    rec = read(w.to_bytes())
    assert rec.kind == "allday" and rec.activities == [] and len(rec.hr) == 5


@pytest.mark.parametrize("packed", [True, False])
def test_hr_messages(packed: bool) -> None:
    rng = np.random.default_rng(11)
    gaps = rng.integers(280_000, 1_100_000, 999)
    gaps[500] = 12_000_000  # a 12 s gap: too long for 12-bit packing -> new anchor
    t = np.datetime64("2024-03-01T08:00:00.123456", "us") + np.cumsum(np.r_[0, gaps]).astype(
        "timedelta64[us]"
    )
    bpm = 90 + np.arange(1000) % 80
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=t[0].astype("datetime64[s]"))
    # strap clock near its 2**32 / 1024 s rollover
    w.add_hr_messages(t, bpm, packed=packed, event_base=0xFFFF0000)
    w.add_session(t[0].astype("datetime64[s]"), t[-1].astype("datetime64[s]"), "swimming")
    rec = read(w.to_bytes())
    assert len(rec.hr) == 1000 and np.array_equal(rec.hr.bpm, bpm)
    err_us = np.abs((rec.hr.ts - t).astype(np.int64))
    assert err_us.max() <= 600  # 1/1024 s resolution of event_timestamp
    assert rec.meta["hr_from_hr_messages"] == "1000"
    assert rec.sensor == "chest_strap"


def test_hr_messages_supersede_record_hr_nearby() -> None:
    ts = seconds(600)
    strap_t = us(ts[100:300]) + np.timedelta64(250_000, "us")
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=ts[0])
    w.add_records(ts, np.full(600, 100.0))  # wrist HR
    w.add_session(ts[0], ts[-1])
    w.add_hr_messages(strap_t, np.full(200, 150), event_base=5)  # strap HR for 100..300 s
    rec = read(w.to_bytes())
    n_rec = int(rec.meta["hr_from_records"])
    # wrist samples within 5 s of a strap beat (100.25..299.25 s) are dropped: 96..304 s
    assert n_rec == 600 - 209 and rec.meta["hr_records_superseded"] == "209"
    assert np.array_equal(rec.hr.ts[:n_rec], us(np.r_[ts[:96], ts[305:]]))
    assert np.all(rec.hr.bpm[n_rec:] == 150) and len(rec.hr) == n_rec + 200


def test_chained_files_are_all_read() -> None:
    a = activity(seconds(60), np.full(60, 110.0))
    b = activity(seconds(60, T0 + np.timedelta64(7200, "s")), np.full(60, 130.0), sport="cycling")
    rec = read(a + b)
    assert len(rec.hr) == 120 and rec.meta["fit_files"] == "2"
    assert [x.sport for x in rec.activities] == ["running", "cycling"]
    assert np.array_equal(rec.hr.bpm, np.r_[np.full(60, 110.0), np.full(60, 130.0)])


def power_on_file(*, anchor: str) -> bytes:
    """Records at power-on-relative times 1000..1599 s (raw FIT ints below 0x10000000)."""
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=1000)
    if anchor == "correlation":
        w.add_timestamp_correlation(T0, system_timestamp=990)  # T0 <-> 990 s after power-on
    w.add_records(np.arange(1000, 1600), np.full(600, 120.0))
    if anchor == "event":
        # the clock got set: the next message carries absolute time (1 s after the last record)
        w.add_event(T0 + np.timedelta64(600, "s"), event_type=4)
    w.add_session(1000, 1599, "running")
    return w.to_bytes()


def test_power_on_relative_anchored_by_timestamp_correlation() -> None:
    rec = read(power_on_file(anchor="correlation"))
    expect = us(seconds(600, T0 + np.timedelta64(10, "s")))
    assert np.array_equal(rec.hr.ts, expect)
    assert rec.activities[0].start == expect[0] and rec.activities[0].end == expect[-1]
    assert any("timestamp_correlation" in w for w in rec.warnings)


def test_power_on_relative_anchored_by_the_next_absolute_timestamp() -> None:
    rec = read(power_on_file(anchor="event"))
    expect = us(seconds(600, T0 + np.timedelta64(1, "s")))
    assert np.array_equal(rec.hr.ts, expect)
    # the session after the event is still on the power-on clock: same cycle, same offset
    assert rec.activities[0].start == expect[0] and rec.activities[0].end == expect[-1]
    assert any("nearest absolute timestamp" in w for w in rec.warnings)


def test_power_on_clock_restart_is_placed_after_the_last_absolute_time() -> None:
    ts = seconds(60)
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=ts[0])
    w.add_records(ts, np.full(60, 100.0))
    w.add_records(np.arange(5, 35), np.full(30, 90.0))  # device restarted, clock not set
    rec = read(w.to_bytes())
    restart = us(ts[-1:])[0]  # heuristic: the first relative time meets the last absolute one
    assert np.array_equal(rec.hr.ts[60:], restart + np.arange(30).astype("timedelta64[s]"))
    assert any("nearest absolute timestamp" in w for w in rec.warnings)


def test_power_on_relative_without_anchor_is_a_time_anchor_error() -> None:
    with pytest.raises(TimeAnchorError) as e:
        read(power_on_file(anchor="none"), salvage=True)
    assert e.value.path == "mem.fit" and "power-on" in e.value.reason
    assert isinstance(e.value, InputError)


def test_developer_fields_do_not_disturb() -> None:
    ts = seconds(50)
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=ts[0])
    power = w.add_developer_field("Power", base_type="uint16", units="W")
    hr_like = w.add_developer_field("heart_rate", base_type="uint8", units="bpm")
    w.add_records(ts, np.full(50, 140.0), developer={power: np.arange(50), hr_like: np.full(50, 3)})
    rec = read(w.to_bytes())
    assert np.array_equal(rec.hr.bpm, np.full(50, 140.0)) and np.array_equal(rec.hr.ts, us(ts))


def test_non_seekable_stream_and_offsets_from_the_stream_start() -> None:
    class Pipe:
        def __init__(self, data: bytes) -> None:
            self._b = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self._b.read(n)

    data = activity(seconds(20), np.full(20, 100.0))
    rec = fit.read(cast(BinaryIO, Pipe(data)), path="pipe")
    assert len(rec.hr) == 20
    with pytest.raises(InputError) as e:
        fit.read(cast(BinaryIO, Pipe(data[:-1])), path="pipe")
    assert e.value.reason == f"truncated at offset {len(data) - 1}"
