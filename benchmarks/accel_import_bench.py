"""End to end: `actidose import` of a generated 7-day, 100 Hz Axivity .cwa file.

    python benchmarks/accel_import_bench.py [--days 7] [--rate 100] [--dir DIR]

Writes (or reuses) the synthetic AX3 file of ``benchmarks/cwa_bench.py``, then in a fresh child
process imports it into a new database (decode, autocalibration, non-wear, ENMO/MAD epochs,
write, derived tables) and prints wall time, samples/s and the child's peak RSS. The same numbers
come from ``/usr/bin/time -v actidose --db X import FILE -P P1``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cwa_bench import make_file  # noqa: E402

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from actidose.pipeline import import_paths
from actidose.storage import participants
from actidose.storage.db import connect
path, db = Path(sys.argv[1]), Path(sys.argv[2])
con = connect(db)
participants.add(con, participants.Participant("P1", "Europe/London", "f", 1980, None, 60, 185))
t0 = time.perf_counter()
s = import_paths(con, [path], "P1")
wall = time.perf_counter() - t0
n = con.execute("SELECT n_samples, n_epochs, calibration_accepted FROM accel_processing").fetchone()
days = con.execute("SELECT count(*), sum(wear_min) FROM daily_load").fetchone()
print(json.dumps({"status": s.files[0].status, "wall_s": wall, "n_samples": n[0],
                  "n_epochs": n[1], "calibrated": n[2], "days": days[0],
                  "wear_min": days[1],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()
    path = args.dir / f"actidose-bench-{args.days:g}d-{args.rate:g}hz.cwa"
    if not path.exists():
        make_file(path, args.days, args.rate)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), str(Path(tmp) / "bench.duckdb")],
            check=True,
            capture_output=True,
            text=True,
        )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"file             {path} ({path.stat().st_size / 1e6:.0f} MB)")
    print(
        f"status           {r['status']}; {r['n_samples']:,} samples -> {r['n_epochs']:,} epochs;"
        f" calibration accepted: {r['calibrated']}; {r['days']} days, wear {r['wear_min']:.0f} min"
    )
    rate = r["n_samples"] / r["wall_s"] / 1e6
    print(f"import           {r['wall_s']:.2f} s   {rate:.1f} M samples/s")
    print(f"peak memory      {r['peak_mb']:.0f} MB (limit 1,536 MB)")


if __name__ == "__main__":
    main()
