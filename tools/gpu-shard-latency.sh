#!/usr/bin/env bash
# A shard in play's process against one `symserve shard` process over
# ipc:// (BENCHMARKS §3.6), on a
# GPU machine: tools/gpu-e2e.sh in-process, over ipc:// through the
# shared-memory ring, and over ipc:// on nanomsg (SHM=false), alternated REPS times in one call
# (the seed's trace at its own pace, and Poisson over 39 symbols at RATE);
# then bench_net_hops, hop by hop, on the CUDA engine at the trace's pace,
# in-process and at ipc://, through the shared-memory ring (shards.shm, the
# default) and over nanomsg (SYM_BENCH_SHM=0).
#   BUILD=build-gpu OUT=/tmp/shard-lat tools/gpu-shard-latency.sh
# Needs a build with the benches (cmake --build build-gpu --target symserve bench_net_hops).
set -u
b=${BUILD:-build-gpu}
out=${OUT:-/tmp/shard-lat}
reps=${REPS:-2}
rate=${RATE:-5000}
mkdir -p "$out"
for ((i = 1; i <= reps; i++)); do
  RATES39=$rate RATES_B= DURATION=4 BUILD=$b OUT=$out NAME=inproc-$i tools/gpu-e2e.sh >"$out/inproc-$i.txt" 2>&1
  RATES39=$rate RATES_B= DURATION=4 BUILD=$b OUT=$out NAME=ipc-$i SHARD_PROCS=1 tools/gpu-e2e.sh >"$out/ipc-$i.txt" 2>&1
  RATES39=$rate RATES_B= DURATION=4 BUILD=$b OUT=$out NAME=ipcnn-$i SHARD_PROCS=1 SHM=false tools/gpu-e2e.sh >"$out/ipcnn-$i.txt" 2>&1
done
for m in inproc ipc ipc-nanomsg; do
  SYM_BENCH_SHM=$([ $m = ipc-nanomsg ] && echo 0 || echo 1) SYM_BENCH_BACKEND=cuda "$b/bench/net/bench_net_hops" \
    "${m%-nanomsg}" 90 1000 >"$out/hops-$m.txt" 2>"$out/hops-$m.log"
done
for f in "$out"/inproc-*.txt "$out"/ipc-*.txt "$out"/ipcnn-*.txt; do
  echo "== $(basename "$f" .txt)"
  grep -E "^(trace_speed1|poisson39)" "$f" | grep -v rc=
done
cat "$out/hops-inproc.txt" "$out/hops-ipc.txt" "$out/hops-ipc-nanomsg.txt"
