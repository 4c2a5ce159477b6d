"""Polar Flow training-session JSON: the corpus export against an independent reading, offsets,
RR intervals, damaged input."""

from __future__ import annotations

import copy
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError
from actidose.ingest import fitbit, polar
from actidose.ingest.registry import read_recording
from actidose.recording import ReadContext, Recording

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
RUN = CORPUS / "polar" / "polar-flow-running.json"


def corpus_run() -> Path:
    if not RUN.is_file():
        pytest.skip(f"shared corpus file not found: {RUN}")
    return RUN


def read(doc: dict[str, Any] | bytes, ctx: ReadContext | None = None, **kw: Any) -> Recording:
    data = doc if isinstance(doc, bytes) else json.dumps(doc, indent=2).encode()
    return polar.read(io.BytesIO(data), path="s.json", ctx=ctx or ReadContext(), **kw)


def error(doc: dict[str, Any] | bytes, ctx: ReadContext | None = None) -> InputError:
    with pytest.raises(InputError) as e:
        read(doc, ctx)
    assert e.value.path == "s.json"
    return e.value


def session(samples: dict[str, Any] | None = None, **exercise: Any) -> dict[str, Any]:
    ex: dict[str, Any] = {
        "startTime": "2024-06-01T09:00:00.000",
        "stopTime": "2024-06-01T09:00:05.000",
        "timezoneOffset": 120,
        "duration": "PT5S",
        "sport": "CYCLING",
        "heartRate": {"min": 90, "avg": 100, "max": 110},
        "samples": samples
        if samples is not None
        else {
            "heartRate": [
                {"dateTime": f"2024-06-01T09:00:0{s}.000", "value": 100 + s} for s in range(5)
            ]
        },
    }
    ex.update(exercise)
    return {"exportVersion": "1.3", "timeZoneOffset": 120, "exercises": [ex]}


def us(text: str) -> np.datetime64:
    return np.datetime64(text, "us")


# --------------------------------------------------------------------------------------------
# the corpus export


def test_corpus_run_matches_independent_reading() -> None:
    path = corpus_run()
    doc = json.loads(path.read_text())
    (ex,) = doc["exercises"]
    offset = timedelta(minutes=ex["timezoneOffset"])
    want_t = [datetime.fromisoformat(s["dateTime"]) - offset for s in ex["samples"]["heartRate"]]
    want_b = [float(s["value"]) for s in ex["samples"]["heartRate"]]

    rec = polar.read(path.open("rb"), path=str(path), ctx=ReadContext())
    assert (rec.format, rec.kind) == ("polar_flow", "activity")
    assert len(rec.hr) == len(want_t) == 2751
    assert rec.hr.ts.astype("datetime64[us]").astype(datetime).tolist() == want_t
    assert rec.hr.bpm.tolist() == want_b
    # hand-checked: 18:20:18 local at UTC+60 min = 17:20:18Z, 95 bpm; last 19:06:08 -> 18:06:08Z
    assert rec.hr.ts[0] == us("2017-01-23T17:20:18")
    assert rec.hr.ts[-1] == us("2017-01-23T18:06:08")
    assert (rec.hr.bpm[0], rec.hr.bpm[-1]) == (95.0, 140.0)
    assert rec.utc_offset_s == 3600 and len(rec.rr) == 0
    (act,) = rec.activities
    assert act.sport == "running"
    assert (act.start, act.end) == (us("2017-01-23T17:20:18"), us("2017-01-23T18:06:12.128"))
    assert act.elapsed_s == pytest.approx(2754.128)
    assert (act.avg_hr, act.max_hr) == (138.0, 164.0)
    assert rec.meta["exportVersion"] == "1.3"


def test_corpus_detect_and_registry() -> None:
    path = corpus_run()
    head = path.read_bytes()[:4096]
    assert polar.detect(head) and not fitbit.detect(head)
    fmt, rec = read_recording(path.open("rb"), path=str(path), ctx=ReadContext())
    assert fmt == "polar_flow" and len(rec.hr) == 2751


# --------------------------------------------------------------------------------------------
# built sessions


def test_offsets_exercise_wins_and_utc() -> None:
    rec = read(session())
    assert rec.hr.ts[0] == us("2024-06-01T07:00:00") and rec.utc_offset_s == 7200
    doc = session()
    del doc["exercises"][0]["timezoneOffset"]
    doc["timeZoneOffset"] = -300  # the session's offset applies
    rec = read(doc)
    assert rec.hr.ts[0] == us("2024-06-01T14:00:00") and rec.utc_offset_s == -18000


def test_no_offset_uses_zone_or_refuses() -> None:
    doc = session()
    del doc["exercises"][0]["timezoneOffset"]
    del doc["timeZoneOffset"]
    e = error(doc)
    assert "no timeZoneOffset" in e.reason
    rec = read(doc, ReadContext("Europe/London"))
    assert rec.hr.ts[0] == us("2024-06-01T08:00:00") and rec.utc_offset_s is None


@pytest.mark.parametrize("bad", [900, 7, "60", True, 60.5])
def test_implausible_offset(bad: Any) -> None:
    e = error(session(timezoneOffset=bad))
    assert "timezoneOffset" in e.reason


def test_sample_without_value_is_nan_and_activity() -> None:
    doc = session()
    del doc["exercises"][0]["samples"]["heartRate"][2]["value"]
    rec = read(doc)
    assert np.isnan(rec.hr.bpm[2]) and rec.hr.bpm[3] == 103
    (act,) = rec.activities
    assert act.sport == "cycling" and act.elapsed_s == 5.0
    assert act.end - act.start == np.timedelta64(5, "s")


def test_rr_cumulative_from_exercise_start() -> None:
    doc = session({"heartRate": [], "rr": [800, 810, 790.5]})
    rec = read(doc)
    assert rec.rr.rr_ms.tolist() == [800, 810, 790.5]
    start = us("2024-06-01T07:00:00")
    assert rec.rr.ts.tolist() == [
        start + np.timedelta64(800_000, "us"),
        start + np.timedelta64(1_610_000, "us"),
        start + np.timedelta64(2_400_500, "us"),
    ]
    assert any("rebuilt" in w for w in rec.warnings)


def test_rr_objects_with_times_and_iso_durations() -> None:
    rr = [
        {"dateTime": "2024-06-01T09:00:00.800", "duration": "PT0.8S"},
        {"dateTime": "2024-06-01T09:00:01.610", "value": 810},
    ]
    rec = read(session({"rr": rr}))
    assert rec.rr.rr_ms.tolist() == [800.0, 810.0]
    assert rec.rr.ts.astype(str).tolist() == [
        "2024-06-01T07:00:00.800000",
        "2024-06-01T07:00:01.610000",
    ]
    assert not any("rebuilt" in w for w in rec.warnings)
    e = error(session({"rr": [800, -1]}))
    assert "exercises[0].samples.rr[1]" in e.reason


def test_multisport_session() -> None:
    doc = session()
    second = copy.deepcopy(doc["exercises"][0])
    second["sport"] = "RUNNING"
    second["startTime"] = "2024-06-01T10:00:00.000"
    second["stopTime"] = None
    second["samples"] = {"heartRate": [{"dateTime": "2024-06-01T10:00:00.000", "value": 150}]}
    doc["exercises"].append(second)
    rec = read(doc)
    assert [a.sport for a in rec.activities] == ["cycling", "running"]
    assert len(rec.hr) == 6 and rec.hr.ts[-1] == us("2024-06-01T08:00:00")
    assert rec.activities[1].end == us("2024-06-01T08:00:05")  # start + duration


def test_iso_durations() -> None:
    assert polar.iso_duration_s("PT2753.875S") == pytest.approx(2753.875)
    assert polar.iso_duration_s("PT1H2M3.5S") == pytest.approx(3723.5)
    assert polar.iso_duration_s("P1DT1S") == 86401
    assert polar.iso_duration_s("PT") is None and polar.iso_duration_s("2753") is None


def test_bad_sample_time_is_located() -> None:
    doc = session()
    doc["exercises"][0]["samples"]["heartRate"][3]["dateTime"] = "2024-06-01T09:00:99.000"
    data = json.dumps(doc, indent=2).encode()
    e = error(data)
    assert e.reason.startswith("exercises[0].samples.heartRate[3].dateTime")
    assert e.offset is not None and data[e.offset :].startswith(b'"dateTime"')
    line = data[: e.offset].count(b"\n") + 1
    assert e.reason.endswith(f"(line {line})")


def test_structure_errors() -> None:
    assert "broken JSON at line" in error(b'{"exportVersion": "1.3", "exercises": [').reason
    assert "no top-level object" in error(b"[1, 2]").reason
    assert "not an array" in error({"exportVersion": "1", "exercises": 3}).reason
    text_value = {"heartRate": [{"dateTime": "2024-06-01T09:00:00", "value": "x"}]}
    assert "not a number" in error(session(text_value)).reason
    assert "ISO 8601 duration" in error(session(duration="forever")).reason


def test_detect_is_specific() -> None:
    assert polar.detect(json.dumps(session()).encode())
    assert not polar.detect(b'{"exportVersion": "1.3", "date": "2024-01-01"}')
    assert not polar.detect(b'[{"dateTime": "05/01/24 07:00:07", "value": {"bpm": 60}}]')
    assert not polar.detect(b'{"exercises": []}')


# --------------------------------------------------------------------------------------------
# any bytes


def outcome(data: bytes, ctx: ReadContext) -> Recording | InputError:
    try:
        return polar.read(io.BytesIO(data), path="p.json", ctx=ctx)
    except InputError as exc:
        assert exc.path == "p.json"
        return exc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes(data: bytes) -> None:
    assert isinstance(outcome(data, ReadContext()), Recording | InputError)
    prefixed = b'{"exportVersion":"1","exercises":' + data
    assert isinstance(outcome(prefixed, ReadContext("UTC")), Recording | InputError)


def _seed() -> bytes:
    if RUN.is_file():
        doc = json.loads(RUN.read_text())
        ex = doc["exercises"][0]  # a shorter copy keeps each example fast
        ex["samples"] = {"heartRate": ex["samples"]["heartRate"][:60]}
        return json.dumps(doc, indent=2).encode()
    return json.dumps(session(), indent=2).encode()


SEED = _seed()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_export(data: st.DataObject) -> None:
    blob = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(blob) - 1)) if blob else 0
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if op == "flip" and blob:
            blob[at] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del blob[at:]
        elif op == "insert":
            blob[at:at] = data.draw(st.sampled_from([b"-", b"9", b'"', b"null", b"{}", b"[]"]))
        elif blob:
            del blob[at : at + data.draw(st.integers(1, 30))]
    got = outcome(bytes(blob), ReadContext())
    assert isinstance(got, Recording | InputError)


def test_bad_stop_time_is_named() -> None:
    e = error(session(stopTime="later"))
    assert e.reason.startswith("exercises[0].stopTime 'later' is not a date-time (line ")
