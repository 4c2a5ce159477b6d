"""Hostile and damaged input for actidose.ingest.apple_health: entity attacks, truncation,
garbage, bad dates, control characters, and "any bytes give a Recording or an InputError"."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError
from actidose.ingest import apple_health as ah
from actidose.ingest.apple_health_writer import write_export
from actidose.recording import ReadContext, Recording

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "apple-health"
HR = "HKQuantityTypeIdentifierHeartRate"


def read(data: bytes, **kw: bool) -> Recording:
    return ah.read(io.BytesIO(data), path="export.xml", ctx=ReadContext(), **kw)


class Unseekable(io.RawIOBase):
    """A stream that can only be read forward (a pipe, a network stream)."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def unseekable(data: bytes) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(Unseekable(data)))


def stream(data: bytes, seekable: bool) -> BinaryIO:
    return io.BytesIO(data) if seekable else unseekable(data)


def hr(t: str, v: str = "70", source: str = "W") -> str:
    return (
        f' <Record type="{HR}" sourceName="{source}" unit="count/min" startDate="{t}" '
        f'endDate="{t}" value="{v}"/>\n'
    )


@pytest.fixture(scope="module")
def small_export() -> tuple[bytes, np.ndarray]:
    buf = io.BytesIO()
    truth = write_export(buf, days=3, seed=21)
    return buf.getvalue(), truth.hr_ts


# --- entity attacks: refused before anything is parsed ----------------------------------------

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE HealthData [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<HealthData locale="en"><Record type="HKQuantityTypeIdentifierHeartRate" sourceName="&lol9;"
 startDate="2019-01-01 00:00:00 +0000" endDate="2019-01-01 00:00:00 +0000" value="60"/></HealthData>
"""


def quadratic() -> bytes:
    big = b"x" * 200_000
    ref = b"&a;" * 20_000
    return (
        b'<?xml version="1.0"?>\n<!DOCTYPE HealthData [<!ENTITY a "' + big + b'">]>\n'
        b'<HealthData locale="en"><ExportDate value="' + ref + b'"/></HealthData>\n'
    )


def external(uri: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE HealthData [<!ENTITY xxe SYSTEM "{uri}">]>\n'
        f'<HealthData locale="en"><ExportDate value="&xxe;"/></HealthData>\n'
    ).encode()


ATTACKS = {
    "billion laughs": LAUGHS,
    "quadratic blowup": quadratic(),
    "external entity file": external("file:///etc/passwd"),
    "external entity http": external("http://127.0.0.1:9/x"),
    "parameter entity": b'<?xml version="1.0"?>\n<!DOCTYPE HealthData [<!ENTITY % p SYSTEM '
    b'"http://127.0.0.1:9/p.dtd"> %p;]>\n<HealthData locale="en"/>\n',
    "external DTD": b'<?xml version="1.0"?>\n<!DOCTYPE HealthData SYSTEM '
    b'"http://127.0.0.1:9/evil.dtd">\n<HealthData locale="en"/>\n',
    "external DTD file": b'<?xml version="1.0"?>\n<!DOCTYPE HealthData PUBLIC "-//x" '
    b'"file:///etc/passwd">\n<HealthData locale="en"/>\n',
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("salvage", [False, True])
def test_entity_attacks_are_refused_fast(name: str, salvage: bool) -> None:
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="refused") as info:
        read(ATTACKS[name], salvage=salvage)
    assert time.perf_counter() - t0 < 1.0
    assert info.value.path == "export.xml" and info.value.offset is not None
    assert "passwd" not in str(info.value)


def test_undeclared_entity_reference_is_an_error() -> None:
    data = b'<?xml version="1.0"?>\n<HealthData locale="&xxe;"></HealthData>\n'
    with pytest.raises(InputError, match="xxe"):
        read(data)


def test_xinclude_is_not_processed() -> None:
    xi = b'xmlns:xi="http://www.w3.org/2001/XInclude"'
    data = (
        b'<?xml version="1.0"?>\n<HealthData locale="en" ' + xi + b">"
        b'<xi:include href="file:///etc/passwd" parse="text"/>'
        + hr("2019-01-01 00:00:00 +0000").encode()
        + b"</HealthData>\n"
    )
    rec = read(data)
    assert len(rec.hr) == 1 and "root" not in "".join(rec.meta.values())


# --- wrong or damaged files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b'<?xml version="1.0"?><TrainingCenterDatabase/>', "not an Apple Health export"),
        ('<?xml version="1.0"?><HealthData/>'.encode("utf-16"), "not UTF-8"),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><HealthData/>', "encoding 'ISO-8859-1'"),
        (b"\x0e\x10\x00\x00\x00\x00\x00\x00.FIT", "malformed XML at line 1, column 1: Start tag"),
        (b"hello", "malformed XML"),
        (b'<?xml version="1.0"?>\n<HealthData locale="en">\n<Record/>\n', "truncated at line 4"),
    ],
)
def test_wrong_files(data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as info:
        read(data, salvage=True)
    assert info.value.path == "export.xml"


def test_truncated_with_and_without_salvage(small_export: tuple[bytes, np.ndarray]) -> None:
    data, hr_ts = small_export
    cut = data[: int(len(data) * 0.6)]
    with pytest.raises(InputError, match="truncated") as info:
        read(cut)
    assert info.value.offset == len(cut)
    rec = read(cut, salvage=True)
    assert rec.salvaged and rec.salvage_reason is not None and "truncated" in rec.salvage_reason
    n = len(rec.hr)
    assert 0 < n <= len(hr_ts)
    np.testing.assert_array_equal(rec.hr.ts, hr_ts[:n])  # a prefix, in file order
    # everything written before the cut was kept: the last sample's record is before it
    whole = read(data)
    assert n == len(whole.hr) or n >= len(hr_ts) * 0.9


def test_truncated_in_the_prolog_has_nothing_to_salvage(
    small_export: tuple[bytes, np.ndarray],
) -> None:
    data, _ = small_export
    with pytest.raises(InputError):
        read(data[:3000], salvage=True)


@pytest.mark.parametrize("seekable", [True, False])
def test_garbage_in_the_middle(small_export: tuple[bytes, np.ndarray], seekable: bool) -> None:
    data, _ = small_export
    at = data.index(b"<Record", len(data) // 2)
    bad = data[:at] + b"<<oops" + data[at:]
    line = bad[:at].count(b"\n") + 1
    with pytest.raises(InputError, match=f"malformed XML at line {line}") as info:
        ah.read(stream(bad, seekable), path="e.xml", ctx=ReadContext())
    assert info.value.offset is not None
    if seekable:
        assert at <= info.value.offset <= at + 10  # the byte where libxml2 stopped
    else:
        assert info.value.offset >= at  # how far it got
    rec = ah.read(
        stream(bad, seekable),
        path="e.xml",
        ctx=ReadContext(),
        salvage=True,
    )
    assert rec.salvaged and len(rec.hr) > 0


def test_bad_date_names_it_and_its_place() -> None:
    body = "".join(hr(f"2019-01-01 00:{i:02d}:00 +0000") for i in range(10))
    body += hr("2019-02-30 00:00:00 +0000") + hr("2019-03-01 00:00:00 +0000")
    data = b'<?xml version="1.0"?>\n<HealthData locale="en">\n' + body.encode() + b"</HealthData>"
    with pytest.raises(InputError, match="unreadable heart rate startDate '2019-02-30") as info:
        read(data)
    assert info.value.offset == data.index(b"2019-02-30")
    rec = read(data, salvage=True)
    assert rec.salvaged and len(rec.hr) == 10
    assert rec.salvage_reason is not None and "2019-02-30" in rec.salvage_reason


def test_bad_vendor_and_workout_dates() -> None:
    rec_bad = (
        ' <Record type="HKQuantityTypeIdentifierStepCount" sourceName="P" unit="count" '
        'startDate="2019-01-01 00:00:00 +0000" endDate="yesterday" value="5"/>\n'
    )
    data = (
        '<?xml version="1.0"?>\n<HealthData locale="en">\n'
        + hr("2019-01-01 00:00:00 +0000")
        + rec_bad
        + "</HealthData>"
    ).encode()
    with pytest.raises(InputError, match="unreadable steps endDate 'yesterday'"):
        read(data)
    assert len(read(data, salvage=True).hr) == 1
    wk = (
        ' <Workout workoutActivityType="HKWorkoutActivityTypeRunning" sourceName="W" '
        'startDate="2019-01-01" endDate="2019-01-01 01:00:00 +0000"/>\n'
    )
    data = (
        '<?xml version="1.0"?>\n<HealthData locale="en">\n'
        + hr("2019-01-01 00:00:00 +0000")
        + wk
        + "</HealthData>"
    ).encode()
    with pytest.raises(InputError, match="unreadable Workout startDate"):
        read(data)
    rec = read(data, salvage=True)
    assert rec.activities == [] and len(rec.hr) == 1


def test_control_characters_are_replaced_and_counted() -> None:
    data = (
        '<?xml version="1.0"?>\n<HealthData locale="en">\n'
        + hr("2019-01-01 00:00:00 +0000", source="Sam\x0bs Watch")
        + hr("2019-01-01 00:01:00 +0000")
        + "</HealthData>\n"
    ).encode()
    rec = read(data)
    assert rec.hr.bpm.tolist() == [70.0, 70.0]
    assert rec.meta["hr_sources"] == "Sam s Watch (1); W (1)"
    assert any("1 control character(s)" in w for w in rec.warnings)
    with pytest.raises(InputError, match="invalid character"):
        ah.read(unseekable(data), path="p", ctx=ReadContext())


def test_unseekable_stream_reads_fine(small_export: tuple[bytes, np.ndarray]) -> None:
    data, hr_ts = small_export
    rec = ah.read(unseekable(data), path="p", ctx=ReadContext())
    np.testing.assert_array_equal(rec.hr.ts, hr_ts)


# --- any bytes: a Recording or our own error ---------------------------------------------------


def outcome(data: bytes, salvage: bool) -> Recording | InputError:
    try:
        return read(data, salvage=salvage)
    except InputError as exc:
        assert exc.reason and exc.path == "export.xml"
        return exc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.booleans())
def test_arbitrary_bytes(data: bytes, salvage: bool) -> None:
    outcome(data, salvage)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='<>/="&;! ?[]-:aHRecordtyp\x0b\n0123456789+', max_size=400), st.booleans())
def test_arbitrary_markup(text: str, salvage: bool) -> None:
    outcome(('<?xml version="1.0"?>\n<HealthData locale="x">' + text).encode(), salvage)


def corpus_files() -> Iterator[bytes]:
    if CORPUS.is_dir():
        for p in sorted(CORPUS.glob("*.xml")):
            yield p.read_bytes()
    buf = io.BytesIO()
    write_export(buf, days=1, seed=3, dtd="ios16")
    yield buf.getvalue()


SEEDS = list(corpus_files())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete", "cut"]),
            st.floats(0, 1),
            st.binary(min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_mutated_exports(which: int, edits: list[tuple[str, float, bytes]], salvage: bool) -> None:
    data = bytearray(SEEDS[which])
    for op, where, payload in edits:
        i = int(where * max(len(data) - 1, 0))
        if op == "flip" and data:
            data[i] ^= payload[0] or 1
        elif op == "insert":
            data[i:i] = payload
        elif op == "delete":
            del data[i : i + len(payload)]
        else:
            del data[i:]
    result = outcome(bytes(data), salvage)
    if isinstance(result, Recording):
        assert len(result.hr.ts) == len(result.hr.bpm)
        for v in result.vendor:
            assert v.start.shape == v.value.shape
