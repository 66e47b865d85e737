"""Document ids: a user's unique id column, or a stable derived int64 id.

A derived id comes from the row's content: two 64-bit hashes of every content column (taken by
name, so the column order never matters; map columns by their sorted entries) give ``h1, h2``;
the id is ``(h1 >>> 33) << 32 | rank``, the rank ordering the rows of one 31-bit prefix by
``(h1, h2, position)``. Only those fixed-width keys are shuffled (one shuffle, partitioned by the
prefix, no sampling, nothing on the driver), and the ids depend only on the set of rows: not on
their order, partitioning, column order or the run. Rows identical in every column share
``h1, h2`` and are told apart by their position in the input; they are interchangeable, so which
of them gets which id never changes an output (DESIGN.md, "Ids"). A row's id depends on its
prefix neighbours too, so removal by derived ids needs the same rows (`content_checksum`).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.columns import binary_strings, named
from sparkdedup.compat import is_connect
from sparkdedup.errors import InputError, SchemaError
from sparkdedup.io import READER_COLS, RECORD_COL

#: Internal id column added to the user's rows; never part of user-facing output.
ID_COL = "_dedup_id"
#: Integer column types an id may have (widened to bigint).
INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
#: The content hashes and input position behind a derived id.
H1, H2, POS = "_dedup_h1", "_dedup_h2", "_dedup_pos"
_SECOND_SEED = 0x5DEECE66D  # xxhash64(seed-like first argument, ...) gives the second hash
_PREFIX_SHIFT = 33  # ids: (h1 >>> 33) << 32 | rank within the prefix; rank < 2^32
_RANK_BITS = 32


#: The prefix of the columns sparkdedup adds to a DataFrame while it works on it.
RESERVED_PREFIX = "_dedup_"


def check_batch(df: DataFrame) -> None:
    """SchemaError for a streaming DataFrame (no Spark job): deduplication compares every
    document with every other, and derived ids rank all the rows, which no micro-batch can.
    Run it on a batch DataFrame of the data (in a ``foreachBatch``, each batch alone)."""
    if df.isStreaming:
        raise SchemaError(
            "the input is a streaming DataFrame; sparkdedup deduplicates a batch DataFrame "
            "(read the data with spark.read, or deduplicate each micro-batch in foreachBatch)"
        )


def check_deterministic(df: DataFrame, why: str) -> None:
    """InputError when `df`'s plan is non-deterministic (``rand()``, ``uuid()``,
    ``monotonically_increasing_id()``, a UDF marked non-deterministic) and the caller reads it
    more than once (`why` says so): each read would see other values, and the reads' results
    would not fit together. A persisted or checkpointed DataFrame is data, and passes. Spark's
    flag does not cover ``limit`` without an order or ``sample``, nor a plain UDF that is not
    a function of its input; nor is there a plan to look at over Spark Connect."""
    if is_connect(df.sparkSession):
        return
    try:  # (a fresh plan, which sees the persisted data)
        plan = df.select("*")._jdf.queryExecution().withCachedData()
        deterministic = bool(plan.deterministic())
    except Exception:  # noqa: BLE001 - a Spark without it: no check
        return
    if not deterministic:
        raise InputError(
            "the input DataFrame's plan is non-deterministic (rand(), uuid(), "
            "monotonically_increasing_id() or a non-deterministic UDF) and "
            f"{why}: each read would see other values. Materialise it first: "
            "df = df.localCheckpoint() (or persist it, or write it and read it back)"
        )


def check_reserved_names(df: DataFrame, allowed: tuple[str, ...] = ()) -> None:
    """SchemaError naming the input's columns whose names sparkdedup reserves (those starting
    with ``_dedup_``, in any case, but the columns its own readers add and `allowed`), before
    any job: they would clash with the columns it adds, late and with Spark's own error."""
    ours = {RECORD_COL, *READER_COLS, *allowed}
    clash = [c for c in df.columns if c.lower().startswith(RESERVED_PREFIX) and c not in ours]
    if clash:
        raise SchemaError(
            f"column(s) {', '.join(map(repr, clash))} start with {RESERVED_PREFIX!r}, which "
            "sparkdedup reserves for the columns it adds: rename them"
        )


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
        hint = ""
        if isinstance(dtype, T.IntegerType):
            # Parquet stores Arrow's null type (pandas' column of None only) as an int32 of
            # no values, which Spark reads as int.
            hint = (
                " (if it is a Parquet column that holds no values: written from Arrow's null "
                "type, as pandas writes a column of None only, it reads as int; write it as "
                "string)"
            )
        raise SchemaError(
            f"{role} column {name!r} must be of string type, got {dtype.simpleString()}{hint}"
        )


def id_column(df: DataFrame, id_col: str) -> Column:
    """The user's id column as the workflows carry it (integers widened to bigint, a string in
    the UTF8_BINARY collation), after checking that it exists and is an integer or string
    column (no Spark job).

    Ids are identifiers: under a Spark 4 collation such as UTF8_LCASE, "a" and "A" would be
    one id to every uniqueness check, join and group; in UTF8_BINARY they are two documents.
    """
    require_columns(df, {"id": id_col})
    dtype = df.schema[id_col].dataType
    if not isinstance(dtype, (*INTEGRAL, T.StringType)):
        raise SchemaError(
            f"id column {id_col!r} must be an integer or string column, got {dtype.simpleString()}"
        )
    column = named(id_col)
    return column.cast("bigint") if isinstance(dtype, INTEGRAL) else binary_strings(column, dtype)


def check_unique_ids(table: DataFrame, id_col: str = "id", *, name: str | None = None) -> None:
    """SchemaError when `id_col` of `table` has a null or a repeated value.

    One aggregation over the id column alone (a shuffle of the ids, a few bytes a row); the
    result brought to the driver is at most five rows. `name` is the column name to report.
    """
    shown_name = name or id_col
    bad = (
        table.groupBy(named(id_col).alias("id"))
        .count()
        .filter(F.col("id").isNull() | (F.col("count") > 1))
        .orderBy(F.col("count").desc(), F.col("id"))
        .limit(5)
        .collect()
    )
    if not bad:
        return
    nulls = [r for r in bad if r["id"] is None]
    if nulls:
        raise SchemaError(
            f"id column {shown_name!r} has {nulls[0]['count']} null value(s); ids must be set on "
            "every row"
        )
    shown = ", ".join(f"{r['id']!r} ({r['count']} rows)" for r in bad)
    raise SchemaError(f"id column {shown_name!r} is not unique: duplicated values include {shown}")


def check_user_ids(df: DataFrame, id_col: str) -> int:
    """Check that `id_col` exists, is integral or string, has no nulls and no duplicates, and
    return the number of rows (one Spark job over the id column: the count is observed on it)."""
    ids = df.select(id_column(df, id_col).alias("id"))
    bad = F.col("id").isNull() | (F.col("count") > 1)
    totals = (
        ids.groupBy("id")
        .count()
        .agg(
            F.sum("count").alias("rows"),
            F.count(F.when(bad, 1)).alias("bad"),
        )
        .first()
    )
    if totals["bad"]:
        check_unique_ids(ids, "id", name=id_col)  # a second job, only to name examples
    return int(totals["rows"] or 0)


# ------------------------------------------------------------------------------ row content
def content_fields(df: DataFrame) -> list[T.StructField]:
    """The user's content columns in name order (reader columns such as the file name, and
    the id columns, are not content). Rows read from JSONL (`sparkdedup.io.read_input`) are
    their lines: the fields parsed from a line follow from it, and which are parsed depends
    on the command (a semantic run parses its embedding, `remove` every field), so only the
    line is content, and derived ids stay the same whichever fields a command parsed."""
    if RECORD_COL in df.columns:
        return [df.schema[RECORD_COL]]
    skip = {ID_COL, H1, H2, POS, *READER_COLS}
    return sorted((f for f in df.schema.fields if f.name not in skip), key=lambda f: f.name)


def _holds(dtype: T.DataType, kinds: tuple[type, ...]) -> bool:
    if isinstance(dtype, kinds):
        return True
    if isinstance(dtype, T.ArrayType):
        return _holds(dtype.elementType, kinds)
    if isinstance(dtype, T.StructType):
        return any(_holds(f.dataType, kinds) for f in dtype.fields)
    if isinstance(dtype, T.MapType):
        return _holds(dtype.keyType, kinds) or _holds(dtype.valueType, kinds)
    return False


_UNHASHABLE = (T.VariantType,) if hasattr(T, "VariantType") else ()


#: How derived ids hash a row (`row_hashes`); recorded with lists of derived ids, so that ids
#: derived by another scheme are refused rather than matched to other rows. Scheme 2 makes
#: every null explicit (scheme 1 hashed with nulls skipped: ``(null, "a")`` and ``("a",
#: null)`` collided, and so did ``[]`` and a null array). Scheme 3 tells a float's -0.0 from
#: 0.0 (Spark's hash takes them as one); rows without a -0.0 hash as in scheme 2.
DERIVED_ID_SCHEME = 3


def _explicit(column: Column, dtype: T.DataType) -> Column:
    """`column` as a value without nulls for xxhash64, which skips a null (so that ``(null,
    "a")`` and ``("a", null)``, or ``[]``, ``[null]`` and null, would hash alike): each value,
    at every depth, becomes ``(is null, value)``; a map becomes its entries sorted by key.
    A float or double also gets a third field, true for -0.0 and null otherwise: Spark's hash
    takes -0.0 as 0.0, so rows differing only there shared their hashes and got ids by input
    position (and the null field leaves every other value's hash as it was). A string is
    hashed by its bytes, whatever its collation: Spark 4.0.0 (later versions under
    ``spark.sql.legacy.collationAwareHashFunctions``) hashes it in its collation, so rows
    differing only in case in a UTF8_LCASE column got ids by input position too (the bytes
    hash as such a string hashes in every other Spark: no id changes elsewhere)."""
    if isinstance(dtype, (T.FloatType, T.DoubleType)):
        # Without a division (an error under ANSI): only -0.0 is zero and prints with a sign.
        negative_zero = (column == 0) & column.cast("string").startswith("-")
        return F.struct(
            column.isNull().alias("n"),
            column.alias("v"),
            F.when(negative_zero, F.lit(True)).alias("z"),
        )
    inner = binary_strings(column, dtype)
    if isinstance(dtype, T.ArrayType):
        element = dtype.elementType
        inner = F.transform(column, lambda x: _explicit(x, element))
    elif isinstance(dtype, T.StructType):
        inner = F.struct(
            *[
                _explicit(column.getField(f.name), f.dataType).alias(f"f{i}")
                for i, f in enumerate(dtype.fields)
            ]
        )
    elif isinstance(dtype, T.MapType):
        key, value = dtype.keyType, dtype.valueType
        inner = F.transform(
            F.array_sort(F.map_entries(column)),
            lambda e: F.struct(
                _explicit(e.getField("key"), key).alias("k"),
                _explicit(e.getField("value"), value).alias("v"),
            ),
        )
    return F.struct(column.isNull().alias("n"), inner.alias("v"))


def _hashable(field: T.StructField) -> Column:
    """A column expression with the same value for the same content, nulls made explicit
    (`_explicit`): a map becomes its entries sorted by key (its stored order is arbitrary)."""
    column = named(field.name)
    dtype = field.dataType
    if _UNHASHABLE and _holds(dtype, _UNHASHABLE):
        raise SchemaError(
            f"column {field.name!r} holds a {dtype.simpleString()} value, which derived ids "
            "cannot hash; pass an id column (id_col / --id-col)"
        )
    if isinstance(dtype, T.MapType):
        if _holds(dtype.keyType, (T.MapType,)) or _holds(dtype.valueType, (T.MapType,)):
            raise SchemaError(
                f"column {field.name!r} is a map of maps ({dtype.simpleString()}), which derived "
                "ids cannot put in a stable order; pass an id column (id_col / --id-col)"
            )
    elif _holds(dtype, (T.MapType,)):
        raise SchemaError(
            f"column {field.name!r} holds a map inside a {dtype.typeName()} "
            f"({dtype.simpleString()}), which derived ids cannot put in a stable order; pass "
            "an id column (id_col / --id-col)"
        )
    return _explicit(column, dtype)


def value_hashes(*columns: Column) -> tuple[Column, Column]:
    """(h1, h2): two independent 64-bit hashes (xxhash64 with two seeds) of `columns`."""
    return F.xxhash64(*columns), F.xxhash64(F.lit(_SECOND_SEED), *columns)


def row_hashes(df: DataFrame) -> tuple[Column, Column]:
    """(h1, h2): two 64-bit hashes of a row's content columns (`content_fields`)."""
    columns = [_hashable(f) for f in content_fields(df)]
    if not columns:
        return F.lit(0).cast("bigint"), F.lit(0).cast("bigint")
    return value_hashes(*columns)


def h1_prefix() -> Column:
    """The 31-bit prefix of ``_dedup_h1`` that a derived id ranks its row within."""
    return F.shiftrightunsigned(F.col(H1), _PREFIX_SHIFT)


def derived_ids(keys: DataFrame, partitions: int | None = None) -> DataFrame:
    """`keys` (with ``_dedup_h1, _dedup_h2, _dedup_pos``) plus the derived id in ``_dedup_id``.

    One shuffle of `keys` by the 31-bit prefix of h1 (`partitions` partitions, or Spark's
    default), then a rank inside each prefix: no sampling, nothing on the driver. A prefix holds
    at most 2^32 rows (only rows identical in every column share one beyond chance).
    """
    prefix = h1_prefix()
    rank = F.row_number().over(
        Window.partitionBy("_dedup_prefix").orderBy(F.col(H1), F.col(H2), F.col(POS))
    )
    with_prefix = keys.withColumn("_dedup_prefix", prefix)
    if partitions is not None:
        with_prefix = with_prefix.repartition(partitions, "_dedup_prefix")
    return with_prefix.withColumn(
        ID_COL,
        F.shiftleft(F.col("_dedup_prefix"), _RANK_BITS).bitwiseOR(rank - 1),
    ).drop("_dedup_prefix")


def with_content_keys(df: DataFrame) -> DataFrame:
    """`df` plus ``_dedup_h1, _dedup_h2`` (content hashes) and ``_dedup_pos`` (the row's
    position in the input, which only orders rows identical in every column)."""
    h1, h2 = row_hashes(df)
    return df.select("*", h1.alias(H1), h2.alias(H2), F.monotonically_increasing_id().alias(POS))


def assign_ids(df: DataFrame, *, id_col: str | None = None, output_col: str = ID_COL) -> DataFrame:
    """Add a document id column.

    Parameters
    ----------
    df : any DataFrame.
    id_col : a unique integer or string column to use as the id (checked: one Spark job over
        the id column); None derives an int64 id from the row content.
    output_col : name of the added column (default ``_dedup_id``).

    Returns
    -------
    DataFrame
        ``df`` with ``output_col`` added: the user's ids (integers widened to bigint), or the
        derived ids: unique, the same for the same rows whatever their order, partitioning or
        column order. Deriving them costs one shuffle of the rows by a hash prefix when the
        result is evaluated; nothing is computed here.
    """
    if output_col in df.columns:
        raise SchemaError(
            f"the input already has a column named {output_col!r}, which sparkdedup reserves"
        )
    if id_col is not None:
        check_user_ids(df, id_col)
        return df.withColumn(output_col, id_column(df, id_col))
    check_batch(df)
    columns = df.columns
    ided = derived_ids(with_content_keys(df))
    return ided.select(*[named(c) for c in columns], F.col(ID_COL).alias(output_col))


def content_checksum(df: DataFrame) -> dict[str, int | str]:
    """Row count and an order-independent checksum of the rows' content (one Spark job).

    Two DataFrames holding the same rows, in any order, partitioning or column order, have the
    same checksum; derived ids (`assign_ids` without `id_col`) match between two DataFrames only
    then. Id and reader columns are not content.
    """
    h1, _ = row_hashes(df)
    row = df.select(
        F.count(F.lit(1)).alias("rows"),
        F.sum(h1.cast("decimal(38,0)")).alias("sum"),
    ).first()
    return {"rows": int(row["rows"]), "checksum": str(row["sum"] or 0)}
