"""Apple Health import speed and memory against a plain lxml ``iterparse`` pass (same file, run).

    python benchmarks/apple_health_bench.py [--mb 1000] [--repeat 3] [--dir DIR] [--seed 1]
        [--min-ratio 4] [--max-rss-mb 500] [--no-check] [--one-process]

Generates (or reuses, in ``DIR``, by default the system temp dir) a realistic ``export.xml`` of
about ``--mb`` megabytes with :func:`actidose.ingest.apple_health_writer.write_export`, then
measures, alternating which goes first in each round:

* **baseline**: ``for ev, el in lxml.etree.iterparse(f, events=("end",)): el.clear()`` plus
  the usual deletion of the previous siblings (what every "parse a big export" recipe does, and
  the least work any tree-based lxml reader can do);
* **actidose**: :func:`actidose.ingest.apple_health.read` (HR, RR, vendor series, workouts):
  the fast scanner, which on a regular file this large, with a core free, shares the file
  with a forked process (see :mod:`actidose.ingest.apple_health_fast`);
* with ``--one-process``, also **actidose-1**: the same, held to one process.

Each measurement runs in its own ``python -c`` child so its peak RSS (``ru_maxrss``) is its own;
the child times only the parse (imports excluded) and reports wall and CPU time, the CPU time
and peak RSS of the process it forked included (peak RSS: the larger of the two, and their
sum as an upper bound on both together). Printed per run and as medians: wall seconds, MB/s,
elements/s, Records/s (``Record`` + ``Workout`` elements) and peak RSS, and the machine's load
average (other work on the machine slows both sides; the ratio is measured side by side,
alternating which goes first). The file stays in the page cache between runs (it was just
written or read), so this measures parsing, not the disk.

Then (unless ``--no-check``) one more child reads the file with both actidose readers, the fast
one and the reference one (libxml2), and compares every array: "same records".

Exit status 0 when the acceptance holds: median wall time at least ``--min-ratio`` (4) times
faster than the baseline, peak RSS under ``--max-rss-mb`` (500 MB, both processes together),
the scanner (not the fallback) ran, and the records are the same.
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
from actidose.ingest import apple_health, apple_health_fast
from actidose.recording import ReadContext
path = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] == "one":
    apple_health_fast.PARALLEL_MIN = 1 << 62  # one process
def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
t0, c0, k0 = time.perf_counter(), time.process_time(), children_cpu()
with open(path, "rb") as f:
    rec = apple_health.read(f, path=path, ctx=ReadContext())
wall, cpu = time.perf_counter() - t0, time.process_time() - c0 + children_cpu() - k0
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
forked = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall": wall, "cpu": cpu, "hr": len(rec.hr), "rr": len(rec.rr),
                  "vendor": sum(v.value.size for v in rec.vendor),
                  "workouts": len(rec.activities), "warnings": rec.warnings,
                  "reader": rec.meta.get("apple_health_reader"),
                  "rss_kb": max(own, forked), "rss_sum_kb": own + forked}))
"""

CHECK = r"""
import io, json, sys
import numpy as np
from actidose.ingest import apple_health
from actidose.recording import ReadContext
path = sys.argv[1]
with open(path, "rb") as f:
    fast = apple_health.read(f, path=path, ctx=ReadContext())
with open(path, "rb") as f:
    ref = apple_health.read_reference(f, path=path, ctx=ReadContext())
diff = []
for name in ("hr", "rr"):
    a, b = getattr(fast, name), getattr(ref, name)
    for field in a.__dataclass_fields__:
        if not np.array_equal(getattr(a, field), getattr(b, field), equal_nan=True):
            diff.append(f"{name}.{field}")
if [(v.kind, v.origin) for v in fast.vendor] != [(v.kind, v.origin) for v in ref.vendor]:
    diff.append("vendor series")
else:
    for v, w in zip(fast.vendor, ref.vendor):
        for field in ("start", "duration_s", "value"):
            if not np.array_equal(getattr(v, field), getattr(w, field), equal_nan=True):
                diff.append(f"{v.kind}.{field}")
for field in ("activities", "sensor", "device", "utc_offset_s", "warnings"):
    if getattr(fast, field) != getattr(ref, field):
        diff.append(field)
meta = [{k: v for k, v in r.meta.items() if k != "apple_health_reader"} for r in (fast, ref)]
if meta[0] != meta[1]:
    diff.append("meta")
print(json.dumps({"same": not diff, "differ": diff, "reader": fast.meta["apple_health_reader"],
                  "hr": len(fast.hr), "rr": len(fast.rr), "vendor": len(fast.vendor),
                  "workouts": len(fast.activities)}))
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


def measure(code: str, path: Path, *extra: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def line(name: str, r: dict[str, object], info: dict[str, int]) -> str:
    wall = float(r["wall"])  # type: ignore[arg-type]
    mb = info["bytes"] / 1e6
    rss = f"peak RSS {int(r['rss_kb']) / 1024:6.0f} MB"  # type: ignore[call-overload]
    if "rss_sum_kb" in r:
        rss += f" (both processes {int(r['rss_sum_kb']) / 1024:4.0f} MB)"  # type: ignore[call-overload]
    return (
        f"{name:11s} wall {wall:7.2f} s  cpu {float(r['cpu']):7.2f} s  "  # type: ignore[arg-type]
        f"{mb / wall:6.1f} MB/s  {info['elements'] / wall / 1e6:5.2f} M elements/s  "
        f"{info['records'] / wall / 1e6:5.2f} M Records/s  {rss}"
    )


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=200, help="export size in MB (1000 for the record)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds (each: baseline and actidose)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-ratio", type=float, default=4.0, help="acceptance: speed ratio")
    ap.add_argument("--max-rss-mb", type=float, default=500.0, help="acceptance: peak RSS")
    ap.add_argument("--no-check", action="store_true", help="skip the same-records check")
    ap.add_argument(
        "--one-process",
        action="store_true",
        help="also measure actidose held to one process (what one core gives)",
    )
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
    if args.one_process:
        runs["actidose-1"] = []
    print(load())
    for i in range(args.repeat):
        order = list(runs) if i % 2 == 0 else list(reversed(runs))
        for name in order:
            if name == "baseline":
                r = measure(BASELINE, path)
            else:
                r = measure(ACTIDOSE, path, *(["one"] if name == "actidose-1" else []))
            runs[name].append(r)
            print(f"round {i + 1}  " + line(name, r, info) + f"  [{load()}]", flush=True)
    got = runs["actidose"][-1]
    print(
        f"actidose read {got['hr']:,} HR samples, {got['rr']:,} RR, {got['vendor']:,} vendor "
        f"values, {got['workouts']:,} workouts (reader: {got['reader']}); "
        f"warnings: {got['warnings']}"
    )
    print("medians:")
    med: dict[str, dict[str, float]] = {}
    for name, rs in runs.items():
        keys = ["wall", "cpu", "rss_kb"] + (["rss_sum_kb"] if name != "baseline" else [])
        med[name] = {k: statistics.median(float(r[k]) for r in rs) for k in keys}  # type: ignore[arg-type]
        print("          " + line(name, med[name], info))  # type: ignore[arg-type]
    ratio = med["baseline"]["wall"] / med["actidose"]["wall"]
    cpu_ratio = med["baseline"]["cpu"] / med["actidose"]["cpu"]
    print(
        f"actidose is {ratio:.2f}x the speed of the plain iterparse pass (median wall time; "
        f"{cpu_ratio:.2f}x in CPU time, both processes counted)"
    )
    if args.one_process:
        print(
            f"held to one process: {med['baseline']['wall'] / med['actidose-1']['wall']:.2f}x "
            "(median wall time)"
        )
    ok = ratio >= args.min_ratio
    rss_mb = med["actidose"]["rss_sum_kb"] / 1024
    ok &= rss_mb < args.max_rss_mb and all(r["reader"] == "fast" for r in runs["actidose"])
    if not args.no_check:
        check = measure(CHECK, path)
        print(
            f"same records as the reference reader: {'yes' if check['same'] else 'NO'} "
            f"({check['hr']:,} HR, {check['rr']:,} RR, {check['vendor']} vendor series, "
            f"{check['workouts']:,} workouts; reader {check['reader']})"
            + ("" if check["same"] else f"; differ: {check['differ']}")
        )
        ok &= bool(check["same"])
    print(
        f"acceptance (>= {args.min_ratio:g}x, peak RSS < {args.max_rss_mb:g} MB, same records): "
        + ("met" if ok else "NOT met")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
