"""Group reports of the fuzzy and exact workflows (``OUT/groups/`` and stats.json).

A group is a kept document and the documents removed in its favour (``duplicates`` rows share
their ``kept_id``). Both are computed from the duplicates list alone: a narrow table, shuffled
by group (and its group sizes too); nothing grows on the driver but the size histogram, whose
buckets are powers of two (at most 62 rows).
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def group_members(duplicates: DataFrame) -> DataFrame:
    """``[group, id, kept, size]``: every member of every group (the kept document with
    ``kept`` true), ``group`` the kept document's id and ``size`` the group's member count."""
    sizes = duplicates.groupBy(F.col("kept_id").alias("group")).agg(
        (F.count(F.lit(1)) + 1).alias("size")
    )
    kept = sizes.select("group", F.col("group").alias("id"), F.lit(True).alias("kept"), "size")
    removed = duplicates.select(
        F.col("kept_id").alias("group"), F.col("id"), F.lit(False).alias("kept")
    ).join(sizes.hint("merge"), on="group")
    # A sort-merge join: the sizes grow with the corpus (one row a group), and Spark's own choice
    # would broadcast them from the driver on the size of the compressed duplicates files.
    return removed.unionByName(kept)


def _bucket(size: Column) -> Column:
    """k with 2^(k-1) < size <= 2^k, exactly: a float log2 alone is off by one at some powers
    of two (log2 of 2^29 comes out a little above 29, which put groups of 2^29 members one
    bucket up)."""
    k = F.ceil(F.log2(size)).cast("int")
    power = lambda e: F.pow(F.lit(2.0), e)  # noqa: E731 - exact: a power of two is a double
    return F.when(power(k - 1) >= size, k - 1).when(power(k) < size, k + 1).otherwise(k)


def size_histogram(groups: DataFrame) -> dict[str, Any]:
    """``{"groups", "largest", "sizes": {"2": n, "3-4": n, "5-8": n, ...}}`` of a
    `group_members` table (its kept rows, one a group): one aggregation, at most 62 rows."""
    kept = groups.where(F.col("kept"))
    rows = kept.groupBy(_bucket(F.col("size")).alias("k")).agg(
        F.count(F.lit(1)).alias("groups"), F.max("size").alias("largest")
    )
    buckets = sorted((int(r["k"]), int(r["groups"]), int(r["largest"])) for r in rows.collect())
    sizes = {}
    for k, count, _ in buckets:
        top = 1 << k
        low = top // 2 + 1
        sizes[str(top) if low >= top else f"{low}-{top}"] = count
    return {
        "groups": sum(c for _, c, _ in buckets),
        "largest": max((m for _, _, m in buckets), default=0),
        "sizes": sizes,
    }
