"""Synthetic corpora with planted near-duplicates and their ground truth.

Used by the tests, `make demo` and the benchmarks. Documents are random sequences of made-up
words (unrelated documents share no 24-code-point shingle); a planted cluster is an original plus
edited or exact copies of it. Pair-level metrics against the truth are in `sparkdedup.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sparkdedup._textgen import _block_texts, _cluster_sizes
from sparkdedup.errors import ConfigError
from sparkdedup.evaluate import evaluate, planted_pairs, true_jaccard

__all__ = [
    "BOILERPLATE_LINES",
    "evaluate",
    "generate_corpus",
    "main",
    "planted_pairs",
    "true_jaccard",
    "write_corpus",
]

#: Short lines shared by many unrelated documents (cookie notices, licences, footers). Each is
#: under 80 characters, a small part of a ~1 KB document, so sharing one never makes two
#: unrelated documents near-duplicates.
BOILERPLATE_LINES: tuple[str, ...] = (
    "This site uses cookies to improve your experience. Accept all cookies?",
    "Licensed under CC BY-SA 4.0. Some rights reserved.",
    "Subscribe to our newsletter for weekly updates.",
    "Copyright 2024 Example Media Group. All rights reserved.",
    "Share this article: Facebook | Twitter | Email",
    "Continue reading below the advertisement.",
    "Posted in Uncategorized. Leave a comment.",
    "Terms of use | Privacy policy | Contact us",
)

FORMATS = ("jsonl", "parquet")
_GROUPS_PER_BLOCK = 2048  # fixed, so the output for a seed never depends on anything else
_DOMAINS = tuple(
    f"{a}{b}.example"
    for a in ("daily", "open", "blue", "north", "quick", "river", "stone", "pixel")
    for b in ("news", "wiki", "forum", "blog", "press", "times")
)


# ---------------------------------------------------------------------------------- validation
def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{name} must be a number between 0 and 1, got {value!r}")


def _check_range(name: str, value: Any, lo: float, hi: float | None, integer: bool) -> None:
    kind = "integers" if integer else "numbers"
    bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    if ok:
        for v in value:
            ok = ok and not isinstance(v, bool)
            ok = ok and isinstance(v, (int, np.integer) if integer else (int, float))
            ok = ok and v >= lo and (hi is None or v <= hi)
        ok = ok and value[0] <= value[1]
    if not ok:
        raise ConfigError(
            f"{name} must be a pair (low, high) of {kind} {bound} with low <= high, got {value!r}"
        )


# ---------------------------------------------------------------------------------- vocabulary
def generate_corpus(
    n_docs: int,
    *,
    duplicate_fraction: float = 0.3,
    cluster_size: tuple[int, int] = (2, 5),
    mean_words: int = 170,
    edit_rate: tuple[float, float] = (0.0, 0.03),
    exact_fraction: float = 0.2,
    boilerplate_fraction: float = 0.1,
    unicode_fraction: float = 0.05,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate a corpus with planted near-duplicate clusters and its ground truth.

    Unique documents (and the original of each cluster) are random sequences of words from a
    fixed vocabulary of about 5,000 made-up words, so two of them share essentially no
    24-code-point shingle. Each planted cluster is one original plus copies of it; a copy is
    exact or edited.

    Parameters
    ----------
    n_docs : number of documents (>= 1).
    duplicate_fraction : share of the documents that are planted copies, i.e. what a perfect
        deduplication removes: exactly ``round(duplicate_fraction * n_docs)`` copies are planted.
    cluster_size : (low, high), inclusive bounds of the planted cluster sizes (original plus
        copies), drawn uniformly; low >= 2. The last cluster may be smaller so the copy count is
        exact.
    mean_words : mean number of words of an original (normal, sd 30%, at least mean_words / 4);
        the default gives documents of about 1 KB.
    edit_rate : (low, high); each edited copy draws its rate uniformly from this range. The
        rate is the per-word probability of one edit: a character substitution, insertion or
        deletion inside the word, a swap with the next word, deleting the word, or inserting a
        random word after it (equally likely); an edited copy gets at least one edit.
    exact_fraction : share of the copies that are exact (edit rate 0, identical text); a copy
        whose drawn rate is 0 is exact too.
    boilerplate_fraction : every original or unique document carries one of
        `BOILERPLATE_LINES` (prepended or appended, on its own line) with this probability, and
        copies inherit it; each edited copy also gets an extra boilerplate line with this
        probability.
    unicode_fraction : share of the originals and unique documents (copies inherit) in which
        about 20% of the words are non-ASCII (accents, Greek, Cyrillic, CJK, kana, emoji).
    seed : the same seed and parameters always give the same corpus.

    Returns
    -------
    docs : pandas.DataFrame with ``id`` (int64, a random permutation of 0..n_docs-1, rows sorted
        by id, so neither ids nor row order reveal the clusters), ``text`` (str) and ``source``
        (str, a made-up URL).
    truth : pandas.DataFrame with ``id`` (int64), ``cluster`` (int64: the smallest id of the
        document's planted cluster, i.e. the id a smallest-id keep rule keeps; a unique document
        is its own cluster), ``origin_id`` (int64: the original a copy was made from, itself for
        originals and unique documents) and ``edit_rate`` (float64: 0 for originals and exact
        copies), rows sorted by id.
    """
    _check_int("n_docs", n_docs, 1)
    _check_int("mean_words", mean_words, 1)
    _check_int("seed", seed, 0)
    for name, value in (
        ("duplicate_fraction", duplicate_fraction),
        ("exact_fraction", exact_fraction),
        ("boilerplate_fraction", boilerplate_fraction),
        ("unicode_fraction", unicode_fraction),
    ):
        _check_fraction(name, value)
    _check_range("cluster_size", cluster_size, 2, None, integer=True)
    _check_range("edit_rate", edit_rate, 0.0, 1.0, integer=False)

    rng = np.random.default_rng([seed, 0])
    sizes = _cluster_sizes(
        rng, n_docs, duplicate_fraction, int(cluster_size[0]), int(cluster_size[1])
    )
    group_size = np.concatenate([sizes, np.ones(n_docs - int(sizes.sum()), dtype=np.int64)])
    group_size = group_size[rng.permutation(group_size.size)]
    group_start = np.cumsum(group_size) - group_size
    origin = np.repeat(group_start, group_size)  # row of each row's original
    is_copy = origin != np.arange(n_docs)
    n_words = np.maximum(
        np.rint(rng.normal(mean_words, 0.3 * mean_words, n_docs)), max(1, mean_words // 4)
    ).astype(np.int64)
    unicode = rng.random(n_docs) < unicode_fraction
    exact = is_copy & (rng.random(n_docs) < exact_fraction)
    rate = np.where(is_copy & ~exact, rng.uniform(edit_rate[0], edit_rate[1], n_docs), 0.0)
    exact |= is_copy & (rate == 0)
    n_bp = len(BOILERPLATE_LINES)
    bp = np.where(rng.random(n_docs) < boilerplate_fraction, rng.integers(0, n_bp, n_docs), -1)
    bp = bp[origin]  # copies keep the original's boilerplate
    bp_front = (rng.random(n_docs) < 0.5)[origin]
    extra = np.where(
        is_copy & ~exact & (rng.random(n_docs) < boilerplate_fraction),
        rng.integers(0, n_bp, n_docs),
        -1,
    )
    extra_front = rng.random(n_docs) < 0.5
    ids = rng.permutation(n_docs).astype(np.int64)
    domain = rng.integers(0, len(_DOMAINS), n_docs)
    page = rng.integers(0, 10**7, n_docs)

    texts: list[str] = []
    for b, g0 in enumerate(range(0, group_size.size, _GROUPS_PER_BLOCK)):
        g1 = min(g0 + _GROUPS_PER_BLOCK, group_size.size)
        r0 = int(group_start[g0])
        r1 = int(group_start[g1 - 1] + group_size[g1 - 1])
        block_rng = np.random.default_rng([seed, 1, b])
        sl = slice(r0, r1)
        texts += _block_texts(
            block_rng, n_words[sl], unicode[sl], origin[sl] - r0, rate[sl], exact[sl]
        )

    for r in np.flatnonzero((bp >= 0) | (extra >= 0)).tolist():
        for line, front in ((bp[r], bp_front[r]), (extra[r], extra_front[r])):
            if line >= 0:
                t = BOILERPLATE_LINES[line]
                texts[r] = f"{t}\n{texts[r]}" if front else f"{texts[r]}\n{t}"

    sources = [
        f"https://{_DOMAINS[d]}/articles/{p:07d}.html"
        for d, p in zip(domain.tolist(), page.tolist(), strict=True)
    ]
    cluster = pd.Series(ids).groupby(origin).transform("min").to_numpy(np.int64)
    order = np.argsort(ids)
    docs = pd.DataFrame(
        {
            "id": ids[order],
            "text": pd.Series(texts, dtype=object).iloc[order].to_numpy(),
            "source": np.asarray(sources, dtype=object)[order],
        }
    )
    truth = pd.DataFrame(
        {
            "id": ids[order],
            "cluster": cluster[order],
            "origin_id": ids[origin][order],
            "edit_rate": rate[order].astype(np.float64),
        }
    )
    return docs, truth


# ---------------------------------------------------------------------------------- writing
def _part_paths(path: str, fmt: str, num_files: int) -> list[str]:
    ext = "jsonl" if fmt == "jsonl" else "parquet"
    return [os.path.join(path, f"part-{i:05d}.{ext}") for i in range(num_files)]


def write_corpus(
    path: str,
    n_docs: int,
    *,
    fmt: str = "jsonl",
    num_files: int = 4,
    seed: int = 0,
    truth_path: str | None = None,
    overwrite: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """Generate a corpus (`generate_corpus`) and write it as files, with its ground truth.

    Parameters
    ----------
    path : directory to create; it gets `num_files` files ``part-NNNNN.jsonl`` (one UTF-8 JSON
        object per line with ``id``, ``text``, ``source``, non-ASCII characters unescaped) or
        ``part-NNNNN.parquet`` (same columns), each holding a contiguous slice of the rows.
    n_docs : number of documents.
    fmt : "jsonl" or "parquet".
    num_files : number of files (>= 1; files may be empty when num_files > n_docs).
    seed : generation seed.
    truth_path : where to write the truth table (Parquet); default ``path + "_truth.parquet"``.
    overwrite : replace the ``part-*`` files and truth file of an earlier run; without it, a
        non-empty `path` is an error.
    **kwargs : passed on to `generate_corpus`.

    Returns
    -------
    dict with ``path``, ``files``, ``truth_path``, ``format``, ``n_docs``, ``n_clusters``
    (planted clusters of two or more documents), ``planted_copies`` and ``seed``.
    """
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ConfigError(f"fmt must be one of {', '.join(map(repr, FORMATS))}, got {fmt!r}")
    _check_int("num_files", num_files, 1)
    if not isinstance(path, str) or not path:
        raise ConfigError(f"path must be a non-empty directory path, got {path!r}")
    path = path.rstrip("/") or "/"
    truth_path = truth_path or path + "_truth.parquet"
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise ConfigError(
            f"path={path!r} exists and is not empty; pass overwrite=True to replace it"
        )
    docs, truth = generate_corpus(n_docs, seed=seed, **kwargs)

    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        if old.startswith("part-"):
            os.remove(os.path.join(path, old))
    files = _part_paths(path, fmt, num_files)
    bounds = np.linspace(0, len(docs), num_files + 1).astype(np.int64)
    for name, lo, hi in zip(files, bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        part = docs.iloc[lo:hi]
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pandas(part, preserve_index=False), name)
            continue
        with open(name, "w", encoding="utf-8") as out:
            for i, text, source in zip(
                part["id"].tolist(), part["text"].tolist(), part["source"].tolist(), strict=True
            ):
                out.write(json.dumps({"id": i, "text": text, "source": source}, ensure_ascii=False))
                out.write("\n")
    truth_dir = os.path.dirname(truth_path)
    if truth_dir:
        os.makedirs(truth_dir, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(truth, preserve_index=False), truth_path)
    copies = int((truth["origin_id"] != truth["id"]).sum())
    return {
        "path": path,
        "files": files,
        "truth_path": truth_path,
        "format": fmt,
        "n_docs": int(len(docs)),
        "n_clusters": int(truth.loc[truth["origin_id"] != truth["id"], "cluster"].nunique()),
        "planted_copies": copies,
        "seed": seed,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m sparkdedup.datagen --output DIR --n-docs N [options]``; prints a JSON summary."""
    parser = argparse.ArgumentParser(
        prog="python -m sparkdedup.datagen",
        description="Write a synthetic corpus with planted near-duplicates and its ground truth.",
    )
    parser.add_argument("--output", required=True, help="directory for the document files")
    parser.add_argument("--n-docs", type=int, required=True, help="number of documents")
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="file format")
    parser.add_argument("--num-files", type=int, default=4, help="number of files")
    parser.add_argument("--seed", type=int, default=0, help="generation seed")
    parser.add_argument(
        "--truth", default=None, help="truth Parquet path (default OUTPUT_truth.parquet)"
    )
    parser.add_argument(
        "--duplicate-fraction", type=float, default=0.3, help="share of planted copies"
    )
    parser.add_argument("--mean-words", type=int, default=170, help="mean words per document")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier corpus")
    args = parser.parse_args(argv)
    try:
        summary = write_corpus(
            args.output,
            args.n_docs,
            fmt=args.format,
            num_files=args.num_files,
            seed=args.seed,
            truth_path=args.truth,
            overwrite=args.overwrite,
            duplicate_fraction=args.duplicate_fraction,
            mean_words=args.mean_words,
        )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
