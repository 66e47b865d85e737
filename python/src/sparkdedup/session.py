"""Spark settings for running sparkdedup: one place for the launchers in submit/, the notebooks
and user code (`configure_builder`), in three profiles.

- ``local-cpu``: one machine, ``local[*]`` by default;
- ``cluster-cpu``: a CPU cluster (standalone, YARN, Kubernetes); the master comes from the caller;
- ``rapids-gpu``: the RAPIDS Accelerator for Apache Spark (SQL plugin, GPU scheduling of the
  executors and of the Python workers that run the MinHash, embedding and pairwise UDFs).

``python -m sparkdedup.session --profile P --print-conf`` prints a profile's settings one
``key=value`` a line; the shell launchers read them from there, so there is one source of truth.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sparkdedup import redact
from sparkdedup.config import check_int
from sparkdedup.errors import BackendUnavailableError, ConfigError, DedupError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["PROFILES", "RAPIDS_JAR_ENV", "configure_builder", "session_conf"]

log = logging.getLogger("sparkdedup")

PROFILES = ("local-cpu", "cluster-cpu", "rapids-gpu")
#: Environment variable naming the RAPIDS Accelerator jar (``rapids-4-spark_2.13-<version>.jar``).
RAPIDS_JAR_ENV = "SPARK_RAPIDS_PLUGIN_JAR"
RAPIDS_PLUGIN = "com.nvidia.spark.SQLPlugin"
_RAPIDS_DOWNLOAD = "https://nvidia.github.io/spark-rapids/docs/download.html"
#: Settings whose comma-separated values are merged with what a builder already holds.
_LIST_KEYS = ("spark.jars", "spark.submit.pyFiles")

# Rows per Arrow batch sent to the Python UDFs: a few MB of ~1 KB documents on CPU; larger on
# GPU, where a kernel launch has to be paid for by more rows.
_ARROW_BATCH_ROWS = {"local-cpu": 8192, "cluster-cpu": 8192, "rapids-gpu": 32768}

# Settings shared by every profile: Arrow for the pandas/Arrow UDFs, adaptive query execution
# (coalesces the many small shuffle partitions of the LSH and edge stages), the progress bar.
_COMMON = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.ui.showConsoleProgress": "true",
    "spark.log.level": "WARN",
    # Checkpoints (distributed connected components) are deleted once unused.
    "spark.cleaner.referenceTracking.cleanCheckpoints": "true",
    # Arrow batches to the Python UDFs close at 64 MB as well as at the row limit, so a batch
    # of long documents stays small (sparkdedup.sizing.ARROW_BATCH_BYTES).
    "spark.sql.execution.arrow.maxBytesPerBatch": str(64 * 1024**2),
}

# RAPIDS Accelerator settings (https://nvidia.github.io/spark-rapids/docs/configs.html and
# docs/additional-functionality/rapids-udfs.md, "GPU Support for Pandas UDF").
_RAPIDS = {
    "spark.plugins": RAPIDS_PLUGIN,
    "spark.rapids.sql.enabled": "true",
    "spark.rapids.sql.concurrentGpuTasks": "2",
    "spark.rapids.memory.pinnedPool.size": "2g",
    # The JVM's memory pool keeps half of the GPU; the other half is left to the Python
    # workers (CuPy, cuDF, PyTorch, cuML), which allocate through their own allocators.
    "spark.rapids.memory.gpu.allocFraction": "0.5",
    "spark.rapids.memory.gpu.maxAllocFraction": "0.5",
    "spark.rapids.memory.gpu.minAllocFraction": "0",
    # GPU scheduling of the Python workers: each worker uses its executor's GPU, and the
    # accelerator moves the Arrow batches of mapInArrow/applyInPandas/predict_batch_udf.
    "spark.rapids.sql.python.gpu.enabled": "true",
    "spark.python.daemon.module": "rapids.daemon",
    # No RMM pool inside the Python workers: sparkdedup's kernels allocate with CuPy and
    # PyTorch, which could not use memory reserved by an RMM pool. The fractions bound the
    # pool should a user enable it.
    "spark.rapids.python.memory.gpu.pooling.enabled": "false",
    "spark.rapids.python.memory.gpu.allocFraction": "0.4",
    "spark.rapids.python.memory.gpu.maxAllocFraction": "0.4",
    # 0 = no limit. A stage of the semantic workflow runs two Python UDFs per task (normalise,
    # then centroid distances), and the accelerator's docs warn that a limit below
    # tasks x UDFs per task can deadlock; the GPU task amount bounds the workers instead.
    "spark.rapids.python.concurrentPythonWorkers": "0",
    "spark.locality.wait": "0s",
}


def _is_local(master: str | None) -> bool:
    """True for ``local`` and ``local[N]`` / ``local[*]`` (not ``local-cluster``)."""
    return master is not None and (master == "local" or master.startswith("local["))


def _is_remote_uri(path: str) -> bool:
    """True for a URI of a file system other than the local one (hdfs://, s3a://, dbfs:/)."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]+):", path)  # 2+ letters: not a drive letter
    return match is not None and match.group(1).lower() != "file"


def _rapids_jar(rapids_jar: str | None) -> str:
    jar = rapids_jar or os.environ.get(RAPIDS_JAR_ENV, "")
    if not jar:
        raise BackendUnavailableError(
            f"the rapids-gpu profile needs the RAPIDS Accelerator jar: set {RAPIDS_JAR_ENV}="
            f"/path/to/rapids-4-spark_2.13-<version>.jar (or pass rapids_jar=...); download the "
            f"build matching your Spark and CUDA from {_RAPIDS_DOWNLOAD}"
        )
    if not _is_remote_uri(jar):
        local = re.sub(r"^file:(//)?", "", jar)
        if not os.path.isfile(local):
            where = "rapids_jar" if rapids_jar else RAPIDS_JAR_ENV
            raise BackendUnavailableError(
                f"the RAPIDS Accelerator jar {jar!r} (from {where}) does not exist; download it "
                f"from {_RAPIDS_DOWNLOAD}"
            )
        jar = os.path.abspath(local)
    return jar


def _udf_jar(udf_jar: bool | None) -> str | None:
    if udf_jar is False:
        return None
    try:
        from sparkdedup.jvm import jar_path, unsupported_reason  # noqa: PLC0415 - optional
    except ImportError:
        path = None
    else:
        reason = unsupported_reason()
        if reason is not None and udf_jar:
            raise BackendUnavailableError(reason)
        path = jar_path() if reason is None else None
    if path is None and udf_jar:
        raise BackendUnavailableError(
            "udf_jar=True but the sparkdedup JVM UDF jar has not been built; build it with "
            "'make jar', or pass udf_jar=None to add it only when present"
        )
    return path


def _as_conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_memory(name: str, value: str | None) -> None:
    if value is None:
        return
    text = str(value).strip().lower()
    digits = text.rstrip("kmgtpb")
    suffixes = ("", "k", "m", "g", "t", "kb", "mb", "gb", "tb")
    if not digits.isdigit() or text[len(digits) :] not in suffixes:
        raise ConfigError(f"{name} must be a size such as '4g' or '512m', got {value!r}")


def session_conf(
    profile: str = "local-cpu",
    *,
    master: str | None = None,
    rapids_jar: str | None = None,
    executor_cores: int | None = None,
    executor_memory: str | None = None,
    driver_memory: str | None = None,
    executor_gpus: int = 1,
    task_gpus: float | None = None,
    gpu_scheduling: bool | None = None,
    gpu_discovery_script: str | None = None,
    python_worker_memory: str | None = None,
    arrow_batch_rows: int | None = None,
    udf_jar: bool | None = None,
    extra_conf: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The Spark settings of a profile, as strings.

    Parameters
    ----------
    profile : "local-cpu", "cluster-cpu" or "rapids-gpu".
    master : Spark master URL; "local-cpu" defaults to ``local[*]`` and accepts only local
        masters, the other profiles leave it unset (spark-submit's or the platform's) when None.
    rapids_jar : path or URI of the RAPIDS Accelerator jar (rapids-gpu only); defaults to the
        ``SPARK_RAPIDS_PLUGIN_JAR`` environment variable. A local path must exist.
    executor_cores, executor_memory, driver_memory : ``spark.executor.cores``,
        ``spark.executor.memory``, ``spark.driver.memory`` when given (driver memory only takes
        effect when the settings are applied before the JVM starts).
    executor_gpus : GPUs per executor (rapids-gpu); the RAPIDS Accelerator supports exactly 1.
    task_gpus : GPU share of a task (rapids-gpu); default ``1 / executor_cores``, or 0.125
        (8 concurrent tasks per GPU) when `executor_cores` is not given. With GPU scheduling
        and no `executor_cores`, ``spark.executor.cores`` is set to the tasks a GPU takes
        (``1 / task_gpus``): spark-rapids-ml's KMeans schedules its GPU stage from it.
    gpu_scheduling : set the executor/task GPU resource amounts (rapids-gpu). None: yes unless
        the master is ``local``/``local[N]``, where Spark does not schedule GPUs.
    gpu_discovery_script : ``spark.executor.resource.gpu.discoveryScript`` (needed on YARN and
        Kubernetes; submit/get-gpus-resources.sh is one).
    python_worker_memory : ``spark.executor.pyspark.memory``, the Python workers' memory,
        counted in the executor's container on YARN and Kubernetes. PySpark enforces it as an
        address-space limit (RLIMIT_AS), which CUDA contexts exceed: do not set it with
        rapids-gpu unless the GPU libraries are known to run under it.
    arrow_batch_rows : ``spark.sql.execution.arrow.maxRecordsPerBatch``; default 8192 on CPU,
        32768 on GPU.
    udf_jar : add the sparkdedup JVM UDF jar to ``spark.jars``: None when it has been built,
        True always (error when missing), False never.
    extra_conf : more settings; they override the profile's.

    Returns
    -------
    dict
        Setting name -> value (all strings), in a stable order.

    Raises
    ------
    ConfigError
        An unknown profile or an invalid value.
    BackendUnavailableError
        rapids-gpu without a RAPIDS jar (argument or environment variable), or with a local jar
        path that does not exist; ``udf_jar=True`` without the built UDF jar.
    """
    if profile not in PROFILES:
        raise ConfigError(
            f"profile must be one of {', '.join(map(repr, PROFILES))}, got {profile!r}"
        )
    if master is not None and (not isinstance(master, str) or not master):
        raise ConfigError(f"master must be a Spark master URL or None, got {master!r}")
    if profile == "local-cpu":
        master = master or "local[*]"
        if not _is_local(master):
            raise ConfigError(
                f"profile 'local-cpu' runs on a local master (local[*], local[N]), got "
                f"master={master!r}; use profile='cluster-cpu' for a cluster"
            )
    if executor_cores is not None:
        check_int("executor_cores", executor_cores, 1)
    if arrow_batch_rows is not None:
        check_int("arrow_batch_rows", arrow_batch_rows, 1)
    for name, value in (
        ("executor_memory", executor_memory),
        ("driver_memory", driver_memory),
        ("python_worker_memory", python_worker_memory),
    ):
        _check_memory(name, value)

    conf: dict[str, str] = {}
    if master is not None:
        conf["spark.master"] = master
    if profile == "local-cpu":
        # Local Python workers run this interpreter (which has sparkdedup), not whatever
        # `python3` is first on the PATH; PYSPARK_PYTHON still wins when set.
        conf["spark.pyspark.python"] = os.environ.get("PYSPARK_PYTHON") or sys.executable
    conf.update(_COMMON)
    conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(
        arrow_batch_rows or _ARROW_BATCH_ROWS[profile]
    )
    for key, value in (
        ("spark.executor.cores", executor_cores),
        ("spark.executor.memory", executor_memory),
        ("spark.driver.memory", driver_memory),
        ("spark.executor.pyspark.memory", python_worker_memory),
    ):
        if value is not None:
            conf[key] = str(value)

    jars = []
    if profile == "rapids-gpu":
        jar = _rapids_jar(rapids_jar)
        jars.append(jar)
        conf.update(_RAPIDS)
        # The accelerator's Python daemon (rapids.daemon) is packed inside its jar: the jar goes
        # on the Python path of the workers (standalone, local) and is shipped as a Python file
        # (YARN, Kubernetes).
        conf["spark.submit.pyFiles"] = jar
        if not _is_remote_uri(jar):
            conf["spark.executorEnv.PYTHONPATH"] = jar
        if gpu_scheduling is None:
            gpu_scheduling = not _is_local(master)
        check_int("executor_gpus", executor_gpus, 1)
        if executor_gpus != 1:
            raise ConfigError(
                f"executor_gpus must be 1: the RAPIDS Accelerator supports one GPU per executor, "
                f"got {executor_gpus}"
            )
        if task_gpus is None:
            task_gpus = 1.0 / executor_cores if executor_cores else 0.125
        if (
            isinstance(task_gpus, bool)
            or not isinstance(task_gpus, (int, float))
            or not 0 < task_gpus <= executor_gpus
        ):
            raise ConfigError(
                f"task_gpus must be a number in (0, {executor_gpus}], got {task_gpus!r}"
            )
        if gpu_scheduling:
            conf["spark.executor.resource.gpu.amount"] = str(executor_gpus)
            conf["spark.task.resource.gpu.amount"] = f"{task_gpus:.6g}"
            if executor_cores is None:
                # spark-rapids-ml's stage-level scheduling reads spark.executor.cores.
                conf["spark.executor.cores"] = str(max(1, round(executor_gpus / task_gpus)))
            if gpu_discovery_script:
                conf["spark.executor.resource.gpu.discoveryScript"] = gpu_discovery_script
        if python_worker_memory is not None:
            log.warning(
                "sparkdedup: python_worker_memory=%s limits the Python workers' address space "
                "(RLIMIT_AS), which CUDA contexts can exceed; unset it if GPU UDFs fail to start",
                python_worker_memory,
            )
    udfs = _udf_jar(udf_jar)
    if udfs is not None:
        jars.append(udfs)
    if jars:
        conf["spark.jars"] = ",".join(jars)
    for key, value in (extra_conf or {}).items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"extra_conf keys must be setting names, got {key!r}")
        conf[key] = _as_conf_value(value)
    return conf


def _merge_list(existing: Any, added: str) -> str:
    items = [s.strip() for s in str(existing or "").split(",") if s.strip()]
    for item in added.split(","):
        if item and item not in items:
            items.append(item)
    return ",".join(items)


def configure_builder(
    builder: SparkSession.Builder,
    *,
    profile: str = "local-cpu",
    app_name: str | None = None,
    **options: Any,
) -> SparkSession.Builder:
    """Apply a profile's settings (`session_conf`) to a ``SparkSession.builder``.

    Parameters
    ----------
    builder : pyspark.sql.SparkSession.Builder
        The builder to configure, before ``getOrCreate()``.
    profile : "local-cpu", "cluster-cpu" or "rapids-gpu".
    app_name : the application name, when given.
    **options : the keyword arguments of `session_conf` (master, rapids_jar, executor_cores,
        task_gpus, extra_conf, ...).

    Returns
    -------
    pyspark.sql.SparkSession.Builder
        The same builder, for chaining. Jars and Python files it already holds are kept. With
        ``local-cpu``, ``PYSPARK_PYTHON`` is also set to this interpreter when unset, since a
        session started from Python reads its workers' interpreter from there.

    Raises
    ------
    ConfigError, BackendUnavailableError
        As `session_conf`; nothing is applied then.

    Examples
    --------
    >>> from pyspark.sql import SparkSession
    >>> from sparkdedup.session import configure_builder
    >>> builder = configure_builder(SparkSession.builder, master="local[2]", udf_jar=False)
    >>> builder._options["spark.master"], builder._options["spark.sql.adaptive.enabled"]
    ('local[2]', 'true')
    >>> spark = configure_builder(  # doctest: +SKIP
    ...     SparkSession.builder, profile="rapids-gpu", rapids_jar="/opt/rapids-4-spark_2.13.jar"
    ... ).getOrCreate()
    """
    conf = session_conf(profile, **options)
    current: dict[str, Any] = getattr(builder, "_options", None) or {}
    if "spark.pyspark.python" in conf and not os.environ.get("PYSPARK_PYTHON"):
        # A session started from Python takes its workers' interpreter from this variable,
        # not from the setting (which spark-submit reads).
        os.environ["PYSPARK_PYTHON"] = conf["spark.pyspark.python"]
    if app_name is not None:
        builder = builder.appName(app_name)
    for key, value in conf.items():
        if key in _LIST_KEYS:
            value = _merge_list(current.get(key), value)
        builder = builder.config(key, value)
    return builder


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sparkdedup.session",
        description="Print the Spark settings of a sparkdedup profile.",
    )
    p.add_argument("--profile", required=True, choices=PROFILES)
    p.add_argument("--print-conf", action="store_true", help="print the settings (required)")
    p.add_argument(
        "--format",
        default="lines",
        choices=("lines", "json", "submit"),
        help="lines: key=value per line; json: an object; submit: --conf arguments for a shell",
    )
    p.add_argument("--master", default=None)
    p.add_argument("--rapids-jar", default=None, help=f"default: ${RAPIDS_JAR_ENV}")
    p.add_argument("--executor-cores", type=int, default=None)
    p.add_argument("--executor-memory", default=None)
    p.add_argument("--driver-memory", default=None)
    p.add_argument("--task-gpus", type=float, default=None)
    p.add_argument(
        "--gpu-scheduling",
        default="auto",
        choices=("auto", "on", "off"),
        help="set GPU resource amounts (auto: not on local masters)",
    )
    p.add_argument("--gpu-discovery-script", default=None)
    p.add_argument("--python-worker-memory", default=None)
    p.add_argument("--arrow-batch-rows", type=int, default=None)
    p.add_argument(
        "--udf-jar", default="auto", choices=("auto", "on", "off"), help="add the UDF jar"
    )
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra setting")
    return p


def _parse_conf(items: Sequence[str]) -> dict[str, str]:
    extra = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--conf must be KEY=VALUE, got {redact.malformed(item)}")
        extra[key] = value
    return extra


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sparkdedup.session --profile P --print-conf``; exit code 2 on errors."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.print_conf:
        parser.error("nothing to do: pass --print-conf")
    tri = {"auto": None, "on": True, "off": False}
    try:
        conf = session_conf(
            args.profile,
            master=args.master,
            rapids_jar=args.rapids_jar,
            executor_cores=args.executor_cores,
            executor_memory=args.executor_memory,
            driver_memory=args.driver_memory,
            task_gpus=args.task_gpus,
            gpu_scheduling=tri[args.gpu_scheduling],
            gpu_discovery_script=args.gpu_discovery_script,
            python_worker_memory=args.python_worker_memory,
            arrow_batch_rows=args.arrow_batch_rows,
            udf_jar=tri[args.udf_jar],
            extra_conf=_parse_conf(args.conf),
        )
    except DedupError as err:
        print(f"sparkdedup: error: {err}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(conf, indent=2))
    elif args.format == "submit":
        print(" ".join(f"--conf {shlex.quote(f'{k}={v}')}" for k, v in conf.items()))
    else:
        for key, value in conf.items():
            if "\n" in key or "\n" in value:
                print(f"sparkdedup: error: setting {key!r} contains a newline", file=sys.stderr)
                return 2
            print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
