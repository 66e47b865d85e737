"""pyspark.ml wrappers (sparkdedup.ml): Param defaults equal the config dataclasses, transforms
equal the workflow functions, Pipelines compose, and save/load round trips keep Params and the
semantic model's centroids. Small data: one planted text corpus, one planted embedding corpus."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import SQLTransformer
from pyspark.sql import functions as F
from sparkdedup.config import FuzzyConfig, SemanticConfig
from sparkdedup.datagen import generate_corpus
from sparkdedup.errors import ConfigError, InputError, SchemaError
from sparkdedup.evaluate import evaluate
from sparkdedup.ml import (
    FuzzyDeduplicator,
    SemanticDeduplicator,
    SemanticDeduplicatorModel,
)
from sparkdedup.ml_params import param_name
from sparkdedup.semantic.workflow import semantic_duplicates

DIM = 8


# ------------------------------------------------------------------------------ no Spark
@pytest.mark.parametrize(
    ("cls", "config_cls"),
    [(FuzzyDeduplicator, FuzzyConfig), (SemanticDeduplicator, SemanticConfig)],
)
def test_every_param_default_is_the_config_default(cls, config_cls) -> None:
    stage = cls()
    fields = dataclasses.fields(config_cls)
    for field in fields:
        name = param_name(field.name)
        assert stage.hasParam(name), name
        assert stage.getOrDefault(name) == field.default, name
        assert getattr(stage, f"get{name[0].upper()}{name[1:]}")() == field.default
    assert stage.getConfig() == config_cls()
    assert {p.name for p in stage.params} == {param_name(f.name) for f in fields} | {"outputMode"}
    assert stage.getOutputMode() == "deduplicated"


def test_param_names_setters_and_errors() -> None:
    assert param_name("use_64_bit_hash") == "use64BitHash"
    assert param_name("model") == "embeddingModel"
    fuzzy = FuzzyDeduplicator(idCol="id", numBands=9).setCharNgrams(20).setPriorityCol("q")
    assert fuzzy.getConfig() == FuzzyConfig(
        id_col="id", num_bands=9, char_ngrams=20, priority_col="q"
    )
    semantic = SemanticDeduplicator(sortCols=["a", "b"], embeddingModel="/models/x")
    assert semantic.getConfig().sort_cols == ("a", "b")
    assert semantic.getConfig().model == "/models/x"
    with pytest.raises(TypeError, match="no Param 'numBand'"):
        FuzzyDeduplicator(numBand=3)
    with pytest.raises(ConfigError, match="num_bands"):
        FuzzyDeduplicator(numBands=0).getConfig()
    with pytest.raises(ConfigError, match="outputMode"):
        FuzzyDeduplicator(outputMode="kept")._output_mode()


def test_model_centroids_are_a_matrix_of_finite_numbers() -> None:
    """The centroids a model is built from are a (k, dim) array of finite numbers: a vector or
    a NaN is refused, naming it (a vector failed at the first transform with an IndexError, a
    NaN centroid removed nothing)."""
    with pytest.raises(ConfigError, match=r"centers must be a \(k, dim\) array.* shape \(2,\)"):
        SemanticDeduplicatorModel(np.array([1.0, 0.0]))
    with pytest.raises(ConfigError, match=r"centers must be finite.* row 1 holds NaN"):
        SemanticDeduplicatorModel(np.array([[1.0, 0.0], [np.nan, 1.0]]))
    assert SemanticDeduplicatorModel([[1, 0]]).clusterCenters().dtype == np.float64
    assert SemanticDeduplicatorModel().clusterCenters().shape == (0, 0)


# ------------------------------------------------------------------------------- fuzzy
@pytest.fixture(scope="module")
def text_docs(spark):
    docs, truth = generate_corpus(300, seed=21)
    truth["length"] = docs["text"].str.len()
    return spark.createDataFrame(docs).repartition(3), truth


def test_fuzzy_pipeline_round_trip(spark, text_docs, tmp_path) -> None:
    docs, truth = text_docs
    length = SQLTransformer(statement="SELECT *, length(text) AS length FROM __THIS__")
    dedup = FuzzyDeduplicator(idCol="id", priorityCol="length")
    pipeline = Pipeline(stages=[length, dedup])
    pipeline.write().save(str(tmp_path / "pipeline"))
    loaded_pipeline = Pipeline.load(str(tmp_path / "pipeline"))
    assert loaded_pipeline.getStages()[1].getConfig() == dedup.getConfig()

    model = loaded_pipeline.fit(docs)  # no job: both stages are transformers
    model.write().save(str(tmp_path / "model"))
    loaded = PipelineModel.load(str(tmp_path / "model"))
    assert isinstance(loaded.stages[1], FuzzyDeduplicator)
    assert loaded.stages[1].uid == dedup.uid
    assert loaded.stages[1].getConfig() == FuzzyConfig(id_col="id", priority_col="length")

    # outputMode="duplicates" is fuzzy_duplicates' output: [id, kept_id]
    as_duplicates = loaded.stages[1].copy({loaded.stages[1].outputMode: "duplicates"})
    duplicates = as_duplicates.transform(length.transform(docs)).toPandas()
    assert list(duplicates.columns) == ["id", "kept_id"]
    scores = evaluate(duplicates, truth)
    assert scores["precision"] == 1.0 and scores["recall"] > 0.8

    kept = loaded.transform(docs)  # the default: the rows that remain, with every column
    assert kept.columns == [*docs.columns, "length"]
    kept_rows = kept.select("id", "length").toPandas()
    assert set(kept_rows["id"]) == set(truth["id"]) - set(duplicates["id"])
    assert set(duplicates["kept_id"]) <= set(kept_rows["id"])
    # the keep rule: each group keeps its longest text
    lengths = dict(zip(kept_rows["id"], kept_rows["length"], strict=True))
    text_len = dict(zip(truth["id"], truth["length"], strict=True))
    for removed, kept_id in zip(duplicates["id"], duplicates["kept_id"], strict=True):
        assert text_len[removed] <= lengths[kept_id]


# ---------------------------------------------------------------------------- semantic
def planted_embeddings(n: int = 120, copies: int = 12, seed: int = 3):
    """Rows (doc, emb, quality): three separated groups of random vectors, plus scaled and
    slightly perturbed copies of some of them (quality 0, so the custom ranking removes them)."""
    rng = np.random.default_rng(seed)
    centers = 5 * np.eye(3, DIM)
    base = centers[rng.integers(0, 3, size=n)] + rng.normal(size=(n, DIM))
    rows = [(f"doc{i:03d}", base[i].tolist(), 1.0) for i in range(n)]
    for c in range(copies):
        vec = base[c * 9] * 1.5 + 1e-4 * rng.normal(size=DIM)
        rows.append((f"copy{c:02d}", vec.tolist(), 0.0))
    return rows


@pytest.fixture(scope="module")
def embedding_docs(spark):
    rows = planted_embeddings()
    return spark.createDataFrame(rows, "doc string, emb array<double>, quality double")


def test_params_set_to_none_save_and_load(spark, tmp_path) -> None:
    """A Param explicitly set to None (an optional column, no sort columns) survives save and
    load in both wrappers, and so does a tuple of sort columns."""
    fuzzy = FuzzyDeduplicator(idCol=None, priorityCol=None, checkpointDir=None)
    fuzzy.write().save(str(tmp_path / "fuzzy"))
    loaded = FuzzyDeduplicator.load(str(tmp_path / "fuzzy"))
    assert loaded.isSet("idCol") and loaded.getIdCol() is None
    assert loaded.getPriorityCol() is None and loaded.getConfig() == fuzzy.getConfig()
    semantic = SemanticDeduplicator(idCol=None, embeddingCol=None, sortCols=None)
    semantic.write().save(str(tmp_path / "semantic"))
    restored = SemanticDeduplicator.load(str(tmp_path / "semantic"))
    assert restored.getEmbeddingCol() is None and restored.getSortCols() is None
    assert restored.getConfig() == semantic.getConfig()
    ranked = SemanticDeduplicator(sortCols=["length", "id"])
    ranked.write().save(str(tmp_path / "ranked"))
    assert SemanticDeduplicator.load(str(tmp_path / "ranked")).getSortCols() == ["length", "id"]


def test_save_and_load_take_paths_literally(spark, tmp_path) -> None:
    """A stage saved where the path holds glob characters loads back from that very path, not
    from a sibling the glob matches (``run[1]`` matches ``run1``): the metadata and the
    centroids are read literally, like every path sparkdedup reads back itself. Spaces, ``%``,
    a trailing slash and ``file:`` URIs too."""
    FuzzyDeduplicator(numBands=5).write().save(str(tmp_path / "run1"))
    SemanticDeduplicatorModel(np.zeros((2, 3))).write().save(str(tmp_path / "model1"))
    centers = np.arange(6.0).reshape(3, 2)
    for name in ["[1]", "{1}", "?1", "*", " b%20c/"]:
        path, model_path = f"{tmp_path}/run{name}", f"{tmp_path}/model{name}"
        FuzzyDeduplicator(numBands=9).write().save(path)
        assert FuzzyDeduplicator.load(path).getNumBands() == 9, name
        SemanticDeduplicatorModel(centers).write().save(model_path)
        np.testing.assert_array_equal(
            SemanticDeduplicatorModel.load(model_path).clusterCenters(), centers
        )
    uri = f"file:{tmp_path}/uri[1]"
    SemanticDeduplicatorModel(centers).write().save(uri)
    np.testing.assert_array_equal(SemanticDeduplicatorModel.load(uri).clusterCenters(), centers)


def test_load_names_a_path_that_holds_no_such_stage(spark, tmp_path) -> None:
    """Loading a path that holds another class, no saved stage, or a model whose centroids are
    gone or damaged is an InputError naming the path; the centroids are read in the order of
    their index, whatever the order of the rows in the files."""
    model_path, fuzzy_path = str(tmp_path / "model"), str(tmp_path / "fuzzy")
    SemanticDeduplicatorModel(np.eye(3)).write().save(model_path)
    FuzzyDeduplicator().write().save(fuzzy_path)
    with pytest.raises(InputError, match=r"holds a saved sparkdedup.ml.SemanticDeduplicatorModel"):
        FuzzyDeduplicator.load(model_path)
    with pytest.raises(InputError, match=r"not a sparkdedup.ml.SemanticDeduplicator\b"):
        SemanticDeduplicator.load(model_path)
    with pytest.raises(InputError, match=r"holds a saved sparkdedup.ml.FuzzyDeduplicator"):
        SemanticDeduplicatorModel.load(fuzzy_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    for missing in [tmp_path / "data", tmp_path / "nowhere"]:
        with pytest.raises(InputError, match=f"{missing}.* no saved pyspark.ml stage"):
            FuzzyDeduplicator.load(str(missing))

    rows = [(2, [7.0, 8.0]), (0, [1.0, 2.0]), (1, [4.0, 5.0])]  # two files, in no order
    frame = spark.createDataFrame(rows, "index int, center array<double>").repartition(2)
    frame.write.mode("overwrite").parquet(f"{model_path}/centroids")
    np.testing.assert_array_equal(
        SemanticDeduplicatorModel.load(model_path).clusterCenters(), [[1, 2], [4, 5], [7, 8]]
    )
    damaged = [
        [(0, [1.0, 2.0]), (2, [7.0, 8.0])],
        [(0, [1.0, 2.0]), (1, [4.0])],
        [(0, [1.0, 2.0]), (1, [4.0, float("nan")])],
    ]
    for rows in damaged:
        frame = spark.createDataFrame(rows, "index int, center array<double>")
        frame.write.mode("overwrite").parquet(f"{model_path}/centroids")
        with pytest.raises(InputError, match=f"centroids in '{model_path}/centroids' are damaged"):
            SemanticDeduplicatorModel.load(model_path)
    shutil.rmtree(f"{model_path}/centroids")
    with pytest.raises(InputError, match=f"{model_path}/centroids"):
        SemanticDeduplicatorModel.load(model_path)


def test_save_never_replaces_what_it_did_not_write(spark, tmp_path) -> None:
    """``save`` refuses a path that holds anything, naming it; ``overwrite()`` replaces a
    saved stage only, never a directory of other files or a file (pyspark's overwrite deletes
    whatever is there)."""
    mine = tmp_path / "data"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("mine too")
    for path in [mine, tmp_path / "file"]:
        for writer in [FuzzyDeduplicator().write(), FuzzyDeduplicator().write().overwrite()]:
            with pytest.raises(ConfigError, match=f"{path}.*not a saved pyspark.ml stage"):
                writer.save(str(path))
        model_writer = SemanticDeduplicatorModel(np.eye(2)).write().overwrite()
        with pytest.raises(ConfigError, match=f"{path}.*not a saved pyspark.ml stage"):
            model_writer.save(str(path))
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert (tmp_path / "file").read_text() == "mine too"

    saved = str(tmp_path / "saved")
    FuzzyDeduplicator(numBands=5).write().save(saved)
    with pytest.raises(ConfigError, match=r"holds a saved stage.*write\(\).overwrite\(\)"):
        FuzzyDeduplicator(numBands=6).write().save(saved)
    SemanticDeduplicatorModel(np.eye(2)).write().overwrite().save(saved)
    np.testing.assert_array_equal(SemanticDeduplicatorModel.load(saved).clusterCenters(), np.eye(2))
    (tmp_path / "empty").mkdir()
    FuzzyDeduplicator(numBands=7).write().save(str(tmp_path / "empty"))
    assert FuzzyDeduplicator.load(str(tmp_path / "empty")).getNumBands() == 7


def test_semantic_fit_transform_equals_semantic_duplicates(spark, embedding_docs) -> None:
    params = dict(embeddingCol="emb", idCol="doc", nClusters=3, eps=0.01)
    with pytest.raises(ConfigError, match="outputMode"):  # before the fit's work, not after it
        SemanticDeduplicator(**params, outputMode="x").fit(embedding_docs)
    with pytest.raises(ConfigError, match="the direction 'up' is neither"):
        SemanticDeduplicator(**params, sortCols=["doc:up"]).fit(embedding_docs)
    model = SemanticDeduplicator(**params).fit(embedding_docs)
    assert model.clusterCenters().shape == (3, DIM)
    assert model.getNClusters() == 3 and model.getEmbeddingCol() == "emb"

    found = model.copy({model.outputMode: "duplicates"}).transform(embedding_docs)
    expected = semantic_duplicates(
        embedding_docs, SemanticConfig(embedding_col="emb", id_col="doc", n_clusters=3, eps=0.01)
    )
    pairs = {(r["id"], r["max_id"]) for r in found.collect()}
    assert pairs == {(r["id"], r["max_id"]) for r in expected.collect()}
    assert len(pairs) >= 12  # the planted copies (or their originals) go

    kept = model.transform(embedding_docs)
    assert kept.columns == embedding_docs.columns
    assert kept.count() + len(pairs) == embedding_docs.count()

    other = SemanticDeduplicatorModel(np.ones((2, 3))).setEmbeddingCol("emb").setIdCol("doc")
    with pytest.raises(SchemaError, match="8 dimensions but the model's centroids have 3"):
        other.transform(embedding_docs)


def test_semantic_errors_name_the_users_embedding_column(spark, embedding_docs) -> None:
    bad = spark.createDataFrame(
        [("a", [1.0, float("nan")]), ("b", [0.5, 0.5])], "doc string, emb array<double>"
    )
    estimator, model = _estimator_and_model(dim=2)
    with pytest.raises(SchemaError, match="embedding column 'emb' has 1 vector"):
        estimator.fit(bad)
    with pytest.raises(SchemaError, match="embedding column 'emb' has 1 vector"):
        model.transform(bad)


def _estimator_and_model(dim: int) -> tuple[SemanticDeduplicator, SemanticDeduplicatorModel]:
    """An estimator of 2 clusters and a model of `dim` unit centroids, over ``doc`` and
    ``emb``."""
    estimator = SemanticDeduplicator(embeddingCol="emb", idCol="doc", nClusters=2)
    model = SemanticDeduplicatorModel(np.eye(dim)).setEmbeddingCol("emb").setIdCol("doc")
    return estimator, model


def test_semantic_pipeline_fit_on_sample_save_load(spark, embedding_docs, tmp_path) -> None:
    keep_originals = SQLTransformer(statement="SELECT * FROM __THIS__ WHERE quality > 0.5")
    sample = keep_originals.transform(embedding_docs)  # fit on the originals only
    semdedup = SemanticDeduplicator(
        embeddingCol="emb", idCol="doc", nClusters=3, eps=0.01, sortCols=["quality"]
    )
    select = SQLTransformer(statement="SELECT doc, emb, quality FROM __THIS__")
    model = Pipeline(stages=[select, semdedup]).fit(sample)
    model.write().save(str(tmp_path / "semantic"))
    loaded = PipelineModel.load(str(tmp_path / "semantic"))

    fitted, restored = model.stages[1], loaded.stages[1]
    assert isinstance(restored, SemanticDeduplicatorModel)
    assert restored.uid == fitted.uid
    np.testing.assert_array_equal(restored.clusterCenters(), fitted.clusterCenters())
    assert restored.getConfig() == fitted.getConfig()
    assert restored.getSortCols() == ["quality"]

    kept = loaded.transform(embedding_docs)
    removed = embedding_docs.join(kept, on="doc", how="left_anti")
    assert sorted(r["doc"] for r in removed.collect()) == [f"copy{c:02d}" for c in range(12)]
    assert kept.filter(F.col("quality") < 0.5).count() == 0


# ------------------------------------------------------------------- what transform leaves
def _persisted_rdd_ids(spark) -> set[int]:
    return set(spark.sparkContext._jsc.getPersistentRDDs().keys())


def test_transforms_release_their_persisted_stages(spark, text_docs, embedding_docs) -> None:
    docs, truth = text_docs
    fuzzy = FuzzyDeduplicator(idCol="id", outputMode="duplicates")
    before = _persisted_rdd_ids(spark)
    duplicates = fuzzy.transform(docs)
    # Only the small duplicates result stays (its local checkpoint); the stages are released.
    assert len(_persisted_rdd_ids(spark) - before) <= 1
    assert evaluate(duplicates.toPandas(), truth)["precision"] == 1.0
    kept = fuzzy.copy({fuzzy.outputMode: "deduplicated"}).transform(docs)
    assert kept.count() + duplicates.count() == docs.count()

    model = SemanticDeduplicator(embeddingCol="emb", idCol="doc", nClusters=3).fit(embedding_docs)
    before = _persisted_rdd_ids(spark)
    kept = model.transform(embedding_docs)
    assert len(_persisted_rdd_ids(spark) - before) <= 1
    removed = model.copy({model.outputMode: "duplicates"}).transform(embedding_docs)
    assert kept.count() + removed.count() == embedding_docs.count()
    assert removed.count() >= 12


def _stand_in_embeddings(spark, monkeypatch):
    """Replace the semantic model by a cheap embedding step (no model needed); returns the
    accumulator counting the rows it embeds."""
    from sparkdedup import ml as ml_module
    from sparkdedup.ids import ID_COL
    from sparkdedup.semantic import workflow as semantic_workflow

    embedded = spark.sparkContext.accumulator(0)

    @F.pandas_udf("array<float>")
    def embed(texts: pd.Series) -> pd.Series:
        embedded.add(len(texts))
        return texts.map(lambda t: [float(len(t) % 7 + 1), float(sum(map(ord, t)) % 11), 1.0])

    def stand_in(documents, config, device):
        return documents.select(
            F.col(ID_COL).alias("id"), embed(config.text_col).alias("embedding")
        )

    monkeypatch.setattr(ml_module, "_vectors", stand_in)
    # The stand-in needs no model: the check for torch and sentence-transformers is moot.
    monkeypatch.setattr(semantic_workflow, "require_embedding_backend", lambda: None)
    return embedded


def test_fit_then_transform_of_the_same_data_embeds_it_once(spark, text_docs, monkeypatch):
    """The embeddings computed to fit stay with the model for one transform of the same
    DataFrame; other data is embedded (and the kept embeddings let go). Rows embedded are
    counted by an accumulator in a stand-in embedding step."""
    docs, _ = text_docs
    embedded = _stand_in_embeddings(spark, monkeypatch)
    n = docs.count()
    model = SemanticDeduplicator(idCol="id", nClusters=3, device="cpu").fit(docs)
    assert embedded.value == n
    first = model.transform(docs).count()
    assert embedded.value == n  # the fitted data's embeddings, reused
    again = model.transform(docs).count()  # used once: embedded now
    assert embedded.value == 2 * n and again == first
    other = docs.where(F.col("id") % 6 == 0)  # 50 of the 300
    refit = SemanticDeduplicator(idCol="id", nClusters=3, device="cpu").fit(docs)
    refit.transform(other).count()
    assert embedded.value == 3 * n + 50
    assert refit._fitted_embeddings is None


def test_a_fitted_model_given_another_text_or_id_column_embeds_anew(spark, text_docs, monkeypatch):
    """The embeddings a fit keeps are the fitted data's texts under its textCol, with its
    idCol's ids: a transform of that data under another textCol or idCol (set on the model, or
    given to transform) embeds it, and finds what a model that kept none finds. Rows embedded
    are counted by the stand-in embedding step."""
    docs, _ = text_docs
    docs = docs.withColumn("other", F.reverse("text")).withColumn("id2", F.col("id") * 7)
    embedded = _stand_in_embeddings(spark, monkeypatch)
    n = docs.count()
    for param, value in (("textCol", "other"), ("idCol", "id2")):
        model = SemanticDeduplicator(idCol="id", nClusters=3, outputMode="duplicates").fit(docs)
        start = embedded.value
        first = model.transform(docs, {model.getParam(param): value}).collect()
        assert embedded.value == start + n, param
        again = model.transform(docs, {model.getParam(param): value}).collect()
        assert sorted(map(tuple, first)) == sorted(map(tuple, again)), param


def test_a_copy_of_a_fitted_model_shares_its_fitted_embeddings(spark, text_docs, monkeypatch):
    """The embeddings a fit keeps for one transform of the same data are shared with the
    model's copies (``transform(df, params)`` makes one): the first transform of that data,
    by the copy, uses them; the model's own transform then embeds the data once, not once per
    read of embeddings its copy released. Rows embedded are counted by the stand-in embedding
    step."""
    docs, _ = text_docs
    embedded = _stand_in_embeddings(spark, monkeypatch)
    n = docs.count()
    model = SemanticDeduplicator(idCol="id", nClusters=3, device="cpu").fit(docs)
    duplicates = model.transform(docs, {model.outputMode: "duplicates"}).count()
    assert embedded.value == n  # the fitted data's embeddings, used by the copy
    kept = model.transform(docs).count()
    assert embedded.value == 2 * n
    assert kept + duplicates == n and model._fitted_embeddings is None


def test_a_model_never_transformed_lets_its_fitted_embeddings_go(spark, text_docs, monkeypatch):
    """The embeddings a fit keeps for a transform of the same data are released once the
    model is garbage collected without one (a model refitted in a notebook, or used for its
    centroids only), at the next sparkdedup call, not kept persisted for the rest of the
    session."""
    import gc

    from sparkdedup.stages import StageRunner

    docs, _ = text_docs
    _stand_in_embeddings(spark, monkeypatch)
    before = _persisted_rdd_ids(spark)
    model = SemanticDeduplicator(idCol="id", nClusters=3, device="cpu").fit(docs)
    assert model._fitted_embeddings is not None and _persisted_rdd_ids(spark) - before
    assert model.clusterCenters().shape == (3, 3)
    del model
    gc.collect()
    with StageRunner(spark):  # the next sparkdedup call releases them (not the collector)
        assert _persisted_rdd_ids(spark) - before == set()


def test_inputs_read_more_than_once_are_data_not_a_random_plan(spark, text_docs, embedding_docs):
    """A transform that reads its input twice (the duplicates, then the rows to drop) and the
    semantic workflow, which reads it for the ids, KMeans and the rows, refuse an input whose
    plan gives other values at each read (ids from monotonically_increasing_id() after a
    shuffle, uuid()), before any work, naming the remedy; the same rows materialised pass."""
    docs, _ = text_docs
    random_ids = docs.drop("id").withColumn("id", F.monotonically_increasing_id())
    with pytest.raises(InputError, match="non-deterministic .* FuzzyDeduplicator reads it twice"):
        FuzzyDeduplicator(idCol="id").transform(random_ids)
    data = random_ids.localCheckpoint()
    kept = FuzzyDeduplicator(idCol="id").transform(data)
    assert 0 < kept.count() < data.count()
    uuids = embedding_docs.withColumn("doc", F.expr("uuid()"))
    with pytest.raises(InputError, match="semantic dedup reads it more than once"):
        semantic_duplicates(uuids, embedding_col="emb", id_col="doc", n_clusters=2)
    estimator, model = _estimator_and_model(dim=4)
    with pytest.raises(InputError, match="SemanticDeduplicator.fit reads it more than once"):
        estimator.fit(uuids)
    with pytest.raises(InputError, match="the semantic model's transform reads it more than"):
        model.transform(uuids)
