"""Track points in XML (TCX and GPX): safe streaming events, element helpers, ISO 8601 times
parsed in bulk, and the growing arrays of time-stamped heart rates both formats fill."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import numpy as np
import numpy.typing as npt
from lxml import etree

from actidose.errors import InputError
from actidose.ingest import xmlsafe
from actidose.recording import TS_DTYPE, HRSeries, Recording
from actidose.timeutil import LOCAL_NONEXISTENT, local_to_utc

NAIVE_TIMES: Final = (
    "times without a UTC offset and no time zone to place them; give the participant a "
    "timezone or --timezone"
)
_US: Final = 1_000_000
#: Bytes read to find the root element before parsing (comments may precede it).
_HEAD_BYTES: Final = 1 << 16


def local_name(tag: Any) -> str:
    """Local part of an lxml tag (``"{ns}Time"`` -> ``"Time"``); "" for comments and PIs."""
    if not isinstance(tag, str):
        return ""
    return tag[tag.rfind("}") + 1 :]


def children(el: Any) -> dict[str, Any]:
    """First child element of each local name."""
    out: dict[str, Any] = {}
    for ch in el:
        name = local_name(ch.tag)
        if name and name not in out:
            out[name] = ch
    return out


def child(el: Any, name: str) -> Any:
    for ch in el:
        if local_name(ch.tag) == name:
            return ch
    return None


def _child_text(el: Any, name: str) -> str | None:
    ch = child(el, name)
    return None if ch is None else ch.text


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _number(el: Any) -> float | None:
    text = None if el is None else _text(el.text)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def drop(el: Any) -> None:
    """Free a finished element and its already finished preceding siblings (the iterparse
    idiom that keeps memory bounded)."""
    el.clear()
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def xml_events(
    fp: BinaryIO, path: str, *, root: str, fmt: str, tags: tuple[str, ...]
) -> Iterator[tuple[str, Any]]:
    """Check the prolog and the root, then stream ``(event, element)`` pairs (``start`` and
    ``end`` of the elements named in ``tags``, lxml wildcards).

    Raised before the first pair (so not salvageable): an empty file, a DOCTYPE, a root other
    than ``root``. Raised while iterating: :class:`InputError` for malformed XML (line and
    column), a DOCTYPE in an encoding the prolog check cannot read, or no ``root`` at all.
    """
    xmlsafe.check_prolog(fp, path, allow_doctype=False)
    base = fp.tell()
    head = fp.read(_HEAD_BYTES)
    body = xmlsafe.skip_leading_space(head)
    if not body:
        reason = "empty file" if not head else "no XML content (only white space)"
        raise InputError(reason, path=path, offset=base)
    found = xmlsafe.root_name(head)
    if found is not None and found != root.encode():
        shown = found.decode("utf-8", "replace")[:60]
        raise InputError(
            f"not a {fmt} file: the root element is <{shown}>, not <{root}>", path=path, offset=0
        )
    # libxml2 refuses anything before "<?xml"; Strava writes white space there
    fp.seek(base + len(head) - len(body))
    return _events(fp, path, root, fmt, tags)


def _events(
    fp: BinaryIO, path: str, root: str, fmt: str, tags: tuple[str, ...]
) -> Iterator[tuple[str, Any]]:
    first = True
    try:
        for event, el in xmlsafe.iterparse(fp, events=("start", "end"), tag=tags):
            if first:
                first = False
                tree = el.getroottree()
                if tree.docinfo.internalDTD is not None:
                    raise InputError(
                        f"XML has a DOCTYPE, which {fmt} never has (refused: possible entity "
                        "attack)",
                        path=path,
                    )
                if local_name(tree.getroot().tag) != root:
                    shown = local_name(tree.getroot().tag)[:60]
                    raise InputError(
                        f"not a {fmt} file: the root element is <{shown}>, not <{root}>",
                        path=path,
                    )
            yield event, el
    except etree.LxmlError as exc:
        raise xmlsafe.xml_error(exc, path) from exc
    if first:
        raise InputError(f"not a {fmt} file: no <{root}> root element", path=path)


#: ``offset_s`` value of a time written without ``Z`` or an offset.
NAIVE: Final = np.iinfo(np.int64).min
_MAX_TIME_CHARS: Final = 64  # "YYYY-MM-DDTHH:MM:SS.fffffffff+HH:MM" is 35
_MAX_HR_CHARS: Final = 32
_PLACEHOLDER: Final = "1970-01-01T00:00"
_PREFIX_DIGITS: Final = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15]
_PLUS, _MINUS, _COLON, _DASH, _DOT, _COMMA = 43, 45, 58, 45, 46, 44


def parse_iso8601(
    texts: Sequence[str],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Parse ISO 8601 date-times (XML Schema ``xsd:dateTime``), vectorized.

    Accepted: ``YYYY-MM-DD[T ]HH:MM[:SS[.fff...]]`` followed by ``Z``, ``±HH:MM``, ``±HHMM``,
    ``±HH`` or nothing (a local wall time). Fractions finer than 1 µs are truncated.

    Returns ``(local_us, offset_s, ok)``: the wall time as microseconds since 1970-01-01 (as
    written, before the offset), the UTC offset in seconds (:data:`NAIVE` when none is given;
    UTC = local - offset), and whether the text parsed (``local_us`` is 0 where not).

    The texts become a matrix of code points: the zone is found, checked and converted with
    array operations, the remainder is parsed by numpy's ``datetime64`` (C) after the fixed
    ``YYYY-MM-DDTHH:MM`` prefix is checked, which keeps out what numpy would also accept
    (``NaT``, ``now``, dates without a time).
    """
    n = len(texts)
    local = np.zeros(n, np.int64)
    offset = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    if n == 0:
        return local, offset, ok
    lens = np.fromiter(map(len, texts), np.int64, n)
    if lens.max() > _MAX_TIME_CHARS:
        texts = ["" if len(t) > _MAX_TIME_CHARS else t for t in texts]
        lens[lens > _MAX_TIME_CHARS] = 0
    w = int(lens.max())
    if w < len(_PLACEHOLDER):
        return local, offset, ok
    m = np.array(texts, dtype=f"<U{w}").view(np.uint32).reshape(n, w).copy()
    rows = np.arange(n)
    col = np.arange(w)
    digit = (m >= 48) & (m <= 57)
    ok = lens >= len(_PLACEHOLDER)
    ok &= digit[:, _PREFIX_DIGITS].all(axis=1)
    ok &= (m[:, 4] == _DASH) & (m[:, 7] == _DASH) & (m[:, 13] == _COLON)
    ok &= np.isin(m[:, 10], [ord("T"), ord("t"), ord(" ")])
    m[:, 10] = ord("T")

    last = m[rows, np.maximum(lens - 1, 0)]
    is_z = (last == ord("Z")) | (last == ord("z"))
    signs = ((m == _PLUS) | (m == _MINUS)) & (col >= 16)
    has_sign = signs.any(axis=1)
    pos = w - 1 - np.argmax(signs[:, ::-1], axis=1)  # the last + or -
    zlen = np.where(has_sign, lens - pos, 0)

    def at(k: int) -> npt.NDArray[np.int64]:
        return m[rows, np.minimum(pos + k, w - 1)].astype(np.int64) - 48

    def is_digit(k: int) -> npt.NDArray[np.bool_]:
        d = at(k)
        return (d >= 0) & (d <= 9)

    hh = at(1) * 10 + at(2)
    two = is_digit(1) & is_digit(2)
    mm = np.where(zlen == 5, at(3) * 10 + at(4), np.where(zlen == 6, at(4) * 10 + at(5), 0))
    form_ok = np.where(
        zlen == 3,
        two,
        np.where(
            zlen == 5,
            two & is_digit(3) & is_digit(4),
            np.where(zlen == 6, two & (at(3) == _COLON - 48) & is_digit(4) & is_digit(5), False),
        ),
    )
    ok &= ~has_sign | (form_ok & ~is_z & (hh < 24) & (mm < 60))
    sign = np.where(m[rows, pos] == _MINUS, -1, 1)
    offset = np.where(has_sign, sign * (hh * 3600 + mm * 60), 0).astype(np.int64)
    offset[~is_z & ~has_sign] = NAIVE
    cut = np.where(is_z, lens - 1, np.where(has_sign, pos, lens))
    # between the minutes and the zone: nothing, or ":SS" and an optional fraction
    rest = cut - 16
    seconds = (m[:, 16] == _COLON) & digit[:, 17] & digit[:, 18] if w > 18 else False
    fraction = (m[:, 19] == _DOT) | (m[:, 19] == _COMMA) if w > 19 else False
    in_fraction = (col[None, :] >= 20) & (col[None, :] < cut[:, None])
    ok &= (rest == 0) | (
        (rest >= 3) & seconds & ((rest == 3) | fraction) & (digit | ~in_fraction).all(axis=1)
    )
    m[col[None, :] >= cut[:, None]] = 0
    m[m == _COMMA] = _DOT  # ISO 8601 allows a decimal comma
    m[~ok] = 0
    m[~ok, : len(_PLACEHOLDER)] = np.frombuffer(_PLACEHOLDER.encode("utf-32-le"), np.uint32)
    strings = m.view(f"<U{w}").reshape(n)
    try:
        parsed = strings.astype("datetime64[us]")
    except ValueError:  # some row numpy rejects (month 13, second 61, junk after the minutes)
        parsed = np.zeros(n, "datetime64[us]")
        for i in np.flatnonzero(ok):
            try:
                parsed[i] = np.datetime64(str(strings[i]), "us")
            except ValueError:
                ok[i] = False
    local = np.where(ok, parsed.astype(np.int64), 0)
    offset = np.where(ok, offset, 0)
    return local, offset, ok


def place_in_utc(
    local_us: npt.NDArray[np.int64], offset_s: npt.NDArray[np.int64], tz: str | None, path: str
) -> tuple[npt.NDArray[np.int64], int]:
    """UTC microseconds of parsed times (see :func:`parse_iso8601`) and how many naive ones
    fell in a skipped DST hour. Naive times are placed in ``tz`` with
    :func:`actidose.timeutil.local_to_utc` (file order resolves repeated hours); without a
    ``tz`` they are an :class:`InputError`."""
    naive = offset_s == NAIVE
    utc = local_us - np.where(naive, 0, offset_s) * _US
    if not naive.any():
        return utc, 0
    if tz is None:
        raise InputError(NAIVE_TIMES, path=path)
    placed, status = local_to_utc(local_us[naive], tz)
    utc[naive] = placed
    return utc, int(np.count_nonzero(status == LOCAL_NONEXISTENT))


@dataclass
class PlacedPoints:
    """The timed points of a file in file order: UTC instants, bpm (NaN where a value was
    not a number), whether the point had a heart-rate element, and what was counted."""

    ts_us: npt.NDArray[np.int64]
    bpm: npt.NDArray[np.float64]
    has_hr: npt.NDArray[np.bool_]
    offsets_s: npt.NDArray[np.int64]
    without_time: int
    hr_not_number: int
    nonexistent: int
    naive: int

    def hr(self) -> HRSeries:
        return HRSeries(self.ts_us[self.has_hr].astype(TS_DTYPE), self.bpm[self.has_hr])

    def report(self, rec: Recording) -> None:
        """Counts into ``rec.meta`` and ``rec.warnings``; UTC offset into ``rec``."""
        rec.meta["points_without_hr"] = str(int(np.count_nonzero(~self.has_hr)))
        rec.meta["points_without_time"] = str(self.without_time)
        if self.without_time:
            rec.warnings.append(f"{self.without_time} track point(s) without a time skipped")
        if self.hr_not_number:
            rec.warnings.append(
                f"{self.hr_not_number} heart-rate value(s) not a number, kept as NaN (invalid)"
            )
        if self.nonexistent:
            rec.warnings.append(
                f"{self.nonexistent} local time(s) in the hour skipped when DST starts; "
                "placed with the offset in force before the change"
            )
        if self.naive:
            rec.meta["naive_times"] = str(self.naive)
        zoned = self.offsets_s[self.offsets_s != NAIVE]
        if zoned.size:
            distinct = np.unique(zoned)
            if distinct.size > 1:
                rec.meta["utc_offsets_s"] = ",".join(str(int(v)) for v in distinct)
            # "+02:00" says where the recording was made; "Z" and "+00:00" may just be UTC.
            # Plausible offsets only: within ±14 h, on a 15-minute grid (DESIGN.md).
            first = int(zoned[0])
            if first != 0 and abs(first) <= 14 * 3600 and first % 900 == 0:
                rec.utc_offset_s = first


class TrackPoints:
    """Collects (time text, heart-rate text) per point while the XML streams; parses them
    into arrays every :attr:`CHUNK` points, so pending Python strings stay bounded.

    A time that does not parse stops the collection: :meth:`add` raises the InputError and
    keeps the points before it (salvage keeps those)."""

    CHUNK: Final = 16384

    def __init__(self, path: str) -> None:
        self.path = path
        self.n = 0  # timed points added
        self.without_time = 0
        self._time: list[str] = []
        self._hr: list[str] = []
        self._line: list[int] = []
        self._local: list[npt.NDArray[np.int64]] = []
        self._offset: list[npt.NDArray[np.int64]] = []
        self._bpm: list[npt.NDArray[np.float64]] = []
        self._has: list[npt.NDArray[np.bool_]] = []
        self._not_number = 0
        self._stopped: InputError | None = None

    def add(self, time_text: str | None, hr_text: str | None, line: int | None) -> None:
        time_text = _text(time_text)
        if time_text is None:
            self.without_time += 1
            return
        self._time.append(time_text[: _MAX_TIME_CHARS + 1])
        self._hr.append((_text(hr_text) or "")[: _MAX_HR_CHARS + 1])
        self._line.append(line or 0)
        self.n += 1
        if len(self._time) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._stopped is not None:
            raise self._stopped
        if not self._time:
            return
        local, offset, ok = parse_iso8601(self._time)
        keep = len(ok) if ok.all() else int(np.argmin(ok))
        bpm, has, not_number = _bpm(self._hr[:keep])
        self._local.append(local[:keep])
        self._offset.append(offset[:keep])
        self._bpm.append(bpm)
        self._has.append(has)
        self._not_number += not_number
        if keep < len(ok):
            text, line = self._time[keep], self._line[keep]
            self.n -= len(ok) - keep
            where = f" at line {line}" if line else ""
            self._stopped = InputError(
                f"time {text[:40]!r}{where} is not an ISO 8601 date and time", path=self.path
            )
        self._time.clear()
        self._hr.clear()
        self._line.clear()
        if self._stopped is not None:
            raise self._stopped

    def close(self, damage: InputError | None, salvage: bool) -> InputError | None:
        """Parse what is pending after the XML ended (or broke off at ``damage``). Returns the
        damage that stops the reading (the earlier one when a time is bad too)."""
        try:
            self.flush()
        except InputError as exc:
            if not salvage:
                raise
            return exc
        return damage

    def finish(self, tz: str | None) -> PlacedPoints:
        def cat(parts: list[Any], dtype: Any) -> Any:
            return np.concatenate(parts) if parts else np.empty(0, dtype)

        local = cat(self._local, np.int64)
        offset = cat(self._offset, np.int64)
        ts_us, nonexistent = place_in_utc(local, offset, tz, self.path)
        return PlacedPoints(
            ts_us=ts_us,
            bpm=cat(self._bpm, np.float64),
            has_hr=cat(self._has, np.bool_),
            offsets_s=offset,
            without_time=self.without_time,
            hr_not_number=self._not_number,
            nonexistent=nonexistent,
            naive=int(np.count_nonzero(offset == NAIVE)),
        )


def _bpm(
    texts: list[str],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], int]:
    """Heart-rate texts ("" = no value) to float64: (bpm, has value, count not a number)."""
    n = len(texts)
    values = np.full(n, np.nan)
    if n == 0:
        return values, np.zeros(0, bool), 0
    arr = np.array(texts, dtype=str)
    has = arr != ""
    try:
        values[has] = arr[has].astype(np.float64)
        return values, has, 0
    except ValueError:
        pass
    bad = 0
    for i in np.flatnonzero(has):
        try:
            values[i] = float(texts[i])
        except ValueError:
            bad += 1
    return values, has, bad
