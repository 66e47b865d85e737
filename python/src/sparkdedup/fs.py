"""Small file-system operations on any Hadoop file system (local paths, hdfs://, s3a://, ...).

Used by the CLI's readers and writers, the output rules (`sparkdedup.outputs`) and the stage
cache. They go through the JVM's Hadoop `FileSystem` of the session (a classic session; the
DataFrame functions of the package do no I/O).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Entry:
    """One listed file or directory: its qualified path, name, kind, size and mtime."""

    path: str
    name: str
    is_dir: bool
    size: int
    mtime: int


def hadoop_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """(FileSystem, Path) of `path` in the session's Hadoop configuration."""
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, hpath


def qualified(spark: SparkSession, path: str) -> str:
    """`path` as a fully qualified URI (scheme, authority, absolute path, no trailing slash).

    Local paths are also resolved through symbolic links, so two spellings of one directory
    compare equal.
    """
    fs, hpath = hadoop_path(spark, path)
    uri = fs.makeQualified(hpath).toUri()
    if uri.getScheme() == "file":
        return "file:" + os.path.realpath(uri.getPath())
    return str(fs.makeQualified(hpath).toString()).rstrip("/") or "/"


def exists(spark: SparkSession, path: str) -> bool:
    fs, hpath = hadoop_path(spark, path)
    return bool(fs.exists(hpath))


def glob_matches(spark: SparkSession, path: str) -> list[str]:
    """Qualified paths that `path` (a file, a directory or a glob) matches; [] for none."""
    fs, hpath = hadoop_path(spark, path)
    matches = fs.globStatus(hpath) or []
    return [str(m.getPath().toString()) for m in matches]


def path_exists(spark: SparkSession, path: str) -> bool:
    """True when `path` (a file, a directory or a glob) matches something."""
    return bool(glob_matches(spark, path))


def status(spark: SparkSession, path: str) -> Entry | None:
    """The file or directory at `path`, or None when there is nothing there."""
    fs, hpath = hadoop_path(spark, path)
    if not fs.exists(hpath):
        return None
    return _entry(fs.getFileStatus(hpath))


def _entry(st: Any) -> Entry:
    p = st.getPath()
    return Entry(
        path=str(p.toString()),
        name=str(p.getName()),
        is_dir=bool(st.isDirectory()),
        size=int(st.getLen()),
        mtime=int(st.getModificationTime()),
    )


def list_dir(spark: SparkSession, path: str) -> list[Entry]:
    """The direct children of directory `path` ([] when it does not exist)."""
    fs, hpath = hadoop_path(spark, path)
    if not fs.exists(hpath) or not fs.getFileStatus(hpath).isDirectory():
        return []
    return sorted((_entry(st) for st in fs.listStatus(hpath)), key=lambda e: e.name)


def list_files(spark: SparkSession, path: str) -> list[str]:
    """Every file under `path`, as paths relative to it (recursive; a listing, no reads)."""
    fs, hpath = hadoop_path(spark, path)
    if not fs.exists(hpath):
        return []
    base = str(fs.makeQualified(hpath).toString()).rstrip("/") + "/"
    out = []
    it = fs.listFiles(hpath, True)
    while it.hasNext():
        full = str(it.next().getPath().toString())
        out.append(full[len(base) :] if full.startswith(base) else full)
    return sorted(out)


def mkdirs(spark: SparkSession, path: str) -> None:
    fs, hpath = hadoop_path(spark, path)
    fs.mkdirs(hpath)


def delete(spark: SparkSession, path: str) -> None:
    """Delete `path` (recursively); nothing when it does not exist."""
    fs, hpath = hadoop_path(spark, path)
    if fs.exists(hpath):
        fs.delete(hpath, True)


def rename(spark: SparkSession, source: str, target: str) -> None:
    """Move `source` to `target` (which must not exist); atomic on HDFS and local disks."""
    fs, src = hadoop_path(spark, source)
    _, dst = hadoop_path(spark, target)
    parent = dst.getParent()
    if parent is not None and not fs.exists(parent):
        fs.mkdirs(parent)
    if not fs.rename(src, dst):
        raise OSError(f"could not move {source!r} to {target!r}")


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
    if not fs.exists(hpath) or fs.getFileStatus(hpath).isDirectory():
        return None
    jvm = spark.sparkContext._jvm
    stream = fs.open(hpath)
    try:
        return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def parquet_columns(spark: SparkSession, path: str) -> dict[str, str]:
    """Top-level column names of one Parquet file and their Parquet types, from its footer."""
    jvm = spark.sparkContext._jvm
    try:  # an encoded URI, as in ``_metadata.file_path``
        hpath = jvm.org.apache.hadoop.fs.Path(jvm.java.net.URI(path))
    except Exception:  # noqa: BLE001 - a plain path (spaces and all)
        _, hpath = hadoop_path(spark, path)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    source = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(hpath, conf)
    reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(source)
    try:
        schema = reader.getFileMetaData().getSchema()
        fields = {}
        for field in schema.getFields():
            kind = (
                field.asPrimitiveType().getPrimitiveTypeName().toString()
                if (field.isPrimitive())
                else "GROUP"
            )
            logical = field.getLogicalTypeAnnotation()
            fields[str(field.getName())] = str(kind) + (
                f" ({logical.toString()})" if logical is not None else ""
            )
        return fields
    finally:
        reader.close()
