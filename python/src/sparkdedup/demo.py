"""`make demo`: generate a planted corpus, deduplicate it with the CLI, score it against the truth.

Fuzzy pass on about 20,000 documents (recall and precision against the planted clusters), then a
semantic pass on a small sample with the MiniLM model. Run with ``python -m sparkdedup.demo``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import pandas as pd

from sparkdedup.cli import main as cli_main
from sparkdedup.datagen import write_corpus
from sparkdedup.evaluate import evaluate


def _fuzzy(work: str, n_docs: int, master: str) -> None:
    corpus = write_corpus(
        f"{work}/corpus", n_docs, fmt="jsonl", num_files=8, seed=2026, overwrite=True
    )
    out = f"{work}/fuzzy"
    start = time.perf_counter()
    code = cli_main(
        [
            "fuzzy",
            "--input",
            corpus["path"],
            "--input-format",
            "jsonl",
            "--text-col",
            "text",
            "--id-col",
            "id",
            "--output",
            out,
            "--master",
            master,
            "--log-level",
            "WARNING",
        ]
    )
    seconds = time.perf_counter() - start
    if code != 0:
        sys.exit(code)
    with open(f"{out}/stats.json", encoding="utf-8") as fh:
        stats = json.load(fh)
    dups = pd.read_parquet(f"{out}/duplicates")
    truth = pd.read_parquet(corpus["truth_path"])
    report = evaluate(dups, truth)
    docs = pd.concat(pd.read_json(f, lines=True) for f in corpus["files"])
    high = evaluate(dups, truth, docs, min_jaccard=0.9)
    print()
    print("sparkdedup demo: fuzzy dedup (MinHash 20 x 13, 24-char shingles)")
    print(f"  documents in        {stats['input_docs']:>8}")
    print(
        f"  removed             {stats['removed_docs']:>8}   (planted copies: {corpus['planted_copies']})"
    )
    print(f"  kept                {stats['kept_docs']:>8}")
    print(f"  groups              {stats['groups']:>8}")
    print(f"  pair recall         {report['recall']:>8.4f}")
    print(
        f"  pair recall, J>=0.9 {high['recall']:>8.4f}   ({high['planted_pairs']} planted pairs with Jaccard >= 0.9)"
    )
    print(f"  pair precision      {report['precision']:>8.4f}")
    print(f"  seconds (CLI run)   {seconds:>8.1f}")
    print(f"  outputs under {out}/")


def _semantic(work: str, n_docs: int, master: str) -> None:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        print("\nsemantic pass skipped: install the embed extra (pip install 'sparkdedup[embed]')")
        return
    corpus = write_corpus(
        f"{work}/semantic_corpus", n_docs, fmt="parquet", num_files=2, seed=7, overwrite=True
    )
    out = f"{work}/semantic"
    start = time.perf_counter()
    code = cli_main(
        [
            "semantic",
            "--input",
            corpus["path"],
            "--input-format",
            "parquet",
            "--text-col",
            "text",
            "--id-col",
            "id",
            "--output",
            out,
            "--n-clusters",
            "10",
            "--master",
            master,
            "--log-level",
            "WARNING",
        ]
    )
    seconds = time.perf_counter() - start
    if code != 0:
        sys.exit(code)
    with open(f"{out}/stats.json", encoding="utf-8") as fh:
        stats = json.load(fh)
    print()
    print("sparkdedup demo: semantic dedup (all-MiniLM-L6-v2, KMeans k=10, eps=0.01)")
    print(f"  documents in        {stats['input_docs']:>8}")
    print(f"  removed             {stats['removed_docs']:>8}")
    print(f"  seconds (CLI run)   {seconds:>8.1f}")
    print(f"  outputs under {out}/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default="demo_out")
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--semantic-docs", type=int, default=1_000)
    parser.add_argument("--master", default="local[*]")
    args = parser.parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.makedirs(args.work, exist_ok=True)
    _fuzzy(args.work, args.docs, args.master)
    if args.semantic_docs > 0:
        _semantic(args.work, args.semantic_docs, args.master)
    return 0


if __name__ == "__main__":
    sys.exit(main())
