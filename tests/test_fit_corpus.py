"""actidose.ingest.fit on the real FIT files of the shared corpus (/work/shared/corpus/fit).

Each file's outcome was established by reading it (see EXPECTED): either it reads and its record
HR equals a straightforward, independent fitdecode read, or it fails with a specific reason.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
from pathlib import Path
from typing import Any

import fitdecode
import numpy as np
import pytest

from actidose.errors import InputError, TimeAnchorError
from actidose.ingest import fit
from actidose.ingest import fit_writer as fw
from actidose.recording import Recording

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FIT_DIR = CORPUS / "fit"
pytestmark = pytest.mark.skipif(not FIT_DIR.is_dir(), reason=f"corpus not found at {FIT_DIR}")

ANCHOR = "only power-on-relative timestamps, no anchor to place them in time"


class Ok:
    def __init__(
        self,
        n_hr: int,
        n_sessions: int,
        kind: str,
        utc_offset_s: int | None,
        device: str | None,
        **extra: Any,
    ) -> None:
        self.n_hr, self.n_sessions, self.kind = n_hr, n_sessions, kind
        self.utc_offset_s, self.device, self.extra = utc_offset_s, device, extra


class Fails:
    def __init__(
        self, error: type[InputError], reason: str, salvaged: tuple[int, int] | None = None
    ) -> None:
        self.error, self.reason, self.salvaged = error, reason, salvaged  # (n_hr, n_sessions)


EXPECTED: dict[str, Ok | Fails] = {
    "20170518-191602-1740899583.fit": Ok(1641, 1, "activity", 3600, "garmin vivo_active_hr"),
    "2019-02-17-062644-ELEMNT-297E-195-0.fit": Ok(
        13402, 1, "activity", 28800, "wahoo_fitness ELEMNT"
    ),
    # SDK example: 3 records with heart_rate but no timestamp at all -> nothing to place
    "DeveloperData.fit": Ok(
        0,
        0,
        "activity",
        None,
        "dynastream 9001",
        warning="3 HR samples without a timestamp skipped",
    ),
    # Forerunner 60: every timestamp is power-on-relative (~1.6e7 s); only
    # activity.local_timestamp is absolute (the same 698070063 in both files) and a local wall
    # time cannot place samples in UTC
    "antfs-dump.63.fit": Fails(TimeAnchorError, ANCHOR),
    "compressed-speed-distance.fit": Fails(TimeAnchorError, ANCHOR),
    # event.data declared uint32 with size 1: decoded as bytes, reported, the rest is intact
    "coros-pace-2-cycling-misaligned-fields.fit": Ok(
        10560,
        1,
        "activity",
        0,
        "coros COROS PACE 2",
        warning="field event.data has size 1, not a multiple of its type (uint32); "
        "decoded as bytes",
    ),
    "developer-types-sample.fit": Ok(3424, 1, "activity", None, "stryd"),
    # HRM-Tri swim: no HR in records, 11292 beats in hr messages (chained parts 2..5)
    "event_timestamp.fit": Ok(11292, 1, "activity", -14400, "garmin fr735xt", hr_messages=11292),
    "garmin-edge-500-activity.fit": Ok(10686, 1, "activity", None, "garmin edge500"),
    "garmin-edge-820-bike.fit": Ok(15, 1, "activity", -25200, "garmin edge_820"),
    "garmin-fenix-5-run.fit": Ok(21, 1, "activity", -25200, "garmin fenix5"),
    "garmin-fenix-5-walk.fit": Ok(17, 1, "activity", -25200, "garmin fenix5"),
    # wrist HR in records (5298) and strap HR in hr messages (11414); the strap wins within 5 s
    "garmin-fr935-cr.fit": Ok(
        12649, 1, "activity", 3600, "garmin fr935", hr_messages=11414, superseded=4063
    ),
    # the file ends where its CRC should be; no session message
    "nick.fit": Fails(InputError, "truncated at offset 403456", salvaged=(14391, 1)),
    # triathlon: 5 sessions, 4 chained parts, swim HR from the strap's hr messages
    "sample_mulitple_header.fit": Ok(
        10521, 5, "activity", 7200, "garmin fr920xt", hr_messages=9267, superseded=176
    ),
    "slither-running.fit": Ok(718, 1, "activity", 3600, "garmin fr45"),
    # records of an undefined local message (the session came first, so salvage keeps it)
    "strava-android-app-201.10-b1218918.fit": Fails(
        InputError, "corrupt data at offset 7471: local message 11 not defined", salvaged=(0, 1)
    ),
}


def corpus_files() -> list[str]:
    return sorted(p.name for p in FIT_DIR.glob("*.fit")) if FIT_DIR.is_dir() else []


@functools.cache
def read(name: str, *, salvage: bool = False) -> Recording:
    """Read a corpus file (cached: every test here only looks at the result)."""
    path = FIT_DIR / name
    with path.open("rb") as f:
        return fit.read(f, path=str(path), salvage=salvage)


def plain_fitdecode(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The obvious fitdecode read, CRC ignored, stopping quietly at damage: (timestamps, bpm) of
    records that have a heart_rate field and a timestamp, and the number of hr-message beats."""
    ts: list[np.datetime64] = []
    bpm: list[float] = []
    beats = 0
    try:
        with fitdecode.FitReader(
            str(FIT_DIR / name),
            check_crc=fitdecode.CrcCheck.DISABLED,
            error_handling=fitdecode.ErrorHandling.IGNORE,
        ) as reader:
            for frame in reader:
                if not isinstance(frame, fitdecode.FitDataMessage):
                    continue
                if frame.name == "record" and frame.has_field("heart_rate"):
                    t = frame.get_value("timestamp", fallback=None)
                    if isinstance(t, dt.datetime):
                        ts.append(np.datetime64(t.replace(tzinfo=None), "us"))
                        v = frame.get_value("heart_rate")
                        bpm.append(math.nan if v is None else float(v))
                elif frame.name == "hr":
                    v = frame.get_value("filtered_bpm", fallback=None)
                    beats += len(v) if isinstance(v, tuple) else int(v is not None)
    except fitdecode.FitError:
        pass
    return np.array(ts, dtype="datetime64[us]"), np.array(bpm, dtype=np.float64), beats


def test_every_corpus_file_has_an_expectation() -> None:
    assert corpus_files(), "no FIT files in the corpus"
    assert set(corpus_files()) == set(EXPECTED)


@pytest.mark.parametrize("name", corpus_files())
def test_corpus_file(name: str) -> None:
    exp = EXPECTED[name]
    if isinstance(exp, Fails):
        with pytest.raises(exp.error) as e:
            read(name)
        assert type(e.value) is exp.error
        assert e.value.reason == exp.reason
        assert e.value.path == str(FIT_DIR / name)
        if exp.error is InputError:
            assert e.value.offset is not None and str(e.value.offset) in exp.reason
        if exp.salvaged is None:
            with pytest.raises(exp.error):
                read(name, salvage=True)
            return
        rec = read(name, salvage=True)
        assert rec.salvaged and rec.salvage_reason == exp.reason
        assert (len(rec.hr), len(rec.activities)) == exp.salvaged
    else:
        rec = read(name)
        assert not rec.salvaged and rec.salvage_reason is None
        assert len(rec.hr) == exp.n_hr
        assert len(rec.activities) == exp.n_sessions
        assert rec.kind == exp.kind
        assert rec.utc_offset_s == exp.utc_offset_s
        assert rec.device == exp.device
        if "warning" in exp.extra:
            assert exp.extra["warning"] in rec.warnings
        assert rec.meta["hr_from_hr_messages"] == str(exp.extra.get("hr_messages", 0))
        assert rec.meta.get("hr_records_superseded", "0") == str(exp.extra.get("superseded", 0))

    assert rec.format == "fit"
    assert rec.hr.ts.dtype == np.dtype("datetime64[us]") and rec.hr.bpm.dtype == np.float64
    for a in rec.activities:
        assert a.start <= a.end
    # record HR equals the straightforward read, except record samples the strap superseded
    ts, bpm, beats = plain_fitdecode(name)
    n_rec = int(rec.meta["hr_from_records"])
    n_hrm = int(rec.meta["hr_from_hr_messages"])
    assert n_hrm == beats
    strap = rec.hr.ts[len(rec.hr) - n_hrm :]
    if n_hrm:
        assert np.all(np.diff(strap.astype(np.int64)) >= 0)
        i = np.searchsorted(strap, ts)
        before = strap[np.clip(i - 1, 0, strap.size - 1)]
        after = strap[np.clip(i, 0, strap.size - 1)]
        five = np.timedelta64(5, "s")
        near = (np.abs(ts - before) <= five) | (np.abs(after - ts) <= five)
        ts, bpm = ts[~near], bpm[~near]
    assert np.array_equal(rec.hr.ts[:n_rec], ts)
    assert np.array_equal(rec.hr.bpm[:n_rec], bpm, equal_nan=True)


def test_hr_messages_follow_the_sdk_anchor_rule() -> None:
    """event_timestamp.fit: the first beat is at the anchor hr message's timestamp +
    fractional_timestamp; the beats cover the swim session."""
    first = None
    with fitdecode.FitReader(str(FIT_DIR / "event_timestamp.fit"), processor=None) as reader:
        for frame in reader:
            if isinstance(frame, fitdecode.FitDataMessage) and frame.name == "hr":
                first = frame
                break
    assert first is not None
    frac = first.get_raw_value("fractional_timestamp") / 32768
    anchor_s = first.get_raw_value("timestamp") + frac
    anchor = np.datetime64(round((anchor_s + fit.FIT_EPOCH_UNIX_S) * 1e6), "us")
    rec = read("event_timestamp.fit")
    assert rec.hr.ts[0] == anchor
    (swim,) = rec.activities
    assert swim.sport == "swimming"
    assert swim.start - np.timedelta64(1, "h") < rec.hr.ts.min()
    assert rec.hr.ts.max() <= swim.end
    # about one beat every 0.4 s, no long holes
    gaps = np.diff(rec.hr.ts.astype(np.int64)) / 1e6
    assert gaps.max() < 10 and 0.2 < np.median(gaps) < 1.0


def test_compressed_timestamps_of_a_real_file() -> None:
    """compressed-speed-distance.fit uses compressed timestamp headers, all power-on-relative.
    Chained after a part carrying a timestamp_correlation, the reader places them exactly."""
    data = (FIT_DIR / "compressed-speed-distance.fit").read_bytes()
    rel: list[int] = []
    hr: list[float] = []
    n_compressed = 0
    session_start = None
    with fitdecode.FitReader(io.BytesIO(data)) as reader:
        for frame in reader:
            if isinstance(frame, fitdecode.FitDataMessage) and frame.name == "session":
                session_start = frame.get_value("start_time")
            if isinstance(frame, fitdecode.FitDataMessage) and frame.name == "record":
                n_compressed += frame.time_offset is not None
                if frame.has_field("heart_rate"):
                    rel.append(frame.get_value("timestamp"))  # int: below 0x10000000
                    hr.append(float(frame.get_value("heart_rate")))
    assert n_compressed > 700 and all(isinstance(t, int) and t < 0x10000000 for t in rel)

    anchor = fw.FitWriter()
    anchor.add_file_id(serial=1, time_created=rel[0])
    utc0 = np.datetime64("2012-02-14T10:00:00", "s")
    anchor.add_timestamp_correlation(utc0, system_timestamp=rel[0])
    rec = fit.read(io.BytesIO(anchor.to_bytes() + data), path="chained")
    expect = (utc0 + (np.array(rel) - rel[0]).astype("timedelta64[s]")).astype("datetime64[us]")
    assert np.array_equal(rec.hr.ts, expect) and np.array_equal(rec.hr.bpm, hr)
    assert isinstance(session_start, int)
    assert rec.activities[0].start == expect[0] + np.timedelta64(session_start - rel[0], "s")


# --------------------------------------------------------------------------------------------
# RR intervals (hrv messages), vendor series and the sensor kind of the real files

#: files with hrv messages (scanned with fitdecode): number of RR values, first and last (ms)
RR_FILES = {
    "garmin-edge-820-bike.fit": (126, 594.0, 521.0),
    "garmin-fenix-5-run.fit": (113, 1093.0, 599.0),
    "garmin-fenix-5-walk.fit": (62, 824.0, 836.0),
}

#: sensor kind by the rule of fit._sensor_kind, and why
SENSOR: dict[str, str | None] = {
    "20170518-191602-1740899583.fit": "chest_strap",  # ANT+ heart_rate device listed
    "2019-02-17-062644-ELEMNT-297E-195-0.fit": "chest_strap",  # ANT+ heart_rate listed
    "DeveloperData.fit": None,  # no HR
    "coros-pace-2-cycling-misaligned-fields.fit": "optical",  # a COROS PACE 2 watch, no sensor
    "developer-types-sample.fit": None,  # a Stryd app file, no HR sensor listed
    "event_timestamp.fit": "chest_strap",  # hr messages (HRM-Tri)
    "garmin-edge-500-activity.fit": "chest_strap",  # device_type 120 (file predates source_type)
    "garmin-edge-820-bike.fit": "optical",  # ANT+ HR = "OHR": the fenix 5 broadcasting wrist HR
    "garmin-fenix-5-run.fit": "chest_strap",  # HRM-Run listed
    "garmin-fenix-5-walk.fit": "chest_strap",
    "garmin-fr935-cr.fit": "chest_strap",  # HRM-Tri listed and hr messages
    "nick.fit": None,  # a Sigma bike computer, no device_info (salvaged)
    "sample_mulitple_header.fit": "chest_strap",  # HRM-Tri
    "slither-running.fit": "optical",  # forerunner 45 with its wrist sensor (whr) listed
    "strava-android-app-201.10-b1218918.fit": None,  # no HR (salvaged)
}


def hrv_by_fitdecode(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The SDK rule written out over fitdecode's decoded values (datetimes, seconds): beat =
    the latest record/event timestamp + the RR values since it."""
    anchor: dt.datetime | None = None
    acc_ms = 0
    ts: list[np.datetime64] = []
    rr: list[float] = []
    with fitdecode.FitReader(str(FIT_DIR / name)) as reader:
        for frame in reader:
            if not isinstance(frame, fitdecode.FitDataMessage):
                continue
            if frame.name in ("record", "event"):
                t = frame.get_value("timestamp", fallback=None)
                if isinstance(t, dt.datetime) and t != anchor:
                    anchor, acc_ms = t, 0
            elif frame.name == "hrv":
                for v in frame.get_value("time"):
                    if v is None:
                        continue
                    ms = round(v * 1000)
                    rr.append(float(ms))
                    if anchor is not None:
                        acc_ms += ms
                        base = np.datetime64(anchor.replace(tzinfo=None), "us")
                        ts.append(base + np.timedelta64(acc_ms * 1000, "us"))
    return np.array(ts, dtype="datetime64[us]"), np.array(rr, dtype=np.float64)


@pytest.mark.parametrize("name", sorted(SENSOR))
def test_rr_sensor_and_vendor_of_corpus_files(name: str) -> None:
    rec = read(name, salvage=True) if isinstance(EXPECTED[name], Fails) else read(name)
    assert rec.sensor == SENSOR[name]
    assert rec.vendor == []  # no monitoring files in the corpus
    if name not in RR_FILES:
        assert len(rec.rr) == 0 and "rr_from_hrv" not in rec.meta
        return
    n, first, last = RR_FILES[name]
    assert len(rec.rr) == n and rec.rr.rr_ms[0] == first and rec.rr.rr_ms[-1] == last
    ts, rr = hrv_by_fitdecode(name)
    assert np.array_equal(rec.rr.rr_ms, rr)
    assert np.array_equal(rec.rr.ts, ts)
    assert rec.meta["rr_from_hrv"] == str(n)
    assert any(w.startswith("RR beat times reconstructed") for w in rec.warnings)
    # the beats agree with the recorded heart rate and lie within the recording
    i = np.clip(np.searchsorted(rec.hr.ts, rec.rr.ts), 0, len(rec.hr) - 1)
    assert np.median(np.abs(60000 / rec.rr.rr_ms - rec.hr.bpm[i])) < 6
    (a,) = rec.activities
    assert a.start < rec.rr.ts[0] and rec.rr.ts[-1] < a.end + np.timedelta64(20, "s")
