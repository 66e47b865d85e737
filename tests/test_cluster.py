"""The fuzzy CLI at scale, as processes: the corpus read and shuffled a counted number of times
(from Spark's event log), a small driver, a lost executor, a killed driver, a huge document."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow

ENV = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
QUIET = ["--spark-conf", "spark.ui.enabled=false"]


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sparkdedup.cli", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
        check=False,
    )


def _corpus(path: Path, n: int, words: int, seed: int = 3, null_every: int = 0) -> Path:
    """`n` documents of `words` random words; every fifth is a copy of the one before with
    one word changed; with `null_every`, every such row's text is null instead."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i:04d}" for i in range(5000)])
    tokens = rng.integers(0, len(vocab), size=(n, words))
    copies = np.arange(n) % 5 == 4
    tokens[copies] = tokens[np.flatnonzero(copies) - 1]
    tokens[copies, 0] = rng.integers(0, len(vocab), size=copies.sum())
    texts = [" ".join(row) for row in vocab[tokens]]
    if null_every:
        texts = [None if i % null_every == 1 else t for i, t in enumerate(texts)]
    path.mkdir(parents=True)
    table = pa.table({"id": np.arange(n, dtype=np.int64), "text": texts})
    for k in range(4):
        pq.write_table(table.slice(k * n // 4, n // 4), path / f"part-{k}.parquet")
    return path


def _pairs(out: Path) -> set[tuple]:
    return {tuple(r) for r in pd.read_parquet(out / "duplicates").itertuples(index=False)}


# --------------------------------------------------------------------------- passes
def _events(event_dir: Path) -> list[dict]:
    out = []
    for log in glob.glob(str(event_dir / "*")):
        with open(log, encoding="utf-8") as fh:
            out += [json.loads(line) for line in fh]
    return out


def _input_scans(events: list[dict], location: str) -> dict[int, str]:
    """Accumulator id of "number of output rows" -> read schema, for every scan of the input
    directory in the SQL plans (the first plan of each query and its adaptive updates)."""
    scans: dict[int, str] = {}

    def walk(node: dict) -> None:
        meta = node.get("metadata") or {}
        if node.get("nodeName", "").startswith("Scan") and location in meta.get("Location", ""):
            for metric in node.get("metrics", []):
                if metric["name"] == "number of output rows":
                    scans[metric["accumulatorId"]] = meta.get("ReadSchema", "")
        for child in node.get("children", []):
            walk(child)

    for event in events:
        if event["Event"].endswith(("SQLExecutionStart", "SQLAdaptiveExecutionUpdate")):
            walk(event["sparkPlanInfo"])
    return scans


def _passes(event_dir: Path, location: str, rows: int, size: int) -> tuple[int, int]:
    """(reads, shuffles) of the corpus in one run: scans of the input that read the text of at
    least half its rows, and Spark stages that shuffle at least half its bytes."""
    events = _events(event_dir)
    scans = _input_scans(events, location)
    scanned: dict[int, int] = defaultdict(int)
    shuffled: dict[int, int] = defaultdict(int)
    for event in events:
        if event["Event"] != "SparkListenerTaskEnd":
            continue
        for acc in event.get("Task Info", {}).get("Accumulables", []):
            if acc.get("ID") in scans and "text" in scans[acc["ID"]]:
                scanned[acc["ID"]] += int(acc.get("Update") or 0)
        metrics = event.get("Task Metrics") or {}
        written = metrics.get("Shuffle Write Metrics", {}).get("Shuffle Bytes Written", 0)
        shuffled[event["Stage ID"]] += written
    reads = sum(1 for n in scanned.values() if n >= rows / 2)
    return reads, sum(1 for n in shuffled.values() if n >= size / 2)


@pytest.fixture(scope="module")
def passes_corpus(tmp_path_factory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("passes")
    path = _corpus(root / "docs", 4000, 300)  # about 2 KB a document
    size = sum(os.path.getsize(p) for p in path.iterdir())
    return path, size


@pytest.mark.parametrize(
    "ids, broadcast, reads, shuffles",
    [
        ("user", True, 2, 0),  # the scan, and the final write (the removals broadcast)
        ("derived", True, 2, 0),  # derived ids shuffle the narrow keys, not the rows
        ("user", False, 2, 1),  # removals too many to broadcast: one shuffle of the rows
        # Null texts in every row group: the check that no file lacks the text column rides
        # on the final write, with no read of its own.
        ("user-nulls", True, 2, 0),
    ],
)
def test_corpus_reads_and_shuffles_are_counted(
    passes_corpus, tmp_path, ids, broadcast, reads, shuffles
):
    """One CLI run reads the corpus `reads` times and shuffles it `shuffles` times (a stage
    that reads or shuffles at least half of the input's bytes), as the README states."""
    path, size = passes_corpus
    if ids == "user-nulls":
        path = _corpus(tmp_path / "docs", 4000, 300, null_every=100)
        size = sum(os.path.getsize(p) for p in path.iterdir())
    events = tmp_path / "events"
    events.mkdir()
    args = ["fuzzy", "--input", str(path), "--input-format", "parquet", "--output"]
    args += [str(tmp_path / "o"), "--master", "local[2]", *QUIET]
    args += ["--spark-conf", "spark.eventLog.enabled=true"]
    args += ["--spark-conf", f"spark.eventLog.dir={events}"]
    args += ["--spark-conf", "spark.eventLog.rolling.enabled=false"]
    args += ["--spark-conf", "spark.eventLog.compress=false"]
    if ids != "derived":
        args += ["--id-col", "id"]
    if not broadcast:
        args += ["--spark-conf", "spark.sql.autoBroadcastJoinThreshold=-1"]
    run = _cli(*args)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _passes(events, str(path), 4000, size) == (reads, shuffles)


def test_remove_with_derived_ids_reads_the_corpus_twice(passes_corpus, tmp_path):
    """`remove` with derived ids: the pass that derives the rows' ids also checks that they
    are the rows the list was made from (their checksum), and the write is the second read; no
    shuffle of the rows (the removal broadcast)."""
    path, size = passes_corpus
    base = ["--input", str(path), "--input-format", "parquet", "--master", "local[2]", *QUIET]
    run = _cli("fuzzy", *base, "--output", str(tmp_path / "o"))
    assert run.returncode == 0, run.stderr[-3000:]
    events = tmp_path / "events"
    events.mkdir()
    args = ["remove", *base, "--duplicates", str(tmp_path / "o" / "duplicates")]
    args += ["--output", str(tmp_path / "kept")]
    args += ["--spark-conf", "spark.eventLog.enabled=true"]
    args += ["--spark-conf", f"spark.eventLog.dir={events}"]
    args += ["--spark-conf", "spark.eventLog.rolling.enabled=false"]
    args += ["--spark-conf", "spark.eventLog.compress=false"]
    run = _cli(*args)
    assert run.returncode == 0, run.stderr[-3000:]
    kept = pd.read_parquet(tmp_path / "kept")
    assert len(kept) == len(pd.read_parquet(tmp_path / "o" / "deduplicated")) < 4000
    assert _passes(events, str(path), 4000, size) == (2, 0)


# --------------------------------------------------------------------------- small driver
def test_derived_ids_with_a_1g_driver_and_4m_results(tmp_path):
    """200,000 documents without an id column, a 1 GB driver and a 4 MB maxResultSize: nothing
    corpus-sized reaches the driver, and the connected-components limit follows
    maxResultSize (65,536 edges) instead of failing."""
    path = _corpus(tmp_path / "docs", 200_000, 12)
    run = _cli(
        "fuzzy",
        "--input",
        str(path),
        "--input-format",
        "parquet",
        "--output",
        str(tmp_path / "o"),
        "--master",
        "local[2]",
        "--spark-conf",
        "spark.driver.memory=1g",
        "--spark-conf",
        "spark.driver.maxResultSize=4m",
        *QUIET,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert stats["input_docs"] == 200_000 and stats["removed_docs"] > 25_000
    assert "max_driver_edges=65536" in run.stderr


# --------------------------------------------------------------------------- faults
@pytest.fixture(scope="module")
def fault_corpus(tmp_path_factory) -> tuple[Path, set]:
    root = tmp_path_factory.mktemp("faults")
    path = _corpus(root / "docs", 20_000, 60)
    base = _cli(
        "fuzzy", "--input", str(path), "--input-format", "parquet", "--id-col", "id",
        "--output", str(root / "base"), "--master", "local[2]", *QUIET,
    )  # fmt: skip
    assert base.returncode == 0, base.stderr[-3000:]
    return path, _pairs(root / "base")


def _watch(proc: subprocess.Popen, marker: str, then, lines: list[str]) -> threading.Thread:
    def run() -> None:
        fired = False
        for line in proc.stderr:
            lines.append(line)
            if not fired and marker in line:
                fired = True
                then()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _fuzzy_process(path: Path, out: Path, *extra: str) -> subprocess.Popen:
    """The fuzzy CLI over `path` as a process whose stderr the test reads (`_watch`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "sparkdedup.cli", "fuzzy", "--input", str(path),
         "--input-format", "parquet", "--id-col", "id", "--output", str(out), *QUIET, *extra],
        stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip


def _killer(proc: subprocess.Popen, command: str, killed: list[int]):  # noqa: ANN202
    """A function that kills the first process under `proc` whose command line holds
    `command`, and records its pid in `killed`."""

    def kill() -> None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if command in " ".join(child.cmdline()):
                    child.kill()
                    killed.append(child.pid)
                    return
            except psutil.Error:
                continue

    return kill


def test_a_lost_executor_costs_a_recomputation(fault_corpus, tmp_path, cluster_conf):
    """local-cluster with two executors; one is killed once the scan is done: the run still
    succeeds and writes the same duplicates."""
    path, expected = fault_corpus
    out = tmp_path / "o"
    proc = _fuzzy_process(path, out, "--master", "local-cluster[2,1,1024]", *cluster_conf)
    killed: list[int] = []
    kill_an_executor = _killer(proc, "CoarseGrainedExecutorBackend", killed)
    lines: list[str] = []
    watcher = _watch(proc, "sparkdedup stage minhash", kill_an_executor, lines)
    assert proc.wait(timeout=900) == 0, "".join(lines)[-3000:]
    watcher.join(timeout=10)
    assert killed, "no executor was found to kill"
    assert _pairs(out) == expected


def test_a_killed_driver_resumes_from_the_cache(fault_corpus, tmp_path):
    """The driver is killed once the LSH edges are written; the same command again resumes
    from the stage cache (no --overwrite: a run that never finished wrote no output) and
    writes the same duplicates."""
    path, expected = fault_corpus
    out = tmp_path / "o"
    args = [sys.executable, "-m", "sparkdedup.cli", "fuzzy", "--input", str(path),
            "--input-format", "parquet", "--id-col", "id", "--output", str(out),
            "--master", "local[2]", *QUIET]  # fmt: skip
    proc = subprocess.Popen(
        args, stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True
    )
    lines: list[str] = []
    watcher = _watch(
        proc, "sparkdedup stage edges", lambda: os.killpg(proc.pid, signal.SIGKILL), lines
    )
    proc.wait(timeout=900)
    watcher.join(timeout=10)
    assert proc.returncode == -signal.SIGKILL, "".join(lines)[-3000:]
    assert not (out / "duplicates").exists()
    assert (out / "_sparkdedup_lease.json").exists()  # the killed run's, taken over at once
    time.sleep(1)
    again = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=900, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"its process {proc.pid} on this machine has exited" in again.stderr
    assert not (out / "_sparkdedup_lease.json").exists()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["resumed_stages"][:2] == ["minhash", "edges"], stats["resumed_stages"]
    assert _pairs(out) == expected
    assert not [p for p in os.listdir(out) if p.startswith("_sparkdedup_staging")]


def test_a_lost_driver_jvm_is_one_line_naming_its_heap(fault_corpus, tmp_path):
    """The driver JVM alone is killed during the scan (as the system's out-of-memory killer
    would): the CLI says so in one line, names the heap setting and the stage cache to resume
    from, exits with 1 and prints no traceback."""
    path, _ = fault_corpus
    out = tmp_path / "o"
    proc = _fuzzy_process(
        path, out, "--master", "local[2]", "--spark-conf", "spark.driver.memory=1500m"
    )
    killed: list[int] = []
    lines: list[str] = []
    watcher = _watch(proc, "sparkdedup: LSH in", _killer(proc, "SparkSubmit", killed), lines)
    code = proc.wait(timeout=900)
    watcher.join(timeout=10)
    text = "".join(lines)
    assert killed, "no driver JVM was found to kill"
    assert code == 1, text[-3000:]
    errors = [line for line in lines if line.startswith("sparkdedup: ")]
    assert errors[-1].startswith(
        "sparkdedup: error: the Spark driver JVM exited during the run (killed by SIGKILL, most "
        "often by the system's out-of-memory killer: see dmesg). Its heap"
    ), text[-3000:]
    assert "spark.driver.memory (set to 1500m)" in errors[-1]
    assert f"resumes from the stages in {out}/cache" in errors[-1]
    assert "Traceback" not in text
    assert not (out / "duplicates").exists()


# --------------------------------------------------------------------------- huge documents
def test_a_50_mb_document_needs_under_1_gb_in_a_python_worker(tmp_path):
    """Two 50 MB documents (one an edited copy of the other) among small ones: Arrow batches
    close at 64 MB and the kernel hashes long documents in 1 MiB pieces, so no Python worker
    goes past 1 GB; the copy is found."""
    import numpy as np

    rng = np.random.default_rng(9)
    vocab = np.array([f"word{i:05d}" for i in range(20000)])
    big = " ".join(vocab[rng.integers(0, len(vocab), size=50 * 1024 * 1024 // 10)])
    edited = big[:1000] + "CHANGED" + big[1007:]
    small = [" ".join(vocab[rng.integers(0, len(vocab), size=80)]) for _ in range(200)]
    path = tmp_path / "docs"
    path.mkdir()
    texts = [big, *small[:100], edited, *small[100:]]
    pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), path / "a.parquet")
    del big, edited, texts
    proc = subprocess.Popen(
        [sys.executable, "-m", "sparkdedup.cli", "fuzzy", "--input", str(path),
         "--input-format", "parquet", "--id-col", "id", "--output", str(tmp_path / "o"),
         "--master", "local[2]", "--spark-conf", "spark.driver.memory=2g", *QUIET],
        stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    peak = {"rss": 0}

    def sample() -> None:
        while proc.poll() is None:
            try:
                children = psutil.Process(proc.pid).children(recursive=True)
            except psutil.Error:
                break
            for child in children:
                try:
                    if "pyspark.daemon" in " ".join(child.cmdline()):
                        peak["rss"] = max(peak["rss"], child.memory_info().rss)
                except psutil.Error:
                    continue
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate(timeout=900)
    sampler.join(timeout=5)
    assert proc.returncode == 0, err[-3000:]
    assert 0 < peak["rss"] < 1024**3, peak
    assert (101, 0) in _pairs(tmp_path / "o")
