/* Batched matrix-vector products for B <= a few hundred rows, the bulk of a
 * step's HBM traffic: one warp owns R output rows and walks them once per
 * chunk of BT batch rows, so weights stream from HBM once (later chunks hit
 * L2/L1) and each x load is reused R times. Weights fp32 or bf16 (16-byte
 * loads, 8 elements per lane), fp32 accumulation. Each output's sum is
 * lane-strided then a fixed xor tree: the same for a row whatever B is. */
#include "kernels/cuda/ops/gemv.cuh"

#include "kernels/cuda/device.cuh"
#include "kernels/cuda/launch.cuh"

template <typename WT> __device__ __forceinline__ float load1(const WT *p);
template <> __device__ __forceinline__ float load1<float>(const float *p) { return *p; }
template <> __device__ __forceinline__ float load1<__nv_bfloat16>(const __nv_bfloat16 *p) { return __bfloat162float(*p); }

struct GemvArgs {
    const void *w;
    const float *bias, *x;
    float *y;
    int ldx, ldy, B, out, in, blk_rows, xwrap, flags, vec;
};

/* One body, longer than a screen: the vector and the scalar loops share
 * the accumulators, which the fixed xor tree then sums in registers. */
template <typename WT, int BT, int R> __global__ void __launch_bounds__(256) k_gemv(GemvArgs a) {
    SYM_PDL_ENTER();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int o0 = (blockIdx.x * 8 + warp) * R;
    if (o0 >= a.out) return;
    const WT *W = (const WT *)a.w + (size_t)o0 * a.in;
    const float *xr = a.x + (size_t)((o0 / a.blk_rows) % a.xwrap) * a.in;
    const int nr = min(R, a.out - o0);
    for (int b0 = 0; b0 < a.B; b0 += BT) {
        float acc[R][BT];
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < BT; j++) acc[r][j] = 0.0f;
        if (a.vec) {
            /* unrolled so several 16-byte weight loads are in flight per lane */
#pragma unroll 4
            for (int k = lane * 8; k < a.in; k += 256) {
                float wv[R][8];
#pragma unroll
                for (int r = 0; r < R; r++) {
                    if (r < nr) load8<WT>(W + (size_t)r * a.in + k, wv[r]);
                    else
#pragma unroll
                        for (int q = 0; q < 8; q++) wv[r][q] = 0.0f;
                }
#pragma unroll
                for (int j = 0; j < BT; j++) {
                    if (b0 + j < a.B) {
                        float xv[8];
                        load8<float>(xr + (size_t)(b0 + j) * a.ldx + k, xv);
#pragma unroll
                        for (int r = 0; r < R; r++)
                            acc[r][j] += ((wv[r][0] * xv[0] + wv[r][1] * xv[1]) + (wv[r][2] * xv[2] + wv[r][3] * xv[3])) +
                                         ((wv[r][4] * xv[4] + wv[r][5] * xv[5]) + (wv[r][6] * xv[6] + wv[r][7] * xv[7]));
                    }
                }
            }
        } else {
            for (int k = lane; k < a.in; k += 32) {
                float wv[R];
#pragma unroll
                for (int r = 0; r < R; r++) wv[r] = r < nr ? load1<WT>(W + (size_t)r * a.in + k) : 0.0f;
#pragma unroll
                for (int j = 0; j < BT; j++)
                    if (b0 + j < a.B) {
                        float xv = xr[(size_t)(b0 + j) * a.ldx + k];
#pragma unroll
                        for (int r = 0; r < R; r++) acc[r][j] += wv[r] * xv;
                    }
            }
        }
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < BT; j++) acc[r][j] = sym_warp_sum(acc[r][j]);
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int j = 0; j < BT; j++) {
                    if (r < nr && b0 + j < a.B)
                        sym_linear_store(a.y + (size_t)(b0 + j) * a.ldy + o0 + r, acc[r][j],
                                         a.bias ? a.bias[o0 + r] : 0.0f, a.flags);
                }
        }
    }
}

template <typename WT> static void launch(cudaStream_t s, GemvArgs &a) {
    /* R > 1 only when the R rows of a warp share one input slice */
    bool multi = a.B > 8 && (a.blk_rows % 4) == 0;
    if (multi) {
        int rows = 8 * 4;
        sym_launch(k_gemv<WT, 8, 4>, dim3((a.out + rows - 1) / rows), dim3(256), s, a);
    } else if (a.B == 1) {
        sym_launch(k_gemv<WT, 1, 1>, dim3((a.out + 7) / 8), dim3(256), s, a);
    } else if (a.B <= 4) {
        sym_launch(k_gemv<WT, 4, 1>, dim3((a.out + 7) / 8), dim3(256), s, a);
    } else {
        sym_launch(k_gemv<WT, 8, 1>, dim3((a.out + 7) / 8), dim3(256), s, a);
    }
}

void sym_gemv_own(cudaStream_t s, const sym_dlin *L, const float *x, int ldx, float *y, int ldy, int B, int flags) {
    GemvArgs a;
    a.w = L->w, a.bias = L->b, a.x = x, a.y = y, a.ldx = ldx, a.ldy = ldy, a.B = B, a.out = L->out, a.in = L->in;
    a.blk_rows = L->blk_rows, a.xwrap = L->xwrap, a.flags = flags;
    a.vec = (L->in % 8) == 0 && (ldx % 4) == 0 && ((uintptr_t)x % 16) == 0 && ((uintptr_t)L->w % 16) == 0;
    if (L->bf16) launch<__nv_bfloat16>(s, a);
    else launch<float>(s, a);
}
