"""Device resolution: "auto" | "cpu" | "gpu", decided where the work runs, on the executors.

The kernels run in the executors' Python workers, so `resolve_device` asks them: one small Spark
job whose tasks report their GPU resources (``TaskContext.resources()``) and whether CuPy sees a
CUDA device. The driver may have no GPU at all. "auto" picks "gpu" only when every probed task
has one; a requested GPU that the executors lack is an error raised before the long work, never
a silent fallback. GPU libraries are only probed, never imported at package import.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sparkdedup.config import DEVICES
from sparkdedup.errors import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("sparkdedup")

_GPU_HINT = (
    "install the GPU extra (pip install 'sparkdedup[gpu]', plus cudf from RAPIDS) where the "
    "executors run, give them GPUs (spark.executor.resource.gpu.amount, or the rapids-gpu "
    "profile), or pass device='cpu'"
)
#: Most tasks the probe job runs (one per core up to this).
_PROBE_TASKS = 64


def local_gpu() -> tuple[bool, str]:
    """(usable, why not) for this process: CuPy installed and seeing a CUDA device."""
    if importlib.util.find_spec("cupy") is None:
        return False, "CuPy is not installed"
    try:
        import cupy  # noqa: PLC0415 - GPU libraries are imported only when asked for

        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as err:  # noqa: BLE001 - any CUDA driver/runtime failure means "no GPU"
        return False, f"CUDA is not usable ({type(err).__name__}: {err})"
    return (count > 0, "" if count > 0 else "no CUDA device is visible")


def gpu_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device in this process."""
    return local_gpu()[0]


def _probe(batches: Iterator[Any]) -> Iterator[Any]:
    import socket

    import pyarrow as pa
    from pyspark import TaskContext

    for _ in batches:
        pass
    context = TaskContext.get()
    resources = context.resources() if context is not None else {}
    assigned = ",".join(resources["gpu"].addresses) if "gpu" in resources else ""
    usable, reason = local_gpu()
    yield pa.RecordBatch.from_pylist(
        [{"host": socket.gethostname(), "assigned": assigned, "usable": usable, "reason": reason}]
    )


def executor_gpus(spark: SparkSession) -> list[dict[str, Any]]:
    """One report per probe task: host, GPU addresses Spark assigned it, usable, why not."""
    from sparkdedup.sizing import parallelism

    tasks = max(1, min(parallelism(spark), _PROBE_TASKS))
    rows = (
        spark.range(0, tasks, 1, tasks)
        .mapInArrow(_probe, "host string, assigned string, usable boolean, reason string")
        .collect()
    )
    return [r.asDict() for r in rows]


def resolve_device(device: str, spark: SparkSession | None = None) -> str:
    """Resolve "auto" | "cpu" | "gpu" to "cpu" or "gpu".

    With `spark`, the executors decide (one small probe job); without, this process does.
    "auto" picks "gpu" when every probe sees a usable CUDA device, else "cpu"; "gpu" raises
    BackendUnavailableError, naming a host and the reason, when any does not.
    """
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(map(repr, DEVICES))}, got {device!r}")
    if device == "cpu":
        log.info("sparkdedup device: cpu (requested cpu)")
        return "cpu"
    if spark is None:
        usable, reason = local_gpu()
        reports = [{"host": "this process", "assigned": "", "usable": usable, "reason": reason}]
        where = "this process"
    else:
        reports = executor_gpus(spark)
        where = "the executors"
    missing = [r for r in reports if not r["usable"]]
    if missing and device == "gpu":
        first = missing[0]
        raise BackendUnavailableError(
            f"device='gpu' was requested but {len(missing)} of {len(reports)} tasks probed on "
            f"{where} found no usable CUDA GPU (host {first['host']}: {first['reason']}); "
            f"{_GPU_HINT}"
        )
    resolved = "cpu" if missing else "gpu"
    log.info(
        "sparkdedup device: %s (requested %s; %d tasks probed on %s)",
        resolved,
        device,
        len(reports),
        where,
    )
    return resolved
