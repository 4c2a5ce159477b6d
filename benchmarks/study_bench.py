"""Study-layer benchmark: recompute of every derived table with symptom ratings and
prescriptions, and the time of typical study queries.

    python benchmarks/study_bench.py [--participants 40] [--weeks 12] [--repeat 3]

Generates the demo study at the given size (FIT activity files, one participant with all-day
monitoring files, PHQ-9 every two weeks and a daily mood rating per participant, two arms with
prescriptions), imports it, then times: the recompute of all derived tables (sessions ...
load_series, symptom_exposure, symptom_days, adherence), the same recompute with
``exposure_lags=0,1,7``, and queries (median of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from actidose.demo import make_study
from actidose.pipeline import import_paths
from actidose.prescription import read_prescriptions
from actidose.storage import participants
from actidose.storage.db import connect
from actidose.storage.derive import load_config, recompute, save_config
from actidose.storage.prescriptions import save as save_prescriptions
from actidose.storage.symptoms import import_file

QUERIES = {
    "symptom_exposure, phq9, all participants": (
        "SELECT * FROM symptom_exposure WHERE instrument = 'phq9' AND lag_days = 0"
    ),
    "symptom_days, mood, all participants": (
        "SELECT * FROM symptom_days WHERE instrument = 'mood'"
    ),
    "adherence by arm and week": (
        "SELECT arm, week, avg(adherence_pct) FROM adherence GROUP BY ALL ORDER BY ALL"
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=40)
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "study"
        t0 = time.perf_counter()
        study = make_study(folder, n_participants=args.participants, weeks=args.weeks)
        gen_s = time.perf_counter() - t0
        con = connect(Path(tmp) / "study.duckdb")
        participants.import_roster(con, study.roster)
        t0 = time.perf_counter()
        for pid, pdir in study.participants.items():
            import_paths(con, [pdir], pid, recompute_after=False)
        import_s = time.perf_counter() - t0
        assert study.ratings is not None and study.prescriptions is not None
        t0 = time.perf_counter()
        rated = import_file(con, study.ratings)
        save_prescriptions(con, read_prescriptions(study.prescriptions), "bench")
        ratings_s = time.perf_counter() - t0
        ids = sorted(study.participants)
        t0 = time.perf_counter()
        recompute(con, ids)
        recompute_s = time.perf_counter() - t0
        save_config(con, load_config(con).with_settings({"exposure_lags": "0,1,7"}))
        t0 = time.perf_counter()
        recompute(con, ids)
        lags_s = time.perf_counter() - t0
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("hr_samples", "sessions", "symptom_scores", "symptom_exposure", "adherence")
        }
        print(f"study: {args.participants} participants x {args.weeks} weeks, {study.n_files} FIT "
              f"files (generated in {gen_s:.1f} s), {rated.n_values} rating values")  # fmt: skip
        print(f"  rows: {', '.join(f'{k} {v:,}' for k, v in counts.items())}")
        print(f"  import FIT files            {import_s:8.2f} s")
        print(f"  import ratings + arms       {ratings_s:8.2f} s")
        print(f"  recompute, all participants {recompute_s:8.2f} s "
              f"({1000 * recompute_s / len(ids):.0f} ms per participant)")  # fmt: skip
        print(f"  recompute with 3 lags       {lags_s:8.2f} s")
        for name, sql in QUERIES.items():
            runs = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                con.execute(sql).fetchall()
                runs.append(time.perf_counter() - t0)
            print(f"  query {name:42s} {1000 * statistics.median(runs):7.1f} ms")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS {peak:.0f} MB")
        con.close()


if __name__ == "__main__":
    main()
