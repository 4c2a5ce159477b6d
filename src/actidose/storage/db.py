"""Opening the database: path resolution, the single-writer lock, migrations."""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ..errors import StorageError
from .schema import migrate

DEFAULT_DB = "actidose.duckdb"
ENV_DB = "ACTIDOSE_DB"


def resolve_db_path(db: str | os.PathLike[str] | None = None) -> Path:
    """``db`` if given, else ``$ACTIDOSE_DB`` if set, else ``./actidose.duckdb``."""
    if db is not None:
        return Path(db)
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    return Path(DEFAULT_DB)


_HOLDER = re.compile(r"Conflicting lock is held in (?P<prog>.+?) \(PID (?P<pid>\d+)\)")


def _is_lock_error(exc: Exception) -> bool:
    msg = str(exc)
    return "Could not set lock" in msg or "Conflicting lock" in msg


def _lock_message(path: Path, exc: Exception) -> str:
    m = _HOLDER.search(str(exc))
    holder = f"process {m['pid']} ({m['prog']})" if m else "another process"
    return (
        f"database {path} is in use by {holder}; DuckDB allows one process at a time. "
        "Wait for it to finish (or stop it) and try again"
    )


def connect(
    db: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    wait_s: float = 5.0,
) -> duckdb.DuckDBPyConnection:
    """Open (creating and migrating when writable) the actidose database.

    DuckDB lets one process hold a database file at a time. A second process waits up to
    ``wait_s`` seconds for the holder to finish, then fails with a :class:`StorageError` naming
    the holder's PID.
    """
    path = resolve_db_path(db)
    if read_only and not path.exists():
        raise StorageError(
            f"no database at {path}; import something first (actidose import ...) "
            "or point --db / ACTIDOSE_DB at one"
        )
    if not read_only and path.parent and not path.parent.exists():
        raise StorageError(f"folder {path.parent} for the database does not exist")
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise StorageError(f"cannot open database {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise StorageError(_lock_message(path, exc)) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        except duckdb.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc
    try:
        con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            migrate(con)
    except Exception:
        con.close()
        raise
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """``BEGIN`` ... ``COMMIT``, or ``ROLLBACK`` on any exception (then re-raised)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def fetch_arrow(result: duckdb.DuckDBPyConnection) -> Any:
    """The whole result of ``execute`` as a ``pyarrow.Table`` (DuckDB 1.x and 2.x name this
    differently)."""
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        fn = getattr(result, name, None)
        if fn is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "extra copy" notice of 2.x
                return fn()
    raise StorageError("this DuckDB version cannot return Arrow tables")
