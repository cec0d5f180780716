/* The causal depthwise conv (conv.cuh): one thread per channel of a run's
 * first row. */
#include "kernels/cuda/ops/conv.cuh"

#include "kernels/cuda/device.cuh"
#include "kernels/cuda/launch.cuh"

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
