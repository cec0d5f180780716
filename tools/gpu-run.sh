#!/usr/bin/env bash
# On the GPU machine, from the repo root, after `. tools/unpack-debs.sh`:
# builds symserve (one CMake build: the CUDA engine, its tests, the dev/cuda
# programs and the benches), runs the GPU tests, the dev/cuda programs and
# the step benchmark, writes logs under $OUT and prints a summary last.
#   OUT=/tmp/gv-out bash tools/gpu-run.sh
# Tuning comparisons run bench_gv_step with `--config FILE`, FILE a config
# whose "cuda" section (docs/CONFIG.md) differs from the defaults.
set -u
OUT=${OUT:-/tmp/gv-out}
mkdir -p "$OUT"
B=${BUILD:-build-gpu}
bench=$B/bench/cuda/bench_gv_step
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
t0=$(date +%s)
{ cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release && cmake --build "$B" -j16; } > "$OUT/build.log" 2>&1
echo "build rc=$? ($(( $(date +%s) - t0 )) s)" | tee "$OUT/summary.txt"
run() { # name timeout cmd...
    local name=$1 to=$2; shift 2
    local s=$(date +%s)
    timeout "$to" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name rc=$rc ($(( $(date +%s) - s )) s)" >> "$OUT/summary.txt"
}
# cfg NAME JSON: writes $OUT/cuda-NAME.json, a config file whose "cuda"
# section is JSON, and prints its path (for bench_gv_step --config)
cfg() {
    printf '{"cuda": %s}\n' "$2" > "$OUT/cuda-$1.json"
    echo "$OUT/cuda-$1.json"
}
# GV_TESTS: which GPU tests to run (default state golden gemv shapes dev);
# GV_BENCH=0: no main bench.
# shapes: random valid configs against the CPU fp64 path (GV_SHAPES="FIRST N":
# other seeds); shapes-memcheck: its first three configs under compute-sanitizer;
# dev: each dev/cuda program (its kernels against a CPU fp64 reference, then timed)
for t in ${GV_TESTS-state golden gemv shapes dev}; do
    case $t in
    state) run test_gv_state 120 "$B/tests/cuda/test_gv_state" tests/data/golden_small ;;
    golden) run test_gv_golden 200 "$B/tests/cuda/test_gv_golden" tests/data/golden_small tests/data/golden_long ;;
    gemv) run test_gv_gemv 200 "$B/tests/cuda/test_gv_gemv" ;;
    shapes) run test_gv_shapes 480 "$B/tests/cuda/test_gv_shapes" ${GV_SHAPES:-} ;;
    shapes-memcheck)
        cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
        if [ -x "$cs" ]; then
            run test_gv_shapes_memcheck 600 "$cs" --tool memcheck --error-exitcode 1 "$B/tests/cuda/test_gv_shapes" 0 3
        else
            echo "shapes-memcheck: no compute-sanitizer" >> "$OUT/summary.txt"
        fi ;;
    dev) for p in linear mlstm slstm mamba2 retnet hawk; do run "dev_$p" 300 "$B/dev/cuda/$p"; done ;;
    esac
done
[ "${GV_BENCH:-1}" != 0 ] && run bench_gv_step 240 "$bench" 30 fp32,bf16,mixed
# GV_TC_COMPARE=1: the same bench with bf16 layers on cuBLAS (the mma.sync
# tensor-core GEMV off), with that GEMV up to B = 64, and the xLSTM tower
# alone both ways (cuda.bf16_mma_batch)
if [ -n "${GV_TC_COMPARE:-}" ]; then
run bench_gv_step_notc 240 "$bench" --config "$(cfg notc '{"bf16_mma_batch": [1, 0]}')" 30 fp32,bf16,mixed
run bench_gv_step_tc64 120 "$bench" --config "$(cfg tc64 '{"bf16_mma_batch": [8, 64]}')" 20 bf16,mixed 8,16,39,64
run bench_xlstm_tcmax0 120 "$bench" --towers 1 --config "$OUT/cuda-notc.json" 20 bf16 8,39,64
run bench_xlstm_tcmax64 120 "$bench" --towers 1 --config "$OUT/cuda-tc64.json" 20 bf16 8,39,64
fi
# GV_TF32_COMPARE=1: the same bench with the mma.sync 3xTF32 kernel off
# (cuda.fp32_mma_batch; its layers go to cuBLAS's SGEMM), and both at B = 16, 24, 32
if [ -n "${GV_TF32_COMPARE:-}" ]; then
c=$(cfg notf32 '{"fp32_mma_batch": [1, 0]}')
run bench_gv_step_notf32 240 "$bench" --config "$c" 30 fp32,bf16,mixed
run bench_gv_step_notf32_mid 120 "$bench" --config "$c" 20 fp32,mixed 16,24,32
run bench_gv_step_mid 120 "$bench" 20 fp32,mixed 16,24,32
fi
# GV_WG_COMPARE=1: the same bench with bf16 layers on cuBLAS (the wgmma
# kernel off, cuda.bf16_wgmma_batch), and both at B = 16, 24, 32, 48
if [ -n "${GV_WG_COMPARE:-}" ]; then
c=$(cfg nowg '{"bf16_wgmma_batch": [1, 0]}')
run bench_gv_step_nowg 240 "$bench" --config "$c" 30 fp32,bf16,mixed
run bench_gv_step_nowg_mid 120 "$bench" --config "$c" 20 bf16,mixed 16,24,32,48
run bench_gv_step_wg_mid 120 "$bench" 20 bf16,mixed 16,24,32,48
fi
# GV_WG32_COMPARE=1: the same bench with the wgmma 3xTF32 kernel off
# (cuda.fp32_wgmma_batch; its layers go to the mma.sync 3xTF32 kernel up to
# B = 48, then SGEMM), and both at B = 16 .. 48
if [ -n "${GV_WG32_COMPARE:-}" ]; then
c=$(cfg nowg32 '{"fp32_wgmma_batch": [1, 0]}')
run bench_gv_step_nowg32 240 "$bench" --config "$c" 30 fp32,bf16,mixed
run bench_gv_step_nowg32_mid 120 "$bench" --config "$c" 20 fp32,mixed 16,24,32,48
run bench_gv_step_wg32_mid 120 "$bench" 20 fp32,mixed 16,24,32,48
fi
# GV_PRIO_COMPARE=1: the same bench under launch priorities (design/cuda.md):
# each mode is "towers:state", the towers' stream levels
# (cuda.tower_stream_priority, tower order xLSTM, Mamba2, RetNet, Hawk) and
# the state-streaming cells' level (cuda.state_cell_priority); "-": none
if [ -n "${GV_PRIO_COMPARE:-}" ]; then
for m in ${GV_PRIO_MODES:-"-:-" "0,0,0,0:5" "0,1,1,1:-" "0,1,1,1:5" "1,0,0,0:5" "1,1,1,1:0"}; do
    tw=${m%%:*} st=${m##*:}
    jt=null js=null
    [ "$tw" != - ] && jt="[$tw]"
    [ "$st" != - ] && js=$st
    [ "$tw" = - ] && tw=
    [ "$st" = - ] && st=
    name="prio_${tw//,/}_${st}"
    run "bench_$name" 150 "$bench" --config "$(cfg "$name" "{\"tower_stream_priority\": $jt, \"state_cell_priority\": $js}")" \
        20 ${GV_PRIO_PREC:-mixed,bf16} ${GV_PRIO_B:-8,39,128}
done
fi
# GV_GRID_COMPARE="100 75": the wgmma kernels' grids aimed at that share of
# the SMs for every tower (cuda.bf16_wgmma_sm_pct, default [50, 20, 20, 20];
# cuda.fp32_wgmma_sm_pct, default 75)
for p in ${GV_GRID_COMPARE:-}; do
run "bench_gv_step_grid$p" 150 "$bench" \
    --config "$(cfg "grid$p" "{\"bf16_wgmma_sm_pct\": [$p, $p, $p, $p], \"fp32_wgmma_sm_pct\": $p}")" \
    20 fp32,bf16,mixed 16,24,39,48,64,128
done
# GV_NCU_STEP=1: every kernel of one step (GV_NCU_PREC, default mixed) at
# each B of GV_NCU_B (default 39 128) under ncu, one at a time, clocks and
# caches left as they are: time and DRAM bytes as CSV
# (tools/ncu-step-table.py makes the table)
if [ -n "${GV_NCU_STEP:-}" ] && command -v ncu >/dev/null; then
for nb in ${GV_NCU_B:-39 128}; do
run "ncu_step_b$nb" 400 ncu --profile-from-start off --clock-control none --cache-control none --csv --page raw --print-units base \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum --log-file "$OUT/ncu_step_b$nb.csv" \
    "$bench" --profile-step 3 "${GV_NCU_PREC:-mixed}" "$nb"
done
fi
# BASE=DIR: the same bench built from another tree (e.g. `git archive` of the
# previous commit), run on this machine for a like-for-like comparison
if [ -n "${BASE:-}" ]; then
{ cmake -S "$BASE" -B build-base -DCMAKE_BUILD_TYPE=Release && cmake --build build-base -j16 --target bench_gv_step; } \
    > "$OUT/build-base.log" 2>&1
run bench_gv_step_base 240 build-base/bench/cuda/bench_gv_step 30 fp32,bf16,mixed
fi
# GV_QUICK=1: skip the own-GEMV comparison and the full-size CPU comparison (2+ min of CPU)
# GV_TOWERS=0: skip timing each tower alone
if [ -z "${GV_QUICK:-}" ] && [ -z "${GV_NO_OWNGEMV:-}" ]; then
run bench_gv_step_owngemv 120 "$bench" --config "$(cfg owngemv '{"cublas_min_batch": 100000}')" 20 fp32,bf16,mixed 4,8
fi
if [ "${GV_TOWERS:-1}" != 0 ]; then
for m in 1 2 4 8; do run "bench_gv_tower$m" 120 "$bench" --towers $m 20 bf16,fp32 1,39,128; done
fi
if [ -z "${GV_QUICK:-}" ]; then
run test_gv_full 300 "$B/tests/cuda/test_gv_full" tests/data/traces/small.csv 80
fi
# GV_NCU=1: per-kernel GPU time of one xLSTM-tower step (bf16, B=39), the critical path
if [ -n "${GV_NCU:-}" ] && command -v ncu >/dev/null; then
run ncu_xlstm_b39 200 ncu --metrics gpu__time_duration.sum --launch-skip 2000 --launch-count "${GV_NCU_COUNT:-600}" \
    --print-summary per-kernel "$bench" --towers 1 2 bf16 39
fi
echo "==== summary ===="
for m in 1 2 4 8; do [ -f "$OUT/bench_gv_tower$m.log" ] || continue; echo "tower mask $m:"; grep -h "^BENCH |" "$OUT/bench_gv_tower$m.log" | grep -v prec | awk -F'|' '{printf "  %s B=%s %s ms\n", $3, $4, $5}'; done
cat "$OUT/gpu.txt"
cat "$OUT/summary.txt"
grep -h -E "^(PASS|FAIL|SKIP)" "$OUT"/test_gv_*.log 2>/dev/null
for f in "$OUT"/dev_*.log; do [ -f "$f" ] && { echo "---- ${f##*/}:"; grep -h -E "^(ok|FAIL|SKIP|PASS)" "$f"; }; done
[ -f "$OUT/test_gv_shapes.log" ] && { echo "---- test_gv_shapes, per config:"; grep -h -E "^config .*\||^  " "$OUT/test_gv_shapes.log"; }
[ -f "$OUT/ncu_xlstm_b39.log" ] && grep -E "^  [a-zA-Z_].*\(|gpu__time_duration.sum|Invocations" "$OUT/ncu_xlstm_b39.log" | head -120 > "$OUT/ncu_summary.txt"
grep -h -E "copy:|^BENCH|^ACCURACY|WARNING|^command" "$OUT"/bench_gv_step.log "$OUT"/bench_gv_step_owngemv.log "$OUT"/test_gv_full.log 2>/dev/null
grep -h "^BENCH |" "$OUT/dev_linear.log" 2>/dev/null
for f in grid100 grid75 grid50 grid25; do [ -f "$OUT/bench_gv_step_$f.log" ] && { echo "---- bench_gv_step_$f:"; grep -h "^BENCH" "$OUT/bench_gv_step_$f.log"; }; done
for f in "$OUT"/ncu_step_b*.csv; do [ -f "$f" ] && command -v python3 >/dev/null && { echo "---- ${f##*/}:"; python3 tools/ncu-step-table.py "$f" | head -40; }; done
for f in notc tc64 notf32 notf32_mid mid nowg nowg_mid wg_mid nowg32 nowg32_mid wg32_mid; do [ -f "$OUT/bench_gv_step_$f.log" ] && { echo "---- bench_gv_step_$f:"; grep -h "^BENCH" "$OUT/bench_gv_step_$f.log"; }; done
for v in 0 64; do [ -f "$OUT/bench_xlstm_tcmax$v.log" ] && { echo "---- xLSTM alone, cuda.bf16_mma_batch up to B = $v:"; grep -h "^BENCH" "$OUT/bench_xlstm_tcmax$v.log"; }; done
for f in "$OUT"/bench_prio_*.log; do [ -f "$f" ] && { echo "---- ${f##*/}:"; grep -h "^BENCH" "$f"; }; done
[ -f "$OUT/bench_gv_step_base.log" ] && { echo "---- baseline (BASE=$BASE) on this machine:"; grep -h -E "^BENCH" "$OUT/bench_gv_step_base.log"; }
