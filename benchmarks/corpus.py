"""Synthetic corpora for the benchmarks, generated once by `sparkdedup.datagen` and cached.

A corpus lives in ``<work>/corpus-v1-n<docs>-s<seed>/``: ``docs/part-*.parquet`` (id, text,
source), ``truth.parquet`` (the planted clusters) and ``meta.json``, written last, so a
directory without it is an interrupted generation and is made again. 1M documents take about
70 s to generate; every later run reuses them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: Bump when the generation parameters below change, so old caches are not reused.
CORPUS_VERSION = 1
NUM_FILES = 8


def corpus_dir(work_dir: str, n_docs: int, seed: int) -> str:
    return os.path.join(work_dir, f"corpus-v{CORPUS_VERSION}-n{n_docs}-s{seed}")


def ensure_corpus(work_dir: str, n_docs: int, seed: int) -> dict[str, Any]:
    """The corpus of `n_docs` documents for `seed`, generated now if not cached.

    Returns its meta: ``docs_path``, ``truth_path``, ``n_docs``, ``chars`` (code points),
    ``utf8_bytes``, ``planted_copies``, ``n_clusters``, ``seed``, ``generated_seconds`` and
    ``cached`` (True when read back from an earlier run).
    """
    final = corpus_dir(work_dir, n_docs, seed)
    meta_path = os.path.join(final, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
        meta["cached"] = True
        return _with_paths(meta, final)

    from sparkdedup.datagen import write_corpus

    os.makedirs(work_dir, exist_ok=True)
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.perf_counter()
    summary = write_corpus(
        os.path.join(tmp, "docs"),
        n_docs,
        fmt="parquet",
        num_files=NUM_FILES,
        seed=seed,
        truth_path=os.path.join(tmp, "truth.parquet"),
    )
    texts = pq.read_table(os.path.join(tmp, "docs"), columns=["text"]).column("text")
    meta = {
        "version": CORPUS_VERSION,
        "n_docs": int(summary["n_docs"]),
        "seed": seed,
        "chars": int(pc.sum(pc.utf8_length(texts)).as_py() or 0),
        "utf8_bytes": int(pc.sum(pc.binary_length(texts)).as_py() or 0),
        "planted_copies": int(summary["planted_copies"]),
        "n_clusters": int(summary["n_clusters"]),
        "generated_seconds": round(time.perf_counter() - started, 1),
        "generator": "sparkdedup.datagen.write_corpus (default parameters)",
    }
    with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    meta["cached"] = False
    return _with_paths(meta, final)


def _with_paths(meta: dict[str, Any], root: str) -> dict[str, Any]:
    return dict(
        meta,
        root=root,
        docs_path=os.path.join(root, "docs"),
        truth_path=os.path.join(root, "truth.parquet"),
    )


def load_texts(meta: dict[str, Any], limit: int | None = None) -> pa.Array:
    """The texts as one Arrow string array (the first `limit` documents when given)."""
    column = pq.read_table(meta["docs_path"], columns=["text"]).column("text")
    if limit is not None:
        column = column.slice(0, limit)
    array = column.combine_chunks()
    if pa.types.is_large_string(array.type) and array.nbytes < 2**31 - 1:
        array = array.cast(pa.string())
    return array


def load_ids_texts(meta: dict[str, Any], limit: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Ids (int64) and texts (Python str) in file order, for the single-node peers."""
    table = pq.read_table(meta["docs_path"], columns=["id", "text"])
    if limit is not None:
        table = table.slice(0, limit)
    return table.column("id").to_numpy(), table.column("text").to_pylist()


def load_truth(meta: dict[str, Any]):  # noqa: ANN201 - pandas.DataFrame
    import pandas as pd

    return pd.read_parquet(meta["truth_path"])


def similar_planted_pairs(meta: dict[str, Any], char_ngrams: int = 24):  # noqa: ANN201
    """Planted pairs with their exact shingle Jaccard, computed once per corpus and cached.

    One planted cluster at a time (its members' shingle sets only), so memory stays small.
    Returns a pandas DataFrame ``id_a, id_b, jaccard``.
    """
    import pandas as pd
    from sparkdedup.evaluate import shingle_set

    path = os.path.join(meta["root"], f"planted_pairs_jaccard_{char_ngrams}.parquet")
    if os.path.exists(path):
        pairs = pd.read_parquet(path)
        pairs.attrs["path"] = path
        return pairs
    truth = load_truth(meta)
    sizes = truth.groupby("cluster")["id"].transform("size")
    clustered = truth.loc[sizes > 1, ["id", "cluster"]]
    ids, texts = load_ids_texts(meta)
    text_of = dict(zip(ids.tolist(), texts, strict=True))
    rows: list[tuple[int, int, float]] = []
    for _, members in clustered.groupby("cluster")["id"]:
        member_ids = sorted(members.tolist())
        sets = [shingle_set(text_of[i], char_ngrams) for i in member_ids]
        for x in range(len(member_ids)):
            for y in range(x + 1, len(member_ids)):
                inter = len(sets[x] & sets[y])
                union = len(sets[x]) + len(sets[y]) - inter
                rows.append((member_ids[x], member_ids[y], inter / union if union else 1.0))
    pairs = pd.DataFrame(rows, columns=["id_a", "id_b", "jaccard"])
    pairs.to_parquet(path + f".tmp-{os.getpid()}")
    os.replace(path + f".tmp-{os.getpid()}", path)
    pairs.attrs["path"] = path
    return pairs
