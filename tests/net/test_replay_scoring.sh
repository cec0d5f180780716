#!/usr/bin/env bash
# symserve replay scores honestly, against a scripted client
# (tests/net/replay_client.c) that sends exactly the bytes a case needs:
#  - predictions that are not 4 finite numbers ("x", {}, [1,2,3], null,
#    1e999, five numbers, a string) are `invalid`, never answered, listed
#    in the report, and the exit code is 3; a valid answer of the same id
#    later still counts; a line with a bare NaN is a bad message and its id
#    stays unanswered;
#  - ids that are not integers (1.5, "3", null, 1e3, 1e999) are
#    `invalid_ids`; integers replay never sent (-1, 2^64) are unknown ids
#    and fail the run (exit 1); ids up to 2^64 - 1 go both ways exactly;
#  - mse and mean abs error per tower against --expected, checked here with
#    awk; messages that need no answer are taken quietly;
#  - latency starts when a request's bytes are written, not when queued: a
#    client that reads nothing for 1 s while 1000 requests are due sees
#    that second on the few requests the kernel held, not on all of them;
#  - silent connections, too many of them, one sending junk, one that never
#    registers: none locks the client out;
#  - a client that floods bad lines and reads nothing is disconnected once
#    16 MiB of replies wait for it.
set -u
bin=$1 client=$2 data=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/replay_lib.sh"
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }
tiny=$data/traces/tiny.csv small=$data/traces/small.csv

# run NAME "REPLAY ARGS" CLIENT ARGS...: sets rrc, crc; report in $tmp/r.json
run() {
  local name=$1 rargs=$2
  shift 2
  rrc=- crc=-
  rm -f "$tmp/r.json" "$tmp/client.out"
  # shellcheck disable=SC2086
  if ! start_replay $rargs --report "$tmp/r.json"; then ko "$name: replay did not start: $(cat "$tmp/replay.err")"; return 1; fi
  timeout 60 "$client" "$port" "$@" >"$tmp/client.out" 2>&1
  crc=$?
  wait "$replay_pid"
  rrc=$?
  return 0
}
field() { json_field "$1" "$tmp/r.json"; }
expect() { # NAME FIELD VALUE...: each FIELD equals VALUE in the report
  local name=$1 bad=""
  shift
  while [ $# -ge 2 ]; do
    [ "$(field "$1")" = "$2" ] || bad="$bad $1=$(field "$1") (want $2)"
    shift 2
  done
  if [ -z "$bad" ]; then ok "$name"; else ko "$name:$bad; replay: $(tail -3 "$tmp/replay.out" | tr '\n' ' ') client: $(cat "$tmp/client.out")"; fi
}

resp() { printf '{"message_type":"inference_response","unique_ids":[{id}],"predictions":[%s]}' "$1"; }
valid=$(resp '[1,2,3,4]')

# 1. only garbage: nothing is answered, all of it is invalid, exit 3
run "garbage" "--requests $tiny --speed 0 --timeout 1" \
  --rotate "$(resp '"x"')" --rotate "$(resp '{}')" --rotate "$(resp '[1,2,3]')" --rotate "$(resp 'null')" \
  --rotate "$(resp '[1e999,0,0,0]')" --rotate "$(resp '[1,2,3,4,5]')" --rotate "$(resp '[1,2,3,"4"]')"
[ "$rrc" = 3 ] && ok "garbage: exit 3" || ko "garbage: exit $rrc"
expect "garbage: 100 invalid, none answered" answered 0 share_answered 0 invalid 100 invalid_ids 0 bad_messages 0 sent 100
n=$(grep -c '{"kind": "prediction", "unique_id": "[0-9]*", "text": ' "$tmp/r.json")
[ "$n" = 8 ] && ok "garbage: the report lists the first 8" || ko "garbage: $n examples listed: $(cat "$tmp/r.json")"
grep -q '"text": "\[inf,0,0,0\]", "reason": "prediction 0 is not finite"' "$tmp/r.json" &&
  grep -q '"text": "\[1,2,3\]", "reason": "a prediction must be a list of 4 numbers"' "$tmp/r.json" &&
  ok "garbage: examples name the row and the reason" || ko "garbage: examples: $(grep kind "$tmp/r.json")"
grep -q 'INVALID *100 predictions' "$tmp/replay.out" && ok "garbage: the text report says INVALID" || ko "garbage: text report: $(cat "$tmp/replay.out")"

# 2. garbage first, then a valid answer of each id: answered, and still exit 3
run "garbage then valid" "--requests $tiny --speed 0 --timeout 5" --rotate "$(resp '[1,2,3]')" --rotate "$(resp 'null')" --answer "$valid"
[ "$rrc" = 3 ] && ok "garbage then valid: exit 3" || ko "garbage then valid: exit $rrc"
expect "garbage then valid: invalid answers do not use up the id" answered 100 invalid 100 duplicates 0

# 3. a bare NaN makes the line malformed: a bad message, and its id stays unanswered
run "NaN" "--requests $tiny --speed 0 --timeout 1" --answer "$valid" --except 5 "$(resp '[NaN,0,0,0]')"
[ "$rrc" = 3 ] && ok "NaN: exit 3" || ko "NaN: exit $rrc"
expect "NaN: one bad message, its id unanswered" answered 99 bad_messages 1 invalid 0
grep -q '"kind": "message", "unique_id": "", "text": "{\\"message_type\\":\\"inference_response\\",\\"unique_ids\\":\[5\]' "$tmp/r.json" &&
  ok "NaN: the report shows the line" || ko "NaN: $(grep kind "$tmp/r.json")"

# 4. ids: not integers are invalid_ids, integers not sent are unknown
ids='{"message_type":"inference_response","unique_ids":[1.5,"3",null,1e3,1e999,-1,18446744073709551616],'
ids=$ids'"predictions":[[0,0,0,0],[0,0,0,0],[0,0,0,0],[0,0,0,0],[0,0,0,0],[0,0,0,0],[0,0,0,0]]}'
run "ids" "--requests $tiny --speed 0 --timeout 5" --raw "$ids" --answer "$valid"
[ "$rrc" = 3 ] && ok "ids: exit 3" || ko "ids: exit $rrc"
expect "ids: 1.5 \"3\" null 1e3 1e999 invalid, -1 2^64 unknown" answered 100 invalid_ids 5 unknown_ids 2 invalid 0
grep -q '"kind": "unique_id", "unique_id": "\\"3\\""' "$tmp/r.json" && ok "ids: examples show the id" || ko "ids: $(grep kind "$tmp/r.json")"
run "unknown id" "--requests $tiny --speed 0 --timeout 5" --raw "$(resp '[0,0,0,0]' | sed 's/{id}/-1/')" --answer "$valid"
[ "$rrc" = 1 ] && ok "unknown id -1: exit 1" || ko "unknown id -1: exit $rrc"
expect "unknown id -1: counted" answered 100 unknown_ids 1 invalid_ids 0

# ids are exact 64-bit integers both ways: a trace with ids up to 2^64 - 1
awk -F, -v OFS=, 'NR == 1 { print; next } { $1 = "1844674407370955" (1514 + NR); print }' "$tiny" >"$tmp/big.csv"
run "big ids" "--requests $tmp/big.csv --speed 0 --timeout 5" --answer "$valid"
[ "$rrc" = 0 ] && grep -q "100 ids, .*(0 ids in them not ours)" "$tmp/client.out" &&
  ok "ids 18446744073709551516..18446744073709551615: answered, and named exactly in score updates" ||
  ko "big ids: exit $rrc: $(cat "$tmp/client.out") $(tail -3 "$tmp/replay.err")"
expect "big ids: all answered" answered 100 unknown_ids 0

# 5. mse and mean abs error per tower vs --expected; quiet messages
c=(0.25 -0.5 1 -2)
run "mse" "--requests $small --expected $data/golden_small/expected_f64.csv --speed 0 --timeout 10" \
  --raw '{"message_type":"heartbeat","timestamp":1}' --raw '{"message_type":"stats_update"}' \
  --raw '{"message_type":"score_update","unique_ids":[],"trade_pnls":[],"accuracies":[],"latencies_ms":[]}' \
  --answer "$(resp "[${c[0]},${c[1]},${c[2]},${c[3]}]")"
[ "$rrc" = 0 ] && ok "mse: exit 0" || ko "mse: exit $rrc: $(tail -5 "$tmp/replay.err")"
expect "mse: all answered, nothing bad" answered 1000 scored 1000 bad_messages 0 invalid 0
want=$(awk -F, -v c0="${c[0]}" -v c1="${c[1]}" -v c2="${c[2]}" -v c3="${c[3]}" 'NR > 1 {
  split(c0 " " c1 " " c2 " " c3, c, " ")
  for (t = 1; t <= 4; t++) { d = $(t + 1) - c[t]; s[t] += d * d; a[t] += d < 0 ? -d : d }
  n++ } END { for (t = 1; t <= 4; t++) printf "%.17g %.17g\n", s[t] / n, a[t] / n }' "$data/golden_small/expected_f64.csv")
arr() { sed -n "s/^  \"$1\": \[\(.*\)\],\{0,1\}$/\1/p" "$tmp/r.json" | tr -d ' ' | tr ',' '\n'; }
close=$(paste <(echo "$want" | cut -d' ' -f1) <(arr mse) <(echo "$want" | cut -d' ' -f2) <(arr mean_abs_err) |
  awk 'function rel(a, b) { d = a - b; if (d < 0) d = -d; return d / (b < 0 ? -b : b) }
       NF == 4 && rel($2, $1) < 1e-12 && rel($4, $3) < 1e-12 { k++ } END { print k + 0 }')
[ "$close" = 4 ] && ok "mse and mean_abs_err per tower match awk's: $(arr mse | tr '\n' ' ')" ||
  ko "mse: want $(echo "$want" | tr '\n' ' '), report mse $(arr mse | tr '\n' ' ') mae $(arr mean_abs_err | tr '\n' ' ')"
grep -q '^    mse  ' "$tmp/replay.out" && ok "mse: in the text report" || ko "mse: text report: $(cat "$tmp/replay.out")"

# 6. latency is stamped at write time: the client stalls 1 s before reading
# 1000 requests due at once; its small receive buffer holds a few of them
run "stall" "--requests $small --speed 0 --timeout 10" --answer "$valid" --rcvbuf 4096 --stall-ms 1000
p50=$(sed -n 's/.*"latency_ms": {"p50": \([0-9.e+-]*\),.*/\1/p' "$tmp/r.json")
if [ "$rrc" = 0 ] && awk -v p="$p50" 'BEGIN { exit !(p < 400) }'; then ok "stall: p50 $p50 ms, not the 1 s backlog"
else ko "stall: exit $rrc, p50 ${p50:-?} ms (the backlog was stamped)"; fi

# 7. connections that do not register
run "silent first" "--requests $tiny --speed 0 --timeout 5" --answer "$valid" --idle 1
[ "$rrc" = 0 ] && grep -q "idle closed 1 of 1" "$tmp/client.out" && ok "a silent connection first: the client is served, the silent one closed" ||
  ko "silent first: exit $rrc: $(cat "$tmp/client.out") $(tail -3 "$tmp/replay.err")"
run "many silent and junk" "--requests $tiny --speed 0 --timeout 5" --answer "$valid" --idle 12 --junk 100000
[ "$rrc" = 0 ] && grep -q "idle closed 12 of 12, junk closed 1" "$tmp/client.out" && grep -q "a line over 4 KiB before register" "$tmp/replay.err" &&
  ok "12 silent connections and one sending 100 kB of junk: the client is served" ||
  ko "many silent: exit $rrc: $(cat "$tmp/client.out") $(tail -3 "$tmp/replay.err")"
run "register timeout" "--requests $tiny --speed 0 --timeout 5 --register-timeout 0.3" --answer "$valid" --idle 2 --idle-wait-ms 1200
[ "$rrc" = 0 ] && grep -q "idle closed 2 of 2" "$tmp/client.out" && grep -q "no register within 0.3 s" "$tmp/replay.err" &&
  ok "--register-timeout 0.3: silent connections closed before the client came" ||
  ko "register timeout: exit $rrc: $(cat "$tmp/client.out") $(tail -3 "$tmp/replay.err")"

# 8. a client that floods bad lines and reads nothing is reset at 16 MiB of replies
# (--timeout runs from the start, all being sent at once: the 400,000
# replies take 0.2 s in a Release build and several times that under ASan)
run "flood" "--requests $tiny --speed 0 --timeout 8" --flood 400000 --rcvbuf 4096
[ "$crc" = 0 ] && grep -q "client gone (not reading: [0-9]* bytes unsent, over the limit of 16777216)" "$tmp/replay.err" &&
  [ "$rrc" = 3 ] && ok "flood: disconnected at the output limit, exit 3" ||
  ko "flood: replay exit $rrc, client exit $crc: $(cat "$tmp/client.out") $(grep -E 'gone|limit' "$tmp/replay.err")"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
