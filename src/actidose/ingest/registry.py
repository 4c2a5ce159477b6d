"""Which importer reads a file: decided from its first bytes, never from its name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from ..recording import ReadContext, Recording
from . import fit

HEAD_BYTES = 4096


@dataclass(frozen=True)
class Importer:
    name: str
    detect: Callable[[bytes], bool]
    #: read(fp, *, path: str, salvage: bool, ctx: ReadContext) -> Recording
    read: Callable[..., Recording]


def _read_fit(fp: BinaryIO, *, path: str, salvage: bool, ctx: ReadContext) -> Recording:
    return fit.read(fp, path=path, salvage=salvage)


IMPORTERS: tuple[Importer, ...] = (Importer("fit", fit.detect, _read_fit),)


def detect_format(head: bytes) -> Importer | None:
    for importer in IMPORTERS:
        if importer.detect(head):
            return importer
    return None


def read_recording(
    fp: BinaryIO, *, path: str, salvage: bool = False, ctx: ReadContext | None = None
) -> tuple[str, Recording]:
    """Detect the format from the head of ``fp`` and read it. Raises InputError."""
    from ..errors import InputError

    head = fp.read(HEAD_BYTES)
    if not head:
        raise InputError("empty file", path=path, offset=0)
    importer = detect_format(head)
    if importer is None:
        raise InputError(
            "not a recognised format (known: " + ", ".join(i.name for i in IMPORTERS) + ")",
            path=path,
            offset=0,
        )
    fp.seek(0)
    return importer.name, importer.read(fp, path=path, salvage=salvage, ctx=ctx or ReadContext())
