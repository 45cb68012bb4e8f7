#!/usr/bin/env bash
# cluster.sh NODES GROUPS BASEPORT [extra serve flags...]: start NODES serve processes with
# --pprof, wait until every node is ready and every group has a leader. Prints addr list.
# SECURE=1: secure mode. `ringkv cert create-cluster` makes certificates in DATA/certs
# (DATA/certs/client: the CA and the admin client certificate), every node gets
# --certs-dir (TLS on both ports, authentication on) and the addresses are https;
# node1 writes the bootstrap admin token to DATA/node1/admin.token.
set -euo pipefail
N=$1; G=$2; BASE=$3; shift 3

DIR=${PERF_DIR:-/tmp/ringkv-perf}/data-$BASE; rm -rf "$DIR"; mkdir -p "$DIR"
BIN=$(realpath "${BIN:-./bin/ringkv}")
scheme=http; curl=(curl -fsS); secure=()
if [ -n "${SECURE:-}" ]; then
  $BIN cert create-cluster --certs-dir $DIR/certs --nodes $(seq -s, -f 'node%g' 1 $N) >/dev/null 2>&1
  scheme=https
  curl+=(--cacert $DIR/certs/ca.crt --cert $DIR/certs/client/client.admin.crt --key $DIR/certs/client/client.admin.key)
fi
addrs=()
for i in $(seq 1 $N); do
  [ -n "${SECURE:-}" ] && secure=(--certs-dir $DIR/certs/node$i)
  h=$((BASE+i-1)); r=$((BASE+100+i-1))
  join=(); [ $i -gt 1 ] && join=(--join 127.0.0.1:$BASE)
  replicas=3; [ $N -lt 3 ] && replicas=$N
  $BIN serve --id node$i --data-dir $DIR/node$i --http-addr 127.0.0.1:$h --raft-addr 127.0.0.1:$r \
    --groups $G --replicas $replicas --pprof --log-level warn "${join[@]}" "${secure[@]}" "$@" >$DIR/node$i.log 2>&1 &
  echo $! >> $DIR/pids
  addrs+=($scheme://127.0.0.1:$h)
  # wait for node to be ready before the next joins
  ready=
  for t in $(seq 1 300); do "${curl[@]}" -o /dev/null $scheme://127.0.0.1:$h/readyz 2>/dev/null && { ready=1; break; }; sleep 0.2; done
  [ -n "$ready" ] || { echo "node$i not ready after 60s; see $DIR/node$i.log" >&2; exit 1; }
done
# wait until placement settles: each group has N' replicas with a leader
for t in $(seq 1 300); do
  out=$("${curl[@]}" $scheme://127.0.0.1:$BASE/admin/groups 2>/dev/null || true)
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
