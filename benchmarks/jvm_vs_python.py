"""Benchmark of the fuzzy-dedup MinHash step: the JVM SQL functions against the Python path
(mapInArrow over the compiled numba kernel) on the same cached documents and the same session.

Two comparisons: signatures (`sparkdedup_minhash` against `minhash_signatures`), and what the
workflow needs, the LSH band keys of every document (`posexplode(sparkdedup_band_buckets(
sparkdedup_minhash(text), 20, 13))` against the fused `minhash_band_buckets`). Each run computes
everything and aggregates (count, bit_xor of xxhash64 of the rows); the two paths must give the
same aggregate, which also checks that they are bit-identical. One warm-up run per path (JIT /
numba compile, Python worker start) is not timed; the median of the timed runs is reported.

    .venv/bin/python benchmarks/jvm_vs_python.py --docs 20000 --doc-bytes 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def make_texts(n: int, doc_bytes: int, seed: int = 0) -> list[str]:
    """`n` documents of about `doc_bytes` characters of random lowercase words."""
    rnd = random.Random(seed)
    vocabulary = [
        "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10)))
        for _ in range(20000)
    ]
    texts = []
    for _ in range(n):
        words: list[str] = []
        size = 0
        while size < doc_bytes:
            w = rnd.choice(vocabulary)
            words.append(w)
            size += len(w) + 1
        texts.append(" ".join(words)[:doc_bytes])
    return texts


def _time(run: Any, repeats: int) -> tuple[list[float], Any]:
    result = run()  # warm-up, not timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        again = run()
        times.append(time.perf_counter() - start)
        if again != result:
            raise RuntimeError(f"results differ between runs: {again} != {result}")
    return times, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--doc-bytes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--use-64-bit-hash", action="store_true")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from sparkdedup.fuzzy.minhash import minhash_band_buckets, minhash_signatures
    from sparkdedup.jvm import configure_builder

    builder = (
        SparkSession.builder.master(args.master)
        .appName("sparkdedup-jvm-vs-python")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(args.partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "3g")
    )
    spark = configure_builder(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")

    texts = make_texts(args.docs, args.doc_bytes)
    docs = (
        spark.createDataFrame(list(enumerate(texts)), "id bigint, text string")
        .repartition(args.partitions)
        .cache()
    )
    docs.count()
    use64 = "true" if args.use_64_bit_hash else "false"

    def aggregate(signatures: Any) -> tuple[int, int]:
        row = signatures.agg(
            F.count("signature").alias("n"), F.bit_xor(F.xxhash64("signature")).alias("h")
        ).collect()[0]
        return int(row.n), int(row.h)

    def jvm_run() -> tuple[int, int]:
        return aggregate(
            docs.selectExpr("id", f"sparkdedup_minhash(text, 24, 260, 42, {use64}) AS signature")
        )

    def python_run() -> tuple[int, int]:
        return aggregate(minhash_signatures(docs, use_64_bit_hash=args.use_64_bit_hash))

    def aggregate_keys(keys: Any) -> tuple[int, int]:
        row = keys.agg(
            F.count("bucket").alias("n"), F.bit_xor(F.xxhash64("id", "band", "bucket")).alias("h")
        ).collect()[0]
        return int(row.n), int(row.h)

    def jvm_keys_run() -> tuple[int, int]:
        return aggregate_keys(
            docs.selectExpr(
                "id",
                f"posexplode(sparkdedup_band_buckets(sparkdedup_minhash(text, 24, 260, 42, "
                f"{use64}), 20, 13)) AS (band, bucket)",
            )
        )

    def python_keys_run() -> tuple[int, int]:
        return aggregate_keys(minhash_band_buckets(docs, use_64_bit_hash=args.use_64_bit_hash))

    # Other processes on the machine slow both paths; the load average says how busy it was.
    load_before = os.getloadavg()
    jvm_times, jvm_result = _time(jvm_run, args.repeats)
    py_times, py_result = _time(python_run, args.repeats)
    if jvm_result != py_result:
        raise RuntimeError(f"JVM and Python signatures differ: {jvm_result} != {py_result}")
    jvm_key_times, jvm_keys = _time(jvm_keys_run, args.repeats)
    py_key_times, py_keys = _time(python_keys_run, args.repeats)
    if jvm_keys != py_keys:
        raise RuntimeError(f"JVM and Python band keys differ: {jvm_keys} != {py_keys}")

    results = {
        "docs": args.docs,
        "doc_bytes": args.doc_bytes,
        "master": args.master,
        "partitions": args.partitions,
        "use_64_bit_hash": args.use_64_bit_hash,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "spark": spark.version,
        "jvm_seconds": jvm_times,
        "python_seconds": py_times,
        "jvm_docs_per_s": args.docs / statistics.median(jvm_times),
        "python_docs_per_s": args.docs / statistics.median(py_times),
        "jvm_band_keys_seconds": jvm_key_times,
        "python_band_keys_seconds": py_key_times,
        "jvm_band_keys_docs_per_s": args.docs / statistics.median(jvm_key_times),
        "python_band_keys_docs_per_s": args.docs / statistics.median(py_key_times),
        "identical": True,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(results, indent=2))
    print(
        f"\n| path | median s | docs/s |\n| --- | --- | --- |\n"
        f"| JVM sparkdedup_minhash | {statistics.median(jvm_times):.2f} | "
        f"{results['jvm_docs_per_s']:,.0f} |\n"
        f"| Python minhash_signatures (mapInArrow) | {statistics.median(py_times):.2f} | "
        f"{results['python_docs_per_s']:,.0f} |\n"
        f"| JVM band keys (sparkdedup_band_buckets) | {statistics.median(jvm_key_times):.2f} | "
        f"{results['jvm_band_keys_docs_per_s']:,.0f} |\n"
        f"| Python band keys (fused minhash_band_buckets) | "
        f"{statistics.median(py_key_times):.2f} | {results['python_band_keys_docs_per_s']:,.0f} |"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
