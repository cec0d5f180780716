/* The CUDA engine behind the backend API: device weights (per-tower fp32 or
 * bf16, projections that read the same input concatenated into one matrix),
 * an fp32 state pool stepped in place through per-row slot indices, the four
 * towers enqueued on four streams forked/joined inside one CUDA graph per
 * batch-size bucket (padded rows point at a scratch slot past the real
 * ones), replayed with only the input rows and slot indices changed. */
#include "gv_common.cuh"

#include <cuda_profiler_api.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "kernels/cuda_backend.h"
#include "kernels/synthetic_init.h"
}

typedef struct {
    const float *norm1, *norm2;
    sym_dlin fc1, fc2;
    /* xLSTM */
    const float *s_norm, *s_cw, *s_cb, *s_gn_w, *s_gn_b, *m_norm, *m_cw, *m_cb, *m_q, *m_k, *m_v, *m_on_w, *m_on_b,
        *m_skip, *final_norm;
    sym_dlin s_gates, m_xg, m_gates, m_down;
    /* Mamba2: proj = [input; z; b; c; dt] */
    sym_dlin mb_proj, mb_out;
    const float *mb_cx_w, *mb_cx_b, *mb_cb_w, *mb_cb_b, *mb_cc_w, *mb_cc_b, *mb_a, *mb_d, *mb_norm;
    /* RetNet: [q; k; v; g] */
    sym_dlin rt_qkvg, rt_out;
    const float *rt_decay, *rt_angle;
    /* Hawk: [gate; rec], [ig; rg] */
    sym_dlin hk_gr, hk_igrg, hk_out;
    const float *hk_cw, *hk_cb, *hk_a;
} dblock;

typedef struct {
    /* b2: Mamba2's [b | c] after their convs (2 x 128 wide) or Hawk's
     * [ig | rg] (2H wide), rows ldb2 apart (cuda_backend) */
    float *h1, *u, *a, *pr, *b1, *b2, *b3, *b4, *b5, *b6, *g2;
    float *hp; /* xLSTM: the mLSTM readout's partial sums [SYM_MLSTM_SPLITS][B][I] */
    float *sg; /* xLSTM: the sLSTM gates' input [B][4][NS][2 H/NS] (mk_slstm_gates) */
} tbuf;

#define N_BUCKETS 64

typedef struct {
    sym_backend base;
    int device;
    cudaStream_t s, ts[SYM_TOWERS];
    cudaEvent_t ev_fork, ev_join[SYM_TOWERS];
    sym_dlin up[SYM_TOWERS], down[SYM_TOWERS], outp;
    dblock *blk[SYM_TOWERS];
    float *pool, *init_slot;
    size_t numel;
    int scratch_slot;
    tbuf tb[SYM_TOWERS];
    sym_gemm_ws ws[SYM_TOWERS];
    int ldW1;
    int ldb2; /* tbuf.b2's row stride: max(2H, 2 x 128), so Mamba2's c never runs into the next row's b */
    /* one pinned input block [slots | runs' lengths (max_batch each, padded) |
     * feature rows] and its device twin, so a step's input is a single copy */
    void *h_in, *d_in;
    size_t feat_at;
    float *d_feat, *d_pred, *h_feat, *h_pred;
    int *d_slots, *h_slots, *d_rlen, *h_rlen; /* rlen: sym_runs.len */
    int tower_mask; /* towers a step computes (set_towers), 15 = all */
    int node_prio;  /* launch priorities configured (sym_prio_state, tower_prio_levels) */
    int buckets[N_BUCKETS], n_buckets;
    cudaGraphExec_t graphs[N_BUCKETS][SYM_RUN_MAX]; /* [bucket][longest run - 1] */
    void **allocs; /* every device allocation, freed at destroy (a few per layer: grows with the depth) */
    int n_allocs, cap_allocs;
    size_t weight_bytes;
} cuda_backend;

/* env=a,b,c,d: one integer per tower, in tower order, into v (entries
 * the list leaves out keep their value). Returns 1 when env is set. */
static int env_per_tower(const char *env, int v[SYM_TOWERS]) {
    const char *p = getenv(env);
    if (!p || !*p) return 0;
    for (int t = 0; t < SYM_TOWERS && *p; t++) {
        v[t] = atoi(p);
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
    }
    return 1;
}

/* SYM_GV_PRIO_TOWERS=a,b,c,d: the towers' streams' priority levels, in
 * tower order (sym_prio_from_level: 0 = the device's highest). Returns 1
 * and fills lev when set; otherwise lev is all -1 (default priority). */
static int tower_prio_levels(int lev[SYM_TOWERS]) {
    for (int t = 0; t < SYM_TOWERS; t++) lev[t] = -1;
    return env_per_tower("SYM_GV_PRIO_TOWERS", lev);
}

/* SYM_GV_CHAIN_DELAY_US=a,b,c,d (measurement): after each of its layers,
 * a tower's stream waits that many microseconds on one block
 * (k_chain_delay). How much a step grows with one tower's chain made
 * longer says whether that chain is what the step waits for. */
__global__ void k_chain_delay(long long ns) {
    SYM_PDL_WAIT();
    long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    while (t - t0 < ns);
}

static int tower_chain_delay_us(int t) {
    static int us[SYM_TOWERS] = {-1};
    if (us[0] < 0) {
        for (int i = 0; i < SYM_TOWERS; i++) us[i] = 0;
        env_per_tower("SYM_GV_CHAIN_DELAY_US", us);
    }
    return us[t] > 0 ? us[t] : 0;
}

/* Each tower's share of the SMs (%) for its bf16 wgmma layers' grids. The
 * xLSTM tower has the most layer bytes; the other three leave it more
 * room with a fifth of the SMs (session 7, H100, bf16 / mixed B = 39:
 * 6.71 / 7.27 ms with half for all, 6.62 / 7.21 with a third for the other
 * three, 6.58 / 7.18 with a fifth; 6.81 / 7.37 with all the SMs for the
 * xLSTM tower). SYM_GV_WG_GRID_PCT_TOWERS=a,b,c,d (tower order) or
 * SYM_GV_WG_GRID_PCT=p (every tower) set others, for measurement. */
static const int tower_grid_pct_default[SYM_TOWERS] = {50, 20, 20, 20};
static void tower_grid_pcts(int pct[SYM_TOWERS]) {
    const char *all = getenv("SYM_GV_WG_GRID_PCT");
    for (int t = 0; t < SYM_TOWERS; t++)
        pct[t] = all && atoi(all) > 0 && atoi(all) <= 100 ? atoi(all) : tower_grid_pct_default[t];
    int v[SYM_TOWERS] = {0};
    env_per_tower("SYM_GV_WG_GRID_PCT_TOWERS", v);
    for (int t = 0; t < SYM_TOWERS; t++)
        if (v[t] > 0 && v[t] <= 100) pct[t] = v[t];
}

static int dalloc(cuda_backend *c, void **p, size_t bytes, sym_err *e) {
    if (c->n_allocs == c->cap_allocs) {
        int cap = c->cap_allocs ? 2 * c->cap_allocs : 256;
        void **a = (void **)realloc(c->allocs, (size_t)cap * sizeof *a);
        if (!a) return sym_fail(e, "out of memory");
        c->allocs = a, c->cap_allocs = cap;
    }
    CUDA_CHECK(cudaMalloc(p, bytes ? bytes : 16));
    c->allocs[c->n_allocs++] = *p;
    return 0;
}

/* ---------------- weights ---------------- */

typedef struct {
    cuda_backend *c;
    const sym_weights *wd; /* bound to the full fp32 device arena */
    float *arena;
    char *consumed; /* per spec: moved into a matrix, not needed in the compact arena */
} builder;

static void mark(builder *bd, const float *p) {
    if (!p || p < bd->arena || p >= bd->arena + bd->wd->arena_floats) return; /* not the arena's (a built matrix) */
    size_t off = (size_t)(p - bd->arena);
    for (int i = 0; i < bd->wd->n_specs; i++)
        if (bd->wd->specs[i].offset == off) bd->consumed[i] = 1;
}

/* rows of parts (each [out_k, in] with optional bias) stacked into one matrix */
static int mk(builder *bd, const float *const *w, const float *const *b, const int *rows, int n, int in, int blk_rows,
              int xwrap, int bf16, sym_dlin *L, sym_err *e) {
    cuda_backend *c = bd->c;
    int out = 0, any_bias = 0;
    for (int k = 0; k < n; k++) out += rows[k], any_bias |= b[k] != NULL;
    size_t es = bf16 ? 2 : 4;
    void *W;
    if (dalloc(c, &W, (size_t)out * in * es, e)) return -1;
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        size_t cnt = (size_t)rows[k] * in;
        if (bf16) sym_f32_to_bf16_dev(c->s, w[k], (__nv_bfloat16 *)W + at, cnt);
        else CUDA_CHECK(cudaMemcpyAsync((float *)W + at, w[k], cnt * 4, cudaMemcpyDeviceToDevice, c->s));
        CUDA_CHECK(cudaGetLastError());
        at += cnt;
        mark(bd, w[k]);
        mark(bd, b[k]);
    }
    c->weight_bytes += (size_t)out * in * es;
    float *B = NULL;
    if (any_bias) {
        if (dalloc(c, (void **)&B, (size_t)out * 4, e)) return -1;
        CUDA_CHECK(cudaMemsetAsync(B, 0, (size_t)out * 4, c->s));
        int r = 0;
        for (int k = 0; k < n; k++) {
            if (b[k]) CUDA_CHECK(cudaMemcpyAsync(B + r, b[k], (size_t)rows[k] * 4, cudaMemcpyDeviceToDevice, c->s));
            r += rows[k];
        }
        c->weight_bytes += (size_t)out * 4;
    }
    L->w = W, L->b = B, L->out = out, L->in = in, L->blk_rows = blk_rows ? blk_rows : out, L->xwrap = xwrap;
    L->bf16 = bf16;
    return 0;
}

static int mk_lin(builder *bd, const sym_linear *const *p, int n, int bf16, sym_dlin *L, sym_err *e) {
    const float *w[8], *b[8];
    int rows[8];
    for (int k = 0; k < n; k++) w[k] = p[k]->w, b[k] = p[k]->b, rows[k] = p[k]->out;
    return mk(bd, w, b, rows, n, p[0]->in, 0, 1, bf16, L, e);
}

static int mk_blk(builder *bd, const sym_blocklinear *const *p, int n, int bf16, sym_dlin *L, sym_err *e) {
    const float *w[8], *b[8];
    int rows[8];
    for (int k = 0; k < n; k++) w[k] = p[k]->w, b[k] = p[k]->b, rows[k] = p[k]->nb * p[k]->bs;
    return mk(bd, w, b, rows, n, p[0]->bs, p[0]->bs, p[0]->nb, bf16, L, e);
}

/* The sLSTM's eight block-diagonal layers as one: gate g's head h reads
 * [x_g(h) | y_prev(h)] (x = xa for i and f, xn for z and o) through
 * [W_in_g(h) | W_st_g(h)], bias b_st_g. Rows [i f z o] x H as before; the
 * input is the row [g][h][2 bs] that the sLSTM entry kernel writes. One
 * launch (or one batched GEMM) instead of three (or eight). */
static int mk_slstm_gates(builder *bd, const sym_xlstm_weights *x, int bf16, sym_dlin *L, sym_err *e) {
    cuda_backend *c = bd->c;
    const sym_blocklinear *in[4] = {&x->s_ig_in, &x->s_fg_in, &x->s_zg_in, &x->s_og_in},
                          *st[4] = {&x->s_ig_st, &x->s_fg_st, &x->s_zg_st, &x->s_og_st};
    const int nb = in[0]->nb, bs = in[0]->bs, H = nb * bs;
    float *w = NULL, *b = NULL;
    cudaError_t ce = cudaMalloc((void **)&w, (size_t)4 * H * 2 * bs * 4);
    if (ce == cudaSuccess) ce = cudaMalloc((void **)&b, (size_t)4 * H * 4);
    if (ce == cudaSuccess) ce = cudaMemsetAsync(b, 0, (size_t)4 * H * 4, c->s);
    for (int g = 0; g < 4 && ce == cudaSuccess; g++) {
        float *dst = w + (size_t)g * H * 2 * bs;
        ce = cudaMemcpy2DAsync(dst, 2 * bs * 4, in[g]->w, bs * 4, bs * 4, H, cudaMemcpyDeviceToDevice, c->s);
        if (ce == cudaSuccess)
            ce = cudaMemcpy2DAsync(dst + bs, 2 * bs * 4, st[g]->w, bs * 4, bs * 4, H, cudaMemcpyDeviceToDevice, c->s);
        if (ce == cudaSuccess && st[g]->b)
            ce = cudaMemcpyAsync(b + (size_t)g * H, st[g]->b, (size_t)H * 4, cudaMemcpyDeviceToDevice, c->s);
        mark(bd, in[g]->w), mark(bd, in[g]->b), mark(bd, st[g]->w), mark(bd, st[g]->b);
    }
    int rc = -1;
    if (ce != cudaSuccess) {
        sym_fail(e, "building the sLSTM gate weights: %s", cudaGetErrorString(ce));
    } else {
        const float *wp[1] = {w}, *bp[1] = {b};
        int rows[1] = {4 * H};
        rc = mk(bd, wp, bp, rows, 1, 2 * bs, bs, 4 * nb, bf16, L, e);
        /* mk's copies read w and b: done before they are freed */
        ce = cudaStreamSynchronize(c->s);
        if (!rc && ce != cudaSuccess) rc = sym_fail(e, "building the sLSTM gate weights: %s", cudaGetErrorString(ce));
    }
    cudaFree(w);
    cudaFree(b);
    return rc;
}

/* Index of the spec whose data starts at p (p bound into arena). */
static int spec_of(const sym_weights *wd, const float *p, const float *arena) {
    size_t off = (size_t)(p - arena);
    for (int i = 0; i < wd->n_specs; i++)
        if (wd->specs[i].offset == off) return i;
    return 0; /* unreachable: every bound field is a spec */
}

static int build_model(cuda_backend *c, sym_weights *wd, float *arena, const sym_precision prec[SYM_TOWERS],
                       sym_err *e) {
    const sym_model_config *cf = &wd->cfg;
    int L = cf->depth;
    builder bd = {c, wd, arena, (char *)calloc((size_t)wd->n_specs, 1)};
    if (!bd.consumed) return sym_fail(e, "out of memory");
    int rc = -1;
    /* bf16 towers: only the matrices (everything mk() stores) are rounded,
     * by the bf16 conversion itself; vectors (biases, norms, conv, decay,
     * angle, Hawk a, Mamba a/d, the 4x4 mLSTM blocks) stay exact fp32: they
     * cost no bandwidth, and bf16 would round RetNet's decay and Hawk's a
     * (within 2^-9 of 1) to 1.0. sym_weights_round_bf16() is
     * the host mirror for reference runs. */
    for (int t = 0; t < SYM_TOWERS; t++) {
        int bf = prec[t] == SYM_PREC_BF16;
        const sym_tower_weights *tw = &wd->towers[t];
        const sym_linear *up = &tw->up, *down = &tw->down;
        if (mk_lin(&bd, &up, 1, bf, &c->up[t], e) || mk_lin(&bd, &down, 1, bf, &c->down[t], e)) goto out;
        c->blk[t] = (dblock *)calloc((size_t)L, sizeof(dblock));
        if (!c->blk[t]) { sym_fail(e, "out of memory"); goto out; }
        for (int l = 0; l < L; l++) {
            const sym_block_weights *bw = &tw->blocks[l];
            dblock *d = &c->blk[t][l];
            const sym_linear *f1 = &bw->fc1, *f2 = &bw->fc2;
            if (mk_lin(&bd, &f1, 1, bf, &d->fc1, e) || mk_lin(&bd, &f2, 1, bf, &d->fc2, e)) goto out;
            if (t == SYM_TOWER_XLSTM) {
                const sym_xlstm_weights *x = &bw->xlstm;
                const sym_linear *xg[2] = {&x->m_x, &x->m_gate}, *gates[2] = {&x->m_igate, &x->m_fgate},
                                 *dn = &x->m_down;
                if (mk_slstm_gates(&bd, x, bf, &d->s_gates, e) || mk_lin(&bd, xg, 2, bf, &d->m_xg, e) ||
                    mk_lin(&bd, gates, 2, bf, &d->m_gates, e) || mk_lin(&bd, &dn, 1, bf, &d->m_down, e))
                    goto out;
            } else if (t == SYM_TOWER_MAMBA2) {
                const sym_mamba2_weights *m = &bw->mamba2;
                const sym_linear *pj[5] = {&m->in_proj, &m->z_proj, &m->b_proj, &m->c_proj, &m->dt_proj},
                                 *op = &m->out_proj;
                if (mk_lin(&bd, pj, 5, bf, &d->mb_proj, e) || mk_lin(&bd, &op, 1, bf, &d->mb_out, e)) goto out;
            } else if (t == SYM_TOWER_RETNET) {
                const sym_retnet_weights *r = &bw->retnet;
                const sym_linear *pj[4] = {&r->q, &r->k, &r->v, &r->g}, *op = &r->out;
                if (mk_lin(&bd, pj, 4, bf, &d->rt_qkvg, e) || mk_lin(&bd, &op, 1, bf, &d->rt_out, e)) goto out;
            } else {
                const sym_hawk_weights *h = &bw->hawk;
                const sym_linear *gr[2] = {&h->gate, &h->rec}, *op = &h->out;
                const sym_blocklinear *ir[2] = {&h->ig, &h->rg};
                if (mk_lin(&bd, gr, 2, bf, &d->hk_gr, e) || mk_blk(&bd, ir, 2, bf, &d->hk_igrg, e) ||
                    mk_lin(&bd, &op, 1, bf, &d->hk_out, e))
                    goto out;
            }
        }
    }
    {
        const sym_linear *op = &wd->out_proj;
        if (mk_lin(&bd, &op, 1, 0, &c->outp, e)) goto out;
    }
    {
        /* compact arena of everything not moved into a matrix */
        size_t n_small = 0;
        for (int i = 0; i < wd->n_specs; i++)
            if (!bd.consumed[i]) n_small += ((size_t)wd->specs[i].numel + 15) & ~(size_t)15;
        float *sa;
        if (dalloc(c, (void **)&sa, n_small * 4, e)) goto out;
        c->weight_bytes += n_small * 4;
        size_t at = 0;
        sym_tensor_spec *specs = (sym_tensor_spec *)malloc((size_t)wd->n_specs * sizeof *specs);
        if (!specs) { sym_fail(e, "out of memory"); goto out; }
        memcpy(specs, wd->specs, (size_t)wd->n_specs * sizeof *specs);
        for (int i = 0; i < wd->n_specs; i++) {
            if (bd.consumed[i]) { specs[i].offset = 0; continue; }
            cudaError_t ce = cudaMemcpyAsync(sa + at, arena + wd->specs[i].offset, (size_t)specs[i].numel * 4,
                                             cudaMemcpyDeviceToDevice, c->s);
            if (ce != cudaSuccess) { free(specs); sym_fail(e, "copy small tensor: %s", cudaGetErrorString(ce)); goto out; }
            specs[i].offset = at;
            at += ((size_t)specs[i].numel + 15) & ~(size_t)15;
        }
        /* Map each small field from its full-arena pointer to the compact arena. */
#define SMALL(p) ((p) ? sa + specs[spec_of(wd, (p), arena)].offset : (const float *)NULL)
        for (int t = 0; t < SYM_TOWERS; t++)
            for (int l = 0; l < L; l++) {
                const sym_block_weights *bw = &wd->towers[t].blocks[l];
                dblock *d = &c->blk[t][l];
                d->norm1 = SMALL(bw->norm1.w);
                d->norm2 = SMALL(bw->norm2.w);
                if (t == SYM_TOWER_XLSTM) {
                    const sym_xlstm_weights *x = &bw->xlstm;
                    d->s_norm = SMALL(x->s_norm.w), d->s_cw = SMALL(x->s_conv.w), d->s_cb = SMALL(x->s_conv.b);
                    d->s_gn_w = SMALL(x->s_gn.w), d->s_gn_b = SMALL(x->s_gn.b), d->m_norm = SMALL(x->m_norm.w);
                    d->m_cw = SMALL(x->m_conv.w), d->m_cb = SMALL(x->m_conv.b), d->m_q = SMALL(x->m_q.w);
                    d->m_k = SMALL(x->m_k.w), d->m_v = SMALL(x->m_v.w), d->m_on_w = SMALL(x->m_outnorm.w);
                    d->m_on_b = SMALL(x->m_outnorm.b), d->m_skip = SMALL(x->m_skip);
                    d->final_norm = SMALL(x->final_norm.w);
                } else if (t == SYM_TOWER_MAMBA2) {
                    const sym_mamba2_weights *m = &bw->mamba2;
                    d->mb_cx_w = SMALL(m->conv_x.w), d->mb_cx_b = SMALL(m->conv_x.b);
                    d->mb_cb_w = SMALL(m->conv_b.w), d->mb_cb_b = SMALL(m->conv_b.b);
                    d->mb_cc_w = SMALL(m->conv_c.w), d->mb_cc_b = SMALL(m->conv_c.b);
                    d->mb_a = SMALL(m->a), d->mb_d = SMALL(m->d), d->mb_norm = SMALL(m->norm.w);
                } else if (t == SYM_TOWER_RETNET) {
                    d->rt_decay = SMALL(bw->retnet.decay), d->rt_angle = SMALL(bw->retnet.angle);
                } else {
                    const sym_hawk_weights *h = &bw->hawk;
                    d->hk_cw = SMALL(h->conv.w), d->hk_cb = SMALL(h->conv.b), d->hk_a = SMALL(h->a);
                }
            }
#undef SMALL
        free(specs);
    }
    {
        cudaError_t ce = cudaStreamSynchronize(c->s);
        if (ce != cudaSuccess) { sym_fail(e, "building device weights: %s", cudaGetErrorString(ce)); goto out; }
    }
    rc = 0;
out:
    free(bd.consumed);
    return rc;
}

/* ---------------- one step, enqueued ---------------- */

#define LD4(x) (((x) + 7) & ~7)

#define G(...)                                                                                                 \
    do {                                                                                                       \
        int st_ = sym_gemv(s, &c->ws[t], __VA_ARGS__);                                                         \
        if (st_ && !bad) bad = st_;                                                                            \
    } while (0)
/* a row kernel: -1 when the row is too wide (no valid config has one: gv_common.cuh, SYM_ROW_MAX) */
#define K(call)                                                                                                \
    do {                                                                                                       \
        if ((call) && !bad) bad = -1;                                                                          \
    } while (0)

/* Where the kernel producing layer L's input writes its split (bf16 or
 * tf32 terms, or none; SYM_GV_NO_PRESPLIT=1 leaves every split to the
 * split kernels, for comparison). PS(L) is the matching sym_gemv flag. */
static sym_xsplit presplit(cuda_backend *c, int t, const sym_dlin *L, int B) {
    static int off = -1;
    if (off < 0) {
        const char *v = getenv("SYM_GV_NO_PRESPLIT");
        off = v && *v && *v != '0';
    }
    const sym_xsplit none = {NULL, NULL};
    return off ? none : sym_gemv_planes(&c->ws[t], L, B);
}
#define XS(L) presplit(c, t, (L), B)
#define PS(L) (XS(L).bf || XS(L).tf ? GEMV_X_SPLIT : 0)

/* Enqueues tower t for B rows whose longest run (sym_runs) is kmax on its
 * stream; returns a cuBLAS status, or -1. */
static int enqueue_tower(cuda_backend *c, int t, int B, int kmax) {
    int bad = 0;
    const sym_model_config *cf = &c->base.cfg;
    const sym_state_layout *ly = &c->base.layout;
    cudaStream_t s = c->ts[t];
    const int H = cf->hidden, P = cf->proj, F = cf->features, I = 2 * H, NH = cf->heads;
    const int NS = sym_cfg_slstm_heads(cf), NM = sym_cfg_mamba_heads(cf), W1 = c->ldW1, LB2 = c->ldb2;
    const int *sl = c->d_slots;
    sym_runs rn = {c->d_rlen, kmax, 0};
    float *pool = c->pool;
    size_t ne = c->numel;
    tbuf *b = &c->tb[t];
    G(&c->up[t], c->d_feat, F, b->h1, P, B, GEMV_RELU);
    G(&c->down[t], b->h1, P, b->u, H, B, 0);
    for (int l = 0; l < cf->depth; l++) {
        const dblock *d = &c->blk[t][l];
        const sym_block_state *bs = &ly->blocks[l];
        /* xLSTM: norm1 is part of the sLSTM's entry kernel (below) */
        /* the layer that reads norm1's output */
        const sym_dlin *in1 = t == SYM_TOWER_MAMBA2   ? &d->mb_proj
                              : t == SYM_TOWER_RETNET ? &d->rt_qkvg
                              : t == SYM_TOWER_HAWK   ? &d->hk_gr
                                                      : NULL;
        if (t != SYM_TOWER_XLSTM) K(sym_rmsnorm(s, b->u, H, b->a, H, B, H, FLT_EPSILON, d->norm1, XS(in1)));
        if (t == SYM_TOWER_XLSTM) {
            /* sLSTM: sg = the gates' input [g][head][x_g | yprev], pr = gates [i f z o], b5 = s_out. Its
             * gates read the previous row's output: with runs, once per place in a run (rn.pass), each
             * pass's kernels taking their rows only; the gate layer runs over all rows, and the rows
             * of other passes come out unused. The mLSTM's split input then comes from its own split
             * (the passes' entries write the gate layer's terms in the same buffer). */
            const sym_xsplit none = {NULL, NULL};
            for (rn.pass = 0; rn.pass < kmax; rn.pass++) {
                K(sym_slstm_in(s, b->u, H, b->a, H, d->norm1, FLT_EPSILON, b->sg, 8 * H, H / NS, d->s_norm, pool, ne,
                               sl, rn, bs->s_conv, d->s_cw, d->s_cb, bs->s_y, H, B, XS(&d->s_gates)));
                G(&d->s_gates, b->sg, 8 * H, b->pr, W1, B, PS(&d->s_gates));
                /* mLSTM: b6 = xn, pr = [xm | xg], b3 = xa, b1 = qkv, g2 = (ig fg den), hp = partial readouts,
                 * b4 = hn */
                K(sym_slstm_out(s, b->pr, W1, pool, ne, sl, rn, bs->s_c, bs->s_n, bs->s_m, bs->s_y, d->s_gn_w,
                                d->s_gn_b, b->a, H, b->b5, I, d->m_norm, b->b6, H, H, NS, B,
                                kmax > 1 ? none : XS(&d->m_xg)));
            }
            G(&d->m_xg, b->b6, H, b->pr, W1, B, kmax > 1 ? 0 : PS(&d->m_xg));
            sym_mlstm_in(s, b->pr, W1, pool, ne, sl, rn, bs->m_conv, d->m_cw, d->m_cb, d->m_q, d->m_k, d->m_v, b->b3, I,
                         b->b1, 3 * I, I, B);
            sym_mlstm_gate(s, &d->m_gates, b->b1, 3 * I, pool, ne, sl, rn, bs->m_n, bs->m_m, b->g2, 4 * NH, I, NH, B);
            sym_mlstm_cell(s, b->b1, 3 * I, b->g2, 4 * NH, pool, ne, sl, rn, c->scratch_slot, bs->m_C, b->hp, I, NH,
                           B);
            K(sym_mlstm_out(s, b->hp, b->g2, 4 * NH, d->m_on_w, d->m_on_b, d->m_skip, b->b3, I, b->pr + I, W1, b->b4, I,
                            I, NH, B, XS(&d->m_down)));
            G(&d->m_down, b->b4, I, b->b5, I, B, GEMV_ACC | PS(&d->m_down));
            /* u += final_norm(b5), then the block's second norm: a = norm2(u) */
            K(sym_ln_add_rms(s, b->b5, I, b->u, H, d->final_norm, b->a, H, d->norm2, FLT_EPSILON, B, H, XS(&d->fc1)));
        } else if (t == SYM_TOWER_MAMBA2) {
            /* pr = [x | z | b | c | dt], b3 = xs, b2 = [b | c] after conv, b4 = y*silu(z), b5 = rmsnorm */
            G(&d->mb_proj, b->a, H, b->pr, W1, B, PS(in1));
            sym_dconv(s, b->pr, W1, b->b3, I, B, I, pool, ne, sl, rn, bs->mb_conv_x, d->mb_cx_w, d->mb_cx_b, 1);
            sym_dconv(s, b->pr + 2 * I, W1, b->b2, LB2, B, SYM_MAMBA_BC, pool, ne, sl, rn, bs->mb_conv_b, d->mb_cb_w,
                      d->mb_cb_b, 1);
            sym_dconv(s, b->pr + 2 * I + SYM_MAMBA_BC, W1, b->b2 + SYM_MAMBA_BC, LB2, B, SYM_MAMBA_BC, pool, ne, sl, rn,
                      bs->mb_conv_c, d->mb_cc_w, d->mb_cc_b, 1);
            sym_mamba_ssm(s, b->b3, I, b->b2, LB2, b->pr, W1, I, 2 * I + 2 * SYM_MAMBA_BC, d->mb_a, d->mb_d, pool, ne,
                          sl, rn, c->scratch_slot, bs->mb_h, b->b4, I, B, NM);
            K(sym_rmsnorm(s, b->b4, I, b->b5, I, B, I, 1e-5f, d->mb_norm, XS(&d->mb_out)));
            G(&d->mb_out, b->b5, I, b->u, H, B, GEMV_ACC | PS(&d->mb_out));
        } else if (t == SYM_TOWER_RETNET) {
            int hd = H / NH;
            G(&d->rt_qkvg, b->a, H, b->pr, W1, B, PS(in1));
            sym_retnet_rotary(s, b->pr, W1, H, hd, d->rt_angle, pool, ne, sl, rn, 1.0f / sqrtf((float)hd), B);
            sym_retnet_cell(s, b->pr, W1, H, NH, d->rt_decay, pool, ne, sl, rn, c->scratch_slot, bs->rt_S, b->b4, I,
                            B);
            sym_retnet_norm(s, b->b4, I, b->pr, W1, H, NH, d->rt_decay, pool, ne, sl, rn, bs->rt_scale, b->b5, I, B,
                            XS(&d->rt_out));
            G(&d->rt_out, b->b5, I, b->u, H, B, GEMV_ACC | PS(&d->rt_out));
        } else {
            /* pr = [gate | rec], b3 = r, b2 = [ig | rg], b5 = gelu(gate)*h */
            G(&d->hk_gr, b->a, H, b->pr, W1, B, PS(in1));
            sym_dconv(s, b->pr + H, W1, b->b3, I, B, H, pool, ne, sl, rn, bs->hk_conv, d->hk_cw, d->hk_cb, 0);
            G(&d->hk_igrg, b->b3, I, b->b2, LB2, B, 0);
            sym_hawk_cell(s, b->pr, W1, b->b3, I, b->b2, LB2, d->hk_a, pool, ne, sl, rn, bs->hk_h, b->b5, I, H, B);
            G(&d->hk_out, b->b5, I, b->u, H, B, GEMV_ACC);
        }
        if (t != SYM_TOWER_XLSTM) K(sym_rmsnorm(s, b->u, H, b->a, H, B, H, FLT_EPSILON, d->norm2, XS(&d->fc1)));
        /* fc1's epilogue splits its output for fc2 where both split */
        const int chain = XS(&d->fc1).bf && XS(&d->fc2).bf ? GEMV_SPLIT_OUT : 0;
        G(&d->fc1, b->a, H, b->h1, P, B, GEMV_RELU | PS(&d->fc1) | chain);
        G(&d->fc2, b->h1, P, b->u, H, B, GEMV_ACC | (chain ? GEMV_X_CHAIN : 0));
        if (tower_chain_delay_us(t)) sym_launch(k_chain_delay, dim3(1), dim3(32), s, 1000LL * tower_chain_delay_us(t));
    }
    G(&c->outp, b->u, H, c->d_pred + t, SYM_TOWERS, B, 0);
    return bad;
}
#undef G
#undef K
#undef XS
#undef PS

static int enqueue_step(cuda_backend *c, int B, int kmax, sym_err *e) {
    /* SYM_GV_TOWER_MASK (bench breakdown only: outputs of skipped towers are
     * stale) enqueues a subset of the towers. */
    const char *tm = getenv("SYM_GV_TOWER_MASK");
    int mask = c->tower_mask & (tm && *tm ? atoi(tm) : 15);
    CUDA_CHECK(cudaEventRecord(c->ev_fork, c->s));
    for (int t = 0; t < SYM_TOWERS; t++) {
        if (!(mask & (1 << t))) continue;
        CUDA_CHECK(cudaStreamWaitEvent(c->ts[t], c->ev_fork, 0));
        int st = enqueue_tower(c, t, B, kmax);
        if (st < 0) return sym_fail(e, "tower %d: a row wider than the row kernels take (%d floats)", t, SYM_ROW_MAX);
        if (st) return sym_fail(e, "cuBLAS call failed in tower %d: status %d", t, st);
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaEventRecord(c->ev_join[t], c->ts[t]));
        CUDA_CHECK(cudaStreamWaitEvent(c->s, c->ev_join[t], 0));
    }
    /* after every tower: RetNet read the old step count */
    const sym_runs rn = {c->d_rlen, kmax, 0};
    sym_step_count(c->s, c->pool, c->numel, c->d_slots, rn, B);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

static int bucket_index(const cuda_backend *c, int B) {
    for (int i = 0; i < c->n_buckets; i++)
        if (c->buckets[i] >= B) return i;
    return c->n_buckets - 1;
}

static int use_graphs(void) {
    const char *v = getenv("SYM_CUDA_NO_GRAPH");
    return !(v && *v && *v != '0');
}

/* The input block (slots, runs, then Bk feature rows) in, the predictions out. */
static int enqueue_step_io(cuda_backend *c, int Bk, int kmax, sym_err *e) {
    size_t in_bytes = c->feat_at + (size_t)Bk * c->base.cfg.features * sizeof(float);
    CUDA_CHECK(cudaMemcpyAsync(c->d_in, c->h_in, in_bytes, cudaMemcpyHostToDevice, c->s));
    if (enqueue_step(c, Bk, kmax, e)) return -1;
    CUDA_CHECK(cudaMemcpyAsync(c->h_pred, c->d_pred, (size_t)Bk * SYM_TOWERS * sizeof(float), cudaMemcpyDeviceToHost,
                               c->s));
    return 0;
}

/* Captures bucket bi's whole step for runs up to kmax rows (the input
 * copy from the pinned block, the four towers forked and joined, the step
 * counter, the output copy) into a graph: a step is then one launch.
 * Capturing records, it runs nothing. */
static int capture_bucket(cuda_backend *c, int bi, int kmax, sym_err *e) {
    cudaGraph_t g;
    CUDA_CHECK(cudaStreamBeginCapture(c->s, cudaStreamCaptureModeThreadLocal));
    int rc = enqueue_step_io(c, c->buckets[bi], kmax, e);
    cudaError_t ce = cudaStreamEndCapture(c->s, &g);
    if (rc) return -1;
    if (ce != cudaSuccess) return sym_fail(e, "capturing a step graph: %s", cudaGetErrorString(ce));
    /* kernel nodes hold the priority of the stream that captured them, or
     * their launch's; without this flag a graph runs at its launch
     * stream's priority alone */
    cudaGraphExec_t *x = &c->graphs[bi][kmax - 1];
    ce = cudaGraphInstantiate(x, g, c->node_prio ? cudaGraphInstantiateFlagUseNodePriority : 0);
    cudaGraphDestroy(g);
    if (ce != cudaSuccess) {
        *x = NULL;
        return sym_fail(e, "instantiating a step graph: %s", cudaGetErrorString(ce));
    }
    return 0;
}

/* One step of B rows whose runs' lengths are in h_rlen (longest kmax). */
static int run_step(cuda_backend *c, int B, int kmax, const int32_t *slots, const float *features, double *out,
                    sym_err *e) {
    CUDA_CHECK(cudaSetDevice(c->device));
    int bi = bucket_index(c, B), Bk = c->buckets[bi], F = c->base.cfg.features;
    for (int i = 0; i < Bk; i++) c->h_slots[i] = i < B ? slots[i] : c->scratch_slot;
    for (int i = B; i < Bk; i++) c->h_rlen[i] = 1; /* each padding row its own run */
    memcpy(c->h_feat, features, (size_t)B * F * sizeof(float));
    memset(c->h_feat + (size_t)B * F, 0, (size_t)(Bk - B) * F * sizeof(float));
    if (use_graphs()) {
        cudaGraphExec_t *x = &c->graphs[bi][kmax - 1];
        if (!*x && capture_bucket(c, bi, kmax, e)) return -1;
        CUDA_CHECK(cudaGraphLaunch(*x, c->s));
    } else if (enqueue_step_io(c, Bk, kmax, e)) {
        return -1;
    }
    CUDA_CHECK(cudaStreamSynchronize(c->s));
    for (int i = 0; i < B * SYM_TOWERS; i++)
        out[i] = c->tower_mask & (1 << (i % SYM_TOWERS)) ? (double)c->h_pred[i] : NAN;
    return 0;
}

static int cuda_step(sym_backend *bb, int B, const int32_t *slots, const float *features, double *out, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (sym_backend_check_batch(bb, B, slots, e)) return -1;
    for (int i = 0; i < B; i++) c->h_rlen[i] = 1;
    return run_step(c, B, 1, slots, features, out, e);
}

/* A batch with runs (sym_backend_step_runs): a slot's rows adjacent, at
 * most SYM_RUN_MAX of them; each run's first row gets its length. */
static int cuda_step_runs(sym_backend *bb, int B, const int32_t *slots, const float *features, double *out,
                          sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (B <= 0 || B > bb->max_batch) return sym_fail(e, "batch of %d rows (this backend takes 1..%d)", B, bb->max_batch);
    int kmax = 1;
    for (int i = 0, n; i < B; i += n) {
        if (slots[i] < 0 || slots[i] >= bb->n_slots)
            return sym_fail(e, "slot %d out of range 0..%d", (int)slots[i], bb->n_slots - 1);
        for (n = 1; i + n < B && slots[i + n] == slots[i]; n++) c->h_rlen[i + n] = 0;
        if (n > SYM_RUN_MAX) return sym_fail(e, "a run of %d rows of slot %d (at most %d)", n, (int)slots[i], SYM_RUN_MAX);
        for (int j = 0; j < i; j++)
            if (slots[j] == slots[i]) return sym_fail(e, "slot %d's rows are not together", (int)slots[i]);
        c->h_rlen[i] = n;
        kmax = n > kmax ? n : kmax;
    }
    return run_step(c, B, kmax, slots, features, out, e);
}

static int check_slot(cuda_backend *c, int32_t slot, sym_err *e) {
    if (slot < 0 || slot >= c->base.n_slots) return sym_fail(e, "slot %d out of range 0..%d", (int)slot, c->base.n_slots - 1);
    return 0;
}

static int cuda_reset(sym_backend *bb, int32_t slot, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (check_slot(c, slot, e)) return -1;
    CUDA_CHECK(cudaSetDevice(c->device));
    CUDA_CHECK(cudaMemcpyAsync(c->pool + (size_t)slot * c->numel, c->init_slot, c->numel * 4, cudaMemcpyDeviceToDevice, c->s));
    CUDA_CHECK(cudaStreamSynchronize(c->s));
    return 0;
}

static int cuda_export(sym_backend *bb, int32_t slot, void *dst, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (check_slot(c, slot, e)) return -1;
    CUDA_CHECK(cudaSetDevice(c->device));
    CUDA_CHECK(cudaMemcpy(dst, c->pool + (size_t)slot * c->numel, c->numel * 4, cudaMemcpyDeviceToHost));
    return 0;
}

static int cuda_import(sym_backend *bb, int32_t slot, const void *src, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (check_slot(c, slot, e)) return -1;
    CUDA_CHECK(cudaSetDevice(c->device));
    CUDA_CHECK(cudaMemcpy(c->pool + (size_t)slot * c->numel, src, c->numel * 4, cudaMemcpyHostToDevice));
    return 0;
}

static int cuda_copy(sym_backend *sb, int32_t ss, sym_backend *db, int32_t ds, sym_err *e) {
    cuda_backend *s = (cuda_backend *)sb, *d = (cuda_backend *)db;
    if (check_slot(s, ss, e) || check_slot(d, ds, e)) return -1;
    if (s->numel != d->numel) return sym_fail(e, "different state layouts");
    float *dp = d->pool + (size_t)ds * d->numel, *sp = s->pool + (size_t)ss * s->numel;
    /* On the destination's own stream, and waited for: a plain cudaMemcpy
     * between device buffers returns before the copy ends and runs on the
     * legacy stream, which the engine's non-blocking streams do not wait
     * for, so the destination's next step could read a half-copied slot.
     * The caller (the router, while both shards are parked) may be any
     * thread: set the device here. */
    CUDA_CHECK(cudaSetDevice(d->device));
    CUDA_CHECK(cudaMemcpyPeerAsync(dp, d->device, sp, s->device, s->numel * 4, d->s));
    CUDA_CHECK(cudaStreamSynchronize(d->s));
    return 0;
}

static void cuda_destroy(sym_backend *bb) {
    cuda_backend *c = (cuda_backend *)bb;
    if (!c) return;
    cudaSetDevice(c->device);
    cudaDeviceSynchronize();
    for (int i = 0; i < N_BUCKETS; i++)
        for (int k = 0; k < SYM_RUN_MAX; k++)
            if (c->graphs[i][k]) cudaGraphExecDestroy(c->graphs[i][k]);
    for (int i = 0; i < c->n_allocs; i++) cudaFree(c->allocs[i]);
    free(c->allocs);
    if (c->h_in) cudaFreeHost(c->h_in);
    if (c->h_pred) cudaFreeHost(c->h_pred);
    for (int t = 0; t < SYM_TOWERS; t++) {
        if (c->ws[t].h) cublasDestroy(c->ws[t].h);
        free(c->blk[t]);
        if (c->ts[t]) cudaStreamDestroy(c->ts[t]);
        if (c->ev_join[t]) cudaEventDestroy(c->ev_join[t]);
    }
    if (c->ev_fork) cudaEventDestroy(c->ev_fork);
    if (c->s) cudaStreamDestroy(c->s);
    sym_state_layout_free(&c->base.layout);
    free(c);
}

/* The graphs hold the towers they run: capture them again. */
static int cuda_set_towers(sym_backend *bb, int mask, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (mask == c->tower_mask) return 0;
    CUDA_CHECK(cudaSetDevice(c->device));
    c->tower_mask = mask;
    for (int bi = 0; bi < c->n_buckets; bi++) {
        for (int k = 0; k < SYM_RUN_MAX; k++) {
            if (c->graphs[bi][k]) CUDA_CHECK(cudaGraphExecDestroy(c->graphs[bi][k]));
            c->graphs[bi][k] = NULL;
        }
        if (use_graphs() && capture_bucket(c, bi, 1, e)) return -1; /* the run graphs when next needed */
    }
    return 0;
}

/* every bucket's graphs for runs of 2 to SYM_RUN_MAX rows, now: captured
 * when first needed, each cost a serving step tens of ms */
static int cuda_prepare_runs(sym_backend *bb, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (!use_graphs()) return 0;
    CUDA_CHECK(cudaSetDevice(c->device));
    for (int bi = 0; bi < c->n_buckets; bi++)
        for (int k = 2; k <= SYM_RUN_MAX && k <= c->buckets[bi]; k++)
            if (!c->graphs[bi][k - 1] && capture_bucket(c, bi, k, e)) return -1;
    return 0;
}

static const sym_backend_ops cuda_ops = {"cuda",      cuda_step,      cuda_reset,       cuda_export,
                                         cuda_import, cuda_copy,      cuda_destroy,     cuda_set_towers,
                                         cuda_step_runs, cuda_prepare_runs};

extern "C" int sym_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

/* Everything but the weights: streams, state pool, scratch buffers. */
static cuda_backend *setup(const sym_model_config *cfg, int device, int n_slots, int max_batch, sym_err *e) {
    if (n_slots <= 0 || max_batch <= 0) {
        sym_fail(e, "n_slots and max_batch must be positive");
        return NULL;
    }
    /* The shapes the engine takes are sym_model_config_validate's, the
     * CPU's too (sym_state_layout_init below): no rule of its own here. */
    cuda_backend *c = (cuda_backend *)calloc(1, sizeof *c);
    if (!c) {
        sym_fail(e, "out of memory");
        return NULL;
    }
    c->device = device;
    c->tower_mask = 15;
    c->base.ops = &cuda_ops;
    c->base.cfg = *cfg;
    c->base.n_slots = n_slots;
    c->base.max_batch = max_batch;
    c->base.max_run = SYM_RUN_MAX;
    c->base.state_elem_size = 4;
    if (sym_state_layout_init(&c->base.layout, cfg, e)) {
        free(c);
        return NULL;
    }
    c->numel = c->base.layout.numel;
    c->base.slot_bytes = c->numel * 4;
    c->scratch_slot = n_slots;
    int rc = [&]() -> int {
        CUDA_CHECK(cudaSetDevice(device));
        /* slot copies to and from shards on other GPUs go peer to peer */
        if (sym_cuda_enable_peers(device, e)) return -1;
        CUDA_CHECK(cudaStreamCreateWithFlags(&c->s, cudaStreamNonBlocking));
        CUDA_CHECK(cudaEventCreateWithFlags(&c->ev_fork, cudaEventDisableTiming));
        int lev[SYM_TOWERS];
        c->node_prio = tower_prio_levels(lev) || sym_prio_state() != SYM_PRIO_STREAM;
        for (int t = 0; t < SYM_TOWERS; t++) {
            if (lev[t] < 0)
                CUDA_CHECK(cudaStreamCreateWithFlags(&c->ts[t], cudaStreamNonBlocking));
            else
                CUDA_CHECK(cudaStreamCreateWithPriority(&c->ts[t], cudaStreamNonBlocking, sym_prio_from_level(lev[t])));
            CUDA_CHECK(cudaEventCreateWithFlags(&c->ev_join[t], cudaEventDisableTiming));
        }
        /* buckets: exact up to 8, then multiples of 8 */
        for (int b = 1; c->n_buckets < N_BUCKETS; b = b < 8 ? b + 1 : b + 8) {
            c->buckets[c->n_buckets++] = b < max_batch ? b : max_batch;
            if (b >= max_batch) break;
        }
        if (c->buckets[c->n_buckets - 1] < max_batch) return sym_fail(e, "max_batch %d too large", max_batch);
        int Bm = max_batch;
        size_t H = (size_t)cfg->hidden, P = (size_t)cfg->proj, I = 2 * H;
        c->ldW1 = LD4((int)(2 * I + 2 * SYM_MAMBA_BC + sym_cfg_mamba_heads(cfg)));
        c->ldb2 = (int)(2 * H > 2 * SYM_MAMBA_BC ? 2 * H : 2 * SYM_MAMBA_BC);
        for (int t = 0; t < SYM_TOWERS; t++) {
            tbuf *b = &c->tb[t];
            if (dalloc(c, (void **)&b->h1, Bm * P * 4, e) || dalloc(c, (void **)&b->u, Bm * H * 4, e) ||
                dalloc(c, (void **)&b->a, Bm * H * 4, e) || dalloc(c, (void **)&b->pr, Bm * (size_t)c->ldW1 * 4, e) ||
                dalloc(c, (void **)&b->b1, Bm * 3 * I * 4, e) || dalloc(c, (void **)&b->b2, Bm * (size_t)c->ldb2 * 4, e) ||
                dalloc(c, (void **)&b->b3, Bm * I * 4, e) || dalloc(c, (void **)&b->b4, Bm * I * 4, e) ||
                dalloc(c, (void **)&b->b5, Bm * I * 4, e) || dalloc(c, (void **)&b->b6, Bm * H * 4, e) ||
                dalloc(c, (void **)&b->g2, Bm * 4 * (size_t)cfg->heads * 4, e))
                return -1;
            if (t == SYM_TOWER_XLSTM && (dalloc(c, (void **)&b->hp, SYM_MLSTM_SPLITS * Bm * I * 4, e) ||
                                         dalloc(c, (void **)&b->sg, Bm * 8 * H * 4, e)))
                return -1;
        }
        const char *gm = getenv("SYM_GV_GEMM_MIN"), *bo = getenv("SYM_GV_BLK_OWN_MAX");
        const char *tmin = getenv("SYM_GV_TC_MIN"), *tmax = getenv("SYM_GV_TC_MAX");
        const char *fmin = getenv("SYM_GV_TF32_MIN"), *fmax = getenv("SYM_GV_TF32_MAX");
        const char *wmin = getenv("SYM_GV_WG_MIN"), *wmax = getenv("SYM_GV_WG_MAX");
        const char *w32min = getenv("SYM_GV_WG32_MIN"), *w32max = getenv("SYM_GV_WG32_MAX");
        int n_sm = 0, cc = 0, ccm = 0;
        CUDA_CHECK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, device));
        CUDA_CHECK(cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, device));
        CUDA_CHECK(cudaDeviceGetAttribute(&ccm, cudaDevAttrComputeCapabilityMinor, device));
        size_t max_in = 8 * H > P ? 8 * H : P, /* 8H: the sLSTM gates' input */ max_out = (size_t)c->ldW1 > P ? (size_t)c->ldW1 : P;
        if (max_in < (size_t)cfg->features) max_in = (size_t)cfg->features;
        int grid_pct[SYM_TOWERS];
        tower_grid_pcts(grid_pct);
        for (int t = 0; t < SYM_TOWERS; t++) {
            sym_gemm_ws *w = &c->ws[t];
            w->wg_grid_pct = grid_pct[t];
            w->gemm_min = gm && *gm ? atoi(gm) : 8; /* measured: cuBLAS wins from B = 8 */
            /* measured, mixed: own 4.17 vs cuBLAS 4.26 ms at B = 8, but
             * 10.45 vs 8.95 at B = 39 and 28.3 vs 22.1 at B = 128 */
            w->blk_own_max = bo && *bo ? atoi(bo) : 8;
            /* bf16 layers on the tensor-core kernel (sm_80+) where it wins,
             * measured (gv_gemv_tc.cu): B = 8 */
            w->tc_min = tmin && *tmin ? atoi(tmin) : 8;
            w->tc_max = tmax && *tmax ? atoi(tmax) : 8;
            /* fp32 layers on the 3xTF32 kernel (sm_80+) where it wins,
             * measured (gemm_tf32.cu): B = 8 to 48 */
            w->tf32_min = fmin && *fmin ? atoi(fmin) : 8;
            w->tf32_max = fmax && *fmax ? atoi(fmax) : 48;
            /* bf16 layers on the wgmma kernel (sm_90a code: a device of
             * compute capability 9.0 only) where it wins, measured
             * (gemm_wg.cu): B = 9 to 64 */
            w->wg_min = wmin && *wmin ? atoi(wmin) : 9;
            w->wg_max = wmax && *wmax ? atoi(wmax) : 64;
            /* fp32 layers on the wgmma 3xTF32 kernel (the same device),
             * ahead of the mma.sync one and cuBLAS, where it wins
             * (gemm_wg32.cu): B = 17 to 128 */
            w->wg32_min = w32min && *w32min ? atoi(w32min) : 17;
            w->wg32_max = w32max && *w32max ? atoi(w32max) : 128;
            w->n_sm = n_sm;
            w->wg_on = cc == 9 && ccm == 0;
            w->sk_cnt_n = sym_splitk_counters((int)max_out);
            if (cc >= 8) {
                if (dalloc(c, (void **)&w->sk_part, sym_splitk_part_floats(n_sm, (int)max_out) * 4, e) ||
                    dalloc(c, (void **)&w->sk_cnt, (size_t)w->sk_cnt_n * sizeof(int), e))
                    return -1;
                /* on c->s, which every step follows (setup syncs it below) */
                CUDA_CHECK(cudaMemsetAsync(w->sk_cnt, 0, (size_t)w->sk_cnt_n * sizeof(int), c->s));
            }
            if (cublasCreate(&w->h) != CUBLAS_STATUS_SUCCESS) return sym_fail(e, "cublasCreate failed");
            void *cws;
            if (dalloc(c, &cws, (size_t)32 << 20, e) || dalloc(c, (void **)&w->xs, 3 * (size_t)Bm * max_in * 2, e) ||
                dalloc(c, (void **)&w->xs2, 3 * (size_t)Bm * max_out * 2, e) ||
                dalloc(c, (void **)&w->y2, 3 * (size_t)Bm * max_out * 4, e) ||
                (w->wg_on && dalloc(c, (void **)&w->xs32, sym_gemm_wg32_xs_floats((int)max_in) * 4, e)))
                return -1;
            if (cublasSetStream(w->h, c->ts[t]) || cublasSetWorkspace(w->h, cws, (size_t)32 << 20) ||
                cublasSetMathMode(w->h, CUBLAS_DEFAULT_MATH))
                return sym_fail(e, "configuring cuBLAS failed");
        }
        c->feat_at = ((size_t)2 * Bm * sizeof(int) + 255) & ~(size_t)255;
        size_t in_bytes = c->feat_at + (size_t)Bm * cfg->features * 4;
        if (dalloc(c, &c->d_in, in_bytes, e) || dalloc(c, (void **)&c->d_pred, (size_t)Bm * SYM_TOWERS * 4, e))
            return -1;
        CUDA_CHECK(cudaMallocHost(&c->h_in, in_bytes));
        CUDA_CHECK(cudaMallocHost((void **)&c->h_pred, (size_t)Bm * SYM_TOWERS * 4));
        c->d_slots = (int *)c->d_in, c->d_feat = (float *)((char *)c->d_in + c->feat_at);
        c->h_slots = (int *)c->h_in, c->h_feat = (float *)((char *)c->h_in + c->feat_at);
        c->d_rlen = c->d_slots + Bm, c->h_rlen = c->h_slots + Bm;
        for (int i = 0; i < Bm; i++) c->h_rlen[i] = 1;
        /* pool: n_slots real slots + one scratch slot for padded rows; say
         * how many fit rather than only "out of memory" */
        size_t free_b = 0, total_b = 0, need = (size_t)(n_slots + 1) * c->numel * 4;
        CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
        if (need > free_b)
            return sym_fail(e,
                            "%d state slots of %.1f MB need %.1f GB but GPU %d has %.1f GB free (the weights need room "
                            "too): lower max_symbols (--num-symbols); about %d slots fit beside nothing else",
                            n_slots, c->numel * 4e-6, need * 1e-9, device, free_b * 1e-9,
                            (int)(free_b / (c->numel * 4)) - 1);
        if (dalloc(c, (void **)&c->pool, need, e) ||
            dalloc(c, (void **)&c->init_slot, c->numel * 4, e))
            return -1;
        float *h = (float *)malloc(c->numel * 4);
        if (!h) return sym_fail(e, "out of memory");
        sym_state_reset_f32(&c->base.layout, h);
        cudaError_t ce = cudaMemcpy(c->init_slot, h, c->numel * 4, cudaMemcpyHostToDevice);
        free(h);
        if (ce != cudaSuccess) return sym_fail(e, "uploading the initial state: %s", cudaGetErrorString(ce));
        for (int i = 0; i <= n_slots; i++)
            CUDA_CHECK(cudaMemcpyAsync(c->pool + (size_t)i * c->numel, c->init_slot, c->numel * 4,
                                       cudaMemcpyDeviceToDevice, c->s));
        CUDA_CHECK(cudaStreamSynchronize(c->s));
        return 0;
    }();
    if (rc) {
        cuda_destroy(&c->base);
        return NULL;
    }
    return c;
}

/* Builds the weights from the device arena (freed unless shared) and
 * captures every bucket's graph. */
static sym_backend *finish(cuda_backend *c, sym_weights *wd, float *arena, int arena_shared,
                           const sym_precision prec[SYM_TOWERS], sym_err *e) {
    int rc = build_model(c, wd, arena, prec, e);
    if (!arena_shared) cudaFree(arena);
    sym_weights_free(wd);
    /* every bucket's graph now, not at its first step: a capture takes tens
     * of milliseconds, which would land on a live request's latency */
    for (int bi = 0; !rc && use_graphs() && bi < c->n_buckets; bi++) rc = capture_bucket(c, bi, 1, e);
    if (rc) {
        cuda_destroy(&c->base);
        return NULL;
    }
    return &c->base;
}

static int check_prec(const sym_precision p[SYM_TOWERS], sym_err *e) {
    for (int t = 0; t < SYM_TOWERS; t++)
        if (p[t] != SYM_PREC_FP32 && p[t] != SYM_PREC_BF16) return sym_fail(e, "tower %d: precision must be fp32 or bf16", t);
    return 0;
}

extern "C" sym_backend *sym_cuda_backend_create(const sym_weights *w, const sym_precision tower_prec[SYM_TOWERS],
                                                int device, int n_slots, int max_batch, sym_err *e) {
    if (check_prec(tower_prec, e)) return NULL;
    cuda_backend *c = setup(&w->cfg, device, n_slots, max_batch, e);
    if (!c) return NULL;
    sym_weights wd;
    if (sym_weights_describe(&wd, &w->cfg, e)) {
        cuda_destroy(&c->base);
        return NULL;
    }
    float *arena = NULL;
    cudaError_t ce = cudaMalloc((void **)&arena, wd.arena_floats * 4);
    if (ce == cudaSuccess) ce = cudaMemcpy(arena, w->arena, wd.arena_floats * 4, cudaMemcpyHostToDevice);
    if (ce != cudaSuccess) {
        sym_fail(e, "uploading %zu weight bytes: %s", wd.arena_floats * 4, cudaGetErrorString(ce));
        cudaFree(arena);
        sym_weights_free(&wd);
        cuda_destroy(&c->base);
        return NULL;
    }
    sym_weights_bind(&wd, arena);
    return finish(c, &wd, arena, 0, tower_prec, e);
}

extern "C" sym_backend *sym_cuda_backend_create_synthetic(const sym_model_config *cfg, uint64_t seed,
                                                          const sym_precision tower_prec[SYM_TOWERS], int device,
                                                          int n_slots, int max_batch, sym_err *e) {
    if (check_prec(tower_prec, e)) return NULL;
    cuda_backend *c = setup(cfg, device, n_slots, max_batch, e);
    if (!c) return NULL;
    sym_weights wd;
    if (sym_weights_describe(&wd, cfg, e)) {
        cuda_destroy(&c->base);
        return NULL;
    }
    float *arena = NULL;
    cudaError_t ce = cudaMalloc((void **)&arena, wd.arena_floats * 4);
    if (ce != cudaSuccess) {
        sym_fail(e, "allocating %zu weight bytes: %s", wd.arena_floats * 4, cudaGetErrorString(ce));
        sym_weights_free(&wd);
        cuda_destroy(&c->base);
        return NULL;
    }
    int hd = sym_cfg_head_dim(cfg);
    for (int i = 0; i < wd.n_specs; i++) {
        const sym_tensor_spec *sp = &wd.specs[i];
        sym_init_dev(c->s, arena + sp->offset, sp->numel, (int)sp->init, sym_weights_tensor_key(seed, sp->name),
                     sp->fan_in, hd);
    }
    ce = cudaGetLastError();
    if (ce != cudaSuccess) {
        sym_fail(e, "generating weights: %s", cudaGetErrorString(ce));
        cudaFree(arena);
        sym_weights_free(&wd);
        cuda_destroy(&c->base);
        return NULL;
    }
    sym_weights_bind(&wd, arena);
    return finish(c, &wd, arena, 0, tower_prec, e);
}

extern "C" sym_backend *sym_cuda_backend_create_placed(const sym_device_weights *dw,
                                                       const sym_precision tower_prec[SYM_TOWERS], int device,
                                                       int n_slots, int max_batch, sym_err *e) {
    if (check_prec(tower_prec, e)) return NULL;
    sym_model_config cfg;
    float *arena = sym_cuda_device_weights_arena(dw, device, &cfg);
    if (!arena) {
        sym_fail(e, "no weights were placed on GPU %d", device);
        return NULL;
    }
    cuda_backend *c = setup(&cfg, device, n_slots, max_batch, e);
    if (!c) return NULL;
    sym_weights wd;
    if (sym_weights_describe(&wd, &cfg, e)) {
        cuda_destroy(&c->base);
        return NULL;
    }
    sym_weights_bind(&wd, arena);
    return finish(c, &wd, arena, 1, tower_prec, e);
}

/* For the bench: bytes of device weights. */
extern "C" size_t sym_cuda_backend_weight_bytes(const sym_backend *b) {
    return ((const cuda_backend *)b)->weight_bytes;
}

extern "C" {
#include "kernels/cuda/gv/cuda_extra.h"
}

extern "C" int sym_cuda_synthetic_to_host(sym_weights *w, uint64_t seed, int device, sym_err *e) {
    CUDA_CHECK(cudaSetDevice(device));
    float *arena = NULL;
    CUDA_CHECK(cudaMalloc((void **)&arena, w->arena_floats * 4));
    int hd = sym_cfg_head_dim(&w->cfg);
    for (int i = 0; i < w->n_specs; i++) {
        const sym_tensor_spec *sp = &w->specs[i];
        sym_init_dev(0, arena + sp->offset, sp->numel, (int)sp->init, sym_weights_tensor_key(seed, sp->name),
                     sp->fan_in, hd);
    }
    cudaError_t ce = cudaGetLastError();
    if (ce == cudaSuccess) ce = cudaMemcpy(w->arena, arena, w->arena_floats * 4, cudaMemcpyDeviceToHost);
    cudaFree(arena);
    if (ce != cudaSuccess) return sym_fail(e, "synthetic weights on the GPU: %s", cudaGetErrorString(ce));
    return 0;
}

/* One figure of sym_cuda_backend_time_steps: ms per step of bucket bi,
 * enqueued as mode says (0: one graph launch; 1-3: SYM_BENCH_PIPE's). */
static int time_once(cuda_backend *c, int bi, int mode, cudaEvent_t a, cudaEvent_t b, float *ms, sym_err *e) {
    const int PIPE_STEPS = 8, n = mode ? PIPE_STEPS : 1, Bk = c->buckets[bi];
    CUDA_CHECK(cudaEventRecord(a, c->s));
    if (mode == 3) {
        CUDA_CHECK(cudaEventRecord(c->ev_fork, c->s));
        for (int t = 0; t < SYM_TOWERS; t++) CUDA_CHECK(cudaStreamWaitEvent(c->ts[t], c->ev_fork, 0));
    }
    for (int k = 0; k < n; k++) {
        if (mode <= 1) CUDA_CHECK(cudaGraphLaunch(c->graphs[bi][0], c->s));
        if (mode == 2 && enqueue_step(c, Bk, 1, e)) return -1;
        for (int t = 0; mode == 3 && t < SYM_TOWERS; t++)
            if (enqueue_tower(c, t, Bk, 1)) return sym_fail(e, "enqueueing tower %d", t);
    }
    for (int t = 0; mode == 3 && t < SYM_TOWERS; t++) {
        CUDA_CHECK(cudaEventRecord(c->ev_join[t], c->ts[t]));
        CUDA_CHECK(cudaStreamWaitEvent(c->s, c->ev_join[t], 0));
    }
    CUDA_CHECK(cudaEventRecord(b, c->s));
    CUDA_CHECK(cudaEventSynchronize(b));
    CUDA_CHECK(cudaEventElapsedTime(ms, a, b));
    *ms /= (float)n;
    return 0;
}

extern "C" int sym_cuda_backend_time_steps(sym_backend *bb, int B, const int32_t *slots, const float *features,
                                           int iters, float *ms, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    double *out = (double *)malloc((size_t)B * SYM_TOWERS * sizeof(double));
    if (!out) return sym_fail(e, "out of memory");
    int rc = cuda_step(bb, B, slots, features, out, e); /* uploads rows, captures the graph */
    free(out);
    if (rc) return -1;
    int bi = bucket_index(c, B);
    if (!c->graphs[bi][0]) return sym_fail(e, "no graph (SYM_CUDA_NO_GRAPH set?)");
    /* SYM_BENCH_PIPE=graph|join|tower (measurement): each figure is the
     * mean of PIPE_STEPS steps enqueued back to back with no wait between
     * them: the step's graph, the step enqueued without a graph (the towers
     * forked and joined every step), or each tower's steps one after
     * another on its own stream, joined only at the end (a tower's next
     * step needs only its own last one; the outputs are not gathered and
     * the step count does not advance). */
    const char *pm = getenv("SYM_BENCH_PIPE");
    int mode = 0;
    if (pm && *pm) {
        mode = !strcmp(pm, "graph") ? 1 : !strcmp(pm, "join") ? 2 : !strcmp(pm, "tower") ? 3 : -1;
        if (mode < 0) return sym_fail(e, "SYM_BENCH_PIPE=%s: graph, join or tower", pm);
    }
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    if (cudaEventCreate(&b) != cudaSuccess) {
        cudaEventDestroy(a);
        return sym_fail(e, "creating an event");
    }
    rc = 0;
    for (int i = 0; i < iters && !rc; i++) rc = time_once(c, bi, mode, a, b, &ms[i], e);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return rc;
}

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

extern "C" int sym_cuda_copy_bandwidth(int device, size_t bytes, double *gbps, sym_err *e) {
    CUDA_CHECK(cudaSetDevice(device));
    void *s = NULL, *d = NULL;
    CUDA_CHECK(cudaMalloc(&s, bytes));
    CUDA_CHECK(cudaMalloc(&d, bytes));
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    float ms[12];
    CUDA_CHECK(cudaMemcpy(d, s, bytes, cudaMemcpyDeviceToDevice));
    for (int i = 0; i < 12; i++) {
        CUDA_CHECK(cudaEventRecord(a, 0));
        CUDA_CHECK(cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, 0));
        CUDA_CHECK(cudaEventRecord(b, 0));
        CUDA_CHECK(cudaEventSynchronize(b));
        CUDA_CHECK(cudaEventElapsedTime(&ms[i], a, b));
    }
    qsort(ms, 12, sizeof(float), cmp_float);
    *gbps = 2.0 * (double)bytes / (ms[6] * 1e-3) / 1e9;
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaFree(s);
    cudaFree(d);
    return 0;
}

extern "C" int sym_cuda_mem_info(int device, size_t *used, size_t *free_bytes, sym_err *e) {
    CUDA_CHECK(cudaSetDevice(device));
    size_t fr, tot;
    CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
    *used = tot - fr;
    *free_bytes = fr;
    return 0;
}

extern "C" int sym_cuda_profiler(int on, sym_err *e) {
    CUDA_CHECK(on ? cudaProfilerStart() : cudaProfilerStop());
    return 0;
}
