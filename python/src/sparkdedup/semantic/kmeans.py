"""SemDeDup steps 1-2: L2-normalise the embeddings and cluster them with KMeans, then the
nearest centroid of every document and its distances to it (ALGORITHMS.md, "Semantic
deduplication"). KMeans is `pyspark.ml.clustering.KMeans` (k-means||) on CPU and
`spark_rapids_ml.clustering.KMeans` on GPU; the array math is `sparkdedup.kernels.normalize`,
run in `mapInArrow`.
"""

from __future__ import annotations

import gc
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.columns import named
from sparkdedup.config import check_fraction, check_int, check_number
from sparkdedup.device import on_task_gpu
from sparkdedup.errors import BackendUnavailableError, ConfigError
from sparkdedup.kernels.normalize import centroid_distances, l2_normalize, nearest_centroid
from sparkdedup.semantic.embed import COPY_KEYS, embedding_array, embedding_stats

log = logging.getLogger("sparkdedup")

#: Rows per partition of the KMeans input. The fit input is hash-partitioned by id into a number
#: of partitions that depends only on the row count and the dimension, and sorted, so k-means||
#: sampling (seeded per partition) does not depend on how the input happened to be split.
_ROWS_PER_FIT_PARTITION = 5_000
_MAX_FIT_PARTITIONS = 1024
#: Past 1024 partitions of 5,000 rows, partitions grow with the corpus only up to this many
#: bytes of vectors (as pyspark.ml holds them: doubles): a fixed constant, not a session
#: setting, so that the clustering stays the same whatever the session.
_FIT_PARTITION_BYTES = 128 * 1024**2


def fit_partitions(rows: int, dim: int) -> int:
    """Partitions of the KMeans fit input: one per 5,000 rows up to 1024, and more past
    that so that none holds over 128 MiB of vectors (``rows * dim * 8`` bytes in all): a task
    sorts and caches at most that, whatever the corpus (10^9 384-dimensional vectors: 22,889
    partitions, where a cap of 1024 would give each 3 GB)."""
    by_rows = min(_MAX_FIT_PARTITIONS, max(1, math.ceil(rows / _ROWS_PER_FIT_PARTITION)))
    return max(by_rows, math.ceil(rows * dim * 8 / _FIT_PARTITION_BYTES))


_CUML_MAX_SEED = 2**31 - 1
_BLOCK_SOLVER_MIN_POINTS_PER_CENTER = 2


def _flat_matrix(column: pa.Array, rows: int, dim: int) -> np.ndarray:
    """(rows, dim) view of a list<float|double> Arrow column whose lists all have length dim."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False)
    if values.size != rows * dim:
        raise ValueError(f"expected {rows} vectors of {dim} elements, got {values.size} values")
    return values.reshape(rows, dim)


def _float_lists(matrix: np.ndarray) -> pa.Array:
    """An Arrow list<float> column (Spark array<float>) from a (rows, dim) matrix."""
    rows, dim = matrix.shape
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * np.int32(dim))
    values = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1))
    return pa.ListArray.from_arrays(
        offsets, values, type=pa.list_(pa.field("element", pa.float32()))
    )


def _normalize_batches(dim: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def normalize(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            unit = l2_normalize(_flat_matrix(batch.column(1), batch.num_rows, dim))
            yield pa.RecordBatch.from_arrays(
                [batch.column(0), _float_lists(unit)], names=["id", "embedding"]
            )

    return normalize


def _labels(unit: np.ndarray, centers: np.ndarray, device: str) -> np.ndarray:
    """Nearest centroids of a batch, on the task's GPU when the device is "gpu"."""
    if device != "gpu":
        return nearest_centroid(unit, centers)
    with on_task_gpu() as cupy:
        found = nearest_centroid(cupy.asarray(unit), cupy.asarray(centers), xp=cupy)
        return cupy.asnumpy(found)


def _distance_batches(
    centers: np.ndarray, dim: int, device: str = "cpu"
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    # The centers travel inside the pickled function; PySpark broadcasts a pickled function
    # once it is larger than its broadcast threshold (1 MB), so large k is not shipped per task.
    def distances(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            unit = l2_normalize(_flat_matrix(batch.column(1), batch.num_rows, dim))
            labels = _labels(unit, centers, device)
            l2, cosine = centroid_distances(unit, centers, labels)
            # Columns after the embedding (the copy keys) go on as they are.
            carried = batch.schema.names[2:]
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column(0),
                    pa.array(labels.astype(np.int32)),
                    pa.array(l2),
                    pa.array(cosine),
                    _float_lists(unit),
                    *[batch.column(name) for name in carried],
                ],
                names=[
                    "id",
                    "centroid",
                    "l2_dist_to_cent",
                    "cosine_dist_to_cent",
                    "embedding",
                    *carried,
                ],
            )

    return distances


def _output_schema(id_type: T.DataType, carried: Sequence[T.StructField] = ()) -> T.StructType:
    return T.StructType(
        [
            T.StructField("id", id_type, False),
            T.StructField("centroid", T.IntegerType(), False),
            T.StructField("l2_dist_to_cent", T.DoubleType(), False),
            T.StructField("cosine_dist_to_cent", T.DoubleType(), False),
            T.StructField("embedding", T.ArrayType(T.FloatType(), False), False),
            *carried,
        ]
    )


def check_kmeans_session(spark: Any) -> None:
    """ConfigError, before any job, when pyspark.ml cannot fit KMeans on `spark`: a pyspark
    3.5 Spark Connect client (pyspark.ml runs over Spark Connect from 4.0 on)."""
    import pyspark

    from sparkdedup.compat import connect_35

    if connect_35(spark):
        raise ConfigError(
            "semantic dedup fits KMeans with pyspark.ml, which runs over Spark Connect from "
            f"pyspark 4.0 on; this session is a pyspark {pyspark.__version__} Spark Connect "
            "client (as Databricks Connect and standard access mode clusters before Runtime 17 "
            "give): run it from a classic session or a pyspark 4 Connect client. Fuzzy and "
            "exact dedup run on this one"
        )


def _kmeans_class(device: str) -> Any:
    """The KMeans estimator class of `device`, imported on the driver before any Spark job."""
    if device == "gpu":
        try:
            from spark_rapids_ml.clustering import KMeans as GpuKMeans  # noqa: PLC0415
        except ImportError as err:
            raise BackendUnavailableError(
                "device='gpu' clusters with spark-rapids-ml, which is not installed: "
                "pip install 'sparkdedup[gpu]' (plus RAPIDS cuML), or pass device='cpu'"
            ) from err
        return GpuKMeans
    from pyspark.ml.clustering import KMeans  # noqa: PLC0415

    return KMeans


def _estimator(
    kmeans: Any, device: str, k: int, max_iter: int, tol: float, seed: int, solver: str
) -> Any:
    params: dict[str, Any] = dict(
        k=k, maxIter=max_iter, tol=float(tol), seed=seed, featuresCol="embedding"
    )
    if device == "gpu":
        return kmeans(**params)
    return kmeans(initMode="k-means||", solver=solver, **params)


def _check_params(n_clusters: int, max_iter: int, tol: float, seed: int, device: str) -> None:
    check_int("n_clusters", n_clusters, 1)
    check_int("max_iter", max_iter, 1)
    check_int("seed", seed, 0, 2**32 - 1)
    check_number("tol", tol, 0, finite=True)
    if device not in ("cpu", "gpu"):
        raise ConfigError(f"device must be 'cpu' or 'gpu' (resolve 'auto' first), got {device!r}")
    if device == "gpu" and seed > _CUML_MAX_SEED:
        raise ConfigError(f"seed must be <= {_CUML_MAX_SEED} with device='gpu' (cuML), got {seed}")


def _sum_batches(dim: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def partial_sums(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows, total = 0, np.zeros(dim, dtype=np.float64)
        for batch in batches:
            unit = _flat_matrix(batch.column(1), batch.num_rows, dim)
            total += unit.sum(axis=0, dtype=np.float64)
            rows += batch.num_rows
        yield pa.RecordBatch.from_arrays(
            [pa.array([rows], pa.int64()), pa.array([total], pa.list_(pa.float64()))],
            names=["rows", "total"],
        )

    return partial_sums


def _add_totals(dim: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def add(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows, total = 0, np.zeros(dim, dtype=np.float64)
        for batch in batches:  # in partition order: sorted by it
            rows += int(batch.column("rows").to_numpy(zero_copy_only=False).sum())
            sums = _flat_matrix(batch.column("total"), batch.num_rows, dim)
            for row in sums:
                total += row
        yield pa.RecordBatch.from_arrays(
            [pa.array([rows], pa.int64()), pa.array([total], pa.list_(pa.float64()))],
            names=["rows", "total"],
        )

    return add


def _mean_center(fit_input: DataFrame, dim: int) -> np.ndarray:
    """``(1, dim)`` mean of the unit vectors: the KMeans solution for k = 1 (which pyspark.ml
    does not accept). Each partition sums its vectors; one task adds those sums in partition
    order (so the result is as reproducible as the KMeans fit), and one row reaches the
    driver, whatever the number of partitions."""
    schema = "rows long, total array<double>"
    sums = fit_input.mapInArrow(_sum_batches(dim), schema).withColumn(
        "_dedup_part", F.spark_partition_id()
    )
    added = sums.repartition(1).sortWithinPartitions("_dedup_part").drop("_dedup_part")
    row = added.mapInArrow(_add_totals(dim), schema).collect()[0]
    return (np.asarray(row["total"], dtype=np.float64) / int(row["rows"]))[None, :]


def _in_sample(seed: int, fraction: float) -> Any:
    """Whether a row is in a `fraction` sample: a seeded 64-bit hash of its id, as a number in
    [0, 1), below `fraction`."""
    hashed = F.xxhash64(F.lit(seed).cast("bigint"), F.lit("kmeans-sample"), F.col("id"))
    unit = F.shiftrightunsigned(hashed, 11).cast("double") / float(2**53)
    return unit < F.lit(float(fraction))


def _rows_and_distinct(normalized: DataFrame) -> tuple[int, int]:
    row = normalized.agg(
        F.count(F.lit(1)).alias("rows"), F.count_distinct(F.xxhash64("embedding")).alias("n")
    ).first()
    return int(row["rows"]), int(row["n"])


def _vectors(
    embeddings: DataFrame, id_col: str, embedding_col: str, *, copy_keys: bool = False
) -> DataFrame:
    """``[id, embedding]``, and the `COPY_KEYS` after them when asked for and present."""
    carried = [c for c in COPY_KEYS if copy_keys and c in embeddings.columns]
    return embeddings.select(
        named(id_col).alias("id"),
        embedding_array(embeddings, embedding_col).alias("embedding"),
        *carried,
    )


def fit_centroids(
    embeddings: DataFrame,
    *,
    n_clusters: int = 100,
    max_iter: int = 300,
    tol: float = 1e-4,
    seed: int = 42,
    device: str = "cpu",
    id_col: str = "id",
    embedding_col: str = "embedding",
    fit_fraction: float = 1.0,
) -> np.ndarray:
    """Check and L2-normalise the embeddings, then fit KMeans on them (eagerly).

    Parameters
    ----------
    embeddings : ``[id_col, embedding_col]`` with ids unique and embeddings of a type
        `embedding_array` takes (checked first by `embedding_stats`; errors name
        `embedding_col`).
    n_clusters : KMeans k. It is lowered, with a warning, to the number of distinct unit
        vectors when there are fewer (KMeans cannot place more centroids than distinct points).
        With k = 1 (asked for, one document, or all embeddings the same direction) the single
        centroid is the mean of the unit vectors, on every device.
    max_iter, tol, seed : KMeans parameters (k-means|| initialisation).
    device : "cpu" (pyspark.ml KMeans) or "gpu" (spark-rapids-ml KMeans; seed must fit in 31 bits).
    id_col, embedding_col : input column names.
    fit_fraction : fit on about this fraction of the documents (0 < f <= 1), as NeMo Curator's
        ``kmeans_fit_data_fraction``: a document is in the sample when a seeded hash of its id
        falls below f, so the sample depends on the seed and the ids only, never on the
        partitioning. Every document is still checked, and assigned by `assign_clusters`.

    Returns
    -------
    numpy.ndarray
        ``(k', d)`` float64 raw centroids, k' <= k; ``(0, 0)`` for empty input. The fit input is
        hash-partitioned by id into a number of partitions that depends only on the row count,
        and sorted, so the clusters do not depend on how the input happened to be split.
    """
    _check_params(n_clusters, max_iter, tol, seed, device)
    check_fraction("fit_fraction", fit_fraction)
    kmeans = _kmeans_class(device)
    # Checked under the user's column names, so that errors name them.
    stats = embedding_stats(embeddings, embedding_col, id_col=id_col)
    if stats.rows == 0:
        return np.zeros((0, 0), dtype=np.float64)
    vectors = _vectors(embeddings, id_col, embedding_col)
    schema = _output_schema(vectors.schema["id"].dataType)
    normalized = vectors.mapInArrow(
        _normalize_batches(stats.dim), T.StructType([schema["id"], schema["embedding"]])
    )
    # pyspark.ml's block solver even fails when its initialisation finds fewer than k centres,
    # so k is capped by the number of distinct unit vectors, counted by a 64-bit hash (in the
    # same pass as the sample's size).
    rows, distinct, sampled = stats.rows, 1, False
    if fit_fraction < 1:
        sample = normalized.where(_in_sample(seed, fit_fraction))
        rows, distinct = _rows_and_distinct(sample)
        if rows == 0:
            log.warning(
                "sparkdedup: fit_fraction=%g samples none of the %d documents; fitting KMeans "
                "on all of them",
                fit_fraction,
                stats.rows,
            )
            rows, distinct = stats.rows, 1
        else:
            normalized, sampled = sample, True
            log.info("sparkdedup kmeans: fitting on %d of %d documents", rows, stats.rows)
    if n_clusters > 1 and not sampled:
        distinct = _rows_and_distinct(normalized)[1]
    k = min(n_clusters, distinct)
    if k < n_clusters:
        log.warning(
            "sparkdedup: n_clusters=%d is larger than the number of distinct embeddings "
            "(%d among %d documents); using n_clusters=%d",
            n_clusters,
            distinct,
            rows,
            k,
        )
    partitions = fit_partitions(rows, stats.dim)
    fit_input = normalized.repartition(partitions, "id").sortWithinPartitions("id")
    if k == 1:
        # pyspark.ml rejects k = 1, and one centre is simply the mean: computed here on CPU and
        # GPU alike, so both devices give the same centroid.
        centers = _mean_center(fit_input, stats.dim)
        log.info(
            "sparkdedup kmeans: %d documents of dimension %d, 1 centroid (their mean)",
            rows,
            stats.dim,
        )
        return centers
    # The block (GEMM) solver is several times faster but needs k-means|| to find k distinct
    # centres; with few distinct points per centre the row solver is the safe choice.
    solver = "block" if distinct >= _BLOCK_SOLVER_MIN_POINTS_PER_CENTER * k else "row"
    model = _estimator(kmeans, device, k, max_iter, tol, seed, solver).fit(fit_input)
    centers = np.asarray(model.clusterCenters(), dtype=np.float64)
    # Over Spark Connect the model holds a server-side cache entry, which its finaliser deletes
    # with a call to the server. Left to the garbage collector, that call can start inside
    # another call of the same thread and wait for it forever (a pyspark-client 4.2 process
    # hung so in the Connect tests): the model is freed here, between calls.
    del model
    gc.collect()
    log.info(
        "sparkdedup kmeans: %d documents of dimension %d, %d centroids (k=%d, %s solver)",
        rows,
        stats.dim,
        len(centers),
        k,
        "cuML" if device == "gpu" else solver,
    )
    return centers


def assign_clusters(
    embeddings: DataFrame,
    centroids: np.ndarray,
    *,
    id_col: str = "id",
    embedding_col: str = "embedding",
    device: str = "cpu",
) -> DataFrame:
    """Nearest centroid of every document and its distances to it (lazy, one pass).

    Parameters
    ----------
    embeddings : ``[id_col, embedding_col]``, already checked (`embedding_stats`, as
        `fit_centroids` does): a vector of another dimension fails the Spark job.
    centroids : ``(k, d)`` raw centroids from `fit_centroids`.
    id_col, embedding_col : input column names.
    device : "cpu" or "gpu": where the nearest centroids are found (the task's own GPU).

    Returns
    -------
    DataFrame
        ``[id, centroid int, l2_dist_to_cent double, cosine_dist_to_cent double,
        embedding array<float>]``, as `kmeans_clusters`, then `embeddings`' `COPY_KEYS` when it
        has them (`document_embeddings`' text hashes). The nearest centroid is found by
        `sparkdedup.kernels.normalize.nearest_centroid` (float32 products in blocks of at most
        32 MiB, near ties decided in float64; smallest index on ties), so the assignment is
        the same on every device and for every batch.
    """
    vectors = _vectors(embeddings, id_col, embedding_col, copy_keys=True)
    schema = _output_schema(vectors.schema["id"].dataType, vectors.schema.fields[2:])
    centers = np.asarray(centroids, dtype=np.float64)
    if centers.size == 0:  # fitted on no documents
        return embeddings.sparkSession.createDataFrame([], schema)
    if centers.ndim != 2:
        raise ConfigError(f"centroids must be a (k, d) array, got shape {centers.shape}")
    return vectors.mapInArrow(_distance_batches(centers, centers.shape[1], device), schema)


def kmeans_clusters(
    embeddings: DataFrame,
    *,
    n_clusters: int = 100,
    max_iter: int = 300,
    tol: float = 1e-4,
    seed: int = 42,
    device: str = "cpu",
    id_col: str = "id",
    embedding_col: str = "embedding",
    fit_fraction: float = 1.0,
) -> DataFrame:
    """Normalise the embeddings, cluster them, and measure each document's distance to its centroid.

    `fit_centroids` (eager: one check job, one distinct count, the KMeans fit) followed by
    `assign_clusters` (lazy); the parameters are those of `fit_centroids`.

    Returns
    -------
    DataFrame
        ``[id, centroid int, l2_dist_to_cent double, cosine_dist_to_cent double,
        embedding array<float>]``: one row per document, ``id`` with the type of `id_col`,
        ``embedding`` L2-normalised (float32), ``centroid`` the nearest centroid C,
        ``l2_dist_to_cent = ||e - C||`` with the raw centroid and
        ``cosine_dist_to_cent = 1 - e . C/||C||``. Empty input gives an empty result. The
        `COPY_KEYS` of `embeddings` follow when it has them.
    """
    centers = fit_centroids(
        embeddings,
        n_clusters=n_clusters,
        max_iter=max_iter,
        tol=tol,
        seed=seed,
        device=device,
        id_col=id_col,
        embedding_col=embedding_col,
        fit_fraction=fit_fraction,
    )
    return assign_clusters(
        embeddings, centers, id_col=id_col, embedding_col=embedding_col, device=device
    )
