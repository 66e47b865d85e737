"""What Spark ran for one `fuzzy_duplicates` call, read back from Spark's event log.

Jobs are attributed to the workflow stage that ran them through their job description, which
the benchmark sets from the workflow's own "sparkdedup stage ..." log lines (`StageTagger`).
A stage "ran Python" when its SQL metrics show data sent to Python workers: that is how a
recomputation of the MinHash step (a mapInArrow) would show.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from collections import Counter, defaultdict
from typing import Any

TAG_PREFIX = "bench:"
_PYTHON_METRIC = "data sent to Python workers"
_SQL_START = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart"


class StageTagger(logging.Handler):
    """Labels the Spark jobs of each workflow stage by watching the stage log lines.

    The workflow logs ``sparkdedup stage <name> <rows> rows <s> s`` when a stage ends; the jobs
    before the first line belong to the first stage, and so on. Jobs get the description
    ``bench:<k>`` (k = stages finished so far); `names` maps k to the stage's name afterwards.
    """

    def __init__(self, spark_context: Any, label: str) -> None:
        super().__init__(level=logging.INFO)
        self.sc = spark_context
        self.label = label
        self.names: list[str] = []
        self.seconds: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self._describe()

    def _describe(self) -> None:
        self.sc.setJobDescription(f"{TAG_PREFIX}{self.label}:{len(self.names)}")

    def emit(self, record: logging.LogRecord) -> None:
        if not str(record.msg).startswith("sparkdedup stage") or len(record.args or ()) < 3:
            return
        name, rows, seconds = record.args[0], record.args[1], record.args[2]
        self.names.append(str(name))
        self.seconds[str(name)] = round(float(seconds), 3)
        self.rows[str(name)] = int(rows)
        self._describe()

    def stage_of(self, index: int) -> str:
        return self.names[index] if index < len(self.names) else "after stages (stats, collect)"


def read_event_log(log_dir: str) -> list[dict[str, Any]]:
    """The events of the (single, uncompressed) application log in `log_dir`."""
    files = [p for p in glob.glob(os.path.join(log_dir, "*")) if os.path.isfile(p)]
    if not files:
        return []
    newest = max(files, key=os.path.getmtime)
    with open(newest, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def summarize_jobs(
    events: list[dict[str, Any]], label: str, stage_names: list[str]
) -> dict[str, Any]:
    """Jobs, stages and tasks of the jobs whose description starts with ``bench:<label>:``."""
    prefix = f"{TAG_PREFIX}{label}:"
    completed: dict[int, dict[str, Any]] = {}
    tasks: Counter[int] = Counter()
    run_ms: Counter[int] = Counter()
    job_end: dict[int, int] = {}
    starts = []
    sql_plans: dict[str, str] = {}
    for e in events:
        kind = e.get("Event")
        if kind == "SparkListenerStageCompleted":
            info = e["Stage Info"]
            completed[info["Stage ID"]] = info
        elif kind == "SparkListenerTaskEnd":
            tasks[e["Stage ID"]] += 1
            run_ms[e["Stage ID"]] += (e.get("Task Metrics") or {}).get("Executor Run Time", 0)
        elif kind == "SparkListenerJobStart":
            starts.append(e)
        elif kind == "SparkListenerJobEnd":
            job_end[e["Job ID"]] = e.get("Completion Time", 0)
        elif kind == _SQL_START:
            sql_plans[str(e.get("executionId"))] = e.get("physicalPlanDescription", "")

    per_stage: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "jobs": 0,
            "stages_run": 0,
            "stages_skipped": 0,
            "tasks": 0,
            "python_stages": 0,
            "job_seconds": 0.0,
            "sql_executions": set(),
        }
    )
    total = {"jobs": 0, "stages_run": 0, "stages_skipped": 0, "tasks": 0, "python_stages": 0}
    for e in starts:
        props = e.get("Properties") or {}
        desc = props.get("spark.job.description") or ""
        if not desc.startswith(prefix):
            continue
        index = int(desc[len(prefix) :] or 0)
        name = stage_names[index] if index < len(stage_names) else "after stages (stats, collect)"
        row = per_stage[name]
        row["jobs"] += 1
        total["jobs"] += 1
        row["job_seconds"] += (
            max(0, job_end.get(e["Job ID"], 0) - e.get("Submission Time", 0)) / 1e3
        )
        if props.get("spark.sql.execution.id") is not None:
            row["sql_executions"].add(props["spark.sql.execution.id"])
        for sid in e.get("Stage IDs", []):
            info = completed.get(sid)
            if info is None or sid not in tasks:
                row["stages_skipped"] += 1
                total["stages_skipped"] += 1
                continue
            row["stages_run"] += 1
            row["tasks"] += tasks[sid]
            total["stages_run"] += 1
            total["tasks"] += tasks[sid]
            sent = [
                a.get("Value")
                for a in info.get("Accumulables", [])
                if a.get("Name") == _PYTHON_METRIC
            ]
            if any(str(v) not in ("0", "None", "") for v in sent):
                row["python_stages"] += 1
                total["python_stages"] += 1
    stages = []
    for name, row in per_stage.items():
        row = dict(row)
        row["sql_executions"] = len(row["sql_executions"])
        row["job_seconds"] = round(row["job_seconds"], 2)
        stages.append({"stage": name, **row})
    order = {name: i for i, name in enumerate(stage_names)}
    stages.sort(key=lambda r: order.get(r["stage"], len(order)))
    return {**total, "by_stage": stages}
