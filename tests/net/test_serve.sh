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
# Skipped (77) when this build has no engine.
set -u
bin=$1 stuck=$2 data=$3
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}" ${serve_pid:-}; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
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
echo '{"net": {"max_output_bytes": 65536}}' >"$tmp/serve.json"
"$bin" serve --listen 127.0.0.1:0 --port-file "$tmp/port" --config "$tmp/serve.json" --model "$data/golden_small" \
  --backend cpu --precision fp64 --max-clients 16 --stall-timeout 1 --status-every 1 >"$tmp/serve.out" 2>"$tmp/serve.err" &
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
  timeout 120 "$bin" replay --connect "127.0.0.1:$port" --requests "$tmp/t$c.csv" --expected "$data/golden_small/expected_f64.csv" \
    --tolerance 1e-9 --speed 0 --batch-rows 8 --timeout 60 --report "$tmp/r$c.json" "${extra[@]}" >"$tmp/r$c.out" 2>"$tmp/r$c.err" &
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
kill -TERM "$serve_pid"
wait "$serve_pid"
vrc=$?
serve_pid=
[ $vrc -eq 0 ] || { echo "FAIL serve exit $vrc after SIGTERM"; fail=1; }
grep -E "dropped|serve: [0-9]+ connections" "$tmp/serve.err"
[ $fail -eq 0 ] && echo "PASS 7 clients answered right (1e-9), bad lines refused, the stuck client dropped"
exit $fail
