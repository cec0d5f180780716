/* Mamba2 selective-state update and readout: one block per (head, row), each
 * h element read and written exactly once; warp w handles rows i of the
 * head, lanes 4 consecutive j each (B/C width 128 = 32 lanes x 4). A run's
 * first row takes the run's rows in order, h in registers (sym_runs). */
#include "gv_common.cuh"

template <int RUN>
__global__ void __launch_bounds__(256) k_mamba_ssm(const float *XS, int ldx, const float *BC, int ldbc,
                                                   const float *PR, int ldp, int z_off, int dt_off, const float *a,
                                                   const float *d, float *pool, size_t numel, const int *slots,
                                                   const int *rlen, int pad_slot, size_t off_h, float *Y, int ldy) {
    SYM_PDL_WAIT();
    int n = blockIdx.x, b = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int nr = RUN == 1 ? 1 : rlen[b]; /* a run's rows, from its first (sym_runs) */
    if (!nr || slots[b] == pad_slot) return; /* a padding row: its output is never used */
    float dt[RUN], dA[RUN];
    float4 bj[RUN], cj[RUN];
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        const float *pr = PR + (size_t)(b + r) * ldp;
        dt[r] = sym_softplusf(pr[dt_off + n]);
        dA[r] = expf(a[n] * dt[r]);
        bj[r] = *(const float4 *)(BC + (size_t)(b + r) * ldbc + lane * 4);
        cj[r] = *(const float4 *)(BC + (size_t)(b + r) * ldbc + 128 + lane * 4);
    }
    float4 *h = (float4 *)(sym_slot(pool, numel, slots, b) + off_h + (size_t)n * 64 * 128);
    for (int i = warp; i < 64; i += 8) {
        float4 hv = h[i * 32 + lane];
#pragma unroll
        for (int r = 0; r < RUN; r++) {
            if (r >= nr) break;
            float xi = XS[(size_t)(b + r) * ldx + n * 64 + i];
            hv.x = dA[r] * hv.x + dt[r] * bj[r].x * xi;
            hv.y = dA[r] * hv.y + dt[r] * bj[r].y * xi;
            hv.z = dA[r] * hv.z + dt[r] * bj[r].z * xi;
            hv.w = dA[r] * hv.w + dt[r] * bj[r].w * xi;
            float acc = sym_warp_sum((cj[r].x * hv.x + cj[r].y * hv.y) + (cj[r].z * hv.z + cj[r].w * hv.w));
            if (lane == 0) {
                float y = acc + d[n] * xi;
                Y[(size_t)(b + r) * ldy + n * 64 + i] = y * sym_siluf(PR[(size_t)(b + r) * ldp + z_off + n * 64 + i]);
            }
        }
        h[i * 32 + lane] = hv;
    }
}

void sym_mamba_ssm(cudaStream_t s, const float *XS, int ldx, const float *BC, int ldbc, const float *PR, int ldp,
                   int z_off, int dt_off, const float *a, const float *d, float *pool, size_t numel, const int *slots,
                   sym_runs rn, int pad_slot, size_t off_h, float *Y, int ldy, int B, int NM) {
    dim3 grid(NM, B);
    if (rn.max > 1)
        sym_launch_state(k_mamba_ssm<SYM_RUN_MAX>, dim3(grid), dim3(256), s, XS, ldx, BC, ldbc, PR, ldp, z_off, dt_off,
                         a, d, pool, numel, slots, rn.len, pad_slot, off_h, Y, ldy);
    else
        sym_launch_state(k_mamba_ssm<1>, dim3(grid), dim3(256), s, XS, ldx, BC, ldbc, PR, ldp, z_off, dt_off, a, d,
                         pool, numel, slots, rn.len, pad_slot, off_h, Y, ldy);
}
