#!/usr/bin/env bash
# Shards in other processes (`symserve shard`, config shards.endpoints),
# on the golden small model (CPU, fp64). As root where network namespaces
# are allowed, the router runs in one namespace and each shard process in
# its own, joined to the router's by a veth link (10.213.I.1 - 10.213.I.2,
# made here and removed at the end; traffic goes nowhere else); otherwise
# everything runs on loopback (tcp:// and ipc://). The test says which.
#  1. predict over three shard processes, a random symbol migrated every
#     50 requests and a rebalance to a fourth shard process at request
#     500: the outputs equal one in-process shard's bit for bit, and every
#     shard process ends its session at the router's STOP;
#  1b. over two shard processes at ipc:// endpoints (in every mode): one
#     through the shared-memory ring, the other, whose shards.shm is
#     false, over nanomsg; then, the router's shards.shm false, both over
#     nanomsg: the outputs equal one in-process shard's bit for bit each
#     time;
#  2. a shard process of another precision, another state precision or
#     another max_symbols is refused by name;
#  3. serve over three shard processes, `replay --connect` streaming 300
#     rows (5 ms apart, or further on a slow build): one shard process's
#     link is set down for 2 s (on loopback: the process is stopped,
#     SIGSTOP), within shards.timeout_ms: every request answered, each
#     right (1e-9);
#  4. the same with a shard process killed (SIGKILL) mid-stream: every
#     request still gets an answer; those of the lost shard's symbols an
#     error that says so, every prediction right (never one from a state
#     that missed a step). Started again, the shard process joins as a new
#     shard: a client of new symbols is answered right;
#  5. a router started 6 s before its shard process waits for it
#     (shards.join_timeout_ms, longer than shards.timeout_ms); with none
#     there it gives up after join_timeout_ms, naming the key.
# On loopback shard 1 is at an ipc:// endpoint, its frames through the
# shared-memory ring (1, 3 and 4 over it). In the end no region of the
# rings is left in /dev/shm.
# Skipped (77) when this build has no engine.
# A third argument "loopback" runs on loopback even where namespaces are
# allowed.
set -u
bin=$1 data=$2 want=${3:-}
model=$data/golden_small
tmp=$(mktemp -d)
pids=()
ns_r='' ns=()
netns_cleanup() { for n in $ns_r "${ns[@]}"; do ip netns del "$n" 2>/dev/null; done; }
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; netns_cleanup; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
. "$(dirname "$0")/replay_lib.sh"
if "$bin" shard --help 2>&1 | grep -q "has no engine"; then echo "SKIP: symserve built without the engine"; exit 77; fi
free_port() { # a loopback port nothing listens on
  local p
  for _ in $(seq 50); do
    p=$((30000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo 1
}
# the largest of the report's max_abs_err, "" when it has none
max_err() { sed -n 's/.*"max_abs_err": \[\([^]]*\)\].*/\1/p' "$1" | tr ',' '\n' | tr -d ' ' | sort -g | tail -1; }
within() { awk -v x="$1" -v t="$2" 'BEGIN { exit !(x != "" && x + 0 <= t + 0) }'; }

# The namespaces: the router's (ns_r) and one per shard (ns[I]), each
# shard's veth link up with its address. 1 when not allowed here.
netns_setup() {
  [ "$want" != loopback ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null || return 1
  local p=sym$$ i
  ip netns add "${p}r" 2>/dev/null || return 1
  ns_r=${p}r
  ip -n "$ns_r" link set lo up || return 1
  for i in 0 1 2 3; do
    ip netns add "${p}s$i" || return 1
    ns[$i]=${p}s$i
    ip link add "${p}a$i" netns "$ns_r" type veth peer name "${p}b$i" netns "${ns[$i]}" &&
      ip -n "$ns_r" addr add "10.213.$i.1/24" dev "${p}a$i" && ip -n "$ns_r" link set "${p}a$i" up &&
      ip -n "${ns[$i]}" addr add "10.213.$i.2/24" dev "${p}b$i" && ip -n "${ns[$i]}" link set "${p}b$i" up &&
      ip -n "${ns[$i]}" link set lo up || return 1
  done
}
veth() { echo "sym$$a$1"; } # shard I's link, the router's end
# in NS (empty: here) CMD...; as_ns: the same in place of the (sub)shell,
# for `(as_ns NS CMD...) &`, so that $! is CMD's own pid
in_ns() { local n=$1; shift; if [ -n "$n" ]; then ip netns exec "$n" "$@"; else "$@"; fi; }
as_ns() { local n=$1; shift; if [ -n "$n" ]; then exec ip netns exec "$n" "$@"; else exec "$@"; fi; }
if netns_setup; then
  mode=netns
  echo "network namespaces: the router in $ns_r, shard I in ${ns[0]%0}I over veth 10.213.I.1 - 10.213.I.2"
else
  netns_cleanup
  ns_r='' ns=() mode=loopback
  echo "loopback: $([ "$want" = loopback ] && echo "as asked" || echo "network namespaces are not allowed here (not root, or no ip netns)")"
fi
# shard I's endpoint for a run: in its namespace, or on loopback
endpoint() { # I, name
  if [ $mode = netns ]; then echo "tcp://10.213.$1.2:7600"
  elif [ "$1" = 1 ]; then echo "ipc://$tmp/$2.s1.ipc"
  else echo "tcp://127.0.0.1:$(free_port)"; fi
}

# shard processes at the endpoints given (shard I in its namespace when
# the endpoint is one of 10.213.I.2); extra args after --
shards() { # name, urls..., [-- args]
  local name=$1 i=0
  shift
  urls=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do urls+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  spids=()
  for u in "${urls[@]}"; do
    local n=''
    case $u in tcp://10.213.*) n=${ns[$i]} ;; esac
    (as_ns "$n" "$bin" shard --listen "$u" --model "$model" --backend cpu --precision fp64 --status-every 0 \
      --metrics-port 0 --metrics-host 127.0.0.1 --metrics-port-file "$tmp/$name.mport$i" "$@") \
      >"$tmp/$name.shard$i.log" 2>&1 &
    spids+=($!)
    pids+=($!)
    i=$((i + 1))
  done
}
endpoints_json() { local IFS=,; local q=(); for u in "$@"; do q+=("\"$u\""); done; echo "[${q[*]}]"; }

shm_before=$(ls /dev/shm | grep '^symserve-' | sort)
t0=$(date +%s%N)
"$bin" predict --model "$model" --requests "$model/requests.csv" --out "$tmp/ref.csv" --backend cpu --precision fp64 \
  >"$tmp/ref.log" 2>&1 || { echo "FAIL predict in process: $(tail -2 "$tmp/ref.log")"; exit 1; }
# this build's pace (a sanitized one is 20x slower): rows for serve 3x as
# far apart as one process steps one, 5 ms at least, and replay waits 3x
# that build's time for the last answers
ms=$((($(date +%s%N) - t0) / 1000000))
delay=$((ms * 3 / 1000))
[ "$delay" -ge 5 ] || delay=5
wait_s=$((ms * 3 / 1000))
[ "$wait_s" -ge 5 ] || wait_s=5

# 1. migrations and a rebalance over shard processes
urls=("$(endpoint 0 p)" "$(endpoint 1 p)" "$(endpoint 2 p)" "$(endpoint 3 p)")
echo "{\"shards\": {\"endpoints\": $(endpoints_json "${urls[@]}"), \"heartbeat_ms\": 100, \"timeout_ms\": 3000}}" >"$tmp/p.json"
shards p "${urls[@]}" -- --sessions 1
in_ns "$ns_r" timeout 300 "$bin" predict --config "$tmp/p.json" --model "$model" --requests "$model/requests.csv" --out "$tmp/out.csv" \
  --backend cpu --precision fp64 --shards 3 --migrate-every 50 --rebalance-at 500:4 >"$tmp/p.log" 2>&1
rc=$?
ended=0
for p in "${spids[@]}"; do wait "$p" && ended=$((ended + 1)); done
if [ $rc -eq 0 ] && cmp -s "$tmp/ref.csv" "$tmp/out.csv" && [ $ended = 4 ] && ! grep -q "is lost" "$tmp/p.log" &&
   [ "$(cat "$tmp"/p.shard*.log | grep -c "session ended by the router")" = 4 ]; then
  ok "3 shard processes ($mode), $(grep -o "[0-9]* migrations" "$tmp/p.log"), a rebalance to a 4th: equal to one in-process shard bit for bit"
else
  ko "shard processes: predict exit $rc, $ended of 4 ended: $(tail -3 "$tmp/p.log"); $(cat "$tmp"/p.shard*.log | grep -v "info" | head -3)"
fi

# 1b. ipc:// through the shared-memory ring and over nanomsg (shards.shm)
echo '{"shards": {"shm": false}}' >"$tmp/noshm.json"
ipc_run() { # name, the router's shards.shm
  local u=("ipc://$tmp/$1.s0.ipc" "ipc://$tmp/$1.s1.ipc")
  echo "{\"shards\": {\"endpoints\": $(endpoints_json "${u[@]}"), \"shm\": $2, \"heartbeat_ms\": 100, \"timeout_ms\": 3000}}" \
    >"$tmp/$1.json"
  "$bin" shard --listen "${u[0]}" --model "$model" --backend cpu --precision fp64 --status-every 0 --sessions 1 \
    >"$tmp/$1.shard0.log" 2>&1 &
  local s0=$!
  "$bin" shard --listen "${u[1]}" --config "$tmp/noshm.json" --model "$model" --backend cpu --precision fp64 \
    --status-every 0 --sessions 1 >"$tmp/$1.shard1.log" 2>&1 &
  local s1=$!
  pids+=($s0 $s1)
  in_ns "$ns_r" timeout 300 "$bin" predict --config "$tmp/$1.json" --model "$model" --requests "$model/requests.csv" \
    --out "$tmp/$1.csv" --backend cpu --precision fp64 --shards 2 --migrate-every 50 >"$tmp/$1.log" 2>&1
  rc=$?
  wait $s0 $s1
}
ipc_run ring true
if [ $rc -eq 0 ] && cmp -s "$tmp/ref.csv" "$tmp/ring.csv" &&
   grep -q "shard 0: the shard process at ipc://.*frames through a shared-memory ring" "$tmp/ring.log" &&
   grep -q "shard 1: the shard process at ipc://.*frames through nanomsg" "$tmp/ring.log" &&
   grep -q "shards.shm is off here" "$tmp/ring.shard1.log" && ! grep -q "is lost" "$tmp/ring.log"; then
  ok "2 shard processes at ipc://, one through the shared-memory ring, one over nanomsg (its shards.shm false), $(grep -o "[0-9]* migrations" "$tmp/ring.log"): equal to one in-process shard bit for bit"
else
  ko "ipc:// through the ring: predict exit $rc: $(grep -i "frames through\|error\|lost" "$tmp/ring.log" | head -3)"
fi
ipc_run nn false
if [ $rc -eq 0 ] && cmp -s "$tmp/ref.csv" "$tmp/nn.csv" && [ "$(grep -c "frames through nanomsg" "$tmp/nn.log")" = 2 ] &&
   ! grep -q "is lost" "$tmp/nn.log"; then
  ok "2 shard processes at ipc://, the router's shards.shm false: both over nanomsg, equal to one in-process shard bit for bit"
else
  ko "ipc:// over nanomsg: predict exit $rc: $(grep -i "frames through\|error\|lost" "$tmp/nn.log" | head -3)"
fi

# 2. refused by name
refused() { # name, text, shard args...
  local name=$1 text=$2
  shift 2
  local u="tcp://127.0.0.1:$(free_port)"
  echo "{\"shards\": {\"endpoints\": [\"$u\"], \"timeout_ms\": 3000}}" >"$tmp/r.json"
  shards r "$u" -- "$@"
  timeout 60 "$bin" predict --config "$tmp/r.json" --model "$model" --requests "$model/requests.csv" --out "$tmp/r.csv" \
    --backend cpu --precision fp64 >"$tmp/r.log" 2>&1
  local rc=$?
  kill "${spids[0]}" 2>/dev/null
  wait "${spids[0]}" 2>/dev/null
  if [ $rc -eq 1 ] && grep -q -- "$text" "$tmp/r.log"; then ok "$name: $(grep -o "refused by the shard process.*" "$tmp/r.log" | head -1)"
  else ko "$name: exit $rc: $(tail -2 "$tmp/r.log")"; fi
}
refused "another precision" "another engine" --precision fp32
# a state stored in other formats: a move between the two would be read wrong
echo '{"state_precision": ["fp16", "bf16", "fp32", "fp32"]}' >"$tmp/sp.json"
refused "another state precision" "another engine" --config "$tmp/sp.json"
echo '{"max_symbols": 512}' >"$tmp/m512.json"
refused "another max_symbols" "config key 'max_symbols'" --config "$tmp/m512.json"

# 5. a router started 6 s before its shard process (shards.timeout_ms 1 s)
# waits for it (shards.join_timeout_ms) and says so; with no shard process
# it gives up after join_timeout_ms, naming the key
u="tcp://127.0.0.1:$(free_port)"
echo "{\"shards\": {\"endpoints\": [\"$u\"], \"heartbeat_ms\": 100, \"timeout_ms\": 1000, \"join_timeout_ms\": 120000}}" \
  >"$tmp/j.json"
timeout 300 "$bin" predict --config "$tmp/j.json" --model "$model" --requests "$model/requests.csv" --out "$tmp/j.csv" \
  --backend cpu --precision fp64 >"$tmp/j.log" 2>&1 &
jp=$!
pids+=($jp)
sleep 6
shards j "$u" -- --sessions 1
wait $jp
jrc=$?
if [ $jrc -eq 0 ] && cmp -s "$tmp/ref.csv" "$tmp/j.csv" &&
   grep -q "waiting for the shard process at .* to take the handshake" "$tmp/j.log"; then
  ok "a shard process started 6 s after the router (timeout_ms 1000): waited for, the outputs bit for bit"
else
  ko "a shard process started after the router: predict exit $jrc: $(tail -2 "$tmp/j.log")"
fi
wait "${spids[0]}" 2>/dev/null
echo "{\"shards\": {\"endpoints\": [\"tcp://127.0.0.1:$(free_port)\"], \"join_timeout_ms\": 1500}}" >"$tmp/j2.json"
t1=$(date +%s%N)
timeout 60 "$bin" predict --config "$tmp/j2.json" --model "$model" --requests "$model/requests.csv" --out "$tmp/j2.csv" \
  --backend cpu --precision fp64 >"$tmp/j2.log" 2>&1
jrc=$?
jms=$((($(date +%s%N) - t1) / 1000000))
if [ $jrc -eq 1 ] && grep -q "within 1500 ms (shards.join_timeout_ms)" "$tmp/j2.log"; then
  ok "no shard process: the router gives up after join_timeout_ms ($jms ms in all): $(grep -o "no shard process took.*" "$tmp/j2.log" | head -1)"
else
  ko "no shard process: predict exit $jrc: $(tail -2 "$tmp/j2.log")"
fi

# 3 and 4: serve over shard processes, a client streaming 300 rows
rows=300
awk -v d="$delay" -v n=$rows 'NR == 1 { print $0 ",delay_ms"; next } NR <= n + 1 { print $0 "," d }' \
  "$data/traces/small.csv" >"$tmp/trace.csv"
at=$(awk -v d="$delay" -v n=$rows 'BEGIN { printf "%.2f", n * d * 0.3 / 1000 }') # 30 % into the stream
serve_run() { # name, timeout_ms, what to do to shard 1 ("stop" or "kill"), replay's --timeout
  local name=$1 to=$2 what=$3 rto=$4
  local u=("$(endpoint 0 "$name")" "$(endpoint 1 "$name")" "$(endpoint 2 "$name")")
  echo "{\"shards\": {\"count\": 3, \"endpoints\": $(endpoints_json "${u[@]}"), \"heartbeat_ms\": 100, \"timeout_ms\": $to}}" \
    >"$tmp/$name.json"
  shards "$name" "${u[@]}"
  (as_ns "$ns_r" "$bin" serve --listen 127.0.0.1:0 --port-file "$tmp/$name.port" --config "$tmp/$name.json" \
    --model "$model" --backend cpu --precision fp64 --status-every 0) >"$tmp/$name.serve.out" 2>"$tmp/$name.serve.err" &
  local serve=$!
  pids+=($serve)
  for _ in $(seq 400); do [ -s "$tmp/$name.port" ] && break; kill -0 $serve 2>/dev/null || break; sleep 0.05; done
  local port
  port=$(cat "$tmp/$name.port" 2>/dev/null)
  [ -n "$port" ] || { ko "$name: serve did not start: $(tail -3 "$tmp/$name.serve.err")"; return; }
  (as_ns "$ns_r" timeout 300 "$bin" replay --connect "127.0.0.1:$port" --requests "$tmp/trace.csv" \
    --expected "$data/golden_small/expected_f64.csv" --tolerance 1e-9 --speed 1 --timeout "$rto" \
    --report "$tmp/$name.r.json") >"$tmp/$name.r.out" 2>"$tmp/$name.r.err" &
  local replay=$!
  sleep "$at"
  if [ "$what" = stop ] && [ $mode = netns ]; then
    ip -n "$ns_r" link set "$(veth 1)" down; sleep 2; ip -n "$ns_r" link set "$(veth 1)" up
  elif [ "$what" = stop ]; then
    kill -STOP "${spids[1]}"; sleep 2; kill -CONT "${spids[1]}"
  else
    kill -9 "${spids[1]}"
  fi
  wait $replay
  rrc=$?
  # shard 1's own /metrics (in its namespace): its session, its steps
  local mp
  mp=$(cat "$tmp/$name.mport1" 2>/dev/null)
  in_ns "${ns[1]:-}" bash -c "exec 3<>/dev/tcp/127.0.0.1/$mp && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && timeout 5 cat <&3" \
    >"$tmp/$name.shard1.metrics" 2>/dev/null
  a=$(json_field answered "$tmp/$name.r.json") er=$(json_field errors_received "$tmp/$name.r.json")
  err=$(max_err "$tmp/$name.r.json")
  if [ "$what" = kill ]; then # the shard process back: it joins as a new shard; a client of new symbols
    (as_ns "${ns[1]:-}" "$bin" shard --listen "${u[1]}" --model "$model" --backend cpu --precision fp64 \
      --status-every 0) >>"$tmp/$name.shard1.log" 2>&1 &
    spids[1]=$!
    pids+=($!)
    for _ in $(seq 400); do grep -q "shard 1 at .* joined again" "$tmp/$name.serve.err" && break; sleep 0.05; done
    awk -F, -v OFS=, 'NR == 1 { print; next } { $(NF - 1) = "N_" $(NF - 1); print }' "$tmp/trace.csv" >"$tmp/$name.new.csv"
    in_ns "$ns_r" timeout 300 "$bin" replay --connect "127.0.0.1:$port" --requests "$tmp/$name.new.csv" \
      --expected "$data/golden_small/expected_f64.csv" --tolerance 1e-9 --speed 0 --timeout 60 \
      --report "$tmp/$name.new.json" >"$tmp/$name.new.out" 2>"$tmp/$name.new.err"
    nrc=$?
  fi
  kill $serve 2>/dev/null
  wait $serve 2>/dev/null
  for p in "${spids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
serve_run stopped 5000 stop 300
m=$tmp/stopped.shard1.metrics
sm() { awk -v k="$1" '$1 == k { print $2 }' "$m"; }
if grep -q "^symserve_shard_session_active 1" "$m" && [ "$(sm symserve_shard_sessions_total)" = 1 ] &&
   [ "$(sm 'symserve_shard_steps_total{shard="1"}')" -gt 0 ] 2>/dev/null &&
   [ "$(sm 'symserve_shard_symbols{shard="1"}')" -gt 0 ] 2>/dev/null; then
  ok "a shard process's /metrics: 1 session, active, $(sm 'symserve_shard_steps_total{shard="1"}') steps over $(sm 'symserve_shard_symbols{shard="1"}') symbols"
else
  ko "a shard process's /metrics: $(grep -v "^#" "$m" | head -5 | tr '\n' ' ')"
fi
if [ "$a" = $rows ] && [ "$er" = 0 ] && [ $rrc -eq 0 ] && within "$err" 1e-9 && ! grep -q "is lost" "$tmp/stopped.serve.err"; then
  ok "a shard process cut off for 2 s ($([ $mode = netns ] && echo "its link down" || echo "SIGSTOP"), timeout 5 s) $at s into the stream: $rows of $rows answered, max error $err, none lost"
else
  ko "a shard process cut off for 2 s: replay exit $rrc, answered $a, errors $er: $(grep -i "lost\|error" "$tmp/stopped.serve.err" | head -2)"
fi
# replay waits --timeout for answers that will never come (errors are not answers)
serve_run killed 1000 kill "$wait_s"
if [ -n "$a" ] && [ -n "$er" ] && [ $((a + er)) -ge $rows ] && [ "$er" -gt 0 ] && [ "$a" -gt 0 ] && within "$err" 1e-9 &&
   grep -q "shard 1 at .* is lost" "$tmp/killed.serve.err"; then
  ok "a shard process killed $at s into the stream: $a answered (max error $err), $er refused naming the lost shard, none unanswered"
else
  ko "a shard process killed: replay exit $rrc, answered $a, errors $er: $(tail -3 "$tmp/killed.r.out"); $(grep "lost" "$tmp/killed.serve.err" | head -2)"
fi
na=$(json_field answered "$tmp/killed.new.json")
if [ "$nrc" = 0 ] && [ "$na" = $rows ] && grep -q "shard 1 at .* joined again" "$tmp/killed.serve.err" &&
   [ "$(grep -c "a router connected" "$tmp/killed.shard1.log")" = 2 ]; then
  ok "the killed shard process started again joins as a new shard: $rows requests of new symbols answered right"
else
  ko "the killed shard process started again: replay exit $nrc, answered $na of $rows: $(tail -2 "$tmp/killed.new.out");" \
    "$(grep -i "joined\|joining" "$tmp/killed.serve.err" | head -2)"
fi
# every session's region, the killed shard process's included: its name
# is removed once both sides have mapped it. A name left is one that was
# not there before and whose creator (the pid in its name) has ended, as
# every router of this test has; a region of another test running beside
# this one has a live creator.
shm_left=
for f in $(ls /dev/shm | grep -E '^symserve-[0-9a-f]{16}$' | sort | comm -13 <(echo "$shm_before") -); do
  [ -d "/proc/$((16#${f:9:8}))" ] || shm_left="$shm_left $f"
done
[ -z "$shm_left" ] && ok "no shared-memory region left in /dev/shm" ||
  ko "shared-memory regions left in /dev/shm:$shm_left"
exit $fail
