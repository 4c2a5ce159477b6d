"""The parts path's driver: bounded submission, the ledger, resume, shards, lost workers, and
the import command through it (the same tables as the ordinary import; a killed driver or
worker changes nothing in the results)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.cli import main
from actidose.errors import UsageError
from actidose.scale.executors import InlineExecutor, make_executor
from actidose.scale.run import (
    HOLD_ENV,
    Ledger,
    expand_inputs,
    parse_shard,
    read_ledgers,
    run_files,
)
from actidose.scale.tables import SOURCE_TABLES
from actidose.scale_cli import read_manifest
from actidose.storage.db import connect
from actidose.storage.schema import DERIVED_TABLES

from .conftest import add_p, need_corpus

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- shared helpers
#: Tables compared between runs: every source-level and derived table of the SQL contract.
COMPARED = SOURCE_TABLES + DERIVED_TABLES


def _canon(v: Any) -> Any:
    if isinstance(v, float):
        return None if v != v else round(v, 6)
    return v


def contents(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every compared table's rows, sorted, with source ids replaced by the sources' sha256
    (``source_id``, the list ``dose_sources``), session ids by (sha256, index) (``session_id``,
    ``duplicate_of``) and ``imported_at`` left out: what two imports of the same files must
    agree on whatever numbered the sources."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        sha = {
            int(r[0]): str(r[1])
            for r in con.execute("SELECT source_id, sha256 FROM sources").fetchall()
        }
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in COMPARED:
            cur = con.execute(f"SELECT * FROM {table}")
            cols = [d[0] for d in cur.description or []]
            rows = []
            for r in cur.fetchall():
                row = []
                for c, v in zip(cols, r, strict=True):
                    if c == "imported_at":
                        continue
                    if c == "source_id" and v is not None:
                        v = sha[int(v)]
                    elif c in ("session_id", "duplicate_of") and v is not None:
                        v = (sha.get(int(v) // 1000, "?"), int(v) % 1000)
                    elif c == "dose_sources" and v is not None:
                        v = ",".join(sorted(sha[int(x)] for x in str(v).split(",")))
                    row.append((c, _canon(v)))
                rows.append(tuple(row))
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def assert_same_contents(a: Path, b: Path) -> None:
    ca, cb = contents(a), contents(b)
    for table in COMPARED:
        assert ca[table] == cb[table], f"{table} differs"
    assert ca["sources"], "nothing was imported"


def make_db(db: Path, pids: tuple[str, ...] = ("P1", "P2")) -> None:
    con = connect(db)
    try:
        for i, pid in enumerate(pids):
            add_p(con, pid, tz="Europe/London" if i % 2 == 0 else "America/New_York")
    finally:
        con.close()


def mixed_batch(folder: Path) -> dict[str, list[Path]]:
    """Corpus FIT, TCX and GPX files for two participants, a damaged FIT (quarantined) and a
    duplicate of P1 (the same bytes under another name, last in path order: which copy is the
    source depends on which is processed first, as in the ordinary import)."""
    corpus = need_corpus()
    folder.mkdir(parents=True, exist_ok=True)
    p1 = [
        corpus / "fit" / "garmin-fenix-5-run.fit",
        corpus / "fit" / "garmin-fenix-5-walk.fit",
        corpus / "fit" / "slither-running.fit",
        corpus / "fit" / "20170518-191602-1740899583.fit",
        corpus / "gpx" / "polar-m400-running.gpx",
    ]
    p2 = [
        corpus / "tcx" / "slither-running.tcx",
        corpus / "tcx" / "sup_activity_1.tcx",
        corpus / "gpx" / "gpx_with_garmin_extension.gpx",
        corpus / "fit" / "garmin-edge-820-bike.fit",
    ]
    out: dict[str, list[Path]] = {"P1": [], "P2": []}
    for pid, files in (("P1", p1), ("P2", p2)):
        d = folder / pid
        d.mkdir(exist_ok=True)
        for f in files:
            target = d / f"{f.parent.name}-{f.name}"
            shutil.copyfile(f, target)
            out[pid].append(target)
    damaged = folder / "P1" / "fit-damaged.fit"
    data = (corpus / "fit" / "garmin-fenix-5-run.fit").read_bytes()
    damaged.write_bytes(data[:12] + bytes(64) + data[76:200])
    out["P1"].append(damaged)
    # last in path order, so that in a parallel run too the original is processed first
    dup = folder / "zz" / "copy.fit"
    dup.parent.mkdir(exist_ok=True)
    shutil.copyfile(out["P1"][0], dup)
    out["P1"].append(dup)
    return out


def write_manifest(path: Path, batch: dict[str, list[Path]]) -> Path:
    lines = ["path,participant_id"]
    for pid, files in batch.items():
        lines += [f"{f},{pid}" for f in files]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(db: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)


def ordinary_import(db: Path, batch: dict[str, list[Path]]) -> None:
    """The single-process reference: the ordinary import, one participant at a time."""
    for pid, files in batch.items():
        r = cli(db, "import", *map(str, files), "-P", pid)
        assert r.exit_code in (0, 3), r.output


def ledger_entries(parts: Path) -> list[dict[str, Any]]:
    out = []
    for f in sorted((parts / "_ledger").glob("*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return [e for e in out if e.get("kind") == "file"]


# --------------------------------------------------------------------------- a fake unit of work
@dataclass(frozen=True)
class FakeSummary:
    input: str
    participant_id: str
    status: str
    sha256: str
    reason: str | None = None
    n_samples: int = 0
    parts: tuple[str, ...] = ()


def fake_process(
    path: Path, participant_id: str, out_root: Path, *, task: Any = None
) -> FakeSummary:
    """Writes one part named by the sha256 (atomically); ``POISON`` kills its own process,
    ``RAISE`` raises, ``SLEEP s`` sleeps."""
    data = Path(path).read_bytes()
    if data.startswith(b"POISON"):
        os._exit(3)
    if data.startswith(b"RAISE"):
        raise RuntimeError("boom")
    if data.startswith(b"SLEEP"):
        time.sleep(float(data.split()[1]))
    sha = hashlib.sha256(data).hexdigest()
    rel = Path("parts") / "sources" / sha[:2] / f"{sha}.txt"
    out = Path(out_root) / rel
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        tmp.write_text(f"{participant_id} {path}\n")
        os.replace(tmp, out)
    return FakeSummary(
        str(path), participant_id, "imported", sha, n_samples=len(data), parts=(str(rel),)
    )


class CountingExecutor(Executor):
    """Inline, but holds every future until the driver waits: records how many were submitted
    and not yet collected at most."""

    def __init__(self) -> None:
        self.open: list[Future[Any]] = []
        self.most = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        self.open = [f for f in self.open if not f.done()]
        self.open.append(fut)
        self.most = max(self.most, len(self.open))
        fut.set_result(fn(*args, **kwargs))
        return fut


def files(folder: Path, n: int, prefix: str = "f") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"{prefix}{i:03d}"
        p.write_bytes(f"file {prefix} {i}".encode())
        out.append(p)
    return out


# --------------------------------------------------------------------------- units
def test_parse_shard() -> None:
    assert parse_shard("1/3") == (1, 3)
    assert parse_shard("3/3") == (3, 3)
    for bad in ("0/3", "4/3", "1", "a/b", "1/0", "-1/3"):
        with pytest.raises(UsageError):
            parse_shard(bad)


@settings(max_examples=30, deadline=None)
@given(n_files=st.integers(0, 40), n=st.integers(1, 7))
def test_shards_partition_the_sorted_inputs(tmp_path_factory: Any, n_files: int, n: int) -> None:
    d = tmp_path_factory.mktemp("in")
    fs = files(d / "sub", n_files)
    every = expand_inputs([(d, "P1")])
    assert [x.path for x in every] == sorted(f.resolve() for f in fs)
    shards = [expand_inputs([(d, "P1")], shard=(i, n)) for i in range(1, n + 1)]
    got = [x for s in shards for x in s]
    assert sorted(got, key=lambda x: x.key) == every  # every input once, in exactly one shard
    for i, s in enumerate(shards):
        assert [every.index(x) % n for x in s] == [i] * len(s)


def test_expand_excludes_database_and_parts_root(tmp_path: Path) -> None:
    fs = files(tmp_path / "in", 3)
    (tmp_path / "in" / "db.duckdb").write_bytes(b"x")
    files(tmp_path / "in" / "parts" / "parts", 2, "p")
    got = expand_inputs(
        [(tmp_path / "in", "P1"), (fs[0], "P1"), (fs[0], "P2")],
        exclude=[tmp_path / "in" / "db.duckdb", tmp_path / "in" / "parts"],
    )
    assert [(x.path.name, x.participant_id) for x in got] == [
        ("f000", "P1"),
        ("f000", "P2"),
        ("f001", "P1"),
        ("f002", "P1"),
    ]


def test_bounded_in_flight_ledger_and_resume(tmp_path: Path) -> None:
    fs = files(tmp_path / "in", 25)
    out = tmp_path / "out"
    ex = CountingExecutor()
    s = run_files([(f, "P1") for f in fs], out, ex, task=None, fn=fake_process, max_in_flight=3)
    assert ex.most <= 3
    assert s.processed == 25 and s.resumed == 0 and s.count("imported") == 25
    assert s.exit_code == 0
    lines = ledger_entries(out)
    assert sorted(e["input"] for e in lines) == sorted(str(f) for f in fs)
    e = lines[0]
    assert {
        "input",
        "sha256",
        "participant_id",
        "status",
        "reason",
        "parts",
        "seconds",
        "worker",
    } <= set(e)
    assert e["worker"].endswith(f":{os.getpid()}")

    # the same call again: everything is found done, nothing is submitted
    ex2 = CountingExecutor()
    s2 = run_files([(f, "P1") for f in fs], out, ex2, task=None, fn=fake_process)
    assert (s2.processed, s2.resumed, ex2.most) == (0, 25, 0)
    assert s2.ledger is None  # no empty ledger file is left
    assert [e["input"] for e in s2.files] == [str(f) for f in fs]

    # a changed input and a lost part are processed again; the rest is not
    fs[3].write_bytes(b"new bytes")
    part = out / lines[0]["parts"][0]
    part.unlink()
    s3 = run_files([(f, "P1") for f in fs], out, InlineExecutor(), task=None, fn=fake_process)
    again = {Path(e["input"]).name for e in ledger_entries(out)[25:]}
    assert again == {fs[3].name, Path(lines[0]["input"]).name}
    assert s3.processed == 2 and part.exists()


def test_ledger_survives_a_torn_line(tmp_path: Path) -> None:
    led = Ledger(tmp_path)
    led.write([{"kind": "file", "input": "/a", "participant_id": "P1", "status": "imported"}])
    led.close()
    with led.path.open("a") as fp:
        fp.write('{"kind": "file", "input": "/b", "partic')  # a machine stopped mid-write
    got = read_ledgers(tmp_path)
    assert list(got) == [("/a", "P1")]


def test_task_errors_are_retried_then_failed(tmp_path: Path) -> None:
    fs = files(tmp_path / "in", 3)
    fs[1].write_bytes(b"RAISE")
    s = run_files(
        [(f, "P1") for f in fs],
        tmp_path / "out",
        InlineExecutor(),
        task=None,
        fn=fake_process,
        retries=2,
    )
    bad = [e for e in s.files if e["status"] == "failed"]
    assert len(bad) == 1 and bad[0]["attempts"] == 3
    assert "RuntimeError: boom" in bad[0]["reason"]
    assert s.exit_code == 1
    # a failure holds nothing in the results: the next run tries it again
    fs[1].write_bytes(b"fine now")
    s2 = run_files(
        [(f, "P1") for f in fs], tmp_path / "out", InlineExecutor(), task=None, fn=fake_process
    )
    assert s2.processed == 1 and s2.exit_code == 0


def test_a_file_that_kills_its_worker_is_found_and_failed(tmp_path: Path) -> None:
    """Process pool: a worker dying breaks the pool; the pool is renewed, the files in flight run
    again alone, and the one that kills its worker each time is recorded as failed."""
    fs = files(tmp_path / "in", 12)
    fs[5].write_bytes(b"POISON")
    fs[0].write_bytes(b"SLEEP 0.3")
    with make_executor("process", jobs=2) as ex:
        s = run_files(
            [(f, "P1") for f in fs], tmp_path / "out", ex, task=None, fn=fake_process, retries=1
        )
    by_name = {Path(e["input"]).name: e for e in s.files}
    assert by_name[fs[5].name]["status"] == "failed"
    assert "died" in by_name[fs[5].name]["reason"]
    assert [e["status"] for n, e in by_name.items() if n != fs[5].name] == ["imported"] * 11
    assert s.renewals == 3  # once among others, then twice alone (retries=1)
    entries = ledger_entries(tmp_path / "out")
    assert sorted(e["input"] for e in entries) == sorted(str(f) for f in fs)  # each once


# --------------------------------------------------------------------------- the command
def test_manifest_reading_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a.fit").write_bytes(b"x")
    m = tmp_path / "m.csv"
    m.write_text("path,participant_id\na.fit,P1\n\n/abs/b.fit,P2\n")
    assert read_manifest(m) == [(tmp_path / "a.fit", "P1"), (Path("/abs/b.fit"), "P2")]
    m.write_text("file,participant_id\na.fit,P1\n")
    with pytest.raises(UsageError, match="line 1: no column path"):
        read_manifest(m)
    m.write_text("path,participant_id\na.fit,P1\na.fit,\n")
    with pytest.raises(UsageError, match="line 3: empty participant_id"):
        read_manifest(m)


def test_import_options_are_checked(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    make_db(db)
    f = files(tmp_path / "in", 1)[0]
    m = write_manifest(tmp_path / "m.csv", {"P1": [f]})
    r = cli(db, "import", str(f), "--manifest", str(m))
    assert r.exit_code == 2 and "not both" in r.output
    r = cli(db, "import", "--parts", str(tmp_path / "p"))
    assert r.exit_code == 2 and "nothing to import" in r.output
    r = cli(db, "import", str(f), "-P", "P1", "--scheduler", "tcp://127.0.0.1:1")
    assert r.exit_code == 2 and "--scheduler" in r.output
    r = cli(db, "import", str(f), "-P", "P1", "--parts", str(tmp_path / "p"), "--shard", "4/3")
    assert r.exit_code == 2 and "i/N" in r.output
    m2 = write_manifest(tmp_path / "m2.csv", {"P1": [f], "P9": [f]})
    r = cli(db, "import", "--manifest", str(m2), "--parts", str(tmp_path / "p"))
    assert r.exit_code == 2 and f"{m2}: line 3: unknown participant 'P9'" in r.output
    m3 = write_manifest(tmp_path / "m3.csv", {"P1": [f, tmp_path / "gone.fit"]})
    r = cli(db, "import", "--manifest", str(m3), "--parts", str(tmp_path / "p"))
    assert r.exit_code == 2 and f"{m3}: line 3: no such file or directory" in r.output
    assert not (tmp_path / "p" / "parts").exists()


@pytest.mark.slow
def test_parts_import_equals_the_ordinary_import(tmp_path: Path) -> None:
    """Ordinary import (one process) == parts path inline == parts path with 2 worker
    processes (manifest), and a rerun changes nothing."""
    batch = mixed_batch(tmp_path / "in")
    ref = tmp_path / "ref.duckdb"
    make_db(ref)
    ordinary_import(ref, batch)

    inline = tmp_path / "inline.duckdb"
    make_db(inline)
    for pid, fs in batch.items():
        r = cli(inline, "import", *map(str, fs), "-P", pid, "--parts", str(tmp_path / "p1"))
        assert r.exit_code == (3 if pid == "P1" else 0), r.output  # P1: a damaged file
    assert_same_contents(ref, inline)

    pool = tmp_path / "pool.duckdb"
    make_db(pool)
    m = write_manifest(tmp_path / "files.csv", batch)
    args = ["import", "--manifest", str(m), "--parts", str(tmp_path / "p2"), "--jobs", "2"]
    r = cli(pool, *args, "--engine", "process", "--max-in-flight", "3")
    assert r.exit_code == 3, r.output
    assert "quarantined" in r.output
    assert_same_contents(ref, pool)

    before = contents(pool)
    n_inputs = sum(len(v) for v in batch.values())
    r = cli(pool, *args, "--json")
    assert r.exit_code == 3
    data = json.loads(r.output)
    assert (data["processed"], data["resumed"]) == (0, n_inputs)
    assert contents(pool) == before
    # compaction removes the merged data parts; a rerun still finds every file done
    r = cli(pool, "compact", str(tmp_path / "p2"))
    assert r.exit_code == 0, r.output
    r = cli(pool, *args, "--json")
    assert r.exit_code == 3
    assert (json.loads(r.output)["processed"], json.loads(r.output)["resumed"]) == (0, n_inputs)
    assert contents(pool) == before


def _hold(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> Path:
    hold = tmp_path / "hold"
    hold.mkdir()
    monkeypatch.setenv(HOLD_ENV, name)
    monkeypatch.setenv(HOLD_ENV + "_DIR", str(hold))
    monkeypatch.setenv(HOLD_ENV + "_S", "60")
    return hold / "held.pid"


def _kill_when_held(flag: Path, timeout: float = 60.0) -> threading.Thread:
    def kill() -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                pid = int(flag.read_text())
            except (OSError, ValueError):
                time.sleep(0.05)
                continue
            os.kill(pid, signal.SIGKILL)
            return

    t = threading.Thread(target=kill, daemon=True)
    t.start()
    return t


@pytest.mark.slow
def test_worker_killed_in_the_middle_of_a_file_process_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = mixed_batch(tmp_path / "in")
    ref = tmp_path / "ref.duckdb"
    make_db(ref)
    ordinary_import(ref, batch)

    victim = batch["P1"][2]
    flag = _hold(monkeypatch, tmp_path, victim.name)
    killer = _kill_when_held(flag)
    db = tmp_path / "pool.duckdb"
    make_db(db)
    m = write_manifest(tmp_path / "files.csv", batch)
    parts = tmp_path / "parts"
    r = cli(db, "import", "--manifest", str(m), "--parts", str(parts), "--jobs", "2", "--json")
    killer.join(1)
    assert flag.exists(), "the worker was never held"
    assert r.exit_code == 3, r.output
    data = json.loads(r.output)
    assert data["renewals"] >= 1
    assert_same_contents(ref, db)
    entries = ledger_entries(parts)
    assert sorted(e["input"] for e in entries) == sorted(
        str(f.resolve()) for fs in batch.values() for f in fs
    )  # every input recorded exactly once
    assert next(e for e in entries if e["input"] == str(victim.resolve()))["status"] == "imported"


@pytest.mark.slow
def test_driver_killed_then_rerun(tmp_path: Path) -> None:
    """SIGKILL the driver (it processes files itself with --jobs 1) in the middle of a file;
    the same command again finishes the run: the results equal the ordinary import, and no
    file finished before the kill is processed again."""
    batch = mixed_batch(tmp_path / "in")
    ref = tmp_path / "ref.duckdb"
    make_db(ref)
    ordinary_import(ref, batch)

    db = tmp_path / "run.duckdb"
    make_db(db)
    m = write_manifest(tmp_path / "files.csv", batch)
    parts = tmp_path / "parts"
    inputs = sorted(str(f.resolve()) for fs in batch.values() for f in fs)
    victim = Path(inputs[5])
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {
        **os.environ,
        HOLD_ENV: victim.name,
        HOLD_ENV + "_DIR": str(hold),
        HOLD_ENV + "_S": "120",
    }
    cmd = [sys.executable, "-m", "actidose", "--db", str(db), "import", "--manifest", str(m)]
    cmd += ["--parts", str(parts)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        t0 = time.monotonic()
        while not (hold / "held.pid").exists() and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        assert (hold / "held.pid").exists(), proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(1.2)  # the ledger is fsync-ed at least once a second
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    first = ledger_entries(parts)
    done_before = {e["input"] for e in first}
    assert done_before == set(inputs[:5])  # the files before the victim, in path order
    mtimes = {p: p.stat().st_mtime_ns for p in (parts / "parts").rglob("*.parquet")}

    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert_same_contents(ref, db)
    entries = ledger_entries(parts)
    assert sorted(e["input"] for e in entries) == inputs  # each input in the ledgers once
    for p, t in mtimes.items():
        assert p.stat().st_mtime_ns == t, f"{p} was written again"
