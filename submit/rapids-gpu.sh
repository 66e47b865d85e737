#!/usr/bin/env bash
# sparkdedup on GPUs with the RAPIDS Accelerator for Apache Spark, through spark-submit.
#   export SPARK_RAPIDS_PLUGIN_JAR=/opt/rapids/rapids-4-spark_2.13-<version>.jar
#   submit/rapids-gpu.sh --master spark://host:7077 --executor-cores 8 fuzzy --device gpu \
#       --input hdfs:///corpus --input-format parquet --text-col text --output hdfs:///dedup/
# Without --master it runs on this machine (local[*]; Spark does not schedule GPUs there).
SPARKDEDUP_LAUNCHER="rapids-gpu.sh"
SPARKDEDUP_PROFILE="rapids-gpu"
SPARKDEDUP_USAGE="submit/rapids-gpu.sh [--master URL] [options] {fuzzy|exact|semantic|remove|compact-index} ARGS..."
SPARKDEDUP_GPU_OPTIONS=1
MASTER="local[*]"
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
if [ -z "${SPARK_RAPIDS_PLUGIN_JAR:-}" ]; then
    case " $* " in *" -h "* | *" --help "*) ;; *)
        echo "$SPARKDEDUP_LAUNCHER: error: SPARK_RAPIDS_PLUGIN_JAR is not set; export it as the path" \
            "of the RAPIDS Accelerator jar (rapids-4-spark_2.13-<version>.jar, from" \
            "https://nvidia.github.io/spark-rapids/docs/download.html)" >&2
        exit 2
        ;;
    esac
fi
sparkdedup_launch "$@"
