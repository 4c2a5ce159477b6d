"""Zip and gzip archives, read member by member as decompressing streams, never extracted.

An archive is recognised by its first bytes (:func:`archive_kind`), never by its name.
:func:`iter_members` yields one :class:`Member` per data file; ``Member.open()`` gives a fresh
stream of its decompressed bytes each time it is called. Nothing is written under the member's
name anywhere, so hostile names cannot reach the file system, but they are still refused: an
archive that carries them was made to attack someone.

Refused before anything of a zip is yielded (an :class:`~actidose.errors.InputError` for the
whole archive, so nothing of it is stored): an empty archive; more than ``max_members`` members
(or a central directory too large for that many); an unsafe member name (``..`` component,
absolute or backslash-absolute path, ``C:`` drive, NUL byte, empty name); a symbolic link or
other special file; an encrypted member; members that extend past the end of the archive or
overlap each other (the "overlapping files" zip bomb); a member whose declared size exceeds
its ratio allowance (below); declared sizes summing to more than ``max_total_bytes``.

Refused while reading, from the stream of one member (the pipeline quarantines that member; its
transaction is rolled back): more bytes than the member's directory entry declares (lying sizes:
counted here rather than cut off by zipfile, so the lie shows instead of a bare CRC error); fewer;
more than its ratio allowance; the archive's running total over ``max_total_bytes``; bad CRC,
truncated or corrupt deflate/gzip data; compression methods other than stored and deflate
(every real export uses deflate; :mod:`zipfile` decompresses bzip2/LZMA chunks without an output
bound, so a lying entry could exhaust memory before any count could stop it).

Rules chosen here:

* Ratio: a member may always produce ``min_ratio_check_bytes`` (1 MiB), whatever its ratio;
  beyond that, at most ``max_ratio`` x its compressed size. So a 10 kB member of zeros passes,
  while anything big enough to hurt must compress like real data. The same allowance is applied
  to the declared size up front and to the bytes counted while reading. The compressed size is
  the member's size inside the archive it sits in: for a ``.gz`` member that is the zip entry
  holding it, so the ratio is over both layers; for a plain ``.gz`` file, the file's size.
* Total: ``max_total_bytes`` bounds the decompressed bytes produced for one archive: every
  member's output plus the bytes of nested zips spooled (below). Each member is counted once
  however often it is opened (its high-water mark), since the pipeline may read a member twice.
* Nesting, one level: a member of a zip that is itself a zip (by content) is opened and its
  members yielded as ``outer!nested.zip!member``; one that is gzip (by content) is decompressed
  on the fly and yielded as ``outer!dir/a.fit.gz!a.fit``. Inside a nested zip a further zip or
  gzip is *refused* with the reason "archive nested deeper than one level" (yielded as a member
  whose ``open()`` raises): quarantined and visible, rather than silently skipped as an
  unrecognised format. The content of a ``.gz`` is not inspected further (a ``.tar.gz`` is
  yielded as its tar, which no importer claims).
* A nested zip whose own directory is refused is yielded as one member (``outer!nested.zip``)
  whose ``open()`` raises the reason, prefixed "nested zip refused:"; the outer archive's other
  members go on. (Refusing the whole outer archive would come too late: its earlier members may
  already be stored, and checking every nested directory up front would mean decompressing
  every nested zip twice.)
* Spooling: :mod:`zipfile` needs a seekable file, so a nested zip is copied, through the same
  limit-enforcing stream (it counts against ``max_total_bytes`` and its ratio), into a
  :class:`tempfile.SpooledTemporaryFile` that stays in memory up to 64 MiB and beyond that
  becomes an anonymous temporary file (unlinked at once on POSIX, so nothing is left behind even
  after a crash).
* Skipped silently: directories, anything under ``__MACOSX/``, ``.DS_Store``, ``Thumbs.db``,
  ``desktop.ini`` and AppleDouble ``._*`` files. Every other member is yielded, in
  central-directory order; the pipeline decides from content what is data.

Lifetime: a member can be opened as long as it is referenced, also after the iteration has
moved on (``(m,) = iter_members(p)`` works). The archive file, and a nested zip's spool, are
closed as soon as the iteration, every member from it and every open reader are gone, so in the
usual ``for m in iter_members(p)`` loop a nested zip's spool is released when the loop moves past
its members; keeping all members in a list keeps every nested spool alive. Readers are not
seekable: call ``open()`` again to start over.

Every error from :mod:`zipfile`, :mod:`gzip`, :mod:`zlib` and the OS is wrapped into
``InputError`` naming the archive or member (``path``) and, where known, the byte ``offset``.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import io
import itertools
import os
import re
import stat
import struct
import tempfile
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Protocol

from ..errors import InputError, UsageError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["DEFAULT_LIMITS", "Limits", "Member", "archive_kind", "iter_members"]

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; end of central dir (empty zip)
GZIP_MAGIC = b"\x1f\x8b"

_CHUNK = 1 << 20  # largest single read from a decompressor: bounds memory per read() call
_NESTED_IN_MEMORY = 64 << 20  # a nested zip up to this size is spooled in memory, then to disk
_NO_CUTOFF = 1 << 62  # "declared size" given to zipfile, which would cut the data there
_LOCAL_HEADER = 30  # fixed part of a zip local file header (APPNOTE 4.3.7)
_ECD = struct.Struct("<4s4H2LH")  # end of central directory record (APPNOTE 4.3.16)
_ECD64_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator (4.3.15)
_ECD64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record (4.3.14)
_READABLE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_METHOD_NAMES = {9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard", 99: "AES"}
_SPECIAL_FILES = {stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK}
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_DRIVE = re.compile(r"[A-Za-z]:")
_SEP = re.compile(r"[/\\]")

# What zipfile/gzip/zlib raise on damaged or hostile input. Programming errors (TypeError,
# AttributeError) are deliberately not here.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    OSError,  # includes gzip.BadGzipFile
    EOFError,
    ValueError,  # includes UnicodeDecodeError of member names
    NotImplementedError,
    RuntimeError,
    struct.error,
    OverflowError,
    IndexError,
    KeyError,
)


@dataclass(frozen=True)
class Limits:
    """Limits on what one archive may decompress to. Exceeding one refuses the archive (when
    declared) or the member being read (when found while reading)."""

    #: decompressed bytes per archive: all members, nested included, plus spooled nested zips
    max_total_bytes: int = 20 * 10**9
    #: decompressed / compressed, per member; refuse above (real Apple Health exports: 15-25:1)
    max_ratio: float = 200.0
    #: members per central directory (outer zip, and each nested zip)
    max_members: int = 200_000
    #: a member may always produce this many bytes whatever its ratio (tiny members of zeros
    #: are harmless); beyond it, at most ``max_ratio`` x its compressed size
    min_ratio_check_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if self.max_total_bytes <= 0 or self.max_ratio <= 0 or self.max_members <= 0:
            raise UsageError(
                f"archive limits must be positive: {self}", fix="give values above zero"
            )
        if self.min_ratio_check_bytes < 0:
            raise UsageError(f"min_ratio_check_bytes must be >= 0: {self}")

    def allowance(self, compressed: int) -> float:
        """Most bytes a member of ``compressed`` bytes may decompress to."""
        return max(float(self.min_ratio_check_bytes), self.max_ratio * max(compressed, 0))


DEFAULT_LIMITS = Limits()


def archive_kind(head: bytes) -> str | None:
    """``"zip"`` or ``"gzip"`` from the first bytes of a file (4 are enough), else None."""
    if head[:4] in ZIP_MAGICS:
        return "zip"
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    return None


@dataclass
class Member:
    """One data file of an archive.

    ``name`` is the display path: the archive's path as given, ``!``, the member's name, and
    for a nested zip or a gzip member one more ``!`` and the inner name
    (``export.zip!activities/123.fit.gz!123.fit``). ``size_hint`` is the size the directory
    declares (None for gzip streams, whose size is only known at their end).
    """

    name: str
    size_hint: int | None
    _opener: Callable[[], BinaryIO] = field(repr=False, compare=False)

    def open(self) -> BinaryIO:
        """A fresh, decompressing, limit-enforcing stream of the member's bytes. Reading
        damaged data or past a limit raises InputError naming the member (``path``), the
        reason (and the limit), and the decompressed ``offset``."""
        return self._opener()


def iter_members(path: Path, *, limits: Limits = DEFAULT_LIMITS) -> Iterator[Member]:
    """The members of the zip or gzip file at ``path``, in central-directory order.

    Raises InputError for the whole archive before yielding anything when the archive is not
    a zip or gzip, is corrupt, or is refused (see the module docstring); after the first
    member is yielded nothing more is raised: a member that cannot be read fails in its own
    ``open()`` or read.
    """
    shown = os.fspath(path)
    budget = _Budget(limits.max_total_bytes)
    keys = itertools.count()
    try:
        fp = Path(path).open("rb")  # noqa: SIM115 (owned by _Open below: lives with the members)
    except OSError as exc:
        raise InputError(f"cannot read archive: {exc.strerror or exc}", path=shown) from exc
    try:
        try:
            head = fp.read(4)
            size = os.fstat(fp.fileno()).st_size
        except OSError as exc:
            raise InputError(f"cannot read archive: {exc.strerror or exc}", path=shown) from exc
        kind = archive_kind(head)
        if kind == "zip":
            zf, infos = _open_zip(fp, size, shown, limits)
    except BaseException:
        fp.close()
        raise
    if kind == "gzip":
        fp.close()
        yield _plain_gzip_member(Path(path), shown, size, next(keys), limits, budget)
        return
    if kind != "zip":
        fp.close()
        raise InputError("not a zip or gzip archive", path=shown, offset=0)
    archive = _Open(zf, fp)
    yield from _zip_members(archive, infos, shown, 0, limits, budget, keys)


# --------------------------------------------------------------------------------------------
# the central directory


def _open_zip(
    fp: IO[bytes], size: int, shown: str, limits: Limits
) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """Open and check a zip: (the ZipFile, the members to yield) or InputError."""
    _check_end_record(fp, size, shown, limits)
    try:
        zf = zipfile.ZipFile(fp)
    except _DECODE_ERRORS as exc:
        raise InputError(f"corrupt zip ({_describe(exc)})", path=shown) from exc
    try:
        return zf, _check_directory(zf.infolist(), size, shown, limits)
    except BaseException:
        zf.close()
        raise


def _check_end_record(fp: IO[bytes], size: int, shown: str, limits: Limits) -> None:
    """Refuse a zip whose end record announces too many members or a central directory too
    large for them, before zipfile builds an object per entry. A record that cannot be parsed
    here is left for zipfile to judge."""
    try:
        tail_len = min(size, _ECD.size + 0xFFFF + _ECD64_LOCATOR.size)
        fp.seek(size - tail_len)
        tail = fp.read(tail_len)
        # the same record zipfile will use: the last 22 bytes when there is no comment, else
        # the last signature in reach of a comment
        at = len(tail) - _ECD.size
        if at < 0 or tail[at : at + 4] != b"PK\x05\x06":
            at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _ECD.size:
            return
        _, _, _, _, entries, cd_size, cd_offset, _ = _ECD.unpack_from(tail, at)
        if (entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF) and (
            at >= _ECD64_LOCATOR.size
        ):
            sig, _, ecd64_at, _ = _ECD64_LOCATOR.unpack_from(tail, at - _ECD64_LOCATOR.size)
            if sig == b"PK\x06\x07" and ecd64_at + _ECD64.size <= size:
                fp.seek(ecd64_at)
                rec = fp.read(_ECD64.size)
                if len(rec) == _ECD64.size and rec[:4] == b"PK\x06\x06":
                    fields = _ECD64.unpack(rec)
                    entries, cd_size = fields[7], fields[8]
        fp.seek(0)
    except (OSError, ValueError, OverflowError, struct.error):
        return
    if entries > limits.max_members:
        raise InputError(
            f"too many members: {entries} (limit {limits.max_members}, max_members)", path=shown
        )
    bound = max(1 << 20, limits.max_members * 1024)
    if cd_size > bound:
        raise InputError(
            f"central directory of {cd_size} bytes is too large (limit {bound} bytes for "
            f"max_members={limits.max_members})",
            path=shown,
        )


def _check_directory(
    infos: list[zipfile.ZipInfo], size: int, shown: str, limits: Limits
) -> list[zipfile.ZipInfo]:
    """Check every entry; return the ones to yield (files that are not junk)."""
    if not infos:
        raise InputError("empty archive", path=shown)
    if len(infos) > limits.max_members:
        raise InputError(
            f"too many members: {len(infos)} (limit {limits.max_members}, max_members)",
            path=shown,
        )
    for info in infos:
        problem = _unsafe(info)
        if problem is not None:
            raise InputError(problem, path=shown, offset=info.header_offset)
    for info in infos:
        if info.flag_bits & 0x1:
            raise InputError(
                f"encrypted member {_quote(info.filename)} (password-protected archives are not "
                "supported)",
                path=shown,
                offset=info.header_offset,
            )
    _check_layout(infos, size, shown)
    total = 0
    for info in infos:
        if info.file_size > limits.allowance(info.compress_size):
            if info.compress_size > 0:
                declared = f"ratio {info.file_size / info.compress_size:.0f}:1"
            else:
                declared = f"{info.file_size} bytes from 0 compressed bytes"
            raise InputError(
                f"zip bomb: member {_quote(info.filename)} declares {declared} "
                f"(limit {limits.max_ratio:g}:1)",
                path=shown,
                offset=info.header_offset,
            )
        total += info.file_size
    if total > limits.max_total_bytes:
        raise InputError(
            f"archive too large: members declare {total} decompressed bytes "
            f"(limit {limits.max_total_bytes}, max_total_bytes)",
            path=shown,
        )
    files = [i for i in infos if not _is_dir(i) and not _is_junk(i.filename)]
    if not files:
        raise InputError("empty archive (no files)", path=shown)
    return files


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    """Why a member's name or type is refused, or None."""
    raw = info.orig_filename  # before zipfile cut it at a NUL byte
    why = None
    if not raw:
        why = "empty name"
    elif "\x00" in raw:
        why = "NUL byte"
    else:
        name = raw.replace("\\", "/")
        if name.startswith("/"):
            why = "absolute path"
        elif _DRIVE.match(name):
            why = "drive letter"
        elif ".." in name.split("/"):
            why = "parent-directory component"
    if why is not None:
        return f"unsafe member name {_quote(raw)} ({why})"
    kind = stat.S_IFMT(info.external_attr >> 16)  # the Unix mode, where the maker stored one
    if kind == stat.S_IFLNK:
        return f"unsafe member {_quote(raw)}: symbolic link"
    if kind in _SPECIAL_FILES:
        return f"unsafe member {_quote(raw)}: special file (mode {kind:#o})"
    return None


def _quote(name: str) -> str:
    """A member name for a reason: quoted, and short even when the name is hostile."""
    return repr(name) if len(name) <= 120 else repr(name[:100]) + "..."


def _check_layout(infos: list[zipfile.ZipInfo], size: int, shown: str) -> None:
    """Each entry's data must lie inside the archive and apart from the others: overlapping
    entries are how non-recursive zip bombs reuse one compressed kernel many times."""
    spans = sorted(
        (i.header_offset, i.header_offset + _LOCAL_HEADER + i.compress_size, i.filename)
        for i in infos
    )
    prev_end, prev_name = 0, ""
    for n, (start, end, name) in enumerate(spans):
        if start < 0 or end > size:
            raise InputError(
                f"corrupt zip: member {_quote(name)} lies outside the archive",
                path=shown,
                offset=start,
            )
        if n and start < prev_end:
            raise InputError(
                f"zip bomb: members {_quote(prev_name)} and {_quote(name)} overlap",
                path=shown,
                offset=start,
            )
        prev_end, prev_name = end, name


def _is_dir(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith(("/", "\\")) or stat.S_ISDIR(info.external_attr >> 16)


def _is_junk(name: str) -> bool:
    parts = _SEP.split(name)
    base = parts[-1]
    return "__MACOSX" in parts or base in _JUNK_NAMES or base.startswith("._")


def _gunzipped_name(name: str) -> str:
    """``dir/a.fit.gz`` -> ``a.fit``; ``x.tgz`` -> ``x.tar``; a name without such a suffix is
    kept (its content said gzip)."""
    base = _SEP.split(name)[-1]
    low = base.lower()
    for suffix, repl in ((".gz", ""), (".gzip", ""), (".tgz", ".tar")):
        if low.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)] + repl
    return base


# --------------------------------------------------------------------------------------------
# members


class _Open:
    """A zip that members read from, and the file under it. Both are closed when nothing
    refers to this any more (the iteration, its members and their readers all hold it)."""

    def __init__(self, zf: zipfile.ZipFile, fp: IO[bytes]) -> None:
        self.zf = zf
        weakref.finalize(self, _close_quietly, zf.close, fp.close)


def _close_quietly(*closers: Callable[[], object]) -> None:
    for close in closers:
        with contextlib.suppress(*_DECODE_ERRORS):  # a damaged stream's close adds nothing
            close()


def _zip_members(
    archive: _Open,
    infos: list[zipfile.ZipInfo],
    prefix: str,
    depth: int,
    limits: Limits,
    budget: _Budget,
    keys: Iterator[int],
) -> Iterator[Member]:
    for info in infos:
        name = f"{prefix}!{info.filename}"
        kind = archive_kind(_peek(archive.zf, info, name))
        if kind is None:
            yield Member(
                name,
                info.file_size,
                _zip_opener(archive, info, name, next(keys), limits, budget, gunzip=False),
            )
        elif depth > 0:
            yield _refused(name, info.file_size, "archive nested deeper than one level")
        elif kind == "gzip":
            inner = f"{name}!{_gunzipped_name(info.filename)}"
            yield Member(
                inner,
                None,
                _zip_opener(archive, info, inner, next(keys), limits, budget, gunzip=True),
            )
        else:
            yield from _nested_zip(archive, info, name, limits, budget, keys)


def _nested_zip(
    outer: _Open,
    info: zipfile.ZipInfo,
    name: str,
    limits: Limits,
    budget: _Budget,
    keys: Iterator[int],
) -> Iterator[Member]:
    """The members of a zip inside a zip, or one refused member standing for it."""
    opener = _zip_opener(outer, info, name, next(keys), limits, budget, gunzip=False)
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_NESTED_IN_MEMORY)  # noqa: SIM115
    try:
        with opener() as src:
            while block := src.read(_CHUNK):
                spool.write(block)
        size = spool.tell()
        zf, inner = _open_zip(spool, size, name, limits)
    except InputError as exc:
        spool.close()
        yield _refused(name, info.file_size, f"nested zip refused: {exc.reason}")
        return
    except OSError as exc:  # the spool could not be written (disk full)
        spool.close()
        yield _refused(name, info.file_size, f"cannot spool nested zip: {exc.strerror or exc}")
        return
    yield from _zip_members(_Open(zf, spool), inner, name, 1, limits, budget, keys)


def _refused(name: str, size_hint: int | None, reason: str) -> Member:
    def fail() -> BinaryIO:
        raise InputError(reason, path=name)

    return Member(name, size_hint, fail)


def _peek(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """The first bytes of a member, or b"" if it cannot be read (its open() will say why)."""
    try:
        entry = _ZipEntry(zf, info, name)
    except InputError:
        return b""
    try:
        return entry.read(4)
    except InputError:
        return b""
    finally:
        entry.close()


def _zip_opener(
    archive: _Open,
    info: zipfile.ZipInfo,
    name: str,
    key: int,
    limits: Limits,
    budget: _Budget,
    *,
    gunzip: bool,
) -> Callable[[], BinaryIO]:
    meter = _Meter(name, key, info.compress_size, limits, budget)

    def open_member() -> BinaryIO:
        entry = _ZipEntry(archive.zf, info, name)
        if not gunzip:
            return _stream(entry, [entry.close], meter, archive, gzip_layer=False)
        gz = gzip.GzipFile(fileobj=entry, mode="rb")
        return _stream(gz, [gz.close, entry.close], meter, archive, gzip_layer=True)

    return open_member


def _plain_gzip_member(
    path: Path, shown: str, size: int, key: int, limits: Limits, budget: _Budget
) -> Member:
    name = f"{shown}!{_gunzipped_name(path.name)}"
    meter = _Meter(name, key, size, limits, budget)

    def open_member() -> BinaryIO:
        try:
            raw = path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read archive: {exc.strerror or exc}", path=name) from exc
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        return _stream(gz, [gz.close, raw.close], meter, None, gzip_layer=True)

    return Member(name, None, open_member)


# --------------------------------------------------------------------------------------------
# streams and limits


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _Budget:
    """Decompressed bytes of one archive. Each member counts once, by the furthest any of its
    readers got, so reading a member twice (hash, then parse) does not double it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.reached: dict[int, int] = {}

    def advance(self, key: int, pos: int, name: str) -> None:
        before = self.reached.get(key, 0)
        if pos <= before:
            return
        self.reached[key] = pos
        self.used += pos - before
        if self.used > self.limit:
            raise InputError(
                f"archive exceeds {self.limit} decompressed bytes (max_total_bytes) while "
                "reading this member",
                path=name,
                offset=pos,
            )


@dataclass
class _Meter:
    """The limits one member's stream is held to."""

    name: str
    key: int
    compressed: int
    limits: Limits
    budget: _Budget

    def check(self, pos: int) -> None:
        if pos > self.limits.allowance(self.compressed):
            raise InputError(
                f"zip bomb: member expands beyond {self.limits.max_ratio:g}:1 ({pos} bytes "
                f"from {self.compressed} compressed; limit max_ratio={self.limits.max_ratio:g})",
                path=self.name,
                offset=pos,
            )
        self.budget.advance(self.key, pos, self.name)


class _ZipEntry:
    """The bytes of one zip entry, held to its declared size in both directions.

    zipfile silently stops at the declared size and then reports a bare CRC mismatch; the entry
    is opened without that cut-off (each read is bounded anyway) and counted here instead, so a
    lying directory shows for what it is."""

    def __init__(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
        self._name = name
        self._declared = info.file_size
        self._pos = 0
        if info.compress_type not in _READABLE_METHODS:
            method = _METHOD_NAMES.get(info.compress_type, "unknown")
            raise InputError(
                f"unsupported compression method {info.compress_type} ({method}); only stored "
                "and deflate are read",
                path=name,
            )
        probe = copy.copy(info)
        probe.file_size = _NO_CUTOFF
        try:
            self._f: IO[bytes] = zf.open(probe)
        except _DECODE_ERRORS as exc:
            raise InputError(f"corrupt zip member ({_describe(exc)})", path=name) from exc

    def read(self, n: int = -1, /) -> bytes:
        try:
            data = self._f.read(n)
        except _DECODE_ERRORS as exc:
            raise _zip_error(exc, self._name, self._pos) from exc
        self._pos += len(data)
        if self._pos > self._declared:
            raise InputError(
                f"member holds more than the {self._declared} bytes its directory entry "
                "declares (lying sizes: possible zip bomb)",
                path=self._name,
                offset=self._declared,
            )
        if not data and n != 0 and self._pos < self._declared:
            raise InputError(
                f"member ends after {self._pos} of its declared {self._declared} bytes "
                "(truncated, or lying sizes)",
                path=self._name,
                offset=self._pos,
            )
        return data

    def seek(self, offset: int, whence: int = 0, /) -> int:
        raise io.UnsupportedOperation("archive members are not seekable")

    def close(self) -> None:
        self._f.close()


class _Stream(io.RawIOBase):
    """Decompressed bytes of one member, counted against its limits as they are produced."""

    def __init__(
        self,
        src: _Readable,
        closers: list[Callable[[], object]],
        meter: _Meter,
        archive: _Open | None,
        *,
        gzip_layer: bool,
    ) -> None:
        super().__init__()
        self._archive = archive  # keeps the archive file open while this reader is
        self._src = src
        self._closers = closers
        self._meter = meter
        self._gzip = gzip_layer
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed archive member")
        view = memoryview(buffer).cast("B")
        want = min(len(view), _CHUNK)
        if want == 0:
            return 0
        try:
            data = self._src.read(want)
        except InputError:
            raise
        except _DECODE_ERRORS as exc:
            if self._gzip:
                raise _gzip_error(exc, self._meter.name, self._pos) from exc
            raise _zip_error(exc, self._meter.name, self._pos) from exc
        n = len(data)
        view[:n] = data
        self._pos += n
        self._meter.check(self._pos)
        return n

    def close(self) -> None:
        if not self.closed:
            _close_quietly(*self._closers)
            self._archive = None
        super().close()


def _stream(
    src: _Readable,
    closers: list[Callable[[], object]],
    meter: _Meter,
    archive: _Open | None,
    *,
    gzip_layer: bool,
) -> BinaryIO:
    raw = _Stream(src, closers, meter, archive, gzip_layer=gzip_layer)
    return io.BufferedReader(raw, 1 << 16)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _zip_error(exc: BaseException, name: str, pos: int) -> InputError:
    if isinstance(exc, EOFError):
        reason = "truncated zip member (compressed data ends early)"
    elif isinstance(exc, zipfile.BadZipFile) and "CRC" in str(exc):
        reason = "bad CRC-32 in zip member (data corrupt)"
    else:
        reason = f"corrupt zip member ({_describe(exc)})"
    return InputError(reason, path=name, offset=pos)


def _gzip_error(exc: BaseException, name: str, pos: int) -> InputError:
    if isinstance(exc, EOFError):
        reason = "truncated gzip (ends before the end-of-stream marker)"
    elif isinstance(exc, gzip.BadGzipFile) and ("CRC" in str(exc) or "length" in str(exc)):
        reason = f"truncated gzip or bad CRC ({exc})"
    else:
        reason = f"corrupt gzip ({_describe(exc)})"
    return InputError(reason, path=name, offset=pos)
