/* Batched matrix-vector products for B <= a few hundred rows, the bulk of a
 * step's HBM traffic: one warp owns R output rows and walks them once per
 * chunk of BT batch rows, so weights stream from HBM once (later chunks hit
 * L2/L1) and each x load is reused R times. Weights fp32 or bf16 (16-byte
 * loads, 8 elements per lane), fp32 accumulation. Each output's sum is
 * lane-strided then a fixed xor tree: the same for a row whatever B is. */
#include "gv_common.cuh"

template <typename WT> __device__ __forceinline__ float load1(const WT *p);
template <> __device__ __forceinline__ float load1<float>(const float *p) { return *p; }
template <> __device__ __forceinline__ float load1<__nv_bfloat16>(const __nv_bfloat16 *p) { return __bfloat162float(*p); }

struct GemvArgs {
    const void *w;
    const float *bias, *x;
    float *y;
    int ldx, ldy, B, out, in, blk_rows, xwrap, flags, vec;
};

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

static void gemv_own(cudaStream_t s, const sym_dlin *L, const float *x, int ldx, float *y, int ldy, int B, int flags) {
    GemvArgs a;
    a.w = L->w, a.bias = L->b, a.x = x, a.y = y, a.ldx = ldx, a.ldy = ldy, a.B = B, a.out = L->out, a.in = L->in;
    a.blk_rows = L->blk_rows, a.xwrap = L->xwrap, a.flags = flags;
    a.vec = (L->in % 8) == 0 && (ldx % 4) == 0 && ((uintptr_t)x % 16) == 0 && ((uintptr_t)L->w % 16) == 0;
    if (L->bf16) launch<__nv_bfloat16>(s, a);
    else launch<float>(s, a);
}

/* x [B, ldx] (width w) -> xs [3][B][w] bf16: hi, mid, lo */
__global__ void k_split3(const float *x, int ldx, int w, int B, __nv_bfloat16 *xs) {
    SYM_PDL_ENTER();
    int i = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (i >= w) return;
    sym_put_split(xs, (size_t)B * w, (size_t)b * w + i, x[(size_t)b * ldx + i]);
}

/* y = act(y + bias) in place (fp32 path: cuBLAS already did y (+)= W x) */
__global__ void k_epi_inplace(float *y, int ldy, int out, const float *bias, int relu) {
    SYM_PDL_ENTER();
    int o = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (o >= out) return;
    float v = y[(size_t)b * ldy + o] + (bias ? bias[o] : 0.0f);
    y[(size_t)b * ldy + o] = relu ? fmaxf(v, 0.0f) : v;
}

/* y (=|+=) act(y2_hi + y2_mid + y2_lo + bias); with GEMV_SPLIT_OUT the
 * result's terms go to xs (ws->xs2) too, for the next layer */
__global__ void k_epi_split(const float *y2, int out, int B, float *y, int ldy, const float *bias, int flags,
                            __nv_bfloat16 *xs) {
    SYM_PDL_ENTER();
    int o = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (o >= out) return;
    size_t plane = (size_t)B * out;
    const float *p = y2 + (size_t)b * out + o;
    float v = sym_linear_store(y + (size_t)b * ldy + o, (p[0] + p[plane]) + p[2 * plane], bias ? bias[o] : 0.0f,
                               flags);
    if (flags & GEMV_SPLIT_OUT) sym_put_split(xs, plane, (size_t)b * out + o, v);
}

sym_xsplit sym_gemv_planes(const sym_gemm_ws *ws, const sym_dlin *L, int B) {
    /* sym_gemv's dispatch: its cuBLAS bf16 path and both wgmma kernels
     * read the terms */
    sym_xsplit none = {NULL, NULL}, bf = {ws ? ws->xs : NULL, NULL}, tf = {NULL, ws ? ws->xs32 : NULL};
    if (!ws) return none;
    if (!L->bf16) return sym_gemm_wg32_fits(ws, L, B) ? tf : none;
    if (B >= ws->tc_min && B <= ws->tc_max) return none;
    if (sym_gemm_wg_fits(ws, L, B)) return bf; /* the wgmma kernel's input */
    if (B < ws->gemm_min || (L->blk_rows < L->out && B <= ws->blk_own_max)) return none;
    return bf;
}

size_t sym_splitk_part_floats(int n_sm, int max_out) {
    const size_t n[] = {sym_gemv_tc_part_floats(n_sm, max_out), sym_gemm_tf32_part_floats(n_sm),
                        sym_gemm_wg_part_floats(n_sm, max_out), sym_gemm_wg32_part_floats(n_sm, max_out)};
    size_t m = 0;
    for (size_t v : n) m = v > m ? v : m;
    return m;
}

int sym_splitk_counters(int max_out) {
    int a = sym_gemv_tc_counters(max_out), b = sym_gemm_tf32_counters(max_out), c = sym_gemm_wg_counters(max_out);
    return a > b ? (a > c ? a : c) : (b > c ? b : c);
}

void sym_gemv_split(cudaStream_t s, const sym_gemm_ws *ws, const float *x, int ldx, int w, int B) {
    sym_launch(k_split3, dim3((w + 255) / 256, B), dim3(256), s, x, ldx, w, B, ws->xs);
}

int sym_gemv(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y, int ldy,
             int B, int flags) {
    /* block-diagonal layers stay on the own kernel up to blk_own_max:
     * through cuBLAS each part is its own batched GEMM (a layer of 2-4 parts
     * costs 4-6 launches), which the own kernel beats only at small B */
    if (ws && L->bf16 && B >= ws->tc_min && B <= ws->tc_max && sym_gemv_tc(s, ws, L, x, ldx, y, ldy, B, flags) == 0)
        return 0;
    if (ws && !L->bf16 && sym_gemm_wg32_fits(ws, L, B) && sym_gemm_wg32(s, ws, L, x, ldx, y, ldy, B, flags) == 0)
        return 0;
    if (ws && !L->bf16 && B >= ws->tf32_min && B <= ws->tf32_max &&
        sym_gemm_tf32(s, ws, L, x, ldx, y, ldy, B, flags) == 0)
        return 0;
    const int blk = L->blk_rows < L->out, w = blk ? L->xwrap * L->in : L->in;
    if (ws && sym_gemm_wg_fits(ws, L, B)) {
        if (!(flags & (GEMV_X_SPLIT | GEMV_X_CHAIN))) sym_gemv_split(s, ws, x, ldx, w, B), flags |= GEMV_X_SPLIT;
        /* it refuses only misaligned terms; cuBLAS takes them then */
        if (sym_gemm_wg(s, ws, L, (flags & GEMV_X_CHAIN) ? ws->xs2 : ws->xs, y, ldy, B, flags) == 0) return 0;
    }
    if (!ws || B < ws->gemm_min || (L->blk_rows < L->out && B <= ws->blk_own_max)) {
        gemv_own(s, L, x, ldx, y, ldy, B, flags);
        return 0;
    }
    const float one = 1.0f, zero = 0.0f;
    const int out = L->out, in = L->in;
    const int bs = L->blk_rows, nb = L->xwrap, parts = blk ? out / (bs * nb) : 1;
    cublasStatus_t st;
    dim3 eg((out + 255) / 256, B);
    if (!L->bf16) {
        const float beta = (flags & GEMV_ACC) ? 1.0f : 0.0f;
        const float *W = (const float *)L->w;
        if (!blk) {
            st = cublasSgemm(ws->h, CUBLAS_OP_T, CUBLAS_OP_N, out, B, in, &one, W, in, x, ldx, &beta, y, ldy);
            if (st) return (int)st;
        } else {
            /* part p, block j: rows [bs, in] at W + (p nb + j) bs in, input x + j in */
            for (int p = 0; p < parts; p++) {
                st = cublasSgemmStridedBatched(ws->h, CUBLAS_OP_T, CUBLAS_OP_N, bs, B, in, &one,
                                               W + (size_t)p * nb * bs * in, in, (long long)bs * in, x, ldx, in, &beta,
                                               y + (size_t)p * nb * bs, ldy, bs, nb);
                if (st) return (int)st;
            }
        }
        if (L->b || (flags & GEMV_RELU)) sym_launch(k_epi_inplace, dim3(eg), dim3(256), s, y, ldy, out, L->b, flags & GEMV_RELU);
        return 0;
    }
    if (!(flags & (GEMV_X_SPLIT | GEMV_X_CHAIN))) sym_gemv_split(s, ws, x, ldx, w, B);
    const __nv_bfloat16 *W = (const __nv_bfloat16 *)L->w, *xs = (flags & GEMV_X_CHAIN) ? ws->xs2 : ws->xs;
    if (!blk) {
        st = cublasGemmEx(ws->h, CUBLAS_OP_T, CUBLAS_OP_N, out, 3 * B, in, &one, W, CUDA_R_16BF, in, xs,
                          CUDA_R_16BF, in, &zero, ws->y2, CUDA_R_32F, out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (st) return (int)st;
    } else {
        for (int p = 0; p < parts; p++) {
            st = cublasGemmStridedBatchedEx(ws->h, CUBLAS_OP_T, CUBLAS_OP_N, bs, 3 * B, in, &one,
                                            W + (size_t)p * nb * bs * in, CUDA_R_16BF, in, (long long)bs * in, xs,
                                            CUDA_R_16BF, w, in, &zero, ws->y2 + (size_t)p * nb * bs, CUDA_R_32F, out,
                                            bs, nb, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            if (st) return (int)st;
        }
    }
    sym_launch(k_epi_split, dim3(eg), dim3(256), s, ws->y2, out, B, y, ldy, L->b, flags, ws->xs2);
    return 0;
}
