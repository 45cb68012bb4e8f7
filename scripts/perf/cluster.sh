#!/usr/bin/env bash
# cluster.sh NODES GROUPS BASEPORT [extra serve flags...]: start NODES serve processes with
# --pprof, wait until every node is ready and every group has a leader. Prints addr list.
set -euo pipefail
N=$1; G=$2; BASE=$3; shift 3

DIR=${PERF_DIR:-/tmp/ringkv-perf}/data-$BASE; rm -rf "$DIR"; mkdir -p "$DIR"
BIN=$(realpath "${BIN:-./bin/ringkv}")
addrs=()
for i in $(seq 1 $N); do
  h=$((BASE+i-1)); r=$((BASE+100+i-1))
  join=(); [ $i -gt 1 ] && join=(--join 127.0.0.1:$BASE)
  replicas=3; [ $N -lt 3 ] && replicas=$N
  $BIN serve --id node$i --data-dir $DIR/node$i --http-addr 127.0.0.1:$h --raft-addr 127.0.0.1:$r \
    --groups $G --replicas $replicas --pprof --log-level warn "${join[@]}" "$@" >$DIR/node$i.log 2>&1 &
  echo $! >> $DIR/pids
  addrs+=(http://127.0.0.1:$h)
  # wait for node to be ready before the next joins
  ready=
  for t in $(seq 1 300); do curl -fsS -o /dev/null 127.0.0.1:$h/readyz 2>/dev/null && { ready=1; break; }; sleep 0.2; done
  [ -n "$ready" ] || { echo "node$i not ready after 60s; see $DIR/node$i.log" >&2; exit 1; }
done
# wait until placement settles: each group has N' replicas with a leader
for t in $(seq 1 300); do
  out=$(curl -fsS 127.0.0.1:$BASE/admin/groups 2>/dev/null || true)
  if [ -n "$out" ] && python3 - "$out" $N $G <<'PY'
import json,sys
d=json.loads(sys.argv[1]); n=int(sys.argv[2]); g=int(sys.argv[3])
want=min(3,n)
gs=[x for x in d["groups"] if x["id"]!=0]
ok=len(gs)==g and all(x.get("leader") and len(x["replicas"])==want and all(r["voter"] for r in x["replicas"]) for x in gs)
leaders={}
for x in gs: leaders[x["leader"]]=leaders.get(x["leader"],0)+1
ok=ok and (max(leaders.values())-min(leaders.values())<=1 if len(leaders)==min(n,g) else False)
sys.exit(0 if ok else 1)
PY
  then settled=1; break; fi
  sleep 0.5
done
[ -n "${settled:-}" ] || { echo "cluster not settled after 150s (replicas, leaders balanced)" >&2; exit 1; }
IFS=,; echo "${addrs[*]}"
