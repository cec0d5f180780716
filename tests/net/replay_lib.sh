# Shared by the net tests. ok and ko: a test's verdict lines (PASS, FAIL;
# ko sets $fail, the exit code). start_replay: start `symserve replay` on a
# free loopback port in the background and wait for its port. Needs $bin,
# $tmp; sets $port and $replay_pid. Every wait is bounded.
fail=0
ok() { echo "PASS $*"; }
ko() { echo "FAIL $*"; fail=1; }
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
# get PATH [METHOD]: from the metrics server at $mport, the body to
# $tmp/body, the status code on stdout (curl, or bash's /dev/tcp)
get() {
  if command -v curl >/dev/null; then
    curl -s -m 5 -X "${2:-GET}" -o "$tmp/body" -w '%{http_code}' "http://127.0.0.1:$mport$1"
    return
  fi
  exec 3<>"/dev/tcp/127.0.0.1/$mport" || return
  printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "${2:-GET}" "$1" >&3
  timeout 5 cat <&3 >"$tmp/resp"
  exec 3<&-
  sed -n '1s/^HTTP\/1\.[01] \([0-9]*\).*/\1/p' "$tmp/resp"
  sed '1,/^\r\{0,1\}$/d' "$tmp/resp" >"$tmp/body"
}
# metric NAME: its value in $tmp/body (NAME with its labels, as written)
metric() { awk -v m="$1" '$1 == m { print $2 }' "$tmp/body"; }
