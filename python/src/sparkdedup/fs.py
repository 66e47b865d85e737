"""Small file-system operations on any Hadoop file system (local paths, hdfs://, s3a://, ...).

Used by the CLI's readers and writers, the output rules (`sparkdedup.outputs`) and the stage
cache. With a classic session they go through the JVM's Hadoop `FileSystem` of the session.
A Spark Connect session has no JVM here: they then go through this machine's file system, which
must be the one the Connect server sees (a local server, or mounted paths such as Databricks'
/Volumes), and other URIs are an error saying so. The DataFrame functions of the package do no
I/O.
"""

from __future__ import annotations

import codecs
import contextlib
import glob as globmod
import hashlib
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import unquote, urlparse

from pyspark.sql import Column, SparkSession

from sparkdedup.compat import empty_frame, is_connect
from sparkdedup.errors import ConfigError, InputError


@dataclass(frozen=True)
class Entry:
    """One listed file or directory: its qualified path, name, kind, size and mtime."""

    path: str
    name: str
    is_dir: bool
    size: int
    mtime: int


def hadoop_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """(FileSystem, Path) of `path` in the session's Hadoop configuration. A local path the
    driver's JVM would spell otherwise than this process (`check_jvm_spells_as_python`) is an
    InputError naming it."""
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not path.isascii():
        check_jvm_spells_as_python(spark, fs, hpath, path)
    return fs, hpath


#: The driver JVM's file-name encoding, by SparkContext (it is fixed when the JVM starts).
_JVM_NAME_ENCODING: dict[int, str] = {}


def check_jvm_spells_as_python(spark: SparkSession, fs: Any, hpath: Any, path: str) -> None:
    """InputError when `path` is on the local disk, holds characters outside ASCII, and the
    driver's JVM names local files in another encoding than this process: the JVM's is the
    locale's it started under (``sun.jnu.encoding``; ASCII under ``LC_ALL=C``, where each
    character it lacks becomes ``?``), Python's is UTF-8 under that locale (PEP 540). It would
    read and write ``out/??/`` while this process writes ``out/é中/``. Other file systems
    take any name. Spark Connect sessions never get here: their server names the files."""
    key = id(spark.sparkContext)
    if key not in _JVM_NAME_ENCODING:
        prop = spark.sparkContext._jvm.java.lang.System.getProperty("sun.jnu.encoding")
        _JVM_NAME_ENCODING[key] = str(prop or "")
    try:
        jvm = codecs.lookup(_JVM_NAME_ENCODING[key]).name
        ours = codecs.lookup(sys.getfilesystemencoding()).name
    except LookupError:  # an encoding Python does not know (ANSI_X3.4-1968 it does): no check
        return
    if jvm == ours or str(fs.makeQualified(hpath).toUri().getScheme()) != "file":
        return
    raise InputError(
        f"path {path!r} holds characters outside ASCII, which the Spark driver's JVM names in "
        f"{_JVM_NAME_ENCODING[key]} (from the locale it started under, LC_ALL/LC_CTYPE/LANG) "
        f"and this process in {ours}: one would write files the other cannot find (in ASCII, "
        "as '?'). Start both under a UTF-8 locale (for example LC_ALL=C.UTF-8) or use an "
        "ASCII path"
    )


#: The characters that make a path a glob for Spark's readers (`SparkHadoopUtil.isGlobPath`).
GLOB_CHARS = "{}[]*?\\"


def is_glob(path: str) -> bool:
    return any(c in GLOB_CHARS for c in path)


def escape_glob(path: str) -> str:
    """`path` with its glob characters escaped (``\\[``), which Hadoop's glob matches
    literally."""
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", path)


def literal(spark: SparkSession, path: str) -> str:
    """`path` as Spark's readers take it literally, for a directory sparkdedup wrote itself (a
    stage, an index segment): they glob every path, so ``run[1]/`` would read a sibling
    ``run1/``. A relative path is qualified first: the working directory it resolves against
    may hold one too."""
    if not _is_absolute(path):
        path = qualified(spark, path)
    return escape_glob(path) if is_glob(path) else path


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or bool(urlparse(path).scheme)


def _glob_status(fsys: Any, hpath: Any) -> list[Any]:
    """The FileStatus of each match of `hpath`, globbed only when it holds a glob character,
    as Spark's readers do: Hadoop's glob rebuilds every component as a Path of its own, which
    fails on a literal one with a colon (``snapshot/2024-01-01T00:00:00/``). One call for a
    plain path."""
    if is_glob(str(hpath.toString())):
        return list(fsys.globStatus(hpath) or [])
    from py4j.protocol import Py4JJavaError

    try:
        return [fsys.getFileStatus(hpath)]
    except Py4JJavaError as err:
        if str(err.java_exception.getClass().getName()) == "java.io.FileNotFoundException":
            return []
        raise


def qualified(spark: SparkSession, path: str) -> str:
    """`path` as a fully qualified URI (scheme, authority, absolute path, no trailing slash).

    Local paths are also resolved through symbolic links, so two spellings of one directory
    compare equal.
    """
    if is_connect(spark):
        return _local_qualified(path)
    fs, hpath = hadoop_path(spark, path)
    uri = fs.makeQualified(hpath).toUri()
    if uri.getScheme() == "file":
        return "file:" + os.path.realpath(uri.getPath())
    return str(fs.makeQualified(hpath).toString()).rstrip("/") or "/"


def exists(spark: SparkSession, path: str) -> bool:
    if is_connect(spark):
        return _local_exists(path)
    fs, hpath = hadoop_path(spark, path)
    return bool(fs.exists(hpath))


def glob_matches(spark: SparkSession, path: str) -> list[str]:
    """Qualified paths that `path` (a file, a directory or a glob) matches; [] for none."""
    if is_connect(spark):
        return _local_glob_matches(path)
    fs, hpath = hadoop_path(spark, path)
    if not is_glob(str(hpath.toString())):
        return [str(st.getPath().toString()) for st in _glob_status(fs, hpath)]
    # The paths in one call (a glob may match a million files: a call each would take an
    # hour): Spark's own glob (its file sources use it), its paths joined in the JVM.
    try:
        util = spark.sparkContext._jvm.org.apache.spark.deploy.SparkHadoopUtil.get()
        found = util.globPath(fs, hpath)
        text, count = str(found.mkString("\n")), int(found.size())
        paths = text.split("\n") if count else []
        if len(paths) == count:
            return paths
    except Exception:  # noqa: BLE001 - a Spark without that helper: a call a path
        pass
    return [str(m.getPath().toString()) for m in fs.globStatus(hpath) or []]


def path_exists(spark: SparkSession, path: str) -> bool:
    """True when `path` (a file, a directory or a glob) matches something."""
    if is_connect(spark):
        return bool(_local_glob_matches(path))
    fs, hpath = hadoop_path(spark, path)
    return bool(_glob_status(fs, hpath))


def status(spark: SparkSession, path: str) -> Entry | None:
    """The file or directory at `path`, or None when there is nothing there."""
    if is_connect(spark):
        return _local_status(path)
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
    if is_connect(spark):
        return _local_list_dir(path)
    fs, hpath = hadoop_path(spark, path)
    if not fs.exists(hpath) or not fs.getFileStatus(hpath).isDirectory():
        return []
    return sorted((_entry(st) for st in fs.listStatus(hpath)), key=lambda e: e.name)


def list_files(spark: SparkSession, path: str) -> list[str]:
    """Every file under `path`, as paths relative to it (recursive; a listing, no reads)."""
    if is_connect(spark):
        return _local_list_files(path)
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
    if is_connect(spark):
        return _local_mkdirs(path)
    fs, hpath = hadoop_path(spark, path)
    fs.mkdirs(hpath)


def delete(spark: SparkSession, path: str) -> None:
    """Delete `path` (recursively); nothing when it does not exist."""
    if is_connect(spark):
        return _local_delete(path)
    fs, hpath = hadoop_path(spark, path)
    if fs.exists(hpath):
        fs.delete(hpath, True)


def remove_empty_dir(spark: SparkSession, path: str) -> None:
    """Delete the directory `path` if it is empty (another process may have written in it
    since: then it stays)."""
    if is_connect(spark):
        try:
            os.rmdir(local_path(path))
        except OSError:
            pass
        return
    from py4j.protocol import Py4JJavaError

    fs, hpath = hadoop_path(spark, path)
    try:
        fs.delete(hpath, False)  # refused for a directory that holds anything
    except Py4JJavaError:
        pass


def reachable(spark: SparkSession, path: str) -> bool:
    """Whether this process reaches `path` to list or delete it: always on a classic session
    (Hadoop file systems), over Spark Connect only through this machine's file system."""
    if not is_connect(spark):
        return True
    try:
        local_path(path)
    except InputError:
        return False
    return True


def discard(spark: SparkSession, root: str, written: dict[str, Any]) -> None:
    """Remove `root`, a directory of Parquet outputs; `written` maps each output under it to
    its schema. Where this process cannot reach `root` (over Spark Connect, a path that is
    not local), each output is emptied through Spark instead: overwritten with no rows."""
    if reachable(spark, root):
        delete(spark, root)
        return
    for path, schema in written.items():
        empty_frame(spark, schema).write.mode("overwrite").parquet(path)


def rename(spark: SparkSession, source: str, target: str) -> None:
    """Move `source` to `target` (which must not exist); atomic on HDFS and local disks."""
    if is_connect(spark):
        return _local_rename(source, target)
    fs, src = hadoop_path(spark, source)
    _, dst = hadoop_path(spark, target)
    parent = dst.getParent()
    if parent is not None and not fs.exists(parent):
        fs.mkdirs(parent)
    if not fs.rename(src, dst):
        raise OSError(f"could not move {source!r} to {target!r}")


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write a small UTF-8 text file (replacing it) on any Hadoop file system."""
    if is_connect(spark):
        return _local_write_text(path, text)
    fs, hpath = hadoop_path(spark, path)
    out = fs.create(hpath, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()


def _local_or_hadoop(spark: SparkSession, path: str) -> tuple[str | None, Any, Any]:
    """``(local path, None, None)`` when `path` is on this machine's disk (always over Spark
    Connect), else ``(None, Hadoop FileSystem, Hadoop Path)``."""
    if is_connect(spark):
        return path, None, None
    fs, hpath = hadoop_path(spark, path)
    uri = fs.makeQualified(hpath).toUri()
    if uri.getScheme() == "file":
        return str(uri.getPath()), None, None
    return None, fs, hpath


def replace_text(spark: SparkSession, path: str, text: str) -> None:
    """`write_text`, in one step where the file system has one: on the local disk a temporary
    file beside `path` (``NAME.tmp-*``) renamed over it, so that a reader sees the old content
    or the new, never a part; on object stores the write is one upload anyway. On HDFS a
    reader may find the file empty for a moment."""
    local, _, _ = _local_or_hadoop(spark, path)
    if local is not None:
        return _local_replace_text(local, text)
    return write_text(spark, path, text)


def create_new(spark: SparkSession, path: str, text: str) -> bool:
    """Write the small UTF-8 text file `path` only if nothing is there: False (nothing written)
    when it exists. One step, a create-if-absent, wherever the file system has one: on the
    local disk (``O_EXCL``), HDFS, ABFS and Google Cloud Storage two callers never both
    succeed; elsewhere (S3A) it is a check followed by the write."""
    local, fs, hpath = _local_or_hadoop(spark, path)
    if local is not None:
        return _local_create_new(local, text)
    return _hadoop_create_new(fs, hpath, text)


def _hadoop_create_new(fs: Any, hpath: Any, text: str) -> bool:
    """`create_new` through a Hadoop FileSystem: ``create`` without overwrite."""
    from py4j.protocol import Py4JJavaError

    try:
        out = fs.create(hpath, False)
    except Py4JJavaError:
        if fs.exists(hpath):  # FileAlreadyExistsException, however the file system wraps it
            return False
        raise
    try:
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()
    except BaseException:
        with contextlib.suppress(Exception):  # the write's error is the one to tell
            fs.delete(hpath, False)  # never an empty claim that nobody holds (a full disk)
        raise
    return True


def read_text(spark: SparkSession, path: str) -> str | None:
    """The content of a small UTF-8 text file on any Hadoop file system; None if it is absent."""
    if is_connect(spark):
        return _local_read_text(path)
    from py4j.protocol import Py4JJavaError

    fs, hpath = hadoop_path(spark, path)
    try:
        if not fs.exists(hpath) or fs.getFileStatus(hpath).isDirectory():
            return None
        stream = fs.open(hpath)
    except Py4JJavaError as err:
        # Removed between the check and the open (another run's rename): absent.
        if err.java_exception.getClass().getName() == "java.io.FileNotFoundException":
            return None
        raise
    jvm = spark.sparkContext._jvm
    try:
        return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def parquet_columns(spark: SparkSession, path: str) -> dict[str, str]:
    """Top-level column names of one Parquet file and their Parquet types, from its footer (a
    nested column's with its fields: a list of doubles is not a list of floats)."""
    if is_connect(spark):
        return _local_parquet_columns(path)
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
            kind = str(kind) + (f" ({logical.toString()})" if logical is not None else "")
            if not field.isPrimitive():  # its fields, on one line: "{ repeated group list ... }"
                text = " ".join(str(field.toString()).split())
                kind += " " + text[text.find("{") :]
            fields[str(field.getName())] = kind
        return fields
    finally:
        reader.close()


def spark_hidden(name: str) -> bool:
    """Whether Spark's file sources leave a file or directory of this name out of a listing
    (their rule for hidden files: ``_SUCCESS``, ``.crc`` files, ``_temporary/``): a name
    starting with ``.``, or with ``_`` unless it holds ``=`` (a partition such as ``_k=1``),
    and a ``._COPYING_`` file; ``_metadata`` and ``_common_metadata`` are listed."""
    if name.startswith(("_common_metadata", "_metadata")):
        return False
    return (
        (name.startswith("_") and "=" not in name)
        or name.startswith(".")
        or name.endswith("._COPYING_")
    )


def _hidden_below(rel: str) -> bool:
    """Whether a path below a listed root is left out: any of its parts is hidden."""
    return any(spark_hidden(part) for part in rel.split("/") if part)


def unread_files(spark: SparkSession, path: str, recursive: bool) -> tuple[str | None, str | None]:
    """Files `path` names or holds that Spark's file sources would leave out without a word:
    (a file with a hidden name, `spark_hidden`, that `path` names outright, or every one of
    its first matches when it is a glob: a glob's hidden matches among others, such as the
    ``_SUCCESS`` of ``out/*``, are skipped as Spark's own; a file directly inside a matched
    directory that also holds ``key=value`` partition directories, which Spark then reads
    alone, unless `recursive`). None where there is none. A few calls: the first
    `SUMMARY_DRIVER_FILES` matches, and a directory's entries only when it has a partition
    directory, until its first file."""
    if is_connect(spark):
        return _local_unread_files(path, recursive)
    fsys, hpath = hadoop_path(spark, path)
    matches = _glob_status(fsys, hpath)
    hidden = beside = None
    first = [matches[i] for i in range(min(len(matches), SUMMARY_DRIVER_FILES))]
    names = [(st, str(st.getPath().getName()), bool(st.isDirectory())) for st in first]
    if names and all(not is_dir and spark_hidden(name) for _, name, is_dir in names):
        hidden = str(names[0][0].getPath().toString())
    for st, _, is_dir in names:
        if not is_dir or recursive or beside is not None:
            continue
        beside = _file_beside_partitions(spark.sparkContext._jvm, fsys, st.getPath())
    return hidden, beside


def _file_beside_partitions(jvm: Any, fsys: Any, directory: Any) -> str | None:
    """A data file directly in `directory` when it also holds a ``key=value`` directory. The
    ``*=*`` entries come from one listing filtered in the JVM (a glob of ``dir/*=*`` fails
    below a component with a colon), the first file from a second only when one of the first
    64 is a directory."""
    named = fsys.listStatus(directory, jvm.org.apache.hadoop.fs.GlobFilter("*=*")) or []
    if not any(named[j].isDirectory() for j in range(min(len(named), 64))):
        return None
    it = fsys.listStatusIterator(directory)
    while it.hasNext():
        child = it.next()
        if not child.isDirectory() and not spark_hidden(str(child.getPath().getName())):
            return str(child.getPath().toString())
    return None


def _local_unread_files(path: str, recursive: bool) -> tuple[str | None, str | None]:
    hidden = beside = None
    matches = _local_glob(path)[:SUMMARY_DRIVER_FILES]
    if matches and all(not os.path.isdir(m) and spark_hidden(os.path.basename(m)) for m in matches):
        hidden = _uri(matches[0])
    for match in matches:
        if not os.path.isdir(match) or recursive or beside is not None:
            continue
        with os.scandir(match) as entries:
            children = list(entries)
        if any("=" in e.name and e.is_dir() for e in children):
            files = [e for e in children if not e.is_dir() and not spark_hidden(e.name)]
            if files:
                beside = _uri(files[0].path)
    return hidden, beside


#: Files `file_summary` lists on the driver, one call each; an input with more is summarised
#: by a Spark job over its listing instead (a million files would take over an hour of calls).
SUMMARY_DRIVER_FILES = 64


#: Compressed files Spark's text readers (JSONL, CSV, text) have no codec for: they would read
#: the compressed bytes as lines. And those of Hadoop's own block formats (Lz4Codec,
#: SnappyCodec), which the lz4 and snappy tools' frame formats are not.
NO_CODEC_SUFFIXES = (".xz", ".lzma", ".7z", ".zip", ".rar", ".tar", ".lzo", ".br")
BLOCK_CODEC_SUFFIXES = (".lz4", ".snappy")


@dataclass(frozen=True)
class Listing:
    """What `input_listing` found: ``summary`` (files, bytes, latest modification in ms,
    digest); for the codec checks, the first file with a suffix of `NO_CODEC_SUFFIXES` and of
    `BLOCK_CODEC_SUFFIXES`; and ``nested``, the first file in a subdirectory of an input
    directory that has no ``key=value`` partition directories: Spark's file sources read
    only the files directly in such a directory (None for none)."""

    summary: tuple[int, int, int, str]
    no_codec: str | None = None
    block_codec: str | None = None
    nested: str | None = None


def file_summary(spark: SparkSession, path: str) -> tuple[int, int, int, str]:
    """(files, bytes, latest modification in ms, digest) of the data files under `path` (a
    file, a directory or a glob): those Spark's file sources read (`spark_hidden`). The digest
    covers every file's path below `path` (its part before any glob), size and modification
    time: a file replaced by another of its size, or one older than the newest, changes it."""
    return input_listing(spark, path).summary


def input_listing(spark: SparkSession, path: str, name_glob: str | None = None) -> Listing:
    """`file_summary` and the codec checks' files of `path`, from one listing; with
    `name_glob` (a reader's ``pathGlobFilter``), of the files whose names it matches only,
    those Spark reads.

    Up to `SUMMARY_DRIVER_FILES` files are listed here; more are summarised by a Spark job
    (`_job_listing`: the listing aggregated on the executors, nothing per file on the
    driver), whose digest is another function of the same listing.
    """
    named = glob_regex(name_glob).fullmatch if name_glob is not None else None
    listing = (
        _local_listing(path, SUMMARY_DRIVER_FILES + 1, named)
        if is_connect(spark)
        else _hadoop_listing(spark, path, SUMMARY_DRIVER_FILES + 1, named)
    )
    if len(listing) > SUMMARY_DRIVER_FILES:
        return _job_listing(spark, path, name_glob)

    def first(suffixes: tuple[str, ...]) -> str | None:
        named = sorted(e.full for e in listing if e.full.lower().endswith(suffixes))
        return named[0] if named else None

    # Below its match (the directory named, or each that a glob matches), a file's path.
    below = [[part for part in e.rel.split("/") if part] for e in listing]
    partitioned = any("=" in part for parts in below for part in parts[:-1])
    nested = sorted(e.full for e, parts in zip(listing, below, strict=True) if len(parts) > 1)
    summary = _summary([(e.key, e.size, e.mtime) for e in listing])
    return Listing(
        summary,
        first(NO_CODEC_SUFFIXES),
        first(BLOCK_CODEC_SUFFIXES),
        None if partitioned or not nested else nested[0],
    )


def data_files(
    spark: SparkSession, path: str, limit: int, name_glob: str | None = None
) -> list[str]:
    """The first `limit` data files under `path` (those Spark's file sources read; with
    `name_glob`, a reader's ``pathGlobFilter``, those whose names it matches), as listed:
    their qualified paths."""
    named = glob_regex(name_glob).fullmatch if name_glob is not None else None
    listing = (
        _local_listing(path, limit, named)
        if is_connect(spark)
        else _hadoop_listing(spark, path, limit, named)
    )
    return [e.full for e in listing]


class _Listed(NamedTuple):
    """A listed data file: its path below `path`'s part before any glob (``key``), size,
    modification time (ms), qualified path, and path below the match it was listed under."""

    key: str
    size: int
    mtime: int
    full: str
    rel: str


def _hadoop_listing(
    spark: SparkSession, path: str, limit: int, named: Callable[[str], Any] | None = None
) -> list[_Listed]:
    """(path below `path`'s part before any glob, size, mtime, path) of up to `limit` data
    files (whose names `named` matches, when given): the matched names are part of the first
    (a renamed ``k=v`` directory that a glob matches changes the listing's digest), as in
    `_job_listing`."""
    fsys, hpath = hadoop_path(spark, path)
    base_fs, base_path = hadoop_path(spark, literal_prefix(path))
    base = str(base_fs.makeQualified(base_path).toString()).rstrip("/") + "/"
    listing: list[_Listed] = []
    for st in _glob_status(fsys, hpath):
        root = st.getPath().toString()
        it = fsys.listFiles(st.getPath(), True)
        while it.hasNext():
            f = it.next()
            name = f.getPath().getName()
            full = str(f.getPath().toString())
            rel = full[len(root) :] or name
            if _hidden_below(rel):  # as Spark lists (a named file's own name included)
                continue
            if named is not None and not named(name):
                continue
            key = full[len(base) :] if full.startswith(base) else name
            listing.append(_Listed(key, int(f.getLen()), int(f.getModificationTime()), full, rel))
            if len(listing) >= limit:
                return listing
    return listing


def literal_prefix(path: str) -> str:
    """`path` up to its first component holding a glob character."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if is_glob(part):
            prefix = "/".join(parts[:i]) or ("/" if path.startswith("/") else ".")
            return prefix + "/" if prefix.endswith(":") else prefix  # file:/*.jsonl
    return path


def glob_depth(path: str) -> int:
    """How many directories below `literal_prefix(path)` its matches are: the components from
    the first one holding a glob character on (0 for a plain path). A brace alternative
    holding a slash (``{a,b/c}``) is counted as one component."""
    parts = [part for part in re.split(r"/(?![^{]*})", path) if part]
    for i, part in enumerate(parts):
        if is_glob(part):
            return len(parts) - i
    return 0


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Hadoop's glob `pattern` (``*``, ``?``, ``[abc]``, ``[^a]`` or ``[!a]``, ``{a,b}``, and
    ``\\c`` passed to the regular expression as it is, as Hadoop's ``GlobPattern`` does: what
    ``GlobFilter`` matches a file's name with, a reader's ``pathGlobFilter``) as a regular
    expression for `re.fullmatch`. ConfigError for a pattern Hadoop refuses too (an unclosed
    ``[`` or ``{``, a trailing ``\\``)."""
    out, depth, in_class, i = [], 0, False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 1
            if i == len(pattern):
                raise ConfigError(f"pathGlobFilter {pattern!r} ends with an escape (\\)")
            out.append("\\" + pattern[i])
        elif in_class:  # Hadoop turns ? and * into . and .* here too: [?] matches "."
            if char == "]":
                in_class = False
            out.append({"[": "\\[", "?": ".", "*": ".*"}.get(char, char))
        elif char == "[":
            in_class = True
            out.append("[")
            if i + 1 < len(pattern) and pattern[i + 1] in "!^":
                i += 1
                out.append("^")
        elif char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(char))
        i += 1
    if in_class or depth:
        raise ConfigError(f"pathGlobFilter {pattern!r} has an unclosed {'[' if in_class else '{'}")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as err:
        raise ConfigError(f"pathGlobFilter {pattern!r} is not a glob: {err}") from err


def _job_listing(spark: SparkSession, path: str, name_glob: str | None = None) -> Listing:
    """`input_listing` by one Spark job: the ``binaryFile`` source lists the files (Spark's
    file index: hidden names left out, as its readers do) and its tasks give each file's path,
    size and modification time, never its content; the executors sum two 64-bit hashes of
    each file's (path below `path`, size, mtime), so the driver gets one row."""

    prefix = literal_prefix(path)
    if is_connect(spark):
        root = _uri(local_path(prefix))
    else:
        fsys, hpath = hadoop_path(spark, prefix)
        root = str(fsys.makeQualified(hpath).toString())
    return _listing_job(spark, [path], root.rstrip("/") + "/", glob_depth(path), name_glob)


def dirs_digest(spark: SparkSession, paths: list[str]) -> str:
    """A digest of every data file under `paths` (directories or files, anywhere): each one's
    full path, size and modification time, from one Spark job (`_job_listing`)."""
    return _listing_job(spark, [escape_glob(p) for p in paths], None).summary[3]


def _listing_job(
    spark: SparkSession,
    paths: list[str],
    root: str | None,
    depth: int | None = None,
    name_glob: str | None = None,
) -> Listing:
    """`_job_listing` of `paths`, each file named by its path below `root` (else in full);
    with `depth`, the matches of `paths` are that many directories below `root`, and
    ``nested`` is looked for below them; with `name_glob`, the files whose names it matches
    (the source's own ``pathGlobFilter``)."""
    from pyspark.sql import functions as F

    reader = spark.read.format("binaryFile").option("recursiveFileLookup", "true")
    if name_glob is not None:
        reader = reader.option("pathGlobFilter", name_glob)
    files = reader.load(paths).select(
        "path", "length", F.expr("unix_millis(modificationTime)").alias("mtime")
    )
    rel = F.col("path")
    if root is not None:
        rel = F.when(rel.startswith(root), F.expr(f"substring(path, {len(root) + 1})")).otherwise(
            rel
        )

    def first(suffixes: tuple[str, ...]) -> Column:
        named = F.lower(F.col("path"))
        hit = named.endswith(suffixes[0])
        for suffix in suffixes[1:]:
            hit = hit | named.endswith(suffix)
        return F.min(F.when(hit, F.col("path")))

    nesting: list[Column] = [F.lit(None).alias("nested"), F.lit(False).alias("partitioned")]
    if root is not None and depth is not None:
        # The file's path below its match, and the directories on it (as `input_listing`).
        below = F.slice(F.filter(F.split(rel, "/"), lambda part: part != ""), depth + 1, 1 << 20)
        dirs = F.filter(
            F.transform(below, lambda part, i: F.when(i < F.size(below) - 1, part)),
            lambda part: part.isNotNull(),
        )
        nesting = [
            F.min(F.when(F.size(below) > 1, F.col("path"))).alias("nested"),
            F.max(F.exists(dirs, lambda part: part.contains("="))).alias("partitioned"),
        ]
    row = files.agg(
        F.count(F.lit(1)).alias("files"),
        F.sum("length").alias("bytes"),
        F.max("mtime").alias("latest"),
        hash_sum(1, rel, F.col("length"), F.col("mtime")).alias("h1"),
        hash_sum(2, rel, F.col("length"), F.col("mtime")).alias("h2"),
        first(NO_CODEC_SUFFIXES).alias("no_codec"),
        first(BLOCK_CODEC_SUFFIXES).alias("block_codec"),
        *nesting,
    ).collect()[0]
    digest = hashlib.sha256(f"{row['files']}\t{row['h1']}\t{row['h2']}".encode()).hexdigest()
    summary = (int(row["files"]), int(row["bytes"] or 0), int(row["latest"] or 0), digest)
    nested = None if row["partitioned"] else row["nested"]
    return Listing(summary, row["no_codec"], row["block_codec"], nested)


def hash_sum(seed: int, *columns: Column) -> Column:
    """The sum of a 64-bit hash of `columns` over the rows (as an exact decimal): a digest of
    a set of rows that is the same in any order, computed on the executors."""
    from pyspark.sql import functions as F

    return F.sum(F.xxhash64(F.lit(seed), *columns).cast("decimal(38,0)"))


def read_head(spark: SparkSession, path: str, size: int) -> bytes:
    """The first `size` bytes of file `path` (fewer when it is shorter)."""
    if is_connect(spark):
        with open(local_path(path), "rb") as handle:
            return handle.read(size)
    fsys, hpath = hadoop_path(spark, path)
    stream = fsys.open(hpath)
    try:
        out = bytearray()
        while len(out) < size:
            value = stream.read()  # one byte, -1 at the end
            if value < 0:
                break
            out.append(value)
        return bytes(out)
    finally:
        stream.close()


def _summary(listing: list[tuple[str, int, int]]) -> tuple[int, int, int, str]:
    digest = hashlib.sha256()
    for rel, size, mtime in sorted(listing):
        digest.update(f"{rel.lstrip('/')}\t{size}\t{mtime}\n".encode())
    return (
        len(listing),
        sum(size for _, size, _ in listing),
        max((mtime for _, _, mtime in listing), default=0),
        digest.hexdigest(),
    )


# ------------------------------------------------------------- Spark Connect: this machine's
def local_path(path: str) -> str:
    """`path` (plain or ``file:``) as an absolute local path; InputError for another scheme."""
    parsed = urlparse(path)
    if parsed.scheme == "file":
        return os.path.abspath(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # not a Windows drive letter
        raise InputError(
            f"{path!r} is not a local path: over Spark Connect sparkdedup reaches its input, "
            "output and cache paths through this machine's file system (a local Connect "
            "server, or mounted paths such as Databricks' /Volumes/...); use such a path, or a "
            "classic session (--master) for other file systems"
        )
    return os.path.abspath(path)


def _uri(local: str) -> str:
    return "file:" + local


def _local_qualified(path: str) -> str:
    return _uri(os.path.realpath(local_path(path)))


def _local_exists(path: str) -> bool:
    return os.path.exists(local_path(path))


def _local_glob(path: str) -> list[str]:
    """The local paths `path` matches, with Hadoop's glob syntax: Python's plus ``{a,b}``
    alternatives (nested too) and ``[^x]`` for ``[!x]``; sorted."""
    found: set[str] = set()
    for pattern in _braces(local_path(path)):
        pattern = re.sub(r"\[\^", "[!", pattern)
        # Hadoop's escapes (\c: the character c itself) as Python's ([c]).
        pattern = re.sub(r"\\(.)", lambda m: "[" + m.group(1) + "]", pattern)
        found.update(globmod.glob(pattern))
    return sorted(found)


def _braces(pattern: str) -> list[str]:
    """`pattern` with its first ``{a,b}`` group (and then the rest) expanded."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth, parts, begin = 0, [], start + 1
    for i in range(start, len(pattern)):
        char = pattern[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                parts.append(pattern[begin:i])
                head, tail = pattern[:start], pattern[i + 1 :]
                return [x for part in parts for x in _braces(head + part + tail)]
        elif char == "," and depth == 1:
            parts.append(pattern[begin:i])
            begin = i + 1
    return [pattern]  # an unclosed brace: a literal


def _local_glob_matches(path: str) -> list[str]:
    return [_uri(os.path.abspath(p)) for p in _local_glob(path)]


def _local_entry(local: str) -> Entry:
    st = os.stat(local)
    return Entry(
        path=_uri(local),
        name=os.path.basename(local),
        is_dir=os.path.isdir(local),
        size=0 if os.path.isdir(local) else int(st.st_size),
        mtime=int(st.st_mtime * 1000),
    )


def _local_status(path: str) -> Entry | None:
    local = local_path(path)
    return _local_entry(local) if os.path.exists(local) else None


def _local_list_dir(path: str) -> list[Entry]:
    local = local_path(path)
    if not os.path.isdir(local):
        return []
    entries = []
    for name in os.listdir(local):
        try:
            entries.append(_local_entry(os.path.join(local, name)))
        except FileNotFoundError:  # renamed or deleted since the listing: not a child now
            continue
    return sorted(entries, key=lambda e: e.name)


def _local_list_files(path: str) -> list[str]:
    local = local_path(path)
    if not os.path.exists(local):
        return []
    if not os.path.isdir(local):
        return [os.path.basename(local)]
    out = []
    for root, _, names in os.walk(local):
        out += [os.path.relpath(os.path.join(root, n), local) for n in names]
    return sorted(out)


def _local_mkdirs(path: str) -> None:
    os.makedirs(local_path(path), exist_ok=True)


def _local_delete(path: str) -> None:
    local = local_path(path)
    if os.path.isdir(local) and not os.path.islink(local):
        shutil.rmtree(local)
    elif os.path.lexists(local):
        os.remove(local)


def _local_rename(source: str, target: str) -> None:
    src, dst = local_path(source), local_path(target)
    if os.path.exists(dst):
        raise OSError(f"could not move {source!r} to {target!r}: the target exists")
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    os.rename(src, dst)


def _local_write_text(path: str, text: str) -> None:
    local = local_path(path)
    os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
    with open(local, "w", encoding="utf-8") as fh:
        fh.write(text)


def _local_replace_text(path: str, text: str) -> None:
    local = local_path(path)
    temporary = f"{local}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        with open(temporary, "w", encoding="utf-8") as fh:
            fh.write(text)
    except BaseException:  # a full disk: no temporary file left beside `path`
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    # The checksum Hadoop's local file system wrote beside the file's earlier content would
    # fail its next read through Hadoop: removed first (the file stays readable without it).
    head, name = os.path.split(local)
    try:
        os.remove(os.path.join(head, f".{name}.crc"))
    except FileNotFoundError:
        pass
    os.replace(temporary, local)


def _local_create_new(path: str, text: str) -> bool:
    local = local_path(path)
    os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
    try:
        fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except BaseException:  # a full disk: never an empty claim or lease that nobody holds
        with contextlib.suppress(OSError):
            os.remove(local)
        raise
    return True


def _local_read_text(path: str) -> str | None:
    local = local_path(path)
    if not os.path.isfile(local):
        return None
    with open(local, encoding="utf-8") as fh:
        return fh.read()


def _local_parquet_columns(path: str) -> dict[str, str]:
    import pyarrow.parquet as pq

    schema = pq.read_schema(local_path(path))
    return {field.name: str(field.type) for field in schema}


def _local_listing(
    path: str, limit: int, named: Callable[[str], Any] | None = None
) -> list[_Listed]:
    """`_hadoop_listing` of a local path (Spark Connect)."""
    base = local_path(literal_prefix(path)).rstrip("/") + "/"
    listing: list[_Listed] = []
    for match in _local_glob(path):
        walked: Any = [(os.path.dirname(match), [], [os.path.basename(match)])]
        if os.path.isdir(match):
            walked = os.walk(match)
        for root, _, names in walked:
            for name in names:
                file = os.path.join(root, name)
                rel = os.path.relpath(file, match) if os.path.isdir(match) else name
                if _hidden_below(rel) or (named is not None and not named(name)):
                    continue
                st = os.stat(file)
                key = file[len(base) :] if file.startswith(base) else name
                listing.append(
                    _Listed(key, int(st.st_size), int(st.st_mtime * 1000), _uri(file), rel)
                )
                if len(listing) >= limit:
                    return listing
    return listing
