# Shared by the crash tests of play --state-dir. Needs $bin, $model, $tmp,
# and $port (replay_lib.sh's start_replay) for play_state. $crash_engine:
# the engine options of the uninterrupted run and of play (default: the
# CPU in fp64).
crash_engine=${crash_engine:-"--backend cpu --precision fp64"}
#
# paced_requests [MIN_MS]: the in-process fp64 answers of $model's
# requests into $tmp/expect.csv, and the requests into $tmp/req.csv with
# rows 3x as far apart as this build takes to step one (a sanitized build
# is 20x slower), MIN_MS (5) at least, so that the kills come while the
# stream runs.
paced_requests() {
  local t0 min=${1:-5}
  t0=$(date +%s%N)
  "$bin" predict --model "$model" --requests "$model/requests.csv" --out "$tmp/expect.csv" $crash_engine \
    >"$tmp/predict.log" 2>&1 || { echo "FAIL predict: $(tail -2 "$tmp/predict.log")"; exit 1; }
  delay=$((($(date +%s%N) - t0) * 3 / 1000000000))
  [ "$delay" -ge "$min" ] || delay=$min
  awk -v d="$delay" 'NR == 1 { print $0 ",delay_ms"; next } { print $0 "," d }' "$model/requests.csv" >"$tmp/req.csv"
  echo "rows $delay ms apart"
}
# play_state CONFIG LOG: play with the state dir $tmp/state against $port,
# in the background (play_pid), once it has recovered and registered (120 s
# at most: slow under TSan)
play_state() {
  "$bin" play --config "$1" --host 127.0.0.1 --port "$port" --model "$model" $crash_engine \
    --state-dir "$tmp/state" --max-reconnects 50 >"$2" 2>&1 &
  play_pid=$!
  for _ in $(seq 2400); do
    grep -q "registered" "$2" 2>/dev/null && break
    kill -0 "$play_pid" 2>/dev/null || break
    sleep 0.05
  done
}
# snapshot_in_use LOG [N]: waits (60 s at most) for N (1) snapshots of
# that run in use (a failed one says so, and does not count)
snapshot_in_use() { wait_line "$1" "state: snapshot [0-9]*: " "${2:-1}"; }
# wait_line LOG PATTERN [N]: waits (60 s at most) for N (1) lines of the
# log matching the grep pattern; 1 when they did not come
wait_line() {
  for _ in $(seq 1200); do
    [ "$(grep -c -- "$2" "$1")" -ge "${3:-1}" ] && return 0
    sleep 0.05
  done
  return 1
}
