"""Fuzzy deduplication workflow: ids -> MinHash band keys -> LSH buckets -> edges ->
connected components -> ids to remove (ALGORITHMS.md, "Fuzzy deduplication").

This module only puts the steps together; each step lives in its own module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkdedup.config import FuzzyConfig
from sparkdedup.device import resolve_device
from sparkdedup.fuzzy.components import connected_components
from sparkdedup.fuzzy.edges import bucket_edges
from sparkdedup.fuzzy.identify import identify_duplicates
from sparkdedup.fuzzy.lsh import lsh_buckets
from sparkdedup.fuzzy.minhash import minhash_band_buckets
from sparkdedup.ids import ID_COL, assign_ids, require_columns, require_string_column
from sparkdedup.stages import StageRunner

log = logging.getLogger("sparkdedup")


@dataclass
class FuzzyResult:
    """What a fuzzy run produced: the documents with their ids, the duplicates and counts."""

    documents: DataFrame
    duplicates: DataFrame
    components: DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


def _as_config(config: FuzzyConfig | None, params: dict[str, Any]) -> FuzzyConfig:
    base = config if config is not None else FuzzyConfig()
    return base.replace(**params) if params else base


def validate_input(df: DataFrame, config: FuzzyConfig) -> None:
    """Eager checks before any Spark job: columns exist and have usable types."""
    require_string_column(df, config.text_col, "text")
    require_columns(df, {"id": config.id_col, "priority": config.priority_col})


def run_fuzzy(
    df: DataFrame,
    config: FuzzyConfig,
    runner: StageRunner,
    *,
    fingerprint: dict[str, Any] | None = None,
) -> FuzzyResult:
    """Run every stage through `runner` (cached or persisted) and collect the statistics."""
    validate_input(df, config)
    device = resolve_device(config.device)
    base = dict(fingerprint or {})
    base.update(text_col=config.text_col, id_col=config.id_col)

    # Derived ids are already checkpointed by assign_ids; user ids are a cheap projection.
    documents = runner.run("ids", base, lambda: assign_ids(df, id_col=config.id_col), persist=False)
    keys_fp = dict(
        base,
        char_ngrams=config.char_ngrams,
        num_bands=config.num_bands,
        minhashes_per_band=config.minhashes_per_band,
        seed=config.seed,
        use_64_bit_hash=config.use_64_bit_hash,
    )
    keys = runner.run(
        "minhash",
        keys_fp,
        lambda: minhash_band_buckets(
            documents,
            text_col=config.text_col,
            id_col=ID_COL,
            char_ngrams=config.char_ngrams,
            seed=config.seed,
            use_64_bit_hash=config.use_64_bit_hash,
            num_bands=config.num_bands,
            minhashes_per_band=config.minhashes_per_band,
            bands=range(config.num_bands),
            device=device,
        ),
    )
    # bands_per_iteration only bounds each shuffle: the buckets do not depend on it.
    buckets = runner.run(
        "lsh",
        keys_fp,
        lambda: lsh_buckets(
            keys,
            num_bands=config.num_bands,
            minhashes_per_band=config.minhashes_per_band,
            bands_per_iteration=config.bands_per_iteration,
        ),
    )
    edges = runner.run("edges", keys_fp, lambda: bucket_edges(buckets))
    cc_fp = dict(keys_fp, cc="components")
    components = runner.run(
        "components",
        cc_fp,
        lambda: connected_components(
            edges,
            backend=config.cc_backend,
            max_driver_edges=config.driver_cc_max_edges,
            checkpoint_dir=config.checkpoint_dir,
            device=device,
        ),
    )
    duplicates = runner.run(
        "duplicates",
        dict(cc_fp, priority_col=config.priority_col, priority_ascending=config.priority_ascending),
        lambda: identify_duplicates(
            components,
            documents=documents,
            id_col=ID_COL,
            priority_col=config.priority_col,
            priority_ascending=config.priority_ascending,
        ),
    )
    input_docs = runner.rows["ids"]
    removed = runner.rows["duplicates"]
    keyed_docs = runner.rows["minhash"] // config.num_bands
    stats = {
        "input_docs": input_docs,
        "removed_docs": removed,
        "kept_docs": input_docs - removed,
        "groups": components.filter(F.col("id") == F.col("component")).count(),
        "docs_in_groups": runner.rows["components"],
        "null_or_empty_text_docs": input_docs - keyed_docs,
        "candidate_bucket_rows": runner.rows["lsh"],
        "edges": runner.rows["edges"],
        "device": device,
        "seconds": dict(runner.seconds),
    }
    if stats["null_or_empty_text_docs"]:
        log.warning(
            "sparkdedup: %d documents have a null or empty %r; they have no shingles, are never "
            "grouped and are always kept",
            stats["null_or_empty_text_docs"],
            config.text_col,
        )
    return FuzzyResult(
        documents=documents, duplicates=duplicates, components=components, stats=stats
    )


def fuzzy_duplicates(df: DataFrame, config: FuzzyConfig | None = None, **params: Any) -> DataFrame:
    """Near-duplicate documents to remove, with the document kept in their group.

    Parameters
    ----------
    df : the corpus; needs ``config.text_col`` (string) and, when set, ``config.id_col``
        (unique integers or strings) and ``config.priority_col``.
    config : a `FuzzyConfig`; keyword arguments override its fields
        (``fuzzy_duplicates(df, char_ngrams=20)``).

    Returns
    -------
    DataFrame
        ``[id, kept_id]``: one row per document to remove. ``id`` holds the user's id values
        when ``config.id_col`` is set, else the derived ids of `sparkdedup.assign_ids`
        (the same for the same rows, whatever their order or partitioning). Documents with a
        null or empty text are never grouped and never removed.

    Notes
    -----
    The stages run eagerly (each is persisted once and counted, connected components may be
    solved on the driver); the returned DataFrame is small and locally checkpointed, and the
    intermediate stages are released. `run_fuzzy` with a `StageRunner` keeps every stage.
    """
    cfg = _as_config(config, params)
    # The band keys alone are num_bands rows per document: the runner frees them and the other
    # stages once the small result is checkpointed.
    with StageRunner(df.sparkSession) as runner:
        result = run_fuzzy(df, cfg, runner)
        duplicates = result.duplicates.localCheckpoint(eager=True)
    log.info("sparkdedup fuzzy: %s", {k: v for k, v in result.stats.items() if k != "seconds"})
    return duplicates
