"""SemDeDup step 5: the documents to remove, by the eps threshold
(ALGORITHMS.md, "Semantic deduplication", step 5).

Removal is non-transitive: a document goes when it is close to any higher-ranked document of its
cluster, even one that is itself removed.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkdedup.errors import ConfigError
from sparkdedup.ids import require_columns


def removal_threshold(eps: float) -> float:
    """``1 - eps`` rounded to float32, the threshold `identify_duplicates` compares with.

    NeMo Curator compares its float32 score column with the Python float ``1 - eps``; pandas
    and cuDF treat the Python float as a weak scalar (NEP 50) and compare in float32, so
    ``np.float32(0.95) >= 1 - 0.05`` is true although ``float(np.float32(0.95)) < 0.95``.
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps <= 1:
        raise ConfigError(f"eps must be a number between 0 and 1, got {eps!r}")
    return float(np.float32(1.0 - float(eps)))


def identify_duplicates(pairwise: DataFrame, *, eps: float = 0.01) -> DataFrame:
    """The documents whose similarity to a higher-ranked document is at least ``1 - eps``.

    Parameters
    ----------
    pairwise : ``[id, max_id, cosine_sim_score, ...]`` from `pairwise_similarity`.
    eps : threshold parameter in [0, 1].

    Returns
    -------
    DataFrame
        ``[id, max_id, cosine_sim_score]``: the rows of `pairwise` with
        ``cosine_sim_score >= 1 - eps``, except rows with ``max_id == id`` (no higher-ranked
        document scored above 0; such a document is always kept, which matters only for eps=1).

    Notes
    -----
    The comparison is done in float32, as in NeMo Curator, so the decision matches it bit for
    bit: the score (float32, or cast to float32) is compared with ``1 - eps`` rounded to the
    nearest float32 (`removal_threshold`). For ``eps=0.05`` a score of
    ``float32(0.95) = 0.949999988`` is removed, and the next float32 below it is kept.
    """
    threshold = removal_threshold(eps)
    require_columns(
        pairwise, {"id": "id", "max_id": "max_id", "cosine_sim_score": "cosine_sim_score"}
    )
    # The threshold is a float32 value, so the cast of the literal is exact.
    score = F.col("cosine_sim_score").cast("float")
    return pairwise.filter(
        (score >= F.lit(threshold).cast("float")) & (F.col("max_id") != F.col("id"))
    ).select("id", "max_id", "cosine_sim_score")


def eps_summary(pairwise: DataFrame, eps_values: list[float]) -> list[dict[str, float | int]]:
    """How many documents each eps removes, from one pass over the pairwise scores (a narrow
    table), by the rule of `identify_duplicates`: ``[{"eps": e, "removed_docs": n}, ...]`` in
    the order given. For tuning eps without computing the scores again."""
    require_columns(
        pairwise, {"id": "id", "max_id": "max_id", "cosine_sim_score": "cosine_sim_score"}
    )
    if not eps_values:
        return []
    score = F.col("cosine_sim_score").cast("float")
    counts = [
        F.count(
            F.when(
                (score >= F.lit(removal_threshold(eps)).cast("float"))
                & (F.col("max_id") != F.col("id")),
                1,
            )
        ).alias(f"removed_{i}")
        for i, eps in enumerate(eps_values)
    ]
    row = pairwise.agg(*counts).first()
    return [
        {"eps": float(eps), "removed_docs": int(row[f"removed_{i}"])}
        for i, eps in enumerate(eps_values)
    ]
