"""Scaling an import out: one unit of work per file writing Parquet parts, and the dataset.

The per-file unit (:func:`process_file`) and the per-participant one
(:func:`derive_participant`) read and write only the parts folder, so any
``concurrent.futures.Executor`` can run them; :func:`load_parts` puts the results in the
study database, :func:`compact` merges the parts into participant-sorted files and
:func:`attach` makes the SQL contract's tables available over them. The modules import duckdb,
pyarrow and the pipeline inside their functions, so a worker that unpickles
:func:`process_file` imports only what it uses.
"""

from __future__ import annotations

from .compact import AttachSummary, CompactSummary, attach, compact
from .derive import DeriveSummary, derive_participant, participant_digests
from .load import LoadSummary, load_parts
from .parts import (
    Dataset,
    FileSummary,
    FileTask,
    ensure_run,
    participant_key,
    prepare_run,
    process_file,
    read_run,
    snapshot_study,
    stored_summary,
)
from .tables import SOURCE_TABLES, source_id_of

__all__ = [
    "SOURCE_TABLES",
    "AttachSummary",
    "CompactSummary",
    "Dataset",
    "DeriveSummary",
    "FileSummary",
    "FileTask",
    "LoadSummary",
    "attach",
    "compact",
    "derive_participant",
    "ensure_run",
    "load_parts",
    "participant_digests",
    "participant_key",
    "prepare_run",
    "process_file",
    "read_run",
    "snapshot_study",
    "source_id_of",
    "stored_summary",
]
