"""The RAPIDS plan check: which of sparkdedup's Spark operators the RAPIDS Accelerator runs on
the GPU, decided without a GPU.

    python -m benchmarks.rapids_plan [--work DIR] [--json PATH] [--table]

It runs `sparkdedup fuzzy` (JSONL input, user ids), `sparkdedup exact` (Parquet input,
derived ids) and `sparkdedup semantic` (Parquet input with an embedding column, MLlib KMeans)
on small generated data, each as its own Spark application with event logging, then the RAPIDS
qualification tool's core (the jar that PyPI's `spark-rapids-user-tools` bundles, run with
the Spark 3.5 jars of the pyspark beside it) over the event logs. Every operator the tool
reports as unsupported must be in `ALLOWED` with the reason it may stay on the CPU; anything
else is a violation and the command exits 1. `--table` prints the Markdown table of
operators and their GPU status that the README's GPU section holds.

It needs pyspark 3.5 (the tool's jar is built for Scala 2.12), Java and the tool's package:
`make test-spark35-slow` (and `make rapids-plan`) run it from `.venv-spark35`, which holds all
three.
"""

from __future__ import annotations

import argparse
import csv
import glob
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
WORKFLOWS = ("fuzzy", "exact", "semantic")
TOOL_MAIN = "com.nvidia.spark.rapids.tool.qualification.QualificationMain"

# (kind, operator) -> why it may stay on the CPU. `kind` is the tool's "Unsupported Type"
# (Exec, Expr, ReadExec, WriteExec). An Exec reported only because it "contains" an
# unsupported expression or UDF is judged by that expression's own row.
ALLOWED: dict[tuple[str, str], str] = {
    ("Exec", "AdaptiveSparkPlan"): "plan wrapper of adaptive execution; no data work",
    ("Exec", "ColumnarToRow"): (
        "plan wrapper where a columnar scan (Parquet, the in-memory cache) feeds a row "
        "operator; on the GPU the plugin places its own transitions"
    ),
    ("Exec", "CollectMetrics"): (
        "`observe()` row counts and digests (kept + removed = input is checked from them); "
        "it passes rows through, at the cost of one GPU-to-CPU transition of the rows it counts"
    ),
    ("Exec", "CollectLimit"): "`first()`/`take()` of a few rows to the driver",
    ("Exec", "LocalTableScan"): "a few rows built on the driver (the run's stats)",
    ("ReadExec", "Scan text"): (
        "JSONL is read as lines, so that a malformed line can be named, skipped or "
        "quarantined (--bad-records); from_json, which parses them, is GPU-supported"
    ),
    ("Expr", "encode"): (
        "Spark 3.5's UTF-8 validity check of the JSONL lines (`is_valid_utf8` on 4.x), in the "
        "CPU stage of the text scan"
    ),
    # Spark 4.x's names (the check runs on 3.5; a run of the tool over a pyspark 4.3 fuzzy
    # log reports these two besides the above).
    (
        "Expr",
        "isValid",
    ): "`is_valid_utf8`, the UTF-8 check of the JSONL lines, in the text scan's stage",
    ("Exec", "DeserializeToObject"): (
        "the JSONL field types inferred from the first 1,000 lines (Spark 4 reads JSON from a "
        "Dataset of strings)"
    ),
    ("WriteExec", "Execute InsertIntoHadoopFsRelationCommand text"): (
        "the JSONL output is written as text lines (to_json, which is GPU-supported, builds them)"
    ),
}
# Allowed in one workflow only.
ALLOWED_IN: dict[tuple[str, str], tuple[str, str]] = {
    ("Expr", "UDF"): (
        "semantic",
        "MLlib KMeansModel's predict UDF: the CPU KMeans path; on GPU clusters "
        "spark-rapids-ml's KMeans replaces it (--device gpu)",
    ),
}
_CONTAINS = ("Contains unsupported expr", "Contains UDF")
# Operators every run must show the tool as GPU-supported (so that a log the tool could not
# read, or a plan that lost its shuffles, cannot pass).
REQUIRED_SUPPORTED: dict[str, tuple[str, ...]] = {
    "fuzzy": ("PythonMapInArrow", "Exchange", "HashAggregate", "Scan parquet", "WriteFiles"),
    "exact": ("Exchange", "HashAggregate", "Scan parquet", "WriteFiles"),
    "semantic": ("Exchange", "HashAggregate", "Scan parquet", "FlatMapGroupsInPandas"),
}


@dataclass
class AppReport:
    """One application's operators as the tool reports them."""

    workflow: str
    unsupported: list[dict[str, str]] = field(default_factory=list)
    operators: dict[tuple[str, str], bool] = field(default_factory=dict)


def tool_jar() -> str | None:
    """The qualification tool's jar from the installed `spark-rapids-user-tools`, or None.
    (The package is found, not imported: its Python side is not needed.)"""
    spec = importlib.util.find_spec("spark_rapids_pytools")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = list(spec.submodule_search_locations)[0]
    jars = glob.glob(
        os.path.join(
            root, "resources", "generated_files", "core", "jars", "rapids-4-spark-tools*.jar"
        )
    )
    return sorted(jars)[-1] if jars else None


def _spark_jars() -> str:
    import pyspark

    return os.path.join(os.path.dirname(pyspark.__file__), "jars", "*")


def write_inputs(root: str) -> dict[str, str]:
    """Small inputs: 2,000 generated documents as JSONL and as Parquet, and 600 embeddings in
    three clusters with some near copies, as Parquet."""
    import numpy as np
    import pandas as pd
    from sparkdedup.datagen import write_corpus

    paths = {"jsonl": os.path.join(root, "docs_jsonl"), "parquet": os.path.join(root, "docs_pq")}
    write_corpus(paths["jsonl"], 2000, fmt="jsonl", num_files=2, seed=7)
    write_corpus(paths["parquet"], 2000, fmt="parquet", num_files=2, seed=7)
    rng = np.random.default_rng(5)
    centres = 4 * np.eye(3, 16)
    vectors = centres[rng.integers(0, 3, 600)] + rng.normal(size=(600, 16))
    vectors[500:] = vectors[:100] + rng.normal(scale=1e-4, size=(100, 16))
    emb = os.path.join(root, "emb_pq")
    os.makedirs(emb)
    pd.DataFrame({"id": np.arange(600), "emb": list(vectors.astype("float32"))}).to_parquet(
        os.path.join(emb, "part-0.parquet")
    )
    paths["embeddings"] = emb
    return paths


def cli_args(workflow: str, inputs: dict[str, str], out: str) -> list[str]:
    common = ["--output", out, "--master", "local[2]", "--log-level", "WARNING"]
    if workflow == "fuzzy":
        return [
            "fuzzy", "--input", inputs["jsonl"], "--input-format", "jsonl", "--id-col", "id",
            "--device", "cpu", *common,
        ]  # fmt: skip
    if workflow == "exact":
        return ["exact", "--input", inputs["parquet"], "--input-format", "parquet", *common]
    return [
        "semantic", "--input", inputs["embeddings"], "--input-format", "parquet",
        "--embedding-col", "emb", "--id-col", "id", "--n-clusters", "3", "--eps", "0.01",
        "--device", "cpu", *common,
    ]  # fmt: skip


def run_workflows(work: str, inputs: dict[str, str]) -> str:
    """Each workflow's CLI as its own application with event logging; returns the log dir."""
    logs = os.path.join(work, "eventlogs")
    os.makedirs(logs, exist_ok=True)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    for workflow in WORKFLOWS:
        args = cli_args(workflow, inputs, os.path.join(work, f"out_{workflow}")) + [
            "--spark-conf", "spark.eventLog.enabled=true",
            "--spark-conf", f"spark.eventLog.dir=file://{logs}",
        ]  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "sparkdedup.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"sparkdedup {workflow} failed:\n{proc.stderr[-4000:]}")
    return logs


def qualify(jar: str, logs: str, out: str) -> str:
    """Run the qualification tool's core over `logs`; returns its output directory."""
    java = (
        os.path.join(os.environ["JAVA_HOME"], "bin", "java")
        if "JAVA_HOME" in os.environ
        else "java"
    )
    proc = subprocess.run(
        [java, "-Xmx1g", "-cp", f"{jar}{os.pathsep}{_spark_jars()}", TOOL_MAIN, "-o", out, logs],
        capture_output=True,
        text=True,
        timeout=600,
    )
    core = os.path.join(out, "qual_core_output")
    if proc.returncode != 0 or not os.path.isdir(core):
        raise RuntimeError(
            f"the qualification tool failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return core


def _rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_reports(core: str) -> dict[str, AppReport]:
    """The tool's per-application CSVs, keyed by workflow (from the application name)."""
    names = {r["App ID"]: r["App Name"] for r in _rows(os.path.join(core, "apps_summary.csv"))}
    reports: dict[str, AppReport] = {}
    for app_id, name in names.items():
        workflow = name.replace("sparkdedup ", "")
        metrics = os.path.join(core, "qual_metrics", app_id)
        report = AppReport(workflow, _rows(os.path.join(metrics, "unsupported_operators.csv")))
        for row in _rows(os.path.join(metrics, "operators_stats.csv")):
            key = (row["Operator Type"], row["Operator Name"])
            report.operators[key] = report.operators.get(key, True) and row["Supported"] == "true"
        reports[workflow] = report
    return reports


def violations(reports: dict[str, AppReport]) -> list[str]:
    """Each unsupported operator outside the allow-list, and each missing or unsupported
    required operator, as a sentence."""
    found = []
    for workflow in WORKFLOWS:
        report = reports.get(workflow)
        if report is None:
            found.append(f"{workflow}: no application in the tool's output")
            continue
        for row in report.unsupported:
            kind, name = row["Unsupported Type"], row["Unsupported Operator"]
            if kind == "Exec" and row["Details"] in _CONTAINS:
                continue  # its expression has a row of its own
            if _reason(kind, name, workflow):
                continue
            found.append(
                f"{workflow}: {kind} {name!r} is unsupported on the GPU ({row['Details']}; "
                f"SQL {row['SQL ID']}, stage {row['Stage ID']})"
            )
        for name in REQUIRED_SUPPORTED[workflow]:
            status = report.operators.get(("Exec", name))
            if status is None:
                found.append(f"{workflow}: the tool saw no {name!r}")
            elif not status:
                found.append(f"{workflow}: {name!r} is reported unsupported")
    return found


def operator_table(reports: dict[str, AppReport]) -> str:
    """Markdown: each physical operator (Exec) of the three runs, the workflows using it, and
    its GPU status with the reason where it stays on the CPU."""
    seen: dict[str, dict[str, bool]] = {}
    for workflow, report in reports.items():
        for (kind, name), ok in report.operators.items():
            if kind == "Exec":
                seen.setdefault(name, {})[workflow] = ok
    unsupported_by: dict[str, set[str]] = {}
    for workflow, report in reports.items():
        for row in report.unsupported:
            if row["Unsupported Type"] == "Expr":
                op = row["Unsupported Operator"]
                unsupported_by.setdefault(op, set()).add(workflow)
    lines = ["| operator | workflows | on the GPU |", "| --- | --- | --- |"]
    for name in sorted(seen):
        flows = ", ".join(w for w in WORKFLOWS if w in seen[name])
        if all(seen[name].values()):
            status = "yes"
        else:
            reason = (
                _reason("Exec", name) or _reason("ReadExec", name) or _reason("WriteExec", name)
            )
            if reason:
                status = f"no: {reason}"
            else:
                where = ", ".join(w for w in WORKFLOWS if seen[name].get(w) is False)
                status = f"yes, except in {where} where it holds an expression below"
        lines.append(f"| {name} | {flows} | {status} |")
    for op in sorted(unsupported_by):
        flows = ", ".join(w for w in WORKFLOWS if w in unsupported_by[op])
        lines.append(f"| expression `{op}` | {flows} | no: {_reason('Expr', op)} |")
    return "\n".join(lines)


def _reason(kind: str, name: str, workflow: str | None = None) -> str | None:
    """Why (kind, name) may stay on the CPU (in `workflow`, or in any), or None."""
    if (kind, name) in ALLOWED:
        return ALLOWED[(kind, name)]
    only, reason = ALLOWED_IN.get((kind, name), (None, None))
    return reason if only is not None and workflow in (None, only) else None


def check(work: str) -> dict[str, Any]:
    """Run the three workflows and the tool under `work`; the reports and violations."""
    jar = tool_jar()
    if jar is None:
        raise RuntimeError(
            "spark-rapids-user-tools is not installed here (make venv35 installs it into "
            ".venv-spark35)"
        )
    inputs = write_inputs(work)
    logs = run_workflows(work, inputs)
    core = qualify(jar, logs, os.path.join(work, "qualification"))
    reports = read_reports(core)
    return {
        "jar": os.path.basename(jar),
        "violations": violations(reports),
        "table": operator_table(reports),
        "reports": reports,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="working directory (default: a temporary one)")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "rapids_plan.json"))
    parser.add_argument("--table", action="store_true", help="print the README's operator table")
    args = parser.parse_args(argv)
    if args.work:
        result = check(args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="sparkdedup-rapids-plan-") as work:
            result = check(work)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump({k: v for k, v in result.items() if k != "reports"}, fh, indent=2)
    if args.table:
        print(result["table"])
    for line in result["violations"]:
        print(f"VIOLATION {line}")
    print(f"{result['jar']}: {len(result['violations'])} violation(s); JSON in {args.json}")
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
