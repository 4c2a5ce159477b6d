"""Run ``actidose import`` on a Dask cluster made inside one SLURM allocation.

Started by ``srun`` once per task of the allocation (see ``runner.sbatch``):
``dask_jobqueue.slurm.SLURMRunner`` gives task 0 the scheduler, task 1 this script's client
code (the import's driver) and every other task a worker, all finding the scheduler through a
scheduler file on a shared filesystem::

    srun python scripts/slurm/runner.py --db study.duckdb --manifest files.csv \\
        --parts /scratch/$USER/run1

The import is the ordinary ``actidose import --engine dask --scheduler SCHEDULER_FILE``: the
same parts, ledger and resume (submit the job again to finish a run that ran out of time).
When it ends, the client shuts the scheduler down and the workers with it; the job's exit
status is the import's (0, 3 some quarantined, 1 failure, 2 usage).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="the actidose DuckDB file")
    ap.add_argument("--manifest", required=True, help="CSV: path,participant_id")
    ap.add_argument("--parts", required=True, help="the parts root (on a shared filesystem)")
    ap.add_argument("--parts-only", action="store_true", help="leave the results as Parquet")
    ap.add_argument(
        "--scheduler-file",
        help="where the scheduler writes its address (shared filesystem; default: "
        "PARTS/_dask/scheduler-{job_id}.json)",
    )
    ap.add_argument("--interface", help="network interface of workers and scheduler (e.g. ib0)")
    ap.add_argument("--local-directory", default=None, help="worker scratch (node-local)")
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument(
        "--wait-workers-s",
        type=float,
        default=120.0,
        help="how long the client waits for every worker before it starts anyway",
    )
    return ap.parse_args(argv)


def import_command(args: argparse.Namespace, scheduler: str) -> list[str]:
    """The ``actidose import`` command the client task runs."""
    exe = shutil.which("actidose")
    cmd = [exe] if exe else [sys.executable, "-m", "actidose"]
    cmd += ["--db", args.db, "import", "--manifest", args.manifest, "--parts", args.parts]
    cmd += ["--engine", "dask", "--scheduler", scheduler, "--retries", str(args.retries)]
    if args.parts_only:
        cmd.append("--parts-only")
    return cmd


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from dask_jobqueue.slurm import SLURMRunner
    from distributed import Client

    scheduler_file = args.scheduler_file or str(
        Path(args.parts) / "_dask" / "scheduler-{job_id}.json"
    )
    Path(scheduler_file).parent.mkdir(parents=True, exist_ok=True)
    # the dashboard on a free port (several jobs may share a node)
    scheduler_options = {"dashboard_address": ":0", "interface": args.interface}
    worker_options = {"nthreads": 1, "interface": args.interface}
    if args.local_directory:
        worker_options["local_directory"] = os.path.expandvars(args.local_directory)
    # Tasks 0 (scheduler) and 2.. (workers) stay inside SLURMRunner until the client closes
    # it; only task 1 runs the body.
    with SLURMRunner(
        scheduler_file=scheduler_file,
        scheduler_options=scheduler_options,
        worker_options=worker_options,
    ) as runner:
        path = str(runner.scheduler_file)
        with Client(scheduler_file=path) as client:
            try:
                client.wait_for_workers(runner.n_workers, timeout=args.wait_workers_s)
            except TimeoutError:
                n = len(client.scheduler_info(n_workers=-1)["workers"])
                print(f"runner: {n} of {runner.n_workers} workers joined; starting", flush=True)
        code = subprocess.call(import_command(args, path))
    return code


if __name__ == "__main__":
    sys.exit(main())
