"""SemDeDup kernels without Spark: normalisation, centroid distances, ranking and the blocked
pairwise kernel against NeMo Curator's vector and a brute-force reference."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from sparkdedup.config import sort_keys
from sparkdedup.errors import ConfigError
from sparkdedup.kernels.normalize import centroid_distances, l2_normalize, nearest_centroid
from sparkdedup.kernels.pairwise import pairwise_max_similarity
from sparkdedup.semantic.pairwise import _cluster_fn, rank_order, rank_ordered_matrix, ranking

BATCH_SIZES = (1, 7, 1024)


#: How far a float32 score may be from the exact (float64) dot product of unit vectors of the
#: small dimensions used here: a few float32 units in the last place.
TOL = 2e-6


def brute_force(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full float64 similarity matrix, no blocking: for each j the best earlier row (smallest
    on ties) and its score, exact up to float64 rounding."""
    sims = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    n = len(vectors)
    scores = np.zeros(n, dtype=np.float64)
    index = np.arange(n)
    for j in range(1, n):
        column = sims[:j, j]
        best = column.max()
        if best > 0:
            scores[j] = best
            index[j] = int(np.flatnonzero(column == best)[0])
    return scores, index


def assert_matches_brute_force(vectors, scores, index) -> None:
    """The float32 kernel's answer against the float64 brute force: every score within float32
    rounding, every match a best one up to that rounding, and every removal decision equal
    except for scores within that rounding of the threshold."""
    expected_scores, expected_index = brute_force(vectors)
    np.testing.assert_allclose(scores, expected_scores, atol=TOL, rtol=0)
    exact = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    for j in np.flatnonzero(index != expected_index):
        assert expected_scores[j] > 0 and index[j] < j, j
        assert exact[index[j], j] >= expected_scores[j] - 2 * TOL, j
    for eps in (0.0, 1e-3, 0.01, 0.05, 0.1, 0.5):
        threshold = 1 - eps  # float64, as NeMo Curator's filter compares
        removed = scores.astype(np.float64) >= threshold
        exact_removed = expected_scores >= threshold
        near = np.abs(expected_scores - threshold) <= TOL
        assert np.array_equal(removed[~near], exact_removed[~near]), eps


def planted_vectors(n: int = 60, d: int = 12, seed: int = 0) -> np.ndarray:
    """Random unit vectors with exact copies, near copies and anti-correlated rows."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, d))
    v[10] = v[3]
    v[11] = v[3]
    v[20] = v[5] + 1e-3 * rng.normal(size=d)
    v[30] = -v[4]
    v[n - 1] = v[0]
    return l2_normalize(v)


def test_curator_vector(test_vectors: dict) -> None:
    vec = test_vectors["semdedup_pairwise"]
    emb = l2_normalize(np.array(vec["embeddings_rows_in_rank_order_before_l2_normalisation"]))
    for batch in (1, 2, 3, 1024):
        scores, index = pairwise_max_similarity(emb, batch)
        np.testing.assert_allclose(scores, vec["expected_scores"], atol=1e-5)
        assert index.tolist() == vec["expected_max_index"]


@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_blocked_equals_brute_force(batch: int) -> None:
    vectors = planted_vectors()
    expected_scores, expected_index = brute_force(vectors)
    scores, index = pairwise_max_similarity(vectors, batch)
    assert scores.dtype == np.float32 and index.dtype == np.int64
    assert_matches_brute_force(vectors, scores, index)
    assert index.tolist() == expected_index.tolist()  # no near-ties here but the exact copies
    assert scores[10] == pytest.approx(1.0) and index[10] == 3 and index[11] == 3  # first copy wins
    # Row 30 is the opposite of row 4: their similarity is -1, so row 4 is never its match.
    assert float(vectors[30].astype(np.float64) @ vectors[4]) == pytest.approx(-1.0, abs=1e-6)
    assert index[30] != 4 and scores[30] < 0.99


def test_batch_size_changes_scores_by_rounding_only() -> None:
    vectors = planted_vectors(n=300, d=24, seed=3)
    reference = pairwise_max_similarity(vectors, 300)
    for batch in (1, 2, 7, 64, 299, 1024):
        scores, index = pairwise_max_similarity(vectors, batch)
        assert_matches_brute_force(vectors, scores, index)
        np.testing.assert_allclose(scores, reference[0], atol=TOL, rtol=0)


def test_float32_scores_at_the_threshold_edge() -> None:
    """Pairs built to score just above, at and just below 1 - eps: decided as their exact dot
    product says unless it lies within float32 rounding of the threshold; float32 input is
    never converted, float64 input is, piece by piece, to the same answer."""
    rng = np.random.default_rng(7)
    d, eps = 384, 0.05
    rows = []
    for offset in (-1e-3, -1e-5, -1e-7, 0.0, 1e-7, 1e-5, 1e-3):
        a = rng.normal(size=d)
        a /= np.linalg.norm(a)
        b = rng.normal(size=d)
        b -= (b @ a) * a
        b /= np.linalg.norm(b)
        cos = (1 - eps) + offset
        rows += [a, cos * a + np.sqrt(1 - cos * cos) * b]
    vectors = np.array(rows)
    as32 = vectors.astype(np.float32)
    scores, index = pairwise_max_similarity(as32, 4)
    assert_matches_brute_force(as32, scores, index)
    decided = (scores[1::2].astype(np.float64) >= 1 - eps).tolist()
    assert decided[:2] == [False, False] and decided[-2:] == [True, True]  # clear of the edge
    scores64, _ = pairwise_max_similarity(vectors, 4)
    np.testing.assert_allclose(scores64, scores, atol=TOL, rtol=0)


def test_singletons_and_empty() -> None:
    scores, index = pairwise_max_similarity(l2_normalize(np.ones((1, 4))), 8)
    assert scores.tolist() == [0.0] and index.tolist() == [0]
    scores, index = pairwise_max_similarity(np.zeros((0, 4), dtype=np.float32), 8)
    assert scores.shape == (0,) and index.shape == (0,)


def test_negative_similarity_scores_zero_and_points_to_itself() -> None:
    vectors = l2_normalize(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]))
    scores, index = pairwise_max_similarity(vectors, 2)
    assert scores.tolist() == [0.0, 0.0, 0.0]
    assert index.tolist() == [0, 1, 2]


def test_bad_batch_size() -> None:
    with pytest.raises(ConfigError, match="pairwise_batch_size"):
        pairwise_max_similarity(np.ones((2, 2)), 0)


def kernel_memory_bound(n: int, d: int, batch: int) -> int:
    """What `pairwise_max_similarity` allocates besides its input: one float32 block of
    similarities, one product's result, float32 copies of one block and one slice of rows
    (input not float32), the outputs."""
    rows_per_product = 1024
    product = 4 * batch * rows_per_product
    return 4 * n * batch + product + 4 * (batch + rows_per_product) * d + 12 * n


def test_memory_is_bounded_by_blocks() -> None:
    n, d, batch = 20_000, 8, 256
    vectors = l2_normalize(np.random.default_rng(1).normal(size=(n, d)))
    tracemalloc.start()
    try:
        scores, _ = pairwise_max_similarity(vectors, batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_matrix = n * n * 4
    # No copy of the embeddings, one float32 block of similarities at a time.
    assert 4 * n * batch < peak < kernel_memory_bound(n, d, batch) + 300_000
    assert peak < full_matrix / 60
    assert scores.shape == (n,)


def test_rank_ordered_matrix() -> None:
    column = np.empty(3, dtype=object)
    column[:] = [np.array([1, 2], np.float32), np.array([3, 4], np.float32), np.ones(2, np.float32)]
    matrix = rank_ordered_matrix(column, np.array([2, 0, 1]))
    assert matrix.dtype == np.float32 and matrix.tolist() == [[1, 1], [1, 2], [3, 4]]
    assert rank_ordered_matrix(column[:0], np.array([], dtype=int)).shape == (0, 0)


def test_l2_normalize() -> None:
    raw = np.array([[3.0, 4.0], [0.0, 0.0], [1e-30, 0.0]])
    unit = l2_normalize(raw)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit[0], [0.6, 0.8], rtol=1e-6)
    assert not np.isnan(unit).any()
    assert unit[1].tolist() == [0.0, 0.0]  # zero rows stay zero (the Spark step rejects them)
    assert unit[2].tolist() == [1.0, 0.0]


def test_l2_normalize_extreme_and_integer_rows() -> None:
    # Squared norms that overflow or underflow float64 still give the right unit vector.
    raw = np.array([[1e200, 1e200, 0.0], [-1e308, 0.0, 1e308], [1e-200, 0.0, 0.0], [5e-324, 0, 0]])
    unit = l2_normalize(raw)
    half = np.float32(np.sqrt(0.5))
    assert unit.tolist() == [[half, half, 0], [-half, 0, half], [1, 0, 0], [1, 0, 0]]
    ints = l2_normalize(np.array([[3, 4], [0, 7]], dtype=np.int64))
    np.testing.assert_allclose(ints, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-7)


def test_centroid_distances() -> None:
    rng = np.random.default_rng(2)
    e = l2_normalize(rng.normal(size=(20, 5)))
    centroids = rng.normal(size=(3, 5))
    labels = rng.integers(0, 3, size=20)
    l2, cosine = centroid_distances(e, centroids, labels)
    for i in range(20):
        c = centroids[labels[i]]
        assert l2[i] == pytest.approx(np.linalg.norm(e[i] - c))
        assert cosine[i] == pytest.approx(1 - e[i] @ (c / np.linalg.norm(c)))
    _, cosine = centroid_distances(e[:2], np.zeros((1, 5)), np.zeros(2, dtype=int))
    assert cosine.tolist() == [1.0, 1.0]


def test_nearest_centroid() -> None:
    rng = np.random.default_rng(6)
    e = l2_normalize(rng.normal(size=(500, 6)))
    centroids = rng.normal(size=(7, 6)) * 0.5
    expected = np.argmin(((e[:, None, :] - centroids[None, :, :]) ** 2).sum(-1), axis=1)
    for block in (1, 33, 4096):
        np.testing.assert_array_equal(nearest_centroid(e, centroids, block_rows=block), expected)
    twins = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # centroids 0 and 2 tie
    assert nearest_centroid(np.array([[1.0, 0.0]]), twins).tolist() == [0]


def test_nearest_centroid_float32_screen_equals_float64_on_near_ties() -> None:
    """Rows placed almost exactly between two centroids (within float32 rounding) get the
    float64 answer, whatever the block they fall in; and a large k keeps the blocks small."""
    rng = np.random.default_rng(8)
    d, k = 64, 50
    centroids = rng.normal(size=(k, d)) * 0.3
    rows = []
    for _ in range(300):
        # A unit vector moved until its two nearest centroids a, b are 1e-9 apart in distance.
        x = rng.normal(size=d)
        x /= np.linalg.norm(x)
        a, b = np.argsort(((x - centroids) ** 2).sum(1))[:2]
        w = centroids[a] - centroids[b]
        target = (centroids[a] @ centroids[a] - centroids[b] @ centroids[b]) / 2 + 1e-9
        for _ in range(50):  # move along w to put x.w on target, keeping it a unit vector
            x = x + (target - x @ w) * w / (w @ w)
            x /= np.linalg.norm(x)
        rows.append(x)
    e = np.array(rows)
    exact = np.argmin(((e[:, None, :] - centroids[None, :, :]) ** 2).sum(-1), axis=1)
    screened_in_float32 = np.argmin(
        (centroids.astype(np.float32) ** 2).sum(1)[None, :]
        - 2 * (e.astype(np.float32) @ centroids.astype(np.float32).T),
        axis=1,
    )
    assert (screened_in_float32 != exact).any()  # float32 alone gets some of them wrong
    for block in (1, 7, 4096):
        np.testing.assert_array_equal(nearest_centroid(e, centroids, block_rows=block), exact)
    many = rng.normal(size=(60_000, 4))
    unit = l2_normalize(rng.normal(size=(200, 4)))
    tracemalloc.start()
    try:
        nearest_centroid(unit, many)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The centroids' float32 and float64 copies, one block of 32 MiB and NumPy's working
    # space for its product (measured: half a block more).
    assert peak < 3 * 60_000 * 4 * 8 + 2 * 32 * 1024**2
    assert peak < 200 * 60_000 * 8  # less than one float64 block of every row


# --- ranking inside a cluster -------------------------------------------------------------


def cluster_frame(seed: int = 0, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vectors = planted_vectors(n=n, seed=seed)
    cos = 1 - vectors @ l2_normalize(vectors.mean(axis=0, keepdims=True))[0]
    cos[[10, 11, 3]] = cos[3]  # exact copies: equal distances, ties broken by id
    return pd.DataFrame(
        {
            "id": rng.permutation(np.arange(100, 100 + n)).astype(np.int64),
            "centroid": 0,
            "cosine_dist_to_cent": cos.astype(np.float64),
            "l2_dist_to_cent": np.sqrt(np.abs(2 * cos)),
            "embedding": list(vectors),
            "_dedup_random_rank": rng.integers(-(2**62), 2**62, size=n),
            "quality": rng.integers(0, 5, size=n).astype(float),
        }
    )


def reference_order(frame: pd.DataFrame, mode: str) -> list[int]:
    rows = frame.to_dict("records")
    column = {
        "hard": "cosine_dist_to_cent",
        "easy": "cosine_dist_to_cent",
        "l2": "l2_dist_to_cent",
        "random": "_dedup_random_rank",
        "custom": "quality",
    }[mode]
    reverse = mode not in ("easy", "random")
    return [r["id"] for r in sorted(rows, key=lambda r: (r[column], r["id"]), reverse=reverse)]


MODES = {
    "hard": ("hard", "cosine", None),
    "easy": ("easy", "cosine", None),
    "l2": ("hard", "l2", None),
    "random": ("random", "cosine", None),
    "custom": ("hard", "cosine", ("quality",)),
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_cluster_step_equals_reference(mode: str, batch: int) -> None:
    frame = cluster_frame()
    keys, ascending = ranking(*MODES[mode])
    out = _cluster_fn(keys, ascending, batch, "cpu")(frame)
    order = reference_order(frame, mode)
    assert out["id"].tolist() == order
    by_id = frame.set_index("id")
    vectors = np.stack(by_id.loc[order, "embedding"].to_numpy())
    _, index = brute_force(vectors)
    got = np.array([order.index(i) for i in out["max_id"]])
    assert_matches_brute_force(vectors, out["cosine_sim_score"].to_numpy(), got)
    assert got.tolist() == index.tolist()  # the planted copies tie exactly
    assert out["cosine_sim_score"].iloc[0] == 0 and out["max_id"].iloc[0] == order[0]


def test_rank_order_nulls_last_and_string_ids() -> None:
    frame = pd.DataFrame({"id": ["b", "a", "c", "d"], "quality": [1.0, None, 1.0, 3.0]})
    keys, ascending = ranking(sort_cols=("quality",))
    assert frame["id"].to_numpy()[rank_order(frame, keys, ascending)].tolist() == [
        "d",
        "c",
        "b",
        "a",
    ]


def test_sort_columns_each_with_its_direction() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "q": [1.0, 2.0, 2.0, None], "r": [5, 1, 0, 3]})
    keys, ascending = ranking(sort_cols=("q:desc", "r:asc"))
    assert keys == ["q", "r", "id"] and ascending == [False, True, False]
    # q highest first (nulls last); between the two q=2 rows the smaller r ranks first.
    assert frame["id"].to_numpy()[rank_order(frame, keys, ascending)].tolist() == [3, 2, 1, 4]
    assert ranking(sort_cols=("q",))[1] == [False, False]  # descending, as before
    assert sort_keys(["a:b", "x:ASC", "y:desc", "z"]) == [
        ("a:b", False),
        ("x", True),
        ("y", False),
        ("z", False),
    ]
    with pytest.raises(ConfigError, match="names no column"):
        sort_keys(["  :asc"])


def test_ranking_rejects_bad_choices() -> None:
    with pytest.raises(ConfigError, match="which_to_keep"):
        ranking("hardest")
    with pytest.raises(ConfigError, match="sim_metric"):
        ranking("hard", "dot")


# --- the same kernels on CuPy (run where a CUDA GPU is present) ----------------------------


@pytest.mark.gpu
def test_cupy_kernels_match_numpy() -> None:
    from sparkdedup.device import gpu_available

    if not gpu_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    import cupy

    vectors = planted_vectors(n=300, d=24, seed=3)
    for batch in BATCH_SIZES:
        scores, index = pairwise_max_similarity(cupy.asarray(vectors), batch, xp=cupy)
        expected_scores, _ = pairwise_max_similarity(vectors, batch)
        assert_matches_brute_force(vectors, cupy.asnumpy(scores), cupy.asnumpy(index))
        np.testing.assert_allclose(cupy.asnumpy(scores), expected_scores, atol=TOL, rtol=0)
    raw = np.random.default_rng(0).normal(size=(50, 8))
    np.testing.assert_allclose(
        cupy.asnumpy(l2_normalize(cupy.asarray(raw), xp=cupy)), l2_normalize(raw), atol=1e-7
    )
    centroids, labels = raw[:3], np.arange(50) % 3
    got = centroid_distances(
        cupy.asarray(l2_normalize(raw)),
        cupy.asarray(centroids),
        cupy.asarray(labels),
        xp=cupy,
    )
    want = centroid_distances(l2_normalize(raw), centroids, labels)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(cupy.asnumpy(g), w, atol=1e-9)
    labels = nearest_centroid(cupy.asarray(l2_normalize(raw)), cupy.asarray(centroids), xp=cupy)
    np.testing.assert_array_equal(
        cupy.asnumpy(labels), nearest_centroid(l2_normalize(raw), centroids)
    )


# --- the GPU branches on a stand-in CuPy (NumPy underneath), run everywhere --------------------


class _StandInCupy:
    """NumPy under CuPy's names, recording the device made current and the pools emptied."""

    def __init__(self) -> None:
        self.devices: list[int] = []
        self.freed = 0
        stand_in = self

        class _Device:
            def __init__(self, ordinal: int) -> None:
                self.ordinal = ordinal

            def __enter__(self):
                stand_in.devices.append(self.ordinal)
                return self

            def __exit__(self, *exc) -> None:
                return None

        class _Pool:
            def free_all_blocks(self) -> None:
                stand_in.freed += 1

        self.cuda = type("cuda", (), {"Device": _Device})
        self.get_default_memory_pool = _Pool
        self.get_default_pinned_memory_pool = _Pool
        self.asnumpy = np.asarray

    def __getattr__(self, name: str):
        return getattr(np, name)


@pytest.fixture
def stand_in_cupy(monkeypatch):
    import sys

    fake = _StandInCupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    return fake


def _task_with_gpu(monkeypatch, address: str) -> None:
    import pyspark
    from pyspark.resource import ResourceInformation

    class Context:
        def resources(self):
            return {"gpu": ResourceInformation("gpu", [address])}

    monkeypatch.setattr(pyspark.TaskContext, "get", staticmethod(lambda: Context()))


def test_gpu_cluster_step_uses_the_tasks_gpu_and_frees_its_pool(stand_in_cupy, monkeypatch):
    """The GPU branch of a cluster equals the CPU one, runs on the GPU Spark gave the task, and
    empties CuPy's pools afterwards; without an assigned GPU it takes device 0."""
    from sparkdedup.device import task_gpu

    frame = cluster_frame()
    keys, ascending = ranking(*MODES["hard"])
    cpu = _cluster_fn(keys, ascending, 7, "cpu")(frame)
    assert task_gpu() == 0  # not in a task
    _task_with_gpu(monkeypatch, "3")
    assert task_gpu() == 3
    gpu = _cluster_fn(keys, ascending, 7, "gpu")(frame)
    pd.testing.assert_frame_equal(gpu, cpu)
    assert stand_in_cupy.devices == [3] and stand_in_cupy.freed == 2


@pytest.mark.parametrize(
    ("address", "visible", "ordinal"),
    [
        ("3", None, 3),  # every GPU visible: the address is the ordinal
        ("3", "", 3),
        ("3", "3", 0),  # the process sees only its GPU: CUDA calls it 0
        ("3", "1,3", 1),  # physical ids listed: the address's place in the list
        ("1", "2,3", 1),  # addresses already counted among the visible GPUs
        ("5", "2", 0),  # an address the process cannot see: its one GPU
        ("0", "GPU-8a1f,GPU-77c2", 0),  # UUIDs: the address as an ordinal
        ("1", "GPU-8a1f,GPU-77c2", 1),
    ],
)
def test_task_gpu_maps_spark_address_to_cuda_ordinal(monkeypatch, address, visible, ordinal):
    """Spark's GPU address becomes the CUDA ordinal the process sees, CUDA_VISIBLE_DEVICES
    included (a worker that sees only its GPU calls it 0, whatever Spark's address)."""
    from sparkdedup.device import task_gpu

    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    _task_with_gpu(monkeypatch, address)
    assert task_gpu() == ordinal


def test_gpu_block_pair_equals_cpu(stand_in_cupy, monkeypatch):
    """Both kinds of block pair of a split cluster (a block with itself, with an earlier one)
    give the same answer on the GPU branch, on the task's GPU."""
    from sparkdedup.semantic.pairwise import _SIDE, _block_pair_fn

    _task_with_gpu(monkeypatch, "1")
    vectors = planted_vectors(n=40, d=8, seed=5)
    group = pd.DataFrame(
        {
            "id": np.arange(40, dtype=np.int64),
            "centroid": np.zeros(40, dtype=np.int32),
            "embedding": list(vectors.astype(np.float32)),
            "_dedup_rank": np.arange(40, dtype=np.int64),
            _SIDE: [1] * 15 + [0] * 25,  # rows 0-14 an earlier block, 15-39 this one
        }
    )
    for frame in (group, group[group[_SIDE] == 0]):
        cpu = _block_pair_fn(4, "cpu")(frame)
        gpu = _block_pair_fn(4, "gpu")(frame)
        pd.testing.assert_frame_equal(gpu, cpu)
    assert stand_in_cupy.devices == [1, 1]


def test_gpu_assignment_equals_cpu(stand_in_cupy, monkeypatch):
    """Assigning documents to centroids on the GPU branch gives the CPU's batches, on the
    task's GPU."""
    import pyarrow as pa
    from sparkdedup.semantic.kmeans import _distance_batches

    _task_with_gpu(monkeypatch, "2")
    rng = np.random.default_rng(9)
    vectors = rng.normal(size=(50, 6)).astype(np.float32)
    centers = rng.normal(size=(5, 6))
    emb = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 6).cast(
        pa.list_(pa.float32())
    )
    batch = pa.RecordBatch.from_arrays([pa.array(np.arange(50)), emb], names=["id", "e"])
    cpu = list(_distance_batches(centers, 6, "cpu")(iter([batch])))
    gpu = list(_distance_batches(centers, 6, "gpu")(iter([batch])))
    assert len(cpu) == len(gpu) == 1 and gpu[0].equals(cpu[0])
    assert stand_in_cupy.devices == [2] and stand_in_cupy.freed == 2


@pytest.mark.gpu
def test_gpu_branches_on_a_real_gpu(monkeypatch) -> None:
    """On CuPy and a real GPU: a cluster step, both kinds of block pair and the centroid
    assignment give the CPU's answers up to float32 rounding (scores within it, every match a
    best one up to it, the same centroids), on the GPU Spark gave the task."""
    from sparkdedup.device import gpu_available

    if not gpu_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    import cupy
    import pyarrow as pa
    from sparkdedup.semantic.kmeans import _distance_batches
    from sparkdedup.semantic.pairwise import _SIDE, _block_pair_fn

    _task_with_gpu(monkeypatch, str(cupy.cuda.runtime.getDeviceCount() - 1))
    frame = cluster_frame(seed=4, n=3000)
    exact = dict(zip(frame["id"], frame["embedding"], strict=True))

    def assert_same_up_to_rounding(gpu, cpu, score, best) -> None:
        assert gpu["id"].tolist() == cpu["id"].tolist()
        np.testing.assert_allclose(gpu[score], cpu[score], atol=TOL, rtol=0)
        for row in np.flatnonzero(gpu[best].to_numpy() != cpu[best].to_numpy()):
            i, j = gpu["id"].iat[row], gpu[best].iat[row]
            assert i != j and exact[i] @ exact[j] >= cpu[score].iat[row] - 2 * TOL, row

    for batch in (7, 1024):
        keys, ascending = ranking(*MODES["hard"])
        cpu = _cluster_fn(keys, ascending, batch, "cpu")(frame)
        gpu = _cluster_fn(keys, ascending, batch, "gpu")(frame)
        assert_same_up_to_rounding(gpu, cpu, "cosine_sim_score", "max_id")
    group = frame[["id", "centroid", "embedding"]].assign(
        _dedup_rank=np.arange(len(frame), dtype=np.int64),
        **{_SIDE: (np.arange(len(frame)) < 1200).astype(int)},
    )
    for part in (group, group[group[_SIDE] == 0]):
        cpu = _block_pair_fn(256, "cpu")(part)
        gpu = _block_pair_fn(256, "gpu")(part)
        assert_same_up_to_rounding(gpu, cpu, "score", "best_id")
    vectors = np.stack(frame["embedding"].to_numpy()).astype(np.float32)
    centers = np.random.default_rng(9).normal(size=(40, vectors.shape[1]))
    emb = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
    batch = pa.RecordBatch.from_arrays(
        [pa.array(frame["id"]), emb.cast(pa.list_(pa.float32()))], names=["id", "e"]
    )
    (cpu,) = _distance_batches(centers, vectors.shape[1], "cpu")(iter([batch]))
    (gpu,) = _distance_batches(centers, vectors.shape[1], "gpu")(iter([batch]))
    assert gpu.column("centroid").equals(cpu.column("centroid"))
    for name in ("l2_dist_to_cent", "cosine_dist_to_cent"):
        np.testing.assert_allclose(gpu.column(name), cpu.column(name), atol=1e-6, rtol=0)
    assert cupy.get_default_memory_pool().used_bytes() == 0


def test_kmeans_fit_partitions_bound_the_bytes_a_task_holds() -> None:
    """One partition per 5,000 rows up to 1024; past that, partitions of at most 128 MiB of
    double vectors, so a task's share stops growing with the corpus. The count depends on the
    rows and the dimension only (k-means|| samples per partition)."""
    from sparkdedup.semantic.kmeans import fit_partitions

    assert fit_partitions(1, 8) == 1 and fit_partitions(12_000, 8) == 3
    assert fit_partitions(5_120_000, 384) == 1024  # 15 GB: 14.6 MiB a partition
    assert fit_partitions(10**8, 384) == 2_289 and fit_partitions(10**9, 384) == 22_889
    for rows, dim in ((10**9, 384), (10**10, 1024), (3 * 10**6, 4096)):
        parts = fit_partitions(rows, dim)
        assert rows * dim * 8 / parts <= 128 * 1024**2
