"""SemDeDup steps 1-2 as array kernels: L2 normalisation, the nearest KMeans centroid and the
distances to it (ALGORITHMS.md, "Semantic deduplication", steps 1 and 2).

Pure array code: pass the array module `xp` (numpy or cupy); nothing here imports Spark.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy

Array = Any  # numpy.ndarray or cupy.ndarray


def l2_normalize(embeddings: Array, xp: ModuleType = numpy) -> Array:
    """Rows scaled to unit L2 norm, as float32.

    Parameters
    ----------
    embeddings : (n, d) array of any real dtype (integers included).
    xp : array module of `embeddings` (numpy or cupy).

    Returns
    -------
    array
        (n, d) float32. Each row is first divided by its largest absolute element and then by
        its norm, both in float64, so a finite row whose squared norm overflows or underflows
        float64 (``[1e200, 1e200]``, ``[1e-200, 0]``) still becomes the right unit vector. A zero
        row stays a zero row (never NaN); the Spark steps reject zero vectors before they get
        here, see `embedding_stats`.
    """
    e = xp.asarray(embeddings, dtype=xp.float64)
    if e.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array, got shape {e.shape}")
    if e.shape[1] == 0:
        return e.astype(xp.float32)
    peak = xp.max(xp.abs(e), axis=1, keepdims=True)
    scaled = e / xp.where(peak > 0, peak, 1.0)  # largest |element| is 1: no overflow, no underflow
    norms = xp.sqrt(xp.sum(scaled * scaled, axis=1, keepdims=True))
    return (scaled / xp.where(norms > 0, norms, 1.0)).astype(xp.float32)


def centroid_distances(
    embeddings: Array, centroids: Array, labels: Array, xp: ModuleType = numpy
) -> tuple[Array, Array]:
    """Distances of each row to its own centroid.

    Parameters
    ----------
    embeddings : (n, d) unit vectors.
    centroids : (k, d) raw KMeans centroids (not normalised).
    labels : (n,) integer cluster of each row, in ``[0, k)``.
    xp : array module (numpy or cupy).

    Returns
    -------
    (l2, cosine) : two (n,) float64 arrays
        ``l2 = ||e - C[label]||`` with the raw centroid and
        ``cosine = 1 - e . (C[label] / ||C[label]||)``. A zero centroid (only possible when its
        members cancel exactly) has cosine distance 1.
    """
    e = xp.asarray(embeddings, dtype=xp.float64)
    c = xp.asarray(centroids, dtype=xp.float64)
    lab = xp.asarray(labels, dtype=xp.int64)
    if e.ndim != 2 or c.ndim != 2 or e.shape[1] != c.shape[1]:
        raise ValueError(
            f"embeddings {e.shape} and centroids {c.shape} must be 2-d with the same width"
        )
    own = c[lab]
    diff = e - own
    l2 = xp.sqrt(xp.sum(diff * diff, axis=1))
    c_norm = xp.sqrt(xp.sum(c * c, axis=1, keepdims=True))
    unit_c = c / xp.where(c_norm > 0, c_norm, 1.0)
    cosine = 1.0 - xp.sum(e * unit_c[lab], axis=1)
    return l2, cosine


#: Bytes of the float32 distance block of `nearest_centroid`, whatever k: a block has
#: ``min(4096, _ASSIGN_BYTES // (4 * k))`` rows.
_ASSIGN_BYTES = 32 * 1024**2


def nearest_centroid(
    embeddings: Array, centroids: Array, xp: ModuleType = numpy, block_rows: int = 4096
) -> Array:
    """Index of the nearest centroid (Euclidean) of each row; the smallest index on ties.

    Parameters
    ----------
    embeddings : (n, d) unit vectors.
    centroids : (k, d) raw KMeans centroids.
    xp : array module (numpy or cupy).
    block_rows : most rows per matrix product; fewer when k is large, so that a block's
        distances take at most 32 MiB (float32; the product may take as much again while it
        runs), the only memory that grows with k besides the centroids' float32 and float64
        copies (12 bytes a centroid element).

    Returns
    -------
    array
        (n,) int64 labels. For unit rows ``||e - c||^2 = 1 + ||c||^2 - 2 e.c``, so the nearest
        centroid is the argmin of ``||c||^2 - 2 e.c``. It is found with float32 products (the
        fast path on every device); a row whose two nearest centroids lie within float32
        rounding of each other is decided again in float64, so the labels are those of an
        exact computation whatever the device, the batch or the block it falls in.
    """
    e = xp.asarray(embeddings)
    c = xp.asarray(centroids, dtype=xp.float64)
    if e.ndim != 2 or c.ndim != 2 or e.shape[1] != c.shape[1] or c.shape[0] == 0:
        raise ValueError(
            f"embeddings {e.shape} and centroids {c.shape} must be 2-d with the same width and "
            "at least one centroid"
        )
    k, d = c.shape
    sq_norms = xp.sum(c * c, axis=1)
    c32, sq32 = c.astype(xp.float32), sq_norms.astype(xp.float32)
    # Float32 rounding of ||c||^2 - 2 e.c for unit e: within d units in the last place of the
    # largest term, twice over; a gap above this between the two nearest is decided.
    tol = 4.0 * d * float(numpy.finfo(numpy.float32).eps) * (1.0 + float(sq_norms.max()))
    rows = max(1, min(block_rows, _ASSIGN_BYTES // (4 * k)))
    labels = xp.empty(e.shape[0], dtype=xp.int64)
    for start in range(0, e.shape[0], rows):
        block = e[start : start + rows]
        dist = block.astype(xp.float32, copy=False) @ c32.T  # in place from here on
        dist *= -2.0
        dist += sq32[None, :]
        best = xp.argmin(dist, axis=1)
        if k > 1:
            at = xp.arange(len(block))
            first = dist[at, best]
            dist[at, best] = xp.inf  # the runner-up, without a copy of the block
            close = xp.flatnonzero(dist.min(axis=1) - first <= tol)
            if close.size:
                exact = sq_norms[None, :] - 2.0 * (block[close].astype(xp.float64) @ c.T)
                best[close] = xp.argmin(exact, axis=1)
        labels[start : start + len(block)] = best
    return labels
