"""Query time over a parts dataset, before and after ``compact``.

    python benchmarks/parts_query_bench.py OUT [--files 10000] [--participants 250]
        [--samples 3600] [--mode fit|direct] [--workers 2] [--repeat 5] [--reuse]

What it does:

1. A study database ``OUT/study.duckdb`` with ``--participants`` participants, and a parts run
   ``OUT/parts`` (``prepare_run``).
2. ``--files`` source files spread evenly over the participants, each an activity of
   ``--samples`` HR samples at 1 Hz (one hour), one a day from 2024-01-01:

   * ``--mode fit`` (default): each is written as a FIT file
     (:func:`actidose.ingest.fit_writer.write_activity_fit`) and imported by
     :func:`actidose.scale.process_file` in ``--workers`` spawned processes (the FIT file is
     deleted once imported). This is the real path: decode, sample rules, one part per table.
   * ``--mode direct``: one file goes through ``process_file``; every other file's parts are
     that template's parts with its own sha256, ``source_id``, participant and day (same sizes,
     same schema, written the same way), which takes seconds instead of minutes.

   Then :func:`actidose.scale.derive_participant` for every participant (derived parts).
3. Through :func:`actidose.scale.attach` (views over explicit file lists, in an in-memory
   DuckDB): the median over ``--repeat`` runs (after one warm-up) of

   * Q1 ``SELECT participant_id, count(*), avg(bpm) FROM hr_samples GROUP BY 1``
   * Q2 ``SELECT participant_id, count(*), sum(trimp_banister), sum(mvpa_min) FROM daily_load
     GROUP BY 1``
   * Q3 one participant's samples: ``SELECT count(*), avg(bpm) FROM hr_samples WHERE
     participant_id = ...``

   with the number of Parquet files each view reads and the time per file; then
   :func:`actidose.scale.compact` (timed) and the same queries again; then, for reference,
   :func:`actidose.scale.load_parts` into the study database (timed) and the queries there.

``--reuse`` skips steps 1-2 when ``OUT/parts`` exists (e.g. to time the queries again; a
dataset already compacted is then measured after compaction only). Prints one block of figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from actidose.scale import (
    Dataset,
    FileTask,
    attach,
    compact,
    derive_participant,
    load_parts,
    prepare_run,
    process_file,
    source_id_of,
)
from actidose.scale.parts import (
    META_RUN,
    META_SUMMARY,
    FileSummary,
    part_path,
    participant_key,
    write_parquet_atomic,
)
from actidose.storage import participants
from actidose.storage.db import connect

DAY_US = 86_400_000_000
Figures = dict[str, tuple[float, list[tuple[object, ...]]]]
T0 = np.datetime64("2024-01-01T07:00:00", "us")


def pids(n: int) -> list[str]:
    return [f"P{i:04d}" for i in range(n)]


def plan(files: int, people: Sequence[str]) -> list[tuple[str, int]]:
    """(participant, day index) of every file: round robin, so each participant has ~equal
    files on consecutive days."""
    return [(people[i % len(people)], i // len(people)) for i in range(files)]


def fit_one(job: tuple[str, int, int, str, str, FileTask]) -> int:
    """Write one FIT file, import it with process_file, delete it. Returns HR samples."""
    from actidose.ingest.fit_writer import write_activity_fit

    pid, day, samples, tmp, root, task = job
    seed = int.from_bytes(hashlib.sha256(f"{pid}/{day}".encode()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    ts = T0 + np.timedelta64(day, "D") + np.arange(samples).astype("timedelta64[s]")
    bpm = 125 + 25 * np.sin(np.arange(samples) / 300.0) + rng.normal(0, 3, samples)
    path = Path(tmp) / f"{pid}-{day}.fit"
    write_activity_fit(path, ts, np.clip(bpm, 60, 200), serial=1000 + day)
    try:
        s = process_file(path, pid, root, task=task)
    finally:
        path.unlink(missing_ok=True)
    return s.n_samples


def direct(root: Path, task: FileTask, jobs: list[tuple[str, int]], samples: int) -> None:
    """Parts of every file from one template file's parts (see the module notes)."""
    tmp = root.parent / "fit-tmp"
    tmp.mkdir(exist_ok=True)
    first_pid, _ = jobs[0]
    fit_one((first_pid, 0, samples, str(tmp), str(root), task))
    ds = Dataset.open(root)
    (sha0,) = ds.sources
    template = {
        t: pq.read_table(part_path(root, t, sha0))
        for t in ("sources", "hr_samples", "activities")
        if part_path(root, t, sha0).exists()
    }
    summary0 = FileSummary.from_dict(
        json.loads(pq.read_schema(part_path(root, "sources", sha0)).metadata[META_SUMMARY])
    )

    def shifted(table: pa.Table, column: str, us: int) -> pa.Array:
        ts = table.column(column).cast(pa.int64())
        return pc.add(ts, us).cast(pa.timestamp("us", tz="UTC"))

    for pid, day in jobs[1:]:
        sha = hashlib.sha256(f"{pid}/{day}".encode()).hexdigest()
        sid = source_id_of(sha)
        shift = day * DAY_US
        for name, t in template.items():
            if name == "sources":
                continue
            out = t
            if "source_id" in out.column_names:
                i = out.column_names.index("source_id")
                out = out.set_column(i, "source_id", pa.array([sid] * out.num_rows, pa.int64()))
            if "participant_id" in out.column_names:
                i = out.column_names.index("participant_id")
                out = out.set_column(
                    i, "participant_id", pa.array([pid] * out.num_rows, pa.string())
                )
            for col in ("ts", "start_ts", "end_ts"):
                if col in out.column_names:
                    i = out.column_names.index(col)
                    out = out.set_column(i, out.schema.field(i), shifted(out, col, shift))
            write_parquet_atomic(part_path(root, name, sha), out)
        index = root / "parts" / "_participants" / participant_key(pid)
        index.mkdir(parents=True, exist_ok=True)
        (index / sha).touch()
        s = FileSummary(
            f"/data/{pid}/{day}.fit",
            pid,
            "imported",
            sha,
            format="fit",
            source_id=sid,
            n_samples=summary0.n_samples,
        )
        src = template["sources"]
        for col, val in (("sha256", sha), ("path", s.input), ("participant_id", pid)):
            i = src.column_names.index(col)
            src = src.set_column(i, col, pa.array([val], pa.string()))
        i = src.column_names.index("source_id")
        src = src.set_column(i, "source_id", pa.array([sid], pa.int64()))
        for col in ("first_ts", "last_ts"):
            i = src.column_names.index(col)
            src = src.set_column(i, src.schema.field(i), shifted(src, col, shift))
        write_parquet_atomic(
            part_path(root, "sources", sha),
            src,
            {META_RUN: task.run_id.encode(), META_SUMMARY: json.dumps(s.to_dict()).encode()},
        )
    shutil.rmtree(tmp, ignore_errors=True)


def derive_one(job: tuple[str, str, str]) -> int:
    pid, root, params_id = job
    return sum(derive_participant(pid, root, params_id=params_id).tables.values())


QUERIES = {
    "Q1 hr_samples by participant": "SELECT participant_id, count(*), avg(bpm) FROM hr_samples "
    "GROUP BY 1",
    "Q2 daily_load by participant": "SELECT participant_id, count(*), sum(trimp_banister), "
    "sum(mvpa_min) FROM daily_load GROUP BY 1",
    "Q3 one participant's samples": "SELECT count(*), avg(bpm) FROM hr_samples "
    "WHERE participant_id = 'P0007'",
}
FILES_OF = {
    "Q1 hr_samples by participant": "hr_samples",
    "Q2 daily_load by participant": "daily_load",
    "Q3 one participant's samples": "hr_samples",
}


def time_queries(con: duckdb.DuckDBPyConnection, repeat: int) -> Figures:
    out = {}
    for name, sql in QUERIES.items():
        result = con.execute(sql).fetchall()  # warm-up
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            con.execute(sql).fetchall()
            times.append(time.perf_counter() - t)
        out[name] = (statistics.median(times) * 1000, sorted(result, key=repr))
    return out


def view_files(root: Path, table: str) -> int:
    ds = Dataset.open(root)
    if table == "daily_load":
        return len(ds.compacted_files(table)) + len(ds.derived_parts(table))
    return len(ds.compacted_files(table)) + len(ds.parts(table))


def report(label: str, root: Path, figures: Figures) -> None:
    print(f"-- {label}")
    for name, (ms, _) in figures.items():
        n = view_files(root, FILES_OF[name])
        per = f"{ms / n:8.4f} ms per file ({n} files)" if n else ""
        print(f"   {name:32s} {ms:9.1f} ms   {per}")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--participants", type=int, default=250)
    ap.add_argument("--samples", type=int, default=3600)
    ap.add_argument("--mode", choices=("fit", "direct"), default="fit")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args(argv)
    out: Path = args.out.resolve()
    root = out / "parts"
    db_path = out / "study.duckdb"
    people = pids(args.participants)
    ctx = multiprocessing.get_context("spawn")
    if not (args.reuse and root.exists()):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        con = connect(db_path)
        for pid in people:
            participants.add(
                con, participants.Participant(pid, "Europe/London", "f", 1985, None, 60, 190)
            )
        task = prepare_run(con, root)
        con.close()
        jobs = plan(args.files, people)
        t = time.perf_counter()
        if args.mode == "fit":
            tmp = out / "fit-tmp"
            tmp.mkdir()
            work = [(p, d, args.samples, str(tmp), str(root), task) for p, d in jobs]
            with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
                n = sum(pool.map(fit_one, work, chunksize=16))
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            direct(root, task, jobs, args.samples)
            n = args.files * args.samples
        t_make = time.perf_counter() - t
        t = time.perf_counter()
        with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
            derived = sum(
                pool.map(derive_one, [(p, str(root), task.params_id) for p in people], chunksize=4)
            )
        t_derive = time.perf_counter() - t
        print(
            f"made {args.files} files ({n} HR samples, mode {args.mode}) in {t_make:.1f} s "
            f"({1000 * t_make / args.files:.1f} ms per file, {args.workers} workers); derived "
            f"{len(people)} participants ({derived} rows) in {t_derive:.1f} s"
        )
    n_part_files = sum(1 for _ in (root / "parts").rglob("*.parquet"))
    size = sum(p.stat().st_size for p in (root / "parts").rglob("*.parquet"))
    print(f"parts: {n_part_files} Parquet files, {size / 1e6:.1f} MB")

    def views() -> tuple[duckdb.DuckDBPyConnection, float]:
        t = time.perf_counter()
        con = duckdb.connect(":memory:")
        attach(con, root)
        return con, time.perf_counter() - t

    con, t_attach = views()
    print(f"attach (list files, make views): {1000 * t_attach:.0f} ms")
    before = time_queries(con, args.repeat)
    report("before compact (views over parts)", root, before)
    con.close()
    t = time.perf_counter()
    summary = compact(root)
    t_compact = time.perf_counter() - t
    print(
        f"compact: {t_compact:.1f} s, generation {summary.generation}, files {dict(summary.files)}"
        f", {summary.removed} part files removed"
    )
    con, t_attach = views()
    print(f"attach after compact: {1000 * t_attach:.0f} ms")
    after = time_queries(con, args.repeat)
    report("after compact (views over compacted files)", root, after)
    con.close()
    for name in QUERIES:
        assert before[name][1] == after[name][1], f"{name}: answers differ after compact"
    db = connect(db_path)
    t = time.perf_counter()
    loaded = load_parts(db, root)
    t_load = time.perf_counter() - t
    print(
        f"load into DuckDB: {t_load:.1f} s ({loaded.sources_new} sources, "
        f"{loaded.rows.get('hr_samples', 0)} HR samples, derived from parts for "
        f"{len(loaded.derived_from_parts)} participants, recomputed {len(loaded.recomputed)})"
    )
    in_db = time_queries(db, args.repeat)
    print("-- in the DuckDB database")
    for name, (ms, _) in in_db.items():
        print(f"   {name:32s} {ms:9.1f} ms")
    db.close()
    gain = {k: before[k][0] / max(after[k][0], 1e-9) for k in QUERIES}
    print(
        "speed-up from compact: " + ", ".join(f"{k.split()[0]} x{v:.0f}" for k, v in gain.items())
    )


if __name__ == "__main__":
    main()
