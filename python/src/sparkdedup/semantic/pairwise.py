"""SemDeDup steps 3-4: rank the documents of each cluster and find, for each, its most similar
higher-ranked document (ALGORITHMS.md, "Semantic deduplication", steps 3 and 4).

One `applyInPandas` group per cluster; the math is `sparkdedup.kernels.pairwise`
(NumPy on CPU, CuPy on GPU), whose memory is O(cluster size x batch size).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.config import SIM_METRICS, WHICH_TO_KEEP, check_choice, check_int, sort_keys
from sparkdedup.device import on_task_gpu
from sparkdedup.errors import ConfigError
from sparkdedup.fuzzy.identify import check_rank_type, rank_value
from sparkdedup.ids import require_columns
from sparkdedup.kernels.pairwise import cross_max_similarity, pairwise_max_similarity
from sparkdedup.semantic.embed import COPY_KEYS
from sparkdedup.sizing import RELATION_ROW_BYTES, broadcast_bytes, parse_bytes

log = logging.getLogger("sparkdedup")

_RANDOM_KEY = "_dedup_random_rank"
_RANK, _ROW_BLOCK, _BLOCKS = "_dedup_rank", "_dedup_block", "_dedup_blocks"
_COL_BLOCK, _CAND_BLOCK, _SIDE = "_dedup_col_block", "_dedup_cand_block", "_dedup_side"
_NULL_KEY, _FILLED_KEY, _SORT_KEY = "_dedup_null_key", "_dedup_filled_key", "_dedup_sort_key"
_BASE = ("id", "centroid", "embedding")
WORKER_BYTES_CONF = "spark.sparkdedup.pairwiseWorkerBytes"
DEFAULT_WORKER_BYTES = 1024**3
_DISTANCE_COLS = {"cosine": "cosine_dist_to_cent", "l2": "l2_dist_to_cent"}
_MOVED = "_dedup_copies_centroid"


def ranking(
    which_to_keep: str = "hard",
    sim_metric: str = "cosine",
    sort_cols: Sequence[str] | None = None,
) -> tuple[list[str], list[bool]]:
    """Sort keys and directions that put a cluster in rank order (rank 0 is always kept).

    "hard": (distance, id) both descending, the document farthest from its centroid first;
    "easy": both ascending; "random": a seeded hash of the id, then id, ascending; custom
    `sort_cols` (overriding `which_to_keep`): each ``"col"``/``"col:desc"`` descending or
    ``"col:asc"`` ascending, nulls and NaN last, then id descending
    (`sparkdedup.config.sort_keys`).
    `sim_metric` picks the distance: "cosine" (``cosine_dist_to_cent``) or "l2"
    (``l2_dist_to_cent``).
    """
    check_choice("which_to_keep", which_to_keep, WHICH_TO_KEEP)
    check_choice("sim_metric", sim_metric, SIM_METRICS)
    if sort_cols:
        parsed = sort_keys(sort_cols)
        return [name for name, _ in parsed] + ["id"], [asc for _, asc in parsed] + [False]
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


def copy_representatives(h1: np.ndarray, h2: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """For each row, the position of the row with the smallest id among the rows with its
    ``(h1, h2)`` (its exact copies, `COPY_KEYS`); a row without copies is its own."""
    order = (
        pd.DataFrame({"h1": h1, "h2": h2, "id": ids})
        .sort_values(["h1", "h2", "id"], kind="mergesort")
        .index.to_numpy()
    )
    a, b = h1[order], h2[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    first = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    representatives = np.empty(len(order), dtype=np.int64)
    representatives[order] = order[first]
    return representatives


def copies_in_one_cluster(frame: DataFrame) -> DataFrame:
    """`frame` with every set of exact copies (rows of one `COPY_KEYS`) in the cluster of its
    smallest id.

    KMeans puts identical vectors in one cluster, but a model's embeddings of exact copies can
    differ by float rounding with the batches they were embedded in (on GPUs, and for the
    models `text_padded_encoder` leaves to ``encode``); copies near the boundary of two clusters
    then land in both, and documents of different clusters are never compared: every copy would
    be kept. Only the centroid moves: both ranking paths give a cluster's copies the distances
    (and, ranked whole, the vector) of its copy of smallest id.

    Cost: one job aggregating the narrow keys (about 32 bytes a row, one shuffle), which
    collects the split texts' table while it fits `sparkdedup.sizing.broadcast_bytes` (as a
    broadcast would) and one row past it. Only when some copies are split does a join follow:
    that table broadcast to the tasks reading the rows, or past the limit a sort merge join
    whose query runs the aggregation again (a shuffle of the rows by text).
    """
    keyed = frame.where(F.col(COPY_KEYS[0]).isNotNull() & F.col(COPY_KEYS[1]).isNotNull())
    split = (
        keyed.groupBy(*COPY_KEYS)
        .agg(
            F.min("centroid").alias("lo"),
            F.max("centroid").alias("hi"),
            F.min_by("centroid", "id").alias(_MOVED),
        )
        .where(F.col("lo") != F.col("hi"))
        .select(*COPY_KEYS, _MOVED)
    )
    # One job: at most one row past what a broadcast holds reaches the driver (three numbers a
    # row, as the broadcast's own table would), which also tells an empty table from a large one.
    spark = frame.sparkSession
    most = broadcast_bytes(spark) // RELATION_ROW_BYTES
    rows = split.limit(most + 1).collect()
    if not rows:
        return frame
    log.info(
        "sparkdedup pairwise: %s texts have exact copies in several clusters (their embeddings "
        "differ by rounding); each is compared in the cluster of its smallest id",
        len(rows) if len(rows) <= most else f"over {most}",
    )
    if len(rows) <= most:
        table = F.broadcast(spark.createDataFrame(rows, split.schema))
    else:
        table = split.hint("merge")
    joined = frame.join(table, on=list(COPY_KEYS), how="left")
    return joined.select(
        *[
            F.coalesce(F.col(_MOVED), F.col(c)).alias(c) if c == "centroid" else F.col(c)
            for c in frame.columns
        ]
    )


def _cluster_fn(
    keys: list[str],
    ascending: list[bool],
    batch_size: int,
    device: str,
    copies: list[str] | None = None,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The pandas function of a whole cluster. With `copies` (the distance keys among `keys`),
    the cluster carries `COPY_KEYS` and each set of exact copies is ranked and compared with
    the distances and the vector of its smallest id."""

    def cluster_pairwise(cluster: pd.DataFrame) -> pd.DataFrame:
        embeddings = cluster["embedding"].to_numpy()
        if copies is not None:
            first = copy_representatives(
                cluster[COPY_KEYS[0]].to_numpy(),
                cluster[COPY_KEYS[1]].to_numpy(),
                cluster["id"].to_numpy(),
            )
            embeddings = embeddings[first]
            cluster = cluster.assign(**{k: cluster[k].to_numpy()[first] for k in copies})
        order = rank_order(cluster, keys, ascending)
        ids = cluster["id"].to_numpy()[order]
        vectors = rank_ordered_matrix(embeddings, order)
        if device == "gpu":
            with on_task_gpu() as cupy:
                scores, index = pairwise_max_similarity(cupy.asarray(vectors), batch_size, xp=cupy)
                scores, index = cupy.asnumpy(scores), cupy.asnumpy(index)
        else:
            scores, index = pairwise_max_similarity(vectors, batch_size, xp=np)
        centroid = cluster["centroid"].to_numpy()[:1].repeat(len(ids))
        return pd.DataFrame(
            {"id": ids, "max_id": ids[index], "cosine_sim_score": scores, "centroid": centroid}
        )

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
    max_cluster_size: int = 0,
) -> DataFrame:
    """Most similar higher-ranked document of every document, cluster by cluster.

    Parameters
    ----------
    assignments : ``[id, centroid, l2_dist_to_cent, cosine_dist_to_cent, embedding]`` from
        `kmeans_clusters` (unit-norm embeddings), plus the `sort_cols` when given, and the
        `COPY_KEYS` when they are there (`document_embeddings`: a hash of the text). A model's
        embeddings of exact copies differ by float rounding with the batches they were
        embedded in (about 1e-7), so which copy a distance ranking keeps would depend on the
        partitioning: with the keys, the copies of a cluster are ranked with the distances of
        the one of smallest id (the tie is then decided by id, as for identical vectors) and,
        in a cluster compared whole, compared with its vector. Copies that KMeans put in
        different clusters (vectors on either side of a boundary) are first moved to the
        cluster of the one of smallest id (`copies_in_one_cluster`), so they are compared.
    which_to_keep, sim_metric, sort_cols : the ranking inside a cluster, see `ranking`.
    seed : seed of the "random" ranking: documents are ordered by ``xxhash64(seed, id)``, so the
        order depends only on the seed and the ids, never on partitioning.
    batch_size : columns per block of the similarity matrix; changes scores by float32
        rounding at most.
    device : "cpu" (NumPy) or "gpu" (CuPy on the executors).
    max_cluster_size : the most documents one task compares at once. A larger cluster is ranked
        (a window over its narrow keys), cut into blocks of this many rows in rank order, and
        each block compared in its own task with itself and with each earlier block; a
        document's best match is then the largest of its blocks' (the earliest-ranked on
        ties), as in one piece, up to float32 rounding. 0 (the default) derives it from
        ``spark.sparkdedup.pairwiseWorkerBytes`` (default 1g): `auto_max_cluster_size`.

    Returns
    -------
    DataFrame
        ``[id, max_id, cosine_sim_score float, centroid]``, one row per document:
        ``cosine_sim_score`` is ``max(0, max e_i . e_j)`` (float32 products) over the
        higher-ranked documents i of its cluster ``centroid`` and ``max_id`` the id of that
        document (among equal scores the highest-ranked one), or the document's own id when
        the score is 0 (the first of each cluster, singletons). Documents of different clusters
        are never compared.

    Notes
    -----
    A whole cluster of n documents of dimension d is held by one Python worker, which needs
    about ``8 * n * d + 4 * n * batch_size`` bytes: the group's Arrow input and its rank-ordered
    float32 copy (``4 * n * d`` each), one float32 block of similarities, plus about 100 bytes
    a document (ids, distances, pandas row objects); the products are float32
    (see `pairwise_max_similarity`).
    """
    check_int("pairwise_batch_size", batch_size, 1)
    check_int("max_cluster_size", max_cluster_size, 0)
    check_int("seed", seed, 0, 2**32 - 1)
    if device not in ("cpu", "gpu"):
        raise ConfigError(f"device must be 'cpu' or 'gpu' (resolve 'auto' first), got {device!r}")
    keys, ascending = ranking(which_to_keep, sim_metric, sort_cols)
    require_columns(
        assignments,
        {"id": "id", "centroid": "centroid", "embedding": "embedding"}
        | {f"sort column {c}": c for c in keys if c != _RANDOM_KEY},
    )
    for name, _ in sort_keys(sort_cols):
        check_rank_type(assignments.schema[name].dataType, f"sort column {name!r}")
    frame = assignments
    if _RANDOM_KEY in keys:
        frame = frame.withColumn(_RANDOM_KEY, F.xxhash64(F.lit(seed).cast("bigint"), F.col("id")))
    id_type = assignments.schema["id"].dataType
    schema = T.StructType(
        [
            T.StructField("id", id_type),
            T.StructField("max_id", id_type),
            T.StructField("cosine_sim_score", T.FloatType()),
            T.StructField("centroid", assignments.schema["centroid"].dataType),
        ]
    )
    # The sort columns go on under names of sparkdedup's own (a user's "meta.score" would be a
    # struct field to applyInPandas). A NaN sort value ranks as a null (last) on both paths
    # below: Spark's window orders NaN above every number, pandas with the nulls. A string
    # ranks by its code points on both, whatever its collation (pandas knows none).
    user_keys = sort_keys(sort_cols)
    own = [f"{_SORT_KEY}{i}" for i in range(len(user_keys))]
    if user_keys:
        keys = own + keys[len(user_keys) :]
    ranked = set(own)
    has_copies = all(c in assignments.columns for c in COPY_KEYS)
    distances = [k for k in keys if k in _DISTANCE_COLS.values()]
    frame = frame.select(
        *dict.fromkeys([*_BASE, *[k for k in keys if k not in ranked]]),
        *(COPY_KEYS if has_copies else ()),
        *[
            rank_value(frame, name).alias(key)
            for (name, _), key in zip(user_keys, own, strict=True)
        ],
    )
    # The default block size reads one embedding's length: before the copies' join.
    limit = max_cluster_size or auto_max_cluster_size(frame, batch_size)
    if has_copies:
        frame = copies_in_one_cluster(frame)
    # pandas gets a bigint column with nulls as float64, where values beyond 2**53 tie, and a
    # timestamp as datetime64[ns], which fails beyond 2262 (a 9999-12-31 "open end" sentinel):
    # the whole-cluster ranking gets such a key (a timestamp as microseconds since the epoch)
    # as a null flag and the value with its nulls filled. The split path ranks the column
    # itself, in Spark.
    whole_keys: list[str] = []
    whole_ascending: list[bool] = []
    replaced: list[str] = []
    for i, (key, up) in enumerate(zip(keys, ascending, strict=True)):
        column = _exact_rank_key(key, frame.schema[key].dataType) if key in ranked else None
        if column is not None:
            replaced.append(key)
            flag, value = f"{_NULL_KEY}{i}", f"{_FILLED_KEY}{i}"
            frame = frame.withColumn(flag, column.isNull()).withColumn(
                value, F.coalesce(column, F.lit(0).cast("bigint"))
            )
            whole_keys += [flag, value]
            whole_ascending += [True, up]
        else:
            whole_keys.append(key)
            whole_ascending.append(up)
    whole = _cluster_fn(
        whole_keys, whole_ascending, batch_size, device, distances if has_copies else None
    )
    for_whole = frame.drop(*replaced)  # what goes to pandas: the replaced keys stay in Spark
    if limit is None:  # no rows
        return for_whole.groupBy("centroid").applyInPandas(whole, schema)
    sizes = {r["centroid"]: r["count"] for r in frame.groupBy("centroid").count().collect()}
    large = sorted(c for c, n in sizes.items() if n > limit)
    log.info(
        "sparkdedup pairwise: %d clusters, the largest of %d documents; max_cluster_size=%d",
        len(sizes),
        max(sizes.values(), default=0),
        limit,
    )
    if not large:
        return for_whole.groupBy("centroid").applyInPandas(whole, schema)
    log.warning(
        "sparkdedup pairwise: %d cluster(s) larger than max_cluster_size=%d (the largest holds "
        "%d documents) are split into blocks of rows, compared block pair by block pair",
        len(large),
        limit,
        max(sizes[c] for c in large),
    )
    in_large = F.col("centroid").isin(large)
    small_part = for_whole.where(~in_large).groupBy("centroid").applyInPandas(whole, schema)
    split_part = _split_clusters(
        frame.where(in_large),
        keys,
        ascending,
        limit,
        batch_size,
        device,
        schema,
        distances if has_copies else [],
    )
    return small_part.unionByName(split_part)


def _exact_rank_key(name: str, dtype: T.DataType) -> Column | None:
    """A bigint column that orders as sort key `name` (one of the step's own names, no quoting
    needed) does and reaches pandas exactly, for a bigint or timestamp key; None for the types
    pandas ranks exactly as they are."""
    if isinstance(dtype, T.LongType):
        return F.col(name)
    if isinstance(dtype, T.TimestampType):
        return F.expr(f"unix_micros({name})")
    if isinstance(dtype, T.TimestampNTZType):  # no time zone: microseconds of the wall clock
        epoch = "TIMESTAMP_NTZ'1970-01-01 00:00:00'"
        return F.expr(f"timestampdiff(MICROSECOND, {epoch}, {name})")
    return None


def auto_max_cluster_size(frame: DataFrame, batch_size: int) -> int | None:
    """The default `max_cluster_size`: as many rows as keep a Python worker's pairwise memory
    within ``spark.sparkdedup.pairwiseWorkerBytes`` (default 1g; the worker's own code and
    libraries, about 300 MB, come on top) when it compares two blocks,
    ``16 * d + 4 * batch_size + 200`` bytes a row (the rows' Arrow input and float32 copies,
    the similarity block, pandas and output overhead): about 100,000 at d=384 and batch 1024.
    None when there are no rows (d unknown)."""
    first = frame.select(F.size("embedding").alias("d")).first()
    if first is None:
        return None
    text = frame.sparkSession.conf.get(WORKER_BYTES_CONF, None)
    budget = DEFAULT_WORKER_BYTES if text is None else parse_bytes(text, WORKER_BYTES_CONF)
    return max(1, budget // (16 * int(first["d"]) + 4 * batch_size + 200))


def _block_pair_fn(batch_size: int, device: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """One block pair of a split cluster: the rows of the later block (side 0, "columns")
    against themselves when the pair is the block's own, else against the rows of an earlier
    block (side 1, "candidates")."""

    def block_pair(group: pd.DataFrame) -> pd.DataFrame:
        cols = group[group[_SIDE] == 0].sort_values(_RANK, kind="mergesort")
        cands = group[group[_SIDE] == 1].sort_values(_RANK, kind="mergesort")
        ids, ranks = cols["id"].to_numpy(), cols[_RANK].to_numpy()
        vectors = rank_ordered_matrix(cols["embedding"].to_numpy(), np.arange(len(cols)))
        others = None
        if len(cands):
            others = rank_ordered_matrix(cands["embedding"].to_numpy(), np.arange(len(cands)))
        if device == "gpu":
            with on_task_gpu() as cupy:
                scores, index = _compare(vectors, others, batch_size, cupy)
                scores, index = cupy.asnumpy(scores), cupy.asnumpy(index)
        else:
            scores, index = _compare(vectors, others, batch_size, np)
        if others is None:  # the block's own pair
            best_ids, best_ranks = ids[index], ranks[index]
        else:
            found = index >= 0
            pick = np.where(found, index, 0)
            best_ids = np.where(found, cands["id"].to_numpy()[pick], ids)
            best_ranks = np.where(found, cands[_RANK].to_numpy()[pick], ranks)
        return pd.DataFrame(
            {
                "id": ids,
                "centroid": cols["centroid"].to_numpy(),
                "score": scores,
                "best_rank": best_ranks,
                "best_id": best_ids,
            }
        )

    return block_pair


def _compare(vectors: np.ndarray, others: np.ndarray | None, batch_size: int, xp: Any) -> Any:
    """A block against itself (`others` None) or against an earlier block, on `xp`'s device."""
    if others is None:
        return pairwise_max_similarity(xp.asarray(vectors), batch_size, xp=xp)
    return cross_max_similarity(xp.asarray(vectors), xp.asarray(others), batch_size, xp=xp)


def _split_clusters(
    frame: DataFrame,
    keys: list[str],
    ascending: list[bool],
    limit: int,
    batch_size: int,
    device: str,
    schema: T.StructType,
    copies: list[str],
) -> DataFrame:
    """`pairwise_similarity` for clusters of more than `limit` documents, a block pair a task.
    Exact copies (`COPY_KEYS`) take the `copies` distances of the one of smallest id; their
    vectors are not replaced (that would be another shuffle of the cluster's vectors)."""
    order = [
        F.col(k).asc_nulls_last() if up else F.col(k).desc_nulls_last()
        for k, up in zip(keys, ascending, strict=True)
    ]
    by_cluster = Window.partitionBy("centroid")
    narrow = frame.select(
        "id", "centroid", *[k for k in keys if k != "id"], *(COPY_KEYS if copies else ())
    )
    if copies:
        by_copies = Window.partitionBy("centroid", *COPY_KEYS).orderBy("id")
        narrow = narrow.select(
            "id",
            "centroid",
            *[F.first(k).over(by_copies).alias(k) if k in copies else k for k in keys if k != "id"],
        )
    # The rank of every document in its cluster, from its narrow keys only.
    ranks = (
        narrow.withColumn(_RANK, F.row_number().over(by_cluster.orderBy(*order)) - 1)
        .withColumn(_BLOCKS, F.ceil(F.count(F.lit(1)).over(by_cluster) / F.lit(limit)))
        .select("id", _RANK, _BLOCKS)
    )
    rows = (
        frame.select("id", "centroid", "embedding")
        .join(ranks, on="id")
        .withColumn(_ROW_BLOCK, (F.col(_RANK) / F.lit(limit)).cast("long"))
    )
    # As columns, a row meets its own block and every earlier one; as candidates, every later.
    as_columns = rows.select(
        "*",
        F.col(_ROW_BLOCK).alias(_COL_BLOCK),
        F.explode(F.sequence(F.lit(0).cast("long"), F.col(_ROW_BLOCK))).alias(_CAND_BLOCK),
        F.lit(0).alias(_SIDE),
    )
    as_candidates = rows.select(
        "*",
        F.explode(F.sequence(F.col(_ROW_BLOCK), F.col(_BLOCKS) - 1)).alias(_COL_BLOCK),
        F.col(_ROW_BLOCK).alias(_CAND_BLOCK),
        F.lit(1).alias(_SIDE),
    ).where(F.col(_COL_BLOCK) > F.col(_ROW_BLOCK))
    id_type = schema["id"].dataType
    pair_schema = T.StructType(
        [
            T.StructField("id", id_type),
            T.StructField("centroid", schema["centroid"].dataType),
            T.StructField("score", T.FloatType()),
            T.StructField("best_rank", T.LongType()),
            T.StructField("best_id", id_type),
        ]
    )
    pairs = (
        as_columns.unionByName(as_candidates)
        .select("id", "centroid", "embedding", _RANK, _COL_BLOCK, _CAND_BLOCK, _SIDE)
        .groupBy("centroid", _COL_BLOCK, _CAND_BLOCK)
        .applyInPandas(_block_pair_fn(batch_size, device), pair_schema)
    )
    # The best over a document's block pairs: the largest score, then the earliest rank.
    best = F.max(F.struct(F.col("score"), (-F.col("best_rank")).alias("r"), F.col("best_id")))
    return (
        pairs.groupBy("id", "centroid")
        .agg(best.alias("b"))
        .select(
            "id",
            F.col("b.best_id").alias("max_id"),
            F.col("b.score").alias("cosine_sim_score"),
            "centroid",
        )
    )
