"""How much `compact_index` saves the reads of an index of many segments.

An index of SEGMENTS segments of DOCS synthetic rows each (ids, and xxhash64 values for the text
hash and 20 band buckets: the index's own layout) is built with `IndexWriter`, one commit a
segment, as a run a day appending to it would leave it. Then a read of three of its columns
(what a run against it reads: ids and band buckets) is timed before and after the compaction
(the median of 3, after one untimed read), and the compaction itself once.

    python -m benchmarks.index_compaction --segments 120 --docs 800
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sparkdedup.config import FuzzyConfig
from sparkdedup.fuzzy.index import FuzzyIndex, IndexWriter, compact_index


def _rows(spark: SparkSession, segment: int, docs: int) -> DataFrame:
    names = ["t1", "t2", *[f"b{i}" for i in range(20)]]
    ids = spark.range(segment * docs, (segment + 1) * docs, numPartitions=1)
    return ids.select("id", *[F.xxhash64("id", F.lit(k)).alias(n) for k, n in enumerate(names)])


def _read_seconds(spark: SparkSession, path: str) -> float:
    start = time.perf_counter()
    table = FuzzyIndex.open(spark, path).table(["id", "b0", "b7"])
    table.agg(F.countDistinct("b0"), F.max("b7"), F.count("id")).collect()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=120)
    parser.add_argument("--docs", type=int, default=800, help="documents a segment")
    args = parser.parse_args()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    path = tempfile.mkdtemp(prefix="sparkdedup-compaction-") + "/index"
    config = FuzzyConfig(id_col="id")
    start = time.perf_counter()
    for segment in range(args.segments):
        writer = IndexWriter(spark, path, config, append=segment > 0)
        writer.stage(_rows(spark, segment, args.docs))
        writer.commit()
    print(f"built {args.segments} segments in {time.perf_counter() - start:.1f} s", flush=True)
    _read_seconds(spark, path)
    before = [_read_seconds(spark, path) for _ in range(3)]
    start = time.perf_counter()
    manifest = compact_index(spark, path)
    took = time.perf_counter() - start
    after = [_read_seconds(spark, path) for _ in range(3)]
    print(
        f"{manifest['documents']:,} documents: a read of the index in {args.segments} segments "
        f"{statistics.median(before):.2f} s (runs {', '.join(f'{s:.2f}' for s in before)}), "
        f"compaction {took:.1f} s, the same read of its {len(manifest['segments'])} segment "
        f"{statistics.median(after):.2f} s (runs {', '.join(f'{s:.2f}' for s in after)})"
    )
    spark.stop()


if __name__ == "__main__":
    main()
