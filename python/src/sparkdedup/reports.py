"""Group reports of the fuzzy and exact workflows (``OUT/groups/`` and stats.json).

A group is a kept document and the documents removed in its favour (``duplicates`` rows share
their ``kept_id``). Both are computed from the duplicates list alone: a narrow table, shuffled
by group (and its group sizes too). The driver receives the size histogram only: its buckets
are powers of two, 65 numbers whatever the corpus, observed on the write of the groups.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from sparkdedup.fuzzy.identify import BY_INDEX


def group_members(
    duplicates: DataFrame, *, broadcast: bool = False, observe: Observation | None = None
) -> DataFrame:
    """``[group, id, kept, size]``: every member of every group (the kept document with
    ``kept`` true), ``group`` the kept document's id and ``size`` the group's member count.

    Duplicates found against an index (`duplicates` with `BY_INDEX`, true on the documents
    removed for an indexed one) give ``[group, id, kept, size, indexed]``: a group is the
    input's members of one group, with its kept document, which is indexed (``indexed`` true,
    not in the input) when the group holds an indexed document; the group's other indexed
    documents are not listed, and ``size`` counts the rows listed. The count of groups kept
    by an indexed document is observed too (``indexed_groups``).

    The sizes (one row a group, from an aggregation that combines each task's rows first) join
    the removed rows by a broadcast when `broadcast` (the caller knows they are few: there
    are at most as many groups as removed rows), so the removed rows are never shuffled and a
    group of any size is spread over the tasks that read it; else by a sort-merge join,
    whose tasks' memory follows the partitions, not the groups. Either way chosen here:
    Spark's own choice would broadcast the sizes from the driver on the size of the
    compressed duplicates files.

    `observe`: filled with the size histogram's metrics (`size_metrics`, read by `histogram`)
    when the result is written, observed on the kept rows, one a group: no job of their own,
    and nothing evaluated on the removed rows."""
    against = BY_INDEX in duplicates.columns
    # Every row of a group kept by an indexed document was removed for it.
    indexed = [F.max(F.col(BY_INDEX)).alias("indexed")] if against else []
    sizes = duplicates.groupBy(F.col("kept_id").alias("group")).agg(
        (F.count(F.lit(1)) + 1).alias("size"), *indexed
    )
    flag = ["indexed"] if against else []
    kept = sizes.select(
        "group", F.col("group").alias("id"), F.lit(True).alias("kept"), "size", *flag
    )
    if observe is not None:
        counted = [F.count(F.when(F.col("indexed"), 1)).alias("indexed_groups")] if against else []
        kept = _with_size_bucket(kept).observe(observe, *size_metrics(), *counted).drop(_K)
    removed = (
        duplicates.select(F.col("kept_id").alias("group"), F.col("id"), F.lit(False).alias("kept"))
        .join(sizes.select("group", "size").hint("broadcast" if broadcast else "merge"), on="group")
        .select("group", "id", "kept", "size", *[F.lit(False).alias(c) for c in flag])
    )
    return removed.unionByName(kept)


def _bucket(size: Column) -> Column:
    """k with 2^(k-1) < size <= 2^k, exactly: a float log2 alone is off by one at some powers
    of two (log2 of 2^29 comes out a little above 29, which put groups of 2^29 members one
    bucket up)."""
    k = F.ceil(F.log2(size)).cast("int")
    power = lambda e: F.pow(F.lit(2.0), e)  # noqa: E731 - exact: a power of two is a double
    return F.when(power(k - 1) >= size, k - 1).when(power(k) < size, k + 1).otherwise(k)


#: Histogram buckets: k for sizes in (2^(k-1), 2^k]; a group has 2 to 2^63 - 1 members.
_BUCKETS = range(1, 64)
_K = "_dedup_size_bucket"


def _with_size_bucket(groups: DataFrame) -> DataFrame:
    """`groups` with the size bucket of its kept rows (`_bucket`, computed once a row)."""
    return groups.withColumn(_K, F.when(F.col("kept"), _bucket(F.col("size"))))


def size_metrics() -> list[Column]:
    """The aggregations behind the size histogram, over `_with_size_bucket` rows: the group
    count, the largest size and a count per bucket (65 numbers whatever the corpus). Observed
    on the write of ``groups/`` (`group_members`), they cost no job of their own."""
    kept = F.col("kept")
    # One SQL expression a bucket, each built in one call: composed column by column, the 63
    # took about 0.7 s of the driver's time on every run (a py4j call per operator).
    buckets = [F.expr(f"count(CASE WHEN `{_K}` = {k} THEN 1 END)").alias(f"k{k}") for k in _BUCKETS]
    return [
        F.count(F.when(kept, 1)).alias("groups"),
        F.max(F.when(kept, F.col("size"))).alias("largest"),
        *buckets,
    ]


def histogram(metrics: dict[str, Any]) -> dict[str, Any]:
    """``{"groups", "largest", "sizes": {"2": n, "3-4": n, "5-8": n, ...}}`` from the values
    of `size_metrics` (empty buckets left out)."""
    sizes = {}
    for k in _BUCKETS:
        count = int(metrics.get(f"k{k}") or 0)
        if count:
            top = 1 << k
            low = top // 2 + 1
            sizes[str(top) if low >= top else f"{low}-{top}"] = count
    return {
        "groups": int(metrics.get("groups") or 0),
        "largest": int(metrics.get("largest") or 0),
        "sizes": sizes,
    }


def size_histogram(groups: DataFrame) -> dict[str, Any]:
    """The size histogram (`histogram`) of a `group_members` table, in one aggregation (the
    CLI observes them on its write of the table instead: `group_members(..., observe=)`)."""
    return histogram(_with_size_bucket(groups).agg(*size_metrics()).first().asDict())
