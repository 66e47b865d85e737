"""Shuffle sizing: every shuffle the workflows own is cut into partitions of a target size.

A shuffle of about B bytes gets ``ceil(B / target)`` partitions (target: the Spark setting
``spark.sparkdedup.partitionBytes``, default 128 MiB), and at least one per 8 MiB to spread up
to as many as the cluster has cores: a few dozen documents take one task, a corpus of
10^10 documents tens of thousands. Memory per task then follows the target, not the corpus.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkdedup.columns import named
from sparkdedup.errors import ConfigError

log = logging.getLogger("sparkdedup")

TARGET_CONF = "spark.sparkdedup.partitionBytes"
DEFAULT_TARGET_BYTES = 128 * 1024**2
#: Below this many bytes a shuffle is not split just to use more cores.
MIN_SPLIT_BYTES = 8 * 1024**2
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_bytes(text: str, name: str) -> int:
    """``"128m"``, ``"1g"``, ``"4096"`` -> bytes (Spark's size notation, binary units)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmgtb]?)b?\s*", str(text).lower())
    if match is None:
        raise ConfigError(f"{name} must be a size such as '128m' or '1g', got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


#: The share of spark.driver.maxResultSize one collect of sparkdedup's may take, leaving room
#: for Arrow's framing and the other results.
RESULT_SHARE = 4


def driver_result_bytes(spark: SparkSession) -> int | None:
    """The bytes one collect to the driver may take: a quarter of
    ``spark.driver.maxResultSize`` (Spark's default 1g), None when that is 0 (unlimited)."""
    text = spark.conf.get("spark.driver.maxResultSize", "1g") or "1g"
    limit = parse_bytes(text, "spark.driver.maxResultSize")
    return limit // RESULT_SHARE if limit else None


def target_bytes(spark: SparkSession) -> int:
    value = spark.conf.get(TARGET_CONF, None)
    return DEFAULT_TARGET_BYTES if value is None else max(1, parse_bytes(value, TARGET_CONF))


def parallelism(spark: SparkSession) -> int:
    """Cores the cluster gives a stage (a classic session's default parallelism)."""
    try:
        return max(1, int(spark.sparkContext.defaultParallelism))
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext
        value = spark.conf.get("spark.default.parallelism", None)
        return max(1, int(value)) if value else 8


def partitions_for(spark: SparkSession, nbytes: float) -> int:
    """Partitions for a shuffle of about `nbytes` bytes."""
    by_size = math.ceil(max(nbytes, 0) / target_bytes(spark))
    spread = min(parallelism(spark), math.ceil(max(nbytes, 0) / MIN_SPLIT_BYTES))
    return max(1, by_size, spread)


_PARTITION_CONFS = (
    "spark.sql.shuffle.partitions",
    "spark.sql.adaptive.coalescePartitions.initialPartitionNum",
)
#: Arrow batches sent to the Python workers close at this many bytes (or the row limit):
#: a batch holds at most this plus its last document, whatever the documents' sizes.
ARROW_BATCH_BYTES = 64 * 1024**2
_ARROW_BYTES_CONF = "spark.sql.execution.arrow.maxBytesPerBatch"


#: The settings `temporary_conf` holds, by session and key: the session's own value (None when
#: unset) and the values of the blocks inside which it holds, the latest last.
_HELD: dict[tuple[Any, str], tuple[str | None, list[tuple[object, str]]]] = {}
_HELD_LOCK = threading.Lock()


def _session_key(spark: SparkSession) -> Any:
    """One key per session, whichever Python object stands for it."""
    session_id = getattr(spark, "session_id", None)  # Spark Connect
    if isinstance(session_id, str):
        return ("connect", session_id)
    try:
        return ("jvm", str(spark._jsparkSession.sessionUUID()))
    except Exception:  # noqa: BLE001 - any other session object
        return ("object", id(spark))


@contextmanager
def temporary_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Run the queries inside with `settings`, then restore the session's values.

    A session's settings are shared by every thread using it, so calls that overlap (notebook
    cells, threads) must not each save and restore them: one would save the other's temporary
    value and restore it last. The session's own value is saved by the first block to set a
    key and restored when the last one inside which it is held ends; in between, the value of
    the latest block still running holds."""
    if not settings:
        yield
        return
    token, session = object(), _session_key(spark)
    taken: list[str] = []
    try:
        with _HELD_LOCK:
            for key, value in settings.items():
                if (session, key) not in _HELD:
                    _HELD[(session, key)] = (spark.conf.get(key, None), [])
                taken.append(key)
                _HELD[(session, key)][1].append((token, value))
                spark.conf.set(key, value)
        yield
    finally:
        _let_go(spark, session, token, taken)


def _let_go(spark: SparkSession, session: Any, token: object, keys: list[str]) -> None:
    """End `token`'s hold on `keys`: the bookkeeping first, then the session's settings."""
    with _HELD_LOCK:
        values: list[tuple[str, str | None]] = []
        for key in keys:
            entry = _HELD.get((session, key))
            if entry is None:
                continue
            own, held = entry
            held[:] = [(t, v) for t, v in held if t is not token]
            if held:
                values.append((key, held[-1][1]))
            else:
                del _HELD[(session, key)]
                values.append((key, own))
        for key, value in values:
            try:
                if value is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, value)
            except Exception as err:  # noqa: BLE001 - a stopped session; keep the first error
                log.warning("sparkdedup: could not restore the session setting %s: %s", key, err)


#: A `limit(n).collect()` scans one partition, then four times more, and so on: a job each
#: round, and a search that finds nothing runs them all. Under this setting the first round
#: reads every partition: one job.
_LIMIT_FIRST_ROUND = {"spark.sql.limit.initialNumPartitions": str(1 << 30)}


def one_round_limit(spark: SparkSession):  # noqa: ANN201 - a context manager
    """Run the limited collects inside in one job over every partition, for searches that
    usually find nothing (a check's few examples of bad rows)."""
    return temporary_conf(spark, _LIMIT_FIRST_ROUND)


#: A query persisted under this setting is planned with adaptive execution as a written one
#: is, its last shuffle's small partitions merged. Spark otherwise keeps a cached query's
#: output partitioning: a persisted derived-id shuffle of a few dozen rows kept 200 partitions,
#: and every later stage ran 200 tasks.
_CACHED_AQE = "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning"


def persist_conf(spark: SparkSession) -> dict[str, str]:
    """The settings to persist a stage under (`_CACHED_AQE`): Spark 4 only. On Spark 3.5.0
    (and 3.4.0-3.4.1) the setting gives wrong join results (SPARK-45592), and 3.5.1 onwards
    never merges a cached query's last shuffle anyway; there, the workflows' own sizing
    (`partitions_for`) is what keeps small inputs to few tasks."""
    major = spark_major(spark)
    return {_CACHED_AQE: "true"} if major is not None and major >= 4 else {}


def shuffle_partitions(spark: SparkSession, partitions: int):  # noqa: ANN201 - a context manager
    """Plan the shuffles of the queries run inside with `partitions` partitions (adaptive
    execution may still merge small ones), then restore the session's settings."""
    return temporary_conf(spark, {key: str(int(partitions)) for key in _PARTITION_CONFS})


def arrow_batch_conf(spark: SparkSession, sizes: DataFrame | None = None) -> dict[str, str]:
    """The byte limit of Arrow batches for the Python UDFs, unless the session sets one.

    Spark 3.5 has no byte limit (``maxBytesPerBatch`` came with Spark 4.0): a batch holds
    ``maxRecordsPerBatch`` rows whatever their size. There, when `sizes` is given (one column:
    the bytes a row of the query brings to a batch, its texts), the rows per batch are cut to
    what keeps a batch of rows of the mean size seen at ARROW_BATCH_BYTES (`_rows_for_bytes`)."""
    settings: dict[str, str] = {}
    current = spark.conf.get(_ARROW_BYTES_CONF, None)
    if current is None or parse_bytes(current, _ARROW_BYTES_CONF) >= 2**31 - 1:
        settings[_ARROW_BYTES_CONF] = str(ARROW_BATCH_BYTES)
    major = spark_major(spark)
    if sizes is not None and major is not None and major < 4:
        rows = _rows_for_bytes(spark, sizes)
        if rows is not None:
            settings[_ARROW_ROWS_CONF] = str(rows)
    return settings


def text_sizes(df: DataFrame, text_col: str, per_row: int = 1) -> DataFrame:
    """`arrow_batch_conf`'s `sizes` for a query whose rows hold `per_row` texts of `df`'s
    `text_col` each."""
    return df.select(F.octet_length(named(text_col)) * F.lit(int(per_row)))


_ARROW_ROWS_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"
#: On Spark 3.5 the mean bytes per row are taken from at most this many rows of the query's
#: first partition.
SIZE_SAMPLE_ROWS = 1000
#: Logical plan nodes that need no shuffle: with only these, the first partition's first rows
#: are read alone (a plan with a join, an aggregate or a repartition would run its whole map
#: side first: there the session's rows per batch are kept).
_NARROW_NODES = frozenset(
    {
        "Project",
        "Filter",
        "LogicalRelation",
        "LogicalRDD",
        "InMemoryRelation",
        "HiveTableRelation",
        "DataSourceV2Relation",
        "DataSourceV2ScanRelation",
        "LocalRelation",
        "Range",
        "Union",
        "Sample",
        "Generate",
        "LocalLimit",
        "MapInPandas",
        "PythonMapInArrow",
        "MapInArrow",
        "BatchEvalPython",
        "ArrowEvalPython",
        "SerializeFromObject",
        "DeserializeToObject",
        "MapPartitions",
        "ExternalRDD",
    }
)


def spark_major(spark: SparkSession) -> int | None:
    """The session's Spark major version (the server's over Spark Connect); None if unknown."""
    try:
        return int(str(spark.version).split(".", 1)[0])
    except (ValueError, AttributeError):
        return None


#: Inputs Spark estimates at fewer bytes than this (the sum of its plan's leaves: files as
#: stored, in-memory data) are not sampled: even text compressed 16 times over fits one batch.
UNSAMPLED_BYTES = ARROW_BATCH_BYTES // 16


def _narrow_plan(sizes: DataFrame) -> bool:
    """Whether `sizes`'s optimised plan (persisted parts as they are cached) needs no shuffle,
    and reads at least UNSAMPLED_BYTES as Spark estimates them."""
    try:
        # (The optimised plan is made from the one with the persisted parts as cached.)
        pending = [sizes._jdf.queryExecution().optimizedPlan()]
        seen = stored = 0
        while pending:
            node = pending.pop()
            seen += 1
            name = str(node.nodeName())
            if name not in _NARROW_NODES or seen > 200 or node.subqueries().nonEmpty():
                return False  # (a subquery is a job of its own: an aggregate, a join)
            if name == "InMemoryRelation" and not node.cacheBuilder().isCachedColumnBuffersLoaded():
                return False  # persisted, not yet computed: reading it computes all of it
            children = node.children()
            if children.size() == 0:
                stored += int(str(node.stats().sizeInBytes()))
            pending.extend(children.apply(i) for i in range(children.size()))
        return stored >= UNSAMPLED_BYTES
    except Exception:  # noqa: BLE001 - Spark Connect (no plan to see) or another Spark
        return False


def _rows_for_bytes(spark: SparkSession, sizes: DataFrame) -> int | None:
    """Rows per Arrow batch for rows of the mean size of `sizes`'s first rows, when fewer than
    the session's ``maxRecordsPerBatch`` (None otherwise, or when those rows cannot be read
    alone: a plan with a shuffle, Spark Connect, an empty first partition).

    One small job reads the first SIZE_SAMPLE_ROWS rows of the first partition only. A
    corpus whose long documents come after its short ones is not seen as long: set the rows
    (README, "Memory per task")."""
    try:
        rows = int(spark.conf.get(_ARROW_ROWS_CONF, None) or 10_000)
    except ValueError:  # (Spark's own error comes with the stage's first query)
        return None
    if rows <= 0:  # Spark: no row limit
        rows = 2**31 - 1
    if not _narrow_plan(sizes):
        return None
    limit = SIZE_SAMPLE_ROWS

    def first_rows(rows_in: Iterator[Any]) -> list[tuple[int, int]]:
        total = count = 0
        for seen, row in enumerate(rows_in, 1):
            if row[0] is not None:  # (a null text is not sent as bytes)
                total += int(row[0])
                count += 1
            if seen >= limit:
                break
        return [(total, count)]

    rdd = sizes.rdd
    if rdd.getNumPartitions() == 0:
        return None
    try:
        ((total, count),) = spark.sparkContext.runJob(rdd, first_rows, [0])
    except Exception as err:  # noqa: BLE001 - the stage's own query says what is wrong
        log.debug("sparkdedup: the text sizes of the first rows could not be read: %s", err)
        return None
    if count == 0:
        return None
    mean = max(1, math.ceil(total / count))
    fit = max(1, ARROW_BATCH_BYTES // mean)
    if fit >= rows:
        return None
    log.info(
        "Spark %s has no byte limit on Arrow batches: %d rows per batch (was %d) for rows "
        "of %d bytes on average (the first %d rows)",
        spark.version,
        fit,
        rows,
        mean,
        count,
    )
    return fit


#: A small table is sent to every task that joins it (no shuffle of the large side) when its
#: hash table takes at most this many bytes (the Spark setting ``spark.sparkdedup.broadcastBytes``,
#: default 64 MiB): the driver builds that table, then serialises it.
BROADCAST_CONF = "spark.sparkdedup.broadcastBytes"
BROADCAST_BYTES = 64 * 1024**2
#: Bytes a row of one or two bigint keys takes in the hash table Spark broadcasts, as Spark's
#: own "data size" metric of the broadcast measures it (96 MiB for 651,124 rows, 128 MiB for
#: 1,257,839; its pages are allocated in powers of two): about three times the rows' own size.
RELATION_ROW_BYTES = 128
#: Without the setting, a broadcast hash table also takes at most this share of the smallest
#: JVM heap that holds it. In local mode with a 1 GiB heap, the 11M-document run's removal
#: (811,679 rows, 104 MB of hash table: a tenth of the heap) beside two tasks writing Parquet
#: ran the JVM out of memory; with a 1.5 GiB heap (a fifteenth) it passed.
HEAP_SHARE = 16
_DEFAULT_HEAP = "1g"


def jvm_bytes(text: str, name: str) -> int:
    """A JVM memory setting (``spark.driver.memory``): a size, or a bare number of MiB."""
    text = str(text).strip()
    return int(text) * 1024**2 if text.isdigit() else parse_bytes(text, name)


def smallest_heap(driver: str | None, executor: str | None, master: str | None) -> int:
    """Bytes of the smallest heap that holds a broadcast table: the driver's (it builds the
    table) and, unless in local mode (where the driver is the executors too), the executors'
    (each holds a copy); Spark's default 1g for a setting not given."""
    heaps = [jvm_bytes(driver or _DEFAULT_HEAP, "spark.driver.memory")]
    if not str(master or "").startswith("local"):
        heaps.append(jvm_bytes(executor or _DEFAULT_HEAP, "spark.executor.memory"))
    return min(heaps)


def session_heap(spark: SparkSession) -> int:
    """`smallest_heap` of the session's settings (1g for those it cannot read)."""

    def conf(key: str) -> str | None:
        try:
            return spark.conf.get(key, None)
        except Exception:  # noqa: BLE001 - a Connect server may not show its core settings
            return None

    master = conf("spark.master")
    return smallest_heap(conf("spark.driver.memory"), conf("spark.executor.memory"), master)


def broadcast_bytes(spark: SparkSession, *, removal: bool = False) -> int:
    """The largest hash table broadcast: ``spark.sparkdedup.broadcastBytes``, and for the
    removal (the ids or row keys to drop, against the whole corpus: its broadcast saves a
    shuffle of every row the run writes) twice that; 0 when the session turned broadcast joins
    off (``spark.sql.autoBroadcastJoinThreshold=-1``). Without the setting, both are also
    capped at 1/`HEAP_SHARE` of the smallest heap that holds the table (`session_heap`): a
    1g driver in local mode broadcasts up to 64 MiB, the removal included."""
    threshold = spark.conf.get("spark.sql.autoBroadcastJoinThreshold", "10m") or "10m"
    if threshold.strip() == "-1":
        return 0
    text = spark.conf.get(BROADCAST_CONF, None)
    if text is not None:
        limit = parse_bytes(text, BROADCAST_CONF)
        return 2 * limit if removal else limit
    limit = 2 * BROADCAST_BYTES if removal else BROADCAST_BYTES
    return min(limit, session_heap(spark) // HEAP_SHARE)


def broadcastable(spark: SparkSession, rows: int, *, removal: bool = False) -> bool:
    """Whether a table of `rows` narrow rows is broadcast to the tasks that join it: when its
    hash table (`RELATION_ROW_BYTES` a row) fits `broadcast_bytes`."""
    limit = broadcast_bytes(spark, removal=removal)
    return limit > 0 and rows * RELATION_ROW_BYTES <= limit


def join_hint(spark: SparkSession, rows: int) -> str:
    """The join strategy for a table of `rows` narrow rows that grows with the corpus (ids,
    groups, duplicates): a broadcast while its hash table fits `broadcast_bytes`, else a sort
    merge join, whose tasks' memory follows the partitions, not the table. Set explicitly,
    because Spark's own choice reads the size of the table's compressed Parquet files (a few
    times smaller than its hash table) and would broadcast hundreds of MiB from the driver."""
    return "broadcast" if broadcastable(spark, rows) else "merge"
