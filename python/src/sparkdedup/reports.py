"""Group reports of the fuzzy and exact workflows (``OUT/groups/`` and stats.json).

A group is a kept document and the documents removed in its favour (``duplicates`` rows share
their ``kept_id``). Both are computed from the duplicates list alone: a narrow table, shuffled
by group; the size histogram, one count a power of two, rides on the job that writes the groups
(observed metrics): nothing grows on the driver.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, Observation
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


#: Group sizes are counted in buckets of powers of two: (2^(k-1), 2^k] for k from 1 to this.
_BUCKETS = 62
_BUCKET_COL = "_dedup_size_bucket"


def _bucket(size: Column) -> Column:
    """k with 2^(k-1) < size <= 2^k, exactly: a float log2 alone is off by one at some powers
    of two (log2 of 2^29 comes out a little above 29, which put groups of 2^29 members one
    bucket up)."""
    k = F.ceil(F.log2(size)).cast("int")
    power = lambda e: F.pow(F.lit(2.0), e)  # noqa: E731 - exact: a power of two is a double
    return F.when(power(k - 1) >= size, k - 1).when(power(k) < size, k + 1).otherwise(k)


def observe_sizes(groups: DataFrame, observation: Observation) -> DataFrame:
    """`groups` (a `group_members` table) with its size histogram as metrics of `observation`
    (`size_histogram` reads them): they ride on the job that writes it, none of their own."""
    bucket = F.col(_BUCKET_COL)
    counts = [F.count(F.when(bucket == k, 1)).alias(f"size_{k}") for k in range(1, _BUCKETS + 1)]
    return (
        groups.withColumn(_BUCKET_COL, F.when(F.col("kept"), _bucket(F.col("size"))))
        .observe(observation, *counts, F.max(F.when(F.col("kept"), F.col("size"))).alias("largest"))
        .drop(_BUCKET_COL)
    )


def size_histogram(observed: dict[str, Any]) -> dict[str, Any]:
    """``{"groups", "largest", "sizes": {"2": n, "3-4": n, "5-8": n, ...}}`` from the metrics
    of `observe_sizes` (one count a bucket: the kept rows, one a group)."""
    sizes = {}
    for k in range(1, _BUCKETS + 1):
        count = int(observed.get(f"size_{k}") or 0)
        if count:
            top = 1 << k
            low = top // 2 + 1
            sizes[str(top) if low >= top else f"{low}-{top}"] = count
    return {
        "groups": sum(sizes.values()),
        "largest": int(observed.get("largest") or 0),
        "sizes": sizes,
    }
