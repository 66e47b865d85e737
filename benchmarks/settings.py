"""Benchmark settings: one frozen dataclass, read from the command line and BENCH_* variables.

Every knob has an environment variable so that `make bench BENCH_SCALES=...` works, and a flag
of `python -m benchmarks.run` that wins over it. `BENCH_QUICK=1` turns everything down to a
1-2 minute smoke run (one small scale, one repeat).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

#: Scales of the full run, and of the quick one.
FULL_SCALES = (10_000, 100_000, 1_000_000)
QUICK_SCALES = (2_000,)


@dataclass(frozen=True)
class Settings:
    """What one benchmark run measures, and where it reads and writes."""

    scales: tuple[int, ...] = FULL_SCALES
    quick: bool = False
    #: Repeats of the fast measurements (the MinHash kernels); the median is reported.
    repeats: int = 3
    #: Timed repeats of sparkdedup end to end up to `multi_repeat_max_docs`; one above.
    e2e_repeats: int = 3
    multi_repeat_max_docs: int = 100_000
    #: Timed repeats of the slow peers end to end (datasketch LSH, MLlib).
    peer_repeats: int = 1
    seed: int = 2026
    #: Documents (the first ones of the corpus) of the kernel-vs-datasketch comparison.
    kernel_sample: int = 2_000
    #: The 64-bit kernel row (an extra) is measured up to this scale.
    kernel64_max_docs: int = 100_000
    #: Peers that would take too long are skipped above these scales (with the reason).
    datasketch_max_docs: int = 100_000
    mllib_max_docs: int = 100_000
    #: Exact Jaccard of the planted pairs (for "recall of pairs with J >= 0.8") up to this scale.
    jaccard_max_docs: int = 100_000
    #: MinHashLSH hash tables of the MLlib peer (see RESULTS.md for the choice).
    mllib_tables: int = 5
    #: Rows per Arrow batch handed to the kernel (Spark's default maxRecordsPerBatch).
    batch_rows: int = 10_000
    master: str = "local[2]"
    driver_memory: str = "4g"
    #: spark.sql.shuffle.partitions for the Spark cases; None keeps Spark's default (200).
    shuffle_partitions: int | None = None
    #: Extra Spark settings for the Spark cases ("key=value;key=value"), for experiments.
    spark_conf: tuple[tuple[str, str], ...] = ()
    #: Untimed warm-up of the Spark cases on a few hundred documents before the timed runs.
    warmup: bool = True
    #: Seconds before one case (one subprocess) is stopped and reported as failed.
    case_timeout: int = 3_600
    out_dir: str = os.path.join(BENCH_DIR, "results")
    work_dir: str = os.path.join(BENCH_DIR, "work")
    #: Case families to run (kernel, datasketch, sparkdedup, mllib); empty means all.
    only: tuple[str, ...] = ()
    #: Write the tables into benchmarks/RESULTS.md (never in quick mode).
    publish: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def e2e_repeats_at(self, n_docs: int) -> int:
        return self.e2e_repeats if n_docs <= self.multi_repeat_max_docs else 1

    def wants(self, family: str) -> bool:
        return not self.only or family in self.only

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CASE_FAMILIES = ("kernel", "datasketch", "sparkdedup", "mllib")


def _ints(text: str) -> tuple[int, ...]:
    values = tuple(int(v.replace("_", "")) for v in text.split(",") if v.strip())
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas, got {text!r}"
        )
    return values


def _families(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in values if v not in CASE_FAMILIES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown case family {bad[0]!r}; choose from {', '.join(CASE_FAMILIES)}"
        )
    return values


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from flags, then BENCH_* variables, then the defaults (quick or full)."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="sparkdedup benchmarks: kernel, end to end, datasketch and MLlib peers.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=_flag(env.get("BENCH_QUICK")),
        help="1-2 minute smoke run (BENCH_QUICK=1)",
    )
    parser.add_argument(
        "--scales",
        type=_ints,
        default=env.get("BENCH_SCALES"),
        help="corpus sizes, e.g. 10000,100000,1000000 (BENCH_SCALES)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=env.get("BENCH_REPEATS"),
        help="repeats of the kernel measurements (BENCH_REPEATS, default 3)",
    )
    parser.add_argument(
        "--e2e-repeats",
        type=int,
        default=env.get("BENCH_E2E_REPEATS"),
        help="sparkdedup end-to-end repeats up to 100k docs (BENCH_E2E_REPEATS)",
    )
    parser.add_argument(
        "--peer-repeats",
        type=int,
        default=env.get("BENCH_PEER_REPEATS"),
        help="datasketch/MLlib end-to-end repeats (BENCH_PEER_REPEATS, default 1)",
    )
    parser.add_argument("--seed", type=int, default=env.get("BENCH_SEED"), help="corpus seed")
    parser.add_argument(
        "--datasketch-max-docs", type=int, default=env.get("BENCH_DATASKETCH_MAX_DOCS")
    )
    parser.add_argument("--mllib-max-docs", type=int, default=env.get("BENCH_MLLIB_MAX_DOCS"))
    parser.add_argument("--jaccard-max-docs", type=int, default=env.get("BENCH_JACCARD_MAX_DOCS"))
    parser.add_argument("--mllib-tables", type=int, default=env.get("BENCH_MLLIB_TABLES"))
    parser.add_argument("--kernel-sample", type=int, default=env.get("BENCH_KERNEL_SAMPLE"))
    parser.add_argument("--master", default=env.get("BENCH_MASTER"))
    parser.add_argument("--driver-memory", default=env.get("BENCH_DRIVER_MEMORY"))
    parser.add_argument(
        "--shuffle-partitions", type=int, default=env.get("BENCH_SHUFFLE_PARTITIONS")
    )
    parser.add_argument(
        "--spark-conf",
        default=env.get("BENCH_SPARK_CONF"),
        help="extra Spark settings for the Spark cases: 'k=v;k=v'",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        default=(env.get("BENCH_WARMUP", "1").strip() in ("0", "false", "no")),
        help="skip the Spark cases' untimed warm-up (BENCH_WARMUP=0)",
    )
    parser.add_argument("--case-timeout", type=int, default=env.get("BENCH_CASE_TIMEOUT"))
    parser.add_argument("--out", default=env.get("BENCH_OUT"), help="results directory")
    parser.add_argument("--work", default=env.get("BENCH_WORK"), help="corpus cache directory")
    parser.add_argument(
        "--only",
        type=_families,
        default=env.get("BENCH_ONLY"),
        help=f"case families to run, from {','.join(CASE_FAMILIES)}",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        default=_flag(env.get("BENCH_PUBLISH")),
        help="also write the tables into benchmarks/RESULTS.md (not in quick mode)",
    )
    args = parser.parse_args(argv)

    base = Settings()
    if args.quick:
        base = replace(
            base, quick=True, scales=QUICK_SCALES, repeats=1, e2e_repeats=1, kernel_sample=300
        )
    overrides: dict[str, Any] = {}
    for name in (
        "repeats",
        "e2e_repeats",
        "peer_repeats",
        "seed",
        "datasketch_max_docs",
        "mllib_max_docs",
        "jaccard_max_docs",
        "mllib_tables",
        "kernel_sample",
        "case_timeout",
        "shuffle_partitions",
    ):
        value = getattr(args, name)
        if value not in (None, ""):
            overrides[name] = int(value)
    if args.scales:
        overrides["scales"] = args.scales if isinstance(args.scales, tuple) else _ints(args.scales)
    if args.spark_conf:
        pairs = [p.split("=", 1) for p in args.spark_conf.split(";") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            parser.error(f"--spark-conf must be 'key=value;key=value', got {args.spark_conf!r}")
        overrides["spark_conf"] = tuple((k.strip(), v.strip()) for k, v in pairs)
    if args.only:
        overrides["only"] = args.only if isinstance(args.only, tuple) else _families(args.only)
    for name, value in (("master", args.master), ("driver_memory", args.driver_memory)):
        if value:
            overrides[name] = value
    if args.out:
        overrides["out_dir"] = os.path.abspath(args.out)
    if args.work:
        overrides["work_dir"] = os.path.abspath(args.work)
    overrides["publish"] = bool(args.publish)
    overrides["warmup"] = not args.no_warmup
    settings = replace(base, **overrides)
    for name in ("repeats", "e2e_repeats", "peer_repeats", "kernel_sample", "mllib_tables"):
        if getattr(settings, name) < 1:
            parser.error(f"{name} must be >= 1, got {getattr(settings, name)}")
    return settings
