/* Shared by the CUDA engine's .cu files: error checks that return sym_err
 * errors (never exit), the device linear-layer descriptor and the launchers
 * of each operation file. All launchers enqueue on the given stream and
 * never synchronise; the caller checks cudaGetLastError (launch errors also
 * surface when a captured graph is instantiated). */
#ifndef SYM_CUDA_COMMON_CUH
#define SYM_CUDA_COMMON_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cublas_v2.h>

extern "C" {
#include "common/err.h"
}

#define CUDA_CHECK(call)                                                                                       \
    do {                                                                                                       \
        cudaError_t err_ = (call);                                                                             \
        if (err_ != cudaSuccess)                                                                               \
            return sym_fail(e, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(err_));          \
    } while (0)

/* A (possibly concatenated) linear layer on the device: rows [out, in] in
 * fp32 or bf16, optional fp32 bias [out]. Row o reads the input slice
 * x + ((o / blk_rows) % xwrap) * in: blk_rows = out, xwrap = 1 for a dense
 * layer; blk_rows = bs, xwrap = nb for block-diagonal layers (several
 * block-diagonal layers reading the same input can be stacked). */
typedef struct {
    const void *w;
    const float *b;
    int out, in, blk_rows, xwrap, bf16;
} sym_dlin;

enum { GEMV_RELU = 1, GEMV_ACC = 2 };

/* Per-stream resources of the tensor-core / cuBLAS path (B >= gemm_min):
 * handle bound to the stream, bf16 split buffer xs [3*Bmax*max_in] and raw
 * output y2 [3*Bmax*max_out]. */
typedef struct {
    cublasHandle_t h;
    __nv_bfloat16 *xs;
    float *y2;
    int gemm_min; /* B at or above which cuBLAS is used */
} sym_gemm_ws;

/* y[b*ldy + o] (=|+=) act(W x_b + bias) for b < B.
 * B < ws->gemm_min: own batched GEMV kernel; per-row arithmetic does not
 * depend on B or on the other rows (fixed summation order).
 * B >= gemm_min: fp32 weights -> cuBLAS SGEMM (no TF32); bf16 weights -> x
 * split into three bf16 terms (hi, mid, lo: residual ~2^-24 |x|) and one
 * bf16 tensor-core GEMM with fp32 accumulation over 3B columns, summed in
 * the epilogue: the product with the bf16 weights to ~fp32 accuracy.
 * Returns a cuBLAS status (0 = success). */
int sym_gemv(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y, int ldy,
             int B, int flags);

/* norms.cu */
void sym_rmsnorm(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int n, float eps, const float *w);
/* GroupNorm over `groups` runs (LayerNorm: groups 1, b NULL); res (nullable)
 * added after; add: y += result instead of y = result. In place is allowed. */
void sym_groupnorm(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int n, int groups,
                   const float *w, const float *b, const float *res, int ldr, int add);
/* Causal depthwise conv (K=4) of C channels; state [C,3] at slot offset off. */
void sym_dconv(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int C, float *pool, size_t numel,
              const int *slots, size_t off, const float *cw, const float *cb, int silu);
void sym_gather_state(cudaStream_t s, const float *pool, size_t numel, const int *slots, size_t off, int n, float *y,
                      int ldy, int B);
void sym_step_count(cudaStream_t s, float *pool, size_t numel, const int *slots, int B);
void sym_f32_to_bf16_dev(cudaStream_t s, const float *x, __nv_bfloat16 *y, size_t n);
void sym_round_bf16_dev(cudaStream_t s, float *x, size_t n);
void sym_init_dev(cudaStream_t s, float *p, int64_t n, int init, uint64_t key, int fan_in, int hd);

/* mamba2.cu: SSM update + readout, y*silu(z) into Y [B, I]. */
void sym_mamba_ssm(cudaStream_t s, const float *XS, int ldx, const float *BC, int ldbc, const float *PR, int ldp,
                   int z_off, int dt_off, const float *a, const float *d, float *pool, size_t numel, const int *slots,
                   size_t off_h, float *Y, int ldy, int B, int NM);
/* retnet.cu */
void sym_retnet_rotary(cudaStream_t s, float *PR, int ldp, int H, int hd, const float *angle, const float *pool,
                       size_t numel, const int *slots, float scaling, int B);
void sym_retnet_cell(cudaStream_t s, const float *PR, int ldp, int H, int NH, const float *decay, float *pool,
                     size_t numel, const int *slots, size_t off_S, float *O, int ldo, int B);
void sym_retnet_norm(cudaStream_t s, const float *O, int ldo, const float *PR, int ldp, int H, int NH,
                     const float *decay, float *pool, size_t numel, const int *slots, size_t off_scale, float *ON,
                     int ldn, int B);
/* hawk.cu */
void sym_hawk_cell(cudaStream_t s, const float *PR, int ldp, const float *R, int ldr, const float *G, int ldg,
                   const float *a, float *pool, size_t numel, const int *slots, size_t off_h, float *T, int ldt, int H,
                   int B);
/* xlstm.cu */
void sym_slstm_cell(cudaStream_t s, const float *G, int ldg, float *pool, size_t numel, const int *slots, size_t off_c,
                    size_t off_n, size_t off_m, size_t off_y, float *Y, int ldy, int H, int B);
void sym_mlstm_qkv(cudaStream_t s, const float *XA, int ldxa, const float *XM, int ldxm, const float *wq,
                   const float *wk, const float *wv, float *QKV, int ldq, int I, int B);
void sym_mlstm_gate(cudaStream_t s, const float *GT, int ldg, const float *QKV, int ldq, float *pool, size_t numel,
                    const int *slots, size_t off_n, size_t off_m, float *SC, int ldsc, int I, int NH, int B);
void sym_mlstm_cell(cudaStream_t s, const float *QKV, int ldq, const float *SC, int ldsc, float *pool, size_t numel,
                    const int *slots, size_t off_C, float *HC, int ldh, int I, int NH, int B);
void sym_mlstm_skip(cudaStream_t s, float *HN, int ldh, const float *XA, int ldxa, const float *XG, int ldxg,
                    const float *skip, int I, int B);

/* Device math kept IEEE (no fast-math): the sLSTM stabiliser starts at -inf. */
__device__ __forceinline__ float sym_sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }
__device__ __forceinline__ float sym_siluf(float v) { return v / (1.0f + expf(-v)); }
__device__ __forceinline__ float sym_softplusf(float v) { return v > 20.0f ? v : log1pf(expf(v)); }
__device__ __forceinline__ float sym_logsigmoidf(float v) { return v < 0.0f ? v - log1pf(expf(v)) : -log1pf(expf(-v)); }
__device__ __forceinline__ float sym_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
/* Deterministic block sum (fixed tree); every thread gets the result.
 * sh must hold 32 floats; blockDim.x a multiple of 32. */
__device__ __forceinline__ float sym_block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = sym_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float t = lane < nw ? sh[lane] : 0.0f;
    t = sym_warp_sum(t);
    return t;
}
__device__ __forceinline__ float *sym_slot(float *pool, size_t numel, const int *slots, int b) {
    return pool + (size_t)slots[b] * numel;
}

#endif
