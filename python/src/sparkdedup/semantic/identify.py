"""SemDeDup step 5: the documents to remove, by the eps threshold
(ALGORITHMS.md, "Semantic deduplication", step 5).

Removal is non-transitive: a document goes when it is close to any higher-ranked document of its
cluster, even one that is itself removed.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkdedup.errors import ConfigError
from sparkdedup.ids import require_columns


def identify_duplicates(pairwise: DataFrame, *, eps: float = 0.01) -> DataFrame:
    """The documents whose similarity to a higher-ranked document is at least ``1 - eps``.

    Parameters
    ----------
    pairwise : ``[id, max_id, cosine_sim_score]`` from `pairwise_similarity`.
    eps : threshold parameter in [0, 1]; the comparison is done in double precision.

    Returns
    -------
    DataFrame
        ``[id, max_id, cosine_sim_score]``: the rows of `pairwise` with
        ``cosine_sim_score >= 1 - eps``, except rows with ``max_id == id`` (no higher-ranked
        document scored above 0; such a document is always kept, which matters only for eps=1).
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps <= 1:
        raise ConfigError(f"eps must be a number between 0 and 1, got {eps!r}")
    require_columns(
        pairwise, {"id": "id", "max_id": "max_id", "cosine_sim_score": "cosine_sim_score"}
    )
    threshold = F.lit(1.0 - float(eps)).cast("double")
    return pairwise.filter(
        (F.col("cosine_sim_score").cast("double") >= threshold) & (F.col("max_id") != F.col("id"))
    ).select("id", "max_id", "cosine_sim_score")
