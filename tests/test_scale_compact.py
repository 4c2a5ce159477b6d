"""Compacting a parts folder and the SQL contract over it (actidose.scale.compact): the same
answers through views, after a compact, after an interrupted compact, and once loaded."""

from __future__ import annotations

import importlib
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from actidose.errors import UsageError
from actidose.scale import (
    Dataset,
    FileTask,
    attach,
    compact,
    derive_participant,
    load_parts,
    prepare_run,
    process_file,
)
from actidose.storage.db import connect
from actidose.storage.schema import DERIVED_TABLES, RECORDED_TABLES

from .conftest import CORPUS, activity_file, add_p, utc

CONTRACT = (*RECORDED_TABLES, *DERIVED_TABLES)
# the module (the package's name ``compact`` is the function)
compact_mod = importlib.import_module("actidose.scale.compact")


def rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    def norm(v: Any) -> Any:
        return "nan" if isinstance(v, float) and math.isnan(v) else v

    got = con.execute(f"SELECT * FROM {table}").fetchall()
    return sorted((tuple(norm(v) for v in r) for r in got), key=repr)


def everything(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    return {t: rows(con, t) for t in CONTRACT}


QUERIES = (
    "SELECT participant_id, count(*), avg(bpm) FROM hr_samples GROUP BY 1 ORDER BY 1",
    "SELECT participant_id, count(*), sum(trimp_banister), sum(mvpa_min) FROM daily_load "
    "GROUP BY 1 ORDER BY 1",
    "SELECT s.participant_id, count(*), sum(h.bpm) FROM sources s JOIN hr_samples h "
    "USING (source_id) GROUP BY 1 ORDER BY 1",
)


class Study:
    """A database with a roster and a parts folder (made once per module, copied per test),
    and helpers to add files to it."""

    PIDS = (("P001", "Europe/London"), ("P002", "America/Chicago"), ("P003", "UTC"))

    def __init__(self, tmp: Path, inputs: Path, n: int = 0) -> None:
        self.tmp = tmp
        self.inputs = inputs  # the template's input files (their paths are in the parts)
        self.root = tmp / "parts"
        self.db = connect(tmp / "study.duckdb")
        if not n:
            for pid, tz in self.PIDS:
                add_p(self.db, pid, tz=tz)
        self.task: FileTask = prepare_run(self.db, self.root)
        self.n = n

    def add(self, pid: str, k: int = 2, *, day: int = 1) -> None:
        folder = self.tmp / "in" / pid
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(k):
            self.n += 1
            f = activity_file(
                folder / f"a{self.n}.fit",
                utc(2024, 4, day + i, 6 + i),
                120.0 + 40.0 * np.sin(np.arange(900) / 60.0) + i,
                serial=self.n,
            )
            assert process_file(f, pid, self.root, task=self.task).status == "imported"

    def add_accel(self, pid: str) -> bool:
        cwa = CORPUS / "accel" / "ax3_testfile.cwa"
        if not cwa.exists():
            return False
        return process_file(cwa, pid, self.root, task=self.task).status == "imported"

    def derive(self, *pids: str) -> None:
        for pid in pids or [p for p, _ in self.PIDS]:
            derive_participant(pid, self.root, params_id=self.task.params_id)

    def views(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        attach(con, self.root)
        return con

    def loaded(self, name: str) -> duckdb.DuckDBPyConnection:
        """A database with the snapshot's roster rows and the parts loaded."""
        con = connect(self.tmp / f"{name}.duckdb")
        con.execute(
            "INSERT INTO participants SELECT * FROM read_parquet(?)",
            [str(self.root / "_study" / "participants.parquet")],
        )
        load_parts(con, self.root)
        return con


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    tmp = tmp_path_factory.mktemp("template")
    s = Study(tmp, tmp / "in")
    s.add("P001", 3)
    s.add("P002", 2, day=10)
    s.add("P003", 1, day=20)
    s.add_accel("P003")
    s.derive()
    s.db.close()
    return tmp, s.n


@pytest.fixture
def study(template: tuple[Path, int], tmp_path: Path) -> Iterator[Study]:
    src, n = template
    for name in ("parts", "study.duckdb"):
        if (src / name).is_dir():
            shutil.copytree(src / name, tmp_path / name)
        else:
            shutil.copy(src / name, tmp_path / name)
    s = Study(tmp_path, src / "in", n)
    yield s
    s.db.close()


def assert_same(views: duckdb.DuckDBPyConnection, db: duckdb.DuckDBPyConnection) -> None:
    want = everything(db)
    got = everything(views)
    for t in CONTRACT:
        assert got[t] == want[t], t
    for q in QUERIES:
        assert views.execute(q).fetchall() == db.execute(q).fetchall(), q


def test_views_answer_as_the_loaded_database_before_and_after_compact(study: Study) -> None:
    db = study.loaded("loaded")
    before = study.views()
    assert_same(before, db)
    assert db.execute("SELECT count(*) FROM hr_samples").fetchone() == (6 * 900,)
    n_parts = len(list((study.root / "parts").rglob("*.parquet")))
    n_sources = len(Dataset.open(study.root).sources)
    assert n_sources >= 6
    summary = compact(study.root, target_rows=2000)
    assert summary.generation == 1 and summary.sources == n_sources
    assert summary.files["hr_samples"] >= 2  # split by participant at about 2,000 rows
    after = study.views()
    assert_same(after, db)
    # data parts are gone, the sources parts stay (they mark the files done)
    left = {p.parent.parent.name for p in (study.root / "parts").rglob("*.parquet")}
    assert left == {"sources"}
    assert len(list((study.root / "parts").rglob("*.parquet"))) < n_parts
    # a database loaded from the compacted files holds the same
    again = study.loaded("from_compacted")
    for t in CONTRACT:
        assert rows(again, t) == rows(db, t), t


def test_compacted_files_are_sorted_by_participant_then_time(study: Study) -> None:
    compact(study.root, target_rows=10**9)
    (f,) = Dataset.open(study.root).compacted_files("hr_samples")
    t = pq.read_table(f).to_pydict()
    keys = list(zip(t["participant_id"], t["ts"], strict=True))
    assert keys == sorted(keys)
    assert len(set(t["participant_id"])) == 3


def test_compact_interrupted_before_the_manifest_swap(
    study: Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = study.loaded("loaded")

    def crash(*_: Any) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(compact_mod, "_swap_manifest", crash)
    with pytest.raises(RuntimeError):
        compact(study.root, target_rows=1000)
    assert list((study.root / "compact").rglob("g1-*.parquet"))  # written, never listed
    assert_same(study.views(), db)  # readable: the parts are all still there
    monkeypatch.undo()
    summary = compact(study.root, target_rows=1000)
    assert summary.generation == 1
    listed = {p.name for p in (study.root / "compact").rglob("*.parquet")}
    ds = Dataset.open(study.root)
    assert listed == {p.name for t in CONTRACT for p in ds.compacted_files(t)}
    assert_same(study.views(), db)


def test_compact_interrupted_after_the_manifest_swap(
    study: Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = study.loaded("loaded")
    real = compact_mod._finish
    calls = []

    def finish(root: Path, *a: Any) -> int:
        calls.append(root)
        if len(calls) == 2:  # the clean-up after the swap
            raise RuntimeError("killed")
        return real(root, *a)

    monkeypatch.setattr(compact_mod, "_finish", finish)
    with pytest.raises(RuntimeError):
        compact(study.root, target_rows=1000)
    assert (study.root / "compact" / "_manifest.json").exists()
    assert list((study.root / "parts" / "hr_samples").rglob("*.parquet"))  # not removed yet
    assert_same(study.views(), db)  # compacted parts are not counted twice
    monkeypatch.undo()
    summary = compact(study.root, target_rows=1000)
    assert summary.generation == 1 and summary.removed > 0  # finished, nothing merged again
    assert not list((study.root / "parts" / "hr_samples").rglob("*.parquet"))
    assert_same(study.views(), db)


def test_more_files_after_a_compact(study: Study) -> None:
    compact(study.root, target_rows=1500)
    first = {p.name for p in (study.root / "compact").rglob("*.parquet")}
    study.add("P001", 1, day=5)  # P001's compacted derived rows become stale
    study.add("P002", 1, day=15)
    study.derive("P001", "P002")
    db = study.loaded("loaded")
    assert db.execute("SELECT count(*) FROM sessions WHERE participant_id = 'P001'").fetchone() == (
        4,
    )
    views = study.views()
    assert_same(views, db)
    assert views.execute(
        "SELECT count(*) FROM sessions WHERE participant_id = 'P001'"
    ).fetchone() == (4,)
    summary = compact(study.root, target_rows=1500)
    assert summary.generation == 2
    now = {p.name for p in (study.root / "compact").rglob("*.parquet")}
    assert not (now & first)  # the first generation is removed
    assert_same(study.views(), db)
    # nothing new: a compact changes nothing
    assert compact(study.root, target_rows=1500).generation == 2


def test_process_file_after_compact_is_still_a_no_op(study: Study) -> None:
    compact(study.root, target_rows=10**9)
    f = next((study.inputs / "P001").glob("*.fit"))
    s = process_file(f, "P001", study.root, task=study.task)
    assert s.status == "imported"
    assert not list((study.root / "parts" / "hr_samples").rglob("*.parquet"))
    assert derive_participant("P001", study.root, params_id=study.task.params_id).status == (
        "unchanged"
    )


def test_attach_refuses_a_database_with_actidose_tables(study: Study) -> None:
    with pytest.raises(UsageError, match="actidose tables"):
        attach(study.db, study.root)
    got = attach(study.db, study.root, load=True)
    assert got.loaded is not None and got.loaded.sources_new >= 6
    n = study.db.execute("SELECT count(*) FROM hr_samples").fetchone()
    assert n is not None and n[0] >= 6 * 900


def test_views_use_absolute_paths(study: Study, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    con = duckdb.connect(str(tmp_path / "views.duckdb"))
    relative_root = Path("parts")
    summary = attach(con, relative_root)
    assert "hr_samples" in summary.views and summary.files > 0
    sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'hr_samples'").fetchone()
    assert sql is not None and str(study.root.resolve()) in sql[0]
    con.close()
    monkeypatch.chdir("/")
    again = duckdb.connect(str(tmp_path / "views.duckdb"))
    n = again.execute("SELECT count(*) FROM hr_samples").fetchone()
    assert n is not None and n[0] > 0
    again.close()
