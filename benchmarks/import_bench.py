"""Import benchmark: files/s and HR samples/s over the shared corpus and a generated cohort.

    python benchmarks/import_bench.py [--participants 20] [--weeks 12] [--corpus ../shared/corpus]

Prints one block per data set: files, HR samples stored, import time (decode + write, one
transaction per file), recompute time (derived tables), the rates, the database size and the
process's peak memory. Generation of the cohort's FIT files is timed separately and excluded.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from actidose.demo import Study, make_study
from actidose.pipeline import ImportSummary, import_paths, parse_pool
from actidose.storage import participants
from actidose.storage.db import connect
from actidose.storage.derive import recompute

HERE = Path(__file__).resolve().parent


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(
    name: str, summaries: list[ImportSummary], t_import: float, t_derive: float, db: Path
) -> None:
    files = [f for s in summaries for f in s.files]
    samples = sum(f.n_samples for f in files)
    by: dict[str, int] = {}
    for f in files:
        by[f.status] = by.get(f.status, 0) + 1
    print(f"== {name}")
    print(
        f"files            {len(files)}  ({', '.join(f'{v} {k}' for k, v in sorted(by.items()))})"
    )
    print(f"HR samples       {samples}")
    print(
        f"import           {t_import:.2f} s   {len(files) / t_import:.1f} files/s   "
        f"{samples / t_import:,.0f} samples/s"
    )
    print(f"recompute        {t_derive:.2f} s")
    print(f"database         {db.stat().st_size / 1e6:.1f} MB")
    print(f"peak memory      {peak_rss_mb():.0f} MB (process so far)")


def bench_corpus(corpus: Path, work: Path) -> None:
    fit = sorted((corpus / "fit").glob("*.fit"))
    if not fit:
        print(f"== corpus: no FIT files under {corpus}/fit, skipped")
        return
    db = work / "corpus.duckdb"
    con = connect(db)
    participants.add(con, participants.Participant("C1", "UTC", "m", 1980, None, 60, 185))
    t0 = time.perf_counter()
    s = import_paths(con, fit, "C1", recompute_after=False)
    t1 = time.perf_counter()
    recompute(con)
    t2 = time.perf_counter()
    con.close()
    report(f"corpus ({corpus / 'fit'})", [s], t1 - t0, t2 - t1, db)


def bench_cohort(n: int, weeks: int, work: Path, jobs_list: list[int]) -> None:
    t0 = time.perf_counter()
    study = make_study(work / "cohort", n_participants=n, weeks=weeks, seed=7)
    t_gen = time.perf_counter() - t0
    print(
        f"(generated {study.n_files} FIT files for {n} participants x {weeks} weeks "
        f"in {t_gen:.1f} s)"
    )
    for jobs in jobs_list:
        import_cohort(study, n, weeks, work, jobs)


def import_cohort(study: Study, n: int, weeks: int, work: Path, jobs: int) -> None:
    db = work / f"cohort-j{jobs}.duckdb"
    con = connect(db)
    participants.import_roster(con, study.roster)
    recompute(con)
    t1 = time.perf_counter()
    pool = parse_pool(jobs) if jobs > 1 else None
    summaries = [
        import_paths(con, [folder], pid, recompute_after=False, jobs=jobs, executor=pool)
        for pid, folder in study.participants.items()
    ]
    if pool is not None:
        pool.shutdown()
    t2 = time.perf_counter()
    recompute(con)
    t3 = time.perf_counter()
    q0 = time.perf_counter()
    con.execute("SELECT * FROM weekly_dose ORDER BY participant_id, week_start").fetchall()
    q1 = time.perf_counter()
    con.close()
    report(
        f"generated cohort ({n} participants x {weeks} weeks, --jobs {jobs})",
        summaries,
        t2 - t1,
        t3 - t2,
        db,
    )
    print(f"weekly_dose query {1000 * (q1 - q0):.1f} ms (all participants)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--corpus", type=Path, default=HERE.parents[1] / "shared" / "corpus")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bench_corpus(args.corpus, work)
        bench_cohort(args.participants, args.weeks, work, args.jobs)


if __name__ == "__main__":
    main()
