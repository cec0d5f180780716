/* Hawk RG-LRU: gates, recurrence and gelu gating fused, one thread per
 * channel; h read and written once (a run's rows in order, sym_runs). */
#include "gv_common.cuh"

template <int RUN>
__global__ void k_hawk_cell(const float *PR, int ldp, const float *R, int ldr, const float *G, int ldg, const float *a,
                            float *pool, size_t numel, const int *slots, const int *rlen, size_t off_h, float *T,
                            int ldt, int H) {
    SYM_PDL_WAIT();
    int i = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    const int nr = RUN == 1 ? 1 : rlen[b]; /* a run's rows, from its first (sym_runs) */
    if (i >= H || !nr) return;
    float *h = sym_slot(pool, numel, slots, b) + off_h;
    float hv = h[i];
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        const size_t row = (size_t)(b + r);
        float gate = PR[row * ldp + i], rv = R[row * ldr + i];
        float ig = G[row * ldg + i], rg = G[row * ldg + H + i];
        float at = powf(a[i], 8.0f * sym_sigmoidf(rg));
        hv = at * hv + sqrtf(1.0f - at * at) * (sym_sigmoidf(ig) * rv);
        float ge = 0.5f * gate * (1.0f + erff(gate * 0.70710678118654752f));
        T[row * ldt + i] = ge * hv;
    }
    h[i] = hv;
}

void sym_hawk_cell(cudaStream_t s, const float *PR, int ldp, const float *R, int ldr, const float *G, int ldg,
                   const float *a, float *pool, size_t numel, const int *slots, sym_runs rn, size_t off_h, float *T,
                   int ldt, int H, int B) {
    dim3 grid((H + 255) / 256, B);
    if (rn.max > 1)
        sym_launch(k_hawk_cell<SYM_RUN_MAX>, dim3(grid), dim3(256), s, PR, ldp, R, ldr, G, ldg, a, pool, numel, slots,
                   rn.len, off_h, T, ldt, H);
    else
        sym_launch(k_hawk_cell<1>, dim3(grid), dim3(256), s, PR, ldp, R, ldr, G, ldg, a, pool, numel, slots, rn.len,
                   off_h, T, ldt, H);
}
