"""SemDeDup step 4 as an array kernel: for each document of a cluster in rank order, its largest
cosine similarity to a higher-ranked document (ALGORITHMS.md, "Semantic deduplication", step 4).

Pure array code: pass the array module `xp` (numpy on CPU, cupy on GPU); nothing here imports
Spark. Memory is O(n x batch_size) whatever the cluster size.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy

from sparkdedup.config import check_int

Array = Any  # numpy.ndarray or cupy.ndarray

#: Rows of the right-hand operand per matrix product: bounds the product's float32 result,
#: ``4 * batch_size * _ROWS_PER_PRODUCT`` bytes, and the float32 copy of those rows when the
#: embeddings are not float32 already, ``4 * d * _ROWS_PER_PRODUCT``.
_ROWS_PER_PRODUCT = 1024


def pairwise_max_similarity(
    embeddings: Array, batch_size: int = 1024, xp: ModuleType = numpy
) -> tuple[Array, Array]:
    """Largest similarity of each row to any earlier row, and where it was found.

    Parameters
    ----------
    embeddings : (n, d) unit vectors of one cluster, in rank order (row 0 ranks first); float32
        is best (it is never copied; other dtypes are converted piece by piece).
    batch_size : columns of the similarity matrix computed at a time. Besides the embeddings,
        memory is one float32 block of similarities, ``4 * n * batch_size`` bytes, plus one
        product's result, ``4 * batch_size * 1024``, for input that is not float32 the float32
        copies of one block and one slice of rows, ``4 * (batch_size + 1024) * d``, and the
        outputs (12 bytes a row).
    xp : array module of `embeddings` (numpy or cupy).

    Returns
    -------
    (scores, index) : (n,) float32 and (n,) int64 arrays
        ``scores[j] = max(0, max_{i<j} e_i . e_j)`` and ``index[j]`` the row ``i`` where it is
        reached, or ``j`` itself when the score is 0 (row 0 always scores 0).

    Notes
    -----
    The products are float32 matrix products, as NeMo Curator's (float32 is 2-3x faster than
    float64 on CPUs, and 32x or more on the GPUs Databricks offers, whose float64 units are
    few). A score then differs from the exact dot product by float32 rounding, a few units in
    the last place (about 1e-6 at d=384), and the BLAS code path (CPU or GPU, block shape) may
    move it by as much: only a score that close to the threshold ``1 - eps`` can fall on
    either side of it, and only equal or nearly equal maxima can be found at another row.
    Among equal float32 maxima of one product the smallest ``i`` wins.
    """
    check_int("pairwise_batch_size", batch_size, 1)
    e = xp.asarray(embeddings)
    if e.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array, got shape {e.shape}")
    n = e.shape[0]
    scores = xp.zeros(n, dtype=xp.float32)
    index = xp.arange(n, dtype=xp.int64)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if stop <= 1:
            continue  # column 0 has no earlier row
        width = stop - start
        block = e[start:stop].astype(xp.float32, copy=False)  # (width, d)
        # Row r of the block is column j = start + r of the similarity matrix, so the maximum
        # runs along the last, contiguous axis.
        sims = xp.empty((width, stop), dtype=xp.float32)
        for lo in range(0, stop, _ROWS_PER_PRODUCT):
            hi = min(lo + _ROWS_PER_PRODUCT, stop)
            sims[:, lo:hi] = block @ e[lo:hi].astype(xp.float32, copy=False).T
        del block
        rows = xp.arange(width)
        # Entries i >= j of the block's own square are not earlier documents.
        not_before = rows[None, :] >= rows[:, None]
        square = sims[:, start:stop]
        square[not_before] = -xp.inf
        best_row = xp.argmax(sims, axis=1)  # first (smallest) i among equal maxima
        best = sims[rows, best_row]
        del sims, square, not_before  # free the block before the next one is allocated
        positive = best > 0
        scores[start:stop] = xp.where(positive, best, xp.float32(0))
        index[start:stop] = xp.where(positive, best_row, xp.arange(start, stop))
    return scores, index


def cross_max_similarity(
    columns: Array, candidates: Array, batch_size: int = 1024, xp: ModuleType = numpy
) -> tuple[Array, Array]:
    """Largest similarity of each row of `columns` to any row of `candidates`, all of which rank
    before it (one block pair of a split cluster), and where it was found.

    Returns ``(scores, index)``: (n,) float32, ``max(0, max_i c_i . e_j)``, and (n,) int64,
    the row of `candidates` (the smallest among equal maxima), or -1 when the score is 0.
    Memory: one float32 block of ``4 * batch_size * len(candidates)`` bytes, as
    `pairwise_max_similarity`, whose float32 products these are.
    """
    check_int("pairwise_batch_size", batch_size, 1)
    e, c = xp.asarray(columns), xp.asarray(candidates)
    n, m = e.shape[0], c.shape[0]
    scores = xp.zeros(n, dtype=xp.float32)
    index = xp.full(n, -1, dtype=xp.int64)
    if n == 0 or m == 0:
        return scores, index
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        block = e[start:stop].astype(xp.float32, copy=False)
        sims = xp.empty((stop - start, m), dtype=xp.float32)
        for lo in range(0, m, _ROWS_PER_PRODUCT):
            hi = min(lo + _ROWS_PER_PRODUCT, m)
            sims[:, lo:hi] = block @ c[lo:hi].astype(xp.float32, copy=False).T
        best_row = xp.argmax(sims, axis=1)
        best = sims[xp.arange(stop - start), best_row]
        del sims
        positive = best > 0
        scores[start:stop] = xp.where(positive, best, xp.float32(0))
        index[start:stop] = xp.where(positive, best_row, -1)
    return scores, index
