"""Fuzzy dedup step 5: ids to remove (ALGORITHMS.md, "Buckets to edges, components, duplicates").

Every group keeps one document, chosen deterministically: the smallest id, or the best value of
a priority column with ties broken by the smallest id (a missing value, null or NaN, ranks
last: `rank_value`). All other members are duplicates. A group's keeper comes from aggregations
joined back to the members (shuffled hash joins), so a group of a million documents is never
sorted or held whole by one task.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.columns import binary_strings, named
from sparkdedup.errors import SchemaError
from sparkdedup.ids import id_column, require_columns

#: With an index, the duplicates' column that says a row is removed for an indexed document.
BY_INDEX = "_dedup_by_index"


def identify_duplicates(
    components: DataFrame,
    *,
    documents: DataFrame | None = None,
    id_col: str = "id",
    priority_col: str | None = None,
    priority_ascending: bool = False,
) -> DataFrame:
    """The documents to remove, each with the id of the document kept in its group.

    Parameters
    ----------
    components : ``[id, component]`` from `connected_components` (component = smallest id).
    documents : the documents, needed only with `priority_col`; must hold `id_col` and
        `priority_col`.
    id_col : id column of `documents`.
    priority_col : keep the document with the largest value (smallest with
        `priority_ascending`); nulls and NaN rank last; ties go to the smallest id.

    Returns
    -------
    DataFrame
        ``[id, kept_id]``: one row per document to remove.
    """
    require_columns(components, {"id": "id", "component": "component"})
    if priority_col is None:
        return components.filter(F.col("id") != F.col("component")).select(
            "id", F.col("component").alias("kept_id")
        )
    if documents is None:
        raise SchemaError("priority_col needs the documents DataFrame holding it")
    require_columns(documents, {"id": id_col, "priority": priority_col})
    check_priority_type(documents.schema[priority_col].dataType, priority_col)
    members = components.join(
        documents.select(
            id_column(documents, id_col).alias("id"),
            named(priority_col).alias("_dedup_priority"),
        ),
        on="id",
        how="inner",
    )
    return keep_one_per_group(
        members, group="component", priority="_dedup_priority", ascending=priority_ascending
    )


#: The types a keep rule ranks by (a priority or sort column): Spark and pandas order them
#: alike (`rank_value`, and the semantic whole-cluster conversions).
RANKABLE_TYPES: tuple[type, ...] = (
    T.NumericType,
    T.StringType,
    T.BooleanType,
    T.DateType,
    T.TimestampType,
    T.TimestampNTZType,
)


def check_rank_type(dtype: T.DataType, what: str) -> None:
    """SchemaError naming `what` (``"priority column 'q'"``) unless `dtype` is one the keep
    rules rank by: a number, string, boolean, date or timestamp. An interval, a variant, a
    binary or nested value, or a column of nulls only (void) is refused before any job."""
    if not isinstance(dtype, RANKABLE_TYPES):
        raise SchemaError(
            f"{what} must be a number, string, boolean, date or timestamp, "
            f"got {dtype.simpleString()}"
        )


def check_priority_type(dtype: T.DataType, priority_col: str) -> None:
    check_rank_type(dtype, f"priority column {priority_col!r}")


def rank_value(df: DataFrame, name: str) -> Column:
    """Column `name` of `df` as the keep rules rank it: a floating-point NaN becomes null, a
    string in a non-binary collation is ranked in UTF8_BINARY (by code point).

    Spark orders NaN above every number, so a NaN score (a scorer that failed) would be the
    best of its group by default; pandas ranks it with the nulls. As null it ranks last in
    either direction, like any missing value. A collation such as Spark 4's UTF8_LCASE would
    tie "f" and "F" in Spark, where pandas (which knows no collation) tells them apart. So
    every path (Spark aggregates and windows, pandas sorts) orders the rows alike."""
    column = named(name)
    dtype = df.schema[name].dataType
    if isinstance(dtype, (T.FloatType, T.DoubleType)):
        return F.when(~F.isnan(column), column)
    return binary_strings(column, dtype)


def keep_one_per_group(
    members: DataFrame,
    *,
    group: str | list[str],
    priority: str | None = None,
    ascending: bool = False,
    order: str | None = None,
    partitions: int | None = None,
    carry: Sequence[str] = (),
) -> DataFrame:
    """``[id, kept_id]`` for every member of `members` (``[id, <group>, <priority>]``, `group`
    one column or several) that is not its group's keeper: the best `priority` (largest, or
    smallest with `ascending`; nulls and NaN rank last, `rank_value`), ties and no priority
    going to the smallest id, or to the smallest `order` column when given (a struct that ends
    with the id). With `order`, the rows also carry the member's and the keeper's `order`
    values, as ``_dedup_order`` and ``_dedup_kept_order``; with `carry` (columns of
    `members`), the member's and the keeper's values of those, as ``c`` and ``kept_c``.

    The members are shuffled once, by group; the aggregations and hash joins all read it.
    """
    by = [group] if isinstance(group, str) else list(group)
    if priority is not None:
        members = members.withColumn(priority, rank_value(members, priority))
    shuffled = members.repartition(partitions, *by) if partitions else members.repartition(*by)
    first = F.min("id") if order is None else F.min(order)
    # The keeper's own values: those of the row `first` picks (ids and orders are unique).
    kept_values = [
        F.min_by(c, F.col("id") if order is None else F.col(order)).alias(f"kept_{c}")
        for c in carry
    ]
    if priority is None:
        keepers = shuffled.groupBy(*by).agg(first.alias("kept_id"), *kept_values)
    else:
        best = shuffled.groupBy(*by).agg(
            (F.min(priority) if ascending else F.max(priority)).alias("_dedup_best")
        )
        # Nulls rank last: max/min skip them, and a group of nulls only has a null best.
        top: Column = F.col(priority).eqNullSafe(F.col("_dedup_best"))
        keepers = (
            shuffled.join(best.hint("shuffle_hash"), on=by)
            .where(top)
            .groupBy(*by)
            .agg(first.alias("kept_id"), *kept_values)
        )
    carried = [F.col(c) for c in carry] + [F.col(f"kept_{c}") for c in carry]
    columns = [F.col("id"), F.col("kept_id"), *carried]
    if order is not None:
        kept = F.col("kept_id")
        columns = [
            F.col("id"),
            kept["id"].alias("kept_id"),
            F.col(order).alias("_dedup_order"),
            kept.alias("_dedup_kept_order"),
            *carried,
        ]
    # Null-safe, so that no null filter is inferred for one side only (see `not_anchor`).
    return (
        shuffled.join(keepers.hint("shuffle_hash"), on=by)
        .select(*columns)
        .where(~F.col("id").eqNullSafe(F.col("kept_id")))
    )


def group_duplicates(
    table: DataFrame,
    components: DataFrame,
    *,
    priority: bool = False,
    priority_ascending: bool = False,
    order: str | None = None,
    partitions: int | None = None,
    indexed: DataFrame | None = None,
    with_texts: bool = False,
) -> DataFrame:
    """The documents to remove, from the scan table and the components of its band-key rows.

    Parameters
    ----------
    table : ``[id, t1, t2, (priority), b0, ...]`` (`fuzzy.scan.scan_documents` with ids): every
        document, its text hash, and band buckets on the rows that went through LSH.
    components : ``[id, component]`` of those rows (`connected_components`).
    priority : rank by the table's ``priority`` column (largest first, or smallest with
        `priority_ascending`); else the smallest id is kept.
    order : a column of `table` ordering the documents for the keep rule instead of the id
        (a struct ending with the id field ``id``); None orders by id.
    partitions : partitions of its two shuffles (by text, then by group); Spark's default
        when None.
    indexed : ``[id]`` of indexed documents among the components' nodes (a run against an
        index, `sparkdedup.fuzzy.index`): a group whose component holds one loses all its
        documents of `table`, each with the smallest indexed id of the component as
        ``kept_id``; the other groups keep one document as usual. The rows then carry
        `BY_INDEX`, true on those removed for an indexed document.
    with_texts : the rows also carry the removed document's text hash ``t1, t2`` and its keeper's,
        ``kept_t1, kept_t2`` (not with `indexed`).

    Returns
    -------
    DataFrame
        ``[id, kept_id]``: every document of a group but its keeper. A group is a component
        of the band-key rows together with all exact copies of their texts, or the copies of a
        text that met no other text. Documents without a text are in no group.
    """
    extra = (["priority"] if priority else []) + ([order] if order else [])
    docs = table.where(F.col("t1").isNotNull()).select("id", "t1", "t2", *extra)
    docs = docs.repartition(partitions, "t1", "t2") if partitions else docs.repartition("t1", "t2")
    # All band-key rows of one text share every bucket, so they share a component.
    text_component = (
        table.where(F.col("b0").isNotNull())
        .select("id", "t1", "t2")
        .join(components.hint("shuffle_hash"), on="id")
        .groupBy("t1", "t2")
        .agg(F.min("component").alias("_dedup_component"))
    )
    texts = (
        docs.groupBy("t1", "t2")
        .agg(F.min("id").alias("_dedup_first"), F.count(F.lit(1)).alias("_dedup_copies"))
        .join(text_component.hint("shuffle_hash"), on=["t1", "t2"], how="left")
        .where(F.col("_dedup_component").isNotNull() | (F.col("_dedup_copies") > 1))
        .select(
            "t1",
            "t2",
            # Labels: a component's smallest band-key row, else the text's smallest id; both
            # are ids of distinct documents, so two groups never share a label.
            F.coalesce("_dedup_component", "_dedup_first").alias("_dedup_group"),
        )
    )
    members = docs.join(texts.hint("shuffle_hash"), on=["t1", "t2"])
    removed_by_index = None
    if indexed is not None:
        # Components holding an indexed document: their label and smallest indexed id.
        hit = (
            components.join(indexed, on="id", how="left_semi")
            .groupBy(F.col("component").alias("_dedup_group"))
            .agg(F.min("id").alias("kept_id"))
        )
        removed_by_index = members.join(hit.hint("shuffle_hash"), on="_dedup_group").select(
            "id", "kept_id"
        )
        members = members.join(hit.hint("shuffle_hash"), on="_dedup_group", how="left_anti")
    assert not (with_texts and indexed is not None), "no text hashes are carried for an index"
    removed = keep_one_per_group(
        members,
        group="_dedup_group",
        priority="priority" if priority else None,
        ascending=priority_ascending,
        order=order,
        partitions=partitions,
        carry=("t1", "t2") if with_texts else (),
    )
    if removed_by_index is None:
        return removed
    return removed_by_index.withColumn(BY_INDEX, F.lit(True)).unionByName(
        removed.withColumn(BY_INDEX, F.lit(False))
    )
