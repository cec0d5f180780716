#!/usr/bin/env bash
# Several GPUs of one host, in one call (issue 6): builds symserve, then
#   1. how the GPUs are linked, and NCCL;
#   2. bench_weights_place: the weights onto every GPU by upload, NCCL, peer;
#   3. bench_migration: one symbol's 153.5 MB state moved between two shards
#      on one GPU, then on two GPUs, and its next request's latency;
#   4. predict on the seed's trace (full size, mixed): 1 shard, then 2 shards
#      on 2 GPUs, with migrations every 25 requests, and with a rebalance from
#      2 to 4 shards (2 per GPU) halfway; each compared with the 1-shard run;
#   5. PART=e2e: tools/gpu-e2e.sh on 1 GPU, on all GPUs (a shard each),
#      with one shard whose towers are split over 2 GPUs, and with N/2
#      such shards over all N GPUs (39 and 256 symbols); CONFIGS picks some
#      of them (default "gpus1 gpusN split2"; the last is "split2xN/2", e.g.
#      split2x2 on 4 GPUs). RATES39_<name> / RATESB_<name> override a
#      config's ramps (RATES39 / RATES_B).
# Both parts first run tests/actors/test_cuda_shards (shards over the GPUs,
# migrations, a rebalance and the tower split, each against one shard);
# NO_SHARDS_TEST=1 skips it (a second call on the same machine).
# The predict checks of part 4 put 2 shards on GPUs 0 and 1 and rebalance
# to 4 shards: on 4 GPUs the new shards go to GPUs 2 and 3, on 2 GPUs two
# per GPU.
# PART=core runs 1-4, PART=e2e runs 5, PART=all both. Logs under $OUT.
#   . tools/unpack-debs.sh; OUT=/tmp/multi tools/gpu-multi.sh
set -u
OUT=${OUT:-/tmp/multi}
PART=${PART:-all}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 # NVLink multicast stays off on shared hosts
b=build-multi
ngpu=$(nvidia-smi -L | wc -l)
sum() { echo "$*" | tee -a "$OUT/summary.txt"; }
{ nvidia-smi; nvidia-smi topo -m; } >"$OUT/gpus.txt" 2>&1
if [ ! -f /usr/local/cuda/include/nccl.h ]; then
  # the CUDA image may carry NCCL only as a Python wheel
  SYM_NCCL_ROOT=$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__))' 2>/dev/null || true)
  export SYM_NCCL_ROOT
  [ -n "$SYM_NCCL_ROOT" ] && export LD_LIBRARY_PATH=$SYM_NCCL_ROOT/lib:${LD_LIBRARY_PATH:-}
fi
t0=$(date +%s)
{ cmake -S . -B $b -DCMAKE_BUILD_TYPE=Release && cmake --build $b -j"$(nproc)"; } >"$OUT/build.log" 2>&1
sum "build rc=$? ($(($(date +%s) - t0)) s), $ngpu GPUs; $(grep -h 'symserve: NCCL\|symserve: no NCCL' $OUT/build.log | head -1)"
bin=$b/app/symserve
run() { # name timeout cmd...
  local name=$1 to=$2
  shift 2
  local s=$(date +%s)
  timeout "$to" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  sum "$name rc=$rc ($(($(date +%s) - s)) s)"
  return $rc
}
[ -z "${NO_SHARDS_TEST:-}" ] && run test_cuda_shards 300 $b/tests/actors/test_cuda_shards tests/data/golden_small/requests.csv
if [ "$PART" != e2e ]; then
  run place 240 $b/bench/cuda/bench_weights_place full "$ngpu" 3
  run migrate_1gpu 240 $b/bench/actors/bench_migration full 20 1
  run migrate_2gpu 240 $b/bench/actors/bench_migration full 20 2
  tr=tests/data/traces/small.csv
  echo "{\"shards\": {\"count\": 2, \"devices\": [$(seq -s, 0 $((ngpu - 1)))]}, \"max_symbols\": 40}" >"$OUT/two-gpus.json"
  p=("$bin" predict --synthetic 1 --size full --backend cuda --precision mixed --requests "$tr")
  run predict_1shard 300 "${p[@]}" --shards 1 --out "$OUT/base.csv"
  run predict_2gpu 300 "${p[@]}" --config "$OUT/two-gpus.json" --out "$OUT/two.csv" --expected "$OUT/base.csv" --tolerance 1e-4
  run predict_2gpu_migrate 300 "${p[@]}" --config "$OUT/two-gpus.json" --migrate-every 25 --out "$OUT/mig.csv" \
    --expected "$OUT/base.csv" --tolerance 1e-4
  run predict_2gpu_rebalance 300 "${p[@]}" --config "$OUT/two-gpus.json" --rebalance-at 500:4 --out "$OUT/reb.csv" \
    --expected "$OUT/base.csv" --tolerance 1e-4
fi
if [ "$PART" != core ]; then
  devs=$(seq -s, 0 $((ngpu - 1)))
  for cfg in "gpus1 1 0 1" "gpus$ngpu $ngpu $devs 1" "split2 1 0,1 2" "split2x$((ngpu / 2)) $((ngpu / 2)) $devs 2"; do
    set -- $cfg
    case " ${CONFIGS:-gpus1 gpusN split2} " in *" ${1/gpus$ngpu/gpusN} "*) ;; *) continue ;; esac
    s=$(date +%s)
    r39=RATES39_$1 rb=RATESB_$1
    BUILD=$b OUT="$OUT" NAME="$1" SHARDS=$2 DEVICES=$3 TOWER_SPLIT=$4 MAX_SYMBOLS=260 SYMS_B=256 \
      RATES39="${!r39:-${RATES39:-2000 3000 4000 5000 6000 7000 8000}}" \
      RATES_B="${!rb:-${RATES_B:-3000 5000 7000 9000 11000 13000}}" \
      tools/gpu-e2e.sh >"$OUT/e2e_$1.log" 2>&1
    sum "e2e_$1 ($(($(date +%s) - s)) s)"
  done
fi
echo "==== summary ===="
grep -h "NVIDIA\|GPU[0-9]" "$OUT/gpus.txt" | head -8
cat "$OUT/summary.txt"
grep -h -E "^(PASS|FAIL|SKIP)" "$OUT/test_cuda_shards.log"
for f in place migrate_1gpu migrate_2gpu predict_1shard predict_2gpu predict_2gpu_migrate predict_2gpu_rebalance; do
  [ -f "$OUT/$f.log" ] && { echo "--- $f"; grep -v "^\[" "$OUT/$f.log" | grep -iE "method|upload|nccl|peer|ms|accuracy|max|xLSTM|FAIL|error|default|rebalance|migrat" | head -12; }
done
for n in gpus1 gpus$ngpu split2 split2x$((ngpu / 2)); do [ -f "$OUT/e2e_$n.log" ] && { echo "--- e2e $n"; cat "$OUT/e2e_$n.log"; }; done
