"""The index of a deduplicated corpus, for incremental fuzzy dedup (README, "Incremental
dedup").

An index is a directory::

    PATH/_sparkdedup_index.json      the manifest: format version, the MinHash and LSH
                                     parameters, the id type, the segments and their counts
    PATH/segment=00000/*.parquet     one row per kept document: id, t1, t2 (the 128-bit hash
    PATH/segment=00001/*.parquet     of its normalised text), b0 .. b{B-1} (its band buckets)

A run with ``--index-out`` writes the documents it keeps as one segment; a run ``--against``
an index reads the segments its manifest lists (never recomputing their signatures), and
``--index-out`` of the same path appends the kept new documents as one more segment: the old
segments are not rewritten (`compact_index` merges them into one, in place; the segments a
commit replaces stay on disk for `RETAIN_HOURS`, listed as ``retired``, for the runs reading
them). A segment is written under a staging name and renamed into place, and the manifest,
rewritten last (`switch_manifest`: never a moment without one), lists only finished segments:
a run that fails leaves the index as it was. A run whose index another run
committed to while it ran is refused (`IndexWriter.check_unchanged`), and each commit first
claims its number (`IndexWriter.claim`: a file created only if absent, one step where the file
system allows), so of two overlapping runs one commits, even when they commit at once.

Readers take only the columns a step needs (Parquet column pruning): the band buckets of one
band group, or the ids.
"""

from __future__ import annotations

import calendar
import json
import logging
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkdedup import __version__, fs
from sparkdedup.compat import connect_35
from sparkdedup.config import INDEX_RETAIN_HOURS, FuzzyConfig, check_number
from sparkdedup.errors import ConfigError, InputError
from sparkdedup.fuzzy.lsh import bucket_anchors, group_keys, not_anchor
from sparkdedup.fuzzy.scan import TEXT_H1, TEXT_H2, band_col
from sparkdedup.sizing import driver_result_bytes, one_round_limit, parallelism

log = logging.getLogger("sparkdedup")

MANIFEST = "_sparkdedup_index.json"
#: The manifest a commit replaces, kept under this name until the new one is in place: a run
#: stopped between the two renames leaves this one, which readers then take.
PREVIOUS_MANIFEST = "_sparkdedup_index.previous.json"
FORMAT = "sparkdedup-fuzzy-index"
FORMAT_VERSION = 1
_SEGMENT = "segment={:05d}"
_STAGING = "_sparkdedup_index_staging-"
#: The claim of commit number N (`IndexWriter.claim`), created only if absent.
_CLAIM = "_sparkdedup_index_commit-"
#: A claim this old, with no commit of its number, was left by a run stopped mid-commit (a
#: commit takes seconds): it is cleared. A younger one is another run's commit in progress.
CLAIM_STALE_SECONDS = 3600
#: How long a reader waits for a manifest that a commit is switching (`read_manifest`): a
#: switch is two renames and a deletion, milliseconds on HDFS and seconds on an object store.
SWITCH_SECONDS = 30
#: How long the segments a commit replaces (a compaction's, an index replaced with
#: ``--overwrite``) stay on disk after it, for runs that were reading them, unless the commit
#: says otherwise (`compact_index`'s ``retain_hours``): the manifest lists them under
#: ``retired``, each with its hours (no reader takes them), and a later commit or compaction
#: deletes them once older (an explicit ``retain_hours`` of a compaction shortens them).
RETAIN_HOURS = INDEX_RETAIN_HOURS
#: The parameters a run against an index must share with it: they decide the band buckets.
PARAMS = ("char_ngrams", "num_bands", "minhashes_per_band", "seed", "use_64_bit_hash", "normalize")


def read_manifest(spark: SparkSession, path: str) -> str | None:
    """The text of the index manifest at `path`: the current one, else the one a commit
    stopped between its renames left (`PREVIOUS_MANIFEST`); None when there is neither.

    A commit's switch may fall between the two reads (the manifest renamed away before the
    first, the previous one deleted before the second). When both miss, the directory is
    listed: while it shows a manifest, or a manifest being switched in (written in the last
    `SWITCH_SECONDS`: older, it is a stopped commit's), the reads are tried again, for at
    most `SWITCH_SECONDS`. A path with no index costs one listing more."""
    base = path.rstrip("/")
    deadline, pause = None, 0.01
    while True:
        for name in (MANIFEST, PREVIOUS_MANIFEST):
            text = fs.read_text(spark, f"{base}/{name}")
            if text:
                return text
        switching = _switching(spark, base)
        if not switching:
            return None
        now = time.monotonic()
        deadline = now + SWITCH_SECONDS if deadline is None else deadline
        if now > deadline:
            raise InputError(
                f"the index {path!r} lists {', '.join(switching)} but no manifest could be "
                f"read there for {SWITCH_SECONDS} s (empty, or commits kept switching it); "
                "run the command again, and if this persists restore the manifest from a copy"
            )
        time.sleep(pause)  # 10 ms, doubling to 1 s: an object store's rename takes seconds
        pause = min(pause * 2, 1.0)


def _switching(spark: SparkSession, base: str) -> list[str]:
    """The manifests listed in the index at `base`, and the manifests written in the last
    `SWITCH_SECONDS` that a commit is switching in (`switch_manifest`'s staging files): []
    when neither (no index, or a commit stopped before its manifest was in place)."""
    now_ms = time.time() * 1000
    return [
        e.name
        for e in fs.list_dir(spark, base)
        if e.name in (MANIFEST, PREVIOUS_MANIFEST)
        or (
            e.name.startswith(_STAGING)
            and e.name.endswith(".json")
            and now_ms - e.mtime < SWITCH_SECONDS * 1000
        )
    ]


def switch_manifest(spark: SparkSession, path: str, text: str) -> None:
    """Make `text` the manifest of the index at `path`, with a readable manifest at every
    moment: written under a staging name, then the current manifest renamed to
    `PREVIOUS_MANIFEST`, the new one renamed into place and only then the previous one
    deleted (renames are atomic on HDFS and local disks; a file system's rename cannot be
    relied on to replace a file)."""
    base = path.rstrip("/")
    temporary = f"{base}/{_STAGING}{uuid.uuid4().hex[:12]}.json"
    fs.write_text(spark, temporary, text)
    target, previous = f"{base}/{MANIFEST}", f"{base}/{PREVIOUS_MANIFEST}"
    if fs.exists(spark, target):
        fs.delete(spark, previous)  # left by a commit that stopped after its renames
        fs.rename(spark, target, previous)
    fs.rename(spark, temporary, target)
    fs.delete(spark, previous)


def _parsed(text: str | None) -> dict[str, Any] | None:
    """A manifest's text, parsed; None without one, and for one that cannot be parsed (cut
    short, or edited by hand), which `FuzzyIndex.open` and `IndexWriter` refuse, naming the
    index."""
    if text is None:
        return None
    try:
        manifest = json.loads(text)
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


def _listed(manifest: str | None) -> list[str] | None:
    """The segment names a manifest's text lists; None without a manifest (`_parsed`)."""
    parsed = _parsed(manifest)
    return None if parsed is None else [s["name"] for s in parsed.get("segments", [])]


def _manifest(spark: SparkSession, path: str) -> dict[str, Any] | None:
    """The index manifest at `path` (`read_manifest`), parsed; None when there is none, or
    none that can be parsed (`_parsed`)."""
    return _parsed(read_manifest(spark, path))


def _commit_number(manifest: dict[str, Any] | None) -> int:
    """The number of the commit that wrote `manifest`: 0 without one (or from a sparkdedup
    that did not number them)."""
    return 0 if manifest is None else int(manifest.get("commit", 0))


def _claim_name(number: int) -> str:
    return f"{_CLAIM}{number:08d}.json"


def _holds_more_than_leftovers(spark: SparkSession, path: str) -> bool:
    """Whether `path` holds anything but what a first index write stopped before its commit
    leaves (its staging directory, its claim and their checksum files)."""
    ours = (_STAGING, _CLAIM, f".{_STAGING}", f".{_CLAIM}")
    return any(not e.name.startswith(ours) for e in fs.list_dir(spark, path))


def index_params(config: FuzzyConfig) -> dict[str, Any]:
    """The parameters an index records and a run against it must match."""
    return {name: getattr(config, name) for name in PARAMS}


def check_config(config: FuzzyConfig, option: str) -> None:
    """What an index needs of a run: user ids (unique across index and new data) and plain
    LSH candidates (the index holds no texts to verify against)."""
    if config.id_col is None:
        raise ConfigError(
            f"{option} needs user ids (--id-col / id_col): an index identifies its documents "
            "by an id that stays the same from run to run, which derived ids do not"
        )
    if config.verify != "none":
        raise ConfigError(
            f"{option} works with verify='none' only: the index holds band buckets, not texts, "
            "so a candidate pair with an indexed document cannot be verified"
        )


def id_type(df: DataFrame) -> str:
    """The index's id type, from a table whose ``id`` column is bigint or string."""
    return "string" if df.schema["id"].dataType.simpleString() == "string" else "bigint"


#: How each caller of `IndexWriter` (by its `option`) replaces an index, or adds to one.
_REPLACE_OR_ADD = {
    "--index-out": ("--overwrite", "--against the same path"),
    "index_out": ("overwrite_index=True", "against= the same path"),
    "path": ("overwrite=True", "append=True"),
}


@dataclass
class FuzzyIndex:
    """An index read from `path`: its manifest, and its documents as DataFrames."""

    spark: SparkSession
    path: str
    manifest: dict[str, Any]

    @classmethod
    def open(cls, spark: SparkSession, path: str, option: str = "--against") -> FuzzyIndex:
        """The index at `path`; InputError when there is none, or of another format."""
        text = read_manifest(spark, path)
        if text is None:
            what = "does not exist" if not fs.exists(spark, path) else f"has no {MANIFEST}"
            raise InputError(
                f"{option} {path!r} {what}: it is not a sparkdedup index (write one with "
                "`sparkdedup fuzzy ... --index-out PATH`)"
            )
        try:
            manifest = json.loads(text)
        except ValueError as err:  # cut short, or edited by hand
            raise InputError(
                f"{option} {path!r}: its manifest cannot be parsed ({err}); restore it from a copy"
            ) from err
        if not isinstance(manifest, dict):
            manifest = {}  # refused for its format below
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise InputError(
                f"{option} {path!r} holds an index of format {manifest.get('format')!r} version "
                f"{manifest.get('format_version')!r}; this sparkdedup reads {FORMAT!r} version "
                f"{FORMAT_VERSION}"
            )
        return cls(spark, path.rstrip("/"), manifest)

    @property
    def documents(self) -> int:
        return int(sum(s["documents"] for s in self.manifest["segments"]))

    def check_params(self, config: FuzzyConfig, option: str = "--against") -> None:
        """ConfigError naming every parameter that differs from the index's."""
        wanted = index_params(config)
        stored = self.manifest["params"]
        differ = [k for k in PARAMS if stored.get(k) != wanted[k]]
        if differ:
            shown = ", ".join(f"{k} {wanted[k]!r} (index: {stored.get(k)!r})" for k in differ)
            raise ConfigError(
                f"the run's parameters differ from those of the index {option} {self.path!r}: "
                f"{shown}; run with the index's parameters, or build a new index"
            )

    def check_ids(self, table: DataFrame, id_col: str) -> None:
        """InputError when the new ids are not of the index's type. An index of no documents
        holds ids of no type yet (its first month may have had no record to type them by)."""
        mine = id_type(table)
        if self.documents and mine != self.manifest["id_type"]:
            raise InputError(
                f"id column {id_col!r} is {mine} but the index {self.path!r} holds "
                f"{self.manifest['id_type']} ids; ids must be of one type across index and new "
                "data"
            )

    def _segments(self) -> list[str]:
        """The segments holding documents (an empty one's ids may be of another type)."""
        return [f"{self.path}/{s['name']}" for s in self.manifest["segments"] if s["documents"]]

    def table(self, columns: list[str], id_type: str | None = None) -> DataFrame:
        """The indexed documents' `columns` (of ``id, t1, t2, b0 ..``). `id_type`: the type
        of the ids of an index of no documents, which fixes none (`check_ids`): the new ids',
        so that a union or join with them is not a cast of one type to the other."""
        paths = self._segments()
        if not paths:
            return self.spark.createDataFrame([], self._schema(columns, id_type))
        return (
            self.spark.read.schema(self._schema())
            .parquet(*(fs.literal(self.spark, p) for p in paths))
            .select(*columns)
        )

    def _schema_names(self) -> list[str]:
        """Every column of the index's rows: ``id, t1, t2, b0 ..``."""
        bands = int(self.manifest["params"]["num_bands"])
        return ["id", TEXT_H1, TEXT_H2, *[band_col(k) for k in range(bands)]]

    def _schema(self, columns: list[str] | None = None, id_type: str | None = None) -> str:
        types = {"id": id_type or self.manifest["id_type"]}
        return ", ".join(f"{n} {types.get(n, 'bigint')}" for n in (columns or self._schema_names()))


def index_rows(scan: DataFrame, duplicates: DataFrame, num_bands: int) -> DataFrame:
    """``[id, t1, t2, b0 ..]`` of the documents a run keeps: its scan table without the
    duplicates. A kept exact copy whose scan row carries no buckets (only the first row of a
    text in an Arrow batch does) takes them from a row of the same text; a text without
    shingles (bytes that are not UTF-8 and start none) has none to take and keeps null ones."""
    bands = [band_col(k) for k in range(num_bands)]
    kept = scan.select("id", TEXT_H1, TEXT_H2, *bands).join(
        duplicates.select("id"), on="id", how="left_anti"
    )
    has = F.col(bands[0]).isNotNull() | F.col(TEXT_H1).isNull()
    missing = kept.where(~has).select("id", TEXT_H1, TEXT_H2)
    texts = missing.select(TEXT_H1, TEXT_H2).distinct()
    buckets = (
        scan.where(F.col(bands[0]).isNotNull())
        .select(TEXT_H1, TEXT_H2, *bands)
        .join(texts, on=[TEXT_H1, TEXT_H2], how="left_semi")
        .dropDuplicates([TEXT_H1, TEXT_H2])
    )
    filled = missing.join(buckets, on=[TEXT_H1, TEXT_H2], how="left").select(
        "id", TEXT_H1, TEXT_H2, *bands
    )
    return kept.where(has).unionByName(filled)


class IndexWriter:
    """Writes one segment of an index: a new index at `path`, or one more segment of the
    index there (`append`). `stage` writes the rows under a staging name; `commit` moves them
    into place and rewrites the manifest; `abort` removes what `stage` wrote."""

    def __init__(
        self,
        spark: SparkSession,
        path: str,
        config: FuzzyConfig,
        *,
        append: bool = False,
        overwrite: bool = False,
        option: str = "--index-out",
        compact: bool = False,
        retain_hours: float | None = None,
    ) -> None:
        check_config(config, option)
        if retain_hours is not None:
            check_number("retain_hours", retain_hours, 0, finite=True)
        #: How long the segments this commit replaces are kept for their readers (None:
        #: `RETAIN_HOURS`), and, given, the most those replaced earlier are kept (`_expired`).
        self.retain_hours = None if retain_hours is None else float(retain_hours)
        self.spark, self.path, self.option = spark, path.rstrip("/"), option
        self.config = config
        #: Rewriting the index's own documents as one segment (`compact_index`).
        self.compact = compact
        self.base: FuzzyIndex | None = None
        entry = fs.status(spark, path)
        if entry is not None and not entry.is_dir:
            raise ConfigError(
                f"{option} {path!r} is a file; give a directory (an index is a directory)"
            )
        if append:
            self.base = FuzzyIndex.open(spark, path, option)
            self.base.check_params(config, option)
        elif _holds_more_than_leftovers(spark, path):
            text = read_manifest(spark, self.path)
            if text is None:
                raise ConfigError(
                    f"{option} {path!r} exists and is not a sparkdedup index; choose a new "
                    "path (it is never replaced)"
                )
            if _parsed(text) is None:  # its segments and commit number are unknown
                raise InputError(
                    f"{option} {path!r} holds an index whose manifest cannot be parsed (cut "
                    "short, or edited by hand); restore it from a copy, or delete the "
                    "directory to write a new index there"
                )
            if not overwrite:
                replace, add = _REPLACE_OR_ADD.get(option, _REPLACE_OR_ADD["--index-out"])
                raise ConfigError(
                    f"{option} {path!r} already holds an index; pass {replace} to replace it, "
                    f"or {add} to add to it"
                )
        self.copy = None
        if not append and config.against is not None:
            # A new index of the old documents and the kept new ones.
            self.copy = FuzzyIndex.open(spark, config.against, "against")
        self._staging: str | None = None
        self._name: str | None = None
        #: Set once the run's other outputs are committed (`outputs_committed`): from then on
        #: a commit that fails leaves its claim, as a killed run does.
        self._keep_claim = False
        self._rows = 0
        self._id_type = ""
        # The segments the index listed when this run started: its commit is refused when
        # another run has committed to the index since (`check_unchanged`).
        seen = self.base.manifest if self.base is not None else _manifest(spark, self.path)
        self._seen = None if seen is None else [s["name"] for s in seen["segments"]]
        # This run's commit number: one more than the manifest's it started from. Two runs
        # that started from one manifest claim the same number, and only one gets it.
        self._number = _commit_number(seen) + 1
        self._claim: str | None = None
        self._run = uuid.uuid4().hex
        #: The run's output directory (qualified), set by the CLI: recorded in the claim, so
        #: that a run stopped between committing that output and the index is recognised
        #: (`check_claim`).
        self.output: str | None = None
        self._check_writable()

    def _check_writable(self) -> None:
        """ConfigError naming the path when the index cannot be written there (a parent that
        is a file, a directory without write permission, a read-only store): found before the
        run's work, not once every stage has run. A probe file is created and deleted, and the
        directories the probe made, when empty."""
        from sparkdedup.io import _py4j_errors, first_line

        errors = (OSError, *_py4j_errors())
        made = []  # the directories the probe makes, deepest first
        here = self.path
        while len(made) < 16 and fs.status(self.spark, here) is None:
            made.append(here)
            parent = here.rsplit("/", 1)[0] if "/" in here.rstrip("/") else ""
            if not parent or parent.endswith((":", ":/", "//")) or parent == here:
                break
            here = parent
        probe = f"{self.path}/{_STAGING}probe-{uuid.uuid4().hex[:12]}"
        try:
            fs.create_new(self.spark, probe, "")
        except errors as err:
            raise ConfigError(
                f"{self.option} {self.path!r} cannot be written: {first_line(err)}"
            ) from err
        try:
            fs.delete(self.spark, probe)  # another run's commit may have deleted it already
        except errors:
            pass
        for directory in made:
            fs.remove_empty_dir(self.spark, directory)

    def check_unchanged(self) -> None:
        """InputError when another run has committed to the index since this writer was made.
        Appending, this run deduplicated its documents without that run's, so adding them
        would let duplicates of those in; writing a new index, it would replace or mix with
        that run's. Checked before the segment is written and when the commit is claimed
        (`claim`, which also settles two commits at the same moment): one of two overlapping
        runs is refused, never both committed."""
        now = _listed(read_manifest(self.spark, self.path))
        if now == self._seen:
            return
        if self._seen is None:
            what = "an index was written there"
        elif now is None:
            what = "its manifest was removed"
        else:
            added = [n for n in now if n not in self._seen]
            gone = [n for n in self._seen if n not in now]
            changes = [f"{', '.join(added)} added"] if added else []
            changes += [f"{', '.join(gone)} removed"] if gone else []
            what = "; ".join(changes)
        if self.compact:
            consequence = (
                "the compaction is not committed and the index stays as that run left it; "
                "compact it again"
            )
        elif self.base is not None:
            consequence = (
                "this run's documents were deduplicated without those changes, so they are "
                "not added to it. Run again against the index as it is now"
            )
        else:
            consequence = (
                "this run's index is not written there (it would replace or mix with that "
                "run's). Run again, or choose another path"
            )
        raise InputError(
            f"{self.option} {self.path!r} changed while this run was running ({what}, by "
            f"another run): {consequence}; runs writing one index must not overlap"
        )

    def claim(self) -> None:
        """Claim this run's commit on the index, after `check_unchanged`: a claim file of its
        number (one more than the manifest's it started from), created only if absent
        (`fs.create_new`). Of two runs that started from one manifest, whatever the moment
        they commit, one gets the claim and the other an InputError. The CLI claims before it
        commits its other outputs; `commit` claims when that was not done. A claim left by a
        run stopped mid-commit is cleared once `CLAIM_STALE_SECONDS` old; until then it is
        refused as another run's commit in progress, the error naming the file."""
        if self._claim is not None:
            return
        self.check_unchanged()
        path = f"{self.path}/{_claim_name(self._number)}"
        body = json.dumps(
            {
                "claimed": time.time(),
                "run": self._run,
                "output": self.output,
                "sparkdedup": __version__,
            }
        )
        if fs.create_new(self.spark, path, body):
            self._claim = path
            return
        self.check_unchanged()  # that run has committed since: the error says so
        self._check_leftover(path)  # else an InputError
        log.warning(
            "sparkdedup: index %s: clearing the claim %s, left by a run stopped mid-commit",
            self.path,
            path,
        )
        fs.delete(self.spark, path)
        if fs.create_new(self.spark, path, body):
            self._claim = path
            return
        self.check_unchanged()
        self._refuse_busy(path, self._claim_age(path) or 0.0)  # another run took it meanwhile

    def check_claim(self) -> None:
        """Before any work: an InputError when `claim` would refuse this run's commit for a
        claim already there (another run's commit in progress, or a run stopped after it
        released its output but before its documents were added to the index)."""
        path = f"{self.path}/{_claim_name(self._number)}"
        if fs.exists(self.spark, path):
            self._check_leftover(path)

    def _check_leftover(self, path: str) -> None:
        """Whether the claim at `path`, made by another run, may be cleared: it may when that
        run was this command's (the same output, which this run's lease holds: it was stopped
        mid-commit), or when it is `CLAIM_STALE_SECONDS` old and that run committed no output
        without the index. Otherwise an InputError saying which."""
        held = self._read_claim(path)
        if self.output is not None and held.get("output") == self.output:
            return
        age = self._claim_age(path)
        if age is not None and age < CLAIM_STALE_SECONDS:
            self._refuse_busy(path, age)
        output = held.get("output")
        if output and held.get("run"):
            try:
                stats = json.loads(fs.read_text(self.spark, f"{output}/stats.json") or "")
                released = stats["index_out"]["run"] == held["run"]
            except (ValueError, KeyError, TypeError):
                released = False
            if released:
                raise InputError(
                    f"{self.option} {self.path!r}: the run that left the claim {path!r} "
                    f"committed its output {output!r} but was stopped before it added its "
                    "documents to the index, so later runs would keep copies of them: run "
                    "that command again (with --overwrite) to add them, or delete that file "
                    "to go on without them" + ("; then compact the index" if self.compact else "")
                )

    def _refuse_busy(self, path: str, age: float) -> None:
        consequence = (
            "the compaction is not committed; compact the index once that run is done"
            if self.compact
            else "this run's documents were deduplicated without that run's, so they are not "
            "added; runs writing one index must not overlap"
        )
        raise InputError(
            f"{self.option} {self.path!r} is being committed to by another run (its claim "
            f"{path!r} is {age:.0f} s old): {consequence}. "
            "If no other run writes this index, the claim was left by a run stopped "
            "mid-commit: run that command again, or delete that file and run again (it is "
            f"cleared by itself after {CLAIM_STALE_SECONDS} s)"
        )

    def _read_claim(self, path: str) -> dict[str, Any]:
        """The record of the claim at `path`; {} when it is gone or unreadable."""
        try:
            held = json.loads(fs.read_text(self.spark, path) or "")
        except ValueError:  # being written, or damaged
            return {}
        return held if isinstance(held, dict) else {}

    def _claim_age(self, path: str) -> float | None:
        """Seconds since the claim at `path` was made (its own record, else the file's time);
        None when it is gone."""
        try:
            return time.time() - float(self._read_claim(path)["claimed"])
        except (ValueError, KeyError, TypeError):  # unreadable: being written, or damaged
            entry = fs.status(self.spark, path)
            return None if entry is None else time.time() - entry.mtime / 1000

    def outputs_committed(self) -> None:
        """The run's other outputs are in place: should the index's commit fail now, its claim
        stays (naming the output), so that other runs are refused until the same command,
        run again, takes it over and adds the documents, which later runs would otherwise
        keep copies of."""
        self._keep_claim = True

    def _release(self) -> None:
        """Give the claim back unless its commit took place (the manifest carries its number)
        or the run's outputs are committed (`outputs_committed`)."""
        if self._claim is None:
            return
        done = _commit_number(_manifest(self.spark, self.path)) == self._number
        if not done and not self._keep_claim:
            fs.delete(self.spark, self._claim)
        self._claim = None

    def rows(self, result: Any) -> DataFrame:
        """The rows to index from a fuzzy run's result (`FuzzyResult`): the documents it
        keeps, and for a new index of a run against another one, that index's documents."""
        rows = index_rows(result.scan, result.duplicates, self.config.num_bands)
        if self.copy is not None:
            rows = self.copy.table(rows.columns, id_type(rows)).unionByName(rows)
        return rows

    def summary(self) -> dict[str, Any]:
        """What `stage` wrote, for a run's statistics."""
        before = self.base.documents if self.base is not None else 0
        return {
            "path": self.path,
            "segment": self._segment_name(),
            "documents": self._rows,
            "indexed_docs": before + self._rows,
            "appended": self.base is not None,
            # The claim's: a claim left behind names the output this run committed.
            "run": self._run,
        }

    def _segment_name(self) -> str:
        """The name of the segment `stage` writes (chosen there, else the next one now)."""
        return self._name if self._name is not None else self._next_segment()

    def _next_segment(self) -> str:
        """The next segment's name: after every segment listed or present (a replaced
        index's segments stay until the new manifest is in place)."""
        names = [s["name"] for s in self.base.manifest["segments"]] if self.base else []
        if fs.exists(self.spark, self.path):
            names += [e.name for e in fs.list_dir(self.spark, self.path)]
        numbers = [int(n.split("=")[1]) for n in names if n.startswith("segment=")]
        return _SEGMENT.format(1 + max(numbers, default=-1))

    def stage(self, rows: DataFrame) -> int:
        """Write `rows` (``[id, t1, t2, b0 ..]``) under a staging name; their count."""
        from pyspark.sql import Observation

        self._id_type = id_type(rows)
        self.check_unchanged()
        if (
            self.base is not None
            and self.base.documents
            and self.base.manifest["id_type"] != self._id_type
        ):
            raise InputError(
                f"ids of type {self._id_type} cannot be added to the index {self.path!r}, "
                f"whose ids are {self.base.manifest['id_type']}"
            )
        self._name = self._next_segment()
        self._staging = f"{self.path}/{_STAGING}{uuid.uuid4().hex[:12]}"
        counted = None
        if not connect_35(self.spark):  # a pyspark 3.5 Connect client takes no Observation
            counted = Observation(f"sparkdedup_index_{uuid.uuid4().hex[:8]}")
            rows = rows.observe(counted, F.count(F.lit(1)).alias("rows"))
        try:
            rows.write.parquet(self._staging)
        except Exception:
            # Another run's commit deletes the staging directories it finds, this one's too.
            self.check_unchanged()
            raise
        if counted is not None:
            self._rows = int(counted.get.get("rows") or 0)
        else:  # counted from the Parquet footers
            self._rows = int(self.spark.read.parquet(fs.literal(self.spark, self._staging)).count())
        return self._rows

    def commit(self) -> dict[str, Any]:
        """Move the staged segment into place and write the manifest; returns it."""
        assert self._staging is not None, "stage() first"
        self.claim()
        try:
            manifest = self._commit()
        except BaseException as err:
            switched = self._claim is not None and _manifest(self.spark, self.path)
            if not switched or _commit_number(switched) != self._number:
                self._release()
                raise
            # The manifest is in place (what failed came after it): committed.
            log.warning("sparkdedup: index %s committed, then: %s", self.path, err)
            manifest = switched
        self._staging = self._claim = None
        listed = {s["name"] for s in manifest["segments"]}
        listed |= {r["name"] for r in manifest.get("retired", [])}
        try:
            for entry in fs.list_dir(self.spark, self.path):
                # Claims of earlier commits (the one before stays, for a run checking just
                # now), and the segments no manifest lists: those replaced longer than
                # `retain_hours` ago, and those of runs stopped between moving their segment
                # into place and switching the manifest (commits go one at a time, under
                # their claims: no other run's is under way).
                old_claim = entry.name.startswith(_CLAIM) and entry.name < _claim_name(
                    self._number - 1
                )
                unlisted = entry.name.startswith("segment=") and entry.name not in listed
                if old_claim or unlisted:
                    fs.delete(self.spark, entry.path)
        except Exception as err:  # noqa: BLE001 - committed; the next commit tidies up
            log.warning("sparkdedup: index %s committed; tidying it up failed: %s", self.path, err)
        log.info(
            "sparkdedup: index %s: %s with %d documents (%d in all)",
            self.path,
            manifest["segments"][-1]["name"],
            self._rows,
            manifest["documents"],
        )
        _log_retired(self.path, manifest)
        return manifest

    def _commit(self) -> dict[str, Any]:
        """The commit under this run's claim: the segment moved into place, then the manifest
        switched (carrying the claim's number)."""
        assert self._staging is not None and self._claim is not None
        held = fs.read_text(self.spark, self._claim)
        if held is None or json.loads(held).get("run") != self._run:
            # Cleared as stale while this run held it (its other outputs took over
            # CLAIM_STALE_SECONDS to commit), and maybe taken by another run.
            self._claim = None
            raise InputError(
                f"{self.option} {self.path!r}: this run's claim on its commit was cleared as "
                "stale by another run, so its documents are not added to the index; run "
                "again against the index as it is now"
            )
        segments = list(self.base.manifest["segments"]) if self.base is not None else []
        present = set()
        for entry in fs.list_dir(self.spark, self.path):
            present.add(entry.name)
            # Staging directories of runs that failed before their commit.
            if entry.name.startswith(_STAGING) and not self._staging.endswith(entry.name):
                fs.delete(self.spark, entry.path)
        name = self._segment_name()
        fs.rename(self.spark, self._staging, f"{self.path}/{name}")
        segments.append(
            {
                "name": name,
                "documents": self._rows,
                "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sparkdedup": __version__,
            }
        )
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "commit": self._number,
            "params": index_params(self.config),
            "id_type": self._id_type,
            "id_col": self.config.id_col,
            "documents": int(sum(s["documents"] for s in segments)),
            "segments": segments,
            "retired": _retired(
                _manifest(self.spark, self.path), segments, present, self.retain_hours
            ),
        }
        switch_manifest(self.spark, self.path, json.dumps(manifest, indent=2, sort_keys=True))
        return manifest

    def abort(self) -> None:
        """Remove what `stage` wrote and give back a claim whose commit did not take place."""
        if self._staging is not None:
            fs.delete(self.spark, self._staging)
            self._staging = None
        self._release()


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _replaced_at(entry: dict[str, Any]) -> float | None:
    """When the segment `entry` of a manifest's ``retired`` list was replaced (epoch seconds);
    None when its record cannot be read."""
    try:
        return float(calendar.timegm(time.strptime(entry["retired"], "%Y-%m-%dT%H:%M:%SZ")))
    except (KeyError, TypeError, ValueError):
        return None


def _entry_hours(entry: dict[str, Any]) -> float:
    """The hours the retired segment `entry` is kept for (`RETAIN_HOURS` when unrecorded)."""
    hours = entry.get("retain_hours", RETAIN_HOURS)
    ok = isinstance(hours, (int, float)) and not isinstance(hours, bool) and 0 <= hours < math.inf
    return float(hours) if ok else RETAIN_HOURS


def _expired(entry: dict[str, Any], now: float, at_most: float | None = None) -> bool:
    """Whether the retired segment `entry` is past its hours at `now`, or past `at_most`
    hours when that is given and shorter (0: every entry, whatever its time says). An entry
    whose time cannot be read counts as expired."""
    hours = _entry_hours(entry) if at_most is None else min(_entry_hours(entry), at_most)
    replaced = _replaced_at(entry)
    return hours <= 0 or replaced is None or now - replaced >= hours * 3600


def _retired(
    current: dict[str, Any] | None,
    segments: list[dict[str, Any]],
    present: set[str],
    hours: float | None,
) -> list[dict[str, Any]]:
    """The ``retired`` list of the manifest that replaces `current` and lists `segments`:
    the segments `current` listed that the new one does not, replaced now and kept `hours`
    (None: `RETAIN_HOURS`), and those `current` already held as retired, still on disk
    (`present`) and not past their own hours (nor past `hours`, when given: `_expired`).
    Readers take only the listed segments; these stay for the runs that started before."""
    if current is None:
        return []
    now = time.time()
    names = {s["name"] for s in segments}
    kept = [
        r
        for r in current.get("retired", [])
        if r.get("name") in present and r["name"] not in names and not _expired(r, now, hours)
    ]
    keep = RETAIN_HOURS if hours is None else hours
    if keep > 0:
        kept += [
            {
                "name": s["name"],
                "documents": s["documents"],
                "retired": _stamp(now),
                "retain_hours": keep,
            }
            for s in current["segments"]
            if s["name"] not in names
        ]
    return kept


def _log_retired(path: str, manifest: dict[str, Any]) -> None:
    retired = manifest.get("retired", [])
    if retired:
        until = max((_replaced_at(r) or 0.0) + _entry_hours(r) * 3600 for r in retired)
        log.info(
            "sparkdedup: index %s: %d replaced segment(s) (%d documents) stay on disk for runs "
            "that were reading them, the last until %s; a later commit or `sparkdedup "
            "compact-index` deletes them then (`--retain-hours 0`: at once)",
            path,
            len(retired),
            sum(int(r.get("documents", 0)) for r in retired),
            _stamp(until),
        )


def delete_retired(spark: SparkSession, path: str, hours: float | None = None) -> list[str]:
    """Delete the segments the index at `path` lists as ``retired`` past their hours (or past
    `hours`, when given and shorter: 0 deletes them all); their names. The manifest is not
    rewritten (the next commit drops them from its list). Only segments no manifest reads
    since their replacement are touched, so no commit in progress is."""
    manifest = _manifest(spark, path)
    now = time.time()
    gone = []
    for entry in (manifest or {}).get("retired", []):
        name = str(entry.get("name", ""))
        if name.startswith("segment=") and "/" not in name and _expired(entry, now, hours):
            fs.delete(spark, f"{path.rstrip('/')}/{name}")
            gone.append(name)
    return gone


def compact_index(
    spark: SparkSession,
    path: str,
    *,
    option: str = "path",
    retain_hours: float | None = None,
) -> dict[str, Any]:
    """Merge the segments of the index at `path` into one, in place; returns its manifest.

    Every run with ``--index-out`` of the index it runs against adds one segment, and each
    segment adds its files to every later read of the index (README, "Incremental dedup").
    This rewrites the indexed documents, as they are, as one segment: a commit like a run's
    (under a claim of the next commit number, the manifest switched last, so a failure leaves
    the index as it was). The count written must be the manifest's, or nothing is committed.
    A run that commits to the index meanwhile makes this one fail, committing nothing
    (`IndexWriter.check_unchanged`). The old segments stay on disk for `retain_hours`, listed
    as ``retired`` in the manifest, so that runs reading the index as it was go on; a later
    commit or compaction deletes them (0: at once, and a run reading them then fails). Given,
    `retain_hours` also shortens the hours of segments replaced earlier. An index of at most
    one segment is left as it is, but for its retired segments past their hours, which are
    deleted (the manifest returned no longer lists them).

    Parameters
    ----------
    spark : the session.
    path : the index directory (`FuzzyIndex`).
    option : how errors name the path (the CLI's ``--index``).
    retain_hours : how long replaced segments stay for their readers (None: `RETAIN_HOURS`
        for those this replaces, their own for earlier ones).

    Returns
    -------
    dict
        The index's manifest: one segment, the same documents, the next commit number.

    Raises
    ------
    InputError
        No index at `path`; another run committing to it meanwhile, or a claim of its next
        commit left there (before any work); fewer or more rows read than the manifest lists.

    Cost: one read of the index and one write of it (about 180 bytes a document); nothing of it
    reaches the driver.
    """
    if retain_hours is not None:
        check_number("retain_hours", retain_hours, 0, finite=True)
    index = FuzzyIndex.open(spark, path, option)
    manifest = index.manifest
    if len(manifest["segments"]) <= 1:
        gone = delete_retired(spark, index.path, retain_hours)
        if gone:
            left = [r for r in manifest.get("retired", []) if r.get("name") not in gone]
            manifest = {**manifest, "retired": left}
        log.info(
            "sparkdedup: index %s has %d segment(s); nothing to compact%s",
            index.path,
            len(manifest["segments"]),
            f" (deleted the replaced {', '.join(gone)})" if gone else "",
        )
        return manifest
    params = {k: manifest["params"][k] for k in PARAMS}
    config = FuzzyConfig(id_col=manifest.get("id_col") or "id", **params)
    writer = IndexWriter(
        spark,
        index.path,
        config,
        overwrite=True,
        option=option,
        compact=True,
        retain_hours=retain_hours,
    )
    writer.check_claim()  # a claim left by a stopped run refuses the commit: before the work
    # The rows written are those of the manifest the writer's checks start from, read after
    # it: a commit before the writer was made is included, one after it refused (never
    # dropped from the index).
    index = FuzzyIndex.open(spark, path, option)
    if [s["name"] for s in index.manifest["segments"]] != writer._seen:
        writer.check_unchanged()  # raises, naming the change
        raise InputError(
            f"{option} {index.path!r} changed as the compaction started; compact again"
        )
    index.check_params(config, option)
    expected = index.documents
    try:
        written = writer.stage(index.table(index._schema_names()))
        if written != expected:
            raise InputError(
                f"{option} {index.path!r}: {written} documents were read from its segments "
                f"but its manifest lists {expected}; nothing was changed (a segment's files "
                "were changed or removed by hand?)"
            )
        merged = writer.commit()
    except BaseException:
        writer.abort()
        raise
    log.info(
        "sparkdedup: index %s: %d segments merged into %s (%d documents)",
        index.path,
        len(index.manifest["segments"]),
        merged["segments"][-1]["name"],
        merged["documents"],
    )
    return merged


def _small(df: DataFrame, broadcast: bool) -> DataFrame:
    return F.broadcast(df) if broadcast else df


#: Bits of the Bloom filter of the new data's band keys: 16 a key (two probes: about 1.4% of
#: the index's keys pass falsely), between 2^16 and 2^27 (16 MiB, what reaches the driver and
#: every task reading the index at the most, whatever the size of the new data; past 8 million
#: new keys more of the index passes, which costs LSH shuffle, never a wrong edge).
_BLOOM_BITS_PER_KEY = 16
_BLOOM_MIN_BITS, _BLOOM_MAX_BITS = 1 << 16, 1 << 27
#: Bytes a filter word takes when collected: its index (int32) and its bits (int64) in Arrow,
#: rounded up for the framing (measured: 524,288 words came to 6.2 MiB of task results).
_BLOOM_WORD_RESULT_BYTES = 16


def bloom_bits(keys: int, max_bits: int = _BLOOM_MAX_BITS) -> int:
    """The filter's size in bits for `keys` keys: a power of two, at most `max_bits` (at least
    2^16)."""
    bits = _BLOOM_MIN_BITS
    while bits < keys * _BLOOM_BITS_PER_KEY and bits < min(max_bits, _BLOOM_MAX_BITS):
        bits <<= 1
    return bits


def bloom_max_bits(spark: SparkSession) -> int:
    """The largest filter whose words may be collected to the driver: its words within a
    quarter of ``spark.driver.maxResultSize`` (`sizing.driver_result_bytes`; Spark's 1g
    default allows the 2^27 bits of the largest filter, a 4m maxResultSize 2^22). A smaller
    filter lets more of the index's keys pass: more LSH shuffle, never a wrong edge."""
    share = driver_result_bytes(spark)
    if share is None:
        return _BLOOM_MAX_BITS
    fits = share // _BLOOM_WORD_RESULT_BYTES * 64  # bits whose words fit the share
    return max(_BLOOM_MIN_BITS, min(_BLOOM_MAX_BITS, 1 << (fits.bit_length() - 1)))


#: Past this share of the index's keys passing, the filter costs more than it saves (measured
#: at 1M indexed and 100k new documents, one group of 20 bands: 11.8 s for the edges with a
#: saturated filter, 10.3 s without; 6.1 s with one that lets 38% through).
_BLOOM_MAX_PASS = 0.9


def bloom_pass_rate(keys: int, bits: int) -> float:
    """The expected share of keys not among `keys` that pass a two-probe filter of `bits`
    bits holding `keys` keys."""
    return float((1.0 - np.exp(-2.0 * keys / bits)) ** 2)


def index_pass_rate(spark: SparkSession, keys: int) -> float:
    """The share of the index's band keys that join `keys` new band keys in the LSH shuffle
    (`against_edges`): their filter's false passes (`bloom_pass_rate` of the largest filter
    the driver may collect), or all of them when that is over 90% and no filter is built."""
    rate = bloom_pass_rate(keys, bloom_bits(keys, bloom_max_bits(spark)))
    return 1.0 if rate > _BLOOM_MAX_PASS else rate


def against_shuffle_keys(spark: SparkSession, nodes: int, bands: int, index_docs: int) -> int:
    """Band keys in the LSH shuffle of a group of `bands` bands against an index of
    `index_docs` documents: the new ones (`nodes` a band) and the index's that pass their
    filter (`index_pass_rate`). The shuffle's partitions are sized from it, so that a task's
    keys fit its memory whatever share of the index passes (at 10^9 indexed documents, the
    1.4% a full-size filter lets through are 280 million keys)."""
    keys = nodes * bands
    return keys + math.ceil(index_docs * bands * index_pass_rate(spark, keys))


#: The cost model of `against_bands`, in core-microseconds, measured on local[2] with 935k
#: indexed and 100k new documents and a 4m maxResultSize (groups of 20, 10, 5 and 2 bands; the
#: edges stage took 9.5, 8.9, 9.7 and 17.4 s): an index key through the LSH shuffle costs about
#: 0.8, one more band group reads each index row once more (about 1.0, its trip through the
#: probe included) and has its own jobs (the filter, the probe, the write: about 0.8 s during
#: which every core of the cluster waits).
_KEY_CORE_US = 0.8
_ROW_CORE_US = 1.0
_GROUP_WALL_S = 0.8


def against_bands(
    spark: SparkSession, nodes: int, index_docs: int, num_bands: int, per_group: int
) -> int:
    """Bands per group of a run against an index of `index_docs` documents: the split of
    `num_bands` into groups of at most `per_group` (the LSH budget's, `fuzzy.lsh.auto_bands`)
    that costs least by the model above.

    Each group has a Bloom filter of its new band keys (`nodes` a band) within the largest
    filter the driver may collect (`bloom_max_bits`). More groups read the index's ids more
    often and run more jobs; fewer, larger groups fill their filters, and more of the index's
    keys pass into the shuffle (`bloom_pass_rate`; past 90%, all of them: `against_edges`).
    At the default 2^27 bits one group stays selective up to about 420,000 new documents, so
    small runs take one group; 10 million new documents against 10^9 indexed, on 1,000 cores,
    take four groups of five bands (28% of the index's keys passing rather than all)."""
    per_group_cost = _GROUP_WALL_S * 1e6 * parallelism(spark) + index_docs * _ROW_CORE_US
    key_cost = index_docs * num_bands * _KEY_CORE_US
    best, best_cost = per_group, float("inf")
    for size in range(per_group, 0, -1):  # largest groups first: ties take fewer groups
        passing = index_pass_rate(spark, nodes * size)
        cost = -(-num_bands // size) * per_group_cost + key_cost * passing
        if cost < best_cost:
            best, best_cost = size, cost
    return best


def bloom_filter(table: DataFrame, columns: list[str], bits: int) -> np.ndarray:
    """A Bloom filter of the bucket `columns` of `table` (uint64 words, `bits` bits, two
    probes, nulls left out: `sparkdedup.kernels.bloom`). Each task sets the bits of its rows in
    a bitmap of its own (`bits / 8` bytes, one compiled pass a column) and emits its non-zero
    words; their OR is aggregated on the executors, so the driver receives at most
    ``bits / 64`` rows."""
    from sparkdedup.compat import to_arrow

    def words(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from sparkdedup.kernels.bloom import set_bits

        bitmap = np.zeros(bits // 64, dtype=np.uint64)
        for batch in batches:
            for name in columns:
                column = batch.column(name)
                set_bits(
                    bitmap,
                    column.fill_null(0).to_numpy(zero_copy_only=False),
                    column.is_valid().to_numpy(zero_copy_only=False),
                )
        where = np.flatnonzero(bitmap)
        for lo in range(0, where.size, 1 << 16):
            chunk = where[lo : lo + (1 << 16)]
            yield pa.RecordBatch.from_arrays(
                [pa.array(chunk.astype(np.int32)), pa.array(bitmap[chunk].view(np.int64))],
                names=["w", "bits"],
            )

    partial = table.select(*columns).mapInArrow(words, "w int, bits bigint")
    table_words = to_arrow(partial.groupBy("w").agg(F.bit_or("bits").alias("bits")))
    bitmap = np.zeros(bits // 64, dtype=np.uint64)
    if table_words.num_rows:
        where = table_words.column("w").to_numpy(zero_copy_only=False)
        bitmap[where] = table_words.column("bits").to_numpy(zero_copy_only=False).view(np.uint64)
    return bitmap


def _filtered_keys(indexed: DataFrame, bands: list[int], bitmap: np.ndarray) -> DataFrame:
    """``[id, band, bucket]`` of the index's band keys that pass the filter `bitmap`: one
    compiled probe pass over each bucket column (`passing_rows`), on the executors; the rest
    never leaves its task."""
    id_type = indexed.schema["id"].dataType.simpleString()
    names = [band_col(k) for k in bands]

    def probe(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from sparkdedup.kernels.bloom import passing_rows

        for batch in batches:
            ids = batch.column(0)
            for k, name in zip(bands, names, strict=True):
                column = batch.column(name)
                hits = passing_rows(
                    bitmap,
                    column.fill_null(0).to_numpy(zero_copy_only=False),
                    column.is_valid().to_numpy(zero_copy_only=False),
                )
                if hits.size:
                    rows = pa.array(hits)
                    yield pa.RecordBatch.from_arrays(
                        [
                            ids.take(rows),
                            pa.array(np.full(hits.size, k, dtype=np.int32)),
                            column.take(rows),
                        ],
                        names=["id", "band", "bucket"],
                    )

    return indexed.mapInArrow(probe, f"id {id_type}, band int, bucket bigint")


def against_edges(
    table: DataFrame, index: FuzzyIndex, bands: list[int], partitions: int | None, *, keys: int
) -> DataFrame:
    """Edges of the buckets of `bands` that hold a new document (`table`, the new data's scan
    table with `keys` band keys), over the new documents and the indexed ones sharing their
    buckets.

    The new keys make a Bloom filter (`bloom_filter`: bounded, at most 16 MiB whatever their
    number), sent to the tasks that read the index's bucket columns of `bands`; only the index
    keys that pass it join the new keys in the LSH shuffle, and only buckets holding a new
    document give edges (a false pass costs a few rows, never an edge). The index is read,
    never shuffled, but for the keys that pass. Buckets of indexed documents alone are left
    out: they cannot change which new documents are removed. A filter that would let more
    than 90% of the index's keys through (`bloom_pass_rate`: far more new keys than the
    largest filter can hold, `against_bands`) is not built: the index's keys of `bands` then
    all go to the shuffle.
    """
    new_keys = group_keys(table, bands)
    wanted = bloom_bits(keys)
    bits = bloom_bits(keys, bloom_max_bits(table.sparkSession))
    index_keys = index.table(["id", *[band_col(k) for k in bands]], id_type(table))
    if index_pass_rate(table.sparkSession, keys) == 1.0:
        # Nearly every index key would pass: the filter's build and the index's trip through
        # Python cost more than the few keys it would keep out of the shuffle.
        log.info(
            "sparkdedup: %d new band keys would fill a Bloom filter of %d bits (its words must "
            "fit in a quarter of spark.driver.maxResultSize): the index's keys of bands %d-%d "
            "go to the LSH shuffle unfiltered (the same edges)",
            keys,
            bits,
            bands[0],
            bands[-1],
        )
        indexed = group_keys(index_keys, bands)
    else:
        if bits < wanted:
            log.info(
                "sparkdedup: the Bloom filter of %d new band keys has %d bits, not %d: its "
                "words must fit in a quarter of spark.driver.maxResultSize (more of the "
                "index's keys pass it: more LSH shuffle, the same edges)",
                keys,
                bits,
                wanted,
            )
        bitmap = bloom_filter(table, [band_col(k) for k in bands], bits)
        indexed = _filtered_keys(index_keys, bands, bitmap)
    both = new_keys.withColumn("_dedup_new", F.lit(True)).unionByName(
        indexed.withColumn("_dedup_new", F.lit(False))
    )
    anchored = bucket_anchors(both, partitions, needs="_dedup_new")
    # `_dedup_new` stays in the output: were it pruned from the join's side, that side would
    # read a shuffle of its own instead of the aggregation's (the union of the keys shuffled
    # twice). Callers keep src and dst.
    return anchored.where(not_anchor()).select("src", F.col("id").alias("dst"), "_dedup_new")


def indexed_ids(index: FuzzyIndex, ids: DataFrame, *, broadcast: bool) -> DataFrame:
    """``[id]``: the ids among `ids` (``[id]``) that the index holds."""
    return index.table(["id"], id_type(ids)).join(_small(ids, broadcast), on="id", how="left_semi")


def check_disjoint(index: FuzzyIndex, ids: DataFrame, id_col: str, *, broadcast: bool) -> None:
    """InputError naming up to five new ids (`ids`, ``[id]``) that the index already holds."""
    with one_round_limit(ids.sparkSession):
        found = indexed_ids(index, ids, broadcast=broadcast).limit(5).collect()
    clash = [r["id"] for r in found]
    if clash:
        shown = ", ".join(repr(v) for v in sorted(clash))
        raise InputError(
            f"id column {id_col!r}: new documents reuse ids of the index {index.path!r}, e.g. "
            f"{shown}; ids must be unique across the index and the new data (a document "
            "already indexed needs no second run)"
        )


def index_writer(
    spark: SparkSession,
    path: str,
    config: FuzzyConfig,
    *,
    overwrite: bool = False,
    option: str = "--index-out",
) -> IndexWriter:
    """The writer of a run's index at `path`: one more segment of the index the run is
    against when `path` is that index, else a new index (replacing an earlier index there only
    with `overwrite`)."""
    append = config.against is not None and fs.qualified(spark, config.against) == fs.qualified(
        spark, path
    )
    return IndexWriter(spark, path, config, append=append, overwrite=overwrite, option=option)
