"""The parts path (actidose.scale): one file -> Parquet parts, derived parts per participant,
loaded into the database with the same rows as the ordinary import."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import shutil
import threading
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import actidose.pipeline as pipeline
from actidose.errors import StorageError, UsageError
from actidose.pipeline import import_paths
from actidose.scale import (
    Dataset,
    FileSummary,
    FileTask,
    derive_participant,
    ensure_run,
    load_parts,
    prepare_run,
    process_file,
    source_id_of,
)
from actidose.scale.parts import part_path, temp_name
from actidose.scale.tables import SOURCE_TABLES
from actidose.storage import participants
from actidose.storage import symptoms as ssym
from actidose.storage.db import connect
from actidose.storage.derive import load_config, save_config
from actidose.storage.schema import DERIVED_TABLES

from .conftest import activity_file, add_p, need_corpus, utc

SOURCE_LEVEL = SOURCE_TABLES


# ---------------------------------------------------------------------------------- helpers
def roster(con: duckdb.DuckDBPyConnection, tmp: Path) -> None:
    """Four participants in four zones, an HR anchor version and PHQ-9 ratings."""
    add_p(con, "P001", tz="Europe/London")
    add_p(con, "P002", tz="America/New_York", sex="m", hr_max=None)
    add_p(con, "P003", tz="Europe/Berlin")
    add_p(con, "P004", tz="Australia/Sydney", sex=None, hr_rest=None)
    participants.add_anchor(con, "P001", date(2017, 5, 1), hr_rest_bpm=55.0)
    ratings = tmp / "ratings.csv"
    if not ratings.exists():
        rows = "participant_id,timestamp,instrument,item,value\n"
        for ts in ("2017-05-20T10:00Z", "2017-06-12T10:00Z"):
            rows += "".join(f"P001,{ts},phq9,{i + 1},{i % 3}\n" for i in range(9))
        ratings.write_text(rows)
    ssym.import_file(con, ratings)


@dataclass
class Batch:
    """Inputs per participant, in import order."""

    files: dict[str, list[Path]]

    def items(self) -> Iterator[tuple[str, Path]]:
        for pid, paths in self.files.items():
            for p in paths:
                yield pid, p


def mixed_batch(tmp: Path) -> Batch:
    """Corpus FIT/TCX/Polar/Fitbit/accelerometer files, a damaged file, a duplicate, an archive
    (a FIT file, a GPX file and a file nobody reads), and an Apple Health export."""
    corpus = need_corpus()
    src = tmp / "inputs"
    src.mkdir()
    fit = corpus / "fit"
    damaged = src / "damaged.fit"
    data = (fit / "20170518-191602-1740899583.fit").read_bytes()
    damaged.write_bytes(data[: len(data) * 2 // 3])
    duplicate = src / "copy-of-run.fit"
    shutil.copy(fit / "garmin-fenix-5-run.fit", duplicate)
    made = activity_file(src / "made.fit", utc(2017, 3, 1, 8), np.full(900, 142.0), serial=7)
    archive = src / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(made, "watch/made.fit")
        z.write(corpus / "gpx" / "gpx_with_garmin_extension.gpx", "watch/route.gpx")
        z.writestr("watch/notes.txt", "nothing to import here\n")
    made.unlink()
    return Batch(
        {
            "P001": [
                corpus / "polar" / "polar-flow-running.json",
                fit / "20170518-191602-1740899583.fit",
                fit / "garmin-fenix-5-walk.fit",
                fit / "garmin-fenix-5-run.fit",
                damaged,
                duplicate,
                archive,
                corpus / "tcx" / "sup_activity_1.tcx",
            ],
            "P002": [
                corpus / "fitbit" / "heart_rate-1995-06-24.json",
                corpus / "fitbit" / "steps-1995-06-23_Fitbit.json",
            ],
            "P003": [
                corpus / "accel" / "ax3_testfile.cwa",
                corpus / "accel" / "gnactv_sample.bin",
                corpus / "accel" / "GENEActiv_testfile.bin",
            ],
            "P004": [corpus / "apple-health" / "alxdrcirilo-export.zip"],
        }
    )


def content(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every source-level and derived table, rows sorted, ``source_id`` (and the ids made from
    it) replaced by the source's sha256, ``imported_at`` left out."""
    sha = dict(con.execute("SELECT source_id, sha256 FROM sources").fetchall())

    def session(v: Any) -> Any:
        return None if v is None else (sha[int(v) // 1000], int(v) % 1000)

    def value(col: str, v: Any) -> Any:
        if v is None:
            return None
        if col == "source_id":
            return sha[int(v)]
        if col in ("session_id", "duplicate_of"):
            return session(v)
        if col == "dose_sources":
            return ",".join(sorted(sha[int(s)] for s in str(v).split(",")))
        if isinstance(v, float) and np.isnan(v):
            return "nan"
        return v

    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in (*SOURCE_LEVEL, *DERIVED_TABLES, "pending_recompute"):
        cols = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position",
                [table],
            ).fetchall()
            if r[0] != "imported_at"
        ]
        rows = con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
        mapped = [tuple(value(c, v) for c, v in zip(cols, r, strict=True)) for r in rows]
        out[table] = sorted(mapped, key=repr)
    return out


def run_parts(
    con: duckdb.DuckDBPyConnection, batch: Batch, root: Path, **kw: Any
) -> list[FileSummary]:
    """The parts path by hand: snapshot, process_file per input, derive per participant."""
    task = prepare_run(con, root, **kw)
    got = [process_file(p, pid, root, task=task) for pid, p in batch.items()]
    for pid in batch.files:
        derive_participant(pid, root, params_id=task.params_id)
    return got


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: (bytes, mtime_ns)."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def fit_files(folder: Path, n: int, *, day: int = 1, bpm: float = 140.0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        activity_file(
            folder / f"act{i}.fit",
            utc(2024, 3, day + i, 7),
            np.full(600, bpm + i),
            serial=100 + i,
        )
        for i in range(n)
    ]


# ---------------------------------------------------------------------------------- the contract
def test_same_rows_as_the_ordinary_import(tmp_path: Path) -> None:
    batch = mixed_batch(tmp_path)
    a = connect(tmp_path / "ordinary.duckdb")
    b = connect(tmp_path / "parts.duckdb")
    try:
        roster(a, tmp_path)
        roster(b, tmp_path)
        expected = []
        for pid, paths in batch.files.items():
            s = import_paths(a, paths, pid)
            expected += [(Path(f.path).name, f.status, f.reason) for f in s.files]
        summaries = run_parts(b, batch, tmp_path / "parts")
        got = [(Path(x.input).name, x.status, x.reason) for s in summaries for x in s.leaves()]
        assert got == expected
        loaded = load_parts(b, tmp_path / "parts")
        # the derived rows came from the derived parts, not from a recompute in the database
        assert sorted(loaded.derived_from_parts) == ["P001", "P002", "P003", "P004"]
        assert loaded.recomputed == ()
        want, have = content(a), content(b)
        for table in want:
            assert have[table] == want[table], table
        # the batch exercised what it is meant to
        statuses = {x[1] for x in expected}
        assert {"imported", "quarantined", "duplicate", "skipped"} <= statuses
        assert want["accel_epochs"] and want["vendor_activity"] and want["symptom_exposure"]
        assert want["sessions"] and want["rr_intervals"] and want["hr_estimates"]
        # source ids are the deterministic ones
        ids = b.execute("SELECT source_id, sha256 FROM sources").fetchall()
        assert all(sid == source_id_of(sha) for sid, sha in ids)
    finally:
        a.close()
        b.close()


def test_rerun_is_a_no_op(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_p(con)
    files = fit_files(tmp_path / "in", 2)
    bad = tmp_path / "in" / "bad.fit"
    bad.write_bytes(files[0].read_bytes()[:200])
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    first = [process_file(f, "P001", root, task=task) for f in [*files, bad]]
    assert [s.status for s in first] == ["imported", "imported", "quarantined"]
    before = tree(root)

    def boom(*_: Any, **__: Any) -> Any:
        raise AssertionError("a done file must not be parsed again")

    monkeypatch.setattr(pipeline, "_parse", boom)
    again = [process_file(f, "P001", root) for f in [*files, bad]]  # task from _run.json
    assert tree(root) == before  # same bytes, same mtimes: nothing written
    assert [replace(s, seconds=0.0) for s in again] == [replace(s, seconds=0.0) for s in first]
    # the quarantined file is recorded with its reason
    row = pq.read_table(part_path(root, "sources", first[2].sha256 or "")).to_pylist()[0]
    assert row["status"] == "quarantined" and row["reason"] == first[2].reason


def test_a_retried_task_writes_the_same_bytes(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    add_p(con)
    (f,) = fit_files(tmp_path / "in", 1)
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    s = process_file(f, "P001", root, task=task)
    before = {k: v[0] for k, v in tree(root).items()}
    shutil.rmtree(root / "parts")  # a task redone from scratch (e.g. on another worker)
    redo = process_file(f, "P001", root, task=task)
    assert replace(redo, seconds=0.0) == replace(s, seconds=0.0)
    after = {k: v[0] for k, v in tree(root).items()}
    assert after == before


def test_leftover_temp_file_is_ignored_and_overwritten(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    add_p(con)
    (f,) = fit_files(tmp_path / "in", 1)
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    from actidose.pipeline import _fingerprint

    sha = _fingerprint(f)[0]
    final = part_path(root, "sources", sha)
    final.parent.mkdir(parents=True)
    # a killed write of this process and thread, and one of another process
    mine = temp_name(final)
    mine.write_bytes(b"half a parquet file")
    other = final.with_name(f".{final.name}.tmp-elsewhere-1-2")
    other.write_bytes(b"half a parquet file")
    hr_other = part_path(root, "hr_samples", "ab" * 32).with_name(".x.parquet.tmp-h-1-2")
    hr_other.parent.mkdir(parents=True)
    hr_other.write_bytes(b"junk")
    s = process_file(f, "P001", root, task=task)
    assert s.status == "imported"
    assert not mine.exists()  # overwritten, then renamed into place
    assert pq.read_table(final).num_rows == 1
    ds = Dataset.open(root)
    assert list(ds.sources) == [sha]
    assert all(p.name == f"{sha}.parquet" for p in ds.parts("hr_samples"))
    loaded = load_parts(con, root)
    assert loaded.sources_new == 1 and loaded.rows["hr_samples"] == 600


def _run_one(args: tuple[str, str, str]) -> FileSummary:
    path, pid, root = args
    return process_file(path, pid, root)


def test_concurrent_calls_on_one_file_make_one_set_of_parts(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    add_p(con)
    (f,) = fit_files(tmp_path / "in", 1)
    by_threads, by_procs = tmp_path / "threads", tmp_path / "procs"
    prepare_run(con, by_threads)
    shutil.copytree(by_threads, by_procs)  # the same run (same _run.json): the same bytes
    start = threading.Barrier(3)

    def together(root: Path) -> FileSummary:
        start.wait()
        return process_file(f, "P001", root)

    with ThreadPoolExecutor(3) as threads:
        got = list(threads.map(together, [by_threads] * 3))
    args = (str(f), "P001", str(by_procs))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        got += list(pool.map(_run_one, [args, args]))
    for s in got:
        assert s.status == "imported" and s.n_samples == 600
    for root in (by_threads, by_procs):
        files = list((root / "parts").rglob("*.parquet"))
        assert sorted(p.parent.parent.name for p in files) == [
            "activities",
            "hr_samples",
            "sources",
        ]
        assert not list(root.rglob(".*tmp-*"))
    assert {k: v[0] for k, v in tree(by_threads / "parts").items()} == {
        k: v[0] for k, v in tree(by_procs / "parts").items()
    }
    loaded = load_parts(con, by_threads)
    assert loaded.rows["hr_samples"] == 600
    assert con.execute("SELECT count(*) FROM hr_samples").fetchone() == (600,)


def test_same_bytes_for_two_participants_are_one_source(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    add_p(con, "P001")
    add_p(con, "P002")
    (f,) = fit_files(tmp_path / "a", 1)
    g = tmp_path / "b" / "same.fit"
    g.parent.mkdir()
    shutil.copy(f, g)
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    first = process_file(f, "P001", root, task=task)
    second = process_file(g, "P002", root, task=task)
    assert first.status == "imported"
    assert second.status == "duplicate"
    assert second.reason == "same bytes already imported for participant P001"
    assert second.source_id == first.source_id
    for pid in ("P001", "P002"):
        derive_participant(pid, root, params_id=task.params_id)
    load_parts(con, root)
    assert con.execute("SELECT participant_id, count(*) FROM sources GROUP BY 1").fetchall() == [
        ("P001", 1)
    ]


def test_an_input_owned_by_another_unfinished_task_is_a_duplicate(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    add_p(con)
    (f,) = fit_files(tmp_path / "a", 1)
    g = tmp_path / "same.fit"
    shutil.copy(f, g)
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    from actidose.scale.parts import _Writer

    assert (
        _Writer(root, task, "P001").claim(
            hashlib.sha256(f.read_bytes()).hexdigest(), str(f.resolve())
        )
        is None
    )  # f's task claimed the bytes, then died
    s = process_file(g, "P001", root, task=task)
    assert s.status == "duplicate" and str(f.resolve()) in (s.reason or "")
    assert not (root / "parts" / "sources").exists()
    # the owner's retry goes ahead
    assert process_file(f, "P001", root, task=task).status == "imported"


def test_archive_members_and_a_rerun(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    add_p(con)
    files = fit_files(tmp_path / "in", 2)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in files:
            z.write(f, f"fit/{f.name}")
        z.writestr("fit/readme.txt", "no heart rate\n")
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    s = process_file(archive, "P001", root, task=task)
    assert s.status == "imported" and s.format == "archive"
    assert [m.status for m in s.members] == ["imported", "imported", "skipped"]
    assert s.members[0].input == f"{archive.resolve()}!fit/act0.fit"
    assert s.n_samples == 1200
    before = tree(root)
    again = process_file(archive, "P001", root, task=task)
    assert tree(root) == before
    assert [m.status for m in again.members] == ["imported", "imported", "skipped"]


def test_run_identity_mismatch_is_refused_naming_the_setting(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    add_p(con)
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    stored = ensure_run(root, replace(task, run_start_us=1))
    assert stored.run_start_us == task.run_start_us  # the run's start is kept
    with pytest.raises(UsageError, match=r"salvage \(run: False, now: True\)"):
        prepare_run(con, root, salvage=True)
    save_config(con, replace(load_config(con), tau_ctl=30.0))
    with pytest.raises(UsageError, match=r"dose_config\.tau_ctl \(run: 42\.0, now: 30\.0\)"):
        prepare_run(con, root)
    with pytest.raises(UsageError, match=r"options\.format"):
        ensure_run(root, FileTask.create(task.dose_config, options={"format": "csv"}))


def test_derive_is_idempotent_and_follows_new_sources(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    add_p(con)
    files = fit_files(tmp_path / "in", 3)
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    for f in files[:2]:
        process_file(f, "P001", root, task=task)
    d1 = derive_participant("P001", root, params_id=task.params_id)
    assert d1.status == "derived" and d1.tables["sessions"] == 2
    assert derive_participant("P001", root, params_id=task.params_id).status == "unchanged"
    process_file(files[2], "P001", root, task=task)
    d2 = derive_participant("P001", root, params_id=task.params_id)
    assert d2.status == "derived" and d2.digest != d1.digest and d2.tables["sessions"] == 3
    left = sorted(p.name for p in (root / "derived" / "sessions").rglob("*.parquet"))
    assert left == [f"{d2.digest}.parquet"]  # the older digest is removed
    with pytest.raises(UsageError, match="params_id"):
        derive_participant("P001", root, params_id="0000")
    with pytest.raises(UsageError, match="unknown participant"):
        derive_participant("P999", root, params_id=task.params_id)


def test_load_is_idempotent_and_recomputes_when_the_database_moved_on(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    add_p(con)
    files = fit_files(tmp_path / "in", 2)
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    for f in files:
        process_file(f, "P001", root, task=task)
    derive_participant("P001", root, params_id=task.params_id)
    # the anchors change after the snapshot: the derived parts are no longer the right ones
    participants.update(con, "P001", hr_rest_bpm=50.0)
    first = load_parts(con, root)
    assert first.sources_new == 2 and first.derived_from_parts == ()
    assert first.recomputed == ("P001",)
    rest = con.execute("SELECT DISTINCT hr_rest_bpm FROM sessions").fetchall()
    assert rest == [(50.0,)]
    snapshot = content(con)
    second = load_parts(con, root)
    assert second.sources_new == 0 and second.sources_present == 2
    assert sum(second.rows.values()) == 0 and second.recomputed == ()
    assert content(con) == snapshot


def test_load_refuses_unknown_participants_and_colliding_ids(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    add_p(con)
    (f,) = fit_files(tmp_path / "in", 1)
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    s = process_file(f, "P001", root, task=task)
    other = connect(tmp_path / "other.duckdb")
    try:
        with pytest.raises(UsageError, match="P001"):
            load_parts(other, root)
        assert other.execute("SELECT count(*) FROM sources").fetchone() == (0,)
    finally:
        other.close()
    con.execute(
        "INSERT INTO sources (source_id, sha256, path, participant_id, status, imported_at) "
        "VALUES (?, ?, '/data/elsewhere.fit', 'P001', 'imported', now())",
        [s.source_id, "f" * 64],
    )
    with pytest.raises(StorageError, match=r"elsewhere\.fit") as err:
        load_parts(con, root)
    assert str(f.resolve()) in str(err.value)
    assert con.execute("SELECT count(*) FROM hr_samples").fetchone() == (0,)


def test_a_quarantined_source_is_replaced_by_a_readable_copy(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    """The ordinary import quarantined a cut file; a salvage run in parts reads it."""
    add_p(con)
    whole = fit_files(tmp_path / "in", 1)[0]
    cut = tmp_path / "cut.fit"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    import_paths(con, [cut], "P001")
    (sid, status) = con.execute("SELECT source_id, status FROM sources").fetchone() or (0, "")
    assert status == "quarantined"
    root = tmp_path / "parts"
    task = prepare_run(con, root, salvage=True)
    s = process_file(cut, "P001", root, task=task)
    assert s.status == "salvaged"
    derive_participant("P001", root, params_id=task.params_id)
    loaded = load_parts(con, root)
    assert loaded.sources_replaced == 1 and loaded.recomputed == ("P001",)
    assert con.execute("SELECT source_id, status FROM sources").fetchall() == [(sid, "salvaged")]
    assert con.execute("SELECT DISTINCT source_id FROM hr_samples").fetchall() == [(sid,)]
    assert con.execute("SELECT count(*) FROM sessions WHERE source_id = ?", [sid]).fetchone() == (
        1,
    )


def test_unreadable_path_fails_without_parts(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    add_p(con)
    root = tmp_path / "parts"
    task = prepare_run(con, root)
    s = process_file(tmp_path / "missing.fit", "P001", root, task=task)
    assert s.status == "failed" and s.reason and s.reason.startswith("cannot read")
    assert not (root / "parts").exists()
    with pytest.raises(UsageError, match="unknown participant"):
        process_file(fit_files(tmp_path / "in", 1)[0], "P404", root, task=task)


def test_units_are_picklable(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    add_p(con)
    task = prepare_run(con, tmp_path / "parts")
    assert pickle.loads(pickle.dumps(process_file)) is process_file
    assert pickle.loads(pickle.dumps(derive_participant)) is derive_participant
    assert pickle.loads(pickle.dumps(task)) == task
    s = process_file(fit_files(tmp_path / "in", 1)[0], "P001", tmp_path / "parts", task=task)
    assert pickle.loads(pickle.dumps(s)) == s
    assert FileSummary.from_dict(s.to_dict()) == s


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_source_ids_fit_every_id_made_from_them(data: bytes) -> None:
    sha = hashlib.sha256(data).hexdigest()
    sid = source_id_of(sha)
    assert 0 <= sid < 2**52 and sid == source_id_of(sha)
    assert sid * 1000 + 999 < 2**63  # sessions.session_id = source_id * 1000 + idx
    assert float(sid) == sid


@settings(max_examples=50, deadline=None)
@given(
    st.recursive(
        st.builds(
            FileSummary,
            st.text(max_size=8),
            st.text(min_size=1, max_size=4),
            st.sampled_from(["imported", "salvaged", "quarantined", "failed", "skipped"]),
            st.none() | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
            st.none() | st.text(max_size=20),
            st.none() | st.sampled_from(["fit", "tcx"]),
            st.none() | st.integers(0, 2**52),
            st.integers(0, 10**6),
        ),
        lambda inner: st.builds(
            FileSummary,
            st.text(max_size=8),
            st.just("P"),
            st.just("imported"),
            members=st.lists(inner, max_size=3).map(tuple),
        ),
        max_leaves=6,
    )
)
def test_summaries_round_trip_through_json(s: FileSummary) -> None:
    import json

    assert FileSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_process_file_imports_nothing_heavy_at_module_import() -> None:
    code = (
        "import sys, actidose.scale; "
        "bad = [m for m in ('duckdb', 'pyarrow', 'actidose.pipeline') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == ""


def test_arrow_rows_equal_the_rows_duckdb_would_cast(monkeypatch: pytest.MonkeyPatch) -> None:
    """source_tables builds each insert's rows in Arrow (columns cast to the types DuckDB
    gives the table); they equal the rows DuckDB's own casts give, for every corpus file
    from which something can be read, readable or quarantined."""
    from actidose.ingest import fit
    from actidose.ingest.samples import clean_hr
    from actidose.recording import HRSeries
    from actidose.scale import tables
    from actidose.storage.write import SourceFile

    corpus = need_corpus()
    files: list[SourceFile] = [SourceFile("b" * 64, "bad.fit", 3, fmt="fit", reason="bad CRC")]
    for f in sorted((corpus / "fit").glob("*.fit"))[:12]:
        try:
            with f.open("rb") as fp:
                rec = fit.read(fp, path=str(f), salvage=True)
        except Exception:
            continue
        hr = clean_hr(rec.hr)
        rec.hr = HRSeries.empty()
        files.append(SourceFile(hashlib.sha256(f.read_bytes()).hexdigest(), str(f), 1, rec, hr))
    assert len(files) > 5
    built: list[bool] = []
    project = tables._project

    def spy(ins: Any) -> Any:
        got = project(ins)
        built.append(got is not None)
        return got

    monkeypatch.setattr(tables, "_project", spy)
    fast = [tables.source_tables("P1", sf, source_id=7, imported_at_us=1) for sf in files]
    assert built and all(built)  # every insert of these files was built in Arrow
    monkeypatch.setattr(tables, "_project", lambda *a, **k: None)
    slow = [tables.source_tables("P1", sf, source_id=7, imported_at_us=1) for sf in files]
    for a, b in zip(fast, slow, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            assert a[name].schema == b[name].schema, name
            assert a[name].equals(b[name]), name
