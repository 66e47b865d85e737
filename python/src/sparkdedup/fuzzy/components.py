"""Fuzzy dedup step 4: connected components of the candidate edges (ALGORITHMS.md, "Buckets to
edges, components, duplicates"; DESIGN.md, "Connected components").

Small graphs are collected to the driver (Arrow) and solved by `kernels.components` (SciPy or
cuGraph); "small" is at most 2 MiB of edges and a quarter of ``spark.driver.maxResultSize``
unless given, so what the driver holds stays flat as the corpus grows. Large ones run the
alternating large-star / small-star algorithm of Kiveris et al., "Connected Components in
MapReduce and Beyond" (SoCC 2014) in plain DataFrame operations: each neighbourhood minimum is an
aggregation joined back by a shuffled hash join, so a node of a million neighbours is never
sorted or held whole by one task. Each round is materialised reliably: written under a
checkpoint directory, checkpointed to the SparkContext's, or persisted (recomputed from its
lineage when an executor is lost).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.columns import non_binary_collation
from sparkdedup.compat import (
    connect_35,
    empty_frame,
    from_arrow,
    is_connect,
    is_dataframe,
    to_arrow,
)
from sparkdedup.config import CC_BACKENDS, DEVICES
from sparkdedup.errors import (
    BackendUnavailableError,
    ConfigError,
    DedupError,
    SchemaError,
)
from sparkdedup.fs import delete, discard, literal
from sparkdedup.ids import INTEGRAL
from sparkdedup.sizing import driver_result_bytes

__all__ = ["connected_components"]

log = logging.getLogger("sparkdedup")

_ID_TYPES = (*INTEGRAL, T.StringType)
# Edges per partition of the distributed rounds; small graphs get few tasks, big ones many.
_EDGES_PER_PARTITION = 1_000_000
#: Bytes an edge takes when collected (two int64 in Arrow); the driver path may use a quarter
#: of spark.driver.maxResultSize (`sizing.driver_result_bytes`).
_EDGE_BYTES = 16
#: ... and, unless told otherwise, at most this many bytes of edges (131,072 edges): a bigger
#: graph runs distributed rounds until it is this small, so the driver's memory does not grow
#: with the corpus (about 20 MiB of Python at the most, SciPy's solve included).
DRIVER_EDGE_BYTES = 2 * 1024**2
#: Bytes a collected edge of string ids takes beyond its ids' UTF-8 bytes: two Arrow offsets.
_STRING_EDGE_OVERHEAD = 8
# components_from_edges or components_from_edges_gpu
_Kernel = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
_CONNECT_35_ROUNDS = (
    "the distributed connected components need checkpoint_dir on a pyspark 3.5 Spark Connect "
    "client, which has no checkpoints: pass a directory the cluster can write (a Unity Catalog "
    "volume, cloud storage), where each round is written, or cc_backend='driver'"
)
_GPU_HINT = (
    "install cuGraph and CuPy from RAPIDS (https://docs.rapids.ai/install) or pass device='cpu'"
)


def connected_components(
    edges: DataFrame,
    *,
    backend: str = "auto",
    max_driver_edges: int = 0,
    checkpoint_dir: str | None = None,
    device: str = "cpu",
    max_iterations: int = 100,
    edge_count: int | None = None,
) -> DataFrame:
    """Connected components of an undirected graph, each labelled by its smallest id.

    Parameters
    ----------
    edges : ``[src, dst]`` (from `bucket_edges`), both of the same integral or string type.
        Direction, repeated edges and self-loops are allowed; edges with a null endpoint are
        ignored. Other columns are ignored.
    backend : "driver" collects the edges (Arrow) and solves on the driver; "distributed" runs
        the large-star / small-star algorithm on the cluster; "auto" picks "driver" when there
        are at most `max_driver_edges` edges, else runs distributed rounds until a round leaves
        at most `max_driver_edges` edges and finishes those on the driver.
    max_driver_edges : edge-count limit of the driver path; "driver" raises above it. 0 (the
        default) takes 2 MiB of edges at 16 bytes an integer edge (131,072 edges; string ids at
        their measured bytes, one job over the edges), or a quarter of
        ``spark.driver.maxResultSize`` when that is smaller (`driver_edge_limit`).
    checkpoint_dir : directory where each distributed round is written (reliable, and
        readable by a Spark Connect session), and the edges when they are read more than once:
        nothing is then cached or checkpointed. None persists the edges and uses the
        SparkContext's checkpoint directory when one is set (never changing it), else persists
        each round (memory and disk; a lost executor's part is recomputed from the lineage).
    device : solver of the driver path: "cpu" (SciPy), "gpu" (cuGraph) or "auto" (cuGraph when
        a GPU and cuGraph are usable). The distributed path is plain DataFrame operations, which
        the RAPIDS Accelerator runs on GPU when it is enabled.
    max_iterations : maximum number of distributed rounds (a round is a large-star and a
        small-star step; O(log n) rounds are typical).
    edge_count : the number of edges, when the caller knows it (distinct edges without a null
        endpoint, as the fuzzy workflow's edges stage writes them): saves counting them.

    Returns
    -------
    DataFrame
        ``[id, component]``, one row per id that appears in some edge, `component` the smallest
        id of its component; both columns have the type of `src`. Runs Spark jobs eagerly (a
        count, then the collect or the rounds); the result is backed by the collected solution
        or by the last checkpoint, so it is cheap to recompute. The driver path collects about
        16 bytes per integer edge, which must fit in spark.driver.maxResultSize.

    Raises
    ------
    SchemaError
        If `src` or `dst` is missing, not integral/string, or their types differ.
    ConfigError
        If a parameter is invalid, or backend="driver" and there are more than
        `max_driver_edges` edges.
    BackendUnavailableError
        If device="gpu" and cuGraph cannot be imported.
    DedupError
        If the distributed rounds do not converge within `max_iterations`.
    """
    id_type = _check_edges(edges)
    _check_params(backend, max_driver_edges, device, max_iterations, checkpoint_dir)
    if backend != "driver":
        check_rounds_session(edges.sparkSession, checkpoint_dir)
    # Picked before any Spark job so that a missing cuGraph fails fast.
    kernel = None if backend == "distributed" else _pick_kernel(device)
    spark = edges.sparkSession
    # One row per edge, smaller end in `p`; computed once when read more than once.
    pairs = _Pairs(
        edges.where(F.col("src").isNotNull() & F.col("dst").isNotNull()).select(
            F.greatest("src", "dst").alias("x"),
            F.least("src", "dst").alias("p"),
        ),
        checkpoint_dir,
    )
    try:
        strings = isinstance(id_type, T.StringType) and not max_driver_edges
        n_edges = None if edge_count is None else int(edge_count)
        if n_edges is None or strings:
            # String ids: their bytes size the driver path (one job, which also counts).
            started = time.perf_counter()
            row = (
                pairs.computed()
                .agg(
                    F.count(F.lit(1)).alias("n"),
                    F.sum(F.octet_length("x") + F.octet_length("p")).alias("bytes"),
                )
                .first()
            )
            n_edges = int(row["n"])
            log.info("connected components: %d edges (counted in %.1f s)", n_edges, _since(started))
            if strings and n_edges:
                width = _STRING_EDGE_OVERHEAD + math.ceil(int(row["bytes"] or 0) / n_edges)
                max_driver_edges = driver_edge_limit(spark, max(width, _EDGE_BYTES))
        max_driver_edges = max_driver_edges or driver_edge_limit(spark)
        auto = backend == "auto"
        if auto:
            backend = "driver" if n_edges <= max_driver_edges else "distributed"
            log.info(
                "connected components: backend=%s (%d edges %s max_driver_edges=%d)",
                backend,
                n_edges,
                "<=" if backend == "driver" else ">",
                max_driver_edges,
            )
        elif backend == "driver" and n_edges > max_driver_edges:
            raise ConfigError(
                f"the driver backend (cc_backend / --cc-backend driver) would collect {n_edges} "
                f"edges, more than its limit of {max_driver_edges} (driver_cc_max_edges / "
                "--driver-cc-max-edges; max_driver_edges of connected_components): use the "
                "distributed or auto backend, or raise the limit"
            )
        if n_edges == 0:
            return _empty_result(spark, id_type)
        if backend == "driver":  # read once
            return _solve_on_driver(spark, pairs.current, id_type, kernel)
        # In auto mode the rounds hand over to the driver once they leave few enough edges
        # (they shrink fast when buckets repeat the same pairs across bands).
        finish = None
        if auto:

            def finish(state: DataFrame) -> DataFrame:
                return _solve_on_driver(spark, state.select("x", "p"), id_type, kernel)

        return _solve_distributed(
            spark,
            pairs.computed(),
            n_edges,
            checkpoint_dir,
            max_iterations,
            finish,
            max_driver_edges,
        )
    finally:
        pairs.release()


class _Pairs:
    """The edge pairs, computed when first read more than once (`computed`): written under
    `checkpoint_dir` (nothing cached, as Databricks serverless needs), else persisted (as
    soon as made: the first job that reads them fills the cache)."""

    def __init__(self, pairs: DataFrame, checkpoint_dir: str | None) -> None:
        self.dir = checkpoint_dir.rstrip("/") if checkpoint_dir else None
        self.current = pairs if self.dir else pairs.persist()
        self._path: str | None = None

    def computed(self) -> DataFrame:
        if self.dir is not None and self._path is None:
            import uuid

            self._path = f"{self.dir}/pairs-{uuid.uuid4().hex[:12]}"
            self.current.write.parquet(self._path)
            spark = self.current.sparkSession
            self.current = spark.read.schema(self.current.schema).parquet(
                literal(spark, self._path)
            )
        return self.current

    def release(self) -> None:
        if self.dir is None:
            self.current.unpersist()
        elif self._path is not None:
            discard(self.current.sparkSession, self._path, {self._path: self.current.schema})


def driver_edge_limit(spark: SparkSession, edge_bytes: int = _EDGE_BYTES) -> int:
    """Edges the driver path collects by default: 2 MiB of them at `edge_bytes` an edge (16
    for integer ids: 131,072), or a quarter of ``spark.driver.maxResultSize`` when that is
    smaller (a 4m maxResultSize gives 65,536 integer edges; 0, unlimited, leaves the 2 MiB).
    String ids take their measured bytes plus `_STRING_EDGE_OVERHEAD` an edge."""
    share = driver_result_bytes(spark)
    budget = DRIVER_EDGE_BYTES if share is None else min(share, DRIVER_EDGE_BYTES)
    return max(1, budget // edge_bytes)


def _check_edges(edges: DataFrame) -> T.DataType:
    if not is_dataframe(edges):
        raise SchemaError(f"edges must be a Spark DataFrame, got {type(edges).__name__}")
    fields = {f.name: f.dataType for f in edges.schema.fields}
    for name in ("src", "dst"):
        if name not in fields:
            raise SchemaError(
                f"edges column {name!r} is missing; expected [src, dst], got "
                f"[{', '.join(edges.columns)}]"
            )
        dtype = fields[name]
        if not isinstance(dtype, _ID_TYPES) or non_binary_collation(dtype):
            raise SchemaError(
                f"edges column {name!r} must be an integral (tinyint, smallint, int, bigint) or "
                f"string (default collation) column, got {dtype.simpleString()}"
            )
    if fields["src"] != fields["dst"]:
        raise SchemaError(
            f"edges columns 'src' and 'dst' must have the same type, got "
            f"{fields['src'].simpleString()} and {fields['dst'].simpleString()}"
        )
    return fields["src"]


def _check_params(
    backend: object,
    max_driver_edges: object,
    device: object,
    max_iterations: object,
    checkpoint_dir: object,
) -> None:
    if backend not in CC_BACKENDS:
        raise ConfigError(
            f"backend must be one of {', '.join(map(repr, CC_BACKENDS))}, got {backend!r}"
        )
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(map(repr, DEVICES))}, got {device!r}")
    for name, value, low in (
        ("max_driver_edges", max_driver_edges, 0),
        ("max_iterations", max_iterations, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if checkpoint_dir is not None and (not isinstance(checkpoint_dir, str) or not checkpoint_dir):
        raise ConfigError(
            f"checkpoint_dir must be a non-empty path or None, got {checkpoint_dir!r}"
        )


def check_rounds_session(spark: SparkSession, checkpoint_dir: str | None) -> None:
    """ConfigError when distributed rounds could not run: on a pyspark 3.5 Spark Connect
    client without `checkpoint_dir`."""
    if checkpoint_dir is None and connect_35(spark):
        raise ConfigError(_CONNECT_35_ROUNDS)


def _since(started: float) -> float:
    return time.perf_counter() - started


def _result_schema(id_type: T.DataType) -> T.StructType:
    # Nullable like the distributed path's aggregation output, so both backends give one schema.
    return T.StructType(
        [T.StructField("id", id_type, True), T.StructField("component", id_type, True)]
    )


def _empty_result(spark: SparkSession, id_type: T.DataType) -> DataFrame:
    return empty_frame(spark, _result_schema(id_type))


def _pick_kernel(device: str) -> _Kernel:
    from sparkdedup.kernels.components import components_from_edges, components_from_edges_gpu

    if device == "cpu":
        return components_from_edges
    usable = importlib.util.find_spec("cugraph") is not None
    if device == "gpu" and not usable:
        raise BackendUnavailableError(
            f"device='gpu' solves connected components with cuGraph, which is not importable: "
            f"{_GPU_HINT}"
        )
    if device == "auto":
        from sparkdedup.device import gpu_available

        usable = usable and gpu_available()
        log.info("connected components: device=auto -> %s", "gpu" if usable else "cpu")
    return components_from_edges_gpu if usable else components_from_edges


def _solve_on_driver(
    spark: SparkSession,
    pairs: DataFrame,
    id_type: T.DataType,
    kernel: _Kernel,
) -> DataFrame:
    import pyarrow as pa

    started = time.perf_counter()
    table = to_arrow(pairs)
    x = table.column("x").to_numpy(zero_copy_only=False)
    p = table.column("p").to_numpy(zero_copy_only=False)
    del table
    collected = _since(started)
    nodes, component = kernel(x, p)
    # Integer ids keep their NumPy width through the kernel (int8 ... int64).
    arrow_type = pa.string() if isinstance(id_type, T.StringType) else pa.from_numpy_dtype(x.dtype)
    result = pa.table(
        {
            "id": pa.array(nodes, type=arrow_type),
            "component": pa.array(component, type=arrow_type),
        }
    )
    log.info(
        "connected components (driver, %s): %d edges, %d ids, %d components; collect %.1f s, "
        "solve %.1f s",
        kernel.__name__,
        x.size,
        nodes.size,
        int(np.count_nonzero(nodes == component)),
        collected,
        _since(started) - collected,
    )
    return from_arrow(spark, result, _result_schema(id_type))


def _large_star(state: DataFrame) -> DataFrame:
    """Large-star: every node u links its larger neighbours to m(u) = min(u, neighbours of u).

    Input ``[x, p]`` (p <= x); output ``[x, p, c]`` with c = "this edge changed". A self-loop
    (u, u) is kept as (u, m(u)): it keeps a node whose only edge is a self-loop in the output.
    """
    both = state.select(F.col("x").alias("u"), F.col("p").alias("v")).unionByName(
        state.select(F.col("p").alias("u"), F.col("x").alias("v"))
    )
    lows = both.groupBy("u").agg(F.min("v").alias("lowest"))
    m = F.least(F.col("lowest"), F.col("u"))
    return (
        both.join(lows.hint("shuffle_hash"), on="u")
        .where(F.col("v") >= F.col("u"))
        .select(F.col("v").alias("x"), m.alias("p"), (m < F.col("u")).alias("c"))
    )


def _small_star(linked: DataFrame) -> DataFrame:
    """Small-star: every node x links itself and its smaller neighbours to the smallest of them.

    Input ``[x, p, c]`` with p <= x (repeats allowed); output the same shape. Within a group x
    exactly one distinct row has p = m, and it yields (x, m); every other row (x, p) yields
    (p, m), so no explode is needed.
    """
    grouped = linked.groupBy("x", "p").agg(F.max("c").alias("c"))
    lows = grouped.groupBy("x").agg(F.min("p").alias("m"))
    joined = grouped.join(lows.hint("shuffle_hash"), on="x")
    same = F.col("p") == F.col("m")
    return joined.select(
        F.when(same, F.col("x")).otherwise(F.col("p")).alias("x"),
        F.col("m").alias("p"),
        (F.col("c") | ~same).alias("c"),
    )


def _round_partitions(spark: SparkSession, n_edges: int) -> int:
    """Partitions of the rounds' shuffles: about `_EDGES_PER_PARTITION` edges each (one for a
    small graph), at least the cluster's parallelism for a big one."""
    from sparkdedup.sizing import parallelism

    parts = math.ceil(n_edges / _EDGES_PER_PARTITION)
    return max(1, parts, parallelism(spark) if parts > 1 else 1)


class _Rounds:
    """Materialises each round reliably and frees the round before it (see the module doc).

    Each round is a copy under a plan of its own (`stages.computed_copy` without a directory):
    a round reads the round before it twice, so plans that kept their lineage would double
    every round."""

    def __init__(self, spark: SparkSession, checkpoint_dir: str | None) -> None:
        import uuid

        self.spark = spark
        self.dir = (
            checkpoint_dir.rstrip("/") + f"/cc-{uuid.uuid4().hex[:12]}" if checkpoint_dir else None
        )
        # Whether a round's counts can ride on its own job (an Observation): when a classic
        # session writes or checkpoints it. A round persisted over its RDD runs its plan outside
        # any query an Observation hears of, a pyspark 3.5 Connect client has no Observations,
        # and a Spark 4.0 Connect session may not return the metrics of a write.
        self.observes = True
        if self.dir is not None:
            self.kind = f"written under {self.dir}"
            self.observes = not is_connect(spark)
        elif is_connect(spark):
            server_dir = spark.conf.get("spark.checkpoint.dir", None)
            self.kind = f"checkpointed to {server_dir}" if server_dir else "locally checkpointed"
            self.observes = False
        elif spark.sparkContext.getCheckpointDir() is not None:
            self.kind = "checkpointed to the SparkContext's directory"
        else:
            self.kind = "persisted"
            self.observes = False
        self._previous: DataFrame | None = None
        self._paths: list[str] = []
        self._schema: T.StructType | None = None
        # The checkpoint files of the round before (a classic session's checkpoint directory:
        # the rounds are sparkdedup's own, deleted once the next round is made; the result is
        # the caller's).
        self._checkpoint: str | None = None

    def materialise(self, df: DataFrame, round_no: int) -> DataFrame:
        """Round `round_no` of the rounds, or with 0 the result (kept by `close`)."""
        from sparkdedup.stages import checkpoint_file, computed_copy, too_deep_to_checkpoint

        persisted = False
        if self.dir is not None:
            # The rounds take three directories in turn: a round reads only the round before
            # it, so the one three back is overwritten, and nothing is deleted while they run
            # (over Spark Connect only Spark may reach the directory).
            path = f"{self.dir}/round-{round_no % 3}" if round_no else f"{self.dir}/result"
            df.write.mode("overwrite").parquet(path)
            if round_no and path not in self._paths:
                self._paths.append(path)
                self._schema = df.schema
            out = self.spark.read.parquet(literal(self.spark, path))
        else:
            try:
                out, persisted = computed_copy(df)
            except Exception as err:
                if not too_deep_to_checkpoint(err):
                    raise
                # Persisted rounds would keep their lineage, which doubles every round.
                raise ConfigError(
                    "the distributed connected components' plans are too deep for this Spark "
                    "Connect client to checkpoint (a run with derived ids, verification or "
                    "normalisation): pass checkpoint_dir (a directory the server can write) "
                    "so that each round is written there"
                ) from err
        if self._previous is not None:
            self._previous.unpersist()
        self._previous = out if persisted else None
        self._drop_checkpoint()
        if round_no and not persisted and self.dir is None:
            self._checkpoint = checkpoint_file(out)
        if not round_no:
            self._previous = None  # the result: the caller's
        return out

    def _drop_checkpoint(self) -> None:
        if self._checkpoint is not None:
            delete(self.spark, self._checkpoint)
        self._checkpoint = None

    def close(self) -> None:
        """Free what the rounds left once the result is made (or the rounds failed): the last
        persisted round, the last round's checkpoint files and the round directories (over
        Spark Connect, out of this machine's reach, emptied through Spark: `fs.discard`); the
        result stays."""
        if self._previous is not None:
            self._previous.unpersist()
        self._previous = None
        self._drop_checkpoint()
        for path in self._paths:
            discard(self.spark, path, {path: self._schema})
        self._paths = []


def _solve_distributed(
    spark: SparkSession,
    pairs: DataFrame,
    n_edges: int,
    checkpoint_dir: str | None,
    max_iterations: int,
    finish: Callable[[DataFrame], DataFrame] | None = None,
    finish_edges: int = 0,
) -> DataFrame:
    """Alternate large-star and small-star until no edge changes; `finish`, when given, solves
    the rest on the driver as soon as a round leaves at most `finish_edges` edges."""
    from sparkdedup.sizing import shuffle_partitions

    parts = _round_partitions(spark, n_edges)
    rounds = _Rounds(spark, checkpoint_dir)
    log.info(
        "connected components (distributed): %d edges, %d partitions, rounds %s",
        n_edges,
        parts,
        rounds.kind,
    )
    state = pairs
    changes = 0
    with shuffle_partitions(spark, parts), _closing(rounds):
        for round_no in range(1, max_iterations + 1):
            started = time.perf_counter()
            # The counts ride on the round's own job (an Observation) where they can: a round
            # then costs its shuffles and one job, with no separate counting job.
            counts = (
                F.count(F.lit(1)).alias("edges"),
                F.sum(F.col("c").cast("long")).alias("changes"),
            )
            if rounds.observes:
                observed = Observation()
                state = rounds.materialise(
                    _small_star(_large_star(state)).observe(observed, *counts), round_no
                )
                stats = observed.get
            else:  # a job of their own, over the computed round
                state = rounds.materialise(_small_star(_large_star(state)), round_no)
                stats = state.agg(*counts).first().asDict()
            edges, changes = int(stats["edges"]), int(stats["changes"] or 0)
            log.info(
                "connected components round %d: %d edges, %d changed, %.1f s",
                round_no,
                edges,
                changes,
                _since(started),
            )
            if round_no == 1:
                pairs.unpersist()  # the first round now holds everything the next ones need
            if changes == 0:
                return rounds.materialise(_stars_to_components(state), 0)
            if finish is not None and edges <= finish_edges:
                log.info(
                    "connected components: %d edges left <= max_driver_edges=%d; finishing on "
                    "the driver",
                    edges,
                    finish_edges,
                )
                return finish(state)
    raise DedupError(
        f"distributed connected components did not converge in max_iterations={max_iterations} "
        f"rounds ({changes} edges still changing); raise max_iterations or use backend='driver'"
    )


@contextmanager
def _closing(rounds: _Rounds) -> Iterator[None]:
    try:
        yield
    finally:
        rounds.close()


def _stars_to_components(state: DataFrame) -> DataFrame:
    """At convergence every edge (x, p) joins a node to the smallest id of its component."""
    members = state.select(F.col("x").alias("id"), F.col("p").alias("component"))
    roots = state.select(F.col("p").alias("id"), F.col("p").alias("component"))
    component: Column = F.min("component").alias("component")
    return members.unionByName(roots).groupBy("id").agg(component)
