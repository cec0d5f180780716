/* ms per step of the CUDA engine at full size (H=2048, P=4096, L=12) with
 * synthetic weights, for B = 1, 8, 39, 64, 128 in fp32, bf16 and mixed
 * (RetNet fp32, the rest bf16). Each B: 5 steps of random features first
 * (state non-zero), then the median of CUDA-event timings of graph replays.
 * The HBM floor is (weight bytes + B x slot bytes x 2) / the device-to-device
 * copy bandwidth measured here (bytes read plus written).
 * SYM_GV_GEMM_MIN (env) sets the B from which cuBLAS replaces the own GEMV;
 * SYM_GV_BLK_OWN_MAX the B up to which block-diagonal layers stay on it;
 * SYM_GV_TC_MIN / SYM_GV_TC_MAX the range of B whose bf16 layers take the
 * tensor-core GEMV (default 8..8; SYM_GV_TC_MAX=0: never).
 * SYM_BENCH_PROFILE_STEP=1: after each B's timings, one more step between
 * cudaProfilerStart and Stop (`ncu --profile-from-start off` profiles it).
 * SYM_BENCH_RUN=k (2..4): after each B, B rows as runs of k rows of B/k
 * symbols in one call (sym_backend_step_runs, docs/design/runs.md) against
 * one step of those B/k symbols, both timed by the host clock around the
 * call (median of iters).
 * SYM_BENCH_RUN_ONE=1: after each B, B rows with one run of two (B - 1
 * symbols) against B distinct symbols, the same way: what the run variants
 * of the state kernels cost a large step.
 * usage: bench_gv_step [iters] [precisions: fp32,bf16,mixed] [B list: 1,8,39,64,128] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "kernels/cuda/gv/cuda_extra.h"

static int cmpf(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* B rows' slots: i / k, or with k = -1 one run of two, 0, 0, 1, 2, ... */
static void run_slots(int32_t *sl, int B, int k) {
    for (int i = 0; i < B; i++) sl[i] = k > 0 ? (int32_t)(i / k) : (int32_t)(i ? i - 1 : 0);
}

/* median ms of iters calls of step_runs(B rows, run_slots(k)) by the host clock */
static int time_runs(sym_backend *b, int B, int k, const float *feat, double *out, int iters, float *ms, sym_err *e) {
    int32_t sl[128];
    run_slots(sl, B, k);
    for (int it = -2; it < iters; it++) {
        uint64_t t0 = sym_now_ns();
        if (sym_backend_step_runs(b, B, sl, feat, out, NULL, e)) return -1;
        if (it >= 0) ms[it] = (float)((sym_now_ns() - t0) * 1e-6);
    }
    qsort(ms, (size_t)iters, sizeof *ms, cmpf);
    return 0;
}

int main(int argc, char **argv) {
    if (sym_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    int iters = argc > 1 ? atoi(argv[1]) : 30;
    const char *which = argc > 2 ? argv[2] : "fp32,bf16,mixed";
    sym_err e = {{0}};
    double bw;
    if (sym_cuda_copy_bandwidth(0, (size_t)1 << 30, &bw, &e)) {
        printf("FAIL %s\n", e.msg);
        return 1;
    }
    printf("device-to-device copy: %.0f GB/s (read + write)\n", bw);
    sym_model_config cfg = sym_model_config_full();
    const char *names[3] = {"fp32", "bf16", "mixed"};
    sym_precision P[3][4] = {{SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32},
                             {SYM_PREC_BF16, SYM_PREC_BF16, SYM_PREC_BF16, SYM_PREC_BF16},
                             {SYM_PREC_BF16, SYM_PREC_BF16, SYM_PREC_FP32, SYM_PREC_BF16}};
    int Bs[16] = {1, 8, 39, 64, 128}, nB = 5;
    if (argc > 3) {
        nB = 0;
        for (const char *p = argv[3]; *p && nB < 16;) {
            int v = atoi(p);
            if (v >= 1 && v <= 128) Bs[nB++] = v;
            while (*p && *p != ',') p++;
            if (*p) p++;
        }
    }
    const char *pv = getenv("SYM_BENCH_PROFILE_STEP");
    int n_slots = 130, F = cfg.features, profile = pv && *pv && *pv != '0';
    float *feat = malloc((size_t)128 * F * sizeof *feat), *ms = malloc((size_t)iters * sizeof *ms);
    double *out = malloc((size_t)128 * 4 * sizeof *out);
    int32_t slots[128];
    for (int i = 0; i < 128; i++) slots[i] = (int32_t)i;
    unsigned long long r = 0x9e3779b97f4a7c15ull;
    printf("BENCH | prec | B | ms/step (median) | min | floor ms | ratio | weights GB | GPU mem used GB | symbols fit |\n");
    for (int k = 0; k < 3; k++) {
        if (!strstr(which, names[k])) continue;
        size_t used0, fr0;
        sym_cuda_mem_info(0, &used0, &fr0, &e);
        sym_backend *b = sym_cuda_backend_create_synthetic(&cfg, 42, P[k], 0, n_slots, 128, &e);
        if (!b) {
            printf("FAIL create %s: %s\n", names[k], e.msg);
            return 1;
        }
        size_t used, fr;
        sym_cuda_mem_info(0, &used, &fr, &e);
        double wb = (double)sym_cuda_backend_weight_bytes(b), sb = (double)b->slot_bytes;
        long fit = n_slots + (long)((double)fr / sb);
        for (int bi = 0; bi < nB; bi++) {
            int B = Bs[bi];
            for (int s = 0; s < 5; s++) {
                for (int i = 0; i < B * F; i++) {
                    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
                    feat[i] = (float)((double)(r >> 11) * 0x1.0p-53 * 4.0 - 2.0);
                }
                if (sym_backend_step(b, B, slots, feat, out, &e)) {
                    printf("FAIL step: %s\n", e.msg);
                    return 1;
                }
            }
            for (int i = 0; i < B * 4; i++)
                if (!isfinite(out[i])) printf("WARNING non-finite output %s B=%d\n", names[k], B);
            if (sym_cuda_backend_time_steps(b, B, slots, feat, iters, ms, &e)) {
                printf("FAIL time: %s\n", e.msg);
                return 1;
            }
            if (profile && (sym_cuda_profiler(1, &e) || sym_backend_step(b, B, slots, feat, out, &e) ||
                            sym_cuda_profiler(0, &e))) {
                printf("FAIL profiled step: %s\n", e.msg);
                return 1;
            }
            qsort(ms, (size_t)iters, sizeof *ms, cmpf);
            double med = ms[iters / 2], floor_ms = (wb + 2.0 * B * sb) / (bw * 1e9) * 1e3;
            printf("BENCH | %s | %d | %.3f | %.3f | %.3f | %.2f | %.2f | %.1f | %ld |\n", names[k], B, med, ms[0],
                   floor_ms, med / floor_ms, wb / 1e9, (double)used / 1e9, fit);
            const char *rv = getenv("SYM_BENCH_RUN");
            int kr = rv ? atoi(rv) : 0;
            if (kr >= 2 && kr <= 4 && B >= kr) {
                float m_runs, m_one;
                if (time_runs(b, B, kr, feat, out, iters, ms, &e)) {
                    printf("FAIL runs: %s\n", e.msg);
                    return 1;
                }
                m_runs = ms[iters / 2];
                for (int i = 0; i < B * 4; i++)
                    if (!isfinite(out[i])) printf("WARNING non-finite output %s B=%d runs of %d\n", names[k], B, kr);
                if (time_runs(b, B / kr, 1, feat, out, iters, ms, &e)) {
                    printf("FAIL one per symbol: %s\n", e.msg);
                    return 1;
                }
                m_one = ms[iters / 2];
                printf("BENCH-RUN | %s | %d rows | %d symbols x %d | runs %.3f ms | one row each %.3f ms | %d such "
                       "steps %.3f ms |\n",
                       names[k], B, B / kr, kr, m_runs, m_one, kr, kr * m_one);
            }
            const char *ro = getenv("SYM_BENCH_RUN_ONE");
            if (ro && *ro && *ro != '0' && B >= 2) { /* what one run costs a step of B rows */
                float m_one_run, m_plain;
                if (time_runs(b, B, -1, feat, out, iters, ms, &e)) {
                    printf("FAIL one run: %s\n", e.msg);
                    return 1;
                }
                m_one_run = ms[iters / 2];
                if (profile) { /* one more such step for ncu --profile-from-start off */
                    int32_t sl[128];
                    run_slots(sl, B, -1);
                    if (sym_cuda_profiler(1, &e) || sym_backend_step_runs(b, B, sl, feat, out, NULL, &e) ||
                        sym_cuda_profiler(0, &e)) {
                        printf("FAIL profile: %s\n", e.msg);
                        return 1;
                    }
                }
                if (time_runs(b, B, 1, feat, out, iters, ms, &e)) {
                    printf("FAIL distinct: %s\n", e.msg);
                    return 1;
                }
                m_plain = ms[iters / 2];
                printf("BENCH-RUN-ONE | %s | %d rows | one run of 2, %d distinct: %.3f ms | %d distinct: %.3f ms |\n",
                       names[k], B, B - 2, m_one_run, B, m_plain);
            }
            fflush(stdout);
        }
        sym_backend_destroy(b);
    }
    const char *gm = getenv("SYM_GV_GEMM_MIN");
    printf("command: SYM_GV_GEMM_MIN=%s bench_gv_step %d %s%s%s\n", gm ? gm : "(default 8)", iters, which,
           argc > 3 ? " " : "", argc > 3 ? argv[3] : "");
    return 0;
}
