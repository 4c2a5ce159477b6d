"""actidose.ingest.apple_health_writer: realistic, deterministic exports; and reading a large
one with bounded memory."""

from __future__ import annotations

import io
import re
import time
import tracemalloc
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from actidose.ingest import apple_health as ah
from actidose.ingest import apple_health_fast as fast
from actidose.ingest.apple_health_writer import DTD_IOS16, DTD_V14, write_export
from actidose.recording import ReadContext


def test_deterministic_by_seed() -> None:
    a, b, c = io.BytesIO(), io.BytesIO(), io.BytesIO()
    write_export(a, days=2, seed=1)
    write_export(b, days=2, seed=1)
    write_export(c, days=2, seed=2)
    assert a.getvalue() == b.getvalue() != c.getvalue()


def test_structure_like_a_real_export(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    truth = write_export(path, days=8, start=date(2024, 3, 1), seed=3)
    data = path.read_bytes()
    assert data.startswith(DTD_V14.encode()) and truth.bytes_written == len(data)
    assert b"<!-- HealthKit Export Version: 14 -->" in data
    root = ET.fromstring(data)  # well-formed, and the standard library takes this DTD
    assert root.tag == "HealthData" and root[0].tag == "ExportDate" and root[1].tag == "Me"
    kinds = [el.tag for el in root]
    first_workout = kinds.index("Workout")
    assert set(kinds[2 : kinds.index("Correlation")]) == {"Record"}  # records first, by type
    assert set(kinds[first_workout:]) <= {"Workout", "ActivitySummary"}
    types = [el.get("type") for el in root.findall("Record")]
    assert types == sorted(types, key=types.index)  # one block per type
    assert sum(1 for _ in root.iter()) == truth.n_elements
    sources = {el.get("sourceName") for el in root.findall("Record")}
    assert {"Alex’s Apple Watch", "Alex’s iPhone"} <= sources
    hrv = [el for el in root.findall("Record") if el.get("type", "").endswith("SDNN")]
    assert hrv and all(el.find("HeartRateVariabilityMetadataList") is not None for el in hrv)
    wk = root.find("Workout")
    assert wk is not None and wk.find("WorkoutStatistics") is not None
    offsets = {el.get("startDate", "")[-5:] for el in root.findall("Record")}
    assert offsets == {"+0100", "-0500"}  # default: travel a third of the way in, and back
    assert truth.n_records["HKQuantityTypeIdentifierHeartRate"] == len(truth.hr_ts)


def test_tz_changes() -> None:
    buf = io.BytesIO()
    changes = [(date(2024, 6, 1), 19800), (date(2024, 6, 3), -36000)]
    truth = write_export(buf, days=4, start=date(2024, 6, 1), seed=0, tz_changes=changes)
    assert truth.utc_offsets_s == [-36000, 19800]
    text = buf.getvalue().decode()
    assert "+0530" in text and "-1000" in text
    rec = ah.read(io.BytesIO(buf.getvalue()), path="e", ctx=ReadContext())
    np.testing.assert_array_equal(rec.hr.ts, truth.hr_ts)


def test_ios16_dtd_reproduces_the_defect() -> None:
    assert "<!-- HealthKit Export Version: 12 -->" in DTD_IOS16
    m = re.search(r"<!ATTLIST VisionPrescription\n(?:  .*\n)+<!ELEMENT RightEye", DTD_IOS16)
    assert m is not None  # the ATTLIST is never closed: the next declaration starts inside it


def test_target_bytes_and_speed(tmp_path: Path) -> None:
    path = tmp_path / "e.xml"
    t0 = time.perf_counter()
    truth = write_export(path, target_bytes=8_000_000, seed=9, keep_truth=False)
    elapsed = time.perf_counter() - t0
    assert 7_200_000 < path.stat().st_size < 8_800_000
    assert truth.hr_ts.size == 0 and truth.n_records["HKQuantityTypeIdentifierHeartRate"] > 5000
    assert elapsed < 10  # bulk formatting: ~40 MB/s and more here


@pytest.mark.slow
def test_large_export_reads_with_bounded_memory(tmp_path: Path) -> None:
    """Memory beyond the output is a few blocks' worth, not the file's (one process: the
    file is under the size read by two)."""
    path = tmp_path / "big.xml"
    truth = write_export(path, target_bytes=48_000_000, seed=12)
    size = path.stat().st_size
    assert size < fast.PARALLEL_MIN
    tracemalloc.start()
    try:
        with path.open("rb") as fp:
            rec = ah.read(fp, path=str(path), ctx=ReadContext())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(rec.hr.ts, truth.hr_ts)
    np.testing.assert_array_equal(rec.rr.ts, truth.rr_ts)
    output = rec.hr.ts.nbytes + rec.hr.bpm.nbytes + rec.rr.ts.nbytes + rec.rr.rr_ms.nbytes
    output += sum(v.start.nbytes + v.duration_s.nbytes + v.value.nbytes for v in rec.vendor)
    assert peak - output < min(6 * fast.BLOCK, size // 2), (peak, output, size)
