#!/usr/bin/env bash
# symserve replay --resend and --drop-after, against the scripted client
# (tests/net/replay_client.c), which reconnects and registers again when the
# connection is lost:
#  - the client answers the first 100 ids and holds back the next 100;
#    --drop-after 200 resets the connection right after request 200 is
#    written; with --resend the next connection gets ids 100..199 again,
#    in order, then 200..999: every id answered once, resent 100, the
#    latency of a re-sent request from its last send;
#  - the client also answers 0..99 again after reconnecting: with the same
#    values that is 100 reanswered (exit 0), with other values 100
#    duplicates (exit 1);
#  - without --resend: 100..199 stay unanswered (timeout, exit 1), the next
#    connection gets 200..999, and answers repeated are duplicates;
#  - the cut comes right after the message holding the N-th request (7 rows
#    a message: 203 written), also when a backlog is flushed at once; as fast as possible, with answers and
#    requests in flight at the cut; a client that resets the connection
#    itself: every id answered, no duplicate, resent as logged;
#  - usage errors.
set -u
bin=$1 client=$2 data=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/replay_lib.sh"
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }

# run NAME "REPLAY ARGS" CLIENT ARGS...: sets rrc, crc; report in $tmp/r.json, ids in $tmp/ids
run() {
  local name=$1 rargs=$2
  shift 2
  rrc=- crc=-
  rm -f "$tmp/r.json" "$tmp/client.out" "$tmp/ids"
  # shellcheck disable=SC2086
  if ! start_replay $rargs --report "$tmp/r.json"; then ko "$name: replay did not start: $(cat "$tmp/replay.err")"; return 1; fi
  timeout 60 "$client" "$port" --ids-file "$tmp/ids" "$@" >"$tmp/client.out" 2>&1
  crc=$?
  wait "$replay_pid"
  rrc=$?
  return 0
}
field() { # a top-level scalar; timed_out shares its line with the other run fields
  if [ "$1" = timed_out ]; then sed -n 's/.*"timed_out": \([a-z]*\),.*/\1/p' "$tmp/r.json"; else json_field "$1" "$tmp/r.json"; fi
}
expect() { # NAME FIELD VALUE...: each FIELD equals VALUE in the report
  local name=$1 bad=""
  shift
  while [ $# -ge 2 ]; do
    [ "$(field "$1")" = "$2" ] || bad="$bad $1=$(field "$1") (want $2)"
    shift 2
  done
  if [ -z "$bad" ]; then ok "$name"; else ko "$name:$bad; replay: $(tail -4 "$tmp/replay.err" | tr '\n' ' ') client: $(cat "$tmp/client.out")"; fi
}
conn_ids() { awk -v c="$1" '$1 == c { print $2 }' "$tmp/ids"; } # ids the client got on connection C, in order
# the requests on connection C are exactly ids FROM..TO in order
conn_is() {
  if [ "$(conn_ids "$2" | tr '\n' ' ')" = "$(seq "$3" "$4" | tr '\n' ' ')" ]; then ok "$1: connection $2 got ids $3..$4 in order"
  else ko "$1: connection $2 got $(conn_ids "$2" | wc -l) ids: $(conn_ids "$2" | head -3 | tr '\n' ' ').. $(conn_ids "$2" | tail -3 | tr '\n' ' ')"; fi
}
# the first connection got ids 0..K-1 in order, K <= 200 (a reset may lose what is in flight)
first_conn_ok() {
  local k
  k=$(conn_ids 1 | wc -l)
  if [ "$k" -le 200 ] && [ "$(conn_ids 1 | tr '\n' ' ')" = "$(seq 0 $((k - 1)) | tr '\n' ' ')" ]; then ok "$1: connection 1 got ids 0..$((k - 1))"
  else ko "$1: connection 1 got $k ids: $(conn_ids 1 | head -3 | tr '\n' ' ').. $(conn_ids 1 | tail -3 | tr '\n' ' ')"; fi
}
logged() { grep -q -- "$2" "$tmp/replay.err" && ok "$1: replay logs '$2'" || ko "$1: no '$2' in: $(tail -5 "$tmp/replay.err")"; }

resp() { printf '{"message_type":"inference_response","unique_ids":[{id}],"predictions":[%s]}' "$1"; }
valid=$(resp '[1,2,3,4]') other=$(resp '[1,2,3,4.000000000000001]')

# small.csv with no gaps but one of 300 ms before row 100: rows 0..99 go at
# once and their answers are read well before rows 100..199 go, so at the
# cut after row 199 exactly rows 100..199 are sent and not answered
awk -F, -v OFS=, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "delay_ms") d = i; print; next }
  { $d = NR == 102 ? 300 : 0; print }' "$data/traces/small.csv" >"$tmp/gap.csv"
hold=(--answer "$valid" --answer-first 100 --reconnect 1)

# 1. --resend: the unanswered ones at the cut go again, first, in order; the
# client comes back after 1.5 s, and a re-sent request's latency runs from
# its last send
run "resend" "--requests $tmp/gap.csv --resend --drop-after 200 --timeout 10" "${hold[@]}" --reconnect-wait-ms 1500
[ "$rrc" = 0 ] && [ "$crc" = 0 ] && ok "resend: exit 0" || ko "resend: replay exit $rrc, client exit $crc: $(tail -3 "$tmp/replay.err")"
expect "resend: every id answered once, 100 re-sent" answered 1000 sent 1000 resent 100 reanswered 0 duplicates 0 timed_out false
logged "resend" "client gone (cut by --drop-after 200: 200 requests written)"
logged "resend" "100 requests sent and not answered go again to the next client (--resend)"
first_conn_ok "resend"
conn_is "resend" 2 100 999
grep -q "2 connections, ids again [0-9]* later and 0 on the same connection" "$tmp/client.out" &&
  ok "resend: no id twice on one connection" || ko "resend: $(cat "$tmp/client.out")"
max=$(sed -n 's/.*"latency_ms": {.*"max": \([0-9.e+-]*\),.*/\1/p' "$tmp/r.json")
awk -v m="$max" 'BEGIN { exit !(m < 1000) }' && ok "resend: max latency $max ms, from the last send" ||
  ko "resend: max latency ${max:-?} ms: the 1.5 s away counted"
grep -q 'answered  *1000 (100.0%), reanswered 0, duplicates 0' "$tmp/replay.out" && grep -q 're-sent 100)' "$tmp/replay.out" &&
  ok "resend: the text report says re-sent and reanswered" || ko "resend: text report: $(cat "$tmp/replay.out")"

# 2. answers of 0..99 repeated after the reconnect, the same: re-answers
run "reanswer" "--requests $tmp/gap.csv --resend --drop-after 200 --timeout 10" "${hold[@]}" --reanswer "$valid"
[ "$rrc" = 0 ] && ok "reanswer: exit 0" || ko "reanswer: replay exit $rrc: $(tail -3 "$tmp/replay.err")"
expect "reanswer: the same values again are 100 reanswered" answered 1000 resent 100 reanswered 100 duplicates 0
# other values (one ulp off): duplicates, an error
run "reanswer differently" "--requests $tmp/gap.csv --resend --drop-after 200 --timeout 10" "${hold[@]}" --reanswer "$other"
[ "$rrc" = 1 ] && ok "reanswer differently: exit 1" || ko "reanswer differently: replay exit $rrc: $(tail -3 "$tmp/replay.err")"
expect "reanswer differently: 100 duplicates" answered 1000 resent 100 reanswered 0 duplicates 100

# 3. without --resend: what was in flight stays unanswered; repeats are duplicates
run "no resend" "--requests $tmp/gap.csv --drop-after 200 --timeout 1" "${hold[@]}" --reanswer "$valid"
[ "$rrc" = 1 ] && ok "no resend: exit 1" || ko "no resend: replay exit $rrc: $(tail -3 "$tmp/replay.err")"
expect "no resend: 100 never answered, repeats are duplicates" answered 900 sent 1000 resent 0 reanswered 0 duplicates 100 timed_out true
conn_is "no resend" 2 200 999

# 4. the cut comes after the message that holds request N: 7 rows a message
run "batches" "--requests $data/traces/small.csv --speed 0 --batch-rows 7 --resend --drop-after 200 --timeout 10" --answer "$valid" --reconnect 1
[ "$rrc" = 0 ] && ok "batches: exit 0" || ko "batches: replay exit $rrc: $(tail -3 "$tmp/replay.err")"
logged "batches" "cut by --drop-after 200: 203 requests written"

# with a backlog (the client reads nothing for 0.3 s through a small
# receive buffer), one flush could carry many requests past the cut: it stops at it
run "backlog" "--requests $data/traces/small.csv --speed 0 --resend --drop-after 200 --timeout 10" --answer "$valid" --reconnect 1 \
  --rcvbuf 4096 --stall-ms 300
[ "$rrc" = 0 ] && ok "backlog: exit 0" || ko "backlog: replay exit $rrc: $(tail -3 "$tmp/replay.err")"
logged "backlog" "cut by --drop-after 200: 200 requests written"
expect "backlog: every id answered once" answered 1000 duplicates 0

# 5. as fast as possible: requests and answers in flight at the cut
for i in 1 2 3; do
  run "speed 0 #$i" "--requests $data/traces/small.csv --speed 0 --resend --drop-after 200 --timeout 10" --answer "$valid" --reconnect 1
  n=$(sed -n 's/.*: \([0-9]*\) requests sent and not answered go again.*/\1/p' "$tmp/replay.err")
  [ "$rrc" = 0 ] && ok "speed 0 #$i: exit 0" || ko "speed 0 #$i: replay exit $rrc: $(tail -3 "$tmp/replay.err")"
  expect "speed 0 #$i: every id answered once, ${n:-0} re-sent as logged" answered 1000 sent 1000 resent "${n:-0}" duplicates 0 reanswered 0
done

# 6. the client resets the connection itself after 150 ids
run "client reset" "--requests $data/traces/small.csv --speed 0 --resend --timeout 10" --answer "$valid" --reconnect 1 --reset-after 150
n=$(sed -n 's/.*: \([0-9]*\) requests sent and not answered go again.*/\1/p' "$tmp/replay.err")
[ "$rrc" = 0 ] && ok "client reset: exit 0" || ko "client reset: replay exit $rrc: $(tail -3 "$tmp/replay.err")"
expect "client reset: every id answered once, ${n:-0} re-sent as logged" answered 1000 duplicates 0 resent "${n:-0}"
logged "client reset" "client gone"

# 7. usage
for bad in "--drop-after -1" "--drop-after x" "--drop-after" "--drop-after 1.5"; do
  # shellcheck disable=SC2086
  "$bin" replay --port 0 --requests "$data/traces/tiny.csv" $bad >"$tmp/out" 2>&1
  rc=$?
  [ $rc = 2 ] && ok "usage: $bad: exit 2" || ko "usage: $bad: exit $rc"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
