#!/usr/bin/env bash
# symserve replay against the play loop with the fake engine (fake_play):
# the trace streamed and every request answered exactly once, rows grouped
# into messages, a Poisson load, --inject-bad's 13 malformed lines each
# drawing an error while the trace is still served, the latency plot and
# CDF, a client that reconnects, a timeout and a usage error.
set -u
bin=$1 fake=$2 data=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/replay_lib.sh"
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }

run_case() { # name, replay args...
  local name=$1
  shift
  if ! start_replay "$@" --report "$tmp/r.json" --timeout 20; then ko "$name: replay did not start: $(cat "$tmp/replay.err")"; return; fi
  timeout 60 "$fake" "$port" >"$tmp/play.log" 2>&1
  local prc=$?
  wait "$replay_pid"
  local rrc=$?
  if [ $rrc -eq 0 ] && [ $prc -eq 0 ]; then ok "$name: $(grep -E 'answered|throughput' "$tmp/replay.out" | tr -s ' ' | tr '\n' ';')"
  else ko "$name: replay exit $rrc, play exit $prc: $(tail -5 "$tmp/replay.out") $(tail -3 "$tmp/replay.err") $(tail -3 "$tmp/play.log")"; fi
}

trace=$data/traces/small.csv
run_case "small.csv as fast as possible" --requests "$trace" --speed 0
n=$(json_field requests "$tmp/r.json") a=$(json_field answered "$tmp/r.json") d=$(json_field duplicates "$tmp/r.json")
if [ "$n" = 1000 ] && [ "$a" = 1000 ] && [ "$d" = 0 ]; then ok "report: 1000 requests, 1000 answered, 0 duplicates"
else ko "report: requests $n answered $a duplicates $d"; fi
grep -q '"latency_ms": {"p50": [0-9.e-]*, "p90": [0-9.e-]*, "p99": [0-9.e-]*, "max"' "$tmp/r.json" && ok "report has latency_ms p50/p90/p99/max" || ko "latency in report: $(cat "$tmp/r.json")"
run_case "tiny.csv at 20x speed, 4 rows per message" --requests "$data/traces/tiny.csv" --speed 20 --batch-rows 4
run_case "poisson 2000 req/s over 20 symbols for 0.5 s" --rate 2000 --symbols 20 --duration 0.5 --batch-rows 3
run_case "inject-bad then tiny.csv" --requests "$data/traces/tiny.csv" --speed 0 --inject-bad
e=$(json_field errors_received "$tmp/r.json")
if [ "${e:-0}" -ge 13 ]; then ok "13 bad lines drew $e errors"; else ko "errors received: $e"; fi
grep -q 'rejected: unique_id 900000000000009: features row has 2' "$tmp/play.log" && ok "client log names the refused unique_id" || ko "no rejection logged"

# --plot and --cdf: the latency CDF as PNG through gnuplot (found on PATH)
# and as text, one line per answer; without gnuplot a note, not a failure;
# a path gnuplot's script cannot hold is refused
run_case "tiny.csv with --plot and --cdf" --requests "$data/traces/tiny.csv" --speed 0 --plot "$tmp/lat.png" --cdf "$tmp/lat.txt"
n=$(wc -l <"$tmp/lat.txt" 2>/dev/null)
[ "$n" = 100 ] && ok "--cdf: 100 lines, one per answer" || ko "--cdf: $n lines"
if command -v gnuplot >/dev/null; then
  [ "$(head -c 4 "$tmp/lat.png" 2>/dev/null | tail -c 3)" = PNG ] && grep -q "latency CDF plotted to" "$tmp/replay.out" &&
    ok "--plot: a PNG written" || ko "--plot: no PNG: $(tail -3 "$tmp/replay.out") $(tail -3 "$tmp/replay.err")"
fi
env PATH=/nonexistent "$bin" replay --port 0 --requests "$data/traces/tiny.csv" --timeout 0.2 --plot "$tmp/none.png" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "no plot: gnuplot is not installed" "$tmp/out" && [ ! -e "$tmp/none.png" ] &&
  ok "--plot without gnuplot on PATH: a note" || ko "--plot without gnuplot: $(tail -2 "$tmp/out") $(tail -2 "$tmp/err")"
"$bin" replay --port 0 --requests "$data/traces/tiny.csv" --timeout 0.2 --plot "$tmp/it's.png" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "cannot plot to '$tmp/it's.png': a path with a quote" "$tmp/err" &&
  ok "--plot to a path with a quote: refused, named" || ko "--plot with a quote: $(tail -2 "$tmp/out") $(tail -2 "$tmp/err")"

# the server goes away and comes back on the same port: the client
# reconnects (backoff), registers again and serves the new session, whose
# unique_ids start from 0 again
if start_replay --requests "$data/traces/tiny.csv" --speed 0 --timeout 20; then
  p1=$port
  "$fake" "$port" 1024 -1 >"$tmp/play2.log" 2>&1 &
  fp=$!
  wait "$replay_pid"
  rc1=$?
  "$bin" replay --port "$p1" --requests "$data/traces/tiny.csv" --speed 0 --timeout 20 --report "$tmp/r2.json" >"$tmp/out2" 2>&1
  rc2=$?
  kill "$fp" 2>/dev/null
  wait "$fp" 2>/dev/null
  a=$(json_field answered "$tmp/r2.json")
  if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ "$a" = 100 ]; then ok "server restart: client reconnected and served the second session ($a answered)"
  else ko "server restart: exits $rc1 $rc2, answered $a: $(tail -3 "$tmp/out2") $(tail -3 "$tmp/play2.log")"; fi
else ko "reconnect: replay did not start"; fi

# timeout: nobody connects
"$bin" replay --port 0 --requests "$data/traces/tiny.csv" --timeout 0.5 >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q TIMEOUT "$tmp/out" && ok "no client: exit 1 on timeout" || ko "timeout exit $rc: $(tail -3 "$tmp/out")"
"$bin" replay --port 0 >"$tmp/out" 2>&1
[ $? -eq 2 ] && ok "no stream: usage error" || ko "usage exit"
"$bin" replay --port 0 --requests "$data/traces/tiny.csv" --log-level loud >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "'loud' is not one of debug, info, warn, error" "$tmp/out" && ok "--log-level loud: usage error" ||
  ko "--log-level loud: $(head -2 "$tmp/out")"
"$bin" replay --port 0 --requests "$data/traces/tiny.csv" --timeout 0.2 --log-level error >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && [ ! -s "$tmp/err" ] && ok "--log-level error: no info or warn line" || ko "--log-level error: $(head -2 "$tmp/err")"
# --help: each line's parentheses and brackets balanced (a line does not end inside one)
"$bin" replay --help >"$tmp/out" 2>&1
bad=$(awk '{ o = gsub(/\(/, "("); c = gsub(/\)/, ")"); ob = gsub(/\[/, "["); cb = gsub(/\]/, "]"); if (o != c || ob != cb) print }' "$tmp/out")
[ -z "$bad" ] && ok "--help: every line balanced" || ko "--help: unbalanced lines: $bad"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
