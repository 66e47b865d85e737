#!/usr/bin/env bash
# sparkdedup on a CPU cluster (standalone, YARN, Kubernetes) through spark-submit.
#   submit/cluster-cpu.sh --master spark://host:7077 fuzzy --input hdfs:///corpus \
#       --input-format parquet --text-col text --output hdfs:///dedup/
# sparkdedup and its dependencies must be installed in the executors' Python (PYSPARK_PYTHON).
SPARKDEDUP_LAUNCHER="cluster-cpu.sh"
SPARKDEDUP_PROFILE="cluster-cpu"
SPARKDEDUP_USAGE="submit/cluster-cpu.sh --master URL [options] {fuzzy|exact|semantic|remove|compact-index} ARGS..."
SPARKDEDUP_MASTER_REQUIRED=1
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
sparkdedup_launch "$@"
