"""Axivity .cwa decoding speed and memory: read() + one pass over AccelStream.chunks().

    python benchmarks/cwa_bench.py [--days 7] [--rate 100] [--repeat 5] [--dir DIR]

Writes (or reuses, in ``DIR``, by default the system temp dir) a synthetic AX3 file of
``--days`` days at ``--rate`` Hz, packed samples (120 per 512-byte block; 7 days at 100 Hz is
60.5 million samples, 258 MB), with the small vectorized writer of ``tests/test_cwa.py``. Then,
``--repeat`` times, a fresh ``python -c`` child opens it, runs ``actidose.ingest.cwa.read`` and
iterates ``rec.accel.chunks()`` once (every sample decoded to UTC int64 microseconds and float32
g), timing only that (imports excluded), and reports wall and CPU seconds and its peak RSS
(``ru_maxrss``). Printed per run and as medians: samples/s and peak RSS. The file is in the page
cache (just written or read), so this measures decoding, not the disk. Exit status 1 when the
median is below the required 20 million samples/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REQUIRED = 20e6  # samples/s (the acceptance criterion)
ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
from actidose.ingest import cwa
from actidose.recording import ReadContext
path = sys.argv[1]
t0, c0 = time.perf_counter(), time.process_time()
with open(path, "rb") as f:
    rec = cwa.read(f, path=path, ctx=ReadContext(timezone="Europe/London"))
t_read = time.perf_counter() - t0
n = 0
for chunk in rec.accel.chunks():
    n += chunk.ts_us.size
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
assert n == rec.accel.n_samples
print(json.dumps({"wall": wall, "cpu": cpu, "read": t_read, "samples": n,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def make_file(path: Path, days: float, rate: float) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.test_cwa import write_cwa

    n = int(days * 86_400 * rate)
    tmp = path.with_suffix(".part")
    t0 = time.perf_counter()
    with tmp.open("wb") as f:
        write_cwa(f, n_samples=n, rate_hz=rate, true_rate_hz=rate * 0.993, keep=False,
                  start_local="2024-03-25T09:00:00")  # fmt: skip
    tmp.replace(path)
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({n:,} samples, {size:.0f} MB) in {time.perf_counter() - t0:.1f} s")


def run_child(path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()

    path = args.dir / f"actidose_cwa_bench_{args.days:g}d_{args.rate:g}hz.cwa"
    if not path.exists():
        make_file(path, args.days, args.rate)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, file {path}")

    runs = []
    for i in range(args.repeat):
        r = run_child(path)
        runs.append(r)
        print(
            f"run {i + 1}: {r['wall']:.2f} s wall ({r['read']:.2f} s in read()), "
            f"{r['cpu']:.2f} s CPU, {r['samples'] / r['wall'] / 1e6:.1f} M samples/s, "
            f"peak RSS {r['rss_kb'] / 1024:.0f} MB"
        )
    wall = statistics.median(r["wall"] for r in runs)
    rate = runs[0]["samples"] / wall
    rss = statistics.median(r["rss_kb"] for r in runs) / 1024
    print(
        f"median: {wall:.2f} s for {runs[0]['samples']:,.0f} samples = {rate / 1e6:.1f} M "
        f"samples/s (required {REQUIRED / 1e6:.0f} M), peak RSS {rss:.0f} MB"
    )
    return 0 if rate >= REQUIRED else 1


if __name__ == "__main__":
    sys.exit(main())
