#!/usr/bin/env bash
# What state_precision buys on a GPU machine (BENCHMARKS §2.5): the step
# (bench_gv_step, mixed weights, B = 39 and 128, each as distinct symbols
# and as runs of 4) with the state stored as STATE (fp16,bf16,fp32,fp32:
# [xLSTM, Mamba2, RetNet, Hawk]) against fp32 state, alternated REPS (2)
# times; each tower alone with the stored state (--towers); then the game
# (tools/gpu-e2e.sh, 39 symbols at RATES39, SYMS_B at RATES_B) with and
# without it. BASE=DIR: a build of another commit (its bench_gv_step) timed
# in the same alternation, as the parent of a change. Logs under
# $OUT/state-precision; a table is printed last.
#   BUILD=build-gpu OUT=/tmp/out tools/gpu-state-precision.sh
set -u
b=${BUILD:-build-gpu}
out=${OUT:-/tmp/out}/state-precision
st=${STATE:-fp16,bf16,fp32,fp32}
mkdir -p "$out"
builds="new=$b"
[ -n "${BASE:-}" ] && builds+=" base=$BASE"
for ((r = 1; r <= ${REPS:-2}; r++)); do
  for nb in $builds; do
    n=${nb%%=*} bin=${nb#*=}/bench/cuda/bench_gv_step
    "$bin" --state "$st" --runs 4 ${ITERS:-15} mixed 39,128 >"$out/step-stored-$n-$r.txt" 2>&1
    "$bin" --runs 4 ${ITERS:-15} mixed 39,128 >"$out/step-fp32-$n-$r.txt" 2>&1
  done
done
for m in 1 2 4 8; do
  "$b/bench/cuda/bench_gv_step" --state "$st" --towers $m ${ITERS:-15} mixed 39,128 >"$out/towers-$m.txt" 2>&1
done
json=$(echo "$st" | sed 's/\([a-z0-9]*\)/"\1"/g; s/^/[/; s/$/]/')
for n in stored fp32; do
  sp=$json
  [ $n = fp32 ] && sp=
  RATES39=${RATES39:-"5000 6000 8000"} RATES_B=${RATES_B:-"4000 6000"} DURATION=${DURATION:-4} BUILD=$b OUT=$out \
    NAME=$n STATE_PRECISION="$sp" tools/gpu-e2e.sh >"$out/e2e-$n.txt" 2>&1
done
for f in "$out"/step-*.txt "$out"/towers-*.txt; do
  echo "== $(basename "$f" .txt)"
  grep -E "^BENCH(-RUN)? \| mixed" "$f" | cut -c1-140
done
for f in "$out"/e2e-*.txt; do
  echo "== $(basename "$f" .txt)"
  tail -9 "$f"
done
