"""Fuzzy dedup step 2: LSH banding (ALGORITHMS.md, "LSH banding").

Band k covers signature positions [k*r, (k+1)*r). Its bucket key is Spark SQL
``xxhash64(CAST(k AS INT), slice(signature, k*r+1, r))``, computed natively by Spark (and by the
RAPIDS Accelerator on GPU); the fused Python step and the JVM UDF give the same key. Bands are
grouped `bands_per_iteration` at a time (by default as many as keep one group's band keys
within ``spark.sparkdedup.lshGroupBytes``: `auto_bands`); buckets of one document go.

A bucket's size and anchor come from an aggregation (combined map-side, so a bucket of a
million documents reaches its reducer as a few partial rows), joined back to the members by a
shuffled hash join that builds on the aggregated side: no step sorts or buffers a whole bucket,
whose members stream through one task (an oversized bucket costs that task time, not memory;
the keys are partitioned by bucket explicitly, which Spark's adaptive skew handling does not
split).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.config import check_int
from sparkdedup.errors import ConfigError, SchemaError
from sparkdedup.ids import require_columns
from sparkdedup.sizing import parse_bytes

#: Bytes a band key takes in the LSH shuffle: (id, band, bucket) plus Spark's row overhead (the
#: measured shuffle, compressed, is about half of it). Sizes the band groups.
KEY_ROW_BYTES = 32
#: Bytes a band key takes in its task: the bucket aggregation's hash map holds a group for
#: nearly every key (most buckets have one member), about 200 bytes each as measured by its
#: spills. Sizes the LSH shuffle's partitions, so that a task's keys fit its memory.
KEY_TASK_BYTES = 256
GROUP_BYTES_CONF = "spark.sparkdedup.lshGroupBytes"
DEFAULT_GROUP_BYTES = 2 * 1024**3


def auto_bands(spark: SparkSession, nodes: int, num_bands: int) -> int:
    """Bands per group when `bands_per_iteration` is 0: the most that keep a group's band keys
    (`nodes` documents a band, KEY_ROW_BYTES each) within ``spark.sparkdedup.lshGroupBytes``
    (default 2g), spread evenly over the groups that takes, and at least one.

    A corpus whose keys fit (about 3.3 million documents at 20 bands) takes one shuffle for all
    bands; 10 million documents take four groups of five bands; 10^10, twenty of one.
    """
    check_int("num_bands", num_bands, 1)
    text = spark.conf.get(GROUP_BYTES_CONF, None)
    budget = DEFAULT_GROUP_BYTES if text is None else parse_bytes(text, GROUP_BYTES_CONF)
    fits = budget // max(1, nodes * KEY_ROW_BYTES)
    if fits >= num_bands:
        return num_bands
    groups = -(-num_bands // max(1, fits))
    return -(-num_bands // groups)


def band_groups(num_bands: int, bands_per_iteration: int) -> list[list[int]]:
    """Band indices in groups of `bands_per_iteration`: one shuffle per group."""
    check_int("num_bands", num_bands, 1)
    check_int("bands_per_iteration", bands_per_iteration, 1)
    return [
        list(range(start, min(start + bands_per_iteration, num_bands)))
        for start in range(0, num_bands, bands_per_iteration)
    ]


def band_keys(
    signatures: DataFrame,
    *,
    num_bands: int = 20,
    minhashes_per_band: int = 13,
    bands: Sequence[int] | None = None,
) -> DataFrame:
    """Bucket key of every band of every signature.

    Input ``[id, signature array<int|bigint>]``; output ``[id, band int, bucket bigint]``, one row
    per (document, band). Documents with a null signature (a text without shingles) give no
    rows.
    A signature whose length is not ``num_bands * minhashes_per_band`` fails the job with an
    error saying so.
    """
    check_int("num_bands", num_bands, 1)
    check_int("minhashes_per_band", minhashes_per_band, 1)
    require_columns(signatures, {"id": "id", "signature": "signature"})
    dtype = signatures.schema["signature"].dataType
    if not (
        isinstance(dtype, T.ArrayType)
        and isinstance(dtype.elementType, (T.IntegerType, T.LongType))
    ):
        raise SchemaError(
            f"signature column 'signature' must be array<int> or array<bigint>, got {dtype.simpleString()}"
        )
    bands = list(range(num_bands)) if bands is None else list(bands)
    if not bands or any(b < 0 or b >= num_bands for b in bands):
        raise ConfigError(
            f"bands must be a non-empty list of band indices in [0, {num_bands}), got {bands!r}"
        )
    r = minhashes_per_band
    expected = num_bands * r
    sig = F.col("signature")
    checked = F.when(
        F.size(sig) != expected,
        F.raise_error(
            F.concat(
                F.lit(
                    f"signature length must be num_bands * minhashes_per_band = {expected}, got "
                ),
                F.size(sig).cast("string"),
            )
        ),
    ).otherwise(sig)
    structs = F.array(
        *[
            F.struct(
                F.lit(b).cast("int").alias("band"),
                F.xxhash64(F.lit(b).cast("int"), F.slice(F.col("_sig"), b * r + 1, r)).alias(
                    "bucket"
                ),
            )
            for b in bands
        ]
    )
    return (
        signatures.filter(sig.isNotNull())
        .select(F.col("id"), checked.alias("_sig"))
        .select(F.col("id"), F.explode(structs).alias("_key"))
        .select("id", "_key.band", "_key.bucket")
    )


def bucket_anchors(
    keys: DataFrame,
    partitions: int | None = None,
    *,
    needs: str | None = None,
    order: str | None = None,
) -> DataFrame:
    """``keys`` ``[id, band, bucket, ...]`` joined to their bucket's size ``n`` and anchor
    ``src``, for buckets of two or more documents (and, with `needs`, a boolean column of
    `keys`, only buckets where it is true on some member).

    The anchor is the smallest id, or with `order` (a column of `keys`) the id of a member
    smallest by it. The keys are shuffled once, by bucket (`partitions`
    partitions, or Spark's default): the aggregation and the hash join both read that one
    shuffle.
    """
    shuffled = (
        keys.repartition(partitions, "band", "bucket")
        if partitions
        else keys.repartition("band", "bucket")
    )
    # min_by keeps a hash aggregation (a struct's min would sort every key); rows tied on the
    # order are rows of one text, any of which anchors the same comparisons.
    anchor = F.min("id") if order is None else F.min_by("id", order)
    sizes = [anchor.alias("src"), F.count(F.lit(1)).alias("n")]
    wanted = F.col("n") > 1
    if needs is not None:
        sizes.append(F.max(F.col(needs).cast("int")).alias("_dedup_needed"))
        wanted = wanted & (F.col("_dedup_needed") == 1)
    anchors = (
        shuffled.groupBy("band", "bucket")
        .agg(*sizes)
        .where(wanted)
        .select("band", "bucket", "src", "n")
    )
    return shuffled.join(anchors.hint("shuffle_hash"), on=["band", "bucket"], how="inner")


def not_anchor() -> Column:
    """``id`` is not its bucket's ``src``: written null-safe so that the optimizer infers no
    null filter for one side of the join, which would keep the two sides from sharing their
    shuffle."""
    return ~F.col("id").eqNullSafe(F.col("src"))


def band_group_edges(
    table: DataFrame,
    bands: Sequence[int],
    partitions: int | None = None,
    *,
    by_text: bool = False,
) -> DataFrame:
    """Edges of the buckets of `bands`, from a table with one bucket column per band.

    Input: ``[id, b0, b1, ...]`` (`fuzzy.scan.scan_documents`; a row whose first band of the
    group is null has none). Output: ``[src, dst]``, an edge from each multi-document bucket's
    anchor to every other member (duplicates possible across the group's bands).

    The anchor is the smallest id: which rows carry band keys (the first of each text in an
    Arrow batch) follows the input's layout, but not the components, so plain LSH needs no
    more. With `by_text` (the verified mode, which checks only the anchor's edges, so that the
    anchor decides what is removed) it is a row of the text with the smallest 64-bit hash
    ``t1`` (a column of `table`): a choice made by the texts alone, whatever rows carry the
    keys and whatever their ids, so that the same texts are compared in every layout (two
    texts of one bucket would have to share ``t1``, a 2^-64 chance, for the rows to decide).
    """
    order = "t1" if by_text else None
    keys = group_keys(table, bands, [order] if order else [])
    return (
        bucket_anchors(keys, partitions, order=order)
        .where(not_anchor())
        .select("src", F.col("id").alias("dst"))
    )


def group_keys(table: DataFrame, bands: Sequence[int], extra: Sequence[str] = ()) -> DataFrame:
    """``[id, (extra), band, bucket]``: the band keys of `bands` of a table with one bucket
    column per band (rows whose first band of the group is null have none)."""
    first = f"b{bands[0]}"
    structs = F.array(
        *[
            F.struct(F.lit(k).cast("int").alias("band"), F.col(f"b{k}").alias("bucket"))
            for k in bands
        ]
    )
    # explode and then the fields rather than inline: the RAPIDS Accelerator runs explode on the
    # GPU, not inline (the RAPIDS plan check, tests/test_rapids_plan.py).
    return (
        table.where(F.col(first).isNotNull())
        .select("id", *extra, F.explode(structs).alias("_key"))
        .select("id", *extra, "_key.band", "_key.bucket")
    )


def lsh_buckets(
    df: DataFrame,
    *,
    num_bands: int = 20,
    minhashes_per_band: int = 13,
    bands_per_iteration: int = 5,
) -> DataFrame:
    """Documents that share a band bucket with at least one other document.

    Parameters
    ----------
    df : ``[id, signature]`` (from `minhash_signatures`) or precomputed band keys
        ``[id, band, bucket]`` (from `band_keys` or the fused MinHash step).
    num_bands, minhashes_per_band : LSH banding (signature length is their product).
    bands_per_iteration : bands per shuffle; bounds the size of each shuffle.

    Returns
    -------
    DataFrame
        ``[id, band int, bucket bigint]`` for every (document, band) whose bucket holds two or
        more documents.
    """
    groups = band_groups(num_bands, bands_per_iteration)
    has_keys = {"band", "bucket"}.issubset(df.columns)
    require_columns(df, {"id": "id"} if has_keys else {"id": "id", "signature": "signature"})
    parts = []
    for group in groups:
        if has_keys:
            keys = df.select("id", "band", "bucket").filter(F.col("band").isin(group))
        else:
            keys = band_keys(
                df, num_bands=num_bands, minhashes_per_band=minhashes_per_band, bands=group
            )
        parts.append(bucket_anchors(keys).select("id", "band", "bucket"))
    result = parts[0]
    for part in parts[1:]:
        result = result.unionByName(part)
    return result
