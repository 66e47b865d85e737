"""connected_components on Spark: driver and distributed backends agree with a union-find."""

from __future__ import annotations

import importlib.util
import logging
import time

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import types as T
from sparkdedup.errors import BackendUnavailableError, ConfigError, DedupError, SchemaError
from sparkdedup.fuzzy import components as cc_module
from sparkdedup.fuzzy.components import connected_components
from test_components_kernel import random_graph, union_find

LONG_SCHEMA = "src long, dst long"
STRING_SCHEMA = "src string, dst string"


def run(edges, backend: str, **kwargs) -> dict:
    result = connected_components(edges, backend=backend, **kwargs)
    assert result.columns == ["id", "component"]
    id_type = edges.schema["src"].dataType
    assert result.schema == T.StructType(
        [T.StructField("id", id_type, True), T.StructField("component", id_type, True)]
    )
    rows = result.collect()
    mapping = {r["id"]: r["component"] for r in rows}
    assert len(mapping) == len(rows), "an id appears twice"
    return mapping


def test_random_graphs_both_backends_any_partitioning(spark) -> None:
    rng = np.random.default_rng(5)
    src, dst = random_graph(rng, n_nodes=300, n_edges=150, strings=False)
    expected = union_find(src.tolist(), dst.tolist())
    assert len(set(expected.values())) > 10  # several components, of several sizes
    pdf = pd.DataFrame({"src": src, "dst": dst})
    for partitions in (1, 7):
        edges = spark.createDataFrame(pdf, LONG_SCHEMA).repartition(partitions)
        assert run(edges, "driver") == expected
        assert run(edges, "distributed") == expected


def test_star_string_ids_and_self_loops(spark) -> None:
    # A star whose centre is not its smallest id, a pair given in both directions and
    # repeated, a node whose only edge is a self-loop, and non-ASCII ids.
    rows = [("m", leaf) for leaf in "abcdefghijklnopq"]
    rows += [("\u00e9t\u00e9", "zz"), ("zz", "\u00e9t\u00e9"), ("zz", "\u00e9t\u00e9")]
    rows += [("loop", "loop"), ("q", "q")]
    edges = spark.createDataFrame(rows, STRING_SCHEMA).repartition(3)
    expected = union_find([r[0] for r in rows], [r[1] for r in rows])
    assert expected["m"] == "a" and expected["loop"] == "loop"
    assert run(edges, "driver") == expected
    assert run(edges, "distributed") == expected


def test_int_ids_keep_their_type_whatever_the_rounds_are_kept_in(
    spark, monkeypatch, tmp_path
) -> None:
    """Rounds written under checkpoint_dir, checkpointed to the SparkContext's directory (the
    test session has one, and it is never changed), or persisted when there is none."""
    from pyspark import SparkContext

    rows = [(1, 2), (3, 2), (4, 5), (7, 7), (9, 8)]
    edges = spark.createDataFrame(rows, "src int, dst int")
    expected = {1: 1, 2: 1, 3: 1, 4: 4, 5: 4, 7: 7, 8: 8, 9: 8}
    context_dir = spark.sparkContext.getCheckpointDir()
    assert run(edges, "distributed", checkpoint_dir=str(tmp_path / "ck")) == expected
    assert [p.name for p in (tmp_path / "ck").iterdir()][0].startswith("cc-")
    assert spark.sparkContext.getCheckpointDir() == context_dir
    assert run(edges, "distributed") == expected
    monkeypatch.setattr(SparkContext, "getCheckpointDir", lambda self: None)
    assert run(edges, "distributed") == expected
    assert run(edges, "driver") == expected


def test_persisted_rounds_are_planned_on_their_own(spark, monkeypatch, caplog) -> None:
    """Without a checkpoint directory the rounds are persisted, each under a plan of its own:
    a round reads the round before it twice, so rounds that kept their lineage were planned as
    a tree doubling every round (a 29-edge graph ran a 1 GiB driver out of memory in its third
    round)."""
    from pyspark import SparkContext

    monkeypatch.setattr(SparkContext, "getCheckpointDir", lambda self: None)
    n = 400  # a path in shuffled order: many rounds
    rng = np.random.default_rng(3)
    lo = rng.permutation(n - 1).astype(np.int64)
    edges = spark.createDataFrame(pd.DataFrame({"src": lo, "dst": lo + 1}), LONG_SCHEMA)
    with caplog.at_level(logging.INFO, logger="sparkdedup"):
        found = run(edges, "distributed")
    assert found == dict.fromkeys(range(n), 0)
    rounds = [m for m in caplog.messages if m.startswith("connected components round")]
    assert len(rounds) >= 5
    assert any("rounds persisted" in m for m in caplog.messages)
    result = connected_components(edges, backend="distributed")
    plan = result._jdf.queryExecution().logical().toString()
    assert plan.count("\n") < 30, plan[:2000]


def test_rounds_out_of_reach_are_emptied_through_spark(spark, monkeypatch, tmp_path) -> None:
    """Over Spark Connect a checkpoint_dir this machine cannot reach (s3://, dbfs:/, ...) is
    only written by Spark: the rounds take three directories in turn, and at the end they are
    emptied through Spark, never deleted through this machine's file system."""
    from sparkdedup import fs

    def unreachable(path: str) -> str:
        raise fs.InputError(f"{path!r} is not a local path")

    deleted: list[str] = []
    monkeypatch.setattr(cc_module, "is_connect", lambda session: True)
    monkeypatch.setattr(fs, "is_connect", lambda session: True)
    monkeypatch.setattr(fs, "local_path", unreachable)
    monkeypatch.setattr(fs, "delete", lambda session, path: deleted.append(path))
    n = 200
    lo = np.random.default_rng(4).permutation(n - 1).astype(np.int64)
    edges = spark.createDataFrame(pd.DataFrame({"src": lo, "dst": lo + 1}), LONG_SCHEMA)
    assert run(edges, "distributed", checkpoint_dir=str(tmp_path / "ck")) == dict.fromkeys(
        range(n), 0
    )
    assert deleted == []
    # The edges, read by each round's two steps, are written there too, and emptied likewise.
    (pairs,) = (tmp_path / "ck").glob("pairs-*")
    assert spark.read.parquet(str(pairs)).count() == 0
    (rounds,) = (tmp_path / "ck").glob("cc-*")
    slots = sorted(p.name for p in rounds.iterdir() if p.name != "result")
    assert slots == ["round-0", "round-1", "round-2"]
    assert all(spark.read.parquet(str(rounds / slot)).count() == 0 for slot in slots)


def test_driver_limit_follows_max_result_size() -> None:
    class Conf:
        def __init__(self, value):
            self.value = value

        def get(self, key, default=None):
            assert key == "spark.driver.maxResultSize"
            return self.value

    class Session:
        def __init__(self, value):
            self.conf = Conf(value)

    assert cc_module.driver_edge_limit(Session("1g")) == 131_072  # 2 MiB of edges
    assert cc_module.driver_edge_limit(Session("4m")) == 65_536  # a quarter of 4 MiB
    assert cc_module.driver_edge_limit(Session("0")) == 131_072  # unlimited results


def test_string_ids_size_the_driver_limit_by_their_bytes(spark, caplog, monkeypatch) -> None:
    """String ids collect their UTF-8 bytes plus two Arrow offsets an edge, not 16 bytes: the
    default limit is the budget over that measured width (one job, which also counts)."""
    monkeypatch.setattr(cc_module, "driver_result_bytes", lambda spark: 1024**2)  # a 4m result
    ids = [f"document-{i:030d}" for i in range(6)]  # 39 bytes each: 86 bytes an edge
    pairs = [(ids[0], ids[1]), (ids[1], ids[2]), (ids[4], ids[5])]
    edges = spark.createDataFrame(pairs, "src string, dst string")
    with caplog.at_level(logging.INFO, logger="sparkdedup"):
        found = connected_components(edges, backend="auto", edge_count=3)
        result = {r["id"]: r["component"] for r in found.collect()}
    assert result == {ids[i]: ids[0] for i in range(3)} | {ids[4]: ids[4], ids[5]: ids[4]}
    limit = 1024**2 // (8 + 2 * 39)
    assert any(
        f"backend=driver (3 edges <= max_driver_edges={limit})" in m for m in caplog.messages
    )
    # Integer ids keep 16 bytes an edge, and a known count is not counted again.
    caplog.clear()
    ints = spark.createDataFrame([(1, 2), (2, 3), (5, 6)], LONG_SCHEMA)
    with caplog.at_level(logging.INFO, logger="sparkdedup"):
        connected_components(ints, backend="auto", edge_count=3).collect()
    assert any(f"max_driver_edges={1024**2 // 16})" in m for m in caplog.messages)
    assert not any("counted in" in m for m in caplog.messages)


@pytest.mark.slow
def test_chain_of_100k_nodes_in_shuffled_order(spark, caplog) -> None:
    # The worst case for label propagation: one path 0-1-2-...-n, rows in random order.
    n = 100_000
    rng = np.random.default_rng(0)
    lo = rng.permutation(n - 1).astype(np.int64)
    flip = rng.random(n - 1) < 0.5
    pdf = pd.DataFrame({"src": np.where(flip, lo + 1, lo), "dst": np.where(flip, lo, lo + 1)})
    edges = spark.createDataFrame(pdf, LONG_SCHEMA).cache()
    edges.count()
    seconds = {}
    for backend in ("driver", "distributed"):
        started = time.perf_counter()
        with caplog.at_level(logging.INFO, logger="sparkdedup"):
            result = connected_components(edges, backend=backend)
            summary = result.groupBy("component").count().collect()
        seconds[backend] = time.perf_counter() - started
        assert [(r["component"], r["count"]) for r in summary] == [(0, n)]
    rounds = [m for m in caplog.messages if m.startswith("connected components round")]
    print(  # shown with pytest -s: the numbers quoted in the docs
        f"100k chain: driver {seconds['driver']:.1f} s, distributed "
        f"{seconds['distributed']:.1f} s in {len(rounds)} rounds"
    )
    assert len(rounds) <= 2 * int(np.log2(n))
    edges.unpersist()


def test_empty_edges(spark) -> None:
    for schema in (LONG_SCHEMA, STRING_SCHEMA):
        edges = spark.createDataFrame([], schema)
        for backend in ("driver", "distributed", "auto"):
            result = connected_components(edges, backend=backend)
            assert result.columns == ["id", "component"] and result.count() == 0
            assert result.schema["id"].dataType == edges.schema["src"].dataType
            # Planned in the JVM: a Python RDD (createDataFrame of a list) would start a
            # Python worker in every task of the stage that writes it, for no rows.
            plan = result._jdf.queryExecution().executedPlan().toString()
            assert "ExistingRDD" not in plan, plan


def test_auto_choice_and_driver_limit(spark, caplog) -> None:
    edges = spark.createDataFrame([(1, 2), (2, 3), (5, 6)], LONG_SCHEMA)
    with caplog.at_level(logging.INFO, logger="sparkdedup"):
        assert run(edges, "auto", max_driver_edges=2) == {1: 1, 2: 1, 3: 1, 5: 5, 6: 5}
    assert any("backend=distributed (3 edges > max_driver_edges=2)" in m for m in caplog.messages)
    with pytest.raises(
        ConfigError, match="collect 3 edges, more than its limit of 2 .driver_cc_max"
    ):
        connected_components(edges, backend="driver", max_driver_edges=2)


def test_a_known_edge_count_is_not_counted_again(spark, caplog) -> None:
    """The workflow passes its edges stage's row count: no count job, same components, and the
    backend is picked from that count."""
    edges = spark.createDataFrame([(1, 2), (2, 3), (5, 6)], LONG_SCHEMA)
    expected = run(edges, "driver")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sparkdedup"):
        known = connected_components(edges, backend="auto", max_driver_edges=2, edge_count=3)
        assert {r["id"]: r["component"] for r in known.collect()} == expected
    assert not any("counted in" in m for m in caplog.messages)
    assert any("backend=distributed (3 edges > max_driver_edges=2)" in m for m in caplog.messages)


def test_auto_hands_over_to_the_driver_when_the_rounds_shrink_the_graph(spark, caplog) -> None:
    # Two cliques: 28 + 15 edges, but a spanning star of each needs only 7 + 5.
    rows = [(a, b) for a in range(8) for b in range(a + 1, 8)]
    rows += [(a, b) for a in range(10, 16) for b in range(a + 1, 16)]
    edges = spark.createDataFrame(rows, LONG_SCHEMA)
    expected = {i: 0 for i in range(8)} | {i: 10 for i in range(10, 16)}
    with caplog.at_level(logging.INFO, logger="sparkdedup"):
        assert run(edges, "auto", max_driver_edges=20) == expected
    assert any("finishing on the driver" in m for m in caplog.messages)
    assert run(edges, "distributed", max_driver_edges=20) == expected


def test_rounds_leave_only_the_result_behind(spark, tmp_path) -> None:
    """Once the components are found, the rounds are freed: with a checkpoint directory only
    the result's files stay; persisted, the rounds are unpersisted, after a converged run, a
    hand-over to the driver and a run that does not converge alike."""
    rows = [(a, b) for a in range(8) for b in range(a + 1, 8)]
    rows += [(a, b) for a in range(10, 16) for b in range(a + 1, 16)]
    edges = spark.createDataFrame(rows, LONG_SCHEMA)
    expected = {i: 0 for i in range(8)} | {i: 10 for i in range(10, 16)}
    found = run(edges, "distributed", checkpoint_dir=str(tmp_path))
    assert found == expected
    (runs,) = list(tmp_path.iterdir())
    assert sorted(p.name for p in runs.iterdir()) == ["result"]

    jsc = spark.sparkContext._jsc

    def persisted() -> int:
        return jsc.getPersistentRDDs().size()

    before = persisted()
    assert run(edges, "auto", max_driver_edges=20) == expected  # rounds, then the driver
    assert persisted() == before
    chain = spark.createDataFrame([(i, i + 1) for i in range(64)], LONG_SCHEMA)
    with pytest.raises(DedupError):
        connected_components(chain, backend="distributed", max_iterations=2)
    assert persisted() == before


def test_max_iterations_exceeded(spark) -> None:
    edges = spark.createDataFrame([(i, i + 1) for i in range(64)], LONG_SCHEMA)
    with pytest.raises(DedupError, match="did not converge in max_iterations=2"):
        connected_components(edges, backend="distributed", max_iterations=2)


def test_bad_schema_and_parameters(spark) -> None:
    def frame(schema: str):
        return spark.createDataFrame([], schema)

    with pytest.raises(SchemaError, match="'dst' is missing"):
        connected_components(frame("src long, other long"))
    with pytest.raises(SchemaError, match="'src' must be an integral.*got double"):
        connected_components(frame("src double, dst double"))
    with pytest.raises(SchemaError, match="same type, got int and bigint"):
        connected_components(frame("src int, dst long"))
    edges = frame(LONG_SCHEMA)
    with pytest.raises(ConfigError, match="backend must be one of.*got 'graphx'"):
        connected_components(edges, backend="graphx")
    with pytest.raises(ConfigError, match="max_iterations must be an integer >= 1, got 0"):
        connected_components(edges, max_iterations=0)
    with pytest.raises(ConfigError, match="device must be one of"):
        connected_components(edges, device="tpu")
    if importlib.util.find_spec("cugraph") is None:
        with pytest.raises(BackendUnavailableError, match="cuGraph"):
            connected_components(edges, backend="driver", device="gpu")
