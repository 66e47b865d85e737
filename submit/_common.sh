# Shared by the sparkdedup launchers (sourced, not run): find Python and spark-submit, parse the
# launcher options, read the profile's Spark settings from `python -m sparkdedup.session`, and
# run spark-submit with python/src/sparkdedup/cli.py as the main file.
#
# Each launcher sets SPARKDEDUP_LAUNCHER, SPARKDEDUP_PROFILE and SPARKDEDUP_USAGE, may set
# SPARKDEDUP_MASTER_REQUIRED=1, SPARKDEDUP_GPU_OPTIONS=1 and a default MASTER, then calls
# `sparkdedup_launch "$@"`.

set -euo pipefail

SPARKDEDUP_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPARKDEDUP_MAIN="$SPARKDEDUP_REPO/python/src/sparkdedup/cli.py"

sparkdedup_usage_error() {
    echo "$SPARKDEDUP_LAUNCHER: error: $*" >&2
    echo "usage: $SPARKDEDUP_USAGE" >&2
    echo "(run with --help for the options)" >&2
    exit 2
}

sparkdedup_help() {
    cat <<EOF
usage: $SPARKDEDUP_USAGE

Runs 'sparkdedup COMMAND ARGS' (fuzzy, exact, semantic, remove or compact-index; see 'sparkdedup COMMAND --help')
through spark-submit with the '$SPARKDEDUP_PROFILE' settings of sparkdedup.session.

Launcher options (before the command):
  --master URL              Spark master${SPARKDEDUP_MASTER_REQUIRED:+ (required)}
  --deploy-mode MODE        client (default) or cluster
  --executor-cores N        spark.executor.cores
  --executor-memory SIZE    spark.executor.memory
  --driver-memory SIZE      spark.driver.memory
  --python-worker-memory S  spark.executor.pyspark.memory
  --arrow-batch-rows N      spark.sql.execution.arrow.maxRecordsPerBatch
  --conf KEY=VALUE          any other Spark setting (repeatable; overrides the profile)
  --dry-run                 print the spark-submit command instead of running it
EOF
    if [ -n "${SPARKDEDUP_GPU_OPTIONS:-}" ]; then
        cat <<EOF
  --task-gpus F             spark.task.resource.gpu.amount (default 1/executor-cores, or 0.125)
  --gpu-discovery-script P  spark.executor.resource.gpu.discoveryScript
                            (default: submit/get-gpus-resources.sh; '' for none)

Environment: SPARK_RAPIDS_PLUGIN_JAR (required) is the RAPIDS Accelerator jar.
EOF
    fi
    cat <<EOF

Environment: SPARK_HOME (else pyspark's own spark-submit), SPARKDEDUP_PYTHON (the Python with
sparkdedup's dependencies; default PYSPARK_DRIVER_PYTHON, else .venv/bin/python, else python3),
PYSPARK_PYTHON (executors' Python), SPARKDEDUP_SUBMIT_ARGS (more spark-submit arguments, split as a shell would, e.g.
"--num-executors 4 --name 'dedup job'").
EOF
}

sparkdedup_python() {
    if [ -n "${SPARKDEDUP_PYTHON:-}" ]; then
        echo "$SPARKDEDUP_PYTHON"
    elif [ -n "${PYSPARK_DRIVER_PYTHON:-}" ]; then
        echo "$PYSPARK_DRIVER_PYTHON"
    elif [ -x "$SPARKDEDUP_REPO/.venv/bin/python" ]; then
        echo "$SPARKDEDUP_REPO/.venv/bin/python"
    elif command -v python3 >/dev/null 2>&1; then
        command -v python3
    else
        command -v python
    fi
}

sparkdedup_spark_submit() {
    if [ -n "${SPARK_HOME:-}" ]; then
        echo "$SPARK_HOME/bin/spark-submit"
        return
    fi
    local pyspark_dir
    pyspark_dir="$("$1" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" || {
        echo "$SPARKDEDUP_LAUNCHER: error: SPARK_HOME is not set and $1 cannot import pyspark" >&2
        exit 2
    }
    echo "$pyspark_dir/bin/spark-submit"
}

sparkdedup_launch() {
    local master="${MASTER:-}" dry_run="" discovery="" discovery_set=""
    local -a session_args=() submit_args=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --help=* | --dry-run=*) sparkdedup_usage_error "option ${1%%=*} takes no value" ;;
            --*=*) # --option=value, as spark-submit takes it: the same as --option value
                set -- "${1%%=*}" "${1#*=}" "${@:2}"
                continue
                ;;
        esac
        case "$1" in
            -h | --help)
                sparkdedup_help
                exit 0
                ;;
            --dry-run)
                dry_run=1
                shift
                ;;
            --master | --deploy-mode | --executor-cores | --executor-memory | --driver-memory | \
                --python-worker-memory | --arrow-batch-rows | --conf | --task-gpus | \
                --gpu-discovery-script)
                [ $# -ge 2 ] || sparkdedup_usage_error "option $1 needs a value"
                case "$1" in
                    --task-gpus | --gpu-discovery-script)
                        [ -n "${SPARKDEDUP_GPU_OPTIONS:-}" ] ||
                            sparkdedup_usage_error "option $1 is only for the GPU launcher"
                        ;;
                esac
                case "$1" in
                    --master) master="$2" ;;
                    --deploy-mode) submit_args+=(--deploy-mode "$2") ;;
                    --gpu-discovery-script)
                        discovery="$2"
                        discovery_set=1
                        ;;
                    *) session_args+=("$1" "$2") ;;
                esac
                shift 2
                ;;
            --)
                shift
                break
                ;;
            -*)
                sparkdedup_usage_error "unknown launcher option '$1' (launcher options come before the command)"
                ;;
            *) break ;;
        esac
    done
    [ $# -gt 0 ] || sparkdedup_usage_error "missing command: fuzzy, exact, semantic, remove or compact-index"
    case "$1" in
        fuzzy | exact | semantic | remove | compact-index) ;;
        *) sparkdedup_usage_error "unknown command '$1': expected fuzzy, exact, semantic, remove or compact-index" ;;
    esac
    if [ -z "$master" ] && [ -n "${SPARKDEDUP_MASTER_REQUIRED:-}" ]; then
        sparkdedup_usage_error "--master is required (e.g. spark://host:7077, yarn, k8s://https://host:6443)"
    fi
    local cli_arg
    for cli_arg in "$@"; do
        if [ "$cli_arg" = "--master" ] || [ "${cli_arg#--master=}" != "$cli_arg" ]; then
            sparkdedup_usage_error "give --master to the launcher, before the command, not to sparkdedup"
        fi
    done
    if [ -n "${SPARKDEDUP_GPU_OPTIONS:-}" ]; then
        if [ -z "$discovery_set" ] && [ -n "$master" ] && [ "$master" != "local" ] &&
            [ "${master#local[}" = "$master" ]; then
            discovery="$SPARKDEDUP_REPO/submit/get-gpus-resources.sh"
        fi
        [ -z "$discovery" ] || session_args+=(--gpu-discovery-script "$discovery")
    fi
    [ -z "$master" ] || session_args+=(--master "$master")

    local py submit conf_text line
    py="$(sparkdedup_python)"
    # The checkout's package first, so the main file and the code it imports always match.
    export PYTHONPATH="$SPARKDEDUP_REPO/python/src${PYTHONPATH:+:$PYTHONPATH}"
    "$py" -c 'import pyspark' 2>/dev/null || {
        echo "$SPARKDEDUP_LAUNCHER: error: $py cannot import pyspark; set SPARKDEDUP_PYTHON to the Python that has sparkdedup's dependencies (make venv installs them in .venv)" >&2
        exit 2
    }
    conf_text="$("$py" -m sparkdedup.session --profile "$SPARKDEDUP_PROFILE" \
        ${session_args[@]+"${session_args[@]}"} --print-conf)" || exit $?
    local -a conf_args=()
    while IFS= read -r line; do
        [ -z "$line" ] || conf_args+=(--conf "$line")
    done <<<"$conf_text"
    if [ -n "${SPARKDEDUP_SUBMIT_ARGS:-}" ]; then
        # Split as a shell would ("--name 'dedup job'" is two words), by Python's shlex: no
        # expansion or command runs, unlike eval.
        local split='import os, shlex, sys
try:
    words = shlex.split(os.environ["SPARKDEDUP_SUBMIT_ARGS"])
except ValueError as err:
    sys.exit(f"SPARKDEDUP_SUBMIT_ARGS cannot be split into words: {err}")
sys.stdout.write("".join(word + "\0" for word in words))' word words_file why
        words_file="$(mktemp)"
        # The words only: what Python says on stderr (a warning) is not an argument.
        if ! why="$("$py" -c "$split" 2>&1 >"$words_file")"; then
            rm -f "$words_file"
            sparkdedup_usage_error "$why"
        fi
        while IFS= read -r -d '' word; do
            submit_args+=("$word")
        done <"$words_file"
        rm -f "$words_file"
    fi
    submit="$(sparkdedup_spark_submit "$py")"
    export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$py}"
    if [ "$SPARKDEDUP_PROFILE" = "local-cpu" ]; then
        export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$py}"
    fi
    export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
    local -a cmd=("$submit" "${conf_args[@]}" ${submit_args[@]+"${submit_args[@]}"} "$SPARKDEDUP_MAIN" "$@")
    if [ -n "$dry_run" ]; then
        # Shell-quoted, credentials' values redacted: a dry run's line is pasted into tickets.
        "$py" -m sparkdedup.redact "${cmd[@]}"
        exit $?
    fi
    exec "${cmd[@]}"
}
