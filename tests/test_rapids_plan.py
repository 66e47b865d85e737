"""The RAPIDS plan check (benchmarks/rapids_plan.py): the fuzzy, exact and semantic CLIs with
event logging, the RAPIDS qualification tool over their logs, and no operator unsupported on
the GPU outside the documented allow-list.

The tool's jar is built for Spark 3.5 (Scala 2.12), so the end-to-end test runs in the
pyspark 3.5 pass of the slow tier (`make test-spark35-slow`, whose venv holds
spark-rapids-user-tools); there it must run (SPARKDEDUP_RAPIDS_PLAN=1), elsewhere it skips
saying so. The allow-list logic is tested in both passes.
"""

from __future__ import annotations

import os
import sys

import pyspark
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import rapids_plan  # noqa: E402
from benchmarks.rapids_plan import AppReport, violations  # noqa: E402

_REQUIRED = os.environ.get("SPARKDEDUP_RAPIDS_PLAN") == "1"


def _row(kind: str, name: str, details: str = "Unsupported") -> dict[str, str]:
    return {
        "SQL ID": "3",
        "Stage ID": "7",
        "Unsupported Type": kind,
        "Unsupported Operator": name,
        "Details": details,
    }


def _report(workflow: str, *rows: dict[str, str]) -> AppReport:
    ops = {("Exec", name): True for name in rapids_plan.REQUIRED_SUPPORTED[workflow]}
    return AppReport(workflow, list(rows), ops)


def test_violations_follow_the_allow_list() -> None:
    clean = {w: _report(w) for w in rapids_plan.WORKFLOWS}
    assert violations(clean) == []

    reports = dict(clean)
    reports["fuzzy"] = _report(
        "fuzzy",
        _row("Exec", "AdaptiveSparkPlan"),  # allowed everywhere
        _row("Exec", "Filter", "Contains unsupported expr"),  # judged by its expression
        _row("Expr", "forall"),  # not allowed
        _row("Exec", "Window"),  # not allowed
        _row("Expr", "UDF", "Is UDF"),  # allowed in semantic only
    )
    reports["semantic"] = _report("semantic", _row("Expr", "UDF", "Is UDF"))
    found = violations(reports)
    assert len(found) == 3, found
    assert all(line.startswith("fuzzy: ") for line in found)
    assert any("'forall'" in line for line in found)
    assert any("'Window'" in line for line in found)
    assert any("'UDF'" in line for line in found)

    # A run the tool did not read, or one whose shuffle is missing or on the CPU, fails too.
    missing = dict(clean)
    del missing["exact"]
    assert violations(missing) == ["exact: no application in the tool's output"]
    cpu_shuffle = dict(clean)
    cpu_shuffle["fuzzy"] = _report("fuzzy")
    cpu_shuffle["fuzzy"].operators[("Exec", "Exchange")] = False
    assert violations(cpu_shuffle) == ["fuzzy: 'Exchange' is reported unsupported"]
    cpu_shuffle["fuzzy"].operators.pop(("Exec", "Exchange"))
    assert violations(cpu_shuffle) == ["fuzzy: the tool saw no 'Exchange'"]


def _skip_reason() -> str | None:
    if not pyspark.__version__.startswith("3.5"):
        return f"the RAPIDS qualification tool's jar needs Spark 3.5 (this is {pyspark.__version__}); make test-spark35-slow runs it"
    if rapids_plan.tool_jar() is None:
        return "spark-rapids-user-tools is not installed (make venv35 installs it)"
    return None


@pytest.mark.slow
def test_rapids_plan_of_the_three_clis(tmp_path) -> None:
    reason = _skip_reason()
    if reason:
        if _REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    result = rapids_plan.check(str(tmp_path))
    assert result["violations"] == [], "\n".join(result["violations"])
    reports = result["reports"]
    # The formulations rewritten for the GPU stay so: explode (not inline) for the band keys,
    # exists (not forall) for the embedding check.
    assert reports["fuzzy"].operators[("Exec", "Generate")] is True
    assert ("Expr", "inline") not in reports["fuzzy"].operators
    assert reports["semantic"].operators.get(("Expr", "exists")) is True
    assert ("Expr", "forall") not in reports["semantic"].operators
    assert "| Exchange | fuzzy, exact, semantic | yes |" in result["table"]
