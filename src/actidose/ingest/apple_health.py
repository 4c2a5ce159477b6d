"""Apple Health importer: heart rate, RR, vendor day series and workouts from ``export.xml``.

The Health app's "Export All Health Data" writes ``export.zip`` holding ``export.xml``; the
archive module opens the zip and hands us that member as a binary stream. What is read (element
and attribute names as Apple writes them; the DTD at the top of every export declares them):

* ``Record`` (attributes ``type``, ``sourceName``, ``device``, ``unit``, ``startDate``,
  ``endDate``, ``value``):

  - ``HKQuantityTypeIdentifierHeartRate`` (``count/min``) -> :attr:`Recording.hr`, at
    ``startDate``;
  - ``HKQuantityTypeIdentifierRestingHeartRate`` -> vendor ``resting_hr_bpm``,
    ``HeartRateVariabilitySDNN`` -> ``hrv_sdnn_ms``, ``StepCount`` -> ``steps``,
    ``AppleExerciseTime`` -> ``exercise_minutes``, ``ActiveEnergyBurned`` ->
    ``energy_active_kcal`` (kJ, J, cal converted), ``DistanceWalkingRunning`` -> ``distance_m``
    (km, mi, ft, yd, cm converted). Each value covers ``[startDate, endDate)``. One
    :class:`VendorSeries` per kind *and* ``sourceName`` (its ``origin``): iPhone and watch
    both count steps for the same minutes, and the pipeline must be able to choose.
* ``HeartRateVariabilityMetadataList/InstantaneousBeatsPerMinute`` (``bpm``, ``time``) inside an
  HRV record -> :attr:`Recording.rr`. These are *not* measured RR intervals: Apple gives an
  instantaneous heart rate per beat, as an integer bpm, so ``rr_ms = 60000 / bpm`` is derived
  (quantised: 60 bpm -> 1000 ms, 61 -> 983.6 ms) and stamped at the beat's time. ``time`` is a
  local wall-clock time of day without date or offset, written in the exporting phone's locale
  (``7:43:12.34 PM``, ``19:43:12,34``, U+202F before ``PM`` on iOS 17). It is placed on the
  record's local date in the record's UTC offset; a list that runs past local midnight moves to
  the next day. The phone formats ``time`` in *its* zone at export, which after travel is not
  the record's: when the first beat then falls outside ``[startDate - 60 s, endDate + 60 s]``
  the list is moved by the whole number of quarter hours that brings it back (counted in a
  warning).
* ``Workout`` (``workoutActivityType``, ``duration`` + ``durationUnit``, ``startDate``,
  ``endDate``; newer exports: child ``WorkoutStatistics`` of type HeartRate with ``average`` and
  ``maximum``) -> :class:`ActivityInfo` (``timer_s`` = duration, ``elapsed_s`` = end - start).
  A ``WorkoutActivity`` (one leg of a multisport workout) has statistics of its own; of
  several, those spanning the longest time (the workout's) are used.
* ``HealthData/@locale``, ``ExportDate/@value`` and the year of birth and sex from ``Me`` go to
  ``meta``. ``Record`` elements inside a ``Correlation`` repeat top-level ones (the DTD says
  so); Apple's correlations are blood pressure and food, none of the types read here.

Dates are ``YYYY-MM-DD HH:MM:SS ±HHMM`` (iOS 8 wrote ``YYYYMMDDHHMMSS±HHMM``), each with the
offset in effect when it was recorded, which changes with travel and daylight saving. They are
parsed as arrays (:func:`parse_dates`): no per-record ``datetime``. :attr:`Recording.utc_offset_s`
is the offset of most heart-rate records; ``meta["utc_offsets"]`` counts every one.

Heart-rate sensor (:attr:`Recording.sensor`): each HR record's ``sourceName`` and device name
(``device`` ``name:...``) are matched against chest straps (Polar H7/H9/H10, Wahoo TICKR,
Garmin HRM, ...) and watches (``Watch`` in the name). ``"chest_strap"`` when strap records are
more than half of all HR, ``"optical"`` when every HR record is from a watch, else
``"unknown"``. ``meta["hr_sources"]`` lists every ``sourceName`` with its HR count,
``meta["hr_devices"]`` every device name; :attr:`Recording.device` is the most frequent. A heart
rate without ``unit`` is taken as ``count/min``; other units than count/min and count/s give
NaN (counted in a warning).

Safety (:mod:`actidose.ingest.xmlsafe`): the prolog is checked first (any ``<!ENTITY`` is
refused, and so is a DOCTYPE that points to an external DTD); then the DOCTYPE is replaced by
blanks of the same length (newlines kept, so lines and byte offsets stay true) before libxml2
sees it. Nothing in the DTD is ever interpreted; this is also what makes the malformed DTD of
iOS 16 exports (``ATTLIST`` declarations never closed, see ``apple_health_writer.DTD_IOS16``)
harmless. The parser expands no entity and touches no network. Control characters, which iOS
16 leaves in some values (U+000B), are not XML: when libxml2 stops at one, a seekable stream is
read again with C0 controls replaced by spaces, and a warning says how many.

Two readers, one result. :func:`read` runs the fast scanner
(:mod:`actidose.ingest.apple_health_fast`: numpy over the bytes; on one core about 2.2x the
speed of a plain ``lxml.etree.iterparse`` pass over a 1 GB export, about 3.4x on two cores,
the second half of a regular file of 48 MB and more read by a forked process when a core is
idle) and hands
whatever it does not take on (any form of markup exports do not use, and every kind of
damage) to :func:`read_reference`, which reads the file again from its start;
``meta["apple_health_reader"]`` says which ran (``"fast"``, ``"lxml"``, or ``"lxml (<why the
scanner handed over>)"``). Both give the same Recording, to the byte: the scanner reads
attribute values as this libxml2 does (white space normalised, ``&amp;`` reported as
``&#38;``, which both then turn back into ``&``), and the reference reader's results do not
depend on how its input is cut into windows (vendor values keep file order when units change,
RR beats are placed per record once all its beats are read, warnings come in sorted order).

The reference reader: lxml's parser-target interface (SAX) is fed 256 KiB chunks and no
element tree is built. A ``start`` callback copies the few attributes needed into lists (no
``end`` callback: see :class:`_Collector`); every 2 MiB of input they become numpy arrays,
all dates of the window in one :func:`parse_dates` call. Memory is the output arrays (16
bytes per HR sample) plus one window's strings, whatever the file size.
``benchmarks/apple_health_bench.py`` measures :func:`read` against a plain
``lxml.etree.iterparse`` pass over the same file.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import BinaryIO, Final, TypeVar

import numpy as np
import numpy.typing as npt
from lxml import etree

from actidose.errors import InputError
from actidose.ingest import xmlsafe
from actidose.recording import (
    TS_DTYPE,
    ActivityInfo,
    HRSeries,
    ReadContext,
    Recording,
    RRSeries,
    VendorSeries,
)

__all__ = ["BadDate", "detect", "parse_beat_times", "parse_dates", "read", "read_reference"]

_T = TypeVar("_T")
_ROOT: Final = b"HealthData"
_HR: Final = "HKQuantityTypeIdentifierHeartRate"
_HRV: Final = "HKQuantityTypeIdentifierHeartRateVariabilitySDNN"
_Q: Final = "HKQuantityTypeIdentifier"

#: Record type -> (vendor kind, our unit, {Apple unit: factor to our unit}).
_VENDOR: Final[dict[str, tuple[str, str, dict[str, float]]]] = {
    _Q + "RestingHeartRate": ("resting_hr_bpm", "bpm", {"count/min": 1.0, "count/s": 60.0}),
    _HRV: ("hrv_sdnn_ms", "ms", {"ms": 1.0, "s": 1000.0}),
    _Q + "StepCount": ("steps", "steps", {"count": 1.0}),
    _Q + "AppleExerciseTime": ("exercise_minutes", "min", {"min": 1.0, "s": 1 / 60, "hr": 60.0}),
    _Q + "ActiveEnergyBurned": (
        "energy_active_kcal",
        "kcal",
        {"kcal": 1.0, "Cal": 1.0, "kJ": 1 / 4.184, "J": 1 / 4184.0, "cal": 1 / 1000.0},
    ),
    _Q + "DistanceWalkingRunning": (
        "distance_m",
        "m",
        {"m": 1.0, "km": 1000.0, "mi": 1609.344, "ft": 0.3048, "yd": 0.9144, "cm": 0.01},
    ),
}
_HR_UNITS: Final = {"count/min": 1.0, "count/s": 60.0}
_DURATION_UNITS: Final = {"min": 60.0, "s": 1.0, "hr": 3600.0, "h": 3600.0, "ms": 0.001}

#: ``HKWorkoutActivityType...`` -> (sport, sub_sport) in the FIT vocabulary used everywhere
#: else; other types become the snake_case of their name (``Yoga`` -> ``"yoga"``).
_SPORTS: Final[dict[str, tuple[str, str | None]]] = {
    "Running": ("running", None),
    "Cycling": ("cycling", None),
    "Walking": ("walking", None),
    "Hiking": ("hiking", None),
    "Swimming": ("swimming", None),
    "Rowing": ("rowing", None),
    "HighIntensityIntervalTraining": ("hiit", None),
    "TraditionalStrengthTraining": ("training", "strength_training"),
    "FunctionalStrengthTraining": ("training", "strength_training"),
    "Elliptical": ("fitness_equipment", "elliptical"),
    "StairClimbing": ("fitness_equipment", "stair_climbing"),
    "CrossCountrySkiing": ("cross_country_skiing", None),
    "Soccer": ("soccer", None),
    "Basketball": ("basketball", None),
    "Tennis": ("tennis", None),
    "Other": ("other", None),  # as the TCX importer names TCX's "Other"
}

_STRAP: Final = re.compile(
    r"polar\s*h\d+|\bh(?:7|9|10)\b|tickr|\bhrm\b|\bhrm[-\s]?(?:pro|dual|run|tri|swim|fit)"
    r"|heart\s*rate\s*(?:belt|strap)|chest\s*strap|\bcoospo\b|\bmovesense\b|smart\s*sensor",
    re.I,
)
_WATCH: Final = re.compile(r"watch", re.I)
_DEVICE_NAME: Final = re.compile(r"\bname:([^,>]*)")

CHUNK: Final = 1 << 18  # bytes fed to libxml2 at a time (smaller is slightly faster)
FLUSH: Final = 2 << 20  # bytes between conversions of the collected strings to arrays
_QUARTER_H_S: Final = 900
_US: Final = 1_000_000
_MAX_OFFSET_S: Final = 14 * 3600

_CTRL: Final = bytes(c for c in range(32) if c not in (9, 10, 13))
_CTRL_TO_SPACE: Final = bytes(32 if c in _CTRL else c for c in range(256))
_KEEP_NEWLINES: Final = bytes(c if c in (10, 13) else 32 for c in range(256))
_DOCTYPE: Final = re.compile(rb"<!DOCTYPE", re.I)
_COMMENT: Final = re.compile(rb"<!--.*?-->", re.S)
_EXTERNAL_ID: Final = re.compile(rb"<!DOCTYPE\s+[^\s\[>]+\s+(?:SYSTEM|PUBLIC)\b", re.I)
_ENCODING: Final = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF8_NAMES: Final = {b"utf-8", b"utf8", b"us-ascii", b"ascii"}
_LXML_WHERE: Final = re.compile(r", line \d+, column \d+(?: \(<string>, line \d+\))?")


def detect(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file; 4 KiB suffice) is an Apple Health export:
    its root element is ``HealthData``, or it starts (after the XML declaration) with
    ``<!DOCTYPE HealthData`` whose long internal DTD hides the root beyond ``head``."""
    if xmlsafe.root_name(head) == _ROOT:
        return True
    body = _COMMENT.sub(b"", xmlsafe.skip_leading_space(head))
    if body.startswith(b"<?xml"):
        end = body.find(b"?>")
        body = body[end + 2 :].lstrip(b" \t\r\n") if end >= 0 else b""
    return re.match(rb"<!DOCTYPE\s+HealthData[\s\[>]", body) is not None


def read(
    fp: BinaryIO,
    *,
    path: str,
    salvage: bool = False,
    ctx: ReadContext,
) -> Recording:
    """Read an Apple Health ``export.xml`` stream into a :class:`Recording`
    (``format="apple_health"``, ``kind="allday"``, workouts in ``activities``).

    Tries the fast scanner (:mod:`actidose.ingest.apple_health_fast`) first; whatever it does
    not take on (anything outside the plain element-and-attribute XML that exports are made
    of, and every kind of damage) is read again from the start by :func:`read_reference`,
    which gives the same Recording on every file the scanner takes. ``meta
    ["apple_health_reader"]`` says which ran: ``"fast"``, or ``"lxml (<why>)"``. A stream that
    cannot seek goes to the reference reader directly (the scanner needs to be able to hand
    over). Errors, salvage and everything read are as described in :func:`read_reference`.
    """
    from actidose.ingest import apple_health_fast  # the scanner uses this module's parts

    base = _tell(fp)
    if base is None:
        rec = read_reference(fp, path=path, salvage=salvage, ctx=ctx)
        rec.meta["apple_health_reader"] = "lxml (stream not seekable)"
        return rec
    head = fp.read(xmlsafe.PROLOG_LIMIT)
    if not isinstance(head, bytes | bytearray):
        raise InputError("not a binary stream", path=path, offset=0)
    head = bytes(head)
    if not head:
        raise InputError("empty file", path=path, offset=0)
    prepared = _prepare_head(head, path)  # refusals are the reference reader's, word for word
    del head
    try:
        return apple_health_fast.scan(fp, prepared, path=path)
    except apple_health_fast.Declined as exc:
        why = str(exc)
    except Exception as exc:  # a fault of the scanner: the reference reader decides
        why = f"the fast scanner failed: {exc!r}"
    if not _seek(fp, base):
        raise InputError(
            f"cannot read this export again from its start ({why})", path=path, offset=0
        ) from None
    rec = read_reference(fp, path=path, salvage=salvage, ctx=ctx)
    rec.meta["apple_health_reader"] = f"lxml ({why})"
    return rec


def read_reference(
    fp: BinaryIO,
    *,
    path: str,
    salvage: bool = False,
    ctx: ReadContext,
) -> Recording:
    """The reference reading of an Apple Health export, through libxml2 (``meta
    ["apple_health_reader"] = "lxml"``); :func:`read` gives the same result faster.

    ``fp`` is a binary stream positioned at the start of the XML (seekability is used only to
    re-read a file that holds control characters and to give the byte offset of a syntax
    error). Every failure is an :class:`InputError` with ``path`` and, where known, the line
    and byte ``offset``: empty stream, not UTF-8, root other than ``HealthData``, entity
    declarations or an external DTD (refused), malformed XML, truncation ("truncated at line
    N"), an unreadable date. With ``salvage=True`` damage stops the reading and what was read
    before it is returned with ``salvaged=True`` and ``salvage_reason``; if nothing usable
    precedes the damage the error is raised anyway.

    HR is returned raw (no range filter, no de-duplication; a value that is not a number is
    NaN, counted in a warning): the pipeline applies the sample rules to every format alike.
    See the module docstring for what is read and how RR, offsets and the sensor are derived.
    """
    del ctx  # every Apple date carries its own UTC offset: no time zone needed
    base = _tell(fp)
    head = fp.read(xmlsafe.PROLOG_LIMIT)
    if not isinstance(head, bytes | bytearray):
        raise InputError("not a binary stream", path=path, offset=0)
    head = bytes(head)
    if not head:
        raise InputError("empty file", path=path, offset=0)
    head = _prepare_head(head, path)
    try:
        rec = _parse(fp, head, base, path, salvage, sanitize=False)
    except _ControlCharacters as exc:
        # read again from just after the head, this time replacing control characters
        if base is None or not _seek(fp, base + len(head)):
            raise exc.error from None
        rec = _parse(fp, head, base, path, salvage, sanitize=True)
    rec.meta["apple_health_reader"] = "lxml"
    return rec


# --- prolog ----------------------------------------------------------------------------------


def _prepare_head(head: bytes, path: str) -> bytes:
    """Check the prolog and blank the DOCTYPE (same length, newlines kept)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00")) or head[1:2] == b"\x00":
        raise InputError(
            "not UTF-8 (UTF-16/32 text; Apple Health exports are UTF-8)", path=path, offset=0
        )
    m = _ENCODING.match(xmlsafe.skip_leading_space(head))
    if m is not None and m.group(1).lower() not in _UTF8_NAMES:
        enc = m.group(1).decode("ascii")
        raise InputError(
            f"XML declares encoding {enc!r} (Apple Health exports are UTF-8)", path=path, offset=0
        )
    xmlsafe.check_prolog(io.BytesIO(head), path, allow_doctype=True)
    body = _COMMENT.sub(lambda c: b" " * len(c.group(0)), head)
    doctype = _DOCTYPE.search(body)
    root = xmlsafe.root_name(head)
    if doctype is not None and (root is None or body.find(b"<" + root) > doctype.start()):
        if _EXTERNAL_ID.match(body, doctype.start()):
            raise InputError(
                "XML refers to an external DTD (refused: never loaded; no Apple Health export "
                "has one)",
                path=path,
                offset=doctype.start(),
            )
        end = _doctype_end(body, doctype.end())
        if end is not None:
            blank = head[doctype.start() : end].translate(_KEEP_NEWLINES)
            head = head[: doctype.start()] + blank + head[end:]
    if root is not None and root != _ROOT:
        raise InputError(
            f"not an Apple Health export (root element <{root.decode('utf-8', 'replace')}>, "
            "expected <HealthData>)",
            path=path,
            offset=0,
        )
    return head


def _doctype_end(body: bytes, pos: int) -> int | None:
    """Index just past the DOCTYPE that starts before ``pos``, or None when it does not end
    within ``body``. An internal subset ends at ``]`` + optional space + ``>``."""
    bracket = body.find(b"[", pos)
    gt = body.find(b">", pos)
    if gt < 0:
        return None
    if bracket < 0 or gt < bracket:
        return gt + 1
    m = re.compile(rb"\]\s*>").search(body, bracket)
    return m.end() if m else None


def _sanitize(chunk: bytes) -> tuple[bytes, int]:
    """``chunk`` with C0 control characters (not tab, CR, LF) replaced by spaces, and how many.
    Safe on UTF-8: bytes below 0x20 never occur inside a multi-byte sequence."""
    n = len(chunk) - len(chunk.translate(None, _CTRL))
    return (chunk.translate(_CTRL_TO_SPACE), n) if n else (chunk, 0)


# --- the parse loop --------------------------------------------------------------------------


class _ControlCharacters(Exception):
    def __init__(self, error: InputError) -> None:
        self.error = error


def _parse(
    fp: BinaryIO, head: bytes, base: int | None, path: str, salvage: bool, *, sanitize: bool
) -> Recording:
    col = _Collector(path, lambda needle, start, end: _find(fp, base, needle, start, end))
    parser = xmlsafe.parser(target=col)
    offset = 0  # bytes fed so far
    replaced = 0
    damage: InputError | None = None
    chunk = head
    try:
        while chunk:
            if sanitize:
                chunk, n = _sanitize(chunk)
                replaced += n
            try:
                parser.feed(chunk)
            except etree.XMLSyntaxError as exc:
                raise _syntax_error(exc, fp, base, path, offset + len(chunk), sanitize) from None
            offset += len(chunk)
            col.fed = offset
            if offset - col.window_start >= FLUSH:
                col.flush()
            chunk = fp.read(CHUNK)
        try:
            parser.close()
        except etree.XMLSyntaxError as exc:
            if exc.code == 9 and not sanitize:  # XML_ERR_INVALID_CHAR
                raise _ControlCharacters(xmlsafe.xml_error(exc, path)) from None
            line = f"line {exc.position[0]}, " if exc.position else ""
            raise InputError(
                f"truncated at {line}byte {offset}: {exc.msg}", path=path, offset=offset
            ) from None
        col.flush()
    except InputError as exc:
        if not salvage:
            raise
        damage = exc
        with contextlib.suppress(InputError):  # a bad date: what precedes it was kept
            col.flush()
    rec = col.recording()
    if replaced:
        rec.warnings.append(
            f"{replaced} control character(s) (not allowed in XML; iOS 16 writes U+000B) "
            "replaced by spaces"
        )
    if damage is not None:
        if not col.anything():
            raise damage
        rec.salvaged = True
        rec.salvage_reason = str(damage.reason)
    return rec


def _syntax_error(
    exc: etree.XMLSyntaxError,
    fp: BinaryIO,
    base: int | None,
    path: str,
    fed: int,
    sanitized: bool,
) -> InputError:
    err = xmlsafe.xml_error(exc, path)
    err.reason = _LXML_WHERE.sub("", err.reason)  # the position is already at the front
    if exc.code == 9 and not sanitized:  # XML_ERR_INVALID_CHAR
        raise _ControlCharacters(err)
    pos = exc.position
    at = _line_offset(fp, base, pos[0], pos[1]) if pos and base is not None else None
    if at is None:
        err.offset = fed
        err.reason += f" (within the first {fed} bytes)"
    else:
        err.offset = at
        err.reason += f" (byte {at})"
    return err


def _line_offset(fp: BinaryIO, base: int, line: int, column: int) -> int | None:
    """Byte offset of ``line``:``column`` (1-based) by reading a seekable stream again
    (error path only)."""
    try:
        fp.seek(base)
    except (OSError, ValueError):
        return None
    seen = 1
    pos = 0
    while True:
        block = fp.read(CHUNK)
        if not block:
            return None
        n = block.count(b"\n")
        if seen + n >= line:
            i = -1
            for _ in range(line - seen):
                i = block.index(b"\n", i + 1)
            return pos + i + 1 + max(column - 1, 0)
        seen += n
        pos += len(block)


def _find(fp: BinaryIO, base: int | None, needle: bytes, start: int, end: int) -> int | None:
    """Offset of ``needle`` within ``[start, end)`` of a seekable stream (error path only; the
    stream position is restored)."""
    if base is None:
        return None
    try:
        pos = fp.tell()
        fp.seek(base + start)
        data = fp.read(end - start + len(needle))
        fp.seek(pos)
    except (OSError, ValueError):
        return None
    i = data.find(needle)
    return start + i if i >= 0 else None


def _tell(fp: BinaryIO) -> int | None:
    try:
        return fp.tell() if fp.seekable() else None
    except (OSError, ValueError, AttributeError):
        return None


def _seek(fp: BinaryIO, pos: int) -> bool:
    try:
        fp.seek(pos)
        return True
    except (OSError, ValueError):
        return False


# --- the SAX target --------------------------------------------------------------------------


@dataclass
class _Parts:
    """Converted arrays of one vendor (kind, source)."""

    kind: str
    unit: str
    origin: str
    start: list[npt.NDArray[np.int64]] = field(default_factory=list)
    end: list[npt.NDArray[np.int64]] = field(default_factory=list)
    value: list[npt.NDArray[np.float64]] = field(default_factory=list)


@dataclass
class _Workout:
    attrib: dict[str, str]
    utc: tuple[int, int] | None = None  # start, end (Unix s) once converted
    #: HeartRate WorkoutStatistics: (startDate, endDate, average, maximum, unit) each
    hr_stats: list[tuple[str, str, str | None, str | None, str | None]] = field(
        default_factory=list
    )

    def hr(self) -> tuple[str | None, str | None, str | None] | None:
        """(average, maximum, unit) of the whole workout: of the statistics spanning the longest
        time (each ``WorkoutActivity``, a leg of a multisport workout, has its own; the
        workout's own span them all), the last one."""
        if not self.hr_stats:
            return None
        if len(self.hr_stats) == 1:
            best = self.hr_stats[0]
            return best[2], best[3], best[4]
        try:
            s_utc, _ = parse_dates([st[0] for st in self.hr_stats])
            e_utc, _ = parse_dates([st[1] for st in self.hr_stats])
        except BadDate:
            best = self.hr_stats[-1]
        else:
            span = e_utc - s_utc
            best = self.hr_stats[int(np.flatnonzero(span == span.max())[-1])]
        return best[2], best[3], best[4]


class _Collector:
    """lxml parser target: ``start`` copies the attributes we need into lists, converted to
    arrays by :meth:`flush`. There is no ``end`` callback (it would cost a Python call per
    element for nothing): which ``WorkoutStatistics`` describe the whole workout is told by
    their dates, and ``Record`` children of a ``Correlation`` are not told apart from top-level
    ones. Apple's correlations are blood pressure and food, whose records are not read here;
    a heart rate inside one would be a repeat that the pipeline's duplicate rule drops."""

    def __init__(self, path: str, find: Callable[[bytes, int, int], int | None]) -> None:
        self.path = path
        self._find = find  # (needle, start, end) -> offset in the stream, to place bad dates
        self.window_start = 0  # byte offset where the data collected since the last flush began
        self.fed = 0  # bytes fed so far
        # heart rate
        self.hr_date: list[str] = []
        self.hr_value: list[str] = []
        self.hr_odd_unit: list[tuple[int, str | None]] = []  # (index in this window, unit)
        self.hr_sources: dict[tuple[str | None, str | None], int] = {}  # (sourceName, device)
        self._drain_sources: Callable[[], None] = lambda: None
        # vendor series, HRV records (for their beats) and beats
        #: (type, sourceName) -> startDate, endDate, value and unit of each record, in file order
        self.bufs: dict[tuple[str, str], tuple[list[str], list[str], list[str], list[str]]] = {}
        self.hrv_start: list[str] = []
        self.hrv_end: list[str] = []
        self.beat_bpm: list[str] = []
        self.beat_time: list[str] = []
        self.beat_rec: list[int] = []
        self.workouts: list[_Workout] = []
        self.n_workouts_done = 0  # workouts whose dates are converted
        self.meta: dict[str, str] = {}
        # converted
        self.hr_ts: list[npt.NDArray[np.int64]] = []
        self.hr_bpm: list[npt.NDArray[np.float64]] = []
        self.offsets: dict[int, int] = {}
        self.parts: dict[tuple[str, str], _Parts] = {}
        self.hrv_utc: list[npt.NDArray[np.int64]] = []
        self.hrv_off: list[npt.NDArray[np.int64]] = []
        self.hrv_utc_end: list[npt.NDArray[np.int64]] = []
        self.rr_ts: list[npt.NDArray[np.int64]] = []
        self.beats: list[
            tuple[
                npt.NDArray[np.int64],
                npt.NDArray[np.int64],
                npt.NDArray[np.bool_],
                npt.NDArray[np.float64],
            ]
        ] = []
        self.rr_ms: list[npt.NDArray[np.float64]] = []
        self.warn: dict[str, int] = {}
        self.start = self._make_start()

    # lxml calls these -------------------------------------------------------------------------
    def _make_start(self) -> Callable[[str, Mapping[str, str]], None]:
        """The ``start`` callback: a closure over the window's lists. It runs for every element
        of a multi-GB file, so it uses subscripts (a missing attribute takes the slow path)
        and no attribute lookups or method calls of its own."""
        hr, hrv, vendor = _HR, _HRV, _VENDOR
        hr_date, hr_value, hr_odd = self.hr_date, self.hr_value, self.hr_odd_unit
        bufs, hrv_start, hrv_end = self.bufs, self.hrv_start, self.hrv_end
        beat_bpm, beat_time, beat_rec = self.beat_bpm, self.beat_time, self.beat_rec
        hrv_seen = 0  # HRV records so far: the beats that follow belong to the last one
        other = self._other
        # HR records per (sourceName, device), counted in runs: consecutive records mostly
        # share both, and keeping nothing per record is what keeps this callback cheap
        run_source: str | None = None
        run_device: str | None = None
        run_n = 0

        def drain() -> None:
            nonlocal run_n
            if run_n:
                key = (run_source, run_device)
                self.hr_sources[key] = self.hr_sources.get(key, 0) + run_n
                run_n = 0

        self._drain_sources = drain

        def start(tag: str, a: Mapping[str, str]) -> None:
            nonlocal hrv_seen, run_source, run_device, run_n
            try:
                if tag == "Record":  # the most frequent tag, then MetadataEntry
                    t = a["type"]
                    if t == hr:
                        d, v, u, s = a["startDate"], a["value"], a["unit"], a["sourceName"]
                        hr_date.append(d)
                        hr_value.append(v)
                        if u != "count/min":
                            hr_odd.append((len(hr_date) - 1, u))
                        dev = a.get("device")
                        if s == run_source and dev == run_device:
                            run_n += 1
                        else:
                            drain()
                            run_source, run_device, run_n = s, dev, 1
                    elif t in vendor:
                        key = (t, a["sourceName"])
                        d, e, v, u = a["startDate"], a["endDate"], a["value"], a["unit"]
                        buf = bufs.get(key)
                        if buf is None:
                            buf = bufs[key] = ([], [], [], [])
                        buf[0].append(d)
                        buf[1].append(e)
                        buf[2].append(v)
                        buf[3].append(u)
                        if t == hrv:
                            hrv_start.append(d)
                            hrv_end.append(e)
                            hrv_seen += 1
                elif tag == "MetadataEntry":
                    return
                elif tag == "InstantaneousBeatsPerMinute":
                    if hrv_seen:
                        b, tm = a["bpm"], a["time"]
                        beat_bpm.append(b)
                        beat_time.append(tm)
                        beat_rec.append(hrv_seen - 1)
                else:
                    other(tag, a)
            except KeyError:  # an attribute is missing: the same with defaults
                if tag == "Record":
                    t = a.get("type", "")
                    if t == hr:
                        hr_date.append(a.get("startDate", ""))
                        hr_value.append(a.get("value", ""))
                        if a.get("unit", "count/min") != "count/min":  # none: count/min
                            hr_odd.append((len(hr_date) - 1, a.get("unit")))
                        drain()
                        run_source, run_device, run_n = a.get("sourceName"), a.get("device"), 1
                    elif t in vendor:
                        key = (t, a.get("sourceName", ""))
                        buf = bufs.setdefault(key, ([], [], [], []))
                        buf[0].append(a.get("startDate", ""))
                        buf[1].append(a.get("endDate", ""))
                        buf[2].append(a.get("value", ""))
                        buf[3].append(a.get("unit", ""))
                        if t == hrv:
                            hrv_start.append(buf[0][-1])
                            hrv_end.append(buf[1][-1])
                            hrv_seen += 1
                elif tag == "InstantaneousBeatsPerMinute" and hrv_seen:
                    beat_bpm.append(a.get("bpm", ""))
                    beat_time.append(a.get("time", ""))
                    beat_rec.append(hrv_seen - 1)

        return start

    def _other(self, tag: str, a: Mapping[str, str]) -> None:
        """The rare elements: workouts and the export's header."""
        if tag == "Workout":
            self.workouts.append(_Workout(dict(a)))
        elif tag == "WorkoutStatistics":
            if self.workouts and a.get("type") == _HR:
                self.workouts[-1].hr_stats.append(
                    (
                        a.get("startDate", ""),
                        a.get("endDate", ""),
                        a.get("average"),
                        a.get("maximum"),
                        a.get("unit"),
                    )
                )
        elif tag == "HealthData":
            self.meta["locale"] = a.get("locale", "")
        elif tag == "ExportDate":
            self.meta["export_date"] = a.get("value", "")
        elif tag == "Me":
            dob = a.get("HKCharacteristicTypeIdentifierDateOfBirth", "")
            if re.match(r"\d{4}-", dob):
                self.meta["birth_year"] = dob[:4]
            sex = a.get("HKCharacteristicTypeIdentifierBiologicalSex", "")
            sex = {"HKBiologicalSexFemale": "f", "HKBiologicalSexMale": "m"}.get(sex, "")
            if sex:
                self.meta["sex"] = sex

    def close(self) -> None:
        return None

    # conversion -------------------------------------------------------------------------------
    def _count(self, what: str, n: int = 1) -> None:
        self.warn[what] = self.warn.get(what, 0) + n

    def _dates(self, values: list[str], what: str) -> tuple[npt.NDArray[np.int64], ...]:
        try:
            return parse_dates(values)
        except BadDate as exc:
            raise self._date_error(values[exc.index], what) from None

    def _date_error(self, bad: str, what: str) -> InputError:
        off = self._offset_of(bad)
        where = f" at byte {off}" if off is not None else ""
        return InputError(f"unreadable {what} {bad!r}{where}", path=self.path, offset=off)

    def _offset_of(self, text: str) -> int | None:
        """Where ``"text"`` is in this window (read again from the stream: nothing of the
        window is kept for this rare case), else where the window starts."""
        needle = f'"{text}"'.encode("utf-8", "replace")
        at = self._find(needle, max(self.window_start - CHUNK, 0), self.fed)
        return self.window_start if at is None else at + 1

    def flush(self) -> None:
        """Convert the strings collected since the last flush to arrays: every date of the
        window in one :func:`parse_dates` call, every value in one conversion (per-call costs
        would otherwise dominate). On a bad date the heart rate before it is kept (for
        salvage) and an InputError is raised."""
        try:
            self._flush_records()
            self._flush_beats()
        finally:
            self.window_start = self.fed

    def _flush_records(self) -> None:
        self._drain_sources()
        hr_dates, hr_values, odd = (
            _take(self.hr_date),
            _take(self.hr_value),
            _take(self.hr_odd_unit),
        )
        hrv_start, hrv_end = _take(self.hrv_start), _take(self.hrv_end)
        bufs = list(self.bufs.items())
        self.bufs.clear()
        groups: list[tuple[str, list[str]]] = [
            ("heart rate startDate", hr_dates),
            ("HRV startDate", hrv_start),
            ("HRV endDate", hrv_end),
        ]
        for (rtype, _), (starts, ends, _, _) in bufs:
            kind = _VENDOR[rtype][0]
            groups += [(kind + " startDate", starts), (kind + " endDate", ends)]
        new_workouts = self.workouts[self.n_workouts_done :]
        self.n_workouts_done = len(self.workouts)
        groups += [
            ("Workout startDate", [w.attrib.get("startDate", "") for w in new_workouts]),
            ("Workout endDate", [w.attrib.get("endDate", "") for w in new_workouts]),
        ]
        try:
            utc, off = parse_dates(list(chain.from_iterable(dates for _, dates in groups)))
        except BadDate as exc:
            self._bad_date(exc.index, groups, hr_values, odd)
            raise AssertionError("unreachable") from None
        cuts = np.cumsum([len(dates) for _, dates in groups])[:-1]
        utc_parts = np.split(utc, cuts)
        off_parts = np.split(off, cuts)
        values = _floats(hr_values + list(chain.from_iterable(b[2] for _, b in bufs)))
        for w, ws, we in zip(
            new_workouts, utc_parts[-2].tolist(), utc_parts[-1].tolist(), strict=True
        ):
            w.utc = (ws, we)
        n_hr = len(hr_values)
        if n_hr:
            self._add_hr(utc_parts[0], off_parts[0], values[:n_hr], odd)
        if hrv_start:
            self.hrv_utc.append(utc_parts[1])
            self.hrv_off.append(off_parts[1])
            self.hrv_utc_end.append(utc_parts[2])
        vendor_values = values[n_hr:]
        has_nan = bool(np.isnan(vendor_values).any())  # else no per-series masks
        at = 0
        for i, ((rtype, source), (_, _, vals, units)) in enumerate(bufs):
            val = vendor_values[at : at + len(vals)]
            start, end = utc_parts[3 + 2 * i], utc_parts[4 + 2 * i]
            at += len(vals)
            self._add_vendor(rtype, source, start, end, val, units, has_nan)

    def _add_vendor(
        self,
        rtype: str,
        source: str,
        start: npt.NDArray[np.int64],
        end: npt.NDArray[np.int64],
        val: npt.NDArray[np.float64],
        units: Sequence[str],
        has_nan: bool = True,
    ) -> None:
        """Append one (type, source)'s records, in file order, converted to our unit: records
        in an unknown unit and values that are not numbers are skipped and counted."""
        kind, our_unit, table = _VENDOR[rtype]
        u0 = units[0]
        if units.count(u0) == len(units):  # one unit: the usual case
            factor = table.get(u0)
            if factor is None:
                self._count(f"{kind} record(s) in unknown unit {u0!r} (skipped)", len(units))
                return
            if factor != 1.0:
                val = val * factor
        else:
            factors = np.array([table.get(u, np.nan) for u in units], np.float64)
            known = ~np.isnan(factors)
            if not known.all():
                for u in dict.fromkeys(units):
                    if u not in table:
                        n = units.count(u)
                        self._count(f"{kind} record(s) in unknown unit {u!r} (skipped)", n)
                val, start, end, factors = val[known], start[known], end[known], factors[known]
            val = val * factors
            has_nan = True
        if has_nan:
            ok = ~np.isnan(val)
            if not ok.all():
                self._count(f"{kind} value(s) that are not numbers (skipped)", int((~ok).sum()))
                val, start, end = val[ok], start[ok], end[ok]
        parts = self.parts.get((kind, source))
        if parts is None:
            parts = self.parts[(kind, source)] = _Parts(kind, our_unit, source)
        parts.start.append(start)
        parts.end.append(end)
        parts.value.append(val)

    def _bad_date(
        self,
        index: int,
        groups: list[tuple[str, list[str]]],
        hr_values: list[str],
        odd: list[tuple[int, str | None]],
    ) -> None:
        """Raise the InputError for the date at ``index`` of the window's dates, after keeping
        the window's heart rate that precedes it (all of it when the bad date is not one)."""
        g = 0
        while index >= len(groups[g][1]):
            index -= len(groups[g][1])
            g += 1
        what, dates = groups[g]
        keep = index if g == 0 else len(hr_values)
        if keep:
            utc, off = parse_dates(groups[0][1][:keep])
            self._add_hr(utc, off, _floats(hr_values[:keep]), [(i, u) for i, u in odd if i < keep])
        raise self._date_error(dates[index], what)

    def _add_hr(
        self,
        utc: npt.NDArray[np.int64],
        off: npt.NDArray[np.int64],
        bpm: npt.NDArray[np.float64],
        odd: list[tuple[int, str | None]],
    ) -> None:
        bpm = bpm.copy()
        nan = int(np.count_nonzero(np.isnan(bpm)))
        if nan:
            self._count("heart rate value(s) that are not numbers (kept as NaN)", nan)
        for i, unit in odd:
            factor = _HR_UNITS.get(unit or "")
            if factor is None:
                bpm[i] = np.nan
                self._count(f"heart rate value(s) in unit {unit!r} (kept as NaN)")
            else:
                bpm[i] *= factor
        self.hr_ts.append(utc)
        self.hr_bpm.append(bpm)
        # offsets are whole minutes within ±14 h: a bincount, not a sort
        counts = np.bincount((off // 60 + 14 * 60).astype(np.int64), minlength=1)
        for m in np.flatnonzero(counts).tolist():
            o = (m - 14 * 60) * 60
            self.offsets[o] = self.offsets.get(o, 0) + int(counts[m])

    def _flush_beats(self) -> None:
        if not self.beat_bpm:
            return
        bpm_s, times, recs = _take(self.beat_bpm), _take(self.beat_time), _take(self.beat_rec)
        rec = np.asarray(recs, np.int64)
        known = sum(len(x) for x in self.hrv_utc)
        if rec.size and rec[-1] >= known:  # their record was lost to a bad date (salvage)
            keep = rec < known
            rec = rec[keep]
            bpm_s = [b for b, k in zip(bpm_s, keep.tolist(), strict=True) if k]
            times = [t for t, k in zip(times, keep.tolist(), strict=True) if k]
            if not rec.size:
                return
        sod_us, ok = parse_beat_times(times)
        self.add_beats(rec, sod_us, ok, _floats(bpm_s))

    def add_beats(
        self,
        rec: npt.NDArray[np.int64],
        sod_us: npt.NDArray[np.int64],
        ok: npt.NDArray[np.bool_],
        bpm: npt.NDArray[np.float64],
    ) -> None:
        """Keep beats read (their HRV record's index, time of day, readability, bpm): they are
        placed in time once every beat of their record is known (:meth:`place_beats`), so
        how the file was cut into windows never matters."""
        ok = ok & (bpm > 0)  # NaN compares False
        if not ok.all():
            self._count(
                "instantaneous bpm value(s) or time(s) unreadable (skipped)", int((~ok).sum())
            )
        self.beats.append((rec, sod_us, ok, bpm))

    def place_beats(self) -> None:
        """RR intervals from every beat kept: see :func:`_place_beats`."""
        if not self.beats:
            return
        rec, sod_us, ok, bpm = (np.concatenate(x) for x in zip(*self.beats, strict=True))
        self.beats.clear()
        rec_utc = np.concatenate(self.hrv_utc)[rec]
        rec_off = np.concatenate(self.hrv_off)[rec]
        rec_end = np.concatenate(self.hrv_utc_end)[rec]
        ts, shifted = _place_beats(rec, rec_utc, rec_off, rec_end, sod_us, ok)
        if shifted:
            self._count(
                "HRV beat list(s) written in another UTC offset than their record (moved by "
                "whole quarter hours into the record)",
                shifted,
            )
        self.rr_ts.append(ts[ok])
        self.rr_ms.append(60000.0 / bpm[ok])

    # result -----------------------------------------------------------------------------------
    def anything(self) -> bool:
        return bool(self.hr_ts or self.parts or self.workouts or self.rr_ts or self.beats)

    def recording(self) -> Recording:
        self.place_beats()
        rec = Recording(format="apple_health", kind="allday")
        # (arrays of int64 seconds or microseconds, fresh from np.concatenate: scaled in
        # place and viewed as datetime64[us], no copies)
        if self.hr_ts:
            ts = np.concatenate(self.hr_ts).astype(np.int64, copy=False)
            ts *= _US
            rec.hr = HRSeries(ts.view(TS_DTYPE), np.concatenate(self.hr_bpm))
        if self.rr_ts:
            rr = np.concatenate(self.rr_ts).astype(np.int64, copy=False)
            rec.rr = RRSeries(rr.view(TS_DTYPE), np.concatenate(self.rr_ms))
        for (kind, source), p in sorted(self.parts.items()):
            if not p.start:
                continue
            start = np.concatenate(p.start)
            if not start.size:  # every record of it skipped (e.g. unknown units): no series
                continue
            start = start.astype(np.int64, copy=False)
            duration = np.subtract(np.concatenate(p.end), start, dtype=np.float64)
            start *= _US
            rec.vendor.append(
                VendorSeries(
                    kind=kind,
                    unit=p.unit,
                    start=start.view(TS_DTYPE),
                    duration_s=duration,
                    value=np.concatenate(p.value),
                    origin=source or None,
                )
            )
        rec.activities = self._activities()
        self._sources(rec)
        if self.offsets:
            common = max(self.offsets.items(), key=lambda kv: kv[1])[0]
            rec.utc_offset_s = int(common)
            rec.meta["utc_offsets"] = "; ".join(
                f"{_offset_text(o)} ({n})" for o, n in sorted(self.offsets.items())
            )
        rec.meta.update({k: v for k, v in self.meta.items() if v})
        if not len(rec.hr):
            rec.warnings.append("no heart rate records in this export")
        for what, n in sorted(self.warn.items()):  # the same order however the file was read
            rec.warnings.append(f"{n} {what}")
        _restore_ampersands(rec)
        return rec

    def _sources(self, rec: Recording) -> None:
        by_source: dict[str, int] = {}
        by_device: dict[str, int] = {}
        strap = watch = total = 0
        # a name and its kind (strap 1, watch 2, else 0) per distinct (sourceName, device)
        # text: an export has thousands of pairs (devices differ by their software version)
        # and a few names
        names: dict[str | None, str] = {}
        kinds: dict[str, int] = {}
        for (source, device), n in self.hr_sources.items():
            name = names.get(device)
            if name is None:
                m = _DEVICE_NAME.search(device) if device else None
                name = names[device] = m.group(1).strip() if m else ""
            by_source[source or "?"] = by_source.get(source or "?", 0) + n
            if name:
                by_device[name] = by_device.get(name, 0) + n
            total += n
            text = f"{source or ''} {name}"
            kind = kinds.get(text)
            if kind is None:
                kind = kinds[text] = 1 if _STRAP.search(text) else 2 if _WATCH.search(text) else 0
            if kind == 1:
                strap += n
            elif kind == 2:
                watch += n
        if not total:
            return
        rec.meta["hr_sources"] = "; ".join(
            f"{s} ({n})" for s, n in sorted(by_source.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        if by_device:
            rec.meta["hr_devices"] = "; ".join(
                f"{s} ({n})" for s, n in sorted(by_device.items(), key=lambda kv: (-kv[1], kv[0]))
            )
            rec.device = max(by_device.items(), key=lambda kv: kv[1])[0]
        if strap * 2 > total:
            rec.sensor = "chest_strap"
        elif watch == total:
            rec.sensor = "optical"
        else:
            rec.sensor = "unknown"

    def _activities(self) -> list[ActivityInfo]:
        out = []
        for w in self.workouts:
            if w.utc is None:  # its date was unreadable (salvage)
                continue
            s, e = w.utc
            a = w.attrib
            name = a.get("workoutActivityType", "").removeprefix("HKWorkoutActivityType")
            sport, sub = _SPORTS.get(name, (_snake(name) or None, None))
            timer = _float(a.get("duration"))
            factor = _DURATION_UNITS.get(a.get("durationUnit", "min"))
            timer_s = timer * factor if timer is not None and factor is not None else None
            stat = w.hr()
            avg = mx = None
            if stat is not None and (stat[2] in (None, "count/min")):
                avg, mx = _float(stat[0]), _float(stat[1])
            out.append(
                ActivityInfo(
                    start=np.datetime64(s * _US, "us"),
                    end=np.datetime64(e * _US, "us"),
                    sport=sport,
                    sub_sport=sub,
                    timer_s=timer_s,
                    elapsed_s=float(e - s),
                    avg_hr=avg,
                    max_hr=mx,
                )
            )
        return out


def _amp(text: str | None) -> str | None:
    return text.replace("&#38;", "&") if text and "&" in text else text


def _restore_ampersands(rec: Recording) -> None:
    """libxml2, substituting no entities (as these parsers run), reports every ``&`` of an
    attribute value (written ``&amp;``, ``&#38;`` or ``&#x26;``) as the text ``&#38;``, and
    no other ``&``: replacing ``&#38;`` by ``&`` gives the value the file means (a literal
    ``&#38;``, written ``&amp;#38;``, comes back as ``&#38;``)."""
    for v in rec.vendor:
        v.origin = _amp(v.origin)
        v.unit = _amp(v.unit) or v.unit
    rec.device = _amp(rec.device)
    rec.meta = {k: _amp(v) or v for k, v in rec.meta.items()}
    rec.warnings = [_amp(w) or w for w in rec.warnings]
    for a in rec.activities:
        a.sport, a.sub_sport = _amp(a.sport), _amp(a.sub_sport)


# --- vectorized parsing ----------------------------------------------------------------------


class BadDate(ValueError):
    """A date string :func:`parse_dates` cannot read; ``index`` is its position."""

    def __init__(self, index: int, text: str) -> None:
        self.index = index
        super().__init__(f"unreadable date {text!r} (item {index})")


# Layouts: the column where each digit is, the separators, the column of the offset's sign.
# YYYY-MM-DD HH:MM:SS +HHMM (iOS 9 on)
_MODERN: Final = (
    (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 21, 22, 23, 24),
    ((4, "-"), (7, "-"), (10, " "), (13, ":"), (16, ":"), (19, " ")),
    20,
)
# YYYYMMDDHHMMSS+HHMM (iOS 8)
_COMPACT: Final = ((*range(14), 15, 16, 17, 18), (), 14)
_DIM: Final = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


def parse_dates(values: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Apple Health dates to ``(utc_s, offset_s)``: Unix seconds (UTC) and each date's own UTC
    offset in seconds (local - UTC), as int64 arrays.

    Accepts ``YYYY-MM-DD HH:MM:SS ±HHMM`` (every export since iOS 9) and ``YYYYMMDDHHMMSS±HHMM``
    (iOS 8). Fields are checked (month 1-12, the day within its month, leap years, hours < 24,
    minutes and seconds < 60, offset within ±14:00); the first string that fails raises
    :class:`BadDate` with its index. Works on whole arrays (one ``"".join``, fixed-width byte
    columns, integer arithmetic), about 50 ns a date: no per-string ``datetime``.
    """
    n = len(values)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    try:
        joined = "".join(values)
    except TypeError:  # not all strings
        joined = ""
    if len(joined) == 25 * n and joined.isascii():
        codes = np.frombuffer(joined.encode("ascii"), np.uint8).reshape(n, 25)
        utc, off, ok = _fields(codes, _MODERN)
        if ok.all():
            return utc, off
    # mixed or odd lengths: each layout on its own rows
    arr = np.array([v if isinstance(v, str) else "" for v in values], dtype="U26")
    wide = arr.view(np.uint32).reshape(n, 26)
    length = np.count_nonzero(wide, axis=1)
    ascii8 = np.where(wide < 128, wide, 0).astype(np.uint8)  # non-ASCII never matches
    utc = np.zeros(n, np.int64)
    off = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    for width, layout in ((25, _MODERN), (19, _COMPACT)):
        rows = np.flatnonzero(length == width)
        if rows.size:
            utc[rows], off[rows], ok[rows] = _fields(ascii8[rows, :width], layout)
    bad = np.flatnonzero(~ok)
    if bad.size:
        i = int(bad[0])
        raise BadDate(i, str(values[i]))
    return utc, off


def _fields(
    c: npt.NDArray[np.uint8], layout: tuple[tuple[int, ...], tuple[tuple[int, str], ...], int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """UTC seconds, offsets and validity of rows of ASCII codes in one date layout."""
    digit_cols, seps, sign_col = layout
    raw = c[:, list(digit_cols)] - np.uint8(48)  # wraps above 9 for every non-digit
    ok = (raw < 10).all(axis=1)
    for col, ch in seps:
        ok &= c[:, col] == ord(ch)
    sg = c[:, sign_col]
    ok &= (sg == ord("+")) | (sg == ord("-"))
    d = raw.T.astype(np.int32)  # one contiguous row per digit column

    def num(i: int, k: int) -> npt.NDArray[np.int32]:
        v = d[i]
        for j in range(i + 1, i + k):
            v = v * 10 + d[j]
        return v

    year, month, day = num(0, 4), num(4, 2), num(6, 2)
    hour, minute, sec = num(8, 2), num(10, 2), num(12, 2)
    off_m = num(16, 2)
    off_s = num(14, 2) * 3600 + off_m * 60
    off = np.where(sg == ord("-"), -off_s, off_s).astype(np.int64)
    # a table per (year, month): days from 1970-01-01 to its first day, and its length
    ym = np.where(ok, year * 13 + np.minimum(month, 12), 0)  # month 0 has length 0
    ok &= (month <= 12) & (day >= 1) & (day <= _MONTH_LEN[ym])
    ok &= (hour < 24) & (minute < 60) & (sec < 60) & (off_m < 60) & (off_s <= _MAX_OFFSET_S)
    secs = (hour * 3600 + minute * 60 + sec).astype(np.int64)
    utc = (_MONTH_START[ym] + day) * 86400 + secs - off
    return utc, off, ok


def _month_tables() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    """For every year 0-9999 and month 0-12 (0: none): the day number (since 1970-01-01) of
    the day before the 1st, and the month's length (0 for month 0)."""
    year = np.repeat(np.arange(10_000, dtype=np.int64), 13)
    month = np.tile(np.arange(13, dtype=np.int64), 10_000)
    start = _days_from_civil(year, np.maximum(month, 1), np.ones_like(year)) - 1
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    length = (_DIM[month] + ((month == 2) & leap)).astype(np.int8)
    return start, length


def _days_from_civil(
    y: npt.NDArray[np.int64], m: npt.NDArray[np.int64], d: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible
    Low-Level Date Algorithms", days_from_civil)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_MONTH_START, _MONTH_LEN = _month_tables()


_BEAT_W: Final = 20  # time strings of _BEAT_W characters or more are unreadable
_BEAT_BATCH: Final = 8192
_SPACE_CODES: Final = (0xA0, 0x202F, 0x2009)  # no-break, narrow no-break, thin space


def parse_beat_times(values: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """``InstantaneousBeatsPerMinute/@time`` strings to microseconds since local midnight, and
    which ones were readable.

    ``H:MM:SS`` or ``HH:MM:SS``, optionally with a fraction after ``.`` or ``,`` (1 to 6
    digits), optionally followed by an AM/PM marker (``AM``, ``pm``, ``a.m.``; after a space,
    U+00A0, U+202F or nothing; its letters are checked, not their order). Anything else is
    unreadable.

    Strings of one length nearly always share one layout (``7:43:12.34 PM``): those are read
    by fixed columns; the rest go through a general per-character reading.
    """
    n = len(values)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, bool)
    sod = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    rest = np.ones(n, bool)  # not read by the fast path
    try:
        joined = "".join(values)
    except TypeError:
        joined = ""
    if joined and not joined.isascii():
        joined = joined.replace("\u202f", " ").replace("\xa0", " ")
    if joined and joined.isascii():
        lens = np.fromiter(map(len, values), np.int64, n)
        flat = np.frombuffer(joined.encode("ascii"), np.uint8)
        firsts = np.cumsum(lens) - lens
        for width in np.unique(lens).tolist():
            rows = np.flatnonzero(lens == width)
            if not 7 <= width < _BEAT_W:
                continue
            m = flat[firsts[rows][:, None] + np.arange(width)]
            got = _beat_layout(m)
            if got is not None:
                s, k, fits = got
                sod[rows[fits]] = s[fits]
                ok[rows[fits]] = k[fits]
                rest[rows[fits]] = False
    todo = np.flatnonzero(rest)
    if todo.size:
        for i in range(0, todo.size, _BEAT_BATCH):
            idx = todo[i : i + _BEAT_BATCH]
            s, k = _beat_general([values[j] for j in idx.tolist()])
            sod[idx] = s
            ok[idx] = k
    return sod, ok


def _beat_layout(
    m: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]] | None:
    """Read rows of equal width by the layout of the first row: (sod, readable, fits the
    layout), or None when the first row has no layout this reads."""
    row = bytes(m[0])
    c1 = row.find(b":")
    if c1 not in (1, 2) or row[c1 + 3 : c1 + 4] != b":" or len(row) < c1 + 6:
        return None
    sec_end = c1 + 6
    digits = [*range(c1), c1 + 1, c1 + 2, c1 + 4, c1 + 5]
    literal = [(c1, ord(":")), (c1 + 3, ord(":"))]
    frac_cols: list[int] = []
    pos = sec_end
    if row[pos : pos + 1] in (b".", b","):
        literal.append((pos, row[pos]))
        pos += 1
        while pos < len(row) and row[pos : pos + 1].isdigit() and len(frac_cols) < 7:
            frac_cols.append(pos)
            pos += 1
        if not 1 <= len(frac_cols) <= 6:
            return None
    tail = row[pos:]
    marker = -1
    for j in range(pos, len(row)):
        if row[j] in b"AaPp":
            if marker >= 0:
                return None
            marker = j
        elif row[j] in b" Mm.":
            literal.append((j, row[j]))
        else:
            return None
    # a marker needs its M; without a marker only spaces may follow
    if (marker >= 0) != (b"M" in tail.upper()) or (marker < 0 and tail.strip(b" ")):
        return None
    d = m - np.uint8(48)
    fits = np.asarray((d[:, digits + frac_cols] < 10).all(axis=1), dtype=np.bool_)
    for j, code in literal:
        fits &= m[:, j] == code
    pm = np.zeros(m.shape[0], bool)
    if marker >= 0:
        low = m[:, marker] | 0x20
        fits &= (low == ord("a")) | (low == ord("p"))
        pm = low == ord("p")
    di = d.astype(np.int64)
    hour = di[:, 0] * 10 + di[:, 1] if c1 == 2 else di[:, 0]
    minute = di[:, c1 + 1] * 10 + di[:, c1 + 2]
    sec = di[:, c1 + 4] * 10 + di[:, c1 + 5]
    frac = np.zeros(m.shape[0], np.int64)
    for j in frac_cols:
        frac = frac * 10 + di[:, j]
    frac_us = frac * 10 ** (6 - len(frac_cols))
    ok = fits & (minute < 60) & (sec < 60)
    if marker >= 0:
        ok &= (hour >= 1) & (hour <= 12)
        hour = hour % 12 + np.where(pm, 12, 0)
    else:
        ok &= hour < 24
    sod = ((hour * 60 + minute) * 60 + sec) * _US + frac_us
    return np.where(ok, sod, 0), ok, fits


def _beat_general(values: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The general reading of :func:`parse_beat_times`, character by character."""
    n = len(values)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, bool)
    arr = np.array([v if isinstance(v, str) else "" for v in values], dtype=f"U{_BEAT_W + 1}")
    wide = arr.view(np.uint32).reshape(n, _BEAT_W + 1)
    ok = (wide[:, _BEAT_W] == 0) & (wide[:, _BEAT_W - 1] == 0)  # at most _BEAT_W - 1 chars
    wide = wide[:, :_BEAT_W]
    if (wide > 127).any():
        wide = np.where(np.isin(wide, _SPACE_CODES), 32, wide)
        wide = np.where(wide > 127, 1, wide)  # other non-ASCII: never valid
    c = wide.astype(np.uint8)
    # align "H:MM" to "HH:MM": then every field has a fixed column
    one = c[:, 1] == ord(":")
    ok &= one | (c[:, 2] == ord(":"))
    if one.any():
        c[one, 1:] = c[one, :-1]
        c[one, 0] = ord("0")
    d = c[:, :15] - np.uint8(48)
    digit = d < 10
    ok &= digit[:, [0, 1, 3, 4, 6, 7]].all(axis=1) & (c[:, 5] == ord(":"))
    di = d.astype(np.int64)
    hour = di[:, 0] * 10 + di[:, 1]
    minute = di[:, 3] * 10 + di[:, 4]
    sec = di[:, 6] * 10 + di[:, 7]
    ok &= (minute < 60) & (sec < 60)
    has_frac = (c[:, 8] == ord(".")) | (c[:, 8] == ord(","))
    frac = np.zeros(n, np.int64)
    ndig = np.zeros(n, np.int64)
    going = has_frac.copy()
    for k in range(9, 15):
        dk = digit[:, k] & going
        frac = np.where(dk, frac * 10 + di[:, k], frac)
        ndig += dk
        going &= dk
    ok &= ~has_frac | (ndig > 0)
    frac_us = frac * 10 ** (6 - ndig)
    # what follows the seconds: spaces, then nothing or an AM/PM marker
    tail = np.where(has_frac, 9 + ndig, 8)
    t = c[:, 8:]
    rest = (np.arange(8, c.shape[1])[None, :] >= tail[:, None]) & (t != 0) & (t != 32)
    low = t | 0x20
    has_a = (rest & (low == ord("a"))).any(axis=1)
    has_p = (rest & (low == ord("p"))).any(axis=1)
    has_m = (rest & (low == ord("m"))).any(axis=1)
    dots = rest & (t == ord("."))
    other = rest & (low != ord("a")) & (low != ord("p")) & (low != ord("m")) & ~dots
    am = has_a & has_m & ~has_p
    pm = has_p & has_m & ~has_a
    twelve = am | pm
    ok &= ~other.any(axis=1) & (twelve | ~(has_a | has_p | has_m | dots.any(axis=1)))
    ok &= np.where(twelve, (hour >= 1) & (hour <= 12), hour < 24)
    hour = np.where(twelve, hour % 12 + np.where(pm, 12, 0), hour)
    sod = ((hour * 60 + minute) * 60 + sec) * _US + frac_us
    return np.where(ok, sod, 0), ok


def _place_beats(
    rec: npt.NDArray[np.int64],
    rec_utc: npt.NDArray[np.int64],
    rec_off: npt.NDArray[np.int64],
    rec_end: npt.NDArray[np.int64],
    sod_us: npt.NDArray[np.int64],
    ok: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], int]:
    """UTC microseconds of each beat (see the module docstring) and how many records were
    moved by quarter hours. Arrays are per beat (the record's values repeated)."""
    local_start = rec_utc + rec_off
    start_sod_us = (local_start % 86400) * _US
    day_us = 86400 * _US
    delta = sod_us - start_sod_us
    delta = (delta + day_us // 2) % day_us - day_us // 2  # -12 h .. +12 h: crossing midnight
    # per record: the first readable beat decides whether the list is in another offset
    first = np.ones(rec.size, bool)
    first[1:] = rec[1:] != rec[:-1]
    idx = np.flatnonzero(ok)
    lead = np.full(rec.size, -1, np.int64)
    if idx.size:
        # index of the first readable beat of each record, broadcast to the record's beats
        starts = np.flatnonzero(first)
        group = np.cumsum(first) - 1
        first_ok = np.full(starts.size, -1, np.int64)
        g_ok = group[idx]
        uniq, pos = np.unique(g_ok, return_index=True)
        first_ok[uniq] = idx[pos]
        lead = first_ok[group]
    lead_delta = np.where(lead >= 0, delta[np.maximum(lead, 0)], 0)
    span_us = (rec_end - rec_utc) * _US
    inside = (lead_delta >= -60 * _US) & (lead_delta <= span_us + 60 * _US)
    q_us = _QUARTER_H_S * _US
    shift = np.where(inside, 0, np.rint(lead_delta / q_us).astype(np.int64) * q_us)
    moved = int(np.count_nonzero(first & (shift != 0) & (lead >= 0)))
    return rec_utc * _US + delta - shift, moved


# --- small helpers ---------------------------------------------------------------------------


def _take(items: list[_T]) -> list[_T]:
    """The items of a list that a callback keeps appending to, emptying it in place."""
    out = items[:]
    items.clear()
    return out


def _floats(values: list[str]) -> npt.NDArray[np.float64]:
    """Numbers, NaN for anything that is not one (vectorized when every string parses)."""
    try:
        return np.array(values, dtype=np.float64)
    except (ValueError, TypeError):
        return np.array(
            [_float(v) if _float(v) is not None else np.nan for v in values], np.float64
        )


def _float(v: str | None) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _offset_text(off: int) -> str:
    sign = "-" if off < 0 else "+"
    h, m = divmod(abs(off) // 60, 60)
    return f"{sign}{h:02d}{m:02d}"
