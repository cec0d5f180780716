#!/usr/bin/env bash
# Durable state on a GPU machine (issue #20's figures): the game over 39
# symbols (full-size synthetic model, PRECISION=mixed) with `play
# --state-dir` against the same without it, alternating, on one machine:
# the seed's trace at its own pace and a Poisson stream at RATE (5000)
# req/s for DURATION s; then play killed with SIGKILL and started again on
# its directory: how long recovery takes (snapshot load, log replay) and
# how its answers compare with the uninterrupted engine's. Logs and
# reports under $OUT/state; a table is printed last.
#   BUILD=build-gpu OUT=/tmp/out tools/gpu-state.sh
# ROUNDS (2) of each mode, the kill after the last; SNAPSHOT_EVERY_S (30)
# and FSYNC (every_s) set the state config; two
# further parts, each on its own: PAGING=1, paging at full size
# (bench_actors_paging: 8 slots, round robin over 24 symbols, a Zipf mix
# over 16); CRASH=1, the crash test on the CUDA engine
# (tests/state/test_crash_play.sh, fp32, held to 1e-5 of its own
# uninterrupted run).
set -u
OUT=${OUT:-/tmp/out}
b=${BUILD:-build-gpu}
bin=$b/app/symserve
port=${PORT:-7321}
d=$OUT/state
mkdir -p "$d"
rounds=${ROUNDS:-2}
sd=${STATE_PARENT:-/tmp}/symserve-state
rm -rf "$sd"
printf '{"max_symbols": 48, "state": {"snapshot_every_s": %s, "fsync": "%s"}}\n' "${SNAPSHOT_EVERY_S:-30}" \
  "${FSYNC:-every_s}" >"$d/play.cfg"
start_play() { # log, extra args
  local log=$1
  shift
  "$bin" play --config "$d/play.cfg" --host 127.0.0.1 --port "$port" --synthetic 1 --size full --backend cuda \
    --precision "${PRECISION:-mixed}" --num-symbols 48 "$@" >"$log" 2>&1 &
  play=$!
}
run() { # name, replay args...
  local name=$1
  shift
  "$bin" replay --port "$port" --timeout 300 --report "$d/$name.json" "$@" >"$d/$name.txt" 2>&1
  echo "$name rc=$?" >>"$d/rc.txt"
}
for round in $(seq 1 "$rounds"); do
  for mode in off on; do
    if [ $mode = on ]; then start_play "$d/play-$mode-$round.log" --state-dir "$sd"; else start_play "$d/play-$mode-$round.log"; fi
    run "trace_${mode}_$round" --requests tests/data/traces/small.csv --speed 1
    run "poisson_${mode}_$round" --rate "${RATE:-5000}" --symbols 39 --duration "${DURATION:-10}" --seed $round
    if [ $mode = on ] && [ $round = "$rounds" ]; then
      kill -9 $play; wait $play 2>/dev/null
      du -sh "$sd" >"$d/dir-size.txt"; ls -la "$sd" >>"$d/dir-size.txt"
      start_play "$d/play-recover.log" --state-dir "$sd"
      run "poisson_after_recovery" --rate 1000 --symbols 39 --duration 2 --seed 9
    fi
    kill $play 2>/dev/null; wait $play 2>/dev/null
    [ $mode = on ] && [ $round != "$rounds" ] && rm -rf "$sd"
  done
done
if [ -n "${PAGING:-}" ]; then
  echo '{"backend": "cuda", "precision": "mixed", "model": {"size": "full"}, "status_interval_s": 0}' >"$d/paging.json"
  timeout 300 "$b/bench/actors/bench_actors_paging" "$d/paging.json" 8 480 >"$d/paging.txt" 2>&1
  echo "paging rc=$?" >>"$d/rc.txt"
fi
if [ -n "${CRASH:-}" ]; then
  timeout 600 tests/state/test_crash_play.sh "$bin" tests/data "--backend cuda --precision fp32" 1e-5 >"$d/crash.txt" 2>&1
  echo "crash rc=$?" >>"$d/rc.txt"
fi
python3 - "$d" >"$d/table.txt" <<'PY'
import json, os, sys
d = sys.argv[1]
print(f"{'run':<26}{'requests':>9}{'answered':>9}{'rps':>8}{'p50_ms':>8}{'p90_ms':>8}{'p99_ms':>8}{'max_ms':>8}")
for n in sorted(f for f in os.listdir(d) if f.endswith(".json")):
    r = json.load(open(os.path.join(d, n)))
    if "latency_ms" not in r:  # not a replay report (bench_paging's)
        continue
    l = r["latency_ms"]
    print(f"{n[:-5]:<26}{r['requests']:>9}{r['answered']:>9}{r['throughput_rps']:>8.0f}{l['p50']:>8.2f}{l['p90']:>8.2f}{l['p99']:>8.2f}{l['max']:>8.2f}")
PY
grep -h "state recovered\|snapshot 0\|state:" "$d"/play-*.log | cut -c1-400 >"$d/state-lines.txt"
cat "$d/rc.txt" "$d/dir-size.txt" "$d/state-lines.txt" "$d/table.txt"
if [ -f "$d/paging.txt" ]; then tail -4 "$d/paging.txt"; fi
if [ -f "$d/crash.txt" ]; then grep -E "PASS|FAIL" "$d/crash.txt"; fi
