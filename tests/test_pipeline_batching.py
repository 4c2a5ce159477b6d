"""Files are written in batches (one transaction and one INSERT per table per batch) and parsed
in lists of files per worker task; every guarantee of one-file-at-a-time importing still holds."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actidose.pipeline as pipeline
from actidose.ingest.samples import clean_hr
from actidose.pipeline import (
    EXIT_OK,
    EXIT_QUARANTINED,
    FileOutcome,
    ImportSummary,
    import_paths,
    parse_pool,
)
from actidose.recording import (
    AccelEpochs,
    ActivityInfo,
    HRSeries,
    Recording,
    RRSeries,
    VendorSeries,
)
from actidose.storage.db import connect, transaction
from actidose.storage.write import SourceFile, existing_sources, store_recording, store_sources

from .conftest import activity_file, add_p, utc


def content(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """What an import stored, without the import times."""
    q = {
        "sources": "SELECT source_id, sha256, path, format, kind, participant_id, device, serial, "
        "status, reason, size_bytes, n_samples, n_invalid, n_duplicate_ts, utc_offset_s, "
        "first_ts, last_ts, warnings, sensor, archive_sha256 FROM sources ORDER BY source_id",
        "hr": "SELECT source_id, epoch_us(ts), bpm, participant_id FROM hr_samples "
        "ORDER BY source_id, ts",
        "rr": "SELECT source_id, epoch_us(ts), rr_ms FROM rr_intervals ORDER BY source_id, ts",
        "vendor": "SELECT source_id, kind, unit, epoch_us(start_ts), duration_s, value, origin "
        "FROM vendor_activity ORDER BY ALL",
        "activities": "SELECT * FROM activities ORDER BY source_id, idx",
        "accel": "SELECT * FROM accel_epochs ORDER BY source_id, ts",
        "accel_processing": "SELECT * FROM accel_processing ORDER BY source_id",
        "daily": "SELECT participant_id, day, sessions, trimp_banister FROM daily_load "
        "ORDER BY ALL",
        "pending": "SELECT * FROM pending_recompute ORDER BY ALL",
    }
    return {k: con.execute(sql).fetchall() for k, sql in q.items()}


def outcomes(s: ImportSummary) -> list[tuple[str, str, str | None, int | None, int]]:
    return [(Path(f.path).name, f.status, f.reason, f.source_id, f.n_samples) for f in s.files]


def cut_fit(path: Path, start: np.datetime64) -> Path:
    """A FIT file cut short: quarantined, or salvaged with --salvage."""
    tmp = path.with_suffix(".whole")
    activity_file(tmp, start, np.full(600, 135.0), serial=99)
    data = tmp.read_bytes()
    tmp.unlink()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Good files, a damaged one, the same bytes twice under other names, an archive whose
    members are sources (one of them the same bytes as a plain file, one skipped)."""
    d = tmp_path / "in"
    d.mkdir()
    for k in range(6):
        activity_file(
            d / f"a{k}.fit", utc(2024, 5, 1 + k, 9), np.full(300 + 10 * k, 120.0 + k), serial=k
        )
    (d / "b_copy_of_a1.fit").write_bytes((d / "a1.fit").read_bytes())
    cut_fit(d / "c_cut.fit", utc(2024, 5, 20, 9))
    (d / "c_cut_again.fit").write_bytes((d / "c_cut.fit").read_bytes())
    member = tmp_path / "m.fit"
    activity_file(member, utc(2024, 5, 10, 9), np.full(400, 140.0), serial=77)
    with zipfile.ZipFile(d / "export.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("activities.csv", "id,type\n1,Run\n")
        z.writestr("acts/m.fit.gz", gzip.compress(member.read_bytes()))
        z.writestr("acts/a2.fit", (d / "a2.fit").read_bytes())
    (d / "z_member_copy.fit").write_bytes(member.read_bytes())
    member.unlink()
    return d


def test_mixed_batch_outcomes_in_input_order(tmp_path: Path, mixed: Path) -> None:
    con = connect(tmp_path / "db.duckdb")
    add_p(con)
    s = import_paths(con, [mixed], "P001", batch_files=64)
    prefix = str(mixed.resolve()) + "/"
    got = {f.path.removeprefix(prefix): f for f in s.files}
    assert list(got) == [
        "a0.fit",
        "a1.fit",
        "a2.fit",
        "a3.fit",
        "a4.fit",
        "a5.fit",
        "b_copy_of_a1.fit",
        "c_cut.fit",
        "c_cut_again.fit",
        "export.zip!activities.csv",
        "export.zip!acts/m.fit.gz!m.fit",
        "export.zip!acts/a2.fit",
        "z_member_copy.fit",
    ]
    for k in range(6):
        assert got[f"a{k}.fit"].status == "imported"
        assert got[f"a{k}.fit"].n_samples == 300 + 10 * k
    # the same bytes twice in one run: one source, the later copy names the first
    dup = got["b_copy_of_a1.fit"]
    assert (dup.status, dup.reason) == ("duplicate", "same bytes already imported")
    assert dup.source_id == got["a1.fit"].source_id
    member_a2 = got["export.zip!acts/a2.fit"]
    assert member_a2.status == "duplicate" and member_a2.source_id == got["a2.fit"].source_id
    # a damaged file is recorded with its reason; its copy gets the same verdict, one row
    cut, again = got["c_cut.fit"], got["c_cut_again.fit"]
    assert cut.status == again.status == "quarantined"
    assert cut.reason == again.reason and "truncated" in (cut.reason or "")
    assert cut.source_id == again.source_id is not None
    assert got["export.zip!activities.csv"].status == "skipped"
    m = got["export.zip!acts/m.fit.gz!m.fit"]
    assert m.status == "imported" and m.n_samples == 400
    assert got["z_member_copy.fit"].status == "duplicate"
    assert got["z_member_copy.fit"].source_id == m.source_id
    assert s.exit_code == EXIT_QUARANTINED
    # source rows: 6 plain files + the member + the damaged file
    rows = con.execute(
        "SELECT s.source_id, s.status, s.n_samples, count(h.ts), s.archive_sha256 IS NOT NULL "
        "FROM sources s LEFT JOIN hr_samples h USING (source_id) GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert len(rows) == 8
    ids = [f.source_id for f in s.files if f.status in ("imported", "quarantined")]
    assert sorted(set(ids)) == [r[0] for r in rows]
    for _sid, status, declared, stored, _ in rows:
        assert (declared or 0) == stored and (status == "quarantined") == (stored == 0)
    assert sum(r[4] for r in rows) == 1  # only the member came from the archive
    assert con.execute("SELECT count(*) FROM pending_recompute").fetchone() == (0,)
    assert con.execute("SELECT sum(sessions) FROM daily_load").fetchone() == (7,)

    # a second run: duplicates of the first, nothing changes (the damaged file is tried again)
    before = content(con)
    s2 = import_paths(con, [mixed], "P001", batch_files=64)
    st2 = {f.path.removeprefix(prefix): f.status for f in s2.files}
    assert st2["a0.fit"] == st2["b_copy_of_a1.fit"] == st2["export.zip!acts/a2.fit"] == "duplicate"
    assert st2["c_cut.fit"] == st2["c_cut_again.fit"] == "quarantined"
    assert s2.count("imported") == 0 and s2.exit_code == EXIT_QUARANTINED
    assert content(con) == before
    con.close()


def test_quarantined_file_tried_again_inside_a_batch(tmp_path: Path) -> None:
    """A file quarantined by an earlier run is updated in place (salvage) in the same batch as
    new files."""
    d = tmp_path / "in"
    d.mkdir()
    cut_fit(d / "cut.fit", utc(2024, 5, 20, 9))
    con = connect(tmp_path / "db.duckdb")
    add_p(con)
    s = import_paths(con, [d], "P001")
    assert s.files[0].status == "quarantined"
    sid = s.files[0].source_id
    for k in range(3):
        activity_file(d / f"new{k}.fit", utc(2024, 5, 1 + k, 9), np.full(200, 130.0), serial=k)
    s2 = import_paths(con, [d], "P001", salvage=True)
    by = {Path(f.path).name: f for f in s2.files}
    assert by["cut.fit"].status == "salvaged" and by["cut.fit"].source_id == sid
    assert [by[f"new{k}.fit"].status for k in range(3)] == ["imported"] * 3
    assert len({f.source_id for f in s2.files}) == 4
    rows = con.execute(
        "SELECT status, n_samples, reason IS NOT NULL FROM sources WHERE source_id = ?", [sid]
    ).fetchall()
    assert rows[0][0] == "salvaged" and 0 < rows[0][1] < 600 and rows[0][2]
    n = con.execute("SELECT count(*) FROM hr_samples WHERE source_id = ?", [sid]).fetchone()
    assert n == (rows[0][1],)
    con.close()


def test_same_database_for_batch_sizes_and_jobs(tmp_path: Path, mixed: Path) -> None:
    pool = parse_pool(2)
    results = []
    try:
        for jobs, batch in ((1, 1), (1, 64), (2, 1), (2, 64), (1, 3)):
            con = connect(tmp_path / f"j{jobs}b{batch}.duckdb")
            add_p(con)
            s = import_paths(
                con,
                [mixed],
                "P001",
                jobs=jobs,
                batch_files=batch,
                executor=pool if jobs > 1 else None,
            )
            results.append((outcomes(s), s.exit_code, content(con)))
            con.close()
    finally:
        pool.shutdown()
    assert results[0][2]["hr"]  # something was stored
    for r in results[1:]:
        assert r == results[0]


def test_batch_rows_split_batches_with_the_same_result(tmp_path: Path, mixed: Path) -> None:
    """A batch is also cut by its number of sample rows; a file bigger than the limit is a
    batch of its own."""
    got = []
    for rows in (1, 450, 2_000_000):
        con = connect(tmp_path / f"r{rows}.duckdb")
        add_p(con)
        s = import_paths(con, [mixed], "P001", batch_rows=rows)
        got.append((outcomes(s), content(con)))
        con.close()
    assert got[0] == got[1] == got[2]


class _CountingExecutor(Executor):
    """Runs each task at once and records how many files it was given."""

    _max_workers = 2

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def submit(  # type: ignore[override]
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        self.sizes.append(len(args[0]))
        fut: Future[Any] = Future()
        fut.set_result(fn(*args, **kwargs))
        return fut


def test_workers_get_lists_of_small_files_and_big_files_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "in"
    d.mkdir()
    for k in range(20):
        activity_file(d / f"s{k:02d}.fit", utc(2024, 5, 1 + k, 9), np.full(100, 125.0), serial=k)
    big = activity_file(d / "s10_big.fit", utc(2024, 4, 1, 9), np.full(5000, 125.0), serial=50)
    monkeypatch.setattr(pipeline, "TASK_BYTES", big.stat().st_size)
    con = connect(tmp_path / "db.duckdb")
    add_p(con)
    ex = _CountingExecutor()
    s = import_paths(con, [d], "P001", executor=ex)
    assert s.count("imported") == 21 and s.exit_code == EXIT_OK
    assert sum(ex.sizes) == 21
    assert len(ex.sizes) < 21 // 2  # many files per task
    assert max(ex.sizes) > 1
    # the big file went alone: the task just before it was cut short
    names = [Path(f.path).name for f in s.files]
    i_big = names.index("s10_big.fit")
    cum = np.cumsum(ex.sizes)
    assert i_big in cum and i_big + 1 in cum
    # input order kept
    assert names == sorted(names)
    con.close()


def test_reference_decoder_counted_in_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "in"
    d.mkdir()
    for k in range(3):
        activity_file(d / f"f{k}.fit", utc(2024, 5, 1 + k, 9), np.full(100, 125.0), serial=k)
    (d / "notes.csv").write_text("no,heart,rate\n")
    real = pipeline.read_recording

    def labelled(fp: Any, *, path: str, **kw: Any) -> tuple[str, Recording]:
        fmt, rec = real(fp, path=path, **kw)
        rec.meta["fit_decoder"] = (
            "reference: developer fields" if path.endswith("f1.fit") else "vectorized"
        )
        return fmt, rec

    monkeypatch.setattr(pipeline, "read_recording", labelled)
    con = connect(tmp_path / "db.duckdb")
    add_p(con)
    s = import_paths(con, [d], "P001")
    assert [f.decoder for f in s.files if f.status == "imported"] == [
        "vectorized",
        "reference: developer fields",
        "vectorized",
    ]
    assert s.decoders() == {"vectorized": 2, "reference": 1}
    assert [Path(f.path).name for f in s.reference_decoded()] == ["f1.fit"]
    d2 = s.to_dict()
    assert d2["decoders"] == {"vectorized": 2, "reference": 1}
    assert [f["decoder"] for f in d2["files"]][:3] == [  # type: ignore[index]
        "vectorized",
        "reference: developer fields",
        "vectorized",
    ]
    con.close()


def test_summary_decoders_without_labels() -> None:
    s = ImportSummary("P", [FileOutcome("a", "imported"), FileOutcome("b", "duplicate")])
    assert s.decoders() == {"vectorized": 0, "reference": 0}
    s.files.append(FileOutcome("c", "imported", decoder="reference"))
    assert s.decoders() == {"vectorized": 0, "reference": 1}
    assert s.reference_decoded() == [s.files[-1]]


# --------------------------------------------------------------------------- store_sources
def _recordings() -> list[Recording]:
    t0 = utc(2024, 6, 1, 8)
    sec = np.timedelta64(1_000_000, "us")
    a = Recording(
        format="test",
        kind="activity",
        hr=HRSeries(t0 + np.arange(50) * sec, np.r_[np.full(49, 130.0), 0.0]),
        rr=RRSeries(t0 + np.array([5, 3, 4, 1]) * sec, np.array([800.0, 810, 805, 790])),
        activities=[
            ActivityInfo(t0, t0 + 50 * sec, "running", None, 50.0, 50.0, 130.0, 131.0),
            ActivityInfo(t0 + 10 * sec, t0 + 20 * sec, None),
        ],
        device="garmin fenix5",
        serial="123",
        utc_offset_s=3600,
        warnings=["w1", "w2"],
        sensor="optical",
    )
    b = Recording(
        format="test",
        kind="allday",
        hr=HRSeries(t0 + np.arange(0, 600, 60) * sec, np.full(10, 70.0)),
        vendor=[
            VendorSeries(
                "steps",
                "count",
                t0 + np.arange(3) * 60 * sec,
                np.full(3, 60.0),
                np.array([1.0, 2.0, 3.0]),
                None,
            ),
            VendorSeries(
                "resting_hr_bpm",
                None,
                t0 + np.arange(1) * sec,
                np.full(1, 86400.0),
                np.array([55.0]),
                "Apple Watch",
            ),  # type: ignore[arg-type]
        ],
        salvaged=True,
        salvage_reason="truncated at offset 99",
    )
    n = 12
    c = Recording(format="test", kind="allday")
    c.accel_epochs = AccelEpochs(
        start_us=(utc(2024, 6, 2).astype(np.int64) + np.arange(n) * 5_000_000).astype(np.int64),
        epoch_s=5.0,
        enmo_mg=np.linspace(0, 50, n),
        mad_mg=np.linspace(1, 5, n),
        nonwear=np.arange(n) % 5 == 0,
        clipped=np.zeros(n, np.int64),
        n_samples=np.full(n, 500, np.int64),
        info={"sample_rate_hz": 100.0, "nonwear_rule": "ggir2023"},
    )
    empty = Recording(format="test", kind="activity")
    return [a, b, c, empty]


def test_store_sources_batch_equals_one_at_a_time(tmp_path: Path) -> None:
    dumps = []
    for mode in ("batch", "single"):
        con = connect(tmp_path / f"{mode}.duckdb")
        add_p(con)
        recs = _recordings()
        files = [
            SourceFile(f"sha{i}", f"/f{i}", 10 + i, r, clean_hr(r.hr), archive_sha256=None)
            for i, r in enumerate(recs)
        ]
        files.insert(2, SourceFile("bad", "/bad", 5, fmt="fit", reason="truncated at offset 3"))
        if mode == "batch":
            with transaction(con):
                ids = store_sources(con, "P001", files)
        else:
            ids = []
            for f in files:
                with transaction(con):
                    ids.extend(store_sources(con, "P001", [f]))
        assert ids == sorted(ids) and len(set(ids)) == 5
        dumps.append(content(con))
        con.close()
    assert dumps[0] == dumps[1]
    c = dumps[0]
    assert len(c["hr"]) == 49 + 10  # the 0 bpm sample is not stored
    assert [r[1] for r in c["rr"]] == sorted(r[1] for r in c["rr"])  # in time order
    assert len(c["vendor"]) == 4 and {r[2] for r in c["vendor"]} == {"count", None}
    assert {r[6] for r in c["vendor"]} == {None, "Apple Watch"}
    assert len(c["activities"]) == 2 and len(c["accel"]) == 12
    assert len(c["accel_processing"]) == 1
    sid, rate, rng, n_samples, n_epochs, n_clipped, accepted, *_, rule, info = c[
        "accel_processing"
    ][0]
    assert (rate, rng, n_samples, n_epochs, n_clipped, accepted, rule) == (
        100.0,
        None,
        12 * 500,
        12,
        0,
        None,
        "ggir2023",
    )
    assert json.loads(info)["sample_rate_hz"] == 100.0
    assert {r[-1] for r in c["accel"]} == {sid}
    statuses = [(r[8], r[9]) for r in c["sources"]]
    assert statuses == [
        ("imported", None),
        ("salvaged", "truncated at offset 99"),
        ("quarantined", "truncated at offset 3"),
        ("imported", None),
        ("imported", None),
    ]
    assert c["sources"][0][17] == "w1; w2" and c["sources"][0][18] == "optical"
    assert c["pending"] == [("P001",)]


def test_existing_sources_one_query(tmp_path: Path) -> None:
    con = connect(tmp_path / "db.duckdb")
    add_p(con)
    with transaction(con):
        rec = Recording(format="test", kind="activity")
        store_recording(
            con,
            sha256="x1",
            path="/x1",
            size=1,
            participant_id="P001",
            rec=rec,
            hr=clean_hr(rec.hr),
            replace_id=None,
        )
    got = existing_sources(con, ["x1", "nope", "x1"])
    assert list(got) == ["x1"] and got["x1"][1:] == ("imported", "P001")
    assert existing_sources(con, []) == {}
    con.close()


# --------------------------------------------------------------------------- invariants
@pytest.fixture(scope="module")
def pool_of_files(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Three readable FIT files and one damaged one, as bytes."""
    d = tmp_path_factory.mktemp("pool")
    out = []
    for k in range(3):
        f = activity_file(d / f"{k}.fit", utc(2024, 5, 1 + k, 9), np.full(120 + k, 130.0), serial=k)
        out.append(f.read_bytes())
    out.append(cut_fit(d / "cut.fit", utc(2024, 5, 9, 9)).read_bytes())
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picks=st.lists(st.integers(0, 3), min_size=1, max_size=9),
    batch=st.integers(1, 5),
)
def test_one_source_per_bytes_whatever_the_batching(
    pool_of_files: list[bytes], picks: list[int], batch: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "in"
        d.mkdir()
        for i, k in enumerate(picks):
            (d / f"{i:02d}_{k}.fit").write_bytes(pool_of_files[k])
        con = connect(Path(tmp) / "db.duckdb")
        add_p(con)
        s = import_paths(con, [d], "P001", batch_files=batch, recompute_after=False)
        first: dict[int, int | None] = {}
        for f, k in zip(s.files, picks, strict=True):
            good = k < 3
            if k not in first:
                assert f.status == ("imported" if good else "quarantined")
                first[k] = f.source_id
            else:
                assert f.status == ("duplicate" if good else "quarantined")
            assert f.source_id == first[k] is not None
        assert con.execute("SELECT count(*) FROM sources").fetchone() == (len(set(picks)),)
        n_hr = con.execute("SELECT count(*) FROM hr_samples").fetchone()
        assert n_hr == (sum(120 + k for k in set(picks) if k < 3),)
        con.close()


# --------------------------------------------------------------------------- crash
_DIE = """
import os, signal, sys
from pathlib import Path
import actidose.storage.write as w
from actidose.pipeline import import_paths
from actidose.storage.db import connect

target, nth = sys.argv[3], int(sys.argv[4])
seen = [0]
real = w.insert_columns

def dying(con, into, *args, **kwargs):
    if into.startswith(target):
        seen[0] += 1
        if seen[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(con, into, *args, **kwargs)

w.insert_columns = dying
con = connect(sys.argv[1])
import_paths(con, [Path(sys.argv[2])], "P001", batch_files=4, batch_seconds=1e9)
"""


@pytest.fixture
def ten_files(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    db = tmp_path / "k.duckdb"
    con = connect(db)
    add_p(con)
    con.close()
    d = tmp_path / "files"
    d.mkdir()
    for k in range(10):
        activity_file(d / f"f{k}.fit", utc(2024, 1, 1 + k, 9), np.full(500, 125.0), serial=k)
    yield db, d


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")
@pytest.mark.parametrize(
    ("target", "nth", "whole"),
    [
        ("hr_samples", 1, 0),  # inside the first batch: nothing
        ("sources", 2, 4),  # the second batch has written its sources rows only
        ("activities", 3, 8),  # the third batch has written sources and samples
    ],
)
def test_sigkill_mid_batch_leaves_whole_files(
    ten_files: tuple[Path, Path], target: str, nth: int, whole: int
) -> None:
    db, d = ten_files
    proc = subprocess.run(
        [sys.executable, "-c", _DIE, str(db), str(d), target, str(nth)],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    con = connect(db)  # the next command
    rows = con.execute(
        "SELECT s.source_id, s.n_samples, count(h.ts) FROM sources s "
        "LEFT JOIN hr_samples h USING (source_id) GROUP BY ALL"
    ).fetchall()
    assert len(rows) == whole
    assert all(declared == stored == 500 for _, declared, stored in rows)
    acts = con.execute("SELECT count(*) FROM activities").fetchone()
    assert acts == (whole,)
    s = import_paths(con, [d], "P001")
    assert s.count("imported") == 10 - whole and s.count("duplicate") == whole
    assert con.execute("SELECT count(*) FROM sources").fetchone() == (10,)
    assert con.execute("SELECT count(*) FROM hr_samples").fetchone() == (5000,)
    assert con.execute("SELECT count(*) FROM pending_recompute").fetchone() == (0,)
    assert con.execute("SELECT sum(sessions) FROM daily_load").fetchone() == (10,)
    con.close()


def test_a_failing_batch_is_retried_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database error in a batch leaves the files before the one at fault written, and the
    error names nothing else: the same as one transaction per file."""
    d = tmp_path / "in"
    d.mkdir()
    for k in range(5):
        activity_file(d / f"f{k}.fit", utc(2024, 5, 1 + k, 9), np.full(100, 125.0), serial=k)
    import actidose.storage.write as w

    real = w._write_samples
    bad_start = int(utc(2024, 5, 4, 9).astype(np.int64))

    def fail_on_f3(con: duckdb.DuckDBPyConnection, pid: str, files: Any) -> None:
        if any(hr.ts_us.size and int(hr.ts_us[0]) == bad_start for _, _, hr in files):
            raise duckdb.ConstraintException("simulated failure on the 4th file")
        real(con, pid, files)

    monkeypatch.setattr(w, "_write_samples", fail_on_f3)
    con = connect(tmp_path / "db.duckdb")
    add_p(con)
    with pytest.raises(duckdb.ConstraintException, match="4th file"):
        import_paths(con, [d], "P001")
    got = con.execute("SELECT path FROM sources ORDER BY source_id").fetchall()
    assert [Path(p[0]).name for p in got] == ["f0.fit", "f1.fit", "f2.fit"]
    n = con.execute("SELECT count(*) FROM hr_samples").fetchone()
    assert n == (300,)
    con.close()


def test_summary_in_json_has_decoders(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    activity_file(d / "f.fit", utc(2024, 5, 1, 9), np.full(100, 125.0))
    con = connect(tmp_path / "db.duckdb")
    add_p(con)
    s = import_paths(con, [d], "P001")
    con.close()
    back = json.loads(json.dumps(s.to_dict()))
    assert set(back["decoders"]) == {"vectorized", "reference"}
    assert back["counts"]["imported"] == 1 and back["exit_code"] == EXIT_OK


def test_batch_committed_while_waiting_for_a_slow_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files already parsed are not held back while a worker is still busy with a slow file:
    the batch is committed once it is due."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    d = tmp_path / "in"
    d.mkdir()
    for k in range(6):
        activity_file(d / f"f{k}.fit", utc(2024, 5, 1 + k, 9), np.full(100, 125.0), serial=k)
    real = pipeline.read_recording
    slow_done: list[float] = []

    def slow_f3(fp: Any, *, path: str, **kw: Any) -> tuple[str, Recording]:
        got = real(fp, path=path, **kw)
        if path.endswith("f3.fit"):
            time.sleep(0.8)
            slow_done.append(time.monotonic())
        return got

    flushes: list[tuple[float, int]] = []
    real_flush = pipeline._Run.flush

    def recording_flush(self: Any) -> None:
        if self.batch:
            flushes.append((time.monotonic(), len(self.batch)))
        real_flush(self)

    monkeypatch.setattr(pipeline, "read_recording", slow_f3)
    monkeypatch.setattr(pipeline._Run, "flush", recording_flush)
    con = connect(tmp_path / "db.duckdb")
    add_p(con)
    with ThreadPoolExecutor(2) as ex:
        s = import_paths(con, [d], "P001", executor=ex, batch_seconds=0.1)
    assert s.count("imported") == 6
    assert [Path(f.path).name for f in s.files] == [f"f{k}.fit" for k in range(6)]
    assert sum(n for _, n in flushes) == 6
    assert flushes[0][0] < slow_done[0]  # f0.. committed before f3 was parsed
    assert con.execute("SELECT count(*) FROM sources").fetchone() == (6,)
    con.close()


def test_cli_summary_lists_files_read_by_the_reference_decoder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from actidose.cli import _print_summary
    from actidose.pipeline import FileOutcome, ImportSummary

    s = ImportSummary("P001")
    s.files.append(FileOutcome("/x/a.fit", "imported", n_samples=10, decoder="vectorized"))
    s.files.append(
        FileOutcome("/x/b.fit", "imported", n_samples=5, decoder="reference: developer fields")
    )
    _print_summary(s)
    out = capsys.readouterr().out
    assert "1 FIT file(s) read by the reference decoder" in out
    assert "/x/b.fit" in out and "reference: developer fields" in out
    assert "/x/a.fit" not in out
