#!/usr/bin/env bash
# Exactly once across a lost connection (issue: re-sent requests applied
# twice): `symserve replay --resend --drop-after 200` streams
# golden_small/requests.csv to `symserve play` (golden small model, CPU
# fp64) and resets the connection once 200 requests are written, with
# requests still in flight; play reconnects and replay sends every request
# it saw unanswered again. Every one of the 1000 must be answered once and
# right (1e-9 of expected_f64.csv): a re-sent request applied a second time
# would put its symbol a step ahead and every later answer of it off.
# Skipped (77) when this build has no engine.
set -u
bin=$1 data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${play_pid:-}" ] && kill "$play_pid" 2>/dev/null' EXIT
. "$(dirname "$0")/replay_lib.sh"
if "$bin" play --help 2>&1 | grep -q "has no engine"; then echo "SKIP: symserve built without the engine"; exit 77; fi
fail=0
for batch in 1 8; do
  start_replay --requests "$data/golden_small/requests.csv" --expected "$data/golden_small/expected_f64.csv" \
    --tolerance 1e-9 --speed 0 --batch-rows $batch --resend --drop-after 200 --report "$tmp/r.json" --timeout 60 ||
    { echo "FAIL replay did not start: $(cat "$tmp/replay.err")"; exit 1; }
  timeout 120 "$bin" play --host 127.0.0.1 --port "$port" --model "$data/golden_small" --backend cpu --precision fp64 \
    --max-reconnects 3 >"$tmp/play.log" 2>&1 &
  play_pid=$!
  wait "$replay_pid"
  rrc=$?
  kill "$play_pid" 2>/dev/null
  wait "$play_pid" 2>/dev/null
  play_pid=
  a=$(json_field answered "$tmp/r.json") d=$(json_field duplicates "$tmp/r.json") r=$(json_field resent "$tmp/r.json")
  if [ $rrc -eq 0 ] && [ "$a" = 1000 ] && [ "$d" = 0 ] && [ "${r:-0}" -gt 0 ]; then
    echo "PASS $batch rows a message: cut after 200 written, $r re-sent, 1000 of 1000 answered once and within 1e-9"
  else
    echo "FAIL $batch rows a message: replay exit $rrc, answered $a, duplicates $d, re-sent $r"
    tail -5 "$tmp/replay.err"; tail -5 "$tmp/play.log"
    fail=1
  fi
  grep -q "sent again" "$tmp/play.log" || true
done
exit $fail
