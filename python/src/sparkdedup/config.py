"""Frozen configuration dataclasses: the single source of defaults and validation.

`FuzzyConfig` follows NeMo Curator's FuzzyDeduplicationWorkflow defaults and `SemanticConfig` its
text SemDeDup defaults (shared/reference/ALGORITHMS.md). The pyspark.ml Params and the CLI take
their defaults from here; tests check that they agree.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparkdedup.errors import ConfigError

log = logging.getLogger("sparkdedup")

DEVICES = ("auto", "cpu", "gpu")
CC_BACKENDS = ("auto", "driver", "distributed")
WHICH_TO_KEEP = ("hard", "easy", "random")
SIM_METRICS = ("cosine", "l2")
#: Text normalisation before hashing, cumulative (`sparkdedup.kernels.textnorm`).
NORMALIZE_MODES = ("none", "whitespace", "lower", "nfkc")
#: The fuzzy workflow's candidate check (`sparkdedup.fuzzy.verify`).
VERIFY_MODES = ("none", "jaccard")
#: How long a fuzzy index keeps the segments a commit replaces, for the runs reading them
#: (`sparkdedup.fuzzy.index.compact_index`).
INDEX_RETAIN_HOURS = 24.0

#: `driver_cc_max_edges` = 0: the driver path takes up to 2 MiB of edges at 16 bytes an edge
#: (131,072), or a quarter of spark.driver.maxResultSize when smaller
#: (`sparkdedup.fuzzy.components.driver_edge_limit`).
AUTO_DRIVER_CC_MAX_EDGES = 0


_DIRECTIONS = {"asc": True, "desc": False}


def sort_keys(sort_cols: Any) -> list[tuple[str, bool]]:
    """``(column, ascending)`` of each `sort_cols` entry: ``"col"`` and ``"col:desc"`` rank the
    largest value first, ``"col:asc"`` the smallest. Only a final ``:asc`` or ``:desc`` is a
    direction, so a column named ``a:b`` is written as is."""
    keys = []
    for entry in sort_cols or ():
        name, _, direction = str(entry).rpartition(":")
        if not name or direction.lower() not in _DIRECTIONS:
            name, direction = str(entry), "desc"
        if not name.strip():
            raise ConfigError(f"sort_cols entry {entry!r} names no column")
        keys.append((name, _DIRECTIONS[direction.lower()]))
    return keys


def check_sort_direction(name: str, columns: Any) -> None:
    """ConfigError for a `sort_cols` entry `name` that is no column of `columns` but one
    followed by a direction other than ``asc`` or ``desc`` (``q:up``)."""
    column, colon, direction = name.rpartition(":")
    if colon and name not in columns and column in columns:
        raise ConfigError(
            f"sort_cols entry {name!r}: the direction {direction!r} is neither 'asc' nor 'desc' "
            f"(and no column is named {name!r})"
        )


def check_fraction(name: str, value: Any) -> None:
    """ConfigError unless `value` is a number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{name} must be a number in (0, 1], got {value!r}")


def check_number(
    name: str, value: Any, minimum: float, maximum: float | None = None, *, finite: bool = False
) -> None:
    """ConfigError unless `value` is a number (int or float, NumPy's included; not a bool, not
    NaN; not infinite when `finite`) in [minimum, maximum], naming `name`."""
    kinds = (int, float, np.integer, np.floating)
    number = not isinstance(value, (bool, np.bool_)) and isinstance(value, kinds)
    wrong = not number or value != value or (finite and abs(value) == float("inf"))
    if wrong or value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum:g}" if maximum is None else f"between {minimum:g} and {maximum:g}"
        kind = "a finite number" if finite else "a number"
        raise ConfigError(f"{name} must be {kind} {allowed}, got {value!r}")


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    """Raise ConfigError unless `value` is an integer in [minimum, maximum] (naming `name`)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigError(f"{name} must be {allowed}, got {value}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise ConfigError unless `value` is one of `choices` (naming `name`)."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _check_text_and_keep_rule(config: Any) -> None:
    """The fields FuzzyConfig and ExactConfig share: columns, keep rule, normalisation."""
    if not isinstance(config.text_col, str) or not config.text_col:
        raise ConfigError(f"text_col must be a non-empty column name, got {config.text_col!r}")
    _check_optional_name("id_col", config.id_col)
    _check_optional_name("priority_col", config.priority_col)
    for name in ("assume_unique_ids", "priority_ascending"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"{name} must be a bool, got {getattr(config, name)!r}")
    check_choice("normalize", config.normalize, NORMALIZE_MODES)


def _check_optional_name(name: str, value: Any, what: str = "column name") -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{name} must be a non-empty {what} or None, got {value!r}")


@dataclass(frozen=True)
class FuzzyConfig:
    """Parameters of fuzzy deduplication (MinHash + LSH + connected components).

    Parameters
    ----------
    text_col : column holding the document text (string).
    id_col : column of unique document ids (integer or string); None derives a stable int64 id
        from the row content (see `sparkdedup.ids`).
    char_ngrams : shingle width in Unicode code points (>= 2; Curator warns below 20).
    num_bands, minhashes_per_band : LSH banding; the signature has their product of hashes.
    seed : seed of the permutation parameters (numpy RandomState, as NeMo Curator).
    use_64_bit_hash : MurmurHash3_x64_128 and 64-bit permutations instead of 32-bit.
    bands_per_iteration : bands handled per shuffle (each group is materialised before the
        next starts), bounding each shuffle; 0 (the default) picks it from the data: as many
        bands as keep a group's band keys within ``spark.sparkdedup.lshGroupBytes`` (2g), so
        a small corpus takes one shuffle and a large one several (`fuzzy.lsh.auto_bands`).
    cc_backend : "driver" collects the edges and solves with SciPy (cuGraph on GPU),
        "distributed" runs the large-star/small-star DataFrame algorithm, "auto" picks by
        `driver_cc_max_edges` and hands a distributed run over to the driver once a round
        leaves at most that many edges.
    driver_cc_max_edges : edge-count limit of the driver path (auto mode) and hard limit of
        `cc_backend="driver"`; 0 (the default): 131,072 edges (2 MiB), or a quarter of
        spark.driver.maxResultSize at 16 bytes an edge when that is smaller.
    priority_col : keep the row with the largest value of this column in each group (ties
        broken by smallest id; a null or NaN value ranks last either way); None keeps the
        smallest id.
    priority_ascending : keep the smallest `priority_col` value instead of the largest.
    device : "auto", "cpu" or "gpu", decided from the executors: "gpu" fails, before any
        long work, when their tasks see no usable GPU.
    checkpoint_dir : directory where the Python API (`fuzzy_duplicates`, `write_index`,
        `FuzzyDeduplicator`) writes its intermediate results: each stage and each round of the
        distributed connected components (reliable; a call's stages are removed when it
        returns) and the result returned (left for the caller). Nothing is then cached or
        checkpointed, as Databricks serverless needs (a ``/Volumes/...`` path there). None
        persists the stages, checkpoints the rounds to the SparkContext's checkpoint directory
        when set, else persists them (a lost executor's part is recomputed from the lineage),
        and over Spark Connect checkpoints them to the server's ``spark.checkpoint.dir``, else
        locally. A pyspark 3.5 Connect client, which has no checkpoints, needs it unless
        `cc_backend` is "driver".
    assume_unique_ids : skip the uniqueness check of `id_col` (one shuffle of the ids, a few
        bytes a row), and with `against` the check that no new id is indexed already (a read
        of the index's ids, and a shuffle of them when the new ids are too many to
        broadcast); a repeated id then makes the output wrong without an error.
    normalize : text normalisation before shingling: "none" (the default, as NeMo Curator),
        "whitespace", "lower" or "nfkc", cumulative (`sparkdedup.kernels.textnorm`).
    verify : "none" (the default: LSH candidates are duplicates, as NeMo Curator) or "jaccard":
        every candidate edge is checked with the exact Jaccard of the two documents' shingle
        sets and kept when it is >= `threshold`; the num_bands x minhashes_per_band hashes are
        then split into more, shorter bands (`sparkdedup.tuning.verify_bands`) for recall.
    threshold : the Jaccard threshold of ``verify="jaccard"`` (default 0.8).
    against : path of an index of an already deduplicated corpus (`sparkdedup.write_index`,
        ``--index-out``): only the new documents are ever removed, those whose group holds an
        indexed document and, in groups of new documents only, all but the kept one. Needs
        `id_col` and the index's MinHash, LSH and normalisation parameters.
    """

    text_col: str = "text"
    id_col: str | None = None
    char_ngrams: int = 24
    num_bands: int = 20
    minhashes_per_band: int = 13
    seed: int = 42
    use_64_bit_hash: bool = False
    bands_per_iteration: int = 0
    cc_backend: str = "auto"
    driver_cc_max_edges: int = AUTO_DRIVER_CC_MAX_EDGES
    priority_col: str | None = None
    priority_ascending: bool = False
    device: str = "auto"
    checkpoint_dir: str | None = None
    assume_unique_ids: bool = False
    normalize: str = "none"
    verify: str = "none"
    threshold: float = 0.8
    against: str | None = None

    def __post_init__(self) -> None:
        _check_text_and_keep_rule(self)
        _check_optional_name("checkpoint_dir", self.checkpoint_dir, "path")
        _check_optional_name("against", self.against, "path")
        check_choice("verify", self.verify, VERIFY_MODES)
        if (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, (int, float))
            or not 0 < self.threshold < 1
        ):
            raise ConfigError(f"threshold must be a number in (0, 1), got {self.threshold!r}")
        check_int("char_ngrams", self.char_ngrams, 2)
        check_int("num_bands", self.num_bands, 1)
        check_int("minhashes_per_band", self.minhashes_per_band, 1)
        check_int("seed", self.seed, 0, 2**32 - 1)
        check_int("bands_per_iteration", self.bands_per_iteration, 0)
        check_int("driver_cc_max_edges", self.driver_cc_max_edges, 0)
        if not isinstance(self.use_64_bit_hash, bool):
            raise ConfigError(f"use_64_bit_hash must be a bool, got {self.use_64_bit_hash!r}")
        check_choice("cc_backend", self.cc_backend, CC_BACKENDS)
        check_choice("device", self.device, DEVICES)
        if self.char_ngrams < 20:
            log.warning(
                "char_ngrams=%d is below 20; short shingles give more false-positive "
                "candidates (NeMo Curator reports about 5%%)",
                self.char_ngrams,
            )

    @property
    def num_hashes(self) -> int:
        """Length of each MinHash signature: num_bands * minhashes_per_band."""
        return self.num_bands * self.minhashes_per_band

    def replace(self, **changes: Any) -> FuzzyConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ExactConfig:
    """Parameters of exact deduplication (NeMo Curator's ExactDeduplicationWorkflow): documents
    whose texts are byte-identical, after `normalize`, form a group; one is kept.

    Parameters
    ----------
    text_col, id_col, priority_col, priority_ascending, assume_unique_ids : as `FuzzyConfig`.
    normalize : "none" (the default), "whitespace", "lower" or "nfkc", cumulative
        (`sparkdedup.kernels.textnorm`): the texts are compared after it.
    checkpoint_dir : directory where `exact_duplicates` writes its stages (removed when it
        returns) and its result, instead of caching them (as `FuzzyConfig`); None persists
        them.
    """

    text_col: str = "text"
    id_col: str | None = None
    priority_col: str | None = None
    priority_ascending: bool = False
    assume_unique_ids: bool = False
    normalize: str = "none"
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        _check_text_and_keep_rule(self)
        _check_optional_name("checkpoint_dir", self.checkpoint_dir, "path")

    def replace(self, **changes: Any) -> ExactConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SemanticConfig:
    """Parameters of semantic deduplication (SemDeDup).

    Parameters
    ----------
    text_col : column of texts to embed (used when `embedding_col` is None).
    embedding_col : column holding precomputed embeddings (array<float|double>, an array of
        integers, or ml Vector).
    id_col : unique id column, or None for derived ids (as FuzzyConfig).
    model : sentence-transformers model name or local path.
    embedding_batch_size : texts per forward pass of the model (each call of it gets up to 2,048 texts).
    n_clusters, max_iter, tol, seed : KMeans parameters (`seed` seeds KMeans only).
    fit_fraction : fit KMeans on about this fraction of the embedded documents (0 < f <= 1; a
        seeded hash of the id picks them, whatever the partitioning), then assign every
        document to its nearest centroid, as NeMo Curator's ``kmeans_fit_data_fraction``.
    eps : a document is removed iff its cosine similarity to a higher-ranked document of its
        cluster is >= 1 - eps (the float32 score compared in float64, as NeMo Curator does).
    which_to_keep : "hard" keeps the documents farthest from the centroid, "easy" the nearest,
        "random" a seeded random order.
    sort_cols : custom ranking: each entry ``"col"`` or ``"col:desc"`` (descending) or
        ``"col:asc"`` (ascending), nulls and NaN last, ties by id descending; strings by
        code point whatever their collation; overrides `which_to_keep` when given.
    rank_seed : seed of the "random" ranking, apart from the KMeans `seed`: changing one never
        changes what the other decides.
    sim_metric : "cosine" or "l2": which distance to the centroid ranks documents.
    pairwise_batch_size : columns per block of the pairwise kernel (changes scores by float32
        rounding at most).
    max_cluster_size : the most documents of a cluster one task compares at once; a larger
        cluster is split into blocks of rows compared block pair by block pair (the same
        result). 0 (the default) derives it from the Python worker's memory budget,
        ``spark.sparkdedup.pairwiseWorkerBytes`` (1g): about 100,000 at d=384.
    device : "auto", "cpu" or "gpu".
    checkpoint_dir : directory where `semantic_duplicates` and `SemanticDeduplicator` write
        their stages (removed when the call returns) and the result they return, instead of
        caching them (as `FuzzyConfig`); None persists them.
    """

    text_col: str = "text"
    embedding_col: str | None = None
    id_col: str | None = None
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    embedding_batch_size: int = 128
    n_clusters: int = 100
    max_iter: int = 300
    tol: float = 1e-4
    seed: int = 42
    fit_fraction: float = 1.0
    eps: float = 0.01
    which_to_keep: str = "hard"
    sort_cols: tuple[str, ...] | None = None
    rank_seed: int = 42
    sim_metric: str = "cosine"
    pairwise_batch_size: int = 1024
    max_cluster_size: int = 0
    device: str = "auto"
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        _check_optional_name("checkpoint_dir", self.checkpoint_dir, "path")
        if not isinstance(self.text_col, str) or not self.text_col:
            raise ConfigError(f"text_col must be a non-empty column name, got {self.text_col!r}")
        _check_optional_name("embedding_col", self.embedding_col)
        _check_optional_name("id_col", self.id_col)
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"model must be a model name or path, got {self.model!r}")
        check_int("embedding_batch_size", self.embedding_batch_size, 1)
        check_int("n_clusters", self.n_clusters, 1)
        check_int("max_iter", self.max_iter, 1)
        check_int("seed", self.seed, 0, 2**32 - 1)
        check_int("rank_seed", self.rank_seed, 0, 2**32 - 1)
        check_int("pairwise_batch_size", self.pairwise_batch_size, 1)
        check_int("max_cluster_size", self.max_cluster_size, 0)
        check_number("tol", self.tol, 0, finite=True)
        check_fraction("fit_fraction", self.fit_fraction)
        check_number("eps", self.eps, 0, 1)
        check_choice("which_to_keep", self.which_to_keep, WHICH_TO_KEEP)
        check_choice("sim_metric", self.sim_metric, SIM_METRICS)
        check_choice("device", self.device, DEVICES)
        if self.sort_cols is not None:
            cols = tuple(self.sort_cols) if not isinstance(self.sort_cols, str) else ()
            if not cols or not all(isinstance(c, str) and c for c in cols):
                raise ConfigError(
                    f"sort_cols must be a non-empty list of column names or None, got {self.sort_cols!r}"
                )
            sort_keys(cols)  # each entry names a column
            object.__setattr__(self, "sort_cols", cols)

    def replace(self, **changes: Any) -> SemanticConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
