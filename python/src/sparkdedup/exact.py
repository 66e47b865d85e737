"""Exact deduplication (NeMo Curator's ExactDeduplicationWorkflow): documents whose texts are
byte-identical, after the optional normalisation (`sparkdedup.kernels.textnorm`), form a group
and one of them is kept by the keep rule (smallest id, or the best priority value).

Cost: one read of the corpus, which hashes each (normalised) text to 128 bits (two xxhash64
with different seeds) and writes a narrow table of ``[key, t1, t2, (priority)]``; then one
shuffle of that narrow table by (t1, t2), on which the keep rule's aggregations and joins run.
No text goes through a shuffle. User ids are checked unique by one more shuffle of the ids
(``assume_unique_ids`` skips it). Derived ids are worked out at the end, for the rows the
duplicates name only, as in the fuzzy workflow.

Two different texts share a 128-bit hash with probability about n^2 / 2^129 (below 10^-18 for
10^10 documents).
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkdedup.columns import named
from sparkdedup.config import ExactConfig
from sparkdedup.fuzzy.identify import keep_one_per_group
from sparkdedup.fuzzy.scan import PRIORITY, TEXT_COL, TEXT_H1, TEXT_H2, hashed_texts
from sparkdedup.fuzzy.workflow import (
    FuzzyResult,
    _documents,
    _id_order,
    _pyarrow_version,
    keep_rule_stages,
    run_stats,
    split_settings,
    validate_input,
)
from sparkdedup.ids import (
    H1,
    H2,
    POS,
    check_unique_ids,
    id_column,
    with_content_keys,
)
from sparkdedup.removal import mark_ids
from sparkdedup.sizing import arrow_batch_conf, partitions_for, text_sizes
from sparkdedup.stages import StageRunner, detach, run_dir

log = logging.getLogger("sparkdedup")

_DOC_ROW_BYTES = 48  # (id, t1, t2, priority) in the shuffle, for sizing its partitions


def exact_scan(df: DataFrame, config: ExactConfig) -> DataFrame:
    """``[id | _dedup_h1, _dedup_h2, _dedup_pos; t1, t2; (priority)]``: one narrow row per input
    row, its key and the 128-bit hash of its (normalised) text (nulls for a null or empty
    text)."""
    text = named(config.text_col)
    if config.id_col is not None:
        source, keys = df, [id_column(df, config.id_col).alias("id")]
    else:
        source, keys = with_content_keys(df), [F.col(H1), F.col(H2), F.col(POS)]
    extra = [named(config.priority_col).alias(PRIORITY)] if config.priority_col else []
    hashed = hashed_texts(source, keys, extra, text, config.normalize)
    return hashed.drop(TEXT_COL)


def run_exact(
    df: DataFrame,
    config: ExactConfig,
    runner: StageRunner,
    *,
    fingerprint: dict[str, Any] | None = None,
    count_groups: bool = True,
) -> FuzzyResult:
    """Run the stages through `runner`: ``hashes`` (the one read of the corpus), ``ids`` (the
    uniqueness check of user ids, unless ``assume_unique_ids``), then ``duplicates`` (for
    derived ids: ``groups`` by input position, ``ids`` of the rows named, ``duplicates``).

    Returns a `FuzzyResult` (``components`` is empty: exact dedup has none; ``stats["edges"]``
    is 0; no ``groups`` and ``docs_in_groups`` when not `count_groups`, as `run_fuzzy`).
    """
    validate_input(df, config)
    spark = df.sparkSession
    fp = dict(fingerprint or {})
    fp.update(
        workflow="exact",
        text_col=config.text_col,
        id_col=config.id_col,
        priority_col=config.priority_col,
        normalize=config.normalize,
    )
    if config.normalize != "none":
        fp["pyarrow"] = _pyarrow_version()
    derived = config.id_col is None
    if derived:
        fp["splits"] = split_settings(spark)
    metrics = {"with_text": F.count(TEXT_H1)}
    if derived:
        metrics["checksum"] = F.sum(F.col(H1).cast("decimal(38,0)"))
    # Arrow batches bounded by bytes too (the normalisation runs in Python workers).
    scan = runner.run(
        "hashes",
        fp,
        lambda: exact_scan(df, config),
        metrics=metrics,
        # (Without normalisation the texts are hashed in the JVM: no batches to size.)
        conf=lambda: arrow_batch_conf(
            spark, text_sizes(df, config.text_col) if config.normalize != "none" else None
        ),
    )
    summary = dict(runner.observed["hashes"], rows=runner.rows["hashes"])
    summary.setdefault("checksum", 0)
    n_docs = summary["rows"]
    parts = partitions_for(spark, n_docs * _DOC_ROW_BYTES)
    if derived:
        table = scan.withColumn("id", F.col(POS)).withColumn("_dedup_order", _id_order())
    else:
        table = scan
        if not config.assume_unique_ids:
            runner.timed(
                "ids", n_docs, lambda: check_unique_ids(scan.select("id"), name=config.id_col)
            )
    extra = (["priority"] if config.priority_col else []) + (["_dedup_order"] if derived else [])
    members = table.where(F.col(TEXT_H1).isNotNull()).select("id", TEXT_H1, TEXT_H2, *extra)
    dup_fp = dict(fp, priority_ascending=config.priority_ascending)
    keys, duplicates, counts = keep_rule_stages(
        runner,
        scan,
        dup_fp,
        lambda: keep_one_per_group(
            members,
            group=[TEXT_H1, TEXT_H2],
            priority="priority" if config.priority_col else None,
            ascending=config.priority_ascending,
            order="_dedup_order" if derived else None,
            partitions=parts,
        ),
        derived=derived,
        partitions=parts,
        count_groups=count_groups,
    )
    stats = {
        **run_stats(runner, summary, counts, derived=derived),
        "edges": 0,
        "normalize": config.normalize,
    }
    empty = spark.createDataFrame([], "id bigint, component bigint")
    return FuzzyResult(
        documents=_documents(df, config),  # type: ignore[arg-type]
        duplicates=duplicates,
        components=empty,
        ids=keys,
        stats=stats,
    )


def exact_duplicates(df: DataFrame, config: ExactConfig | None = None, **params: Any) -> DataFrame:
    """Exact-duplicate documents to remove, with the document kept in their group.

    Parameters
    ----------
    df : the corpus; needs ``config.text_col`` (string) and, when set, ``config.id_col``
        (unique integers or strings) and ``config.priority_col``.
    config : an `ExactConfig`; keyword arguments override its fields
        (``exact_duplicates(df, normalize="lower")``).

    Returns
    -------
    DataFrame
        ``[id, kept_id]``, one row per document to remove, as `fuzzy_duplicates` (user ids, or
        the derived ids of `sparkdedup.assign_ids`). Documents with a null or empty text are
        never grouped and never removed.
    """
    base = config if config is not None else ExactConfig()
    cfg = base.replace(**params) if params else base
    with StageRunner(df.sparkSession, work_dir=run_dir(cfg.checkpoint_dir)) as runner:
        result = run_exact(df, cfg, runner)
        duplicates = detach(mark_ids(result.duplicates, cfg.id_col), cfg.checkpoint_dir)
    log.info("sparkdedup exact: %s", {k: v for k, v in result.stats.items() if k != "seconds"})
    return duplicates
