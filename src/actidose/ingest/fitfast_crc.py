"""FIT's CRC-16, computed with numpy over many chunks at once.

The FIT CRC (FIT protocol §3.3.11; the SDK's 16-entry nibble table) is CRC-16/ARC: reflected
polynomial 0xA001, initial value 0, no final XOR. Without an initial value or final XOR it is
*linear* over GF(2): ``crc(A ‖ B) = S_|B|(crc(A)) ⊕ crc(B)``, where ``S_n`` is the 16x16 bit
matrix of feeding ``n`` zero bytes. And leading zero bytes leave a zero register unchanged, so a
buffer can be zero-padded in front at no cost. Hence:

1. pad the buffer in front to ``K`` chunks of ``L`` (64) bytes;
2. run all ``K`` chunk CRCs in parallel, two bytes per numpy step: after two bytes a 16-bit
   register depends only on ``register XOR word`` (a 65536-entry table);
3. combine the chunk CRCs pairwise in ``log2 K`` numpy steps, shifting the left one by the
   length of the right one with ``S_n`` (applied as two 256-entry tables, built from matrix
   powers of the one-zero-byte matrix by repeated squaring).

This is exact (the tests compare it with the byte-wise algorithm on random data) and runs at a
few hundred MB/s (about 600 MB/s on a 700 kB file here), against about 1 MB/s for a Python
loop over the bytes.
"""

from __future__ import annotations

from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["crc16"]

_POLY: Final = 0xA001
#: below this many bytes a plain loop is quicker than setting up the numpy steps
_SMALL: Final = 512
_CHUNK: Final = 64


def _byte_table() -> npt.NDArray[np.uint16]:
    crc = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        crc = np.where(crc & 1, (crc >> 1) ^ _POLY, crc >> 1)
    return crc.astype(np.uint16)


_T8: Final = _byte_table()
_T8_LIST: Final[list[int]] = _T8.tolist()


@cache
def _word_table() -> npt.NDArray[np.intp]:
    """Register after two bytes, as a function of ``register XOR (b0 | b1 << 8)`` (as intp:
    indexing with intp values skips a conversion per step)."""
    x = np.arange(65536, dtype=np.intp)
    t8 = _T8.astype(np.intp)
    first = t8[x & 0xFF]
    return (first >> 8) ^ t8[((x >> 8) ^ first) & 0xFF]


def _apply(images: tuple[int, ...], v: int) -> int:
    """A GF(2)-linear map on 16-bit values (``images[i]`` = image of bit i) applied to v."""
    out = 0
    for i in range(16):
        if v >> i & 1:
            out ^= images[i]
    return out


def _compose(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The map ``a ∘ b`` (b first)."""
    return tuple(_apply(a, img) for img in b)


_ZERO_BYTE: Final = tuple(((1 << i) >> 8) ^ _T8_LIST[(1 << i) & 0xFF] for i in range(16))
_IDENTITY: Final = tuple(1 << i for i in range(16))


@cache
def _pow2_shift(k: int) -> tuple[int, ...]:
    """The map of feeding 2**k zero bytes."""
    if k == 0:
        return _ZERO_BYTE
    half = _pow2_shift(k - 1)
    return _compose(half, half)


@cache
def _shift_tables(n: int) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    """Tables (low byte, high byte) applying the map of feeding ``n`` zero bytes."""
    m = _IDENTITY
    k = 0
    while n:
        if n & 1:
            m = _compose(_pow2_shift(k), m)
        n >>= 1
        k += 1
    v = np.arange(256, dtype=np.uint32)
    lo = np.zeros(256, dtype=np.uint32)
    hi = np.zeros(256, dtype=np.uint32)
    for i in range(8):
        bit = (v >> i) & 1
        lo ^= bit * m[i]
        hi ^= bit * m[i + 8]
    return lo.astype(np.uint16), hi.astype(np.uint16)


def _crc_small(buf: bytes | memoryview, crc: int) -> int:
    table = _T8_LIST
    for byte in bytes(buf):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def crc16(buf: bytes | bytearray | memoryview | npt.NDArray[np.uint8], crc: int = 0) -> int:
    """FIT CRC-16 of ``buf``, continuing from ``crc`` (0 for a new file).

    Parameters
    ----------
    buf
        The bytes (any buffer; a numpy uint8 array is used without copying).
    crc
        The register before ``buf``: the CRC of what precedes it, 0 at the start of a FIT file.

    Returns
    -------
    int
        The CRC register after ``buf`` (what FIT stores, little-endian, after header + records).
    """
    a = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
    n = int(a.size)
    if n < _SMALL:
        return _crc_small(a.tobytes(), crc)
    # 32 two-byte steps over n/64 chunks: about the fastest at any size (each step is two
    # numpy operations; the work per byte is what remains)
    chunk = _CHUNK
    k = -(-n // chunk)
    pad = k * chunk - n
    if pad or a.dtype != np.uint8:
        full = np.zeros(k * chunk, dtype=np.uint8)
        full[pad:] = a
    else:
        full = a
    # (chunk/2, k) little-endian words, one row per step
    words = np.ascontiguousarray(full.view("<u2").reshape(k, chunk // 2).T)
    table = _word_table()
    acc = np.zeros(k, dtype=np.intp)
    for row in words:
        acc = table[acc ^ row]
    reg = acc.astype(np.uint16)
    # combine neighbours level by level; a zero block put in front changes nothing
    length = chunk
    while reg.size > 1:
        if reg.size & 1:
            reg = np.concatenate((np.zeros(1, dtype=np.uint16), reg))
        left, right = reg[0::2], reg[1::2]
        lo, hi = _shift_tables(length)
        reg = lo[left & 0xFF] ^ hi[left >> 8] ^ right
        length *= 2
    out = int(reg[0])
    if crc:  # an incoming register is shifted over the n bytes (zeros in front would not be)
        lo, hi = _shift_tables(n)
        out ^= int(lo[crc & 0xFF] ^ hi[crc >> 8])
    return out
