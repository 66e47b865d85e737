"""pyspark.ml wrappers of the two workflows, for Pipelines and save/load (DESIGN.md, "Public API").

`FuzzyDeduplicator` is a Transformer over `fuzzy.workflow.run_fuzzy`. `SemanticDeduplicator` is an
Estimator: `fit` runs SemDeDup's KMeans step and returns a `SemanticDeduplicatorModel` that keeps
the centroids; its `transform` assigns documents to them, then runs the per-cluster pairwise step
and the eps threshold (ALGORITHMS.md, "Semantic deduplication"). Every Param takes its default
from `FuzzyConfig` / `SemanticConfig`, with the field name in camelCase (``char_ngrams`` ->
``charNgrams``; SemanticConfig's ``model`` is ``embeddingModel``).
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from typing import Any

import numpy as np
from pyspark.ml import Estimator, Model, Transformer
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsReader,
    DefaultParamsWritable,
    DefaultParamsWriter,
    MLReader,
    MLWriter,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkdedup.columns import named
from sparkdedup.config import FuzzyConfig, SemanticConfig, sort_keys
from sparkdedup.errors import ConfigError, InputError, SchemaError
from sparkdedup.ids import ID_COL, check_deterministic
from sparkdedup.ml_params import ConfigParams, config_params
from sparkdedup.removal import mark_ids, remove_duplicates
from sparkdedup.stages import StageRunner, detach, release_later, run_dir

__all__ = ["FuzzyDeduplicator", "SemanticDeduplicator", "SemanticDeduplicatorModel"]

log = logging.getLogger("sparkdedup")


def _kept_rows(documents: DataFrame, duplicates: DataFrame) -> DataFrame:
    """The rows of `documents` (with ``_dedup_id``) not listed in `duplicates`, without the id."""
    remove = duplicates.select(F.col("id").alias(ID_COL))  # an anti join: repeats do no harm
    return documents.join(remove, on=ID_COL, how="left_anti").drop(ID_COL)


# ----------------------------------------------------------------------------------- fuzzy
class _Writer(DefaultParamsWriter):
    """pyspark's writer, with ``overwrite()`` also on Spark Connect (pyspark.ml replaces the
    old directory through the JVM, which a Connect client does not have: here the directory is
    deleted through `sparkdedup.fs`, which names a path it cannot reach)."""

    def _handleOverwrite(self, path: str) -> None:  # noqa: N802 - pyspark's name
        from sparkdedup.compat import is_connect  # noqa: PLC0415
        from sparkdedup.fs import delete  # noqa: PLC0415

        if is_connect(self.sparkSession):
            delete(self.sparkSession, path)
        else:
            super()._handleOverwrite(path)

    def save(self, path: str) -> None:
        _check_persistence(self.sparkSession)
        _check_target(self.sparkSession, path, overwrite=self.shouldOverwrite)
        super().save(path)


class _Writable(DefaultParamsWritable):
    def write(self) -> MLWriter:
        return _Writer(self)


class _Reader(DefaultParamsReader):
    """pyspark's reader, reading the metadata literally (pyspark's reads it as a glob, so a
    stage saved under ``run[1]/`` loaded a sibling ``run1/``) and only that of its own class
    (pyspark's returns whatever class the metadata names)."""

    def load(self, path: str) -> Any:
        _check_persistence(self.sparkSession)
        metadata = _metadata(self.sparkSession, path, self.cls)
        instance = self.cls()
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata)
        return instance


class _Readable(DefaultParamsReadable):
    @classmethod
    def read(cls) -> MLReader:
        return _Reader(cls)


def _check_target(spark: Any, path: str, overwrite: bool) -> None:
    """ConfigError when `path` holds anything but a saved pyspark.ml stage (a directory with
    ``metadata/``), or holds one and `overwrite` is off: pyspark's ``overwrite()`` deletes
    whatever is there and its ``save`` writes beside what is there. Not checked where this
    process cannot reach `path` (over Spark Connect, a path that is not local)."""
    from sparkdedup import fs  # noqa: PLC0415

    if not fs.reachable(spark, path):
        return
    entry = fs.status(spark, path)
    children = fs.list_dir(spark, path) if entry is not None and entry.is_dir else []
    if entry is None or (entry.is_dir and not children):
        return
    if not any(child.name == "metadata" and child.is_dir for child in children):
        names = ", ".join(child.name for child in children[:5]) + (
            ", ..." if len(children) > 5 else ""
        )
        what = "a file" if not entry.is_dir else f"a directory of other files ({names})"
        raise ConfigError(
            f"cannot save to {path!r}: it is {what}, not a saved pyspark.ml stage, and "
            "sparkdedup never replaces files it did not write; choose a new or empty directory"
        )
    if not overwrite:
        raise ConfigError(
            f"{path!r} holds a saved stage already; write().overwrite().save({path!r}) replaces it"
        )


def _metadata(spark: Any, path: str, cls: type) -> dict[str, Any]:
    """The metadata of the `cls` stage saved at `path`, read literally; InputError naming the
    path when it holds no saved stage or one of another class."""
    from sparkdedup import fs  # noqa: PLC0415

    where = f"{path.rstrip('/')}/metadata"
    if fs.reachable(spark, path) and fs.status(spark, where) is None:
        gone = "does not exist" if fs.status(spark, path) is None else "has no metadata/"
        raise InputError(
            f"{path!r} holds no saved pyspark.ml stage (it {gone}); give a path that a "
            "stage's write().save(path) wrote"
        )
    line = spark.read.text(fs.literal(spark, where)).first()
    if line is None:
        raise InputError(f"{path!r} holds no saved pyspark.ml stage: {where!r} is empty")
    metadata = json.loads(line[0])
    expected = f"{cls.__module__}.{cls.__name__}"
    if metadata.get("class") != expected:
        found = str(metadata.get("class"))
        raise InputError(
            f"{path!r} holds a saved {found}, not a {expected}: load it with "
            f"{found.rsplit('.', 1)[-1]}.load"
        )
    return metadata


def _check_persistence(spark: Any) -> None:
    """ConfigError on a pyspark 3.5 Spark Connect client, whose pyspark.ml saves and loads
    through the SparkContext it does not have."""
    import pyspark  # noqa: PLC0415

    from sparkdedup.compat import connect_35  # noqa: PLC0415

    if connect_35(spark):
        raise ConfigError(
            "saving and loading pyspark.ml stages over Spark Connect needs pyspark 4.0 or newer "
            f"on the client; pyspark {pyspark.__version__}'s ml persistence goes through the "
            "SparkContext, which a Connect session does not have. Use a classic session, or "
            "keep the parameters and call the stage's transform (or sparkdedup.fuzzy_duplicates) "
            "with them"
        )


@config_params(FuzzyConfig)
class _FuzzyDeduplicatorParams(ConfigParams):
    """Params of `FuzzyDeduplicator`: the fields of `FuzzyConfig` and ``outputMode``."""


class FuzzyDeduplicator(Transformer, _FuzzyDeduplicatorParams, _Readable, _Writable):
    """Fuzzy deduplication (MinHash + LSH + connected components) as a Transformer.

    ``transform(df)`` returns the rows of `df` that remain (``outputMode="deduplicated"``, the
    default: same columns, one document kept per group by the keep rule), or ``[id, kept_id]``,
    one row per document to remove (``outputMode="duplicates"``, as `fuzzy_duplicates`). It runs
    the stages eagerly (each persisted once), keeps the small duplicates result
    (persisted) and releases the stages before it returns.
    Keyword arguments of the constructor are the Params (defaults: `FuzzyConfig`'s).

    Examples
    --------
    >>> from pyspark.ml import Pipeline
    >>> from pyspark.ml.feature import SQLTransformer
    >>> from sparkdedup.ml import FuzzyDeduplicator
    >>> dedup = FuzzyDeduplicator(idCol="id", priorityCol="length")
    >>> dedup.getCharNgrams(), dedup.getNumBands(), dedup.getOutputMode()
    (24, 20, 'deduplicated')
    >>> length = SQLTransformer(statement="SELECT *, length(text) AS length FROM __THIS__")  # doctest: +SKIP
    >>> model = Pipeline(stages=[length, dedup]).fit(docs)  # doctest: +SKIP
    >>> model.write().overwrite().save("/tmp/fuzzy-pipeline")  # doctest: +SKIP
    >>> kept = PipelineModel.load("/tmp/fuzzy-pipeline").transform(docs)  # doctest: +SKIP
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.setParams(**kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        from sparkdedup.fuzzy.workflow import run_fuzzy  # noqa: PLC0415
        from sparkdedup.removal import drop_rows, removed_row_keys  # noqa: PLC0415
        from sparkdedup.sizing import broadcastable, join_hint  # noqa: PLC0415

        config, mode = self.getConfig(), self._output_mode()
        spark = dataset.sparkSession
        if mode != "duplicates":
            check_deterministic(
                dataset,
                "FuzzyDeduplicator reads it twice (to find the duplicates, then to drop them)",
            )
        # As `fuzzy_duplicates`: keep the small results (the duplicates and, for derived ids,
        # the keys of the rows to drop), free the stages.
        with StageRunner(spark, work_dir=run_dir(config.checkpoint_dir)) as runner:
            result = run_fuzzy(dataset, config, runner)
            removed = result.stats["removed_docs"]
            duplicates = detach(mark_ids(result.duplicates, config.id_col), config.checkpoint_dir)
            keys = None
            if config.id_col is None:
                hint = join_hint(spark, removed)
                keys = removed_row_keys(duplicates, result.ids, hint=hint)
                keys = detach(keys, config.checkpoint_dir)
        log.info("sparkdedup fuzzy: %s", {k: v for k, v in result.stats.items() if k != "seconds"})
        if mode == "duplicates":
            return duplicates
        # As the CLI: the removal is a broadcast while its hash table fits (no shuffle of the
        # rows), else a shuffle of the rows.
        broadcast = broadcastable(spark, removed, removal=True)
        if keys is None:
            return remove_duplicates(dataset, duplicates, id_col=config.id_col, broadcast=broadcast)
        return drop_rows(dataset, keys, broadcast=broadcast)


# -------------------------------------------------------------------------------- semantic
@config_params(SemanticConfig)
class _SemanticDeduplicatorParams(ConfigParams):
    """Params of `SemanticDeduplicator` and its model: `SemanticConfig`'s fields, ``outputMode``."""


def _vectors(documents: DataFrame, config: SemanticConfig, device: str) -> DataFrame:
    """The ids and embeddings of the documents that have one, as in `run_semantic`: the
    user's column as it is (so that errors name it) beside ``_dedup_id``, or the model's
    embeddings of the non-blank texts in ``embedding`` beside ``id``, with their `COPY_KEYS`;
    `_vector_id` and `_vector_col` name the columns."""
    from sparkdedup.semantic.embed import document_embeddings  # noqa: PLC0415

    if config.embedding_col is not None:
        return documents.select(ID_COL, named(config.embedding_col))
    return document_embeddings(
        documents,
        id_col=ID_COL,
        text_col=config.text_col,
        model=config.model,
        batch_size=config.embedding_batch_size,
        device=device,
    )


def _vector_col(config: SemanticConfig) -> str:
    return config.embedding_col or "embedding"


def _vector_id(config: SemanticConfig) -> str:
    return ID_COL if config.embedding_col is not None else "id"


class SemanticDeduplicator(Estimator, _SemanticDeduplicatorParams, _Readable, _Writable):
    """Semantic deduplication (SemDeDup) as an Estimator.

    ``fit(df)`` embeds the documents (``embeddingCol``, or ``textCol`` with ``embeddingModel``),
    L2-normalises them and fits KMeans; the returned `SemanticDeduplicatorModel` keeps the
    centroids. Fit on a sample and transform the whole corpus, or fit and transform the same
    data (then the clusters are those of `semantic_duplicates`). Keyword arguments of the
    constructor are the Params (defaults: `SemanticConfig`'s).

    Examples
    --------
    >>> from sparkdedup.ml import SemanticDeduplicator
    >>> semdedup = SemanticDeduplicator(embeddingCol="embedding", nClusters=20, eps=0.05)
    >>> semdedup.getEps(), semdedup.getWhichToKeep(), semdedup.getEmbeddingModel()
    (0.05, 'hard', 'sentence-transformers/all-MiniLM-L6-v2')
    >>> model = semdedup.fit(docs)  # doctest: +SKIP
    >>> model.write().overwrite().save("/tmp/semdedup-model")  # doctest: +SKIP
    >>> kept = SemanticDeduplicatorModel.load("/tmp/semdedup-model").transform(docs)  # doctest: +SKIP
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.setParams(**kwargs)

    def _fit(self, dataset: DataFrame) -> SemanticDeduplicatorModel:
        from sparkdedup.device import resolve_device  # noqa: PLC0415
        from sparkdedup.semantic.kmeans import check_kmeans_session, fit_centroids  # noqa: PLC0415
        from sparkdedup.semantic.workflow import (  # noqa: PLC0415
            documents_with_ids,
            validate_input,
        )

        config = self.getConfig()
        self._output_mode()  # a bad one is refused before the fit, not after it
        validate_input(dataset, config)
        check_deterministic(dataset, "SemanticDeduplicator.fit reads it more than once")
        check_kmeans_session(dataset.sparkSession)
        device = resolve_device(config.device, dataset.sparkSession)
        with StageRunner(dataset.sparkSession, work_dir=run_dir(config.checkpoint_dir)) as runner:
            documents = documents_with_ids(dataset, config, runner, {}, persist=False)
            vectors = runner.run("embeddings", {}, lambda: _vectors(documents, config, device))
            centers = fit_centroids(
                vectors,
                n_clusters=config.n_clusters,
                max_iter=config.max_iter,
                tol=config.tol,
                seed=config.seed,
                device=device,
                id_col=_vector_id(config),
                embedding_col=_vector_col(config),
                fit_fraction=config.fit_fraction,
            )
            # The embeddings of the data it was fitted on stay with the model, so that
            # transforming that same data does not embed it again.
            embedded = runner.keep("embeddings") if config.embedding_col is None else None
        log.info("sparkdedup semantic fit: %d centroids of dimension %d", *centers.shape)
        model = self._copyValues(SemanticDeduplicatorModel(centers))
        if embedded is not None:
            model._hold_fitted(dataset, embedded, config)
        return model


def _checked_centers(centers: Any) -> np.ndarray:
    """`centers` as a ``(k, dim)`` float64 array; ConfigError unless it is one of finite
    numbers (a NaN centroid would take no document, a vector has no dimension)."""
    array = np.asarray(centers, dtype=np.float64)
    if array.ndim != 2:
        raise ConfigError(f"centers must be a (k, dim) array of centroids, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad.size:
        raise ConfigError(
            f"centers must be finite numbers; row {int(bad[0])} holds NaN or infinity"
        )
    return array


def _embedded_as(config: SemanticConfig) -> tuple[str | None, str, str]:
    """What the embeddings of a fit stand for: the ids of ``idCol``, the texts of ``textCol``,
    the model ``embeddingModel`` (the other Params do not change them)."""
    return (config.id_col, config.text_col, config.model)


class _FittedEmbeddings:
    """The data a model was fitted on and its persisted embeddings, held by the model and its
    copies (shallow: pyspark's ``Params.copy``), for the first transform by any of them.
    Released when none of them holds this any more. `key`: what they stand for
    (`_embedded_as`)."""

    def __init__(self, source: DataFrame, embedded: DataFrame, key: tuple[Any, ...]) -> None:
        self.key = key
        self._fitted: tuple[DataFrame, DataFrame] | None = (source, embedded)
        self._release = weakref.finalize(self, release_later, embedded)
        self._release.atexit = False

    def take(self) -> tuple[DataFrame, DataFrame] | None:
        """(the fitted data, its embeddings) for the caller to use or release; None once
        taken."""
        fitted, self._fitted = self._fitted, None
        self._release.detach()
        return fitted


class SemanticDeduplicatorModel(
    Model, _SemanticDeduplicatorParams, _Readable, DefaultParamsWritable
):
    """A fitted `SemanticDeduplicator`: the KMeans centroids and the Params.

    ``transform(df)`` assigns each embedded document to its nearest centroid, ranks every
    cluster, finds each document's most similar higher-ranked document and applies eps. It
    returns the rows of `df` that remain (``outputMode="deduplicated"``) or
    ``[id, max_id, cosine_sim_score]`` (``outputMode="duplicates"``, as `semantic_duplicates`).
    Documents without text are never removed. The stages run eagerly (each persisted once); the
    small duplicates result is persisted and the stages are released.
    Saved models hold the centroids as Parquet under ``<path>/centroids``.
    """

    def __init__(self, centers: np.ndarray | None = None) -> None:
        super().__init__()
        self._centers = np.zeros((0, 0)) if centers is None else _checked_centers(centers)
        #: The DataFrame it was fitted on and its persisted embeddings, shared with the
        #: model's copies (``transform(df, params)`` makes one): the first transform of that
        #: same DataFrame by any of them uses them instead of embedding again, then releases
        #: them; a transform of other data releases them unused.
        self._fitted_embeddings: _FittedEmbeddings | None = None

    def _hold_fitted(self, dataset: DataFrame, embedded: DataFrame, config: SemanticConfig) -> None:
        """Keep the fitted data's persisted embeddings (of `config`'s ids, texts and model) for
        a first transform of that data; released then, or when the model and its copies are
        garbage collected before one (a model refitted, saved or used for its centroids only):
        at the next sparkdedup call after that."""
        self._fitted_embeddings = _FittedEmbeddings(dataset, embedded, _embedded_as(config))

    def _embeddings_of(self, dataset: DataFrame, config: SemanticConfig) -> DataFrame | None:
        """The fitted data's embeddings when `dataset` is that data (the same plan) and
        `config` takes the same ids, texts and model as the fit, else None; either way the
        model and its copies let go of them."""
        held, self._fitted_embeddings = self._fitted_embeddings, None
        fitted = held.take() if held is not None else None
        if fitted is None:
            return None
        source, embedded = fitted
        try:
            same = dataset.sameSemantics(source) and held.key == _embedded_as(config)
        except Exception:  # noqa: BLE001 - a plan that cannot be compared is not the same
            same = False
        if same:
            return embedded
        embedded.unpersist()
        return None

    def clusterCenters(self) -> np.ndarray:  # noqa: N802 - pyspark.ml naming
        """The centroids, a ``(k, dim)`` float64 array (raw KMeans centres, not normalised)."""
        return self._centers.copy()

    def _transform(self, dataset: DataFrame) -> DataFrame:
        from sparkdedup.device import resolve_device  # noqa: PLC0415
        from sparkdedup.semantic.workflow import validate_input  # noqa: PLC0415

        config, mode = self.getConfig(), self._output_mode()
        validate_input(dataset, config)
        device = resolve_device(config.device, dataset.sparkSession)
        # As `semantic_duplicates`: keep the small result, free the stages.
        with StageRunner(dataset.sparkSession, work_dir=run_dir(config.checkpoint_dir)) as runner:
            documents, duplicates = self._duplicates(dataset, config, device, runner)
            duplicates = detach(mark_ids(duplicates, config.id_col), config.checkpoint_dir)
        if mode == "duplicates":
            return duplicates
        return _kept_rows(documents, duplicates)

    def _duplicates(
        self, dataset: DataFrame, config: SemanticConfig, device: str, runner: StageRunner
    ) -> tuple[DataFrame, DataFrame]:
        """The documents with their ``_dedup_id`` and the duplicates, each stage run by `runner`."""
        from sparkdedup.semantic.embed import embedding_stats  # noqa: PLC0415
        from sparkdedup.semantic.identify import identify_duplicates  # noqa: PLC0415
        from sparkdedup.semantic.kmeans import assign_clusters  # noqa: PLC0415
        from sparkdedup.semantic.pairwise import pairwise_similarity  # noqa: PLC0415
        from sparkdedup.semantic.workflow import documents_with_ids  # noqa: PLC0415

        check_deterministic(dataset, "the semantic model's transform reads it more than once")
        documents = documents_with_ids(dataset, config, runner, {}, persist=False)
        if config.embedding_col is None:
            vectors = self._embeddings_of(dataset, config)
            if vectors is None:
                vectors = runner.run("embeddings", {}, lambda: _vectors(documents, config, device))
            else:
                log.info("sparkdedup semantic: the data the model was fitted on, embedded once")
                runner.adopt("embeddings", vectors)  # released with the other stages
        else:
            vectors = _vectors(documents, config, device)
        stats = embedding_stats(vectors, _vector_col(config), id_col=_vector_id(config))
        if stats.rows and self._centers.size == 0:
            raise ConfigError(
                "the model has no centroids: it was fitted on data without embedded documents"
            )
        if stats.rows and stats.dim != self._centers.shape[1]:
            raise SchemaError(
                f"embeddings have {stats.dim} dimensions but the model's centroids have "
                f"{self._centers.shape[1]}; transform data embedded like the data it was fitted on"
            )

        def clusters() -> DataFrame:
            assigned = assign_clusters(
                vectors,
                self._centers,
                id_col=_vector_id(config),
                embedding_col=_vector_col(config),
                device=device,
            )
            if config.sort_cols:
                names = [name for name, _ in sort_keys(config.sort_cols)]
                meta = documents.select(F.col(ID_COL).alias("id"), *[named(n) for n in names])
                assigned = assigned.join(meta, on="id", how="inner")
            return assigned

        ranked = runner.run("clusters", {}, clusters)
        scores = runner.run(
            "pairwise",
            {},
            lambda: pairwise_similarity(
                ranked,
                which_to_keep=config.which_to_keep,
                sim_metric=config.sim_metric,
                sort_cols=config.sort_cols,
                seed=config.rank_seed,
                batch_size=config.pairwise_batch_size,
                device=device,
                max_cluster_size=config.max_cluster_size,
            ),
        )
        duplicates = runner.run(
            "duplicates", {}, lambda: identify_duplicates(scores, eps=config.eps)
        )
        return documents, duplicates

    @classmethod
    def read(cls) -> MLReader:
        return _SemanticModelReader(cls)

    def write(self) -> MLWriter:
        return _SemanticModelWriter(self)


class _SemanticModelWriter(_Writer):
    """Params as metadata JSON (pyspark's format) plus ``centroids/``: Parquet
    ``[index int, center array<double>]``."""

    def saveImpl(self, path: str) -> None:
        super().saveImpl(path)
        centers = self.instance._centers
        rows = [(i, [float(x) for x in c]) for i, c in enumerate(centers)]
        frame = self.sparkSession.createDataFrame(rows, "index int, center array<double>")
        frame.coalesce(1).write.parquet(os.path.join(path, "centroids"))


class _SemanticModelReader(_Reader):
    def load(self, path: str) -> SemanticDeduplicatorModel:
        model = super().load(path)
        model._centers = _read_centers(self.sparkSession, f"{path.rstrip('/')}/centroids")
        return model


def _read_centers(spark: Any, path: str) -> np.ndarray:
    """The centroids `_SemanticModelWriter` wrote to `path`, read literally, in the order of
    their index (the cluster ids); InputError naming `path` when they are gone or damaged."""
    from sparkdedup import fs  # noqa: PLC0415

    if fs.reachable(spark, path) and fs.status(spark, path) is None:
        raise InputError(
            f"the saved model has no centroids: {path!r} does not exist; save the model again"
        )
    rows = spark.read.parquet(fs.literal(spark, path)).select("index", "center").collect()
    rows.sort(key=lambda r: (r["index"] is None, r["index"]))
    indices = [r["index"] for r in rows]
    dims = sorted({len(r["center"]) for r in rows if r["center"] is not None})
    problem = None
    if indices != list(range(len(rows))):
        shown = ", ".join(map(str, indices[:10])) + (", ..." if len(indices) > 10 else "")
        problem = (
            f"their indices are {shown}, where {len(rows)} centroids have 0 to {len(rows) - 1}"
        )
    elif any(r["center"] is None for r in rows):
        problem = "a centroid is null"
    elif len(dims) > 1:
        problem = f"they are of {' and '.join(map(str, dims))} dimensions, not of one"
    if problem is None and not rows:
        return np.zeros((0, 0))
    if problem is None:
        try:  # a null value reads as NaN
            return _checked_centers([r["center"] for r in rows])
        except ConfigError as err:
            problem = str(err)
    raise InputError(f"the centroids in {path!r} are damaged: {problem}; save the model again")
