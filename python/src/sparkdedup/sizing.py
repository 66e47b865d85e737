"""Shuffle sizing: every shuffle the workflows own is cut into partitions of a target size.

A shuffle of about B bytes gets ``ceil(B / target)`` partitions (target: the Spark setting
``spark.sparkdedup.partitionBytes``, default 128 MiB), but at least as many as the cluster has
cores once there are 8 MiB or more to spread: a few dozen documents take one task, a corpus of
10^10 documents tens of thousands. Memory per task then follows the target, not the corpus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from sparkdedup.errors import ConfigError

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


@contextmanager
def temporary_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Run the queries inside with `settings`, then restore the session's values."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def shuffle_partitions(spark: SparkSession, partitions: int):  # noqa: ANN201 - a context manager
    """Plan the shuffles of the queries run inside with `partitions` partitions (adaptive
    execution may still merge small ones), then restore the session's settings."""
    return temporary_conf(spark, {key: str(int(partitions)) for key in _PARTITION_CONFS})


def arrow_batch_conf(spark: SparkSession) -> dict[str, str]:
    """The byte limit of Arrow batches for the Python UDFs, unless the session sets one."""
    current = spark.conf.get(_ARROW_BYTES_CONF, None)
    if current is not None and parse_bytes(current, _ARROW_BYTES_CONF) < 2**31 - 1:
        return {}
    return {_ARROW_BYTES_CONF: str(ARROW_BATCH_BYTES)}


#: A small table is sent to every task that joins it (no shuffle of the large side) up to this
#: many bytes: the driver builds the broadcast, a few times this size at the most.
BROADCAST_BYTES = 64 * 1024**2


def broadcastable(spark: SparkSession, rows: int, row_bytes: int) -> bool:
    """Whether `rows` rows of `row_bytes` bytes are broadcast to the tasks that join them:
    when they fit `BROADCAST_BYTES` and the session has not turned broadcast joins off."""
    threshold = spark.conf.get("spark.sql.autoBroadcastJoinThreshold", "10m") or "10m"
    return threshold.strip() != "-1" and rows * row_bytes <= BROADCAST_BYTES
