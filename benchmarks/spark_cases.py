"""Spark cases on the same local master: sparkdedup end to end, and Spark MLlib's MinHashLSH.

Both read the corpus from Parquet, start timing after the SparkSession is up and an untimed
warm-up on a few hundred documents (JVM JIT, Python worker start, numba cache load), and stop
when the duplicates are on the driver. Between repeats the session's cache is cleared, so a
repeat never reuses a stage that an earlier one left persisted.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import sys
import time
from typing import Any

from benchmarks.corpus import load_truth
from benchmarks.groups import duplicates_from_pairs, recall_of_similar_pairs
from benchmarks.memory import PeakRSS
from benchmarks.sparkjobs import StageTagger, read_event_log, summarize_jobs

WARMUP_DOCS = 300
CHAR_NGRAMS = 24


def spark_session(spec: dict[str, Any], app: str, event_log_dir: str | None = None):  # noqa: ANN201
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(spec["master"])
        .appName(app)
        .config("spark.driver.memory", spec["driver_memory"])
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.local.dir", os.path.join(spec["scratch"], "spark-local"))
    )
    if spec.get("shuffle_partitions"):
        builder = builder.config("spark.sql.shuffle.partitions", str(spec["shuffle_partitions"]))
    for key, value in (spec.get("spark_conf") or {}).items():
        builder = builder.config(key, value)
    if event_log_dir is not None:
        shutil.rmtree(event_log_dir, ignore_errors=True)
        os.makedirs(event_log_dir)
        builder = (
            builder.config("spark.eventLog.enabled", "true")
            .config("spark.eventLog.dir", event_log_dir)
            .config("spark.eventLog.compress", "false")
            .config("spark.eventLog.rolling.enabled", "false")
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir(os.path.join(spec["scratch"], "checkpoints"))
    return spark


def _conf(spark, spec: dict[str, Any]) -> dict[str, str]:  # noqa: ANN001
    keys = (
        "spark.master",
        "spark.driver.memory",
        "spark.sql.shuffle.partitions",
        "spark.sql.adaptive.enabled",
        "spark.sql.execution.arrow.maxRecordsPerBatch",
    )
    return {k: spark.conf.get(k, None) for k in keys} | dict(spec.get("spark_conf") or {})


def e2e_sparkdedup(spec: dict[str, Any]) -> dict[str, Any]:
    """`sparkdedup.fuzzy_duplicates` on the corpus DataFrame, duplicates collected."""
    from sparkdedup import FuzzyConfig, fuzzy_duplicates
    from sparkdedup.evaluate import evaluate

    meta = spec["corpus"]
    event_dir = os.path.join(spec["scratch"], "eventlog")
    logger = logging.getLogger("sparkdedup")
    logger.setLevel(logging.INFO)
    with PeakRSS() as mem:
        spark = spark_session(spec, "bench-sparkdedup", event_dir)
        config = FuzzyConfig(text_col="text", id_col="id")
        started = time.perf_counter()
        if spec.get("warmup", True):
            sample = spark.read.parquet(meta["docs_path"]).limit(WARMUP_DOCS)
            fuzzy_duplicates(sample, config).toPandas()
            spark.catalog.clearCache()
        warmup = time.perf_counter() - started
        times, taggers, result = [], [], None
        for r in range(int(spec["repeats"])):
            tagger = StageTagger(spark.sparkContext, f"repeat-{r}")
            logger.addHandler(tagger)
            try:
                started = time.perf_counter()
                docs = spark.read.parquet(meta["docs_path"])
                result = fuzzy_duplicates(docs, config).toPandas()
                times.append(time.perf_counter() - started)
            finally:
                logger.removeHandler(tagger)
                spark.sparkContext.setJobDescription(None)
            taggers.append(tagger)
            spark.catalog.clearCache()
        conf = _conf(spark, spec)
        spark.stop()
    events = read_event_log(event_dir)
    jobs = [summarize_jobs(events, f"repeat-{r}", t.names) for r, t in enumerate(taggers)]
    median = statistics.median(times)
    quality = evaluate(result, load_truth(meta))
    return {
        "seconds": times,
        "median_seconds": median,
        "warmup_seconds": warmup,
        "peak_rss_mib": mem.peak_mib,
        "peak_rss_by_process_mib": mem.peak_breakdown_mib,
        "docs_per_s": meta["n_docs"] / median,
        "mchar_per_s": meta["chars"] / median / 1e6,
        "recall": quality["recall"],
        "precision": quality["precision"],
        **recall_of_similar_pairs(result, meta.get("similar_pairs_path")),
        "quality": quality,
        "stage_seconds": [t.seconds for t in taggers],
        "stage_rows": taggers[0].rows if taggers else {},
        "spark_jobs": jobs,
        "spark_conf": conf,
        "notes": "fuzzy_duplicates(spark.read.parquet(...)).toPandas(); Curator defaults",
    }


def _shingle_column(text_col: str):  # noqa: ANN202
    """24-code-point shingles in Spark SQL, in one regex pass.

    A lookahead match at every position captures the next 24 code points; a position inside
    a UTF-16 surrogate pair (an emoji) would start a shingle with half a character, so a
    shingle must start on a code point that is not a lone surrogate (\\P{Cs}). Texts shorter
    than 24 code points are one shingle, as in sparkdedup.
    """
    from pyspark.sql import functions as F

    pattern = rf"(?s)(?=(\P{{Cs}}.{{{CHAR_NGRAMS - 1}}}))"
    windows = F.regexp_extract_all(F.col(text_col), F.lit(pattern), F.lit(1))
    return F.when(F.size(windows) == 0, F.array(F.col(text_col))).otherwise(windows)


def _mllib_pairs(spark, docs, tables: int, threshold: float):  # noqa: ANN001, ANN202
    from pyspark import StorageLevel
    from pyspark.ml.feature import HashingTF, MinHashLSH
    from pyspark.sql import functions as F

    shingled = docs.where(F.length("text") > 0).select("id", _shingle_column("text").alias("sh"))
    features = HashingTF(inputCol="sh", outputCol="v", numFeatures=1 << 22, binary=True)
    vectors = features.transform(shingled).select("id", "v")
    model = MinHashLSH(inputCol="v", outputCol="h", numHashTables=tables, seed=42).fit(vectors)
    hashed = model.transform(vectors).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        pairs = (
            model.approxSimilarityJoin(hashed, hashed, threshold, distCol="distance")
            .where(F.col("datasetA.id") < F.col("datasetB.id"))
            .select(F.col("datasetA.id").alias("a"), F.col("datasetB.id").alias("b"))
            .toPandas()
        )
    finally:
        hashed.unpersist()
    return duplicates_from_pairs(pairs["a"].to_numpy(), pairs["b"].to_numpy()), len(pairs)


def e2e_mllib(spec: dict[str, Any]) -> dict[str, Any]:
    """HashingTF over 24-char shingles -> MinHashLSH -> approxSimilarityJoin -> groups."""
    from sparkdedup.evaluate import evaluate

    meta = spec["corpus"]
    tables, threshold = int(spec["tables"]), float(spec["threshold"])
    with PeakRSS() as mem:
        spark = spark_session(spec, "bench-mllib")
        started = time.perf_counter()
        if spec.get("warmup", True):
            sample = spark.read.parquet(meta["docs_path"]).limit(WARMUP_DOCS)
            _mllib_pairs(spark, sample, tables, threshold)
        warmup = time.perf_counter() - started
        times, result, n_pairs = [], None, 0
        for _ in range(int(spec["repeats"])):
            started = time.perf_counter()
            result, n_pairs = _mllib_pairs(
                spark, spark.read.parquet(meta["docs_path"]), tables, threshold
            )
            times.append(time.perf_counter() - started)
            spark.catalog.clearCache()
        conf = _conf(spark, spec)
        spark.stop()
    median = statistics.median(times)
    quality = evaluate(result, load_truth(meta))
    return {
        "seconds": times,
        "median_seconds": median,
        "warmup_seconds": warmup,
        "peak_rss_mib": mem.peak_mib,
        "peak_rss_by_process_mib": mem.peak_breakdown_mib,
        "docs_per_s": meta["n_docs"] / median,
        "mchar_per_s": meta["chars"] / median / 1e6,
        "recall": quality["recall"],
        "precision": quality["precision"],
        **recall_of_similar_pairs(result, meta.get("similar_pairs_path")),
        "quality": quality,
        "similar_pairs": n_pairs,
        "spark_conf": conf,
        "notes": (
            f"HashingTF(2^22, binary) -> MinHashLSH({tables} tables) -> "
            f"approxSimilarityJoin(distance < {threshold})"
        ),
    }
