"""Readers and writers for corpora: JSONL and Parquet, local paths or any Hadoop file system URI.

Used by the CLI and the stage cache; the DataFrame API itself does no I/O.
"""

from __future__ import annotations

from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession

from sparkdedup.errors import ConfigError, InputError

FORMATS = ("jsonl", "parquet")


def check_format(fmt: str, name: str = "input_format") -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, FORMATS))}, got {fmt!r}")


def hadoop_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, hpath


def path_exists(spark: SparkSession, path: str) -> bool:
    """True when `path` (a file, a directory or a glob) matches something."""
    fs, hpath = hadoop_path(spark, path)
    matches = fs.globStatus(hpath)
    return matches is not None and len(matches) > 0


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write a small UTF-8 text file (replacing it) on any Hadoop file system."""
    fs, hpath = hadoop_path(spark, path)
    out = fs.create(hpath, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()


def read_text(spark: SparkSession, path: str) -> str | None:
    """The content of a small UTF-8 text file on any Hadoop file system; None if it is absent."""
    fs, hpath = hadoop_path(spark, path)
    if not fs.exists(hpath):
        return None
    jvm = spark.sparkContext._jvm
    stream = fs.open(hpath)
    try:
        return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def input_fingerprint(spark: SparkSession, path: str) -> dict[str, Any]:
    """Count, total size and latest modification time of the files under `path`.

    Part of the stage-cache fingerprint, so that a changed input is never served from a cache.
    """
    fs, hpath = hadoop_path(spark, path)
    files = bytes_total = latest = 0
    for status in fs.globStatus(hpath) or []:
        it = fs.listFiles(status.getPath(), True)
        while it.hasNext():
            f = it.next()
            name = f.getPath().getName()
            if name.startswith((".", "_")):
                continue
            files += 1
            bytes_total += f.getLen()
            latest = max(latest, f.getModificationTime())
    return {"path": path, "files": files, "bytes": bytes_total, "mtime": latest}


def read_input(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """Read a JSONL or Parquet corpus.

    Raises InputError when the path matches nothing or cannot be read in `fmt` (a malformed
    JSON line, a file that is not Parquet): both readers look at the data here, JSON to infer
    the schema (FAILFAST: a malformed line fails rather than becoming a null row) and Parquet
    to read the footers, so a wrong input fails before any workflow stage.
    """
    check_format(fmt)
    if not path_exists(spark, path):
        raise InputError(f"input path {path!r} does not exist")
    try:
        if fmt == "parquet":
            return spark.read.parquet(path)
        return spark.read.json(path, mode="FAILFAST")
    except (PySparkException, Py4JJavaError) as err:
        raise InputError(
            f"input path {path!r} cannot be read as {fmt}: {_first_line(err)}"
        ) from err


def _first_line(err: Exception) -> str:
    """The first line of the innermost JVM cause (it names the file or the bad record)."""
    throwable = getattr(err, "java_exception", None) or getattr(err, "_origin", None)
    text = str(err)
    if throwable is not None:
        while throwable.getCause() is not None:
            throwable = throwable.getCause()
        text = throwable.getMessage() or throwable.toString()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(err).__name__
    return first if len(first) <= 300 else first[:297] + "..."


def write_output(df: DataFrame, path: str, fmt: str) -> None:
    """Write `df` as JSONL or Parquet, replacing what was at `path`."""
    check_format(fmt, "output format")
    writer = df.write.mode("overwrite")
    if fmt == "parquet":
        writer.parquet(path)
    else:
        writer.option("ignoreNullFields", "false").json(path)
