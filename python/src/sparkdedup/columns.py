"""A user's column by its name, whatever characters the name holds."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T


def quoted(name: str) -> str:
    """`name` as one quoted identifier for Spark SQL: a dot is part of the name (not a struct
    field), and a backtick in it is doubled."""
    return "`" + name.replace("`", "``") + "`"


def named(name: str) -> Column:
    """The top-level column called `name` (``F.col`` would read ``"a.b"`` as field ``b`` of a
    struct ``a`` and fail on a backtick)."""
    return F.col(quoted(name))


def non_binary_collation(dtype: T.DataType) -> bool:
    """Whether `dtype` is a string in a collation other than UTF8_BINARY (Spark 4's
    UTF8_LCASE, UNICODE_CI, ...), under which different strings can compare equal."""
    return isinstance(dtype, T.StringType) and (
        getattr(dtype, "collation", "UTF8_BINARY") != "UTF8_BINARY"
    )


def binary_strings(column: Column, dtype: T.DataType) -> Column:
    """`column` (of type `dtype`) compared byte for byte: a string in another collation is put
    into UTF8_BINARY, anything else is returned as it is."""
    return F.collate(column, "UTF8_BINARY") if non_binary_collation(dtype) else column
