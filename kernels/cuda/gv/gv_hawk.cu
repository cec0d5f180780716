/* Hawk RG-LRU: gates, recurrence and gelu gating fused, one thread per
 * channel; h read and written once. */
#include "gv_common.cuh"

__global__ void k_hawk_cell(const float *PR, int ldp, const float *R, int ldr, const float *G, int ldg, const float *a,
                            float *pool, size_t numel, const int *slots, size_t off_h, float *T, int ldt, int H) {
    SYM_PDL_WAIT();
    int i = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (i >= H) return;
    float *h = sym_slot(pool, numel, slots, b) + off_h;
    float gate = PR[(size_t)b * ldp + i], r = R[(size_t)b * ldr + i];
    float ig = G[(size_t)b * ldg + i], rg = G[(size_t)b * ldg + H + i];
    float at = powf(a[i], 8.0f * sym_sigmoidf(rg));
    float hn = at * h[i] + sqrtf(1.0f - at * at) * (sym_sigmoidf(ig) * r);
    h[i] = hn;
    float ge = 0.5f * gate * (1.0f + erff(gate * 0.70710678118654752f));
    T[(size_t)b * ldt + i] = ge * hn;
}

void sym_hawk_cell(cudaStream_t s, const float *PR, int ldp, const float *R, int ldr, const float *G, int ldg,
                   const float *a, float *pool, size_t numel, const int *slots, size_t off_h, float *T, int ldt, int H,
                   int B) {
    dim3 grid((H + 255) / 256, B);
    sym_launch(k_hawk_cell, dim3(grid), dim3(256), s, PR, ldp, R, ldr, G, ldg, a, pool, numel, slots, off_h, T, ldt, H);
}
