"""Removal: drop the documents listed by `fuzzy_duplicates` or `semantic_duplicates`.

Works on any DataFrame that holds the ids: the user's id column, or, when the ids were derived,
the same rows (derived ids depend only on row content, so `assign_ids` gives them again).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkdedup.ids import ID_COL, assign_ids, require_columns


def remove_duplicates(
    df: DataFrame, duplicates: DataFrame, *, id_col: str | None = None
) -> DataFrame:
    """The rows of `df` whose id is not in `duplicates`.

    Parameters
    ----------
    df : the documents, with the user's id column `id_col`, or the rows the ids were derived
        from when `id_col` is None (derived ids are recomputed, or read from a ``_dedup_id``
        column when present).
    duplicates : ``[id, ...]``, e.g. the output of `fuzzy_duplicates` or `semantic_duplicates`.
    id_col : the id column of `df`; None for derived ids.

    Returns
    -------
    DataFrame
        `df` without the duplicate rows, same columns and types.
    """
    require_columns(duplicates, {"duplicates id": "id"})
    if id_col is not None:
        require_columns(df, {"id": id_col})
        key_type = df.schema[id_col].dataType
        remove = duplicates.select(F.col("id").cast(key_type).alias("_dedup_remove")).distinct()
        return df.join(remove, df[id_col] == remove["_dedup_remove"], "left_anti")
    with_ids = df if ID_COL in df.columns else assign_ids(df)
    remove = duplicates.select(F.col("id").cast("bigint").alias(ID_COL)).distinct()
    kept = with_ids.join(remove, on=ID_COL, how="left_anti").select(*with_ids.columns)
    return kept.drop(ID_COL) if ID_COL not in df.columns else kept
