"""CLI manners: --version, --explain (no Spark started), help text with a default for every
option."""

from __future__ import annotations

import argparse
import os
import sys

import pytest
from sparkdedup import __version__, cli


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sparkdedup {__version__}"


def test_explain_prints_the_plan_without_starting_spark(capsys, monkeypatch) -> None:
    def no_session(args):
        raise AssertionError("--explain must not start Spark")

    monkeypatch.setattr(cli, "_session", no_session)
    argv = ["fuzzy", "--input", "in/", "--input-format", "parquet", "--output", "out/"]
    assert cli.main([*argv, "--id-col", "id", "--num-bands", "10", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "sparkdedup fuzzy (explain: nothing is run)" in text
    for stage in ("minhash", "ids", "edges", "components", "duplicates", "write"):
        assert f"    {stage} " in text
    assert "2 reads of the corpus" in text and "num_bands=10" in text
    assert "one shuffle of the ids" in text and "stage cache out/cache" in text
    assert cli.main([*argv, "--explain"]) == 0  # derived ids
    assert "ids derived from the rows" in capsys.readouterr().out
    semantic = ["semantic", "--input", "in/", "--input-format", "parquet", "--output", "out/"]
    assert cli.main([*semantic, "--embedding-col", "e", "--eps", "0.01,0.1", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "precomputed embeddings in 'e'" in text and "eps 0.01, 0.1" in text
    # Bad parameters are still errors, before anything runs.
    assert cli.main([*argv, "--num-bands", "0", "--explain"]) == 2
    assert "num_bands" in capsys.readouterr().err


def test_explain_names_the_index_work_of_incremental_runs(capsys, monkeypatch) -> None:
    """--against adds the index's id check and reads, and changes what LSH and the keep rule
    do; --index-out adds the index's write: a new index, or a segment of the one --against
    names (however its path is spelled)."""

    def no_session(args):
        raise AssertionError("--explain must not start Spark")

    monkeypatch.setattr(cli, "_session", no_session)
    argv = ["fuzzy", "--input", "new/", "--input-format", "parquet", "--output", "out/"]
    argv += ["--id-col", "id", "--explain"]

    def stages(*extra: str) -> dict[str, str]:
        assert cli.main([*argv, *extra]) == 0
        lines = capsys.readouterr().out.splitlines()
        start = lines.index("  stages:") + 1
        rows = [line.split(None, 1) for line in lines[start:] if line.startswith("    ")]
        passes = next(line for line in lines if line.startswith("  passes:"))
        return {**{name: what for name, what in rows}, "passes": passes}

    plain = stages()
    assert "index_ids" not in plain and "index" not in plain and "index" not in plain["passes"]
    against = stages("--against", "idx/")
    names = [n for n in against if n != "passes"]
    assert names == ["minhash", "ids", "index_ids", "edges", "components", "duplicates", "write"]
    assert "index idx/" in against["index_ids"]
    assert "Bloom filter" in against["edges"]
    assert "only those keys of the index are shuffled" in against["edges"]
    assert "only new documents are removed" in against["duplicates"]
    assert "its bucket columns once with the id column again per band group" in against["passes"]
    assert against["write"] == plain["write"]
    trusted = stages("--against", "idx/", "--assume-unique-ids")
    assert trusted["index_ids"].endswith("(skipped: --assume-unique-ids)")
    assert "its id column once" not in trusted["passes"]
    updated = stages("--against", "idx/", "--index-out", os.path.abspath("idx"))
    assert "one more segment of the index" in updated["index"]
    fresh = stages("--index-out", "idx2")
    assert "a new index at idx2" in fresh["index"] and "index_ids" not in fresh


def test_every_option_has_help_with_its_default() -> None:
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            text = action.help or ""
            if not text:
                missing.append(f"{name} {action.option_strings[0]}: no help")
            elif action.default not in (None, False, [], argparse.SUPPRESS) and not action.required:
                if "default" not in text:
                    missing.append(f"{name} {action.option_strings[0]}: no default in help")
    assert not missing, missing


def test_a_driver_jvm_that_exited_is_one_line(capsys, monkeypatch) -> None:
    """The driver JVM the CLI launched exits under the run (here with Spark's out-of-memory
    code, 52): the py4j error becomes one line naming the cause, the heap setting and the
    cache to resume from; the dead session is not stopped (that would raise again)."""
    import subprocess
    import sys

    from py4j.protocol import Py4JNetworkError
    from pyspark import SparkContext

    jvm = subprocess.Popen([sys.executable, "-c", "raise SystemExit(52)"])
    monkeypatch.setattr(SparkContext, "_gateway", argparse.Namespace(proc=jvm))
    stopped: list[bool] = []
    session = argparse.Namespace(stop=lambda: stopped.append(True))
    monkeypatch.setattr(cli, "_session", lambda args: (session, True))

    def lost(args, spark):
        try:
            raise Py4JNetworkError("Answer from Java side is empty")
        except Py4JNetworkError as err:
            raise ConnectionRefusedError(111, "Connection refused") from err

    monkeypatch.setattr(cli, "_run_workflow", lost)
    argv = ["fuzzy", "--input", "in/", "--input-format", "parquet", "--output", "out/"]
    assert cli.main([*argv, "--id-col", "id"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(
        "sparkdedup: error: the Spark driver JVM exited during the run (exit code 52: out of "
        "memory (java.lang.OutOfMemoryError)); its own output above says more. Its heap"
    )
    assert "spark.driver.memory (not given with --spark-conf: Spark's default is 1g)" in err[0]
    assert "resumes from the stages in out/cache" in err[0]
    assert not stopped
    # On an OutOfMemoryError the JVM first stops its SparkContext, which fails the running job
    # while the JVM still answers: that error waits for the exit status too.
    stopped_sc = argparse.Namespace(
        _jsc=argparse.Namespace(sc=lambda: argparse.Namespace(isStopped=lambda: True))
    )
    monkeypatch.setattr(SparkContext, "_active_spark_context", stopped_sc)
    exiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2); exit(52)"])
    monkeypatch.setattr(SparkContext, "_gateway", argparse.Namespace(proc=exiting))

    def cancelled(args, spark):
        raise RuntimeError("Job 71 cancelled because SparkContext was shut down")

    monkeypatch.setattr(cli, "_run_workflow", cancelled)
    assert cli.main([*argv, "--id-col", "id"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(exit code 52: out of memory" in err[0], err
    monkeypatch.setattr(SparkContext, "_active_spark_context", None)
    monkeypatch.setattr(cli, "_run_workflow", lost)
    # The same error with the JVM still running is an internal error, and the session stops.
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(SparkContext, "_gateway", argparse.Namespace(proc=running))
    monkeypatch.setattr(cli, "_EXIT_WAIT_SECONDS", 0.1)
    try:
        assert cli.main([*argv, "--id-col", "id"]) == 1
    finally:
        running.kill()
        running.wait()
    assert "internal error: ConnectionRefusedError" in capsys.readouterr().err
    assert stopped == [True]


def test_ctrl_c_is_one_line_and_exit_code_130(capsys, monkeypatch) -> None:
    """A KeyboardInterrupt in the run (the workflow aborts its staging on the way out) was a
    Python traceback; the session is still stopped."""
    stopped: list[bool] = []
    session = argparse.Namespace(stop=lambda: stopped.append(True))
    monkeypatch.setattr(cli, "_session", lambda args: (session, True))
    monkeypatch.setattr(cli, "_check_connect_versions", lambda spark, args: None)

    def interrupted(args, spark):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run_workflow", interrupted)
    monkeypatch.setattr(cli, "_run_remove", interrupted)
    argv = ["--input", "in/", "--input-format", "parquet", "--output", "out/", "--id-col", "id"]
    # As the command (the arguments from sys.argv): exit code 130.
    monkeypatch.setattr(sys, "argv", ["sparkdedup", "fuzzy", *argv])
    assert cli.main() == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "sparkdedup: interrupted; an output not yet committed is left unwritten (a rerun of the same "
        "command resumes from the stages in out/cache)"
    ]
    monkeypatch.setattr(sys, "argv", ["sparkdedup", "remove", *argv, "--duplicates", "d/"])
    assert cli.main() == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        "sparkdedup: interrupted; an output not yet committed is left unwritten"
    ]
    # Called from Python (a notebook), the interrupt goes on to the caller after the line.
    with pytest.raises(KeyboardInterrupt):
        cli.main(["fuzzy", *argv])
    assert capsys.readouterr().err.startswith("sparkdedup: interrupted")
    assert stopped == [True, True, True]


def test_settings_a_local_connect_server_started_with_are_not_warned_about(monkeypatch) -> None:
    # pyspark warns "Failed to set spark.x" for each setting a running server cannot change;
    # a local server this run starts took them all at its start, so those warnings would be
    # false. Anywhere else they may be true and are left alone.
    for name in ("SPARK_LOCAL_REMOTE", "SPARK_LOCAL_CONNECT_REUSE"):
        monkeypatch.delenv(name, raising=False)
    assert cli._starts_local_server("local[2]", {})
    assert not cli._starts_local_server("sc://host:15002", {})
    assert not cli._starts_local_server("local[2]", {"spark.local.connect.reuse": "true"})
    monkeypatch.setenv("SPARK_LOCAL_CONNECT_REUSE", "1")
    assert not cli._starts_local_server("local[2]", {})
    monkeypatch.delenv("SPARK_LOCAL_CONNECT_REUSE")
    monkeypatch.setenv("SPARK_LOCAL_REMOTE", "1")  # a local server already runs here
    assert not cli._starts_local_server("local[2]", {})


@pytest.mark.parametrize(
    ("client", "server", "jsonl", "refused"),
    [
        ("4.3.0", "4.3.0", True, None),
        ("4.2.0", "4.3.0", True, None),  # a 4.2 client's JSON reader takes a DataFrame
        ("4.1.4", "4.1.4", False, None),  # Parquet over 4.1: passed by hand
        ("4.1.4", "4.1.4", True, "needs pyspark 4.2 or later on the client"),
        ("4.0.5", "4.0.5", False, "needs Spark 4.1 or later"),  # metrics lost on 4.0
        ("4.3.0", "4.0.5", False, "server 4.0.5"),
        ("3.5.9", "3.5.9", False, "pyspark 3.5.9"),
        ("4.1.0.dev0", "4.1.0", False, None),
        ("4.1.0", "4.1.0-SNAPSHOT", False, None),
    ],
)
def test_connect_versions_the_cli_refuses(client, server, jsonl, refused) -> None:
    """The CLI over Spark Connect refuses, before any work and saying why, the versions whose
    Connect sessions cannot run it: metrics of the final write lost before 4.1, JSON types
    inferred from a DataFrame only from a 4.2 client."""
    why = cli.connect_refusal(client, server, jsonl)
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why


def test_connect_refusal_is_checked_on_connect_sessions_only(monkeypatch) -> None:
    """A classic session is never refused; a Connect one is checked against the server's
    version and the input's format ("json" is JSONL)."""
    import pyspark
    from sparkdedup.errors import ConfigError

    class ConnectSession:
        __module__ = "pyspark.sql.connect.session"
        version = "4.1.4"

    class ClassicSession:
        version = "3.5.9"

    monkeypatch.setattr(pyspark, "__version__", "4.1.4")
    args = argparse.Namespace(input="/data/in", input_format="json")
    cli._check_connect_versions(ClassicSession(), args)
    with pytest.raises(ConfigError, match="jsonl over Spark Connect"):
        cli._check_connect_versions(ConnectSession(), args)
    cli._check_connect_versions(ConnectSession(), argparse.Namespace(input=None))
    cli._check_connect_versions(
        ConnectSession(), argparse.Namespace(input="/d", input_format="parquet")
    )
    # Before a session: the client's own version, when --remote is given (a 3.5 client has
    # no local Connect server to start).
    cli._check_connect_versions(None, argparse.Namespace(remote=None, input=None))
    monkeypatch.setattr(pyspark, "__version__", "3.5.9")
    remote = argparse.Namespace(remote="local[2]", input="/d", input_format="parquet")
    with pytest.raises(ConfigError, match=r"4\.1 or later .* \(here: pyspark 3\.5\.9\): "):
        cli._check_connect_versions(None, remote)
    monkeypatch.setattr(pyspark, "__version__", "4.3.0")
    cli._check_connect_versions(None, remote)


def test_a_python_workers_error_is_summed_up_by_its_exception() -> None:
    """A Python worker's error says on its first line only that there was one: the one-line
    summary is the exception's line of its traceback (what failed, say a model that cannot be
    downloaded), before the JVM's frames."""
    from sparkdedup.io import first_line

    text = (
        "An exception was thrown from the Python worker:\nTraceback (most recent call last):\n"
        '  File "embed.py", line 7, in load\n    raise OSError(...)\n'
        "OSError: We couldn't connect to 'https://huggingface.co' to load this model\n"
        "\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException(X.scala:1)\n"
    )
    assert first_line(RuntimeError(text)) == (
        "OSError: We couldn't connect to 'https://huggingface.co' to load this model"
    )
    assert first_line(RuntimeError("plain\nsecond")) == "plain"


def test_python_dash_m_runs_the_command_and_a_wrong_spark_home_is_named(tmp_path) -> None:
    """``python -m sparkdedup`` is the command; a SPARK_HOME without Spark in it (pyspark runs
    its bin/spark-submit) is an error naming it, exit code 2, not an internal error."""
    import subprocess

    env = dict(os.environ, SPARK_HOME=str(tmp_path / "no-spark-here"))
    (tmp_path / "in.jsonl").write_text('{"id": 1, "text": "a text"}\n')
    argv = [sys.executable, "-m", "sparkdedup", "exact", "--input", str(tmp_path / "in.jsonl")]
    argv += ["--input-format", "jsonl", "--output", str(tmp_path / "out"), "--master", "local[1]"]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr[-2000:]
    assert lines[-1].startswith(
        f"sparkdedup: error: SPARK_HOME={str(tmp_path / 'no-spark-here')!r}"
    )
    assert "bin/spark-submit" in lines[-1] and not (tmp_path / "out").exists()
    helped = subprocess.run([sys.executable, "-m", "sparkdedup", "--help"], capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert helped.returncode == 0 and helped.stdout.startswith("usage: sparkdedup "), helped.stdout


def _session_with(settings: dict[str, str]) -> argparse.Namespace:
    """A stand-in session: its settings, and a stop that does nothing."""
    conf = argparse.Namespace(get=lambda key, default=None: settings.get(key, default))
    return argparse.Namespace(conf=conf, stop=lambda: None)


def test_credentials_are_kept_out_of_what_the_cli_prints_and_stores(
    capsys, caplog, monkeypatch
) -> None:
    """A password in a URI (Hadoop's FTP and SFTP file systems take ``user:password@``) and a
    Connect URL's token are starred in the CLI's lines and log lines; options named as
    credentials (the session's `spark.redaction.regex`, or names Spark's default misses) are
    redacted, never stored with an output table (a writer's is refused, a reader's left out)."""
    import logging

    from sparkdedup import redact
    from sparkdedup.errors import ConfigError, InputError

    assert redact.uri("path 'ftp://alice:p@ss:x@host:21/in' and x_sftp://b:q@h2/o") == (
        "path 'ftp://alice:*****@host:21/in' and x_sftp://b:*****@h2/o"
    )
    assert redact.uri("--remote sc://host:15002/;user_id=me;token=abc/x") == (
        "--remote sc://host:15002/;user_id=me;token=*****/x"
    )
    for kept in (
        "wasbs://box@acct.blob.core.windows.net/p",
        "s3a://bucket/a:b@c",
        "/x/a:b@c",
        "hdfs://nn:8020?x=a@b",
        "http://[fe80::1%25eth0]:80@x",
        "sftp://user@host/x",
        "s3a://b/tokenizer=gpt2/sig=1/x",  # partitions, not a query
    ):
        assert redact.uri(kept) == kept
    # A credential in a URL's query: an Azure SAS's signature, a pre-signed URL's.
    assert redact.uri("'https://a.blob.core.windows.net/c/f?sv=2022&sig=S%2F1&sp=r' x") == (
        "'https://a.blob.core.windows.net/c/f?sv=2022&sig=*****&sp=r' x"
    )
    assert redact.uri("s3a://b/k?X-Amz-Signature=s&X-Amz-Credential=c&part=1") == (
        "s3a://b/k?X-Amz-Signature=*****&X-Amz-Credential=*****&part=1"
    )
    assert redact.uri("(https://h/p?sig=abc), next") == "(https://h/p?sig=*****), next"

    spark = _session_with({})
    given = {
        "fs.s3a.secret.key": "a",
        "fs.s3a.accessKey": "k",
        "fs.azure.account.key.acct.dfs.core.windows.net": "b",
        "header": "true",
        # Values are data (a glob, a schema), and a column name after # is not the option's.
        "pathGlobFilter": "*token*.jsonl",
        "parquet.bloom.filter.enabled#token_ids": "true",
    }
    assert redact.options(spark, given) == {
        "fs.s3a.secret.key": redact.REDACTED,
        "fs.s3a.accessKey": redact.REDACTED,
        "fs.azure.account.key.acct.dfs.core.windows.net": redact.REDACTED,
        "header": "true",
        "pathGlobFilter": "*token*.jsonl",
        "parquet.bloom.filter.enabled#token_ids": "true",
    }
    digests = redact.options(spark, {"fs.s3a.secret.key": "a"}, digest=True)
    assert digests["fs.s3a.secret.key"] == (
        "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    )
    # A credential set inside another value is starred there, or the value digested.
    java = {"spark.driver.extraJavaOptions": "-Dfs.s3a.secret.key=S -Dx=1"}
    assert redact.options(spark, java) == {
        "spark.driver.extraJavaOptions": "-Dfs.s3a.secret.key=***** -Dx=1"
    }
    digested = redact.options(spark, java, digest=True)["spark.driver.extraJavaOptions"]
    assert digested.startswith("sha256:") and "S " not in digested
    quoted = {"spark.driver.extraJavaOptions": '-Dpassword="a b" -Dx=1'}
    assert redact.options(spark, quoted)["spark.driver.extraJavaOptions"] == (
        "-Dpassword=***** -Dx=1"
    )
    assert redact.options(spark, {"path": "https://h/p?sig=S&x=1"}) == {
        "path": "https://h/p?sig=*****&x=1"
    }
    own_rule = _session_with({"spark.redaction.regex": "(?i)header"})
    assert redact.options(own_rule, {"header": "true", "sep": ","}) == {
        "header": redact.REDACTED,
        "sep": ",",
    }
    java_only = _session_with({"spark.redaction.regex": "(?i)secret|\\p{javaLowerCase}x{"})
    assert redact.options(java_only, {"fs.s3a.secret.key": "a"})["fs.s3a.secret.key"] == (
        redact.REDACTED
    )

    argv = ["exact", "--input", "in/", "--input-format", "parquet", "--id-col", "id"]
    table = [*argv, "--output", "out/", "--output-table", "db.t"]
    args = cli.build_parser().parse_args(
        [*table, "--read-option", "fs.s3a.access.key=r", "--write-option", "compression=gzip"]
    )
    assert cli._table_options(spark, args) == {"compression": "gzip"}
    args = cli.build_parser().parse_args([*table, "--write-option", "fs.s3a.secret.key=w"])
    with pytest.raises(ConfigError, match="spark.hadoop.fs.s3a.secret.key=...") as info:
        cli._table_options(spark, args)
    assert "=w" not in str(info.value)
    # A table created LIKE the input table takes no writer options at all.
    like = ["exact", "--input-table", "db.in", "--id-col", "id", "--output", "out/"]
    args = cli.build_parser().parse_args(
        [*like, "--output-table", "db.t", "--write-option", "fs.s3a.secret.key=w"]
    )
    assert cli._table_options(spark, args) == {}

    # The CLI's lines.
    monkeypatch.setattr(cli, "_session", lambda args: (_session_with({}), True))

    def missing(args, spark):
        logging.getLogger("sparkdedup.stages").warning("reading %s", args.input)
        raise InputError(f"input path {args.input!r} does not exist")

    monkeypatch.setattr(cli, "_run_workflow", missing)
    secret = ["exact", "--input", "ftp://alice:PW-MARKER@host/in", *argv[3:]]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert cli.main([*secret, "--output", "out/"]) == 2
    assert capsys.readouterr().err.strip() == (
        "sparkdedup: error: input path 'ftp://alice:*****@host/in' does not exist"
    )
    assert "reading ftp://alice:*****@host/in" in caplog.text and "PW-MARKER" not in caplog.text
    assert cli.main([*secret, "--output", "out/", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "ftp://alice:*****@host/in" in out and "PW-MARKER" not in out
    monkeypatch.setattr(cli, "_run_workflow", lambda args, spark: {"input_docs": 3})
    assert cli.main([*argv, "--output", "sftp://bob:PW-MARKER@host/out"]) == 0
    out = capsys.readouterr().out
    assert "-> sftp://bob:*****@host/out" in out and "PW-MARKER" not in out


def test_an_output_table_in_a_catalog_that_ends_with_the_run_is_refused(
    capsys, monkeypatch
) -> None:
    """A session the command starts with an in-memory catalog loses its tables when the
    command ends (their files left in spark-warehouse/): --output-table is refused there
    before any work, not in a session that outlives the command or a catalog that persists."""
    ran: list[bool] = []
    monkeypatch.setattr(cli, "_run_workflow", lambda args, spark: ran.append(True) or {})
    argv = ["exact", "--input", "in/", "--input-format", "parquet", "--id-col", "id"]
    argv += ["--output", "out/", "--output-table", "db.t"]
    memory = {"spark.sql.catalogImplementation": "in-memory"}
    monkeypatch.setattr(cli, "_session", lambda args: (_session_with(memory), True))
    assert cli.main(argv) == 2 and not ran
    err = capsys.readouterr().err
    assert "--output-table 'db.t': the session's catalog is in-memory" in err, err
    assert cli.main([*argv, "--remote", "local[2]"]) == 2 and not ran
    assert "the session's catalog is in-memory" in capsys.readouterr().err
    assert cli.main([*argv, "--remote", "sc://cluster:15002"]) == 0 and ran
    monkeypatch.setattr(cli, "_session", lambda args: (_session_with(memory), False))
    assert cli.main(argv) == 0 and len(ran) == 2
    hive = {"spark.sql.catalogImplementation": "hive"}
    monkeypatch.setattr(cli, "_session", lambda args: (_session_with(hive), True))
    assert cli.main(argv) == 0 and len(ran) == 3
    # Tables of other catalogs are theirs: named, the default one, a session catalog plugin.
    for settings, name in (
        ({}, "iceberg.db.t"),
        ({"spark.sql.defaultCatalog": "unity"}, "db.t"),
        ({"spark.sql.catalog.spark_catalog": "io.unitycatalog.spark.UCSingleCatalog"}, "db.t"),
    ):
        session = _session_with({**memory, **settings})
        monkeypatch.setattr(cli, "_session", lambda args, session=session: (session, True))
        assert cli.main([*argv[:-1], name]) == 0, capsys.readouterr().err
    assert len(ran) == 6
    delta = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    with_delta = _session_with({**memory, "spark.sql.catalog.spark_catalog": delta})
    monkeypatch.setattr(cli, "_session", lambda args: (with_delta, True))
    assert cli.main([*argv[:-1], "spark_catalog.db.t"]) == 2 and len(ran) == 6
    capsys.readouterr()
