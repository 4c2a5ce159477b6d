"""The import pipeline: files -> Recording -> one DuckDB transaction per file -> derived tables.

Per file: sha256 of the bytes (the same bytes under any name are a duplicate), format detected
from content, read into a :class:`~actidose.recording.Recording`, the sample rules applied,
then the source row, samples, RR intervals, vendor series and activities written in one
transaction. A file that cannot be read is recorded as quarantined with its specific reason and
the batch goes on. Derived tables are recomputed once, at the end, for the participants the
batch touched.

Archives (zip, gzip; one level of nesting) are opened by :mod:`actidose.ingest.archive`; each
member is a source of its own (``path`` = ``archive.zip!member``). Members are decompressed
once, into a spool file while hashing, so a multi-GB ``export.xml`` is never held in memory.
Members that no importer recognises (a Strava ``activities.csv``, photos) are *skipped*, not
quarantined: exports are full of files that carry no heart rate.

``jobs > 1`` parses in worker processes; this process stays the only database writer and writes
results in input order, so the outcome does not depend on the number of jobs.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from .errors import InputError, NothingToImport
from .ingest.archive import Limits, archive_kind, iter_members
from .ingest.files import expand, sha256_file
from .ingest.registry import HEAD_BYTES, NOT_RECOGNISED, detect_format, read_recording
from .ingest.samples import CleanHR, clean_hr
from .recording import AccelEpochs, ReadContext, Recording
from .storage import participants
from .storage.db import transaction
from .storage.derive import load_config, recompute
from .storage.write import existing_source, store_quarantined, store_recording

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_QUARANTINED = 3

STATUSES = ("imported", "salvaged", "duplicate", "skipped", "quarantined", "failed")


@dataclass
class FileOutcome:
    path: str
    status: str  # one of STATUSES
    format: str | None = None
    reason: str | None = None
    source_id: int | None = None
    n_samples: int = 0
    n_invalid: int = 0
    n_duplicate_ts: int = 0
    sessions: int = 0


@dataclass
class ImportSummary:
    participant_id: str
    files: list[FileOutcome] = field(default_factory=list)
    recomputed: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def exit_code(self) -> int:
        if self.count("failed"):
            return EXIT_FAILURE
        if self.count("quarantined"):
            return EXIT_QUARANTINED
        return EXIT_OK

    def to_dict(self) -> dict[str, object]:
        return {
            "participant_id": self.participant_id,
            "counts": {s: self.count(s) for s in STATUSES},
            "samples": sum(f.n_samples for f in self.files),
            "files": [asdict(f) for f in self.files],
            "recomputed": self.recomputed,
            "exit_code": self.exit_code,
        }


@dataclass(frozen=True)
class _Item:
    """One thing to import: a plain file, or an archive member spooled to ``read_path``."""

    display: str
    read_path: Path
    sha256: str
    size: int
    archive_sha256: str | None = None


@dataclass
class _Parsed:
    item: _Item
    fmt: str | None = None
    rec: Recording | None = None
    hr: CleanHR | None = None
    reason: str | None = None
    status: str = "ok"  # ok | quarantined | skipped | failed


def _process_accel(rec: Recording, ctx: ReadContext) -> None:
    """Raw accelerometer stream -> epochs, in bounded memory (two passes over the chunks). The
    stream (it holds the decoded file) is dropped once its epochs exist."""
    from .dose.accel_process import process

    assert rec.accel is not None
    opts = ctx.options
    result = process(
        rec.accel,
        epoch_s=float(opts.get("accel_epoch_s", 5.0)),
        calibrate=opts.get("autocalibrate", "true").lower() in ("1", "true", "yes"),
        nonwear_rule=opts.get("nonwear_rule", "ggir2023"),
    )
    fields = result.epoch_fields()
    info = dict(result.info)
    info["stream_gap_spans_us"] = [list(g) for g in rec.accel.gaps[:1000]]
    fields["info"] = info
    rec.accel_epochs = AccelEpochs(**fields)  # type: ignore[arg-type]
    rec.accel = None


def _parse(item: _Item, salvage: bool, ctx: ReadContext) -> _Parsed:
    """Read one item. Runs in a worker process when jobs > 1: it never touches the database."""
    fmt: str | None = None
    try:
        with item.read_path.open("rb") as fp:
            fmt, rec = read_recording(fp, path=item.display, salvage=salvage, ctx=ctx)
            if rec.accel is not None:
                _process_accel(rec, ctx)
        return _Parsed(item, fmt, rec, clean_hr(rec.hr))
    except InputError as exc:
        skip = isinstance(exc, NothingToImport) or (
            item.archive_sha256 is not None and exc.reason.startswith(NOT_RECOGNISED)
        )
        return _Parsed(item, fmt, reason=exc.reason, status="skipped" if skip else "quarantined")
    except OSError as exc:
        return _Parsed(item, fmt, reason=f"cannot read: {exc.strerror or exc}", status="failed")
    except Exception as exc:  # a reader bug must not stop the batch; it is reported as failed
        reason = f"internal error while reading: {type(exc).__name__}: {exc}"
        return _Parsed(item, fmt, reason=reason, status="failed")


class _Inline(Executor):
    """The ``jobs == 1`` executor: run each call at once, in this process."""

    def submit(self, fn: Callable[..., _Parsed], /, *args: object, **kwargs: object) -> Future:  # type: ignore[override]
        fut: Future[_Parsed] = Future()
        fut.set_result(fn(*args, **kwargs))
        return fut


def _store(
    con: duckdb.DuckDBPyConnection, p: _Parsed, participant_id: str, replace_id: int | None
) -> FileOutcome:
    it = p.item
    if p.status == "skipped":
        return FileOutcome(it.display, "skipped", p.fmt, p.reason)
    if p.status != "ok" or p.rec is None or p.hr is None:
        with transaction(con):
            sid = store_quarantined(
                con,
                sha256=it.sha256,
                path=it.display,
                size=it.size,
                participant_id=participant_id,
                fmt=p.fmt,
                reason=p.reason or "unreadable",
                replace_id=replace_id,
            )
        status = "failed" if p.status == "failed" else "quarantined"
        return FileOutcome(it.display, status, p.fmt, p.reason, sid)
    rec, hr = p.rec, p.hr
    with transaction(con):
        sid = store_recording(
            con,
            sha256=it.sha256,
            path=it.display,
            size=it.size,
            participant_id=participant_id,
            rec=rec,
            hr=hr,
            replace_id=replace_id,
            archive_sha256=it.archive_sha256,
        )
    return FileOutcome(
        it.display,
        "salvaged" if rec.salvaged else "imported",
        p.fmt,
        rec.salvage_reason if rec.salvaged else None,
        sid,
        int(hr.ts_us.size),
        hr.n_invalid,
        hr.n_duplicate_ts,
        len(rec.activities),
    )


def _duplicate(
    con: duckdb.DuckDBPyConnection, item: _Item, participant_id: str
) -> tuple[FileOutcome | None, int | None]:
    """(outcome, None) for a duplicate; (None, source_id to replace or None) to import."""
    prior = existing_source(con, item.sha256)
    if prior is None:
        return None, None
    prior_id, prior_status, prior_pid = prior
    if prior_status == "quarantined" and prior_pid == participant_id:
        return None, prior_id  # a quarantined file is tried again (e.g. now with --salvage)
    note = "same bytes already " + ("quarantined" if prior_status == "quarantined" else "imported")
    if prior_pid != participant_id:
        note += f" for participant {prior_pid}"
    return FileOutcome(item.display, "duplicate", reason=note, source_id=prior_id), None


def _spool_member(
    open_member: Callable[[], object], spool_dir: Path, n: int
) -> tuple[Path, str, int]:
    h = hashlib.sha256()
    size = 0
    target = spool_dir / f"member-{n}"
    with open_member() as src, target.open("wb") as dst:  # type: ignore[attr-defined]
        while block := src.read(1 << 20):
            h.update(block)
            size += len(block)
            dst.write(block)
    return target, h.hexdigest(), size


def _items(
    path: Path, spool_dir: Path, limits: Limits, counter: Iterator[int]
) -> Iterator[_Item | FileOutcome | tuple[_Item, str]]:
    """The items of one path: itself, or its archive members. An unreadable path yields a
    FileOutcome; a refused archive or member yields (item, reason) to be quarantined."""
    shown = str(path.resolve())
    try:
        sha, size = sha256_file(path)
        with path.open("rb") as fp:
            head = fp.read(HEAD_BYTES)
    except OSError as exc:
        yield FileOutcome(shown, "failed", reason=f"cannot read: {exc.strerror or exc}")
        return
    whole = _Item(shown, path, sha, size)
    if archive_kind(head) is None or detect_format(head) is not None:
        yield whole  # a plain file, or a zip that is itself a format (ActiGraph .gt3x)
        return
    try:
        for member in iter_members(path.resolve(), limits=limits):
            try:
                spool, msha, msize = _spool_member(member.open, spool_dir, next(counter))
            except InputError as exc:
                key = hashlib.sha256(f"{sha}!{member.name}".encode()).hexdigest()
                yield (_Item(member.name, path, key, member.size_hint or 0, sha), exc.reason)
                continue
            yield _Item(member.name, spool, msha, msize, sha)
    except InputError as exc:
        yield (whole, exc.reason)


ProgressHook = Callable[[int, int, str], None]


def parse_pool(jobs: int) -> Executor:
    """A pool of ``jobs`` worker processes for :func:`import_paths`. Workers are spawned, not
    forked, so no database handle or lock is inherited."""
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))


def _database_files(con: duckdb.DuckDBPyConnection) -> set[Path]:
    """The database's own files, never to be imported (a study folder may hold the database)."""
    out: set[Path] = set()
    for row in con.execute("SELECT path FROM duckdb_databases() WHERE path IS NOT NULL").fetchall():
        db = Path(row[0]).resolve()
        out |= {db, db.with_name(db.name + ".wal")}
    return out


def import_paths(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    participant_id: str,
    *,
    salvage: bool = False,
    progress: ProgressHook | None = None,
    recompute_after: bool = True,
    timezone: str | None = None,
    options: dict[str, str] | None = None,
    jobs: int = 1,
    limits: Limits | None = None,
    executor: Executor | None = None,
) -> ImportSummary:
    """Import files, folders (recursively) and archives for one participant.

    ``timezone`` places naive local times (default: the participant's zone); ``options`` go to
    the importers (e.g. ``{"format": "csv", "columns": "timestamp=Time,bpm=HR"}``); ``jobs``
    worker processes parse while this process writes (or pass an ``executor`` from
    :func:`parse_pool` to share one pool across calls).
    """
    person = participants.require(con, participant_id)
    cfg = load_config(con)
    opts = {
        "accel_epoch_s": str(cfg.accel_epoch_s),
        "nonwear_rule": cfg.nonwear_rule,
        "autocalibrate": str(cfg.autocalibrate),
        **(options or {}),
    }
    ctx = ReadContext(timezone or person.timezone, opts)
    own = _database_files(con)
    files = [f for f in expand(paths) if f.resolve() not in own]
    summary = ImportSummary(participant_id)
    limits = limits or Limits()
    spool_dir = Path(tempfile.mkdtemp(prefix="actidose-"))
    counter = iter(range(1 << 62))
    own_executor = executor is None
    if executor is None:
        executor = parse_pool(jobs) if jobs > 1 else _Inline()
    window = 2 * max(jobs, getattr(executor, "_max_workers", 1))
    pending: deque[tuple[Future[_Parsed], int | None]] = deque()
    in_batch: set[str] = set()

    def drain(keep: int) -> None:
        while len(pending) > keep:
            fut, replace_id = pending.popleft()
            parsed = fut.result()
            summary.files.append(_store(con, parsed, participant_id, replace_id))
            if parsed.item.archive_sha256 is not None and parsed.item.read_path.parent == spool_dir:
                parsed.item.read_path.unlink(missing_ok=True)

    try:
        for i, path in enumerate(files):
            if progress is not None:
                progress(i, len(files), os.fspath(path))
            for got in _items(path, spool_dir, limits, counter):
                if isinstance(got, FileOutcome):
                    drain(0)
                    summary.files.append(got)
                    continue
                if isinstance(got, tuple):
                    item, reason = got
                    drain(0)
                    dup, replace_id = _duplicate(con, item, participant_id)
                    summary.files.append(
                        dup
                        or _store(
                            con,
                            _Parsed(item, None, reason=reason, status="quarantined"),
                            participant_id,
                            replace_id,
                        )
                    )
                    continue
                if got.sha256 in in_batch:
                    drain(0)  # the same bytes twice in one batch: let the first land first
                in_batch.add(got.sha256)
                dup, replace_id = _duplicate(con, got, participant_id)
                if dup is not None:
                    drain(0)
                    summary.files.append(dup)
                    if got.read_path.parent == spool_dir:
                        got.read_path.unlink(missing_ok=True)
                    continue
                pending.append((executor.submit(_parse, got, salvage, ctx), replace_id))
                drain(window)
        drain(0)
    finally:
        if own_executor:
            executor.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(spool_dir, ignore_errors=True)
    if progress is not None:
        progress(len(files), len(files), "")
    if recompute_after:
        summary.recomputed = recompute(con)
    return summary
