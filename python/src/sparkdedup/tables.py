"""Catalog tables as the CLI's input and output (``--input-table`` / ``--output-table``).

Works with whatever catalog the session has: Hive metastore, Unity Catalog, Glue, Spark's
in-memory catalog; classic or Spark Connect (everything goes through SQL and the DataFrame API).

Output rules, as for directories (`sparkdedup.outputs`):

1. The output table is never the input table.
2. An existing output table is refused unless ``--overwrite``, and ``--overwrite`` replaces only a
   table sparkdedup wrote: one carrying the table property ``sparkdedup.written_by``.
3. The rows are written to a staging table (``NAME__sparkdedup_staging``) first. Only when the
   run's checks have passed is the old table dropped and the staging table renamed to ``NAME``
   (a metadata operation; a managed table's directory moves with it), so a run that fails
   leaves an earlier output as it was.

A table read as input keeps its format: the output table is created ``LIKE`` it (provider,
storage format, partitioning), and the deduplicated rows go in by column name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkdedup import __version__
from sparkdedup.errors import ConfigError, DedupError, InputError

#: Table property that marks a table sparkdedup wrote (its value: the sparkdedup version).
WRITTEN_BY = "sparkdedup.written_by"
#: Table property of a staging table, so that a later run may drop one a crash left behind.
STAGING = "sparkdedup.staging"
STAGING_SUFFIX = "__sparkdedup_staging"

#: Providers whose files the CLI can also write into a directory, as the table holds them.
FILE_PROVIDERS = ("parquet", "orc", "json", "csv", "avro", "delta", "text")

_PART = r"(?:[A-Za-z0-9_]+|`(?:[^`]|``)+`)"
_NAME = re.compile(rf"^{_PART}(?:\.{_PART}){{0,2}}$")


@dataclasses.dataclass(frozen=True)
class TableInfo:
    """What the catalog says of a table."""

    name: str
    provider: str
    location: str | None
    properties: dict[str, str]


def check_name(name: str, option: str) -> None:
    """`name` is ``[catalog.][database.]table``, each part a plain or `backquoted` identifier."""
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise ConfigError(
            f"{option} must be a table name, [catalog.][database.]table (parts in backquotes when "
            f"they hold other characters), got {name!r}"
        )


def _error(err: BaseException) -> str:
    from sparkdedup.io import first_line

    return first_line(err) if isinstance(err, Exception) else str(err)


def exists(spark: SparkSession, name: str) -> bool:
    return bool(spark.catalog.tableExists(name))


def describe(spark: SparkSession, name: str) -> TableInfo:
    """Provider, location and properties of an existing table."""
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    info = {str(r[0]).strip(): (r[1] or "") for r in rows}
    properties = {str(r[0]): str(r[1]) for r in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()}
    provider = info.get("Provider", "").strip().lower() or "hive"
    location = info.get("Location", "").strip() or None
    return TableInfo(name, provider, location, properties)


def output_format(info: TableInfo) -> str:
    """The format a table's deduplicated rows are written in, in a directory: its own when it
    is a file source, else Parquet."""
    return info.provider if info.provider in FILE_PROVIDERS else "parquet"


def read_table(spark: SparkSession, name: str, id_col: str | None) -> DataFrame:
    """A catalog table's rows with the reader columns of `sparkdedup.io`: its data file (when
    the source has one) and, as for Parquet, a null id as the reason a row is a bad record."""
    from sparkdedup.io import BAD_COL, FILE_COL

    if not exists(spark, name):
        raise InputError(f"--input-table {name!r} does not exist in the session's catalog")
    try:
        df = spark.read.table(name)
        df.schema  # noqa: B018 - resolves the table: an unreadable one fails here
    except (PySparkException, Py4JJavaError) as err:
        raise InputError(f"--input-table {name!r} cannot be read: {_error(err)}") from err
    try:
        df = df.withColumn(FILE_COL, F.col("_metadata.file_path"))
        df.schema  # noqa: B018 - Spark Connect resolves lazily
    except (PySparkException, Py4JJavaError):  # a Hive serde table has no file metadata
        df = spark.read.table(name).withColumn(FILE_COL, F.lit(name))
    bad = F.lit(None).cast("string")
    if id_col is not None and id_col in df.columns:
        bad = F.when(F.col(f"`{id_col}`").isNull(), F.lit(f"id column {id_col!r} is null"))
    return df.withColumn(BAD_COL, bad)


def table_fingerprint(spark: SparkSession, name: str) -> dict[str, Any]:
    """Part of the stage-cache fingerprint: the table and its files (count, bytes, latest
    modification) when it has a location this session can list, else its data files' names."""
    from sparkdedup import fs

    info = describe(spark, name)
    if info.location is not None:
        try:
            files, size, latest = fs.file_summary(spark, info.location)
            return {"table": name, "files": files, "bytes": size, "mtime": latest}
        except (DedupError, PySparkException, Py4JJavaError, OSError):
            pass  # a location this session cannot list (Spark Connect, a remote store)
    files = sorted(spark.read.table(name).inputFiles())
    digest = hashlib.sha256("\n".join(files).encode()).hexdigest()
    return {"table": name, "files": len(files), "names": digest}


class OutputTable:
    """The deduplicated rows of one CLI run as a catalog table, staged and then renamed.

    Use: `prepare` (checks, drops a staging table a crash left), `write`, then `commit`, or
    `abort` when the run failed.
    """

    def __init__(
        self,
        spark: SparkSession,
        name: str,
        *,
        overwrite: bool = False,
        like: str | None = None,
        fmt: str = "parquet",
        options: dict[str, str] | None = None,
    ) -> None:
        check_name(name, "--output-table")
        self.spark = spark
        self.name = name.strip()
        self.staging = _staging_name(self.name)
        self.overwrite = overwrite
        self.like = like
        self.fmt = fmt
        self.options = dict(options or {})
        self.written = False

    def prepare(self) -> None:
        """Apply the output rules before any work."""
        if self.like is not None and _same_table(self.spark, self.like, self.name):
            raise ConfigError(
                f"--output-table {self.name!r} is the input table; write the deduplicated rows to "
                "a new table (sparkdedup never replaces its input)"
            )
        if exists(self.spark, self.name):
            info = describe(self.spark, self.name)
            if WRITTEN_BY not in info.properties:
                raise ConfigError(
                    f"--output-table {self.name!r} exists and was not written by sparkdedup (no "
                    f"{WRITTEN_BY} table property); choose a new table name (--overwrite never "
                    "replaces a table sparkdedup did not write)"
                )
            if not self.overwrite:
                raise ConfigError(
                    f"--output-table {self.name!r} already holds the output of an earlier "
                    "sparkdedup run; pass --overwrite to replace it, or choose a new table name"
                )
        if exists(self.spark, self.staging):
            info = describe(self.spark, self.staging)
            if STAGING not in info.properties:
                raise ConfigError(
                    f"table {self.staging!r} exists and is not a sparkdedup staging table; "
                    f"--output-table {self.name!r} stages its rows under that name: drop or "
                    "rename it"
                )
            self.spark.sql(f"DROP TABLE {self.staging}")  # left by a run that did not finish

    def write(self, df: DataFrame) -> None:
        """Write `df`'s content columns into the staging table."""
        from sparkdedup.io import RECORD_COL, canonical_format, content_columns

        if RECORD_COL in df.columns:
            raise ConfigError(
                "--output-table needs typed rows: JSONL input is kept line for line and can only "
                "be written to --output; convert the corpus to Parquet (or read it from a table) "
                "to write a table"
            )
        columns = content_columns(df)
        if self.like is not None:
            self.spark.sql(f"CREATE TABLE {self.staging} LIKE {self.like}")
            self._mark(STAGING)
            target = self.spark.read.table(self.staging).columns
            missing = [c for c in target if c not in columns]
            if missing:
                raise InputError(
                    f"the deduplicated rows lack the columns {missing} of --input-table "
                    f"{self.like!r}"
                )
            # insertInto matches by position: the table's own column order.
            df.select(*[F.col(f"`{c}`") for c in target]).write.insertInto(self.staging)
        else:
            fmt = canonical_format(self.fmt)
            fmt = "json" if fmt == "jsonl" else fmt
            content = df.select(*[F.col(f"`{c}`") for c in columns])
            content.write.format(fmt).options(**self.options).saveAsTable(self.staging)
            self._mark(STAGING)
        self.written = True

    def _mark(self, key: str, table: str | None = None) -> None:
        self.spark.sql(
            f"ALTER TABLE {table or self.staging} SET TBLPROPERTIES ('{key}' = '{__version__}')"
        )

    def commit(self) -> None:
        """Replace the earlier output table (sparkdedup's own) with the staged one."""
        if not self.written:
            raise RuntimeError("OutputTable.write() must run before commit()")
        self._mark(WRITTEN_BY)
        self.spark.sql(f"ALTER TABLE {self.staging} UNSET TBLPROPERTIES IF EXISTS ('{STAGING}')")
        if exists(self.spark, self.name):
            self.spark.sql(f"DROP TABLE {self.name}")
        self.spark.sql(f"ALTER TABLE {self.staging} RENAME TO {self.name}")
        self.written = False

    def abort(self) -> None:
        """Drop the staging table; an earlier output table stays as it was."""
        try:
            if exists(self.spark, self.staging):
                self.spark.sql(f"DROP TABLE {self.staging}")
        finally:
            self.written = False


def _staging_name(name: str) -> str:
    *prefix, table = _split(name)
    if table.startswith("`"):
        table = table[:-1] + STAGING_SUFFIX + "`"
    else:
        table += STAGING_SUFFIX
    return ".".join([*prefix, table])


def _split(name: str) -> list[str]:
    return re.findall(_PART, name)


def _unquote(part: str) -> str:
    return part[1:-1].replace("``", "`") if part.startswith("`") else part


def _same_table(spark: SparkSession, a: str, b: str) -> bool:
    """Whether two names are the same table: compared as the catalog resolves them (database
    filled in), else by their parts."""
    if not (exists(spark, a) and exists(spark, b)):
        return [_unquote(p).lower() for p in _split(a)] == [_unquote(p).lower() for p in _split(b)]
    left, right = describe(spark, a), describe(spark, b)
    if left.location and right.location:
        return left.location.rstrip("/") == right.location.rstrip("/")
    return _qualified(spark, a) == _qualified(spark, b)


def _qualified(spark: SparkSession, name: str) -> list[str]:
    parts = [_unquote(p).lower() for p in _split(name)]
    if len(parts) == 1:
        parts = [spark.catalog.currentDatabase().lower(), *parts]
    return parts
