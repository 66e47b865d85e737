"""Fuzzy deduplication workflow: one scan (text hashes and MinHash band buckets) -> ids -> LSH
edges, band group by band group -> connected components -> ids to remove (ALGORITHMS.md,
"Fuzzy deduplication"; SCALE.md, "Cost model").

This module only puts the steps together; each step lives in its own module. The corpus is read
once here (the scan); everything after it works on the narrow scan table. Exact copies of a text
are MinHashed once per Arrow batch and join their text's group without going through LSH.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparkdedup import redact
from sparkdedup.columns import named
from sparkdedup.config import ExactConfig, FuzzyConfig
from sparkdedup.device import resolve_device
from sparkdedup.errors import SchemaError
from sparkdedup.fuzzy.components import check_rounds_session, connected_components
from sparkdedup.fuzzy.identify import BY_INDEX, check_priority_type, group_duplicates
from sparkdedup.fuzzy.index import (
    FuzzyIndex,
    IndexWriter,
    against_bands,
    against_edges,
    against_shuffle_keys,
    check_config,
    check_disjoint,
    index_rows,
    index_writer,
)
from sparkdedup.fuzzy.lsh import KEY_TASK_BYTES, auto_bands, band_group_edges, band_groups
from sparkdedup.fuzzy.scan import TEXT_COL, band_col, hashed_texts, scan_documents
from sparkdedup.fuzzy.verify import JACCARD, edge_jaccard
from sparkdedup.ids import (
    H1,
    H2,
    ID_COL,
    POS,
    assign_ids,
    check_batch,
    check_reserved_names,
    check_unique_ids,
    derived_ids,
    h1_prefix,
    id_column,
    require_columns,
    require_string_column,
    with_content_keys,
)
from sparkdedup.removal import mark_ids
from sparkdedup.sizing import (
    arrow_batch_conf,
    broadcastable,
    join_hint,
    partitions_for,
    text_sizes,
)
from sparkdedup.stages import StageRunner, detach, run_dir
from sparkdedup.tuning import verify_bands

log = logging.getLogger("sparkdedup")

# Bytes a row takes in the shuffles, for sizing their partitions (sparkdedup.sizing).
_DOC_ROW_BYTES = 48  # (id, t1, t2, priority)
_EDGE_ROW_BYTES = 24
_VERIFY_ROW_BYTES = 4096  # an edge with both texts in the verify shuffles: about 2 KB each


@dataclass
class FuzzyResult:
    """What a fuzzy run produced.

    ``duplicates`` ``[id, kept_id]``; ``components`` ``[id, component]`` of the documents that
    went through LSH (for derived ids, by input position); ``ids`` the narrow key table:
    ``[id]``, or for derived ids ``[id, _dedup_h1, _dedup_h2, _dedup_pos]`` of the rows the
    duplicates name (what `sparkdedup.remove_duplicates` needs to find them without deriving
    every id); ``documents`` the input with its ids in ``_dedup_id`` (lazy: derived ids cost a
    shuffle of the rows when it is used); ``stats``.
    """

    documents: DataFrame
    duplicates: DataFrame
    components: DataFrame
    ids: DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    #: With ``verify="jaccard"``: ``[id, jaccard]``, each removed document's exact Jaccard to
    #: the document kept in its group when a verified edge joins them (else null).
    kept_jaccard: DataFrame | None = None
    #: The scan table (``[id, t1, t2, (priority), b0 ..]``): what an index is written from.
    scan: DataFrame | None = None
    #: Against an index: ``[id, kept_id, _dedup_by_index]``, the duplicates with whether each
    #: was removed for an indexed document (then its whole group was: its kept one is indexed).
    by_index: DataFrame | None = None


def _as_config(config: FuzzyConfig | None, params: dict[str, Any]) -> FuzzyConfig:
    base = config if config is not None else FuzzyConfig()
    return base.replace(**params) if params else base


def validate_input(df: DataFrame, config: FuzzyConfig | ExactConfig) -> None:
    """Eager checks before any Spark job: columns exist and have usable types, and none
    has a name sparkdedup reserves; the input is not a stream."""
    check_batch(df)
    check_reserved_names(df)
    require_string_column(df, config.text_col, "text")
    require_columns(df, {"id": config.id_col, "priority": config.priority_col})
    if config.id_col is not None:
        id_column(df, config.id_col)
    if config.priority_col is not None:
        check_priority_type(df.schema[config.priority_col].dataType, config.priority_col)


def _documents(df: DataFrame, config: FuzzyConfig) -> DataFrame:
    """The input with its ids (lazy): the user's column, or every row's derived id."""
    if config.id_col is not None:
        return df.withColumn(ID_COL, id_column(df, config.id_col))
    return assign_ids(df)


def run_fuzzy(
    df: DataFrame,
    config: FuzzyConfig,
    runner: StageRunner,
    *,
    fingerprint: dict[str, Any] | None = None,
    count_groups: bool = True,
) -> FuzzyResult:
    """Run every stage through `runner` (cached or persisted) and collect the statistics
    (without ``groups`` and ``docs_in_groups`` when not `count_groups`: the CLI takes them from
    the size histogram of its group report instead, `sparkdedup.reports`).

    Stages: ``minhash`` (the scan: one read of the corpus); for user ids ``ids``, the
    uniqueness check (unless ``assume_unique_ids``); ``edges`` (LSH, `bands_per_iteration`
    bands at a time, each group materialised before the next); ``components``; then
    ``duplicates``. With derived ids the rows are known by their input position until
    ``groups`` (the duplicates by position), then ``ids`` derives the ids of the rows named
    there and ``duplicates`` maps them. Each stage is released once the stages reading it are
    done.

    With ``config.against`` (an index, `sparkdedup.fuzzy.index`) only `df`'s documents are
    removed: ``edges`` joins their band keys with the index's, and a group holding an indexed
    document loses all its new ones.
    """
    validate_input(df, config)
    spark = df.sparkSession
    if config.cc_backend != "driver":
        # Before any job: a pyspark 3.5 Connect client can run distributed rounds only with a
        # directory to write them to (the one the components stage hands them below).
        check_rounds_session(spark, runner.scratch("components") or config.checkpoint_dir)
    index = None
    if config.against is not None:
        check_config(config, "against")
        index = FuzzyIndex.open(spark, config.against, "against")
        index.check_params(config, "against")
        # From the schema, before the scan: ids of another type than the index's.
        index.check_ids(df.select(id_column(df, config.id_col).alias("id")), config.id_col)
    device = resolve_device(config.device, spark, config.use_64_bit_hash)
    requested = (config.num_bands, config.minhashes_per_band)
    if config.verify == "jaccard":
        # The same hashes in more, shorter bands: the check removes the extra candidates.
        bands, rows = verify_bands(config.threshold, config.num_hashes)
        config = config.replace(num_bands=bands, minhashes_per_band=rows)
        log.info(
            "sparkdedup: verified mode, LSH candidates from %d bands of %d hashes (of %d x %d)",
            bands,
            rows,
            *requested,
        )
    base = dict(fingerprint or {})
    base.update(text_col=config.text_col, id_col=config.id_col, priority_col=config.priority_col)
    keys_fp = dict(
        base,
        char_ngrams=config.char_ngrams,
        num_bands=config.num_bands,
        minhashes_per_band=config.minhashes_per_band,
        seed=config.seed,
        use_64_bit_hash=config.use_64_bit_hash,
    )
    if config.normalize != "none":
        keys_fp.update(normalize=config.normalize, pyarrow=_pyarrow_version())
    if config.id_col is None:
        # Derived ids order identical rows by their input position, which follows the input
        # splits: a cached scan is reused only under the same split settings.
        keys_fp["splits"] = split_settings(spark)
    scan_fp = dict(keys_fp)
    if index is not None:
        # (A password in the index's URI is starred: the key is written down.)
        keys_fp["against"] = {
            "path": redact.uri(index.path),
            "segments": index.manifest["segments"],
        }

    scan = runner.run(
        "minhash",
        scan_fp,
        lambda: _scan(df, config, device),
        conf=lambda: arrow_batch_conf(spark, text_sizes(df, config.text_col)),
        metrics=_summary_metrics(config),
    )
    summary = dict(runner.observed["minhash"], rows=runner.rows["minhash"])
    summary.setdefault("checksum", 0)
    n_docs = summary["rows"]
    doc_parts = partitions_for(spark, n_docs * _DOC_ROW_BYTES)
    derived = config.id_col is None
    if derived:
        # Inside the workflow a row is known by its input position (unique in the run); the
        # keep rule orders rows as their derived ids would, and derived ids are worked out at
        # the end for the rows the output names only.
        table = scan.withColumn("id", F.col(POS)).withColumn("_dedup_order", _id_order())
    else:
        table = scan
        if not config.assume_unique_ids:
            runner.timed(
                "ids", n_docs, lambda: check_unique_ids(scan.select("id"), name=config.id_col)
            )
    if index is not None and not config.assume_unique_ids:
        runner.timed(
            "index_ids",
            n_docs,
            lambda: check_disjoint(
                index,
                scan.select("id"),
                config.id_col,
                broadcast=broadcastable(spark, n_docs),
            ),
        )

    per_group = config.bands_per_iteration or auto_bands(spark, summary["nodes"], config.num_bands)
    if index is not None and not config.bands_per_iteration:
        # Groups whose Bloom filters of new keys keep enough of the index out of the shuffle.
        per_group = against_bands(
            spark, summary["nodes"], index.documents, config.num_bands, per_group
        )
    groups = band_groups(config.num_bands, per_group)
    log.info(
        "sparkdedup: LSH in %d group(s) of up to %d bands (%d documents MinHashed)",
        len(groups),
        per_group,
        summary["nodes"],
    )

    def edges() -> DataFrame:
        def group_edges(group: list[int]) -> DataFrame:
            keys = summary["nodes"] * len(group)
            if index is not None:
                # The index's keys that pass the filter share the shuffle with the new ones.
                shuffled = against_shuffle_keys(
                    spark, summary["nodes"], len(group), index.documents
                )
                parts = partitions_for(spark, shuffled * KEY_TASK_BYTES)
                return against_edges(table, index, group, parts, keys=keys)
            return band_group_edges(
                table,
                group,
                partitions_for(spark, keys * KEY_TASK_BYTES),
                by_text=config.verify == "jaccard",
            )

        if len(groups) == 1:
            # One group: its edges are the stage's, written once.
            return group_edges(groups[0]).distinct()
        # Each group is materialised before the next starts: peak shuffle and storage are one
        # group's, not all bands'.
        parts = [
            runner.materialise("edges", f"bands-{group[0]}", group_edges(group)) for group in groups
        ]
        union = parts[0]
        for part in parts[1:]:
            union = union.unionByName(part)
        return union.distinct()

    # The verified mode anchors buckets by text (`band_group_edges`): other edges.
    edges_fp = dict(keys_fp, anchors="text") if config.verify == "jaccard" else keys_fp
    edges_df = runner.run(
        "edges", edges_fp, edges, partitions=partitions_for(spark, n_docs * _EDGE_ROW_BYTES)
    ).select("src", "dst")
    candidates = runner.rows["edges"]
    verified = candidates
    cc_fp = dict(keys_fp, cc="components")
    graph = edges_df
    if config.verify == "jaccard":
        cc_fp.update(verify=config.verify, threshold=config.threshold)
        at_least = F.col(JACCARD) >= F.lit(float(config.threshold))
        # Some spare tasks: an anchor of many members makes one partition heavy.
        verify_parts = max(
            partitions_for(spark, candidates * _VERIFY_ROW_BYTES), 2 * _parallelism(spark)
        )
        scored = runner.run(
            "verify",
            cc_fp,
            lambda: edge_jaccard(
                edges_df,
                _texts(df, config),
                config.char_ngrams,
                verify_parts,
                keep=lambda texts: runner.materialise("verify", "texts", texts, verify_parts),
            ),
            partitions=verify_parts,
            # Each pair brings both texts to the Python workers.
            conf=lambda: arrow_batch_conf(spark, text_sizes(df, config.text_col, per_row=2)),
            metrics={"verified": F.count(F.when(at_least, 1))},
        )
        verified = int(runner.observed["verify"].get("verified") or 0)
        runner.release("edges")
        graph = scored.where(at_least).select("src", "dst")
    components = runner.run(
        "components",
        cc_fp,
        lambda: runner.owned(
            connected_components(
                graph,
                backend=config.cc_backend,
                max_driver_edges=config.driver_cc_max_edges,
                checkpoint_dir=runner.scratch("components") or config.checkpoint_dir,
                # The driver path solves on the driver: cuGraph when the driver has it and a
                # GPU.
                device="cpu" if device == "cpu" else "auto",
                # The edges stage holds distinct pairs (the smaller id first), none null.
                edge_count=verified,
            )
        ),
    )
    if config.verify != "jaccard":
        runner.release("edges")
    dup_fp = dict(cc_fp, priority_ascending=config.priority_ascending)
    verified_mode = config.verify == "jaccard"
    indexed = None
    if index is not None:
        # The components' documents that are not new are indexed ones (new ids and the
        # index's are disjoint, checked above): found without reading the index again, at a
        # cost that follows the new data and the documents it matched.
        new_ids = scan.select("id")
        if broadcastable(spark, n_docs):
            new_ids = F.broadcast(new_ids)
        indexed = components.select("id").join(new_ids, on="id", how="left_anti")
    keys, duplicates, counts = keep_rule_stages(
        runner,
        scan,
        dup_fp,
        lambda: group_duplicates(
            table,
            components,
            priority=config.priority_col is not None,
            priority_ascending=config.priority_ascending,
            order="_dedup_order" if derived else None,
            partitions=doc_parts,
            indexed=indexed,
            with_texts=verified_mode,
        ),
        derived=derived,
        partitions=doc_parts,
        count_groups=count_groups,
        # Counted on the stage's write: the documents removed for an indexed one.
        metrics={"near_indexed": F.count(F.when(F.col(BY_INDEX), 1))} if index else None,
        carry=(*(_TEXT_PAIR if verified_mode else ()), *((BY_INDEX,) if index else ())),
    )
    # The verified mode's duplicates carry both documents' text hashes, for `_kept_jaccard`;
    # against an index, whether each was removed for an indexed document, for the reports.
    with_texts = duplicates
    by_index = duplicates.select("id", "kept_id", BY_INDEX) if index is not None else None
    if verified_mode or index is not None:
        duplicates = duplicates.select("id", "kept_id")
    kept_by_index = counts.pop("groups_kept_by_index", None)
    stats = {
        **run_stats(runner, summary, counts, derived=derived),
        "minhashed_docs": summary["nodes"],
        "edges": candidates,
        "lsh": {"num_bands": config.num_bands, "minhashes_per_band": config.minhashes_per_band},
        "device": device,
    }
    if index is not None:
        near = runner.observed["duplicates"]["near_indexed"]
        stats["against"] = {
            "index": index.path,
            "indexed_docs": index.documents,
            "removed_near_indexed": near,
            "removed_within_new": counts["removed_docs"] - near,
        }
        if kept_by_index is not None:
            stats["against"]["groups_kept_by_index"] = kept_by_index
    kept_jaccard = None
    if config.verify == "jaccard":
        stats.update(verified_edges=verified, rejected_edges=candidates - verified)
        kept_jaccard = runner.run(
            "kept_jaccard",
            dup_fp,
            lambda: _kept_jaccard(scored, with_texts),
            partitions=doc_parts,
        )
        runner.release("verify")
    if stats["null_or_empty_text_docs"]:
        once = "" if config.normalize == "none" else f" (once normalised: {config.normalize})"
        log.warning(
            "sparkdedup: %d documents have a null or empty %r%s; they have no shingles, are "
            "never grouped and are always kept",
            stats["null_or_empty_text_docs"],
            config.text_col,
            once,
        )
    return FuzzyResult(
        documents=_documents(df, config),
        duplicates=duplicates,
        components=components,
        ids=keys,
        stats=stats,
        kept_jaccard=kept_jaccard,
        scan=scan,
        by_index=by_index,
    )


def _scan(df: DataFrame, config: FuzzyConfig, device: str) -> DataFrame:
    """The scan table of `df` (`fuzzy.scan.scan_documents`) under `config`."""
    return scan_documents(
        df,
        text_col=config.text_col,
        id_col=config.id_col,
        priority_col=config.priority_col,
        char_ngrams=config.char_ngrams,
        num_bands=config.num_bands,
        minhashes_per_band=config.minhashes_per_band,
        seed=config.seed,
        use_64_bit_hash=config.use_64_bit_hash,
        device=device,
        normalize=config.normalize,
    )


def run_stats(
    runner: StageRunner, summary: dict[str, Any], counts: dict[str, int], *, derived: bool
) -> dict[str, Any]:
    """The statistics every fuzzy and exact run reports, from the scan's observed `summary`
    (``rows``, ``with_text``, ``checksum``) and the keep rule's `counts`."""
    n_docs = summary["rows"]
    return {
        "input_docs": n_docs,
        **counts,
        "kept_docs": n_docs - counts["removed_docs"],
        "null_or_empty_text_docs": n_docs - summary["with_text"],
        "content_checksum": str(summary["checksum"]) if derived else None,
        "seconds": dict(runner.seconds),
    }


#: The text hashes the verified mode's duplicates carry: the document's and its keeper's.
_TEXT_PAIR = ("t1", "t2", "kept_t1", "kept_t2")


def _kept_jaccard(scored: DataFrame, duplicates: DataFrame) -> DataFrame:
    """``[id, jaccard]``: each removed document's verified Jaccard to the document kept in its
    group: 1.0 for an exact copy of it, else from a scored edge between their two texts (the
    edges' ends carry their texts' hashes), whichever rows of those texts it joined; null when
    no edge joins the two texts (the document joined the group through others). Which rows of
    a text carry the edges follows the input's layout; their texts do not. Narrow: the edges
    and the duplicates, which carry both documents' text hashes (`_TEXT_PAIR`), no text."""

    def text(t1: str, t2: str) -> Column:
        return F.struct(F.col(t1).alias("t1"), F.col(t2).alias("t2"))

    text_a, text_b = text("src_t1", "src_t2"), text("dst_t1", "dst_t2")
    edges = (
        scored.select(
            F.least(text_a, text_b).alias("_dedup_a"),
            F.greatest(text_a, text_b).alias("_dedup_b"),
            JACCARD,
        )
        .groupBy("_dedup_a", "_dedup_b")
        .agg(F.max(JACCARD).alias(JACCARD))  # one value a pair of texts
    )
    doc, kept = text("t1", "t2"), text("kept_t1", "kept_t2")
    pairs = duplicates.select(
        "id",
        (doc == kept).alias("_dedup_copy"),
        F.least(doc, kept).alias("_dedup_a"),
        F.greatest(doc, kept).alias("_dedup_b"),
    )
    return pairs.join(edges, on=["_dedup_a", "_dedup_b"], how="left").select(
        "id", F.when(F.col("_dedup_copy"), F.lit(1.0)).otherwise(F.col(JACCARD)).alias(JACCARD)
    )


def _texts(df: DataFrame, config: FuzzyConfig) -> DataFrame:
    """``[id, text, t1, t2]`` of every row as the scan hashed it (normalised, with its hash),
    keyed as the workflow keys rows: the user's id, or the input position for derived ids."""
    text = named(config.text_col)
    if config.id_col is not None:
        keys, carried = [id_column(df, config.id_col).alias("id")], []
        source = df
    else:
        # The content hash is carried to the end: a position is then taken over every column,
        # as in the scan. Had Spark pruned the columns the texts do not need, a round-robin
        # repartition in the input (which sorts the rows it deals out by their columns) would
        # place other rows at the positions, and each text would be checked as another's.
        source, keys, carried = with_content_keys(df), [F.col(POS).alias("id"), F.col(H1)], [H1]
    hashed = hashed_texts(source, keys, [], text, config.normalize)
    return hashed.select("id", F.col(TEXT_COL).alias("text"), "t1", "t2", *carried)


def keep_rule_stages(
    runner: StageRunner,
    scan: DataFrame,
    fingerprint: dict[str, Any],
    pairs: Callable[[], DataFrame],
    *,
    derived: bool,
    partitions: int,
    count_groups: bool = True,
    metrics: dict[str, Column] | None = None,
    carry: Sequence[str] = (),
) -> tuple[DataFrame, DataFrame, dict[str, int]]:
    """The last stages of the fuzzy and exact workflows: ``duplicates`` from `pairs` (for
    derived ids: ``groups`` by input position, then ``ids``, the derived ids of the rows named,
    and ``duplicates``). Returns the key table, the duplicates and their counts
    (``removed_docs``; with `count_groups` also ``groups`` and ``docs_in_groups``, from a
    distinct count of the keepers: three small jobs; ``docs_in_groups`` counts input documents
    only, not the indexed documents that keep groups against an index). `metrics` (aggregates
    over the rows `pairs` returns, whose columns past ``id`` and ``kept_id`` the duplicates
    then drop; user ids only)
    are observed on the stage's write, their values in ``runner.observed["duplicates"]``.
    `carry`: columns of `pairs` past ``id`` and ``kept_id`` that the duplicates keep."""
    assert not (derived and metrics), "duplicates metrics need user ids"
    if derived:
        # The rows named carry their keeper's and their own id order (`keep_one_per_group`),
        # whose h1 prefix tells which prefixes `_output_ids` ranks.
        fingerprint = dict(fingerprint, groups="prefixes")
        grouped = runner.run(
            "groups",
            fingerprint,
            lambda: pairs().select(
                "id",
                "kept_id",
                F.col("_dedup_order.p").alias(_PREFIX),
                F.col("_dedup_kept_order.p").alias(_KEPT_PREFIX),
                *carry,
            ),
            partitions=partitions,
        )
        spark = scan.sparkSession
        named_rows = 2 * runner.rows["groups"]
        keys = runner.run(
            "ids",
            fingerprint,
            lambda: _output_ids(scan, grouped, join_hint(spark, named_rows)),
            partitions=partitions,
        )
        duplicates = runner.run(
            "duplicates",
            fingerprint,
            lambda: _with_derived_ids(grouped, keys, join_hint(spark, runner.rows["ids"]), carry),
            partitions=partitions,
        )
        runner.release("groups")
    else:
        grouped = runner.run(
            "duplicates", fingerprint, pairs, partitions=partitions, metrics=metrics
        )
        keys, duplicates = scan.select("id"), grouped.select("id", "kept_id", *carry)
    removed = runner.rows["duplicates"]
    counts = {"removed_docs": removed}
    if count_groups:
        # A group kept by an indexed document (against an index) holds no kept input document.
        against = BY_INDEX in duplicates.columns
        indexed = (
            F.countDistinct(F.when(F.col(BY_INDEX), F.col("kept_id"))) if against else F.lit(0)
        )
        groups, kept_indexed = (
            duplicates.select(F.countDistinct("kept_id"), indexed).first() if removed else (0, 0)
        )
        counts.update(groups=groups, docs_in_groups=removed + groups - kept_indexed)
        if against:
            counts["groups_kept_by_index"] = kept_indexed
    return keys, duplicates, counts


_PREFIX, _KEPT_PREFIX = "_dedup_p", "_dedup_kept_p"


def _id_order() -> Any:
    """The order of derived ids, from the scan's keys: the 31-bit prefix of h1, then h1, h2 and
    the input position (`sparkdedup.ids.derived_ids`)."""
    prefix = h1_prefix()
    return F.struct(
        prefix.alias("p"), F.col(H1).alias("h1"), F.col(H2).alias("h2"), F.col(POS).alias("id")
    )


def _output_ids(scan: DataFrame, pairs: DataFrame, hint: str) -> DataFrame:
    """``[id, _dedup_h1, _dedup_h2, _dedup_pos]``: the derived ids of the rows `pairs` (input
    positions, with their h1 prefixes) names. A derived id ranks a row among the rows of its
    h1 prefix, so those prefixes' rows (a narrow selection of the scan, one shuffle by prefix)
    are ranked; no other row is. `hint`: the strategy of the joins with the rows named."""
    named = (
        pairs.select(F.col("id").alias(POS), _PREFIX)
        .unionByName(pairs.select(F.col("kept_id").alias(POS), F.col(_KEPT_PREFIX).alias(_PREFIX)))
        .distinct()
    )
    wanted = named.select(_PREFIX).distinct()
    keys = scan.select(H1, H2, POS)
    ranked = derived_ids(keys.join(wanted.hint(hint), h1_prefix() == F.col(_PREFIX), "left_semi"))
    return ranked.join(named.select(POS).hint(hint), on=POS).select(
        F.col(ID_COL).alias("id"), H1, H2, POS
    )


def _with_derived_ids(
    pairs: DataFrame, keys: DataFrame, hint: str, carry: Sequence[str] = ()
) -> DataFrame:
    """`pairs` (input positions) as ``[id, kept_id, (carry)]`` of derived ids; `hint`: the
    strategy of the joins with the key table."""
    ids = keys.select(F.col(POS), F.col("id").alias("_dedup_derived"))
    return (
        pairs.join(ids.withColumnRenamed(POS, "id").hint(hint), on="id")
        .select(F.col("_dedup_derived").alias("id"), "kept_id", *carry)
        .join(ids.withColumnRenamed(POS, "kept_id").hint(hint), on="kept_id")
        .select("id", F.col("_dedup_derived").alias("kept_id"), *carry)
    )


def _pyarrow_version() -> str:
    """Normalisation uses pyarrow's Unicode tables: a cached scan is reused under the same."""
    import pyarrow

    return str(pyarrow.__version__)


def split_settings(spark: Any) -> dict[str, Any]:
    """The settings that decide the input splits (derived ids order identical rows by input
    position, which follows them): a split's size follows the files' bytes, the open cost and
    the partitions wanted (minPartitionNum, else leafNodeDefaultParallelism, else the default
    parallelism); maxPartitionNum packs the splits into fewer partitions."""
    splits = {
        key: spark.conf.get(key, None)
        for key in (
            "spark.sql.files.maxPartitionBytes",
            "spark.sql.files.openCostInBytes",
            "spark.sql.files.minPartitionNum",
            "spark.sql.files.maxPartitionNum",
            "spark.sql.leafNodeDefaultParallelism",
        )
    }
    splits["parallelism"] = _parallelism(spark)
    return splits


def _parallelism(spark: Any) -> int:
    from sparkdedup.sizing import parallelism

    return parallelism(spark)


def _summary_metrics(config: FuzzyConfig) -> dict[str, Any]:
    """What the workflow needs to know of the scan table, observed as it is written (no pass of
    its own): documents with a text, documents MinHashed (the LSH nodes) and, for derived ids,
    the sum of the rows' content hashes (`sparkdedup.ids.content_checksum`)."""
    metrics = {"with_text": F.count("t1"), "nodes": F.count(band_col(0))}
    if config.id_col is None:
        metrics["checksum"] = F.sum(F.col(H1).cast("decimal(38,0)"))
    return metrics


def fuzzy_duplicates(
    df: DataFrame,
    config: FuzzyConfig | None = None,
    *,
    index_out: str | None = None,
    overwrite_index: bool = False,
    **params: Any,
) -> DataFrame:
    """Near-duplicate documents to remove, with the document kept in their group.

    Parameters
    ----------
    df : the corpus; needs ``config.text_col`` (string) and, when set, ``config.id_col``
        (unique integers or strings) and ``config.priority_col``.
    config : a `FuzzyConfig`; keyword arguments override its fields
        (``fuzzy_duplicates(df, char_ngrams=20)``). With ``against=INDEX`` only `df`'s
        documents are removed, those near an indexed document or near each other.
    index_out : write the index of the documents kept (`write_index`'s layout) there: one
        more segment of the ``against`` index when it is that path, else a new index (an
        earlier index there is replaced only with `overwrite_index`). Needs ``id_col``.

    Returns
    -------
    DataFrame
        ``[id, kept_id]``: one row per document to remove. ``id`` holds the user's id values
        when ``config.id_col`` is set, else the derived ids of `sparkdedup.assign_ids`
        (the same for the same rows, whatever their order or partitioning). Documents with a
        null or empty text are never grouped and never removed.

    Notes
    -----
    The stages run eagerly (each is computed once and counted, connected components may be
    solved on the driver): with ``checkpoint_dir`` each is written under it (removed when
    this returns) and nothing is cached, else each is persisted and released when this
    returns. The returned DataFrame is small: written under ``checkpoint_dir`` when set (left
    for the caller), else persisted (a lost executor's part is recomputed; see
    `sparkdedup.stages.detach`). `run_fuzzy` with a `StageRunner` keeps every stage.
    """
    cfg = _as_config(config, params)
    writer = None
    if index_out is not None:
        writer = index_writer(
            df.sparkSession, index_out, cfg, overwrite=overwrite_index, option="index_out"
        )
    with StageRunner(df.sparkSession, work_dir=run_dir(cfg.checkpoint_dir)) as runner:
        result = run_fuzzy(df, cfg, runner)
        duplicates = detach(mark_ids(result.duplicates, cfg.id_col), cfg.checkpoint_dir)
        if writer is not None:
            try:
                writer.stage(writer.rows(result))
                writer.commit()
            except BaseException:
                writer.abort()
                raise
    log.info("sparkdedup fuzzy: %s", {k: v for k, v in result.stats.items() if k != "seconds"})
    return duplicates


def _check_left_out(df: DataFrame, duplicates: DataFrame, id_col: str) -> None:
    """SchemaError, before any job, when `duplicates` cannot name documents of `df` by their
    `id_col`: no ``id`` column, ids of another column or derived ones (`check_listed_ids`),
    or ids of another kind (strings against integers, which no row would match)."""
    from sparkdedup.removal import check_listed_ids

    require_columns(duplicates, {"duplicates id": "id"})
    check_listed_ids(duplicates, id_col)
    listed = duplicates.schema["id"].dataType.simpleString()
    ids = df.select(id_column(df, id_col).alias("id")).schema["id"].dataType.simpleString()
    if (listed == "string") != (ids == "string"):
        raise SchemaError(
            f"the duplicates' ids are {listed} but id column {id_col!r} is {ids}: they cannot "
            "name its documents (are they another corpus's, or derived ids?)"
        )


def write_index(
    df: DataFrame,
    path: str,
    config: FuzzyConfig | None = None,
    *,
    duplicates: DataFrame | None = None,
    append: bool = False,
    overwrite: bool = False,
    **params: Any,
) -> dict[str, Any]:
    """Write the index of a deduplicated corpus, for later runs against it (``against``).

    Parameters
    ----------
    df : the corpus; needs ``config.text_col`` and ``config.id_col`` (unique ids).
    path : the index directory (`sparkdedup.fuzzy.index`): must not exist, or hold an index
        replaced with `overwrite`, or added to with `append`.
    config : the `FuzzyConfig` of the runs to come (MinHash, LSH and normalisation
        parameters); keyword arguments override its fields.
    duplicates : ``[id, ...]``: documents of `df` to leave out (a run's duplicates); None
        indexes every row (a corpus deduplicated already).

    Returns
    -------
    dict
        The index's manifest. Costs one MinHash pass over `df` (a run with ``index_out``
        writes its index without one), and, unless ``assume_unique_ids``, the checks that
        the ids are unique (a shuffle of the ids) and, with `append`, that the index holds
        none of them (a read of its ids).
    """
    cfg = _as_config(config, params)
    check_config(cfg, "write_index")
    validate_input(df, cfg)
    if duplicates is not None:
        _check_left_out(df, duplicates, cfg.id_col)
    spark = df.sparkSession
    writer = IndexWriter(spark, path, cfg, append=append, overwrite=overwrite, option="path")
    if writer.base is not None:
        # From the schema, before the scan: ids of another type than the index's.
        writer.base.check_ids(df.select(id_column(df, cfg.id_col).alias("id")), cfg.id_col)
    device = resolve_device(cfg.device, spark, cfg.use_64_bit_hash)
    with StageRunner(spark, work_dir=run_dir(cfg.checkpoint_dir)) as runner:
        scan = runner.run(
            "minhash",
            {},
            lambda: _scan(df, cfg, device),
            conf=lambda: arrow_batch_conf(spark, text_sizes(df, cfg.text_col)),
        )
        if not cfg.assume_unique_ids:
            # As a run with index_out: unique ids, and none the index already holds.
            check_unique_ids(scan.select("id"), name=cfg.id_col)
            if writer.base is not None:
                n_docs = runner.rows["minhash"]
                check_disjoint(
                    writer.base,
                    scan.select("id"),
                    cfg.id_col,
                    broadcast=broadcastable(spark, n_docs),
                )
        removed = duplicates if duplicates is not None else scan.select("id").limit(0)
        try:
            writer.stage(index_rows(scan, removed, cfg.num_bands))
            return writer.commit()
        except BaseException:
            writer.abort()
            raise
