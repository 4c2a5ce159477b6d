"""The cohort benchmark (benchmarks/cohort_bench.py) and its generator (cohort_gen.py).

CI runs the benchmark here at a reduced size (3 participants x 2 weeks: every kind of file the
generator writes, every CLI step): the printed figures must be there, and the database must
hold exactly what was generated. The full size is run by hand (see the module docstring of
cohort_bench.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.ingest import gpx, tcx
from actidose.recording import ReadContext

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import cohort_bench  # noqa: E402
import cohort_gen  # noqa: E402


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path (zip members, not the zip:
    a zip records its members' modification times)."""
    out: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(folder).as_posix()
        if p.suffix == ".zip":
            with zipfile.ZipFile(p) as zf:
                for name in zf.namelist():
                    out[f"{rel}!{name}"] = hashlib.sha256(zf.read(name)).hexdigest()
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> cohort_gen.Cohort:
    return cohort_gen.generate(
        tmp_path_factory.mktemp("tiny") / "cohort", participants=3, weeks=2, seed=7, workers=1
    )


# --------------------------------------------------------------------------------------------
# the generator


def test_same_seed_same_files_whatever_the_workers(tiny: cohort_gen.Cohort, tmp_path: Path) -> None:
    again = cohort_gen.generate(tmp_path / "again", participants=3, weeks=2, seed=7, workers=2)
    assert digests(again.folder) == digests(tiny.folder)
    other = cohort_gen.generate(tmp_path / "other", participants=3, weeks=2, seed=8, workers=1)
    assert digests(other.folder) != digests(tiny.folder)


def test_tiny_cohort_has_every_kind_of_file(tiny: cohort_gen.Cohort) -> None:
    kinds = tiny.files_by_kind()
    assert all(kinds[k] > 0 for k in cohort_gen.FILE_KINDS), kinds
    on_disk = {
        "fit_activity": len(list(tiny.folder.glob("*/GARMIN/Activity/*.fit"))),
        "fit_monitoring": len(list(tiny.folder.glob("*/GARMIN/Monitor/*.fit"))),
        "tcx": len(list(tiny.folder.glob("*/exports/*.tcx"))),
        "gpx": len(list(tiny.folder.glob("*/exports/*.gpx"))),
        "apple_health": len(list(tiny.folder.glob("*/export.zip"))),
    }
    assert on_disk == kinds
    assert tiny.n_bytes == sum(
        p.stat().st_size
        for p in tiny.folder.glob("P*/**/*")
        if p.is_file() and p.suffix in (".fit", ".tcx", ".gpx", ".zip")
    )
    devices = [p.device for p in tiny.participants]
    assert devices == ["garmin+exports", "garmin", "apple"]
    # Monitoring files: at most one per local day of the two weeks
    for p in tiny.participants:
        assert p.files["fit_monitoring"] <= 14
    described = tiny.describe()
    assert f"{tiny.n_files:,} files" in described
    assert f"{tiny.hr_valid:,} valid samples" in described


def test_roster_ratings_and_prescriptions(tiny: cohort_gen.Cohort) -> None:
    with tiny.roster.open(newline="") as fp:
        roster = list(csv.DictReader(fp))
    assert [r["participant_id"] for r in roster] == ["P001", "P002", "P003"]
    assert tuple(roster[0]) == cohort_gen.ROSTER_COLUMNS
    assert [r["arm"] for r in roster] == ["aerobic", "stretching", "aerobic"]
    zones = {z[0] for z in cohort_gen.ZONES}
    assert all(r["timezone"] in zones for r in roster)
    assert all(r["sex"] in ("f", "m", "") for r in roster)
    starts = [r["start_date"] for r in roster]
    assert starts == sorted(starts) and len(set(starts)) == 3  # staggered enrolment
    with tiny.ratings.open(newline="") as fp:
        ratings = list(csv.DictReader(fp))
    assert len(ratings) == tiny.rating_values
    phq = [r for r in ratings if r["instrument"] == "phq9"]
    mood = [r for r in ratings if r["instrument"] == "mood"]
    assert len(phq) + len(mood) == len(ratings)
    assert all(0 <= int(r["value"]) <= 3 and 1 <= int(r["item"]) <= 9 for r in phq)
    assert all(0 <= int(r["value"]) <= 10 and r["item"] == "1" for r in mood)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT10:00[+-]\d\d:\d\d", r["timestamp"]) for r in phq)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d 20:00", r["timestamp"]) for r in mood)
    assert len({(r["participant_id"], r["timestamp"]) for r in phq}) == sum(
        p.phq9_ratings for p in tiny.participants
    )
    toml = tiny.prescriptions.read_text()
    assert "[arms.aerobic]" in toml and "[arms.stretching]" in toml and "weeks = 2" in toml
    assert "[instruments.mood]" in tiny.instruments.read_text()


def test_exports_read_back_with_the_importers(tiny: cohort_gen.Cohort) -> None:
    """What the TCX and GPX exports hold is what actidose's readers return: one sample per
    point with a heart rate, at the written times."""
    for path in sorted(tiny.folder.glob("*/exports/*")):
        text = path.read_text()
        module = tcx if path.suffix == ".tcx" else gpx
        rec = module.read(io.BytesIO(text.encode()), path=str(path), ctx=ReadContext())
        tag = r"<Value>(\d+)</Value></HeartRateBpm>" if module is tcx else r"<gpxtpx:hr>(\d+)<"
        written = [float(v) for v in re.findall(tag, text)]
        assert rec.hr.bpm.tolist() == written
        assert np.all(np.diff(rec.hr.ts.astype(np.int64)) > 0)
        assert len(rec.activities) == 1
    gpx_files = sorted(tiny.folder.glob("*/exports/*.gpx"))
    assert gpx_files[0].read_bytes().startswith(b"<?xml")


@settings(max_examples=40, deadline=None)
@given(
    minutes=st.floats(1.0, 90.0),
    rest=st.floats(45.0, 80.0),
    span=st.floats(80.0, 130.0),
    smart=st.booleans(),
    intervals=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_session_hr_invariants(
    minutes: float, rest: float, span: float, smart: bool, intervals: bool, seed: int
) -> None:
    hrmax = rest + span
    t, bpm = cohort_gen.session_hr(
        np.random.default_rng(seed),
        minutes,
        rest,
        hrmax,
        0.58,
        0.80,
        smart=smart,
        intervals=intervals,
    )
    assert t[0] == 0.0 and t[-1] <= minutes * 60.0
    steps = np.diff(t)
    if smart:
        assert steps.min() >= 1 and steps.max() <= 5
    else:
        assert np.all(steps == 1.0) and t.size == int(np.floor(minutes * 60)) + 1
    assert np.all(np.isfinite(bpm))
    # never far outside the participant's range, and working well above rest on average
    assert bpm.min() > rest - 15 and bpm.max() < hrmax + 15
    if minutes >= 20:
        assert np.median(bpm) > rest + 0.3 * span


def test_generate_rejects_an_empty_cohort(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        cohort_gen.generate(tmp_path, participants=0, weeks=2)


# --------------------------------------------------------------------------------------------
# the benchmark at a reduced size: every figure printed, the database as generated

FIGURES = (
    r"^participant import\s+[\d.]+ s$",
    r"^file import\s+[\d.]+ s\s+(?P<files>[\d,]+) files \((?P<imported>[\d,]+) imported\)",
    r"^  files/s\s+[\d.]+$",
    r"^  HR samples/s\s+[\d,]+\s+\((?P<stored>[\d,]+) stored\)$",
    r"^symptoms import\s+[\d.]+ s\s+(?P<values>[\d,]+) values$",
    r"^prescription set\s+[\d.]+ s$",
    r"^import total\s+[\d.]+ s",
    r"^recompute\s+[\d.]+ s",
    r"^total\s+[\d.]+ s\s+\(7 commands; CLI start-up [\d.]+ s each\)$",
    r"^peak RSS\s+[1-9]\d* MB\s+\(largest process\)$",
    r"^database size\s+[\d.]+ MB$",
    r"^query weekly_dose, all participants\s+[\d.]+ ms\s+\(median, (?P<weekly>[\d,]+) rows\)$",
    r"^query symptom_exposure, phq9\s+[\d.]+ ms\s+\(median, (?P<phq>[\d,]+) rows\)$",
)


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.slow
def test_benchmark_at_reduced_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "run"
    figures = tmp_path / "figures.json"
    argv = ["--participants", "3", "--weeks", "2", "--repeat", "2", "--keep", str(work)]
    assert cohort_bench.main([*argv, "--json", str(figures), "--gen-workers", "1"]) == 0
    out = capsys.readouterr().out
    found: dict[str, str] = {}
    for pattern in FIGURES:
        m = re.search(pattern, out, re.M)
        assert m is not None, f"{pattern!r} not in:\n{out}"
        found |= m.groupdict()

    # the cohort as the benchmark generated it (the same seed writes the same files)
    cohort = cohort_gen.generate(tmp_path / "same", participants=3, weeks=2, seed=7, workers=1)
    assert digests(cohort.folder) == digests(work / "cohort")
    assert number(found["files"]) == number(found["imported"]) == cohort.n_files
    assert number(found["stored"]) == cohort.hr_valid
    assert number(found["values"]) == cohort.rating_values
    assert number(found["phq"]) == sum(p.phq9_ratings for p in cohort.participants)

    con = duckdb.connect(str(work / "cohort.duckdb"), read_only=True)
    try:

        def one(sql: str) -> object:
            row = con.execute(sql).fetchone()
            assert row is not None
            return row[0]

        assert one("SELECT count(*) FROM participants") == 3
        assert one("SELECT count(*) FROM participants WHERE start_date IS NULL") == 0
        per_format = dict(
            con.execute(
                "SELECT format, count(*) FROM sources WHERE status = 'imported' GROUP BY ALL"
            ).fetchall()
        )
        kinds = cohort.files_by_kind()
        assert per_format == {
            "fit": kinds["fit_activity"] + kinds["fit_monitoring"],
            "tcx": kinds["tcx"],
            "gpx": kinds["gpx"],
            "apple_health": kinds["apple_health"],
        }
        stored = dict(
            con.execute("SELECT participant_id, count(*) FROM hr_samples GROUP BY ALL").fetchall()
        )
        assert stored == {p.participant_id: p.hr_valid for p in cohort.participants}
        assert one("SELECT count(*) FROM symptoms") == cohort.rating_values
        assert one("SELECT count(*) FROM symptom_exposure WHERE instrument = 'phq9'") == sum(
            p.phq9_ratings for p in cohort.participants
        )
        assert one("SELECT count(*) FROM prescriptions") == 2
        assert one("SELECT count(*) FROM instruments WHERE instrument = 'mood'") == 1
        assert one("SELECT count(DISTINCT participant_id) FROM weekly_dose") == 3
        assert one("SELECT count(*) FROM weekly_dose") == number(found["weekly"])
        sessions = one("SELECT count(*) FROM sessions WHERE counted")
        assert sessions == sum(p.sessions for p in cohort.participants)
    finally:
        con.close()

    data = json.loads(figures.read_text())
    assert data["participants"] == 3 and data["jobs"] == 2
    assert data["hr_samples"] == cohort.hr_valid
    assert data["peak_rss_mb"] > 0 and data["db_bytes"] > 0
    assert 0 < data["import_s"] < data["import_total_s"] < data["total_s"]
