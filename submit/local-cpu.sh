#!/usr/bin/env bash
# sparkdedup on this machine through spark-submit (profile local-cpu, master local[*]).
#   submit/local-cpu.sh fuzzy --input corpus/ --input-format jsonl --text-col text --output out/
# See submit/README.md; the Spark settings come from `python -m sparkdedup.session`.
SPARKDEDUP_LAUNCHER="local-cpu.sh"
SPARKDEDUP_PROFILE="local-cpu"
SPARKDEDUP_USAGE="submit/local-cpu.sh [--master local[N]] [options] {fuzzy|exact|semantic|remove|compact-index} ARGS..."
MASTER="local[*]"
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
sparkdedup_launch "$@"
