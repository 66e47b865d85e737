"""Tests of sparkdedup.datagen (planted corpora) and sparkdedup.evaluate (metrics); no Spark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sparkdedup.datagen import (
    BOILERPLATE_LINES,
    generate_corpus,
    main,
    write_corpus,
)
from sparkdedup.errors import ConfigError, SchemaError
from sparkdedup.evaluate import evaluate, planted_pairs, shingle_set, true_jaccard

N = 2000


@pytest.fixture(scope="module")
def corpus() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_corpus(N, seed=7)


@pytest.fixture(scope="module")
def pairs(corpus) -> pd.DataFrame:
    docs, truth = corpus
    return planted_pairs(truth, docs)


# ------------------------------------------------------------------------------ generation
def test_deterministic_by_seed() -> None:
    a_docs, a_truth = generate_corpus(300, seed=3)
    b_docs, b_truth = generate_corpus(300, seed=3)
    pd.testing.assert_frame_equal(a_docs, b_docs)
    pd.testing.assert_frame_equal(a_truth, b_truth)
    c_docs, _ = generate_corpus(300, seed=4)
    assert not a_docs["text"].equals(c_docs["text"])


def test_schema_ids_and_truth_cover_every_doc(corpus) -> None:
    docs, truth = corpus
    assert list(docs.columns) == ["id", "text", "source"]
    assert list(truth.columns) == ["id", "cluster", "origin_id", "edit_rate"]
    for col in ("id",):
        assert docs[col].dtype == np.int64
    for col in ("id", "cluster", "origin_id"):
        assert truth[col].dtype == np.int64
    assert truth["edit_rate"].dtype == np.float64
    assert sorted(docs["id"]) == list(range(N))
    assert docs["id"].is_monotonic_increasing
    assert (docs["id"].to_numpy() == truth["id"].to_numpy()).all()
    assert all(isinstance(t, str) and t for t in docs["text"])
    assert docs["source"].str.startswith("https://").all()
    # cluster is the smallest id of its members; an origin shares the cluster of its copies
    assert (
        truth.groupby("cluster")["id"].min() == truth.groupby("cluster")["id"].min().index
    ).all()
    origin_cluster = truth.set_index("id")["cluster"].loc[truth["origin_id"]].to_numpy()
    assert (origin_cluster == truth["cluster"].to_numpy()).all()
    originals = truth[truth["origin_id"] == truth["id"]]
    assert (originals["edit_rate"] == 0).all()
    # every cluster has exactly one original
    assert (originals.groupby("cluster").size() == 1).all()
    assert originals["cluster"].nunique() == truth["cluster"].nunique()


def test_ids_do_not_follow_clusters(corpus) -> None:
    _, truth = corpus
    copies = truth[truth["origin_id"] != truth["id"]]
    gaps = (copies["id"] - copies["origin_id"]).abs()
    assert gaps.median() > N / 10  # copies are not placed next to their original


def test_duplicate_fraction_and_cluster_sizes(corpus) -> None:
    _, truth = corpus
    copies = int((truth["origin_id"] != truth["id"]).sum())
    assert copies == round(0.3 * N)
    sizes = truth.groupby("cluster").size()
    planted = sizes[sizes > 1]
    assert planted.max() <= 5
    assert (planted < 2).sum() == 0
    assert (planted >= 2).all()
    assert int((sizes - 1).sum()) == copies


@pytest.mark.parametrize("frac", [0.0, 0.1, 0.5])
def test_duplicate_fraction_exact_for_other_values(frac: float) -> None:
    _, truth = generate_corpus(400, duplicate_fraction=frac, seed=1, mean_words=20)
    assert int((truth["origin_id"] != truth["id"]).sum()) == round(frac * 400)


def test_pairs_of_two() -> None:
    _, truth = generate_corpus(10, duplicate_fraction=0.5, cluster_size=(2, 2), mean_words=20)
    assert (truth.groupby("cluster").size() == 2).all()


def test_tiny_corpora() -> None:
    for n in (1, 2, 3):
        docs, truth = generate_corpus(n, mean_words=5)
        assert len(docs) == len(truth) == n
    docs, truth = generate_corpus(1, mean_words=1)
    assert len(docs["text"].iloc[0].split()) >= 1


def test_exact_copies_have_jaccard_one_and_edited_lower(corpus) -> None:
    docs, truth = corpus
    text = docs.set_index("id")["text"]
    copies = truth[truth["origin_id"] != truth["id"]]
    exact = copies[copies["edit_rate"] == 0]
    edited = copies[copies["edit_rate"] > 0]
    assert 0.1 * len(copies) < len(exact) < 0.3 * len(copies)
    for i, o in zip(exact["id"], exact["origin_id"], strict=True):
        assert text[i] == text[o]
        assert true_jaccard(text[i], text[o]) == 1.0
    jac = np.array(
        [
            true_jaccard(text[i], text[o])
            for i, o in zip(edited["id"], edited["origin_id"], strict=True)
        ]
    )
    assert (jac < 1.0).mean() > 0.95
    assert jac.min() > 0.3
    # more edits, lower similarity
    assert np.corrcoef(edited["edit_rate"], jac)[0, 1] < -0.5


def test_zero_edit_rate_gives_exact_copies() -> None:
    docs, truth = generate_corpus(200, edit_rate=(0.0, 0.0), boilerplate_fraction=0.0, seed=2)
    text = docs.set_index("id")["text"]
    for i, o in zip(truth["id"], truth["origin_id"], strict=True):
        assert text[i] == text[o]


def test_unrelated_documents_share_almost_nothing(corpus) -> None:
    docs, truth = corpus
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, N, 300), rng.integers(0, N, 300)
    texts = docs["text"].to_numpy()
    cl = truth["cluster"].to_numpy()
    jac = [true_jaccard(texts[x], texts[y]) for x, y in zip(a, b, strict=True) if cl[x] != cl[y]]
    assert len(jac) > 250
    assert max(jac) < 0.02


def test_shared_boilerplate_does_not_make_near_duplicates(corpus) -> None:
    docs, truth = corpus
    line = BOILERPLATE_LINES[0]
    holders = docs[docs["text"].str.contains(line, regex=False)].merge(truth, on="id")
    holders = holders.drop_duplicates("cluster")
    assert len(holders) >= 5
    texts = holders["text"].tolist()
    jac = [true_jaccard(texts[i], texts[j]) for i in range(5) for j in range(i + 1, 5)]
    assert max(jac) < 0.1
    share = docs["text"].map(lambda t: any(b in t for b in BOILERPLATE_LINES)).mean()
    assert 0.05 < share < 0.2


def test_unicode_fraction(corpus) -> None:
    docs, _ = corpus
    share = docs["text"].map(lambda t: not t.isascii()).mean()
    assert 0.02 < share < 0.09
    docs1, _ = generate_corpus(50, unicode_fraction=1.0, seed=5)
    joined = "".join(docs1["text"])
    assert any(0x4E00 <= ord(c) <= 0x9FFF for c in joined)  # CJK
    assert any(ord(c) > 0xFFFF for c in joined)  # emoji, outside the BMP
    assert any(c in "éüñç" for c in joined)
    docs0, _ = generate_corpus(200, unicode_fraction=0.0, seed=5)
    assert docs0["text"].map(str.isascii).all()


def test_default_jaccard_distribution(pairs) -> None:
    j = pairs["jaccard"]
    assert 0.3 < (j >= 0.9).mean() < 0.65
    assert 0.15 < ((j >= 0.8) & (j < 0.9)).mean() < 0.45
    assert (j < 0.5).mean() < 0.02


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n_docs": 0}, "n_docs"),
        ({"n_docs": 2.5}, "n_docs"),
        ({"duplicate_fraction": 1.5}, "duplicate_fraction"),
        ({"duplicate_fraction": -0.1}, "duplicate_fraction"),
        ({"exact_fraction": 2}, "exact_fraction"),
        ({"boilerplate_fraction": -1}, "boilerplate_fraction"),
        ({"unicode_fraction": "x"}, "unicode_fraction"),
        ({"cluster_size": (1, 3)}, "cluster_size"),
        ({"cluster_size": (4, 3)}, "cluster_size"),
        ({"cluster_size": 3}, "cluster_size"),
        ({"edit_rate": (0.1, 1.5)}, "edit_rate"),
        ({"mean_words": 0}, "mean_words"),
        ({"seed": -1}, "seed"),
        ({"duplicate_fraction": 0.9}, "duplicate_fraction"),
    ],
)
def test_invalid_parameters(kwargs: dict, param: str) -> None:
    args = {"n_docs": 100, **kwargs}
    with pytest.raises(ConfigError, match=param):
        generate_corpus(args.pop("n_docs"), **args)


# ------------------------------------------------------------------------------ true_jaccard
def test_true_jaccard_hand_made() -> None:
    assert true_jaccard("abcd", "abce", char_ngrams=2) == pytest.approx(2 / 4)
    assert true_jaccard("abcd", "abcd", char_ngrams=2) == 1.0
    assert true_jaccard("abc", "xyz", char_ngrams=2) == 0.0
    # shorter than the width: one shingle, the whole text
    assert true_jaccard("abc", "abc") == 1.0
    assert true_jaccard("abc", "abd") == 0.0
    assert shingle_set("abc", 24) == {"abc"}
    assert shingle_set("a" * 24, 24) == {"a" * 24}
    assert len(shingle_set("abcdefghijklmnopqrstuvwxyz", 24)) == 3
    # empty texts: two empty texts are identical (1.0), empty vs non-empty is 0.0
    assert shingle_set("", 24) == set()
    assert true_jaccard("", "") == 1.0
    assert true_jaccard("", "abc") == 0.0
    # repeated shingles count once: sets, not multisets
    assert true_jaccard("aaaa", "aaaaaaaa", char_ngrams=2) == 1.0


def test_true_jaccard_counts_code_points() -> None:
    # emoji are one code point (4 UTF-8 bytes): width 2 over code points
    assert shingle_set("😀😀😀", 2) == {"😀😀"}
    assert true_jaccard("😀😀", "😀😀😀", char_ngrams=2) == 1.0
    assert shingle_set("héllo", 4) == {"héll", "éllo"}
    assert true_jaccard("héllo", "hello", char_ngrams=4) == 0.0
    assert true_jaccard("日本語テキスト", "日本語テキスト!", char_ngrams=3) == pytest.approx(5 / 6)
    with pytest.raises(ConfigError, match="char_ngrams"):
        true_jaccard("a", "b", char_ngrams=0)


# ------------------------------------------------------------------------------ planted_pairs
TRUTH = pd.DataFrame({"id": [0, 1, 2, 3, 4, 5, 6, 7], "cluster": [0, 0, 0, 3, 3, 5, 6, 7]})


def test_planted_pairs_hand_made() -> None:
    out = planted_pairs(TRUTH.sample(frac=1.0, random_state=0))
    assert list(zip(out["id_a"], out["id_b"], strict=True)) == [
        (0, 1),
        (0, 2),
        (1, 2),
        (3, 4),
    ]
    texts = [
        "a" * 30,
        "a" * 30,
        "b" * 30,
        "xyzw" * 10,
        "xyzw" * 10 + "q",
        "c",
        "d",
        "e",
    ]
    docs = pd.DataFrame({"id": range(8), "text": texts})
    out = planted_pairs(TRUTH, docs)
    assert out["jaccard"].tolist()[:3] == [1.0, 0.0, 0.0]
    assert out["jaccard"].iloc[3] == pytest.approx(4 / 5)
    kept = planted_pairs(TRUTH, docs, min_jaccard=0.9)
    assert list(zip(kept["id_a"], kept["id_b"], strict=True)) == [(0, 1)]
    with pytest.raises(ConfigError, match="min_jaccard"):
        planted_pairs(TRUTH, min_jaccard=0.5)
    with pytest.raises(SchemaError, match="cluster"):
        planted_pairs(TRUTH[["id"]])


def test_planted_pairs_count_matches_clusters(corpus, pairs) -> None:
    _, truth = corpus
    sizes = truth.groupby("cluster").size()
    assert len(pairs) == int((sizes * (sizes - 1) // 2).sum())
    assert (pairs["id_a"] < pairs["id_b"]).all()


# ------------------------------------------------------------------------------ evaluate
def _dups(rows: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id", "kept_id"], dtype=np.int64)


def test_evaluate_perfect() -> None:
    before = TRUTH.copy()
    m = evaluate(_dups([(1, 0), (2, 0), (4, 3)]), TRUTH)
    pd.testing.assert_frame_equal(TRUTH, before)  # inputs are not modified
    assert m["recall"] == 1.0 and m["precision"] == 1.0 and m["f1"] == 1.0
    assert m["planted_pairs"] == 4 and m["predicted_pairs"] == 4 and m["true_positive_pairs"] == 4
    assert m["removed_docs"] == m["expected_removed_docs"] == 3
    assert m["wrongly_removed_docs"] == 0
    # rows for the kept documents themselves change nothing
    assert evaluate(_dups([(0, 0), (1, 0), (2, 0), (3, 3), (4, 3)]), TRUTH) == m


def test_evaluate_missed_pair() -> None:
    m = evaluate(_dups([(1, 0), (2, 0)]), TRUTH)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["precision"] == 1.0
    assert m["removed_docs"] == 2 and m["expected_removed_docs"] == 3


def test_evaluate_split_cluster() -> None:
    m = evaluate(_dups([(1, 0), (4, 3)]), TRUTH)  # doc 2 left alone: pairs (0,2), (1,2) missed
    assert m["recall"] == pytest.approx(2 / 4)
    assert m["precision"] == 1.0


def test_evaluate_false_merge() -> None:
    m = evaluate(_dups([(1, 0), (2, 0), (4, 3), (5, 3)]), TRUTH)
    assert m["recall"] == 1.0
    assert m["predicted_pairs"] == 6 and m["true_positive_pairs"] == 4
    assert m["precision"] == pytest.approx(4 / 6)
    assert m["wrongly_removed_docs"] == 1


def test_evaluate_empty_prediction() -> None:
    m = evaluate(_dups([]), TRUTH)
    assert m["recall"] == 0.0 and m["precision"] == 1.0 and m["predicted_pairs"] == 0
    no_dups = pd.DataFrame({"id": [0, 1], "cluster": [0, 1]})
    m = evaluate(_dups([]), no_dups)
    assert m["recall"] == 1.0 and m["precision"] == 1.0


def test_evaluate_rejects_bad_input() -> None:
    with pytest.raises(SchemaError, match="not in truth"):
        evaluate(_dups([(1, 99)]), TRUTH)
    with pytest.raises(SchemaError, match="more than one kept_id"):
        evaluate(_dups([(1, 0), (1, 2)]), TRUTH)
    with pytest.raises(SchemaError, match="itself listed"):
        evaluate(_dups([(2, 1), (1, 0)]), TRUTH)
    with pytest.raises(SchemaError, match="kept_id"):
        evaluate(pd.DataFrame({"id": [1]}), TRUTH)
    with pytest.raises(ConfigError, match="min_jaccard"):
        evaluate(_dups([]), TRUTH, min_jaccard=0.5)
    with pytest.raises(ConfigError, match="min_jaccard"):
        evaluate(_dups([]), TRUTH, min_jaccard=2.0)


def test_evaluate_truth_as_prediction(corpus, pairs) -> None:
    docs, truth = corpus
    dups = truth.loc[truth["id"] != truth["cluster"], ["id", "cluster"]]
    dups = dups.rename(columns={"cluster": "kept_id"})
    m = evaluate(dups, truth)
    assert m["recall"] == m["precision"] == 1.0
    assert m["removed_docs"] == m["expected_removed_docs"] == round(0.3 * N)
    m90 = evaluate(dups, truth, docs, min_jaccard=0.9)
    assert m90["recall"] == 1.0
    assert m90["planted_pairs"] == int((pairs["jaccard"] >= 0.9).sum()) < m["planted_pairs"]
    # grouping only the exact copies finds exactly the pairs with Jaccard 1
    text = docs.set_index("id")["text"]
    exact = truth[(truth["id"] != truth["origin_id"]) & (truth["edit_rate"] == 0)]
    exact = exact[
        [text[i] == text[o] for i, o in zip(exact["id"], exact["origin_id"], strict=True)]
    ]
    m1 = evaluate(exact.rename(columns={"origin_id": "kept_id"})[["id", "kept_id"]], truth, docs)
    assert m1["precision"] == 1.0 and m1["recall"] < 1.0


# ------------------------------------------------------------------------------ writing + CLI
def _read_jsonl(files: list[str]) -> pd.DataFrame:
    rows = []
    for name in files:
        with open(name, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_write_corpus_round_trip(tmp_path, fmt: str) -> None:
    out = str(tmp_path / "corpus")
    info = write_corpus(out, 120, fmt=fmt, num_files=3, seed=9, unicode_fraction=0.5)
    docs, truth = generate_corpus(120, seed=9, unicode_fraction=0.5)
    assert info["n_docs"] == 120 and info["format"] == fmt
    assert info["truth_path"] == out + "_truth.parquet"
    assert info["planted_copies"] == 36
    assert len(info["files"]) == 3 and all(os.path.exists(f) for f in info["files"])
    if fmt == "jsonl":
        back = _read_jsonl(info["files"])
        raw = b"".join(Path(f).read_bytes() for f in info["files"])
        assert not raw.isascii() and b"\\u" not in raw  # UTF-8, not escaped
    else:
        back = pd.concat([pd.read_parquet(f) for f in info["files"]], ignore_index=True)
    pd.testing.assert_frame_equal(back, docs, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(info["truth_path"]), truth)


def test_write_corpus_overwrite_and_errors(tmp_path) -> None:
    out = str(tmp_path / "c")
    write_corpus(out, 20, num_files=2)
    with pytest.raises(ConfigError, match="overwrite"):
        write_corpus(out, 20)
    info = write_corpus(out, 20, fmt="parquet", num_files=1, overwrite=True)
    assert sorted(os.listdir(out)) == ["part-00000.parquet"]
    assert info["files"] == [os.path.join(out, "part-00000.parquet")]
    with pytest.raises(ConfigError, match="fmt"):
        write_corpus(str(tmp_path / "d"), 20, fmt="csv")
    with pytest.raises(ConfigError, match="num_files"):
        write_corpus(str(tmp_path / "d"), 20, num_files=0)
    truth = str(tmp_path / "elsewhere" / "t.parquet")
    assert write_corpus(str(tmp_path / "e"), 5, truth_path=truth)["truth_path"] == truth
    assert os.path.exists(truth)


def test_cli_main(tmp_path, capsys) -> None:
    out = str(tmp_path / "cli")
    assert main(["--output", out, "--n-docs", "30", "--format", "parquet", "--seed", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_docs"] == 30 and summary["format"] == "parquet" and summary["seed"] == 2
    assert main(["--output", out, "--n-docs", "30"]) == 2  # not empty, no --overwrite
    assert "overwrite" in capsys.readouterr().err


def test_cli_module_entry_point(tmp_path) -> None:
    out = str(tmp_path / "mod")
    cmd = [
        sys.executable,
        "-m",
        "sparkdedup.datagen",
        "--output",
        out,
        "--n-docs",
        "40",
    ]
    proc = subprocess.run(
        cmd + ["--format", "jsonl", "--num-files", "2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert len(_read_jsonl(summary["files"])) == 40
