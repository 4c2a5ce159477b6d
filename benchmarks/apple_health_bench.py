"""Apple Health import speed and memory against a plain lxml ``iterparse`` pass (same file, run).

    python benchmarks/apple_health_bench.py [--mb 1000] [--repeat 3] [--dir DIR] [--seed 1]

Generates (or reuses, in ``DIR``, by default the system temp dir) a realistic ``export.xml`` of
about ``--mb`` megabytes with :func:`actidose.ingest.apple_health_writer.write_export`, then
measures, alternating which goes first in each round:

* **baseline**: ``for ev, el in lxml.etree.iterparse(f, events=("end",)): el.clear()`` plus
  the usual deletion of the previous siblings (what every "parse a big export" recipe does, and
  the least work any tree-based lxml reader can do);
* **actidose**: :func:`actidose.ingest.apple_health.read` (HR, RR, vendor series, workouts).

Each measurement runs in its own ``python -c`` child so its peak RSS (``ru_maxrss``) is its own;
the child times only the parse (imports excluded) and reports wall and CPU time. Printed per
run and as medians: wall seconds, MB/s, elements/s, Records/s (``Record`` + ``Workout``
elements) and peak RSS. The file stays in the page cache between runs (it was just written or
read), so this measures parsing, not the disk. Exit status 1 when actidose is slower than the
baseline (median wall time).
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

BASELINE = r"""
import json, resource, sys, time
from lxml import etree
path = sys.argv[1]
t0, c0 = time.perf_counter(), time.process_time()
n = 0
with open(path, "rb") as f:
    for ev, el in etree.iterparse(f, events=("end",)):
        n += 1
        el.clear()
        while el.getprevious() is not None:
            del el.getparent()[0]
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall": wall, "cpu": cpu, "elements": n,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

ACTIDOSE = r"""
import json, resource, sys, time
from actidose.ingest import apple_health
from actidose.recording import ReadContext
path = sys.argv[1]
t0, c0 = time.perf_counter(), time.process_time()
with open(path, "rb") as f:
    rec = apple_health.read(f, path=path, ctx=ReadContext())
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall": wall, "cpu": cpu, "hr": len(rec.hr), "rr": len(rec.rr),
                  "vendor": sum(v.value.size for v in rec.vendor),
                  "workouts": len(rec.activities), "warnings": rec.warnings,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def export_file(directory: Path, mb: int, seed: int) -> tuple[Path, dict[str, int]]:
    """The export of about ``mb`` MB, written once and reused (with its counts beside it)."""
    from actidose.ingest.apple_health_writer import write_export

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"actidose-apple-health-{mb}mb-seed{seed}.xml"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        if info.get("bytes") == path.stat().st_size:
            print(f"reusing {path}")
            return path, info
    print(f"writing {path} (~{mb} MB) ...", flush=True)
    t0 = time.perf_counter()
    truth = write_export(path, target_bytes=mb * 1_000_000, seed=seed, keep_truth=False)
    dt = time.perf_counter() - t0
    info = {
        "bytes": truth.bytes_written,
        "days": truth.days,
        "elements": truth.n_elements,
        "records": sum(truth.n_records.values()) + len(truth.workouts),
        "hr_records": truth.n_records.get("HKQuantityTypeIdentifierHeartRate", 0),
    }
    meta.write_text(json.dumps(info))
    print(
        f"  {truth.bytes_written / 1e6:.0f} MB, {truth.days} days, written in {dt:.1f} s "
        f"({truth.bytes_written / 1e6 / dt:.0f} MB/s)"
    )
    return path, info


def measure(code: str, path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def line(name: str, r: dict[str, object], info: dict[str, int]) -> str:
    wall = float(r["wall"])  # type: ignore[arg-type]
    mb = info["bytes"] / 1e6
    return (
        f"{name:9s} wall {wall:7.2f} s  cpu {float(r['cpu']):7.2f} s  "  # type: ignore[arg-type]
        f"{mb / wall:6.1f} MB/s  {info['elements'] / wall / 1e6:5.2f} M elements/s  "
        f"{info['records'] / wall / 1e6:5.2f} M Records/s  "
        f"peak RSS {int(r['rss_kb']) / 1024:6.0f} MB"  # type: ignore[call-overload]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=200, help="export size in MB (1000 for the record)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds (each: baseline and actidose)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from lxml import etree

    print(
        f"python {platform.python_version()}, lxml {'.'.join(map(str, etree.LXML_VERSION))}, "
        f"libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}"
    )
    path, info = export_file(args.dir, args.mb, args.seed)
    print(
        f"file: {info['bytes'] / 1e6:.0f} MB, {info['elements']:,} elements, "
        f"{info['records']:,} Records+Workouts ({info['hr_records']:,} heart rate)"
    )
    runs: dict[str, list[dict[str, object]]] = {"baseline": [], "actidose": []}
    for i in range(args.repeat):
        order = ["baseline", "actidose"] if i % 2 == 0 else ["actidose", "baseline"]
        for name in order:
            r = measure(BASELINE if name == "baseline" else ACTIDOSE, path)
            runs[name].append(r)
            print(f"round {i + 1}  " + line(name, r, info), flush=True)
    got = runs["actidose"][-1]
    print(
        f"actidose read {got['hr']:,} HR samples, {got['rr']:,} RR, {got['vendor']:,} vendor "
        f"values, {got['workouts']:,} workouts; warnings: {got['warnings']}"
    )
    print("medians:")
    med: dict[str, float] = {}
    for name, rs in runs.items():
        m = {k: statistics.median(float(r[k]) for r in rs) for k in ("wall", "cpu", "rss_kb")}  # type: ignore[arg-type]
        med[name] = m["wall"]
        print("          " + line(name, m, info))  # type: ignore[arg-type]
    ratio = med["baseline"] / med["actidose"]
    print(f"actidose is {ratio:.2f}x the speed of the plain iterparse pass (median wall time)")
    return 0 if ratio >= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
