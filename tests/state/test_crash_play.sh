#!/usr/bin/env bash
# Durable state across crashes: `symserve replay --resend` streams the
# golden_small requests (1,000, 5 ms apart, or further apart on a build
# too slow for that pace: see below) to `symserve play
# --state-dir` (golden_small model, CPU fp64), which is killed with SIGKILL
# at 3 random points (each once a snapshot of that run is in use) and
# started again each time; before the second kill
# the log also gets a torn record at its end (a write cut short). Every
# request must be answered, each once, and every answer must equal the
# uninterrupted run's bit for bit (symserve predict over the same file,
# --tolerance 0): a step lost or applied twice by a crash would put its
# symbol off and every later answer of it. Then a directory written for
# another engine, and one whose log is corrupt before its end, must be
# refused by name; a damaged newest snapshot is skipped, and a segment
# whose creation a kill cut short is removed. Skipped (77) when this build has no engine.
# With ENGINE ("--backend cuda --precision fp32") and TOLERANCE (1e-5) the
# kills run on that engine, its answers held to TOLERANCE of its own
# uninterrupted run (a GPU's steps of other batch sizes round otherwise),
# and the checks of refused directories, which do not depend on it, are
# left to the CPU run:
#   tests/state/test_crash_play.sh BIN DATA [ENGINE TOLERANCE]
set -u
bin=$1 data=$2 crash_engine=${3:-} tol=${4:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${play_pid:-}" ] && kill -9 "$play_pid" 2>/dev/null' EXIT
. "$(dirname "$0")/../net/replay_lib.sh"
. "$(dirname "$0")/crash_lib.sh"
if "$bin" play --help 2>&1 | grep -q "has no engine"; then echo "SKIP: symserve built without the engine"; exit 77; fi
model=$data/golden_small

paced_requests

# snapshots every 0.1 s, and a window of 300 ids, so that snapshots are
# taken, used and the files they make unneeded removed within the stream
echo '{"state": {"snapshot_every_s": 0.1}, "net": {"id_window": 300}}' >"$tmp/play.cfg"
play() { play_state "$tmp/play.cfg" "$1"; } # log file
# a torn write: the first bytes of a record (a length and part of a body)
# at the end of the newest segment, as a crash in the middle of write(2)
tear() {
  local seg
  seg=$(ls "$tmp"/state/wal-*.log | tail -1)
  printf '\x40\x00\x00\x00\x12\x34\x56\x78\x01\x07\x00' >>"$seg"
}

start_replay --requests "$tmp/req.csv" --expected "$tmp/expect.csv" --tolerance "$tol" --speed 1 --batch-rows 4 \
  --resend --report "$tmp/r.json" --timeout 240 || { echo "FAIL replay did not start: $(cat "$tmp/replay.err")"; exit 1; }
for k in 1 2 3; do
  play "$tmp/play$k.log"
  # once this run has a snapshot in use (60 s at most: a sanitized build is
  # slow), then 0.1 .. 0.5 s more, at a random point
  snapshot_in_use "$tmp/play$k.log"
  sleep "0.$((RANDOM % 5 + 1))"
  if [ $k = 2 ]; then
    kill -STOP "$play_pid"
    tear
  fi
  kill -9 "$play_pid"
  wait "$play_pid" 2>/dev/null
done
play "$tmp/play4.log"
wait "$replay_pid"
rrc=$?
kill "$play_pid" 2>/dev/null
wait "$play_pid" 2>/dev/null
play_pid=
a=$(json_field answered "$tmp/r.json") d=$(json_field duplicates "$tmp/r.json") r=$(json_field resent "$tmp/r.json")
if [ $rrc -eq 0 ] && [ "$a" = 1000 ] && [ "$d" = 0 ]; then
  ok "3 kills ($crash_engine): 1000 of 1000 answered once, $([ "$tol" = 0 ] && echo "equal to the uninterrupted run bit for bit" || echo "within $tol of the uninterrupted run") ($r re-sent)"
else
  ko "3 kills: replay exit $rrc, answered $a, duplicates $d, re-sent $r"
  tail -3 "$tmp/replay.err"
fi
snaps=0
for k in 2 3 4; do
  line=$(grep "state recovered" "$tmp/play$k.log")
  echo "  run $k: ${line#*play: }"
  if ! echo "$line" | grep -qE "[1-9][0-9]* ids answered before"; then ko "run $k recovered nothing"; fi
  echo "$line" | grep -q "snapshot snap-" && snaps=$((snaps + 1))
done
before=$(grep "state recovered" "$tmp/play2.log" | grep -oE "[0-9]+ ids answered before" | cut -d' ' -f1)
if [ -n "$before" ] && [ "$before" -lt 1000 ]; then
  ok "the first kill came mid-stream: $before of 1000 answered before it"
else
  ko "the first kill did not come mid-stream (${before:-no} ids answered before it): the test tested nothing"
fi
removed=$(grep -ho "[0-9]* log segments and [0-9]* snapshots removed" "$tmp/play4.log")
echo "  files now: $(ls "$tmp/state" | tr '\n' ' ')"
# kept: the two newest relied on, and at most one newer whose last answers
# were still in flight when play stopped
if [ $snaps -ge 1 ] && [ "$(ls "$tmp"/state/snap-*.bin | wc -l)" -le 3 ] && ! ls "$tmp"/state/*.tmp >/dev/null 2>&1; then
  ok "snapshots: $snaps of 3 recoveries started from one; at most 3 on disk, none unfinished; the last run: $removed"
else
  ko "snapshots: $snaps recoveries started from one; files: $(ls "$tmp/state" | tr '\n' ' ')"
fi
if grep -q "log's tail is torn" "$tmp/play3.log" && grep "state recovered" "$tmp/play3.log" | grep -qE " [1-9][0-9]* torn bytes cut"; then
  ok "the torn record was found and cut, not applied"
else
  ko "the torn record was not reported: $(grep -i "torn\|state" "$tmp/play3.log" | head -3)"
fi

[ -n "${3:-}" ] && exit $fail # the rest does not depend on the engine: the CPU run checks it

# refused by name: another engine's directory, a corrupt segment before the last
refused() { # name, text, extra args...
  local name=$1 text=$2
  shift 2
  "$bin" play --host 127.0.0.1 --port 1 --model "$model" --backend cpu --state-dir "$tmp/state" --max-reconnects 0 \
    "$@" >"$tmp/refused.log" 2>&1
  local rc=$?
  if [ $rc -eq 1 ] && grep -q -- "$text" "$tmp/refused.log"; then ok "$name: $(grep "symserve play" "$tmp/refused.log")"
  else ko "$name: exit $rc: $(tail -2 "$tmp/refused.log")"; fi
}
refused "another precision" "written for another engine" --precision fp32
echo '{"state_precision": ["fp16", "bf16", "fp32", "fp32"]}' >"$tmp/sp.json"
refused "another state precision" "written for another engine" --precision fp64 --config "$tmp/sp.json"
# the newest snapshot cut short: skipped for the one before, or, when it
# is the only one and the log no longer goes back to the start, refused
n_snaps=$(ls "$tmp"/state/snap-*.bin | wc -l)
last=$(ls "$tmp"/state/snap-*.bin | tail -1)
mv "$last" "$tmp/saved.bin"
head -c 100 "$tmp/saved.bin" >"$last"
# and a kill while a new segment's header was being written: its
# temporary file, which recovery removes
next=$(ls "$tmp"/state/wal-*.log | tail -1 | sed 's/.*wal-0*\([0-9]*\)\.log/\1/')
unfinished=$(printf "%s/state/wal-%08d.log.tmp" "$tmp" $((next + 1)))
printf 'SYMWAL' >"$unfinished"
"$bin" play --config "$tmp/play.cfg" --host 127.0.0.1 --port 1 --model "$model" --backend cpu --precision fp64 \
  --state-dir "$tmp/state" --max-reconnects 0 >"$tmp/skip.log" 2>&1
if grep -q "cut short.*skipped" "$tmp/skip.log" && grep "state recovered" "$tmp/skip.log" | grep -q "1 newer skipped"; then
  ok "a damaged snapshot ($n_snaps on disk) is skipped for the one before: $(grep -o "snapshot [a-z0-9-]*\(.bin\)\{0,1\} (" "$tmp/skip.log" | head -1)"
elif [ "$n_snaps" = 1 ] && grep -q "no snapshot before it is usable" "$tmp/skip.log"; then
  ok "the only snapshot damaged, the log not from its start: refused: $(grep "symserve play" "$tmp/skip.log")"
else
  ko "a damaged snapshot ($n_snaps on disk): $(grep -i "snapshot\|state" "$tmp/skip.log" | head -3)"
fi
if [ ! -e "$unfinished" ]; then
  ok "a segment cut short while its header was written (its temporary file) is removed at recovery"
else
  ko "an unfinished segment: $(ls "$tmp/state" | tr '\n' ' '): $(grep -i "state" "$tmp/skip.log" | head -3)"
fi
first=$(ls "$tmp"/state/wal-*.log | head -1)
size=$(stat -c %s "$first")
printf "\xde\xad\xbe\xef" | dd of="$first" bs=1 seek=$((size / 2)) conv=notrunc status=none
refused "a flipped byte in an earlier segment" "not the last one is corrupt" --precision fp64
exit $fail
