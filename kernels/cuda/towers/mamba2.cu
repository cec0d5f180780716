/* The Mamba2 tower: the selective-state update and readout, one block
 * per (head, row), each h element read and written exactly once; warp w
 * handles rows i of the head, lanes 4 consecutive j each (B/C width 128 =
 * 32 lanes x 4). A run's first row takes the run's rows in order, h in
 * registers (sym_runs). Then the layer that enqueues it. */
#include "kernels/cuda/towers/mamba2.cuh"

#include <float.h>

#include "kernels/cuda/device.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/conv.cuh"
#include "kernels/cuda/ops/norms.cuh"
#include "kernels/cuda/towers/layer.cuh"
#include "kernels/cuda/towers/matrix_state.cuh"

/* the update and readout of head n (h, stored as F: matrix_store.cuh; a
 * row of 128 is one warp's segment) of row b's run of nr (<= R) rows */
template <int F, int R>
__device__ __forceinline__ void mamba_ssm_run(const float *XS, int ldx, const float *BC, int ldbc, const float *PR,
                                              int ldp, int z_off, int dt_off, const float *a, const float *d,
                                              const sym_mat &h, int n, int b, int nr, float *Y, int ldy) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float dt[R], dA[R];
    float4 bj[R], cj[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        if (r >= nr) break;
        const float *pr = PR + (size_t)(b + r) * ldp;
        dt[r] = sym_softplusf(pr[dt_off + n]);
        dA[r] = expf(a[n] * dt[r]);
        bj[r] = *(const float4 *)(BC + (size_t)(b + r) * ldbc + lane * 4);
        cj[r] = *(const float4 *)(BC + (size_t)(b + r) * ldbc + 128 + lane * 4);
    }
    constexpr int U = sym_matrix_rows_in_flight(F, R); /* rows in flight (matrix_state.cuh) */
#pragma unroll 1
    for (int i0 = warp; i0 < SYM_MAMBA_HEAD; i0 += 8 * U) {
        sym_mat_raw<F> raw[U];
#pragma unroll
        for (int u = 0; u < U; u++) raw[u] = sym_mat_load<F>(h, i0 + 8 * u, lane * 4, true); /* 64 rows: 8 warps x 8 */
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int i = i0 + 8 * u;
            float4 hv = sym_mat_value<F>(raw[u]);
#pragma unroll
            for (int r = 0; r < R; r++) {
                if (r >= nr) break;
                float xi = XS[(size_t)(b + r) * ldx + n * 64 + i];
                hv.x = dA[r] * hv.x + dt[r] * bj[r].x * xi;
                hv.y = dA[r] * hv.y + dt[r] * bj[r].y * xi;
                hv.z = dA[r] * hv.z + dt[r] * bj[r].z * xi;
                hv.w = dA[r] * hv.w + dt[r] * bj[r].w * xi;
                float acc =
                    sym_warp_sum((cj[r].x * hv.x + cj[r].y * hv.y) + (cj[r].z * hv.z + cj[r].w * hv.w));
                if (lane == 0) {
                    float y = acc + d[n] * xi;
                    Y[(size_t)(b + r) * ldy + n * 64 + i] = y * sym_siluf(PR[(size_t)(b + r) * ldp + z_off + n * 64 + i]);
                }
                if (r + 1 < nr) hv = sym_mat_round<F>(hv); /* as stored after each row's step (matrix_state.cuh) */
            }
            sym_mat_put<F>(h, i, lane * 4, hv, true);
        }
    }
}

/* grid (heads, rows): one block per head of a run's first row. A row
 * outside a run takes the code of runs of one, with the occupancy the
 * launch bounds keep for it (sym_run_min_blocks). */
template <int F, int RUN>
__global__ void __launch_bounds__(256, sym_matrix_min_blocks(F, RUN, 5))
    k_mamba_ssm(const float *XS, int ldx, const float *BC, int ldbc, const float *PR, int ldp, int z_off, int dt_off,
                const float *a, const float *d, float *pool, size_t numel, const int *slots, const int *rlen,
                int pad_slot, sym_mat_loc hl, float *Y, int ldy) {
    SYM_PDL_WAIT();
    const int n = blockIdx.x, b = blockIdx.y;
    const int nr = RUN == 1 ? 1 : rlen[b]; /* a run's rows, from its first (sym_runs) */
    if (!nr || slots[b] == pad_slot) return; /* a padding row: its output is never used */
    const sym_mat h = sym_mat_head<F>(sym_slot(pool, numel, slots, b), hl.off, hl.eoff, n, SYM_MAMBA_HEAD, SYM_MAMBA_BC);
    if constexpr (RUN > 1) {
        if (nr == 1) return mamba_ssm_run<F, 1>(XS, ldx, BC, ldbc, PR, ldp, z_off, dt_off, a, d, h, n, b, 1, Y, ldy);
    }
    mamba_ssm_run<F, RUN>(XS, ldx, BC, ldbc, PR, ldp, z_off, dt_off, a, d, h, n, b, nr, Y, ldy);
}

template <int F>
static void mamba_ssm(cudaStream_t s, const float *XS, int ldx, const float *BC, int ldbc, const float *PR, int ldp,
                      int z_off, int dt_off, const float *a, const float *d, float *pool, size_t numel,
                      const int *slots, sym_runs rn, int pad_slot, sym_mat_loc h, float *Y, int ldy, int B, int NM,
                      int prio) {
    dim3 grid(NM, B);
    if (rn.max > 1)
        sym_launch_state(k_mamba_ssm<F, SYM_RUN_MAX>, dim3(grid), dim3(256), s, prio, XS, ldx, BC, ldbc, PR, ldp, z_off,
                         dt_off, a, d, pool, numel, slots, rn.len, pad_slot, h, Y, ldy);
    else
        sym_launch_state(k_mamba_ssm<F, 1>, dim3(grid), dim3(256), s, prio, XS, ldx, BC, ldbc, PR, ldp, z_off, dt_off,
                         a, d, pool, numel, slots, rn.len, pad_slot, h, Y, ldy);
}

void sym_mamba_ssm(cudaStream_t s, const float *XS, int ldx, const float *BC, int ldbc, const float *PR, int ldp,
                   int z_off, int dt_off, const float *a, const float *d, float *pool, size_t numel, const int *slots,
                   sym_runs rn, int pad_slot, sym_mat_loc h, float *Y, int ldy, int B, int NM, int prio) {
#define L_(F) mamba_ssm<F>(s, XS, ldx, BC, ldbc, PR, ldp, z_off, dt_off, a, d, pool, numel, slots, rn, pad_slot, h, Y, ldy, B, NM, prio)
    switch (h.fmt) {
    case SYM_MAT_BF16: L_(SYM_MAT_BF16); break;
    case SYM_MAT_F16: L_(SYM_MAT_F16); break;
    default: L_(SYM_MAT_F32); break;
    }
#undef L_
}

int sym_mamba2_bufs_alloc(sym_mamba2_bufs *b, const sym_model_config *cf, int Bm, sym_allocs *al, sym_err *e) {
    const size_t I = 2 * (size_t)cf->hidden;
    return sym_allocs_n(al, &b->xs, Bm * I, e) || sym_allocs_n(al, &b->bc, Bm * (size_t)sym_tower_ldbc(cf), e) ||
                   sym_allocs_n(al, &b->y, Bm * I, e) || sym_allocs_n(al, &b->yn, Bm * I, e)
               ? -1
               : 0;
}

/* proj = [x | z | b | c | dt]; xs = silu(conv(x)), bc = [b | c] after
 * their convs; the SSM's y * silu(z), normed, through the output
 * projection into u. */
int sym_mamba2_layer(const sym_tower_step *st, const sym_dlayer *d, const sym_block_state *bs,
                     const sym_tower_bufs *b) {
    const sym_mamba2_dlayer *m = &d->m;
    const sym_mamba2_bufs *v = &b->m;
    const int H = st->cf->hidden, I = 2 * H, NM = sym_cfg_mamba_heads(st->cf), B = st->B, ldp = st->ldp;
    const int BC = SYM_MAMBA_BC, ldbc = st->ldbc;
    cudaStream_t s = st->s;
    float *pool = st->pool;
    const size_t ne = st->numel;
    const int *sl = st->slots;
    const sym_runs rn = st->rn;
    const sym_xsplit proj_in = sym_planes(st, &m->proj), out_in = sym_planes(st, &m->out);
    int bad = 0;
    sym_keep_first(&bad, sym_rmsnorm(s, b->u, H, b->a, H, B, H, FLT_EPSILON, d->norm1, proj_in));
    sym_keep_first(&bad, sym_gemv(s, st->ws, &m->proj, b->a, H, b->proj, ldp, B, sym_xsplit_flag(proj_in)));
    sym_dconv(s, b->proj, ldp, v->xs, I, B, I, pool, ne, sl, rn, bs->mb_conv_x, m->cx_w, m->cx_b, 1);
    sym_dconv(s, b->proj + 2 * I, ldp, v->bc, ldbc, B, BC, pool, ne, sl, rn, bs->mb_conv_b, m->cb_w, m->cb_b, 1);
    sym_dconv(s, b->proj + 2 * I + BC, ldp, v->bc + BC, ldbc, B, BC, pool, ne, sl, rn, bs->mb_conv_c, m->cc_w, m->cc_b,
              1);
    const sym_mat_loc h = {bs->mb_h, bs->mb_h_exp, st->mat};
    sym_mamba_ssm(s, v->xs, I, v->bc, ldbc, b->proj, ldp, I, 2 * I + 2 * BC, m->a, m->d, pool, ne, sl, rn, st->pad_slot,
                  h, v->y, I, B, NM, st->state_prio);
    sym_keep_first(&bad, sym_rmsnorm(s, v->y, I, v->yn, I, B, I, 1e-5f, m->norm, out_in));
    sym_keep_first(&bad, sym_gemv(s, st->ws, &m->out, v->yn, I, b->u, H, B, GEMV_ACC | sym_xsplit_flag(out_in)));
    sym_keep_first(&bad, sym_rmsnorm(s, b->u, H, b->a, H, B, H, FLT_EPSILON, d->norm2, sym_planes(st, &d->fc1)));
    sym_keep_first(&bad, sym_layer_ffn(st, d, b));
    return bad;
}
