"""One unit of work of a scaled-out import, and the parts folder it writes to.

A run has a *parts root* ``DIR``::

    DIR/_run.json                            run identity (see :func:`ensure_run`)
    DIR/_study/<table>.parquet               the study tables workers need (snapshot_study)
    DIR/parts/<table>/<sha[:2]>/<sha>.parquet        a source file's rows, one file per table
    DIR/parts/_claims/<sha[:2]>/<sha>.json           which input owns these bytes
    DIR/parts/_inputs/<sha[:2]>/<sha>.json           verdict of an input without a sources row
                                                     (an archive, a skipped file)
    DIR/parts/_participants/<pkey>/<sha>             index: the sources of a participant
    DIR/derived/...                          per participant (actidose.scale.derive)
    DIR/compact/...                          merged files (actidose.scale.compact)

:func:`process_file` is the unit: read one input (a file, or every member of an archive),
decode it and run the kernels (the ordinary pipeline's ``_parse``), and write each table's rows
(:mod:`actidose.scale.tables`) to ``parts/<table>/<sha[:2]>/<sha>.parquet``. Every file is
written to a temporary name in its folder and renamed, and the ``sources`` part is written last:
its presence means the file is done, and it carries the run's id and the file's summary in its
Parquet metadata. A retried or duplicated task therefore cannot corrupt or double anything:
readers only take a source whose ``sources`` part exists, and every part of a source has the
same bytes whoever wrote it.

The same bytes under two names (or for two participants) are one source, as in the ordinary
import: the first input to *claim* the sha256 (an exclusive create of its claim file) owns it,
the others are reported as duplicates. Across a parallel run "first" is the first to start, not
the first in input order.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from ..ingest.archive import Limits
    from ..pipeline import _Item, _Parsed
    from ..recording import ReadContext

RUN_FILE = "_run.json"
STUDY_DIR = "_study"
PARTS_DIR = "parts"
DERIVED_DIR = "derived"
COMPACT_DIR = "compact"
LEDGER_DIR = "_ledger"
MANIFEST = "_manifest.json"
LAYOUT = 1

#: Parquet metadata keys of a ``sources`` part.
META_RUN = b"actidose.run_id"
META_SUMMARY = b"actidose.summary"

STATUSES = ("imported", "salvaged", "quarantined", "failed", "skipped", "duplicate")
#: The status of an archive: the first of these among its members.
_WORST_FIRST = ("failed", "quarantined", "salvaged", "imported", "duplicate", "skipped")

PART_NAME = re.compile(r"^[0-9a-f]{64}\.parquet$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


# ------------------------------------------------------------------------------ paths
def participant_key(participant_id: str) -> str:
    """The folder name of a participant under ``derived/`` and ``parts/_participants/``: the
    first 16 hex digits of the sha256 of the id (ids may hold any character)."""
    return hashlib.sha256(participant_id.encode()).hexdigest()[:16]


def part_path(out_root: str | os.PathLike[str], table: str, sha256: str) -> Path:
    """``DIR/parts/<table>/<sha[:2]>/<sha>.parquet``."""
    return Path(out_root) / PARTS_DIR / table / sha256[:2] / f"{sha256}.parquet"


def _marker_path(root: Path, kind: str, sha256: str) -> Path:
    return root / PARTS_DIR / kind / sha256[:2] / f"{sha256}.json"


def _index_dir(root: Path, participant_id: str) -> Path:
    return root / PARTS_DIR / "_participants" / participant_key(participant_id)


def derived_path(
    out_root: str | os.PathLike[str], table: str, participant_id: str, digest: str
) -> Path:
    """``DIR/derived/<table>/<participant key>/<digest>.parquet``."""
    root = Path(out_root)
    return root / DERIVED_DIR / table / participant_key(participant_id) / f"{digest}.parquet"


def derived_marker_path(out_root: str | os.PathLike[str], participant_id: str) -> Path:
    """``DIR/derived/_done/<participant key>.json``: which digest of the participant is
    complete (written after its parts)."""
    return Path(out_root) / DERIVED_DIR / "_done" / f"{participant_key(participant_id)}.json"


def relative(out_root: Path, path: Path) -> str:
    """``path`` relative to the parts root, with forward slashes (as stored in JSON)."""
    return path.relative_to(out_root).as_posix()


# ------------------------------------------------------------------------------ atomic writes
def temp_name(path: Path) -> Path:
    """The temporary name a writer in this process and thread uses for ``path``: hidden, in the
    same folder (so the rename is atomic), and distinct per host, process and thread (two
    concurrent writers never share one; a leftover of a killed writer is overwritten by the next
    write from the same process and thread, and ignored by every reader)."""
    host = socket.gethostname().split(".")[0] or "host"
    return path.with_name(f".{path.name}.tmp-{host}-{os.getpid()}-{threading.get_ident()}")


def is_temp_name(name: str) -> bool:
    """Whether a file name is a temporary name of :func:`temp_name`."""
    return name.startswith(".") and ".tmp-" in name


def write_atomic(path: Path, write: Callable[[IO[bytes]], None] | bytes) -> None:
    """Write ``path`` whole or not at all: to :func:`temp_name`, flushed to disk, renamed.

    Parameters
    ----------
    path
        The final name (its folder is made when missing).
    write
        The bytes, or a function that writes them to the open file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with tmp.open("wb") as fp:
            if isinstance(write, bytes):
                fp.write(write)
            else:
                write(fp)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_parquet_atomic(
    path: Path, table: pa.Table, metadata: Mapping[bytes, bytes] | None = None
) -> None:
    """Write an Arrow table as Parquet (zstd) with :func:`write_atomic`; ``metadata`` goes into
    the file's key-value metadata."""
    import pyarrow.parquet as pq

    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    write_atomic(path, lambda fp: pq.write_table(table, fp, compression="zstd"))


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` unless it exists, atomically (a complete file or none).

    Returns
    -------
    bool
        True when this call created it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with tmp.open("wb") as fp:
            fp.write(data)
            fp.flush()
            os.fsync(fp.fileno())
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:  # a file system without hard links
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read_json(path: Path, attempts: int = 20) -> Any:
    """JSON of a file another process may just be creating (retry a short while)."""
    for i in range(attempts):
        try:
            return json.loads(path.read_text())
        except (ValueError, FileNotFoundError):
            if i == attempts - 1:
                raise
            time.sleep(0.01 * (i + 1))
    return None  # pragma: no cover


# ------------------------------------------------------------------------------ task, summary
@dataclass(frozen=True)
class FileTask:
    """Everything a worker needs to process files of a run, from the driver (picklable; no
    database handle).

    ``dose_config`` is the :class:`~actidose.config.DoseConfig` JSON of the database (the
    accelerometer settings are applied at import; ``params_id`` names the derived rows).
    ``options`` go to the importers (as ``import --option``). ``timezone`` places naive local
    times (None: each participant's zone, from the ``_study`` snapshot). ``limits``: archive
    limits (None: the defaults). ``run_start_us``: ``imported_at`` of every source of the run
    (UTC microseconds; fixed by ``_run.json``, so a retried task writes the same bytes).
    """

    run_start_us: int
    dose_config: str
    salvage: bool = False
    options: tuple[tuple[str, str], ...] = ()
    timezone: str | None = None
    limits: Limits | None = None
    version: str = ""

    @classmethod
    def create(
        cls,
        dose_config: str,
        *,
        salvage: bool = False,
        options: Mapping[str, str] | None = None,
        timezone: str | None = None,
        limits: Limits | None = None,
        run_start_us: int | None = None,
    ) -> FileTask:
        """A task for a new run (``run_start_us`` default: now).

        Parameters
        ----------
        dose_config
            ``DoseConfig.to_json()`` of the database (``actidose.storage.derive.load_config``).
        salvage, options, timezone, limits
            As ``import_paths`` takes them.
        run_start_us
            ``imported_at`` of the run's sources; :func:`ensure_run` replaces it with the one
            stored in ``_run.json`` when the run exists.
        """
        from .. import __version__

        start = run_start_us
        if start is None:
            start = int(datetime.now(UTC).timestamp() * 1_000_000)
        return cls(
            run_start_us=start,
            dose_config=_canonical_json(json.loads(dose_config)),
            salvage=salvage,
            options=tuple(sorted((str(k), str(v)) for k, v in (options or {}).items())),
            timezone=timezone,
            limits=limits,
            version=__version__,
        )

    @property
    def params_id(self) -> str:
        """``params_id`` of the dose configuration."""
        from ..config import DoseConfig

        return DoseConfig.from_json(self.dose_config).params_id

    def identity(self) -> dict[str, Any]:
        """The settings a run is made with; a rerun into the same folder must match them."""
        from ..ingest.archive import Limits

        return {
            "actidose_version": self.version,
            "params_id": self.params_id,
            "dose_config": json.loads(self.dose_config),
            "salvage": self.salvage,
            "options": dict(self.options),
            "timezone": self.timezone,
            "limits": asdict(self.limits or Limits()),
        }

    @property
    def run_id(self) -> str:
        """Short hash of :meth:`identity` (stored in every ``sources`` part)."""
        return hashlib.sha256(_canonical_json(self.identity()).encode()).hexdigest()[:16]

    def read_options(self) -> dict[str, str]:
        """Importer options as ``import_paths`` builds them: the accelerometer settings of the
        dose configuration, then ``options``."""
        cfg = json.loads(self.dose_config)
        dflt: dict[str, str] = {}
        if "accel_epoch_s" in cfg:
            dflt["accel_epoch_s"] = str(float(cfg["accel_epoch_s"]))
        if "nonwear_rule" in cfg:
            dflt["nonwear_rule"] = str(cfg["nonwear_rule"])
        if "autocalibrate" in cfg:
            dflt["autocalibrate"] = str(bool(cfg["autocalibrate"]))
        return {**dflt, **dict(self.options)}


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class FileSummary:
    """What :func:`process_file` did with one input.

    ``status``: imported | salvaged | quarantined | failed | skipped | duplicate (an archive:
    the first of failed, quarantined, salvaged, imported, duplicate, skipped among its
    ``members``, which hold one summary each). ``sha256``: of the file (of the archive for an
    archive). ``parts``: files written, relative to the parts root. ``seconds``: wall time of
    this call (0 in stored summaries).
    """

    input: str
    participant_id: str
    status: str
    sha256: str | None = None
    reason: str | None = None
    format: str | None = None
    source_id: int | None = None
    n_samples: int = 0
    members: tuple[FileSummary, ...] = ()
    parts: tuple[str, ...] = ()
    seconds: float = 0.0

    def leaves(self) -> list[FileSummary]:
        """The per-source outcomes: the members of an archive, else this summary."""
        if not self.members:
            return [self]
        return [leaf for m in self.members for leaf in m.leaves()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (members nested)."""
        d = asdict(self)
        d["members"] = [m.to_dict() for m in self.members]
        d["parts"] = list(self.parts)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FileSummary:
        """The inverse of :meth:`to_dict`."""
        return cls(
            input=str(d["input"]),
            participant_id=str(d["participant_id"]),
            status=str(d["status"]),
            sha256=d.get("sha256"),
            reason=d.get("reason"),
            format=d.get("format"),
            source_id=d.get("source_id"),
            n_samples=int(d.get("n_samples") or 0),
            members=tuple(cls.from_dict(m) for m in d.get("members") or ()),
            parts=tuple(d.get("parts") or ()),
            seconds=float(d.get("seconds") or 0.0),
        )


# ------------------------------------------------------------------------------ run identity
def ensure_run(out_root: str | os.PathLike[str], task: FileTask) -> FileTask:
    """Create ``DIR/_run.json`` for ``task``, or check that the existing one matches it.

    Parameters
    ----------
    out_root
        The parts root (made when missing).
    task
        The settings of this run.

    Returns
    -------
    FileTask
        ``task`` with ``run_start_us`` of the stored run (so every attempt of the run writes the
        same ``imported_at``).

    Raises
    ------
    UsageError
        The folder holds a run made with other settings; the message names each one.
    """
    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / RUN_FILE
    if not path.exists():
        doc = {
            "layout": LAYOUT,
            "run_id": task.run_id,
            "created_us": task.run_start_us,
            "identity": task.identity(),
        }
        create_exclusive(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    stored = _read_json(path)
    _check_identity(path, stored.get("identity") or {}, task.identity())
    return replace(task, run_start_us=int(stored["created_us"]))


def _differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b or key == "params_id":
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(_differences(a, b, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key} (run: {a!r}, now: {b!r})")
    return out


def _check_identity(path: Path, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    diff = _differences(old, new)
    if diff:
        raise UsageError(
            f"{path.parent} holds a run made with other settings: {'; '.join(diff)}",
            fix="run with the same settings to finish it, or give another parts folder",
        )


_RUN_CACHE: dict[tuple[str, int, int], FileTask] = {}
_CACHE_LOCK = threading.Lock()


def read_run(out_root: str | os.PathLike[str]) -> FileTask:
    """The :class:`FileTask` of the run in ``DIR`` (from ``_run.json``; cached per process).

    Raises
    ------
    UsageError
        No run there.
    """
    from ..ingest.archive import Limits

    path = Path(out_root) / RUN_FILE
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UsageError(
            f"no run in {Path(out_root)}: {RUN_FILE} is missing",
            fix="start the run with actidose import ... --parts DIR",
        ) from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    with _CACHE_LOCK:
        got = _RUN_CACHE.get(key)
    if got is not None:
        return got
    doc = _read_json(path)
    ident = doc["identity"]
    task = FileTask(
        run_start_us=int(doc["created_us"]),
        dose_config=_canonical_json(ident["dose_config"]),
        salvage=bool(ident["salvage"]),
        options=tuple(sorted((str(k), str(v)) for k, v in ident["options"].items())),
        timezone=ident.get("timezone"),
        limits=Limits(**ident["limits"]),
        version=str(ident["actidose_version"]),
    )
    with _CACHE_LOCK:
        _RUN_CACHE[key] = task
    return task


def prepare_run(
    con: duckdb.DuckDBPyConnection,
    out_root: str | os.PathLike[str],
    *,
    salvage: bool = False,
    options: Mapping[str, str] | None = None,
    timezone: str | None = None,
    limits: Limits | None = None,
) -> FileTask:
    """What a driver does before submitting files: the run identity from the database's dose
    configuration and the given settings (created or checked, :func:`ensure_run`), then the
    ``_study`` snapshot (:func:`snapshot_study`). Reads the database only (a read-only
    connection will do).

    Returns
    -------
    FileTask
        The task to give :func:`process_file`.
    """
    from ..storage.derive import load_config

    task = FileTask.create(
        load_config(con).to_json(),
        salvage=salvage,
        options=options,
        timezone=timezone,
        limits=limits,
    )
    task = ensure_run(out_root, task)
    snapshot_study(con, out_root)
    return task


def snapshot_study(con: duckdb.DuckDBPyConnection, out_root: str | os.PathLike[str]) -> list[Path]:
    """Write the study tables workers need to ``DIR/_study/<table>.parquet`` (participants,
    hr_anchors, instruments, symptoms, symptom_files, prescriptions, and ``meta`` with the
    dose configuration), each atomically, so workers never open the database.

    Returns
    -------
    list of Path
        The files written.
    """
    from ..storage.db import fetch_arrow
    from .tables import STUDY_TABLES

    out = Path(out_root) / STUDY_DIR
    written = []
    for name in STUDY_TABLES:
        table = fetch_arrow(con.execute(f"SELECT * FROM {name} ORDER BY ALL"))
        target = out / f"{name}.parquet"
        write_parquet_atomic(target, table)
        written.append(target)
    meta = fetch_arrow(
        con.execute(
            "SELECT key, value FROM meta WHERE key IN ('dose_config', 'schema_version') "
            "ORDER BY key"
        )
    )
    write_parquet_atomic(out / "meta.parquet", meta)
    written.append(out / "meta.parquet")
    return written


_ZONES: dict[tuple[str, int, int], dict[str, str]] = {}


def participant_zone(out_root: str | os.PathLike[str], participant_id: str) -> str:
    """The participant's IANA zone from the ``_study`` snapshot (cached per process).

    Raises
    ------
    UsageError
        No snapshot, or the participant is not in it.
    """
    import pyarrow.parquet as pq

    path = Path(out_root) / STUDY_DIR / "participants.parquet"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UsageError(
            f"no study snapshot at {path}",
            fix="start the run with actidose import ... --parts DIR (it writes _study/)",
        ) from None
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _CACHE_LOCK:
        zones = _ZONES.get(key)
    if zones is None:
        t = pq.read_table(path, columns=["participant_id", "timezone"])
        zones = dict(
            zip(
                t.column("participant_id").to_pylist(),
                t.column("timezone").to_pylist(),
                strict=True,
            )
        )
        with _CACHE_LOCK:
            _ZONES[key] = zones
    tz = zones.get(participant_id)
    if tz is None:
        raise UsageError(
            f"unknown participant {participant_id!r} (not in the run's roster snapshot {path})",
            fix="add the participant (actidose participant add) and start the run again",
        )
    return str(tz)


# ------------------------------------------------------------------------------ the unit
def process_file(
    path: str | os.PathLike[str],
    participant_id: str,
    out_root: str | os.PathLike[str],
    *,
    task: FileTask | None = None,
) -> FileSummary:
    """Import one input file into the parts folder: decode, kernels, one Parquet part per table.

    Never opens the study database. Safe to run twice, concurrently, or after a killed attempt:
    an input whose ``sources`` part (or verdict) exists for this run is returned as stored,
    without parsing it (its bytes are hashed to find it).

    Parameters
    ----------
    path
        A file, or an archive (every member is a source, as in the ordinary import).
    participant_id
        Whose file it is (must be in the ``_study`` snapshot unless ``task.timezone`` is set).
    out_root
        The parts root (``_run.json`` made by :func:`ensure_run` / :func:`prepare_run`).
    task
        The run's settings; default: read from ``DIR/_run.json``.

    Returns
    -------
    FileSummary
        The outcome; an archive's holds one member summary per member.
    """
    t0 = time.perf_counter()
    root = Path(out_root).resolve()
    task = task or read_run(root)
    src = Path(path)
    shown = str(src.resolve())

    from ..ingest.registry import detect_format
    from ..pipeline import _fingerprint, _Item

    try:
        sha, size, head = _fingerprint(src)
    except OSError as exc:
        reason = f"cannot read: {exc.strerror or exc}"
        return FileSummary(shown, participant_id, "failed", reason=reason, seconds=_since(t0))
    w = _Writer(root, task, participant_id)
    done = w.existing(shown, sha)
    if done is not None:
        return replace(done, seconds=_since(t0))
    from ..ingest.archive import archive_kind
    from ..recording import ReadContext

    zone = task.timezone or participant_zone(root, participant_id)
    ctx = ReadContext(zone, task.read_options())
    if archive_kind(head) is None or detect_format(head) is not None:
        summary = w.item(_Item(shown, src, sha, size), ctx)
    else:
        summary = w.archive(src, shown, sha, ctx)
    return replace(summary, seconds=_since(t0))


def _since(t0: float) -> float:
    return round(time.perf_counter() - t0, 6)


def stored_summary(
    out_root: str | os.PathLike[str], sha256: str, run_id: str | None = None
) -> FileSummary | None:
    """The stored outcome of the source or input with these bytes, if any: from its ``sources``
    part's metadata, else from its verdict file (archives, skipped files). With ``run_id``, only
    one stored by that run."""
    import pyarrow.parquet as pq

    root = Path(out_root)
    part = part_path(root, "sources", sha256)
    doc: dict[str, Any] | None = None
    try:
        meta = pq.read_schema(part).metadata or {}
        doc = {
            "run_id": meta.get(META_RUN, b"").decode(),
            "summary": json.loads(meta[META_SUMMARY]),
        }
    except FileNotFoundError:
        marker = _marker_path(root, "_inputs", sha256)
        if marker.exists():
            doc = _read_json(marker)
    if doc is None or (run_id is not None and doc.get("run_id") != run_id):
        return None
    return FileSummary.from_dict(doc["summary"])


def _as_duplicate(stored: FileSummary, shown: str, participant_id: str) -> FileSummary:
    """The outcome of other input with the bytes of ``stored``, as the ordinary import reports
    the second copy within one run."""
    if stored.members:
        members = tuple(
            _as_duplicate(m, shown + m.input[len(stored.input) :], participant_id)
            if m.input.startswith(stored.input)
            else _as_duplicate(m, m.input, participant_id)
            for m in stored.members
        )
        return FileSummary(
            shown,
            participant_id,
            _worst([m.status for m in members]),
            stored.sha256,
            "same bytes as " + stored.input,
            members=members,
        )
    if stored.status in ("imported", "salvaged"):
        reason = "same bytes already imported"
        if stored.participant_id != participant_id:
            reason += f" for participant {stored.participant_id}"
        return FileSummary(
            shown, participant_id, "duplicate", stored.sha256, reason, source_id=stored.source_id
        )
    if stored.status == "duplicate":
        return FileSummary(
            shown,
            participant_id,
            "duplicate",
            stored.sha256,
            stored.reason,
            source_id=stored.source_id,
        )
    # quarantined, failed, skipped: the same bytes get the same verdict (no row of their own)
    return FileSummary(
        shown,
        participant_id,
        stored.status,
        stored.sha256,
        stored.reason,
        stored.format,
        stored.source_id,
    )


def _worst(statuses: Sequence[str]) -> str:
    for s in _WORST_FIRST:
        if s in statuses:
            return s
    return "skipped"


class _Writer:
    """The parts of one :func:`process_file` call."""

    def __init__(self, root: Path, task: FileTask, participant_id: str) -> None:
        self.root = root
        self.task = task
        self.pid = participant_id
        self.run_id = task.run_id

    def existing(self, shown: str, sha: str) -> FileSummary | None:
        """The stored outcome for this input (a rerun), or a duplicate of another input's."""
        stored = stored_summary(self.root, sha, self.run_id)
        if stored is None:
            return None
        if stored.input == shown and stored.participant_id == self.pid:
            return stored
        return _as_duplicate(stored, shown, self.pid)

    def claim(self, sha: str, shown: str) -> str | None:
        """Own these bytes for this input; returns the input that owns them when another
        does."""
        path = _marker_path(self.root, "_claims", sha)
        mine = {"input": shown, "participant_id": self.pid}
        if not path.exists():
            create_exclusive(path, (_canonical_json(mine) + "\n").encode())
        held = _read_json(path)
        if held == mine:
            return None
        who = str(held.get("input"))
        if held.get("participant_id") != self.pid:
            who += f" (participant {held.get('participant_id')})"
        return who

    def mark(self, sha: str, summary: FileSummary) -> Path:
        """The verdict of an input without a ``sources`` row of its own."""
        stored = replace(summary, seconds=0.0)
        doc = {"run_id": self.run_id, "summary": stored.to_dict()}
        path = _marker_path(self.root, "_inputs", sha)
        write_atomic(path, (json.dumps(doc, sort_keys=True) + "\n").encode())
        return path

    def item(self, item: _Item, ctx: ReadContext, refused: str | None = None) -> FileSummary:
        """One file or archive member: claimed, parsed, written."""
        from ..pipeline import _parse, _Parsed

        done = self.existing(item.display, item.sha256)
        if done is not None:
            return done
        holder = self.claim(item.sha256, item.display)
        if holder is not None:
            done = self.existing(item.display, item.sha256)  # finished in the meantime?
            if done is not None:
                return done
            return FileSummary(
                item.display,
                self.pid,
                "duplicate",
                item.sha256,
                f"same bytes as {holder} (not finished yet)",
            )
        if refused is not None:
            parsed = _Parsed(item, None, reason=refused, status="quarantined")
        else:
            parsed = _parse(item, self.task.salvage, ctx)
        return self.write(parsed)

    def write(self, p: _Parsed) -> FileSummary:
        """The parts of one parsed item; the ``sources`` part last."""
        from ..pipeline import _source_file
        from .tables import DATA_TABLES, source_id_of, source_tables

        it = p.item
        if p.status == "skipped":
            summary = FileSummary(it.display, self.pid, "skipped", it.sha256, p.reason, p.fmt)
            path = self.mark(it.sha256, summary)
            return replace(summary, parts=(relative(self.root, path),))
        sid = source_id_of(it.sha256)
        f = _source_file(p)
        if p.status != "ok" or p.rec is None or p.hr is None:
            status = "failed" if p.status == "failed" else "quarantined"
            summary = FileSummary(it.display, self.pid, status, it.sha256, p.reason, p.fmt, sid)
        else:
            rec, hr = p.rec, p.hr
            summary = FileSummary(
                it.display,
                self.pid,
                "salvaged" if rec.salvaged else "imported",
                it.sha256,
                rec.salvage_reason if rec.salvaged else None,
                p.fmt,
                sid,
                int(hr.ts_us.size),
            )
        tables = source_tables(self.pid, f, source_id=sid, imported_at_us=self.task.run_start_us)
        written: list[str] = []
        for name in DATA_TABLES:
            target = part_path(self.root, name, it.sha256)
            if name in tables:
                write_parquet_atomic(target, tables[name])
                written.append(relative(self.root, target))
            else:  # left by an attempt with other settings: not part of this source
                target.unlink(missing_ok=True)
        index = _index_dir(self.root, self.pid)
        index.mkdir(parents=True, exist_ok=True)
        (index / it.sha256).touch()
        last = part_path(self.root, "sources", it.sha256)
        written.append(relative(self.root, last))
        summary = replace(summary, parts=tuple(written))
        write_parquet_atomic(
            last,
            tables["sources"],
            {
                META_RUN: self.run_id.encode(),
                META_SUMMARY: _canonical_json(summary.to_dict()).encode(),
            },
        )
        return summary

    def archive(self, src: Path, shown: str, sha: str, ctx: ReadContext) -> FileSummary:
        """Every member of an archive (one level of nesting, as the ordinary import)."""
        from ..ingest.archive import Limits
        from ..pipeline import FileOutcome, _items

        holder = self.claim(sha, shown)
        if holder is not None:
            done = self.existing(shown, sha)
            if done is not None:
                return done
            return FileSummary(
                shown, self.pid, "duplicate", sha, f"same bytes as {holder} (not finished yet)"
            )
        spool = Path(tempfile.mkdtemp(prefix="actidose-"))
        members: list[FileSummary] = []
        counter: Iterator[int] = iter(range(1 << 62))
        try:
            for got in _items(src, spool, self.task.limits or Limits(), counter):
                if isinstance(got, FileOutcome):
                    members.append(FileSummary(got.path, self.pid, got.status, reason=got.reason))
                elif isinstance(got, tuple):
                    item, refused = got
                    if item.sha256 == sha and item.display == shown:
                        # the archive itself is refused: quarantined under its own bytes
                        return self.write(_refused(item, refused))
                    members.append(self.item(item, ctx, refused))
                else:
                    members.append(self.item(got, ctx))
                    if got.read_path.parent == spool:
                        got.read_path.unlink(missing_ok=True)
        finally:
            shutil.rmtree(spool, ignore_errors=True)
        counts: dict[str, int] = {}
        for m in members:
            counts[m.status] = counts.get(m.status, 0) + 1
        summary = FileSummary(
            shown,
            self.pid,
            _worst([m.status for m in members]),
            sha,
            ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no members",
            "archive",
            n_samples=sum(m.n_samples for m in members),
            members=tuple(members),
        )
        path = self.mark(sha, summary)
        parts = (*(p for m in members for p in m.parts), relative(self.root, path))
        return replace(summary, parts=parts)


def _refused(item: _Item, reason: str) -> _Parsed:
    from ..pipeline import _Parsed

    return _Parsed(item, None, reason=reason, status="quarantined")


# ------------------------------------------------------------------------------ the dataset
def _list_parts(folder: Path) -> dict[str, Path]:
    """``sha -> part`` of one table's parts folder (temporary names never match)."""
    out: dict[str, Path] = {}
    try:
        subs = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return out
    for sub in subs:
        if not sub.is_dir():
            continue
        for entry in os.scandir(sub.path):
            if PART_NAME.match(entry.name):
                out[entry.name[:64]] = Path(entry.path)
    return dict(sorted(out.items()))


@dataclass
class Dataset:
    """What a parts root holds, as readers see it: the compacted files of the manifest plus the
    parts not yet compacted. A source counts once its ``sources`` part exists (it is written
    last); a participant's derived rows count once its ``derived/_done`` marker exists.
    """

    root: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)  # every sources part on disk
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)  # pid -> marker
    _parts: dict[str, dict[str, Path]] = field(default_factory=dict)

    @classmethod
    def open(cls, out_root: str | os.PathLike[str]) -> Dataset:
        """Read the manifest, list the ``sources`` parts and the derived markers."""
        root = Path(out_root).resolve()
        manifest_path = root / COMPACT_DIR / MANIFEST
        manifest: dict[str, Any] = _read_json(manifest_path) if manifest_path.exists() else {}
        ds = cls(root, manifest, _list_parts(root / PARTS_DIR / "sources"))
        done = root / DERIVED_DIR / "_done"
        if done.is_dir():
            for entry in sorted(os.scandir(done), key=lambda e: e.name):
                if entry.name.endswith(".json") and not is_temp_name(entry.name):
                    marker = _read_json(Path(entry.path))
                    ds.derived[str(marker["participant_id"])] = marker
        return ds

    @property
    def compacted_sources(self) -> frozenset[str]:
        """sha256 of the sources in the compacted files."""
        return frozenset(self.manifest.get("sources") or ())

    @property
    def compacted_derived(self) -> dict[str, str]:
        """``participant -> digest`` of the derived rows in the compacted files."""
        return dict(self.manifest.get("derived") or {})

    def compacted_files(self, table: str) -> list[Path]:
        """The table's compacted files (absolute)."""
        entries = (self.manifest.get("tables") or {}).get(table) or []
        return [self.root / str(e["file"]) for e in entries]

    def new_sources(self) -> dict[str, Path]:
        """``sha -> sources part`` of the sources not in the compacted files."""
        done = self.compacted_sources
        return {s: p for s, p in self.sources.items() if s not in done}

    def parts(self, table: str, shas: Sequence[str] | None = None) -> list[Path]:
        """Uncompacted parts of a source-level table whose source is done (of ``shas`` when
        given)."""
        done = self.compacted_sources
        if table == "sources":
            pool = self.sources
            keys = list(pool) if shas is None else [s for s in shas if s in pool]
            return [pool[s] for s in keys if s not in done]
        if shas is not None:
            out = []
            for s in shas:
                if s in self.sources and s not in done:
                    p = part_path(self.root, table, s)
                    if p.exists():
                        out.append(p)
            return out
        listed = self._parts.get(table)
        if listed is None:
            listed = _list_parts(self.root / PARTS_DIR / table)
            self._parts[table] = listed
        return [p for s, p in listed.items() if s in self.sources and s not in done]

    def all_parts(self, table: str) -> dict[str, Path]:
        """Every part of a table on disk (compacted or not), ``sha -> path``."""
        if table == "sources":
            return dict(self.sources)
        listed = self._parts.get(table)
        if listed is None:
            listed = _list_parts(self.root / PARTS_DIR / table)
            self._parts[table] = listed
        return dict(listed)

    def participant_sources(self, participant_id: str) -> list[str]:
        """sha256 of the sources in the participant's index whose ``sources`` part exists."""
        folder = _index_dir(self.root, participant_id)
        try:
            names = [e.name for e in os.scandir(folder)]
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _SHA.match(n) and n in self.sources)

    def derived_parts(self, table: str, participant_ids: Sequence[str] | None = None) -> list[Path]:
        """Derived parts of the current digest of each participant (``participant_ids``, or
        all) not in the compacted files."""
        compacted = self.compacted_derived
        pids = list(self.derived) if participant_ids is None else participant_ids
        out = []
        for pid in pids:
            marker = self.derived.get(pid)
            if marker is None or compacted.get(pid) == marker["digest"]:
                continue
            if table in (marker.get("tables") or {}):
                out.append(derived_path(self.root, table, pid, str(marker["digest"])))
        return out

    def stale_compacted(self) -> list[str]:
        """Participants whose compacted derived rows are not their current ones."""
        return sorted(
            pid
            for pid, digest in self.compacted_derived.items()
            if (self.derived.get(pid) or {}).get("digest") != digest
        )
