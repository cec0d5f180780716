/* What storing the state in fewer bytes costs each tower at full size over
 * a long stream, on the GPU: the full-size synthetic model (seed 1), STEPS
 * steps of SYMBOLS symbols from a zero state on the same random features
 * (uniform [-2, 2)), each variant against the reference variant (fp32
 * weights, fp32 state; its own error against the CPU fp64 path is about
 * 1e-5, test_gv_full). Variants: weight precision (fp32 or mixed) x each
 * tower's state storage. Per variant and tower: max abs error over steps
 * 1-10, 11-100, 101-1000, 1001-STEPS, and the mean over all; with --csv,
 * every step's mean abs error over the symbols per tower (error against
 * step, for tools/plot or a spreadsheet).
 *
 * usage: bench_gv_state_accuracy [--csv FILE] [STEPS (2000)] [SYMBOLS (4)] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_backend.h"
#include "kernels/state_precision.h"

typedef struct {
    const char *name;
    int mixed;                     /* weights: 0 fp32, 1 mixed (RetNet fp32, the rest bf16) */
    sym_mat_store mat[SYM_TOWERS]; /* state storage */
} variant;

static const variant variants[] = {
    {"reference: fp32 weights, fp32 state", 0, {SYM_MAT_F32, SYM_MAT_F32, SYM_MAT_F32, SYM_MAT_F32}},
    {"mixed weights, fp32 state", 1, {SYM_MAT_F32, SYM_MAT_F32, SYM_MAT_F32, SYM_MAT_F32}},
    {"fp32 weights, state fp16/bf16/fp32", 0, {SYM_MAT_F16, SYM_MAT_BF16, SYM_MAT_F32, SYM_MAT_F32}},
    {"mixed weights, state fp16/bf16/fp32", 1, {SYM_MAT_F16, SYM_MAT_BF16, SYM_MAT_F32, SYM_MAT_F32}},
    {"fp32 weights, state bf16/fp16/fp16", 0, {SYM_MAT_BF16, SYM_MAT_F16, SYM_MAT_F16, SYM_MAT_F32}},
};
#define N_VARIANTS (int)(sizeof variants / sizeof *variants)

static int run(const variant *v, int steps, int S, double *out, sym_err *e) {
    const sym_model_config cfg = sym_model_config_full();
    const sym_precision f32[4] = {SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32};
    const sym_precision mixed[4] = {SYM_PREC_BF16, SYM_PREC_BF16, SYM_PREC_FP32, SYM_PREC_BF16};
    sym_backend *b = sym_cuda_backend_create_synthetic(&cfg, 1, v->mixed ? mixed : f32, v->mat, 0, S, S, NULL, e);
    if (!b) return -1;
    const int F = cfg.features;
    float *feat = malloc((size_t)S * F * sizeof *feat);
    int32_t *slots = malloc((size_t)S * sizeof *slots);
    unsigned long long r = 0x9e3779b97f4a7c15ull; /* the same stream for every variant */
    int rc = feat && slots ? 0 : sym_fail(e, "out of memory");
    for (int i = 0; i < S && !rc; i++) slots[i] = i;
    for (int k = 0; k < steps && !rc; k++) {
        for (int i = 0; i < S * F; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            feat[i] = (float)((double)(r >> 11) * 0x1.0p-53 * 4.0 - 2.0);
        }
        rc = sym_backend_step(b, S, slots, feat, out + (size_t)k * S * 4, e);
    }
    free(feat), free(slots);
    sym_backend_destroy(b);
    return rc;
}

int main(int argc, char **argv) {
    const char *csv = NULL;
    int a = 1;
    if (a + 1 < argc && !strcmp(argv[a], "--csv")) csv = argv[a + 1], a += 2;
    const int steps = a < argc ? atoi(argv[a++]) : 2000, S = a < argc ? atoi(argv[a++]) : 4;
    if (steps < 11 || steps > 1000000 || S < 1 || S > 64 || a < argc) {
        fprintf(stderr, "usage: bench_gv_state_accuracy [--csv FILE] [STEPS 11..1e6] [SYMBOLS 1..64]\n");
        return 2;
    }
    if (sym_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    sym_err e = {{0}};
    const size_t n = (size_t)steps * S * 4;
    double *out[N_VARIANTS];
    for (int v = 0; v < N_VARIANTS; v++) {
        out[v] = malloc(n * sizeof(double));
        if (!out[v] || run(&variants[v], steps, S, out[v], &e)) {
            printf("FAIL %s: %s\n", variants[v].name, out[v] ? e.msg : "out of memory");
            return 1;
        }
        fprintf(stderr, "%s: done\n", variants[v].name);
    }
    FILE *f = csv ? fopen(csv, "w") : NULL;
    if (f) {
        fprintf(f, "step");
        for (int v = 1; v < N_VARIANTS; v++)
            for (int t = 0; t < SYM_TOWERS; t++) fprintf(f, ",v%d_t%d", v, t);
        fprintf(f, "\n");
    }
    const int edge[5] = {0, 10, 100, 1000, steps};
    double mag[SYM_TOWERS] = {0};
    for (size_t i = 0; i < n; i++) mag[i % 4] = fmax(mag[i % 4], fabs(out[0][i]));
    printf("full size, %d steps of %d symbols; reference |output| reaches [%.3g %.3g %.3g %.3g]\n", steps, S, mag[0],
           mag[1], mag[2], mag[3]);
    printf("BENCH-ACC | variant | tower | max abs err, steps 1-10 / 11-100 / 101-1000 / 1001-%d | mean abs err |\n", steps);
    static const char *tower[SYM_TOWERS] = {"xLSTM", "Mamba2", "RetNet", "Hawk"};
    for (int v = 1; v < N_VARIANTS; v++) {
        for (int t = 0; t < SYM_TOWERS; t++) {
            double mx[4] = {0}, sum = 0;
            for (int k = 0; k < steps; k++)
                for (int s = 0; s < S; s++) {
                    const size_t i = ((size_t)k * S + s) * 4 + t;
                    double d = fabs(out[v][i] - out[0][i]);
                    if (isnan(d)) d = INFINITY;
                    sum += d;
                    for (int w = 0; w < 4; w++)
                        if (k >= edge[w] && k < edge[w + 1]) mx[w] = fmax(mx[w], d);
                }
            printf("BENCH-ACC | %s | %s | %.2e / %.2e / %.2e / %.2e | %.2e |\n", variants[v].name, tower[t], mx[0], mx[1],
                   mx[2], steps > 1000 ? mx[3] : NAN, sum / ((double)steps * S));
        }
    }
    for (int k = 0; f && k < steps; k++) {
        fprintf(f, "%d", k + 1);
        for (int v = 1; v < N_VARIANTS; v++)
            for (int t = 0; t < SYM_TOWERS; t++) {
                double m = 0;
                for (int s = 0; s < S; s++) {
                    const size_t i = ((size_t)k * S + s) * 4 + t;
                    m += fabs(out[v][i] - out[0][i]);
                }
                fprintf(f, ",%.4g", m / S);
            }
        fprintf(f, "\n");
    }
    if (f) fclose(f);
    for (int v = 0; v < N_VARIANTS; v++) free(out[v]);
    return 0;
}
