/* Row-wise normalisations (norms.cuh): alone, and the xLSTM block's exit
 * fused with the next norm. One block per row (or row x group): fixed-order
 * reductions, so a row's result does not depend on the batch it is in. */
#include "kernels/cuda/ops/norms.cuh"

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/rows.cuh"

template <int EPT>
__global__ void __launch_bounds__(NT) k_rmsnorm(const float *x, int ldx, float *y, int ldy, int n, float eps, const float *w,
                                                sym_xsplit xs, int B) {
    SYM_PDL_ENTER();
    __shared__ float sh[32];
    float v[EPT], wv[EPT];
    row_load<EPT>(x + (size_t)blockIdx.x * ldx, n, v);
    row_load_or<EPT>(w, n, wv, 1.0f);
    float r = row_rms_scale<EPT>(v, n, eps, sh);
    float *yr = y + (size_t)blockIdx.x * ldy;
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        int i = threadIdx.x + j * NT;
        if (i >= n) continue;
        yr[i] = v[j] * r * wv[j];
        sym_put_x(xs, B, n, blockIdx.x, i, yr[i]);
    }
}

/* u += layernorm(x) * w1 (no bias), then a = rmsnorm(u) * w2: the xLSTM
 * block's exit and the next norm in one pass. */
template <int EPT, int T>
__global__ void __launch_bounds__(T) k_ln_add_rms(const float *x, int ldx, float *u, int ldu, const float *w1,
                                                   float *a, int lda, const float *w2, float eps, int n,
                                                   sym_xsplit xs, int B) {
    SYM_PDL_ENTER();
    __shared__ float sh[32];
    int row = blockIdx.x;
    float v[EPT], uv[EPT], w1v[EPT], w2v[EPT], mean, r;
    float *ur = u + (size_t)row * ldu;
    row_load<EPT, T>(x + (size_t)row * ldx, n, v);
    row_load<EPT, T>(ur, n, uv);
    row_load_or<EPT, T>(w1, n, w1v, 1.0f);
    row_load_or<EPT, T>(w2, n, w2v, 1.0f);
    row_ln_stats<EPT, T>(v, n, &mean, &r, sh);
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        int i = threadIdx.x + j * T;
        v[j] = i < n ? uv[j] + (v[j] - mean) * r * w1v[j] : 0.0f;
        if (i < n) ur[i] = v[j];
    }
    float rs = row_rms_scale<EPT>(v, n, eps, sh);
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        int i = threadIdx.x + j * T;
        if (i >= n) continue;
        float o = v[j] * rs * w2v[j];
        a[(size_t)row * lda + i] = o;
        sym_put_x(xs, B, n, row, i, o);
    }
}

int sym_rmsnorm(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int n, float eps, const float *w,
                sym_xsplit xs) {
#define L_(E) sym_launch(k_rmsnorm<E>, dim3(B), dim3(NT), s, x, ldx, y, ldy, n, eps, w, xs, B)
    SYM_EPT_SWITCH(n, L_)
#undef L_
    return 0;
}

int sym_ln_add_rms(cudaStream_t s, const float *x, int ldx, float *u, int ldu, const float *w1, float *a, int lda,
                   const float *w2, float eps, int B, int n, sym_xsplit xs) {
#define L_(E) sym_launch(k_ln_add_rms<E, NT_WIDE>, dim3(B), dim3(NT_WIDE), s, x, ldx, u, ldu, w1, a, lda, w2, eps, n, xs, B)
    SYM_EPT_SWITCH_WIDE(n, L_)
#undef L_
    return 0;
}
