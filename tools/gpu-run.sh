#!/usr/bin/env bash
# On the GPU machine, from the repo root, after `. tools/unpack-debs.sh`:
# builds the gv CUDA engine with its tests and bench (standalone CMake
# project, so half-edited folders elsewhere cannot break it), runs the GPU
# tests and the benches, writes logs under $OUT and prints a summary last.
set -u
OUT=${OUT:-/tmp/gv-out}
mkdir -p "$OUT"
B=build-gv
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
t0=$(date +%s)
{ cmake -S kernels/cuda/gv/standalone -B $B -DCMAKE_BUILD_TYPE=Release && cmake --build $B -j16; } > "$OUT/build.log" 2>&1
echo "build rc=$? ($(( $(date +%s) - t0 )) s)" | tee "$OUT/summary.txt"
run() { # name timeout cmd...
    local name=$1 to=$2; shift 2
    local s=$(date +%s)
    timeout "$to" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name rc=$rc ($(( $(date +%s) - s )) s)" >> "$OUT/summary.txt"
}
# GV_TESTS: which GPU tests to run (default the first four); GV_BENCH=0: no main bench.
# shapes: random valid configs against the CPU fp64 path (GV_SHAPES="FIRST N":
# other seeds); shapes-memcheck: its first three configs under compute-sanitizer
for t in ${GV_TESTS-state golden gemv shapes}; do
    case $t in
    state) run test_gv_state 120 $B/tests_cuda/test_gv_state tests/data/golden_small ;;
    golden) run test_gv_golden 200 $B/tests_cuda/test_gv_golden tests/data/golden_small tests/data/golden_long ;;
    gemv) run test_gv_gemv 200 $B/tests_cuda/test_gv_gemv ;;
    shapes) run test_gv_shapes 480 $B/tests_cuda/test_gv_shapes ${GV_SHAPES:-} ;;
    shapes-memcheck)
        cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
        if [ -x "$cs" ]; then
            run test_gv_shapes_memcheck 600 "$cs" --tool memcheck --error-exitcode 1 $B/tests_cuda/test_gv_shapes 0 3
        else
            echo "shapes-memcheck: no compute-sanitizer" >> "$OUT/summary.txt"
        fi ;;
    esac
done
[ "${GV_BENCH:-1}" != 0 ] && run bench_gv_step 240 $B/bench_cuda/bench_gv_step 30 fp32,bf16,mixed
# GV_TC_COMPARE=1: the same bench with bf16 layers on cuBLAS (the tensor-core
# GEMV off), with the tensor-core GEMV up to B = 64, and the xLSTM tower alone both ways
if [ -n "${GV_TC_COMPARE:-}" ]; then
SYM_GV_TC_MAX=0 run bench_gv_step_notc 240 $B/bench_cuda/bench_gv_step 30 fp32,bf16,mixed
SYM_GV_TC_MAX=64 run bench_gv_step_tc64 120 $B/bench_cuda/bench_gv_step 20 bf16,mixed 8,16,39,64
for v in 0 64; do SYM_GV_TOWER_MASK=1 SYM_GV_TC_MAX=$v run bench_xlstm_tcmax$v 120 $B/bench_cuda/bench_gv_step 20 bf16 8,39,64; done
fi
# GV_TF32_COMPARE=1: the same bench with fp32 layers on cuBLAS's SGEMM at
# every B (the 3xTF32 kernel off), and both at B = 16, 24, 32
if [ -n "${GV_TF32_COMPARE:-}" ]; then
SYM_GV_TF32_MAX=0 run bench_gv_step_notf32 240 $B/bench_cuda/bench_gv_step 30 fp32,bf16,mixed
SYM_GV_TF32_MAX=0 run bench_gv_step_notf32_mid 120 $B/bench_cuda/bench_gv_step 20 fp32,mixed 16,24,32
run bench_gv_step_mid 120 $B/bench_cuda/bench_gv_step 20 fp32,mixed 16,24,32
fi
# GV_WG_COMPARE=1: the same bench with bf16 layers on cuBLAS again (the
# wgmma kernel off), and both at B = 16, 24, 32, 48
if [ -n "${GV_WG_COMPARE:-}" ]; then
SYM_GV_WG_MAX=0 run bench_gv_step_nowg 240 $B/bench_cuda/bench_gv_step 30 fp32,bf16,mixed
SYM_GV_WG_MAX=0 run bench_gv_step_nowg_mid 120 $B/bench_cuda/bench_gv_step 20 bf16,mixed 16,24,32,48
run bench_gv_step_wg_mid 120 $B/bench_cuda/bench_gv_step 20 bf16,mixed 16,24,32,48
SYM_GV_WG_MAX=64 run bench_gv_step_wg64 120 $B/bench_cuda/bench_gv_step 20 bf16,mixed 64
fi
# GV_WG32_COMPARE=1: the same bench with fp32 layers on the mma.sync 3xTF32
# kernel again (the wgmma 3xTF32 kernel off), and both at B = 16 .. 48
if [ -n "${GV_WG32_COMPARE:-}" ]; then
SYM_GV_WG32_MAX=0 run bench_gv_step_nowg32 240 $B/bench_cuda/bench_gv_step 30 fp32,bf16,mixed
SYM_GV_WG32_MAX=0 run bench_gv_step_nowg32_mid 120 $B/bench_cuda/bench_gv_step 20 fp32,mixed 16,24,32,48
run bench_gv_step_wg32_mid 120 $B/bench_cuda/bench_gv_step 20 fp32,mixed 16,24,32,48
fi
# GV_PRIO_COMPARE=1: the same bench under launch priorities (design/cuda.md):
# towers' stream levels (SYM_GV_PRIO_TOWERS, tower order xLSTM, Mamba2,
# RetNet, Hawk) : the state-streaming kernels' level (SYM_GV_PRIO_STATE)
if [ -n "${GV_PRIO_COMPARE:-}" ]; then
for m in ${GV_PRIO_MODES:-"-:-" "0,0,0,0:5" "0,1,1,1:-" "0,1,1,1:5" "1,0,0,0:5" "1,1,1,1:0"}; do
    tw=${m%%:*} st=${m##*:}
    [ "$tw" = - ] && tw= ; [ "$st" = - ] && st=
    SYM_GV_PRIO_TOWERS=$tw SYM_GV_PRIO_STATE=$st run "bench_prio_${tw//,/}_${st}" 150 $B/bench_cuda/bench_gv_step 20 \
        ${GV_PRIO_PREC:-mixed,bf16} ${GV_PRIO_B:-8,39,128}
done
fi
# GV_GRID_COMPARE="100 75": the bf16 wgmma kernel's grid aimed at that
# share of the SMs (SYM_GV_WG_GRID_PCT; default 50), the fp32 one's too
# (SYM_GV_WG32_GRID_PCT; default 100)
for p in ${GV_GRID_COMPARE:-}; do
SYM_GV_WG_GRID_PCT=$p SYM_GV_WG32_GRID_PCT=$p run bench_gv_step_grid$p 150 $B/bench_cuda/bench_gv_step 20 fp32,bf16,mixed 16,24,39,48,64,128
done
# GV_NCU_STEP=1: every kernel of one step (GV_NCU_PREC, default mixed) at
# each B of GV_NCU_B (default 39 128) under ncu, one at a time, clocks and
# caches left as they are: time and DRAM bytes as CSV
# (tools/ncu-step-table.py makes the table)
if [ -n "${GV_NCU_STEP:-}" ] && command -v ncu >/dev/null; then
for nb in ${GV_NCU_B:-39 128}; do
SYM_BENCH_PROFILE_STEP=1 run ncu_step_b$nb 400 ncu --profile-from-start off --clock-control none --cache-control none --csv --page raw --print-units base \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum --log-file "$OUT/ncu_step_b$nb.csv" \
    $B/bench_cuda/bench_gv_step 3 "${GV_NCU_PREC:-mixed}" "$nb"
done
fi
# BASE=DIR: the same bench built from another tree (e.g. `git archive` of the
# previous commit), run on this machine for a like-for-like comparison
if [ -n "${BASE:-}" ]; then
{ cmake -S "$BASE/kernels/cuda/gv/standalone" -B build-base -DCMAKE_BUILD_TYPE=Release && cmake --build build-base -j16; } > "$OUT/build-base.log" 2>&1
run bench_gv_step_base 240 build-base/bench_cuda/bench_gv_step 30 fp32,bf16,mixed
fi
# GV_QUICK=1: skip the own-GEMV comparison and the full-size CPU comparison (2+ min of CPU)
# GV_TOWERS=0: skip timing each tower alone
if [ -z "${GV_QUICK:-}" ] && [ -z "${GV_NO_OWNGEMV:-}" ]; then
SYM_GV_GEMM_MIN=100000 run bench_gv_step_owngemv 120 $B/bench_cuda/bench_gv_step 20 fp32,bf16,mixed 4,8
fi
if [ "${GV_TOWERS:-1}" != 0 ]; then
for m in 1 2 4 8; do SYM_GV_TOWER_MASK=$m run bench_gv_tower$m 120 $B/bench_cuda/bench_gv_step 20 bf16,fp32 1,39,128; done
fi
if [ -z "${GV_QUICK:-}" ]; then
run test_gv_full 300 $B/tests_cuda/test_gv_full tests/data/traces/small.csv 80
fi
# GV_NCU=1: per-kernel GPU time of one xLSTM-tower step (bf16, B=39), the critical path
if [ -n "${GV_NCU:-}" ] && command -v ncu >/dev/null; then
SYM_GV_TOWER_MASK=1 run ncu_xlstm_b39 200 ncu --metrics gpu__time_duration.sum --launch-skip 2000 --launch-count "${GV_NCU_COUNT:-600}" \
    --print-summary per-kernel $B/bench_cuda/bench_gv_step 2 bf16 39
fi
echo "==== summary ===="
for m in 1 2 4 8; do [ -f "$OUT/bench_gv_tower$m.log" ] || continue; echo "tower mask $m:"; grep -h "^BENCH |" "$OUT/bench_gv_tower$m.log" | grep -v prec | awk -F'|' '{printf "  %s B=%s %s ms\n", $3, $4, $5}'; done
cat "$OUT/gpu.txt"
cat "$OUT/summary.txt"
grep -h -E "^(PASS|FAIL|SKIP)" "$OUT"/test_gv_*.log 2>/dev/null
[ -f "$OUT/test_gv_shapes.log" ] && { echo "---- test_gv_shapes, per config:"; grep -h -E "^config .*\||^  " "$OUT/test_gv_shapes.log"; }
[ -f "$OUT/ncu_xlstm_b39.log" ] && grep -E "^  [a-zA-Z_].*\(|gpu__time_duration.sum|Invocations" "$OUT/ncu_xlstm_b39.log" | head -120 > "$OUT/ncu_summary.txt"
grep -h -E "copy:|^BENCH|^ACCURACY|WARNING|^command" "$OUT"/bench_gv_step.log "$OUT"/bench_gv_step_owngemv.log "$OUT"/test_gv_full.log 2>/dev/null
grep -h "^BENCH |" "$OUT/test_gv_gemv.log" 2>/dev/null
for f in grid100 grid75 grid50 grid25; do [ -f "$OUT/bench_gv_step_$f.log" ] && { echo "---- bench_gv_step_$f:"; grep -h "^BENCH" "$OUT/bench_gv_step_$f.log"; }; done
for f in "$OUT"/ncu_step_b*.csv; do [ -f "$f" ] && command -v python3 >/dev/null && { echo "---- ${f##*/}:"; python3 tools/ncu-step-table.py "$f" | head -40; }; done
for f in notc tc64 notf32 notf32_mid mid nowg nowg_mid wg_mid wg64 nowg32 nowg32_mid wg32_mid; do [ -f "$OUT/bench_gv_step_$f.log" ] && { echo "---- bench_gv_step_$f:"; grep -h "^BENCH" "$OUT/bench_gv_step_$f.log"; }; done
for v in 0 64; do [ -f "$OUT/bench_xlstm_tcmax$v.log" ] && { echo "---- xLSTM alone, SYM_GV_TC_MAX=$v:"; grep -h "^BENCH" "$OUT/bench_xlstm_tcmax$v.log"; }; done
for f in "$OUT"/bench_prio_*.log; do [ -f "$f" ] && { echo "---- ${f##*/}:"; grep -h "^BENCH" "$f"; }; done
[ -f "$OUT/bench_gv_step_base.log" ] && { echo "---- baseline (BASE=$BASE) on this machine:"; grep -h -E "^BENCH" "$OUT/bench_gv_step_base.log"; }
