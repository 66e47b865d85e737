"""Document ids: a user's unique id column, or a stable derived int64 id.

Derived ids are the rank of each row in a total order over its content (a 64-bit hash of all
columns, then the orderable columns themselves, columns taken by name), so they depend only on
the set of rows: not on the partitioning, the input or column order, or the run (DESIGN.md,
"Ids"). Rows identical in every column are interchangeable, so which of them gets which id cannot
change any output. A row's id depends on the other rows too: removal by derived ids needs the
same rows, which `content_checksum` lets a caller verify.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.errors import SchemaError
from sparkdedup.io import READER_COLS

#: Internal id column added to the user's rows; never part of user-facing output.
ID_COL = "_dedup_id"

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_UNORDERABLE = (T.MapType, T.VariantType) if hasattr(T, "VariantType") else (T.MapType,)


def require_columns(df: DataFrame, columns: dict[str, str | None]) -> None:
    """Raise SchemaError for the first missing column; `columns` maps role -> column name."""
    for role, name in columns.items():
        if name is not None and name not in df.columns:
            available = [c for c in df.columns if not c.startswith("_dedup_")]
            raise SchemaError(
                f"{role} column {name!r} is not in the input; "
                + (
                    f"available columns: {', '.join(available)}"
                    if available
                    else "the input has no columns (is it empty?)"
                )
            )


def require_string_column(df: DataFrame, name: str, role: str = "text") -> None:
    """Raise SchemaError unless `name` exists and is a string column."""
    require_columns(df, {role: name})
    dtype = df.schema[name].dataType
    if not isinstance(dtype, T.StringType):
        raise SchemaError(
            f"{role} column {name!r} must be of string type, got {dtype.simpleString()}"
        )


def _orderable(dtype: T.DataType) -> bool:
    if isinstance(dtype, _UNORDERABLE):
        return False
    if isinstance(dtype, T.ArrayType):
        return _orderable(dtype.elementType)
    if isinstance(dtype, T.StructType):
        return all(_orderable(f.dataType) for f in dtype.fields)
    return True


def check_user_ids(df: DataFrame, id_col: str) -> None:
    """Check that `id_col` exists, is integral or string, has no nulls and no duplicates.

    Runs one Spark job (an aggregation over the id column).
    """
    require_columns(df, {"id": id_col})
    dtype = df.schema[id_col].dataType
    if not isinstance(dtype, (*_INTEGRAL, T.StringType)):
        raise SchemaError(
            f"id column {id_col!r} must be an integer or string column, got {dtype.simpleString()}"
        )
    bad = (
        df.groupBy(F.col(id_col).alias("id"))
        .count()
        .filter(F.col("id").isNull() | (F.col("count") > 1))
        .orderBy(F.col("count").desc(), F.col("id"))
        .limit(5)
        .collect()
    )
    if bad:
        nulls = [r for r in bad if r["id"] is None]
        if nulls:
            raise SchemaError(
                f"id column {id_col!r} has {nulls[0]['count']} null value(s); ids must be set on every row"
            )
        shown = ", ".join(f"{r['id']!r} ({r['count']} rows)" for r in bad)
        raise SchemaError(f"id column {id_col!r} is not unique: duplicated values include {shown}")


def assign_ids(df: DataFrame, *, id_col: str | None = None, output_col: str = ID_COL) -> DataFrame:
    """Add a document id column.

    Parameters
    ----------
    df : any DataFrame.
    id_col : a unique integer or string column to use as the id (checked: one Spark job);
        None derives an int64 id, 0..n-1, from the row content.
    output_col : name of the added column (default ``_dedup_id``).

    Returns
    -------
    DataFrame
        ``df`` with ``output_col`` added: the user's ids (integers widened to bigint), or the
        derived ids. Derived ids are computed eagerly (a sort, one small job, and a checkpoint),
        are the same for the same rows whatever their order or partitioning, and the returned
        DataFrame is that checkpoint, so the mapping from rows to ids never changes under it.
    """
    if output_col in df.columns:
        raise SchemaError(
            f"the input already has a column named {output_col!r}, which sparkdedup reserves"
        )
    if id_col is not None:
        check_user_ids(df, id_col)
        ids = F.col(id_col)
        if isinstance(df.schema[id_col].dataType, _INTEGRAL):
            ids = ids.cast("bigint")
        return df.withColumn(output_col, ids)
    return _derived_ids(df, output_col)


def _content_fields(df: DataFrame) -> list[T.StructField]:
    """The user's content columns in name order (reader columns such as the file name and the
    id column are not content; the column order never matters)."""
    skip = {ID_COL, *READER_COLS}
    return sorted((f for f in df.schema.fields if f.name not in skip), key=lambda f: f.name)


def _content_hash(df: DataFrame) -> Column:
    """xxhash64 of every hashable content column."""
    hashable = [
        F.col(f"`{f.name}`") for f in _content_fields(df) if not isinstance(f.dataType, T.MapType)
    ]
    return F.xxhash64(*hashable) if hashable else F.lit(0).cast("bigint")


def content_checksum(df: DataFrame) -> dict[str, int | str]:
    """Row count and an order-independent checksum of the rows' content (one Spark job).

    Two DataFrames holding the same rows, in any order, partitioning or column order, have the
    same checksum; derived ids (`assign_ids` without `id_col`) match between two DataFrames only
    then. A ``_dedup_id`` column is ignored.
    """
    content = df.select(*[F.col(f"`{f.name}`") for f in _content_fields(df)])
    row = content.select(
        F.count(F.lit(1)).alias("rows"),
        F.sum(_content_hash(content).cast("decimal(20,0)")).alias("sum"),
    ).first()
    return {"rows": int(row["rows"]), "checksum": str(row["sum"] or 0)}


def _derived_ids(df: DataFrame, output_col: str) -> DataFrame:
    order = [
        F.col(f"`{f.name}`").asc_nulls_first()
        for f in _content_fields(df)
        if _orderable(f.dataType)
    ]
    ranked = (
        df.withColumn("_dedup_hash", _content_hash(df))
        .sort(F.col("_dedup_hash"), *order)
        .withColumn("_dedup_pos", F.monotonically_increasing_id())
    )
    # The sort's partition boundaries come from sampling and may differ between two jobs, so
    # the positions are frozen by a checkpoint before the per-partition counts are taken.
    ranked = _checkpoint(ranked)
    low_bits = (1 << 33) - 1  # monotonically_increasing_id = partition index << 33 | row index
    counts = (
        ranked.groupBy(F.shiftright("_dedup_pos", 33).alias("p")).count().orderBy("p").collect()
    )
    offsets, total = {}, 0
    for row in counts:
        offsets[row["p"]] = total
        total += row["count"]
    offset_expr = F.lit(0).cast("bigint")
    if offsets:
        offset_map = F.create_map(*[F.lit(x) for kv in offsets.items() for x in kv])
        offset_expr = offset_map[F.shiftright("_dedup_pos", 33)]
    return ranked.withColumn(
        output_col, offset_expr + F.col("_dedup_pos").bitwiseAND(F.lit(low_bits))
    ).drop("_dedup_hash", "_dedup_pos")


def _checkpoint(df: DataFrame) -> DataFrame:
    sc = df.sparkSession.sparkContext
    if sc.getCheckpointDir() is not None:
        return df.checkpoint(eager=True)
    return df.localCheckpoint(eager=True)
