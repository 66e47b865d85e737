"""Fuzzy dedup step 4 on one machine: connected components of an edge list.

Weakly connected components as in NeMo Curator (ALGORITHMS.md, "Buckets to edges, components,
duplicates"), labelled deterministically by the smallest id of each component. SciPy solves on
CPU, cuGraph on GPU; both share the id remapping and the labelling so their outputs are identical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from sparkdedup.errors import DedupError, InputError, SchemaError

__all__ = ["components_from_edges", "components_from_edges_gpu"]

# cuGraph counts vertices in 32-bit integers.
_MAX_GPU_NODES = 2**31 - 1


def _factorize(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct node ids and the positions of `src` and `dst` in them.

    Works for integer and for string (object) ids. Python orders strings by code point, which is
    also the UTF-8 byte order Spark uses, so "smallest id" means the same thing on both sides.
    """
    src = np.asarray(src)
    dst = np.asarray(dst)
    if src.ndim != 1 or dst.ndim != 1 or src.shape != dst.shape:
        raise SchemaError(
            f"src and dst must be 1-D arrays of the same length, got shapes {src.shape} "
            f"and {dst.shape}"
        )
    both = np.concatenate([src, dst])
    if both.dtype.kind in "fOc" and pd.isna(both).any():
        raise InputError("edge endpoints (src, dst) must not be null or NaN")
    # A sort-based np.unique measured faster here than a hash factorisation (pandas.factorize)
    # for int64 ids, and about as fast for strings.
    nodes, codes = np.unique(both, return_inverse=True)
    codes = codes.reshape(-1)
    return nodes, codes[: src.size], codes[src.size :]


def _label_by_smallest(nodes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Replace component labels 0..k-1 by the smallest node id of each component.

    `nodes` is sorted and `labels[i]` is the label of `nodes[i]`, so the smallest position
    holding a label is the smallest member of that component.
    """
    labels = np.asarray(labels).astype(np.int64, copy=False)
    first = np.full(int(labels.max()) + 1, labels.size, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(labels.size, dtype=np.int64))
    return nodes[first[labels]]


def _empty(src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dtype = np.asarray(src).dtype
    return np.empty(0, dtype=dtype), np.empty(0, dtype=dtype)


def components_from_edges(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of an undirected edge list, on CPU with SciPy.

    Parameters
    ----------
    src, dst : 1-D arrays of the same length (integers, or strings as an object array); edge
        ``i`` joins ``src[i]`` and ``dst[i]``. Direction, repeated edges and self-loops are
        allowed.

    Returns
    -------
    nodes : every id that appears in an edge, once, sorted ascending.
    component : for each node, the smallest id of its component (same dtype as `nodes`).

    Raises
    ------
    SchemaError
        If the arrays are not 1-D or differ in length.
    InputError
        If an endpoint is null or NaN.
    """
    if np.asarray(src).size == 0 and np.asarray(dst).size == 0:
        return _empty(src)
    nodes, s, d = _factorize(src, dst)
    n = nodes.size
    # Boolean weights: repeated edges OR together instead of summing (int8 sums can wrap to 0).
    graph = scipy.sparse.csr_matrix((np.ones(s.size, dtype=np.bool_), (s, d)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return nodes, _label_by_smallest(nodes, labels)


def components_from_edges_gpu(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of an undirected edge list, on GPU with cuGraph.

    Same parameters, result and errors as `components_from_edges`; the ids are remapped on the
    host and only the graph algorithm runs on the GPU. Falling back to the CPU kernel when
    cuGraph is missing is the caller's decision.

    Raises
    ------
    ImportError
        If CuPy or cuGraph cannot be imported.
    SchemaError
        If there are more distinct ids than cuGraph's 32-bit vertex ids can hold.
    """
    import cugraph
    import cupy
    import cupyx.scipy.sparse

    if np.asarray(src).size == 0 and np.asarray(dst).size == 0:
        return _empty(src)
    nodes, s, d = _factorize(src, dst)
    n = nodes.size
    if n > _MAX_GPU_NODES:
        raise SchemaError(
            f"the edges hold {n} distinct ids; cuGraph allows at most {_MAX_GPU_NODES}; "
            "use device='cpu' or the distributed backend"
        )
    # Both directions are given explicitly: an undirected cuGraph graph expects a symmetric
    # adjacency matrix.
    rows = cupy.asarray(np.concatenate([s, d]).astype(np.int32))
    cols = cupy.asarray(np.concatenate([d, s]).astype(np.int32))
    ones = cupy.ones(rows.size, dtype=cupy.float32)
    graph = cupyx.scipy.sparse.coo_matrix((ones, (rows, cols)), shape=(n, n)).tocsr()
    _, labels = cugraph.connected_components(graph, directed=False, connection="weak")
    labels = cupy.asnumpy(labels)
    if labels.size != n:
        raise DedupError(f"cuGraph returned {labels.size} labels for {n} vertices")
    # cuGraph's labels are arbitrary integers; make them 0..k-1 first.
    _, dense = np.unique(labels, return_inverse=True)
    return nodes, _label_by_smallest(nodes, dense.reshape(-1))
