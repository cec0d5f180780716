/* The linear paths (kernels/cuda/ops/linear.cuh) alone, timed on the
 * model's layer shapes (the one-layer harness of linear_run.h; the paths'
 * checks against a CPU fp64 product are tests/cuda/test_gv_gemv's): fp32,
 * cuBLAS SGEMM against the 3xTF32 kernels at B = 2 .. 128; bf16, the own
 * GEMV, cuBLAS over x's terms, the mma.sync and the wgmma kernels at
 * B = 1 .. 64. Each figure is the median of 50 launches, in us and GB/s of
 * weights; each run's output is checked against a CPU fp64 product first.
 *   linear */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/cuda/linear_run.h"
#include "kernels/cuda_backend.h"

typedef struct {
    const char *name;
    int out, in, blk_rows, xwrap;
} shape;

static int failures;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-52 - 1.0);
}

static void fail(const char *what, const char *name, const sym_err *e) {
    printf("FAIL %s %s: %s\n", what, name, e->msg);
    failures++;
}

static float round_bf16(float v) { /* round to nearest even, as __float2bfloat16_rn */
    uint32_t u;
    memcpy(&u, &v, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&v, &u, 4);
    return v;
}

/* The CPU fp64 product of B rows with the weights as stored (no bias,
 * no activation) into want[b * out + o], and its fp32 accumulation bound. */
static void reference(const shape *sh, int bf16, const float *W, const float *x, int ldx, int B, double *want,
                      double *bound) {
    for (int b = 0; b < B; b++)
        for (int o = 0; o < sh->out; o++) {
            const float *w = W + (size_t)o * sh->in,
                        *xr = x + (size_t)b * ldx + (size_t)((o / sh->blk_rows) % sh->xwrap) * sh->in;
            double s = 0, mag = 0;
            for (int k = 0; k < sh->in; k++) {
                const double wk = bf16 ? round_bf16(w[k]) : w[k];
                s += wk * xr[k], mag += fabs(wk * xr[k]);
            }
            want[(size_t)b * sh->out + o] = s, bound[(size_t)b * sh->out + o] = 1e-6 * (mag + fabs(s)) + 1e-6;
        }
}

static void check(const char *path, const shape *sh, const double *want, const double *bound, const float *y, int ldy,
                  int B) {
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int o = 0; o < sh->out; o++) {
            const size_t i = (size_t)b * sh->out + o;
            const double r = fabs(y[(size_t)b * ldy + o] - want[i]) / bound[i];
            if (!(r <= worst)) worst = isnan(r) ? INFINITY : r;
        }
    if (!(worst <= 1.0)) {
        printf("FAIL %s %s B=%d: worst error %.3g of its bound\n", path, sh->name, B, worst);
        failures++;
    }
}

int main(void) {
    if (sym_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    const int wg = sym_cuda_device_sm90(0); /* the wgmma kernels are sm_90a code */
    static const char *path_name[] = {"own", "cublas", "tc", "tf32x3", "wgmma", "wgmma-tf32x3"};
    double *want = malloc((size_t)128 * 8192 * sizeof *want), *bound = malloc((size_t)128 * 8192 * sizeof *bound);
    if (!want || !bound) return printf("FAIL out of memory\n"), 1;
    const shape shapes[] = {
        {"fc1 4096x2048", 4096, 2048, 4096, 1},
        {"fc2 2048x4096", 2048, 4096, 2048, 1},
        {"sLSTM in 4096x512 blk", 4096, 512, 512, 4},
        {"sLSTM gates 8192x1024 blk", 8192, 1024, 512, 16},
    };
    /* fp32: cuBLAS SGEMM against the 3xTF32 kernel (the first layer is
     * RetNet's q/k/v/g, 64 MB: more than L2 holds) */
    const shape f32[] = {{"qkvg 8192x2048", 8192, 2048, 8192, 1}, shapes[0], shapes[1]};
    printf("BENCH | fp32 layer | B | cublas us | tf32x3 us | wgmma-tf32x3 us | cublas GB/s | tf32x3 GB/s | "
           "wgmma-tf32x3 GB/s\n");
    for (int s = 0; s < 3; s++) {
        const shape *sh = &f32[s];
        float *W = malloc((size_t)sh->out * sh->in * 4), *x = malloc((size_t)128 * sh->in * 4),
              *y = malloc((size_t)128 * sh->out * 4);
        for (size_t i = 0; i < (size_t)sh->out * sh->in; i++) W[i] = frand() * 0.05f;
        for (size_t i = 0; i < (size_t)128 * sh->in; i++) x[i] = frand();
        const int tb[] = {2, 8, 16, 24, 39, 48, 64, 128};
        for (int bi = 0; bi < 8; bi++) {
            float us[3] = {0};
            const sym_linear_path ps[3] = {SYM_LINEAR_CUBLAS, SYM_LINEAR_TF32, SYM_LINEAR_WG32};
            sym_err e = {{0}};
            reference(sh, 0, W, x, sh->in, tb[bi], want, bound);
            for (int p = 0; p < 3; p++) {
                if (p == 2 && !wg) continue;
                memset(y, 0, (size_t)128 * sh->out * 4);
                if (sym_cuda_linear_run(0, ps[p], W, NULL, sh->out, sh->in, sh->blk_rows, 1, 0, x, sh->in, y, sh->out,
                                        tb[bi], 0, 50, &us[p], &e))
                    fail("timing", sh->name, &e);
                else check(path_name[ps[p]], sh, want, bound, y, sh->out, tb[bi]);
            }
            double gb = (double)sh->out * sh->in * 4 / 1e3;
            printf("BENCH | %s | %d | %.1f | %.1f | %.1f | %.0f | %.0f | %.0f\n", sh->name, tb[bi], us[0], us[1], us[2],
                   gb / us[0], gb / us[1], us[2] > 0 ? gb / us[2] : 0.0);
        }
        free(W), free(x), free(y);
    }
    printf("BENCH | layer | B | own us | cublas us (x split before) | tc us | wgmma us (x split before) | "
           "wgmma GB/s of weights\n");
    for (int s = 0; s < 4; s++) {
        const shape *sh = &shapes[s];
        int ldx = sh->in * sh->xwrap, ldy = sh->out;
        float *W = malloc((size_t)sh->out * sh->in * 4), *x = malloc((size_t)64 * ldx * 4),
              *y = malloc((size_t)64 * ldy * 4);
        for (size_t i = 0; i < (size_t)sh->out * sh->in; i++) W[i] = frand() * 0.05f;
        for (size_t i = 0; i < (size_t)64 * ldx; i++) x[i] = frand();
        const int tb[] = {1, 8, 16, 24, 32, 39, 48, 64};
        for (int bi = 0; bi < 8; bi++) {
            float us[5] = {0};
            sym_err e = {{0}};
            reference(sh, 1, W, x, ldx, tb[bi], want, bound);
            for (int p = 0; p < 5; p++) {
                if (p == 3 || (p == 4 && !wg)) continue;
                memset(y, 0, (size_t)64 * ldy * 4);
                if (sym_cuda_linear_run(0, (sym_linear_path)p, W, NULL, sh->out, sh->in, sh->blk_rows, sh->xwrap, 1, x,
                                        ldx, y, ldy, tb[bi], 0, 50, &us[p], &e))
                    fail("timing", sh->name, &e);
                else check(path_name[p], sh, want, bound, y, ldy, tb[bi]);
            }
            printf("BENCH | %s | %d | %.1f | %.1f | %.1f | %.1f | %.0f\n", sh->name, tb[bi], us[0], us[1], us[2], us[4],
                   (double)sh->out * sh->in * 2 / (us[4] * 1e-6) / 1e9);
        }
        free(W), free(x), free(y);
    }
    free(want), free(bound);
    printf("%s: linear\n", failures ? "FAIL" : "PASS");
    return failures != 0;
}
