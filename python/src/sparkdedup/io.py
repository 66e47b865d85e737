"""Readers and writers for corpora: JSONL and Parquet, local paths or any Hadoop file system URI.

Used by the CLI and the notebooks; the DataFrame API itself does no I/O.

- **JSONL** is read as lines: each record keeps its exact bytes (``_dedup_record``) and only the
  fields a workflow needs are parsed from it, with types taken from the first records (no
  inference pass over the corpus). The deduplicated output is the kept lines, byte for byte
  (each ended by ``\n``).
  Blank lines are not records. The parser accepts strings of any length.
- **Parquet** is read with schema merging, so no file's columns are dropped; files that
  disagree on a column's type, or that lack the text or id column, are errors naming them.
  The text column can be checked on a pass the caller makes anyway (`read_input`'s
  ``defer_text_check``, `all_null_files`, `check_all_null_files`), so that the check reads no
  text of its own.
- **Bad records** (a JSONL line that is not a JSON object, has invalid UTF-8 or a needed field
  of another type, which the reason names; a row without an id) are marked in ``_dedup_bad`` with the reason, and
  `first_bad_record` finds the file and line of one of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import reduce
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.errors import PySparkException, PySparkTypeError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup import fs, redact
from sparkdedup.columns import named
from sparkdedup.compat import is_connect
from sparkdedup.config import check_sort_direction
from sparkdedup.errors import ConfigError, InputError, SchemaError

FORMATS = ("jsonl", "parquet")
BAD_RECORDS = ("fail", "skip", "quarantine")

#: JSONL: the record's line, exactly as read (the deduplicated output writes it back).
RECORD_COL = "_dedup_record"
#: The file a row was read from (``_metadata.file_path``); not content.
FILE_COL = "_dedup_file"
#: Why a row is a bad record, or null for a good one.
BAD_COL = "_dedup_bad"
#: Columns the readers add that are not the user's content.
READER_COLS = (FILE_COL, BAD_COL)
#: How the error a bad record raises (with --bad-records fail) begins.
BAD_RECORD_PREFIX = "bad input record in "

#: How many leading JSONL records set the types of the parsed fields.
JSON_SAMPLE_RECORDS = 1000
_CORRUPT = "_dedup_corrupt"
# Jackson's default limit is 20 M characters per string; documents can be longer.
_JSON_OPTIONS = {"maxStringLen": str(2**31 - 1)}
_BOM = "\ufeff"
# The non-standard numbers Jackson reads when allowNonNumericNumbers is on (Spark's default).
_NON_NUMERIC = ("NaN", "Infinity", "+Infinity", "-Infinity", "INF", "+INF", "-INF")
# Files reported by name in a schema error before "and N more".
_SHOWN_FILES = 5


def _py4j_errors() -> tuple[type[Exception], ...]:
    """py4j's error for a failed call into a local JVM, where py4j is installed: a Spark
    Connect-only client (``pip install pyspark-client``) has no py4j, and raises pyspark's
    errors only."""
    try:
        from py4j.protocol import Py4JJavaError  # noqa: PLC0415
    except ImportError:
        return ()
    return (Py4JJavaError,)


#: What a failed Spark call raises, classic or Connect.
SPARK_ERRORS: tuple[type[Exception], ...] = (PySparkException, *_py4j_errors())


def check_format(fmt: str, name: str = "input_format") -> None:
    """`fmt` is "jsonl" (or "json", the same), "parquet", or any other Spark data source name
    (orc, csv, text, avro, delta, ... whatever the session's classpath has)."""
    if not isinstance(fmt, str) or not fmt.strip() or any(c.isspace() for c in fmt):
        raise ConfigError(
            f"{name} must be jsonl, parquet or a Spark data source name (orc, csv, text, "
            f"delta, ...), got {fmt!r}"
        )


def canonical_format(fmt: str) -> str:
    """The reader a format name means: "json" reads as "jsonl" (one JSON object a line)."""
    lowered = fmt.lower()
    return "jsonl" if lowered in ("json", "jsonl") else lowered


def check_bad_records(mode: str) -> None:
    if mode not in BAD_RECORDS:
        raise ConfigError(
            f"bad_records must be one of {', '.join(map(repr, BAD_RECORDS))}, got {mode!r}"
        )


def content_columns(df: DataFrame) -> list[str]:
    """The columns of `df` that are the user's content (reader and id columns left out)."""
    from sparkdedup.ids import ID_COL

    return [c for c in df.columns if c not in READER_COLS and c != ID_COL]


def input_fingerprint(
    spark: SparkSession, path: str, listing: fs.Listing | None = None, fmt: str | None = None
) -> dict[str, Any]:
    """The qualified path, count, total size and latest modification time of the files under
    `path`, and a digest of each file's name, size and modification time.

    Part of the stage-cache fingerprint, so that a changed input is never served from a cache,
    and another spelling of the same input (relative, through a link, a trailing slash) is.
    The files are listed, not read: a file rewritten in place with its size and modification
    time kept (``touch -r``, or a copy that keeps times over a file of the same size) looks
    unchanged; such an input needs a new ``--cache-path``, or the cache deleted. `listing`:
    the path's `fs.input_listing`, when it has been listed already. A Delta table (`fmt`)
    also has its transaction log's files listed: a commit that writes no data file (RESTORE, a
    DELETE of whole files) changes the rows read.
    """
    listing = listing if listing is not None else fs.input_listing(spark, path)
    files, bytes_total, latest, digest = listing.summary
    found = {
        "path": redact.uri(fs.qualified(spark, path)),
        "files": files,
        "bytes": bytes_total,
        "mtime": latest,
        "listing": digest,
    }
    if fmt is not None and canonical_format(fmt) == "delta":
        found["log"] = fs.file_summary(spark, f"{path.rstrip('/')}/_delta_log")[3]
    return found


#: The formats Spark reads as lines of text, through Hadoop's compression codecs.
_TEXT_FORMATS = ("jsonl", "csv", "text")
#: The largest block Hadoop's block codecs write (their buffer is 256 KiB by default); the
#: lz4 frame format's magic number read as such a length is 66 MiB.
_MAX_BLOCK = 64 * 1024**2


def check_codecs(spark: SparkSession, listing: fs.Listing, fmt: str) -> None:
    """InputError for a compressed file of a text input (JSONL, CSV, text) that Spark would
    misread (`fs.input_listing` names the first of each kind): one with a suffix no codec of
    Spark's reads (``.xz``, ``.zip``, ...: its bytes would be read as lines), or a ``.lz4`` or
    ``.snappy`` file not in Hadoop's block format, the only one Hadoop's Lz4Codec and
    SnappyCodec read (a file from the lz4 or snappy tools, in their frame format, stops the
    driver JVM for lack of memory; a plain file so named reads as no rows). A session with
    codecs of its own (``io.compression.codecs`` set) is trusted with them."""
    if canonical_format(fmt) not in _TEXT_FORMATS or _own_codecs(spark):
        return
    if listing.no_codec is not None:
        suffix = listing.no_codec.rsplit(".", 1)[-1]
        raise InputError(
            f"input file {listing.no_codec}: Spark has no codec for .{suffix} files, so it "
            "would read the compressed bytes as lines of text; decompress the files, or "
            "recompress them with gzip, bzip2 or zstd (.gz, .bz2, .zst)"
        )
    if listing.block_codec is not None and not _hadoop_block_file(spark, listing.block_codec):
        suffix = listing.block_codec.rsplit(".", 1)[-1]
        raise InputError(
            f"input file {listing.block_codec} is not in Hadoop's .{suffix} block format, the "
            f"only .{suffix} files Spark reads (files from the {suffix} command-line tool are "
            "in its frame format, which stops the JVM for lack of memory; a plain file so "
            "named reads as no rows); decompress the files, or recompress them with gzip, "
            "bzip2 or zstd (.gz, .bz2, .zst)"
        )


def _own_codecs(spark: SparkSession) -> bool:
    key = "io.compression.codecs"
    if is_connect(spark):
        return bool(spark.conf.get(f"spark.hadoop.{key}", None))
    return bool(spark.sparkContext._jsc.hadoopConfiguration().get(key))


def _hadoop_block_file(spark: SparkSession, path: str) -> bool:
    """Whether `path` starts as Hadoop's block codecs write: a block's length (at most
    `_MAX_BLOCK`) and its first compressed chunk's (within the file); or is an empty one."""
    entry = fs.status(spark, path)
    size = entry.size if entry is not None else 0
    head = fs.read_head(spark, path, 8)
    if size == 0 or (size == 4 and head == bytes(4)):  # no rows: what Spark writes for none
        return True
    if len(head) < 8:
        return False
    block, chunk = int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")
    return 0 < block <= _MAX_BLOCK and 0 < chunk <= size - 8


def read_input(
    spark: SparkSession,
    path: str,
    fmt: str,
    *,
    text_col: str | None = None,
    id_col: str | None = None,
    columns: Sequence[str] = (),
    options: dict[str, str] | None = None,
    defer_text_check: bool = False,
    empty_types: Mapping[str, T.DataType] | None = None,
) -> DataFrame:
    """Read a corpus: JSONL, Parquet, or any other Spark data source.

    Parameters
    ----------
    path : file, directory or glob, on any Hadoop file system.
    fmt : "jsonl" (or "json"), "parquet", or a Spark data source name (orc, csv, text,
        delta, ...: read by Spark with `options`, e.g. ``{"header": "true"}`` for CSV).
    text_col : the text column: a string; for Parquet, present in every file.
    id_col : the id column: present in every Parquet file; a record without one is bad.
    columns : further JSONL fields to parse (the priority or embedding column). With none of
        `text_col`, `id_col`, `columns`, every field of the leading records is parsed.
    options : reader options. JSONL takes those of Spark's reader of its lines
        (`JSONL_READ_OPTIONS`: which files, ``lineSep``; the records are parsed by sparkdedup)
        and refuses others, which it could not honour.
    defer_text_check : Parquet: leave the check that every file has `text_col` to the caller,
        who observes `all_null_files(text_col)` over a pass that reads every row and then calls
        `check_all_null_files` (the CLI does, on its final write). Checked here, the row groups
        holding a null text are read once more; with null texts spread over the corpus that is
        a read of its text column.
    empty_types : JSONL: the types of fields that no record can tell (an input without
        records), else strings (an embedding column: an array).

    Returns
    -------
    DataFrame
        Parquet: the merged columns of all files. JSONL: ``_dedup_record`` (the line) and the
        parsed fields. Both add ``_dedup_file`` and ``_dedup_bad`` (null, or why the row is a
        bad record); `content_columns` leaves those out.

    Raises
    ------
    InputError
        The path matches nothing or cannot be read in `fmt` (Parquet footers are read here).
    SchemaError
        Parquet files disagree on a column's type, or some lack `text_col` (unless
        `defer_text_check`) or `id_col` (naming the files); a JSONL `text_col` field that is not
        a string.
    """
    check_format(fmt)
    fmt = canonical_format(fmt)
    if not fs.path_exists(spark, path):
        raise InputError(f"input path {path!r} does not exist")
    if fmt in _FILE_INDEX_FORMATS:
        _refuse_unread_files(spark, path, options or {})
    if fmt == "parquet":
        checked = (None if defer_text_check else text_col, id_col)
        return _read_parquet(spark, path, [c for c in checked if c], id_col, options)
    if fmt == "jsonl":
        return _read_jsonl(
            spark, path, text_col, id_col, columns, options or {}, dict(empty_types or {})
        )
    return _read_source(spark, path, fmt, id_col, options or {})


#: The data sources that list files as Spark's file index does (a table format such as Delta
#: reads the files its log names, whatever sits beside them).
_FILE_INDEX_FORMATS = {"jsonl", "parquet", "orc", "csv", "text", "avro"}


def check_subdirectories(listing: fs.Listing, fmt: str, options: dict[str, str]) -> None:
    """InputError for data files in a subdirectory of an input directory without ``key=value``
    partition directories (`fs.input_listing`'s ``nested``: ``corpus/2024/a.jsonl`` of
    ``--input corpus``): Spark's file sources read only the files directly in such a
    directory, so theirs would be neither kept nor removed nor counted. Not with
    ``recursiveFileLookup``, which reads them."""
    lowered = {key.lower(): str(value).lower() for key, value in options.items()}
    if (
        listing.nested is None
        or canonical_format(fmt) not in _FILE_INDEX_FORMATS
        or lowered.get("recursivefilelookup") == "true"
    ):
        return
    raise InputError(
        f"input file {listing.nested} is in a subdirectory, which Spark does not read: it "
        "reads the files directly in an input directory, and subdirectories only when they "
        "are key=value partitions, so those files' rows would be left out without a word; "
        "read every file with --read-option recursiveFileLookup=true, or name the files "
        "with a glob (--input 'corpus/*/*.jsonl')"
    )


def _refuse_unread_files(spark: SparkSession, path: str, options: dict[str, str]) -> None:
    """InputError for input files Spark's readers would skip without a word (`fs.unread_files`):
    their rows would be neither kept nor removed nor counted. A ``pathGlobFilter`` chooses the
    files itself: the files beside partitions are then not looked at."""
    lowered = {key.lower(): str(value).lower() for key, value in options.items()}
    recursive = lowered.get("recursivefilelookup") == "true" or "pathglobfilter" in lowered
    hidden, beside = fs.unread_files(spark, path, recursive)
    if hidden is not None:
        raise InputError(
            f"input path {path!r} names {hidden}, which Spark does not read: a name starting "
            "with '_' or '.' is a hidden file to it (as _SUCCESS or .crc files are), so its "
            "rows would be left out without a word; rename the file"
        )
    if beside is not None:
        raise InputError(
            f"input path {path!r} holds files beside key=value partition directories (such "
            f"as {beside}): Spark reads the partitions only, so those files' rows would be "
            "left out without a word; move them into a partition directory, or read every "
            "file (without partition columns) with --read-option recursiveFileLookup=true"
        )


def _read_source(
    spark: SparkSession, path: str, fmt: str, id_col: str | None, options: dict[str, str]
) -> DataFrame:
    """Any other Spark data source: read as Spark reads it (with `options`), each row with
    its file and, as for Parquet, a missing id as the reason it is a bad record. A ``mode``
    of DROPMALFORMED is refused (ConfigError): Spark drops such rows without a count, and
    which ones depends on the columns a pass reads. ORC files are read with their schemas
    merged, as Parquet (Spark alone takes one file's columns: the others' would be lost); CSV
    files with a header have it checked against the columns (Spark alone takes the first
    file's for all, and would read another file's values under the wrong columns)."""
    given = {key.lower(): str(value) for key, value in options.items()}  # Spark ignores case
    mode = given.get("mode", "")
    if mode.upper() == "DROPMALFORMED":
        raise ConfigError(
            f"--read-option mode={mode.upper()}: Spark drops the rows it cannot parse without "
            "counting them (and which ones depends on the columns a pass reads), so they would "
            "be neither kept nor removed nor counted; leave mode at PERMISSIVE (the default: "
            "such rows are read with nulls) or use FAILFAST to stop at the first"
        )
    defaults = {"orc": {"mergeSchema": "true"}, "csv": {"enforceSchema": "false"}}.get(fmt, {})
    chosen = {k: v for k, v in defaults.items() if k.lower() not in given} | options
    try:
        df = spark.read.format(fmt).options(**chosen).load(path)
        df.schema  # noqa: B018 - resolves the source: a wrong name or option fails here
    except SPARK_ERRORS as err:
        if spark_condition(err) == "DATA_SOURCE_NOT_FOUND":
            raise InputError(
                f"--input-format {fmt!r}: Spark has no data source of that name (jsonl, "
                "parquet, orc, csv, text, avro, or a source whose jar is on the classpath)"
            ) from err
        file = failed_file(err) or _failing_file(spark, path, fmt, chosen, err)
        reason = first_line(err)
        where = f" ({_display(file)})" if file and _display(file) not in reason else ""
        raise InputError(f"input path {path!r} cannot be read as {fmt}{where}: {reason}") from err
    try:
        df = df.withColumn(FILE_COL, F.col("_metadata.file_path"))
    except SPARK_ERRORS:  # a source without file metadata
        df = df.withColumn(FILE_COL, F.lit(path))
    bad = F.lit(None).cast("string")
    if id_col is not None and id_col in df.columns:
        bad = F.when(named(id_col).isNull(), F.lit(f"id column {id_col!r} is null"))
    return df.withColumn(BAD_COL, bad)


def path_glob_filter(options: Mapping[str, str]) -> str | None:
    """The reader's ``pathGlobFilter`` among `options` (Spark takes option names in any case,
    the last spelling given), or None."""
    return {key.lower(): str(value) for key, value in options.items()}.get("pathglobfilter")


#: The most input files searched for the one a reader's schema pass fails on.
_SEARCHED_FILES = 10_000


def _failing_file(
    spark: SparkSession, path: str, fmt: str, options: dict[str, str], err: BaseException
) -> str | None:
    """The input file that a failed load of `path` (`err`) fails on, when the failure does
    not name it (an ORC schema merge over a file that is not ORC says "Illegal type id 0"):
    found by halving the first `_SEARCHED_FILES` files Spark reads (those a pathGlobFilter
    among `options` matches), loading one half at a time (about as many files read again as
    there are, in 16 loads at most; only after a failure). A half fails when its load fails
    as `err` did (the same error condition: a half of empty files fails otherwise). None for
    a single file (the path names it), when no file loads (the options or the source are at
    fault, not a file), or when the files that fail together do not fail alone."""
    condition = spark_condition(err)
    try:
        files = fs.data_files(spark, path, _SEARCHED_FILES, path_glob_filter(options))
    except Exception:  # noqa: BLE001 - the failure is reported without a file then
        return None

    def fails(subset: list[str]) -> bool:
        try:
            # Resolving the source reads the files' schemas.
            _ = (
                spark.read.format(fmt)
                .options(**options)
                .load([fs.literal(spark, f) for f in subset])
                .schema
            )
        except SPARK_ERRORS as again:
            return spark_condition(again) == condition
        return False

    if len(files) < 2:
        return None  # the path names the file, or nothing was listed
    # Some files that load show the files, not the options or the source, to be at fault.
    loaded, first_other = False, None
    while len(files) > 1:
        half, rest = files[: len(files) // 2], files[len(files) // 2 :]
        if fails(half):
            files = half
            first_other = rest if first_other is None else first_other
        else:
            loaded, files = True, rest
    if not fails(files):
        return None
    if not loaded and not any(not fails([f]) for f in (first_other or [])[:3]):
        return None
    return files[0]


def spark_condition(err: BaseException) -> str | None:
    """The error class (condition) of a Spark failure, looked up through its JVM causes."""
    get = getattr(err, "getCondition", None) or getattr(err, "getErrorClass", None)
    if get is not None:
        try:
            condition = get()
        except Exception:  # noqa: BLE001 - not every PySparkException carries one
            condition = None
        if condition:
            return str(condition)
    throwable = getattr(err, "java_exception", None)
    while throwable is not None:
        for name in ("getCondition", "getErrorClass"):
            try:
                condition = getattr(throwable, name)()
            except Exception:  # noqa: BLE001 - not a SparkThrowable
                condition = None
            if condition:
                return str(condition)
        throwable = throwable.getCause()
    return None


def failed_file(err: BaseException) -> str | None:
    """The file a failure to read one (Spark 4's FAILED_READ_FILE, such as a corrupt Parquet
    footer) names in its ``path`` parameter, looked up through its JVM causes; the innermost
    cause's message does not name it. None for other failures."""
    if not (spark_condition(err) or "").startswith("FAILED_READ_FILE"):
        return None
    causes: list[Any] = [err]
    throwable = getattr(err, "java_exception", None)
    while throwable is not None:
        causes.append(throwable)
        throwable = throwable.getCause()
    for cause in causes:
        try:
            path = cause.getMessageParameters().get("path")
        except Exception:  # noqa: BLE001 - not a SparkThrowable
            path = None
        if path:
            return str(path)
    return None


def first_line(err: Exception) -> str:
    """The first line of the innermost JVM cause (it names the file or the bad record), or,
    for a Python worker's error, its exception's line."""
    throwable = getattr(err, "java_exception", None)
    text = str(err)
    if throwable is not None:
        while throwable.getCause() is not None:
            throwable = throwable.getCause()
        text = throwable.getMessage() or throwable.toString()
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = _python_error(str(text)) or (lines[0] if lines else type(err).__name__)
    return first if len(first) <= 300 else first[:297] + "..."


_TRACEBACK = "Traceback (most recent call last):"


def _python_error(text: str) -> str | None:
    """The exception line of the last Python traceback in `text` (a Python worker's error:
    its first line only says there was one), or None when there is none."""
    if _TRACEBACK not in text:
        return None
    found = None
    for line in text[text.rindex(_TRACEBACK) + len(_TRACEBACK) :].splitlines():
        if line.startswith(("\tat ", "at ")):  # the JVM's frames after the Python traceback
            break
        if line.strip() and not line[0].isspace():
            found = line.strip()
    return found


# ------------------------------------------------------------------------------------ Parquet
def _read_parquet(
    spark: SparkSession,
    path: str,
    required: list[str],
    id_col: str | None,
    options: dict[str, str] | None = None,
) -> DataFrame:
    try:
        df = spark.read.option("mergeSchema", "true").options(**(options or {})).parquet(path)
    except SPARK_ERRORS as err:
        if spark_condition(err) in ("CANNOT_MERGE_SCHEMAS", "CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE"):
            raise SchemaError(_type_conflict(spark, path, err)) from err
        file, reason = failed_file(err), first_line(err)
        where = f" ({_display(file)})" if file and _display(file) not in reason else ""
        raise InputError(f"input path {path!r} cannot be read as parquet{where}: {reason}") from err
    if not df.columns:
        raise InputError(f"input path {path!r} holds no Parquet columns (no data files?)")
    df = df.withColumn(FILE_COL, F.col("_metadata.file_path"))
    check_in_every_file(spark, df, [c for c in required if c in df.columns])
    bad = F.lit(None).cast("string")
    if id_col is not None and id_col in df.columns:
        bad = F.when(named(id_col).isNull(), F.lit(f"id column {id_col!r} is null"))
    return df.withColumn(BAD_COL, bad)


def _display(uri: str) -> str:
    """A data file's URI from ``_metadata.file_path`` as a readable path."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else unquote(uri)


def _files_message(files: list[str], total: int | None = None) -> str:
    shown = ", ".join(_display(f) for f in files[:_SHOWN_FILES])
    more = (total if total is not None else len(files)) - min(len(files), _SHOWN_FILES)
    return shown + (f" and {more} more" if more > 0 else "")


def check_in_every_file(spark: SparkSession, df: DataFrame, columns: list[str]) -> None:
    """SchemaError when some Parquet files lack one of `columns` (schema merging would fill it
    with nulls).

    A file lacking a column has a null in every row. One job finds the files holding nulls in
    those columns, answered from the row groups' statistics (no data read when there are no
    nulls); only when there are some, a second job counts those files' rows, and the footers
    of the files all null in a column are read on the driver. The row groups that hold a null
    are read (those columns): statistics cannot tell a row group of some nulls from one of
    nulls only, and Spark does not show which file lacks which column. For the id column that
    is a narrow read; the text column is better checked on a pass made anyway
    (`all_null_files`).
    """
    if not columns:
        return
    nulls = (
        df.where(reduce(lambda a, b: a | b, [named(c).isNull() for c in columns]))
        .groupBy(FILE_COL)
        .agg(
            *[
                F.count(F.when(named(c).isNull(), 1)).alias(f"_nulls_{i}")
                for i, c in enumerate(columns)
            ]
        )
        .orderBy(FILE_COL)
        .limit(1000)
        .collect()
    )
    if not nulls:
        return
    files = [r[FILE_COL] for r in nulls]
    totals = {
        r[FILE_COL]: r["rows"]
        for r in df.where(F.col(FILE_COL).isin(files))
        .groupBy(FILE_COL)
        .agg(F.count(F.lit(1)).alias("rows"))
        .collect()
    }
    for i, column in enumerate(columns):
        all_null = [r[FILE_COL] for r in nulls if r[f"_nulls_{i}"] == totals.get(r[FILE_COL])]
        _refuse_missing(spark, all_null, column)


def all_null_files(column: str) -> Column:
    """An aggregate to observe over a pass that reads every row of a Parquet input (from
    `read_input`, with ``_dedup_file``): the files in which `column` is null in every row,
    space-separated hashes (usually none). Only those can lack the column. No job of its own:
    it rides on the pass, holding 16 bytes a file while it runs, whatever the rows."""
    file = F.xxhash64(F.col(FILE_COL))
    value = named(column)
    only_null = F.array_except(
        F.collect_set(F.when(value.isNull(), file)),
        F.collect_set(F.when(value.isNotNull(), file)),
    )
    return F.array_join(only_null.cast("array<string>"), " ")


def check_all_null_files(spark: SparkSession, df: DataFrame, column: str, observed: str) -> None:
    """SchemaError naming the Parquet files of `df` (from `read_input`) that lack `column`,
    from the value `all_null_files(column)` observed over every row of `df`. When some file
    is all null there, one job finds its name (reading the file column only, no data), and the
    footers of those files are read on the driver."""
    hashes = sorted({int(h) for h in (observed or "").split()})
    if not hashes:
        return
    rows = df.where(F.xxhash64(F.col(FILE_COL)).isin(hashes)).select(FILE_COL).distinct()
    _refuse_missing(spark, sorted(r[FILE_COL] for r in rows.collect()), column)


def _refuse_missing(spark: SparkSession, files: list[str], column: str) -> None:
    """SchemaError naming those of `files` (each null in `column` in every row) whose footer
    lacks `column`: read in turn on the driver, until 20 such files are found."""
    missing: list[str] = []
    for file in files:
        if column not in fs.parquet_columns(spark, file):
            missing.append(file)
            if len(missing) == 20:
                break
    if missing:
        raise SchemaError(
            f"column {column!r} is missing from some input files: "
            f"{_files_message(missing)}; their rows would be read with a null there. Add the "
            "column to those files or leave them out of --input"
        )


#: Parquet footers `_type_conflict` reads on the driver, at most (a million files' footers
#: read in turn would take hours before the error).
_CONFLICT_FOOTERS = 1000


def _type_conflict(spark: SparkSession, path: str, err: BaseException | None = None) -> str:
    """Which column the Parquet files disagree on, and which files hold which type (read from
    the footers on the driver, of the first `_CONFLICT_FOOTERS` data files: this runs only
    when schema merging has already failed)."""
    types: dict[str, dict[str, list[str]]] = {}
    files = fs.data_files(spark, path, _CONFLICT_FOOTERS)
    for file in files:
        for column, kind in fs.parquet_columns(spark, file).items():
            types.setdefault(column, {}).setdefault(kind, []).append(file)
    for column, kinds in types.items():
        if len(kinds) > 1:
            parts = "; ".join(
                f"{kind} in {_files_message(found)}" for kind, found in sorted(kinds.items())
            )
            return (
                f"input files disagree on the type of column {column!r}: {parts}. "
                "Rewrite them with one type, or read them separately"
            )
    read = (
        f" (the first {len(files):,} data files agree)" if len(files) == _CONFLICT_FOOTERS else ""
    )
    spark_says = f": {first_line(err)}" if err is not None else ""
    return f"the Parquet files under {path!r} have schemas that cannot be merged{read}{spark_says}"


# -------------------------------------------------------------------------------------- JSONL
def _utf8_valid(col: Column) -> Column:
    if hasattr(F, "is_valid_utf8"):
        return F.is_valid_utf8(col)
    # Spark 3.5: decoding to a Java string replaces invalid bytes, so the round trip differs.
    return col.cast("binary") == F.encode(col, "UTF-8")


def _json_field_types(
    spark: SparkSession,
    raw: DataFrame,
    text_col: str | None,
    id_col: str | None,
    names: list[str],
    empty_types: dict[str, T.DataType],
) -> T.StructType:
    """Types of the fields to parse: text as string, the id as bigint when the leading records
    hold integers of 64 bits (an error when they hold other numbers; else string, which reads
    a longer integer, such as an unsigned 64-bit hash, as its text), the rest as the leading
    records hold them (else `empty_types`' when there are none, else string)."""
    sample = raw.select(_json_text(F.col(RECORD_COL)).alias("value")).limit(JSON_SAMPLE_RECORDS)
    reader = spark.read.options(**_JSON_OPTIONS)
    try:
        try:
            inferred = reader.json(sample).schema
        except PySparkTypeError:  # Spark 3.5 reads JSON from an RDD of strings only
            inferred = reader.json(sample.rdd.map(lambda row: row[0])).schema
    except SPARK_ERRORS:
        inferred = T.StructType([])
    seen = {f.name: f.dataType for f in inferred.fields if f.name != "_corrupt_record"}
    if not names:
        names = sorted(seen)
    absent = [name for name in names if name not in seen]
    for name in absent if seen else []:
        if name not in (text_col, id_col):  # a sort column, maybe with a mistyped direction
            check_sort_direction(name, seen)
    if seen and absent:
        role = "text" if absent[0] == text_col else "id" if absent[0] == id_col else "a"
        raise SchemaError(
            f"{role} field {absent[0]!r} is in none of the first {JSON_SAMPLE_RECORDS} JSONL "
            f"records; fields there: {', '.join(sorted(seen))}"
        )
    fields = []
    for name in names:
        # Absent only when no record was read (a field missing from records is refused above).
        dtype = seen.get(name) or empty_types.get(name, T.StringType())
        if name == text_col:
            dtype = T.StringType()
        elif name == id_col:
            # Spark infers integers beyond 64 bits as decimal(n,0), beyond 38 digits as double
            # (a 128-bit hash), and other numbers as double: the sample's texts tell them apart.
            if (isinstance(dtype, T.DoubleType) and not _integer_texts(sample, id_col)) or (
                isinstance(dtype, T.DecimalType) and dtype.scale > 0
            ):
                raise SchemaError(
                    f"id field {id_col!r} holds numbers that are not integers in the first "
                    f"{JSON_SAMPLE_RECORDS:,} JSONL records; ids must be integers or strings"
                )
            dtype = T.LongType() if isinstance(dtype, T.LongType) else T.StringType()
        fields.append(T.StructField(name, dtype, True))
    return T.StructType(fields)


def _integer_texts(sample: DataFrame, id_col: str) -> bool:
    """Whether every id of the JSONL `sample` (``value``: the records' texts), read as text,
    is an integer: one job over the sample, for ids Spark infers as double."""
    schema = T.StructType([T.StructField(id_col, T.StringType(), True)])
    ids = sample.select(F.from_json("value", schema).getField(id_col).alias("id"))
    return ids.where(F.col("id").isNotNull() & ~F.col("id").rlike(r"^-?[0-9]+$")).isEmpty()


#: The reader options JSONL input takes: Spark's, for the files it reads and how its lines end.
JSONL_READ_OPTIONS = (
    "recursiveFileLookup",
    "pathGlobFilter",
    "modifiedBefore",
    "modifiedAfter",
    "ignoreCorruptFiles",
    "ignoreMissingFiles",
    "lineSep",
)


def _read_jsonl(
    spark: SparkSession,
    path: str,
    text_col: str | None,
    id_col: str | None,
    columns: Sequence[str],
    options: dict[str, str],
    empty_types: dict[str, T.DataType],
) -> DataFrame:
    known = {name.lower() for name in JSONL_READ_OPTIONS}
    other = sorted(key for key in options if key.lower() not in known)
    if other:
        raise ConfigError(
            f"reader option(s) {', '.join(map(repr, other))} do not apply to JSONL input, whose "
            f"records sparkdedup parses itself; it takes {', '.join(JSONL_READ_OPTIONS)}"
        )
    try:
        raw = (
            spark.read.options(**options)
            .text(path)
            .select(F.col("value").alias(RECORD_COL), F.col("_metadata.file_path").alias(FILE_COL))
        )
    except SPARK_ERRORS as err:
        raise InputError(f"input path {path!r} cannot be read as jsonl: {first_line(err)}") from err
    names = list(dict.fromkeys(c for c in (text_col, id_col, *columns) if c))
    schema = _json_field_types(spark, raw, text_col, id_col, names, empty_types)
    json = _json_text(F.col(RECORD_COL))
    parsed = raw.select(
        RECORD_COL, FILE_COL, _parse_json(json, schema).alias("_dedup_parsed")
    ).where(F.col("_dedup_parsed").isNotNull())  # a blank line parses to null: not a record
    fields = [F.col("_dedup_parsed").getField(f.name).alias(f.name) for f in schema.fields]
    return parsed.select(
        RECORD_COL,
        *fields,
        FILE_COL,
        _json_bad(json, F.col("_dedup_parsed"), schema, id_col, text_col).alias(BAD_COL),
    )


def _json_text(record: Column) -> Column:
    """The JSON of a line: without a byte-order mark at its start, which the line reader drops
    at a file's start only (files joined with ``cat`` have one on a later line)."""
    return F.when(record.startswith(_BOM), F.substring(record, 2, 2**31 - 1)).otherwise(record)


def _parse_json(record: Column, schema: T.StructType) -> Column:
    with_corrupt = T.StructType([*schema.fields, T.StructField(_CORRUPT, T.StringType(), True)])
    options = dict(_JSON_OPTIONS, mode="PERMISSIVE", columnNameOfCorruptRecord=_CORRUPT)
    return F.from_json(record, with_corrupt, options)


def _json_bad(
    record: Column,
    parsed: Column,
    schema: T.StructType,
    id_col: str | None,
    text_col: str | None = None,
) -> Column:
    bad = (
        F.when(parsed[_CORRUPT].isNotNull(), _unparsed_reason(record, schema))
        .when(~_utf8_valid(record), F.lit("invalid UTF-8"))
        .when(
            ~_one_json_value(record),
            F.lit(
                "text after the JSON object (two records joined by a missing line end, a "
                "trailing comma or comment): only the first object would be read"
            ),
        )
    )
    if id_col is not None:
        bad = bad.when(parsed[id_col].isNull(), F.lit(f"field {id_col!r} is missing or null"))
        if isinstance(schema[id_col].dataType, T.StringType):
            bad = bad.when(
                _not_a_json_string(record, parsed[id_col], id_col, integers=True),
                F.lit(
                    f"field {id_col!r} is a JSON boolean, object or array or a number that is "
                    "not an integer; ids are integers or strings"
                ),
            ).when(
                _lone_surrogate_in(record, parsed[id_col], id_col),
                F.lit(
                    f"field {id_col!r} holds an unpaired UTF-16 surrogate escape (such as "
                    "\\ud800), which no UTF-8 text can hold"
                ),
            )
    if text_col is not None:
        text = parsed[text_col]
        bad = bad.when(
            _not_a_json_string(record, text, text_col),
            F.lit(f"field {text_col!r} is a JSON number, boolean, object or array, not a string"),
        ).when(
            # Such an escape reads as "?": texts differing there would be equal.
            _lone_surrogate_in(record, text, text_col),
            F.lit(
                f"field {text_col!r} holds an unpaired UTF-16 surrogate escape (such as "
                "\\ud800), which no UTF-8 text can hold"
            ),
        )
    return bad


def _one_json_value(record: Column) -> Column:
    """Whether `record` is one JSON value and nothing else but whitespace. Spark's JSON parser
    reads the first value and ignores what follows; inside ``[...]`` a second value or trailing
    text fails the parse unless it closes the bracket itself with ``]``, which inside
    ``{"k": ...}`` fails it: the two parses (with empty schemas, which skip the values) pass
    together only when nothing follows the value. The second is needed only for a line that
    holds a ``]``. (A regular expression to skip the parses for a line whose one ``}`` ends it
    was slower than them where a field before the text holds an object.)"""
    in_array = F.from_json(
        F.concat(F.lit("["), record, F.lit("]")), T.ArrayType(T.StructType([])), _JSON_OPTIONS
    )
    corrupt = T.StructType([T.StructField(_CORRUPT, T.StringType(), True)])
    in_object = F.from_json(
        F.concat(F.lit('{"k":'), record, F.lit("}")),
        corrupt,
        dict(_JSON_OPTIONS, mode="PERMISSIVE", columnNameOfCorruptRecord=_CORRUPT),
    )
    one = F.coalesce(F.size(in_array) == 1, F.lit(False))  # null when the parse failed
    return (
        F.when(~one, F.lit(False))
        .when(record.contains("]"), in_object[_CORRUPT].isNull())
        .otherwise(F.lit(True))
    )


_HIGH = r"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_MARK = "\uffff"


def _lone_surrogate_in(record: Column, value: Column, name: str) -> Column:
    """Whether field `name` (whose parsed value is `value`) holds an unpaired surrogate
    escape, ``\\uD800``-``\\uDFFF`` not half of a high-low pair, which the parse writes as
    "?". Looked at only when `value` holds a "?" and the line an escape: the line is parsed
    again with each unpaired escape made U+FFFF (escaped backslashes, ``\\\\``, set aside
    first), which the field then holds. Such escapes in other fields are left alone: they are
    written back as read."""
    unescaped = F.regexp_replace(record, r"\\\\", "_")
    marked = F.regexp_replace(unescaped, f"{_HIGH}(?!{_LOW})|(?<!{_HIGH}){_LOW}", r"\\uFFFF")
    schema = T.StructType([T.StructField(name, T.StringType(), True)])
    again = F.from_json(marked, schema, dict(_JSON_OPTIONS, mode="PERMISSIVE"))[name]
    return (
        value.contains("?")
        & record.contains("\\u")
        & ~value.contains(_MARK)
        & F.coalesce(again.contains(_MARK), F.lit(False))
    )


def _unparsed_reason(record: Column, schema: T.StructType) -> Column:
    """Why `record` did not parse as `schema`: not a JSON object, or the first field whose
    value is of another type (each parsed alone; evaluated for such records only)."""
    options = dict(_JSON_OPTIONS, mode="PERMISSIVE", columnNameOfCorruptRecord=_CORRUPT)
    corrupt = T.StructField(_CORRUPT, T.StringType(), True)

    def fails(fields: list[T.StructField]) -> Column:
        return F.from_json(record, T.StructType([*fields, corrupt]), options)[_CORRUPT].isNotNull()

    reason = F.when(fails([]), F.lit("not a JSON object"))
    for field in schema.fields:
        reason = reason.when(
            fails([field]),
            F.lit(
                f"field {field.name!r} is not of the type its values have in the first "
                f"{JSON_SAMPLE_RECORDS:,} records ({field.dataType.simpleString()})"
            ),
        )
    return reason.otherwise(F.lit("not a JSON object of the fields' types"))


def _not_a_json_string(record: Column, text: Column, name: str, integers: bool = False) -> Column:
    """Whether the JSON value of field `name` is a number (with `integers`, one that is not an
    integer), boolean, object or array, which the parse as a string turned into its JSON text
    (`text`). Only a text that such a value can give (starting with ``{``, ``[``, a digit or
    ``-``, ``true``/``false``, or a non-standard NaN or Infinity, which Spark writes quoted) is
    parsed again, as that kind of value: a JSON string never parses as one. The number parse
    is strict, as the default one reads the strings "NaN" and "-Infinity" as numbers; only
    the default one reads the bare NaN and Infinity."""
    strict = dict(_JSON_OPTIONS, mode="PERMISSIVE", allowNonNumericNumbers="false")

    def parses_as(dtype: T.DataType, options: dict[str, str] = strict) -> Column:
        schema = T.StructType([T.StructField(name, dtype, True)])
        return F.from_json(record, schema, options)[name].isNotNull()

    first = F.substring(text, 1, 1)
    number = parses_as(T.DoubleType())
    if integers:  # of any size: read as their text
        number = number & ~text.rlike(r"^-?[0-9]+$")
    return (
        F.when(
            first == "{",
            parses_as(T.StructType([T.StructField("_dedup_any", T.StringType(), True)])),
        )
        .when(first == "[", parses_as(T.ArrayType(T.StringType())))
        .when(text.isin("true", "false"), parses_as(T.BooleanType()))
        .when(first.isin("-", *"0123456789"), number)
        .when(
            text.isin(*[f'"{word}"' for word in _NON_NUMERIC]),
            parses_as(T.DoubleType(), dict(_JSON_OPTIONS, mode="PERMISSIVE")),
        )
        .otherwise(F.lit(False))
    )


# ---------------------------------------------------------------------------- bad records
@dataclasses.dataclass(frozen=True)
class BadRecord:
    """Where a bad record is: its file, its 1-based line (JSONL) or row (Parquet), and why."""

    file: str
    position: str
    reason: str

    def __str__(self) -> str:
        return f"{_display(self.file)}, {self.position}: {self.reason}"


def good_records(df: DataFrame, mode: str = "fail") -> DataFrame:
    """The rows of `df` (from `read_input`) that are not bad records.

    With ``mode="fail"`` (``--bad-records fail``, the default) a job that reads a bad record
    fails there, and `first_bad_record` says where it is; with "skip" or "quarantine" they are
    left out (the CLI counts them, and writes them with `write_quarantine`).
    """
    check_bad_records(mode)
    if BAD_COL not in df.columns:
        return df
    if mode == "fail":
        message = F.concat(F.lit(BAD_RECORD_PREFIX), F.col(FILE_COL), F.lit(": "), F.col(BAD_COL))
        failing = F.when(F.col(BAD_COL).isNotNull(), F.raise_error(message)).cast("string")
        df = df.withColumn(BAD_COL, failing)
    return df.where(F.col(BAD_COL).isNull())


def write_quarantine(df: DataFrame, path: str, fmt: str) -> None:
    """Write the bad records of `df` (from `read_input`) at `path`, with their file and reason.

    JSONL: one JSON object a line, ``{"file", "reason", "record", "record_base64"}`` with the
    line as read; a line of invalid UTF-8, which JSON text cannot hold, has its bytes in
    ``record_base64`` too (null for the others). Parquet: the rows' columns plus
    ``_sparkdedup_file`` and ``_sparkdedup_reason``.
    """
    bad = df.where(F.col(BAD_COL).isNotNull())
    file, reason = F.col(FILE_COL).alias("file"), F.col(BAD_COL).alias("reason")
    if canonical_format(fmt) == "jsonl":
        line = F.col(RECORD_COL)
        exact = F.when(~_utf8_valid(line), F.base64(line.cast("binary"))).alias("record_base64")
        bad.select(file, reason, line.alias("record"), exact).write.option(
            "ignoreNullFields", "false"
        ).json(path)
        return
    content = [named(c) for c in content_columns(df)]
    bad.select(
        *content, file.alias("_sparkdedup_file"), reason.alias("_sparkdedup_reason")
    ).write.parquet(path)


def first_bad_record(
    spark: SparkSession,
    df: DataFrame,
    fmt: str,
    *,
    id_col: str | None = None,
    text_col: str | None = None,
    options: Mapping[str, str] | None = None,
) -> BadRecord | None:
    """A bad record of `df` (from `read_input`, with the same `id_col`, `text_col` and reader
    `options`), with its file and its line (JSONL: lines as ``lineSep`` ends them) or row
    (Parquet) number.

    Runs a job that stops at the first partition holding one (a full read when there is none),
    then one job over that file alone to number its lines or rows.
    """
    if BAD_COL not in df.columns:
        return None
    found = df.where(F.col(BAD_COL).isNotNull()).select(FILE_COL, BAD_COL).limit(1).collect()
    if not found:
        return None
    file, reason = found[0][FILE_COL], found[0][BAD_COL]
    fmt = canonical_format(fmt)
    if fmt == "parquet":
        position = _first_bad_row(spark, file, id_col)
    elif fmt == "jsonl":
        line_sep = {key.lower(): value for key, value in (options or {}).items()}.get("linesep")
        position = _first_bad_line(spark, df, file, id_col, text_col, line_sep)
    else:
        position = "a row"
    return BadRecord(file, position, reason)


def _literal_path(uri: str) -> str:
    """A data file's URI from ``_metadata.file_path`` (percent-encoded) as a path Spark's
    readers take literally: decoded, with the glob characters escaped."""
    parsed = urlparse(uri)
    path = fs.escape_glob(unquote(parsed.path))
    if not parsed.scheme:
        return path
    return (
        f"{parsed.scheme}://{parsed.netloc}{path}" if parsed.netloc else f"{parsed.scheme}:{path}"
    )


def _first_bad_row(spark: SparkSession, file: str, id_col: str | None) -> str:
    if id_col is None:
        return "a row"
    rows = spark.read.parquet(_literal_path(file)).where(named(id_col).isNull())
    first = rows.agg(F.min(F.col("_metadata.row_index"))).first()[0]
    return "a row" if first is None else f"row {int(first) + 1}"


def _first_bad_line(
    spark: SparkSession,
    df: DataFrame,
    file: str,
    id_col: str | None,
    text_col: str | None,
    line_sep: str | None = None,
) -> str:
    """1-based line number of the first bad record of one JSONL file.

    The file is parsed again as `read_input` parsed it (the same field types), blank lines
    kept so that they are counted. Its splits are read in file order, so a line's number is
    the lines of the splits before it plus its place in its own split.
    """
    fields = T.StructType([f for f in df.schema.fields if f.name not in (RECORD_COL, *READER_COLS)])
    json = _json_text(F.col("value"))
    parsed = _parse_json(json, fields)
    reader = spark.read if line_sep is None else spark.read.option("lineSep", line_sep)
    lines = reader.text(_literal_path(file)).select(
        F.spark_partition_id().alias("p"),
        F.monotonically_increasing_id().alias("m"),
        (parsed.isNotNull() & _json_bad(json, parsed, fields, id_col, text_col).isNotNull()).alias(
            "bad"
        ),
    )
    counts = dict(
        (r["p"], r["n"]) for r in lines.groupBy("p").agg(F.count(F.lit(1)).alias("n")).collect()
    )
    first = lines.where("bad").agg(F.min("m")).first()[0]
    if first is None:
        return "a line"
    partition, row = int(first) >> 33, int(first) & ((1 << 33) - 1)
    return f"line {sum(n for p, n in counts.items() if p < partition) + row + 1}"


# ------------------------------------------------------------------------------------ writers
def write_output(df: DataFrame, path: str, fmt: str, options: dict[str, str] | None = None) -> None:
    """Write `df`'s content columns at `path` (replacing it) in `fmt`: JSONL, Parquet or any
    Spark data source, with the writer `options`.

    Rows read from JSONL are written back as their original lines, byte for byte but for their
    line ends (``\n``; with the
    text writer's `options`: ``compression``, ``lineSep``). CSV keeps each value's leading and
    trailing whitespace (Spark's writer trims it by default), unless `options` say otherwise.
    """
    check_format(fmt, "output format")
    fmt = canonical_format(fmt)
    if fmt == "jsonl" and RECORD_COL in df.columns:
        df.select(RECORD_COL).write.mode("overwrite").options(**(options or {})).text(path)
        return
    content = df.select(*[named(c) for c in content_columns(df) if c != RECORD_COL])
    options = dict(options or {})
    if fmt == "csv":
        # Spark's CSV writer trims every value's leading and trailing whitespace unless told
        # not to: the kept rows' texts would not be those read. The user's setting wins.
        given = {key.lower() for key in options}
        for key in ("ignoreLeadingWhiteSpace", "ignoreTrailingWhiteSpace"):
            if key.lower() not in given:
                options[key] = "false"
    writer = content.write.mode("overwrite").options(**options)
    if fmt == "jsonl":
        writer.option("ignoreNullFields", "false").json(path)
    else:
        writer.format(fmt).save(path)
