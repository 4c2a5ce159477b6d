"""actidose: aerobic exercise dose from wearables and accelerometers, in DuckDB.

``actidose.open(db)`` returns a :class:`~actidose.api.Study` whose tables come back as polars
DataFrames. The dose kernels live in :mod:`actidose.dose` and import no I/O library, so this
module imports duckdb and polars only when ``open`` is called.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import Study

try:
    __version__ = version("actidose")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"


def open(db: str | os.PathLike[str] | None = None, *, read_only: bool = True) -> Study:
    """Open an actidose database; see :class:`actidose.api.Study`."""
    from .api import open_study

    return open_study(db, read_only=read_only)


__all__ = ["__version__", "open"]
