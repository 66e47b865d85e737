"""Checks behind the Spark review of the fuzzy workflow (not part of `make bench`).

    python -m benchmarks.workflow_review --docs 10000 [--spark-conf 'k=v;k=v']

On a cached benchmark corpus, in one local[2] session, prints JSON with:
1. `leftover_cache`: the persisted RDDs and their size after `fuzzy_duplicates` returns, and the
   time of a second identical call (which finds the first call's stages in Spark's cache);
2. `lsh_then_edges` vs `fused_edges`: the current LSH step (count per bucket, persisted) followed
   by the edges step, against one window that takes the smallest id per bucket straight from
   the band keys; both start from the same persisted band keys and must give the same edges.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any

from benchmarks.corpus import ensure_corpus
from benchmarks.settings import BENCH_DIR
from benchmarks.spark_cases import spark_session


def _storage(spark) -> dict[str, Any]:  # noqa: ANN001
    infos = spark.sparkContext._jsc.sc().getRDDStorageInfo()
    return {
        "persisted_rdds": len(infos),
        "memory_mib": round(sum(i.memSize() for i in infos) / 2**20, 1),
        "disk_mib": round(sum(i.diskSize() for i in infos) / 2**20, 1),
    }


def leftover_cache(spark, docs_path: str) -> dict[str, Any]:  # noqa: ANN001
    from sparkdedup import FuzzyConfig, fuzzy_duplicates

    config = FuzzyConfig(text_col="text", id_col="id")
    spark.catalog.clearCache()
    before = _storage(spark)
    times = []
    for _ in range(2):
        started = time.perf_counter()
        fuzzy_duplicates(spark.read.parquet(docs_path), config).toPandas()
        times.append(round(time.perf_counter() - started, 2))
    after = _storage(spark)
    spark.catalog.clearCache()
    return {"before": before, "after_two_calls": after, "call_seconds": times}


def _current(keys):  # noqa: ANN001, ANN202
    from sparkdedup.fuzzy.edges import bucket_edges
    from sparkdedup.fuzzy.lsh import lsh_buckets

    lsh = lsh_buckets(keys).persist()
    lsh.count()
    edges = bucket_edges(lsh).persist()
    edges.count()
    return edges, [lsh, edges]


def _fused(keys):  # noqa: ANN001, ANN202
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window = Window.partitionBy("band", "bucket")
    edges = (
        keys.withColumn("src", F.min("id").over(window))
        .filter(F.col("id") != F.col("src"))
        .select("src", F.col("id").alias("dst"))
        .distinct()
        .persist()
    )
    edges.count()
    return edges, [edges]


def lsh_edges(spark, docs_path: str, repeats: int) -> dict[str, Any]:  # noqa: ANN001
    from sparkdedup.fuzzy.minhash import minhash_band_buckets

    docs = spark.read.parquet(docs_path)
    keys = minhash_band_buckets(docs, text_col="text", id_col="id").persist()
    n_keys = keys.count()
    times: dict[str, list[float]] = {"lsh_then_edges": [], "fused_edges": []}
    edge_sets = {}
    for _ in range(repeats):
        for name, build in (("lsh_then_edges", _current), ("fused_edges", _fused)):
            started = time.perf_counter()
            edges, persisted = build(keys)
            times[name].append(round(time.perf_counter() - started, 2))
            edge_sets[name] = {(r["src"], r["dst"]) for r in edges.collect()}
            for df in persisted:
                df.unpersist()
    keys.unpersist()
    same = edge_sets["lsh_then_edges"] == edge_sets["fused_edges"]
    return {
        "band_key_rows": n_keys,
        "edges": len(edge_sets["fused_edges"]),
        "same_edges": same,
        "seconds": times,
        "median_seconds": {k: statistics.median(v) for k, v in times.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--spark-conf", default="", help="'k=v;k=v'")
    args = parser.parse_args(argv)
    corpus = ensure_corpus(os.path.join(BENCH_DIR, "work"), args.docs, args.seed)
    conf = dict(p.split("=", 1) for p in args.spark_conf.split(";") if p.strip())
    scratch = tempfile.mkdtemp(prefix="sparkdedup-review-")
    spec = {"master": args.master, "driver_memory": "4g", "scratch": scratch, "spark_conf": conf}
    spark = spark_session(spec, "sparkdedup-workflow-review")
    try:
        report = {
            "docs": args.docs,
            "spark_conf": conf,
            "leftover_cache": leftover_cache(spark, corpus["docs_path"]),
            "lsh_edges": lsh_edges(spark, corpus["docs_path"], args.repeats),
        }
    finally:
        spark.stop()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
