"""TCX importer: heart rate and activities from Garmin Training Center XML files.

Schema: Garmin *TrainingCenterDatabase v2*,
http://www.garmin.com/xmlschemas/TrainingCenterDatabasev2.xsd. What is read:

* ``Activities/Activity`` (``Activity_t``): attribute ``Sport`` (``Sport_t``: Running, Biking,
  Other), ``Id`` (``xsd:dateTime``, the start), one or more ``Lap``, optional ``Creator``
  (``Device_t``: ``Name``, ``UnitId``, ``ProductID``). Activities inside a
  ``MultiSportSession`` are found the same way. One :class:`ActivityInfo` per ``Activity``.
* ``Lap`` (``ActivityLap_t``): attribute ``StartTime``, ``TotalTimeSeconds``,
  ``AverageHeartRateBpm/Value`` and ``MaximumHeartRateBpm/Value``
  (``HeartRateInBeatsPerMinute_t``), ``Track``.
* ``Track/Trackpoint`` (``Trackpoint_t``): ``Time`` (``xsd:dateTime``) and
  ``HeartRateBpm/Value``. A plain number directly in ``HeartRateBpm`` (TCX v1) is read too.
* ``Author/Name`` (``Application_t``, the exporting program) goes to ``meta["author"]``.
* TCX v1 (``TrainingCenterDatabasev1.xsd``), best effort: ``History/Running|Biking|Other/Run``
  is read like an ``Activity`` whose sport is its folder; heart rates are plain numbers there.

Elements are matched by local name: some writers omit the namespace or use another one.
``Courses`` hold planned routes, not recordings: their track points are counted
(``meta["course_points"]``) and not used, so a course-only file yields a Recording without
samples or activities (and a warning), which the pipeline stores as an empty source.

Reading streams (``lxml.iterparse``, elements cleared as soon as they are used) so memory stays
bounded by the chunk of pending point texts, not the file. The XML defences are those of
:mod:`actidose.ingest.xmlsafe`; TCX never has a DOCTYPE, so any DOCTYPE is refused.

This module also holds the XML track-point plumbing that :mod:`actidose.ingest.gpx` shares
(:func:`xml_events`, :class:`TrackPoints`, :func:`parse_iso8601`, :func:`place_in_utc`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

import numpy as np

from actidose.errors import InputError
from actidose.ingest import xmlsafe
from actidose.ingest.xmltrack import (
    PlacedPoints,
    TrackPoints,
    _child_text,
    _number,
    _text,
    child,
    children,
    drop,
    local_name,
    parse_iso8601,
    place_in_utc,
    xml_events,
)
from actidose.recording import ActivityInfo, ReadContext, Recording

__all__ = ["detect", "read"]

_ROOT: Final = "TrainingCenterDatabase"
_TAGS: Final = tuple(
    "{*}" + t for t in (_ROOT, "Activity", "Run", "Lap", "Trackpoint", "Course", "Author")
)
#: TCX v1 ``History/Running|Biking|Other/.../Run``: the sport is the folder the run is in.
_V1_FOLDERS: Final = frozenset({"Running", "Biking", "Other"})
#: TCX ``Sport_t`` values to the lower-case FIT sport names used everywhere else.
_SPORTS: Final = {"running": "running", "biking": "cycling", "other": "other"}
#: A lap longer than this (s) is not a lap; its TotalTimeSeconds is ignored (and would overflow).
_MAX_LAP_S: Final = 10_000_000.0

_US: Final = 1_000_000


def detect(head: bytes) -> bool:
    """True when the root element of ``head`` (the first bytes of a file) is
    ``TrainingCenterDatabase`` in any namespace (TCX v2 xsd; v1 has the same root).

    A UTF-8 BOM and whitespace before ``<?xml`` are tolerated (Strava writes them). Content
    decides, never the file name.
    """
    return xmlsafe.root_name(head) == _ROOT.encode()


def read(
    fp: BinaryIO,
    *,
    path: str,
    salvage: bool = False,
    ctx: ReadContext,
) -> Recording:
    """Read one TCX document into a :class:`Recording` (``format="tcx"``, ``kind="activity"``).

    ``hr`` holds one sample per ``Trackpoint`` of an ``Activity`` that has both ``Time`` and
    ``HeartRateBpm`` (raw: no range filter, no de-duplication; a value that is not a number is
    kept as NaN and counted in a warning). Trackpoints with a time but no heart rate are counted
    in ``meta["points_without_hr"]``, those without a time in ``meta["points_without_time"]``.
    ``activities`` has one :class:`ActivityInfo` per ``Activity``: ``start`` = first
    ``Lap/@StartTime`` (else ``Id``), ``end`` = max(last trackpoint time, start + sum of
    ``TotalTimeSeconds``), ``timer_s`` = that sum, ``avg_hr`` the lap averages weighted by lap
    time, ``max_hr`` the largest lap maximum. ``device`` is ``Creator/Name``, ``serial`` its
    ``UnitId``.

    Times carry ``Z`` or an offset (which may change within a file); times without one are local
    wall times placed with ``ctx.timezone`` (an :class:`InputError` when there is none).

    Every failure is an :class:`InputError` naming ``path`` (and the line where known): a
    DOCTYPE (entity attacks), malformed XML, a root other than ``TrainingCenterDatabase``, a
    ``Time`` that is not an ISO 8601 date-time. With ``salvage=True`` damage stops the reading
    and the points before it are returned (``salvaged=True``, ``salvage_reason``); when nothing
    usable precedes the damage the error is raised anyway.
    """
    events = xml_events(fp, path, root=_ROOT, fmt="TCX", tags=_TAGS)
    st = _Tcx(TrackPoints(path))
    damage: InputError | None = None
    try:
        for event, el in events:
            st.event(event, el)
    except InputError as exc:
        if not salvage:
            raise
        damage = exc
    damage = st.points.close(damage, salvage)
    if damage is not None:
        if st.open is not None:
            st.end_activity(None)  # the activity the damage cut short, with what was read of it
        # a bad time is found a chunk late: activities that began after it are not kept
        st.activities = [a for a in st.activities if a.first <= st.points.n]

    pts = st.points.finish(ctx.timezone)
    rec = Recording(format="tcx", kind="activity", hr=pts.hr())
    rec.activities = _activities(st.activities, pts, ctx.timezone, path, rec.warnings)
    pts.report(rec)
    if st.course_points or st.courses:
        rec.meta["course_points"] = str(st.course_points)
        if not st.activities:
            rec.warnings.append(
                f"TCX holds only courses ({st.courses} planned route(s), not recordings): "
                "no samples"
            )
    if st.stray_points:
        rec.warnings.append(
            f"{st.stray_points} trackpoint(s) outside any Activity lap or Course ignored"
        )
    creators = list(dict.fromkeys(a.creator for a in st.activities if a.creator))
    rec.device = creators[0] if creators else None
    if len(creators) > 1:
        rec.meta["devices"] = "; ".join(creators)
    rec.serial = next((a.unit_id for a in st.activities if a.unit_id), None)
    product = next((a.product_id for a in st.activities if a.product_id), None)
    if product:
        rec.meta["product_id"] = product
    if st.author:
        rec.meta["author"] = st.author
    if st.root_creator:
        rec.meta["creator"] = st.root_creator
    if damage is not None:
        if len(rec.hr) == 0 and not rec.activities:
            raise damage
        rec.salvaged = True
        rec.salvage_reason = damage.reason
    return rec


# --------------------------------------------------------------------------------------------
# TCX structure


@dataclass
class _Lap:
    start: str | None
    total_s: float | None = None
    avg_hr: float | None = None
    max_hr: float | None = None


@dataclass
class _Activity:
    sport: str | None
    first: int  # index of its first timed point
    last: int = -1  # one past its last timed point
    laps: list[_Lap] = field(default_factory=list)
    id_text: str | None = None
    creator: str | None = None
    unit_id: str | None = None
    product_id: str | None = None


class _Tcx:
    """State of the streaming read: the open Activity/Lap and what was finished."""

    def __init__(self, points: TrackPoints) -> None:
        self.points = points
        self.activities: list[_Activity] = []
        self.open: _Activity | None = None
        self.open_el: Any = None
        self.lap: _Lap | None = None
        self.lap_el: Any = None
        self.depth = 0  # Activity nesting (an Activity inside an Activity is not TCX)
        self.courses = 0
        self.in_course = 0  # Course nesting
        self.course_points = 0
        self.stray_points = 0
        self.author: str | None = None
        self.root_creator: str | None = None

    def event(self, event: str, el: Any) -> None:
        name = local_name(el.tag)
        if name == "Trackpoint":
            if event == "end":
                self.trackpoint(el)
        elif event == "start":
            if name in ("Activity", "Run"):
                self.depth += 1
                if self.depth == 1:
                    sport = el.get("Sport") if name == "Activity" else _v1_sport(el)
                    self.open = _Activity(_sport(sport), self.points.n)
                    self.open_el = el
            elif name == "Lap" and self.open is not None:
                self.lap = _Lap(_text(el.get("StartTime")))
                self.lap_el = el
                self.open.laps.append(self.lap)
            elif name == "Course":
                self.courses += 1
                self.in_course += 1
            elif name == _ROOT:
                self.root_creator = _text(el.get("creator"))  # not TCX v2; Runtastic writes it
        elif name == "Lap":
            if self.lap is not None:
                _lap_facts(el, self.lap)
                self.lap = self.lap_el = None
            el.clear()
        elif name == "Course":
            self.in_course -= 1
        elif name in ("Activity", "Run"):
            self.depth -= 1
            if self.depth == 0:
                self.end_activity(el)
                el.clear()
        elif name == "Author" and el.getparent() is not None and el.getparent().getparent() is None:
            self.author = _text(_child_text(el, "Name"))

    def trackpoint(self, el: Any) -> None:
        if self.lap is None:
            if self.in_course > 0:
                self.course_points += 1
            else:
                self.stray_points += 1
        else:
            time_text = hr_text = None
            for ch in el:
                name = local_name(ch.tag)
                if name == "Time":
                    time_text = ch.text
                elif name == "HeartRateBpm":
                    hr_text = _child_text(ch, "Value")
                    if hr_text is None and len(ch) == 0:
                        hr_text = ch.text  # TCX v1: the number itself
            self.points.add(time_text, hr_text, el.sourceline)
        drop(el)

    def end_activity(self, el: Any) -> None:
        """Finish the open Activity from its element (None: the damage cut it short; what was
        read of its element is used)."""
        act, el = self.open, el if el is not None else self.open_el
        if act is None:
            return
        if self.lap is not None and self.lap_el is not None:
            _lap_facts(self.lap_el, self.lap)  # a lap cut short by damage
        act.last = self.points.n
        kids = children(el) if el is not None else {}
        if "Id" in kids:
            act.id_text = _text(kids["Id"].text)
        creator = kids.get("Creator")
        if creator is not None:
            act.creator = _text(_child_text(creator, "Name"))
            act.unit_id = _text(_child_text(creator, "UnitId"))
            act.product_id = _text(_child_text(creator, "ProductID"))
        self.activities.append(act)
        self.open = self.open_el = self.lap = self.lap_el = None


def _lap_facts(el: Any, lap: _Lap) -> None:
    kids = children(el)
    total = _number(kids.get("TotalTimeSeconds"))
    lap.total_s = total if total is not None and 0.0 <= total <= _MAX_LAP_S else None
    avg, mx = kids.get("AverageHeartRateBpm"), kids.get("MaximumHeartRateBpm")
    lap.avg_hr = _bpm_value(avg)
    lap.max_hr = _bpm_value(mx)


def _bpm_value(el: Any) -> float | None:
    """``HeartRateInBeatsPerMinute_t`` (v2: a ``Value`` child) or a plain number (v1)."""
    if el is None:
        return None
    value = child(el, "Value")
    return _number(value if value is not None else el)


def _v1_sport(run: Any) -> str | None:
    folder = run.getparent()
    while folder is not None:
        if local_name(folder.tag) in _V1_FOLDERS:
            return str(local_name(folder.tag))
        folder = folder.getparent()
    return None


def _activities(
    acts: list[_Activity], pts: PlacedPoints, tz: str | None, path: str, warnings: list[str]
) -> list[ActivityInfo]:
    """One ActivityInfo per Activity (see :func:`read` for the rules)."""
    if not acts:
        return []
    starts_text = []
    for a in acts:
        lap_start = next((lap.start for lap in a.laps if lap.start), None)
        starts_text.append(lap_start or a.id_text or "")
    local, offset, ok = parse_iso8601(starts_text)
    start_us = np.zeros(len(acts), np.int64)
    if ok.any():
        start_us[ok], _ = place_in_utc(local[ok], offset[ok], tz, path)
    out: list[ActivityInfo] = []
    bad_start = 0
    n = len(pts.ts_us)
    for i, a in enumerate(acts):
        lo, hi = min(a.first, n), min(max(a.last, a.first), n)
        span = pts.ts_us[lo:hi]
        if ok[i]:
            start = int(start_us[i])
        elif span.size:
            start = int(span.min())
            bad_start += bool(starts_text[i])
        else:
            bad_start += bool(starts_text[i])
            continue
        totals = [lap.total_s for lap in a.laps if lap.total_s is not None]
        timer_s = float(sum(totals)) if totals else None
        end = start
        if span.size:
            end = max(end, int(span.max()))
        if timer_s is not None:
            end = max(end, start + round(timer_s * _US))
        out.append(
            ActivityInfo(
                start=np.datetime64(start, "us"),
                end=np.datetime64(end, "us"),
                sport=a.sport,
                timer_s=timer_s,
                elapsed_s=(end - start) / _US,
                avg_hr=_weighted_avg(a.laps),
                max_hr=max((lap.max_hr for lap in a.laps if lap.max_hr is not None), default=None),
            )
        )
    if bad_start:
        warnings.append(
            f"{bad_start} activity start time(s) (Lap StartTime / Id) not ISO 8601: "
            "the first trackpoint time is used"
        )
    if len(out) < len(acts):
        warnings.append(f"{len(acts) - len(out)} activity(ies) without any time skipped")
    return out


def _weighted_avg(laps: list[_Lap]) -> float | None:
    """Lap average HRs weighted by lap time (plain mean when no lap has a usable time)."""
    pairs = [(lap.avg_hr, lap.total_s) for lap in laps if lap.avg_hr is not None]
    if not pairs:
        return None
    weight = sum(t or 0.0 for _, t in pairs)
    if weight > 0:
        return sum(h * (t or 0.0) for h, t in pairs) / weight
    return sum(h for h, _ in pairs) / len(pairs)


def _sport(value: str | None) -> str | None:
    value = _text(value)
    if value is None:
        return None
    key = value.lower()
    return _SPORTS.get(key, key)
