"""Fuzzy dedup step 3: buckets to edges (ALGORITHMS.md, "Buckets to edges").

Each bucket becomes a star: an edge from its smallest id to every other member (n-1 edges per
bucket, spanning it like Curator's chain), then duplicate edges across bands are removed.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkdedup.fuzzy.lsh import bucket_anchors, not_anchor
from sparkdedup.ids import require_columns


def bucket_edges(buckets: DataFrame) -> DataFrame:
    """Edges linking the members of each bucket.

    Input ``[id, band, bucket]`` (from `lsh_buckets`); output ``[src, dst]`` with
    ``src < dst``, each edge once: ``src`` is the smallest id of a bucket holding ``dst``.
    """
    require_columns(buckets, {"id": "id", "band": "band", "bucket": "bucket"})
    return (
        bucket_anchors(buckets.select("id", "band", "bucket"))
        .where(not_anchor())
        .select("src", F.col("id").alias("dst"))
        .distinct()
    )
