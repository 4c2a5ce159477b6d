"""The three SLURM ways of scripts/slurm/: the job script ``SLURMCluster`` would submit,
``SLURMRunner`` inside one allocation (simulated: local processes with ``SLURM_*`` variables),
and a plain job array of ``--shard i/N --parts-only`` runs then one final run."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from .test_scale_run import (
    assert_same_contents,
    cli,
    contents,
    ledger_entries,
    make_db,
    mixed_batch,
    ordinary_import,
    write_manifest,
)

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "scripts" / "slurm"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"slurm_{name}", SLURM / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_slurmcluster_job_script(tmp_path: Path) -> None:
    pytest.importorskip("dask_jobqueue")
    from dask_jobqueue import SLURMCluster

    sc = _script("slurmcluster")
    args = sc.parse_args(
        [
            "--db",
            "study.duckdb",
            "--manifest",
            "files.csv",
            "--parts",
            "/scratch/run1",
            "--queue",
            "compute",
            "--account",
            "proj42",
            "--cores",
            "32",
            "--processes",
            "16",
            "--memory",
            "128GB",
            "--walltime",
            "04:00:00",
            "--max-jobs",
            "20",
            "--prologue",
            "source /opt/venv/bin/activate",
            "--log-directory",
            str(tmp_path / "logs"),
        ]
    )
    kw = sc.cluster_kwargs(args)
    kw["scheduler_options"] = {**kw["scheduler_options"], "host": "127.0.0.1"}
    with SLURMCluster(**kw) as cluster:
        script = cluster.job_script()
        address = cluster.scheduler_address
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH -J actidose-worker" in directives
    assert "#SBATCH -p compute" in directives
    assert "#SBATCH -A proj42" in directives
    assert "#SBATCH -n 1" in directives
    assert "#SBATCH --cpus-per-task=32" in directives
    assert "#SBATCH -t 04:00:00" in directives
    assert "#SBATCH --nodes=1" in directives
    assert f"#SBATCH -e {tmp_path}/logs/actidose-worker-%J.err" in directives
    mem = next(d for d in directives if d.startswith("#SBATCH --mem="))
    assert int(re.fullmatch(r"#SBATCH --mem=(\d+)G", mem).group(1)) in range(110, 129)  # type: ignore[union-attr]
    lines = script.splitlines()
    assert "source /opt/venv/bin/activate" in lines
    worker = next(line for line in lines if "dask_worker" in line or "dask-worker" in line)
    assert lines.index("source /opt/venv/bin/activate") < lines.index(worker)
    assert address in worker
    for flag in ("--nworkers 16", "--nthreads 1", "--lifetime 3h50m", "--nanny"):
        assert flag in worker, flag
    assert "--local-directory $TMPDIR" in worker

    cmd = sc.import_command(args, address)
    at = cmd.index("--db")
    assert cmd[at:] == [
        "--db",
        "study.duckdb",
        "import",
        "--manifest",
        "files.csv",
        "--parts",
        "/scratch/run1",
        "--engine",
        "dask",
        "--scheduler",
        address,
        "--retries",
        "3",
        "--max-in-flight",
        str(2 * 16 * 20),  # enough queued for every worker the cluster may grow to
    ]


@pytest.mark.slow
def test_slurmrunner_with_simulated_slurm_environment(tmp_path: Path) -> None:
    """Four local processes with SLURM_PROCID 0..3 run scripts/slurm/runner.py: scheduler,
    client (the import) and two workers; the client imports through the cluster."""
    pytest.importorskip("dask_jobqueue")
    batch = mixed_batch(tmp_path / "in")
    m = write_manifest(tmp_path / "files.csv", batch)
    single = tmp_path / "single.duckdb"
    make_db(single)
    ordinary_import(single, batch)

    db = tmp_path / "runner.duckdb"
    make_db(db)
    parts = tmp_path / "parts"
    sched = tmp_path / "sched" / "scheduler-{job_id}.json"
    args = [sys.executable, str(SLURM / "runner.py"), "--db", str(db), "--manifest", str(m)]
    args += ["--parts", str(parts), "--scheduler-file", str(sched), "--interface", "lo"]
    args += ["--wait-workers-s", "60"]
    procs = []
    logs = []
    for rank in range(4):
        env = {
            **os.environ,
            "SLURM_PROCID": str(rank),
            "SLURM_NTASKS": "4",
            "SLURM_JOB_ID": "4242",
            "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "20s",
        }
        log = (tmp_path / f"rank{rank}.log").open("w")
        logs.append(log)
        procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        t0 = time.monotonic()
        while any(p.poll() is None for p in procs) and time.monotonic() - t0 < 120:
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    out = {r: (tmp_path / f"rank{r}.log").read_text() for r in range(4)}
    assert procs[1].returncode == 3, out[1]  # the import's status: one file quarantined
    assert re.search(r"Scheduler at: +tcp://127\.0\.0\.1:\d+", out[0]), out[0]
    assert "Register worker" in out[0] and "11 file(s) of 2 participant(s)" in out[1]
    assert_same_contents(single, db)
    workers = {e["worker"] for e in ledger_entries(parts)}
    pids = {str(p.pid) for p in procs}
    assert {w.rsplit(":", 1)[1] for w in workers} <= pids - {str(procs[1].pid)}  # on workers
    assert {procs[0].returncode, procs[2].returncode, procs[3].returncode} <= {0, None, -9}


@pytest.mark.slow
def test_job_array_of_three_shards_equals_one_run(tmp_path: Path) -> None:
    batch = mixed_batch(tmp_path / "in")
    m = write_manifest(tmp_path / "files.csv", batch)
    n_inputs = sum(len(v) for v in batch.values())

    one = tmp_path / "one.duckdb"
    make_db(one)
    r = cli(one, "import", "--manifest", str(m), "--parts", str(tmp_path / "p1"))
    assert r.exit_code == 3, r.output

    db = tmp_path / "array.duckdb"
    make_db(db)
    untouched = contents(db)
    parts = tmp_path / "p3"
    shards = []
    # Real array tasks run at the same time; here one after the other, the shard holding the
    # original of the duplicated bytes first (the first copy processed becomes the source).
    ordered = sorted(str(f.resolve()) for fs in batch.values() for f in fs)
    first = ordered.index(str(batch["P1"][0].resolve())) % 3 + 1
    for i in (first, *(k for k in (1, 2, 3) if k != first)):
        r = cli(
            db,
            "import",
            "--manifest",
            str(m),
            "--parts",
            str(parts),
            "--shard",
            f"{i}/3",
            "--parts-only",
            "--json",
        )
        assert r.exit_code in (0, 3), r.output
        data = json.loads(r.output)
        assert data["loaded"] is None and data["derived"] == []
        shards.append({e["input"] for e in data["files"]})
    assert contents(db) == untouched  # nothing written to the database by the shards
    assert sum(len(s) for s in shards) == n_inputs
    assert set.union(*shards) == {str(f.resolve()) for fs in batch.values() for f in fs}
    assert len(list((parts / "_ledger").glob("*.jsonl"))) == 3  # one ledger per shard

    r = cli(db, "import", "--manifest", str(m), "--parts", str(parts), "--json")
    assert r.exit_code == 3, r.output
    data = json.loads(r.output)
    assert (data["processed"], data["resumed"]) == (0, n_inputs)
    assert len(data["derived"]) == 2
    assert_same_contents(one, db)
    assert len(ledger_entries(parts)) == n_inputs  # every input processed once, by its shard
