#!/usr/bin/env bash
# Durable state with shards in other processes: `symserve play --state-dir`
# (golden_small, CPU fp64) over two `symserve shard` processes (tcp:// and
# ipc://, shards.timeout_ms 1 s), `symserve replay --resend` streaming the
# 1,000 golden requests. As root where network namespaces are allowed,
# everything runs in one namespace but shard process 0, in its own, joined
# by a veth link (10.214.0.1 - 10.214.0.2, made here and removed at the
# end); otherwise on loopback. The test says which; a third argument
# "loopback" asks for loopback.
#  1. once a snapshot is in use, shard process 1 is killed (SIGKILL): play
#     keeps running; it restores that shard's symbols from the state dir
#     onto shard 0 and says how many, onto which shards, in how long;
#  2. shard process 1 is started again: the router joins it again, as a
#     new shard;
#  3. shard process 0 is cut off for 2 s (its link set down; on loopback
#     the process is stopped, SIGSTOP), past the timeout: it is lost too,
#     and its symbols, those restored onto it in 1 included, are restored
#     onto shard 1; back, it drops its session, and the router joins it
#     again within 20 s (shards.join_timeout_ms is 2 minutes: the HELLO
#     the router sends again each heartbeat, and the new socket the shard
#     process listens on after a lost session, make it prompt);
#  4. once a snapshot after that is in use, play itself is killed
#     (SIGKILL); the shard processes end their sessions and take the next
#     router; play started again rebuilds every symbol from the snapshot
#     and the log, and finishes the stream;
#  5. the stream again, from a fresh state dir, over shard process 1
#     alone, killed: no live shard to restore its symbols onto, so play
#     stops by itself (exit 1) saying so, answering none of them; started
#     again with the shard process back, it rebuilds every symbol from the
#     state dir and finishes the stream.
# Every request must be answered, each once, and equal the uninterrupted
# in-process run's answer bit for bit (--tolerance 0): never an answer
# from a state that missed a step or took one twice. Skipped (77) when
# this build has no engine.
set -u
bin=$1 data=$2 want=${3:-}
# The namespaces: this script again in the router's (ns_r), shard process
# 0 in its own (SYM_CRASH_NS), the router's end of their link SYM_CRASH_LINK.
if [ -z "${SYM_CRASH_NS+x}" ] && [ "$want" != loopback ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
  p=symc$$
  ns_cleanup() { ip netns del "${p}r" 2>/dev/null; ip netns del "${p}s" 2>/dev/null; }
  if ip netns add "${p}r" 2>/dev/null && ip netns add "${p}s" && ip -n "${p}r" link set lo up &&
     ip -n "${p}s" link set lo up && ip link add "${p}a" netns "${p}r" type veth peer name "${p}b" netns "${p}s" &&
     ip -n "${p}r" addr add 10.214.0.1/24 dev "${p}a" && ip -n "${p}r" link set "${p}a" up &&
     ip -n "${p}s" addr add 10.214.0.2/24 dev "${p}b" && ip -n "${p}s" link set "${p}b" up; then
    echo "network namespaces: shard process 0 in ${p}s, over veth 10.214.0.1 - 10.214.0.2; the rest in ${p}r"
    SYM_CRASH_NS=${p}s SYM_CRASH_LINK=${p}a ip netns exec "${p}r" "$0" "$@"
    rc=$?
    ns_cleanup
    exit $rc
  fi
  ns_cleanup
fi
ns=${SYM_CRASH_NS:-}
[ -n "$ns" ] || echo "loopback: $([ "$want" = loopback ] && echo "as asked" || echo "network namespaces are not allowed here (not root, or no ip netns)")"
tmp=$(mktemp -d)
spid=() play_pid=
trap 'for p in "${spid[@]}"; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done; for p in $play_pid ${replay_pid:-}; do kill -9 "$p" 2>/dev/null; done; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../net/replay_lib.sh"
. "$(dirname "$0")/crash_lib.sh"
if "$bin" shard --help 2>&1 | grep -q "has no engine"; then echo "SKIP: symserve built without the engine"; exit 77; fi
model=$data/golden_small

paced_requests 15 # the stream outlasts the four steps (about 8 s of them)

if [ -n "$ns" ]; then urls=("tcp://10.214.0.2:7600" "ipc://$tmp/s1.ipc")
else urls=("tcp://127.0.0.1:$((30000 + RANDOM % 30000))" "ipc://$tmp/s1.ipc"); fi
echo "{\"shards\": {\"count\": 2, \"endpoints\": [\"${urls[0]}\", \"${urls[1]}\"], \"heartbeat_ms\": 100, \"timeout_ms\": 1000},
 \"state\": {\"snapshot_every_s\": 0.2}, \"net\": {\"id_window\": 300}}" >"$tmp/cfg.json"
shard() { # index: (re)starts that shard process (0 in its namespace: ip netns exec execs it, $! is its pid)
  local in=()
  [ "$1" = 0 ] && [ -n "$ns" ] && in=(ip netns exec "$ns")
  "${in[@]}" "$bin" shard --listen "${urls[$1]}" --config "$tmp/cfg.json" --model "$model" --backend cpu \
    --precision fp64 --status-every 0 >>"$tmp/shard$1.log" 2>&1 &
  spid[$1]=$!
}
play() { play_state "$tmp/cfg.json" "$1"; } # log file
alive() { kill -0 "$play_pid" 2>/dev/null; }
restored() { grep -o "restored [0-9]* symbols lost with a shard process .*" "$tmp/play1.log" | sed -n "${1}p"; }
shard 0
shard 1
start_replay --requests "$tmp/req.csv" --expected "$tmp/expect.csv" --tolerance 0 --speed 1 --batch-rows 4 \
  --resend --report "$tmp/r.json" --timeout 300 || { echo "FAIL replay did not start: $(cat "$tmp/replay.err")"; exit 1; }

# 1. shard process 1 killed: its symbols restored onto shard 0, play goes on
play "$tmp/play1.log"
snapshot_in_use "$tmp/play1.log"
sleep 0.3
kill -9 "${spid[1]}"
wait "${spid[1]}" 2>/dev/null
if wait_line "$tmp/play1.log" "restored [0-9]* symbols lost" && alive && restored 1 | grep -q "onto shard 0 (" &&
   ! restored 1 | grep -q "onto shard 1"; then
  ok "shard process 1 killed: play goes on: $(restored 1)"
else
  ko "shard process 1 killed: play $(alive && echo running || echo stopped): $(grep -i "lost\|restor" "$tmp/play1.log" | tail -3)"
fi

# 2. started again, it is joined again as a new shard
shard 1
if wait_line "$tmp/play1.log" "shard 1 at .* joined again"; then ok "shard process 1 started again: joined again as a new shard"
else ko "shard process 1 started again: not joined: $(grep -i "shard 1" "$tmp/play1.log" | tail -2)"; fi

# 3. shard process 0 cut off for 2 s: lost past the timeout, its symbols
# restored onto shard 1; back, it is joined again
if [ -n "$ns" ]; then
  how="its link down"
  ip link set "$SYM_CRASH_LINK" down; sleep 2; ip link set "$SYM_CRASH_LINK" up
else
  how="SIGSTOP"
  kill -STOP "${spid[0]}"; sleep 2; kill -CONT "${spid[0]}"
fi
back=$(date +%s%N)
if wait_line "$tmp/play1.log" "restored [0-9]* symbols lost" 2 && alive && restored 2 | grep -q "onto shard 1 (" &&
   ! restored 2 | grep -q "onto shard 0"; then
  ok "shard process 0 cut off for 2 s ($how, timeout 1 s): play goes on: $(restored 2)"
else
  ko "shard process 0 cut off for 2 s: play $(alive && echo running || echo stopped): $(grep -i "lost\|restor\|joined" "$tmp/play1.log" | tail -3)"
fi
for _ in $(seq 400); do grep -q "shard 0 at .* joined again" "$tmp/play1.log" && break; sleep 0.05; done
if grep -q "shard 0 at .* joined again" "$tmp/play1.log"; then
  ok "shard process 0 back: joined again as a new shard within $((($(date +%s%N) - back + 99999999) / 100000000 * 100)) ms of its return"
else
  ko "shard process 0 back: not joined again within 20 s: $(grep -i "shard 0" "$tmp/play1.log" | tail -2); $(tail -2 "$tmp/shard0.log")"
fi

# 4. play killed once a snapshot after all that is in use; started again
snapshot_in_use "$tmp/play1.log" $(($(grep -c "state: snapshot [0-9]*: " "$tmp/play1.log") + 1))
if alive; then ok "play ran through both losses: $(grep -c "state: snapshot [0-9]*: " "$tmp/play1.log") snapshots in use"
else ko "play stopped: $(tail -3 "$tmp/play1.log")"; fi
kill -9 "$play_pid"
wait "$play_pid" 2>/dev/null
play "$tmp/play2.log"
wait "$replay_pid"
rrc=$?
kill "$play_pid" 2>/dev/null
wait "$play_pid" 2>/dev/null
play_pid=
line=$(grep "state recovered" "$tmp/play2.log")
echo "  restarted: ${line#*play: }"
echo "$line" | grep -qE "[1-9][0-9]* ids answered before" || ko "play started again recovered nothing"
a=$(json_field answered "$tmp/r.json") d=$(json_field duplicates "$tmp/r.json") r=$(json_field resent "$tmp/r.json")
if [ $rrc -eq 0 ] && [ "$a" = 1000 ] && [ "$d" = 0 ]; then
  ok "two shard processes lost and play killed: 1000 of 1000 answered once, equal to one in-process run bit for bit ($r re-sent)"
else
  ko "replay exit $rrc, answered $a, duplicates $d, re-sent $r: $(tail -3 "$tmp/replay.err")"
fi
if grep -q "restoring the state of its symbols from the state dir failed\|a step is missing\|differently from the log" \
  "$tmp/play1.log" "$tmp/play2.log"; then
  ko "$(grep -h "failed\|missing\|differently" "$tmp/play1.log" "$tmp/play2.log" | head -3)"
fi
# shard 0: play, play's rejoin, play started again; shard 1: play, play's rejoin, play started again
sessions=$(cat "$tmp"/shard*.log | grep -c "a router connected")
[ "$sessions" -ge 6 ] && ok "the shard processes served $sessions router sessions" ||
  ko "the shard processes served $sessions router sessions, not 6: $(cat "$tmp"/shard*.log | tail -5)"

# 5. one shard process, killed: nowhere to restore onto, play stops; started
# again with it back, play rebuilds every symbol
rm -rf "$tmp/state"
fast=$((delay / 3 > 5 ? delay / 3 : 5))
awk -v d="$fast" 'NR == 1 { print $0 ",delay_ms"; next } { print $0 "," d }' "$model/requests.csv" >"$tmp/req5.csv"
echo "{\"shards\": {\"count\": 1, \"endpoints\": [\"${urls[1]}\"], \"heartbeat_ms\": 100, \"timeout_ms\": 1000},
 \"state\": {\"snapshot_every_s\": 0.2}, \"net\": {\"id_window\": 300}}" >"$tmp/one.json"
start_replay --requests "$tmp/req5.csv" --expected "$tmp/expect.csv" --tolerance 0 --speed 1 --batch-rows 4 \
  --resend --report "$tmp/r5.json" --timeout 300 || { echo "FAIL replay did not start: $(cat "$tmp/replay.err")"; exit 1; }
play_state "$tmp/one.json" "$tmp/play5.log"
snapshot_in_use "$tmp/play5.log"
sleep 0.3
kill -9 "${spid[1]}"
wait "${spid[1]}" 2>/dev/null
for _ in $(seq 600); do alive || break; sleep 0.05; done # 30 s at most
if alive; then
  ko "one shard process killed: play did not stop"
  kill -9 "$play_pid"
fi
wait "$play_pid"
prc=$?
why=$(grep -o "a shard process was lost, and restoring .*" "$tmp/play5.log" | head -1)
if [ $prc -eq 1 ] && echo "$why" | grep -q "no live shard"; then
  ok "the one shard process killed: play stopped by itself (exit 1): ${why:0:160}..."
else
  ko "the one shard process killed: play exit $prc: $(tail -3 "$tmp/play5.log")"
fi
shard 1
play_state "$tmp/one.json" "$tmp/play6.log"
wait "$replay_pid"
rrc=$?
kill "$play_pid" 2>/dev/null
wait "$play_pid" 2>/dev/null
play_pid=
grep "state recovered" "$tmp/play6.log" | grep -qE "[1-9][0-9]* ids answered before" || ko "play started again recovered nothing"
a=$(json_field answered "$tmp/r5.json") d=$(json_field duplicates "$tmp/r5.json") r=$(json_field resent "$tmp/r5.json")
if [ $rrc -eq 0 ] && [ "$a" = 1000 ] && [ "$d" = 0 ]; then
  ok "play stopped and started again: 1000 of 1000 answered once, equal to one in-process run bit for bit ($r re-sent)"
else
  ko "replay exit $rrc, answered $a, duplicates $d, re-sent $r: $(tail -3 "$tmp/replay.err")"
fi
exit $fail
