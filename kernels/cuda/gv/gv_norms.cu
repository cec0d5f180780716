/* Row-wise normalisations (alone, and the xLSTM block's exit fused with the next norm), the
 * causal depthwise conv, and small helpers (step counter,
 * bf16 rounding, synthetic init). One block per row (or row x group):
 * fixed-order reductions, so a row's result does not depend on the batch
 * it is in. */
#include "gv_common.cuh"
#include "gv_rows.cuh"

extern "C" {
#include "kernels/synthetic_init.h"
}

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

template <int EPT>
__global__ void __launch_bounds__(NT) k_groupnorm(const float *x, int ldx, float *y, int ldy, int g, const float *w,
                                                  const float *b, const float *res, int ldr, int add) {
    SYM_PDL_ENTER();
    __shared__ float sh[32];
    int k = blockIdx.x, row = blockIdx.y;
    float v[EPT], wv[EPT], bv[EPT], rv[EPT], yv[EPT], mean, r;
    float *yr = y + (size_t)row * ldy + (size_t)k * g;
    row_load<EPT>(x + (size_t)row * ldx + (size_t)k * g, g, v);
    row_load_or<EPT>(w + (size_t)k * g, g, wv, 1.0f);
    row_load_or<EPT>(b ? b + (size_t)k * g : NULL, g, bv, 0.0f);
    row_load_or<EPT>(res ? res + (size_t)row * ldr + (size_t)k * g : NULL, g, rv, 0.0f);
    row_load_or<EPT>(add ? yr : NULL, g, yv, 0.0f);
    row_ln_stats<EPT>(v, g, &mean, &r, sh);
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        int i = threadIdx.x + j * NT;
        if (i < g) yr[i] = yv[j] + ((v[j] - mean) * r * wv[j] + bv[j] + rv[j]);
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

int sym_groupnorm(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int n, int groups, const float *w,
                  const float *b, const float *res, int ldr, int add) {
    dim3 grid(groups, B);
    int g = n / groups;
#define L_(E) sym_launch(k_groupnorm<E>, dim3(grid), dim3(NT), s, x, ldx, y, ldy, g, w, b, res, ldr, add)
    SYM_EPT_SWITCH(g, L_)
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

/* one thread per channel of a run's first row: the run's rows in order,
 * the state's window in registers (RUN: 1 or SYM_RUN_MAX, sym_runs) */
template <int RUN>
__global__ void k_conv(const float *x, int ldx, float *y, int ldy, int C, float *pool, size_t numel, const int *slots,
                       const int *rlen, size_t off, const float *cw, const float *cb, int silu) {
    SYM_PDL_WAIT();
    int c = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    const int nr = RUN == 1 ? 1 : rlen[b];
    if (c >= C || !nr) return;
    float *st = sym_slot(pool, numel, slots, b) + off + 3 * (size_t)c;
    const float *w = cw + 4 * (size_t)c;
    float s0 = st[0], s1 = st[1], s2 = st[2];
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        float xv = x[(size_t)(b + r) * ldx + c];
        float o = cb[c] + w[0] * s0 + w[1] * s1 + w[2] * s2 + w[3] * xv;
        s0 = s1, s1 = s2, s2 = xv;
        y[(size_t)(b + r) * ldy + c] = silu ? sym_siluf(o) : o;
    }
    st[0] = s0, st[1] = s1, st[2] = s2;
}

void sym_dconv(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int C, float *pool, size_t numel,
              const int *slots, sym_runs rn, size_t off, const float *cw, const float *cb, int silu) {
    dim3 grid((C + 255) / 256, B);
    if (rn.max > 1)
        sym_launch(k_conv<SYM_RUN_MAX>, dim3(grid), dim3(256), s, x, ldx, y, ldy, C, pool, numel, slots, rn.len, off, cw,
                   cb, silu);
    else
        sym_launch(k_conv<1>, dim3(grid), dim3(256), s, x, ldx, y, ldy, C, pool, numel, slots, rn.len, off, cw, cb,
                   silu);
}

__global__ void k_step_count(float *pool, size_t numel, const int *slots, const int *rlen, int B) {
    SYM_PDL_ENTER();
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b < B && rlen[b]) { /* a run's other rows must not write it too */
        long long *p = (long long *)(pool + (size_t)slots[b] * numel);
        *p += rlen[b];
    }
}

void sym_step_count(cudaStream_t s, float *pool, size_t numel, const int *slots, sym_runs rn, int B) {
    sym_launch(k_step_count, dim3((B + 127) / 128), dim3(128), s, pool, numel, slots, rn.len, B);
}

__global__ void k_to_bf16(const float *x, __nv_bfloat16 *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16_rn(x[i]);
}
void sym_f32_to_bf16_dev(cudaStream_t s, const float *x, __nv_bfloat16 *y, size_t n) {
    k_to_bf16<<<4096, 256, 0, s>>>(x, y, n);
}
__global__ void k_round_bf16(float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = __bfloat162float(__float2bfloat16_rn(x[i]));
}
void sym_round_bf16_dev(cudaStream_t s, float *x, size_t n) { k_round_bf16<<<4096, 256, 0, s>>>(x, n); }

/* The same counter-based stream as the CPU generator: bit-identical weights. */
__global__ void k_init(float *p, int64_t n, int init, uint64_t key, int fan_in, int hd) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        p[i] = sym_init_value(init, key, i, n, fan_in, hd);
}
void sym_init_dev(cudaStream_t s, float *p, int64_t n, int init, uint64_t key, int fan_in, int hd) {
    int64_t blocks = (n + 255) / 256;
    if (blocks > 8192) blocks = 8192;
    k_init<<<(int)blocks, 256, 0, s>>>(p, n, init, key, fan_in, hd);
}
