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


def connect_35(spark: Any) -> bool:
    """Whether `spark` is a Spark Connect session of a pyspark 3.5 client (as Databricks
    Connect and standard access mode clusters before Runtime 17 give; its DataFrame is not yet
    a `pyspark.sql.DataFrame`). Such a client takes no Observations, has no checkpoints and no
    Arrow collect, and pyspark.ml does not run on it."""
    if not is_connect(spark):
        return False
    from pyspark.sql.connect.dataframe import DataFrame as ConnectDataFrame

    return not issubclass(ConnectDataFrame, DataFrame)


def is_dataframe(obj: Any) -> bool:
    """Whether `obj` is a Spark DataFrame, classic or Connect: a pyspark 3.5 Connect client's
    DataFrame (Databricks Connect before 17, standard access mode on runtimes before 17) is
    not a `pyspark.sql.DataFrame`."""
    if isinstance(obj, DataFrame):
        return True
    cls = type(obj)
    return cls.__name__ == "DataFrame" and cls.__module__.startswith("pyspark.sql.connect")


def to_arrow(df: DataFrame) -> Any:
    """`df` collected to the driver as a pyarrow Table."""
    if hasattr(df, "toArrow"):
        return df.toArrow()
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    if connect_35(df.sparkSession):  # its own Arrow collect
        client = df.sparkSession.client
        table, _ = client.to_table(df._plan.to_proto(client))  # noqa: SLF001
        return table.cast(to_arrow_schema(df.schema))

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
