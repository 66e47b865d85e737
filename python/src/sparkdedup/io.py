"""Readers and writers for corpora: JSONL and Parquet, local paths or any Hadoop file system URI.

Used by the CLI and the stage cache; the DataFrame API itself does no I/O.
"""

from __future__ import annotations

from typing import Any

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
    """Read a JSONL or Parquet corpus; InputError when the path matches nothing."""
    check_format(fmt)
    if not path_exists(spark, path):
        raise InputError(f"input path {path!r} does not exist")
    if fmt == "parquet":
        return spark.read.parquet(path)
    df = spark.read.json(path, mode="FAILFAST")
    if "_corrupt_record" in df.columns:
        raise InputError(f"input path {path!r} is not valid JSONL (one JSON object per line)")
    return df


def write_output(df: DataFrame, path: str, fmt: str) -> None:
    """Write `df` as JSONL or Parquet, replacing what was at `path`."""
    check_format(fmt, "output format")
    writer = df.write.mode("overwrite")
    if fmt == "parquet":
        writer.parquet(path)
    else:
        writer.option("ignoreNullFields", "false").json(path)
