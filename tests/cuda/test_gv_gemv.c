/* The linear-layer op (kernels/cuda/ops/linear.cuh, every path) alone, against a CPU
 * fp64 product with the same bf16-rounded weights:
 *  - every path (own GEMV, cuBLAS with the bf16 split, the mma.sync
 *    tensor-core kernel, the wgmma kernel on sm_90) on dense and
 *    block-diagonal layers of the full model's shapes and of odd ones (rows
 *    not a multiple of the kernel's tile), with bias, ReLU and
 *    accumulation, fresh random inputs, outputs NaN-poisoned; the output's
 *    bf16 terms for the next layer where cuBLAS and wgmma write them;
 *  - fp32 weights: own GEMV, cuBLAS SGEMM, the 3xTF32 tensor-core kernel
 *    and its wgmma version on sm_90, all held to the same fp32 bound;
 *  - the tensor-core kernels give a row the same bits whatever B is.
 * The paths' timing tables are dev/cuda/linear's. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/cuda/linear_run.h"
#include "kernels/cuda_backend.h"
#include "tests/check.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-52 - 1.0);
}

static float round_bf16(float v) { /* round to nearest even, as __float2bfloat16_rn */
    uint32_t u;
    memcpy(&u, &v, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&v, &u, 4);
    return v;
}

typedef struct {
    const char *name;
    int out, in, blk_rows, xwrap;
} shape;

/* Checks path p on one layer and B; *bits receives the output rows (for
 * the batch-independence check). Returns the worst error over its bound. */
static double check_one(const shape *sh, int bf16, sym_linear_path p, int B, int flags, float *bits) {
    const int out = sh->out, in = sh->in, xw = sh->xwrap, ldx = in * xw + 4, ldy = out + 8;
    float *W = malloc((size_t)out * in * 4), *bias = malloc((size_t)out * 4), *x = malloc((size_t)B * ldx * 4);
    float *y = malloc((size_t)B * ldy * 4), *y0 = malloc((size_t)B * ldy * 4);
    double worst = 0;
    for (size_t i = 0; i < (size_t)out * in; i++) W[i] = frand() * 0.05f;
    for (int i = 0; i < out; i++) bias[i] = frand();
    for (size_t i = 0; i < (size_t)B * ldx; i++) x[i] = frand() * 3.0f;
    for (size_t i = 0; i < (size_t)B * ldy; i++) y0[i] = flags & 2 ? frand() : NAN;
    memcpy(y, y0, (size_t)B * ldy * 4);
    sym_err e = {{0}};
    if (sym_cuda_linear_run(0, p, W, bias, out, in, sh->blk_rows, xw, bf16, x, ldx, y, ldy, B, flags, 0, NULL, &e)) {
        CHECK(0, "%s path %d B=%d: %s", sh->name, (int)p, B, e.msg);
        worst = INFINITY;
        goto done;
    }
    for (int b = 0; b < B; b++)
        for (int o = 0; o < out; o++) {
            const float *w = W + (size_t)o * in, *xr = x + (size_t)b * ldx + (size_t)((o / sh->blk_rows) % xw) * in;
            double s = 0, mag = 0;
            for (int k = 0; k < in; k++) {
                double wk = bf16 ? round_bf16(w[k]) : w[k];
                s += wk * xr[k], mag += fabs(wk * xr[k]);
            }
            s += bias[o];
            if (flags & 1) s = s > 0 ? s : 0;
            if (flags & 2) s += y0[(size_t)b * ldy + o];
            double got = y[(size_t)b * ldy + o];
            /* fp32 accumulation of `in` products: a few ulps of the magnitude */
            double bound = 1e-6 * (mag + fabs(bias[o]) + fabs(s)) + 1e-6;
            double r = fabs(got - s) / bound;
            if (!(r <= worst)) worst = isnan(r) ? INFINITY : r;
        }
    /* untouched columns past `out` keep their poison or old values */
    for (int b = 0; b < B; b++)
        for (int o = out; o < ldy; o++) {
            float a = y[(size_t)b * ldy + o], c = y0[(size_t)b * ldy + o];
            if (!(a == c || (isnan(a) && isnan(c)))) worst = INFINITY;
        }
    if (bits)
        for (int b = 0; b < B; b++) memcpy(bits + (size_t)b * out, y + (size_t)b * ldy, (size_t)out * 4);
done:
    free(W), free(bias), free(x), free(y), free(y0);
    return worst;
}

static const char *path_name[] = {"own", "cublas", "tc", "tf32x3", "wgmma", "wgmma-tf32x3"};

int main(void) {
    if (sym_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    const int wg = sym_cuda_device_sm90(0); /* the wgmma kernel is sm_90a code */
    if (!wg) printf("note: device 0 is not compute capability 9.0: the wgmma path is not tested\n");
    const shape shapes[] = {
        {"fc1 4096x2048", 4096, 2048, 4096, 1},
        {"fc2 2048x4096", 2048, 4096, 2048, 1},
        {"sLSTM in 4096x512 blk", 4096, 512, 512, 4},
        {"sLSTM gates 8192x1024 blk", 8192, 1024, 512, 16}, /* [W_in | W_st] per head: in != rows */
        {"odd 200x96", 200, 96, 200, 1},
        {"small blk 512x128", 512, 128, 128, 2},
    };
    const int Bs[] = {1, 3, 8, 13, 39, 64};
    const int nsh = sizeof shapes / sizeof *shapes, nb = sizeof Bs / sizeof *Bs;
    for (int s = 0; s < nsh; s++)
        for (int p = 0; p < 5; p++)
            for (int bi = 0; bi < nb; bi++) {
                int B = Bs[bi], flags = bi % 3; /* none, ReLU, accumulate */
                if (p == 3 || (p == SYM_LINEAR_WG && (!wg || shapes[s].in % 64))) continue; /* fp32 only; 64-wide */
                /* and the output's terms for the next layer, where a path writes them */
                if ((p == SYM_LINEAR_CUBLAS || p == SYM_LINEAR_WG) && bi % 2) flags |= 8;
                double r = check_one(&shapes[s], 1, (sym_linear_path)p, B, flags, NULL);
                CHECKV(r <= 1.0, "bf16 %-22s %-6s B=%-2d flags=%d: worst error %.3g of its bound", shapes[s].name,
                       path_name[p], B, flags, r);
            }
    /* fp32 weights: own GEMV and cuBLAS SGEMM, with bias and ReLU, and accumulating */
    for (int p = 0; p < 2; p++)
        for (int f = 0; f < 3; f++) {
            int B = f == 1 ? 13 : 39;
            double r = check_one(&shapes[f == 2 ? 1 : 0], 0, (sym_linear_path)p, B, f, NULL);
            CHECKV(r <= 1.0, "fp32 %s B=%d flags=%d: worst error %.3g of its bound", path_name[p], B, f, r);
        }
    /* fp32 weights on the 3xTF32 kernel: held to the same fp32 bound, every
     * shape, B across its tile sizes (one to eight m16 tiles) */
    const int Bt[] = {1, 3, 8, 13, 39, 64, 100, 128};
    for (int s = 0; s < nsh; s++)
        for (int bi = 0; bi < 8; bi++) {
            int B = Bt[bi], flags = bi % 3;
            double r = check_one(&shapes[s], 0, SYM_LINEAR_TF32, B, flags, NULL);
            CHECKV(r <= 1.0, "fp32 %-22s tf32x3 B=%-3d flags=%d: worst error %.3g of its bound", shapes[s].name, B,
                   flags, r);
        }
    /* fp32 weights on the wgmma 3xTF32 kernel (sm_90): the same bound,
     * every shape, B up to its 128 (one and two column rounds) */
    for (int s = 0; wg && s < nsh; s++)
        for (int bi = 0; bi < 8; bi++) {
            int B = Bt[bi], flags = bi % 3;
            double r = check_one(&shapes[s], 0, SYM_LINEAR_WG32, B, flags, NULL);
            CHECKV(r <= 1.0, "fp32 %-22s wgmma-tf32x3 B=%-3d flags=%d: worst error %.3g of its bound", shapes[s].name,
                   B, flags, r);
        }
    for (int s = 0; wg && s < 4; s++) {
        const shape *sh = &shapes[s];
        float *a = malloc((size_t)128 * sh->out * 4), *b = malloc((size_t)128 * sh->out * 4);
        uint64_t keep = rng;
        check_one(sh, 0, SYM_LINEAR_WG32, 128, 0, a);
        int same = 1;
        for (int bi = 0; bi < 7; bi++) { /* B = 1 .. 100 */
            rng = keep;
            check_one(sh, 0, SYM_LINEAR_WG32, Bt[bi], 0, b);
            same &= !memcmp(a, b, (size_t)Bt[bi] * sh->out * 4);
        }
        free(a), free(b);
        CHECKV(same, "wgmma-tf32x3 %s: rows bit-identical at B = 1..128", sh->name);
    }
    /* the tensor-core kernels: a row's bits do not depend on B */
    for (int p = SYM_LINEAR_TC; p <= SYM_LINEAR_WG; p += 2) {
        if (p == SYM_LINEAR_WG && !wg) continue;
        for (int s = 0; s < 4; s++) {
            const shape *sh = &shapes[s];
            float *a = malloc((size_t)64 * sh->out * 4), *b = malloc((size_t)64 * sh->out * 4);
            uint64_t keep = rng;
            check_one(sh, 1, (sym_linear_path)p, 64, 0, a);
            int same = 1;
            for (int bi = 0; bi < nb - 1; bi++) {
                rng = keep; /* the same weights and inputs; fewer rows */
                check_one(sh, 1, (sym_linear_path)p, Bs[bi], 0, b);
                same &= !memcmp(a, b, (size_t)Bs[bi] * sh->out * 4);
            }
            free(a), free(b);
            CHECKV(same, "%s %s: rows bit-identical at B = 1..64", path_name[p], sh->name);
        }
    }
    printf("%s: test_gv_gemv\n", failures ? "FAIL" : "PASS");
    return failures != 0;
}
