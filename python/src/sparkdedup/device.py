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
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from sparkdedup.config import DEVICES
from sparkdedup.errors import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("sparkdedup")

_GPU_HINT = (
    "install the GPU extra (pip install 'sparkdedup[gpu]', which brings cuDF) where the "
    "executors run, give them GPUs (spark.executor.resource.gpu.amount, or the rapids-gpu "
    "profile), or pass device='cpu'"
)
#: Most tasks the probe job runs (one per core up to this).
_PROBE_TASKS = 64
#: Probes started by `probe_in_background`, by (application, device), until resolved.
_PENDING: dict[tuple[str, str], Future[str]] = {}
_PENDING_LOCK = threading.Lock()
#: The threads of background probe and warm-up jobs, until `wait_for_background` joins them.
_BACKGROUND: list[threading.Thread] = []


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


def warm_cpu_kernels(use_64_bit_hash: bool | None) -> None:
    """Load the CPU MinHash and band-hash kernels in this Python worker (their imports and
    numba's cached machine code: about a second), so that the first task of the scan that
    follows on this worker does not pay it. None: nothing to warm."""
    if use_64_bit_hash is None:
        return
    import numpy as np
    import pyarrow as pa

    from sparkdedup.kernels.bandhash import band_hashes
    from sparkdedup.kernels.minhash import kernel_for_device

    params = np.ones(2, dtype=np.uint64 if use_64_bit_hash else np.uint32)
    sig = kernel_for_device("cpu")(pa.array(["warm up"]), params, params, 1, 3, use_64_bit_hash)
    band_hashes(sig.reshape(1, 1, 2), np.arange(1, dtype=np.int64))


#: How a probe's reason begins when a GPU is visible but the MinHash kernel does not run on it.
GPU_KERNEL_FAILS = "a CUDA GPU is visible but the GPU MinHash kernel does not run on it"


def gpu_kernel_runs(use_64_bit_hash: bool) -> tuple[bool, str]:
    """(runs, why not) for the GPU MinHash kernel in this process: it hashes a short text of
    mixed scripts and must give the CPU kernel's values. This compiles the numba CUDA kernels
    where they will run (a head start for the scan's first task), and catches a GPU stack that
    fails only when a kernel compiles (numba-cuda against a NumPy it does not support, say)."""
    import numpy as np
    import pyarrow as pa

    from sparkdedup.kernels.minhash import kernel_for_device

    texts = pa.array(["warm up, é 漢字 🙂", "", None, "ab"])
    params = np.arange(3, 7, dtype=np.uint64 if use_64_bit_hash else np.uint32)
    want = kernel_for_device("cpu")(texts, params, params[::-1], 7, 3, use_64_bit_hash)
    try:
        got = kernel_for_device("gpu")(texts, params, params[::-1], 7, 3, use_64_bit_hash)
    except Exception as err:  # noqa: BLE001 - any failure means the GPU kernel cannot be used
        message = str(err).strip().splitlines()  # no pyspark here: `make gpu-check` has none
        return False, f"{GPU_KERNEL_FAILS} ({type(err).__name__}: {message[0] if message else ''})"
    if not np.array_equal(got, want):
        return False, f"{GPU_KERNEL_FAILS}: it gives other values than the CPU kernel"
    return True, ""


def _probe(batches: Iterator[Any], warm_64_bit: bool | None = None) -> Iterator[Any]:
    import socket

    import pyarrow as pa
    from pyspark import TaskContext

    for _ in batches:
        pass
    context = TaskContext.get()
    resources = context.resources() if context is not None else {}
    assigned = ",".join(resources["gpu"].addresses) if "gpu" in resources else ""
    usable, reason = local_gpu()
    if usable and warm_64_bit is not None:  # a fuzzy run: its MinHash kernel must run here
        usable, reason = gpu_kernel_runs(warm_64_bit)
    if not usable:  # the CPU kernels will run here: load them while the driver reads the input
        try:
            warm_cpu_kernels(warm_64_bit)
        except Exception:  # noqa: BLE001 - only a head start; the scan reports real errors
            log.debug("sparkdedup: warming the CPU kernels failed", exc_info=True)
    yield pa.RecordBatch.from_pylist(
        [{"host": socket.gethostname(), "assigned": assigned, "usable": usable, "reason": reason}]
    )


def executor_gpus(spark: SparkSession, warm_64_bit: bool | None = None) -> list[dict[str, Any]]:
    """One report per probe task: host, GPU addresses Spark assigned it, usable, why not. A
    task without a usable GPU also loads the CPU kernels (`warm_cpu_kernels`) when
    `warm_64_bit` is not None."""
    from sparkdedup.sizing import parallelism

    tasks = max(1, min(parallelism(spark), _PROBE_TASKS))
    rows = (
        spark.range(0, tasks, 1, tasks)
        .mapInArrow(
            partial(_probe, warm_64_bit=warm_64_bit),
            "host string, assigned string, usable boolean, reason string",
        )
        .collect()
    )
    return [r.asDict() for r in rows]


def _probe_key(device: str, spark: SparkSession) -> tuple[str, str] | None:
    try:
        return (spark.sparkContext.applicationId, device)
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext: probes run in turn
        return None


def probe_in_background(device: str, spark: SparkSession, warm_64_bit: bool | None = None) -> None:
    """Start resolving `device` on the executors now, in a thread: the probe job (whose cost is
    mostly starting the Python workers) runs while the caller reads its input, and the next
    `resolve_device(device, spark)` takes its answer (or its error).

    With `warm_64_bit` (the run's MinHash mode), the probe's tasks that find no GPU also load
    the CPU kernels (`warm_cpu_kernels`); with device "cpu" that is all the job does. Workers
    are reused, so the scan's first tasks start warm."""
    key = _probe_key(device, spark)
    if device not in DEVICES or key is None:
        return
    if device == "cpu":
        if warm_64_bit is not None:
            _start(_warm_quietly, (spark, warm_64_bit), "sparkdedup-warm")
        return
    future: Future[str] = Future()

    def probe() -> None:
        try:
            future.set_result(_resolve(device, spark, warm_64_bit))
        except BaseException as err:  # noqa: BLE001 - handed to whoever resolves the device
            future.set_exception(err)

    with _PENDING_LOCK:
        _PENDING[key] = future
    _start(probe, (), "sparkdedup-device-probe")


def _start(target: Any, args: tuple, name: str) -> None:
    # What the thread's mapInArrow job imports on the driver is imported here first: a thread
    # importing pandas (and, on Spark 3.5, setuptools' version checks) while the main thread
    # imports the kernels (numba) was once seen stuck on the module lock of a module both
    # needed (pathlib), on Python 3.11.
    try:
        from pyspark.sql.pandas.utils import (  # noqa: PLC0415
            require_minimum_pandas_version,
            require_minimum_pyarrow_version,
        )

        require_minimum_pandas_version()
        require_minimum_pyarrow_version()
    except Exception:  # noqa: BLE001 - the job itself says what is missing
        pass
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    with _PENDING_LOCK:
        _BACKGROUND[:] = [t for t in _BACKGROUND if t.is_alive()] + [thread]
    thread.start()


def wait_for_background(timeout: float = 60.0) -> None:
    """Join the background probe and warm-up threads (a few seconds at most), so that a session
    stopped early, say on bad input, does not cut one of their jobs off mid-flight."""
    with _PENDING_LOCK:
        threads, _BACKGROUND[:] = list(_BACKGROUND), []
    for thread in threads:
        thread.join(timeout)


def _warm_quietly(spark: SparkSession, warm_64_bit: bool) -> None:
    try:
        executor_gpus(spark, warm_64_bit)
    except Exception:  # noqa: BLE001 - only a head start (the session may be stopping)
        log.debug("sparkdedup: warming the executors' kernels failed", exc_info=True)


def resolve_device(
    device: str, spark: SparkSession | None = None, warm_64_bit: bool | None = None
) -> str:
    """Resolve "auto" | "cpu" | "gpu" to "cpu" or "gpu".

    With `spark`, the executors decide (one small probe job, or the answer of
    `probe_in_background`); without, this process does. "auto" picks "gpu" when every probe
    sees a usable CUDA device, else "cpu"; "gpu" raises BackendUnavailableError, naming a host
    and the reason, when any does not. With `warm_64_bit` (a fuzzy run's MinHash mode) a
    device is usable only where the GPU MinHash kernel runs and matches the CPU kernel
    (`gpu_kernel_runs`), and the probe loads the kernels that will run.
    """
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(map(repr, DEVICES))}, got {device!r}")
    if device == "cpu":
        log.info("sparkdedup device: cpu (requested cpu)")
        return "cpu"
    key = None if spark is None else _probe_key(device, spark)
    if key is not None:
        with _PENDING_LOCK:
            pending = _PENDING.pop(key, None)
        if pending is not None:
            return pending.result()
    return _resolve(device, spark, warm_64_bit)


def _resolve(device: str, spark: SparkSession | None, warm_64_bit: bool | None = None) -> str:
    if spark is None:
        usable, reason = local_gpu()
        if usable and warm_64_bit is not None:
            usable, reason = gpu_kernel_runs(warm_64_bit)
        reports = [{"host": "this process", "assigned": "", "usable": usable, "reason": reason}]
        where = "this process"
    else:
        reports = executor_gpus(spark, warm_64_bit)
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
    unusable = [r for r in missing if r["reason"].startswith(GPU_KERNEL_FAILS)]
    if unusable:  # auto: a GPU is there, so say why it is not used
        log.warning(
            "sparkdedup device: cpu, not the GPU (host %s: %s)",
            unusable[0]["host"],
            unusable[0]["reason"],
        )
    log.info(
        "sparkdedup device: %s (requested %s; %d tasks probed on %s)",
        resolved,
        device,
        len(reports),
        where,
    )
    return resolved


def task_gpu() -> int:
    """The CUDA ordinal of the GPU Spark assigned to the running task, 0 outside a task or when
    Spark assigns no GPUs (one GPU per worker).

    Spark names a GPU by the address its discovery script reported (the first address of the
    task's ``gpu`` resource). Where ``CUDA_VISIBLE_DEVICES`` narrows what the process sees (a
    scheduler or container that hands each worker its GPUs: Slurm, some YARN and Kubernetes
    set-ups), CUDA numbers the visible GPUs from 0, so the address is looked up in that list; an
    address not in it is taken as an ordinal among the visible GPUs when it is one, else 0 (the
    process sees only the GPUs it was given).
    """
    try:
        from pyspark import TaskContext
    except ImportError:  # no Spark here (`make gpu-check`): not in a task
        return 0

    context = TaskContext.get()
    resources = context.resources() if context is not None else {}
    addresses = resources["gpu"].addresses if "gpu" in resources else []
    if not addresses:
        return 0
    return cuda_ordinal(str(addresses[0]).strip(), os.environ.get("CUDA_VISIBLE_DEVICES"))


def cuda_ordinal(address: str, visible: str | None) -> int:
    """The CUDA ordinal of the GPU Spark calls `address`, given ``CUDA_VISIBLE_DEVICES``
    (`task_gpu`)."""
    entries = [v.strip() for v in visible.split(",")] if visible else []
    if address in entries:
        return entries.index(address)
    try:
        ordinal = int(address)
    except ValueError:
        return 0
    if ordinal < 0 or (entries and ordinal >= len(entries)):
        return 0
    return ordinal


@contextmanager
def on_task_gpu() -> Iterator[Any]:
    """CuPy, with the task's own GPU (`task_gpu`) as its current device; on the way out its
    memory pools are emptied, so that a Python worker holds no GPU memory between clusters."""
    import cupy

    with cupy.cuda.Device(task_gpu()):
        try:
            yield cupy
        finally:
            cupy.get_default_memory_pool().free_all_blocks()
            cupy.get_default_pinned_memory_pool().free_all_blocks()
