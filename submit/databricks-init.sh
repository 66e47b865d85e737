#!/bin/bash
# Databricks cluster init script for submit/databricks-job.json: puts the RAPIDS Accelerator jar
# where Databricks loads jars from (under a fixed name, which the job's
# spark.executorEnv.PYTHONPATH names so the Python workers find its rapids.daemon_databricks),
# and installs sparkdedup with its GPU libraries into the cluster's Python.
#   SPARK_RAPIDS_PLUGIN_JAR  the jar (a /Volumes, /Workspace or /dbfs path), from
#                            https://nvidia.github.io/spark-rapids/docs/download.html
#   SPARKDEDUP_WHEEL         the sparkdedup wheel (python -m pip wheel --no-deps python/)
set -euo pipefail
: "${SPARK_RAPIDS_PLUGIN_JAR:?set SPARK_RAPIDS_PLUGIN_JAR in the cluster's spark_env_vars}"
: "${SPARKDEDUP_WHEEL:?set SPARKDEDUP_WHEEL in the cluster's spark_env_vars}"
cp "$SPARK_RAPIDS_PLUGIN_JAR" /databricks/jars/rapids-4-spark_2.13.jar
PIP=/databricks/python/bin/pip
# --no-deps: the wheel pins pyspark, which must stay the runtime's own.
"$PIP" install --no-deps "$SPARKDEDUP_WHEEL"
# spark-rapids-ml imports cuML on the executors; cuML, cuDF, cuVS and RAFT must be of the
# RAPIDS release spark-rapids-ml is (RAPIDS_RELEASE, default 26.6: sparkdedup[gpu]'s), for CUDA 12.
RELEASE="${RAPIDS_RELEASE:-26.6}"
"$PIP" install "numba>=0.60" "sentence-transformers>=3" cupy-cuda12x \
    "spark-rapids-ml==${RELEASE}.*" "cudf-cu12==${RELEASE}.*" "cuml-cu12==${RELEASE}.*" \
    "cuvs-cu12==${RELEASE}.*" "pylibraft-cu12==${RELEASE}.*" "raft-dask-cu12==${RELEASE}.*"
