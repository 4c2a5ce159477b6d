"""Safe XML for every XML importer (TCX, GPX, Apple Health).

Defences, in this order:

1. :func:`check_prolog` reads the bytes before the root element and refuses any document that
   declares entities (``<!ENTITY``): billion laughs, quadratic blowup and external entities all
   need one, and no real TCX, GPX or Apple Health export has one. Formats that never carry a
   DOCTYPE (TCX, GPX) refuse any DOCTYPE at all.
2. lxml parsers are made with ``resolve_entities=False``, ``no_network=True``,
   ``load_dtd=False``, so nothing is expanded or fetched even if step 1 were bypassed.
   ``huge_tree=True`` lifts libxml2's depth/size limits that real multi-GB Apple exports hit.

Both raise :class:`~actidose.errors.InputError` with the reason and the byte offset.
"""

from __future__ import annotations

import re
from typing import IO, Any

from lxml import etree

from ..errors import InputError

PROLOG_LIMIT = 1 << 20  # Apple's DTD is ~10 kB; a prolog longer than 1 MiB is not a real export

_ROOT = re.compile(rb"<(?![?!])")  # first tag that is not a declaration, PI or comment
_COMMENT = re.compile(rb"<!--.*?-->", re.S)
_ENTITY = re.compile(rb"<!ENTITY", re.I)
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.I)


def skip_leading_space(head: bytes) -> bytes:
    """``head`` without a UTF-8 BOM and leading whitespace (Strava writes spaces before
    ``<?xml``)."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head.lstrip(b" \t\r\n")


def root_name(head: bytes) -> bytes | None:
    """Local name of the root element if it is within ``head``, else None."""
    body = _COMMENT.sub(b"", skip_leading_space(head))
    if not body.startswith(b"<"):
        return None
    doctype = _DOCTYPE.search(body)
    start = 0
    if doctype is not None:
        end = body.find(b"]>", doctype.end())
        if end < 0:
            end = body.find(b">", doctype.end())
        if end < 0:
            return None
        start = end
    m = _ROOT.search(body, start)
    if m is None:
        return None
    name = re.match(rb"[\w:.-]+", body[m.end() :])
    if name is None:
        return None
    return name.group(0).split(b":")[-1]


def check_prolog(fp: IO[bytes], path: str, *, allow_doctype: bool) -> None:
    """Refuse documents that declare entities (or any DOCTYPE when not ``allow_doctype``).
    Reads at most :data:`PROLOG_LIMIT` bytes and rewinds ``fp``."""
    pos = fp.tell()
    head = fp.read(PROLOG_LIMIT)
    fp.seek(pos)
    body = _COMMENT.sub(lambda m: b" " * len(m.group(0)), head)
    root = None
    doctype = _DOCTYPE.search(body)
    if doctype is not None:
        if not allow_doctype:
            raise InputError(
                "XML has a DOCTYPE, which this format never has (refused: possible entity attack)",
                path=path,
                offset=doctype.start(),
            )
        ent = _ENTITY.search(body, doctype.start())
        end = body.find(b"]>", doctype.end())
        if ent is not None and (end < 0 or ent.start() < end):
            raise InputError(
                "XML declares entities (refused: entity expansion and external entities are "
                "never allowed)",
                path=path,
                offset=ent.start(),
            )
        search_from = end if end >= 0 else doctype.end()
    else:
        search_from = 0
    root = _ROOT.search(body, search_from)
    if root is None and len(head) >= PROLOG_LIMIT:
        raise InputError("XML prolog longer than 1 MiB (refused)", path=path, offset=0)


def parser(**extra: Any) -> etree.XMLParser:
    """An lxml parser that expands no entity and touches no network."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True, **extra
    )


def iterparse(source: IO[bytes], **kwargs: Any) -> Any:
    """``lxml.etree.iterparse`` with the same safety settings as :func:`parser`."""
    return etree.iterparse(
        source,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=True,
        **kwargs,
    )


def xml_error(exc: Exception, path: str) -> InputError:
    """Wrap an lxml syntax error with its line and column."""
    pos = getattr(exc, "position", None)
    where = f" at line {pos[0]}, column {pos[1]}" if pos else ""
    return InputError(f"malformed XML{where}: {exc}", path=path)
