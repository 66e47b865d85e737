"""The `sparkdedup` CLI end to end on a planted corpus, resume, and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sparkdedup.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )


@pytest.fixture(scope="module")
def jsonl_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    info = write_corpus(str(root / "corpus"), 600, fmt="jsonl", num_files=3, seed=11)
    return root, info


def test_fuzzy_cli_end_to_end_and_resume(jsonl_corpus):
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
    first = _cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    for stage in ("ids", "minhash", "lsh", "edges", "components", "duplicates"):
        assert f"stage {stage}" in first.stderr, first.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["input_docs"] == 600
    assert stats["kept_docs"] + stats["removed_docs"] == 600
    assert stats["removed_docs"] > 0 and stats["groups"] > 0
    assert set(stats["seconds"]) >= {
        "ids",
        "minhash",
        "lsh",
        "edges",
        "components",
        "duplicates",
    }

    dups = pd.read_parquet(out / "duplicates")
    assert list(dups.columns) == ["id", "kept_id"]
    kept = pd.concat(pd.read_json(p, lines=True) for p in (out / "deduplicated").glob("*.json"))
    assert sorted(kept.columns) == ["id", "source", "text"]
    assert len(kept) == stats["kept_docs"]
    assert not set(kept["id"]) & set(dups["id"])
    truth = pd.read_parquet(info["truth_path"])
    report = evaluate(dups, truth)
    assert report["precision"] >= 0.95 and report["recall"] >= 0.8, report

    second = _cli(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    again = json.loads((out / "stats.json").read_text())
    assert again["resumed_stages"] == [
        "ids",
        "minhash",
        "lsh",
        "edges",
        "components",
        "duplicates",
    ]
    assert again["removed_docs"] == stats["removed_docs"]

    # A changed parameter recomputes the stages it affects, not the ids; a pure performance
    # knob (bands per shuffle) changes nothing that was computed.
    third = _cli(*args, "--char-ngrams", "20", "--bands-per-iteration", "20")
    assert third.returncode == 0, third.stderr[-3000:]
    assert json.loads((out / "stats.json").read_text())["resumed_stages"] == ["ids"]


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
    mapping = pd.read_parquet(stats["id_mapping"])
    assert sorted(mapping["_dedup_id"]) == list(range(len(src)))

    # `remove` recomputes the derived ids from the same rows and drops the same documents.
    removed = _cli(
        "remove",
        "--input",
        str(tmp_path / "pq"),
        "--input-format",
        "parquet",
        "--duplicates",
        str(out / "duplicates"),
        "--output",
        str(tmp_path / "clean"),
        *SPARK_ARGS,
    )
    assert removed.returncode == 0, removed.stderr[-3000:]
    clean = pd.read_parquet(tmp_path / "clean")
    assert sorted(clean["text"]) == sorted(kept["text"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--input", "/nonexistent/corpus"], "input path '/nonexistent/corpus' does not exist"),
        (["--num-bands", "0"], "num_bands must be >= 1, got 0"),
        (["--char-ngrams", "1"], "char_ngrams must be >= 2, got 1"),
        (["--text-col", "body"], "text column 'body' is not in the input"),
        (["--spark-conf", "novalue"], "--spark-conf must be KEY=VALUE, got 'novalue'"),
    ],
)
def test_fuzzy_cli_errors_exit_2(spark, jsonl_corpus, tmp_path, capsys, extra, message):
    """Input and parameter errors: exit code 2 and one line naming the problem.

    Runs in-process (reusing the test session) to keep the suite fast; the subprocess tests
    above cover the real entry point.
    """
    _, info = jsonl_corpus
    args = [
        "fuzzy",
        "--input",
        info["path"],
        "--input-format",
        "jsonl",
        "--output",
        str(tmp_path / "o"),
    ]
    assert cli.main([*args, *extra]) == 2  # later options win in argparse
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sparkdedup: error: ") and message in err[-1], err[-1]
    assert not (tmp_path / "o" / "stats.json").exists()


def test_cli_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["fuzzy", "--input-format", "xml"])
    assert exc.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err
