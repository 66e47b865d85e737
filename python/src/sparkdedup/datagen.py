"""Synthetic corpora with planted near-duplicates and their ground truth.

Used by the tests, `make demo` and the benchmarks. Documents are random sequences of made-up
words (unrelated documents share no 24-code-point shingle); a planted cluster is an original plus
edited or exact copies of it. Pair-level metrics against the truth are in `sparkdedup.evaluate`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

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
_UNICODE_WORD_SHARE = 0.2  # share of the words of a Unicode document taken from non-ASCII words
_EDIT_OPS = 6  # char substitution, char insertion, char deletion, word swap, deletion, insertion
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
@functools.lru_cache(maxsize=1)
def _vocabulary() -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Token code points (each token followed by a space), offsets, lengths, ASCII/Unicode counts.

    Fixed (its own seed), so every corpus draws from the same vocabulary: 4,000 made-up ASCII
    words plus 400 with punctuation, then 600 non-ASCII words (accents, Greek, Cyrillic, CJK, kana,
    emoji).
    """
    rng = np.random.default_rng(0x5EED)
    # short syllables, 1-3 per word: about 5 letters a word, so 170 words are about 1 KB
    onsets = "b c d f g h j k l m n p r s t v w z b d k m p s t br ch st th tr".split()
    vowels = "a e i o u a e i o ai ea ou".split()
    codas = ["", "", "", "", "n", "r", "s", "l", "m", "nd"]

    def words(count: int, vow: Sequence[str], seen: set[str]) -> list[str]:
        out: list[str] = []
        while len(out) < count:
            n_syl = int(rng.choice(3, p=(0.45, 0.4, 0.15))) + 1
            w = "".join(
                onsets[rng.integers(len(onsets))] + vow[rng.integers(len(vow))]
                for _ in range(n_syl)
            )
            w += codas[rng.integers(len(codas))]
            if w not in seen:
                seen.add(w)
                out.append(w)
        return out

    seen: set[str] = set()
    ascii_words = words(4000, vowels, seen)
    ascii_words += [w + ("," if i % 2 else ".") for i, w in enumerate(ascii_words[:400])]
    accented = words(200, "à á â ä é è ê ë í ï ó ö ô ú ü ñ ç ø å".split(), seen)

    def script(count: int, lo: int, hi: int, min_len: int, max_len: int) -> list[str]:
        return [
            "".join(chr(int(c)) for c in rng.integers(lo, hi, int(rng.integers(min_len, max_len))))
            for _ in range(count)
        ]

    unicode_words = (
        accented
        + script(100, 0x03B1, 0x03CA, 3, 9)  # Greek
        + script(100, 0x0430, 0x0450, 3, 9)  # Cyrillic
        + script(100, 0x4E00, 0x9FA6, 2, 5)  # CJK ideographs
        + script(50, 0x3041, 0x3097, 2, 6)  # hiragana
        + script(50, 0x1F600, 0x1F650, 1, 3)  # emoji (outside the BMP)
    )
    tokens = ascii_words + unicode_words
    lens = np.array([len(t) + 1 for t in tokens], dtype=np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
    cps = np.frombuffer((" ".join(tokens) + " ").encode("utf-32-le"), dtype="<u4").copy()
    return cps, offs, lens, len(ascii_words), len(unicode_words)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for each (s, n), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    shift = np.repeat(starts - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift


def _interleave(
    first: np.ndarray, first_ok: np.ndarray, second: np.ndarray, second_ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per position, `first` (if first_ok) then `second` (if second_ok), flattened."""
    vals = np.stack([first, second], axis=1).ravel()
    keep = np.stack([first_ok, second_ok], axis=1).ravel()
    return vals[keep], first_ok.astype(np.int64) + second_ok


# ---------------------------------------------------------------------------------- generation
def _cluster_sizes(
    rng: np.random.Generator, n_docs: int, frac: float, lo: int, hi: int
) -> np.ndarray:
    """Sizes of the planted clusters holding exactly round(frac * n_docs) copies in total."""
    target = int(round(frac * n_docs))
    if target == 0:
        return np.zeros(0, dtype=np.int64)
    draw = rng.integers(lo, hi + 1, size=target // max(lo - 1, 1) + 1)
    copies = np.cumsum(draw - 1)
    n_clusters = int(np.searchsorted(copies, target)) + 1
    sizes = draw[:n_clusters].copy()
    sizes[-1] -= copies[n_clusters - 1] - target  # the last cluster may end below `lo`
    if target + n_clusters > n_docs:
        raise ConfigError(
            f"duplicate_fraction={frac} cannot be planted in n_docs={n_docs} with "
            f"cluster_size=({lo}, {hi}): it needs {target + n_clusters} documents; use a lower "
            f"duplicate_fraction or larger clusters (at most {(hi - 1) / hi:.3f} for this size)"
        )
    return sizes


def _edit_tokens(
    rng: np.random.Generator, tok: np.ndarray, row: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word edits (swap, delete, insert) on copy tokens; returns tokens, rows, char-edit codes."""
    if tok.size == 0:
        return tok, row, np.zeros(0, dtype=np.int64)
    n_ascii = _vocabulary()[3]
    edited = rng.random(tok.size) < rate[row]
    first = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    n_tok = np.diff(np.r_[first, tok.size])
    # at least one edit per edited copy, so that it never equals its original by chance
    forced = first + (rng.random(first.size) * n_tok).astype(np.int64)
    edited[forced[np.add.reduceat(edited, first) == 0]] = True
    op = np.where(edited, rng.integers(0, _EDIT_OPS, tok.size), -1)
    same_next = np.zeros(tok.size, dtype=bool)
    same_next[:-1] = row[:-1] == row[1:]
    swap = (op == 3) & same_next
    swap[1:] &= ~swap[:-1]  # no overlapping swaps
    where = np.flatnonzero(swap)
    tok[where], tok[where + 1] = tok[where + 1], tok[where].copy()
    keep = op != 4
    keep[first[np.add.reduceat(keep, first) == 0]] = True  # never delete every word
    ins = op == 5
    new_tok = rng.integers(0, n_ascii, tok.size)
    tok2, per = _interleave(tok, keep, new_tok, ins)
    row2 = np.repeat(row, per)
    cop = _interleave(np.where(op <= 2, op, -1), keep, np.full(tok.size, -1), ins)[0]
    return tok2, row2, cop


def _char_edits(
    rng: np.random.Generator,
    cps: np.ndarray,
    tok_start: np.ndarray,
    tok_len: np.ndarray,
    tok_row: np.ndarray,
    cop: np.ndarray,
    n_rows: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply char substitution (0), insertion (1) or deletion (2) inside each marked token.

    Returns the new code points and the change of length of each row.
    """
    letters = np.frombuffer("abcdefghijklmnopqrstuvwxyz".encode("utf-32-le"), dtype="<u4")
    marked = np.flatnonzero(cop >= 0)
    # a position inside the word, never its trailing space, so every text still ends with one
    pos = tok_start[marked] + (rng.random(marked.size) * (tok_len[marked] - 1)).astype(np.int64)
    pick = rng.integers(0, letters.size, marked.size)
    pick[letters[pick] == cps[pos]] += 1  # a substitution always changes the character
    new_char = letters[pick % letters.size]
    kind = cop[marked]
    cps[pos[kind == 0]] = new_char[kind == 0]
    ins_pos, del_pos = pos[kind == 1], pos[kind == 2]  # sorted: tokens are in buffer order
    out = np.insert(cps, ins_pos, new_char[kind == 1])
    out = np.delete(out, del_pos + np.searchsorted(ins_pos, del_pos, side="right"))
    rows = tok_row[marked]
    delta = np.bincount(rows[kind == 1], minlength=n_rows) - np.bincount(
        rows[kind == 2], minlength=n_rows
    )
    return out, delta


def _block_texts(
    rng: np.random.Generator,
    n_words: np.ndarray,
    unicode: np.ndarray,
    origin: np.ndarray,
    rate: np.ndarray,
    exact: np.ndarray,
) -> list[str]:
    """Texts of one block of rows; originals have origin == own index, copies point to one."""
    cps_vocab, offs, lens, n_ascii, n_uni = _vocabulary()
    orig_rows = np.flatnonzero(origin == np.arange(origin.size))
    tok = rng.integers(0, n_ascii, int(n_words[orig_rows].sum()))
    orig_row_of_tok = np.repeat(orig_rows, n_words[orig_rows])
    uni = unicode[orig_row_of_tok] & (rng.random(tok.size) < _UNICODE_WORD_SHARE)
    tok[uni] = n_ascii + rng.integers(0, n_uni, int(uni.sum()))
    orig_start = np.zeros(origin.size, dtype=np.int64)
    orig_start[orig_rows] = np.cumsum(n_words[orig_rows]) - n_words[orig_rows]
    # every row as a copy of its origin's tokens (originals copy themselves)
    row_tok = tok[_ranges(orig_start[origin], n_words[origin])]
    row = np.repeat(np.arange(origin.size), n_words[origin])
    edit = ~exact[row] & (origin[row] != row)
    e_tok, e_row, e_cop = _edit_tokens(rng, row_tok[edit], row[edit], rate)
    all_tok = np.concatenate([row_tok[~edit], e_tok])
    all_row = np.concatenate([row[~edit], e_row])
    all_cop = np.concatenate([np.full(int((~edit).sum()), -1), e_cop])
    order = np.argsort(all_row, kind="stable")
    all_tok, all_row, all_cop = all_tok[order], all_row[order], all_cop[order]
    t_len = lens[all_tok]
    t_start = np.cumsum(t_len) - t_len
    cps = cps_vocab[_ranges(offs[all_tok], t_len)]
    out, delta = _char_edits(rng, cps, t_start, t_len, all_row, all_cop, origin.size)
    row_len = np.bincount(all_row, weights=t_len, minlength=origin.size).astype(np.int64) + delta
    row_end = np.cumsum(row_len)
    row_begin = row_end - row_len
    chunk = out.tobytes().decode("utf-32-le")
    return [
        chunk[b : e - 1] for b, e in zip(row_begin.tolist(), row_end.tolist(), strict=True)
    ]  # drop last space


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
