"""Group reports of the fuzzy and exact workflows (``OUT/groups/`` and stats.json).

A group is a kept document and the documents removed in its favour (``duplicates`` rows share
their ``kept_id``). Both are computed from the duplicates list alone: a narrow table, shuffled
by group (and its group sizes too); nothing grows on the driver but the size histogram, whose
buckets are powers of two (at most 64 rows).
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
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


def size_histogram(groups: DataFrame) -> dict[str, Any]:
    """``{"groups", "largest", "sizes": {"2": n, "3-4": n, "5-8": n, ...}}`` of a
    `group_members` table (its kept rows, one a group)."""
    kept = groups.where(F.col("kept"))
    upper = F.pow(F.lit(2.0), F.ceil(F.log2(F.col("size")))).cast("long")
    rows = kept.groupBy(upper.alias("upper")).agg(
        F.count(F.lit(1)).alias("groups"), F.max("size").alias("largest")
    )
    buckets = sorted((int(r["upper"]), int(r["groups"]), int(r["largest"])) for r in rows.collect())
    sizes = {}
    for top, count, _ in buckets:
        low = top // 2 + 1
        sizes[str(top) if low >= top else f"{low}-{top}"] = count
    return {
        "groups": sum(c for _, c, _ in buckets),
        "largest": max((m for _, _, m in buckets), default=0),
        "sizes": sizes,
    }
