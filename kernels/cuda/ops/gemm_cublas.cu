/* Linear layers through cuBLAS (gemm_cublas.cuh): the split of x into its
 * bf16 terms, the epilogues, and the GEMM calls. */
#include "kernels/cuda/ops/gemm_cublas.cuh"

#include "kernels/cuda/launch.cuh"

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

void sym_gemv_split(cudaStream_t s, const sym_gemm_ws *ws, const float *x, int ldx, int w, int B) {
    sym_launch(k_split3, dim3((w + 255) / 256, B), dim3(256), s, x, ldx, w, B, ws->xs);
}

int sym_gemm_cublas(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y,
                    int ldy, int B, int flags) {
    const int blk = L->blk_rows < L->out, w = blk ? L->xwrap * L->in : L->in;
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
