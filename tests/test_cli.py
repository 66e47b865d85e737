"""The `sparkdedup` CLI end to end on a planted corpus, resume, and exit codes."""

from __future__ import annotations

import glob
import gzip
import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from sparkdedup import cli
from sparkdedup.datagen import write_corpus
from sparkdedup.evaluate import evaluate

ENV = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
SPARK_ARGS = [
    "--master",
    "local[2]",
    "--spark-conf",
    "spark.sql.shuffle.partitions=4",
    "--spark-conf",
    "spark.ui.enabled=false",
]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sparkdedup.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env or ENV,
        timeout=600,
    )


def _settled_dump(directory, timeout: float = 180.0) -> str:
    """The class-data archive a finished CLI run's JVM wrote as it exited (in the background),
    once complete; backdated so that the next run takes it as settled."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        dumps = sorted(glob.glob(os.path.join(str(directory), "jvm", "*.tmp")))
        size = os.path.getsize(dumps[0]) if dumps else None
        if size and size == last:
            os.utime(dumps[0], (time.time() - 3600, time.time() - 3600))
            return dumps[0]
        last = size
        time.sleep(2)
    raise AssertionError(f"no class-data archive was written under {directory}")


@pytest.fixture(scope="module")
def jsonl_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    info = write_corpus(str(root / "corpus"), 600, fmt="jsonl", num_files=3, seed=11)
    return root, info


@pytest.fixture(scope="module")
def first_run(jsonl_corpus) -> dict:
    """The fuzzy CLI once on the JSONL corpus, with what it wrote read back at once (a later
    test reruns into the same output)."""
    root, info = jsonl_corpus
    out = root / "out"
    args = [
        "fuzzy",
        "--input",
        info["path"],
        "--input-format",
        "jsonl",
        "--text-col",
        "text",
        "--id-col",
        "id",
        "--output",
        str(out),
        *SPARK_ARGS,
    ]
    # The runs share a class-data archive directory of their own: the first run writes the
    # archive, the last one maps it (sparkdedup.driver_jvm).
    env = dict(ENV, SPARKDEDUP_CACHE_DIR=str(root / "jvm-cache"))
    first = _cli(*args, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    kept = pd.concat(
        pd.read_json(p, lines=True) for p in sorted((out / "deduplicated").glob("part-*"))
    )
    return {
        "root": root,
        "info": info,
        "args": args,
        "env": env,
        "run": first,
        "stats": json.loads((out / "stats.json").read_text()),
        "dups": pd.read_parquet(out / "duplicates"),
        "kept": kept,
    }


def test_fuzzy_cli_end_to_end(first_run):
    first, stats, dups, kept = (first_run[k] for k in ("run", "stats", "dups", "kept"))
    assert len(first.stdout.splitlines()) == 1, first.stdout  # no JVM messages on stdout
    for stage in ("minhash", "ids", "edges", "components", "duplicates"):
        assert f"sparkdedup stage {stage}" in first.stderr, first.stderr[-3000:]
    assert stats["input_docs"] == 600
    assert stats["kept_docs"] + stats["removed_docs"] == 600
    assert stats["removed_docs"] > 0 and stats["groups"] == dups["kept_id"].nunique()
    assert stats["group_sizes"]["groups"] == stats["groups"]
    assert stats["docs_in_groups"] == stats["removed_docs"] + stats["groups"]
    assert set(stats["seconds"]) >= {"minhash", "ids", "edges", "components", "duplicates"}
    assert stats["bad_records"] == {"mode": "fail", "rows": 0}

    assert list(dups.columns) == ["id", "kept_id"]
    # JSONL output: the kept input lines themselves.
    assert sorted(kept.columns) == ["id", "source", "text"]
    assert len(kept) == stats["kept_docs"]
    assert not set(kept["id"]) & set(dups["id"])
    truth = pd.read_parquet(first_run["info"]["truth_path"])
    report = evaluate(dups, truth)
    assert report["precision"] >= 0.95 and report["recall"] >= 0.8, report


@pytest.mark.slow
def test_fuzzy_cli_rerun_resumes_and_maps_the_class_data_archive(first_run):
    """A rerun needs --overwrite and resumes from the cache (an unchanged rerun resumes every
    stage: tests/test_cli_safety.py, in-process). A changed parameter recomputes the stages it
    affects; a pure performance knob (bands per shuffle) changes nothing that was computed.
    Its JVM starts from the class-data archive the first run's JVM wrote as it exited."""
    root, env = first_run["root"], first_run["env"]
    args = [*first_run["args"], "--overwrite"]
    out = root / "out"
    dump = _settled_dump(root / "jvm-cache")
    loaded = root / "classes.log"
    third = _cli(
        *args,
        "--priority-ascending",
        "--bands-per-iteration",
        "20",
        "--spark-conf",
        f"spark.driver.extraJavaOptions=-Xlog:class+load=info:file={loaded}",
        env=env,
    )
    assert third.returncode == 0, third.stderr[-3000:]
    assert len(third.stdout.splitlines()) == 1, third.stdout
    # The JVM started from the archive (the first run's classes), the dump in its place.
    assert os.path.exists(dump.rsplit(".", 2)[0]) and not os.path.exists(dump)
    shared = loaded.read_text().count("source: shared objects file (top)")
    assert shared > 5000, shared
    third_stats = json.loads((out / "stats.json").read_text())
    assert third_stats["resumed_stages"] == ["minhash", "edges", "components"]
    assert third_stats["removed_docs"] == first_run["stats"]["removed_docs"]


@pytest.mark.slow
def test_fuzzy_cli_parquet_with_derived_ids_and_remove(jsonl_corpus, tmp_path):
    _, info = jsonl_corpus
    src = pd.concat(pd.read_json(p, lines=True) for p in info["files"])
    src = src.drop(columns=["id"])
    (tmp_path / "pq").mkdir()
    src.to_parquet(tmp_path / "pq" / "part-0.parquet", index=False)
    out = tmp_path / "out"
    res = _cli(
        "fuzzy",
        "--input",
        str(tmp_path / "pq"),
        "--input-format",
        "parquet",
        "--output",
        str(out),
        *SPARK_ARGS,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    kept = pd.read_parquet(out / "deduplicated")
    assert list(kept.columns) == ["text", "source"]
    assert len(kept) + stats["removed_docs"] == len(src)
    # The derived ids of the rows the duplicates name (removed and kept), in the cache.
    mapping = pd.read_parquet(stats["id_mapping"], columns=["id"])
    dups = pd.read_parquet(out / "duplicates")
    assert mapping["id"].is_unique
    assert set(mapping["id"]) == set(dups["id"]) | set(dups["kept_id"])

    # `remove` recomputes the derived ids from the same rows and drops the same documents. It
    # runs without --master and without PYSPARK_PYTHON: the CLI then starts local[*] with
    # Python workers on its own interpreter (pyspark's default `python3` may lack sparkdedup).
    env = {k: v for k, v in ENV.items() if k != "PYSPARK_PYTHON"}
    removed = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparkdedup.cli",
            "remove",
            "--input",
            str(tmp_path / "pq"),
            "--input-format",
            "parquet",
            "--duplicates",
            str(out / "duplicates"),
            "--output",
            str(tmp_path / "clean"),
            *SPARK_ARGS[2:],
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert removed.returncode == 0, removed.stderr[-3000:]
    clean = pd.read_parquet(tmp_path / "clean")
    assert sorted(clean["text"]) == sorted(kept["text"])


@pytest.mark.slow  # 30-80 s in make test, which must stay under 25 minutes
def test_jsonl_derived_ids_then_remove(spark, jsonl_corpus, tmp_path, monkeypatch):
    """JSONL rows are their lines: `remove` parses every field where the fuzzy run parsed the
    text only, and still derives the same ids (it was refused as "other rows" before), so it
    keeps exactly the lines the run kept. Neither command caches or checkpoints a DataFrame
    (they write their stages under the cache: Databricks serverless may refuse caching)."""
    _, info = jsonl_corpus

    def refused(self, *args, **kwargs):
        raise AssertionError("a DataFrame was cached or checkpointed")

    for method in ("persist", "cache", "checkpoint", "localCheckpoint"):
        monkeypatch.setattr(type(spark.range(1)), method, refused)
    fmt = ["--input", info["path"], "--input-format", "jsonl"]
    assert cli.main(["fuzzy", *fmt, "--output", str(tmp_path / "out"), *SPARK_ARGS[:2]]) == 0
    dups = str(tmp_path / "out" / "duplicates")
    argv = ["remove", *fmt, "--duplicates", dups, "--output", str(tmp_path / "clean")]
    assert cli.main([*argv, "--write-option", "compression=gzip"]) == 0

    def lines(directory):
        def text(f):
            return gzip.decompress(f.read_bytes()).decode() if f.suffix == ".gz" else f.read_text()

        return sorted(
            line for f in directory.glob("part-*") for line in text(f).splitlines() if line
        )

    assert all(f.name.endswith(".txt.gz") for f in (tmp_path / "clean").glob("part-*"))
    # A mistyped input is refused before the output is created.
    missing = ["remove", "--input", str(tmp_path / "nope"), *fmt[2:], "--duplicates", dups]
    assert cli.main([*missing, "--output", str(tmp_path / "clean2")]) == 2
    assert not (tmp_path / "clean2").exists()
    kept = lines(tmp_path / "clean")
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert kept == lines(tmp_path / "out" / "deduplicated")
    assert len(kept) == stats["kept_docs"] and stats["removed_docs"] > 0


def test_jsonl_field_names_with_a_dot_and_a_backtick(spark, tmp_path):
    """JSONL fields named like flattened JSON (``meta.q``) or holding a backtick are read as
    those fields, for the id, the text and the priority: the run and `remove` keep the same
    lines, the best-scored copy of each text."""
    one, other = "the quick brown fox jumps over the lazy dog " * 5, "lorem ipsum dolor " * 12
    rows = [(1, one, 1.0), (2, other, 5.0), (3, one, 3.0), (4, other, None)]
    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(json.dumps({"doc.id": i, "body`text": t, "meta.q": q}) + "\n" for i, t, q in rows)
    )
    fmt = ["--input", str(src), "--input-format", "jsonl", "--id-col", "doc.id"]
    argv = [*fmt, "--text-col", "body`text", "--priority-col", "meta.q"]
    assert cli.main(["fuzzy", *argv, "--output", str(tmp_path / "out")]) == 0
    dups = spark.read.parquet(str(tmp_path / "out" / "duplicates"))
    assert sorted(tuple(r) for r in dups.collect()) == [(1, 3), (4, 2)]
    remove = ["remove", *fmt, "--duplicates", str(tmp_path / "out" / "duplicates")]
    assert cli.main([*remove, "--output", str(tmp_path / "clean")]) == 0
    clean = (tmp_path / "clean").glob("part-*")
    kept = [json.loads(x) for f in clean for x in f.read_text().splitlines() if x]
    assert sorted(r["doc.id"] for r in kept) == [2, 3]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--input", "/nonexistent/corpus"], "input path '/nonexistent/corpus' does not exist"),
        (["--num-bands", "0"], "num_bands must be >= 1, got 0"),
        (["--char-ngrams", "1"], "char_ngrams must be >= 2, got 1"),
        (["--text-col", "body"], "text field 'body' is in none of the first 1000 JSONL records"),
        (["--spark-conf", "novalue"], "--spark-conf must be KEY=VALUE, got 'novalue'"),
        (["--input-format", "jsonll"], "'jsonll': Spark has no data source of that name"),
    ],
)
def test_fuzzy_cli_errors_exit_2(spark, jsonl_corpus, tmp_path, capsys, extra, message):
    """Input and parameter errors: exit code 2 and one line naming the problem; nothing is
    created (no output directory, no cache).

    Runs in-process (reusing the test session) to keep the suite fast; the subprocess tests
    above cover the real entry point.
    """
    _, info = jsonl_corpus
    args = ["fuzzy", "--output", str(tmp_path / "o")]
    for option, value in (("--input", info["path"]), ("--input-format", "jsonl")):
        if option not in extra:  # (an input given twice is an error of its own)
            args += [option, value]
    assert cli.main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sparkdedup: error: ") and message in err[-1], err[-1]
    assert not (tmp_path / "o").exists()


def test_a_missing_input_is_refused_before_the_device_probe(spark, tmp_path, capsys, monkeypatch):
    """A mistyped --input is the run's last word: the executors' device probe (a Spark job
    whose log line and progress bar would follow the error) is not started for it."""
    from sparkdedup import device

    started = []
    monkeypatch.setattr(device, "probe_in_background", lambda *a, **k: started.append(a))
    argv = ["--input-format", "jsonl", "--output", str(tmp_path / "o")]
    assert cli.main(["fuzzy", "--input", str(tmp_path / "nope.jsonl"), *argv]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert started == [] and not (tmp_path / "o").exists()


#: A complete fuzzy command line, for usage errors that come from one more option.
_RUN = ["fuzzy", "--input", "x", "--input-format", "jsonl", "--output", "o"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fuzzy", "--input-format", "x ml"], "a Spark data source name"),
        (["fuzzy", "--input", "x", "--input-format", "jsonl"], "--output"),
        (["fuzzy", "--num-bands", "abc"], "invalid int value: 'abc'"),
        (["dedup"], "invalid choice: 'dedup'"),
        # argparse kept the last: the first directory's rows were silently left out.
        ([*_RUN, "--input", "y"], "--input is given more than once, and only the last"),
        (["exact", "--input-table", "a", "--input-table", "b", "--output", "o"], "given more"),
        # ... and the first list's or index's duplicates were left in.
        ([*_RUN, "--against", "i", "--against", "j"], "--against is given more than once"),
        # ... and every other value option: the output or index went where the user did not
        # look, a setting was silently replaced.
        ([*_RUN, "--output", "p"], "--output is given more than once"),
        ([*_RUN, "--index-out", "i", "--index-out", "j"], "--index-out is given more than once"),
        ([*_RUN, "--num-bands", "5", "--num-bands", "5"], "--num-bands is given more than once"),
        (["semantic", "--eps", "0.1", "--eps", "0.2"], "--eps is given more than once"),
        (
            ["remove", "--input", "x", "--duplicates", "a", "--duplicates", "b", "--output", "o"],
            "one --duplicates glob such as",
        ),
        ([*_RUN, "--master", "lcal[2]"], "--master 'lcal[2]' is not a Spark master URL"),
        ([*_RUN, "--threshold", "0.7"], "--threshold is the Jaccard threshold of --verify jaccard"),
        (
            [*_RUN, "--verify", "jaccard", "--lsh-threshold", "0.5"],
            "with --verify jaccard the bands follow --threshold",
        ),
    ],
)
def test_cli_usage_error_is_one_line_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "--help" in err[0], err


def test_unreadable_input_exit_2(spark, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{not json\n')
    for fmt, message in [
        ("jsonl", f"bad input record in {bad}, line 2: not a JSON object"),
        ("parquet", "not a Parquet file"),
    ]:
        argv = [
            "fuzzy",
            "--input",
            str(bad),
            "--input-format",
            fmt,
            "--output",
            str(tmp_path / "o"),
        ]
        assert cli.main(argv) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith("sparkdedup: error: ") and message in last, last
    # A file whose name must be percent-encoded in a URI and holds glob characters: the bad
    # record is still found, by file and line.
    odd = tmp_path / "dir x" / "a b%[1]{2}.jsonl"
    odd.parent.mkdir()
    odd.write_text('{"text": "fine"}\n{"text": "fine too"}\n{not json\n')
    argv = ["fuzzy", "--input", str(odd.parent), "--input-format", "jsonl"]
    assert cli.main([*argv, "--output", str(tmp_path / "o")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"bad input record in {odd}, line 3: not a JSON object" in last, last


def test_remove_refuses_ids_that_do_not_fit_the_input(spark, tmp_path, capsys):
    """Derived ids only identify rows of the same input; `remove` checks before removing."""
    # Pairs of identical texts (rows 2k and 2k+1); different pairs share no words.
    rows = [(" ".join(f"w{i // 2}x{j}" for j in range(12)), f"s{i}") for i in range(40)]
    spark.createDataFrame(rows, "text string, source string").write.parquet(str(tmp_path / "a"))
    subset = spark.createDataFrame(rows[:30], "text string, source string")
    subset.write.parquet(str(tmp_path / "b"))
    shuffled = spark.createDataFrame(rows[::-1], "text string, source string").select(
        "source", "text"
    )
    shuffled.repartition(3).write.parquet(str(tmp_path / "c"))

    def run(*argv):
        code = cli.main(list(argv))
        return code, ([""] + capsys.readouterr().err.strip().splitlines())[-1]

    common = ["--input-format", "parquet", "--duplicates", str(tmp_path / "out" / "duplicates")]
    code, _ = run(
        "fuzzy",
        "--input",
        str(tmp_path / "a"),
        "--input-format",
        "parquet",
        "--output",
        str(tmp_path / "out"),
        "--char-ngrams",
        "5",
    )
    assert code == 0
    code, err = run(
        "remove", "--input", str(tmp_path / "b"), *common, "--output", str(tmp_path / "x")
    )
    assert code == 2 and "derived from 40 rows" in err and "holds 30 rows" in err, err
    code, err = run(
        "remove",
        "--input",
        str(tmp_path / "a"),
        *common,
        "--id-col",
        "source",
        "--output",
        str(tmp_path / "x"),
    )
    assert code == 2 and "hold derived ids" in err, err
    # The same rows in another order, partitioning and column order: the same ids.
    code, _ = run(
        "remove", "--input", str(tmp_path / "c"), *common, "--output", str(tmp_path / "kept")
    )
    assert code == 0
    kept = sorted(pd.read_parquet(tmp_path / "kept")["source"])
    assert kept == sorted(pd.read_parquet(tmp_path / "out" / "deduplicated")["source"])
    assert sorted(int(source[1:]) // 2 for source in kept) == list(range(20))  # one per pair

    user = tmp_path / "user_dups"
    spark.createDataFrame([("s1",)], "id string").write.parquet(str(user))
    (user / "_sparkdedup_ids.json").write_text('{"ids": "user", "id_col": "source"}')
    code, err = run(
        "remove",
        "--input",
        str(tmp_path / "a"),
        "--input-format",
        "parquet",
        "--duplicates",
        str(user),
        "--output",
        str(tmp_path / "y"),
    )
    assert code == 2 and "pass --id-col source" in err, err
    # The run's group report beside its duplicates lists the kept documents too.
    groups = ["--duplicates", str(tmp_path / "out" / "groups")]
    argv = ["remove", "--input", str(tmp_path / "a"), "--input-format", "parquet", *groups]
    code, err = run(*argv, "--output", str(tmp_path / "z"))
    assert code == 2 and "is a group report" in err, err
    # Ids derived by an earlier version, whose ids file names no scheme, are refused.
    ids_file = tmp_path / "out" / "duplicates" / "_sparkdedup_ids.json"
    made = json.loads(ids_file.read_text())
    assert made["scheme"] == 3
    ids_file.write_text(json.dumps({k: v for k, v in made.items() if k != "scheme"}))
    (ids_file.parent / f".{ids_file.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum
    code, err = run(
        "remove", "--input", str(tmp_path / "a"), *common, "--output", str(tmp_path / "z")
    )
    assert code == 2 and "derived by another version of sparkdedup" in err, err


def test_remove_checks_what_it_removes_against_the_list(spark, tmp_path, capsys, caplog):
    """`remove` with user ids: the id column must be the list's; a listed id matching several
    rows (the column is not unique in this input) is refused with nothing written; listed ids
    missing from the input (a subset of the data) are a warning; bad records are counted, and
    quarantine (which has nowhere to go) is refused."""
    dups = tmp_path / "dups"
    spark.createDataFrame([(1, 0), (2, 0), (3, 0)], "id long, kept_id long").write.parquet(
        str(dups)
    )
    (dups / "_sparkdedup_ids.json").write_text('{"ids": "user", "id_col": "doc"}')
    rows = [(0, "a"), (1, "b"), (2, "c"), (4, "d")]
    spark.createDataFrame(rows, "doc long, text string").write.parquet(str(tmp_path / "subset"))
    repeated = [*rows, (2, "c again")]
    spark.createDataFrame(repeated, "doc long, text string").write.parquet(str(tmp_path / "rep"))
    bad = [*rows, (None, "no id")]
    spark.createDataFrame(bad, "doc long, text string").write.parquet(str(tmp_path / "bad"))

    def run(source, *extra, out="x"):
        argv = ["remove", "--input", str(tmp_path / source), "--input-format", "parquet"]
        argv += ["--duplicates", str(dups), "--output", str(tmp_path / out), *extra]
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, _, err = run("subset", "--id-col", "text")
    assert code == 2 and "id column 'doc' (not of --id-col 'text'); pass --id-col doc" in err, err
    assert not (tmp_path / "x").exists()

    code, _, err = run("rep", "--id-col", "doc")
    assert code == 2, err
    assert "3 rows of" in err and "match the 3 ids listed" in err and "not unique" in err, err
    assert not (tmp_path / "x").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith("_sparkdedup_staging")]

    code, out, err = run("subset", "--id-col", "doc")
    assert code == 0, err
    assert "1 of the 3 ids listed" in caplog.text and "the 2 found were removed" in caplog.text
    summary = json.loads(out.strip().splitlines()[-1].split(": ", 1)[1].rsplit(" in ", 1)[0])
    assert summary == {"input_docs": 4, "removed_docs": 2, "kept_docs": 2, "listed_docs": 3}
    assert sorted(pd.read_parquet(tmp_path / "x")["doc"]) == [0, 4]

    # A list whose ids are not the input's (strings that are no integers' text, or numbers
    # that a cast would truncate to another document's id) is refused, nothing written.
    spark.createDataFrame([("1",), ("x",)], "id string").write.parquet(str(tmp_path / "s"))
    spark.createDataFrame([(1.0,), (2.7,)], "id double").write.parquet(str(tmp_path / "f"))
    for listed, message in (
        ("s", "include values that are not --id-col 'doc' (bigint), such as 'x'"),
        ("f", "id column is double; ids are integers or strings"),
    ):
        argv = ["remove", "--input", str(tmp_path / "subset"), "--input-format", "parquet"]
        argv += ["--duplicates", str(tmp_path / listed), "--id-col", "doc"]
        code = cli.main([*argv, "--output", str(tmp_path / "z")])
        err = capsys.readouterr().err
        assert code == 2 and message in err.strip().splitlines()[-1], err
        assert not (tmp_path / "z").exists()

    # A null in a list names no document: not counted as listed (all the others were found,
    # so no warning of ids missing from the input), and said so.
    caplog.clear()
    spark.createDataFrame([(1,), (2,), (None,)], "id long").write.parquet(str(tmp_path / "n"))
    argv = ["remove", "--input", str(tmp_path / "subset"), "--input-format", "parquet"]
    argv += ["--duplicates", str(tmp_path / "n"), "--id-col", "doc", "--output"]
    assert cli.main([*argv, str(tmp_path / "w")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(line.split(": ", 1)[1].rsplit(" in ", 1)[0])
    assert summary["listed_docs"] == 2 and summary["removed_docs"] == 2, summary
    assert "include nulls" in caplog.text and "are not in" not in caplog.text, caplog.text

    # A run's output directory is not its duplicates list.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "_sparkdedup_output.json").write_text("{}")
    argv[argv.index(str(tmp_path / "n"))] = str(tmp_path / "run")
    assert cli.main([*argv, str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert f"is a sparkdedup output directory; give its duplicates directory, {tmp_path}" in err

    code, _, err = run("bad", "--id-col", "doc", "--bad-records", "quarantine", out="y")
    assert code == 2 and "--bad-records quarantine is for fuzzy, exact and semantic" in err, err
    code, out, err = run("bad", "--id-col", "doc", "--bad-records", "skip", out="y")
    assert code == 0 and "1 bad input records skipped" in caplog.text, err
    assert sorted(pd.read_parquet(tmp_path / "y")["doc"]) == [0, 4]


def test_a_changed_read_option_recomputes_the_cached_stages(spark, tmp_path, capsys):
    """The stage cache's key holds --read-option: Latin-1 texts that differ only in an
    accented letter read as UTF-8 all become the same text (U+FFFD), and a rerun that reads
    them right, into the same output, does not take the wrong parse's stages from the cache.
    Credentials among the options are not written down (the key holds their digests)."""
    src = tmp_path / "latin1"
    src.mkdir()
    lines = ["id,text"] + [
        f"{i},the same words then {chr(0xE0 + i)} and more words" for i in range(6)
    ]
    (src / "part-0.csv").write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    argv = ["exact", "--input", str(src), "--input-format", "csv", "--id-col", "id"]
    argv += ["--read-option", "header=true", "--output", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["removed_docs"] == 5
    argv += ["--read-option", "encoding=ISO-8859-1", "--overwrite"]

    def with_keys(marker: str) -> list[str]:
        account = f"fs.azure.account.key.acct.dfs.core.windows.net={marker}-1"
        return [*argv, "--read-option", account, "--read-option", f"fs.s3a.secret.key={marker}-2"]

    assert cli.main(with_keys("KEY-ONE")) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["removed_docs"] == 0 and stats["resumed_stages"] == [], stats
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert written and not [p for p in written if b"KEY-ONE" in p.read_bytes()]
    assert cli.main(with_keys("KEY-ONE")) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["removed_docs"] == 0 and stats["resumed_stages"], stats
    capsys.readouterr()
    # A writer's refusal names the options given, credentials redacted.
    assert cli.main([*with_keys("KEY-THREE"), "--write-option", "compression=brotli"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "refuses the options" in err and "compression=brotli" in err, err
    assert "fs.s3a.secret.key=*********(redacted)" in err and "KEY-THREE" not in err, err


@pytest.mark.slow  # 30-80 s in make test, which must stay under 25 minutes
def test_a_changed_session_time_zone_recomputes_the_cached_stages(spark, tmp_path, capsys):
    """A CSV's timestamps are parsed in the session's time zone, and derived ids hash them: a
    rerun into the same output under another zone, set or (unset) the JVM's own, does not
    resume the other zone's stages (whose ids no longer match the rows: a conservation error
    at every rerun)."""
    src = tmp_path / "csv"
    src.mkdir()
    rows = [f"2024-01-0{1 + i % 5} 10:00:00,text number {i // 2}" for i in range(10)]
    (src / "part-0.csv").write_text("ts,text\n" + "\n".join(rows) + "\n")
    argv = ["exact", "--input", str(src), "--input-format", "csv", "--output", str(tmp_path / "o")]
    argv += ["--read-option", "header=true", "--read-option", "inferSchema=true", "--overwrite"]
    jvm = spark.sparkContext._jvm
    zone, default = (
        spark.conf.get("spark.sql.session.timeZone"),
        jvm.java.util.TimeZone.getDefault(),
    )

    def resumed() -> list[str]:
        assert cli.main(argv) == 0, capsys.readouterr().err[-2000:]
        stats = json.loads((tmp_path / "o" / "stats.json").read_text())
        assert stats["input_docs"] == 10 and stats["removed_docs"] == 5, stats
        return stats["resumed_stages"]

    try:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        assert resumed() == []
        spark.conf.set("spark.sql.session.timeZone", "America/New_York")
        assert resumed() == []
        assert resumed()  # the same zone: resumed
        spark.conf.unset("spark.sql.session.timeZone")  # the JVM's zone, then
        jvm.java.util.TimeZone.setDefault(jvm.java.util.TimeZone.getTimeZone("Asia/Tokyo"))
        assert resumed() == []
        jvm.java.util.TimeZone.setDefault(jvm.java.util.TimeZone.getTimeZone("Europe/Paris"))
        assert resumed() == []
    finally:
        jvm.java.util.TimeZone.setDefault(default)
        spark.conf.set("spark.sql.session.timeZone", zone)
    capsys.readouterr()


def test_settings_that_repack_the_input_splits_recompute_the_cached_stages(spark, tmp_path, capsys):
    """Derived ids follow the input's splits (by input position): a rerun into the same output
    under maxPartitionNum or leafNodeDefaultParallelism, which pack the files into other
    partitions, does not resume the stages of the other layout (whose row keys no longer match
    the rows: a conservation error at every rerun)."""
    src = tmp_path / "in"
    src.mkdir()
    for f in range(3):  # three files: three partitions of the test session, or one
        rows = [{"text": f"words of document {i} " * 4, "file": f} for i in range(4)]
        (src / f"part-{f}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["fuzzy", "--input", str(src), "--input-format", "jsonl", "--char-ngrams", "5"]
    argv += ["--output", str(tmp_path / "o"), "--overwrite"]

    def resumed() -> list[str]:
        assert cli.main(argv) == 0, capsys.readouterr().err[-2000:]
        stats = json.loads((tmp_path / "o" / "stats.json").read_text())
        assert stats["input_docs"] == 12 and stats["removed_docs"] == 8, stats
        return stats["resumed_stages"]

    assert resumed() == []
    for key in ("spark.sql.files.maxPartitionNum", "spark.sql.leafNodeDefaultParallelism"):
        spark.conf.set(key, "1")
        try:
            assert resumed() == []
        finally:
            spark.conf.unset(key)
    capsys.readouterr()


def test_a_file_replaced_by_one_of_its_size_recomputes_the_cached_stages(spark, tmp_path, capsys):
    """The cache knows the input by every file's name, size and time: a file rewritten with
    other texts of the same length, kept older than the newest file, is a changed input."""
    import os

    src = tmp_path / "in"
    src.mkdir()
    text = "the same words again and again, word after word "
    (src / "a.jsonl").write_text(f'{{"id": 1, "text": "{text}1"}}\n')
    (src / "b.jsonl").write_text(f'{{"id": 2, "text": "{text}1"}}\n')
    os.utime(src / "a.jsonl", (1_000_000, 1_000_000))
    argv = ["exact", "--input", str(src), "--input-format", "jsonl", "--id-col", "id"]
    argv += ["--output", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["removed_docs"] == 1
    (src / "a.jsonl").write_text(f'{{"id": 1, "text": "{text}2"}}\n')
    os.utime(src / "a.jsonl", (1_500_000, 1_500_000))
    assert cli.main([*argv, "--overwrite"]) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["removed_docs"] == 0 and stats["resumed_stages"] == [], stats
    capsys.readouterr()


def test_stats_record_the_lsh_threshold_that_chose_the_bands(spark, tmp_path):
    """stats.json says which --lsh-threshold chose the bands (its config's `threshold` is
    --verify jaccard's, unused here)."""
    from sparkdedup.tuning import lsh_params

    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(f'{{"id": {i}, "text": "document number {i} of three"}}\n' for i in range(3))
    )
    argv = ["fuzzy", "--input", str(src), "--input-format", "jsonl", "--id-col", "id"]
    assert cli.main([*argv, "--lsh-threshold", "0.5", "--output", str(tmp_path / "out")]) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    bands, rows = lsh_params(0.5, 260)
    assert stats["lsh_threshold"] == 0.5
    assert (stats["config"]["num_bands"], stats["config"]["minhashes_per_band"]) == (bands, rows)


def test_csv_output_keeps_the_texts_whitespace(spark, tmp_path):
    """Spark's CSV writer trims each value unless told not to: the kept rows' texts come back
    as they were read, spaces, tabs and line ends included; a user's own setting still wins."""
    from sparkdedup.io import write_output

    texts = [" ", "  leading", "trailing\t", "\nboth\n", "plain"]
    df = spark.createDataFrame(list(enumerate(texts)), "id long, text string")
    write_output(df, str(tmp_path / "out"), "csv", {"header": "true"})
    back = spark.read.options(header="true", multiLine="true").csv(str(tmp_path / "out"))
    assert sorted((int(r["id"]), r["text"]) for r in back.collect()) == list(enumerate(texts))
    opts = {"header": "true", "IGNORETRAILINGWHITESPACE": "true"}
    write_output(df, str(tmp_path / "trimmed"), "csv", opts)
    back = spark.read.options(header="true", multiLine="true").csv(str(tmp_path / "trimmed"))
    assert {r["text"] for r in back.collect()} >= {"trailing", "  leading"}


def test_writer_options_are_checked_before_the_work(spark, jsonl_corpus, tmp_path, capsys):
    """A writer option the output's writer refuses is an error (exit 2, naming the options)
    before any stage runs; nothing is left behind. A malformed one is a usage error."""
    _, info = jsonl_corpus
    argv = ["fuzzy", "--input", info["path"], "--input-format", "jsonl", "--id-col", "id"]
    out = tmp_path / "o"
    assert cli.main([*argv, "--output", str(out), "--write-option", "compression=bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sparkdedup: error: the jsonl writer refuses the options "
                              "compression=bogus (--write-option"), err[-1]  # fmt: skip
    assert not any("sparkdedup stage" in line for line in err), err
    assert not out.exists()
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--output", str(out), "--write-option", "compression"])
    assert exc.value.code == 2 and not out.exists()
    assert "--write-option must be KEY=VALUE" in capsys.readouterr().err


def test_parquet_id_column_with_a_dot(spark, tmp_path, capsys):
    """A Parquet id column named ``doc.id`` is that column, not a field of a struct ``doc``."""
    text = "the quick brown fox jumps over the lazy dog " * 4
    rows = [(1, text), (2, "something else entirely, word after word " * 3), (3, text)]
    src = str(tmp_path / "in")
    spark.createDataFrame(rows, "`doc.id` long, text string").write.parquet(src)
    argv = ["fuzzy", "--input", src, "--input-format", "parquet", "--id-col", "doc.id"]
    assert cli.main([*argv, "--output", str(tmp_path / "out")]) == 0
    dups = spark.read.parquet(str(tmp_path / "out" / "duplicates"))
    assert [tuple(r) for r in dups.collect()] == [(3, 1)]
    capsys.readouterr()


def test_fuzzy_cli_on_orc_and_csv_keeps_the_format(spark, tmp_path, capsys):
    """Any Spark data source: the rows are read with --read-option, and the deduplicated
    output is written in the input's format and schema (CSV with the reader's header)."""
    import random

    rngs = [random.Random(i) for i in range(30)]
    rows = [
        (i, " ".join(f"w{rng.randrange(100_000)}" for _ in range(60))) for i, rng in enumerate(rngs)
    ]
    rows += [(100 + i, rows[i][1]) for i in range(3)]  # exact copies of 0, 1, 2
    df = spark.createDataFrame(rows, "id long, text string").repartition(2)
    csv_options = ["--read-option", "header=true", "--read-option", "inferSchema=true"]
    for fmt, read_options in (("orc", []), ("csv", csv_options)):
        src = str(tmp_path / f"in-{fmt}")
        df.write.format(fmt).options(header="true").save(src)
        out = tmp_path / f"out-{fmt}"
        argv = ["fuzzy", "--input", src, "--input-format", fmt, "--id-col", "id"]
        assert cli.main([*argv, *read_options, "--output", str(out)]) == 0
        stats = json.loads((out / "stats.json").read_text())
        assert stats["input_docs"] == 33
        options = {"header": "true", "inferSchema": "true"}  # CSV ids as integers: 2 < 102
        kept = spark.read.format(fmt).options(**options).load(str(out / "deduplicated"))
        source = spark.read.format(fmt).options(**options).load(src)
        assert kept.schema == source.schema
        kept_ids = {int(r["id"]) for r in kept.collect()}
        assert kept_ids == set(range(30))  # only the copies go
        assert stats["removed_docs"] == 3 and len(kept_ids) == stats["kept_docs"]
    capsys.readouterr()
    argv = ["fuzzy", "--input", src, "--input-format", "nosuchsource", "--output"]
    assert cli.main([*argv, str(tmp_path / "o")]) == 2
    assert "'nosuchsource': Spark has no data source of that name" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # a usage error, before Spark starts
        cli.main([*argv, str(tmp_path / "o2"), "--read-option", "header"])
    assert exc.value.code == 2
    assert "--read-option must be KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # a credential's value is not shown
        cli.main([*argv, str(tmp_path / "o2"), "--read-option", "fs.s3a.secret.key:KEY-1"])
    err = capsys.readouterr().err
    assert (
        "got an item naming a credential or without a key (not shown)" in err and "KEY-1" not in err
    ), err


def test_a_reader_mode_that_drops_rows_without_a_count_is_refused(spark, tmp_path, capsys):
    """``mode=DROPMALFORMED`` makes Spark drop the rows it cannot parse without counting them
    (and which ones depends on the columns a pass reads): `remove` would lose them from its
    output without a word, `exact` fail as if the input had changed. Refused before any job,
    naming the option; PERMISSIVE (the default) and FAILFAST stay."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.csv").write_text("id,text,n\n1,aa,1\n2,aa,2\n3,bb,3\n4,cc,4,extra\n5,dd,5\n")
    dups = str(tmp_path / "dups")
    spark.createDataFrame([(2,)], "id long").write.parquet(dups)
    read = ["--input", str(src), "--input-format", "csv", "--read-option", "header=true"]
    read += ["--id-col", "id", "--read-option", "MODE=dropMalformed"]
    for argv in (
        ["remove", *read, "--duplicates", dups, "--output", str(tmp_path / "r")],
        ["exact", *read, "--output", str(tmp_path / "o")],
    ):
        assert cli.main(argv) == 2, argv[0]
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "--read-option mode=DROPMALFORMED" in err and "PERMISSIVE" in err, err
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()
    argv = ["remove", *read[:-2], "--read-option", "mode=PERMISSIVE", "--duplicates", dups]
    assert cli.main([*argv, "--output", str(tmp_path / "r")]) == 0
    kept = spark.read.options(header="true").csv(str(tmp_path / "r"))
    assert sorted(int(r["id"]) for r in kept.collect()) == [1, 3, 4, 5]
    capsys.readouterr()


def test_orc_files_with_other_columns_keep_them(spark, tmp_path, capsys):
    """ORC files whose schemas differ are read with their schemas merged, as Parquet: Spark
    alone reads the columns of one file, and the kept rows of the others would lose theirs."""
    plain = spark.createDataFrame([(1, "a"), (2, "b")], "id long, text string")
    more = spark.createDataFrame(
        [(3, "a", "x"), (4, "c", "y")], "id long, text string, extra string"
    )
    for first in ("plain", "more"):  # whichever file Spark would take the schema of
        src = tmp_path / f"in-{first}"
        src.mkdir()
        for name, df in (("plain", plain), ("more", more)):
            df.coalesce(1).write.orc(str(tmp_path / name / first))
            (part,) = (tmp_path / name / first).glob("part-*.orc")
            part.rename(src / f"{0 if name == first else 1}.orc")
        out = tmp_path / f"out-{first}"
        argv = ["exact", "--input", str(src), "--input-format", "orc", "--id-col", "id"]
        assert cli.main([*argv, "--output", str(out)]) == 0
        kept = spark.read.option("mergeSchema", "true").orc(str(out / "deduplicated"))
        assert sorted(tuple(r) for r in kept.select("id", "text", "extra").collect()) == [
            (1, "a", None),
            (2, "b", None),
            (4, "c", "y"),
        ], first
    # The user's own setting of the option, in any spelling, is taken with the default.
    for given in ("mergeSchema=true", "MERGESCHEMA=false"):
        out = tmp_path / f"out-{given}"
        argv = ["exact", "--input", str(tmp_path / "in-plain"), "--input-format", "orc", "--id-col"]
        argv += ["id", "--read-option", given, "--output", str(out)]
        assert cli.main(argv) == 0, given
    capsys.readouterr()


def test_an_orc_file_that_cannot_be_read_is_named(spark, tmp_path, capsys):
    """A truncated ORC file among others fails the schema merge with a message that names no
    file ("Protocol message contained an invalid tag"): the error names the file, found by
    loading halves of the input; an option no file loads with names none."""
    from sparkdedup.io import _failing_file

    src = tmp_path / "in"
    spark.range(60).selectExpr("id", "concat('text ', id) AS text").repartition(6).write.orc(
        str(src)
    )
    parts = sorted(src.glob("part-*.orc"))
    assert len(parts) == 6
    broken = parts[3]
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    for crc in src.glob(".*.crc"):
        crc.unlink()
    argv = ["exact", "--input", str(src), "--input-format", "orc", "--id-col", "id"]
    assert cli.main([*argv, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"cannot be read as orc ({broken}): " in err, err
    assert not (tmp_path / "o").exists()
    # Files chosen by a pathGlobFilter: a half of files it does not match fails otherwise
    # (no schema to infer), and is not taken for the file at fault.
    for i, part in enumerate(parts[:3]):
        part.rename(src / f"other-{i}.txt")
    code = cli.main(
        [*argv, "--read-option", "pathGlobFilter=*.orc", "--output", str(tmp_path / "p")]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and f"cannot be read as orc ({broken}): " in err, err
    broken.unlink()
    options = {"mergeSchema": "maybe"}
    with pytest.raises(Exception) as failed:  # noqa: PT011 - Spark's error, whatever its class
        _ = spark.read.options(**options).orc(str(src)).schema
    assert _failing_file(spark, str(src), "orc", options, failed.value) is None


def test_csv_files_whose_headers_disagree_are_refused(spark, tmp_path, capsys):
    """CSV files read with a header whose columns come in another order (or under other
    names) are an error naming the file: Spark alone takes the first file's header for every
    file, and the other files' values would be read, deduplicated and written back under the
    wrong columns."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.csv").write_text("id,text\n1,hello\n2,world\n")
    (src / "b.csv").write_text("text,id\nhello,3\nnew,4\n")
    argv = ["exact", "--input", str(src), "--input-format", "csv", "--read-option", "header=true"]
    assert cli.main([*argv, "--id-col", "id", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "b.csv" in err and "header" in err.lower(), err
    assert not (tmp_path / "o" / "deduplicated").exists()
    (src / "b.csv").write_text("id,text\n3,hello\n4,new\n")  # the same header: read as ever
    assert cli.main([*argv, "--id-col", "id", "--output", str(tmp_path / "o2")]) == 0
    dups = spark.read.parquet(str(tmp_path / "o2" / "duplicates"))
    assert [tuple(r) for r in dups.collect()] == [("3", "1")]
    capsys.readouterr()


def test_an_input_file_replaced_during_the_run_commits_nothing(
    spark, tmp_path, capsys, monkeypatch
):
    """A file of the input replaced while the run works, by one of as many rows (which the
    final write's row count cannot see), is caught by listing the input again before the
    commit: exit 2 naming the input, no output, and the rerun recomputes."""
    import pandas as pd

    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        texts = [f"text {i % 3} of file {k}" for i in range(6)]
        frame = pd.DataFrame({"id": [10 * k + i for i in range(6)], "text": texts})
        frame.to_parquet(src / f"part-{k}.parquet")
    real = cli._write_results

    def replacing(*args, **kwargs):
        stats = real(*args, **kwargs)
        frame = pd.DataFrame({"id": list(range(10, 16)), "text": [f"new {i}" for i in range(6)]})
        frame.to_parquet(src / "part-1.parquet")  # as many rows, other texts
        return stats

    monkeypatch.setattr(cli, "_write_results", replacing)
    argv = ["exact", "--input", str(src), "--input-format", "parquet", "--id-col", "id"]
    out = tmp_path / "out"
    assert cli.main([*argv, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--input '{src}' changed during the run" in err and "2 files" in err, err
    assert not (out / "stats.json").exists() and not (out / "deduplicated").exists()
    monkeypatch.setattr(cli, "_write_results", real)
    assert cli.main([*argv, "--output", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["resumed_stages"] == [] and stats["removed_docs"] == 3, stats
    # A glob whose fixed part holds this run's own output: its files, written meanwhile,
    # are no change of the input.
    glob = ["exact", "--input", f"{src}/*", "--input-format", "parquet", "--id-col", "id"]
    assert cli.main([*glob, "--output", str(src / "out")]) == 0, capsys.readouterr().err
    # `remove` alike: a file replaced by one of the same ids (their digest cannot see it).
    (src / "out").rename(tmp_path / "glob-out")
    write_kept = cli._write_kept

    def replacing_kept(*args, **kwargs):
        write_kept(*args, **kwargs)
        frame = pd.DataFrame({"id": list(range(10, 16)), "text": [f"other {i}" for i in range(6)]})
        frame.to_parquet(src / "part-1.parquet")

    monkeypatch.setattr(cli, "_write_kept", replacing_kept)
    remove = ["remove", *argv[1:], "--duplicates", str(out / "duplicates")]
    assert cli.main([*remove, "--output", str(tmp_path / "clean")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--input '{src}' changed during the run" in err, err
    assert not (tmp_path / "clean" / "part-00000.parquet").exists()
    assert not list((tmp_path / "clean").glob("part-*"))
    monkeypatch.setattr(cli, "_write_kept", write_kept)
    assert cli.main([*remove, "--output", str(tmp_path / "clean")]) == 0


def test_stages_of_a_run_whose_input_changed_are_never_resumed(
    spark, tmp_path, capsys, monkeypatch
):
    """A file replaced as the run starts computing (by one of the same size) is caught at the
    end, and the stages computed from it, cached under the key of the input as it was, are
    not resumed when the input is put back as it was (bytes and times): the rerun recomputes
    them and removes what the restored input holds."""
    import pandas as pd
    from sparkdedup import exact

    src = tmp_path / "in"
    src.mkdir()

    def write(k: int, texts: list[str]) -> None:
        frame = pd.DataFrame({"id": [10 * k + i for i in range(6)], "text": texts})
        # Uncompressed and plain-encoded: texts of the same lengths make files of one size.
        frame.to_parquet(src / f"part-{k}.parquet", compression=None, use_dictionary=False)

    for k in range(2):
        write(k, [f"text {i % 3} of file {k}" for i in range(6)])
    part = src / "part-1.parquet"
    original, times = part.read_bytes(), os.stat(part)
    real = exact.run_exact
    argv = ["exact", "--input", str(src), "--input-format", "parquet", "--id-col", "id"]

    def changed_then_restored(out, ids: list[int]) -> None:
        """A run whose part-1 is replaced (`ids`, distinct texts, as many bytes) as it starts
        computing fails naming the change; with the file put back, the rerun resumes
        nothing."""

        def replacing(*args, **kwargs):
            frame = pd.DataFrame({"id": ids, "text": [f"text {i} of file 1" for i in range(6)]})
            frame.to_parquet(part, compression=None, use_dictionary=False)
            assert part.stat().st_size == times.st_size
            return real(*args, **kwargs)

        monkeypatch.setattr(exact, "run_exact", replacing)
        assert cli.main([*argv, "--output", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"--input '{src}' changed during the run" in err, err
        monkeypatch.setattr(exact, "run_exact", real)
        part.write_bytes(original)
        os.utime(part, ns=(times.st_atime_ns, times.st_mtime_ns))
        assert cli.main([*argv, "--output", str(out)]) == 0, capsys.readouterr().err
        stats = json.loads((out / "stats.json").read_text())
        assert stats["resumed_stages"] == [] and stats["removed_docs"] == 6, stats

    changed_then_restored(tmp_path / "out", list(range(10, 16)))  # caught at the end
    # A change that fails the run before its end (ids that clash with the other file's): the
    # error names the change, and the stages computed go too.
    changed_then_restored(tmp_path / "other", list(range(6)))


def test_a_full_disk_names_where_the_run_writes(spark, tmp_path, capsys, monkeypatch):
    """A run that fails because a disk filled up (however deep in the failure's chain) says
    so, naming where it writes with the space left there, instead of an internal error."""
    import re

    import pandas as pd

    src = tmp_path / "in"
    src.mkdir()
    pd.DataFrame({"id": [1, 2], "text": ["a b", "a b"]}).to_parquet(src / "p.parquet")

    def full(*args, **kwargs):
        try:
            raise OSError(28, "No space left on device")
        except OSError as err:
            raise RuntimeError("Job aborted due to stage failure") from err

    monkeypatch.setattr(cli, "_write_results", full)
    out = tmp_path / "out"
    argv = ["exact", "--input", str(src), "--input-format", "parquet", "--id-col", "id"]
    assert cli.main([*argv, "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("sparkdedup: error: a disk filled up during the run (No space left"), err
    assert re.search(rf"--output {re.escape(str(out))}, [0-9.]+ GiB free; the stage cache ", err)
    assert "spark.local.dir " in err and f"resumes from the stages in {out}/cache" in err, err
    assert not (out / "stats.json").exists()


def test_a_truncated_input_file_is_an_input_error(spark, tmp_path, capsys):
    """A compressed input file cut short is exit 2 and 'an input file cannot be read', on
    Spark 3.5 too (which wraps the read's failure in the stage's write), naming the file
    where Spark says which (4.x)."""
    import gzip

    import pyspark

    src = tmp_path / "in"
    src.mkdir()
    lines = "".join(
        json.dumps({"id": i, "text": f"text number {i} " * 20}) + "\n" for i in range(400)
    )
    whole = gzip.compress(lines.encode())
    (src / "a.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    argv = ["fuzzy", "--input", str(src), "--input-format", "jsonl", "--id-col", "id"]
    assert cli.main([*argv, "--output", str(tmp_path / "out"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "sparkdedup: error: an input file cannot be read" in err, err
    if int(pyspark.__version__.split(".")[0]) >= 4:
        assert "a.jsonl.gz): " in err, err


def test_a_cache_file_removed_during_the_run_is_named_as_the_caches(
    spark, tmp_path, capsys, monkeypatch
):
    """A file of the stage cache removed while the run reads it is named as the cache's (a
    rerun recomputes), not as an input file."""
    import pandas as pd
    from sparkdedup.stages import StageRunner

    src = tmp_path / "in"
    src.mkdir()
    texts = [f"document {i % 5} about things" for i in range(40)]
    pd.DataFrame({"id": range(40), "text": texts}).to_parquet(src / "p.parquet")
    out = tmp_path / "out"
    real = StageRunner.run

    def removing(self, name, *args, **kwargs):
        for part in (out / "cache").glob("*/part-*"):
            part.unlink()  # what the earlier stages wrote
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(StageRunner, "run", removing)
    argv = ["fuzzy", "--input", str(src), "--input-format", "parquet", "--id-col", "id"]
    assert cli.main([*argv, "--output", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"a file of the stage cache '{out}/cache' cannot be read" in err, err
    assert "an input file" not in err


def test_an_input_that_cannot_be_reached_or_listed_is_named(spark, tmp_path, capsys, monkeypatch):
    """A store that refuses the connection, or a directory that cannot be listed (no
    permission), is a usage error naming the input (exit 2), not an internal error."""
    from sparkdedup import fs

    argv = ["exact", "--input-format", "parquet", "--id-col", "id"]
    unreachable = "ftp://reader:PW@127.0.0.1:1/corpus"  # nothing listens on port 1
    assert cli.main([*argv, "--input", unreachable, "--output", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "input path 'ftp://reader:*****@127.0.0.1:1/corpus' cannot be reached" in err, err
    (tmp_path / "in").mkdir()

    def denied(spark_, path, name_glob=None):
        raise OSError(f"{path}: Permission denied")

    monkeypatch.setattr(fs, "input_listing", denied)
    argv += ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "b")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--input '{tmp_path / 'in'}' cannot be listed: " in err, err
    assert "Permission denied" in err and not (tmp_path / "b").exists()
    # Spark's own failures (a listing job that lost its executors) are not the input's.
    from pyspark.errors import PySparkException

    def lost(spark_, path, name_glob=None):
        raise PySparkException("Job aborted: executor lost")

    monkeypatch.setattr(fs, "input_listing", lost)
    assert cli.main(argv) == 1
    assert "internal error: PySparkException" in capsys.readouterr().err
