#!/usr/bin/env bash
# symserve weights --check reports what the engine's loader refuses (a
# tensor the config does not use, a bad config.json, bytes the header does
# not account for), passes the golden folder, and passes what
# `symserve weights --synthetic` writes.
set -uo pipefail
bin=$1 golden=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
# name, expected exit code, expected text (stdout+stderr), args...
expect() {
  local name=$1 code=$2 text=$3
  shift 3
  "$bin" weights "$@" >"$tmp/out" 2>&1
  local rc=$?
  if [ $rc -eq "$code" ] && grep -qF -- "$text" "$tmp/out"; then ok "$name: $(head -1 "$tmp/out")"
  else ko "$name: exit $rc (want $code), output: $(head -2 "$tmp/out")"; fi
}
expect "golden folder" 0 ": ok" --check "$golden"
mkdir "$tmp/m"
cp "$golden/config.json" "$golden/weights.safetensors" "$tmp/m/"
sed -i 's/"tower_depth": 2/"tower_depth": 1/' "$tmp/m/config.json"
expect "tower_depth 1 against 2 blocks" 1 "tensors the config does not use, first 'towers.0.blocks.1." --check "$tmp/m"
expect "... with a hint" 1 "is tower_depth 1 right? the file has blocks 0..1" --check "$tmp/m"
cp "$golden/config.json" "$tmp/m/"
sed -i 's/"tower_depth": 2/"tower_depth": 2, "tower_depth": 2/' "$tmp/m/config.json"
expect "duplicate key in config.json" 1 "the key 'tower_depth' appears twice" --check "$tmp/m"
cp "$golden/config.json" "$tmp/m/"
printf 'x' >>"$tmp/m/config.json"
expect "trailing garbage in config.json" 1 "more after the JSON value" --check "$tmp/m"
cp "$golden/config.json" "$tmp/m/"
printf '\0\0\0\0' >>"$tmp/m/weights.safetensors"
expect "bytes after the last tensor" 1 "after the last tensor 'towers.3.input_up.weight', belong to no tensor" --check "$tmp/m"
expect "synthetic folder written" 0 "wrote" --synthetic 3 --hidden 64 --proj 16 --depth 1 --heads 4 --out "$tmp/s"
expect "synthetic folder checks" 0 "H=64 P=16 L=1 NH=4 F=79: ok" --check "$tmp/s"
expect "seed not a number" 2 "not a whole number" --synthetic 3x --out "$tmp/s"
expect "depth not a number" 2 "not a whole number" --synthetic 3 --depth two --out "$tmp/s"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
