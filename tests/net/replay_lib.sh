# Shared by the replay tests: start `symserve replay` on a free loopback port
# in the background and wait for its port. Needs $bin, $tmp; sets $port and
# $replay_pid. Every wait is bounded.
start_replay() { # replay args...
  rm -f "$tmp/port"
  "$bin" replay --port 0 --port-file "$tmp/port" "$@" >"$tmp/replay.out" 2>"$tmp/replay.err" &
  replay_pid=$!
  for _ in $(seq 100); do
    [ -s "$tmp/port" ] && break
    kill -0 "$replay_pid" 2>/dev/null || break
    sleep 0.05
  done
  port=$(cat "$tmp/port" 2>/dev/null)
  [ -n "$port" ]
}
# json_field NAME FILE: the value of a top-level scalar in the report
json_field() { sed -n "s/^  \"$1\": \([^,]*\),\{0,1\}$/\1/p" "$2"; }
