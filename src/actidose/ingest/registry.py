"""Which importer reads a file: decided from its first bytes, never from its name.

Each importer module has ``detect(head: bytes) -> bool`` and
``read(fp, *, path, salvage, ctx) -> Recording``. They are tried in the order of
:data:`FORMATS` (binary and unambiguous XML roots first, then JSON and CSV layouts). The generic
CSV importer never claims a file by itself: the user picks it (``--format csv --columns ...``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import BinaryIO

from ..errors import InputError, UsageError
from ..recording import ReadContext, Recording
from . import xmlsafe

HEAD_BYTES = 4096

#: format name -> module in actidose.ingest, in detection order
FORMATS: dict[str, str] = {
    "fit": "fit",
    "cwa": "cwa",
    "gt3x": "gt3x",
    "geneactiv": "geneactiv",
    "actigraph_csv": "actigraph_csv",
    "apple_health": "apple_health",
    "tcx": "tcx",
    "gpx": "gpx",
    "fitbit": "fitbit",
    "polar_flow": "polar",
    "accel_csv": "accel_csv",
    "csv": "csv_hr",
}


@dataclass(frozen=True)
class Importer:
    name: str
    detect: Callable[[bytes], bool]
    #: read(fp, *, path: str, salvage: bool, ctx: ReadContext) -> Recording
    read: Callable[..., Recording]


def _fit_read(fp: BinaryIO, *, path: str, salvage: bool, ctx: ReadContext) -> Recording:
    from . import fit

    return fit.read(fp, path=path, salvage=salvage)


@cache
def importers() -> tuple[Importer, ...]:
    found = []
    for name, module in FORMATS.items():
        try:
            mod = importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{module}":
                continue  # format not available in this build
            raise
        read = _fit_read if name == "fit" else mod.read
        found.append(Importer(name, mod.detect, read))
    return tuple(found)


def importer_named(name: str) -> Importer:
    for imp in importers():
        if imp.name == name:
            return imp
    raise UsageError(
        f"unknown format {name!r}", fix="known: " + ", ".join(i.name for i in importers())
    )


def detect_format(head: bytes) -> Importer | None:
    for importer in importers():
        if importer.detect(head):
            return importer
    return None


def read_recording(
    fp: BinaryIO, *, path: str, salvage: bool = False, ctx: ReadContext | None = None
) -> tuple[str, Recording]:
    """Detect the format from the head of ``fp`` (or take ``ctx.options["format"]``) and read
    it. Raises InputError (``reason`` starting "not a recognised format" when nothing claims
    the file)."""
    ctx = ctx or ReadContext()
    head = fp.read(HEAD_BYTES)
    if not head:
        raise InputError("empty file", path=path, offset=0)
    if xmlsafe.skip_leading_space(head).startswith(b"<"):
        # Any XML: refuse entity declarations before anything else looks at it, so an attack
        # whose DTD hides the root element from detection still gets its specific reason.
        fp.seek(0)
        xmlsafe.check_prolog(fp, path, allow_doctype=True)
    forced = ctx.options.get("format")
    importer = importer_named(forced) if forced else detect_format(head)
    if importer is None:
        raise InputError(
            NOT_RECOGNISED + " (known: " + ", ".join(i.name for i in importers()) + ")",
            path=path,
            offset=0,
        )
    fp.seek(0)
    return importer.name, importer.read(fp, path=path, salvage=salvage, ctx=ctx)


NOT_RECOGNISED = "not a recognised format"
