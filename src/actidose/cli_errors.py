"""How every command reports a failure: one line, ``Error: ...``, the fix where known, and the
exit status (2 usage, 1 anything else). Shared by :mod:`actidose.cli` and
:mod:`actidose.sync_cli`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
import duckdb

from .errors import ActidoseError, UsageError
from .pipeline import EXIT_FAILURE, EXIT_USAGE


def fail(message: str, code: int, fix: str | None = None) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    if fix:
        click.echo(f"  fix: {fix}", err=True)
    sys.exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn our own errors (and DuckDB's) into one line and an exit status, never a traceback."""
    try:
        yield
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE, exc.fix)
    except ActidoseError as exc:
        fail(str(exc), EXIT_FAILURE)
    except duckdb.Error as exc:
        fail(f"database: {str(exc).strip()}", EXIT_FAILURE)
