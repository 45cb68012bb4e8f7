#!/usr/bin/env bash
# runs.sh ADDRS LABEL [bench flags...]: 3 bench runs, one json line each appended to ${PERF_DIR:-/tmp/ringkv-perf}/results.jsonl
ADDRS=$1; LABEL=$2; shift 2
for k in 1 2 3; do
  out=$(${BIN:-./bin/ringkv} bench --addr "$ADDRS" -o json "$@" 2>/dev/null | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')
  echo "{\"label\":\"$LABEL\",\"run\":$k,\"r\":$out}" >> ${PERF_DIR:-/tmp/ringkv-perf}/results.jsonl
  echo "$out"
done
