/* The xLSTM tower: its kernels in step order, the sLSTM's entry (norms,
 * conv, y_prev), its cell fused with the norms after it, the mLSTM's entry
 * (conv + 4x4 block-diagonal q/k/v), per-head gates + normaliser (writes
 * m', n' before the matrix pass so no block reads a half-updated scalar),
 * the C matrix update + readout split by column chunks and row splits
 * (each C element read and written once), and the head GroupNorm + skip +
 * output gate that sums the splits; then the layer that enqueues them,
 * with the linear layers between (ops/linear.cuh). */
#include "kernels/cuda/towers/xlstm.cuh"

#include <float.h>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/norms.cuh"
#include "kernels/cuda/ops/rows.cuh"
#include "kernels/cuda/towers/layer.cuh"
#include "kernels/cuda/towers/matrix_state.cuh"

/* The sLSTM's entry, one block per row: a = norm1(u) (RMSNorm), xn =
 * LayerNorm(a) * s_norm, xa = silu(conv(xn)) with the conv state advanced,
 * then xa, xn and the state's y_prev laid out as the input row of the
 * gates' one GEMV (engine/model.cu's sLSTM gate matrix), in one kernel.
 * One body, longer than a screen: every load of the row is issued before
 * any store (row_load_or's note), which functions that each load and
 * store would undo. */
template <int EPT, int T>
__global__ void __launch_bounds__(T) k_slstm_in(const float *u, int ldu, float *a, int lda, const float *w1, float eps,
                                                 float *sg, int ldsg, int bs, const float *w2, float *pool,
                                                 size_t numel, const int *slots, const int *rlen, int pass,
                                                 size_t off_conv, const float *cw, const float *cb, size_t off_y, int n,
                                                 sym_xsplit xs, int B) {
    SYM_PDL_ENTER();
    __shared__ float sh[32];
    int row = blockIdx.x;
    if (pass >= 0 && sym_run_place(rlen, row) != pass) return; /* another pass's row (sym_runs) */
    float *st = sym_slot(pool, numel, slots, row), *cs = st + off_conv;
    /* every load first (row_load_or's note) */
    float v[EPT], w1v[EPT], w2v[EPT], s0[EPT], s1[EPT], s2[EPT], c0[EPT], c1[EPT], c2[EPT], c3[EPT], cbv[EPT], yv[EPT];
    row_load<EPT, T>(u + (size_t)row * ldu, n, v);
    row_load_or<EPT, T>(w1, n, w1v, 1.0f);
    row_load_or<EPT, T>(w2, n, w2v, 1.0f);
    row_load_or<EPT, T>(cs, n, s0, 0.0f, 3);
    row_load_or<EPT, T>(cs + 1, n, s1, 0.0f, 3);
    row_load_or<EPT, T>(cs + 2, n, s2, 0.0f, 3);
    row_load_or<EPT, T>(cw, n, c0, 0.0f, 4);
    row_load_or<EPT, T>(cw + 1, n, c1, 0.0f, 4);
    row_load_or<EPT, T>(cw + 2, n, c2, 0.0f, 4);
    row_load_or<EPT, T>(cw + 3, n, c3, 0.0f, 4);
    row_load_or<EPT, T>(cb, n, cbv, 0.0f);
    row_load_or<EPT, T>(st + off_y, n, yv, 0.0f);
    float mean, r, rs = row_rms_scale<EPT>(v, n, eps, sh);
#pragma unroll
    for (int j = 0; j < EPT; j++) v[j] = threadIdx.x + j * T < n ? v[j] * rs * w1v[j] : 0.0f;
    row_ln_stats<EPT, T>(v, n, &mean, &r, sh);
    const int gate = 2 * bs * (n / bs); /* one gate's stride in sg */
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        int i = threadIdx.x + j * T;
        if (i >= n) continue;
        float x = (v[j] - mean) * r * w2v[j];
        float o = cbv[j] + c0[j] * s0[j] + c1[j] * s1[j] + c2[j] * s2[j] + c3[j] * x;
        float xa = sym_siluf(o);
        a[(size_t)row * lda + i] = v[j];
        cs[3 * (size_t)i] = s1[j], cs[3 * (size_t)i + 1] = s2[j], cs[3 * (size_t)i + 2] = x;
        /* gates i, f read xa; z, o read xn; all four read y_prev */
        size_t at = (size_t)row * ldsg + (size_t)(i / bs) * 2 * bs + i % bs;
        float *p = sg + at;
        p[0] = xa, p[gate] = xa, p[2 * gate] = x, p[3 * gate] = x;
        p[bs] = yv[j], p[gate + bs] = yv[j], p[2 * gate + bs] = yv[j], p[3 * gate + bs] = yv[j];
        if (xs.bf || xs.tf) { /* the split of the same eight values (ldsg is the row's width, 8 n) */
            const int c = (int)(at - (size_t)row * ldsg);
            sym_put_x(xs, B, ldsg, row, c, xa), sym_put_x(xs, B, ldsg, row, c + gate, xa);
            sym_put_x(xs, B, ldsg, row, c + 2 * gate, x), sym_put_x(xs, B, ldsg, row, c + 3 * gate, x);
            for (int g = 0; g < 4; g++) sym_put_x(xs, B, ldsg, row, c + g * gate + bs, yv[j]);
        }
    }
}

int sym_slstm_in(cudaStream_t s, const float *u, int ldu, float *a, int lda, const float *w1, float eps, float *sg,
                 int ldsg, int bs, const float *w2, float *pool, size_t numel, const int *slots, sym_runs rn,
                 size_t off_conv, const float *cw, const float *cb, size_t off_y, int n, int B, sym_xsplit xs) {
    if ((xs.bf || xs.tf) && ldsg != 8 * n) return -1; /* the terms are laid out at the row's width */
    const int pass = rn.max > 1 ? rn.pass : -1;
#define L_(E)                                                                                                  \
    sym_launch(k_slstm_in<E, NT_WIDE>, dim3(B), dim3(NT_WIDE), s, u, ldu, a, lda, w1, eps, sg, ldsg, bs, w2, pool, \
               numel, slots, rn.len, pass, off_conv, cw, cb, off_y, n, xs, B)
    SYM_EPT_SWITCH_WIDE(n, L_)
#undef L_
    return 0;
}

/* The sLSTM cell and what follows it, one block per row: the cell
 * (elementwise, exp-stabilised; m starts at -inf) advances c, n, m, y; then
 * s_out = GroupNorm_NS(y) * gn_w + gn_b + res goes to SO, and the mLSTM's
 * input xm = LayerNorm(s_out) * m_norm to XM, in one kernel. One body,
 * longer than a screen, for the same reason as k_slstm_in's. */
template <int EPT, int T>
__global__ void __launch_bounds__(T) k_slstm_out(const float *G, int ldg, float *pool, size_t numel, const int *slots,
                                                  const int *rlen, int pass, size_t off_c, size_t off_n, size_t off_m,
                                                  size_t off_y, const float *gn_w, const float *gn_b, const float *res,
                                                  int ldr, float *SO, int ldso, const float *mn_w, float *XM, int ldxm,
                                                  int H, int NS, sym_xsplit xs, int B) {
    SYM_PDL_ENTER();
    __shared__ float sh[32];
    int row = blockIdx.x, gs = H / NS;
    if (pass >= 0 && sym_run_place(rlen, row) != pass) return; /* another pass's row (sym_runs) */
    float *st = sym_slot(pool, numel, slots, row);
    const float *g = G + (size_t)row * ldg;
    /* every load first (row_load_or's note) */
    float gi[EPT], gf[EPT], gz[EPT], go[EPT], cv[EPT], nv[EPT], mv[EPT], gw[EPT], gb[EPT], rv[EPT], mw[EPT];
    row_load<EPT, T>(g, H, gi);
    row_load<EPT, T>(g + H, H, gf);
    row_load<EPT, T>(g + 2 * H, H, gz);
    row_load<EPT, T>(g + 3 * H, H, go);
    row_load<EPT, T>(st + off_c, H, cv);
    row_load<EPT, T>(st + off_n, H, nv);
    row_load<EPT, T>(st + off_m, H, mv);
    row_load_or<EPT, T>(gn_w, H, gw, 1.0f);
    row_load_or<EPT, T>(gn_b, H, gb, 0.0f);
    row_load_or<EPT, T>(res ? res + (size_t)row * ldr : NULL, H, rv, 0.0f);
    row_load_or<EPT, T>(mn_w, H, mw, 1.0f);
    float v[EPT];
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        int i = threadIdx.x + j * T;
        v[j] = 0.0f;
        if (i >= H) continue;
        float lf = mv[j] + sym_logsigmoidf(gf[j]);
        float m = gi[j] > lf ? gi[j] : lf;
        float ig = expf(gi[j] - m), fg = expf(lf - m);
        float cn = fg * cv[j] + ig * tanhf(gz[j]);
        float nn = fg * nv[j] + ig;
        float y = sym_sigmoidf(go[j]) * cn / (nn + 1e-6f);
        st[off_c + i] = cn, st[off_n + i] = nn, st[off_m + i] = m, st[off_y + i] = y;
        v[j] = y;
    }
    /* GroupNorm over NS groups: one fixed-order block sum per group and
     * pass. Each element's group is worked out once: an integer division
     * by the runtime group size in every pass's test made this kernel
     * issue-bound (ncu, B = 39: 14.4 us, 0.63 warps issued a cycle). */
    float so[EPT];
    int grp[EPT];
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        const int i = (int)threadIdx.x + j * T;
        grp[j] = i < H ? i / gs : -1;
    }
    for (int k = 0; k < NS; k++) {
        float sum = 0.0f, q = 0.0f;
#pragma unroll
        for (int j = 0; j < EPT; j++) {
            if (grp[j] == k) sum += v[j];
        }
        float mean = sym_block_sum(sum, sh) / (float)gs;
#pragma unroll
        for (int j = 0; j < EPT; j++) {
            if (grp[j] == k) q += (v[j] - mean) * (v[j] - mean);
        }
        float r = 1.0f / sqrtf(sym_block_sum(q, sh) / (float)gs + 1e-5f);
#pragma unroll
        for (int j = 0; j < EPT; j++) {
            if (grp[j] == k) so[j] = (v[j] - mean) * r * gw[j] + gb[j] + rv[j];
        }
    }
#pragma unroll
    for (int j = 0; j < EPT; j++) so[j] = threadIdx.x + j * T < H ? so[j] : 0.0f;
    float mean, r;
    row_ln_stats<EPT, T>(so, H, &mean, &r, sh);
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        int i = threadIdx.x + j * T;
        if (i >= H) continue;
        SO[(size_t)row * ldso + i] = so[j];
        float xm = (so[j] - mean) * r * mw[j];
        XM[(size_t)row * ldxm + i] = xm;
        sym_put_x(xs, B, H, row, i, xm);
    }
}

int sym_slstm_out(cudaStream_t s, const float *G, int ldg, float *pool, size_t numel, const int *slots, sym_runs rn,
                  size_t off_c, size_t off_n, size_t off_m, size_t off_y, const float *gn_w, const float *gn_b,
                  const float *res, int ldr, float *SO, int ldso, const float *mn_w, float *XM, int ldxm, int H, int NS,
                  int B, sym_xsplit xs) {
    if (NS < 1 || H % NS) return -1;
    const int pass = rn.max > 1 ? rn.pass : -1;
#define L_(E)                                                                                                  \
    sym_launch(k_slstm_out<E, NT_WIDE>, dim3(B), dim3(NT_WIDE), s, G, ldg, pool, numel, slots, rn.len, pass, off_c,  \
               off_n, off_m, off_y, gn_w, gn_b, res, ldr, SO, ldso, mn_w, XM, ldxm, H, NS, xs, B)
    SYM_EPT_SWITCH_WIDE(H, L_)
#undef L_
    return 0;
}

/* The mLSTM's entry, one thread per channel: xa = silu(conv(xm)) with the
 * conv state advanced, then the 4x4 block-diagonal q = Wq xa, k = Wk xa,
 * v = Wv xm into QKV [q | k | v], the four xa and xm of a channel's block
 * taken from its neighbours' lanes. One thread per channel, so every
 * warp's loads are contiguous: one thread per 4-channel block, whose 12
 * conv-state floats 48 bytes apart and 4 x 16 weights 64 bytes apart per
 * thread left it latency-bound (ncu, H100, B = 39: 10.1 against 5.1 us,
 * 67 % excess sectors). One body, longer than a screen: its loads come
 * first, and a run's rows reuse the conv state in registers. */
template <int RUN>
__global__ void __launch_bounds__(256) k_mlstm_in(const float *XM, int ldxm, float *pool, size_t numel,
                                                  const int *slots, const int *rlen, size_t off_conv, const float *cw,
                                                  const float *cb, const float *wq, const float *wk, const float *wv,
                                                  float *XA, int ldxa, float *QKV, int ldq, int I) {
    SYM_PDL_ENTER();
    const int ch = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    const int nr = RUN == 1 ? 1 : rlen[b]; /* a run's rows, from its first (sym_runs); the same in the whole block */
    if (!nr) return;
    /* I is a multiple of 4, so a channel's block mates (the lanes of its
     * four) are in range together; every lane reaches the shuffles */
    const bool on = ch < I;
    /* every load first: a store may alias a later load, which would then wait for it */
    float *cs = sym_slot(pool, numel, slots, b) + off_conv + 3 * (size_t)ch;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, bias = 0.0f;
    float4 w = make_float4(0.0f, 0.0f, 0.0f, 0.0f), q4 = w, k4 = w, v4 = w;
    float xmr[RUN];
#pragma unroll
    for (int r = 0; r < RUN; r++) xmr[r] = on && r < nr ? XM[(size_t)(b + r) * ldxm + ch] : 0.0f;
    if (on) {
        s0 = cs[0], s1 = cs[1], s2 = cs[2];
        /* 16-byte loads (the small-weight arena aligns every tensor to 64
         * bytes): channel ch's conv taps, and its row of its block in each
         * of q, k, v (weights [I/4][4][4], so row ch of [I][4]) */
        w = *(const float4 *)(cw + (size_t)ch * 4);
        q4 = *(const float4 *)(wq + (size_t)ch * 4);
        k4 = *(const float4 *)(wk + (size_t)ch * 4);
        v4 = *(const float4 *)(wv + (size_t)ch * 4);
        bias = cb[ch];
    }
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        const float xm = xmr[r];
        const float o = bias + w.x * s0 + w.y * s1 + w.z * s2 + w.w * xm, xa = sym_siluf(o);
        /* the block's four xa and xm, from lanes 4 (lane / 4) + 0..3 */
        float xa4[4], xm4[4];
#pragma unroll
        for (int c = 0; c < 4; c++) {
            xa4[c] = __shfl_sync(0xffffffffu, xa, c, 4);
            xm4[c] = __shfl_sync(0xffffffffu, xm, c, 4);
        }
        s0 = s1, s1 = s2, s2 = xm;
        if (!on) continue;
        XA[(size_t)(b + r) * ldxa + ch] = xa;
        float *q = QKV + (size_t)(b + r) * ldq + ch;
        q[0] = (q4.x * xa4[0] + q4.y * xa4[1]) + (q4.z * xa4[2] + q4.w * xa4[3]);
        q[I] = (k4.x * xa4[0] + k4.y * xa4[1]) + (k4.z * xa4[2] + k4.w * xa4[3]);
        q[2 * I] = (v4.x * xm4[0] + v4.y * xm4[1]) + (v4.z * xm4[2] + v4.w * xm4[3]);
    }
    if (on) cs[0] = s0, cs[1] = s1, cs[2] = s2;
}

void sym_mlstm_in(cudaStream_t s, const float *XM, int ldxm, float *pool, size_t numel, const int *slots,
                  sym_runs rn, size_t off_conv, const float *cw, const float *cb, const float *wq, const float *wk,
                  const float *wv, float *XA, int ldxa, float *QKV, int ldq, int I, int B) {
    dim3 grid((I + 255) / 256, B);
    if (rn.max > 1)
        sym_launch(k_mlstm_in<SYM_RUN_MAX>, grid, dim3(256), s, XM, ldxm, pool, numel, slots, rn.len, off_conv, cw, cb,
                   wq, wk, wv, XA, ldxa, QKV, ldq, I);
    else
        sym_launch(k_mlstm_in<1>, grid, dim3(256), s, XM, ldxm, pool, numel, slots, rn.len, off_conv, cw, cb, wq, wk, wv,
                   XA, ldxa, QKV, ldq, I);
}

/* grid (NH, B): the head's input and forget gate pre-activations (rows n
 * and NH + n of the gate projection Wg [2NH, in] against the row's
 * [q | k | v], a fixed-order block sum each: the projection is 2NH rows, a
 * GEMV launch of its own cost more than its arithmetic), then ig, fg, m',
 * n' and the denominator; SC[b*ldsc + 4n + {0,1,2}]. One body, longer
 * than a screen: a run's rows carry m and n from one to the next. */
template <typename WT, int RUN>
__global__ void k_mlstm_gate(const WT *Wg, const float *bg, int in, const float *QKV, int ldq, float *pool,
                             size_t numel, const int *slots, const int *rlen, size_t off_n, size_t off_m, float *SC,
                             int ldsc, int I, int NH, int vec) {
    SYM_PDL_WAIT();
    __shared__ float sh[32];
    int n = blockIdx.x, b = blockIdx.y, dm = I / NH;
    const int nr = RUN == 1 ? 1 : rlen[b]; /* a run's rows in order, from its first (sym_runs) */
    if (!nr) return;
    const WT *wi = Wg + (size_t)n * in, *wf = Wg + (size_t)(NH + n) * in;
    float *st = sym_slot(pool, numel, slots, b);
    float mo = st[off_m + n]; /* read by every thread before thread 0 writes it, after a block sum */
    float *nv = st + off_n + (size_t)n * dm;
    const float ksc = 1.0f / sqrtf((float)dm);
#pragma unroll 1
    for (int r = 0; r < nr; r++) {
        const float *x = QKV + (size_t)(b + r) * ldq;
        float di = 0.0f, df = 0.0f;
        if (vec) { /* 16-byte loads, 8 inputs a step: scalar loads left it latency-bound (24 us at B = 39) */
#pragma unroll 2
            for (int k = threadIdx.x * 8; k < in; k += blockDim.x * 8) {
                float a[8], f[8], xv[8];
                load8<WT>(wi + k, a);
                load8<WT>(wf + k, f);
                load8<float>(x + k, xv);
#pragma unroll
                for (int q = 0; q < 8; q++) di += a[q] * xv[q], df += f[q] * xv[q];
            }
        } else {
#pragma unroll 4
            for (int k = threadIdx.x; k < in; k += blockDim.x) {
                float xv = x[k];
                di += sym_to_float(wi[k]) * xv;
                df += sym_to_float(wf[k]) * xv;
            }
        }
        float ip = sym_block_sum(di, sh) + (bg ? bg[n] : 0.0f);
        float fp = sym_block_sum(df, sh) + (bg ? bg[NH + n] : 0.0f);
        float lf = sym_logsigmoidf(fp);
        float m = ip > mo + lf ? ip : mo + lf;
        float ig = expf(ip - m), fg = expf(lf + mo - m);
        const float *q = x + n * dm, *k = q + I;
        float dot = 0.0f;
        for (int i = threadIdx.x; i < dm; i += blockDim.x) { /* a thread keeps its i over the run */
            float nn = fg * nv[i] + ig * (k[i] * ksc);
            nv[i] = nn;
            dot += q[i] * nn;
        }
        dot = sym_block_sum(dot, sh);
        if (threadIdx.x == 0) {
            float den = fabsf(dot), fl = expf(-m);
            den = (den > fl ? den : fl) + 1e-6f;
            float *sc = SC + (size_t)(b + r) * ldsc + 4 * n;
            sc[0] = ig, sc[1] = fg, sc[2] = den;
        }
        mo = m;
    }
    if (threadIdx.x == 0) st[off_m + n] = mo;
}

void sym_mlstm_gate(cudaStream_t s, const sym_dlin *Lg, const float *QKV, int ldq, float *pool, size_t numel,
                    const int *slots, sym_runs rn, size_t off_n, size_t off_m, float *SC, int ldsc, int I, int NH,
                    int B) {
    dim3 grid(NH, B);
    int vec = Lg->in % 8 == 0 && ldq % 4 == 0 && (uintptr_t)QKV % 16 == 0 && (uintptr_t)Lg->w % 16 == 0;
#define L_(WT, R)                                                                                                   \
    sym_launch(k_mlstm_gate<WT, R>, grid, dim3(256), s, (const WT *)Lg->w, Lg->b, Lg->in, QKV, ldq, pool, numel, slots, \
               rn.len, off_n, off_m, SC, ldsc, I, NH, vec)
    if (Lg->bf16 && rn.max > 1) L_(__nv_bfloat16, SYM_RUN_MAX);
    else if (Lg->bf16) L_(__nv_bfloat16, 1);
    else if (rn.max > 1) L_(float, SYM_RUN_MAX);
    else L_(float, 1);
#undef L_
}

/* k_mlstm_cell's part of a step's rows: all (a step without runs), those
 * outside runs, or the runs'. A step with runs launches the variant for
 * runs of one on the rows outside runs, at its full occupancy, then the
 * variant for runs on the runs: one launch of the latter on every row
 * held them all to its 64 registers (H100, mixed, 39 / 64 / 128 rows with
 * one run of two 7.62 / 11.60 / 21.98 -> 7.47 / 11.35 / 21.44 ms; 39 x 2
 * and 32 x 4 rows, where every row is in a run, 10.86 / 14.55 -> 10.95 /
 * 14.71 for the extra launch; the game over 128 symbols at 5,500 req/s p99
 * 25.7 -> 23.9 ms, over 39 symbols unchanged). */
enum { MLSTM_ALL, MLSTM_SINGLES, MLSTM_RUNS };

/* fp32 C. block (32 x 4 columns as float4, 8 row groups); grid (column
 * chunks of 128, heads x SYM_MLSTM_SPLITS row splits, rows); the update of
 * matrix_state.cuh over the split's rows. The row splits give B = 1
 * about 256 blocks (one per head and column chunk left 32 blocks streaming
 * 8 MB per layer); each split writes its partial readout, summed in a
 * fixed order by k_mlstm_out, so a row's result does not depend on B. */
template <int F, int RUN>
__global__ void __launch_bounds__(256, sym_matrix_min_blocks(F, RUN, 4))
    k_mlstm_cell(const float *QKV, int ldq, const float *SC, int ldsc, float *pool, size_t numel, const int *slots,
                 const int *rlen, int part, int pad_slot, sym_mat_loc C, float *HP, int I, int dm, int B) {
    SYM_PDL_WAIT();
    __shared__ float4 red[8][32];
    const int RS = SYM_MLSTM_SPLITS;
    int tx = threadIdx.x, ty = threadIdx.y, j = (blockIdx.x * 32 + tx) * 4, n = blockIdx.y / RS, rs = blockIdx.y % RS;
    int b = blockIdx.z, per = (dm + RS - 1) / RS, i0 = rs * per, i1 = min(dm, i0 + per);
    const int nr = RUN == 1 ? 1 : rlen[b]; /* a run's rows, from its first (sym_runs) */
    if (part == MLSTM_SINGLES && rlen[b] != 1) return; /* a run's rows: the runs' launch */
    if (part == MLSTM_RUNS && nr < 2) return;           /* rows outside runs: the launch before */
    if (!nr || slots[b] == pad_slot) return; /* a padding row: its readout is never used */
    float4 acc[RUN];
#pragma unroll
    for (int r = 0; r < RUN; r++) acc[r] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    {
        const bool on = j < dm; /* a lane past the row's end still takes part in its warp's rounding */
        float ig[RUN], fg[RUN];
        float4 vj[RUN];
#pragma unroll
        for (int r = 0; r < RUN; r++) {
            const float *sc = SC + (size_t)(b + (r < nr ? r : 0)) * ldsc + 4 * n;
            ig[r] = sc[0], fg[r] = sc[1];
            vj[r] = on ? *(const float4 *)(QKV + (size_t)(b + (r < nr ? r : 0)) * ldq + 2 * I + n * dm + j)
                       : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        const float ksc = 1.0f / sqrtf((float)dm);
        const float *q0 = QKV + (size_t)b * ldq + n * dm;
        const size_t lq = (size_t)ldq;
        const sym_mat M = sym_mat_head<F>(sym_slot(pool, numel, slots, b), C.off, C.eoff, n, dm, dm);
        sym_matrix_rows<F, RUN>(M, i0, i1, j, on, fg, vj, nr,
                                [=](int r, int i) { return ig[r] * (q0[r * lq + I + i] * ksc); },
                                [=](int r, int i) { return q0[r * lq + i]; }, acc);
    }
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        const float4 s = sym_matrix_readout(acc[r], red);
        if (ty == 0 && j < dm) *(float4 *)(HP + ((size_t)rs * B + b + r) * I + n * dm + j) = s;
    }
}

/* k_mlstm_cell for C in a two-byte format F: block (32 x 8 columns, 8 row
 * groups), grid (column chunks of 256, heads x SYM_MLSTM_SPLITS row
 * splits, rows); sym_matrix_rows8, which sums a column as four numbers a
 * thread did, so C and HP are what that layout gave, bit for bit
 * (dev/cuda/matrix_cell4.cuh). dm = 2 hd is a multiple of 8: a thread's
 * eight columns are all in the row or all past its end, and every row
 * starts on 16 bytes. */
template <int F, int RUN>
__global__ void __launch_bounds__(256, sym_matrix8_min_blocks(RUN))
    k_mlstm_cell8(const float *QKV, int ldq, const float *SC, int ldsc, float *pool, size_t numel, const int *slots,
                  const int *rlen, int part, int pad_slot, sym_mat_loc C, float *HP, int I, int dm, int B) {
    SYM_PDL_WAIT();
    __shared__ float4 red[2][8][32];
    const int RS = SYM_MLSTM_SPLITS;
    int tx = threadIdx.x, ty = threadIdx.y, j = (blockIdx.x * 32 + tx) * 8, n = blockIdx.y / RS, rs = blockIdx.y % RS;
    int b = blockIdx.z, per = (dm + RS - 1) / RS, i0 = rs * per, i1 = min(dm, i0 + per);
    const int nr = RUN == 1 ? 1 : rlen[b]; /* a run's rows, from its first (sym_runs) */
    if (part == MLSTM_SINGLES && rlen[b] != 1) return; /* a run's rows: the runs' launch */
    if (part == MLSTM_RUNS && nr < 2) return;           /* rows outside runs: the launch before */
    if (!nr || slots[b] == pad_slot) return; /* a padding row: its readout is never used */
    const bool on = j < dm; /* a lane past the row's end still takes part in its warp's rounding */
    float acc[RUN][8];
    {
        float ig[RUN], fg[RUN], vj[RUN][8];
#pragma unroll
        for (int r = 0; r < RUN; r++) {
            const float *sc = SC + (size_t)(b + (r < nr ? r : 0)) * ldsc + 4 * n;
            ig[r] = sc[0], fg[r] = sc[1];
            const float *v = QKV + (size_t)(b + (r < nr ? r : 0)) * ldq + 2 * I + n * dm + j;
            const float4 z = make_float4(0.0f, 0.0f, 0.0f, 0.0f), v0 = on ? *(const float4 *)v : z,
                         v1 = on ? *(const float4 *)(v + 4) : z;
            vj[r][0] = v0.x, vj[r][1] = v0.y, vj[r][2] = v0.z, vj[r][3] = v0.w;
            vj[r][4] = v1.x, vj[r][5] = v1.y, vj[r][6] = v1.z, vj[r][7] = v1.w;
        }
        const float ksc = 1.0f / sqrtf((float)dm);
        const float *q0 = QKV + (size_t)b * ldq + n * dm;
        const size_t lq = (size_t)ldq;
        const sym_mat M = sym_mat_head<F>(sym_slot(pool, numel, slots, b), C.off, C.eoff, n, dm, dm);
        /* k = ig[r] * (k_i * ksc), as k_mlstm_cell's kc rounds it */
        sym_matrix_rows8<F, RUN, true>(M, i0, i1, j, on, on, fg, vj, nr,
                                       [=](int r, int i) { return q0[r * lq + I + i] * ksc; },
                                       [=](int r, float k) { return ig[r] * k; },
                                       [=](int r, int i) { return q0[r * lq + i]; }, acc);
    }
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        float s[8];
        sym_matrix_readout8(acc[r], red, s);
        if (ty == 0 && on) {
            float *h = HP + ((size_t)rs * B + b + r) * I + n * dm + j;
            *(float4 *)h = make_float4(s[0], s[1], s[2], s[3]);
            *(float4 *)(h + 4) = make_float4(s[4], s[5], s[6], s[7]);
        }
    }
}

template <int F>
static void mlstm_cell(cudaStream_t s, const float *QKV, int ldq, const float *SC, int ldsc, float *pool, size_t numel,
                       const int *slots, sym_runs rn, int pad_slot, sym_mat_loc C, float *HP, int I, int NH, int B,
                       int prio) {
    int dm = I / NH; /* float4 columns: dm = 2 hd, a multiple of 8 (sym_model_config_validate) */
    dim3 block(32, 8);
    if constexpr (F != SYM_MAT_F32) { /* eight columns a thread */
        dim3 grid((dm + 255) / 256, NH * SYM_MLSTM_SPLITS, B);
        if (rn.max > 1) {
            sym_launch_state(k_mlstm_cell8<F, 1>, dim3(grid), dim3(block), s, prio, QKV, ldq, SC, ldsc, pool, numel,
                             slots, rn.len, (int)MLSTM_SINGLES, pad_slot, C, HP, I, dm, B);
            sym_launch_state(k_mlstm_cell8<F, SYM_RUN_MAX>, dim3(grid), dim3(block), s, prio, QKV, ldq, SC, ldsc, pool,
                             numel, slots, rn.len, (int)MLSTM_RUNS, pad_slot, C, HP, I, dm, B);
        } else {
            sym_launch_state(k_mlstm_cell8<F, 1>, dim3(grid), dim3(block), s, prio, QKV, ldq, SC, ldsc, pool, numel,
                             slots, rn.len, (int)MLSTM_ALL, pad_slot, C, HP, I, dm, B);
        }
    } else {
        dim3 grid((dm + 127) / 128, NH * SYM_MLSTM_SPLITS, B);
        if (rn.max > 1) {
            sym_launch_state(k_mlstm_cell<F, 1>, dim3(grid), dim3(block), s, prio, QKV, ldq, SC, ldsc, pool, numel,
                             slots, rn.len, (int)MLSTM_SINGLES, pad_slot, C, HP, I, dm, B);
            sym_launch_state(k_mlstm_cell<F, SYM_RUN_MAX>, dim3(grid), dim3(block), s, prio, QKV, ldq, SC, ldsc, pool,
                             numel, slots, rn.len, (int)MLSTM_RUNS, pad_slot, C, HP, I, dm, B);
        } else {
            sym_launch_state(k_mlstm_cell<F, 1>, dim3(grid), dim3(block), s, prio, QKV, ldq, SC, ldsc, pool, numel,
                             slots, rn.len, (int)MLSTM_ALL, pad_slot, C, HP, I, dm, B);
        }
    }
}

void sym_mlstm_cell(cudaStream_t s, const float *QKV, int ldq, const float *SC, int ldsc, float *pool, size_t numel,
                    const int *slots, sym_runs rn, int pad_slot, sym_mat_loc C, float *HP, int I, int NH, int B,
                    int prio) {
    switch (C.fmt) {
    case SYM_MAT_BF16: mlstm_cell<SYM_MAT_BF16>(s, QKV, ldq, SC, ldsc, pool, numel, slots, rn, pad_slot, C, HP, I, NH, B, prio); break;
    case SYM_MAT_F16: mlstm_cell<SYM_MAT_F16>(s, QKV, ldq, SC, ldsc, pool, numel, slots, rn, pad_slot, C, HP, I, NH, B, prio); break;
    default: mlstm_cell<SYM_MAT_F32>(s, QKV, ldq, SC, ldsc, pool, numel, slots, rn, pad_slot, C, HP, I, NH, B, prio); break;
    }
}

/* grid (NH, B): h = (sum of the splits) / den, GroupNorm over the head with
 * w, b, then (h + skip * XA) * silu(XG). */
template <int EPT>
__global__ void __launch_bounds__(NT) k_mlstm_out(const float *HP, const float *SC, int ldsc, const float *w,
                                                  const float *bb, const float *skip, const float *XA, int ldxa,
                                                  const float *XG, int ldxg, float *HN, int ldh, int I, int dm, int B,
                                                  sym_xsplit xs) {
    SYM_PDL_ENTER();
    __shared__ float sh[32];
    int n = blockIdx.x, b = blockIdx.y;
    /* every load first (row_load_or's note) */
    float den = SC[(size_t)b * ldsc + 4 * n + 2], v[EPT], p[SYM_MLSTM_SPLITS][EPT], wv[EPT], bv[EPT], sk[EPT], xa[EPT],
          xg[EPT], mean, r;
#pragma unroll
    for (int rs = 0; rs < SYM_MLSTM_SPLITS; rs++) row_load<EPT>(HP + ((size_t)rs * B + b) * I + n * dm, dm, p[rs]);
    row_load_or<EPT>(w + n * dm, dm, wv, 1.0f);
    row_load_or<EPT>(bb ? bb + n * dm : NULL, dm, bv, 0.0f);
    row_load<EPT>(skip + n * dm, dm, sk);
    row_load<EPT>(XA + (size_t)b * ldxa + n * dm, dm, xa);
    row_load<EPT>(XG + (size_t)b * ldxg + n * dm, dm, xg);
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        float h = 0.0f;
#pragma unroll
        for (int rs = 0; rs < SYM_MLSTM_SPLITS; rs++) h += p[rs][j];
        v[j] = threadIdx.x + j * NT < dm ? h / den : 0.0f;
    }
    row_ln_stats<EPT>(v, dm, &mean, &r, sh);
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        int i = threadIdx.x + j * NT;
        if (i < dm) {
            float o = (v[j] - mean) * r * wv[j] + bv[j];
            float hn = (o + sk[j] * xa[j]) * sym_siluf(xg[j]);
            HN[(size_t)b * ldh + n * dm + i] = hn;
            sym_put_x(xs, B, I, b, n * dm + i, hn);
        }
    }
}

int sym_mlstm_out(cudaStream_t s, const float *HP, const float *SC, int ldsc, const float *on_w, const float *on_b,
                  const float *skip, const float *XA, int ldxa, const float *XG, int ldxg, float *HN, int ldh, int I,
                  int NH, int B, sym_xsplit xs) {
    int dm = I / NH;
    dim3 grid(NH, B);
#define L_(E)                                                                                                  \
    sym_launch(k_mlstm_out<E>, dim3(grid), dim3(NT), s, HP, SC, ldsc, on_w, on_b, skip, XA, ldxa, XG, ldxg, HN, ldh, I, \
               dm, B, xs)
    SYM_EPT_SWITCH(dm, L_)
#undef L_
    return 0;
}

int sym_xlstm_bufs_alloc(sym_xlstm_bufs *b, const sym_model_config *cf, int Bm, sym_allocs *al, sym_err *e) {
    const size_t H = (size_t)cf->hidden, I = 2 * H;
    return sym_allocs_n(al, &b->gates_in, Bm * 8 * H, e) || sym_allocs_n(al, &b->m_in, Bm * H, e) ||
                   sym_allocs_n(al, &b->xa, Bm * I, e) || sym_allocs_n(al, &b->qkv, Bm * 3 * I, e) ||
                   sym_allocs_n(al, &b->gate_sc, Bm * 4 * (size_t)cf->heads, e) ||
                   sym_allocs_n(al, &b->readout_parts, SYM_MLSTM_SPLITS * Bm * I, e) ||
                   sym_allocs_n(al, &b->hn, Bm * I, e) || sym_allocs_n(al, &b->block_out, Bm * I, e)
               ? -1
               : 0;
}

/* The sLSTM, once per place in the rows' runs: its recurrent gates read
 * the previous row's output, so with runs (rn.pass) each pass's kernels
 * take their rows only; the gate layer runs over all rows, and the rows
 * of other passes come out unused. With runs the mLSTM's input gets its
 * own split (the passes' entries write the gate layer's terms in the same
 * buffer). Leaves block_out = s_out, m_in = the mLSTM's input. */
static int slstm(const sym_tower_step *st, const sym_dlayer *d, const sym_block_state *bs, const sym_tower_bufs *b,
                 sym_runs rn) {
    const sym_xlstm_dlayer *x = &d->x;
    const int H = st->cf->hidden, I = 2 * H, NS = sym_cfg_slstm_heads(st->cf), B = st->B;
    const sym_xsplit none = {NULL, NULL}, gates_in = sym_planes(st, &x->s_gates);
    int bad = 0;
    for (rn.pass = 0; rn.pass < rn.max; rn.pass++) {
        sym_keep_first(&bad, sym_slstm_in(st->s, b->u, H, b->a, H, d->norm1, FLT_EPSILON, b->x.gates_in, 8 * H, H / NS,
                                          x->s_norm, st->pool, st->numel, st->slots, rn, bs->s_conv, x->s_cw, x->s_cb,
                                          bs->s_y, H, B, gates_in));
        sym_keep_first(&bad, sym_gemv(st->s, st->ws, &x->s_gates, b->x.gates_in, 8 * H, b->proj, st->ldp, B,
                                      sym_xsplit_flag(gates_in)));
        sym_keep_first(&bad, sym_slstm_out(st->s, b->proj, st->ldp, st->pool, st->numel, st->slots, rn, bs->s_c,
                                           bs->s_n, bs->s_m, bs->s_y, x->s_gn_w, x->s_gn_b, b->a, H, b->x.block_out, I,
                                           x->m_norm, b->x.m_in, H, H, NS, B,
                                           rn.max > 1 ? none : sym_planes(st, &x->m_xg)));
    }
    return bad;
}

/* The sLSTM (proj: its gates [i f z o]), then the mLSTM (proj: [x | gate]
 * from m_in), whose output joins the sLSTM's in block_out; then u +=
 * final_norm(block_out) and a = norm2(u) in one kernel. */
int sym_xlstm_layer(const sym_tower_step *st, const sym_dlayer *d, const sym_block_state *bs,
                    const sym_tower_bufs *b) {
    const sym_xlstm_dlayer *x = &d->x;
    const sym_xlstm_bufs *m = &b->x;
    const int H = st->cf->hidden, I = 2 * H, NH = st->cf->heads, B = st->B, ldp = st->ldp;
    cudaStream_t s = st->s;
    float *pool = st->pool;
    const size_t ne = st->numel;
    const int *sl = st->slots;
    const sym_runs rn = st->rn;
    int bad = slstm(st, d, bs, b, rn);
    const sym_xsplit down_in = sym_planes(st, &x->m_down);
    sym_keep_first(&bad, sym_gemv(s, st->ws, &x->m_xg, m->m_in, H, b->proj, ldp, B,
                                  rn.max > 1 ? 0 : sym_xsplit_flag(sym_planes(st, &x->m_xg))));
    sym_mlstm_in(s, b->proj, ldp, pool, ne, sl, rn, bs->m_conv, x->m_cw, x->m_cb, x->m_q, x->m_k, x->m_v, m->xa, I,
                 m->qkv, 3 * I, I, B);
    sym_mlstm_gate(s, &x->m_gates, m->qkv, 3 * I, pool, ne, sl, rn, bs->m_n, bs->m_m, m->gate_sc, 4 * NH, I, NH, B);
    const sym_mat_loc C = {bs->m_C, bs->m_C_exp, st->mat};
    sym_mlstm_cell(s, m->qkv, 3 * I, m->gate_sc, 4 * NH, pool, ne, sl, rn, st->pad_slot, C, m->readout_parts, I, NH, B,
                   st->state_prio);
    sym_keep_first(&bad, sym_mlstm_out(s, m->readout_parts, m->gate_sc, 4 * NH, x->m_on_w, x->m_on_b, x->m_skip, m->xa,
                                       I, b->proj + I, ldp, m->hn, I, I, NH, B, down_in));
    sym_keep_first(&bad, sym_gemv(s, st->ws, &x->m_down, m->hn, I, m->block_out, I, B,
                                  GEMV_ACC | sym_xsplit_flag(down_in)));
    sym_keep_first(&bad, sym_ln_add_rms(s, m->block_out, I, b->u, H, x->final_norm, b->a, H, d->norm2, FLT_EPSILON, B,
                                        H, sym_planes(st, &d->fc1)));
    sym_keep_first(&bad, sym_layer_ffn(st, d, b));
    return bad;
}
