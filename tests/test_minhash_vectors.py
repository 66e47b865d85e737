"""Bit-exact MinHash vectors (tests/data/test_vectors.json) against the oracle and the fast kernel.

Every cuDF vector (C++ tests and Python docstrings) and NeMo Curator's default parameters are
checked on both `minhash_ref` (plain Python) and `minhash_cpu` (numba), in 32- and 64-bit mode.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import sparkdedup
from sparkdedup.kernels.minhash import minhash_arrow, permutation_params
from sparkdedup.kernels.minhash_ref import (
    minhash_reference,
    murmur3_x64_128_h1,
    murmur3_x86_32,
)


def _run_both(texts, a, b, seed, width, use64):
    dtype = np.uint64 if use64 else np.uint32
    a = np.asarray(a, dtype=dtype)
    b = np.asarray(b, dtype=dtype)
    ref = minhash_reference(texts, a, b, seed, width, use64)
    fast = minhash_arrow(pa.array(texts, pa.string()), a, b, seed, width, use64)
    return ref, fast


@pytest.mark.parametrize(("use64", "key"), [(False, "expected_32"), (True, "expected_64")])
def test_cudf_cpp_permuted(test_vectors, use64, key) -> None:
    v = test_vectors["cudf_cpp_permuted"]
    ref, fast = _run_both(v["docs"], v["a"], v["b"], v["seed"], v["width"], use64)
    expected = np.array(v[key], dtype=ref.dtype)
    np.testing.assert_array_equal(ref, expected)
    np.testing.assert_array_equal(fast, expected)


@pytest.mark.parametrize(
    ("name", "use64"),
    [("cudf_python_docstring_32", False), ("cudf_python_docstring_64", True)],
)
def test_cudf_python_docstrings(test_vectors, name, use64) -> None:
    v = test_vectors[name]
    ref, fast = _run_both(v["docs"], v["a"], v["b"], v["seed"], v["width"], use64)
    expected = np.array(v["expected"], dtype=ref.dtype)
    np.testing.assert_array_equal(ref, expected)
    np.testing.assert_array_equal(fast, expected)


@pytest.mark.parametrize(("use64", "key"), [(False, "expected_32"), (True, "expected_64")])
def test_cudf_cpp_wide(test_vectors, use64, key) -> None:
    # docs_spec is ["'x' * 2048", "'y' * 1048576"]; the oracle handles the 1M-character
    # document because it minimises over the set of distinct shingles.
    v = test_vectors["cudf_cpp_wide"]
    assert v["docs_spec"] == ["'x' * 2048", "'y' * 1048576"]
    docs = ["x" * 2048, "y" * 1048576]
    ref, fast = _run_both(docs, v["a"], v["b"], v["seed"], v["width"], use64)
    expected = np.array(v[key], dtype=ref.dtype)
    np.testing.assert_array_equal(ref, expected)
    np.testing.assert_array_equal(fast, expected)


def test_curator_default_params(test_vectors) -> None:
    v = test_vectors["curator_default_params"]
    a32, b32, seed32 = permutation_params(v["num_hashes"], v["seed"], False)
    assert a32.dtype == np.uint32 and a32.shape == (260,)
    assert a32[:3].tolist() == v["a32_first3"]
    assert b32[:3].tolist() == v["b32_first3"]
    assert int(a32.sum(dtype=np.uint64)) == v["a32_sum"]
    assert int(b32.sum(dtype=np.uint64)) == v["b32_sum"]
    assert seed32 == v["murmur_seed_32"]
    a64, b64, seed64 = permutation_params(v["num_hashes"], v["seed"], True)
    assert a64.dtype == np.uint64
    assert a64[:1].tolist() == v["a64_first1"]
    assert b64[:1].tolist() == v["b64_first1"]
    assert seed64 == v["murmur_seed_64"]


@pytest.mark.parametrize(
    ("use64", "key", "count"),
    [(False, "sample_signature_32_first8", 8), (True, "sample_signature_64_first4", 4)],
)
def test_curator_sample_signature(test_vectors, use64, key, count) -> None:
    v = test_vectors["curator_default_params"]
    text = v["sample_text"]
    a, b, seed = permutation_params(v["num_hashes"], v["seed"], use64)
    ref, fast = _run_both([text], a, b, seed, v["char_ngrams"], use64)
    assert ref[0, :count].tolist() == v[key]
    np.testing.assert_array_equal(fast, ref)
    public = sparkdedup.minhash([text], use_64_bit_hash=use64)
    np.testing.assert_array_equal(public, ref)
    assert public.dtype == (np.uint64 if use64 else np.uint32)


def test_murmur_known_values() -> None:
    # Published MurmurHash3_x86_32 values (smhasher): "" seed 0 -> 0, "" seed 1 -> 0x514E28B7,
    # "hello" seed 0 -> 0x248BFA47, "The quick brown fox jumps over the lazy dog" -> 0x2E4FF723.
    assert murmur3_x86_32(b"", 0) == 0
    assert murmur3_x86_32(b"", 1) == 0x514E28B7
    assert murmur3_x86_32(b"hello", 0) == 0x248BFA47
    assert murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0) == 0x2E4FF723
    # x64_128 with a small seed equals the smhasher reference (seed in both halves): h1 of
    # "hello" seed 0 is 0xCBD8A7B341BD9B02.
    assert murmur3_x64_128_h1(b"hello", 0) == 0xCBD8A7B341BD9B02
