#!/usr/bin/env bash
# The game end to end on a GPU machine: `symserve play` on the CUDA engine
# (full-size synthetic model, PRECISION=mixed by default) against
# `symserve replay` on loopback: the seed's trace at its own pace, then
# Poisson streams at rising rates over 39 and SYMS_B (128) symbols. play stays up and
# reconnects between runs (symbol states kept). Reports (JSON) and latency
# CDFs go to $OUT/e2e.tar.gz; a table is printed last.
#   BUILD=build-gpu OUT=/tmp/e2e tools/gpu-e2e.sh
# SHARDS=N runs N shards (each with its own stream, weights and slots) on
# the GPUs DEVICES lists (default "0"; shard i on the (i mod n)-th);
# TOWER_SPLIT=2|4 spreads each shard's towers over that many of DEVICES
# (config shards.tower_split); MAX_SYMBOLS (130) sizes every shard's pool; IDLE_SPIN_US sets how long
# idle actors spin before sleeping; RATES39 and RATES_B are the ramps;
# DURATION (s, default 4) is each Poisson run's length: a 4 s run's p99
# rests on a few hundred requests, so a point near the 25 ms line can land
# on either side of it; NAME names the tarball (e2e-NAME.tar.gz);
# ROWS_PER_SYMBOL (config rows_per_symbol, default 4): waiting requests of
# a symbol a step takes together (docs/design/runs.md); CUDA_CONFIG: a JSON
# object for the config's "cuda" section (the CUDA engine's tuning,
# docs/CONFIG.md), e.g. CUDA_CONFIG='{"state_cell_priority": 5}'. SHARD_PROCS=1
# runs each shard as a `symserve shard` process over ipc://
# (shards.endpoints), for the in-process against shard-process comparison
# of docs/design/shard-processes.md; SHM=false keeps those links on
# nanomsg (shards.shm) instead of the shared-memory ring. STATE_PRECISION: the config's
# state_precision, e.g. STATE_PRECISION='["fp16", "bf16", "fp32", "fp32"]'.
set -u
OUT=${OUT:-/tmp/e2e}
b=${BUILD:-build-gpu}
bin=$b/app/symserve
port=${PORT:-7311}
prec=${PRECISION:-mixed}
d=$(mktemp -d)
maxsym=${MAX_SYMBOLS:-130}
symsb=${SYMS_B:-128}
endpoints=""
shard_pids=()
if [ -n "${SHARD_PROCS:-}" ]; then
  for ((i = 0; i < ${SHARDS:-1}; i++)); do endpoints+="${endpoints:+, }\"ipc://$d/shard$i.ipc\""; done
fi
printf '{"shards": {"count": %d, "devices": [%s], "tower_split": %d, "endpoints": [%s]%s}, "max_symbols": %d, "idle_spin_us": %d, "rows_per_symbol": %d%s%s}\n' \
  "${SHARDS:-1}" "${DEVICES:-0}" "${TOWER_SPLIT:-1}" "$endpoints" "${SHM:+, \"shm\": $SHM}" "$maxsym" "${IDLE_SPIN_US:-200}" "${ROWS_PER_SYMBOL:-4}" \
  "${CUDA_CONFIG:+, \"cuda\": $CUDA_CONFIG}" "${STATE_PRECISION:+, \"state_precision\": $STATE_PRECISION}" >"$d/play-config.cfg"
if [ -n "${SHARD_PROCS:-}" ]; then
  IFS=, read -ra devs <<<"${DEVICES:-0}"
  for ((i = 0; i < ${SHARDS:-1}; i++)); do
    "$bin" shard --listen "ipc://$d/shard$i.ipc" --config "$d/play-config.cfg" --synthetic 1 --size "${SIZE:-full}" \
      --backend "${BACKEND:-cuda}" --precision "$prec" --num-symbols "$maxsym" --device "${devs[$((i % ${#devs[@]}))]// /}" \
      >"$d/shard$i.log" 2>&1 &
    shard_pids+=($!)
  done
fi
"$bin" play --config "$d/play-config.cfg" --host 127.0.0.1 --port "$port" --synthetic 1 --size "${SIZE:-full}" --backend "${BACKEND:-cuda}" --precision "$prec" \
  --num-symbols "$maxsym" >"$d/play.out" 2>"$d/play.log" &
play=$!
trap 'kill $play "${shard_pids[@]}" 2>/dev/null' EXIT
run() { # name, replay args...
  local name=$1
  shift
  "$bin" replay --port "$port" --timeout 180 --report "$d/$name.json" --cdf "$d/$name.cdf" "$@" >"$d/$name.txt" 2>&1 &
  local r=$!
  while kill -0 $r 2>/dev/null; do # a play that exited would leave replay waiting for it
    if ! kill -0 $play 2>/dev/null; then
      kill $r 2>/dev/null
      echo "$name: play exited: $(tail -3 "$d/play.log" | tr '\n' ' ')" >>"$d/rc.txt"
      break
    fi
    sleep 0.5
  done
  wait $r
  echo "$name rc=$?" >>"$d/rc.txt"
}
run trace_speed1 --requests tests/data/traces/small.csv --speed 1
for r in ${RATES39-1000 2000 3000 4000 5000 6000 7000}; do run "poisson39_$r" --rate "$r" --symbols 39 --duration "${DURATION:-4}" --seed 1; done
for r in ${RATES_B-${RATES128-2000 4000 6000 8000 10000}}; do run "poisson${symsb}_$r" --rate "$r" --symbols "$symsb" --duration "${DURATION:-4}" --seed 2; done
kill $play 2>/dev/null
wait $play 2>/dev/null
for p in "${shard_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
trap - EXIT
python3 - "$d" >"$d/table.txt" <<'PY'
import json, os, sys
d = sys.argv[1]
print(f"{'run':<18}{'requests':>9}{'answered':>9}{'rps':>9}{'p50_ms':>9}{'p90_ms':>9}{'p99_ms':>9}{'max_ms':>9}")
def key(n):
    parts = n[:-5].split("_")
    return (parts[0], int(parts[1]) if parts[1].isdigit() else 0)
for n in sorted((f for f in os.listdir(d) if f.endswith(".json")), key=key):
    r = json.load(open(os.path.join(d, n)))
    l = r["latency_ms"]
    print(f"{n[:-5]:<18}{r['requests']:>9}{r['answered']:>9}{r['throughput_rps']:>9.0f}{l['p50']:>9.2f}{l['p90']:>9.2f}{l['p99']:>9.2f}{l['max']:>9.2f}")
PY
grep -E "engine ready|status|error" "$d/play.log" | head -20 >"$d/play_excerpt.txt"
mkdir -p "$OUT"
tar -C "$d" -czf "$OUT/e2e${NAME:+-$NAME}.tar.gz" .
cat "$d/rc.txt" "$d/play_excerpt.txt" "$d/table.txt"
