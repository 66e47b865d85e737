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
4. One run at a time writes a table: from its checks to its commit a run holds a lease on it,
   an empty table ``NAME__sparkdedup_lease`` whose property names the run and is renewed while
   it runs (`TableLease`, with the rules of `sparkdedup.outputs.OutputLease`). Another run of
   the same table is refused, naming it, and never drops the staging table of a live run.

A table read as input keeps its format: the output table is created ``LIKE`` it (provider,
storage format, partitioning), and the deduplicated rows go in by column name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkdedup import __version__
from sparkdedup.columns import named
from sparkdedup.compat import is_connect
from sparkdedup.errors import ConfigError, DedupError, InputError
from sparkdedup.io import SPARK_ERRORS
from sparkdedup.outputs import OutputLease
from sparkdedup.sizing import temporary_conf

log = logging.getLogger("sparkdedup")

#: Table property that marks a table sparkdedup wrote (its value: the sparkdedup version).
WRITTEN_BY = "sparkdedup.written_by"
#: Table property of a staging table, so that a later run may drop one a crash left behind.
STAGING = "sparkdedup.staging"
STAGING_SUFFIX = "__sparkdedup_staging"
#: The lease of an output table (`TableLease`): an empty table, its record in a table property.
LEASE_SUFFIX = "__sparkdedup_lease"
LEASE_PROPERTY = "sparkdedup.lease"
#: An earlier output table while the new one is renamed into its place (`OutputTable.commit`).
REPLACED_SUFFIX = "__sparkdedup_replaced"
#: Settings of an insert into a partitioned Hive-format table (`OutputTable.write`): every
#: partition from the rows (Hive's strict mode wants one given), and as many as the input has
#: (Hive's defaults, 1,000 partitions and 100,000 files, would fail a corpus partitioned by day
#: or by source after all the work).
_DYNAMIC_PARTITIONS = {
    "hive.exec.dynamic.partition": "true",
    "hive.exec.dynamic.partition.mode": "nonstrict",
    "hive.exec.max.dynamic.partitions": str(10**7),
    "hive.exec.max.dynamic.partitions.pernode": str(10**7),
    "hive.exec.max.created.files": str(10**9),
}

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
    #: A view's SQL (None for a table).
    view_text: str | None = None
    #: A Hive-format table's serde class (None for a data source table).
    serde: str | None = None


def check_name(name: str, option: str) -> None:
    """`name` is ``[catalog.][database.]table``, each part a plain or `backquoted` identifier."""
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise ConfigError(
            f"{option} must be a table name, [catalog.][database.]table (parts in backquotes when "
            f"they hold other characters), got {name!r}"
        )
    table = name.strip().rstrip("`").lower()
    if option == "--output-table" and table.endswith(
        (STAGING_SUFFIX, LEASE_SUFFIX, REPLACED_SUFFIX)
    ):
        raise ConfigError(
            f"{option} {name!r} ends with a name sparkdedup keeps for the staging, lease and "
            f"replaced tables of an output table ({STAGING_SUFFIX}, {LEASE_SUFFIX}, "
            f"{REPLACED_SUFFIX}); choose another"
        )


def session_name(spark: SparkSession, name: str) -> str:
    """`name` without a leading ``spark_catalog.``, the session catalog's own name, while that
    catalog is the current one (a two-part name then means the same table): Spark's ``CREATE
    TABLE ... LIKE`` (3.5) and ``ALTER TABLE ... RENAME TO`` take at most ``database.table``
    there. With another catalog current the name is kept whole."""
    parts = _split(name.strip())
    if len(parts) != 3 or _unquote(parts[0]).lower() != "spark_catalog":
        return name.strip()
    return ".".join(parts[1:]) if _session_catalog_current(spark) else name.strip()


def _session_catalog_current(spark: SparkSession) -> bool:
    """Whether the session catalog (``spark_catalog``) is the current one; False when the
    session cannot say."""
    try:
        return str(spark.catalog.currentCatalog()).lower() == "spark_catalog"
    except Exception:  # noqa: BLE001 - a session without catalogs' names
        return False


def _rename_target(name: str) -> str:
    """`name` as ``ALTER TABLE ... RENAME TO`` takes it: without its catalog, which a rename
    keeps (Spark takes a v2 catalog's new name within the table's own catalog)."""
    parts = _split(name)
    return ".".join(parts[-2:]) if len(parts) == 3 else name


def _error(err: BaseException) -> str:
    from sparkdedup.io import first_line

    return first_line(err) if isinstance(err, Exception) else str(err)


def exists(spark: SparkSession, name: str) -> bool:
    return bool(spark.catalog.tableExists(name))


def table_properties(spark: SparkSession, name: str) -> dict[str, str]:
    """An existing table's properties (a few dozen rows at most)."""
    return {str(r[0]): str(r[1]) for r in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()}


def set_property(spark: SparkSession, name: str, key: str, value: str) -> None:
    spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ('{key}' = '{_literal(value)}')")


def describe(spark: SparkSession, name: str) -> TableInfo:
    """Provider, location and properties of an existing table."""
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    info = {str(r[0]).strip(): (r[1] or "") for r in rows}
    properties = table_properties(spark, name)
    provider = info.get("Provider", "").strip().lower() or "hive"
    location = info.get("Location", "").strip() or None
    view_text = info.get("View Original Text") or info.get("View Text") or None
    serde = info.get("Serde Library", "").strip() or None
    return TableInfo(name, provider, location, properties, view_text, serde)


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
    except SPARK_ERRORS as err:
        raise InputError(f"--input-table {name!r} cannot be read: {_error(err)}") from err
    try:
        df = df.withColumn(FILE_COL, F.col("_metadata.file_path"))
        df.schema  # noqa: B018 - Spark Connect resolves lazily
    except SPARK_ERRORS:  # a Hive serde table has no file metadata
        df = spark.read.table(name).withColumn(FILE_COL, F.lit(name))
    bad = F.lit(None).cast("string")
    if id_col is not None and id_col in df.columns:
        bad = F.when(named(id_col).isNull(), F.lit(f"id column {id_col!r} is null"))
    return df.withColumn(BAD_COL, bad)


def table_fingerprint(spark: SparkSession, name: str) -> dict[str, Any]:
    """Part of the stage-cache fingerprint of ``--input-table``: what the table's rows come
    from, so that a rerun after any change to them recomputes its stages.

    - A table whose location this session lists: every data file under it (its path below the
      location, size and modification time: `fs.file_summary`); for a Delta table also its
      transaction log's files (a commit that writes no data file, a ``RESTORE`` or a
      metadata-only ``DELETE``, changes the rows read).
    - A partitioned table: its partitions (``SHOW PARTITIONS``, hashed by Spark: one added,
      dropped or renamed while the files stay), and the files of its partitions outside its
      location (added with a ``LOCATION`` of their own: from the session catalog's partition
      locations, else the files the table reads), by path, size and modification time.
    - A view: its SQL (on a classic session its analyzed plan, so views it reads count too),
      and the data files it reads, by name and by each one's path, size and modification time
      (`fs.dirs_digest`: a Hive-format table's scan names its directories, listed then).
    - Anything else: the names of the data files it reads.
    """
    from sparkdedup import fs

    info = describe(spark, name)
    key: dict[str, Any] = {"table": name}
    plan = ""
    if info.view_text is not None:
        plan = _view_plan(spark, name, info.view_text)
        key["view"] = hashlib.sha256(plan.encode()).hexdigest()
    listed = False
    if info.location is not None and info.view_text is None:
        try:
            files, size, latest, digest = fs.file_summary(spark, info.location)
            key.update(files=files, bytes=size, mtime=latest, listing=digest)
            if info.provider == "delta":
                key["log"] = fs.file_summary(spark, f"{info.location.rstrip('/')}/_delta_log")[3]
            listed = True
        except (DedupError, *SPARK_ERRORS, OSError):
            pass  # a location this session cannot list (Spark Connect, a remote store)
    partitions = _partitions(spark, name) if info.provider != "delta" else None
    if partitions is not None:
        key["partitions"] = partitions
    if not listed:
        names = sorted(input_files(spark, name))
        key.update(files=len(names), names=hashlib.sha256("\n".join(names).encode()).hexdigest())
        hive = "HiveTableRelation" in plan or plan == info.view_text  # (no plan: maybe)
        if info.view_text is not None and names and hive:
            # A view reads tables it does not own: their files as they are now, each one's size
            # and time (a Hive format table's scan names its directory, not its files: an
            # INSERT OVERWRITE of new texts left the key as it was and stale stages resumed).
            try:
                key["listing"] = fs.dirs_digest(spark, names)
            except (DedupError, *SPARK_ERRORS, OSError):
                pass  # a place this session cannot list (Spark Connect, a remote store)
    elif partitions is not None:
        places = _partition_locations(spark, name)
        if places is None:  # the files the table reads outside it: each one's directory
            files = input_files(spark, name)
            places = [f.rsplit("/", 1)[0] for f in files if not _under(f, info.location)]
        outside = sorted({p for p in places if not _under(p, info.location)})
        if outside:
            key["outside"] = fs.dirs_digest(spark, outside)
    return key


def _view_plan(spark: SparkSession, name: str, text: str) -> str:
    """A view's SQL, or on a classic session its analyzed plan without expression ids (the
    views it reads expanded in it)."""
    if is_connect(spark):
        return text
    try:
        plan = str(spark.read.table(name)._jdf.queryExecution().analyzed().toString())
    except Exception:  # noqa: BLE001 - the SQL alone, then
        return text
    return re.sub(r"#\d+L?", "", plan)


def _partition_locations(spark: SparkSession, name: str) -> list[str] | None:
    """The location of each partition of `name`, from a classic session's catalog (a Hive
    format table's scan names no file), in one py4j call (the partitions' descriptions, one
    ``Location:`` line each); None where the catalog does not say."""
    if is_connect(spark):
        return None
    try:
        state = spark._jsparkSession.sessionState()
        ident = state.sqlParser().parseTableIdentifier(name)
        parts = state.catalog().listPartitions(ident, spark._jvm.scala.Option.empty())
        count, text = int(parts.size()), str(parts.mkString("\n"))
    except Exception:  # noqa: BLE001 - a catalog other than the session's (Unity, v2)
        return None
    places = re.findall(r"^\tLocation: (.*)$", text, re.MULTILINE)
    return places if len(places) == count else None


def input_files(spark: SparkSession, name: str) -> list[str]:
    """The data files a scan of table `name` reads, in one call (a classic session's array
    crosses py4j as one string, not a call a file)."""
    df = spark.read.table(name)
    if is_connect(spark):
        return list(df.inputFiles())
    joined = spark._jvm.org.apache.hadoop.util.StringUtils.join("\n", df._jdf.inputFiles())
    return str(joined).split("\n") if joined else []


def _partitions(spark: SparkSession, name: str) -> str | None:
    """A digest of a partitioned table's partitions (``SHOW PARTITIONS``, hashed by Spark: one
    row reaches the driver), else None."""
    from sparkdedup import fs

    try:
        if not any(c.isPartition for c in spark.catalog.listColumns(name)):
            return None
        shown = spark.sql(f"SHOW PARTITIONS {name}")
        column = F.col(shown.columns[0])
        row = shown.agg(
            F.count(F.lit(1)).alias("n"),
            fs.hash_sum(1, column).alias("h1"),
            fs.hash_sum(2, column).alias("h2"),
        ).first()
    except SPARK_ERRORS:
        return None  # a source without partition metadata
    return f"{row['n']}:{row['h1']}:{row['h2']}"


def _under(path: str, root: str) -> bool:
    """Whether `path` is directory `root` or lies under it (``file:/x`` and ``file:///x``
    alike)."""
    a, b = urlparse(path), urlparse(root)
    if (a.scheme or "file", a.netloc) != (b.scheme or "file", b.netloc):
        return False
    top = b.path.rstrip("/")
    return a.path.rstrip("/") == top or a.path.startswith(top + "/")


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
        self.name = session_name(spark, name)
        self.staging = _staging_name(self.name)
        self.replaced = _suffixed(self.name, REPLACED_SUFFIX)
        self.overwrite = overwrite
        self.like = like
        self.fmt = fmt
        self.options = dict(options or {})
        self.written = False
        self.lease: TableLease | None = None

    def prepare(self) -> None:
        """Apply the output rules before any work, holding the table's lease from here to the
        commit or the abort."""
        if self.like is not None and _same_table(self.spark, self.like, self.name):
            raise ConfigError(
                f"--output-table {self.name!r} is the input table; write the deduplicated rows to "
                "a new table (sparkdedup never replaces its input)"
            )
        lease = TableLease(self.spark, self.name)
        lease.acquire()
        try:
            self._check()
        except BaseException:
            lease.release()
            raise
        self.lease = lease

    def _check(self) -> None:
        if exists(self.spark, self.replaced):
            # Left by a run that stopped while committing (this run holds the lease).
            self._require_ours(
                self.replaced,
                f"table {self.replaced!r} exists and was not written by sparkdedup; "
                f"--output-table {self.name!r} renames its earlier output aside under that "
                "name while committing: drop or rename it",
            )
            if exists(self.spark, self.name):
                log.warning(
                    "sparkdedup: dropping %s, the earlier output of %s that a run stopped "
                    "while committing left",
                    self.replaced,
                    self.name,
                )
                self.spark.sql(f"DROP TABLE {self.replaced}")
            else:
                log.warning(
                    "sparkdedup: putting back %s as %s, the earlier output that a run stopped "
                    "while committing left aside",
                    self.replaced,
                    self.name,
                )
                self.spark.sql(f"ALTER TABLE {self.replaced} RENAME TO {_rename_target(self.name)}")
        if exists(self.spark, self.name):
            self._require_ours(
                self.name,
                f"--output-table {self.name!r} exists and was not written by sparkdedup (no "
                f"{WRITTEN_BY} table property); choose a new table name (--overwrite never "
                "replaces a table sparkdedup did not write)",
            )
            if not self.overwrite:
                raise ConfigError(
                    f"--output-table {self.name!r} already holds the output of an earlier "
                    "sparkdedup run; pass --overwrite to replace it, or choose a new table name"
                )
        else:
            self._check_location_free()
        if exists(self.spark, self.staging):
            info = describe(self.spark, self.staging)
            # (A commit marks the staged table as written before its renames.)
            if STAGING not in info.properties and WRITTEN_BY not in info.properties:
                raise ConfigError(
                    f"table {self.staging!r} exists and is not a sparkdedup staging table; "
                    f"--output-table {self.name!r} stages its rows under that name: drop or "
                    "rename it"
                )
            # Left by a run that did not finish (a live run would hold the lease).
            log.warning(
                "sparkdedup: dropping the staging table %s of a run that did not finish",
                self.staging,
            )
            self.spark.sql(f"DROP TABLE {self.staging}")

    def _require_ours(self, name: str, refusal: str) -> None:
        """ConfigError(`refusal`) unless sparkdedup wrote table `name`."""
        if WRITTEN_BY not in describe(self.spark, name).properties:
            raise ConfigError(refusal)

    def _check_location_free(self) -> None:
        """ConfigError when a new table's default location (a session catalog's managed table)
        already holds something: the staged table's rename into it would fail, after all the
        work (Spark's LOCATION_ALREADY_EXISTS)."""
        from sparkdedup import fs

        if is_connect(self.spark) or len(_split(self.name)) > 2:
            return
        if not _session_catalog_current(self.spark):
            return
        try:
            state = self.spark._jsparkSession.sessionState()
            ident = state.sqlParser().parseTableIdentifier(self.name)
            place = str(state.catalog().defaultTablePath(ident).toString())
        except Exception:  # noqa: BLE001 - another catalog: its own rules
            return
        if fs.exists(self.spark, place):
            raise ConfigError(
                f"--output-table {self.name!r} is new, but its location {place} already "
                "exists (left by a table dropped without its files?); remove it, or choose "
                "another table name"
            )

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
            # insertInto matches by position: the table's own column order. A partitioned Hive
            # format table takes all its partitions from the rows (Hive's default strict mode
            # wants one given: every insert of a TEXTFILE or Avro table failed).
            with temporary_conf(self.spark, _DYNAMIC_PARTITIONS):
                df.select(*[named(c) for c in target]).write.insertInto(self.staging)
        else:
            fmt = canonical_format(self.fmt)
            fmt = "json" if fmt == "jsonl" else fmt
            content = df.select(*[named(c) for c in columns])
            content.write.format(fmt).options(**self.options).saveAsTable(self.staging)
            self._mark(STAGING)
        self.written = True

    def _mark(self, key: str) -> None:
        set_property(self.spark, self.staging, key, __version__)

    def commit(self) -> None:
        """Replace the earlier output table (sparkdedup's own) with the staged one."""
        if not self.written:
            raise RuntimeError("OutputTable.write() must run before commit()")
        if self.lease is not None:
            self.lease.check()  # taken over meanwhile: the other run's table is left alone
        self._mark(WRITTEN_BY)
        self.spark.sql(f"ALTER TABLE {self.staging} UNSET TBLPROPERTIES IF EXISTS ('{STAGING}')")
        # The earlier table is renamed aside, not dropped, until the new one is in its place:
        # a rename that fails (a name the catalog refuses, a directory left at the table's
        # location) puts it back, and the run fails with the earlier output as it was.
        aside = exists(self.spark, self.name)
        if aside:
            self.spark.sql(f"ALTER TABLE {self.name} RENAME TO {_rename_target(self.replaced)}")
        try:
            self.spark.sql(f"ALTER TABLE {self.staging} RENAME TO {_rename_target(self.name)}")
        except BaseException:
            if aside:
                self.spark.sql(f"ALTER TABLE {self.replaced} RENAME TO {_rename_target(self.name)}")
            raise
        if aside:
            self.spark.sql(f"DROP TABLE {self.replaced}")
        self.written = False
        self._release()

    def abort(self) -> None:
        """Drop the staging table (while this run holds the lease: else it may be another
        run's); an earlier output table stays as it was."""
        try:
            if self._holds_lease() and exists(self.spark, self.staging):
                self.spark.sql(f"DROP TABLE {self.staging}")
        finally:
            self.written = False
            self._release()

    def _holds_lease(self) -> bool:
        if self.lease is None:
            return False
        try:
            self.lease.check()
        except Exception:  # noqa: BLE001 - taken over, or the catalog unreachable: not ours
            return False
        return True

    def _release(self) -> None:
        lease, self.lease = self.lease, None
        if lease is None:
            return
        try:
            lease.release()
        except Exception as err:  # noqa: BLE001 - the run's outcome stands; a later run takes it over
            log.warning(
                "sparkdedup: could not drop the lease table %s (%s); the next run of %s takes "
                "it over",
                lease.path,
                _error(err),
                self.name,
            )


class TableLease(OutputLease):
    """`sparkdedup.outputs.OutputLease` kept in the catalog, for an output table: an empty
    table ``NAME__sparkdedup_lease`` (created only if absent: ``CREATE TABLE`` fails when it
    exists), the record in its `LEASE_PROPERTY` property, renewed with ``ALTER TABLE``. Any
    catalog works (no file system of the client's is involved), Spark Connect included."""

    def __init__(self, spark: SparkSession, name: str) -> None:
        super().__init__(spark, _suffixed(name, LEASE_SUFFIX), name, "--output-table")

    def _create(self, body: str) -> bool:
        provider = self.spark.conf.get("spark.sql.sources.default", "parquet")
        try:
            self.spark.sql(
                f"CREATE TABLE {self.path} (sparkdedup_lease STRING) USING {provider} "
                f"TBLPROPERTIES ('{LEASE_PROPERTY}' = '{_literal(body)}')"
            )
        except SPARK_ERRORS as err:
            if exists(self.spark, self.path):
                return False  # another run's (or one created meanwhile)
            raise ConfigError(
                f"--output-table {self.display!r}: cannot create its lease table {self.path!r}: "
                f"{_error(err)}"
            ) from err
        return True

    def _read(self) -> str | None:
        if not exists(self.spark, self.path):
            return None
        try:
            record = table_properties(self.spark, self.path).get(LEASE_PROPERTY)
        except SPARK_ERRORS:
            if not exists(self.spark, self.path):
                return None  # given back meanwhile
            raise
        if record is None:
            raise ConfigError(
                f"table {self.path!r} exists and is not a sparkdedup lease (no {LEASE_PROPERTY} "
                f"table property); --output-table {self.display!r} keeps its lease under that "
                "name: drop or rename it"
            )
        return record

    def _replace(self, body: str) -> None:
        set_property(self.spark, self.path, LEASE_PROPERTY, body)

    def _delete(self) -> None:
        self.spark.sql(f"DROP TABLE IF EXISTS {self.path}")

    def _unreadable(self) -> dict | None:
        # Only sparkdedup writes the property, in one step: one that does not parse is damaged,
        # and its run long gone.
        return {"renewed": 0.0} if exists(self.spark, self.path) else None

    def _check_not_foreign(self) -> None:
        pass  # `_read` already refuses a table that is not a lease


def _literal(text: str) -> str:
    """`text` inside a single-quoted SQL string literal."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _staging_name(name: str) -> str:
    return _suffixed(name, STAGING_SUFFIX)


def _suffixed(name: str, suffix: str) -> str:
    """The table `name` with `suffix` appended to its last part (in the same database)."""
    *prefix, table = _split(name)
    if table.startswith("`"):
        table = table[:-1] + suffix + "`"
    else:
        table += suffix
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
