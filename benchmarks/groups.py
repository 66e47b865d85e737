"""Candidate pairs to duplicate groups, for the peers that stop at pairs (datasketch, MLlib).

Connected components of the pairs (SciPy), each group keeping its smallest id: the same keep
rule as sparkdedup, so `sparkdedup.evaluate.evaluate` scores every system the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def duplicates_from_pairs(a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """``[id, kept_id]`` for every id that is not the smallest of its connected component."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.size == 0:
        return pd.DataFrame({"id": np.zeros(0, np.int64), "kept_id": np.zeros(0, np.int64)})
    nodes = np.union1d(a, b)
    ia, ib = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (ia, ib)), shape=(nodes.size, nodes.size))
    _, label = connected_components(graph, directed=False)
    smallest = np.full(label.max() + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, label, nodes)
    kept = smallest[label]
    removed = nodes != kept
    return pd.DataFrame({"id": nodes[removed], "kept_id": kept[removed]})


def recall_of_similar_pairs(
    duplicates: pd.DataFrame, pairs_path: str | None, min_jaccard: float = 0.8
) -> dict[str, float | int | None]:
    """Share of the planted pairs with true Jaccard >= `min_jaccard` put in one group.

    `pairs_path` is the cached table of `benchmarks.corpus.similar_planted_pairs`; None (not
    computed at this scale) gives None.
    """
    if not pairs_path:
        return {"recall_j80": None, "planted_pairs_j80": None}
    pairs = pd.read_parquet(pairs_path)
    pairs = pairs[pairs["jaccard"] >= min_jaccard]
    kept = pd.Series(
        duplicates["kept_id"].to_numpy(np.int64), index=duplicates["id"].to_numpy(np.int64)
    )
    a, b = pairs["id_a"].to_numpy(np.int64), pairs["id_b"].to_numpy(np.int64)
    group_a = kept.reindex(a).to_numpy(dtype=np.float64)
    group_b = kept.reindex(b).to_numpy(dtype=np.float64)
    group_a = np.where(np.isnan(group_a), a, group_a)  # not removed: its own group
    group_b = np.where(np.isnan(group_b), b, group_b)
    found = int((group_a == group_b).sum())
    return {
        "recall_j80": found / len(pairs) if len(pairs) else 1.0,
        "planted_pairs_j80": len(pairs),
    }
