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


def run_all(spark: Any, work: str) -> dict[str, Any]:
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
    # The pyspark.ml wrappers saved twice (the second time over the first) and loaded back.
    from sparkdedup.ml import SemanticDeduplicator, SemanticDeduplicatorModel

    fitted = SemanticDeduplicator(embeddingCol="emb", idCol="id", nClusters=3, device="cpu").fit(
        emb
    )
    for name, stage in (("fuzzy", model), ("semantic", fitted)):
        for _ in range(2):
            stage.write().overwrite().save(f"{work}/{name}-model")
    loaded = FuzzyDeduplicator.load(f"{work}/fuzzy-model")
    out["transformer_loaded_kept"] = sorted(
        r["id"] for r in loaded.transform(docs).select("id").collect()
    )
    semantic_model = SemanticDeduplicatorModel.load(f"{work}/semantic-model")
    out["semantic_model_kept"] = sorted(
        r["id"] for r in semantic_model.transform(emb).select("id").collect()
    )
    out["semantic_scores_close_to_1"] = all(
        r["s"] > 0.99 for r in sem.select(F.col("cosine_sim_score").alias("s")).collect()
    )
    return out


def cli_case(work: str, label: str, session_args: list[str]) -> dict[str, Any]:
    """The fuzzy CLI on a JSONL corpus (with planted exact copies), with user ids and with
    derived ids: its duplicates, its kept records and its counts, read back without Spark."""
    import glob
    import os

    import pyarrow.parquet as pq
    from sparkdedup import cli

    corpus = os.path.join(work, "in.jsonl")
    if not os.path.exists(corpus):
        with open(corpus, "w", encoding="utf-8") as fh:
            for i, text in enumerate(TEXTS):
                fh.write(json.dumps({"id": i, "text": text}) + "\n")
            for i in range(5):
                fh.write(json.dumps({"id": 100 + i, "text": TEXTS[i]}) + "\n")
    out: dict[str, Any] = {}
    for ids in ("user", "derived"):
        target = os.path.join(work, f"out-{label}-{ids}")
        argv = ["fuzzy", "--input", corpus, "--input-format", "jsonl", "--output", target]
        argv += ["--id-col", "id"] if ids == "user" else []
        assert cli.main([*argv, *session_args]) == 0, f"CLI failed ({label}, {ids} ids)"
        with open(os.path.join(target, "stats.json"), encoding="utf-8") as fh:
            stats = json.load(fh)
        kept = []
        for path in glob.glob(os.path.join(target, "deduplicated", "part-*")):
            with open(path, encoding="utf-8") as fh:
                kept += [line.rstrip("\n") for line in fh if line.strip()]
        out[ids] = {
            "removed": stats["removed_docs"],
            "kept": stats["kept_docs"],
            "kept_records": sorted(kept),
        }
        if ids == "user":
            table = pq.read_table(os.path.join(target, "duplicates"))
            out[ids]["duplicates"] = sorted(
                zip(
                    table.column("id").to_pylist(), table.column("kept_id").to_pylist(), strict=True
                )
            )
    out["against"] = against_case(work, label, session_args)
    out["parquet_missing_text"] = parquet_missing_text_case(work, label, session_args)
    return out


def parquet_missing_text_case(work: str, label: str, session_args: list[str]) -> list[Any]:
    """The CLI on Parquet files one of which lacks the text column (checked on the final
    write's observed metrics) while another has null texts: its exit code, and whether its
    error names the missing column."""
    import contextlib
    import io
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq
    from sparkdedup import cli

    corpus = os.path.join(work, "pq")
    if not os.path.exists(corpus):
        os.makedirs(corpus)
        texts = [None if i % 4 == 0 else t for i, t in enumerate(TEXTS)]
        pq.write_table(
            pa.table({"id": list(range(len(texts))), "text": texts}), f"{corpus}/a.parquet"
        )
        pq.write_table(
            pa.table({"id": [500, 501], "body": ["x y z", "u v w"]}), f"{corpus}/b.parquet"
        )
    target = os.path.join(work, f"out-{label}-pq")
    argv = ["fuzzy", "--input", corpus, "--input-format", "parquet", "--id-col", "id"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main([*argv, "--output", target, *session_args])
    return [code, "column 'text' is missing from some input files: " in err.getvalue()]


def against_case(work: str, label: str, session_args: list[str]) -> dict[str, Any]:
    """Incremental dedup through the CLI: TEXTS indexed (``--index-out``), then new documents
    (exact copies of 0-4 and a new text) deduplicated ``--against`` that index, whose index
    gains a segment; the removals, their counts and the index's documents after the update."""
    import os

    import pyarrow.parquet as pq
    from sparkdedup import cli

    old, new = os.path.join(work, "old.jsonl"), os.path.join(work, "new.jsonl")
    if not os.path.exists(new):
        with open(old, "w", encoding="utf-8") as fh:
            for i, text in enumerate(TEXTS):
                fh.write(json.dumps({"id": i, "text": text}) + "\n")
        with open(new, "w", encoding="utf-8") as fh:
            for i in range(5):
                fh.write(json.dumps({"id": 100 + i, "text": TEXTS[i]}) + "\n")
            fh.write(json.dumps({"id": 300, "text": "a text of its own " * 8}) + "\n")
    index = os.path.join(work, f"index-{label}")
    common = ["--input-format", "jsonl", "--id-col", "id", "--index-out", index]
    runs = [
        ["fuzzy", "--input", old, "--output", os.path.join(work, f"old-{label}"), *common],
        [
            *["fuzzy", "--input", new, "--output", os.path.join(work, f"new-{label}")],
            *[*common, "--against", index],
        ],
    ]
    for argv in runs:
        assert cli.main([*argv, *session_args]) == 0, f"CLI failed ({label}, {argv[2]})"
    target = os.path.join(work, f"new-{label}")
    with open(os.path.join(target, "stats.json"), encoding="utf-8") as fh:
        stats = json.load(fh)
    table = pq.read_table(os.path.join(target, "duplicates"))
    with open(os.path.join(index, "_sparkdedup_index.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    return {
        "duplicates": sorted(
            zip(table.column("id").to_pylist(), table.column("kept_id").to_pylist(), strict=True)
        ),
        "removed_near_indexed": stats["against"]["removed_near_indexed"],
        "indexed_docs": manifest["documents"],
        "segment_docs": [segment["documents"] for segment in manifest["segments"]],
    }


def main(remote: str, work: str) -> None:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(remote).getOrCreate()
    try:
        result = {"session": type(spark).__module__, **run_all(spark, f"{work}/connect-models")}
    except BaseException:
        spark.stop()  # a local Connect server outlives an exception otherwise
        raise
    # The CLI over the same Connect session (it stops the session when done).
    result["cli"] = cli_case(work, "connect", ["--remote", remote])
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
