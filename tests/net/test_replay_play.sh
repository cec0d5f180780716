#!/usr/bin/env bash
# End to end, as in CI: `symserve replay` streams traces/small.csv (its rows
# are golden_small/requests.csv, same order) to `symserve play` with the
# golden small model on the CPU backend over loopback. Every request must be
# answered exactly once, within 1e-4 of golden_small/expected_f64.csv.
# Skipped (77) when this build has no engine yet.
set -u
bin=$1 data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${play_pid:-}" ] && kill "$play_pid" 2>/dev/null' EXIT
. "$(dirname "$0")/replay_lib.sh"
if "$bin" play --help 2>&1 | grep -q "has no engine"; then echo "SKIP: symserve built without the engine"; exit 77; fi
start_replay --requests "$data/traces/small.csv" --expected "$data/golden_small/expected_f64.csv" --tolerance 1e-4 \
  --speed 0 --batch-rows 8 --report "$tmp/r.json" --timeout 60 || { echo "FAIL replay did not start: $(cat "$tmp/replay.err")"; exit 1; }
timeout 120 "$bin" play --host 127.0.0.1 --port "$port" --model "$data/golden_small" --backend cpu --precision fp64 \
  --max-reconnects 0 >"$tmp/play.log" 2>&1 &
play_pid=$!
wait "$replay_pid"
rrc=$?
wait "$play_pid"
prc=$?
play_pid=
cat "$tmp/replay.out"
fail=0
[ $rrc -eq 0 ] || { echo "FAIL replay exit $rrc: $(tail -5 "$tmp/replay.err")"; fail=1; }
[ $prc -eq 0 ] || { echo "FAIL play exit $prc: $(tail -5 "$tmp/play.log")"; fail=1; }
a=$(json_field answered "$tmp/r.json") d=$(json_field duplicates "$tmp/r.json")
[ "$a" = 1000 ] && [ "$d" = 0 ] || { echo "FAIL answered $a duplicates $d"; fail=1; }
grep -q '"max_abs_err": \[' "$tmp/r.json" || { echo "FAIL no accuracy in the report"; fail=1; }
[ $fail -eq 0 ] && echo "PASS every request answered once, accuracy within 1e-4"
exit $fail
