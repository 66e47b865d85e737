"""Band hashing of the fuzzy-dedup LSH step (shared/reference/ALGORITHMS.md, "LSH banding").

A bucket is Spark SQL ``xxhash64(CAST(band AS INT), slice(signature, band*r+1, r))`` on the stored
signature (`array<int>` of uint32 bit patterns, or `array<bigint>`): seed 42, XXH64.hashInt or
hashLong chained over the arguments and the array's elements. Vectorised NumPy uint64 arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sparkdedup.errors import ConfigError, SchemaError

SPARK_HASH_SEED = 42

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)
_FOUR = np.uint64(4)
_EIGHT = np.uint64(8)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _fmix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * _P2
    h = h ^ (h >> np.uint64(29))
    h = h * _P3
    return h ^ (h >> np.uint64(32))


def xxh64_hash_int(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Spark's ``XXH64.hashInt``: `values` are the int's 32 bits as uint64, `seed` uint64."""
    h = seed + _P5 + _FOUR
    h = h ^ (values * _P1)
    h = _rotl(h, 23) * _P2 + _P3
    return _fmix(h)


def xxh64_hash_long(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Spark's ``XXH64.hashLong``: `values` are the long's 64 bits as uint64, `seed` uint64."""
    h = seed + _P5 + _EIGHT
    h = h ^ (_rotl(values * _P2, 31) * _P1)
    h = _rotl(h, 27) * _P1 + _P4
    return _fmix(h)


def band_buckets(signatures: np.ndarray, bands: Sequence[int], rows_per_band: int) -> np.ndarray:
    """Spark's ``xxhash64(CAST(band AS INT), slice(signature, band*r+1, r))`` for every row.

    Parameters
    ----------
    signatures : (n, num_hashes) array. uint32 or int32 values hash as Spark `int` elements
        (the signature stored as `array<int>`); uint64 or int64 as `bigint` elements.
    bands : global band indices to hash; band k covers positions [k*r, (k+1)*r).
    rows_per_band : r, the number of signature values per band.

    Returns
    -------
    numpy.ndarray
        (n, len(bands)) int64, equal to Spark's xxhash64 value for each row and band.

    Raises
    ------
    ConfigError
        `rows_per_band` < 1, or a band that reaches past the end of the signature.
    SchemaError
        `signatures` is not a 2-D array of a 32- or 64-bit integer type.
    """
    sig = np.asarray(signatures)
    if sig.ndim != 2 or sig.dtype not in (np.uint32, np.int32, np.uint64, np.int64):
        raise SchemaError(
            "signatures must be a 2-D uint32/int32/uint64/int64 array, "
            f"got shape {sig.shape} and dtype {sig.dtype}"
        )
    if isinstance(rows_per_band, bool) or not isinstance(rows_per_band, (int, np.integer)):
        raise ConfigError(f"rows_per_band must be an integer, got {rows_per_band!r}")
    if rows_per_band < 1:
        raise ConfigError(f"rows_per_band must be >= 1, got {rows_per_band}")
    band_idx = np.asarray(list(bands), dtype=np.int64)
    num_hashes = sig.shape[1]
    if band_idx.size and (band_idx.min() < 0 or (band_idx.max() + 1) * rows_per_band > num_hashes):
        raise ConfigError(
            f"bands must lie in 0..{num_hashes // rows_per_band - 1} for signatures of "
            f"{num_hashes} values and rows_per_band={rows_per_band}, got {band_idx.tolist()}"
        )
    positions = band_idx[:, None] * rows_per_band + np.arange(rows_per_band)[None, :]
    return band_hashes(sig[:, positions], band_idx)


def band_hashes(band_values: np.ndarray, band_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Spark's ``xxhash64(CAST(band_id AS INT), values)`` for already sliced bands.

    Parameters
    ----------
    band_values : (n, len(band_ids), r) array of each band's signature values; uint32/int32
        hash as Spark `int` elements, uint64/int64 as `bigint` elements.
    band_ids : the global band index of each of the bands (the first xxhash64 argument).

    Returns
    -------
    numpy.ndarray
        (n, len(band_ids)) int64 bucket keys.
    """
    values = np.asarray(band_values)
    ids = np.asarray(band_ids, dtype=np.int64)
    if values.ndim != 3 or values.shape[1] != ids.size:
        raise SchemaError(f"band_values must have shape (n, {ids.size}, r), got {values.shape}")
    is_long = values.dtype.itemsize == 8
    unsigned = values.view(np.uint64 if is_long else np.uint32)
    # CAST(band AS INT) is the first argument: hashInt(band, 42) seeds each band's chain.
    band_bits = ids.astype(np.uint32).astype(np.uint64)
    seeds = xxh64_hash_int(band_bits, np.full(ids.size, SPARK_HASH_SEED, np.uint64))
    h = np.broadcast_to(seeds, values.shape[:2]).copy()
    hash_element = xxh64_hash_long if is_long else xxh64_hash_int
    for t in range(values.shape[2]):
        h = hash_element(unsigned[:, :, t].astype(np.uint64), h)
    return h.view(np.int64)
