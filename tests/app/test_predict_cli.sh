#!/usr/bin/env bash
# symserve predict end to end: golden accuracy through the CLI, and bad
# input answered with a clear error and exit code 1 or 2, never a crash.
set -u
bin=$1 data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }

# accuracy
for g in golden_small golden_long; do
  d=$data/$g
  for p in "fp64 1e-9" "fp32 1e-4"; do
    set -- $p
    if "$bin" predict --model "$d" --requests "$d/requests.csv" --out "$tmp/p.csv" --backend cpu --precision "$1" \
        --expected "$d/expected_f64.csv" --tolerance "$2" >"$tmp/log" 2>&1; then ok "$g $1 within $2"
    else ko "$g $1 within $2: $(tail -3 "$tmp/log")"; fi
  done
done
# output: one row per request, input order, 17 significant digits
d=$data/golden_small
"$bin" predict --model "$d" --requests "$d/requests.csv" --out "$tmp/p.csv" --backend cpu >/dev/null 2>&1
if [ "$(cut -d, -f1 "$tmp/p.csv")" = "$(cut -d, -f1 "$d/expected_f64.csv")" ]; then ok "rows in input order"; else ko "rows in input order"; fi
if head -2 "$tmp/p.csv" | tail -1 | grep -Eq '^0,-?[0-9]\.[0-9]{16}'; then ok "17 significant digits"; else ko "17 significant digits: $(sed -n 2p "$tmp/p.csv")"; fi
# a tower split (2 shards of 2 parts each) with migrations and a rebalance to
# 4 shards gives the plain run's outputs bit for bit
echo '{"shards": {"count": 2, "tower_split": 2}, "max_symbols": 64}' >"$tmp/split.json"
if "$bin" predict --model "$d" --requests "$d/requests.csv" --out "$tmp/s.csv" --backend cpu --config "$tmp/split.json" \
    --migrate-every 7 --rebalance-at 500:4 --expected "$tmp/p.csv" --tolerance 0 >"$tmp/log" 2>&1 &&
  cmp -s "$tmp/p.csv" "$tmp/s.csv"; then ok "tower split, migrations, rebalance: bit-identical"
else ko "tower split: $(tail -3 "$tmp/log")"; fi

# bad input: exit code 1 (runtime) or 2 (usage), a message on stderr, no crash
expect_fail() { # name, expected stderr text, args...
  local name=$1 text=$2
  shift 2
  "$bin" predict "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -ge 1 ] && [ $rc -le 2 ] && grep -q -- "$text" "$tmp/err"; then ok "$name: $(head -1 "$tmp/err")"
  else ko "$name: exit $rc, stderr: $(head -2 "$tmp/err")"; fi
}
mkdir -p "$tmp/m"
cp "$d/config.json" "$tmp/m/"
head -c 3000000 "$d/weights.safetensors" >"$tmp/m/weights.safetensors"
expect_fail "truncated weights" "run past the end" --model "$tmp/m" --requests "$d/requests.csv" --out "$tmp/o.csv"
h='{"towers.0.input_up.weight":{"dtype":"F32","shape":[256,79],"data_offsets":[0,80896]}}'
printf "$(printf '\\x%02x' ${#h})\\x00\\x00\\x00\\x00\\x00\\x00\\x00%s" "$h" >"$tmp/m/weights.safetensors"
expect_fail "header lies about offsets" "run past the end" --model "$tmp/m" --requests "$d/requests.csv" --out "$tmp/o.csv"
head -c 100 /dev/urandom >"$tmp/m/weights.safetensors"
expect_fail "corrupt weights" "weights" --model "$tmp/m" --requests "$d/requests.csv" --out "$tmp/o.csv"
cp "$d/weights.safetensors" "$tmp/m/"
echo '{"hidden_size":100,"proj_size":256,"tower_depth":2,"num_heads":8,"num_features":79}' >"$tmp/m/config.json"
expect_fail "config breaks a constraint" "divisible by 64" --model "$tmp/m" --requests "$d/requests.csv" --out "$tmp/o.csv"
echo '{"hidden_size":128,"proj_size":256,"tower_depth":3,"num_heads":8,"num_features":79}' >"$tmp/m/config.json"
expect_fail "missing tensor" "missing tensor towers.0.blocks.2" --model "$tmp/m" --requests "$d/requests.csv" --out "$tmp/o.csv"
echo '{"hidden_size":128,"proj_size":128,"tower_depth":2,"num_heads":8,"num_features":79}' >"$tmp/m/config.json"
expect_fail "wrong shape" "has shape" --model "$tmp/m" --requests "$d/requests.csv" --out "$tmp/o.csv"
expect_fail "missing model folder" "cannot open" --model "$tmp/nothing" --requests "$d/requests.csv" --out "$tmp/o.csv"
head -5 "$d/requests.csv" | sed '3s/,[^,]*$//' >"$tmp/r.csv"
expect_fail "wrong column count" "columns, the header has" --model "$d" --requests "$tmp/r.csv" --out "$tmp/o.csv"
head -5 "$d/requests.csv" | sed '3s/,\([^,]*\)$/,abc/' >"$tmp/r.csv"
expect_fail "non-numeric feature" "is not a finite number" --model "$d" --requests "$tmp/r.csv" --out "$tmp/o.csv"
head -5 "$d/requests.csv" | sed '4s/,\([^,]*\)$/,inf/' >"$tmp/r.csv"
expect_fail "non-finite feature" "is not a finite number" --model "$d" --requests "$tmp/r.csv" --out "$tmp/o.csv"
expect_fail "unknown option" "usage" --model "$d" --requests "$d/requests.csv" --out "$tmp/o.csv" --frobnicate 1
expect_fail "model and synthetic both" "usage" --model "$d" --synthetic 3 --requests "$d/requests.csv" --out "$tmp/o.csv"
echo '{"shards": {"tower_split": 3}}' >"$tmp/bad.json"
expect_fail "tower_split 3" "tower_split" --model "$d" --requests "$d/requests.csv" --out "$tmp/o.csv" --config "$tmp/bad.json"
expect_fail "unknown precision" "unknown precision" --model "$d" --requests "$d/requests.csv" --out "$tmp/o.csv" --backend cpu --precision fp8
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
