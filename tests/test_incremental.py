"""Incremental fuzzy dedup (`sparkdedup.fuzzy.index`): an index of a deduplicated corpus, runs
against it, month-by-month updates, and the errors. The removals of a run against an index are
checked against their definition computed from a full run over the indexed documents plus the
new ones (Spark local[2], planted corpora)."""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import sparkdedup
from pyspark.sql import functions as F
from sparkdedup.cli import main
from sparkdedup.config import FuzzyConfig
from sparkdedup.datagen import generate_corpus
from sparkdedup.errors import ConfigError, InputError, SchemaError
from sparkdedup.fuzzy import index as index_module
from sparkdedup.fuzzy.index import (
    CLAIM_STALE_SECONDS,
    FuzzyIndex,
    IndexWriter,
    against_bands,
    against_edges,
    against_shuffle_keys,
    band_col,
    bloom_bits,
    bloom_filter,
    bloom_max_bits,
    bloom_pass_rate,
    check_disjoint,
)
from sparkdedup.kernels.bloom import contains as bloom_contains
from sparkdedup.ml import FuzzyDeduplicator

CFG = {"id_col": "id", "device": "cpu"}
N_OLD = 700  # ids below this are the corpus indexed first, the rest arrive later


@pytest.fixture(scope="module")
def corpus(spark):
    """A planted corpus whose clusters straddle the split: ``old`` and ``new`` rows."""
    docs, _ = generate_corpus(1100, duplicate_fraction=0.35, seed=14)
    df = spark.createDataFrame(docs[["id", "text"]])
    return df.where(F.col("id") < N_OLD), df.where(F.col("id") >= N_OLD)


def _pairs(df) -> dict:
    return {r["id"]: r["kept_id"] for r in df.collect()}


def _expected(spark, indexed, new) -> set:
    """The new documents to remove by definition: in the groups of a full run over the indexed
    documents and the new ones, every new document of a group holding an indexed one, and in
    groups of new documents only, every one the keep rule does not keep."""
    full = _pairs(sparkdedup.fuzzy_duplicates(indexed.unionByName(new), **CFG))
    groups: dict = {}
    for doc, kept in full.items():
        groups.setdefault(kept, {kept}).add(doc)
    old_ids = {r["id"] for r in indexed.select("id").collect()}
    removed = set()
    for members in groups.values():
        if members & old_ids:
            removed |= members - old_ids
        else:
            removed |= {d for d in members if d in full}
    return removed


def test_against_removes_what_a_full_run_defines(spark, corpus, tmp_path, caplog) -> None:
    old, new = corpus
    index = str(tmp_path / "index")
    old_dups = sparkdedup.fuzzy_duplicates(old, index_out=index, **CFG)
    manifest = json.loads((tmp_path / "index" / "_sparkdedup_index.json").read_text())
    kept_old = old.join(old_dups.select("id"), on="id", how="left_anti")
    assert manifest["documents"] == kept_old.count() == old.count() - old_dups.count()
    assert manifest["params"]["num_bands"] == 20 and manifest["id_type"] == "bigint"
    assert len(manifest["segments"]) == 1

    # The band keys, new and indexed, are shuffled once: the bucket sizes and the join to them
    # read the same shuffle (the index's own keys stand in for new ones here).
    opened = FuzzyIndex.open(spark, index)
    stand_in = opened.table(["id", *[band_col(k) for k in range(20)]])
    stand_in = stand_in.withColumn("id", F.col("id") + 10**6)
    edges = against_edges(stand_in, opened, list(range(20)), 4, keys=20 * manifest["documents"])
    assert len(edges.collect()) > 0  # (collect: the plan inspected below is the one run)
    final_plan = edges._jdf.queryExecution().executedPlan().toString().split("Initial Plan")[0]
    assert "ReusedExchange" in final_plan, final_plan

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sparkdedup"):
        got = _pairs(sparkdedup.fuzzy_duplicates(new, against=index, **CFG))
    new_ids = {r["id"] for r in new.select("id").collect()}
    # The documents in groups are input documents: not the indexed ones keeping groups.
    (stats,) = [r.args for r in caplog.records if r.msg == "sparkdedup fuzzy: %s"]
    keepers = set(got.values())
    assert stats["docs_in_groups"] == len(got) + len(keepers & new_ids) < len(got) + len(keepers)
    indexed_ids = {r["id"] for r in kept_old.select("id").collect()}
    assert set(got) <= new_ids  # only new documents are ever removed
    expected = _expected(spark, kept_old, new)
    assert set(got) == expected
    # The planted clusters that straddle the split make both kinds of removal happen.
    by_index = {d for d, k in got.items() if k in indexed_ids}
    assert by_index and set(got) - by_index
    assert all(k in new_ids for d, k in got.items() if d not in by_index)
    # The same removals whatever the partitioning, here from the pyspark.ml wrapper.
    dedup = FuzzyDeduplicator(idCol="id", against=index, device="cpu")
    kept = {r["id"] for r in dedup.transform(new.repartition(7)).select("id").collect()}
    assert kept == new_ids - set(got)


def test_bloom_filter_holds_every_key_and_few_others(spark) -> None:
    rng = np.random.default_rng(2)
    keys = rng.integers(-(2**63), 2**63 - 1, size=(3000, 2), dtype=np.int64)
    rows = [(int(a), None if i % 10 == 0 else int(b)) for i, (a, b) in enumerate(keys)]
    table = spark.createDataFrame(rows, "b0 bigint, b1 bigint").repartition(3)
    bits = 1 << 16
    bitmap = bloom_filter(table, ["b0", "b1"], bits)
    assert bitmap.dtype == np.uint64 and bitmap.size == bits // 64

    def passes(values: np.ndarray) -> np.ndarray:
        return bloom_contains(bitmap, values)

    present = np.array([v for row in rows for v in row if v is not None], dtype=np.int64)
    assert passes(present).all()  # no key is ever missed
    set_bits = sum(bin(int(w)).count("1") for w in bitmap)
    assert set_bits <= 2 * present.size  # two probes a key, nulls left out
    others = rng.integers(-(2**63), 2**63 - 1, size=20000, dtype=np.int64)
    expected = (1 - np.exp(-2 * present.size / bits)) ** 2  # about 2.6% at 11.5 bits a key
    assert passes(others).mean() < 1.5 * expected


class _Conf:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)


class _Session:
    def __init__(self, **values: str) -> None:
        self.conf = _Conf(values)


def test_the_filter_fits_a_quarter_of_the_drivers_result_size() -> None:
    """The filter's words (16 bytes each when collected) stay within a quarter of
    spark.driver.maxResultSize; the default 1g and 0 (unlimited) leave the largest filter."""
    cap = "spark.driver.maxResultSize"
    assert bloom_max_bits(_Session()) == 1 << 27
    assert bloom_max_bits(_Session(**{cap: "0"})) == 1 << 27
    assert bloom_max_bits(_Session(**{cap: "4m"})) == 1 << 22  # 65,536 words: 1 MiB
    assert bloom_max_bits(_Session(**{cap: "1m"})) == 1 << 20
    for limit in ("1m", "4m", "64m", "1g"):
        bits = bloom_max_bits(_Session(**{cap: limit}))
        assert bits // 64 * 16 <= int(limit[:-1]) * 1024 ** {"m": 2, "g": 3}[limit[-1]] // 4
    # 2M keys would take 2^25 bits; capped, they get what the driver can take.
    assert bloom_bits(2_000_000) == 1 << 25
    assert bloom_bits(2_000_000, 1 << 22) == 1 << 22
    assert bloom_bits(10, 1 << 22) == bloom_bits(10) == 1 << 16


def test_band_groups_weigh_the_filter_against_reading_the_index_again() -> None:
    """A run against an index splits its bands into more groups only when the index keys kept
    out of the shuffle by smaller filters outweigh reading the index again."""
    cap, cores = "spark.driver.maxResultSize", "spark.default.parallelism"
    # 100k new documents: one filter of 2^25 bits holds their 2M keys (1.4% of the index's
    # keys pass it); 1M against 9.35M indexed: one of 2^27 bits (6.7% pass), still cheaper
    # than reading the index twice.
    assert against_bands(_Session(**{cores: "2"}), 100_000, 935_000, 20, 20) == 20
    assert against_bands(_Session(**{cores: "2"}), 1_000_000, 9_350_000, 20, 20) == 20
    # With a 4m maxResultSize (2^22 bits), one group lets 38% through, two of ten bands 14%:
    # the two were faster, measured (the model's constants).
    assert against_bands(_Session(**{cap: "4m", cores: "2"}), 100_000, 935_000, 20, 20) == 10
    # 10M new against 10^9 indexed, on 1,000 cores: one group's filter would be saturated;
    # four of five bands let 28% through.
    big = against_bands(_Session(**{cores: "1000"}), 10_000_000, 10**9, 20, 20)
    assert big == 5 and 0.25 < bloom_pass_rate(10_000_000 * big, 1 << 27) < 0.3
    # Never larger than the LSH budget's groups; a tiny index never pays for a second read.
    assert against_bands(_Session(**{cores: "1000"}), 10_000_000, 10**9, 20, 4) <= 4
    assert against_bands(_Session(**{cap: "1m"}), 10_000_000, 1_000, 20, 20) == 20
    # The LSH shuffle holds the new keys and the index's that pass: its partitions are sized
    # from both (a 64k maxResultSize leaves a filter of 2^16 bits, which none would pass).
    assert against_shuffle_keys(_Session(), 100_000, 20, 935_000) == 2_000_000 + 236_159  # 1.26%
    tiny = _Session(**{cap: "64k"})
    assert bloom_max_bits(tiny) == 1 << 16
    assert against_shuffle_keys(tiny, 100_000, 20, 935_000) == 2_000_000 + 18_700_000
    # 16 bits a key lets about 1.4% through; a filter of a bit a key, 75%; half a bit, 96%.
    assert 0.013 < bloom_pass_rate(1000, 16_000) < 0.015
    assert 0.74 < bloom_pass_rate(1000, 1000) < 0.76 and bloom_pass_rate(2000, 1000) > 0.96


def test_a_filter_too_small_to_select_is_not_built(spark, corpus, tmp_path, monkeypatch) -> None:
    """A filter that would let too many of the index's keys through (90% by default) is not
    built: the index's keys go to the shuffle unfiltered (no trip through Python), and the
    edges are the same."""
    old, _ = corpus
    index = str(tmp_path / "index")
    sparkdedup.write_index(old, index, **CFG)
    opened = FuzzyIndex.open(spark, index)
    bands = list(range(20))
    # New band keys that are the index's own: every indexed document has edges.
    table = opened.table(["id", *[band_col(k) for k in bands]]).select(
        (F.col("id") + 10**6).alias("id"), *[band_col(k) for k in bands]
    )
    keys = 20 * opened.documents

    def edges() -> tuple[set, str]:
        df = against_edges(table, opened, bands, 4, keys=keys)
        rows = {(r["src"], r["dst"], r["_dedup_new"]) for r in df.collect()}
        return rows, df._jdf.queryExecution().executedPlan().toString()

    filtered, filtered_plan = edges()
    assert filtered and "MapInArrow" in filtered_plan
    # The largest filter the driver may take is now 2^16 bits (4.7 bits a key, 12% passing),
    # and the most that may pass before the filter is dropped 10%.
    monkeypatch.setattr("sparkdedup.fuzzy.index.bloom_max_bits", lambda _spark: 1 << 16)
    monkeypatch.setattr("sparkdedup.fuzzy.index._BLOOM_MAX_PASS", 0.1)
    assert bloom_bits(keys) > 1 << 16 and bloom_pass_rate(keys, 1 << 16) > 0.1
    unfiltered, unfiltered_plan = edges()
    assert unfiltered == filtered
    assert "MapInArrow" not in unfiltered_plan, unfiltered_plan


def test_a_run_against_an_index_in_band_groups(
    spark, corpus, tmp_path, monkeypatch, caplog
) -> None:
    """The workflow takes the bands in the groups `against_bands` chooses (two of ten here),
    one filter and one probe of the index each, and removes the same documents as one group."""
    old, new = corpus
    index = str(tmp_path / "index")
    sparkdedup.write_index(old, index, **CFG)
    whole = _pairs(sparkdedup.fuzzy_duplicates(new, against=index, **CFG))
    assert whole
    chosen = []

    def two_groups(spark, nodes, index_docs, num_bands, per_group) -> int:
        chosen.append((nodes, index_docs, num_bands, per_group))
        return 10

    sized = []

    def shuffle_keys(spark, nodes, bands, index_docs) -> int:
        sized.append((nodes, bands, index_docs))
        return against_shuffle_keys(spark, nodes, bands, index_docs)

    monkeypatch.setattr("sparkdedup.fuzzy.workflow.against_bands", two_groups)
    monkeypatch.setattr("sparkdedup.fuzzy.workflow.against_shuffle_keys", shuffle_keys)
    with caplog.at_level("INFO", logger="sparkdedup"):
        split = _pairs(sparkdedup.fuzzy_duplicates(new, against=index, **CFG))
    assert split == whole
    documents = FuzzyIndex.open(spark, index).documents
    assert chosen and chosen[0][1] == documents and chosen[0][2:] == (20, 20)
    # Each group's shuffle is sized from its new keys and the index's that pass.
    assert sized == [(chosen[0][0], 10, documents)] * 2
    assert any("LSH in 2 group(s) of up to 10 bands" in r.getMessage() for r in caplog.records)


_SMALL_RESULTS = """
import json, sys
import sparkdedup
from pyspark.sql import SparkSession, functions as F
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.driver.maxResultSize", "1m").getOrCreate())
words = F.concat_ws(" ", *[F.concat(F.lit("w"), (F.xxhash64("id", F.lit(k)) % 5000).cast("string"))
                          for k in range(40)])
docs = spark.range(22_000).select("id", words.alias("text"))
old = docs.where("id < 2000")
# New: copies of the first 50 indexed documents (new ids) and 20,000 documents of their own.
new = old.where("id < 50").select((F.col("id") + 100_000).alias("id"), "text").unionByName(
    docs.where("id >= 2000"))
sparkdedup.write_index(old, sys.argv[1], id_col="id", device="cpu")
dups = sparkdedup.fuzzy_duplicates(new, id_col="id", device="cpu", against=sys.argv[1])
print(json.dumps(sorted((r["id"], r["kept_id"]) for r in dups.collect())))
"""


@pytest.mark.slow
def test_a_small_max_result_size_gets_a_smaller_filter(tmp_path) -> None:
    """With spark.driver.maxResultSize=1m, 20,050 new documents (401,000 band keys, a filter of
    2^23 bits whose words come to about 1.6 MiB) take their bands in groups of three, each
    with a filter the driver can collect (2^20 bits), and their copies of indexed documents
    are still found (in a process of its own: the setting is fixed when the session starts)."""
    import subprocess
    import sys

    assert bloom_bits(20_050 * 20) == 1 << 23
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    proc = subprocess.run(
        [sys.executable, "-c", _SMALL_RESULTS, str(tmp_path / "index")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    causes = [line for line in proc.stderr.splitlines() if "Exception:" in line or "Error:" in line]
    assert proc.returncode == 0, "\n".join(causes[:5]) or proc.stderr[-3000:]
    pairs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [p for p in pairs if p[0] >= 100_000] == [[100_000 + i, i] for i in range(50)]


@pytest.mark.slow
def test_month_by_month_appends_segments(spark, corpus, tmp_path) -> None:
    old, new = corpus
    index = tmp_path / "index"
    first = sparkdedup.write_index(old, str(index), **CFG)  # a corpus deduplicated elsewhere
    assert first["documents"] == old.count()
    before = {p: os.path.getmtime(p) for p in (index / "segment=00000").iterdir()}
    dups = _pairs(sparkdedup.fuzzy_duplicates(new, against=str(index), index_out=str(index), **CFG))
    manifest = json.loads((index / "_sparkdedup_index.json").read_text())
    assert [s["name"] for s in manifest["segments"]] == ["segment=00000", "segment=00001"]
    assert manifest["segments"][1]["documents"] == new.count() - len(dups)
    assert manifest["documents"] == old.count() + new.count() - len(dups)
    # The old segment is left as it was: appended to, not rewritten.
    assert {p: os.path.getmtime(p) for p in (index / "segment=00000").iterdir()} == before
    # Next month: copies of documents kept last month go, fresh ones stay.
    kept_new = new.join(spark.createDataFrame([(d,) for d in dups], "id long"), "id", "left_anti")
    copies = kept_new.orderBy("id").limit(5).select((F.col("id") + 10_000).alias("id"), "text")
    fresh = spark.createDataFrame(
        [(20_000 + i, f"an unrelated document number {i} " * 20) for i in range(3)],
        "id long, text string",
    )
    # ... and its index goes elsewhere: a new index of the old documents and the kept new ones.
    elsewhere = tmp_path / "index-march"
    third = _pairs(
        sparkdedup.fuzzy_duplicates(
            copies.unionByName(fresh), against=str(index), index_out=str(elsewhere), **CFG
        )
    )
    assert set(third) == {r["id"] for r in copies.collect()}
    assert set(third.values()) <= {r["id"] for r in kept_new.collect()}
    march = json.loads((elsewhere / "_sparkdedup_index.json").read_text())
    assert march["documents"] == manifest["documents"] + 3 and len(march["segments"]) == 1
    assert json.loads((index / "_sparkdedup_index.json").read_text()) == manifest


def test_a_commit_stopped_between_its_renames_leaves_a_readable_index(
    spark, corpus, tmp_path, monkeypatch
) -> None:
    """The manifest is switched by renames, the old one kept until the new one is in place: a
    run stopped in between leaves the old index readable, and the next run goes on from it;
    replacing an index retires the old segments only once the new manifest lists its own."""
    from sparkdedup import fs

    old, new = corpus
    index = tmp_path / "index"
    first = sparkdedup.write_index(old.limit(40), str(index), **CFG)
    rename = fs.rename

    def stopped(spark_, source, target):  # the new manifest never reaches its place
        if target.endswith("/_sparkdedup_index.json"):
            raise OSError("stopped")
        return rename(spark_, source, target)

    monkeypatch.setattr(fs, "rename", stopped)
    with pytest.raises(OSError, match="stopped"):
        sparkdedup.write_index(new.limit(10), str(index), overwrite=True, **CFG)
    monkeypatch.setattr(fs, "rename", rename)
    assert not (index / "_sparkdedup_index.json").exists()
    assert FuzzyIndex.open(spark, str(index)).manifest == first
    assert FuzzyIndex.open(spark, str(index)).table(["id"]).count() == 40
    # The next run appends to the index as it was, and the previous manifest goes.
    sparkdedup.fuzzy_duplicates(new.limit(5), against=str(index), index_out=str(index), **CFG)
    manifest = json.loads((index / "_sparkdedup_index.json").read_text())
    assert manifest["documents"] == 45 and not (index / "_sparkdedup_index.previous.json").exists()
    assert [s["name"] for s in manifest["segments"]] == ["segment=00000", "segment=00002"]
    assert not (index / "segment=00001").exists()  # the stopped run's, never listed: removed
    # Replaced for good: the new segment is listed, the old ones retired (kept for the runs
    # reading them: `test_replaced_segments_stay_for_the_runs_reading_them`).
    replaced = sparkdedup.write_index(new.limit(10), str(index), overwrite=True, **CFG)
    assert [s["name"] for s in replaced["segments"]] == ["segment=00003"]
    assert [r["name"] for r in replaced["retired"]] == ["segment=00000", "segment=00002"]
    left = sorted(p.name for p in index.iterdir() if not p.name.startswith("."))  # .crc files
    claims = ["_sparkdedup_index_commit-00000002.json", "_sparkdedup_index_commit-00000003.json"]
    old_segments = ["segment=00000", "segment=00002"]
    assert left == ["_sparkdedup_index.json", *claims, *old_segments, "segment=00003"]
    assert FuzzyIndex.open(spark, str(index)).table(["id"]).count() == 10


def test_the_manifest_is_read_while_commits_switch_it(spark, corpus, tmp_path) -> None:
    """Readers of an index (a run against it) while other commits switch its manifest, over
    and over: every read finds a manifest, none fails."""
    import threading

    from sparkdedup.fuzzy.index import read_manifest, switch_manifest

    index = str(tmp_path / "index")
    sparkdedup.write_index(corpus[0].limit(20), index, **CFG)
    text = read_manifest(spark, index)
    done, failures, reads = threading.Event(), [], []

    def commits() -> None:
        while not done.is_set():
            switch_manifest(spark, index, text)

    writer = threading.Thread(target=commits)
    writer.start()
    try:
        deadline = time.time() + 4
        while time.time() < deadline:
            try:
                reads.append(read_manifest(spark, index))
            except Exception as err:  # noqa: BLE001 - each is a failure to report
                failures.append(repr(err)[:200])
    finally:
        done.set()
        writer.join()
    assert not failures, failures[:3]
    assert len(reads) > 100 and all(r == text for r in reads), sum(r is None for r in reads)


def test_a_manifest_being_switched_in_is_waited_for(spark, corpus, tmp_path, monkeypatch) -> None:
    """A read that falls inside a commit's switch (no manifest under either name, the new one
    still under its staging name) waits for the rename, for at most SWITCH_SECONDS; a staging
    file older than that is a stopped commit's, and a path without an index costs no wait."""
    import os
    import threading

    from sparkdedup.fuzzy import index as index_module

    index = tmp_path / "index"
    sparkdedup.write_index(corpus[0].limit(20), str(index), **CFG)
    manifest = index / index_module.MANIFEST
    text = manifest.read_text()
    staged = index / f"{index_module._STAGING}0123456789ab.json"
    manifest.rename(staged)
    timer = threading.Timer(0.5, lambda: staged.rename(manifest))
    timer.start()
    started = time.monotonic()
    try:
        assert index_module.read_manifest(spark, str(index)) == text
    finally:
        timer.join()
    assert time.monotonic() - started >= 0.4

    manifest.rename(staged)
    os.utime(staged)  # written just now, as a commit's is: waited for until it is stale
    monkeypatch.setattr(index_module, "SWITCH_SECONDS", 1)
    started = time.monotonic()
    assert index_module.read_manifest(spark, str(index)) is None
    assert 0.5 < time.monotonic() - started < 5
    manifest.write_text("")  # listed but unreadable: an error once the wait is over
    (index / f".{manifest.name}.crc").unlink()
    with pytest.raises(InputError, match=r"lists _sparkdedup_index\.json but .* for 1 s \(empty"):
        index_module.read_manifest(spark, str(index))
    manifest.unlink()
    started = time.monotonic()
    assert index_module.read_manifest(spark, str(index)) is None
    assert index_module.read_manifest(spark, str(tmp_path / "none")) is None
    assert time.monotonic() - started < 1


def test_an_index_that_cannot_be_written_is_refused_before_the_work(
    spark, corpus, tmp_path, capsys, monkeypatch
) -> None:
    """An --index-out that cannot be written (here under a file) is an error naming it when
    the run starts, not once every stage has run; a writable new path is left as it was (the
    probe's directory removed) when the run is refused for its input."""
    from sparkdedup import stages

    (tmp_path / "a-file").write_text("x")
    blocked = str(tmp_path / "a-file" / "index")
    with pytest.raises(ConfigError, match=r"index_out '.*a-file/index' cannot be written: "):
        sparkdedup.fuzzy_duplicates(corpus[0], index_out=blocked, **CFG)
    src = tmp_path / "in"
    corpus[0].limit(30).write.parquet(str(src))
    ran = []
    monkeypatch.setattr(stages.StageRunner, "run", lambda *a, **k: ran.append(a) or 1 / 0)
    argv = ["fuzzy", "--input", str(src), "--input-format", "parquet", "--id-col", "id"]
    out = tmp_path / "out"
    capsys.readouterr()
    assert main([*argv, "--output", str(out), "--index-out", blocked]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--index-out {blocked!r} cannot be written" in err, err
    assert not ran and not out.exists()
    fresh = tmp_path / "new" / "indexes" / "index"
    assert main([*argv, "--text-col", "body", "--output", str(out), "--index-out", str(fresh)]) == 2
    assert "'body'" in capsys.readouterr().err and not out.exists()
    assert not (tmp_path / "new").exists()  # nor the directories the probe made


def test_against_errors(spark, corpus, tmp_path) -> None:
    old, new = corpus
    index = str(tmp_path / "index")
    sparkdedup.write_index(old.limit(50), index, **CFG)
    with pytest.raises(ConfigError, match=r"num_bands 10 \(index: 20\), seed 1 \(index: 42\)"):
        sparkdedup.fuzzy_duplicates(new, against=index, num_bands=10, seed=1, **CFG)
    clash = old.orderBy("id").limit(3)
    with pytest.raises(InputError, match=r"reuse ids of the index .* e\.g\. 0, 1, 2"):
        sparkdedup.fuzzy_duplicates(new.unionByName(clash), against=index, **CFG)
    # Ids unique by construction: assume_unique_ids skips the check (so it sees no clash).
    sparkdedup.fuzzy_duplicates(
        new.unionByName(clash), against=index, assume_unique_ids=True, **CFG
    )
    with pytest.raises(ConfigError, match="needs user ids"):
        sparkdedup.fuzzy_duplicates(new, against=index, device="cpu")
    with pytest.raises(ConfigError, match="verify='none' only"):
        sparkdedup.fuzzy_duplicates(new, against=index, verify="jaccard", **CFG)
    with pytest.raises(InputError, match="not a sparkdedup index"):
        sparkdedup.fuzzy_duplicates(new, against=str(tmp_path), **CFG)
    # Ids of another type: refused from the schema, before the scan (which would fail here).
    unscannable = F.raise_error(F.lit("the scan ran")).cast("string")
    strings = new.select(F.col("id").cast("string").alias("id"), unscannable.alias("text"))
    with pytest.raises(InputError, match="is string but the index .* holds bigint ids"):
        sparkdedup.fuzzy_duplicates(strings, against=index, **CFG)
    with pytest.raises(ConfigError, match="already holds an index; pass overwrite=True .* append"):
        sparkdedup.write_index(new, index, **CFG)
    with pytest.raises(ConfigError, match="pass overwrite_index=True to replace it, or against="):
        sparkdedup.fuzzy_duplicates(new, index_out=index, **CFG)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not a sparkdedup index; choose a new path"):
        sparkdedup.write_index(new, str(tmp_path / "other"), overwrite=True, **CFG)
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="is a file; give a directory"):
        sparkdedup.write_index(new, str(tmp_path / "other" / "keep.txt"), **CFG)
    with pytest.raises(ConfigError, match="index_out .* is a file; give a directory"):
        sparkdedup.fuzzy_duplicates(new, index_out=str(tmp_path / "other" / "keep.txt"), **CFG)
    # What a first write stopped before its commit left (its staging, a stale claim) is not
    # taken for another directory's files: the next write goes on, and clears them.
    stopped = tmp_path / "stopped"
    (stopped / "_sparkdedup_index_staging-0123456789ab").mkdir(parents=True)
    (stopped / "_sparkdedup_index_commit-00000001.json").write_text('{"claimed": 0}')
    assert sparkdedup.write_index(new.limit(5), str(stopped), **CFG)["documents"] == 5
    assert not [p.name for p in stopped.iterdir() if "staging" in p.name]
    # Replacing with overwrite: test_a_commit_stopped_between_its_renames_leaves_a_readable_index
    # write_index checks its ids as a run with index_out does: unique, and new to the index.
    twice = new.limit(5).unionByName(new.limit(2))
    with pytest.raises(SchemaError, match="id column 'id' is not unique"):
        sparkdedup.write_index(twice, str(tmp_path / "twice"), **CFG)
    assert not (tmp_path / "twice").exists()
    with pytest.raises(InputError, match=r"reuse ids of the index .* e\.g\. 0, 1, 2"):
        sparkdedup.write_index(clash, index, append=True, **CFG)
    assert FuzzyIndex.open(spark, index).documents == 50
    # Duplicates that cannot name the corpus's documents by its id column: refused before
    # any job (derived ids would match other rows, string ids none).
    derived = sparkdedup.exact_duplicates(new.select("text"))
    with pytest.raises(SchemaError, match="derived ids"):
        sparkdedup.write_index(new, str(tmp_path / "d"), duplicates=derived, **CFG)
    strings = sparkdedup.exact_duplicates(
        new.withColumn("sid", F.col("id").cast("string")), id_col="sid"
    )
    with pytest.raises(SchemaError, match="values of the id column 'sid'"):
        sparkdedup.write_index(new, str(tmp_path / "d"), duplicates=strings, **CFG)
    unmarked = spark.createDataFrame([("7",)], "id string")
    with pytest.raises(SchemaError, match="ids are string but id column 'id' is bigint"):
        sparkdedup.write_index(new, str(tmp_path / "d"), duplicates=unmarked, **CFG)
    assert not (tmp_path / "d").exists()


def test_write_index_refuses_ids_of_another_type_before_the_work(spark, corpus, tmp_path) -> None:
    """Adding to an index (`append`) ids of another type than its own is the error a run
    against it gives, from the schema, before the scan: not a failed cast in the check that
    the ids are new to the index (ANSI mode), after a MinHash pass."""
    old, _ = corpus
    index = str(tmp_path / "index")
    sparkdedup.write_index(old.limit(20), index, **CFG)
    unscannable = F.raise_error(F.lit("the scan ran")).cast("string")
    strings = spark.range(2).select(
        F.concat(F.lit("doc-"), F.col("id").cast("string")).alias("id"), unscannable.alias("text")
    )
    with pytest.raises(InputError, match="is string but the index .* holds bigint ids"):
        sparkdedup.write_index(strings, index, append=True, **CFG)
    assert FuzzyIndex.open(spark, index).documents == 20


def test_an_index_of_no_documents_takes_the_id_type_of_its_first_documents(
    spark, corpus, tmp_path
) -> None:
    """An index written from no documents (a first month with no record to type the ids by:
    JSONL types them as strings) fixes no id type: a later month with integer ids runs against
    it and adds to it, and from then on the index's ids are integers."""
    old, _ = corpus
    index = str(tmp_path / "index")
    empty = spark.createDataFrame([], "id string, text string")
    assert sparkdedup.write_index(empty, index, **CFG)["id_type"] == "string"
    month = old.where(F.col("id") < 300)
    got = _pairs(sparkdedup.fuzzy_duplicates(month, against=index, index_out=index, **CFG))
    assert got and got == _pairs(sparkdedup.fuzzy_duplicates(month, **CFG))
    opened = FuzzyIndex.open(spark, index)
    assert opened.manifest["id_type"] == "bigint" and len(opened.manifest["segments"]) == 2
    kept = {r.id for r in month.select("id").collect()} - set(got)
    assert {r.id for r in opened.table(["id"]).collect()} == kept
    strings = month.select(F.concat(F.lit("doc-"), F.col("id")).alias("id"), "text")
    with pytest.raises(InputError, match="is string but the index .* holds bigint ids"):
        sparkdedup.write_index(strings, index, append=True, **CFG)
    # The other way round, written elsewhere: the empty index's rows are copied to the new
    # one, and its ids, of no type, are not the type the new ids are cast to.
    nothing, elsewhere = str(tmp_path / "nothing"), str(tmp_path / "elsewhere")
    sparkdedup.write_index(spark.createDataFrame([], "id long, text string"), nothing, **CFG)
    got = _pairs(sparkdedup.fuzzy_duplicates(strings, against=nothing, index_out=elsewhere, **CFG))
    assert got and got == _pairs(sparkdedup.fuzzy_duplicates(strings, **CFG))
    assert FuzzyIndex.open(spark, elsewhere).manifest["id_type"] == "string"


def test_the_id_check_against_the_index_is_one_job(spark, corpus, tmp_path, stage_tasks) -> None:
    """Looking for new ids the index holds reads all of the index's partitions in one job (a
    `limit` would scan one, then four more, a job each: a search that finds nothing ran them
    all), and still names the ids it finds."""
    old, new = corpus
    index = str(tmp_path / "index")
    sparkdedup.write_index(old.repartition(6), index, **CFG)
    opened = FuzzyIndex.open(spark, index)
    small = {"spark.sql.files.maxPartitionBytes": "2k", "spark.sql.files.openCostInBytes": "0"}
    with stage_tasks("parts", small):
        parts = opened.table(["id"]).rdd.getNumPartitions()
    assert parts > 20  # without the setting: rounds of 1, 4, 20 and the rest, a job each
    with stage_tasks("disjoint", small) as tasks:
        check_disjoint(opened, new.select("id"), "id", broadcast=True)
    assert len(tasks) <= 2 and max(tasks) == parts, tasks  # the new ids' side, one pass
    with stage_tasks("clash", small), pytest.raises(InputError, match=r"e\.g\. 3, 5"):
        check_disjoint(
            opened, old.where(F.col("id").isin(3, 5)).select("id"), "id", broadcast=False
        )


def _indexed(spark, corpus, tmp_path, n: int):
    """The old corpus indexed at ``tmp_path/index``, and `rows(shift)`: index rows of its first
    `n` ids moved by `shift` (new documents to stage)."""
    old, _ = corpus
    index = str(tmp_path / "index")
    sparkdedup.write_index(old, index, **CFG)
    columns = FuzzyIndex.open(spark, index)._schema().replace(" bigint", "").split(", ")

    def rows(shift: int):
        table = FuzzyIndex.open(spark, index).table(columns).where(F.col("id") < n)
        return table.withColumn("id", F.col("id") + shift)

    return index, rows


def test_overlapping_runs_writing_one_index_commit_only_one(spark, corpus, tmp_path) -> None:
    """Two runs adding to one index at the same time: the first to commit adds its segment;
    the other, which deduplicated without that segment's documents, is refused whether it
    had staged its own or not, and leaves nothing behind. The same for two runs writing a
    new index at one path."""
    index, rows = _indexed(spark, corpus, tmp_path, 50)
    config = FuzzyConfig(**CFG)

    def listed(path: str = index) -> list[str]:
        return [s["name"] for s in FuzzyIndex.open(spark, path).manifest["segments"]]

    def leftovers(path: str = index) -> list[str]:
        return [n for n in os.listdir(path) if n.startswith("_sparkdedup_index_staging")]

    # B starts, A commits, then B stages: refused before it writes.
    a = IndexWriter(spark, index, config, append=True)
    b = IndexWriter(spark, index, config, append=True)
    a.stage(rows(10**6))
    a.commit()
    with pytest.raises(InputError, match=r"changed while this run .*segment=00001 added"):
        b.stage(rows(2 * 10**6))
    b.abort()
    assert listed() == ["segment=00000", "segment=00001"] and not leftovers()
    # Both staged, D commits first: C's commit is refused.
    c = IndexWriter(spark, index, config, append=True)
    d = IndexWriter(spark, index, config, append=True)
    c.stage(rows(3 * 10**6))
    d.stage(rows(4 * 10**6))
    d.commit()
    with pytest.raises(InputError, match="deduplicated without those changes"):
        c.commit()
    c.abort()
    assert listed() == ["segment=00000", "segment=00001", "segment=00002"] and not leftovers()
    ids = {r["id"] for r in FuzzyIndex.open(spark, index).table(["id"]).collect()}
    assert 10**6 in ids and 4 * 10**6 in ids and 3 * 10**6 not in ids
    # Two new indexes at one path.
    fresh = str(tmp_path / "fresh")
    e = IndexWriter(spark, fresh, config)
    f = IndexWriter(spark, fresh, config)
    e.stage(rows(5 * 10**6))
    e.commit()
    with pytest.raises(InputError, match="an index was written there"):
        f.stage(rows(6 * 10**6))
    f.abort()
    assert listed(fresh) == ["segment=00000"] and not leftovers(fresh)


def test_commits_at_the_same_moment_commit_only_one(spark, corpus, tmp_path, monkeypatch) -> None:
    """Two runs that pass their last check together and commit at the same moment: the claim
    of the commit's number (a file created only if absent) goes to one, the other is refused
    and its claim attempt leaves the index as the first run made it. A claim left by a run
    stopped mid-commit is refused while young, naming the file, and cleared once stale."""
    from sparkdedup import fs
    from sparkdedup.fuzzy import index as index_module

    index, rows = _indexed(spark, corpus, tmp_path, 20)
    config = FuzzyConfig(**CFG)

    def listed() -> list[str]:
        return [s["name"] for s in FuzzyIndex.open(spark, index).manifest["segments"]]

    a = IndexWriter(spark, index, config, append=True)
    b = IndexWriter(spark, index, config, append=True)
    a.stage(rows(10**6))
    b.stage(rows(2 * 10**6))
    switch = index_module.switch_manifest
    seen = []

    def b_commits_meanwhile(spark_, path, text):  # after A's last check, before its switch
        monkeypatch.setattr(index_module, "switch_manifest", switch)
        with pytest.raises(InputError, match="being committed to by another run") as err:
            b.commit()
        seen.append(str(err.value))
        b.abort()
        switch(spark_, path, text)

    monkeypatch.setattr(index_module, "switch_manifest", b_commits_meanwhile)
    a.commit()
    assert seen and "_sparkdedup_index_commit-00000002.json" in seen[0]
    assert listed() == ["segment=00000", "segment=00001"]
    ids = {r["id"] for r in FuzzyIndex.open(spark, index).table(["id"]).collect()}
    assert 10**6 in ids and 2 * 10**6 not in ids
    assert not [n for n in os.listdir(index) if n.startswith("_sparkdedup_index_staging")]
    # A run stopped after its claim: the next run from the same manifest is refused while
    # the claim is young, and goes on once it is stale.
    claim = os.path.join(index, "_sparkdedup_index_commit-00000003.json")
    with open(claim, "w", encoding="utf-8") as fh:
        json.dump({"claimed": __import__("time").time() - 60}, fh)
    c = IndexWriter(spark, index, config, append=True)
    c.stage(rows(3 * 10**6))
    with pytest.raises(InputError, match=r"claim .*commit-00000003.json' is 6\d s old.*delete"):
        c.commit()
    assert listed() == ["segment=00000", "segment=00001"] and os.path.exists(claim)
    monkeypatch.setattr(index_module, "CLAIM_STALE_SECONDS", 30)
    assert c.commit()["segments"][-1]["name"] == "segment=00002"
    assert listed() == ["segment=00000", "segment=00001", "segment=00002"]
    # The claims of the last two commits stay, the older ones go.
    claims = sorted(n for n in os.listdir(index) if n.startswith("_sparkdedup_index_commit"))
    assert claims == ["_sparkdedup_index_commit-00000002.json", os.path.basename(claim)]
    assert fs.create_new(spark, claim, "{}") is False  # taken: never overwritten
    # A run whose claim another run cleared as stale while it held it does not commit.
    d = IndexWriter(spark, index, config, append=True)
    d.stage(rows(4 * 10**6))
    d.claim()
    mine = os.path.join(index, "_sparkdedup_index_commit-00000004.json")
    with open(mine, "w", encoding="utf-8") as fh:
        json.dump({"claimed": 0, "run": "another"}, fh)
    with pytest.raises(InputError, match="claim on its commit was cleared as stale"):
        d.commit()
    d.abort()
    assert listed() == ["segment=00000", "segment=00001", "segment=00002"]
    assert os.path.exists(mine)  # the other run's claim is left to it
    # The path other file systems (HDFS, ABFS, GCS) take: Hadoop's create without overwrite.
    other = str(tmp_path / "other-claim")
    assert fs._hadoop_create_new(*fs.hadoop_path(spark, other), "mine") is True
    assert fs._hadoop_create_new(*fs.hadoop_path(spark, other), "theirs") is False
    assert fs.read_text(spark, other) == "mine"


def test_cli_run_whose_index_changed_commits_nothing(
    spark, corpus, tmp_path, capsys, monkeypatch
) -> None:
    """A CLI run adding to an index that another run added to meanwhile exits 2 before it
    commits any output, and the index keeps only the other run's segment."""
    old, new = corpus
    index = str(tmp_path / "index")
    sparkdedup.write_index(old, index, **CFG)
    new.limit(30).write.parquet(str(tmp_path / "new"))
    other = new.where(F.col("id") >= N_OLD + 100)
    stage = IndexWriter.stage

    def after_another_run(self, rows):
        monkeypatch.setattr(IndexWriter, "stage", stage)  # the other run's own stage
        sparkdedup.write_index(other, index, append=True, **CFG)
        return stage(self, rows)

    monkeypatch.setattr(IndexWriter, "stage", after_another_run)
    out = tmp_path / "o"
    argv = ["fuzzy", "--input", str(tmp_path / "new"), "--input-format", "parquet", "--id-col"]
    argv += ["id", "--master", "local[2]", "--device", "cpu", "--output", str(out)]
    assert main([*argv, "--against", index, "--index-out", index]) == 2
    err = capsys.readouterr().err
    assert "changed while this run was running (segment=00001 added" in err, err
    assert not (out / "stats.json").exists() and not (out / "duplicates").exists()
    manifest = FuzzyIndex.open(spark, index).manifest
    assert [s["name"] for s in manifest["segments"]] == ["segment=00000", "segment=00001"]


@pytest.mark.slow  # 30-80 s in make test, which must stay under 25 minutes
def test_a_run_stopped_between_its_output_and_its_index_is_caught(
    spark, corpus, tmp_path, capsys, monkeypatch
) -> None:
    """A CLI run stopped after it committed its output, before its documents reached the
    index, leaves its claim. Another run is refused up front: while the claim is young as
    another run's commit in progress, and once it is stale because the output it names was
    released unindexed (clearing it would let later runs keep copies of those documents).
    Running the stopped command again takes its claim over and adds its documents."""
    old, new = corpus
    index = str(tmp_path / "index")
    sparkdedup.write_index(old, index, **CFG)
    new.where(F.col("id") < N_OLD + 30).write.parquet(str(tmp_path / "feb"))
    new.where(F.col("id") >= N_OLD + 30).write.parquet(str(tmp_path / "mar"))
    argv = ["fuzzy", "--input-format", "parquet", "--id-col", "id", "--master", "local[2]"]
    argv += ["--device", "cpu", "--against", index, "--index-out", index]
    feb = [*argv, "--input", str(tmp_path / "feb"), "--output", str(tmp_path / "o-feb")]
    mar = [*argv, "--input", str(tmp_path / "mar"), "--output", str(tmp_path / "o-mar")]

    class Killed(BaseException):
        pass

    def killed(self):
        raise Killed

    monkeypatch.setattr(IndexWriter, "commit", killed)
    monkeypatch.setattr(IndexWriter, "abort", lambda self: None)  # a killed run cleans nothing
    with pytest.raises(Killed):
        main(feb)
    monkeypatch.undo()
    assert (tmp_path / "o-feb" / "stats.json").exists()  # released
    assert FuzzyIndex.open(spark, index).documents == N_OLD
    claim = tmp_path / "index" / "_sparkdedup_index_commit-00000002.json"
    assert claim.exists()
    capsys.readouterr()

    assert main(mar) == 2
    err = capsys.readouterr().err
    assert "is being committed to by another run" in err and "run that command again" in err
    assert not (tmp_path / "o-mar").exists()  # refused before any work
    record = json.loads(claim.read_text())
    record["claimed"] -= 2 * CLAIM_STALE_SECONDS
    (tmp_path / "index" / f".{claim.name}.crc").unlink(missing_ok=True)
    claim.write_text(json.dumps(record))
    assert main(mar) == 2
    err = capsys.readouterr().err
    assert f"committed its output {record['output']!r} but was stopped before it added" in err
    assert not (tmp_path / "o-mar").exists()

    assert main([*feb, "--overwrite"]) == 0
    stats = json.loads((tmp_path / "o-feb" / "stats.json").read_text())
    indexed = FuzzyIndex.open(spark, index)
    assert indexed.documents == N_OLD + stats["kept_docs"]
    assert main(mar) == 0
    assert FuzzyIndex.open(spark, index).manifest["commit"] == 3


def test_an_index_commit_that_fails_after_the_output_keeps_its_claim(
    spark, corpus, tmp_path, capsys, monkeypatch
) -> None:
    """An index commit that fails (a full disk) once the run's output is committed leaves its
    claim, as a killed run does (the test above takes such a claim over): exit 2 saying the
    output is in place and how to add its documents, and other runs are refused meanwhile."""
    old, new = corpus
    index = str(tmp_path / "index")
    sparkdedup.write_index(old.where(F.col("id") < 200), index, **CFG)
    new.where(F.col("id") < N_OLD + 30).write.parquet(str(tmp_path / "feb"))
    argv = ["fuzzy", "--input-format", "parquet", "--id-col", "id", "--master", "local[2]"]
    argv += ["--device", "cpu", "--against", index, "--index-out", index]
    argv += ["--input", str(tmp_path / "feb"), "--output", str(tmp_path / "o-feb")]

    def full_disk(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(IndexWriter, "_commit", full_disk)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"the output '{tmp_path / 'o-feb'}' is committed, but its documents" in err, err
    assert "No space left on device" in err and "again with --overwrite" in err, err
    assert (tmp_path / "o-feb" / "stats.json").exists()
    assert (tmp_path / "index" / "_sparkdedup_index_commit-00000002.json").exists()
    # The rerun takes the claim over; a failure after its manifest is in place (tidying up)
    # is a commit that took place: exit 0, the documents added once.
    monkeypatch.undo()
    switch = index_module.switch_manifest

    def switched_then_failed(*args, **kwargs):
        switch(*args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index_module, "switch_manifest", switched_then_failed)
    assert main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
    stats = json.loads((tmp_path / "o-feb" / "stats.json").read_text())
    assert FuzzyIndex.open(spark, index).documents == 200 + stats["kept_docs"]


def test_a_damaged_manifest_is_an_error_naming_the_index(spark, corpus, tmp_path, capsys) -> None:
    """A manifest cut short (or not a JSON object) is an error naming the index, not an
    internal error of the JSON parser; replacing it (overwrite) too, its segments unknown."""
    old, new = corpus
    index = tmp_path / "index"
    sparkdedup.write_index(old.limit(5), str(index), **CFG)
    manifest = index / "_sparkdedup_index.json"
    good = manifest.read_text()
    (index / "._sparkdedup_index.json.crc").unlink()
    manifest.write_text(good[: len(good) // 2])
    with pytest.raises(InputError, match=r"against '.*index': its manifest cannot be parsed"):
        sparkdedup.fuzzy_duplicates(new, against=str(index), **CFG)
    assert main(["compact-index", "--index", str(index)]) == 2
    assert "--index" in capsys.readouterr().err
    manifest.write_text("[]")
    with pytest.raises(InputError, match="holds an index of format None"):
        sparkdedup.fuzzy_duplicates(new, against=str(index), **CFG)
    for damaged in ("[]", good[: len(good) // 2]):
        manifest.write_text(damaged)
        with pytest.raises(InputError, match="manifest cannot be parsed .* delete the directory"):
            sparkdedup.write_index(old.limit(7), str(index), overwrite=True, **CFG)


def test_cli_refuses_a_wrong_index_before_any_work(spark, corpus, tmp_path, capsys) -> None:
    """A mistyped --against, an index of other parameters and an --index-out on --output are
    errors naming the option, before the run touches its output."""
    old, new = corpus
    index = str(tmp_path / "index")
    sparkdedup.write_index(old.limit(50), index, **CFG)
    new.limit(20).write.parquet(str(tmp_path / "new"))
    out = str(tmp_path / "o")
    argv = ["fuzzy", "--input", str(tmp_path / "new"), "--input-format", "parquet", "--id-col"]
    argv += ["id", "--master", "local[2]", "--device", "cpu", "--output", out]
    assert main([*argv, "--against", index + "x"]) == 2
    assert f"error: --against {index + 'x'!r} does not exist" in capsys.readouterr().err
    assert main([*argv, "--against", index, "--num-bands", "10"]) == 2
    err = capsys.readouterr().err
    assert f"the index --against {index!r}: num_bands 10 (index: 20)" in err
    assert main([*argv, "--index-out", out + "/index"]) == 2
    err = capsys.readouterr().err
    assert "--index-out" in err and "is inside --output" in err
    assert "choose a --index-out apart from --output" in err and "input" not in err
    assert not os.path.exists(out)


@pytest.mark.slow
def test_cli_index_then_against(spark, corpus, tmp_path, capsys) -> None:
    old, new = corpus
    old.write.parquet(str(tmp_path / "old"))
    new.write.parquet(str(tmp_path / "new"))
    index = str(tmp_path / "index")
    base = ["fuzzy", "--input-format", "parquet", "--id-col", "id", "--master", "local[2]"]
    first = [*base, "--input", str(tmp_path / "old"), "--output", str(tmp_path / "o1")]
    assert main([*first, "--index-out", index]) == 0, capsys.readouterr().err
    stats1 = json.loads((tmp_path / "o1" / "stats.json").read_text())
    assert stats1["index_out"]["documents"] == stats1["kept_docs"]
    second = [*base, "--input", str(tmp_path / "new"), "--output", str(tmp_path / "o2")]
    assert main([*second, "--against", index, "--index-out", index]) == 0, capsys.readouterr().err
    stats2 = json.loads((tmp_path / "o2" / "stats.json").read_text())
    assert stats2["against"]["indexed_docs"] == stats1["kept_docs"]
    within = stats2["against"]["removed_within_new"]
    assert within > 0 and stats2["against"]["removed_near_indexed"] > 0
    assert within + stats2["against"]["removed_near_indexed"] == stats2["removed_docs"]
    assert stats2["index_out"]["segment"] == "segment=00001" and stats2["index_out"]["appended"]
    assert stats2["index_out"]["indexed_docs"] == stats1["kept_docs"] + stats2["kept_docs"]
    kept = spark.read.parquet(str(tmp_path / "o2" / "deduplicated"))
    removed = spark.read.parquet(str(tmp_path / "o2" / "duplicates"))
    assert kept.count() + removed.count() == new.count() == stats2["input_docs"]
    assert removed.columns == ["id", "kept_id"]
    # Removed near an indexed document: those whose kept document is not a new one.
    near = removed.join(new.select(F.col("id").alias("kept_id")), "kept_id", "left_anti").count()
    assert stats2["against"]["removed_near_indexed"] == near
    assert set(stats2) >= {"groups", "docs_in_groups"} and "near_indexed" not in stats2
    # The group report describes this input: each group's members here and its kept document,
    # indexed (not in the input) when the group holds an indexed document; docs_in_groups
    # counts input documents only.
    groups = spark.read.parquet(str(tmp_path / "o2" / "groups")).toPandas()
    assert list(groups.columns) == ["group", "id", "kept", "size", "indexed"]
    new_ids = {r["id"] for r in new.select("id").collect()}
    by_group = groups.groupby("group")
    assert (by_group["id"].count() == by_group["size"].first()).all()
    kept_rows = groups[groups["kept"]]
    assert (kept_rows["group"] == kept_rows["id"]).all() and len(kept_rows) == stats2["groups"]
    assert set(kept_rows[kept_rows["indexed"]]["id"]).isdisjoint(new_ids)
    assert set(kept_rows[~kept_rows["indexed"]]["id"]) <= new_ids
    assert not groups[~groups["kept"]]["indexed"].any()
    in_groups = set(groups["id"]) & new_ids
    assert len(in_groups) == stats2["docs_in_groups"] < len(groups)
    assert stats2["against"]["groups_kept_by_index"] == int(kept_rows["indexed"].sum()) > 0
    # The index is an input of the run and never an output of another kind.
    bad = main(
        [*base, "--input", str(tmp_path / "new"), "--output", index + "/out", "--against", index]
    )
    assert bad == 2 and "--output" in capsys.readouterr().err


@pytest.mark.slow  # 30-80 s in make test, which must stay under 25 minutes
def test_a_month_with_no_new_documents_merges_the_segments_elsewhere(spark, tmp_path, capsys):
    """A run with no new documents is a run like any other (a JSONL reader that saw no record
    types the ids as strings: it is not an id-type error against a bigint index), and written
    elsewhere it merges the index's segments into one, the way the README gives."""
    months = []
    for m in range(2):
        path = tmp_path / f"m{m}.jsonl"
        rows = [{"id": m * 100 + i, "text": f"month {m} text {i // 2} " * 6} for i in range(8)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        months.append(path)
    empty = tmp_path / "none.jsonl"
    empty.write_text("")
    index, merged = str(tmp_path / "ix"), str(tmp_path / "ix-merged")
    base = ["fuzzy", "--input-format", "jsonl", "--id-col", "id", "--char-ngrams", "5"]
    for m, path in enumerate([*months, empty]):
        out = ["--output", str(tmp_path / f"o{m}"), "--input", str(path)]
        where = ["--index-out", index] if m == 0 else ["--against", index, "--index-out", index]
        if path == empty:
            where[-1] = merged
        assert main([*base, *out, *where]) == 0, capsys.readouterr().err[-2000:]
    stats = json.loads((tmp_path / "o2" / "stats.json").read_text())
    assert stats["input_docs"] == 0 and stats["removed_docs"] == 0
    old = json.loads((tmp_path / "ix" / "_sparkdedup_index.json").read_text())
    new = json.loads((tmp_path / "ix-merged" / "_sparkdedup_index.json").read_text())
    assert len(old["segments"]) == 2 and len(new["segments"]) == 1
    assert new["documents"] == old["documents"] == 8 and new["id_type"] == "bigint"
    ids = sorted(r.id for r in FuzzyIndex.open(spark, merged).table(["id"]).collect())
    assert ids == [0, 2, 4, 6, 100, 102, 104, 106]


def _segments(index: str) -> list[str]:
    """The segment directories at `index`, listed or not."""
    return sorted(n for n in os.listdir(index) if n.startswith("segment="))


def test_compact_index_merges_the_segments_in_place(spark, corpus, tmp_path) -> None:
    """Three segments become one holding the same rows, under a new commit number; the old
    segments are retired (deleted at once with ``retain_hours=0``), and a run against the
    index removes what it removed before."""
    new = corpus[1].where(F.col("id") < N_OLD + 150)
    index, rows = _indexed(spark, corpus, tmp_path, 50)
    config = FuzzyConfig(**CFG)
    for shift in (10**6, 2 * 10**6):
        writer = IndexWriter(spark, index, config, append=True)
        writer.stage(rows(shift))
        writer.commit()
    opened = FuzzyIndex.open(spark, index)
    names = opened._schema_names()
    before = sorted(tuple(r) for r in opened.table(names).collect())
    assert len(before) == opened.documents and len(opened.manifest["segments"]) == 3
    removed = _pairs(sparkdedup.fuzzy_duplicates(new, against=index, **CFG))
    assert removed  # some near indexed documents
    manifest = sparkdedup.compact_index(spark, index, retain_hours=0)
    assert [s["name"] for s in manifest["segments"]] == ["segment=00003"]
    assert manifest["retired"] == []
    assert manifest["documents"] == len(before)
    assert manifest["commit"] == opened.manifest["commit"] + 1
    assert manifest["params"] == opened.manifest["params"]
    assert manifest["id_type"] == "bigint" and manifest["id_col"] == "id"
    assert _segments(index) == ["segment=00003"]
    after = FuzzyIndex.open(spark, index)
    assert sorted(tuple(r) for r in after.table(names).collect()) == before
    assert _pairs(sparkdedup.fuzzy_duplicates(new, against=index, **CFG)) == removed
    # An index of one segment is left as it is.
    assert sparkdedup.compact_index(spark, index) == manifest
    assert _segments(index) == ["segment=00003"]


def test_a_compaction_commits_nothing_when_the_index_changes_or_loses_rows(
    spark, corpus, tmp_path, monkeypatch
) -> None:
    """A run committing to the index while it is compacted: the compaction commits nothing.
    A run that started before a compaction commits nothing after it. Rows missing from a
    segment's files (the manifest counts more): nothing is committed."""
    index, rows = _indexed(spark, corpus, tmp_path, 50)
    config = FuzzyConfig(**CFG)
    first = IndexWriter(spark, index, config, append=True)
    first.stage(rows(10**6))
    first.commit()
    other = IndexWriter(spark, index, config, append=True)
    other.stage(rows(2 * 10**6))
    staging = IndexWriter.stage

    def stage_then_the_other_commits(self, table):
        written = staging(self, table)
        if self.compact:
            other.commit()
        return written

    monkeypatch.setattr(IndexWriter, "stage", stage_then_the_other_commits)
    with pytest.raises(InputError, match="compaction is not committed"):
        sparkdedup.compact_index(spark, index)
    monkeypatch.undo()
    listed = [s["name"] for s in FuzzyIndex.open(spark, index).manifest["segments"]]
    assert listed == ["segment=00000", "segment=00001", "segment=00002"]
    assert _segments(index) == listed
    assert not [n for n in os.listdir(index) if n.startswith("_sparkdedup_index_staging")]
    # A commit as the compaction starts (after its first read of the manifest, before its
    # writer notes it): the compaction holds that commit's documents too.
    documents = FuzzyIndex.open(spark, index).documents
    late = IndexWriter(spark, index, config, append=True)
    late.stage(rows(3 * 10**6))
    quick = IndexWriter(spark, index, config, append=True)
    quick.stage(rows(5 * 10**6))
    making = IndexWriter.__init__

    def the_other_commits_then_made(self, *args, **kwargs):
        if kwargs.get("compact"):
            quick.commit()
        making(self, *args, **kwargs)

    monkeypatch.setattr(IndexWriter, "__init__", the_other_commits_then_made)
    merged = sparkdedup.compact_index(spark, index, retain_hours=0)
    monkeypatch.undo()
    assert _segments(index) == ["segment=00004"]
    ids = [r["id"] for r in FuzzyIndex.open(spark, index).table(["id"]).collect()]
    assert merged["documents"] == len(set(ids)) == documents + 50
    assert 5 * 10**6 in ids and 2 * 10**6 in ids and 3 * 10**6 not in ids
    # A run that started before the compaction is refused after it.
    with pytest.raises(InputError, match=r"segment=00004 added; segment=00000"):
        late.commit()
    late.abort()
    assert _segments(index) == ["segment=00004"]
    more = IndexWriter(spark, index, config, append=True)
    more.stage(rows(4 * 10**6))
    more.commit()
    # A claim of the next commit (another run committing): refused before any read or write.
    number = FuzzyIndex.open(spark, index).manifest["commit"] + 1
    claim = os.path.join(index, index_module._claim_name(number))
    with open(claim, "w") as fh:
        json.dump({"claimed": time.time(), "run": "another", "output": None}, fh)
    monkeypatch.setattr(IndexWriter, "stage", lambda *a: pytest.fail("staged"))
    with pytest.raises(InputError, match="being committed to by another run.*compaction is not"):
        sparkdedup.compact_index(spark, index)
    monkeypatch.undo()
    os.remove(claim)
    # A part file gone from a segment: the read finds fewer rows than the manifest lists.
    parts = sorted((tmp_path / "index" / "segment=00004").glob("part-*.parquet"))
    parts = [p for p in parts if pq.ParquetFile(p).metadata.num_rows]
    os.remove(parts[0])
    with pytest.raises(InputError, match="manifest lists .*nothing was changed"):
        sparkdedup.compact_index(spark, index)
    assert _segments(index) == ["segment=00004", "segment=00005"]
    assert not [n for n in os.listdir(index) if n.startswith("_sparkdedup_index_staging")]


def _append(spark, index: str, rows) -> dict:
    """Commit `rows` to the index as one more segment, as a run with --index-out of the index
    it ran against does; the manifest."""
    writer = IndexWriter(spark, index, FuzzyConfig(**CFG), append=True)
    writer.stage(rows)
    return writer.commit()


def _age_retired(index: str, hours: float) -> None:
    """Make the index's retired segments `hours` older, in its manifest."""
    path = os.path.join(index, index_module.MANIFEST)
    with open(path) as fh:
        manifest = json.load(fh)
    for entry in manifest["retired"]:
        then = time.time() - hours * 3600
        entry["retired"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(then))
    with open(path, "w") as fh:
        json.dump(manifest, fh)
    os.remove(os.path.join(index, f".{index_module.MANIFEST}.crc"))  # the local FS's checksum


def test_replaced_segments_stay_for_the_runs_reading_them(spark, corpus, tmp_path) -> None:
    """A compaction (and an index replaced with overwrite) keeps the segments it replaces for
    `retain_hours`: a read planned before it still reads them; no reader after takes them; a
    later commit deletes them once older, and a compaction of a one-segment index with
    ``retain_hours=0`` deletes them at once."""
    index, rows = _indexed(spark, corpus, tmp_path, 50)
    config = FuzzyConfig(**CFG)
    _append(spark, index, rows(10**6))
    opened = FuzzyIndex.open(spark, index)
    reading = opened.table(["id"])  # a run's read, planned (its files listed) before
    manifest = sparkdedup.compact_index(spark, index)
    assert [s["name"] for s in manifest["segments"]] == ["segment=00002"]
    retired = [(r["name"], r["documents"]) for r in manifest["retired"]]
    assert retired == [(s["name"], s["documents"]) for s in opened.manifest["segments"]]
    assert _segments(index) == ["segment=00000", "segment=00001", "segment=00002"]
    ids = sorted(r["id"] for r in reading.collect())
    assert len(ids) == opened.documents
    now = FuzzyIndex.open(spark, index)
    assert sorted(r["id"] for r in now.table(["id"]).collect()) == ids
    # A later commit within the hours keeps them listed; past them it deletes them.
    later = _append(spark, index, rows(2 * 10**6))
    assert [r["name"] for r in later["retired"]] == ["segment=00000", "segment=00001"]
    assert _segments(index) == ["segment=00000", "segment=00001", "segment=00002", "segment=00003"]
    _age_retired(index, 25)
    assert _append(spark, index, rows(3 * 10**6))["retired"] == []
    assert _segments(index) == ["segment=00002", "segment=00003", "segment=00004"]
    # Replaced with overwrite: retired too. A compaction of the one segment left, at 0 hours,
    # deletes them and leaves the manifest as it was.
    writer = IndexWriter(spark, index, config, overwrite=True)
    writer.stage(rows(4 * 10**6))
    replaced = writer.commit()
    assert [r["name"] for r in replaced["retired"]] == [
        "segment=00002",
        "segment=00003",
        "segment=00004",
    ]
    assert sparkdedup.compact_index(spark, index) == replaced  # within the hours: kept
    assert len(_segments(index)) == 4
    assert sparkdedup.compact_index(spark, index, retain_hours=0) == {**replaced, "retired": []}
    assert _segments(index) == ["segment=00005"]
    for hours in (-1, float("inf")):
        with pytest.raises(ConfigError, match="retain_hours must be a finite number >= 0"):
            sparkdedup.compact_index(spark, index, retain_hours=hours)


def test_each_replaced_segment_keeps_its_own_hours(spark, corpus, tmp_path) -> None:
    """The hours a compaction gives the segments it replaces hold whatever later commits use
    (a run's default is shorter): only an explicit ``retain_hours`` shortens them, and 0
    deletes them whatever their time says (a clock ahead of this one)."""
    index, rows = _indexed(spark, corpus, tmp_path, 50)
    _append(spark, index, rows(10**6))
    manifest = sparkdedup.compact_index(spark, index, retain_hours=72)
    assert [r["retain_hours"] for r in manifest["retired"]] == [72, 72]
    _age_retired(index, 25)
    later = _append(spark, index, rows(2 * 10**6))  # a run: the default 24 hours
    assert len(later["retired"]) == 2
    assert _segments(index) == ["segment=00000", "segment=00001", "segment=00002", "segment=00003"]
    _age_retired(index, 73)
    assert _append(spark, index, rows(3 * 10**6))["retired"] == []
    assert _segments(index) == ["segment=00002", "segment=00003", "segment=00004"]
    # Shortened by an explicit compaction: to 24 hours of 72, after 25 (48 keeps them).
    merged = sparkdedup.compact_index(spark, index, retain_hours=72)
    names = [r["name"] for r in merged["retired"]]
    assert names == [f"segment=0000{k}" for k in (2, 3, 4)]
    _age_retired(index, 25)
    for hours in (None, 48):  # the default shortens nothing
        kept = sparkdedup.compact_index(spark, index, retain_hours=hours)["retired"]
        assert [r["name"] for r in kept] == names and len(_segments(index)) == 4
    assert sparkdedup.compact_index(spark, index, retain_hours=24)["retired"] == []
    assert _segments(index) == ["segment=00005"]
    # Replaced "in the future" (a clock ahead): 0 deletes them all the same.
    _append(spark, index, rows(4 * 10**6))
    sparkdedup.compact_index(spark, index)
    _age_retired(index, -5)
    assert len(_segments(index)) == 3
    assert sparkdedup.compact_index(spark, index, retain_hours=0)["retired"] == []
    assert _segments(index) == ["segment=00007"]


def test_cli_compact_index(spark, corpus, tmp_path, capsys) -> None:
    index, rows = _indexed(spark, corpus, tmp_path, 50)
    _append(spark, index, rows(10**6))
    assert main(["compact-index", "--index", index]) == 0
    line = capsys.readouterr().out
    assert '"segments_before": 2, "segments": 1, "documents": 750, "retired_segments": 2' in line
    assert _segments(index) == ["segment=00000", "segment=00001", "segment=00002"]
    # Deleted at once: the index has one segment, so this deletes and commits nothing.
    assert main(["compact-index", "--index", index, "--retain-hours", "0"]) == 0
    assert '"segments": 1, "documents": 750, "retired_segments": 0' in capsys.readouterr().out
    assert _segments(index) == ["segment=00002"]
    for hours in ("-1", "nan", "inf", "soon"):
        with pytest.raises(SystemExit):
            main(["compact-index", "--index", index, "--retain-hours", hours])
        err = capsys.readouterr().err
        assert "--retain-hours: must be a finite number of hours >= 0" in err, err
    assert main(["compact-index", "--index", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "--index" in err and "is not a sparkdedup index" in err, err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--against", "idx"], "--against needs --id-col"),
        (["--index-out", "idx", "--id-col", "id", "--verify", "jaccard"], "--verify none only"),
    ],
)
def test_cli_usage_errors(extra, message, capsys) -> None:
    argv = ["fuzzy", "--input", "x", "--input-format", "parquet", "--output", "o"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, *extra])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
