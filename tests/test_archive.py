"""Archives: zip and gzip streamed member by member, limits, hostile archives refused."""

from __future__ import annotations

import contextlib
import gc
import gzip
import io
import random
import stat
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError, UsageError
from actidose.ingest.archive import Limits, Member, archive_kind, iter_members

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
APPLE_ZIP = CORPUS / "apple-health" / "alxdrcirilo-export.zip"
FAST = 5.0  # seconds: every hostile archive is refused well within this


# --------------------------------------------------------------------------------------------
# helpers


def fake_fit(seed: int, n: int = 3000) -> bytes:
    """Bytes that look like a FIT file to the eye; the archive layer never parses them."""
    return (
        b"\x0e\x20\x00\x00" + n.to_bytes(4, "little") + b".FIT" + random.Random(seed).randbytes(n)
    )


def zip_bytes(
    members: Iterable[tuple[str | zipfile.ZipInfo, bytes]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def read_all(member: Member, chunk: int = 1 << 20) -> bytes:
    out = bytearray()
    with member.open() as fp:
        while block := fp.read(chunk):
            out += block
    return bytes(out)


def refusal(path: Path, limits: Limits | None = None) -> InputError:
    """The InputError for the whole archive, which must come before any member and fast."""
    start = time.perf_counter()
    got: list[Member] = []
    with pytest.raises(InputError) as err:
        for m in iter_members(path, limits=limits or Limits()):
            got.append(m)
    assert time.perf_counter() - start < FAST
    assert got == [], "nothing of a refused archive may be yielded"
    return err.value


def stream_refusal(member: Member) -> InputError:
    start = time.perf_counter()
    with pytest.raises(InputError) as err:
        read_all(member)
    assert time.perf_counter() - start < FAST
    assert err.value.path == member.name
    return err.value


def central_entries(data: bytes) -> list[int]:
    """Offsets of the central-directory entries (APPNOTE 4.3.12)."""
    eocd = data.rfind(b"PK\x05\x06")
    (count,) = struct.unpack_from("<H", data, eocd + 10)
    (off,) = struct.unpack_from("<L", data, eocd + 16)
    found = []
    for _ in range(count):
        assert data[off : off + 4] == b"PK\x01\x02"
        found.append(off)
        name_len, extra_len, comment_len = struct.unpack_from("<3H", data, off + 28)
        off += 46 + name_len + extra_len + comment_len
    return found


def patch_entry(
    data: bytes,
    index: int,
    *,
    file_size: int | None = None,
    flag_or: int = 0,
    header_offset: int | None = None,
) -> bytes:
    """Change member ``index`` in both its local header and its central-directory entry."""
    buf = bytearray(data)
    cd = central_entries(data)[index]
    (local,) = struct.unpack_from("<L", buf, cd + 42)
    if file_size is not None:
        struct.pack_into("<L", buf, local + 22, file_size)
        struct.pack_into("<L", buf, cd + 24, file_size)
    if flag_or:
        for off in (local + 6, cd + 8):
            (flags,) = struct.unpack_from("<H", buf, off)
            struct.pack_into("<H", buf, off, flags | flag_or)
    if header_offset is not None:
        struct.pack_into("<L", buf, cd + 42, header_offset)
    return bytes(buf)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zip whose one member is 100 MB of zeros: ratio about 1000:1."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("bomb.fit", "w") as w:
        zeros = bytes(1 << 20)
        for _ in range(100):
            w.write(zeros)
    return path


# --------------------------------------------------------------------------------------------
# detection


def test_archive_kind_from_content() -> None:
    assert archive_kind(b"PK\x03\x04rest") == "zip"
    assert archive_kind(b"PK\x05\x06" + bytes(18)) == "zip"  # an empty zip
    assert archive_kind(gzip.compress(b"x")) == "gzip"
    assert archive_kind(b"\x0e\x10\x00\x00") is None
    assert archive_kind(b"<?xml") is None
    assert archive_kind(b"PK") is None
    assert archive_kind(b"") is None


def test_not_an_archive(tmp_path: Path) -> None:
    err = refusal(write(tmp_path / "a.zip", b"<?xml version='1.0'?><x/>"))
    assert err.reason == "not a zip or gzip archive"


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read archive"):
        list(iter_members(tmp_path / "absent.zip"))


# --------------------------------------------------------------------------------------------
# real and realistic archives


def test_apple_health_export_from_corpus() -> None:
    if not APPLE_ZIP.is_file():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    members = list_and_read(APPLE_ZIP)
    # the directory, .DS_Store and __MACOSX/._* entries are skipped silently
    assert [m for m, _ in members] == [f"{APPLE_ZIP}!apple_health_export/export.xml"]
    with zipfile.ZipFile(APPLE_ZIP) as zf:
        assert members[0][1] == zf.read("apple_health_export/export.xml")


def list_and_read(path: Path, limits: Limits | None = None) -> list[tuple[str, bytes]]:
    """Read each member inside the loop, as the pipeline does."""
    return [(m.name, read_all(m)) for m in iter_members(path, limits=limits or Limits())]


def test_strava_like_export(tmp_path: Path) -> None:
    fit, gpx, tcx = fake_fit(1), b"  <?xml version='1.0'?><gpx/>" * 50, b"<TrainingCenterDatabase/>"
    csv = b"Activity ID,Activity Date\n1,2024-01-01\n"
    data = zip_bytes(
        [
            ("activities/", b""),
            ("activities/1.fit.gz", gzip.compress(fit)),
            ("activities/2.gpx.gz", gzip.compress(gpx)),
            ("activities/3.tcx.gz", gzip.compress(tcx)),
            ("activities.csv", csv),
            ("media/photo.jpg", b"\xff\xd8\xff\xe0" + bytes(100)),
            ("__MACOSX/activities/._1.fit.gz", b"\x00\x05\x16\x07"),
            ("activities/.DS_Store", b"Bud1"),
        ]
    )
    path = write(tmp_path / "export_123.zip", data)
    got = list_and_read(path)
    assert got == [
        (f"{path}!activities/1.fit.gz!1.fit", fit),
        (f"{path}!activities/2.gpx.gz!2.gpx", gpx),
        (f"{path}!activities/3.tcx.gz!3.tcx", tcx),
        (f"{path}!activities.csv", csv),
        (f"{path}!media/photo.jpg", b"\xff\xd8\xff\xe0" + bytes(100)),
    ]
    hints = [m.size_hint for m in iter_members(path)]
    assert hints == [None, None, None, len(csv), 104]  # gzip sizes are only known at the end


def test_garmin_like_export_with_nested_zip(tmp_path: Path) -> None:
    fits = {f"{i}_ACTIVITY.fit": fake_fit(i) for i in range(3)}
    inner = zip_bytes([("sub/", b""), *fits.items()])
    profile = b'{"userName": "x"}'
    nested = "DI_CONNECT/DI-Connect-Uploaded-Files/UploadedFiles_0-_Part1.zip"
    path = write(
        tmp_path / "garmin.zip",
        zip_bytes(
            [
                ("DI_CONNECT/DI-Connect-User/user_profile.json", profile),
                (nested, inner),
                ("DI_CONNECT/DI-Connect-Fitness/summary.bin", inner),  # a zip by content
            ]
        ),
    )
    got = list_and_read(path)
    expected = [(f"{path}!DI_CONNECT/DI-Connect-User/user_profile.json", profile)]
    for prefix in (nested, "DI_CONNECT/DI-Connect-Fitness/summary.bin"):
        expected += [(f"{path}!{prefix}!{name}", data) for name, data in fits.items()]
    assert got == expected


def test_nested_zip_stored_in_outer(tmp_path: Path) -> None:
    inner = zip_bytes([("a.fit", fake_fit(7))])
    path = write(tmp_path / "o.zip", zip_bytes([("in.zip", inner)], zipfile.ZIP_STORED))
    assert list_and_read(path) == [(f"{path}!in.zip!a.fit", fake_fit(7))]


def test_plain_fit_gz(tmp_path: Path) -> None:
    fit = fake_fit(3, 50_000)
    path = write(tmp_path / "file.fit.gz", gzip.compress(fit))
    (member,) = iter_members(path)
    assert member.name == f"{path}!file.fit"
    assert member.size_hint is None
    assert read_all(member) == fit
    assert read_all(member, chunk=7) == fit  # a fresh stream each time, any chunk size


def test_member_read_twice_counts_once(tmp_path: Path) -> None:
    data = b"0123456789" * 1000
    path = write(tmp_path / "a.zip", zip_bytes([("a.csv", data)]))
    limits = Limits(max_total_bytes=len(data) + 10)
    for m in iter_members(path, limits=limits):
        assert read_all(m) == data
        assert read_all(m) == data  # hash, then parse: not twice the budget


def open_fds() -> int:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc/self/fd")
    return len(list(fds.iterdir()))


def test_members_outlive_iteration_and_files_are_released(tmp_path: Path) -> None:
    inner = zip_bytes([("b.fit", fake_fit(2))])
    path = write(tmp_path / "a.zip", zip_bytes([("a.fit", fake_fit(1)), ("in.zip", inner)]))
    before = open_fds()
    members = list(iter_members(path))
    assert [read_all(m) for m in members] == [fake_fit(1), fake_fit(2)]
    reader = members[0].open()
    del members
    assert reader.read(4) == fake_fit(1)[:4]  # an open reader keeps the archive open
    reader.close()
    del reader
    gc.collect()
    assert open_fds() == before


def test_readers_are_binary_streams(tmp_path: Path) -> None:
    path = write(tmp_path / "a.zip", zip_bytes([("a.fit", fake_fit(1))]))
    for m in iter_members(path):
        with m.open() as fp:
            assert fp.readable()
            assert not fp.seekable()
            assert fp.read(4) == fake_fit(1)[:4]
            buf = bytearray(10)
            assert fp.readinto(buf) == 10
            assert bytes(buf) == fake_fit(1)[4:14]


# --------------------------------------------------------------------------------------------
# bombs and limits


def test_zip_bomb_refused_up_front(bomb: Path) -> None:
    err = refusal(bomb)
    assert err.reason.startswith("zip bomb: member 'bomb.fit' declares ratio ")
    assert err.reason.endswith(":1 (limit 200:1)")
    ratio = int(err.reason.split("ratio ")[1].split(":")[0])
    assert 900 < ratio < 1100


def test_limits_are_configurable(bomb: Path) -> None:
    limits = Limits(max_ratio=2000)
    (member,) = iter_members(bomb, limits=limits)
    assert member.size_hint == 100 << 20
    assert len(read_all(member)) == 100 << 20
    err = refusal(bomb, Limits(max_ratio=2000, max_total_bytes=10**6))
    assert "archive too large" in err.reason
    assert "max_total_bytes" in err.reason


def test_member_streams_in_chunks(bomb: Path) -> None:
    """100 MB through a reader without holding it: peak Python memory stays a few MiB."""
    (member,) = iter_members(bomb, limits=Limits(max_ratio=2000))
    total = 0
    tracemalloc.start()
    try:
        with member.open() as fp:
            while block := fp.read(1 << 20):
                total += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 100 << 20
    assert peak < 16 << 20


def test_small_member_with_high_ratio_is_harmless(tmp_path: Path) -> None:
    zeros = bytes(500_000)  # ~1000:1 but under min_ratio_check_bytes
    path = write(tmp_path / "z.zip", zip_bytes([("zeros.csv", zeros)]))
    assert list_and_read(path) == [(f"{path}!zeros.csv", zeros)]
    err = refusal(path, Limits(min_ratio_check_bytes=0))
    assert "declares ratio" in err.reason


def test_lying_central_directory_refused_while_streaming(tmp_path: Path) -> None:
    real = bytes(5 << 20)  # compresses about 1000:1; declared as 4000 bytes it looks harmless
    data = patch_entry(zip_bytes([("a.fit", real)]), 0, file_size=4000)
    path = write(tmp_path / "liar.zip", data)
    (member,) = iter_members(path)  # nothing to see in the directory
    assert member.size_hint == 4000
    err = stream_refusal(member)
    assert "more than the 4000 bytes its directory entry declares" in err.reason


def test_entry_shorter_than_declared(tmp_path: Path) -> None:
    real = random.Random(5).randbytes(1000)
    data = patch_entry(zip_bytes([("a.fit", real)], zipfile.ZIP_STORED), 0, file_size=2000)
    (member,) = iter_members(write(tmp_path / "short.zip", data))
    err = stream_refusal(member)
    assert err.reason.startswith("member ends after 1000 of its declared 2000 bytes")


def test_gzip_member_bomb_refused_while_streaming(tmp_path: Path) -> None:
    gz = gzip.compress(bytes(50 << 20), 9)  # ~50 kB -> 50 MB
    path = write(tmp_path / "s.zip", zip_bytes([("activities/1.fit.gz", gz)], zipfile.ZIP_STORED))
    (member,) = iter_members(path)
    err = stream_refusal(member)
    assert err.reason.startswith("zip bomb: member expands beyond 200:1")
    assert err.offset is not None and err.offset < 50 << 20

    plain = write(tmp_path / "bomb.fit.gz", gz)
    (member,) = iter_members(plain)
    assert "expands beyond 200:1" in stream_refusal(member).reason


def test_total_bytes_limit_declared(tmp_path: Path) -> None:
    rows = b"0123456789" * 100
    path = write(tmp_path / "t.zip", zip_bytes([(f"{i}.csv", rows) for i in range(3)]))
    err = refusal(path, Limits(max_total_bytes=2500))
    assert err.reason == (
        "archive too large: members declare 3000 decompressed bytes (limit 2500, max_total_bytes)"
    )
    assert len(list_and_read(path, Limits(max_total_bytes=3000))) == 3


def test_total_bytes_limit_while_streaming(tmp_path: Path) -> None:
    rows = b"0123456789" * 100  # gzip hides the real size from the directory
    members = [(f"activities/{i}.csv.gz", gzip.compress(rows)) for i in range(3)]
    path = write(tmp_path / "t.zip", zip_bytes(members))
    outcomes = []
    for m in iter_members(path, limits=Limits(max_total_bytes=2500)):
        try:
            outcomes.append(len(read_all(m)))
        except InputError as exc:  # the pipeline quarantines this member and goes on
            assert exc.path == m.name
            outcomes.append(exc.reason)
    assert outcomes[:2] == [1000, 1000]
    assert outcomes[2] == (
        "archive exceeds 2500 decompressed bytes (max_total_bytes) while reading this member"
    )


def test_nested_zip_counts_against_the_total(tmp_path: Path) -> None:
    inner = zip_bytes([("a.csv", b"x" * 1000)], zipfile.ZIP_STORED)
    path = write(tmp_path / "o.zip", zip_bytes([("in.zip", inner)], zipfile.ZIP_STORED))
    (member,) = iter_members(path, limits=Limits(max_total_bytes=len(inner) + 500))
    assert member.name == f"{path}!in.zip!a.csv"
    assert "max_total_bytes" in stream_refusal(member).reason


def test_too_many_members(tmp_path: Path) -> None:
    path = write(tmp_path / "m.zip", zip_bytes([(f"{i}.csv", b"1") for i in range(5)]))
    err = refusal(path, Limits(max_members=3))
    assert err.reason == "too many members: 5 (limit 3, max_members)"


def test_overlapping_entries_refused(tmp_path: Path) -> None:
    data = zip_bytes([("a.fit", fake_fit(1)), ("b.fit", fake_fit(2))])
    path = write(tmp_path / "o.zip", patch_entry(data, 1, header_offset=0))
    assert "overlap" in refusal(path).reason


def test_limits_must_be_positive() -> None:
    with pytest.raises(UsageError):
        Limits(max_ratio=0)
    with pytest.raises(UsageError):
        Limits(max_total_bytes=-1)
    with pytest.raises(UsageError):
        Limits(min_ratio_check_bytes=-1)


# --------------------------------------------------------------------------------------------
# hostile names and entries


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.fit", "parent-directory component"),
        ("activities/../../evil.fit", "parent-directory component"),
        ("..\\evil.fit", "parent-directory component"),
        ("/etc/passwd", "absolute path"),
        ("\\evil.fit", "absolute path"),
        ("C:\\evil.fit", "drive letter"),
        ("c:evil.fit", "drive letter"),
    ],
)
def test_unsafe_member_name_refuses_whole_archive(tmp_path: Path, name: str, why: str) -> None:
    data = zip_bytes([("good.fit", fake_fit(1)), (zipfile.ZipInfo(name), b"pwned")])
    err = refusal(write(tmp_path / "evil.zip", data))
    assert err.reason == f"unsafe member name {name!r} ({why})"
    assert err.path == str(tmp_path / "evil.zip")


def test_symlink_member_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("activities/link.fit")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = zip_bytes([("good.fit", fake_fit(1)), (link, b"/etc/passwd")])
    err = refusal(write(tmp_path / "link.zip", data))
    assert err.reason == "unsafe member 'activities/link.fit': symbolic link"


def test_encrypted_member_refused(tmp_path: Path) -> None:
    data = zip_bytes([("good.fit", fake_fit(1)), ("secret.fit", fake_fit(2))])
    err = refusal(write(tmp_path / "enc.zip", patch_entry(data, 1, flag_or=0x1)))
    assert err.reason.startswith("encrypted member 'secret.fit'")


def test_empty_zip(tmp_path: Path) -> None:
    assert refusal(write(tmp_path / "e.zip", zip_bytes([]))).reason == "empty archive"
    only_dirs = zip_bytes([("a/", b""), ("a/b/", b""), ("a/.DS_Store", b"Bud1")])
    err = refusal(write(tmp_path / "d.zip", only_dirs))
    assert err.reason == "empty archive (no files)"


def test_unsupported_compression_refuses_only_that_member(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.fit", fake_fit(1), zipfile.ZIP_DEFLATED)
        zf.writestr("b.fit", fake_fit(2), zipfile.ZIP_BZIP2)
    path = write(tmp_path / "b.zip", buf.getvalue())
    a, b = outcomes(path)
    assert a == fake_fit(1)
    assert b == "unsupported compression method 12 (bzip2); only stored and deflate are read"


def outcomes(path: Path, limits: Limits | None = None) -> list[bytes | str]:
    """Each member's bytes, or the reason its reading was refused."""
    got: list[bytes | str] = []
    for m in iter_members(path, limits=limits or Limits()):
        try:
            got.append(read_all(m))
        except InputError as exc:
            assert exc.path == m.name
            got.append(exc.reason)
    return got


def test_nesting_deeper_than_one_level_refused(tmp_path: Path) -> None:
    deepest = zip_bytes([("x.fit", fake_fit(1))])
    inner = zip_bytes(
        [("deeper.zip", deepest), ("y.fit.gz", gzip.compress(fake_fit(2))), ("z.fit", fake_fit(3))]
    )
    path = write(tmp_path / "o.zip", zip_bytes([("in.zip", inner)]))
    names = [m.name for m in iter_members(path)]
    assert names == [f"{path}!in.zip!deeper.zip", f"{path}!in.zip!y.fit.gz", f"{path}!in.zip!z.fit"]
    deeper = "archive nested deeper than one level"
    assert outcomes(path) == [deeper, deeper, fake_fit(3)]


def test_refused_nested_zip_does_not_stop_the_outer_one(tmp_path: Path) -> None:
    bad = zip_bytes([(zipfile.ZipInfo("../evil.fit"), b"x")])
    path = write(tmp_path / "o.zip", zip_bytes([("good.fit", fake_fit(1)), ("bad.zip", bad)]))
    names = [m.name for m in iter_members(path)]
    assert names == [f"{path}!good.fit", f"{path}!bad.zip"]
    assert outcomes(path) == [
        fake_fit(1),
        "nested zip refused: unsafe member name '../evil.fit' (parent-directory component)",
    ]


def test_nested_zip_bomb_refused(tmp_path: Path) -> None:
    inner = zip_bytes([("bomb.fit", bytes(20 << 20))])
    path = write(tmp_path / "o.zip", zip_bytes([("in.zip", inner), ("ok.fit", fake_fit(1))]))
    got = outcomes(path)
    assert isinstance(got[0], str) and got[0].startswith("nested zip refused: zip bomb")
    assert got[1] == fake_fit(1)


# --------------------------------------------------------------------------------------------
# damaged archives


def test_truncated_gzip(tmp_path: Path) -> None:
    gz = gzip.compress(fake_fit(4, 100_000))
    for cut in (gz[:-4], gz[: len(gz) // 2]):
        (member,) = iter_members(write(tmp_path / "t.fit.gz", cut))
        assert stream_refusal(member).reason.startswith("truncated gzip")


def test_gzip_bad_crc(tmp_path: Path) -> None:
    gz = bytearray(gzip.compress(fake_fit(4)))
    gz[-8] ^= 0xFF  # CRC-32 in the trailer
    (member,) = iter_members(write(tmp_path / "c.fit.gz", bytes(gz)))
    assert "bad CRC" in stream_refusal(member).reason


def test_zip_member_bad_crc(tmp_path: Path) -> None:
    data = bytearray(zip_bytes([("a.fit", fake_fit(1))], zipfile.ZIP_STORED))
    data[30 + len("a.fit") + 100] ^= 0xFF  # a byte of the stored data
    (member,) = iter_members(write(tmp_path / "crc.zip", bytes(data)))
    assert stream_refusal(member).reason == "bad CRC-32 in zip member (data corrupt)"


def test_truncated_central_directory(tmp_path: Path) -> None:
    data = zip_bytes([("a.fit", fake_fit(1)), ("b.fit", fake_fit(2))])
    err = refusal(write(tmp_path / "cut.zip", data[:-30]))
    assert err.reason.startswith("corrupt zip")


def test_zip_magic_then_garbage(tmp_path: Path) -> None:
    err = refusal(write(tmp_path / "g.zip", b"PK\x03\x04" + bytes(100)))
    assert err.reason.startswith("corrupt zip")


# --------------------------------------------------------------------------------------------
# any bytes: members or InputError, never another exception

SMALL = Limits(max_total_bytes=8 << 20, max_members=1000)


def exhaust(path: Path) -> None:
    try:
        for m in iter_members(path, limits=SMALL):
            with contextlib.suppress(InputError):  # the member is refused: fine
                read_all(m, chunk=1 << 16)
    except InputError:
        pass  # the archive is refused: fine


def zip64_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("a.fit", "w", force_zip64=True) as w:
            w.write(fake_fit(5, 300))
        zf.writestr("b.csv", b"x,y\n" * 20)
    return buf.getvalue()


def _seeds() -> list[bytes]:
    seeds = [
        zip_bytes(
            [
                ("activities/1.fit.gz", gzip.compress(fake_fit(1, 500))),
                ("activities.csv", b"a,b\n1,2\n"),
                ("in.zip", zip_bytes([("x.fit", fake_fit(2, 300)), ("y.fit", b"y" * 200)])),
            ]
        ),
        zip_bytes(
            [
                ("s.fit", fake_fit(3, 400)),
                ("t.gpx.gz", gzip.compress(b"<gpx>" * 40)),
                ("in.zip", zip_bytes([("x.fit", fake_fit(2, 300))], zipfile.ZIP_STORED)),
            ],
            zipfile.ZIP_STORED,
        ),
        gzip.compress(fake_fit(4, 600)),
        zip64_bytes(),
    ]
    if APPLE_ZIP.is_file():
        seeds.append(APPLE_ZIP.read_bytes())
    return seeds


SEEDS = _seeds()
FUZZ = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(
    prefix=st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"\x1f\x8b\x08\x00"]),
    body=st.binary(max_size=600),
)
def test_arbitrary_bytes(tmp_path: Path, prefix: bytes, body: bytes) -> None:
    exhaust(write(tmp_path / "any.zip", prefix + body))


@FUZZ
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_mutated_archives(
    tmp_path: Path, seed: int, flips: list[tuple[float, int]], cut: float | None
) -> None:
    data = bytearray(SEEDS[seed])
    for where, value in flips:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    exhaust(write(tmp_path / "m.zip", bytes(data)))
