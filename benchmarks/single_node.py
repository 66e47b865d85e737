"""Single-process cases: the sparkdedup MinHash kernel and the datasketch peer.

The kernel case calls `sparkdedup.kernels.minhash.minhash_arrow` (one core, no Spark) on the
corpus in Arrow batches of Spark's default size, as the Spark step does. datasketch is used as
its documentation shows: one ``MinHash(num_perm=260)`` per document, ``update_batch`` with the
document's 24-code-point shingles (UTF-8 bytes), and ``MinHashLSH(params=(20, 13))``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from benchmarks.corpus import load_ids_texts, load_texts, load_truth
from benchmarks.groups import duplicates_from_pairs, recall_of_similar_pairs
from benchmarks.memory import PeakRSS, measure

NUM_PERM = 260
CHAR_NGRAMS = 24
BANDS = (20, 13)
SEED = 42


def _rates(n_docs: int, chars: int, seconds: float) -> dict[str, float]:
    return {
        "docs_per_s": n_docs / seconds if seconds > 0 else float("nan"),
        "mchar_per_s": chars / seconds / 1e6 if seconds > 0 else float("nan"),
    }


def _kernel_runner(texts, use64: bool, batch_rows: int):  # noqa: ANN001, ANN202
    from sparkdedup.kernels.minhash import minhash_arrow, permutation_params

    a, b, murmur_seed = permutation_params(NUM_PERM, SEED, use64)
    minhash_arrow(texts.slice(0, min(len(texts), 64)), a, b, murmur_seed, CHAR_NGRAMS, use64)

    def run() -> None:
        for start in range(0, len(texts), batch_rows):
            sig = minhash_arrow(
                texts.slice(start, batch_rows), a, b, murmur_seed, CHAR_NGRAMS, use64
            )
            if sig.shape[1] != NUM_PERM:
                raise RuntimeError(f"kernel returned {sig.shape[1]} hashes, expected {NUM_PERM}")

    return run


def kernel_sparkdedup(spec: dict[str, Any]) -> dict[str, Any]:
    """MinHash signatures of the whole corpus, one core, `repeats` times (after a warm-up)."""
    meta, use64 = spec["corpus"], bool(spec["use64"])
    texts = load_texts(meta)
    run = _kernel_runner(texts, use64, int(spec["batch_rows"]))
    times, peak, start = measure(run, int(spec["repeats"]))
    median = statistics.median(times)
    return {
        "seconds": times,
        "median_seconds": median,
        "peak_rss_mib": peak,
        "start_rss_mib": start,
        **_rates(meta["n_docs"], meta["chars"], median),
        "notes": f"Arrow batches of {spec['batch_rows']} rows; corpus held in memory",
    }


def _shingles(text: str) -> list[bytes]:
    if len(text) <= CHAR_NGRAMS:
        return [text.encode("utf-8")] if text else []
    return [text[i : i + CHAR_NGRAMS].encode("utf-8") for i in range(len(text) - CHAR_NGRAMS + 1)]


def _datasketch_minhash(text: str):  # noqa: ANN202 - datasketch.MinHash
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM)
    m.update_batch(_shingles(text))
    return m


def kernel_datasketch(spec: dict[str, Any]) -> dict[str, Any]:
    """datasketch MinHash of the first `sample` documents, and the sparkdedup kernel on them."""
    import pyarrow.compute as pc

    meta, sample = spec["corpus"], int(spec["sample"])
    texts = load_texts(meta, limit=sample)
    chars = int(pc.sum(pc.utf8_length(texts)).as_py() or 0)
    py_texts = texts.to_pylist()
    _datasketch_minhash(py_texts[0])

    def run_datasketch() -> None:
        for text in py_texts:
            _datasketch_minhash(text)

    repeats = int(spec["repeats"])
    times, peak, start = measure(run_datasketch, repeats)
    median = statistics.median(times)
    ours, _, _ = measure(_kernel_runner(texts, False, int(spec["batch_rows"])), max(3, repeats))
    ours_median = statistics.median(ours)
    return {
        "seconds": times,
        "median_seconds": median,
        "peak_rss_mib": peak,
        "start_rss_mib": start,
        "sample_docs": len(py_texts),
        "sample_chars": chars,
        **_rates(len(py_texts), chars, median),
        "sparkdedup_same_docs_seconds": ours,
        "sparkdedup_same_docs_docs_per_s": len(py_texts) / ours_median,
        "kernel_speedup": median / ours_median,
        "notes": (
            f"first {len(py_texts)} docs; shingling in Python included; "
            f"sparkdedup 32-bit on the same docs is {median / ours_median:.0f}x faster"
        ),
    }


def e2e_datasketch(spec: dict[str, Any]) -> dict[str, Any]:
    """MinHash + MinHashLSH(20 x 13) over the whole corpus, then groups; one core."""
    from datasketch import MinHashLSH
    from sparkdedup.evaluate import evaluate

    meta = spec["corpus"]
    ids, texts = load_ids_texts(meta)
    times, phases, result = [], [], None
    with PeakRSS() as mem:
        for _ in range(int(spec["repeats"])):
            started = time.perf_counter()
            lsh = MinHashLSH(num_perm=NUM_PERM, params=BANDS)
            left: list[int] = []
            right: list[int] = []
            hashing = 0.0
            for doc_id, text in zip(ids.tolist(), texts, strict=True):
                if not text:
                    continue
                t0 = time.perf_counter()
                m = _datasketch_minhash(text)
                hashing += time.perf_counter() - t0
                # Query before insert: every candidate pair is found once, from its later member.
                for other in lsh.query(m):
                    left.append(other)
                    right.append(doc_id)
                lsh.insert(doc_id, m, check_duplication=False)
            indexed = time.perf_counter()
            result = duplicates_from_pairs(np.asarray(left), np.asarray(right))
            done = time.perf_counter()
            times.append(done - started)
            phases.append(
                {
                    "minhash": hashing,
                    "lsh_insert_query": indexed - started - hashing,
                    "groups": done - indexed,
                    "candidate_pairs": len(left),
                }
            )
            del lsh
    median = statistics.median(times)
    quality = evaluate(result, load_truth(meta))
    return {
        "seconds": times,
        "median_seconds": median,
        "peak_rss_mib": mem.peak_mib,
        "start_rss_mib": mem.start_mib,
        **_rates(meta["n_docs"], meta["chars"], median),
        "recall": quality["recall"],
        "precision": quality["precision"],
        **recall_of_similar_pairs(result, meta.get("similar_pairs_path")),
        "quality": quality,
        "phases": phases,
        "notes": "query-then-insert per document; groups = connected components of candidates",
    }
