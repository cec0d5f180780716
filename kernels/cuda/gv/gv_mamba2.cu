/* Mamba2 selective-state update and readout: one block per (head, row), each
 * h element read and written exactly once; warp w handles rows i of the
 * head, lanes 4 consecutive j each (B/C width 128 = 32 lanes x 4). */
#include "gv_common.cuh"

__global__ void __launch_bounds__(256) k_mamba_ssm(const float *XS, int ldx, const float *BC, int ldbc,
                                                   const float *PR, int ldp, int z_off, int dt_off, const float *a,
                                                   const float *d, float *pool, size_t numel, const int *slots,
                                                   int pad_slot, size_t off_h, float *Y, int ldy) {
    SYM_PDL_WAIT();
    int n = blockIdx.x, b = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (slots[b] == pad_slot) return; /* a padding row: its output is never used */
    const float *pr = PR + (size_t)b * ldp;
    float dt = sym_softplusf(pr[dt_off + n]);
    float dA = expf(a[n] * dt);
    float4 bj = *(const float4 *)(BC + (size_t)b * ldbc + lane * 4);
    float4 cj = *(const float4 *)(BC + (size_t)b * ldbc + 128 + lane * 4);
    float4 *h = (float4 *)(sym_slot(pool, numel, slots, b) + off_h + (size_t)n * 64 * 128);
    for (int i = warp; i < 64; i += 8) {
        float xi = XS[(size_t)b * ldx + n * 64 + i];
        float4 hv = h[i * 32 + lane];
        hv.x = dA * hv.x + dt * bj.x * xi;
        hv.y = dA * hv.y + dt * bj.y * xi;
        hv.z = dA * hv.z + dt * bj.z * xi;
        hv.w = dA * hv.w + dt * bj.w * xi;
        h[i * 32 + lane] = hv;
        float acc = sym_warp_sum((cj.x * hv.x + cj.y * hv.y) + (cj.z * hv.z + cj.w * hv.w));
        if (lane == 0) {
            float y = acc + d[n] * xi;
            Y[(size_t)b * ldy + n * 64 + i] = y * sym_siluf(pr[z_off + n * 64 + i]);
        }
    }
}

void sym_mamba_ssm(cudaStream_t s, const float *XS, int ldx, const float *BC, int ldbc, const float *PR, int ldp,
                   int z_off, int dt_off, const float *a, const float *d, float *pool, size_t numel, const int *slots,
                   int pad_slot, size_t off_h, float *Y, int ldy, int B, int NM) {
    dim3 grid(NM, B);
    sym_launch_state(k_mamba_ssm, dim3(grid), dim3(256), s, XS, ldx, BC, ldbc, PR, ldp, z_off, dt_off, a, d, pool,
                     numel, slots, pad_slot, off_h, Y, ldy);
}
