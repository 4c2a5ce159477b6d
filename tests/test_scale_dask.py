"""``--engine dask``: an existing Dask cluster runs the same unit of work with the same results
as the process pool and the ordinary import; a lost worker's task is retried; an unreachable
scheduler is one line and exit 1, never a local run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actidose.scale.executors import ClusterError, DaskExecutor, make_executor
from actidose.scale.run import HOLD_ENV, run_files

from .test_scale_run import (
    _kill_when_held,
    assert_same_contents,
    cli,
    fake_process,
    files,
    ledger_entries,
    make_db,
    mixed_batch,
    ordinary_import,
    write_manifest,
)

distributed = pytest.importorskip("distributed")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()  # nothing listens there now
    return port


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A local cluster of 2 worker processes on loopback. The workers inherit the environment
    as it is when the cluster starts (the tests set the hold hook first)."""
    monkeypatch.setenv(HOLD_ENV + "_DIR", str(tmp_path))
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as c:
        yield c


def test_unreachable_scheduler_is_one_line_and_exit_1(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    f = files(tmp_path / "in", 2)
    before = sorted(p.name for p in tmp_path.iterdir())
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    addr = f"tcp://127.0.0.1:{_closed_port()}"
    cmd = [sys.executable, "-m", "actidose", "--db", str(db), "import", *map(str, f)]
    cmd += ["-P", "P1", "--engine", "dask", "--scheduler", addr]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: cannot reach the Dask scheduler " + addr)
    assert "nothing was run" in lines[0]
    assert r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no database, no parts


def test_make_executor_refuses_bad_settings(tmp_path: Path) -> None:
    from actidose.errors import UsageError

    with pytest.raises(UsageError, match="needs --scheduler"), make_executor("dask"):
        pass
    with (
        pytest.raises(UsageError, match="for --engine dask"),
        make_executor("process", scheduler="tcp://x:1"),
    ):
        pass
    with (
        pytest.raises(ClusterError, match="no such file"),
        make_executor("dask", scheduler=str(tmp_path / "nothing.json")),
    ):
        pass


@pytest.mark.slow
def test_dask_process_pool_and_single_process_agree(cluster: Any, tmp_path: Path) -> None:
    batch = mixed_batch(tmp_path / "in")
    m = write_manifest(tmp_path / "files.csv", batch)

    single = tmp_path / "single.duckdb"
    make_db(single)
    ordinary_import(single, batch)

    pool = tmp_path / "pool.duckdb"
    make_db(pool)
    r = cli(pool, "import", "--manifest", str(m), "--parts", str(tmp_path / "pp"), "--jobs", "2")
    assert r.exit_code == 3, r.output

    dask_db = tmp_path / "dask.duckdb"
    make_db(dask_db)
    r = cli(
        dask_db,
        "import",
        "--manifest",
        str(m),
        "--parts",
        str(tmp_path / "dp"),
        "--engine",
        "dask",
        "--scheduler",
        cluster.scheduler_address,
        "--json",
    )
    assert r.exit_code == 3, r.output
    data = json.loads(r.output)
    assert data["counts"]["quarantined"] == 1 and data["counts"]["duplicate"] == 1
    workers = {e["worker"] for e in ledger_entries(tmp_path / "dp")}
    assert len(workers) == 2 and f":{os.getpid()}" not in "".join(workers)  # ran on the cluster

    assert_same_contents(single, pool)
    assert_same_contents(single, dask_db)


@pytest.mark.slow
def test_dask_worker_killed_in_the_middle_of_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL the worker holding a file: the scheduler reruns the task on a worker, and every
    file ends in the results exactly once."""
    batch = mixed_batch(tmp_path / "in")
    victim = batch["P1"][1]
    monkeypatch.setenv(HOLD_ENV, victim.name)
    monkeypatch.setenv(HOLD_ENV + "_S", "60")
    flag = tmp_path / "held.pid"
    single = tmp_path / "single.duckdb"
    make_db(single)
    ordinary_import(single, batch)

    monkeypatch.setenv(HOLD_ENV + "_DIR", str(tmp_path))
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as c:
        killer = _kill_when_held(flag)
        db = tmp_path / "dask.duckdb"
        make_db(db)
        m = write_manifest(tmp_path / "files.csv", batch)
        r = cli(
            db,
            "import",
            "--manifest",
            str(m),
            "--parts",
            str(tmp_path / "dp"),
            "--engine",
            "dask",
            "--scheduler",
            c.scheduler_address,
        )
        killer.join(1)
    assert flag.exists(), "the worker was never held"
    held_pid = flag.read_text()
    assert r.exit_code == 3, r.output
    assert_same_contents(single, db)
    entries = ledger_entries(tmp_path / "dp")
    assert sorted(e["input"] for e in entries) == sorted(
        str(f.resolve()) for fs in batch.values() for f in fs
    )
    redone = next(e for e in entries if e["input"] == str(victim.resolve()))
    assert redone["status"] == "imported" and not redone["worker"].endswith(":" + held_pid)


def test_run_files_on_a_dask_executor(tmp_path: Path) -> None:
    """The driver on a Dask executor in this process (threads): bounded by the cluster's
    threads, every result in the ledger."""
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as c,
        make_executor("dask", scheduler=c.scheduler_address, retries=1) as ex,
    ):
        assert isinstance(ex, DaskExecutor) and ex.workers == 2
        fs = files(tmp_path / "in", 10)
        s = run_files([(f, "P1") for f in fs], tmp_path / "out", ex, task=None, fn=fake_process)
    assert s.count("imported") == 10
    assert len(ledger_entries(tmp_path / "out")) == 10
