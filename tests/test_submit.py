"""The spark-submit launchers in submit/: the local one end to end through pyspark's own
spark-submit (one JVM), usage errors before any Spark starts (exit code 2), the GPU command line,
and the Databricks job definition."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pandas as pd
import pytest
from sparkdedup.datagen import write_corpus
from sparkdedup.evaluate import evaluate
from sparkdedup.session import RAPIDS_PLUGIN, session_conf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBMIT = os.path.join(ROOT, "submit")
CLI_ARGS = ["--input-format", "jsonl", "--text-col", "text", "--id-col", "id"]


def _launch(script: str, *args: str, env: dict | None = None, timeout: int = 600):
    environ = dict(os.environ, SPARKDEDUP_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    environ.pop("SPARK_HOME", None)
    environ.pop("SPARK_RAPIDS_PLUGIN_JAR", None)
    environ.update(env or {})
    return subprocess.run(
        ["bash", os.path.join(SUBMIT, script), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_local_launcher_end_to_end(tmp_path) -> None:
    corpus = write_corpus(str(tmp_path / "corpus"), 300, fmt="jsonl", num_files=2, seed=5)
    out = tmp_path / "out"
    run = _launch(
        "local-cpu.sh",
        "--master",
        "local[2]",
        "--conf",
        "spark.sql.shuffle.partitions=4",
        "--conf",
        "spark.ui.enabled=false",
        "fuzzy",
        "--input",
        corpus["path"],
        *CLI_ARGS,
        "--output",
        str(out),
        "--log-level",
        "WARNING",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "sparkdedup fuzzy:" in run.stdout
    stats = json.loads((out / "stats.json").read_text())
    duplicates = pd.read_parquet(out / "duplicates")
    kept = pd.concat(pd.read_json(p, lines=True) for p in (out / "deduplicated").glob("part-*"))
    assert stats["input_docs"] == 300
    assert stats["removed_docs"] == len(duplicates) > 0
    assert len(kept) + len(duplicates) == 300
    assert set(kept["id"]).isdisjoint(duplicates["id"])
    truth = pd.read_parquet(corpus["truth_path"])
    assert evaluate(duplicates, truth)["precision"] == 1.0


def test_cluster_launcher_requires_master() -> None:
    run = _launch("cluster-cpu.sh", "fuzzy", "--input", "x", *CLI_ARGS, "--output", "y")
    assert run.returncode == 2
    assert "--master is required" in run.stderr
    assert "usage: submit/cluster-cpu.sh --master URL" in run.stderr
    assert "SparkContext" not in run.stderr
    wrong_place = _launch("cluster-cpu.sh", "--master", "yarn", "fuzzy", "--master", "yarn")
    assert wrong_place.returncode == 2 and "before the command" in wrong_place.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [((), "missing command"), (("dedup",), "unknown command 'dedup'"), (("--foo",), "'--foo'")],
)
def test_launcher_usage_errors(args, message) -> None:
    run = _launch("local-cpu.sh", *args)
    assert run.returncode == 2
    assert message in run.stderr


def test_launcher_runs_every_cli_command() -> None:
    for command in ("fuzzy", "exact", "semantic", "remove", "compact-index"):
        option = "--index" if command == "compact-index" else "--input"
        run = _launch("local-cpu.sh", "--dry-run", command, option, "x")
        assert run.returncode == 0, run.stderr
        words = shlex.split(run.stdout)
        main = words.index(os.path.join(ROOT, "python", "src", "sparkdedup", "cli.py"))
        assert words[main + 1 :] == [command, option, "x"]


def test_launcher_options_and_submit_args_are_read_as_a_shell_would(tmp_path) -> None:
    """--option=value is --option value; SPARKDEDUP_SUBMIT_ARGS keeps quoted words whole (it
    was split at every space) and expands nothing, whatever the Python says on stderr;
    unbalanced quotes are a usage error."""
    noisy = tmp_path / "python"
    noisy.write_text(f'#!/bin/sh\necho a-startup-warning >&2\nexec {sys.executable} "$@"\n')
    noisy.chmod(0o755)
    args = "--name 'dedup job' --num-executors 4 --queue $HOME"
    run = _launch(
        "local-cpu.sh", "--master=local[3]", "--dry-run", "fuzzy", "--input", "x",
        env={"SPARKDEDUP_SUBMIT_ARGS": args, "SPARKDEDUP_PYTHON": str(noisy)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    words = shlex.split(run.stdout)
    main = words.index(os.path.join(ROOT, "python", "src", "sparkdedup", "cli.py"))
    assert words[main - 6 : main] == shlex.split(args)
    assert "spark.master=local[3]" in words and words[main + 1 :] == ["fuzzy", "--input", "x"]
    bad = _launch("local-cpu.sh", "fuzzy", "--input", "x", env={"SPARKDEDUP_SUBMIT_ARGS": "'a"})
    assert bad.returncode == 2
    assert "SPARKDEDUP_SUBMIT_ARGS cannot be split into words" in bad.stderr, bad.stderr
    flag = _launch("local-cpu.sh", "--dry-run=1", "fuzzy", "--input", "x")
    assert flag.returncode == 2 and "option --dry-run takes no value" in flag.stderr


def test_a_dry_run_shows_no_credential() -> None:
    """--dry-run prints the command with each credential's value redacted (its line is pasted
    into tickets), in launcher confs and the command's options alike; a malformed one is
    refused without its value."""
    run = _launch(
        "local-cpu.sh", "--conf", "spark.hadoop.fs.s3a.secret.key=KEY-1", "--dry-run",
        "fuzzy", "--input", "ftp://me:PASSWORD-2@host/in", "--read-option",
        "fs.azure.account.key.a.dfs.core.windows.net=KEY-3", "--read-option=sas.token=KEY-4",
        "--conf", "spark.driver.extraJavaOptions=-Dfs.s3a.secret.key=KEY-6 -Dx=1",
        "--index-out", "https://a.blob.core.windows.net/c/i?sv=1&sig=KEY-7",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert not any(f"KEY-{n}" in run.stdout for n in (1, 3, 4, 6, 7)), run.stdout
    assert "PASSWORD-2" not in run.stdout, run.stdout
    words = shlex.split(run.stdout)
    assert "spark.hadoop.fs.s3a.secret.key=*********(redacted)" in words
    assert "--read-option=sas.token=*********(redacted)" in words
    assert "ftp://me:*****@host/in" in words and "spark.master=local[*]" in words
    assert "spark.driver.extraJavaOptions=-Dfs.s3a.secret.key=***** -Dx=1" in words
    assert "https://a.blob.core.windows.net/c/i?sv=1&sig=*****" in words
    bad = _launch("local-cpu.sh", "--conf", "spark.hadoop.fs.s3a.secret.key:KEY-5", "fuzzy")
    assert (
        bad.returncode == 2 and "naming a credential or without a key (not shown)" in bad.stderr
    ), bad.stderr
    assert "KEY-5" not in bad.stderr
    path = _launch("local-cpu.sh", "--dry-run", "fuzzy", "--input", "/data/secret_docs/year=2020")
    assert "/data/secret_docs/year=2020" in shlex.split(path.stdout), path.stdout


def test_launcher_refuses_a_python_without_pyspark(tmp_path) -> None:
    bare = tmp_path / "python"
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')  # no site-packages
    bare.chmod(0o755)
    run = _launch("local-cpu.sh", "fuzzy", "--input", "x", env={"SPARKDEDUP_PYTHON": str(bare)})
    assert run.returncode == 2
    assert f"{bare} cannot import pyspark; set SPARKDEDUP_PYTHON" in run.stderr
    assert "Traceback" not in run.stderr


def test_gpu_launcher_without_rapids_jar() -> None:
    run = _launch("rapids-gpu.sh", "fuzzy", "--input", "x", *CLI_ARGS, "--output", "y")
    assert run.returncode == 2
    assert "SPARK_RAPIDS_PLUGIN_JAR is not set" in run.stderr
    missing = _launch(
        "rapids-gpu.sh",
        "fuzzy",
        "--input",
        "x",
        env={"SPARK_RAPIDS_PLUGIN_JAR": "/nonexistent/rapids-4-spark_2.13.jar"},
    )
    assert missing.returncode == 2
    assert "/nonexistent/rapids-4-spark_2.13.jar" in missing.stderr
    assert "does not exist" in missing.stderr


def test_gpu_launcher_command_line(tmp_path) -> None:
    jar = tmp_path / "rapids-4-spark_2.13-25.12.0.jar"
    jar.write_bytes(b"PK")
    run = _launch(
        "rapids-gpu.sh",
        "--master",
        "spark://head:7077",
        "--executor-cores",
        "8",
        "--dry-run",
        "fuzzy",
        "--device",
        "gpu",
        "--input",
        "hdfs:///corpus",
        env={"SPARK_RAPIDS_PLUGIN_JAR": str(jar)},
    )
    assert run.returncode == 0, run.stderr
    words = shlex.split(run.stdout)
    assert words[0].endswith("/bin/spark-submit")
    main = words.index(os.path.join(ROOT, "python", "src", "sparkdedup", "cli.py"))
    assert words[main + 1 :] == ["fuzzy", "--device", "gpu", "--input", "hdfs:///corpus"]
    conf = dict(words[i + 1].split("=", 1) for i in range(main) if words[i] == "--conf")
    assert conf["spark.plugins"] == RAPIDS_PLUGIN
    assert conf["spark.rapids.sql.python.gpu.enabled"] == "true"
    assert conf["spark.executor.resource.gpu.amount"] == "1"
    assert conf["spark.task.resource.gpu.amount"] == "0.125"
    assert conf["spark.executor.resource.gpu.discoveryScript"] == os.path.join(
        SUBMIT, "get-gpus-resources.sh"
    )
    assert conf["spark.jars"].split(",")[0] == str(jar)
    assert conf["spark.master"] == "spark://head:7077"
    # one source of truth: the launcher passes exactly the profile's settings
    expected = session_conf(
        "rapids-gpu",
        master="spark://head:7077",
        rapids_jar=str(jar),
        executor_cores=8,
        gpu_discovery_script=os.path.join(SUBMIT, "get-gpus-resources.sh"),
    )
    assert conf == expected


def test_databricks_job_runs_the_cli_with_the_rapids_plugin() -> None:
    with open(os.path.join(SUBMIT, "databricks-job.json"), encoding="utf-8") as fh:
        job = json.load(fh)
    cluster = job["job_clusters"][0]["new_cluster"]
    spark_conf = cluster["spark_conf"]
    assert spark_conf["spark.plugins"] == RAPIDS_PLUGIN
    assert spark_conf["spark.rapids.sql.python.gpu.enabled"] == "true"
    assert spark_conf["spark.python.daemon.module"] == "rapids.daemon_databricks"
    assert "gpu" in cluster["spark_version"]
    commands = []
    for task in job["tasks"]:
        python_task = task["spark_python_task"]
        assert python_task["python_file"] == "python/src/sparkdedup/cli.py"
        assert os.path.isfile(os.path.join(ROOT, python_task["python_file"]))
        commands.append(python_task["parameters"][0])
        assert "--device" in python_task["parameters"]
        # A scheduled job replaces its own earlier outputs (never other files) on each run.
        assert "--overwrite" in python_task["parameters"]
    assert commands == ["fuzzy", "semantic"]
    # the GPU settings agree with the rapids-gpu profile, except Databricks' own variants
    databricks_variants = {
        "spark.python.daemon.module",
        "spark.executorEnv.PYTHONPATH",
        "spark.sql.adaptive.enabled",
        "spark.task.resource.gpu.amount",
    }
    profile = session_conf("rapids-gpu", rapids_jar="dbfs:/jars/rapids.jar", udf_jar=False)
    for key, value in spark_conf.items():
        if key in profile and key not in databricks_variants:
            assert value == profile[key], key
    init = os.path.join(SUBMIT, "databricks-init.sh")
    assert os.path.isfile(init) and "/databricks/jars/rapids-4-spark_2.13.jar" in open(init).read()
