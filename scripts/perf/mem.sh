#!/usr/bin/env bash
# mem.sh LABEL [serve flags]: 3 nodes, 1M keys of 100 bytes written then read for 20s; RSS of each node.
LABEL=$1; shift
$(dirname "$0")/stop.sh 9080
A=$($(dirname "$0")/cluster.sh 3 8 9080 "$@")
${BIN:-./bin/ringkv} bench --addr $A --direct --concurrency 64 --keys 1000000 --value-size 100 --reads 1 --duration 20s --warmup 0s -o json 2>${PERF_DIR:-/tmp/ringkv-perf}/mem-progress.txt | python3 -c 'import json,sys; d=json.load(sys.stdin); print("reads", d["ops_per_sec"], d["errors"])'
grep -i "pre-fill" ${PERF_DIR:-/tmp/ringkv-perf}/mem-progress.txt | tail -2
for p in $(cat ${PERF_DIR:-/tmp/ringkv-perf}/data-9080/pids); do echo "$LABEL pid $p $(grep VmRSS /proc/$p/status) $(grep VmHWM /proc/$p/status)"; done
for port in 9080 9081 9082; do curl -s 127.0.0.1:$port/metrics | grep -E "^go_memstats_(heap_inuse|sys)_bytes|group_commit_" | tr '\n' ' '; echo; done
curl -s -o ${PERF_DIR:-/tmp/ringkv-perf}/heap-$LABEL.pb.gz 127.0.0.1:9080/debug/pprof/heap
du -sh ${PERF_DIR:-/tmp/ringkv-perf}/data-9080/node1/* 
$(dirname "$0")/stop.sh 9080
