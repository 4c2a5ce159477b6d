"""A columnar FIT decoder: the file structure in Python, data messages as numpy arrays.

FIT data messages of one *definition* all have the same layout, so the messages of a definition
can be decoded together. :func:`scan` walks the record headers — definitions, developer field
definitions (skipped by size), normal and compressed-timestamp headers — with a tight loop that
takes runs of records of one local type at a fixed stride (and of two alternating ones, such as
record/hrv) with one numpy comparison, and checks every CRC (:mod:`actidose.ingest.fitfast_crc`).
It yields, per distinct layout, the offsets of all its messages. :func:`column` then decodes one
field of a layout for all its messages at once: the field's bytes of every message as an
``(n, size)`` array (a zero-copy strided view where the messages sit at a fixed stride, a
gather otherwise) viewed as the field's numpy type in the definition's byte order, with FIT's
invalid values as a mask; :func:`ints_at` does the same for one field across layouts (the
timestamps of every message).

The decoder mirrors what the reference decoder (``fitdecode``, see :mod:`actidose.ingest.fit`)
makes of the same bytes, including its treatment of damage, so that both give the same
:class:`~actidose.recording.Recording` and the same errors: "truncated at offset N",
"bad CRC at offset N", "bad header CRC", "corrupt data at offset N: ...". Where the reference
decoder would do something this decoder does not reproduce (fields of size 0, developer fields
whose size is not a multiple of their type, component fields of odd types, chained headers of
unusual sizes, ...), :class:`Fallback` is raised with the reason, and the caller reads the file
with the reference decoder instead.

The whole stream is held in memory: its bytes, plus index arrays of about 150 bytes per data
message at the peak of reading it (a 3 MB file of 260,000 records peaks at 45 MB). Fine for real
FIT files (activity files are a few MB, monitoring files less) and workable up to a few hundred
MB.

FIT facts used (FIT SDK "FIT Protocol"): §3.3.1 file header (12 or 14 bytes, header CRC over
bytes 0..11 when 14, 0 = not computed), data size, ``.FIT``; §3.3.2 record header (bit 7
compressed timestamp: local type in bits 5-6, time offset in bits 0-4; else bit 6 definition,
bit 5 developer data, local type in bits 0-3); §3.3.3 definition message (reserved, architecture
0 little / 1 big endian, global number, fields of (number, size, base type), developer fields of
(number, size, developer data index)); §3.3.7 compressed timestamps (5-bit offsets rolled over
from the last full timestamp); §3.3.11 CRC; §3.5 chained FIT files. Base types and their invalid
values: "FIT base types" table.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import fitdecode.profile as _profile
import fitdecode.types as _fdtypes
import numpy as np
import numpy.typing as npt

from actidose.ingest.fitfast_crc import crc16

__all__ = [
    "BYTE",
    "STRING",
    "Column",
    "Damage",
    "Definition",
    "Fallback",
    "FieldDef",
    "Scan",
    "base_size",
    "column",
    "ints_at",
    "kind_of",
    "raw_values",
    "scan",
]

# -- base types (protocol "FIT base types"): id -> (struct code, size, invalid value, kind) ----

BYTE: Final = 0x0D
STRING: Final = 0x07
#: kind: "i" integer, "z" integer whose invalid value is 0, "f" float, "s" string, "b" bytes
_BASE: Final[dict[int, tuple[str, int, int, str]]] = {
    0x00: ("B", 1, 0xFF, "i"),  # enum
    0x01: ("b", 1, 0x7F, "i"),  # sint8
    0x02: ("B", 1, 0xFF, "i"),  # uint8
    0x83: ("h", 2, 0x7FFF, "i"),  # sint16
    0x84: ("H", 2, 0xFFFF, "i"),  # uint16
    0x85: ("i", 4, 0x7FFFFFFF, "i"),  # sint32
    0x86: ("I", 4, 0xFFFFFFFF, "i"),  # uint32
    0x07: ("s", 1, 0, "s"),  # string
    0x88: ("f", 4, 0, "f"),  # float32 (invalid: NaN)
    0x89: ("d", 8, 0, "f"),  # float64
    0x0A: ("B", 1, 0, "z"),  # uint8z
    0x8B: ("H", 2, 0, "z"),  # uint16z
    0x8C: ("I", 4, 0, "z"),  # uint32z
    0x0D: ("B", 1, 0xFF, "b"),  # byte (invalid when every byte is 0xFF)
    0x8E: ("q", 8, 0x7FFFFFFFFFFFFFFF, "i"),  # sint64
    0x8F: ("Q", 8, 0xFFFFFFFFFFFFFFFF, "i"),  # uint64
    0x90: ("Q", 8, 0, "z"),  # uint64z
}
_SIZE_OF_BASE: Final = {k: v[1] for k, v in _BASE.items()}

_F_TIMESTAMP: Final = 253
_MESG_FIELD_DESCRIPTION: Final = 206
_MESG_DEVELOPER_DATA_ID: Final = 207
_MESG_HR: Final = 132
_F_HR_EVENT_TIMESTAMP_12: Final = 10
#: (global message, field) pairs read column-wise by the Recording builder: 64-bit types there
#: would overflow the int64 arithmetic the reference does with Python integers
_VECTOR_FIELDS: Final = frozenset(
    [(20, 3), (78, 0)]
    + [(55, f) for f in (2, 3, 5, 19, 24, 26, 27, 33, 34)]
    + [(132, f) for f in (0, 1, 6, 9)]
    + [(23, f) for f in (0, 1, 2, 4, 25)]
)


class Fallback(Exception):
    """The file holds something this decoder does not reproduce exactly; ``reason`` says what.
    The caller reads the file with the reference decoder."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Damage(Exception):
    """Decoding stopped at damage: ``reason`` and the absolute byte ``offset`` as the reference
    reader reports them."""

    def __init__(self, reason: str, offset: int) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(reason)


@dataclass(frozen=True)
class FieldDef:
    """One native field of a definition: number, size in bytes, the base type the reference
    decoder uses (unknown types and sizes that are not a multiple of the type become ``byte``),
    and the byte offset in the message (after the record header)."""

    num: int
    size: int
    base: int
    offset: int


@dataclass
class Definition:
    """A message layout (the content of one or more identical definition messages, whatever
    their local number) and the data messages that use it.

    ``pos`` is the offset of its first definition message; ``size`` the bytes after the record
    header (developer fields included); ``problem`` why messages of this layout need the
    reference decoder (None when they do not); ``warnings`` (key, text) the reference reader
    gives for every such definition message; ``code`` the record size the walk uses (or a
    negative marker); ``offsets`` (set by :func:`scan`) the offsets of the record headers of
    its data messages, ascending."""

    index: int
    pos: int
    global_num: int
    big_endian: bool
    fields: tuple[FieldDef, ...]
    size: int
    problem: str | None
    warnings: tuple[tuple[str, str], ...]
    code: int
    offsets: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    key: bytes = b""  # the definition message's bytes after its reserved byte

    def last(self, num: int) -> FieldDef | None:
        """The last native field with number ``num`` (the one a field dict keeps)."""
        found = None
        for f in self.fields:
            if f.num == num:
                found = f
        return found

    def all(self, num: int) -> list[FieldDef]:
        return [f for f in self.fields if f.num == num]


@dataclass
class Scan:
    """What :func:`scan` found. ``damage`` is set when decoding stopped early (every message
    before it is listed); ``parts`` holds ``(header offset, body start)`` of every FIT file
    whose header was read; ``warnings`` are ``(offset, key, text)`` of odd definitions."""

    data: bytes
    base: int
    u8: npt.NDArray[np.uint8]
    defs: list[Definition]
    parts: list[tuple[int, int]]
    damage: Damage | None
    warnings: list[tuple[int, str, str]]


# -- definitions: what the reference decoder would make of them ------------------------------


def _profile_field(global_num: int, num: int) -> Any:
    mt = _profile.MESSAGE_TYPES.get(global_num)
    return None if mt is None else mt.fields.get(num)


def _declared_base(fld: Any) -> Any:
    t = fld.type
    return t if isinstance(t, _fdtypes.BaseType) else getattr(t, "base_type", None)


def _misaligned(global_num: int, f: FieldDef) -> tuple[str, str] | None:
    """The reference reader's warning for a profile field decoded as bytes although its type
    is not ``byte`` and the size is not a multiple of the type (``fit._State.definition``)."""
    if f.base != BYTE:
        return None
    fld = _profile_field(global_num, f.num)
    if fld is None:
        return None
    declared = _declared_base(fld)
    size = getattr(declared, "size", 1) or 1
    if declared is _fdtypes.BASE_TYPE_BYTE or not f.size % size:
        return None
    mesg = _profile.MESSAGE_TYPES[global_num].name
    return (
        f"misaligned:{mesg}.{fld.name}",
        f"field {mesg}.{fld.name} has size {f.size}, not a multiple of its type "
        f"({getattr(declared, 'name', '?')}); decoded as bytes",
    )


def _component_problem(global_num: int, f: FieldDef) -> str | None:
    """Whether the reference decoder's component expansion could fail on this field.

    It expands components (``Profile.xlsx``) of every field and raises ``TypeError`` on arrays
    with invalid elements and on accumulated float or string values; ``byte`` fields and
    single integers always expand."""
    fld = _profile_field(global_num, f.num)
    if fld is None:
        return None
    subs = fld.subfields or []
    comps = list(fld.components or []) + [c for s in subs for c in (s.components or [])]
    if not comps:
        return None
    if f.base == BYTE:
        return None
    _, size, _, kind = _BASE[f.base]
    accumulate = any(c.accumulate for c in comps)
    if f.size // size > 1 or (kind in "fs" and accumulate):
        name = _profile.MESSAGE_TYPES[global_num].name
        return f"component field {name}.{fld.name} of an unusual type or size"
    return None


# -- the walk --------------------------------------------------------------------------------

#: local message type of each record header byte, -1 for definition headers: normal data
#: headers ignore bits 4-5, compressed-timestamp headers (local 0-3) carry a 5-bit time offset
_LOCAL_OF: Final = [
    ((b >> 5) & 3) if b & 0x80 else (-1 if b & 0x40 else b & 0x0F) for b in range(256)
]
#: header bytes of the same local type match under this mask
_CLASS_MASK: Final = [0xE0 if b & 0x80 else 0xCF for b in range(256)]
_UNDEFINED: Final = 0  # size code: local type not defined
_PROBLEM: Final = -1  # size code: the definition needs the reference decoder
_DEV_DATA: Final = -2  # size code: developer data message, decoded while walking


class _Walker:
    def __init__(self, data: bytes, base: int) -> None:
        self.data = data
        self.base = base
        self.n = len(data)
        self.u8 = np.frombuffer(data, dtype=np.uint8)
        self.defs: list[Definition] = []
        self.parts: list[tuple[int, int]] = []
        self.warnings: list[tuple[int, str, str]] = []
        # runs of data messages: (definition, first offset, stride, count), flattened
        self.runs = array("q")
        self.size_of_local = [_UNDEFINED] * 16  # record size (header included) or a code
        self.def_of_local = [-1] * 16
        self.dev_types: dict[Any, dict[Any, int]] = {}  # index -> field number -> base size
        self.layouts: dict[bytes, Definition] = {}
        self.pending: Damage | None = None

    # -- errors as the reference reader reports them

    def truncated(self) -> Damage:
        at = self.base + self.n
        return Damage(f"truncated at offset {at}", at)

    def corrupt(self, p: int, text: str) -> Damage:
        at = self.base + p
        return Damage(f"corrupt data at offset {at}: {text}", at)

    def runs_past(self, p: int) -> Damage:
        return self.corrupt(
            p, "a message runs past the end of the data size given in the FIT header"
        )

    # -- structure

    def walk(self) -> Damage | None:
        data, n = self.data, self.n
        if n < 12 or data[0] not in (12, 14) or data[8:12] != b".FIT":
            return Damage("not a FIT file", self.base) if n >= 12 else self.truncated()
        pos = 0
        part_end: int | None = None
        while pos < n or part_end is None:
            if part_end is not None:
                # after a complete FIT file: another (chained) one, or stray bytes
                head = data[pos : pos + 12]
                if len(head) < 12:
                    # (the reference reports this even for the start of a header: its reader
                    # sees the short read as stray bytes)
                    return self.corrupt(
                        part_end,
                        f"{len(head)} bytes after the end of the FIT file that are not another "
                        "(chained) FIT file",
                    )
                hs = head[0]
                if hs < 12 or hs == 13 or head[8:12] != b".FIT":
                    return self.corrupt(
                        part_end,
                        "some bytes after the end of the FIT file that are not another "
                        "(chained) FIT file",
                    )
                if hs > 14:
                    raise Fallback(f"chained FIT header of {hs} bytes")
            hs = data[pos]
            if pos + hs > n:
                return self.truncated()
            if hs == 14:
                stored = data[pos + 12] | data[pos + 13] << 8
                if stored and stored != crc16(data[pos : pos + 12]):
                    at = self.base + pos
                    reason = "bad header CRC" if at == 0 else f"bad header CRC at offset {at}"
                    return Damage(reason, at)
            body_size = int.from_bytes(data[pos + 4 : pos + 8], "little")
            body_start = pos + hs
            body_end = body_start + body_size
            self.parts.append((pos, body_start))
            self.size_of_local = [_UNDEFINED] * 16  # definitions are per FIT file
            self.def_of_local = [-1] * 16
            self.dev_types = {}
            damage = self.body(body_start, body_end)
            if damage is not None:
                return damage
            if body_end + 2 > n:
                return self.truncated()
            stored = data[body_end] | data[body_end + 1] << 8
            if crc16(self.u8[pos:body_end]) != stored:
                at = self.base + body_end
                return Damage(f"bad CRC at offset {at}", at)
            pos = part_end = body_end + 2
        return None

    def body(self, p: int, body_end: int) -> Damage | None:
        """Walk the records of one FIT file's body. Runs of records of one local type at a
        fixed stride, or of two alternating ones, are taken with a numpy comparison."""
        data, n, u8 = self.data, self.n, self.u8
        size_of, def_of = self.size_of_local, self.def_of_local
        local_of, mask_of = _LOCAL_OF, _CLASS_MASK
        runs = self.runs
        limit = min(body_end, n)
        while p < body_end:
            if p >= n:
                return self.truncated()
            h = data[p]
            loc = local_of[h]
            if loc < 0:
                q = self.definition(p, h, body_end)
                if q < 0:
                    return self.pending
                p = q
                continue
            sz = size_of[loc]
            if sz <= 0:
                if sz == _UNDEFINED:
                    return self.corrupt(p, f"local message {loc} not defined")
                d = self.defs[def_of[loc]]
                if sz == _PROBLEM:
                    raise Fallback(d.problem or "unsupported definition")
                sz = 1 + d.size
                if p + sz > n:
                    return self.truncated()
                if p + sz > body_end:
                    return self.runs_past(p)
                self.developer_data(d, p)
                runs.extend((d.index, p, sz, 1))
                p += sz
                continue
            q = p + sz
            if q > limit:
                return self.truncated() if q > n else self.runs_past(p)
            m = mask_of[h]
            hm = h & m
            if q + sz <= limit and (data[q] & m) == hm:
                # a run of one local type: the first few records here, the rest with numpy
                k = 2
                r = q + sz
                while k < 12 and r + sz <= limit and (data[r] & m) == hm:
                    k += 1
                    r += sz
                if k == 12 and r + sz <= limit:
                    k = _run_length(u8, p, sz, m, hm, (limit - p) // sz, k)
                runs.extend((def_of[loc], p, sz, k))
                p += k * sz
                continue
            # alternating with the next record (e.g. record, hrv, record, hrv ...)?
            if q < limit:
                h2 = data[q]
                loc2 = local_of[h2]
                if loc2 >= 0 and loc2 != loc:
                    sz2 = size_of[loc2]
                    period = sz + sz2
                    if sz2 > 0 and p + 3 * period <= limit:
                        m2 = mask_of[h2]
                        hm2 = h2 & m2
                        if (
                            (data[p + period] & m) == hm
                            and (data[q + period] & m2) == hm2
                            and (data[p + 2 * period] & m) == hm
                            and (data[q + 2 * period] & m2) == hm2
                        ):
                            k = _pair_length(
                                u8, p, q, period, m, hm, m2, hm2, (limit - p) // period
                            )
                            runs.extend((def_of[loc], p, period, k, def_of[loc2], q, period, k))
                            p += k * period
                            continue
            runs.extend((def_of[loc], p, sz, 1))
            p = q
        return None

    def definition(self, p: int, h: int, body_end: int) -> int:
        """Parse the definition at ``p``; the offset after it, or -1 with ``self.pending``."""
        data, n = self.data, self.n
        if p + 6 > n:
            self.pending = self.truncated()
            return -1
        q = p + 6 + 3 * data[p + 5]
        if q > n:
            self.pending = self.truncated()
            return -1
        end = q
        dev_problem: str | None = None
        if h & 0x20:
            if q >= n:
                self.pending = self.truncated()
                return -1
            end = q + 1 + 3 * data[q]
            if end > n:
                self.pending = self.truncated()
                return -1
            # the reference registers unknown developer fields as bytes while reading
            for i in range(q + 1, end, 3):
                num, size, index = data[i], data[i + 1], data[i + 2]
                bsize = self.dev_types.setdefault(index, {}).setdefault(num, 1)
                if size == 0 or (size // bsize) * bsize != size:
                    dev_problem = "a developer field whose size is not a multiple of its type"
                elif num == _F_TIMESTAMP:
                    dev_problem = "a developer field numbered 253"
        if end > body_end:
            self.pending = self.runs_past(p)
            return -1
        # definitions repeat (some devices write one before every few messages): one
        # Definition per distinct layout, its messages decoded together
        key = data[p + 2 : end]
        d = self.layouts.get(key) if dev_problem is None else None
        if d is None:
            big, global_num, fields, size, problem, warnings = _layout(key, q - p - 2)
            if dev_problem is not None:
                problem = problem or dev_problem
            if problem is not None:
                code = _PROBLEM
            elif global_num in (_MESG_FIELD_DESCRIPTION, _MESG_DEVELOPER_DATA_ID):
                code = _DEV_DATA
            else:
                code = 1 + size
            d = Definition(
                len(self.defs), p, global_num, big, fields, size, problem, warnings, code, key=key
            )
            self.defs.append(d)
            if dev_problem is None:
                self.layouts[key] = d
        for w in d.warnings:
            self.warnings.append((p, *w))
        local = h & 0x0F
        self.size_of_local[local] = d.code
        self.def_of_local[local] = d.index
        return end

    def developer_data(self, d: Definition, p: int) -> None:
        """Keep the developer field types as the reference decoder does (only their sizes
        matter here: they decide how many bytes it reads for a developer field)."""
        raw = raw_values(self.data, p, d)
        first: dict[int, Any] = {}
        for f, v in zip(d.fields, raw, strict=True):
            first.setdefault(f.num, v)
        if d.global_num == _MESG_DEVELOPER_DATA_ID:
            index = first.get(3, _MISSING)
            if index is _MISSING:
                index = None
            elif type(index) is not int:
                raise Fallback("developer_data_id with an unusual developer_data_index")
            self.dev_types[index] = {}
            return
        index = first.get(0)
        if index is not None and type(index) is not int:
            raise Fallback("field_description with an unusual developer_data_index")
        if index not in self.dev_types:
            raise Fallback("field_description of an undeclared developer")
        num = first.get(1)
        base = first.get(2)
        if base is None:
            bsize = 1
        else:
            try:
                bsize = _fdtypes.BASE_TYPES[base].size
            except (KeyError, TypeError):
                raise Fallback("field_description with an unknown base type") from None
        try:
            self.dev_types[index][num] = bsize
        except TypeError:
            raise Fallback("field_description with an unusual field number") from None


_MISSING: Final = object()

_Layout = tuple[bool, int, tuple[FieldDef, ...], int, "str | None", tuple[tuple[str, str], ...]]


@lru_cache(maxsize=4096)
def _layout(spec: bytes, native_len: int) -> _Layout:
    """What the reference decoder makes of a definition message, from its bytes after the
    reserved byte (architecture, global number, field count, fields, developer fields):
    endianness, global number, fields (types and offsets as it reads them), the payload size,
    why messages of this layout need the reference decoder (None when they do not), and the
    warnings its reader gives. Cached: a cohort's files share a few hundred layouts."""
    big = spec[0] != 0
    global_num = int.from_bytes(spec[1:3], "big" if big else "little")
    problem: str | None = None
    fields: list[FieldDef] = []
    warnings: list[tuple[str, str]] = []
    offset = 0
    for i in range(4, native_len, 3):
        num, size, bt = spec[i], spec[i + 1], spec[i + 2]
        base = bt if bt in _BASE else BYTE
        if size % _SIZE_OF_BASE[base]:
            base = BYTE
        f = FieldDef(num, size, base, offset)
        fields.append(f)
        offset += size
        if size == 0:
            problem = problem or "a field of size 0"
            continue
        warn = _misaligned(global_num, f)
        if warn is not None:
            warnings.append(warn)
        _, bsize, _, kind = _BASE[base]
        if num == _F_TIMESTAMP and (kind not in "iz" or bsize > 4 or size != bsize):
            problem = problem or "a timestamp field of an unusual type"
        if (global_num, num) in _VECTOR_FIELDS and bsize == 8 and kind in "iz":
            problem = problem or "a 64-bit integer field"
        if global_num == _MESG_HR and num == _F_HR_EVENT_TIMESTAMP_12 and base != BYTE:
            problem = problem or "hr.event_timestamp_12 not stored as bytes"
        problem = problem or _component_problem(global_num, f)
    nd = spec[native_len] if len(spec) > native_len else 0
    dev = spec[native_len + 2 :: 3][:nd]  # developer fields: (number, size, index)
    if global_num in (_MESG_FIELD_DESCRIPTION, _MESG_DEVELOPER_DATA_ID) and nd:
        problem = problem or "developer data messages with developer fields"
    size = offset + sum(dev)
    return big, global_num, tuple(fields), size, problem, tuple(warnings)


def _run_length(
    u8: npt.NDArray[np.uint8], p: int, sz: int, m: int, hm: int, maxk: int, known: int
) -> int:
    """How many records of ``sz`` bytes from ``p`` on have a header of the same class (the
    first ``known`` are known to); at most ``maxk``. Windows grow 8-fold so short runs stay
    cheap and long runs take a few numpy steps."""
    k = known
    w = 64
    while k < maxk:
        hi = min(maxk, k + w)
        seg = u8[p + k * sz : p + (hi - 1) * sz + 1 : sz]
        bad = ((seg & m) if m != 0xFF else seg) != hm
        if bad.any():
            return k + int(bad.argmax())
        k = hi
        w <<= 3
    return k


def _pair_length(
    u8: npt.NDArray[np.uint8],
    p: int,
    q: int,
    period: int,
    m: int,
    hm: int,
    m2: int,
    hm2: int,
    maxk: int,
) -> int:
    """Like :func:`_run_length` for two alternating record classes (at ``p`` and ``q``,
    repeating every ``period`` bytes; the first three pairs are known to match)."""
    k = 3
    w = 32
    while k < maxk:
        hi = min(maxk, k + w)
        a = u8[p + k * period : p + (hi - 1) * period + 1 : period]
        b = u8[q + k * period : q + (hi - 1) * period + 1 : period]
        bad = ((a & m) != hm) | ((b & m2) != hm2)  # same length: whole pairs fit
        if bad.any():
            return k + int(bad.argmax())
        k = hi
        w <<= 3
    return k


def scan(data: bytes, base: int = 0) -> Scan:
    """Walk a FIT stream (one or several chained FIT files) and index its data messages.

    Parameters
    ----------
    data
        The whole stream, from its first header byte.
    base
        The offset of ``data[0]`` in the file, added to every offset reported.

    Returns
    -------
    Scan
        The definitions with the offsets of their data messages, the parts, the warnings about
        odd definitions, and the damage decoding stopped at (None when the stream is intact).

    Raises
    ------
    Fallback
        When the stream holds something only the reference decoder reproduces.
    """
    w = _Walker(data, base)
    damage = w.walk()
    if w.runs:
        r = np.frombuffer(w.runs, dtype=np.int64).reshape(-1, 4)
        d, start, stride, count = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
        total = int(count.sum())
        first = np.cumsum(count) - count
        within = np.arange(total, dtype=np.int64) - np.repeat(first, count)
        offs = np.repeat(start, count) + within * np.repeat(stride, count)
        dd = np.repeat(d, count)
        order = np.argsort(dd, kind="stable")
        offs, dd = offs[order], dd[order]
        bounds = np.searchsorted(dd, np.arange(len(w.defs) + 1))
        for i, df in enumerate(w.defs):
            df.offsets = offs[bounds[i] : bounds[i + 1]]
    return Scan(data, base, w.u8, w.defs, w.parts, damage, w.warnings)


# -- field values ----------------------------------------------------------------------------


def _parse_string(b: bytes) -> str | None:
    z = b.find(0)
    s = b if z < 0 else b[:z]
    return s.decode("utf-8", errors="replace") or None


_Unpacker = tuple[struct.Struct, list[tuple[str, int, int, int]]]
_UNPACKERS: dict[bytes, _Unpacker] = {}


def _unpacker(d: Definition) -> _Unpacker:
    """(cached by the definition's bytes)"""
    got = _UNPACKERS.get(d.key)
    if got is None:
        if len(_UNPACKERS) > 4096:
            _UNPACKERS.clear()
        got = _UNPACKERS[d.key] = _make_unpacker(d.fields, d.big_endian)
    return got


def _make_unpacker(fields: tuple[FieldDef, ...], big_endian: bool) -> _Unpacker:
    """One struct for all native ``fields`` and, per field, (kind, first value, number of
    values, invalid value)."""
    fmt = [">" if big_endian else "<"]
    plan: list[tuple[str, int, int, int]] = []
    i = 0
    for f in fields:
        code, size, invalid, kind = _BASE[f.base]
        if kind == "b":
            fmt.append(f"{f.size}B")
            plan.append(("b", i, f.size, 0))
            i += f.size
        elif kind == "s":
            fmt.append(f"{f.size}s")
            plan.append(("s", i, 1, 0))
            i += 1
        else:
            count = f.size // size
            fmt.append(f"{count}{code}")
            plan.append((kind, i, count, invalid))
            i += count
    return struct.Struct("".join(fmt)), plan


def raw_values(data: bytes, pos: int, d: Definition) -> list[Any]:
    """The raw values of the native fields of one data message, as the reference decoder
    gives them (for the few messages read one by one: file_id, session, ...).

    Parameters
    ----------
    data
        The stream (:attr:`Scan.data`).
    pos
        Offset of the message's record header (one of ``d.offsets``).
    d
        Its definition.

    Returns
    -------
    list
        One value per field of ``d.fields``: an int or float, None for FIT's invalid value,
        a tuple for arrays (None for invalid elements) and for ``byte`` fields (None when every
        byte is 0xFF), a str for strings (None when empty).
    """
    st, plan = _unpacker(d)
    vals = st.unpack_from(data, pos + 1)
    out: list[Any] = []
    for kind, i, count, invalid in plan:
        if kind == "b":
            b = vals[i : i + count]
            out.append(None if b.count(0xFF) == count else b)
        elif kind == "s":
            out.append(_parse_string(vals[i]))
        elif count == 1:
            v = vals[i]
            if kind == "i":
                out.append(None if v == invalid else v)
            elif kind == "z":
                out.append(None if v == 0 else v)
            else:
                out.append(None if v != v else v)
        else:
            seq = vals[i : i + count]
            if kind == "i":
                out.append(tuple(None if v == invalid else v for v in seq))
            elif kind == "z":
                out.append(tuple(None if v == 0 else v for v in seq))
            else:
                out.append(tuple(None if v != v else v for v in seq))
    return out


def ints_at(
    u8: npt.NDArray[np.uint8], at: npt.NDArray[np.int64], base: int, big_endian: bool
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Single integers at arbitrary byte offsets (e.g. field 253 of every message at once).

    Parameters
    ----------
    u8
        The stream as bytes (:attr:`Scan.u8`).
    at
        Byte offsets of the values.
    base
        Their FIT base type: an integer type of at most 4 bytes.
    big_endian
        Byte order of their definition.

    Returns
    -------
    values, valid
        int64 values, and which are not FIT's invalid value for the type.
    """
    code, size, invalid, kind = _BASE[base]
    vals = u8[at].astype(np.int64)
    for i in range(1, size):  # byte by byte: quicker than gathering (n, size) and viewing
        b = u8[at + i].astype(np.int64)
        vals = (vals << 8) | b if big_endian else vals | (b << (8 * i))
    if code in "bhi":  # signed
        top = 1 << (8 * size - 1)
        vals = np.where(vals >= top, vals - 2 * top, vals)
    return vals, (vals != 0 if kind == "z" else vals != invalid)


def kind_of(f: FieldDef) -> str:
    """How the reference decoder gives values of ``f``: "i"/"z" integers, "f" floats, "s"
    string, "b" bytes (see :class:`Column`)."""
    return _BASE[f.base][3]


def base_size(f: FieldDef) -> int:
    """The size of one value of ``f``'s base type (``f.size`` over it is the array length)."""
    return _BASE[f.base][1]


@dataclass
class Column:
    """One field of one definition, for all its data messages.

    ``kind``: "i" integer, "z" integer (invalid 0), "f" float, "b" bytes, "s" string;
    ``count`` values per message (a byte field's count is its size); ``values`` shape
    ``(n,)`` for scalar numbers, ``(n, count)`` otherwise; ``valid`` marks the values that are
    not FIT's invalid value (for bytes: per message, not all 0xFF)."""

    kind: str
    count: int
    values: npt.NDArray[Any]
    valid: npt.NDArray[np.bool_]


def _gather(s: Scan, d: Definition, f: FieldDef) -> npt.NDArray[np.uint8]:
    """The bytes of field ``f`` of every message of ``d``: shape (n, size), C-contiguous."""
    offs = d.offsets
    n = offs.size
    start = 1 + f.offset
    if n > 1:
        steps = np.diff(offs)
        stride = int(steps[0])
        if (steps == stride).all():
            view = np.lib.stride_tricks.as_strided(
                s.u8[int(offs[0]) + start :], shape=(n, f.size), strides=(stride, 1)
            )
            return np.ascontiguousarray(view)
    return s.u8[offs[:, None] + (start + np.arange(f.size, dtype=np.int64))]


def column(s: Scan, d: Definition, f: FieldDef) -> Column:
    """Decode one field of every data message of a definition at once.

    Parameters
    ----------
    s
        The scan the definition comes from.
    d
        The definition; its messages are ``d.offsets``.
    f
        One of ``d.fields``.

    Returns
    -------
    Column
        Values as a numpy array in native byte order (shape ``(n,)`` for single numbers,
        ``(n, count)`` for arrays and bytes) and the mask of values that are not FIT's invalid
        value.
    """
    raw = _gather(s, d, f)
    if f.base == BYTE:
        return Column("b", f.size, raw, ~(raw == 0xFF).all(axis=1))
    code, size, invalid, kind = _BASE[f.base]
    if kind == "s":
        return Column("s", f.size, raw, np.ones(raw.shape[0], dtype=bool))
    count = f.size // size
    dt = np.dtype(code).newbyteorder(">" if d.big_endian else "<")
    vals = raw.view(dt)
    if count == 1:
        vals = vals[:, 0]
    if kind == "f":
        valid = ~np.isnan(vals)
    elif kind == "z":
        valid = vals != 0
    else:
        valid = vals != vals.dtype.type(invalid)
    return Column(kind, count, vals.astype(vals.dtype.newbyteorder("=")), valid)
