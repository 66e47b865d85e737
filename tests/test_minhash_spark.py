"""The Spark MinHash step: `minhash_signatures` and the fused `minhash_band_buckets`.

Few, small Spark jobs: signatures equal `sparkdedup.minhash` whatever the partitioning and Arrow
batch size, null/empty texts give null signatures, the fused buckets equal Spark's xxhash64 of
the sliced signatures, and bad columns fail before any job.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pyarrow as pa
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


def test_texts_that_start_no_shingle_get_no_signature_and_no_bucket(spark) -> None:
    """Bytes that are not UTF-8 and start no shingle (a Latin-1 "°C" or "½ cup" under a
    5-code-point shingle: 1 and 4 code points) get a null signature and no band rows, like an empty text; their
    bytes are not lost to a U+FFFD decoding, and a text of the same kind with a shingle keeps
    its signature."""
    hexes = ["b043", "bd20637570", "bd20637570730a", "80bf", "616263646566"]
    rows = ", ".join(f"({i}, CAST(X'{h}' AS STRING))" for i, h in enumerate(hexes))
    df = spark.sql(f"SELECT * FROM VALUES {rows} AS docs(id, text)")
    got = {r.id: r.signature for r in minhash_signatures(df, num_hashes=6, char_ngrams=5).collect()}
    assert [got[i] is None for i in range(len(hexes))] == [True, True, False, True, False]
    fused = minhash_band_buckets(df, num_bands=3, minhashes_per_band=2, char_ngrams=5)
    assert sorted({r.id for r in fused.collect()}) == [2, 4]


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


def test_arrow_batches_are_bounded_by_bytes_on_every_spark(spark, monkeypatch, stage_confs):
    """A batch of long texts stays near the byte limit on Spark 3.5 too, which has no
    ``maxBytesPerBatch``: there the rows per batch are cut to what keeps a batch of texts of
    the mean size of the first rows at the limit (one job over the first partition's first
    rows). On 4.x the byte limit does it and the rows are left alone. The workflow's Python
    stages ask for those settings, the verify stage for pairs of texts."""
    from sparkdedup import sizing

    rows_key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    limit = 2**20
    monkeypatch.setattr(sizing, "ARROW_BATCH_BYTES", limit)
    # An input Spark estimates at under 4 MB is not sampled (it fits a batch): this one's
    # texts are made from a range of 8 KB.
    small = spark.range(0, 1000, 1, 1).select("id", F.lit("x").alias("text"))
    assert not sizing._narrow_plan(sizing.text_sizes(small, "text"))
    monkeypatch.setattr(sizing, "UNSAMPLED_BYTES", 0)
    # 1,000 texts of 10,250 bytes in one partition: a 10 MB batch under the row limit alone.
    texts = spark.range(0, 1000, 1, 1).select(
        "id", F.concat(F.lpad(F.col("id").cast("string"), 10, "0"), F.repeat(F.lit("x"), 10240))
    )
    texts = texts.toDF("id", "text")

    def batch_rows(batches):
        for batch in batches:
            yield pa.RecordBatch.from_pydict({"n": [batch.num_rows]})

    def batches_seen(settings: dict) -> list[int]:
        with sizing.temporary_conf(spark, settings):
            return [r.n for r in texts.mapInArrow(batch_rows, "n long").collect()]

    unbounded = {rows_key: "10000", sizing._ARROW_BYTES_CONF: str(2**31 - 1)}
    assert batches_seen(unbounded) == [1000]  # (the check below can fail)
    with sizing.temporary_conf(spark, unbounded):
        settings = sizing.arrow_batch_conf(spark, sizing.text_sizes(texts, "text"))
        # A plan with a shuffle would run its whole map side to read a first row: not sized.
        assert rows_key not in sizing.arrow_batch_conf(
            spark, sizing.text_sizes(texts.repartition(2), "text")
        )
    # Nor a subquery (a job of its own), nor a persisted plan not yet computed (reading its
    # first rows would compute all of it); computed, it is read as it is.
    texts.createOrReplaceTempView("sized_texts")
    sub = spark.sql(
        "SELECT * FROM sized_texts WHERE length(text) >= (SELECT avg(length(text)) FROM sized_texts)"
    )
    assert sizing._narrow_plan(sizing.text_sizes(texts, "text"))
    assert not sizing._narrow_plan(sizing.text_sizes(sub, "text"))
    kept = texts.persist()
    assert not sizing._narrow_plan(sizing.text_sizes(kept, "text"))
    kept.count()
    assert sizing._narrow_plan(sizing.text_sizes(kept, "text"))
    kept.unpersist()
    seen = batches_seen({**unbounded, **settings})
    assert sum(seen) == 1000 and 50 <= max(seen) <= limit // 10250 + 2, seen
    if sizing.spark_major(spark) < 4:
        assert settings[rows_key] == str(limit // 10250)
    else:
        assert rows_key not in settings and settings[sizing._ARROW_BYTES_CONF] == str(limit)

    with sizing.temporary_conf(spark, unbounded):
        sparkdedup.fuzzy_duplicates(texts, id_col="id", verify="jaccard")
    assert stage_confs["minhash"] == settings
    pairs = {k: v for k, v in settings.items() if k != rows_key}
    if sizing.spark_major(spark) < 4:
        pairs[rows_key] = str(limit // (2 * 10250))
    assert stage_confs["verify"] == pairs
