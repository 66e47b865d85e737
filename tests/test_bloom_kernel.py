"""The compiled Bloom filter passes of runs against an index (`kernels.bloom`) against their
NumPy definition (no Spark)."""

from __future__ import annotations

import numpy as np
import pytest
from sparkdedup.kernels.bloom import contains, passing_rows, probes, set_bits

BITS = 1 << 14


def _keys(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Buckets as Arrow gives them (int64, nulls as 0) and their validity (a tenth null)."""
    values = rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64)
    valid = rng.random(n) >= 0.1
    return np.where(valid, values, 0), valid


def _numpy_filter(values: np.ndarray, valid: np.ndarray, bits: int) -> np.ndarray:
    bitmap = np.zeros(bits // 64, dtype=np.uint64)
    for p in probes(values[valid].view(np.uint64), bits):
        np.bitwise_or.at(bitmap, p >> np.uint64(6), np.uint64(1) << (p & np.uint64(63)))
    return bitmap


def test_set_bits_is_the_numpy_filter_and_holds_every_valid_key() -> None:
    rng = np.random.default_rng(7)
    values, valid = _keys(rng, 3000)
    bitmap = np.zeros(BITS // 64, dtype=np.uint64)
    set_bits(bitmap, values[:1000], valid[:1000])  # in pieces, as a task sees its batches
    set_bits(bitmap, values[1000:], valid[1000:])
    assert np.array_equal(bitmap, _numpy_filter(values, valid, BITS))
    assert contains(bitmap, values[valid]).all()
    # A null's placeholder sets nothing: a filter of nulls only is empty.
    empty = np.zeros(BITS // 64, dtype=np.uint64)
    set_bits(empty, np.full(50, -1, dtype=np.int64), np.zeros(50, dtype=bool))
    assert not empty.any()


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_passing_rows_are_the_valid_rows_numpy_passes(dtype) -> None:
    rng = np.random.default_rng(11)
    members, member_valid = _keys(rng, 400)
    bitmap = _numpy_filter(members, member_valid, BITS)
    others, other_valid = _keys(rng, 20000)
    # Members (some of them null here, which never pass) among other keys.
    values = np.concatenate([others, members]).astype(dtype)
    valid = np.concatenate([other_valid, member_valid & (rng.random(400) >= 0.5)])
    rows = passing_rows(bitmap, values, valid)
    expected = np.flatnonzero(contains(bitmap, values) & valid)
    assert rows.dtype == np.int64 and np.array_equal(rows, expected)
    assert set(range(20000, 20400)) & set(np.flatnonzero(valid)) <= set(rows.tolist())
    assert 0 < (rows < 20000).sum() < 0.1 * 20000  # some false passes, not many
    assert passing_rows(bitmap, values[:0], valid[:0]).size == 0


def test_bad_arrays_are_refused() -> None:
    bitmap = np.zeros(BITS // 64, dtype=np.uint64)
    values = np.arange(4, dtype=np.int64)
    with pytest.raises(ValueError, match="bitmap"):
        passing_rows(bitmap.astype(np.int64), values, np.ones(4, bool))
    with pytest.raises(ValueError, match="64-bit"):
        set_bits(bitmap, values.astype(np.int32), np.ones(4, bool))
    with pytest.raises(ValueError, match="one length"):
        passing_rows(bitmap, values, np.ones(3, bool))
