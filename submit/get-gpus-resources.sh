#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript): prints this node's
# GPUs as Spark's resource JSON, e.g. {"name": "gpu", "addresses": ["0", "1"]}.
set -euo pipefail
addresses="$(nvidia-smi --query-gpu=index --format=csv,noheader | sed -e 's/ //g' -e 's/.*/"&"/' | paste -sd, -)"
echo "{\"name\": \"gpu\", \"addresses\": [${addresses}]}"
