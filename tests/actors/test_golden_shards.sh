#!/usr/bin/env bash
# Golden predictions through symserve predict (CPU fp64) with 1, 2, 3 and 8
# shards, with and without migrations, and with a rebalance 3 -> 5 mid-stream:
# every output file must be bitwise identical to the one-shard run and within
# 1e-9 of expected_f64.csv; so must a run whose CPU backends step on four
# threads instead of one (config cpu.threads). Then the config's errors and
# log.level. A third argument "sanitized" keeps golden_long to
# the cases that cover each path (one shard, several, migrations, a rebalance):
# a sanitized -O1 step is ~20x slower and the full list would take minutes.
set -u
bin=$1 data=$2 mode=${3:-full}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }

# a config for the runs: cpu.threads $2, and as many slots as the file has
# symbols (predict's own choice without a config: 1024 slots a shard would
# take gigabytes); one thread a backend keeps 8 shards off each other's cores
config() { # FILE, threads, extra keys...
  local n
  n=$(tail -n +2 "$d/requests.csv" | cut -d, -f2 | sort -u | wc -l)
  printf '{"cpu": {"threads": %d}, "max_symbols": %d%s}\n' "$2" "$n" "${3:-}" >"$1"
}

for g in golden_small golden_long; do
  d=$data/$g
  config "$tmp/$g.t1.json" 1
  config "$tmp/$g.t4.json" 4
  run() { # name, extra args...
    local name=$1
    shift
    if "$bin" predict --model "$d" --requests "$d/requests.csv" --out "$tmp/$g.$name.csv" --backend cpu \
        --precision fp64 --expected "$d/expected_f64.csv" --tolerance 1e-9 --config "$tmp/$g.t1.json" "$@" \
        >"$tmp/log" 2>&1; then
      if [ "$name" = s1 ] || cmp -s "$tmp/$g.s1.csv" "$tmp/$g.$name.csv"; then ok "$g $name ($*): within 1e-9, identical"
      else ko "$g $name ($*): differs from the one-shard run"; fi
    else ko "$g $name ($*): $(tail -2 "$tmp/log")"; fi
  }
  run s1 --shards 1
  [ $g = golden_small ] && run t4 --shards 2 --config "$tmp/$g.t4.json"
  if [ "$mode" = sanitized ] && [ $g = golden_long ]; then
    run s3 --shards 3
    run m3 --shards 3 --migrate-every 7 --migrate-seed 9
    run rbm --shards 3 --rebalance-at 300:5 --migrate-every 11
    continue
  fi
  for n in 2 3 8; do run "s$n" --shards $n; done
  run m2 --shards 2 --migrate-every 3
  run m3 --shards 3 --migrate-every 7 --migrate-seed 9
  run m8 --shards 8 --migrate-every 5
  run rb --shards 3 --rebalance-at 400:5
  run rbm --shards 3 --rebalance-at 300:5 --migrate-every 11
done

# engine options: bad values are a clear error (exit 1) or a usage error (exit 2)
d=$data/golden_small
expect_fail() { # name, exit code, stderr text, args...
  local name=$1 want=$2 text=$3
  shift 3
  "$bin" predict --model "$d" --requests "$d/requests.csv" --out "$tmp/o.csv" --backend cpu "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -eq "$want" ] && grep -q -- "$text" "$tmp/err"; then ok "$name: $(head -1 "$tmp/err")"
  else ko "$name: exit $rc, stderr: $(head -2 "$tmp/err")"; fi
}
echo '{"shards": {"count": 2, "gpus": [0]}}' >"$tmp/c1.json"
expect_fail "unknown config key" 1 "shards.gpus" --config "$tmp/c1.json"
echo '{"max_batch": 0}' >"$tmp/c2.json"
expect_fail "bad config value" 1 "max_batch" --config "$tmp/c2.json"
echo '{"max_symbols": 5}' >"$tmp/c3.json"
expect_fail "more symbols than max_symbols" 1 "max_symbols" --config "$tmp/c3.json"
echo '{"max_batch": ' >"$tmp/c4.json"
expect_fail "config not JSON" 1 "not valid JSON" --config "$tmp/c4.json"
expect_fail "missing config" 1 "cannot open config" --config "$tmp/none.json"
expect_fail "zero shards" 2 "usage" --shards 0
expect_fail "zero migrate-every" 2 "usage" --migrate-every 0
expect_fail "bad rebalance-at" 2 "usage" --rebalance-at 5
expect_fail "fp64 on cuda" 1 "cuda" --backend cuda --precision fp64
echo '{"cpu": {"threads": 5}}' >"$tmp/c5.json"
expect_fail "cpu.threads out of range" 1 "cpu.threads" --config "$tmp/c5.json"
echo '{"log": {"level": "loud"}}' >"$tmp/c6.json"
expect_fail "log.level unknown" 1 "log.level" --config "$tmp/c6.json"

# log.level: "warn" drops info lines (a rebalance's), the default keeps them
head -n 51 "$d/requests.csv" >"$tmp/r50.csv"
for level in info warn; do
  config "$tmp/l.json" 1 ", \"log\": {\"level\": \"$level\"}"
  "$bin" predict --model "$d" --requests "$tmp/r50.csv" --out "$tmp/o.csv" --backend cpu --rebalance-at 20:3 \
    --config "$tmp/l.json" >/dev/null 2>"$tmp/err"
  seen=$(grep -c " info rebalance" "$tmp/err")
  if { [ $level = info ] && [ "$seen" = 1 ]; } || { [ $level = warn ] && [ "$seen" = 0 ]; }; then
    ok "log.level $level: $seen info line(s) of the rebalance"
  else ko "log.level $level: $seen info lines of the rebalance: $(head -2 "$tmp/err")"; fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
