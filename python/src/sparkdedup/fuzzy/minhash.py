"""Fuzzy dedup step 1: MinHash signatures (and, fused, LSH band buckets) of a text column.

Implements shared/reference/ALGORITHMS.md, "Permutation parameters" and "Signature of one
document", per Arrow batch in `mapInArrow`: the strings go from Spark's Arrow buffers straight
to the compiled kernel (`sparkdedup.kernels`), with no pandas conversion. The fused step also
does "LSH banding" (Spark's xxhash64 of each band) without materialising signatures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from sparkdedup.columns import named
from sparkdedup.errors import ConfigError
from sparkdedup.ids import INTEGRAL, id_column, require_string_column
from sparkdedup.kernels.bandhash import band_hashes
from sparkdedup.kernels.minhash import (
    DEVICES,
    check_int,
    check_minhash_params,
    kernel_for_device,
    permutation_params,
    without_shingles,
)

_TEXT = "_dedup_text"


def _id_and_text(df: DataFrame, text_col: str, id_col: str) -> tuple[DataFrame, str]:
    """Validate the columns and project them to ``[id, _dedup_text]``; returns the id DDL type."""
    ids = id_column(df, id_col)
    require_string_column(df, text_col, "text")
    id_ddl = "bigint" if isinstance(df.schema[id_col].dataType, INTEGRAL) else "string"
    return df.select(ids.alias("id"), named(text_col).alias(_TEXT)), id_ddl


def _check_common(
    char_ngrams: int, num_hashes: int, seed: int, use_64_bit_hash: bool, device: str
) -> None:
    check_minhash_params(char_ngrams, num_hashes, seed, use_64_bit_hash)
    if device not in DEVICES:
        raise ConfigError(
            f"device must be one of {', '.join(map(repr, DEVICES))} (resolve 'auto' with "
            f"sparkdedup.device.resolve_device first), got {device!r}"
        )


def _has_shingles(texts: pa.Array, signatures: np.ndarray, width: int) -> np.ndarray:
    """Rows whose text has a shingle: not null, not empty, and not one of the texts of bytes
    that are not UTF-8 and start no shingle (`without_shingles`)."""
    present = pc.and_kleene(pc.is_valid(texts), pc.greater(pc.binary_length(texts), 0))
    present = present.fill_null(False).to_numpy(zero_copy_only=False)
    return present & ~without_shingles(texts, signatures, width)


def minhash_signatures(
    df: DataFrame,
    *,
    text_col: str = "text",
    id_col: str = "id",
    char_ngrams: int = 24,
    num_hashes: int = 260,
    seed: int = 42,
    use_64_bit_hash: bool = False,
    device: str = "cpu",
) -> DataFrame:
    """MinHash signature of every document, bit-identical to cuDF/NeMo Curator.

    Parameters
    ----------
    df : input with an id column and a string text column.
    text_col : column holding the document text (string).
    id_col : column of document ids (integer, output as bigint, or string).
    char_ngrams : shingle width in Unicode code points, >= 2.
    num_hashes : signature length, >= 1.
    seed : seed of the permutation parameters, 0 <= seed < 2**32.
    use_64_bit_hash : MurmurHash3_x64_128 and 64-bit permutations (`array<bigint>` output).
    device : "cpu" (compiled numba kernel) or "gpu" (cuDF, else numba CUDA); same values.

    Returns
    -------
    DataFrame
        ``[id bigint|string, signature array<int>]`` (uint32 bit patterns stored as int; in
        64-bit mode ``array<bigint>``), one row per input row. The signature is null for a
        text without shingles (null, empty, or bytes that are not UTF-8 and start no shingle,
        `sparkdedup.kernels.minhash.without_shingles`), so such documents are never candidates
        and are always kept.

    Raises
    ------
    ConfigError
        A parameter out of range (raised before any Spark job).
    SchemaError
        A missing column (the message lists the available ones), or a text column that is not
        a string or an id column that is neither integer nor string.

    Notes
    -----
    Work and memory per task follow the Arrow batch size
    (``spark.sql.execution.arrow.maxRecordsPerBatch``), not the partition size.
    """
    _check_common(char_ngrams, num_hashes, seed, use_64_bit_hash, device)
    projected, id_ddl = _id_and_text(df, text_col, id_col)
    a, b, murmur_seed = permutation_params(num_hashes, seed, bool(use_64_bit_hash))
    width, use64 = int(char_ngrams), bool(use_64_bit_hash)
    signed = np.int64 if use64 else np.int32
    k = int(num_hashes)

    def compute(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        kernel = kernel_for_device(device)
        for batch in batches:
            texts = batch.column(1)
            n = len(texts)
            sig = kernel(texts, a, b, murmur_seed, width, use64)
            values = pa.array(sig.reshape(-1).view(signed))
            offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
            missing = pa.array(~_has_shingles(texts, sig, width))
            lists = pa.ListArray.from_arrays(offsets, values, mask=missing)
            yield pa.RecordBatch.from_arrays([batch.column(0), lists], names=["id", "signature"])

    element = "bigint" if use64 else "int"
    return projected.mapInArrow(compute, f"id {id_ddl}, signature array<{element}>")


def minhash_band_buckets(
    df: DataFrame,
    *,
    text_col: str = "text",
    id_col: str = "id",
    char_ngrams: int = 24,
    num_bands: int = 20,
    minhashes_per_band: int = 13,
    bands: Sequence[int] | None = None,
    seed: int = 42,
    use_64_bit_hash: bool = False,
    device: str = "cpu",
) -> DataFrame:
    """LSH band buckets straight from the text, without materialising signatures.

    Equal to `minhash_signatures` followed by Spark SQL
    ``xxhash64(CAST(band AS INT), slice(signature, band*r+1, r))`` for each requested band,
    but only the permutations of the requested bands are computed.

    Parameters
    ----------
    df, text_col, id_col, char_ngrams, seed, use_64_bit_hash, device : as `minhash_signatures`.
    num_bands, minhashes_per_band : LSH banding; the signature has their product of values.
    bands : global band indices to emit (each in ``[0, num_bands)``); None means all.

    Returns
    -------
    DataFrame
        ``[id bigint|string, band int, bucket bigint]``, one row per (document, band) for
        documents with a shingle; null and empty texts (and texts of bytes that are not UTF-8
        and start no shingle) give no rows.
    """
    check_int("num_bands", num_bands, 1)
    check_int("minhashes_per_band", minhashes_per_band, 1)
    r = int(minhashes_per_band)
    _check_common(char_ngrams, num_bands * r, seed, use_64_bit_hash, device)
    band_ids = _band_list(bands, num_bands)
    projected, id_ddl = _id_and_text(df, text_col, id_col)
    a, b, murmur_seed = permutation_params(num_bands * r, seed, bool(use_64_bit_hash))
    # Only the requested bands' permutations are computed; the MurmurHash seed stays a[0].
    positions = (band_ids[:, None] * r + np.arange(r)[None, :]).reshape(-1)
    a_sub, b_sub = a[positions], b[positions]
    width, use64 = int(char_ngrams), bool(use_64_bit_hash)
    nb = band_ids.size

    def compute(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        kernel = kernel_for_device(device)
        for batch in batches:
            texts = batch.column(1)
            sig = kernel(texts, a_sub, b_sub, murmur_seed, width, use64)
            rows = np.flatnonzero(_has_shingles(texts, sig, width))
            sig = sig[rows]
            buckets = band_hashes(sig.reshape(len(rows), nb, r), band_ids)
            ids = batch.column(0).take(pa.array(np.repeat(rows, nb)))
            yield pa.RecordBatch.from_arrays(
                [
                    ids,
                    pa.array(np.tile(band_ids.astype(np.int32), len(rows))),
                    pa.array(buckets.reshape(-1)),
                ],
                names=["id", "band", "bucket"],
            )

    return projected.mapInArrow(compute, f"id {id_ddl}, band int, bucket bigint")


def _band_list(bands: Sequence[int] | None, num_bands: int) -> np.ndarray:
    if bands is None:
        return np.arange(num_bands, dtype=np.int64)
    values: list[Any] = list(bands)
    if not values or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < num_bands
        for v in values
    ):
        raise ConfigError(
            f"bands must be a non-empty list of band indices in [0, {num_bands}), got {values!r}"
        )
    if len(set(values)) != len(values):
        raise ConfigError(f"bands must not repeat a band index, got {values!r}")
    return np.asarray(values, dtype=np.int64)
