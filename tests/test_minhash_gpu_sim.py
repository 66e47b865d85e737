"""CUDA MinHash kernel (`kernels.minhash_gpu`) against the oracle: simulator and real GPU.

numba picks its CUDA simulator at import time, so the simulator run happens in a subprocess
with NUMBA_ENABLE_CUDASIM=1. The `gpu` test runs the compiled kernel when a GPU is present.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest
from sparkdedup.kernels.minhash import minhash_arrow, permutation_params
from sparkdedup.kernels.minhash_ref import minhash_reference
from utf8_cases import INVALID_UTF8

VECTORS = os.path.join(os.path.dirname(__file__), "data", "test_vectors.json")

UNICODE_TEXTS = [
    "漢字🙂 e\u0301 x",
    None,
    "",
    "ab",
    "👍🏽👍🏽👍🏽👍🏽👍🏽",
    "\U0010ffffß\u0000Ω" * 3,
]


SIM_SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np, pyarrow as pa
    warnings.simplefilter("ignore", RuntimeWarning)  # NumPy scalar wrap-around in the simulator
    from numba import cuda
    assert cuda.simulator_enabled if hasattr(cuda, "simulator_enabled") else True
    from sparkdedup.kernels.minhash_gpu import minhash_arrow_gpu, minhash_numba_cuda
    from sparkdedup.kernels.minhash_ref import minhash_reference

    vectors = json.load(open(sys.argv[1], encoding="utf-8"))
    texts = json.loads(sys.argv[2])
    failures = []
    v = vectors["cudf_cpp_permuted"]
    for use64, key in ((False, "expected_32"), (True, "expected_64")):
        dtype = np.uint64 if use64 else np.uint32
        a, b = np.array(v["a"], dtype), np.array(v["b"], dtype)
        got = minhash_numba_cuda(pa.array(v["docs"]), a, b, v["seed"], v["width"], use64)
        if got.tolist() != v[key]:
            failures.append(("cudf_cpp_permuted", key, got.tolist()))
        # A slice: the kernel must honour the Arrow offset.
        got = minhash_numba_cuda(pa.array(v["docs"])[2:], a, b, v["seed"], v["width"], use64)
        if got.tolist() != v[key][2:]:
            failures.append(("cudf_cpp_permuted sliced", key, got.tolist()))
    # cuDF's wide-string vector: its first document (the 1 MiB one runs on a real GPU only).
    v = vectors["cudf_cpp_wide"]
    for use64, key in ((False, "expected_32"), (True, "expected_64")):
        dtype = np.uint64 if use64 else np.uint32
        a, b = np.array(v["a"], dtype), np.array(v["b"], dtype)
        got = minhash_numba_cuda(pa.array(["x" * 2048]), a, b, v["seed"], v["width"], use64)
        if got.tolist() != v[key][:1]:
            failures.append(("cudf_cpp_wide", key, got.tolist()))
    for name, use64 in (("cudf_python_docstring_32", False), ("cudf_python_docstring_64", True)):
        v = vectors[name]
        dtype = np.uint64 if use64 else np.uint32
        got = minhash_arrow_gpu(
            pa.array(v["docs"]), np.array(v["a"], dtype), np.array(v["b"], dtype),
            v["seed"], v["width"], use64,
        )
        if got.tolist() != v["expected"]:
            failures.append((name, got.tolist()))
    for use64 in (False, True):
        dtype = np.uint64 if use64 else np.uint32
        a, b = np.array([3, 5, 7, 11, 2**31 - 1], dtype), np.array([1, 2, 3, 4, 5], dtype)
        for width in (2, 5):
            got = minhash_numba_cuda(pa.array(texts, pa.large_string()), a, b, 12345, width, use64)
            ref = minhash_reference(texts, a, b, 12345, width, use64)
            if not np.array_equal(got, ref):
                failures.append(("unicode", use64, width, got.tolist(), ref.tolist()))
    # Documents longer than a permutation chunk: split over several blocks, merged by atomic
    # minima (a small chunk, so that the simulator's short texts span many).
    from sparkdedup.kernels import minhash_gpu
    minhash_gpu._CHUNK = 16
    long_texts = texts + ["".join(texts[i] or "" for i in range(len(texts))) * 3, "x" * 17]
    for use64 in (False, True):
        dtype = np.uint64 if use64 else np.uint32
        a, b = np.array([3, 5, 7, 11, 2**31 - 1], dtype), np.array([1, 2, 3, 4, 5], dtype)
        for width in (1, 5):
            got = minhash_numba_cuda(pa.array(long_texts)[1:], a, b, 99, width, use64)
            ref = minhash_reference(long_texts[1:], a, b, 99, width, use64)
            if not np.array_equal(got, ref):
                failures.append(("chunked", use64, width, got.tolist(), ref.tolist()))
    # Bytes that are not UTF-8 (Spark strings may hold them): as the CPU kernel shingles them.
    from sparkdedup.kernels.minhash_cpu import minhash_arrow_cpu
    raw = pa.array([bytes.fromhex(h) for h in json.loads(sys.argv[3])], pa.binary())
    raw = raw.view(pa.string())
    for use64 in (False, True):
        dtype = np.uint64 if use64 else np.uint32
        a, b = np.array([3, 5, 7, 11, 2**31 - 1], dtype), np.array([1, 2, 3, 4, 5], dtype)
        for width in (1, 2, 3, 5):
            got = minhash_numba_cuda(raw, a, b, 7, width, use64)
            ref = minhash_arrow_cpu(raw, a, b, 7, width, use64)
            if not np.array_equal(got, ref):
                failures.append(("invalid utf-8", use64, width, got.tolist(), ref.tolist()))
    from sparkdedup.device import gpu_kernel_runs
    for use64 in (False, True):
        if gpu_kernel_runs(use64) != (True, ""):
            failures.append(("gpu_kernel_runs", use64, gpu_kernel_runs(use64)))
    print(json.dumps(failures))
    """
)


def test_cuda_kernel_under_simulator() -> None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            SIM_SCRIPT,
            VECTORS,
            json.dumps(UNICODE_TEXTS),
            json.dumps(INVALID_UTF8),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def _real_gpu() -> bool:
    try:
        from numba import cuda
    except ImportError:
        return False
    return bool(cuda.is_available()) and not os.environ.get("NUMBA_ENABLE_CUDASIM")


@pytest.mark.gpu
@pytest.mark.skipif(not _real_gpu(), reason="needs a CUDA GPU usable by numba (none found)")
@pytest.mark.parametrize("use64", [False, True])
def test_cuda_kernel_on_gpu(test_vectors, use64: bool) -> None:
    from sparkdedup.kernels.minhash_gpu import minhash_numba_cuda

    v = test_vectors["cudf_cpp_wide"]
    dtype = np.uint64 if use64 else np.uint32
    key = "expected_64" if use64 else "expected_32"
    wide = pa.array(["x" * 2048, "y" * 1048576])
    got = minhash_numba_cuda(wide, np.array(v["a"], dtype), np.array(v["b"], dtype), 0, 4, use64)
    assert got.tolist() == v[key]
    rng = np.random.default_rng(0)
    alphabet = np.array(list("abc xyz") + ["é", "漢", "🙂", "e\u0301"])
    texts = ["".join(rng.choice(alphabet, size=int(n))) for n in rng.integers(0, 400, size=500)]
    texts[::17] = [None] * len(texts[::17])
    a, b, seed = permutation_params(260, 42, use64)
    arr = pa.array(texts)[3:]
    np.testing.assert_array_equal(
        minhash_numba_cuda(arr, a, b, seed, 24, use64),
        minhash_arrow(arr, a, b, seed, 24, use64),
    )
    few = texts[:20]
    np.testing.assert_array_equal(
        minhash_numba_cuda(pa.array(few), a, b, seed, 24, use64),
        minhash_reference(few, a, b, seed, 24, use64),
    )


# --- the executors' probe: a visible GPU counts only where the MinHash kernel runs ------------


@pytest.fixture
def visible_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process "sees" a CUDA GPU (CuPy's check), whatever the GPU kernel then does."""
    from sparkdedup import device

    monkeypatch.setattr(device, "local_gpu", lambda: (True, ""))


def test_probe_refuses_a_gpu_whose_minhash_kernel_fails(visible_gpu, monkeypatch) -> None:
    """A GPU stack that fails only when a kernel compiles (numba-cuda 0.30 against NumPy 2.5
    raises AttributeError then) or gives other values than the CPU kernel is reported as not
    usable, with the reason, and the CPU kernels are loaded instead; a fuzzy run's probe
    checks it, other probes do not."""
    from sparkdedup import device
    from sparkdedup.kernels import minhash_gpu

    warmed: list[bool | None] = []
    monkeypatch.setattr(device, "warm_cpu_kernels", warmed.append)

    def broken(*args):
        raise AttributeError("module 'numpy' has no attribute 'row_stack'\nmore detail")

    def wrong(array, a, *args):
        return np.zeros((len(array), len(a)), dtype=a.dtype)

    for kernel, why in (
        (broken, " (AttributeError: module 'numpy' has no attribute 'row_stack')"),
        (wrong, ": it gives other values than the CPU kernel"),
    ):
        monkeypatch.setattr(minhash_gpu, "minhash_arrow_gpu", kernel)
        for use64 in (False, True):
            assert device.gpu_kernel_runs(use64) == (False, device.GPU_KERNEL_FAILS + why)
            (report,) = next(device._probe(iter([]), use64)).to_pylist()
            assert not report["usable"] and report["reason"].startswith(device.GPU_KERNEL_FAILS)
    assert warmed == [False, True, False, True]
    (report,) = next(device._probe(iter([]))).to_pylist()  # not a fuzzy run
    assert report["usable"] and warmed == [False, True, False, True]


def test_resolving_with_a_failing_gpu_kernel(visible_gpu, monkeypatch, caplog) -> None:
    """device='gpu' names the kernel's failure; 'auto' runs on the CPU and warns why."""
    import logging

    from sparkdedup import device
    from sparkdedup.errors import BackendUnavailableError
    from sparkdedup.kernels import minhash_gpu

    def broken(*args):
        raise RuntimeError("NVVM compilation failed")

    monkeypatch.setattr(minhash_gpu, "minhash_arrow_gpu", broken)
    with pytest.raises(BackendUnavailableError, match="MinHash kernel does not run on it .*NVVM"):
        device.resolve_device("gpu", None, False)
    with caplog.at_level(logging.WARNING, logger="sparkdedup"):
        assert device.resolve_device("auto", None, True) == "cpu"
    assert "cpu, not the GPU" in caplog.text and "NVVM compilation failed" in caplog.text
    assert device.resolve_device("gpu", None) == "gpu"  # no MinHash: CuPy's check alone


@pytest.mark.gpu
@pytest.mark.skipif(not _real_gpu(), reason="needs a CUDA GPU usable by numba (none found)")
def test_gpu_kernel_check_on_a_real_gpu() -> None:
    from sparkdedup.device import gpu_kernel_runs

    assert gpu_kernel_runs(False) == (True, "") and gpu_kernel_runs(True) == (True, "")


@pytest.mark.parametrize("backend", ["cudf", "numba"])
def test_gpu_kernel_runs_on_the_tasks_gpu(monkeypatch, backend: str) -> None:
    """With several GPUs on an executor, the MinHash kernel runs on the one Spark gave the
    task, for cuDF (CuPy's current device) and for the numba kernels (numba's)."""
    import contextlib
    import types

    import numba
    from sparkdedup import device
    from sparkdedup.kernels import minhash_gpu

    current: list[int] = [0]

    @contextlib.contextmanager
    def on(ordinal: int):
        current.append(ordinal)
        yield
        current.pop()

    seen: list[int] = []

    def kernel(array, a, *args):
        seen.append(current[-1])
        return np.zeros((len(array), len(a)), dtype=a.dtype)

    monkeypatch.setattr(device, "task_gpu", lambda: 3)
    monkeypatch.setattr(minhash_gpu, "cudf_available", lambda: backend == "cudf")
    monkeypatch.setattr(minhash_gpu, "numba_cuda_available", lambda: True)
    monkeypatch.setattr(minhash_gpu, "_minhash_cudf", kernel)
    monkeypatch.setattr(minhash_gpu, "minhash_numba_cuda", kernel)
    cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=on))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    gpus = type("Gpus", (), {"__getitem__": lambda self, i: on(i)})()
    monkeypatch.setattr(numba, "cuda", types.SimpleNamespace(gpus=gpus), raising=False)
    a = np.arange(1, 5, dtype=np.uint32)
    minhash_gpu.minhash_arrow_gpu(pa.array(["some text"]), a, a, 1, 3, False)
    assert seen == [3] and current == [0]


@pytest.mark.parametrize("numba_present", [True, False])
def test_cudf_gets_only_batches_of_valid_utf8(monkeypatch, numba_present: bool) -> None:
    """cuDF shingles bytes that are not UTF-8 differently from sparkdedup's kernels (a stray
    continuation byte is a character of no bytes; a character cut at a string's end is read
    past it), so a batch holding such bytes goes to the numba kernel or, without numba, to the
    CPU kernel: the signatures are those of every other backend."""
    import contextlib
    import types

    import numba
    from sparkdedup import device
    from sparkdedup.kernels import minhash_gpu
    from sparkdedup.kernels.minhash_cpu import minhash_arrow_cpu

    called: list[str] = []

    def by(name: str):
        def kernel(array, a, b, seed, width, use64):
            called.append(name)
            return minhash_arrow_cpu(array, a, b, seed, width, use64)

        return kernel

    def nowhere(ordinal: int):
        return contextlib.nullcontext()

    monkeypatch.setattr(device, "task_gpu", lambda: 0)
    monkeypatch.setattr(minhash_gpu, "cudf_available", lambda: True)
    monkeypatch.setattr(minhash_gpu, "numba_cuda_available", lambda: numba_present)
    monkeypatch.setattr(minhash_gpu, "_minhash_cudf", by("cudf"))
    monkeypatch.setattr(minhash_gpu, "minhash_numba_cuda", by("numba"))
    cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=nowhere))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    gpus = type("Gpus", (), {"__getitem__": lambda self, i: nowhere(i)})()
    monkeypatch.setattr(numba, "cuda", types.SimpleNamespace(gpus=gpus), raising=False)
    a = np.arange(1, 9, dtype=np.uint32)
    valid = pa.array(UNICODE_TEXTS)
    minhash_gpu.minhash_arrow_gpu(valid, a, a, 1, 3, False)
    assert called == ["cudf"]
    raw = pa.array([bytes.fromhex(h) for h in INVALID_UTF8], pa.binary()).view(pa.string())
    for batch in (raw, pa.concat_arrays([valid, raw]), raw.slice(1)):
        called.clear()
        got = minhash_gpu.minhash_arrow_gpu(batch, a, a, 1, 3, False)
        assert called == (["numba"] if numba_present else [])
        np.testing.assert_array_equal(got, minhash_arrow_cpu(batch, a, a, 1, 3, False))
