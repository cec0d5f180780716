#!/usr/bin/env bash
# Durable state with shards in other processes: `symserve play --state-dir`
# (golden_small, CPU fp64) over two `symserve shard` processes (tcp:// and
# ipc://), `symserve replay --resend` streaming the 1,000 golden requests.
#  1. once a snapshot is in use, one shard process is killed (SIGKILL):
#     play must stop by itself, answering none of that shard's requests
#     (never a prediction from a state that lost its steps);
#  2. that shard process is started again, and play: it rebuilds every
#     symbol from the snapshot and the log into the shard processes;
#  3. once a snapshot of that run is in use, play itself is killed
#     (SIGKILL); the shard processes end their sessions and take the
#     next router; play is started again and finishes the stream.
# Every request must be answered, each once, and equal the uninterrupted
# in-process run's answer bit for bit (--tolerance 0). Skipped (77) when
# this build has no engine.
set -u
bin=$1 data=$2
tmp=$(mktemp -d)
spid=() play_pid=
trap 'for p in "${spid[@]}" $play_pid ${replay_pid:-}; do kill -9 "$p" 2>/dev/null; done; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../net/replay_lib.sh"
. "$(dirname "$0")/crash_lib.sh"
if "$bin" shard --help 2>&1 | grep -q "has no engine"; then echo "SKIP: symserve built without the engine"; exit 77; fi
model=$data/golden_small

paced_requests

urls=("tcp://127.0.0.1:$((30000 + RANDOM % 30000))" "ipc://$tmp/s1.ipc")
echo "{\"shards\": {\"count\": 2, \"endpoints\": [\"${urls[0]}\", \"${urls[1]}\"], \"heartbeat_ms\": 100, \"timeout_ms\": 1000},
 \"state\": {\"snapshot_every_s\": 0.2}, \"net\": {\"id_window\": 300}}" >"$tmp/cfg.json"
shard() { # index: (re)starts that shard process
  "$bin" shard --listen "${urls[$1]}" --config "$tmp/cfg.json" --model "$model" --backend cpu --precision fp64 \
    --status-every 0 >>"$tmp/shard$1.log" 2>&1 &
  spid[$1]=$!
}
play() { play_state "$tmp/cfg.json" "$1"; } # log file
shard 0
shard 1
start_replay --requests "$tmp/req.csv" --expected "$tmp/expect.csv" --tolerance 0 --speed 1 --batch-rows 4 \
  --resend --report "$tmp/r.json" --timeout 240 || { echo "FAIL replay did not start: $(cat "$tmp/replay.err")"; exit 1; }

# 1. a shard process killed: play stops by itself
play "$tmp/play1.log"
snapshot_in_use "$tmp/play1.log"
sleep 0.3
kill -9 "${spid[1]}"
wait "${spid[1]}" 2>/dev/null
for _ in $(seq 600); do kill -0 "$play_pid" 2>/dev/null || break; sleep 0.05; done # 30 s at most
if kill -0 "$play_pid" 2>/dev/null; then
  ko "play did not stop after losing a shard process"
  kill -9 "$play_pid"
fi
wait "$play_pid"
prc=$?
play_pid=
if [ $prc -eq 1 ] && grep -q "a shard process was lost" "$tmp/play1.log"; then
  ok "a shard process killed: play stopped by itself (exit 1): $(grep -o "shard 1 at .* is lost: [^;]*" "$tmp/play1.log" | head -1)"
else
  ko "a shard process killed: play exit $prc: $(tail -3 "$tmp/play1.log")"
fi

# 2. the shard process and play again: every symbol rebuilt
shard 1
play "$tmp/play2.log"
snapshot_in_use "$tmp/play2.log"
sleep 0.3
# 3. play killed: the shard processes take the next router
kill -9 "$play_pid"
wait "$play_pid" 2>/dev/null
play "$tmp/play3.log"
wait "$replay_pid"
rrc=$?
kill "$play_pid" 2>/dev/null
wait "$play_pid" 2>/dev/null
play_pid=
for k in 2 3; do
  line=$(grep "state recovered" "$tmp/play$k.log")
  echo "  run $k: ${line#*play: }"
  echo "$line" | grep -qE "[1-9][0-9]* ids answered before" || ko "run $k recovered nothing"
done
a=$(json_field answered "$tmp/r.json") d=$(json_field duplicates "$tmp/r.json") r=$(json_field resent "$tmp/r.json")
if [ $rrc -eq 0 ] && [ "$a" = 1000 ] && [ "$d" = 0 ]; then
  ok "a shard process and play killed: 1000 of 1000 answered once, equal to one in-process run bit for bit ($r re-sent)"
else
  ko "replay exit $rrc, answered $a, duplicates $d, re-sent $r: $(tail -3 "$tmp/replay.err")"
fi
sessions=$(cat "$tmp"/shard*.log | grep -c "a router connected")
[ "$sessions" -ge 5 ] && ok "the shard processes served $sessions router sessions" ||
  ko "the shard processes served $sessions router sessions, not 5: $(cat "$tmp"/shard*.log | tail -5)"
exit $fail
