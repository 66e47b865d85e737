"""Stage bookkeeping shared by the workflows: run a stage once, log it, and cache it.

With a cache path, each stage is written as Parquet under ``<cache>/<stage>/`` together with a
fingerprint of everything it depends on; a rerun with the same fingerprint reads it back instead
of recomputing (resume), and a different fingerprint recomputes it. Without a cache path the
stage is persisted in memory and disk for the rest of the run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from sparkdedup import __version__
from sparkdedup.fs import path_exists, read_text, write_text

log = logging.getLogger("sparkdedup")

_FINGERPRINT_FILE = "_sparkdedup_stage.json"


class StageRunner:
    """Runs named stages, each at most once, and records their row counts and seconds."""

    def __init__(self, spark: SparkSession, cache_path: str | None = None) -> None:
        self.spark = spark
        self.cache_path = cache_path.rstrip("/") if cache_path else None
        self.seconds: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self.resumed: list[str] = []
        self._persisted: list[DataFrame] = []

    def stage_path(self, name: str) -> str | None:
        return f"{self.cache_path}/{name}" if self.cache_path else None

    def run(
        self,
        name: str,
        fingerprint: dict[str, Any],
        compute: Callable[[], DataFrame],
        *,
        persist: bool = True,
    ) -> DataFrame:
        """Return the stage's output, computed by `compute` or read back from the cache.

        Without a cache path the output is persisted (memory and disk) unless `persist` is
        False, for stages that are cheap to recompute or already checkpointed.
        """
        start = time.perf_counter()
        path = self.stage_path(name)
        # The package version is part of every key: a cache written by another release (whose
        # kernels may differ) is recomputed, never reused.
        key = json.dumps(
            dict(fingerprint, sparkdedup_version=__version__), sort_keys=True, default=str
        )
        if path is not None and self._read_fingerprint(path) == key:
            df = self.spark.read.parquet(path)
            rows = df.count()
            self.resumed.append(name)
            how = "resumed from cache"
        elif path is not None:
            compute().write.mode("overwrite").parquet(path)
            self._write_fingerprint(path, key)
            df = self.spark.read.parquet(path)
            rows = df.count()
            how = f"written to {path}"
        else:
            df = compute()
            if persist:
                df = df.persist(StorageLevel.MEMORY_AND_DISK)
                self._persisted.append(df)
            rows = df.count()
            how = "computed"
        seconds = time.perf_counter() - start
        self.seconds[name] = round(seconds, 3)
        self.rows[name] = rows
        log.info("sparkdedup stage %-11s %10d rows %8.1f s  (%s)", name, rows, seconds, how)
        return df

    def unpersist(self) -> None:
        """Release the in-memory copies of stages (no-op for cached stages)."""
        for df in self._persisted:
            df.unpersist()
        self._persisted.clear()

    def __enter__(self) -> StageRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        # Callers that need only a small result checkpoint it inside the block; every persisted
        # stage is released on the way out, also when a stage failed.
        self.unpersist()

    def _read_fingerprint(self, path: str) -> str | None:
        if not path_exists(self.spark, f"{path}/_SUCCESS"):
            return None
        text = read_text(self.spark, f"{path}/{_FINGERPRINT_FILE}")
        return None if text is None else text.strip()

    def _write_fingerprint(self, path: str, key: str) -> None:
        write_text(self.spark, f"{path}/{_FINGERPRINT_FILE}", key)
