"""The one exception tree of actidose.

::

    ActidoseError
     ├── InputError        a file or value we were given is unusable (names file and position)
     │    ├── TimeAnchorError   samples that cannot be placed in UTC time
     │    └── NothingToImport   a known kind of file that holds nothing actidose stores
     ├── DeviceError       a Bluetooth / USB device misbehaved or is unreachable
     ├── StorageError      the database cannot be opened, is locked, or is too new
     └── UsageError        a command was called wrongly (unknown participant, bad option)

Third-party errors (fitdecode, duckdb, zipfile, lxml, bleak) are wrapped at the boundary where
they are raised, so callers only ever catch ``ActidoseError``.
"""

from __future__ import annotations


class ActidoseError(Exception):
    """Root of every error actidose raises on purpose."""


class InputError(ActidoseError):
    """Unusable input. ``reason`` is short and specific ("bad CRC at offset 1234");
    ``path`` and ``offset`` say where."""

    def __init__(self, reason: str, *, path: str | None = None, offset: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.offset = offset
        super().__init__(reason)

    def __str__(self) -> str:
        where = self.path or ""
        return f"{where}: {self.reason}" if where else self.reason


class TimeAnchorError(InputError):
    """Samples whose instants cannot be placed in UTC (e.g. only power-on-relative times)."""


class NothingToImport(InputError):
    """A file of a known kind that carries no data actidose stores (a Fitbit sleep log, a
    sedentary-minutes series). Import reports it as skipped, not quarantined."""


class DeviceError(ActidoseError):
    """A device could not be reached or sent something it should not have."""


class StorageError(ActidoseError):
    """The database cannot be used (locked by another process, newer schema, ...)."""


class UsageError(ActidoseError):
    """A command or API call was given arguments that cannot work; ``fix`` says what would."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.fix = fix
        super().__init__(message)
