"""Shared pytest fixtures: a lazily started, session-scoped local Spark session."""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: one of the suite's longest tests (a local cluster, notebook kernels, a Connect "
        "server, a Hive session, the longest CLI runs, 20,000 documents or more): make test "
        "leaves it to make test-slow",
    )
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")
    config.addinivalue_line("markers", "jvm: needs the built JVM UDF jar")


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    from pyspark.sql import SparkSession

    checkpoint_dir = tmp_path_factory.mktemp("checkpoints")
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("sparkdedup-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "3g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.checkpoint.dir", str(checkpoint_dir))
    )
    try:
        from sparkdedup.jvm import jar_path

        jar = jar_path()
        if jar is not None:
            builder = builder.config("spark.jars", jar)
    except ImportError:
        pass
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(str(checkpoint_dir))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def cluster_conf() -> list[str]:
    """CLI arguments that give local-cluster executors the JVM options of the tests' drivers
    (`SPARK_SUBMIT_OPTS`, which make test sets: C1 only, the parallel collector); none when it
    is unset. Executors are JVMs of their own, started by the cluster's workers, which do not
    read it."""
    options = os.environ.get("SPARK_SUBMIT_OPTS", "").strip()
    return ["--spark-conf", f"spark.executor.extraJavaOptions={options}"] if options else []


@pytest.fixture
def stage_tasks(spark):
    """``with stage_tasks(group, conf) as tasks:`` runs the block in its own Spark job group
    under the settings `conf` (restored after); once the block is done, `tasks` holds the task
    count of every stage it ran."""
    from contextlib import contextmanager

    @contextmanager
    def run(group: str, conf: dict[str, str] | None = None):
        before = {key: spark.conf.get(key, None) for key in conf or {}}
        for key, value in (conf or {}).items():
            spark.conf.set(key, value)
        spark.sparkContext.setJobGroup(group, group)
        tasks: list[int] = []
        try:
            yield tasks
        finally:
            spark.sparkContext.setJobGroup("", "")
            for key, value in before.items():
                if value is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, value)
        tracker = spark.sparkContext.statusTracker()
        tasks += [
            tracker.getStageInfo(stage).numTasks
            for job in tracker.getJobIdsForGroup(group)
            for stage in tracker.getJobInfo(job).stageIds
            if tracker.getStageInfo(stage) is not None
        ]

    return run


@pytest.fixture
def stage_confs(monkeypatch) -> dict:
    """The Spark settings each `StageRunner.run` call of the test asks for, by stage name (made
    when asked for, as the runner makes them)."""
    from sparkdedup.stages import StageRunner

    confs: dict = {}
    run = StageRunner.run

    def spy(self, name, fingerprint, compute, **kwargs):
        conf = kwargs.get("conf")
        if callable(conf):
            made = conf()
            kwargs["conf"] = made
            confs[name] = made
        else:
            confs[name] = conf
        return run(self, name, fingerprint, compute, **kwargs)

    monkeypatch.setattr(StageRunner, "run", spy)
    return confs


@pytest.fixture(scope="session")
def test_vectors() -> dict:
    import json

    with open(os.path.join(DATA_DIR, "test_vectors.json"), encoding="utf-8") as f:
        return json.load(f)
