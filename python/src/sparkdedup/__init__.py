"""sparkdedup: exact, fuzzy and semantic deduplication of text corpora on Apache Spark.

The public API is plain functions from DataFrame to DataFrame (usable with `df.transform`), the
pyspark.ml wrappers in `sparkdedup.ml`, and the `sparkdedup` CLI. Names are imported lazily so
that `import sparkdedup` stays cheap and never imports a GPU library.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "FuzzyConfig": "sparkdedup.config",
    "SemanticConfig": "sparkdedup.config",
    "ExactConfig": "sparkdedup.config",
    "exact_duplicates": "sparkdedup.exact",
    "lsh_params": "sparkdedup.tuning",
    "normalize_text": "sparkdedup.kernels.textnorm",
    "DedupError": "sparkdedup.errors",
    "ConfigError": "sparkdedup.errors",
    "SchemaError": "sparkdedup.errors",
    "InputError": "sparkdedup.errors",
    "BackendUnavailableError": "sparkdedup.errors",
    "minhash": "sparkdedup.kernels.minhash",
    "assign_ids": "sparkdedup.ids",
    "minhash_signatures": "sparkdedup.fuzzy.minhash",
    "lsh_buckets": "sparkdedup.fuzzy.lsh",
    "bucket_edges": "sparkdedup.fuzzy.edges",
    "connected_components": "sparkdedup.fuzzy.components",
    "fuzzy_duplicates": "sparkdedup.fuzzy.workflow",
    "write_index": "sparkdedup.fuzzy.workflow",
    "compact_index": "sparkdedup.fuzzy.index",
    "semantic_duplicates": "sparkdedup.semantic.workflow",
    "remove_duplicates": "sparkdedup.removal",
    "FuzzyDeduplicator": "sparkdedup.ml",
    "SemanticDeduplicator": "sparkdedup.ml",
    "SemanticDeduplicatorModel": "sparkdedup.ml",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sparkdedup' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
