"""Ids (user and derived) and removal, on small Spark DataFrames."""

from __future__ import annotations

import re

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sparkdedup.errors import SchemaError
from sparkdedup.ids import ID_COL, assign_ids, check_user_ids, content_checksum
from sparkdedup.removal import remove_duplicates

ROWS = [(f"doc {i % 7}", i % 3, f"s{i}") for i in range(40)] + [("same", 1, "dup")] * 3


def _ids(df):
    return sorted((r["text"], r["k"], r["src"], r[ID_COL]) for r in df.collect())


def test_derived_ids_are_unique_and_order_independent(spark):
    df = spark.createDataFrame(ROWS, "text string, k int, src string")
    first = _ids(assign_ids(df))
    assert len({r[-1] for r in first}) == len(ROWS) and min(r[-1] for r in first) >= 0
    shuffled = spark.createDataFrame(list(reversed(ROWS)), df.schema).repartition(7)
    assert _ids(assign_ids(shuffled)) == first
    single = spark.createDataFrame(ROWS[::2] + ROWS[1::2], df.schema).coalesce(1)
    assert _ids(assign_ids(single)) == first


def test_derived_ids_cover_map_columns(spark):
    """A map's entries count, in any stored order; a map inside a struct is refused."""
    rows = [("t", {"a": 1, "b": 2}), ("t", {"a": 1, "b": 3}), ("t", {"b": 2, "a": 1})]
    df = spark.createDataFrame(rows, "text string, meta map<string,int>")
    ided = {(r["meta"]["b"], r[ID_COL]) for r in assign_ids(df).collect()}
    assert len({i for _, i in ided}) == 3
    flipped = spark.createDataFrame(rows[::-1], df.schema).repartition(2)
    assert {(r["meta"]["b"], r[ID_COL]) for r in assign_ids(flipped).collect()} == ided
    # Rows 0 and 2 are the same content; the checksum tells the map values apart.
    other = df.limit(2).union(df.where(F.col("meta")["b"] == 3))
    assert content_checksum(df) != content_checksum(other)
    nested = spark.createDataFrame(
        [("t", ({"a": 1},))], "text string, s struct<m: map<string,int>>"
    )
    with pytest.raises(SchemaError, match="column 's' holds a map inside a struct"):
        assign_ids(nested)


def test_derived_ids_tell_where_the_nulls_are(spark):
    """Rows that differ only in where a null sits, at any depth, have different content
    hashes (xxhash64 alone skips nulls: they collided, and got ids by input position)."""
    from sparkdedup.ids import H1, with_content_keys

    schema = (
        "a string, b string, tags array<string>, s struct<x: string, y: string>, "
        "m map<string,string>"
    )
    base = ("t", "u", ["p"], ("x", "y"), {"k": "v"})
    variants = [
        (None, "t", *base[2:]),  # the same value in another column
        ("t", None, *base[2:]),
        (*base[:2], [], *base[3:]),  # empty, null and [null] arrays
        (*base[:2], None, *base[3:]),
        (*base[:2], [None], *base[3:]),
        (*base[:2], [None, "p"], *base[3:]),
        (*base[:2], ["p", None], *base[3:]),
        (*base[:3], (None, "x"), base[4]),  # the null in another struct field
        (*base[:3], ("x", None), base[4]),
        (*base[:3], None, base[4]),
        (*base[:4], {"k": None}),  # a null map value, an empty and a null map
        (*base[:4], {}),
        (*base[:4], None),
    ]
    rows = [tuple(row) for row in variants]
    df = spark.createDataFrame(rows, schema)
    hashes = [r[H1] for r in with_content_keys(df).collect()]
    assert len(set(hashes)) == len(rows)
    first = {tuple(map(str, r[:5])): r[ID_COL] for r in assign_ids(df).collect()}
    flipped = spark.createDataFrame(rows[::-1], schema).repartition(3)
    assert {tuple(map(str, r[:5])): r[ID_COL] for r in assign_ids(flipped).collect()} == first


def test_derived_ids_tell_negative_zero_from_zero(spark):
    """Spark's hash takes -0.0 as 0.0: rows differing only there (a float, a double, in an
    array or a struct) shared their hashes and got ids by input position, so another order
    kept the other row. Other values hash as before (scheme 2's hashes)."""
    from sparkdedup.ids import H1, with_content_keys

    schema = "t string, d double, f float, a array<double>, s struct<x: float>"
    rows = [
        ("t", 0.0, 1.0, [1.0], (1.0,)),
        ("t", -0.0, 1.0, [1.0], (1.0,)),
        ("t", 1.0, 0.0, [1.0], (1.0,)),
        ("t", 1.0, -0.0, [1.0], (1.0,)),
        ("t", 1.0, 1.0, [0.0], (1.0,)),
        ("t", 1.0, 1.0, [-0.0], (1.0,)),
        ("t", 1.0, 1.0, [1.0], (0.0,)),
        ("t", 1.0, 1.0, [1.0], (-0.0,)),
        ("t", None, float("nan"), None, None),
    ]
    df = spark.createDataFrame(rows, schema)
    assert len({r[H1] for r in with_content_keys(df).collect()}) == len(rows)

    def ids(frame):
        return {tuple(map(repr, r[:5])): r[ID_COL] for r in assign_ids(frame).collect()}

    first = ids(df)
    assert ids(spark.createDataFrame(rows[::-1], schema).repartition(3)) == first
    # Without a -0.0, a row hashes as scheme 2 did: each value as (is null, value).
    flat = spark.createDataFrame(
        [("t", 0.0), ("t", 2.5), ("t", None), ("t", -0.0)], "t string, d double"
    )
    scheme2 = F.xxhash64(
        *[F.struct(F.col(c).isNull().alias("n"), F.col(c).alias("v")) for c in ("d", "t")]
    )
    same = [
        r["same"]
        for r in with_content_keys(flat).select((F.col(H1) == scheme2).alias("same")).collect()
    ]
    assert same == [True, True, True, False]
    # Exact dedup of the same text with 0.0 and -0.0; either order keeps the same row.
    import sparkdedup

    pair = [("the same text", 0.0), ("the same text", -0.0)]
    kept = set()
    for order in (pair, pair[::-1]):
        docs = spark.createDataFrame(order, "text string, score double").coalesce(1)
        left = remove_duplicates(docs, sparkdedup.exact_duplicates(docs)).collect()
        kept.add(repr(left[0]["score"]))
    assert len(kept) == 1


def test_derived_ids_ignore_column_order(spark):
    df = spark.createDataFrame(ROWS, "text string, k int, src string")
    reordered = df.select("src", "k", "text").repartition(3)
    assert _ids(assign_ids(reordered)) == _ids(assign_ids(df))


def test_content_checksum_identifies_the_same_rows(spark):
    df = spark.createDataFrame(ROWS, "text string, k int, src string")
    base = content_checksum(df)
    assert base["rows"] == len(ROWS)
    same = spark.createDataFrame(list(reversed(ROWS)), df.schema).repartition(5)
    assert content_checksum(same.select("k", "src", "text")) == base
    assert content_checksum(assign_ids(df)) == base  # the id column is not content
    assert content_checksum(df.limit(len(ROWS) - 1)) != base
    edited = spark.createDataFrame([("doc 9", *ROWS[0][1:]), *ROWS[1:]], df.schema)
    assert content_checksum(edited) != base
    assert content_checksum(df.limit(0)) == {"rows": 0, "checksum": "0"}


def test_user_ids_checked(spark):
    unique = spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], "id int, text string")
    assert check_user_ids(unique, "id") == 3  # checked and counted in one job
    assert check_user_ids(unique.limit(0), "id") == 0
    df = spark.createDataFrame([(1, "a"), (2, "b"), (2, "c")], "id int, text string")
    with pytest.raises(SchemaError, match="not unique"):
        check_user_ids(df, "id")
    with pytest.raises(
        SchemaError,
        match=r"id column 'id' is not unique: duplicated values include 2 \(2 rows\)",
    ):
        assign_ids(df, id_col="id")
    nulls = spark.createDataFrame([(1, "a"), (None, "b")], "id int, text string")
    with pytest.raises(SchemaError, match="null"):
        assign_ids(nulls, id_col="id")
    floats = spark.createDataFrame([(1.0, "a")], "id double, text string")
    with pytest.raises(SchemaError, match="integer or string"):
        assign_ids(floats, id_col="id")
    with pytest.raises(
        SchemaError, match="'doc_id' is not in the input; available columns: id, text"
    ):
        assign_ids(floats, id_col="doc_id")
    ok = assign_ids(df.limit(2), id_col="id")
    assert ok.schema[ID_COL].dataType.simpleString() == "bigint"


def test_remove_duplicates_with_user_and_derived_ids(spark):
    df = spark.createDataFrame([("a", "x"), ("b", "y"), ("c", "z")], "id string, text string")
    dups = spark.createDataFrame([("b", "a")], "id string, kept_id string")
    kept = remove_duplicates(df, dups, id_col="id")
    assert kept.columns == ["id", "text"]
    assert sorted(r["id"] for r in kept.collect()) == ["a", "c"]

    plain = spark.createDataFrame(ROWS, "text string, k int, src string")
    with_ids = assign_ids(plain)
    drop = with_ids.filter(F.col("k") == 0).select(F.col(ID_COL).alias("id"))
    kept = remove_duplicates(plain.repartition(3), drop)
    assert kept.columns == plain.columns
    assert kept.count() + drop.count() == plain.count()
    assert kept.filter(F.col("k") == 0).count() == 0


@pytest.mark.parametrize("broadcast", [False, True])
def test_ids_listed_more_than_once_remove_their_row_once(spark, broadcast):
    # The list is anti-joined as it is (no distinct of it first): repeats neither drop other
    # rows nor repeat kept ones.
    df = spark.createDataFrame(
        [("a", "x"), ("b", "y"), ("c", "z"), ("d", "w")], "id string, text string"
    )
    dups = spark.createDataFrame(
        [("b", "a"), ("b", "a"), ("d", "c"), ("b", "c")], "id string, kept_id string"
    )
    kept = remove_duplicates(df, dups, id_col="id", broadcast=broadcast)
    assert sorted(r["id"] for r in kept.collect()) == ["a", "c"]
    # Rows carrying their derived ids (`_dedup_id`), listed by those ids.
    numbered = spark.createDataFrame(
        [(1, "x"), (2, "y"), (3, "z")], f"{ID_COL} bigint, text string"
    )
    listed = spark.createDataFrame([(2, 1), (2, 1), (2, 3)], "id bigint, kept_id bigint")
    assert sorted(r[ID_COL] for r in remove_duplicates(numbered, listed).collect()) == [1, 3]


def test_listed_ids_of_another_type_remove_only_the_rows_they_equal(spark):
    """A cast to the input's id type would truncate 3.7 to 3, "7.9" to 7 (Spark 3.5), fail on
    "x" (Spark 4), and 2**60 + 3 held as a double is 2**60: such a list removed other rows."""
    big = 2**60
    df = spark.createDataFrame(
        [(i, f"doc {i}") for i in range(10)] + [(big + i, "big") for i in range(3)],
        "id bigint, text string",
    )

    def kept(listed, schema, **kwargs):
        dups = spark.createDataFrame([(v,) for v in listed], schema)
        return sorted(r["id"] for r in remove_duplicates(df, dups, id_col="id", **kwargs).collect())

    everything = list(range(10)) + [big, big + 1, big + 2]
    from decimal import Decimal

    for dtype, value in (("double", 3.0), ("float", 3.0), ("decimal(10,2)", Decimal("3.00"))):
        with pytest.raises(SchemaError, match=re.escape(f"id column is {dtype}; ids are")):
            kept([value], f"id {dtype}")
    # Strings: only an integer's own text is that integer.
    listed = ["3", "07", "x", "7.9", " 8", str(big + 1), "99999999999999999999", None]
    assert kept(listed, "id string") == [i for i in everything if i not in (3, big + 1)]
    assert kept(listed, "id string", broadcast=True) == [
        i for i in everything if i not in (3, big + 1)
    ]
    assert kept([4, 5], "id int") == [i for i in everything if i not in (4, 5)]
    # A decimal of scale 0 out of bigint's range matches nothing (a cast would wrap around).
    listed = [Decimal(6), Decimal(2**64 + 6)]
    assert kept(listed, "id decimal(30,0)") == [i for i in everything if i != 6]
    # Integers against string ids: their text.
    named_df = spark.createDataFrame([("1", "a"), ("01", "b"), ("x", "c")], "id string, t string")
    dups = spark.createDataFrame([(1,)], "id bigint")
    assert sorted(r["id"] for r in remove_duplicates(named_df, dups, id_col="id").collect()) == [
        "01",
        "x",
    ]
    # Derived ids (a `_dedup_id` column) take integers only.
    numbered = spark.createDataFrame([(1, "x"), (2, "y")], f"{ID_COL} bigint, text string")
    with pytest.raises(SchemaError, match="id column is double"):
        remove_duplicates(numbered, spark.createDataFrame([(2.0,)], "id double"))


@pytest.mark.skipif(
    not hasattr(T.StringType(), "collation"), reason="string collations exist from Spark 4.0"
)
def test_ids_in_a_case_insensitive_collation_stay_distinct(spark):
    """A string id column in UTF8_LCASE holds "a" and "A" for two different documents: the
    uniqueness check, the fuzzy and exact workflows (with a priority, which joins the ids) and
    `remove_duplicates` treat them as two ids, compared byte for byte."""
    import sparkdedup

    one, other = "the quick brown fox jumps over the lazy dog " * 5, "lorem ipsum dolor " * 12
    rows = [("a", one, 1.0), ("A", other, 2.0), ("b", one, 3.0), ("c", other, 0.5)]
    df = spark.createDataFrame(rows, "id string, text string, q double")
    df = df.withColumn("id", F.expr("collate(id, 'UTF8_LCASE')"))
    assert check_user_ids(df, "id") == 4
    for find in (sparkdedup.exact_duplicates, sparkdedup.fuzzy_duplicates):
        dups = find(df, id_col="id", priority_col="q")
        assert sorted((r["id"], r["kept_id"]) for r in dups.collect()) == [("a", "b"), ("c", "A")]
        kept = remove_duplicates(df, dups, id_col="id")
        assert sorted(r["id"] for r in kept.collect()) == ["A", "b"]


@pytest.mark.skipif(
    not hasattr(T.StringType(), "collation"), reason="string collations exist from Spark 4.0"
)
def test_derived_ids_hash_collated_strings_by_their_bytes(spark):
    """Spark 4.0.0 hashed a string in its collation (later versions under the legacy setting):
    rows differing only in case in a UTF8_LCASE column shared their content hashes and got
    derived ids by input position, so which of two such copies (normalize="lower") was kept
    followed the input order. Hashed by their bytes, their ids are those of any other Spark."""
    import sparkdedup
    from sparkdedup.ids import row_hashes

    conf = "spark.sql.legacy.collationAwareHashFunctions"
    text = "The Quick Brown Fox jumps over the lazy dog, again and again. " * 3
    rows = [(text,), (text.upper(),), ("an unrelated document about something else " * 3,)]
    plain = spark.createDataFrame(rows, "text string").coalesce(1)
    collated = plain.withColumn("text", F.expr("collate(text, 'UTF8_LCASE')"))

    def hashes(df):
        return sorted(tuple(r) for r in df.select(*row_hashes(df)).collect())

    assert hashes(collated) == hashes(plain)  # the ids of any Spark's hashing
    spark.conf.set(conf, "true")
    try:
        assert hashes(collated) == hashes(plain)
        kept = set()
        for order in (rows, rows[::-1]):
            df = spark.createDataFrame(order, "text string").coalesce(1)
            df = df.withColumn("text", F.expr("collate(text, 'UTF8_LCASE')"))
            dups = sparkdedup.fuzzy_duplicates(df, normalize="lower")
            left = remove_duplicates(df, dups)
            kept.add(tuple(sorted(r["text"] for r in left.collect())))
        assert len(kept) == 1, kept
    finally:
        spark.conf.unset(conf)


def test_remove_duplicates_refuses_ids_of_another_column(spark, tmp_path):
    """The lists the Python API returns say which ids they hold: removing them with another
    id column, or without one (which would derive ids, match nothing and keep every row), is
    refused before any job; so is an unmarked list of string ids without id_col. The mark
    survives a Parquet round trip; check=False takes a list whose column was renamed since."""
    import sparkdedup

    rows = [(i, f"doc-{i}", f"text {i % 4}") for i in range(12)]
    docs = spark.createDataFrame(rows, "id long, name string, text string")
    dups = sparkdedup.exact_duplicates(docs, id_col="id")
    assert dups.count() == 8
    for options in ({}, {"id_col": "name"}):
        with pytest.raises(SchemaError, match="hold values of the id column 'id'.*id_col='id'"):
            remove_duplicates(docs, dups, **options)
    dups.write.parquet(str(tmp_path / "dups"))
    read_back = spark.read.parquet(str(tmp_path / "dups"))
    with pytest.raises(SchemaError, match="id_col='id'"):
        remove_duplicates(docs, read_back)
    assert remove_duplicates(docs, read_back, id_col="id").count() == 4

    derived = sparkdedup.exact_duplicates(docs.select("text"))
    with pytest.raises(SchemaError, match="derived ids .*without id_col"):
        remove_duplicates(docs, derived, id_col="id")
    assert remove_duplicates(docs.select("text"), derived).count() == 4
    # A list of ids derived by an earlier version (nulls skipped in the hash) is refused.
    earlier = derived.select(F.col("id").alias("id", metadata={"sparkdedup_ids": "derived"}))
    with pytest.raises(SchemaError, match="derived by another version of sparkdedup"):
        remove_duplicates(docs.select("text"), earlier)

    by_name = sparkdedup.exact_duplicates(docs, id_col="name")
    with pytest.raises(SchemaError, match="id_col='name'"):
        remove_duplicates(docs, by_name)
    unmarked = spark.createDataFrame([("doc-4",)], "id string")
    with pytest.raises(SchemaError, match="strings, which derived ids never are"):
        remove_duplicates(docs, unmarked)
    renamed = docs.withColumnRenamed("id", "doc_id")
    assert remove_duplicates(renamed, dups, id_col="doc_id", check=False).count() == 4


def test_reserved_column_names_are_refused_before_any_job(spark):
    """Input columns named like the ones sparkdedup adds (``_dedup_*``, any case) are refused
    up front by every workflow and by remove_duplicates, naming them (they clashed late, with
    Spark's AMBIGUOUS_REFERENCE or only after the whole pipeline)."""
    import sparkdedup

    boom = F.raise_error(F.lit("a job ran"))
    df = spark.range(4).select(
        F.col("id"),
        F.lit("some text here").alias("text"),
        F.array(F.lit(1.0), F.lit(0.0)).alias("emb"),
        boom.cast("bigint").alias("_DEDUP_pos"),
        boom.cast("string").alias("_dedup_h1"),
    )
    message = r"column\(s\) '_DEDUP_pos', '_dedup_h1' start with '_dedup_'"
    calls = [
        lambda: sparkdedup.fuzzy_duplicates(df, id_col="id", device="cpu"),
        lambda: sparkdedup.fuzzy_duplicates(df, device="cpu"),
        lambda: sparkdedup.exact_duplicates(df),
        lambda: sparkdedup.semantic_duplicates(df, embedding_col="emb", id_col="id"),
        lambda: remove_duplicates(df, spark.createDataFrame([(1,)], "id long"), id_col="id"),
    ]
    for call in calls:
        with pytest.raises(SchemaError, match=message):
            call()


def test_a_streaming_input_is_refused_before_any_job(spark):
    """Dedup compares all documents and derived ids rank all rows: a stream gets one clear
    line (Spark's own error said to call writeStream.start()); removing a static list of user
    ids from a stream is a stream-static anti join, which works."""
    import sparkdedup

    stream = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", 1)
        .load()
        .select(F.col("value").alias("id"), F.col("value").cast("string").alias("text"))
    )
    vectors = stream.select("id", F.array(F.lit(1.0), F.lit(0.0)).alias("emb"))
    for call in (
        lambda: sparkdedup.fuzzy_duplicates(stream, id_col="id"),
        lambda: sparkdedup.exact_duplicates(stream, id_col="id"),
        lambda: sparkdedup.semantic_duplicates(vectors, id_col="id", embedding_col="emb"),
        lambda: assign_ids(stream),
        lambda: remove_duplicates(stream.drop("id"), spark.range(1)),
    ):
        with pytest.raises(SchemaError, match="the input is a streaming DataFrame"):
            call()
    dups = spark.createDataFrame([(1,)], "id bigint")
    assert remove_duplicates(stream, dups, id_col="id").isStreaming
