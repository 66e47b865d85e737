"""What keeps the fuzzy workflow sound at scale, checked on small data: tasks sized from the
data, exact copies MinHashed once, no step that sorts or holds a whole bucket or group, the
device decided by the executors, band groups materialised in turn."""

from __future__ import annotations

import pytest
import sparkdedup
from sparkdedup import FuzzyConfig
from sparkdedup.errors import BackendUnavailableError
from sparkdedup.fuzzy.identify import group_duplicates
from sparkdedup.fuzzy.lsh import GROUP_BYTES_CONF, auto_bands, band_group_edges
from sparkdedup.fuzzy.scan import scan_documents
from sparkdedup.fuzzy.workflow import run_fuzzy
from sparkdedup.stages import StageRunner


def _words(i: int, n: int = 40) -> str:
    return " ".join(f"w{i}x{j}" for j in range(n))


@pytest.mark.parametrize("ids", ["user", "derived"])
def test_small_input_gets_few_tasks(spark, stage_tasks, ids):
    """40 documents: no stage runs more tasks than the input has partitions, whatever
    spark.sql.shuffle.partitions says, with user ids and with derived ones (whose persisted
    stages kept 200 partitions before their plans were adaptive)."""
    rows = [(i, _words(i // 2)) for i in range(40)]
    docs = spark.createDataFrame(rows, "id long, text string").repartition(2)
    if ids == "derived":
        docs = docs.select("text")
    wide = {"spark.sql.shuffle.partitions": "200"}
    with stage_tasks(f"small-input-{ids}", wide) as tasks:
        id_col = "id" if ids == "user" else None
        dups = sparkdedup.fuzzy_duplicates(docs, id_col=id_col, char_ngrams=5)
        assert dups.count() == 20
    assert tasks and max(tasks) <= 2, tasks


def test_exact_copies_are_minhashed_once_per_batch(spark):
    """300 copies of one text among 60 distinct ones: the copies cost one MinHash per Arrow
    batch, and all but the keeper (the smallest id, or the best priority) are removed."""
    rows = [(i, _words(1000), i % 7) for i in range(300)]
    rows += [(1000 + i, _words(i), 0) for i in range(60)]
    docs = spark.createDataFrame(rows, "id long, text string, quality int").repartition(3)
    config = FuzzyConfig(id_col="id", char_ngrams=5)
    with StageRunner(spark) as runner:
        result = run_fuzzy(docs, config, runner)
        stats = result.stats
        removed = {r["id"]: r["kept_id"] for r in result.duplicates.collect()}
    assert stats["minhashed_docs"] <= 60 + 3  # one per distinct text and batch
    assert set(removed) == set(range(1, 300)) and set(removed.values()) == {0}
    best = sparkdedup.fuzzy_duplicates(docs, config, priority_col="quality")
    kept = {r["kept_id"] for r in best.collect()}
    assert kept == {6} and best.count() == 299  # the first id with the largest quality


def test_no_step_sorts_or_windows_a_bucket_or_group(spark, stage_tasks):
    """Buckets and groups are aggregated and joined back (hash joins), so a bucket of a
    million documents is never sorted or buffered whole by one task."""
    rows = [(i, _words(i // 3)) for i in range(30)]
    docs = spark.createDataFrame(rows, "id long, text string")
    table = scan_documents(docs, id_col="id", char_ngrams=5, num_bands=4, minhashes_per_band=2)
    edges = band_group_edges(table, [0, 1], partitions=2)
    by_text = band_group_edges(table, [0, 1], partitions=2, by_text=True)  # the verified mode
    comps = spark.createDataFrame([(0, 0), (1, 0), (2, 0)], "id long, component long")
    dups = group_duplicates(table, comps, priority=False, partitions=2)
    for frame in (edges, by_text, dups):
        plan = frame._jdf.queryExecution().executedPlan().toString()
        assert "Window" not in plan and "SortMergeJoin" not in plan, plan
        assert "ShuffledHashJoin" in plan, plan
    for frame in (edges, by_text):  # the bucket aggregation hashes, never sorts, the keys
        plan = frame._jdf.queryExecution().executedPlan().toString()
        assert "SortAggregate" not in plan and "HashAggregate" in plan, plan
    # One shuffle of the keys feeds both the aggregation and the join: without sharing it
    # (exchange reuse off) the job has more stages.
    stages = {}
    for reuse in ("true", "false"):
        with stage_tasks(f"reuse-{reuse}", {"spark.sql.exchange.reuse": reuse}) as tasks:
            edges.write.mode("overwrite").format("noop").save()
        stages[reuse] = len(tasks)
    assert stages["true"] < stages["false"], stages


def test_device_is_decided_by_the_executors(spark):
    """No executor here has a GPU: auto runs on the CPU, a requested GPU is refused before
    any long work, by the executors' own check."""
    rows = [(i, _words(i)) for i in range(10)]
    docs = spark.createDataFrame(rows, "id long, text string")
    with StageRunner(spark) as runner:
        assert run_fuzzy(docs, FuzzyConfig(id_col="id"), runner).stats["device"] == "cpu"
    with pytest.raises(BackendUnavailableError, match="tasks probed on the executors"):
        sparkdedup.fuzzy_duplicates(docs, id_col="id", device="gpu")


def test_device_probe_in_background_is_the_answer_resolve_takes(spark):
    """The CLI starts the executors' probe before reading its input; resolving the device then
    takes that probe's answer (no second probe job), and its error when a GPU is missing."""
    from sparkdedup import device

    jobs_before = spark.sparkContext.statusTracker().getJobIdsForGroup(None)
    device.probe_in_background("auto", spark)
    assert device.resolve_device("auto", spark) == "cpu"
    probes = [
        j
        for j in spark.sparkContext.statusTracker().getJobIdsForGroup(None)
        if j not in jobs_before
    ]
    assert len(probes) == 1, probes
    device.probe_in_background("gpu", spark)
    with pytest.raises(BackendUnavailableError, match="tasks probed on the executors"):
        device.resolve_device("gpu", spark)
    assert not device._PENDING
    device.probe_in_background("cpu", spark)  # nothing to probe
    assert not device._PENDING


def test_cpu_runs_warm_the_workers_in_the_background(spark, monkeypatch):
    """With --device cpu the CLI still starts a background job, which loads the MinHash
    kernels of the run's mode into the Python workers; auto's probe does the same."""
    import threading

    from sparkdedup import device

    calls: list[bool | None] = []
    done = threading.Event()

    def record(session, warm_64_bit=None):
        calls.append(warm_64_bit)
        done.set()
        return [{"host": "h", "assigned": "", "usable": False, "reason": "no GPU"}]

    monkeypatch.setattr(device, "executor_gpus", record)
    device.probe_in_background("cpu", spark, True)
    device.wait_for_background()  # what the CLI does before it stops its session
    assert done.is_set() and calls == [True] and not device._BACKGROUND
    done.clear()
    device.probe_in_background("auto", spark, False)
    assert device.resolve_device("auto", spark) == "cpu" and calls == [True, False]
    done.clear()
    device.probe_in_background("cpu", spark)  # no MinHash to warm: no job
    assert not done.wait(0.5) and calls == [True, False]


def test_warming_loads_the_scans_own_kernel_specialisations():
    """The warm-up compiles nothing the scan would not use: after it, a scan-like call (the
    permutation parameters and a Spark-like string batch) loads no further specialisation of
    the kernel, in either mode (a fresh process: numba's dispatchers start empty)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import numpy as np, pyarrow as pa
        from sparkdedup.device import warm_cpu_kernels
        from sparkdedup.kernels import minhash_cpu as m
        from sparkdedup.kernels.minhash import kernel_for_device, permutation_params
        for use64 in (False, True):
            kernel = m._minhash64_kernel if use64 else m._minhash32_kernel
            assert not kernel.signatures
            warm_cpu_kernels(use64)
            warmed = list(kernel.signatures)
            assert len(warmed) == 1, warmed
            a, b, seed = permutation_params(260, 42, use64)
            texts = pa.array(["some text of a document " * 3, None, ""]).slice(0, 3)
            kernel_for_device("cpu")(texts, a, b, seed, 24, use64)
            assert list(kernel.signatures) == warmed, (kernel.signatures, warmed)
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


@pytest.mark.parametrize(
    "bands_per_iteration, group_bytes, labels",
    [
        (1, None, [f"bands-{g}" for g in range(20)]),
        (5, None, ["bands-0", "bands-5", "bands-10", "bands-15"]),
        (20, None, []),  # one group: its edges are the stage's, written once
        (0, None, []),  # auto: 40 documents' keys fit the default 2g
        # 20 distinct texts at 32 bytes a key: 2 bands fit 1280 bytes, ten groups of two
        (0, "1280b", [f"bands-{g}" for g in range(0, 20, 2)]),
    ],
)
def test_band_groups_are_materialised_in_turn(
    spark, bands_per_iteration, group_bytes, labels, tmp_path
):
    """Each group of bands is written before the next starts (peak shuffle and storage are one
    group's), the scratch is removed afterwards, the automatic group size follows
    spark.sparkdedup.lshGroupBytes, and the result never depends on the grouping."""
    rows = [(i, _words(i // 2)) for i in range(40)]
    docs = spark.createDataFrame(rows, "id long, text string")
    config = FuzzyConfig(id_col="id", char_ngrams=5, bands_per_iteration=bands_per_iteration)
    runner = StageRunner(spark, str(tmp_path / "cache"))
    seen: list[str] = []
    materialise = runner.materialise

    def spy(stage, label, df, partitions=None):
        seen.append(label)
        return materialise(stage, label, df, partitions)

    runner.materialise = spy
    if group_bytes is not None:
        spark.conf.set(GROUP_BYTES_CONF, group_bytes)
    try:
        result = run_fuzzy(docs, config, runner)
    finally:
        spark.conf.unset(GROUP_BYTES_CONF)
    assert result.stats["minhashed_docs"] == 20  # one row per distinct text
    assert seen == labels
    assert not (tmp_path / "cache" / "_work" / "edges").exists()
    pairs = sorted((r["id"], r["kept_id"]) for r in result.duplicates.collect())
    assert pairs == [(i, i - 1) for i in range(1, 40, 2)]


class _Conf(dict):
    def get(self, key, default=None):  # noqa: D102 - SparkSession.conf's signature
        return super().get(key, default)


class _Session:
    def __init__(self, **conf: str) -> None:
        self.conf = _Conf(conf)


@pytest.mark.parametrize(
    "nodes, budget, expected",
    [
        (0, None, 20),
        (3_000_000, None, 20),  # 1.92 GB of keys fit 2 GiB
        (3_400_000, None, 10),  # 19 bands fit: two groups of ten
        (10_000_000, None, 5),  # 6 fit: four groups of five
        (10**10, None, 1),  # not even one band fits: one at a time
        (1000, "64000", 2),  # 2 bands fit exactly
        (1000, "96k", 3),  # 3 fit: 7 groups, 3 bands each
    ],
)
def test_automatic_bands_per_group_follow_the_byte_budget(nodes, budget, expected):
    conf = {} if budget is None else {GROUP_BYTES_CONF: budget}
    assert auto_bands(_Session(**conf), nodes, 20) == expected


def test_derived_ids_never_sample_rows_to_the_driver(spark):
    """Derived ids rank fixed-width content keys: the plan has no range partitioning (whose
    sampling would ship whole rows, text included, to the driver)."""
    from sparkdedup.ids import assign_ids

    docs = spark.createDataFrame([(_words(i), f"s{i}") for i in range(20)], "text string, s string")
    plan = assign_ids(docs)._jdf.queryExecution().executedPlan().toString()
    assert "rangepartitioning" not in plan.lower(), plan
    assert "hashpartitioning(_dedup_prefix" in plan, plan


def test_derived_ids_beside_a_column_named_id(spark):
    """Without id_col the rows' own columns may be called anything, ``id`` included."""
    from sparkdedup.removal import remove_duplicates

    rows = [(i % 3, _words(i // 2)) for i in range(20)]
    docs = spark.createDataFrame(rows, "id long, text string")
    with StageRunner(spark) as runner:
        result = run_fuzzy(docs, FuzzyConfig(char_ngrams=5), runner)
        assert result.documents.count() == 20
        kept = remove_duplicates(docs, result.duplicates, ids=result.ids)
        assert kept.count() == 10 and kept.columns == ["id", "text"]


def test_stage_rows_and_metrics_ride_on_the_write_and_resume_without_jobs(spark, tmp_path):
    """A cached stage's row count and metrics are observed on its write job and stored with
    its fingerprint: resuming it reads them back without running any Spark job."""
    from pyspark.sql import functions as F

    docs = spark.range(0, 1000).withColumn("even", (F.col("id") % 2 == 0).cast("int"))
    metrics = {"evens": F.sum("even"), "top": F.max("id")}

    def compute():
        return docs

    first = StageRunner(spark, str(tmp_path / "cache"))
    out = first.run("numbers", {"n": 1000}, compute, metrics=metrics)
    assert first.rows["numbers"] == 1000 and out.count() == 1000
    assert first.observed["numbers"] == {"evens": 500, "top": 999}

    again = StageRunner(spark, str(tmp_path / "cache"))
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("resume-numbers", "resume")
    try:
        again.run("numbers", {"n": 1000}, compute, metrics=metrics)
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert again.resumed == ["numbers"]
    assert again.rows["numbers"] == 1000
    assert again.observed["numbers"] == {"evens": 500, "top": 999}
    assert tracker.getJobIdsForGroup("resume-numbers") == []
    # Other metrics are another key: recomputed, not read back without them.
    third = StageRunner(spark, str(tmp_path / "cache"))
    third.run("numbers", {"n": 1000}, compute, metrics={"odd": F.sum(1 - F.col("even"))})
    assert third.resumed == [] and third.observed["numbers"] == {"odd": 500}


def test_a_work_dir_is_written_never_resumed_and_removed_at_close(spark, tmp_path, monkeypatch):
    """A runner's work directory (the Python API's checkpoint_dir) holds its stages for the
    run alone: written with their counts, never read back by another run, and removed when
    the runner closes; over Spark Connect, out of this machine's reach, each written
    directory is emptied through Spark instead (nothing deleted)."""
    from sparkdedup import fs

    def compute():
        return spark.range(0, 100)

    work = tmp_path / "work"
    with StageRunner(spark, work_dir=str(work)) as runner:
        runner.run("numbers", {}, compute)
        runner.materialise("numbers", "part", spark.range(0, 5))
        assert runner.rows["numbers"] == 100
        assert (work / "numbers").is_dir() and not (
            work / "numbers" / "_sparkdedup_stage.json"
        ).exists()
        again = StageRunner(spark, work_dir=str(work))
        again.run("numbers", {}, compute)
        assert again.resumed == []
    assert not work.exists()

    deleted: list[str] = []

    def unreachable(path: str) -> str:
        raise fs.InputError(f"{path!r} is not a local path")

    monkeypatch.setattr(fs, "is_connect", lambda session: True)
    monkeypatch.setattr(fs, "local_path", unreachable)
    monkeypatch.setattr(fs, "delete", lambda session, path: deleted.append(path))
    with StageRunner(spark, work_dir=str(work)) as runner:
        runner.run("numbers", {}, compute)
        runner.materialise("numbers", "part", spark.range(0, 5))
    assert deleted == []
    emptied = [work / "numbers", work / "_work" / "numbers" / "part"]
    assert [spark.read.parquet(str(p)).count() for p in emptied] == [0, 0]


def test_a_cache_written_by_other_code_of_the_same_version_is_recomputed(
    spark, tmp_path, monkeypatch
):
    """The stage cache's key holds a digest of the package's files, not only its version: a
    build of the same version with other code recomputes a cached stage instead of reading it
    back. The digest follows every file's bytes and path and leaves compiled files out."""
    from sparkdedup import stages

    def compute():
        return spark.range(0, 10)

    first = StageRunner(spark, str(tmp_path / "cache"))
    first.run("numbers", {"n": 10}, compute)
    same = StageRunner(spark, str(tmp_path / "cache"))
    same.run("numbers", {"n": 10}, compute)
    assert same.resumed == ["numbers"]
    monkeypatch.setattr(stages, "code_digest", lambda: "0" * 64)
    other = StageRunner(spark, str(tmp_path / "cache"))
    other.run("numbers", {"n": 10}, compute)
    assert other.resumed == [] and other.rows["numbers"] == 10
    monkeypatch.undo()

    package = tmp_path / "package"
    (package / "fuzzy" / "__pycache__").mkdir(parents=True)
    (package / "fuzzy" / "a.py").write_text("x = 1\n")
    (package / "b.py").write_text("y = 2\n")

    def digest():
        return stages.code_digest.__wrapped__(str(package))

    before = digest()
    (package / "fuzzy" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"compiled")
    assert digest() == before
    (package / "fuzzy" / "a.py").write_text("x = 2\n")
    changed = digest()
    assert changed != before
    (package / "fuzzy" / "a.py").rename(package / "fuzzy" / "c.py")
    assert digest() not in (before, changed)
    assert stages.code_digest() == stages.code_digest.__wrapped__(stages._PACKAGE_DIR)


def test_group_report_of_a_large_group_is_not_shuffled_to_one_task(spark):
    """The group report (`reports.group_members`) of few groups joins their sizes by a
    broadcast: the removed rows of a 3,000-member group stay in the tasks that read them (no
    sort-merge join gathering the group in one task); past the broadcast limit, a sort-merge
    join. Both give the same rows."""
    from sparkdedup.reports import group_members

    dups = spark.range(1, 3001, numPartitions=3).selectExpr("id", "0L AS kept_id")
    dups = dups.unionByName(spark.createDataFrame([(5001, 5000)], "id long, kept_id long"))
    rows = {}
    for broadcast in (True, False):
        members = group_members(dups, broadcast=broadcast)
        rows[broadcast] = sorted(tuple(r) for r in members.collect())
        plan = members._jdf.queryExecution().executedPlan().toString()
        assert ("BroadcastHashJoin" in plan) == broadcast, plan
        assert ("SortMergeJoin" in plan) != broadcast, plan
    assert rows[True] == rows[False]
    assert len(rows[True]) == 3003
    assert rows[True][0] == (0, 0, True, 3001) and (5000, 5001, False, 2) in rows[True]
