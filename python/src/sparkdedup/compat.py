"""What differs between the pyspark versions sparkdedup supports (3.5 and 4.x).

Spark 4 moves Arrow tables between the driver and Spark directly (`DataFrame.toArrow`,
`createDataFrame(pyarrow.Table)`); on Spark 3.5 the same goes through its Arrow collect and
through pandas with Arrow enabled. The tables handled here are small (the driver's share of
connected components), never the corpus.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from sparkdedup.sizing import temporary_conf

_ARROW_CONF = {"spark.sql.execution.arrow.pyspark.enabled": "true"}


def is_connect(spark: Any) -> bool:
    """Whether `spark` is a Spark Connect session (no SparkContext, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def to_arrow(df: DataFrame) -> Any:
    """`df` collected to the driver as a pyarrow Table."""
    if hasattr(df, "toArrow"):
        return df.toArrow()
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    batches = df._collect_as_arrow()  # noqa: SLF001 - Spark 3.5's Arrow collect
    schema = to_arrow_schema(df.schema)
    return pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()


def empty_frame(spark: SparkSession, schema: T.StructType) -> DataFrame:
    """An empty DataFrame of `schema` (every field nullable), planned in the JVM alone.

    ``createDataFrame([], schema)`` plans a scan of a Python RDD: writing it starts a Python
    worker in every task (about 1.5 s a task on a cold worker), for no rows.
    """
    from pyspark.sql import functions as F

    return spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in schema])


def from_arrow(spark: SparkSession, table: Any, schema: T.StructType) -> DataFrame:
    """A DataFrame of the pyarrow Table `table` with the Spark `schema`."""
    if hasattr(DataFrame, "toArrow"):  # Spark 4 takes Arrow tables
        return spark.createDataFrame(table, schema=schema)
    with temporary_conf(spark, _ARROW_CONF):
        return spark.createDataFrame(table.to_pandas(), schema=schema)
