"""A streamed synthetic corpus for the scale benchmark: millions of documents, bounded memory.

Each document is `words` random words of `sparkdedup.datagen`'s ASCII vocabulary (about 500
characters at 80 words); a `near_fraction` of the documents are near-copies of an earlier
document of the same chunk with `edits` words replaced. The corpus is written chunk by chunk as
Parquet files (``id bigint, text string, source string``), assembled with Arrow's string kernels,
so memory is one chunk whatever the size; 10 million documents take a few minutes.

    python -m benchmarks.stream_corpus --docs 10000000 --out /tmp/corpus-10m
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: Bump when the generation changes, so cached corpora are made again.
STREAM_VERSION = 1


def _vocabulary() -> pa.Array:
    from sparkdedup._textgen import _vocabulary as vocab

    points, offsets, lengths, n_ascii, _ = vocab()
    words = [
        "".join(map(chr, points[o : o + n - 1]))  # each token ends with a space
        for o, n in zip(offsets[:n_ascii], lengths[:n_ascii], strict=True)
    ]
    return pa.array(words, pa.string())


def _chunk(
    rng: np.random.Generator,
    vocab: pa.Array,
    first_id: int,
    n: int,
    words: int,
    near_fraction: float,
    edits: int,
) -> tuple[pa.Table, int]:
    tokens = rng.integers(0, len(vocab), size=(n, words), dtype=np.int32)
    copies = np.flatnonzero(rng.random(n) < near_fraction)
    copies = copies[copies > 0]
    if copies.size:
        sources = (rng.random(copies.size) * copies).astype(np.int64)  # an earlier document
        tokens[copies] = tokens[sources]
        cols = rng.integers(0, words, size=(copies.size, edits))
        tokens[copies[:, None], cols] = rng.integers(0, len(vocab), size=(copies.size, edits))
    flat = pc.take(vocab, pa.array(tokens.reshape(-1)))
    offsets = pa.array(np.arange(0, (n + 1) * words, words, dtype=np.int32))
    texts = pc.binary_join(pa.ListArray.from_arrays(offsets, flat), " ")
    ids = pa.array(np.arange(first_id, first_id + n, dtype=np.int64))
    source = pa.array(np.char.add("site-", (ids.to_numpy() % 997).astype(str)))
    return pa.table({"id": ids, "text": texts, "source": source}), int(copies.size)


def write_stream_corpus(
    out: str,
    n_docs: int,
    *,
    words: int = 80,
    near_fraction: float = 0.1,
    edits: int = 2,
    chunk: int = 250_000,
    seed: int = 2026,
) -> dict[str, Any]:
    """Write the corpus under ``out/docs`` (one Parquet file a chunk) and ``out/meta.json``
    (written last: a directory without it is an interrupted generation). Reuses a complete
    corpus with the same parameters."""
    params = dict(
        version=STREAM_VERSION,
        n_docs=n_docs,
        words=words,
        near_fraction=near_fraction,
        edits=edits,
        chunk=chunk,
        seed=seed,
    )
    meta_path = os.path.join(out, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
        if meta.get("params") == params:
            return dict(meta, cached=True)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "docs"))
    vocab = _vocabulary()
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    chars = nbytes = copies = 0
    for part, first in enumerate(range(0, n_docs, chunk)):
        table, planted = _chunk(
            rng, vocab, first, min(chunk, n_docs - first), words, near_fraction, edits
        )
        pq.write_table(table, os.path.join(out, "docs", f"part-{part:05d}.parquet"))
        chars += int(pc.sum(pc.utf8_length(table["text"])).as_py())
        nbytes += int(pc.sum(pc.binary_length(table["text"])).as_py())
        copies += planted
    meta = {
        "params": params,
        "n_docs": n_docs,
        "chars": chars,
        "utf8_bytes": nbytes,
        "planted_near_copies": copies,
        "docs_path": os.path.join(out, "docs"),
        "generated_seconds": round(time.perf_counter() - started, 1),
    }
    with open(meta_path, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
    return dict(meta, cached=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--words", type=int, default=80)
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args()
    print(
        json.dumps(
            write_stream_corpus(args.out, args.docs, words=args.words, seed=args.seed), indent=2
        )
    )


if __name__ == "__main__":
    main()
