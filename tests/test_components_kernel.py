"""Connected-components kernels (no Spark): SciPy and cuGraph variants against a union-find."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import scipy.sparse
from scipy.sparse.csgraph import connected_components as scipy_cc
from sparkdedup.errors import InputError, SchemaError
from sparkdedup.kernels.components import components_from_edges, components_from_edges_gpu


def union_find(src, dst) -> dict:
    """Reference: id -> smallest id of its component, by union-find with path halving."""
    parent: dict = {}

    def find(a):
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(src, dst, strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            parent[hi] = lo
    return {node: find(node) for node in parent}


def random_graph(rng: np.random.Generator, n_nodes: int, n_edges: int, strings: bool):
    pool = rng.permutation(np.unique(rng.integers(-(2**62), 2**62, size=2 * n_nodes)))[:n_nodes]
    src = rng.choice(pool, n_edges)
    dst = rng.choice(pool, n_edges)
    if strings:
        # Mixed lengths and non-ASCII text, so ordering by code point matters.
        names = np.array([f"d\u00e9{abs(int(v)) % 997}-{int(v)}" for v in pool], dtype=object)
        lookup = dict(zip(pool.tolist(), names, strict=True))
        src = np.array([lookup[v] for v in src.tolist()], dtype=object)
        dst = np.array([lookup[v] for v in dst.tolist()], dtype=object)
    return src, dst


def as_dict(nodes: np.ndarray, component: np.ndarray) -> dict:
    return dict(zip(nodes.tolist(), component.tolist(), strict=True))


@pytest.mark.parametrize("strings", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cpu_kernel_matches_union_find(seed: int, strings: bool) -> None:
    rng = np.random.default_rng(seed)
    # Sparse enough for many components of varied sizes.
    src, dst = random_graph(rng, n_nodes=400, n_edges=300, strings=strings)
    nodes, component = components_from_edges(src, dst)
    assert nodes.dtype == src.dtype and component.dtype == src.dtype
    assert list(nodes) == sorted(set(src.tolist()) | set(dst.tolist()))
    assert as_dict(nodes, component) == union_find(src.tolist(), dst.tolist())


def test_duplicates_direction_and_self_loops() -> None:
    src = np.array([5, 3, 3, 10, 7, 9, 9], dtype=np.int64)
    dst = np.array([3, 1, 1, 11, 7, 9, 12], dtype=np.int64)
    nodes, component = components_from_edges(src, dst)
    assert as_dict(nodes, component) == {1: 1, 3: 1, 5: 1, 7: 7, 9: 9, 10: 10, 11: 10, 12: 9}


def test_many_repeats_of_one_edge_still_connect() -> None:
    # 256 copies of one edge must not cancel out in the adjacency matrix.
    src = np.array([0] * 256 + [1], dtype=np.int64)
    dst = np.array([1] * 256 + [2], dtype=np.int64)
    _, component = components_from_edges(src, dst)
    assert component.tolist() == [0, 0, 0]


def test_long_path_in_shuffled_order() -> None:
    rng = np.random.default_rng(3)
    n = 200_000
    order = rng.permutation(n - 1)
    src = np.arange(n - 1, dtype=np.int64)[order]
    nodes, component = components_from_edges(src + 1, src)
    assert nodes.size == n and not component.any()


def test_empty_and_bad_input() -> None:
    nodes, component = components_from_edges(
        np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    )
    assert nodes.size == 0 and component.size == 0 and nodes.dtype == np.int64
    with pytest.raises(SchemaError, match="same length"):
        components_from_edges(np.array([1, 2]), np.array([1]))
    with pytest.raises(InputError, match="null"):
        components_from_edges(
            np.array(["a", None], dtype=object), np.array(["b", "c"], dtype=object)
        )


@pytest.fixture
def fake_rapids(monkeypatch: pytest.MonkeyPatch):
    """cupy / cupyx.scipy.sparse / cugraph stand-ins backed by NumPy and SciPy.

    They exercise the GPU kernel's own code (remapping, symmetric matrix, relabelling of
    cuGraph's arbitrary labels) where no GPU is present. The fake cuGraph returns labels that
    are neither dense nor ordered, as the real one may.
    """
    cupy = types.ModuleType("cupy")
    cupy.asarray = np.asarray
    cupy.asnumpy = np.asarray
    cupy.ones = np.ones
    cupy.float32 = np.float32
    cupyx = types.ModuleType("cupyx")
    cupyx_scipy = types.ModuleType("cupyx.scipy")
    cupyx_sparse = types.ModuleType("cupyx.scipy.sparse")
    cupyx_sparse.coo_matrix = scipy.sparse.coo_matrix
    cupyx.scipy = cupyx_scipy
    cupyx_scipy.sparse = cupyx_sparse
    cugraph = types.ModuleType("cugraph")
    calls = []

    def connected_components(graph, directed=None, connection="weak", return_labels=None):
        calls.append((directed, connection))
        assert (graph != graph.T).nnz == 0, "cuGraph expects a symmetric matrix"
        n, labels = scipy_cc(graph, directed=False)
        return n, (labels * 7919 + 12345) % 100_003 * -1

    cugraph.connected_components = connected_components
    for name, module in {
        "cupy": cupy,
        "cupyx": cupyx,
        "cupyx.scipy": cupyx_scipy,
        "cupyx.scipy.sparse": cupyx_sparse,
        "cugraph": cugraph,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls


@pytest.mark.parametrize("strings", [False, True])
def test_gpu_kernel_code_matches_cpu_with_stand_ins(fake_rapids, strings: bool) -> None:
    rng = np.random.default_rng(7)
    src, dst = random_graph(rng, n_nodes=300, n_edges=250, strings=strings)
    gpu_nodes, gpu_component = components_from_edges_gpu(src, dst)
    cpu_nodes, cpu_component = components_from_edges(src, dst)
    assert fake_rapids == [(False, "weak")]
    assert gpu_nodes.tolist() == cpu_nodes.tolist()
    assert gpu_component.tolist() == cpu_component.tolist()


def test_gpu_kernel_needs_cugraph(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cugraph", None)
    with pytest.raises(ImportError):
        components_from_edges_gpu(np.array([1]), np.array([2]))


@pytest.mark.gpu
def test_gpu_kernel_on_a_real_gpu() -> None:
    pytest.importorskip("cugraph", reason="cuGraph is not installed")
    rng = np.random.default_rng(11)
    src, dst = random_graph(rng, n_nodes=5_000, n_edges=4_000, strings=False)
    gpu = components_from_edges_gpu(src, dst)
    cpu = components_from_edges(src, dst)
    assert gpu[0].tolist() == cpu[0].tolist() and gpu[1].tolist() == cpu[1].tolist()
