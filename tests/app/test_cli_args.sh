#!/usr/bin/env bash
# The subcommands' option parsing (app/cli_args.h) through the CLI: an
# unknown or abbreviated option, a missing or empty value, a stray argument,
# and a number that is not one or out of range are usage errors (exit 2)
# that name the option and the value, with the usage after them; --help
# lists every option and exits 0; values that are right reach the command
# (which then fails at run time, exit 1, on a file or port that is not there).
set -u
bin=$1 data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }

# every run is bounded: options read wrong may leave a server waiting
run() { timeout 20 "$bin" "$@"; }

# name, exit code, text on stderr (fixed string), command and args...
expect() {
  local name=$1 want=$2 text=$3
  shift 3
  local cmd=COMMAND
  case ${1:-} in predict | play | replay | weights) cmd=$1 ;; esac
  run "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne "$want" ] || ! grep -qF -- "$text" "$tmp/err" || grep -q "Sanitizer\|runtime error:" "$tmp/err"; then
    ko "$name: exit $rc (want $want), stderr: $(head -2 "$tmp/err")"
  elif [ "$want" = 2 ] && ! grep -q "^usage: symserve $cmd" "$tmp/err"; then
    ko "$name: no usage after the message"
  else ok "$name: $(head -1 "$tmp/err")"; fi
}

d=$data/golden_small
no=$tmp/nothing.csv # a file that is not there: the options were read, the run fails (exit 1)
pre=(predict --model "$d" --requests "$no" --out "$tmp/o.csv")
rep=(replay --port 0 --requests "$no")
engine=1
run play --help 2>&1 | grep -q "has no engine" && engine=0

# --help: exit 0, the usage on stdout, every option named in it and known
# to the parser (a name the parser does not know would be 'unknown option')
declare -A opts=(
  [predict]="model synthetic size requests out backend precision shards max-batch config migrate-every migrate-seed rebalance-at expected tolerance"
  [play]="host port config model synthetic size backend precision num-symbols heartbeat max-reconnects"
  [replay]="port requests expected tolerance speed rate symbols duration features seed host batch-rows timeout report plot cdf inject-bad port-file register-timeout resend drop-after"
  [weights]="synthetic size hidden proj depth heads out check"
)
for cmd in predict play replay weights; do
  [ $cmd = play ] && [ $engine = 0 ] && continue
  run $cmd --help >"$tmp/out" 2>"$tmp/err"
  rc=$?
  missing=
  for o in ${opts[$cmd]}; do
    grep -q -- "--$o\b" "$tmp/out" || missing="$missing --$o"
    run $cmd "--$o" >/dev/null 2>"$tmp/err2"
    grep -q "unknown option" "$tmp/err2" && missing="$missing --$o(unknown)"
  done
  if [ $rc = 0 ] && grep -q "^usage: symserve $cmd" "$tmp/out" && [ ! -s "$tmp/err" ] && [ -z "$missing" ]; then
    ok "$cmd --help: exit 0, usage on stdout, every option listed and known"
  else ko "$cmd --help: exit $rc, missing:$missing, stderr: $(head -1 "$tmp/err")"; fi
done
expect "symserve alone" 2 "usage: symserve COMMAND"
expect "unknown command" 2 "unknown command 'frob'" frob

# unknown options, abbreviations, missing and empty values, stray arguments
expect "predict: unknown option" 2 "unknown option '--frobnicate'" "${pre[@]}" --frobnicate 1
expect "predict: abbreviated option" 2 "unknown option '--shard'" "${pre[@]}" --shard 2
expect "predict: missing value" 2 "--tolerance needs a value" "${pre[@]}" --tolerance
expect "predict: value forgotten before an option" 2 "--out needs a value, not the option '--shards'" \
  predict --model "$d" --requests "$no" --out --shards 3
expect "predict: empty value" 2 "--model: the value is empty" predict --model= --requests "$no" --out "$tmp/o.csv"
expect "predict: stray argument" 2 "unexpected argument 'extra'" "${pre[@]}" extra
expect "predict: stray argument after --" 2 "unexpected argument 'extra'" "${pre[@]}" -- extra
expect "predict: short option" 2 "unknown option '-s'" "${pre[@]}" -s 2
expect "replay: unknown option" 2 "unknown option '--frobnicate'" "${rep[@]}" --frobnicate
expect "replay: missing value" 2 "--drop-after needs a value" "${rep[@]}" --drop-after
expect "replay: a flag given a value" 2 "--resend takes no value" "${rep[@]}" --resend=1
expect "replay: stray argument" 2 "unexpected argument 'tiny.csv'" replay --port 0 tiny.csv
expect "weights: unknown option" 2 "unknown option '--frobnicate'" weights --synthetic 1 --out "$tmp/w" --frobnicate
expect "weights: missing value" 2 "--out needs a value" weights --synthetic 1 --out
expect "weights: stray argument" 2 "unexpected argument 'dir'" weights --check "$d" dir
if [ $engine = 1 ]; then
  expect "play: unknown option" 2 "unknown option '--frobnicate'" play --port 1 --frobnicate 1
  expect "play: missing value" 2 "--port needs a value" play --port
  expect "play: stray argument" 2 "unexpected argument 'x'" play --port 1 x
fi

# numbers: whole, nothing after, in range
expect "predict --shards 3x" 2 "--shards: '3x' is not a whole number in 1..256" "${pre[@]}" --shards 3x
expect "predict --shards=3x" 2 "--shards: '3x' is not a whole number in 1..256" "${pre[@]}" --shards=3x
expect "predict --shards 0" 2 "--shards: '0' is not a whole number in 1..256" "${pre[@]}" --shards 0
expect "predict --shards 257" 2 "--shards: '257' is not a whole number in 1..256" "${pre[@]}" --shards 257
expect "predict --shards ' 3'" 2 "--shards: ' 3' is not a whole number" "${pre[@]}" --shards " 3"
expect "predict --shards 99999999999999999999" 2 "is not a whole number in 1..256" "${pre[@]}" --shards 99999999999999999999
expect "predict --max-batch 1e3" 2 "--max-batch: '1e3' is not a whole number in 1..65536" "${pre[@]}" --max-batch 1e3
expect "predict --migrate-every 0" 2 "--migrate-every: '0' is not a whole number" "${pre[@]}" --migrate-every 0
expect "predict --migrate-seed -1" 2 "--migrate-seed: '-1' is not a whole number in 0..18446744073709551615" "${pre[@]}" --migrate-seed -1
expect "predict --migrate-seed 7x" 2 "--migrate-seed: '7x'" "${pre[@]}" --migrate-seed 7x
expect "predict --synthetic -3" 2 "--synthetic: '-3' is not a whole number" predict --synthetic -3 --requests "$no" --out "$tmp/o.csv"
expect "predict --rebalance-at 5" 2 "--rebalance-at: '5' is not K:N" "${pre[@]}" --rebalance-at 5
expect "predict --rebalance-at 5:3x" 2 "--rebalance-at: '3x' is not a whole number in 1..256" "${pre[@]}" --rebalance-at 5:3x
expect "predict --rebalance-at x:3" 2 "--rebalance-at: 'x' is not a whole number" "${pre[@]}" --rebalance-at x:3
expect "predict --tolerance abc" 2 "--tolerance: 'abc' is not a finite number >= 0" "${pre[@]}" --tolerance abc
expect "predict --tolerance nan" 2 "--tolerance: 'nan' is not a finite number >= 0" "${pre[@]}" --tolerance nan
expect "predict --tolerance -1" 2 "--tolerance: '-1' is not a finite number >= 0" "${pre[@]}" --tolerance -1
expect "predict --backend gpu" 2 "--backend: 'gpu' is not one of cpu, cuda, auto" "${pre[@]}" --backend gpu
expect "predict --model and --synthetic" 2 "give one of --model DIR and --synthetic SEED" "${pre[@]}" --synthetic 1
expect "predict without --out" 2 "--out FILE.csv is required" predict --model "$d" --requests "$no"
expect "replay --port 70000" 2 "--port: '70000' is not a whole number in 0..65535" replay --port 70000 --requests "$no"
expect "replay --port -1" 2 "--port: '-1' is not a whole number in 0..65535" replay --port -1 --requests "$no"
expect "replay --speed -1" 2 "--speed: '-1' is not a finite number >= 0" "${rep[@]}" --speed -1
expect "replay --timeout 0" 2 "--timeout: '0' is not a finite number > 0" "${rep[@]}" --timeout 0
expect "replay --timeout inf" 2 "--timeout: 'inf' is not a finite number > 0" "${rep[@]}" --timeout inf
expect "replay --timeout 1e999" 2 "--timeout: '1e999' is not a finite number > 0" "${rep[@]}" --timeout 1e999
expect "replay --batch-rows 0" 2 "--batch-rows: '0' is not a whole number" "${rep[@]}" --batch-rows 0
expect "replay --drop-after 1.5" 2 "--drop-after: '1.5' is not a whole number" "${rep[@]}" --drop-after 1.5
expect "replay --features 257" 2 "--features: '257' is not a whole number in 1..256" \
  replay --port 0 --rate 10 --symbols 2 --duration 1 --features 257
expect "replay --symbols 0" 2 "--symbols: '0' is not a whole number" replay --port 0 --rate 10 --symbols 0 --duration 1
expect "replay --seed -1" 2 "--seed: '-1' is not a whole number" replay --port 0 --rate 10 --symbols 2 --duration 1 --seed -1
expect "replay: trace and Poisson" 2 "not both" "${rep[@]}" --rate 10
expect "replay: Poisson without --duration" 2 "needs all of --rate, --symbols and --duration" replay --port 0 --rate 10 --symbols 2
expect "replay: no port" 2 "--port P (or --connect HOST:PORT) is required" replay --requests "$no"
expect "weights --synthetic 3x" 2 "--synthetic: '3x' is not a whole number" weights --synthetic 3x --out "$tmp/w"
expect "weights --hidden 0" 2 "--hidden: '0' is not a whole number in 1..2147483647" weights --synthetic 1 --hidden 0 --out "$tmp/w"
expect "weights --size medium" 2 "--size: 'medium' is not one of small, full" weights --synthetic 1 --size medium --out "$tmp/w"
expect "weights --check with --out" 2 "--check DIR takes no other option" weights --check "$d" --out "$tmp/w"
if [ $engine = 1 ]; then
  expect "play --port 70000" 2 "--port: '70000' is not a whole number in 1..65535" play --port 70000
  expect "play --port 0" 2 "--port: '0' is not a whole number in 1..65535" play --port 0
  expect "play --port 7000x" 2 "--port: '7000x' is not a whole number" play --port 7000x
  expect "play --heartbeat 0" 2 "--heartbeat: '0' is not a finite number > 0" play --port 1 --heartbeat 0
  expect "play --max-reconnects -2" 2 "--max-reconnects: '-2' is not a whole number in -1..2147483647" play --port 1 --max-reconnects -2
  expect "play --num-symbols 0" 2 "--num-symbols: '0' is not a whole number in 1..1048576" play --port 1 --num-symbols 0
  expect "play --synthetic 1 --model" 2 "not both" play --port 1 --synthetic 1 --model "$d"
  expect "play without --port" 2 "--port P is required" play --host 127.0.0.1
fi

# values that are right get through, as VALUE or =VALUE: the run itself fails
expect "predict: good values reach the run" 1 "cannot open" "${pre[@]}" --shards=2 --max-batch 64 --migrate-every 3 \
  --migrate-seed 18446744073709551615 --rebalance-at 0:3 --tolerance 1e-9 --backend cpu --precision fp64
expect "replay: good values reach the run" 1 "cannot open" "${rep[@]}" --speed 0 --timeout=0.5 --batch-rows 4 \
  --register-timeout 1 --drop-after 0 --resend --inject-bad --host 127.0.0.1
if [ $engine = 1 ]; then
  expect "play: good values reach the run" 1 "could not connect" play --host 127.0.0.1 --port=1 --model "$d" --backend cpu \
    --precision fp64 --num-symbols 8 --heartbeat 0.5 --max-reconnects 0
fi
run weights --synthetic=3 --hidden 64 --proj 16 --depth 1 --heads 4 --out "$tmp/w" >"$tmp/out" 2>&1 &&
  run weights --check "$tmp/w" >>"$tmp/out" 2>&1 && ok "weights: good values write a folder that checks" ||
  ko "weights: $(tail -2 "$tmp/out")"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
