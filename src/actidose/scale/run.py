"""The driver of the parts path: many files through one executor, a ledger, resume.

:func:`run_files` sends ``process_file(path, participant_id, out_root, task=...)`` for each
input to a :class:`concurrent.futures.Executor` (a process pool, a Dask cluster, or this
process: :mod:`actidose.scale.executors`), with at most ``max_in_flight`` tasks submitted at a
time, and records each result as it finishes (``wait(FIRST_COMPLETED)``) in the run's ledger::

    DIR/_ledger/<run-start>-<host>-<pid>.jsonl

one JSON line per finished input (``input``, ``sha256``, ``participant_id``, ``status``,
``reason``, ``parts``, ``seconds``, ``worker``, ...), appended, flushed at once and
``fsync``-ed at least once a second. Every driver (a rerun, a shard of a job array) appends to
a file of its own, so ledgers never interleave.

Resume: an input whose latest ledger line says it finished, whose listed parts (the ``sources``
part among them) all exist, and whose size and modification time are unchanged is not
submitted again. An input that was in flight when a driver died is submitted again; the parts
it may already have written are found by ``process_file`` (which does not write them again):
whatever the point at which a run was killed, running the same command again finishes it and
no file is written into the results twice (parts are named by the file's sha256 and appear
only by an atomic rename).

Lost workers: when a worker of the process pool dies (killed, out of memory) the pool breaks
and every task in flight fails. The pool is renewed and those tasks are run again one at a
time, so the one that kills its worker is found; it is tried up to ``retries`` more times alone
and then recorded as failed (the next run tries it again). On Dask the scheduler reschedules
the tasks of a lost worker itself (up to its ``allowed-failures``, then ``KilledWorker``, which
is recorded as failed).

:func:`derive_participants` runs the per-participant derived tables through the same executor.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..errors import UsageError
from ..ingest.files import expand
from .executors import ClusterError, executor_workers

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_QUARANTINED = 3

LEDGER_DIR = "_ledger"
#: The ledger is fsync-ed at least this often (lines are flushed at once).
SYNC_SECONDS = 1.0
#: Default bound on tasks in flight: this many per worker.
IN_FLIGHT_PER_WORKER = 4

#: Test-only: the name of an input on which a worker holds (sleeps) before processing it, the
#: first time only, after writing its pid to ``$ACTIDOSE_TEST_HOLD_DIR/held.pid`` (so a test
#: can kill the worker in the middle of that file).
HOLD_ENV = "ACTIDOSE_TEST_HOLD"

#: ``(done, total, label)`` as inputs finish.
ProgressHook = Callable[[int, int, str], None]

#: The unit of work: ``fn(path, participant_id, out_root, task=task) -> FileSummary``.
WorkFn = Callable[..., Any]


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class Input:
    """One input of a run: a file (or archive) and whose it is."""

    path: Path
    participant_id: str

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.path), self.participant_id)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` (1-based, ``1 <= i <= N``) as ``(i, N)``.

    Raises
    ------
    UsageError
        Not of that form.
    """
    try:
        i_s, n_s = text.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        i, n = 0, 0
    if not 1 <= i <= n:
        raise UsageError(
            f"--shard {text!r} is not i/N with 1 <= i <= N",
            fix="e.g. --shard 1/3, --shard 2/3 and --shard 3/3 for three jobs",
        )
    return i, n


def expand_inputs(
    given: Iterable[tuple[Path, str]],
    *,
    exclude: Iterable[Path] = (),
    shard: tuple[int, int] | None = None,
) -> list[Input]:
    """Files, folders (recursively) and archives with their participants, as the inputs of a
    run: absolute paths, sorted by path (then participant), without repeats; ``shard=(i, N)``
    keeps those whose index in that order is ``i - 1`` mod ``N``.

    Parameters
    ----------
    given
        ``(path, participant_id)`` pairs; a path may be a folder.
    exclude
        Files and folders never to take as inputs (the database, the parts root).
    shard
        ``(i, N)``, 1-based.

    Returns
    -------
    list of Input
    """
    skip_files: set[Path] = set()
    skip_dirs: list[Path] = []
    for p in exclude:
        r = p.resolve()
        if r.is_dir():
            skip_dirs.append(r)
        else:
            skip_files.add(r)
    seen: set[tuple[str, str]] = set()
    out: list[Input] = []
    for path, pid in given:
        for f in expand([Path(path)]):
            r = f.resolve()
            if r in skip_files or any(r.is_relative_to(d) for d in skip_dirs):
                continue
            item = Input(r, pid)
            if item.key not in seen:
                seen.add(item.key)
                out.append(item)
    out.sort(key=lambda x: x.key)
    if shard is not None:
        i, n = shard
        out = out[i - 1 :: n]
    return out


# --------------------------------------------------------------------------- ledger
def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Ledger:
    """This driver's ledger file: JSON lines appended, flushed at once, ``fsync``-ed at least
    every :data:`SYNC_SECONDS` and on :meth:`close`.

    Parameters
    ----------
    out_root
        The parts root; the file is ``out_root/_ledger/<run-start>-<host>-<pid>.jsonl``.
    """

    def __init__(self, out_root: Path) -> None:
        folder = Path(out_root) / LEDGER_DIR
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        host = socket.gethostname().split(".")[0] or "host"
        self.path = folder / f"{stamp}-{host}-{os.getpid()}.jsonl"
        self._fp: IO[str] | None = None
        self._synced = time.monotonic()
        self._dirty = False
        self.lines = 0

    def write(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Append ``entries`` (one line each) and flush; ``fsync`` when due."""
        if not entries:
            return
        if self._fp is None:
            self._fp = self.path.open("a", encoding="utf-8")
        text = "".join(json.dumps(_jsonable(e), sort_keys=True) + "\n" for e in entries)
        self._fp.write(text)
        self._fp.flush()
        self.lines += len(entries)
        self._dirty = True
        if time.monotonic() - self._synced >= SYNC_SECONDS:
            self.sync()

    def sync(self) -> None:
        if self._fp is not None and self._dirty:
            os.fsync(self._fp.fileno())
            self._dirty = False
        self._synced = time.monotonic()

    def close(self) -> None:
        if self._fp is not None:
            self.sync()
            self._fp.close()
            self._fp = None


def read_ledgers(out_root: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest ledger line of each ``(input, participant_id)`` over every ledger file of
    ``out_root`` (files in name order, which is start-time order; lines in order). A torn
    last line (a machine that stopped mid-write) is ignored.

    Parameters
    ----------
    out_root
        The parts root.

    Returns
    -------
    dict
        ``(input, participant_id) -> entry`` for the file entries.
    """
    folder = Path(out_root) / LEDGER_DIR
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    if not folder.is_dir():
        return latest
    for f in sorted(folder.glob("*.jsonl")):
        with f.open(encoding="utf-8", errors="replace") as fp:
            for line in fp:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("kind", "file") == "file":
                    key = (str(entry.get("input")), str(entry.get("participant_id")))
                    latest[key] = entry
    return latest


#: Parts whose presence means an input (or archive member) is done: its ``sources`` part
#: (written last) or the verdict of an input without a ``sources`` row. Data parts are not
#: checked: ``actidose compact`` removes them once merged.
DONE_MARKERS = ("parts/sources/", "parts/_inputs/")


def _entry_parts(entry: Mapping[str, Any]) -> list[str]:
    parts = [str(p) for p in entry.get("parts") or []]
    for m in entry.get("members") or []:
        if isinstance(m, Mapping):
            parts.extend(str(p) for p in m.get("parts") or [])
    return parts


def _is_done(entry: Mapping[str, Any], item: Input, out_root: Path) -> bool:
    """Whether a ledger entry lets ``item`` be skipped on resume: it finished with a verdict,
    the input is unchanged (size, modification time), and its done-markers exist."""
    parts = _entry_parts(entry)
    if entry.get("status") == "failed" and not parts:
        return False  # nothing of it in the results (a lost worker, an unreadable file): again
    try:
        st = item.path.stat()
    except OSError:
        return False
    if entry.get("size") != st.st_size or entry.get("mtime_ns") != st.st_mtime_ns:
        return False
    for p in parts:
        q = Path(p)
        try:
            rel = q.relative_to(out_root).as_posix() if q.is_absolute() else q.as_posix()
        except ValueError:  # a parts root that moved: the entry does not describe this one
            return False
        if rel.startswith(DONE_MARKERS) and not (out_root / rel).is_file():
            return False
    return True


# --------------------------------------------------------------------------- the unit of work
def _hold_for_test(path: Path) -> None:
    """Test-only (see :data:`HOLD_ENV`): hold a worker on one input, the first time only."""
    name = os.environ.get(HOLD_ENV)
    if not name or path.name != name:
        return
    flag = Path(os.environ.get(HOLD_ENV + "_DIR", ".")) / "held.pid"
    try:
        fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return  # held once already: the retry runs normally
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    time.sleep(float(os.environ.get(HOLD_ENV + "_S", "60")))


def worker_id() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname().split('.')[0]}:{os.getpid()}"


def _default_work() -> WorkFn:
    from .parts import process_file

    return process_file


def work(
    fn: WorkFn | None, path: Path, participant_id: str, out_root: Path, task: Any
) -> tuple[Any, str, float]:
    """Run the unit of work in a worker: ``(summary, worker, seconds)``. Top-level and
    picklable; ``fn=None`` is :func:`actidose.scale.parts.process_file` (imported here, in the
    worker)."""
    t0 = time.perf_counter()
    _hold_for_test(path)
    f = fn if fn is not None else _default_work()
    summary = f(path, participant_id, out_root, task=task)
    return summary, worker_id(), time.perf_counter() - t0


# --------------------------------------------------------------------------- summary
STATUSES = ("imported", "salvaged", "duplicate", "skipped", "quarantined", "failed")


@dataclass
class RunSummary:
    """What a :func:`run_files` call did: one ledger entry per input of the selection (those
    found done by an earlier run included)."""

    files: list[dict[str, Any]] = field(default_factory=list)
    resumed: int = 0  # inputs found done in the ledger, not submitted again
    processed: int = 0  # inputs run by this call
    renewals: int = 0  # process pools replaced after a worker died
    derived: list[dict[str, Any]] = field(default_factory=list)
    loaded: dict[str, Any] | None = None
    seconds: float = 0.0
    ledger: str | None = None

    def statuses(self) -> list[str]:
        """The status of every file and archive member (an archive counts by its members)."""
        out: list[str] = []

        def leaves(e: Mapping[str, Any]) -> None:
            members = [m for m in e.get("members") or [] if isinstance(m, Mapping)]
            for m in members:
                leaves(m)
            if not members:
                out.append(str(e.get("status")))

        for e in self.files:
            leaves(e)
        return out

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses() if s == status)

    @property
    def exit_code(self) -> int:
        if self.count("failed") or any(d.get("status") == "failed" for d in self.derived):
            return EXIT_FAILURE
        if self.count("quarantined"):
            return EXIT_QUARANTINED
        return EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": {s: self.count(s) for s in STATUSES},
            "inputs": len(self.files),
            "resumed": self.resumed,
            "processed": self.processed,
            "renewals": self.renewals,
            "samples": sum(int(e.get("n_samples") or 0) for e in self.files),
            "seconds": round(self.seconds, 3),
            "ledger": self.ledger,
            "derived": self.derived,
            "loaded": self.loaded,
            "files": self.files,
            "exit_code": self.exit_code,
        }


# --------------------------------------------------------------------------- the driver
@dataclass(eq=False)
class _Job:
    item: Input
    attempts: int = 0  # times submitted
    errors: int = 0  # the task raised
    crashes: int = 0  # its worker died while it ran alone
    suspect: bool = False  # in flight when a worker died: run alone from now on


def _summary_entry(item: Input, summary: Any, worker: str, seconds: float) -> dict[str, Any]:
    data = _jsonable(summary)
    if not isinstance(data, dict):
        data = {"summary": data}
    entry: dict[str, Any] = {
        "kind": "file",
        "input": str(item.path),
        "participant_id": item.participant_id,
        "sha256": data.get("sha256"),
        "status": data.get("status"),
        "reason": data.get("reason"),
        "n_samples": data.get("n_samples", 0),
        "parts": data.get("parts") or [],
        "members": data.get("members") or [],
        "seconds": round(seconds, 4),
        "worker": worker,
    }
    for k, v in data.items():
        entry.setdefault(k, v)
    entry["input"] = str(item.path)  # the driver's name for it (the key of resume)
    return entry


def _failed_entry(item: Input, reason: str) -> dict[str, Any]:
    return {
        "kind": "file",
        "input": str(item.path),
        "participant_id": item.participant_id,
        "sha256": None,
        "status": "failed",
        "reason": reason,
        "n_samples": 0,
        "parts": [],
        "members": [],
        "seconds": 0.0,
        "worker": None,
        "driver": True,
    }


def _stamp(entry: dict[str, Any], item: Input, attempts: int) -> dict[str, Any]:
    try:
        st = item.path.stat()
        entry["size"], entry["mtime_ns"] = st.st_size, st.st_mtime_ns
    except OSError:
        entry["size"], entry["mtime_ns"] = None, None
    entry["attempts"] = attempts
    entry["finished_at"] = _now_iso()
    return entry


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_files(
    inputs: Iterable[tuple[Path, str] | Input],
    out_root: str | os.PathLike[str],
    executor: Executor,
    *,
    task: Any,
    max_in_flight: int | None = None,
    retries: int = 3,
    progress: ProgressHook | None = None,
    fn: WorkFn | None = None,
) -> RunSummary:
    """Process every input through ``executor``, recording each result in this run's ledger.

    Parameters
    ----------
    inputs
        Files (or archives) with their participant, already expanded (see
        :func:`expand_inputs`). Inputs found done in ``out_root``'s ledger are not submitted.
    out_root
        The parts root (created if missing).
    executor
        Any :class:`concurrent.futures.Executor`; one with a ``renew()`` method (a
        :class:`~actidose.scale.executors.ProcessPool`) is renewed when a worker dies.
    task
        The :class:`~actidose.scale.parts.FileTask` given to every call (or a mapping
        ``participant_id -> FileTask``).
    max_in_flight
        Tasks submitted at a time (default: :data:`IN_FLIGHT_PER_WORKER` per worker).
    retries
        Times an input whose task raised, or whose worker died while it ran alone, is tried
        again before it is recorded as failed.
    progress
        Called with ``(done, total, input)`` as inputs finish (``total``: the inputs this call
        runs, those found done excluded).
    fn
        The unit of work (default :func:`actidose.scale.parts.process_file`): a top-level
        function ``fn(path, participant_id, out_root, task=...)`` returning a summary.

    Returns
    -------
    RunSummary
        One ledger entry per input, in input order.

    Raises
    ------
    ClusterError
        The cluster went away (tasks cancelled by it): what finished is in the ledger, and
        running the same command again resumes.
    """
    t0 = time.perf_counter()
    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    items = [x if isinstance(x, Input) else Input(Path(x[0]), x[1]) for x in inputs]
    if max_in_flight is not None and max_in_flight < 1:
        raise UsageError(f"--max-in-flight must be at least 1, not {max_in_flight}")
    if retries < 0:
        raise UsageError(f"--retries must be 0 or more, not {retries}")
    previous = read_ledgers(root)
    results: dict[tuple[str, str], dict[str, Any]] = {}
    todo: deque[_Job] = deque()
    for it in items:
        prior = previous.get(it.key)
        if prior is not None and _is_done(prior, it, root):
            results[it.key] = prior
        else:
            todo.append(_Job(it))
    summary = RunSummary(resumed=len(results))
    total = len(todo)  # progress counts what this call runs (resumed inputs are not timed)
    done_n = 0
    if progress is not None:
        progress(done_n, total, "")
    suspects: deque[_Job] = deque()
    inflight: dict[Future[tuple[Any, str, float]], _Job] = {}
    ledger = Ledger(root)
    summary.ledger = str(ledger.path)
    renew = getattr(executor, "renew", None)

    def submit(job: _Job) -> None:
        tk = task.get(job.item.participant_id) if isinstance(task, Mapping) else task
        fut = executor.submit(work, fn, job.item.path, job.item.participant_id, root, tk)
        job.attempts += 1
        inflight[fut] = job

    def finish(job: _Job, entry: dict[str, Any]) -> None:
        nonlocal done_n
        entry = _stamp(entry, job.item, job.attempts)
        results[job.item.key] = entry
        batch.append(entry)
        done_n += 1
        summary.processed += 1
        if progress is not None:
            progress(done_n, total, str(job.item.path))

    try:
        while todo or suspects or inflight:
            if suspects:  # after a worker died: the suspects run one at a time, alone
                if not inflight:
                    submit(suspects.popleft())
            else:
                limit = max_in_flight or IN_FLIGHT_PER_WORKER * executor_workers(executor)
                if getattr(executor, "runs_inline", False):
                    limit = 1
                while todo and len(inflight) < limit:
                    submit(todo.popleft())
            batch: list[dict[str, Any]] = []
            ready, _ = wait(list(inflight), timeout=SYNC_SECONDS, return_when=FIRST_COMPLETED)
            broken: list[_Job] = []
            lost = False
            for fut in ready:
                job = inflight.pop(fut)
                if fut.cancelled():
                    lost = True
                    todo.appendleft(job)
                    continue
                exc = fut.exception()
                if exc is None:
                    got, worker, seconds = fut.result()
                    finish(job, _summary_entry(job.item, got, worker, seconds))
                elif isinstance(exc, BrokenProcessPool) and renew is not None:
                    broken.append(job)
                elif isinstance(exc, CancelledError):
                    lost = True
                    todo.appendleft(job)
                elif type(exc).__name__ == "KilledWorker":  # Dask gave up on it
                    reason = f"its worker died each time it ran ({_one_line(exc)})"
                    finish(job, _failed_entry(job.item, reason))
                else:
                    job.errors += 1
                    if job.errors > retries:
                        finish(job, _failed_entry(job.item, f"task error: {_one_line(exc)}"))
                    else:
                        (suspects if job.suspect else todo).appendleft(job)
            if broken and renew is not None:
                # The pool is broken: every task in flight fails. Collect them, then renew.
                wait(list(inflight))
                for fut, job in list(inflight.items()):
                    del inflight[fut]
                    if not fut.cancelled() and fut.exception() is None:
                        got, worker, seconds = fut.result()
                        finish(job, _summary_entry(job.item, got, worker, seconds))
                    else:
                        broken.append(job)
                renew()
                summary.renewals += 1
                for job in broken:
                    if job.suspect and len(broken) == 1:  # it ran alone: it killed its worker
                        job.crashes += 1
                    if job.crashes > retries:
                        reason = f"its worker process died each time it ran ({job.crashes} times)"
                        finish(job, _failed_entry(job.item, reason))
                    else:
                        job.suspect = True
                        suspects.append(job)
            ledger.write(batch)
            if lost:
                raise ClusterError(
                    "the cluster cancelled tasks in flight (its scheduler or client went away); "
                    "what finished is in the ledger: run the same command again to resume"
                )
    finally:
        ledger.close()
        if ledger.lines == 0:
            ledger.path.unlink(missing_ok=True)
            summary.ledger = None
    summary.files = [results[it.key] for it in items if it.key in results]
    summary.seconds = time.perf_counter() - t0
    return summary


# --------------------------------------------------------------------------- derived tables
def _default_derive() -> Callable[..., Any]:
    from .derive import derive_participant

    return derive_participant


def derive_work(
    fn: Callable[..., Any] | None, participant_id: str, out_root: Path, params_id: str
) -> tuple[Any, str, float]:
    """Derive one participant's tables in a worker: ``(summary, worker, seconds)``."""
    t0 = time.perf_counter()
    f = fn if fn is not None else _default_derive()
    got = f(participant_id, out_root, params_id=params_id)
    return got, worker_id(), time.perf_counter() - t0


def derive_participants(
    participant_ids: Iterable[str],
    out_root: str | os.PathLike[str],
    executor: Executor,
    *,
    params_id: str,
    max_in_flight: int | None = None,
    retries: int = 3,
    fn: Callable[..., Any] | None = None,
    progress: ProgressHook | None = None,
) -> list[dict[str, Any]]:
    """The derived tables of each participant, through ``executor`` (one task each; what is
    already derived from the same sources and parameters is kept, by
    :func:`actidose.scale.derive.derive_participant`). A broken process pool is renewed and
    the participants in flight are submitted again.

    Parameters
    ----------
    participant_ids
        Whose derived tables to make.
    out_root
        The parts root.
    executor
        As for :func:`run_files`.
    params_id
        The dose parameter set (``DoseConfig.params_id``) of the run.
    max_in_flight
        Tasks submitted at a time (default: :data:`IN_FLIGHT_PER_WORKER` per worker).
    retries
        Times a participant whose task failed is tried again.
    fn
        Default :func:`actidose.scale.derive.derive_participant`.
    progress
        Called with ``(done, total, participant_id)``.

    Returns
    -------
    list of dict
        One entry per participant (``participant_id``, ``status`` ``"derived"`` or
        ``"failed"``, ``reason``, ``summary``, ``worker``, ``seconds``), in the given order.
    """
    root = Path(out_root)
    pids = list(dict.fromkeys(participant_ids))
    todo: deque[str] = deque(pids)
    tries: dict[str, int] = dict.fromkeys(pids, 0)
    out: dict[str, dict[str, Any]] = {}
    inflight: dict[Future[tuple[Any, str, float]], str] = {}
    renew = getattr(executor, "renew", None)
    ledger = Ledger(root) if pids else None
    try:
        while todo or inflight:
            limit = max_in_flight or IN_FLIGHT_PER_WORKER * executor_workers(executor)
            while todo and len(inflight) < limit:
                pid = todo.popleft()
                inflight[executor.submit(derive_work, fn, pid, root, params_id)] = pid
            ready, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            batch: list[dict[str, Any]] = []
            broken = False
            for fut in ready:
                pid = inflight.pop(fut)
                exc = None if fut.cancelled() else fut.exception()
                if fut.cancelled() or isinstance(exc, CancelledError):
                    raise ClusterError(
                        "the cluster cancelled tasks in flight; run the same command again"
                    )
                if exc is None:
                    got, worker, seconds = fut.result()
                    entry = {
                        "kind": "derive",
                        "participant_id": pid,
                        "status": "derived",
                        "reason": None,
                        "summary": _jsonable(got),
                        "worker": worker,
                        "seconds": round(seconds, 4),
                        "finished_at": _now_iso(),
                    }
                    out[pid] = entry
                    batch.append(entry)
                    if progress is not None:
                        progress(len(out), len(pids), pid)
                    continue
                if isinstance(exc, BrokenProcessPool) and renew is not None:
                    broken = True
                    todo.appendleft(pid)
                    continue
                tries[pid] += 1
                if tries[pid] > retries:
                    entry = {
                        "kind": "derive",
                        "participant_id": pid,
                        "status": "failed",
                        "reason": _one_line(exc) if exc else "cancelled",
                        "finished_at": _now_iso(),
                    }
                    out[pid] = entry
                    batch.append(entry)
                else:
                    todo.appendleft(pid)
            if broken and renew is not None:
                wait(list(inflight))
                for fut, pid in list(inflight.items()):
                    del inflight[fut]
                    todo.appendleft(pid)
                renew()
            if ledger is not None:
                ledger.write(batch)
    finally:
        if ledger is not None:
            ledger.close()
            if ledger.lines == 0:
                ledger.path.unlink(missing_ok=True)
    return [out[p] for p in pids if p in out]


# --------------------------------------------------------------------------- progress
@contextmanager
def terminal_progress(label: str, *, enabled: bool | None = None) -> Iterator[ProgressHook | None]:
    """A progress bar with rate and ETA on stderr (rich), only when stderr is a terminal.

    Parameters
    ----------
    label
        What is counted ("files", "participants").
    enabled
        Force on or off (default: whether stderr is a terminal).

    Yields
    ------
    callable or None
        A :data:`ProgressHook`, or None when there is no terminal.
    """
    if not (sys.stderr.isatty() if enabled is None else enabled):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    )
    tid = bar.add_task("", total=None)
    bar.start()

    def hook(done: int, total: int, name: str) -> None:
        bar.update(tid, completed=done, total=total, description=Path(name).name)

    try:
        yield hook
    finally:
        bar.stop()
