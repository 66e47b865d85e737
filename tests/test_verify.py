"""The verified fuzzy mode: the exact Jaccard kernel (Spark-free, against the pure-Python
shingle sets), the band choice, and the workflow and CLI on a corpus whose pairs' exact
Jaccard is known."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql import functions as F
from sparkdedup import FuzzyConfig
from sparkdedup.cli import main
from sparkdedup.errors import ConfigError
from sparkdedup.evaluate import true_jaccard
from sparkdedup.kernels.jaccard import _mul61, jaccard_arrow, jaccard_of_pairs
from sparkdedup.stages import StageRunner
from sparkdedup.tuning import verify_bands


# ------------------------------------------------------------------------------ no Spark
def test_mul61_is_multiplication_modulo_the_mersenne_prime() -> None:
    prime = (1 << 61) - 1
    rng = random.Random(5)
    values = [0, 1, 2, prime - 1, prime - 2, 1 << 32, (1 << 32) - 1, 1 << 60]
    values += [rng.randrange(prime) for _ in range(300)]
    for a in values:
        for b in values[:40]:
            assert int(_mul61(np.uint64(a), np.uint64(b))) == a * b % prime


@pytest.mark.parametrize("width", [1, 3, 24])
def test_jaccard_kernel_equals_the_shingle_sets(width: int) -> None:
    rng = random.Random(width)
    alphabet = "ab cdé фы漢字🙂\u0301"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(80)]
    texts += [None, "", "x" * width, "y" * (width + 1)]
    a = [rng.choice(texts) for _ in range(600)]
    b = [rng.choice(texts) for _ in range(600)]
    got = jaccard_arrow(pa.array(a), pa.array(b), width)
    expected = [true_jaccard(x or "", y or "", width) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # Sorted by the first text with `repeat` marking repeats: the same values.
    order = sorted(range(len(a)), key=lambda i: (a[i] or "", i))
    a2, b2 = [a[i] for i in order], [b[i] for i in order]
    repeat = np.array([i > 0 and a2[i] == a2[i - 1] for i in range(len(a2))])
    again = jaccard_arrow(pa.array(a2), pa.array(b2), width, repeat)
    np.testing.assert_allclose(again, [expected[i] for i in order], rtol=0, atol=1e-12)


def test_jaccard_of_pairs_builds_each_set_once_and_agrees() -> None:
    rng = random.Random(9)
    texts = ["".join(rng.choice("ab cd漢🙂") for _ in range(rng.randint(0, 40))) for _ in range(50)]
    texts += [None, ""]
    left = np.array([rng.randrange(len(texts)) for _ in range(400)])
    right = np.array([rng.randrange(len(texts)) for _ in range(400)])
    got = jaccard_of_pairs(pa.array(texts), left, right, 3)
    expected = [
        true_jaccard(texts[a] or "", texts[b] or "", 3) for a, b in zip(left, right, strict=True)
    ]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_jaccard_kernel_on_sliced_and_large_string_arrays() -> None:
    a = pa.array(["zzz", "hello world", "hello world!"], pa.large_string()).slice(1)
    b = pa.array(["hello world", "hello there"]).slice(0)
    got = jaccard_arrow(a, b, 3)
    assert got[0] == 1.0
    assert got[1] == pytest.approx(true_jaccard("hello world!", "hello there", 3))
    with pytest.raises(ValueError, match="differ in length"):
        jaccard_arrow(a, b.slice(1), 3)


def test_verify_bands() -> None:
    bands, rows = verify_bands(0.8, 260)
    assert (bands, rows) == (29, 8)
    assert 1 - (1 - 0.8**rows) ** bands >= 0.995
    # One band fewer misses the target: the fewest bands are taken.
    fewer = 260 // (bands - 1)
    assert 1 - (1 - 0.8**fewer) ** (bands - 1) < 0.995
    with pytest.raises(ConfigError, match="threshold"):
        verify_bands(1.2, 260)


def test_verify_config_errors() -> None:
    with pytest.raises(ConfigError, match="verify must be one of"):
        FuzzyConfig(verify="exact")
    with pytest.raises(ConfigError, match="threshold must be a number in"):
        FuzzyConfig(verify="jaccard", threshold=1.0)


# ------------------------------------------------------------------------------ Spark
def _corpus() -> list[tuple[int, str]]:
    """Groups of a base text and edits of it: 1-2% of the words changed (Jaccard about 0.9)
    and about 8% changed (Jaccard about 0.6-0.7, below the threshold)."""
    rng = random.Random(11)
    words = [f"w{rng.randrange(10**6)}" for _ in range(4000)]
    rows = []
    for g in range(8):
        base = [rng.choice(words) for _ in range(220)]

        def edit(fraction: float, base: list[str] = base) -> str:
            out = list(base)
            for i in rng.sample(range(len(out)), int(len(out) * fraction)):
                out[i] = rng.choice(words)
            return " ".join(out)

        rows += [(g * 10, " ".join(base)), (g * 10 + 1, edit(0.015)), (g * 10 + 2, edit(0.08))]
    return rows


@pytest.fixture(scope="module")
def corpus(spark):
    rows = _corpus()
    return rows, spark.createDataFrame(rows, "id long, text string")


@pytest.fixture(scope="module")
def verified(spark, corpus):
    from sparkdedup.fuzzy.workflow import run_fuzzy

    _, df = corpus
    config = FuzzyConfig(id_col="id", device="cpu", verify="jaccard")
    with StageRunner(spark) as runner:
        result = run_fuzzy(df, config, runner)
        pairs = {r["id"]: r["kept_id"] for r in result.duplicates.collect()}
        scores = {r["id"]: r["jaccard"] for r in result.kept_jaccard.collect()}
        stats = dict(result.stats)
    return pairs, scores, stats


def test_verified_mode_keeps_only_pairs_above_the_threshold(corpus, verified) -> None:
    rows, _ = corpus
    text = dict(rows)
    pairs, scores, stats = verified
    similar = {
        (a, b) for a in text for b in text if a < b and true_jaccard(text[a], text[b]) >= 0.8
    }
    below = [i for i in text if i % 10 == 2]
    assert all(true_jaccard(text[i], text[i - 2]) < 0.8 for i in below)  # the corpus is as meant
    # Every pair at or above 0.8 is grouped; nothing below it is removed.
    assert set(pairs.items()) == {(b, a) for a, b in similar}
    assert not set(below) & set(pairs)
    # The LSH offered pairs below the threshold and the check turned them down.
    assert stats["rejected_edges"] > 0
    assert stats["verified_edges"] + stats["rejected_edges"] == stats["edges"]
    assert stats["lsh"] == {"num_bands": 29, "minhashes_per_band": 8}
    # Each removed document's exact Jaccard to its kept document (a verified edge joins each
    # pair here: the groups are pairs).
    assert set(scores) == set(pairs)
    for doc, kept in pairs.items():
        assert scores[doc] == pytest.approx(true_jaccard(text[doc], text[kept]), abs=1e-12)


def test_verified_mode_with_derived_ids_removes_the_same_rows(spark, corpus, verified) -> None:
    import sparkdedup

    rows, df = corpus
    texts = df.select("text")
    dups = sparkdedup.fuzzy_duplicates(texts, device="cpu", verify="jaccard")
    kept = [r["text"] for r in sparkdedup.remove_duplicates(texts, dups).collect()]
    text = dict(rows)
    # The same groups: one of each grouped pair is kept (derived ids rank rows by content, so
    # which one may differ), every other row is kept.
    assert dups.count() == len(verified[0])
    for removed, kept_id in verified[0].items():
        assert (text[removed] in kept) != (text[kept_id] in kept)
    grouped = set(verified[0]) | set(verified[0].values())
    assert all(t in kept for i, t in rows if i not in grouped)


def test_cli_verify_stats_and_group_jaccard(spark, corpus, tmp_path, capsys) -> None:
    rows, df = corpus
    df.write.parquet(str(tmp_path / "in"))
    out = tmp_path / "out"
    argv = ["fuzzy", "--input", str(tmp_path / "in"), "--input-format", "parquet"]
    argv += ["--id-col", "id", "--output", str(out), "--verify", "jaccard", "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["candidate_edges"] == stats["verified_edges"] + stats["rejected_edges"]
    assert stats["rejected_edges"] > 0 and stats["config"]["verify"] == "jaccard"
    groups = spark.read.parquet(str(out / "groups")).collect()
    text = dict(rows)
    for row in groups:
        if row["kept"]:
            assert row["jaccard"] == 1.0
        else:
            assert row["jaccard"] == pytest.approx(
                true_jaccard(text[row["id"]], text[row["group"]])
            )
            assert row["jaccard"] >= 0.8


@pytest.mark.slow  # 30-80 s in make test, which must stay under 25 minutes
def test_verified_mode_with_derived_ids_whatever_the_partitioning(spark, corpus, verified):
    """Derived ids key the texts the check reads again by input position, over every column,
    as the scan does: a round-robin repartition of the input (which sorts the rows it is
    given before dealing them out) places the same rows at the same positions in both reads,
    so the verified removals are those of any other partitioning."""
    import sparkdedup

    _, df = corpus
    base = df.withColumn("source", F.concat(F.lit("s"), F.col("id").cast("string")))
    base = base.localCheckpoint()
    # (Those of user ids, and of derived ids on one partition, are `verified`'s pairs.)
    dups = sparkdedup.fuzzy_duplicates(base.repartition(3), device="cpu", verify="jaccard")
    assert dups.count() == len(verified[0])


@pytest.mark.parametrize("source", ["datagen", "machine files"])
def test_verified_removals_against_exact_jaccard(spark, tmp_path, source: str) -> None:
    """Removal at exact Jaccard 0.8 (`benchmarks.verify_quality.truth_removed`, pairs checked
    exhaustively among sensitive-LSH candidates) against the verified mode's removals, on a
    planted corpus and on a corpus built from this machine's files as a user would."""
    import sparkdedup
    from sparkdedup.datagen import generate_corpus

    from benchmarks.real_corpus import build
    from benchmarks.verify_quality import _texts, score, truth_removed

    if source == "datagen":
        docs, _ = generate_corpus(500, seed=3)
        ids, texts = docs["id"].to_numpy(), docs["text"].tolist()
    else:
        build(str(tmp_path / "real.jsonl"), max_docs=400)
        ids, texts = _texts(str(tmp_path / "real.jsonl"))
    truth = truth_removed(ids, texts)["removed"]
    assert len(truth) >= 20, "the corpus should hold near-duplicates to find"
    df = spark.createDataFrame(
        [(int(i), t) for i, t in zip(ids, texts, strict=True)], "id long, text string"
    )
    found = sparkdedup.fuzzy_duplicates(df, id_col="id", device="cpu", verify="jaccard")
    quality = score({r["id"] for r in found.collect()}, truth)
    assert quality["precision"] == 1.0, quality  # every removal is backed by exact Jaccard
    assert quality["f1"] >= 0.98, quality


def _copies_and_variants() -> list[tuple[int, str]]:
    """Clusters of a text A, two exact copies of it (the first in the input with the larger
    id) and variants of A (Jaccard about 0.82 to A, about 0.67 to each other): which copy of A
    carries band keys, and so which document anchors a bucket, follows the Arrow batches."""
    rng = random.Random(7)
    vocab = [
        "".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 9))) for _ in range(9000)
    ]
    rows, next_id = [], 1
    for c in range(30):
        base = [rng.choice(vocab) for _ in range(300)]
        variants = []
        for _ in range(6):
            words = list(base)
            for p in rng.sample(range(300), 6):
                words[p] = rng.choice(vocab)
            variants.append((next_id + 1 + len(variants), " ".join(words)))
        rows += [(10**6 + c, " ".join(base)), (next_id, " ".join(base)), *variants]
        next_id += 1 + len(variants)
    return rows


@pytest.mark.slow  # 30-80 s in make test, which must stay under 25 minutes
@pytest.mark.parametrize("ids", ["user", "derived"])
def test_verified_mode_is_the_same_whatever_the_arrow_batches(spark, ids: str) -> None:
    """The verified mode compares each bucket's anchor with its members only, so the anchor
    decides what is removed: it is chosen by text, not by which rows of a text carry band keys
    (the first of each text in an Arrow batch) or their ids. The removed documents and each
    one's Jaccard to its kept document are the same with one row a batch as with all rows in
    one batch."""
    from sparkdedup.fuzzy.workflow import run_fuzzy

    rows = _copies_and_variants()
    df = spark.createDataFrame(rows, "id long, text string").coalesce(1)
    if ids == "derived":
        df = df.select("text")
    config = FuzzyConfig(id_col="id" if ids == "user" else None, device="cpu", verify="jaccard")
    seen = []
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    try:
        for per_batch in ("10000", "1"):
            spark.conf.set(key, per_batch)
            with StageRunner(spark) as runner:
                result = run_fuzzy(df, config, runner)
                removed = {r["id"]: r["kept_id"] for r in result.duplicates.collect()}
                scores = {r["id"]: r["jaccard"] for r in result.kept_jaccard.collect()}
            seen.append((removed, scores))
    finally:
        spark.conf.set(key, before)
    (removed, scores), (removed_1, scores_1) = seen
    assert len(removed) > 60  # the planted variants and copies are found
    assert removed == removed_1
    assert scores == pytest.approx(scores_1)
    assert set(scores) == set(removed) and all(s is None or s > 0.5 for s in scores.values())
