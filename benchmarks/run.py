"""`make bench`: run every benchmark case and write JSON plus markdown tables.

    python -m benchmarks.run                     # scales 10k, 100k, 1M (about 30-40 min, 2 cores)
    BENCH_QUICK=1 python -m benchmarks.run       # 1-2 minute smoke run on 2,000 documents
    python -m benchmarks.run --scales 10000 --only kernel,sparkdedup

Writes ``benchmarks/results/``: one JSON per case (``<case>-n<docs>.json``), ``summary.json``
(all rows and the machine), ``results.md`` (the tables) and ``logs/`` (each case's output).
With ``--publish`` (what `make bench` passes; never in quick mode) the tables also replace the
generated part of ``benchmarks/RESULTS.md``. Every knob is a flag or a BENCH_* variable
(`benchmarks.settings`).
"""

from __future__ import annotations

import glob
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from benchmarks.corpus import ensure_corpus, similar_planted_pairs
from benchmarks.report import cpu_model, git_commit, publish, render
from benchmarks.settings import BENCH_DIR, Settings, parse_settings

REPO_ROOT = os.path.dirname(BENCH_DIR)
MLLIB_DISTANCE = 0.2  # Jaccard distance < 0.2, i.e. similarity > 0.8 (see RESULTS.md)


@dataclass(frozen=True)
class Row:
    """One line of the tables: a system doing one thing at one scale."""

    key: str
    family: str
    system: str
    what: str
    case: str


ROWS = (
    Row("kernel32", "kernel", "sparkdedup", "MinHash kernel, 32-bit, 1 core", "kernel_sparkdedup"),
    Row("kernel64", "kernel", "sparkdedup", "MinHash kernel, 64-bit, 1 core", "kernel_sparkdedup"),
    Row(
        "ds-kernel", "datasketch", "datasketch", "MinHash.update_batch, 1 core", "kernel_datasketch"
    ),
    Row("sparkdedup", "sparkdedup", "sparkdedup", "fuzzy_duplicates end to end", "e2e_sparkdedup"),
    Row(
        "ds-lsh",
        "datasketch",
        "datasketch",
        "MinHash + MinHashLSH(20x13), 1 core",
        "e2e_datasketch",
    ),
    Row("mllib", "mllib", "Spark MLlib", "MinHashLSH + approxSimilarityJoin", "e2e_mllib"),
)


def _log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def _skip_reason(row: Row, n_docs: int, s: Settings) -> str | None:
    if not s.wants(row.family):
        return f"not selected (--only {','.join(s.only)})"
    if row.key == "kernel64" and n_docs > s.kernel64_max_docs:
        return f"extra row, measured up to {s.kernel64_max_docs:,} docs"
    if row.key == "ds-lsh" and n_docs > s.datasketch_max_docs:
        return (
            f"single-threaded; would take about {n_docs / 400 / 60:.0f} min at ~400 docs/s "
            f"(limit BENCH_DATASKETCH_MAX_DOCS={s.datasketch_max_docs:,})"
        )
    if row.key == "mllib" and n_docs > s.mllib_max_docs:
        return f"too slow at this scale (limit BENCH_MLLIB_MAX_DOCS={s.mllib_max_docs:,})"
    return None


def _spec(row: Row, corpus: dict[str, Any], s: Settings, scratch: str) -> dict[str, Any]:
    n_docs = corpus["n_docs"]
    spec: dict[str, Any] = {
        "case": row.case,
        "corpus": corpus,
        "batch_rows": s.batch_rows,
        "scratch": scratch,
        "master": s.master,
        "driver_memory": s.driver_memory,
        "shuffle_partitions": s.shuffle_partitions,
        "spark_conf": dict(s.spark_conf),
        "warmup": s.warmup,
    }
    if row.case == "kernel_sparkdedup":
        spec.update(use64=row.key == "kernel64", repeats=s.repeats)
    elif row.case == "kernel_datasketch":
        spec.update(sample=min(s.kernel_sample, n_docs), repeats=s.repeats)
    elif row.case == "e2e_sparkdedup":
        spec.update(repeats=s.e2e_repeats_at(n_docs))
    elif row.case == "e2e_mllib":
        spec.update(repeats=s.peer_repeats, tables=s.mllib_tables, threshold=MLLIB_DISTANCE)
    else:
        spec.update(repeats=s.peer_repeats)
    return spec


def run_case(row: Row, corpus: dict[str, Any], s: Settings) -> dict[str, Any]:
    """Run one case in a subprocess (own process group, killed whole on timeout)."""
    name = f"{row.key}-n{corpus['n_docs']}"
    scratch = os.path.join(s.work_dir, "scratch", name)
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    spec = _spec(row, corpus, s, scratch)
    spec_path = os.path.join(scratch, "spec.json")
    result_path = os.path.join(scratch, "result.json")
    with open(spec_path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    log_path = os.path.join(s.out_dir, "logs", f"{name}.log")
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.case", spec_path, result_path],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=s.case_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"status": "failed", "reason": f"timed out after {s.case_timeout} s"}
    if os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as fh:
            result = json.load(fh)
    else:
        result = {"status": "failed", "reason": f"exit code {proc.returncode}, no result"}
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    result["log"] = os.path.relpath(log_path, s.out_dir)
    # The scratch directory (spec, event log) stays until this case runs again.
    return result


def _machine() -> dict[str, Any]:
    import psutil

    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        java_version = (java.stderr or java.stdout).splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        java_version = "unknown"
    versions = {}
    for module in ("pyspark", "numpy", "pyarrow", "numba", "datasketch", "scipy", "pandas"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "not installed"
    commit = git_commit()
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "java": java_version,
        "versions": versions,
        "git_commit": commit,
        "gpu": "used: none (the CPU paths only; no GPU numbers)"
        if shutil.which("nvidia-smi") is None
        else "present but not benchmarked (CPU paths only)",
    }


def main(argv: list[str] | None = None) -> int:
    s = parse_settings(argv)
    os.makedirs(os.path.join(s.out_dir, "logs"), exist_ok=True)
    for old in glob.glob(os.path.join(s.out_dir, "*.json")):
        os.remove(old)
    summary: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "machine": _machine(),
        "settings": s.as_dict(),
        "corpora": {},
        "rows": [],
    }
    _log(f"sparkdedup benchmarks: scales {list(s.scales)}, results in {s.out_dir}")
    for n_docs in s.scales:
        corpus = ensure_corpus(s.work_dir, n_docs, s.seed)
        summary["corpora"][str(n_docs)] = corpus
        origin = "cached" if corpus["cached"] else f"generated in {corpus['generated_seconds']} s"
        _log(f"corpus n={n_docs:,}: {corpus['chars'] / 1e6:.1f} M chars, {origin}")
        if n_docs <= s.jaccard_max_docs:
            similar = similar_planted_pairs(corpus)
            corpus["similar_pairs_path"] = similar.attrs.get("path")
            _log(
                f"    {int((similar['jaccard'] >= 0.8).sum()):,} of {len(similar):,} planted pairs "
                "have true Jaccard >= 0.8"
            )
        for row in ROWS:
            entry: dict[str, Any] = {
                "key": row.key,
                "system": row.system,
                "what": row.what,
                "n_docs": n_docs,
            }
            reason = _skip_reason(row, n_docs, s)
            if reason is not None:
                entry.update(status="skipped", reason=reason)
            else:
                _log(f"n={n_docs:,} {row.system}: {row.what} ...")
                entry.update(run_case(row, corpus, s))
            summary["rows"].append(entry)
            with open(
                os.path.join(s.out_dir, f"{row.key}-n{n_docs}.json"), "w", encoding="utf-8"
            ) as fh:
                json.dump(entry, fh, indent=2, default=str)
            _log("    " + _one_line(entry))
    summary["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    summary["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    with open(os.path.join(s.out_dir, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, default=str)
    table = render(summary)
    with open(os.path.join(s.out_dir, "results.md"), "w", encoding="utf-8") as fh:
        fh.write(table)
    _log(f"wrote {os.path.join(s.out_dir, 'results.md')}")
    if s.publish and s.quick:
        _log("quick run: benchmarks/RESULTS.md left as it is (publish only full runs)")
    elif s.publish:
        publish(table, os.path.join(BENCH_DIR, "RESULTS.md"))
        _log("updated benchmarks/RESULTS.md")
    failed = [r for r in summary["rows"] if r.get("status") == "failed"]
    for r in failed:
        _log(f"FAILED n={r['n_docs']} {r['key']}: {r.get('reason')} (log: {r.get('log')})")
    return 1 if failed else 0


def _one_line(entry: dict[str, Any]) -> str:
    if entry.get("status") != "ok":
        return f"{entry.get('status')}: {entry.get('reason')}"
    parts = [
        f"{entry['median_seconds']:.2f} s",
        f"{entry['docs_per_s']:,.0f} docs/s",
        f"peak {entry['peak_rss_mib']:,.0f} MiB",
    ]
    if "recall" in entry:
        parts.append(f"recall {entry['recall']:.4f} precision {entry['precision']:.4f}")
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
