"""The benchmark harness (`make bench`) in its quick mode on a tiny corpus, so it cannot rot:
every case runs, writes valid JSON, and the markdown has the expected rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from benchmarks.report import BEGIN, END, publish  # noqa: E402
from benchmarks.run import ROWS  # noqa: E402
from benchmarks.settings import FULL_SCALES, QUICK_SCALES, parse_settings  # noqa: E402


def test_settings_defaults_quick_and_environment() -> None:
    full = parse_settings([], environ={})
    assert full.scales == FULL_SCALES and full.repeats >= 3 and not full.quick
    quick = parse_settings([], environ={"BENCH_QUICK": "1"})
    assert quick.quick and quick.scales == QUICK_SCALES and quick.repeats == 1
    env = {"BENCH_SCALES": "300,1_000", "BENCH_ONLY": "kernel,mllib", "BENCH_REPEATS": "5"}
    s = parse_settings(["--repeats", "4"], environ=env)
    assert s.scales == (300, 1000) and s.only == ("kernel", "mllib") and s.repeats == 4
    assert s.e2e_repeats_at(100_000) == s.e2e_repeats and s.e2e_repeats_at(1_000_000) == 1
    with pytest.raises(SystemExit):
        parse_settings(["--only", "nonsense"], environ={})


def test_publish_replaces_only_the_generated_block(tmp_path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(f"# Title\n\nprose before\n\n{BEGIN}\nold\n{END}\n\nprose after\n")
    publish("# heading\n\nnew table\n", str(path))
    text = path.read_text()
    assert "prose before" in text and "prose after" in text and "new table" in text
    assert "old" not in text and text.count(BEGIN) == 1 and text.count(END) == 1


@pytest.mark.slow
def test_quick_run_writes_json_and_tables(tmp_path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    results_md = os.path.join(REPO_ROOT, "benchmarks", "RESULTS.md")
    before = open(results_md, encoding="utf-8").read() if os.path.exists(results_md) else None
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, BENCH_SHUFFLE_PARTITIONS="4", BENCH_WARMUP="0")
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--publish", "--scales", "300"]
    cmd += ["--out", str(out), "--work", str(work)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    summary = json.loads((out / "summary.json").read_text())
    rows = {r["key"]: r for r in summary["rows"]}
    assert set(rows) == {row.key for row in ROWS}
    for row in ROWS:
        r = rows[row.key]
        assert r["status"] == "ok", (row.key, r.get("reason"))
        assert r["median_seconds"] > 0 and r["docs_per_s"] > 0 and r["peak_rss_mib"] > 0
        assert json.loads((out / f"{row.key}-n300.json").read_text())["status"] == "ok"
    for key in ("sparkdedup", "ds-lsh", "mllib"):
        assert 0.5 <= rows[key]["recall"] <= 1 and rows[key]["precision"] >= 0.9
    assert rows["ds-kernel"]["kernel_speedup"] > 1
    jobs = rows["sparkdedup"]["spark_jobs"][0]
    assert jobs["jobs"] > 0 and jobs["python_stages"] >= 1
    assert {"minhash", "ids", "edges", "components", "duplicates"} <= {
        s["stage"] for s in jobs["by_stage"]
    }

    table = (out / "results.md").read_text()
    for text in [row.what for row in ROWS] + [
        "## MinHash kernel per core",
        "## Comparison on the same corpus",
        "## Scaling of sparkdedup",
        "## Spark jobs of one `fuzzy_duplicates` call",
        "| system | what | docs | repeats | median s | docs/s | Mchar/s | peak RSS MiB |",
    ]:
        assert text in table, text
    # a quick run never overwrites the committed numbers
    after = open(results_md, encoding="utf-8").read() if os.path.exists(results_md) else None
    assert after == before


def test_scale_report_reads_gc_logs_medians_and_renders(tmp_path):
    """The scale benchmark's own arithmetic: the driver's heap after collection from a GC log,
    the derived/user ratio from alternated runs, and a table per case."""
    from benchmarks import scale

    log = tmp_path / "gc.log"
    log.write_text(
        "[0.5s][info][gc] GC(0) Pause Young (Allocation Failure) 96M->12M(368M) 8.1ms\n"
        "[2.0s][info][gc] GC(1) Pause Full (Ergonomics) 300M->140M(512M) 90.2ms\n"
        "[3.0s][info][gc] GC(2) Pause Young (Allocation Failure) 200M->30M(512M) 5.0ms\n"
    )
    assert scale._heap_after_gc(str(log)) == 140
    assert scale._heap_after_gc(str(tmp_path / "none.log")) is None

    def row(docs, ids, wall):
        return {
            "docs": docs,
            "ids": ids,
            "wall_seconds": wall,
            "s_per_1000_docs": wall / docs * 1000,
            "stage_seconds": {"minhash": 1.0},
            "by_stage_mib": {"edges": {"shuffled": 1, "largest_shuffle": 1, "read": 0}},
            "shuffled_mib": 1,
            "peak_rss_mib": {"driver_python": 1, "jvm": 2, "python_worker": 3},
        }

    rows = [row(10, "user", 5.0), row(100, "user", 10.0), row(100, "derived", 12.0)]
    rows += [row(100, "derived", 14.0), row(100, "user", 12.0)]
    assert scale.derived_ratio(rows) == {"docs": 100, "user": 11.0, "derived": 13.0, "ratio": 1.182}
    text = scale.render(
        {
            "finished": "now",
            "machine": "m",
            "commit": "c",
            "measured": {"scale": "now, commit c", "real": "before, commit b"},
            "scale": rows,
        }
    )
    assert "median 11.0 s with user ids, 13.0 s with derived ids, 1.182x" in text
    assert "Cases run at different times: scale now, commit c; real before, commit b." in text


def test_semantic_split_corpus_report_and_publish(tmp_path) -> None:
    """The oversized-cluster benchmark writes its vectors in chunks with planted copies, and
    its report goes into RESULTS.md between its markers, replacing an earlier one."""
    import pyarrow.parquet as pq

    from benchmarks import semantic_split as bench

    docs = bench.write_vectors(str(tmp_path / "v"), 120, 8)
    table = pq.read_table(docs)
    assert table.num_rows == 120 and table.column("id").to_pylist() == list(range(120))
    emb = table.column("emb").to_pylist()
    assert emb[1] == emb[0] and emb[101] == emb[100] and emb[2] != emb[1]
    result = {
        "docs": 120,
        "dim": 8,
        "block": 25,
        "runs": {
            "split": {
                "wall_seconds": 9.5,
                "pairwise_seconds": 2.0,
                "python_worker_mib": 300,
                "removed_docs": 2,
            },
            "whole": {
                "wall_seconds": 9.0,
                "pairwise_seconds": 1.5,
                "python_worker_mib": 310,
                "removed_docs": 2,
            },
        },
    }
    text = bench.render(result)
    assert "| split | 9.5 | 2.0 | 300 | 2 |" in text and "blocks of 25 rows" in text
    md = tmp_path / "RESULTS.md"
    md.write_text("# results\n", encoding="utf-8")
    bench.publish(text, str(md))
    bench.publish(text.replace("9.5", "8.5"), str(md))
    body = md.read_text(encoding="utf-8")
    assert body.count(bench.BEGIN) == 1 and "| split | 8.5 |" in body and "9.5" not in body


def test_semantic_scale_corpus_report_and_publish(tmp_path) -> None:
    """The 1M-embedding benchmark's corpus: unit vectors near their topic, every fiftieth a
    near copy of the one before it; its report lists each stage and goes between its markers."""
    import numpy as np
    import pyarrow.parquet as pq

    from benchmarks import semantic_scale as bench

    docs = bench.write_topic_vectors(str(tmp_path / "t"), 200, 16, topics=4)
    table = pq.read_table(docs)
    assert table.column("id").to_pylist() == list(range(200))
    emb = np.array(table.column("emb").to_pylist(), dtype=np.float64)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    near = np.arange(1, 200, 50)
    assert np.all(np.sum(emb[near] * emb[near - 1], axis=1) > 0.999)
    others = np.sum(emb[2:50] * emb[1:49], axis=1)
    assert np.all(others < 0.99)  # the rest are not near copies of their neighbour
    result = {
        "docs": 200,
        "dim": 16,
        "n_clusters": 4,
        "fit_fraction": 0.1,
        "driver_memory": "4g",
        "wall_seconds": 30.5,
        "stage_seconds": {"pairwise": 2.0, "ids": 1.0, "kmeans": 5.0, "write_outputs": 3.0},
        "peak_rss_mib": {"driver_python": 150, "jvm": 2000, "python_worker": 400},
        "removed_docs": 4,
        "largest_cluster": 70,
        "read_mib": 1,
        "shuffled_mib": 2,
    }
    text = bench.render(result)
    assert "| wall s | ids s | kmeans s | pairwise s | write_outputs s |" in text
    assert "| 30.5 | 1.0 | 5.0 | 2.0 | 3.0 | 150 / 2000 / 400 | 1 MiB | 2 MiB | 70 | 4 |" in text
    md = tmp_path / "RESULTS.md"
    md.write_text("# results\n", encoding="utf-8")
    bench.publish(text, str(md))
    bench.publish(text.replace("30.5", "31.5"), str(md))
    body = md.read_text(encoding="utf-8")
    assert body.count(bench.BEGIN) == 1 and "| 31.5 |" in body and "30.5" not in body
    assert "## Semantic dedup: 1M embeddings" in body


def test_semantic_scale_splits_the_kmeans_stage_by_log_timestamps() -> None:
    from benchmarks import semantic_scale as bench

    log = [
        "2026-11-30 14:27:49,758 sparkdedup stage ids            1000 rows      4.1 s  (checked)",
        "2026-11-30 14:28:12,255 sparkdedup kmeans: fitting on 100 of 1000 documents",
        "2026-11-30 14:31:54,670 sparkdedup kmeans: 100 documents of dimension 8, 10 centroids "
        "(k=10, block solver)",
        "2026-11-30 14:32:23,802 sparkdedup stage kmeans            1000 rows    274.0 s  (written)",
    ]
    assert bench._kmeans_parts(log) == {
        "checks_and_sample": 22.5,
        "fit": 222.4,
        "assign_and_write": 29.1,
    }
    assert bench._kmeans_parts(log[:1]) == {}


def test_kernel_scripts_corpora_and_report(monkeypatch) -> None:
    """The per-script kernel benchmark's corpora are in their scripts, and its quick run
    measures every script in both modes with datasketch beside them."""
    from benchmarks import kernel_scripts as bench

    cjk = bench.corpus("cjk", 3, chars=200)
    assert len(cjk) == 3 and all(len(t) >= 200 for t in cjk)
    assert sum(0x4E00 <= ord(c) < 0x9FFF for c in cjk[0]) > 0.8 * len(cjk[0])
    assert any(ord(c) >= 0x1F300 for c in "".join(bench.corpus("emoji", 2, chars=300)))
    stored = {}
    monkeypatch.setattr(bench, "write_result", lambda name, result: stored.update(result))
    monkeypatch.setenv("BENCH_QUICK", "1")
    assert bench.main([]) == 0
    rows = stored["rows"]
    assert [r["script"] for r in rows] == list(bench.SCRIPTS)
    assert all(r["mchar_s_32"] > 0 and r["mchar_s_64"] > 0 for r in rows)
    assert all(r["datasketch_mchar_s"] > 0 for r in rows)
    text = bench.markdown(stored)
    assert text.count("\n| ") == 1 + 1 + len(rows) and "| cjk | 100 | " in text
    # The CPU is named beside the figures: 64-bit mode's speed depends on AVX-512.
    info = stored["cpu"]
    assert info["llvm_cpu"] and f"compiled for {info['llvm_cpu']}" in text
    wide = dict(info, simd=["avx2", "avx512f", "avx512dq"])
    narrow = dict(info, simd=["avx2"])
    assert "one instruction each" in bench.markdown(dict(stored, cpu=wide))
    assert "three 32-bit ones" in bench.markdown(dict(stored, cpu=narrow))
    no_dq = dict(info, simd=["avx2", "avx512f"])  # no 64-bit multiply without avx512dq
    assert "three 32-bit ones" in bench.markdown(dict(stored, cpu=no_dq))
    assert "CPU: not recorded" in bench.markdown({k: v for k, v in stored.items() if k != "cpu"})


def test_incremental_report_shows_the_new_data_alone_beside_the_two_runs() -> None:
    """The incremental benchmark's table: the full run, the run against the index and the
    new documents alone (its floor), with both ratios to the full run."""
    from benchmarks.incremental import markdown

    def row(docs, work, wall, seconds, task_s):
        return {"docs": docs, "removed": 5, "work_s": work, "wall_s": wall, "works": [work],
                "walls": [wall], "seconds": seconds, "task_s": task_s, "jobs": 30}  # fmt: skip

    result = {
        "old": 1000, "new": 100, "commit": "abc", "when": "now",
        "index": {"wall_s": 9.0, "work_s": 5.0, "documents": 950},
        "full": row(1100, 40.0, 50.0, {"edges": 10.0, "minhash": 12.0}, 70.0),
        "incremental": row(100, 20.0, 30.0, {"edges": 6.0, "index_ids": 0.5}, 28.0),
        "new_alone": row(100, 12.0, 21.0, {"edges": 3.0}, 17.5),
        "work_ratio": 0.5, "wall_ratio": 0.6, "alone_work_ratio": 0.3, "alone_wall_ratio": 0.42,
        "task_ratio": 0.4, "alone_task_ratio": 0.25,
    }  # fmt: skip
    text = markdown(result)
    assert "| new alone | 100 | 5 | 12.0 (12.0) | 21.0 (21.0) | 17.5 | 30 |" in text
    assert "**0.50x** of the work" in text and "0.30x of the work, 0.42x of the wall" in text
    assert "By task time: 0.40x (new alone 0.25x)." in text
    assert "| new alone | 3.0 | - | - |" in text  # edges, index_ids, minhash: sorted
    assert (
        "one run each" in text
        and "(`python -m benchmarks.incremental --old 1000 --new 100`)" in text
    )
    del result["new_alone"]  # a result written before the floor was measured still renders
    assert "new alone |" not in markdown(result)
    for row_ in (result["full"], result["incremental"]):  # ... and before task time was
        del row_["task_s"], row_["jobs"]
    del result["task_ratio"], result["alone_task_ratio"]
    older = markdown(result)
    assert "| full | 1,100 | 5 | 40.0 (40.0) | 50.0 (50.0) | - | - |" in older
    assert "By task time" not in older


def test_skew_report_shows_the_distinct_half_alone() -> None:
    """The exact-copies table: all distinct, half copies, and the copies corpus's distinct half
    alone (the floor of the copies' run), with both ratios; an older result without the
    floor still renders."""
    from benchmarks.scale import render

    def kind(wall, work, removed):
        return {"median_wall_seconds": wall, "median_work_seconds": work,
                "removed_docs": removed, "stage_seconds": {}, "spark_jobs": 20}  # fmt: skip

    skew = {
        "docs": 200_000, "repeats": 3, "distinct": kind(30.0, 18.0, 0),
        "copies": kind(33.0, 19.5, 99_999), "half": kind(26.0, 15.0, 0),
        "ratio_wall": 1.1, "ratio_work": 1.083, "half_ratio_wall": 0.867, "half_ratio_work": 0.833,
    }  # fmt: skip
    meta = {"finished": "now", "machine": "test", "commit": "abc"}
    text = render({**meta, "skew": skew})
    assert "| its distinct half alone (no copies) | 26.0 | 15.0 | 0 | 20 |" in text
    assert "The distinct half alone: 0.867x the wall time, 0.833x the stages'" in text
    for key in ("half", "half_ratio_wall", "half_ratio_work"):
        del skew[key]
    older = render({**meta, "skew": skew})
    assert "| half copies of one document | 33.0 | 19.5 | 99,999 | 20 |" in older
    assert "distinct half alone" not in older


def test_spark_work_sums_the_task_time_of_an_event_log(tmp_path) -> None:
    """Jobs and task core-seconds from a run's event log (the incremental benchmark's)."""
    from benchmarks.scale import spark_work

    events = [
        {"Event": "SparkListenerJobStart", "Job ID": 0},
        {"Event": "SparkListenerTaskEnd", "Task Metrics": {"Executor Run Time": 1500}},
        {"Event": "SparkListenerTaskEnd", "Task Metrics": {"Executor Run Time": 250}},
        {"Event": "SparkListenerTaskEnd", "Task Metrics": None},  # a task that failed
        {"Event": "SparkListenerJobStart", "Job ID": 1},
    ]
    (tmp_path / "app-1").write_text("\n".join(json.dumps(e, separators=(",", ":")) for e in events))
    (tmp_path / "gc.log").write_text("not an event log")
    assert spark_work(str(tmp_path)) == {"jobs": 2, "task_seconds": 1.8}


def test_incremental_sizes_publish_to_blocks_of_their_own(tmp_path) -> None:
    """Each pair of sizes has its own RESULTS.md block: publishing the 10M point leaves the
    1M point (the default sizes, the markers of earlier runs) in place."""
    from benchmarks.incremental import markers
    from benchmarks.report import publish_block

    default = markers(1_000_000, 100_000)
    assert default[0] == "<!-- generated by `python -m benchmarks.incremental --publish`: begin -->"
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n")
    publish_block("one million", str(results), *default, "Incremental")
    publish_block("ten million", str(results), *markers(10**7, 10**6), "Incremental, 10M")
    publish_block("one million again", str(results), *default, "Incremental")
    text = results.read_text()
    assert "one million again" in text and "ten million" in text
    assert "one million\n" not in text and text.count("## Incremental") == 2


def test_scale_refuses_a_partial_publish_without_the_last_full_run(tmp_path, capsys) -> None:
    """`--only ... --publish` renders RESULTS.md's block from scale.json: without the last
    full run's file the other cases would vanish, so it stops before running anything."""
    from benchmarks.scale import main as scale_main

    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        scale_main(["--only", "skew", "--publish", "--out", str(out), "--work", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--publish with --only needs the last full run's" in capsys.readouterr().err
    assert not out.exists()  # nothing ran, nothing was written
