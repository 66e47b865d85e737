"""Semantic deduplication workflow (SemDeDup): ids -> embeddings -> normalise + KMeans ->
per-cluster pairwise similarity -> ids to remove (ALGORITHMS.md, "Semantic deduplication").

This module only puts the steps together; each step lives in its own module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkdedup.columns import named
from sparkdedup.config import SemanticConfig, check_sort_direction, sort_keys
from sparkdedup.device import resolve_device
from sparkdedup.errors import SchemaError
from sparkdedup.fuzzy.identify import check_rank_type
from sparkdedup.ids import (
    ID_COL,
    assign_ids,
    check_batch,
    check_deterministic,
    check_reserved_names,
    check_user_ids,
    id_column,
    require_columns,
    require_string_column,
)
from sparkdedup.removal import mark_ids
from sparkdedup.semantic.embed import (
    check_model,
    document_embeddings,
    embedding_array,
    model_fingerprint,
    require_embedding_backend,
)
from sparkdedup.semantic.identify import eps_summary, identify_duplicates
from sparkdedup.semantic.kmeans import check_kmeans_session, kmeans_clusters
from sparkdedup.semantic.pairwise import pairwise_similarity
from sparkdedup.sizing import arrow_batch_conf, partitions_for, text_sizes
from sparkdedup.stages import StageRunner, detach, run_dir

log = logging.getLogger("sparkdedup")

#: Bytes a document takes in the pairwise shuffle besides its embedding (id, cluster, ranking
#: keys, row overhead), for sizing its partitions (`sparkdedup.sizing`).
_ROW_BYTES = 64


@dataclass
class SemanticResult:
    """What a semantic run produced: the documents with their ids, the duplicates, the pairwise
    scores of every embedded document, the cluster assignments and counts."""

    documents: DataFrame
    duplicates: DataFrame
    pairwise: DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    clusters: DataFrame | None = None


def _as_config(config: SemanticConfig | None, params: dict[str, Any]) -> SemanticConfig:
    base = config if config is not None else SemanticConfig()
    return base.replace(**params) if params else base


def validate_input(df: DataFrame, config: SemanticConfig) -> None:
    """Eager checks before any Spark job: columns exist and have usable types, and none
    has a name sparkdedup reserves; the input is not a stream."""
    check_batch(df)
    check_reserved_names(df)
    if config.embedding_col is not None:
        embedding_array(df, config.embedding_col)
    else:
        require_string_column(df, config.text_col, "text")
        require_embedding_backend()
        check_model(config.model)
    require_columns(df, {"id": config.id_col})
    names = [name for name, _ in sort_keys(config.sort_cols)]
    for name in names:
        check_sort_direction(name, df.columns)
    require_columns(df, {f"sort_cols entry {c!r}": c for c in names})
    for name in names:
        check_rank_type(df.schema[name].dataType, f"sort column {name!r}")
    # In any case: Spark resolves "ID" to the pairwise stage's "id" as well.
    reserved = {"id", "centroid", "embedding", "l2_dist_to_cent", "cosine_dist_to_cent"}
    clash = sorted({name for name in names if name.lower() in reserved})
    if clash:
        raise SchemaError(
            f"sort_cols may not use the column name(s) {', '.join(map(repr, clash))}, which the "
            f"pairwise stage uses itself (in any case); rename them"
        )


def documents_with_ids(
    df: DataFrame,
    config: SemanticConfig,
    runner: StageRunner,
    fingerprint: dict[str, Any],
    *,
    persist: bool = True,
) -> DataFrame:
    """The input with its ids in ``_dedup_id``, as the stage ``ids``.

    User ids are a projection of the input: one job over the id column checks that they are
    unique and counts the rows; the corpus is not copied. Derived ids cost a shuffle of the rows
    (`sparkdedup.ids.assign_ids`), so they are kept (written to the cache, or persisted unless
    `persist` is False) and not derived again by every later stage.
    """
    if config.id_col is not None:
        runner.timed("ids", None, lambda: check_user_ids(df, config.id_col))
        return df.withColumn(ID_COL, id_column(df, config.id_col))
    return runner.run("ids", fingerprint, lambda: assign_ids(df), persist=persist)


def run_semantic(
    df: DataFrame,
    config: SemanticConfig,
    runner: StageRunner,
    *,
    fingerprint: dict[str, Any] | None = None,
    more_eps: tuple[float, ...] = (),
) -> SemanticResult:
    """Run every stage through `runner` (cached or persisted) and collect the statistics.

    Stages: ``ids``, ``embeddings`` (only when embedding text), ``kmeans``, ``pairwise``,
    ``duplicates``; each fingerprint holds every parameter its output depends on. With
    `more_eps`, ``stats["eps_summary"]`` gives the documents removed at ``config.eps`` and at
    each of them, from the same pairwise scores (the duplicates are ``config.eps``'s).
    """
    validate_input(df, config)
    check_deterministic(df, "semantic dedup reads it more than once (ids, KMeans, the rows)")
    check_kmeans_session(df.sparkSession)
    device = resolve_device(config.device, df.sparkSession)
    base = dict(fingerprint or {})
    base.update(id_col=config.id_col)

    documents = documents_with_ids(df, config, runner, base)
    if config.embedding_col is None:
        # The batch size and the device change embeddings only by float rounding, so they are
        # not part of the fingerprint: changing them reuses the cached embeddings.
        source_fp = dict(
            base,
            text_col=config.text_col,
            model=config.model,
            # Read only where a stage may be resumed (the CLI's cache).
            model_files=model_fingerprint(config.model) if runner.resumable else None,
        )

        vectors = runner.run(
            "embeddings",
            source_fp,
            lambda: document_embeddings(
                documents,
                id_col=ID_COL,
                text_col=config.text_col,
                model=config.model,
                batch_size=config.embedding_batch_size,
                device=device,
            ),
            # The texts reach the model's Python workers in Arrow batches bounded by bytes too.
            conf=lambda: arrow_batch_conf(df.sparkSession, text_sizes(df, config.text_col)),
        )
        vector_id, vector_col = "id", "embedding"
    else:
        source_fp = dict(base, embedding_col=config.embedding_col)
        # The user's column under its own name (errors name it), quoted (a dot is part of the
        # name), beside the ids under sparkdedup's name (an embedding column "ID" is no clash).
        vectors = documents.select(ID_COL, named(config.embedding_col))
        vector_id, vector_col = ID_COL, config.embedding_col

    kmeans_fp = dict(
        source_fp,
        n_clusters=config.n_clusters,
        max_iter=config.max_iter,
        tol=config.tol,
        seed=config.seed,
        fit_fraction=config.fit_fraction,
        kmeans_backend=device,  # cuML and pyspark.ml find different (equally valid) clusters
    )
    clusters = runner.run(
        "kmeans",
        kmeans_fp,
        lambda: kmeans_clusters(
            vectors,
            n_clusters=config.n_clusters,
            max_iter=config.max_iter,
            tol=config.tol,
            seed=config.seed,
            device=device,
            id_col=vector_id,
            embedding_col=vector_col,
            fit_fraction=config.fit_fraction,
        ),
    )

    # The batch size and the device change the pairwise scores by float32 rounding only (see
    # the kernel): a cache written with others is reused.
    ranked_by = sort_keys(config.sort_cols)
    pairwise_fp = dict(
        kmeans_fp,
        which_to_keep=config.which_to_keep,
        sim_metric=config.sim_metric,
        sort_cols=[f"{n}:{'asc' if a else 'desc'}" for n, a in ranked_by] or None,
        random_seed=config.rank_seed if config.which_to_keep == "random" else None,
        with_centroid=True,
    )

    def pairwise() -> DataFrame:
        ranked = clusters
        if config.sort_cols:
            meta = documents.select(F.col(ID_COL).alias("id"), *[named(n) for n, _ in ranked_by])
            ranked = clusters.join(meta, on="id", how="inner")
        return pairwise_similarity(
            ranked,
            which_to_keep=config.which_to_keep,
            sim_metric=config.sim_metric,
            sort_cols=config.sort_cols,
            seed=config.rank_seed,
            batch_size=config.pairwise_batch_size,
            device=device,
            max_cluster_size=config.max_cluster_size,
        )

    first = clusters.select(F.size("embedding").alias("dim")).first()
    embedded = runner.rows["kmeans"]
    # The shuffle by cluster carries each document's embedding (doubles at most) and its keys;
    # the duplicates are a filter of the scores, in the same partitions.
    row_bytes = _ROW_BYTES + 8 * (first["dim"] if first else 0)
    scores = runner.run(
        "pairwise",
        pairwise_fp,
        pairwise,
        partitions=partitions_for(df.sparkSession, embedded * row_bytes),
    )
    duplicates = runner.run(
        "duplicates",
        dict(pairwise_fp, eps=config.eps),
        lambda: identify_duplicates(scores, eps=config.eps),
    )
    sizes = [r["count"] for r in clusters.groupBy("centroid").count().collect()]
    input_docs = runner.rows["ids"]
    removed = runner.rows["duplicates"]
    stats = {
        "input_docs": input_docs,
        "removed_docs": removed,
        "kept_docs": input_docs - removed,
        "embedded_docs": embedded,
        "null_or_empty_text_docs": input_docs - embedded,
        "clusters": len(sizes),
        "largest_cluster": max(sizes, default=0),
        "n_clusters": config.n_clusters,
        "embedding_dim": first["dim"] if first else None,
        "device": device,
        "seconds": dict(runner.seconds),
    }
    if more_eps:
        stats["eps_summary"] = eps_summary(scores, [config.eps, *more_eps])
    if stats["null_or_empty_text_docs"]:
        log.warning(
            "sparkdedup: %d documents have a null, empty or blank %r; they are not embedded, "
            "never compared and always kept",
            stats["null_or_empty_text_docs"],
            config.text_col,
        )
    return SemanticResult(
        documents=documents,
        duplicates=duplicates,
        pairwise=scores,
        stats=stats,
        clusters=clusters,
    )


def semantic_duplicates(
    df: DataFrame, config: SemanticConfig | None = None, **params: Any
) -> DataFrame:
    """Semantic near-duplicates to remove (SemDeDup), each with its most similar kept-side match.

    Parameters
    ----------
    df : the corpus; needs ``config.text_col`` (string) or ``config.embedding_col``
        (array<float|double>, an array of integers or an ml Vector; same dimension on every
        row, no nulls, NaN or zero vectors) and, when set, ``config.id_col`` (unique integers
        or strings) and the ``config.sort_cols``.
    config : a `SemanticConfig`; keyword arguments override its fields
        (``semantic_duplicates(df, embedding_col="emb", n_clusters=20)``).

    Returns
    -------
    DataFrame
        ``[id, max_id, cosine_sim_score float]``: one row per document to remove, with the
        higher-ranked document of its cluster it is most similar to (which may itself be
        removed: removal is non-transitive, as in SemDeDup). ``id`` and ``max_id`` hold the
        user's id values when ``config.id_col`` is set, else the derived ids of
        `sparkdedup.assign_ids`. Documents with a null, empty or blank text are never embedded
        and never removed.

    Notes
    -----
    The stages run eagerly (each is computed once and counted; KMeans is fitted on the
    cluster): written under ``checkpoint_dir`` when set (removed when this returns; nothing
    is cached), else persisted and released when this returns. The returned DataFrame is
    small: written under ``checkpoint_dir`` when set (left for the caller), else persisted.
    `run_semantic` with a `StageRunner` keeps every stage instead.
    """
    cfg = _as_config(config, params)
    # The result is small; freeing the persisted stages (embeddings, clusters, scores) returns
    # the memory they hold, about 4 * d bytes per document each.
    with StageRunner(df.sparkSession, work_dir=run_dir(cfg.checkpoint_dir)) as runner:
        result = run_semantic(df, cfg, runner)
        duplicates = detach(mark_ids(result.duplicates, cfg.id_col), cfg.checkpoint_dir)
    log.info("sparkdedup semantic: %s", {k: v for k, v in result.stats.items() if k != "seconds"})
    return duplicates
