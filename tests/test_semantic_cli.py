"""`sparkdedup semantic` end to end on a small JSONL corpus with an embedding column: outputs,
stage cache, resume, and exit codes (run in-process on the test session)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sparkdedup import cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """150 random documents in 3 groups plus 15 exact copies (``q`` 0 and 1)."""
    root = tmp_path_factory.mktemp("semantic_cli")
    rng = np.random.default_rng(3)
    base = 3 * np.eye(3, 8)[rng.integers(0, 3, size=150)] + rng.normal(size=(150, 8))
    path = root / "corpus"
    path.mkdir()
    copies = {}
    with open(path / "part-0.jsonl", "w", encoding="utf-8") as fh:
        for i, vec in enumerate(base):
            doc = {"id": i, "text": f"doc {i}", "emb": vec.round(6).tolist(), "q": 0}
            fh.write(json.dumps(doc) + "\n")
        for c in range(15):
            fh.write(
                json.dumps(
                    {
                        "id": 1000 + c,
                        "text": f"copy {c}",
                        "emb": base[c * 9].round(6).tolist(),
                        "q": 1,
                    }
                )
                + "\n"
            )
            copies[1000 + c] = c * 9
    return root, str(path), copies


#: Options every run here takes, unless its `extra` gives them (each is given once).
_DEFAULTS = {
    "--n-clusters": "3",
    "--eps": "0.01",
    "--which-to-keep": "easy",
    "--pairwise-batch-size": "16",
    "--device": "cpu",
}


def _args(path: str, out: str, *extra: str) -> list[str]:
    given = {word for word in extra if word.startswith("--")}
    defaults = [word for k, v in _DEFAULTS.items() if k not in given for word in (k, v)]
    return [
        "semantic",
        "--input",
        path,
        "--input-format",
        "jsonl",
        "--embedding-col",
        "emb",
        "--id-col",
        "id",
        "--output",
        out,
        *defaults,
        *extra,
    ]


def test_semantic_cli_end_to_end_and_resume(spark, corpus) -> None:
    root, path, copies = corpus
    out = str(root / "out")
    assert cli.main(_args(path, out)) == 0

    stats = json.loads((root / "out" / "stats.json").read_text())
    assert stats["input_docs"] == 165 and stats["removed_docs"] == 15 and stats["kept_docs"] == 150
    assert stats["resumed_stages"] == [] and stats["clusters"] == 3
    # User ids are checked (one job over the id column), not copied with the corpus.
    assert "ids" in stats["seconds"] and not (root / "out" / "cache" / "ids").exists()

    dups = spark.read.parquet(f"{out}/duplicates")
    assert dups.columns == ["id", "max_id", "cosine_sim_score"]
    # Exact copies tie on distance; "easy" ranks ties by ascending id: originals stay.
    pairs = {r["id"]: r["max_id"] for r in dups.collect()}
    assert pairs == copies

    kmeans = spark.read.parquet(f"{out}/cache/kmeans")
    assert kmeans.columns == [
        "id",
        "centroid",
        "l2_dist_to_cent",
        "cosine_dist_to_cent",
        "embedding",
    ]
    pairwise = spark.read.parquet(f"{out}/cache/pairwise")
    assert pairwise.columns == ["id", "max_id", "cosine_sim_score", "centroid"]
    assert pairwise.count() == 165
    # Each row carries its cluster: a removed document and its match share it.
    centroid_of = {r["id"]: r["centroid"] for r in kmeans.select("id", "centroid").collect()}
    assert all(centroid_of[r["id"]] == r["centroid"] for r in pairwise.collect())

    kept = spark.read.json(f"{out}/deduplicated")
    kept_ids = {r["id"] for r in kept.select("id").collect()}
    assert len(kept_ids) == 150 and not kept_ids & set(copies)
    assert set(kept.columns) == {"id", "text", "emb", "q"}

    # Same input and parameters: every stage comes back from the cache (--overwrite replaces
    # the earlier outputs).
    assert cli.main(_args(path, out, "--overwrite")) == 0
    again = json.loads((root / "out" / "stats.json").read_text())
    assert again["resumed_stages"] == ["kmeans", "pairwise", "duplicates"]
    assert again["removed_docs"] == 15

    # A new eps reuses the clustering and the pairwise scores, recomputing only the threshold.
    assert cli.main(_args(path, out, "--eps", "0.5", "--overwrite")) == 0
    loose = json.loads((root / "out" / "stats.json").read_text())
    assert loose["resumed_stages"] == ["kmeans", "pairwise"]
    assert loose["removed_docs"] >= 15


def test_semantic_cli_with_derived_ids_then_remove(spark, corpus, tmp_path) -> None:
    """Without --id-col: the ids file's row checksum comes from the final write (no pass of
    its own), so `remove` on the same rows, in another order and layout, keeps the same
    records; and the removed rows' digest, observed on that write, passes conservation."""
    root, path, copies = corpus
    args = _args(path, str(tmp_path / "out"))
    at = args.index("--id-col")
    del args[at : at + 2]
    assert cli.main(args) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["input_docs"] == 165 and stats["removed_docs"] == 15
    made = json.loads((tmp_path / "out" / "duplicates" / "_sparkdedup_ids.json").read_text())
    # `remove` below derives the ids again and refuses rows whose checksum differs from this.
    assert made["ids"] == "derived" and made["input"]["rows"] == 165
    # The same records in reverse order and two files.
    lines = open(f"{path}/part-0.jsonl", encoding="utf-8").read().splitlines()
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for k, part in enumerate((lines[::-1][:80], lines[::-1][80:])):
        (shuffled / f"p{k}.jsonl").write_text("\n".join(part) + "\n", encoding="utf-8")
    argv = ["remove", "--input", str(shuffled), "--input-format", "jsonl"]
    argv += ["--duplicates", str(tmp_path / "out" / "duplicates"), "--output", str(tmp_path / "k")]
    assert cli.main(argv) == 0

    def records(directory):
        return sorted(
            line for f in directory.glob("part-*") for line in f.read_text().splitlines() if line
        )

    kept = records(tmp_path / "k")
    assert kept == records(tmp_path / "out" / "deduplicated") and len(kept) == 150
    kept_ids = {json.loads(line)["id"] for line in kept}
    # Derived ids rank the pairs, not the id field: one of each original and its copy stays.
    assert all((copy in kept_ids) != (original in kept_ids) for copy, original in copies.items())


def test_several_eps_are_counted_from_one_set_of_scores(spark, corpus, capsys) -> None:
    """--eps 0.5,0.01,1: the scores are computed once, stats.json and stdout give what each
    eps removes, and the outputs are the first eps's."""
    root, path, _ = corpus
    out = str(root / "grid")
    assert cli.main(_args(path, out, "--eps", "0.5,0.01,1")) == 0
    stats = json.loads((root / "grid" / "stats.json").read_text())
    summary = {row["eps"]: row["removed_docs"] for row in stats["eps_summary"]}
    assert list(summary) == [0.5, 0.01, 1.0]
    assert summary[0.5] == stats["removed_docs"] and summary[0.01] == 15
    assert 15 <= summary[0.5] <= summary[1.0] <= 165 - 3  # rank 0 of each cluster is kept
    assert spark.read.parquet(f"{out}/duplicates").count() == summary[0.5]
    printed = capsys.readouterr().out
    assert "eps=0.01 removes 15 documents" in printed and "eps=1 removes" in printed
    for bad in ("0.1,2", ",0.1", "0.01,,0.1"):  # a blank entry is a typo, not skipped
        with pytest.raises(SystemExit):
            cli.main(_args(path, str(root / "bad-eps"), "--eps", bad))
        assert "between 0 and 1" in capsys.readouterr().err, bad


def test_semantic_cli_errors(spark, corpus, capsys) -> None:
    root, path, _ = corpus
    args = _args(path, str(root / "bad"))
    args[args.index("emb")] = "text"
    assert cli.main(args) == 2
    assert "embedding column 'text' must be array<float>" in capsys.readouterr().err
    # Refused for its input before the output and its cache are created.
    assert not os.path.exists(root / "bad")
    bad_sort = _args(path, str(root / "bad-sort"), "--sort-cols", "q:up")
    assert cli.main(bad_sort) == 2
    err = capsys.readouterr().err
    assert "sort_cols entry 'q:up': the direction 'up' is neither 'asc' nor 'desc'" in err, err
    assert not os.path.exists(root / "bad-sort")
    with pytest.raises(SystemExit):
        cli.main(["semantic", "--input", path, "--input-format", "jsonl", "--output", "x"])


def test_semantic_cli_one_cluster(spark, corpus) -> None:
    root, path, copies = corpus
    out = str(root / "one")
    assert cli.main(_args(path, out, "--n-clusters", "1")) == 0
    stats = json.loads((root / "one" / "stats.json").read_text())
    assert stats["clusters"] == 1 and stats["largest_cluster"] == 165
    dups = spark.read.parquet(f"{out}/duplicates")
    assert {r["id"]: r["max_id"] for r in dups.collect()} == copies


def test_semantic_cli_sort_cols_with_a_direction_on_jsonl(spark, corpus) -> None:
    """``--sort-cols COL:desc`` on JSONL: the reader parses the field ``COL`` (not
    ``COL:desc``), and each copied pair keeps the document of the larger ``q``, the copy."""
    root, path, copies = corpus
    out = str(root / "sorted")
    assert cli.main(_args(path, out, "--n-clusters", "1", "--sort-cols", "q:desc")) == 0
    dups = spark.read.parquet(f"{out}/duplicates")
    assert {r["id"]: r["max_id"] for r in dups.collect()} == {v: k for k, v in copies.items()}
