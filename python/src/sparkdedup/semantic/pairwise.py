"""SemDeDup steps 3-4: rank the documents of each cluster and find, for each, its most similar
higher-ranked document (ALGORITHMS.md, "Semantic deduplication", steps 3 and 4).

One `applyInPandas` group per cluster; the math is `sparkdedup.kernels.pairwise`
(NumPy on CPU, CuPy on GPU), whose memory is O(cluster size x batch size).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.config import SIM_METRICS, WHICH_TO_KEEP, check_choice, check_int
from sparkdedup.errors import ConfigError, SchemaError
from sparkdedup.ids import require_columns
from sparkdedup.kernels.pairwise import pairwise_max_similarity

_RANDOM_KEY = "_dedup_random_rank"
_DISTANCE_COLS = {"cosine": "cosine_dist_to_cent", "l2": "l2_dist_to_cent"}


def ranking(
    which_to_keep: str = "hard",
    sim_metric: str = "cosine",
    sort_cols: Sequence[str] | None = None,
) -> tuple[list[str], list[bool]]:
    """Sort keys and directions that put a cluster in rank order (rank 0 is always kept).

    "hard": (distance, id) both descending, the document farthest from its centroid first;
    "easy": both ascending; "random": a seeded hash of the id, then id, ascending; custom
    `sort_cols` (overriding `which_to_keep`): each descending, nulls last, then id descending.
    `sim_metric` picks the distance: "cosine" (``cosine_dist_to_cent``) or "l2"
    (``l2_dist_to_cent``).
    """
    check_choice("which_to_keep", which_to_keep, WHICH_TO_KEEP)
    check_choice("sim_metric", sim_metric, SIM_METRICS)
    if sort_cols:
        keys = [*sort_cols, "id"]
        return keys, [False] * len(keys)
    if which_to_keep == "random":
        return [_RANDOM_KEY, "id"], [True, True]
    ascending = which_to_keep == "easy"
    return [_DISTANCE_COLS[sim_metric], "id"], [ascending, ascending]


def rank_order(frame: pd.DataFrame, keys: list[str], ascending: list[bool]) -> np.ndarray:
    """Positions of `frame`'s rows in rank order (nulls of a sort column rank last)."""
    ordered = (
        frame[keys]
        .reset_index(drop=True)
        .sort_values(keys, ascending=ascending, na_position="last", kind="mergesort")
    )
    return ordered.index.to_numpy()


def rank_ordered_matrix(embeddings: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``(n, d)`` float32 matrix of a pandas column of embedding arrays, rows in `order`.

    One copy of the vectors (``4 * n * d`` bytes); unlike ``np.stack`` it makes no 2-d view of
    every row first (about 100 bytes a row).
    """
    rows = embeddings[order]
    if len(rows) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    flat = np.concatenate(rows)
    return flat.astype(np.float32, copy=False).reshape(len(rows), len(rows[0]))


def _cluster_fn(
    keys: list[str], ascending: list[bool], batch_size: int, device: str
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def cluster_pairwise(cluster: pd.DataFrame) -> pd.DataFrame:
        order = rank_order(cluster, keys, ascending)
        ids = cluster["id"].to_numpy()[order]
        vectors = rank_ordered_matrix(cluster["embedding"].to_numpy(), order)
        if device == "gpu":
            import cupy  # noqa: PLC0415 - executor side only

            scores, index = pairwise_max_similarity(cupy.asarray(vectors), batch_size, xp=cupy)
            scores, index = cupy.asnumpy(scores), cupy.asnumpy(index)
        else:
            scores, index = pairwise_max_similarity(vectors, batch_size, xp=np)
        return pd.DataFrame({"id": ids, "max_id": ids[index], "cosine_sim_score": scores})

    return cluster_pairwise


def pairwise_similarity(
    assignments: DataFrame,
    *,
    which_to_keep: str = "hard",
    sim_metric: str = "cosine",
    sort_cols: Sequence[str] | None = None,
    seed: int = 42,
    batch_size: int = 1024,
    device: str = "cpu",
) -> DataFrame:
    """Most similar higher-ranked document of every document, cluster by cluster.

    Parameters
    ----------
    assignments : ``[id, centroid, l2_dist_to_cent, cosine_dist_to_cent, embedding]`` from
        `kmeans_clusters` (unit-norm embeddings), plus the `sort_cols` when given.
    which_to_keep, sim_metric, sort_cols : the ranking inside a cluster, see `ranking`.
    seed : seed of the "random" ranking: documents are ordered by ``xxhash64(seed, id)``, so the
        order depends only on the seed and the ids, never on partitioning.
    batch_size : columns per block of the similarity matrix; never changes the result.
    device : "cpu" (NumPy) or "gpu" (CuPy on the executors).

    Returns
    -------
    DataFrame
        ``[id, max_id, cosine_sim_score float]``, one row per document: ``cosine_sim_score`` is
        ``max(0, max e_i . e_j)`` over the higher-ranked documents i of its cluster and
        ``max_id`` the id of that document (among equal scores the highest-ranked one), or the
        document's own id when the score is 0 (the first of each cluster, singletons).
        Documents of different clusters are never compared.

    Notes
    -----
    A whole cluster of n documents of dimension d is held by one Python worker, which needs
    about ``8 * n * d + 4 * n * batch_size`` bytes: the group's Arrow input and its rank-ordered
    float32 copy (``4 * n * d`` each), one float32 block of similarities, plus about 100 bytes
    a document (ids, distances, pandas row objects) and fixed float64 temporaries of
    ``8 * (batch_size + 2 * d) * 1024`` bytes (see `pairwise_max_similarity`).
    """
    check_int("pairwise_batch_size", batch_size, 1)
    check_int("seed", seed, 0, 2**32 - 1)
    if device not in ("cpu", "gpu"):
        raise ConfigError(f"device must be 'cpu' or 'gpu' (resolve 'auto' first), got {device!r}")
    keys, ascending = ranking(which_to_keep, sim_metric, sort_cols)
    require_columns(
        assignments,
        {"id": "id", "centroid": "centroid", "embedding": "embedding"}
        | {f"sort column {c}": c for c in keys if c != _RANDOM_KEY},
    )
    for name in sort_cols or ():
        dtype = assignments.schema[name].dataType
        if isinstance(dtype, (T.ArrayType, T.MapType, T.StructType, T.BinaryType)):
            raise SchemaError(
                f"sort column {name!r} must be a number, string, boolean, date or timestamp, "
                f"got {dtype.simpleString()}"
            )
    frame = assignments
    if _RANDOM_KEY in keys:
        frame = frame.withColumn(_RANDOM_KEY, F.xxhash64(F.lit(seed).cast("bigint"), F.col("id")))
    id_type = assignments.schema["id"].dataType
    schema = T.StructType(
        [
            T.StructField("id", id_type),
            T.StructField("max_id", id_type),
            T.StructField("cosine_sim_score", T.FloatType()),
        ]
    )
    columns = list(dict.fromkeys(["id", "centroid", "embedding", *keys]))
    return (
        frame.select(*columns)
        .groupBy("centroid")
        .applyInPandas(_cluster_fn(keys, ascending, batch_size, device), schema)
    )
