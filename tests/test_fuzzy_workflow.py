"""The fuzzy workflow end to end on a planted corpus (Spark local[2])."""

from __future__ import annotations

import logging

import pytest
import sparkdedup
from pyspark.sql import functions as F
from sparkdedup import FuzzyConfig
from sparkdedup.datagen import generate_corpus
from sparkdedup.errors import ConfigError, SchemaError
from sparkdedup.evaluate import evaluate, planted_pairs

N_DOCS = 800


@pytest.fixture(scope="module")
def corpus():
    docs, truth = generate_corpus(N_DOCS, seed=7)
    return docs, truth


@pytest.fixture(scope="module")
def corpus_df(spark, corpus):
    docs, _ = corpus
    return spark.createDataFrame(docs[["id", "text", "source"]])


@pytest.fixture(scope="module")
def user_id_result(corpus_df):
    return sparkdedup.fuzzy_duplicates(corpus_df, FuzzyConfig(id_col="id")).toPandas()


def test_planted_duplicates_found(corpus, user_id_result):
    docs, truth = corpus
    report = evaluate(user_id_result, truth, docs, min_jaccard=0.9)
    high = planted_pairs(truth, docs, min_jaccard=0.9)
    assert len(high) > 50, "the planted corpus should hold many pairs with Jaccard >= 0.9"
    # Every planted pair with Jaccard >= 0.9 is grouped (its candidate probability is 0.997 per
    # pair, and the groups are transitive), and the groups hold few false pairs.
    assert report["recall"] == 1.0, report
    assert report["precision"] >= 0.95, report
    # The kept document is the smallest id of each group.
    kept_of = user_id_result.groupby("kept_id")["id"].min()
    assert (kept_of.index < kept_of.values).all()


def test_conservation_and_removal(corpus_df, user_id_result, spark):
    dups = spark.createDataFrame(user_id_result)
    kept = sparkdedup.remove_duplicates(corpus_df, dups, id_col="id")
    assert user_id_result["id"].is_unique
    assert not set(user_id_result["id"]) & set(user_id_result["kept_id"])
    assert kept.count() + len(user_id_result) == N_DOCS


def test_same_output_whatever_partitioning_order_and_run(corpus, corpus_df, spark):
    """Derived ids depend only on content: 1 partition, 7 shuffled partitions, two runs agree."""
    docs, _ = corpus
    no_ids = corpus_df.select("text", "source")
    one = sparkdedup.fuzzy_duplicates(no_ids.coalesce(1)).toPandas()
    shuffled_rows = docs[["text", "source"]].sample(frac=1.0, random_state=3)
    seven = spark.createDataFrame(shuffled_rows).repartition(7)
    again = sparkdedup.fuzzy_duplicates(seven).toPandas()
    key = ["id", "kept_id"]
    assert len(one) > 0
    assert one.sort_values(key).values.tolist() == again.sort_values(key).values.tolist()


def _broadcast_rows(spark, after: int) -> tuple[int, list[int]]:
    """(the last SQL execution id, the rows of every broadcast of the executions after `after`),
    from the session's SQL status store."""
    store = spark._jsparkSession.sharedState().statusStore()
    executions = store.executionsList()
    last, rows = after, []
    for k in range(executions.size()):
        eid = executions.apply(k).executionId()
        last = max(last, eid)
        if eid <= after:
            continue
        values = store.executionMetrics(eid)
        nodes = store.planGraph(eid).allNodes()
        for n in range(nodes.size()):
            node = nodes.apply(n)
            if "BroadcastExchange" not in node.name():
                continue
            metrics = node.metrics()
            for m in range(metrics.size()):
                metric = metrics.apply(m)
                value = values.get(metric.accumulatorId())
                if metric.name() == "number of output rows" and value.isDefined():
                    rows.append(int(value.get().replace(",", "")))
    return last, rows


@pytest.mark.slow  # 30-80 s in make test, which must stay under 25 minutes
def test_derived_id_joins_broadcast_only_tables_that_fit(corpus_df, spark):
    """The joins of a derived-id run with its groups, keys and duplicates (tables that grow
    with the corpus) broadcast them while their hash tables fit spark.sparkdedup.broadcastBytes,
    and otherwise are sort-merge joins: the driver builds every broadcast, and Spark's own
    choice would go by the tables' compressed Parquet size. The output is the same."""
    from sparkdedup.sizing import BROADCAST_CONF, temporary_conf

    no_ids = corpus_df.filter(F.col("id") < 400).select("text", "source")
    key = ["id", "kept_id"]
    mark, _ = _broadcast_rows(spark, -1)
    default = sparkdedup.fuzzy_duplicates(no_ids).toPandas().sort_values(key)
    mark, rows = _broadcast_rows(spark, mark)
    # The corpus is small: its key tables fit and are broadcast (at least the rows named).
    assert len(default) > 0 and any(r >= len(default) for r in rows), rows
    with temporary_conf(spark, {BROADCAST_CONF: "1k"}):  # 8 rows of hash table
        merged = sparkdedup.fuzzy_duplicates(no_ids).toPandas().sort_values(key)
    _, rows = _broadcast_rows(spark, mark)
    assert [r for r in rows if r > 8] == [], rows
    assert merged.values.tolist() == default.values.tolist()


def test_broadcast_limits_follow_the_session(spark):
    """A 64 MiB hash table (128 bytes a row) is broadcast, the removal's up to twice that;
    spark.sparkdedup.broadcastBytes moves the limit, autoBroadcastJoinThreshold=-1 turns
    broadcasts off, and a size that is not one is an error naming the setting."""
    from sparkdedup.sizing import (
        BROADCAST_CONF,
        RELATION_ROW_BYTES,
        broadcastable,
        join_hint,
        temporary_conf,
    )

    rows = 64 * 1024**2 // RELATION_ROW_BYTES
    assert broadcastable(spark, rows) and not broadcastable(spark, rows + 1)
    assert broadcastable(spark, 2 * rows, removal=True)
    assert not broadcastable(spark, 2 * rows + 1, removal=True)
    assert join_hint(spark, rows) == "broadcast" and join_hint(spark, rows + 1) == "merge"
    with temporary_conf(spark, {BROADCAST_CONF: "1m"}):
        assert broadcastable(spark, 8192) and not broadcastable(spark, 8193)
    with temporary_conf(spark, {"spark.sql.autoBroadcastJoinThreshold": "-1"}):
        assert not broadcastable(spark, 1) and not broadcastable(spark, 1, removal=True)
        assert join_hint(spark, 1) == "merge"
    with temporary_conf(spark, {BROADCAST_CONF: "lots"}):
        with pytest.raises(ConfigError, match=BROADCAST_CONF):
            broadcastable(spark, 1)


def test_broadcast_limits_follow_the_heap(spark, monkeypatch):
    """Without spark.sparkdedup.broadcastBytes a hash table takes at most a sixteenth of the
    smallest heap holding it: the removal's 128 MiB shrinks to 64 MiB with a 1g driver in
    local mode (where 104 MB ran the JVM out of memory); an explicit setting is taken as is."""
    from sparkdedup import sizing
    from sparkdedup.sizing import BROADCAST_CONF, broadcast_bytes, smallest_heap, temporary_conf

    mib, gib = 1024**2, 1024**3
    assert smallest_heap(None, None, "local[2]") == gib  # Spark's defaults
    assert smallest_heap("6g", "512m", "local[*]") == 6 * gib  # local: the driver only
    assert smallest_heap("6g", "1536m", "spark://host:7077") == 1536 * mib
    assert smallest_heap("2048", None, "yarn") == gib  # a bare number is MiB
    assert smallest_heap("2048", "4g", "yarn") == 2 * gib
    with pytest.raises(ConfigError, match="spark.driver.memory"):
        smallest_heap("much", None, "local")
    assert sizing.session_heap(spark) == 3 * gib  # the test session's driver
    monkeypatch.setattr(sizing, "session_heap", lambda spark: gib)
    assert broadcast_bytes(spark) == 64 * mib and broadcast_bytes(spark, removal=True) == 64 * mib
    monkeypatch.setattr(sizing, "session_heap", lambda spark: 512 * mib)
    assert broadcast_bytes(spark, removal=True) == 32 * mib
    monkeypatch.setattr(sizing, "session_heap", lambda spark: 2 * gib)
    assert broadcast_bytes(spark) == 64 * mib and broadcast_bytes(spark, removal=True) == 128 * mib
    monkeypatch.setattr(sizing, "session_heap", lambda spark: 512 * mib)
    with temporary_conf(spark, {BROADCAST_CONF: "100m"}):
        assert broadcast_bytes(spark, removal=True) == 200 * mib


def test_backends_agree_and_64_bit_mode(corpus, corpus_df):
    docs, truth = corpus
    small = corpus_df.filter(F.col("id") < 300)
    base = FuzzyConfig(id_col="id")
    driver = sparkdedup.fuzzy_duplicates(small, base.replace(cc_backend="driver")).toPandas()
    dist = sparkdedup.fuzzy_duplicates(small, base.replace(cc_backend="distributed")).toPandas()
    key = ["id", "kept_id"]
    assert len(driver) > 0
    assert driver.sort_values(key).values.tolist() == dist.sort_values(key).values.tolist()
    # 64-bit hashes are another hash family: pairs near the threshold may differ, but every
    # planted pair with Jaccard >= 0.9 is still grouped.
    wide = sparkdedup.fuzzy_duplicates(small, base.replace(use_64_bit_hash=True)).toPandas()
    sub_docs, sub_truth = docs[docs["id"] < 300], truth[truth["id"] < 300]
    report = evaluate(wide, sub_truth, sub_docs, min_jaccard=0.9)
    assert report["planted_pairs"] > 10 and report["recall"] == 1.0, report
    assert report["precision"] >= 0.95, report


def test_priority_column_keeps_longest(spark):
    base = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod " * 3
    rows = [
        (1, base),
        (2, base + " extra tail words"),
        (3, base[:-1]),
        (4, "unrelated " * 20),
    ]
    df = spark.createDataFrame(rows, "id int, text string").withColumn("length", F.length("text"))
    got = sparkdedup.fuzzy_duplicates(
        df, id_col="id", priority_col="length", char_ngrams=5
    ).toPandas()
    assert sorted(map(tuple, got.values.tolist())) == [(1, 2), (3, 2)]


def test_nan_priority_is_never_the_keeper(spark):
    """A NaN priority ranks last (as a null), not above every number as Spark orders NaN."""
    base = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod " * 3
    rows = [(1, base, 2.0), (2, base + " extra tail words", float("nan")), (3, base[:-1], 1.0)]
    df = spark.createDataFrame(rows, "id int, text string, score double")
    got = sparkdedup.fuzzy_duplicates(df, id_col="id", priority_col="score", char_ngrams=5)
    assert sorted(tuple(r) for r in got.collect()) == [(2, 1), (3, 1)]


@pytest.mark.parametrize("mark", [".", "`", " "])
def test_column_names_with_dots_backticks_and_spaces(spark, mark):
    """Id, text and priority columns whose names hold a dot (from flattened JSON), a backtick
    or a space are the user's top-level columns to every step: fuzzy, exact, the collated
    keep rule and the removal find the same rows as with plain names."""
    one, other = "the quick brown fox jumps over the lazy dog " * 5, "lorem ipsum dolor " * 12
    rows = [(1, one, 1.0), (2, other, 5.0), (3, one, 3.0), (4, other, None)]
    rows.append((5, "a text of its own, unlike the others " * 3, 2.0))
    names = {"id": f"doc{mark}id", "text": f"body{mark}text", "q": f"meta{mark}q"}
    df = spark.createDataFrame(rows, "id long, text string, q double")
    df = df.select(*[F.col(c).alias(names[c]) for c in ("id", "text", "q")])
    for find in (sparkdedup.exact_duplicates, sparkdedup.fuzzy_duplicates):
        dups = find(df, id_col=names["id"], text_col=names["text"], priority_col=names["q"])
        assert sorted(tuple(r) for r in dups.collect()) == [(1, 3), (4, 2)]
        kept = sparkdedup.remove_duplicates(df, dups, id_col=names["id"])
        assert kept.columns == df.columns
        assert sorted(r[names["id"]] for r in kept.collect()) == [2, 3, 5]


def test_null_and_empty_texts_are_kept_and_never_grouped(spark):
    text = "the same sentence about deduplication of training corpora " * 2
    rows = [(1, text), (2, text), (3, None), (4, ""), (5, None), (6, ""), (7, "short")]
    df = spark.createDataFrame(rows, "id long, text string")
    got = sparkdedup.fuzzy_duplicates(df, id_col="id").toPandas()
    assert got.values.tolist() == [[2, 1]]
    kept = sparkdedup.remove_duplicates(df, spark.createDataFrame(got), id_col="id")
    assert sorted(r["id"] for r in kept.collect()) == [1, 3, 4, 5, 6, 7]


def test_texts_that_start_no_shingle_are_not_grouped_with_each_other(spark, tmp_path):
    """Short Latin-1 texts read as strings ("°C", "½ cup": a continuation byte first, fewer
    code points than a shingle) have no shingles: each is kept unless it has a byte-identical
    copy, though the MinHash kernel gives them all one signature. An index of the run holds
    every kept document, those too."""
    hexes = ["b043", "b046", "bd20637570", "bd20637570", "b12035", "80bf"]
    rows = ", ".join(f"({i}, CAST(X'{h}' AS STRING))" for i, h in enumerate(hexes))
    df = spark.sql(f"SELECT * FROM VALUES {rows} AS docs(id, text)")
    got = sparkdedup.fuzzy_duplicates(df, id_col="id").toPandas()
    assert got.values.tolist() == [[3, 2]]
    derived = sparkdedup.fuzzy_duplicates(df.select("text"), id_col=None)
    assert derived.count() == 1
    kept = sparkdedup.remove_duplicates(df.select("text"), derived, id_col=None)
    assert sorted(r.h for r in kept.selectExpr("hex(text) AS h").collect()) == sorted(
        {h.upper() for h in hexes}
    )
    manifest = sparkdedup.write_index(
        df, str(tmp_path / "index"), id_col="id", duplicates=spark.createDataFrame(got)
    )
    assert manifest["documents"] == 5


def test_empty_input_is_a_result(spark):
    df = spark.createDataFrame([], "id long, text string")
    assert sparkdedup.fuzzy_duplicates(df, id_col="id").count() == 0


def test_bad_input_errors(spark):
    df = spark.createDataFrame([(1, "a"), (2, "b")], "id long, text string")
    with pytest.raises(
        SchemaError,
        match="text column 'body' is not in the input; available columns: id, text",
    ):
        sparkdedup.fuzzy_duplicates(df, text_col="body")
    with pytest.raises(SchemaError, match="text column 'id' must be of string type, got bigint"):
        sparkdedup.fuzzy_duplicates(df, text_col="id")
    with pytest.raises(SchemaError, match="id column 'doc' is not in the input"):
        sparkdedup.fuzzy_duplicates(df, id_col="doc")
    dup = spark.createDataFrame([(1, "a"), (1, "b")], "id long, text string")
    with pytest.raises(SchemaError, match="not unique"):
        sparkdedup.fuzzy_duplicates(dup, id_col="id")
    with pytest.raises(ConfigError, match="num_bands must be >= 1, got 0"):
        sparkdedup.fuzzy_duplicates(df, num_bands=0)
    with pytest.raises(ConfigError, match="char_ngrams must be >= 2, got 1"):
        FuzzyConfig(char_ngrams=1)
    with pytest.raises(ConfigError, match="cc_backend must be one of"):
        FuzzyConfig(cc_backend="graphx")
    with pytest.raises(ConfigError, match="seed must be"):
        FuzzyConfig(seed=-1)


def test_fuzzy_duplicates_releases_its_stages(spark, corpus_df):
    """Nothing stays persisted: the scan table, edges and components are released once the
    duplicates are computed, and the result is a reliable checkpoint (the test session has a
    checkpoint directory) that outlives them."""
    persisted = spark.sparkContext._jsc.sc().getPersistentRDDs()
    before = persisted.size()
    dups = sparkdedup.fuzzy_duplicates(corpus_df.filter(F.col("id") < 200), id_col="id")
    assert spark.sparkContext._jsc.sc().getPersistentRDDs().size() - before == 0
    assert dups.count() > 0


@pytest.mark.slow  # 30-80 s in make test, which must stay under 25 minutes
def test_checkpoint_dir_holds_every_intermediate_result(spark, corpus_df, monkeypatch, tmp_path):
    """With checkpoint_dir the Python API caches and checkpoints nothing (Databricks serverless
    may refuse both): every stage and round is written under it and removed when the call
    returns, and the result is written there (left for the caller). Here persist, cache and
    both checkpoints fail, and each entry point gives the results it gives without the
    directory."""
    from sparkdedup import FuzzyDeduplicator

    docs = corpus_df.filter(F.col("id") < 300)
    texts = docs.select("text")
    copied = docs.unionByName(docs.withColumn("id", -1 - F.col("id")))  # every text twice
    ck = str(tmp_path / "ck")
    derived = sparkdedup.fuzzy_duplicates(texts)
    # Exact copies: in each group of one text the smallest id is kept (a negative one here).
    smallest: dict[str, int] = {}
    for row in copied.collect():
        smallest[row["text"]] = min(row["id"], smallest.get(row["text"], row["id"]))
    expected = {
        "distributed": sparkdedup.fuzzy_duplicates(docs, id_col="id", cc_backend="distributed"),
        "derived": derived,
        "exact": [(i, smallest[t]) for i, t in copied.select("id", "text").collect()],
        "kept": sparkdedup.remove_duplicates(texts, derived),
    }
    expected = {k: sorted(v if isinstance(v, list) else v.collect()) for k, v in expected.items()}
    expected["exact"] = [(i, k) for i, k in expected["exact"] if i != k]

    def refused(self, *args, **kwargs):
        raise AssertionError("a DataFrame was cached or checkpointed")

    for method in ("persist", "cache", "checkpoint", "localCheckpoint"):
        monkeypatch.setattr(type(docs), method, refused)
    before = spark.sparkContext._jsc.sc().getPersistentRDDs().size()
    found = {
        "distributed": sparkdedup.fuzzy_duplicates(
            docs, id_col="id", cc_backend="distributed", checkpoint_dir=ck
        ),
        "derived": sparkdedup.fuzzy_duplicates(texts, checkpoint_dir=ck),
        "exact": sparkdedup.exact_duplicates(copied, id_col="id", checkpoint_dir=ck),
        "kept": FuzzyDeduplicator(idCol=None, checkpointDir=ck).transform(texts),
    }
    index = str(tmp_path / "index")
    sparkdedup.write_index(docs, index, id_col="id", checkpoint_dir=ck)
    against = sparkdedup.fuzzy_duplicates(
        docs.withColumn("id", F.col("id") + 10_000), id_col="id", against=index, checkpoint_dir=ck
    )
    assert {k: sorted(tuple(r) for r in df.collect()) for k, df in found.items()} == {
        k: [tuple(r) for r in v] for k, v in expected.items()
    }
    assert against.count() == docs.count()  # each new document is a copy of an indexed one
    assert spark.sparkContext._jsc.sc().getPersistentRDDs().size() == before
    left = sorted(p.name.split("-")[0] for p in (tmp_path / "ck").iterdir())
    assert left == ["result"] * 6  # four results, the kept rows' keys, and `against`'s
    files = found["distributed"].inputFiles()
    assert files and all(f"{ck}/result-" in f for f in files)


def test_detached_result_outlives_its_stages(spark, monkeypatch, tmp_path):
    """`detach` gives a result a plan of its own, in each of its three ways, and the result
    outlives the persisted stage it was computed from."""
    from pyspark import SparkContext
    from sparkdedup.stages import detach

    stage = spark.range(1000).withColumn("y", F.col("id") * 2).persist()
    stage.count()
    written = detach(stage.where("id % 7 = 0"), checkpoint_dir=str(tmp_path / "ck"))
    checkpointed = detach(stage.where("id % 7 = 1"))  # the session's checkpoint directory
    monkeypatch.setattr(SparkContext, "getCheckpointDir", lambda self: None)
    over_rdd = detach(stage.where("id % 7 = 2"))
    before = spark.sparkContext._jsc.sc().getPersistentRDDs().size()
    stage.unpersist()
    assert spark.sparkContext._jsc.sc().getPersistentRDDs().size() == before - 1
    assert over_rdd.is_cached and over_rdd.count() == 143
    assert written.count() == 143 and checkpointed.count() == 143
    assert any(p.name.startswith("result-") for p in (tmp_path / "ck").iterdir())


def test_a_plan_too_deep_for_a_connect_checkpoint(spark, monkeypatch, caplog):
    """A Spark Connect client cannot put a plan of over 100 nested messages in a checkpoint
    command (protobuf's DecodeError): `detach` persists the small result instead, with a
    warning; the distributed components' rounds, whose persisted plans would double every
    round, ask for a checkpoint directory instead."""
    from sparkdedup import stages
    from sparkdedup.fuzzy.components import _Rounds

    class DecodeError(Exception):
        pass

    def refuse(df):
        raise DecodeError("Error parsing message: Exceeded upb_DecodeOptions_MaxDepth")

    monkeypatch.setattr(stages, "computed_copy", refuse)
    frame = spark.range(100).where("id % 3 = 0")
    with caplog.at_level(logging.WARNING, logger="sparkdedup"):
        copy = stages.detach(frame)
    assert copy.is_cached and copy.count() == 34 and "too deep" in caplog.text
    copy.unpersist()
    with pytest.raises(ConfigError, match="pass checkpoint_dir"):
        _Rounds(spark, None).materialise(frame, 1)
    monkeypatch.setattr(stages, "computed_copy", lambda df: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):  # other failures are not taken for a deep plan
        stages.detach(frame)


def test_overlapping_temporary_settings_restore_the_sessions_own(spark):
    """Calls that overlap on one session (threads, notebook cells) each hold their settings
    for a while: the session's own values come back when the last one ends, whatever the
    order they end in (each saving and restoring on its own left a temporary value behind)."""
    from sparkdedup.sizing import shuffle_partitions, temporary_conf

    key, unset = "spark.sql.shuffle.partitions", "spark.sparkdedup.testSetting"
    spark.conf.set(key, "17")
    first = shuffle_partitions(spark, 3)
    second = temporary_conf(spark, {key: "5", unset: "x"})
    first.__enter__()
    second.__enter__()
    assert spark.conf.get(key) == "5" and spark.conf.get(unset) == "x"
    first.__exit__(None, None, None)
    assert spark.conf.get(key) == "5"  # the block still running keeps its value
    second.__exit__(None, None, None)
    assert spark.conf.get(key) == "17" and spark.conf.get(unset, None) is None
    with temporary_conf(spark, {key: "2"}), temporary_conf(spark, {key: "4"}):
        assert spark.conf.get(key) == "4"
    assert spark.conf.get(key) == "17"

    import threading

    barrier = threading.Barrier(4)

    def hold(value: str) -> None:
        with temporary_conf(spark, {key: value}):
            barrier.wait()

    threads = [threading.Thread(target=hold, args=(str(v),)) for v in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert spark.conf.get(key) == "17"


def test_a_stage_after_a_computed_one_is_computed_too(spark, tmp_path):
    """A run of other parameters stopped after rewriting the first stage left the second
    stage of the first run's parameters beside it: a run of those parameters again computes
    the first stage and must not resume the second, made from the first stage's earlier
    copy."""
    from sparkdedup.stages import StageRunner

    cache, made = str(tmp_path / "cache"), []

    def stage(name: str, value: int):
        def compute():
            made.append(name)
            return spark.range(value)

        return compute

    def run(value: int, names: tuple[str, ...] = ("first", "second")) -> list[str]:
        with StageRunner(spark, cache) as runner:
            for name in names:
                runner.run(name, {"value": value}, stage(name, value))
            return runner.resumed

    assert run(3) == [] and made == ["first", "second"]
    assert run(3) == ["first", "second"] and made == ["first", "second"]  # a plain resume
    run(5, ("first",))  # stopped after its first stage
    made.clear()
    assert run(3) == [] and made == ["first", "second"]


def test_an_interrupted_computation_leaves_nothing_persisted(spark):
    """A stage computed into the cache that fails (a cancelled job, Ctrl-C) is unpersisted
    before the error goes on: nothing outlives the call that made it."""
    from pyspark.sql.functions import udf
    from sparkdedup.stages import StageRunner, persisted_now

    @udf("long")
    def fails(x):
        if x == 77:
            raise ValueError("interrupted")
        return x

    before = spark.sparkContext._jsc.sc().getPersistentRDDs().size()
    broken = spark.range(100).select(fails("id").alias("id"))
    with pytest.raises(Exception, match="interrupted"):
        persisted_now(broken)
    assert not broken.is_cached
    with StageRunner(spark) as runner, pytest.raises(Exception, match="interrupted"):
        runner.materialise("stage", "part", spark.range(100).select(fails("id").alias("id")))
    assert spark.sparkContext._jsc.sc().getPersistentRDDs().size() == before


def test_distributed_rounds_leave_only_the_result_in_the_checkpoint_directory(spark, corpus_df):
    """The session's checkpoint directory (the test session has one) gets the rounds of the
    distributed connected components while they run; each is deleted once the next exists,
    and only the result, the caller's, stays."""
    import glob

    root = spark.sparkContext.getCheckpointDir().replace("file:", "")

    def checkpoints() -> set[str]:
        return set(glob.glob(f"{root}/rdd-*"))

    before = checkpoints()
    dups = sparkdedup.fuzzy_duplicates(
        corpus_df.filter(F.col("id") < 300), id_col="id", cc_backend="distributed"
    )
    added = checkpoints() - before
    assert dups.count() > 0
    assert len(added) == 1, sorted(added)  # the result
