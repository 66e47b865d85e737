"""LSH banding, edges and identify on hand-made signatures (Spark, small)."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sparkdedup.errors import ConfigError, SchemaError
from sparkdedup.fuzzy.edges import bucket_edges
from sparkdedup.fuzzy.identify import identify_duplicates
from sparkdedup.fuzzy.lsh import band_groups, band_keys, lsh_buckets


def test_band_groups():
    assert band_groups(5, 2) == [[0, 1], [2, 3], [4]]
    assert band_groups(3, 5) == [[0, 1, 2]]
    with pytest.raises(ConfigError, match="num_bands must be >= 1, got 0"):
        band_groups(0, 1)


def _signatures(spark):
    # 3 bands of 2: docs 1 and 2 share band 0, docs 2 and 3 share band 2, doc 4 shares nothing,
    # doc 5 has no signature (null or empty text).
    rows = [
        (1, [1, 2, 3, 4, 5, 6]),
        (2, [1, 2, 9, 9, 7, 8]),
        (3, [0, 0, 10, 11, 7, 8]),
        (4, [5, 5, 5, 5, 5, 5]),
        (5, None),
    ]
    return spark.createDataFrame(rows, "id bigint, signature array<int>")


def test_lsh_buckets_and_edges(spark):
    sigs = _signatures(spark)
    keys = band_keys(sigs, num_bands=3, minhashes_per_band=2)
    assert keys.count() == 4 * 3  # the null signature gives no rows
    for group_size in (1, 2, 3):
        buckets = lsh_buckets(
            sigs, num_bands=3, minhashes_per_band=2, bands_per_iteration=group_size
        )
        got = sorted((r["id"], r["band"]) for r in buckets.collect())
        assert got == [(1, 0), (2, 0), (2, 2), (3, 2)]
        edges = sorted(tuple(r) for r in bucket_edges(buckets).collect())
        assert edges == [(1, 2), (2, 3)]
    # Precomputed keys give the same buckets as signatures.
    from_keys = lsh_buckets(keys, num_bands=3, minhashes_per_band=2, bands_per_iteration=2)
    assert sorted(tuple(r) for r in from_keys.collect()) == sorted(
        tuple(r) for r in lsh_buckets(sigs, num_bands=3, minhashes_per_band=2).collect()
    )
    # The bucket key is Spark's xxhash64 of (band, band values).
    row = keys.filter((F.col("id") == 1) & (F.col("band") == 1)).first()
    expected = (
        spark.range(1)
        .select(F.xxhash64(F.lit(1).cast("int"), F.array(F.lit(3), F.lit(4))))
        .first()[0]
    )
    assert row["bucket"] == expected


def test_band_keys_errors(spark):
    sigs = _signatures(spark)
    with pytest.raises(
        Exception,
        match="signature length must be num_bands \\* minhashes_per_band = 8, got 6",
    ):
        band_keys(sigs, num_bands=4, minhashes_per_band=2).collect()
    with pytest.raises(SchemaError, match="must be array<int> or array<bigint>"):
        band_keys(spark.createDataFrame([(1, "x")], "id int, signature string"))
    with pytest.raises(SchemaError, match="'signature' is not in the input"):
        lsh_buckets(spark.createDataFrame([(1, "x")], "id int, text string"))


def test_identify_smallest_and_priority(spark):
    comps = spark.createDataFrame(
        [(1, 1), (2, 1), (3, 1), (7, 7), (9, 7)], "id bigint, component bigint"
    )
    got = sorted(tuple(r) for r in identify_duplicates(comps).collect())
    assert got == [(2, 1), (3, 1), (9, 7)]
    docs = spark.createDataFrame(
        [(1, 10), (2, 30), (3, 30), (7, None), (9, 5)], "_dedup_id bigint, length int"
    )
    got = identify_duplicates(comps, documents=docs, id_col="_dedup_id", priority_col="length")
    assert sorted(tuple(r) for r in got.collect()) == [(1, 2), (3, 2), (7, 9)]
    got = identify_duplicates(
        comps,
        documents=docs,
        id_col="_dedup_id",
        priority_col="length",
        priority_ascending=True,
    )
    assert sorted(tuple(r) for r in got.collect()) == [(2, 1), (3, 1), (7, 9)]
    with pytest.raises(SchemaError, match="priority column 'missing' is not in the input"):
        identify_duplicates(comps, documents=docs, id_col="_dedup_id", priority_col="missing")


_UNRANKABLE = [
    ("array(1)", "array<int>"),
    ("cast('x' AS binary)", "binary"),
    ("make_ym_interval(1, 0)", "interval year to month"),
    ("make_dt_interval(1, 0, 0, 0)", "interval day to second"),
    ("null", "void"),
]


@pytest.mark.parametrize(("expr", "shown"), _UNRANKABLE)
def test_unrankable_priority_types_are_refused_before_any_job(spark, expr, shown):
    """A priority column the keep rule cannot rank (nested, binary, an interval, nulls only)
    is an error naming it, raised before any Spark job, in every workflow that takes one.
    A void column (``lit(None)``) used to find no duplicates at all."""
    import sparkdedup

    text = "the quick brown fox jumps over the lazy dog " * 5
    docs = spark.createDataFrame([(1, text), (2, text)], "id long, text string")
    docs = docs.withColumn("p", F.expr(expr))
    comps = spark.createDataFrame([(1, 1), (2, 1)], "id bigint, component bigint")
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("unrankable", "unrankable priority")
    message = (
        f"priority column 'p' must be a number, string, boolean, date or timestamp, got {shown}"
    )
    try:
        for find in (sparkdedup.exact_duplicates, sparkdedup.fuzzy_duplicates):
            with pytest.raises(SchemaError, match=message):
                find(docs, id_col="id", priority_col="p")
        with pytest.raises(SchemaError, match=message):
            identify_duplicates(comps, documents=docs, id_col="id", priority_col="p")
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert tracker.getJobIdsForGroup("unrankable") == []


@pytest.mark.skipif(
    not hasattr(T.StringType(), "collation"), reason="string collations exist from Spark 4.0"
)
def test_collated_string_priority_ranks_by_code_point(spark):
    """A string priority in UTF8_LCASE ranks by code point, as the semantic sort columns do:
    "f" beats "F" (under the collation they would tie and the smallest id would be kept)."""
    import sparkdedup

    text = "the quick brown fox jumps over the lazy dog " * 5
    docs = spark.createDataFrame([(1, text, "F"), (2, text, "f")], "id long, text string, p string")
    docs = docs.withColumn("p", F.expr("collate(p, 'UTF8_LCASE')"))
    for find in (sparkdedup.exact_duplicates, sparkdedup.fuzzy_duplicates):
        assert [tuple(r) for r in find(docs, id_col="id", priority_col="p").collect()] == [(1, 2)]
        ascending = find(docs, id_col="id", priority_col="p", priority_ascending=True)
        assert [tuple(r) for r in ascending.collect()] == [(2, 1)]


@pytest.mark.skipif(
    not hasattr(T.StringType(), "collation"), reason="string collations exist from Spark 4.0"
)
def test_collated_texts_are_hashed_by_their_bytes(spark):
    """Spark 4.0.0 hashed a string in its collation (later versions under the legacy setting):
    texts of a UTF8_LCASE column that differ only in case got one text hash, so fuzzy and exact
    dedup took them for exact copies and removed them, normalised or not."""
    import sparkdedup
    from sparkdedup.ids import value_hashes

    conf = "spark.sql.legacy.collationAwareHashFunctions"
    text = "The Quick Brown Fox jumps over the lazy dog, again and again. " * 3
    rows = [(1, text), (2, text.upper()), (3, text.lower()), (4, text)]
    docs = spark.createDataFrame(rows, "id long, text string")
    docs = docs.withColumn("text", F.expr("collate(text, 'UTF8_LCASE')"))
    spark.conf.set(conf, "true")
    try:
        h1, _ = value_hashes(F.col("text"))
        assert docs.select(h1).distinct().count() == 1  # what the setting does
        for find in (sparkdedup.exact_duplicates, sparkdedup.fuzzy_duplicates):
            for normalize in ("none", "whitespace"):
                dups = find(docs, id_col="id", normalize=normalize)
                assert [tuple(r) for r in dups.collect()] == [(4, 1)], (find, normalize)
    finally:
        spark.conf.unset(conf)


def test_identify_nan_priority_ranks_last_like_null(spark):
    """A NaN priority ranks last, as a null does, whichever direction: Spark's max would
    otherwise pick it over every number."""
    comps = spark.createDataFrame(
        [(1, 1), (2, 1), (3, 1), (7, 7), (9, 7)], "id bigint, component bigint"
    )
    nan = float("nan")
    docs = spark.createDataFrame(
        [(1, nan), (2, 30.0), (3, 10.0), (7, None), (9, nan)], "_dedup_id bigint, score double"
    )

    def keep(**kw):
        got = identify_duplicates(comps, documents=docs, id_col="_dedup_id", **kw)
        return sorted(tuple(r) for r in got.collect())

    assert keep(priority_col="score") == [(1, 2), (3, 2), (9, 7)]
    assert keep(priority_col="score", priority_ascending=True) == [(1, 3), (2, 3), (9, 7)]
    floats = docs.withColumn("score", F.col("score").cast("float"))
    got = identify_duplicates(comps, documents=floats, id_col="_dedup_id", priority_col="score")
    assert sorted(tuple(r) for r in got.collect()) == [(1, 2), (3, 2), (9, 7)]
