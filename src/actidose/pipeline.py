"""The import pipeline: files -> Recording -> DuckDB, in batches of files -> derived tables.

Per file: sha256 of the bytes (the same bytes under any name are a duplicate), format detected
from content, read into a :class:`~actidose.recording.Recording`, the sample rules applied.
A file that cannot be read is recorded as quarantined with its specific reason and the import
goes on. Derived tables are recomputed once, at the end, for the participants the import
touched.

Batches: files are checked against ``sources`` in groups (one query per group of up to
:data:`INTAKE_FILES`), and written in batches: one transaction and one columnar ``INSERT`` per
table for up to :data:`BATCH_FILES` files or :data:`BATCH_ROWS` sample rows, or what
:data:`BATCH_SECONDS` of parsing produced (:func:`actidose.storage.write.store_sources`). A
batch commits atomically, so a crash leaves every file whole or absent, and ``pending_recompute``
(written in the batch's transaction) lets the next command heal the derived tables. Within one
run the same bytes twice make one source: the later copy is reported like the first (a
duplicate of an imported file, or quarantined with the same reason).

Archives (zip, gzip; one level of nesting) are opened by :mod:`actidose.ingest.archive`; each
member is a source of its own (``path`` = ``archive.zip!member``). Members are decompressed
once, into a spool file while hashing, so a multi-GB ``export.xml`` is never held in memory.
Members that no importer recognises (a Strava ``activities.csv``, photos) are *skipped*, not
quarantined: exports are full of files that carry no heart rate.

``jobs > 1`` parses in worker processes, many small files per task (a list of up to
:data:`TASK_FILES` files; a file of :data:`TASK_BYTES` or more is a task of its own); this
process stays the only database writer and writes results in input order, so the outcome does
not depend on the number of jobs or the batch size.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from .errors import InputError, NothingToImport
from .ingest.archive import Limits, archive_kind, iter_members
from .ingest.files import expand
from .ingest.registry import HEAD_BYTES, NOT_RECOGNISED, detect_format, read_recording
from .ingest.samples import CleanHR, clean_hr
from .recording import AccelEpochs, HRSeries, ReadContext, Recording

# The database side (duckdb, storage, the derived-table kernels) is imported where it is used:
# worker processes import this module to parse, and need none of it.
if TYPE_CHECKING:
    import duckdb

    from .storage.write import SourceFile

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_QUARANTINED = 3

_P = ParamSpec("_P")
_T = TypeVar("_T")

STATUSES = ("imported", "salvaged", "duplicate", "skipped", "quarantined", "failed")

#: A write batch is committed when it holds this many files ...
BATCH_FILES = 64
#: ... or this many sample rows (HR, RR, vendor values, accelerometer epochs) ...
BATCH_ROWS = 2_000_000
#: ... or when its first file was added this many seconds ago (bounds the work a crash loses).
BATCH_SECONDS = 0.25
#: Files are checked against ``sources`` (one query) in groups of up to this many files ...
INTAKE_FILES = 64
#: ... or this many bytes (archive members wait in spool files until parsed).
INTAKE_BYTES = 256 << 20
#: ``jobs > 1``: small files go to a worker in lists of up to this many files ...
TASK_FILES = 32
#: ... and this many bytes; a file at least this large is a task of its own.
TASK_BYTES = 16 << 20

#: ``Recording.meta`` key in which the FIT reader says how it decoded a file: ``"vectorized"``
#: or ``"reference: <why>"``.
FIT_DECODER_KEY = "fit_decoder"


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
    decoder: str | None = None  # how the reader decoded it, when it says ("vectorized", ...)


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

    def decoders(self) -> dict[str, int]:
        """How many files each decoder read, among the files whose reader says so.

        Returns
        -------
        dict
            ``{"vectorized": n, "reference": m}``: ``reference`` counts the FIT files that
            needed the (slower) reference decoder.
        """
        out = {"vectorized": 0, "reference": 0}
        for f in self.files:
            if f.decoder:
                key = f.decoder.split(":", 1)[0].strip()
                out[key] = out.get(key, 0) + 1
        return out

    def reference_decoded(self) -> list[FileOutcome]:
        """The files that needed the reference decoder; ``decoder`` says why."""
        return [f for f in self.files if f.decoder and f.decoder.startswith("reference")]

    def to_dict(self) -> dict[str, object]:
        return {
            "participant_id": self.participant_id,
            "counts": {s: self.count(s) for s in STATUSES},
            "samples": sum(f.n_samples for f in self.files),
            "decoders": self.decoders(),
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
        hr = clean_hr(rec.hr)
        rec.hr = HRSeries.empty()  # only the cleaned samples are stored (and sent back)
        return _Parsed(item, fmt, rec, hr)
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


def _source_file(p: _Parsed, replace_id: int | None = None) -> SourceFile:
    """What is stored of a parsed item: its recording and cleaned samples, or (unreadable)
    the reason it has none."""
    from .storage.write import SourceFile

    it = p.item
    if p.status != "ok" or p.rec is None or p.hr is None:
        return SourceFile(
            it.sha256,
            it.display,
            it.size,
            fmt=p.fmt,
            reason=p.reason or "unreadable",
            replace_id=replace_id,
            archive_sha256=it.archive_sha256,
        )
    return SourceFile(
        it.sha256,
        it.display,
        it.size,
        p.rec,
        p.hr,
        replace_id=replace_id,
        archive_sha256=it.archive_sha256,
    )


def _parse_many(items: Sequence[_Item], salvage: bool, ctx: ReadContext) -> list[_Parsed]:
    """Read a list of items (one task of a worker process)."""
    return [_parse(it, salvage, ctx) for it in items]


class _Inline(Executor):
    """The ``jobs == 1`` executor: run each call at once, in this process."""

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        fut: Future[_T] = Future()
        fut.set_result(fn(*args, **kwargs))
        return fut


def _fingerprint(path: Path, chunk: int = 1 << 20) -> tuple[str, int, bytes]:
    """sha256, size and the first :data:`HEAD_BYTES` of a file, in one pass."""
    h = hashlib.sha256()
    size = 0
    head = b""
    with path.open("rb") as fp:
        while block := fp.read(chunk):
            if size == 0:
                head = block[:HEAD_BYTES]
            h.update(block)
            size += len(block)
    return h.hexdigest(), size, head


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
        sha, size, head = _fingerprint(path)
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


@dataclass(eq=False)
class _Slot:
    """One input item in input order, on its way to the database."""

    item: _Item | None = None
    outcome: FileOutcome | None = None  # known (a duplicate, an unreadable path) or once written
    parsed: _Parsed | None = None  # known without parsing (a refused archive or member)
    task: Future[list[_Parsed]] | None = None
    index: int = 0  # in the task's list
    replace_id: int | None = None
    first: _Slot | None = None  # an earlier item of this run with the same bytes

    @property
    def to_parse(self) -> bool:
        return (
            self.item is not None
            and self.outcome is None
            and self.parsed is None
            and self.first is None
        )


@dataclass(frozen=True)
class _BatchLimits:
    files: int = BATCH_FILES
    rows: int = BATCH_ROWS
    seconds: float = BATCH_SECONDS


class _Run:
    """One :func:`import_paths` call: items are checked against ``sources`` in groups, parsed
    (in tasks of many files), and written in batches, in input order."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        summary: ImportSummary,
        executor: Executor,
        *,
        salvage: bool,
        ctx: ReadContext,
        spool_dir: Path,
        limits: _BatchLimits,
        workers: int,
    ) -> None:
        self.con = con
        self.summary = summary
        self.pid = summary.participant_id
        self.executor = executor
        self.inline = isinstance(executor, _Inline)
        self.salvage = salvage
        self.ctx = ctx
        self.spool_dir = spool_dir
        self.limits = limits
        self.workers = max(1, workers)
        self.window = 2 * self.workers  # tasks in flight
        self.intake: list[_Item | FileOutcome | tuple[_Item, str]] = []
        self.intake_bytes = 0
        self.first: dict[str, _Slot] = {}  # sha256 -> the first item of this run with it
        self.slots: deque[_Slot] = deque()
        self.unread: dict[Future[list[_Parsed]], int] = {}  # task -> its slots not yet written
        self.batch: list[tuple[SourceFile, FileOutcome]] = []
        self.batch_rows = 0
        self.batch_t0 = 0.0

    # ---------------------------------------------------------------- intake
    def take(self, got: _Item | FileOutcome | tuple[_Item, str]) -> None:
        self.intake.append(got)
        if isinstance(got, _Item):
            self.intake_bytes += got.size
        if len(self.intake) >= INTAKE_FILES or self.intake_bytes >= INTAKE_BYTES:
            self._classify()

    def _drop_spool(self, item: _Item) -> None:
        if item.archive_sha256 is not None and item.read_path.parent == self.spool_dir:
            item.read_path.unlink(missing_ok=True)

    def _classify(self) -> None:
        """Duplicates of stored sources (one query for the group) and of earlier items of this
        run; then the rest goes to parsing."""
        from .storage.write import existing_sources

        group, self.intake, self.intake_bytes = self.intake, [], 0
        shas = [
            (g if isinstance(g, _Item) else g[0]).sha256
            for g in group
            if not isinstance(g, FileOutcome)
        ]
        prior = existing_sources(self.con, [s for s in shas if s not in self.first])
        slots: list[_Slot] = []
        for g in group:
            if isinstance(g, FileOutcome):
                slots.append(_Slot(outcome=g))
                continue
            item, refused = (g, None) if isinstance(g, _Item) else g
            slot = _Slot(item)
            slots.append(slot)
            earlier = self.first.get(item.sha256)
            if earlier is not None:
                slot.first = earlier
                self._drop_spool(item)
                continue
            self.first[item.sha256] = slot
            known = prior.get(item.sha256)
            if known is not None:
                prior_id, prior_status, prior_pid = known
                if prior_status == "quarantined" and prior_pid == self.pid:
                    slot.replace_id = prior_id  # tried again (e.g. now with --salvage)
                else:
                    note = "same bytes already " + (
                        "quarantined" if prior_status == "quarantined" else "imported"
                    )
                    if prior_pid != self.pid:
                        note += f" for participant {prior_pid}"
                    slot.outcome = FileOutcome(
                        item.display, "duplicate", reason=note, source_id=prior_id
                    )
                    self._drop_spool(item)
                    continue
            if refused is not None:
                slot.parsed = _Parsed(item, None, reason=refused, status="quarantined")
        self._submit(slots)

    def _submit(self, slots: list[_Slot]) -> None:
        """Send the slots to parse in tasks (lists of files), keeping input order."""
        n_parse = sum(s.to_parse for s in slots)
        per_task = 1 if self.inline else min(TASK_FILES, max(1, math.ceil(n_parse / self.window)))
        chunk: list[_Slot] = []
        n, size = 0, 0
        for s in slots:
            if s.to_parse and s.item is not None and s.item.size >= TASK_BYTES and n:
                self._emit(chunk)
                chunk, n, size = [], 0, 0
            chunk.append(s)
            if s.to_parse and s.item is not None:
                n += 1
                size += s.item.size
                if n >= per_task or size >= TASK_BYTES:
                    self._emit(chunk)
                    chunk, n, size = [], 0, 0
        self._emit(chunk)

    def _emit(self, chunk: list[_Slot]) -> None:
        todo = [s for s in chunk if s.to_parse]
        if todo:
            while len(self.unread) >= self.window:
                self._write_head()
            items = [s.item for s in todo if s.item is not None]
            fut = self.executor.submit(_parse_many, items, self.salvage, self.ctx)
            for i, s in enumerate(todo):
                s.task, s.index = fut, i
            self.unread[fut] = len(todo)
        self.slots.extend(chunk)
        self.write_ready()

    # ---------------------------------------------------------------- writing
    def write_ready(self) -> None:
        """Write the slots at the head whose parse is done (no waiting)."""
        while self.slots and (self.slots[0].task is None or self.slots[0].task.done()):
            self._write_head()

    def finish(self) -> None:
        if self.intake:
            self._classify()
        while self.slots:
            self._write_head()
        self.flush()

    def _write_head(self) -> None:
        s = self.slots.popleft()
        if s.task is not None:
            if self.batch and not s.task.done():
                # Waiting for a worker: what is parsed is committed once the batch is due.
                due = self.limits.seconds - (time.monotonic() - self.batch_t0)
                if not wait([s.task], timeout=max(0.0, due)).done:
                    self.flush()
            parsed = s.task.result()[s.index]
            self.unread[s.task] -= 1
            if not self.unread[s.task]:
                del self.unread[s.task]
            s.task = None
            assert s.item is not None
            self._drop_spool(s.item)
            self._add(s, parsed)
        elif s.parsed is not None:
            self._add(s, s.parsed)
        elif s.first is not None:
            self._add_same(s, s.first)
        else:
            assert s.outcome is not None
            self.summary.files.append(s.outcome)

    def _add(self, s: _Slot, p: _Parsed) -> None:
        it = p.item
        if p.status == "skipped":
            s.outcome = FileOutcome(it.display, "skipped", p.fmt, p.reason)
            self.summary.files.append(s.outcome)
            return
        if p.status != "ok" or p.rec is None or p.hr is None:
            entry = _source_file(p, s.replace_id)
            status = "failed" if p.status == "failed" else "quarantined"
            out = FileOutcome(it.display, status, p.fmt, p.reason)
        else:
            rec, hr = p.rec, p.hr
            entry = _source_file(p, s.replace_id)
            out = FileOutcome(
                it.display,
                "salvaged" if rec.salvaged else "imported",
                p.fmt,
                rec.salvage_reason if rec.salvaged else None,
                None,
                int(hr.ts_us.size),
                hr.n_invalid,
                hr.n_duplicate_ts,
                len(rec.activities),
                rec.meta.get(FIT_DECODER_KEY),
            )
        rows = entry.n_rows
        if self.batch and self.batch_rows + rows > self.limits.rows:
            self.flush()
        if not self.batch:
            self.batch_t0 = time.monotonic()
        self.batch.append((entry, out))
        self.batch_rows += rows
        s.outcome = out
        self.summary.files.append(out)
        if (
            len(self.batch) >= self.limits.files
            or self.batch_rows >= self.limits.rows
            or time.monotonic() - self.batch_t0 >= self.limits.seconds
        ):
            self.flush()

    def _add_same(self, s: _Slot, first: _Slot) -> None:
        """The same bytes as an earlier item of this run: reported like it, never parsed."""
        assert s.item is not None
        f = first.outcome
        assert f is not None
        if f.source_id is None and any(o is f for _, o in self.batch):
            self.flush()  # the first copy's source_id is known once its batch is written
        if f.status in ("imported", "salvaged"):
            out = FileOutcome(
                s.item.display,
                "duplicate",
                reason="same bytes already imported",
                source_id=f.source_id,
            )
        elif f.status == "duplicate":
            out = FileOutcome(s.item.display, "duplicate", reason=f.reason, source_id=f.source_id)
        else:  # quarantined, failed or skipped: the same bytes get the same verdict
            out = FileOutcome(s.item.display, f.status, f.format, f.reason, f.source_id)
        s.outcome = out
        self.summary.files.append(out)

    def flush(self) -> None:
        """Write the batch in one transaction (one INSERT per table)."""
        if not self.batch:
            return
        import duckdb

        from .storage.db import transaction
        from .storage.write import store_sources

        files = [e for e, _ in self.batch]
        try:
            with transaction(self.con):
                ids = store_sources(self.con, self.pid, files)
        except duckdb.Error:
            if len(files) == 1:
                raise
            # Find the file at fault: one transaction per file; those before it stay written.
            ids = []
            for f in files:
                with transaction(self.con):
                    ids.extend(store_sources(self.con, self.pid, [f]))
        for (_, out), sid in zip(self.batch, ids, strict=True):
            out.source_id = sid
        self.batch = []
        self.batch_rows = 0


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
    batch_files: int = BATCH_FILES,
    batch_rows: int = BATCH_ROWS,
    batch_seconds: float = BATCH_SECONDS,
) -> ImportSummary:
    """Import files, folders (recursively) and archives for one participant.

    Parameters
    ----------
    con
        The database (this process is its only writer).
    paths
        Files, folders and archives.
    participant_id
        Whose files these are (must exist).
    salvage
        Keep what precedes damage in a corrupt file (marked salvaged).
    progress
        Called with (index, number of paths, path) as each path is taken up.
    recompute_after
        Recompute the derived tables of the participants left pending.
    timezone
        Places naive local times (default: the participant's zone).
    options
        Go to the importers (e.g. ``{"format": "csv", "columns": "timestamp=Time,bpm=HR"}``).
    jobs
        Worker processes that parse while this process writes.
    limits
        Archive limits (unpacked size, compression ratio).
    executor
        A pool from :func:`parse_pool`, to share one pool across calls.
    batch_files, batch_rows, batch_seconds
        When a write batch is committed: at this many files, sample rows, or seconds after its
        first file. The database content does not depend on them.

    Returns
    -------
    ImportSummary
        One outcome per file or archive member, in input order.
    """
    from .storage import participants
    from .storage.derive import load_config, recompute

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
    inline = isinstance(executor, _Inline)
    workers = 1 if inline else max(jobs, getattr(executor, "_max_workers", jobs))
    run = _Run(
        con,
        summary,
        executor,
        salvage=salvage,
        ctx=ctx,
        spool_dir=spool_dir,
        limits=_BatchLimits(max(1, batch_files), max(1, batch_rows), batch_seconds),
        workers=workers,
    )
    try:
        for i, path in enumerate(files):
            if progress is not None:
                progress(i, len(files), os.fspath(path))
            for got in _items(path, spool_dir, limits, counter):
                run.take(got)
        run.finish()
    finally:
        if own_executor:
            executor.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(spool_dir, ignore_errors=True)
    if progress is not None:
        progress(len(files), len(files), "")
    if recompute_after:
        summary.recomputed = recompute(con)
    return summary
