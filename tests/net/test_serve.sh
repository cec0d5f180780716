#!/usr/bin/env bash
# `symserve serve` with the golden small model (CPU, fp64) and 8 concurrent
# clients over loopback: seven `replay --connect`, each streaming the first
# 300 rows of traces/small.csv (bounded time under ASan) with its symbols
# renamed to its own (SYM_005 -> C3_SYM_005) and the same unique_ids as the
# others, so every client's symbols follow the golden sequence: every answer must match golden_small/expected_f64.csv
# within 1e-9. One of them also sends replay's 13 malformed lines first:
# each must draw an `error`, and its stream goes on. The eighth client sends
# 2000 requests and never reads: serve must stop reading it and drop it
# (net.max_output_bytes 64 KiB: ~1,100 answers of ~96 bytes fill it and the
# 32 KiB the kernel is let hold, --stall-timeout 1) with the reason logged,
# while the seven finish. Then SIGTERM stops serve cleanly (exit 0).
# With a 4th argument "shard-procs", serve's two shards are `symserve shard`
# processes (tcp:// and ipc://), and /metrics must count what the clients
# saw: every row read answered, refused, discarded (its client gone) or in
# flight, at least the seven clients' answers, both shards stepping.
# Skipped (77) when this build has no engine.
set -u
bin=$1 stuck=$2 data=$3 mode=${4:-}
tmp=$(mktemp -d)
pids=() spids=()
trap 'for p in "${pids[@]}" "${spids[@]}" ${serve_pid:-}; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/replay_lib.sh"
if "$bin" serve --help 2>&1 | grep -q "has no engine"; then echo "SKIP: symserve built without the engine"; exit 77; fi
usage() { # expect exit 2 and the message
  "$bin" "$@" >/dev/null 2>"$tmp/usage.err"
  local rc=$?
  [ $rc -eq 2 ] || { echo "FAIL '$*' exit $rc, not 2: $(cat "$tmp/usage.err")"; exit 1; }
}
usage serve --model "$data/golden_small"
usage serve --listen 127.0.0.1 --model "$data/golden_small"
usage serve --listen 127.0.0.1:70000
usage serve --listen 127.0.0.1:0 --max-clients 0
usage replay --connect 127.0.0.1 --requests "$data/traces/small.csv"
usage replay --connect 127.0.0.1:1 --port 1 --requests "$data/traces/small.csv"
usage replay --connect 127.0.0.1:1 --resend --requests "$data/traces/small.csv"
shards='' metrics=()
if [ "$mode" = shard-procs ]; then
  urls=("tcp://127.0.0.1:$((30000 + RANDOM % 30000))" "ipc://$tmp/s1.ipc")
  shards=", \"shards\": {\"count\": 2, \"endpoints\": [\"${urls[0]}\", \"${urls[1]}\"], \"heartbeat_ms\": 100}"
  metrics=(--metrics-port 0 --metrics-host 127.0.0.1 --metrics-port-file "$tmp/mport")
fi
echo "{\"net\": {\"max_output_bytes\": 65536}$shards}" >"$tmp/serve.json"
if [ "$mode" = shard-procs ]; then
  for u in "${urls[@]}"; do
    "$bin" shard --listen "$u" --config "$tmp/serve.json" --model "$data/golden_small" --backend cpu --precision fp64 \
      --status-every 0 >>"$tmp/shards.log" 2>&1 &
    spids+=($!)
  done
fi
"$bin" serve --listen 127.0.0.1:0 --port-file "$tmp/port" --config "$tmp/serve.json" --model "$data/golden_small" \
  --backend cpu --precision fp64 --max-clients 16 --stall-timeout 1 --status-every 1 "${metrics[@]}" \
  >"$tmp/serve.out" 2>"$tmp/serve.err" &
serve_pid=$!
for _ in $(seq 200); do [ -s "$tmp/port" ] && break; kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.05; done
port=$(cat "$tmp/port" 2>/dev/null)
[ -n "$port" ] || { echo "FAIL serve did not start: $(tail -5 "$tmp/serve.err")"; exit 1; }

timeout 90 "$stuck" 127.0.0.1 "$port" 2000 79 60 >"$tmp/stuck.out" 2>&1 &
stuck_pid=$!
pids+=("$stuck_pid")
for c in 1 2 3 4 5 6 7; do
  awk -F, -v OFS=, -v p="C${c}_" 'NR == 1 { print; next } NR <= 301 { $NF = p $NF; print }' "$data/traces/small.csv" >"$tmp/t$c.csv"
  extra=()
  [ $c = 1 ] && extra=(--inject-bad)
  timeout 240 "$bin" replay --connect "127.0.0.1:$port" --requests "$tmp/t$c.csv" --expected "$data/golden_small/expected_f64.csv" \
    --tolerance 1e-9 --speed 0 --batch-rows 8 --timeout 180 --report "$tmp/r$c.json" "${extra[@]}" >"$tmp/r$c.out" 2>"$tmp/r$c.err" &
  pids+=($!)
done
fail=0
for c in 1 2 3 4 5 6 7; do
  wait "${pids[$c]}"
  rc=$?
  a=$(json_field answered "$tmp/r$c.json") d=$(json_field duplicates "$tmp/r$c.json")
  if [ $rc -ne 0 ] || [ "$a" != 300 ] || [ "$d" != 0 ]; then
    echo "FAIL client $c: exit $rc, answered $a, duplicates $d"; tail -n 5 "$tmp/r$c.out" "$tmp/r$c.err"; fail=1
  fi
done
grep -q "injected 13 bad lines, 13 errors received" "$tmp/r1.out" || { echo "FAIL the bad lines did not each draw an error"; cat "$tmp/r1.out"; fail=1; }
wait "$stuck_pid"
src=$?
cat "$tmp/stuck.out"
[ $src -eq 0 ] || { echo "FAIL the client that does not read was not dropped (exit $src)"; fail=1; }
grep -q "dropped: not reading" "$tmp/serve.err" || { echo "FAIL no reason logged for the drop"; fail=1; }
grep -q "clients, .* answers/s" "$tmp/serve.err" || { echo "FAIL no status line"; fail=1; }
if [ "$mode" = shard-procs ]; then
  mport=$(cat "$tmp/mport" 2>/dev/null)
  sum=0
  for c in 1 2 3 4 5 6 7; do sum=$((sum + $(json_field answered "$tmp/r$c.json"))); done
  for _ in $(seq 100); do # the loop publishes once per turn; the shards' counts come with their heartbeats
    [ "$(get /metrics)" = 200 ] && [ "$(metric symserve_requests_in_flight)" = 0 ] &&
      [ "$(metric 'symserve_shard_steps_total{shard="1"}')" -gt 0 ] 2>/dev/null && break
    sleep 0.1
  done
  read -r req ans ref disc inf < <(awk '$1 == "symserve_requests_total" { r = $2 } $1 == "symserve_answers_total" { a = $2 }
    $1 ~ /^symserve_requests_refused_total[{]/ { f += $2 } $1 == "symserve_answers_discarded_total" { d = $2 }
    $1 == "symserve_requests_in_flight" { i = $2 } END { print r, a, f, d, i }' "$tmp/body")
  s0=$(metric 'symserve_shard_steps_total{shard="0"}') s1=$(metric 'symserve_shard_steps_total{shard="1"}')
  if [ "$(metric symserve_shards)" = 2 ] && [ "$req" = $((ans + ref + disc + inf)) ] && [ "$ans" -ge "$sum" ] &&
     [ "${s0:-0}" -gt 0 ] && [ "${s1:-0}" -gt 0 ] && [ "$sum" = 2100 ]; then
    echo "PASS /metrics: $req rows = $ans answered + $ref refused + $disc discarded + $inf in flight; the seven clients" \
      "saw $sum answers; shard processes stepped $s0 and $s1 times"
  else
    echo "FAIL /metrics: $req rows, $ans answered, $ref refused, $disc discarded, $inf in flight; clients $sum;" \
      "shards $(metric symserve_shards) stepped '$s0' '$s1'"
    fail=1
  fi
fi
kill -TERM "$serve_pid"
wait "$serve_pid"
vrc=$?
serve_pid=
[ $vrc -eq 0 ] || { echo "FAIL serve exit $vrc after SIGTERM"; fail=1; }
grep -E "dropped|serve: [0-9]+ connections" "$tmp/serve.err"
[ $fail -eq 0 ] && echo "PASS 7 clients answered right (1e-9), bad lines refused, the stuck client dropped"
exit $fail
