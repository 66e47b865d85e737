"""The GPU check (`make gpu-check`): sparkdedup's CUDA kernels against its CPU kernels, bit for
bit, and their throughput, on one machine with a CUDA GPU.

Needs only NumPy, pyarrow, numba (numba-cuda) and CuPy: no Spark, no cuDF, no JVM (the kernel
modules it imports never import pyspark). On a machine without a usable CUDA GPU it prints why
and exits 0 with ``"skipped"`` in its JSON, so it can run anywhere.

    PYTHONPATH=python/src python3 -m benchmarks.gpu_check [--docs 100000] [--json PATH]

What it runs:

1. A corpus of real-looking documents, mixed scripts and lengths (ASCII prose, Latin with
   accents, Cyrillic, CJK, emoji; lengths log-normal around 1,000 code points, a few up to
   50,000), seeded.
2. MinHash, 260 permutations, 24-code-point shingles, 32- and 64-bit: the numba CUDA kernels
   (`minhash_numba_cuda`, what runs on executors without cuDF) against the CPU kernel
   (`minhash_arrow_cpu`), every value compared; GPU throughput in GB/s of UTF-8 text and
   documents/s, the transfers included, median of 3 after a warm-up.
3. Long documents: one document of 1 MB and one of 16 MB (ASCII prose), 64-bit, against the
   CPU kernel, and their GPU seconds: a long document is hashed in chunks of 4,096 bytes spread
   over the GPU, so its rate should stay near the bulk rate.
4. With ``--embed-model DIR`` (a sentence-transformers model directory; needs pyspark or
   pyspark-client, torch and sentence-transformers): the embedding function each Spark Python
   worker builds (`sparkdedup.semantic.embed`) on the GPU against the CPU, 1,024 texts (every
   97th null), and its GPU throughput on 20,000 texts of 5-120 words and on 2,000 texts of
   1,000-2,000 words, beside the tokenizer's own rate on those long texts on one thread (it
   reads each text whole before truncating it: where its rate is near the GPU's, tokenization
   bounds the embedding step, and a GPU wants several Python workers feeding it). Float16
   weights (a model carried at half size) are loaded back as float32, the same weights on both
   devices.
5. The SemDeDup pairwise kernel (`pairwise_max_similarity`) with CuPy against NumPy on
   (20,000 x 384) unit vectors: scores within float32 rounding, indices equal where the maxima
   are not tied; throughput in similarity pairs/s.

It prints one table and writes the figures as JSON (``--json``, default
``benchmarks/results/gpu_check.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_JSON = os.path.join(HERE, "results", "gpu_check.json")
NUM_HASHES, WIDTH, SEED = 260, 24, 42


def unavailable() -> str | None:
    """Why this machine cannot run the check (None when it can)."""
    missing = []
    for module in ("numpy", "pyarrow", "numba", "cupy"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
        except Exception as err:  # noqa: BLE001 - e.g. CuPy without a CUDA runtime
            missing.append(f"{module} ({type(err).__name__}: {err})")
    if missing:
        return (
            "missing " + ", ".join(missing) + " (the check needs NumPy, pyarrow, numba-cuda, CuPy)"
        )
    try:
        from numba import cuda

        if not cuda.is_available():
            return "numba finds no CUDA GPU (no device, or no CUDA driver)"
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy finds no CUDA GPU"
    except Exception as err:  # noqa: BLE001 - a driver or runtime error is a reason, not a crash
        return f"CUDA is not usable: {type(err).__name__}: {err}"
    return None


# ------------------------------------------------------------------------------------ corpus
_SCRIPTS = {
    "ascii": "abcdefghijklmnopqrstuvwxyz",
    "latin": "abcdefghijklmnopqrstuvwxyzàáâäçèéêëíîïñóôöúûüßøåæœ",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщъыьэюя",
    "cjk": "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其",
    "emoji": "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩😘😗☺😚😙🥲😋😛😜🤪😝🤑🤗🤭",
}
_SHARES = {"ascii": 0.5, "latin": 0.15, "cyrillic": 0.15, "cjk": 0.15, "emoji": 0.05}


def corpus(n: int, seed: int = 2026) -> list[str]:
    """`n` documents: each mostly of one script (its share above), lengths log-normal around
    1,000 code points, one in 2,000 long (up to 50,000)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    names = list(_SHARES)
    scripts = rng.choice(len(names), size=n, p=[_SHARES[k] for k in names])
    lengths = np.clip(rng.lognormal(np.log(1000), 0.6, size=n), 30, 20_000).astype(int)
    lengths[rng.random(n) < 0.0005] = 50_000
    docs = []
    for script, length in zip(scripts, lengths, strict=True):
        alphabet = _SCRIPTS[names[script]]
        dense = names[script] == "cjk"
        codes = rng.integers(0, len(alphabet), size=length)
        chars = [alphabet[c] for c in codes]
        if not dense:  # words of 2-9 letters
            for pos in np.cumsum(rng.integers(3, 10, size=length // 3)):
                if pos < length:
                    chars[pos] = " "
        docs.append("".join(chars))
    return docs


# ------------------------------------------------------------------------------------ checks
def _median_seconds(fn: Any, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def check_minhash(docs: list[str], use64: bool, repeats: int = 3) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    from sparkdedup.kernels.minhash import permutation_params
    from sparkdedup.kernels.minhash_cpu import minhash_arrow_cpu
    from sparkdedup.kernels.minhash_gpu import minhash_numba_cuda

    array = pa.array(docs, pa.string())
    a, b, seed = permutation_params(NUM_HASHES, SEED, use64)
    start = time.perf_counter()
    cpu = minhash_arrow_cpu(array, a, b, seed, WIDTH, use64)
    cpu_s = time.perf_counter() - start
    minhash_numba_cuda(array.slice(0, 64), a, b, seed, WIDTH, use64)  # compile, warm up
    gpu = minhash_numba_cuda(array, a, b, seed, WIDTH, use64)
    mismatched_docs = int(np.count_nonzero((gpu != cpu).any(axis=1)))
    gpu_s = _median_seconds(lambda: minhash_numba_cuda(array, a, b, seed, WIDTH, use64), repeats)
    text_bytes = int(array.buffers()[2].size)
    return {
        "mode": "64-bit" if use64 else "32-bit",
        "docs": len(docs),
        "text_bytes": text_bytes,
        "bit_identical": mismatched_docs == 0,
        "mismatched_docs": mismatched_docs,
        "gpu_seconds": round(gpu_s, 4),
        "gpu_gb_per_s": round(text_bytes / gpu_s / 1e9, 3),
        "gpu_docs_per_s": round(len(docs) / gpu_s),
        "cpu_seconds_one_core": round(cpu_s, 3),
        "cpu_mb_per_s": round(text_bytes / cpu_s / 1e6, 1),
    }


def check_long_documents(sizes: tuple[int, ...] = (1 << 20, 16 << 20)) -> list[dict[str, Any]]:
    import numpy as np
    import pyarrow as pa
    from sparkdedup.kernels.minhash import permutation_params
    from sparkdedup.kernels.minhash_cpu import minhash_arrow_cpu
    from sparkdedup.kernels.minhash_gpu import minhash_numba_cuda

    a, b, seed = permutation_params(NUM_HASHES, SEED, True)
    words = np.array(corpus(64, seed=5)[0].split())
    rows = []
    for size in sizes:
        rng = np.random.default_rng(size)
        text = " ".join(rng.choice(words, size=size // 4))[:size]
        array = pa.array([text], pa.string())
        start = time.perf_counter()
        cpu = minhash_arrow_cpu(array, a, b, seed, WIDTH, True)
        cpu_s = time.perf_counter() - start
        start = time.perf_counter()
        gpu = minhash_numba_cuda(array, a, b, seed, WIDTH, True)
        gpu_s = time.perf_counter() - start
        rows.append(
            {
                "bytes": len(text),
                "bit_identical": bool(np.array_equal(gpu, cpu)),
                "gpu_seconds": round(gpu_s, 4),
                "gpu_mb_per_s": round(len(text) / gpu_s / 1e6, 1),
                "cpu_seconds_one_core": round(cpu_s, 3),
            }
        )
    return rows


def _float32_copy(model_dir: str) -> str:
    """`model_dir`, or a copy of it with float32 weights when its safetensors are float16."""
    import shutil
    import tempfile

    from safetensors.torch import load_file, save_file

    weights = os.path.join(model_dir, "model.safetensors")
    tensors = load_file(weights) if os.path.exists(weights) else {}
    if not any(str(t.dtype) == "torch.float16" for t in tensors.values()):
        return model_dir
    copy = os.path.join(tempfile.mkdtemp(prefix="gpu-check-model-"), "model")
    shutil.copytree(model_dir, copy)
    floats = {k: t.float() if t.is_floating_point() else t for k, t in tensors.items()}
    save_file(floats, os.path.join(copy, "model.safetensors"))
    return copy


def check_embedding(
    model_dir: str, n: int = 20_000, devices: tuple[str, str] = ("gpu", "cpu")
) -> dict[str, Any]:
    import numpy as np
    from sparkdedup.semantic.embed import _make_predict_fn

    model = _float32_copy(model_dir)
    rng = np.random.default_rng(0)
    words = np.array(corpus(8, seed=3)[0].split()[:400])
    texts = np.array(
        [" ".join(rng.choice(words, size=int(k))) for k in rng.integers(5, 120, size=n)],
        dtype=object,
    )
    texts[::97] = None
    start = time.perf_counter()
    gpu = _make_predict_fn(model, 256, devices[0])()
    load_s = time.perf_counter() - start
    cpu = _make_predict_fn(model, 64, devices[1])()
    sample = texts[:1024]
    on_gpu, on_cpu = gpu(sample), cpu(sample)
    present = np.array([t is not None for t in sample])
    a, b = on_gpu[present], on_cpu[present]
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    gpu(texts[:2048])  # warm-up
    gpu_s = _median_seconds(lambda: gpu(texts))
    # Long documents (web pages run to thousands of words): the tokenizer reads every text
    # whole before truncating it to the model's length, on one thread per Python worker, so
    # its rate alone (same thread, same batches) says whether it bounds the GPU's.
    long_texts = np.array(
        [
            " ".join(rng.choice(words, size=int(k)))
            for k in rng.integers(1_000, 2_000, max(n // 10, 8))
        ],
        dtype=object,
    )
    gpu(long_texts[:256])
    long_s = _median_seconds(lambda: gpu(long_texts))
    tokenizer, limit = _tokenizer(model)
    tokenize_s = _median_seconds(lambda: _tokenize(tokenizer, limit, long_texts, 256))
    return {
        "model": model_dir,
        "dim": int(on_gpu.shape[1]),
        "max_abs_difference": float(np.max(np.abs(on_gpu - on_cpu))),
        "min_cosine": float(np.min(cosine)),
        "matches": bool(np.min(cosine) > 0.9999 and not on_gpu[~present].any()),
        "model_load_seconds": round(load_s, 2),
        "gpu_texts_per_s": round(n / gpu_s),
        "long_text_chars": round(float(np.mean([len(t) for t in long_texts]))),
        "gpu_long_texts_per_s": round(len(long_texts) / long_s),
        "tokenizer_long_texts_per_s": round(len(long_texts) / tokenize_s),
    }


def _tokenizer(model_dir: str) -> tuple[Any, int]:
    """The model's tokenizer and maximum sequence length (sentence-transformers' config)."""
    from transformers import AutoTokenizer

    limit = 512
    config = os.path.join(model_dir, "sentence_bert_config.json")
    if os.path.exists(config):
        with open(config) as fh:
            limit = json.load(fh).get("max_seq_length", limit)
    return AutoTokenizer.from_pretrained(model_dir), limit


def _tokenize(tokenizer: Any, limit: int, texts: Any, batch_size: int) -> None:
    """Tokenize `texts` as sentence-transformers does before the model (padded batches,
    truncated to `limit` word pieces), on this thread."""
    for i in range(0, len(texts), batch_size):
        tokenizer(
            list(texts[i : i + batch_size]),
            padding=True,
            truncation="longest_first",
            max_length=limit,
            return_tensors="pt",
        )


def check_pairwise(n: int = 20_000, d: int = 384, seed: int = 7) -> dict[str, Any]:
    import cupy
    import numpy as np
    from sparkdedup.kernels.pairwise import pairwise_max_similarity

    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n, d)).astype(np.float32)
    e[n // 2 :] = e[: n - n // 2] + 0.05 * rng.standard_normal((n - n // 2, d)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    start = time.perf_counter()
    cpu_scores, cpu_index = pairwise_max_similarity(e)
    cpu_s = time.perf_counter() - start
    d_e = cupy.asarray(e)

    def on_gpu() -> tuple[Any, Any]:
        scores, index = pairwise_max_similarity(d_e, xp=cupy)
        cupy.cuda.Stream.null.synchronize()
        return scores, index

    gpu_scores, gpu_index = on_gpu()
    gpu_s = _median_seconds(on_gpu)
    gpu_scores, gpu_index = cupy.asnumpy(gpu_scores), cupy.asnumpy(gpu_index)
    diff = float(np.max(np.abs(gpu_scores - cpu_scores)))
    same_index = float(np.mean(gpu_index == cpu_index))
    pairs = n * (n - 1) / 2
    return {
        "rows": n,
        "dim": d,
        "max_score_difference": diff,
        "scores_match": diff <= 1e-5,
        "same_index_share": round(same_index, 6),
        "gpu_seconds": round(gpu_s, 4),
        "gpu_pairs_per_s": round(pairs / gpu_s),
        "cpu_seconds": round(cpu_s, 3),
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        "| check | result | GPU seconds | GPU throughput | CPU |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in results["minhash"]:
        ok = "bit-identical" if row["bit_identical"] else f"{row['mismatched_docs']} docs differ"
        lines.append(
            f"| MinHash {row['mode']}, {row['docs']:,} docs, {row['text_bytes'] / 1e6:.0f} MB | "
            f"{ok} | {row['gpu_seconds']} | {row['gpu_gb_per_s']} GB/s, "
            f"{row['gpu_docs_per_s']:,} docs/s | {row['cpu_mb_per_s']} MB/s on one core |"
        )
    for row in results.get("long_documents", []):
        ok = "bit-identical" if row["bit_identical"] else "differs"
        lines.append(
            f"| MinHash 64-bit, one document of {row['bytes'] / 1e6:.0f} MB | {ok} | "
            f"{row['gpu_seconds']} | {row['gpu_mb_per_s']} MB/s | "
            f"{row['cpu_seconds_one_core']} s on one core |"
        )
    e = results.get("embedding")
    if e:
        ok = f"min cosine {e['min_cosine']:.7f}, max |diff| {e['max_abs_difference']:.1e}"
        lines.append(
            f"| embedding, {os.path.basename(e['model'].rstrip('/'))} | {ok} | | "
            f"{e['gpu_texts_per_s']:,} texts/s | |"
        )
        lines.append(
            f"| embedding, texts of {e['long_text_chars']:,} characters | | | "
            f"{e['gpu_long_texts_per_s']:,} texts/s | tokenizer alone "
            f"{e['tokenizer_long_texts_per_s']:,} texts/s on one thread |"
        )
    p = results["pairwise"]
    ok = f"max |diff| {p['max_score_difference']:.2e}, same index {p['same_index_share']:.4f}"
    lines.append(
        f"| pairwise {p['rows']:,} x {p['dim']} | {ok} | {p['gpu_seconds']} | "
        f"{p['gpu_pairs_per_s']:,} pairs/s | {p['cpu_seconds']} s |"
    )
    return "\n".join(lines)


def run(docs: int, path: str, embed_model: str | None = None) -> int:
    reason = unavailable()
    result: dict[str, Any] = {"machine": platform.node(), "python": sys.version.split()[0]}
    if reason is not None:
        result["skipped"] = reason
        print(f"gpu-check skipped: {reason}")
    else:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        result["gpu"] = (
            props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        )
        from sparkdedup.device import gpu_kernel_runs

        runs, why = gpu_kernel_runs(False)
        if not runs:  # say so in one line, as a fuzzy run's probe would
            result["failed"] = why
            print(f"gpu-check failed: {why}")
            _write(result, path)
            return 1
        texts = corpus(docs)
        result["minhash"] = [check_minhash(texts, False), check_minhash(texts, True)]
        result["long_documents"] = check_long_documents()
        result["pairwise"] = check_pairwise()
        if embed_model:
            result["embedding"] = check_embedding(embed_model)
        print(f"gpu-check on {result['gpu']}")
        print(table(result))
    _write(result, path)
    if reason is not None:
        return 0
    minhash = result["minhash"] + result["long_documents"]
    ok = all(r["bit_identical"] for r in minhash) and result["pairwise"]["scores_match"]
    ok = ok and result.get("embedding", {}).get("matches", True)
    return 0 if ok else 1


def _write(result: dict[str, Any], path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000, help="documents (default 100,000)")
    parser.add_argument("--json", default=DEFAULT_JSON, help="where the figures are written")
    parser.add_argument(
        "--embed-model",
        help="a sentence-transformers model directory: also compare GPU and CPU embeddings",
    )
    args = parser.parse_args(argv)
    return run(args.docs, args.json, args.embed_model)


if __name__ == "__main__":
    sys.exit(main())
