"""Params of the pyspark.ml wrappers, generated from the workflows' config dataclasses.

One Param per field of `FuzzyConfig` / `SemanticConfig`, named in camelCase (``char_ngrams`` ->
``charNgrams``; SemanticConfig's ``model`` is ``embeddingModel``), with the dataclass's default, so
the dataclasses stay the single source of defaults and validation (STYLE.md). Used by `ml.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pyspark.ml.param import Param, Params, TypeConverters

from sparkdedup.errors import ConfigError

OUTPUT_MODES = ("deduplicated", "duplicates")
_RENAMED = {"model": "embeddingModel"}  # `model` would read as the fitted Model

_DOCS = {
    "text_col": "column holding the document text (string)",
    "id_col": "unique id column (integer or string); None derives stable ids from the rows",
    "char_ngrams": "shingle width in Unicode code points (>= 2)",
    "num_bands": "number of LSH bands",
    "minhashes_per_band": "MinHash values per band; signatures have numBands x this many",
    "seed": "random seed (MinHash permutations; KMeans)",
    "rank_seed": "seed of the 'random' ranking (apart from the KMeans seed)",
    "use_64_bit_hash": "64-bit MurmurHash3 and permutations instead of 32-bit",
    "bands_per_iteration": "LSH bands handled per shuffle (never changes the result)",
    "cc_backend": "connected components: 'auto', 'driver' or 'distributed'",
    "driver_cc_max_edges": "largest edge count the driver connected-components path takes (0: 131,072, fewer for a small spark.driver.maxResultSize)",
    "priority_col": "keep the row with the largest value of this column per group (None: smallest id)",
    "priority_ascending": "keep the smallest priorityCol value instead of the largest",
    "device": "'auto', 'cpu' or 'gpu'",
    "checkpoint_dir": "where the stages, the distributed connected components' rounds and the result are written instead of cached or checkpointed (as Databricks serverless needs; None: persisted, the rounds checkpointed to the SparkContext's checkpoint directory when set; needed on a pyspark 3.5 Spark Connect client)",
    "assume_unique_ids": "skip the uniqueness check of idCol (one shuffle of the ids)",
    "verify": "'none', or 'jaccard': check every LSH candidate pair with its exact Jaccard (more, shorter bands for recall)",
    "threshold": "Jaccard threshold of verify='jaccard'",
    "against": "path of an index of a deduplicated corpus (writeIndex / --index-out): remove only new documents, those matching it or each other (needs idCol)",
    "normalize": "text normalisation before hashing: 'none', 'whitespace', 'lower' or 'nfkc' (cumulative)",
    "embedding_col": "column of precomputed embeddings (None: embed textCol with embeddingModel)",
    "model": "sentence-transformers model name or local path",
    "embedding_batch_size": "texts per model call",
    "n_clusters": "KMeans k",
    "max_iter": "KMeans maximum iterations",
    "tol": "KMeans convergence tolerance",
    "fit_fraction": "fit KMeans on about this fraction of the documents (0 < f <= 1); every document is assigned",
    "eps": "remove a document whose cosine similarity to a higher-ranked one is >= 1 - eps",
    "which_to_keep": "ranking in a cluster: 'hard' (far from centroid first), 'easy' or 'random'",
    "sort_cols": "custom ranking columns, each 'col' or 'col:desc' (largest first) or 'col:asc' (overrides whichToKeep); None for none",
    "sim_metric": "distance to the centroid that ranks documents: 'cosine' or 'l2'",
    "pairwise_batch_size": "columns per block of the pairwise kernel (changes scores by float32 rounding at most)",
    "max_cluster_size": "most documents of a cluster one task compares at once; larger clusters are split into blocks (0: from spark.sparkdedup.pairwiseWorkerBytes)",
}


def param_name(field: str) -> str:
    """The Param name of a config field: camelCase, e.g. ``use_64_bit_hash`` -> ``use64BitHash``."""
    if field in _RENAMED:
        return _RENAMED[field]
    head, *rest = field.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _converter(annotation: str) -> Callable[[Any], Any]:
    if annotation.startswith("tuple"):
        base = TypeConverters.toListString
    else:
        kind = annotation.split("|")[0].strip()
        base = {
            "int": TypeConverters.toInt,
            "float": TypeConverters.toFloat,
            "bool": TypeConverters.toBoolean,
        }.get(kind, TypeConverters.toString)
    if "None" not in annotation:
        return base

    def optional(value: Any) -> Any:
        # pyspark's loader converts every saved value, None included (`Params.set`).
        return None if value is None else base(value)

    optional.__name__ = f"optional_{base.__name__}"
    return optional


def _accessors(name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def getter(self: Params) -> Any:
        return self.getOrDefault(name)

    def setter(self: Params, value: Any) -> Params:
        return self._set(**{name: value})

    cap = name[0].upper() + name[1:]
    getter.__name__, setter.__name__ = f"get{cap}", f"set{cap}"
    getter.__doc__ = f"Gets the value of {name} or its default value."
    setter.__doc__ = f"Sets the value of :py:attr:`{name}`."
    return getter, setter


def config_params(config_cls: type) -> Callable[[type], type]:
    """Class decorator: one Param per field of `config_cls` (plus ``outputMode``), with
    ``getX``/``setX`` methods, defaults from the dataclass, and ``getConfig()``."""
    fields = dataclasses.fields(config_cls)

    def decorate(cls: type) -> type:
        params = {param_name(f.name): (_DOCS[f.name], _converter(str(f.type))) for f in fields}
        params["outputMode"] = (
            "what transform returns: 'deduplicated' (the input rows that remain) or "
            "'duplicates' (one row per document to remove)",
            TypeConverters.toString,
        )
        for name, (doc, converter) in params.items():
            setattr(cls, name, Param(Params._dummy(), name, doc, typeConverter=converter))
            getter, setter = _accessors(name)
            setattr(cls, getter.__name__, getter)
            setattr(cls, setter.__name__, setter)
        cls._config_cls = config_cls
        cls._config_defaults = {param_name(f.name): f.default for f in fields} | {
            "outputMode": OUTPUT_MODES[0]
        }
        cls._config_fields = {f.name: param_name(f.name) for f in fields}
        return cls

    return decorate


class ConfigParams(Params):
    """Params mirroring a config dataclass; see `config_params`."""

    _config_cls: type
    _config_defaults: dict[str, Any]
    _config_fields: dict[str, str]

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(**self._config_defaults)

    def getConfig(self) -> Any:
        """The Params as the workflow's config dataclass (validated: ConfigError if invalid)."""
        values = {field: self.getOrDefault(name) for field, name in self._config_fields.items()}
        return self._config_cls(**values)

    def _output_mode(self) -> str:
        mode = self.getOrDefault("outputMode")
        if mode not in OUTPUT_MODES:
            raise ConfigError(
                f"outputMode must be one of {', '.join(map(repr, OUTPUT_MODES))}, got {mode!r}"
            )
        return mode

    def setParams(self, **kwargs: Any) -> Any:
        """Sets Params by name (keyword arguments only); TypeError for an unknown name."""
        unknown = sorted(k for k in kwargs if not self.hasParam(k))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} has no Param {', '.join(map(repr, unknown))}; Params: "
                f"{', '.join(sorted(p.name for p in self.params))}"
            )
        return self._set(**kwargs)
