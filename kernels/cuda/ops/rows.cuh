/* Row helpers of the CUDA engine's row kernels (ops/norms.cu,
 * towers/xlstm.cu): a block of NT threads holds one row (or group) of
 * n <= SYM_ROW_MAX floats (ops/norms.cuh) in registers, EPT per thread, element i = thread + j * NT. The row is read
 * from memory once and every reduction after that runs on registers: one
 * block striding a 2048-wide row in global memory three times was
 * latency-bound at 9-10 us. Reductions are fixed-order (sym_block_sum), so a
 * row's result does not depend on its batch. */
#ifndef SYM_CUDA_ROWS_CUH
#define SYM_CUDA_ROWS_CUH

#include "kernels/cuda/device.cuh"
#include "kernels/cuda/ops/norms.cuh"

#define NT 256

/* v[j] = x[(thread + j * NT) * stride] (or dflt past n or when x is NULL).
 * Kernels issue every load of a row this way before any store: a store
 * may alias a later load, so loads left after stores are serialised, and
 * a fused kernel that interleaved them ran 2x slower than the kernels it
 * replaced. */
template <int EPT, int T = NT>
__device__ __forceinline__ void row_load_or(const float *x, int n, float *v, float dflt, int stride = 1) {
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        int i = threadIdx.x + j * T;
        v[j] = x && i < n ? x[(size_t)i * stride] : dflt;
    }
}

/* v[j] = x[thread + j * NT], 0 past n */
template <int EPT, int T = NT> __device__ __forceinline__ void row_load(const float *x, int n, float *v) {
    row_load_or<EPT, T>(x, n, v, 0.0f);
}

template <int EPT> __device__ __forceinline__ float row_sum(const float *v, float *sh) {
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < EPT; j++) s += v[j];
    return sym_block_sum(s, sh);
}

/* 1 / sqrt(mean(v^2) + eps); v is zero past n */
template <int EPT> __device__ __forceinline__ float row_rms_scale(const float *v, int n, float eps, float *sh) {
    float q = 0.0f;
#pragma unroll
    for (int j = 0; j < EPT; j++) q += v[j] * v[j];
    return 1.0f / sqrtf(sym_block_sum(q, sh) / (float)n + eps);
}

/* mean and 1 / sqrt(var + 1e-5), the variance about the mean (two passes,
 * on registers); v is zero past n */
template <int EPT, int T = NT>
__device__ __forceinline__ void row_ln_stats(const float *v, int n, float *mean, float *r, float *sh) {
    float m = row_sum<EPT>(v, sh) / (float)n, q = 0.0f;
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        float d = threadIdx.x + j * T < n ? v[j] - m : 0.0f;
        q += d * d;
    }
    *mean = m;
    *r = 1.0f / sqrtf(sym_block_sum(q, sh) / (float)n + 1e-5f);
}

/* Elements per thread for a row of n over blocks of t threads (0: wider
 * than SYM_ROW_MAX). */
static inline int sym_ept_for(int n, int t = NT) {
    for (int e = 1; e <= SYM_ROW_MAX / t; e *= 2)
        if (n <= e * t) return e;
    return 0;
}

/* Runs LAUNCH(EPT) with the EPT for n; returns -1 from the caller when n is too wide. */
#define SYM_EPT_SWITCH(n, LAUNCH)                                                                              \
    switch (sym_ept_for(n)) {                                                                                  \
    case 1: LAUNCH(1); break;                                                                                  \
    case 2: LAUNCH(2); break;                                                                                  \
    case 4: LAUNCH(4); break;                                                                                  \
    case 8: LAUNCH(8); break;                                                                                  \
    case 16: LAUNCH(16); break;                                                                                \
    case 32: LAUNCH(32); break;                                                                                \
    default: return -1;                                                                                        \
    }

/* The same for blocks of NT_WIDE threads (row kernels whose per-element
 * arithmetic is long: one 256-thread block per row left them
 * latency-bound on their own instruction chains). */
#define NT_WIDE 1024
#define SYM_EPT_SWITCH_WIDE(n, LAUNCH)                                                                         \
    switch (sym_ept_for(n, NT_WIDE)) {                                                                         \
    case 1: LAUNCH(1); break;                                                                                  \
    case 2: LAUNCH(2); break;                                                                                  \
    case 4: LAUNCH(4); break;                                                                                  \
    case 8: LAUNCH(8); break;                                                                                  \
    default: return -1;                                                                                        \
    }

#endif
