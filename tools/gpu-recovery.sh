#!/usr/bin/env bash
# Recovery after a long stream (issue #20's last figure): `play
# --state-dir` (full-size synthetic model, cuda, PRECISION=mixed) serves a
# Poisson stream of RATE (5000) req/s over 39 symbols for DURATION (600) s
# with snapshots every SNAPSHOT_EVERY_S (60) s, and is killed with SIGKILL
# while the stream runs. Then it is started again on its directory, once
# as the kill left it and once more with its newest snapshot taken away,
# so that the log to replay is one snapshot period longer: how recovery
# time grows with the log. After each recovery a short stream checks that
# play serves again. Logs and reports under $OUT/recovery; a table last.
#   BUILD=build-gpu OUT=/tmp/out tools/gpu-recovery.sh
# (BACKEND=cpu SIZE=small DURATION=10 tries it on a machine without a GPU.)
set -u
OUT=${OUT:-/tmp/out}
b=${BUILD:-build-gpu}
bin=$b/app/symserve
port=${PORT:-7331}
d=$OUT/recovery
mkdir -p "$d"
sd=${STATE_PARENT:-/tmp}/symserve-recovery
rm -rf "$sd"
printf '{"max_symbols": 48, "status_interval_s": 30, "state": {"snapshot_every_s": %s, "fsync": "every_s"}}\n' \
  "${SNAPSHOT_EVERY_S:-60}" >"$d/play.cfg"
start_play() { # log
  "$bin" play --config "$d/play.cfg" --host 127.0.0.1 --port "$port" --synthetic 1 --size "${SIZE:-full}" \
    --backend "${BACKEND:-cuda}" --precision "${PRECISION:-mixed}" --num-symbols 48 --state-dir "$sd" >"$1" 2>&1 &
  play=$!
}
stamp() { echo "$(date +%s.%N | cut -c1-14) $*" >>"$d/events.txt"; }
dir_listing() { du -sh "$sd" >"$d/$1"; ls -la --time-style=+%s "$sd" >>"$d/$1"; }

start_play "$d/play-stream.log"
stamp "stream start"
"$bin" replay --port "$port" --timeout 300 --rate "${RATE:-5000}" --symbols 39 --duration "${DURATION:-600}" \
  --seed 1 --report "$d/stream.json" >"$d/stream.txt" 2>&1 &
replay=$!
sleep "${DURATION:-600}"
kill -9 $play
stamp "play killed"
wait $play 2>/dev/null
kill $replay 2>/dev/null
wait $replay 2>/dev/null
dir_listing dir-after-kill.txt

recover() { # name: starts play on the directory, waits for its recovery, checks that it serves, stops it
  local name=$1 t0
  t0=$(date +%s.%N)
  stamp "$name: play started"
  start_play "$d/play-$name.log"
  for _ in $(seq 1 1200); do
    grep -q "state recovered" "$d/play-$name.log" && break
    kill -0 $play 2>/dev/null || break
    sleep 0.5
  done
  stamp "$name: recovered ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after start)"
  "$bin" replay --port "$port" --timeout 60 --rate 1000 --symbols 39 --duration 2 --seed 7 \
    --report "$d/after-$name.json" >"$d/after-$name.txt" 2>&1
  echo "after-$name rc=$?" >>"$d/rc.txt"
  kill $play 2>/dev/null
  wait $play 2>/dev/null
}
recover as-killed
newest=$(ls "$sd" | grep -E '^snap-[0-9]+\.bin$' | sort | tail -1)
[ -n "$newest" ] && rm -f "$sd/$newest" && stamp "removed $newest"
recover one-period-longer
dir_listing dir-end.txt

{
  cat "$d/events.txt" "$d/rc.txt"
  grep -h "state: snapshot\|status" "$d/play-stream.log" | tail -12 | cut -c1-300
  for f in "$d"/play-as-killed.log "$d"/play-one-period-longer.log; do
    echo "== $(basename "$f")"
    grep -h "state recovered\|differently" "$f" | cut -c1-600
  done
  python3 - "$d" <<'PY'
import json, os, sys
d = sys.argv[1]
for n in sorted(f for f in os.listdir(d) if f.endswith(".json")):
    r = json.load(open(os.path.join(d, n)))
    l = r["latency_ms"]
    print(f"{n[:-5]:<24} requests {r['requests']} answered {r['answered']} rps {r['throughput_rps']:.0f} "
          f"p50 {l['p50']:.2f} p99 {l['p99']:.2f} max {l['max']:.2f} ms")
PY
} | tee "$d/table.txt"
