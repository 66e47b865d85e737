"""Stage bookkeeping shared by the workflows: run a stage once, log it, and cache it.

With a cache path, each stage is written as Parquet under ``<cache>/<stage>/`` together with a
fingerprint of everything it depends on; a rerun with the same fingerprint reads it back instead
of recomputing (resume), and a different fingerprint recomputes it. With a work directory (the
Python API's ``checkpoint_dir``) each stage is written under it too, without a fingerprint, and
the directory is removed when the runner is closed: nothing is cached or checkpointed, as
Databricks serverless needs. Without either, the stage is persisted in memory and disk (a lost
executor's part is recomputed from the lineage) until the workflow releases it, or the runner is
closed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from sparkdedup import __version__
from sparkdedup.compat import connect_35, is_connect
from sparkdedup.fs import delete, discard, exists, literal, read_text, write_text
from sparkdedup.sizing import persist_conf, shuffle_partitions, temporary_conf

log = logging.getLogger("sparkdedup")

_FINGERPRINT_FILE = "_sparkdedup_stage.json"
_ROWS = "_sparkdedup_rows"


#: DataFrames to unpersist at the next StageRunner (`release_later`): a garbage collector's
#: finalizer may run in the middle of a py4j call, so it only queues them.
_PENDING: list[DataFrame] = []


def release_later(df: DataFrame) -> None:
    """Unpersist `df` when the next sparkdedup call starts (safe from a finalizer)."""
    _PENDING.append(df)


def _release_pending() -> None:
    while _PENDING:
        df = _PENDING.pop()
        with contextlib.suppress(Exception):  # its session may be gone
            df.unpersist()


def _settings(conf: dict[str, str] | Callable[[], dict[str, str]] | None) -> dict[str, str]:
    return (conf() if callable(conf) else conf) or {}


class StageRunner:
    """Runs named stages, each at most once, and records their row counts and seconds."""

    def __init__(
        self, spark: SparkSession, cache_path: str | None = None, *, work_dir: str | None = None
    ) -> None:
        if cache_path and work_dir:
            raise ValueError("a StageRunner takes a cache path or a work directory, not both")
        _release_pending()
        self.spark = spark
        #: Resumable stages (a cache path), or stages written for this run alone (a work dir).
        self.resumable = bool(cache_path)
        root = cache_path or work_dir
        self.cache_path = root.rstrip("/") if root else None
        #: What this runner wrote under a work directory, by path: its schema (`close`).
        self._written: dict[str, StructType] = {}
        self.seconds: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self.resumed: list[str] = []
        #: Per stage, the values of the `metrics` its run asked for.
        self.observed: dict[str, dict[str, Any]] = {}
        self._persisted: dict[str, DataFrame] = {}
        self._work: dict[str, list[DataFrame]] = {}
        #: Checkpoint files of intermediate results (`owned`), deleted by `close`.
        self._checkpoints: list[str] = []
        #: The cached stages this run computed (not resumed), by path (`forget_computed`).
        self._computed: list[str] = []

    def owned(self, df: DataFrame) -> DataFrame:
        """`df`, an intermediate result this run made, whose checkpoint files (when it is a
        reliable checkpoint in the SparkContext's directory) are deleted by `close`: nothing
        the run no longer needs is left in a directory the user set for their own use."""
        path = checkpoint_file(df)
        if path is not None:
            self._checkpoints.append(path)
        return df

    def stage_path(self, name: str) -> str | None:
        return f"{self.cache_path}/{name}" if self.cache_path else None

    def run(
        self,
        name: str,
        fingerprint: dict[str, Any],
        compute: Callable[[], DataFrame],
        *,
        persist: bool = True,
        partitions: int | None = None,
        conf: dict[str, str] | Callable[[], dict[str, str]] | None = None,
        metrics: dict[str, Column] | None = None,
    ) -> DataFrame:
        """Return the stage's output, computed by `compute` or read back from the cache.

        Without a cache path the output is written under the work directory, else persisted
        (memory and disk), unless `persist` is False, for stages that are cheap to recompute
        (and may be read once the runner is closed). `partitions` sizes the shuffles of the
        stage's final query (`sparkdedup.sizing`); `conf` holds settings for its queries (or
        makes them, only when the stage is computed: they may cost a job).
        `metrics` (aggregate columns by name) are computed over the output and kept in
        ``observed[name]``: with a cache path they ride on the write job (an Observation) and
        are stored with the fingerprint, as is the row count, so neither costs a job of its
        own, on a resume neither.
        """
        start = time.perf_counter()
        path = self.stage_path(name)
        metrics = dict(metrics or {})
        # The package version and a digest of its code are part of every key: a cache written
        # by another release or another build of the same version (whose kernels or keep rules
        # may differ) is recomputed, never reused.
        key = json.dumps(
            dict(
                fingerprint,
                sparkdedup_version=__version__,
                sparkdedup_code=code_digest(),
                metrics=sorted(metrics),
            ),
            sort_keys=True,
            default=str,
        )
        stored = self._read_fingerprint(path) if path is not None and self.resumable else None
        resumed = stored is not None and stored.get("key") == key
        if resumed and self._computed:
            # A stage after one this run computed is computed too: its stored copy, of the
            # same parameters, may have been made from an earlier copy of that stage (a run of
            # other parameters stopped in between rewrote it), whose rows it would not match.
            log.info(
                "sparkdedup stage %s: not resumed, as %s was computed before it",
                name,
                self._computed[-1].rpartition("/")[2],
            )
            resumed = False
        if resumed:
            # With its schema given, reading it back lists the files but reads no footer.
            df = self.spark.read.schema(StructType.fromJson(stored["schema"])).parquet(
                literal(self.spark, path)
            )
            observed = stored["observed"]
            self.resumed.append(name)
            how = "resumed from cache"
        elif path is not None and (persist or self.resumable):
            with self._sized(partitions), temporary_conf(self.spark, _settings(conf)):
                out = compute()
                columns = [F.count(F.lit(1)).alias(_ROWS), *_named(metrics)]
                if connect_35(self.spark):  # no Observations: a job over the written stage
                    out.write.mode("overwrite").parquet(path)
                    written = self.spark.read.schema(out.schema).parquet(literal(self.spark, path))
                    observed = _plain(written.agg(*columns).first().asDict())
                else:
                    observation = Observation(f"sparkdedup_{name}_{uuid.uuid4().hex[:8]}")
                    out.observe(observation, *columns).write.mode("overwrite").parquet(path)
                    observed = _plain(observation.get)
            if self.resumable:
                self._write_fingerprint(path, key, observed, out.schema)
                self._computed.append(path)
            else:
                self._written[path] = out.schema
            df = self.spark.read.schema(out.schema).parquet(literal(self.spark, path))
            how = f"written to {path}"
        else:
            # A cached plan is planned when it is persisted: the settings must hold by then.
            settings = _settings(conf)
            if persist:
                settings = {**persist_conf(self.spark), **settings}
            with self._sized(partitions), temporary_conf(self.spark, settings):
                df = compute()
                if persist:
                    df = df.persist(StorageLevel.MEMORY_AND_DISK)
                    self._persisted[name] = df
                observed = {_ROWS: df.count()}
                if metrics:
                    observed.update(_plain(df.agg(*_named(metrics)).first().asDict()))
            how = "computed"
        rows = int(observed.pop(_ROWS))
        self.observed[name] = observed
        self.release_work(name)
        seconds = time.perf_counter() - start
        self.seconds[name] = round(seconds, 3)
        self.rows[name] = rows
        log.info("sparkdedup stage %-11s %10d rows %8.1f s  (%s)", name, rows, seconds, how)
        return df

    def _sized(self, partitions: int | None):  # noqa: ANN202 - a context manager
        from contextlib import nullcontext

        return shuffle_partitions(self.spark, partitions) if partitions else nullcontext()

    def timed(self, name: str, rows: int | None, step: Callable[[], Any]) -> Any:
        """Run a step that yields no table (a check over `rows` rows), recording and logging its
        seconds like a stage's. With `rows` None the step returns the row count it checked."""
        start = time.perf_counter()
        result = step()
        if rows is None:
            rows = int(result)
        seconds = time.perf_counter() - start
        self.seconds[name] = round(seconds, 3)
        self.rows[name] = rows
        log.info("sparkdedup stage %-11s %10d rows %8.1f s  (checked)", name, rows, seconds)
        return result

    def scratch(self, stage: str) -> str | None:
        """A directory for the intermediate results of `stage` (removed once the stage is
        written), or None without a cache path."""
        return f"{self.cache_path}/_work/{stage}" if self.cache_path else None

    def materialise(
        self, stage: str, label: str, df: DataFrame, partitions: int | None = None
    ) -> DataFrame:
        """Compute `df`, an intermediate result inside `stage`, before going on: written under
        the stage's scratch directory (reliable), else persisted. Released when the stage is
        done."""
        where = self.scratch(stage)
        settings = {} if where else persist_conf(self.spark)
        with self._sized(partitions), temporary_conf(self.spark, settings):
            if where is not None:
                df.write.mode("overwrite").parquet(f"{where}/{label}")
                # With its schema given, reading it back lists the files but reads no footer.
                out = self.spark.read.schema(df.schema).parquet(
                    literal(self.spark, f"{where}/{label}")
                )
                if not self.resumable:
                    self._written[f"{where}/{label}"] = df.schema
            else:
                out = persisted_now(df)
        self._work.setdefault(stage, []).append(out)
        return out

    def release_work(self, stage: str) -> None:
        for df in self._work.pop(stage, []):
            df.unpersist()
        where = self.scratch(stage)
        # A work directory is removed whole by `close` (over Spark Connect it may be out of
        # this machine's reach).
        if where is not None and self.resumable and exists(self.spark, where):
            delete(self.spark, where)

    def keep(self, name: str) -> DataFrame | None:
        """Hand a persisted stage over to the caller, who releases it: the runner no longer
        does (None when the stage is not persisted)."""
        return self._persisted.pop(name, None)

    def adopt(self, name: str, df: DataFrame) -> None:
        """Take a persisted DataFrame in as stage `name`'s, released with the others."""
        self._persisted[name] = df

    def release(self, *names: str) -> None:
        """Free the in-memory copies of stages no later stage reads (no-op for cached ones)."""
        for name in names:
            df = self._persisted.pop(name, None)
            if df is not None:
                df.unpersist()

    def unpersist(self) -> None:
        """Release the in-memory copies of every stage (no-op for cached stages)."""
        self.release(*list(self._persisted))
        for stage in list(self._work):
            self.release_work(stage)

    def __enter__(self) -> StageRunner:
        return self

    def close(self) -> None:
        """Release every persisted stage, and remove a work directory with what it holds and
        the checkpoint files of the intermediate results."""
        self.unpersist()
        checkpoints, self._checkpoints = self._checkpoints, []
        for path in checkpoints:
            delete(self.spark, path)
        if self.cache_path is not None and not self.resumable:
            written, self._written = self._written, {}
            discard(self.spark, self.cache_path, written)

    def __exit__(self, *exc: object) -> None:
        # Callers that need only a small result write it elsewhere or checkpoint it inside the
        # block; every stage is released on the way out, also when a stage failed.
        self.close()

    def forget_computed(self) -> None:
        """Make the cached stages this run computed unresumable (their fingerprints deleted):
        for a run whose input changed while it ran (`sparkdedup.cli`), whose stages may mix
        the input as it was with the input as it is, under the key of the input as it was. A
        rerun against the input restored as it was (files and times: the same key) would
        otherwise resume them. Stages resumed from an earlier run stay."""
        for path in self._computed:
            delete(self.spark, f"{path}/{_FINGERPRINT_FILE}")
        self._computed.clear()

    def _read_fingerprint(self, path: str) -> dict[str, Any] | None:
        """``{"key", "observed", "schema"}`` of a complete cached stage; None when there is none or it is
        unreadable (then the stage is recomputed)."""
        if not exists(self.spark, f"{path}/_SUCCESS"):
            return None
        text = read_text(self.spark, f"{path}/{_FINGERPRINT_FILE}")
        try:
            stored = json.loads(text) if text else None
        except ValueError:
            return None
        if not isinstance(stored, dict) or not isinstance(stored.get("observed"), dict):
            return None
        if _ROWS not in stored["observed"] or not isinstance(stored.get("schema"), dict):
            return None
        return stored

    def _write_fingerprint(
        self, path: str, key: str, observed: dict[str, Any], schema: StructType
    ) -> None:
        stored = {"key": key, "observed": observed, "schema": schema.jsonValue()}
        text = json.dumps(stored, sort_keys=True)
        write_text(self.spark, f"{path}/{_FINGERPRINT_FILE}", text)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.cache
def code_digest(root: str = _PACKAGE_DIR) -> str:
    """SHA-256 of the files of the package under `root` (its modules and the UDF jar, by
    relative path; compiled ``__pycache__`` left out), computed once per process: about
    0.7 MB, a few milliseconds. Part of every stage cache key."""
    digest = hashlib.sha256()
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).replace(os.sep, "/").encode() + b"\0")
            with open(path, "rb") as fh:
                digest.update(hashlib.sha256(fh.read()).digest())
    return digest.hexdigest()


def _named(metrics: dict[str, Column]) -> list[Column]:
    return [column.alias(name) for name, column in metrics.items()]


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Observed values as JSON numbers (a decimal sum as an int); a missing or null one as 0."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, Decimal):
            value = int(value)
        out[name] = 0 if value is None else value
    return out


def run_dir(checkpoint_dir: str | None) -> str | None:
    """A directory of its own under `checkpoint_dir` for the stages of one call of the Python
    API (a `StageRunner`'s ``work_dir``, removed when it closes), or None without one."""
    if checkpoint_dir is None:
        return None
    return f"{checkpoint_dir.rstrip('/')}/run-{uuid.uuid4().hex[:12]}"


def detach(df: DataFrame, checkpoint_dir: str | None = None) -> DataFrame:
    """A computed copy of a small result that outlives the stages it came from.

    Written under `checkpoint_dir` when given, else `computed_copy`. From a pyspark 3.5
    Connect client, which has no checkpoints, a persisted copy computed at once (a cached
    result that is computed whole stays when the cached stages its plan reads are freed).
    """
    spark = df.sparkSession
    if checkpoint_dir is not None:
        path = f"{checkpoint_dir.rstrip('/')}/result-{uuid.uuid4().hex[:12]}"
        df.write.parquet(path)
        return spark.read.parquet(literal(spark, path))
    if connect_35(spark):
        return persisted_now(df)
    try:
        return computed_copy(df)[0]
    except Exception as err:
        if not too_deep_to_checkpoint(err):
            raise
        # The server takes the plan; the result is small, and its persisted copy is computed
        # whole now, so it stays when the stages its plan reads are freed.
        log.warning(
            "sparkdedup: the result's plan is too deep for this Spark Connect client to "
            "checkpoint; it is persisted instead, its plan held by the server while the result "
            "is (megabytes for derived ids with verification, normalisation or distributed "
            "components, analysed again by each query that reads it): pass checkpoint_dir (a "
            "directory the server can write) to have the stages and the result written there"
        )
        return persisted_now(df)


def too_deep_to_checkpoint(err: BaseException) -> bool:
    """Whether `err` is a Spark Connect client refusing to build a checkpoint command for a
    deep plan: the client copies the plan into the command through the protobuf runtime's
    parser, which refuses more than 100 nested messages (the lineage of every stage of a run
    with derived ids, verification and normalisation), though the server takes such plans."""
    return type(err).__name__ == "DecodeError" and "MaxDepth" in str(err)


def checkpoint_file(df: DataFrame) -> str | None:
    """Where a classic session's reliable `DataFrame.checkpoint` wrote `df` (the directory of
    its RDD's checkpoint), else None (a local checkpoint, a persisted copy, Spark Connect)."""
    if is_connect(df.sparkSession):
        return None
    try:
        found = df._jdf.queryExecution().logical().rdd().getCheckpointFile()
    except Exception:  # noqa: BLE001 - a plan that is not a checkpoint's
        return None
    return str(found.get()) if found.isDefined() else None


def persisted_now(df: DataFrame) -> DataFrame:
    """`df` persisted and computed at once; freed again when the computation fails (a
    cancelled job, an interrupt), so that no cached plan outlives the call that made it."""
    out = df.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        out.count()
    except BaseException:
        with contextlib.suppress(Exception):  # a session gone too: the first error tells
            out.unpersist()
        raise
    return out


def computed_copy(df: DataFrame) -> tuple[DataFrame, bool]:
    """`df` computed now, under a plan of its own that no longer holds its lineage, and
    whether that copy is persisted (its holder unpersists it).

    Persisting does not cut a plan: a loop that persists each step and builds the next from it
    plans the whole chain again at every step, which doubles each time when a step reads the
    one before it twice. The copy is checkpointed to the SparkContext's checkpoint directory
    when one is set (reliable), else persisted over its RDD (a lost executor's part is
    recomputed from the lineage). Over Spark Connect it is checkpointed when the server has
    ``spark.checkpoint.dir``, else locally checkpointed (lost with an executor: pass a
    directory of one's own for reliable copies). Not for a pyspark 3.5 Connect client, which
    has no checkpoints. Over Connect, a plan too deep for the client to put in a checkpoint
    command raises `too_deep_to_checkpoint`'s error.
    """
    spark = df.sparkSession
    if is_connect(spark):
        if spark.conf.get("spark.checkpoint.dir", None):
            return df.checkpoint(eager=True), False
        return df.localCheckpoint(eager=True), False
    if spark.sparkContext.getCheckpointDir() is not None:
        return df.checkpoint(eager=True), False
    # The same rows over the result's RDD: a plan that no longer names the stages.
    jdf = spark._jsparkSession.createDataFrame(df._jdf.rdd(), df._jdf.schema())
    return persisted_now(DataFrame(jdf, spark)), True
