"""The `sparkdedup` command line: `fuzzy`, `exact`, `semantic` and `remove`; also the spark-submit
main file.

Each workflow writes ``OUT/duplicates/`` (Parquet), ``OUT/deduplicated/`` (the input's format and
columns) and ``OUT/stats.json`` (fuzzy and exact also ``OUT/groups/``), and every stage under the cache path (default ``OUT/cache``) so
that a rerun resumes. Usage and input errors exit with code 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from sparkdedup import __version__, redact
from sparkdedup.config import (
    CC_BACKENDS,
    DEVICES,
    INDEX_RETAIN_HOURS,
    NORMALIZE_MODES,
    SIM_METRICS,
    VERIFY_MODES,
    WHICH_TO_KEEP,
    ExactConfig,
    FuzzyConfig,
    SemanticConfig,
    sort_keys,
)
from sparkdedup.errors import ConfigError, DedupError, InputError, SchemaError
from sparkdedup.io import BAD_RECORDS, SPARK_ERRORS, first_line

if TYPE_CHECKING:
    from sparkdedup.stages import StageRunner

log = logging.getLogger("sparkdedup")

_FUZZY = {f.name: f.default for f in dataclasses.fields(FuzzyConfig)}
_SEMANTIC = {f.name: f.default for f in dataclasses.fields(SemanticConfig)}
_EXACT = {f.name: f.default for f in dataclasses.fields(ExactConfig)}


_IDS_FILE = "_sparkdedup_ids.json"
# The observed metric of the final write naming the files whose texts are all null.
_ALL_NULL = "all_null_files"


#: The namespace attribute that holds the options given so far (`_Once`), removed once parsed.
_GIVEN = "_sparkdedup_given"


class _Once(argparse.Action):
    """An option that takes a value, given once: argparse would keep the last of several
    (``--input a --input b`` would read b alone, the rows of a neither kept nor removed nor
    counted; ``--duplicates`` or ``--against`` twice would leave the first one's duplicates
    in; ``--output a --output b`` or ``--index-out`` twice would write where the user did not
    look). Every plain value option of `_Parser` is one; repeatable options say
    ``action="append"``."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        given = getattr(namespace, _GIVEN, None)
        if given is None:
            given = set()
            setattr(namespace, _GIVEN, given)
        if self.dest in given:
            several = (
                f" (several directories: one {option} glob such as 'corpus/{{a,b}}')"
                if option in ("--input", "--duplicates")
                else ""
            )
            parser.error(
                f"{option} is given more than once, and only the last would be used; give "
                f"one{several}"
            )
        given.add(self.dest)
        setattr(namespace, self.dest, values)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit code 2), like every other input error, and
    every plain value option given at most once (`_Once`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The registry is shared with this parser's argument groups; subcommands' parsers
        # are _Parsers too (`add_subparsers` makes them of the parser's class).
        self.register("action", None, _Once)
        self.register("action", "store", _Once)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, rest = super().parse_known_args(args, namespace)
        if hasattr(parsed, _GIVEN):
            delattr(parsed, _GIVEN)
        return parsed, rest

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _common(p: argparse.ArgumentParser, *, output_help: str, dataset: bool = False) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input",
        help=(
            "input path or URI (file, directory or glob; a directory's subdirectories are read "
            "when named key=value, as Spark partitions, else with --read-option "
            "recursiveFileLookup=true)"
        ),
    )
    source.add_argument(
        "--input-table",
        metavar="NAME",
        help="input catalog table, [catalog.][database.]table (Hive, Unity, Glue: the "
        "session's catalog), instead of --input",
    )
    p.add_argument(
        "--input-format",
        default=None,
        type=_format_name,
        help="with --input (required there): jsonl (or json: one object a line), parquet, or any "
        "Spark data source name (orc, csv, text, avro, delta when its jar is on the classpath); "
        "the deduplicated output is written in it. An --input-table keeps its own format",
    )
    p.add_argument(
        "--read-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="reader option for the input (repeatable), e.g. header=true for CSV (default: none)",
    )
    p.add_argument(
        "--write-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="writer option for the deduplicated output (repeatable; default: the --read-option "
        "values, so that CSV written keeps its header)",
    )
    p.add_argument(
        "--id-col",
        default=None,
        help="unique id column (default: none; ids are derived from the rows, stable across "
        "order and partitioning)",
    )
    table_help = (
        "write the deduplicated rows to this catalog table (created LIKE --input-table, else in "
        "the --input-format), staged and renamed into place once the run's checks pass; an "
        "existing table is replaced only with --overwrite and only when sparkdedup wrote it "
        "(table property sparkdedup.written_by); never the input table"
    )
    if dataset:
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--output", help=output_help)
        target.add_argument("--output-table", metavar="NAME", help=table_help)
    else:
        p.add_argument("--output", required=True, help=output_help)
        p.add_argument(
            "--output-table",
            metavar="NAME",
            default=None,
            help=table_help + "; deduplicated/ is then not written (default: none)",
        )
    _session_options(p, log_level=False)
    p.add_argument(
        "--bad-records",
        default="fail",
        choices=BAD_RECORDS,
        help="a record that cannot be used (malformed JSON, invalid UTF-8, a field of another "
        "type, a missing id): fail names its file and line; skip leaves it out; quarantine "
        + (
            "is not for remove, which writes only the kept rows. "
            if dataset
            else "also writes it to OUTPUT/quarantine/. Skipped rows are counted in stats.json "
        )
        + "(default: %(default)s)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the outputs of an earlier sparkdedup run at --output or --output-table "
        "(files and tables sparkdedup did not write are never touched)",
    )
    _log_level_option(p)


def _session_options(p: argparse.ArgumentParser, *, log_level: bool = True) -> None:
    """Where the command runs (--master, --remote, --spark-conf), and its --log-level."""
    p.add_argument(
        "--master",
        default=None,
        help="Spark master, e.g. local[*] or spark://host:7077 (default: spark-submit's, else "
        "local[*])",
    )
    p.add_argument(
        "--remote",
        default=None,
        metavar="URL",
        help="run on a Spark Connect server: sc://host:port (Databricks, a Spark 4.1+ Connect "
        "endpoint; JSONL input needs a pyspark 4.2+ client), or local[N] for a local one "
        "pyspark starts; paths are then reached through this machine's file system (default: "
        "a classic session, see --master)",
    )
    p.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark setting (repeatable)",
    )
    if log_level:
        _log_level_option(p)


def _log_level_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="sparkdedup's log level; DEBUG also shows Spark's warnings and the traceback of "
        "an internal error (default: %(default)s)",
    )


def _workflow_common(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    _common(
        p,
        output_help="output directory: duplicates/, deduplicated/, stats.json (and groups/ "
        "for fuzzy and exact, quarantine/ with --bad-records quarantine, cache/ unless "
        "--cache-path puts the stage cache elsewhere)",
    )
    p.add_argument(
        "--cache-path",
        default=None,
        help="where each stage is written (default OUTPUT/cache); a rerun resumes from it",
    )
    if device:
        p.add_argument(
            "--device",
            default="auto",
            choices=DEVICES,
            help="where the kernels run; auto and gpu are decided by probing the executors "
            "(default: %(default)s)",
        )
    p.add_argument(
        "--explain",
        action="store_true",
        help="print the stages, the passes over the corpus and the parameters this run would "
        "use, and stop without starting Spark",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sparkdedup", description="Deduplicate text corpora on Apache Spark.")
    parser.add_argument("--version", action="version", version=f"sparkdedup {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fuzzy", help="near-duplicates by MinHash + LSH + connected components")
    _workflow_common(f)
    f.add_argument(
        "--text-col", default=_FUZZY["text_col"], help="text column (default: %(default)s)"
    )
    f.add_argument(
        "--char-ngrams",
        type=int,
        default=_FUZZY["char_ngrams"],
        help="shingle width in characters (default: %(default)s, as NeMo Curator)",
    )
    f.add_argument(
        "--num-bands",
        type=int,
        default=_FUZZY["num_bands"],
        help="LSH bands (default: %(default)s)",
    )
    f.add_argument(
        "--minhashes-per-band",
        type=int,
        default=_FUZZY["minhashes_per_band"],
        help="MinHash values per band; the signature has num-bands x this many "
        "(default: %(default)s)",
    )
    f.add_argument(
        "--seed",
        type=int,
        default=_FUZZY["seed"],
        help="seed of the MinHash permutations (default: %(default)s)",
    )
    f.add_argument(
        "--use-64-bit-hash",
        action="store_true",
        default=_FUZZY["use_64_bit_hash"],
        help="64-bit MurmurHash3 and permutations instead of 32-bit (default: off)",
    )
    f.add_argument(
        "--bands-per-iteration",
        type=int,
        default=_FUZZY["bands_per_iteration"],
        help="bands shuffled together, each group written before the next; 0 sizes the groups "
        "from spark.sparkdedup.lshGroupBytes, 2g by default (default: %(default)s)",
    )
    f.add_argument(
        "--cc-backend",
        default=_FUZZY["cc_backend"],
        choices=CC_BACKENDS,
        help="connected components: collect the edges to the driver (SciPy, cuGraph on GPU), "
        "a distributed large-star/small-star run, or auto: the driver up to "
        "--driver-cc-max-edges edges (default: %(default)s)",
    )
    f.add_argument(
        "--driver-cc-max-edges",
        type=int,
        default=_FUZZY["driver_cc_max_edges"],
        help="most edges collected to the driver (auto mode's switch-over point and the limit "
        "of --cc-backend driver); 0, the default, takes 131,072 (2 MiB at 16 bytes an edge), or a "
        "quarter of spark.driver.maxResultSize when that is smaller",
    )
    _keep_rule_options(f, against=True)
    _normalize_option(f, _FUZZY["normalize"])
    f.add_argument(
        "--verify",
        default=_FUZZY["verify"],
        choices=VERIFY_MODES,
        help="jaccard: check every LSH candidate pair with the exact Jaccard of its shingle "
        "sets, keep pairs >= --threshold, and draw candidates from more, shorter bands of the "
        "same hashes for recall (default: %(default)s, as NeMo Curator)",
    )
    f.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"Jaccard threshold of --verify jaccard, in (0, 1) (default: {_FUZZY['threshold']})",
    )
    f.add_argument(
        "--lsh-threshold",
        type=float,
        default=None,
        metavar="T",
        help="choose --num-bands and --minhashes-per-band from a Jaccard threshold in (0, 1): the "
        "S-curve optimum within their product of hashes (260 by default), as datasketch "
        "(sparkdedup.lsh_params); default: none, the given or default 20 x 13",
    )
    f.add_argument(
        "--against",
        default=None,
        metavar="INDEX",
        help="deduplicate --input against the index of an already deduplicated corpus (written "
        "by --index-out): only --input's documents are removed, those near an indexed document "
        "and all but one of each group among themselves; needs --id-col and the index's "
        "parameters",
    )
    f.add_argument(
        "--index-out",
        default=None,
        metavar="INDEX",
        help="write the index of the documents this run keeps (ids, text hashes, band buckets) "
        "for later runs --against it; the --against path itself gets the kept new documents "
        "as one more segment (needs --id-col)",
    )

    e = sub.add_parser(
        "exact", help="exact duplicates: identical texts (after --normalize), one kept per group"
    )
    _workflow_common(e, device=False)
    e.add_argument(
        "--text-col", default=_EXACT["text_col"], help="text column (default: %(default)s)"
    )
    _normalize_option(e, _EXACT["normalize"])
    _keep_rule_options(e, against=False)

    s = sub.add_parser(
        "semantic", help="semantic near-duplicates (SemDeDup: embeddings + KMeans + cosine)"
    )
    _workflow_common(s)
    source = s.add_mutually_exclusive_group(required=True)
    source.add_argument("--text-col", default=None, help="text column to embed with --model")
    source.add_argument(
        "--embedding-col", default=None, help="column holding precomputed embeddings"
    )
    s.add_argument(
        "--model",
        default=_SEMANTIC["model"],
        help="sentence-transformers model name or local path (default: %(default)s)",
    )
    s.add_argument(
        "--embedding-batch-size",
        type=int,
        default=_SEMANTIC["embedding_batch_size"],
        help="texts per forward pass of the model (default: %(default)s)",
    )
    s.add_argument(
        "--n-clusters",
        type=int,
        default=_SEMANTIC["n_clusters"],
        help="KMeans k (default: %(default)s)",
    )
    s.add_argument(
        "--fit-fraction",
        type=float,
        default=_SEMANTIC["fit_fraction"],
        help="fit KMeans on about this fraction of the documents, then assign every document "
        "(default: %(default)s)",
    )
    s.add_argument(
        "--max-iter",
        type=int,
        default=_SEMANTIC["max_iter"],
        help="KMeans maximum iterations (default: %(default)s)",
    )
    s.add_argument(
        "--tol",
        type=float,
        default=_SEMANTIC["tol"],
        help="KMeans convergence tolerance (default: %(default)s)",
    )
    s.add_argument(
        "--eps",
        type=_eps_list,
        default=[_SEMANTIC["eps"]],
        help="remove a document whose cosine similarity to a higher-ranked one of its cluster "
        "is >= 1 - eps; several, comma-separated (0.01,0.05,0.1), are all counted from one set "
        "of scores in stats.json (eps_summary) and the duplicates are the first one's "
        f"(default: {_SEMANTIC['eps']})",
    )
    s.add_argument(
        "--which-to-keep",
        default=_SEMANTIC["which_to_keep"],
        choices=WHICH_TO_KEEP,
        help="ranking in a cluster, rank 0 kept: hard (farthest from the centroid first), easy "
        "(nearest first) or random (default: %(default)s)",
    )
    s.add_argument(
        "--sort-cols",
        default=None,
        help="custom ranking, overriding --which-to-keep: comma-separated columns, each COL or "
        "COL:desc (largest first) or COL:asc (smallest first); nulls and NaN last, ties by id "
        "(default: none)",
    )
    s.add_argument(
        "--sim-metric",
        default=_SEMANTIC["sim_metric"],
        choices=SIM_METRICS,
        help="distance to the centroid that ranks documents (default: %(default)s)",
    )
    s.add_argument(
        "--pairwise-batch-size",
        type=int,
        default=_SEMANTIC["pairwise_batch_size"],
        help="columns per block of the pairwise similarities; memory 4*n*batch bytes for a "
        "cluster of n (default: %(default)s)",
    )
    s.add_argument(
        "--max-cluster-size",
        type=int,
        default=_SEMANTIC["max_cluster_size"],
        help="most documents of a cluster one task compares at once; larger clusters are split "
        "into blocks compared pair by pair; 0 derives it from spark.sparkdedup."
        "pairwiseWorkerBytes, 1g by default (default: %(default)s)",
    )
    s.add_argument(
        "--seed", type=int, default=_SEMANTIC["seed"], help="KMeans seed (default: %(default)s)"
    )
    s.add_argument(
        "--rank-seed",
        type=int,
        default=_SEMANTIC["rank_seed"],
        help="seed of --which-to-keep random, apart from the KMeans seed (default: %(default)s)",
    )

    r = sub.add_parser("remove", help="remove the ids listed in a duplicates directory")
    _common(
        r, output_help="where the deduplicated rows are written (the input's format)", dataset=True
    )
    r.add_argument(
        "--duplicates",
        required=True,
        help="duplicates directory (Parquet with column id)",
    )

    c = sub.add_parser(
        "compact-index",
        help="merge the segments of a fuzzy index (--index-out) into one, in place",
        description="Merge the segments of a fuzzy index into one, in place: each run "
        "--against the index with --index-out of it adds a segment, and each segment adds its "
        "files to every later read. One read and one write of the index; a run writing to the "
        "index meanwhile makes this one commit nothing. The old segments stay on disk for "
        "--retain-hours, for the runs reading the index as it was.",
    )
    c.add_argument("--index", required=True, help="the index directory")
    c.add_argument(
        "--retain-hours",
        type=_hours,
        default=None,
        metavar="H",
        help="how long the segments it replaces stay on disk, for runs that were reading them "
        "(listed as retired in the manifest, read by no run that starts after; default: "
        f"{INDEX_RETAIN_HOURS:g}); given, also the most that segments replaced earlier stay "
        "(0 deletes them all at once, and a run still reading them then fails)",
    )
    _session_options(c)
    # What the commands that read and write corpora have, and this one has not.
    c.set_defaults(
        input=None,
        input_table=None,
        input_format=None,
        output=None,
        output_table=None,
        overwrite=False,
        bad_records="fail",
        read_option=[],
        write_option=[],
        id_col=None,
        verify="none",
    )
    return parser


def _keep_rule_options(p: argparse.ArgumentParser, *, against: bool) -> None:
    """The id check and keep rule options of the fuzzy and exact commands."""
    p.add_argument(
        "--assume-unique-ids",
        action="store_true",
        help="skip the check that --id-col is unique (one shuffle of the ids, a few bytes a "
        "row)"
        + (
            " and, with --against, that no new id is in the index already (a read of the "
            "index's ids)"
            if against
            else ""
        )
        + "; a repeated id then gives wrong output without an error",
    )
    p.add_argument(
        "--priority-col",
        default=None,
        help="keep the row with the largest value of this column per group; nulls and NaN rank "
        "last (default: the smallest id)",
    )
    p.add_argument(
        "--priority-ascending", action="store_true", help="keep the smallest priority value instead"
    )


def _normalize_option(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--normalize",
        default=default,
        choices=NORMALIZE_MODES,
        help="compare texts after normalising them, cumulatively: whitespace (runs of Unicode "
        "whitespace to one space, trimmed), lower (also Unicode lowercase), nfkc (also NFKC "
        "first); the output keeps the original texts (default: %(default)s, as NeMo Curator)",
    )


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = float("nan")
    if not 0 <= hours < float("inf"):  # NaN too
        raise argparse.ArgumentTypeError(f"must be a finite number of hours >= 0, got {text!r}")
    return hours


def _format_name(text: str) -> str:
    from sparkdedup.io import check_format

    try:
        check_format(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return text


#: Formats whose values need no parsing (typed files, or lines of text): the session's settings
#: do not change how they read.
_UNPARSED_FORMATS = ("parquet", "orc", "delta", "avro", "text")
#: Session settings that change the values a text format's reader makes (a timestamp parsed in
#: the session's time zone, as a TIMESTAMP or TIMESTAMP_NTZ, by which parser), and with them
#: the derived ids, which hash every column.
_PARSING_SETTINGS = (
    "spark.sql.session.timeZone",
    "spark.sql.legacy.timeParserPolicy",
    "spark.sql.timestampType",
    "spark.sql.legacy.csv.enableDateTimeParsingFallback",
    "spark.sql.legacy.json.enableDateTimeParsingFallback",
)


def _parsing_settings(spark: Any, fmt: str | None) -> dict[str, Any]:
    """The stage cache's key's part for the session settings a text format's reader follows
    (`_PARSING_SETTINGS`, as in force: the time zone unset is the JVM's); none for the
    formats that parse nothing. A table's format is not looked up: it always gets them."""
    from sparkdedup.io import canonical_format

    if fmt is not None and canonical_format(fmt) in _UNPARSED_FORMATS:
        return {}
    return {"parsing": {key: _setting(spark, key) for key in _PARSING_SETTINGS}}


def _setting(spark: Any, key: str) -> str | None:
    """A session setting as in force (its default when unset); None where Spark has none."""
    try:
        return spark.conf.get(key)
    except Exception:  # noqa: BLE001 - a setting this Spark does not know, with no default
        return None


def _options(items: list[str], flag: str) -> dict[str, str]:
    """KEY=VALUE items as a dict; ConfigError naming `flag` for a malformed one."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} must be KEY=VALUE, got {redact.malformed(item)}")
        out[key.strip()] = value
    return out


def _write_options(args: argparse.Namespace) -> dict[str, str]:
    """The deduplicated output's writer options: the reader's, overridden by --write-option."""
    return {
        **_options(args.read_option, "--read-option"),
        **_options(args.write_option, "--write-option"),
    }


def _eps_list(text: str) -> list[float]:
    """``--eps``: one number or several, comma-separated, each in [0, 1]."""
    try:
        values = [float(part) for part in text.split(",")]  # a blank entry is a ValueError
    except ValueError:
        values = []
    if not values or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected numbers between 0 and 1, comma-separated, got {text!r}"
        )
    return values


def fuzzy_config(args: argparse.Namespace) -> FuzzyConfig:
    bands, rows = args.num_bands, args.minhashes_per_band
    if args.lsh_threshold is not None:
        from sparkdedup.tuning import lsh_params

        try:
            bands, rows = lsh_params(args.lsh_threshold, bands * rows)
        except ConfigError as err:
            raise ConfigError(f"--lsh-threshold: {err}") from err
    return FuzzyConfig(
        text_col=args.text_col,
        id_col=args.id_col,
        char_ngrams=args.char_ngrams,
        num_bands=bands,
        minhashes_per_band=rows,
        seed=args.seed,
        use_64_bit_hash=args.use_64_bit_hash,
        bands_per_iteration=args.bands_per_iteration,
        cc_backend=args.cc_backend,
        driver_cc_max_edges=args.driver_cc_max_edges,
        priority_col=args.priority_col,
        priority_ascending=args.priority_ascending,
        device=args.device,
        checkpoint_dir=f"{_cache_path(args).rstrip('/')}/_checkpoints",
        assume_unique_ids=args.assume_unique_ids,
        normalize=args.normalize,
        verify=args.verify,
        threshold=_FUZZY["threshold"] if args.threshold is None else args.threshold,
        against=args.against,
    )


def exact_config(args: argparse.Namespace) -> ExactConfig:
    return ExactConfig(
        text_col=args.text_col,
        id_col=args.id_col,
        priority_col=args.priority_col,
        priority_ascending=args.priority_ascending,
        assume_unique_ids=args.assume_unique_ids,
        normalize=args.normalize,
    )


def workflow_config(args: argparse.Namespace) -> Any:
    """The config of a workflow command."""
    if args.command == "fuzzy":
        return fuzzy_config(args)
    if args.command == "exact":
        return exact_config(args)
    return semantic_config(args)


def semantic_config(args: argparse.Namespace) -> SemanticConfig:
    sort_cols = tuple(c.strip() for c in args.sort_cols.split(",")) if args.sort_cols else None
    return SemanticConfig(
        text_col=args.text_col or _SEMANTIC["text_col"],
        embedding_col=args.embedding_col,
        id_col=args.id_col,
        model=args.model,
        embedding_batch_size=args.embedding_batch_size,
        n_clusters=args.n_clusters,
        max_iter=args.max_iter,
        tol=args.tol,
        seed=args.seed,
        fit_fraction=args.fit_fraction,
        eps=args.eps[0],
        which_to_keep=args.which_to_keep,
        sort_cols=sort_cols,
        rank_seed=args.rank_seed,
        sim_metric=args.sim_metric,
        pairwise_batch_size=args.pairwise_batch_size,
        max_cluster_size=args.max_cluster_size,
        device=args.device,
    )


def explain(args: argparse.Namespace, config: Any) -> str:
    """What a workflow run would do, from its arguments alone (no Spark, no data read): its
    inputs and outputs, its stages, its passes over the corpus and every parameter."""
    derived = args.id_col is None
    ids = "derived from the rows" if derived else f"column {args.id_col!r}"
    lines = [
        f"sparkdedup {args.command} (explain: nothing is run)",
        f"  input:   {_source(args)}, ids {ids}",
        f"  output:  {args.output.rstrip('/')}/ (duplicates/, "
        + ("" if args.output_table else "deduplicated/, ")
        + "stats.json)"
        + (f", deduplicated rows to table {args.output_table}" if args.output_table else "")
        + f"; stage cache {_cache_path(args)}; bad records: {args.bad_records}",
        "  session: "
        + (
            f"Spark Connect {args.remote}"
            if args.remote
            else f"classic, {args.master or 'default master'}"
        ),
        "  stages:",
    ]
    if args.command == "fuzzy":
        bands = (
            f"{config.bands_per_iteration} bands a group"
            if config.bands_per_iteration
            else "as many bands a group as keep its keys within spark.sparkdedup.lshGroupBytes, "
            "2g by default"
        )
        stages = [
            (
                "minhash",
                "read 1 of the corpus: text hashes, MinHash and band buckets of each "
                "distinct text (a narrow table)",
            ),
            (
                "ids",
                "derived ids: ranked later, for the rows the output names only"
                if derived
                else "one shuffle of the ids to check them unique"
                + (" (skipped: --assume-unique-ids)" if config.assume_unique_ids else ""),
            ),
            ("edges", f"LSH: one shuffle of narrow keys per band group ({bands})"),
            (
                "components",
                f"connected components ({config.cc_backend}): on the driver up to "
                + (
                    f"{config.driver_cc_max_edges:,} edges"
                    if config.driver_cc_max_edges
                    else "131,072 edges (or a quarter of spark.driver.maxResultSize, if smaller)"
                )
                + ", else distributed rounds",
            ),
            (
                "duplicates",
                "exact-copy and keep-rule groups: narrow shuffles"
                + ("; then the derived ids of the rows named" if derived else ""),
            ),
            (
                "write",
                "read 2 of the corpus: the removed rows dropped by an anti-join "
                "(broadcast up to 128 MiB of hash table and a sixteenth of the heap, else one "
                "shuffle of the rows)",
            ),
        ]
        passes = "2 reads of the corpus, 0 or 1 shuffle of its rows; every other shuffle is narrow"
        index_out = getattr(args, "index_out", None)
        if config.against is not None:
            against = [
                (
                    "index_ids",
                    f"one read of the id column of the index {config.against}: no new id "
                    "may be indexed already"
                    + (" (skipped: --assume-unique-ids)" if config.assume_unique_ids else ""),
                ),
                (
                    "edges",
                    f"LSH against the index, per band group ({bands}; fewer bands a group "
                    "when smaller Bloom filters pay for reading the index again): a Bloom "
                    "filter of the group's new band keys (at most 16 MiB and a quarter of "
                    "spark.driver.maxResultSize); one read of the index's bucket columns of "
                    "the group, whose keys that pass the filter join the new keys in one "
                    "shuffle of narrow keys; only those keys of the index are shuffled (all "
                    "of them where a filter would let over 90% through)",
                ),
            ]
            at = [name for name, _ in stages].index("edges")
            stages[at : at + 1] = against
            matched = (
                "the new documents and the indexed ones they matched: a group holding an "
                "indexed document loses all its new ones, the others keep one; only new "
                "documents are removed"
            )
            stages = [(n, matched if n == "duplicates" else what) for n, what in stages]
            passes += (
                "; the index (never its texts): "
                + ("" if config.assume_unique_ids else "its id column once, and ")
                + "its bucket columns once with the id column again per band group"
            )
        if index_out is not None:
            where = (
                f"one more segment of the index {index_out} (its other segments untouched)"
                if config.against is not None and _same_path(index_out, config.against)
                else f"a new index at {index_out}"
            )
            stages.append(
                (
                    "index",
                    "the kept documents' ids, text hashes and band buckets, from the minhash "
                    f"stage's table (not the corpus): {where}, committed with the outputs",
                )
            )
        if config.verify == "jaccard":
            from sparkdedup.tuning import verify_bands

            bands, rows = verify_bands(config.threshold, config.num_hashes)
            names = [name for name, _ in stages]
            stages.insert(
                names.index("components"),
                (
                    "verify",
                    f"LSH from {bands} bands of {rows} hashes; one more read of the corpus: the "
                    "texts of the documents in candidate edges, shuffled with the edges (once "
                    f"by each end), exact Jaccard, edges >= {config.threshold:g} kept",
                ),
            )
            stages = [
                (name, what.replace("read 2 of", "read 3 of") if name == "write" else what)
                for name, what in stages
            ]
            passes = (
                "3 reads of the corpus (scan, verify, write), 0 or 1 shuffle of its rows; the "
                "candidates' texts shuffled twice; every other shuffle is narrow"
            )
    elif args.command == "exact":
        stages = [
            (
                "hashes",
                "read 1 of the corpus: a 128-bit hash of each text"
                + (f" normalised ({config.normalize})" if config.normalize != "none" else "")
                + " (a narrow table)",
            ),
            (
                "ids",
                "derived ids: ranked later, for the rows the output names only"
                if derived
                else "one shuffle of the ids to check them unique"
                + (" (skipped: --assume-unique-ids)" if config.assume_unique_ids else ""),
            ),
            (
                "duplicates",
                "one shuffle of the narrow table by text hash; the keep rule per group"
                + ("; then the derived ids of the rows named" if derived else ""),
            ),
            (
                "write",
                "read 2 of the corpus: the removed rows dropped by an anti-join; groups/ from "
                "the duplicates",
            ),
        ]
        passes = "2 reads of the corpus, 0 or 1 shuffle of its rows; every other shuffle is narrow"
    else:
        source = (
            f"precomputed embeddings in {config.embedding_col!r}"
            if config.embedding_col
            else f"embed {config.text_col!r} with {config.model} (one pass, the dominant CPU cost)"
        )
        stages = [
            (
                "ids",
                "one shuffle of the rows, written to the cache"
                if derived
                else "one job over the id column (checked, counted; the corpus is not copied)",
            ),
            ("embeddings", source),
            (
                "kmeans",
                f"k={config.n_clusters}, fit on "
                + ("all" if config.fit_fraction == 1 else f"about {config.fit_fraction:g} of")
                + " the documents, "
                f"max_iter={config.max_iter}; every document assigned in float32 blocks",
            ),
            (
                "pairwise",
                "per cluster, float32 similarities to higher-ranked documents; clusters "
                "above "
                + (
                    f"{config.max_cluster_size:,}"
                    if config.max_cluster_size
                    else "spark.sparkdedup.pairwiseWorkerBytes (1g)"
                )
                + " split into blocks",
            ),
            (
                "duplicates",
                f"float32 score >= 1 - eps (in float64), eps {', '.join(f'{e:g}' for e in args.eps)}",
            ),
            ("write", "the corpus again: the removed rows dropped by an anti-join"),
        ]
        passes = (
            "reads of the corpus: the embedding (or the embedding column) and the final write; "
            "the embeddings are written once to the stage cache and read from it"
        )
    lines += [f"    {name:<11} {what}" for name, what in stages]
    lines.append(f"  passes:  {passes}")
    params = {k: v for k, v in dataclasses.asdict(config).items()}
    lines.append("  parameters: " + ", ".join(f"{k}={v!r}" for k, v in sorted(params.items())))
    return "\n".join(lines)


def _same_path(a: str, b: str) -> bool:
    """Whether two paths name the same place, as far as is known without a filesystem (local
    paths made absolute; URIs compared as written, less a trailing slash)."""

    def norm(path: str) -> str:
        path = path.rstrip("/") or "/"
        return path if "://" in path or path.startswith("file:") else os.path.abspath(path)

    return norm(a) == norm(b)


def _source(args: argparse.Namespace) -> str:
    """The input as the messages name it."""
    if args.input_table is not None:
        return f"table {args.input_table}"
    return f"{args.input} ({args.input_format})"


#: The master URLs Spark itself knows (SparkContext's and spark-submit's parsers).
_MASTER_URL = re.compile(
    r"local(\[(\d+|\*)(\s*,\s*\d+)?\])?|local-cluster\[\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\]"
    r"|yarn|(spark|k8s|mesos)://.+"
)


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage rules argparse cannot state: --input needs its format, a table keeps its own."""
    from sparkdedup.tables import check_name

    if getattr(args, "threshold", None) is not None and args.verify != "jaccard":
        parser.error(
            "--threshold is the Jaccard threshold of --verify jaccard, which checks each "
            "candidate pair: add --verify jaccard (for LSH alone, --lsh-threshold picks the "
            "bands from a threshold)"
        )
    if getattr(args, "lsh_threshold", None) is not None and args.verify == "jaccard":
        parser.error(
            "--lsh-threshold picks the bands of LSH alone; with --verify jaccard the bands "
            "follow --threshold (the Jaccard threshold each candidate pair is checked against): "
            "drop --lsh-threshold"
        )
    master = getattr(args, "master", None)
    if master is not None and not _MASTER_URL.fullmatch(master):
        parser.error(
            f"--master {master!r} is not a Spark master URL: local, local[N], local[*], "
            "local-cluster[N,C,M], spark://HOST:PORT, yarn or k8s://HOST:PORT (another cluster "
            "manager's: launch through spark-submit --master, without --master here)"
        )
    if args.input is not None and args.input_format is None:
        parser.error("--input needs --input-format (jsonl, parquet, orc, csv, ...)")
    if args.input_table is not None and args.input_format is not None:
        parser.error(
            "--input-format is for --input; an --input-table is read, and written, in its own "
            "format"
        )
    if args.output_table is not None and args.input_format is not None:
        from sparkdedup.io import canonical_format

        if canonical_format(args.input_format) == "jsonl":
            parser.error(
                "--output-table needs typed rows: JSONL input is kept line for line and is "
                "written to --output; convert the corpus to Parquet (or read it from a table) to "
                "write a table"
            )
    if args.command == "remove" and args.bad_records == "quarantine":
        parser.error(
            "remove writes only the kept rows, at --output: --bad-records quarantine is for "
            "fuzzy, exact and semantic (OUTPUT/quarantine/); use skip (the bad records are "
            "counted and left out) or fail"
        )
    for option in ("--against", "--index-out"):
        if getattr(args, option[2:].replace("-", "_"), None) is None:
            continue
        if args.id_col is None:
            parser.error(
                f"{option} needs --id-col: an index identifies documents by ids that stay the "
                "same from run to run, which derived ids do not"
            )
        if args.verify != "none":
            parser.error(
                f"{option} works with --verify none only: an index holds band buckets, not "
                "texts, so a pair with an indexed document cannot be verified"
            )
    if hasattr(args, "write_option"):
        try:
            _write_options(args)  # a malformed KEY=VALUE is refused before Spark starts
        except ConfigError as err:
            parser.error(str(err))
    for option, name in (
        ("--input-table", args.input_table),
        ("--output-table", args.output_table),
    ):
        if name is not None:
            try:
                check_name(name, option)
            except ConfigError as err:
                parser.error(str(err))


def _session_table_names(spark: Any, args: argparse.Namespace) -> None:
    """``spark_catalog.db.t`` as ``db.t`` while the session catalog is the current one (Spark's
    DDL takes two parts there: ``CREATE TABLE LIKE`` on 3.5, ``RENAME TO``)."""
    from sparkdedup.tables import session_name

    for attribute in ("input_table", "output_table"):
        if getattr(args, attribute, None) is not None:
            setattr(args, attribute, session_name(spark, getattr(args, attribute)))


def _output_format(spark: Any, args: argparse.Namespace) -> str:
    """The format of the deduplicated rows in a directory: the input's (a table's provider
    when it is a file source, else Parquet)."""
    from sparkdedup.tables import describe, exists, output_format

    args.input_provider = None
    if args.input_table is None:
        return args.input_format
    if not exists(spark, args.input_table):
        raise InputError(
            f"--input-table {args.input_table!r} does not exist in the session's catalog"
        )
    info = describe(spark, args.input_table)
    # A Hive-format table's rows come from files of its serde (Parquet ones are read as such).
    parquet = "parquet" in (info.serde or "").lower()
    args.input_provider = "parquet" if info.provider == "hive" and parquet else info.provider
    return output_format(info)


def _output_table(spark: Any, args: argparse.Namespace) -> Any:
    """The --output-table of this run, checked (None without one)."""
    from sparkdedup.tables import OutputTable

    if args.output_table is None:
        return None
    table = OutputTable(
        spark,
        args.output_table,
        overwrite=args.overwrite,
        like=args.input_table,
        fmt=args.input_format or "parquet",
        options=_table_options(spark, args),
    )
    table.prepare()
    return table


def _table_options(spark: Any, args: argparse.Namespace) -> dict[str, str]:
    """The writer options of an --output-table from files (none for a table created LIKE the
    --input-table, which takes no options). A table keeps its writer's options as its OPTIONS
    in the catalog, shown to whoever can describe it, so none may be a credential
    (`redact.is_credential`): the --read-option credentials, given for the input, are left
    out, and one among --write-option is an error naming the remedy (the session's Hadoop
    settings, which no table stores)."""
    if args.input_table is not None:
        return {}
    given = _options(args.write_option, "--write-option")
    for key in given:
        if redact.is_credential(spark, key):
            raise ConfigError(
                f"--write-option {key} is a credential, and --output-table "
                f"{args.output_table!r} would store it with its OPTIONS in the catalog (shown "
                "to whoever can describe the table); give it to the session instead: "
                f"--spark-conf spark.hadoop.{key}=..., with a spark.redaction.regex that "
                "matches it so that Spark's UI and event log hide it too"
            )
    read = _options(args.read_option, "--read-option")
    return {**{k: v for k, v in read.items() if not redact.is_credential(spark, k)}, **given}


def _check_catalog_outlives_run(spark: Any, args: argparse.Namespace, started: bool) -> None:
    """ConfigError for an --output-table in Spark's built-in in-memory catalog when that ends
    with this run (a session, or local Connect server, the command started): the table would
    be gone when the command returns, its files left in the working directory's
    ``spark-warehouse/``. Tables of other catalogs (``cat.db.t``, a default catalog set, a
    session catalog plugin such as Unity Catalog's or Iceberg's) are their catalog's."""
    if args.output_table is None or not started:
        return
    if args.remote and not args.remote.startswith("local"):
        return  # a server of its own, whose catalog outlives the run
    if _setting(spark, "spark.sql.catalogImplementation") != "in-memory":
        return
    parts = [p.strip("`").lower() for p in args.output_table.strip().split(".")]
    named = parts[0] if len(parts) == 3 else None
    catalog = named or (_setting(spark, "spark.sql.defaultCatalog") or "spark_catalog").lower()
    plugin = _setting(spark, "spark.sql.catalog.spark_catalog") or ""
    if catalog != "spark_catalog" or (plugin and not plugin.endswith(".DeltaCatalog")):
        return
    raise ConfigError(
        f"--output-table {args.output_table!r}: the session's catalog is in-memory "
        "(spark.sql.catalogImplementation=in-memory), so the table would be gone when this "
        "command ends, its files left in spark.sql.warehouse.dir; write to a persistent catalog "
        "(--spark-conf spark.sql.catalogImplementation=hive, a metastore, Unity Catalog) or to "
        "--output"
    )


def _write_kept(args: argparse.Namespace, kept: Any, path: str | None, table: Any) -> None:
    """The deduplicated rows into --output-table's staging table, else at `path`."""
    from sparkdedup.io import write_output

    if table is not None:
        table.write(kept)
    else:
        assert path is not None
        write_output(kept, path, args.write_format, _write_options(args))


def _check_writer(spark: Any, args: argparse.Namespace, raw: Any, out: Any) -> None:
    """Refuse writer options (--write-option, and the --read-option values the writer takes
    too) that the deduplicated output's writer rejects, before the work that precedes the
    write: the input's columns, no rows, written under the output's staging directory and
    deleted. Nothing to check, and no job, without options or with --output-table."""
    from sparkdedup.fs import delete
    from sparkdedup.io import write_output

    options = _write_options(args)
    if not options or args.output_table is not None:
        return
    probe = f"{out.staging}/_write_check"
    try:
        write_output(raw.limit(0), probe, args.write_format, options)
    except Exception as err:  # noqa: BLE001 - the writer's refusal, named as the options'
        given = ", ".join(f"{k}={v}" for k, v in redact.options(spark, options).items())
        raise ConfigError(
            f"the {args.write_format} writer refuses the options {given} (--write-option, "
            f"or --read-option, which the writer takes too): {first_line(err)}"
        ) from err
    finally:
        delete(spark, probe)


def _cache_path(args: argparse.Namespace) -> str:
    return args.cache_path or f"{args.output.rstrip('/')}/cache"


def _cache_in_output(spark: Any, args: argparse.Namespace) -> tuple[str, ...]:
    """The stage cache's path relative to --output when it lies inside (the default
    OUTPUT/cache, or a --cache-path there): kept by the output rules, so that a rerun after a
    failed run resumes from it without --overwrite."""
    if args.cache_path is None:
        return ("cache",)
    from sparkdedup.fs import qualified

    out = qualified(spark, args.output).rstrip("/")
    cache = qualified(spark, args.cache_path).rstrip("/")
    return (cache[len(out) + 1 :],) if cache.startswith(out + "/") else ()


#: What a workflow writes inside --output.
_WORKFLOW_OUTPUTS = ("duplicates", "deduplicated", "groups", "stats.json", "quarantine")
#: Spark's own log level for each --log-level: Spark's warnings and errors would bury the
#: one-line message a failure ends with, so they show only at DEBUG.
_SPARK_LOG_LEVEL = {"DEBUG": "WARN", "INFO": "FATAL", "WARNING": "FATAL", "ERROR": "FATAL"}


def _spark_conf(args: argparse.Namespace) -> dict[str, str]:
    return _options(args.spark_conf, "--spark-conf")


def _starts_jvm(conf: dict[str, str], master: str | None) -> bool:
    """Whether building the session launches a driver JVM in this process (not under
    spark-submit, not Spark Connect, no JVM started before)."""
    from pyspark import SparkContext

    remote = conf.get("spark.remote") or os.environ.get("SPARK_REMOTE")
    return (
        SparkContext._gateway is None  # noqa: SLF001 - the only sign that no JVM is up yet
        and "PYSPARK_GATEWAY_PORT" not in os.environ
        and not remote
        and not str(master or conf.get("spark.master", "")).startswith("sc://")
    )


def _session(args: argparse.Namespace) -> tuple[Any, bool]:
    """The Spark session, and whether this call started it (then `main` stops it)."""
    from pyspark.sql import SparkSession

    conf = _spark_conf(args)
    if args.remote:
        if args.master:
            raise ConfigError("give --remote (Spark Connect) or --master, not both")
        return _connect_session(args, conf)
    builder = SparkSession.builder.appName(f"sparkdedup {args.command}")
    for key, value in conf.items():
        builder = builder.config(key, value)
    master = args.master or conf.get("spark.master")
    if args.master:
        builder = builder.master(args.master)
    elif master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Not under spark-submit and no master given: pyspark starts its own local JVM.
        master = "local[*]"
    if master and master.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        # Local Python workers must run this interpreter, the one that has sparkdedup
        # (pyspark's default is whatever `python3` is on the PATH).
        os.environ["PYSPARK_PYTHON"] = sys.executable
    spark_level = _SPARK_LOG_LEVEL[args.log_level]
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    builder = builder.config("spark.log.level", conf.get("spark.log.level", spark_level))
    # Checkpoints (of distributed connected components) are deleted once unused.
    builder = builder.config("spark.cleaner.referenceTracking.cleanCheckpoints", "true")
    started = SparkSession.getActiveSession() is None
    if _starts_jvm(conf, args.master):
        from sparkdedup.driver_jvm import JAVA_OPTIONS, driver_java_options

        options = driver_java_options(conf)
        if options is not None:
            builder = builder.config(JAVA_OPTIONS, options)
    try:
        spark = builder.getOrCreate()
    except FileNotFoundError as err:  # pyspark runs $SPARK_HOME/bin/spark-submit
        home = os.environ.get("SPARK_HOME")
        if not home or os.path.isfile(os.path.join(home, "bin", "spark-submit")):
            raise
        raise ConfigError(
            f"SPARK_HOME={home!r} holds no bin/spark-submit, which pyspark runs to start Spark: "
            "point it at a Spark installation of pyspark's version, or unset it to use "
            "pyspark's own"
        ) from err
    spark.sparkContext.setLogLevel(conf.get("spark.log.level", spark_level))
    if started:
        _quiet_accumulator_server(spark.sparkContext)
    return spark, started


def _quiet_accumulator_server(sc: Any) -> None:
    """pyspark's accumulator server prints a traceback to stderr when the driver JVM's
    connection to it drops (the JVM exited): logged at DEBUG instead, `main` says what
    happened in one line."""
    server = getattr(sc, "_accumulatorServer", None)
    if server is not None:
        server.handle_error = lambda request, address: log.debug(
            "sparkdedup: accumulator connection from %s lost", address, exc_info=True
        )


def _connect_session(args: argparse.Namespace, conf: dict[str, str]) -> tuple[Any, bool]:
    """A Spark Connect session on `args.remote` (a local server for ``local[N]``)."""
    from pyspark.sql import SparkSession

    if args.remote.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        os.environ["PYSPARK_PYTHON"] = sys.executable  # the local server's Python workers
    builder = SparkSession.builder.remote(args.remote)
    settings = dict(conf)
    settings.setdefault("spark.sql.execution.arrow.pyspark.enabled", "true")
    if args.remote.startswith("local"):
        # A local server starts with these; a remote one takes them as session settings.
        settings.setdefault("spark.log.level", _SPARK_LOG_LEVEL[args.log_level])
        settings.setdefault("spark.cleaner.referenceTracking.cleanCheckpoints", "true")
    for key, value in settings.items():
        builder = builder.config(key, value)
    with warnings.catch_warnings():
        if _starts_local_server(args.remote, settings):
            # pyspark starts the local server with every setting, then sets each again on the
            # session and warns for those a running server cannot change: all of them are in
            # effect already.
            warnings.filterwarnings("ignore", r"Failed to set spark\.", UserWarning)
        return builder.getOrCreate(), True


def connect_refusal(client: str, server: str | None, jsonl: bool) -> str | None:
    """Why the CLI cannot run over a Spark Connect session of pyspark `client` against Spark
    `server` (None: not known yet, the client alone is judged), or None when it can.

    A 4.0 (or 3.5) Connect session does not return every metric the CLI observes on its final
    write (its checks that kept + removed = input would fail after the work, or worse), and
    before 4.2 a Connect client cannot infer JSON types from a DataFrame, which the JSONL reader
    does on the leading records. Both were seen on pyspark 4.0.5 and 4.1.4 against their own
    local servers; 4.3 passes the Connect tests, and a 4.2 client's reader takes a DataFrame.
    """

    def version(text: str) -> tuple[int, int]:  # "4.1.0.dev0", "4.1.0-SNAPSHOT": (4, 1)
        found = re.match(r"(\d+)(?:\.(\d+))?", text)
        return (int(found[1]), int(found[2] or 0)) if found else (0, 0)

    oldest = min(version(client), version(server or client))
    if oldest < (4, 1):
        here = f"pyspark {client}" + ("" if server is None else f", server {server}")
        return (
            f"the sparkdedup CLI over Spark Connect needs Spark 4.1 or later on the client and "
            f"the server (here: {here}): older Connect sessions do "
            "not return the metrics its checks observe on the final write. Run it on a classic "
            "session (--master, spark-submit), or call the Python API"
        )
    if jsonl and version(client) < (4, 2):
        return (
            f"--input-format jsonl over Spark Connect needs pyspark 4.2 or later on the client "
            f"(this one is {client}): the JSONL reader infers the fields' types from the "
            "leading records with spark.read.json(DataFrame), which older Connect clients lack. "
            "Upgrade pyspark (or pyspark-client), convert the input to Parquet, or run on a "
            "classic session"
        )
    return None


def _check_connect_versions(spark: Any, args: argparse.Namespace) -> None:
    """`connect_refusal` for a Connect session, before any work; with no session yet (None),
    for the client alone when --remote is given: before a session is made (pyspark 3.5 has no
    local Connect server to start, and a server not reached is waited for)."""
    import pyspark

    from sparkdedup.compat import is_connect
    from sparkdedup.io import canonical_format

    if spark is None:
        conf = _spark_conf(args) if hasattr(args, "spark_conf") else {}
        if not (
            getattr(args, "remote", None)
            or conf.get("spark.remote")
            or os.environ.get("SPARK_REMOTE")
        ):
            return
    elif not is_connect(spark):
        return
    fmt = getattr(args, "input_format", None)
    jsonl = getattr(args, "input", None) is not None and isinstance(fmt, str)
    jsonl = jsonl and canonical_format(fmt) == "jsonl"
    why = connect_refusal(pyspark.__version__, None if spark is None else spark.version, jsonl)
    if why is not None:
        raise ConfigError(why)


def _starts_local_server(remote: str, settings: dict[str, str]) -> bool:
    """Whether a session on `remote` starts a local Connect server in this process with
    `settings`: not when one runs here already, nor when pyspark's opt-in
    (``spark.local.connect.reuse``) reconnects to one that another process started; their
    settings may differ, and pyspark's warnings then say which did not apply."""
    reuse = settings.get("spark.local.connect.reuse", os.environ.get("SPARK_LOCAL_CONNECT_REUSE"))
    return (
        remote.startswith("local")
        and "SPARK_LOCAL_REMOTE" not in os.environ
        and str(reuse or "").lower() not in ("1", "true")
    )


def _check_paths(spark: Any, args: argparse.Namespace) -> None:
    """The output rules (`sparkdedup.outputs`) for this command's paths, before any work."""
    from sparkdedup.fs import path_exists
    from sparkdedup.outputs import check_separate
    from sparkdedup.tables import describe, exists

    if args.input is not None:
        try:
            found = path_exists(spark, args.input)
        except (*SPARK_ERRORS, OSError) as err:  # a store not reached, a path not readable
            if not _io_failure(spark, err):
                raise
            raise InputError(
                f"input path {args.input!r} cannot be reached: {first_line(err)}"
            ) from err
        if not found:
            # Before the device probe starts: its log line would follow this error's.
            raise InputError(f"input path {args.input!r} does not exist")
    inputs = {"--input": args.input} if args.input is not None else {}
    if args.input_table is not None and exists(spark, args.input_table):
        location = describe(spark, args.input_table).location
        if location is not None:
            inputs["--input-table"] = location
    outputs = {"--output": args.output} if args.output is not None else {}
    if args.command == "remove":
        inputs["--duplicates"] = args.duplicates
    else:
        outputs["--cache-path"] = _cache_path(args)
        _check_cache_beside_output(spark, args)
    against = getattr(args, "against", None)
    index_out = getattr(args, "index_out", None)
    if against is not None:
        inputs["--against"] = against
    check_separate(spark, inputs, outputs)
    if index_out is not None:
        from sparkdedup.fs import qualified

        others = {k: v for k, v in inputs.items() if k != "--against"}
        if against is not None and qualified(spark, against) != qualified(spark, index_out):
            others["--against"] = against
        check_separate(spark, others, {"--index-out": index_out})
        check_separate(spark, outputs, {"--index-out": index_out}, others_are_outputs=True)


def _io_failure(spark: Any, err: BaseException) -> bool:
    """Whether `err` is the file system's (an OSError, or a JVM error caused by a
    java.io.IOException: a permission, a connection refused), not Spark's or sparkdedup's."""
    return isinstance(err, OSError) or bool(_io_causes(spark, err))


def _io_causes(
    spark: Any, err: BaseException, kinds: tuple[str, ...] = ("java.io.IOException",)
) -> list[Any]:
    """The JVM causes of `err` that are java.io.IOExceptions (or of the classes `kinds`
    names), outermost first (at most 16 links of the chain); [] without a JVM to ask (Spark
    Connect)."""
    found, cause = [], getattr(err, "java_exception", None)
    try:
        classes = [spark._jvm.java.lang.Class.forName(kind) for kind in kinds]
        for _ in range(16):
            if cause is None:
                break
            if any(c.isInstance(cause) for c in classes):
                found.append(cause)
            cause = cause.getCause()
    except Exception:  # noqa: BLE001 - no JVM to ask (Spark Connect): not known to be one
        return []
    return found


def _check_cache_beside_output(spark: Any, args: argparse.Namespace) -> None:
    """A cache may sit inside --output (the default), but not on or inside an output entry."""
    from sparkdedup.fs import qualified

    if args.cache_path is None:
        return
    out = qualified(spark, args.output)
    cache = qualified(spark, args.cache_path)
    inside = cache.startswith(out.rstrip("/") + "/")
    if (
        cache == out
        or out.startswith(cache.rstrip("/") + "/")
        or (inside and cache[len(out) + 1 :].split("/")[0] in _WORKFLOW_OUTPUTS)
    ):
        raise ConfigError(
            f"--cache-path {args.cache_path!r} overlaps the outputs in --output {args.output!r}; "
            "put the cache outside --output, or in a directory of its own inside it (default "
            "OUTPUT/cache)"
        )


def _conservation(
    kept: dict[str, int], removed: dict[str, int], whole: dict[str, int], what: str
) -> None:
    """Kept + removed = input, by count and by a checksum of the ids (or content)."""
    rows = kept["rows"] + removed["rows"]
    checksum = kept["checksum"] + removed["checksum"]
    if rows != whole["rows"] or checksum != whole["checksum"]:
        raise DedupError(
            f"conservation check failed: {kept['rows']} kept + {removed['rows']} removed rows "
            f"do not make up the {whole['rows']} input rows ({what} checksums "
            f"{kept['checksum']} + {removed['checksum']} != {whole['checksum']}); no output was "
            "written"
        )


def _digest(column: Any) -> list[Any]:
    """Aggregations: row count and the sum of a 64-bit hash (exact, as a decimal)."""
    from pyspark.sql import functions as F

    return [
        F.count(F.lit(1)).alias("rows"),
        F.coalesce(F.sum(column.cast("decimal(38,0)")), F.lit(0)).alias("checksum"),
    ]


def _observed(metrics: dict[str, Any]) -> dict[str, int]:
    return {"rows": int(metrics.get("rows") or 0), "checksum": int(metrics.get("checksum") or 0)}


def _row_digest(args: argparse.Namespace) -> Any:
    """Row -> the 64-bit hash the conservation check sums: of the user's id, else of the
    row's content (what derived ids come from)."""
    from pyspark.sql import functions as F

    from sparkdedup.ids import id_column, row_hashes

    if args.id_col is not None:
        return lambda df: F.xxhash64(id_column(df, args.id_col))
    return lambda df: row_hashes(df)[0]


def _removal(
    args: argparse.Namespace, result: Any, good: Any, written: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """(the rows the removal reads, a function of them giving the kept rows, a function
    giving the removed rows' digest once the kept rows are written). Derived ids of a fuzzy
    run are matched through its narrow key table; a semantic run's rows carry their derived
    ids, and their removed rows' digest is observed on the write itself (flagged by a left
    join, then dropped: no pass of its own). `written`: the digest of the user's ids observed
    as duplicates/ was written (the removed rows' digest with user ids).

    The ids or row keys to remove are sent to every task (no shuffle of the corpus) while
    their hash table fits `sparkdedup.sizing.broadcast_bytes` (128 MiB, about a million rows,
    and a sixteenth of the smallest heap holding it), else the rows are shuffled to meet them."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from sparkdedup.ids import H1, ID_COL
    from sparkdedup.removal import drop_rows, remove_duplicates, removed_row_keys
    from sparkdedup.sizing import broadcastable, join_hint

    duplicates = result.duplicates
    spark, removed_docs = good.sparkSession, result.stats["removed_docs"]
    broadcast = broadcastable(spark, removed_docs, removal=True)
    if args.id_col is not None:
        return (
            good,
            lambda rows: remove_duplicates(
                rows, duplicates, id_col=args.id_col, broadcast=broadcast
            ),
            lambda: written,
        )
    keys = getattr(result, "ids", None)
    if keys is not None:
        removed_keys = removed_row_keys(duplicates, keys, hint=join_hint(spark, removed_docs))
        digest = removed_keys.select(*_digest(F.col(H1))).first().asDict()
        return good, lambda rows: drop_rows(rows, removed_keys, broadcast=broadcast), lambda: digest
    remove = duplicates.select(F.col("id").cast("bigint").alias(ID_COL)).distinct()
    remove = remove.withColumn(_DROP, F.lit(True))
    remove = F.broadcast(remove) if broadcast else remove
    removed_obs = Observation("removed_rows")
    digest = _row_digest(args)

    def keep(rows: Any) -> Any:
        flagged = rows.withColumn(_DIGEST, digest(rows)).join(remove, on=ID_COL, how="left")
        drop = F.col(_DROP).isNotNull()
        flagged = flagged.observe(
            removed_obs,
            F.count(F.when(drop, 1)).alias("rows"),
            F.coalesce(F.sum(F.when(drop, F.col(_DIGEST)).cast("decimal(38,0)")), F.lit(0)).alias(
                "checksum"
            ),
        )
        return flagged.where(~drop).drop(_DROP, _DIGEST, ID_COL)

    return result.documents, keep, lambda: removed_obs.get


# Columns of the semantic removal's flagged join: the rows to drop, and each row's digest.
_DROP, _DIGEST = "_dedup_drop", "_dedup_digest"


def _write_results(
    spark: Any,
    args: argparse.Namespace,
    result: Any,
    runner: Any,
    config: Any,
    out: Any,
    raw: Any,
    table: Any = None,
) -> dict[str, Any]:
    """Write duplicates/, deduplicated/, quarantine/ and stats.json into the staging directory,
    checking kept + removed = input by count and by a checksum of ids or content."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from sparkdedup.fs import write_text
    from sparkdedup.io import (
        BAD_COL,
        FILE_COL,
        all_null_files,
        check_all_null_files,
        check_in_every_file,
        good_records,
        write_quarantine,
    )

    start = time.perf_counter()
    # With user ids the removed rows' digest rides on this write (no job of its own).
    written_obs = Observation("removed")
    result.duplicates.observe(written_obs, *_digest(F.xxhash64("id"))).write.parquet(
        out.path("duplicates")
    )
    report = None
    if args.command in ("fuzzy", "exact"):
        from sparkdedup.fs import literal
        from sparkdedup.reports import group_members, histogram

        # From the duplicates just written: a narrow table, read back, not recomputed.
        from sparkdedup.sizing import broadcastable

        # The size histogram rides on this write (no job of its own).
        sizes_obs = Observation("group_sizes")
        # Against an index, the duplicates stage's rows say which groups an indexed
        # document keeps (read from the stage, not recomputed).
        by_index = getattr(result, "by_index", None)
        members = group_members(
            by_index
            if by_index is not None
            else spark.read.parquet(literal(spark, out.path("duplicates"))),
            broadcast=broadcastable(spark, result.stats["removed_docs"]),
            observe=sizes_obs,
        )
        scores = getattr(result, "kept_jaccard", None)
        if scores is not None:  # --verify jaccard: each member's Jaccard to the kept document
            members = members.join(scores, on="id", how="left").select(
                *members.columns,
                F.when(F.col("kept"), F.lit(1.0)).otherwise(F.col("jaccard")).alias("jaccard"),
            )
        members.write.parquet(out.path("groups"))
        report = histogram(sizes_obs.get)
        indexed_groups = int(sizes_obs.get.get("indexed_groups") or 0)
    # The digests of the rows read and kept ride on the write job itself: no extra pass.
    read_obs, source_obs, kept_obs = Observation("read"), Observation("rows"), Observation("kept")
    observed = raw.observe(read_obs, F.count(F.col(BAD_COL)).alias("bad"))
    source, keep, removed = _removal(
        args, result, good_records(observed, args.bad_records), written_obs.get
    )
    digest = _row_digest(args)
    text = _deferred_text_check(args, config, raw)
    # The files whose texts are all null (those that can lack the text column) ride on it too.
    files = []
    if text is not None and {text, FILE_COL} <= set(source.columns):
        files = [all_null_files(text).alias(_ALL_NULL)]
    rows = source.observe(source_obs, *_digest(digest(source)), *files)
    kept = keep(rows)
    _write_kept(
        args,
        kept.observe(kept_obs, *_digest(digest(kept))),
        None if table is not None else out.path("deduplicated"),
        table,
    )
    seen = source_obs.get
    if files:
        check_all_null_files(spark, raw, text, seen[_ALL_NULL])
    elif text:  # rows that do not name their file: checked apart (reads the null texts)
        check_in_every_file(spark, raw, [text])
    whole = _observed(seen)
    ids = _ids_description(args, result, whole, config)
    write_text(spark, f"{out.path('duplicates')}/{_IDS_FILE}", json.dumps(ids, sort_keys=True))
    what = "id" if args.id_col is not None else "content"
    _conservation(_observed(kept_obs.get), _observed(removed()), whole, what)
    if whole["rows"] != result.stats["input_docs"]:
        raise DedupError(
            f"the input now holds {whole['rows']} usable rows where the workflow saw "
            f"{result.stats['input_docs']}: did it change during the run? No output was written"
        )
    if source is result.documents:  # read from the stage cache: the bad rows are counted apart
        bad = 0 if args.bad_records == "fail" else raw.where(F.col(BAD_COL).isNotNull()).count()
    else:
        bad = int(read_obs.get.get("bad") or 0)
    if bad and args.bad_records == "quarantine":
        write_quarantine(raw, out.path("quarantine"), args.write_format)
    stats = dict(result.stats)
    if report is not None:
        # The workflow left the group count to this report (`count_groups=False`).
        stats["groups"] = report["groups"]
        # Input documents only: a group an indexed document keeps has no kept one here.
        stats["docs_in_groups"] = stats["removed_docs"] + report["groups"] - indexed_groups
        if "against" in stats:
            stats["against"] = dict(stats["against"], groups_kept_by_index=indexed_groups)
        stats["group_sizes"] = report
        stats["candidate_edges"] = stats.get("edges", 0)
        if "verified_edges" not in stats and args.command == "fuzzy":
            stats["verified_edges"] = stats["rejected_edges"] = None  # --verify none
    stats["bad_records"] = {"mode": args.bad_records, "rows": bad}
    stats["seconds"] = dict(
        stats.get("seconds", {}), write_outputs=round(time.perf_counter() - start, 3)
    )
    stats.update(
        command=args.command,
        input=args.input,
        input_table=args.input_table,
        input_format=args.write_format,
        output=args.output.rstrip("/"),
        output_table=args.output_table,
        cache_path=runner.cache_path,
        id_mapping=runner.stage_path("ids") if args.id_col is None else None,
        resumed_stages=runner.resumed,
        config=dataclasses.asdict(config),
    )
    if getattr(args, "lsh_threshold", None) is not None:
        # What chose the config's bands; the config's `threshold` is --verify jaccard's.
        stats["lsh_threshold"] = args.lsh_threshold
    if bad:
        log.warning(
            "sparkdedup: %d bad input records %s",
            bad,
            "written to quarantine/" if args.bad_records == "quarantine" else "skipped",
        )
    write_text(
        spark,
        out.path("stats.json"),
        redact.uri(json.dumps(stats, indent=2, sort_keys=True, default=str)),
    )
    return stats


def _ids_description(
    args: argparse.Namespace, result: Any, whole: dict[str, int], config: Any
) -> dict[str, Any]:
    """What the ids of a duplicates list are, so that `remove` can check it is given the rows
    they identify: the user's id column, or derived ids with the input's row checksum (from
    the run's narrow key table when it has one, else `whole`: the rows' count and content
    checksum observed on the final write, `sparkdedup.ids.content_checksum`'s values); and the
    fields the run parsed (`_parsed_fields`), which `remove` parses too."""
    from sparkdedup.ids import DERIVED_ID_SCHEME

    parsed = _parsed_fields(config)
    if args.id_col is not None:
        return {"ids": "user", "id_col": args.id_col, "parsed": parsed}
    checksum = result.stats.get("content_checksum")
    if checksum is None:  # semantic: its rows with their ids, as the final write read them
        rows, checksum = whole["rows"], str(whole["checksum"])
    else:
        rows = result.stats["input_docs"]
    return {
        "ids": "derived",
        "scheme": DERIVED_ID_SCHEME,
        "input": {"rows": rows, "checksum": checksum},
        "parsed": parsed,
    }


def _empty_ids_typed(spark: Any, args: argparse.Namespace, raw: Any, df: Any) -> tuple[Any, Any]:
    """`raw, df`, the id column of `df` cast to the --against index's id type when the input
    has no rows: a JSONL reader that saw no record types it as strings, which is no id type
    error (a month with no new documents; one job over the ids, only then). `raw`, the rows
    written out, has none."""
    from sparkdedup.columns import named
    from sparkdedup.fuzzy.index import FuzzyIndex

    if args.id_col not in df.columns or df.schema[args.id_col].dataType.simpleString() != "string":
        return raw, df
    index = FuzzyIndex.open(spark, args.against, "--against")
    wanted = index.manifest["id_type"]
    if not index.documents or wanted == "string" or not df.select(named(args.id_col)).isEmpty():
        return raw, df
    return raw, df.withColumn(args.id_col, named(args.id_col).cast(wanted))


def _check_ids_match(spark: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    """Refuse a `remove` whose id options cannot fit the duplicates list (no Spark job), and
    return what its ids file says (None without one). Derived ids are checked against the
    input's rows by `_run_remove`, on its write."""
    from sparkdedup.fs import read_text
    from sparkdedup.ids import DERIVED_ID_SCHEME

    text = read_text(spark, f"{args.duplicates.rstrip('/')}/{_IDS_FILE}")
    if text is None:
        log.warning(
            "sparkdedup remove: %s has no %s (not written by the sparkdedup CLI); its ids are "
            "taken as they are",
            args.duplicates,
            _IDS_FILE,
        )
        return None
    made = json.loads(text)
    if made["ids"] == "user" and args.id_col != made["id_col"]:
        got = "without --id-col" if args.id_col is None else f"not of --id-col {args.id_col!r}"
        raise InputError(
            f"the duplicates in {args.duplicates!r} hold values of the id column "
            f"{made['id_col']!r} ({got}); pass --id-col {made['id_col']}"
        )
    if made["ids"] == "derived" and args.id_col is not None:
        raise InputError(
            f"the duplicates in {args.duplicates!r} hold derived ids (the workflow ran "
            f"without --id-col); run remove without --id-col on the same rows"
        )
    if made["ids"] == "derived" and made.get("scheme", 1) != DERIVED_ID_SCHEME:
        raise InputError(
            f"the duplicates in {args.duplicates!r} hold ids derived by another version of "
            "sparkdedup, which hashed rows another way (nulls skipped, or -0.0 taken as "
            "0.0); run the workflow again to list them with this version's ids"
        )
    return made


def _check_same_rows(args: argparse.Namespace, made: dict[str, Any], here: dict[str, Any]) -> None:
    """Refuse derived ids given other rows than those they were derived from (`here`: the
    input's row count and content checksum, `sparkdedup.ids.content_checksum`)."""
    if here != made["input"]:
        raise InputError(
            f"the duplicates in {args.duplicates!r} hold ids derived from "
            f"{made['input']['rows']} rows, but {_source(args)} holds {here['rows']} rows "
            "with different content; derived ids only identify rows of the same input "
            "(any order or partitioning): remove from those rows, or run the workflow "
            "with --id-col. No output was written"
        )


def _parsed_fields(config: Any) -> dict[str, Any]:
    """The fields a workflow's reader parses and type-checks (JSONL: a record whose field is of
    another type is a bad record): its text column, and its embedding, priority or sort
    columns."""
    columns: list[str] = []
    embedding = getattr(config, "embedding_col", None)
    if config is not None:
        if embedding:
            columns.append(embedding)
        columns += [c for c in (getattr(config, "priority_col", None),) if c]
        columns += [name for name, _ in sort_keys(getattr(config, "sort_cols", None) or ())]
    return {"text_col": _input_text_col(config), "columns": columns, "embedding_col": embedding}


def _read(
    spark: Any, args: argparse.Namespace, config: Any = None, parsed: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """(the rows as read, with bad records marked; the usable rows) of --input, parsing the
    fields of `config`'s workflow, or `parsed` (`_parsed_fields`: `remove` parses those of the
    run that listed the duplicates, so that both find the same bad records)."""
    fields = parsed if parsed is not None else _parsed_fields(config)
    try:
        return _read_fields(
            spark, args, fields["text_col"], list(fields["columns"]), fields.get("embedding_col")
        )
    except Exception as err:  # a Spark failure the input caused: named as an input error
        if not isinstance(err, DedupError):
            _explain_failure(spark, args, None, err, fields["text_col"])
        raise


def _read_fields(
    spark: Any,
    args: argparse.Namespace,
    text_col: str | None,
    columns: list[str],
    embedding_col: str | None = None,
) -> tuple[Any, Any]:
    from pyspark.sql import types as T

    from sparkdedup.io import good_records, read_input
    from sparkdedup.tables import read_table

    if args.input_table is not None:
        df = read_table(spark, args.input_table, args.id_col)
        return df, good_records(df, args.bad_records)
    from sparkdedup.fs import glob_regex, input_listing
    from sparkdedup.io import check_codecs, check_subdirectories, path_glob_filter

    options = _options(args.read_option, "--read-option")
    ignored = {k.lower(): str(v).lower() for k, v in options.items()}.get("ignorecorruptfiles")
    if (ignored or spark.conf.get("spark.sql.files.ignoreCorruptFiles", "false")) == "true":
        log.warning(
            "sparkdedup: ignoreCorruptFiles is on: Spark skips what it cannot read of a "
            "corrupt file without a count, so rows lost there are in no figure of this run"
        )
    # Before any job reads a file (the path exists: `_check_paths`): a compressed file Spark
    # cannot read is named here. The listing is the stage cache's fingerprint too.
    try:
        # Of the files a pathGlobFilter leaves to be read: those Spark reads.
        args.name_glob = path_glob_filter(options)
        if args.name_glob is not None:
            glob_regex(args.name_glob)  # a malformed one is a usage error before any job
        args.input_listing = input_listing(spark, args.input, args.name_glob)
    except (*SPARK_ERRORS, OSError) as err:  # a directory not readable, a store not reached
        if not _io_failure(spark, err):
            raise
        raise InputError(f"--input {args.input!r} cannot be listed: {first_line(err)}") from err
    check_codecs(spark, args.input_listing, args.input_format)
    check_subdirectories(args.input_listing, args.input_format, options)
    df = read_input(
        spark,
        args.input,
        args.input_format,
        text_col=text_col,
        id_col=args.id_col,
        columns=columns,
        options=_options(args.read_option, "--read-option"),
        # Checked on the final write, which reads every row anyway (`_write_results`).
        defer_text_check=True,
        # An empty JSONL input is an empty corpus of embeddings, not a column of strings.
        empty_types={embedding_col: T.ArrayType(T.DoubleType())} if embedding_col else None,
    )
    return df, good_records(df, args.bad_records)


def _input_text_col(config: Any) -> str | None:
    """The text column a workflow reads from the input (none when it reads embeddings)."""
    if config is None or getattr(config, "embedding_col", None):
        return None
    return getattr(config, "text_col", None)


def _deferred_text_check(args: argparse.Namespace, config: Any, raw: Any) -> str | None:
    """The text column whose presence in every Parquet file `_read` left to the final write."""
    from sparkdedup.io import FILE_COL, canonical_format

    text = _input_text_col(config)
    if args.input_table is not None or canonical_format(args.input_format) != "parquet":
        return None
    return text if text is not None and {text, FILE_COL} <= set(raw.columns) else None


def _explain_failure(
    spark: Any, args: argparse.Namespace, raw: Any, err: Exception, text_col: str | None = None
) -> None:
    """Turn a failure the input caused into an InputError naming the file (and the line or
    row of a bad record; `text_col`: the text field the input was read with); anything else
    is left to `main` as an internal error."""
    from sparkdedup.io import BAD_RECORD_PREFIX, first_bad_record, spark_condition

    condition = spark_condition(err) or ""
    # Spark 3.5's raise_error has no error class (a failed write reports its own): the
    # innermost message tells it.
    raised = condition == "USER_RAISED_EXCEPTION" or first_line(err).startswith(BAD_RECORD_PREFIX)
    if raised and raw is not None and args.bad_records == "fail":
        bad = first_bad_record(
            spark,
            raw,
            # A Hive-format table of another serde (its rows from ORC or text files, or from
            # no file the scan names): no Parquet file to number its rows in.
            "table" if getattr(args, "input_provider", None) == "hive" else args.write_format,
            id_col=args.id_col,
            text_col=text_col,
            options=_options(args.read_option, "--read-option"),
        )
        if bad is not None:
            raise InputError(
                f"bad input record in {bad}; fix or remove it, or pass --bad-records skip "
                "(or quarantine) to leave such records out"
            ) from err
    if condition.startswith("FAILED_READ_FILE") or _read_failure(spark, err):
        # Spark 4 names the file it was reading; 3.5 only a file gone, or a CSV file whose
        # header disagrees (its message may name the stage's output being written, which is
        # not the file that failed).
        found = re.search(
            r"while reading file (\S+?)\.?(?:\s|$)|File (\S+) does not exist|\nCSV file: (\S+)",
            str(err),
        )
        named = None if found is None else (found[1] or found[2] or found[3])
        ours = [(n, p) for n, p in _written(args) if n != "--output"]
        for name, path in [*ours, ("--against", getattr(args, "against", None))]:
            if named and path and _names_file_under(spark, named, path):
                raise DedupError(
                    f"a file of {name} {path!r} cannot be read (removed or changed during "
                    f"the run?): {first_line(err)}"
                ) from err
        where = f" ({redact.uri(named)})" if named else ""
        raise InputError(f"an input file cannot be read{where}: {first_line(err)}") from err


def _read_failure(spark: Any, err: BaseException) -> bool:
    """Whether `err` was caused by an IOException, or an IllegalArgumentException (a CSV
    file whose header does not match the columns), thrown while a task read an input file (a
    frame of Spark's file scan in its stack): Spark 4 says so with FAILED_READ_FILE, Spark
    3.5 wraps it in whatever the task did (a failed write of a stage). A full disk is not one
    (`_disk_full`), nor a Python worker that died (its socket's error has no scan frame)."""
    if _full_disk_message(err) is not None:
        return False
    kinds = ("java.io.IOException", "java.lang.IllegalArgumentException")
    return any(
        "FileScanRDD" in str(frame.getClassName())
        for cause in _io_causes(spark, err, kinds)
        for frame in cause.getStackTrace()
    )


def _names_file_under(spark: Any, file: str, path: str) -> bool:
    """Whether the file `file` (as a failure names it) lies under the directory `path`, both
    qualified."""
    from sparkdedup.fs import qualified

    try:
        return qualified(spark, file).startswith(qualified(spark, path).rstrip("/") + "/")
    except Exception:  # noqa: BLE001 - a path this session cannot qualify: not known to be
        return False


def _validate(df: Any, config: Any, command: str) -> None:
    """The workflow's own checks of its input (column types, sort columns, reserved names),
    which it makes again: here before the output and the cache are created."""
    if command == "semantic":
        from sparkdedup.semantic.workflow import validate_input
    else:
        from sparkdedup.fuzzy.workflow import validate_input
    validate_input(df, config)


def _run_workflow(args: argparse.Namespace, spark: Any) -> dict[str, Any]:
    from sparkdedup.device import probe_in_background
    from sparkdedup.outputs import LEASE, OutputDir, OutputLease, prepare_cache
    from sparkdedup.stages import StageRunner

    config = workflow_config(args)
    args.write_format = _output_format(spark, args)
    _check_paths(spark, args)
    if getattr(args, "against", None) is not None:
        from sparkdedup.fuzzy.index import FuzzyIndex

        # A mistyped or mismatched index is an error before any Spark job (the workflow checks
        # it again, for the Python API).
        FuzzyIndex.open(spark, args.against, "--against").check_params(config, "--against")
    index = None
    if getattr(args, "index_out", None) is not None:
        from sparkdedup.fs import qualified
        from sparkdedup.fuzzy.index import index_writer

        index = index_writer(spark, args.index_out, config, overwrite=args.overwrite)
        index.output = qualified(spark, args.output)
        # A claim left on the index is refused now, not after the work.
        index.check_claim()
    out = OutputDir(
        spark,
        args.output,
        _WORKFLOW_OUTPUTS,
        overwrite=args.overwrite,
        keep=_cache_in_output(spark, args),
    )
    # The executors' device probe runs while the input is listed and read.
    # On the CPU its tasks (or, with --device cpu, a job of its own) load the MinHash kernels
    # into the Python workers the scan then reuses.
    if hasattr(config, "device"):
        probe_in_background(config.device, spark, getattr(config, "use_64_bit_hash", None))
    # The input is checked before anything is created: a run refused for its input (a mistyped
    # path, a missing column) leaves no output directory and no cache behind.
    raw, df = _read(spark, args, config)
    if getattr(args, "against", None) is not None and args.input_format is not None:
        raw, df = _empty_ids_typed(spark, args, raw, df)
    _validate(df, config, args.command)
    out.prepare()
    cache_lease, table = None, None
    runner: StageRunner | None = None
    fingerprint: dict[str, Any] | None = None
    try:
        table = _output_table(spark, args)  # its lease is held from here: aborted on failure
        _check_writer(spark, args, raw, out)
        prepare_cache(spark, _cache_path(args))
        if not out.keep:  # a --cache-path outside --output: the run holds it as well
            cache_lease = OutputLease(
                spark, f"{_cache_path(args).rstrip('/')}/{LEASE}", args.cache_path, "--cache-path"
            )
            cache_lease.acquire()
        runner = StageRunner(spark, _cache_path(args))
        if args.input_table is not None:
            fingerprint = {**_input_key(spark, args), **_parsing_settings(spark, None)}
        else:
            fingerprint = {
                **_input_key(spark, args),
                "format": args.input_format,
                # How the files are parsed decides the rows and texts as much as the files do.
                "read_options": redact.options(
                    spark, _options(args.read_option, "--read-option"), digest=True
                ),
                **_parsing_settings(spark, args.input_format),
            }
        if args.command == "fuzzy":
            from sparkdedup.fuzzy.workflow import run_fuzzy

            result = run_fuzzy(df, config, runner, fingerprint=fingerprint, count_groups=False)
            if index is not None:
                index.stage(index.rows(result))
                result.stats["index_out"] = index.summary()
        elif args.command == "exact":
            from sparkdedup.exact import run_exact

            result = run_exact(df, config, runner, fingerprint=fingerprint, count_groups=False)
        else:
            from sparkdedup.semantic.workflow import run_semantic

            more = tuple(args.eps[1:])
            result = run_semantic(df, config, runner, fingerprint=fingerprint, more_eps=more)
        # Its checks of the counts failing, a changed input says so first (as any failure:
        # `_input_changed`).
        stats = _write_results(spark, args, result, runner, config, out, raw, table)
        _check_input_unchanged(spark, args, fingerprint, runner)
        if index is not None:
            index.claim()  # before any output is committed: of two runs, one commits
        if table is not None:
            table.commit()
        out.commit()
        if index is not None:
            # After the outputs: an index never lists documents whose run failed. Should its
            # commit fail now, the claim stays for this command's rerun to take over.
            index.outputs_committed()
            try:
                index.commit()
            except DedupError:
                raise  # its own words (a claim cleared as stale by another run)
            except Exception as err:
                raise DedupError(
                    f"the output {args.output!r} is committed, but its documents could not be "
                    f"added to the index {args.index_out!r} ({first_line(err)}): run the same "
                    "command again with --overwrite to add them; until then other runs writing "
                    "the index are refused (its commit claim names this output)"
                ) from err
        return stats
    except BaseException as err:  # interrupted too: the staging and the output's lease go
        changed = None
        if fingerprint is not None and isinstance(err, Exception):
            changed = _input_changed(spark, args, fingerprint, runner, err)
        out.abort()
        if table is not None:
            table.abort()
        if index is not None:
            index.abort()
        if changed is not None:  # what the failure comes from, likely; the stages go
            raise changed from err
        if isinstance(err, Exception) and not isinstance(err, DedupError):
            _explain_failure(spark, args, raw, err, _input_text_col(config))
        raise
    finally:
        if cache_lease is not None:
            cache_lease.release()


def _input_key(spark: Any, args: argparse.Namespace) -> dict[str, Any]:
    """What the input is made of now, as `_check_input_unchanged` compares it: the files of
    its listing (`input_fingerprint`, from the listing `_read` made), or a table's."""
    from sparkdedup.io import input_fingerprint
    from sparkdedup.tables import table_fingerprint

    if args.input_table is not None:
        return {"input_table": table_fingerprint(spark, args.input_table)}
    return {
        "input": input_fingerprint(spark, args.input, args.input_listing, fmt=args.input_format)
    }


def _written(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Where this command writes, by name: --output, the stage cache (the dedup commands'),
    --index-out; those given only."""
    places = [("--output", args.output)]
    if args.output and hasattr(args, "cache_path"):
        places.append(("the stage cache", _cache_path(args)))
    places.append(("--index-out", getattr(args, "index_out", None)))
    return [(name, path) for name, path in places if path]


class _InputChanged(DedupError):
    """The input's files changed while the run ran (`_check_input_unchanged`)."""


def _input_changed(
    spark: Any,
    args: argparse.Namespace,
    fingerprint: dict[str, Any],
    runner: StageRunner | None,
    err: Exception,
) -> DedupError | None:
    """For a run that failed with `err`: the error saying its input changed during the run
    (and its computed stages made unresumable) when it did; None when it did not, or cannot
    be listed now (`err` stands)."""
    if isinstance(err, _InputChanged):
        return None  # found and said already
    try:
        _check_input_unchanged(spark, args, fingerprint, runner)
    except _InputChanged as found:
        return found
    except Exception:  # noqa: BLE001 - the listing failed too: the run's own error stands
        log.debug("sparkdedup: listing the input again failed", exc_info=True)
    return None


def _check_input_unchanged(
    spark: Any,
    args: argparse.Namespace,
    fingerprint: dict[str, Any],
    runner: StageRunner | None = None,
) -> None:
    """DedupError when the input's files changed during the run (a file replaced, added or
    removed: its listing differs from the one the run started from), before any output is
    committed: the rows counted again on the final write catch a changed count, not a file
    replaced by one of as many rows. One more listing of the input (of a table's files; a
    view's plan is not compared, a sample's seed in it differs at every parse). Not for a
    Delta input (its log gains checkpoints, and its old files go, with its rows unchanged: a
    commit meanwhile is caught by the row count), nor for a glob that may match this run's
    own outputs (written under the glob's fixed part since the first listing). The stages
    `runner` computed are made unresumable first (`StageRunner.forget_computed`): cached under
    the input's key at the start, they may hold rows of the input as it is now."""
    from sparkdedup.fs import input_listing, is_glob, literal_prefix, qualified
    from sparkdedup.io import canonical_format, input_fingerprint
    from sparkdedup.tables import table_fingerprint

    if args.input_table is not None:
        before, now = fingerprint["input_table"], table_fingerprint(spark, args.input_table)
        before, now = ({k: v for k, v in key.items() if k != "view"} for key in (before, now))
        what = f"--input-table {args.input_table!r}"
    else:
        if canonical_format(args.input_format or "") == "delta":
            return
        if is_glob(args.input):
            fixed = qualified(spark, literal_prefix(args.input)).rstrip("/") + "/"
            written = [path for _, path in _written(args)]
            if any((qualified(spark, p) + "/").startswith(fixed) for p in written):
                return
        before = fingerprint["input"]
        listing = input_listing(spark, args.input, getattr(args, "name_glob", None))
        now = input_fingerprint(spark, args.input, listing, fmt=args.input_format)
        what = f"--input {args.input!r}"
    if now != before:
        if runner is not None:
            runner.forget_computed()
        raise _InputChanged(
            f"{what} changed during the run (its files were replaced, added or removed: "
            f"{before.get('files')} files of {before.get('bytes')} bytes at the start, "
            f"{now.get('files')} of {now.get('bytes')} now); no output was written: rerun "
            "once the input is complete (the stages already computed are recomputed)"
        )


def _run_compact(args: argparse.Namespace, spark: Any, start: float) -> int:
    """`sparkdedup compact-index`: `sparkdedup.fuzzy.index.compact_index`, and its line."""
    from sparkdedup.fuzzy.index import FuzzyIndex, compact_index

    before = len(FuzzyIndex.open(spark, args.index, "--index").manifest["segments"])
    manifest = compact_index(spark, args.index, option="--index", retain_hours=args.retain_hours)
    summary = {
        "segments_before": before,
        "segments": len(manifest["segments"]),
        "documents": manifest["documents"],
        "retired_segments": len(manifest.get("retired", [])),
    }
    seconds = time.perf_counter() - start
    line = f"sparkdedup compact-index: {json.dumps(summary)} in {seconds:.1f} s -> {args.index}"
    print(redact.uri(line))
    return 0


def _run_remove(args: argparse.Namespace, spark: Any) -> dict[str, Any]:
    """Drop the rows a duplicates list names from --input, staged, and committed only once
    the checks pass: derived ids are those of these rows (their checksum, observed on the
    write), and the rows removed are the ids listed (more would mean the id column
    is not unique there; fewer, that some listed ids are not in this input, is a warning)."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from sparkdedup.ids import (
        H1,
        H2,
        ID_COL,
        INTEGRAL,
        POS,
        derived_ids,
        id_column,
        require_columns,
        with_content_keys,
    )
    from sparkdedup.io import BAD_COL, good_records
    from sparkdedup.outputs import OutputDir
    from sparkdedup.removal import drop_rows, listed_ids, remove_duplicates, removed_row_keys
    from sparkdedup.sizing import broadcastable, join_hint, partitions_for

    args.write_format = _output_format(spark, args)
    _check_paths(spark, args)
    # The inputs are checked before the output is created (as `_run_workflow`).
    duplicates = _read_duplicates(spark, args.duplicates)
    made = _check_ids_match(spark, args)
    raw, _ = _read(spark, args, parsed=(made or {}).get("parsed"))
    started_from = _input_key(spark, args)  # listed again before the commit
    table = _output_table(spark, args)
    out = None
    if table is None:
        out = OutputDir(spark, args.output, None, overwrite=args.overwrite)
        out.prepare()
    try:
        _check_writer(spark, args, raw, out)
        # The ids listed (their count and digest): a narrow job over the duplicates, which
        # also sizes the removal.
        require_columns(duplicates, {"duplicates id": "id"})
        key_type: Any = T.LongType()
        if args.id_col is not None:
            key = id_column(raw, args.id_col)
            key_type = raw.select(key.alias("k")).schema["k"].dataType
        listed_keys = duplicates.select(F.col("id"), listed_ids(duplicates, key_type).alias("k"))
        listed_type = duplicates.schema["id"].dataType
        if not isinstance(key_type, T.StringType) and not isinstance(listed_type, INTEGRAL):
            # Strings or decimals against integer ids: some may be no integer's text or out of
            # range (integers always convert, and anything is a string id's text).
            _refuse_foreign_ids(args, listed_keys, key_type)
        listed_keys = listed_keys.select("k").distinct()
        # A null names no row (a null id in the list, or an integer out of the range of
        # --id-col's type): it is not counted as listed, nor in the digest.
        counted = listed_keys.agg(
            F.count("k").alias("rows"),
            F.coalesce(
                F.sum(F.when(F.col("k").isNotNull(), F.xxhash64("k")).cast("decimal(38,0)")),
                F.lit(0),
            ).alias("checksum"),
            F.max(F.col("k").isNull()).alias("nulls"),
        ).first()
        listed = _observed(counted.asDict())
        if counted["nulls"]:
            log.warning(
                "sparkdedup remove: the ids listed in %s include nulls (or integers out of the "
                "range of the input's %s ids), which name no document: they are not counted "
                "among the %d listed",
                args.duplicates,
                key_type.simpleString(),
                listed["rows"],
            )
        read_obs, whole_obs, kept_obs = (
            Observation("read"),
            Observation("input"),
            Observation("kept"),
        )
        df = good_records(
            raw.observe(read_obs, F.count(F.col(BAD_COL)).alias("bad")), args.bad_records
        )
        # With user ids, the digest of the rows' ids read and kept rides on the write.
        digest = _row_digest(args) if args.id_col is not None else lambda d: F.lit(0)
        source = df.observe(whole_obs, *_digest(digest(df)))
        broadcast = broadcastable(spark, listed["rows"], removal=True)
        keys_obs = None
        if args.id_col is None:
            keys = with_content_keys(df).select(H1, H2, POS)
            rows = made["input"]["rows"] if made is not None else None
            parts = partitions_for(spark, rows * _KEY_ROW_BYTES) if rows else None
            ids = derived_ids(keys, parts).withColumnRenamed(ID_COL, "id")
            # The rows' checksum rides on the write (no pass of its own), checked before the
            # output is moved into place.
            keys_obs = Observation("input_keys")
            kept = drop_rows(
                source,
                removed_row_keys(duplicates, ids, hint=join_hint(spark, listed["rows"])),
                broadcast=broadcast,
                checksum=keys_obs,
            )
        else:
            kept = remove_duplicates(source, duplicates, id_col=args.id_col, broadcast=broadcast)
        _write_kept(
            args,
            kept.observe(kept_obs, *_digest(digest(kept))),
            None if out is None else out.path(),
            table,
        )
        try:  # kept + removed against the list: a changed input says so first
            if keys_obs is not None and made is not None:
                seen = keys_obs.get
                here = {"rows": int(seen["rows"]), "checksum": str(seen["sum"] or 0)}
                _check_same_rows(args, made, here)
            whole, kept_rows = _observed(whole_obs.get), _observed(kept_obs.get)
            removed = whole["rows"] - kept_rows["rows"]
            if args.id_col is None:
                _check_removed(args, removed, listed["rows"], exact=made is not None)
            elif (removed, whole["checksum"] - kept_rows["checksum"]) != (
                listed["rows"],
                listed["checksum"],
            ):
                # Not each listed id removing one row: which listed ids this input holds, and how
                # many rows they name (a read of its id column, only in this case).
                found = (
                    df.select(id_column(df, args.id_col).alias("k"))
                    .join(
                        listed_keys.hint(join_hint(spark, listed["rows"])), on="k", how="left_semi"
                    )
                    .agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("k").alias("ids"))
                    .first()
                )
                _check_removed(args, int(found["rows"]), listed["rows"], found=int(found["ids"]))
        except DedupError:
            _check_input_unchanged(spark, args, started_from)
            raise
        _check_input_unchanged(spark, args, started_from)
        if table is not None:
            table.commit()
        else:
            out.commit()
    except BaseException as err:  # interrupted too: the staging and the output's lease go
        if out is not None:
            out.abort()
        if table is not None:
            table.abort()
        if isinstance(err, Exception) and not isinstance(err, DedupError):
            _explain_failure(spark, args, raw, err)
        raise
    bad = 0 if args.bad_records == "fail" else int(read_obs.get.get("bad") or 0)
    if bad:
        log.warning("sparkdedup remove: %d bad input records skipped", bad)
    return {
        "input_docs": whole["rows"],
        "removed_docs": removed,
        "kept_docs": kept_rows["rows"],
        "listed_docs": listed["rows"],
        "bad_records": bad,
    }


def _refuse_foreign_ids(args: argparse.Namespace, listed_keys: Any, key_type: Any) -> None:
    """SchemaError naming a few of the listed ids that no id of this input's type equals
    (`removal.listed_ids` made them null: "x" or "7.9" against integer ids): such a list is
    not of this input's ids. A job over the list (at most three rows reach the driver), run
    only when some of its ids may not convert."""
    from pyspark.sql import functions as F

    foreign = listed_keys.where(F.col("id").isNotNull() & F.col("k").isNull())
    shown = [row[0] for row in foreign.select(F.col("id").cast("string")).limit(3).collect()]
    if shown:
        which = "derived ids" if args.id_col is None else f"--id-col {args.id_col!r}"
        raise SchemaError(
            f"the ids in {args.duplicates!r} include values that are not {which} "
            f"({key_type.simpleString()}), such as {', '.join(map(repr, shown))}: is it a list "
            "of this input's duplicates?"
        )


# Bytes a derived-id key row takes in its shuffle (h1, h2, position, prefix).
_KEY_ROW_BYTES = 32


def _check_removed(
    args: argparse.Namespace,
    removed: int,
    listed: int,
    *,
    exact: bool = False,
    found: int | None = None,
) -> None:
    """The rows a listed id matched (`removed`; `found`: the distinct listed ids among them,
    when counted) against the ids listed. More rows than ids is an error (a listed id matched
    several rows: the id column is not unique in this input, and removing by it would drop
    rows that are not duplicates); fewer, a warning (some listed ids are not in this input,
    say a subset of the data), unless `exact` (derived ids checked to be this input's: each
    names one of its rows)."""
    ids = removed if found is None else found
    if removed == listed and ids == listed:
        return
    if removed > ids or (exact and removed != listed):
        what = (
            f"--id-col {args.id_col!r} is not unique there, and removing by it would drop rows "
            "that are not duplicates"
            if args.id_col is not None
            else "the derived ids do not name one row each"
        )
        raise DedupError(
            f"{removed} rows of {_source(args)} match the {listed} ids listed in "
            f"{args.duplicates!r}: {what}. No output was written"
        )
    log.warning(
        "sparkdedup remove: %d of the %d ids listed in %s are not in %s (a subset or another "
        "version of the data?); the %d found were removed",
        listed - ids,
        listed,
        args.duplicates,
        _source(args),
        ids,
    )


def _read_duplicates(spark: Any, path: str) -> Any:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    from sparkdedup.fs import exists, literal
    from sparkdedup.outputs import MARKER

    if not exists(spark, path):
        raise InputError(f"--duplicates {path!r} does not exist")
    if exists(spark, f"{path.rstrip('/')}/{MARKER}"):
        # A run's output directory: its deduplicated data beside its duplicates.
        raise InputError(
            f"--duplicates {path!r} is a sparkdedup output directory; give its duplicates "
            f"directory, {path.rstrip('/')}/duplicates"
        )
    try:
        table = spark.read.parquet(literal(spark, path))
    except (PySparkException, Py4JJavaError) as err:
        raise InputError(
            f"--duplicates {path!r} cannot be read as parquet: {first_line(err)}"
        ) from err
    if {"group", "kept"} <= set(table.columns):
        # A group report lists every member, the kept ones too: removing its ids would remove
        # every document of every group.
        raise InputError(
            f"--duplicates {path!r} is a group report (columns 'group' and 'kept': it lists the "
            "documents each group keeps too); give the run's duplicates/ directory"
        )
    return table


class _Py4JOnRoot(logging.Filter):
    """Drops what py4j logs on the root logger: a lost connection to the JVM, with its
    traceback, before py4j raises it (`main` reports the error itself, in one line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}py4j{os.sep}" not in record.pathname


_PY4J_ON_ROOT = _Py4JOnRoot()
#: Why Spark's driver JVM exits with these codes (Spark's ``SparkExitCode``).
_SPARK_EXIT_CODES = {50: "an uncaught exception", 52: "out of memory (java.lang.OutOfMemoryError)"}
#: How long a run whose driver JVM is going down waits for it to finish exiting (its
#: shutdown hooks delete the shuffle files first).
_EXIT_WAIT_SECONDS = 60.0


def _driver_jvm_exit(err: BaseException | None) -> int | None:
    """The exit status of the driver JVM this process launched, once it has exited (negative:
    the signal that killed it); None while it runs, or when this process did not launch it
    (spark-submit, Spark Connect). When the JVM is going down under `err` (a lost connection,
    or its SparkContext stopped: what the JVM does first on an OutOfMemoryError), waits up to
    `_EXIT_WAIT_SECONDS` for it to finish exiting."""
    import subprocess

    from pyspark import SparkContext

    proc = getattr(SparkContext._gateway, "proc", None)  # noqa: SLF001 - the launched JVM
    if proc is None:
        return None
    try:
        return proc.wait(timeout=_EXIT_WAIT_SECONDS) if _going_down(err) else proc.poll()
    except (subprocess.TimeoutExpired, OSError):
        return None


def _going_down(err: BaseException | None) -> bool:
    """Whether `err` says the driver JVM is exiting: a lost connection to it (in `err` or an
    error behind it), or a JVM whose SparkContext stopped under the run or that no longer
    answers."""
    if err is None:
        return False
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ConnectionError) or type(cause).__name__ == "Py4JNetworkError":
            return True
        cause = cause.__cause__ or cause.__context__
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context  # noqa: SLF001 - the context the run used
    if sc is None:
        return False
    try:
        return bool(sc._jsc.sc().isStopped())  # noqa: SLF001
    except Exception:  # noqa: BLE001 - a JVM that does not answer is going down
        return True


#: What a failure says when a disk (or a user's quota) is full, wherever in its chain.
_DISK_FULL = ("No space left on device", "Disk quota exceeded")


def _full_disk_message(err: BaseException) -> str | None:
    """Which of `_DISK_FULL` the failure `err` says, in it or its causes; None for neither."""
    seen, chain = [], err
    while chain is not None and len(seen) < 16:
        seen.append(str(chain))
        chain = chain.__cause__ or chain.__context__
    return next((m for m in _DISK_FULL if any(m in text for text in seen)), None)


def _disk_full(spark: Any, args: argparse.Namespace, err: BaseException) -> str | None:
    """The one line for a run that failed because a disk filled up (None for another
    failure): where the run writes (--output, the stage cache, --index-out, and Spark's
    scratch space, spark.local.dir, under a local master), with the space left on each that
    is on this machine's disks."""
    import shutil

    from sparkdedup.fs import local_path, qualified

    full = _full_disk_message(err)
    if full is None:
        return None
    places = _written(args)
    try:
        if spark is not None and str(spark.sparkContext.master).startswith("local"):
            scratch = os.environ.get("SPARK_LOCAL_DIRS") or spark.conf.get("spark.local.dir", None)
            jvm_tmp = spark.sparkContext._jvm.java.lang.System.getProperty("java.io.tmpdir")
            places.append(("spark.local.dir", scratch or str(jvm_tmp)))
    except Exception:  # noqa: BLE001 - a Connect session has no SparkContext: not named
        pass
    shown = []
    for name, path in places:
        for one in str(path).split(","):
            free = ""
            try:
                where = one if name == "spark.local.dir" else qualified(spark, one)
                if where.startswith("file:") or name == "spark.local.dir":
                    local = local_path(where)
                    while not os.path.exists(local) and os.path.dirname(local) != local:
                        local = os.path.dirname(local)
                    free = f", {shutil.disk_usage(local).free / 2**30:.1f} GiB free"
            except Exception:  # noqa: BLE001 - not on this machine's disks: no figure
                pass
            shown.append(f"{name} {redact.uri(one)}{free}")
    where = f" ({'; '.join(shown)})" if shown else ""
    text = (
        f"a disk filled up during the run ({full}): make room where the run writes{where}, "
        "or point it elsewhere, and run the command again"
    )
    if args.command != "remove":
        text += f" (it resumes from the stages in {_cache_path(args)})"
    return text


def _lost_driver(args: argparse.Namespace, status: int) -> str:
    """The one line for a run whose driver JVM exited under it with `status`."""
    import signal

    if status < 0:
        try:
            why = f"killed by {signal.Signals(-status).name}"
        except ValueError:
            why = f"killed by signal {-status}"
        if -status == signal.SIGKILL:
            why += ", most often by the system's out-of-memory killer: see dmesg"
        why += ")"
    else:
        why = f"exit code {status}"
        if status in _SPARK_EXIT_CODES:
            why += f": {_SPARK_EXIT_CODES[status]}"
        why += "); its own output above says more"
    heap = _spark_conf(args).get("spark.driver.memory")
    heap = f"set to {heap}" if heap else "not given with --spark-conf: Spark's default is 1g"
    text = (
        f"the Spark driver JVM exited during the run ({why}. Its heap is spark.driver.memory "
        f"({heap}), which in local mode the executors share: raise it with --spark-conf "
        "spark.driver.memory=..."
    )
    if args.command != "remove":
        text += f"; a rerun of the same command resumes from the stages in {_cache_path(args)}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sparkdedup` command; returns the process exit code.

    Usage and input errors exit with code 2 and one line naming the path, column or
    parameter; an unexpected error exits with code 1 and a one-line summary (the traceback is
    logged at ``--log-level DEBUG``), and so does a driver JVM that exits under the run (the
    line names why and the heap setting). Ctrl-C prints one line; run as the command (`argv`
    None) it exits with code 130, called with `argv` (from Python) the KeyboardInterrupt goes on
    to the caller, so that a notebook cell stops there. The Spark session the command started is stopped on
    the way out, whatever happened.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    logging.basicConfig(
        level=getattr(logging, args.log_level), format="%(asctime)s %(message)s", stream=sys.stderr
    )
    log.setLevel(getattr(logging, args.log_level))
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if args.log_level != "DEBUG":
        # pyspark logs a failed query's context at ERROR before raising it, and py4j a lost
        # connection to the JVM with its traceback; the CLI reports the failure itself, in one
        # line.
        logging.getLogger("DataFrameQueryContextLogger").setLevel(logging.CRITICAL)
        logging.getLogger().addFilter(_PY4J_ON_ROOT)
    else:
        logging.getLogger().removeFilter(_PY4J_ON_ROOT)
    # URIs with a password are starred in sparkdedup's log lines while the command runs,
    # whichever handlers print them (a notebook's own included).
    starring, handlers = redact.LogFilter(), list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(starring)
    try:
        return _command(args, argv)
    finally:
        for handler in handlers:
            handler.removeFilter(starring)


def _command(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """`main` once its arguments are parsed and its logging set up."""
    if getattr(args, "explain", False):
        try:
            config = workflow_config(args)
        except DedupError as err:
            print(redact.uri(f"sparkdedup: error: {err}"), file=sys.stderr)
            return 2
        print(redact.uri(explain(args, config)))
        return 0
    start = time.perf_counter()
    spark, started = None, False
    try:
        _check_connect_versions(None, args)  # the client's own version, before a session
        spark, started = _session(args)
        _check_connect_versions(spark, args)
        _check_catalog_outlives_run(spark, args, started)
        _session_table_names(spark, args)
        if args.command == "compact-index":
            return _run_compact(args, spark, start)
        stats = _run_remove(args, spark) if args.command == "remove" else _run_workflow(args, spark)
    except DedupError as err:
        print(redact.uri(f"sparkdedup: error: {err}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, as for errors
        text = "sparkdedup: interrupted; an output not yet committed is left unwritten"
        if args.command not in ("remove", "compact-index"):
            text += f" (a rerun of the same command resumes from the stages in {_cache_path(args)})"
        print(redact.uri(text), file=sys.stderr)
        if argv is not None:  # called from Python (a notebook): the caller stops too
            raise
        return 130  # the command: the shell's 128 + SIGINT
    except Exception as err:  # noqa: BLE001 - the CLI's last resort: one line, exit code 1
        exited = _driver_jvm_exit(err) if started else None
        if exited is not None:
            log.debug("sparkdedup: the driver JVM exited", exc_info=True)
            print(redact.uri(f"sparkdedup: error: {_lost_driver(args, exited)}"), file=sys.stderr)
            return 1
        log.debug("sparkdedup: internal error", exc_info=True)
        full = _disk_full(spark, args, err)
        if full is not None:
            print(redact.uri(f"sparkdedup: error: {full}"), file=sys.stderr)
            return 1
        print(
            redact.uri(
                f"sparkdedup: internal error: {type(err).__name__}: {first_line(err)} (rerun "
                "with --log-level DEBUG for the traceback)"
            ),
            file=sys.stderr,
        )
        return 1
    finally:
        if started and spark is not None and _driver_jvm_exit(None) is None:
            from sparkdedup.device import wait_for_background

            try:
                wait_for_background()
                spark.stop()
            except Exception:  # noqa: BLE001 - a JVM going down has nothing left to stop
                log.debug("sparkdedup: stopping the session failed", exc_info=True)
    seconds = time.perf_counter() - start
    summary = {
        k: stats[k]
        for k in ("input_docs", "removed_docs", "kept_docs", "groups", "listed_docs")
        if k in stats
    }
    target = args.output if args.output is not None else f"table {args.output_table}"
    if args.command != "remove" and args.output_table is not None:
        target += f" and table {args.output_table}"
    line = f"sparkdedup {args.command}: {json.dumps(summary)} in {seconds:.1f} s -> {target}"
    print(redact.uri(line))
    for row in stats.get("eps_summary", []):
        print(f"sparkdedup semantic: eps={row['eps']:g} removes {row['removed_docs']} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
