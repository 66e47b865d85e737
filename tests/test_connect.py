"""Spark Connect: the functions, the pyspark.ml wrapper, the semantic workflow on
precomputed embeddings and the CLI (incremental dedup against an index included) give a
Connect session the classic session's results, and the functions give them from a Connect-only
client too (pyspark-client, which has no py4j). A pyspark 3.5 Connect client (as Databricks
Connect and standard access mode clusters before Runtime 17 give) gets them for fuzzy and exact
dedup, and a clear refusal for what it cannot run.

The Connect session is a local Connect server (`SparkSession.builder.remote("local[2]")`)
started in a subprocess, since one Python process holds one kind of session; both run the same
workloads (`tests/connect_cases.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _connect_available() -> str | None:
    import pyspark

    if int(pyspark.__version__.split(".", 1)[0]) < 4:
        return f"pyspark {pyspark.__version__}: the Connect tests run on the 4.x venv"
    try:
        import grpc  # noqa: F401
        import zstandard  # noqa: F401
    except ImportError as err:
        return f"pyspark[connect]'s dependencies are missing ({err.name}): make test installs them"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_connect_available() is not None, reason=str(_connect_available()))
def test_connect_session_gives_the_classic_results(spark, tmp_path) -> None:
    sys.path.insert(0, HERE)
    try:
        import connect_cases
    finally:
        sys.path.remove(HERE)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "connect_cases.py"), "local[2]", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),  # Derby (the table case's metastore) writes its log there
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-8000:]  # a hang: the stacks (connect_cases.HANG_S)
    remote = json.loads(proc.stdout.strip().splitlines()[-1])
    assert remote.pop("session") == "pyspark.sql.connect.session"
    tables = remote.pop("tables")
    client_only = remote.pop("client_only")
    classic = connect_cases.run_all(spark, str(tmp_path / "classic-models"))
    # A Connect-only client (pyspark-client, no py4j) imports sparkdedup and gets the same.
    assert client_only.pop("client").startswith("pyspark-client 4.")
    assert client_only == json.loads(json.dumps(classic))
    classic["cli"] = connect_cases.cli_case(str(tmp_path), "classic", [])
    classic = json.loads(json.dumps(classic))  # tuples as lists
    assert remote == classic
    # The workloads are not vacuous: the planted copies are found and removed.
    assert [100, 0] in remote["fuzzy"] and [104, 4] in remote["fuzzy"]
    assert 100 not in remote["fuzzy_kept"] and remote["derived_removed"] == len(remote["fuzzy"])
    verified_kept = remote["derived_verified_kept"]  # the exact copies 100-104 go, at least
    documents = len(remote["fuzzy_kept"]) + len(remote["fuzzy"])
    assert len(set(verified_kept)) == len(verified_kept) <= documents - 5
    assert remote["fuzzy_distributed"] == remote["fuzzy_distributed_written"] == remote["fuzzy"]
    assert remote["transformer_kept"] == remote["fuzzy_kept"] == remote["transformer_loaded_kept"]
    assert remote["semantic_model_kept"]  # a fitted, saved and loaded model transforms
    assert [0, 100] in remote["semantic"] or [100, 0] in remote["semantic"]
    if connect_cases._has_model():  # make test installs it (the embed extra)
        assert remote["semantic_text"] == [[0, 100], [1, 101]]  # the copy and the edit
    cli = remote["cli"]
    assert [100, 0] in cli["user"]["duplicates"] and cli["user"]["removed"] >= 5
    assert cli["derived"]["removed"] == cli["user"]["removed"]
    assert cli["parquet_missing_text"] == [2, True]
    assert len(cli["derived"]["kept_records"]) == cli["derived"]["kept"]
    # Incremental dedup: the new copies of indexed documents go, the new text joins the index.
    against = cli["against"]
    assert against["duplicates"] == [[100 + i, i] for i in range(5)]
    assert against["removed_near_indexed"] == 5
    assert against["segment_docs"][1:] == [1]  # the update appended a segment of one
    assert against["indexed_docs"] == sum(against["segment_docs"])
    # compact-index: the segments merged into one holding every indexed document.
    segments, documents, ids = against["compacted"]
    assert segments == 1 and documents == against["indexed_docs"] == len(set(ids))
    assert 300 in ids and not {100, 101, 102, 103, 104} & set(ids)
    # Catalog tables over Connect: table in, tables out, with the output rules and no table of
    # sparkdedup's own (staging, lease) left behind.
    assert tables["catalog"] == "hive"
    assert tables["run"] == 0 and tables["remove"] == 0
    assert not tables["warned"]  # no false "Failed to set spark..." from a local server
    assert {100, 101, 102, 103, 104} <= set(tables["removed"])
    assert sorted(tables["kept"] + tables["removed"]) == tables["input_ids"]
    assert tables["remove_kept"] == tables["kept"]
    assert tables["again"] == [2, True]
    assert tables["partitions"] == ["source=src0", "source=src1", "source=src2"]
    assert tables["tables"] == ["dedup", "docs", "removed"]
    assert tables["written_by"]


#: The pyspark 3.5 venv (make venv35, with pyspark[connect]'s dependencies).
PYTHON_35 = os.path.join(os.path.dirname(HERE), ".venv-spark35", "bin", "python")


def _client_35_missing() -> str | None:
    reason = _connect_available()
    if reason is not None:
        return reason
    if not os.path.exists(PYTHON_35):
        return f"no pyspark 3.5 venv at {PYTHON_35}: make venv35 makes it"
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.skipif(_client_35_missing() is not None, reason=str(_client_35_missing()))
def test_pyspark_35_connect_client_gives_the_classic_results(spark, tmp_path) -> None:
    """A pyspark 3.5.9 client against a Connect server of this venv's Spark (a pyspark 3.5
    client sends no token, so the server is a standalone one, started without): fuzzy with
    distributed connected components, removal, derived ids, the Transformer, an index and
    exact dedup give the classic results; semantic dedup, pyspark.ml persistence and
    distributed rounds without a checkpoint directory are refused, saying why."""
    import time

    import pyspark

    sys.path.insert(0, HERE)
    try:
        import connect_cases
    finally:
        sys.path.remove(HERE)
    home = os.path.dirname(pyspark.__file__)
    port = _free_port()
    env = dict(
        os.environ,
        SPARK_HOME=home,
        SPARK_PID_DIR=str(tmp_path / "pid"),
        SPARK_LOG_DIR=str(tmp_path / "log"),
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOCAL_IP="127.0.0.1",
    )
    server = [
        "--master",
        "local[2]",
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        "--conf",
        "spark.ui.enabled=false",
    ]
    sbin = os.path.join(home, "sbin")
    subprocess.run(["bash", f"{sbin}/start-connect-server.sh", *server], env=env, check=True)
    try:
        deadline = time.monotonic() + 180
        started = False
        while not started and time.monotonic() < deadline:
            time.sleep(2)
            logs = [p.read_text(errors="replace") for p in (tmp_path / "log").glob("*.out")]
            started = any("Spark Connect server started" in text for text in logs)
        assert started, "the Connect server did not start: " + "".join(logs)[-3000:]
        remote = connect_cases.client_35_case(
            str(tmp_path / "client"), f"sc://127.0.0.1:{port}", PYTHON_35
        )
    finally:
        subprocess.run(["bash", f"{sbin}/stop-connect-server.sh"], env=env, check=False)
    assert remote.pop("client").startswith("3.5.")
    refused = remote.pop("refused")
    classic = json.loads(json.dumps(connect_cases.run_35(spark, str(tmp_path / "classic"))))
    assert remote == classic
    # Not vacuous: the planted copies are found, by every route.
    assert [100, 0] in remote["fuzzy"] and [104, 4] in remote["fuzzy"]
    assert remote["fuzzy_distributed"] == remote["fuzzy"]
    assert remote["transformer_kept"] == remote["fuzzy_kept"]
    assert [[100 + i, i] for i in range(5)] == remote["exact"]
    assert [[100 + i, i] for i in range(5)] == remote["against"][:5]
    assert sorted(refused) == ["no_checkpoint_dir", "save", "semantic"]
    assert "pyspark.ml" in refused["semantic"] and "pyspark 3.5.9" in refused["semantic"]
    assert "SparkContext" in refused["save"]
    assert "checkpoint_dir" in refused["no_checkpoint_dir"]
