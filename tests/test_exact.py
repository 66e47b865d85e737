"""Exact dedup, text normalisation, lsh_params and the group reports: Spark-free checks first,
then the workflow and the CLI on hand-made corpora with known groups (Spark local[2])."""

from __future__ import annotations

import json
import sys

import pyarrow as pa
import pytest
import sparkdedup
from pyspark.sql import functions as F
from sparkdedup import ExactConfig, FuzzyConfig
from sparkdedup.cli import main
from sparkdedup.errors import ConfigError, SchemaError
from sparkdedup.kernels.textnorm import normalize_arrow, normalize_text
from sparkdedup.tuning import lsh_params


# ------------------------------------------------------------------------------ no Spark
@pytest.mark.parametrize(
    ("text", "mode", "expected"),
    [
        ("  a \t\n b  ", "none", "  a \t\n b  "),
        ("  a \t\n b  ", "whitespace", "a b"),
        # CJK (ideographic) space, no-break space, line and paragraph separators, NEL.
        (
            "東京\u3000大阪\u00a0京都\u2028奈良\u2029神戸\x85札幌",
            "whitespace",
            "東京 大阪 京都 奈良 神戸 札幌",
        ),
        # Zero-width space and BOM are not whitespace: they stay.
        ("a\u200bb\ufeffc", "whitespace", "a\u200bb\ufeffc"),
        ("Ärger  İstanbul ΣΟΦΟΣ", "lower", "ärger istanbul σοφοσ"),
        # Full-width forms and ligatures fold under NFKC only.
        ("ＡＢＣ　ｄｅｆ ﬁle", "lower", "ａｂｃ ｄｅｆ ﬁle"),
        ("ＡＢＣ　ｄｅｆ ﬁle", "nfkc", "abc def file"),
        # A combining mark composes with its base under NFKC; without it the bytes differ.
        ("Cafe\u0301", "lower", "cafe\u0301"),
        ("Cafe\u0301", "nfkc", "caf\u00e9"),
        ("", "nfkc", ""),
    ],
)
def test_normalize_text(text: str, mode: str, expected: str) -> None:
    assert normalize_text(text, mode) == expected


def test_whitespace_is_exactly_str_isspace() -> None:
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    out = normalize_arrow(pa.array([f"a{c}b" for c in chars]), "whitespace").to_pylist()
    joined = [c for c, o in zip(chars, out, strict=True) if o == "a b"]
    assert joined == [c for c in chars if c.isspace()]
    changed = [c for c, o in zip(chars, out, strict=True) if o not in ("a b", f"a{c}b")]
    assert changed == []  # every other character is left as it is


def test_normalize_keeps_nulls_and_rejects_unknown_modes() -> None:
    out = normalize_arrow(pa.array(["A  B", None]), "lower")
    assert out.to_pylist() == ["a b", None]
    with pytest.raises(ConfigError, match="normalize must be one of"):
        normalize_text("x", "upper")
    with pytest.raises(ConfigError, match="normalize"):
        ExactConfig(normalize="NFKC")
    with pytest.raises(ConfigError, match="normalize"):
        FuzzyConfig(normalize="lowercase")


def test_normalize_reads_invalid_utf8_as_replacement_characters() -> None:
    """Spark strings can hold any bytes; pyarrow's Unicode functions refuse invalid UTF-8, so
    it is read as Python's decode with errors="replace" does, in plain and large strings."""
    raw = [b"Caf\xe9  AU\xff\xfeLAIT", None, b"plain  Text"]
    want = [b.decode("utf-8", "replace").lower().replace("  ", " ") if b else None for b in raw]
    for binary, string in ((pa.binary(), pa.string()), (pa.large_binary(), pa.large_string())):
        texts = pa.array(raw, binary).view(string)
        assert normalize_arrow(texts, "lower").to_pylist() == want
        chunked = pa.chunked_array([texts, pa.array(["A  b"], string)])
        assert normalize_arrow(chunked, "nfkc").to_pylist() == [*want, "a b"]


def test_fuzzy_and_exact_normalise_invalid_utf8(spark) -> None:
    words = ("caf\u00e9 au lait with some extra words " * 3).encode()
    rows = [(1, bytearray(words + b"\xff")), (2, bytearray(words.upper() + b"\xfe"))]
    rows.append((3, bytearray(b"plain ascii " * 5)))
    df = spark.createDataFrame(rows, "id long, raw binary")
    df = df.select("id", F.col("raw").cast("string").alias("text"))
    exact = sparkdedup.exact_duplicates(df, id_col="id", normalize="lower")
    assert _pairs(exact) == {2: 1}  # both end in one U+FFFD once lowered
    fuzzy = sparkdedup.fuzzy_duplicates(df, id_col="id", device="cpu", normalize="nfkc")
    assert _pairs(fuzzy) == {2: 1}


def test_lsh_params_agrees_with_datasketch() -> None:
    # The dev extra has datasketch; the pyspark 3.5 venv runs this module without it.
    lsh = pytest.importorskip("datasketch.lsh", reason="datasketch is in the dev extra only")
    _optimal_param = lsh._optimal_param

    for num_hashes in (32, 128, 260):
        for threshold in (0.5, 0.7, 0.8, 0.9):
            for weight in (0.3, 0.5):
                expected = _optimal_param(threshold, num_hashes, weight, 1 - weight)
                assert lsh_params(threshold, num_hashes, weight) == expected
    bands, rows = lsh_params(0.8, 260)
    assert bands * rows <= 260
    # A higher threshold takes longer bands (a steeper S-curve further right).
    assert lsh_params(0.9, 260)[1] > lsh_params(0.5, 260)[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0,), "threshold must be in"),
        ((1.0,), "threshold must be in"),
        (("0.8",), "threshold must be a number"),
        ((0.8, 0), "num_hashes must be >= 1"),
        ((0.8, 260, 1.5), "fp_weight must be in"),
    ],
)
def test_lsh_params_errors(args: tuple, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        lsh_params(*args)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("id_col", "id_col must be a non-empty column name or None, got ''"),
        ("against", "against must be a non-empty path or None, got ''"),
        ("checkpoint_dir", "checkpoint_dir must be a non-empty path or None, got ''"),
    ],
)
def test_fuzzy_config_names_what_an_empty_name_should_be(field: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FuzzyConfig(**{field: ""})


def test_cli_lsh_threshold_sets_the_bands(capsys: pytest.CaptureFixture) -> None:
    argv = ["fuzzy", "--input", "x", "--input-format", "parquet", "--output", "o", "--explain"]
    assert main([*argv, "--lsh-threshold", "0.8"]) == 0
    bands, rows = lsh_params(0.8, 260)
    assert f"num_bands={bands}, " in capsys.readouterr().out
    assert main([*argv, "--lsh-threshold", "1.5"]) == 2
    assert "--lsh-threshold: threshold must be in (0, 1)" in capsys.readouterr().err


def test_cli_exact_explain(capsys: pytest.CaptureFixture) -> None:
    argv = ["exact", "--input", "x", "--input-format", "jsonl", "--output", "o", "--explain"]
    assert main([*argv, "--normalize", "nfkc"]) == 0
    out = capsys.readouterr().out
    assert "hashes" in out and "normalised (nfkc)" in out and "normalize='nfkc'" in out
    with pytest.raises(SystemExit):
        main([*argv, "--device", "gpu"])  # exact has no kernels to place


# ------------------------------------------------------------------------------ Spark
# Known groups: {0, 3, 7} identical; {1, 5} identical; the rest differ only by case or
# whitespace (grouped under lower / whitespace), or by a full-width form (nfkc), or not at all.
TEXTS = {
    0: "The quick brown fox",
    1: "jumps over the lazy dog",
    2: "The  quick brown fox ",  # whitespace
    3: "The quick brown fox",
    4: "the quick brown fox",  # lower
    5: "jumps over the lazy dog",
    6: "Ｔhe quick brown fox",  # nfkc (full-width T)
    7: "The quick brown fox",
    8: "something else entirely",
    9: None,  # never grouped
    10: "",  # never grouped
    11: "",
}
EXPECTED = {
    "none": {3: 0, 7: 0, 5: 1},
    "whitespace": {2: 0, 3: 0, 7: 0, 5: 1},
    "lower": {2: 0, 3: 0, 4: 0, 7: 0, 5: 1},
    "nfkc": {2: 0, 3: 0, 4: 0, 6: 0, 7: 0, 5: 1},
}


@pytest.fixture(scope="module")
def docs(spark):
    rows = [(i, t, float(i % 4)) for i, t in TEXTS.items()]
    return spark.createDataFrame(rows, "id long, text string, q double")


def _pairs(df) -> dict:
    return {r["id"]: r["kept_id"] for r in df.collect()}


@pytest.mark.parametrize("mode", ["none", "whitespace", "lower", "nfkc"])
def test_exact_groups_by_normalised_text(docs, mode: str) -> None:
    found = _pairs(sparkdedup.exact_duplicates(docs, id_col="id", normalize=mode))
    assert found == EXPECTED[mode]


def test_exact_normalisation_runs_in_arrow_batches_bounded_by_bytes(docs, stage_confs) -> None:
    """The scan normalises texts in Python workers: its Arrow batches are bounded by bytes
    (`sizing.arrow_batch_conf`), as the fuzzy scan's are, not only by rows."""
    from sparkdedup.sizing import arrow_batch_conf

    found = _pairs(sparkdedup.exact_duplicates(docs, id_col="id", normalize="whitespace"))
    assert found == EXPECTED["whitespace"]
    assert stage_confs["hashes"] == arrow_batch_conf(docs.sparkSession) != {}


def test_exact_keep_rule_priority_and_partitioning(docs) -> None:
    # Priority q = id % 4: in {0, 3, 7} the largest is 3 (q=3) and 7 (q=3), the tie to id 3.
    found = _pairs(sparkdedup.exact_duplicates(docs, id_col="id", priority_col="q"))
    assert found == {0: 3, 7: 3, 5: 1}
    low = _pairs(
        sparkdedup.exact_duplicates(docs, id_col="id", priority_col="q", priority_ascending=True)
    )
    assert low == {3: 0, 7: 0, 5: 1}
    spread = _pairs(sparkdedup.exact_duplicates(docs.repartition(5), id_col="id"))
    assert spread == EXPECTED["none"]


def test_exact_nan_priority_ranks_last_like_null(docs) -> None:
    """A NaN priority (a score that failed) ranks last, as a null does, in either direction;
    Spark alone would order it above every number and keep it."""
    nan = float("nan")
    q = {3: nan, 1: None}  # in {0, 3, 7} q is 0, NaN, 3; in {1, 5}, null and 1
    scored = docs.withColumn(
        "q",
        F.when(F.col("id") == 3, F.lit(nan))
        .when(F.col("id") == 1, F.lit(None).cast("double"))
        .otherwise(F.col("q")),
    )
    assert {r["id"]: r["q"] for r in scored.where(F.col("id").isin(*q)).collect()} == {
        1: None,
        3: pytest.approx(nan, nan_ok=True),
    }
    high = _pairs(sparkdedup.exact_duplicates(scored, id_col="id", priority_col="q"))
    assert high == {0: 7, 3: 7, 1: 5}
    low = _pairs(
        sparkdedup.exact_duplicates(scored, id_col="id", priority_col="q", priority_ascending=True)
    )
    assert low == {3: 0, 7: 0, 1: 5}
    # Only missing values in a group: the smallest id, as with no priority.
    missing = scored.withColumn(
        "q", F.when(F.col("id").isin(0, 7), F.lit(nan)).otherwise(F.col("q"))
    )
    assert _pairs(sparkdedup.exact_duplicates(missing, id_col="id", priority_col="q")) == {
        3: 0,
        7: 0,
        1: 5,
    }


def test_exact_with_derived_ids_removes_the_same_rows(docs) -> None:
    rows = docs.select("text", "q")
    dups = sparkdedup.exact_duplicates(rows, normalize="lower")
    kept = sparkdedup.remove_duplicates(rows, dups)
    assert dups.count() == len(EXPECTED["lower"])
    assert kept.count() + dups.count() == len(TEXTS)
    left = sorted((r["text"] or "") for r in kept.collect())
    expected = sorted((TEXTS[i] or "") for i in TEXTS if i not in EXPECTED["lower"])
    assert left == expected
    # The same rows in another order and partitioning give the same derived ids.
    again = sparkdedup.exact_duplicates(rows.orderBy("q").repartition(3), normalize="lower")
    assert sorted(map(tuple, dups.collect())) == sorted(map(tuple, again.collect()))


def test_exact_input_errors(docs) -> None:
    with pytest.raises(SchemaError, match="nope"):
        sparkdedup.exact_duplicates(docs, text_col="nope")
    with pytest.raises(SchemaError, match="'q'"):
        sparkdedup.exact_duplicates(docs.withColumn("id", docs["q"]), id_col="id", text_col="q")


def test_fuzzy_normalize_groups_case_variants(spark) -> None:
    words = " ".join(f"word{j}" for j in range(60))
    rows = [(0, words), (1, words.upper()), (2, words.replace(" ", "   ")), (3, "unrelated " * 20)]
    df = spark.createDataFrame(rows, "id long, text string")
    assert _pairs(sparkdedup.fuzzy_duplicates(df, id_col="id", device="cpu")) == {}
    lowered = sparkdedup.fuzzy_duplicates(df, id_col="id", device="cpu", normalize="lower")
    assert _pairs(lowered) == {1: 0, 2: 0}


def test_cli_exact_outputs_and_group_report(spark, tmp_path, capsys, monkeypatch) -> None:
    from pyspark.sql.readwriter import DataFrameReader

    lines = [json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in TEXTS.items()]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    read = []
    parquet = DataFrameReader.parquet

    def spy(self, *paths, **options):  # noqa: ANN001, ANN202
        read.extend(str(p) for p in paths)
        return parquet(self, *paths, **options)

    monkeypatch.setattr(DataFrameReader, "parquet", spy)
    argv = ["exact", "--input", str(source), "--input-format", "jsonl", "--id-col", "id"]
    code = main([*argv, "--output", str(out), "--normalize", "lower", "--master", "local[2]"])
    assert code == 0, capsys.readouterr().err
    # The size histogram is observed on the write of groups/, which is never read back.
    assert any(p.endswith("duplicates") for p in read) and not any("groups" in p for p in read)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["removed_docs"] == len(EXPECTED["lower"]) and stats["input_docs"] == len(TEXTS)
    assert stats["group_sizes"] == {"groups": 2, "largest": 5, "sizes": {"2": 1, "5-8": 1}}
    # The count of groups comes from that report, and agrees with the API's distinct count.
    assert stats["groups"] == 2 and stats["docs_in_groups"] == 2 + stats["removed_docs"]
    assert stats["normalize"] == "lower" and stats["command"] == "exact"
    groups = spark.read.parquet(str(out / "groups")).collect()
    members = {(r["group"], r["id"], r["kept"], r["size"]) for r in groups}
    assert members == {(0, i, i == 0, 5) for i in (0, 2, 3, 4, 7)} | {
        (1, 1, True, 2),
        (1, 5, False, 2),
    }
    # The deduplicated output is the kept input lines, byte for byte.
    kept_lines = sorted(
        line
        for f in (out / "deduplicated").glob("part-*")
        for line in f.read_text("utf-8").splitlines()
    )
    assert kept_lines == sorted(lines[i] for i in range(len(lines)) if i not in EXPECTED["lower"])
    assert sys.getdefaultencoding() == "utf-8"


def test_group_size_buckets_are_exact_at_powers_of_two(spark) -> None:
    """The size histogram puts a group of n members in the bucket (2^(k-1), 2^k], also where a
    float log2 is off (log2 of 2^29 comes out above 29)."""
    from sparkdedup.reports import size_histogram

    sizes = [2, 3, 4, 5, 8, 9, 2**29, 2**29 + 1, 2**31, 2**47, 2**49 + 1]
    rows = [(g, g, True, n) for g, n in enumerate(sizes)] + [(0, 100, False, 2)]
    groups = spark.createDataFrame(rows, "group long, id long, kept boolean, size long")
    assert size_histogram(groups) == {
        "groups": len(sizes),
        "largest": 2**49 + 1,
        "sizes": {
            "2": 1,
            "3-4": 2,
            "5-8": 2,
            "9-16": 1,
            f"{2**28 + 1}-{2**29}": 1,
            f"{2**29 + 1}-{2**30}": 1,
            f"{2**30 + 1}-{2**31}": 1,
            f"{2**46 + 1}-{2**47}": 1,
            f"{2**49 + 1}-{2**50}": 1,
        },
    }
