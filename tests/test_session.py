"""sparkdedup.session: the settings of each profile, what configure_builder puts on a builder,
the RAPIDS jar errors, and the --print-conf command the launchers read. No Spark is started."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pyspark.sql import SparkSession
from sparkdedup.errors import BackendUnavailableError, ConfigError
from sparkdedup.session import (
    RAPIDS_JAR_ENV,
    RAPIDS_PLUGIN,
    configure_builder,
    main,
    session_conf,
)


@pytest.fixture
def rapids_jar(tmp_path, monkeypatch):
    jar = tmp_path / "rapids-4-spark_2.13-25.12.0.jar"
    jar.write_bytes(b"PK")
    monkeypatch.delenv(RAPIDS_JAR_ENV, raising=False)
    return str(jar)


def test_local_cpu_profile() -> None:
    conf = session_conf(udf_jar=False)
    assert conf["spark.master"] == "local[*]"
    assert conf["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert conf["spark.sql.execution.arrow.maxRecordsPerBatch"] == "8192"
    assert conf["spark.sql.adaptive.enabled"] == "true"
    assert conf["spark.pyspark.python"]
    assert "spark.plugins" not in conf and "spark.jars" not in conf
    assert session_conf(master="local[2]", udf_jar=False)["spark.master"] == "local[2]"
    with pytest.raises(ConfigError, match="cluster-cpu"):
        session_conf("local-cpu", master="spark://head:7077")


def test_cluster_cpu_profile_leaves_the_master_to_spark_submit() -> None:
    conf = session_conf(
        "cluster-cpu",
        executor_cores=8,
        executor_memory="16g",
        python_worker_memory="4g",
        udf_jar=False,
        extra_conf={"spark.sql.shuffle.partitions": 400, "spark.speculation": True},
    )
    assert "spark.master" not in conf and "spark.pyspark.python" not in conf
    assert conf["spark.executor.cores"] == "8"
    assert conf["spark.executor.memory"] == "16g"
    assert conf["spark.executor.pyspark.memory"] == "4g"
    assert conf["spark.sql.shuffle.partitions"] == "400"
    assert conf["spark.speculation"] == "true"
    assert not any(key.startswith("spark.rapids") for key in conf)


def test_rapids_gpu_profile_on_a_cluster(rapids_jar) -> None:
    conf = session_conf(
        "rapids-gpu",
        master="spark://head:7077",
        rapids_jar=rapids_jar,
        executor_cores=4,
        gpu_discovery_script="/opt/get-gpus.sh",
        udf_jar=False,
    )
    assert conf["spark.plugins"] == RAPIDS_PLUGIN
    assert conf["spark.jars"] == rapids_jar
    assert conf["spark.rapids.sql.python.gpu.enabled"] == "true"
    assert conf["spark.python.daemon.module"] == "rapids.daemon"
    assert conf["spark.executorEnv.PYTHONPATH"] == rapids_jar
    assert conf["spark.submit.pyFiles"] == rapids_jar
    assert conf["spark.executor.resource.gpu.amount"] == "1"
    assert conf["spark.task.resource.gpu.amount"] == "0.25"
    assert conf["spark.executor.resource.gpu.discoveryScript"] == "/opt/get-gpus.sh"
    assert conf["spark.rapids.memory.pinnedPool.size"] == "2g"
    assert conf["spark.rapids.python.memory.gpu.pooling.enabled"] == "false"
    assert (
        float(conf["spark.rapids.memory.gpu.maxAllocFraction"])
        + float(conf["spark.rapids.python.memory.gpu.maxAllocFraction"])
        <= 1.0
    )
    assert conf["spark.rapids.python.concurrentPythonWorkers"] == "0"
    assert conf["spark.sql.execution.arrow.maxRecordsPerBatch"] == "32768"


def test_rapids_gpu_task_amount_and_local_master(rapids_jar) -> None:
    default = session_conf("rapids-gpu", rapids_jar=rapids_jar, udf_jar=False)
    assert default["spark.task.resource.gpu.amount"] == "0.125"  # master unset: a cluster
    # spark-rapids-ml's KMeans needs spark.executor.cores: the tasks one GPU takes.
    assert default["spark.executor.cores"] == "8"
    local = session_conf("rapids-gpu", master="local[*]", rapids_jar=rapids_jar, udf_jar=False)
    assert local["spark.plugins"] == RAPIDS_PLUGIN
    assert not any(".resource.gpu." in key for key in local)  # no GPU scheduling in local mode
    forced = session_conf(
        "rapids-gpu", rapids_jar=rapids_jar, task_gpus=0.5, gpu_scheduling=True, udf_jar=False
    )
    assert forced["spark.task.resource.gpu.amount"] == "0.5"
    assert forced["spark.executor.cores"] == "2"
    with pytest.raises(ConfigError, match="one GPU per executor"):
        session_conf("rapids-gpu", rapids_jar=rapids_jar, executor_gpus=2)
    with pytest.raises(ConfigError, match="task_gpus"):
        session_conf("rapids-gpu", rapids_jar=rapids_jar, task_gpus=1.5)


def test_rapids_jar_from_the_environment_and_its_errors(rapids_jar, monkeypatch) -> None:
    with pytest.raises(BackendUnavailableError, match=RAPIDS_JAR_ENV) as info:
        session_conf("rapids-gpu")
    assert isinstance(info.value, ImportError)
    assert "download" in str(info.value)
    monkeypatch.setenv(RAPIDS_JAR_ENV, rapids_jar + ".missing")
    with pytest.raises(BackendUnavailableError, match="does not exist"):
        session_conf("rapids-gpu")
    monkeypatch.setenv(RAPIDS_JAR_ENV, rapids_jar)
    assert session_conf("rapids-gpu", udf_jar=False)["spark.jars"] == rapids_jar
    remote = "hdfs:///jars/rapids-4-spark_2.13.jar"  # not checked, not on the workers' path
    conf = session_conf("rapids-gpu", rapids_jar=remote, udf_jar=False)
    assert conf["spark.jars"] == remote and "spark.executorEnv.PYTHONPATH" not in conf


def test_invalid_values_name_the_parameter() -> None:
    with pytest.raises(ConfigError, match="profile"):
        session_conf("gpu")
    with pytest.raises(ConfigError, match="executor_memory"):
        session_conf("cluster-cpu", executor_memory="lots")
    with pytest.raises(ConfigError, match="executor_cores"):
        session_conf("cluster-cpu", executor_cores=0)


def test_udf_jar_option(monkeypatch) -> None:
    from sparkdedup import jvm

    monkeypatch.setattr(jvm, "unsupported_reason", lambda: None)  # as on Spark 4
    monkeypatch.setattr(jvm, "jar_path", lambda: "/pkg/sparkdedup-udfs.jar")
    assert session_conf()["spark.jars"] == "/pkg/sparkdedup-udfs.jar"
    assert "spark.jars" not in session_conf(udf_jar=False)
    monkeypatch.setattr(jvm, "jar_path", lambda: None)
    assert "spark.jars" not in session_conf()
    with pytest.raises(BackendUnavailableError, match="make jar"):
        session_conf(udf_jar=True)
    # On Spark 3.5 the jar (built for Spark 4) is left out, and asking for it says why.
    monkeypatch.setattr(jvm, "unsupported_reason", lambda: "built for Spark 4")
    monkeypatch.setattr(jvm, "jar_path", lambda: "/pkg/sparkdedup-udfs.jar")
    assert "spark.jars" not in session_conf()
    with pytest.raises(BackendUnavailableError, match="built for Spark 4"):
        session_conf(udf_jar=True)


def test_configure_builder_applies_the_profile(rapids_jar, monkeypatch) -> None:
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    builder = SparkSession.builder.config("spark.jars", "/opt/other.jar")
    configured = configure_builder(
        builder, master="local[2]", app_name="dedup", udf_jar=False, extra_conf={"a.b": "c"}
    )
    assert configured is builder
    options = builder._options
    assert options["spark.master"] == "local[2]"
    assert options["spark.app.name"] == "dedup"
    assert options["a.b"] == "c"
    assert options["spark.jars"] == "/opt/other.jar"
    assert sys.executable == options["spark.pyspark.python"]
    assert os.environ["PYSPARK_PYTHON"] == sys.executable

    gpu = configure_builder(
        SparkSession.builder.config("spark.jars", "/opt/other.jar"),
        profile="rapids-gpu",
        rapids_jar=rapids_jar,
        udf_jar=False,
    )
    assert gpu._options["spark.jars"] == f"/opt/other.jar,{rapids_jar}"
    assert gpu._options["spark.plugins"] == RAPIDS_PLUGIN
    with pytest.raises(BackendUnavailableError):
        configure_builder(SparkSession.builder, profile="rapids-gpu")


def test_print_conf(rapids_jar, capsys) -> None:
    assert main(["--profile", "local-cpu", "--print-conf", "--udf-jar", "off"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "spark.master=local[*]" in lines
    assert dict(line.split("=", 1) for line in lines) == session_conf(udf_jar=False)

    args = ["--profile", "rapids-gpu", "--rapids-jar", rapids_jar, "--master", "yarn"]
    assert main([*args, "--executor-cores", "8", "--print-conf", "--format", "json"]) == 0
    conf = json.loads(capsys.readouterr().out)
    assert conf["spark.task.resource.gpu.amount"] == "0.125"
    assert conf["spark.master"] == "yarn"

    assert main(["--profile", "rapids-gpu", "--print-conf"]) == 2
    assert RAPIDS_JAR_ENV in capsys.readouterr().err
    assert main(["--profile", "local-cpu", "--print-conf", "--conf", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_print_conf_runs_as_a_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sparkdedup.session", "--profile", "cluster-cpu", "--print-conf"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "spark.sql.adaptive.enabled=true" in out.splitlines()
