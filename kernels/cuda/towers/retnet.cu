/* The RetNet tower: retention's rotary (theta in fp64 with the CUDA libm's
 * full range reduction, so millions of steps stay accurate), then the S
 * update and readout split by column chunks (each S element read and
 * written once), then per-head scale update, 1/sqrt(scale), RMSNorm and
 * silu(g) gating; then the layer that enqueues them. */
#include "kernels/cuda/towers/retnet.cuh"

#include <float.h>
#include <math.h>

#include "kernels/cuda/device.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/norms.cuh"
#include "kernels/cuda/towers/layer.cuh"
#include "kernels/cuda/towers/matrix_state.cuh"

__global__ void k_retnet_rotary(float *PR, int ldp, int H, int hd, const float *angle, const float *pool,
                                size_t numel, const int *slots, const int *rlen, float scaling) {
    SYM_PDL_WAIT();
    int p = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (2 * p >= H) return;
    int i0 = 2 * p, pp = i0 % hd;
    /* the row's place in its run: the steps its slot takes before it (sym_runs) */
    long long offset = *(const long long *)(pool + (size_t)slots[b] * numel) + sym_run_place(rlen, b);
    double s0, c0, s1, c1;
    sincos((double)offset * (double)angle[pp], &s0, &c0);
    sincos((double)offset * (double)angle[pp + 1], &s1, &c1);
    float fc0 = (float)c0, fs0 = (float)s0, fc1 = (float)c1, fs1 = (float)s1;
    float *q = PR + (size_t)b * ldp, *k = q + H;
    float q0 = q[i0], q1 = q[i0 + 1], k0 = k[i0] * scaling, k1 = k[i0 + 1] * scaling;
    q[i0] = q0 * fc0 - q1 * fs0;
    q[i0 + 1] = q1 * fc1 + q0 * fs1;
    k[i0] = k0 * fc0 - k1 * fs0;
    k[i0 + 1] = k1 * fc1 + k0 * fs1;
}

void sym_retnet_rotary(cudaStream_t s, float *PR, int ldp, int H, int hd, const float *angle, const float *pool,
                       size_t numel, const int *slots, sym_runs rn, float scaling, int B) {
    dim3 grid((H / 2 + 255) / 256, B);
    sym_launch(k_retnet_rotary, dim3(grid), dim3(256), s, PR, ldp, H, hd, angle, pool, numel, slots, rn.len, scaling);
}

/* fp32 S. block (32 x 4 columns as float4, 8 row groups); grid (column
 * chunks of 128, heads, rows); the update of matrix_state.cuh over the
 * whole head, for the rows of a run from its first (sym_runs). */
template <int F, int RUN>
__global__ void __launch_bounds__(256, sym_matrix_min_blocks(F, RUN, 4))
    k_retnet_cell(const float *PR, int ldp, int H, int hd, const float *decay, float *pool, size_t numel,
                  const int *slots, const int *rlen, int pad_slot, sym_mat_loc S, float *O, int ldo) {
    SYM_PDL_WAIT();
    __shared__ float4 red[8][32];
    int tx = threadIdx.x, ty = threadIdx.y, j = (blockIdx.x * 32 + tx) * 4, n = blockIdx.y, b = blockIdx.z;
    const int nr = RUN == 1 ? 1 : rlen[b];
    if (!nr || slots[b] == pad_slot) return; /* a padding row: its output is never used */
    float4 acc[RUN];
#pragma unroll
    for (int r = 0; r < RUN; r++) acc[r] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    {
        const bool on = j < hd; /* a lane past the row's end still takes part in its warp's rounding */
        float f[RUN];
        float4 vj[RUN];
#pragma unroll
        for (int r = 0; r < RUN; r++) {
            f[r] = decay[n];
            vj[r] = on && r < nr ? *(const float4 *)(PR + (size_t)(b + r) * ldp + n * hd + 2 * H + j) : acc[r];
        }
        const sym_mat M = sym_mat_head<F>(sym_slot(pool, numel, slots, b), S.off, S.eoff, n, hd, hd);
        const float *q0 = PR + (size_t)b * ldp + n * hd;
        const size_t lp = (size_t)ldp;
        sym_matrix_rows<F, RUN>(M, 0, hd, j, on, f, vj, nr, [=](int r, int i) { return q0[r * lp + H + i]; },
                                [=](int r, int i) { return q0[r * lp + i]; }, acc);
    }
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        const float4 s = sym_matrix_readout(acc[r], red);
        if (ty == 0 && j < hd) {
            float *o = O + (size_t)(b + r) * ldo + n * hd + j;
            o[0] = s.x, o[1] = s.y, o[2] = s.z, o[3] = s.w;
        }
    }
}

/* k_retnet_cell for S in a two-byte format F: block (32 x 8 columns, 8 row
 * groups), grid (column chunks of 256, heads, rows); sym_matrix_rows8,
 * which sums a column as four numbers a thread did, so S and O are what
 * that layout gave, bit for bit (dev/cuda/matrix_cell4.cuh). hd is a
 * multiple of 4, not always of 8: a thread's last four columns may be
 * past the row's end (hi), and a row of hd % 8 == 4 numbers may start on
 * 8 bytes (sym_mat_load8 takes it in two 8-byte halves). */
template <int F, int RUN>
__global__ void __launch_bounds__(256, sym_matrix8_min_blocks(RUN))
    k_retnet_cell8(const float *PR, int ldp, int H, int hd, const float *decay, float *pool, size_t numel,
                   const int *slots, const int *rlen, int pad_slot, sym_mat_loc S, float *O, int ldo) {
    SYM_PDL_WAIT();
    __shared__ float4 red[2][8][32];
    int tx = threadIdx.x, ty = threadIdx.y, j = (blockIdx.x * 32 + tx) * 8, n = blockIdx.y, b = blockIdx.z;
    const int nr = RUN == 1 ? 1 : rlen[b];
    if (!nr || slots[b] == pad_slot) return; /* a padding row: its output is never used */
    /* lanes past the row's end still take part in their warp's rounding */
    const bool lo = j < hd, hi = j + 4 < hd;
    float acc[RUN][8];
    {
        float f[RUN], vj[RUN][8];
#pragma unroll
        for (int r = 0; r < RUN; r++) {
            f[r] = decay[n];
            const float *v = PR + (size_t)(b + r) * ldp + n * hd + 2 * H + j;
            const float4 z = make_float4(0.0f, 0.0f, 0.0f, 0.0f), v0 = lo && r < nr ? *(const float4 *)v : z,
                         v1 = hi && r < nr ? *(const float4 *)(v + 4) : z;
            vj[r][0] = v0.x, vj[r][1] = v0.y, vj[r][2] = v0.z, vj[r][3] = v0.w;
            vj[r][4] = v1.x, vj[r][5] = v1.y, vj[r][6] = v1.z, vj[r][7] = v1.w;
        }
        const sym_mat M = sym_mat_head<F>(sym_slot(pool, numel, slots, b), S.off, S.eoff, n, hd, hd);
        const float *q0 = PR + (size_t)b * ldp + n * hd;
        const size_t lp = (size_t)ldp;
        sym_matrix_rows8<F, RUN, false>(M, 0, hd, j, lo, hi, f, vj, nr,
                                        [=](int r, int i) { return q0[r * lp + H + i]; },
                                        [](int, float k) { return k; },
                                        [=](int r, int i) { return q0[r * lp + i]; }, acc);
    }
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        float s[8];
        sym_matrix_readout8(acc[r], red, s);
        if (ty == 0 && lo) {
            float *o = O + (size_t)(b + r) * ldo + n * hd + j;
            o[0] = s[0], o[1] = s[1], o[2] = s[2], o[3] = s[3];
            if (hi) o[4] = s[4], o[5] = s[5], o[6] = s[6], o[7] = s[7];
        }
    }
}

template <int F>
static void retnet_cell(cudaStream_t s, const float *PR, int ldp, int H, int NH, const float *decay, float *pool,
                        size_t numel, const int *slots, sym_runs rn, int pad_slot, sym_mat_loc S, float *O, int ldo,
                        int B, int prio) {
    int hd = H / NH; /* float4 columns: hd % 4 == 0 (sym_model_config_validate) */
    dim3 block(32, 8);
    if constexpr (F != SYM_MAT_F32) { /* eight columns a thread */
        dim3 grid((hd + 255) / 256, NH, B);
        if (rn.max > 1)
            sym_launch_state(k_retnet_cell8<F, SYM_RUN_MAX>, dim3(grid), dim3(block), s, prio, PR, ldp, H, hd, decay,
                             pool, numel, slots, rn.len, pad_slot, S, O, ldo);
        else
            sym_launch_state(k_retnet_cell8<F, 1>, dim3(grid), dim3(block), s, prio, PR, ldp, H, hd, decay, pool,
                             numel, slots, rn.len, pad_slot, S, O, ldo);
    } else {
        dim3 grid((hd + 127) / 128, NH, B);
        if (rn.max > 1)
            sym_launch_state(k_retnet_cell<F, SYM_RUN_MAX>, dim3(grid), dim3(block), s, prio, PR, ldp, H, hd, decay,
                             pool, numel, slots, rn.len, pad_slot, S, O, ldo);
        else
            sym_launch_state(k_retnet_cell<F, 1>, dim3(grid), dim3(block), s, prio, PR, ldp, H, hd, decay, pool, numel,
                             slots, rn.len, pad_slot, S, O, ldo);
    }
}

void sym_retnet_cell(cudaStream_t s, const float *PR, int ldp, int H, int NH, const float *decay, float *pool,
                     size_t numel, const int *slots, sym_runs rn, int pad_slot, sym_mat_loc S, float *O, int ldo, int B,
                     int prio) {
    switch (S.fmt) {
    case SYM_MAT_BF16: retnet_cell<SYM_MAT_BF16>(s, PR, ldp, H, NH, decay, pool, numel, slots, rn, pad_slot, S, O, ldo, B, prio); break;
    case SYM_MAT_F16: retnet_cell<SYM_MAT_F16>(s, PR, ldp, H, NH, decay, pool, numel, slots, rn, pad_slot, S, O, ldo, B, prio); break;
    default: retnet_cell<SYM_MAT_F32>(s, PR, ldp, H, NH, decay, pool, numel, slots, rn, pad_slot, S, O, ldo, B, prio); break;
    }
}

/* per (head, run): the scale's recurrence over the run's rows in order,
 * each row's 1/sqrt(scale), RMSNorm and silu(g) gating (sym_runs) */
template <int RUN>
__global__ void k_retnet_norm(const float *O, int ldo, const float *PR, int ldp, int H, int hd, const float *decay,
                              float *pool, size_t numel, const int *slots, const int *rlen, size_t off_scale, float *ON,
                              int ldn, sym_xsplit xs, int B) {
    SYM_PDL_WAIT();
    __shared__ float sh[32];
    int n = blockIdx.x, b = blockIdx.y;
    const int nr = RUN == 1 ? 1 : rlen[b];
    if (!nr) return;
    float *scp = sym_slot(pool, numel, slots, b) + off_scale + n;
    float sc = *scp;
    __syncthreads(); /* every thread has read the scale before it is written */
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        sc = decay[n] * sc + 1.0f;
        float rs = sqrtf(sc);
        const float *o = O + (size_t)(b + r) * ldo + n * hd;
        const float *g = PR + (size_t)(b + r) * ldp + 3 * H + n * hd;
        float ss = 0.0f;
        for (int j = threadIdx.x; j < hd; j += blockDim.x) {
            float v = o[j] / rs;
            ss += v * v;
        }
        ss = sym_block_sum(ss, sh);
        float rn = 1.0f / sqrtf(ss / (float)hd + 1e-6f);
        for (int j = threadIdx.x; j < hd; j += blockDim.x) {
            const float v = (o[j] / rs) * rn * sym_siluf(g[j]);
            ON[(size_t)(b + r) * ldn + n * hd + j] = v;
            sym_put_x(xs, B, H, b + r, n * hd + j, v); /* the output projection's input is H wide */
        }
    }
    if (threadIdx.x == 0) *scp = sc;
}

void sym_retnet_norm(cudaStream_t s, const float *O, int ldo, const float *PR, int ldp, int H, int NH,
                     const float *decay, float *pool, size_t numel, const int *slots, sym_runs rn, size_t off_scale,
                     float *ON, int ldn, int B, sym_xsplit xs) {
    dim3 grid(NH, B);
    if (rn.max > 1)
        sym_launch(k_retnet_norm<SYM_RUN_MAX>, dim3(grid), dim3(256), s, O, ldo, PR, ldp, H, H / NH, decay, pool, numel,
                   slots, rn.len, off_scale, ON, ldn, xs, B);
    else
        sym_launch(k_retnet_norm<1>, dim3(grid), dim3(256), s, O, ldo, PR, ldp, H, H / NH, decay, pool, numel, slots,
                   rn.len, off_scale, ON, ldn, xs, B);
}

int sym_retnet_bufs_alloc(sym_retnet_bufs *b, const sym_model_config *cf, int Bm, sym_allocs *al, sym_err *e) {
    const size_t I = 2 * (size_t)cf->hidden;
    return sym_allocs_n(al, &b->o, Bm * I, e) || sym_allocs_n(al, &b->on, Bm * I, e) ? -1 : 0;
}

/* proj = [q | k | v | g]; q and k rotated, the retention's readout o,
 * normed and gated into on, through the output projection into u. */
int sym_retnet_layer(const sym_tower_step *st, const sym_dlayer *d, const sym_block_state *bs,
                     const sym_tower_bufs *b) {
    const sym_retnet_dlayer *r = &d->r;
    const sym_retnet_bufs *v = &b->r;
    const int H = st->cf->hidden, I = 2 * H, NH = st->cf->heads, hd = H / NH, B = st->B, ldp = st->ldp;
    cudaStream_t s = st->s;
    float *pool = st->pool;
    const size_t ne = st->numel;
    const int *sl = st->slots;
    const sym_runs rn = st->rn;
    const sym_xsplit proj_in = sym_planes(st, &r->qkvg), out_in = sym_planes(st, &r->out);
    int bad = 0;
    sym_keep_first(&bad, sym_rmsnorm(s, b->u, H, b->a, H, B, H, FLT_EPSILON, d->norm1, proj_in));
    sym_keep_first(&bad, sym_gemv(s, st->ws, &r->qkvg, b->a, H, b->proj, ldp, B, sym_xsplit_flag(proj_in)));
    sym_retnet_rotary(s, b->proj, ldp, H, hd, r->angle, pool, ne, sl, rn, 1.0f / sqrtf((float)hd), B);
    const sym_mat_loc S = {bs->rt_S, bs->rt_S_exp, st->mat};
    sym_retnet_cell(s, b->proj, ldp, H, NH, r->decay, pool, ne, sl, rn, st->pad_slot, S, v->o, I, B, st->state_prio);
    sym_retnet_norm(s, v->o, I, b->proj, ldp, H, NH, r->decay, pool, ne, sl, rn, bs->rt_scale, v->on, I, B, out_in);
    sym_keep_first(&bad, sym_gemv(s, st->ws, &r->out, v->on, I, b->u, H, B, GEMV_ACC | sym_xsplit_flag(out_in)));
    sym_keep_first(&bad, sym_rmsnorm(s, b->u, H, b->a, H, B, H, FLT_EPSILON, d->norm2, sym_planes(st, &d->fc1)));
    sym_keep_first(&bad, sym_layer_ffn(st, d, b));
    return bad;
}
