"""Workloads run both on a classic session and on a Spark Connect session (test_connect.py):
each returns plain, sorted Python values, so the two sessions' results compare with ==.

    python tests/connect_cases.py local[2]     # runs them over a local Connect server, prints JSON
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

TEXTS = [
    f"document {i} about topic {i % 5}: " + " ".join(f"w{(i * 7 + j) % 50}" for j in range(40))
    for i in range(60)
]


def _corpus(spark: Any) -> Any:
    rows = [(i, t) for i, t in enumerate(TEXTS)]
    # Planted: exact copies of 0-4 and near copies (one word changed) of 10-14.
    rows += [(100 + i, TEXTS[i]) for i in range(5)]
    rows += [(200 + i, TEXTS[10 + i].replace(" w", " x", 1)) for i in range(5)]
    return spark.createDataFrame(rows, "id long, text string")


def _embeddings(spark: Any) -> Any:
    rows = []
    for i in range(40):
        v = [math.sin(i * 1.7 + k) for k in range(8)]
        rows.append((i, v))
    rows += [(100 + i, rows[i][1]) for i in range(4)]  # exact copies
    return spark.createDataFrame(rows, "id long, emb array<double>")


def run_all(spark: Any) -> dict[str, Any]:
    import sparkdedup
    from pyspark.sql import functions as F
    from sparkdedup.ml import FuzzyDeduplicator

    docs = _corpus(spark)
    out: dict[str, Any] = {}
    dups = sparkdedup.fuzzy_duplicates(docs, id_col="id", device="cpu")
    out["fuzzy"] = sorted((r["id"], r["kept_id"]) for r in dups.collect())
    kept = sparkdedup.remove_duplicates(docs, dups, id_col="id")
    out["fuzzy_kept"] = sorted(r["id"] for r in kept.select("id").collect())

    # Derived ids (no id column): the exact copies go, matched through the rows' content.
    texts = docs.select("text")
    derived = sparkdedup.fuzzy_duplicates(texts, device="cpu")
    left = sparkdedup.remove_duplicates(texts, derived)
    out["derived_kept"] = sorted(r["text"] for r in left.collect())
    out["derived_removed"] = derived.count()

    model = FuzzyDeduplicator(idCol="id", device="cpu")
    out["transformer_kept"] = sorted(r["id"] for r in model.transform(docs).select("id").collect())

    emb = _embeddings(spark)
    sem = sparkdedup.semantic_duplicates(
        emb, embedding_col="emb", id_col="id", n_clusters=3, eps=0.01, device="cpu"
    )
    out["semantic"] = sorted((r["id"], r["max_id"]) for r in sem.select("id", "max_id").collect())
    out["semantic_scores_close_to_1"] = all(
        r["s"] > 0.99 for r in sem.select(F.col("cosine_sim_score").alias("s")).collect()
    )
    return out


def main(remote: str) -> None:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(remote).getOrCreate()
    try:
        print(json.dumps({"session": type(spark).__module__, **run_all(spark)}))
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "local[2]")
