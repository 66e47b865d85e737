"""Reference (oracle) MinHash of the fuzzy-dedup MinHash step, in plain Python.

Implements shared/reference/ALGORITHMS.md "Signature of one document" literally, one document at
a time with Python integers, so that it is easy to check by reading. It is the test oracle of the
compiled CPU kernel (`minhash_cpu`) and the CUDA kernel (`minhash_gpu`); it is far too slow for data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
MERSENNE_61 = (1 << 61) - 1


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & MASK32


def _rotl64(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & MASK64


def murmur3_x86_32(data: bytes, seed: int) -> int:
    """Standard MurmurHash3_x86_32 of `data` (tail bytes unsigned, as smhasher and cuco)."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & MASK32
    nblocks = len(data) // 4
    for i in range(nblocks):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = _rotl32((k * c1) & MASK32, 15)
        k = (k * c2) & MASK32
        h = _rotl32(h ^ k, 13)
        h = (h * 5 + 0xE6546B64) & MASK32
    tail = data[4 * nblocks :]
    if tail:
        k = int.from_bytes(tail, "little")
        k = _rotl32((k * c1) & MASK32, 15)
        k = (k * c2) & MASK32
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    h ^= h >> 16
    return h


def _fmix64(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK64
    k ^= k >> 33
    return k


def murmur3_x64_128_h1(data: bytes, seed: int) -> int:
    """First 64-bit word of MurmurHash3_x64_128 with the full 64-bit `seed` in h1 and h2 (cuco)."""
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = seed & MASK64
    nblocks = len(data) // 16
    for i in range(nblocks):
        k1 = int.from_bytes(data[16 * i : 16 * i + 8], "little")
        k2 = int.from_bytes(data[16 * i + 8 : 16 * i + 16], "little")
        k1 = (_rotl64((k1 * c1) & MASK64, 31) * c2) & MASK64
        h1 = _rotl64(h1 ^ k1, 27)
        h1 = ((h1 + h2) * 5 + 0x52DCE729) & MASK64
        k2 = (_rotl64((k2 * c2) & MASK64, 33) * c1) & MASK64
        h2 = _rotl64(h2 ^ k2, 31)
        h2 = ((h2 + h1) * 5 + 0x38495AB5) & MASK64
    tail = data[16 * nblocks :]
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        h2 ^= (_rotl64((k2 * c2) & MASK64, 33) * c1) & MASK64
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        h1 ^= (_rotl64((k1 * c1) & MASK64, 31) * c2) & MASK64
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & MASK64
    h2 = (h2 + h1) & MASK64
    h1 = _fmix64(h1)
    h2 = _fmix64(h2)
    return (h1 + h2) & MASK64


def shingles(text: str, width: int) -> list[str]:
    """Every substring of `width` code points; the whole text when it is shorter; none if empty."""
    if not text:
        return []
    if len(text) < width:
        return [text]
    return [text[i : i + width] for i in range(len(text) - width + 1)]


def minhash_one(
    text: str | None,
    a: Sequence[int],
    b: Sequence[int],
    murmur_seed: int,
    width: int,
    use_64_bit_hash: bool,
) -> list[int]:
    """Signature of one document; all zeros for None or an empty text."""
    if not text:
        return [0] * len(a)
    # The minimum over a set equals the minimum over the list it came from; the set only makes
    # very repetitive texts (cuDF's 1M-character test) affordable here.
    if use_64_bit_hash:
        hashes = {
            murmur3_x64_128_h1(s.encode("utf-8"), murmur_seed) for s in set(shingles(text, width))
        }
    else:
        hashes = {
            murmur3_x86_32(s.encode("utf-8"), murmur_seed) for s in set(shingles(text, width))
        }
    hashes = {max(h, 1) for h in hashes}
    out = []
    for ai, bi in zip(a, b, strict=True):
        ai, bi = int(ai), int(bi)
        if use_64_bit_hash:
            out.append(min(((h * ai + bi) & MASK64) % MERSENNE_61 for h in hashes))
        else:
            out.append(min((h * ai + bi) & MASK32 for h in hashes))
    return out


def minhash_reference(
    texts: Iterable[str | None],
    a: Sequence[int],
    b: Sequence[int],
    murmur_seed: int,
    width: int,
    use_64_bit_hash: bool,
) -> np.ndarray:
    """Signatures of `texts` as an (n, len(a)) uint32 or uint64 array (the oracle)."""
    dtype = np.uint64 if use_64_bit_hash else np.uint32
    rows = [minhash_one(t, a, b, murmur_seed, width, use_64_bit_hash) for t in texts]
    return np.array(rows, dtype=dtype).reshape(len(rows), len(a))
