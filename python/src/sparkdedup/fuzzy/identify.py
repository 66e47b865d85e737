"""Fuzzy dedup step 5: ids to remove (ALGORITHMS.md, "Buckets to edges, components, duplicates").

Every component keeps one document, chosen deterministically: the smallest id, or the best value
of a priority column with ties broken by the smallest id. All other members are duplicates.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.errors import SchemaError
from sparkdedup.ids import require_columns


def identify_duplicates(
    components: DataFrame,
    *,
    documents: DataFrame | None = None,
    id_col: str = "id",
    priority_col: str | None = None,
    priority_ascending: bool = False,
) -> DataFrame:
    """The documents to remove, each with the id of the document kept in its group.

    Parameters
    ----------
    components : ``[id, component]`` from `connected_components` (component = smallest id).
    documents : the documents, needed only with `priority_col`; must hold `id_col` and
        `priority_col`.
    id_col : id column of `documents`.
    priority_col : keep the document with the largest value (smallest with
        `priority_ascending`); nulls rank last; ties go to the smallest id.

    Returns
    -------
    DataFrame
        ``[id, kept_id]``: one row per document to remove.
    """
    require_columns(components, {"id": "id", "component": "component"})
    if priority_col is None:
        return components.filter(F.col("id") != F.col("component")).select(
            "id", F.col("component").alias("kept_id")
        )
    if documents is None:
        raise SchemaError("priority_col needs the documents DataFrame holding it")
    require_columns(documents, {"id": id_col, "priority": priority_col})
    dtype = documents.schema[priority_col].dataType
    if isinstance(dtype, (T.ArrayType, T.MapType, T.StructType, T.BinaryType)):
        raise SchemaError(
            f"priority column {priority_col!r} must be a number, string, date or timestamp, got {dtype.simpleString()}"
        )
    priority = F.col("_dedup_priority")
    order = priority.asc_nulls_last() if priority_ascending else priority.desc_nulls_last()
    window = Window.partitionBy("component").orderBy(order, F.col("id").asc())
    ranked = components.join(
        documents.select(F.col(id_col).alias("id"), F.col(priority_col).alias("_dedup_priority")),
        on="id",
        how="inner",
    ).withColumn("kept_id", F.first("id").over(window))
    return ranked.filter(F.col("id") != F.col("kept_id")).select("id", "kept_id")
