"""Exact Jaccard similarity of the character-shingle sets of text pairs (the verified fuzzy
mode's check), over Arrow string arrays.

The shingles are those MinHash hashes (ALGORITHMS.md): every run of `width` code points, a text
of `width` code points or fewer being its own single shingle, an empty text having none. Each
shingle is represented by a polynomial hash of its UTF-8 bytes modulo the prime 2^61 - 1
(computed from prefix hashes, constant work a shingle): two different shingles of at most L
bytes collide with probability at most L / (2^61 - 1) over the choice of base, so among the m
shingles of a pair a collision has probability below m^2 L / 2^62 (10^-9 for texts of 100,000
characters), and the result is the exact Jaccard of the shingle sets but for that. Memory: about
56 bytes per byte of the longer text of a pair (prefix hashes, starts, shingle hashes and
their hash set).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from sparkdedup.kernels.minhash_cpu import arrow_string_buffers

_P61 = np.uint64((1 << 61) - 1)
_BASE = np.uint64(0x1F3D5B79A2C4E68B % ((1 << 61) - 1))  # any fixed base in [2, p)
_M29 = np.uint64((1 << 29) - 1)
_M32 = np.uint64((1 << 32) - 1)


@njit(cache=True, nogil=True)
def _reduce61(x: np.uint64) -> np.uint64:
    x = (x & _P61) + (x >> np.uint64(61))
    return x - _P61 if x >= _P61 else x


@njit(cache=True, nogil=True)
def _mul61(a: np.uint64, b: np.uint64) -> np.uint64:
    """a * b mod 2^61 - 1, for a, b < 2^61 - 1, in 64-bit arithmetic (2^61 = 1 and 2^64 = 8
    modulo the prime)."""
    a1, a0 = a >> np.uint64(32), a & _M32
    b1, b0 = b >> np.uint64(32), b & _M32
    high = (a1 * b1) << np.uint64(3)
    mid = a1 * b0 + a0 * b1
    mid = (mid >> np.uint64(29)) + ((mid & _M29) << np.uint64(32))
    return _reduce61(high + mid + _reduce61(a0 * b0))


@njit(cache=True, nogil=True)
def _shingle_hashes(data: np.ndarray, start: int, end: int, width: int) -> np.ndarray:
    """The hash of every shingle of the UTF-8 bytes data[start:end] (repeats included): a
    polynomial hash of the shingle's bytes modulo 2^61 - 1, from prefix hashes (O(1) a
    shingle)."""
    if end <= start:
        return np.empty(0, np.uint64)
    n = end - start
    prefix = np.empty(n + 1, np.uint64)
    prefix[0] = np.uint64(0)
    longest = min(n, 4 * width)  # a shingle's bytes: at most 4 a code point
    power = np.empty(longest + 1, np.uint64)
    power[0] = np.uint64(1)
    for i in range(longest):
        power[i + 1] = _mul61(power[i], _BASE)
    starts = np.empty(n + 1, np.int64)
    count = 0
    for i in range(n):
        byte = data[start + i]
        prefix[i + 1] = _reduce61(_mul61(prefix[i], _BASE) + np.uint64(byte) + np.uint64(1))
        if (byte & 0xC0) != 0x80:
            starts[count] = i
            count += 1
    starts[count] = n
    shingles = max(count - width + 1, 1)
    out = np.empty(shingles, np.uint64)
    for s in range(shingles):
        lo, hi = starts[s], starts[min(s + width, count)]
        shifted = _mul61(prefix[lo], power[hi - lo])
        h = prefix[hi] + _P61 - shifted
        out[s] = h - _P61 if h >= _P61 else h
    return out


@njit(cache=True, nogil=True)
def _shingle_set(data: np.ndarray, start: int, end: int, width: int) -> np.ndarray:
    """Sorted distinct shingle hashes of the UTF-8 bytes data[start:end]."""
    out = _shingle_hashes(data, start, end, width)
    if out.size == 0:
        return out
    out.sort()
    distinct = 1
    for i in range(1, out.size):
        if out[i] != out[distinct - 1]:
            out[distinct] = out[i]
            distinct += 1
    return out[:distinct]


_EMPTY = np.uint64(1 << 63)  # never a hash (they are below 2^61)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True)
def _table_for(count: int) -> np.ndarray:
    size = 16
    while size < 2 * count:
        size *= 2
    return np.full(size, _EMPTY, np.uint64)


@njit(cache=True, nogil=True)
def _slot(table: np.ndarray, value: np.uint64) -> int:
    """Where `value` is in the open-addressing set `table`, or the empty slot where it goes
    (linear probing from a multiplicative hash; tables up to 2^32 slots)."""
    mask = np.uint64(table.size - 1)
    slot = ((value * _GOLDEN) >> np.uint64(32)) & mask
    while table[slot] != _EMPTY and table[slot] != value:
        slot = (slot + np.uint64(1)) & mask
    return slot


@njit(cache=True, nogil=True)
def _insert(table: np.ndarray, value: np.uint64) -> bool:
    """Add `value` to `table`; True when it was not there."""
    slot = _slot(table, value)
    if table[slot] == value:
        return False
    table[slot] = value
    return True


@njit(cache=True, nogil=True)
def _contains(table: np.ndarray, value: np.uint64) -> bool:
    return table[_slot(table, value)] == value


@njit(cache=True, nogil=True)
def _set_table(hashes: np.ndarray) -> tuple[np.ndarray, int]:
    """An open-addressing set of `hashes` and its number of distinct values."""
    table = _table_for(hashes.size)
    distinct = 0
    for v in hashes:
        if _insert(table, v):
            distinct += 1
    return table, distinct


@njit(cache=True, nogil=True)
def _intersection(a: np.ndarray, b: np.ndarray) -> int:
    i = j = common = 0
    while i < a.size and j < b.size:
        if a[i] == b[j]:
            common += 1
            i += 1
            j += 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return common


@njit(cache=True, nogil=True)
def _pairs(
    offsets_a: np.ndarray,
    data_a: np.ndarray,
    valid_a: np.ndarray,
    offsets_b: np.ndarray,
    data_b: np.ndarray,
    valid_b: np.ndarray,
    width: int,
    repeat: np.ndarray,
    out: np.ndarray,
) -> None:
    # Hash sets, not sorting: linear in the shingles of each pair.
    table_a, size_a = _set_table(np.empty(0, np.uint64))
    for i in range(out.size):
        sa, ea = offsets_a[i], offsets_a[i + 1]
        if not valid_a[i]:
            sa, ea = 0, 0
        # A row whose first text is the previous row's reuses its set (an anchor's members).
        if i == 0 or not repeat[i]:
            table_a, size_a = _set_table(_shingle_hashes(data_a, sa, ea, width))
        sb, eb = offsets_b[i], offsets_b[i + 1]
        if not valid_b[i]:
            sb, eb = 0, 0
        hashes_b = _shingle_hashes(data_b, sb, eb, width)
        table_b = _table_for(hashes_b.size)
        size_b = common = 0
        for v in hashes_b:
            if _insert(table_b, v):
                size_b += 1
                if _contains(table_a, v):
                    common += 1
        if size_a == 0 and size_b == 0:
            out[i] = 1.0
        else:
            out[i] = common / (size_a + size_b - common)


def jaccard_arrow(
    a: pa.Array, b: pa.Array, width: int, repeat: np.ndarray | None = None
) -> np.ndarray:
    """Exact Jaccard of the `width`-code-point shingle sets of ``a[i]`` and ``b[i]``.

    Null and empty texts have no shingles; two of them give 1.0, one of them and a non-empty
    text 0.0 (as `sparkdedup.evaluate.true_jaccard`). `repeat[i]` true says that ``a[i]`` is
    the same text as ``a[i-1]`` (its shingle set is reused).
    """
    if len(a) != len(b):
        raise ValueError(f"text arrays differ in length: {len(a)} and {len(b)}")
    out = np.zeros(len(a), np.float64)
    if len(a) == 0:
        return out
    if repeat is None:
        repeat = np.zeros(len(a), np.bool_)
    offsets_a, data_a, valid_a = arrow_string_buffers(a)
    offsets_b, data_b, valid_b = arrow_string_buffers(b)
    _pairs(offsets_a, data_a, valid_a, offsets_b, data_b, valid_b, int(width), repeat, out)
    return out


@njit(cache=True, nogil=True)
def _all_sets(
    offsets: np.ndarray, data: np.ndarray, valid: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    n = offsets.size - 1
    sets = []
    bounds = np.zeros(n + 1, np.int64)
    for i in range(n):
        s = (
            _shingle_set(data, offsets[i], offsets[i + 1], width)
            if valid[i]
            else np.empty(0, np.uint64)
        )
        sets.append(s)
        bounds[i + 1] = bounds[i] + s.size
    hashes = np.empty(bounds[n], np.uint64)
    for i in range(n):
        hashes[bounds[i] : bounds[i + 1]] = sets[i]
    return bounds, hashes


@njit(cache=True, nogil=True)
def _pairs_of_sets(
    bounds: np.ndarray, hashes: np.ndarray, left: np.ndarray, right: np.ndarray, out: np.ndarray
) -> None:
    for k in range(out.size):
        a = hashes[bounds[left[k]] : bounds[left[k] + 1]]
        b = hashes[bounds[right[k]] : bounds[right[k] + 1]]
        if a.size == 0 and b.size == 0:
            out[k] = 1.0
            continue
        common = _intersection(a, b)
        out[k] = common / (a.size + b.size - common)


def jaccard_of_pairs(
    texts: pa.Array, left: np.ndarray, right: np.ndarray, width: int
) -> np.ndarray:
    """Exact Jaccard of ``texts[left[k]]`` and ``texts[right[k]]`` for every k, each text's
    shingle set built once (for many pairs over few texts: 8 bytes per shingle of `texts`)."""
    offsets, data, valid = arrow_string_buffers(texts)
    bounds, hashes = _all_sets(offsets, data, valid, int(width))
    out = np.zeros(len(left), np.float64)
    _pairs_of_sets(bounds, hashes, np.asarray(left, np.int64), np.asarray(right, np.int64), out)
    return out
