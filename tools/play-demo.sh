#!/usr/bin/env bash
# The game end to end on one machine: build, start the scoring server's
# stand-in (`symserve replay`) on the bundled trace in the background, run
# the competition client (`symserve play`) against it on the best backend
# present (the GPU when there is one), and print the server's report:
# latency percentiles, throughput, share answered, accuracy per tower
# against the golden small model's reference outputs.
#   SPEED=0 tools/play-demo.sh      # as fast as possible (default 1: the trace's own gaps, ~11 s)
#   BUILD=build-x tools/play-demo.sh  # use an existing build folder, skip building
set -euo pipefail
cd "$(dirname "$0")/.."
speed=${SPEED:-1}
if [ -n "${BUILD:-}" ]; then b=$BUILD; else tools/build.sh; b=build; fi
bin=$b/app/symserve
d=tests/data/golden_small
out=$b/play-demo
mkdir -p "$out"
rm -f "$out/port"
"$bin" replay --port 0 --port-file "$out/port" --requests tests/data/traces/small.csv --expected "$d/expected_f64.csv" \
  --speed "$speed" --timeout 60 --report "$out/report.json" --plot "$out/latency.png" >"$out/replay.txt" 2>"$out/replay.log" &
replay=$!
trap 'kill $replay 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$out/port" ] && break; sleep 0.05; done
[ -s "$out/port" ] || { echo "replay did not start:"; cat "$out/replay.log"; exit 1; }
port=$(cat "$out/port")
echo "replay listening on 127.0.0.1:$port; play connects with the golden small model (--backend auto)"
"$bin" play --host 127.0.0.1 --port "$port" --model "$d" --backend auto --max-reconnects 0 2>"$out/play.log" || {
  echo "play failed:"; tail -5 "$out/play.log"; exit 1; }
rc=0
wait $replay || rc=$?
trap - EXIT
grep -E "engine ready|^play:" "$out/play.log" || true
cat "$out/replay.txt"
echo "logs, report.json and latency.png in $out/"
exit $rc
