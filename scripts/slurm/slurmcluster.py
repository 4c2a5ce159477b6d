"""Run ``actidose import`` on SLURM with Dask workers that come and go as needed.

Run on a login node (or in a small, long job): this process hosts the Dask scheduler and the
import's driver; ``dask_jobqueue.SLURMCluster`` submits worker jobs with ``sbatch`` (adaptive:
up to ``--max-jobs`` jobs of one node each, fewer when the queue runs dry) and the import runs
through them::

    python scripts/slurm/slurmcluster.py --db study.duckdb --manifest files.csv \\
        --parts /scratch/$USER/run1 --queue compute --account myproj \\
        --cores 32 --memory 128GB --walltime 04:00:00 --max-jobs 20

    python scripts/slurm/slurmcluster.py ... --print-job-script   # show the worker job only

The import is the ordinary command (``actidose import --engine dask --scheduler ADDRESS``), so
the parts, the ledger and resume are those of any other run: if this script, the login node or
a worker job dies, run the same command again. Workers retire before their wall time
(``--lifetime``) and their tasks are rescheduled on the others. Needs
``pip install 'actidose[cluster]'`` in the environment the worker jobs activate (``--prologue``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import Any


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="the actidose DuckDB file")
    ap.add_argument("--manifest", required=True, help="CSV: path,participant_id")
    ap.add_argument("--parts", required=True, help="the parts root (on a shared filesystem)")
    ap.add_argument("--parts-only", action="store_true", help="leave the results as Parquet")
    ap.add_argument("--queue", help="SLURM partition (-p)")
    ap.add_argument("--account", help="SLURM account (-A)")
    ap.add_argument("--cores", type=int, default=32, help="cores per worker job (one node)")
    ap.add_argument(
        "--processes",
        type=int,
        default=None,
        help="worker processes per job (default: --cores; fewer if a file needs more memory "
        "than memory/processes: a week at 100 Hz needs about 1.5 GB)",
    )
    ap.add_argument("--memory", default="128GB", help="memory per worker job")
    ap.add_argument("--walltime", default="04:00:00", help="wall time of a worker job")
    ap.add_argument("--lifetime", default="3h50m", help="workers retire after this (< walltime)")
    ap.add_argument("--max-jobs", type=int, default=20, help="worker jobs at most (nodes)")
    ap.add_argument("--min-jobs", type=int, default=0, help="worker jobs kept at least")
    ap.add_argument("--interface", help="network interface of workers and scheduler (e.g. ib0)")
    ap.add_argument("--local-directory", default="$TMPDIR", help="worker scratch (node-local)")
    ap.add_argument("--log-directory", default="slurm-logs", help="worker job logs")
    ap.add_argument(
        "--prologue",
        action="append",
        default=[],
        help="shell line run before the worker starts (repeatable), e.g. 'module load python'",
    )
    ap.add_argument(
        "--extra", action="append", default=[], help="extra #SBATCH directive (repeatable)"
    )
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument("--print-job-script", action="store_true", help="print it and exit")
    return ap.parse_args(argv)


def cluster_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``dask_jobqueue.SLURMCluster`` settings for ``args`` (one job = one node)."""
    processes = args.processes or args.cores
    return {
        # one thread per worker process (the work holds the GIL); the job books every core of
        # the node (job_cpu) even when fewer processes fit in its memory
        "cores": processes,
        "processes": processes,
        "job_cpu": args.cores,
        "memory": args.memory,
        "walltime": args.walltime,
        "queue": args.queue,
        "account": args.account,
        "job_name": "actidose-worker",
        "interface": args.interface,
        "local_directory": args.local_directory,
        "log_directory": args.log_directory,
        "job_script_prologue": list(args.prologue),
        "job_extra_directives": ["--nodes=1", *args.extra],
        # retire before the wall time; the scheduler moves their tasks to other workers
        "worker_extra_args": ["--lifetime", args.lifetime, "--lifetime-stagger", "5m"],
        "scheduler_options": {"dashboard_address": ":0", "interface": args.interface},
    }


def import_command(args: argparse.Namespace, scheduler_address: str) -> list[str]:
    """The ``actidose import`` command run against the cluster."""
    exe = shutil.which("actidose")
    cmd = [exe] if exe else [sys.executable, "-m", "actidose"]
    cmd += ["--db", args.db, "import", "--manifest", args.manifest, "--parts", args.parts]
    cmd += ["--engine", "dask", "--scheduler", scheduler_address]
    cmd += ["--retries", str(args.retries)]
    # Adaptive scaling follows the queued tasks: keep enough submitted for every worker the
    # cluster may have, not only for those it has now.
    processes = args.processes or args.cores
    cmd += ["--max-in-flight", str(2 * processes * max(1, args.max_jobs))]
    if args.parts_only:
        cmd.append("--parts-only")
    return cmd


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from dask_jobqueue import SLURMCluster

    with SLURMCluster(**cluster_kwargs(args)) as cluster:
        if args.print_job_script:
            print(cluster.job_script())
            return 0
        cluster.adapt(minimum_jobs=args.min_jobs, maximum_jobs=args.max_jobs)
        return subprocess.call(import_command(args, cluster.scheduler_address))


if __name__ == "__main__":
    sys.exit(main())
