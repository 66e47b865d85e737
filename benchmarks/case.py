"""One benchmark case in its own process: ``python -m benchmarks.case SPEC.json RESULT.json``.

Each case runs in a fresh process so that its peak memory (sampled over the process tree,
`benchmarks.memory`) is its own, and so that a crash or a timeout costs one row, not the run.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any


def _cases() -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    from benchmarks import single_node, spark_cases

    return {
        "kernel_sparkdedup": single_node.kernel_sparkdedup,
        "kernel_datasketch": single_node.kernel_datasketch,
        "e2e_datasketch": single_node.e2e_datasketch,
        "e2e_sparkdedup": spark_cases.e2e_sparkdedup,
        "e2e_mllib": spark_cases.e2e_mllib,
    }


def main(argv: list[str]) -> int:
    spec_path, result_path = argv
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    try:
        result = {"status": "ok", **_cases()[spec["case"]](spec)}
    except Exception as err:  # noqa: BLE001 - reported as a failed row, never hidden
        traceback.print_exc()
        result = {"status": "failed", "reason": f"{type(err).__name__}: {err}"[:500]}
    with open(result_path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2, default=str)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
