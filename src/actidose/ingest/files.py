"""Finding the files of a batch and fingerprinting them."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import UsageError

_SKIP_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


def expand(paths: list[Path]) -> Iterator[Path]:
    """Each file given, and every file under each directory given (recursively, sorted, hidden
    files and folders skipped). A path that does not exist is a usage error before any work."""
    for p in paths:
        if not p.exists():
            raise UsageError(f"no such file or directory: {p}")
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith(".") or name in _SKIP_NAMES:
                        continue
                    yield Path(root) / name
        else:
            yield p


def sha256_file(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fp:
        while block := fp.read(chunk):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size
