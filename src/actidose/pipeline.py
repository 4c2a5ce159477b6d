"""The import pipeline: files -> Recording -> one DuckDB transaction per file -> derived tables.

Per file: sha256 of the bytes (the same bytes under any name are a duplicate), format detected
from content, read into a :class:`~actidose.recording.Recording`, the sample rules applied,
then the source row, samples and activities written in one transaction. A file that cannot be
read is recorded as quarantined with its specific reason and the batch goes on. Derived tables
are recomputed once, at the end, for the participants the batch touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from .errors import InputError
from .ingest.files import expand, sha256_file
from .ingest.registry import read_recording
from .ingest.samples import clean_hr
from .storage import participants
from .storage.db import transaction
from .storage.derive import recompute
from .storage.write import existing_source, store_quarantined, store_recording

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_QUARANTINED = 3


@dataclass
class FileOutcome:
    path: str
    status: str  # imported | salvaged | duplicate | quarantined | failed
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
            "counts": {
                s: self.count(s)
                for s in ("imported", "salvaged", "duplicate", "quarantined", "failed")
            },
            "samples": sum(f.n_samples for f in self.files),
            "files": [asdict(f) for f in self.files],
            "recomputed": self.recomputed,
            "exit_code": self.exit_code,
        }


def display_path(path: Path) -> str:
    return str(path.resolve())


def import_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    participant_id: str,
    *,
    salvage: bool = False,
) -> FileOutcome:
    """Import one file for ``participant_id`` (who must exist). Never raises for bad input."""
    shown = display_path(path)
    try:
        sha, size = sha256_file(path)
    except OSError as exc:
        return FileOutcome(shown, "failed", reason=f"cannot read: {exc.strerror or exc}")
    prior = existing_source(con, sha)
    replace_id = None
    if prior is not None:
        prior_id, prior_status, prior_pid = prior
        if prior_status != "quarantined" or prior_pid != participant_id:
            note = "same bytes already imported"
            if prior_status == "quarantined":
                note = "same bytes already quarantined"
            if prior_pid != participant_id:
                note += f" for participant {prior_pid}"
            return FileOutcome(shown, "duplicate", reason=note, source_id=prior_id)
        replace_id = prior_id  # a quarantined file is tried again (e.g. now with --salvage)
    fmt: str | None = None
    try:
        with path.open("rb") as fp:
            fmt, rec = read_recording(fp, path=shown, salvage=salvage)
        hr = clean_hr(rec.hr)
    except InputError as exc:
        reason = exc.reason
        with transaction(con):
            sid = store_quarantined(
                con,
                sha256=sha,
                path=shown,
                size=size,
                participant_id=participant_id,
                fmt=fmt,
                reason=reason,
                replace_id=replace_id,
            )
        return FileOutcome(shown, "quarantined", fmt, reason, sid)
    except OSError as exc:
        return FileOutcome(shown, "failed", fmt, f"cannot read: {exc.strerror or exc}")
    except Exception as exc:  # a reader bug must not stop the batch; it is reported as failed
        reason = f"internal error while reading: {type(exc).__name__}: {exc}"
        with transaction(con):
            sid = store_quarantined(
                con,
                sha256=sha,
                path=shown,
                size=size,
                participant_id=participant_id,
                fmt=fmt,
                reason=reason,
                replace_id=replace_id,
            )
        return FileOutcome(shown, "failed", fmt, reason, sid)
    with transaction(con):
        sid = store_recording(
            con,
            sha256=sha,
            path=shown,
            size=size,
            participant_id=participant_id,
            rec=rec,
            hr=hr,
            replace_id=replace_id,
        )
    return FileOutcome(
        shown,
        "salvaged" if rec.salvaged else "imported",
        fmt,
        rec.salvage_reason if rec.salvaged else None,
        sid,
        int(hr.ts_us.size),
        hr.n_invalid,
        hr.n_duplicate_ts,
        len(rec.activities),
    )


ProgressHook = Callable[[int, int, str], None]


def import_paths(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    participant_id: str,
    *,
    salvage: bool = False,
    progress: ProgressHook | None = None,
    recompute_after: bool = True,
) -> ImportSummary:
    """Import files and directories (recursively) for one participant."""
    participants.require(con, participant_id)
    files = list(expand(paths))
    summary = ImportSummary(participant_id)
    for i, path in enumerate(files):
        if progress is not None:
            progress(i, len(files), os.fspath(path))
        summary.files.append(import_file(con, path, participant_id, salvage=salvage))
    if progress is not None:
        progress(len(files), len(files), "")
    if recompute_after:
        summary.recomputed = recompute(con)
    return summary
