"""The Spark MinHash step: `minhash_signatures` and the fused `minhash_band_buckets`.

Few, small Spark jobs: signatures equal `sparkdedup.minhash` whatever the partitioning and Arrow
batch size, null/empty texts give null signatures, the fused buckets equal Spark's xxhash64 of
the sliced signatures, and bad columns fail before any job.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pytest
import sparkdedup
from pyspark.sql import functions as F
from sparkdedup.errors import ConfigError, SchemaError
from sparkdedup.fuzzy.minhash import minhash_band_buckets, minhash_signatures

TEXTS = [
    "The quick brown fox jumps over the lazy dog, again and again, near duplicate text.",
    "The quick brown fox jumps over the lazy dog, again and again, near duplicate text!",
    None,
    "",
    "short",
    "漢字かな交じり文と絵文字🙂👍🏽を含む、二十四文字より長いテキストです。",
    "e\u0301 combining marks and \U0010ffff four-byte characters " * 3,
]


def _texts(count: int) -> list[str | None]:
    rng = random.Random(3)
    words = ["alpha", "beta", "gamma", "délta", "εψιλον", "漢字", "🙂", "zeta", "eta"]
    extra = [" ".join(rng.choices(words, k=rng.randint(1, 40))) for _ in range(count)]
    return TEXTS + extra


@contextlib.contextmanager
def _arrow_batch_size(spark, size: int):
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    old = spark.conf.get(key)
    spark.conf.set(key, str(size))
    try:
        yield
    finally:
        spark.conf.set(key, old)


@pytest.mark.parametrize(("partitions", "use64"), [(3, False), (1, True)])
def test_signatures_equal_kernel(spark, partitions: int, use64: bool) -> None:
    texts = _texts(40)
    df = spark.createDataFrame(
        [(i, t) for i, t in enumerate(texts)], "doc int, body string"
    ).repartition(partitions)
    with _arrow_batch_size(spark, 7):
        out = minhash_signatures(
            df, text_col="body", id_col="doc", num_hashes=26, use_64_bit_hash=use64
        )
        rows = out.collect()
    element = "bigint" if use64 else "int"
    assert out.schema.simpleString() == f"struct<id:bigint,signature:array<{element}>>"
    got = {row.id: row.signature for row in rows}
    assert sorted(got) == list(range(len(texts)))
    expected = sparkdedup.minhash(texts, num_hashes=26, use_64_bit_hash=use64)
    signed = expected.view(np.int64 if use64 else np.int32)
    for i, text in enumerate(texts):
        if not text:
            assert got[i] is None, i
        else:
            assert got[i] == signed[i].tolist(), i


def test_fused_buckets_equal_xxhash64_of_signatures(spark) -> None:
    texts = _texts(25)
    df = spark.createDataFrame(
        [(f"d{i}", t) for i, t in enumerate(texts)], "id string, text string"
    )
    r, bands = 3, [0, 2, 5]
    signatures = minhash_signatures(df, num_hashes=6 * r, char_ngrams=5)
    expected = signatures.filter(F.col("signature").isNotNull()).select(
        "id",
        F.inline(
            F.array(
                *[
                    F.struct(
                        F.lit(k).cast("int").alias("band"),
                        F.xxhash64(F.lit(k).cast("int"), F.slice("signature", k * r + 1, r)).alias(
                            "bucket"
                        ),
                    )
                    for k in bands
                ]
            )
        ),
    )
    fused = minhash_band_buckets(
        df.repartition(2), num_bands=6, minhashes_per_band=r, bands=bands, char_ngrams=5
    )
    assert fused.schema.simpleString() == "struct<id:string,band:int,bucket:bigint>"
    fused_rows = sorted(map(tuple, fused.collect()))
    assert fused_rows == sorted(map(tuple, expected.collect()))
    # Null and empty texts give no rows; every other document gives one row per band.
    assert len(fused_rows) == len(bands) * sum(1 for t in texts if t)


def test_columns_and_parameters_are_checked_before_any_job(spark) -> None:
    df = spark.createDataFrame([(1, "a text", 3)], "id long, text string, n int")
    with pytest.raises(SchemaError, match=r"'body'.*available columns: id, text, n"):
        minhash_signatures(df, text_col="body")
    with pytest.raises(SchemaError, match=r"'doc'.*available columns"):
        minhash_signatures(df, id_col="doc")
    with pytest.raises(
        SchemaError, match=r"'n' must be of string type, got int \(if it is a Parquet"
    ):
        minhash_signatures(df, text_col="n")
    with pytest.raises(SchemaError, match=r"id column 'text'|must be of string type"):
        minhash_band_buckets(df, text_col="n")
    with pytest.raises(ConfigError, match="char_ngrams"):
        minhash_signatures(df, char_ngrams=1)
    with pytest.raises(ConfigError, match="device"):
        minhash_signatures(df, device="auto")
    with pytest.raises(ConfigError, match="bands"):
        minhash_band_buckets(df, num_bands=4, minhashes_per_band=2, bands=[4])
