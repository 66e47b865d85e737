"""The verified fuzzy mode (``verify="jaccard"``): every candidate edge from LSH is checked
with the exact Jaccard similarity of its two documents' shingle sets, and only edges at or
above the threshold enter connected components.

Which pairs are checked: LSH links each member of a bucket to the bucket's anchor (a row of
its text with the smallest hash: `sparkdedup.fuzzy.lsh.band_group_edges`), so a document is
compared with at most one anchor per band (20 by default), never with every member of a big
bucket; a pair of members whose anchor is unlike both is found only if another band links
them. To keep recall, the verified mode splits the signature into more,
shorter bands (`sparkdedup.tuning.verify_bands`: the fewest bands that find a pair at the
threshold with probability 0.995 or more), so more candidates are generated and the check
removes the false ones.

Cost: one more read of the corpus (the texts of the documents in candidate edges, normalised
as for MinHash), one shuffle of those texts with the edges by one end and one by the other, and
the Jaccard kernel (`sparkdedup.kernels.jaccard`) on the executors. Memory per task: the Arrow
batch of edges with both texts, plus 24 bytes per byte of the longest text in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkdedup.kernels.jaccard import jaccard_arrow

JACCARD = "jaccard"
_A, _B = "_dedup_text_a", "_dedup_text_b"


def edge_jaccard(
    edges: DataFrame,
    texts: DataFrame,
    width: int,
    partitions: int | None = None,
    keep: Callable[[DataFrame], DataFrame] | None = None,
) -> DataFrame:
    """``[src, dst, jaccard]``: the exact Jaccard of every edge's two texts.

    Parameters
    ----------
    edges : ``[src, dst]``, ids of `texts`.
    texts : ``[id, text]``, one row per id (the documents' texts as hashed: normalised); with
        ``t1, t2`` (the texts' hashes) as well, the output carries them for both ends
        (``src_t1, src_t2, dst_t1, dst_t2``).
    width : shingle width in code points.
    partitions : partitions of the shuffles (Spark's default when None).
    keep : materialises the texts of the edges' documents (both joins read them; without it
        the texts are read twice).
    """
    nodes = (
        edges.select(F.col("src").alias("id"))
        .unionByName(edges.select(F.col("dst").alias("id")))
        .distinct()
    )
    needed = texts.join(nodes, on="id", how="left_semi")
    if keep is not None:
        needed = keep(needed)
    hashes = ["t1", "t2"] if {"t1", "t2"}.issubset(texts.columns) else []
    ends = {end: [F.col(h).alias(f"{end}_{h}") for h in hashes] for end in ("src", "dst")}
    by_dst = needed.select(F.col("id").alias("dst"), F.col("text").alias(_B), *ends["dst"])
    by_src = needed.select(F.col("id").alias("src"), F.col("text").alias(_A), *ends["src"])
    with_b = edges.join(by_dst, on="dst")
    with_b = with_b.repartition(partitions, "src") if partitions else with_b.repartition("src")
    carried = [f"{end}_{h}" for end in ("src", "dst") for h in hashes]
    pairs = with_b.join(by_src.hint("shuffle_hash"), on="src").select(
        "src", "dst", _A, _B, *carried
    )
    types = pairs.schema
    schema = ", ".join(
        [f"src {types['src'].dataType.simpleString()}, dst {types['dst'].dataType.simpleString()}"]
        + [f"{JACCARD} double"]
        + [f"{name} bigint" for name in carried]
    )
    w = int(width)

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            # Each anchor's members together (a sort of the batch, not of the partition's
            # rows in the JVM): its shingle set is built once for them.
            src = batch.column("src").to_numpy(zero_copy_only=False)
            order = np.argsort(src, kind="stable")
            batch = batch.take(pa.array(order))
            src = src[order]
            repeat = np.zeros(len(src), np.bool_)
            repeat[1:] = src[1:] == src[:-1]
            values = jaccard_arrow(batch.column(_A), batch.column(_B), w, repeat)
            yield pa.RecordBatch.from_arrays(
                [batch.column("src"), batch.column("dst"), pa.array(values)]
                + [batch.column(name) for name in carried],
                names=["src", "dst", JACCARD, *carried],
            )

    return pairs.mapInArrow(score, schema)
