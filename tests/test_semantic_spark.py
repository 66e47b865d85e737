"""Semantic deduplication on Spark: the workflow on a planted embedding corpus, conservation,
input checks, threshold and ranking determinism. Small data and few KMeans fits."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sparkdedup.config import SemanticConfig
from sparkdedup.errors import SchemaError
from sparkdedup.removal import remove_duplicates
from sparkdedup.semantic.embed import embedding_stats
from sparkdedup.semantic.identify import identify_duplicates
from sparkdedup.semantic.kmeans import assign_clusters, fit_centroids, kmeans_clusters
from sparkdedup.semantic.pairwise import pairwise_similarity
from sparkdedup.semantic.workflow import run_semantic, semantic_duplicates
from sparkdedup.stages import StageRunner

DIM = 16


def planted_corpus(n: int = 240, copies: int = 24, seed: int = 7) -> tuple[list[tuple], set[str]]:
    """Random embeddings in 3 well separated groups, plus exact and lightly perturbed copies.

    Returns the rows ``(doc, emb, quality)`` and the ids of the planted copies: with the
    "custom" ranking on ``quality`` (originals 1.0, copies 0.0) exactly the copies go.
    """
    rng = np.random.default_rng(seed)
    centers = 4 * np.eye(3, DIM)
    base = centers[rng.integers(0, 3, size=n)] + rng.normal(size=(n, DIM))
    rows = [(f"doc{i:04d}", base[i].tolist(), 1.0) for i in range(n)]
    planted = set()
    for c in range(copies):
        noise = 0.0 if c % 2 == 0 else 1e-3
        vec = base[c * 7] * 2.5 + noise * rng.normal(size=DIM)  # scaled: same direction
        rows.append((f"copy{c:03d}", vec.tolist(), 0.0))
        planted.add(f"copy{c:03d}")
    return rows, planted


@pytest.fixture(scope="module")
def corpus(spark):
    rows, planted = planted_corpus()
    df = spark.createDataFrame(rows, "doc string, emb array<double>, quality double")
    return df.repartition(3).cache(), planted


def test_workflow_finds_planted_copies_and_conserves(spark, corpus) -> None:
    df, planted = corpus
    config = SemanticConfig(
        embedding_col="emb", id_col="doc", n_clusters=3, sort_cols=("quality",), eps=0.01
    )
    result = run_semantic(df, config, StageRunner(spark))
    dups = result.duplicates
    assert dups.columns == ["id", "max_id", "cosine_sim_score"]
    assert dict(dups.dtypes)["id"] == "string"
    removed = {r["id"] for r in dups.collect()}
    assert removed == planted
    pairs = {r["id"]: r["max_id"] for r in dups.collect()}
    assert all(pairs[f"copy{c:03d}"] == f"doc{c * 7:04d}" for c in range(24))
    stats = result.stats
    assert stats["input_docs"] == 264 and stats["removed_docs"] == 24
    assert stats["kept_docs"] == 240 and stats["clusters"] == 3 and stats["embedding_dim"] == DIM
    assert set(stats["seconds"]) == {"ids", "kmeans", "pairwise", "duplicates"}

    # Every document has a pairwise row; kept + removed = input, no id lost or duplicated.
    pairwise = result.pairwise
    assert pairwise.count() == 264 and pairwise.select("id").distinct().count() == 264
    kept = remove_duplicates(df, dups, id_col="doc")
    kept_ids = {r["doc"] for r in kept.select("doc").collect()}
    assert len(kept_ids) + len(removed) == 264 and not kept_ids & removed
    assert kept.columns == df.columns

    clusters = result.clusters
    assert clusters.columns == [
        "id",
        "centroid",
        "l2_dist_to_cent",
        "cosine_dist_to_cent",
        "embedding",
    ]
    norms = clusters.select(
        F.aggregate("embedding", F.lit(0.0), lambda a, x: a + x * x).alias("n")
    ).collect()
    assert all(abs(r["n"] - 1) < 1e-5 for r in norms)


def test_derived_ids_vectors_and_clamped_k(spark, caplog) -> None:
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(4, 5))
    rows = [(Vectors.dense(v), f"t{i}") for i, v in enumerate(vecs)] + [
        (Vectors.dense(vecs[0] * 3), "copy")
    ]
    df = spark.createDataFrame(rows, ["vec", "name"])
    with caplog.at_level(logging.WARNING, logger="sparkdedup"):
        dups = semantic_duplicates(df, embedding_col="vec", n_clusters=50, which_to_keep="easy")
    assert (
        "n_clusters=50 is larger than the number of distinct embeddings (4 among 5" in caplog.text
    )
    assert dict(dups.dtypes)["id"] == "bigint"
    assert dups.count() == 1
    kept = remove_duplicates(df, dups)
    names = sorted(r["name"] for r in kept.collect())
    assert len(names) == 4 and len({"t0", "copy"} & set(names)) == 1


def _frame(spark, rows, dtype="array<double>"):
    return spark.createDataFrame(rows, f"id long, e {dtype}")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(1, [1.0, 2.0]), (2, [1.0, 2.0, 3.0])], "mixes dimensions: vectors have between 2 and 3"),
        ([(1, [1.0, 2.0]), (2, None)], "1 null value"),
        ([(1, [1.0, float("nan")]), (2, [1.0, 2.0])], r"1 vector\(s\) with NaN"),
        ([(1, [1.0, float("inf")])], "infinite"),
        ([(1, [0.0, 0.0]), (2, [1.0, 2.0])], r"1 all-zero vector\(s\) \(e.g. ids 1\)"),
        ([(1, []), (2, [])], "empty vectors"),
    ],
)
def test_bad_embeddings_are_named(spark, rows, message) -> None:
    with pytest.raises(SchemaError, match=message):
        embedding_stats(_frame(spark, rows), "e", id_col="id")


def test_bad_embedding_types_fail_before_any_job(spark) -> None:
    df = spark.createDataFrame([(1, "x", [1, 2])], "id long, text string, ints array<int>")
    for col in ("text", "ints"):
        with pytest.raises(SchemaError, match=f"embedding column '{col}' must be array<float>"):
            semantic_duplicates(df, embedding_col=col)
    with pytest.raises(SchemaError, match="'nope' is not in the input"):
        semantic_duplicates(df, embedding_col="nope")
    with pytest.raises(SchemaError, match="null value"):
        semantic_duplicates(_frame(spark, [(1, [1.0]), (2, None)]), embedding_col="e", id_col="id")


def test_threshold_just_above_and_below(spark) -> None:
    eps = 0.05
    rows = [
        (1, 1, 0.0),
        (2, 1, 0.9501),  # above 1 - eps
        (3, 1, 0.9499),  # below
        (4, 1, 0.95),  # float32(0.95) = 0.949999988: below in double precision
        (5, 2, 1.0),
        (6, 6, 0.0),
    ]
    pairwise = spark.createDataFrame(rows, "id long, max_id long, cosine_sim_score float")
    removed = {r["id"] for r in identify_duplicates(pairwise, eps=eps).collect()}
    assert removed == {2, 5}
    everything = {r["id"] for r in identify_duplicates(pairwise, eps=1.0).collect()}
    assert everything == {2, 3, 4, 5}  # documents with max_id == id are always kept


def test_random_ranking_ignores_partitioning(spark) -> None:
    rng = np.random.default_rng(4)
    vecs = rng.normal(size=(40, 6))
    vecs[20:] = vecs[:20]  # every document has an exact copy
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rows = [(i, i % 2, 0.0, 0.0, vecs[i].astype(np.float32).tolist()) for i in range(40)]
    schema = T.StructType(
        [
            T.StructField("id", T.LongType()),
            T.StructField("centroid", T.IntegerType()),
            T.StructField("l2_dist_to_cent", T.DoubleType()),
            T.StructField("cosine_dist_to_cent", T.DoubleType()),
            T.StructField("embedding", T.ArrayType(T.FloatType())),
        ]
    )
    df = spark.createDataFrame(rows, schema)

    def run(frame, seed):
        out = pairwise_similarity(frame, which_to_keep="random", seed=seed, batch_size=3)
        return sorted(tuple(r) for r in out.collect())

    one = run(df.coalesce(1), 11)
    assert one == run(df.repartition(5), 11)
    assert one != run(df, 12)
    assert len(one) == 40


def test_empty_input(spark) -> None:
    df = spark.createDataFrame([], "id long, e array<float>")
    result = run_semantic(df, SemanticConfig(embedding_col="e", id_col="id"), StageRunner(spark))
    assert result.stats["input_docs"] == 0 and result.stats["removed_docs"] == 0
    assert result.duplicates.count() == 0


def test_kmeans_output_schema_with_float_arrays(spark) -> None:
    rng = np.random.default_rng(5)
    rows = [(i, rng.normal(size=4).astype(np.float32).tolist()) for i in range(12)]
    out = kmeans_clusters(_frame(spark, rows, "array<float>"), n_clusters=2, embedding_col="e")
    assert [f.dataType.simpleString() for f in out.schema.fields] == [
        "bigint",
        "int",
        "double",
        "double",
        "array<float>",
    ]
    got = out.collect()
    assert len(got) == 12 and {r["centroid"] for r in got} <= {0, 1}
    assert all(0 <= r["cosine_dist_to_cent"] <= 2 and r["l2_dist_to_cent"] >= 0 for r in got)


def test_fit_then_assign_uses_nearest_centroid(spark) -> None:
    rng = np.random.default_rng(8)
    raw = np.vstack([rng.normal(size=(30, 4)) + 5 * np.eye(4)[g] for g in range(3)])
    df = _frame(spark, [(i, v.tolist()) for i, v in enumerate(raw)])
    centers = fit_centroids(df, n_clusters=3, embedding_col="e", max_iter=20)
    assert centers.shape == (3, 4)
    got = {
        r["id"]: r["centroid"] for r in assign_clusters(df, centers, embedding_col="e").collect()
    }
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    nearest = np.argmin(((unit[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    assert [got[i] for i in range(len(raw))] == nearest.tolist()
    assert len(set(nearest[:30])) == 1 and len(set(nearest)) == 3
