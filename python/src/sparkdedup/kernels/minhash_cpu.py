"""Compiled CPU kernel of the fuzzy-dedup MinHash step (numba, straight over Arrow buffers).

Computes cuDF's `str.minhash` / `minhash64` signatures bit for bit (shared/reference/ALGORITHMS.md,
"Signature of one document") from an Arrow string array's offsets, UTF-8 bytes and validity,
with no per-document Python work. `minhash_ref` is its oracle; `minhash_gpu` its CUDA twin.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from sparkdedup.errors import SchemaError
from sparkdedup.kernels.murmur import murmur3_32_py, murmur3_64_py

# Speed comes from two layouts. Every byte position of a document gets its little-endian 4-byte
# (8-byte in 64-bit mode) window, so a MurmurHash block is one load. Consecutive shingles that
# start one character apart, on characters of one byte size, and span the same number of bytes
# (all of them in ASCII text, long stretches of CJK or Cyrillic words) are hashed in lockstep,
# block by block, with contiguous loads that LLVM vectorises: straight from the windows for
# one-byte characters, and from the windows de-interleaved by the character size (s rows of
# every s-th window) for 2- to 4-byte ones. The permutation-min then runs permutation-outer
# over the document's hashes, a vectorised min-reduction with no stores.
#
# This module carries its own MurmurHash3 (on windows) rather than calling `murmur.py`: numba's
# cache does not notice edits to functions defined in other files.

_MAX32 = np.uint32(0xFFFFFFFF)
_MAX64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_ONE32 = np.uint32(1)
_ONE64 = np.uint64(1)
_MERSENNE_61 = np.uint64((1 << 61) - 1)
_EMPTY_BYTES = np.frombuffer(b"", dtype=np.uint8)

_C1_32 = np.uint32(0xCC9E2D51)
_C2_32 = np.uint32(0x1B873593)
_N_32 = np.uint32(0xE6546B64)
_F1_32 = np.uint32(0x85EBCA6B)
_F2_32 = np.uint32(0xC2B2AE35)
_FIVE32 = np.uint32(5)

_C1_64 = np.uint64(0x87C37B91114253D5)
_C2_64 = np.uint64(0x4CF5AD432745937F)
_N1_64 = np.uint64(0x52DCE729)
_N2_64 = np.uint64(0x38495AB5)
_F1_64 = np.uint64(0xFF51AFD7ED558CCD)
_F2_64 = np.uint64(0xC4CEB9FE1A85EC53)
_FIVE64 = np.uint64(5)
# numba types uint64 <op> int64 as float64, so every shift amount is a uint64 scalar.
_S8, _S27, _S31, _S33 = np.uint64(8), np.uint64(27), np.uint64(31), np.uint64(33)
_S37, _S61 = np.uint64(37), np.uint64(61)
#: Documents longer than this many bytes are hashed in pieces of about this size, so scratch
#: memory is bounded by it (60 bytes a byte in 32-bit mode, 80 in 64-bit: `_scratch_bytes`)
#: rather than by the longest document.
CHUNK_BYTES = 1 << 20


def arrow_string_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of a string array: (offsets int64 n+1, data uint8, valid uint8 n).

    Offsets index `data` directly (the array's own `offset` is applied), so a sliced array
    needs no copy of its bytes. Accepts string, large_string and string_view (cast).
    """
    if pa.types.is_string_view(array.type):
        array = array.cast(pa.large_string())
    if pa.types.is_string(array.type):
        offset_type = np.int32
    elif pa.types.is_large_string(array.type):
        offset_type = np.int64
    else:
        raise SchemaError(
            f"text array must be of Arrow type string or large_string, got {array.type}"
        )
    n = len(array)
    if n == 0:
        return np.zeros(1, np.int64), _EMPTY_BYTES, np.zeros(0, np.uint8)
    validity, offsets_buf, data_buf = array.buffers()[:3]
    offsets = np.frombuffer(offsets_buf, dtype=offset_type, count=array.offset + n + 1)
    offsets = np.array(offsets[array.offset :], dtype=np.int64)
    data = _EMPTY_BYTES if data_buf is None else np.frombuffer(data_buf, dtype=np.uint8)
    if data.flags.writeable:
        # Read-only whatever the buffer: numba compiles a kernel once per argument type, and
        # an array built in memory is writable where one read from Spark's Arrow stream is not.
        # One type means one compilation, and a warm-up (`sparkdedup.device.warm_cpu_kernels`)
        # that prepares the very code the scan runs.
        data = data.view()
        data.flags.writeable = False
    if validity is None or array.null_count == 0:
        valid = np.ones(n, np.uint8)
    else:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        valid = np.ascontiguousarray(bits[array.offset : array.offset + n])
    return offsets, data, valid


@njit(cache=True, nogil=True)
def _max_length(offsets: np.ndarray) -> int:
    longest = 0
    for d in range(offsets.size - 1):
        longest = max(longest, offsets[d + 1] - offsets[d])
    return longest


@njit(cache=True, nogil=True)
def _code_point_starts(data: np.ndarray, start: int, end: int, starts: np.ndarray) -> int:
    # A byte starts a code point unless it is a UTF-8 continuation byte (10xxxxxx).
    count = 0
    for p in range(start, end):
        if (data[p] & 0xC0) != 0x80:
            starts[count] = p - start
            count += 1
    starts[count] = end - start
    return count


@njit(cache=True, nogil=True)
def _windows(doc: np.ndarray, win: np.ndarray, nbytes: int) -> None:
    # win[p] = the `nbytes` (4 or 8) bytes of `doc` from byte p, little-endian, zero past the end.
    length = doc.size
    full = max(length - nbytes + 1, 0)
    if nbytes == 4:
        for p in range(full):
            win[p] = (
                np.uint32(doc[p])
                | (np.uint32(doc[p + 1]) << 8)
                | (np.uint32(doc[p + 2]) << 16)
                | (np.uint32(doc[p + 3]) << 24)
            )
    else:
        for p in range(full):
            x = np.uint64(0)
            for t in range(8):
                x |= np.uint64(doc[p + t]) << np.uint64(8 * t)
            win[p] = x
    for p in range(full, length):
        x = np.uint64(0)
        for t in range(length - p):
            x |= np.uint64(doc[p + t]) << np.uint64(8 * t)
        win[p] = x


@njit(cache=True, nogil=True)
def _spread(win: np.ndarray, n: int, stride: int, out: np.ndarray) -> int:
    # The first n windows de-interleaved by `stride`: window p at out[(p % stride) * rows +
    # p // stride]; returns rows. Shingles that start `stride` bytes apart then read their
    # block t from consecutive entries (`_spread_at`).
    # Entries from window n on (up to n + 2) are never read; `win` has room for them.
    rows = (n + stride - 1) // stride
    for r in range(stride):
        row = out[r * rows : (r + 1) * rows]
        for k in range(rows):
            row[k] = win[stride * k + r]
    return rows


@njit(cache=True, nogil=True, inline="always")
def _spread_at(p: int, stride: int, rows: int) -> int:
    # Where window p sits in `_spread`'s layout (p itself for stride 1, with no division: runs
    # of ASCII text are short where other characters are mixed in, and this is per block).
    if stride == 1:
        return p
    return (p % stride) * rows + p // stride


@njit(cache=True, nogil=True, inline="always")
def _gather(win: np.ndarray, at: np.ndarray, count: int, off: int, out: np.ndarray) -> np.ndarray:
    # out[i] = win[at[i] + off]: one block of shingles that start anywhere, made contiguous so
    # that the block step over them vectorises (LLVM leaves a gather inside it scalar).
    o = np.uint64(off)
    for i in range(count):
        out[i] = win[at[i] + o]
    return out[:count]


# MurmurHash3_x86_32 over `count` shingles in lockstep: the hash state of shingle i in hs[i],
# its block t in wt[i]. Arguments are views so that every index is a bare loop counter, which
# numba's wraparound check leaves alone; any other index form stops LLVM from vectorising.


@njit(cache=True, nogil=True, inline="always")
def _block32(hs: np.ndarray, wt: np.ndarray, count: int) -> None:
    for i in range(count):
        k = np.uint32(wt[i] * _C1_32)
        k = np.uint32(np.uint32(k << 15) | (k >> 17))
        k = np.uint32(k * _C2_32)
        h = np.uint32(hs[i] ^ k)
        h = np.uint32(np.uint32(h << 13) | (h >> 19))
        hs[i] = np.uint32(h * _FIVE32 + _N_32)


@njit(cache=True, nogil=True, inline="always")
def _tail32(hs: np.ndarray, wt: np.ndarray, count: int, rem: int) -> None:
    mask = np.uint32((1 << (8 * rem)) - 1)
    for i in range(count):
        k = np.uint32((wt[i] & mask) * _C1_32)
        k = np.uint32(np.uint32(k << 15) | (k >> 17))
        k = np.uint32(k * _C2_32)
        hs[i] = np.uint32(hs[i] ^ k)


@njit(cache=True, nogil=True, inline="always")
def _finish32(hs: np.ndarray, count: int, length: int) -> None:
    n32 = np.uint32(length)
    for i in range(count):
        h = np.uint32(hs[i] ^ n32)
        h = np.uint32(h ^ (h >> 16))
        h = np.uint32(h * _F1_32)
        h = np.uint32(h ^ (h >> 13))
        h = np.uint32(h * _F2_32)
        h = np.uint32(h ^ (h >> 16))
        hs[i] = max(h, _ONE32)  # cuDF maps a hash of 0 to 1


@njit(cache=True, nogil=True)
def _murmur32_run(
    win: np.ndarray,
    first: int,
    stride: int,
    rows: int,
    count: int,
    length: int,
    seed: np.uint32,
    hs: np.ndarray,
) -> None:
    # The hashes of `count` shingles of `length` bytes, shingle i at byte first + stride * i;
    # `win` is the windows laid out by `_spread` for that stride (the windows themselves for
    # stride 1), so block t of the shingles is one contiguous slice.
    for i in range(count):
        hs[i] = seed
    for t in range(length >> 2):
        at = _spread_at(first + 4 * t, stride, rows)
        _block32(hs, win[at : at + count], count)
    if length & 3:
        at = _spread_at(first + (length & ~3), stride, rows)
        _tail32(hs, win[at : at + count], count, length & 3)
    _finish32(hs, count, length)


@njit(cache=True, nogil=True)
def _murmur32_at(
    win: np.ndarray,
    at: np.ndarray,
    count: int,
    length: int,
    seed: np.uint32,
    hs: np.ndarray,
    tmp: np.ndarray,
) -> None:
    # The hashes of `count` shingles of `length` bytes, shingle i at win[at[i]]: the shingles
    # of one byte length wherever they start, each block gathered into `tmp` first.
    for i in range(count):
        hs[i] = seed
    for t in range(length >> 2):
        _block32(hs, _gather(win, at, count, 4 * t, tmp), count)
    if length & 3:
        _tail32(hs, _gather(win, at, count, length & ~3, tmp), count, length & 3)
    _finish32(hs, count, length)


@njit(cache=True, nogil=True)
def _mix_k1(k1: np.uint64) -> np.uint64:
    k1 = k1 * _C1_64
    k1 = (k1 << _S31) | (k1 >> _S33)
    return k1 * _C2_64


@njit(cache=True, nogil=True)
def _mix_k2(k2: np.uint64) -> np.uint64:
    k2 = k2 * _C2_64
    k2 = (k2 << _S33) | (k2 >> _S31)
    return k2 * _C1_64


@njit(cache=True, nogil=True)
def _fmix64(k: np.uint64) -> np.uint64:
    k = (k ^ (k >> _S33)) * _F1_64
    k = (k ^ (k >> _S33)) * _F2_64
    return k ^ (k >> _S33)


# h1 of MurmurHash3_x64_128 (64-bit seed in h1 and h2) in lockstep, as the 32-bit steps. A
# 16-byte block updates h1 from its low half and h2's old value, then h2 from its high half
# and h1's new value: two steps, so that each reads one slice of windows.


@njit(cache=True, nogil=True, inline="always")
def _block64_h1(h1s: np.ndarray, h2s: np.ndarray, w1: np.ndarray, count: int) -> None:
    for i in range(count):
        h1 = h1s[i] ^ _mix_k1(w1[i])
        h1 = (h1 << _S27) | (h1 >> _S37)
        h1s[i] = (h1 + h2s[i]) * _FIVE64 + _N1_64


@njit(cache=True, nogil=True, inline="always")
def _block64_h2(h1s: np.ndarray, h2s: np.ndarray, w2: np.ndarray, count: int) -> None:
    for i in range(count):
        h2 = h2s[i] ^ _mix_k2(w2[i])
        h2 = (h2 << _S31) | (h2 >> _S33)
        h2s[i] = (h2 + h1s[i]) * _FIVE64 + _N2_64


@njit(cache=True, nogil=True, inline="always")
def _tail64(hs: np.ndarray, w: np.ndarray, count: int, nbytes: int, high: bool) -> None:
    # The last `nbytes` (1 to 8) bytes of a half block into h1 (low half) or h2 (high half).
    mask = _MAX64 if nbytes == 8 else (_ONE64 << np.uint64(8 * nbytes)) - _ONE64
    if high:
        for i in range(count):
            hs[i] ^= _mix_k2(w[i] & mask)
    else:
        for i in range(count):
            hs[i] ^= _mix_k1(w[i] & mask)


@njit(cache=True, nogil=True, inline="always")
def _finish64(h1s: np.ndarray, h2s: np.ndarray, count: int, length: int) -> None:
    n64 = np.uint64(length)
    for i in range(count):
        h1 = h1s[i] ^ n64
        h2 = h2s[i] ^ n64
        h1 = h1 + h2
        h2 = h2 + h1
        h1s[i] = max(_fmix64(h1) + _fmix64(h2), _ONE64)


@njit(cache=True, nogil=True)
def _murmur64_run(
    win: np.ndarray,
    first: int,
    stride: int,
    rows: int,
    count: int,
    length: int,
    seed: np.uint64,
    h1s: np.ndarray,
    h2s: np.ndarray,
) -> None:
    # As _murmur32_run, 64-bit: h1 into h1s (h2s is scratch).
    for i in range(count):
        h1s[i] = seed
        h2s[i] = seed
    for t in range(length >> 4):
        a1 = _spread_at(first + 16 * t, stride, rows)
        _block64_h1(h1s, h2s, win[a1 : a1 + count], count)
        a2 = _spread_at(first + 16 * t + 8, stride, rows)
        _block64_h2(h1s, h2s, win[a2 : a2 + count], count)
    rem, tail = length & 15, length & ~15
    if rem > 8:
        a2 = _spread_at(first + tail + 8, stride, rows)
        _tail64(h2s, win[a2 : a2 + count], count, rem - 8, True)
    if rem > 0:
        a1 = _spread_at(first + tail, stride, rows)
        _tail64(h1s, win[a1 : a1 + count], count, min(rem, 8), False)
    _finish64(h1s, h2s, count, length)


@njit(cache=True, nogil=True)
def _murmur64_at(
    win: np.ndarray,
    at: np.ndarray,
    count: int,
    length: int,
    seed: np.uint64,
    h1s: np.ndarray,
    h2s: np.ndarray,
    tmp: np.ndarray,
) -> None:
    # As _murmur32_at, 64-bit (as _murmur64_run).
    for i in range(count):
        h1s[i] = seed
        h2s[i] = seed
    for t in range(length >> 4):
        _block64_h1(h1s, h2s, _gather(win, at, count, 16 * t, tmp), count)
        _block64_h2(h1s, h2s, _gather(win, at, count, 16 * t + 8, tmp), count)
    rem, tail = length & 15, length & ~15
    if rem > 8:
        _tail64(h2s, _gather(win, at, count, tail + 8, tmp), count, rem - 8, True)
    if rem > 0:
        _tail64(h1s, _gather(win, at, count, tail, tmp), count, min(rem, 8), False)
    _finish64(h1s, h2s, count, length)


@njit(cache=True, nogil=True)
def _by_length(
    starts: np.ndarray, nsh: int, w: int, order: np.ndarray, lens: np.ndarray
) -> np.ndarray:
    # The start bytes of the `nsh` shingles (`w` code points each) grouped by byte length into
    # `order` (a counting sort; `lens` is scratch); returns the group bounds: lengths lo + k
    # in order[bounds[k]:bounds[k + 1]], lo = bounds[-1]. Hash order does not matter: the
    # signature is a minimum over the shingles.
    first, last = starts[:nsh], starts[w : w + nsh]
    lo, hi = last[0] - first[0], last[0] - first[0]
    for i in range(nsh):  # vectorised: a difference, a store and two reductions
        length = last[i] - first[i]
        lens[i] = length
        lo = min(lo, length)
        hi = max(hi, length)
    n = hi - lo + 1
    bounds = np.zeros(n + 2, np.int64)
    for i in range(nsh):
        bounds[np.int64(lens[i]) - lo + 1] += 1
    for k in range(n):
        bounds[k + 1] += bounds[k]
    fill = bounds[:n].copy()
    for i in range(nsh):
        k = np.int64(lens[i]) - lo
        order[fill[k]] = np.uint64(first[i])
        fill[k] += 1
    bounds[n + 1] = lo
    return bounds


#: Runs shorter than this on average (text that is not all one-byte characters) are hashed
#: grouped by shingle byte length instead (`_by_length`).
_SHORT_RUNS = 8


@njit(cache=True, nogil=True)
def _runs(
    starts: np.ndarray, ncp: int, width: int, runs: np.ndarray, limit: int
) -> tuple[int, int]:
    # Split the first `limit` shingles (all when fewer) into runs that start a fixed number of
    # bytes apart (the byte size of their first characters) and span equal byte counts.
    # runs[r] = (first byte, shingle count, byte length, stride); returns (run count, shingle
    # count), stopping early once the runs are too many to be worth it (see _SHORT_RUNS).
    # limit < 0 marks a whole document (limit >= 0 a piece of a long one): only a whole
    # document has the short-document rule (one shingle of the whole text when it has fewer
    # than `width` code points), and, as in cuDF, only when its first byte starts a code point
    # (a text of bytes that are not UTF-8 may begin with continuation bytes, or hold nothing
    # else: it then has no shingle, and its signature is the largest value's).
    w = min(width, ncp) if limit < 0 else width
    nsh = max(ncp - w + 1, 0) if limit < 0 else max(min(ncp - w + 1, limit), 0)
    if limit < 0 and ncp < width and (ncp == 0 or starts[0] != 0):
        nsh = 0
    nruns = 0
    i = 0
    while i < nsh:
        if nruns * _SHORT_RUNS > nsh:
            return nruns, nsh  # too many runs already: the caller groups by byte length
        length = starts[i + w] - starts[i]
        stride = starts[i + 1] - starts[i]
        j = i + 1
        while (
            j < nsh and starts[j] == starts[j - 1] + stride and starts[j + w] - starts[j] == length
        ):
            j += 1
        runs[nruns, 0] = starts[i]
        runs[nruns, 1] = j - i
        runs[nruns, 2] = length
        runs[nruns, 3] = stride if j - i > 1 else 1
        nruns += 1
        i = j
    return nruns, nsh


@njit(cache=True, nogil=True)
def _spread_pays(runs: np.ndarray, nruns: int, n: int, block: int) -> np.ndarray:
    # For each stride 2 to 4: whether de-interleaving the n windows (one pass) costs less than
    # gathering the blocks of that stride's runs one by one, which it does when the runs are
    # long stretches (CJK, Cyrillic words) rather than odd characters in ASCII text.
    loads = np.zeros(5, np.int64)
    for r in range(nruns):
        loads[runs[r, 3]] += runs[r, 1] * (runs[r, 2] // block + 1)
    return loads >= n  # entry 1 is not used: one-byte runs read the windows themselves


@njit(cache=True, nogil=True)
def _hash_runs32(win, n, runs, nruns, seed, hs, spread, at):  # noqa: ANN001, ANN202, PLR0913
    # Every run's shingle hashes, in run order, into hs. First the runs of one-byte characters
    # (straight over the windows) and those of any size whose runs are few (their blocks
    # gathered, `at` holding the start bytes, `spread` the gathered blocks); then, one size at
    # a time, the runs of each size that pays for de-interleaving the windows into `spread`.
    pays = _spread_pays(runs, nruns, n, 4)
    pos = 0
    for r in range(nruns):
        begin, count, length, step = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
        if step == 1:
            _murmur32_run(win, begin, 1, 0, count, length, seed, hs[pos : pos + count])
        elif not pays[step]:
            for i in range(count):
                at[i] = np.uint64(begin + step * i)
            _murmur32_at(win, at, count, length, seed, hs[pos : pos + count], spread)
        pos += count
    for stride in range(2, 5):
        if not pays[stride]:
            continue
        rows = _spread(win, n, stride, spread)
        pos = 0
        for r in range(nruns):
            begin, count, length = runs[r, 0], runs[r, 1], runs[r, 2]
            if runs[r, 3] == stride:
                _murmur32_run(
                    spread, begin, stride, rows, count, length, seed, hs[pos : pos + count]
                )
            pos += count


@njit(cache=True, nogil=True)
def _hash_runs64(win, n, runs, nruns, seed, hs, h2s, spread, at):  # noqa: ANN001, ANN202, PLR0913
    # As _hash_runs32, MurmurHash3_x64_128's h1.
    pays = _spread_pays(runs, nruns, n, 8)
    pos = 0
    for r in range(nruns):
        begin, count, length, step = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
        if step == 1:
            _murmur64_run(win, begin, 1, 0, count, length, seed, hs[pos : pos + count], h2s)
        elif not pays[step]:
            for i in range(count):
                at[i] = np.uint64(begin + step * i)
            _murmur64_at(win, at, count, length, seed, hs[pos : pos + count], h2s, spread)
        pos += count
    for stride in range(2, 5):
        if not pays[stride]:
            continue
        rows = _spread(win, n, stride, spread)
        pos = 0
        for r in range(nruns):
            begin, count, length = runs[r, 0], runs[r, 1], runs[r, 2]
            if runs[r, 3] == stride:
                _murmur64_run(
                    spread, begin, stride, rows, count, length, seed, hs[pos : pos + count], h2s
                )
            pos += count


@njit(cache=True, nogil=True)
def _scratch_bytes(offsets: np.ndarray, width: int) -> int:
    # Scratch arrays hold one document, or one piece of a long one (the piece plus the bytes
    # of the width - 1 code points that its last shingles reach past it). Per byte of that:
    # starts 8, runs 32, order 8, windows, spread windows and hashes 4 each in 32-bit mode
    # (8 each, and 8 more for h2, in 64-bit mode).
    longest = _max_length(offsets)
    if 4 * width >= CHUNK_BYTES:
        return longest
    return min(longest, CHUNK_BYTES + 4 * width + 8)


@njit(cache=True, nogil=True)
def _next_code_point(data: np.ndarray, p: int, end: int) -> int:
    # The first code point start at or after byte p (or `end`).
    while p < end and (data[p] & 0xC0) == 0x80:
        p += 1
    return p


@njit(cache=True, nogil=True)
def _skip_code_points(data: np.ndarray, p: int, end: int, count: int) -> int:
    # Byte position `count` code points after the code point start p (clipped to `end`).
    for _ in range(count):
        if p >= end:
            break
        p = _next_code_point(data, p + 1, end)
    return p


@njit(cache=True, nogil=True)
def _pieces(s: int, e: int, width: int) -> bool:
    return e - s > CHUNK_BYTES and 4 * width < CHUNK_BYTES


@njit(cache=True, nogil=True)
def _irregular(data: np.ndarray, s: int, e: int, width: int) -> bool:
    # Whether a long document cannot go in pieces: one holding more than 3 continuation bytes
    # in a row (bytes that are not UTF-8: a code point of more than 4 bytes, which a piece's
    # scratch, sized for UTF-8, does not hold), or fewer than `width` code points (its one
    # shingle is the whole text).
    run, ncp = 0, 0
    for p in range(s, e):
        if (data[p] & 0xC0) == 0x80:
            run += 1
            if run > 3:
                return True
        else:
            run = 0
            ncp += 1
    return ncp < width


_murmur32 = njit(cache=True, nogil=True)(murmur3_32_py)
_murmur64 = njit(cache=True, nogil=True)(murmur3_64_py)


@njit(cache=True, nogil=True)
def _fold32(data, start, end, seed, a, b, row):  # noqa: ANN001, ANN202
    h = max(_murmur32(data, start, end, seed), np.uint32(1))
    for j in range(a.size):
        row[j] = min(row[j], np.uint32(h * a[j] + b[j]))


@njit(cache=True, nogil=True)
def _fold64(data, start, end, seed, a, b, row):  # noqa: ANN001, ANN202
    h = max(_murmur64(data, start, end, seed), np.uint64(1))
    for j in range(a.size):
        v = h * a[j] + b[j]
        v = (v & _MERSENNE_61) + (v >> _S61)
        row[j] = min(row[j], min(v, v - _MERSENNE_61))


@njit(cache=True, nogil=True)
def _shingles_one_by_one(data, s, e, width, a, b, seed, row, use64):  # noqa: ANN001, ANN202
    # The document's shingles hashed one at a time, each over its bytes in `data` (no scratch
    # but the last width + 1 code point starts): for the `_irregular` long documents. The
    # shingles are the other paths': one at each code point start with `width` code points
    # from it (to the next start or the end); a text of fewer has one, the whole text, when
    # its first byte starts a code point.
    ring = np.empty(width + 1, np.int64)
    n = 0
    for p in range(s, e + 1):
        if p < e and (data[p] & 0xC0) == 0x80:
            continue
        if n >= width:
            first = ring[(n - width) % (width + 1)]
            if use64:
                _fold64(data, first, p, seed, a, b, row)
            else:
                _fold32(data, first, p, seed, a, b, row)
        if p == e:
            break
        ring[n % (width + 1)] = p
        n += 1
    if 0 < n < width and (data[s] & 0xC0) != 0x80:
        if use64:
            _fold64(data, s, e, seed, a, b, row)
        else:
            _fold32(data, s, e, seed, a, b, row)


@njit(cache=True, nogil=True)
def _minhash32_kernel(
    offsets: np.ndarray,
    data: np.ndarray,
    valid: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    seed: np.uint32,
    width: int,
    out: np.ndarray,
) -> None:
    cap = _scratch_bytes(offsets, width)
    starts = np.empty(cap + 1, np.int64)
    runs = np.empty((cap + 1, 4), np.int64)
    win = np.zeros(cap + 4, np.uint32)
    spread = np.zeros(cap + 4, np.uint32)
    hs = np.empty(cap + 1, np.uint32)
    order = np.empty(cap + 1, np.uint64)
    for d in range(offsets.size - 1):
        s, e = offsets[d], offsets[d + 1]
        if valid[d] == 0 or e == s:
            continue  # rows of `out` start zeroed
        if not _pieces(s, e, width):
            _minhash32_piece(
                data, s, e, e, width, a, b, seed, starts, runs, win, spread, hs, order, out[d], True
            )
            continue
        if _irregular(data, s, e, width):
            out[d][:] = _MAX32
            _shingles_one_by_one(data, s, e, width, a, b, seed, out[d], False)
            continue
        # A long document: its shingles in pieces by start position; the minimum of the
        # pieces' minima is the document's.
        first, ps = True, s
        while ps < e:
            pe = _next_code_point(data, min(e, ps + CHUNK_BYTES), e)
            xe = _skip_code_points(data, pe, e, width - 1)
            _minhash32_piece(
                data,
                ps,
                pe,
                xe,
                width,
                a,
                b,
                seed,
                starts,
                runs,
                win,
                spread,
                hs,
                order,
                out[d],
                first,
            )
            first, ps = False, pe


@njit(cache=True, nogil=True)
def _minhash32_piece(
    data, ps, pe, xe, width, a, b, seed, starts, runs, win, spread, hs, order, row, first
):  # noqa: ANN001, ANN202, PLR0913
    # Shingles starting in bytes [ps, pe) of the document, whose bytes end by xe; minima into
    # `row` (replacing it when `first`).
    ncp = _code_point_starts(data, ps, xe, starts)
    # A whole document (-1), or the shingles of a piece that start before pe.
    limit = -1 if first and xe == pe else np.searchsorted(starts[:ncp], pe - ps)
    _windows(data[ps:xe], win, 4)
    nruns, nsh = _runs(starts, ncp, width, runs, limit)
    if nruns * _SHORT_RUNS <= nsh:
        _hash_runs32(win, xe - ps, runs, nruns, seed, hs, spread, order)
    elif nsh > 0:
        bounds = _by_length(starts, nsh, min(width, ncp) if limit < 0 else width, order, hs)
        lo = bounds[-1]
        for k in range(bounds.size - 2):
            g0, g1 = bounds[k], bounds[k + 1]
            if g1 > g0:
                _murmur32_at(win, order[g0:g1], g1 - g0, lo + k, seed, hs[g0:g1], spread)
    for j in range(a.size):
        aj, bj = a[j], b[j]
        m = _MAX32 if first else row[j]
        for i in range(nsh):
            # uint32 wrap-around: cuDF's 2^61-1 modulus never bites in 32-bit mode.
            m = min(m, np.uint32(hs[i] * aj + bj))
        row[j] = m


@njit(cache=True, nogil=True)
def _minhash64_kernel(
    offsets: np.ndarray,
    data: np.ndarray,
    valid: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    seed: np.uint64,
    width: int,
    out: np.ndarray,
) -> None:
    cap = _scratch_bytes(offsets, width)
    starts = np.empty(cap + 1, np.int64)
    runs = np.empty((cap + 1, 4), np.int64)
    win = np.zeros(cap + 4, np.uint64)
    spread = np.zeros(cap + 4, np.uint64)
    hs = np.empty(cap + 1, np.uint64)
    h2s = np.empty(cap + 1, np.uint64)
    order = np.empty(cap + 1, np.uint64)
    for d in range(offsets.size - 1):
        s, e = offsets[d], offsets[d + 1]
        if valid[d] == 0 or e == s:
            continue
        if not _pieces(s, e, width):
            _minhash64_piece(
                data,
                s,
                e,
                e,
                width,
                a,
                b,
                seed,
                starts,
                runs,
                win,
                spread,
                hs,
                h2s,
                order,
                out[d],
                True,
            )
            continue
        if _irregular(data, s, e, width):
            out[d][:] = _MAX64
            _shingles_one_by_one(data, s, e, width, a, b, seed, out[d], True)
            continue
        first, ps = True, s
        while ps < e:
            pe = _next_code_point(data, min(e, ps + CHUNK_BYTES), e)
            xe = _skip_code_points(data, pe, e, width - 1)
            _minhash64_piece(
                data,
                ps,
                pe,
                xe,
                width,
                a,
                b,
                seed,
                starts,
                runs,
                win,
                spread,
                hs,
                h2s,
                order,
                out[d],
                first,
            )
            first, ps = False, pe


@njit(cache=True, nogil=True)
def _minhash64_piece(
    data, ps, pe, xe, width, a, b, seed, starts, runs, win, spread, hs, h2s, order, row, first
):  # noqa: ANN001, ANN202, PLR0913
    ncp = _code_point_starts(data, ps, xe, starts)
    limit = -1 if first and xe == pe else np.searchsorted(starts[:ncp], pe - ps)
    _windows(data[ps:xe], win, 8)
    nruns, nsh = _runs(starts, ncp, width, runs, limit)
    if nruns * _SHORT_RUNS <= nsh:
        _hash_runs64(win, xe - ps, runs, nruns, seed, hs, h2s, spread, order)
    elif nsh > 0:
        bounds = _by_length(starts, nsh, min(width, ncp) if limit < 0 else width, order, hs)
        lo = bounds[-1]
        for k in range(bounds.size - 2):
            g0, g1 = bounds[k], bounds[k + 1]
            if g1 > g0:
                _murmur64_at(win, order[g0:g1], g1 - g0, lo + k, seed, hs[g0:g1], h2s, spread)
    for j in range(a.size):
        aj, bj = a[j], b[j]
        m = _MAX64 if first else row[j]
        for i in range(nsh):
            v = hs[i] * aj + bj
            # v mod (2^61 - 1) for any 64-bit v: fold the top 3 bits in, subtract once. The
            # subtraction is a min (below the modulus, v - M wraps above v), with no branch,
            # so that the loop vectorises.
            v = (v & _MERSENNE_61) + (v >> _S61)
            m = min(m, min(v, v - _MERSENNE_61))
        row[j] = m


def minhash_arrow_cpu(
    array: pa.Array,
    a: np.ndarray,
    b: np.ndarray,
    murmur_seed: int,
    width: int,
    use_64_bit_hash: bool,
) -> np.ndarray:
    """MinHash signatures of an Arrow string array on the CPU.

    Parameters
    ----------
    array : pyarrow string, large_string or string_view Array (may be sliced).
    a, b : permutation parameters, uint32 (32-bit mode) or uint64 (64-bit mode), same length.
    murmur_seed : MurmurHash3 seed (NeMo Curator passes ``a[0]``).
    width : shingle width in code points (>= 1).
    use_64_bit_hash : MurmurHash3_x64_128 and the 2^61-1 modulus instead of 32-bit.

    Returns
    -------
    numpy.ndarray
        (len(array), len(a)) uint32 or uint64; all-zero rows for null and empty texts.
    """
    offsets, data, valid = arrow_string_buffers(array)
    dtype = np.uint64 if use_64_bit_hash else np.uint32
    a = np.ascontiguousarray(a, dtype=dtype)
    b = np.ascontiguousarray(b, dtype=dtype)
    out = np.zeros((len(valid), a.size), dtype=dtype)
    if len(valid) == 0 or a.size == 0:
        return out
    if use_64_bit_hash:
        _minhash64_kernel(offsets, data, valid, a, b, np.uint64(murmur_seed), int(width), out)
    else:
        _minhash32_kernel(offsets, data, valid, a, b, np.uint32(murmur_seed), int(width), out)
    return out
