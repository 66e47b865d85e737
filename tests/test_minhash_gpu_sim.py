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
        # A slice: the kernel must honour the Arrow offset.
        got = minhash_numba_cuda(pa.array(v["docs"])[2:], a, b, v["seed"], v["width"], use64)
        if got.tolist() != v[key][2:]:
            failures.append(("cudf_cpp_permuted", key, got.tolist()))
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
    print(json.dumps(failures))
    """
)


def test_cuda_kernel_under_simulator() -> None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, "-c", SIM_SCRIPT, VECTORS, json.dumps(UNICODE_TEXTS)],
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
