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

#: Rows of the float64 operand per matrix product: bounds the float64 temporaries to
#: ``8 * batch_size * _ROWS_PER_PRODUCT`` bytes whatever the cluster size.
_ROWS_PER_PRODUCT = 1024


def pairwise_max_similarity(
    embeddings: Array, batch_size: int = 1024, xp: ModuleType = numpy
) -> tuple[Array, Array]:
    """Largest similarity of each row to any earlier row, and where it was found.

    Parameters
    ----------
    embeddings : (n, d) unit vectors of one cluster, in rank order (row 0 ranks first); float32
        is best (it is never copied; other dtypes are converted piece by piece).
    batch_size : columns of the similarity matrix computed at a time. It never changes the
        result. Besides the embeddings, memory is one float32 block of similarities,
        ``4 * n * batch_size`` bytes, plus float64 temporaries of at most
        ``8 * (batch_size + d) * 1024 + 8 * batch_size * d`` bytes and the outputs (12 bytes
        a row).
    xp : array module of `embeddings` (numpy or cupy).

    Returns
    -------
    (scores, index) : (n,) float32 and (n,) int64 arrays
        ``scores[j] = max(0, max_{i<j} e_i . e_j)`` and ``index[j]`` the row ``i`` where it is
        reached, or ``j`` itself when the score is 0 (row 0 always scores 0).

    Notes
    -----
    Dot products are accumulated in float64 and rounded to float32 before the maximum is taken;
    among equal float32 maxima the smallest ``i`` wins. Column ``j`` is always computed in one
    block against all rows ``0..j``, so the blocking only changes which entries share a matrix
    product, and float64 accumulation makes the rounded similarities independent of the BLAS
    code path (matrix-vector or matrix-matrix, CPU or GPU) for all practical purposes. The
    embeddings are converted to float64 one slice of rows at a time, never as a whole.
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
        block = e[start:stop].astype(xp.float64)  # (width, d)
        # Row r of the block is column j = start + r of the similarity matrix, so the maximum
        # runs along the last, contiguous axis. Assigning the float64 products rounds them.
        sims = xp.empty((width, stop), dtype=xp.float32)
        for lo in range(0, stop, _ROWS_PER_PRODUCT):
            hi = min(lo + _ROWS_PER_PRODUCT, stop)
            sims[:, lo:hi] = block @ e[lo:hi].astype(xp.float64).T
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
