"""Fast reading of Apple Health ``export.xml``: the same Recording as the reference reader
(:func:`actidose.ingest.apple_health.read_reference`), in a fraction of its time, or a refusal.

An export is a few million elements written in one regular form, one element per line::

    <Record type="..." sourceName="..." ... startDate="..." endDate="..." value="72">
      <MetadataEntry key="..." value="0"/>
    </Record>

Attribute values are delimited by ``"``, and everything between two values (a *gap*: ``
sourceName=``, or ``/>\n </Record>\n <Record type=``) comes from a small set of strings. The
scanner works on those two facts, in blocks of 1 MiB, with numpy and no per-element Python:

1. the positions of every ``"`` (one pass over the bytes) give every value and every gap;
2. a gap whose first byte that is not white space is ``/`` or ``>`` ends a tag and opens the
   next: it is looked up by its exact bytes (8-byte words, a hash into a table, every word
   compared) among the gaps seen so far. A gap seen for the first time is checked once, in
   Python, against the grammar of what may stand between two attribute values (the end of a
   tag, whole tags without attributes, white space, the start of a tag and an attribute
   name, or another attribute name of the same tag) and compiled into what it means: which
   element it opens, which attribute follows, which elements it closes or opens in between.
   Tags that open with the same gap and hold as many values form a group; the gaps inside
   them are compared, byte for byte up to the quote that follows, with the first tag's.
   So every byte outside the values is checked exactly, and element nesting (names of start
   and end tags, one root) is checked from the gaps' meanings;
3. each group's values are read by columns: dates as fixed-width bytes (the time of day as
   one 8-byte word, the date and offset once per run of equal ones), numbers by digits or by
   numpy's own parsing of the text (as the reference reader parses them), strings (type,
   sourceName, device, unit) compared with the record before, so only the first of each run
   of equal strings is decoded in Python (XML character references, attribute white-space
   normalisation, UTF-8), as libxml2 reports them;
4. the bytes the XML rules restrict inside values (``<``, ``&``, controls, non-ASCII) are
   counted per block and must all be accounted for by values that were read and checked;
   when they are not, the values not read are checked one by one.

Anything else is refused with :class:`Declined` and :func:`actidose.ingest.apple_health.read`
reads the file again with the reference reader: comments, processing instructions or CDATA
after the DOCTYPE, single-quoted attributes, namespaces, text content, an undeclared entity,
a control character, invalid UTF-8, a date or value in an unusual form, truncation, any
malformed markup, tags of too many different forms. So the scanner gives either the
reference reader's Recording or no answer; the refusal says why. Nothing in a DTD is ever
read (the prolog goes through the reference reader's own checks first, which refuse every
entity declaration), and no entity other than the five predefined ones and character
references is accepted.

A regular file of at least :data:`PARALLEL_MIN` bytes is read by two processes (on Linux)
when another core was idle while this one read its first blocks (:data:`_IDLE_PROBE_S`, from
``/proc/stat``): a forked process takes pieces from the end of the file, this one from the
front, each piece a third of what is not yet taken (so the two finish together), cut where a
line starts a top-level ``<Record``. Each of the other process's pieces is read as a part of
its own and handed to its own collector; the parts come back through a memory file (their
arrays not copied) and are joined in file order, each only when the part before ends where it
begins with its assumption (that it starts directly inside ``HealthData``, just after a value)
true; from the first that does not join, this process reads on itself. (Splitting costs some
work of its own: on a busy machine one process is faster.)

One result depends on how the reference reader happens to batch its work and is the same
here only up to that: a value that numpy's float parsing and Python's ``float`` both read
but differently (none of the forms Apple writes) is read as numpy reads it alone.

Memory: a block and its index arrays (about 4.5 bytes a byte of the block), plus the output
arrays, handed to the collector every :data:`_COLLECT_EVERY` blocks.
"""

from __future__ import annotations

import itertools
import mmap
import multiprocessing
import os
import pickle
import re
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final, TypeVar

import numpy as np
import numpy.typing as npt

from actidose.ingest import apple_health as ah
from actidose.recording import Recording

__all__ = ["BLOCK", "PARALLEL_MIN", "Declined", "decode_attribute", "scan"]

BLOCK: Final = 1 << 22  # bytes read at a time (fewer numpy calls a byte than smaller blocks)
_SUB: Final = 1 << 20  # byte passes run over pieces of this size (they stay in cache)
_MAX_CARRY: Final = 64 << 20  # an element longer than this is left to the reference reader
_COLLECT_EVERY: Final = 16  # blocks: what was read is given to the collector as it goes
_PAD: Final = 512  # spare bytes after the data: gathers of up to 256 bytes may run past it
_MAX_GAPS: Final = 8192  # distinct gap strings (Apple writes a few dozen)
_MAX_DEPTH: Final = 256
#: a block whose tags come in more forms than this (and than 1 in 8 of its tags) is left to the
#: reference reader: the scanner is fast only on the regular files exports are
_MAX_GROUPS: Final = 256

_G = TypeVar("_G", bound=np.generic)
_K = TypeVar("_K")
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]
BOOL = npt.NDArray[np.bool_]


class Declined(Exception):
    """The fast scanner does not take this file on; ``str()`` says why and where."""


# --- names -----------------------------------------------------------------------------------

# element ids fixed for the names that matter; others get ids as they are met
REC, BEAT, META, WORKOUT, WSTAT, HEALTH, EXPORT, ME, HRVLIST = range(9)
_ELEMS: Final = (
    "Record",
    "InstantaneousBeatsPerMinute",
    "MetadataEntry",
    "Workout",
    "WorkoutStatistics",
    "HealthData",
    "ExportDate",
    "Me",
    "HeartRateVariabilityMetadataList",
)
A_TYPE, A_SOURCE, A_DEVICE, A_UNIT, A_START, A_END, A_VALUE, A_BPM, A_TIME = range(9)
_ATTRS: Final = ("type", "sourceName", "device", "unit", "startDate", "endDate", "value", "bpm")
_ATTRS_ALL: Final = (*_ATTRS, "time")
_OTHER: Final = (WORKOUT, WSTAT, HEALTH, EXPORT, ME)  # read through a dict, in file order
#: elements the reference reader acts on even without attributes: such a tag is left to it
_ACTS_WITHOUT_ATTRIBUTES: Final = frozenset(
    {"InstantaneousBeatsPerMinute", "Workout", "ExportDate", "Me", "HealthData"}
)

_WS: Final = rb"[ \t\r\n]"
_NAME: Final = rb"[A-Za-z_][A-Za-z0-9._-]*"
_TAG: Final = rb"<(?:/" + _NAME + _WS + rb"*|" + _NAME + _WS + rb"*/?)>"
_MID: Final = rb"(?P<mid>(?:" + _WS + rb"*" + _TAG + rb")*" + _WS + rb"*)"
_ATTR: Final = rb"(?P<attr>" + _NAME + rb")" + _WS + rb"*=" + _WS + rb"*\Z"
#: what may stand between two attribute values
_GAP: Final = re.compile(
    rb"(?:(?P<close>"
    + _WS
    + rb"*(?P<slash>/?)>)"
    + _MID
    + rb"<(?P<open>"
    + _NAME
    + rb")"
    + _WS
    + rb"+|(?P<cont>"
    + _WS
    + rb"+))"
    + _ATTR
)
#: the document's first gap: tags without attributes, then the first attribute's tag
_FIRST: Final = re.compile(_MID + rb"<(?P<open>" + _NAME + rb")" + _WS + rb"+" + _ATTR)
#: after the last value: the end of its tag, end tags, white space
_EPILOG: Final = re.compile(rb"(?P<close>" + _WS + rb"*(?P<slash>/?)>)" + _MID + rb"\Z")
_MIDTAG: Final = re.compile(rb"<(/?)(" + _NAME + rb")" + _WS + rb"*(/?)>")
_XMLDECL: Final = re.compile(
    rb"<\?xml" + _WS + rb"+version" + _WS + rb"*=" + _WS + rb"*(?:\"1\.0\"|'1\.0')"
    rb"(?:" + _WS + rb"+encoding" + _WS + rb"*=" + _WS + rb"*(?:\"(?P<e1>[A-Za-z0-9._-]+)\""
    rb"|'(?P<e2>[A-Za-z0-9._-]+)'))?"
    rb"(?:"
    + _WS
    + rb"+standalone"
    + _WS
    + rb"*="
    + _WS
    + rb"*(?:\"(?:yes|no)\"|'(?:yes|no)'))?"
    + _WS
    + rb"*\?>"
)
_ROOT: Final = re.compile(rb"<HealthData[ \t\r\n/>]")

CONT, NEXT, FIRST = 0, 1, 2
CURRENT: Final = -2  # in an event list: the element whose tag the gap closes

# --- XML attribute values ----------------------------------------------------------------------

_REF: Final = re.compile(r"&(?:(lt|gt|amp|quot|apos)|#([0-9]{1,8})|#x([0-9a-fA-F]{1,7}));")
#: libxml2, not substituting entities (as the reference reader runs it), reports an ``&`` made
#: by a reference as the text ``&#38;``: so does this reader
_PREDEFINED: Final = {"lt": "<", "gt": ">", "amp": "&#38;", "quot": '"', "apos": "'"}
_NOT_CTRL: Final = bytes(c for c in range(256) if c >= 32 or c in (9, 10, 13))


def _char_ok(code: int) -> bool:
    return (
        code in (9, 10, 13)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _ref(m: re.Match[str]) -> str:
    if m.group(1):
        return _PREDEFINED[m.group(1)]
    code = int(m.group(2)) if m.group(2) else int(m.group(3), 16)
    if not _char_ok(code):
        raise Declined(f"character reference to a character XML does not allow ({m.group(0)})")
    return "&#38;" if code == 38 else chr(code)


def decode_attribute(raw: bytes) -> str:
    """An attribute value's bytes (between its quotes) as the reference reader's libxml2
    reports it: UTF-8, line ends and tabs normalised to spaces, the five predefined entities
    and character references replaced (an ``&`` so made stays ``&#38;``, as libxml2 leaves it
    when it substitutes no entities). Raises :class:`Declined` for anything a parser would
    reject (``<``, an undeclared entity, a bare ``&``, a control character, invalid UTF-8,
    U+FFFE/U+FFFF)."""
    if b"<" in raw:
        raise Declined('"<" inside an attribute value')
    if raw.translate(None, _NOT_CTRL):
        raise Declined("control character inside an attribute value")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Declined("invalid UTF-8 inside an attribute value") from None
    if "\ufffe" in text or "\uffff" in text:
        raise Declined("U+FFFE/U+FFFF inside an attribute value")
    if "\r" in text or "\n" in text or "\t" in text:
        text = text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\t", " ")
    if "&" in text:
        if "&" in _REF.sub("", text):  # every "&" must start a reference
            raise Declined("an entity other than the predefined five inside an attribute value")
        text = _REF.sub(_ref, text)
    return text


_DECODED: dict[bytes, str] = {}


def _decode_cached(raw: bytes) -> str:
    got = _DECODED.get(raw)
    if got is None:
        got = decode_attribute(raw)
        if len(_DECODED) < 4096:
            _DECODED[raw] = got
    return got


def _special_counts(raw: bytes) -> tuple[int, int, int]:
    """Bytes >= 0x80, ``&`` and bytes < 0x20 in ``raw``."""
    return (
        len(raw) - len(raw.translate(None, _HIGH)),
        raw.count(b"&"),
        len(raw) - len(raw.translate(None, _LOW)),
    )


_HIGH: Final = bytes(range(128, 256))
_LOW: Final = bytes(range(32))


# --- gaps --------------------------------------------------------------------------------------


@dataclass
class _Prog:
    """What one gap string means."""

    kind: int
    opens: int  # element id, or -1
    attr: int
    push: bool  # it ends a start tag (">"): that element is now open
    events: list[tuple[int, int]]  # (+1 start tag / -1 end tag, element id), in order
    n_lt: int
    n_ws: int


_MAX_WORDS: Final = 16  # gaps up to 128 bytes are found through tables, longer ones by dict
_MASKS: Final = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], np.uint64)
_MIX: Final = np.uint64(0x9E3779B97F4A7C15)


class _Table:
    """Exact lookup of byte strings by their length and the ``8 * words`` bytes that start
    where they start (the string and whatever follows it): a hash picks a slot (linear
    probing over ``_PROBES`` slots), and the whole row is compared. Equal rows mean equal
    strings; the same string followed by other bytes is another row of the same id."""

    _PROBES: Final = 4
    _MAX_BITS: Final = 16

    def __init__(self, words: int, rng: np.random.Generator) -> None:
        self.words = words
        self.mult = (rng.integers(1, 2**62, 3, dtype=np.uint64) * 2 + 1).astype(np.uint64)
        self.bits = 8
        self.keys = np.zeros((1 << self.bits, words + 1), np.uint64)
        self.ids = np.full(1 << self.bits, -1, np.int64)
        self.count = 0
        self.hot_rows: list[U64] = []
        self.hot_ids: list[int] = []

    def _slot(self, rows: U64) -> U64:
        m = self.mult
        h = (rows[:, 0] * m[0]) ^ (rows[:, 1] * m[1]) ^ (rows[:, self.words] * m[2])
        h ^= h >> np.uint64(29)
        h *= _MIX
        return h >> np.uint64(64 - self.bits)

    def lookup(self, rows: U64) -> I64:
        """Ids of ``rows`` (length, words...), -1 where not in the table. The strings most
        often found by the previous call are compared first, directly (a block's gaps are
        mostly the same few strings); the rest go through the hash."""
        out = np.full(rows.shape[0], -1, np.int64)
        if not self.count:
            return out
        todo = np.arange(rows.shape[0])
        for row, ident in zip(self.hot_rows, self.hot_ids, strict=True):
            hit = (
                (rows[todo] == row).all(axis=1)
                if todo.size < rows.shape[0]
                else (rows == row).all(axis=1)
            )
            out[todo[hit]] = ident
            todo = todo[~hit]
            if not todo.size:
                break
        if todo.size:
            self._hashed(rows, todo, out)
        found = out[out >= 0]
        if found.size:  # the two most frequent strings of this call go first next time
            ids, counts = np.unique(found, return_counts=True)
            top = ids[np.argsort(-counts, kind="stable")[:2]]
            where = {int(i): int(np.flatnonzero(out == i)[0]) for i in top.tolist()}
            self.hot_rows = [rows[where[int(i)]].copy() for i in top.tolist()]
            self.hot_ids = [int(i) for i in top.tolist()]
        return out

    def _hashed(self, rows: U64, todo: I64, out: I64) -> None:
        slot = self._slot(rows[todo])
        mask = np.uint64((1 << self.bits) - 1)
        for p in range(self._PROBES):
            s = ((slot + np.uint64(p)) & mask).astype(np.intp)
            hit = (self.keys[s] == rows[todo]).all(axis=1)
            out[todo[hit]] = self.ids[s[hit]]
            miss = ~hit
            todo, slot = todo[miss], slot[miss]
            if not todo.size:
                break

    def insert(self, row: U64, ident: int) -> None:
        if (self.count + 1) * 4 > (1 << self.bits):
            if self.bits >= self._MAX_BITS:
                return  # full: such strings are found through the dict (still exact)
            self._grow()
        self._put(row, ident)

    def _put(self, row: U64, ident: int) -> None:
        mask = (1 << self.bits) - 1
        slot = int(self._slot(row[None, :])[0])
        for p in range(self._PROBES):
            s = (slot + p) & mask
            if self.ids[s] < 0:
                self.keys[s] = row
                self.ids[s] = ident
                self.count += 1
                return
        # every probe taken: this string is found through the dict (still exact)

    def _grow(self) -> None:
        used = self.ids >= 0
        keys, ids = self.keys[used], self.ids[used]
        self.bits += 1
        self.keys = np.zeros((1 << self.bits, self.words + 1), np.uint64)
        self.ids = np.full(1 << self.bits, -1, np.int64)
        self.count = 0
        for row, ident in zip(keys, ids.tolist(), strict=True):
            self._put(row, ident)


def _rows(view: Callable[[int], npt.NDArray[np.void]], starts: I64, lens: I64, words: int) -> U64:
    """(length, words...) of byte strings of ``8 * words - 7`` to ``8 * words`` bytes at
    ``starts``; the bytes after each string (in its last word) are zeroed."""
    out = np.empty((starts.size, words + 1), np.uint64)
    out[:, 0] = lens
    out[:, 1:] = view(8 * words)[starts].view(np.uint64).reshape(-1, words)
    out[:, words] &= _MASKS[lens - 8 * (words - 1)]
    return out


_MASK_ROWS: dict[int, U64] = {}


def _mask_rows(words: int) -> U64:
    """Row ``n``: the masks that keep the first ``n`` bytes of ``words`` words."""
    got = _MASK_ROWS.get(words)
    if got is None:
        left = np.clip(np.arange(8 * words + 1)[:, None] - 8 * np.arange(words), 0, 8)
        got = _MASK_ROWS[words] = _MASKS[left]
    return got


def _words(size: int) -> int:
    return max(1, -(-size // 8))


class _Gaps:
    """Every distinct gap string met, its meaning, and the tables that find it."""

    def __init__(self, elems: dict[str, int], attrs: dict[str, int]) -> None:
        rng = np.random.default_rng()
        self.tables = [_Table(max(w, 1), rng) for w in range(_MAX_WORDS + 1)]
        self.by_bytes: dict[bytes, int] = {}
        self.progs: list[_Prog] = []
        self.elems = elems
        self.attrs = attrs
        self._arrays()

    def _arrays(self) -> None:
        p = self.progs
        self.kind = np.array([g.kind for g in p], np.int8)
        self.opens = np.array([g.opens for g in p], np.int64)
        self.attr = np.array([g.attr for g in p], np.int64)
        self.n_ev = np.array([len(g.events) for g in p], np.int64)
        self.delta = np.array([sum(d for d, _ in g.events) for g in p], np.int64)
        self.n_lt = np.array([g.n_lt for g in p], np.int64)
        self.n_ws = np.array([g.n_ws for g in p], np.int64)
        self.ev_off = np.cumsum([0] + [len(g.events) for g in p])[:-1].astype(np.int64)
        ev = [e for g in p for e in g.events]
        self.ev_d = np.array([d for d, _ in ev], np.int64)
        self.ev_n = np.array([n for _, n in ev], np.int64)

    def elem(self, name: bytes) -> int:
        text = name.decode("ascii")
        return self.elems.setdefault(text, len(self.elems))

    def compile(self, raw: bytes, first: bool) -> _Prog:
        m = (_FIRST if first else _GAP).match(raw)
        if m is None:
            raise Declined(f"markup this reader does not take on: {_show(raw)}")
        events: list[tuple[int, int]] = []
        close = None if first else m.group("close")
        push = bool(close) and not m.group("slash")
        if push:
            events.append((1, CURRENT))
        for t in _MIDTAG.finditer(m.group("mid") or b""):
            end, name, empty = t.group(1), t.group(2), t.group(3)
            text = name.decode("ascii")
            if (
                not end
                and text in _ACTS_WITHOUT_ATTRIBUTES
                and not (first and text == "HealthData")
            ):
                raise Declined(f"<{text}> without attributes")
            if end:
                events.append((-1, self.elem(name)))
            elif not empty:
                events.append((1, self.elem(name)))
        attr = m.group("attr")
        if attr == b"xmlns":
            raise Declined("XML namespaces")
        kind = FIRST if first else (CONT if m.group("cont") else NEXT)
        opens = self.elem(m.group("open")) if kind != CONT else -1
        return _Prog(
            kind=kind,
            opens=opens,
            attr=self.attrs.setdefault(attr.decode("ascii"), len(self.attrs)),
            push=push,
            events=events,
            n_lt=raw.count(b"<"),
            n_ws=len(raw) - len(raw.translate(None, _LOW)),
        )

    def ident(self, raw: bytes, first: bool = False) -> int:
        got = self.by_bytes.get(raw)
        if got is None:
            if len(self.progs) >= _MAX_GAPS:
                raise Declined(f"more than {_MAX_GAPS} different forms of markup")
            prog = self.compile(raw, first)
            got = self.by_bytes[raw] = len(self.progs)
            self.progs.append(prog)
            self._arrays()
        return got

    def identify(
        self,
        buf: bytearray,
        view: Callable[[int], npt.NDArray[np.void]],
        a: npt.NDArray[np.uint8],
        gs: I64,
        gl: I64,
        first_gap: int,
    ) -> tuple[I64, I64, list[I64]]:
        """The program of every gap of a block (``first_gap``: the document's first gap, or
        -1), where the tags start (their first values), and the tags in groups of the same
        gaps (so the same element and attributes in the same order). The programs of gaps
        inside tags are set for the first tag of each group only: the others equal its.

        Gaps that start with ``/`` or ``>`` end a tag and open the next: those are looked up
        one by one. The gaps inside the tags that open with the same gap and hold as many
        values are compared, as whole byte strings up to their closing quote, with the first
        such tag's; whatever differs is looked up. When a guess about where tags start proves
        wrong, every gap is looked up."""
        n = gs.size
        gid = np.full(n, -1, np.int64)
        # a gap whose first byte that is not white space is "/" or ">" ends a tag
        fb = a[gs]
        blank = np.flatnonzero((fb == 32) | (fb == 10) | (fb == 9) | (fb == 13))
        step = 1
        while blank.size and step <= 16:
            nb = a[np.minimum(gs[blank] + step, a.size - 1)]
            fb[blank] = nb
            blank = blank[((nb == 32) | (nb == 10) | (nb == 9) | (nb == 13)) & (step < gl[blank])]
            step += 1
        og = np.flatnonzero((fb == ord("/")) | (fb == ord(">")) | (np.arange(n) == 0))
        if first_gap >= 0:
            gid[0] = first_gap
            rest = og[1:]
            gid[rest] = self.lookup(buf, view, gs[rest], gl[rest])
        else:
            gid[og] = self.lookup(buf, view, gs[og], gl[og])
        if (self.kind[gid[og]] == CONT).any():
            return self._all(buf, view, gs, gl, first_gap)
        cnt = np.diff(og, append=n)
        key = gid[og] * (int(cnt.max()) + 1) + cnt
        order = np.argsort(key, kind="stable")
        ks = key[order]
        bounds = np.flatnonzero(np.concatenate(([True], ks[1:] != ks[:-1], [True])))
        groups: list[I64] = []
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            tags = order[lo:hi]
            c = int(cnt[tags[0]])
            if c == 1:
                groups.append(tags)
                continue
            ex = og[tags[0]] + np.arange(1, c)  # the exemplar's gaps inside its tag
            ex_ids = self.lookup(buf, view, gs[ex], gl[ex])
            if (self.kind[ex_ids] != CONT).any():
                return self._all(buf, view, gs, gl, first_gap)
            gid[ex] = ex_ids
            if tags.size == 1:
                groups.append(tags)
                continue
            idx = og[tags[1:]][:, None] + np.arange(1, c)
            ln = gl[ex] + 1  # each gap and the quote after it: equal bytes, equal length
            w = _words(int(ln.max()))
            masks = _mask_rows(w)[ln]
            want = view(8 * w)[gs[ex]].view(np.uint64).reshape(c - 1, w) & masks
            got = view(8 * w)[gs[idx]].view(np.uint64).reshape(idx.shape[0], c - 1, w)
            got &= masks
            ok = (got == want).reshape(idx.shape[0], -1).all(axis=1)
            # (the programs of the rows that are equal stay unset: their exemplar's serve)
            groups.append(np.concatenate((tags[:1], tags[1:][ok])))
            if not ok.all():
                bad = idx[~ok]
                ids = self.lookup(buf, view, gs[bad.ravel()], gl[bad.ravel()])
                if (self.kind[ids] != CONT).any():
                    return self._all(buf, view, gs, gl, first_gap)
                gid[bad.ravel()] = ids
                groups += _by_sequence(tags[1:][~ok], ids.reshape(bad.shape))
        return gid, og, groups

    def _all(
        self,
        buf: bytearray,
        view: Callable[[int], npt.NDArray[np.void]],
        gs: I64,
        gl: I64,
        first_gap: int,
    ) -> tuple[I64, I64, list[I64]]:
        if first_gap < 0:
            gid = self.lookup(buf, view, gs, gl)
        else:
            gid = np.empty(gs.size, np.int64)
            gid[0] = first_gap
            gid[1:] = self.lookup(buf, view, gs[1:], gl[1:])
        kind = self.kind[gid]
        if kind[0] == CONT:
            raise Declined("markup out of place")
        og = np.flatnonzero(kind != CONT)
        cnt = np.diff(og, append=gs.size)
        groups: list[I64] = []
        for c in np.unique(cnt).tolist():
            tags = np.flatnonzero(cnt == c)
            seq = gid[og[tags][:, None] + np.arange(c)]
            groups += _by_sequence(tags, seq)
        return gid, og, groups

    def lookup(
        self, buf: bytearray, view: Callable[[int], npt.NDArray[np.void]], gs: I64, gl: I64
    ) -> npt.NDArray[np.int64]:
        out = np.full(gs.size, -1, np.int64)
        words = (gl + 7) // 8
        present = np.flatnonzero(np.bincount(np.minimum(words, _MAX_WORDS + 1)))
        for w in present.tolist():
            if w == 0 or w > _MAX_WORDS:
                continue
            table = self.tables[w]
            sel = np.flatnonzero(words == w)
            rows = _rows(view, gs[sel], gl[sel], table.words)
            got = table.lookup(rows)
            miss = np.flatnonzero(got < 0)
            while miss.size:  # one new string at a time
                i = int(miss[0])
                s, n = int(gs[sel[i]]), int(gl[sel[i]])
                ident = self.ident(bytes(buf[s : s + n]))
                table.insert(rows[i], ident)
                rest = miss[1:]
                same = (rows[rest] == rows[i]).all(axis=1)
                got[i] = ident
                got[rest[same]] = ident
                miss = rest[~same]
            out[sel] = got
        for i in np.flatnonzero(out < 0).tolist():  # long gaps, and empty ones
            s, n = int(gs[i]), int(gl[i])
            out[i] = self.ident(bytes(buf[s : s + n]))
        return out


def _by_sequence(tags: I64, seq: npt.NDArray[np.int64]) -> list[I64]:
    """``tags`` grouped by their rows of ``seq`` (gap programs)."""
    found: dict[bytes, list[int]] = {}
    for t, row in zip(tags.tolist(), np.ascontiguousarray(seq), strict=True):
        found.setdefault(row.tobytes(), []).append(t)
    return [np.array(v, np.int64) for v in found.values()]


def _show(raw: bytes) -> str:
    text = raw[:60].decode("utf-8", "replace")
    return repr(text + ("..." if len(raw) > 60 else ""))


# --- strings -----------------------------------------------------------------------------------


class _Strings:
    """Attribute values met as strings (type, sourceName, device, unit), each decoded once."""

    def __init__(self) -> None:
        self.by_bytes: dict[bytes, int] = {}
        self.text: list[str] = []
        self.counts: list[tuple[int, int, int]] = []
        self._counts = np.zeros((0, 3), np.int64)

    def ident(self, raw: bytes) -> int:
        got = self.by_bytes.get(raw)
        if got is None:
            text = decode_attribute(raw)
            got = self.by_bytes[raw] = len(self.text)
            self.text.append(text)
            self.counts.append(_special_counts(raw))
        return got

    def special_array(self) -> I64:
        """Per string: its bytes < 0x20, >= 0x80 and "&" together."""
        return self.count_array().sum(axis=1)

    def count_array(self) -> I64:
        if self._counts.shape[0] != len(self.counts):
            self._counts = np.array(self.counts, np.int64).reshape(-1, 3)
        return self._counts

    def runs(
        self, buf: bytearray, view: Callable[[int], npt.NDArray[np.void]], vs: I64, vl: I64
    ) -> I64:
        """Ids of the values at ``vs`` (lengths ``vl``): each is compared with the one before it
        (whole words), and only the first of each run of equal ones is looked up."""
        n = vs.size
        if not n:
            return np.empty(0, np.int64)
        longest = int(vl.max())
        start = np.ones(n, bool)
        if longest <= 256:
            # the bytes from each start, as long as the longest: equal rows of equal length
            # are equal strings (bytes after a shorter one make rows differ at worst)
            nw = _words(longest)
            g = view(8 * nw)[vs].view(np.uint64).reshape(-1, nw)
            start[1:] = (g[1:] != g[:-1]).any(axis=1) | (vl[1:] != vl[:-1])
        firsts = np.flatnonzero(start)
        pairs = zip(vs[firsts].tolist(), vl[firsts].tolist(), strict=True)
        ids = np.array([self.ident(bytes(buf[s : s + k])) for s, k in pairs], np.int64)
        return ids[np.cumsum(start) - 1]


# --- dates and numbers -------------------------------------------------------------------------

_HMS_SEP_MASK: Final = np.uint64(0x0000FF0000FF0000)
_HMS_SEP: Final = np.uint64(0x00003A00003A0000)
_HMS_DIG_MASK: Final = np.uint64(0xFFFF00FFFF00FFFF)
_HMS_ZERO: Final = np.uint64(0x3030003030003030)
_HMS_HIGH: Final = np.uint64(0xF0F000F0F000F0F0)
_HMS_SIX: Final = np.uint64(0x0606000606000606)
_HMS_TEN: Final = np.uint64(0x1010001010001010)
_LOW3: Final = np.uint64(0xFFFFFF)
_HIGH5: Final = np.uint64(0xFFFFFFFFFF000000)
_BYTE: Final = np.uint64(0xFF)


def _dates(
    view: Callable[[int], npt.NDArray[np.void]], vs: I64, vl: I64, what: str
) -> tuple[I64, I64]:
    """``YYYY-MM-DD HH:MM:SS ±HHMM`` values at ``vs`` to (UTC seconds, offset seconds). The
    date-and-offset part is parsed once per run of equal ones (with the reference reader's own
    :func:`~actidose.ingest.apple_health.parse_dates` rules), the time of day as one 8-byte
    word per value."""
    if not vs.size:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if (vl != 25).any():
        raise Declined(f"a {what} in another form than YYYY-MM-DD HH:MM:SS +HHMM")
    b = view(32)[vs]
    w = b.view(np.uint64).reshape(-1, 4)
    w0, w1, w2, w3 = w[:, 0], w[:, 1], w[:, 2], w[:, 3] & _BYTE
    k2 = (w1 & _LOW3) | (w2 & _HIGH5)
    start = np.ones(vs.size, bool)
    start[1:] = (w0[1:] != w0[:-1]) | (k2[1:] != k2[:-1]) | (w3[1:] != w3[:-1])
    # time of day "HH:MM:SS" as one word
    t = (w1 >> np.uint64(24)) | ((w2 & _LOW3) << np.uint64(40))
    x = (t & _HMS_DIG_MASK) ^ _HMS_ZERO
    ok = (
        ((t & _HMS_SEP_MASK) == _HMS_SEP)
        & ((x & _HMS_HIGH) == 0)
        & (((x + _HMS_SIX) & _HMS_TEN) == 0)
    )
    q = x * np.uint64(10) + (x >> np.uint64(8))
    hh = (q & _BYTE).astype(np.int64)
    mm = ((q >> np.uint64(24)) & _BYTE).astype(np.int64)
    ss = ((q >> np.uint64(48)) & _BYTE).astype(np.int64)
    ok &= (hh < 24) & (mm < 60) & (ss < 60)
    if not ok.all():
        raise Declined(f"an unreadable {what}")
    secs = hh * 3600 + mm * 60 + ss
    first = np.flatnonzero(start)
    # each run's date and offset: known ones from the cache, the others parsed
    keys = list(zip(w0[first].tolist(), k2[first].tolist(), w3[first].tolist(), strict=True))
    got = [_DAYS.get(k) for k in keys]
    new = [i for i, g in enumerate(got) if g is None]
    if new:
        codes = b[first[new]].view(np.uint8).reshape(-1, 32)[:, :25]
        utc, off, good = ah._fields(np.ascontiguousarray(codes), ah._MODERN)
        if not good.all():
            raise Declined(f"an unreadable {what}")
        base_new = (utc - secs[first[new]]).tolist()
        for i, bn, o in zip(new, base_new, off.tolist(), strict=True):
            got[i] = _DAYS[keys[i]] = (bn, o)
        if len(_DAYS) > 1 << 16:
            _DAYS.clear()
    pairs = np.array(got, np.int64).reshape(-1, 2)
    run = np.cumsum(start) - 1
    return pairs[run, 0] + secs, pairs[run, 1]


#: (date-and-offset words) -> (UTC seconds of that local midnight, offset): parsed once
_DAYS: dict[tuple[int, int, int], tuple[int, int]] = {}


def _numbers(
    buf: bytearray, view: Callable[[int], npt.NDArray[np.void]], vs: I64, vl: I64, missing: BOOL
) -> tuple[F64, tuple[int, int, int]]:
    """Numeric values (NaN where missing or not a number), and the special bytes of the ones
    decoded in Python. Values of 1 to 3 digits are read by columns; other plain ASCII values
    by numpy's own parsing of the same text (as the reference reader parses them); values
    with ``&``, controls or non-ASCII are decoded first."""
    n = vs.size
    out = np.full(n, np.nan)
    special = (0, 0, 0)
    if not n:
        return out, special
    short = ~missing & (vl >= 1) & (vl <= 16)
    rows = np.flatnonzero(short)
    slow = np.flatnonzero(~short & ~missing)
    if rows.size:
        m = view(16)[vs[rows]].view(np.uint8).reshape(-1, 16)
        ln = vl[rows]
        d = m[:, :3].astype(np.int64) - 48
        dig = (d >= 0) & (d <= 9)
        small = (ln <= 3) & dig[:, 0] & ((ln < 2) | dig[:, 1]) & ((ln < 3) | dig[:, 2])
        v = np.where(ln == 1, d[:, 0], d[:, 0] * 10 + d[:, 1])
        v = np.where(ln == 3, v * 10 + d[:, 2], v)
        out[rows[small]] = v[small]
        if not small.all():
            rest = np.flatnonzero(~small)
            mr = m[rest]
            inside = np.arange(16) < ln[rest][:, None]
            odd = (((mr < 32) | (mr >= 128) | (mr == ord("&")) | (mr == ord("<"))) & inside).any(
                axis=1
            )
            good = rest[~odd]
            if good.size:
                text = np.where(inside[~odd], mr[~odd], 0).view("S16").ravel()
                try:
                    out[rows[good]] = text.astype(np.float64)
                except ValueError:  # something that is not a number: one by one
                    slow = np.concatenate((slow, rows[good]))
            slow = np.concatenate((slow, rows[rest[odd]]))
    for i in np.sort(slow).tolist():
        raw = bytes(buf[int(vs[i]) : int(vs[i] + vl[i])])
        out[i] = ah._floats([decode_attribute(raw)])[0]
        c = _special_counts(raw)
        special = (special[0] + c[0], special[1] + c[1], special[2] + c[2])
    return out, special


_NNBSP: Final = (0xE2, 0x80, 0xAF)  # U+202F narrow no-break space (iOS 17 before AM/PM)
_NBSP: Final = (0xC2, 0xA0)  # U+00A0 no-break space


def _beat_times(
    buf: bytearray, view: Callable[[int], npt.NDArray[np.void]], vs: I64, vl: I64, have: BOOL
) -> tuple[I64, BOOL, tuple[int, int, int]]:
    """``InstantaneousBeatsPerMinute/@time`` values to microseconds since local midnight and
    readability, as :func:`~actidose.ingest.apple_health.parse_beat_times` reads them: values
    of one byte length are read together by the reference reader's own fixed-column routine
    (a no-break space before AM/PM is a space to it); what does not fit goes to
    ``parse_beat_times`` as text."""
    n = vs.size
    sod = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    hi_total = 0
    text_rows: list[npt.NDArray[np.intp]] = [np.flatnonzero(have & ((vl < 7) | (vl > 24)))]
    rows = np.flatnonzero(have & (vl >= 7) & (vl <= 24))
    if rows.size:
        m = view(24)[vs[rows]].view(np.uint8).reshape(-1, 24)
        ln = vl[rows]
        for width in np.flatnonzero(np.bincount(ln)).tolist():
            sel = np.flatnonzero(ln == width)
            mg = m[sel, :width]
            if ((mg < 32) | (mg == ord("&"))).any():
                text_rows.append(rows[sel])
                continue
            high = mg >= 128
            if high.any():
                spaced = _drop_space_marks(mg)
                if spaced is None:
                    text_rows.append(rows[sel])
                    continue
                mg = spaced
                hi_total += int(np.count_nonzero(high))
            got = ah._beat_layout(np.ascontiguousarray(mg)) if mg.shape[1] < 20 else None
            if got is None:
                text_rows.append(rows[sel])
                continue
            s, k, fits = got
            sod[rows[sel[fits]]] = s[fits]
            ok[rows[sel[fits]]] = k[fits]
            if not fits.all():
                text_rows.append(rows[sel[~fits]])
                hi_total -= int(np.count_nonzero(high[~fits])) if high.any() else 0
    special = (hi_total, 0, 0)
    todo = np.sort(np.concatenate(text_rows)).tolist()
    if todo:
        raws = [bytes(buf[int(vs[i]) : int(vs[i] + vl[i])]) for i in todo]
        s, k = ah.parse_beat_times([decode_attribute(r) for r in raws])
        sod[todo] = s
        ok[todo] = k
        for r in raws:
            c = _special_counts(r)
            special = (special[0] + c[0], special[1] + c[1], special[2] + c[2])
    return sod, ok, special


def _drop_space_marks(m: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8] | None:
    """Rows whose only non-ASCII is one U+202F or U+00A0, in the same column in every row,
    with it replaced by a space; None otherwise."""
    for mark in (_NNBSP, _NBSP):
        k = len(mark)
        at = m[0].tolist()
        for j in range(m.shape[1] - k + 1):
            if tuple(at[j : j + k]) == mark:
                same = np.ones(m.shape[0], bool)
                for t, b in enumerate(mark):
                    same &= m[:, j + t] == b
                out = np.concatenate(
                    (m[:, :j], np.full((m.shape[0], 1), 32, np.uint8), m[:, j + k :]), axis=1
                )
                if same.all() and not (out >= 128).any():
                    return out
                return None
    return None


# --- the scanner -------------------------------------------------------------------------------


@dataclass
class _Out:
    """Arrays collected per block."""

    hr_utc: list[I64] = field(default_factory=list)
    hr_off: list[I64] = field(default_factory=list)
    hr_bpm: list[F64] = field(default_factory=list)
    hr_unit: list[I64] = field(default_factory=list)
    hr_src: list[I64] = field(default_factory=list)
    hr_dev: list[I64] = field(default_factory=list)
    v_type: list[I64] = field(default_factory=list)
    v_src: list[I64] = field(default_factory=list)
    v_unit: list[I64] = field(default_factory=list)
    v_start: list[I64] = field(default_factory=list)
    v_end: list[I64] = field(default_factory=list)
    v_value: list[F64] = field(default_factory=list)
    hrv_utc: list[I64] = field(default_factory=list)
    hrv_off: list[I64] = field(default_factory=list)
    hrv_end: list[I64] = field(default_factory=list)
    beat_rec: list[I64] = field(default_factory=list)
    beat_sod: list[I64] = field(default_factory=list)
    beat_ok: list[BOOL] = field(default_factory=list)
    beat_bpm: list[F64] = field(default_factory=list)


class _Block:
    """One block's buffer and values, and what its groups of tags gave."""

    def __init__(
        self,
        buf: bytearray,
        view: Callable[[int], npt.NDArray[np.void]],
        vs: I64,
        vl: I64,
    ) -> None:
        self.buf = buf
        self.view = view
        self.vs = vs
        self.vl = vl
        self.unread: list[I64] = []  # values not read: checked only if the counts disagree
        self.spent = 0  # bytes < 0x20, >= 0x80, "&" and "<" inside the values read
        #: (tag numbers, utc, offsets, bpm, unit, sourceName, device ids)
        self.hr: list[tuple[Any, ...]] = []
        #: (tag numbers, type, sourceName, unit ids, start, end, values)
        self.vendor: list[tuple[Any, ...]] = []
        self.hrv: list[tuple[I64, I64, I64, I64]] = []

    def raw(self, v: int) -> bytes:
        s = int(self.vs[v])
        return bytes(self.buf[s : s + int(self.vl[v])])

    def plain_except(self, base: I64, attrs: list[int], read: tuple[int, ...]) -> None:
        """Note the values of every column of a group whose attribute is not in ``read``."""
        for k, a in enumerate(attrs):
            if a not in read:
                self.unread.append(base + k)

    def check_unread(self) -> None:
        for v in self.unread:
            self.plain(v)

    def plain(self, v: I64) -> None:
        """Values not read must be plain (no ``<``, ``&``, controls or non-ASCII) or else
        decode as XML allows."""
        if not v.size:
            return
        vs, vl = self.vs[v], self.vl[v]
        longest = int(vl.max())
        odd: npt.NDArray[np.intp]
        if longest <= 256:
            w = _words(longest)
            m = self.view(8 * w)[vs].view(np.uint8).reshape(-1, 8 * w)
            bad = (m < 32) | (m >= 128) | (m == ord("&")) | (m == ord("<"))
            bad &= np.arange(8 * w) < vl[:, None]
            odd = np.flatnonzero(bad.any(axis=1))
        else:
            odd = np.arange(v.size)
        seen: set[bytes] = set()
        for i in odd.tolist():
            raw = self.raw(int(v[i]))
            if raw not in seen:
                decode_attribute(raw)
                seen.add(raw)


class _Scanner:
    def __init__(self, path: str, like: _Scanner | None = None) -> None:
        """A scanner; ``like``: another whose names, gap programs and strings (caches, the
        same for any part of a file) this one shares."""
        self.path = path
        if like is None:
            self.elems: dict[str, int] = {name: i for i, name in enumerate(_ELEMS)}
            self.attrs: dict[str, int] = {name: i for i, name in enumerate(_ATTRS_ALL)}
            self.gaps = _Gaps(self.elems, self.attrs)
            self.strings = _Strings()
        else:
            self.elems, self.attrs = like.elems, like.attrs
            self.gaps, self.strings = like.gaps, like.strings
        self.col = ah._Collector(path, lambda needle, start, end: None)
        self.out = _Out()
        self.first = True  # the next block starts the document
        self.root_open = False
        self.stack: list[int] = []  # open elements, outermost first
        self.cur = -1  # element of the tag the last value belongs to
        self.n_hrv = 0
        self.n_blocks = 0
        self.type_cat = np.zeros(0, np.int8)
        self.offset = 0  # file offset of the buffer's first byte
        self.other_calls: list[tuple[str, dict[str, str]]] = []  # Workout, Me, ...: in order
        #: a scan that starts inside the document (the second half of a split): its first
        #: gap's start and end tags are kept for the seam check instead of being checked
        self.seam: list[tuple[int, str]] | None = None
        self.orphans = False  # keep beats before the first HRV record (rec -1) for the seam
        #: such beats (record -1, time of day, readable, bpm), collected
        self.orphan_beats: list[tuple[I64, I64, BOOL, F64]] = []
        # the buffer
        self.buf = bytearray(BLOCK + _PAD)
        self.fill = 0
        self.q = np.empty(0, np.int64)

    # the block ---------------------------------------------------------------------------------
    def block(self, buf: bytearray, n: int, q: I64) -> None:
        """Scan ``buf[:n]``: it starts where a gap starts and ends just after a value; ``q``
        holds the positions of its quotes. Every gap is identified exactly; every value is
        either read (and so checked by its reader) or checked to be plain ASCII."""

        def view(size: int) -> npt.NDArray[np.void]:
            return np.ndarray((len(buf) - size + 1,), f"S{size}", buf, 0, (1,))

        a = np.frombuffer(buf, np.uint8, n)
        nv = q.size // 2
        vs = q[0::2] + 1
        vl = q[1::2] - vs
        gs = np.empty(nv, np.int64)
        gs[0] = 0
        gs[1:] = q[1:-1:2] + 1
        gl = q[0::2] - gs
        gaps = self.gaps
        first_gap = gaps.ident(bytes(buf[: int(gl[0])]), first=True) if self.first else -1
        gid, tfv, groups = gaps.identify(buf, view, a, gs, gl, first_gap)
        del a
        if len(groups) > max(_MAX_GROUPS, tfv.size // 8):
            raise Declined(
                f"tags of too many different forms for this reader (near byte {self.offset})"
            )
        kind = gaps.kind[gid[tfv]]
        if (kind[1:] == FIRST).any() or kind[0] == CONT:
            raise Declined("markup out of place")  # pragma: no cover - the grammar prevents it
        elem_t = gaps.opens[gid[tfv]]
        self._nesting(gid[tfv], elem_t, at=self.offset)
        self.cur = int(elem_t[-1])
        cnt = np.diff(tfv, append=nv)
        blk = _Block(buf, view, vs, vl)
        beats: list[tuple[I64, I64, list[int]]] = []
        gap_bytes = 0  # "<" and controls in the gaps
        others: list[tuple[int, str, dict[str, str]]] = []
        attr_names = {i: name for name, i in self.attrs.items()}
        for tags in groups:
            t0 = int(tags[0])
            c = int(cnt[t0])
            seq = gid[tfv[t0] : tfv[t0] + c]
            attrs = gaps.attr[seq].tolist()
            gap_bytes += int(gaps.n_lt[seq[1:]].sum() + gaps.n_ws[seq[1:]].sum()) * tags.size
            if len(set(attrs)) != c:
                raise Declined("an attribute given twice in one tag")
            base = tfv[tags]
            e = int(elem_t[t0])
            if e == REC:
                self._records(blk, tags, base, attrs)
            elif e == BEAT:
                beats.append((tags, base, attrs))
                blk.plain_except(base, attrs, (A_BPM, A_TIME))
            elif WORKOUT <= e <= ME:
                name = _ELEMS[e]
                for t, b in zip(tags.tolist(), base.tolist(), strict=True):
                    attrib = {}
                    for k, at in enumerate(attrs):
                        raw = blk.raw(b + k)
                        attrib[attr_names[at]] = _decode_cached(raw)
                        blk.spent += sum(_special_counts(raw))
                    others.append((t, name, attrib))
            else:
                blk.plain_except(base, attrs, ())
        hrv_tags = self._finish_records(blk)
        if beats:
            self._beats(blk, beats, hrv_tags)
        # the bytes XML restricts inside values: if the values read do not account for all of
        # them, the values not read are checked one by one
        total = 0
        for s0 in range(0, n, _SUB):
            p = np.frombuffer(buf, np.int8, min(_SUB, n - s0), s0)
            total += int(np.count_nonzero(p < 32))  # as int8: the bytes < 0x20 and >= 0x80
            total += int(np.count_nonzero(p == 38)) + int(np.count_nonzero(p == 60))
            del p
        opening = gid[tfv]
        expected = blk.spent + gap_bytes + int(gaps.n_lt[opening].sum() + gaps.n_ws[opening].sum())
        if total != expected:
            blk.check_unread()
        self.n_hrv += hrv_tags.size
        others.sort(key=lambda x: x[0])
        self.other_calls += [(name, attrib) for _, name, attrib in others]
        self.n_blocks += 1
        if self.n_blocks % _COLLECT_EVERY == 0:  # as it goes: little is left at the end
            self.collect()

    def _nesting(self, gid_o: I64, elem_t: I64, at: int) -> None:
        """Check the start and end tags met in this block's gaps (see the module docstring)."""
        gaps = self.gaps
        ntags = elem_t.size
        nev = gaps.n_ev[gid_o]
        delta = gaps.delta[gid_o]
        if self.seam is None and not self.root_open and not self.first:
            # the first gap of a scan that starts inside the document: its tags are checked
            # against the first half's state when the halves are joined
            prog = gaps.progs[int(gid_o[0])]
            names = {i: n for n, i in self.elems.items()}
            self.seam = [(d, "" if n == CURRENT else names[n]) for d, n in prog.events]
            nev, delta = nev.copy(), delta.copy()
            nev[0] = delta[0] = 0
            self.root_open = True
            self.stack = [HEALTH]
            gid_o = gid_o.copy()
        depth0 = len(self.stack)
        # depth after each opening gap: every tag opened must be inside the root
        after = depth0 + np.cumsum(delta)
        lo = 1 if self.first else 0
        if ntags > lo and (after[lo:] < 1).any():
            raise Declined("an element after the end of the root element")
        if self.first:
            if elem_t[0] != HEALTH:
                raise Declined("root element is not HealthData")  # pragma: no cover
            self.first = False
        total = int(nev.sum())
        if not total:
            return
        rep = np.repeat(np.arange(ntags), nev)
        local = np.arange(total) - np.repeat(np.cumsum(nev) - nev, nev)
        flat = gaps.ev_off[gid_o][rep] + local + (gaps.n_ev[gid_o] - nev)[rep]
        d = gaps.ev_d[flat]
        nm = gaps.ev_n[flat].copy()
        prev = np.empty(ntags, np.int64)
        prev[0] = self.cur
        prev[1:] = elem_t[:-1]
        cur = nm == CURRENT
        nm[cur] = prev[rep[cur]]
        before = depth0 + np.cumsum(d) - d
        level = np.where(d > 0, before, before - 1)
        skip = 0
        if not self.root_open:
            if d[0] != 1 or nm[0] != HEALTH or level[0] != 0:
                raise Declined("root element is not HealthData")  # pragma: no cover
            self.root_open = True
            skip = 1
        if (level[skip:] < 1).any():
            raise Declined("an end tag without its start tag, or a second root element")
        top = int(level.max())
        if top >= _MAX_DEPTH:
            raise Declined("elements nested deeper than this reader follows")
        stack = self.stack + [-1] * (top + 1 - len(self.stack))
        if skip:
            stack[0] = HEALTH
        for lv in range(1, top + 1):
            idx = np.flatnonzero(level == lv)
            if not idx.size:
                continue
            dd, nn = d[idx], nm[idx]
            if lv < depth0:  # an element open at this level from before
                dd = np.concatenate(([1], dd))
                nn = np.concatenate(([stack[lv]], nn))
            if (dd[0::2] != 1).any() or (dd[1::2] != -1).any():
                raise Declined("start and end tags that do not pair up")
            k = dd.size // 2 * 2
            if (nn[0:k:2] != nn[1:k:2]).any():
                raise Declined("an end tag that does not match its start tag")
            if dd.size % 2:
                stack[lv] = int(nn[-1])
        depth = depth0 + int(d.sum())
        self.stack = stack[:depth]

    def _records(self, blk: _Block, tags: I64, base: I64, attrs: list[int]) -> None:
        """Read one group of Record tags (the same attributes in the same order)."""
        col = {a: k for k, a in enumerate(attrs)}
        strings = self.strings
        n = tags.size
        j = [col.get(a, -1) for a in range(A_VALUE + 1)]
        blk.plain_except(base, attrs, tuple(range(A_VALUE + 1)))
        # the four strings: a record whose bytes from its type to its unit equal the record
        # before it's has the same four (the quotes in those bytes place them alike)
        ids4 = np.full((n, 4), -1, np.int64)
        jt, js, jd, ju = j[A_TYPE], j[A_SOURCE], j[A_DEVICE], j[A_UNIT]
        same = np.zeros(n, bool)
        if n > 1 and 0 <= jt < js < jd < ju:
            first = blk.vs[base + jt]
            span = blk.vs[base + ju] + blk.vl[base + ju] - first
            longest = int(span.max())
            if longest <= 512:
                nw = _words(longest)
                b = blk.view(8 * nw)[first].view(np.uint64).reshape(-1, nw)
                same[1:] = (span[1:] == span[:-1]) & (b[1:] == b[:-1]).all(axis=1)
        look = np.flatnonzero(~same)
        for k, jj in enumerate((jt, js, jd, ju)):
            if jj >= 0:
                v = base[look] + jj
                ids4[look, k] = strings.runs(blk.buf, blk.view, blk.vs[v], blk.vl[v])
        if look.size < n:  # copy forward into the runs of equal records
            ids4 = ids4[np.maximum.accumulate(np.where(same, 0, np.arange(n)))]
        types, src, unit = ids4[:, 0], ids4[:, 1], ids4[:, 3]
        used = ids4[ids4 >= 0]
        blk.spent += int(np.bincount(used, minlength=len(strings.text)) @ strings.special_array())
        hr_ids = ids4[:, [3, 1, 2]]  # unit, sourceName, device: as the heart rate keeps them
        cat = self._categories(types)

        def column(a: int, rows: I64, what: str) -> I64:
            if j[a] < 0:
                raise Declined(f"a Record without {what}")
            return base[rows] + j[a]

        def value(rows: I64) -> F64:
            if j[A_VALUE] < 0:
                return np.full(rows.size, np.nan)
            v = base[rows] + j[A_VALUE]
            val, sp = _numbers(blk.buf, blk.view, blk.vs[v], blk.vl[v], np.zeros(v.size, bool))
            blk.spent += sum(sp)
            return val

        def unread(a: int, rows: I64) -> None:
            if j[a] >= 0 and rows.size:
                blk.unread.append(base[rows] + j[a])

        h = np.flatnonzero(cat == 1)
        g = np.flatnonzero(cat >= 2)
        rest = np.flatnonzero(cat == 0)
        for a in (A_START, A_END, A_VALUE):
            unread(a, rest)
        unread(A_END, h)
        if h.size:
            v = column(A_START, h, "startDate")
            utc, off = _dates(blk.view, blk.vs[v], blk.vl[v], "heart rate startDate")
            i32 = np.int32
            blk.hr.append(
                (tags[h], utc, off.astype(i32), value(h), *(x[h].astype(i32) for x in hr_ids.T))
            )
        if g.size:
            v = column(A_START, g, "startDate")
            s_utc, s_off = _dates(blk.view, blk.vs[v], blk.vl[v], "startDate")
            v = column(A_END, g, "endDate")
            e_utc, _ = _dates(blk.view, blk.vs[v], blk.vl[v], "endDate")
            i32 = np.int32
            blk.vendor.append(
                (tags[g], *(x[g].astype(i32) for x in (types, src, unit)), s_utc, e_utc, value(g))
            )
            hrv = cat[g] == 3
            if hrv.any():
                blk.hrv.append((tags[g[hrv]], s_utc[hrv], s_off[hrv], e_utc[hrv]))

    def _finish_records(self, blk: _Block) -> I64:
        """Append the block's records in file order; returns the tag numbers of its HRV
        records, in order."""
        out = self.out
        if blk.hr:
            parts = [np.concatenate(x) for x in zip(*blk.hr, strict=True)]
            order = np.argsort(parts[0], kind="stable")
            hr_lists: tuple[list[Any], ...] = (
                out.hr_utc,
                out.hr_off,
                out.hr_bpm,
                out.hr_unit,
                out.hr_src,
                out.hr_dev,
            )
            for lst, arr in zip(hr_lists, parts[1:], strict=True):
                lst.append(arr[order])
        if blk.vendor:
            parts = [np.concatenate(x) for x in zip(*blk.vendor, strict=True)]
            order = np.argsort(parts[0], kind="stable")
            v_lists: tuple[list[Any], ...] = (
                out.v_type,
                out.v_src,
                out.v_unit,
                out.v_start,
                out.v_end,
                out.v_value,
            )
            for lst, arr in zip(v_lists, parts[1:], strict=True):
                lst.append(arr[order])
        if not blk.hrv:
            return np.empty(0, np.int64)
        parts = [np.concatenate(x) for x in zip(*blk.hrv, strict=True)]
        order = np.argsort(parts[0], kind="stable")
        out.hrv_utc.append(parts[1][order])
        out.hrv_off.append(parts[2][order])
        out.hrv_end.append(parts[3][order])
        return parts[0][order]

    def _categories(self, types: I64) -> npt.NDArray[np.int8]:
        """0: not read, 1: heart rate, 2: a vendor series, 3: HRV (a vendor series too)."""
        text = self.strings.text
        if self.type_cat.size < len(text):
            cats = [
                1 if t == ah._HR else 3 if t == ah._HRV else 2 if t in ah._VENDOR else 0
                for t in text[self.type_cat.size :]
            ]
            self.type_cat = np.concatenate((self.type_cat, np.array(cats, np.int8)))
        lut = np.concatenate((self.type_cat, [0])).astype(np.int8)  # id -1: no type
        return lut[types]

    def _beats(self, blk: _Block, groups: list[tuple[I64, I64, list[int]]], hrv: I64) -> None:
        """Read the InstantaneousBeatsPerMinute elements: each belongs to the last HRV record
        before it (as the reference reader counts them); ``hrv``: the block's HRV tags."""
        parts = []
        for tags, base, attrs in groups:
            rec = self.n_hrv + np.searchsorted(hrv, tags) - 1
            keep = rec >= (-1 if self.orphans else 0)  # before any HRV record: none's
            bpm_col = base + attrs.index(A_BPM) if A_BPM in attrs else None
            time_col = base + attrs.index(A_TIME) if A_TIME in attrs else None
            if not keep.all():  # not read: only checked
                for c in (bpm_col, time_col):
                    if c is not None:
                        blk.unread.append(c[~keep])
                tags, rec = tags[keep], rec[keep]
                bpm_col = None if bpm_col is None else bpm_col[keep]
                time_col = None if time_col is None else time_col[keep]
            n = tags.size
            if not n:
                continue
            if bpm_col is not None:
                v = bpm_col
                bpm, sp = _numbers(blk.buf, blk.view, blk.vs[v], blk.vl[v], np.zeros(n, bool))
                blk.spent += sum(sp)
            else:
                bpm = np.full(n, np.nan)
            if time_col is not None:
                v = time_col
                sod, ok, sp = _beat_times(blk.buf, blk.view, blk.vs[v], blk.vl[v], np.ones(n, bool))
                blk.spent += sum(sp)
            else:
                sod, ok = np.zeros(n, np.int64), np.zeros(n, bool)
            parts.append((tags, rec, sod, ok, bpm))
        if not parts:
            return
        tags, rec, sod, ok, bpm = (np.concatenate(x) for x in zip(*parts, strict=True))
        order = np.argsort(tags, kind="stable")
        out = self.out
        out.beat_rec.append(rec[order])
        out.beat_sod.append(sod[order])
        out.beat_ok.append(ok[order])
        out.beat_bpm.append(bpm[order])

    def epilog(self, tail: bytes) -> None:
        """After the last value: the end of its tag, end tags, white space, nothing else."""
        m = _EPILOG.match(tail)
        if m is None:
            raise Declined(f"markup this reader does not take on, at the end: {_show(tail[-60:])}")
        stack = list(self.stack)
        if not m.group("slash"):
            stack.append(self.cur)
        for t in _MIDTAG.finditer(m.group("mid")):
            end, name, empty = t.group(1), t.group(2).decode("ascii"), t.group(3)
            if end:
                if not stack or _name(self.elems, stack[-1]) != name:
                    raise Declined("an end tag that does not match its start tag")
                stack.pop()
                continue
            if name in _ACTS_WITHOUT_ATTRIBUTES:
                raise Declined(f"<{name}> without attributes")
            if not stack:
                raise Declined("an element after the end of the root element")
            if not empty:
                stack.append(self.elems.setdefault(name, len(self.elems)))
        if stack:
            raise Declined("truncated: elements left open at the end")

    # the result -------------------------------------------------------------------------------
    def collect(self) -> None:
        """Give what was read so far to the collector, whose own code (the reference
        reader's) converts and counts it; each list of block arrays is joined and let go in
        turn, so memory stays near the size of the output. Called again, it adds what was
        read since. Beats read before the scan's first HRV record (a scan that starts inside
        the document) are kept aside in :attr:`orphan_beats` for the half before."""
        col, out, text = self.col, self.out, self.strings.text
        n_text = len(text) + 1
        if out.hr_utc:
            unit = _take(out.hr_unit)
            odd: list[tuple[int, str | None]] = []
            present = np.flatnonzero(np.bincount(unit + 1)) - 1  # -1: no unit attribute
            for u in present[present >= 0].tolist():
                if text[u] != "count/min":
                    odd += [(i, text[u]) for i in np.flatnonzero(unit == u).tolist()]
            del unit
            odd.sort()
            col._add_hr(_take(out.hr_utc), _take(out.hr_off), _take(out.hr_bpm), odd)
            src_ids: I64 = _take(out.hr_src).astype(np.int64)
            dev_ids: I64 = _take(out.hr_dev).astype(np.int64)
            key = (src_ids + 1) * n_text + dev_ids + 1
            # runs of equal keys first (a source writes thousands of records in a row): the
            # grouping then works on the runs, a few thousand, not on a million records
            r0, r_len = _runs(key)
            keys, first, inverse = np.unique(key[r0], return_index=True, return_inverse=True)
            counts = np.bincount(inverse, weights=r_len, minlength=keys.size).astype(np.int64)
            order = np.argsort(first)  # in order of first appearance, as the reference counts
            for k, c in zip(keys[order].tolist(), counts[order].tolist(), strict=True):
                s, d = divmod(k, n_text)
                pair = (text[s - 1] if s else None, text[d - 1] if d else None)
                col.hr_sources[pair] = col.hr_sources.get(pair, 0) + c
        if out.hrv_utc:
            col.hrv_utc.append(_take(out.hrv_utc))
            col.hrv_off.append(_take(out.hrv_off))
            col.hrv_utc_end.append(_take(out.hrv_end))
        if out.v_type:
            type_ids: I64 = _take(out.v_type).astype(np.int64)
            src_ids = _take(out.v_src).astype(np.int64)
            key = type_ids * n_text + src_ids + 1
            vunit = _take(out.v_unit)
            start, end, value = _take(out.v_start), _take(out.v_end), _take(out.v_value)
            r0, r_len = _runs(key)
            run_keys = key[r0]
            if np.unique(run_keys).size == run_keys.size:
                # each series is one run (exports group records by type): slices, no sort
                by_key = np.argsort(run_keys)
                groups: list[Any] = [
                    slice(a, a + n)
                    for a, n in zip(r0[by_key].tolist(), r_len[by_key].tolist(), strict=True)
                ]
                group_keys = run_keys[by_key].tolist()
            else:
                order = _stable_order(key)
                ks = key[order]
                b = np.flatnonzero(np.concatenate(([True], ks[1:] != ks[:-1], [True]))).tolist()
                groups = [order[b[i] : b[i + 1]] for i in range(len(b) - 1)]
                group_keys = ks[b[:-1]].tolist()
                del order, ks
            for k, idx in zip(group_keys, groups, strict=True):
                t, s = divmod(k, n_text)
                units = vunit[idx]
                if (units == units[0]).all():
                    ulist = [text[int(units[0])] if units[0] >= 0 else ""] * units.size
                else:
                    ulist = [text[u] if u >= 0 else "" for u in units.tolist()]
                col._add_vendor(
                    text[t], text[s - 1] if s else "", start[idx], end[idx], value[idx], ulist
                )
            del key, vunit, start, end, value, groups
        if out.beat_rec:
            rec: I64 = _take(out.beat_rec).astype(np.int64)
            sod, ok, bpm = _take(out.beat_sod), _take(out.beat_ok), _take(out.beat_bpm)
            lead = int(np.searchsorted(rec, 0))  # rec is ascending: orphans (-1) lead
            if lead:
                self.orphan_beats.append((rec[:lead], sod[:lead], ok[:lead], bpm[:lead]))
            if lead < rec.size:
                col.add_beats(rec[lead:], sod[lead:], ok[lead:], bpm[lead:])

    def recording(self) -> Recording:
        """The Recording: what is left is collected, the workouts and other elements are
        given to the collector in file order, and the collector assembles the result."""
        self.collect()
        col = self.col
        self.buf = bytearray(0)
        # the UTC offsets as one pass over all the heart rate would have met them
        col.offsets = dict(sorted(col.offsets.items()))
        for tag, attrib in self.other_calls:
            col._other(tag, attrib)
        if col.workouts:
            try:
                s_utc, _ = ah.parse_dates([w.attrib.get("startDate", "") for w in col.workouts])
                e_utc, _ = ah.parse_dates([w.attrib.get("endDate", "") for w in col.workouts])
            except ah.BadDate:
                raise Declined("an unreadable Workout date") from None
            for w, s_, e_ in zip(col.workouts, s_utc.tolist(), e_utc.tolist(), strict=True):
                w.utc = (s_, e_)
        rec = col.recording()
        rec.meta["apple_health_reader"] = "fast"
        return rec


def _runs(key: I64) -> tuple[I64, I64]:
    """Start and length of each run of equal values of ``key`` (non-empty)."""
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    return starts, np.diff(np.append(starts, key.size))


def _stable_order(key: I64) -> I64:
    """``np.argsort(key, kind="stable")``, computed over the runs of equal keys: the runs are
    ordered (stably, by key) and each expands to its consecutive positions."""
    if key.size == 0:
        return np.empty(0, np.int64)
    starts, lengths = _runs(key)
    if starts.size * 8 > key.size:  # few long runs only: otherwise a plain sort is as good
        return np.argsort(key, kind="stable").astype(np.int64)
    run_order = np.argsort(key[starts], kind="stable")
    s, n = starts[run_order], lengths[run_order]
    # positions: each run's start repeated over its length, plus 0, 1, 2 ... within the run
    offsets = np.arange(key.size, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    return np.repeat(s, n) + offsets


def _take(parts: list[npt.NDArray[_G]]) -> npt.NDArray[_G]:
    """The arrays of a list joined, the list emptied."""
    out = np.concatenate(parts)
    parts.clear()
    return out


def _name(elems: dict[str, int], ident: int) -> str:
    for name, i in elems.items():
        if i == ident:
            return name
    return "?"  # pragma: no cover


# --- reading -----------------------------------------------------------------------------------


def _root_start(head: bytes) -> int:
    """Offset of ``<HealthData`` in the prepared head: only a BOM, the XML declaration and
    white space (where the DOCTYPE was) may come before it."""
    i = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    m = _XMLDECL.match(head, i)
    if m is not None:
        enc = m.group("e1") or m.group("e2")
        if enc is not None and enc.lower() != b"utf-8":
            raise Declined(f"encoding declared as {enc.decode('ascii')!r}")
        i = m.end()
    elif head.startswith(b"<?xml", i):
        raise Declined("an XML declaration this reader does not take on")
    while i < len(head) and head[i] in b" \t\r\n":
        i += 1
    if _ROOT.match(head, i) is None:
        raise Declined("something other than white space before the root element")
    return i


def _quotes(a: npt.NDArray[np.uint8], start: int, end: int) -> I64:
    parts = [np.flatnonzero(a[s : min(s + _SUB, end)] == 34) + s for s in range(start, end, _SUB)]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


class _Source:
    """Bytes for a scan: ``pending`` first, then the stream (or the file descriptor, read
    with ``pread`` from ``offset``), up to ``limit`` bytes in all (None: to the end).
    ``before_read``, when given, is called with the bytes given so far before each read and
    may return a limit (bytes in all) to set, or -1: no limit, and no more calls."""

    def __init__(
        self,
        pending: memoryview,
        fp: BinaryIO | None = None,
        fd: int | None = None,
        offset: int = 0,
        limit: int | None = None,
        before_read: Callable[[int], int | None] | None = None,
    ) -> None:
        self.pending = pending
        self.fp = fp
        self.fd = fd
        self.offset = offset
        self.left = limit
        self.given = 0
        self.before_read = before_read

    def into(self, mv: memoryview) -> int:
        if self.before_read is not None:
            limit = self.before_read(self.given)
            if limit is not None and limit >= 0:
                self.left = limit - self.given
            elif limit is not None:  # no limit, and no more calls
                self.before_read = None
        if self.left is not None:
            mv = mv[: self.left]
        if not mv.nbytes:
            return 0
        if self.pending.nbytes:
            n = min(self.pending.nbytes, mv.nbytes)
            mv[:n] = self.pending[:n]
            self.pending = self.pending[n:]
        elif self.fd is not None:
            n = os.preadv(self.fd, [mv], self.offset)
            self.offset += n
        elif self.fp is not None:
            readinto = getattr(self.fp, "readinto", None)
            if readinto is not None:
                n = readinto(mv) or 0
            else:
                data = self.fp.read(mv.nbytes)
                n = len(data)
                mv[:n] = data
        else:
            n = 0
        if self.left is not None:
            self.left -= n
        self.given += n
        return n


def _run(sc: _Scanner, src: _Source, final: bool) -> None:
    """Scan what ``src`` gives. With ``final`` the document must end there (the epilog);
    else the last tag (which may go on after the end) is kept in the buffer."""
    eof = False
    while True:
        buf, fill = sc.buf, sc.fill
        old = fill
        target = max(BLOCK, fill + BLOCK // 2)
        if len(buf) < target + _PAD:
            bigger = bytearray(target + _PAD)
            bigger[:fill] = buf[:fill]
            buf = sc.buf = bigger
        mv = memoryview(buf)
        while fill < target and not eof:
            got = src.into(mv[fill:target])
            fill += got
            eof = not got
        del mv
        sc.fill = fill
        sc.q = np.concatenate((sc.q, _quotes(np.frombuffer(buf, np.uint8, fill), old, fill)))
        if eof:
            break
        q = sc.q
        lt = buf.rfind(b"<", 0, fill)
        k = int(np.searchsorted(q, lt)) if lt >= 0 else 0  # quotes before the last "<"
        if k % 2:
            raise Declined(f'"<" inside an attribute value (near byte {sc.offset + lt})')
        if k < 2:  # no whole value before the last tag yet: a long element, read on
            if fill > _MAX_CARRY:
                raise Declined("an element longer than this reader takes on")
            bigger = bytearray(fill + BLOCK + _PAD)
            bigger[:fill] = buf[:fill]
            sc.buf = bigger
            continue
        _cut(sc, int(q[k - 1]) + 1, k)
    q = sc.q
    if not final:
        lt = sc.buf.rfind(b"<", 0, sc.fill)
        k = int(np.searchsorted(q, lt)) if lt >= 0 else 0
        if k >= 2 and k % 2 == 0:
            _cut(sc, int(q[k - 1]) + 1, k)
        return
    if q.size % 2:
        raise Declined("truncated inside an attribute value")
    if q.size:
        _cut(sc, int(q[-1]) + 1, q.size)
    elif sc.first:
        raise Declined("an export without a single attribute")
    sc.epilog(bytes(sc.buf[: sc.fill]))


def _cut(sc: _Scanner, cut: int, k: int) -> None:
    """Scan ``buf[:cut]`` (its first ``k`` quotes) and keep the rest for the next block."""
    buf = sc.buf
    sc.block(buf, cut, sc.q[:k])
    rest = sc.fill - cut
    buf[:rest] = buf[cut : sc.fill]
    sc.q = sc.q[k:] - cut
    sc.fill = rest
    sc.offset += cut


def _cut_at_value_end(sc: _Scanner) -> None:
    """Scan what is left in the buffer when it ends just after a value (the end of a part
    whose next part begins with the end of the tag)."""
    q = sc.q
    if q.size and q.size % 2 == 0 and int(q[-1]) + 1 == sc.fill:
        _cut(sc, sc.fill, q.size)


PARALLEL_MIN: Final = 48 << 20  # exports at least this long are read by two processes
_SEAM: Final = re.compile(
    rb'"/?>(?:[ \t\r\n]*</[A-Za-z_][A-Za-z0-9._-]*[ \t\r\n]*>)*[ \t\r\n]*\n <Record[ \t\r\n]'
)
#: how long this process reads alone while the other cores' idle time is measured
_IDLE_PROBE_S: Final = 0.04
#: what is left is shared out in pieces: each takes this fraction of what is not yet taken,
#: at least :data:`_MIN_PIECE` bytes (smaller pieces near the end even out the two halves)
_PIECE_SHARE: Final = 3
_MIN_PIECE: Final = 8 << 20
#: how far a place to cut is looked for (no such place: the piece runs on to the next part)
_SEAM_SEARCH: Final = 16 << 20
#: how long, at least, this process waits for the other one's parts once it has read its own
_WAIT_S: Final = 30.0


def scan(fp: BinaryIO, head: bytes, *, path: str, parallel: bool = True) -> Recording:
    """Read an export whose first bytes ``head`` (as prepared by the reference reader: prolog
    checked, DOCTYPE blanked) were just read from ``fp``; raise :class:`Declined` for anything
    the scanner does not take on (the caller then reads the file again with
    :func:`~actidose.ingest.apple_health.read_reference`).

    A regular file of at least :data:`PARALLEL_MIN` bytes is read from its start by this
    process; after :data:`_IDLE_PROBE_S`, if another core was idle meanwhile, a forked
    process reads the file from its end, piece by piece (see :class:`_Split`), while this
    one reads on from where it is, until they meet. The other process's pieces are joined
    in file order, each only when the part before it ends exactly where the piece began
    with the piece's assumption (that it starts directly inside ``HealthData``) true; from
    the first piece that does not join, this process reads the rest itself."""
    start = _root_start(head)
    sc = _Scanner(path)
    sc.offset = start
    split = _Split.of(fp, head, start, path) if parallel else None
    if split is None:
        _run(sc, _Source(memoryview(head)[start:], fp), final=True)
        return sc.recording()
    src = _Source(memoryview(head)[start:], fp, before_read=split)
    try:
        _run(sc, src, final=False)
        if split.child is None:  # it read to the end alone
            _run(sc, _Source(memoryview(b"")), final=True)
            return sc.recording()
        sc.collect()  # while the other process may still be at work
    except BaseException:
        split.abandon()
        raise
    return _join_all(sc, fp, split.origin + src.given, split.end, split.result())


def _join_all(
    sc: _Scanner, fp: BinaryIO, pos: int, end: int, pieces: list[tuple[int, Any]]
) -> Recording:
    """The Recording of a file this process has read up to ``pos`` (of ``end``), with the
    parts the other process read (file offset, part or why not): they are joined in file
    order as long as each begins where the one before ended and checks out; this process
    reads the rest itself from there (and, if it read to the end itself, checks the end)."""
    if pieces and pieces[0][0] == pos < end and isinstance(pieces[0][1], dict):
        # the next part was read (so it begins with the end of a tag): the last tag here is
        # whole, if this part ends just after a value
        _cut_at_value_end(sc)
    if sc.fill == 0 and pos < end:
        for at, piece in pieces:
            if at != pos or not isinstance(piece, dict) or not _join(sc, piece):
                break
            pos = piece["end"]
        if pos == end:  # the last part joined was read to the end and its end checked
            return sc.recording()
    sc.offset = pos - sc.fill
    fp.seek(pos)
    _run(sc, _Source(memoryview(b""), fp), final=True)
    return sc.recording()


class _Split:
    """A two-process read of one file, arranged from :meth:`_Source.into` (this object is
    the source's ``before_read``) while this process reads the first blocks.

    After :data:`_IDLE_PROBE_S`, if :func:`_idle_core` says another core was idle
    meanwhile, what is left is shared out: this process takes pieces from the front, the
    forked one from the back, each piece :data:`_PIECE_SHARE` of what is not yet taken (at
    least :data:`_MIN_PIECE`), cut where a line starts a top-level ``<Record`` (the
    positions taken by each side are kept in shared memory under a lock). This process
    reads its pieces on as one part; the other reads each piece as a part of its own and
    sends them all at the end. Neither waits for the other until they meet."""

    def __init__(self, fd: int, origin: int, end: int, path: str) -> None:
        self.fd = fd
        self.origin = origin  # file offset of the scan's first byte
        self.end = end
        self.path = path
        self.since: tuple[float, tuple[int, int] | None] | None = None
        self.limit = -1  # file offset where this process's pieces end (-1: not split)
        self.child: Any = None
        self.recv: Any = None
        self.taken: Any = None  # (front, back): file offsets taken up to and from
        self.lock: Any = None
        self.memfd: int | None = None
        self.started = 0.0  # when the other process was started (perf_counter)

    @classmethod
    def of(cls, fp: BinaryIO, head: bytes, start: int, path: str) -> _Split | None:
        """A split for this file, or None where there can be none (not a regular file, too
        short, one core, threads running, not Linux)."""
        if not sys.platform.startswith("linux") or threading.active_count() > 1:
            # forking a process that runs threads is not safe, nor is forking one that uses
            # macOS's system frameworks (numpy's Accelerate)
            return None
        if (os.cpu_count() or 1) < 2:
            return None
        try:
            fd = fp.fileno()
            st = os.fstat(fd)
            pos = fp.tell()
        except (AttributeError, OSError, ValueError):
            return None
        base = pos - len(head)
        if not stat.S_ISREG(st.st_mode) or base < 0 or st.st_size - base < PARALLEL_MIN:
            return None
        return cls(fd, base + start, st.st_size, path)

    def __call__(self, given: int) -> int | None:
        """Called before each read with the bytes read so far: None (read on), the bytes
        this process may read in all, or -1 (no limit: it reads to the end alone)."""
        pos = self.origin + given
        if self.child is not None:
            if pos < self.limit:
                return None
            nxt = self._take_front()
            self.limit = pos if nxt is None else nxt
            return self.limit - self.origin
        now = time.perf_counter()
        if self.since is None:
            self.since = (now, _cpu_times())
            if _IDLE_PROBE_S > 0:
                return None
        elif now - self.since[0] < _IDLE_PROBE_S:
            return None
        if self.end - pos < PARALLEL_MIN // 2 or not _idle_core(self.since[1]):
            return -1
        first = _seam_after(self.fd, pos + (self.end - pos) // _PIECE_SHARE, self.end)
        if first is None:
            return -1
        ctx = multiprocessing.get_context("fork")
        try:  # where the other process leaves its arrays (in memory; Linux)
            self.memfd = os.memfd_create("actidose-part", os.MFD_CLOEXEC)
        except (AttributeError, OSError):
            self.memfd = None
        self.taken = ctx.RawArray("q", [first, self.end])
        self.lock = ctx.Lock()
        recv, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=self._other, args=(send,), daemon=True)
        try:
            child.start()
        except (OSError, AssertionError, ValueError):  # no process to be had: read on alone
            recv.close()
            send.close()
            if self.memfd is not None:
                os.close(self.memfd)
            return -1
        send.close()
        self.child, self.recv, self.limit = child, recv, first
        self.started = time.perf_counter()
        return first - self.origin

    def _take_front(self) -> int | None:
        """The end of the next piece from the front (this process), or None."""
        with self.lock:
            front, back = self.taken[0], self.taken[1]
            if front >= back:
                return None
            want = front + max(_MIN_PIECE, (back - front) // _PIECE_SHARE)
            cut = None if want >= back - _MIN_PIECE else _seam_after(self.fd, want, back)
            self.taken[0] = back if cut is None else cut
            return int(self.taken[0])

    def _take_back(self) -> tuple[int, int] | None:
        """The next piece from the back (the other process), or None."""
        with self.lock:
            front, back = self.taken[0], self.taken[1]
            if back <= front:
                return None
            want = back - max(_MIN_PIECE, (back - front) // _PIECE_SHARE)
            cut = None if want <= front + _MIN_PIECE else _seam_after(self.fd, want, back)
            self.taken[1] = front if cut is None else cut
            return int(self.taken[1]), int(back)

    def _other(self, send: Any) -> None:
        """The forked process: read pieces from the back until the two meet, each as a part
        of its own (:func:`_read_piece`), and send them in file order."""
        pieces: list[tuple[int, Any]] = []
        like: _Scanner | None = None
        try:
            while (piece := self._take_back()) is not None:
                at, to = piece
                got: dict[str, Any] | str
                try:
                    sc, got = _read_piece(self.fd, at, to, to == self.end, self.path, like)
                    like = sc
                except Declined as exc:
                    got = str(exc)
                except Exception as exc:
                    got = f"reading bytes {at}-{to} failed: {exc!r}"
                pieces.append((at, got))
                if not isinstance(got, dict):
                    break  # the other process reads on from there
        finally:
            pieces.sort(key=lambda p: p[0])
            try:
                send.send(self._sent(pieces))
            finally:
                send.close()

    def _sent(self, pieces: list[tuple[int, Any]]) -> Any:
        """What goes through the pipe: the pickled parts written to the shared memory file
        (the arrays as they are, out of band), and their sizes; or the parts themselves
        where there is no such file or writing to it fails."""
        if self.memfd is None:
            return pieces
        buffers: list[pickle.PickleBuffer] = []
        data = pickle.dumps(pieces, protocol=5, buffer_callback=buffers.append)
        views = [memoryview(data), *(b.raw() for b in buffers)]
        try:
            for v in views:
                while v.nbytes:
                    v = v[os.write(self.memfd, v) :]
        except OSError:
            return pieces
        return ("memfd", [memoryview(data).nbytes, *(b.raw().nbytes for b in buffers)])

    def result(self) -> list[tuple[int, Any]]:
        """The other process's parts, in file order, as (file offset, part or why not); none
        when it has not sent them within :data:`_WAIT_S` (or four times as long as this
        process has read since the split, if longer): it is stopped and this process reads
        the rest itself."""
        patience = max(_WAIT_S, 4 * (time.perf_counter() - self.started))
        try:
            if not self.recv.poll(patience):
                self.child.terminate()
                raise TimeoutError
            got = self.recv.recv()
            if isinstance(got, tuple) and got[0] == "memfd" and self.memfd is not None:
                got = _loads(self.memfd, got[1])
        except Exception:  # nothing usable came: this process reads on itself
            got = []
        finally:
            self.recv.close()
            self.child.join()
            if self.memfd is not None:
                os.close(self.memfd)
        return got if isinstance(got, list) else []

    def abandon(self) -> None:
        if self.child is not None:
            self.child.terminate()
            self.child.join()
            self.recv.close()
            if self.memfd is not None:
                os.close(self.memfd)


def _loads(fd: int, sizes: list[int]) -> Any:
    """Unpickle what :meth:`_Split._sent` wrote to the file ``fd``: its arrays stay in a
    private (copy-on-write) mapping of the file, not copied."""
    mm = mmap.mmap(fd, sum(sizes), flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    mv = memoryview(mm)
    bounds = np.cumsum([0, *sizes]).tolist()
    parts = [mv[a:b] for a, b in itertools.pairwise(bounds)]
    return pickle.loads(parts[0], buffers=parts[1:])


def _seam_after(fd: int, at: int, stop: int) -> int | None:
    """The first place at or after ``at`` and before ``stop`` where a line starts a
    top-level ``<Record`` just after the end of a tag (a file offset just after a value's
    closing quote), or None; looked for over :data:`_SEAM_SEARCH` bytes at most. (Read in
    windows that overlap by 4 KiB: a place whose end tags and white space run longer than
    that across two windows would be passed over.)"""
    step, overlap = 1 << 18, 1 << 12
    at = max(at - 1, 0)  # from the quote before the place
    give_up = at + _SEAM_SEARCH
    while at < stop and at < give_up:
        window = os.pread(fd, min(step, stop - at) + overlap, at)
        m = _SEAM.search(window)
        if m is not None:
            cut = at + m.start() + 1
            return cut if cut < stop else None
        if len(window) <= overlap:
            return None
        at += len(window) - overlap
    return None


def _read_piece(
    fd: int, at: int, to: int, final: bool, path: str, like: _Scanner | None
) -> tuple[_Scanner, dict[str, Any]]:
    """Scan [at, to) as a part of its own (it starts just after a value, directly inside
    ``HealthData``), hand what it read to its own collector (placing its beats in time,
    except those before its first HRV record), and return what :func:`_join` needs."""
    sc = _Scanner(path, like)
    sc.first = False
    sc.orphans = True
    sc.offset = at
    _run(sc, _Source(memoryview(b""), fd=fd, offset=at, limit=to - at), final=final)
    if not final:
        _cut_at_value_end(sc)
        if sc.fill or sc.seam is None:
            raise Declined(f"bytes {at}-{to} do not end just after a value")
    sc.buf = bytearray(0)
    sc.collect()
    col = sc.col
    # the beats of the last HRV record are placed with those of a later part that belong to
    # it (a record's beats are placed in time together)
    tail: list[tuple[I64, I64, BOOL, F64]] = []
    if col.beats and sc.n_hrv:
        keep = []
        for rec, sod, ok, bpm in col.beats:  # in file order: records ascending
            k = int(np.searchsorted(rec, sc.n_hrv - 1))
            if k:
                keep.append((rec[:k], sod[:k], ok[:k], bpm[:k]))
            if k < rec.size:
                tail.append((rec[k:], sod[k:], ok[k:], bpm[k:]))
        col.beats[:] = keep
    col.place_beats()
    names = {i: n for n, i in sc.elems.items()}
    part = {
        "end": to,
        "hr_ts": col.hr_ts,
        "hr_bpm": col.hr_bpm,
        "offsets": col.offsets,
        "hr_sources": col.hr_sources,
        "parts": col.parts,
        "rr_ts": col.rr_ts,
        "rr_ms": col.rr_ms,
        "warn": col.warn,
        "hrv": (col.hrv_utc, col.hrv_off, col.hrv_utc_end),
        "orphans": sc.orphan_beats,
        "tail_beats": tail,
        "other_calls": sc.other_calls,
        "seam": sc.seam,
        "stack": [names.get(i, "") for i in sc.stack],
        "cur": names.get(sc.cur, ""),
        "n_hrv": sc.n_hrv,
    }
    return sc, part


def _idle_core(since: tuple[int, int] | None) -> bool:
    """Whether another core was free while this process read alone: the idle time of all
    cores since ``since`` (``/proc/stat``, taken when this process began reading) adds up
    to at least half a core. Without ``/proc/stat``: the 1-minute load average below the
    number of cores less one (a lagging measure that counts this process's own recent
    work)."""
    n = os.cpu_count() or 1
    if n < 2:
        return False
    now = _cpu_times()
    if since is not None and now is not None and now[1] > since[1]:
        return (now[0] - since[0]) / (now[1] - since[1]) * n >= 0.5
    try:
        return os.getloadavg()[0] < n - 1
    except OSError:
        return False


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs, or None where ``/proc/stat`` cannot be read."""
    try:
        with open("/proc/stat", "rb") as f:
            first = f.readline().split()
    except OSError:
        return None
    if len(first) < 5 or first[0] != b"cpu":
        return None
    ticks = [int(x) for x in first[1:9]]
    return ticks[3] + (ticks[4] if len(ticks) > 4 else 0), sum(ticks)


def _add_counts(into: dict[_K, int], more: dict[_K, int]) -> None:
    for k, n in more.items():
        into[k] = into.get(k, 0) + n


def _join(sc: _Scanner, part: dict[str, Any]) -> bool:
    """Add a part read by the other process to what this one has (which ends where the part
    begins); False (nothing changed) when the seam does not check out."""
    seam = part["seam"]
    if seam is None:
        return False
    names = {i: n for n, i in sc.elems.items()}
    stack = [names.get(i, "") for i in sc.stack]
    for d, name in seam:
        name = name or names.get(sc.cur, "")
        if d > 0:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    if stack != ["HealthData"]:
        return False
    sc.collect()
    col = sc.col
    col.hr_ts += part["hr_ts"]
    col.hr_bpm += part["hr_bpm"]
    _add_counts(col.offsets, part["offsets"])
    _add_counts(col.hr_sources, part["hr_sources"])
    _add_counts(col.warn, part["warn"])
    for key, p in part["parts"].items():  # a series' records: the parts' in file order
        mine = col.parts.get(key)
        if mine is None:
            col.parts[key] = p
        else:
            mine.start += p.start
            mine.end += p.end
            mine.value += p.value
    if sc.n_hrv:  # beats before the part's first HRV record: the last one's before it
        for rec, sod, ok, bpm in part["orphans"]:
            col.add_beats(np.full(rec.size, sc.n_hrv - 1, np.int64), sod, ok, bpm)
    col.place_beats()  # the beats so far, before the part's
    col.rr_ts += part["rr_ts"]
    col.rr_ms += part["rr_ms"]
    for have, more in zip((col.hrv_utc, col.hrv_off, col.hrv_utc_end), part["hrv"], strict=True):
        have += more
    # the beats of its last HRV record: placed later, with any that follow for that record
    col.beats += [(rec + sc.n_hrv, *rest) for rec, *rest in part["tail_beats"]]
    sc.other_calls.extend(part["other_calls"])
    sc.n_hrv += part["n_hrv"]
    sc.stack = [sc.elems.setdefault(n, len(sc.elems)) for n in part["stack"]]
    sc.cur = sc.elems.setdefault(part["cur"], len(sc.elems)) if part["cur"] else -1
    sc.offset = part["end"]
    return True
