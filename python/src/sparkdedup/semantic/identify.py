"""SemDeDup step 5: the documents to remove, by the eps threshold
(ALGORITHMS.md, "Semantic deduplication", step 5).

Removal is non-transitive: a document goes when it is close to any higher-ranked document of its
cluster, even one that is itself removed.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparkdedup.config import check_number
from sparkdedup.ids import require_columns


def removal_threshold(eps: float) -> float:
    """``1 - eps`` as a Python float (float64), the threshold `identify_duplicates` compares with.

    NeMo Curator selects the removed documents with a pyarrow filter,
    ``("cosine_sim_score", ">=", 1.0 - eps)``, on its float32 score column: Arrow widens the
    column to float64 for the comparison, so with ``eps=0.05`` a score of
    ``float32(0.95) = 0.949999988`` is below ``0.95`` and the document is kept.
    """
    check_number("eps", eps, 0, 1)
    return 1.0 - float(eps)


def _score_reaches(eps: float) -> Column:
    """The removal rule on a pairwise row: the score, as the float32 NeMo Curator stores,
    widened to float64 and compared with ``1 - eps``; a row whose ``max_id`` is itself (no
    higher-ranked document scored above 0) never reaches it."""
    score = F.col("cosine_sim_score").cast("float").cast("double")
    return (score >= F.lit(removal_threshold(eps))) & (F.col("max_id") != F.col("id"))


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
    The decision matches NeMo Curator's bit for bit: the score, float32 as Curator stores it
    (a double score is rounded to float32 first), is widened to float64 and compared with the
    float64 ``1 - eps``, as Curator's pyarrow filter does (`removal_threshold`). For
    ``eps=0.05`` a score of ``float32(0.95) = 0.949999988`` is kept, and the next float32 above
    it is removed.
    """
    rule = _score_reaches(eps)
    require_columns(
        pairwise, {"id": "id", "max_id": "max_id", "cosine_sim_score": "cosine_sim_score"}
    )
    return pairwise.filter(rule).select("id", "max_id", "cosine_sim_score")


def eps_summary(pairwise: DataFrame, eps_values: list[float]) -> list[dict[str, float | int]]:
    """How many documents each eps removes, from one pass over the pairwise scores (a narrow
    table), by the rule of `identify_duplicates`: ``[{"eps": e, "removed_docs": n}, ...]`` in
    the order given. For tuning eps without computing the scores again."""
    require_columns(
        pairwise, {"id": "id", "max_id": "max_id", "cosine_sim_score": "cosine_sim_score"}
    )
    if not eps_values:
        return []
    counts = [
        F.count(F.when(_score_reaches(eps), 1)).alias(f"removed_{i}")
        for i, eps in enumerate(eps_values)
    ]
    row = pairwise.agg(*counts).first()
    return [
        {"eps": float(eps), "removed_docs": int(row[f"removed_{i}"])}
        for i, eps in enumerate(eps_values)
    ]
