/* Row-wise normalisations, the causal depthwise conv, and small helpers
 * (state gather, step counter, bf16 rounding, synthetic init). One block per
 * row (or row x group): fixed-order reductions, so a row's result does not
 * depend on the batch it is in. */
#include "gv_common.cuh"

extern "C" {
#include "kernels/synthetic_init.h"
}

__global__ void k_rmsnorm(const float *x, int ldx, float *y, int ldy, int n, float eps, const float *w) {
    __shared__ float sh[32];
    const float *xr = x + (size_t)blockIdx.x * ldx;
    float *yr = y + (size_t)blockIdx.x * ldy;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    ss = sym_block_sum(ss, sh);
    float r = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = w ? xr[i] * r * w[i] : xr[i] * r;
}

void sym_rmsnorm(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int n, float eps, const float *w) {
    k_rmsnorm<<<B, 256, 0, s>>>(x, ldx, y, ldy, n, eps, w);
}

__global__ void k_groupnorm(const float *x, int ldx, float *y, int ldy, int g, const float *w, const float *b,
                            const float *res, int ldr, int add) {
    __shared__ float sh[32];
    int k = blockIdx.x, row = blockIdx.y;
    const float *xr = x + (size_t)row * ldx + (size_t)k * g;
    float *yr = y + (size_t)row * ldy + (size_t)k * g;
    float s = 0.0f;
    for (int i = threadIdx.x; i < g; i += blockDim.x) s += xr[i];
    float mean = sym_block_sum(s, sh) / (float)g;
    float v = 0.0f;
    for (int i = threadIdx.x; i < g; i += blockDim.x) v += (xr[i] - mean) * (xr[i] - mean);
    float var = sym_block_sum(v, sh) / (float)g;
    float r = 1.0f / sqrtf(var + 1e-5f);
    for (int i = threadIdx.x; i < g; i += blockDim.x) {
        int c = k * g + i;
        float o = (xr[i] - mean) * r * w[c];
        if (b) o += b[c];
        if (res) o += res[(size_t)row * ldr + c];
        if (add) yr[i] += o;
        else yr[i] = o;
    }
}

void sym_groupnorm(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int n, int groups,
                   const float *w, const float *b, const float *res, int ldr, int add) {
    dim3 grid(groups, B);
    k_groupnorm<<<grid, 256, 0, s>>>(x, ldx, y, ldy, n / groups, w, b, res, ldr, add);
}

__global__ void k_conv(const float *x, int ldx, float *y, int ldy, int C, float *pool, size_t numel, const int *slots,
                       size_t off, const float *cw, const float *cb, int silu) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (c >= C) return;
    float *st = sym_slot(pool, numel, slots, b) + off + 3 * (size_t)c;
    const float *w = cw + 4 * (size_t)c;
    float xv = x[(size_t)b * ldx + c];
    float s0 = st[0], s1 = st[1], s2 = st[2];
    float o = cb[c] + w[0] * s0 + w[1] * s1 + w[2] * s2 + w[3] * xv;
    st[0] = s1, st[1] = s2, st[2] = xv;
    y[(size_t)b * ldy + c] = silu ? sym_siluf(o) : o;
}

void sym_dconv(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int C, float *pool, size_t numel,
              const int *slots, size_t off, const float *cw, const float *cb, int silu) {
    dim3 grid((C + 255) / 256, B);
    k_conv<<<grid, 256, 0, s>>>(x, ldx, y, ldy, C, pool, numel, slots, off, cw, cb, silu);
}

__global__ void k_gather(const float *pool, size_t numel, const int *slots, size_t off, int n, float *y, int ldy) {
    int i = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (i < n) y[(size_t)b * ldy + i] = pool[(size_t)slots[b] * numel + off + i];
}

void sym_gather_state(cudaStream_t s, const float *pool, size_t numel, const int *slots, size_t off, int n, float *y,
                      int ldy, int B) {
    dim3 grid((n + 255) / 256, B);
    k_gather<<<grid, 256, 0, s>>>(pool, numel, slots, off, n, y, ldy);
}

__global__ void k_step_count(float *pool, size_t numel, const int *slots, int B) {
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b < B) {
        long long *p = (long long *)(pool + (size_t)slots[b] * numel);
        *p += 1;
    }
}

void sym_step_count(cudaStream_t s, float *pool, size_t numel, const int *slots, int B) {
    k_step_count<<<(B + 127) / 128, 128, 0, s>>>(pool, numel, slots, B);
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
