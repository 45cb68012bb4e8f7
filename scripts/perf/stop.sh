#!/usr/bin/env bash
BASE=$1; DIR=${PERF_DIR:-/tmp/ringkv-perf}/data-$BASE
[ -f $DIR/pids ] && kill $(cat $DIR/pids) 2>/dev/null; sleep 1; [ -f $DIR/pids ] && kill -9 $(cat $DIR/pids) 2>/dev/null; rm -f $DIR/pids; true
