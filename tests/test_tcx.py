"""actidose.ingest.tcx: the real TCX files of the shared corpus, tiny hand-built documents,
hostile XML, damage and salvage, and property tests (any bytes -> Recording or InputError)."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError
from actidose.ingest import gpx, tcx, xmltrack
from actidose.recording import ReadContext, Recording

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
TCX_DIR = CORPUS / "tcx"
needs_corpus = pytest.mark.skipif(not TCX_DIR.is_dir(), reason=f"corpus not found at {TCX_DIR}")
CORPUS_FILES = sorted(p.name for p in TCX_DIR.glob("*.tcx")) if TCX_DIR.is_dir() else []
CTX = ReadContext()
NS = "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"


def read(data: bytes, *, salvage: bool = False, ctx: ReadContext = CTX) -> Recording:
    return tcx.read(io.BytesIO(data), path="t.tcx", salvage=salvage, ctx=ctx)


def us(text: str) -> np.datetime64:
    """An ISO time with zone as a naive-UTC datetime64[us] (the test's own conversion)."""
    d = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return np.datetime64(d.replace(tzinfo=None), "us")


# --------------------------------------------------------------------------------------------
# independent reading: regular expressions over the text, datetime.fromisoformat for times

_TP = re.compile(r"<(?:\w+:)?Trackpoint\b[^>]*>(.*?)</(?:\w+:)?Trackpoint>", re.S)
_TIME = re.compile(r"<(?:\w+:)?Time>\s*([^<]*?)\s*</")
_HR = re.compile(r"<(?:\w+:)?HeartRateBpm\b[^>]*>\s*<(?:\w+:)?Value>\s*([^<]*?)\s*</")


def independent_hr(text: str) -> tuple[list[np.datetime64], list[float], int]:
    """(times, bpm) of complete trackpoints with time and HR; and how many had a time only."""
    ts: list[np.datetime64] = []
    bpm: list[float] = []
    no_hr = 0
    for m in _TP.finditer(text):
        t, h = _TIME.search(m.group(1)), _HR.search(m.group(1))
        if t is None:
            continue
        if h is None:
            no_hr += 1
            continue
        ts.append(us(t.group(1)))
        bpm.append(float(h.group(1)))
    return ts, bpm, no_hr


@needs_corpus
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_matches_independent_reading(name: str) -> None:
    data = (TCX_DIR / name).read_bytes()
    assert tcx.detect(data[:4096]) and not gpx.detect(data[:4096])
    rec = read(data)
    ts, bpm, no_hr = independent_hr(data.decode("utf-8"))
    assert rec.format == "tcx" and rec.kind == "activity" and not rec.salvaged
    assert len(rec.hr) == len(ts)
    assert rec.hr.ts.dtype == np.dtype("datetime64[us]") and rec.hr.bpm.dtype == np.float64
    np.testing.assert_array_equal(rec.hr.ts, np.array(ts, "datetime64[us]"))
    np.testing.assert_array_equal(rec.hr.bpm, np.array(bpm, float))
    assert rec.meta["points_without_hr"] == str(no_hr)
    assert len(rec.activities) == len(re.findall(r"<(?:\w+:)?Activity\b", data.decode()))


# Hand-checked against the files (grep of the first and last Trackpoint with a HeartRateBpm).
HAND: dict[str, tuple[int, str, float, str, float, str | None]] = {
    # name: (n, first time, first bpm, last time, last bpm, sport)
    "test.tcx": (383, "2012-12-26T21:29:53Z", 62, "2012-12-26T22:03:04Z", 180, "running"),
    "slither-running.tcx": (
        750,
        "2016-12-11T11:01:11Z",
        154,
        "2016-12-11T11:13:40Z",
        153,
        "running",
    ),
    "cross-country-skiing_activity_1.tcx": (
        486,
        "2020-12-26T15:14:21Z",
        83,
        "2020-12-26T15:54:22Z",
        132,
        "other",
    ),
    "sup_activity_1.tcx": (111, "2022-07-16T16:08:25Z", 96, "2022-07-16T16:26:57Z", 92, "other"),
}


@needs_corpus
@pytest.mark.parametrize("name", sorted(HAND))
def test_corpus_hand_checked(name: str) -> None:
    n, t0, b0, t1, b1, sport = HAND[name]
    rec = read((TCX_DIR / name).read_bytes())
    assert len(rec.hr) == n
    assert (rec.hr.ts[0], rec.hr.bpm[0]) == (us(t0), b0)
    assert (rec.hr.ts[-1], rec.hr.bpm[-1]) == (us(t1), b1)
    assert [a.sport for a in rec.activities] == [sport]


@needs_corpus
def test_test_tcx_activity_summary() -> None:
    rec = read((TCX_DIR / "test.tcx").read_bytes())
    (a,) = rec.activities
    laps = [(608.47, 139, 189), (714.80, 172, 188), (669.51, 167, 180)]
    timer = sum(t for t, _, _ in laps)
    assert a.start == us("2012-12-26T21:29:53Z")
    assert a.timer_s == pytest.approx(1992.78)
    # the laps last longer than the track (last point 22:03:05): end = start + sum of laps
    assert a.end == us("2012-12-26T21:29:53Z") + np.timedelta64(1992_780_000, "us")
    assert a.elapsed_s == pytest.approx(1992.78)
    assert a.avg_hr == pytest.approx(sum(t * h for t, h, _ in laps) / timer)
    assert a.max_hr == 189
    assert rec.device == "Forerunner 410 Software Version 2.20"
    assert rec.serial == "3854007508"
    assert rec.meta["product_id"] == "1250"
    assert rec.meta["points_without_hr"] == "1"  # the last trackpoint has only a time


@needs_corpus
def test_slither_end_is_last_trackpoint() -> None:
    # lap starts 10:54:30 and lasts 750 s, but the track runs until 11:13:40
    (a,) = read((TCX_DIR / "slither-running.tcx").read_bytes()).activities
    assert a.start == us("2016-12-11T10:54:30Z")
    assert a.end == us("2016-12-11T11:13:40Z")
    assert a.timer_s == 750 and a.elapsed_s == 1150
    assert (a.avg_hr, a.max_hr) == (154, 187)


@needs_corpus
def test_no_hr_and_mapmyride() -> None:
    rec = read((TCX_DIR / "no_hr.tcx").read_bytes())
    assert len(rec.hr) == 0
    assert rec.meta["points_without_hr"] == "384"
    assert [a.sport for a in rec.activities] == ["running"]
    rec = read((TCX_DIR / "mapmyride_biking.tcx").read_bytes())
    assert len(rec.hr) == 0 and rec.meta["points_without_hr"] == "3112"
    (a,) = rec.activities
    assert a.sport == "cycling"  # TCX "Biking"
    assert a.end == us("2022-11-12T16:50:16.526400+00:00")  # last point, later than lap end
    assert rec.utc_offset_s is None  # "+00:00" says nothing about the local zone


@needs_corpus
@pytest.mark.parametrize("prefix", [b"   ", b"\n\t  \r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf  \n"])
def test_leading_whitespace_and_bom(prefix: bytes) -> None:
    data = prefix + (TCX_DIR / "sup_activity_1.tcx").read_bytes()
    assert tcx.detect(data[:4096])
    assert len(read(data).hr) == 111


# --------------------------------------------------------------------------------------------
# tiny documents


def doc(activities: str, ns: str = NS, extra: str = "") -> bytes:
    xmlns = f' xmlns="{ns}"' if ns else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<TrainingCenterDatabase{xmlns}>'
        f"<Activities>{activities}</Activities>{extra}</TrainingCenterDatabase>"
    ).encode()


def tp(t: str | None, hr: int | str | None = None) -> str:
    time_el = f"<Time>{t}</Time>" if t is not None else ""
    hr_el = f"<HeartRateBpm><Value>{hr}</Value></HeartRateBpm>" if hr is not None else ""
    return f"<Trackpoint>{time_el}{hr_el}</Trackpoint>"


def lap(
    start: str, total: float | None, points: str, avg: int | None = None, mx: int | None = None
) -> str:
    parts = [f'<Lap StartTime="{start}">']
    if total is not None:
        parts.append(f"<TotalTimeSeconds>{total}</TotalTimeSeconds>")
    if avg is not None:
        parts.append(f"<AverageHeartRateBpm><Value>{avg}</Value></AverageHeartRateBpm>")
    if mx is not None:
        parts.append(f"<MaximumHeartRateBpm><Value>{mx}</Value></MaximumHeartRateBpm>")
    parts.append(f"<Track>{points}</Track></Lap>")
    return "".join(parts)


def activity(sport: str, ident: str, laps: str, creator: str = "") -> str:
    return f'<Activity Sport="{sport}"><Id>{ident}</Id>{laps}{creator}</Activity>'


def test_several_activities() -> None:
    a1 = activity(
        "Running",
        "2024-05-01T10:00:00Z",
        lap(
            "2024-05-01T10:00:00Z",
            60,
            tp("2024-05-01T10:00:00Z", 100) + tp("2024-05-01T10:00:30Z", 110),
            avg=120,
            mx=150,
        )
        + lap(
            "2024-05-01T10:01:00Z",
            180,
            tp("2024-05-01T10:01:00Z", 140) + tp("2024-05-01T10:03:59Z"),
            avg=160,
            mx=170,
        ),
        "<Creator><Name>Forerunner 945</Name><UnitId>3999</UnitId><ProductID>3113</ProductID>"
        "</Creator>",
    )
    a2 = activity(
        "Biking",
        "2024-05-01T17:00:00Z",
        lap(
            "2024-05-01T17:00:00Z",
            10,
            tp("2024-05-01T17:00:00Z", 90) + tp("2024-05-01T17:00:20Z", 95),
        ),
    )
    a3 = activity("Other", "2024-05-02T08:00:00Z", lap("2024-05-02T08:00:00Z", None, ""))
    rec = read(doc(a1 + a2 + a3))
    assert len(rec.hr) == 5
    np.testing.assert_array_equal(rec.hr.bpm, [100, 110, 140, 90, 95])
    assert rec.meta["points_without_hr"] == "1"
    r, b, o = rec.activities
    assert (r.sport, b.sport, o.sport) == ("running", "cycling", "other")
    assert r.start == us("2024-05-01T10:00:00Z")
    assert r.end == us("2024-05-01T10:04:00Z")  # start + 60 + 180 s
    assert r.timer_s == 240 and r.avg_hr == pytest.approx((120 * 60 + 160 * 180) / 240)
    assert r.max_hr == 170
    assert b.end == us("2024-05-01T17:00:20Z")  # last point beyond the 10 s lap
    assert b.avg_hr is None and b.max_hr is None
    assert o.start == o.end == us("2024-05-02T08:00:00Z") and o.timer_s is None
    assert rec.device == "Forerunner 945" and rec.serial == "3999"


def test_mixed_offsets_in_one_file() -> None:
    times = [
        "2024-05-01T12:00:00+02:00",
        "2024-05-01T10:00:01Z",
        "2024-05-01T05:00:02-05:00",
        "2024-05-01T10:00:03.250+00:00",
        "2024-05-01T15:30:04+0530",
        "2024-05-01T12:00:05+02",
        "2024-05-01 10:00:06z",
        "2024-05-01T10:00:07,5Z",
        "2024-05-01T10:00:08.123456789Z",
    ]
    pts = "".join(tp(t, 100 + i) for i, t in enumerate(times))
    rec = read(doc(activity("Running", times[0], lap(times[0], 9, pts))))
    expected = [us("2024-05-01T10:00:00Z") + np.timedelta64(i, "s") for i in range(9)]
    expected[3] += np.timedelta64(250, "ms")
    expected[7] += np.timedelta64(500, "ms")
    expected[8] += np.timedelta64(123456, "us")
    np.testing.assert_array_equal(rec.hr.ts, np.array(expected, "datetime64[us]"))
    assert rec.utc_offset_s == 7200  # the first point's offset
    assert rec.meta["utc_offsets_s"] == "-18000,0,7200,19800"


def naive_doc() -> bytes:
    # Europe/London, 2024-03-31: 01:00 GMT becomes 02:00 BST
    times = [
        "2024-03-31T00:59:58",
        "2024-03-31T00:59:59",
        "2024-03-31T02:00:00",
        "2024-03-31T02:00:01",
        "2024-03-31T01:30:00",
    ]
    pts = "".join(tp(t, 120) for t in times)
    return doc(activity("Running", times[0], lap(times[0], 62, pts)))


def test_naive_times_need_a_zone() -> None:
    with pytest.raises(InputError) as err:
        read(naive_doc())
    assert err.value.reason == xmltrack.NAIVE_TIMES
    assert err.value.path == "t.tcx"


def test_naive_times_placed_in_zone_across_dst() -> None:
    rec = read(naive_doc(), ctx=ReadContext(timezone="Europe/London"))
    expected = [
        "2024-03-31T00:59:58Z",
        "2024-03-31T00:59:59Z",
        "2024-03-31T01:00:00Z",
        "2024-03-31T01:00:01Z",
        "2024-03-31T01:30:00Z",
    ]
    np.testing.assert_array_equal(rec.hr.ts, np.array([us(t) for t in expected]))
    assert any("1 local time(s) in the hour skipped" in w for w in rec.warnings)
    (a,) = rec.activities
    assert a.start == us("2024-03-31T00:59:58Z")
    assert rec.utc_offset_s is None


def test_namespace_less_and_other_namespace() -> None:
    body = activity(
        "running",
        "2024-05-01T10:00:00Z",
        lap("2024-05-01T10:00:00Z", 1, tp("2024-05-01T10:00:00Z", 77)),
    )
    for ns in ("", "http://example.com/not-garmin"):
        rec = read(doc(body, ns=ns))
        assert list(rec.hr.bpm) == [77] and rec.activities[0].sport == "running"
    # prefixed elements, as some writers do
    pre = (
        b'<tcx:TrainingCenterDatabase xmlns:tcx="' + NS.encode() + b'"><tcx:Activities>'
        b'<tcx:Activity Sport="Biking"><tcx:Id>2024-05-01T10:00:00Z</tcx:Id>'
        b'<tcx:Lap StartTime="2024-05-01T10:00:00Z"><tcx:Track><tcx:Trackpoint>'
        b"<tcx:Time>2024-05-01T10:00:00Z</tcx:Time><tcx:HeartRateBpm><tcx:Value>88"
        b"</tcx:Value></tcx:HeartRateBpm></tcx:Trackpoint></tcx:Track></tcx:Lap>"
        b"</tcx:Activity></tcx:Activities></tcx:TrainingCenterDatabase>"
    )
    assert tcx.detect(pre)
    assert list(read(pre).hr.bpm) == [88]


def test_points_without_time_and_bad_hr_values() -> None:
    pts = tp(None, 100) + tp("2024-05-01T10:00:01Z", "abc") + tp("2024-05-01T10:00:02Z", 101)
    pts += "<Trackpoint><Time>2024-05-01T10:00:03Z</Time><HeartRateBpm><Value/></HeartRateBpm>"
    pts += "</Trackpoint>"
    rec = read(
        doc(activity("Running", "2024-05-01T10:00:00Z", lap("2024-05-01T10:00:00Z", 3, pts)))
    )
    np.testing.assert_array_equal(rec.hr.bpm, [np.nan, 101])
    assert rec.meta["points_without_time"] == "1"
    assert rec.meta["points_without_hr"] == "1"
    assert any("not a number" in w for w in rec.warnings)
    assert any("without a time" in w for w in rec.warnings)


def test_courses_only_file_gives_an_empty_recording() -> None:
    course = (
        "<Courses><Course><Name>Loop</Name><Lap><TotalTimeSeconds>60</TotalTimeSeconds></Lap>"
        "<Track>" + tp("2010-01-01T00:00:00Z", 100) + tp("2010-01-01T00:00:01Z") + "</Track>"
        "</Course></Courses>"
    )
    rec = read(doc("", extra=course))
    assert len(rec.hr) == 0 and rec.activities == []
    assert rec.meta["course_points"] == "2"
    assert any("only courses" in w for w in rec.warnings)


def test_tcx_v1_history_runs() -> None:
    v1 = "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v1"
    run = (
        '<Run><Lap StartTime="2007-06-01T10:00:00Z"><TotalTimeSeconds>30</TotalTimeSeconds>'
        "<AverageHeartRateBpm>140</AverageHeartRateBpm><MaximumHeartRateBpm>150"
        "</MaximumHeartRateBpm><Track><Trackpoint><Time>2007-06-01T10:00:00Z</Time>"
        "<HeartRateBpm>141</HeartRateBpm></Trackpoint></Track></Lap></Run>"
    )
    data = (
        f'<TrainingCenterDatabase xmlns="{v1}"><History><Running><Folder>{run}</Folder>'
        "</Running><Biking/><Other/></History></TrainingCenterDatabase>"
    ).encode()
    rec = read(data)
    assert list(rec.hr.bpm) == [141]
    (a,) = rec.activities
    assert (a.sport, a.timer_s, a.avg_hr, a.max_hr) == ("running", 30, 140, 150)


def test_stray_trackpoints_are_counted() -> None:
    stray = "<Track>" + tp("2024-05-01T10:00:00Z", 100) + "</Track>"
    rec = read(doc("", extra=stray))
    assert len(rec.hr) == 0
    assert any("1 trackpoint(s) outside any Activity lap or Course" in w for w in rec.warnings)


def test_multisport_session() -> None:
    run = activity(
        "Running",
        "2024-05-01T10:00:00Z",
        lap("2024-05-01T10:00:00Z", 1, tp("2024-05-01T10:00:00Z", 150)),
    )
    bike = activity(
        "Biking",
        "2024-05-01T11:00:00Z",
        lap("2024-05-01T11:00:00Z", 1, tp("2024-05-01T11:00:00Z", 140)),
    )
    ms = f"<MultiSportSession><Id>x</Id><FirstSport>{run}</FirstSport><NextSport>{bike}"
    rec = read(doc(ms + "</NextSport></MultiSportSession>"))
    assert [a.sport for a in rec.activities] == ["running", "cycling"]
    assert list(rec.hr.bpm) == [150, 140]


def test_bad_time_is_an_error_with_line_and_salvage_keeps_before() -> None:
    pts = "\n".join(tp(f"2024-05-01T10:00:0{i}Z", 100 + i) for i in range(3))
    pts += "\n" + tp("yesterday", 99) + tp("2024-05-01T10:00:05Z", 105)
    data = doc(activity("Running", "2024-05-01T10:00:00Z", lap("2024-05-01T10:00:00Z", 5, pts)))
    with pytest.raises(InputError, match=r"time 'yesterday' at line 5 is not an ISO 8601"):
        read(data)
    rec = read(data, salvage=True)
    assert rec.salvaged and "yesterday" in (rec.salvage_reason or "")
    assert list(rec.hr.bpm) == [100, 101, 102]


# --------------------------------------------------------------------------------------------
# damage


@needs_corpus
def test_truncated_file_with_and_without_salvage() -> None:
    data = (TCX_DIR / "test.tcx").read_bytes()
    cut = data[: len(data) // 2]
    with pytest.raises(InputError, match="malformed XML") as err:
        read(cut)
    assert err.value.path == "t.tcx"
    rec = read(cut, salvage=True)
    ts, bpm, _ = independent_hr(cut.decode())
    assert rec.salvaged and rec.salvage_reason and "malformed XML" in rec.salvage_reason
    assert 0 < len(rec.hr) == len(ts)
    np.testing.assert_array_equal(rec.hr.bpm, bpm)
    (a,) = rec.activities  # the activity cut short is kept with what was read of it
    assert a.start == us("2012-12-26T21:29:53Z") and a.sport == "running"
    # nothing usable before the damage: the error is raised even with salvage
    with pytest.raises(InputError):
        read(data[:300], salvage=True)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"  \n ", "no XML content"),
        (b"<gpx></gpx>", "not a TCX file: the root element is <gpx>"),
        (b"<?xml version='1.0'?><TrainingCenterDatabase><Activities>", "malformed XML"),
        (b"\x0e\x10\x00\x00.FIT", "malformed XML"),
    ],
)
def test_bad_documents(data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=re.escape(reason)):
        read(data)


# --------------------------------------------------------------------------------------------
# hostile XML: refused by InputError, quickly

LOL = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
HOSTILE = {
    "billion_laughs": f'<!DOCTYPE TrainingCenterDatabase [<!ENTITY lol0 "lol">{LOL}]>'
    "<TrainingCenterDatabase><Activities>&lol9;</Activities></TrainingCenterDatabase>",
    "quadratic_blowup": '<!DOCTYPE TrainingCenterDatabase [<!ENTITY a "' + "x" * 50_000 + '">]>'
    "<TrainingCenterDatabase>" + "&a;" * 50_000 + "</TrainingCenterDatabase>",
    "external_file": '<!DOCTYPE TrainingCenterDatabase [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    "<TrainingCenterDatabase><Author><Name>&x;</Name></Author></TrainingCenterDatabase>",
    "external_http": "<!DOCTYPE TrainingCenterDatabase [<!ENTITY x SYSTEM "
    '"http://127.0.0.1:9/x.dtd">]><TrainingCenterDatabase>&x;</TrainingCenterDatabase>',
    "external_dtd": '<!DOCTYPE TrainingCenterDatabase SYSTEM "http://127.0.0.1:9/x.dtd">'
    "<TrainingCenterDatabase/>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_hostile_xml_refused(name: str, encoding: str) -> None:
    # UTF-16 hides the DOCTYPE from the byte-level prolog check: the parser-level check holds
    data = (f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n' + HOSTILE[name]).encode(
        encoding
    )
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"DOCTYPE|entit|malformed") as err:
        read(data, salvage=True)
    assert time.perf_counter() - t0 < 5
    assert "passwd" not in str(err.value) and "root:" not in str(err.value)


# --------------------------------------------------------------------------------------------
# properties

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def recording_or_input_error(data: bytes, salvage: bool) -> None:
    try:
        rec = read(data, salvage=salvage, ctx=ReadContext(timezone="Europe/London"))
    except InputError as exc:
        assert exc.path == "t.tcx" and exc.reason
        return
    assert isinstance(rec, Recording) and rec.format == "tcx"
    assert len(rec.hr.ts) == len(rec.hr.bpm)


@FAST
@given(st.binary(max_size=2000), st.booleans())
def test_any_bytes(data: bytes, salvage: bool) -> None:
    recording_or_input_error(data, salvage)
    tcx.detect(data[:4096])


@FAST
@given(st.binary(max_size=400), st.booleans())
def test_any_bytes_inside_a_tcx_root(data: bytes, salvage: bool) -> None:
    recording_or_input_error(b"<TrainingCenterDatabase><Activities>" + data, salvage)


SEED = doc(
    activity(
        "Running",
        "2024-05-01T10:00:00Z",
        lap(
            "2024-05-01T10:00:00+01:00",
            60,
            "".join(tp(f"2024-05-01T10:00:{i:02d}Z", 100 + i) for i in range(8)),
            avg=104,
            mx=107,
        )
        + lap("2024-05-01T10:01:00", 60, tp("2024-05-01T10:01:00", 120)),
    )
)
mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate"]),
    st.floats(0, 1),
    st.binary(min_size=1, max_size=8),
)


def mutate(data: bytes, ops: list[tuple[str, float, bytes]]) -> bytes:
    for op, where, junk in ops:
        i = int(where * len(data))
        if op == "flip" and data:
            i = min(i, len(data) - 1)
            data = data[:i] + bytes([data[i] ^ junk[0]]) + data[i + 1 :]
        elif op == "insert":
            data = data[:i] + junk + data[i:]
        elif op == "delete":
            data = data[:i] + data[i + len(junk) * 8 :]
        else:
            data = data[:i]
    return data


def seeds() -> list[bytes]:
    out = [SEED]
    if TCX_DIR.is_dir():
        out.append((TCX_DIR / "sup_activity_1.tcx").read_bytes())
    return out


SEEDS = seeds()


@FAST
@given(
    st.sampled_from(range(len(SEEDS))), st.lists(mutation, min_size=1, max_size=4), st.booleans()
)
def test_mutated_files(seed: int, ops: list[tuple[str, float, bytes]], salvage: bool) -> None:
    recording_or_input_error(mutate(SEEDS[seed], ops), salvage)


offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: m * 60)


@FAST
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)),
            st.one_of(st.none(), offsets),
            st.sampled_from(["Z", "+HH:MM", "+HHMM", "+HH"]),
            st.integers(0, 6),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_parse_iso8601_agrees_with_datetime(
    items: list[tuple[datetime, int | None, str, int]],
) -> None:
    texts, want_local, want_off = [], [], []
    for dt, off, form, digits in items:
        if off is not None and form == "+HH":
            off -= off % 3600 if off >= 0 else -((-off) % 3600)
        if off is not None and form == "Z":
            off = 0
        frac = f"{dt.microsecond:06d}"[:digits]
        dt = dt.replace(microsecond=int(frac.ljust(6, "0")) if digits else 0)
        text = dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if digits else "")
        if off is not None:
            if form == "Z":
                text += "Z"
            else:
                sign, a = ("-" if off < 0 else "+"), abs(off)
                hh, mm = divmod(a // 60, 60)
                text += {
                    "+HH:MM": f"{sign}{hh:02d}:{mm:02d}",
                    "+HHMM": f"{sign}{hh:02d}{mm:02d}",
                    "+HH": f"{sign}{hh:02d}",
                }[form]
        texts.append(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        want_local.append(parsed.replace(tzinfo=None))
        if parsed.tzinfo is None:
            want_off.append(xmltrack.NAIVE)
        else:
            delta = parsed.utcoffset()
            assert delta is not None
            want_off.append(int(delta.total_seconds()))
    local, off, ok = xmltrack.parse_iso8601(texts)
    assert ok.all()
    epoch = datetime(1970, 1, 1)
    np.testing.assert_array_equal(
        local, [(d - epoch) // timedelta(microseconds=1) for d in want_local]
    )
    np.testing.assert_array_equal(off, want_off)


def test_parse_iso8601_refuses_what_numpy_would_accept() -> None:
    bad = [
        "NaT",
        "now",
        "today",
        "2024-05-01",
        "2024",
        "",
        "2024-05-01T10",
        "2024-13-01T10:00Z",
        "2024-05-01T10:00:61Z",
        "2024-05-01T10:00+25:00",
        "2024-05-01T10:00+02:00Z",
        "2024-05-01T10:00:00+2",
        "x" * 1000,
        "２０２４-05-01T10:00Z",
        "2024-05-01T10:00:00 Z",
    ]
    _, _, ok = xmltrack.parse_iso8601(bad)
    assert not ok.any()
    _, off, ok = xmltrack.parse_iso8601(["2024-05-01T10:00Z", "2024-05-01t10:00-00:30"])
    assert ok.all() and list(off) == [0, -1800]
