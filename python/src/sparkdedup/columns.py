"""A user's column by its name, whatever characters the name holds."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def quoted(name: str) -> str:
    """`name` as one quoted identifier for Spark SQL: a dot is part of the name (not a struct
    field), and a backtick in it is doubled."""
    return "`" + name.replace("`", "``") + "`"


def named(name: str) -> Column:
    """The top-level column called `name` (``F.col`` would read ``"a.b"`` as field ``b`` of a
    struct ``a`` and fail on a backtick)."""
    return F.col(quoted(name))
