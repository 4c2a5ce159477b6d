"""actidose.ingest.apple_health on the real exports of the shared corpus.

Both files are small real exports (see /work/shared/corpus/MANIFEST.tsv). Each is compared with
an independent reading written here (``xml.etree.ElementTree`` + ``datetime.strptime``), and the
first/last values are also spelled out as literals, worked out by hand from the XML
(UTC = local time - the offset written after it).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pytest

from actidose.ingest import apple_health as ah
from actidose.recording import ReadContext, Recording

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
AH = CORPUS / "apple-health"
pytestmark = pytest.mark.skipif(not AH.is_dir(), reason=f"shared corpus not found at {AH}")

ALX = AH / "alxdrcirilo-export.xml"
TDDA = AH / "tdda-export6s3sample.xml"
ALX_ZIP = AH / "alxdrcirilo-export.zip"
Q = "HKQuantityTypeIdentifier"


def read(fp: BinaryIO, path: Path | str) -> Recording:
    return ah.read(fp, path=str(path), ctx=ReadContext())


def utc(text: str) -> datetime:
    """Independent: strptime with the offset, then UTC."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z").astimezone(UTC).replace(tzinfo=None)


def independent(data: bytes) -> dict[str, list[tuple[datetime, datetime, float]]]:
    """Every top-level Record by type: (start UTC, end UTC, value) for numeric values."""
    out: dict[str, list[tuple[datetime, datetime, float]]] = {}
    root = ET.fromstring(data)
    for el in root.findall("Record"):
        try:
            value = float(el.get("value", ""))
        except ValueError:
            continue
        out.setdefault(el.get("type", ""), []).append(
            (utc(el.get("startDate", "")), utc(el.get("endDate", "")), value)
        )
    return out


def as_dt(ts: np.datetime64) -> datetime:
    return ts.astype("M8[us]").item()


def series(rec: Recording, kind: str) -> list[tuple[datetime, datetime, float]]:
    out = []
    for v in rec.vendor:
        if v.kind == kind:
            for s, d, x in zip(v.start, v.duration_s.tolist(), v.value.tolist(), strict=True):
                start = as_dt(s)
                out.append((start, start + np.timedelta64(int(d), "s").item(), x))
    return sorted(out)


def test_alxdrcirilo_export() -> None:
    data = ALX.read_bytes()
    assert ah.detect(data[:4096])
    with ALX.open("rb") as fp:
        rec = read(fp, ALX)
    want = independent(data)
    hr = want[Q + "HeartRate"]
    assert len(rec.hr) == len(hr) == 2
    assert [as_dt(t) for t in rec.hr.ts] == [s for s, _, _ in hr]
    assert rec.hr.bpm.tolist() == [v for _, _, v in hr]
    # by hand: "2024-01-01 01:01:36 +0200" is 2023-12-31 23:01:36 UTC
    assert rec.hr.ts[0] == np.datetime64("2023-12-31T23:01:36", "us") and rec.hr.bpm[0] == 74
    assert rec.hr.ts[-1] == np.datetime64("2023-12-31T23:01:37", "us") and rec.hr.bpm[-1] == 75
    assert series(rec, "energy_active_kcal") == sorted(want[Q + "ActiveEnergyBurned"])
    energy = next(v for v in rec.vendor if v.kind == "energy_active_kcal")
    assert energy.value.tolist() == [0.12, 0.08] and energy.unit == "kcal"
    assert energy.start[1] == np.datetime64("2024-01-01T23:52:27", "us")
    assert energy.duration_s.tolist() == [31.0, 31.0]
    assert energy.origin == "Alexandre's Apple Watch"
    assert series(rec, "exercise_minutes") == sorted(want[Q + "AppleExerciseTime"])
    assert series(rec, "exercise_minutes") == [
        (datetime(2024, 1, 1, 13, 16), datetime(2024, 1, 1, 13, 17), 1.0)
    ]
    assert {v.kind for v in rec.vendor} == {"energy_active_kcal", "exercise_minutes"}
    assert rec.sensor == "optical" and rec.device == "Apple Watch"
    assert rec.meta["hr_sources"] == "Alexandre's Apple Watch (2)"
    assert rec.meta["locale"] == "en_NL" and rec.meta["export_date"] == "2024-06-01 08:10:05 +0200"
    assert rec.meta["birth_year"] == "1990" and rec.meta["sex"] == "m"
    assert rec.utc_offset_s == 7200
    assert len(rec.rr) == 0 and rec.activities == []
    assert rec.warnings == [] and not rec.salvaged


def test_alxdrcirilo_export_from_its_zip() -> None:
    """The archive module hands us the zip member as a stream; read it the same way here."""
    with zipfile.ZipFile(ALX_ZIP) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/export.xml") and "MACOSX" not in n)
        with zf.open(name) as member:
            rec = ah.read(cast(BinaryIO, member), path=f"{ALX_ZIP}!{name}", ctx=ReadContext())
        data = zf.read(name)
    with io.BytesIO(ALX.read_bytes()) as fp:
        plain = read(fp, ALX)
    assert data == ALX.read_bytes()
    np.testing.assert_array_equal(rec.hr.ts, plain.hr.ts)
    np.testing.assert_array_equal(rec.hr.bpm, plain.hr.bpm)
    assert rec.meta == plain.meta


def test_tdda_export() -> None:
    data = TDDA.read_bytes()
    assert b"<HealthData" not in data[:2048] and ah.detect(data[:2048])  # root after the DTD
    with TDDA.open("rb") as fp:
        rec = read(fp, TDDA)
    want = independent(data)
    assert len(rec.hr) == 0 and "no heart rate records in this export" in rec.warnings
    steps = series(rec, "steps")
    assert steps == sorted(want[Q + "StepCount"])
    assert len(steps) == 10 and sum(v for _, _, v in steps) == 2517
    # by hand: "2014-09-13 10:27:54 +0100" -> 09:27:54 UTC, ends 5 s later
    assert steps[0] == (datetime(2014, 9, 13, 9, 27, 54), datetime(2014, 9, 13, 9, 27, 59), 329.0)
    assert steps[-1][2] == 282.0
    dist = series(rec, "distance_m")
    assert [(s, e) for s, e, _ in dist] == [
        (s, e) for s, e, _ in want[Q + "DistanceWalkingRunning"]
    ]
    np.testing.assert_allclose([v for _, _, v in dist], [2.88, 2.84, 1.42, 6.39, 5.9])
    assert {v.origin for v in rec.vendor} == {"Health"}
    (w,) = rec.activities
    assert w.sport == "other" and w.sub_sport is None
    assert w.start == np.datetime64("2016-04-02T09:40:38", "us")
    assert w.end == np.datetime64("2016-04-02T10:12:22", "us")
    assert w.timer_s == pytest.approx(31.73680251737436 * 60)
    assert w.elapsed_s == 1904.0 and w.avg_hr is None and w.max_hr is None
    assert rec.meta["locale"] == "en_GB" and rec.meta["birth_year"] == "1965"
    assert rec.sensor is None and rec.utc_offset_s is None
