"""The `sparkdedup` command line: `fuzzy`, `semantic` and `remove`; also the spark-submit main file.

Each workflow writes ``OUT/duplicates/`` (Parquet), ``OUT/deduplicated/`` (the input's format and
columns) and ``OUT/stats.json``, and every stage under the cache path (default ``OUT/cache``) so
that a rerun resumes. Usage and input errors exit with code 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from sparkdedup.config import (
    CC_BACKENDS,
    DEVICES,
    SIM_METRICS,
    WHICH_TO_KEEP,
    FuzzyConfig,
    SemanticConfig,
)
from sparkdedup.errors import DedupError, InputError
from sparkdedup.io import FORMATS

log = logging.getLogger("sparkdedup")

_FUZZY = {f.name: f.default for f in dataclasses.fields(FuzzyConfig)}
_SEMANTIC = {f.name: f.default for f in dataclasses.fields(SemanticConfig)}


_IDS_FILE = "_sparkdedup_ids.json"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit code 2), like every other input error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _common(p: argparse.ArgumentParser, *, output_help: str) -> None:
    p.add_argument("--input", required=True, help="input path or URI (file, directory or glob)")
    p.add_argument("--input-format", required=True, choices=FORMATS)
    p.add_argument("--id-col", default=None, help="unique id column (default: derive stable ids)")
    p.add_argument("--output", required=True, help=output_help)
    p.add_argument(
        "--master",
        default=None,
        help="Spark master, e.g. local[*] or spark://host:7077 (default: spark-submit's, else "
        "local[*])",
    )
    p.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark setting (repeatable)",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _workflow_common(p: argparse.ArgumentParser) -> None:
    _common(p, output_help="output directory: duplicates/, deduplicated/, stats.json")
    p.add_argument(
        "--cache-path",
        default=None,
        help="where each stage is written (default OUTPUT/cache); a rerun resumes from it",
    )
    p.add_argument("--device", default="auto", choices=DEVICES)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sparkdedup", description="Deduplicate text corpora on Apache Spark.")
    sub = parser.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fuzzy", help="near-duplicates by MinHash + LSH + connected components")
    _workflow_common(f)
    f.add_argument("--text-col", default=_FUZZY["text_col"])
    f.add_argument("--char-ngrams", type=int, default=_FUZZY["char_ngrams"])
    f.add_argument("--num-bands", type=int, default=_FUZZY["num_bands"])
    f.add_argument("--minhashes-per-band", type=int, default=_FUZZY["minhashes_per_band"])
    f.add_argument("--seed", type=int, default=_FUZZY["seed"])
    f.add_argument("--use-64-bit-hash", action="store_true", default=_FUZZY["use_64_bit_hash"])
    f.add_argument("--bands-per-iteration", type=int, default=_FUZZY["bands_per_iteration"])
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
        "of --cc-backend driver; default: %(default)s)",
    )
    f.add_argument(
        "--priority-col",
        default=None,
        help="keep the row with the largest value of this column per group",
    )
    f.add_argument(
        "--priority-ascending", action="store_true", help="keep the smallest priority value instead"
    )

    s = sub.add_parser(
        "semantic", help="semantic near-duplicates (SemDeDup: embeddings + KMeans + cosine)"
    )
    _workflow_common(s)
    source = s.add_mutually_exclusive_group(required=True)
    source.add_argument("--text-col", default=None, help="text column to embed with --model")
    source.add_argument(
        "--embedding-col", default=None, help="column holding precomputed embeddings"
    )
    s.add_argument("--model", default=_SEMANTIC["model"])
    s.add_argument("--embedding-batch-size", type=int, default=_SEMANTIC["embedding_batch_size"])
    s.add_argument("--n-clusters", type=int, default=_SEMANTIC["n_clusters"])
    s.add_argument("--max-iter", type=int, default=_SEMANTIC["max_iter"])
    s.add_argument("--tol", type=float, default=_SEMANTIC["tol"])
    s.add_argument("--eps", type=float, default=_SEMANTIC["eps"])
    s.add_argument("--which-to-keep", default=_SEMANTIC["which_to_keep"], choices=WHICH_TO_KEEP)
    s.add_argument("--sort-cols", default=None, help="comma-separated columns for a custom ranking")
    s.add_argument("--sim-metric", default=_SEMANTIC["sim_metric"], choices=SIM_METRICS)
    s.add_argument("--pairwise-batch-size", type=int, default=_SEMANTIC["pairwise_batch_size"])
    s.add_argument("--seed", type=int, default=_SEMANTIC["seed"])

    r = sub.add_parser("remove", help="remove the ids listed in a duplicates directory")
    _common(r, output_help="where the deduplicated rows are written (the input's format)")
    r.add_argument(
        "--duplicates", required=True, help="duplicates directory (Parquet with column id)"
    )
    return parser


def fuzzy_config(args: argparse.Namespace) -> FuzzyConfig:
    return FuzzyConfig(
        text_col=args.text_col,
        id_col=args.id_col,
        char_ngrams=args.char_ngrams,
        num_bands=args.num_bands,
        minhashes_per_band=args.minhashes_per_band,
        seed=args.seed,
        use_64_bit_hash=args.use_64_bit_hash,
        bands_per_iteration=args.bands_per_iteration,
        cc_backend=args.cc_backend,
        driver_cc_max_edges=args.driver_cc_max_edges,
        priority_col=args.priority_col,
        priority_ascending=args.priority_ascending,
        device=args.device,
    )


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
        eps=args.eps,
        which_to_keep=args.which_to_keep,
        sort_cols=sort_cols,
        sim_metric=args.sim_metric,
        pairwise_batch_size=args.pairwise_batch_size,
        device=args.device,
    )


def _cache_path(args: argparse.Namespace) -> str:
    return args.cache_path or f"{args.output.rstrip('/')}/cache"


def _session(args: argparse.Namespace) -> Any:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(f"sparkdedup {args.command}")
    conf = {}
    for item in args.spark_conf:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DedupError(f"--spark-conf must be KEY=VALUE, got {item!r}")
        conf[key] = value
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
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    # Checkpoints (derived ids, distributed connected components) are deleted once unused.
    builder = builder.config("spark.cleaner.referenceTracking.cleanCheckpoints", "true")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if args.command != "remove" and spark.sparkContext.getCheckpointDir() is None:
        spark.sparkContext.setCheckpointDir(f"{_cache_path(args)}/_checkpoints")
    return spark


def _write_results(
    spark: Any, args: argparse.Namespace, result: Any, runner: Any, config: Any
) -> dict[str, Any]:
    """Write duplicates/, deduplicated/ and stats.json; check kept + removed = input."""
    from pyspark.sql import functions as F

    from sparkdedup.ids import ID_COL
    from sparkdedup.io import write_output, write_text

    out = args.output.rstrip("/")
    start = time.perf_counter()
    result.duplicates.write.mode("overwrite").parquet(f"{out}/duplicates")
    ids = _ids_description(args, result.documents)
    write_text(spark, f"{out}/duplicates/{_IDS_FILE}", json.dumps(ids, sort_keys=True))
    remove = result.duplicates.select(F.col("id").alias(ID_COL)).distinct()
    kept = result.documents.join(remove, on=ID_COL, how="left_anti").drop(ID_COL)
    write_output(kept, f"{out}/deduplicated", args.input_format)
    reader = spark.read.schema(kept.schema)
    written = (reader.parquet if args.input_format == "parquet" else reader.json)(
        f"{out}/deduplicated"
    ).count()
    stats = dict(result.stats)
    stats["seconds"] = dict(
        stats.get("seconds", {}), write_outputs=round(time.perf_counter() - start, 3)
    )
    if written + stats["removed_docs"] != stats["input_docs"]:
        raise DedupError(
            f"conservation check failed: {written} kept + {stats['removed_docs']} removed != "
            f"{stats['input_docs']} input documents"
        )
    stats.update(
        command=args.command,
        input=args.input,
        input_format=args.input_format,
        output=out,
        cache_path=runner.cache_path,
        id_mapping=runner.stage_path("ids"),
        resumed_stages=runner.resumed,
        config=dataclasses.asdict(config),
    )
    write_text(spark, f"{out}/stats.json", json.dumps(stats, indent=2, sort_keys=True, default=str))
    return stats


def _ids_description(args: argparse.Namespace, documents: Any) -> dict[str, Any]:
    """What the ids of a duplicates list are, so that `remove` can check it is given the rows
    they identify: the user's id column, or derived ids with the input's row checksum."""
    from sparkdedup.ids import content_checksum

    if args.id_col is not None:
        return {"ids": "user", "id_col": args.id_col}
    return {"ids": "derived", "input": content_checksum(documents)}


def _check_ids_match(spark: Any, args: argparse.Namespace, df: Any) -> None:
    """Refuse a `remove` whose ids cannot be the ones the duplicates list refers to."""
    from sparkdedup.ids import content_checksum
    from sparkdedup.io import read_text

    text = read_text(spark, f"{args.duplicates.rstrip('/')}/{_IDS_FILE}")
    if text is None:
        log.warning(
            "sparkdedup remove: %s has no %s (not written by the sparkdedup CLI); its ids are "
            "taken as they are",
            args.duplicates,
            _IDS_FILE,
        )
        return
    made = json.loads(text)
    if made["ids"] == "user" and args.id_col is None:
        raise InputError(
            f"the duplicates in {args.duplicates!r} hold values of the id column "
            f"{made['id_col']!r}; pass --id-col {made['id_col']}"
        )
    if made["ids"] == "derived":
        if args.id_col is not None:
            raise InputError(
                f"the duplicates in {args.duplicates!r} hold derived ids (the workflow ran "
                f"without --id-col); run remove without --id-col on the same rows"
            )
        here = content_checksum(df)
        if here != made["input"]:
            raise InputError(
                f"the duplicates in {args.duplicates!r} hold ids derived from "
                f"{made['input']['rows']} rows, but {args.input!r} holds {here['rows']} rows "
                "with different content; derived ids only identify rows of the same input "
                "(any order or partitioning): remove from those rows, or run the workflow "
                "with --id-col"
            )


def _run_workflow(args: argparse.Namespace) -> dict[str, Any]:
    from sparkdedup.io import input_fingerprint, read_input
    from sparkdedup.stages import StageRunner

    config = fuzzy_config(args) if args.command == "fuzzy" else semantic_config(args)
    spark = _session(args)
    df = read_input(spark, args.input, args.input_format)
    runner = StageRunner(spark, _cache_path(args))
    fingerprint = {"input": input_fingerprint(spark, args.input), "format": args.input_format}
    if args.command == "fuzzy":
        from sparkdedup.fuzzy.workflow import run_fuzzy

        result = run_fuzzy(df, config, runner, fingerprint=fingerprint)
    else:
        from sparkdedup.semantic.workflow import run_semantic

        result = run_semantic(df, config, runner, fingerprint=fingerprint)
    return _write_results(spark, args, result, runner, config)


def _run_remove(args: argparse.Namespace) -> dict[str, Any]:
    from sparkdedup.io import read_input, write_output
    from sparkdedup.removal import remove_duplicates

    spark = _session(args)
    df = read_input(spark, args.input, args.input_format)
    duplicates = read_input(spark, args.duplicates, "parquet")
    _check_ids_match(spark, args, df)
    kept = remove_duplicates(df, duplicates, id_col=args.id_col)
    write_output(kept, args.output, args.input_format)
    return {"input_docs": df.count(), "kept_docs": kept.count()}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sparkdedup` command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level), format="%(asctime)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    start = time.perf_counter()
    try:
        stats = _run_remove(args) if args.command == "remove" else _run_workflow(args)
    except DedupError as err:
        print(f"sparkdedup: error: {err}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    summary = {
        k: stats[k] for k in ("input_docs", "removed_docs", "kept_docs", "groups") if k in stats
    }
    print(f"sparkdedup {args.command}: {json.dumps(summary)} in {seconds:.1f} s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
