"""Removal: drop the documents listed by `fuzzy_duplicates` or `semantic_duplicates`.

Works on any DataFrame that holds the ids: the user's id column, or, when the ids were derived,
the same rows. Derived ids are matched through the rows' content keys (``_dedup_h1, _dedup_h2,
_dedup_pos``): the key table of the run that listed them (`FuzzyResult.ids`), or keys derived
again from the rows (a read of the rows and a shuffle of the keys, never of the rows).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.columns import named
from sparkdedup.errors import SchemaError
from sparkdedup.ids import (
    DERIVED_ID_SCHEME,
    H1,
    H2,
    ID_COL,
    INTEGRAL,
    POS,
    check_batch,
    check_reserved_names,
    derived_ids,
    id_column,
    require_columns,
    with_content_keys,
)

#: Metadata of the ``id`` column of a duplicates list the Python API returns: which ids it
#: holds ("user", with the id column's name, or "derived", with the scheme that derived them).
#: Kept by Parquet and checkpoints.
IDS_META, ID_COL_META, SCHEME_META = "sparkdedup_ids", "sparkdedup_id_col", "sparkdedup_id_scheme"


def mark_ids(duplicates: DataFrame, id_col: str | None) -> DataFrame:
    """`duplicates` with its ``id`` column marked as holding values of `id_col`, or derived
    ids when None, so that `remove_duplicates` refuses other id options (no Spark job)."""
    meta = (
        {IDS_META: "derived", SCHEME_META: DERIVED_ID_SCHEME}
        if id_col is None
        else {IDS_META: "user", ID_COL_META: id_col}
    )
    return duplicates.select(
        *[named(c).alias(c, metadata=meta) if c == "id" else named(c) for c in duplicates.columns]
    )


def check_listed_ids(duplicates: DataFrame, id_col: str | None) -> None:
    """SchemaError when `duplicates` cannot hold ids of `id_col` (None: derived ids): its
    ``id`` column is marked (`mark_ids`) as another column's values or as derived ids, or,
    unmarked, it holds strings, which derived ids never are. No Spark job."""
    field = duplicates.schema["id"]
    listed = field.metadata.get(IDS_META)
    listed_col = field.metadata.get(ID_COL_META)
    if listed == "derived" and id_col is not None:
        raise SchemaError(
            f"the duplicates hold derived ids (listed without an id column), not values of "
            f"id_col {id_col!r}: call remove_duplicates without id_col, on the same rows"
        )
    if listed == "derived" and field.metadata.get(SCHEME_META, 1) != DERIVED_ID_SCHEME:
        raise SchemaError(
            "the duplicates hold ids derived by another version of sparkdedup, which hashed "
            "rows another way (nulls skipped, or -0.0 taken as 0.0): find the duplicates "
            "again with this version"
        )
    if listed == "user" and id_col != listed_col:
        got = "without id_col" if id_col is None else f"not of id_col {id_col!r}"
        raise SchemaError(
            f"the duplicates hold values of the id column {listed_col!r} ({got}): pass "
            f"id_col={listed_col!r} (or check=False for a column renamed since)"
        )
    if listed is None and id_col is None and isinstance(field.dataType, T.StringType):
        raise SchemaError(
            "the duplicates' ids are strings, which derived ids never are: pass id_col, the "
            "id column they are values of"
        )


def listed_ids(duplicates: DataFrame, key_type: T.DataType) -> Column:
    """The ``id`` column of `duplicates` as values of `key_type`, the type of the ids it is
    matched against (bigint or string), with no lossy cast: an id that no value of that type
    equals (a string that is not an integer's text, a number out of range) is null, which
    matches no row. Floating-point and fractional ids are refused (SchemaError, no Spark job):
    a cast would truncate them to another document's id, and a list that went through float64
    (pandas, JSON) may have lost the digits of large ids. Integers match strings as their text.
    """
    dtype = duplicates.schema["id"].dataType
    listed = F.col("id")
    integral = isinstance(dtype, INTEGRAL) or (
        isinstance(dtype, T.DecimalType) and dtype.scale == 0
    )
    if not (integral or isinstance(dtype, T.StringType)):
        raise SchemaError(
            f"the duplicates' id column is {dtype.simpleString()}; ids are integers or strings "
            "(a list read through floating point may have lost the digits of large ids: keep "
            "it as integers or strings)"
        )
    if isinstance(key_type, T.StringType):
        return listed.cast(key_type)  # a string, or an integer's text
    if isinstance(dtype, T.LongType):
        return listed
    # A value of key_type only when it converts back to the listed one: "07", "7.9", "x" and
    # integers out of range are not ids of the input.
    converted = F.expr(f"try_cast(id AS {key_type.simpleString()})")
    return F.when(converted.cast(dtype) == listed, converted)


def remove_duplicates(
    df: DataFrame,
    duplicates: DataFrame,
    *,
    id_col: str | None = None,
    ids: DataFrame | None = None,
    broadcast: bool = False,
    check: bool = True,
) -> DataFrame:
    """The rows of `df` whose id is not in `duplicates`.

    Parameters
    ----------
    df : the documents, with the user's id column `id_col`, or the rows the ids were derived
        from when `id_col` is None (a ``_dedup_id`` column, when present, is taken as the ids).
    duplicates : ``[id, ...]``, e.g. the output of `fuzzy_duplicates` or `semantic_duplicates`.
    id_col : the id column of `df`; None for derived ids.
    ids : for derived ids, the key table ``[id, _dedup_h1, _dedup_h2, _dedup_pos]`` of the run
        that listed `duplicates` on these same rows (`FuzzyResult.ids`); None derives it again.
    broadcast : send the ids to remove to every task (no shuffle of `df`); for lists that
        fit in memory. Otherwise Spark decides (a broadcast when they are small, else one
        shuffle of `df`).
    check : refuse, before any Spark job, a list that says it holds other ids than `id_col`
        asks for: the lists `fuzzy_duplicates`, `exact_duplicates`, `semantic_duplicates`
        and the Deduplicators return record which ids they hold in their ``id`` column's
        metadata (`mark_ids`); an unmarked list of string ids needs `id_col`. False skips it
        (a list whose id column was renamed since).

    Returns
    -------
    DataFrame
        `df` without the duplicate rows, same columns and types.
    """
    check_reserved_names(df, allowed=(ID_COL,))  # the ids, e.g. of `assign_ids`
    require_columns(duplicates, {"duplicates id": "id"})
    if check:
        check_listed_ids(duplicates, id_col)
    if id_col is not None:
        key = id_column(df, id_col)
        key_type = df.select(key.alias("k")).schema["k"].dataType
        # An anti join keeps a row that matches nothing, however often an id is listed: no
        # distinct (a shuffle of the list) is needed.
        remove = duplicates.select(listed_ids(duplicates, key_type).alias("_dedup_remove"))
        remove = F.broadcast(remove) if broadcast else remove
        return df.join(remove, key == remove["_dedup_remove"], "left_anti")
    if ID_COL in df.columns:
        remove = duplicates.select(listed_ids(duplicates, T.LongType()).alias(ID_COL))
        return df.join(remove, on=ID_COL, how="left_anti").select(*df.columns)
    if ids is None:
        check_batch(df)  # the ids are derived again: a rank of all the rows
        ids = derived_ids(with_content_keys(df).select(H1, H2, POS)).withColumnRenamed(ID_COL, "id")
    return drop_rows(df, removed_row_keys(duplicates, ids), broadcast=broadcast)


def removed_row_keys(duplicates: DataFrame, ids: DataFrame, hint: str | None = None) -> DataFrame:
    """The content keys ``[_dedup_h1, _dedup_h2, _dedup_pos]`` of the rows `duplicates` lists,
    from a derived-id key table (`FuzzyResult.ids`): as many rows as there are duplicates.
    `hint`: the join strategy with the duplicates (`sparkdedup.sizing.join_hint`), else
    Spark's choice."""
    remove = duplicates.select(listed_ids(duplicates, T.LongType()).alias("id")).distinct()
    if hint is not None:
        remove = remove.hint(hint)
    return ids.join(remove, on="id").select(H1, H2, POS)


def drop_rows(
    df: DataFrame,
    keys: DataFrame,
    *,
    broadcast: bool = False,
    checksum: Observation | None = None,
) -> DataFrame:
    """The rows of `df` whose content keys are not in `keys` (`removed_row_keys`).

    A row is matched by its input position and first content hash: the position alone names
    it within a run, and the hash makes sure it is the same row (a position that named another
    row, say after the input's splits changed, matches nothing, and the conservation check of
    the CLI fails instead of a wrong row going). `checksum`: observes ``rows`` and ``sum``,
    the row count and content checksum of `df` (`sparkdedup.ids.content_checksum`'s values),
    on the pass that reads it.
    """
    rows = with_content_keys(df)
    if checksum is not None:
        rows = rows.observe(
            checksum,
            F.count(F.lit(1)).alias("rows"),
            F.sum(F.col(H1).cast("decimal(38,0)")).alias("sum"),
        )
    keys = keys.select(H1, POS)
    keys = F.broadcast(keys) if broadcast else keys
    return rows.join(keys, on=[H1, POS], how="left_anti").select(*[named(c) for c in df.columns])
