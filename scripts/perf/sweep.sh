#!/usr/bin/env bash
# sweep.sh LABEL NODES GROUPS WORKLOADS [serve flags...]: one cluster, 3 runs of each workload.
# WORKLOADS: comma list of w64,w64f,r64,r64f,w1,r1
set -uo pipefail
mkdir -p "${PERF_DIR:-/tmp/ringkv-perf}"
LABEL=$1; N=$2; G=$3; WL=$4; shift 4
BASE=9080
$(dirname "$0")/stop.sh $BASE
A=$($(dirname "$0")/cluster.sh $N $G $BASE "$@") || exit 1
common=(--keys 100000 --value-size 100 --duration 5s --warmup 1s)
prefilled=
for w in ${WL//,/ }; do
  case $w in
    w64) f=(--direct --concurrency 64);; w64f) f=(--concurrency 64);;
    w1) f=(--direct --concurrency 1);;
    r64|r64f|r1)
      if [ -z "$prefilled" ]; then ${BIN:-./bin/ringkv} bench --addr "$A" --direct --concurrency 64 --reads 1 --duration 1s --warmup 0s --keys 100000 --value-size 100 >/dev/null 2>&1; prefilled=1; fi
      case $w in r64) f=(--direct --concurrency 64 --reads 1 --prefill=false);; r64f) f=(--concurrency 64 --reads 1 --prefill=false);; r1) f=(--direct --concurrency 1 --reads 1 --prefill=false);; esac;;
  esac
  $(dirname "$0")/runs.sh "$A" "$LABEL-$w" "${common[@]}" "${f[@]}" 2>/dev/null | grep '^{' | python3 -c '
import json,sys
for l in sys.stdin:
  d=json.loads(l); print("  %-28s %8.0f/s p50 %6.2f p99 %6.2f err %s"%(sys.argv[1],d["ops_per_sec"],d["p50_ms"],d["p99_ms"],d["errors"]))' "$LABEL-$w"
done
$(dirname "$0")/stop.sh $BASE
