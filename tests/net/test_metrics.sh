#!/usr/bin/env bash
# `symserve serve --metrics-port 0` (golden small model, CPU, fp64, loopback):
# one `replay --connect` streams the first 300 rows of traces/small.csv and
# replay's 13 malformed lines, while /metrics is scraped again and again.
# Then /metrics must count what replay's report says: 300 answers, the
# latency histogram 300, every row read either answered or refused by a
# reason, nothing in flight, no client left; the shard's step histogram
# counts as many steps as the shard ran, its batch rows add up to the 300
# answers, its queue depth is back at 0, no migration counted; every sample
# has its HELP and TYPE; /healthz answers 200 ok, an unknown path 404, a POST 405; a bad
# --metrics-port is a usage error. Fetched with curl, or bash's /dev/tcp
# where there is none. Skipped (77) when this build has no engine.
set -u
bin=$1 data=$2
tmp=$(mktemp -d)
serve_pid= scrape_pid=
trap 'for p in $scrape_pid $serve_pid; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/replay_lib.sh"
if "$bin" serve --help 2>&1 | grep -q "has no engine"; then echo "SKIP: symserve built without the engine"; exit 77; fi
usage() { # expect exit 2
  "$bin" "$@" >/dev/null 2>"$tmp/usage.err"
  local rc=$?
  [ $rc -eq 2 ] || { echo "FAIL '$*' exit $rc, not 2: $(cat "$tmp/usage.err")"; exit 1; }
}
usage serve --listen 127.0.0.1:0 --metrics-port 70000 --model "$data/golden_small"
usage serve --listen 127.0.0.1:0 --metrics-port-file "$tmp/x" --model "$data/golden_small"
usage play --port 1 --metrics-port -1 --model "$data/golden_small"


"$bin" serve --listen 127.0.0.1:0 --port-file "$tmp/port" --metrics-port 0 --metrics-host 127.0.0.1 \
  --metrics-port-file "$tmp/mport" --model "$data/golden_small" --backend cpu --precision fp64 --status-every 0 \
  >"$tmp/serve.out" 2>"$tmp/serve.err" &
serve_pid=$!
for _ in $(seq 200); do [ -s "$tmp/port" ] && [ -s "$tmp/mport" ] && break; kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.05; done
port=$(cat "$tmp/port" 2>/dev/null) mport=$(cat "$tmp/mport" 2>/dev/null)
[ -n "$port" ] && [ -n "$mport" ] || { echo "FAIL serve did not start: $(tail -5 "$tmp/serve.err")"; exit 1; }
fail=0
[ "$(get /healthz)" = 200 ] && [ "$(cat "$tmp/body")" = ok ] || { echo "FAIL /healthz while serving: $(cat "$tmp/body")"; fail=1; }

# scrapes while the stream runs: the HTTP thread reads while the loop publishes
(while :; do get /metrics >/dev/null && metric 'symserve_shard_queue_depth{shard="0"}' >>"$tmp/depths"; sleep 0.02; done) &
scrape_pid=$!
awk 'NR <= 301' "$data/traces/small.csv" >"$tmp/t.csv"
timeout 120 "$bin" replay --connect "127.0.0.1:$port" --requests "$tmp/t.csv" --expected "$data/golden_small/expected_f64.csv" \
  --tolerance 1e-9 --speed 0 --batch-rows 8 --timeout 60 --report "$tmp/r.json" --inject-bad >"$tmp/r.out" 2>"$tmp/r.err"
rc=$?
kill "$scrape_pid" 2>/dev/null
wait "$scrape_pid" 2>/dev/null
scrape_pid=
answered=$(json_field answered "$tmp/r.json")
[ $rc -eq 0 ] && [ "$answered" = 300 ] || { echo "FAIL replay: exit $rc, answered $answered"; tail -5 "$tmp/r.out" "$tmp/r.err"; exit 1; }

# the loop publishes once per turn: wait (bounded) for the turn after the client left
for _ in $(seq 50); do
  code=$(get /metrics)
  [ "$code" = 200 ] && [ "$(metric symserve_clients)" = 0 ] && [ "$(metric symserve_answers_total)" = "$answered" ] && break
  sleep 0.1
done
[ "$code" = 200 ] || { echo "FAIL /metrics: status $code"; fail=1; }
cp "$tmp/body" "$tmp/metrics.txt"
check() { # NAME EXPECTED
  local v
  v=$(awk -v m="$1" '$1 == m { print $2 }' "$tmp/metrics.txt")
  [ "$v" = "$2" ] || { echo "FAIL $1 = '$v', not $2"; fail=1; }
}
check symserve_answers_total "$answered"
check symserve_answer_latency_seconds_count "$answered"
check 'symserve_answer_latency_seconds_bucket{le="+Inf"}' "$answered"
check symserve_requests_in_flight 0
check symserve_clients 0
check symserve_connections_total 1
check symserve_clients_dropped_total 0
check 'symserve_requests_refused_total{reason="engine"}' 0
check symserve_shards 1
# every row read is answered or refused, and replay's bad lines were refused
read -r requests refused < <(awk '$1 == "symserve_requests_total" { r = $2 } $1 ~ /^symserve_requests_refused_total[{]/ { f += $2 }
  END { print r, f }' "$tmp/metrics.txt")
[ "$requests" = $((answered + refused)) ] && [ "$refused" -gt 0 ] ||
  { echo "FAIL $requests rows read, $answered answered + $refused refused"; fail=1; }
[ "$(awk '$1 == "symserve_bad_messages_total" { print $2 }' "$tmp/metrics.txt")" -gt 0 ] || { echo "FAIL no bad messages counted"; fail=1; }
# the 39 symbols of the trace live on the one shard
check 'symserve_shard_symbols{shard="0"}' 39
# the router's numbers: every step in the histogram (as many as the shard
# ran), every answered row in one step's batch, nothing queued any more
steps=$(awk '$1 == "symserve_shard_steps_total{shard=\"0\"}" { print $2 }' "$tmp/metrics.txt")
[ -n "$steps" ] && [ "$steps" -gt 0 ] || { echo "FAIL symserve_shard_steps_total{shard=\"0\"} = '$steps'"; fail=1; }
check 'symserve_shard_step_seconds_count{shard="0"}' "$steps"
check 'symserve_shard_step_seconds_bucket{shard="0",le="+Inf"}' "$steps"
check 'symserve_shard_batch_rows_count{shard="0"}' "$steps"
check 'symserve_shard_batch_rows_sum{shard="0"}' "$answered"
check 'symserve_shard_queue_depth{shard="0"}' 0
awk '$1 ~ /^symserve_shard_step_seconds_bucket[{]shard="0"/ { if ($2 < last) bad = 1; last = $2; n++ }
  $1 == "symserve_shard_step_seconds_sum{shard=\"0\"}" { sum = $2 }
  END { exit !(n == 21 && !bad && sum > 0) }' "$tmp/metrics.txt" ||
  { echo "FAIL the step histogram's buckets are not 21 growing ones with a time"; fail=1; }
check 'symserve_migrations_total{result="done"}' 0
check 'symserve_migrations_total{result="failed"}' 0
check symserve_migration_seconds_total 0
check symserve_rebalances_total 0
# a scrape during the stream may catch the queue (not a failure if none did:
# it depends on the machine's speed; test_metrics_engine checks it exactly)
deepest=$(sort -n "$tmp/depths" 2>/dev/null | tail -1)
echo "deepest queue seen by a scrape during the stream: ${deepest:-none}"
# every sample's family has HELP and TYPE
for fam in $(awk '!/^#/ { sub(/[{ ].*/, "", $1); sub(/_(bucket|sum|count)$/, "", $1); print $1 }' "$tmp/metrics.txt" | sort -u); do
  grep -q "^# HELP $fam " "$tmp/metrics.txt" && grep -q "^# TYPE $fam " "$tmp/metrics.txt" ||
    { echo "FAIL $fam has no HELP or TYPE"; fail=1; }
done
[ "$(get /nope)" = 404 ] || { echo "FAIL an unknown path is not 404"; fail=1; }
[ "$(get /metrics/x)" = 404 ] || { echo "FAIL /metrics/x is not 404"; fail=1; }
[ "$(get /metrics POST)" = 405 ] || { echo "FAIL a POST is not 405"; fail=1; }

kill -TERM "$serve_pid"
wait "$serve_pid"
vrc=$?
serve_pid=
[ $vrc -eq 0 ] || { echo "FAIL serve exit $vrc after SIGTERM"; tail -5 "$tmp/serve.err"; fail=1; }
[ $fail -eq 0 ] && echo "PASS /metrics counts $answered answers as replay did, $refused refusals; /healthz ok; 404, 405"
[ $fail -eq 0 ] || { echo "--- /metrics:"; grep -v '^#' "$tmp/metrics.txt"; }
exit $fail
