"""Semantic deduplication on Spark: the workflow on a planted embedding corpus, conservation,
input checks, threshold and ranking determinism. Small data and few KMeans fits."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sparkdedup.config import SemanticConfig
from sparkdedup.errors import BackendUnavailableError, ConfigError, SchemaError
from sparkdedup.kernels.normalize import l2_normalize
from sparkdedup.removal import remove_duplicates
from sparkdedup.semantic import kmeans as kmeans_module
from sparkdedup.semantic import pairwise as pairwise_module
from sparkdedup.semantic.embed import embedding_stats
from sparkdedup.semantic.identify import identify_duplicates, removal_threshold
from sparkdedup.semantic.kmeans import assign_clusters, fit_centroids, kmeans_clusters
from sparkdedup.semantic.pairwise import pairwise_similarity
from sparkdedup.semantic.workflow import run_semantic, semantic_duplicates
from sparkdedup.sizing import persist_conf
from sparkdedup.stages import StageRunner

DIM = 16
CLUSTER_COLUMNS = ["id", "centroid", "l2_dist_to_cent", "cosine_dist_to_cent", "embedding"]


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


@pytest.mark.slow  # 30-80 s in make test, which must stay under 25 minutes
def test_checkpoint_dir_holds_every_intermediate_result(spark, corpus, monkeypatch, tmp_path):
    """As the fuzzy API's (tests/test_fuzzy_workflow.py): with checkpoint_dir nothing is cached
    or checkpointed (persist, cache and both checkpoints fail here), each stage is written
    there and removed when the call returns, the result is left there; `semantic_duplicates`
    and `SemanticDeduplicator` give the results they give without it."""
    from sparkdedup import SemanticDeduplicator

    df, planted = corpus
    docs = df.select("emb", "quality")  # derived ids: the one stage read after the call
    params = {"embedding_col": "emb", "n_clusters": 3, "sort_cols": ("quality",)}
    ml_params = {"embeddingCol": "emb", "nClusters": 3, "sortCols": ["quality"]}
    plain = sorted(semantic_duplicates(docs, **params).collect())
    plain_kept = sorted(SemanticDeduplicator(**ml_params).fit(docs).transform(docs).collect())

    def refused(self, *args, **kwargs):
        raise AssertionError("a DataFrame was cached or checkpointed")

    for method in ("persist", "cache", "checkpoint", "localCheckpoint"):
        monkeypatch.setattr(type(docs), method, refused)
    ck = str(tmp_path / "ck")
    found = semantic_duplicates(docs, checkpoint_dir=ck, **params)
    model = SemanticDeduplicator(checkpointDir=ck, **ml_params).fit(docs)
    kept = model.transform(docs)
    assert len(plain) == len(planted) and sorted(found.collect()) == plain
    assert len(plain_kept) == 240 and sorted(kept.collect()) == plain_kept
    left = sorted(p.name.split("-")[0] for p in (tmp_path / "ck").iterdir())
    assert left == ["result", "result"]


@pytest.mark.parametrize("ids", ["user", "derived"])
def test_small_input_gets_few_tasks(spark, stage_tasks, ids) -> None:
    """30 embeddings in 2 partitions, spark.sql.shuffle.partitions=200: no stage runs more
    than 2 tasks (the pairwise shuffle is sized from the data, and on Spark 4 persisted stages
    are planned adaptively: the derived ids' shuffle kept 200 partitions, and KMeans then ran
    200 tasks a stage)."""
    if ids == "derived" and not persist_conf(spark):
        pytest.skip(
            "Spark 3.5 keeps a persisted shuffle's partitions (sparkdedup.sizing.persist_conf): "
            "the derived ids, whose shuffle size is not known before, keep "
            "spark.sql.shuffle.partitions there"
        )
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(25, 6))
    rows = [(i, [float(x) for x in v]) for i, v in enumerate(vecs)]
    rows += [(100 + i, rows[i][1]) for i in range(5)]  # exact copies
    df = spark.createDataFrame(rows, "id long, e array<double>").repartition(2)
    if ids == "derived":
        df = df.select("e")
    wide = {"spark.sql.shuffle.partitions": "200"}
    with stage_tasks(f"semantic-small-{ids}", wide) as tasks:
        dups = semantic_duplicates(
            df, embedding_col="e", id_col="id" if ids == "user" else None, n_clusters=3, eps=0.01
        )
        assert dups.count() == 5
    assert tasks and max(tasks) <= 2, tasks


def _frame(spark, rows, dtype="array<double>"):
    return spark.createDataFrame(rows, f"id long, e {dtype}")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [(1, [1.0, 2.0]), (2, [1.0, 2.0, 3.0]), (3, [4.0, 5.0, 6.0])],
            r"mixes dimensions: 1 vector\(s\) are not of the most common length, 3 elements "
            r"\(lengths from 2 to 3\) \(e.g. ids 1\)",
        ),
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


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(1, [1.0, float("nan")]), (2, [1.0, 2.0])], r"'v' has 1 vector\(s\) with NaN"),
        ([(1, [0.0, 0.0]), (2, [1.0, 2.0])], r"'v' has 1 all-zero vector\(s\) \(e.g. ids 1\)"),
        ([(1, [1.0, 2.0]), (2, [1.0, 2.0, 3.0])], "'v' mixes dimensions"),
        ([(1, [1.0, 2.0]), (2, None)], "'v' has 1 null value"),
    ],
)
def test_embedding_errors_name_the_users_column(spark, rows, message) -> None:
    df = spark.createDataFrame(rows, "doc long, v array<double>")
    with pytest.raises(SchemaError, match=f"embedding column {message}"):
        semantic_duplicates(df, embedding_col="v", id_col="doc", n_clusters=2)


def test_a_null_ml_vector_is_named_as_a_null_array_is(spark) -> None:
    """``vector_to_array`` fails its task on a null Vector: the check counts it instead."""
    schema = T.StructType([T.StructField("id", T.LongType()), T.StructField("e", VectorUDT())])
    df = spark.createDataFrame([(1, Vectors.dense([1.0, 2.0])), (2, None)], schema)
    with pytest.raises(SchemaError, match=r"'e' has 1 null value\(s\) \(e.g. ids 2\)"):
        embedding_stats(df, "e", id_col="id")


def test_number_parameters_refuse_nan_and_take_numpy_numbers() -> None:
    with pytest.raises(ConfigError, match="tol must be a finite number >= 0, got nan"):
        SemanticConfig(tol=float("nan"))
    with pytest.raises(ConfigError, match="tol must be a finite number >= 0"):
        kmeans_module._check_params(2, 10, float("nan"), 0, "cpu")
    # An infinite tolerance would stop KMeans after one step, silently.
    with pytest.raises(ConfigError, match="tol must be a finite number >= 0, got inf"):
        SemanticConfig(tol=float("inf"))
    with pytest.raises(ConfigError, match=r"tol must be a finite number >= 0, got .*inf"):
        kmeans_module._check_params(2, 10, np.float64("inf"), 0, "cpu")
    with pytest.raises(ConfigError, match="eps must be a number between 0 and 1, got True"):
        SemanticConfig(eps=True)
    assert removal_threshold(np.float32(0.5)) == 0.5  # NumPy numbers are numbers
    with pytest.raises(ConfigError, match="eps must be a number between 0 and 1, got nan"):
        removal_threshold(float("nan"))
    assert removal_threshold(0.25) == 0.75 and SemanticConfig(tol=0, eps=1).eps == 1


def test_bad_embedding_types_fail_before_any_job(spark) -> None:
    df = spark.createDataFrame([(1, "x", ["1"])], "id long, text string, strs array<string>")
    for col in ("text", "strs"):
        with pytest.raises(SchemaError, match=f"embedding column '{col}' must be array<float>"):
            semantic_duplicates(df, embedding_col=col)
    with pytest.raises(SchemaError, match="'nope' is not in the input"):
        semantic_duplicates(df, embedding_col="nope")
    with pytest.raises(SchemaError, match="null value"):
        semantic_duplicates(_frame(spark, [(1, [1.0]), (2, None)]), embedding_col="e", id_col="id")


@pytest.mark.parametrize(
    ("expr", "shown"),
    [
        ("make_ym_interval(1, 0)", "interval year to month"),
        ("null", "void"),
        ("array(1)", "array<int>"),
    ],
)
def test_unrankable_sort_column_fails_before_any_job(spark, expr, shown) -> None:
    """A sort column the ranking cannot order is an error naming it before KMeans or any
    other job runs, not a Python worker's conversion error after them."""
    df = _frame(spark, [(1, [1.0, 0.0]), (2, [1.0, 0.0])]).withColumn("p", F.expr(expr))
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("unrankable-sort", "unrankable sort column")
    try:
        with pytest.raises(SchemaError, match=f"sort column 'p' must be a number, .* got {shown}"):
            semantic_duplicates(df, embedding_col="e", id_col="id", n_clusters=1, sort_cols=("p",))
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert tracker.getJobIdsForGroup("unrankable-sort") == []


@pytest.mark.parametrize("name", ["id", "ID", "Centroid", "EMBEDDING", "L2_Dist_To_Cent"])
def test_sort_column_named_as_a_pairwise_column_fails_before_any_job(spark, name) -> None:
    """A sort column named as one of the pairwise step's own columns, in any case (Spark
    resolves names in any case), is refused naming it before any job, not an ambiguous
    reference after KMeans."""
    df = spark.createDataFrame(
        [(1, [1.0, 0.0], 1.0)], f"doc long, e array<double>, `{name}` double"
    )
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("reserved-sort", "sort column named as a pairwise column")
    try:
        with pytest.raises(SchemaError, match=f"sort_cols may not use the column name.* '{name}'"):
            semantic_duplicates(df, embedding_col="e", id_col="doc", sort_cols=(name,))
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert tracker.getJobIdsForGroup("reserved-sort") == []


def test_threshold_just_above_and_below(spark) -> None:
    eps = 0.05
    rows = [
        (1, 1, 0.0),
        (2, 1, 0.9501),  # above 1 - eps
        (3, 1, 0.9499),  # below
        (4, 1, 0.95),  # float32(0.95) = 0.949999988 < 1 - eps in float64, as in NeMo Curator
        (5, 2, 1.0),
        (6, 6, 0.0),
    ]
    pairwise = spark.createDataFrame(rows, "id long, max_id long, cosine_sim_score float")
    removed = {r["id"] for r in identify_duplicates(pairwise, eps=eps).collect()}
    assert removed == {2, 5}
    everything = {r["id"] for r in identify_duplicates(pairwise, eps=1.0).collect()}
    assert everything == {2, 3, 4, 5}  # documents with max_id == id are always kept


@pytest.mark.parametrize("eps", [0.0, 0.001, 0.01, 0.05, 0.1, 0.2, 0.3])
def test_threshold_decides_as_curators_pyarrow_filter(spark, tmp_path, eps) -> None:
    """NeMo Curator removes the rows its pyarrow filter ``cosine_sim_score >= 1.0 - eps`` keeps
    in its float32 score files: the float32 scores around ``1 - eps`` decide here as there (for
    eps 0.05, 0.1 and 0.3 float32(1 - eps) lies below 1 - eps and is kept)."""
    at = np.float32(1 - eps)
    scores = np.array(
        [np.nextafter(at, np.float32(0)), at, np.nextafter(at, np.float32(2))], np.float32
    )
    scores = scores[scores <= 1]
    ids = list(range(1, len(scores) + 1))
    path = str(tmp_path / "scores.parquet")
    pq.write_table(pa.table({"id": ids, "cosine_sim_score": scores}), path)
    curator = pq.read_table(path, filters=[("cosine_sim_score", ">=", 1.0 - eps)])
    expected = sorted(curator.column("id").to_pylist())
    rows = [(i, 99, float(s)) for i, s in zip(ids, scores, strict=True)]
    for dtype in ("float", "double"):
        pairwise = spark.createDataFrame(rows, f"id long, max_id long, cosine_sim_score {dtype}")
        got = sorted(r["id"] for r in identify_duplicates(pairwise, eps=eps).collect())
        assert got == expected, dtype
    assert removal_threshold(eps) == 1.0 - eps


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


def test_random_ranking_has_its_own_seed(spark) -> None:
    """The KMeans seed never moves the "random" ranking (one cluster: KMeans is not even run),
    the ranking seed does."""
    rng = np.random.default_rng(5)
    vecs = rng.normal(size=(30, 4))
    vecs[15:] = vecs[:15]  # exact copies: the ranking decides which one stays
    df = _frame(spark, [(i, vecs[i].tolist()) for i in range(30)])

    def removed(**params):
        config = SemanticConfig(
            embedding_col="e", id_col="id", n_clusters=1, which_to_keep="random", **params
        )
        return sorted(
            r["id"] for r in run_semantic(df, config, StageRunner(spark)).duplicates.collect()
        )

    base = removed(seed=1, rank_seed=7)
    assert len(base) == 15
    assert removed(seed=2, rank_seed=7) == base
    assert removed(seed=1, rank_seed=8) != base


@pytest.mark.parametrize("n_clusters", [1, 100])
def test_empty_input(spark, n_clusters) -> None:
    df = spark.createDataFrame([], "id long, e array<float>")
    config = SemanticConfig(embedding_col="e", id_col="id", n_clusters=n_clusters)
    result = run_semantic(df, config, StageRunner(spark))
    assert result.stats["input_docs"] == 0 and result.stats["removed_docs"] == 0
    assert result.duplicates.count() == 0 and result.stats["clusters"] == 0
    assert result.clusters.columns == CLUSTER_COLUMNS


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
    # The copy keys of embedded texts (`document_embeddings`) go on to the ranking as they are.
    from sparkdedup.semantic.embed import COPY_KEYS

    keyed = df.select("*", (F.col("id") * 3).alias(COPY_KEYS[0]), F.lit(-1).alias(COPY_KEYS[1]))
    out = assign_clusters(keyed, centers, embedding_col="e")
    assert out.columns == [*CLUSTER_COLUMNS, *COPY_KEYS]
    assert {(r["id"], r["centroid"]) for r in out.collect()} == set(got.items())
    assert all(r[COPY_KEYS[0]] == 3 * r["id"] and r[COPY_KEYS[1]] == -1 for r in out.collect())


# --- one cluster, extreme and integer vectors -------------------------------------------------


def test_one_document_is_one_cluster(spark) -> None:
    df = spark.createDataFrame([(7, [3.0, 4.0])], "doc long, v array<double>")
    config = SemanticConfig(embedding_col="v", id_col="doc")  # n_clusters=100 is lowered to 1
    result = run_semantic(df, config, StageRunner(spark))
    assert result.duplicates.count() == 0 and result.stats["clusters"] == 1
    assert result.clusters.columns == CLUSTER_COLUMNS
    (row,) = result.clusters.collect()
    assert row["id"] == 7 and row["centroid"] == 0 and row["l2_dist_to_cent"] == 0
    assert row["cosine_dist_to_cent"] == pytest.approx(0, abs=1e-7)
    assert row["embedding"] == pytest.approx([0.6, 0.8])
    assert [tuple(r)[:3] for r in result.pairwise.collect()] == [(7, 7, 0.0)]


def test_identical_directions_are_one_cluster(spark, caplog) -> None:
    # Multiples of one integer vector normalise to exactly the same unit vector.
    df = _frame(spark, [(i, [i * 1.0, i * 2.0, i * 3.0]) for i in range(1, 6)])
    with caplog.at_level(logging.WARNING, logger="sparkdedup"):
        dups = semantic_duplicates(
            df, embedding_col="e", id_col="id", n_clusters=3, which_to_keep="easy"
        )
    assert "(1 among 5 documents); using n_clusters=1" in caplog.text
    got = sorted((r["id"], r["max_id"], r["cosine_sim_score"]) for r in dups.collect())
    assert [(i, m) for i, m, _ in got] == [(i, 1) for i in range(2, 6)]
    assert [score for *_, score in got] == pytest.approx([1.0] * 4, abs=1e-6)  # float32


def test_single_centroid_is_the_mean_on_every_device(spark, monkeypatch) -> None:
    raw = np.random.default_rng(12).normal(size=(30, 4))
    df = _frame(spark, [(i, v.tolist()) for i, v in enumerate(raw)]).repartition(3)
    cpu = fit_centroids(df, n_clusters=1, embedding_col="e")
    mean = l2_normalize(raw).astype(np.float64).mean(axis=0)
    assert cpu.shape == (1, 4)
    np.testing.assert_allclose(cpu[0], mean, rtol=1e-12, atol=1e-15)
    with pytest.raises(ConfigError, match="seed must be <= 2147483647 with device='gpu'"):
        fit_centroids(df, n_clusters=1, embedding_col="e", device="gpu", seed=2**31)
    if importlib.util.find_spec("spark_rapids_ml") is None:
        with pytest.raises(BackendUnavailableError, match="spark-rapids-ml"):
            fit_centroids(df, n_clusters=1, embedding_col="e", device="gpu")

    class NoKMeans:
        def __init__(self, **params: object) -> None:
            raise AssertionError("k = 1 must not reach a KMeans estimator")

    monkeypatch.setattr(kmeans_module, "_kmeans_class", lambda device: NoKMeans)
    gpu = fit_centroids(df.coalesce(1), n_clusters=1, embedding_col="e", device="gpu")
    np.testing.assert_array_equal(gpu, cpu)  # the fit input does not depend on the split


def test_single_centroid_brings_one_row_to_the_driver(spark, monkeypatch) -> None:
    """k = 1 sums each partition's vectors on the executors and adds the sums in one task:
    the driver gets one row, not one a partition (at 10^9 vectors of 384 floats, tens of
    thousands of partitions' rows would pass any spark.driver.maxResultSize)."""
    raw = np.random.default_rng(3).normal(size=(200, 5))
    df = _frame(spark, [(i, v.tolist()) for i, v in enumerate(raw)]).repartition(40)
    collected = []
    frame = type(df)  # the session's DataFrame class (classic or Connect)
    real = frame.collect
    monkeypatch.setattr(
        frame, "collect", lambda self: collected.append(real(self)) or collected[-1]
    )
    center = kmeans_module._mean_center(df, 5)
    np.testing.assert_allclose(center[0], raw.mean(axis=0), rtol=1e-12, atol=1e-14)
    assert [len(rows) for rows in collected] == [1]


def test_huge_and_tiny_finite_vectors_are_normalised(spark) -> None:
    rows = [
        (1, [1e200, 1e200, 0.0]),  # squared norm overflows to inf
        (2, [1.0, 1.0, 0.0]),
        (3, [0.0, 0.0, 1.0]),
        (4, [0.0, 0.5, 1.0]),
        (5, [0.0, 1e-200, 0.0]),  # squared norm underflows to 0, yet not a zero vector
    ]
    df = _frame(spark, rows)
    assert embedding_stats(df, "e", id_col="id").rows == 5
    config = SemanticConfig(embedding_col="e", id_col="id", n_clusters=2)
    result = run_semantic(df, config, StageRunner(spark))
    unit = {r["id"]: r["embedding"] for r in result.clusters.collect()}
    half = float(np.float32(np.sqrt(0.5)))
    assert unit[1] == unit[2] == [half, half, 0.0] and unit[5] == [0.0, 1.0, 0.0]
    removed = [(r["id"], r["max_id"]) for r in result.duplicates.collect()]
    assert removed in ([(1, 2)], [(2, 1)])


def test_curator_vector_from_json_integer_arrays(spark, tmp_path, test_vectors) -> None:
    vec = test_vectors["semdedup_pairwise"]
    rows = vec["embeddings_rows_in_rank_order_before_l2_normalisation"]
    path = tmp_path / "vectors.jsonl"
    lines = [json.dumps({"id": i, "rank": len(rows) - i, "v": r}) for i, r in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    df = spark.read.json(str(path))
    assert dict(df.dtypes)["v"] == "array<bigint>"
    config = SemanticConfig(
        embedding_col="v", id_col="id", n_clusters=1, sort_cols=("rank",), eps=0.01
    )
    result = run_semantic(df, config, StageRunner(spark))
    got = {r["id"]: (r["max_id"], r["cosine_sim_score"]) for r in result.pairwise.collect()}
    assert [got[i][0] for i in range(len(rows))] == vec["expected_max_index"]
    scores = [got[i][1] for i in range(len(rows))]
    np.testing.assert_allclose(scores, vec["expected_scores"], atol=1e-5)
    assert {r["id"] for r in result.duplicates.collect()} == {2, 3, 4, 5}
    assert result.stats["clusters"] == 1


# --- memory of the pairwise step --------------------------------------------------------------


def pairwise_memory_bound(n: int, d: int, batch: int) -> int:
    """Bytes a Python worker holds for a cluster of n documents (README, "Semantic
    deduplication"): the Arrow input and the rank-ordered float32 copy (8*n*d), one float32
    block of similarities (4*n*batch), one matrix product's result and float32 copies of its
    operands (1024 rows) and about 100 bytes per document for ids, distances, order and
    outputs."""
    products = 4 * batch * 1024 + 4 * (batch + 1024) * d
    return 8 * n * d + 4 * n * batch + products + 100 * n


def test_large_cluster_stays_within_memory_bound(spark, tmp_path, monkeypatch) -> None:
    sizes, d, batch = (12_000, 40, 25), 32, 128
    rng = np.random.default_rng(9)
    n = sum(sizes)
    vectors = l2_normalize(rng.normal(size=(n, d)))
    vectors[5000] = vectors[17]  # a planted copy inside the large cluster
    frame = pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "centroid": np.repeat(np.arange(len(sizes), dtype=np.int32), sizes),
            "l2_dist_to_cent": 0.0,
            "cosine_dist_to_cent": rng.random(n),
            "embedding": list(vectors),
        }
    )
    df = spark.createDataFrame(
        frame,
        "id long, centroid int, l2_dist_to_cent double, "
        "cosine_dist_to_cent double, embedding array<float>",
    )
    real_cluster_fn, out_dir = pairwise_module._cluster_fn, str(tmp_path)

    def measured_cluster_fn(*args: object):
        cluster_pairwise = real_cluster_fn(*args)

        def measured(cluster: pd.DataFrame) -> pd.DataFrame:
            import pyarrow as pa

            arrow = pa.total_allocated_bytes()  # the group's Arrow input, still held
            tracemalloc.start()
            try:
                out = cluster_pairwise(cluster)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            with open(os.path.join(out_dir, f"{len(cluster)}.json"), "w") as fh:
                json.dump({"arrow": arrow, "peak": peak}, fh)
            return out

        return measured

    monkeypatch.setattr(pairwise_module, "_cluster_fn", measured_cluster_fn)
    pairs = {r["id"]: r["max_id"] for r in pairwise_similarity(df, batch_size=batch).collect()}
    assert len(pairs) == n and (pairs[5000] == 17 or pairs[17] == 5000)
    for size in sizes:
        with open(os.path.join(out_dir, f"{size}.json")) as fh:
            used = json.load(fh)
        assert used["peak"] + used["arrow"] < pairwise_memory_bound(size, d, batch) + 300_000
    big = sizes[0]
    with open(os.path.join(out_dir, f"{big}.json")) as fh:
        used = json.load(fh)
    assert used["peak"] > 4 * big * batch  # the measurement sees the similarity block


# --- KMeans on a sample -----------------------------------------------------------------------


def test_kmeans_fits_on_a_sample_and_assigns_every_document(spark, caplog) -> None:
    """fit_fraction: KMeans sees about that share of the documents, chosen by a seeded hash of
    the id (the same whatever the partitioning), and every document is assigned."""
    rng = np.random.default_rng(21)
    centres = np.eye(4) * 10
    rows = [(i, (centres[i % 3] + rng.normal(size=4)).tolist()) for i in range(600)]
    df = _frame(spark, rows)
    with caplog.at_level(logging.INFO, logger="sparkdedup"):
        centers = kmeans_module.fit_centroids(
            df.coalesce(1), n_clusters=3, embedding_col="e", fit_fraction=0.25
        )
    fitted_on = [m for m in caplog.messages if "fitting on" in m]
    assert len(fitted_on) == 1
    sampled = int(fitted_on[0].split("fitting on ")[1].split(" of ")[0])
    assert 100 < sampled < 200  # about a quarter of 600
    again = kmeans_module.fit_centroids(
        df.repartition(7), n_clusters=3, embedding_col="e", fit_fraction=0.25
    )
    np.testing.assert_allclose(again, centers, atol=1e-9)
    assigned = kmeans_module.kmeans_clusters(df, n_clusters=3, embedding_col="e", fit_fraction=0.25)
    by_id = {r["id"]: r["centroid"] for r in assigned.select("id", "centroid").collect()}
    assert len(by_id) == 600
    # The planted groups come out whole: each is one cluster.
    assert all(len({by_id[i] for i in range(g, 600, 3)}) == 1 for g in range(3))
    with pytest.raises(ConfigError, match="fit_fraction"):
        SemanticConfig(fit_fraction=0)


# --- oversized clusters split across tasks -----------------------------------------------------


@pytest.mark.parametrize("which_to_keep", ["hard", "random"])
def test_split_clusters_equal_the_whole_computation(spark, caplog, which_to_keep) -> None:
    """A cluster larger than max_cluster_size is compared block pair by block pair in separate
    tasks; every document gets the same best match as in one piece (float32 rounding aside),
    copies included (the earliest-ranked copy wins), and small clusters are untouched."""
    rng = np.random.default_rng(33)
    n, d = 75, 6
    vectors = l2_normalize(rng.normal(size=(n, d)))
    vectors[40] = vectors[3]  # exact copies across blocks
    vectors[41] = vectors[3]
    vectors[60] = l2_normalize(vectors[12:13] + 1e-3 * rng.normal(size=(1, d)))[0]  # near copy
    sizes = (62, 13)  # with max_cluster_size=10: 7 blocks, and 2
    frame = pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "centroid": np.repeat(np.arange(2, dtype=np.int32), sizes),
            "l2_dist_to_cent": rng.random(n),
            "cosine_dist_to_cent": rng.random(n),
            "embedding": list(vectors.astype(np.float32)),
        }
    )
    frame.loc[[3, 40, 41], "cosine_dist_to_cent"] = 0.5  # tie on the key: ranked by id
    df = spark.createDataFrame(
        frame,
        "id long, centroid int, l2_dist_to_cent double, cosine_dist_to_cent double, "
        "embedding array<float>",
    )

    def run(limit):
        out = pairwise_similarity(
            df, which_to_keep=which_to_keep, seed=3, batch_size=4, max_cluster_size=limit
        )
        assert out.columns == ["id", "max_id", "cosine_sim_score", "centroid"]
        return {r["id"]: (r["max_id"], r["cosine_sim_score"], r["centroid"]) for r in out.collect()}

    whole = run(10**6)
    with caplog.at_level(logging.INFO, logger="sparkdedup"):
        split = run(10)
    assert any("split into blocks" in m for m in caplog.messages)
    assert set(split) == set(whole) == set(range(n))
    for i in range(n):
        assert split[i][0] == whole[i][0], i
        assert split[i][1] == pytest.approx(whole[i][1], abs=2e-6), i
        assert split[i][2] == whole[i][2], i
    # Of the three copies, the two ranked later both point to the one ranked first.
    later = [i for i in (3, 40, 41) if split[i][1] > 0.999]
    assert len(later) == 2 and len({split[i][0] for i in later}) == 1
    assert {split[i][0] for i in later} < {3, 40, 41}
    with pytest.raises(ConfigError, match="max_cluster_size"):
        pairwise_similarity(df, max_cluster_size=-1)


@pytest.mark.parametrize("which_to_keep", ["hard", "easy"])
def test_exact_copies_are_ranked_as_one_whatever_their_embedding_rounding(
    spark, which_to_keep
) -> None:
    """A model's embeddings of exact copies differ by float rounding with the batches they were
    embedded in, so which copy the distance ranking kept depended on the partitioning. With
    the copy keys (a text hash) the copies take the distances of the one of smallest id and
    the tie is decided by id: the same copy is kept whichever of them came out farther, in a
    cluster compared whole and in one split into blocks."""
    from sparkdedup.semantic.embed import COPY_KEYS

    rng = np.random.default_rng(11)
    n, d = 24, 8
    vectors = l2_normalize(rng.normal(size=(n, d))).astype(np.float32)
    copies = [4, 9, 17]  # one text three times
    vectors[copies] = vectors[4]
    hashes = np.arange(n, dtype=np.int64) * 1_000_003
    hashes[copies] = 77

    def frame(noisy_first: int) -> pd.DataFrame:
        noise = np.zeros((n, d), dtype=np.float32)
        noise[noisy_first] = 1e-7  # the rounding of one batch
        distances = rng.random(n) * 0.1 + 0.2
        distances[copies] = 0.25
        distances[noisy_first] += 1e-7
        return pd.DataFrame(
            {
                "id": np.arange(n, dtype=np.int64),
                "centroid": np.zeros(n, dtype=np.int32),
                "l2_dist_to_cent": distances,
                "cosine_dist_to_cent": distances,
                "embedding": list(vectors + noise),
                COPY_KEYS[0]: hashes,
                COPY_KEYS[1]: -hashes,
            }
        )

    def kept(noisy_first: int, limit: int, keyed: bool = True) -> set[int]:
        df = spark.createDataFrame(frame(noisy_first))
        if not keyed:
            df = df.drop(*COPY_KEYS)
        out = pairwise_similarity(
            df, which_to_keep=which_to_keep, batch_size=4, max_cluster_size=limit
        )
        removed = {r["id"] for r in identify_duplicates(out, eps=0.01).collect()}
        return set(copies) - removed

    # Hard ranks the farthest first, then the largest id; easy the nearest, then the smallest.
    expected = {17} if which_to_keep == "hard" else {4}
    for limit in (10**6, 5):
        assert kept(4, limit) == kept(17, limit) == expected, limit
        # Without the keys, the copy the rounding put first is kept: what the keys are for.
        assert kept(9 if which_to_keep == "hard" else 4, limit, keyed=False) == {9}, limit


def test_exact_copies_that_kmeans_splits_are_compared_in_one_cluster(spark) -> None:
    """Exact copies whose embeddings differ by rounding can sit on either side of the boundary
    between two clusters, where they were never compared: every copy was kept. With the copy
    keys they are moved to the cluster of their smallest id and ranked as one, whole and
    split."""
    from sparkdedup.semantic.embed import COPY_KEYS

    rng = np.random.default_rng(5)
    d = 16
    centers = np.zeros((2, d))
    centers[0, 0] = centers[1, 1] = 1.0
    vectors = centers[rng.integers(0, 2, size=30)] * 3 + rng.normal(size=(30, d))
    between = np.zeros(d)
    between[:2] = 1.0
    copies = [3, 10, 20]  # one text three times, embedded in three batches
    for i, nudge in zip(copies, (1e-6, -1e-6, 2e-6), strict=True):
        vectors[i] = between
        vectors[i, 0] += nudge
    hashes = np.arange(30, dtype=np.int64) * 1_000_003 + 1
    hashes[copies] = 77
    df = spark.createDataFrame(
        pd.DataFrame(
            {
                "id": np.arange(30, dtype=np.int64),
                "embedding": list(vectors.astype(np.float32)),
                COPY_KEYS[0]: hashes,
                COPY_KEYS[1]: -hashes,
            }
        )
    )
    assigned = assign_clusters(df, centers).persist()
    where = {r["id"]: r["centroid"] for r in assigned.collect()}
    assert [where[i] for i in copies] == [0, 1, 0]  # split by KMeans, the case tested

    def removed(frame, limit: int) -> dict:
        out = pairwise_similarity(frame, batch_size=4, max_cluster_size=limit)
        dups = identify_duplicates(out, eps=0.01).collect()
        return {r["id"]: r["max_id"] for r in dups}

    # The split texts broadcast (collected once), and joined by a sort merge join.
    try:
        for broadcast, limit in [("64m", 10**6), ("64m", 4), ("0", 10**6), ("0", 4)]:
            spark.conf.set("spark.sparkdedup.broadcastBytes", broadcast)
            case = (broadcast, limit)
            # Hard ranking: the farthest copy first, then the largest id (all take 3's distances).
            assert removed(assigned, limit) == {10: 20, 3: 20}, case
            moved = pairwise_similarity(assigned, batch_size=4, max_cluster_size=limit)
            assert {r["id"]: r["centroid"] for r in moved.collect()}[10] == 0, case
            # Without the keys the copy KMeans put apart is kept beside one of the others.
            alone = removed(assigned.drop(*COPY_KEYS), limit)
            assert len(alone) == 1 and set(alone) < {3, 20}, case
    finally:
        spark.conf.unset("spark.sparkdedup.broadcastBytes")
    assigned.unpersist()


def test_copy_representatives_are_the_smallest_id_of_each_copy_set() -> None:
    h1 = np.array([5, 3, 5, 3, 8, 5], dtype=np.int64)
    h2 = np.array([1, 2, 1, 2, 1, 9], dtype=np.int64)
    ids = np.array(["d", "b", "a", "c", "e", "f"], dtype=object)
    first = pairwise_module.copy_representatives(h1, h2, ids)
    assert first.tolist() == [2, 1, 2, 1, 4, 5]
    assert pairwise_module.copy_representatives(h1[:0], h2[:0], ids[:0]).tolist() == []


def _ranked_whole_and_split(df, sort_col: str, limit: int) -> dict:
    """``{id: max_id}`` of `pairwise_similarity` ranked by `sort_col`, asserting that clusters
    ranked whole (pandas) and split into blocks of `limit` rows (a Spark window) agree."""

    def run(max_cluster_size):
        out = pairwise_similarity(
            df, sort_cols=[sort_col], batch_size=4, max_cluster_size=max_cluster_size
        )
        return {r["id"]: r["max_id"] for r in out.collect()}

    whole, split = run(10**6), run(limit)
    assert split == whole, sort_col
    return whole


@pytest.mark.parametrize("direction", ["desc", "asc"])
def test_nan_sort_values_rank_last_in_whole_and_split_clusters(spark, direction) -> None:
    """With `sort_cols`, a NaN value ranks last, as a null does, whether the cluster is ranked
    whole (pandas) or split into blocks (a Spark window, which alone would rank NaN above every
    number): the same documents are kept whatever `max_cluster_size`."""
    rng = np.random.default_rng(5)
    n, d = 30, 4
    vectors = l2_normalize(rng.normal(size=(n, d)))
    vectors[10:] = vectors[0]  # 0 and 10..29 are copies: the best-ranked one is kept
    frame = pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "centroid": np.zeros(n, dtype=np.int32),
            "q": rng.random(n),
            "embedding": list(vectors.astype(np.float32)),
        }
    )
    df = spark.createDataFrame(frame, "id long, centroid int, q double, embedding array<float>")
    nan_ids, null_ids = [0, 12, 20, 27], [15, 21]
    # pandas NaN arrives as null in Spark: the NaN are set in Spark.
    df = df.withColumn(
        "q",
        F.when(F.col("id").isin(*nan_ids), F.lit(float("nan")))
        .when(F.col("id").isin(*null_ids), F.lit(None).cast("double"))
        .otherwise(F.col("q")),
    )
    assert df.where(F.isnan("q")).count() == len(nan_ids)
    copies = [0, *range(10, n)]
    scored = [i for i in copies if i not in nan_ids + null_ids]
    pick = max if direction == "desc" else min
    best = pick(scored, key=lambda i: frame["q"][i])

    whole = _ranked_whole_and_split(df, f"q:{direction}", 7)
    # Every copy's best earlier match is the copy ranked first: the best real score.
    assert {whole[i] for i in copies if i != best} == {best}


def test_bigint_sort_values_beyond_float_precision_rank_exactly(spark) -> None:
    """A bigint sort column with nulls reaches pandas as float64 by default, where values
    beyond 2**53 tie: the whole-cluster ranking still orders them exactly, as the split one
    (a Spark window) does."""
    rng = np.random.default_rng(8)
    n, d = 20, 4
    vectors = l2_normalize(rng.normal(size=(n, d)))
    vectors[:] = vectors[0]  # all copies: the best-ranked one is kept
    rows = [
        (i, 0, None if i in (0, 7) else 2**60 + (n - i), vectors[i].astype(np.float32).tolist())
        for i in range(n)
    ]
    df = spark.createDataFrame(rows, "id long, centroid int, t bigint, embedding array<float>")
    for direction, best in (("desc", 1), ("asc", n - 1)):
        whole = _ranked_whole_and_split(df, f"t:{direction}", 6)
        assert {whole[i] for i in range(n) if i != best} == {best}, direction


@pytest.mark.parametrize("dtype", ["timestamp", "timestamp_ntz"])
def test_timestamp_sort_values_beyond_2262_rank_in_whole_and_split_clusters(spark, dtype) -> None:
    """A timestamp sort column holding a 9999-12-31 "open end" sentinel (or a year-1 value),
    which pandas' datetime64[ns] cannot hold, ranks in whole clusters as in split ones (a
    Spark window), nulls last, and the workflow over such a column runs."""
    import datetime as dt

    n, d = 12, 4
    vector = [0.5] * d  # all copies: the best-ranked one is kept
    times = {3: dt.datetime(9999, 12, 31, 23, 59, 59), 8: dt.datetime(1, 1, 1, 12), 5: None}
    rows = [(i, 0, times.get(i, dt.datetime(2020, 1, 1 + i, 6)), vector) for i in range(n)]
    df = spark.createDataFrame(rows, f"id long, centroid int, t {dtype}, embedding array<float>")
    for direction, best in (("desc", 3), ("asc", 8)):
        whole = _ranked_whole_and_split(df, f"t:{direction}", 5)
        assert {whole[i] for i in range(n) if i != best} == {best}, direction
    config = SemanticConfig(embedding_col="embedding", id_col="id", n_clusters=1, eps=0.01)
    removed = semantic_duplicates(df.drop("centroid"), config, sort_cols=("t",))
    assert sorted(r["id"] for r in removed.collect()) == [i for i in range(n) if i != 3]


@pytest.mark.skipif(
    not hasattr(T.StringType(), "collation"), reason="string collations exist from Spark 4.0"
)
@pytest.mark.parametrize("collation", ["UTF8_LCASE", "UNICODE_CI"])
def test_collated_string_sort_values_rank_by_code_point_on_both_paths(spark, collation) -> None:
    """A string sort column with a case-insensitive collation ranks by its code points in whole
    clusters (pandas) and in split ones (a Spark window, which would otherwise tie "f" and
    "F" and fall back to the id) alike."""
    n, d = 12, 4
    names = ["b", "A", "a", "B", "c", "C", "d", "D", "e", "E", "f", "F"]
    rows = [(i, 0, names[i], [0.5] * d) for i in range(n)]
    df = spark.createDataFrame(rows, "id long, centroid int, s string, embedding array<float>")
    df = df.withColumn("s", F.expr(f"collate(s, '{collation}')"))
    for direction, best in (("desc", names.index("f")), ("asc", names.index("A"))):
        whole = _ranked_whole_and_split(df, f"s:{direction}", 5)
        assert {whole[i] for i in range(n) if i != best} == {best}, direction


@pytest.mark.parametrize("name", ["meta.q", "q`x", "q score"])
def test_sort_column_names_with_dots_backticks_and_spaces(spark, name) -> None:
    """A sort column named with a dot (not a struct field), a backtick or a space ranks whole
    and split clusters and runs through the workflow (applyInPandas would read "meta.q" as a
    field of a struct "meta")."""
    n, d = 8, 4
    rows = [(i, 0, float((i * 3) % n), [0.5] * d) for i in range(n)]
    df = spark.createDataFrame(rows, "id long, centroid int, q double, embedding array<float>")
    df = df.withColumnRenamed("q", name)
    best = max(range(n), key=lambda i: (i * 3) % n)

    whole = _ranked_whole_and_split(df, name, 3)
    assert {whole[i] for i in range(n) if i != best} == {best}
    config = SemanticConfig(embedding_col="embedding", id_col="id", n_clusters=1, eps=0.01)
    removed = semantic_duplicates(df.drop("centroid"), config, sort_cols=(name,))
    assert sorted(r["id"] for r in removed.collect()) == [i for i in range(n) if i != best]


@pytest.mark.parametrize("name", ["meta.e", "e`x", "ID"])
def test_embedding_column_names_with_dots_backticks_or_named_id(spark, name) -> None:
    """An embedding column named with a dot (not a struct field), a backtick, or ``ID`` beside
    an id column of another name (Spark resolves names in any case) is clustered as any other,
    by the function and by the pyspark.ml stages."""
    from sparkdedup.ml import SemanticDeduplicator

    rows = [(i, [1.0, float(i % 2), 0.5]) for i in range(6)]
    df = spark.createDataFrame(rows, "doc long, e array<double>").withColumnRenamed("e", name)
    config = SemanticConfig(embedding_col=name, id_col="doc", n_clusters=1, eps=0.01)
    removed = semantic_duplicates(df, config)
    assert sorted(r["id"] for r in removed.collect()) == [0, 1, 2, 3]
    model = SemanticDeduplicator(embeddingCol=name, idCol="doc", nClusters=1, eps=0.01).fit(df)
    assert sorted(r["doc"] for r in model.transform(df).collect()) == [4, 5]


def test_gpu_kmeans_branch_with_a_stand_in_spark_rapids_ml(spark, monkeypatch) -> None:
    """device="gpu" fits spark-rapids-ml's KMeans (a stand-in here, pyspark.ml underneath) with
    the same parameters and the same normalised, partitioned input as the CPU branch, and gets
    the same centroids from it."""
    import sys
    import types

    from pyspark.ml.clustering import KMeans as CpuKMeans

    seen: dict = {}

    class StandInKMeans:
        def __init__(self, **params):
            seen.update(params)
            self.estimator = CpuKMeans(initMode="k-means||", solver="block", **params)

        def fit(self, df):
            seen["columns"] = df.columns
            seen["partitions"] = df.rdd.getNumPartitions()
            return self.estimator.fit(df)

    clustering = types.ModuleType("spark_rapids_ml.clustering")
    clustering.KMeans = StandInKMeans
    package = types.ModuleType("spark_rapids_ml")
    package.clustering = clustering
    monkeypatch.setitem(sys.modules, "spark_rapids_ml", package)
    monkeypatch.setitem(sys.modules, "spark_rapids_ml.clustering", clustering)

    rng = np.random.default_rng(17)
    centres = np.eye(5) * 8
    df = _frame(spark, [(i, (centres[i % 3] + rng.normal(size=5)).tolist()) for i in range(300)])
    gpu = kmeans_module.fit_centroids(df, n_clusters=3, seed=7, device="gpu", embedding_col="e")
    cpu = kmeans_module.fit_centroids(df, n_clusters=3, seed=7, device="cpu", embedding_col="e")
    assert {k: seen[k] for k in ("k", "maxIter", "tol", "seed", "featuresCol")} == {
        "k": 3,
        "maxIter": 300,
        "tol": 1e-4,
        "seed": 7,
        "featuresCol": "embedding",
    }
    assert seen["columns"] == ["id", "embedding"] and seen["partitions"] == 1  # 300 rows
    np.testing.assert_allclose(gpu, cpu, atol=1e-9)
    with pytest.raises(ConfigError, match="seed"):
        kmeans_module.fit_centroids(df, n_clusters=3, seed=2**31, device="gpu", embedding_col="e")


def test_text_embeddings_run_in_arrow_batches_bounded_by_bytes(
    spark, corpus, monkeypatch, stage_confs
) -> None:
    """The embeddings stage (texts to the model's Python workers) runs under the Arrow byte
    limit of `sizing.arrow_batch_conf`, as the fuzzy scan does: a batch of long documents
    is cut by bytes, not only by rows. The model is replaced by the corpus's own vectors."""
    import sparkdedup.semantic.workflow as workflow
    from pyspark.sql import functions as F
    from sparkdedup.sizing import arrow_batch_conf

    df, _ = corpus
    vectors = {r["doc"]: r["emb"] for r in df.select("doc", "emb").collect()}

    def embeddings(documents, *, id_col, text_col, **_):
        lookup = spark.createDataFrame(list(vectors.items()), "text string, embedding array<float>")
        return (
            documents.select(F.col(id_col).alias("id"), F.col(text_col).alias("text"))
            .join(lookup, on="text")
            .select("id", "embedding")
        )

    monkeypatch.setattr(workflow, "document_embeddings", embeddings)
    # No model runs here: the check that torch and sentence-transformers are installed is off.
    monkeypatch.setattr(workflow, "require_embedding_backend", lambda: None)
    config = SemanticConfig(text_col="doc", id_col="doc", n_clusters=3, eps=0.01, device="cpu")
    result = run_semantic(df, config, StageRunner(spark))
    assert result.stats["input_docs"] == df.count()
    assert stage_confs["embeddings"] == arrow_batch_conf(spark) != {}
