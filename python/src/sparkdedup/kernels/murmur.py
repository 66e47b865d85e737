"""MurmurHash3 of byte ranges for the CUDA kernel of the fuzzy-dedup MinHash step.

MurmurHash3_x86_32, and MurmurHash3_x64_128 with the full 64-bit seed in both halves keeping h1
(cuco's variant), as in shared/reference/ALGORITHMS.md, "Signature of one document", step 2.
Plain Python over NumPy scalars: `cuda.jit(device=True)` compiles it, the CUDA simulator runs it.
"""

from __future__ import annotations

import numpy as np

# numba types arithmetic on small unsigned ints as uint64 and mixing uint64 with a signed int as
# float64, so every constant is a typed NumPy scalar and every 32-bit result is cast back.
_C1_32 = np.uint32(0xCC9E2D51)
_C2_32 = np.uint32(0x1B873593)
_N_32 = np.uint32(0xE6546B64)
_F1_32 = np.uint32(0x85EBCA6B)
_F2_32 = np.uint32(0xC2B2AE35)
_U32_5 = np.uint32(5)
_U32_8 = np.uint32(8)
_U32_13 = np.uint32(13)
_U32_15 = np.uint32(15)
_U32_16 = np.uint32(16)
_U32_17 = np.uint32(17)
_U32_19 = np.uint32(19)
_U32_24 = np.uint32(24)

_C1_64 = np.uint64(0x87C37B91114253D5)
_C2_64 = np.uint64(0x4CF5AD432745937F)
_N1_64 = np.uint64(0x52DCE729)
_N2_64 = np.uint64(0x38495AB5)
_F1_64 = np.uint64(0xFF51AFD7ED558CCD)
_F2_64 = np.uint64(0xC4CEB9FE1A85EC53)
_U64_5 = np.uint64(5)
_U64_27 = np.uint64(27)
_U64_31 = np.uint64(31)
_U64_33 = np.uint64(33)
_U64_37 = np.uint64(37)


def murmur3_32_py(data: np.ndarray, start: int, end: int, seed: np.uint32) -> np.uint32:
    """MurmurHash3_x86_32 of ``data[start:end]`` (uint8 array) with a uint32 seed."""
    h = np.uint32(seed)
    length = end - start
    nblocks = length // 4
    for i in range(nblocks):
        p = start + 4 * i
        k = np.uint32(
            np.uint32(data[p])
            | (np.uint32(data[p + 1]) << _U32_8)
            | (np.uint32(data[p + 2]) << _U32_16)
            | (np.uint32(data[p + 3]) << _U32_24)
        )
        k = np.uint32(k * _C1_32)
        k = np.uint32((k << _U32_15) | (k >> _U32_17))
        k = np.uint32(k * _C2_32)
        h = np.uint32(h ^ k)
        h = np.uint32((h << _U32_13) | (h >> _U32_19))
        h = np.uint32(h * _U32_5 + _N_32)
    tail = start + 4 * nblocks
    rem = end - tail
    if rem > 0:
        k = np.uint32(0)
        for t in range(rem):
            k = np.uint32(k | (np.uint32(data[tail + t]) << np.uint32(8 * t)))
        k = np.uint32(k * _C1_32)
        k = np.uint32((k << _U32_15) | (k >> _U32_17))
        k = np.uint32(k * _C2_32)
        h = np.uint32(h ^ k)
    h = np.uint32(h ^ np.uint32(length))
    h = np.uint32(h ^ (h >> _U32_16))
    h = np.uint32(h * _F1_32)
    h = np.uint32(h ^ (h >> _U32_13))
    h = np.uint32(h * _F2_32)
    h = np.uint32(h ^ (h >> _U32_16))
    return h


def murmur3_64_py(data: np.ndarray, start: int, end: int, seed: np.uint64) -> np.uint64:
    """h1 of MurmurHash3_x64_128 of ``data[start:end]`` with the 64-bit seed in h1 and h2."""
    h1 = np.uint64(seed)
    h2 = np.uint64(seed)
    length = end - start
    nblocks = length // 16
    for i in range(nblocks):
        p = start + 16 * i
        k1 = np.uint64(0)
        k2 = np.uint64(0)
        for t in range(8):
            k1 = k1 | (np.uint64(data[p + t]) << np.uint64(8 * t))
            k2 = k2 | (np.uint64(data[p + 8 + t]) << np.uint64(8 * t))
        k1 = k1 * _C1_64
        k1 = (k1 << _U64_31) | (k1 >> _U64_33)
        k1 = k1 * _C2_64
        h1 = h1 ^ k1
        h1 = (h1 << _U64_27) | (h1 >> _U64_37)
        h1 = (h1 + h2) * _U64_5 + _N1_64
        k2 = k2 * _C2_64
        k2 = (k2 << _U64_33) | (k2 >> _U64_31)
        k2 = k2 * _C1_64
        h2 = h2 ^ k2
        h2 = (h2 << _U64_31) | (h2 >> _U64_33)
        h2 = (h2 + h1) * _U64_5 + _N2_64
    tail = start + 16 * nblocks
    rem = end - tail
    if rem > 8:
        k2 = np.uint64(0)
        for t in range(rem - 8):
            k2 = k2 | (np.uint64(data[tail + 8 + t]) << np.uint64(8 * t))
        k2 = k2 * _C2_64
        k2 = (k2 << _U64_33) | (k2 >> _U64_31)
        k2 = k2 * _C1_64
        h2 = h2 ^ k2
    if rem > 0:
        k1 = np.uint64(0)
        for t in range(min(rem, 8)):
            k1 = k1 | (np.uint64(data[tail + t]) << np.uint64(8 * t))
        k1 = k1 * _C1_64
        k1 = (k1 << _U64_31) | (k1 >> _U64_33)
        k1 = k1 * _C2_64
        h1 = h1 ^ k1
    h1 = h1 ^ np.uint64(length)
    h2 = h2 ^ np.uint64(length)
    h1 = h1 + h2
    h2 = h2 + h1
    h1 = h1 ^ (h1 >> _U64_33)
    h1 = h1 * _F1_64
    h1 = h1 ^ (h1 >> _U64_33)
    h1 = h1 * _F2_64
    h1 = h1 ^ (h1 >> _U64_33)
    h2 = h2 ^ (h2 >> _U64_33)
    h2 = h2 * _F1_64
    h2 = h2 ^ (h2 >> _U64_33)
    h2 = h2 * _F2_64
    h2 = h2 ^ (h2 >> _U64_33)
    return h1 + h2
