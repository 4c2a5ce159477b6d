"""Cohort benchmark: a trial's data manager imports a whole cohort with the CLI.

    python benchmarks/cohort_bench.py [--participants 250] [--weeks 26] [--jobs 2]
                                      [--keep DIR] [--seed 7] [--repeat 5] [--json FILE]

Writes a cohort with :mod:`cohort_gen` (timed on its own and excluded from every figure), then
runs, each as its own ``python -m actidose --db DB ...`` process, as a data manager would:

1. ``participant import roster.csv``
2. ``prescription set arms.toml``
3. ``symptoms import ratings.csv --instruments instruments.toml``
4. ``import <participant folder> -P <id> --jobs N --json`` for each participant
5. ``recompute`` (every derived table, all participants)

(a study is set up, arms and instruments, before data arrives; each of steps 2-4 recomputes
the participants it touches, as it always does) and prints: files/s and HR samples/s of step
4, the time of every step, total import time (steps 1-4) and recompute time, peak memory,
the database size, and the median time (of ``--repeat`` runs, through
``actidose.open(db).sql(...)``, i.e. into polars) of two typical queries: ``SELECT * FROM
weekly_dose`` (all participants) and ``SELECT * FROM symptom_exposure WHERE instrument =
'phq9'``.

Times are wall-clock, end to end: each includes the command's start-up (Python, imports,
opening the database), printed once as "CLI start-up". ``actidose import`` recomputes the
participant it imported, as it always does; step 5 then recomputes everybody.

Peak memory: the commands run from a fresh child process, so ``getrusage(RUSAGE_CHILDREN)``
covers exactly them (and their parse workers); its ``ru_maxrss`` is the peak of the largest
single process. On Linux the summed RSS of all the run's processes is also sampled from
``/proc`` every 0.25 s (workers and the writing process run at the same time).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cohort_gen import Cohort, generate

__all__ = ["QUERIES", "Figures", "main", "measure", "measure_isolated", "report"]

#: The typical queries timed after the run: name -> SQL.
QUERIES: Final = {
    "weekly_dose, all participants": "SELECT * FROM weekly_dose",
    "symptom_exposure, phq9": "SELECT * FROM symptom_exposure WHERE instrument = 'phq9'",
}
#: Tables counted at the end.
COUNTED: Final = (
    "participants",
    "sources",
    "hr_samples",
    "sessions",
    "daily_load",
    "weekly_dose",
    "symptoms",
    "symptom_exposure",
    "adherence",
)


@dataclass
class Step:
    name: str
    seconds: float
    commands: int = 1


@dataclass
class Figures:
    """What one run measured (times in seconds, sizes in bytes or MB as named)."""

    jobs: int
    steps: list[Step] = field(default_factory=list)
    cli_startup_s: float = 0.0
    files: int = 0  # files the imports went through, any status
    file_status: dict[str, int] = field(default_factory=dict)
    hr_samples: int = 0  # stored (hr_samples rows)
    rating_values: int = 0
    peak_rss_mb: float = 0.0  # largest single process
    peak_tree_rss_mb: float | None = None  # all processes together, sampled
    db_bytes: int = 0
    queries: dict[str, tuple[float, int]] = field(default_factory=dict)  # name -> (ms, rows)
    rows: dict[str, int] = field(default_factory=dict)

    def step(self, name: str) -> float:
        return sum(s.seconds for s in self.steps if s.name == name)

    @property
    def import_s(self) -> float:
        """Files only: every ``actidose import``."""
        return self.step("import")

    @property
    def import_total_s(self) -> float:
        """Roster, files, ratings and prescriptions."""
        return sum(s.seconds for s in self.steps if s.name != "recompute")

    @property
    def recompute_s(self) -> float:
        return self.step("recompute")

    @property
    def total_s(self) -> float:
        return sum(s.seconds for s in self.steps)


def _actidose(db: Path, *args: str, ok: Sequence[int] = (0,)) -> tuple[float, str]:
    """Run ``python -m actidose --db DB args``; wall time and stdout. A status outside ``ok``
    raises with the command's stderr."""
    cmd = [sys.executable, "-m", "actidose", "--db", str(db), *args]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode not in ok:
        detail = done.stderr[-4000:]
        try:  # --json output: the files that failed, with their reasons
            bad = [f for f in json.loads(done.stdout)["files"] if f["status"] == "failed"]
            detail += "".join(f"\n{f['path']}: {f['reason']}" for f in bad[:5])
            detail += f"\n({len(bad)} failed)" if bad else ""
        except (ValueError, KeyError, TypeError):
            pass
        raise RuntimeError(f"{' '.join(cmd[2:])} exited with {done.returncode}:{detail}")
    return seconds, done.stdout


class _TreeRss:
    """Sampled sum of the resident memory of this process and all its descendants (Linux
    ``/proc``; ``peak_mb`` stays None elsewhere)."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __enter__(self) -> _TreeRss:
        if Path("/proc/self/stat").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> int:
        parent: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree = {os.getpid()}
        grew = True
        while grew:
            new = {pid for pid, pp in parent.items() if pp in tree} - tree
            tree |= new
            grew = bool(new)
        total = 0
        for pid in tree:
            try:
                with open(f"/proc/{pid}/statm", "rb") as f:
                    total += int(f.read().split()[1]) * self._page
            except (OSError, IndexError, ValueError):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            mb = self._sample() / 1e6
            self.peak_mb = mb if self.peak_mb is None else max(self.peak_mb, mb)
            self._stop.wait(self.interval_s)


def measure(cohort: Cohort, db: Path, *, jobs: int = 2, repeat: int = 5) -> Figures:
    """Import ``cohort`` into a new database ``db`` with the CLI and time it (see the module
    docstring). Peak memory is that of this process and everything it ran so far: call it in a
    fresh process (:func:`measure_isolated`) for figures of the run alone.

    Parameters
    ----------
    cohort : Cohort
        What :func:`cohort_gen.generate` wrote.
    db : Path
        The database to create; must not exist.
    jobs : int
        ``--jobs`` of every ``actidose import``.
    repeat : int
        Runs of each query; the median is reported.

    Returns
    -------
    Figures
    """
    if db.exists():
        raise FileExistsError(f"{db} exists: the benchmark starts from an empty database")
    fig = Figures(jobs=jobs)
    version_s, _ = _actidose(db, "--version")  # eager: exits before opening db
    fig.cli_startup_s = version_s
    with _TreeRss() as tree:
        s, _ = _actidose(db, "participant", "import", str(cohort.roster))
        fig.steps.append(Step("participant import", s))
        s, _ = _actidose(db, "prescription", "set", str(cohort.prescriptions))
        fig.steps.append(Step("prescription set", s))
        s, out = _actidose(
            db,
            "symptoms",
            "import",
            str(cohort.ratings),
            "--instruments",
            str(cohort.instruments),
            "--json",
            ok=(0, 3),
        )
        fig.steps.append(Step("symptoms import", s))
        for p in cohort.participants:
            s, out = _actidose(
                db,
                "import",
                str(p.folder),
                "-P",
                p.participant_id,
                "--jobs",
                str(jobs),
                "--json",
                ok=(0, 3),
            )
            fig.steps.append(Step("import", s))
            summary = json.loads(out)
            for status, n in summary["counts"].items():
                if n:
                    fig.file_status[status] = fig.file_status.get(status, 0) + n
        fig.files = sum(fig.file_status.values())
        s, _ = _actidose(db, "recompute")
        fig.steps.append(Step("recompute", s))
    fig.peak_tree_rss_mb = tree.peak_mb
    fig.db_bytes = sum(f.stat().st_size for f in (db, db.with_name(db.name + ".wal")) if f.exists())

    import actidose

    with actidose.open(db) as study:
        for name, sql in QUERIES.items():
            runs, rows = [], 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                frame = study.sql(sql)
                runs.append(time.perf_counter() - t0)
                rows = frame.height
            fig.queries[name] = (1000 * statistics.median(runs), rows)
        for table in COUNTED:
            fig.rows[table] = int(study.sql(f"SELECT count(*) AS n FROM {table}")["n"][0])
    fig.hr_samples = fig.rows["hr_samples"]
    fig.rating_values = fig.rows["symptoms"]
    kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    fig.peak_rss_mb = kb / 1024
    return fig


def measure_isolated(cohort: Cohort, db: Path, *, jobs: int = 2, repeat: int = 5) -> Figures:
    """:func:`measure` in a freshly spawned process, so its peak memory covers the run alone
    (not the generator, nor whatever ran in the calling process)."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure, cohort, db, jobs=jobs, repeat=repeat).result()


def report(cohort: Cohort, fig: Figures) -> str:
    """The figures as printed: one line each, names on the left."""
    n = len(cohort.participants)
    statuses = ", ".join(f"{v:,} {k}" for k, v in sorted(fig.file_status.items()))
    commands = len(fig.steps)
    imp = fig.import_s
    lines = [
        f"== cohort benchmark: {n} participants x {cohort.weeks} weeks, --jobs {fig.jobs} "
        f"(CLI, one process per command)",
        f"generate (excluded)     {cohort.seconds:9.1f} s   {cohort.n_files:,} files, "
        f"{cohort.n_bytes / 1e6:,.1f} MB, {cohort.hr_written:,} HR values",
        f"participant import      {fig.step('participant import'):9.2f} s",
        f"file import             {imp:9.2f} s   {fig.files:,} files ({statuses}), "
        f"{n} commands, {imp / max(n, 1):.2f} s each",
        f"  files/s               {fig.files / imp:9.1f}",
        f"  HR samples/s          {fig.hr_samples / imp:9,.0f}   ({fig.hr_samples:,} stored)",
        f"symptoms import         {fig.step('symptoms import'):9.2f} s   "
        f"{fig.rating_values:,} values",
        f"prescription set        {fig.step('prescription set'):9.2f} s",
        f"import total            {fig.import_total_s:9.2f} s   (the four steps above)",
        f"recompute               {fig.recompute_s:9.2f} s   (all participants)",
        f"total                   {fig.total_s:9.2f} s   ({commands} commands; "
        f"CLI start-up {fig.cli_startup_s:.2f} s each)",
        f"peak RSS                {fig.peak_rss_mb:9.0f} MB  (largest process)",
    ]
    if fig.peak_tree_rss_mb is not None:
        lines.append(
            f"peak RSS, all processes {fig.peak_tree_rss_mb:9.0f} MB  (summed, sampled 4/s)"
        )
    lines.append(f"database size           {fig.db_bytes / 1e6:9.1f} MB")
    for name, (ms, rows) in fig.queries.items():
        lines.append(f"query {name:31s} {ms:9.1f} ms  (median, {rows:,} rows)")
    lines.append("rows: " + ", ".join(f"{k} {v:,}" for k, v in fig.rows.items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate, import, recompute, query; print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=250)
    ap.add_argument("--weeks", type=int, default=26)
    ap.add_argument("--jobs", type=int, default=2, help="--jobs of actidose import")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each query")
    ap.add_argument("--gen-workers", type=int, default=None, help="processes writing the cohort")
    ap.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="write the cohort and the database here and keep them (DIR must not hold a "
        "database from an earlier run)",
    )
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cohort-bench-") as tmp:
        work = args.keep.resolve() if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        db = work / "cohort.duckdb"
        if db.exists():
            ap.error(f"{db} exists: give --keep a new folder")
        cohort = generate(
            work / "cohort",
            participants=args.participants,
            weeks=args.weeks,
            seed=args.seed,
            workers=args.gen_workers,
        )
        print(cohort.describe(), flush=True)
        fig = measure_isolated(cohort, db, jobs=args.jobs, repeat=args.repeat)
        print(report(cohort, fig))
        if args.json:
            out = asdict(fig) | {
                "participants": len(cohort.participants),
                "weeks": cohort.weeks,
                "generated_files": cohort.n_files,
                "generated_bytes": cohort.n_bytes,
                "generate_s": cohort.seconds,
                "import_s": fig.import_s,
                "import_total_s": fig.import_total_s,
                "recompute_s": fig.recompute_s,
                "total_s": fig.total_s,
            }
            args.json.write_text(json.dumps(out, indent=1))
        if args.keep:
            print(f"kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
