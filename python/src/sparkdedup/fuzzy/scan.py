"""Fuzzy dedup step 1 of the workflow: one pass over the corpus giving a narrow table of every
document (ALGORITHMS.md, "Signature of one document" and "LSH banding"; SCALE.md, cost model).

For each row: its key (the user's id, or the content hashes and input position behind a derived
id), a 128-bit hash of its text (``t1, t2``: exact copies share it), the priority value when the
keep rule uses one, and the LSH bucket of every band (``b0 .. b{B-1}``: MinHash fused with band
hashing, as `minhash_band_buckets`). Buckets are computed only for the first row of each
distinct text in an Arrow batch: an exact copy costs a hash, not a MinHash, and reaches the LSH
shuffle at most once per batch. The text itself is read once, here, and never shuffled.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparkdedup.columns import binary_strings, named
from sparkdedup.fuzzy.minhash import _check_common
from sparkdedup.ids import H1, H2, POS, id_column, require_string_column, with_content_keys
from sparkdedup.kernels.bandhash import band_hashes
from sparkdedup.kernels.minhash import kernel_for_device, permutation_params, without_shingles
from sparkdedup.kernels.textnorm import check_normalize, normalize_arrow

#: The text-hash columns: a document without shingles (null or empty text) has nulls there.
TEXT_H1, TEXT_H2 = "t1", "t2"
PRIORITY = "priority"
_TEXT = "_dedup_text"
#: The (normalised) text column of `hashed_texts`.
TEXT_COL = _TEXT
_TEXT_SEED = 0x2545F491  # second text hash: xxhash64(this, text)


def band_col(band: int) -> str:
    """Name of the column holding band `band`'s bucket in the scan table."""
    return f"b{band}"


def text_hashes(text: Column) -> tuple[Column, Column]:
    """(t1, t2): a 128-bit hash of a non-empty text; nulls for a null or empty one."""
    present = text.isNotNull() & (F.octet_length(text) > 0)
    return (
        F.when(present, F.xxhash64(text)),
        F.when(present, F.xxhash64(F.lit(_TEXT_SEED), text)),
    )


def hashed_texts(
    source: DataFrame, keys: list[Column], extra: list[Column], text: Column, normalize: str
) -> DataFrame:
    """``[keys..., t1, t2, extra..., _dedup_text]``: the narrow projection of `source` with its
    (normalised) text and that text's 128-bit hash. Normalising runs in an Arrow batch UDF over
    this projection only (keys and text), never over the wide rows.

    The hash is of the text's bytes, whatever its collation: Spark 4.0.0 (later versions under
    ``spark.sql.legacy.collationAwareHashFunctions``) hashes a string in its collation, which
    gave "Hello" and "HELLO" of a UTF8_LCASE column one hash, and made them exact copies."""
    check_normalize(normalize)
    narrow = source.select(*keys, *extra, text.alias(_TEXT))
    dtype = narrow.schema[_TEXT].dataType
    if normalize == "none":
        t1, t2 = text_hashes(binary_strings(text, dtype))
        return source.select(*keys, t1.alias(TEXT_H1), t2.alias(TEXT_H2), *extra, text.alias(_TEXT))
    mode = normalize

    def normalise(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            index = batch.schema.get_field_index(_TEXT)
            texts = normalize_arrow(batch.column(index), mode)
            yield batch.set_column(index, _TEXT, texts)

    normal = narrow.mapInArrow(normalise, narrow.schema)
    passed = [named(f.name) for f in narrow.schema.fields if f.name != _TEXT]
    t1, t2 = text_hashes(binary_strings(F.col(_TEXT), dtype))
    n_keys = len(keys)
    return normal.select(
        *passed[:n_keys], t1.alias(TEXT_H1), t2.alias(TEXT_H2), *passed[n_keys:], F.col(_TEXT)
    )


def _first_of_each_text(t1: np.ndarray, t2: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The first of `rows` (indices, ascending) for each distinct (t1, t2) among them."""
    if rows.size == 0:
        return rows
    order = np.lexsort((t2[rows], t1[rows]))  # stable: equal texts keep their row order
    k1, k2 = t1[rows][order], t2[rows][order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (k1[1:] != k1[:-1]) | (k2[1:] != k2[:-1])
    return np.sort(rows[order[new]])


def scan_documents(
    df: DataFrame,
    *,
    text_col: str = "text",
    id_col: str | None = None,
    priority_col: str | None = None,
    char_ngrams: int = 24,
    num_bands: int = 20,
    minhashes_per_band: int = 13,
    seed: int = 42,
    use_64_bit_hash: bool = False,
    device: str = "cpu",
    normalize: str = "none",
) -> DataFrame:
    """The narrow per-document table of a fuzzy run, from one read of `df`.

    `normalize` (`sparkdedup.kernels.textnorm`) applies to the text before it is hashed and
    MinHashed; the ids and the rows written out are the input's own.

    Returns
    -------
    DataFrame
        One row per row of `df`: ``id`` (the user's ids; integers as bigint) or, when `id_col`
        is None, ``_dedup_h1, _dedup_h2, _dedup_pos`` (`sparkdedup.ids.derived_ids` turns them
        into ids); ``t1, t2`` bigint (null for a null or empty text); ``priority`` when
        `priority_col` is given; ``b0 .. b{num_bands-1}`` bigint, the band buckets, set on the
        first row of each distinct text of an Arrow batch and null elsewhere.
    """
    _check_common(char_ngrams, num_bands * minhashes_per_band, seed, use_64_bit_hash, device)
    require_string_column(df, text_col, "text")
    text = named(text_col)
    if id_col is not None:
        keys = [id_column(df, id_col).alias("id")]
        source = df
    else:
        source = with_content_keys(df)
        keys = [F.col(H1), F.col(H2), F.col(POS)]
    extra = [named(priority_col).alias(PRIORITY)] if priority_col else []
    projected = hashed_texts(source, keys, extra, text, normalize)
    passed = [f for f in projected.schema.fields if f.name != _TEXT]
    bands = [band_col(k) for k in range(num_bands)]
    schema = ", ".join(
        [f"`{f.name}` {f.dataType.simpleString()}" for f in passed] + [f"{b} bigint" for b in bands]
    )
    a, b, murmur_seed = permutation_params(
        num_bands * minhashes_per_band, seed, bool(use_64_bit_hash)
    )
    width, use64, r = int(char_ngrams), bool(use_64_bit_hash), int(minhashes_per_band)
    band_ids = np.arange(num_bands, dtype=np.int64)
    names = [f.name for f in passed]

    def compute(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        kernel = kernel_for_device(device)
        for batch in batches:
            n = batch.num_rows
            th1, th2 = batch.column(TEXT_H1), batch.column(TEXT_H2)
            present = th1.is_valid().to_numpy(zero_copy_only=False)
            h1 = th1.fill_null(0).to_numpy(zero_copy_only=False)
            h2 = th2.fill_null(0).to_numpy(zero_copy_only=False)
            nodes = _first_of_each_text(h1, h2, np.flatnonzero(present))
            keys = np.zeros((n, num_bands), dtype=np.int64)
            if nodes.size:
                texts = batch.column(_TEXT).take(pa.array(nodes))
                sig = kernel(texts, a, b, murmur_seed, width, use64)
                shingled = ~without_shingles(texts, sig, width)
                nodes, sig = nodes[shingled], sig[shingled]
                keys[nodes] = band_hashes(sig.reshape(nodes.size, num_bands, r), band_ids)
            missing = np.ones(n, dtype=bool)
            missing[nodes] = False
            columns = [batch.column(name) for name in names]
            columns += [pa.array(keys[:, k], mask=missing) for k in range(num_bands)]
            yield pa.RecordBatch.from_arrays(columns, names=[*names, *bands])

    return projected.mapInArrow(compute, schema)
